//! Every defect profile in mock/defects/ breaks exactly the contract point it documents,
//! and nothing else; the conforming default profile breaks none, under each API version.
//!
//! The probe below is a small, independent client-side check of the contract points the
//! defects touch. It talks to the mock only over HTTP and through a real webhook receiver.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use batchproof::api::ApiVersion;
use batchproof::api::error::ErrorShape;
use batchproof::mock::Profile;
use batchproof::mock::profile::DEFAULT_WORKFLOW;
use batchproof::webhook::signing::{self, Rejection};
use common::*;
use serde_json::{Value, json};

const N: usize = 20;

fn rank(s: &str) -> u8 {
    match s {
        "PENDING" => 0,
        "PROCESSING" | "CANCELLING" => 1,
        "NEEDS_REVIEW" => 2,
        _ => 3,
    }
}

async fn submit_patiently(api: &Api, body: &Value) -> Resp {
    // A well-behaved client honours 429 + Retry-After.
    for _ in 0..5 {
        let r = api.post("/workflow_runs/batch", body).await;
        if r.status != 429 {
            return r;
        }
        let wait: u64 = r
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    panic!("still throttled after 5 tries");
}

/// Runs the probe against a mock with `profile` under `version`; returns the contract
/// points it saw broken.
async fn probe(profile: Profile, version: &str) -> BTreeSet<&'static str> {
    let mut broken = BTreeSet::new();
    let mock = start(profile).await;
    let api = Api::new(&mock.url(), version);
    let v: ApiVersion = version.parse().unwrap();
    let mut errors: Vec<Value> = Vec::new();
    let capture = Capture::start(0).await;
    let secret = register(&api, &capture.url(), version).await;

    // The main batch: runs, list and webhooks.
    let r = submit_patiently(&api, &api.batch_body(N, "main")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let batch = r.body["batchId"].as_str().unwrap().to_string();

    // Poll while processing (and a while after) to catch statuses going backwards.
    let mut max_rank: HashMap<String, u8> = HashMap::new();
    let mut all_terminal_at: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = api
            .get(&format!(
                "/workflow_runs?batchId={batch}&maxPageSize=1000&sortBy=createdAt&sortDir=asc"
            ))
            .await;
        let key = if api.is_legacy() {
            "workflowRuns"
        } else {
            "data"
        };
        let runs = page.body[key].as_array().cloned().unwrap_or_default();
        for run in &runs {
            let id = run["id"].as_str().unwrap().to_string();
            let r = rank(run["status"].as_str().unwrap());
            let m = max_rank.entry(id).or_insert(0);
            if r < *m {
                broken.insert("runs.forward_only");
            }
            *m = (*m).max(r);
        }
        let terminal = runs
            .iter()
            .all(|r| rank(r["status"].as_str().unwrap()) >= 2);
        if terminal && all_terminal_at.is_none() {
            all_terminal_at = Some(Instant::now());
        }
        if all_terminal_at.is_some_and(|t| t.elapsed() > Duration::from_millis(1500))
            || Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // runs.count, runs.batch_id, runs.priority: one page holds them all.
    let page = api
        .get(&format!("/workflow_runs?batchId={batch}&maxPageSize=1000"))
        .await;
    let key = if api.is_legacy() {
        "workflowRuns"
    } else {
        "data"
    };
    let runs = page.body[key].as_array().cloned().unwrap_or_default();
    let mut inputs_seen = Vec::new();
    let mut metadata_by_run: HashMap<String, Value> = HashMap::new();
    for run in &runs {
        let id = run["id"].as_str().unwrap();
        let full = api.get(&format!("/workflow_runs/{id}")).await;
        let full = api.run_of(&full.body).clone();
        if full["batchId"] != batch.as_str() || run["batchId"] != batch.as_str() {
            broken.insert("runs.batch_id");
        }
        if full["priority"] != 90 {
            broken.insert("runs.priority");
        }
        inputs_seen.push(full["metadata"]["i"].as_u64().unwrap_or(u64::MAX));
        metadata_by_run.insert(id.to_string(), full["metadata"].clone());
    }
    inputs_seen.sort();
    if inputs_seen != (0..N as u64).collect::<Vec<_>>() {
        broken.insert("runs.count");
    }

    // list.pagination: small pages are disjoint and complete.
    let paged = api.list_all(&batch, 3).await;
    let ids: Vec<&str> = paged.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    if unique.len() != ids.len() || unique.len() != runs.len() {
        broken.insert("list.pagination");
    }

    // Webhooks for the main batch.
    let deliveries = capture.wait_for(runs.len(), Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deliveries = capture
        .all()
        .into_iter()
        .chain(deliveries.into_iter().take(0))
        .collect::<Vec<_>>();
    let now = chrono::Utc::now().timestamp();
    let mut terminal_events: HashMap<String, HashSet<String>> = HashMap::new();
    for d in &deliveries {
        match signing::verify(
            &secret,
            d.timestamp.as_deref(),
            d.signature.as_deref(),
            &d.body,
            now,
            300,
        ) {
            Ok(_) => {}
            Err(Rejection::Stale) | Err(Rejection::FutureDated) => {
                broken.insert("webhook.signature_age");
            }
            Err(_) => {
                broken.insert("webhook.signature");
            }
        }
        let p = &d.json["payload"];
        let run_id = p["id"].as_str().unwrap_or("").to_string();
        if p["batchId"] != batch.as_str() {
            broken.insert("webhook.batch_id");
        }
        match metadata_by_run.get(&run_id) {
            Some(m) if &p["metadata"] == m => {}
            _ => {
                broken.insert("webhook.metadata");
            }
        }
        terminal_events
            .entry(run_id)
            .or_default()
            .insert(d.json["eventId"].as_str().unwrap_or("").to_string());
    }
    for run in &runs {
        let id = run["id"].as_str().unwrap();
        if terminal_events.get(id).map(|e| e.len()) != Some(1) {
            broken.insert("webhook.exactly_one_terminal");
        }
    }

    // runs.priority_order: with processing paused, a single run (priority 50) submitted
    // after a batch larger than the worker pool must start before the batch's pending runs.
    let http = reqwest::Client::new();
    http.post(format!("{}/_mock/pause", mock.url()))
        .send()
        .await
        .unwrap();
    let r = submit_patiently(&api, &api.batch_body(100, "prio")).await;
    let prio_batch = r.body["batchId"].as_str().unwrap().to_string();
    let single = if api.is_legacy() {
        api.post(
            "/workflow_runs",
            &json!({"workflowId": DEFAULT_WORKFLOW, "files": [{"fileUrl": "https://x/s.pdf"}]}),
        )
        .await
    } else {
        api.post(
            "/workflow_runs",
            &json!({"workflow": {"id": DEFAULT_WORKFLOW}, "file": {"url": "https://x/s.pdf"}}),
        )
        .await
    };
    assert_eq!(single.status, 200, "{}", single.body);
    let single_id = if api.is_legacy() {
        single.body["workflowRuns"][0]["id"].clone()
    } else {
        single.body["id"].clone()
    };
    http.post(format!("{}/_mock/resume", mock.url()))
        .send()
        .await
        .unwrap();
    let prio_runs = api
        .wait_terminal(&prio_batch, Duration::from_secs(30))
        .await;
    let s = api
        .get(&format!("/workflow_runs/{}", single_id.as_str().unwrap()))
        .await;
    let single_start = api.run_of(&s.body)["startTime"]
        .as_str()
        .unwrap()
        .to_string();
    let before = prio_runs
        .iter()
        .filter(|r| r["startTime"].as_str().unwrap() < single_start.as_str())
        .count();
    if before >= 64 {
        broken.insert("runs.priority_order");
    }

    // Size limits, version and auth probes; their error bodies feed error.shape.
    let mut zero = api.batch_body(1, "zero");
    zero["inputs"] = json!([]);
    let r = api.post("/workflow_runs/batch", &zero).await;
    if r.status != 400 {
        broken.insert("batch.min_inputs");
    } else {
        errors.push(r.body);
    }
    let r = api
        .post("/workflow_runs/batch", &api.batch_body(1001, "big"))
        .await;
    if r.status != 400 {
        broken.insert("batch.max_inputs");
    } else {
        errors.push(r.body.clone());
    }
    let mut no_version = Api::new(&mock.url(), version);
    no_version.version = None;
    let r = no_version.get("/workflow_runs").await;
    if r.status != 400 {
        broken.insert("version.missing");
    }
    let mut anon = Api::new(&mock.url(), version);
    anon.token = None;
    let r = anon.get("/workflow_runs").await;
    if r.status != 401 {
        broken.insert("auth.missing");
    } else {
        errors.push(r.body);
    }
    anon.token = Some("sk_not_a_key".into());
    let r = anon.get("/workflow_runs").await;
    if r.status != 401 {
        broken.insert("auth.invalid");
    } else {
        errors.push(r.body);
    }
    let r = api.get("/workflow_runs/workflow_run_does_not_exist").await;
    errors.push(r.body);
    for e in &errors {
        if ErrorShape::for_version(v).check(e).is_err() {
            broken.insert("error.shape");
        }
    }

    // batch.rapid_succession: three batches back to back are all accepted.
    for i in 0..3 {
        let r = api
            .post(
                "/workflow_runs/batch",
                &api.batch_body(1, &format!("rapid{i}")),
            )
            .await;
        if r.status != 200 {
            broken.insert("batch.rapid_succession");
        }
    }
    mock.shutdown().await;
    broken
}

fn defect(name: &str) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("mock/defects")
        .join(format!("{name}.yaml"));
    Profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

async fn assert_breaks(name: &str, expected: &[&'static str]) {
    let got = probe(defect(name), V2026).await;
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(got, want, "defect `{name}` should break exactly {want:?}");
}

async fn conforming(version: &str) {
    let profile = Profile::load(Path::new("mock/default.yaml")).unwrap();
    assert_eq!(probe(profile, version).await, BTreeSet::new(), "{version}");
}

#[tokio::test]
async fn conforming_mock_breaks_nothing_2026() {
    conforming(V2026).await;
}

#[tokio::test]
async fn conforming_mock_breaks_nothing_2025() {
    conforming(V2025).await;
}

#[tokio::test]
async fn conforming_mock_breaks_nothing_2024() {
    conforming(V2024).await;
}

macro_rules! defect_test {
    ($name:ident, [$($rule:literal),+]) => {
        #[tokio::test]
        async fn $name() {
            assert_breaks(stringify!($name), &[$($rule),+]).await;
        }
    };
}

defect_test!(batch_priority_50, ["runs.priority", "runs.priority_order"]);
defect_test!(runs_without_batch_id, ["runs.batch_id", "webhook.batch_id"]);
defect_test!(webhook_without_batch_id, ["webhook.batch_id"]);
defect_test!(webhook_drops_metadata, ["webhook.metadata"]);
defect_test!(webhook_alters_metadata, ["webhook.metadata"]);
defect_test!(accepts_1001_inputs, ["batch.max_inputs"]);
defect_test!(accepts_0_inputs, ["batch.min_inputs"]);
defect_test!(accepts_missing_version, ["version.missing"]);
defect_test!(wrong_error_shape, ["error.shape"]);
defect_test!(extra_run_per_batch, ["runs.count"]);
defect_test!(lost_run_per_batch, ["runs.count"]);
defect_test!(repeat_across_pages, ["list.pagination"]);
defect_test!(wrong_signature, ["webhook.signature"]);
defect_test!(stale_signature, ["webhook.signature_age"]);
defect_test!(missing_terminal_webhook, ["webhook.exactly_one_terminal"]);
defect_test!(status_regression, ["runs.forward_only"]);
defect_test!(auth_not_enforced, ["auth.missing", "auth.invalid"]);
defect_test!(throttles_rapid_batches, ["batch.rapid_succession"]);
defect_test!(ignores_priority, ["runs.priority_order"]);

#[test]
fn every_defect_file_has_a_test_and_loads() {
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/defects.rs"))
            .unwrap();
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/defects")).unwrap()
    {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            src.contains(&format!("defect_test!({name},")),
            "mock/defects/{name}.yaml has no test"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# Breaks "),
            "{name}: document the point it breaks on the first line"
        );
    }
}

#[test]
fn every_profile_loads_and_unknown_keys_are_located() {
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("mock")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "time_scale: 10\nprocessing:\n  wrokers: 4\n").unwrap();
    let e = Profile::load(&bad).unwrap_err();
    assert_eq!((e.line, e.column), (Some(3), Some(3)), "{e}");
    assert!(e.to_string().contains("did you mean `workers`"), "{e}");
}
