//! The bulk-job forecast: what a small sample of a job, followed to its end, says about the
//! whole job, each figure with a 95 % interval.
//!
//! The intervals are prediction intervals for one run of the job, not only for the rates
//! behind it. Layout, in the order the estimate is made:
//!
//! - `measure`: what the sample measured — its paces and each run's residual, the time
//!   its result took after its turn in the processing pipeline;
//! - `schedule`: the job's schedule as it is (an open job's ramps and gaps, a closed
//!   job's acceptance pace) feeding one pipeline that runs at the measured pace and sits
//!   idle when the schedule leaves it nothing;
//! - `bootstrap`: the replicates — resample the sample's batches, refit the paces, run the
//!   job's batches through the schedule model, draw residuals and tails — and the
//!   widening a sample of few batches needs;
//! - `shares`: the statuses' shares, Wilson intervals widened the same way;
//! - `render`: the headline and the assumptions, in words.

mod bootstrap;
mod measure;
mod render;
mod schedule;
mod shares;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use super::projection::Bound;
pub use render::{headline, human, with_real};

/// The job's completion curve is drawn through these shares.
const CURVE_POINTS: usize = 20;
/// An open job's end-to-end interval reaches at least this far around its estimate.
const E2E_MARGIN: (f64, f64) = (0.9, 1.3);
/// Two-sided 95 %.
const Z95: f64 = 1.959_963_984_540_054;

/// What the forecast asks for: the job's size and, for an open-model job, its schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub files: u64,
    /// Batches the whole job takes.
    pub batches: u64,
    /// When the job's own schedule sends each batch (seconds after its start; open model):
    /// a job offered more slowly than the target can take it is paced by its schedule.
    /// None: the job sends as fast as the target answers (closed model).
    pub schedule_s: Option<Vec<f64>>,
}

/// One accepted batch of the sample, as the run saw it.
#[derive(Debug, Clone, Default)]
pub struct SampleBatch {
    pub runs: u32,
    /// Intended submit and acceptance, seconds after the run's first intended submit.
    pub intended_s: f64,
    pub accepted_s: f64,
    /// When each run was first seen terminal (same clock), in any order.
    pub done_s: Vec<f64>,
    pub failed: u32,
    /// Runs that went to NEEDS_REVIEW, reviewed since or not.
    pub needs_review: u32,
    /// Runs REJECTED by the end of the run (by a review that concluded in time).
    pub rejected: u32,
    pub credits: f64,
    /// Runs whose `usage` reported credits.
    pub credited: u32,
}

/// An estimate and its 95 % interval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, v: f64) -> bool {
        self.low <= v && v <= self.high
    }
}

/// A status's share of the job's runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Share {
    pub status: String,
    /// Runs of the sample that ended so.
    pub runs: u64,
    pub share: Interval,
    /// Runs of the job expected to end so.
    pub count: Interval,
}

/// One point of the projected completion curve: when `share` of the job's runs are
/// terminal.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CurvePoint {
    pub share: f64,
    pub at_s: Interval,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Forecast {
    pub files: u64,
    pub batches: u64,
    pub sample_batches: u64,
    pub sample_runs: u64,
    /// Runs of the sample seen terminal: the forecast rests on these.
    pub sample_terminal: u64,
    pub confidence: f64,
    pub replicates: u64,
    /// Seconds from the first submit until every run of the job is terminal.
    pub time_s: Interval,
    /// Seconds to submit every batch at the measured acceptance rate.
    pub submit_s: Interval,
    /// Runs finished per second at the slower stage's pace.
    pub pace_runs_per_s: Interval,
    /// Which stage set the sample's pace.
    pub bound: Bound,
    /// Credits the job will use (None: the target reported no usage).
    pub credits: Option<Interval>,
    /// Where those credits come from (the target's usage, the mock's simulated price, a
    /// calibrated account); absent in forecasts written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_source: Option<crate::report::CreditsSource>,
    pub shares: Vec<Share>,
    /// End-to-end latency percentiles of the job's runs (submit to result), seconds.
    pub e2e_s: Vec<(String, Interval)>,
    pub curve: Vec<CurvePoint>,
    /// Set when the target is the mock at a time scale: real times are this many times
    /// the figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
    /// How the job is sent: "open" (on its schedule) or "closed"; the sample may differ.
    #[serde(default)]
    pub job_model: String,
    pub assumptions: Vec<String>,
}

/// What cannot be forecast from a sample, said so a user can fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error(
        "the sample has {0} accepted batch(es) with results; a forecast needs at least 3 to measure how batches vary\n  fix: send a larger sample (--sample)"
    )]
    TooFewBatches(usize),
}

/// The forecast for `job` from the sample's batches. `seed` makes it repeatable.
pub fn forecast(
    job: &Job,
    sample: &[SampleBatch],
    seed: u64,
    time_scale: Option<f64>,
) -> Result<Forecast, ForecastError> {
    let m = measure::measure(sample)?;
    let k = m.batches.len();
    let files = job.files as f64;
    let mut reps = bootstrap::replicate(job, &m, seed);
    let (bound, idle_s) = bound(job, &m);
    let mut assumptions = render::assumptions(k, (m.runs, m.terminal), job, bound, time_scale);
    if idle_s > 0.0 && job.schedule_s.is_some() {
        assumptions.push(format!(
            "the job's schedule leaves processing idle for about {} in all (gaps, a slow start), modelled as idle time",
            with_real(idle_s, time_scale)
        ));
    }
    // A bootstrap over few batches reads too narrow; shares carry their own widening.
    let wide = bootstrap::few_batches_factor(k);
    let spread = |v: &mut Vec<f64>| bootstrap::percentiles(v).widened(wide);
    let credits = if reps.credits.is_empty() {
        None
    } else {
        let credited: f64 = m.batches.iter().map(|b| b.credited as f64).sum();
        let per_run = m.batches.iter().map(|b| b.credits).sum::<f64>() / credited;
        Some(Interval {
            estimate: per_run * files,
            ..spread(&mut reps.credits)
        })
    };
    // The pipeline is fluid: the target's own queueing under partial load, which a
    // sample sent at capacity cannot show, is not in it. An open job's latencies get a
    // margin for that (batchproof's calibration against the mock: up to ~20 % low).
    let margin = |i: Interval| match job.schedule_s {
        Some(_) => Interval {
            low: i.low.min(i.estimate * E2E_MARGIN.0),
            high: i.high.max(i.estimate * E2E_MARGIN.1),
            ..i
        },
        None => i,
    };
    let e2e_s = ["p50", "p95", "p99"]
        .into_iter()
        .zip(reps.e2e.iter_mut())
        .map(|(name, v)| (name.to_string(), margin(spread(v))))
        .collect();
    let curve = reps
        .curve
        .iter_mut()
        .enumerate()
        .map(|(i, v)| CurvePoint {
            share: (i + 1) as f64 / CURVE_POINTS as f64,
            at_s: spread(v),
        })
        .collect();
    Ok(Forecast {
        files: job.files,
        batches: job.batches,
        sample_batches: k as u64,
        sample_runs: m.runs,
        sample_terminal: m.terminal,
        confidence: 0.95,
        replicates: bootstrap::REPLICATES as u64,
        time_s: spread(&mut reps.time),
        submit_s: spread(&mut reps.submit),
        pace_runs_per_s: spread(&mut reps.pace),
        bound,
        credits,
        credits_source: None,
        shares: shares::shares(&m, files, &reps.shares),
        e2e_s,
        curve,
        time_scale,
        job_model: if job.schedule_s.is_some() {
            "open"
        } else {
            "closed"
        }
        .into(),
        assumptions,
    })
}

/// Which stage sets the job's end, judged on the point estimates: an open job whose
/// last batch finds the pipeline free is paced by its schedule, however busy the pipeline
/// was before; one whose last batch waits its turn, by processing. A closed job by the
/// slower of acceptance and processing.
fn bound(job: &Job, m: &measure::Measured) -> (Bound, f64) {
    let nb = job.batches.max(1) as usize;
    let per = job.files as f64 / nb as f64;
    let avg = m.runs as f64 / m.batches.len() as f64;
    let schedule = job.schedule_s.as_deref().filter(|s| !s.is_empty());
    let arrived = schedule::arrivals(nb, schedule, m.first, avg / m.accept_pace, m.answer_s);
    let served = schedule::serve(&arrived.accepted, |_| per, m.done_pace);
    let waited = served.start[nb - 1] - arrived.accepted[nb - 1];
    let processing = match schedule {
        Some(_) => waited > 0.5 * per / m.done_pace,
        None => m.done_pace < 0.9 * m.accept_pace,
    };
    let bound = if processing {
        Bound::Processing
    } else {
        Bound::OfferedLoad
    };
    (bound, served.idle_s)
}
