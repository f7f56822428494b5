//! Every scheduled batch has exactly one outcome and every input of an accepted batch
//! comes back exactly once or is counted missing, whatever order the batches are built
//! and answered in, and at the scale of a real bulk job.

use std::process::{Command, Output};

fn run_with(scenario: &str, env: &[(&str, &str)]) -> (Output, batchproof::report::Report) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, scenario).unwrap();
    let out = dir.path().join("reports");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_batchproof"));
    cmd.args(["run", path.to_str().unwrap(), "--progress", "none", "--out"])
        .arg(&out);
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
    assert!(broken[0].examples[0].contains("never registered"), "{:?}", broken[0]);
    assert!(stdout.contains("HARNESS FAULT"), "{stdout}");
    assert!(stdout.contains("ledger.one_outcome_per_batch"), "{stdout}");
    // The other invariants were judged too, over real cases.
    let seen = report.invariants.iter().find(|i| i.id == "ledger.seen_or_missing").unwrap();
    assert!(seen.held && seen.checked == report.runs.submitted && seen.checked > 0);
}
