//! What a run saw: one record per submitted batch and per input, and the correlation of
//! submissions, polls and webhooks into exactly one outcome per input — result seen (with
//! status, channel and end-to-end latency), missing at the deadline, or rejected at
//! submission. Duplicates, unknown runs and out-of-order observations are counted, never
//! folded into the outcome.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks::Findings;
use crate::metrics::{Latency, Timeline};

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

pub struct Ledger {
    start: Instant,
    track_inputs: bool,
    /// Set once every result is in: the poller then keeps polling every batch.
    settling: bool,
    /// A resume: an input needs polling only while no channel has seen it (results seen by
    /// webhook before the kill need no second look).
    poll_until_seen: bool,
    batches: Vec<BatchRecord>,
    /// One compact record per input of every registered batch (when tracking inputs).
    inputs: Vec<InputRecord>,
    run_ids: RunIds,
    /// Further runs tied to an input that already had one (a target creating two runs
    /// for one input): rare, so kept by text.
    extra_runs: HashMap<String, u64>,
    /// Position in `batches` of each registered batch index. A map, not a search: shards
    /// skip indices and nothing may depend on batches arriving in index order.
    by_index: HashMap<u64, usize>,
    by_batch_id: HashMap<String, usize>,
    event_ids: HashSet<u128>,
    correlation_key: Option<String>,
    /// Rebuilds the metadata an input (batch index, input index) was sent with, to compare
    /// with what comes back; None skips the comparison.
    expected_metadata: Option<Box<dyn Fn(u64, u64) -> Value + Send>>,
    webhooks: WebhookCounts,
    anomalies: Anomalies,
    /// Credits the runs' `usage` reported, and how many runs reported it.
    credits: (f64, u64),
    /// Contract findings from what the run saw (submissions, webhooks, polls).
    findings: Findings,
    /// Judge deliveries for the webhook rules (a `checks:` block is present); costs one
    /// set of event ids and one counter per run.
    judge: bool,
    judged_events: HashSet<u128>,
    /// Terminal events (distinct eventIds) per run id digest, signed or not.
    terminal_events: HashMap<u128, records::TerminalEvents>,
    /// Batches and runs the probes created: not the load's.
    probe_batches: HashSet<String>,
    probe_runs: HashSet<String>,
    /// Run events that arrived before their batch's submission was answered.
    early: Vec<(usize, Value, bool, bool, Instant)>,
    e2e: Latency,
    batch_completion: Latency,
    timeline: Timeline,
    /// States the accounting promises never happen, counted when they do.
    faults: Faults,
    /// Where the run's accounting is appended as it happens (see `journal`).
    journal: Option<Journal>,
}

/// A hash of a JSON value that ignores object key order (targets may reorder keys), made
/// without cloning or serialising: it sits on the submission path of every input.
pub fn value_hash(v: &Value) -> u64 {
    fn feed(v: &Value, h: &mut std::collections::hash_map::DefaultHasher) {
        match v {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => (1u8, b).hash(h),
            Value::Number(n) => (2u8, n.to_string()).hash(h),
            Value::String(s) => (3u8, s).hash(h),
            Value::Array(a) => {
                (4u8, a.len()).hash(h);
                for x in a {
                    feed(x, h);
                }
            }
            Value::Object(m) => {
                (5u8, m.len()).hash(h);
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_unstable();
                for k in keys {
                    k.hash(h);
                    feed(&m[k], h);
                }
            }
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    feed(v, &mut h);
    h.finish()
}

impl Ledger {
    /// `track_inputs: false` keeps only per-batch records: for submission-only runs, where
    /// no result is expected and per-input records would only cost memory.
    pub fn new(start: Instant, correlation_key: Option<String>, track_inputs: bool) -> Ledger {
        Ledger {
            track_inputs,
            settling: false,
            poll_until_seen: false,
            start,
            batches: Vec::new(),
            by_index: HashMap::new(),
            by_batch_id: HashMap::new(),
            inputs: Vec::new(),
            run_ids: RunIds::default(),
            extra_runs: HashMap::new(),
            event_ids: HashSet::new(),
            correlation_key,
            expected_metadata: None,
            webhooks: WebhookCounts::default(),
            anomalies: Anomalies::default(),
            credits: (0.0, 0),
            findings: Findings::default(),
            judge: false,
            judged_events: HashSet::new(),
            terminal_events: HashMap::new(),
            probe_batches: HashSet::new(),
            probe_runs: HashSet::new(),
            early: Vec::new(),
            e2e: Latency::default(),
            batch_completion: Latency::default(),
            timeline: Timeline::default(),
            faults: Faults::default(),
            journal: None,
        }
    }

    /// Registers a batch of `count` inputs before it is built and sent. The load engine
    /// registers batches in schedule order; a second registration of one index is a fault.
    pub fn add_batch(&mut self, index: u64, intended: Instant, count: u64) -> u64 {
        let first_seq = self.inputs.len() as u64;
        let pos = self.batches.len();
        if self.by_index.insert(index, pos).is_some() {
            self.faults.record(
                Invariant::OneOutcome,
                format!("batch #{index} was registered twice"),
            );
        }
        if self.track_inputs {
            self.inputs
                .extend((0..count).map(|_| InputRecord::new(pos as u32)));
        }
        if let Some(j) = &mut self.journal {
            let us = intended.saturating_duration_since(self.start).as_micros() as u64;
            j.scheduled(index, count, us);
        }
        self.batches.push(BatchRecord {
            index,
            first_seq,
            inputs: count as u32,
            intended,
            outcome: BatchOutcome::Pending,
            answered: None,
            throttles: 0,
            terminal: 0,
            last_terminal: None,
            credits: 0.0,
            credited: 0,
        });
        first_seq
    }

    pub fn batch_position(&self, index: u64) -> Option<usize> {
        self.by_index.get(&index).copied()
    }

    /// Records how batch `index` ended. Its outcome is set once: an answer for a batch
    /// never registered, or a second answer, is a fault of the harness, never dropped.
    pub fn settle_batch(&mut self, index: u64, outcome: BatchOutcome, at: Instant, throttles: u32) {
        let Some(pos) = self.batch_position(index) else {
            self.faults.record(
                Invariant::OneOutcome,
                format!("batch #{index} was answered ({outcome:?}) but never registered"),
            );
            return;
        };
        if self.batches[pos].outcome != BatchOutcome::Pending {
            let first = self.batches[pos].outcome.clone();
            self.faults.record(
                Invariant::OneOutcome,
                format!("batch #{index} was answered twice: {first:?}, then {outcome:?}"),
            );
            return;
        }
        let since = at.saturating_duration_since(self.start);
        let inputs = self.batches[pos].inputs as u64;
        {
            let sec = self.timeline.at(since);
            sec.throttles += throttles as u64;
            match &outcome {
                BatchOutcome::Accepted { .. } => {
                    sec.batches_submitted += 1;
                    sec.runs_submitted += inputs;
                }
                BatchOutcome::Pending => {}
                _ => sec.http_errors += 1,
            }
        }
        if let BatchOutcome::Accepted { batch_id } = &outcome {
            self.by_batch_id.insert(batch_id.clone(), pos);
        }
        if let Some(j) = &mut self.journal {
            j.settled(index, since.as_micros() as u64, throttles, &outcome);
        }
        let b = &mut self.batches[pos];
        b.outcome = outcome;
        b.answered = Some(at);
        b.throttles = throttles;
        if self.early.iter().any(|e| e.0 == pos) {
            let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early)
                .into_iter()
                .partition(|e| e.0 == pos);
            self.early = later;
            for (_, event, verified, fresh, arrived) in now {
                self.run_event(&event, verified, fresh, arrived);
            }
        }
    }

    /// Accepted batches whose inputs do not all have a result on the poll channel.
    pub fn batches_to_poll(&self) -> Vec<(u64, String)> {
        self.batches
            .iter()
            .filter(|_| self.track_inputs)
            .filter_map(|b| match &b.outcome {
                BatchOutcome::Accepted { batch_id } => {
                    let range = b.first_seq as usize..(b.first_seq + b.inputs as u64) as usize;
                    let done = self.inputs[range].iter().all(|i| {
                        if self.poll_until_seen {
                            i.first_seen().is_some()
                        } else {
                            i.poll().is_some()
                        }
                    });
                    (!done || self.settling).then(|| (b.index, batch_id.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Ties a run found by the audit to its input, if the input has none yet.
    pub fn link_run(&mut self, run_id: &str, seq: u64) {
        if self.inputs.get(seq as usize).is_some_and(|i| !i.has_run())
            && self.find_run(run_id).is_none()
        {
            self.run_ids.link(&mut self.inputs, seq, run_id);
        }
    }

    /// The input a run id is tied to.
    fn find_run(&self, run_id: &str) -> Option<u64> {
        self.run_ids
            .find(&self.inputs, run_id)
            .or_else(|| self.extra_runs.get(run_id).copied())
    }

    /// The run id tied to input `seq`.
    pub fn run_id(&self, seq: u64) -> Option<&str> {
        self.run_ids.of(self.inputs.get(seq as usize)?)
    }

    /// The distinct terminal events seen for `run_id` (recorded while judging webhooks).
    pub fn terminal_events_of(&self, run_id: &str) -> records::TerminalEvents {
        self.terminal_events
            .get(&records::digest(run_id))
            .copied()
            .unwrap_or_default()
    }

    /// The instant `micros` after the run's start.
    pub fn instant(&self, micros: u64) -> Instant {
        self.start + Duration::from_micros(micros)
    }

    /// Bytes the per-input accounting holds (records, run ids, event digests): the figure
    /// `scripts/bench_scale.sh` divides by the runs.
    pub fn accounting_bytes(&self) -> usize {
        self.inputs.capacity() * std::mem::size_of::<InputRecord>()
            + self.run_ids.heap_bytes()
            + (self.event_ids.capacity() + self.judged_events.capacity()) * 17
            + self.terminal_events.capacity() * 21
    }

    /// The batch id of the batch input `seq` belongs to.
    fn batch_id_of(&self, seq: u64) -> Option<&str> {
        let b = &self.batches[self.inputs.get(seq as usize)?.batch as usize];
        match &b.outcome {
            BatchOutcome::Accepted { batch_id } => Some(batch_id),
            _ => None,
        }
    }

    /// Inputs of accepted batches.
    pub fn accepted_inputs(&self) -> impl Iterator<Item = (&BatchRecord, u64, &InputRecord)> {
        self.batches
            .iter()
            .filter(|b| self.track_inputs && matches!(b.outcome, BatchOutcome::Accepted { .. }))
            .flat_map(move |b| {
                (0..b.inputs as u64).map(move |i| (b, i, &self.inputs[(b.first_seq + i) as usize]))
            })
    }

    /// Accepted inputs not yet seen terminal by webhook, and by polling.
    pub fn coverage(&self) -> (u64, u64) {
        let (mut webhook, mut poll) = (0, 0);
        for (_, _, r) in self.accepted_inputs() {
            webhook += u64::from(r.webhook().is_none());
            poll += u64::from(r.poll().is_none());
        }
        (webhook, poll)
    }

    /// How many results are still outstanding (for progress display).
    pub fn outstanding(&self) -> u64 {
        self.accepted_inputs()
            .filter(|(_, _, r)| r.first_seen().is_none())
            .count() as u64
    }

    pub fn missing_examples(&self, limit: usize) -> Vec<MissingExample> {
        self.accepted_inputs()
            .filter(|(_, _, r)| r.first_seen().is_none())
            .take(limit)
            .map(|(b, i, r)| MissingExample {
                batch_index: b.index,
                batch_id: match &b.outcome {
                    BatchOutcome::Accepted { batch_id } => Some(batch_id.clone()),
                    _ => None,
                },
                input_index: i,
                run_id: self.run_ids.of(r).map(str::to_string),
                last_status: r.last_status.map(|s| s.as_str().to_string()),
            })
            .collect()
    }
}

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

    pub fn webhooks(&self) -> &WebhookCounts {
        &self.webhooks
    }

    /// Deliveries the receiver refused on purpose (`results.webhooks.refuse_first`).
    pub fn set_refused(&mut self, refused: u64) {
        self.webhooks.refused = refused;
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

    /// Flushes the journal's buffered results to its file, after the webhook counters
    /// when they changed; its first write error, if any.
    pub fn flush_journal(&mut self) -> Option<(std::path::PathBuf, String)> {
        let j = self.journal.as_mut()?;
        j.webhooks(&self.webhooks);
        j.flush();
        j.error.clone().map(|e| (j.path.clone(), e))
    }
}

mod correlate;
pub mod invariants;
pub mod journal;
pub mod poller;
mod records;

pub use journal::Journal;

pub use invariants::{Faults, Invariant, InvariantResult};
use records::RunIds;
pub use records::{InputRecord, SeenAt};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RunStatus;
    use crate::webhook::receiver::Delivery;
    use crate::webhook::signing;

    fn ledger() -> Ledger {
        let start = Instant::now();
        let mut l = Ledger::new(start, Some("bp_input".into()), true);
        l.add_batch(0, start, 1);
        l.settle_batch(
            0,
            BatchOutcome::Accepted {
                batch_id: "batch_x".into(),
            },
            start,
            0,
        );
        let run = serde_json::json!({"id": "workflow_run_1", "status": "PROCESSING", "batchId": "batch_x", "metadata": {"bp_input": "0:0"}});
        l.poll_run(run.as_object().unwrap(), Instant::now());
        l
    }

    #[test]
    fn a_stale_list_page_read_after_the_webhook_is_not_out_of_order() {
        let mut l = ledger();
        l.observe(
            0,
            "workflow_run_1",
            RunStatus::Processed,
            Instant::now(),
            Channel::Webhook,
            None,
        );
        // A list page fetched before completion, read after the webhook.
        l.poll_status("workflow_run_1", RunStatus::Processing, Instant::now());
        assert_eq!(l.anomalies.out_of_order, 0);
    }

    /// A signed delivery of `status` for `run_id`, with event id `event`.
    fn delivery(event: &str, run_id: &str, status: &str, tag: &str) -> Delivery {
        let event_type = match status {
            "PROCESSED" => "workflow_run.completed",
            "NEEDS_REVIEW" => "workflow_run.needs_review",
            "REJECTED" => "workflow_run.rejected",
            _ => "workflow_run.failed",
        };
        let body = serde_json::json!({"eventId": event, "eventType": event_type,
            "payload": {"id": run_id, "status": status, "batchId": "batch_x", "metadata": {"bp_input": tag}}});
        let body = bytes::Bytes::from(serde_json::to_vec(&body).unwrap());
        let now = chrono::Utc::now().timestamp();
        Delivery {
            arrived: Instant::now(),
            timestamp: Some(now.to_string()),
            signature: Some(signing::sign("wss_s", now, &body)),
            body,
        }
    }

    #[test]
    fn a_review_after_needs_review_is_one_legitimate_sequence() {
        let mut l = ledger();
        l.judge = true;
        let age = Duration::from_secs(300);
        l.ingest_delivery(
            &delivery("evt_1", "workflow_run_1", "NEEDS_REVIEW", "0:0"),
            "wss_s",
            age,
        );
        l.ingest_delivery(
            &delivery("evt_2", "workflow_run_1", "REJECTED", "0:0"),
            "wss_s",
            age,
        );
        assert_eq!(
            l.anomalies.duplicates, 0,
            "the review's outcome is no duplicate"
        );
        assert_eq!(
            l.inputs[0].webhook().map(|s| s.status),
            Some(RunStatus::Rejected),
            "the input ends with the review's outcome"
        );
        let events = l.terminal_events_of("workflow_run_1");
        assert!(events.legitimate(), "{:?}", events.statuses());
        let mut findings = Findings::default();
        l.judge_terminal_events(&mut findings);
        assert_eq!(
            (
                findings.checked("webhook.one_terminal"),
                findings.failed("webhook.one_terminal")
            ),
            (1, 0)
        );

        // A second final outcome is not legitimate, nor is a status announced twice.
        l.ingest_delivery(
            &delivery("evt_3", "workflow_run_1", "PROCESSED", "0:0"),
            "wss_s",
            age,
        );
        assert_eq!(l.anomalies.duplicates, 1);
        assert!(!l.terminal_events_of("workflow_run_1").legitimate());
        let mut findings = Findings::default();
        l.judge_terminal_events(&mut findings);
        assert_eq!(findings.failed("webhook.one_terminal"), 1);
    }

    #[test]
    fn terminal_event_sets_are_judged_by_status_not_by_arrival() {
        use records::TerminalEvents;
        let set = |s: &[RunStatus]| {
            let mut t = TerminalEvents::default();
            for x in s {
                t.add(*x);
            }
            t
        };
        use RunStatus::*;
        for ok in [
            &[Processed][..],
            &[Failed],
            &[NeedsReview],
            &[NeedsReview, Rejected],
            &[Rejected, NeedsReview],
            &[NeedsReview, Processed],
        ] {
            assert!(set(ok).legitimate(), "{ok:?}");
        }
        for bad in [
            &[][..],
            &[Processed, Processed],
            &[Processed, Failed],
            &[Rejected, Processed],
            &[NeedsReview, NeedsReview],
            &[NeedsReview, Rejected, Processed],
            &[NeedsReview, Failed],
        ] {
            assert!(!set(bad).legitimate(), "{bad:?}");
        }
    }

    #[test]
    fn webhook_metadata_never_passes_for_a_delivery_matched_to_no_input() {
        let start = Instant::now();
        let mut l = Ledger::new(start, Some("bp_input".into()), true);
        l.judge = true;
        l.add_batch(0, start, 1);
        l.settle_batch(
            0,
            BatchOutcome::Accepted {
                batch_id: "batch_x".into(),
            },
            start,
            0,
        );
        l.set_expected_metadata(Box::new(
            |b, i| serde_json::json!({"bp_input": format!("{b}:{i}")}),
        ));
        // Tag of no input of ours, and a run id nothing links: matched to no input.
        l.ingest_delivery(
            &delivery("evt_9", "workflow_run_other", "PROCESSED", "9:9"),
            "wss_s",
            Duration::from_secs(300),
        );
        assert_eq!(l.webhooks.unmatched, 1);
        assert_eq!(
            l.findings.checked("webhook.metadata"),
            0,
            "no pass without evidence"
        );
    }

    #[test]
    fn going_backwards_on_one_channel_is_out_of_order() {
        let mut l = ledger();
        l.poll_status("workflow_run_1", RunStatus::Processed, Instant::now());
        l.poll_status("workflow_run_1", RunStatus::Processing, Instant::now());
        assert_eq!(l.anomalies.out_of_order, 1);
        assert_eq!(l.anomalies.duplicates, 0);
    }

    #[test]
    fn a_webhook_quicker_than_the_submit_answer_is_kept_until_the_answer() {
        let start = Instant::now();
        let mut l = Ledger::new(start, Some("bp_input".into()), true);
        l.judge = true;
        l.add_batch(0, start, 1);
        let body = serde_json::json!({"eventId": "evt_1", "eventType": "workflow_run.completed",
            "payload": {"id": "workflow_run_1", "status": "PROCESSED", "batchId": "batch_x", "metadata": {"bp_input": "0:0"}}});
        let body = bytes::Bytes::from(serde_json::to_vec(&body).unwrap());
        let now = chrono::Utc::now().timestamp();
        let d = Delivery {
            arrived: Instant::now(),
            timestamp: Some(now.to_string()),
            signature: Some(signing::sign("wss_s", now, &body)),
            body,
        };
        l.ingest_delivery(&d, "wss_s", Duration::from_secs(300));
        assert!(
            l.inputs[0].webhook().is_none(),
            "not yet: the batch is unanswered"
        );
        l.settle_batch(
            0,
            BatchOutcome::Accepted {
                batch_id: "batch_x".into(),
            },
            Instant::now(),
            0,
        );
        assert!(
            l.inputs[0].webhook().is_some(),
            "replayed once the batch is accepted"
        );
        assert_eq!(l.anomalies.from_unconfirmed_batches, 0);
        assert_eq!(l.terminal_events_of("workflow_run_1").count(), 1);
        assert_eq!(l.findings.checked("webhook.batch_id"), 1);
        assert_eq!(l.findings.failed("webhook.batch_id"), 0);
    }

    #[test]
    fn batches_registered_out_of_order_are_found_and_faults_are_counted() {
        let start = Instant::now();
        let mut l = Ledger::new(start, Some("bp_input".into()), true);
        for index in [3, 1, 2, 0] {
            l.add_batch(index, start, 2);
        }
        for index in [0, 1, 2, 3] {
            let outcome = BatchOutcome::Accepted {
                batch_id: format!("batch_{index}"),
            };
            l.settle_batch(index, outcome, start, 0);
        }
        assert!(l.batches.iter().all(|b| b.outcome != BatchOutcome::Pending));
        // A result whose batchId names batch 1 but whose tag names batch 2, input 1.
        let run = serde_json::json!({"id": "workflow_run_9", "status": "PROCESSED", "batchId": "batch_1", "metadata": {"bp_input": "2:1"}});
        l.poll_run(run.as_object().unwrap(), Instant::now());
        let pos = l.batch_position(2).unwrap();
        assert!(
            l.inputs[l.batches[pos].first_seq as usize + 1]
                .poll()
                .is_some()
        );
        assert_eq!(l.anomalies.unknown, 0);
        assert!(l.judge_invariants(true).iter().all(|i| i.held));

        // What cannot happen is counted, never dropped.
        l.settle_batch(7, BatchOutcome::Throttled, start, 0);
        l.settle_batch(0, BatchOutcome::Throttled, start, 0);
        l.add_batch(3, start, 1);
        assert_eq!(l.faults.count(Invariant::OneOutcome), 3);
        let judged = l.judge_invariants(true);
        let one = judged
            .iter()
            .find(|i| i.id == "ledger.one_outcome_per_batch")
            .unwrap();
        // The duplicate registration of #3 is also a batch with no outcome.
        assert_eq!((one.held, one.violations), (false, 4));
        assert!(one.examples[0].contains("#7"), "{one:?}");
    }

    #[test]
    fn metadata_hash_ignores_key_order_but_not_values() {
        let a = serde_json::json!({"a": 1, "b": {"x": [1, 2], "y": null}});
        let b = serde_json::json!({"b": {"y": null, "x": [1, 2]}, "a": 1});
        let c = serde_json::json!({"b": {"y": null, "x": [2, 1]}, "a": 1});
        assert_eq!(value_hash(&a), value_hash(&b));
        assert_ne!(value_hash(&a), value_hash(&c));
        assert_ne!(
            value_hash(&serde_json::json!({"a": "1"})),
            value_hash(&serde_json::json!({"a": 1}))
        );
    }
}
