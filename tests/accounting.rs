//! Every scheduled batch has exactly one outcome and every input of an accepted batch
//! comes back exactly once or is counted missing, whatever order the batches are built
//! and answered in, and at the scale of a real bulk job.

mod common;

use std::process::{Command, Output, Stdio};

fn run_with(scenario: &str, env: &[(&str, &str)]) -> (Output, batchproof::report::Report) {
    run_args(scenario, env, &[])
}

fn run_args(
    scenario: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> (Output, batchproof::report::Report) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, scenario).unwrap();
    let out = dir.path().join("reports");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_batchproof"));
    cmd.args(["run", path.to_str().unwrap(), "--progress", "none", "--out"])
        .arg(&out)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().unwrap();
    let run_dir = std::fs::read_dir(&out)
        .unwrap_or_else(|e| {
            panic!(
                "no report folder ({e}); stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .next()
        .expect("a report folder")
        .unwrap()
        .path();
    let report = batchproof::report::json::read(&run_dir.join("report.json")).unwrap();
    (output, report)
}

/// Even-numbered batches take 30 ms longer to build (a debug-build seam), so batches reach
/// the ledger out of schedule order on every run. Before the fix, the ledger's lookup
/// missed such batches: their answers were dropped, their results counted unknown, and
/// the run still passed.
#[test]
fn batches_built_out_of_order_are_all_accounted_for() {
    let scenario = "name: reorder\ntarget: {mock: {time_scale: 1000}}\nload:\n  phases: [{hold: 2s, rate: 40}]\n  inputs_per_batch: 5\n  max_in_flight: 32\n  seed: 9\ninputs:\n  metadata: {r: \"{{random:1-1000}}\", u: \"{{uuid}}\"}\nresults: {via: webhooks, deadline: 30s}\nthresholds: [\"runs.missing == 0\"]\n";
    let (output, report) = run_with(scenario, &[("BATCHPROOF_TEST_SLOW_BODY_MS", "30")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let b = &report.batches;
    assert_eq!(b.scheduled, 80);
    assert_eq!(b.accepted, 80, "every batch answered: {b:?}");
    assert_eq!(b.unanswered, 0);
    assert_eq!(report.runs.submitted, 400);
    assert_eq!(report.runs.seen, 400);
    assert_eq!(report.runs.anomalies.unknown, 0);
    // The batch list is in schedule order, whatever order the answers came in.
    let indices: Vec<u64> = b.list.iter().map(|l| l.index).collect();
    assert_eq!(indices, (0..80).collect::<Vec<_>>());
}

/// A state the accounting promises never to reach (here forged through a debug-build seam:
/// an answer for a batch that was never registered) fails the run as a harness fault, with
/// its own exit code and the invariant named in every format.
#[test]
fn a_broken_invariant_is_a_harness_fault_with_its_own_exit_code() {
    let scenario = "name: forged\ntarget: {mock: {time_scale: 1000}}\nload:\n  phases: [{hold: 1s, rate: 4}]\n  inputs_per_batch: 2\nresults: {via: webhooks, deadline: 30s}\n";
    let (output, report) = run_with(scenario, &[("BATCHPROOF_TEST_FORGE_ANSWER", "1")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(4), "{stdout}");
    assert!(report.complete && !report.verdict.passed);
    let broken: Vec<_> = report.invariants.iter().filter(|i| !i.held).collect();
    assert_eq!(broken.len(), 1, "{:?}", report.invariants);
    assert_eq!(broken[0].id, "ledger.one_outcome_per_batch");
    assert_eq!(broken[0].violations, 1);
    assert!(
        broken[0].examples[0].contains("never registered"),
        "{:?}",
        broken[0]
    );
    assert!(stdout.contains("HARNESS FAULT"), "{stdout}");
    assert!(stdout.contains("ledger.one_outcome_per_batch"), "{stdout}");
    // The other invariants were judged too, over real cases.
    let seen = report
        .invariants
        .iter()
        .find(|i| i.id == "ledger.seen_or_missing")
        .unwrap();
    assert!(seen.held && seen.checked == report.runs.submitted && seen.checked > 0);
}

/// The closed model draws each batch's number and registers it under one lock, so
/// submitters that race each other still leave every batch with its answer.
#[test]
fn closed_model_submitters_racing_each_other_lose_no_batch() {
    let scenario = "name: closed\ntarget: {mock: {time_scale: 1000}}\nload:\n  model: closed\n  phases: [{hold: 2s, concurrency: 8}]\n  inputs_per_batch: 3\n  seed: 4\ninputs:\n  metadata: {c: \"{{choice:a|b|c}}\", u: \"{{uuid}}\"}\nresults: {via: webhooks, deadline: 30s}\n";
    let (output, report) = run_with(scenario, &[("BATCHPROOF_TEST_SLOW_BODY_MS", "5")]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let b = &report.batches;
    assert!(b.scheduled > 50, "{b:?}");
    assert_eq!((b.accepted, b.unanswered), (b.scheduled, 0), "{b:?}");
    assert_eq!(report.runs.seen, b.scheduled * 3);
    assert_eq!(report.runs.anomalies.unknown, 0);
    assert!(
        report.invariants.iter().all(|i| i.held),
        "{:?}",
        report.invariants
    );
}

/// A mock in its own process (`mock/default.yaml` at time scale 1000), so its own counts
/// can be read after the run.
struct Mock(std::process::Child, String);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_mock() -> Mock {
    let port = common::free_port();
    let profile = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/default.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["mock", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--time-scale", "1000", "--profile"])
        .arg(profile)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_lines(&mut child, "serving", 1, std::time::Duration::from_secs(60));
    Mock(child, format!("http://127.0.0.1:{port}"))
}

/// The mock's own state, read strictly: anything but a 2xx JSON answer fails the test.
fn mock_state(mock: &Mock) -> serde_json::Value {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reqwest::get(format!("{}/_mock/state", mock.1))
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "/_mock/state: {status} {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("/_mock/state: not JSON ({e}): {text}"))
    })
}

fn count(v: &serde_json::Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("`{pointer}` is not a count in {v}"))
}

/// The scale of a real bulk job: 200,000 runs in 1,000-input batches, submitted while
/// earlier batches' webhooks pour in, every result accounted for exactly once and every
/// invariant judged over all of them; the mock, in its own process, counts the same runs
/// created.
#[test]
fn two_hundred_thousand_runs_are_each_accounted_for_exactly_once() {
    let mock = start_mock();
    let hook = common::free_port();
    let scenario = format!(
        "name: scale\nload:\n  phases: [{{hold: 5s, rate: 40}}]\n  batches: 200\n  inputs_per_batch: 1000\n  max_in_flight: 32\n  seed: 11\ninputs:\n  metadata: {{customer: \"cust-{{{{random:1-500}}}}\", region: \"{{{{choice:eu|us|apac}}}}\"}}\nresults:\n  via: webhooks\n  webhooks: {{listen: \"127.0.0.1:{hook}\", public_url: \"http://127.0.0.1:{hook}/\"}}\n  deadline: 110s\nthresholds: [\"runs.missing == 0\", \"runs.duplicates == 0\", \"runs.unknown == 0\"]\n"
    );
    let started = std::time::Instant::now();
    let (output, report) = run_args(
        &scenario,
        &[("EXTEND_API_KEY", "sk_batchproof_local")],
        &["--target", &mock.1, "--yes"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let b = &report.batches;
    assert_eq!((b.scheduled, b.accepted, b.unanswered), (200, 200, 0));
    assert_eq!(report.runs.submitted, 200_000);
    assert_eq!(report.runs.seen, 200_000);
    assert_eq!(report.runs.missing, 0);
    assert_eq!(report.runs.anomalies.unknown, 0);
    assert_eq!(report.runs.anomalies.duplicates, 0);
    // One terminal event per run, plus the review's outcome for runs reviewed in time.
    assert_eq!(
        report.webhooks.verified,
        200_000 + report.webhooks.review_outcomes
    );
    assert_eq!(report.webhooks.metadata_mismatch, 0);
    let statuses: u64 = report.runs.by_status.values().sum();
    assert_eq!(statuses, 200_000, "every seen run has exactly one status");
    for inv in &report.invariants {
        assert!(inv.held, "{inv:?}");
    }
    let seen = report
        .invariants
        .iter()
        .find(|i| i.id == "ledger.seen_or_missing")
        .unwrap();
    assert_eq!(seen.checked, 200_000);
    // The mock's own count of what it created agrees with the harness's.
    let state = mock_state(&mock);
    assert_eq!(count(&state, "/runs/created"), report.runs.submitted);
    assert_eq!(count(&state, "/batches/created"), report.batches.accepted);
    eprintln!("200,000 runs in {:?}", started.elapsed());
}
