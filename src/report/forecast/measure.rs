//! What the sample measured, before any resampling: its batches in acceptance order, the
//! gaps that give the acceptance and completion paces, and each run's residual — how long
//! after its turn in the pipeline (at the measured pace) its result arrived.

use super::schedule::serve;
use super::{ForecastError, SampleBatch};

pub(super) struct Measured {
    /// The sample's batches with results, in acceptance order, completions sorted.
    pub batches: Vec<SampleBatch>,
    pub runs: u64,
    pub terminal: u64,
    /// (runs of the later batch, seconds) between consecutive acceptances.
    pub accept_gaps: Vec<(f64, f64)>,
    /// (runs of the batch completing, seconds) between batches' median completions.
    pub done_gaps: Vec<(f64, f64)>,
    pub accept_pace: f64,
    pub done_pace: f64,
    /// The sample's first intended submit.
    pub first: f64,
    /// Mean seconds from a batch's intended submit to its acceptance.
    pub answer_s: f64,
    /// Per batch: each run's result after its turn in the pipeline, seconds.
    pub residuals: Vec<Vec<f64>>,
    /// Per batch: how far past its turn's end its last result arrived.
    pub tails: Vec<f64>,
    /// The median of every run's residual.
    pub median_residual: f64,
}

/// Runs per second over `(runs, seconds)` pairs.
pub(super) fn pace_of(pairs: &mut dyn Iterator<Item = (f64, f64)>) -> f64 {
    let (n, t) = pairs.fold((0.0, 0.0), |(n, t), (a, b)| (n + a, t + b));
    if t > 0.0 { n / t } else { f64::INFINITY }
}

pub(super) fn measure(sample: &[SampleBatch]) -> Result<Measured, ForecastError> {
    let mut batches: Vec<SampleBatch> = sample
        .iter()
        .filter(|b| b.runs > 0 && !b.done_s.is_empty())
        .cloned()
        .collect();
    if batches.len() < 3 {
        return Err(ForecastError::TooFewBatches(batches.len()));
    }
    batches.sort_by(|a, b| a.accepted_s.total_cmp(&b.accepted_s));
    for b in &mut batches {
        b.done_s.sort_by(f64::total_cmp);
    }
    let accept_gaps: Vec<(f64, f64)> = batches
        .windows(2)
        .map(|w| (w[1].runs as f64, w[1].accepted_s - w[0].accepted_s))
        .collect();
    let mut medians: Vec<(f64, f64)> = batches
        .iter()
        .map(|b| (b.done_s[b.done_s.len() / 2], b.runs as f64))
        .collect();
    medians.sort_by(|a, b| a.0.total_cmp(&b.0));
    let done_gaps: Vec<(f64, f64)> = medians
        .windows(2)
        .map(|w| (w[1].1, w[1].0 - w[0].0))
        .collect();
    let accept_pace = pace_of(&mut accept_gaps.iter().copied());
    let done_pace = pace_of(&mut done_gaps.iter().copied());
    // The sample's own batches through the pipeline at its completion pace: what is left
    // of each result's time is the run's own processing.
    let accepted: Vec<f64> = batches.iter().map(|b| b.accepted_s).collect();
    let served = serve(&accepted, |i| batches[i].runs as f64, done_pace);
    let residuals: Vec<Vec<f64>> = batches
        .iter()
        .zip(&served.start)
        .map(|(b, s)| {
            let n = b.done_s.len() as f64;
            let spread = b.runs as f64 / n;
            b.done_s
                .iter()
                .enumerate()
                .map(|(i, t)| t - (s + (i as f64 + 0.5) * spread / done_pace))
                .collect()
        })
        .collect();
    let tails = batches
        .iter()
        .zip(&served.end)
        .map(|(b, end)| b.done_s[b.done_s.len() - 1] - end)
        .collect();
    let first = batches
        .iter()
        .map(|b| b.intended_s)
        .fold(f64::INFINITY, f64::min);
    let answer_s = batches
        .iter()
        .map(|b| (b.accepted_s - b.intended_s).max(0.0))
        .sum::<f64>()
        / batches.len() as f64;
    let mut all: Vec<f64> = residuals.iter().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let median_residual = all[all.len() / 2];
    Ok(Measured {
        median_residual,
        runs: batches.iter().map(|b| b.runs as u64).sum(),
        terminal: batches.iter().map(|b| b.done_s.len() as u64).sum(),
        batches,
        accept_gaps,
        done_gaps,
        accept_pace,
        done_pace,
        first,
        answer_s,
        residuals,
        tails,
    })
}
