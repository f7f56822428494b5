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
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::Shared;
use super::delivery::{HookEndpoint, Subscription, log_json};
use super::limiter::Category;
use super::profile::{Endpoint, MissingVersion};
use super::state::{FAILURE_REASONS, ListQuery, Outcome, Run, RunFile, Store};
use super::validate::{self, BatchLimits, FileSpec, NewRun, Reject, Source};
use super::wire;
use crate::api::error::{ErrorCode, ErrorShape};
use crate::api::{
    ApiVersion, BATCH_DEFAULT_PRIORITY, MAX_BATCH_INPUTS, REQUEST_ID_HEADER, RunStatus,
    SINGLE_DEFAULT_PRIORITY, VERSION_HEADER, WORKSPACE_HEADER,
};

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// A random URL-safe id tail of `n` characters.
pub fn random_id(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

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
        .route("/webhook_subscriptions", post(create_webhook_subscription))
        .route("/_mock/state", get(admin_state))
        .route("/_mock/batches/{id}", get(admin_batch))
        .route("/_mock/reset", post(admin_reset))
        .route("/_mock/pause", post(admin_pause))
        .route("/_mock/resume", post(admin_resume))
        .route("/_mock/deliveries", get(admin_deliveries))
        .route("/_mock/endpoints", get(admin_endpoints))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(limit))
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
    if shared.profile.defects.wrong_error_shape {
        shape = match shape {
            ErrorShape::Coded => ErrorShape::Legacy,
            ErrorShape::Legacy => ErrorShape::Coded,
        };
    }
    let body = shape.body(code, message, request_id);
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

fn reject(shared: &Shared, ctx: &Ctx, r: Reject) -> Response {
    error_response(
        shared,
        ctx.version,
        r.code,
        &r.message,
        &ctx.request_id,
        None,
    )
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
    let profile = &shared.profile;
    let request_id = format!("req_{}", random_id(20));
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
    let version = match headers.get(VERSION_HEADER).map(|v| v.to_str()) {
        Some(Ok(v)) => match v.trim().parse::<ApiVersion>() {
            Ok(v) => v,
            Err(msg) => {
                return Err(error_response(
                    shared,
                    ApiVersion::CURRENT,
                    ErrorCode::InvalidRequest,
                    &format!("Invalid {VERSION_HEADER} header: {msg}"),
                    &request_id,
                    None,
                ));
            }
        },
        Some(Err(_)) => {
            return Err(error_response(
                shared,
                ApiVersion::CURRENT,
                ErrorCode::InvalidRequest,
                &format!("Invalid {VERSION_HEADER} header: not ASCII"),
                &request_id,
                None,
            ));
        }
        None if profile.defects.accept_missing_version => ApiVersion::CURRENT,
        None => match profile.missing_version {
            MissingVersion::Legacy(v) => v,
            MissingVersion::Reject => {
                return Err(error_response(
                    shared,
                    ApiVersion::CURRENT,
                    ErrorCode::InvalidRequest,
                    &format!(
                        "Missing {VERSION_HEADER} header; send e.g. `{VERSION_HEADER}: {}`",
                        ApiVersion::CURRENT
                    ),
                    &request_id,
                    None,
                ));
            }
        },
    };
    if !profile.defects.auth_not_enforced {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let message = match token {
            None => Some(
                "Missing or malformed Authorization header; send `Authorization: Bearer <API key>`",
            ),
            Some(t) if !profile.auth.tokens.iter().any(|k| k == t) => Some("Invalid API key"),
            Some(_) => None,
        };
        if let Some(message) = message {
            return Err(error_response(
                shared,
                version,
                ErrorCode::Unauthorized,
                message,
                &request_id,
                None,
            ));
        }
    }
    if let Some(ws) = headers.get(WORKSPACE_HEADER).and_then(|v| v.to_str().ok())
        && !profile.auth.workspaces.is_empty()
        && !profile.auth.workspaces.iter().any(|w| w == ws)
    {
        return Err(error_response(
            shared,
            version,
            ErrorCode::Forbidden,
            &format!("This API key has no access to workspace `{ws}`"),
            &request_id,
            None,
        ));
    }
    let limited = shared
        .limiters
        .lock()
        .expect("limiters")
        .take(Category::of(endpoint));
    if let Err(wait) = limited {
        return Err(error_response(
            shared,
            version,
            ErrorCode::RateLimitExceeded,
            "Too many requests. Back off and retry.",
            &request_id,
            // Retry-After is in real time: the bucket already runs at the scaled rate.
            Some(wait),
        ));
    }
    Ok(Ctx {
        version,
        request_id,
        endpoint,
    })
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
    let bytes = match body {
        Ok(b) => b,
        Err(rej) => {
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
            return Err(error_response(
                shared,
                ctx.version,
                code,
                &msg,
                &ctx.request_id,
                None,
            ));
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        error_response(
            shared,
            ctx.version,
            ErrorCode::InvalidRequest,
            &format!("Request body is not valid JSON: {e}"),
            &ctx.request_id,
            None,
        )
    })
}

fn file_kind(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" | "jpg" | "jpeg" | "gif" | "tif" | "tiff" | "webp" | "heic" => "IMG",
        "csv" => "CSV",
        "txt" => "TXT",
        "doc" | "docx" => "DOCX",
        "xls" | "xlsx" => "EXCEL",
        "xml" => "XML",
        "html" | "htm" => "HTML",
        _ => "PDF",
    }
}

fn run_file(spec: &FileSpec) -> RunFile {
    let (source, default_name, kind) = match &spec.source {
        Source::Url(u) => {
            let path = u.split(['?', '#']).next().unwrap_or(u);
            let last = path
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("document.pdf");
            (format!("url:{u}"), last.to_string(), None)
        }
        Source::Id(id) => (format!("id:{id}"), format!("{id}.pdf"), None),
        Source::Text(t) => (format!("text:{t}"), "text.txt".to_string(), Some("TXT")),
    };
    let name = spec.name.clone().unwrap_or(default_name);
    let hash = source
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    RunFile {
        id: match &spec.source {
            Source::Id(id) => id.clone(),
            _ => format!("file_{}", random_id(20)),
        },
        kind: kind.unwrap_or_else(|| file_kind(&name)),
        name,
        source,
        page_count: 1 + hash % 12,
    }
}

/// Makes a run from a validated input, drawing its outcome from the seed and its seq.
fn new_run(
    shared: &Shared,
    seq: u64,
    input: NewRun,
    workflow: usize,
    version: &str,
    batch_id: Option<&str>,
    priority: u8,
) -> Run {
    let profile = &shared.profile;
    let mut rng = ChaCha8Rng::seed_from_u64(profile.seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let o = &profile.processing.outcomes;
    let total = o.processed + o.failed + o.needs_review;
    let pick = rng.random::<f64>() * total;
    let outcome = if pick < o.processed {
        Outcome::Processed
    } else if pick < o.processed + o.failed {
        Outcome::Failed(FAILURE_REASONS[rng.random_range(0..FAILURE_REASONS.len())])
    } else {
        Outcome::NeedsReview
    };
    let duration = profile.scaled(profile.processing.duration.sample(&mut rng));
    let mute = rng.random::<f64>() < profile.defects.missing_terminal_webhook;
    let now = Utc::now();
    let files: Vec<RunFile> = input.files.iter().map(run_file).collect();
    Run {
        seq,
        id: format!("workflow_run_{}", random_id(21)),
        workflow,
        version: version.to_string(),
        batch_id: batch_id.map(str::to_string),
        status: RunStatus::Pending,
        priority,
        metadata: input.metadata,
        name: files.first().map(|f| f.name.clone()).unwrap_or_default(),
        files,
        created_at: now,
        updated_at: now,
        start_time: None,
        end_time: None,
        outcome,
        duration,
        regress: profile.defects.status_regression && seq % 5 == 0,
        mute_terminal: mute,
    }
}

fn batch_id_visible(shared: &Shared) -> bool {
    !shared.profile.defects.runs_without_batch_id
}

async fn create_batch(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::Batch).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match read_json(&s, &ctx, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let defects = &s.profile.defects;
    let limits = BatchLimits {
        min: if defects.accept_empty_batch { 0 } else { 1 },
        max: if defects.accept_oversized_batch {
            usize::MAX
        } else {
            MAX_BATCH_INPUTS
        },
    };
    let req = match validate::batch(ctx.version, &s.profile, &body, limits) {
        Ok(r) => r,
        Err(e) => return reject(&s, &ctx, e),
    };
    // Defect: throttle valid batches that follow another closely. Applied after
    // validation, so invalid batches still get their 400 and only the rapid-succession
    // rule breaks.
    if let Some(window) = defects.throttle_rapid_batches {
        let mut last = s.last_batch.lock().expect("last batch");
        let now = Instant::now();
        let rapid = last.is_some_and(|t| now.duration_since(t) < window.0);
        *last = Some(now);
        if rapid {
            return error_response(
                &s,
                ctx.version,
                ErrorCode::RateLimitExceeded,
                "Too many requests. Back off and retry.",
                &ctx.request_id,
                Some(window.0),
            );
        }
    }
    let batch_id = format!("batch_{}", random_id(8));
    let priority = defects
        .batch_priority
        .unwrap_or(req.priority.unwrap_or(BATCH_DEFAULT_PRIORITY));
    let (workflow, version) = (req.workflow, req.version);
    let mut inputs: Vec<NewRun> = req.runs;
    // Defects: one run too few (the last input's) or one too many (the last input twice).
    let extra = defects
        .extra_run_per_batch
        .then(|| inputs.last().cloned())
        .flatten();
    if defects.lost_run_per_batch {
        inputs.pop();
    }
    // Sequence numbers are reserved first and the runs built outside the lock, so the
    // scheduler and other requests wait only for the inserts.
    let inputs: Vec<NewRun> = inputs.into_iter().chain(extra).collect();
    let first = s
        .store
        .lock()
        .expect("store")
        .reserve_seqs(inputs.len() as u64);
    let runs: Vec<Run> = inputs
        .into_iter()
        .zip(first..)
        .map(|(input, seq)| {
            new_run(
                &s,
                seq,
                input,
                workflow,
                &version,
                Some(&batch_id),
                priority,
            )
        })
        .collect();
    {
        let mut store = s.store.lock().expect("store");
        for run in runs {
            store.insert(run, defects.ignore_priority);
        }
        store.batches_created += 1;
    }
    s.wake.notify_one();
    let body = if ctx.version.is_legacy() {
        json!({"success": true, "batchId": batch_id})
    } else {
        json!({"batchId": batch_id})
    };
    finish(&s, &ctx, ok_json(&ctx, body))
}

async fn create_run(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::Create).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match read_json(&s, &ctx, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let req = match validate::single(ctx.version, &s.profile, &body) {
        Ok(r) => r,
        Err(e) => return reject(&s, &ctx, e),
    };
    let priority = req.priority.unwrap_or(SINGLE_DEFAULT_PRIORITY);
    let runs: Vec<Value> = {
        let mut store = s.store.lock().expect("store");
        req.runs
            .into_iter()
            .map(|input| {
                let seq = store.reserve_seqs(1);
                let run = new_run(&s, seq, input, req.workflow, &req.version, None, priority);
                let v = wire::run_full(ctx.version, &run, &s.profile, true);
                store.insert(run, s.profile.defects.ignore_priority);
                v
            })
            .collect()
    };
    s.wake.notify_one();
    let body = if ctx.version.is_legacy() {
        json!({"success": true, "workflowRuns": runs})
    } else {
        runs.into_iter().next().unwrap_or(Value::Null)
    };
    finish(&s, &ctx, ok_json(&ctx, body))
}

fn encode_token(key: (i64, u64)) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", key.0, key.1))
}

fn decode_token(token: &str) -> Option<(i64, u64)> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.strip_prefix("v1:")?.split(':');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

async fn list_runs(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::List).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let params = match validate::list(ctx.version, &q) {
        Ok(p) => p,
        Err(e) => return reject(&s, &ctx, e),
    };
    let after = match &params.next_page_token {
        None => None,
        Some(t) => match decode_token(t) {
            Some(k) => Some(k),
            None => {
                return reject(
                    &s,
                    &ctx,
                    Reject {
                        code: ErrorCode::InvalidRequest,
                        message: "`nextPageToken` is not a token this server issued".into(),
                    },
                );
            }
        },
    };
    let workflow_id = match &params.workflow_id {
        None => None,
        Some(w) => match s.profile.workflows.iter().position(|x| &x.id == w) {
            Some(i) => Some(i),
            // An unknown workflow simply matches nothing.
            None => Some(usize::MAX),
        },
    };
    let query = ListQuery {
        status: params.status,
        workflow_id,
        batch_id: params.batch_id.clone(),
        file_name_contains: params.file_name_contains.clone(),
        sort_by_created: params.sort_by_created,
        ascending: params.ascending,
        after,
        page_size: params.max_page_size,
    };
    let visible = batch_id_visible(&s);
    let (runs, token) = {
        let store = s.store.lock().expect("store");
        let (page, more) = store.list(&query);
        let mut token = if more {
            page.last()
                .map(|r| encode_token(Store::sort_key(r, params.sort_by_created)))
        } else {
            None
        };
        // Defect: the cursor points one run back, so each page repeats the previous
        // page's last run.
        if s.profile.defects.repeat_across_pages && more && page.len() >= 2 {
            token = Some(encode_token(Store::sort_key(
                page[page.len() - 2],
                params.sort_by_created,
            )));
        }
        let runs: Vec<Value> = page
            .iter()
            .map(|r| wire::run_summary(ctx.version, r, &s.profile, visible))
            .collect();
        (runs, token)
    };
    let body = if ctx.version.is_legacy() {
        json!({"success": true, "workflowRuns": runs, "nextPageToken": token})
    } else {
        json!({"object": "list", "data": runs, "nextPageToken": token})
    };
    finish(&s, &ctx, ok_json(&ctx, body))
}

fn run_not_found(s: &Shared, ctx: &Ctx, id: &str) -> Response {
    reject(
        s,
        ctx,
        Reject {
            code: ErrorCode::NotFound,
            message: format!("Workflow run `{id}` not found"),
        },
    )
}

fn wrap_run(version: ApiVersion, run: Value) -> Value {
    if version.is_legacy() {
        json!({"success": true, "workflowRun": run})
    } else {
        run
    }
}

async fn get_run(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::Get).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let run = {
        let store = s.store.lock().expect("store");
        store
            .get(&id)
            .map(|r| wire::run_full(ctx.version, r, &s.profile, batch_id_visible(&s)))
    };
    match run {
        Some(run) => finish(&s, &ctx, ok_json(&ctx, wrap_run(ctx.version, run))),
        None => run_not_found(&s, &ctx, &id),
    }
}

async fn update_run(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::Update).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match read_json(&s, &ctx, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(m) = body.as_object() else {
        return reject(
            &s,
            &ctx,
            Reject {
                code: ErrorCode::InvalidRequest,
                message: "`body` must be a JSON object".into(),
            },
        );
    };
    let name = match m.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => {
            return reject(
                &s,
                &ctx,
                Reject {
                    code: ErrorCode::InvalidRequest,
                    message: "`name` must be a string".into(),
                },
            );
        }
    };
    let meta = match m.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(o.clone()),
        Some(_) => {
            return reject(
                &s,
                &ctx,
                Reject {
                    code: ErrorCode::InvalidRequest,
                    message: "`metadata` must be a JSON object".into(),
                },
            );
        }
    };
    let run = {
        let mut store = s.store.lock().expect("store");
        store.get_mut(&id).map(|run| {
            if let Some(n) = name {
                run.name = n;
            }
            if let Some(meta) = meta {
                // Merge: incoming keys win, other keys stay.
                if let Some(existing) = run.metadata.as_object_mut() {
                    existing.extend(meta);
                }
            }
            run.updated_at = Utc::now();
            wire::run_full(ctx.version, run, &s.profile, batch_id_visible(&s))
        })
    };
    match run {
        Some(run) => finish(&s, &ctx, ok_json(&ctx, wrap_run(ctx.version, run))),
        None => run_not_found(&s, &ctx, &id),
    }
}

async fn cancel_run(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::Cancel).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result = {
        let mut store = s.store.lock().expect("store");
        match store.get_mut(&id) {
            None => None,
            Some(run) if matches!(run.status, RunStatus::Pending | RunStatus::Processing) => {
                let now = Utc::now();
                run.status = RunStatus::Cancelled;
                run.updated_at = now;
                run.end_time = Some(now);
                let snapshot = run.clone();
                let seq = run.seq;
                store.mark_finished(seq, Instant::now());
                Some(Ok(snapshot))
            }
            Some(run) => Some(Err(run.status)),
        }
    };
    match result {
        None => run_not_found(&s, &ctx, &id),
        Some(Err(status)) => reject(
            &s,
            &ctx,
            Reject {
                code: ErrorCode::InvalidRequest,
                message: format!(
                    "Only PENDING or PROCESSING runs can be cancelled; this run is {status}"
                ),
            },
        ),
        Some(Ok(run)) => {
            let body = wire::run_full(ctx.version, &run, &s.profile, batch_id_visible(&s));
            let _ = s.announce.send(run);
            s.wake.notify_one();
            finish(&s, &ctx, ok_json(&ctx, wrap_run(ctx.version, body)))
        }
    }
}

async fn delete_run(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::Delete).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let removed = s.store.lock().expect("store").delete(&id);
    match removed {
        None => run_not_found(&s, &ctx, &id),
        Some(_) => {
            let body = if ctx.version.is_legacy() {
                json!({"success": true, "workflowRunId": id, "message": "Workflow run deleted"})
            } else {
                json!({"id": id})
            };
            finish(&s, &ctx, ok_json(&ctx, body))
        }
    }
}

fn string_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, Reject> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| {
                e.as_str().map(str::to_string).ok_or_else(|| Reject {
                    code: ErrorCode::InvalidRequest,
                    message: format!("`{field}` must be an array of strings"),
                })
            })
            .collect(),
        Some(_) => Err(Reject {
            code: ErrorCode::InvalidRequest,
            message: format!("`{field}` must be an array of strings"),
        }),
    }
}

async fn create_webhook_endpoint(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::WebhookEndpoints).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match read_json(&s, &ctx, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let bad = |m: &str| Reject {
        code: ErrorCode::InvalidRequest,
        message: m.to_string(),
    };
    let url = match body.get("url").and_then(Value::as_str) {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.to_string(),
        _ => {
            return reject(
                &s,
                &ctx,
                bad("`url` is required and must be an http(s) URL"),
            );
        }
    };
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("batchproof")
        .to_string();
    let api_version = match body.get("apiVersion").and_then(Value::as_str) {
        Some(v) => match v.parse::<ApiVersion>() {
            Ok(v) => v,
            Err(m) => return reject(&s, &ctx, bad(&format!("`apiVersion`: {m}"))),
        },
        None => return reject(&s, &ctx, bad("`apiVersion` is required")),
    };
    let events = match string_list(body.get("enabledEvents"), "enabledEvents") {
        Ok(e) => e,
        Err(e) => return reject(&s, &ctx, e),
    };
    let secret = format!("wss_{}", random_id(32));
    let id = format!("wh_{}", random_id(12));
    let now = wire::ts(Utc::now());
    s.hooks.lock().expect("hooks").endpoints.push(HookEndpoint {
        id: id.clone(),
        url: url.clone(),
        name: name.clone(),
        secret: secret.clone(),
        api_version,
        events: events.clone(),
        from_profile: false,
        subscriptions: vec![],
    });
    s.has_endpoints.store(true, Ordering::Relaxed);
    // The signing secret is returned here and never again.
    let body = json!({
        "object": "webhook_endpoint", "id": id, "url": url, "name": name,
        "enabledEvents": events, "apiVersion": api_version.as_str(), "status": "enabled",
        "signingSecret": secret, "advancedOptions": null, "createdAt": now, "updatedAt": now,
    });
    finish(&s, &ctx, ok_json(&ctx, body))
}

async fn create_webhook_subscription(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::WebhookEndpoints).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match read_json(&s, &ctx, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let bad = |m: String| Reject {
        code: ErrorCode::InvalidRequest,
        message: m,
    };
    let Some(endpoint_id) = body.get("webhookEndpointId").and_then(Value::as_str) else {
        return reject(&s, &ctx, bad("`webhookEndpointId` is required".into()));
    };
    if body.get("resourceType").and_then(Value::as_str) != Some("workflow") {
        return reject(&s, &ctx, bad("`resourceType` must be `workflow`".into()));
    }
    let Some(resource_id) = body.get("resourceId").and_then(Value::as_str) else {
        return reject(&s, &ctx, bad("`resourceId` is required".into()));
    };
    if !s.profile.workflows.iter().any(|w| w.id == resource_id) {
        return reject(
            &s,
            &ctx,
            Reject {
                code: ErrorCode::NotFound,
                message: format!("Workflow `{resource_id}` not found"),
            },
        );
    }
    let events = match string_list(body.get("enabledEvents"), "enabledEvents") {
        Ok(e) => e,
        Err(e) => return reject(&s, &ctx, e),
    };
    if let Some(e) = events.iter().find(|e| !e.starts_with("workflow_run.")) {
        return reject(&s, &ctx, bad(format!("`{e}` is not a workflow-run event")));
    }
    let id = format!("whs_{}", random_id(12));
    {
        let mut hooks = s.hooks.lock().expect("hooks");
        let Some(ep) = hooks.endpoints.iter_mut().find(|e| e.id == endpoint_id) else {
            drop(hooks);
            return reject(
                &s,
                &ctx,
                Reject {
                    code: ErrorCode::NotFound,
                    message: format!("Webhook endpoint `{endpoint_id}` not found"),
                },
            );
        };
        ep.subscriptions.push(Subscription {
            id: id.clone(),
            workflow_id: resource_id.to_string(),
            events: events.clone(),
        });
    }
    let now = wire::ts(Utc::now());
    let body = json!({
        "object": "webhook_subscription", "id": id, "webhookEndpointId": endpoint_id,
        "resourceType": "workflow", "resourceId": resource_id, "enabledEvents": events,
        "createdAt": now, "updatedAt": now,
    });
    finish(&s, &ctx, ok_json(&ctx, body))
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

async fn admin_state(State(s): State<Arc<Shared>>) -> Response {
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

async fn admin_batch(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
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

async fn admin_reset(State(s): State<Arc<Shared>>) -> Response {
    s.store.lock().expect("store").reset();
    s.request_counts.lock().expect("counts").clear();
    *s.last_batch.lock().expect("last") = None;
    s.wake.notify_one();
    axum::Json(json!({"reset": true})).into_response()
}

async fn admin_pause(State(s): State<Arc<Shared>>) -> Response {
    s.store.lock().expect("store").paused = true;
    axum::Json(json!({"paused": true})).into_response()
}

async fn admin_resume(State(s): State<Arc<Shared>>) -> Response {
    s.store.lock().expect("store").paused = false;
    s.wake.notify_one();
    axum::Json(json!({"paused": false})).into_response()
}

async fn admin_deliveries(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    axum::Json(log_json(&s, limit)).into_response()
}

async fn admin_endpoints(State(s): State<Arc<Shared>>) -> Response {
    let hooks = s.hooks.lock().expect("hooks");
    axum::Json(json!(hooks.endpoints)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let t = encode_token((1_700_000_000_123_456_789, 42));
        assert_eq!(decode_token(&t), Some((1_700_000_000_123_456_789, 42)));
        assert_eq!(decode_token("not a token"), None);
    }

    #[test]
    fn file_names_and_kinds_come_from_the_url() {
        let f = run_file(&FileSpec {
            source: Source::Url("https://x.test/a/b/scan.PNG?sig=1".into()),
            name: None,
        });
        assert_eq!((f.name.as_str(), f.kind), ("scan.PNG", "IMG"));
        let t = run_file(&FileSpec {
            source: Source::Text("hi".into()),
            name: None,
        });
        assert_eq!(t.kind, "TXT");
    }
}
