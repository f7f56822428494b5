//! Sharded runs safe to pay for: a shard run again into the same `--out` (a retried pod,
//! a second rehearsal on one volume) never sends its batches twice, and a merge started
//! while shards still run waits for them instead of resuming them as if killed. The target
//! is the mock behind its URL; what it created is counted on its side.

mod common;
use common::{output_text, wait_for_lines};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batchproof::mock::{MockServer, Profile};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_batchproof"));
    c.stdin(Stdio::null())
        .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN);
    c
}

async fn mock() -> MockServer {
    let mut profile = Profile::load(&root().join("mock/default.yaml")).unwrap();
    profile.time_scale = 100.0;
    MockServer::start(profile, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn runs_created(mock: &MockServer) -> u64 {
    let state: serde_json::Value = reqwest::get(format!("{}/_mock/state", mock.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["runs"]["created"].as_u64().unwrap()
}

fn scenario(dir: &Path, url: &str, hold_s: u32) -> PathBuf {
    let path = dir.join("sharded.yaml");
    std::fs::write(
        &path,
        format!(
            "name: sharded\ntarget: {{url: '{url}'}}\nbudget: {{max_runs: 2000}}\nload:\n  phases: [{{hold: {hold_s}s, rate: 2}}]\n  inputs_per_batch: 5\nresults: {{via: polling, polling: {{interval: 100ms}}, deadline: 60s}}\nthresholds: ['runs.missing == 0']\n"
        ),
    )
    .unwrap();
    path
}

fn shard(scenario: &Path, out: &Path, which: &str) -> Command {
    let mut c = bin();
    c.args(["run", scenario.to_str().unwrap(), "--shard", which])
        .args(["--progress", "none", "--out", out.to_str().unwrap()]);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_run_again_into_its_out_is_refused_or_resumed_never_sent_twice() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path(), &mock.url(), 2);
    let out = dir.path().join("out");

    // Finished: a second start is refused, and sends nothing.
    let mut first = shard(&scenario, &out, "1/2");
    let o = tokio::task::spawn_blocking(move || first.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let created = runs_created(&mock).await;
    let mut again = shard(&scenario, &out, "1/2");
    let o = tokio::task::spawn_blocking(move || again.output())
        .await
        .unwrap()
        .unwrap();
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("already ran into"), "{text}");
    assert_eq!(
        runs_created(&mock).await,
        created,
        "the second start sent batches"
    );

    // Killed (a lost pod): its retry resumes the journal, collecting, sending nothing.
    let scenario = self::scenario(dir.path(), &mock.url(), 30);
    let mut killed = shard(&scenario, &out, "0/2")
        .env("RUST_LOG", "batchproof=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _log = wait_for_lines(&mut killed, "batch accepted", 3, Duration::from_secs(30));
    killed.kill().unwrap();
    killed.wait().unwrap();
    let folder = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("shard0of2"))
        .unwrap();
    // While its heartbeat is fresh it could be alive: a retry is refused.
    let mut early = shard(&scenario, &out, "0/2");
    let o = tokio::task::spawn_blocking(move || early.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("is running now"),
        "{}",
        output_text(&o)
    );
    // Once it is stale, the retry resumes it.
    let until = Instant::now() + Duration::from_secs(30);
    while batchproof::observe::journal::is_live(&folder) {
        assert!(Instant::now() < until, "the heartbeat never went stale");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let created = runs_created(&mock).await;
    let mut retry = shard(&scenario, &out, "0/2");
    let o = tokio::task::spawn_blocking(move || retry.output())
        .await
        .unwrap()
        .unwrap();
    let text = output_text(&o);
    assert!(text.contains("resuming it from its journal"), "{text}");
    // Not passed: the killed shard never sent the rest of its batches.
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert_eq!(
        runs_created(&mock).await,
        created,
        "the retried shard sent batches again"
    );
    let report = batchproof::report::json::read(&folder.join("report.json")).unwrap();
    assert_eq!(report.runs.missing, 0);
    assert!(report.verdict.reasons.iter().any(|r| r.code == "unsent"));
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_started_while_shards_run_waits_for_them() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path(), &mock.url(), 4);
    let out = dir.path().join("out");
    let mut shards: Vec<std::process::Child> = Vec::new();
    for i in 0..2 {
        let mut c = shard(&scenario, &out, &format!("{i}/2"))
            .env("RUST_LOG", "batchproof=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Started, sending.
        let log = wait_for_lines(&mut c, "batch accepted", 1, Duration::from_secs(30));
        std::mem::forget(log);
        shards.push(c);
    }
    // Without a wait, a live shard is refused, never resumed.
    let o = bin()
        .args(["merge", "--shards", out.to_str().unwrap(), "--out"])
        .arg(dir.path().join("early"))
        .output()
        .unwrap();
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("still running"), "{text}");
    // With one, the merge waits for both shards and merges what they wrote.
    let merged = dir.path().join("merged");
    let mut merge = bin();
    merge
        .args([
            "merge",
            "--shards",
            out.to_str().unwrap(),
            "--wait",
            "90s",
            "--expect",
            "2",
        ])
        .arg("--out")
        .arg(&merged);
    let merging = tokio::task::spawn_blocking(move || merge.output());
    for mut s in shards {
        let status = tokio::task::spawn_blocking(move || s.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(0), "a shard was disturbed by the merge");
    }
    let o = merging.await.unwrap().unwrap();
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        !text.contains("resuming it"),
        "a live shard was resumed: {text}"
    );
    let m = batchproof::report::json::read(&merged.join("report.json")).unwrap();
    assert_eq!(m.merged_from.len(), 2);
    assert_eq!(m.runs.missing, 0);
    assert_eq!(m.runs.seen, m.runs.submitted);
    mock.shutdown().await;
}
