//! The report of one run: a versioned, self-describing JSON document (schema in
//! `reports/README.md`) from which every other format is rendered. Each export format is
//! its own small file behind the `Format` trait.

pub mod charts;
pub mod compare;
pub mod console;
pub mod forecast;
pub mod html;
pub mod json;
pub mod junit;
pub mod knee;
pub mod markdown;
pub mod merge;
pub mod planning;
pub mod projection;
pub mod verdict;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checks::{RuleResult, RuleStatus};
use crate::metrics::{Latency, LatencySummary, OperationSummary, Second};
use crate::observe::{Anomalies, InvariantResult, MissingExample, WebhookCounts};
pub use crate::scenario::Shard;
pub use projection::{Bound, Projection};
pub use verdict::{BudgetStop, Expectations, PartialSet, Reason, Verdict};

pub const SCHEMA: &str = "batchproof.report/v1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema: String,
    /// False when the run was interrupted: figures cover only what happened before.
    pub complete: bool,
    pub interrupted: Option<String>,
    pub harness: Harness,
    pub scenario: ScenarioInfo,
    pub target: TargetInfo,
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    pub verdict: Verdict,
    pub generator: Generator,
    pub operations: BTreeMap<String, OperationSummary>,
    pub http: Http,
    pub batches: Batches,
    pub runs: Runs,
    pub webhooks: WebhookCounts,
    pub e2e: LatencySummary,
    pub throughput: Throughput,
    pub projection: Option<Projection>,
    /// The bulk-job forecast, when this run was its sample (`batchproof forecast`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<forecast::Forecast>,
    /// Why a sample gave no forecast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_error: Option<String>,
    /// The knee search this run ended, when it was one (`batchproof knee`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knee: Option<knee::Knee>,
    pub timeline: Vec<Second>,
    /// Contract rule results, failures first (empty when the scenario has no `checks:`).
    #[serde(default)]
    pub rules: Vec<RuleResult>,
    /// The accounting's own invariants, judged on every run. One that did not hold is a
    /// fault of the harness: the run fails with its own exit code.
    #[serde(default)]
    pub invariants: Vec<InvariantResult>,
    /// Memory of this process over the run (from the timeline's samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Set when the run was killed and finished by `batchproof resume`: what the resume
    /// read back and collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<String>,
    /// Which share of the scenario this run sent (`run --shard I/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The shard reports a merged report was made from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// Set on a merge of part of a shard set (`merge --partial`): never passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_set: Option<PartialSet>,
    /// In a sharded run, the shard that sent the conformance probes (shard 0 unless the
    /// scenario asks for every shard); a merged report keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes_shard: Option<Shard>,
    /// Set when the budget cut the load short: never passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_stop: Option<BudgetStop>,
    /// Set when the target could not be reached at some point of the run (a batch, the
    /// results' polling, the audit or a probe): what failed and where. Such a run is not
    /// complete, and the rules it could not read are not run, never failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
    /// What the target let the audit and the probes read: 429s and 5xx retried, cases
    /// left unread (their rules not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<crate::checks::Reads>,
    /// Phases that gave up at their bound (results.deadline, --max-duration, a read's
    /// retries), each said in a sentence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gave_up: Vec<String>,
}

/// Resident memory of the harness process (which includes the embedded mock when it is
/// the target), sampled once a second: does it plateau?
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    pub samples: u64,
    pub rss_start_mib: f64,
    pub rss_mid_mib: f64,
    pub rss_end_mib: f64,
    pub rss_max_mib: f64,
}

impl Resources {
    pub fn from_timeline(timeline: &[Second]) -> Option<Resources> {
        let rss: Vec<f64> = timeline
            .iter()
            .filter(|s| s.rss_kib > 0)
            .map(|s| s.rss_kib as f64 / 1024.0)
            .collect();
        if rss.is_empty() {
            return None;
        }
        Some(Resources {
            samples: rss.len() as u64,
            rss_start_mib: rss[0],
            rss_mid_mib: rss[rss.len() / 2],
            rss_end_mib: rss[rss.len() - 1],
            rss_max_mib: rss.iter().copied().fold(0.0, f64::max),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Harness {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    pub description: Option<String>,
    /// The scenario YAML exactly as it was run.
    pub text: String,
    pub seed: u64,
    pub model: String,
    /// What the scenario expects that would otherwise fail the run (`expect:`).
    #[serde(default)]
    pub expect: Expectations,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetInfo {
    /// `mock` (embedded) or `url`.
    pub kind: String,
    pub url: String,
    pub api_version: String,
    pub workflow_id: String,
    pub mock_profile: Option<String>,
    pub mock_time_scale: Option<f64>,
    pub results_via: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Generator {
    /// Schedule lag p99 exceeded `lag_bound_ms`: latency figures describe the generator
    /// as much as the target.
    pub saturated: bool,
    pub lag_p99_ms: f64,
    pub lag_bound_ms: f64,
    /// Batches scheduled but never sent (when interrupted, or killed and resumed).
    pub unsent_batches: u64,
    /// Which ones, by index, when known (a resumed job compares its whole schedule with
    /// what its journal shows sent); the first `UNSENT_LISTED` of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsent_indexes: Vec<u64>,
}

/// The most unsent batch indexes a report lists.
pub const UNSENT_LISTED: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Http {
    pub requests: u64,
    pub errors: u64,
    pub throttles: u64,
    /// The longest Retry-After any answer asked for (ms; 0 when none did).
    #[serde(default)]
    pub retry_after_max_ms: f64,
    pub outcomes: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchLine {
    pub index: u64,
    pub batch_id: Option<String>,
    pub inputs: u32,
    pub outcome: String,
    pub detail: Option<String>,
    pub intended_ms: f64,
    pub answered_ms: Option<f64>,
    pub throttles: u32,
    pub terminal: u32,
    pub completed_ms: Option<f64>,
    /// ms after the intended submit by which 0 %, 10 %, …, 100 % of the batch's inputs
    /// had a result (fewer points when not all did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completion_curve_ms: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Batches {
    pub scheduled: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub throttled: u64,
    pub possible_duplicates: u64,
    pub unreachable: u64,
    pub unanswered: u64,
    /// Rejected batches by HTTP status (401 and 403: the API key was refused).
    #[serde(default)]
    pub rejected_by_status: BTreeMap<String, u64>,
    /// 429 answers to the batch submissions themselves (retried or not), apart from any
    /// the polling drew.
    #[serde(default)]
    pub throttle_answers: u64,
    /// Submit (intended) → last run terminal, for batches whose runs all finished.
    pub completion: LatencySummary,
    /// Per-batch lines (the first 10,000).
    pub list: Vec<BatchLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Runs {
    /// Inputs in accepted batches.
    pub submitted: u64,
    pub seen: u64,
    pub missing: u64,
    /// Inputs in batches that were not accepted.
    pub rejected: u64,
    pub by_status: BTreeMap<String, u64>,
    /// Which channel saw each result: webhook_only, poll_only, both.
    pub by_channel: BTreeMap<String, u64>,
    pub anomalies: Anomalies,
    pub missing_examples: Vec<MissingExample>,
    /// Credits the runs reported in `usage.credits` (counted once per input), and how
    /// many runs reported them; both 0 when the target reports no usage.
    #[serde(default)]
    pub credits: f64,
    #[serde(default)]
    pub credited: u64,
    /// Runs seen NEEDS_REVIEW, whether reviewed since (then counted in `by_status` under
    /// their review's outcome) or not.
    #[serde(default)]
    pub needed_review: u64,
    /// Where the credits come from: the target's own usage, the mock's simulated price,
    /// or an account's history the mock was calibrated from. Absent in reports written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_source: Option<CreditsSource>,
}

/// Where a credits figure comes from: a figure without it reads like a price.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CreditsSource {
    /// The target's own `usage.credits` on its runs.
    Target,
    /// The mock's simulated price (credits per page, drawn by its profile): not a cost
    /// of any account.
    Simulated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
    },
    /// A mock profile calibrated from an account's run history (`batchproof calibrate`):
    /// that account's credits per run, as of the calibration.
    Calibrated { account: String, as_of: String },
}

impl CreditsSource {
    /// A few words a reader sees beside the figure.
    pub fn describe(&self) -> String {
        match self {
            CreditsSource::Target => "as the target's usage reports them".into(),
            CreditsSource::Simulated { .. } => {
                "SIMULATED by the mock's profile: not a real cost".into()
            }
            CreditsSource::Calibrated { account, as_of } => {
                format!("the account's, calibrated from {account} on {as_of}")
            }
        }
    }

    /// Is this a price an account would pay (the target's, or an account's history)?
    pub fn is_real(&self) -> bool {
        !matches!(self, CreditsSource::Simulated { .. })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Throughput {
    /// Accepted batches per second over the load phase.
    pub batches_per_s: f64,
    /// Runs seen terminal per second between the 10th and 90th percentile of completions.
    pub steady_runs_per_s: f64,
    pub steady_window_s: f64,
    /// From the first batch's intended submit to the last result seen: how long this
    /// run's job took (0 in reports written before batchproof measured it).
    #[serde(default)]
    pub finish_s: f64,
}

impl Report {
    /// This run is a forecast's sample: every figure outside the Forecast section
    /// describes the sample, the Forecast section the job, and each format says so.
    pub fn is_sample(&self) -> bool {
        self.forecast.is_some() || self.forecast_error.is_some()
    }

    /// The projection for a job of `project.files`, unless a forecast answers for the job:
    /// a sample's projection would be a second, contradicting answer (the sample is sent
    /// as fast as the target answers; an open job is not).
    pub fn job_projection(&self) -> Option<&Projection> {
        self.projection.as_ref().filter(|_| !self.is_sample())
    }

    /// The scenario's load model, and for a sample the job's beside it.
    pub fn model_words(&self) -> String {
        match self.forecast.as_ref().map(|f| f.job_model.as_str()) {
            Some(job) if !job.is_empty() => {
                format!("{} (the sample's; the job is {job})", self.scenario.model)
            }
            _ => self.scenario.model.clone(),
        }
    }

    /// The mock's time scale when it is not 1: the mock then runs that many times faster
    /// than the API it stands for, and a planner wants each duration in real time too.
    pub fn time_scale(&self) -> Option<f64> {
        self.target
            .mock_time_scale
            .filter(|ts| ts.is_finite() && *ts > 0.0 && (ts - 1.0).abs() > f64::EPSILON)
    }

    /// The value of a threshold metric, in the metric's unit (ms, count, fraction, per s).
    pub fn metric(&self, name: &str) -> Option<f64> {
        // A count over runs that were never submitted is no data, not a zero: "0 missing"
        // of nothing is no evidence that nothing was lost.
        let about_runs = ["runs.", "e2e.", "webhooks.", "batch.", "throughput.runs"]
            .iter()
            .any(|p| name.starts_with(p));
        if about_runs && self.runs.submitted == 0 {
            return None;
        }
        let lat = |s: &LatencySummary, stat: &str| -> Option<f64> {
            if stat == "count" {
                return Some(s.count as f64);
            }
            if s.count == 0 {
                return None;
            }
            Some(match stat {
                "p50" => s.p50_ms,
                "p90" => s.p90_ms,
                "p95" => s.p95_ms,
                "p99" => s.p99_ms,
                "p999" => s.p999_ms,
                "max" => s.max_ms,
                "mean" => s.mean_ms,
                "min" => s.min_ms,
                _ => return None,
            })
        };
        let ratio = |a: u64, b: u64| {
            if b == 0 {
                Some(0.0)
            } else {
                Some(a as f64 / b as f64)
            }
        };
        match name {
            "runs.submitted" => Some(self.runs.submitted as f64),
            "runs.seen" => Some(self.runs.seen as f64),
            "runs.missing" => Some(self.runs.missing as f64),
            "runs.rejected" => Some(self.runs.rejected as f64),
            "runs.credits" => Some(self.runs.credits),
            "runs.failed" => Some(*self.runs.by_status.get("FAILED").unwrap_or(&0) as f64),
            "runs.failed.rate" => ratio(
                *self.runs.by_status.get("FAILED").unwrap_or(&0),
                self.runs.seen,
            ),
            "runs.duplicates" => Some(self.runs.anomalies.duplicates as f64),
            "runs.unknown" => Some(self.runs.anomalies.unknown as f64),
            "runs.foreign" => Some(self.runs.anomalies.foreign as f64),
            "runs.out_of_order" => Some(self.runs.anomalies.out_of_order as f64),
            "batches.rejected" => Some(self.batches.rejected as f64),
            "batches.possible_duplicates" => Some(self.batches.possible_duplicates as f64),
            "http.errors" => Some(self.http.errors as f64),
            "http.errors.rate" => ratio(self.http.errors, self.http.requests),
            "http.throttles" => Some(self.http.throttles as f64),
            "webhooks.rejected" => Some(self.webhooks.rejected.values().sum::<u64>() as f64),
            "webhooks.redeliveries" => Some(self.webhooks.redeliveries as f64),
            "throughput.batches" => Some(self.throughput.batches_per_s),
            "throughput.runs" => Some(self.throughput.steady_runs_per_s),
            "generator.saturated" => Some(if self.generator.saturated { 1.0 } else { 0.0 }),
            "rss.max" => self.resources.as_ref().map(|r| r.rss_max_mib),
            "rss.growth" => self
                .resources
                .as_ref()
                .filter(|r| r.rss_mid_mib > 0.0)
                .map(|r| r.rss_end_mib / r.rss_mid_mib),
            "rules.failed" => Some(
                self.rules
                    .iter()
                    .filter(|r| r.status == RuleStatus::Failed)
                    .count() as f64,
            ),
            "rules.not_run" => Some(
                self.rules
                    .iter()
                    .filter(|r| r.status == RuleStatus::NotRun)
                    .count() as f64,
            ),
            _ => {
                let (family, stat) = name.rsplit_once('.')?;
                let op = |k: &str| self.operations.get(k);
                let s = match family {
                    "submit" => &op("submit")?.response,
                    "submit.service" => &op("submit")?.service,
                    "submit.lag" => &op("submit")?.lag,
                    "list" => &op("list")?.response,
                    "get" => &op("get")?.response,
                    "e2e" => &self.e2e,
                    "batch" => &self.batches.completion,
                    _ => return None,
                };
                lat(s, stat)
            }
        }
    }

    /// The run's outcome in one word, as every format heads its report with it.
    pub fn outcome(&self) -> Outcome {
        if !self.complete {
            Outcome::Incomplete
        } else if self.harness_fault() {
            Outcome::HarnessFault
        } else if self.verdict.passed {
            Outcome::Passed
        } else {
            Outcome::Failed
        }
    }

    /// An invariant of the accounting did not hold: the figures cannot be trusted.
    pub fn harness_fault(&self) -> bool {
        self.invariants.iter().any(|i| !i.held)
    }

    pub fn histogram(summary: &LatencySummary) -> Option<Latency> {
        Latency::decode(&summary.hdr).ok()
    }
}

/// How a run ended, in the order the formats check it: interrupted first, then a fault of
/// the harness, then the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Incomplete,
    HarnessFault,
    Passed,
    Failed,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Incomplete => "INCOMPLETE",
            Outcome::HarnessFault => "HARNESS FAULT",
            Outcome::Passed => "PASSED",
            Outcome::Failed => "FAILED",
        }
    }
}

/// An export format: one small file each.
pub trait Format {
    fn extension(&self) -> &'static str;
    fn render(&self, report: &Report) -> anyhow::Result<String>;
}

/// The formats a run's folder holds: JSON, Markdown and HTML always, JUnit XML when the
/// run judged anything (contract rules or thresholds).
pub fn run_formats(judged: bool) -> Vec<&'static dyn Format> {
    let mut formats: Vec<&'static dyn Format> = vec![&json::Json, &markdown::Markdown, &html::Html];
    if judged {
        formats.push(&junit::JunitXml);
    }
    formats
}

/// Writes `report` in each format into `dir` as `report.<ext>`; returns the paths.
pub fn write_all(
    report: &Report,
    dir: &Path,
    formats: &[&dyn Format],
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for f in formats {
        let path = dir.join(format!("report.{}", f.extension()));
        // Write to a temporary name and rename, so an interrupted write never leaves a
        // truncated report behind.
        let tmp = dir.join(format!(".report.{}.tmp", f.extension()));
        let written = f
            .render(report)
            .and_then(|text| Ok(std::fs::write(&tmp, text)?))
            .and_then(|()| Ok(std::fs::rename(&tmp, &path)?));
        if let Err(e) = written {
            // Nothing half-written is left behind.
            let _ = std::fs::remove_file(&tmp);
            return Err(e.context(format!("writing {}", path.display())));
        }
        out.push(path);
    }
    Ok(out)
}

/// A duration in seconds as a reader wants it: "4.73m", and under a time scale also its
/// real-time equivalent, "4.73m (≈ 7.88h real)"; "never" when it is infinite.
pub fn span(secs: f64, time_scale: Option<f64>) -> String {
    if !secs.is_finite() {
        return "never (no rate measured)".into();
    }
    let d = |x: f64| crate::config::format_duration(std::time::Duration::from_secs_f64(x.max(0.0)));
    match time_scale {
        Some(ts) => format!("{} (≈ {} real)", d(secs), d(secs * ts)),
        None => d(secs),
    }
}

/// A rate per second under a time scale, in real time: the mock's 100 runs/s at time
/// scale 100 stand for 1 run/s.
pub fn real_rate(per_s: f64, time_scale: Option<f64>) -> String {
    // Slow real rates read better per minute or per hour than as 0.00/s.
    match time_scale {
        Some(ts) if per_s / ts >= 1.0 => format!(" (≈ {:.2}/s real)", per_s / ts),
        Some(ts) if per_s / ts * 60.0 >= 1.0 => format!(" (≈ {:.2}/min real)", per_s / ts * 60.0),
        Some(ts) => format!(" (≈ {:.2}/h real)", per_s / ts * 3600.0),
        None => String::new(),
    }
}

/// "1,234 credits (1.03 per run, from the usage of 1,200 runs)".
pub fn credits_line(runs: &Runs) -> String {
    if runs.credited == 0 {
        return "credits not reported by the target (its runs carry no usage)".into();
    }
    format!(
        "{:.1} credits ({:.2} per run, from the usage of {} runs){}",
        runs.credits,
        runs.credits / runs.credited.max(1) as f64,
        runs.credited,
        runs.credits_source
            .as_ref()
            .map_or(String::new(), |s| format!(" — {}", s.describe()))
    )
}
