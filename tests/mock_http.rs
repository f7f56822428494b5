//! The mock over HTTP, as a client sees it: every endpoint, each API version's shapes,
//! and every error path.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use batchproof::api::ApiVersion;
use batchproof::api::error::ErrorShape;
use batchproof::config::Dur;
use batchproof::mock::profile::{DEFAULT_WORKFLOW, MissingVersion};
use common::*;
use serde_json::{Value, json};

fn shape(v: &str) -> ErrorShape {
    ErrorShape::for_version(v.parse::<ApiVersion>().unwrap())
}

fn assert_error(r: &Resp, status: u16, version: &str, needle: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    shape(version)
        .check(&r.body)
        .unwrap_or_else(|e| panic!("{version}: {e}: {}", r.body));
    assert!(
        r.body.to_string().contains(needle),
        "expected `{needle}` in {}",
        r.body
    );
    assert!(r.headers.get("x-extend-request-id").is_some());
}

#[tokio::test]
async fn batch_is_accepted_in_each_version_shape_with_one_pending_run_per_input() {
    let mock = start(fast_profile()).await;
    let admin = reqwest::Client::new();
    admin
        .post(format!("{}/_mock/pause", mock.url()))
        .send()
        .await
        .unwrap();
    for v in VERSIONS {
        let api = Api::new(&mock.url(), v);
        let r = api
            .post("/workflow_runs/batch", &api.batch_body(25, v))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let keys: HashSet<&str> = r
            .body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        if api.is_legacy() {
            assert_eq!(keys, HashSet::from(["success", "batchId"]), "{v}");
            assert_eq!(r.body["success"], true);
        } else {
            assert_eq!(keys, HashSet::from(["batchId"]), "{v}");
        }
        let batch_id = r.body["batchId"].as_str().unwrap();
        assert!(batch_id.starts_with("batch_"));
        let runs = api.list_all(batch_id, 7).await;
        assert_eq!(runs.len(), 25);
        let ids: HashSet<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 25, "run ids are unique");
        for run in &runs {
            assert_eq!(run["status"], "PENDING");
            assert_eq!(run["batchId"], batch_id);
            // Like the real run object, no priority field; the admin surface shows it.
            assert!(run.get("priority").is_none(), "{run}");
            let id = run["id"].as_str().unwrap();
            assert_eq!(admin_run(&mock, id).await["priority"], 90);
            // List summaries carry no metadata; Get does, exactly as sent.
            assert!(run.get("metadata").is_none());
            let full = api
                .get(&format!("/workflow_runs/{}", run["id"].as_str().unwrap()))
                .await;
            assert_eq!(full.status, 200);
            let full = api.run_of(&full.body);
            let i = full["metadata"]["i"].as_u64().unwrap();
            assert_eq!(
                full["metadata"],
                json!({"i": i, "tag": v, "nested": {"list": [i, "x"], "none": null}})
            );
        }
    }
}

#[tokio::test]
async fn priority_can_be_set_on_2026_batches_and_is_validated() {
    let mock = start(fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    let mut body = api.batch_body(2, "p");
    body["priority"] = json!(5);
    let r = api.post("/workflow_runs/batch", &body).await;
    let runs = api.list_all(r.body["batchId"].as_str().unwrap(), 10).await;
    assert_eq!(runs.len(), 2);
    for run in &runs {
        let id = run["id"].as_str().unwrap();
        assert_eq!(admin_run(&mock, id).await["priority"], 5);
    }
    body["priority"] = json!(0);
    assert_error(
        &api.post("/workflow_runs/batch", &body).await,
        400,
        V2026,
        "priority",
    );
}

#[tokio::test]
async fn batch_validation_errors_use_the_versions_error_body() {
    let mock = start(fast_profile()).await;
    for v in VERSIONS {
        let api = Api::new(&mock.url(), v);
        let mut zero = api.batch_body(1, "z");
        zero["inputs"] = json!([]);
        assert_error(
            &api.post("/workflow_runs/batch", &zero).await,
            400,
            v,
            "at least 1",
        );
        let too_many = api.batch_body(1001, "m");
        assert_error(
            &api.post("/workflow_runs/batch", &too_many).await,
            400,
            v,
            "got 1001",
        );
        let exactly = api.batch_body(1000, "k");
        assert_eq!(api.post("/workflow_runs/batch", &exactly).await.status, 200);
        let mut no_file = api.batch_body(1, "f");
        no_file["inputs"][0] = json!({"metadata": {}});
        assert_error(
            &api.post("/workflow_runs/batch", &no_file).await,
            400,
            v,
            "inputs[0]",
        );
        let mut no_wf = api.batch_body(1, "w");
        no_wf.as_object_mut().unwrap().remove(if api.is_legacy() {
            "workflowId"
        } else {
            "workflow"
        });
        assert_error(
            &api.post("/workflow_runs/batch", &no_wf).await,
            400,
            v,
            "required",
        );
        let mut unknown = api.batch_body(1, "u");
        if api.is_legacy() {
            unknown["workflowId"] = json!("workflow_nope");
        } else {
            unknown["workflow"]["id"] = json!("workflow_nope");
        }
        assert_error(
            &api.post("/workflow_runs/batch", &unknown).await,
            404,
            v,
            "workflow_nope",
        );
        let mut big = api.batch_body(1, "b");
        big["inputs"][0]["metadata"] = json!({"blob": "x".repeat(11 * 1024)});
        assert_error(
            &api.post("/workflow_runs/batch", &big).await,
            400,
            v,
            "10KB",
        );
        assert_error(
            &api.post_raw("/workflow_runs/batch", b"{\"inputs\": [".to_vec())
                .await,
            400,
            v,
            "not valid JSON",
        );
    }
    // The 2026 file union: exactly one of url, id, text.
    let api = Api::new(&mock.url(), V2026);
    let body = json!({"workflow": {"id": DEFAULT_WORKFLOW}, "inputs": [{"file": {"url": "https://x/a.pdf", "id": "file_1"}}]});
    assert_error(
        &api.post("/workflow_runs/batch", &body).await,
        400,
        V2026,
        "exactly one",
    );
    let body = json!({"workflow": {"id": DEFAULT_WORKFLOW}, "inputs": [{"file": {"text": "plain text"}}, {"file": {"id": "file_abc"}}]});
    assert_eq!(api.post("/workflow_runs/batch", &body).await.status, 200);
}

#[tokio::test]
async fn oversized_bodies_get_413_with_the_api_error_body() {
    let mut p = fast_profile();
    p.max_body_bytes = 64 * 1024;
    let mock = start(p).await;
    let api = Api::new(&mock.url(), V2026);
    let body = api.batch_body(1000, "large");
    let r = api.post("/workflow_runs/batch", &body).await;
    assert_error(&r, 413, V2026, "larger than");

    // The same while the mock records a client for its grade (the recorder reads the
    // body first): still 413, never an empty body's 400.
    let mut p = fast_profile();
    p.max_body_bytes = 64 * 1024;
    p.sparring.record = true;
    let mock = start(p).await;
    let api = Api::new(&mock.url(), V2026);
    let r = api.post("/workflow_runs/batch", &body).await;
    assert_error(&r, 413, V2026, "larger than");
}

#[tokio::test]
async fn auth_is_enforced_with_the_versions_error_body() {
    let mock = start(fast_profile()).await;
    for v in VERSIONS {
        let mut api = Api::new(&mock.url(), v);
        api.token = None;
        assert_error(
            &api.post("/workflow_runs/batch", &api.batch_body(1, "a"))
                .await,
            401,
            v,
            "Authorization",
        );
        assert_error(&api.get("/workflow_runs").await, 401, v, "Authorization");
        api.token = Some("sk_wrong".into());
        assert_error(
            &api.post("/workflow_runs/batch", &api.batch_body(1, "a"))
                .await,
            401,
            v,
            "Invalid API key",
        );
    }
}

#[tokio::test]
async fn workspace_header_is_checked_when_the_profile_lists_workspaces() {
    let mut p = fast_profile();
    p.auth.workspaces = vec!["ws_ok".into()];
    let mock = start(p).await;
    let api = Api::new(&mock.url(), V2026);
    for (workspace, status) in [("ws_ok", 200), ("ws_other", 403)] {
        let r = api
            .http
            .get(format!("{}/workflow_runs", mock.url()))
            .header("x-extend-api-version", V2026)
            .header("authorization", "Bearer sk_batchproof_local")
            .header("x-extend-workspace-id", workspace)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{workspace}");
    }
}

#[tokio::test]
async fn version_header_missing_unknown_or_legacy_fallback() {
    let mock = start(fast_profile()).await;
    let mut api = Api::new(&mock.url(), V2026);
    api.version = None;
    assert_error(
        &api.post("/workflow_runs/batch", &api.batch_body(1, "x"))
            .await,
        400,
        V2026,
        "x-extend-api-version",
    );
    api.version = Some("2023-01-01".into());
    assert_error(
        &api.get("/workflow_runs").await,
        400,
        V2026,
        "unknown API version",
    );

    let mut p = fast_profile();
    p.missing_version = MissingVersion::Legacy(ApiVersion::V2024_12_23);
    let legacy = start(p).await;
    let mut api = Api::new(&legacy.url(), V2024);
    let body = api.batch_body(1, "legacy");
    api.version = None;
    let r = api.post("/workflow_runs/batch", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true, "served in the legacy shape");
}

#[tokio::test]
async fn list_pages_are_disjoint_complete_and_bounded() {
    let mock = start(fast_profile()).await;
    for v in VERSIONS {
        let api = Api::new(&mock.url(), v);
        let a = api.submit(23, "a").await;
        let b = api.submit(5, "b").await;
        let runs = api.list_all(&a, 4).await;
        assert_eq!(runs.len(), 23);
        assert!(
            runs.iter().all(|r| r["batchId"] == a.as_str()),
            "filter excludes batch {b}"
        );
        let ids: HashSet<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 23, "no run repeated across pages");
        // Default page size is 10.
        let first = api.get(&format!("/workflow_runs?batchId={a}")).await;
        let key = if api.is_legacy() {
            "workflowRuns"
        } else {
            "data"
        };
        assert_eq!(first.body[key].as_array().unwrap().len(), 10);
        if !api.is_legacy() {
            assert_eq!(first.body["object"], "list");
        } else {
            assert_eq!(first.body["success"], true);
        }
        for bad in ["0", "1001", "ten"] {
            assert_error(
                &api.get(&format!("/workflow_runs?maxPageSize={bad}")).await,
                400,
                v,
                "maxPageSize",
            );
        }
        // Tokens are in the real alphabet: sent as they are, without URL-encoding, they
        // fail (`+` arrives as a space), as they would in production.
        let page = api
            .get(&format!("/workflow_runs?batchId={a}&maxPageSize=4"))
            .await;
        let token = page.body["nextPageToken"].as_str().unwrap().to_string();
        assert!(
            ['+', '/', '=', ':'].iter().all(|c| token.contains(*c)),
            "{token}"
        );
        assert_error(
            &api.get(&format!(
                "/workflow_runs?batchId={a}&maxPageSize=4&nextPageToken={token}"
            ))
            .await,
            400,
            v,
            "nextPageToken",
        );
        let encoded = api
            .get(&format!(
                "/workflow_runs?batchId={a}&maxPageSize=4&nextPageToken={}",
                encode_query(&token)
            ))
            .await;
        assert_eq!(encoded.status, 200, "{}", encoded.body);
        assert_error(
            &api.get("/workflow_runs?nextPageToken=garbage").await,
            400,
            v,
            "nextPageToken",
        );
        assert_error(
            &api.get("/workflow_runs?status=DONE").await,
            400,
            v,
            "status",
        );
    }
}

#[tokio::test]
async fn list_filters_by_status_workflow_and_file_name() {
    let mock = start(fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    let batch = api.submit(40, "filt").await;
    let runs = api.wait_terminal(&batch, Duration::from_secs(20)).await;
    let failed = runs.iter().filter(|r| r["status"] == "FAILED").count();
    let listed = api
        .get(&format!(
            "/workflow_runs?batchId={batch}&status=FAILED&maxPageSize=1000"
        ))
        .await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), failed);
    let named = api
        .get(&format!(
            "/workflow_runs?batchId={batch}&fileNameContains=filt-7.pdf"
        ))
        .await;
    assert_eq!(named.body["data"].as_array().unwrap().len(), 1);
    let other = api.get("/workflow_runs?workflowId=workflow_other").await;
    assert_eq!(other.body["data"].as_array().unwrap().len(), 0);
    let asc = api
        .get(&format!(
            "/workflow_runs?batchId={batch}&sortBy=createdAt&sortDir=asc&maxPageSize=1000"
        ))
        .await;
    let created: Vec<&str> = asc.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["createdAt"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]));
}

#[tokio::test]
async fn runs_finish_with_outputs_or_failure_reason_per_version() {
    let mut p = fast_profile();
    p.processing.outcomes.failed = 0.3;
    let mock = start(p).await;
    for v in VERSIONS {
        let api = Api::new(&mock.url(), v);
        let batch = api.submit(30, "out").await;
        let runs = api.wait_terminal(&batch, Duration::from_secs(20)).await;
        let mut seen = HashSet::new();
        for r in runs {
            let id = r["id"].as_str().unwrap();
            let full = api.get(&format!("/workflow_runs/{id}")).await;
            let run = api.run_of(&full.body);
            let status = run["status"].as_str().unwrap();
            seen.insert(status.to_string());
            assert!(run["startTime"].is_string() && run["endTime"].is_string());
            match status {
                "FAILED" => {
                    assert!(run["failureReason"].is_string(), "{run}");
                    assert!(run["failureMessage"].is_string());
                }
                "PROCESSED" => {
                    assert!(run["failureReason"].is_null());
                    let out = if api.is_legacy() {
                        &run["outputs"][0]["output"]
                    } else {
                        &run["stepRuns"][0]["result"]["extractRun"]["output"]["value"]
                    };
                    assert!(out["contentHash"].is_string(), "{v}: {run}");
                    // Outputs derive from the input: the same document gives the same hash.
                    let again = api.get(&format!("/workflow_runs/{id}")).await;
                    assert_eq!(api.run_of(&again.body), run);
                }
                _ => {}
            }
            if api.is_legacy() {
                assert!(
                    run["url"].is_string()
                        && run["name"].is_string()
                        && run.get("dashboardUrl").is_none()
                );
            } else {
                assert!(
                    run["dashboardUrl"].is_string() && run["workflowVersion"]["version"] == "2"
                );
            }
        }
        assert!(
            seen.contains("FAILED") && seen.contains("PROCESSED"),
            "{v}: {seen:?}"
        );
    }
}

#[tokio::test]
async fn get_update_cancel_delete_and_not_found() {
    let mock = start(fast_profile()).await;
    reqwest::Client::new()
        .post(format!("{}/_mock/pause", mock.url()))
        .send()
        .await
        .unwrap();
    for v in VERSIONS {
        let api = Api::new(&mock.url(), v);
        let batch = api.submit(2, "u").await;
        let runs = api.list_all(&batch, 10).await;
        let id = runs[0]["id"].as_str().unwrap();
        let r = api
            .post(
                &format!("/workflow_runs/{id}"),
                &json!({"metadata": {"tag": "changed", "extra": 1}, "name": "renamed"}),
            )
            .await;
        assert_eq!(r.status, 200);
        let run = api.run_of(&r.body);
        assert_eq!(run["metadata"]["tag"], "changed");
        assert_eq!(run["metadata"]["extra"], 1);
        assert!(run["metadata"]["i"].is_number(), "merge keeps other keys");
        let c = api
            .post(&format!("/workflow_runs/{id}/cancel"), &json!({}))
            .await;
        if v == V2024 {
            // 2024-12-23 has no CANCELLING or CANCELLED status, and no cancellation.
            assert_error(&c, 404, v, "not available");
        } else {
            // CANCELLING first (visible on Get), CANCELLED once the mock has stopped it.
            assert_eq!(c.status, 200, "{}", c.body);
            assert_eq!(api.run_of(&c.body)["status"], "CANCELLING");
            let mut last = Value::Null;
            for _ in 0..200 {
                let g = api.get(&format!("/workflow_runs/{id}")).await;
                last = api.run_of(&g.body)["status"].clone();
                if last == "CANCELLED" {
                    break;
                }
                assert_eq!(last, "CANCELLING");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(last, "CANCELLED");
            assert_error(
                &api.post(&format!("/workflow_runs/{id}/cancel"), &json!({}))
                    .await,
                400,
                v,
                "CANCELLED",
            );
        }
        let d = api.delete(&format!("/workflow_runs/{id}")).await;
        assert_eq!(d.status, 200);
        if api.is_legacy() {
            assert_eq!(d.body["workflowRunId"], id);
        } else {
            assert_eq!(d.body, json!({"id": id}));
        }
        assert_error(
            &api.get(&format!("/workflow_runs/{id}")).await,
            404,
            v,
            "not found",
        );
        assert_error(
            &api.get("/workflow_runs/workflow_run_nope").await,
            404,
            v,
            "not found",
        );
    }
}

#[tokio::test]
async fn single_runs_default_to_priority_50_and_jump_queued_batch_runs() {
    let mut p = fast_profile();
    // The mock extension that shows priority on the run object.
    p.expose_priority = true;
    p.processing.workers = 1;
    p.time_scale = 100.0;
    p.processing.duration = batchproof::config::DurationDist::fixed(Duration::from_secs(2));
    let mock = start(p).await;
    let admin = reqwest::Client::new();
    admin
        .post(format!("{}/_mock/pause", mock.url()))
        .send()
        .await
        .unwrap();
    let api = Api::new(&mock.url(), V2026);
    let batch = api.submit(10, "queued").await;
    let single = api
        .post(
            "/workflow_runs",
            &json!({"workflow": {"id": DEFAULT_WORKFLOW}, "file": {"url": "https://x/single.pdf"}}),
        )
        .await;
    assert_eq!(single.status, 200, "{}", single.body);
    assert_eq!(single.body["priority"], 50);
    assert_eq!(single.body["batchId"], Value::Null);
    let single_id = single.body["id"].as_str().unwrap().to_string();
    admin
        .post(format!("{}/_mock/resume", mock.url()))
        .send()
        .await
        .unwrap();
    api.wait_terminal(&batch, Duration::from_secs(30)).await;
    let s = api.get(&format!("/workflow_runs/{single_id}")).await;
    let single_start = s.body["startTime"].as_str().unwrap().to_string();
    let runs = api.list_all(&batch, 100).await;
    for r in runs {
        assert!(
            r["startTime"].as_str().unwrap() >= single_start.as_str(),
            "a batch run started before the single run"
        );
    }
    // Legacy single runs: one run per file, wrapped.
    let legacy = Api::new(&mock.url(), V2025);
    let r = legacy.post("/workflow_runs", &json!({"workflowId": DEFAULT_WORKFLOW, "files": [{"fileUrl": "https://x/1.pdf"}], "rawTexts": ["hello"]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["workflowRuns"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_the_documented_body() {
    let mut p = fast_profile();
    p.time_scale = 1.0;
    p.limits.run_rps = Some(2.0);
    let mock = start(p).await;
    let api = Api::new(&mock.url(), V2026);
    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..5 {
        let r = api
            .post("/workflow_runs/batch", &api.batch_body(1, "rl"))
            .await;
        statuses.push(r.status);
        if r.status == 429 {
            throttled = Some(r);
        }
    }
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    let r = throttled.expect("a 429 within 5 rapid batches at 2/s");
    assert_eq!(r.body["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(r.body["retryable"], true);
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=1).contains(&secs));
    // GET has its own bucket: reads still work.
    assert_eq!(api.get("/workflow_runs").await.status, 200);
}

#[tokio::test]
async fn webhooks_are_signed_carry_batch_and_metadata_and_are_retried() {
    let mock = start(fast_profile()).await;
    for v in [V2026, V2025] {
        // A receiver per endpoint: each endpoint signs with its own secret.
        let capture = Capture::start(3).await;
        let api = Api::new(&mock.url(), v);
        let secret = register(&api, &capture.url(), v).await;
        let batch = api.submit(12, "wh").await;
        let got = capture.wait_for(12, Duration::from_secs(20)).await;
        assert_eq!(got.len(), 12, "{v}: one terminal event per run");
        let now = chrono::Utc::now().timestamp();
        for d in &got {
            assert_eq!(d.json["payload"]["batchId"], batch.as_str());
            let ts = d.timestamp.as_deref().unwrap();
            batchproof::webhook::signing::verify(
                &secret,
                Some(ts),
                d.signature.as_deref(),
                &d.body,
                now,
                300,
            )
            .expect("valid signature");
            assert!(d.json["eventId"].as_str().unwrap().starts_with("evt_"));
            assert!(
                d.json["eventType"]
                    .as_str()
                    .unwrap()
                    .starts_with("workflow_run.")
            );
            let m = &d.json["payload"]["metadata"];
            assert_eq!(m["tag"], "wh");
            assert_eq!(m["nested"]["list"][1], "x");
            // The payload follows the endpoint's version.
            assert_eq!(d.json["payload"].get("dashboardUrl").is_some(), v == V2026);
        }
        assert_eq!(
            *capture.refused.lock().unwrap(),
            3,
            "the first three attempts were refused and retried"
        );
    }
    let log: Value = reqwest::get(format!("{}/_mock/deliveries?limit=1000", mock.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let retried = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["attempts"].as_array().unwrap().len() > 1)
        .count();
    assert!(retried >= 1, "the delivery log shows retries");
}

#[tokio::test]
async fn admin_surface_reports_state_and_resets() {
    let mock = start(fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    let http = reqwest::Client::new();
    http.post(format!("{}/_mock/pause", mock.url()))
        .send()
        .await
        .unwrap();
    let batch = api.submit(8, "adm").await;
    let state: Value = http
        .get(format!("{}/_mock/state", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["runs"]["byStatus"]["PENDING"], 8);
    assert_eq!(state["paused"], true);
    let b: Value = http
        .get(format!("{}/_mock/batches/{batch}", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["byStatus"]["PENDING"], 8);
    http.post(format!("{}/_mock/reset", mock.url()))
        .send()
        .await
        .unwrap();
    let state: Value = http
        .get(format!("{}/_mock/state", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["runs"]["total"], 0);
}

#[tokio::test]
async fn finished_runs_are_evicted_beyond_the_retention_limit() {
    let mut p = fast_profile();
    p.retention.max_finished_runs = 50;
    let mock = start(p).await;
    let api = Api::new(&mock.url(), V2026);
    for i in 0..4 {
        let b = api.submit(100, &format!("ev{i}")).await;
        let _ = b;
    }
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state: Value = http
            .get(format!("{}/_mock/state", mock.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if state["runs"]["evicted"].as_u64().unwrap() >= 350 {
            assert!(state["runs"]["total"].as_u64().unwrap() <= 50, "{state}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn injected_5xx_happens_after_the_batch_is_created() {
    let mut p = fast_profile();
    p.faults
        .errors
        .insert(batchproof::mock::profile::Endpoint::Batch, 1.0);
    let mock = start(p).await;
    let api = Api::new(&mock.url(), V2026);
    let r = api
        .post("/workflow_runs/batch", &api.batch_body(3, "5xx"))
        .await;
    assert_error(&r, 500, V2026, "INTERNAL_ERROR");
    let state: Value = reqwest::get(format!("{}/_mock/state", mock.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["runs"]["created"], 3,
        "the batch exists although the caller saw a 500"
    );
}

#[tokio::test]
async fn the_same_seed_replays_the_same_outcomes() {
    async fn outcomes(seed: u64) -> Vec<String> {
        let mut p = fast_profile();
        p.seed = seed;
        p.processing.outcomes.failed = 0.4;
        let mock = start(p).await;
        let api = Api::new(&mock.url(), V2026);
        let batch = api.submit(40, "seed").await;
        let mut runs = api.wait_terminal(&batch, Duration::from_secs(20)).await;
        runs.sort_by_key(|r| r["createdAt"].as_str().unwrap().to_string());
        let mut full = Vec::new();
        for r in runs {
            let g = api
                .get(&format!("/workflow_runs/{}", r["id"].as_str().unwrap()))
                .await;
            full.push((
                g.body["metadata"]["i"].as_u64().unwrap(),
                g.body["status"].as_str().unwrap().to_string(),
            ));
        }
        full.sort();
        full.into_iter().map(|x| x.1).collect()
    }
    let a = outcomes(11).await;
    assert_eq!(a, outcomes(11).await);
    assert_ne!(a, outcomes(12).await);
}

#[tokio::test]
async fn stalls_hold_exactly_the_named_request() {
    let mut p = fast_profile();
    p.faults.stalls.push(batchproof::mock::profile::Stall {
        endpoint: batchproof::mock::profile::Endpoint::Batch,
        at_request: 2,
        duration: Dur::from_millis(600),
    });
    let mock = start(p).await;
    let api = Api::new(&mock.url(), V2026);
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        api.submit(1, "stall").await;
        times.push(t.elapsed());
    }
    assert!(times[1] >= Duration::from_millis(600), "{times:?}");
    assert!(
        times[0] < Duration::from_millis(300) && times[2] < Duration::from_millis(300),
        "{times:?}"
    );
}

/// The events each captured delivery announces, per input (by the `i` in its metadata).
fn events_by_input(got: &[Captured]) -> std::collections::BTreeMap<u64, Vec<String>> {
    let mut by = std::collections::BTreeMap::<u64, Vec<String>>::new();
    for d in got {
        let i = d.json["payload"]["metadata"]["i"].as_u64().unwrap();
        by.entry(i)
            .or_default()
            .push(d.json["eventType"].as_str().unwrap().to_string());
    }
    for v in by.values_mut() {
        v.sort();
    }
    by
}

/// Review and cancellation as the contract documents them (§7), driven by the mock-only
/// steering key a client developer uses to make *this* input fail, need review or be
/// cancelled: NEEDS_REVIEW is later reviewed into REJECTED (`rejected`) or PROCESSED
/// (`completed`), or waits for the admin surface; cancellation passes through CANCELLING
/// and is announced only to 2026 endpoints; a steered failure carries the reason asked for.
#[tokio::test]
async fn steered_inputs_follow_the_review_and_cancel_lifecycle() {
    let mut profile = fast_profile();
    // Reviews happen 1 s (real) after NEEDS_REVIEW unless steered otherwise.
    profile.processing.review.after = Some(batchproof::config::DurationDist::fixed(
        Duration::from_secs(1000),
    ));
    let mock = start(profile).await;
    let api = Api::new(&mock.url(), V2026);
    let current = Capture::start(0).await;
    register(&api, &current.url(), V2026).await;
    let legacy = Capture::start(0).await;
    register(&Api::new(&mock.url(), V2025), &legacy.url(), V2025).await;

    let steer = [
        json!({"outcome": "NEEDS_REVIEW", "review": "reject"}),
        json!({"outcome": "NEEDS_REVIEW", "review": "approve"}),
        json!({"outcome": "NEEDS_REVIEW", "review": "wait"}),
        json!({"outcome": "FAILED", "failureReason": "DOCUMENT_PROCESSOR_ERROR", "failureMessage": "password protected"}),
        json!("CANCELLED"),
        json!("PROCESSED"),
        json!({"outcome": "FAILED", "failureReason": "INVALID_WORKFLOW"}),
    ];
    let mut body = api.review_batch_body(steer.len(), "steer");
    for (i, s) in steer.iter().enumerate() {
        body["inputs"][i]["metadata"]["x-batchproof-mock"] = s.clone();
    }
    let r = api.post("/workflow_runs/batch", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let batch = r.body["batchId"].as_str().unwrap().to_string();

    // 2 + 2 + 1 + 1 + 1 + 1 + 1 events before the waiting run is reviewed; no
    // `cancelled` for the 2025 endpoint.
    let got = current.wait_for(9, Duration::from_secs(20)).await;
    let by = events_by_input(&got);
    let want = |e: &[&str]| e.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        by[&0],
        want(&["workflow_run.needs_review", "workflow_run.rejected"])
    );
    assert_eq!(
        by[&1],
        want(&["workflow_run.completed", "workflow_run.needs_review"])
    );
    assert_eq!(by[&2], want(&["workflow_run.needs_review"]));
    assert_eq!(by[&3], want(&["workflow_run.failed"]));
    assert_eq!(by[&4], want(&["workflow_run.cancelled"]));
    assert_eq!(by[&5], want(&["workflow_run.completed"]));
    assert_eq!(by[&6], want(&["workflow_run.failed"]));
    let old = events_by_input(&legacy.wait_for(8, Duration::from_secs(20)).await);
    assert!(
        !old.contains_key(&4),
        "2025 endpoints get no cancelled event: {old:?}"
    );

    let runs = api.list_all(&batch, 10).await;
    let mut by_input = std::collections::BTreeMap::new();
    for listed in &runs {
        let id = listed["id"].as_str().unwrap();
        let g = api.get(&format!("/workflow_runs/{id}")).await;
        let run = api.run_of(&g.body).clone();
        by_input.insert(run["metadata"]["i"].as_u64().unwrap(), run);
    }
    assert_eq!(by_input[&0]["status"], "REJECTED");
    assert!(by_input[&0]["reviewedAt"].is_string());
    assert!(by_input[&0]["rejectionNote"].is_string());
    assert_eq!(by_input[&1]["status"], "PROCESSED");
    assert_eq!(by_input[&2]["status"], "NEEDS_REVIEW");
    assert_eq!(by_input[&3]["status"], "FAILED");
    assert_eq!(by_input[&3]["failureReason"], "DOCUMENT_PROCESSOR_ERROR");
    assert_eq!(by_input[&3]["failureMessage"], "password protected");
    assert_eq!(by_input[&4]["status"], "CANCELLED");
    // The steering key is the client's own metadata, returned as sent.
    assert_eq!(by_input[&5]["metadata"]["x-batchproof-mock"], "PROCESSED");
    // INVALID_WORKFLOW, documented, is steered like the other failure reasons.
    assert_eq!(by_input[&6]["failureReason"], "INVALID_WORKFLOW");

    // The waiting run is reviewed on demand, as a reviewer in the dashboard would; until
    // then the mock holds no decision for it.
    let waiting = by_input[&2]["id"].as_str().unwrap().to_string();
    let held = admin_run(&mock, &waiting).await;
    assert_eq!(held["reviewDecision"], "wait", "{held}");
    let admin = reqwest::Client::new();
    let review = |decision: &'static str| {
        admin
            .post(format!("{}/_mock/runs/{waiting}/review", mock.url()))
            .json(&json!({"decision": decision}))
            .send()
    };
    let r = review("approve").await.unwrap();
    assert_eq!(r.status(), 200);
    let got = current.wait_for(10, Duration::from_secs(20)).await;
    assert_eq!(
        events_by_input(&got)[&2],
        want(&["workflow_run.completed", "workflow_run.needs_review"])
    );
    assert_eq!(
        review("reject").await.unwrap().status(),
        409,
        "reviewed once"
    );

    // A steering key the mock cannot follow is refused with the request, naming it.
    let mut bad = api.batch_body(1, "steer");
    bad["inputs"][0]["metadata"]["x-batchproof-mock"] = json!("DONE");
    assert_error(
        &api.post("/workflow_runs/batch", &bad).await,
        400,
        V2026,
        "x-batchproof-mock",
    );
}

/// Approval fires `completed` only when the profile says so: the documentation leaves it
/// open (§7), so it is a switch.
#[tokio::test]
async fn approval_announces_completed_only_when_the_profile_says_so() {
    let mut profile = fast_profile();
    profile.processing.review.completed_after_approval = false;
    let mock = start(profile).await;
    let api = Api::new(&mock.url(), V2026);
    let capture = Capture::start(0).await;
    register(&api, &capture.url(), V2026).await;
    let mut body = api.review_batch_body(2, "approve");
    body["inputs"][0]["metadata"]["x-batchproof-mock"] =
        json!({"outcome": "NEEDS_REVIEW", "review": "approve"});
    body["inputs"][1]["metadata"]["x-batchproof-mock"] =
        json!({"outcome": "NEEDS_REVIEW", "review": "reject"});
    let r = api.post("/workflow_runs/batch", &body).await;
    let batch = r.body["batchId"].as_str().unwrap().to_string();
    // The rejected run's `rejected` event is the last one the mock sends.
    let got = capture.wait_for(3, Duration::from_secs(20)).await;
    let by = events_by_input(&got);
    assert_eq!(by[&1].len(), 2, "{by:?}");
    assert_eq!(by[&0], vec!["workflow_run.needs_review".to_string()]);
    // The approved run becomes PROCESSED all the same, silently.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let runs = api.list_all(&batch, 10).await;
        if runs.iter().any(|r| r["status"] == "PROCESSED") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never approved: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(capture.all().len(), 3, "no completed event after approval");
}

/// Subscriptions take the documented workflow-run event types of the endpoint's version
/// and nothing else (no wildcard is documented); an endpoint's own `enabledEvents` are
/// global events. `workflow_run.step_run.processed` carries one StepRun with
/// `workflowRunId` and no batchId or metadata (§6).
#[tokio::test]
async fn subscriptions_take_documented_events_and_step_runs_arrive_as_step_runs() {
    let mock = start(fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    let capture = Capture::start(0).await;
    let bad_endpoint = api
        .post(
            "/webhook_endpoints",
            &json!({"url": capture.url(), "name": "t", "enabledEvents": ["workflow_run.completed"], "apiVersion": V2026}),
        )
        .await;
    assert_error(&bad_endpoint, 400, V2026, "webhook_subscriptions");
    let ep = api
        .post(
            "/webhook_endpoints",
            &json!({"url": capture.url(), "name": "t", "enabledEvents": [], "apiVersion": V2026}),
        )
        .await;
    assert_eq!(ep.status, 200, "{}", ep.body);
    let endpoint_id = ep.body["id"].clone();
    let subscribe = async |events: Value| {
        api.post(
            "/webhook_subscriptions",
            &json!({"webhookEndpointId": endpoint_id, "resourceType": "workflow", "resourceId": DEFAULT_WORKFLOW, "enabledEvents": events}),
        )
        .await
    };
    for bad in [
        json!(["workflow_run.*"]),
        json!(["workflow_run.done"]),
        json!([]),
    ] {
        let r = subscribe(bad.clone()).await;
        assert_error(&r, 400, V2026, "workflow-run event");
    }
    let legacy_ep = Api::new(&mock.url(), V2025)
        .post(
            "/webhook_endpoints",
            &json!({"url": capture.url(), "name": "old", "enabledEvents": [], "apiVersion": V2025}),
        )
        .await;
    let r = api
        .post(
            "/webhook_subscriptions",
            &json!({"webhookEndpointId": legacy_ep.body["id"], "resourceType": "workflow", "resourceId": DEFAULT_WORKFLOW, "enabledEvents": ["workflow_run.cancelled"]}),
        )
        .await;
    assert_error(&r, 400, V2026, "2025-04-21");

    let r = subscribe(json!(["workflow_run.step_run.processed"])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut body = api.batch_body(3, "steps");
    // A cancelled run has no step runs (a failed one neither: tests/mock_sparring_defaults.rs).
    body["inputs"][2]["metadata"]["x-batchproof-mock"] = json!("CANCELLED");
    let r = api.post("/workflow_runs/batch", &body).await;
    assert_eq!(r.status, 200);
    let got = capture.wait_for(2, Duration::from_secs(20)).await;
    let runs: HashSet<String> = api
        .list_all(r.body["batchId"].as_str().unwrap(), 10)
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got.len(), 2, "one step run per processed run, nothing else");
    for d in &got {
        assert_eq!(d.json["eventType"], "workflow_run.step_run.processed");
        let p = &d.json["payload"];
        assert!(runs.contains(p["workflowRunId"].as_str().unwrap()), "{p}");
        assert!(
            p.get("batchId").is_none() && p.get("metadata").is_none(),
            "{p}"
        );
        assert_eq!(p["object"], "workflow_step_run", "{p}");
    }
}

/// The status of each validation failure the documentation leaves open is the profile's
/// choice (so a client's 422 path can be exercised); an organization key must name a
/// workspace (403); an account out of credits refuses new runs with 402 USAGE_BLOCKED.
#[tokio::test]
async fn validation_statuses_org_keys_and_usage_blocking_follow_the_profile() {
    let mut profile = fast_profile();
    profile.validation_status.too_many_inputs = 422;
    profile.validation_status.bad_file = 422;
    profile.validation_status.page_size = 422;
    profile.validation_status.unknown_version = 422;
    profile.auth.organization_keys = vec!["sk_org_key".into()];
    profile.limits.max_runs = Some(3);
    let mock = start(profile).await;
    let api = Api::new(&mock.url(), V2026);

    let mut many = api.batch_body(1, "v");
    many["inputs"] = json!(vec![many["inputs"][0].clone(); 1001]);
    assert_error(
        &api.post("/workflow_runs/batch", &many).await,
        422,
        V2026,
        "1001",
    );
    let mut bad_file = api.batch_body(1, "v");
    bad_file["inputs"][0]["file"] = json!({"name": "neither.pdf"});
    assert_error(
        &api.post("/workflow_runs/batch", &bad_file).await,
        422,
        V2026,
        "file",
    );
    assert_error(
        &api.get("/workflow_runs?maxPageSize=0").await,
        422,
        V2026,
        "maxPageSize",
    );
    // Not chosen: an empty batch keeps the default, 400.
    let mut empty = api.batch_body(1, "v");
    empty["inputs"] = json!([]);
    assert_error(
        &api.post("/workflow_runs/batch", &empty).await,
        400,
        V2026,
        "got 0",
    );
    let r = reqwest::Client::new()
        .get(format!("{}/workflow_runs", mock.url()))
        .bearer_auth(batchproof::mock::profile::DEFAULT_TOKEN)
        .header("x-extend-api-version", "1999-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    let org = |workspace: Option<&str>| {
        let mut req = reqwest::Client::new()
            .get(format!("{}/workflow_runs", mock.url()))
            .bearer_auth("sk_org_key")
            .header("x-extend-api-version", V2026);
        if let Some(w) = workspace {
            req = req.header("x-extend-workspace-id", w);
        }
        req.send()
    };
    let r = org(None).await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "FORBIDDEN", "{body}");
    assert!(body["message"].as_str().unwrap().contains("workspace"));
    assert_eq!(org(Some("ws_1")).await.unwrap().status(), 200);

    api.submit(2, "credits").await;
    let r = api
        .post("/workflow_runs/batch", &api.batch_body(2, "over"))
        .await;
    assert_error(&r, 402, V2026, "credits");
    assert_eq!(r.body["code"], "USAGE_BLOCKED");
}

/// The profile `batchproof mock` serves by default (mock/local.yaml) drains a 1,000-run
/// batch over seconds: polling sees PENDING, PROCESSING and finished runs together, as a
/// client developer meets them in production.
#[tokio::test]
async fn the_local_profile_drains_a_batch_visibly() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/local.yaml");
    let profile = batchproof::mock::Profile::load(&path).unwrap();
    let mock = start(profile).await;
    let api = Api::new(&mock.url(), V2026);
    let batch = api.submit(1000, "drain").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let runs = api.list_all(&batch, 1000).await;
        let statuses: std::collections::BTreeSet<String> = runs
            .iter()
            .map(|r| {
                let s = r["status"].as_str().unwrap();
                match s {
                    "PENDING" | "PROCESSING" => s.to_string(),
                    _ => "finished".to_string(),
                }
            })
            .collect();
        seen.extend(statuses.iter().cloned());
        if statuses.len() == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw PENDING, PROCESSING and finished runs in one listing; saw {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        api.list_all(&batch, 1000)
            .await
            .iter()
            .any(|r| r["status"] == "PENDING"),
        "still draining a moment later"
    );
    assert!(
        api.list_all(&batch, 1000).await[0]
            .get("priority")
            .is_none(),
        "no priority field, as in production"
    );
}
