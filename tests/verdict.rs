//! The verdict matrix: for each way a run can fail to do its job — a refused key, an
//! unreachable target, nothing accepted, forged deliveries, a budget stop, a partial
//! shard merge, endpoints an earlier run left behind — the console banner, report.json,
//! report.md, report.html, JUnit and the exit code all agree, and none says passed.
//! The targets are servers written here (or the mock in its own server), driven through
//! the binary exactly as a CI pipeline drives it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

/// What one invocation left: its exit code, its output and every report format.
struct Seen {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    json: Value,
    md: String,
    html: String,
    junit: Option<String>,
}

async fn batchproof(args: &[&str], dir: &Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(args)
        .current_dir(dir)
        .env("EXTEND_API_KEY", "sk_wrong_key")
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap()
}

/// The newest report folder under `out` whose name starts with `prefix`.
fn report_dir(out: &Path, prefix: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    dirs.sort();
    dirs.pop()
        .unwrap_or_else(|| panic!("no report folder {prefix}* in {}", out.display()))
}

fn seen(o: std::process::Output, dir: &Path) -> Seen {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    Seen {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        json: serde_json::from_str(&read("report.json"))
            .unwrap_or_else(|e| panic!("report.json in {}: {e}", dir.display())),
        md: read("report.md"),
        html: read("report.html"),
        junit: std::fs::read_to_string(dir.join("report.junit.xml")).ok(),
    }
}

/// Every format says the run did not pass, for the reason `code`, and the exit code is
/// `exit`.
fn assert_not_passed(s: &Seen, code: &str, exit: i32) {
    let all = format!("{}\n{}", s.stdout, s.stderr);
    assert_eq!(s.code, Some(exit), "exit code\n{all}");
    let banner = s
        .stdout
        .lines()
        .find(|l| l.starts_with("── batchproof ·"))
        .unwrap_or_else(|| panic!("no console banner\n{all}"));
    assert!(!banner.contains("PASSED"), "{banner}");
    assert!(
        s.stdout.contains(&format!("✗ {code}:")),
        "console reason {code}\n{all}"
    );
    assert_eq!(
        s.json["verdict"]["passed"],
        Value::Bool(false),
        "report.json"
    );
    let codes: Vec<&str> = s.json["verdict"]["reasons"]
        .as_array()
        .expect("verdict.reasons is a list")
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert!(codes.contains(&code), "report.json reasons {codes:?}");
    let title = s.md.lines().next().unwrap_or_default();
    assert!(
        title.starts_with("# batchproof") && !title.contains("PASSED"),
        "{title}"
    );
    assert!(s.md.contains(&format!("`{code}`")), "report.md\n{}", s.md);
    let badge = s
        .html
        .split("id=\"verdict\">")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .expect("the HTML's verdict badge");
    assert!(!badge.contains("PASSED"), "html badge {badge}");
    assert!(
        s.html.contains(&format!("data-code=\"{code}\"")),
        "report.html reason {code}"
    );
    if let Some(junit) = &s.junit {
        let doc = roxmltree::Document::parse(junit).unwrap();
        let case = doc
            .descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("verdict"))
            .expect("a verdict test case");
        let failure = case
            .children()
            .find(|n| n.has_tag_name("failure"))
            .expect("the verdict case fails");
        assert!(
            failure.text().unwrap_or_default().contains(code),
            "junit reason {code}"
        );
    }
}

/// A target written here: every batch gets `status` with `body`; requests are counted.
async fn answering(status: u16, body: &'static str) -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    dir.join(name).to_string_lossy().into_owned()
}

/// A polling scenario against `url`: 10 batches of 10 over 2 s.
fn url_scenario(dir: &Path, url: &str) -> String {
    write(
        dir,
        "job.yaml",
        &format!(
            "name: job\ntarget: {{url: '{url}'}}\nload:\n  phases: [{{hold: 2s, rate: 5}}]\n  inputs_per_batch: 10\nresults: {{via: polling, deadline: 3s, polling: {{interval: 200ms}}}}\nthresholds: ['runs.missing == 0']\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_key_stops_the_run_at_once_and_never_passes() {
    let (url, count) = answering(
        401,
        r#"{"code":"UNAUTHORIZED","message":"Invalid API key","retryable":false}"#,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let s = url_scenario(dir.path(), &url);
    let started = std::time::Instant::now();
    let o = batchproof(&["run", &s, "--yes", "--out", "out"], dir.path()).await;
    let s = seen(o, &report_dir(&dir.path().join("out"), "job-"));
    assert!(
        s.stderr
            .contains("the API key in EXTEND_API_KEY was refused: 401 UNAUTHORIZED"),
        "{}",
        s.stderr
    );
    assert_not_passed(&s, "auth_refused", 3);
    // Stopped at the first refusal: not 10 batches over 2 s.
    let sent = count.load(Ordering::SeqCst);
    assert!(sent <= 2, "{sent} requests after a refused key");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    // Refused when registering the webhook endpoint: nothing is submitted, and the run
    // still ends with a report that says why.
    let (url, count) = answering(
        401,
        r#"{"code":"UNAUTHORIZED","message":"Invalid API key","retryable":false}"#,
    )
    .await;
    let hooks = write(
        dir.path(),
        "hooks.yaml",
        &format!(
            "name: hooks
target: {{url: '{url}'}}
load:
  phases: [{{hold: 2s, rate: 5}}]
  inputs_per_batch: 10
results:
  via: webhooks
  deadline: 3s
  webhooks: {{listen: '127.0.0.1:0', public_url: 'http://127.0.0.1:1/hooks'}}
thresholds: ['runs.missing == 0']
"
        ),
    );
    let o = batchproof(&["run", &hooks, "--yes", "--out", "out"], dir.path()).await;
    let s = seen(o, &report_dir(&dir.path().join("out"), "hooks-"));
    assert!(
        s.stdout.contains("was refused: 401 UNAUTHORIZED") && s.stdout.contains("registering"),
        "{}",
        s.stdout
    );
    assert_not_passed(&s, "interrupted", 3);
    assert_not_passed(&s, "nothing_accepted", 3);
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "only the registration was sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_target_never_passes_and_counts_over_nothing_are_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let s = url_scenario(dir.path(), &format!("http://127.0.0.1:{port}"));
    let o = batchproof(&["run", &s, "--yes", "--out", "out"], dir.path()).await;
    let s = seen(o, &report_dir(&dir.path().join("out"), "job-"));
    assert_not_passed(&s, "unreachable", 3);
    assert_not_passed(&s, "nothing_accepted", 3);
    // `runs.missing == 0` over runs never submitted is no data, and fails.
    let t = &s.json["verdict"]["thresholds"][0];
    assert_eq!(t["value"], Value::Null, "{t}");
    assert_eq!(t["passed"], Value::Bool(false), "{t}");
    assert!(s.md.contains("no data"), "{}", s.md);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_with_every_batch_refused_fails_naming_the_status() {
    let (url, count) = answering(
        400,
        r#"{"code":"INVALID_REQUEST","message":"no","retryable":false}"#,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let s = url_scenario(dir.path(), &url);
    let o = batchproof(&["run", &s, "--yes", "--out", "out"], dir.path()).await;
    let s = seen(o, &report_dir(&dir.path().join("out"), "job-"));
    assert_not_passed(&s, "batches_rejected", 1);
    assert_not_passed(&s, "nothing_accepted", 1);
    assert!(s.stdout.contains("HTTP 400"), "{}", s.stdout);
    assert_eq!(count.load(Ordering::SeqCst), 10);
}

/// Runs `scenario` (its name first, no target) on the embedded mock with `profile`.
async fn on_a_defect(profile: &str, scenario: &str) -> Seen {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "defect.yaml", profile);
    let text = scenario.replacen('\n', "\ntarget: {mock: {profile: defect.yaml}}\n", 1);
    let s = write(dir.path(), "defect-run.yaml", &text);
    let o = batchproof(&["run", &s, "--out", "out"], dir.path()).await;
    let name = scenario
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("name: ");
    seen(o, &report_dir(&dir.path().join("out"), &format!("{name}-")))
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_deliveries_to_the_runs_own_endpoint_fail_the_run() {
    let s = on_a_defect(
        "time_scale: 1000\ndefects: {wrong_signature: true}\nwebhooks: {max_attempts: 2, retry: [50ms]}\n",
        "name: forged\nload:\n  phases: [{hold: 1s, rate: 2}]\n  inputs_per_batch: 5\nresults: {via: both, deadline: 4s, polling: {interval: 200ms}}\nthresholds: ['runs.missing == 0']\n",
    )
    .await;
    assert_not_passed(&s, "webhooks_rejected", 1);
    assert_eq!(s.json["runs"]["missing"], 0, "polling still saw every run");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_by_its_budget_says_so_in_every_format() {
    let mock = common::start(common::fast_profile()).await;
    let dir = tempfile::tempdir().unwrap();
    // 3 batches of 300: 900 runs planned, 700 allowed.
    let s = write(
        dir.path(),
        "big.yaml",
        &format!(
            "name: big\ntarget: {{url: '{}'}}\nload:\n  phases: [{{hold: 3s, rate: 1}}]\n  inputs_per_batch: 300\nresults: {{via: polling, deadline: 10s, polling: {{interval: 100ms}}}}\n",
            mock.url()
        ),
    );
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["run", &s, "--max-runs", "700", "--yes", "--out", "out"])
        .current_dir(dir.path())
        .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN)
        .output()
        .await
        .unwrap();
    let s = seen(o, &report_dir(&dir.path().join("out"), "big-"));
    assert_not_passed(&s, "budget_stop", 1);
    let state: Value = reqwest::get(format!("{}/_mock/state", mock.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created = state["runs"]["created"]
        .as_u64()
        .expect("a count of runs created");
    assert!(
        created <= 700,
        "{created} runs created under a budget of 700"
    );
    assert_eq!(created, 600, "the budget allows two whole batches");
}

#[tokio::test(flavor = "multi_thread")]
async fn half_a_shard_set_is_refused_and_a_partial_merge_never_passes() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(
        dir.path(),
        "sharded.yaml",
        "name: sharded\nload:\n  phases: [{hold: 2s, rate: 2}]\n  inputs_per_batch: 5\nresults: {via: both, deadline: 10s}\nthresholds: ['runs.missing == 0']\n",
    );
    for shard in ["0/2", "1/2"] {
        let o = batchproof(&["run", &s, "--shard", shard, "--out", "out"], dir.path()).await;
        assert_eq!(o.status.code(), Some(0), "{}", common::output_text(&o));
    }
    let shard0 = report_dir(&dir.path().join("out"), "sharded-shard0of2")
        .join("report.json")
        .to_string_lossy()
        .into_owned();
    let shard1 = report_dir(&dir.path().join("out"), "sharded-shard1of2")
        .join("report.json")
        .to_string_lossy()
        .into_owned();
    let o = batchproof(&["merge", &shard0, "--out", "half"], dir.path()).await;
    assert_eq!(o.status.code(), Some(2), "{}", common::output_text(&o));
    assert!(
        common::output_text(&o).contains("missing shard(s) 1/2"),
        "{}",
        common::output_text(&o)
    );
    let o = batchproof(
        &["merge", &shard0, "--partial", "--out", "half"],
        dir.path(),
    )
    .await;
    let s = seen(o, &dir.path().join("half"));
    assert_not_passed(&s, "partial_merge", 1);
    // The whole set merges and passes.
    let o = batchproof(&["merge", &shard0, &shard1, "--out", "whole"], dir.path()).await;
    assert_eq!(o.status.code(), Some(0), "{}", common::output_text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_removes_its_endpoint_and_the_next_run_on_the_same_receiver_is_clean() {
    let mock = common::start(common::fast_profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let s = write(
        dir.path(),
        "hooks.yaml",
        &format!(
            "name: hooks\ntarget: {{url: '{}'}}\nload:\n  phases: [{{hold: 1s, rate: 3}}]\n  inputs_per_batch: 20\nresults:\n  via: webhooks\n  deadline: 10s\n  webhooks: {{listen: '127.0.0.1:{port}', public_url: 'http://127.0.0.1:{port}/hooks'}}\nthresholds: ['runs.missing == 0']\n",
            mock.url()
        ),
    );
    // An endpoint a killed run left on the same receiver address: its deliveries reach
    // this run's receiver on another path, and must be told apart from forgeries.
    let api = common::Api::new(&mock.url(), common::V2026);
    common::register(
        &api,
        &format!("http://127.0.0.1:{port}/hooks/bp_killed_run"),
        common::V2026,
    )
    .await;
    for round in 0..2 {
        let out = format!("out{round}");
        let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_batchproof"))
            .args(["run", &s, "--yes", "--out", &out])
            .current_dir(dir.path())
            .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN)
            .output()
            .await
            .unwrap();
        let s = seen(o, &report_dir(&dir.path().join(&out), "hooks-"));
        assert_eq!(s.code, Some(0), "round {round}\n{}{}", s.stdout, s.stderr);
        let w = &s.json["webhooks"];
        assert_eq!(w["endpoint_removed"], Value::Bool(true), "{w}");
        // Every run's result went to the leftover endpoint too: 60 runs.
        assert!(w["foreign"].as_u64().unwrap() >= 60, "{w}");
        assert_eq!(w["rejected"], serde_json::json!({}), "{w}");
        let endpoints: Value = reqwest::get(format!("{}/_mock/endpoints", mock.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let left: Vec<&str> = endpoints
            .as_array()
            .expect("a list of endpoints")
            .iter()
            .filter_map(|e| e["url"].as_str())
            .collect();
        assert_eq!(
            left,
            [format!("http://127.0.0.1:{port}/hooks/bp_killed_run")],
            "round {round}: only the killed run's endpoint is left"
        );
    }
}

/// The runs the in-process mock says it created.
async fn runs_created(mock: &batchproof::mock::MockServer) -> u64 {
    let state: Value = reqwest::get(format!("{}/_mock/state", mock.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["runs"]["created"]
        .as_u64()
        .unwrap_or_else(|| panic!("no count of runs created in {state}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_knee_search_stops_at_its_budget_and_says_so() {
    let mock = common::start(common::fast_profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let s = write(
        dir.path(),
        "knee.yaml",
        &format!(
            "name: knee\ntarget: {{url: '{}'}}\nbudget: {{max_runs: 50}}\nload:\n  phases: [{{hold: 1s, rate: 1}}]\n  inputs_per_batch: 1\nresults: {{via: polling, deadline: 10s, polling: {{interval: 100ms}}}}\n",
            mock.url()
        ),
    );
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args([
            "knee", &s, "--yes", "--limits", "requests", "--start", "2", "--step", "1s", "--out",
            "out",
        ])
        .current_dir(dir.path())
        .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN)
        .output()
        .await
        .unwrap();
    let text = common::output_text(&o);
    // The mock has no limit, so nothing but the budget ends this search.
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the budget of 50 runs stopped the knee search"),
        "{text}"
    );
    // No step broke before the budget stopped it: no knee, and no claim of "every rate".
    assert!(text.contains("knee: no answer"), "{text}");
    assert!(!text.contains("up to the ceiling"), "{text}");
    let created = runs_created(&mock).await;
    assert!(created <= 50, "{created} runs under a budget of 50\n{text}");
    assert!(
        created >= 2 + 4 + 8,
        "the steps that fit ran: {created}\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forecast_of_a_job_too_small_to_sample_is_refused_before_its_first_request() {
    let (url, count) = answering(503, "{}").await;
    let dir = tempfile::tempdir().unwrap();
    let s = url_scenario(dir.path(), &url);
    for files in ["5", "0"] {
        let o = batchproof(
            &["forecast", &s, "--files", files, "--yes", "--out", "out"],
            dir.path(),
        )
        .await;
        let text = common::output_text(&o);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert!(text.contains("fix:"), "{text}");
    }
    assert_eq!(count.load(Ordering::SeqCst), 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_without_a_result_fail_the_run_with_no_threshold_saying_so() {
    let s = on_a_defect(
        "time_scale: 1000\ndefects: {missing_terminal_webhook: 0.25}\n",
        "name: mute\nload:\n  phases: [{hold: 1s, rate: 2}]\n  inputs_per_batch: 20\nresults: {via: webhooks, deadline: 2s}\n",
    )
    .await;
    assert_not_passed(&s, "missing", 1);
    assert!(s.json["runs"]["missing"].as_u64().unwrap() > 0);
}
