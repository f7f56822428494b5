//! What a run saw: one record per submitted batch and per input, and the correlation of
//! submissions, polls and webhooks into exactly one outcome per input — result seen (with
//! status, channel and end-to-end latency), missing at the deadline, or rejected at
//! submission. Duplicates, unknown runs and out-of-order observations are counted, never
//! folded into the outcome.
//!
//! Layout:
//! - `outcomes`: the ledger's vocabulary (batch outcomes and records, webhook and anomaly
//!   counters, missing-input evidence), as a report reads it;
//! - `ledger`: the ledger, its fields and the bookkeeping of batches and inputs;
//! - `correlate`: submissions, polls and webhooks matched into one outcome per input;
//! - `access`: reading and steering the ledger from outside;
//! - `records`: compact per-input records; `invariants`: the accounting's own promises;
//! - `journal`: what survives a kill; `poller`: results by polling.

mod access;
mod correlate;
pub mod invariants;
pub mod journal;
mod ledger;
mod outcomes;
pub mod poller;
mod records;

pub use invariants::{Faults, Invariant, InvariantResult};
pub use journal::Journal;
pub use ledger::{Ledger, value_hash};
pub use outcomes::{Anomalies, BatchOutcome, BatchRecord, Channel, MissingExample, WebhookCounts};
pub use records::{InputRecord, SeenAt};

#[cfg(test)]
mod tests;
