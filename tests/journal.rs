//! A run killed with SIGKILL mid-load loses nothing it saw: its journal gives the partial
//! report (`report --from-journal`), and `resume` collects the rest of the accepted
//! batches' results by polling, without submitting anything again — proven input by input
//! against the mock, which runs in its own process and outlives the killed run.

mod common;
use common::{free_port, wait_for_lines};

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "sk_batchproof_local";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_batchproof"))
}

struct Mock(Child, String);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_mock() -> Mock {
    let port = free_port();
    let mut child = bin()
        .args([
            "mock",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--time-scale",
            "50",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&mut child, "serving", 1, Duration::from_secs(60));
    Mock(child, format!("http://127.0.0.1:{port}"))
}

async fn admin(mock: &Mock, path: &str) -> serde_json::Value {
    let http = reqwest::Client::new();
    let r = if let Some(path) = path.strip_prefix("GET ") {
        http.get(format!("{}{path}", mock.1)).send().await
    } else {
        http.post(format!("{}{path}", mock.1)).send().await
    };
    r.unwrap().json().await.unwrap_or(serde_json::Value::Null)
}

/// The journal's records: accepted batches (index → batchId), and results by (batch,
/// input) with the run id and channel of each line.
#[derive(Default)]
struct Journal {
    scheduled: BTreeSet<u64>,
    accepted: BTreeMap<u64, String>,
    results: BTreeMap<(u64, u64), Vec<(String, String)>>,
}

fn read_journal(dir: &std::path::Path) -> Journal {
    let text = std::fs::read_to_string(dir.join("journal.txt")).unwrap();
    let mut j = Journal::default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.splitn(7, ' ').collect();
        match f[0] {
            "S" => {
                j.scheduled.insert(f[1].parse().unwrap());
            }
            "B" => {
                let outcome: serde_json::Value =
                    serde_json::from_str(line.splitn(5, ' ').nth(4).unwrap()).unwrap();
                if outcome["kind"] == "accepted" {
                    j.accepted.insert(
                        f[1].parse().unwrap(),
                        outcome["batch_id"].as_str().unwrap().to_string(),
                    );
                }
            }
            "R" => j
                .results
                .entry((f[1].parse().unwrap(), f[2].parse().unwrap()))
                .or_default()
                .push((f[6].to_string(), f[3].to_string())),
            other => panic!("unexpected journal line {other:?}: {line}"),
        }
    }
    j
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_load_is_reported_from_its_journal_and_resumed_without_resubmitting() {
    let mock = start_mock();
    let dir = tempfile::tempdir().unwrap();
    let hook = free_port();
    let scenario = dir.path().join("killed.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: killed\nload:\n  phases: [{{hold: 30s, rate: 10}}]\n  inputs_per_batch: 20\n  seed: 5\ninputs:\n  metadata: {{n: \"{{{{random:1-9}}}}\"}}\nresults:\n  via: webhooks\n  webhooks: {{listen: \"127.0.0.1:{hook}\", public_url: \"http://127.0.0.1:{hook}/\"}}\n  deadline: 60s\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("reports");
    let mut run = bin()
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--target",
            &mock.1,
            "--yes",
        ])
        .args(["--progress", "none", "--out", out.to_str().unwrap()])
        .env("EXTEND_API_KEY", TOKEN)
        .env("RUST_LOG", "info,batchproof::load=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&mut run, "batch accepted", 12, Duration::from_secs(60));
    // Hold the mock's queue so some runs are certainly unfinished at the kill.
    admin(&mock, "/_mock/pause").await;
    run.kill().unwrap(); // SIGKILL: no handler runs, nothing is flushed on the way out.
    run.wait().unwrap();
    let run_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        !run_dir.join("report.json").exists(),
        "a killed run wrote no report"
    );
    let before = read_journal(&run_dir);
    assert!(
        before.accepted.len() >= 12,
        "{} accepted",
        before.accepted.len()
    );

    // 1. The partial report, from the journal alone.
    let partial = bin()
        .args(["report", "--from-journal", run_dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&partial.stdout);
    assert_eq!(
        partial.status.code(),
        Some(3),
        "{stdout}{}",
        String::from_utf8_lossy(&partial.stderr)
    );
    let report = batchproof::report::json::read(&run_dir.join("report.json")).unwrap();
    assert!(!report.complete, "marked incomplete");
    assert!(stdout.contains("INCOMPLETE"));
    assert_eq!(report.batches.scheduled, before.scheduled.len() as u64);
    assert_eq!(report.batches.accepted, before.accepted.len() as u64);
    assert_eq!(report.runs.submitted, 20 * before.accepted.len() as u64);
    assert_eq!(
        report.runs.seen,
        before.results.len() as u64,
        "every journaled result counted"
    );
    assert_eq!(
        report.runs.seen + report.runs.missing,
        report.runs.submitted
    );
    assert!(report.runs.missing > 0, "the kill left runs unfinished");
    assert!(
        report.invariants.iter().all(|i| i.held),
        "{:?}",
        report.invariants
    );

    // 2. The resume: polls, never submits.
    let created = admin(&mock, "GET /_mock/state").await["batches"]["created"].clone();
    admin(&mock, "/_mock/resume").await;
    let resumed = bin()
        .args(["resume", run_dir.to_str().unwrap()])
        .env("EXTEND_API_KEY", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        admin(&mock, "GET /_mock/state").await["batches"]["created"],
        created,
        "the resume submitted nothing"
    );
    let report = batchproof::report::json::read(&run_dir.join("report.json")).unwrap();
    assert!(report.complete);
    assert!(report.resumed.is_some());
    assert_eq!(report.batches.accepted, before.accepted.len() as u64);
    assert_eq!(report.runs.missing, 0, "{stdout}");
    assert_eq!(report.runs.seen, report.runs.submitted);
    assert_eq!(report.runs.anomalies.unknown, 0);
    assert!(
        report.invariants.iter().all(|i| i.held),
        "{:?}",
        report.invariants
    );

    // Input by input: every input of every accepted batch has exactly one run in the
    // journal, and it is the run the mock created for that input.
    let after = read_journal(&run_dir);
    let api = reqwest::Client::new();
    for (index, batch_id) in &before.accepted {
        let page: serde_json::Value = api
            .get(format!(
                "{}/workflow_runs?batchId={batch_id}&maxPageSize=1000",
                mock.1
            ))
            .bearer_auth(TOKEN)
            .header("x-extend-api-version", "2026-02-09")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let runs = page["data"].as_array().unwrap_or_else(|| panic!("{page}"));
        assert_eq!(runs.len(), 20);
        for run in runs {
            // List pages carry no metadata: Get each run for its correlation tag.
            let run: serde_json::Value = api
                .get(format!(
                    "{}/workflow_runs/{}",
                    mock.1,
                    run["id"].as_str().unwrap()
                ))
                .bearer_auth(TOKEN)
                .header("x-extend-api-version", "2026-02-09")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let tag = run["metadata"]["bp_input"]
                .as_str()
                .unwrap_or_else(|| panic!("{run}"));
            let (b, i) = tag.split_once(':').unwrap();
            assert_eq!(b.parse::<u64>().unwrap(), *index);
            let i: u64 = i.parse().unwrap();
            let lines = &after.results[&(*index, i)];
            let ids: BTreeSet<&str> = lines.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(
                ids,
                BTreeSet::from([run["id"].as_str().unwrap()]),
                "batch {index} input {i}"
            );
            // Results journaled before the kill are kept as they were.
            if let Some(old) = before.results.get(&(*index, i)) {
                assert_eq!(&lines[..old.len()], &old[..]);
            }
        }
    }
}
