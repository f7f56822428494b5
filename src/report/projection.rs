//! The capacity projection: what a run's own rates say about a job of a stated size, and
//! what set the run's pace, which decides whether the rates are a capacity or only the
//! load that was offered.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Projection {
    pub files: u64,
    pub batches_needed: u64,
    /// Time to submit every batch at the measured acceptance rate (null: never, no
    /// rate was measured).
    #[serde(deserialize_with = "null_is_never")]
    pub submit_s: f64,
    /// Time for every run to finish: the bottleneck stage's share of the job plus the
    /// fixed part this run took beyond its own share.
    #[serde(deserialize_with = "null_is_never")]
    pub complete_s: f64,
    /// The part of `complete_s` that does not grow with the job.
    #[serde(default)]
    pub fixed_s: f64,
    /// What set the pace of the run the projection scales from (absent in reports
    /// written before batchproof said).
    #[serde(default)]
    pub bound: Option<Bound>,
    pub assumptions: Vec<String>,
}

/// What set a run's pace, and so what a projection from it can claim.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The target fell behind the submissions: its completion rate is its capacity.
    Processing,
    /// Submissions met 429s: the acceptance rate is the plan's rate limit.
    RateLimit,
    /// The target kept up with what the run offered: its capacity was not reached.
    OfferedLoad,
}

impl Bound {
    /// What a planner may conclude, in one sentence.
    pub fn meaning(self) -> &'static str {
        match self {
            Bound::Processing => {
                "the target fell behind the submissions, so its completion rate here is its processing capacity"
            }
            Bound::RateLimit => {
                "submissions met rate limits, so the acceptance rate here is the plan's limit"
            }
            Bound::OfferedLoad => {
                "the target kept up with the load offered and was never saturated: the rates are the offered load, a lower bound on its capacity, and the projected time holds at this offered rate"
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bound::Processing => "processing",
            Bound::RateLimit => "rate limit",
            Bound::OfferedLoad => "offered load (target not saturated)",
        }
    }
}

/// JSON has no infinity: serde_json writes it as null, and null reads back as "never".
fn null_is_never<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// What a run measured that a projection scales from.
pub struct Sample {
    /// Runs created by accepted batches.
    pub runs: u64,
    pub batches: u64,
    /// Accepted batches per second (see `acceptance_rate`).
    pub batches_per_s: f64,
    /// Runs finished per second in the steady part of the run.
    pub steady_runs_per_s: f64,
    /// From the first batch's intended submit to the last result seen.
    pub finish_s: f64,
    /// Whether any submission met a 429.
    pub throttled: bool,
}

/// Completions at less than this share of the acceptance rate mean the target fell
/// behind: its processing, not the offered load, set the pace.
const FELL_BEHIND: f64 = 0.9;

/// What the run's own rates say about a job of `files` files.
///
/// A job runs through two stages in a row, submission (at the acceptance rate A) and
/// processing (at the completion rate C), so its length is the slower stage's share,
/// `files / min(A, C)`, plus a fixed part that does not grow with the job: the first
/// runs' wait before results flow and the last runs' processing after the queue drains.
/// The fixed part is what this run took beyond its own bottleneck share, so a projection
/// of this run's own size gives back its measured finish. (Adding the end-to-end latency
/// to `files / C` instead counts queueing twice, and can finish a job before it is
/// submitted.)
pub fn project(files: u64, m: &Sample, time_scale: Option<f64>) -> Projection {
    let avg = if m.batches > 0 {
        m.runs as f64 / m.batches as f64
    } else {
        0.0
    };
    let batches_needed = if avg > 0.0 {
        (files as f64 / avg).ceil() as u64
    } else {
        0
    };
    let accepted_runs_per_s = m.batches_per_s * avg;
    let bound = if m.throttled {
        Bound::RateLimit
    } else if m.steady_runs_per_s > 0.0 && m.steady_runs_per_s < FELL_BEHIND * accepted_runs_per_s {
        Bound::Processing
    } else {
        Bound::OfferedLoad
    };
    let pace = if m.steady_runs_per_s > 0.0 {
        accepted_runs_per_s.min(m.steady_runs_per_s)
    } else {
        0.0
    };
    // n batches go out over n − 1 intervals of the acceptance rate.
    let submit_s = if m.batches_per_s > 0.0 {
        batches_needed.saturating_sub(1) as f64 / m.batches_per_s
    } else {
        f64::INFINITY
    };
    let (complete_s, fixed_s) = if pace > 0.0 && submit_s.is_finite() {
        let fixed = m.finish_s - m.runs as f64 / pace;
        ((files as f64 / pace + fixed).max(submit_s), fixed)
    } else {
        (f64::INFINITY, 0.0)
    };
    Projection {
        files,
        batches_needed,
        submit_s,
        complete_s,
        fixed_s,
        bound: Some(bound),
        assumptions: assumptions(avg, m, bound, fixed_s, time_scale),
    }
}

/// The assumptions a projection rests on, in the words a planner reads.
fn assumptions(
    avg: f64,
    m: &Sample,
    bound: Bound,
    fixed_s: f64,
    time_scale: Option<f64>,
) -> Vec<String> {
    let mut out = vec![
        format!("batches of {avg:.0} inputs on average, as in this run"),
        format!(
            "batches accepted at {:.2}/s ({:.1} runs/s) and runs finished at {:.1}/s (the steady rate between the 10th and 90th percentile of completions), as measured here",
            m.batches_per_s,
            m.batches_per_s * avg,
            m.steady_runs_per_s
        ),
        format!(
            "a fixed {fixed_s:+.2} s on top of the slower stage's share that does not grow with the job: this run's own finish less its runs at that pace (the first results' wait and the last runs' processing, less the interval the last batch did not wait)"
        ),
        bound.meaning().to_string(),
        "the target's capacity is not shared with other traffic, and rate limits stay as they were during this run".to_string(),
    ];
    if let Some(ts) = time_scale
        && (ts - 1.0).abs() > f64::EPSILON
    {
        out.push(format!(
            "the target is the mock at time scale {ts}: it runs {ts}× faster than the API it stands for, so real times are {ts}× these"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(batches_per_s: f64, steady: f64, finish_s: f64) -> Sample {
        Sample {
            runs: 2_000,
            batches: 4,
            batches_per_s,
            steady_runs_per_s: steady,
            finish_s,
            throttled: false,
        }
    }

    #[test]
    fn a_run_projected_to_its_own_size_gives_back_its_finish() {
        for m in [
            sample(2.0, 400.0, 5.2),
            sample(0.2, 95.0, 21.0),
            sample(8.0, 30.0, 70.0),
        ] {
            let p = project(m.runs, &m, None);
            assert!((p.complete_s - m.finish_s).abs() < 1e-9, "{p:?}");
        }
    }

    #[test]
    fn a_job_never_finishes_before_it_is_submitted() {
        // The old model (files / steady + e2e p50) finished the smoke job before it was
        // submitted: completions measured faster than acceptance.
        for (a, c, f) in [(1.76, 207.0, 7.0), (0.5, 900.0, 3.0), (3.0, 10.0, 200.0)] {
            let p = project(50_000, &sample(a, c, f), None);
            assert!(p.complete_s >= p.submit_s, "{p:?}");
        }
    }

    #[test]
    fn the_slower_stage_sets_the_pace_and_the_bound_says_which() {
        // Accepting 1,000 runs/s, finishing 400/s: processing is the capacity.
        let p = project(10_000, &sample(2.0, 400.0, 5.05), None);
        assert_eq!(p.bound, Some(Bound::Processing));
        assert!(
            (p.complete_s - (10_000.0 / 400.0 + 0.05)).abs() < 1e-6,
            "{p:?}"
        );
        // Finishing as fast as accepted: the target kept up, the rate is only offered.
        let p = project(10_000, &sample(0.2, 99.0, 20.5), None);
        assert_eq!(p.bound, Some(Bound::OfferedLoad));
        assert!(p.assumptions.iter().any(|a| a.contains("lower bound")));
        let mut m = sample(0.2, 99.0, 20.5);
        m.throttled = true;
        assert_eq!(project(10_000, &m, None).bound, Some(Bound::RateLimit));
    }

    #[test]
    fn no_rate_measured_projects_never() {
        let p = project(1_000, &sample(0.0, 0.0, 0.0), None);
        assert!(p.submit_s.is_infinite() && p.complete_s.is_infinite());
        let p = project(1_000, &sample(1.0, 0.0, 0.0), None);
        assert!(p.submit_s.is_finite() && p.complete_s.is_infinite());
    }

    #[test]
    fn a_time_scale_is_stated_in_the_assumptions() {
        let p = project(1_000, &sample(1.0, 100.0, 3.0), Some(600.0));
        assert!(p.assumptions.iter().any(|a| a.contains("time scale 600")));
    }
}
