//! `batch.*`: Batch Run Workflow accepts valid batches of 1 to 1,000 inputs with a
//! unique batch id, rejects what is malformed with 400 (unknown workflow: 404), and
//! does not throttle a few batches sent back to back.

use serde_json::{Value, json};

use super::probe::{Probe, request, seen};
use super::{Case, Findings, Rule, Severity, json_excerpt};
use crate::api::client::Reply;
use crate::api::{ApiVersion, MAX_BATCH_INPUTS, shapes};

const DOC: &str =
    "https://docs.extend.ai/api-reference/endpoints/workflow/batch-create-workflow-runs";
const PATH: &str = "/workflow_runs/batch";

pub const RULES: &[Rule] = &[
    Rule {
        id: "batch.accepted",
        title: "A valid batch is accepted: 200 with a non-empty batchId (and success: true where the version has it)",
        severity: Severity::Error,
        doc: DOC,
        versions: &[],
    },
    Rule {
        id: "batch.unique_ids",
        title: "Every accepted batch gets its own batchId",
        severity: Severity::Error,
        doc: DOC,
        versions: &[],
    },
    Rule {
        id: "batch.accepts_1000",
        title: "A batch of exactly 1,000 inputs is accepted",
        severity: Severity::Error,
        doc: DOC,
        versions: &[],
    },
    Rule {
        id: "batch.rejects_1001",
        title: "A batch of 1,001 inputs is rejected with 400",
        severity: Severity::Error,
        doc: DOC,
        versions: &[],
    },
    Rule {
        id: "batch.rejects_empty",
        title: "A batch of 0 inputs is rejected with 400",
        severity: Severity::Error,
        doc: DOC,
        versions: &[],
    },
    Rule {
        id: "batch.rejects_bad_file",
        title: "An input with no file (or raw text), or a malformed file union, is rejected with 400",
        severity: Severity::Error,
        doc: DOC,
        versions: &[],
    },
    Rule {
        id: "batch.rejects_missing_workflow",
        title: "A batch without a workflow reference is rejected with 400",
        severity: Severity::Error,
        doc: DOC,
        versions: &[],
    },
    Rule {
        id: "batch.unknown_workflow",
        title: "A batch for a workflow that does not exist is answered 404",
        severity: Severity::Error,
        doc: DOC,
        versions: &[],
    },
    Rule {
        id: "batch.rapid_succession",
        title: "Several batches sent back to back are all accepted (no 429)",
        severity: Severity::Error,
        doc: "https://docs.extend.ai/2026-02-09/general/rate-limits",
        versions: &[],
    },
];

/// Judges one answer to a valid batch (from the load or a probe) for `batch.accepted`.
/// 429, 5xx and failures without an answer are not the contract's business here: they
/// are counted by the load engine.
pub fn accepted(findings: &mut Findings, version: ApiVersion, reply: &Reply, what: &str) {
    let Reply::Answered { status, body, .. } = reply else {
        return;
    };
    if *status == 429 || *status >= 500 {
        return;
    }
    let problem = if *status != 200 {
        Some(format!("HTTP {status}"))
    } else {
        match body {
            None => Some("a body that is not JSON".into()),
            Some(b) => match shapes::batch_id(b) {
                None | Some("") => Some("no batchId".into()),
                Some(_) if version.is_legacy() && b.get("success") != Some(&Value::Bool(true)) => {
                    Some(format!(
                        "success is {}",
                        b.get("success").unwrap_or(&Value::Null)
                    ))
                }
                Some(_) => None,
            },
        }
    };
    findings.check("batch.accepted", problem.is_none(), || {
        Case::new(
            if version.is_legacy() {
                "200 {success: true, batchId: \"batch_…\"}"
            } else {
                "200 {batchId: \"batch_…\"}"
            },
            format!(
                "{}: {}",
                problem.clone().unwrap_or_default(),
                body.as_ref().map(json_excerpt).unwrap_or_default()
            ),
        )
        .request(format!("POST {PATH} ({what})"))
    });
}

/// Judges the batch ids of every accepted batch of the load.
pub fn unique_ids<'i>(findings: &mut Findings, ids: impl Iterator<Item = &'i str>) {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        let fresh = seen.insert(id);
        findings.check("batch.unique_ids", fresh, || {
            Case::new("a batchId no other batch has", format!("`{id}` again")).batch(id)
        });
    }
}

/// Expects a 4xx `want` for a bad body; records the error body for `error.shape`.
async fn expect_status(p: &mut Probe<'_>, rule: &'static str, want: u16, body: &Value, what: &str) {
    let reply = p.send(p.client, "POST", PATH, Some(body)).await;
    let req = format!("POST {PATH} ({what})");
    if reply.status() == Some(200) {
        // A probe that was meant to be refused created runs: keep them away from the load.
        p.created_batch(&reply);
    }
    p.error_body(&reply, &req);
    p.findings.check(rule, reply.status() == Some(want), || {
        Case::new(format!("HTTP {want}"), seen(&reply)).request(req.clone())
    });
}

pub async fn probe(p: &mut Probe<'_>) {
    let v = p.version();

    // Exactly the maximum; its runs also serve the priority probe.
    let full = p.batch_body("max", MAX_BATCH_INPUTS);
    let reply = p.send(p.client, "POST", PATH, Some(&full)).await;
    if reply.status() == Some(200) {
        // Its status is batch.accepts_1000's business; its shape is batch.accepted's.
        accepted(&mut p.findings, v, &reply, "1,000 inputs");
    }
    p.findings
        .check("batch.accepts_1000", reply.status() == Some(200), || {
            Case::new("HTTP 200", seen(&reply)).request(format!("POST {PATH} (1,000 inputs)"))
        });
    if let Some(id) = p.created_batch(&reply) {
        super::runs::priority_order(p, &id).await;
    }

    let over = p.batch_body("over", MAX_BATCH_INPUTS + 1);
    expect_status(p, "batch.rejects_1001", 400, &over, "1,001 inputs").await;

    let mut empty = p.batch_body("empty", 1);
    empty["inputs"] = json!([]);
    expect_status(p, "batch.rejects_empty", 400, &empty, "0 inputs").await;

    let mut no_file = p.batch_body("nofile", 2);
    no_file["inputs"][1] = json!({"metadata": {"bp_probe": "nofile:1"}});
    expect_status(
        p,
        "batch.rejects_bad_file",
        400,
        &no_file,
        "an input with no file",
    )
    .await;
    let mut bad_union = p.batch_body("badunion", 2);
    bad_union["inputs"][1]["file"] = if v.is_legacy() {
        json!({"fileName": "neither-url-nor-id.pdf"})
    } else {
        json!({"name": "no-url-id-or-text.pdf"})
    };
    expect_status(
        p,
        "batch.rejects_bad_file",
        400,
        &bad_union,
        "a malformed file union",
    )
    .await;

    let mut no_workflow = p.batch_body("noworkflow", 1);
    if let Some(m) = no_workflow.as_object_mut() {
        m.remove("workflow");
        m.remove("workflowId");
    }
    expect_status(
        p,
        "batch.rejects_missing_workflow",
        400,
        &no_workflow,
        "no workflow",
    )
    .await;

    let mut unknown = p.batch_body("unknownworkflow", 1);
    if v.is_legacy() {
        unknown["workflowId"] = json!("workflow_batchproof_does_not_exist");
    } else {
        unknown["workflow"] = json!({"id": "workflow_batchproof_does_not_exist"});
    }
    expect_status(
        p,
        "batch.unknown_workflow",
        404,
        &unknown,
        "unknown workflow",
    )
    .await;

    // Back to back, without waiting out anything: a 429 here is the failure.
    let n = p.config.rapid_batches;
    for i in 0..n {
        let body = p.batch_body(&format!("rapid{i}"), 1);
        let reply = p.client.post_json(PATH, &body).await;
        if reply.status() == Some(429) {
            p.throttled(&reply, &request("POST", PATH));
        }
        p.created_batch(&reply);
        p.findings.check(
            "batch.rapid_succession",
            reply.status() == Some(200),
            || {
                Case::new("HTTP 200", seen(&reply))
                    .request(format!("POST {PATH} (batch {} of {n} back to back)", i + 1))
            },
        );
    }
}
