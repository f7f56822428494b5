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
        metrics_listen: None,
        time_scale: None,
    };
    batchproof::run::run_scenario(scenario, &opts)
        .await
        .unwrap_or_else(|e| panic!("run failed ({}): {e}", e.exit_code()))
}

/// Reads the child's stderr on a thread until `needle` has appeared on `count` lines
/// (or panics after `timeout`); the thread goes on collecting the rest, returned on join.
pub fn wait_for_lines(
    child: &mut std::process::Child,
    needle: &'static str,
    count: usize,
    timeout: std::time::Duration,
) -> std::thread::JoinHandle<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut seen = 0;
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains(needle) {
                seen += 1;
                if seen == count {
                    let _ = tx.send(());
                }
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if rx.recv_timeout(timeout).is_err() {
        let _ = child.kill();
        panic!(
            "the run did not print {count} × `{needle}` in {timeout:?}: {}",
            reader.join().unwrap()
        );
    }
    reader
}

/// A loopback port free at the time of asking (for a process that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A finished process's stdout and stderr together, for assertions and their messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
