//! Feeder files: real documents for capacity tests, as CSV (columns `url` or `id` or
//! `text`, optional `name`, and `metadata.KEY` columns) or JSONL (one object per line with
//! the same keys, `metadata` as an object). Rows are used in order and wrap around.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::shapes::FileRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Jsonl,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub file: FileRef,
    pub metadata: Map<String, Value>,
}

fn row_from(obj: &Map<String, Value>, at: &str) -> Result<Row, String> {
    let s = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let name = s("name");
    let file = match (s("url"), s("id"), s("text")) {
        (Some(url), None, None) => FileRef::Url { url, name },
        (None, Some(id), None) => FileRef::Id { id },
        (None, None, Some(text)) => FileRef::Text { text, name },
        _ => return Err(format!("{at}: needs exactly one of `url`, `id` or `text`")),
    };
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(format!("{at}: `metadata` must be an object")),
    };
    Ok(Row { file, metadata })
}

pub fn load(path: &Path, format: Option<Format>) -> Result<Vec<Row>, String> {
    let format = match format {
        Some(f) => f,
        None => match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl") | Some("ndjson") => Format::Jsonl,
            _ => {
                return Err(format!(
                    "cannot tell the format of `{}`; set `format: csv` or `format: jsonl`",
                    path.display()
                ));
            }
        },
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read feeder `{}`: {e}", path.display()))?;
    let name = path.display().to_string();
    let rows = match format {
        Format::Jsonl => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let at = format!("{name}:{}", i + 1);
                let v: Value =
                    serde_json::from_str(l).map_err(|e| format!("{at}: not JSON: {e}"))?;
                let obj = v
                    .as_object()
                    .ok_or_else(|| format!("{at}: not a JSON object"))?;
                row_from(obj, &at)
            })
            .collect::<Result<Vec<_>, _>>()?,
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let headers = reader
                .headers()
                .map_err(|e| format!("{name}: {e}"))?
                .clone();
            let mut rows = Vec::new();
            for (i, rec) in reader.records().enumerate() {
                let at = format!("{name}:{}", i + 2);
                let rec = rec.map_err(|e| format!("{at}: {e}"))?;
                let mut obj = Map::new();
                let mut meta = Map::new();
                for (h, v) in headers.iter().zip(rec.iter()) {
                    if let Some(k) = h.strip_prefix("metadata.") {
                        meta.insert(k.to_string(), Value::String(v.to_string()));
                    } else if matches!(h, "url" | "id" | "text" | "name") {
                        obj.insert(h.to_string(), Value::String(v.to_string()));
                    } else {
                        return Err(format!(
                            "{name}:1: unknown column `{h}`; use url, id, text, name or metadata.KEY"
                        ));
                    }
                }
                obj.insert("metadata".into(), Value::Object(meta));
                rows.push(row_from(&obj, &at)?);
            }
            rows
        }
    };
    if rows.is_empty() {
        return Err(format!("feeder `{name}` has no rows"));
    }
    Ok(rows)
}
