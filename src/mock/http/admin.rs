//! The `/_mock/` admin surface: state, one batch, reset, pause and resume of processing,
//! deliveries and endpoints.

use super::*;

pub(super) async fn admin_state(State(s): State<Arc<Shared>>) -> Response {
    let (by_status, batches, queued, total, paused, created, evicted, batches_created) = {
        let store = s.store.lock().expect("store");
        let (by_status, batches) = store.summary();
        (
            by_status,
            batches,
            store.queued(),
            store.len(),
            store.paused,
            store.runs_created,
            store.runs_evicted,
            store.batches_created,
        )
    };
    let st = &s.stats;
    axum::Json(json!({
        "runs": {"total": total, "byStatus": by_status, "queued": queued, "created": created, "evicted": evicted},
        "batches": {"live": batches, "created": batches_created},
        "paused": paused,
        "deliveries": {
            "announced": st.announced.load(Ordering::Relaxed),
            "pending": st.pending.load(Ordering::Relaxed),
            "attempts": st.attempts.load(Ordering::Relaxed),
            "delivered": st.delivered.load(Ordering::Relaxed),
            "failed": st.failed.load(Ordering::Relaxed),
            "dropped": st.dropped.load(Ordering::Relaxed),
            "duplicated": st.duplicated.load(Ordering::Relaxed),
        },
        "timeScale": s.profile.time_scale,
        "uptimeSeconds": s.started.elapsed().as_secs_f64(),
    }))
    .into_response()
}

pub(super) async fn admin_batch(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match s.store.lock().expect("store").batch_summary(&id) {
        Some(by_status) => {
            axum::Json(json!({"batchId": id, "byStatus": by_status})).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("batch `{id}` not known (or fully evicted)")})),
        )
            .into_response(),
    }
}

/// One run as the mock holds it, with what the public run object does not show: its
/// priority and place in the queue, the outcome processing will give it, and when it
/// will be reviewed.
pub(super) async fn admin_run(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let store = s.store.lock().expect("store");
    let Some(run) = store.get(&id) else {
        return admin_not_found(format!("run `{id}` not known (or evicted)"));
    };
    // A review nobody scheduled (steered `wait`, or a profile that leaves reviews to the
    // developer) has no decision yet: it waits for POST /_mock/runs/{id}/review.
    let waiting = run.review_after.is_none() && run.reviewed_at.is_none();
    let (planned, decision) = match run.outcome {
        Outcome::Processed => ("PROCESSED", None),
        Outcome::Failed(_) => ("FAILED", None),
        Outcome::NeedsReview { .. } if waiting => ("NEEDS_REVIEW", Some("wait")),
        Outcome::NeedsReview { approve: true } => ("NEEDS_REVIEW", Some("approve")),
        Outcome::NeedsReview { approve: false } => ("NEEDS_REVIEW", Some("reject")),
        Outcome::Cancelled => ("CANCELLED", None),
    };
    axum::Json(json!({
        "id": run.id,
        "status": run.status.as_str(),
        "priority": run.priority,
        "batchId": run.batch_id,
        "plannedOutcome": planned,
        "reviewDecision": decision,
        "reviewAfterSeconds": run.review_after.map(|d| d.as_secs_f64()),
        "reviewedAt": run.reviewed_at.map(|t| t.to_rfc3339()),
        "processingSeconds": run.duration.as_secs_f64(),
    }))
    .into_response()
}

/// Reviews a NEEDS_REVIEW run now, as a reviewer in the dashboard would:
/// `{"decision": "approve" | "reject", "note"?: "…"}`. Fires `workflow_run.rejected`, or
/// `workflow_run.completed` after approval when the profile says so.
pub(super) async fn admin_review(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let parsed: Option<(bool, Option<String>)> =
        serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
            let approve = match v.get("decision")?.as_str()? {
                "approve" => true,
                "reject" => false,
                _ => return None,
            };
            Some((
                approve,
                v.get("note").and_then(Value::as_str).map(str::to_string),
            ))
        });
    let Some((approve, note)) = parsed else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": "send {\"decision\": \"approve\" | \"reject\", \"note\"?: \"…\"}"}),
            ),
        )
            .into_response();
    };
    let result = s
        .store
        .lock()
        .expect("store")
        .review(&id, approve, note, Utc::now());
    match result {
        None => admin_not_found(format!("run `{id}` not known (or evicted)")),
        Some(Err(status)) => (
            StatusCode::CONFLICT,
            axum::Json(json!({"error": format!("run `{id}` is {status}, not NEEDS_REVIEW")})),
        )
            .into_response(),
        Some(Ok(run)) => {
            let status = run.status;
            if (!approve || s.profile.processing.review.completed_after_approval)
                && !run.mute_terminal
                && s.has_endpoints.load(Ordering::Relaxed)
            {
                let _ = s.announce.send(run);
            }
            axum::Json(json!({"id": id, "status": status.as_str()})).into_response()
        }
    }
}

fn admin_not_found(message: String) -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": message}))).into_response()
}

pub(super) async fn admin_reset(State(s): State<Arc<Shared>>) -> Response {
    s.store.lock().expect("store").reset();
    s.request_counts.lock().expect("counts").clear();
    *s.last_batch.lock().expect("last") = None;
    s.wake.notify_one();
    axum::Json(json!({"reset": true})).into_response()
}

pub(super) async fn admin_pause(State(s): State<Arc<Shared>>) -> Response {
    s.store.lock().expect("store").paused = true;
    axum::Json(json!({"paused": true})).into_response()
}

pub(super) async fn admin_resume(State(s): State<Arc<Shared>>) -> Response {
    s.store.lock().expect("store").paused = false;
    s.wake.notify_one();
    axum::Json(json!({"paused": false})).into_response()
}

pub(super) async fn admin_deliveries(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    axum::Json(log_json(&s, limit)).into_response()
}

pub(super) async fn admin_endpoints(State(s): State<Arc<Shared>>) -> Response {
    let hooks = s.hooks.lock().expect("hooks");
    axum::Json(json!(hooks.endpoints)).into_response()
}

/// `GET /_mock/signed/{token}?expires=…&signature=…`: the payload behind a presigned URL
/// (large-payload mode). No API key, as with any presigned URL; the signature is the key.
pub(super) async fn signed_payload(
    State(s): State<Arc<Shared>>,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (expires, signature) = (q.get("expires"), q.get("signature"));
    match s.signed.fetch(
        &token,
        expires.map(|e| e.as_str()),
        signature.map(|e| e.as_str()),
    ) {
        Ok(payload) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            payload,
        )
            .into_response(),
        Err(signed_url::Refused::Forbidden(why)) => (StatusCode::FORBIDDEN, why).into_response(),
        Err(signed_url::Refused::Gone) => (
            StatusCode::NOT_FOUND,
            "this payload is no longer kept (webhooks.signed_url.kept)",
        )
            .into_response(),
    }
}

/// `GET /_mock/grade`: the client's grade so far (`mock --grade`, or a profile whose
/// sparring records); 404 with the fix when nothing is recorded.
pub(super) async fn admin_grade(State(s): State<Arc<Shared>>) -> Response {
    let Some(r) = &s.recorder else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "this mock does not record its client: start it with --grade DIR, or a profile with sparring.record: true"})),
        )
            .into_response();
    };
    let obs = r.observed.lock().expect("observed").clone();
    let grade = crate::grade::Grade::judge(&obs, &s.profile.sparring.grade, None);
    axum::Json(grade).into_response()
}

/// `GET /_mock/metrics`: the mock's state for Prometheus at each scrape — runs by status,
/// runs and batches created, requests by endpoint, webhook deliveries by outcome.
pub(super) async fn admin_metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::exposition::CONTENT_TYPE,
        )],
        crate::metrics::exposition::render(MockCollector(s)),
    )
        .into_response()
}

struct MockCollector(Arc<Shared>);

impl std::fmt::Debug for MockCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockCollector")
    }
}

impl prometheus_client::collector::Collector for MockCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let (by_status, created, batches) = {
            let store = s.store.lock().expect("store");
            let (by_status, _) = store.summary();
            let by_status: Vec<(String, u64)> = by_status
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            (by_status, store.runs_created, store.batches_created)
        };
        let requests: Vec<(String, u64)> = s
            .request_counts
            .lock()
            .expect("counts")
            .iter()
            .map(|(e, n)| (format!("{e:?}").to_lowercase(), *n))
            .collect();
        let st = &s.stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let deliveries = vec![
            ("delivered".to_string(), load(&st.delivered)),
            ("failed".to_string(), load(&st.failed)),
            ("dropped".to_string(), load(&st.dropped)),
            ("duplicated".to_string(), load(&st.duplicated)),
        ];
        let mut m = crate::metrics::exposition::Scrape::new(&mut encoder);
        m.gauge(
            "batchproof_mock_runs_created",
            "Runs the mock has created since it started (or was reset)",
            created as f64,
        )?;
        m.gauge(
            "batchproof_mock_batches_created",
            "Batches the mock has accepted",
            batches as f64,
        )?;
        m.counters(
            "batchproof_mock_requests",
            "API requests by endpoint",
            "endpoint",
            requests,
        )?;
        m.counters(
            "batchproof_mock_deliveries",
            "Webhook delivery attempts by outcome",
            "outcome",
            deliveries,
        )?;
        m.gauge(
            "batchproof_mock_deliveries_pending",
            "Webhook deliveries waiting to be sent or retried",
            load(&st.pending) as f64,
        )?;
        // Runs by status is a level, not a count of events: one gauge per status.
        for (status, n) in by_status {
            m.gauge(
                &format!("batchproof_mock_runs_{}", status.to_lowercase()),
                &format!("Runs retained by the mock now in status {status}"),
                n as f64,
            )?;
        }
        Ok(())
    }
}
