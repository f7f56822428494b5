//! The ledger itself: the one record of a run, its fields, and the bookkeeping of batches
//! and inputs as they are registered, settled and linked to runs — what is outstanding,
//! what is missing. Correlating results lives in `correlate`; reading and steering the
//! ledger from outside in `access`. The fields are visible to `observe` only, so every
//! change to the accounting from elsewhere goes through the methods that keep its
//! invariants.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::records::{self, InputRecord, RunIds};
use super::{
    Anomalies, BatchOutcome, BatchRecord, Faults, Invariant, Journal, MissingExample, WebhookCounts,
};
use crate::checks::Findings;
use crate::metrics::{Latency, Timeline};

pub struct Ledger {
    pub(super) start: Instant,
    pub(super) track_inputs: bool,
    /// Set once every result is in: the poller then keeps polling every batch.
    pub(super) settling: bool,
    /// A resume: an input needs polling only while no channel has seen it (results seen by
    /// webhook before the kill need no second look).
    pub(super) poll_until_seen: bool,
    pub(super) batches: Vec<BatchRecord>,
    /// One compact record per input of every registered batch (when tracking inputs).
    pub(super) inputs: Vec<InputRecord>,
    pub(super) run_ids: RunIds,
    /// Further runs tied to an input that already had one (a target creating two runs
    /// for one input): rare, so kept by text.
    pub(super) extra_runs: HashMap<String, u64>,
    /// Position in `batches` of each registered batch index. A map, not a search: shards
    /// skip indices and nothing may depend on batches arriving in index order.
    pub(super) by_index: HashMap<u64, usize>,
    pub(super) by_batch_id: HashMap<String, usize>,
    pub(super) event_ids: HashSet<u128>,
    /// How this run's inputs are tagged (None: they carry no tag).
    pub(super) tagging: Option<crate::scenario::Tagging>,
    /// Rebuilds the metadata an input (batch index, input index) was sent with, to compare
    /// with what comes back; None skips the comparison.
    pub(super) expected_metadata: Option<Box<dyn Fn(u64, u64) -> Value + Send>>,
    pub(super) webhooks: WebhookCounts,
    pub(super) anomalies: Anomalies,
    /// Credits the runs' `usage` reported, and how many runs reported it.
    pub(super) credits: (f64, u64),
    /// Contract findings from what the run saw (submissions, webhooks, polls).
    pub(super) findings: Findings,
    /// Judge deliveries for the webhook rules (a `checks:` block is present); costs one
    /// set of event ids and one counter per run.
    pub(super) judge: bool,
    pub(super) judged_events: HashSet<u128>,
    /// The API version of the webhook endpoint the run registered (None: not registered
    /// by the run, so unknown).
    pub(super) endpoint_version: Option<crate::api::ApiVersion>,
    /// Terminal events (distinct eventIds) per run id digest, signed or not.
    pub(super) terminal_events: HashMap<u128, records::TerminalEvents>,
    /// Batches and runs the probes created: not the load's.
    pub(super) probe_batches: HashSet<String>,
    pub(super) probe_runs: HashSet<String>,
    /// Since when the results' reads have found no target, and what they saw: None while
    /// it answers.
    pub(super) outage: Option<(Instant, String)>,
    /// Run events that arrived before their batch's submission was answered.
    pub(super) early: Vec<(usize, Value, bool, bool, Instant)>,
    pub(super) e2e: Latency,
    pub(super) batch_completion: Latency,
    /// From when results are first seen too late to time (a resume after a kill): such
    /// runs finished at some unknown moment while nothing watched.
    pub(super) untimed_after: Option<Instant>,
    /// Runs first seen after `untimed_after`, left out of e2e and batch completion.
    pub(super) untimed: u64,
    pub(super) timeline: Timeline,
    /// States the accounting promises never happen, counted when they do.
    pub(super) faults: Faults,
    /// Where the run's accounting is appended as it happens (see `journal`).
    pub(super) journal: Option<Journal>,
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
    /// A read of the results found the target (`None`) or did not (what it saw): an
    /// outage lasts from the first failed read to the next answer.
    pub fn reach(&mut self, failure: Option<String>) {
        match failure {
            None => self.outage = None,
            Some(what) => {
                if self.outage.is_none() {
                    self.outage = Some((Instant::now(), what));
                }
            }
        }
    }

    /// The outage going on now, if any: since when, and what the first failed read saw.
    pub fn outage(&self) -> Option<&(Instant, String)> {
        self.outage.as_ref()
    }

    /// This run's nonce, as its inputs' tags carry it: a tag with another nonce is another
    /// run's.
    pub fn set_nonce(&mut self, nonce: &str) {
        if let Some(t) = &mut self.tagging {
            t.nonce = nonce.to_string();
        }
    }

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
            tagging: correlation_key.map(|key| crate::scenario::Tagging {
                key,
                nonce: String::new(),
            }),
            expected_metadata: None,
            webhooks: WebhookCounts::default(),
            anomalies: Anomalies::default(),
            credits: (0.0, 0),
            findings: Findings::default(),
            judge: false,
            judged_events: HashSet::new(),
            endpoint_version: None,
            terminal_events: HashMap::new(),
            probe_batches: HashSet::new(),
            probe_runs: HashSet::new(),
            outage: None,
            early: Vec::new(),
            e2e: Latency::default(),
            batch_completion: Latency::default(),
            untimed_after: None,
            untimed: 0,
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
    pub(super) fn find_run(&self, run_id: &str) -> Option<u64> {
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
    pub(super) fn batch_id_of(&self, seq: u64) -> Option<&str> {
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
