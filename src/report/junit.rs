//! JUnit XML for CI test dashboards: one test suite of contract rules, one test case per
//! rule (failed rules carry their evidence, rules nothing exercised are skipped), and
//! one suite for the thresholds. Written with quick-junit.

use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use super::{Format, Report};
use crate::checks::{RuleStatus, Severity};

pub struct JunitXml;

impl Format for JunitXml {
    fn extension(&self) -> &'static str {
        "junit.xml"
    }

    fn render(&self, r: &Report) -> anyhow::Result<String> {
        let mut report = Junit::new(format!("batchproof {}", r.scenario.name));
        let mut rules = TestSuite::new("contract rules");
        for rule in &r.rules {
            let status = match rule.status {
                RuleStatus::Passed => TestCaseStatus::success(),
                RuleStatus::NotRun | RuleStatus::NotApplicable => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(rule.note.clone().unwrap_or_default());
                    s
                }
                RuleStatus::Failed => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(format!(
                        "{} of {} cases failed: {}",
                        rule.failed, rule.checked, rule.title
                    ));
                    s.set_type(format!("{} rule", rule.severity.as_str()));
                    let mut text = String::new();
                    for c in &rule.examples {
                        text.push_str(&format!(
                            "- request: {}\n  batch: {}\n  run: {}\n  expected: {}\n  seen: {}\n",
                            c.request.as_deref().unwrap_or("-"),
                            c.batch_id.as_deref().unwrap_or("-"),
                            c.run_id.as_deref().unwrap_or("-"),
                            c.expected,
                            c.seen
                        ));
                    }
                    text.push_str(&format!("documentation: {}\n", rule.doc));
                    if let Some(p) = rule.provenance {
                        text.push_str(&format!("expectation: {} ({})\n", p.as_str(), rule.basis));
                    }
                    s.set_description(text);
                    s
                }
            };
            let mut case = TestCase::new(rule.id.clone(), status);
            case.set_classname(format!(
                "batchproof.{}",
                rule.id.split('.').next().unwrap_or("rules")
            ));
            case.set_assertions(rule.checked as usize);
            if rule.status == RuleStatus::Failed && rule.severity == Severity::Warn {
                // A warning does not fail the run; say so where CI shows it.
                case.set_system_out("severity warn: reported, does not fail the run");
            }
            rules.add_test_case(case);
        }
        // A run with thresholds only has no rule suite to show.
        if !r.rules.is_empty() {
            report.add_test_suite(rules);
        }
        let mut thresholds = TestSuite::new("thresholds");
        for t in &r.verdict.thresholds {
            let value = crate::scenario::threshold::format_value(&t.metric, t.value);
            let status = if t.passed {
                TestCaseStatus::success()
            } else if !r.complete {
                // The run did not finish: its counts are no evidence (the verdict says why).
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!(
                    "not judged: the run did not finish ({} measured {value})",
                    t.expr
                ));
                s
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("{} measured {value}", t.expr));
                s
            };
            let mut case = TestCase::new(t.expr.clone(), status);
            case.set_classname("batchproof.thresholds");
            thresholds.add_test_case(case);
        }
        if !r.verdict.thresholds.is_empty() {
            report.add_test_suite(thresholds);
        }
        // The verdict as a test case of its own, so a dashboard that counts failed cases
        // fails a run that could not do its job even when every rule and threshold held.
        let mut verdict = TestSuite::new("verdict");
        let status = if r.verdict.passed && r.complete {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!("{}: the run did not pass", r.outcome().word()));
            s.set_type("verdict");
            let text: Vec<String> = r
                .verdict
                .reasons
                .iter()
                .map(|x| format!("- {}: {}", x.code, x.message))
                .collect();
            s.set_description(text.join("\n"));
            s
        };
        let mut case = TestCase::new("verdict", status);
        case.set_classname("batchproof.verdict");
        let a = &r.runs.anomalies;
        case.set_system_out(format!(
            "runs: {} submitted, {} seen, {} missing; {} duplicate(s), {} unknown, {} foreign (other runs' results on the same workflow, not judged)",
            r.runs.submitted, r.runs.seen, r.runs.missing, a.duplicates, a.unknown, a.foreign
        ));
        verdict.add_test_case(case);
        report.add_test_suite(verdict);
        Ok(report.to_string()?)
    }
}
