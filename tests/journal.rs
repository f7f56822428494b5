//! A run killed with SIGKILL mid-load loses nothing it saw: its journal gives the partial
//! report (`report --from-journal`), and `resume` collects the rest of the accepted
//! batches' results by polling, without submitting anything again — proven input by input
//! against the mock, which runs in its own process and outlives the killed run, and
//! request by request through a counting proxy written here. A job the kill cut short is
//! never called passed: its report lists the batches never sent, and its credits, webhook
//! counts and latencies include what was seen before the kill.

mod common;
use common::{free_port, wait_for_lines};

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

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

fn start_mock(time_scale: &str) -> Mock {
    let port = free_port();
    let mut child = bin()
        .args([
            "mock",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--time-scale",
            time_scale,
        ])
        // The fast, unthrottled profile: this is load, not a client under test.
        .arg("--profile")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/default.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&mut child, "serving", 1, Duration::from_secs(60));
    Mock(child, format!("http://127.0.0.1:{port}"))
}

/// The mock's admin answer, read strictly: a failed request, a non-2xx status or a body
/// that is not JSON fails the test (a lenient read would turn them into `Null`, and
/// `Null == Null` passes).
async fn admin(mock: &Mock, path: &str) -> Value {
    let http = reqwest::Client::new();
    let r = if let Some(path) = path.strip_prefix("GET ") {
        http.get(format!("{}{path}", mock.1)).send().await
    } else {
        http.post(format!("{}{path}", mock.1)).send().await
    };
    let r = r.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
}

/// A count in an admin answer: a number, or the test fails.
fn count(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("`{pointer}` is not a count in {v}"))
}

/// Requests by "METHOD /path" (ids in paths as `{id}`), as a proxy in front of the mock
/// counted them: what the harness sent, seen from outside it.
type Counts = BTreeMap<String, u64>;

struct Proxy {
    url: String,
    counts: Arc<Mutex<Counts>>,
}

impl Proxy {
    fn counts(&self) -> Counts {
        self.counts.lock().unwrap().clone()
    }
}

/// A reverse proxy to `upstream` that counts every request it receives before it forwards
/// it, even one whose body never arrives whole.
async fn start_proxy(upstream: &str) -> Proxy {
    let counts = Arc::new(Mutex::new(Counts::new()));
    let (c, upstream, http) = (counts.clone(), upstream.to_string(), reqwest::Client::new());
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (c, upstream, http) = (c.clone(), upstream.clone(), http.clone());
        async move { forward(req, &c, &upstream, &http).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Proxy { url, counts }
}

fn route(path: &str) -> String {
    if path.starts_with("/webhook_endpoints/") {
        return "/webhook_endpoints/{id}".into();
    }
    match path.strip_prefix("/workflow_runs/") {
        Some(rest) if rest != "batch" => match rest.split_once('/') {
            Some((_, tail)) => format!("/workflow_runs/{{id}}/{tail}"),
            None => "/workflow_runs/{id}".to_string(),
        },
        _ => path.to_string(),
    }
}

async fn forward(
    req: axum::extract::Request,
    counts: &Mutex<Counts>,
    upstream: &str,
    http: &reqwest::Client,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    *counts
        .lock()
        .unwrap()
        .entry(format!("{method} {}", route(req.uri().path())))
        .or_default() += 1;
    let headers = req.headers().clone();
    let Ok(body) = axum::body::to_bytes(req.into_body(), usize::MAX).await else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let mut out = http
        .request(method, format!("{upstream}{target}"))
        .body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => return (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let (status, headers) = (answer.status(), answer.headers().clone());
    let mut back = axum::response::Response::new(axum::body::Body::from(
        answer.bytes().await.unwrap_or_default(),
    ));
    *back.status_mut() = status;
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" {
            back.headers_mut().append(k, v.clone());
        }
    }
    back
}

/// What `later` counted beyond `earlier`, by key.
fn since(earlier: &Counts, later: &Counts) -> Counts {
    later
        .iter()
        .map(|(k, n)| (k.clone(), n - earlier.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The journal's records: accepted batches (index → batchId), results by (batch, input)
/// with the run id and channel of each line, the credits journaled, and the last webhook
/// counters written.
#[derive(Default)]
struct Journal {
    scheduled: BTreeSet<u64>,
    accepted: BTreeMap<u64, String>,
    results: BTreeMap<(u64, u64), Vec<(String, String)>>,
    credits: f64,
    webhooks: Option<Value>,
}

fn read_journal(dir: &std::path::Path) -> Journal {
    let text = std::fs::read_to_string(dir.join("journal.txt")).unwrap();
    let mut j = Journal::default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.splitn(8, ' ').collect();
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
            "R" => {
                j.credits += f.get(7).map_or(0.0, |c| c.parse::<f64>().unwrap());
                j.results
                    .entry((f[1].parse().unwrap(), f[2].parse().unwrap()))
                    .or_default()
                    .push((f[6].to_string(), f[3].to_string()))
            }
            "C" => j.credits += f[3].parse::<f64>().unwrap(),
            "W" => j.webhooks = Some(serde_json::from_str(&line[2..]).unwrap()),
            // The webhook endpoint the run registered, and its removal.
            "E" | "X" => assert!(f[1].starts_with("wh_"), "{line}"),
            other => panic!("unexpected journal line {other:?}: {line}"),
        }
    }
    j
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_load_is_reported_from_its_journal_and_resumed_without_resubmitting() {
    let mock = start_mock("50");
    // The harness talks to the mock only through this proxy, which counts every request.
    let proxy = start_proxy(&mock.1).await;
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
            &proxy.url,
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
    // The whole job (30 s at 10 batches/s) was scheduled: what the kill left unsent counts.
    let unsent = 300 - before.scheduled.len() as u64;
    assert_eq!(report.batches.scheduled, 300);
    assert_eq!(report.generator.unsent_batches, unsent);
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
    let created = count(&admin(&mock, "GET /_mock/state").await, "/batches/created");
    let at_kill = proxy.counts();
    let sent = at_kill
        .get("POST /workflow_runs/batch")
        .copied()
        .unwrap_or(0);
    assert!(
        sent >= created && created >= before.accepted.len() as u64,
        "{sent} batch requests, {created} batches created, {} accepted",
        before.accepted.len()
    );
    admin(&mock, "/_mock/resume").await;
    let resumed = bin()
        .args(["resume", run_dir.to_str().unwrap()])
        .env("EXTEND_API_KEY", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    // Collected in full, yet not passed: most of the job was never sent.
    assert_eq!(
        resumed.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        count(&admin(&mock, "GET /_mock/state").await, "/batches/created"),
        created,
        "the resume submitted nothing"
    );
    // Every request the resume made, by method and path: reads only, and the removal of
    // the webhook endpoint the killed run left registered.
    let by_resume = since(&at_kill, &proxy.counts());
    assert!(
        by_resume.keys().all(|k| k == "GET /workflow_runs"
            || k == "GET /workflow_runs/{id}"
            || k == "DELETE /webhook_endpoints/{id}"),
        "{by_resume:?}"
    );
    assert_eq!(
        by_resume.get("DELETE /webhook_endpoints/{id}"),
        Some(&1),
        "{by_resume:?}"
    );
    let endpoints = admin(&mock, "GET /_mock/endpoints").await;
    assert_eq!(
        endpoints.as_array().map(Vec::len),
        Some(0),
        "the killed run's endpoint is gone: {endpoints}"
    );
    assert!(stdout.contains("was removed"), "{stdout}");
    assert!(
        by_resume.get("GET /workflow_runs").copied().unwrap_or(0) > 0,
        "{by_resume:?}"
    );
    let report = batchproof::report::json::read(&run_dir.join("report.json")).unwrap();
    assert!(report.complete);
    assert!(report.resumed.is_some());
    assert!(!report.verdict.passed);
    assert_eq!(report.generator.unsent_batches, unsent);
    assert!(
        report.verdict.reasons.iter().any(|r| r.code == "unsent"),
        "{:?}",
        report.verdict.reasons
    );
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
            // NONCE:BATCH:INDEX — the run's own nonce, then where the input sits.
            let mut parts = tag.rsplitn(3, ':');
            let (i, b) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(
                parts.next().is_some_and(|n| !n.is_empty()),
                "tag {tag} has no nonce"
            );
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

/// The last webhook counters the journal holds (`W` lines), as the dead run counted them.
fn journaled_webhooks(dir: &std::path::Path) -> Option<Value> {
    read_journal(dir).webhooks
}

/// Issue 22, point 5: a job of 8 batches killed after its first 6 were sent. Its resumed
/// report says it was resumed, lists batches #6 and #7 as never sent and is not passed in
/// any format, and its credits, webhook counts and latencies include everything the dead
/// run saw — checked against what the mock says it delivered and credited.
#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_job_never_fully_sent_is_not_passed_and_counts_what_came_before_the_kill() {
    let mock = start_mock("10");
    let dir = tempfile::tempdir().unwrap();
    let hook = free_port();
    let scenario = dir.path().join("cut.yaml");
    // Six batches in the first 2.5 s, then #6 at 22.75 s and #7 at 43.25 s: the kill
    // comes in between.
    std::fs::write(
        &scenario,
        format!(
            "name: cut\nload:\n  phases: [{{hold: 2750ms, rate: 2}}, {{hold: 40s, rate: 0.025}}, {{hold: 1s, rate: 1}}]\n  inputs_per_batch: 100\n  seed: 7\ninputs:\n  metadata: {{n: \"{{{{random:1-9}}}}\"}}\nresults:\n  via: webhooks\n  webhooks: {{listen: \"127.0.0.1:{hook}\", public_url: \"http://127.0.0.1:{hook}/\"}}\n  deadline: 60s\nthresholds: [\"runs.missing == 0\"]\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("reports");
    let mut run = bin()
        .args(["run", scenario.to_str().unwrap(), "--target", &mock.1])
        .args([
            "--yes",
            "--progress",
            "none",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("EXTEND_API_KEY", TOKEN)
        .env("RUST_LOG", "info,batchproof::load=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&mut run, "batch accepted", 6, Duration::from_secs(60));
    // Hold the queue (some runs stay unfinished), let the deliveries already due arrive,
    // and kill once the journal holds the webhook counts the mock delivered.
    admin(&mock, "/_mock/pause").await;
    let run_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let until = Instant::now() + Duration::from_secs(30);
    let delivered_at_kill = loop {
        let state = admin(&mock, "GET /_mock/state").await;
        let delivered = count(&state, "/deliveries/delivered");
        let journaled = journaled_webhooks(&run_dir).map(|w| count(&w, "/received"));
        if count(&state, "/deliveries/pending") == 0 && journaled == Some(delivered) {
            break delivered;
        }
        assert!(
            Instant::now() < until,
            "the journal never caught up with the mock's deliveries: {state} vs {journaled:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(delivered_at_kill > 0, "webhooks arrived before the kill");
    let before = read_journal(&run_dir);
    assert_eq!(before.scheduled, (0..6).collect(), "killed after 6 of 8");
    assert_eq!(before.accepted.len(), 6);
    assert!(before.credits > 0.0, "results journaled their credits");

    // The partial report lists the same unsent batches.
    let partial = bin()
        .args(["report", "--from-journal", run_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(partial.status.code(), Some(3));
    let report = batchproof::report::json::read(&run_dir.join("report.json")).unwrap();
    assert!(!report.complete && !report.verdict.passed);
    assert_eq!(report.batches.scheduled, 8);
    assert_eq!(report.generator.unsent_batches, 2);
    assert_eq!(report.generator.unsent_indexes, vec![6, 7]);
    assert_eq!(report.webhooks.received, delivered_at_kill);
    assert_eq!(report.runs.credits, before.credits);

    admin(&mock, "/_mock/resume").await;
    let created = count(&admin(&mock, "GET /_mock/state").await, "/runs/created");
    let resumed = bin()
        .args(["resume", run_dir.to_str().unwrap()])
        .env("EXTEND_API_KEY", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert_eq!(
        resumed.status.code(),
        Some(1),
        "not passed: {stdout}{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let state = admin(&mock, "GET /_mock/state").await;
    assert_eq!(
        count(&state, "/runs/created"),
        created,
        "nothing sent again"
    );
    assert_eq!(count(&state, "/runs/created"), 600);
    let delivered = count(&state, "/deliveries/delivered");

    let report = batchproof::report::json::read(&run_dir.join("report.json")).unwrap();
    assert!(report.complete);
    let resumed_text = report.resumed.as_deref().expect("says it was resumed");
    assert!(
        resumed_text.contains("2 batch(es) of the job were never sent")
            && resumed_text.contains("#6, #7"),
        "{resumed_text}"
    );
    assert_eq!(report.batches.scheduled, 8);
    assert_eq!(report.generator.unsent_batches, 2);
    assert_eq!(report.generator.unsent_indexes, vec![6, 7]);
    assert!(!report.verdict.passed);
    let unsent = report
        .verdict
        .reasons
        .iter()
        .find(|r| r.code == "unsent")
        .unwrap_or_else(|| panic!("{:?}", report.verdict.reasons));
    assert!(unsent.message.contains("#6, #7"), "{}", unsent.message);
    assert_eq!((report.runs.submitted, report.runs.seen), (600, 600));
    assert_eq!(report.runs.missing, 0);

    // Webhooks: what the dead run received, counted; the resume only polls.
    assert_eq!(report.webhooks.received, delivered_at_kill);
    assert_eq!(report.webhooks.verified, delivered_at_kill);
    assert_eq!(delivered, delivered_at_kill, "no receiver after the kill");
    assert_eq!(
        report.runs.by_channel["webhook_only"] + report.runs.by_channel["both"],
        before
            .results
            .values()
            .filter(|l| l.iter().any(|(_, ch)| ch == "w"))
            .count() as u64
    );
    // Latencies: the runs seen before the kill are timed; those first seen by the resume
    // finished at some unknown moment while nothing watched, so they are counted, said
    // so, and left out of the percentiles rather than timed at the resume's poll.
    assert!(report.e2e.count > 0 && report.e2e.count <= 600);
    let untimed = 600 - report.e2e.count;
    if untimed > 0 {
        let note = report.resumed.as_deref().unwrap_or_default();
        assert!(
            note.contains(&format!(
                "leave out the {untimed} runs first seen by the resume"
            )),
            "{note}"
        );
    }
    assert_eq!(report.operations["submit"].response.count, 6);

    // Credits: every run's, as the mock reports them on Get Workflow Run.
    let api = reqwest::Client::new();
    let mut credits = 0.0;
    for batch_id in before.accepted.values() {
        let page: Value = api
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
        for run in page["data"].as_array().unwrap_or_else(|| panic!("{page}")) {
            let run: Value = api
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
            credits += run["usage"]["credits"]
                .as_f64()
                .unwrap_or_else(|| panic!("no credits: {run}"));
        }
    }
    assert_eq!(report.runs.credited, 600);
    assert!(
        (report.runs.credits - credits).abs() < 1e-6,
        "{} credits reported, {credits} at the mock",
        report.runs.credits
    );
    assert!(
        before.credits < credits,
        "some were credited after the kill"
    );

    // Every format says it was not passed, and why.
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(md.lines().next().unwrap().contains("FAILED"), "{md}");
    assert!(md.contains("`unsent`") && md.contains("#6, #7"), "{md}");
    assert!(md.contains("resumed"), "{md}");
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.contains("unsent") && html.contains("#6, #7"), "{html}");
    let junit = std::fs::read_to_string(run_dir.join("report.junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let verdict = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("verdict"))
        .expect("a verdict test case");
    let failure = verdict
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap_or_else(|| panic!("{junit}"));
    assert!(
        failure
            .attribute("message")
            .unwrap_or("")
            .contains("unsent")
            || failure.text().unwrap_or("").contains("unsent"),
        "{junit}"
    );
    assert!(stdout.contains("resumed"), "{stdout}");
}
