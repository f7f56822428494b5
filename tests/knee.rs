//! The knee search against targets whose limits are known: the mock on each plan's
//! profile must be found to allow the plan's requests per second (RUN category) and
//! files per minute, within ±10 %.
//!
//! Each search starts at 0.6 of the limit it looks for, so it takes five to seven steps
//! (doubling once, then bisecting); `batchproof knee --start 1` finds the same from far
//! below, in more steps.

mod common;

use std::path::Path;
use std::time::Duration;

use batchproof::report::knee::{Knee, Limit};
use batchproof::run::knee::{KneeOptions, search};
use batchproof::run::{ProgressMode, RunOptions};
use batchproof::scenario::Scenario;

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
async fn requests_per_second(plan: &str, limit: f64) {
    let dir = tempfile::tempdir().unwrap();
    let ts = 10.0;
    let k = knee(
        scenario(dir.path(), plan, ts, 1),
        dir.path(),
        options(0.6 * limit * ts, 3.0, true),
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
async fn files_per_minute(plan: &str, limit: f64, ts: f64) {
    let dir = tempfile::tempdir().unwrap();
    let per_s = limit / 60.0 * ts;
    let k = knee(
        scenario(dir.path(), plan, ts, 10),
        dir.path(),
        options(0.6 * per_s / 10.0, 4.0, false),
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
async fn payg_allows_10_requests_per_second() {
    requests_per_second("payg", 10.0).await;
}

#[tokio::test]
async fn scale_allows_25_requests_per_second() {
    requests_per_second("scale", 25.0).await;
}

#[tokio::test]
async fn enterprise_allows_75_requests_per_second() {
    requests_per_second("enterprise", 75.0).await;
}

#[tokio::test]
async fn payg_processes_80_files_per_minute() {
    files_per_minute("payg", 80.0, 100.0).await;
}

#[tokio::test]
async fn scale_processes_120_files_per_minute() {
    files_per_minute("scale", 120.0, 100.0).await;
}

#[tokio::test]
async fn enterprise_processes_300_files_per_minute() {
    files_per_minute("enterprise", 300.0, 50.0).await;
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
