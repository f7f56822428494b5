//! A run never lives alone: another run of the same scenario on the same workflow, other
//! traffic on the same rate limit, a target that dies mid-run or never answers. What the
//! run did not cause is counted apart (foreign), what it could not read is *not run*, and
//! an outage is `unreachable` (exit 3, incomplete) — never a contract break. Each target
//! here is written in the test or is the mock behind a limiter written in the test.

mod common;
use common::{free_port, output_text, wait_for_lines};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use batchproof::checks::RuleStatus;
use batchproof::mock::{MockServer, Profile};
use batchproof::report::Report;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_batchproof"));
    c.stdin(Stdio::null())
        .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN);
    c
}

/// The one report folder under `out`.
fn report_in(out: &Path) -> Report {
    let dir = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("report.json").exists())
        .unwrap_or_else(|| panic!("no report under {}", out.display()));
    batchproof::report::json::read(&dir.join("report.json")).unwrap()
}

fn failed_rules(r: &Report) -> Vec<String> {
    r.rules
        .iter()
        .filter(|x| x.status == RuleStatus::Failed)
        .map(|x| format!("{}: {:?}", x.id, x.examples.first()))
        .collect()
}

/// conformance.yaml as a pipeline would run it against a URL, with its own receiver.
fn conformance_against(dir: &Path, name: &str, url: &str, port: u16) -> PathBuf {
    let text = std::fs::read_to_string(root().join("scenarios/conformance.yaml")).unwrap();
    let text = text
        .replace(
            "target:\n  mock:\n    profile: ../mock/conformance.yaml\n",
            &format!("target:\n  url: {url}\n"),
        )
        .replace(
            "results:\n  via: both\n",
            &format!(
                "results:\n  via: both\n  webhooks: {{listen: '127.0.0.1:{port}', public_url: 'http://127.0.0.1:{port}'}}\n"
            ),
        );
    assert!(text.contains(url) && text.contains("public_url"), "{text}");
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_conformance_runs_on_one_workflow_do_not_fail_each_other() {
    let profile = Profile::load(&root().join("mock/conformance.yaml")).unwrap();
    let mock = MockServer::start(profile, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<(std::process::Child, PathBuf)> = ["first", "second"]
        .iter()
        .map(|name| {
            let scenario = conformance_against(dir.path(), name, &mock.url(), free_port());
            let out = dir.path().join(name);
            let child = bin()
                .args(["run", scenario.to_str().unwrap(), "--max-runs", "5000"])
                .args(["--progress", "none", "--out", out.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let mut foreign = 0;
    for (child, out) in runs {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let report = report_in(&out);
        assert_eq!(
            output.status.code(),
            Some(0),
            "failed rules {:?}, reasons {:?}\n{}",
            failed_rules(&report),
            report.verdict.reasons,
            output_text(&output)
        );
        assert_eq!(report.runs.anomalies.unknown, 0);
        foreign += report.runs.anomalies.foreign;
    }
    // Both subscribed to the whole workflow: each saw the other's results, apart.
    assert!(
        foreign > 0,
        "neither run counted the other's results as foreign"
    );
    mock.shutdown().await;
}

/// Takes a token from a bucket of one second's burst at `per_s` (tokens, last refill):
/// false when it is empty.
fn take(bucket: &mut (f64, Instant), per_s: f64) -> bool {
    let now = Instant::now();
    bucket.0 = (bucket.0 + now.duration_since(bucket.1).as_secs_f64() * per_s).min(per_s);
    bucket.1 = now;
    let ok = bucket.0 >= 1.0;
    if ok {
        bucket.0 -= 1.0;
    }
    ok
}

/// A token bucket for reads, written here, in front of the mock: the account's limit,
/// shared by the run and whatever else uses the key.
#[derive(Clone)]
struct Limiter {
    upstream: String,
    http: reqwest::Client,
    bucket: Arc<std::sync::Mutex<(f64, Instant)>>,
    per_s: f64,
    refused: Arc<AtomicU64>,
}

async fn limited(
    State(l): State<Limiter>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Body) {
    if method == Method::GET && !take(&mut l.bucket.lock().unwrap(), l.per_s) {
        l.refused.fetch_add(1, Ordering::Relaxed);
        let mut h = HeaderMap::new();
        h.insert("retry-after", "1".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        return (
            StatusCode::TOO_MANY_REQUESTS,
            h,
            Body::from(
                r#"{"object":"error","code":"RATE_LIMITED","message":"slow down","retryable":true}"#,
            ),
        );
    }
    let mut req = l.http.request(
        method,
        format!(
            "{}{}",
            l.upstream,
            uri.path_and_query().map_or("", |p| p.as_str())
        ),
    );
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    let resp = req.body(body).send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let mut h = HeaderMap::new();
    if let Some(ct) = resp.headers().get("content-type") {
        h.insert("content-type", ct.clone());
    }
    (status, h, Body::from(resp.bytes().await.unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_throttled_by_other_traffic_on_the_key_are_waited_out_not_failed() {
    let mut profile = Profile::load(&root().join("mock/default.yaml")).unwrap();
    profile.time_scale = 200.0;
    let mock = MockServer::start(profile, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let limiter = Limiter {
        upstream: mock.url(),
        http: reqwest::Client::new(),
        bucket: Arc::new(std::sync::Mutex::new((40.0, Instant::now()))),
        per_s: 40.0,
        refused: Arc::new(AtomicU64::new(0)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(limited).with_state(limiter.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // Production's traffic on the same key: 20 reads a second, for as long as the run.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background = {
        let (url, done) = (url.clone(), done.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut sent = 0u64;
            while !done.load(Ordering::Relaxed) && sent < 20 * 120 {
                let _ = http
                    .get(format!("{url}/workflow_runs?maxPageSize=1"))
                    .bearer_auth(batchproof::mock::profile::DEFAULT_TOKEN)
                    .send()
                    .await;
                sent += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("shared.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: shared\ntarget: {{url: '{url}'}}\nload:\n  phases: [{{hold: 2s, rate: 2}}]\n  inputs_per_batch: 40\nresults: {{via: polling, polling: {{interval: 500ms}}, deadline: 60s}}\nchecks:\n  include: [runs, list]\n  probes: false\n  audit_batches: 4\n  page_size: 10\n  throttle_probe: 0\nthresholds: ['runs.missing == 0']\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = {
        let mut c = bin();
        c.args(["run", scenario.to_str().unwrap(), "--max-runs", "500"])
            .args(["--progress", "none", "--out", out.to_str().unwrap()]);
        tokio::task::spawn_blocking(move || c.output())
            .await
            .unwrap()
            .unwrap()
    };
    done.store(true, Ordering::Relaxed);
    background.abort();
    let report = report_in(&out);
    assert!(
        limiter.refused.load(Ordering::Relaxed) > 0,
        "the limiter never refused a read: the test proves nothing"
    );
    let reads = report
        .reads
        .clone()
        .expect("the audit's reads are reported");
    assert!(reads.throttled > 0, "{reads:?}");
    assert_eq!(
        output.status.code(),
        Some(0),
        "failed {:?}; reasons {:?}; reads {reads:?}\n{}",
        failed_rules(&report),
        report.verdict.reasons,
        output_text(&output)
    );
    let count = report.rules.iter().find(|r| r.id == "runs.count").unwrap();
    assert_eq!(count.status, RuleStatus::Passed, "{count:?}");
    mock.shutdown().await;
}

/// A long polling or webhook run against `url` (the mock), stopped by killing the mock
/// once the load is over; returns the exit code, the report and what it printed.
async fn outage_mid_run(via: &str) -> (Option<i32>, Report, String) {
    let mut profile = Profile::load(&root().join("mock/default.yaml")).unwrap();
    // Slow enough that results are still coming when the target dies.
    profile.time_scale = 1.0;
    let mock = MockServer::start(profile, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let hooks = if via == "webhooks" {
        format!(", webhooks: {{listen: '127.0.0.1:{port}', public_url: 'http://127.0.0.1:{port}'}}")
    } else {
        String::new()
    };
    let scenario = dir.path().join("outage.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: outage\ntarget: {{url: '{}'}}\nload:\n  phases: [{{hold: 2s, rate: 2}}]\n  inputs_per_batch: 10\nresults: {{via: {via}, polling: {{interval: 200ms}}, deadline: 120s{hooks}}}\nchecks: {{probes: true, throttle_probe: 0}}\nthresholds: ['runs.missing == 0']\n",
            mock.url()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut child = bin()
        .args(["run", scenario.to_str().unwrap(), "--max-runs", "5000"])
        .args(["--progress", "none", "--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = wait_for_lines(&mut child, "load finished", 1, Duration::from_secs(30));
    mock.shutdown().await;
    let killed = Instant::now();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(75),
        "a dead target is given up on, not waited out to the deadline ({:?})",
        killed.elapsed()
    );
    let text = format!("{}{}", output_text(&output), stderr.join().unwrap());
    (output.status.code(), report_in(&out), text)
}

fn assert_outage(code: Option<i32>, report: &Report, text: &str) {
    assert_eq!(code, Some(3), "{text}");
    assert!(!report.complete, "an outage is not a complete run");
    assert!(
        report
            .verdict
            .reasons
            .iter()
            .any(|r| r.code == "unreachable"),
        "{:?}",
        report.verdict.reasons
    );
    assert!(
        failed_rules(report).is_empty(),
        "an outage broke no contract: {:?}",
        failed_rules(report)
    );
    assert!(
        !report.rules.is_empty()
            && report
                .rules
                .iter()
                .all(|r| matches!(r.status, RuleStatus::NotRun | RuleStatus::NotApplicable)),
        "every rule is listed, not run"
    );
    let md = batchproof::report::Format::render(&batchproof::report::markdown::Markdown, report)
        .unwrap();
    assert!(!md.contains("PASSED") && md.contains("unreachable"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_killed_mid_run_is_unreachable_when_polling() {
    let (code, report, text) = outage_mid_run("polling").await;
    assert_outage(code, &report, &text);
    assert!(
        report.gave_up.iter().any(|g| g.starts_with("results:")),
        "{:?}",
        report.gave_up
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_killed_mid_run_is_unreachable_with_webhooks() {
    let (code, report, text) = outage_mid_run("webhooks").await;
    assert_outage(code, &report, &text);
}

#[test]
fn a_target_down_from_the_start_is_unreachable_in_both_modes() {
    for via in ["polling", "webhooks"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let scenario = dir.path().join("down.yaml");
        std::fs::write(
            &scenario,
            format!(
                "name: down\ntarget: {{url: 'http://127.0.0.1:{}'}}\nload:\n  phases: [{{hold: 1s, rate: 2}}]\n  inputs_per_batch: 5\nresults: {{via: {via}, deadline: 20s, webhooks: {{listen: '127.0.0.1:{port}', public_url: 'http://127.0.0.1:{port}'}}}}\nchecks: {{throttle_probe: 0}}\n",
                free_port()
            ),
        )
        .unwrap();
        let out = dir.path().join("out");
        let output = bin()
            .args(["run", scenario.to_str().unwrap(), "--max-runs", "5000"])
            .args(["--progress", "none", "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        let text = output_text(&output);
        assert_eq!(output.status.code(), Some(3), "{via}: {text}");
        let report = report_in(&out);
        assert!(!report.complete, "{via}");
        assert!(
            report
                .verdict
                .reasons
                .iter()
                .any(|r| r.code == "unreachable"
                    || (r.code == "interrupted" && r.message.contains("unreachable"))),
            "{via}: {:?}",
            report.verdict.reasons
        );
        let banner = text
            .lines()
            .find(|l| l.contains("── batchproof"))
            .unwrap_or_default();
        assert!(
            banner.contains("INCOMPLETE") && !banner.contains("FAILED"),
            "{via}: an outage is not FAILED: {text}"
        );
    }
}

#[test]
fn a_target_that_never_answers_ends_by_its_timeouts() {
    // Accepts every connection and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().take(500).flatten() {
                held.lock().unwrap().push(s);
            }
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("hung.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: hung\ntarget: {{url: '{url}'}}\nload:\n  phases: [{{hold: 2s, rate: 2}}]\n  inputs_per_batch: 5\n  request_timeout: 2s\nresults: {{via: polling, deadline: 300s}}\nchecks: {{throttle_probe: 0}}\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let started = Instant::now();
    let output = bin()
        .args(["run", scenario.to_str().unwrap(), "--max-runs", "5000"])
        .args(["--progress", "none", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "a hung target holds the run for its timeouts, not for minutes: {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(3), "{}", output_text(&output));
    let report = report_in(&out);
    assert!(!report.complete);
    assert!(report.unreachable.is_some(), "{:?}", report.verdict.reasons);
}

#[test]
fn max_duration_bounds_the_whole_run_and_keeps_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("long.yaml");
    std::fs::write(
        &scenario,
        "name: long\ntarget: {mock: {time_scale: 100}}\nload:\n  phases: [{hold: 120s, rate: 2}]\n  inputs_per_batch: 5\nresults: {via: polling, deadline: 60s}\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let started = Instant::now();
    let output = bin()
        .args(["run", scenario.to_str().unwrap(), "--max-duration", "3s"])
        .args(["--progress", "none", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(3), "{}", output_text(&output));
    let report = report_in(&out);
    assert!(!report.complete);
    assert!(
        report
            .interrupted
            .as_deref()
            .is_some_and(|w| w.contains("--max-duration")),
        "{:?}",
        report.interrupted
    );
}

/// The account's rate limits, written here in front of the mock: a bucket per category
/// (runs: batch submissions; reads: GETs), one second of burst, 429 with Retry-After past
/// it. Counts what it refused.
#[derive(Clone)]
struct Account {
    upstream: String,
    http: reqwest::Client,
    buckets: Arc<std::sync::Mutex<[(f64, Instant); 2]>>,
    per_s: [f64; 2],
    refused: Arc<[AtomicU64; 2]>,
}

async fn account(
    State(a): State<Account>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Body) {
    let category = if method == Method::GET { 1 } else { 0 };
    if !take(&mut a.buckets.lock().unwrap()[category], a.per_s[category]) {
        a.refused[category].fetch_add(1, Ordering::Relaxed);
        let mut h = HeaderMap::new();
        h.insert("retry-after", "1".parse().unwrap());
        return (StatusCode::TOO_MANY_REQUESTS, h, Body::from("{}"));
    }
    let limiter = Limiter {
        upstream: a.upstream.clone(),
        http: a.http.clone(),
        bucket: Arc::new(std::sync::Mutex::new((f64::MAX, Instant::now()))),
        per_s: f64::MAX,
        refused: Arc::new(AtomicU64::new(0)),
    };
    limited(State(limiter), method, uri, headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_on_one_account_share_its_rate_limits() {
    let mut profile = Profile::load(&root().join("mock/default.yaml")).unwrap();
    profile.time_scale = 100.0;
    let mock = MockServer::start(profile, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // 6 batch submissions and 12 reads a second for the whole account.
    let acct = Account {
        upstream: mock.url(),
        http: reqwest::Client::new(),
        buckets: Arc::new(std::sync::Mutex::new([
            (6.0, Instant::now()),
            (12.0, Instant::now()),
        ])),
        per_s: [6.0, 12.0],
        refused: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(account).with_state(acct.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("sharded.yaml");
    // The whole job offers the account's own submission rate; every shard polls eagerly.
    std::fs::write(
        &scenario,
        format!(
            "name: sharded\ntarget: {{url: '{url}'}}\nlimits: {{run_rps: 6, write_rps: 6, get_rps: 12}}\nload:\n  phases: [{{hold: 4s, rate: 5}}]\n  inputs_per_batch: 10\nresults: {{via: polling, polling: {{interval: 50ms}}, deadline: 60s}}\nthresholds: ['runs.missing == 0']\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let shards: Vec<std::process::Child> = (0..3)
        .map(|i| {
            bin()
                .args(["run", scenario.to_str().unwrap(), "--max-runs", "1000"])
                .args(["--shard", &format!("{i}/3")])
                .args(["--progress", "none", "--out", out.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in shards {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    }
    let [runs, reads] = &*acct.refused;
    assert_eq!(
        runs.load(Ordering::Relaxed),
        0,
        "the shards together broke the account's submission limit"
    );
    assert_eq!(
        reads.load(Ordering::Relaxed),
        0,
        "the shards together broke the account's read limit"
    );
    // None lost: every shard's runs came back.
    let mut seen = 0;
    let mut submitted = 0;
    for e in std::fs::read_dir(&out).unwrap().filter_map(Result::ok) {
        let r = batchproof::report::json::read(&e.path().join("report.json")).unwrap();
        seen += r.runs.seen;
        submitted += r.runs.submitted;
    }
    assert_eq!((seen, submitted), (200, 200));
    mock.shutdown().await;
}
