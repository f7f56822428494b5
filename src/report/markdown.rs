//! Markdown summary, suitable for a CI step summary (`$GITHUB_STEP_SUMMARY`).

use std::fmt::Write;

use super::{Format, Report};

pub struct Markdown;

use crate::config::format_ms as ms;

impl Format for Markdown {
    fn extension(&self) -> &'static str {
        "md"
    }

    fn render(&self, r: &Report) -> anyhow::Result<String> {
        let mut s = String::new();
        let outcome = r.outcome();
        let mark = match outcome {
            super::Outcome::Incomplete => "⚠️",
            super::Outcome::HarnessFault => "🛑",
            super::Outcome::Passed => "✅",
            super::Outcome::Failed => "❌",
        };
        let verdict = format!("{mark} {}", outcome.word());
        writeln!(s, "# batchproof: {} — {verdict}\n", r.scenario.name)?;
        writeln!(
            s,
            "Target `{}` ({}), API version `{}`, {:.1} s.\n",
            r.target.url, r.target.kind, r.target.api_version, r.duration_s
        )?;
        if let Some(why) = &r.interrupted {
            writeln!(
                s,
                "> Run interrupted: {why}. Figures cover what happened before.\n"
            )?;
        }
        if let Some(why) = &r.resumed {
            writeln!(s, "> Resumed after a kill: {why}\n")?;
        }
        if let Some(p) = &r.probes_shard {
            writeln!(
                s,
                "The conformance probes were sent by shard {}/{} alone.\n",
                p.index, p.count
            )?;
        }
        if !r.verdict.reasons.is_empty() {
            writeln!(s, "**Why it did not pass**\n")?;
            for reason in &r.verdict.reasons {
                writeln!(s, "- `{}` {}", reason.code, reason.message)?;
            }
            writeln!(s)?;
        }
        if r.harness_fault() {
            writeln!(
                s,
                "> **Harness fault**: the accounting broke one of its own invariants, so its figures cannot be trusted. Please report it.\n"
            )?;
            writeln!(
                s,
                "| invariant | cases | violations | e.g. |\n|---|---|---|---|"
            )?;
            for i in r.invariants.iter().filter(|i| !i.held) {
                writeln!(
                    s,
                    "| `{}` {} | {} | **{}** | {} |",
                    i.id,
                    i.title,
                    i.checked,
                    i.violations,
                    i.examples.join("; ").replace('|', "\\|")
                )?;
            }
            writeln!(s)?;
        }
        if !r.verdict.thresholds.is_empty() {
            writeln!(s, "| threshold | measured | result |\n|---|---|---|")?;
            for t in &r.verdict.thresholds {
                let v = crate::scenario::threshold::format_value(&t.metric, t.value);
                writeln!(
                    s,
                    "| `{}` | {v} | {} |",
                    t.expr,
                    if t.passed { "pass" } else { "**FAIL**" }
                )?;
            }
            writeln!(s)?;
        }
        if !r.rules.is_empty() {
            rules(&mut s, r)?;
        }
        writeln!(s, "| runs | count |\n|---|---|")?;
        writeln!(s, "| submitted | {} |", r.runs.submitted)?;
        writeln!(s, "| result seen | {} |", r.runs.seen)?;
        writeln!(s, "| missing | {} |", r.runs.missing)?;
        writeln!(s, "| rejected at submission | {} |", r.runs.rejected)?;
        if r.runs.credited > 0 || r.runs.seen > 0 {
            writeln!(s, "| credits | {} |", super::credits_line(&r.runs))?;
        }
        writeln!(
            s,
            "| duplicates / unknown / out of order | {} / {} / {} |\n",
            r.runs.anomalies.duplicates, r.runs.anomalies.unknown, r.runs.anomalies.out_of_order
        )?;
        if r.runs.anomalies.foreign > 0 {
            writeln!(
                s,
                "{} foreign result(s): other runs' on the same workflow (another run's tag or batchId), counted apart, not judged.\n",
                r.runs.anomalies.foreign
            )?;
        }
        webhooks(&mut s, r)?;
        latency(&mut s, r)?;
        capacity(&mut s, r)?;
        forecast(&mut s, r)?;
        knee(&mut s, r)?;
        Ok(s)
    }
}

/// The deliveries' accounting, as the console gives it: a rejected delivery counts
/// against the verdict, so the summary a CI step shows must carry it.
fn webhooks(s: &mut String, r: &Report) -> std::fmt::Result {
    let w = &r.webhooks;
    let rejected: u64 = w.rejected.values().sum();
    let used = r.target.results_via.iter().any(|v| v.contains("webhook"));
    if !used && w.received == 0 && rejected == 0 {
        return Ok(());
    }
    writeln!(s, "| webhooks | count |\n|---|---|")?;
    writeln!(s, "| received | {} |", w.received)?;
    writeln!(s, "| verified | {} |", w.verified)?;
    let kinds: Vec<String> = w
        .rejected
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    if kinds.is_empty() {
        writeln!(s, "| rejected | {rejected} |")?;
    } else {
        writeln!(s, "| rejected | **{rejected}** ({}) |", kinds.join(", "))?;
    }
    writeln!(s, "| redeliveries | {} |", w.redeliveries)?;
    if w.probe_events > 0 {
        writeln!(
            s,
            "| of which for the probes' own runs | {} |",
            w.probe_events
        )?;
    }
    writeln!(s)
}

/// Latency percentiles, with real-time rows under a time scale.
fn latency(s: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(
        s,
        "| latency | p50 | p95 | p99 | max |\n|---|---|---|---|---|"
    )?;
    if let Some(op) = r.operations.get("submit") {
        for (name, h) in [
            ("submit (response)", &op.response),
            ("submit (service)", &op.service),
            ("schedule lag", &op.lag),
        ] {
            writeln!(
                s,
                "| {name} | {} | {} | {} | {} |",
                ms(h.p50_ms),
                ms(h.p95_ms),
                ms(h.p99_ms),
                ms(h.max_ms)
            )?;
        }
    }
    let ts = r.time_scale();
    let scaled = |label: &str, h: &crate::metrics::LatencySummary, s: &mut String| {
        writeln!(
            s,
            "| {label} | {} | {} | {} | {} |",
            ms(h.p50_ms),
            ms(h.p95_ms),
            ms(h.p99_ms),
            ms(h.max_ms)
        )?;
        if let Some(ts) = ts {
            writeln!(
                s,
                "| {label}, real time (× {ts}) | {} | {} | {} | {} |",
                ms(h.p50_ms * ts),
                ms(h.p95_ms * ts),
                ms(h.p99_ms * ts),
                ms(h.max_ms * ts)
            )?;
        }
        std::fmt::Result::Ok(())
    };
    let at = ts.map_or(String::new(), |ts| format!(" (at time scale {ts})"));
    scaled(&format!("end to end{at}"), &r.e2e, s)?;
    scaled(&format!("batch completion{at}"), &r.batches.completion, s)?;
    Ok(())
}

/// Throughput, the job's own length and the projection, with real-time equivalents
/// under a time scale.
fn capacity(s: &mut String, r: &Report) -> std::fmt::Result {
    let ts = r.time_scale();
    if r.is_sample() {
        writeln!(
            s,
            "\n## Capacity of the sample\n\nThis run is the sample of a forecast: every figure above the Forecast section describes the sample; the Forecast section alone answers for the job.\n"
        )?;
    } else {
        writeln!(s, "\n## Capacity\n")?;
    }
    if let Some(ts) = ts {
        writeln!(
            s,
            "The target is the mock at time scale {ts}: it runs {ts}× faster than the API it stands for, so each duration is followed by its real-time equivalent.\n"
        )?;
    }
    writeln!(
        s,
        "- accepted: {:.2} batches/s{}\n- completed (steady): {:.1} runs/s{}",
        r.throughput.batches_per_s,
        super::real_rate(r.throughput.batches_per_s, ts),
        r.throughput.steady_runs_per_s,
        super::real_rate(r.throughput.steady_runs_per_s, ts)
    )?;
    if r.throughput.finish_s > 0.0 {
        writeln!(
            s,
            "- this run's batches: all results in {} after the first submission",
            super::span(r.throughput.finish_s, ts)
        )?;
    }
    if let Some(p) = r.job_projection() {
        writeln!(
            s,
            "\n### Projection: {} files\n\n{} batches, submitted in **{}**, all finished in **{}**.{}\n",
            p.files,
            p.batches_needed,
            super::span(p.submit_s, ts),
            super::span(p.complete_s, ts),
            p.bound
                .map_or(String::new(), |b| format!(" Pace set by {}.", b.as_str()))
        )?;
        for a in &p.assumptions {
            writeln!(s, "- {a}")?;
        }
    }
    Ok(())
}

/// The bulk-job forecast: each figure with its 95 % interval, and what it rests on.
fn forecast(s: &mut String, r: &Report) -> std::fmt::Result {
    if let Some(e) = &r.forecast_error {
        writeln!(s, "\n## Forecast\n\nNo forecast: {e}")?;
    }
    let Some(f) = &r.forecast else {
        return Ok(());
    };
    writeln!(
        s,
        "\n## Forecast: {} files\n\nThe job's figures, from a sample of {} of its {} batches ({} runs, {} seen terminal), 95 % intervals from {} bootstrap replicates.\n",
        f.files, f.sample_batches, f.batches, f.sample_runs, f.sample_terminal, f.replicates
    )?;
    writeln!(s, "| figure | estimate | 95 % interval |\n|---|---|---|")?;
    for [a, b, c] in super::planning::forecast_rows(f) {
        writeln!(s, "| {a} | {b} | {c} |")?;
    }
    writeln!(s, "\nAssumptions:\n")?;
    for a in &f.assumptions {
        writeln!(s, "- {a}")?;
    }
    Ok(())
}

/// The knee search: the headline, then every step.
fn knee(s: &mut String, r: &Report) -> std::fmt::Result {
    let Some(k) = &r.knee else {
        return Ok(());
    };
    writeln!(s, "\n## Knee\n\n**{}**\n", k.headline())?;
    writeln!(
        s,
        "Each step offered one rate for {:.1} s of {} input(s) per batch; a step held while: {}. Method: {}. This report's other sections are the highest step that held.\n",
        k.step_s,
        k.inputs_per_batch,
        k.slo.join("; "),
        k.method
    )?;
    let head = super::planning::KNEE_HEADINGS;
    writeln!(s, "| {} |", head.join(" | "))?;
    writeln!(s, "|{}", "---|".repeat(head.len()))?;
    for row in super::planning::knee_rows(k) {
        writeln!(s, "| {} |", row.join(" | ").replace('\n', " "))?;
    }
    Ok(())
}

/// The rule table: failures first with their evidence, then passes, then rules nothing
/// exercised.
fn rules(s: &mut String, r: &Report) -> anyhow::Result<()> {
    use crate::checks::RuleStatus;
    let count = |st: RuleStatus| r.rules.iter().filter(|x| x.status == st).count();
    writeln!(
        s,
        "## Contract rules: {} failed, {} passed, {} not run{}\n",
        count(RuleStatus::Failed),
        count(RuleStatus::Passed),
        count(RuleStatus::NotRun),
        match count(RuleStatus::NotApplicable) {
            0 => String::new(),
            k => format!(", {k} not applicable to API {}", r.target.api_version),
        }
    )?;
    writeln!(
        s,
        "| rule | severity | source | result | cases | |\n|---|---|---|---|---|---|"
    )?;
    for rule in &r.rules {
        let result = match rule.status {
            RuleStatus::Failed => format!("**FAILED** ({} of {})", rule.failed, rule.checked),
            RuleStatus::Passed => "passed".to_string(),
            RuleStatus::NotRun => "not run".to_string(),
            RuleStatus::NotApplicable => "not applicable".to_string(),
        };
        writeln!(
            s,
            "| [`{}`]({}) | {} | {} | {result} | {} | {} |",
            rule.id,
            rule.doc,
            rule.severity.as_str(),
            rule.provenance.map_or("", |p| p.as_str()),
            rule.checked,
            escape(rule.note.as_deref().unwrap_or(&rule.title))
        )?;
    }
    writeln!(s)?;
    for rule in r.rules.iter().filter(|x| x.status == RuleStatus::Failed) {
        writeln!(
            s,
            "<details><summary><code>{}</code>: {}</summary>\n",
            rule.id,
            escape(&rule.title)
        )?;
        for c in &rule.examples {
            writeln!(
                s,
                "- {}{}{}expected {}, seen {}",
                c.request
                    .as_deref()
                    .map(|q| format!("`{}` · ", escape(q)))
                    .unwrap_or_default(),
                c.batch_id
                    .as_deref()
                    .map(|b| format!("batch `{b}` · "))
                    .unwrap_or_default(),
                c.run_id
                    .as_deref()
                    .map(|b| format!("run `{b}` · "))
                    .unwrap_or_default(),
                escape(&c.expected),
                escape(&c.seen)
            )?;
        }
        writeln!(s, "\n</details>\n")?;
    }
    Ok(())
}

/// Keeps table cells and list items intact.
fn escape(t: &str) -> String {
    t.replace('|', "\\|")
        .replace('\n', " ")
        .replace('<', "&lt;")
}
