//! mock/README.md's quickstarts run as written: each block marked ```python quickstart or
//! ```js quickstart is extracted and run (with the official Python SDK in tests/.venv, and
//! the official TypeScript SDK in tests/sdk/ts/node_modules) against `batchproof mock` as
//! a client developer starts it, on a free port. What they print is checked against what
//! the mock saw: the batch exists, each steered input ended as steered, and the receiver
//! answered the mock's deliveries with 200 after verifying them.
//!
//! Needs tests/.venv and tests/sdk/ts/node_modules (`bash tests/sdk/setup.sh`); without
//! them the tests fail. `bash scripts/test.sh` sets them up, or, when PyPI or npm cannot be
//! reached, leaves this test out and counts it as skipped in the summary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The block of mock/README.md whose info string is `info` (there must be exactly one).
fn quickstart(info: &str) -> String {
    let readme = std::fs::read_to_string(root().join("mock/README.md")).unwrap();
    let fence = format!("```{info}\n");
    let starts: Vec<usize> = readme.match_indices(&fence).map(|(i, _)| i).collect();
    assert_eq!(starts.len(), 1, "mock/README.md needs one ```{info} block");
    let start = starts[0] + fence.len();
    let len = readme[start..].find("\n```").expect("a closed block") + 1;
    readme[start..start + len].to_string()
}

/// Each line a child prints on `stream`, sent as it comes.
fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    rx
}

/// `batchproof mock` with its built-in profile on a free loopback port; killed on drop.
struct Mock {
    child: Child,
    url: String,
}

impl Mock {
    fn start() -> Mock {
        let mut child = Command::new(env!("CARGO_BIN_EXE_batchproof"))
            .args(["mock", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("batchproof mock starts");
        let stderr = lines(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr
                .recv_timeout(left)
                .expect("the mock prints `batchproof mock serving URL` within 30 s");
            if let Some(rest) = line.strip_prefix("batchproof mock serving ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining stderr so the mock never blocks on a full pipe.
        std::thread::spawn(move || for _ in stderr {});
        Mock { child, url }
    }

    /// A `/_mock/` admin answer (the test's own runtime: the mock is another process).
    fn admin(&self, path: &str) -> Value {
        let url = format!("{}/_mock/{path}", self.url);
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { reqwest::get(&url).await.unwrap().json().await.unwrap() })
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a quickstart to its end (two minutes at most) and returns what it printed, line by
/// line; fails with its whole output when it fails or hangs.
fn run(mut cmd: Command, mock: &Mock) -> Vec<String> {
    let mut child = cmd
        .env("BATCHPROOF_MOCK_URL", &mock.url)
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the quickstart starts");
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stdout.recv_timeout(left) {
            Ok(line) => out.push(line),
            // stdout closed: the quickstart is ending.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the quickstart did not finish in 120 s:\n{}\n{}",
                    out.join("\n"),
                    stderr.try_iter().collect::<Vec<_>>().join("\n")
                );
            }
        }
    }
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the quickstart closed its output but did not exit in 120 s:\n{}",
                out.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let err: Vec<String> = stderr.iter().collect();
    assert!(
        status.success(),
        "the quickstart failed ({status}):\n{}\n{}",
        out.join("\n"),
        err.join("\n")
    );
    out
}

/// What every quickstart must show, checked against the mock's own record: a batch, each
/// steered input's events verified by the receiver (needs_review, then the rejection the
/// quickstart asked for), the mock's deliveries of those events answered 200, and a
/// listing of the batch with each run once.
fn check(out: &[String], mock: &Mock) {
    let text = out.join("\n");
    let batch: Vec<&str> = out
        .iter()
        .filter_map(|l| l.strip_prefix("batch "))
        .collect();
    assert!(
        batch.len() == 1 && batch[0].starts_with("batch_"),
        "one `batch batch_…` line: {text}"
    );
    let batch = batch[0];
    let verified: Vec<(String, String, String)> = out
        .iter()
        .filter_map(|l| l.strip_prefix("verified "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "`verified EVENT DOC RUN`: {l}");
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect();
    let mut events: Vec<(&str, &str)> = verified
        .iter()
        .map(|(e, d, _)| (e.as_str(), d.as_str()))
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            ("workflow_run.completed", "invoice"),
            ("workflow_run.failed", "locked"),
            ("workflow_run.needs_review", "blurry"),
            ("workflow_run.rejected", "blurry"),
        ],
        "{text}"
    );
    assert_eq!(
        out.last().map(String::as_str),
        Some("listed 3 runs: FAILED PROCESSED REJECTED"),
        "{text}"
    );

    let by_status = mock.admin(&format!("batches/{batch}"))["byStatus"].clone();
    for (status, n) in [("PROCESSED", 1), ("FAILED", 1), ("REJECTED", 1)] {
        assert_eq!(by_status[status], n, "{status} in {by_status}");
    }
    // The mock logs a delivery once its answer is in, which may be just after the
    // quickstart moved on: wait for the log to hold every verified event (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = mock.admin("deliveries?limit=1000");
        let answered: Vec<(String, String)> = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["batchId"] == batch && d["outcome"] == "delivered")
            .filter(|d| d["attempts"].as_array().unwrap().last().unwrap()["status"] == 200)
            .map(|d| {
                let s = |k: &str| d[k].as_str().unwrap().to_string();
                (s("eventType"), s("runId"))
            })
            .collect();
        let all = verified
            .iter()
            .all(|(e, _, run)| answered.contains(&(e.clone(), run.clone())));
        if all {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mock's deliveries of {verified:?} answered 200: {log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // It leaves no endpoint behind to be sent events at a closed port.
    let endpoints = mock.admin("endpoints");
    let left = endpoints
        .as_array()
        .map(Vec::len)
        .or(endpoints.as_object().map(|o| o.len()));
    assert_eq!(
        left,
        Some(0),
        "the quickstart removes its webhook endpoint: {endpoints}"
    );
}

#[test]
fn the_python_quickstart_runs_as_written_against_batchproof_mock() {
    let python = root().join("tests/.venv/bin/python");
    assert!(
        python.exists(),
        "tests/.venv is missing: run `bash tests/sdk/setup.sh` (scripts/test.sh and .ci/run do)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quickstart.py");
    std::fs::write(&file, quickstart("python quickstart")).unwrap();
    let mock = Mock::start();
    let mut cmd = Command::new(python);
    cmd.arg(&file);
    let out = run(cmd, &mock);
    check(&out, &mock);
}

#[test]
fn the_typescript_quickstart_runs_as_written_against_batchproof_mock() {
    let modules: PathBuf = root().join("tests/sdk/ts/node_modules");
    assert!(
        modules.join("extend-ai").exists(),
        "tests/sdk/ts/node_modules is missing: run `bash tests/sdk/setup.sh` (scripts/test.sh and .ci/run do)"
    );
    // Node finds `extend-ai` in a node_modules beside the file, as in a project of one's own.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
    let file = dir.path().join("quickstart.mjs");
    std::fs::write(&file, quickstart("js quickstart")).unwrap();
    let mock = Mock::start();
    let mut cmd = Command::new("node");
    cmd.arg(&file);
    let out = run(cmd, &mock);
    check(&out, &mock);
}
