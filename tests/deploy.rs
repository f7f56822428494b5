//! The Kubernetes manifests, proven as Kubernetes runs them: `deploy/*.yaml` passes the
//! Kubernetes API schemas (kubernetes-validate, pinned in tests/sdk/requirements.txt), and
//! the Indexed Job's own command line, read from the manifest, runs as N local processes
//! with `JOB_COMPLETION_INDEX` and `POD_IP` set and one shared folder; one is killed with
//! SIGKILL midway (an evicted pod), and the merge Job's own command recovers it from its
//! journal. The merged report has every shard, every input exactly once, the budget held,
//! and is not passed, since the evicted shard never sent the rest of its batches.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The validator from the tests' venv (tests/sdk/setup.sh installs it, pinned).
fn validator() -> PathBuf {
    let v = root().join("tests/.venv/bin/kubernetes-validate");
    assert!(
        v.exists(),
        "{} is missing: run `bash tests/sdk/setup.sh` (needs PyPI)",
        v.display()
    );
    v
}

#[test]
fn manifests_pass_the_kubernetes_api_schemas() {
    let files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(files.len() >= 2, "{files:?}");
    let o = Command::new(validator())
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let text = common::output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    for kind in ["job/batchproof-shards", "job/batchproof-merge"] {
        assert!(
            text.contains(&format!("passed for resource {kind}")),
            "{text}"
        );
    }
    // The PodMonitor has no schema there: it must select the shard pods' metrics port.
    let read = |f: &str| std::fs::read_to_string(root().join("deploy").join(f)).unwrap();
    let (job, monitor) = (read("indexed-job.yaml"), read("podmonitor.yaml"));
    let pods = "labels: {app: batchproof, stage: shards}";
    assert!(job.contains(pods) && job.contains("- {name: metrics, containerPort: 9464}"));
    assert!(monitor.contains("matchLabels: {app: batchproof, stage: shards}"));
    assert!(monitor.contains("- port: metrics"), "{monitor}");
    // The validator can fail: a Job whose completions is not a number does.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let job = std::fs::read_to_string(root().join("deploy/merge-job.yaml"))
        .unwrap()
        .replace("backoffLimit: 0", "backoffLimit: none");
    std::fs::write(&bad, job).unwrap();
    let o = Command::new(validator()).arg(&bad).output().unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", common::output_text(&o));
}

/// The first container's shell command in a manifest (`args: - >- …` folded into one
/// line, or a one-line `- …`), comments dropped.
fn command_of(manifest: &str) -> String {
    let text = std::fs::read_to_string(root().join("deploy").join(manifest)).unwrap();
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim() != "args:")
        .skip(1)
        .filter(|l| !l.trim_start().starts_with('#'));
    let first = lines.next().expect("an args: list").trim();
    if first != "- >-" {
        return first.trim_start_matches("- ").to_string();
    }
    let folded: Vec<&str> = lines
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.ends_with(':') && !l.starts_with("- "))
        .filter(|l| !l.starts_with('#'))
        .collect();
    folded.join(" ")
}

/// The manifest's paths and image command, pointed at this machine.
fn local(command: &str, scenario: &Path, reports: &Path) -> String {
    command
        .replace("/scenario/scenario.yaml", &scenario.display().to_string())
        .replace("/reports", &reports.display().to_string())
        .replacen(
            "batchproof ",
            &format!("{} ", env!("CARGO_BIN_EXE_batchproof")),
            1,
        )
}

/// Starts `cmd` and waits for `needle` on its stderr; the rest of stderr is drained.
fn spawn_until(mut cmd: Command, needle: &'static str) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains(needle) {
                let _ = tx.send(line.clone());
                sent = true;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => (child, line),
        Err(_) => {
            let _ = child.kill();
            panic!("no `{needle}` within 60 s");
        }
    }
}

#[test]
fn the_indexed_job_runs_as_n_processes_and_the_merge_job_recovers_an_evicted_shard() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut mock_cmd = Command::new(env!("CARGO_BIN_EXE_batchproof"));
    mock_cmd.args([
        "mock",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--time-scale",
        "100",
    ]);
    // The fast, unthrottled profile: this is load, not a client under test.
    mock_cmd
        .arg("--profile")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/default.yaml"));
    let (mut mock, _) = spawn_until(mock_cmd, "batchproof mock serving");
    let mock_url = format!("http://127.0.0.1:{port}");
    // Each pod has its own IP, so each shard's receiver its own address.
    let hook = common::free_port();
    let scenario = dir.path().join("scenario.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: pods\ntarget: {{url: '${{TARGET_URL}}'}}\nbudget: {{max_runs: 400}}\nload:\n  phases: [{{hold: 8s, rate: 2}}]\n  inputs_per_batch: 20\nresults:\n  via: both\n  deadline: 30s\n  polling: {{interval: 200ms}}\n  webhooks: {{listen: '${{POD_IP}}:{hook}', public_url: 'http://${{POD_IP}}:{hook}/hooks'}}\nthresholds: ['runs.missing == 0']\n"
        ),
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let run = local(&command_of("indexed-job.yaml"), &scenario, &reports);
    assert!(
        run.contains("--shard \"${JOB_COMPLETION_INDEX}/4\""),
        "{run}"
    );
    let pod = |i: u32| {
        let mut c = Command::new("sh");
        c.args(["-c", &run])
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .env("POD_IP", format!("127.0.0.{}", i + 2))
            .env("TARGET_URL", &mock_url)
            .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN)
            .env("RUST_LOG", "batchproof=debug");
        c
    };
    // Shard 1 is evicted right after its first batch was accepted.
    let (mut evicted, _) = spawn_until(pod(1), "batch accepted");
    let others: Vec<Child> = [0, 2, 3]
        .into_iter()
        .map(|i| {
            pod(i)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Its /metrics, on the pod's IP as the manifest says, names its shard.
    assert!(run.contains("--metrics-listen \"${POD_IP}:9464\""), "{run}");
    let metrics = reqwest::blocking_text("http://127.0.0.3:9464/metrics");
    assert!(
        metrics.contains("shard=\"1\"") && metrics.contains("shards=\"4\""),
        "{metrics}"
    );
    // sh -c execs the run as its child: kill the whole group of the pod.
    let pid = evicted.id();
    let _ = Command::new("pkill")
        .args(["-KILL", "-P", &pid.to_string()])
        .status();
    let _ = evicted.kill();
    let _ = evicted.wait();
    for mut c in others {
        let status = c.wait().unwrap();
        assert!(
            status.code().is_some_and(|c| c <= 1),
            "a pod exited {status}"
        );
    }
    let merge = local(&command_of("merge-job.yaml"), &scenario, &reports);
    assert!(merge.contains("--shards"), "{merge}");
    let o = Command::new("sh")
        .args(["-c", &merge])
        .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN)
        .output()
        .unwrap();
    let text = common::output_text(&o);
    let state: Value = reqwest::blocking_get(&format!("{mock_url}/_mock/state"));
    let _ = mock.kill();
    let _ = mock.wait();
    // Not passed: the evicted shard's later batches were never sent.
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("resuming it from its journal"), "{text}");
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("merged/report.json")).unwrap())
            .unwrap();
    assert_eq!(
        m["merged_from"].as_array().unwrap().len(),
        4,
        "{}",
        m["merged_from"]
    );
    assert!(m.get("partial_set").is_none());
    let codes: Vec<&str> = m["verdict"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert!(codes.contains(&"unsent"), "{codes:?}");
    // Every input sent is accounted for exactly once, and the budget held.
    let runs = &m["runs"];
    assert_eq!(runs["missing"], 0, "{runs}");
    assert_eq!(runs["anomalies"]["duplicates"], 0, "{runs}");
    assert_eq!(runs["seen"], runs["submitted"], "{runs}");
    let created = state["runs"]["created"]
        .as_u64()
        .expect("a count of runs created");
    assert_eq!(created, runs["submitted"].as_u64().unwrap(), "{state}");
    assert!(created <= 400, "{created} runs under a budget of 400");
}

/// A GET answered with JSON, from a plain thread (the test is not async).
mod reqwest {
    pub fn blocking_get(url: &str) -> serde_json::Value {
        serde_json::from_str(&blocking_text(url)).unwrap()
    }

    /// A GET's body, its status a success.
    pub fn blocking_text(url: &str) -> String {
        let url = url.to_string();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    let r = ::reqwest::get(&url).await.unwrap();
                    assert!(r.status().is_success(), "{url}: {}", r.status());
                    r.text().await.unwrap()
                })
        })
        .join()
        .unwrap()
    }
}
