//! `batchproof grade` proven both ways, through the binary: a well-behaved client written
//! on the official Python SDK passes every client rule, and a sloppy client in plain
//! urllib fails exactly the rules it breaks, each with its evidence (tests/clients/).
//! `mock --grade` grades a client started separately, live and on shutdown.
//!
//! The SDK client needs tests/.venv (`bash tests/sdk/setup.sh`); without it that test
//! fails with what to run, and scripts/test.sh leaves it out and counts it skipped.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn grade(out: &Path, client: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["grade", "--out"])
        .arg(out)
        .arg("--")
        .args(client)
        .current_dir(root())
        .output()
        .unwrap();
    (o.status.code(), common::output_text(&o))
}

fn read_grade(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("grade.json")).unwrap()).unwrap()
}

fn with_status<'a>(g: &'a Value, status: &str) -> BTreeSet<&'a str> {
    g["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

fn venv_python() -> PathBuf {
    let p = root().join("tests/.venv/bin/python");
    assert!(
        p.is_file(),
        "tests/.venv is missing: run `bash tests/sdk/setup.sh` (scripts/test.sh and .ci/run do)"
    );
    p
}

#[test]
fn a_well_behaved_sdk_client_passes_every_client_rule() {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grade");
    let (code, text) = grade(
        &out,
        &[python.to_str().unwrap(), "tests/clients/good_client.py"],
    );
    assert_eq!(code, Some(0), "{text}");
    // It met every adversity on its way: each rule was put to the test, and held.
    assert!(
        text.contains(": accepted before the 500, not sent again"),
        "{text}"
    );
    let g = read_grade(&out);
    assert_eq!(g["passed"], true, "{g}");
    assert_eq!(with_status(&g, "passed").len(), 12, "{g}");
    assert!(with_status(&g, "not_exercised").is_empty(), "{g}");
    assert_eq!(g["client"]["code"], 0);
    let junit = std::fs::read_to_string(out.join("grade.junit.xml")).unwrap();
    assert!(
        junit.contains("tests=\"13\"") && junit.contains("failures=\"0\""),
        "{junit}"
    );
    let md = std::fs::read_to_string(out.join("grade.md")).unwrap();
    assert!(md.starts_with("# Client grade: PASSED"), "{md}");
}

#[test]
fn a_sloppy_client_fails_exactly_the_rules_it_breaks_with_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grade");
    let (code, text) = grade(&out, &["python3", "tests/clients/sloppy_client.py"]);
    assert_eq!(code, Some(1), "{text}");
    let g = read_grade(&out);
    assert_eq!(g["passed"], false);
    // Its command itself succeeded: the grade fails on the rules alone.
    assert_eq!(g["client"]["code"], 0, "{}", g["client"]);
    let expected: BTreeSet<&str> = [
        "client.batch_size",
        "client.retry_after",
        "client.backoff",
        "client.no_blind_resubmit",
        "client.page_token_encoded",
        "client.pages_followed",
        "client.webhook_verify",
    ]
    .into();
    assert_eq!(with_status(&g, "failed"), expected, "{text}");
    let evidence = |id: &str| -> String {
        let rule = g["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap();
        rule["evidence"].to_string()
    };
    for (id, needle) in [
        ("client.batch_size", "a batch of 1001 inputs"),
        ("client.retry_after", "a 429 that asked for 1200 ms"),
        ("client.backoff", "after a 429 without Retry-After"),
        ("client.no_blind_resubmit", "sent 20 of the 20 inputs again"),
        ("client.page_token_encoded", "nextPageToken=v2:+/+/"),
        ("client.pages_followed", "never its last"),
        (
            "client.webhook_verify",
            "forged delivery (unsigned) answered 200",
        ),
    ] {
        assert!(evidence(id).contains(needle), "{id}: {}", evidence(id));
        assert!(
            evidence(id).contains("\"at_ms\"") && evidence(id).contains("\"expected\""),
            "{id}: evidence names when and what was expected"
        );
    }
    // Every format says so.
    let junit = std::fs::read_to_string(out.join("grade.junit.xml")).unwrap();
    assert!(junit.contains("failures=\"7\""), "{junit}");
    let md = std::fs::read_to_string(out.join("grade.md")).unwrap();
    assert!(
        md.starts_with("# Client grade: FAILED: 7 client rule(s) broken"),
        "{md}"
    );
    let html = std::fs::read_to_string(out.join("grade.html")).unwrap();
    assert_eq!(html.matches("data-status=\"failed\"").count(), 7);
    assert!(text.contains("✗ client.no_blind_resubmit"), "{text}");
}

#[test]
fn grade_fails_a_client_that_times_out_or_sends_nothing_and_refuses_one_that_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grade");
    let o = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["grade", "--timeout", "1s", "--out"])
        .arg(&out)
        .args(["--", "sleep", "30"])
        .output()
        .unwrap();
    let text = common::output_text(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("timed out"), "{text}");
    let g = read_grade(&out);
    assert_eq!(g["client"]["timed_out"], true);
    // Nothing was asked of the mock: no rule passed by default.
    assert!(with_status(&g, "passed").is_empty(), "{g}");
    // A client that never reaches the API proves nothing: it does not pass.
    let (code, text) = grade(&dir.path().join("idle"), &["true"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("the client sent the API nothing"), "{text}");
    let o = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["grade", "--timeout", "0s", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", common::output_text(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["grade", "--", "/no/such/client"])
        .output()
        .unwrap();
    let text = common::output_text(&o);
    assert_eq!(o.status.code(), Some(3), "{text}");
    assert!(text.contains("cannot run `/no/such/client`"), "{text}");
}

#[tokio::test]
async fn mock_grade_serves_the_grade_live_and_writes_it_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("client");
    let port = common::free_port();
    let mut mock = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["mock", "--bind", &format!("127.0.0.1:{port}"), "--grade"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = common::wait_for_lines(&mut mock, "grading the client", 1, Duration::from_secs(30));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // A client that forgets the version header.
    let r = http
        .get(format!("{base}/workflow_runs"))
        .bearer_auth(batchproof::mock::profile::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let live: Value = http
        .get(format!("{base}/_mock/grade"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // `--grade` serves the sparring profile: the first batch POST meets a throttle.
    let throttled = http
        .post(format!("{base}/workflow_runs/batch"))
        .bearer_auth(batchproof::mock::profile::DEFAULT_TOKEN)
        .header("x-extend-api-version", "2026-02-09")
        .json(&serde_json::json!({"workflow": {"id": "workflow_batchproof_demo"}, "inputs": [{"file": {"url": "https://example.test/a.pdf"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
    assert_eq!(live["passed"], false, "{live}");
    assert!(
        with_status(&live, "failed").contains("client.version_header"),
        "{live}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &mock.id().to_string()])
        .status();
    let status = mock.wait().unwrap();
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    let g = read_grade(&out);
    assert_eq!(
        with_status(&g, "failed"),
        ["client.version_header"].into(),
        "{g}"
    );
    assert!(out.join("grade.html").is_file() && out.join("grade.junit.xml").is_file());
}

/// mock/README's recommended backoff (full jitter: a random wait between 0 and
/// min(cap, 250 ms × 2^attempt)) meets the same grade every time, however its draws fall;
/// so do equal and decorrelated jitter and plain exponential backoff.
#[test]
fn every_correct_backoff_passes_every_time() {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<(String, usize)> = (0..20)
        .map(|i| ("full".to_string(), i))
        .chain(["equal", "decorrelated", "plain"].map(|k| (k.to_string(), 0)))
        .collect();
    let failures = std::sync::Mutex::new(Vec::new());
    // Four gradings at a time: each is a mock and a client of its own.
    for chunk in runs.chunks(4) {
        std::thread::scope(|s| {
            for (kind, i) in chunk {
                let out = dir.path().join(format!("{kind}-{i}"));
                let python = python.clone();
                let failures = &failures;
                s.spawn(move || {
                    let o = Command::new(env!("CARGO_BIN_EXE_batchproof"))
                        .args(["grade", "--out"])
                        .arg(&out)
                        .arg("--")
                        .arg(&python)
                        .arg("tests/clients/good_client.py")
                        .env("BACKOFF", kind)
                        .current_dir(root())
                        .output()
                        .unwrap();
                    if o.status.code() != Some(0) {
                        let g = std::fs::read_to_string(out.join("grade.md")).unwrap_or_default();
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{kind} #{i}: {}\n{g}", common::output_text(&o)));
                    }
                });
            }
        });
    }
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} gradings failed:\n{}",
        failures.len(),
        runs.len(),
        failures.join("\n")
    );
}
