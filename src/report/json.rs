//! The JSON report: the interchange form every other format and command reads.

use super::{Format, Report, SCHEMA};

pub struct Json;

impl Format for Json {
    fn extension(&self) -> &'static str {
        "json"
    }

    fn render(&self, report: &Report) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(report)?)
    }
}

/// Reads a JSON report, refusing other schemas with a message that says which one it is.
pub fn read(path: &std::path::Path) -> anyhow::Result<Report> {
    let text =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    parse(&path.display().to_string(), &text)
}

/// Parses a JSON report from bytes; `name` names it in errors.
pub fn parse(name: &str, text: &[u8]) -> anyhow::Result<Report> {
    let v: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| anyhow::anyhow!("{name}: not JSON: {e}"))?;
    match v.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA) => {}
        Some(other) => anyhow::bail!("{name}: schema `{other}`, this batchproof reads `{SCHEMA}`"),
        None => anyhow::bail!("{name}: not a batchproof report (no `schema`)"),
    }
    serde_json::from_value(v).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}
