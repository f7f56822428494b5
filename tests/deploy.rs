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

/// The first container's command line in a manifest (`command` + `args`, exec form: no
/// shell), with Kubernetes' `$(VAR)` references expanded from `env`, as the kubelet does.
fn argv_of(manifest: &str, env: &[(&str, String)]) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("deploy").join(manifest)).unwrap();
    let job: Value = serde_saphyr::from_str(&text).unwrap();
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let own: Vec<(String, String)> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect();
    let expand = |arg: &str| {
        let mut out = arg.to_string();
        for (k, v) in own
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .chain(env.iter().map(|(k, v)| (*k, v.clone())))
        {
            out = out.replace(&format!("$({k})"), &v);
        }
        out
    };
    container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(container["args"].as_array().into_iter().flatten())
        .map(|a| expand(a.as_str().expect("string arguments")))
        .collect()
}

/// The manifest's command line pointed at this machine: its paths, and the image's binary.
fn local(argv: &[String], scenario: &Path, reports: &Path) -> Command {
    assert_eq!(
        argv[0], "batchproof",
        "the container runs batchproof itself: {argv:?}"
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_batchproof"));
    c.args(argv[1..].iter().map(|a| {
        a.replace("/scenario/scenario.yaml", &scenario.display().to_string())
            .replace("/reports", &reports.display().to_string())
    }));
    c
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
    let argv = |i: u32| {
        argv_of(
            "indexed-job.yaml",
            &[("JOB_COMPLETION_INDEX", i.to_string())],
        )
    };
    assert!(
        argv(1)
            .windows(2)
            .any(|w| w[0] == "--shard" && w[1] == "1/4"),
        "{:?}",
        argv(1)
    );
    // `[::]:9464` listens on every address of the pod. Here the pods share one machine, so
    // each gets its own loopback address for it, as each pod has its own IP there.
    assert!(
        argv(1)
            .windows(2)
            .any(|w| w[0] == "--metrics-listen" && w[1] == "[::]:9464"),
        "{:?}",
        argv(1)
    );
    let pod = |i: u32| {
        let mut c = local(&argv(i), &scenario, &reports);
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let ip = format!("127.0.0.{}", i + 2);
        let mut own = Command::new(c.get_program());
        own.args(args.iter().map(|a| a.replace("[::]", &ip)))
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .env("POD_IP", &ip)
            .env("TARGET_URL", &mock_url)
            .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN)
            .env("RUST_LOG", "batchproof=debug");
        c = own;
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
    // Its /metrics, on the pod's address, names its shard.
    let metrics = reqwest::blocking_text("http://127.0.0.3:9464/metrics");
    assert!(
        metrics.contains("shard=\"1\"") && metrics.contains("shards=\"4\""),
        "{metrics}"
    );
    // The container is batchproof itself: the eviction kills it.
    let _ = evicted.kill();
    let _ = evicted.wait();
    for mut c in others {
        let status = c.wait().unwrap();
        assert!(
            status.code().is_some_and(|c| c <= 1),
            "a pod exited {status}"
        );
    }
    // The merge Job's own command: it waits (up to its --wait) for the killed shard's
    // heartbeat to go stale, then resumes it.
    let merge = argv_of("merge-job.yaml", &[]);
    assert!(merge.iter().any(|a| a == "--shards"), "{merge:?}");
    let o = local(&merge, &scenario, &reports)
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

/// What Pod Security's "restricted" profile refuses in a pod spec (the checks of
/// https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted), each
/// as a sentence; empty when the pod would be admitted.
fn restricted_violations(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let psc = &pod["securityContext"];
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[host] == Value::Bool(true) {
            out.push(format!("{host} is set"));
        }
    }
    let allowed = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for v in pod["volumes"].as_array().into_iter().flatten() {
        let kinds: Vec<&String> = v
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "name")
            .collect();
        if kinds.iter().any(|k| !allowed.contains(&k.as_str())) {
            out.push(format!("volume {} of type {kinds:?}", v["name"]));
        }
    }
    let seccomp_ok = |sc: &Value| {
        matches!(
            sc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    for c in pod["containers"].as_array().into_iter().flatten() {
        let sc = &c["securityContext"];
        let name = c["name"].as_str().unwrap_or("?");
        if sc["privileged"] == Value::Bool(true) {
            out.push(format!("{name}: privileged"));
        }
        if sc["allowPrivilegeEscalation"] != Value::Bool(false) {
            out.push(format!("{name}: allowPrivilegeEscalation is not false"));
        }
        let drops_all = sc["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            out.push(format!("{name}: capabilities do not drop ALL"));
        }
        let adds: Vec<&Value> = sc["capabilities"]["add"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        if adds.iter().any(|a| *a != "NET_BIND_SERVICE") {
            out.push(format!("{name}: adds capabilities {adds:?}"));
        }
        let non_root = sc["runAsNonRoot"] == Value::Bool(true)
            || (psc["runAsNonRoot"] == Value::Bool(true)
                && sc["runAsNonRoot"] != Value::Bool(false));
        if !non_root {
            out.push(format!("{name}: runAsNonRoot is not true"));
        }
        if sc["runAsUser"] == 0 || (sc["runAsUser"].is_null() && psc["runAsUser"] == 0) {
            out.push(format!("{name}: runs as user 0"));
        }
        if !(seccomp_ok(sc) || (seccomp_ok(psc) && sc["seccompProfile"].is_null())) {
            out.push(format!(
                "{name}: no RuntimeDefault or Localhost seccomp profile"
            ));
        }
    }
    out
}

fn pod_of(manifest: &str) -> Value {
    let text = std::fs::read_to_string(root().join("deploy").join(manifest)).unwrap();
    let job: Value = serde_saphyr::from_str(&text).unwrap();
    job["spec"]["template"]["spec"].clone()
}

#[test]
fn the_jobs_pass_pod_security_restricted_and_agree_on_n() {
    for manifest in ["indexed-job.yaml", "merge-job.yaml"] {
        let pod = pod_of(manifest);
        assert_eq!(
            restricted_violations(&pod),
            Vec::<String>::new(),
            "{manifest}"
        );
        // The check can fail: the same pod without its seccomp profile, or running as
        // root with privilege escalation, is refused.
        let mut bad = pod.clone();
        bad["securityContext"]
            .as_object_mut()
            .unwrap()
            .remove("seccompProfile");
        bad["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = Value::Bool(true);
        let v = restricted_violations(&bad);
        assert!(
            v.iter().any(|x| x.contains("seccomp")) && v.iter().any(|x| x.contains("Escalation")),
            "{v:?}"
        );
        // A non-root user writes the shared volume: fsGroup makes it the group's.
        assert_eq!(pod["securityContext"]["fsGroup"], 10001, "{manifest}");
        assert_eq!(
            pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true,
            "{manifest}"
        );
    }
    // N is written in `completions`; parallelism, maxFailedIndexes and SHARDS (in both
    // Jobs) must say the same.
    let text = std::fs::read_to_string(root().join("deploy/indexed-job.yaml")).unwrap();
    let job: Value = serde_saphyr::from_str(&text).unwrap();
    let n = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(job["spec"]["parallelism"].as_u64(), Some(n));
    assert_eq!(job["spec"]["maxFailedIndexes"].as_u64(), Some(n));
    for manifest in ["indexed-job.yaml", "merge-job.yaml"] {
        let shards = pod_of(manifest)["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "SHARDS")
            .and_then(|e| e["value"].as_str().map(str::to_string));
        assert_eq!(shards, Some(n.to_string()), "{manifest}");
    }
    // The Job's pods are the restricted pods it declares, and its failures are
    // Kubernetes': one lost pod does not end the others.
    assert!(
        job["spec"]["backoffLimitPerIndex"]
            .as_u64()
            .is_some_and(|b| b >= 1)
    );
    assert!(job["spec"].get("backoffLimit").is_none());
}

#[test]
fn sigterm_to_the_containers_pid_1_writes_the_report_and_stops_sending() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.yaml");
    std::fs::write(
        &scenario,
        "name: pid1\ntarget: {mock: {time_scale: 100}}\nload:\n  phases: [{hold: 60s, rate: 4}]\n  inputs_per_batch: 10\nresults: {via: polling, polling: {interval: 100ms}, deadline: 30s}\n",
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let argv = argv_of("indexed-job.yaml", &[("JOB_COMPLETION_INDEX", "0".into())]);
    let local_cmd = local(&argv, &scenario, &reports);
    // A PID namespace of its own: batchproof is PID 1 there, as in the container.
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--kill-child"])
        .arg(local_cmd.get_program())
        .args(
            local_cmd
                .get_args()
                .map(|a| a.to_string_lossy().replace("[::]:9464", "127.0.0.1:0")),
        )
        .env("RUST_LOG", "batchproof=debug");
    let (mut unshare, _) = spawn_until(c, "batch accepted");
    // The process unshare forked is PID 1 of the namespace.
    let child = Command::new("pgrep")
        .args(["-P", &unshare.id().to_string()])
        .output()
        .unwrap();
    let pid1 = String::from_utf8_lossy(&child.stdout).trim().to_string();
    assert!(!pid1.is_empty(), "no process inside the namespace");
    let ns = std::fs::read_to_string(format!("/proc/{pid1}/status")).unwrap();
    let nspid = ns
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    assert_eq!(nspid, "1", "batchproof is PID 1 in its namespace: {ns}");
    let started = std::time::Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid1])
            .status()
            .unwrap()
            .success()
    );
    let status = unshare.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it stopped within the grace period: {:?}",
        started.elapsed()
    );
    let _ = status;
    let folder = std::fs::read_dir(reports.join("shards"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("report.json").exists())
        .expect("a report was written");
    let report = batchproof::report::json::read(&folder.join("report.json")).unwrap();
    assert!(!report.complete);
    assert!(
        report
            .interrupted
            .as_deref()
            .is_some_and(|w| w.contains("SIGTERM")),
        "{:?}",
        report.interrupted
    );
    // Shard 0 of 4 has 60 of the 240 batches; it was stopped after its first few.
    assert!(
        report.generator.unsent_batches > 40,
        "it stopped sending at the signal: {} unsent",
        report.generator.unsent_batches
    );
}
