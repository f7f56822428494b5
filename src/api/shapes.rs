//! Wire shapes that differ between API versions: the batch request body the harness
//! sends, and the few fields it reads back from batch, list and run responses.
//!
//! Responses are read as `serde_json::Value` on purpose: the docs promise new fields may
//! appear, and a conformance checker must be able to say *which* field is wrong rather
//! than fail a whole typed parse.

use serde::Serialize;
use serde_json::{Map, Value};

use super::ApiVersion;

/// Where an input's document comes from (the 2026 file union; the legacy versions spell
/// the same three choices as `file.fileUrl`, `file.fileId` and `rawText`).
#[derive(Debug, Clone, PartialEq)]
pub enum FileRef {
    Url { url: String, name: Option<String> },
    Id { id: String },
    Text { text: String, name: Option<String> },
}

/// One input of a batch, independent of version.
#[derive(Debug, Clone)]
pub struct BatchInput {
    pub file: FileRef,
    pub metadata: Option<Value>,
    pub secrets: Option<Value>,
}

/// A workflow reference: id plus an optional version (`"3"` or `"draft"`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Serialize)]
struct File2026<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileLegacy<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_name: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Input<'a, F: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<F>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets: Option<&'a Value>,
}

#[derive(Serialize)]
struct Batch2026<'a> {
    workflow: &'a WorkflowRef,
    inputs: Vec<Input<'a, File2026<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u8>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchLegacy<'a> {
    workflow_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    inputs: Vec<Input<'a, FileLegacy<'a>>>,
}

/// One input's document, borrowed, for writing an input without building it.
#[derive(Debug, Clone, Copy)]
pub enum FileParts<'a> {
    Url {
        url: &'a str,
        name: Option<&'a str>,
    },
    Id {
        id: &'a str,
    },
    Text {
        text: &'a str,
        name: Option<&'a str>,
    },
}

impl<'a> From<&'a FileRef> for FileParts<'a> {
    fn from(f: &'a FileRef) -> FileParts<'a> {
        match f {
            FileRef::Url { url, name } => FileParts::Url {
                url,
                name: name.as_deref(),
            },
            FileRef::Id { id } => FileParts::Id { id },
            FileRef::Text { text, name } => FileParts::Text {
                text,
                name: name.as_deref(),
            },
        }
    }
}

/// Writes the start of one input as `batch_body` serialises it: `{"file":{…}` (or the
/// legacy `{"rawText":…`), leaving the object open for its metadata and secrets.
pub fn write_input_head(version: ApiVersion, file: FileParts<'_>, out: &mut Vec<u8>) {
    // Serialising borrowed strings into a Vec cannot fail.
    let _ = if version.is_legacy() {
        match file {
            FileParts::Text { text, .. } => {
                out.extend_from_slice(b"{\"rawText\":");
                serde_json::to_writer(&mut *out, text)
            }
            FileParts::Url { url, name } => {
                out.extend_from_slice(b"{\"file\":");
                serde_json::to_writer(
                    &mut *out,
                    &FileLegacy {
                        file_url: Some(url),
                        file_id: None,
                        file_name: name,
                    },
                )
            }
            FileParts::Id { id } => {
                out.extend_from_slice(b"{\"file\":");
                serde_json::to_writer(
                    &mut *out,
                    &FileLegacy {
                        file_url: None,
                        file_id: Some(id),
                        file_name: None,
                    },
                )
            }
        }
    } else {
        out.extend_from_slice(b"{\"file\":");
        let (url, id, text, name) = match file {
            FileParts::Url { url, name } => (Some(url), None, None, name),
            FileParts::Id { id } => (None, Some(id), None, None),
            FileParts::Text { text, name } => (None, None, Some(text), name),
        };
        serde_json::to_writer(
            &mut *out,
            &File2026 {
                url,
                id,
                text,
                name,
            },
        )
    };
}

/// The body of a batch with no inputs, cut where the inputs go: what comes before the
/// first input and what comes after the last.
pub fn batch_frame(
    version: ApiVersion,
    workflow: &WorkflowRef,
    priority: Option<u8>,
) -> (Vec<u8>, Vec<u8>) {
    let empty = batch_body(version, workflow, &[], priority);
    let marker = b"\"inputs\":[]";
    // The last match: a workflow id could hold the marker's text, but nothing after
    // `inputs` is a string.
    let at = empty
        .windows(marker.len())
        .rposition(|w| w == marker)
        .expect("a batch body has inputs")
        + marker.len()
        - 1;
    (empty[..at].to_vec(), empty[at..].to_vec())
}

/// Serialises a Batch Run Workflow request body in the shape `version` expects.
/// `priority` is only sent on 2026-02-09, the one version that has it.
pub fn batch_body(
    version: ApiVersion,
    workflow: &WorkflowRef,
    inputs: &[BatchInput],
    priority: Option<u8>,
) -> Vec<u8> {
    let result = if version.is_legacy() {
        let inputs = inputs
            .iter()
            .map(|input| {
                let (file, raw_text) = match &input.file {
                    FileRef::Url { url, name } => (
                        Some(FileLegacy {
                            file_url: Some(url),
                            file_id: None,
                            file_name: name.as_deref(),
                        }),
                        None,
                    ),
                    FileRef::Id { id } => (
                        Some(FileLegacy {
                            file_url: None,
                            file_id: Some(id),
                            file_name: None,
                        }),
                        None,
                    ),
                    FileRef::Text { text, .. } => (None, Some(text.as_str())),
                };
                Input {
                    file,
                    raw_text,
                    metadata: input.metadata.as_ref(),
                    secrets: input.secrets.as_ref(),
                }
            })
            .collect();
        serde_json::to_vec(&BatchLegacy {
            workflow_id: &workflow.id,
            version: workflow.version.as_deref(),
            inputs,
        })
    } else {
        let inputs = inputs
            .iter()
            .map(|input| {
                let file = match &input.file {
                    FileRef::Url { url, name } => File2026 {
                        url: Some(url),
                        id: None,
                        text: None,
                        name: name.as_deref(),
                    },
                    FileRef::Id { id } => File2026 {
                        url: None,
                        id: Some(id),
                        text: None,
                        name: None,
                    },
                    FileRef::Text { text, name } => File2026 {
                        url: None,
                        id: None,
                        text: Some(text),
                        name: name.as_deref(),
                    },
                };
                Input {
                    file: Some(file),
                    raw_text: None,
                    metadata: input.metadata.as_ref(),
                    secrets: input.secrets.as_ref(),
                }
            })
            .collect();
        serde_json::to_vec(&Batch2026 {
            workflow,
            inputs,
            priority,
        })
    };
    // Serialising plain strings and already-valid JSON values cannot fail.
    result.expect("batch body serialises")
}

/// The batch id from a Batch Run Workflow response, if the body has one.
pub fn batch_id(body: &Value) -> Option<&str> {
    body.get("batchId").and_then(Value::as_str)
}

/// The runs array and next page token of a List Workflow Runs response, per version.
pub fn list_page(
    version: ApiVersion,
    body: &Value,
) -> Result<(Vec<Value>, Option<String>), String> {
    let key = if version.is_legacy() {
        "workflowRuns"
    } else {
        "data"
    };
    let runs = body
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("list response has no `{key}` array"))?
        .clone();
    let token = match body.get("nextPageToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("nextPageToken is not a string: {other}")),
    };
    Ok((runs, token))
}

/// The WorkflowRun object of a Get Workflow Run response, per version.
pub fn run_object(version: ApiVersion, body: &Value) -> Option<&Map<String, Value>> {
    if version.is_legacy() {
        body.get("workflowRun").and_then(Value::as_object)
    } else {
        body.as_object()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs() -> Vec<BatchInput> {
        vec![
            BatchInput {
                file: FileRef::Url {
                    url: "https://example.test/a.pdf".into(),
                    name: Some("a.pdf".into()),
                },
                metadata: Some(json!({"k": 1})),
                secrets: None,
            },
            BatchInput {
                file: FileRef::Text {
                    text: "hello".into(),
                    name: None,
                },
                metadata: None,
                secrets: None,
            },
        ]
    }

    #[test]
    fn batch_body_2026_uses_workflow_object_and_file_union() {
        let wf = WorkflowRef {
            id: "workflow_1".into(),
            version: Some("draft".into()),
        };
        let body: Value = serde_json::from_slice(&batch_body(
            ApiVersion::V2026_02_09,
            &wf,
            &inputs(),
            Some(90),
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({
                "workflow": {"id": "workflow_1", "version": "draft"},
                "inputs": [
                    {"file": {"url": "https://example.test/a.pdf", "name": "a.pdf"}, "metadata": {"k": 1}},
                    {"file": {"text": "hello"}}
                ],
                "priority": 90
            })
        );
    }

    #[test]
    fn batch_body_legacy_uses_workflow_id_file_url_and_raw_text() {
        let wf = WorkflowRef {
            id: "workflow_1".into(),
            version: None,
        };
        let body: Value = serde_json::from_slice(&batch_body(
            ApiVersion::V2025_04_21,
            &wf,
            &inputs(),
            Some(90),
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({
                "workflowId": "workflow_1",
                "inputs": [
                    {"file": {"fileUrl": "https://example.test/a.pdf", "fileName": "a.pdf"}, "metadata": {"k": 1}},
                    {"rawText": "hello"}
                ]
            })
        );
    }

    #[test]
    fn list_page_reads_both_shapes() {
        let (runs, token) = list_page(
            ApiVersion::V2026_02_09,
            &json!({"object": "list", "data": [{"id": "a"}], "nextPageToken": null}),
        )
        .unwrap();
        assert_eq!((runs.len(), token), (1, None));
        let (runs, token) = list_page(
            ApiVersion::V2024_12_23,
            &json!({"success": true, "workflowRuns": [], "nextPageToken": "t"}),
        )
        .unwrap();
        assert_eq!((runs.len(), token.as_deref()), (0, Some("t")));
        assert!(list_page(ApiVersion::V2026_02_09, &json!({"workflowRuns": []})).is_err());
    }
}
