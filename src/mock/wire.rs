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
    let mut m = Map::new();
    for (key, field) in run_fields(version, run, profile, batch_id_visible) {
        let value = match field {
            Field::Value(v) => v,
            Field::Metadata => run.metadata.value(),
        };
        m.insert(key.into(), value);
    }
    Value::Object(m)
}

/// The full WorkflowRun object serialised into `out`, the metadata copied as the client
/// sent it: what a webhook carries, without building the object first.
pub fn write_run(
    version: ApiVersion,
    run: &Run,
    profile: &Profile,
    batch_id_visible: bool,
    out: &mut Vec<u8>,
) {
    out.push(b'{');
    for (i, (key, field)) in run_fields(version, run, profile, batch_id_visible)
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push(b',');
        }
        // Keys are this module's literals and values serialise into a Vec: nothing fails.
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        match field {
            Field::Value(v) => {
                let _ = serde_json::to_writer(&mut *out, &v);
            }
            Field::Metadata => out.extend_from_slice(run.metadata.text().as_bytes()),
        }
    }
    out.push(b'}');
}

/// One field of a run object: a value, or the run's metadata (kept as raw text).
enum Field {
    Value(Value),
    Metadata,
}

/// The run object's fields in the order the API sends them.
fn run_fields(
    version: ApiVersion,
    run: &Run,
    profile: &Profile,
    batch_id_visible: bool,
) -> Vec<(&'static str, Field)> {
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
    let mut m = Fields::default();
    m.insert("object", json!("workflow_run"));
    m.insert("id", json!(run.id));
    if version.is_legacy() {
        m.insert("name", json!(run.name));
        m.insert(
            "url",
            json!(format!(
                "https://dashboard.extend.ai/workflows/{}?workflowRunId={}",
                wf.id, run.id
            )),
        );
        m.insert(
            "workflow",
            json!({"object": "workflow", "id": wf.id, "version": run.version, "name": wf.name}),
        );
    } else {
        m.insert("workflow", json!({"object": "workflow", "id": wf.id, "name": wf.name, "createdAt": WORKFLOW_CREATED, "updatedAt": WORKFLOW_CREATED, "createdBy": null}));
        m.insert("workflowVersion", json!({"object": "workflow_version", "id": version_id(wf, &run.version), "version": run.version, "name": null, "createdAt": WORKFLOW_CREATED, "createdBy": null}));
        m.insert(
            "dashboardUrl",
            json!(format!("https://dashboard.extend.ai/workflows/{}", run.id)),
        );
    }
    m.insert("status", json!(run.status.as_str()));
    m.0.push(("metadata", Field::Metadata));
    m.insert("batchId", batch_id);
    m.insert(
        "files",
        Value::Array(
            run.files
                .iter()
                .map(|f| file_summary(version, run, f))
                .collect(),
        ),
    );
    m.insert(
        "failureReason",
        failure.as_ref().map(|f| json!(f.0)).unwrap_or(Value::Null),
    );
    m.insert(
        "failureMessage",
        failure.map(|f| json!(f.1)).unwrap_or(Value::Null),
    );
    m.insert("initialRunAt", ts(run.created_at));
    if version.is_legacy() {
        m.insert("reviewedBy", Value::Null);
    } else {
        m.insert("reviewedByUser", Value::Null);
    }
    m.insert("reviewed", json!(run.reviewed_at.is_some()));
    m.insert(
        "rejectionNote",
        run.rejection_note
            .as_ref()
            .map_or(Value::Null, |n| json!(n)),
    );
    m.insert("reviewedAt", opt_ts(run.reviewed_at));
    m.insert("startTime", opt_ts(run.start_time));
    m.insert("endTime", opt_ts(run.end_time));
    if version.is_legacy() {
        m.insert("outputs", Value::Array(outputs_legacy(run, wf)));
        m.insert("stepRuns", Value::Array(step_runs_legacy(run, wf)));
    } else {
        m.insert("stepRuns", Value::Array(step_runs_2026(run, wf)));
    }
    m.insert("usage", usage(run));
    if profile.expose_priority {
        m.insert("priority", json!(run.priority));
    }
    m.0
}

#[derive(Default)]
struct Fields(Vec<(&'static str, Field)>);

impl Fields {
    fn insert(&mut self, key: &'static str, v: Value) {
        self.0.push((key, Field::Value(v)));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::raw::Metadata;
    use crate::mock::state::{Outcome, RunFile};
    use std::time::Duration;

    fn run(status: RunStatus, outcome: Outcome) -> Run {
        let now = Utc::now();
        Run {
            seq: 7,
            id: "workflow_run_AAAAAAAAAAAAAAAAAAAAA".into(),
            workflow: 0,
            version: "2".into(),
            batch_id: Some("batch_x".into()),
            status,
            priority: 90,
            metadata: Metadata::from_value(&json!({"b": 1, "a": {"n": [true, null, 1.5]}})),
            name: "a \"q\".pdf".into(),
            files: vec![RunFile {
                id: "file_1".into(),
                name: "a \"q\".pdf".into(),
                kind: "PDF",
                source: "url:https://x/a.pdf".into(),
                page_count: 3,
            }],
            created_at: now,
            updated_at: now,
            start_time: Some(now),
            end_time: status.is_terminal().then_some(now),
            outcome,
            duration: Duration::from_secs(1),
            regress: false,
            mute_terminal: false,
            review_after: None,
            reviewed_at: None,
            rejection_note: None,
            failure_message: None,
        }
    }

    /// What a webhook carries is the object a Get returns, field for field, in order.
    #[test]
    fn written_run_is_the_run_object() {
        let profile = Profile::default();
        let runs = [
            run(RunStatus::Processed, Outcome::Processed),
            run(RunStatus::Failed, Outcome::Failed("INTERNAL_ERROR")),
            run(RunStatus::Pending, Outcome::Processed),
        ];
        for version in ApiVersion::ALL {
            for r in &runs {
                for visible in [true, false] {
                    let mut out = Vec::new();
                    write_run(version, r, &profile, visible, &mut out);
                    let written: Value = serde_json::from_slice(&out).unwrap();
                    let built = run_full(version, r, &profile, visible);
                    assert_eq!(
                        serde_json::to_string(&written).unwrap(),
                        serde_json::to_string(&built).unwrap(),
                        "{version:?} {:?}",
                        r.status
                    );
                }
            }
        }
    }
}
