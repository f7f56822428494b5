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
use crate::checks::{Findings, Reads, excerpt, json_excerpt};
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

/// Tries of one request before it counts as unread: 429s (and, for reads, 5xx and
/// failed connections) are waited out this many times, within [`READ_BOUND`] — a limit
/// shared with other traffic (another pipeline's throttle probe, production) can keep
/// refusing for a while.
const PATIENCE: u32 = 20;
/// The longest one request's retries may wait in all: the phase stays bounded.
const READ_BOUND: Duration = Duration::from_secs(60);
/// The longest single wait, whatever a Retry-After asks.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

pub struct Probe<'a> {
    pub client: &'a Client,
    pub scenario: &'a Scenario,
    pub config: &'a Checks,
    pub ledger: &'a Mutex<Ledger>,
    pub findings: Findings,
    pub reads: Reads,
}

/// Why a reply cannot be judged: the target did not let us read (a 429, a 5xx to a read,
/// no connection or no answer). None: it answered, and what it answered is evidence.
pub fn unreadable(reply: &Reply, read: bool) -> Option<String> {
    match reply {
        Reply::Answered { status: 429, .. } => Some("throttled: HTTP 429 after the retries".into()),
        Reply::Answered { status, .. } if read && *status >= 500 => {
            Some(format!("HTTP {status} after the retries"))
        }
        Reply::Answered { .. } => None,
        other => Some(other.describe()),
    }
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
        let req = request(method, path);
        let read = method == "GET";
        self.patiently(&req, read, || async {
            match (method, &body) {
                ("POST", Some(b)) => client.post_json_bytes(path, b.clone()).await,
                _ => client.get(path, &[]).await,
            }
        })
        .await
    }

    /// Sends one request as a patient client does: a 429 is waited out (its Retry-After,
    /// else a growing backoff), and so, for a read, are a 5xx and a failed connection — a
    /// write is not re-sent after a 5xx or a timeout, which may have created runs. All
    /// within [`PATIENCE`] tries and [`READ_BOUND`]. Once the target has proved
    /// unreachable, nothing more is sent: the reply says so at once.
    pub async fn patiently<F, Fut>(&mut self, req: &str, read: bool, mut send: F) -> Reply
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Reply>,
    {
        if let Some(why) = &self.reads.unreachable {
            return Reply::Connect {
                error: format!("not sent: the target was unreachable earlier ({why})"),
                elapsed: Duration::ZERO,
            };
        }
        let began = tokio::time::Instant::now();
        let mut tries = 0;
        loop {
            let reply = send().await;
            tries += 1;
            let wait = match &reply {
                Reply::Answered {
                    status: 429,
                    retry_after,
                    ..
                } => {
                    self.reads.throttled += 1;
                    self.throttled(&reply, req);
                    retry_after.unwrap_or(backoff(tries))
                }
                Reply::Answered { status, .. } if read && *status >= 500 => {
                    self.reads.server_errors += 1;
                    backoff(tries)
                }
                Reply::Answered { .. } => return reply,
                Reply::Connect { .. } => {
                    self.reads.connection_failures += 1;
                    backoff(tries)
                }
                // A request that timed out may have been acted on: only a read is sent
                // again, and only once (each try costs the whole request timeout).
                Reply::Timeout { .. } | Reply::Other { .. } => {
                    self.reads.connection_failures += 1;
                    if !read || tries >= 2 {
                        self.reads.unreachable = Some(format!("{req}: {}", reply.describe()));
                        return reply;
                    }
                    backoff(tries)
                }
            }
            .min(LONGEST_WAIT);
            if tries >= PATIENCE || began.elapsed() + wait > READ_BOUND {
                if matches!(reply, Reply::Connect { .. }) {
                    self.reads.unreachable = Some(format!("{req}: {}", reply.describe()));
                }
                return reply;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Is `reply` unreadable (see [`unreadable`])? Then the case is recorded as unread
    /// for `rule` and true comes back: the caller judges nothing.
    pub fn unread(&mut self, rule: &'static str, reply: &Reply, read: bool) -> bool {
        match unreadable(reply, read) {
            Some(why) => {
                self.reads.unread += 1;
                self.findings.unread(rule, why);
                true
            }
            None => false,
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
        if self.unread(rule, reply, false) {
            return;
        }
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

    /// One `GET /workflow_runs?…`, patiently.
    pub async fn list(&mut self, query: &[(&str, String)]) -> Reply {
        let client = self.client;
        self.patiently("GET /workflow_runs", true, || {
            client.get("/workflow_runs", query)
        })
        .await
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
) -> (Findings, Reads) {
    let mut p = Probe {
        client,
        scenario,
        config,
        ledger,
        findings: Findings::default(),
        reads: Reads::default(),
    };
    runs::audit(&mut p).await;
    // A target found unreachable sends nothing more: every later probe would only wait
    // out its own timeout to learn the same.
    if config.probes && p.reads.unreachable.is_none() {
        batch::probe(&mut p).await;
        auth::probe(&mut p).await;
        version::probe(&mut p).await;
        list::probe(&mut p).await;
        error::probe(&mut p).await;
    }
    (p.findings, p.reads)
}

/// The wait before try `tries + 1` when the target gave no Retry-After: 250 ms, doubling.
fn backoff(tries: u32) -> Duration {
    Duration::from_millis(250u64 << tries.min(7))
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
