//! No secret is ever written out: a run's stdout, stderr (at debug level, both log
//! formats) and every report file are searched for the webhook signing secret (`wss_…`,
//! created by the mock for this run) and the API key.

use std::process::Command;

use batchproof::mock::profile::DEFAULT_TOKEN;

fn run_and_collect(log_format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.yaml");
    // Conformance-style checks too: probes send wrong tokens and create endpoints.
    std::fs::write(
        &scenario,
        "name: secrets\ntarget: {mock: {time_scale: 100}}\nload:\n  phases: [{hold: 1s, rate: 2}]\n  inputs_per_batch: 5\nresults: {via: both, deadline: 20s}\nchecks: {audit_batches: 1}\n",
    )
    .unwrap();
    let out = dir.path().join("reports");
    let o = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args([
            "--log-format",
            log_format,
            "run",
            scenario.to_str().unwrap(),
            "--progress",
            "lines",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut all =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let mut files = 0;
    for entry in walk(&out) {
        all.push_str(&std::fs::read_to_string(&entry).unwrap());
        files += 1;
    }
    assert!(files >= 4, "json, md, html and junit were written");
    all
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn no_secret_reaches_logs_or_reports() {
    for format in ["text", "json"] {
        let all = run_and_collect(format);
        assert!(
            all.contains("webhook"),
            "the search covers a real run's output"
        );
        assert!(
            !all.contains("wss_"),
            "a webhook signing secret was written out ({format} logs)"
        );
        assert!(
            !all.contains(DEFAULT_TOKEN),
            "the API key was written out ({format} logs)"
        );
    }
}
