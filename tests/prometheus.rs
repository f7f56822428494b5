//! Live metrics, scraped by a real Prometheus server (Debian's `prometheus` package;
//! `.ci/run` installs it): a run serves `/metrics` while it runs (`--metrics-listen`), the
//! mock serves `/_mock/metrics`, and Prometheus's own HTTP API returns their series. Two
//! shards are scraped through the shipped scrape job, and the shipped dashboard's queries
//! are evaluated on them.
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

/// The shipped plain-Prometheus job (deploy/prometheus/scrape-config.yaml) with its pod
/// discovery swapped for a file of targets carrying the same `__meta_kubernetes_*`
/// labels, so a real Prometheus applies the shipped relabelling: the two shards are kept,
/// a merge pod and a second port of a shard are dropped.
fn shipped_job(dir: &std::path::Path, shards: &[String], decoy: &str) -> String {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shipped =
        std::fs::read_to_string(root.join("deploy/prometheus/scrape-config.yaml")).unwrap();
    let discovery = "    kubernetes_sd_configs:\n      - role: pod\n";
    assert!(shipped.contains(discovery), "{shipped}");
    let pod = |addr: &str, name: &str, stage: &str, port: &str| {
        serde_json::json!({"targets": [addr], "labels": {
            "__meta_kubernetes_pod_label_app": "batchproof",
            "__meta_kubernetes_pod_label_stage": stage,
            "__meta_kubernetes_pod_container_port_name": port,
            "__meta_kubernetes_namespace": "bulk",
            "__meta_kubernetes_pod_name": name}})
    };
    let mut targets: Vec<serde_json::Value> = shards
        .iter()
        .enumerate()
        .map(|(i, a)| pod(a, &format!("batchproof-shards-{i}-x"), "shards", "metrics"))
        .collect();
    targets.push(pod(decoy, "batchproof-merge-x", "merge", "metrics"));
    targets.push(pod(decoy, "batchproof-shards-0-x", "shards", "debug"));
    let file = dir.join("pods.json");
    std::fs::write(&file, serde_json::to_string(&targets).unwrap()).unwrap();
    shipped
        .replace(
            discovery,
            &format!(
                "    file_sd_configs:\n      - files: ['{}']\n",
                file.display()
            ),
        )
        .replace("scrape_interval: 5s", "scrape_interval: 1s")
        .replace("scrape_configs:\n", "")
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_two_shards_through_the_shipped_job_and_the_mock() {
    let prom_bin = prometheus();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exe = env!("CARGO_BIN_EXE_batchproof");

    // The mock, standalone, and a ~12 s run against it as two shards with live metrics.
    let mut mock_cmd = Command::new(exe);
    mock_cmd.args(["mock", "--bind", "127.0.0.1:0", "--time-scale", "100"]);
    // The fast, unthrottled profile: this is load, not a client under test.
    mock_cmd
        .arg("--profile")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/default.yaml"));
    let (mut mock, line) = spawn_until(mock_cmd, "batchproof mock serving");
    let mock_addr = address(&line);
    std::fs::write(
        d.join("live.yaml"),
        "name: live\nload:\n  phases: [{hold: 12s, rate: 2}]\n  inputs_per_batch: 50\nresults:\n  via: polling\n  polling: {interval: 500ms}\n  deadline: 30s\n",
    )
    .unwrap();
    let (mut runs, mut run_addrs) = (Vec::new(), Vec::new());
    for shard in ["0/2", "1/2"] {
        let mut run_cmd = Command::new(exe);
        run_cmd
            .args([
                "run",
                "live.yaml",
                "--target",
                &format!("http://{mock_addr}"),
            ])
            .args([
                "--yes",
                "--metrics-listen",
                "127.0.0.1:0",
                "--progress",
                "none",
            ])
            .args(["--shard", shard, "--out", &format!("shard-{}", &shard[..1])])
            .current_dir(d)
            .env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN);
        let (run, line) = spawn_until(run_cmd, "metrics on http://");
        runs.push(run);
        run_addrs.push(address(&line));
    }

    // Prometheus, scraping the shards through the shipped job and the mock, every second.
    let prom = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 900ms}}\nscrape_configs:\n{}  - job_name: mock\n    metrics_path: /_mock/metrics\n    static_configs: [{{targets: ['{mock_addr}']}}]\n",
            shipped_job(d, &run_addrs, &mock_addr)
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

    // Both shards are scraped while they run: their series carry shard and shards. A
    // rate needs samples: wait (up to 10 s) for three scrapes of each.
    let scraped_q = "count_over_time(batchproof_submissions_total{job=\"batchproof-shards\",outcome=\"accepted\"}[1m])";
    for _ in 0..100 {
        let scraped = query(&prom, scraped_q).await;
        if scraped.len() == 2 && scraped.iter().all(|s| value(s) >= 3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let accepted_q = "max_over_time(batchproof_submissions_total{job=\"batchproof-shards\",outcome=\"accepted\"}[5m])";
    let accepted = query(&prom, accepted_q).await;
    let targets = query(&prom, "up{job=\"batchproof-shards\"}").await;
    // The dashboard's queries, evaluated while the shards run.
    let dashboard = dashboard_queries(&prom).await;
    for mut run in runs {
        let status = tokio::task::spawn_blocking(move || run.wait().unwrap())
            .await
            .unwrap();
        assert_eq!(status.code(), Some(0), "each shard passes");
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

    let mut pods: Vec<String> = targets
        .iter()
        .map(|t| t["metric"]["pod"].as_str().unwrap_or("?").to_string())
        .collect();
    pods.sort();
    assert_eq!(
        pods,
        ["batchproof-shards-0-x", "batchproof-shards-1-x"],
        "the shipped job keeps the shard pods' metrics ports alone: {targets:?}"
    );
    let mut shards: Vec<(&str, &str)> = accepted
        .iter()
        .filter(|s| value(s) > 0.0)
        .map(|s| {
            let m = &s["metric"];
            (
                m["shard"].as_str().unwrap_or("-"),
                m["shards"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    shards.sort();
    assert_eq!(shards, [("0", "2"), ("1", "2")], "{accepted:?}");
    for (expr, result) in &dashboard {
        let by_shard = expr.contains("by (shard)");
        for s in result {
            assert_eq!(
                s["metric"].get("shard").is_some(),
                by_shard,
                "{expr}: a series per shard only where the panel splits by shard: {s}"
            );
        }
        if expr.contains("submissions_total") {
            let n = if by_shard { 2 } else { 1 };
            assert!(result.len() >= n, "{expr}: {result:?}");
        }
    }
    assert!(e2e.iter().any(|s| value(s) > 0.0), "{e2e:?}");
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

/// Every query of deploy/grafana-dashboard.json, with its result now.
async fn dashboard_queries(prom: &str) -> Vec<(String, Vec<serde_json::Value>)> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/grafana-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().unwrap() {
            // Grafana's "All" of the namespace and scrape-job filters.
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$namespace", ".*")
                .replace("$job", ".*");
            let result = query(prom, &expr).await;
            out.push((expr, result));
        }
    }
    out
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
            // N shards serve N series of each: a panel sums them (or splits by shard).
            assert!(
                expr.starts_with("sum") || expr.starts_with("histogram_quantile("),
                "{expr}: not summed across shards"
            );
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
