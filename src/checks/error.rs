//! `error.*`: error bodies have the requested version's shape (`{code, message,
//! retryable}` from 2026-02-09, `{success: false, error}` before), and a 429 says it is
//! retryable. Every error answer the probes draw is a case, and every 4xx the load sees;
//! a 5xx of the load is not (the SDKs type the 500 body as untyped JSON, and a gateway in
//! front of the API may answer one in HTML). On 2025-04-21, where the reference does not
//! know which shape workflow endpoints answer today, either shape passes, with a note.

use serde_json::Value;

use super::{Case, Findings, Provenance, Rule, Severity, excerpt};
use crate::api::ApiVersion;
use crate::api::client::Reply;
use crate::api::error::{ErrorCode, ErrorShape};

pub(crate) const DOC: &str = "https://docs.extend.ai/api-reference/error-handling";

pub const RULES: &[Rule] = &[
    Rule {
        id: "error.shape",
        title: "Error bodies have the shape of the requested version",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "2026: {code, message, retryable, requestId?}; 2024-12-23: {success: false, error} (the 2025 SDK's {error} on 429 accepted); 2025-04-21: either (which one it answers today is uncertain); a 5xx of the load is not judged (untyped in the SDKs)",
        versions: &[],
    },
    Rule {
        id: "error.throttle_retryable",
        title: "A 429 carries code RATE_LIMIT_EXCEEDED with retryable: true",
        severity: Severity::Error,
        doc: "https://docs.extend.ai/2026-02-09/general/rate-limits",
        provenance: Provenance::Documented,
        basis: "429 RATE_LIMIT_EXCEEDED with retryable: true",
        versions: super::CURRENT_ONLY,
    },
];

/// Records an answer with status ≥ 400 as a case of `error.shape`.
pub fn body(findings: &mut Findings, version: ApiVersion, reply: &Reply, request: &str) {
    let Reply::Answered {
        status, body, raw, ..
    } = reply
    else {
        return;
    };
    if *status < 400 {
        return;
    }
    let shape = ErrorShape::for_version(version);
    let problem = match body {
        Some(b) => match shape.check_answer(*status, b) {
            // 2025-04-21: the SDK of that version also types the coded shape, and the
            // reference cannot say which one workflow endpoints answer today.
            Err(_) if version == ApiVersion::V2025_04_21 && ErrorShape::Coded.check(b).is_ok() => {
                findings.add_note(
                    "error.shape",
                    "answered {code, message, retryable} on 2025-04-21 (accepted: which shape 2025-04-21 workflow endpoints answer is uncertain)",
                );
                None
            }
            r => r.err(),
        },
        None => Some("the body is not JSON".to_string()),
    };
    findings.check("error.shape", problem.is_none(), || {
        Case::new(
            match shape {
                ErrorShape::Coded => "{code, message, retryable} (2026-02-09)",
                ErrorShape::Legacy if version == ApiVersion::V2025_04_21 => {
                    "{success: false, error} or {code, message, retryable} (2025-04-21)"
                }
                ErrorShape::Legacy => "{success: false, error} (2024-12-23)",
            },
            format!(
                "HTTP {status}, {}: {}",
                problem.clone().unwrap_or_default(),
                excerpt(&String::from_utf8_lossy(raw))
            ),
        )
        .request(request)
    });
}

/// Records an error answer of the load (a batch submission, a poll): a 4xx as a case of
/// `error.shape`; a 5xx not, for the documented bodies are the 4xx and 429 ones.
pub fn load_body(findings: &mut Findings, version: ApiVersion, reply: &Reply, request: &str) {
    if reply.status().is_some_and(|s| s < 500) {
        body(findings, version, reply, request);
    }
}

/// Records a 429 answer as a case of `error.throttle_retryable` (and of `error.shape`).
pub fn throttle_body(findings: &mut Findings, version: ApiVersion, reply: &Reply, request: &str) {
    let Reply::Answered {
        status: 429,
        body: b,
        raw,
        ..
    } = reply
    else {
        return;
    };
    body(findings, version, reply, request);
    if version.is_legacy() {
        return;
    }
    let ok = b.as_ref().is_some_and(|b| {
        b.get("code").and_then(Value::as_str) == Some(ErrorCode::RateLimitExceeded.as_str())
            && b.get("retryable") == Some(&Value::Bool(true))
    });
    findings.check("error.throttle_retryable", ok, || {
        Case::new(
            "HTTP 429 {code: \"RATE_LIMIT_EXCEEDED\", retryable: true, …}",
            format!("HTTP 429: {}", excerpt(&String::from_utf8_lossy(raw))),
        )
        .request(request)
    });
}
