//! The mock's HTTP front: routes, the per-request prelude (version, auth, workspace, rate
//! limit, injected latency and stalls), handlers for every workflow-run endpoint in each
//! version's shapes, webhook endpoint registration, and the `/_mock/` admin surface.

// Handlers return early with a ready `Response` as their error; it is built once per
// request, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

mod admin;
mod list;
mod record;
mod runs;
mod webhooks;

use admin::*;
use list::*;
use runs::*;
use webhooks::*;

use super::Shared;
use super::delivery::{HookEndpoint, Subscription};
use super::delivery_log::log_json;
use super::profile::{Endpoint, MissingVersion};
use super::refusal::{Invalid, Refusal, Reject};
use super::signed_url::{self, AdvancedOptions};
use super::state::{ListQuery, Outcome, Run, RunFile, Store};
use super::validate::{self, BatchLimits, FileSpec, NewRun, Source};
use super::wire;
use crate::api::error::{ErrorCode, ErrorShape};
use crate::api::{
    ApiVersion, BATCH_DEFAULT_PRIORITY, FAILURE_REASONS, MAX_BATCH_INPUTS, REQUEST_ID_HEADER,
    RunStatus, SINGLE_DEFAULT_PRIORITY, VERSION_HEADER, WORKSPACE_HEADER,
};

pub use super::state::{prefixed_id, random_id};

pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.profile.max_body_bytes;
    Router::new()
        .route("/workflow_runs/batch", post(create_batch))
        .route("/workflow_runs", post(create_run).get(list_runs))
        .route(
            "/workflow_runs/{id}",
            get(get_run).post(update_run).delete(delete_run),
        )
        .route("/workflow_runs/{id}/cancel", post(cancel_run))
        .route("/webhook_endpoints", post(create_webhook_endpoint))
        .route(
            "/webhook_endpoints/{id}",
            axum::routing::delete(delete_webhook_endpoint),
        )
        .route("/webhook_subscriptions", post(create_webhook_subscription))
        .route("/_mock/state", get(admin_state))
        .route("/_mock/metrics", get(admin_metrics))
        .route("/_mock/grade", get(admin_grade))
        .route("/_mock/batches/{id}", get(admin_batch))
        .route("/_mock/runs/{id}", get(admin_run))
        .route("/_mock/runs/{id}/review", post(admin_review))
        .route("/_mock/reset", post(admin_reset))
        .route("/_mock/pause", post(admin_pause))
        .route("/_mock/resume", post(admin_resume))
        .route("/_mock/deliveries", get(admin_deliveries))
        .route("/_mock/endpoints", get(admin_endpoints))
        .route(
            &format!("{}/{{token}}", signed_url::PATH),
            get(signed_payload),
        )
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            record::record,
        ))
        .with_state(shared)
}

/// What the prelude learned about a request that passed it.
struct Ctx {
    version: ApiVersion,
    request_id: String,
    endpoint: Endpoint,
}

fn error_response(
    shared: &Shared,
    version: ApiVersion,
    code: ErrorCode,
    message: &str,
    request_id: &str,
    retry_after: Option<Duration>,
) -> Response {
    let mut shape = ErrorShape::for_version(version);
    let wrong = shared.profile.defects.wrong_error_shape;
    if wrong {
        shape = match shape {
            ErrorShape::Coded => ErrorShape::Legacy,
            ErrorShape::Legacy => ErrorShape::Coded,
        };
    }
    // 2025-04-21 may answer either shape: the defect answers neither there.
    let body = if wrong && version == ApiVersion::V2025_04_21 {
        serde_json::json!({ "detail": message })
    } else {
        shape.body(code, message, request_id)
    };
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(REQUEST_ID_HEADER, v);
    }
    if let Some(wait) = retry_after {
        // Whole seconds for Retry-After (what every client reads) and milliseconds in
        // retry-after-ms, which the Python SDK prefers; time-scaled waits are often < 1 s.
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        h.insert("retry-after", HeaderValue::from(secs));
        h.insert(
            "retry-after-ms",
            HeaderValue::from(wait.as_millis().max(1) as u64),
        );
    }
    resp
}

/// A validation failure whose status the documentation leaves open gets the profile's.
fn set_validation_status(shared: &Shared, kind: Invalid, resp: &mut Response) {
    if let Ok(status) = StatusCode::from_u16(shared.profile.validation_status.of(kind)) {
        *resp.status_mut() = status;
    }
}

fn reject(shared: &Shared, ctx: &Ctx, r: impl Into<Refusal>) -> Response {
    let Refusal { reject: r, kind } = r.into();
    if kind == Some(Invalid::Malformed) && shared.profile.defects.malformed_is_500 {
        return error_response(
            shared,
            ctx.version,
            ErrorCode::InternalError,
            "Internal error",
            &ctx.request_id,
            None,
        );
    }
    let mut resp = error_response(
        shared,
        ctx.version,
        r.code,
        &r.message,
        &ctx.request_id,
        None,
    );
    if let Some(kind) = kind {
        set_validation_status(shared, kind, &mut resp);
    }
    resp
}

fn ok_json(ctx: &Ctx, body: Value) -> Response {
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

/// Version, auth, workspace and rate limit, plus the latency and stall faults, in the
/// order a real gateway would apply them.
async fn prelude(
    shared: &Shared,
    headers: &HeaderMap,
    endpoint: Endpoint,
) -> Result<Ctx, Response> {
    let request_id = format!("req_{}", random_id(20));
    delay_faults(shared, endpoint).await;
    let version = read_version(shared, headers, &request_id)?;
    authorize(shared, headers, version, &request_id)?;
    let limited = shared
        .limiters
        .lock()
        .expect("limiters")
        .take(super::limiter::category(endpoint));
    if let Err(wait) = limited {
        return Err(error_response(
            shared,
            version,
            ErrorCode::RateLimitExceeded,
            "Too many requests. Back off and retry.",
            &request_id,
            // Retry-After is in real time: the bucket already runs at the scaled rate.
            // The profile says whether this 429 tells the wait at all.
            Some(wait).filter(|_| shared.chance(shared.profile.limits.retry_after.share())),
        ));
    }
    Ok(Ctx {
        version,
        request_id,
        endpoint,
    })
}

/// The profile's stalls (the Nth request to an endpoint hangs) and latency draws.
async fn delay_faults(shared: &Shared, endpoint: Endpoint) {
    let profile = &shared.profile;
    let nth = {
        let mut counts = shared.request_counts.lock().expect("counts");
        let c = counts.entry(endpoint).or_default();
        *c += 1;
        *c
    };
    for stall in &profile.faults.stalls {
        if stall.endpoint == endpoint && stall.at_request == nth {
            tokio::time::sleep(stall.duration.0).await;
        }
    }
    if let Some(dist) = profile.faults.latency.get(&endpoint) {
        let d = dist.sample(&mut *shared.fault_rng.lock().expect("rng"));
        tokio::time::sleep(d).await;
    }
}

/// The API version the request asks for, or the error a real gateway gives.
fn read_version(
    shared: &Shared,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<ApiVersion, Response> {
    let profile = &shared.profile;
    let mut unknown = false;
    let problem = match headers.get(VERSION_HEADER).map(|v| v.to_str()) {
        Some(Ok(v)) => match v.trim().parse::<ApiVersion>() {
            Ok(v) => return Ok(v),
            Err(msg) => {
                unknown = true;
                format!("Invalid {VERSION_HEADER} header: {msg}")
            }
        },
        Some(Err(_)) => format!("Invalid {VERSION_HEADER} header: not ASCII"),
        None if profile.defects.accept_missing_version => return Ok(ApiVersion::CURRENT),
        None => match profile.missing_version {
            MissingVersion::Legacy(v) => return Ok(v),
            MissingVersion::Reject => format!(
                "Missing {VERSION_HEADER} header; send e.g. `{VERSION_HEADER}: {}`",
                ApiVersion::CURRENT
            ),
        },
    };
    let mut resp = error_response(
        shared,
        ApiVersion::CURRENT,
        ErrorCode::InvalidRequest,
        &problem,
        request_id,
        None,
    );
    if unknown {
        set_validation_status(shared, Invalid::UnknownVersion, &mut resp);
    }
    Err(resp)
}

/// The API key, then the workspace it may reach.
fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    version: ApiVersion,
    request_id: &str,
) -> Result<(), Response> {
    let profile = &shared.profile;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !profile.defects.auth_not_enforced {
        let message = match token {
            None => Some(
                "Missing or malformed Authorization header; send `Authorization: Bearer <API key>`",
            ),
            Some(t)
                if !profile.auth.tokens.iter().any(|k| k == t)
                    && !profile.auth.organization_keys.iter().any(|k| k == t) =>
            {
                Some("Invalid API key")
            }
            Some(_) => None,
        };
        if let Some(message) = message {
            return Err(error_response(
                shared,
                version,
                ErrorCode::Unauthorized,
                message,
                request_id,
                None,
            ));
        }
    }
    let workspace = headers.get(WORKSPACE_HEADER).and_then(|v| v.to_str().ok());
    if workspace.is_none()
        && token.is_some_and(|t| profile.auth.organization_keys.iter().any(|k| k == t))
    {
        return Err(error_response(
            shared,
            version,
            ErrorCode::Forbidden,
            &format!("An organization API key must name a workspace: send `{WORKSPACE_HEADER}`"),
            request_id,
            None,
        ));
    }
    if let Some(ws) = workspace
        && !profile.auth.workspaces.is_empty()
        && !profile.auth.workspaces.iter().any(|w| w == ws)
    {
        return Err(error_response(
            shared,
            version,
            ErrorCode::Forbidden,
            &format!("This API key has no access to workspace `{ws}`"),
            request_id,
            None,
        ));
    }
    Ok(())
}

/// Applies the 5xx fault *after* the work is done, so (as with a real server that fails
/// late) a batch may exist although its caller saw a 500.
fn finish(shared: &Shared, ctx: &Ctx, resp: Response) -> Response {
    let p = shared
        .profile
        .faults
        .errors
        .get(&ctx.endpoint)
        .copied()
        .unwrap_or(0.0);
    if resp.status().is_success() && shared.chance(p) {
        return error_response(
            shared,
            ctx.version,
            ErrorCode::InternalError,
            "Internal error (injected by the mock's fault profile)",
            &ctx.request_id,
            None,
        );
    }
    resp
}

fn read_json(
    shared: &Shared,
    ctx: &Ctx,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, Response> {
    let bytes = read_body(shared, ctx, body)?;
    serde_json::from_slice(&bytes).map_err(|e| not_json(shared, ctx, e))
}

/// The request body's bytes, or the API's error for a body that could not be read.
fn read_body(
    shared: &Shared,
    ctx: &Ctx,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Response> {
    body.map_err(|rej| {
        let (code, msg) = if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            (
                ErrorCode::PayloadTooLarge,
                format!(
                    "Request body is larger than {} bytes",
                    shared.profile.max_body_bytes
                ),
            )
        } else {
            (
                ErrorCode::InvalidRequest,
                format!("Cannot read request body: {rej}"),
            )
        };
        error_response(shared, ctx.version, code, &msg, &ctx.request_id, None)
    })
}

fn not_json(shared: &Shared, ctx: &Ctx, e: serde_json::Error) -> Response {
    reject(
        shared,
        ctx,
        Refusal {
            reject: Reject {
                code: ErrorCode::InvalidRequest,
                message: format!("Request body is not valid JSON: {e}"),
            },
            kind: Some(Invalid::Malformed),
        },
    )
}

async fn fallback(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let version = headers
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(ApiVersion::CURRENT);
    error_response(
        &s,
        version,
        ErrorCode::NotFound,
        "No such endpoint",
        &format!("req_{}", random_id(20)),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let t = encode_token((1_700_000_000_123_456_789, 42));
        assert_eq!(decode_token(&t), Some((1_700_000_000_123_456_789, 42)));
        for c in ['+', '/', '=', ':'] {
            assert!(t.contains(c), "{t} has no {c}");
        }
        for n in 0..50u64 {
            let key = (1_700_000_000_000_000_000 + n as i64 * 7_919, n);
            assert_eq!(decode_token(&encode_token(key)), Some(key));
        }
        assert_eq!(decode_token("not a token"), None);
        // What a client that forgot to URL-encode sends: `+` decoded as a space.
        assert_eq!(decode_token(&t.replace('+', " ")), None);
    }

    #[test]
    fn file_names_and_kinds_come_from_the_url() {
        let f = run_file(FileSpec {
            source: Source::Url("https://x.test/a/b/scan.PNG?sig=1".into()),
            name: None,
        });
        assert_eq!((f.name.as_str(), f.kind), ("scan.PNG", "IMG"));
        let t = run_file(FileSpec {
            source: Source::Text("hi".into()),
            name: None,
        });
        assert_eq!(t.kind, "TXT");
    }
}
