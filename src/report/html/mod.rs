//! The HTML report: one self-contained file (inline CSS and SVG, no script or font from
//! anywhere) that a new user can read without the docs — verdict first, then the contract
//! rules with their evidence, latency spectra, timelines, batches, accounting, the
//! projection, and the scenario and environment it came from. Prints on A4.

use std::fmt::Write;

use super::charts::esc;
use super::{Format, Report};
use crate::checks::RuleStatus;
use figures::{batches, completion_curves, latency, timelines};

mod figures;
mod planning;

pub struct Html;

/// An RFC 3339 time as `2026-11-30 00:55:35 UTC`.
fn when(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|_| s.to_string())
}

use crate::config::format_ms as ms;

/// The report may fetch nothing: the browser enforces it, and reports any attempt as a
/// console error (which the browser test looks for).
const CSP: &str = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">";

/// Counts blocked fetches on the page itself (`data-blocked`), registered before any
/// content so nothing slips past it.
const WATCH: &str = "<script>document.addEventListener('securitypolicyviolation',()=>{const h=document.documentElement;h.dataset.blocked=String(+(h.dataset.blocked||0)+1)});</script>";

const CSS: &str = r#"
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--ok:#1a7f37;--bad:#d1242f;--warn:#9a6700;--bg:#fff;--soft:#f6f8fa}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
.muted{color:var(--muted)}.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600;font-size:13px;vertical-align:middle}
.badge.passed{background:var(--ok)}.badge.failed{background:var(--bad)}.badge.incomplete{background:var(--warn)}.badge.not_run{background:var(--muted)}
.lead{font-size:15px;margin:10px 0}.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:8px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 10px}.card b{display:block;font-size:18px}
table{border-collapse:collapse;width:100%;margin:6px 0 10px}th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td:first-child{border-left:3px solid var(--bad)}details{margin:2px 0}summary{cursor:pointer}
.evidence{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;background:var(--soft);padding:6px 8px;border-radius:4px;margin:4px 0;white-space:pre-wrap;word-break:break-word}
figure.chart{margin:8px 0 16px}figure.chart svg{width:100%;height:auto;max-width:760px}
svg .grid{stroke:#eaeef2;stroke-width:1}svg .axis{stroke:#8c959f;stroke-width:1}svg text{font:11px system-ui,sans-serif;fill:#59636e}
svg .ct{font-size:13px;font-weight:600;fill:#1f2328}svg .legend{font-size:11px;fill:#1f2328}
pre{background:var(--soft);padding:10px;border-radius:6px;overflow:auto;font-size:12px}
.note{border-left:3px solid var(--warn);padding:4px 10px;background:#fff8c5;margin:8px 0}
@media print{main{max-width:none;padding:0}h2{break-after:avoid}figure,table,details{break-inside:avoid}a{color:inherit;text-decoration:none}}
"#;

impl Format for Html {
    fn extension(&self) -> &'static str {
        "html"
    }

    fn render(&self, r: &Report) -> anyhow::Result<String> {
        let mut s = String::new();
        header(&mut s, r)?;
        lead(&mut s, r)?;
        thresholds(&mut s, r)?;
        rules(&mut s, r)?;
        latency(&mut s, r)?;
        timelines(&mut s, r)?;
        batches(&mut s, r)?;
        completion_curves(&mut s, r)?;
        accounting(&mut s, r)?;
        projection(&mut s, r)?;
        planning::forecast(&mut s, r)?;
        planning::knee(&mut s, r)?;
        scenario_and_environment(&mut s, r)?;
        footer(&mut s, r)?;
        Ok(s)
    }
}

/// The page head, the verdict badge and the target.
fn header(s: &mut String, r: &Report) -> std::fmt::Result {
    let outcome = r.outcome();
    let class = match outcome {
        super::Outcome::Incomplete => "incomplete",
        super::Outcome::Passed => "passed",
        super::Outcome::HarnessFault | super::Outcome::Failed => "failed",
    };
    let verdict = (class, outcome.word());
    write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{CSP}<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>batchproof · {} · {}</title><style>{CSS}</style></head><body>{WATCH}<main>",
        esc(&r.scenario.name),
        verdict.1
    )?;
    write!(
        s,
        "<header><h1>batchproof · {} <span class=\"badge {}\" id=\"verdict\">{}</span></h1><div>{}</div><div class=\"muted\">Target <code>{}</code> ({}), API version {}; from {} to {} ({:.1} s).</div>",
        esc(&r.scenario.name),
        verdict.0,
        verdict.1,
        esc(r.scenario.description.as_deref().unwrap_or("")),
        esc(&r.target.url),
        esc(&r.target.kind),
        esc(&r.target.api_version),
        esc(&when(&r.started_at)),
        esc(&when(&r.finished_at)),
        r.duration_s
    )?;
    if let Some(why) = &r.interrupted {
        write!(
            s,
            "<p class=\"note\">This run was interrupted ({}). Every figure covers only what happened before; rules were not judged.</p>",
            esc(why)
        )?;
    }
    if let Some(why) = &r.resumed {
        write!(
            s,
            "<p class=\"note\">Resumed after a kill: {}</p>",
            esc(why)
        )?;
    }
    if !r.verdict.reasons.is_empty() {
        s.push_str("<div class=\"note\" id=\"reasons\"><b>Why it did not pass</b><ul>");
        for reason in &r.verdict.reasons {
            write!(
                s,
                "<li data-code=\"{}\"><code>{}</code> {}</li>",
                esc(&reason.code),
                esc(&reason.code),
                esc(&reason.message)
            )?;
        }
        s.push_str("</ul></div>");
    }
    Ok(())
}

/// How the run ended, in one sentence: the verdict's own reasons when they are not
/// thresholds or rules.
fn outcome_sentence(r: &Report) -> String {
    let failed_rules: Vec<&str> = r
        .rules
        .iter()
        .filter(|x| x.fails_run())
        .map(|x| x.id.as_str())
        .collect();
    let failed_thresholds = r.verdict.thresholds.iter().filter(|t| !t.passed).count();
    if !r.complete {
        "The run did not finish.".to_string()
    } else if r.verdict.passed {
        "Every threshold held and no contract rule of severity error failed.".to_string()
    } else if failed_thresholds == 0 && failed_rules.is_empty() {
        let why: Vec<&str> = r
            .verdict
            .reasons
            .iter()
            .map(|x| x.message.as_str())
            .collect();
        format!("It did not pass: {}.", why.join("; "))
    } else {
        format!(
            "{} threshold(s) failed and {} contract rule(s) failed{}.",
            failed_thresholds,
            failed_rules.len(),
            if failed_rules.is_empty() {
                String::new()
            } else {
                format!(": {}", failed_rules.join(", "))
            }
        )
    }
}

/// The one paragraph a newcomer needs, the headline cards, and warnings about the run itself.
fn lead(s: &mut String, r: &Report) -> std::fmt::Result {
    // The one paragraph a newcomer needs.
    write!(
        s,
        "<p class=\"lead\">{} batches were accepted carrying {} inputs; results came back for <b>{}</b> of them, <b>{}</b> are missing{}. {}</p>",
        r.batches.accepted,
        r.runs.submitted,
        r.runs.seen,
        r.runs.missing,
        if r.runs.rejected > 0 {
            format!(
                " and {} inputs were in batches the target did not accept",
                r.runs.rejected
            )
        } else {
            String::new()
        },
        outcome_sentence(r)
    )?;
    if r.is_sample() {
        s.push_str("<p class=\"note\" id=\"sample-note\">This run is the <b>sample</b> of a forecast: every figure outside the Forecast section (these cards, latency, throughput, timelines) describes the sample, sent as the forecast chose; the <b>Forecast</b> section alone answers for the job.</p>");
    }
    let submit = r.operations.get("submit");
    s.push_str("<div class=\"cards\">");
    for (label, value) in [
        (
            "runs seen / submitted",
            format!("{} / {}", r.runs.seen, r.runs.submitted),
        ),
        ("missing", r.runs.missing.to_string()),
        (
            if r.is_sample() {
                "the sample's end to end p95"
            } else {
                "end to end p95"
            },
            match r.time_scale() {
                Some(ts) => format!("{} (≈ {} real)", ms(r.e2e.p95_ms), ms(r.e2e.p95_ms * ts)),
                None => ms(r.e2e.p95_ms),
            },
        ),
        (
            "submit p99 (response)",
            submit.map_or("–".into(), |o| ms(o.response.p99_ms)),
        ),
        (
            "steady completion",
            format!("{:.1} runs/s", r.throughput.steady_runs_per_s),
        ),
        (
            "accepted",
            format!("{:.2} batches/s", r.throughput.batches_per_s),
        ),
    ]
    .into_iter()
    .chain((r.runs.credited > 0).then(|| {
        (
            match &r.runs.credits_source {
                Some(super::CreditsSource::Simulated { .. }) => "credits (simulated by the mock)",
                Some(super::CreditsSource::Calibrated { .. }) => {
                    "credits (the account's, calibrated)"
                }
                _ => "credits",
            },
            format!(
                "{:.1} ({:.2}/run)",
                r.runs.credits,
                r.runs.credits / r.runs.credited as f64
            ),
        )
    }))
    .chain(
        (r.runs.credited == 0 && r.runs.seen > 0)
            .then(|| ("credits", "not reported by the target".to_string())),
    ) {
        write!(
            s,
            "<div class=\"card\"><span class=\"muted\">{label}</span><b>{}</b></div>",
            esc(&value)
        )?;
    }
    s.push_str("</div></header>");
    if r.generator.saturated {
        write!(
            s,
            "<p class=\"note\">The load generator could not keep its schedule (lag p99 {} &gt; {}): latencies describe the harness as much as the target.</p>",
            ms(r.generator.lag_p99_ms),
            ms(r.generator.lag_bound_ms)
        )?;
    }

    if r.harness_fault() {
        s.push_str("<section id=\"invariants\"><h2>Harness fault</h2><p class=\"note\">The accounting broke one of its own invariants, so its figures cannot be trusted.</p><table><tr><th>invariant</th><th>cases</th><th>violations</th><th>examples</th></tr>");
        for i in r.invariants.iter().filter(|i| !i.held) {
            write!(
                s,
                "<tr class=\"failed\"><td><code>{}</code> {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&i.id),
                esc(&i.title),
                i.checked,
                i.violations,
                esc(&i.examples.join("; "))
            )?;
        }
        s.push_str("</table></section>");
    }
    Ok(())
}

/// The verdict and each threshold.
fn thresholds(s: &mut String, r: &Report) -> std::fmt::Result {
    // Thresholds.
    s.push_str("<section id=\"thresholds\"><h2>Verdict and thresholds</h2>");
    if r.verdict.thresholds.is_empty() {
        s.push_str("<p class=\"muted\">The scenario sets no thresholds.</p>");
    } else {
        s.push_str("<table><tr><th>threshold</th><th>measured</th><th>result</th></tr>");
        for t in &r.verdict.thresholds {
            write!(
                s,
                "<tr class=\"{}\"><td><code>{}</code></td><td class=\"num\">{}</td><td><span class=\"badge {}\">{}</span></td></tr>",
                if t.passed { "passed" } else { "failed" },
                esc(&t.expr),
                esc(&crate::scenario::threshold::format_value(
                    &t.metric, t.value
                )),
                if t.passed { "passed" } else { "failed" },
                if t.passed { "pass" } else { "FAIL" }
            )?;
        }
        s.push_str("</table>");
    }
    s.push_str("</section>");
    Ok(())
}

/// Contract rules, failed first, with their evidence.
fn rules(s: &mut String, r: &Report) -> std::fmt::Result {
    // Rules.
    if !r.rules.is_empty() {
        let n = |st: RuleStatus| r.rules.iter().filter(|x| x.status == st).count();
        write!(
            s,
            "<section id=\"rules\"><h2>Contract rules: {} failed, {} passed, {} not run</h2><table id=\"rule-table\"><tr><th>rule</th><th>severity</th><th>source</th><th>result</th><th class=\"num\">cases</th><th>what it checks</th></tr>",
            n(RuleStatus::Failed),
            n(RuleStatus::Passed),
            n(RuleStatus::NotRun)
        )?;
        for rule in &r.rules {
            let status = rule.status.as_str();
            write!(
                s,
                "<tr class=\"rule {status}\" data-rule=\"{}\"><td><a href=\"{}\"><code>{}</code></a></td><td>{}</td><td title=\"{}\">{}</td><td><span class=\"badge {status}\">{}</span></td><td class=\"num\">{}</td><td>",
                esc(&rule.id),
                esc(&rule.doc),
                esc(&rule.id),
                rule.severity.as_str(),
                esc(&rule.basis),
                rule.provenance.map_or("", |p| p.as_str()),
                match rule.status {
                    RuleStatus::Failed => format!("failed {} of {}", rule.failed, rule.checked),
                    RuleStatus::Passed => "passed".into(),
                    RuleStatus::NotRun => "not run".into(),
                    RuleStatus::NotApplicable => "not applicable".into(),
                },
                rule.checked
            )?;
            if rule.status == RuleStatus::Failed {
                write!(s, "<details open><summary>{}</summary>", esc(&rule.title))?;
                for (i, c) in rule.examples.iter().enumerate() {
                    if i == 1 {
                        write!(
                            s,
                            "<details><summary>{} more example(s)</summary>",
                            rule.examples.len() - 1
                        )?;
                    }
                    let mut lines = Vec::new();
                    if let Some(q) = &c.request {
                        lines.push(format!("request  {q}"));
                    }
                    if let Some(b) = &c.batch_id {
                        lines.push(format!("batch    {b}"));
                    }
                    if let Some(x) = &c.run_id {
                        lines.push(format!("run      {x}"));
                    }
                    lines.push(format!("expected {}", c.expected));
                    lines.push(format!("seen     {}", c.seen));
                    write!(
                        s,
                        "<div class=\"evidence\">{}</div>",
                        esc(&lines.join("\n"))
                    )?;
                }
                if rule.examples.len() > 1 {
                    s.push_str("</details>");
                }
                s.push_str("</details>");
            } else {
                s.push_str(&esc(&rule.title));
                if let Some(note) = &rule.note {
                    write!(s, "<div class=\"muted\">{}</div>", esc(note))?;
                }
            }
            s.push_str("</td></tr>");
        }
        s.push_str("</table></section>");
    }
    Ok(())
}

/// The accounting of every input.
fn accounting(s: &mut String, r: &Report) -> std::fmt::Result {
    // Accounting.
    let a = &r.runs.anomalies;
    s.push_str("<section id=\"accounting\"><h2>Every input accounted for</h2><table><tr><th>inputs</th><th class=\"num\">count</th></tr>");
    for (k, v) in [
        ("submitted in accepted batches", r.runs.submitted),
        ("result seen", r.runs.seen),
        ("missing at the deadline", r.runs.missing),
        ("in batches not accepted", r.runs.rejected),
        ("duplicate results", a.duplicates),
        ("results matching no input", a.unknown),
        ("foreign: other runs' results, not judged", a.foreign),
        ("statuses going backwards", a.out_of_order),
        (
            "results from unconfirmed (5xx/timeout) batches",
            a.from_unconfirmed_batches,
        ),
    ] {
        write!(s, "<tr><td>{k}</td><td class=\"num\">{v}</td></tr>")?;
    }
    s.push_str("</table><table><tr><th>terminal status</th><th class=\"num\">runs</th><th>seen through</th><th class=\"num\">runs</th></tr>");
    let statuses: Vec<_> = r.runs.by_status.iter().collect();
    let channels: Vec<_> = r.runs.by_channel.iter().collect();
    for i in 0..statuses.len().max(channels.len()) {
        let (sk, sv) = statuses
            .get(i)
            .map_or((String::new(), String::new()), |(k, v)| {
                ((*k).clone(), v.to_string())
            });
        let (ck, cv) = channels
            .get(i)
            .map_or((String::new(), String::new()), |(k, v)| {
                ((*k).replace('_', " "), v.to_string())
            });
        write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{sv}</td><td>{}</td><td class=\"num\">{cv}</td></tr>",
            esc(&sk),
            esc(&ck)
        )?;
    }
    s.push_str("</table>");
    if !r.runs.missing_examples.is_empty() {
        s.push_str("<details><summary>Missing inputs (first examples)</summary><table><tr><th>batch</th><th>batch id</th><th>input</th><th>run</th><th>last status</th></tr>");
        for m in &r.runs.missing_examples {
            write!(
                s,
                "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
                m.batch_index,
                esc(m.batch_id.as_deref().unwrap_or("–")),
                m.input_index,
                esc(m.run_id.as_deref().unwrap_or("–")),
                esc(m.last_status.as_deref().unwrap_or("never seen"))
            )?;
        }
        s.push_str("</table></details>");
    }
    let w = &r.webhooks;
    let rejected: u64 = w.rejected.values().sum();
    write!(
        s,
        "<p>Webhooks: {} received, {} verified, {} rejected{}, {} redeliveries of an eventId already seen, {} for the conformance probes' own runs.</p></section>",
        w.received,
        w.verified,
        rejected,
        if w.rejected.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                w.rejected
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        w.redeliveries,
        w.probe_events
    )?;
    Ok(())
}

/// The capacity projection, with real-time equivalents under a time scale.
fn projection(s: &mut String, r: &Report) -> std::fmt::Result {
    let ts = r.time_scale();
    if let Some(p) = r.job_projection() {
        write!(
            s,
            "<section id=\"projection\"><h2>Capacity projection: {} files</h2><p><b>{}</b> batches; submitted in about <b>{}</b>; all finished in about <b>{}</b>.{}</p><p class=\"muted\">This run's own batches: all results in {} after the first submission.</p><ul>",
            p.files,
            p.batches_needed,
            esc(&crate::report::span(p.submit_s, ts)),
            esc(&crate::report::span(p.complete_s, ts)),
            p.bound.map_or(String::new(), |b| format!(
                " Pace set by <b>{}</b>.",
                esc(b.as_str())
            )),
            esc(&crate::report::span(r.throughput.finish_s, ts)),
        )?;
        for a in &p.assumptions {
            write!(s, "<li>{}</li>", esc(a))?;
        }
        s.push_str("</ul></section>");
    }
    Ok(())
}

/// The scenario and environment the run used.
fn scenario_and_environment(s: &mut String, r: &Report) -> std::fmt::Result {
    // Scenario and environment.
    write!(
        s,
        "<section id=\"environment\"><h2>Scenario and environment</h2><table><tr><th>target</th><td><code>{}</code> ({})</td></tr><tr><th>API version</th><td>{}</td></tr><tr><th>workflow</th><td><code>{}</code></td></tr><tr><th>results via</th><td>{}</td></tr>{}<tr><th>harness</th><td>{} {}</td></tr><tr><th>scenario</th><td><code>{}</code>, model {}, seed {}</td></tr></table><details><summary>The scenario as it was run</summary><pre>{}</pre></details></section>",
        esc(&r.target.url),
        esc(&r.target.kind),
        esc(&r.target.api_version),
        esc(&r.target.workflow_id),
        esc(&r.target.results_via.join(" and ")),
        match (&r.target.mock_profile, r.target.mock_time_scale) {
            (Some(p), Some(ts)) => format!(
                "<tr><th>mock profile</th><td><code>{}</code>, time scale {ts} (mock times are real times ÷ {ts})</td></tr>",
                esc(p)
            ),
            _ => String::new(),
        },
        esc(&r.harness.name),
        esc(&r.harness.version),
        esc(&r.scenario.file),
        esc(&r.model_words()),
        r.scenario.seed,
        esc(&r.scenario.text)
    )?;
    s.push_str("<footer class=\"muted\"><p>Rendered from report.json (schema batchproof.report/v1); <code>batchproof report report.json --format html</code> renders it again.</p></footer>");
    Ok(())
}

/// The footer, and a script that unfolds everything for printing.
fn footer(s: &mut String, _: &Report) -> std::fmt::Result {
    // Print everything, folded or not.
    s.push_str("<script>addEventListener('beforeprint',()=>document.querySelectorAll('details').forEach(d=>d.open=true));document.documentElement.dataset.rendered='ok';</script>");
    s.push_str("</main></body></html>");
    Ok(())
}
