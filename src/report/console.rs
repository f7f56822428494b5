//! The summary table printed at the end of a run.

use std::fmt::Write;

use super::{Format, Report};

pub struct Console;

use crate::config::format_ms as ms;

impl Format for Console {
    fn extension(&self) -> &'static str {
        "txt"
    }

    fn render(&self, r: &Report) -> anyhow::Result<String> {
        let mut s = String::new();
        header(&mut s, r)?;
        accounting(&mut s, r)?;
        latency(&mut s, r)?;
        capacity(&mut s, r)?;
        verdict(&mut s, r)?;
        Ok(s)
    }
}

/// The verdict, the target, and any harness fault.
fn header(s: &mut String, r: &Report) -> std::fmt::Result {
    let verdict = r.outcome().word();
    // A shard's verdict is its own share's; the whole is judged by `merge`.
    let part = r.shard.map_or(String::new(), |sh| {
        format!(" · shard {}/{}", sh.index, sh.count)
    });
    writeln!(
        s,
        "\n── batchproof · {}{part} · {verdict} ─────────────────────────",
        r.scenario.name
    )?;
    if let Some(sh) = r.shard {
        writeln!(
            s,
            "shard     {} of {}: this shard's share only; `batchproof merge` judges the whole",
            sh.index, sh.count
        )?;
    }
    writeln!(
        s,
        "target    {} ({}, API {})",
        r.target.url, r.target.kind, r.target.api_version
    )?;
    if let Some(why) = &r.interrupted {
        writeln!(s, "status    interrupted: {why}")?;
    }
    if let Some(why) = &r.resumed {
        writeln!(s, "resumed   {why}")?;
    }
    if let Some(p) = &r.probes_shard {
        writeln!(
            s,
            "probes    sent by shard {}/{} (the rules they exercise come from it)",
            p.index, p.count
        )?;
    }
    // Why the run did not pass, first thing after the banner: a pipeline's log shows it.
    for reason in &r.verdict.reasons {
        writeln!(s, "✗ {}: {}", reason.code, reason.message)?;
    }
    for i in r.invariants.iter().filter(|i| !i.held) {
        writeln!(
            s,
            "HARNESS FAULT  invariant {} broke ({} of {} cases): {}",
            i.id, i.violations, i.checked, i.title
        )?;
        for e in &i.examples {
            writeln!(s, "               e.g. {e}")?;
        }
    }
    Ok(())
}

/// Batches, runs, anomalies and webhooks: every input accounted for.
fn accounting(s: &mut String, r: &Report) -> std::fmt::Result {
    // The report counts batches never sent among the unanswered; the console tells them
    // apart, since a batch never sent was not left waiting by the target.
    let unsent = r.generator.unsent_batches.min(r.batches.unanswered);
    let never = if unsent > 0 {
        format!(" · {unsent} never sent")
    } else {
        String::new()
    };
    writeln!(
        s,
        "batches   {} scheduled · {} accepted · {} rejected · {} throttled · {} possible duplicates · {} unreachable · {} unanswered{never}",
        r.batches.scheduled,
        r.batches.accepted,
        r.batches.rejected,
        r.batches.throttled,
        r.batches.possible_duplicates,
        r.batches.unreachable,
        r.batches.unanswered - unsent
    )?;
    writeln!(
        s,
        "runs      {} submitted · {} seen · {} missing · {} rejected",
        r.runs.submitted, r.runs.seen, r.runs.missing, r.runs.rejected
    )?;
    if r.runs.credited > 0 || r.runs.seen > 0 {
        writeln!(s, "          {}", super::credits_line(&r.runs))?;
    }
    let status: Vec<String> = r
        .runs
        .by_status
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let channel: Vec<String> = r
        .runs
        .by_channel
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    writeln!(
        s,
        "          {} · via {}",
        status.join(" · "),
        channel.join(" · ")
    )?;
    let a = &r.runs.anomalies;
    writeln!(
        s,
        "          duplicates {} · unknown {} · out of order {}",
        a.duplicates, a.unknown, a.out_of_order
    )?;
    if a.foreign > 0 {
        writeln!(
            s,
            "          foreign {}: results of other runs on the same workflow (another run's tag or batchId), counted apart, not judged",
            a.foreign
        )?;
    }
    let w = &r.webhooks;
    let rejected: u64 = w.rejected.values().sum();
    writeln!(
        s,
        "webhooks  {} received · {} verified · {} rejected · {} redeliveries",
        w.received, w.verified, rejected, w.redeliveries
    )?;
    if w.probe_events > 0 {
        writeln!(
            s,
            "          of which {} for the load's runs and {} for the probes' own runs",
            w.received.saturating_sub(w.probe_events),
            w.probe_events
        )?;
    }
    if w.foreign > 0 {
        writeln!(
            s,
            "          {} for another endpoint's path (an earlier run's, left registered): answered 404, not judged",
            w.foreign
        )?;
    }
    match (&w.endpoint, w.endpoint_removed) {
        (Some(id), true) => writeln!(s, "          endpoint {id} registered, removed at the end")?,
        (Some(id), false) => writeln!(
            s,
            "          endpoint {id} registered and NOT removed: delete it (DELETE /webhook_endpoints/{id})"
        )?,
        (None, _) => {}
    }
    Ok(())
}

/// Latency rows per operation, and a warning when the generator was saturated.
fn latency(s: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(
        s,
        "http      {} requests · {} errors · {} throttled (429)",
        r.http.requests, r.http.errors, r.http.throttles
    )?;
    writeln!(
        s,
        "\n{:<20}{:>10}{:>10}{:>10}{:>10}{:>10}{:>9}",
        "latency", "p50", "p90", "p99", "p99.9", "max", "count"
    )?;
    let mut row = |name: &str, h: &crate::metrics::LatencySummary| {
        writeln!(
            s,
            "{:<20}{:>10}{:>10}{:>10}{:>10}{:>10}{:>9}",
            name,
            ms(h.p50_ms),
            ms(h.p90_ms),
            ms(h.p99_ms),
            ms(h.p999_ms),
            ms(h.max_ms),
            h.count
        )
    };
    if let Some(op) = r.operations.get("submit") {
        row("submit response", &op.response)?;
        row("submit service", &op.service)?;
        row("schedule lag", &op.lag)?;
    }
    for name in ["list", "get"] {
        if let Some(op) = r.operations.get(name).filter(|o| o.response.count > 0) {
            row(name, &op.response)?;
        }
    }
    row("end to end", &r.e2e)?;
    row("batch completion", &r.batches.completion)?;
    if let Some(ts) = r.time_scale() {
        writeln!(
            s,
            "          end to end and batch completion are at time scale {ts}: real p50 ≈ {} and {}, p99 ≈ {} and {}",
            ms(r.e2e.p50_ms * ts),
            ms(r.batches.completion.p50_ms * ts),
            ms(r.e2e.p99_ms * ts),
            ms(r.batches.completion.p99_ms * ts)
        )?;
    }
    if r.generator.saturated {
        writeln!(
            s,
            "\n!! generator saturated: schedule lag p99 {} > bound {}; latencies partly reflect the harness",
            ms(r.generator.lag_p99_ms),
            ms(r.generator.lag_bound_ms)
        )?;
    }
    Ok(())
}

/// Throughput and the projection, with real-time equivalents under a time scale.
fn capacity(s: &mut String, r: &Report) -> std::fmt::Result {
    let ts = r.time_scale();
    writeln!(
        s,
        "\nthroughput {:.2} batches/s accepted{} · {:.1} runs/s completed (steady){}",
        r.throughput.batches_per_s,
        super::real_rate(r.throughput.batches_per_s, ts),
        r.throughput.steady_runs_per_s,
        super::real_rate(r.throughput.steady_runs_per_s, ts)
    )?;
    if r.throughput.finish_s > 0.0 {
        writeln!(
            s,
            "{}all results in {} after the first submission",
            if r.is_sample() {
                "sample    "
            } else {
                "this run  "
            },
            super::span(r.throughput.finish_s, ts)
        )?;
    }
    if let Some(p) = r.job_projection() {
        writeln!(
            s,
            "projection {} files → {} batches: submitted in {}, all finished in {}",
            p.files,
            p.batches_needed,
            super::span(p.submit_s, ts),
            super::span(p.complete_s, ts)
        )?;
        if let Some(b) = p.bound {
            writeln!(s, "           pace set by {}", b.as_str())?;
        }
    }
    Ok(())
}

/// Thresholds and failed contract rules with their first example.
fn verdict(s: &mut String, r: &Report) -> std::fmt::Result {
    if !r.verdict.thresholds.is_empty() {
        writeln!(s)?;
        for t in &r.verdict.thresholds {
            let v = crate::scenario::threshold::format_value(&t.metric, t.value);
            writeln!(
                s,
                "{} {:<40} measured {v}",
                if t.passed { "pass" } else { "FAIL" },
                t.expr
            )?;
        }
    }
    if !r.rules.is_empty() {
        use crate::checks::RuleStatus;
        let n = |st: RuleStatus| r.rules.iter().filter(|x| x.status == st).count();
        writeln!(
            s,
            "\nrules     {} passed · {} failed · {} not run (of {}{})",
            n(RuleStatus::Passed),
            n(RuleStatus::Failed),
            n(RuleStatus::NotRun),
            r.rules.len() - n(RuleStatus::NotApplicable),
            match n(RuleStatus::NotApplicable) {
                0 => String::new(),
                k => format!("; {k} not applicable to API {}", r.target.api_version),
            }
        )?;
        for rule in r.rules.iter().filter(|x| x.status == RuleStatus::Failed) {
            writeln!(
                s,
                "FAIL {:<30} {} of {} cases · {}",
                rule.id,
                rule.failed,
                rule.checked,
                rule.severity.as_str()
            )?;
            if let Some(c) = rule.examples.first() {
                let at = [
                    c.request.as_deref(),
                    c.batch_id.as_deref(),
                    c.run_id.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · ");
                writeln!(
                    s,
                    "     e.g. {at}\n          expected {}\n          seen     {}",
                    c.expected, c.seen
                )?;
            }
        }
    }
    Ok(())
}
