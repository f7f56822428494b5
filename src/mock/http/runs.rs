//! Workflow runs: batch and single creation, get, update, cancel and delete (list is in
//! `list`).

use super::*;
use crate::mock::raw::Metadata;
use crate::mock::state::RunIds;
use crate::mock::steer::Steered;

pub(super) fn file_kind(name: &str) -> &'static str {
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

pub(super) fn run_file(spec: FileSpec) -> RunFile {
    let FileSpec { source, name } = spec;
    let (id, default_name, kind, source) = match source {
        Source::Url(u) => {
            let path = u.split(['?', '#']).next().unwrap_or(&u);
            let last = path
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("document.pdf")
                .to_string();
            (None, last, None, format!("url:{u}"))
        }
        Source::Id(id) => {
            let (name, source) = (format!("{id}.pdf"), format!("id:{id}"));
            (Some(id), name, None, source)
        }
        Source::Text(t) => (
            None,
            "text.txt".to_string(),
            Some("TXT"),
            format!("text:{t}"),
        ),
    };
    let name = name.unwrap_or(default_name);
    let hash = source
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    RunFile {
        id: id.unwrap_or_else(|| prefixed_id("file_", 20)),
        kind: kind.unwrap_or_else(|| file_kind(&name)),
        name,
        source,
        page_count: 1 + hash % 12,
    }
}

/// What a request says about every run it creates.
#[derive(Clone, Copy)]
pub(super) struct Origin<'a> {
    pub workflow: usize,
    pub version: &'a str,
    pub batch_id: Option<&'a str>,
    pub priority: u8,
}

/// Makes a run from a validated input, drawing its outcome from the seed and its seq.
pub(super) fn new_run(
    shared: &Shared,
    ids: RunIds,
    seq: u64,
    input: NewRun,
    origin: &Origin<'_>,
) -> Run {
    let Origin {
        workflow,
        version,
        batch_id,
        priority,
    } = *origin;
    let profile = &shared.profile;
    let mut rng = ChaCha8Rng::seed_from_u64(profile.seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let o = &profile.processing.outcomes;
    let total = o.processed + o.failed + o.needs_review;
    let pick = rng.random::<f64>() * total;
    let review = &profile.processing.review;
    // Every draw is made whether or not the input is steered, so steering one input
    // leaves the others' seeded outcomes as they were.
    let approve = rng.random::<f64>() < review.approve;
    // Only a workflow with a review step sends runs to review; elsewhere the share that
    // would need review is processed (the draw is made all the same, for the seed).
    let reviewable = profile.workflows[workflow].review;
    let mut outcome = if pick < o.processed || (!reviewable && pick >= o.processed + o.failed) {
        Outcome::Processed
    } else if pick < o.processed + o.failed {
        // INVALID_WORKFLOW is for a workflow that cannot run: only steered.
        Outcome::Failed(FAILURE_REASONS[rng.random_range(0..3)])
    } else {
        Outcome::NeedsReview { approve }
    };
    let mut duration = profile.scaled(profile.processing.duration.sample(&mut rng));
    let mut review_after = review
        .after
        .as_ref()
        .map(|d| profile.scaled(d.sample(&mut rng)));
    let mut failure_message = None;
    // Validation already refused a malformed steering key.
    if let Ok(Some(steer)) = input.metadata.steer() {
        outcome = match steer.outcome {
            Steered::Processed => Outcome::Processed,
            Steered::Failed { reason, message } => {
                failure_message = message;
                Outcome::Failed(reason)
            }
            Steered::NeedsReview { approve } => {
                if approve.is_none() {
                    review_after = None;
                } else if review_after.is_none() {
                    review_after = Some(Duration::ZERO);
                }
                Outcome::NeedsReview {
                    approve: approve.unwrap_or(false),
                }
            }
            Steered::Cancelled => Outcome::Cancelled,
        };
        if let Some(t) = steer.processing_time {
            duration = profile.scaled(t);
        }
    }
    let mute = rng.random::<f64>() < profile.defects.missing_terminal_webhook;
    let now = Utc::now();
    let files: Vec<RunFile> = input.files.into_iter().map(run_file).collect();
    Run {
        seq,
        id: ids.id(seq, &mut rand::rng()),
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
        review_after,
        reviewed_at: None,
        rejection_note: None,
        failure_message,
        regress: profile.defects.status_regression && seq % 5 == 0,
        mute_terminal: mute,
    }
}

/// `limits.max_runs`: an account out of credits refuses new runs with 402.
fn usage_blocked(s: &Shared, ctx: &Ctx, new_runs: usize) -> Option<Response> {
    let max = s.profile.limits.max_runs?;
    let created = s.store.lock().expect("store").runs_created;
    (created + new_runs as u64 > max).then(|| {
        error_response(
            s,
            ctx.version,
            ErrorCode::UsageBlocked,
            &format!("Usage blocked: the account's credits cover {max} runs and {created} exist"),
            &ctx.request_id,
            None,
        )
    })
}

/// The stale_get defect: Get and List keep every fifth finished run PROCESSING, while its
/// terminal webhook has gone out.
pub(super) fn stale_status(shared: &Shared, run: &Run, shown: &mut Value) {
    if shared.profile.defects.stale_get && run.seq % 5 == 0 && run.status.is_terminal() {
        shown["status"] = json!(RunStatus::Processing.as_str());
    }
}

pub(super) fn batch_id_visible(shared: &Shared) -> bool {
    !shared.profile.defects.runs_without_batch_id
}

pub(super) async fn create_batch(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::Batch).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let bytes = match read_body(&s, &ctx, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let body = match crate::mock::raw::batch(&bytes) {
        Ok(b) => b,
        Err(e) => return not_json(&s, &ctx, e),
    };
    let defects = &s.profile.defects;
    let limits = BatchLimits {
        min: if defects.accept_empty_batch { 0 } else { 1 },
        max: if defects.accept_oversized_batch {
            usize::MAX
        } else {
            MAX_BATCH_INPUTS
        },
        metadata_bytes: if defects.accept_large_metadata {
            usize::MAX
        } else {
            crate::api::MAX_METADATA_BYTES
        },
    };
    let req = match validate::batch(ctx.version, &s.profile, body, limits) {
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
    if let Some(r) = usage_blocked(&s, &ctx, req.runs.len()) {
        return r;
    }
    let batch_id = format!("batch_{}", random_id(8));
    let priority = defects
        .batch_priority
        .unwrap_or(req.priority.unwrap_or(BATCH_DEFAULT_PRIORITY));
    let origin = Origin {
        workflow: req.workflow,
        version: &req.version,
        batch_id: Some(&batch_id),
        priority,
    };
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
    let (first, ids) = {
        let mut store = s.store.lock().expect("store");
        (store.reserve_seqs(inputs.len() as u64), store.ids)
    };
    let runs: Vec<Run> = inputs
        .into_iter()
        .zip(first..)
        .map(|(input, seq)| new_run(&s, ids, seq, input, &origin))
        .collect();
    s.store
        .lock()
        .expect("store")
        .insert_batch(&batch_id, runs, defects.ignore_priority);
    s.wake.notify_one();
    let body = if ctx.version.is_legacy() {
        json!({"success": true, "batchId": batch_id})
    } else {
        json!({"batchId": batch_id})
    };
    finish(&s, &ctx, ok_json(&ctx, body))
}

pub(super) async fn create_run(
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
    if let Some(r) = usage_blocked(&s, &ctx, req.runs.len()) {
        return r;
    }
    let origin = Origin {
        workflow: req.workflow,
        version: &req.version,
        batch_id: None,
        priority: req.priority.unwrap_or(SINGLE_DEFAULT_PRIORITY),
    };
    let runs: Vec<Value> = {
        let mut store = s.store.lock().expect("store");
        req.runs
            .into_iter()
            .map(|input| {
                let seq = store.reserve_seqs(1);
                let ids = store.ids;
                let run = new_run(&s, ids, seq, input, &origin);
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

pub(super) fn run_not_found(s: &Shared, ctx: &Ctx, id: &str) -> Response {
    reject(
        s,
        ctx,
        Reject {
            code: ErrorCode::NotFound,
            message: format!("Workflow run `{id}` not found"),
        },
    )
}

pub(super) fn wrap_run(version: ApiVersion, run: Value) -> Value {
    if version.is_legacy() {
        json!({"success": true, "workflowRun": run})
    } else {
        run
    }
}

pub(super) async fn get_run(
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
        store.get(&id).map(|r| {
            let mut v = wire::run_full(ctx.version, r, &s.profile, batch_id_visible(&s));
            stale_status(&s, r, &mut v);
            v
        })
    };
    match run {
        Some(run) => finish(&s, &ctx, ok_json(&ctx, wrap_run(ctx.version, run))),
        None => run_not_found(&s, &ctx, &id),
    }
}

pub(super) async fn update_run(
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
                let mut merged = run.metadata.value();
                if let Some(existing) = merged.as_object_mut() {
                    existing.extend(meta);
                }
                run.metadata = Metadata::from_value(&merged);
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

pub(super) async fn cancel_run(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match prelude(&s, &headers, Endpoint::Cancel).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    // 2024-12-23 has no cancellation: no CANCELLING or CANCELLED status (§0).
    if ctx.version == ApiVersion::V2024_12_23 {
        return reject(
            &s,
            &ctx,
            Reject {
                code: ErrorCode::NotFound,
                message: format!(
                    "Cancelling a run is not available in API version {}",
                    ctx.version
                ),
            },
        );
    }
    if s.profile.defects.cancel_ignored {
        // Answers the run as it is, and cancels nothing.
        let run = s
            .store
            .lock()
            .expect("store")
            .get_mut(&id)
            .map(|run| wire::run_full(ctx.version, run, &s.profile, batch_id_visible(&s)));
        return match run {
            Some(run) => finish(&s, &ctx, ok_json(&ctx, wrap_run(ctx.version, run))),
            None => run_not_found(&s, &ctx, &id),
        };
    }
    let due = Instant::now() + s.profile.scaled(s.profile.processing.cancel_after.0);
    let result = s.store.lock().expect("store").cancel(&id, due, Utc::now());
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
            // CANCELLING now; the scheduler makes it CANCELLED and announces it.
            let body = wire::run_full(ctx.version, &run, &s.profile, batch_id_visible(&s));
            s.wake.notify_one();
            finish(&s, &ctx, ok_json(&ctx, wrap_run(ctx.version, body)))
        }
    }
}

pub(super) async fn delete_run(
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
