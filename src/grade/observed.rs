//! What the mock saw a client do, in the order it saw it: each request with its answer
//! (and the adversity the sparring profile put in its way), and each webhook delivery
//! with the receiver's answer. The mock records these; the grade reads nothing else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most observations kept: a client under grade sends thousands of requests, not
/// millions; past the cap the grade says its evidence was cut.
pub const MAX_OBSERVED: usize = 200_000;

/// The end of a client's life in which a receiver that is gone is not a failure.
pub const SHUTDOWN_GRACE_MS: u64 = 1000;

/// Which API endpoint a request went to, as the grade tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Batch,
    Create,
    List,
    Get,
    Write,
    WebhookSetup,
    Admin,
    Other,
}

impl Route {
    /// Reads the plan's GET category limits.
    pub fn is_read(self) -> bool {
        matches!(self, Route::List | Route::Get)
    }
}

/// What the sparring profile did to a request on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adversity {
    /// 429 with Retry-After and retry-after-ms.
    Throttled,
    /// 429 with no header saying how long to wait.
    ThrottledSilent,
    /// 503 before any work was done.
    ServerError,
    /// The batch was accepted (its runs exist), then answered 500.
    AcceptedThenFailed,
}

/// One request as the mock saw and answered it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestSeen {
    /// Milliseconds since the mock started.
    pub at_ms: u64,
    /// When the answer went out (ms since the mock started): a client's wait before a
    /// retry counts from here, not from when a large body began to arrive.
    #[serde(default)]
    pub answered_ms: u64,
    pub method: String,
    pub path: String,
    /// The query string exactly as sent (undecoded), so an unencoded token shows.
    pub query: String,
    pub route: Route,
    /// `x-extend-api-version` as sent, if it was.
    pub version: Option<String>,
    pub status: u16,
    /// What the answer told the client to wait (retry-after-ms, or Retry-After).
    pub retry_after_ms: Option<u64>,
    pub adversity: Option<Adversity>,
    /// The error body's code and message, when the mock refused the request.
    pub refusal: Option<String>,
    /// Same method, path, query and body: a retry of an earlier request has its key.
    pub key: u64,
    /// A batch POST: how many inputs, and a fingerprint of each.
    pub inputs: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_keys: Vec<u64>,
    /// A list request: the batch it filtered on, the token it presented (decoded) and
    /// the token its answer carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<PageSeen>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageSeen {
    pub batch_id: Option<String>,
    pub token_sent: Option<String>,
    pub token_answered: Option<String>,
}

/// How a delivery was made on purpose to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forgery {
    /// Signed with a secret that is not the endpoint's.
    BadSignature,
    /// Signed correctly, ten minutes ago.
    StaleTimestamp,
    /// No signature headers at all.
    Unsigned,
}

impl Forgery {
    pub const ALL: [Forgery; 3] = [
        Forgery::BadSignature,
        Forgery::StaleTimestamp,
        Forgery::Unsigned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Forgery::BadSignature => "bad_signature",
            Forgery::StaleTimestamp => "stale_timestamp",
            Forgery::Unsigned => "unsigned",
        }
    }
}

/// One delivery attempt to the client's receiver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverySeen {
    pub at_ms: u64,
    pub endpoint_url: String,
    pub event_id: String,
    pub event_type: String,
    /// None: a genuine delivery.
    pub forgery: Option<Forgery>,
    /// The receiver's status; None when it did not answer (refused, timed out).
    pub status: Option<u16>,
    pub error: Option<String>,
    pub millis: u64,
}

/// Everything observed, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Observations {
    pub requests: Vec<RequestSeen>,
    pub deliveries: Vec<DeliverySeen>,
    /// Observations not kept past `MAX_OBSERVED`.
    pub dropped: u64,
    /// The plan's limits the mock enforced, requests per second by category.
    pub limits: BTreeMap<String, f64>,
    /// When the client's command ended (`grade`): deliveries attempted later are not the
    /// client's to answer.
    pub client_ended_ms: Option<u64>,
}

impl Observations {
    /// Whether a delivery attempt began while the client was there to answer it. A
    /// process closes its receiver a moment before it exits: an attempt that found no
    /// receiver in the last second of the client's life is not held against it.
    pub fn while_client_ran(&self, d: &DeliverySeen) -> bool {
        self.client_ended_ms.is_none_or(|end| {
            d.at_ms <= end && (d.status.is_some() || d.at_ms + SHUTDOWN_GRACE_MS <= end)
        })
    }
}

impl Observations {
    pub fn request(&mut self, r: RequestSeen) {
        if self.requests.len() < MAX_OBSERVED {
            self.requests.push(r);
        } else {
            self.dropped += 1;
        }
    }

    pub fn delivery(&mut self, d: DeliverySeen) {
        if self.deliveries.len() < MAX_OBSERVED {
            self.deliveries.push(d);
        } else {
            self.dropped += 1;
        }
    }
}
