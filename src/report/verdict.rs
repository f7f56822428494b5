//! The verdict: one decision, taken from the report alone, of whether the run did its job.
//!
//! Every format renders this one decision and its reasons; none decides on its own. A run
//! passes only when it has no reason against it: a run that could not do its job (a key
//! refused, a target unreachable, nothing accepted, part of the job never sent, stopped by
//! its budget, half a shard set) is never called passed, whatever its thresholds say.

use serde::{Deserialize, Serialize};

use super::Report;
use crate::scenario::threshold::{Threshold, ThresholdResult, format_value};
pub use crate::scenario::{BudgetStop, Expectations};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    pub thresholds: Vec<ThresholdResult>,
    /// Why the run did not pass, one entry per cause, in the order a reader should fix
    /// them; empty when it passed.
    #[serde(default)]
    pub reasons: Vec<Reason>,
}

/// One cause of a failed verdict: a stable code a pipeline can match, and a sentence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reason {
    pub code: String,
    pub message: String,
}

impl Reason {
    fn new(code: &str, message: impl Into<String>) -> Reason {
        Reason {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A merged report made from part of a shard set (`merge --partial`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartialSet {
    pub count: u64,
    /// Shard indexes with no report among those merged.
    pub missing: Vec<u64>,
}

impl Report {
    /// Judges the thresholds and decides the verdict from everything the report holds.
    pub fn judge(&mut self, thresholds: &[Threshold]) {
        let results: Vec<ThresholdResult> = thresholds
            .iter()
            .map(|t| t.evaluate(self.metric(&t.metric)))
            .collect();
        self.verdict.thresholds = results;
        self.decide();
    }

    /// Decides the verdict from the report as it stands, keeping the thresholds already
    /// judged (a merge re-judges them on the whole first).
    pub fn decide(&mut self) {
        let reasons = self.reasons();
        self.verdict.passed = reasons.is_empty();
        self.verdict.reasons = reasons;
    }

    fn reasons(&self) -> Vec<Reason> {
        let mut out = Vec::new();
        if let Some(why) = &self.interrupted {
            out.push(Reason::new(
                "interrupted",
                format!("the run stopped early: {why}"),
            ));
        } else if let Some(what) = &self.unreachable {
            out.push(Reason::new(
                "unreachable",
                format!(
                    "the target at {} could not be reached: {what}; the rules it could not read are not run",
                    self.target.url
                ),
            ));
        } else if !self.complete {
            out.push(Reason::new("incomplete", "the run did not finish"));
        }
        if let Some(p) = &self.partial_set {
            let missing: Vec<String> = p
                .missing
                .iter()
                .map(|i| format!("{i}/{}", p.count))
                .collect();
            out.push(Reason::new(
                "partial_merge",
                format!(
                    "a partial merge: shard(s) {} of {} have no report here",
                    missing.join(", "),
                    p.count
                ),
            ));
        }
        for i in self.invariants.iter().filter(|i| !i.held) {
            out.push(Reason::new(
                "harness_fault",
                format!(
                    "the accounting broke its invariant {} ({} cases)",
                    i.id, i.violations
                ),
            ));
        }
        self.submission_reasons(&mut out);
        if let Some(b) = &self.budget_stop
            && let Some(detail) = &b.detail
        {
            out.push(Reason::new(
                "budget_stop",
                format!("the budget of {} runs stopped {detail}", b.max_runs),
            ));
        } else if let Some(b) = &self.budget_stop {
            out.push(Reason::new(
                "budget_stop",
                format!(
                    "the budget of {} runs stopped the load at {} batch(es){}",
                    b.max_runs,
                    b.allowed_batches,
                    b.planned_runs
                        .map_or(String::new(), |p| format!(" ({p} runs were planned)"))
                ),
            ));
        }
        if self.complete && self.generator.unsent_batches > 0 {
            let g = &self.generator;
            let listed = match g.unsent_indexes.len() {
                0 => String::new(),
                n => format!(
                    ": #{}{}",
                    g.unsent_indexes
                        .iter()
                        .take(20)
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", #"),
                    if g.unsent_batches > 20 || n > 20 {
                        ", … (report.json lists them: generator.unsent_indexes)"
                    } else {
                        ""
                    }
                ),
            };
            out.push(Reason::new(
                "unsent",
                format!(
                    "{} batch(es) of the job were never sent{listed}",
                    g.unsent_batches
                ),
            ));
        }
        self.result_reasons(&mut out);
        self.read_reasons(&mut out);
        // A run that did not finish is already not passed, and says why: its counts (runs
        // it never waited for, or could not read) are no evidence against the target.
        for t in self
            .verdict
            .thresholds
            .iter()
            .filter(|t| !t.passed && self.complete)
        {
            out.push(Reason::new(
                "threshold",
                format!(
                    "threshold `{}` failed: measured {}",
                    t.expr,
                    format_value(&t.metric, t.value)
                ),
            ));
        }
        for r in self.rules.iter().filter(|r| r.fails_run()) {
            out.push(Reason::new(
                "rule",
                format!("rule {} failed ({} case(s))", r.id, r.failed),
            ));
        }
        out
    }

    /// Reads of the audit and probes the target kept refusing: their rules are not run.
    fn read_reasons(&self, out: &mut Vec<Reason>) {
        if let Some(r) = self.reads.as_ref().filter(|r| r.unread > 0)
            && self.unreachable.is_none()
        {
            let rules: Vec<&str> = self
                .rules
                .iter()
                .filter(|x| x.note.as_deref().is_some_and(|n| n.starts_with("not run:")))
                .map(|x| x.id.as_str())
                .collect();
            out.push(Reason::new(
            "unread",
            format!(
                "the target refused {} read(s) of the audit and probes even after the retries ({} × 429, {} × 5xx): {} not run",
                r.unread,
                r.throttled,
                r.server_errors,
                if rules.is_empty() {
                    "their rules".to_string()
                } else {
                    rules.join(", ")
                }
            ),
        ));
        }
    }

    /// What the results say: runs that never came back, deliveries that failed
    /// verification.
    fn result_reasons(&self, out: &mut Vec<Reason>) {
        // Whether every input came back is the harness's first promise: runs with no
        // result by the deadline fail a finished run, thresholds or not.
        if self.complete && self.runs.missing > 0 && !self.scenario.expect.missing_runs {
            out.push(Reason::new(
                "missing",
                format!(
                    "{} of {} runs had no result by the deadline; set `expect: {{missing_runs: true}}` if that is the test",
                    self.runs.missing, self.runs.submitted
                ),
            ));
        }
        let rejected: u64 = self.webhooks.rejected.values().sum();
        if rejected > 0 && !self.scenario.expect.rejected_webhooks {
            let kinds: Vec<String> = self
                .webhooks
                .rejected
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            out.push(Reason::new(
                "webhooks_rejected",
                format!(
                    "{rejected} delivery(ies) to this run's endpoint failed verification ({}); set `expect: {{rejected_webhooks: true}}` if that is the test",
                    kinds.join(", ")
                ),
            ));
        }
    }

    /// What the batches' answers say about the run's job: a key refused, a target out of
    /// reach, nothing accepted, batches refused.
    fn submission_reasons(&self, out: &mut Vec<Reason>) {
        let b = &self.batches;
        let auth: u64 = ["401", "403"]
            .iter()
            .filter_map(|s| b.rejected_by_status.get(*s))
            .sum();
        if auth > 0 {
            let first = self
                .batches
                .list
                .iter()
                .find(|l| {
                    l.outcome == "rejected"
                        && l.detail
                            .as_deref()
                            .is_some_and(|d| d.contains("401") || d.contains("403"))
                })
                .and_then(|l| l.detail.clone())
                .unwrap_or_else(|| "401/403".into());
            out.push(Reason::new(
                "auth_refused",
                format!("the target refused the API key on {auth} batch(es): {first}"),
            ));
        }
        if b.unreachable > 0 && self.unreachable.is_none() {
            out.push(Reason::new(
                "unreachable",
                format!(
                    "{} batch(es) could not reach the target at {}",
                    b.unreachable, self.target.url
                ),
            ));
        }
        if b.accepted == 0 {
            out.push(Reason::new(
                "nothing_accepted",
                if b.scheduled == 0 {
                    "nothing was submitted: the run had no batch to send".to_string()
                } else {
                    format!("no batch was accepted ({} scheduled)", b.scheduled)
                },
            ));
        }
        let other_rejections = b.rejected.saturating_sub(auth);
        if other_rejections > 0 && !self.scenario.expect.rejected_batches {
            let by: Vec<String> = b
                .rejected_by_status
                .iter()
                .filter(|(s, _)| *s != "401" && *s != "403")
                .map(|(s, n)| format!("{n} × HTTP {s}"))
                .collect();
            out.push(Reason::new(
                "batches_rejected",
                format!(
                    "the target refused {other_rejections} batch(es) ({}); set `expect: {{rejected_batches: true}}` if that is the test",
                    by.join(", ")
                ),
            ));
        }
    }
}
