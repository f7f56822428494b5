//! `runs.*`: a batch becomes exactly one run per input, each carrying the batchId and its
//! input's metadata (deep and exact), queued at priority 90, moving forward only, terminal
//! by the deadline, with outputs when PROCESSED and a reason when FAILED; a cancelled run
//! goes CANCELLING → CANCELLED (from 2025-04-21, where cancel exists).
//!
//! The audit reads back the first `checks.audit_batches` accepted batches: one listing at
//! the largest page size, then Get for every run listed (metadata is not on the summary).

use serde_json::Value;

use super::{Case, Findings, Provenance, Rule, Severity};
use crate::api::{ApiVersion, RunStatus};

pub(crate) const DOC_RUN: &str =
    "https://docs.extend.ai/2024-12-23/developers/objects/workflow-run";
pub(crate) const DOC_CANCEL: &str = "https://docs.extend.ai/2026-02-09/developers/api-reference/webhook-events/workflow/workflow-run-cancelled-webhook";
pub(crate) const DOC_BATCH: &str =
    "https://docs.extend.ai/api-reference/endpoints/workflow/batch-create-workflow-runs";

pub const RULES: &[Rule] = &[
    Rule {
        id: "runs.count",
        title: "Listing a batch shows exactly one run per input: none missing, none extra, none repeated",
        severity: Severity::Error,
        doc: DOC_BATCH,
        provenance: Provenance::Documented,
        basis: "one run per input of the batch",
        versions: &[],
    },
    Rule {
        id: "runs.batch_id",
        title: "Every run of a batch carries its batchId (on List and on Get)",
        severity: Severity::Error,
        doc: DOC_RUN,
        provenance: Provenance::Documented,
        basis: "batch runs carry their batchId on get and list",
        versions: &[],
    },
    Rule {
        id: "runs.metadata",
        title: "Every run's metadata equals its input's, deep and exact",
        severity: Severity::Error,
        doc: DOC_RUN,
        provenance: Provenance::Documented,
        basis: "a run returns the metadata its input was sent with",
        versions: &[],
    },
    Rule {
        id: "runs.priority",
        title: "Batch runs have priority 90, where the target exposes a priority field",
        severity: Severity::Error,
        doc: DOC_BATCH,
        provenance: Provenance::Sdk,
        basis: "SDK 1.20.0: batch runs default to priority 90; the run object has no such field, so the rule runs only where a target shows one",
        versions: &[],
    },
    Rule {
        id: "runs.priority_order",
        title: "Batch runs queue at priority 90: a later run at priority 89 starts before the batch's pending runs",
        severity: Severity::Error,
        doc: DOC_BATCH,
        provenance: Provenance::Documented,
        basis: "queued runs are served lower priority number first",
        versions: &[],
    },
    Rule {
        id: "runs.forward_only",
        title: "A run's status only moves forward (PENDING → PROCESSING → terminal), on each channel",
        severity: Severity::Error,
        doc: DOC_RUN,
        provenance: Provenance::Documented,
        basis: "the status lifecycle only moves forward",
        versions: &[],
    },
    Rule {
        id: "runs.terminal",
        title: "Every run is terminal by the results deadline",
        severity: Severity::Error,
        doc: DOC_RUN,
        provenance: Provenance::Inferred,
        basis: "after the results settled, a run whose result arrived lists as terminal",
        versions: &[],
    },
    Rule {
        id: "runs.outputs",
        title: "A PROCESSED run has its outputs on Get (outputs before 2026-02-09; from then stepRuns, each a step run with id and status, [] allowed)",
        severity: Severity::Error,
        doc: DOC_RUN,
        provenance: Provenance::Sdk,
        basis: "the run object of each version: outputs (processor runs) before 2026-02-09; the 2026 SDK requires stepRuns, which may be [], each step run with id and status",
        versions: &[],
    },
    Rule {
        id: "runs.cancel",
        title: "Cancelling a PENDING or PROCESSING run answers it CANCELLING (or CANCELLED), and it ends CANCELLED",
        severity: Severity::Error,
        doc: DOC_CANCEL,
        provenance: Provenance::Sdk,
        basis: "Cancel Workflow Run (from 2025-04-21; the SDKs' cancel call and their CANCELLING and CANCELLED statuses): only PENDING or PROCESSING runs can be cancelled, and they go CANCELLING → CANCELLED",
        versions: &[ApiVersion::V2025_04_21, ApiVersion::V2026_02_09],
    },
    Rule {
        id: "runs.failure_reason",
        title: "A FAILED run has a failureReason",
        severity: Severity::Error,
        doc: DOC_RUN,
        provenance: Provenance::Documented,
        basis: "a FAILED run carries failureReason",
        versions: &[],
    },
];

/// Records one observed status against the highest one seen before on that channel.
pub fn forward_only(
    findings: &mut Findings,
    run_id: &str,
    before: u8,
    status: RunStatus,
    request: &str,
) {
    findings.check("runs.forward_only", status.rank() >= before, || {
        let highest = RunStatus::ALL
            .iter()
            .filter(|s| s.rank() == before)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        Case::new(format!("a status at or after {highest}"), status.as_str())
            .run(run_id)
            .request(request)
    });
}

pub(crate) fn outputs_problem(legacy: bool, run: &Value) -> Option<String> {
    if legacy {
        match run.get("outputs").and_then(Value::as_array) {
            Some(o) if !o.is_empty() => None,
            _ => Some(format!(
                "outputs: {}",
                run.get("outputs").unwrap_or(&Value::Null)
            )),
        }
    } else {
        // `stepRuns` may be `[]` (extend-api §5): a workflow whose steps report nothing
        // still completes. What is there must be step runs.
        let Some(steps) = run.get("stepRuns").and_then(Value::as_array) else {
            return Some(format!(
                "stepRuns: {}",
                run.get("stepRuns").unwrap_or(&Value::Null)
            ));
        };
        let is_step = |s: &Value| {
            s.get("id").is_some_and(Value::is_string)
                && s.get("status").is_some_and(Value::is_string)
        };
        steps.iter().position(|s| !is_step(s)).map(|n| {
            format!(
                "step run {} of {} has no id or status: {}",
                n + 1,
                steps.len(),
                super::json_excerpt(&steps[n])
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::outputs_problem;
    use serde_json::json;

    #[test]
    fn a_2026_run_may_have_no_step_runs_but_what_it_has_are_step_runs() {
        let run = |steps| json!({"status": "PROCESSED", "stepRuns": steps});
        assert_eq!(outputs_problem(false, &run(json!([]))), None);
        let step = json!({"id": "step_1", "status": "PROCESSED", "result": null});
        assert_eq!(outputs_problem(false, &run(json!([step]))), None);
        assert!(outputs_problem(false, &run(json!([{"object": "workflow_step_run"}]))).is_some());
        assert!(outputs_problem(false, &json!({"status": "PROCESSED"})).is_some());
        assert!(outputs_problem(true, &json!({"outputs": []})).is_some());
    }
}
