//! Live metrics, scraped by a real Prometheus server (Debian's `prometheus` package;
//! `.ci/run` installs it): a run serves `/metrics` while it runs (`--metrics-listen`), the
//! mock serves `/_mock/metrics`, and Prometheus's own HTTP API returns their series.
//! Without a `prometheus` binary the test fails with what to install; `scripts/test.sh`
//! leaves it out and counts it skipped.

mod common;

use common::free_port;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn prometheus() -> String {
    let bin = std::env::var("BATCHPROOF_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    let found = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "no `{bin}` on PATH (apt-get install prometheus, or set BATCHPROOF_PROMETHEUS); scripts/test.sh counts this test skipped without it"
    );
    bin
}

/// Spawns `cmd`, and returns it with the first stderr line containing `needle`; the rest
/// of its stderr keeps draining in the background.
fn spawn_until(mut cmd: Command, needle: &'static str) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains(needle) {
                let _ = tx.send(Ok(line.clone()));
                sent = true;
            }
            seen.push(line);
        }
        if !sent {
            let _ = tx.send(Err(seen.join("\n")));
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(line)) => (child, line),
        Ok(Err(out)) => panic!("the process ended without printing `{needle}`:\n{out}"),
        Err(_) => {
            let _ = child.kill();
            panic!("no `{needle}` within 60 s");
        }
    }
}

/// The `http://host:port` in a printed line.
fn address(line: &str) -> String {
    let at = line.find("http://").expect("an address");
    line[at + 7..]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == ':'))
        .next()
        .unwrap()
        .to_string()
}

/// One PromQL query against Prometheus's HTTP API; the result vector.
async fn query(prom: &str, q: &str) -> Vec<serde_json::Value> {
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{prom}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn value(sample: &serde_json::Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_a_running_run_and_the_mock() {
    let prom_bin = prometheus();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exe = env!("CARGO_BIN_EXE_batchproof");

    // The mock, standalone, and a ~12 s run against it with live metrics.
    let mut mock_cmd = Command::new(exe);
    mock_cmd.args(["mock", "--bind", "127.0.0.1:0", "--time-scale", "100"]);
    let (mut mock, line) = spawn_until(mock_cmd, "batchproof mock serving");
    let mock_addr = address(&line);
    std::fs::write(
        d.join("live.yaml"),
        "name: live\nload:\n  phases: [{hold: 12s, rate: 2}]\n  inputs_per_batch: 50\nresults:\n  via: polling\n  polling: {interval: 500ms}\n  deadline: 30s\n",
    )
    .unwrap();
    let mut run_cmd = Command::new(exe);
    run_cmd
        .args([
            "run",
            "live.yaml",
            "--target",
            &format!("http://{mock_addr}"),
            "--yes",
            "--metrics-listen",
            "127.0.0.1:0",
            "--progress",
            "none",
        ])
        .current_dir(d)
        .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN);
    let (mut run, line) = spawn_until(run_cmd, "metrics on http://");
    let run_addr = address(&line);

    // Prometheus, scraping both every second.
    let prom = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 900ms}}\nscrape_configs:\n  - job_name: run\n    static_configs: [{{targets: ['{run_addr}']}}]\n  - job_name: mock\n    metrics_path: /_mock/metrics\n    static_configs: [{{targets: ['{mock_addr}']}}]\n"
        ),
    )
    .unwrap();
    let mut prom_cmd = Command::new(&prom_bin);
    prom_cmd.args([
        &format!("--config.file={}", d.join("prometheus.yml").display()),
        &format!("--storage.tsdb.path={}", d.join("tsdb").display()),
        &format!("--web.listen-address={prom}"),
    ]);
    let (mut prometheus, _) = spawn_until(prom_cmd, "Server is ready to receive web requests");

    // The run ends by itself (bounded: 12 s of load, a 30 s deadline).
    let status = tokio::task::spawn_blocking(move || run.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "the run passes");
    // Up to 5 s for the last scrapes to land in the TSDB.
    let mut accepted = Vec::new();
    for _ in 0..50 {
        accepted = query(
            &prom,
            "max_over_time(batchproof_submissions_total{job=\"run\",outcome=\"accepted\"}[5m])",
        )
        .await;
        if accepted.first().is_some_and(|s| value(s) > 0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let series = |name: &str| {
        let prom = prom.clone();
        let q = format!("max_over_time({name}[5m])");
        async move { query(&prom, &q).await }
    };
    let e2e = series("batchproof_e2e_seconds_count").await;
    let finished = series("batchproof_runs_finished_total").await;
    let lag = series("batchproof_schedule_lag_seconds_bucket").await;
    let mock_requests = series("batchproof_mock_requests_total{job=\"mock\"}").await;
    let mock_created = series("batchproof_mock_runs_created").await;
    for c in [&mut mock, &mut prometheus] {
        let _ = c.kill();
        let _ = c.wait();
    }

    assert!(
        accepted.first().is_some_and(|s| value(s) > 0.0),
        "accepted submissions: {accepted:?}"
    );
    assert!(e2e.first().is_some_and(|s| value(s) > 0.0), "{e2e:?}");
    assert!(
        finished
            .iter()
            .any(|s| s["metric"]["status"] == "PROCESSED"),
        "{finished:?}"
    );
    assert!(lag.len() > 5, "histogram buckets: {lag:?}");
    assert!(
        mock_requests
            .iter()
            .any(|s| s["metric"]["endpoint"] == "batch" && value(s) > 0.0),
        "{mock_requests:?}"
    );
    assert!(
        mock_created.first().is_some_and(|s| value(s) > 0.0),
        "{mock_created:?}"
    );
}

#[test]
fn the_grafana_dashboard_queries_series_batchproof_serves() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/grafana-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let live = std::fs::read_to_string(root.join("src/run/live.rs")).unwrap()
        + &std::fs::read_to_string(root.join("src/mock/http/admin.rs")).unwrap();
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6);
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let name = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .find(|w| w.starts_with("batchproof_"))
                .unwrap_or_else(|| panic!("{expr} queries no batchproof series"));
            let base = ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .fold(name.to_string(), |n, s| n.trim_end_matches(s).to_string());
            assert!(
                live.contains(&format!("\"{base}\"")),
                "{expr}: `{base}` is not served"
            );
        }
    }
}
