//! The fault matrix: a scenario with results by webhooks *and* polling, against the mock
//! with one fault at a time (and all at once) — webhooks dropped, duplicated, reordered
//! and delayed, 500s on list and get, a receiver that refuses the first deliveries. Every
//! submitted input must still be accounted for exactly once, and the report must say which
//! channel saw what.

mod common;
use common::run_in_process;

use std::path::PathBuf;

use batchproof::config::Dur;
use batchproof::mock::Profile;
use batchproof::mock::profile::Endpoint;
use batchproof::report::Report;
use batchproof::scenario::{Scenario, Target};

fn scenario(refuse_first: u32) -> String {
    format!(
        r#"
name: faults
load:
  model: open
  phases: [{{hold: 2s, rate: 4}}]
  inputs_per_batch: 50
  seed: 5
results:
  via: both
  webhooks: {{refuse_first: {refuse_first}}}
  polling: {{interval: 200ms}}
  deadline: 40s
  settle: 1s
"#
    )
}

fn profile() -> Profile {
    let mut p = Profile {
        time_scale: 100.0,
        seed: 9,
        ..Default::default()
    };
    // Retries quick enough to finish within the test.
    p.webhooks.retry = vec![Dur::from_millis(200), Dur::from_millis(500)];
    p.webhooks.max_attempts = 30;
    p
}

async fn run(p: Profile, refuse_first: u32) -> Report {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/faults.yaml");
    let mut s =
        Scenario::from_text(&path, &scenario(refuse_first)).unwrap_or_else(|e| panic!("{e}"));
    s.target = Target::Mock {
        profile: Box::new(p),
        profile_path: None,
    };
    let out = tempfile::tempdir().unwrap();
    run_in_process(s, out.path(), None).await.0
}

/// Every input accounted for exactly once, whatever the faults.
fn exactly_once(r: &Report) {
    assert!(r.complete);
    assert_eq!(r.batches.accepted, 8, "{:?}", r.batches);
    assert_eq!(r.runs.submitted, 400);
    assert_eq!(r.runs.seen, 400, "missing: {:?}", r.runs.missing_examples);
    assert_eq!(r.runs.missing, 0);
    assert_eq!(
        r.runs.by_channel.values().sum::<u64>(),
        r.runs.seen,
        "{:?}",
        r.runs.by_channel
    );
    assert_eq!(r.runs.by_status.values().sum::<u64>(), r.runs.seen);
    assert_eq!(r.runs.anomalies.duplicates, 0, "a result counted twice");
    assert_eq!(r.runs.anomalies.unknown, 0);
    assert_eq!(r.e2e.count, 400, "one end-to-end latency per input");
}

fn channel(r: &Report, k: &str) -> u64 {
    r.runs.by_channel[k]
}

#[tokio::test]
async fn dropped_webhooks_are_made_up_by_polling() {
    let mut p = profile();
    p.faults.webhooks.drop = 0.3;
    let r = run(p, 0).await;
    exactly_once(&r);
    assert!(channel(&r, "poll_only") > 50, "{:?}", r.runs.by_channel);
    assert!(channel(&r, "both") > 150, "{:?}", r.runs.by_channel);
}

#[tokio::test]
async fn duplicated_webhooks_count_as_redeliveries_not_results() {
    let mut p = profile();
    p.faults.webhooks.duplicate = 0.5;
    let r = run(p, 0).await;
    exactly_once(&r);
    assert!(r.webhooks.redeliveries > 100, "{:?}", r.webhooks);
    assert_eq!(
        r.webhooks.verified,
        400 + r.webhooks.redeliveries + r.webhooks.review_outcomes
    );
}

#[tokio::test]
async fn reordered_and_delayed_webhooks_still_arrive_once() {
    let mut p = profile();
    p.faults.webhooks.reorder = 0.5;
    p.faults.webhooks.reorder_window = Some(Dur::from_secs(100));
    p.faults.webhooks.delay = Some(batchproof::config::DurationDist::Fixed {
        value: Dur::from_secs(50),
    });
    let r = run(p, 0).await;
    exactly_once(&r);
    assert_eq!(r.webhooks.verified, 400 + r.webhooks.review_outcomes);
    assert!(
        channel(&r, "webhook_only") + channel(&r, "both") == 400,
        "{:?}",
        r.runs.by_channel
    );
}

#[tokio::test]
async fn errors_on_list_and_get_are_ridden_out() {
    let mut p = profile();
    p.faults.errors.insert(Endpoint::List, 0.3);
    p.faults.errors.insert(Endpoint::Get, 0.3);
    let r = run(p, 0).await;
    exactly_once(&r);
    assert!(
        r.http.outcomes.get("500").copied().unwrap_or(0) > 5,
        "{:?}",
        r.http.outcomes
    );
}

#[tokio::test]
async fn a_receiver_that_refuses_the_first_deliveries_still_gets_them_all() {
    let r = run(profile(), 25).await;
    exactly_once(&r);
    assert_eq!(r.webhooks.refused, 25);
    assert_eq!(
        r.webhooks.verified,
        400 + r.webhooks.review_outcomes,
        "the target retried every refused delivery"
    );
    assert_eq!(channel(&r, "webhook_only") + channel(&r, "both"), 400);
}

#[tokio::test]
async fn every_fault_at_once() {
    let mut p = profile();
    p.faults.webhooks.drop = 0.1;
    p.faults.webhooks.duplicate = 0.2;
    p.faults.webhooks.reorder = 0.3;
    p.faults.webhooks.reorder_window = Some(Dur::from_secs(100));
    p.faults.errors.insert(Endpoint::List, 0.2);
    p.faults.errors.insert(Endpoint::Get, 0.2);
    let r = run(p, 10).await;
    exactly_once(&r);
    assert_eq!(r.webhooks.refused, 10);
}
