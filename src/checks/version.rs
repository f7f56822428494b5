//! `version.*`: the `x-extend-api-version` header picks the shape of everything. A
//! missing header is refused with 400 — or, where a target legitimately serves its
//! legacy default, answered in that legacy shape (`checks.missing_version: legacy`); an
//! unknown value is refused with 400; every answer has the requested version's shape.

use serde_json::Value;

use super::{Case, Findings, Provenance, Rule, Severity, json_excerpt};
use crate::api::ApiVersion;

pub(crate) const DOC: &str = "https://docs.extend.ai/api-reference/api-versioning";

pub const RULES: &[Rule] = &[
    Rule {
        id: "version.missing",
        title: "A request without x-extend-api-version is refused with 400 (or served in the legacy shape, when the scenario says so)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Documented,
        basis: "newer keys get 400 without x-extend-api-version; older keys get 2024-12-23 (expectation configurable)",
        versions: &[],
    },
    Rule {
        id: "version.unknown",
        title: "A request with an unknown x-extend-api-version is refused (400 or 422)",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Inferred,
        basis: "an unknown version is refused; the status is not documented (400 or 422 accepted)",
        versions: &[],
    },
    Rule {
        id: "version.response_shape",
        title: "List and Get answers have the shape of the requested version",
        severity: Severity::Error,
        doc: DOC,
        provenance: Provenance::Sdk,
        basis: "each version's response shapes, as its SDK parses them",
        versions: &[],
    },
];

/// What is wrong with a List Workflow Runs body for `version`, if anything.
pub fn list_problem(version: ApiVersion, body: &Value) -> Option<String> {
    let arr = |k: &str| body.get(k).is_some_and(Value::is_array);
    if version.is_legacy() {
        if body.get("success") != Some(&Value::Bool(true)) {
            return Some("`success: true` missing".into());
        }
        if !arr("workflowRuns") {
            return Some("`workflowRuns` array missing".into());
        }
    } else {
        if !arr("data") {
            return Some("`data` array missing".into());
        }
        if body.get("object").is_some_and(|o| o != "list") {
            return Some(format!("`object` is {}, not \"list\"", body["object"]));
        }
    }
    match body.get("nextPageToken") {
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(other) => Some(format!("nextPageToken is {other}")),
    }
}

/// What is wrong with a Get Workflow Run body for `version`, if anything.
pub fn get_problem(version: ApiVersion, body: &Value) -> Option<String> {
    let run = if version.is_legacy() {
        if body.get("success") != Some(&Value::Bool(true)) {
            return Some("`success: true` missing".into());
        }
        match body.get("workflowRun") {
            Some(r) if r.is_object() => r,
            _ => return Some("`workflowRun` object missing".into()),
        }
    } else {
        if body.get("workflowRun").is_some() {
            return Some("the run is wrapped in `workflowRun` (the legacy shape)".into());
        }
        body
    };
    for key in ["id", "status"] {
        if !run.get(key).is_some_and(Value::is_string) {
            return Some(format!("`{key}` missing or not a string"));
        }
    }
    if !version.is_legacy() {
        for key in ["files", "stepRuns"] {
            if !run.get(key).is_some_and(Value::is_array) {
                return Some(format!("`{key}` array missing"));
            }
        }
        if !run.get("metadata").is_some_and(Value::is_object) {
            return Some("`metadata` is not an object ({} when none was given)".into());
        }
    }
    None
}

/// Records a 200 answer to List (`get: false`) or Get (`get: true`) as a case.
pub fn response(
    findings: &mut Findings,
    version: ApiVersion,
    body: &Value,
    get: bool,
    request: &str,
) {
    let problem = if get {
        get_problem(version, body)
    } else {
        list_problem(version, body)
    };
    findings.check("version.response_shape", problem.is_none(), || {
        Case::new(
            format!(
                "the {} shape of {}",
                if get {
                    "Get Workflow Run"
                } else {
                    "List Workflow Runs"
                },
                version.as_str()
            ),
            format!(
                "{}: {}",
                problem.clone().unwrap_or_default(),
                json_excerpt(body)
            ),
        )
        .request(request)
    });
}
