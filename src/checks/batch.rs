//! `batch.*`: Batch Run Workflow accepts valid batches of 1 to 1,000 inputs with a
//! unique batch id, refuses what is malformed (400 or 422; unknown workflow: 404) and
//! metadata over 10 KB (2026-02-09, where the limit is documented), and
//! does not throttle a few batches sent back to back.

use serde_json::Value;

use super::{Case, Findings, Provenance, Rule, Severity, json_excerpt};
use crate::api::client::Reply;
use crate::api::{ApiVersion, shapes};

pub(crate) const DOC: &str =
    "https://docs.extend.ai/api-reference/endpoints/workflow/batch-create-workflow-runs";
pub(crate) const PATH: &str = "/workflow_runs/batch";

pub const RULES: &[Rule] = &[
    Rule {
        id: "batch.accepted",
        title: "A valid batch is accepted: 200 with a non-empty batchId (and success: true where the version has it)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "Batch Run Workflow answers a batchId ({success: true, batchId} before 2026-02-09)",
        versions: &[],
    },
    Rule {
        id: "batch.unique_ids",
        title: "Every accepted batch gets its own batchId",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Inferred,
        basis: "a batchId names one batch; that two batches never share one is implied, not stated",
        versions: &[],
    },
    Rule {
        id: "batch.accepts_1000",
        title: "A batch of exactly 1,000 inputs is accepted",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "up to 1,000 inputs per request",
        versions: &[],
    },
    Rule {
        id: "batch.rejects_1001",
        title: "A batch of 1,001 inputs is refused (400 or 422)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Inferred,
        basis: "the 1,000-input limit is documented; the status is not (400 or 422 accepted, the one seen is noted)",
        versions: &[],
    },
    Rule {
        id: "batch.rejects_empty",
        title: "A batch of 0 inputs is refused (400 or 422)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Inferred,
        basis: "the SDK's request model needs 1..1000 inputs; the status is not documented (400 or 422 accepted)",
        versions: &[],
    },
    Rule {
        id: "batch.rejects_bad_file",
        title: "An input with no file (or raw text), or a malformed file union, is refused (400 or 422)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Sdk,
        basis: "the SDK's file union (url, id or text); the status is not documented (400 or 422 accepted)",
        versions: &[],
    },
    Rule {
        id: "batch.rejects_malformed",
        title: "A body that is not JSON, or JSON of the wrong types (inputs as an object, metadata as a string), is refused (400 or 422)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Inferred,
        basis: "INVALID_REQUEST covers a bad body or parameters; the status is not documented (400 or 422 accepted)",
        versions: &[],
    },
    Rule {
        id: "batch.rejects_large_metadata",
        title: "An input whose metadata is over 10 KB is refused (400, 413 or 422)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Sdk,
        basis: "the 2026 SDK's RunMetadata is documented as at most 10KB; the status for more is not documented (400, 413 or 422 accepted, the one seen is noted); the probe sends 12 KB, over 10KB read as 10,000 or 10,240 bytes",
        versions: super::CURRENT_ONLY,
    },
    Rule {
        id: "batch.rejects_missing_workflow",
        title: "A batch without a workflow reference is refused (400 or 422)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Sdk,
        basis: "workflow is required in the SDK's request model; the status is not documented (400 or 422 accepted)",
        versions: &[],
    },
    Rule {
        id: "batch.unknown_workflow",
        title: "A batch for a workflow that does not exist is answered 404",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Inferred,
        basis: "404 from the SDK's error mapping (NOT_FOUND: the resource does not exist)",
        versions: &[],
    },
    Rule {
        id: "batch.rapid_succession",
        title: "Several batches sent back to back are all accepted (no 429)",
        severity: Severity::Error,
        doc: "https://docs.extend.ai/2026-02-09/general/rate-limits",
        provenance: Provenance::Documented,
        basis: "limits are per second per category (RUN); a few batches back to back stay under every published plan",
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
