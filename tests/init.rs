//! A newcomer's first minutes: `init` writes starter scenarios that validate, `completions`
//! prints a shell's script, an installed `batchproof run` works outside the checkout, and
//! the Dockerfile that deploy/ runs holds what the binary needs.

mod common;

use std::path::{Path, PathBuf};

use common::output_text;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn batchproof(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(args)
        .current_dir(dir)
        .env("TARGET_URL", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

#[test]
fn init_writes_starters_that_validate_and_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for kind in ["smoke", "capacity", "conformance"] {
        let name = format!("my-{kind}");
        let o = batchproof(&["init", &name, "--kind", kind], d);
        assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
        let file = format!("{name}.yaml");
        let written = std::fs::read_to_string(d.join(&file)).unwrap();
        assert!(written.starts_with("# A starter scenario"), "commented");
        let o = batchproof(&["validate", &file], d);
        assert_eq!(o.status.code(), Some(0), "{kind}: {}", output_text(&o));
        let o = batchproof(&["plan", &file], d);
        assert_eq!(o.status.code(), Some(0), "{kind}: {}", output_text(&o));
        // A second init never writes over the first.
        let o = batchproof(&["init", &name, "--kind", kind], d);
        assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    }
    // The capacity starter is guarded and paced: a budget and the Scale plan's limits.
    let o = batchproof(&["plan", "my-capacity.yaml"], d);
    let out = output_text(&o);
    assert!(
        out.contains("limits: plan scale") && out.contains("budget    5000 runs"),
        "{out}"
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let o = batchproof(&["completions", shell], dir.path());
        assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(
            script.contains("batchproof") && script.contains("plan"),
            "{shell}"
        );
    }
}

#[test]
fn run_without_a_scenario_works_outside_the_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let o = batchproof(&["run", "--progress", "none"], dir.path());
    let out = output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("built-in smoke scenario") && out.contains("batchproof · smoke · PASSED"),
        "{out}"
    );
    assert!(dir.path().join("reports").is_dir());
}

#[test]
fn the_dockerfile_builds_what_deploy_runs() {
    let docker = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = docker.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "multi-stage: {froms:?}");
    let user = docker
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER line");
    assert_ne!(user.trim(), "0");
    assert_ne!(user.trim(), "root");
    // Every path the build copies exists, and every file the binary embeds is copied.
    let mut copied = Vec::new();
    for line in docker
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(root().join(src).exists(), "COPY {src}: no such path");
            copied.push(src.trim_end_matches('/').to_string());
        }
    }
    for entry in walk(&root().join("src")) {
        let code = std::fs::read_to_string(&entry).unwrap();
        for (i, _) in code.match_indices("include_str!(\"") {
            let rel = &code[i + 14..];
            let rel = &rel[..rel.find('"').unwrap()];
            let target = entry.parent().unwrap().join(rel).canonicalize().unwrap();
            let inside = target.strip_prefix(root().canonicalize().unwrap()).unwrap();
            let top = inside
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            assert!(
                copied.iter().any(|c| *c == top),
                "{} embeds {rel}, which the build does not copy",
                entry.display()
            );
        }
    }
    let tag = "batchproof:0.1.0";
    assert!(docker.contains(&format!("docker build -t {tag} .")));
    for manifest in ["indexed-job.yaml", "merge-job.yaml"] {
        let m = std::fs::read_to_string(root().join("deploy").join(manifest)).unwrap();
        assert!(
            m.contains(&format!("image: {tag}")),
            "{manifest} runs the Dockerfile's image"
        );
        assert!(
            !m.contains("example/batchproof"),
            "{manifest}: no placeholder image"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}
