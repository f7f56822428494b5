//! The contract rule catalogue: every rule the harness can hold a target to, with a
//! stable dotted id, a title, a severity, the documentation it comes from and the API
//! versions it applies to — one file per family. Rules are judged from two sources:
//! what the runner saw anyway (submissions, webhooks, polls — recorded into `Findings`
//! as it happens) and, in `batchproof run` with a `checks:` block, an audit of the
//! accepted batches and probes of deliberately bad or edge requests (`probe.rs`).
//!
//! A rule that nothing exercised is reported `not_run` with the reason, never `passed`.

pub mod auth;
pub mod batch;
pub mod error;
pub mod list;
pub mod runs;
pub mod version;
pub mod webhook;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::ApiVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A failure fails the run (exit code 1).
    Error,
    /// A failure is reported, the run still passes.
    Warn,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

/// Status codes accepted where the documentation says a request is refused but not with
/// which code: the 4xx validation family the SDKs map (400 and 422).
pub const VALIDATION_STATUSES: [u16; 2] = [400, 422];

/// Where a rule's expectation comes from. A CI pipeline going red on a rule should know
/// whether the documentation says so or the harness inferred it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Extend's documentation states it.
    Documented,
    /// The official SDKs' models or behaviour encode it.
    Sdk,
    /// Seen in the real API's behaviour, not written down.
    Observed,
    /// Follows from the documentation or the SDKs without being stated; where a status
    /// code is inferred, the rule accepts the documented family.
    Inferred,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Documented => "documented",
            Provenance::Sdk => "sdk",
            Provenance::Observed => "observed",
            Provenance::Inferred => "inferred",
        }
    }
}

/// One contract rule. `versions` empty means every version.
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub doc: &'static str,
    pub provenance: Provenance,
    /// What exactly the expectation rests on, in a sentence.
    pub basis: &'static str,
    pub versions: &'static [ApiVersion],
}

impl Rule {
    pub fn family(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }

    pub fn applies_to(&self, v: ApiVersion) -> bool {
        self.versions.is_empty() || self.versions.contains(&v)
    }
}

pub const LEGACY: &[ApiVersion] = &[ApiVersion::V2024_12_23, ApiVersion::V2025_04_21];
pub const CURRENT_ONLY: &[ApiVersion] = &[ApiVersion::V2026_02_09];

/// Every rule, in the order reports list them.
pub fn catalogue() -> impl Iterator<Item = &'static Rule> {
    [
        batch::RULES,
        auth::RULES,
        version::RULES,
        error::RULES,
        runs::RULES,
        list::RULES,
        webhook::RULES,
    ]
    .into_iter()
    .flatten()
}

pub fn rule(id: &str) -> Option<&'static Rule> {
    catalogue().find(|r| r.id == id)
}

/// Does `pattern` (a rule id, a family such as `runs`, or `runs.*`) name `rule`?
pub fn matches(pattern: &str, rule: &Rule) -> bool {
    let p = pattern.trim_end_matches(".*");
    p == rule.id || p == rule.family()
}

/// Is `pattern` a rule id or a family? For validating scenarios.
pub fn is_known_pattern(pattern: &str) -> bool {
    catalogue().any(|r| matches(pattern, r))
}

/// `batchproof checks`: the catalogue as text (one block per rule) or JSON.
pub fn listing(json: bool) -> String {
    let versions = |r: &Rule| -> Vec<&'static str> {
        if r.versions.is_empty() {
            ApiVersion::ALL.iter().map(|v| v.as_str()).collect()
        } else {
            r.versions.iter().map(|v| v.as_str()).collect()
        }
    };
    if json {
        let rules: Vec<serde_json::Value> = catalogue()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "family": r.family(),
                    "title": r.title,
                    "severity": r.severity.as_str(),
                    "doc": r.doc,
                    "provenance": r.provenance.as_str(),
                    "basis": r.basis,
                    "versions": versions(r),
                })
            })
            .collect();
        return serde_json::to_string_pretty(&rules).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    let mut family = "";
    for r in catalogue() {
        if r.family() != family {
            family = r.family();
            out.push_str(&format!("\n{family}\n"));
        }
        out.push_str(&format!(
            "  {:<32} {:<5}  {}\n  {:<32}        {} · {}\n  {:<32}        {}: {}\n",
            r.id,
            r.severity.as_str(),
            r.title,
            "",
            versions(r).join(", "),
            r.doc,
            "",
            r.provenance.as_str(),
            r.basis
        ));
    }
    out
}

/// One violation, as evidence: where it was seen and what differed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Case {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub expected: String,
    pub seen: String,
    /// The request that showed it, e.g. `GET /workflow_runs?batchId=…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

impl Case {
    pub fn new(expected: impl Into<String>, seen: impl Into<String>) -> Case {
        Case {
            expected: expected.into(),
            seen: seen.into(),
            ..Case::default()
        }
    }

    pub fn batch(mut self, id: impl Into<String>) -> Case {
        self.batch_id = Some(id.into());
        self
    }

    pub fn run(mut self, id: impl Into<String>) -> Case {
        self.run_id = Some(id.into());
        self
    }

    pub fn request(mut self, r: impl Into<String>) -> Case {
        self.request = Some(r.into());
        self
    }
}

/// Examples kept per rule; the count of failures is always complete.
pub const EXAMPLES: usize = 5;

#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    checked: u64,
    failed: u64,
    examples: Vec<Case>,
    note: Option<String>,
    /// Cases that could not be read (throttled, 5xx, unreachable after retries), and why
    /// the first one could not: never a failure, and the rule is not run.
    unread: u64,
    unread_why: Option<String>,
}

/// What the target let the audit and the probes read: each refusal was retried within
/// the bound; what stayed unread left its rule *not run*, never failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reads {
    /// Answers 429 to the audit's and the probes' requests (throttled by the account's
    /// rate limit, this run's traffic or anyone else's on the same key).
    pub throttled: u64,
    /// Answers 5xx to reads.
    pub server_errors: u64,
    /// Requests that found no connection or no answer in time.
    pub connection_failures: u64,
    /// Cases still unread after the retries: their rules are not run.
    pub unread: u64,
    /// The target could not be reached (after retries): what was seen. The rest of the
    /// phase sends nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

/// Cases checked and failed per rule, as a run goes.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    tallies: BTreeMap<&'static str, Tally>,
}

impl Findings {
    fn tally(&mut self, rule: &'static str) -> &mut Tally {
        debug_assert!(
            self::rule(rule).is_some(),
            "rule `{rule}` is not in the catalogue"
        );
        self.tallies.entry(rule).or_default()
    }

    pub fn pass(&mut self, rule: &'static str) {
        self.tally(rule).checked += 1;
    }

    pub fn fail(&mut self, rule: &'static str, case: Case) {
        let t = self.tally(rule);
        t.checked += 1;
        t.failed += 1;
        if t.examples.len() < EXAMPLES {
            t.examples.push(case);
        }
    }

    /// Records one case: a pass when `ok`, else a failure with the evidence `case` builds.
    pub fn check(&mut self, rule: &'static str, ok: bool, case: impl FnOnce() -> Case) {
        if ok {
            self.pass(rule);
        } else {
            self.fail(rule, case());
        }
    }

    /// A case the target did not let the harness read (a 429 or 5xx still there after the
    /// retries, a connection that failed): the rule is *not run*, never failed.
    pub fn unread(&mut self, rule: &'static str, why: impl Into<String>) {
        let t = self.tally(rule);
        t.unread += 1;
        if t.unread_why.is_none() {
            t.unread_why = Some(why.into());
        }
    }

    /// Cases of `rule` that could not be read.
    pub fn unread_count(&self, rule: &str) -> u64 {
        self.tallies.get(rule).map_or(0, |t| t.unread)
    }

    /// Explains a rule's result (e.g. why it could not be exercised).
    pub fn note(&mut self, rule: &'static str, note: impl Into<String>) {
        self.tally(rule).note = Some(note.into());
    }

    /// Adds to a rule's note (once per distinct text), e.g. which of the accepted status
    /// codes a target answered.
    pub fn add_note(&mut self, rule: &'static str, note: impl Into<String>) {
        let note = note.into();
        let t = self.tally(rule);
        match &mut t.note {
            Some(n) if n.split("; ").any(|x| x == note) => {}
            Some(n) => {
                n.push_str("; ");
                n.push_str(&note);
            }
            None => t.note = Some(note),
        }
    }

    pub fn merge(&mut self, other: Findings) {
        for (rule, t) in other.tallies {
            let mine = self.tally(rule);
            mine.checked += t.checked;
            mine.failed += t.failed;
            mine.unread += t.unread;
            if mine.unread_why.is_none() {
                mine.unread_why = t.unread_why;
            }
            let room = EXAMPLES.saturating_sub(mine.examples.len());
            mine.examples.extend(t.examples.into_iter().take(room));
            if t.note.is_some() {
                mine.note = t.note;
            }
        }
    }

    pub fn failed(&self, rule: &str) -> u64 {
        self.tallies.get(rule).map_or(0, |t| t.failed)
    }

    pub fn checked(&self, rule: &str) -> u64 {
        self.tallies.get(rule).map_or(0, |t| t.checked)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    Passed,
    Failed,
    /// Nothing exercised the rule in this run (see the note).
    NotRun,
    /// The rule is about another API version than the run's (e.g. a 2025-only rule on a
    /// 2026 run): listed so the catalogue reads whole, never counted as run or not run.
    NotApplicable,
}

impl RuleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Passed => "passed",
            RuleStatus::Failed => "failed",
            RuleStatus::NotRun => "not_run",
            RuleStatus::NotApplicable => "not_applicable",
        }
    }
}

/// A rule's result in the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuleResult {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub doc: String,
    /// Where the expectation comes from (absent in reports written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub basis: String,
    pub status: RuleStatus,
    pub checked: u64,
    pub failed: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Case>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl RuleResult {
    /// Does this result fail the run?
    pub fn fails_run(&self) -> bool {
        self.status == RuleStatus::Failed && self.severity == Severity::Error
    }
}

/// Which rules a scenario runs, and how it adjusts them.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Rule ids or families; empty means all.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub severity: BTreeMap<String, Severity>,
}

impl Selection {
    pub fn selects(&self, rule: &Rule) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| matches(p, rule)))
            && !self.exclude.iter().any(|p| matches(p, rule))
    }
}

/// The results of the selected rules that apply to `version`, failures first.
pub fn results(findings: &Findings, selection: &Selection, version: ApiVersion) -> Vec<RuleResult> {
    let mut out: Vec<RuleResult> = catalogue()
        .filter(|r| selection.selects(r))
        .map(|r| {
            let judged = |status, t: Tally, note| RuleResult {
                id: r.id.into(),
                title: r.title.into(),
                severity: selection.severity.get(r.id).copied().unwrap_or(r.severity),
                doc: r.doc.into(),
                provenance: Some(r.provenance),
                basis: r.basis.into(),
                status,
                checked: t.checked,
                failed: t.failed,
                examples: t.examples,
                note,
            };
            if !r.applies_to(version) {
                let note = format!("not applicable to API {}", version.as_str());
                return judged(RuleStatus::NotApplicable, Tally::default(), Some(note));
            }
            let t = findings.tallies.get(r.id).cloned().unwrap_or_default();
            // A rule with a case the target would not let us read is not run: what
            // was read passed, but the rule was not checked whole.
            let status = if t.failed > 0 {
                RuleStatus::Failed
            } else if t.unread > 0 || t.checked == 0 {
                RuleStatus::NotRun
            } else {
                RuleStatus::Passed
            };
            let note = match (t.unread, &t.unread_why) {
                (n @ 1.., Some(why)) if t.failed == 0 => Some(format!(
                    "not run: {n} case(s) could not be read ({why}); {} read and passed{}",
                    t.checked,
                    t.note.as_ref().map_or(String::new(), |x| format!("; {x}"))
                )),
                _ => t.note.clone(),
            };
            let note = note.or_else(|| {
                (status == RuleStatus::NotRun).then(|| "nothing in this run exercised it".into())
            });
            judged(status, t, note)
        })
        .collect();
    out.sort_by_key(|r| match r.status {
        RuleStatus::Failed => 0,
        RuleStatus::NotRun => 2,
        RuleStatus::Passed => 1,
        RuleStatus::NotApplicable => 3,
    });
    out
}

/// The selected rules for `version`, every one not run for the reason `why`: a run that
/// did not finish judges nothing, and says so rule by rule.
pub fn not_run(selection: &Selection, version: ApiVersion, why: &str) -> Vec<RuleResult> {
    results(&Findings::default(), selection, version)
        .into_iter()
        .map(|mut r| {
            if r.status == RuleStatus::NotRun {
                r.note = Some(why.to_string());
            }
            r
        })
        .collect()
}

/// Shortens a JSON value or text for evidence.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 240;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

pub fn json_excerpt(v: &serde_json::Value) -> String {
    excerpt(&v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_dotted_and_in_their_family_file() {
        let mut seen = HashSet::new();
        for r in catalogue() {
            assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
            assert!(r.id.contains('.'), "{} has no family", r.id);
            assert!(r.doc.starts_with("https://docs.extend.ai/"), "{}", r.id);
            assert!(!r.title.is_empty());
        }
        for (family, rules) in [
            ("batch", batch::RULES),
            ("auth", auth::RULES),
            ("version", version::RULES),
            ("error", error::RULES),
            ("runs", runs::RULES),
            ("list", list::RULES),
            ("webhook", webhook::RULES),
        ] {
            assert!(rules.iter().all(|r| r.family() == family), "{family}");
        }
    }

    #[test]
    fn selection_by_id_family_and_wildcard() {
        let r = rule("runs.metadata").unwrap();
        let sel = |inc: &[&str], exc: &[&str]| Selection {
            include: inc.iter().map(|s| s.to_string()).collect(),
            exclude: exc.iter().map(|s| s.to_string()).collect(),
            ..Selection::default()
        };
        assert!(sel(&[], &[]).selects(r));
        assert!(sel(&["runs"], &[]).selects(r));
        assert!(sel(&["runs.*"], &[]).selects(r));
        assert!(!sel(&["batch"], &[]).selects(r));
        assert!(!sel(&["runs"], &["runs.metadata"]).selects(r));
        assert!(!is_known_pattern("runz"));
    }

    #[test]
    fn a_rule_nothing_exercised_is_not_run_and_failures_come_first() {
        let mut f = Findings::default();
        f.pass("batch.accepted");
        f.fail(
            "runs.count",
            Case::new("20 runs", "19 runs").batch("batch_1"),
        );
        let res = results(&f, &Selection::default(), ApiVersion::V2026_02_09);
        assert_eq!(res[0].id, "runs.count");
        assert!(res[0].fails_run());
        let accepted = res.iter().find(|r| r.id == "batch.accepted").unwrap();
        assert_eq!(accepted.status, RuleStatus::Passed);
        let sig = res.iter().find(|r| r.id == "webhook.signature").unwrap();
        assert_eq!(sig.status, RuleStatus::NotRun);
    }
}
