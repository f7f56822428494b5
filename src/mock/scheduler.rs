//! Processing on a clock: one task drains the priority queue into a bounded worker pool,
//! completes runs when their (time-scaled) processing time has passed, and hands terminal
//! runs to the webhook dispatcher. One task with a deadline heap, not one task per run,
//! so a million queued runs cost memory for the runs and nothing more.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;

use super::Shared;
use super::limiter::Bucket;
use super::state::{Outcome, Run};
use crate::api::RunStatus;

/// What the scheduler does to a run when its deadline comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Complete,
    /// status_regression defect: PROCESSED → PROCESSING.
    Regress,
    /// status_regression defect: back to PROCESSED.
    Recover,
    /// A NEEDS_REVIEW run is reviewed.
    Review,
}

pub async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let profile = &shared.profile;
    let mut timers: BinaryHeap<Reverse<(Instant, u64, Step)>> = BinaryHeap::new();
    let mut busy = 0usize;
    let mut generation = 0u64;
    let mut files = profile
        .limits
        .files_per_minute
        .map(|f| Bucket::new(f / 60.0 * profile.time_scale));
    let retention = profile.retention.clone();
    loop {
        let now = Instant::now();
        let wall = Utc::now();
        let mut announce: Vec<Run> = Vec::new();
        let mut next: Option<Instant> = None;
        {
            let mut store = shared.store.lock().expect("store");
            if store.generation != generation {
                timers.clear();
                busy = 0;
                generation = store.generation;
            }
            while let Some(&Reverse((at, seq, step))) = timers.peek() {
                if at > now {
                    break;
                }
                timers.pop();
                if step == Step::Complete {
                    busy = busy.saturating_sub(1);
                }
                let Some(run) = store.by_seq_mut(seq) else {
                    continue;
                };
                match step {
                    // Steered to be cancelled: it goes the way a user's cancel goes.
                    Step::Complete
                        if run.status == RunStatus::Processing
                            && run.outcome == Outcome::Cancelled =>
                    {
                        let id = run.id.clone();
                        let due = now + profile.scaled(profile.processing.cancel_after.0);
                        let _ = store.cancel(&id, due, wall);
                    }
                    Step::Complete if run.status == RunStatus::Processing => {
                        run.status = match run.outcome {
                            Outcome::Processed => RunStatus::Processed,
                            Outcome::Failed(_) => RunStatus::Failed,
                            Outcome::NeedsReview { .. } => RunStatus::NeedsReview,
                            Outcome::Cancelled => unreachable!("handled above"),
                        };
                        if run.status == RunStatus::NeedsReview
                            && let Some(after) = run.review_after
                        {
                            timers.push(Reverse((now + after, seq, Step::Review)));
                        }
                        run.end_time = Some(wall);
                        run.updated_at = wall;
                        if !run.mute_terminal
                            && shared
                                .has_endpoints
                                .load(std::sync::atomic::Ordering::Relaxed)
                        {
                            announce.push(run.clone());
                        }
                        if run.regress && run.status == RunStatus::Processed {
                            let hold = run.duration.max(Duration::from_millis(200));
                            timers.push(Reverse((now + hold, seq, Step::Regress)));
                        } else {
                            store.mark_finished(seq, now);
                        }
                    }
                    Step::Regress => {
                        run.status = RunStatus::Processing;
                        run.updated_at = wall;
                        let hold = run.duration.max(Duration::from_millis(500));
                        timers.push(Reverse((now + hold, seq, Step::Recover)));
                    }
                    Step::Recover => {
                        run.status = RunStatus::Processed;
                        run.updated_at = wall;
                        store.mark_finished(seq, now);
                    }
                    Step::Review => {
                        let (id, approve, mute) = match run.outcome {
                            Outcome::NeedsReview { approve } => {
                                (run.id.clone(), approve, run.mute_terminal)
                            }
                            _ => continue,
                        };
                        if let Some(Ok(reviewed)) = store.review(&id, approve, None, wall)
                            && !mute
                            && (!approve || profile.processing.review.completed_after_approval)
                            && shared
                                .has_endpoints
                                .load(std::sync::atomic::Ordering::Relaxed)
                        {
                            announce.push(reviewed);
                        }
                    }
                    // Cancelled while processing: the worker slot is simply freed.
                    Step::Complete => {}
                }
            }
            if !store.paused {
                while busy < profile.processing.workers {
                    if let Some(bucket) = files.as_mut() {
                        let wait = bucket.wait(now);
                        if !wait.is_zero() {
                            next = Some(now + wait);
                            break;
                        }
                    }
                    let Some(seq) = store.pop_queued() else {
                        break;
                    };
                    if let Some(bucket) = files.as_mut() {
                        let _ = bucket.take(now);
                    }
                    let Some(run) = store.by_seq_mut(seq) else {
                        continue;
                    };
                    run.status = RunStatus::Processing;
                    run.start_time = Some(wall);
                    run.updated_at = wall;
                    busy += 1;
                    timers.push(Reverse((now + run.duration, seq, Step::Complete)));
                }
            }
            let (cancelled, due) = store.settle_cancelled(now, wall);
            if let Some(due) = due {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
            if shared
                .has_endpoints
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                announce.extend(cancelled);
            }
            store.evict(retention.max_finished_runs, retention.max_age.0, now);
        }
        for run in announce {
            let _ = shared.announce.send(run);
        }
        if let Some(&Reverse((at, _, _))) = timers.peek() {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        // Eviction by age needs an occasional tick even when idle.
        let deadline = next.unwrap_or(now + Duration::from_secs(1));
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
