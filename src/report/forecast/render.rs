//! The forecast in words: its headline, durations as a person reads them, and the
//! assumptions it rests on, said so a planner can check each.

use super::bootstrap::REPLICATES;
use super::{Forecast, Job};
use crate::report::projection::Bound;

/// The forecast in three lines: when, what it costs, how many need attention.
pub fn headline(f: &Forecast) -> String {
    let time = |s: f64| with_real(s, f.time_scale);
    let mut out = format!(
        "forecast for {} files ({} batches) from {} sampled batches ({} runs), 95 % intervals:\n  every run terminal after {} [{} – {}]",
        f.files,
        f.batches,
        f.sample_batches,
        f.sample_runs,
        time(f.time_s.estimate),
        time(f.time_s.low),
        time(f.time_s.high)
    );
    match (&f.credits, &f.credits_source) {
        (Some(c), source) => out.push_str(&format!(
            "\n  credits {:.0} [{:.0} – {:.0}]{}",
            c.estimate,
            c.low,
            c.high,
            source
                .as_ref()
                .map_or(String::new(), |s| format!(" — {}", s.describe()))
        )),
        (None, _) => {
            out.push_str("\n  credits not reported by the target (its runs carry no usage)")
        }
    }
    for s in &f.shares {
        out.push_str(&format!(
            "\n  {} {:.2} % [{:.2} – {:.2} %], about {:.0} runs",
            s.status,
            s.share.estimate * 100.0,
            s.share.low * 100.0,
            s.share.high * 100.0,
            s.count.estimate
        ));
    }
    out
}

/// A duration with its real-time equivalent under a time scale.
pub fn with_real(s: f64, time_scale: Option<f64>) -> String {
    match time_scale.filter(|t| (t - 1.0).abs() > f64::EPSILON) {
        Some(t) => format!("{} (≈ {} real)", human(s), human(s * t)),
        None => human(s),
    }
}

/// Seconds as a person reads them: 42 s, 12.5 min, 3.2 h.
pub fn human(s: f64) -> String {
    if !s.is_finite() {
        "never".into()
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

pub(super) fn assumptions(
    k: usize,
    (runs, terminal): (u64, u64),
    job: &Job,
    bound: Bound,
    time_scale: Option<f64>,
) -> Vec<String> {
    let mut out = vec![
        format!(
            "the sample's {k} batches ({runs} runs), drawn evenly across the job's {} batches, represent the job: its files, their sizes and their outcomes",
            job.batches
        ),
        "the rates stay steady through the job: the target keeps the acceptance and completion pace the sample met, and its plan's limits stay as they were".into(),
        "nothing else uses the account meanwhile: other traffic shares the same limits and processing".into(),
        format!("the pace is the slower stage's: {}", bound.meaning()),
        match &job.schedule_s {
            Some(_) => "the job is sent on its scenario's open-model schedule (its batches at the schedule's times), and the sample was sent as fast as the target answered, to measure its capacity".into(),
            None => "the job is sent as the sample was, each batch as soon as the target answered the last (closed model)".into(),
        },
        "runs are processed in submission order within one priority, as the sample's were, by one pipeline at the pace the sample's completions kept: the job's batches enter it on the job's schedule (ramps, gaps and all), it sits idle when the schedule leaves it nothing, and each run's result comes its own processing time after its turn, drawn from the sample".into(),
        "NEEDS_REVIEW counts every run that went to review; REJECTED counts the runs reviews had rejected by the end of the sample, so it grows as the job's reviews conclude (people review at their own pace)".into(),
        format!(
            "intervals are 95 % prediction intervals for one run of the job: {REPLICATES} bootstrap replicates over the sample's batches; shares use Wilson intervals widened for the job's own variation and for batches that differ more than independent runs"
        ),
    ];
    if job.schedule_s.is_some() {
        out.push("an open job's end-to-end interval reaches at least 10 % below and 30 % above its estimate: the model does not see the target's own queueing under partial load, which the sample, sent at capacity, cannot show (in batchproof's calibration against the mock, end-to-end p95 read up to about 20 % low without this margin)".into());
    }
    if k < 10 {
        out.push(format!(
            "the sample has only {k} batches: the time, pace, credits and end-to-end intervals are widened ×{:.1} for how little of the batches' spread so few can show (10 or more batches give useful intervals)",
            super::bootstrap::few_batches_factor(k)
        ));
    }
    if terminal < runs {
        out.push(format!(
            "{} of the sample's runs had no result by the deadline: the forecast rests on the {terminal} that did, so it is optimistic about time and blind to what kept the others",
            runs - terminal
        ));
    }
    if let Some(ts) = time_scale
        && (ts - 1.0).abs() > f64::EPSILON
    {
        out.push(format!(
            "the target is the mock at time scale {ts}: real times are {ts}× these"
        ));
    }
    out
}
