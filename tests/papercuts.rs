//! Small things a new user meets first: `--help` and the README agree on exit codes, the
//! mock's flags are usage errors when wrong and accept a host name, an explicit target
//! URL (or a journal's) satisfies `url: ${TARGET_URL}`, a negative budget names its field
//! and fix, report.md accounts for webhook rejections and redeliveries, and a handful of
//! submissions is never called a saturated generator.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use batchproof::report::{Format, json};
use common::{fast_profile, output_text, run_in_process, start};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(args)
        .current_dir(dir)
        .env_remove("TARGET_URL")
        .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN)
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_exit_code_the_readme_lists() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let table = readme.split("### Exit codes").nth(1).unwrap();
    let codes: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(' ').next())
        .filter(|c| c.parse::<u8>().is_ok())
        .collect();
    assert_eq!(codes, ["0", "1", "2", "3", "4"]);
    let help = output_text(&bin(&["--help"], &root()));
    for c in codes {
        let shown = help
            .split("Exit codes:")
            .nth(1)
            .is_some_and(|t| t.contains(&format!(" {c} ")));
        assert!(shown, "--help names exit code {c}: {help}");
    }
    assert!(help.contains("4 harness fault"), "{help}");
}

#[test]
fn the_mocks_flags_are_usage_errors_when_wrong_and_a_host_name_binds() {
    let d = root();
    let o = bin(&["mock", "--time-scale", "0"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(output_text(&o).contains("time_scale must be a positive number"));
    let o = bin(&["mock", "--bind", "no-such-host.invalid:8080"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));

    let port = common::free_port();
    let mut mock = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["mock", "--bind", &format!("localhost:{port}")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = common::wait_for_lines(&mut mock, "serving", 1, std::time::Duration::from_secs(20));
    let answer = std::net::TcpStream::connect(("127.0.0.1", port));
    let _ = mock.kill();
    let _ = mock.wait();
    assert!(answer.is_ok(), "{}", log.join().unwrap());
}

#[test]
fn a_negative_budget_names_the_field_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("neg.yaml"),
        "name: neg\nbudget: {max_runs: -5}\ntarget: {url: \"http://127.0.0.1:9\"}\nload: {model: open, phases: [{hold: 1s, rate: 1}]}\nresults: {via: polling}\n",
    )
    .unwrap();
    let o = bin(&["validate", "neg.yaml"], dir.path());
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(
        text.contains("neg.yaml:2:")
            && text.contains("budget.max_runs is -5")
            && text.contains("max_runs: 2200"),
        "{text}"
    );
    for cmd in ["run", "forecast"] {
        let o = bin(&[cmd, "neg.yaml", "--max-runs", "-5"], dir.path());
        let text = output_text(&o);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert!(
            text.contains("--max-runs is the most runs") && text.contains("whole number ≥ 0"),
            "{cmd}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_target_and_a_journal_satisfy_target_url() {
    let mock = start(fast_profile()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("env.yaml"),
        "name: env\ntarget: {url: \"${TARGET_URL}\"}\nbudget: {max_runs: 10}\nload: {model: open, phases: [{hold: 1s, rate: 2}], inputs_per_batch: 2}\nresults: {via: polling, polling: {interval: 100ms}, deadline: 20s}\n",
    )
    .unwrap();
    let (url, d) = (mock.url(), dir.path().to_path_buf());
    let run = tokio::task::spawn_blocking(move || {
        bin(
            &[
                "run",
                "env.yaml",
                "--target",
                &url,
                "--out",
                "out",
                "--progress",
                "none",
            ],
            &d,
        )
    })
    .await
    .unwrap();
    let text = output_text(&run);
    assert_eq!(run.status.code(), Some(0), "{text}");
    let report = String::from_utf8_lossy(&run.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("report: ").map(str::to_string))
        .unwrap();
    let folder = dir.path().join(report).parent().unwrap().to_path_buf();

    let d = dir.path().to_path_buf();
    let again = tokio::task::spawn_blocking(move || {
        bin(&["report", "--from-journal", folder.to_str().unwrap()], &d)
    })
    .await
    .unwrap();
    let text = output_text(&again);
    assert!(!text.contains("TARGET_URL"), "{text}");
    assert!(text.contains("report: "), "a report is written: {text}");
    mock.shutdown().await;
}

#[test]
fn report_md_accounts_for_webhook_rejections_and_redeliveries() {
    let mut r = json::read(&root().join("fuzz/corpus/report/smoke.json")).unwrap();
    r.webhooks.rejected.insert("bad_signature".into(), 3);
    r.webhooks.rejected.insert("stale".into(), 1);
    r.webhooks.redeliveries = 2;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    std::fs::write(&path, json::Json.render(&r).unwrap()).unwrap();
    let o = bin(
        &["report", path.to_str().unwrap(), "--format", "md"],
        dir.path(),
    );
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("| rejected | **4** (bad_signature 3, stale 1) |"),
        "{md}"
    );
    assert!(md.contains("| redeliveries | 2 |"), "{md}");
    assert!(
        md.contains(&format!("| received | {} |", r.webhooks.received)),
        "{md}"
    );
}

#[tokio::test]
async fn ten_submissions_are_never_a_saturated_generator() {
    // A lag bound no real schedule keeps: every run's lag p99 is above it.
    let yaml = r#"
name: few
target: {mock: {profile: ../mock/default.yaml}}
load:
  model: open
  phases: [{hold: 1s, rate: 10}]
  inputs_per_batch: 1
  lag_bound: 1us
results: {via: polling, polling: {interval: 100ms}, deadline: 20s}
"#;
    let path = root().join("scenarios/few.yaml");
    let scenario = batchproof::scenario::Scenario::from_text(&path, yaml).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = run_in_process(scenario, dir.path(), None).await;
    let submit = &r.operations["submit"];
    assert!(submit.lag.count <= 20, "a handful: {}", submit.lag.count);
    assert!(
        r.generator.lag_p99_ms > r.generator.lag_bound_ms,
        "the lag is above the bound ({} ms)",
        r.generator.lag_p99_ms
    );
    assert!(
        !r.generator.saturated,
        "{} submissions are too few to call the generator saturated",
        submit.lag.count
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_keeps_the_scenarios_token_env_and_the_key_it_names() {
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    // A target written here that remembers the keys it was shown, and refuses them.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new().fallback({
        let seen = seen.clone();
        move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                if let Some(a) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    seen.lock().unwrap().push(a.to_string());
                }
                (
                    axum::http::StatusCode::UNAUTHORIZED,
                    r#"{"object":"error","code":"UNAUTHORIZED","message":"no"}"#,
                )
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keyed.yaml"),
        "name: keyed\ntarget: {url: 'https://elsewhere.example.test', token_env: TEAM_KEY}\nbudget: {max_runs: 100}\nload:\n  phases: [{hold: 1s, rate: 1}]\n  inputs_per_batch: 1\nresults: {via: polling, deadline: 5s}\n",
    )
    .unwrap();
    let mut run = Command::new(env!("CARGO_BIN_EXE_batchproof"));
    run.args(["run", "keyed.yaml", "--target", &url, "--progress", "none"])
        .current_dir(dir.path())
        .env("TEAM_KEY", "sk_team")
        .env("EXTEND_API_KEY", "sk_another_account");
    let o = tokio::task::spawn_blocking(move || run.output())
        .await
        .unwrap()
        .unwrap();
    let keys = seen.lock().unwrap().clone();
    assert!(!keys.is_empty(), "{}", output_text(&o));
    assert!(
        keys.iter().all(|k| k == "Bearer sk_team"),
        "--target sent another key than the scenario's TEAM_KEY: {keys:?}"
    );
    assert!(output_text(&o).contains("TEAM_KEY"), "{}", output_text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2025_last_page_leaves_next_page_token_out() {
    let mock = start(fast_profile()).await;
    for (version, absent) in [("2025-04-21", true), ("2026-02-09", false)] {
        let api = common::Api::new(&mock.url(), version);
        let batch = api.submit(3, "tok").await;
        let page = api
            .get(&format!("/workflow_runs?batchId={batch}&maxPageSize=10"))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let obj = page.body.as_object().unwrap();
        assert_eq!(
            !obj.contains_key("nextPageToken"),
            absent,
            "{version}: {}",
            page.body
        );
        // A page that is not the last one carries its token either way.
        let first = api
            .get(&format!("/workflow_runs?batchId={batch}&maxPageSize=1"))
            .await;
        assert!(
            first.body["nextPageToken"].is_string(),
            "{version}: {}",
            first.body
        );
    }
    mock.shutdown().await;
}

#[test]
fn a_rule_of_another_api_version_reads_not_applicable() {
    // The catalogue's 2025-only rule on a 2026 run.
    let rule = batchproof::checks::catalogue()
        .find(|r| !r.applies_to(batchproof::api::ApiVersion::V2026_02_09))
        .expect("a version-gated rule");
    let results = batchproof::checks::results(
        &batchproof::checks::Findings::default(),
        &batchproof::checks::Selection::default(),
        batchproof::api::ApiVersion::V2026_02_09,
    );
    let r = results.iter().find(|x| x.id == rule.id).unwrap();
    assert_eq!(r.status, batchproof::checks::RuleStatus::NotApplicable);
    assert_eq!(r.note.as_deref(), Some("not applicable to API 2026-02-09"));
    let all = batchproof::checks::catalogue().count();
    assert_eq!(results.len(), all, "every rule is listed");
}
