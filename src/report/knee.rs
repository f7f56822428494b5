//! The knee search's result: the highest offered rate that held a stated SLO, each step's
//! figures, and the first limit the target met. The search itself lives in `run::knee`;
//! this is what the report keeps of it.

use serde::{Deserialize, Serialize};

use super::Report;

/// What broke a step, in the order a planner meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Submissions met 429s: the plan's request rate.
    RateLimit,
    /// Runs finished slower than they were submitted: processing throughput.
    Processing,
    /// A latency threshold of the scenario failed.
    Latency,
    /// Another threshold of the scenario failed.
    Threshold,
    /// The harness could not send at the offered rate: the step says nothing of the target.
    Generator,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::RateLimit => "rate limit (429s)",
            Limit::Processing => "processing throughput",
            Limit::Latency => "latency",
            Limit::Threshold => "threshold",
            Limit::Generator => "generator saturated",
        }
    }
}

/// One step of the search: a rate held for a while and what the target did with it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    /// Batches per second offered (open model).
    pub offered_per_s: f64,
    /// Batches per second the target accepted.
    pub accepted_per_s: f64,
    /// Files per second offered, and finished (the steady completion rate; 0 when the
    /// step collected no results).
    pub offered_files_per_s: f64,
    pub finished_files_per_s: f64,
    pub throttles: u64,
    pub submit_p50_ms: f64,
    pub submit_p99_ms: f64,
    pub e2e_p95_ms: Option<f64>,
    pub held: bool,
    /// What broke, first first; empty when the step held.
    pub broke: Vec<Limit>,
    /// Why, in words (the failed conditions).
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Knee {
    /// The conditions every step was judged by.
    pub slo: Vec<String>,
    pub inputs_per_batch: u64,
    pub step_s: f64,
    /// Relative width at which the bisection stopped.
    pub precision: f64,
    /// Steps in the order they ran.
    pub steps: Vec<Step>,
    /// The highest offered rate that held (batches/s), None when even the first broke.
    pub held_per_s: Option<f64>,
    /// The lowest offered rate that broke, None when the search reached its ceiling.
    pub broke_per_s: Option<f64>,
    /// The first limit met at `broke_per_s`.
    pub limit: Option<Limit>,
    /// Set when the target is the mock at a time scale: rates per real second are the
    /// figures divided by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
    pub method: String,
}

impl Knee {
    /// The figures a planner reads first: held/broke rates in requests and files per
    /// second (per real second on a time-scaled mock), and the limit met.
    pub fn headline(&self) -> String {
        let ts = self.time_scale.unwrap_or(1.0);
        let n = self.inputs_per_batch as f64;
        let rate = |r: f64| {
            format!(
                "{:.2} batches/s ({:.1} files/min)",
                r / ts,
                r * n * 60.0 / ts
            )
        };
        match (self.held_per_s, self.broke_per_s) {
            (Some(h), Some(b)) => format!(
                "held {}; broke at {} on {}",
                rate(h),
                rate(b),
                self.limit.map_or("?", Limit::as_str)
            ),
            (Some(h), None) => format!("held {} and every rate up to the ceiling", rate(h)),
            (None, Some(b)) => format!(
                "even the first rate broke: {} on {}; start lower",
                rate(b),
                self.limit.map_or("?", Limit::as_str)
            ),
            (None, None) => "no step ran".into(),
        }
    }
}

/// A step's figures from the report of the run that offered it.
pub fn step_of(report: &Report, offered_per_s: f64, inputs_per_batch: u64) -> Step {
    let submit = report.operations.get("submit");
    let collecting = !report.target.results_via.is_empty();
    Step {
        offered_per_s,
        accepted_per_s: report.throughput.batches_per_s,
        offered_files_per_s: offered_per_s * inputs_per_batch as f64,
        finished_files_per_s: if collecting {
            report.throughput.steady_runs_per_s
        } else {
            0.0
        },
        throttles: report.http.throttles,
        submit_p50_ms: submit.map_or(0.0, |s| s.response.p50_ms),
        submit_p99_ms: submit.map_or(0.0, |s| s.response.p99_ms),
        e2e_p95_ms: (collecting && report.e2e.count > 0).then_some(report.e2e.p95_ms),
        held: true,
        broke: Vec::new(),
        reasons: Vec::new(),
    }
}
