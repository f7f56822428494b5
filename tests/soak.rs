//! Soak, bounded for CI: `scenarios/soak.yaml` (flaky profile, results by both channels)
//! with its 10-minute hold cut to 45 s. Nothing may be lost, and the memory of the process
//! — harness and embedded mock — sampled into the report once a second must plateau: the
//! scenario's own threshold `rss.growth < 1.25` (end ÷ half way) must hold. For hours,
//! run `batchproof run scenarios/soak.yaml` with a longer hold.
//!
//! The mock keeps finished runs up to its retention cap (5,000 in `mock/soak.yaml`, reached
//! after ~50 s of the full soak). Cut to 45 s, the test scales the cap down with the hold
//! (2,000, reached before half way), so what it judges is the plateau the full soak
//! reaches, not the mock filling up to its cap.

mod common;
use common::run_in_process;

use std::path::PathBuf;

use batchproof::scenario::Scenario;

#[tokio::test]
async fn a_bounded_soak_loses_nothing_and_memory_plateaus() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/soak.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("hold: 10m"),
        "the shipped soak holds for 10 minutes"
    );
    let out = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let profile = std::fs::read_to_string(root.join("mock/soak.yaml")).unwrap();
    assert!(profile.contains("max_finished_runs: 5000"), "{profile}");
    let profile_path = out.path().join("soak-profile.yaml");
    std::fs::write(
        &profile_path,
        profile.replace("max_finished_runs: 5000", "max_finished_runs: 2000"),
    )
    .unwrap();
    let text = text.replace("hold: 10m", "hold: 45s").replace(
        "profile: ../mock/soak.yaml",
        &format!("profile: {}", profile_path.display()),
    );
    assert!(text.contains("soak-profile.yaml"), "{text}");
    let scenario = Scenario::from_text(&path, &text).unwrap();
    let (report, _) = run_in_process(scenario, out.path(), None).await;
    let res = report.resources.clone().expect("memory was sampled");
    eprintln!(
        "soak: {} runs; RSS start {:.1} MiB, middle {:.1} MiB, end {:.1} MiB, peak {:.1} MiB ({} samples)",
        report.runs.seen,
        res.rss_start_mib,
        res.rss_mid_mib,
        res.rss_end_mib,
        res.rss_max_mib,
        res.samples
    );
    assert!(res.samples >= 40, "{res:?}");
    assert_eq!(report.runs.missing, 0);
    assert_eq!(report.runs.seen, report.runs.submitted);
    assert!(report.runs.submitted >= 4000);
    let growth = report
        .verdict
        .thresholds
        .iter()
        .find(|t| t.metric == "rss.growth")
        .expect("the soak judges memory");
    assert!(growth.passed, "memory did not plateau: {res:?}");
    assert!(report.verdict.passed, "{:?}", report.verdict);
}
