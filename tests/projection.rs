//! The capacity projection against runs whose answer is known: the mock's capacity is
//! set by its profile (workers ÷ a fixed processing time), so a small sample's projection
//! can be checked against that capacity and against a run of the projected size.

mod common;

use std::path::Path;

use batchproof::report::{Bound, Report};

/// Runs a scenario with `batches` batches of `inputs` at 2 batches/s against a mock with
/// `workers` workers and a fixed 1 s processing time at time scale 20 (50 ms real: a
/// capacity of workers × 20 runs/s), projecting `files`.
async fn run(dir: &Path, workers: u32, batches: u32, inputs: u32, files: u64) -> Report {
    std::fs::write(
        dir.join("profile.yaml"),
        format!(
            "time_scale: 20\nprocessing:\n  workers: {workers}\n  duration: {{dist: fixed, value: 1s}}\n  outcomes: {{processed: 1, failed: 0, needs_review: 0}}\n"
        ),
    )
    .unwrap();
    let path = dir.join(format!("scenario-{batches}x{inputs}.yaml"));
    std::fs::write(
        &path,
        format!(
            r#"
name: projection
target:
  mock:
    profile: profile.yaml
load:
  model: open
  phases: [{{hold: {}ms, rate: 2}}]
  inputs_per_batch: {inputs}
  max_in_flight: 4
  seed: 3
results:
  via: webhooks
  deadline: 60s
project:
  files: {files}
"#,
            batches * 500
        ),
    )
    .unwrap();
    let scenario = batchproof::scenario::Scenario::load(&path).unwrap();
    let (report, _) = common::run_in_process(scenario, &dir.join("reports"), None).await;
    assert_eq!(
        report.runs.seen,
        (batches * inputs) as u64,
        "every run seen"
    );
    report
}

fn within(measured: f64, truth: f64, share: f64) -> bool {
    (measured - truth).abs() <= share * truth
}

#[tokio::test]
async fn a_processing_bound_sample_projects_the_known_capacity_and_the_full_run() {
    let dir = tempfile::tempdir().unwrap();
    // 20 workers × 20 = 400 runs/s; the sample offers 1,000 runs/s, so processing binds.
    let sample = run(dir.path(), 20, 2, 500, 4_000).await;
    let p = sample.projection.clone().unwrap();
    assert_eq!(p.bound, Some(Bound::Processing), "{p:?}");
    let known = 4_000.0 / 400.0 + 0.05;
    assert!(
        within(p.complete_s, known, 0.10),
        "projected {} s, capacity says {known} s",
        p.complete_s
    );
    assert!(p.complete_s >= p.submit_s);
    // The job itself, at the projected size.
    let full = run(dir.path(), 20, 4, 1_000, 4_000).await;
    assert!(
        within(full.throughput.finish_s, p.complete_s, 0.10),
        "projected {} s, the full job took {} s",
        p.complete_s,
        full.throughput.finish_s
    );
}

#[tokio::test]
async fn an_unsaturated_sample_says_so_and_projects_the_offered_pace() {
    let dir = tempfile::tempdir().unwrap();
    // 2,000 workers: 40,000 runs/s, far above the 200 runs/s offered.
    let sample = run(dir.path(), 2_000, 6, 100, 2_400).await;
    let p = sample.projection.clone().unwrap();
    assert_eq!(p.bound, Some(Bound::OfferedLoad), "{p:?}");
    assert!(
        p.assumptions
            .iter()
            .any(|a| a.contains("lower bound on its capacity"))
    );
    // 24 batches at 2/s: the last goes out at 11.5 s and finishes 50 ms later.
    assert!(
        within(p.complete_s, 11.55, 0.10),
        "projected {} s",
        p.complete_s
    );
    let full = run(dir.path(), 2_000, 24, 100, 2_400).await;
    assert!(
        within(full.throughput.finish_s, p.complete_s, 0.10),
        "projected {} s, the full job took {} s",
        p.complete_s,
        full.throughput.finish_s
    );
    // The console says the target was not saturated, with real-time equivalents.
    let text =
        batchproof::report::Format::render(&batchproof::report::console::Console, &sample).unwrap();
    assert!(
        text.contains("offered load (target not saturated)"),
        "{text}"
    );
    assert!(text.contains("real)"), "{text}");
}
