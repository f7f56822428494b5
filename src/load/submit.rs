//! One batch submission and its HTTP behaviour: 429 honours Retry-After with bounded
//! retries (response time still counted from the intended start); a 5xx or a timeout may
//! have created the batch, so it is reported as a possible duplicate and never retried
//! (the API has no idempotency key); connection failures are their own outcome.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::client::{Client, Reply};
use crate::api::{ApiVersion, shapes};
use crate::checks::{self, Findings};
use crate::observe::BatchOutcome;

use super::HttpMetrics;

pub struct Submitted {
    pub outcome: BatchOutcome,
    pub answered: Instant,
    pub throttles: u32,
    /// What the answers showed about the contract (batch.accepted, error bodies).
    pub findings: Findings,
    /// The target refused the API key (401 or 403), as a person reads it.
    pub auth_refused: Option<String>,
}

pub async fn submit(
    client: &Client,
    body: bytes::Bytes,
    max_retries: u32,
    intended: Instant,
    metrics: &Mutex<HttpMetrics>,
    version: ApiVersion,
) -> Submitted {
    let first_send = Instant::now();
    let mut throttles = 0u32;
    let mut findings = Findings::default();
    loop {
        let sent = Instant::now();
        // Bytes: a retry re-sends the same buffer without copying it.
        let reply = client.submit_batch(body.clone()).await;
        let done = Instant::now();
        metrics.lock().expect("metrics").count_reply(&reply);
        let request = "POST /workflow_runs/batch";
        checks::batch::accepted(&mut findings, version, &reply, "a batch of the load");
        if reply.status() == Some(429) {
            checks::error::throttle_body(&mut findings, version, &reply, request);
        } else {
            checks::error::load_body(&mut findings, version, &reply, request);
        }
        let outcome = match &reply {
            Reply::Answered {
                status: 429,
                retry_after,
                ..
            } => {
                throttles += 1;
                if throttles <= max_retries {
                    // Exponential fallback when the target sends no Retry-After.
                    let backoff = retry_after
                        .unwrap_or_else(|| Duration::from_millis(500 * (1 << throttles.min(6))));
                    tokio::time::sleep(backoff.min(Duration::from_secs(60))).await;
                    continue;
                }
                BatchOutcome::Throttled
            }
            Reply::Answered { status, body, .. } if (200..300).contains(status) => {
                match body.as_ref().and_then(shapes::batch_id) {
                    Some(id) if !id.is_empty() => BatchOutcome::Accepted {
                        batch_id: id.to_string(),
                    },
                    _ => BatchOutcome::PossibleDuplicate {
                        reason: format!("HTTP {status} without a batchId"),
                    },
                }
            }
            Reply::Answered { status, .. } if *status >= 500 => BatchOutcome::PossibleDuplicate {
                reason: reply.describe(),
            },
            Reply::Answered { status, .. } => BatchOutcome::Rejected {
                status: *status,
                error: reply.describe(),
            },
            Reply::Timeout { .. } => BatchOutcome::PossibleDuplicate {
                reason: "timed out".into(),
            },
            Reply::Connect { error, .. } => BatchOutcome::Unreachable {
                error: error.clone(),
            },
            Reply::Other { .. } => BatchOutcome::PossibleDuplicate {
                reason: reply.describe(),
            },
        };
        let mut m = metrics.lock().expect("metrics");
        let op = &mut m.submit;
        op.response.record(done.saturating_duration_since(intended));
        op.service.record(done.saturating_duration_since(sent));
        op.lag
            .record(first_send.saturating_duration_since(intended));
        if matches!(outcome, BatchOutcome::Accepted { .. }) {
            op.ok += 1;
        } else {
            op.errors += 1;
        }
        return Submitted {
            outcome,
            answered: done,
            throttles,
            findings,
            auth_refused: reply.auth_refusal(),
        };
    }
}
