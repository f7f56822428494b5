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
