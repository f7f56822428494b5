//! Waiting for a run's results: until every accepted input has one on the channels in use,
//! the deadline passes, or the run is stopped.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::api::client::{Client, Reply};
use crate::observe::Ledger;
use crate::scenario::Scenario;

/// How long the results' reads may find no target before the wait gives up: a target
/// that is gone does not come back by waiting out the whole deadline.
pub(crate) const OUTAGE_GRACE: Duration = Duration::from_secs(15);
/// How often a webhook-only run checks, while it waits, that the target is still there.
const HEARTBEAT: Duration = Duration::from_secs(3);

/// Why the wait for results ended before every result was in.
pub(crate) enum GaveUp {
    /// The results deadline passed.
    Deadline,
    /// The target stopped answering the polls: since when, and what was seen.
    Unreachable(String),
}

/// Waits until every accepted input has a result on the channels in use, or the deadline
/// passes, or the run is stopped. With both channels, polling is the authority: once it
/// has seen everything, webhooks get a short settling time to catch up.
pub(crate) async fn wait_for_results(
    scenario: &Scenario,
    ledger: &Mutex<Ledger>,
    client: &Client,
    mut stop: watch::Receiver<Option<String>>,
) -> Option<GaveUp> {
    // With webhooks alone nothing reads the target while results are awaited: a light
    // heartbeat (one run of one batch) tells a target that died from one that is slow.
    let mut heartbeat_at = Instant::now() + HEARTBEAT;
    let webhooks = scenario.results.webhooks.is_some();
    let polling = scenario.results.polling.is_some();
    let deadline = Instant::now() + scenario.results.deadline;
    let settle = Duration::from_secs(2);
    let mut polled_all_at: Option<Instant> = None;
    loop {
        let (wm, pm, outage) = {
            let l = ledger.lock().expect("ledger");
            let (wm, pm) = l.coverage();
            (wm, pm, l.outage().cloned())
        };
        let now = Instant::now();
        if webhooks && !polling && wm > 0 && now >= heartbeat_at {
            heartbeat_at = now + HEARTBEAT;
            let batch = ledger
                .lock()
                .expect("ledger")
                .batches_to_poll()
                .into_iter()
                .next();
            if let Some((_, batch_id)) = batch {
                let reply = client.list_batch(&batch_id, 1, None).await;
                ledger.lock().expect("ledger").reach(match &reply {
                    Reply::Answered { .. } => None,
                    other => Some(format!(
                        "GET /workflow_runs?batchId={batch_id} (a heartbeat while waiting for webhooks): {}",
                        other.describe()
                    )),
                });
            }
        }
        if let Some((since, what)) = outage
            && now.duration_since(since) >= OUTAGE_GRACE
        {
            return Some(GaveUp::Unreachable(format!(
                "{what}, for {} s while waiting for results",
                now.duration_since(since).as_secs()
            )));
        }
        let done = match (webhooks, polling) {
            (true, false) => wm == 0,
            (false, true) => pm == 0,
            (true, true) => {
                if pm == 0 {
                    let at = *polled_all_at.get_or_insert(now);
                    wm == 0 || now.duration_since(at) >= settle
                } else {
                    false
                }
            }
            (false, false) => true,
        };
        if now >= deadline {
            return (!done).then_some(GaveUp::Deadline);
        }
        if done {
            if !scenario.results.settle.is_zero() {
                ledger.lock().expect("ledger").start_settling();
                tokio::select! {
                    _ = tokio::time::sleep(scenario.results.settle) => {}
                    _ = stop.wait_for(|s| s.is_some()) => {}
                }
            }
            return None;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.wait_for(|s| s.is_some()) => return None,
        }
    }
}
