//! The replicates: each resamples the sample's batches (the uncertainty of what was
//! measured), refits the acceptance and completion paces from the resample, then runs
//! the job's own batches through the schedule model and draws its runs' residuals and its
//! batches' tails from the resample (the job's own variation). The 2.5th and 97.5th
//! percentiles of the replicates bound each figure, widened for a sample of few batches.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::measure::{Measured, pace_of};
use super::schedule::{arrivals, serve};
use super::shares::status_count;
use super::{CURVE_POINTS, Interval, Job, Z95};

/// Replicates drawn: enough that the 2.5th and 97.5th percentiles move by well under a
/// percent between seeds, few enough to cost well under a second.
pub(super) const REPLICATES: usize = 2000;
/// Runs of the job a replicate places, at even ranks, for its latency percentiles.
const E2E_GRID: usize = 400;

#[derive(Default)]
pub(super) struct Replicates {
    pub time: Vec<f64>,
    pub submit: Vec<f64>,
    pub pace: Vec<f64>,
    pub credits: Vec<f64>,
    pub shares: [Vec<f64>; 3],
    pub e2e: [Vec<f64>; 3],
    pub curve: [Vec<f64>; CURVE_POINTS],
}

/// Every replicate of the job from the measured sample. `seed` makes it repeatable.
pub(super) fn replicate(job: &Job, m: &Measured, seed: u64) -> Replicates {
    let k = m.batches.len();
    let files = job.files as f64;
    let nb = job.batches.max(1) as usize;
    let per = files / nb as f64;
    let schedule = job.schedule_s.as_deref().filter(|s| !s.is_empty());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut reps = Replicates::default();
    let mut pick = vec![0usize; k];
    let mut e2e = vec![0.0; E2E_GRID];
    for _ in 0..REPLICATES {
        for p in pick.iter_mut() {
            *p = rng.random_range(0..k);
        }
        let accept = resampled_pace(&m.accept_gaps, &mut rng);
        let done = resampled_pace(&m.done_gaps, &mut rng);
        let avg = pick.iter().map(|&i| m.batches[i].runs as f64).sum::<f64>() / k as f64;
        let arrived = arrivals(nb, schedule, m.first, avg / accept, m.answer_s);
        let served = serve(&arrived.accepted, |_| per, done);
        // The job ends with the latest of its batches' last results: each batch's turn
        // ends where the pipeline puts it, its last result a tail drawn from the resample.
        let time = served
            .end
            .iter()
            .map(|e| e + m.tails[pick[rng.random_range(0..k)]])
            .fold(f64::NEG_INFINITY, f64::max);
        let submit = arrived.accepted[nb - 1] - m.answer_s;
        reps.time.push(time);
        reps.submit.push(submit);
        reps.pace
            .push(files / (served.end[nb - 1] - served.start[0]).max(1e-9));
        // The run at `rank` leaves the pipeline at its place in its batch's turn.
        let turn = |rank: f64| {
            let j = ((rank / per) as usize).min(nb - 1);
            (j, served.start[j] + (rank - j as f64 * per) / done)
        };
        let mut last = f64::NEG_INFINITY;
        for (i, c) in reps.curve.iter_mut().enumerate() {
            let share = (i + 1) as f64 / CURVE_POINTS as f64;
            let at = if i + 1 == CURVE_POINTS {
                time
            } else {
                turn(share * files).1 + m.median_residual
            };
            last = last.max(at).min(time);
            c.push(last);
        }
        credits(job, m, &pick, &mut rng, &mut reps);
        for (status, v) in reps.shares.iter_mut().enumerate() {
            let hits: f64 = pick
                .iter()
                .map(|&i| status_count(&m.batches[i], status))
                .sum();
            let seen: f64 = pick.iter().map(|&i| m.batches[i].done_s.len() as f64).sum();
            v.push(hits / seen.max(1.0));
        }
        // Runs at even ranks of the job: each leaves the pipeline at its turn, its result
        // a residual drawn from the resample later, timed from its batch's intended submit.
        for (g, slot) in e2e.iter_mut().enumerate() {
            let (j, at) = turn((g as f64 + 0.5) / E2E_GRID as f64 * files);
            let r = &m.residuals[pick[rng.random_range(0..k)]];
            *slot = (at + r[rng.random_range(0..r.len())] - arrived.intended[j]).max(0.0);
        }
        e2e.sort_by(f64::total_cmp);
        for (p, v) in reps.e2e.iter_mut().zip([0.5, 0.95, 0.99]) {
            p.push(e2e[((E2E_GRID as f64 * v) as usize).min(E2E_GRID - 1)]);
        }
    }
    reps
}

/// A pace refit from gaps drawn with replacement.
fn resampled_pace(v: &[(f64, f64)], rng: &mut ChaCha8Rng) -> f64 {
    let mut it = (0..v.len()).map(|_| v[rng.random_range(0..v.len())]);
    pace_of(&mut it)
}

/// Credits: the job's batches drawn from the resample, each at its credits per run.
fn credits(job: &Job, m: &Measured, pick: &[usize], rng: &mut ChaCha8Rng, reps: &mut Replicates) {
    let credited: f64 = pick.iter().map(|&i| m.batches[i].credited as f64).sum();
    if credited <= 0.0 {
        return;
    }
    let avg_runs = m.runs as f64 / m.batches.len() as f64;
    let mut total = 0.0;
    let mut left = job.files as f64;
    while left > 0.0 {
        let b = &m.batches[pick[rng.random_range(0..pick.len())]];
        let n = left.min(avg_runs);
        total += n * b.credits / f64::from(b.credited.max(1));
        left -= n;
    }
    reps.credits.push(total);
}

/// The median and the central 95 % of the replicates.
pub(super) fn percentiles(v: &mut [f64]) -> Interval {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Interval {
        estimate: at(0.5),
        low: at(0.025),
        high: at(0.975),
    }
}

/// How much wider than the bootstrap's percentiles an interval from `k` batches must be.
/// A bootstrap over few batches sees too little of their spread: Student's t over the
/// normal quantile, with the resample's k − 1 over k variance, is the textbook
/// correction (×2.7 at 3 batches, ×1.2 at 10, ×1.1 at 20).
pub(super) fn few_batches_factor(k: usize) -> f64 {
    let df = k.saturating_sub(1).max(1) as f64;
    let z = Z95;
    let t = if df < 3.0 {
        [12.706, 4.303][df as usize - 1]
    } else {
        // Cornish–Fisher expansion of t's 97.5th percentile: within 0.1 % from 3 df on.
        z + (z.powi(3) + z) / (4.0 * df)
            + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * df * df)
    };
    (k as f64 / df).sqrt() * t / z
}

impl Interval {
    /// The interval with each side `factor` times as far from the estimate.
    pub(super) fn widened(self, factor: f64) -> Interval {
        Interval {
            estimate: self.estimate,
            low: self.estimate - factor * (self.estimate - self.low),
            high: self.estimate + factor * (self.high - self.estimate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::few_batches_factor;

    #[test]
    fn few_batches_widen_the_interval() {
        assert!((few_batches_factor(3) - 2.69).abs() < 0.02);
        assert!((few_batches_factor(10) - 1.216).abs() < 0.01);
        assert!(few_batches_factor(1000) < 1.01);
    }
}
