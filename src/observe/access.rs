//! Reading and steering the ledger from outside `observe`: read-only views of what the run
//! saw (batches, inputs, counters, histograms, findings) and the switches a run sets as it
//! goes (judging, settling, the journal).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::records::InputRecord;
use super::{Anomalies, BatchRecord, Journal, Ledger, WebhookCounts};
use crate::checks::Findings;
use crate::metrics::{Latency, Timeline};

/// Reading and steering the ledger from outside: the fields stay private, so every change
/// to the accounting goes through the methods that keep its invariants.
impl Ledger {
    /// When the run started: every recorded time is an offset from it.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Every registered batch, in registration (schedule) order.
    pub fn batches(&self) -> &[BatchRecord] {
        &self.batches
    }

    /// Input `seq`'s record.
    pub fn input(&self, seq: u64) -> Option<&InputRecord> {
        self.inputs.get(seq as usize)
    }

    /// Inputs tracked (zero when the run collects no results).
    pub fn input_count(&self) -> usize {
        self.inputs.len()
    }

    /// Judge deliveries for the webhook rules (the scenario has a `checks:` block).
    pub fn set_judging(&mut self, judge: bool) {
        self.judge = judge;
    }

    /// The API version of the webhook endpoint the run registered: its deliveries follow it.
    pub fn set_endpoint_version(&mut self, version: crate::api::ApiVersion) {
        self.endpoint_version = Some(version);
    }

    /// How to rebuild the metadata an input (batch index, input index) was sent with.
    pub fn set_expected_metadata(&mut self, f: Box<dyn Fn(u64, u64) -> Value + Send>) {
        self.expected_metadata = Some(f);
    }

    /// The metadata input `input` of batch `batch` was sent with, rebuilt.
    pub fn expected_metadata(&self, batch: u64, input: u64) -> Option<Value> {
        self.expected_metadata.as_ref().map(|f| f(batch, input))
    }

    /// Every result is in: the poller keeps polling every batch while the run settles.
    pub fn start_settling(&mut self) {
        self.settling = true;
    }

    /// A resume: an input needs polling only while no channel has seen it.
    pub fn poll_until_seen(&mut self) {
        self.poll_until_seen = true;
    }

    /// Results first seen from now on are not timed: after a kill, when a run finished
    /// is unknown, and the resume's poll time would inflate every latency.
    pub fn untimed_from_now(&mut self) {
        self.untimed_after = Some(Instant::now());
    }

    /// Runs whose first result came too late to time (see `untimed_from_now`).
    pub fn untimed(&self) -> u64 {
        self.untimed
    }

    pub fn webhooks(&self) -> &WebhookCounts {
        &self.webhooks
    }

    /// Deliveries the receiver refused on purpose (`results.webhooks.refuse_first`).
    pub fn set_refused(&mut self, refused: u64) {
        self.webhooks.refused = refused;
    }

    /// What the receiver saw of other endpoints' deliveries, and this run's endpoint's
    /// fate.
    pub fn set_endpoint(&mut self, foreign: u64, endpoint: Option<String>, removed: bool) {
        self.webhooks.foreign = foreign;
        self.webhooks.endpoint = endpoint;
        self.webhooks.endpoint_removed = removed;
    }

    pub fn anomalies(&self) -> &Anomalies {
        &self.anomalies
    }

    /// Credits reported in the runs' `usage`, once per input, and how many inputs' runs
    /// reported them.
    pub fn credits(&self) -> (f64, u64) {
        self.credits
    }

    /// Contract findings from what the run saw.
    pub fn findings(&self) -> &Findings {
        &self.findings
    }

    /// Adds findings judged elsewhere (a submission's answers).
    pub fn add_findings(&mut self, findings: Findings) {
        self.findings.merge(findings);
    }

    /// A batch the probes created: its results are not the load's.
    pub fn mark_probe_batch(&mut self, batch_id: String) {
        self.probe_batches.insert(batch_id);
    }

    /// A run the probes created: its results are not the load's.
    pub fn mark_probe_run(&mut self, run_id: String) {
        self.probe_runs.insert(run_id);
    }

    /// End-to-end latency of every input's first result.
    pub fn e2e(&self) -> &Latency {
        &self.e2e
    }

    /// Submit → last run terminal, for batches whose runs all finished.
    pub fn batch_completion(&self) -> &Latency {
        &self.batch_completion
    }

    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The process's memory, sampled at `since` after the start.
    pub fn record_rss(&mut self, since: Duration, kib: u64) {
        self.timeline.at(since).rss_kib = kib;
    }

    /// Appends the accounting to `journal` from now on.
    pub fn set_journal(&mut self, journal: Journal) {
        self.journal = Some(journal);
    }

    /// Records in the journal the webhook endpoint the run registered, or removed.
    pub fn journal_endpoint(&mut self, id: &str, removed: bool) {
        if let Some(j) = self.journal.as_mut() {
            j.endpoint(id, removed);
        }
    }

    /// Flushes the journal's buffered results to its file, after the webhook counters
    /// when they changed; its first write error, if any.
    pub fn flush_journal(&mut self) -> Option<(std::path::PathBuf, String)> {
        let j = self.journal.as_mut()?;
        j.webhooks(&self.webhooks);
        j.flush();
        j.error.clone().map(|e| (j.path.clone(), e))
    }
}
