//! Results by polling: List Workflow Runs by batchId (following nextPageToken to its end),
//! then Get Workflow Run for each run newly seen terminal, to read its metadata and
//! correlate it. A status seen on a list page is timestamped when that page arrived.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use super::Ledger;
use crate::api::client::Client;
use crate::api::{ApiVersion, RunStatus, shapes};
use crate::load::HttpMetrics;
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
        loop {
            let tick = Instant::now();
            let batches = self.ledger.lock().expect("ledger").batches_to_poll();
            for (_, batch_id) in batches {
                if *stop.borrow() {
                    return;
                }
                self.poll_batch(&batch_id, &gets).await;
            }
            tokio::select! {
                _ = tokio::time::sleep_until((tick + self.config.interval).into()) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn poll_batch(&self, batch_id: &str, gets: &Arc<Semaphore>) {
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
                m.list.response.record(at - sent);
                m.list.service.record(at - sent);
                m.list.lag.record(std::time::Duration::ZERO);
                if reply.status() == Some(200) {
                    m.list.ok += 1;
                } else {
                    m.list.errors += 1;
                }
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
                    m.get.response.record(done - sent);
                    m.get.service.record(done - sent);
                    m.get.lag.record(std::time::Duration::ZERO);
                    if reply.status() == Some(200) {
                        m.get.ok += 1;
                    } else {
                        m.get.errors += 1;
                    }
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
