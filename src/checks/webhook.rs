//! `webhook.*`: every delivery is signed with the endpoint's secret and fresh, has a
//! complete envelope, carries the run's batchId and its input's metadata, each run gets
//! exactly one terminal event (redeliveries of one eventId are counted apart), and the
//! terminal status agrees with Get Workflow Run.
//!
//! The ledger judges deliveries as they arrive, and the one-terminal-event rule at the end.
//! Every workflow-run event is also judged for its type: it names the status its payload
//! shows, and `workflow_run.cancelled` (a 2026-02-09 event) never reaches a 2025-04-21
//! endpoint — the probes' runs included, for the cancel probe's run is where it shows.

use serde_json::Value;

use super::{Case, Findings, Provenance, Rule, Severity};
use crate::api::{ApiVersion, RunStatus};

const DOC_EVENTS: &str = "https://docs.extend.ai/2026-02-09/webhooks/events";
const DOC_SIGNING: &str = "https://docs.extend.ai/developers/webhooks/configuration";

pub const RULES: &[Rule] = &[
    Rule {
        id: "webhook.signature",
        title: "Every delivery carries a valid HMAC-SHA256 signature of v0:timestamp:body",
        severity: Severity::Error,
        doc: DOC_SIGNING,
        provenance: Provenance::Documented,
        basis: "HMAC-SHA256 of v0:{timestamp}:{body} with the endpoint's secret, lowercase hex (docs, both SDKs)",
        versions: &[],
    },
    Rule {
        id: "webhook.signature_age",
        title: "Every delivery's signed timestamp is within the allowed age (and not in the future)",
        severity: Severity::Error,
        doc: DOC_SIGNING,
        provenance: Provenance::Sdk,
        basis: "the SDKs refuse timestamps over 300 s old or 60 s ahead",
        versions: &[],
    },
    Rule {
        id: "webhook.envelope",
        title: "Every delivery is JSON with eventId, eventType and a payload object",
        severity: Severity::Error,
        doc: DOC_EVENTS,
        provenance: Provenance::Documented,
        basis: "{eventId, eventType, payload}",
        versions: &[],
    },
    Rule {
        id: "webhook.batch_id",
        title: "Every workflow_run.* event of a batch run carries that run's batchId",
        severity: Severity::Error,
        doc: DOC_EVENTS,
        provenance: Provenance::Documented,
        basis: "workflow_run.* payloads carry batchId at the top level",
        versions: &[],
    },
    Rule {
        id: "webhook.metadata",
        title: "Every workflow_run.* event carries the run's input metadata, deep and exact",
        severity: Severity::Error,
        doc: DOC_EVENTS,
        provenance: Provenance::Documented,
        basis: "workflow_run.* payloads carry the run's metadata at the top level",
        versions: &[],
    },
    Rule {
        id: "webhook.event_type",
        title: "A workflow_run.* event's type names its payload's status (completed: PROCESSED, failed: FAILED, needs_review: NEEDS_REVIEW, rejected: REJECTED, cancelled: CANCELLED)",
        severity: Severity::Error,
        doc: DOC_EVENTS,
        provenance: Provenance::Documented,
        basis: "the events table: each workflow_run event carries the WorkflowRun in the status it announces",
        versions: &[],
    },
    Rule {
        id: "webhook.cancelled_2026_only",
        title: "A 2025-04-21 endpoint never receives workflow_run.cancelled",
        severity: Severity::Error,
        doc: DOC_EVENTS,
        provenance: Provenance::Documented,
        basis: "workflow_run.cancelled is listed for 2026-02-09 only; the payload follows the endpoint's apiVersion (2024-12-23 has no cancellation to announce)",
        versions: &[ApiVersion::V2025_04_21],
    },
    Rule {
        id: "webhook.one_terminal",
        title: "Each run gets exactly one terminal event (redeliveries of one eventId counted apart)",
        severity: Severity::Error,
        doc: DOC_EVENTS,
        provenance: Provenance::Inferred,
        basis: "one terminal event per run, a review adding its outcome after NEEDS_REVIEW",
        versions: &[],
    },
    Rule {
        id: "webhook.agrees_with_get",
        title: "A run's terminal webhook status agrees with Get Workflow Run",
        severity: Severity::Error,
        doc: DOC_EVENTS,
        provenance: Provenance::Inferred,
        basis: "the webhook and Get describe the same run: Get never shows an earlier status than its terminal webhook",
        versions: &[],
    },
];

/// The status a workflow-run event type announces.
fn announced(event_type: &str) -> Option<RunStatus> {
    Some(match event_type {
        "workflow_run.completed" => RunStatus::Processed,
        "workflow_run.failed" => RunStatus::Failed,
        "workflow_run.needs_review" => RunStatus::NeedsReview,
        "workflow_run.rejected" => RunStatus::Rejected,
        "workflow_run.cancelled" => RunStatus::Cancelled,
        _ => return None,
    })
}

/// Judges one distinct workflow-run event for `webhook.event_type` and, when the endpoint's
/// version is known (the run registered it), `webhook.cancelled_2026_only`.
pub fn event_type(
    findings: &mut Findings,
    endpoint: Option<ApiVersion>,
    event_id: &str,
    event_type: &str,
    payload: &Value,
) {
    let Some(want) = announced(event_type) else {
        return;
    };
    let status = payload.get("status").unwrap_or(&Value::Null);
    let run = payload.get("id").and_then(Value::as_str).unwrap_or("?");
    let request = || format!("webhook {event_type} {event_id}");
    findings.check(
        "webhook.event_type",
        status.as_str() == Some(want.as_str()),
        || {
            Case::new(
                format!("status {} in a {event_type} payload", want.as_str()),
                format!("status {status}"),
            )
            .run(run)
            .request(request())
        },
    );
    if endpoint == Some(ApiVersion::V2025_04_21) {
        findings.check(
            "webhook.cancelled_2026_only",
            want != RunStatus::Cancelled,
            || {
                Case::new(
                    "no workflow_run.cancelled on a 2025-04-21 endpoint",
                    format!("{event_type} (status {status})"),
                )
                .run(run)
                .request(request())
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_names_its_payloads_status_and_cancelled_stays_off_2025_endpoints() {
        let mut f = Findings::default();
        let run = |s: &str| json!({"id": "workflow_run_1", "status": s});
        let v2025 = Some(ApiVersion::V2025_04_21);
        event_type(
            &mut f,
            v2025,
            "e1",
            "workflow_run.completed",
            &run("PROCESSED"),
        );
        event_type(
            &mut f,
            v2025,
            "e2",
            "workflow_run.rejected",
            &run("REJECTED"),
        );
        assert_eq!(
            (
                f.checked("webhook.event_type"),
                f.failed("webhook.event_type")
            ),
            (2, 0)
        );
        event_type(
            &mut f,
            v2025,
            "e3",
            "workflow_run.completed",
            &run("FAILED"),
        );
        assert_eq!(f.failed("webhook.event_type"), 1);
        event_type(
            &mut f,
            v2025,
            "e4",
            "workflow_run.cancelled",
            &run("CANCELLED"),
        );
        assert_eq!(f.failed("webhook.cancelled_2026_only"), 1);
        let v2026 = Some(ApiVersion::V2026_02_09);
        event_type(
            &mut f,
            v2026,
            "e5",
            "workflow_run.cancelled",
            &run("CANCELLED"),
        );
        assert_eq!(f.failed("webhook.cancelled_2026_only"), 1);
        // Unknown and step-run events are not judged here.
        event_type(
            &mut f,
            v2025,
            "e6",
            "workflow_run.step_run.processed",
            &run("PROCESSED"),
        );
        assert_eq!(f.checked("webhook.event_type"), 5);
    }
}
