//! Request validation for the mock, per version: the batch body, the single-run body and
//! the list query. Every rejection names the offending field path, as a client developer
//! would want from the real API.

use serde_json::{Map, Value};

use super::profile::Profile;
use super::raw::{self, BatchDoc, InputDoc, Metadata, Shape};
use super::refusal::{Classify, Invalid, Refusal, Reject, invalid, not_found};
use super::steer::Steered;
use crate::api::{ApiVersion, MAX_BATCH_INPUTS, MAX_METADATA_BYTES};

/// Where one document comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Url(String),
    Id(String),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    pub source: Source,
    pub name: Option<String>,
}

/// One validated input: the documents of one run, and its metadata (`{}` when none).
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub files: Vec<FileSpec>,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub workflow: usize,
    pub version: String,
    pub runs: Vec<NewRun>,
    pub priority: Option<u8>,
}

/// Limits the defects may loosen.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub min: usize,
    pub max: usize,
    /// The metadata limit per input, in bytes of compact JSON (10KB).
    pub metadata_bytes: usize,
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Reject> {
    v.as_object()
        .ok_or_else(|| invalid(format!("`{path}` must be a JSON object")))
}

fn opt_str<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, Reject> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("`{path}{key}` must be a string"))),
    }
}

fn req_str<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, Reject> {
    match opt_str(m, key, path)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(invalid(format!("`{path}{key}` must not be empty"))),
        None => Err(invalid(format!("`{path}{key}` is required"))),
    }
}

/// An input's metadata (`{}` when none). Its refusals say which kind of validation
/// failure they are, so the profile can choose their status.
fn metadata(m: &Map<String, Value>, path: &str) -> Result<Metadata, Refusal> {
    match m.get("metadata") {
        None | Some(Value::Null) => Ok(Metadata::default()),
        Some(v @ Value::Object(_)) => {
            metadata_size(
                &serde_json::to_vec(v).unwrap_or_default(),
                path,
                MAX_METADATA_BYTES,
            )?;
            let meta = Metadata::from_value(v);
            steering(&meta, path)?;
            Ok(meta)
        }
        Some(_) => malformed_metadata(path),
    }
}

/// A batch input's metadata, from the raw text it was sent as.
fn raw_metadata(
    raw: Option<&serde_json::value::RawValue>,
    path: &str,
    limit: usize,
) -> Result<Metadata, Refusal> {
    let Some(raw) = raw.filter(|r| !raw::is_null(r)) else {
        return Ok(Metadata::default());
    };
    if !raw::is_object(raw) {
        return malformed_metadata(path);
    }
    // The limit counts the compact JSON, as for a parsed body; only text over the limit
    // (which may be whitespace) is re-serialised to find out.
    if raw.get().len() > limit {
        let v: Value = serde_json::from_str(raw.get()).unwrap_or_default();
        metadata_size(&serde_json::to_vec(&v).unwrap_or_default(), path, limit)?;
    }
    let meta = Metadata::from_raw(raw);
    steering(&meta, path)?;
    Ok(meta)
}

fn metadata_size(compact: &[u8], path: &str, limit: usize) -> Result<(), Refusal> {
    let size = compact.len();
    if size > limit {
        return Err(invalid(format!(
            "`{path}metadata` is {size} bytes; the limit is {MAX_METADATA_BYTES} bytes (10KB)"
        )))
        .kind(Invalid::MetadataTooLarge);
    }
    Ok(())
}

/// Checked here so a bad steering key is refused with the request, not ignored.
fn steering(meta: &Metadata, path: &str) -> Result<(), Refusal> {
    meta.steer()
        .map_err(|e| invalid(format!("`{path}metadata.{}` {e}", super::steer::STEER_KEY)))?;
    Ok(())
}

fn malformed_metadata<T>(path: &str) -> Result<T, Refusal> {
    Err(invalid(format!("`{path}metadata` must be a JSON object"))).kind(Invalid::Malformed)
}

fn secrets(m: &Map<String, Value>, path: &str) -> Result<(), Reject> {
    match m.get("secrets") {
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(invalid(format!("`{path}secrets` must be a JSON object"))),
    }
}

fn workflow(profile: &Profile, id: &str, version: Option<&str>) -> Result<(usize, String), Reject> {
    let (idx, wf) = profile
        .workflows
        .iter()
        .enumerate()
        .find(|(_, w)| w.id == id)
        .ok_or_else(|| {
            let known: Vec<&str> = profile.workflows.iter().map(|w| w.id.as_str()).collect();
            not_found(format!(
                "Workflow `{id}` not found (this mock knows {})",
                known.join(", ")
            ))
        })?;
    let version = match version {
        None => wf
            .versions
            .last()
            .cloned()
            .unwrap_or_else(|| "draft".into()),
        Some("draft") => "draft".into(),
        Some(v) if wf.versions.iter().any(|x| x == v) => v.to_string(),
        Some(v) => {
            return Err(not_found(format!(
                "Version `{v}` of workflow `{id}` not found; published versions: {}",
                wf.versions.join(", ")
            )));
        }
    };
    Ok((idx, version))
}

/// A run steered to NEEDS_REVIEW on a workflow without a review step is refused: in
/// production such a run cannot need review, so a test that expects it would pass here
/// and never there. `inputs` names a batch's array ("" for a single run).
fn review_needs_a_step(
    profile: &Profile,
    workflow: usize,
    runs: &[NewRun],
    inputs: &str,
) -> Result<(), Reject> {
    let wf = &profile.workflows[workflow];
    if wf.review {
        return Ok(());
    }
    let steered = runs.iter().position(|r| {
        matches!(r.metadata.steer(), Ok(Some(s)) if matches!(s.outcome, Steered::NeedsReview { .. }))
    });
    let Some(i) = steered else { return Ok(()) };
    let path = if inputs.is_empty() {
        String::new()
    } else {
        format!("{inputs}[{i}].")
    };
    let fix = match profile.workflows.iter().find(|w| w.review) {
        Some(r) => format!("; steer review on a workflow that has one, e.g. `{}`", r.id),
        None => "; no workflow of this mock's profile has one (`review: true`)".into(),
    };
    Err(invalid(format!(
        "`{path}metadata.{}` steers NEEDS_REVIEW, but workflow `{}` has no review step, so none of its runs can need review{fix}",
        super::steer::STEER_KEY,
        wf.id
    )))
}

/// The 2026 file union: exactly one of `url`, `id` or `text`.
fn file_2026(v: &Value, path: &str) -> Result<FileSpec, Reject> {
    let m = object(v, path)?;
    let present: Vec<&str> = ["url", "id", "text"]
        .into_iter()
        .filter(|k| m.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    let prefix = format!("{path}.");
    let name = opt_str(m, "name", &prefix)?.map(str::to_string);
    match present.as_slice() {
        ["url"] => {
            if let Some(s) = m.get("settings")
                && !s.is_null()
            {
                object(s, &format!("{path}.settings"))?;
            }
            Ok(FileSpec {
                source: Source::Url(req_str(m, "url", &prefix)?.to_string()),
                name,
            })
        }
        ["id"] => Ok(FileSpec {
            source: Source::Id(req_str(m, "id", &prefix)?.to_string()),
            name: None,
        }),
        ["text"] => {
            let text = match m.get("text") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(invalid(format!("`{path}.text` must be a string"))),
            };
            Ok(FileSpec {
                source: Source::Text(text),
                name,
            })
        }
        [] => Err(invalid(format!(
            "`{path}` must have one of `url`, `id` or `text`"
        ))),
        many => Err(invalid(format!(
            "`{path}` must have exactly one of `url`, `id` or `text`, not {}",
            many.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        ))),
    }
}

/// The legacy file object: `fileUrl` or `fileId`, with an optional `fileName` label.
fn file_legacy(v: &Value, path: &str) -> Result<FileSpec, Reject> {
    let m = object(v, path)?;
    let prefix = format!("{path}.");
    let name = opt_str(m, "fileName", &prefix)?.map(str::to_string);
    let url = opt_str(m, "fileUrl", &prefix)?;
    let id = opt_str(m, "fileId", &prefix)?;
    let source = match (url, id) {
        (Some(u), _) if !u.trim().is_empty() => Source::Url(u.to_string()),
        (_, Some(i)) if !i.trim().is_empty() => Source::Id(i.to_string()),
        _ => {
            return Err(invalid(format!("`{path}` must have `fileUrl` or `fileId`")));
        }
    };
    Ok(FileSpec { source, name })
}

fn priority(m: &Map<String, Value>) -> Result<Option<u8>, Reject> {
    match m.get("priority") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(p @ 1..=100) => Ok(Some(p as u8)),
            _ => Err(invalid(format!(
                "`priority` must be an integer from 1 to 100, got {v}"
            ))),
        },
    }
}

fn workflow_ref(
    version: ApiVersion,
    m: &Map<String, Value>,
) -> Result<(&str, Option<&str>), Reject> {
    if version.is_legacy() {
        Ok((req_str(m, "workflowId", "")?, opt_str(m, "version", "")?))
    } else {
        let wf = match m.get("workflow") {
            None | Some(Value::Null) => return Err(invalid("`workflow` is required")),
            Some(v) => object(v, "workflow")?,
        };
        Ok((
            req_str(wf, "id", "workflow.")?,
            opt_str(wf, "version", "workflow.")?,
        ))
    }
}

/// Validates a Batch Run Workflow body in `version`'s shape.
pub fn batch(
    version: ApiVersion,
    profile: &Profile,
    body: Shape<BatchDoc<'_>>,
    limits: BatchLimits,
) -> Result<RunRequest, Refusal> {
    let doc = match body {
        Shape::Expected(doc) => doc,
        Shape::Other(_) => {
            return Err(invalid("`body` must be a JSON object")).kind(Invalid::Malformed);
        }
    };
    let m = &doc.fields;
    let (wf_id, wf_version) = workflow_ref(version, m).kind(Invalid::MissingWorkflow)?;
    let inputs = match doc.inputs {
        None | Some(Shape::Other(Value::Null)) => {
            return Err(invalid("`inputs` is required").into());
        }
        Some(Shape::Expected(a)) => a,
        Some(Shape::Other(_)) => {
            return Err(invalid("`inputs` must be an array")).kind(Invalid::Malformed);
        }
    };
    let count = |kind| {
        Err(invalid(format!(
            "`inputs` must contain at least 1 input and at most {MAX_BATCH_INPUTS} inputs; got {}",
            inputs.len()
        )))
        .kind(kind)
    };
    if inputs.len() < limits.min {
        return count(Invalid::NoInputs);
    }
    if inputs.len() > limits.max {
        return count(Invalid::TooManyInputs);
    }
    let mut runs = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let path = format!("inputs[{i}]");
        let InputDoc {
            fields: im,
            metadata: meta,
        } = match input {
            Shape::Expected(doc) => doc,
            Shape::Other(_) => {
                return Err(invalid(format!("`{path}` must be a JSON object")))
                    .kind(Invalid::Malformed);
            }
        };
        let prefix = format!("{path}.");
        let file = input_file(version, im, &path).kind(Invalid::BadFile)?;
        secrets(im, &prefix)?;
        runs.push(NewRun {
            files: vec![file],
            metadata: raw_metadata(*meta, &prefix, limits.metadata_bytes)?,
        });
    }

    // The workflow is resolved after the body is known to be well-formed, so a malformed
    // body gets 400 even when it also names an unknown workflow.
    let (workflow, version_str) = workflow(profile, wf_id, wf_version)?;
    review_needs_a_step(profile, workflow, &runs, "inputs")?;
    let priority = if version.is_legacy() {
        None
    } else {
        priority(m)?
    };
    Ok(RunRequest {
        workflow,
        version: version_str,
        runs,
        priority,
    })
}

/// One input's document: the file union (or legacy `rawText`) of `version`.
fn input_file(
    version: ApiVersion,
    im: &Map<String, Value>,
    path: &str,
) -> Result<FileSpec, Reject> {
    let file = if version.is_legacy() {
        let file = im.get("file").filter(|v| !v.is_null());
        let raw = im.get("rawText").filter(|v| !v.is_null());
        match (file, raw) {
            (Some(_), Some(_)) => {
                return Err(invalid(format!(
                    "`{path}` must have either `file` or `rawText`, not both"
                )));
            }
            (Some(f), None) => file_legacy(f, &format!("{path}.file"))?,
            (None, Some(Value::String(t))) => FileSpec {
                source: Source::Text(t.clone()),
                name: None,
            },
            (None, Some(_)) => {
                return Err(invalid(format!("`{path}.rawText` must be a string")));
            }
            (None, None) => {
                return Err(invalid(format!("`{path}` must have `file` or `rawText`")));
            }
        }
    } else {
        match im.get("file") {
            None | Some(Value::Null) => {
                return Err(invalid(format!("`{path}.file` is required")));
            }
            Some(f) => file_2026(f, &format!("{path}.file"))?,
        }
    };
    Ok(file)
}

/// Validates a Run Workflow (single) body in `version`'s shape. Legacy versions create
/// one run per file or raw text; 2026 creates one run from a file or a package.
pub fn single(version: ApiVersion, profile: &Profile, body: &Value) -> Result<RunRequest, Reject> {
    let m = object(body, "body")?;
    let (wf_id, wf_version) = workflow_ref(version, m)?;
    let meta = metadata(m, "").map_err(|r| r.reject)?;
    secrets(m, "")?;
    let runs = if version.is_legacy() {
        let files = m.get("files").filter(|v| !v.is_null());
        let raws = m.get("rawTexts").filter(|v| !v.is_null());
        let mut specs = Vec::new();
        if let Some(files) = files {
            let arr = files
                .as_array()
                .ok_or_else(|| invalid("`files` must be an array"))?;
            if arr.len() > 50 {
                return Err(invalid(format!(
                    "`files` may hold at most 50 files; got {}",
                    arr.len()
                )));
            }
            for (i, f) in arr.iter().enumerate() {
                specs.push(file_legacy(f, &format!("files[{i}]"))?);
            }
        }
        if let Some(raws) = raws {
            let arr = raws
                .as_array()
                .ok_or_else(|| invalid("`rawTexts` must be an array"))?;
            for (i, t) in arr.iter().enumerate() {
                let t = t
                    .as_str()
                    .ok_or_else(|| invalid(format!("`rawTexts[{i}]` must be a string")))?;
                specs.push(FileSpec {
                    source: Source::Text(t.to_string()),
                    name: None,
                });
            }
        }
        if specs.is_empty() {
            return Err(invalid(
                "one of `files` or `rawTexts` is required and must not be empty",
            ));
        }
        specs
            .into_iter()
            .map(|f| NewRun {
                files: vec![f],
                metadata: meta.clone(),
            })
            .collect()
    } else {
        let file = m.get("file").filter(|v| !v.is_null());
        let package = m.get("package").filter(|v| !v.is_null());
        let files = match (file, package) {
            (Some(_), Some(_)) => return Err(invalid("give either `file` or `package`, not both")),
            (None, None) => return Err(invalid("one of `file` or `package` is required")),
            (Some(f), None) => vec![file_2026(f, "file")?],
            (None, Some(p)) => {
                let pm = object(p, "package")?;
                let arr = pm
                    .get("files")
                    .and_then(Value::as_array)
                    .ok_or_else(|| invalid("`package.files` must be an array"))?;
                if !(2..=50).contains(&arr.len()) {
                    return Err(invalid(format!(
                        "`package.files` must hold 2 to 50 files; got {}",
                        arr.len()
                    )));
                }
                let mut specs = Vec::new();
                for (i, f) in arr.iter().enumerate() {
                    let spec = file_2026(f, &format!("package.files[{i}]"))?;
                    if matches!(spec.source, Source::Text(_)) {
                        return Err(invalid(format!("`package.files[{i}]` cannot be text")));
                    }
                    if specs.iter().any(|s: &FileSpec| s.source == spec.source) {
                        return Err(invalid(format!(
                            "`package.files[{i}]` repeats an earlier file"
                        )));
                    }
                    specs.push(spec);
                }
                specs
            }
        };
        vec![NewRun {
            files,
            metadata: meta,
        }]
    };
    let (workflow, version_str) = workflow(profile, wf_id, wf_version)?;
    review_needs_a_step(profile, workflow, &runs, "")?;
    Ok(RunRequest {
        workflow,
        version: version_str,
        runs,
        priority: priority(m)?,
    })
}

#[cfg(test)]
mod tests;
