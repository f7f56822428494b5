//! Correlation: every delivery and every polled run is tied to exactly one input — by run
//! id once known, else by batchId and the correlation tag in its metadata — then judged
//! for the webhook rules and recorded on its channel. Whatever cannot be tied is counted
//! (unknown, probe, other event), never dropped.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;
use crate::api::PROBE_KEY;
use crate::api::{RUN_EVENT_TYPES, RunStatus};
use crate::checks::{self, Case, Findings, json_excerpt};
use crate::scenario::TagRead;
use crate::webhook::receiver::Delivery;
use crate::webhook::signing;

/// The run a delivery's payload is about: its id and status (both needed), and the
/// batchId and metadata that tie it to an input.
struct RunEvent<'a> {
    run_id: &'a str,
    status: RunStatus,
    batch_id: Option<&'a str>,
    metadata: Option<&'a Value>,
    payload: &'a Value,
}

impl<'a> RunEvent<'a> {
    fn of(event: &'a Value) -> Option<RunEvent<'a>> {
        let payload = event.get("payload")?;
        Some(RunEvent {
            run_id: payload.get("id")?.as_str()?,
            status: RunStatus::parse(payload.get("status")?.as_str()?)?,
            batch_id: payload.get("batchId").and_then(Value::as_str),
            metadata: payload.get("metadata"),
            payload,
        })
    }
}

impl Ledger {
    /// Finds the input a run belongs to: by run id if known, else by batch id and the
    /// correlation key in its metadata.
    pub(super) fn correlate(
        &mut self,
        run_id: &str,
        batch_id: Option<&str>,
        metadata: Option<&Value>,
    ) -> Option<u64> {
        if let Some(seq) = self.find_run(run_id) {
            return Some(seq);
        }
        let TagRead::Own { batch: b, index: i } = self.tagging.as_ref()?.read(metadata) else {
            return None;
        };
        // Prefer the batch the target named; fall back to the tag's own batch index when
        // the target left batchId out (counted separately as a contract problem).
        // A batchId naming another of our batches is the target's mistake (judged by
        // webhook.batch_id); the tag, which we wrote, still says whose result this is.
        let pos = batch_id
            .and_then(|id| self.by_batch_id.get(id))
            .copied()
            .filter(|&p| self.batches[p].index == b)
            .or_else(|| self.batch_position(b))?;
        let batch = &self.batches[pos];
        if i >= batch.inputs as u64 {
            return None;
        }
        Some(batch.first_seq + i)
    }

    /// Does this metadata carry our correlation tag for an input of a batch this run
    /// registered? Such a result can never be unknown.
    pub(super) fn names_own_input(&self, metadata: Option<&Value>) -> Option<(u64, u64)> {
        let TagRead::Own { batch: b, index: i } = self.tagging.as_ref()?.read(metadata) else {
            return None;
        };
        let pos = self.batch_position(b)?;
        (self.track_inputs && i < self.batches[pos].inputs as u64).then_some((b, i))
    }

    /// Is a result nothing ties to an input another run's? It is when its tag is another
    /// run's, or when it has no tag of ours and names a batch that is none of this run's.
    /// Our own tag wins over a wrong batchId: a target that puts another batch's id on
    /// this run's event is judged for it (`webhook.batch_id`), never excused as foreign.
    pub(super) fn is_foreign(&self, batch_id: Option<&str>, metadata: Option<&Value>) -> bool {
        let tag = self
            .tagging
            .as_ref()
            .map_or(TagRead::Absent, |t| t.read(metadata));
        match tag {
            TagRead::Own { .. } => false,
            TagRead::Other => !batch_id.is_some_and(|b| self.by_batch_id.contains_key(b)),
            TagRead::Absent => batch_id.is_some_and(|b| !self.by_batch_id.contains_key(b)),
        }
    }

    /// Counts a result nothing ties to an input; a fault when its tag names one of ours.
    pub(super) fn unknown_result(&mut self, run_id: &str, metadata: Option<&Value>) {
        self.anomalies.unknown += 1;
        if let Some((b, i)) = self.names_own_input(metadata) {
            self.faults.record(
                Invariant::NoUnknownOwnResult,
                format!(
                    "run {run_id} carries the tag of batch #{b} input {i} but was counted unknown"
                ),
            );
        }
    }

    /// The metadata input `seq` was sent with, rebuilt.
    pub(super) fn expected_for(&self, seq: u64) -> Option<Value> {
        let expected = self.expected_metadata.as_ref()?;
        let input = &self.inputs[seq as usize];
        let batch = &self.batches[input.batch as usize];
        Some(expected(batch.index, seq - batch.first_seq))
    }

    /// Does `seen` equal (keys in any order) the metadata input `seq` was sent with?
    pub(super) fn metadata_matches(&self, seq: u64, seen: Option<&Value>) -> bool {
        match self.expected_for(seq) {
            None => true,
            Some(want) => seen.is_some_and(|m| value_hash(m) == value_hash(&want)),
        }
    }

    /// Records a status seen for an input, with the credits its run reported when the
    /// channel showed them. The credits ride on the input's journal line when that line
    /// is written now; otherwise (a later sighting) on a line of their own.
    pub(super) fn observe(
        &mut self,
        seq: u64,
        run_id: &str,
        status: RunStatus,
        at: Instant,
        channel: Channel,
        credits: Option<f64>,
    ) {
        let carried = self.see(seq, run_id, status, at, channel, credits);
        if let (Some(credits), false) = (credits, carried) {
            self.credit(seq, credits);
        }
    }

    /// `observe` without the credits of a later sighting; true when it counted `credits`.
    fn see(
        &mut self,
        seq: u64,
        run_id: &str,
        status: RunStatus,
        at: Instant,
        channel: Channel,
        credits: Option<f64>,
    ) -> bool {
        let start = self.start;
        let batch = &self.batches[self.inputs[seq as usize].batch as usize];
        if !matches!(batch.outcome, BatchOutcome::Accepted { .. }) {
            // A result for a batch that answered 5xx or timed out: it was created after
            // all. Counted, but not as the result of an accepted input.
            self.anomalies.from_unconfirmed_batches += 1;
            return false;
        }
        match self.run_id(seq) {
            None => self.run_ids.link(&mut self.inputs, seq, run_id),
            Some(existing) if existing != run_id => {
                // A second run for one input (e.g. an extra run per batch).
                if status.is_terminal() {
                    self.anomalies.duplicates += 1;
                }
                self.extra_runs.insert(run_id.to_string(), seq);
                return false;
            }
            Some(_) => {}
        }
        let input = &mut self.inputs[seq as usize];
        let ch = channel as usize;
        if status.rank() < input.max_rank[ch] {
            self.anomalies.out_of_order += 1;
        }
        checks::runs::forward_only(
            &mut self.findings,
            run_id,
            input.max_rank[ch],
            status,
            match channel {
                Channel::Webhook => "webhook",
                Channel::Poll => "GET /workflow_runs (polling)",
            },
        );
        input.max_rank[ch] = input.max_rank[ch].max(status.rank());
        input.last_status = Some(status);
        if !status.is_terminal() {
            return false;
        }
        let before = input.first_seen();
        let micros = at.saturating_duration_since(start).as_micros() as u64;
        if !input.mark(channel, SeenAt { status, micros }) {
            if input.follow_review(channel, status) {
                if channel == Channel::Webhook {
                    self.webhooks.review_outcomes += 1;
                }
                return false;
            }
            if channel == Channel::Webhook {
                self.anomalies.duplicates += 1;
            }
            return false;
        }
        // Credited once per input, by whichever channel shows them first.
        let credits = credits.filter(|_| !input.credited);
        if let Some(j) = &mut self.journal {
            let b = &self.batches[input.batch as usize];
            j.result(
                b.index,
                seq - b.first_seq,
                channel,
                status,
                micros,
                run_id,
                credits,
            );
        }
        let pos = input.batch as usize;
        if let Some(c) = credits {
            self.count_credits(seq, c);
        }
        if before.is_none() {
            let timed = self.untimed_after.is_none_or(|t| at < t);
            if !timed {
                self.untimed += 1;
            }
            let b = &mut self.batches[pos];
            if timed {
                self.e2e.record(at.saturating_duration_since(b.intended));
            }
            b.terminal += 1;
            b.last_terminal = Some(at);
            if b.terminal == b.inputs && timed {
                self.batch_completion
                    .record(at.saturating_duration_since(b.intended));
            }
            let sec = self.timeline.at(at.saturating_duration_since(start));
            sec.runs_completed += 1;
            if status == RunStatus::Failed {
                sec.runs_failed += 1;
            }
        }
        credits.is_some()
    }

    /// Takes one raw delivery from the receiver: verify, de-duplicate, correlate, and
    /// judge it for the webhook rules. Only a verified delivery counts as a result; an
    /// unverified one is still judged for its content, so one broken rule (say, a stale
    /// timestamp) does not drag the others down with it.
    pub fn ingest_delivery(&mut self, d: &Delivery, secret: &str, max_age: Duration) {
        self.webhooks.received += 1;
        self.timeline
            .at(d.arrived.saturating_duration_since(self.start))
            .webhooks += 1;
        let now = chrono::Utc::now().timestamp();
        let verified = match signing::verify(
            secret,
            d.timestamp.as_deref(),
            d.signature.as_deref(),
            &d.body,
            now,
            max_age.as_secs() as i64,
        ) {
            Ok(_) => {
                self.webhooks.verified += 1;
                self.findings.pass("webhook.signature");
                self.findings.pass("webhook.signature_age");
                true
            }
            Err(kind) => {
                *self
                    .webhooks
                    .rejected
                    .entry(kind.as_str().to_string())
                    .or_default() += 1;
                let (rule, expected) = match kind {
                    signing::Rejection::Stale | signing::Rejection::FutureDated => (
                        "webhook.signature_age",
                        format!("a timestamp within {} s of now", max_age.as_secs()),
                    ),
                    _ => (
                        "webhook.signature",
                        "hex HMAC-SHA256 of v0:{timestamp}:{body} with the endpoint secret"
                            .to_string(),
                    ),
                };
                let seen = format!(
                    "{}: timestamp {:?} (now {now}), signature {:?}",
                    kind.as_str(),
                    d.timestamp,
                    d.signature
                );
                self.findings
                    .fail(rule, Case::new(expected, seen).request("webhook delivery"));
                false
            }
        };
        let event = serde_json::from_slice::<Value>(&d.body).ok();
        let envelope = event.as_ref().and_then(|e| {
            Some((
                e.get("eventId")?.as_str()?,
                e.get("eventType")?.as_str()?,
                e.get("payload").filter(|p| p.is_object())?,
            ))
        });
        let Some((event_id, event_type, payload)) = envelope else {
            if verified {
                self.webhooks.unparseable += 1;
            }
            self.findings.fail(
                "webhook.envelope",
                Case::new(
                    "{eventId, eventType, payload: {…}}",
                    checks::excerpt(&String::from_utf8_lossy(&d.body)),
                )
                .request("webhook delivery"),
            );
            return;
        };
        self.findings.pass("webhook.envelope");
        // Each distinct event is judged once; redeliveries are counted apart.
        let digest = records::digest(event_id);
        let fresh = self.judge && self.judged_events.insert(digest);
        if verified && !self.event_ids.insert(digest) {
            self.webhooks.redeliveries += 1;
            return;
        }
        if !RUN_EVENT_TYPES.contains(&event_type) {
            if verified {
                self.webhooks.other_events += 1;
            }
            return;
        }
        if fresh {
            checks::webhook::event_type(
                &mut self.findings,
                self.endpoint_version,
                event_id,
                event_type,
                payload,
            );
        }
        let run_like = payload.get("id").is_some_and(Value::is_string)
            && payload
                .get("status")
                .and_then(Value::as_str)
                .and_then(RunStatus::parse)
                .is_some();
        if !run_like {
            if verified {
                self.webhooks.unparseable += 1;
            }
            return;
        }
        if let Some(event) = &event {
            self.run_event(event, verified, fresh, d.arrived);
        }
    }

    /// The part of a delivery about a run: correlate it, judge it, record it. A delivery
    /// for a batch whose submission has not been answered yet (the target was quicker to
    /// send the webhook than the harness to read the 200) waits until it is.
    pub(super) fn run_event(
        &mut self,
        event: &Value,
        verified: bool,
        fresh: bool,
        arrived: Instant,
    ) {
        let Some(RunEvent {
            run_id,
            status,
            batch_id,
            metadata,
            payload,
        }) = RunEvent::of(event)
        else {
            return;
        };
        if metadata.and_then(|m| m.get(PROBE_KEY)).is_some()
            || batch_id.is_some_and(|b| self.probe_batches.contains(b))
            || self.probe_runs.contains(run_id)
        {
            if verified {
                self.webhooks.probe_events += 1;
            }
            return;
        }
        let seq = self.correlate(run_id, batch_id, metadata);
        if seq.is_none() && self.is_foreign(batch_id, metadata) {
            // Another run's event on a subscription to the same workflow: not ours to judge.
            if verified {
                self.anomalies.foreign += 1;
            }
            return;
        }
        if let Some(q) = seq {
            let pos = self.inputs[q as usize].batch as usize;
            if self.batches[pos].outcome == BatchOutcome::Pending {
                self.early
                    .push((pos, event.clone(), verified, fresh, arrived));
                return;
            }
        }
        if batch_id.is_none() && verified {
            self.webhooks.without_batch_id += 1;
        }
        if fresh {
            self.judge_event(event, seq, verified);
        }
        let Some(seq) = seq else {
            if verified {
                self.unknown_result(run_id, metadata);
            }
            return;
        };
        if verified && !self.metadata_matches(seq, metadata) {
            self.webhooks.metadata_mismatch += 1;
        }
        if verified {
            self.observe(
                seq,
                run_id,
                status,
                arrived,
                Channel::Webhook,
                credits_of(payload.get("usage")),
            );
        }
    }

    /// Judges a fresh (first-seen) run event for the webhook rules: its terminal count,
    /// its batchId, its metadata.
    fn judge_event(&mut self, event: &Value, seq: Option<u64>, verified: bool) {
        let Some(RunEvent {
            run_id,
            status,
            batch_id,
            metadata,
            payload,
        }) = RunEvent::of(event)
        else {
            return;
        };
        let event_id = event.get("eventId").and_then(Value::as_str).unwrap_or("?");
        let event_type = event
            .get("eventType")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let request = || format!("webhook {event_type} {event_id}");
        if status.is_terminal() {
            self.terminal_events
                .entry(records::digest(run_id))
                .or_default()
                .add(status);
        }
        // batchId: present, and the batch of the input the run belongs to.
        // Judged only for runs known to be the load's batch runs: a run nothing ties
        // to an input might be anyone's single run.
        if let Some(want) = seq.and_then(|q| self.batch_id_of(q)).map(str::to_string) {
            self.findings
                .check("webhook.batch_id", batch_id == Some(want.as_str()), || {
                    Case::new(
                        format!("batchId {want:?}"),
                        format!("batchId {}", payload.get("batchId").unwrap_or(&Value::Null)),
                    )
                    .batch(&want)
                    .run(run_id)
                    .request(request())
                });
        }
        // Metadata: an object, and (when the input is known) the input's, exactly.
        // A delivery matched to no input cannot show the metadata right: it is counted
        // (`webhooks.unmatched`), never a pass.
        let expected = seq.and_then(|q| self.expected_for(q));
        if self.expected_metadata.is_some() && expected.is_none() && verified {
            self.webhooks.unmatched += 1;
        }
        if self.expected_metadata.is_some()
            && (expected.is_some() || metadata.is_none_or(|m| !m.is_object()))
        {
            let ok = match (&expected, metadata) {
                (_, None) => false,
                (_, Some(m)) if !m.is_object() => false,
                (Some(want), Some(m)) => value_hash(m) == value_hash(want),
                (None, Some(_)) => unreachable!("only judged with an expectation"),
            };
            self.findings.check("webhook.metadata", ok, || {
                Case::new(
                    expected
                        .as_ref()
                        .map_or("the input's metadata".into(), json_excerpt),
                    metadata
                        .map(json_excerpt)
                        .unwrap_or_else(|| "no metadata".into()),
                )
                .run(run_id)
                .request(request())
            });
        }
    }

    /// Counts the credits a run reports for an input already seen terminal, unless it was
    /// credited before; journaled on a line of its own.
    pub(super) fn credit(&mut self, seq: u64, credits: f64) {
        let input = &self.inputs[seq as usize];
        if input.credited || input.first_seen().is_none() {
            return;
        }
        if let Some(j) = &mut self.journal {
            let b = &self.batches[input.batch as usize];
            j.credit(b.index, seq - b.first_seq, credits);
        }
        self.count_credits(seq, credits);
    }

    fn count_credits(&mut self, seq: u64, credits: f64) {
        let input = &mut self.inputs[seq as usize];
        input.credited = true;
        let batch = &mut self.batches[input.batch as usize];
        batch.credits += credits;
        batch.credited += 1;
        self.credits.0 += credits;
        self.credits.1 += 1;
    }

    /// Records a status seen by polling for a run already mapped to an input.
    pub fn poll_status(&mut self, run_id: &str, status: RunStatus, at: Instant) -> bool {
        match self.find_run(run_id) {
            Some(seq) => {
                self.observe(seq, run_id, status, at, Channel::Poll, None);
                true
            }
            None => false,
        }
    }

    /// Records a full run fetched by polling (Get Workflow Run), seen terminal at `at`.
    pub fn poll_run(&mut self, run: &serde_json::Map<String, Value>, at: Instant) {
        let (Some(run_id), Some(status)) = (
            run.get("id").and_then(Value::as_str),
            run.get("status")
                .and_then(Value::as_str)
                .and_then(RunStatus::parse),
        ) else {
            return;
        };
        match self.correlate(
            run_id,
            run.get("batchId").and_then(Value::as_str),
            run.get("metadata"),
        ) {
            Some(seq) => {
                self.observe(
                    seq,
                    run_id,
                    status,
                    at,
                    Channel::Poll,
                    credits_of(run.get("usage")),
                );
            }
            None if self.is_foreign(
                run.get("batchId").and_then(Value::as_str),
                run.get("metadata"),
            ) =>
            {
                self.anomalies.foreign += 1
            }
            None => self.unknown_result(run_id, run.get("metadata")),
        }
    }
}

/// The credits a run's `usage` reports.
fn credits_of(usage: Option<&Value>) -> Option<f64> {
    usage?.get("credits")?.as_f64()
}

fn status_list(statuses: &[RunStatus]) -> String {
    statuses
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Ledger {
    /// At the end of a run: each run known to exist (seen on any channel, or in the audit)
    /// must have had exactly one terminal event, signed or not (the signature rules judge
    /// signatures; this one judges events).
    pub fn judge_terminal_events(&self, findings: &mut Findings) {
        let ledger = self;
        for (b, i, r) in ledger.accepted_inputs() {
            let Some(run_id) = ledger.run_id(b.first_seq + i) else {
                continue;
            };
            let BatchOutcome::Accepted { batch_id } = &b.outcome else {
                continue;
            };
            let events = ledger.terminal_events_of(run_id);
            findings.check("webhook.one_terminal", events.legitimate(), || {
                Case::new(
                    "one terminal workflow_run.* event (or NEEDS_REVIEW, then the review's REJECTED or PROCESSED)",
                    match events.count() {
                        0 => format!(
                            "none (input {i}; last status {})",
                            r.last_status.map_or("unknown", |s| s.as_str())
                        ),
                        _ if events.repeated() => format!(
                            "a status announced twice with distinct eventIds ({})",
                            status_list(&events.statuses())
                        ),
                        _ => format!(
                            "terminal events for {}",
                            status_list(&events.statuses())
                        ),
                    },
                )
                .batch(batch_id)
                .run(run_id)
            });
        }
    }
}
