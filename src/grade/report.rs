//! The client report: the grade as JSON, Markdown, HTML (self-contained, no script) and
//! JUnit XML, written into one folder, so a client's CI gates on the exit code and shows
//! the rule table where it shows test results.

use std::path::Path;

use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use super::Grade;
use super::rules::{RuleResult, Status};

/// Writes `grade.json`, `grade.md`, `grade.html` and `grade.junit.xml` into `dir`.
pub fn write_all(grade: &Grade, dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("grade.json", serde_json::to_string_pretty(grade)? + "\n"),
        ("grade.md", markdown(grade)),
        ("grade.html", html(grade)),
        ("grade.junit.xml", junit(grade)?),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// Escapes text for HTML element content and double-quoted attributes.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn headline(g: &Grade) -> String {
    let count = |st: Status| g.rules.iter().filter(|r| r.status == st).count();
    let held = format!(
        "{} rules held, {} not exercised",
        count(Status::Passed),
        count(Status::NotExercised)
    );
    if g.passed {
        format!("PASSED: {held}")
    } else {
        format!("FAILED: {}", g.reasons.join("; "))
    }
}

/// The console summary: the headline and one line per rule.
pub fn console(g: &Grade) -> String {
    let mut out = format!("{}\n", headline(g));
    for r in &g.rules {
        let mark = match r.status {
            Status::Passed => "✓",
            Status::Failed => "✗",
            Status::NotExercised => "·",
        };
        out.push_str(&format!("  {mark} {:<28} {}\n", r.id, r.title));
        if let Some(e) = r.evidence.first() {
            out.push_str(&format!(
                "      at {} ms: {}: {}; expected {}\n",
                e.at_ms, e.request, e.observed, e.expected
            ));
        }
        if r.status == Status::NotExercised {
            out.push_str(&format!("      not exercised: {}\n", r.why_not_exercised()));
        }
        if r.status == Status::Passed && !r.exercised.is_empty() {
            out.push_str(&format!("      exercised by {}\n", r.exercised));
        }
    }
    if g.dropped > 0 {
        out.push_str(&format!(
            "  {} observations past the recording cap were not judged\n",
            g.dropped
        ));
    }
    out
}

fn md_cell(t: &str) -> String {
    t.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(g: &Grade) -> String {
    let mut out = format!("# Client grade: {}\n\n", headline(g));
    out.push_str(&format!(
        "{} API requests and {} webhook deliveries observed.\n\n",
        g.api_requests, g.deliveries
    ));
    out.push_str("| rule | status | checked | title |\n|---|---|---|---|\n");
    for r in &g.rules {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.id,
            r.status.as_str(),
            r.checked,
            md_cell(&r.title)
        ));
    }
    for r in g.failed() {
        out.push_str(&format!("\n## `{}`: {}\n\n", r.id, r.title));
        out.push_str(&format!(
            "Why: {} (from {})\n\n",
            md_cell(&r.basis),
            md_cell(&r.provenance)
        ));
        for e in &r.evidence {
            out.push_str(&format!(
                "- at {} ms, `{}`: {}; expected {}\n",
                e.at_ms,
                md_cell(&e.request),
                md_cell(&e.observed),
                md_cell(&e.expected)
            ));
        }
        if r.more > 0 {
            out.push_str(&format!("- and {} more\n", r.more));
        }
    }
    let untested: Vec<&RuleResult> = g
        .rules
        .iter()
        .filter(|r| r.status == Status::NotExercised)
        .collect();
    if !untested.is_empty() {
        out.push_str("\n## Not exercised: what would put them to the test\n\n");
        for r in untested {
            out.push_str(&format!(
                "- `{}`: {}\n",
                r.id,
                md_cell(&r.why_not_exercised())
            ));
        }
    }
    out
}

fn html_rule(r: &RuleResult) -> String {
    let mut evidence = String::new();
    for e in &r.evidence {
        evidence.push_str(&format!(
            "<li class=\"evidence\">at {} ms, <code>{}</code>: {}; expected {}</li>",
            e.at_ms,
            esc(&e.request),
            esc(&e.observed),
            esc(&e.expected)
        ));
    }
    if r.more > 0 {
        evidence.push_str(&format!("<li>and {} more</li>", r.more));
    }
    if r.status == Status::NotExercised {
        evidence.push_str(&format!(
            "<li class=\"untested\">not exercised: {}</li>",
            esc(&r.why_not_exercised())
        ));
    }
    if r.status == Status::Passed && !r.exercised.is_empty() {
        evidence.push_str(&format!(
            "<li class=\"exercised\">exercised by {}</li>",
            esc(&r.exercised)
        ));
    }
    format!(
        "<tr data-rule=\"{id}\" data-status=\"{st}\"><td><code>{id}</code></td><td class=\"status {st}\">{st}</td><td>{checked}</td><td>{title}<div class=\"basis\">{basis} <em>({prov})</em></div><ul>{evidence}</ul></td></tr>\n",
        id = esc(&r.id),
        st = r.status.as_str(),
        checked = r.checked,
        title = esc(&r.title),
        basis = esc(&r.basis),
        prov = esc(&r.provenance),
    )
}

pub fn html(g: &Grade) -> String {
    let rows: String = g.rules.iter().map(html_rule).collect();
    let verdict = if g.passed { "passed" } else { "failed" };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>batchproof client grade</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem}}
#verdict{{display:inline-block;padding:.4rem .8rem;border-radius:.3rem;color:#fff;font-weight:600}}
#verdict.passed{{background:#1a7f37}} #verdict.failed{{background:#cf222e}}
table{{border-collapse:collapse;width:100%}} td,th{{border-bottom:1px solid #ddd;padding:.4rem;vertical-align:top;text-align:left}}
.status.failed{{color:#cf222e;font-weight:600}} .status.passed{{color:#1a7f37}} .status.not_exercised{{color:#777}}
.basis{{color:#555;font-size:.9em}}
</style></head><body>
<h1>Client grade</h1>
<p id="verdict" class="{verdict}" data-verdict="{verdict}">{headline}</p>
<p id="counts">{requests} API requests and {deliveries} webhook deliveries observed.</p>
<table id="rules"><thead><tr><th>rule</th><th>status</th><th>checked</th><th>what and why</th></tr></thead>
<tbody>
{rows}</tbody></table>
</body></html>
"#,
        headline = esc(&headline(g)),
        requests = g.api_requests,
        deliveries = g.deliveries,
    )
}

pub fn junit(g: &Grade) -> anyhow::Result<String> {
    let mut report = Junit::new("batchproof client grade");
    let mut suite = TestSuite::new("client rules");
    for r in &g.rules {
        let status = match r.status {
            Status::Passed => TestCaseStatus::success(),
            Status::NotExercised => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!(
                    "nothing the client did exercised this rule: {}",
                    r.why_not_exercised()
                ));
                s
            }
            Status::Failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(r.title.clone());
                let mut text = String::new();
                for e in &r.evidence {
                    text.push_str(&format!(
                        "- at {} ms: {}\n  observed: {}\n  expected: {}\n",
                        e.at_ms, e.request, e.observed, e.expected
                    ));
                }
                text.push_str(&format!("why: {} ({})\n", r.basis, r.provenance));
                s.set_description(text);
                s
            }
        };
        let mut case = TestCase::new(r.id.clone(), status);
        case.set_classname("batchproof.client");
        case.set_assertions(r.checked as usize);
        suite.add_test_case(case);
    }
    if let Some(c) = &g.client {
        let status = if c.code == Some(0) && !c.timed_out {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(headline(g));
            s
        };
        let mut case = TestCase::new("client.command", status);
        case.set_system_out(format!("{} ({:.1} s)", c.command, c.seconds));
        case.set_classname("batchproof.client");
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}
