//! The bulk-job forecast: what a small sample of a job, followed to its end, says about the
//! whole job, each figure with a 95 % interval.
//!
//! The intervals are prediction intervals for one run of the job, not only for the rates
//! behind it: each of the bootstrap's replicates resamples the sample's batches (the
//! uncertainty of what was measured) and then draws the job's own batches and its last
//! runs' tail from that resample (the job's own variation). Shares of statuses use Wilson
//! intervals, widened the same way. The model is the one `projection` states: a job runs
//! through submission and processing in a row, at the slower stage's pace.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::projection::Bound;

/// Replicates drawn: enough that the 2.5th and 97.5th percentiles move by well under a
/// percent between seeds, few enough to cost well under a second.
const REPLICATES: usize = 2000;
/// Ranks of the job at which a replicate places a run, for its latency percentiles.
const E2E_GRID: usize = 400;
/// The job's completion curve is drawn through these shares.
const CURVE_POINTS: usize = 20;
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
// long: one estimator, read top to bottom: the point figures, the replicates, the intervals.
pub fn forecast(
    job: &Job,
    sample: &[SampleBatch],
    seed: u64,
    time_scale: Option<f64>,
) -> Result<Forecast, ForecastError> {
    // The sample's batches in acceptance order, each with its completion times sorted.
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
    let k = batches.len();
    let runs: u64 = batches.iter().map(|b| b.runs as u64).sum();
    let terminal: u64 = batches.iter().map(|b| b.done_s.len() as u64).sum();
    let mut all: Vec<f64> = batches
        .iter()
        .flat_map(|b| b.done_s.iter().copied())
        .collect();
    all.sort_by(f64::total_cmp);
    let median_all = all[all.len() / 2];

    // Submission: the gaps between acceptances, each with the runs the later batch
    // carried. Processing: the gaps between batches' median completions, in the order
    // they completed, each with the runs of the batch completing.
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
    let pace_of = |pairs: &mut dyn Iterator<Item = (f64, f64)>| {
        let (n, t) = pairs.fold((0.0, 0.0), |(n, t), (a, b)| (n + a, t + b));
        if t > 0.0 { n / t } else { f64::INFINITY }
    };
    let accept0 = pace_of(&mut accept_gaps.iter().copied());
    let done0 = pace_of(&mut done_gaps.iter().copied());
    let pace0 = accept0.min(done0);
    let mut bound = if done0 < 0.9 * accept0 {
        Bound::Processing
    } else {
        Bound::OfferedLoad
    };
    // How far each batch's last run finishes beyond the batch's own share at the pace:
    // the tail of processing times a job's last batches add.
    let tails: Vec<f64> = batches
        .iter()
        .map(|b| {
            let med = b.done_s[b.done_s.len() / 2];
            (b.done_s[b.done_s.len() - 1] - med - b.runs as f64 / (2.0 * pace0)).max(0.0)
        })
        .collect();
    // Each run's lateness against the straight line the pace draws through the median.
    let residuals: Vec<f64> = all
        .iter()
        .enumerate()
        .map(|(i, t)| t - (median_all + (i as f64 - all.len() as f64 / 2.0) / pace0))
        .collect();
    let first_intended = batches
        .iter()
        .map(|b| b.intended_s)
        .fold(f64::INFINITY, f64::min);
    let avg_runs = runs as f64 / k as f64;
    let files = job.files as f64;
    // From a batch's submit to its runs finishing at the pace: the sample's median less
    // its runs' share at the pace (the answer, the first runs' processing).
    let head = (median_all - first_intended - runs as f64 / (2.0 * pace0)).max(0.0);
    let schedule = job.schedule_s.as_deref().filter(|s| !s.is_empty());
    // When the j-th batch of the job goes out: its schedule's time, unless the target
    // accepts batches more slowly than that.
    let submitted = |j: f64, batches_per_s: f64| {
        let paced = first_intended + j / batches_per_s;
        match schedule {
            Some(s) => paced.max(s[(j as usize).min(s.len() - 1)]),
            None => paced,
        }
    };

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut reps = Replicates::default();
    let mut pick = vec![0usize; k];
    let mut e2e = vec![0.0; E2E_GRID];
    for _ in 0..REPLICATES {
        for p in pick.iter_mut() {
            *p = rng.random_range(0..k);
        }
        let gaps = |v: &[(f64, f64)], rng: &mut ChaCha8Rng| {
            let mut it = (0..v.len()).map(|_| v[rng.random_range(0..v.len())]);
            pace_of(&mut it)
        };
        let accept = gaps(&accept_gaps, &mut rng);
        let done = gaps(&done_gaps, &mut rng);
        let runs_r: f64 = pick.iter().map(|&i| batches[i].runs as f64).sum();
        let avg = runs_r / k as f64;
        let batches_per_s = accept / avg;
        let pace = accept.min(done);
        // The job's last batches, each finishing its share at the pace plus a tail drawn
        // from the resample; the latest of them ends the job.
        let last = job.batches.clamp(1, 64) as usize;
        let tail = (0..last)
            .map(|j| tails[pick[rng.random_range(0..k)]] - j as f64 * avg / pace)
            .fold(0.0f64, f64::max);
        // The run at `rank` finishes where the pace puts it, or, when its batch went out
        // later than that (a job offered slowly), a head and its place in the batch after
        // its batch's submit.
        let finish = |rank: f64| {
            let j = (rank / avg)
                .floor()
                .min(job.batches.saturating_sub(1) as f64);
            let queued = median_all + (rank - runs as f64 / 2.0) / pace;
            let offered = submitted(j, batches_per_s) + head + (rank - j * avg) / done;
            queued.max(offered)
        };
        let submit = submitted(job.batches.saturating_sub(1) as f64, batches_per_s);
        let time = finish(files) + tail;
        reps.time.push(time);
        reps.submit.push(submit);
        reps.pace.push(pace);
        for (i, c) in reps.curve.iter_mut().enumerate() {
            let share = (i + 1) as f64 / CURVE_POINTS as f64;
            c.push(if i + 1 == CURVE_POINTS {
                time
            } else {
                finish(share * files).max(all[0])
            });
        }
        // Credits: the job's batches drawn from the resample, each at its credits per run.
        let credited: f64 = pick.iter().map(|&i| batches[i].credited as f64).sum();
        if credited > 0.0 {
            let mut total = 0.0;
            let mut left = files;
            while left > 0.0 {
                let b = &batches[pick[rng.random_range(0..k)]];
                let n = left.min(avg_runs);
                total += n * b.credits / f64::from(b.credited.max(1));
                left -= n;
            }
            reps.credits.push(total);
        }
        for (status, v) in reps.shares.iter_mut().enumerate() {
            let hits: f64 = pick
                .iter()
                .map(|&i| status_count(&batches[i], status))
                .sum();
            let seen: f64 = pick.iter().map(|&i| batches[i].done_s.len() as f64).sum();
            v.push(hits / seen.max(1.0));
        }
        // Runs placed at even ranks of the job: each finishes where the pace puts it,
        // late by a residual drawn from the sample, and was submitted with its batch.
        for (g, slot) in e2e.iter_mut().enumerate() {
            let rank = (g as f64 + 0.5) / E2E_GRID as f64 * files;
            let done_at = finish(rank) + residuals[rng.random_range(0..residuals.len())];
            let sent = submitted((rank / avg).floor(), batches_per_s);
            *slot = (done_at - sent).max(0.0);
        }
        e2e.sort_by(f64::total_cmp);
        for (p, v) in reps.e2e.iter_mut().zip([0.5, 0.95, 0.99]) {
            p.push(e2e[((E2E_GRID as f64 * v) as usize).min(E2E_GRID - 1)]);
        }
    }

    // A job whose own schedule is slower than the pace is paced by its schedule.
    if let Some(last) = schedule.and_then(|s| s.last())
        && files / pace0 < last - first_intended
    {
        bound = Bound::OfferedLoad;
    }
    let credits = if reps.credits.is_empty() {
        None
    } else {
        let credited: f64 = batches.iter().map(|b| b.credited as f64).sum();
        let per_run = batches.iter().map(|b| b.credits).sum::<f64>() / credited;
        Some(Interval {
            estimate: per_run * files,
            ..percentiles(&mut reps.credits)
        })
    };
    let shares = STATUSES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let hits: u64 = batches.iter().map(|b| status_count(b, i) as u64).sum();
            let share = wilson(hits, terminal, files, &reps.shares[i]);
            Share {
                status: name.to_string(),
                runs: hits,
                count: Interval {
                    estimate: share.estimate * files,
                    low: share.low * files,
                    high: share.high * files,
                },
                share,
            }
        })
        .collect();
    let mut e2e_s = Vec::new();
    for (name, v) in ["p50", "p95", "p99"].into_iter().zip(reps.e2e.iter_mut()) {
        e2e_s.push((name.to_string(), percentiles(v)));
    }
    let curve = reps
        .curve
        .iter_mut()
        .enumerate()
        .map(|(i, v)| CurvePoint {
            share: (i + 1) as f64 / CURVE_POINTS as f64,
            at_s: percentiles(v),
        })
        .collect();
    Ok(Forecast {
        files: job.files,
        batches: job.batches,
        sample_batches: k as u64,
        sample_runs: runs,
        sample_terminal: terminal,
        confidence: 0.95,
        replicates: REPLICATES as u64,
        time_s: percentiles(&mut reps.time),
        submit_s: percentiles(&mut reps.submit),
        pace_runs_per_s: percentiles(&mut reps.pace),
        bound,
        credits,
        shares,
        e2e_s,
        curve,
        time_scale,
        job_model: if schedule.is_some() { "open" } else { "closed" }.into(),
        assumptions: assumptions(k, (runs, terminal), job, bound, time_scale),
    })
}

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
    if let Some(c) = &f.credits {
        out.push_str(&format!(
            "\n  credits {:.0} [{:.0} – {:.0}]",
            c.estimate, c.low, c.high
        ));
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

const STATUSES: [&str; 3] = ["FAILED", "NEEDS_REVIEW", "REJECTED"];

fn status_count(b: &SampleBatch, status: usize) -> f64 {
    f64::from(match status {
        0 => b.failed,
        1 => b.needs_review,
        _ => b.rejected,
    })
}

#[derive(Default)]
struct Replicates {
    time: Vec<f64>,
    submit: Vec<f64>,
    pace: Vec<f64>,
    credits: Vec<f64>,
    shares: [Vec<f64>; 3],
    e2e: [Vec<f64>; 3],
    curve: [Vec<f64>; CURVE_POINTS],
}

/// The median and the central 95 % of the replicates.
fn percentiles(v: &mut [f64]) -> Interval {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Interval {
        estimate: at(0.5),
        low: at(0.025),
        high: at(0.975),
    }
}

/// A Wilson interval for the share of the job's `files` runs that end as `hits` of the
/// sample's `seen` did. It predicts the job's own share, not only the rate behind it: the
/// effective size is 1 / (1/seen + 1/files). When the batches differ more than
/// independent runs would (the bootstrap's variance over the binomial one, the design
/// effect), the size shrinks by that factor.
fn wilson(hits: u64, seen: u64, files: f64, replicates: &[f64]) -> Interval {
    let p = hits as f64 / seen.max(1) as f64;
    let mean = replicates.iter().sum::<f64>() / replicates.len().max(1) as f64;
    let var = replicates.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
        / replicates.len().saturating_sub(1).max(1) as f64;
    let binomial = p * (1.0 - p) / seen.max(1) as f64;
    let design = if binomial > 0.0 {
        (var / binomial).max(1.0)
    } else {
        1.0
    };
    let n = 1.0 / (1.0 / seen.max(1) as f64 + 1.0 / files.max(1.0)) / design;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Interval {
        estimate: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    }
}

fn assumptions(
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
        "runs are processed in submission order within one priority, as the sample's were".into(),
        "NEEDS_REVIEW counts every run that went to review; REJECTED counts the runs reviews had rejected by the end of the sample, so it grows as the job's reviews conclude (people review at their own pace)".into(),
        format!(
            "intervals are 95 % prediction intervals for one run of the job: {REPLICATES} bootstrap replicates over the sample's batches; shares use Wilson intervals widened for the job's own variation and for batches that differ more than independent runs"
        ),
    ];
    if job.schedule_s.is_some() && bound == Bound::OfferedLoad {
        out.push("the job's schedule, not the target, sets its pace: its end-to-end percentiles are approximate, because the time from a batch's submit to its first results is read from a sample sent at capacity (in batchproof's calibration against the mock they read about 20 % low)".into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_published_interval() {
        // 10 of 100 with a job so large its own variation vanishes: the textbook
        // Wilson interval, 0.0552 – 0.1744.
        let i = wilson(10, 100, 1e12, &[]);
        assert!((i.low - 0.0552).abs() < 5e-4, "{i:?}");
        assert!((i.high - 0.1744).abs() < 5e-4, "{i:?}");
        // Zero of 100 still has an upper bound above zero.
        let z = wilson(0, 100, 1e12, &[]);
        assert_eq!(z.low, 0.0);
        assert!(z.high > 0.03 && z.high < 0.04, "{z:?}");
    }

    #[test]
    fn a_job_like_its_own_sample_doubles_the_variance() {
        let narrow = wilson(100, 1000, 1e12, &[]);
        let wide = wilson(100, 1000, 1000.0, &[]);
        let ratio = (wide.high - wide.low) / (narrow.high - narrow.low);
        assert!((ratio - 2f64.sqrt()).abs() < 0.05, "{ratio}");
    }

    /// A processing-bound sample: 10 batches of 100 accepted in the first second, runs
    /// finishing 100 a second in submission order, each 0–0.5 s late.
    fn processing_bound(seed: u64) -> Vec<SampleBatch> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..10)
            .map(|b| SampleBatch {
                runs: 100,
                intended_s: b as f64 * 0.1,
                accepted_s: b as f64 * 0.1 + 0.01,
                done_s: (0..100)
                    .map(|i| 1.0 + (b * 100 + i) as f64 / 100.0 + rng.random_range(0.0..0.5))
                    .collect(),
                failed: 5,
                needs_review: 10,
                rejected: 0,
                credits: 300.0,
                credited: 100,
            })
            .collect()
    }

    #[test]
    fn a_processing_bound_sample_projects_at_its_completion_pace() {
        let f = forecast(
            &Job {
                files: 10_000,
                batches: 100,
                schedule_s: None,
            },
            &processing_bound(1),
            7,
            None,
        )
        .unwrap();
        assert_eq!(f.bound, Bound::Processing);
        // 10,000 runs at 100/s after a 1 s head: about 101 s, plus a tail under 0.5 s.
        assert!(f.time_s.contains(101.3), "{:?}", f.time_s);
        assert!(f.time_s.high - f.time_s.low < 10.0, "{:?}", f.time_s);
        let credits = f.credits.unwrap();
        assert!((credits.estimate - 30_000.0).abs() < 1e-6, "{credits:?}");
        let failed = &f.shares[0];
        assert_eq!(failed.status, "FAILED");
        assert!(failed.share.contains(0.05) && failed.share.low > 0.0);
        assert!(
            f.curve
                .windows(2)
                .all(|w| w[0].at_s.estimate <= w[1].at_s.estimate)
        );
        let p50 = &f.e2e_s[0].1;
        assert!(p50.estimate > 40.0 && p50.estimate < 60.0, "{p50:?}");
    }

    #[test]
    fn a_job_offered_slower_than_the_pace_follows_its_schedule() {
        // The target finishes 100 runs/s, but the job sends one batch of 100 every 2 s:
        // its last batch goes out at 198 s and is done about a second later.
        let job = Job {
            files: 10_000,
            batches: 100,
            schedule_s: Some((0..100).map(|j| j as f64 * 2.0).collect()),
        };
        let f = forecast(&job, &processing_bound(4), 3, None).unwrap();
        assert_eq!(f.bound, Bound::OfferedLoad);
        assert!(
            f.time_s.low > 198.0 && f.time_s.high < 202.0,
            "{:?}",
            f.time_s
        );
        assert!(
            (f.submit_s.estimate - 198.0).abs() < 1e-6,
            "{:?}",
            f.submit_s
        );
        // Each run waits for its own batch only: end to end stays near the sample's.
        let p50 = &f.e2e_s[0].1;
        assert!(p50.estimate < 5.0, "{p50:?}");
    }

    #[test]
    fn runs_without_a_result_are_stated() {
        let mut sample = processing_bound(2);
        sample[4].done_s.truncate(60);
        let job = Job {
            files: 10_000,
            batches: 100,
            schedule_s: None,
        };
        let f = forecast(&job, &sample, 1, None).unwrap();
        assert_eq!(f.sample_terminal, 960);
        assert!(
            f.assumptions
                .iter()
                .any(|a| a.starts_with("40 of the sample's runs had no result")),
            "{:?}",
            f.assumptions
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_forecast() {
        let job = Job {
            files: 5_000,
            batches: 50,
            schedule_s: None,
        };
        let a = forecast(&job, &processing_bound(3), 11, None).unwrap();
        let b = forecast(&job, &processing_bound(3), 11, None).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn too_small_a_sample_is_refused_with_the_fix() {
        let e = forecast(
            &Job {
                files: 1,
                batches: 1,
                schedule_s: None,
            },
            &processing_bound(1)[..2],
            1,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--sample"), "{e}");
    }
}
