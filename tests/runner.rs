//! `batchproof run` against the embedded mock: per-input accounting through each results
//! channel, timing correctness under a stall, HTTP behaviour (429, 5xx, connection
//! refused), deadline expiry, and the exit codes.

mod common;

use std::path::{Path, PathBuf};

use batchproof::report::Report;
use batchproof::run::{ProgressMode, RunOptions, exit};

/// What `batchproof run` does with its options, less the printing: the exit code.
async fn run(opts: RunOptions) -> u8 {
    match batchproof::run::prepare(&opts) {
        Err(e) => e.exit_code(),
        Ok(scenario) => match batchproof::run::run_scenario(scenario, &opts).await {
            Ok((report, _)) => exit::for_report(&report),
            Err(e) => e.exit_code(),
        },
    }
}

struct Outcome {
    code: u8,
    report: Option<Report>,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

async fn run_scenario(dir: &Path, yaml: &str, target: Option<String>) -> Outcome {
    let scenario = write(dir, "scenario.yaml", yaml);
    let out = dir.join("reports");
    let code = run(RunOptions {
        scenario,
        target,
        token_env: "BATCHPROOF_TEST_TOKEN".into(),
        out: out.clone(),
        progress: ProgressMode::None,
        mock_profile: None,
        shard: None,
        stop: None,
        metrics_listen: None,
        time_scale: None,
    })
    .await;
    let report = std::fs::read_dir(&out)
        .ok()
        .and_then(|mut d| d.next())
        .map(|e| {
            let path = e.unwrap().path().join("report.json");
            batchproof::report::json::read(&path).unwrap()
        });
    Outcome { code, report }
}

fn scenario(via: &str, extra_target: &str, load: &str, thresholds: &str) -> String {
    format!(
        r#"
name: test
target:
  mock:
    time_scale: 200
    seed: 3
{extra_target}
load:
{load}
  seed: 9
results:
  via: {via}
  polling: {{interval: 200ms}}
  deadline: 20s
thresholds:
{thresholds}
"#
    )
}

const SMALL_LOAD: &str =
    "  phases: [{hold: 2s, rate: 3}]\n  inputs_per_batch: 40\n  max_in_flight: 4";
const STRICT: &str =
    "  - \"runs.missing == 0\"\n  - \"runs.duplicates == 0\"\n  - \"runs.unknown == 0\"";

async fn accounted_via(via: &str) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let o = run_scenario(dir.path(), &scenario(via, "", SMALL_LOAD, STRICT), None).await;
    assert_eq!(o.code, exit::PASSED);
    // Thresholds alone (no `checks:`) still give CI its JUnit file, with their suite.
    let folder = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let junit = std::fs::read_to_string(folder.join("report.junit.xml")).unwrap();
    assert!(
        junit.contains("name=\"thresholds\"") && !junit.contains("contract rules"),
        "{junit}"
    );
    let r = o.report.unwrap();
    assert!(r.complete);
    assert_eq!(r.batches.accepted, 6);
    assert_eq!(r.runs.submitted, 240);
    assert_eq!(r.runs.seen, 240, "every input accounted for");
    assert_eq!(r.runs.missing + r.runs.rejected, 0);
    assert_eq!(r.runs.by_status.values().sum::<u64>(), 240);
    assert_eq!(r.e2e.count, 240);
    // The mock reports usage.credits on every terminal run: each input counted once,
    // whichever channel showed it first.
    assert_eq!(r.runs.credited, 240, "credits counted once per input");
    assert!(r.runs.credits >= 240.0, "{}", r.runs.credits);
    r
}

#[tokio::test]
async fn every_input_is_accounted_for_through_webhooks_only() {
    let r = accounted_via("webhooks").await;
    assert_eq!(r.runs.by_channel["webhook_only"], 240);
    assert_eq!(r.webhooks.verified, 240 + r.webhooks.review_outcomes);
    assert!(!r.operations.contains_key("list"));
}

#[tokio::test]
async fn every_input_is_accounted_for_through_polling_only() {
    let r = accounted_via("polling").await;
    assert_eq!(r.runs.by_channel["poll_only"], 240);
    assert_eq!(r.webhooks.received, 0);
    assert!(r.operations["list"].ok > 0 && r.operations["get"].ok >= 240);
}

#[tokio::test]
async fn every_input_is_accounted_for_through_both_channels() {
    let r = accounted_via("both").await;
    assert_eq!(r.runs.by_channel["both"], 240, "{:?}", r.runs.by_channel);
}

#[tokio::test]
async fn a_stall_shows_in_response_time_not_in_service_time() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "stall.yaml",
        "time_scale: 1000\nfaults:\n  stalls:\n    - {endpoint: batch, at_request: 100, duration: 1s}\n",
    );
    let yaml = r#"
name: stall
target:
  mock: {profile: stall.yaml}
load:
  phases: [{hold: 6s, rate: 50}]
  inputs_per_batch: 1
  max_in_flight: 1
  lag_bound: 50ms
results: {via: webhooks, deadline: 20s}
"#;
    let o = run_scenario(dir.path(), yaml, None).await;
    let r = o.report.unwrap();
    let submit = &r.operations["submit"];
    assert_eq!(submit.response.count, 300);
    assert!(
        submit.response.p99_ms >= 500.0,
        "response p99 {} must show the 1 s stall",
        submit.response.p99_ms
    );
    assert!(
        submit.service.p99_ms < 250.0,
        "service p99 {} must not (one sample of 300 is stalled)",
        submit.service.p99_ms
    );
    assert!(
        submit.service.max_ms >= 1000.0,
        "the stalled request itself: {}",
        submit.service.max_ms
    );
    assert!(
        submit.lag.p99_ms >= 500.0,
        "requests scheduled during the stall waited: {}",
        submit.lag.p99_ms
    );
    assert!(
        r.generator.saturated,
        "lag above its bound is reported as generator saturation"
    );
}

#[tokio::test]
async fn throttled_batches_honour_retry_after_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "limited.yaml",
        "time_scale: 1\nlimits: {run_rps: 2}\nprocessing: {duration: {dist: fixed, value: 10ms}}\n",
    );
    let yaml = r#"
name: throttled
target:
  mock: {profile: limited.yaml}
load:
  phases: [{hold: 1s, rate: 8}]
  inputs_per_batch: 2
  max_in_flight: 8
  # Eight submitters retrying together contend for two tokens a second; allow enough
  # retries that every batch gets through.
  max_throttle_retries: 30
results: {via: webhooks, deadline: 20s}
thresholds: ["runs.missing == 0", "http.throttles == 0"]
"#;
    let o = run_scenario(dir.path(), yaml, None).await;
    assert_eq!(o.code, exit::FAILED, "the throttle threshold fails");
    let r = o.report.unwrap();
    assert_eq!(r.batches.accepted, 8, "all accepted after waiting");
    assert!(r.http.throttles >= 4, "{}", r.http.throttles);
    assert_eq!(r.http.outcomes["429"], r.http.throttles);
    assert!(
        r.operations["submit"].response.max_ms >= 900.0,
        "waits count in response time"
    );
    assert!(r.verdict.thresholds[0].passed);
    assert!(!r.verdict.thresholds[1].passed);
}

#[tokio::test]
async fn a_5xx_is_a_possible_duplicate_and_is_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "5xx.yaml",
        "time_scale: 1000\nfaults: {errors: {batch: 1.0}}\n",
    );
    let yaml = r#"
name: five-hundreds
target:
  mock: {profile: 5xx.yaml}
load:
  phases: [{hold: 1s, rate: 4}]
  inputs_per_batch: 3
results: {via: webhooks, deadline: 3s}
thresholds: ["batches.possible_duplicates == 0"]
"#;
    let o = run_scenario(dir.path(), yaml, None).await;
    assert_eq!(o.code, exit::FAILED);
    let r = o.report.unwrap();
    assert_eq!(r.batches.possible_duplicates, 4);
    assert_eq!(
        r.http.outcomes["500"], 4,
        "one request per batch: no blind retry"
    );
    assert_eq!(r.runs.rejected, 12);
    assert_eq!(r.runs.submitted, 0);
    // The mock did create the runs; webhooks that arrive for them are counted as results
    // of unconfirmed batches, never as unknown runs or as results of accepted inputs.
    assert_eq!(r.runs.anomalies.unknown, 0);
    assert!(r.runs.anomalies.from_unconfirmed_batches <= 12);
}

#[tokio::test]
async fn an_unreachable_target_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: tests in this file do not read this variable concurrently.
    unsafe { std::env::set_var("BATCHPROOF_TEST_TOKEN", "sk_x") };
    let yaml = "name: unreachable\nload: {phases: [{hold: 1s, rate: 2}], inputs_per_batch: 1}\nresults: {via: polling, deadline: 2s}\n";
    // Port 9 (discard) on loopback: nothing listens there.
    let o = run_scenario(dir.path(), yaml, Some("http://127.0.0.1:9".into())).await;
    assert_eq!(o.code, exit::ABORTED);
    let r = o.report.unwrap();
    assert_eq!(r.batches.unreachable, 2);
    assert_eq!(r.http.outcomes["connect"], 2);
}

#[tokio::test]
async fn results_missing_at_the_deadline_are_counted_and_fail_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "mute.yaml",
        "time_scale: 1000\ndefects: {missing_terminal_webhook: 0.25}\n",
    );
    let yaml = r#"
name: missing
target:
  mock: {profile: mock.yaml}
load:
  phases: [{hold: 1s, rate: 2}]
  inputs_per_batch: 50
results: {via: webhooks, deadline: 2s}
thresholds: ["runs.missing == 0"]
"#;
    let yaml = yaml.replace("mock.yaml", "mute.yaml");
    let o = run_scenario(dir.path(), &yaml, None).await;
    assert_eq!(o.code, exit::FAILED);
    let r = o.report.unwrap();
    assert!(
        r.runs.missing > 0 && r.runs.missing < 100,
        "{}",
        r.runs.missing
    );
    assert_eq!(r.runs.seen + r.runs.missing, 100);
    assert!(!r.runs.missing_examples.is_empty());
    assert!(r.runs.missing_examples[0].batch_id.is_some());
}

#[tokio::test]
async fn forged_signatures_are_counted_not_accepted() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "forged.yaml",
        "time_scale: 1000\ndefects: {wrong_signature: true}\n",
    );
    let yaml = r#"
name: forged
target:
  mock: {profile: forged.yaml}
load:
  phases: [{hold: 1s, rate: 1}]
  inputs_per_batch: 10
results: {via: both, deadline: 5s, polling: {interval: 200ms}}
thresholds: ["webhooks.rejected == 0"]
"#;
    let o = run_scenario(dir.path(), yaml, None).await;
    assert_eq!(o.code, exit::FAILED);
    let r = o.report.unwrap();
    // Each forged delivery is refused with a 401, so the mock tries again: at least one
    // rejection per run, and never one accepted.
    assert!(
        r.webhooks.rejected["bad_signature"] >= 10,
        "{:?}",
        r.webhooks
    );
    assert_eq!(r.webhooks.verified, 0);
    assert!(
        r.verdict
            .reasons
            .iter()
            .any(|x| x.code == "webhooks_rejected"),
        "{:?}",
        r.verdict.reasons
    );
    assert_eq!(
        r.runs.by_channel["poll_only"], 10,
        "polling still accounts for every input"
    );
}

#[tokio::test]
async fn duplicates_and_reordering_from_a_flaky_channel_are_absorbed() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "dup.yaml",
        "time_scale: 1000\nfaults:\n  webhooks: {duplicate: 1.0, reorder: 0.5, reorder_window: 100s}\n",
    );
    let yaml = r#"
name: dup
target:
  mock: {profile: dup.yaml}
load:
  phases: [{hold: 1s, rate: 2}]
  inputs_per_batch: 20
results: {via: webhooks, deadline: 10s}
thresholds: ["runs.missing == 0", "runs.duplicates == 0"]
"#;
    let o = run_scenario(dir.path(), yaml, None).await;
    let r = o.report.unwrap();
    assert_eq!(
        o.code,
        exit::PASSED,
        "redeliveries of one eventId are not duplicates"
    );
    assert_eq!(r.webhooks.redeliveries, 40);
    assert_eq!(r.runs.seen, 40);
}

#[tokio::test]
async fn statuses_going_backwards_are_counted_as_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "regress.yaml",
        "time_scale: 100\nprocessing: {duration: {dist: fixed, value: 30s}}\ndefects: {status_regression: true}\n",
    );
    let yaml = r#"
name: regress
target:
  mock: {profile: regress.yaml}
load:
  phases: [{hold: 1s, rate: 2}]
  inputs_per_batch: 50
results: {via: both, deadline: 10s, settle: 2s, polling: {interval: 100ms}}
thresholds: ["runs.out_of_order == 0"]
"#;
    let o = run_scenario(dir.path(), yaml, None).await;
    let r = o.report.unwrap();
    assert!(
        r.runs.anomalies.out_of_order > 0,
        "PROCESSED → PROCESSING seen by polling"
    );
    assert_eq!(o.code, exit::FAILED);
    assert_eq!(r.runs.missing, 0);
}

#[tokio::test]
async fn feeder_rows_supply_files_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "docs.csv",
        "url,name,metadata.customer\nhttps://files.example.test/a.pdf,a.pdf,acme\nhttps://files.example.test/b.png,b.png,globex\n",
    );
    write(
        dir.path(),
        "docs.jsonl",
        "{\"text\": \"plain text invoice\", \"metadata\": {\"customer\": \"initech\", \"n\": 1}}\n",
    );
    for feeder in ["docs.csv", "docs.jsonl"] {
        let yaml = format!(
            "name: feeder\ntarget: {{mock: {{time_scale: 1000}}}}\nload: {{phases: [{{hold: 1s, rate: 2}}], inputs_per_batch: 5}}\ninputs:\n  feeder: {{path: {feeder}}}\n  metadata: {{job: nightly}}\nresults: {{via: polling, deadline: 10s, polling: {{interval: 100ms}}}}\nthresholds: [\"runs.missing == 0\"]\n"
        );
        let o = run_scenario(dir.path(), &yaml, None).await;
        assert_eq!(o.code, exit::PASSED, "{feeder}");
        let r = o.report.unwrap();
        assert_eq!(r.runs.seen, 10);
        assert_eq!(r.webhooks.metadata_mismatch, 0);
        std::fs::remove_dir_all(dir.path().join("reports")).unwrap();
    }
}
