//! The mock as a sparring partner: the `sparring:` section of a profile puts production's
//! adversities in a client's way on purpose — 429s with and without Retry-After, 5xx, a
//! batch accepted and then answered 500, forged webhook deliveries — and records what the
//! client does about them (`crate::grade::observed`), for `batchproof grade`.
//!
//! Adversities are placed by the ordinal of the request (the 3rd batch POST, the 5th
//! read), not drawn at random, so a client that behaves the same meets the same
//! adversities run after run and a failure reproduces.

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::grade::observed::{Adversity, Forgery, Observations, Route};
use crate::grade::rules::Tolerances;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sparring {
    /// Record every request and delivery for the grade (`mock --grade` turns it on).
    pub record: bool,
    /// What batch POSTs meet, by their ordinal (1-based, retries counted).
    pub batches: Adversities,
    /// What reads (list and get) meet, by their ordinal.
    pub reads: Adversities,
    /// Forged copies of the first genuine delivery to each endpoint a client registers.
    pub forge: Vec<Forgery>,
    /// How forgiving the grade is.
    pub grade: Tolerances,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Adversities {
    /// 429 with Retry-After and retry-after-ms.
    pub throttled: Vec<u64>,
    /// 429 with no header saying how long to wait.
    pub throttled_silent: Vec<u64>,
    /// 503 before any work is done.
    pub server_error: Vec<u64>,
    /// Accepted (the runs exist), then answered 500 (batch POSTs only).
    pub accepted_then_failed: Vec<u64>,
}

impl Adversities {
    fn at(&self, n: u64) -> Option<Adversity> {
        [
            (&self.throttled, Adversity::Throttled),
            (&self.throttled_silent, Adversity::ThrottledSilent),
            (&self.server_error, Adversity::ServerError),
            (&self.accepted_then_failed, Adversity::AcceptedThenFailed),
        ]
        .into_iter()
        .find_map(|(at, a)| at.contains(&n).then_some(a))
    }
}

/// What the mock records while sparring, and the ordinals adversities are placed by.
#[derive(Debug, Default)]
pub struct Recorder {
    pub observed: Mutex<Observations>,
    counts: Mutex<(u64, u64)>,
    /// Endpoints whose first genuine delivery has been forged already.
    pub forged: Mutex<Vec<String>>,
    /// Forged deliveries sent and not answered yet.
    pub forging: std::sync::atomic::AtomicU64,
    /// An accepted-then-failed answer whose batch POST was refused anyway: it goes to the
    /// next batch POST with no adversity of its own, so every client meets it.
    carried: std::sync::atomic::AtomicBool,
}

impl Recorder {
    /// The accepted-then-failed answer found nothing accepted: carry it to the next batch.
    pub fn carry_accepted_then_failed(&self) {
        self.carried.store(true, Ordering::SeqCst);
    }

    /// Counts a request on `route` and says which adversity, if any, it meets.
    pub fn adversity(&self, sparring: &Sparring, route: Route) -> Option<Adversity> {
        let mut c = self.counts.lock().expect("counts");
        match route {
            Route::Batch => {
                c.0 += 1;
                let own = sparring.batches.at(c.0);
                if own.is_none() && self.carried.swap(false, Ordering::SeqCst) {
                    return Some(Adversity::AcceptedThenFailed);
                }
                own
            }
            Route::List | Route::Get => {
                c.1 += 1;
                // Accepted-then-failed means nothing for a read.
                sparring
                    .reads
                    .at(c.1)
                    .filter(|a| *a != Adversity::AcceptedThenFailed)
            }
            _ => None,
        }
    }
}
