//! The conformance phase of `batchproof run`: after the load and its results, audit the
//! accepted batches (list and get every run) and send the probes — deliberately bad or
//! edge requests — each family defines. The webhook receiver and the poller keep running
//! meanwhile, so late deliveries still count.
//!
//! Probes are polite: they honour 429 + Retry-After like any client (except the one
//! probe whose point is that rapid batches are *not* throttled), and the runs they create
//! carry a `bp_probe` metadata key so their results are never confused with the load's.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::client::{Client, Reply};
use crate::api::shapes::{self, BatchInput, FileRef};
use crate::api::{ApiVersion, RunStatus};
use crate::checks::{Findings, excerpt, json_excerpt};
use crate::observe::Ledger;
use crate::scenario::{Checks, Scenario};

mod auth;
mod batch;
mod cancel;
mod error;
mod list;
mod runs;
mod version;

pub use crate::api::PROBE_KEY;

/// 429s a probe waits out before it gives up.
const PATIENCE: u32 = 6;

pub struct Probe<'a> {
    pub client: &'a Client,
    pub scenario: &'a Scenario,
    pub config: &'a Checks,
    pub ledger: &'a Mutex<Ledger>,
    pub findings: Findings,
}

/// The method and path of a request, for evidence.
pub fn request(method: &str, path: &str) -> String {
    format!("{method} {path}")
}

impl<'a> Probe<'a> {
    pub fn version(&self) -> ApiVersion {
        self.scenario.api_version
    }

    /// Sends a request through `client`, waiting out 429s. Every 429 body on the way is
    /// evidence for `error.throttle_retryable`.
    pub async fn send(
        &mut self,
        client: &Client,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        self.send_raw(
            client,
            method,
            path,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    pub async fn send_raw(
        &mut self,
        client: &Client,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut waited = 0;
        loop {
            let reply = match (method, &body) {
                ("POST", Some(b)) => client.post_json_bytes(path, b.clone()).await,
                _ => client.get(path, &[]).await,
            };
            if reply.status() == Some(429) && waited < PATIENCE {
                waited += 1;
                self.throttled(&reply, &request(method, path));
                let wait = match &reply {
                    Reply::Answered { retry_after, .. } => *retry_after,
                    _ => None,
                };
                tokio::time::sleep(
                    wait.unwrap_or(Duration::from_millis(500 << waited))
                        .min(Duration::from_secs(30)),
                )
                .await;
                continue;
            }
            return reply;
        }
    }

    /// Records a 429 answer for `error.throttle_retryable`.
    pub fn throttled(&mut self, reply: &Reply, request: &str) {
        let v = self.version();
        crate::checks::error::throttle_body(&mut self.findings, v, reply, request);
    }

    /// Records an error answer's body for `error.shape`.
    /// Judges a request that must be refused where the documentation does not say with
    /// which status: 400 or 422 pass, and the rule's note says which one was seen.
    pub fn expect_refusal(&mut self, rule: &'static str, reply: &Reply, request: &str) {
        let status = reply.status();
        let ok = status.is_some_and(|s| crate::checks::VALIDATION_STATUSES.contains(&s));
        self.findings.check(rule, ok, || {
            crate::checks::Case::new("HTTP 400 or 422", seen(reply)).request(request)
        });
        if let (true, Some(code)) = (ok, status) {
            self.findings.add_note(
                rule,
                format!("refused with {code} (400 and 422 both accepted: the documentation does not say which)"),
            );
        }
    }

    pub fn error_body(&mut self, reply: &Reply, request: &str) {
        let v = self.version();
        crate::checks::error::body(&mut self.findings, v, reply, request);
    }

    /// A batch body of `n` probe inputs named `name`, in the scenario's version.
    pub fn batch_body(&self, name: &str, n: usize) -> Value {
        let inputs: Vec<BatchInput> = (0..n)
            .map(|i| BatchInput {
                file: FileRef::Url {
                    url: format!("https://files.batchproof.test/probe/{name}/{i}.pdf"),
                    name: None,
                },
                metadata: Some(json!({ PROBE_KEY: format!("{name}:{i}") })),
                secrets: None,
            })
            .collect();
        let bytes = shapes::batch_body(self.version(), &self.scenario.workflow, &inputs, None);
        serde_json::from_slice(&bytes).expect("batch body is JSON")
    }

    /// Remembers a batch a probe created, so its runs' results are not taken for the
    /// load's.
    pub fn created_batch(&self, reply: &Reply) -> Option<String> {
        let id = reply
            .body()
            .filter(|_| reply.status() == Some(200))
            .and_then(shapes::batch_id)?
            .to_string();
        self.ledger
            .lock()
            .expect("ledger")
            .mark_probe_batch(id.clone());
        Some(id)
    }

    /// Every run of `batch_id`, following the token chain (bounded), at `page_size`.
    /// Returns the runs and whether the chain ended.
    pub async fn list_all(&mut self, batch_id: &str, page_size: u32) -> (Vec<Value>, bool) {
        let mut runs = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..2_000 {
            let reply = self.list_page(batch_id, page_size, token.as_deref()).await;
            let Some(body) = reply.body().filter(|_| reply.status() == Some(200)) else {
                return (runs, false);
            };
            let Ok((page, next)) = shapes::list_page(self.version(), body) else {
                return (runs, false);
            };
            runs.extend(page);
            match next {
                Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                Some(_) => return (runs, false),
                None => return (runs, true),
            }
        }
        (runs, false)
    }

    pub async fn list_page(
        &mut self,
        batch_id: &str,
        page_size: u32,
        token: Option<&str>,
    ) -> Reply {
        self.list(&Client::batch_listing(batch_id, page_size, token))
            .await
    }

    /// One `GET /workflow_runs?…`, waiting out 429s.
    pub async fn list(&mut self, query: &[(&str, String)]) -> Reply {
        let mut waited = 0;
        loop {
            let reply = self.client.get("/workflow_runs", query).await;
            if reply.status() == Some(429) && waited < PATIENCE {
                waited += 1;
                self.throttled(&reply, "GET /workflow_runs");
                tokio::time::sleep(Duration::from_millis(200 << waited)).await;
                continue;
            }
            return reply;
        }
    }

    /// Waits until every run of `batch_id` is terminal (or `within` passes); returns the
    /// last listing.
    pub async fn wait_terminal(&mut self, batch_id: &str, within: Duration) -> Vec<Value> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let (runs, _) = self.list_all(batch_id, 1000).await;
            let done = !runs.is_empty()
                && runs.iter().all(|r| {
                    r.get("status")
                        .and_then(Value::as_str)
                        .and_then(RunStatus::parse)
                        .is_some_and(RunStatus::is_terminal)
                });
            if done || tokio::time::Instant::now() >= until {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs the audit and every probe; returns what they found.
pub async fn run(
    client: &Client,
    scenario: &Scenario,
    config: &Checks,
    ledger: &Mutex<Ledger>,
) -> Findings {
    let mut p = Probe {
        client,
        scenario,
        config,
        ledger,
        findings: Findings::default(),
    };
    runs::audit(&mut p).await;
    if config.probes {
        batch::probe(&mut p).await;
        auth::probe(&mut p).await;
        version::probe(&mut p).await;
        list::probe(&mut p).await;
        error::probe(&mut p).await;
    }
    p.findings
}

/// A short JSON rendering of a reply for evidence.
pub fn seen(reply: &Reply) -> String {
    match reply {
        Reply::Answered {
            status,
            body: Some(b),
            ..
        } => format!("HTTP {status}: {}", json_excerpt(b)),
        other => excerpt(&other.describe()),
    }
}

/// Runs the probes create on a target that honours the contract: the 1,000-input batch
/// (`batch::probe`), the priority-89 single run (`runs::priority_order`), the
/// back-to-back batches of one, and the cancel probe's small batch (`cancel`). `batchproof plan` and the cost guard count with these:
/// a probe that creates runs must be counted here.
pub fn probe_runs(rapid_batches: u32) -> u64 {
    crate::api::MAX_BATCH_INPUTS as u64 + 1 + u64::from(rapid_batches) + cancel::INPUTS as u64
}

/// Runs the probes create at most: on a target that accepts what it must refuse, also
/// the 1,001-input batch and the small malformed bodies (none over two inputs; 32 is a
/// margin over the dozen there are).
pub fn probe_runs_at_most(rapid_batches: u32) -> u64 {
    probe_runs(rapid_batches) + crate::api::MAX_BATCH_INPUTS as u64 + 1 + 32
}
