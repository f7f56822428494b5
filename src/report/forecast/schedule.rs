//! The job's schedule as it is. Its batches go out when the job sends them — an open
//! job on its scenario's schedule, ramps and gaps included, never faster than the target
//! accepts; a closed job at the acceptance pace the sample met — into one processing
//! pipeline that finishes runs at the measured pace, first come first served, and sits
//! idle when nothing is queued (a gap in the schedule is idle time, not a head start).
//! Within a batch runs are fluid: the i-th run leaves the pipeline i / pace after its
//! batch's turn began; its result arrives a residual later (its own processing time), a
//! residual the sample measured against the same pipeline.

/// When each batch is meant to go out (the clock end-to-end latency runs from) and when
/// the target accepted it.
pub(super) struct Arrivals {
    pub intended: Vec<f64>,
    pub accepted: Vec<f64>,
}

/// The job's `batches` batches: on `schedule` (seconds after the job's start, open
/// model) or back to back (closed model), accepted `answer_s` after they go out and no
/// closer together than `gap_s`, the sample's acceptance pace.
pub(super) fn arrivals(
    batches: usize,
    schedule: Option<&[f64]>,
    first: f64,
    gap_s: f64,
    answer_s: f64,
) -> Arrivals {
    let mut intended = Vec::with_capacity(batches);
    let mut accepted: Vec<f64> = Vec::with_capacity(batches);
    for j in 0..batches {
        let earliest = accepted.last().map_or(first + answer_s, |a| a + gap_s);
        let (meant, at) = match schedule {
            Some(s) => {
                let meant = first + s[j.min(s.len() - 1)] - s[0];
                (meant, (meant + answer_s).max(earliest))
            }
            // A closed job's submitter sends its next batch as the target answers.
            None => (earliest - answer_s, earliest),
        };
        intended.push(meant);
        accepted.push(at);
    }
    Arrivals { intended, accepted }
}

/// Each batch's turn in the pipeline, and how long it sat idle between batches.
pub(super) struct Served {
    /// When each batch's first run entered processing.
    pub start: Vec<f64>,
    /// When each batch's last run left it (before its own processing residual).
    pub end: Vec<f64>,
    /// Seconds the pipeline had nothing to do after the first batch arrived.
    pub idle_s: f64,
}

/// The pipeline at `pace` runs/s fed `runs[j]` runs at `accepted[j]` (in that order).
pub(super) fn serve(accepted: &[f64], runs: impl Fn(usize) -> f64, pace: f64) -> Served {
    let mut start = Vec::with_capacity(accepted.len());
    let mut end = Vec::with_capacity(accepted.len());
    let mut idle_s = 0.0;
    let mut free = f64::NEG_INFINITY;
    for (j, &a) in accepted.iter().enumerate() {
        if j > 0 && a > free {
            idle_s += a - free;
        }
        let s = a.max(free);
        free = s + runs(j) / pace;
        start.push(s);
        end.push(free);
    }
    Served { start, end, idle_s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_in_the_schedule_leaves_the_pipeline_idle() {
        // Batches of 100 at 0, 1 and 30 s into a pipeline of 100 runs/s: the third waits
        // for nothing, and the pipeline sat idle from 2 s to 30 s.
        let a = arrivals(3, Some(&[0.0, 1.0, 30.0]), 0.0, 0.1, 0.0);
        assert_eq!(a.accepted, vec![0.0, 1.0, 30.0]);
        let s = serve(&a.accepted, |_| 100.0, 100.0);
        assert_eq!(s.start, vec![0.0, 1.0, 30.0]);
        assert_eq!(s.end[2], 31.0);
        assert!((s.idle_s - 28.0).abs() < 1e-9, "{}", s.idle_s);
        // Offered faster than it processes, the pipeline queues instead.
        let q = serve(&[0.0, 0.1, 0.2], |_| 100.0, 100.0);
        assert_eq!(q.start, vec![0.0, 1.0, 2.0]);
        assert_eq!(q.idle_s, 0.0);
    }

    #[test]
    fn a_schedule_faster_than_acceptance_is_held_to_it() {
        let a = arrivals(3, Some(&[5.0, 5.0, 5.0]), 0.0, 2.0, 0.5);
        assert_eq!(a.intended, vec![0.0, 0.0, 0.0]);
        assert_eq!(a.accepted, vec![0.5, 2.5, 4.5]);
        let closed = arrivals(3, None, 1.0, 2.0, 0.5);
        assert_eq!(closed.accepted, vec![1.5, 3.5, 5.5]);
        assert_eq!(closed.intended, vec![1.0, 3.0, 5.0]);
    }
}
