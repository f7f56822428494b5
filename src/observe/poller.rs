//! Results by polling: List Workflow Runs by batchId (following nextPageToken to its end),
//! then Get Workflow Run for each run newly seen terminal, to read its metadata and
//! correlate it. A status seen on a list page is timestamped when that page arrived.
//!
//! Polling is timed like submission: round *n* is intended at `start + n × interval`, and
//! each request has an intended start — the round's for a batch's first list page, the
//! previous page's arrival for the next page, the revealing page's arrival for a Get. So
//! response time and schedule lag count from there, and a stalled target (or a poller
//! that cannot keep its cadence) shows as lag rather than vanishing from the figures.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use super::Ledger;
use crate::api::client::{Client, Reply};
use crate::api::{ApiVersion, RunStatus, shapes};
use crate::metrics::{HttpMetrics, Operation};
use crate::scenario::PollResults;

/// Pages followed for one batch before the chain is declared endless (a 1,000-run batch
/// needs one page at the maximum page size and 1,000 at the smallest).
const MAX_PAGES: usize = 2_000;

pub struct Poller {
    pub client: Client,
    pub ledger: Arc<Mutex<Ledger>>,
    pub metrics: Arc<Mutex<HttpMetrics>>,
    pub config: PollResults,
    pub version: ApiVersion,
}

impl Poller {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let gets = Arc::new(Semaphore::new(self.config.get_concurrency));
        let first = Instant::now();
        for round in 1u32.. {
            let intended = first + self.config.interval * (round - 1);
            let batches = self.ledger.lock().expect("ledger").batches_to_poll();
            for (_, batch_id) in batches {
                if *stop.borrow() {
                    return;
                }
                self.poll_batch(&batch_id, &gets, intended).await;
            }
            // The next round keeps the cadence; when this one overran, it starts at once
            // and its lag says by how much it is late.
            tokio::select! {
                _ = tokio::time::sleep_until((first + self.config.interval * round).into()) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn poll_batch(&self, batch_id: &str, gets: &Arc<Semaphore>, round_intended: Instant) {
        let mut intended = round_intended;
        let mut token: Option<String> = None;
        let mut seen_tokens = HashSet::new();
        let mut to_get: Vec<(String, Instant)> = Vec::new();
        for _ in 0..MAX_PAGES {
            let sent = Instant::now();
            let reply = self
                .client
                .list_batch(batch_id, self.config.page_size, token.as_deref())
                .await;
            let at = Instant::now();
            {
                let mut m = self.metrics.lock().expect("metrics");
                m.count_reply(&reply);
                record(&mut m.list, intended, sent, at, reply.status() == Some(200));
            }
            self.ledger.lock().expect("ledger").reach(match &reply {
                Reply::Answered { .. } => None,
                other => Some(format!(
                    "GET /workflow_runs?batchId={batch_id}: {}",
                    other.describe()
                )),
            });
            if let Reply::Answered {
                status: 429,
                retry_after,
                ..
            } = &reply
            {
                // The limit is shared (the audit, other traffic on the key): the poller
                // waits its turn rather than adding to the pile.
                tokio::time::sleep(
                    retry_after
                        .unwrap_or(std::time::Duration::from_secs(1))
                        .min(std::time::Duration::from_secs(30)),
                )
                .await;
                break;
            }
            let Some(body) = reply.body().filter(|_| reply.status() == Some(200)) else {
                break;
            };
            let Ok((runs, next)) = shapes::list_page(self.version, body) else {
                break;
            };
            {
                let mut ledger = self.ledger.lock().expect("ledger");
                for run in &runs {
                    let (Some(id), Some(status)) = (
                        run.get("id").and_then(Value::as_str),
                        run.get("status")
                            .and_then(Value::as_str)
                            .and_then(RunStatus::parse),
                    ) else {
                        continue;
                    };
                    if !ledger.poll_status(id, status, at) && status.is_terminal() {
                        to_get.push((id.to_string(), at));
                    }
                }
            }
            match next {
                Some(t) if seen_tokens.insert(t.clone()) => token = Some(t),
                _ => break,
            }
            intended = at;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (id, at) in to_get {
            let permit = gets.clone().acquire_owned().await.expect("semaphore open");
            let client = self.client.clone();
            let ledger = self.ledger.clone();
            let metrics = self.metrics.clone();
            let version = self.version;
            tasks.spawn(async move {
                let sent = Instant::now();
                let reply = client.get_run(&id).await;
                let done = Instant::now();
                {
                    let mut m = metrics.lock().expect("metrics");
                    m.count_reply(&reply);
                    record(&mut m.get, at, sent, done, reply.status() == Some(200));
                }
                if reply.status() == Some(200)
                    && let Some(run) = reply.body().and_then(|b| shapes::run_object(version, b))
                {
                    ledger.lock().expect("ledger").poll_run(run, at);
                }
                drop(permit);
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// One poll request's three times: response and lag from its intended start, service
/// from its send.
fn record(op: &mut Operation, intended: Instant, sent: Instant, done: Instant, ok: bool) {
    op.response.record(done.saturating_duration_since(intended));
    op.service.record(done.saturating_duration_since(sent));
    op.lag.record(sent.saturating_duration_since(intended));
    if ok {
        op.ok += 1;
    } else {
        op.errors += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_late_poll_shows_as_lag_and_in_its_response_time() {
        let mut op = Operation::default();
        let intended = Instant::now();
        let sent = intended + Duration::from_millis(300);
        let done = sent + Duration::from_millis(20);
        record(&mut op, intended, sent, done, true);
        let s = op.summary();
        assert!((s.lag.max_ms - 300.0).abs() < 1.0, "{:?}", s.lag);
        assert!((s.response.max_ms - 320.0).abs() < 1.0, "{:?}", s.response);
        assert!((s.service.max_ms - 20.0).abs() < 1.0, "{:?}", s.service);
        assert_eq!((s.ok, s.errors), (1, 0));
    }
}
