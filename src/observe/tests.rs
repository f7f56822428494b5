//! The ledger's unit tests: correlation, ordering and the faults it counts.

use std::time::{Duration, Instant};

use crate::checks::Findings;

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
fn results_first_seen_by_a_resume_are_counted_but_not_timed() {
    let start = Instant::now();
    let mut l = Ledger::new(start, Some("bp_input".into()), true);
    l.add_batch(0, start, 2);
    let accepted = BatchOutcome::Accepted {
        batch_id: "batch_0".into(),
    };
    l.settle_batch(0, accepted, start, 0);
    let run = |i: u64| serde_json::json!({"id": format!("workflow_run_{i}"), "status": "PROCESSED", "batchId": "batch_0", "metadata": {"bp_input": format!("0:{i}")}});
    l.poll_run(run(0).as_object().unwrap(), Instant::now());
    assert_eq!(l.e2e().hist.len(), 1);
    // Killed, then resumed: when run 1 finished is unknown.
    l.untimed_from_now();
    l.poll_run(run(1).as_object().unwrap(), Instant::now());
    assert!(l.inputs[1].poll().is_some(), "still seen");
    assert_eq!((l.e2e().hist.len(), l.untimed()), (1, 1));
    assert!(l.judge_invariants(true).iter().all(|i| i.held));
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
