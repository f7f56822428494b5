//! Threshold expressions: `submit.p99 < 800ms`, `e2e.p95 < 30m`, `runs.missing == 0`,
//! `http.errors.rate < 0.1%`. Parsed when the scenario is loaded, so a typo in a metric
//! name is a validation error, never a silent pass.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::parse_duration;

/// The kind of value a metric has, which decides how its bound must be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Duration,
    Count,
    Ratio,
    Rate,
}

/// Latency families and the histogram each names.
const LATENCY_FAMILIES: [&str; 7] = [
    "submit",
    "submit.service",
    "submit.lag",
    "list",
    "get",
    "e2e",
    "batch",
];
const STATS: [&str; 9] = [
    "p50", "p90", "p95", "p99", "p999", "max", "mean", "min", "count",
];

/// Metrics that are plain numbers.
pub const SCALAR_METRICS: [(&str, Unit, &str); 25] = [
    (
        "runs.submitted",
        Unit::Count,
        "inputs sent in accepted batches",
    ),
    (
        "runs.seen",
        Unit::Count,
        "inputs whose terminal result was seen",
    ),
    (
        "runs.missing",
        Unit::Count,
        "accepted inputs with no terminal result by the deadline",
    ),
    (
        "runs.rejected",
        Unit::Count,
        "inputs in batches the target rejected",
    ),
    ("runs.failed", Unit::Count, "runs that ended FAILED"),
    (
        "runs.credits",
        Unit::Count,
        "credits the runs reported in usage.credits, once per input",
    ),
    ("runs.failed.rate", Unit::Ratio, "FAILED runs / runs seen"),
    (
        "runs.duplicates",
        Unit::Count,
        "extra terminal results for a run (distinct events)",
    ),
    (
        "runs.unknown",
        Unit::Count,
        "results that match no submitted input",
    ),
    (
        "runs.foreign",
        Unit::Count,
        "other runs' results on the same workflow (another run's tag or batchId), not judged",
    ),
    (
        "runs.out_of_order",
        Unit::Count,
        "status observations that went backwards",
    ),
    (
        "batches.rejected",
        Unit::Count,
        "batches answered with a 4xx",
    ),
    (
        "batches.possible_duplicates",
        Unit::Count,
        "batches answered 5xx or timed out: they may exist",
    ),
    (
        "http.errors",
        Unit::Count,
        "requests that failed (status ≥ 400 other than 429, or no response)",
    ),
    ("http.errors.rate", Unit::Ratio, "http.errors / requests"),
    ("http.throttles", Unit::Count, "429 responses"),
    (
        "webhooks.rejected",
        Unit::Count,
        "deliveries failing signature or age checks",
    ),
    (
        "webhooks.redeliveries",
        Unit::Count,
        "deliveries repeating an eventId already seen",
    ),
    (
        "throughput.batches",
        Unit::Rate,
        "accepted batches per second over the load phase",
    ),
    (
        "throughput.runs",
        Unit::Rate,
        "terminal runs per second, steady state",
    ),
    (
        "generator.saturated",
        Unit::Count,
        "1 if schedule lag p99 exceeded its bound",
    ),
    (
        "rules.failed",
        Unit::Count,
        "contract rules that failed (any severity)",
    ),
    (
        "rules.not_run",
        Unit::Count,
        "contract rules nothing exercised",
    ),
    (
        "rss.max",
        Unit::Count,
        "peak resident memory of the harness process, MiB",
    ),
    (
        "rss.growth",
        Unit::Ratio,
        "resident memory at the end ÷ half way (1.0 = flat)",
    ),
];

/// Every metric name a threshold may use, for the error message and the docs.
pub fn known_metrics() -> Vec<String> {
    let mut out: Vec<String> = LATENCY_FAMILIES
        .iter()
        .flat_map(|f| STATS.iter().map(move |s| format!("{f}.{s}")))
        .collect();
    out.extend(SCALAR_METRICS.iter().map(|(m, _, _)| m.to_string()));
    out
}

pub fn unit_of(metric: &str) -> Option<Unit> {
    if let Some((_, u, _)) = SCALAR_METRICS.iter().find(|(m, _, _)| *m == metric) {
        return Some(*u);
    }
    let (family, stat) = metric.rsplit_once('.')?;
    if LATENCY_FAMILIES.contains(&family) && STATS.contains(&stat) {
        Some(if stat == "count" {
            Unit::Count
        } else {
            Unit::Duration
        })
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => (a - b).abs() < 1e-9,
            Op::Ne => (a - b).abs() >= 1e-9,
        }
    }
}

/// A parsed threshold. Durations are held in milliseconds, ratios as fractions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub expr: String,
    pub metric: String,
    pub op: Op,
    pub bound: f64,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

/// Parses one expression; the error names what to change.
pub fn parse(expr: &str) -> Result<Threshold, String> {
    let ops = ["<=", ">=", "==", "!=", "<", ">"];
    let (pos, op_str) = ops
        .iter()
        .filter_map(|op| expr.find(op).map(|p| (p, *op)))
        .min_by_key(|(p, op)| (*p, usize::MAX - op.len()))
        .ok_or_else(|| {
            format!("`{expr}` has no comparison; write it as `METRIC OP VALUE`, e.g. `submit.p99 < 800ms`")
        })?;
    let metric = expr[..pos].trim().to_string();
    let value = expr[pos + op_str.len()..].trim();
    let op = match op_str {
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "==" => Op::Eq,
        _ => Op::Ne,
    };
    let unit = unit_of(&metric).ok_or_else(|| {
        let known = known_metrics();
        let best = known
            .iter()
            .map(|k| (strsim::jaro_winkler(&metric, k), k))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((score, k)) if score > 0.8 => {
                format!("unknown metric `{metric}`; did you mean `{k}`?")
            }
            _ => format!(
                "unknown metric `{metric}`; known metrics: {}.<p50|p90|p95|p99|p999|max|mean|min|count> and {}",
                LATENCY_FAMILIES.join("|"),
                SCALAR_METRICS.iter().map(|m| m.0).collect::<Vec<_>>().join(", ")
            ),
        }
    })?;
    let bound = match unit {
        Unit::Duration => {
            parse_duration(value)
                .map_err(|e| format!("`{metric}` is a duration: {e}"))?
                .as_secs_f64()
                * 1e3
        }
        Unit::Ratio => {
            if let Some(p) = value.strip_suffix('%') {
                p.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("`{value}` is not a percentage like `0.1%`"))?
                    / 100.0
            } else {
                let v = value.parse::<f64>().map_err(|_| {
                    format!("`{metric}` is a ratio: write `0.1%` or `0.001`, not `{value}`")
                })?;
                // A share of a whole never exceeds 1: `runs.failed.rate < 10` would mean
                // 1,000 % and could never fail. (`rss.growth` is a ratio that can.)
                if metric.ends_with(".rate") && v > 1.0 {
                    return Err(format!(
                        "`{metric} {op_str} {value}` means {}%, and a share can never exceed 100%: write `{value}%` or `{}`",
                        v * 100.0,
                        v / 100.0
                    ));
                }
                v
            }
        }
        Unit::Count | Unit::Rate => value.parse::<f64>().map_err(|_| {
            format!("`{metric}` is a number: write e.g. `{metric} {op_str} 0`, not `{value}`")
        })?,
    };
    Ok(Threshold {
        expr: expr.trim().to_string(),
        metric,
        op,
        bound,
    })
}

/// A threshold's outcome in a report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    pub expr: String,
    pub metric: String,
    pub op: Op,
    pub bound: f64,
    /// The measured value, in the metric's unit (ms for durations, fraction for ratios).
    pub value: Option<f64>,
    pub passed: bool,
}

/// A measured value written in its metric's unit: `812ms`, `0.12%`, `3`, `41.5/s`.
pub fn format_value(metric: &str, value: Option<f64>) -> String {
    let Some(v) = value else {
        return "no data".into();
    };
    match unit_of(metric) {
        Some(Unit::Duration) => {
            crate::config::format_duration(std::time::Duration::from_secs_f64((v / 1e3).max(0.0)))
        }
        Some(Unit::Ratio) => format!("{:.3}%", v * 100.0),
        Some(Unit::Rate) => format!("{v:.2}/s"),
        _ if v.fract() == 0.0 => format!("{v:.0}"),
        _ => format!("{v:.3}"),
    }
}

impl Threshold {
    pub fn evaluate(&self, value: Option<f64>) -> ThresholdResult {
        // A metric with no data (e.g. no e2e samples) fails: absence of evidence is
        // not a pass.
        let passed = value.is_some_and(|v| self.op.holds(v, self.bound));
        ThresholdResult {
            expr: self.expr.clone(),
            metric: self.metric.clone(),
            op: self.op,
            bound: self.bound,
            value,
            passed,
        }
    }

    pub fn op_str(&self) -> &'static str {
        self.op.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_examples() {
        let t = parse("submit.p99 < 800ms").unwrap();
        assert_eq!(
            (t.metric.as_str(), t.op, t.bound),
            ("submit.p99", Op::Lt, 800.0)
        );
        assert_eq!(parse("e2e.p95 < 30m").unwrap().bound, 1_800_000.0);
        assert_eq!(parse("runs.missing == 0").unwrap().op, Op::Eq);
        assert!((parse("http.errors.rate < 0.1%").unwrap().bound - 0.001).abs() < 1e-12);
        assert_eq!(parse("submit.lag.p99<=5ms").unwrap().op, Op::Le);
    }

    #[test]
    fn unknown_metric_is_an_error_with_a_suggestion() {
        let e = parse("submit.p98 < 1s").unwrap_err();
        assert!(e.contains("did you mean"), "{e}");
        let e = parse("runs.mising == 0").unwrap_err();
        assert!(e.contains("`runs.missing`"), "{e}");
        assert!(
            parse("latency < 1s")
                .unwrap_err()
                .contains("unknown metric")
        );
    }

    #[test]
    fn wrong_unit_is_an_error() {
        assert!(parse("submit.p99 < 800").unwrap_err().contains("duration"));
        let e = parse("runs.failed.rate < 10").unwrap_err();
        assert!(
            e.contains("1000%") && e.contains("`10%`") && e.contains("`0.1`"),
            "{e}"
        );
        assert!((parse("runs.failed.rate < 10%").unwrap().bound - 0.1).abs() < 1e-12);
        assert!((parse("rss.growth < 1.25").unwrap().bound - 1.25).abs() < 1e-12);
        assert!(
            parse("runs.missing == none")
                .unwrap_err()
                .contains("number")
        );
        assert!(parse("submit.p99").unwrap_err().contains("no comparison"));
    }

    #[test]
    fn values_are_shown_in_their_unit() {
        assert_eq!(format_value("submit.p99", Some(812.0)), "812ms");
        assert_eq!(format_value("http.errors.rate", Some(0.0012)), "0.120%");
        assert_eq!(format_value("runs.missing", Some(3.0)), "3");
        assert_eq!(format_value("e2e.p95", None), "no data");
    }

    #[test]
    fn missing_value_fails() {
        let t = parse("e2e.p99 < 1s").unwrap();
        assert!(!t.evaluate(None).passed);
        assert!(t.evaluate(Some(999.0)).passed);
        assert!(!t.evaluate(Some(1000.0)).passed);
    }
}
