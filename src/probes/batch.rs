//! The active part of the `batch.*` rules: requests the probe phase sends and what
//! their answers show.

use super::{Probe, request, seen};
use crate::api::MAX_BATCH_INPUTS;
use crate::checks::Case;
use crate::checks::batch::*;
use serde_json::{Value, json};

/// Expects a 4xx `want` for a bad body; records the error body for `error.shape`.
async fn expect_status(p: &mut Probe<'_>, rule: &'static str, want: u16, body: &Value, what: &str) {
    let reply = p.send(p.client, "POST", PATH, Some(body)).await;
    let req = format!("POST {PATH} ({what})");
    if reply.status() == Some(200) {
        // A probe that was meant to be refused created runs: keep them away from the load.
        p.created_batch(&reply);
    }
    p.error_body(&reply, &req);
    if want == 400 {
        // Documented as refused, with no documented status: the validation family.
        p.expect_refusal(rule, &reply, &req);
    } else {
        p.findings.check(rule, reply.status() == Some(want), || {
            Case::new(format!("HTTP {want}"), seen(&reply)).request(req.clone())
        });
    }
}

/// `batch.rejects_malformed`: bodies that are not JSON, or JSON of the wrong types.
async fn malformed(p: &mut Probe<'_>) {
    let rule = "batch.rejects_malformed";
    let truncated = p.batch_body("truncated", 1).to_string();
    let cut = truncated.as_bytes()[..truncated.len() / 2].to_vec();
    for (bytes, what) in [
        (cut, "a body cut in half (not JSON)"),
        (b"inputs=1&workflow=x".to_vec(), "a form body (not JSON)"),
    ] {
        let req = format!("POST {PATH} ({what})");
        let reply = p.send_raw(p.client, "POST", PATH, Some(bytes)).await;
        if reply.status() == Some(200) {
            p.created_batch(&reply);
        }
        p.error_body(&reply, &req);
        p.expect_refusal(rule, &reply, &req);
    }
    let mut inputs_object = p.batch_body("inputsobject", 1);
    inputs_object["inputs"] = inputs_object["inputs"][0].clone();
    let mut metadata_string = p.batch_body("metadatastring", 1);
    metadata_string["inputs"][0]["metadata"] = json!("bp_probe=metadatastring");
    for (body, what) in [
        (inputs_object, "inputs as an object"),
        (metadata_string, "metadata as a string"),
        (json!(["not", "an", "object"]), "a JSON array as the body"),
    ] {
        expect_status(p, rule, 400, &body, what).await;
    }
}

/// Bytes of the large-metadata probe's metadata: over 10KB however a KB is counted.
const LARGE_METADATA: usize = 12 * 1024;

/// `batch.rejects_large_metadata`: one input with 12 KB of metadata. The status is not
/// documented: 400, 413 (the body is too large) or 422 pass, and the note says which.
async fn large_metadata(p: &mut Probe<'_>) {
    let rule = "batch.rejects_large_metadata";
    if !crate::checks::rule(rule).is_some_and(|r| r.applies_to(p.version())) {
        return;
    }
    let mut body = p.batch_body("largemetadata", 1);
    body["inputs"][0]["metadata"]["padding"] = json!("x".repeat(LARGE_METADATA));
    let reply = p.send(p.client, "POST", PATH, Some(&body)).await;
    let req = format!("POST {PATH} (12 KB of metadata)");
    if reply.status() == Some(200) {
        p.created_batch(&reply);
    }
    p.error_body(&reply, &req);
    let status = reply.status();
    let ok = status.is_some_and(|s| matches!(s, 400 | 413 | 422));
    p.findings.check(rule, ok, || {
        Case::new("HTTP 400, 413 or 422", seen(&reply)).request(req.clone())
    });
    if let (true, Some(code)) = (ok, status) {
        p.findings.add_note(
            rule,
            format!("refused with {code} (400, 413 and 422 all accepted: the documentation does not say which)"),
        );
    }
}

/// Exactly the maximum; while its runs queue, the cancel and priority probes, then the
/// default listing of it.
async fn full_batch(p: &mut Probe<'_>) {
    let v = p.version();
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
        // While the queue is busy with it, the cancel probe finds its runs still open.
        let cancelled = super::cancel::start(p).await;
        super::runs::priority_order(p, &id).await;
        if let Some((batch, run)) = cancelled {
            super::cancel::settles_cancelled(p, &batch, &run).await;
        }
        super::list::defaults(p, &id).await;
    }
}

pub async fn probe(p: &mut Probe<'_>) {
    let v = p.version();
    full_batch(p).await;

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

    // A number where the file URL goes: the file union is malformed.
    let mut numeric_url = p.batch_body("numericurl", 1);
    numeric_url["inputs"][0]["file"] = if v.is_legacy() {
        json!({"fileUrl": 12345})
    } else {
        json!({"url": 12345})
    };
    expect_status(
        p,
        "batch.rejects_bad_file",
        400,
        &numeric_url,
        "a number as the file URL",
    )
    .await;

    malformed(p).await;
    large_metadata(p).await;

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
