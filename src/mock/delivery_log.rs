//! What happened to each webhook delivery, kept in a bounded log (`/_mock/deliveries`):
//! every attempt's time, status or error and duration, and the outcome.

use std::collections::VecDeque;

use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};

use super::Shared;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Formatted only when the log is read (RFC 3339, as `to_rfc3339` writes it).
    #[serde(serialize_with = "rfc3339")]
    pub at: chrono::DateTime<Utc>,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub millis: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub event_id: String,
    pub event_type: String,
    pub run_id: String,
    pub batch_id: Option<String>,
    pub endpoint_id: String,
    /// delivered, failed (gave up) or dropped (a fault or defect).
    pub outcome: &'static str,
    pub attempts: Vec<Attempt>,
}

fn rfc3339<S: serde::Serializer>(at: &chrono::DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339())
}

/// The last N finished deliveries, oldest first.
#[derive(Debug)]
pub struct DeliveryLog {
    cap: usize,
    pub records: VecDeque<DeliveryRecord>,
}

impl DeliveryLog {
    pub fn new(cap: usize) -> DeliveryLog {
        DeliveryLog {
            cap: cap.max(1),
            records: VecDeque::new(),
        }
    }

    pub fn push(&mut self, r: DeliveryRecord) {
        if self.records.len() == self.cap {
            self.records.pop_front();
        }
        self.records.push_back(r);
    }
}

/// The deliveries log as JSON, newest last, at most `limit` entries.
pub fn log_json(shared: &Shared, limit: usize) -> Value {
    let log = shared.log.lock().expect("log");
    let skip = log.records.len().saturating_sub(limit);
    json!(log.records.iter().skip(skip).collect::<Vec<_>>())
}
