//! The request validation's unit tests.
use super::*;
use crate::api::error::ErrorCode;
use serde_json::json;

/// The batch validation as the handler calls it, from the body's bytes.
fn batch(
    version: ApiVersion,
    profile: &Profile,
    body: &Value,
    limits: BatchLimits,
) -> Result<RunRequest, Refusal> {
    let bytes = serde_json::to_vec(body).unwrap();
    super::batch(version, profile, raw::batch(&bytes).unwrap(), limits)
}

fn limits() -> BatchLimits {
    BatchLimits {
        min: 1,
        max: MAX_BATCH_INPUTS,
        metadata_bytes: MAX_METADATA_BYTES,
    }
}

fn wf() -> Value {
    json!({"id": crate::mock::profile::DEFAULT_WORKFLOW})
}

#[test]
fn file_union_needs_exactly_one_source() {
    let p = Profile::default();
    let v = ApiVersion::V2026_02_09;
    let ok = json!({"workflow": wf(), "inputs": [{"file": {"url": "https://x/a.pdf"}, "metadata": {"a": [1, {"b": null}]}}]});
    let req = batch(v, &p, &ok, limits()).unwrap();
    assert_eq!(req.runs[0].metadata.value(), json!({"a": [1, {"b": null}]}));
    assert_eq!(req.version, "2");
    let both = json!({"workflow": wf(), "inputs": [{"file": {"url": "u", "text": "t"}}]});
    let err = batch(v, &p, &both, limits()).unwrap_err();
    assert!(err.reject.message.contains("inputs[0].file"), "{err:?}");
    assert_eq!(err.kind, Some(Invalid::BadFile));
    let none = json!({"workflow": wf(), "inputs": [{"file": {"name": "n"}}]});
    assert_eq!(
        batch(v, &p, &none, limits()).unwrap_err().reject.code,
        ErrorCode::InvalidRequest
    );
}

#[test]
fn counts_outside_1_to_1000_are_400() {
    let p = Profile::default();
    let v = ApiVersion::V2026_02_09;
    let input = json!({"file": {"text": "t"}});
    let zero = json!({"workflow": wf(), "inputs": []});
    let err = batch(v, &p, &zero, limits()).unwrap_err();
    assert!(err.reject.message.contains("got 0"));
    assert_eq!(err.kind, Some(Invalid::NoInputs));
    let many = json!({"workflow": wf(), "inputs": vec![input.clone(); 1001]});
    let err = batch(v, &p, &many, limits()).unwrap_err();
    assert!(err.reject.message.contains("got 1001"));
    assert_eq!(err.kind, Some(Invalid::TooManyInputs));
    let max = json!({"workflow": wf(), "inputs": vec![input; 1000]});
    assert_eq!(batch(v, &p, &max, limits()).unwrap().runs.len(), 1000);
}

#[test]
fn legacy_shape_and_unknown_workflow() {
    let p = Profile::default();
    let v = ApiVersion::V2025_04_21;
    let ok = json!({"workflowId": crate::mock::profile::DEFAULT_WORKFLOW, "inputs": [{"rawText": "hi"}, {"file": {"fileId": "file_1"}}]});
    assert_eq!(batch(v, &p, &ok, limits()).unwrap().runs.len(), 2);
    let modern = json!({"workflow": wf(), "inputs": [{"rawText": "hi"}]});
    let err = batch(v, &p, &modern, limits()).unwrap_err();
    assert!(err.reject.message.contains("workflowId"));
    assert_eq!(err.kind, Some(Invalid::MissingWorkflow));
    let unknown = json!({"workflowId": "workflow_nope", "inputs": [{"rawText": "hi"}]});
    assert_eq!(
        batch(v, &p, &unknown, limits()).unwrap_err().reject.code,
        ErrorCode::NotFound
    );
}

#[test]
fn oversized_metadata_is_400() {
    let p = Profile::default();
    let big = "x".repeat(MAX_METADATA_BYTES);
    let body =
        json!({"workflow": wf(), "inputs": [{"file": {"text": "t"}, "metadata": {"k": big}}]});
    let err = batch(ApiVersion::V2026_02_09, &p, &body, limits()).unwrap_err();
    assert!(err.reject.message.contains("10KB"), "{err:?}");
    assert_eq!(err.kind, Some(Invalid::MetadataTooLarge));
}

#[test]
fn priority_range() {
    let p = Profile::default();
    let body = json!({"workflow": wf(), "inputs": [{"file": {"text": "t"}}], "priority": 101});
    assert!(batch(ApiVersion::V2026_02_09, &p, &body, limits()).is_err());
    let body = json!({"workflow": wf(), "inputs": [{"file": {"text": "t"}}], "priority": 5});
    assert_eq!(
        batch(ApiVersion::V2026_02_09, &p, &body, limits())
            .unwrap()
            .priority,
        Some(5)
    );
}
