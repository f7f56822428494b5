//! Every command exits quietly when its stdout closes (`batchproof compare A B | head -1`):
//! no panic, no exit 101, its own exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `args` in `dir` with stdout closed before the command writes anything; returns
/// the exit code and stderr.
fn with_closed_stdout(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const TINY: &str = r#"
name: tiny
target: {mock: {profile: ../mock/default.yaml}}
load:
  model: open
  phases: [{hold: 1s, rate: 3}]
  inputs_per_batch: 2
results: {via: polling, polling: {interval: 100ms}, deadline: 20s}
"#;

#[test]
fn no_command_panics_when_its_reader_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = root().join("fuzz/corpus/report/conformance-failed.json");
    let report = fixture.to_str().unwrap();
    let smoke = root().join("scenarios/smoke.yaml");
    let smoke = smoke.to_str().unwrap();
    std::fs::create_dir_all(d.join("scenarios")).unwrap();
    std::fs::write(d.join("scenarios/tiny.yaml"), TINY).unwrap();
    std::fs::create_dir_all(d.join("mock")).unwrap();
    std::fs::copy(
        root().join("mock/default.yaml"),
        d.join("mock/default.yaml"),
    )
    .unwrap();
    let out = d.join("out");
    let out = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["checks"], 0),
        (vec!["checks", "--format", "json"], 0),
        (vec!["compare", report, report, "--out", out], 0),
        (vec!["report", report, "--format", "md"], 0),
        (vec!["report", report, "--format", "html"], 0),
        (vec!["plan", smoke], 0),
        (vec!["run", smoke, "--dry-run"], 0),
        (vec!["validate", smoke], 0),
        (vec!["init", "starter"], 0),
        (vec!["completions", "bash"], 0),
        (
            vec![
                "run",
                "scenarios/tiny.yaml",
                "--out",
                out,
                "--progress",
                "none",
            ],
            0,
        ),
    ];
    for (args, want) in cases {
        let (code, stderr) = with_closed_stdout(&args, d);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(code, Some(want), "{args:?}: {stderr}");
    }
}
