//! The forecast is held to the truth from both sides: against the mock on the PAYG plan's
//! profile, a sample forecasts a job, the whole job is then run, and the measured time,
//! credits, FAILED / NEEDS_REVIEW shares and end-to-end p95 must fall inside the
//! forecast's 95 % intervals at about their stated rate, while the intervals stay narrow
//! enough to plan on. Seeds cycle through three job shapes: closed (processing sets the
//! pace), open on a schedule slower than the target, and an open ramp from a trickle to
//! more than the target takes (a slow start, then a queue). `scripts/calibrate.sh` runs
//! many seeds and prints the table; CI runs two seeds of each shape.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use batchproof::report::Report;
use batchproof::report::forecast::Interval;
use batchproof::run::forecast::{SampleSize, sample_scenario};
use batchproof::scenario::Scenario;

/// Batches of 100 at time scale 400: the plan's 80 files per minute become 533 runs/s, so
/// the 3,000-file job takes ~6 s and its 10-batch sample ~2 s.
const FILES: u64 = 3_000;
const INPUTS: u64 = 100;

/// The job shapes, by seed.
fn shape(seed: u64) -> (&'static str, &'static str) {
    match seed % 3 {
        1 => (
            "closed",
            "model: closed\n  phases: [{hold: 60s, concurrency: 4}]",
        ),
        // 4 batches of 100 a second: 400 runs/s offered against 533 runs/s of capacity.
        2 => (
            "open, slower",
            "model: open\n  phases: [{hold: 60s, rate: 4}]",
        ),
        // From a trickle (the first batches seconds apart, processing idle between them)
        // to 8 batches a second, more than the target takes.
        _ => (
            "open, ramp",
            "model: open\n  phases: [{ramp: 3s, from: 0.3, to: 8}, {hold: 60s, rate: 8}]",
        ),
    }
}

fn scenario(dir: &Path, name: &str, mock_seed: u64, load_seed: u64, batches: u64) -> Scenario {
    let load = shape(load_seed).1;
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/payg.yaml");
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            r#"
name: {name}
# The workflow with a review step, so the NEEDS_REVIEW share is there to forecast.
workflow: {{id: workflow_batchproof_review}}
target:
  mock:
    profile: {profile}
    time_scale: 400
    seed: {mock_seed}
load:
  {load}
  batches: {batches}
  inputs_per_batch: {INPUTS}
  seed: {load_seed}
inputs:
  # Each seed's job has its own files (and so its own page counts, hence credits); a
  # sample's batch has exactly the files of the job's batch of that number.
  file: {{url: "https://files.example.test/job/{{{{seq}}}}-{{{{random:1-1000000}}}}.pdf"}}
  metadata: {{customer: "c-{{{{random:1-50}}}}"}}
results: {{via: webhooks, deadline: 2m}}
"#,
            profile = profile.display()
        ),
    )
    .unwrap();
    Scenario::load(&path).unwrap()
}

async fn sample_and_job(dir: &Path, seed: u64) -> (Report, Report) {
    let s = scenario(
        dir,
        &format!("sample-{seed}"),
        2 * seed,
        seed,
        FILES / INPUTS,
    );
    // The job's size is the scenario's own (`load.batches`).
    let s = sample_scenario(s, None, SampleSize::Batches(10)).unwrap();
    let (sample, _) = common::run_in_process(s, &dir.join("reports"), None).await;
    // The job is another run of the same world: its own draws of outcomes and times.
    let job = scenario(
        dir,
        &format!("job-{seed}"),
        2 * seed + 1,
        seed,
        FILES / INPUTS,
    );
    let (job, _) = common::run_in_process(job, &dir.join("reports"), None).await;
    (sample, job)
}

/// The widest an interval may be and still be planned on, relative to its estimate
/// (shares: in points of share, as their estimates are small).
fn widest(figure: &str) -> f64 {
    match figure {
        "time" => 0.35,
        "credits" => 0.2,
        "e2e p95" => 0.8,
        _ => 0.08,
    }
}

fn width(figure: &str, i: &Interval) -> f64 {
    match figure {
        "FAILED" | "NEEDS_REVIEW" => i.high - i.low,
        _ => (i.high - i.low) / i.estimate,
    }
}

#[derive(Default)]
struct Tally {
    checks: u32,
    covered: u32,
    width: f64,
}

#[tokio::test]
async fn forecast_intervals_cover_the_measured_job_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let seeds: u64 = std::env::var("BATCHPROOF_CALIBRATION_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let mut table: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    let mut lines = Vec::new();
    for seed in 1..=seeds {
        let (sample, job) = sample_and_job(dir.path(), seed).await;
        let f = sample
            .forecast
            .clone()
            .unwrap_or_else(|| panic!("no forecast: {:?}", sample.forecast_error));
        assert_eq!(f.sample_batches, 10);
        assert_eq!((f.files, f.batches), (FILES, FILES / INPUTS));
        assert_eq!(job.runs.seen, FILES, "the whole job finished");
        assert_eq!(job.runs.missing, 0);
        let n = FILES as f64;
        let failed = *job.runs.by_status.get("FAILED").unwrap() as f64 / n;
        let review = job.runs.needed_review as f64 / n;
        let credits = f.credits.expect("the mock reports usage");
        let truth = [
            ("time", f.time_s, job.throughput.finish_s),
            ("credits", credits, job.runs.credits),
            ("FAILED", f.shares[0].share, failed),
            ("NEEDS_REVIEW", f.shares[1].share, review),
            ("e2e p95", f.e2e_s[1].1, job.e2e.p95_ms / 1e3),
        ];
        let shape = shape(seed).0;
        for (what, interval, measured) in truth {
            let inside = interval.contains(measured);
            let w = width(what, &interval);
            for key in [(shape, what), ("all", what)] {
                let t = table.entry(key).or_default();
                t.checks += 1;
                t.covered += u32::from(inside);
                t.width += w;
            }
            lines.push(format!(
                "seed {seed} {shape:>12} {what:>12}: measured {measured:.4} in [{:.4}, {:.4}] (estimate {:.4}, width {w:.3}) {}",
                interval.low,
                interval.high,
                interval.estimate,
                if inside { "covered" } else { "MISSED" }
            ));
        }
    }
    let mut out = vec![
        "| shape | figure | covered | mean width |".to_string(),
        "|---|---|---|---|".into(),
    ];
    for ((shape, what), t) in &table {
        out.push(format!(
            "| {shape} | {what} | {}/{} | {:.3} |",
            t.covered,
            t.checks,
            t.width / t.checks as f64
        ));
    }
    let (checks, covered) = table
        .iter()
        .filter(|((s, _), _)| *s == "all")
        .fold((0, 0), |(c, v), (_, t)| (c + t.checks, v + t.covered));
    println!(
        "{}\n\n{}\ncoverage: {covered}/{checks} = {:.1} %",
        lines.join("\n"),
        out.join("\n"),
        covered as f64 * 100.0 / checks as f64
    );
    // At a true 95 %, 6 or more misses in 30 happen 1.6 % of the time.
    assert!(
        checks - covered <= checks.div_ceil(6).max(1),
        "the 95 % intervals covered {covered} of {checks}:\n{}",
        lines.join("\n")
    );
    // And from the other side: intervals too wide to plan on fail too (a figure's mean
    // width over the seeds, as one sample of ten batches may honestly be wide).
    let too_wide: Vec<String> = table
        .iter()
        .filter(|((s, what), t)| *s == "all" && t.width / t.checks as f64 > widest(what))
        .map(|((_, what), t)| {
            format!(
                "{what}: mean width {:.3} > {}",
                t.width / t.checks as f64,
                widest(what)
            )
        })
        .collect();
    assert!(too_wide.is_empty(), "{too_wide:#?}\n{}", out.join("\n"));
}

/// A quick forecast against `workers` workers of 1 s each at time scale 100: 100 runs/s
/// per 10 workers.
async fn quick_forecast(dir: &Path, name: &str, workers: u32, seed: u64) -> Report {
    let profile = dir.join(format!("{name}-profile.yaml"));
    std::fs::write(
        &profile,
        format!(
            "time_scale: 100\nprocessing:\n  workers: {workers}\n  duration: {{dist: fixed, value: 1s}}\n"
        ),
    )
    .unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\ntarget: {{mock: {{profile: {}, seed: {seed}}}}}\nload:\n  model: closed\n  phases: [{{hold: 30s, concurrency: 4}}]\n  inputs_per_batch: 50\n  seed: {seed}\nresults: {{via: webhooks, deadline: 30s}}\n",
            profile.display()
        ),
    )
    .unwrap();
    let s = sample_scenario(
        Scenario::load(&path).unwrap(),
        Some(5_000),
        SampleSize::Batches(8),
    )
    .unwrap();
    common::run_in_process(s, &dir.join("reports"), None)
        .await
        .0
}

#[tokio::test]
async fn every_format_shows_the_forecast_and_compare_reads_it() {
    use batchproof::report::compare::{Tolerance, compare};
    use batchproof::report::{Format, html::Html, markdown::Markdown};
    let dir = tempfile::tempdir().unwrap();
    let base = quick_forecast(dir.path(), "base", 10, 1).await;
    let f = base.forecast.as_ref().expect("a forecast");
    // JSON keeps it whole; Markdown and HTML show its figures.
    let json = serde_json::to_vec(&base).unwrap();
    let back = batchproof::report::json::parse("report.json", &json).unwrap();
    assert_eq!(back.forecast.as_ref(), Some(f));
    let md = Markdown.render(&base).unwrap();
    assert!(md.contains("## Forecast: 5000 files"), "{md}");
    assert!(md.contains("| every run terminal |"));
    let html = Html.render(&base).unwrap();
    assert!(html.contains("id=\"forecast\"") && html.contains("data-chart=\"forecast-curve\""));
    // One answer per report: the sample's figures are labelled as the sample's, and no
    // capacity projection from the sample stands beside the forecast for the job.
    assert!(base.projection.is_none() && !html.contains("id=\"projection\""));
    assert!(html.contains("id=\"sample-note\"") && html.contains("the sample's end to end p95"));
    assert!(md.contains("## Capacity of the sample") && !md.contains("### Projection"));
    let console = batchproof::report::console::Console.render(&base).unwrap();
    assert!(console.contains("sample    all results"), "{console}");
    // An open job's sample goes out closed: the model says both.
    let mut open = base.clone();
    open.forecast.as_mut().unwrap().job_model = "open".into();
    let html = Html.render(&open).unwrap();
    assert!(
        html.contains("model closed (the sample's; the job is open)"),
        "{html}"
    );
    // A report that is no sample keeps its projection, unlabelled.
    let mut plain = base.clone();
    plain.forecast = None;
    plain.projection = open.projection.clone();
    assert!(!Html.render(&plain).unwrap().contains("sample-note"));

    // Another sample of the same job: the forecasts' intervals overlap, no regression.
    let again = quick_forecast(dir.path(), "again", 10, 2).await;
    let c = compare(&base, &again, "base", "again", Tolerance::default());
    let time = c.rows.iter().find(|r| r.metric == "forecast.time").unwrap();
    assert!(time.base_interval.is_some() && time.new_interval.is_some());
    assert!(!time.regression, "{time:?}");
    // Half the workers: the job takes about twice as long, which compare calls a regression.
    let slower = quick_forecast(dir.path(), "slower", 5, 1).await;
    let c = compare(&base, &slower, "base", "slower", Tolerance::default());
    let time = c.rows.iter().find(|r| r.metric == "forecast.time").unwrap();
    assert!(time.regression, "{time:?}");
}

#[test]
fn the_commands_refuse_what_cannot_work_with_the_fix() {
    let bin = env!("CARGO_BIN_EXE_batchproof");
    let root = env!("CARGO_MANIFEST_DIR");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .current_dir(root)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // No job size: no --files, no `load.batches`, no `project.files`, no feeder, and a
    // closed model whose phases send no countable batches.
    let dir = tempfile::tempdir().unwrap();
    let unsized_job = dir.path().join("unsized.yaml");
    std::fs::write(
        &unsized_job,
        "name: unsized\nload: {model: closed, phases: [{hold: 1s, concurrency: 1}]}\nresults: {via: webhooks}\n",
    )
    .unwrap();
    let (code, err) = run(&[
        "forecast",
        unsized_job.to_str().unwrap(),
        "--progress",
        "none",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--files"), "{err}");
    // An open schedule of finite phases states its job: 1 s at 1 batch/s of 100 inputs.
    let finite = dir.path().join("finite.yaml");
    std::fs::write(
        &finite,
        "name: finite\nload: {phases: [{hold: 1s, rate: 1}]}\nresults: {via: webhooks}\n",
    )
    .unwrap();
    let (code, err) = run(&["forecast", finite.to_str().unwrap(), "--progress", "none"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("a job of 100 file(s)") && !err.contains("how large"),
        "{err}"
    );
    // smoke.yaml states its job (`project.files: 50000`): no --files needed, and a sample
    // too small is still refused before a request.
    let (code, err) = run(&["forecast", "scenarios/smoke.yaml", "--sample", "2"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--sample 3") && !err.contains("how large"),
        "{err}"
    );
    // A sample too small to show how batches vary.
    let (code, err) = run(&[
        "forecast",
        "scenarios/smoke.yaml",
        "--files",
        "100000",
        "--sample",
        "2",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--sample 3"), "{err}");
    let (code, err) = run(&["forecast", "scenarios/smoke.yaml", "--sample", "120%"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("sample size"), "{err}");
    // A knee against a URL sends until it breaks: only with --yes, refused before sending.
    let polled = dir.path().join("polled.yaml");
    std::fs::write(
        &polled,
        "name: polled\nload: {phases: [{hold: 1s, rate: 1}]}\nresults: {via: polling}\n",
    )
    .unwrap();
    let polled = polled.to_str().unwrap();
    let (code, err) = run(&["knee", polled, "--target", "http://127.0.0.1:9"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--yes"), "{err}");
}

/// A time-scaled mock reached through a URL (`target: {url, time_scale}`): the forecast
/// and the report convert its figures to real time, and the harness paces itself at the
/// plan's limits times the scale, as for the embedded mock.
#[tokio::test]
async fn a_url_target_declares_its_time_scale() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut profile = batchproof::mock::Profile::load(&root.join("mock/payg.yaml")).unwrap();
    profile.time_scale = 300.0;
    // The API key is whatever the test's environment already holds in PATH.
    profile.auth.tokens = vec![std::env::var("PATH").unwrap()];
    let mock = common::start(profile).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scaled.yaml");
    std::fs::write(
        &path,
        format!(
            "name: scaled\ntarget: {{url: '{}', token_env: PATH, time_scale: 300}}\nlimits: {{plan: payg}}\nload:\n  model: closed\n  phases: [{{hold: 60s, concurrency: 2}}]\n  batches: 30\n  inputs_per_batch: 100\n  seed: 3\nresults: {{via: polling, polling: {{interval: 200ms}}, deadline: 1m}}\n",
            mock.url()
        ),
    )
    .unwrap();
    let scenario = Scenario::load(&path).unwrap();
    // The plan's 10 requests/s are 3,000/s of this mock's clock.
    let paced = scenario.pacing_limits();
    assert_eq!(
        (paced.get_rps, paced.write_rps),
        (Some(3000.0), Some(3000.0))
    );
    // The job's size is the scenario's (30 batches of 100): no --files.
    let s = sample_scenario(scenario, None, SampleSize::Batches(4)).unwrap();
    let (report, _) = common::run_in_process(s, &dir.path().join("reports"), None).await;
    mock.shutdown().await;
    assert_eq!(report.time_scale(), Some(300.0));
    let f = report
        .forecast
        .unwrap_or_else(|| panic!("no forecast: {:?}", report.forecast_error));
    assert_eq!((f.files, f.time_scale), (3_000, Some(300.0)));
    assert!(
        f.assumptions.iter().any(|a| a.contains("time scale 300")),
        "{:?}",
        f.assumptions
    );
}
