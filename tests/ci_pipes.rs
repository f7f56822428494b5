//! CI's own process handling never loses the report: a reader that leaves early
//! (`2>&1 | head -2`), `timeout` signalling the process and its group, a `| tee` pipeline
//! whose group gets SIGTERM, an `--out` that cannot be written. Each runs as a CI job
//! would, through a real shell.

mod common;
use common::output_text;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_batchproof")
}

/// A run long enough to be signalled mid-load, on the embedded mock.
const LONG: &str = "name: long\ntarget: {mock: {time_scale: 100}}\nload:\n  phases: [{hold: 60s, rate: 4}]\n  inputs_per_batch: 20\nresults: {via: polling, polling: {interval: 100ms}, deadline: 30s}\n";
const SHORT: &str = "name: short\ntarget: {mock: {time_scale: 200}}\nload:\n  phases: [{hold: 2s, rate: 3}]\n  inputs_per_batch: 5\nresults: {via: polling, polling: {interval: 100ms}, deadline: 30s}\nthresholds: ['runs.missing == 0']\n";

fn report_under(out: &Path) -> batchproof::report::Report {
    let dir = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("report.json").exists())
        .unwrap_or_else(|| panic!("no report under {}", out.display()));
    batchproof::report::json::read(&dir.join("report.json")).unwrap()
}

fn no_tmp_left(out: &Path) {
    for e in walk(out) {
        assert!(
            !e.to_string_lossy().ends_with(".tmp"),
            "a half-written file was left: {}",
            e.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_reader_that_leaves_after_two_lines_does_not_lose_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("short.yaml"), SHORT).unwrap();
    // As written in a CI step; PIPESTATUS keeps batchproof's own exit code.
    let script = format!(
        "'{}' run short.yaml --progress lines --out out 2>&1 | head -2; echo \"${{PIPESTATUS[0]}}\" > rc",
        bin()
    );
    let output = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let rc = std::fs::read_to_string(dir.path().join("rc")).unwrap();
    assert_eq!(rc.trim(), "0", "{}", output_text(&output));
    let report = report_under(&dir.path().join("out"));
    assert!(
        report.complete && report.verdict.passed,
        "{:?}",
        report.verdict
    );
    no_tmp_left(&dir.path().join("out"));
}

#[test]
fn timeout_signalling_the_process_and_its_group_counts_as_one_signal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("long.yaml"), LONG).unwrap();
    let started = Instant::now();
    let output = Command::new("timeout")
        .args([
            "-s",
            "TERM",
            "4",
            bin(),
            "run",
            "long.yaml",
            "--progress",
            "none",
        ])
        .args(["--out", "out"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let text = output_text(&output);
    // timeout's own code for "the command timed out".
    assert_eq!(output.status.code(), Some(124), "{text}");
    assert!(
        !text.contains("second signal"),
        "the group's copy of the signal was read as a second one: {text}"
    );
    let report = report_under(&dir.path().join("out"));
    assert!(!report.complete);
    assert!(
        report
            .interrupted
            .as_deref()
            .is_some_and(|w| w.contains("SIGTERM")),
        "{:?}",
        report.interrupted
    );
    no_tmp_left(&dir.path().join("out"));
}

#[test]
fn sigterm_to_a_tee_pipelines_group_still_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("long.yaml"), LONG).unwrap();
    let script = format!(
        "'{}' run long.yaml --progress lines --out out 2>&1 | tee log; echo \"${{PIPESTATUS[0]}}\" > rc",
        bin()
    );
    // Its own process group, as a CI runner starts a step; the group gets the TERM.
    let mut shell = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("RUST_LOG", "info,batchproof::load=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = shell.id();
    // Signal once tee has shown four accepted batches, not after a guessed time.
    let mut seen = 0;
    let mut lines = BufReader::new(shell.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < 4 && Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) if l.contains("batch accepted") => seen += 1,
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(seen, 4, "the run never showed four accepted batches");
    let killed = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    // The shell died with the signal; batchproof finishes its report and exits on its
    // own: wait until nothing of the group is left.
    drop(lines);
    let _ = shell.wait();
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        let alive = Command::new("kill")
            .args(["-0", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = report_under(&dir.path().join("out"));
    assert!(!report.complete);
    assert!(
        report
            .interrupted
            .as_deref()
            .is_some_and(|w| w.contains("SIGTERM")),
        "{:?}",
        report.interrupted
    );
    no_tmp_left(&dir.path().join("out"));
}

#[test]
fn an_out_that_cannot_be_written_is_refused_before_anything_is_sent() {
    // A target written here that counts what reaches it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("paid.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: paid\ntarget: {{url: '{url}'}}\nload:\n  phases: [{{hold: 1s, rate: 2}}]\n  inputs_per_batch: 5\nresults: {{via: polling, deadline: 5s}}\n"
        ),
    )
    .unwrap();
    // A file where a folder should be: no user, root included, can write under it.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let mut outs = vec![blocker.join("reports")];
    // A read-only folder stops only a user without root's override.
    if !is_root() {
        let ro = dir.path().join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
        outs.push(ro);
    }
    for out in outs {
        let output = Command::new(bin())
            .args(["run", scenario.to_str().unwrap(), "--max-runs", "100"])
            .args(["--progress", "none", "--out", out.to_str().unwrap()])
            .env("EXTEND_API_KEY", "sk_test")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = output_text(&output);
        assert_eq!(output.status.code(), Some(2), "{text}");
        assert!(text.contains("cannot write reports into"), "{text}");
        assert!(
            listener.accept().is_err(),
            "a request reached the target although the report could not be written"
        );
    }
}

/// A pod that runs as a non-root user on a volume it cannot write (no `fsGroup`): as root
/// here, the run is started as `nobody` (setpriv) against a folder only root may write.
#[test]
fn a_non_root_user_on_a_folder_it_cannot_write_is_refused_before_sending() {
    // scripts/test.sh leaves it out (counted skipped) for a user who is not root.
    assert!(
        is_root(),
        "this test starts the run as another user: run it as root (CI does)"
    );
    use std::os::unix::fs::PermissionsExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let scenario = dir.path().join("paid.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: paid\ntarget: {{url: '{url}'}}\nload:\n  phases: [{{hold: 1s, rate: 2}}]\n  inputs_per_batch: 5\nresults: {{via: polling, deadline: 5s}}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&scenario, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The shared volume, root's, as a volume is without fsGroup.
    let volume = dir.path().join("reports");
    std::fs::create_dir(&volume).unwrap();
    std::fs::set_permissions(&volume, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()])
        .args(["run", scenario.to_str().unwrap(), "--max-runs", "100"])
        .args(["--progress", "none", "--out", volume.to_str().unwrap()])
        .env("EXTEND_API_KEY", "sk_test")
        .env("HOME", "/tmp")
        .current_dir("/tmp")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("cannot write reports into") && text.contains("Permission denied"),
        "{text}"
    );
    assert!(
        listener.accept().is_err(),
        "a request reached the target although the report could not be written"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
