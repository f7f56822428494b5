//! The knee search against targets whose limits are known: the mock on each plan's
//! profile must be found to allow the plan's requests per second (RUN category) and
//! files per minute, within ±10 %.
//!
//! The limits are read from the profiles themselves, and each search starts far below
//! them (an eighth; PAYG's request search at 1 batch/s), so the doubling phase is part
//! of what is tested.

mod common;

use std::path::Path;
use std::time::Duration;

use batchproof::report::knee::{Knee, Limit};
use batchproof::run::knee::{KneeOptions, search};
use batchproof::run::{ProgressMode, RunOptions};
use batchproof::scenario::Scenario;

/// A plan profile's own limits: (RUN requests per second, files per minute).
fn limits(plan: &str) -> (f64, f64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("mock/{plan}.yaml"));
    let p = batchproof::mock::Profile::load(&path).unwrap();
    (
        p.limits.run_rps.expect("the plan's RUN limit"),
        p.limits
            .files_per_minute
            .expect("the plan's files per minute"),
    )
}

fn scenario(dir: &Path, plan: &str, time_scale: f64, inputs: u64) -> Scenario {
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("mock/{plan}.yaml"));
    let path = dir.join(format!("{plan}-{inputs}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: knee-{plan}\ntarget:\n  mock:\n    profile: {}\n    time_scale: {time_scale}\nload:\n  phases: [{{hold: 1s, rate: 1}}]\n  inputs_per_batch: {inputs}\n  max_in_flight: 512\n  lag_bound: 250ms\nresults: {{via: webhooks, deadline: 2m}}\n",
            profile.display()
        ),
    )
    .unwrap();
    Scenario::load(&path).unwrap()
}

async fn knee(scenario: Scenario, dir: &Path, options: KneeOptions) -> Knee {
    let opts = RunOptions {
        scenario: scenario.path.clone(),
        target: None,
        token_env: "UNUSED".into(),
        out: dir.join("reports"),
        progress: ProgressMode::None,
        mock_profile: None,
        shard: None,
        stop: None,
        metrics_listen: None,
        time_scale: None,
    };
    let (report, paths) = search(scenario, &options, &opts).await.unwrap();
    assert!(
        paths.iter().any(|p| p.ends_with("report.html")),
        "{paths:?}"
    );
    report.knee.expect("a knee section")
}

fn options(start: f64, step_s: f64, requests: bool) -> KneeOptions {
    KneeOptions {
        start,
        ceiling: 1e6,
        step: Duration::from_secs_f64(step_s),
        precision: 0.05,
        inputs_per_batch: None,
        rate_limit: requests,
        processing: !requests,
        keep_up: 0.97,
        max_runs: None,
        quiet: Duration::from_secs(1),
    }
}

fn steps(k: &Knee) -> String {
    k.steps
        .iter()
        .map(|s| s.line())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The RUN category's requests per second: one-input batches at time scale 10, so a
/// 3 s step is 30 simulated seconds and the one-second burst adds at most 3.3 %.
async fn requests_per_second(plan: &str, start: Option<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let ts = 10.0;
    let limit = limits(plan).0;
    let k = knee(
        scenario(dir.path(), plan, ts, 1),
        dir.path(),
        options(start.unwrap_or(limit * ts / 8.0), 3.0, true),
    )
    .await;
    let held = k.held_per_s.expect("a rate held") / ts;
    println!(
        "{plan}: {} (configured {limit} requests/s)\n{}",
        k.headline(),
        steps(&k)
    );
    assert_eq!(k.limit, Some(Limit::RateLimit), "{}", steps(&k));
    assert!(
        (held - limit).abs() <= 0.10 * limit,
        "{plan}: held {held:.2} requests/s, configured {limit}\n{}",
        steps(&k)
    );
    let sustained = k.capacity_per_s.expect("a capacity where it broke") / ts;
    assert!(
        (sustained - limit).abs() <= 0.10 * limit,
        "{plan}: sustained {sustained:.2} requests/s where it broke, configured {limit}"
    );
}

/// Processing throughput: ten-input batches at a time scale that keeps runs short (a
/// 20 s median becomes 0.2 s or less), judged on the runs' completion rate.
async fn files_per_minute(plan: &str, ts: f64) {
    let dir = tempfile::tempdir().unwrap();
    let limit = limits(plan).1;
    let per_s = limit / 60.0 * ts;
    let k = knee(
        scenario(dir.path(), plan, ts, 10),
        dir.path(),
        options(per_s / 10.0 / 8.0, 4.0, false),
    )
    .await;
    let held = k.held_per_s.expect("a rate held") * 10.0 * 60.0 / ts;
    println!(
        "{plan}: {} (configured {limit} files/min)\n{}",
        k.headline(),
        steps(&k)
    );
    assert_eq!(k.limit, Some(Limit::Processing), "{}", steps(&k));
    assert!(
        (held - limit).abs() <= 0.10 * limit,
        "{plan}: held {held:.1} files/min, configured {limit}\n{}",
        steps(&k)
    );
    let finished = k.capacity_per_s.expect("a capacity where it broke") * 60.0 / ts;
    assert!(
        (finished - limit).abs() <= 0.10 * limit,
        "{plan}: finished {finished:.1} files/min where it broke, configured {limit}"
    );
}

#[tokio::test]
async fn payg_allows_its_requests_per_second_found_from_a_start_of_1() {
    requests_per_second("payg", Some(1.0)).await;
}

#[tokio::test]
async fn scale_allows_its_requests_per_second() {
    requests_per_second("scale", None).await;
}

#[tokio::test]
async fn enterprise_allows_its_requests_per_second() {
    requests_per_second("enterprise", None).await;
}

#[tokio::test]
async fn payg_processes_its_files_per_minute() {
    files_per_minute("payg", 100.0).await;
}

#[tokio::test]
async fn scale_processes_its_files_per_minute() {
    files_per_minute("scale", 100.0).await;
}

#[tokio::test]
async fn enterprise_processes_its_files_per_minute() {
    files_per_minute("enterprise", 50.0).await;
}

#[tokio::test]
async fn the_knee_is_in_every_format_and_compare_reads_it() {
    use batchproof::report::compare::{Tolerance, compare};
    use batchproof::report::{Format, markdown::Markdown};
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path(), "payg", 10.0, 1);
    let opts = RunOptions {
        scenario: scenario.path.clone(),
        target: None,
        token_env: "UNUSED".into(),
        out: dir.path().join("reports"),
        progress: ProgressMode::None,
        mock_profile: None,
        shard: None,
        stop: None,
        metrics_listen: None,
        time_scale: None,
    };
    // A coarse search: 10 % precision from 80 requests/s (scaled).
    let mut o = options(80.0, 2.0, true);
    o.precision = 0.10;
    let (report, paths) = search(scenario, &o, &opts).await.unwrap();
    let json = std::fs::read(paths.iter().find(|p| p.ends_with("report.json")).unwrap()).unwrap();
    let back = batchproof::report::json::parse("report.json", &json).unwrap();
    assert_eq!(back.knee, report.knee);
    let md = Markdown.render(&report).unwrap();
    assert!(
        md.contains("## Knee") && md.contains("| offered batches/s |"),
        "{md}"
    );
    // A target that holds half the rate is a regression.
    let mut halved = report.clone();
    let k = halved.knee.as_mut().unwrap();
    k.held_per_s = k.held_per_s.map(|h| h / 2.0);
    let c = compare(&report, &halved, "base", "halved", Tolerance::default());
    let held = c.rows.iter().find(|r| r.metric == "knee.held").unwrap();
    assert!(held.regression, "{held:?}");
    let same = compare(&report, &back, "base", "again", Tolerance::default());
    assert_eq!(same.regressions(), 0);
}

/// The README's knee example, as written: PAYG's 10 requests/s found from the smoke
/// scenario (whose thresholds on results are not judged when only requests are), per
/// real second although the mock ran ten times faster.
#[test]
fn the_readme_knee_example_finds_paygs_request_limit() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("batchproof knee scenarios/smoke.yaml"))
        .expect("README has the knee example");
    let command = line.split('#').next().unwrap().trim();
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_string_lossy().into_owned();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(&args)
        .args(["--out", &out])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let text = common::output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{command}\n{text}");
    let held: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("knee: held "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no held rate in\n{text}"));
    let limit = limits("payg").0;
    assert!(
        (held - limit).abs() <= 0.10 * limit,
        "held {held} requests/s, configured {limit}\n{text}"
    );
    assert!(text.contains("per real second"), "{text}");
    // The report's verdict agrees with the exit code: smoke's thresholds on results are
    // set aside (and said to be), not failed as "no data".
    let knee_dir = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("smoke-knee-") && !n.starts_with("smoke-knee-steps")
        })
        .expect("the knee's report folder");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(knee_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"]["passed"], true, "{}", report["verdict"]);
    assert!(
        report["knee"]["slo"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains("is not judged")),
        "{}",
        report["knee"]["slo"]
    );
}
