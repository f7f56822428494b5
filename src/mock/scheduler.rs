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
use super::state::{Outcome, Run, Store};
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

/// The scheduler's own state between ticks: its timers, the busy workers, the file
/// bucket, and the store generation its timers belong to.
struct Clock {
    timers: BinaryHeap<Reverse<(Instant, u64, Step)>>,
    busy: usize,
    generation: u64,
    files: Option<Bucket>,
}

/// What one tick decided: runs to announce, and the earliest time something is due
/// besides the timers.
struct Tick {
    now: Instant,
    wall: chrono::DateTime<Utc>,
    /// Whether any webhook endpoint exists: without one, nothing is cloned to announce.
    announcing: bool,
    announce: Vec<Run>,
    next: Option<Instant>,
}

impl Tick {
    fn announce(&mut self, run: &Run) {
        if self.announcing {
            self.announce.push(run.clone());
        }
    }

    fn due(&mut self, at: Instant) {
        self.next = Some(self.next.map_or(at, |n| n.min(at)));
    }
}

pub async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let profile = &shared.profile;
    let mut clock = Clock {
        timers: BinaryHeap::new(),
        busy: 0,
        generation: 0,
        files: profile.limits.files_per_minute.map(|f| {
            Bucket::scaled(f / 60.0, profile.time_scale, profile.limits.burst_s)
                .at_least(Duration::from_millis(50))
        }),
    };
    let retention = profile.retention.clone();
    let announcing = || {
        shared
            .has_endpoints
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    loop {
        let mut tick = Tick {
            now: Instant::now(),
            wall: Utc::now(),
            announcing: announcing(),
            announce: Vec::new(),
            next: None,
        };
        let evicted;
        {
            let mut store = shared.store.lock().expect("store");
            if store.generation != clock.generation {
                clock.timers.clear();
                clock.busy = 0;
                clock.generation = store.generation;
            }
            clock.fire_timers(&shared, &mut store, &mut tick);
            if !store.paused {
                clock.start_queued(&shared, &mut store, &mut tick);
            }
            let (cancelled, due) = store.settle_cancelled(tick.now, tick.wall);
            if let Some(due) = due {
                tick.due(due);
            }
            for run in &cancelled {
                tick.announce(run);
            }
            evicted = store.evict(retention.max_finished_runs, retention.max_age.0, tick.now);
        }
        // Freed here, not under the lock the handlers wait on.
        drop(evicted);
        for run in tick.announce.drain(..) {
            let _ = shared.announce.send(run);
        }
        if let Some(&Reverse((at, _, _))) = clock.timers.peek() {
            tick.due(at);
        }
        // Eviction by age needs an occasional tick even when idle.
        let deadline = tick.next.unwrap_or(tick.now + Duration::from_secs(1));
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

impl Clock {
    /// Runs every timer that is due: processing finishing, the status_regression defect's
    /// steps, reviews.
    fn fire_timers(&mut self, shared: &Shared, store: &mut Store, tick: &mut Tick) {
        let profile = &shared.profile;
        let (now, wall) = (tick.now, tick.wall);
        while let Some(&Reverse((at, seq, step))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if step == Step::Complete {
                self.busy = self.busy.saturating_sub(1);
            }
            let Some(run) = store.by_seq_mut(seq) else {
                continue;
            };
            match step {
                // Steered to be cancelled: it goes the way a user's cancel goes.
                Step::Complete
                    if run.status == RunStatus::Processing && run.outcome == Outcome::Cancelled =>
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
                        self.timers.push(Reverse((now + after, seq, Step::Review)));
                    }
                    run.end_time = Some(wall);
                    run.updated_at = wall;
                    if !run.mute_terminal {
                        tick.announce(run);
                    }
                    if run.regress && run.status == RunStatus::Processed {
                        let hold = run.duration.max(Duration::from_millis(200));
                        self.timers.push(Reverse((now + hold, seq, Step::Regress)));
                    } else {
                        store.mark_finished(seq, now);
                    }
                }
                Step::Regress => {
                    run.status = RunStatus::Processing;
                    run.updated_at = wall;
                    let hold = run.duration.max(Duration::from_millis(500));
                    self.timers.push(Reverse((now + hold, seq, Step::Recover)));
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
                    {
                        tick.announce(&reviewed);
                    }
                }
                // Cancelled while processing: the worker slot is simply freed.
                Step::Complete => {}
            }
        }
    }

    /// Takes queued runs into free workers, as the file bucket allows.
    fn start_queued(&mut self, shared: &Shared, store: &mut Store, tick: &mut Tick) {
        let (now, wall) = (tick.now, tick.wall);
        while self.busy < shared.profile.processing.workers {
            if let Some(bucket) = self.files.as_mut() {
                let wait = bucket.wait(now);
                if !wait.is_zero() {
                    tick.due(now + wait);
                    break;
                }
            }
            let Some(seq) = store.pop_queued() else {
                break;
            };
            if let Some(bucket) = self.files.as_mut() {
                let _ = bucket.take(now);
            }
            let Some(run) = store.by_seq_mut(seq) else {
                continue;
            };
            run.status = RunStatus::Processing;
            run.start_time = Some(wall);
            run.updated_at = wall;
            self.busy += 1;
            self.timers
                .push(Reverse((now + run.duration, seq, Step::Complete)));
        }
    }
}
