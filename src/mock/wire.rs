//! Runs as each API version shows them: the full WorkflowRun (get, create, webhooks) and
//! the WorkflowRunSummary (list). Outputs derive deterministically from the input so tests
//! can assert them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::profile::{Profile, StepKind, Workflow};
use super::state::Run;
use crate::api::{ApiVersion, RunStatus};

/// The fixed creation time of simulated workflows and versions.
const WORKFLOW_CREATED: &str = "2025-01-01T00:00:00.000Z";

pub fn ts(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map(ts).unwrap_or(Value::Null)
}

/// Deterministic extraction output for a document: what a real extractor might return,
/// derived only from where the document came from.
pub fn extracted_value(run: &Run) -> Value {
    let source = run.files.first().map(|f| f.source.as_str()).unwrap_or("");
    let digest = Sha256::digest(source.as_bytes());
    let hex = hex::encode(&digest[..8]);
    let amount = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 100_000;
    json!({
        "documentName": run.files.first().map(|f| f.name.as_str()).unwrap_or(""),
        "contentHash": hex,
        "invoiceNumber": format!("INV-{}", &hex[..6].to_uppercase()),
        "totalAmount": amount as f64 / 100.0,
        "pageCount": run.files.first().map(|f| f.page_count).unwrap_or(1),
    })
}

fn file_summary(version: ApiVersion, run: &Run, f: &super::state::RunFile) -> Value {
    let mut v = json!({
        "object": "file",
        "id": f.id,
        "name": f.name,
        "type": f.kind,
        "parentFileId": null,
        "metadata": {"pageCount": f.page_count, "parentSplit": null},
        "createdAt": ts(run.created_at),
        "updatedAt": ts(run.created_at),
    });
    if version.is_legacy() {
        v["presignedUrl"] = Value::Null;
    }
    v
}

fn step_id(run: &Run, i: usize, prefix: &str) -> String {
    format!(
        "{prefix}_{}_{i}",
        run.id.trim_start_matches("workflow_run_")
    )
}

/// The step runs of a finished run, each as a `workflow_run.step_run.processed` payload:
/// one StepRun in `version`'s shape with the run's id as `workflowRunId`, and no batchId
/// or metadata (docs/contract.md §6).
pub fn step_run_events(version: ApiVersion, run: &Run, wf: &Workflow) -> Vec<Value> {
    let steps = if version.is_legacy() {
        step_runs_legacy(run, wf)
    } else {
        step_runs_2026(run, wf)
    };
    steps
        .into_iter()
        .map(|mut s| {
            if let Some(m) = s.as_object_mut() {
                m.insert("workflowRunId".into(), json!(run.id));
                m.remove("batchId");
                m.remove("metadata");
            }
            s
        })
        .collect()
}

fn step_runs_2026(run: &Run, wf: &Workflow) -> Vec<Value> {
    let done = matches!(run.status, RunStatus::Processed | RunStatus::NeedsReview);
    if !done && run.status != RunStatus::Failed {
        return vec![];
    }
    let files: Vec<Value> = run
        .files
        .iter()
        .map(|f| file_summary(ApiVersion::V2026_02_09, run, f))
        .collect();
    let end = run.end_time.unwrap_or(run.updated_at);
    wf.steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let status = if done { "PROCESSED" } else { "FAILED" };
            let (kind, result) = match step.kind {
                StepKind::Extract => (
                    "EXTRACT",
                    if done {
                        json!({"extractRun": {
                            "object": "extract_run",
                            "id": step_id(run, i, "exr"),
                            "status": "PROCESSED",
                            "output": {"value": extracted_value(run), "metadata": {}},
                            "metadata": {},
                            "reviewed": false,
                            "edited": false,
                            "config": {"schema": {"type": "object"}},
                            "dashboardUrl": format!("https://dashboard.extend.ai/runs/{}", step_id(run, i, "exr")),
                            "createdAt": opt_ts(run.start_time),
                            "updatedAt": ts(end),
                        }})
                    } else {
                        Value::Null
                    },
                ),
                StepKind::RuleValidation => (
                    "RULE_VALIDATION",
                    json!({"rules": [{"name": "total is positive", "valid": done}], "allPassed": done}),
                ),
            };
            json!({
                "object": "workflow_step_run",
                "id": step_id(run, i, "wsr"),
                "workflowRunId": run.id,
                "status": status,
                "stepType": kind,
                "step": {"object": "workflow_step", "id": format!("step_{i}"), "name": step.name, "type": kind},
                "result": result,
                "files": files,
            })
        })
        .collect()
}

fn outputs_legacy(run: &Run, wf: &Workflow) -> Vec<Value> {
    if !matches!(run.status, RunStatus::Processed | RunStatus::NeedsReview) {
        return vec![];
    }
    wf.steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == StepKind::Extract)
        .map(|(i, step)| {
            json!({
                "object": "document_processor_run",
                "id": step_id(run, i, "dpr"),
                "processorId": format!("dp_{i}"),
                "processorVersionId": format!("dpv_{i}"),
                "processorName": step.name,
                "status": "PROCESSED",
                "output": extracted_value(run),
                "reviewed": false,
                "edited": false,
                "edits": {},
                "type": "EXTRACT",
                "config": {},
                "files": [],
                "mergedProcessors": [],
                "url": format!("https://dashboard.extend.ai/runs/{}", step_id(run, i, "dpr")),
            })
        })
        .collect()
}

fn step_runs_legacy(run: &Run, wf: &Workflow) -> Vec<Value> {
    wf.steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == StepKind::RuleValidation)
        .filter(|_| run.status.is_terminal())
        .map(|(i, step)| {
            json!({
                "object": "workflow_step_run",
                "id": step_id(run, i, "wsr"),
                "status": "PROCESSED",
                "step": {"object": "workflow_step", "id": format!("step_{i}"), "name": step.name, "type": "RULE_VALIDATION"},
                "output": {"allPassed": true},
            })
        })
        .collect()
}

fn version_id(wf: &Workflow, version: &str) -> String {
    format!(
        "workflow_version_{}_{}",
        wf.id.trim_start_matches("workflow_"),
        version
    )
}

/// The full WorkflowRun object in `version`'s shape.
pub fn run_full(
    version: ApiVersion,
    run: &Run,
    profile: &Profile,
    batch_id_visible: bool,
) -> Value {
    let wf = &profile.workflows[run.workflow];
    let failure = run.failure();
    let batch_id = if batch_id_visible {
        run.batch_id
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let mut m = Map::new();
    m.insert("object".into(), json!("workflow_run"));
    m.insert("id".into(), json!(run.id));
    if version.is_legacy() {
        m.insert("name".into(), json!(run.name));
        m.insert(
            "url".into(),
            json!(format!(
                "https://dashboard.extend.ai/workflows/{}?workflowRunId={}",
                wf.id, run.id
            )),
        );
        m.insert(
            "workflow".into(),
            json!({"object": "workflow", "id": wf.id, "version": run.version, "name": wf.name}),
        );
    } else {
        m.insert("workflow".into(), json!({"object": "workflow", "id": wf.id, "name": wf.name, "createdAt": WORKFLOW_CREATED, "updatedAt": WORKFLOW_CREATED, "createdBy": null}));
        m.insert("workflowVersion".into(), json!({"object": "workflow_version", "id": version_id(wf, &run.version), "version": run.version, "name": null, "createdAt": WORKFLOW_CREATED, "createdBy": null}));
        m.insert(
            "dashboardUrl".into(),
            json!(format!("https://dashboard.extend.ai/workflows/{}", run.id)),
        );
    }
    m.insert("status".into(), json!(run.status.as_str()));
    m.insert("metadata".into(), run.metadata.value());
    m.insert("batchId".into(), batch_id);
    m.insert(
        "files".into(),
        Value::Array(
            run.files
                .iter()
                .map(|f| file_summary(version, run, f))
                .collect(),
        ),
    );
    m.insert(
        "failureReason".into(),
        failure.as_ref().map(|f| json!(f.0)).unwrap_or(Value::Null),
    );
    m.insert(
        "failureMessage".into(),
        failure.map(|f| json!(f.1)).unwrap_or(Value::Null),
    );
    m.insert("initialRunAt".into(), ts(run.created_at));
    if version.is_legacy() {
        m.insert("reviewedBy".into(), Value::Null);
    } else {
        m.insert("reviewedByUser".into(), Value::Null);
    }
    m.insert("reviewed".into(), json!(run.reviewed_at.is_some()));
    m.insert(
        "rejectionNote".into(),
        run.rejection_note
            .as_ref()
            .map_or(Value::Null, |n| json!(n)),
    );
    m.insert("reviewedAt".into(), opt_ts(run.reviewed_at));
    m.insert("startTime".into(), opt_ts(run.start_time));
    m.insert("endTime".into(), opt_ts(run.end_time));
    if version.is_legacy() {
        m.insert("outputs".into(), Value::Array(outputs_legacy(run, wf)));
        m.insert("stepRuns".into(), Value::Array(step_runs_legacy(run, wf)));
    } else {
        m.insert("stepRuns".into(), Value::Array(step_runs_2026(run, wf)));
    }
    m.insert("usage".into(), usage(run));
    if profile.expose_priority {
        m.insert("priority".into(), json!(run.priority));
    }
    Value::Object(m)
}

fn usage(run: &Run) -> Value {
    if run.status.is_terminal() {
        let pages: u32 = run.files.iter().map(|f| f.page_count).sum();
        json!({"credits": pages as f64})
    } else {
        Value::Null
    }
}

/// The WorkflowRunSummary in `version`'s shape (no metadata in any version).
pub fn run_summary(
    version: ApiVersion,
    run: &Run,
    profile: &Profile,
    batch_id_visible: bool,
) -> Value {
    let wf = &profile.workflows[run.workflow];
    let batch_id = if batch_id_visible {
        run.batch_id
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let mut v = if version.is_legacy() {
        json!({
            "id": run.id,
            "status": run.status.as_str(),
            "initialRunAt": ts(run.created_at),
            "reviewed": run.reviewed_at.is_some(),
            "reviewedByUser": null,
            "reviewedAt": opt_ts(run.reviewed_at),
            "startTime": opt_ts(run.start_time),
            "endTime": opt_ts(run.end_time),
            "workflowId": wf.id,
            "workflowName": wf.name,
            "workflowVersionId": version_id(wf, &run.version),
            "batchId": batch_id,
            "rejectionNote": run.rejection_note,
            "createdAt": ts(run.created_at),
            "updatedAt": ts(run.updated_at),
            "usage": usage(run),
        })
    } else {
        json!({
            "object": "workflow_run",
            "id": run.id,
            "status": run.status.as_str(),
            "workflow": {"object": "workflow", "id": wf.id, "name": wf.name, "createdAt": WORKFLOW_CREATED, "updatedAt": WORKFLOW_CREATED, "createdBy": null},
            "workflowVersion": {"object": "workflow_version", "id": version_id(wf, &run.version), "version": run.version, "name": null, "createdAt": WORKFLOW_CREATED, "createdBy": null},
            "dashboardUrl": format!("https://dashboard.extend.ai/workflows/{}", run.id),
            "reviewedByUser": null,
            "reviewedAt": opt_ts(run.reviewed_at),
            "initialRunAt": ts(run.created_at),
            "startTime": opt_ts(run.start_time),
            "endTime": opt_ts(run.end_time),
            "batchId": batch_id,
            "rejectionNote": run.rejection_note,
            "files": run.files.iter().map(|f| file_summary(version, run, f)).collect::<Vec<_>>(),
            "createdAt": ts(run.created_at),
            "updatedAt": ts(run.updated_at),
            "usage": usage(run),
        })
    };
    if profile.expose_priority {
        v["priority"] = json!(run.priority);
    }
    v
}
