//! Mock figures (issue: the mock): batches of 1,000 inputs accepted per second and webhooks
//! delivered per second on loopback, each next to a zero-work reference measured in the
//! same run (the machine is shared and noisy, so ratios are what to compare); and the mock
//! process's resident memory after 200 and after 2,000 batches of 1,000 inputs at a high
//! time scale, which must plateau (finished runs are evicted).
//!
//!   cargo bench --bench mock            (about a minute or two on 2 cores)

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde_json::{Value, json};

const CONCURRENCY: usize = 8;

fn body(tag: usize) -> Vec<u8> {
    let inputs: Vec<Value> = (0..1000)
        .map(|i| json!({"file": {"url": format!("https://files.example.test/{tag}/{i}.pdf")}, "metadata": {"i": i, "tag": tag}}))
        .collect();
    serde_json::to_vec(&json!({"workflow": {"id": "workflow_batchproof_demo"}, "inputs": inputs}))
        .unwrap()
}

async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// Posts `n` batch bodies at CONCURRENCY to `url`; returns batches per second.
async fn post_batches(url: &str, bodies: &Arc<Vec<Vec<u8>>>, n: usize) -> f64 {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, next, bodies, url) = (
            client.clone(),
            next.clone(),
            bodies.clone(),
            url.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return;
                }
                let r = client
                    .post(format!("{url}/workflow_runs/batch"))
                    .header("authorization", "Bearer sk_batchproof_local")
                    .header("x-extend-api-version", "2026-02-09")
                    .header("content-type", "application/json")
                    .body(bodies[i % bodies.len()].clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct MockProcess {
    child: Child,
    url: String,
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_mock(profile: &str) -> MockProcess {
    let dir = std::env::temp_dir().join(format!("batchproof-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("profile-{}.yaml", profile.len()));
    std::fs::write(&path, profile).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args([
            "mock",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--profile",
            path.to_str().unwrap(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{url}/_mock/state")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    MockProcess { child, url }
}

async fn state(url: &str) -> Value {
    reqwest::get(format!("{url}/_mock/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until nothing is queued or processing.
async fn drained(url: &str) {
    loop {
        let s = state(url).await;
        let busy = s["runs"]["byStatus"]["PENDING"].as_u64().unwrap()
            + s["runs"]["byStatus"]["PROCESSING"].as_u64().unwrap();
        if busy == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
    let bodies = Arc::new((0..16).map(body).collect::<Vec<_>>());
    println!(
        "batch body: {} KiB, {} inputs; concurrency {CONCURRENCY}",
        bodies[0].len() / 1024,
        1000
    );

    // 1. Batch acceptance, against a zero-work endpoint that only reads the body.
    let zero = serve(Router::new().route(
        "/workflow_runs/batch",
        post(|b: Bytes| async move { format!("{{\"batchId\":\"batch_{}\"}}", b.len()) }),
    ))
    .await;
    let reference = post_batches(&zero, &bodies, 200).await;
    let quiet = "time_scale: 100000\nprocessing: {workers: 1024, duration: {dist: fixed, value: 1s}}\nretention: {max_finished_runs: 100000}\n";
    let mock = start_mock(quiet).await;
    let accepted = post_batches(&mock.url, &bodies, 200).await;
    println!(
        "batches accepted     {accepted:8.1} /s   zero-work reference {reference:8.1} /s   ratio {:.2}",
        accepted / reference
    );

    // 2. Memory: after 200 batches (above) and after 2,000, once processing has drained.
    drained(&mock.url).await;
    let pid = mock.child.id();
    let rss_200 = rss_kib(pid);
    let s = state(&mock.url).await;
    println!(
        "RSS after   200 batches: {:7.1} MiB  (live runs {}, evicted {})",
        rss_200 as f64 / 1024.0,
        s["runs"]["total"],
        s["runs"]["evicted"]
    );
    let mut mid = 0;
    for round in 1..10 {
        post_batches(&mock.url, &bodies, 200).await;
        drained(&mock.url).await;
        if round == 4 {
            mid = rss_kib(pid);
        }
    }
    let rss_2000 = rss_kib(pid);
    let s = state(&mock.url).await;
    println!("RSS after 1,000 batches: {:7.1} MiB", mid as f64 / 1024.0);
    println!(
        "RSS after 2,000 batches: {:7.1} MiB  (live runs {}, evicted {}, created {})",
        rss_2000 as f64 / 1024.0,
        s["runs"]["total"],
        s["runs"]["evicted"],
        s["runs"]["created"]
    );
    println!(
        "RSS 2,000 / 200 batches: {:.2}  (plateau: close to 1 once eviction holds the live set at max_finished_runs)",
        rss_2000 as f64 / rss_200.max(1) as f64
    );
    drop(mock);

    // 3. Webhooks delivered per second, against raw POSTs of a payload of the same size.
    let received = Arc::new(AtomicU64::new(0));
    let received_bytes = Arc::new(AtomicU64::new(0));
    let sink = {
        let (received, received_bytes) = (received.clone(), received_bytes.clone());
        serve(Router::new().route(
            "/hook",
            post(move |b: Bytes| {
                let (received, received_bytes) = (received.clone(), received_bytes.clone());
                async move {
                    received.fetch_add(1, Ordering::Relaxed);
                    received_bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                    "ok"
                }
            }),
        ))
        .await
    };
    let profile = format!(
        "time_scale: 100000\nprocessing: {{workers: 1024, duration: {{dist: fixed, value: 1s}}}}\nwebhooks:\n  concurrency: 64\n  endpoints: [{{url: \"{sink}/hook\", secret: wss_bench, api_version: 2026-02-09}}]\n"
    );
    let mock = start_mock(&profile).await;
    let batches = 20;
    post_batches(&mock.url, &bodies, 1).await;
    while received.load(Ordering::Relaxed) < 1000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The reference posts bodies of the size the mock's deliveries really have, measured
    // on the warm-up batch.
    let payload_size =
        (received_bytes.load(Ordering::Relaxed) / received.load(Ordering::Relaxed).max(1)) as usize;
    received.store(0, Ordering::Relaxed);
    let start = Instant::now();
    post_batches(&mock.url, &bodies, batches).await;
    let want = (batches * 1000) as u64;
    let cap = Duration::from_secs(300);
    let mut capped = false;
    while received.load(Ordering::Relaxed) < want {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if start.elapsed() > cap {
            capped = true;
            break;
        }
    }
    let got = received.load(Ordering::Relaxed);
    let delivered = got as f64 / start.elapsed().as_secs_f64();
    if capped {
        println!(
            "webhooks: the loop hit its {}s cap with {got} of {want} deliveries in; the rate below covers only those",
            cap.as_secs()
        );
    }
    drop(mock);
    let client = reqwest::Client::new();
    let payload = Arc::new(vec![b'x'; payload_size]);
    let next = Arc::new(AtomicU64::new(0));
    let n = 20_000u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (client, next, payload, sink) =
            (client.clone(), next.clone(), payload.clone(), sink.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                client
                    .post(format!("{sink}/hook"))
                    .body(payload.as_ref().clone())
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let raw = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "webhooks delivered   {delivered:8.0} /s   raw POST reference  {raw:8.0} /s   ratio {:.2}  (signed, rendered, logged, at-least-once; reference: unsigned POSTs of the measured {payload_size}-byte delivery size, concurrency 64 as the mock's)",
        delivered / raw
    );
}
