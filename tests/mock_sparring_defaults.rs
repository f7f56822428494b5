//! The mock as a sparring partner for a client developer (issue 24): `batchproof mock`'s
//! profile throttles as a real plan does, a 429's Retry-After is the profile's choice, and
//! steering reaches every documented failure and review state as production has them, and
//! only a workflow with a review step sends runs to review.

mod common;

use std::time::Duration;

use batchproof::mock::retry_after::RetryAfter;
use common::*;
use serde_json::{Value, json};

fn local_profile() -> batchproof::mock::Profile {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/local.yaml");
    batchproof::mock::Profile::load(&path).unwrap()
}

/// Sends `n` rapid GETs and returns the 429 answers.
async fn throttled_gets(api: &Api, n: usize) -> Vec<Resp> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = api.get("/workflow_runs").await;
        assert!(
            r.status == 200 || r.status == 429,
            "{} {}",
            r.status,
            r.body
        );
        if r.status == 429 {
            out.push(r);
        }
    }
    out
}

/// `batchproof mock`'s profile enforces PAYG's 10 GET/WRITE/RUN requests per second in
/// real time, whatever its time scale; some 429s say how long to wait, some do not.
#[tokio::test]
async fn the_local_profile_throttles_as_payg_with_and_without_retry_after() {
    let profile = local_profile();
    assert_eq!(profile.limits.get_rps, Some(10.0));
    assert_eq!(profile.limits.write_rps, Some(10.0));
    assert_eq!(profile.limits.run_rps, Some(10.0));
    let mock = start(profile).await;
    let api = Api::new(&mock.url(), V2026);
    // 60 GETs in well under a second of a 10/s plan: a burst of 10, then 429s.
    let limited = throttled_gets(&api, 60).await;
    assert!(
        limited.len() >= 30,
        "only {} of 60 throttled",
        limited.len()
    );
    for r in &limited {
        assert_eq!(r.body["code"], "RATE_LIMIT_EXCEEDED");
        assert_eq!(r.body["retryable"], true);
    }
    let with = limited
        .iter()
        .filter(|r| r.headers.contains_key("retry-after"))
        .count();
    assert!(
        with > 0 && with < limited.len(),
        "{with} of {} 429s carry Retry-After; the local profile leaves it off some",
        limited.len()
    );
    for r in limited
        .iter()
        .filter(|r| r.headers.contains_key("retry-after"))
    {
        assert!(r.headers.contains_key("retry-after-ms"), "both or neither");
    }
    for r in limited
        .iter()
        .filter(|r| !r.headers.contains_key("retry-after"))
    {
        assert!(!r.headers.contains_key("retry-after-ms"), "both or neither");
    }
}

/// `limits.retry_after: never` sends no wait on any 429, `always` on every one.
#[tokio::test]
async fn retry_after_is_a_profile_setting() {
    for (setting, expect) in [(RetryAfter::Never, false), (RetryAfter::Always, true)] {
        let mut p = fast_profile();
        p.time_scale = 1.0;
        p.limits.get_rps = Some(2.0);
        p.limits.retry_after = setting;
        let mock = start(p).await;
        let api = Api::new(&mock.url(), V2026);
        let limited = throttled_gets(&api, 10).await;
        assert!(!limited.is_empty());
        for r in &limited {
            assert_eq!(r.headers.contains_key("retry-after"), expect, "{setting:?}");
            assert_eq!(
                r.headers.contains_key("retry-after-ms"),
                expect,
                "{setting:?}"
            );
        }
    }
    let yaml = "limits: {get_rps: 1, retry_after: 1.5}\n";
    let err = batchproof::mock::Profile::from_text("p.yaml", yaml)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.retry_after"), "{err}");
}

/// `INVALID_WORKFLOW` is a documented failureReason, so it can be steered like the others;
/// a run steered to wait for its review shows that in the admin surface, not a decision.
#[tokio::test]
async fn invalid_workflow_is_steerable_and_a_waiting_review_shows_wait() {
    let mock = start(fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    let mut body = api.review_batch_body(2, "steer");
    body["inputs"][0]["metadata"]["x-batchproof-mock"] =
        json!({"outcome": "FAILED", "failureReason": "INVALID_WORKFLOW"});
    body["inputs"][1]["metadata"]["x-batchproof-mock"] =
        json!({"outcome": "NEEDS_REVIEW", "review": "wait"});
    let r = api.post("/workflow_runs/batch", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let batch = r.body["batchId"].as_str().unwrap().to_string();
    let runs = api.wait_terminal(&batch, Duration::from_secs(20)).await;
    for run in &runs {
        let id = run["id"].as_str().unwrap();
        let full = api.get(&format!("/workflow_runs/{id}")).await;
        let full = api.run_of(&full.body).clone();
        if full["metadata"]["i"] == 0 {
            assert_eq!(full["status"], "FAILED");
            assert_eq!(full["failureReason"], "INVALID_WORKFLOW");
        } else {
            assert_eq!(full["status"], "NEEDS_REVIEW");
            let admin = admin_run(&mock, id).await;
            assert_eq!(admin["reviewDecision"], "wait", "{admin}");
        }
    }
}

/// `workflow_run.step_run.processed` announces a processed step: a FAILED run sends
/// `workflow_run.failed` and no step-run event.
#[tokio::test]
async fn a_failed_run_sends_no_step_run_processed() {
    let mock = start(fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    let capture = Capture::start(0).await;
    register_for(
        &api,
        &capture.url(),
        V2026,
        &["workflow_run.step_run.processed", "workflow_run.failed"],
    )
    .await;
    let mut body = api.batch_body(1, "failed");
    body["inputs"][0]["metadata"]["x-batchproof-mock"] = json!("FAILED");
    assert_eq!(api.post("/workflow_runs/batch", &body).await.status, 200);
    let got = capture.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].json["eventType"], "workflow_run.failed");
    // A processed run afterwards: once its step run arrives, anything the failed run
    // would have sent with its own announcement has had its chance.
    let mut body = api.batch_body(1, "ok");
    body["inputs"][0]["metadata"]["x-batchproof-mock"] = json!("PROCESSED");
    assert_eq!(api.post("/workflow_runs/batch", &body).await.status, 200);
    let got = capture.wait_for(2, Duration::from_secs(20)).await;
    let kinds: Vec<_> = got.iter().map(|d| d.json["eventType"].clone()).collect();
    assert_eq!(got.len(), 2, "{kinds:?}");
    let step = &got[1].json;
    assert_eq!(
        step["eventType"], "workflow_run.step_run.processed",
        "{kinds:?}"
    );
    assert_eq!(step["payload"]["status"], "PROCESSED", "{step}");
}

/// Counts runs by status.
fn by_status(runs: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut by = std::collections::BTreeMap::new();
    for r in runs {
        *by.entry(r["status"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    by
}

/// Counts a batch's runs by status once every run is terminal.
async fn settled_statuses(api: &Api, batch: &str) -> std::collections::BTreeMap<String, usize> {
    by_status(&api.wait_terminal(batch, Duration::from_secs(60)).await)
}

/// Review happens only where a workflow has a review step: the demo workflow's runs never
/// need review (its share is processed), the review workflow's do at about the profile's
/// share, and steering review on the demo workflow is refused with the way out.
#[tokio::test]
async fn only_a_workflow_with_a_review_step_sends_runs_to_review() {
    let mut profile = fast_profile();
    // Reviews nobody schedules: NEEDS_REVIEW stays visible.
    profile.processing.review.after = None;
    profile.processing.outcomes.needs_review = 0.2;
    let mock = start(profile).await;
    let api = Api::new(&mock.url(), V2026);

    let demo = api.submit(1000, "demo").await;
    let by = settled_statuses(&api, &demo).await;
    assert_eq!(by.get("NEEDS_REVIEW"), None, "{by:?}");
    assert_eq!(by.values().sum::<usize>(), 1000);
    assert!(
        by["PROCESSED"] > 900,
        "the review share is processed: {by:?}"
    );

    let r = api
        .post("/workflow_runs/batch", &api.review_batch_body(1000, "rev"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let by = settled_statuses(&api, r.body["batchId"].as_str().unwrap()).await;
    let review = by.get("NEEDS_REVIEW").copied().unwrap_or(0);
    // ~20 % of 1,000 (binomial sd ≈ 13): well inside 140..260.
    assert!((140..260).contains(&review), "{by:?}");

    let mut body = api.batch_body(3, "steer");
    body["inputs"][2]["metadata"]["x-batchproof-mock"] =
        json!({"outcome": "NEEDS_REVIEW", "review": "approve"});
    let r = api.post("/workflow_runs/batch", &body).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let message = r.body.to_string();
    for part in [
        "inputs[2].metadata.x-batchproof-mock",
        "workflow_batchproof_demo` has no review step",
        "workflow_batchproof_review",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
}

/// `batchproof mock` leaves reviews to the developer: a run that needs review waits for
/// `POST /_mock/runs/{id}/review` and is then decided as asked.
#[tokio::test]
async fn the_local_profile_leaves_reviews_to_the_developer() {
    let mut profile = local_profile();
    assert_eq!(profile.processing.review.after, None);
    // Fast and unthrottled here; the review plan is what is under test.
    profile.time_scale = 1000.0;
    profile.limits = Default::default();
    profile.processing.outcomes.needs_review = 0.5;
    let mock = start(profile).await;
    let api = Api::new(&mock.url(), V2026);
    let r = api
        .post("/workflow_runs/batch", &api.review_batch_body(40, "local"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let batch = r.body["batchId"].as_str().unwrap().to_string();
    let runs = api.wait_terminal(&batch, Duration::from_secs(60)).await;
    let by = by_status(&runs);
    assert!(by.get("NEEDS_REVIEW").copied().unwrap_or(0) > 5, "{by:?}");
    let waiting: Vec<&Value> = runs
        .iter()
        .filter(|r| r["status"] == "NEEDS_REVIEW")
        .collect();
    for run in &waiting {
        let admin = admin_run(&mock, run["id"].as_str().unwrap()).await;
        assert_eq!(admin["reviewDecision"], "wait", "{admin}");
    }
    // The developer decides: approved becomes PROCESSED.
    let id = waiting[0]["id"].as_str().unwrap();
    let decided = reqwest::Client::new()
        .post(format!("{}/_mock/runs/{id}/review", mock.url()))
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200);
    let full = api.get(&format!("/workflow_runs/{id}")).await;
    assert_eq!(api.run_of(&full.body)["status"], "PROCESSED");
}
