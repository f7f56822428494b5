//! `batchproof compare BASE.json NEW.json`: each metric's change, and which changes are
//! regressions. A latency percentile regresses only when it grew by more than the
//! tolerance *and* by more than `min_delta`, *and* the two runs' confidence intervals for
//! that percentile (order-statistic bounds read off each histogram, so they shrink with
//! the sample count) do not overlap — a re-run on a noisy machine is not a regression.
//! Rates regress when they fall by more than the tolerance; loss and error counts when
//! they grow at all; rules when one that passed (or did not run) now fails, named.
//!
//! A percentile read off too few samples says nothing either way: with n samples the
//! distribution-free 95 % interval of the q quantile is bounded only when `q^n ≤ 0.025`
//! and `(1−q)^n ≤ 0.025` (the largest sample must be more likely than not above it, with
//! 97.5 % confidence). Below that — fewer than 6 samples for a p50, 36 for a p90, 368 for a
//! p99 — the row says *insufficient data*, neither regression nor better.

use std::fmt::Write;

use serde::Serialize;

use super::Report;
use crate::metrics::{Latency, LatencySummary};

#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Relative change allowed, e.g. 0.25.
    pub relative: f64,
    /// Latency changes smaller than this (ms) are noise whatever their ratio.
    pub min_delta_ms: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            relative: 0.25,
            min_delta_ms: 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Lower,
    Higher,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub unit: &'static str,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// (new − base) / base.
    pub change: Option<f64>,
    /// The 95 % interval of each percentile, when the metric is one.
    pub base_interval: Option<(f64, f64)>,
    pub new_interval: Option<(f64, f64)>,
    pub better: Better,
    pub regression: bool,
    /// Too few samples in either run for this percentile to be compared (see the module
    /// doc): never a regression, never better.
    #[serde(default)]
    pub insufficient: bool,
    pub why: String,
}

/// Rules whose outcome changed between the runs, by id.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleChanges {
    /// Failed in the new run, and passed or did not run (or was not checked) in the base.
    pub newly_failing: Vec<String>,
    /// Failed in the base run and passed in the new one.
    pub newly_passing: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub base: String,
    pub new: String,
    pub tolerance: f64,
    pub min_delta_ms: f64,
    pub rows: Vec<Row>,
    pub rules: RuleChanges,
    /// What differs between the two runs besides their figures (scenario, target, mock
    /// profile, time scale, API version): each makes the comparison less like for like.
    pub notes: Vec<String>,
    /// Why a side cannot be compared at all (incomplete, not passed for reasons compare
    /// cannot weigh, no data): the comparison then says nothing passed.
    pub unfit: Vec<String>,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.rows.iter().filter(|r| r.regression).count()
    }
}

/// The fewest samples for which the distribution-free 95 % interval of the `q` quantile
/// (0..1) is bounded on both sides: the smallest n with `q^n ≤ 0.025` and
/// `(1−q)^n ≤ 0.025`. With fewer, even the extreme samples are not beyond the quantile
/// with 97.5 % confidence, so no reading of it can be told from noise.
pub fn min_samples(q: f64) -> u64 {
    let tail = 0.025f64.ln();
    let need = |p: f64| {
        if p <= 0.0 {
            1.0
        } else if p >= 1.0 {
            f64::INFINITY
        } else {
            (tail / p.ln()).ceil()
        }
    };
    need(q).max(need(1.0 - q)).min(u64::MAX as f64) as u64
}

/// The 95 % confidence interval of the `q` quantile (0..1) of a histogram, from the
/// normal approximation to the binomial order statistic.
fn interval(h: &Latency, q: f64) -> (f64, f64) {
    let n = h.count().max(1) as f64;
    let half = 1.96 * (q * (1.0 - q) / n).sqrt();
    let at = |q: f64| h.percentile((q.clamp(0.0, 1.0)) * 100.0).as_secs_f64() * 1e3;
    (at(q - half), at(q + half))
}

fn latency_rows(
    rows: &mut Vec<Row>,
    name: &str,
    base: Option<&LatencySummary>,
    new: Option<&LatencySummary>,
    tol: Tolerance,
) {
    let hist = |s: Option<&LatencySummary>| s.and_then(Report::histogram).filter(|h| h.count() > 0);
    let (bh, nh) = (hist(base), hist(new));
    for (label, q) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
        let b = bh
            .as_ref()
            .map(|h| h.percentile(q * 100.0).as_secs_f64() * 1e3);
        let n = nh
            .as_ref()
            .map(|h| h.percentile(q * 100.0).as_secs_f64() * 1e3);
        let bi = bh.as_ref().map(|h| interval(h, q));
        let ni = nh.as_ref().map(|h| interval(h, q));
        let change = match (b, n) {
            (Some(b), Some(n)) if b > 0.0 => Some((n - b) / b),
            _ => None,
        };
        let need = min_samples(q);
        let counts = (
            bh.as_ref().map_or(0, |h| h.count()),
            nh.as_ref().map_or(0, |h| h.count()),
        );
        let insufficient = b.is_some() && n.is_some() && (counts.0 < need || counts.1 < need);
        let (regression, why) = match (b, n, bi, ni, change) {
            (.., Some(0.0)) => (false, "unchanged".to_string()),
            _ if insufficient => (
                false,
                format!(
                    "insufficient data: {} and {} samples; a {label} needs ≥ {need} in each run",
                    counts.0, counts.1
                ),
            ),
            (Some(b), Some(n), Some(bi), Some(ni), Some(c)) => {
                // An improvement is judged like a regression: beyond the tolerance and
                // the floor, and outside the noise; anything less is no change.
                if c == 0.0 {
                    (false, "unchanged".to_string())
                } else if c < 0.0 {
                    if -c <= tol.relative {
                        (false, "within tolerance".to_string())
                    } else if b - n < tol.min_delta_ms {
                        (false, format!("below the {} ms floor", tol.min_delta_ms))
                    } else if bi.0 <= ni.1 {
                        (false, "within noise (intervals overlap)".to_string())
                    } else {
                        (
                            false,
                            format!("better: {:.0}% and outside the noise", c * 100.0),
                        )
                    }
                } else if c <= tol.relative {
                    (false, "within tolerance".to_string())
                } else if n - b < tol.min_delta_ms {
                    (false, format!("below the {} ms floor", tol.min_delta_ms))
                } else if ni.0 <= bi.1 {
                    (false, "within noise (intervals overlap)".to_string())
                } else {
                    (true, format!("+{:.0}% and outside the noise", c * 100.0))
                }
            }
            (Some(_), None, ..) => (false, "no data in the new run".into()),
            _ => (false, String::new()),
        };
        rows.push(Row {
            metric: format!("{name}.{label}"),
            unit: "ms",
            base: b,
            new: n,
            change,
            base_interval: bi,
            new_interval: ni,
            better: Better::Lower,
            regression,
            insufficient,
            why,
        });
    }
}

fn value_row(
    metric: &str,
    unit: &'static str,
    b: Option<f64>,
    n: Option<f64>,
    better: Better,
    tol: Tolerance,
) -> Row {
    let change = match (b, n) {
        (Some(b), Some(n)) if b != 0.0 => Some((n - b) / b.abs()),
        _ => None,
    };
    let (regression, why) = match (b, n, better) {
        // Losses, duplicates, errors: any growth is a regression.
        (Some(b), Some(n), Better::Lower) if unit == "count" => {
            if n > b {
                (true, format!("{b} → {n}"))
            } else if n < b {
                (false, "better".into())
            } else {
                (false, "unchanged".into())
            }
        }
        (Some(b), Some(n), _) if n == b => (false, "unchanged".into()),
        (Some(b), Some(n), Better::Lower) if n < b * (1.0 - tol.relative) => {
            (false, "better".into())
        }
        (Some(b), Some(n), Better::Lower) => {
            if n > b * (1.0 + tol.relative) && n - b > 1e-9 {
                (
                    true,
                    format!("+{:.0}%", change.unwrap_or(f64::INFINITY) * 100.0),
                )
            } else {
                (false, "within tolerance".into())
            }
        }
        (Some(b), Some(n), Better::Higher) if n > b * (1.0 + tol.relative) => {
            (false, "better".into())
        }
        (Some(b), Some(n), Better::Higher) => {
            if n < b * (1.0 - tol.relative) {
                (true, format!("{:.0}%", change.unwrap_or(-1.0) * 100.0))
            } else {
                (false, "within tolerance".into())
            }
        }
        (None, None, _) => (false, "no data in either run".into()),
        (None, Some(_), _) => (false, "no data in the base run".into()),
        (Some(_), None, _) => (false, "no data in the new run".into()),
    };
    Row {
        metric: metric.into(),
        unit,
        base: b,
        new: n,
        change,
        base_interval: None,
        new_interval: None,
        better,
        regression,
        insufficient: false,
        why,
    }
}

pub fn compare(
    base: &Report,
    new: &Report,
    base_name: &str,
    new_name: &str,
    tol: Tolerance,
) -> Comparison {
    let mut rows = Vec::new();
    let ops = |r: &Report, k: &str, f: fn(&crate::metrics::OperationSummary) -> &LatencySummary| {
        r.operations.get(k).map(f).cloned()
    };
    for (name, b, n) in [
        (
            "submit",
            ops(base, "submit", |o| &o.response),
            ops(new, "submit", |o| &o.response),
        ),
        (
            "submit.service",
            ops(base, "submit", |o| &o.service),
            ops(new, "submit", |o| &o.service),
        ),
        (
            "list",
            ops(base, "list", |o| &o.response),
            ops(new, "list", |o| &o.response),
        ),
        (
            "get",
            ops(base, "get", |o| &o.response),
            ops(new, "get", |o| &o.response),
        ),
        ("e2e", Some(base.e2e.clone()), Some(new.e2e.clone())),
        (
            "batch",
            Some(base.batches.completion.clone()),
            Some(new.batches.completion.clone()),
        ),
    ] {
        if b.as_ref().is_some_and(|s| s.count > 0) || n.as_ref().is_some_and(|s| s.count > 0) {
            latency_rows(&mut rows, name, b.as_ref(), n.as_ref(), tol);
        }
    }
    for (metric, unit, better) in [
        ("throughput.batches", "per s", Better::Higher),
        ("throughput.runs", "per s", Better::Higher),
        ("runs.missing", "count", Better::Lower),
        ("runs.duplicates", "count", Better::Lower),
        ("runs.unknown", "count", Better::Lower),
        ("runs.out_of_order", "count", Better::Lower),
        ("webhooks.rejected", "count", Better::Lower),
        ("batches.possible_duplicates", "count", Better::Lower),
        ("rules.failed", "count", Better::Lower),
        ("http.errors.rate", "ratio", Better::Lower),
    ] {
        rows.push(value_row(
            metric,
            unit,
            measured(base, metric),
            measured(new, metric),
            better,
            tol,
        ));
    }
    let rules = rule_changes(base, new);
    if let Some(row) = rows.iter_mut().find(|r| r.metric == "rules.failed") {
        name_rules(row, &rules);
    }
    planning_rows(&mut rows, base, new, tol);
    Comparison {
        base: base_name.into(),
        new: new_name.into(),
        tolerance: tol.relative,
        min_delta_ms: tol.min_delta_ms,
        rows,
        rules,
        notes: differences(base, new),
        unfit: [(base, "base"), (new, "new")]
            .iter()
            .filter_map(|(r, side)| unfit(r).map(|why| format!("the {side} run: {why}")))
            .collect(),
    }
}

/// A metric as the run measured it: None where the run has nothing it could be read from
/// (no rule judged, no run submitted, no request answered) — "0 failed" of no rules is
/// no data, not an unchanged zero.
fn measured(r: &Report, metric: &str) -> Option<f64> {
    let empty = match metric {
        "rules.failed" => r.rules.iter().all(|x| {
            matches!(
                x.status,
                crate::checks::RuleStatus::NotRun | crate::checks::RuleStatus::NotApplicable
            )
        }),
        m if m.starts_with("runs.") => r.runs.submitted == 0,
        "webhooks.rejected" => r.webhooks.received == 0,
        m if m.starts_with("throughput.") || m.starts_with("batches.") => r.batches.accepted == 0,
        "http.errors.rate" => r.http.requests == 0,
        _ => false,
    };
    if empty { None } else { r.metric(metric) }
}

/// Why `r` cannot stand as one side of a comparison: it did not finish, it did not pass
/// for a reason other than its thresholds and rules (which compare weighs itself), or it
/// measured nothing. None: it can.
pub fn unfit(r: &Report) -> Option<String> {
    if !r.complete {
        return Some(format!(
            "it is incomplete ({})",
            r.interrupted
                .as_deref()
                .or(r.unreachable.as_deref())
                .unwrap_or("the run did not finish")
        ));
    }
    let other: Vec<&str> = r
        .verdict
        .reasons
        .iter()
        .filter(|x| x.code != "threshold" && x.code != "rule")
        .map(|x| x.code.as_str())
        .collect();
    if !other.is_empty() {
        return Some(format!(
            "it did not pass for reasons a comparison cannot weigh: {}",
            other.join(", ")
        ));
    }
    if r.batches.accepted == 0
        && r.rules
            .iter()
            .all(|x| x.status != crate::checks::RuleStatus::Passed)
    {
        return Some("it has no data: no batch was accepted and no rule passed".into());
    }
    None
}

fn rule_changes(base: &Report, new: &Report) -> RuleChanges {
    use crate::checks::RuleStatus;
    let status = |r: &Report, id: &str| r.rules.iter().find(|x| x.id == id).map(|x| x.status);
    let mut changes = RuleChanges::default();
    for rule in &new.rules {
        let before = status(base, &rule.id);
        match rule.status {
            RuleStatus::Failed if before != Some(RuleStatus::Failed) => {
                changes.newly_failing.push(rule.id.clone())
            }
            RuleStatus::Passed if before == Some(RuleStatus::Failed) => {
                changes.newly_passing.push(rule.id.clone())
            }
            _ => {}
        }
    }
    changes
}

/// The failed-rules row names the rules behind its count; one rule that newly fails is a
/// regression even when another newly passes and the count stays put.
fn name_rules(row: &mut Row, rules: &RuleChanges) {
    let list = |ids: &[String]| {
        ids.iter()
            .map(|id| format!("`{id}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !rules.newly_failing.is_empty() {
        parts.push(format!("newly failing: {}", list(&rules.newly_failing)));
    }
    if !rules.newly_passing.is_empty() {
        parts.push(format!("newly passing: {}", list(&rules.newly_passing)));
    }
    if parts.is_empty() {
        return;
    }
    row.regression = !rules.newly_failing.is_empty();
    let count = match (row.base, row.new) {
        (Some(b), Some(n)) if b != n => format!("{b} → {n}; "),
        _ => String::new(),
    };
    row.why = format!("{count}{}", parts.join("; "));
}

/// The forecast's figures and the knee, when either run has them. A forecast figure
/// regresses only when its change passes the tolerance *and* the two 95 % intervals do
/// not overlap: two samples of one job differ by their own noise.
fn planning_rows(rows: &mut Vec<Row>, base: &Report, new: &Report, tol: Tolerance) {
    use super::forecast::{Forecast, Interval};
    let (bf, nf) = (base.forecast.as_ref(), new.forecast.as_ref());
    if bf.is_some() || nf.is_some() {
        type Pick = fn(&Forecast) -> Option<Interval>;
        let figures: [(&str, &'static str, Pick); 6] = [
            ("forecast.time", "s", |f| Some(f.time_s)),
            ("forecast.credits", "credits", |f| f.credits),
            ("forecast.failed", "ratio", |f| Some(f.shares[0].share)),
            ("forecast.needs_review", "ratio", |f| {
                Some(f.shares[1].share)
            }),
            ("forecast.rejected", "ratio", |f| Some(f.shares[2].share)),
            ("forecast.e2e.p95", "s", |f| Some(f.e2e_s[1].1)),
        ];
        for (metric, unit, pick) in figures {
            let (b, n) = (bf.and_then(pick), nf.and_then(pick));
            let mut row = value_row(
                metric,
                unit,
                b.map(|i| i.estimate),
                n.map(|i| i.estimate),
                Better::Lower,
                tol,
            );
            row.base_interval = b.map(|i| (i.low, i.high));
            row.new_interval = n.map(|i| (i.low, i.high));
            if let (true, Some(b), Some(n)) = (row.regression, b, n)
                && n.low <= b.high
            {
                row.regression = false;
                row.why = "within the forecasts' 95 % intervals".into();
            }
            rows.push(row);
        }
    }
    let (bk, nk) = (base.knee.as_ref(), new.knee.as_ref());
    if bk.is_some() || nk.is_some() {
        // Per real second, so runs at different time scales compare.
        let real =
            |k: &super::knee::Knee, v: Option<f64>| v.map(|v| v / k.time_scale.unwrap_or(1.0));
        type Pick = fn(&super::knee::Knee) -> Option<f64>;
        let figures: [(&str, Pick); 2] = [
            ("knee.held", |k| k.held_per_s),
            ("knee.sustained", |k| k.capacity_per_s),
        ];
        for (metric, pick) in figures {
            rows.push(value_row(
                metric,
                "per s",
                bk.and_then(|k| real(k, pick(k))),
                nk.and_then(|k| real(k, pick(k))),
                Better::Higher,
                tol,
            ));
        }
    }
}

/// What the two runs did differently, in words.
fn differences(base: &Report, new: &Report) -> Vec<String> {
    let mut notes = Vec::new();
    let mut differ = |what: &str, b: String, n: String| {
        if b != n {
            notes.push(format!("the runs used different {what}: `{b}` → `{n}`"));
        }
    };
    differ(
        "scenarios",
        base.scenario.name.clone(),
        new.scenario.name.clone(),
    );
    differ("targets", base.target.kind.clone(), new.target.kind.clone());
    differ(
        "mock profiles",
        base.target
            .mock_profile
            .clone()
            .unwrap_or_else(|| "-".into()),
        new.target
            .mock_profile
            .clone()
            .unwrap_or_else(|| "-".into()),
    );
    differ(
        "time scales",
        base.target
            .mock_time_scale
            .map_or("-".into(), |t| t.to_string()),
        new.target
            .mock_time_scale
            .map_or("-".into(), |t| t.to_string()),
    );
    differ(
        "API versions",
        base.target.api_version.clone(),
        new.target.api_version.clone(),
    );
    notes
}

fn fmt(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "–".into(),
        Some(v) if unit == "ms" => crate::config::format_ms(v),
        Some(v) if unit == "count" => format!("{v:.0}"),
        Some(v) if unit == "ratio" => format!("{:.2}%", v * 100.0),
        Some(v) => format!("{v:.2}"),
    }
}

fn change(c: Option<f64>) -> String {
    c.filter(|c| c.is_finite())
        .map_or("–".into(), |c| format!("{:+.1}%", c * 100.0))
}

pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let n = c.regressions();
    let _ = writeln!(
        s,
        "# batchproof compare — {}\n\nBase `{}` → new `{}`; tolerance {:.0}% (latency: and ≥ {} ms, outside the 95% intervals).\n",
        if !c.unfit.is_empty() {
            format!("⚠️ not comparable: {}", c.unfit.join("; "))
        } else if n == 0 {
            "✅ no regression".to_string()
        } else {
            format!("❌ {n} regression(s)")
        },
        c.base,
        c.new,
        c.tolerance * 100.0,
        c.min_delta_ms
    );
    for note in &c.notes {
        let _ = writeln!(s, "> Not like for like: {note}.\n");
    }
    let _ = writeln!(
        s,
        "| metric | base | new | change | verdict |\n|---|---|---|---|---|"
    );
    for r in &c.rows {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} |",
            r.metric,
            fmt(r.base, r.unit),
            fmt(r.new, r.unit),
            change(r.change),
            verdict_cell(c, r)
        );
    }
    s
}

/// A row's verdict: none at all when a side is not comparable (a figure of a run that did
/// not finish, or measured nothing, is no evidence either way).
fn verdict_cell(c: &Comparison, r: &Row) -> String {
    if !c.unfit.is_empty() {
        "not judged: not comparable".into()
    } else if r.regression {
        format!("**REGRESSION** ({})", r.why)
    } else {
        r.why.clone()
    }
}

pub fn html(c: &Comparison) -> String {
    use super::charts::esc;
    let n = c.regressions();
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>batchproof compare</title><style>body{{font:14px system-ui,sans-serif;max-width:960px;margin:24px auto;padding:0 16px}}table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #d1d9e0;padding:4px 6px;text-align:left}}td.num{{text-align:right}}tr.regression td{{background:#ffebe9}}.badge{{padding:2px 10px;border-radius:12px;color:#fff;background:{}}}</style></head><body><h1>batchproof compare <span class=\"badge\" id=\"verdict\">{}</span></h1><p>Base <code>{}</code> → new <code>{}</code>; tolerance {:.0}% (latency: and ≥ {} ms, outside the 95% intervals).</p><table><tr><th>metric</th><th>base</th><th>new</th><th>change</th><th>verdict</th></tr>",
        if !c.unfit.is_empty() {
            "#9a6700"
        } else if n == 0 {
            "#1a7f37"
        } else {
            "#d1242f"
        },
        if !c.unfit.is_empty() {
            format!("not comparable: {}", esc(&c.unfit.join("; ")))
        } else if n == 0 {
            "no regression".to_string()
        } else {
            format!("{n} regression(s)")
        },
        esc(&c.base),
        esc(&c.new),
        c.tolerance * 100.0,
        c.min_delta_ms
    );
    let notes: String = c
        .notes
        .iter()
        .map(|n| {
            format!(
                "<p class=\"note\"><b>Not like for like:</b> {}.</p>",
                esc(n)
            )
        })
        .collect();
    s = s.replacen("<table>", &format!("{notes}<table>"), 1);
    for r in &c.rows {
        let _ = write!(
            s,
            "<tr class=\"{}\"><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if r.regression && c.unfit.is_empty() {
                "regression"
            } else {
                ""
            },
            esc(&r.metric),
            fmt(r.base, r.unit),
            fmt(r.new, r.unit),
            change(r.change),
            esc(&verdict_cell(c, r).replace("**", ""))
        );
    }
    s.push_str("</table></body></html>");
    s
}
