//! Ctrl-C (SIGINT) and SIGTERM stop the load, and the run still writes a valid report
//! marked incomplete, with exit code 3.

mod common;
use common::wait_for_lines;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn interrupt_with(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("long.yaml");
    std::fs::write(
        &scenario,
        "name: long\ntarget: {mock: {time_scale: 100}}\nload:\n  phases: [{hold: 60s, rate: 4}]\n  inputs_per_batch: 50\nresults: {via: both, deadline: 60s}\n",
    )
    .unwrap();
    let out = dir.path().join("reports");
    let mut child = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--progress",
            "none",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("RUST_LOG", "info,batchproof::load=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal once the run has said it had 4 batches accepted, not after a guessed time.
    let stderr = wait_for_lines(&mut child, "batch accepted", 4, Duration::from_secs(30));
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped promptly"
    );
    let stderr = stderr.join().unwrap();
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let run_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report = batchproof::report::json::read(&run_dir.join("report.json")).unwrap();
    assert!(!report.complete);
    assert!(
        report.interrupted.as_deref().unwrap().contains(signal),
        "{:?}",
        report.interrupted
    );
    assert!(
        report.batches.accepted >= 4,
        "work done before the signal is reported"
    );
    assert!(
        report.generator.unsent_batches > 100,
        "the rest of the schedule is reported as never sent"
    );
    assert_eq!(
        report.batches.scheduled,
        report.batches.accepted
            + report.batches.unanswered
            + report.batches.rejected
            + report.batches.throttled
            + report.batches.possible_duplicates
            + report.batches.unreachable
    );
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(md.contains("INCOMPLETE"));
}

#[test]
fn sigint_writes_a_partial_report_marked_incomplete() {
    interrupt_with("INT");
}

#[test]
fn sigterm_writes_a_partial_report_marked_incomplete() {
    interrupt_with("TERM");
}

#[test]
fn the_mock_stops_cleanly_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["mock", "--bind", &format!("127.0.0.1:{port}")])
        // The fast, unthrottled profile: this is load, not a client under test.
        .arg("--profile")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/default.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mock did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(status.code(), Some(0));
}

/// Starts `batchproof run` on `scenario_text`, sends `signal` once a stderr line contains
/// `marker` (the phase has begun), and returns the exit code, the report and stderr.
fn interrupt_at(
    scenario_text: &str,
    marker: &str,
    signal: &str,
) -> (Option<i32>, batchproof::report::Report, String) {
    interrupt_at_with(scenario_text, marker, signal, &[])
}

fn interrupt_at_with(
    scenario_text: &str,
    marker: &str,
    signal: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, batchproof::report::Report, String) {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("phase.yaml");
    std::fs::write(&scenario, scenario_text).unwrap();
    let out = dir.path().join("reports");
    let mut child = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--progress",
            "none",
            "--out",
            out.to_str().unwrap(),
        ])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("the run ended before `{marker}`:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains(marker) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no `{marker}` within 60 s:\n{seen}"
        );
    }
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let started = Instant::now();
    stderr.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped promptly"
    );
    let run_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report = batchproof::report::json::read(&run_dir.join("report.json")).unwrap();
    assert!(run_dir.join("report.html").exists() && run_dir.join("report.md").exists());
    (status.code(), report, seen)
}

#[test]
fn a_signal_while_waiting_for_results_leaves_an_incomplete_report_with_the_runs_so_far() {
    // Real-time processing (median 2 s): the one batch is in, its results are not.
    let (code, report, stderr) = interrupt_at(
        "name: waiting\ntarget: {mock: {time_scale: 1}}\nload:\n  phases: [{hold: 1s, rate: 1}]\n  inputs_per_batch: 200\nresults: {via: both, deadline: 120s}\n",
        "waiting for results",
        "INT",
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(!report.complete);
    assert_eq!(report.batches.accepted, 1);
    assert_eq!(report.generator.unsent_batches, 0, "the load had finished");
    assert_eq!(report.runs.submitted, 200);
    assert!(
        report.runs.seen < 200,
        "interrupted before every result was in"
    );
    assert_eq!(
        report.runs.seen + report.runs.missing,
        200,
        "every input accounted for"
    );
}

#[test]
fn a_signal_during_the_conformance_checks_leaves_an_incomplete_report_without_rules() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/conformance.yaml"
    ))
    .unwrap()
    .replace(
        "profile: ../mock/conformance.yaml",
        &format!(
            "profile: {}/mock/conformance.yaml",
            env!("CARGO_MANIFEST_DIR")
        ),
    );
    let (code, report, stderr) = interrupt_at(&text, "checking the contract", "TERM");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(!report.complete);
    assert!(report.interrupted.as_deref().unwrap().contains("TERM"));
    // Half-run checks are not judged: every rule is listed, not run, saying why (so a
    // JUnit reader sees the catalogue skipped, not a run that checked nothing).
    assert!(!report.rules.is_empty());
    for r in report
        .rules
        .iter()
        .filter(|r| r.status != batchproof::checks::RuleStatus::NotApplicable)
    {
        assert_eq!(r.status, batchproof::checks::RuleStatus::NotRun, "{r:?}");
        assert!(
            r.note
                .as_deref()
                .is_some_and(|n| n.contains("stopped early")),
            "{r:?}"
        );
    }
    assert_eq!(
        report.runs.missing, 0,
        "the load's results were all in before the checks"
    );
}

#[test]
fn a_signal_while_the_report_is_written_lets_the_write_finish_whole() {
    // The report is already built when the signal comes: it is complete, and it is
    // written whole (each file is renamed into place only once fully written).
    let (code, report, stderr) = interrupt_at_with(
        "name: writing\ntarget: {mock: {time_scale: 100}}\nload:\n  phases: [{hold: 1s, rate: 2}]\n  inputs_per_batch: 5\nresults: {via: both, deadline: 20s}\n",
        "writing the report",
        "INT",
        &[("BATCHPROOF_TEST_SLOW_WRITE_MS", "1500")],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(report.complete, "the run had finished before the signal");
    assert_eq!(report.runs.seen, report.runs.submitted);
}
