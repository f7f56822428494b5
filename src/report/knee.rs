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
    /// The optimistic bound of `finished_files_per_s` (one-sided 90 %): a step breaks
    /// on processing only when even this falls short.
    #[serde(default)]
    pub finished_files_per_s_high: f64,
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

impl Step {
    /// The step on one line, as the command prints it.
    pub fn line(&self) -> String {
        format!(
            "{:>10.3} batches/s  accepted {:>9.3}/s  finished {:>9.1} files/s  429s {:>5}  submit p99 {:>8.1} ms  {}",
            self.offered_per_s,
            self.accepted_per_s,
            self.finished_files_per_s,
            self.throttles,
            self.submit_p99_ms,
            if self.held {
                "held".to_string()
            } else {
                format!("broke: {}", self.reasons.join("; "))
            }
        )
    }
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
    /// What the target sustained where it broke, the limit's own measure: accepted batch
    /// requests per second for a rate limit, finished files per second for processing
    /// (the median over the steps that broke on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_per_s: Option<f64>,
    /// Set when the target is the mock at a time scale: rates per real second are the
    /// figures divided by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
    pub method: String,
    /// Set when the search was stopped before it found its answer: then it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

impl Knee {
    /// The figures a planner reads first: held/broke rates in requests and files per
    /// second (per real second on a time-scaled mock), and the limit met.
    pub fn headline(&self) -> String {
        let ts = self.time_scale.unwrap_or(1.0);
        let n = self.inputs_per_batch as f64;
        let rate = |r: f64| {
            format!(
                "{} batch requests/s ({} files/min)",
                sig(r / ts),
                sig(r * n * 60.0 / ts)
            )
        };
        let real = if (ts - 1.0).abs() > f64::EPSILON {
            format!(" (per real second: the mock ran at time scale {ts})")
        } else {
            String::new()
        };
        let limit = self.limit.map_or("?", Limit::as_str);
        let capacity = match (self.limit, self.capacity_per_s) {
            (Some(Limit::RateLimit), Some(c)) => {
                format!("; sustained {} requests/s where it broke", sig(c / ts))
            }
            (Some(Limit::Processing), Some(c)) => {
                format!("; finished {} files/min where it broke", sig(c * 60.0 / ts))
            }
            _ => String::new(),
        };
        if let Some(why) = &self.interrupted {
            return format!(
                "no answer: the search was interrupted ({why}) after {} step(s)",
                self.steps.len()
            );
        }
        match (self.held_per_s, self.broke_per_s) {
            (Some(h), Some(b)) => format!(
                "held {}; broke at {} on {limit}{capacity}{real}",
                rate(h),
                rate(b)
            ),
            (Some(h), None) => format!("held {} and every rate up to the ceiling{real}", rate(h)),
            (None, Some(b)) => format!(
                "even the first rate broke: {} on {limit}; start lower{real}",
                rate(b)
            ),
            (None, None) => "no step ran".into(),
        }
    }
}

/// Four significant figures, without exponent: 0.1350, 13.50, 4500.
pub fn sig(v: f64) -> String {
    let digits = if v == 0.0 {
        0
    } else {
        (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize
    };
    format!("{v:.digits$}")
}

/// What the target sustained at the steps that broke on `limit`.
pub fn capacity(steps: &[Step], limit: Limit) -> Option<f64> {
    let mut v: Vec<f64> = steps
        .iter()
        .filter(|s| s.broke.first() == Some(&limit))
        .map(|s| match limit {
            Limit::Processing => s.finished_files_per_s,
            _ => s.accepted_per_s,
        })
        .collect();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// A step's figures from the report of the run that offered it.
pub fn step_of(report: &Report, offered_per_s: f64, inputs_per_batch: u64) -> Step {
    let submit = report.operations.get("submit");
    let collecting = !report.target.results_via.is_empty();
    let finished = if collecting {
        finished_rate(report, offered_per_s * inputs_per_batch as f64)
    } else {
        (0.0, 0.0)
    };
    Step {
        offered_per_s,
        accepted_per_s: report.throughput.batches_per_s,
        offered_files_per_s: offered_per_s * inputs_per_batch as f64,
        finished_files_per_s: finished.0,
        finished_files_per_s_high: finished.1,
        throttles: report
            .batches
            .throttle_answers
            .max(report.batches.throttled),
        submit_p50_ms: submit.map_or(0.0, |s| s.response.p50_ms),
        submit_p99_ms: submit.map_or(0.0, |s| s.response.p99_ms),
        e2e_p95_ms: (collecting && report.e2e.count > 0).then_some(report.e2e.p95_ms),
        held: true,
        broke: Vec::new(),
        reasons: Vec::new(),
    }
}

/// Files finished per second in a step. When the target keeps up, each batch's median
/// run finishes a steady time after the batch was sent, so batches' median completions
/// advance one for one with their submits; when it falls behind, they advance faster by
/// the ratio of offered to finished. The least-squares slope over every batch reads that
/// ratio without the bias a completion-rate window has (the spread of processing times
/// stretches the window and reads as a slower rate).
///
/// Returns the estimate and its optimistic bound (one-sided 90 %, from the slope's
/// standard error): a step whose few batches read a little slow by chance is not a knee.
fn finished_rate(report: &Report, offered_files_per_s: f64) -> (f64, f64) {
    let points: Vec<(f64, f64)> = report
        .batches
        .list
        .iter()
        .filter(|b| b.completion_curve_ms.len() == 11)
        .map(|b| (b.intended_ms, b.intended_ms + b.completion_curve_ms[5]))
        .collect();
    // Too few batches for a slope: the plain rate of the step's own job.
    let plain = if report.throughput.finish_s > 0.0 {
        report.runs.seen as f64 / report.throughput.finish_s
    } else {
        0.0
    };
    if points.len() < 3 {
        return (plain, plain);
    }
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if sxx <= 0.0 || sxy <= 0.0 {
        return (plain, plain);
    }
    let slope = sxy / sxx;
    let residual: f64 = points
        .iter()
        .map(|(x, y)| {
            let e = y - (my + slope * (x - mx));
            e * e
        })
        .sum::<f64>()
        / (n - 2.0).max(1.0);
    let se = (residual / sxx).sqrt();
    (
        offered_files_per_s / slope.max(1e-9),
        offered_files_per_s / (slope - 1.2816 * se).max(1e-9),
    )
}
