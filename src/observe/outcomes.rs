//! The ledger's vocabulary, as a report reads it: how a batch submission ended, the
//! per-batch record, the webhook and anomaly counters, and a missing input as evidence.
//! Plain data (serialisable where a report or the journal keeps it); the ledger owns the
//! instances and changes them only through its methods.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Webhook,
    Poll,
}

/// How a batch submission ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BatchOutcome {
    /// Scheduled, not answered yet (or never sent: the run was interrupted).
    Pending,
    Accepted {
        batch_id: String,
    },
    /// A 4xx other than 429: the target refused the batch; nothing was created.
    Rejected {
        status: u16,
        error: String,
    },
    /// Still 429 after the allowed retries.
    Throttled,
    /// 5xx, a timeout or a broken response: the batch may exist although we have no id.
    /// Never retried, since the API has no idempotency key.
    PossibleDuplicate {
        reason: String,
    },
    /// No connection: the target cannot have created it.
    Unreachable {
        error: String,
    },
}

#[derive(Debug, Clone)]
pub struct BatchRecord {
    pub index: u64,
    pub first_seq: u64,
    pub inputs: u32,
    /// Intended submit time, from the schedule.
    pub intended: Instant,
    pub outcome: BatchOutcome,
    pub answered: Option<Instant>,
    pub throttles: u32,
    pub terminal: u32,
    pub last_terminal: Option<Instant>,
    /// Credits its runs' `usage` reported, and how many of its runs reported them.
    pub credits: f64,
    pub credited: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WebhookCounts {
    pub received: u64,
    pub verified: u64,
    /// Rejections by kind: bad_signature, stale, future_dated, missing_headers, …
    pub rejected: BTreeMap<String, u64>,
    pub redeliveries: u64,
    pub unparseable: u64,
    /// Events of other types (not workflow_run.* with a run payload).
    pub other_events: u64,
    pub without_batch_id: u64,
    pub metadata_mismatch: u64,
    /// Events for runs the conformance probes created (not part of the load).
    #[serde(default)]
    pub probe_events: u64,
    /// Deliveries the receiver answered 503 on purpose (`results.webhooks.refuse_first`).
    #[serde(default)]
    pub refused: u64,
    /// Verified run events matched to no input of the load: `webhook.metadata` could not
    /// judge them, so they count here and never as a pass.
    #[serde(default)]
    pub unmatched: u64,
    /// Verified events announcing a review's outcome (REJECTED, or PROCESSED after
    /// approval) for a run already seen NEEDS_REVIEW: a second, legitimate terminal event.
    #[serde(default)]
    pub review_outcomes: u64,
    /// Deliveries to another endpoint's path (one an earlier run left registered on the
    /// same receiver address): answered 404, neither verified nor judged.
    #[serde(default)]
    pub foreign: u64,
    /// The endpoint this run registered, and whether it removed it when it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub endpoint_removed: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Anomalies {
    /// A second terminal result for an input: another event id, or another run.
    pub duplicates: u64,
    /// Results that match no submitted input.
    pub unknown: u64,
    /// Observations whose status ranks below one already seen for that run.
    pub out_of_order: u64,
    /// Results for inputs of batches that were not confirmed (5xx, timeout): evidence
    /// that such a batch was created after all.
    #[serde(default)]
    pub from_unconfirmed_batches: u64,
    /// Results of other runs on the same workflow — another run's tag, or a batchId that
    /// is none of this run's — counted apart and never judged: the target did nothing
    /// wrong by sending them.
    #[serde(default)]
    pub foreign: u64,
}

/// An input with no result by the deadline, as evidence in the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MissingExample {
    pub batch_index: u64,
    pub batch_id: Option<String>,
    pub input_index: u64,
    pub run_id: Option<String>,
    pub last_status: Option<String>,
}
