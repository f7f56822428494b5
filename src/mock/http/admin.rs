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
