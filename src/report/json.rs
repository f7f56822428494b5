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
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
    match v.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA) => {}
        Some(other) => anyhow::bail!(
            "{}: schema `{other}`, this batchproof reads `{SCHEMA}`",
            path.display()
        ),
        None => anyhow::bail!("{}: not a batchproof report (no `schema`)", path.display()),
    }
    serde_json::from_value(v).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
