//! `webhook.*`: every delivery is signed with the endpoint's secret and fresh, has a
//! complete envelope, carries the run's batchId and its input's metadata, each run gets
//! exactly one terminal event (redeliveries of one eventId are counted apart), and the
//! terminal status agrees with Get Workflow Run.
//!
//! The ledger judges deliveries as they arrive, and the one-terminal-event rule at the end.

use super::{Provenance, Rule, Severity};

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
