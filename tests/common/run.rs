/// Runs `scenario` in-process, as `batchproof run` would after parsing its flags, with the
/// reports under `out`; returns the report and the files written. Panics with the run's
/// own message when it cannot start.
pub async fn run_in_process(
    scenario: batchproof::scenario::Scenario,
    out: &std::path::Path,
    shard: Option<batchproof::report::Shard>,
) -> (batchproof::report::Report, Vec<std::path::PathBuf>) {
    let opts = batchproof::run::RunOptions {
        scenario: scenario.path.clone(),
        target: None,
        token_env: "UNUSED".into(),
        out: out.to_path_buf(),
        progress: batchproof::run::ProgressMode::None,
        mock_profile: None,
        shard,
        stop: None,
    };
    batchproof::run::run_scenario(scenario, &opts)
        .await
        .unwrap_or_else(|e| panic!("run failed ({}): {e}", e.exit_code()))
}
