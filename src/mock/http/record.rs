//! The sparring layer: when the profile records (`sparring.record`), every request passes
//! through here on its way in and out. It places the profile's adversities (answering a
//! throttle or a 5xx itself, or turning an accepted batch's answer into a 500) and
//! records the request and its answer for the grade. Without recording it is not
//! installed at all.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::{Shared, error_response, random_id};
use crate::api::error::ErrorCode;
use crate::api::{ApiVersion, VERSION_HEADER};
use crate::grade::observed::{Adversity, PageSeen, RequestSeen, Route};

/// How long a sparring throttle asks the client to wait.
const THROTTLE_WAIT: Duration = Duration::from_millis(1200);

/// The largest answer body read back for the record (errors and list pages are small).
const MAX_ANSWER_READ: usize = 4 * 1024 * 1024;

fn route_of(method: &Method, path: &str) -> Route {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        (_, ["_mock", ..]) => Route::Admin,
        ("POST", ["workflow_runs", "batch"]) => Route::Batch,
        ("POST", ["workflow_runs"]) => Route::Create,
        ("GET", ["workflow_runs"]) => Route::List,
        ("GET", ["workflow_runs", _]) => Route::Get,
        (_, ["workflow_runs", ..]) => Route::Write,
        (_, ["webhook_endpoints" | "webhook_subscriptions", ..]) => Route::WebhookSetup,
        _ => Route::Other,
    }
}

fn hash_of(parts: &[&[u8]]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// A batch body's input count and a fingerprint of each input.
fn inputs_of(body: &[u8]) -> (Option<usize>, Vec<u64>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (None, vec![]);
    };
    let Some(inputs) = v.get("inputs").and_then(Value::as_array) else {
        return (None, vec![]);
    };
    let keys = inputs
        .iter()
        .map(|i| hash_of(&[i.to_string().as_bytes()]))
        .collect();
    (Some(inputs.len()), keys)
}

fn version_of(headers: &HeaderMap) -> ApiVersion {
    headers
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(ApiVersion::CURRENT)
}

/// The answer a placed adversity gives instead of the handler's.
fn adversity_answer(s: &Shared, headers: &HeaderMap, a: Adversity) -> Response {
    let version = version_of(headers);
    let id = format!("req_{}", random_id(20));
    let throttle = "Too many requests. Back off and retry.";
    match a {
        Adversity::Throttled => error_response(
            s,
            version,
            ErrorCode::RateLimitExceeded,
            throttle,
            &id,
            Some(THROTTLE_WAIT),
        ),
        Adversity::ThrottledSilent => error_response(
            s,
            version,
            ErrorCode::RateLimitExceeded,
            throttle,
            &id,
            None,
        ),
        Adversity::ServerError | Adversity::AcceptedThenFailed => error_response(
            s,
            version,
            ErrorCode::InternalError,
            "Internal error",
            &id,
            None,
        ),
    }
}

/// The wait an answer asks for: retry-after-ms, else Retry-After in seconds.
fn retry_after_ms(headers: &HeaderMap) -> Option<u64> {
    let read = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    read("retry-after-ms")
        .or_else(|| read("retry-after").map(|s| s * 1000.0))
        .map(|ms| ms.max(0.0) as u64)
}

/// The middleware: see the module comment.
pub async fn record(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let Some(recorder) = s.recorder.clone() else {
        return next.run(req).await;
    };
    let at_ms = s.started.elapsed().as_millis() as u64;
    let (parts, body) = req.into_parts();
    // Read once to record; a body over the limit is recorded empty and handed on as one
    // that is over the limit, so the handler answers 413 as it does when not recording.
    let (body, oversized) = match axum::body::to_bytes(body, s.profile.max_body_bytes).await {
        Ok(b) => (b, false),
        Err(_) => (Bytes::new(), true),
    };
    let route = route_of(&parts.method, parts.uri.path());
    let query = parts.uri.query().unwrap_or("").to_string();
    let (inputs, input_keys) = if route == Route::Batch {
        inputs_of(&body)
    } else {
        (None, vec![])
    };
    let decoded: HashMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let mut seen = RequestSeen {
        at_ms,
        answered_ms: at_ms,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        key: hash_of(&[
            parts.method.as_str().as_bytes(),
            parts.uri.path().as_bytes(),
            query.as_bytes(),
            &body,
        ]),
        query,
        route,
        version: parts
            .headers
            .get(VERSION_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        status: 0,
        retry_after_ms: None,
        adversity: recorder.adversity(&s.profile.sparring, route),
        refusal: None,
        inputs,
        input_keys,
        page: (route == Route::List).then(|| PageSeen {
            batch_id: decoded.get("batchId").cloned(),
            token_sent: decoded.get("nextPageToken").cloned(),
            token_answered: None,
        }),
    };
    let headers = parts.headers.clone();
    let mut resp = match seen.adversity {
        Some(a) if a != Adversity::AcceptedThenFailed => adversity_answer(&s, &headers, a),
        _ if oversized => {
            let over = http_body_util::Limited::new(Body::from(vec![0u8]), 0);
            next.run(Request::from_parts(parts, Body::new(over))).await
        }
        _ => next.run(Request::from_parts(parts, Body::from(body))).await,
    };
    if seen.adversity == Some(Adversity::AcceptedThenFailed) {
        if resp.status().is_success() {
            resp = adversity_answer(&s, &headers, Adversity::AcceptedThenFailed);
        } else {
            // Refused anyway: nothing was accepted, so nothing is ambiguous; the next
            // batch POST meets it instead.
            seen.adversity = None;
            recorder.carry_accepted_then_failed();
        }
    }
    seen.status = resp.status().as_u16();
    seen.retry_after_ms = retry_after_ms(resp.headers());
    let resp = if seen.status >= 400 || seen.page.is_some() {
        let (rp, rb) = resp.into_parts();
        let bytes: Bytes = axum::body::to_bytes(rb, MAX_ANSWER_READ)
            .await
            .unwrap_or_default();
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            if seen.status >= 400 {
                let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
                seen.refusal = Some(format!(
                    "{} {}",
                    text("code").unwrap_or_default(),
                    text("message")
                        .or_else(|| v.get("error").and_then(Value::as_str).map(str::to_string))
                        .unwrap_or_default()
                ));
            }
            if let Some(page) = seen.page.as_mut() {
                page.token_answered = v
                    .get("nextPageToken")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
        }
        Response::from_parts(rp, Body::from(bytes))
    } else {
        resp
    };
    seen.answered_ms = s.started.elapsed().as_millis() as u64;
    recorder.observed.lock().expect("observed").request(seen);
    resp
}
