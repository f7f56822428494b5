//! `batchproof merge`: combines the reports of the shards of one scenario (`run --shard
//! I/N`) into one report, losslessly: histograms are added (their HdrHistogram encodings
//! decode exactly), counts and per-second timelines are summed (each shard's timeline
//! shifted by its start), rules are combined case by case, and thresholds are judged again
//! on the merged figures.

use std::collections::BTreeMap;

use anyhow::{Context, bail};

use super::{Report, Shard};
use crate::checks::{EXAMPLES, RuleResult, RuleStatus};
use crate::metrics::{Latency, LatencySummary, OperationSummary, Second};

fn add_hist(a: &LatencySummary, b: &LatencySummary) -> anyhow::Result<LatencySummary> {
    let mut h = Latency::decode(&a.hdr).map_err(anyhow::Error::msg)?;
    h.add(&Latency::decode(&b.hdr).map_err(anyhow::Error::msg)?);
    let mut s = h.summary();
    s.clamped = a.clamped + b.clamped;
    Ok(s)
}

fn add_map(a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

fn time(s: &str) -> anyhow::Result<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(s).with_context(|| format!("bad time `{s}`"))
}

fn merge_rules(a: &mut Vec<RuleResult>, b: &[RuleResult]) {
    for r in b {
        match a.iter_mut().find(|x| x.id == r.id) {
            None => a.push(r.clone()),
            Some(m) => {
                m.checked += r.checked;
                m.failed += r.failed;
                let room = EXAMPLES.saturating_sub(m.examples.len());
                m.examples.extend(r.examples.iter().take(room).cloned());
                m.status = if m.failed > 0 {
                    RuleStatus::Failed
                } else if m.checked > 0 {
                    RuleStatus::Passed
                } else if m.status == RuleStatus::NotApplicable {
                    RuleStatus::NotApplicable
                } else {
                    RuleStatus::NotRun
                };
                if m.status != RuleStatus::NotRun
                    && m.note.as_deref() == Some("nothing in this run exercised it")
                {
                    m.note = None;
                }
            }
        }
    }
    a.sort_by_key(|r| match r.status {
        RuleStatus::Failed => 0,
        RuleStatus::Passed => 1,
        RuleStatus::NotRun => 2,
        RuleStatus::NotApplicable => 3,
    });
}

/// Merges shard reports (at least one) of the same scenario. A shard set with shards
/// missing is refused, naming them, unless `partial`: then the merged report says which
/// are missing and is never passed.
pub fn merge(reports: &[(String, Report)], partial: bool) -> anyhow::Result<Report> {
    let first = same_scenario(reports)?;
    let gap = missing_shards(reports)?;
    if let Some(g) = &gap
        && !partial
    {
        let missing: Vec<String> = g
            .missing
            .iter()
            .map(|i| format!("{i}/{}", g.count))
            .collect();
        bail!(
            "an incomplete shard set: {} of {} shard reports given; missing shard(s) {}\n  fix: add the missing shards' report.json (a killed shard: `batchproof report --from-journal DIR` or `resume DIR` first), or pass --partial for a merge marked partial (never passed)",
            reports.len(),
            g.count,
            missing.join(", ")
        );
    }
    let start = reports
        .iter()
        .map(|(_, r)| time(&r.started_at))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .min()
        .expect("non-empty");
    let mut m = first.clone();
    m.timeline.clear();
    m.batches.list.clear();
    m.runs.missing_examples.clear();
    m.rules.clear();
    // A forecast and a knee rest on one process's per-batch data, which a report does not
    // carry: one shard's would read as the whole's.
    m.forecast = None;
    m.forecast_error = None;
    m.knee = None;
    let mut timeline: BTreeMap<u64, Second> = BTreeMap::new();
    for (i, (_, r)) in reports.iter().enumerate() {
        let offset = (time(&r.started_at)? - start).num_seconds().max(0) as u64;
        add_timeline(&mut timeline, &r.timeline, offset);
        m.batches.list.extend(r.batches.list.iter().cloned());
        m.runs
            .missing_examples
            .extend(r.runs.missing_examples.iter().cloned());
        merge_rules(&mut m.rules, &r.rules);
        // The first shard is already in `m`: only the others are added to it.
        if i > 0 {
            merge_invariants(&mut m.invariants, &r.invariants);
            add_shard(&mut m, r)?;
        }
    }
    m.timeline = timeline.into_values().collect();
    finish(&mut m, start, reports)?;
    Ok(m)
}

/// The first report, once every report is known to be of the same scenario text and no
/// shard appears twice.
fn same_scenario(reports: &[(String, Report)]) -> anyhow::Result<&Report> {
    let Some((first_name, first)) = reports.first() else {
        bail!("nothing to merge");
    };
    for (name, r) in reports {
        if r.scenario.text != first.scenario.text {
            bail!(
                "{name} is a report of another scenario (or another version of it) than {first_name}"
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut first_of = std::collections::HashMap::new();
    for (name, r) in reports {
        if let Some(s) = &r.shard {
            if !seen.insert(s.index) {
                bail!(
                    "{name}: shard {}/{} appears twice (also {}): the shard ran twice (into one folder, or these reports come from two rehearsals), and each copy sent its batches\n  fix: merge one copy of each shard — move the one you do not want out of the folder (the older rehearsal's, or the one started by mistake); both copies' runs exist on the target",
                    s.index,
                    s.count,
                    first_of
                        .get(&s.index)
                        .map_or("another report", |n: &&String| n.as_str())
                );
            }
            first_of.insert(s.index, name);
        }
    }
    Ok(first)
}

/// The shards a set of shard reports lacks (None when it is whole, or holds no shard
/// reports at all); shards of sets of different sizes are refused.
fn missing_shards(reports: &[(String, Report)]) -> anyhow::Result<Option<super::PartialSet>> {
    let mut count = None;
    let mut present = std::collections::BTreeSet::new();
    for (name, r) in reports {
        let Some(s) = &r.shard else { continue };
        match count {
            None => count = Some(s.count),
            Some(c) if c != s.count => bail!(
                "{name} is shard {}/{} of another split than the others (of {c})",
                s.index,
                s.count
            ),
            Some(_) => {}
        }
        present.insert(s.index);
    }
    let Some(count) = count else { return Ok(None) };
    let missing: Vec<u64> = (0..count).filter(|i| !present.contains(i)).collect();
    Ok((!missing.is_empty()).then_some(super::PartialSet { count, missing }))
}

/// Adds one shard's per-second timeline, shifted by `offset` seconds from the earliest
/// start.
fn add_timeline(into: &mut BTreeMap<u64, Second>, from: &[Second], offset: u64) {
    for sec in from {
        let t = into.entry(sec.t + offset).or_insert_with(|| Second {
            t: sec.t + offset,
            ..Default::default()
        });
        t.batches_submitted += sec.batches_submitted;
        t.runs_submitted += sec.runs_submitted;
        t.runs_completed += sec.runs_completed;
        t.runs_failed += sec.runs_failed;
        t.http_errors += sec.http_errors;
        t.throttles += sec.throttles;
        t.webhooks += sec.webhooks;
        t.runs_in_flight += sec.runs_in_flight;
        // Shards run in separate processes: the largest, not the sum.
        t.rss_kib = t.rss_kib.max(sec.rss_kib);
    }
}

/// Adds a further shard's counts, histograms and rates to the merged report.
fn add_shard(m: &mut Report, r: &Report) -> anyhow::Result<()> {
    m.complete &= r.complete;
    if let Some(why) = &r.interrupted {
        m.interrupted = Some(match &r.shard {
            Some(s) => format!("shard {}/{}: {why}", s.index, s.count),
            None => why.clone(),
        });
    }
    if time(&r.finished_at)? > time(&m.finished_at)? {
        m.finished_at = r.finished_at.clone();
    }
    m.generator.saturated |= r.generator.saturated;
    m.generator.unsent_batches += r.generator.unsent_batches;
    // Shards' batch indexes never overlap: the set's unsent batches are all of theirs.
    let unsent = &mut m.generator.unsent_indexes;
    unsent.extend(&r.generator.unsent_indexes);
    unsent.sort_unstable();
    unsent.truncate(super::UNSENT_LISTED);
    if let (None, Some(why)) = (&m.resumed, &r.resumed) {
        m.resumed = Some(format!("a shard was {why}"));
    }
    for (k, op) in &r.operations {
        match m.operations.get_mut(k) {
            None => {
                m.operations.insert(k.clone(), op.clone());
            }
            Some(mo) => {
                *mo = OperationSummary {
                    ok: mo.ok + op.ok,
                    errors: mo.errors + op.errors,
                    response: add_hist(&mo.response, &op.response)?,
                    service: add_hist(&mo.service, &op.service)?,
                    lag: add_hist(&mo.lag, &op.lag)?,
                };
            }
        }
    }
    m.http.requests += r.http.requests;
    m.http.errors += r.http.errors;
    m.http.throttles += r.http.throttles;
    add_map(&mut m.http.outcomes, &r.http.outcomes);
    let (b, rb) = (&mut m.batches, &r.batches);
    b.scheduled += rb.scheduled;
    b.accepted += rb.accepted;
    b.rejected += rb.rejected;
    b.throttled += rb.throttled;
    b.possible_duplicates += rb.possible_duplicates;
    b.unreachable += rb.unreachable;
    b.unanswered += rb.unanswered;
    b.completion = add_hist(&b.completion, &rb.completion)?;
    let (u, ru) = (&mut m.runs, &r.runs);
    u.submitted += ru.submitted;
    u.seen += ru.seen;
    u.missing += ru.missing;
    u.rejected += ru.rejected;
    u.credits += ru.credits;
    u.credited += ru.credited;
    u.needed_review += ru.needed_review;
    add_map(&mut u.by_status, &ru.by_status);
    add_map(&mut u.by_channel, &ru.by_channel);
    u.anomalies.duplicates += ru.anomalies.duplicates;
    u.anomalies.unknown += ru.anomalies.unknown;
    u.anomalies.foreign += ru.anomalies.foreign;
    u.anomalies.out_of_order += ru.anomalies.out_of_order;
    u.anomalies.from_unconfirmed_batches += ru.anomalies.from_unconfirmed_batches;
    let (w, rw) = (&mut m.webhooks, &r.webhooks);
    w.received += rw.received;
    w.verified += rw.verified;
    add_map(&mut w.rejected, &rw.rejected);
    w.redeliveries += rw.redeliveries;
    w.unparseable += rw.unparseable;
    w.other_events += rw.other_events;
    w.without_batch_id += rw.without_batch_id;
    w.metadata_mismatch += rw.metadata_mismatch;
    w.probe_events += rw.probe_events;
    w.refused += rw.refused;
    w.unmatched += rw.unmatched;
    w.review_outcomes += rw.review_outcomes;
    m.e2e = add_hist(&m.e2e, &r.e2e)?;
    // Shards run side by side: their rates add up.
    m.throughput.batches_per_s += r.throughput.batches_per_s;
    m.throughput.steady_runs_per_s += r.throughput.steady_runs_per_s;
    m.throughput.steady_window_s = m
        .throughput
        .steady_window_s
        .max(r.throughput.steady_window_s);
    Ok(())
}

/// What follows from the merged figures: resources, duration, projection, provenance,
/// and the thresholds judged again.
fn finish(
    m: &mut Report,
    start: chrono::DateTime<chrono::FixedOffset>,
    reports: &[(String, Report)],
) -> anyhow::Result<()> {
    m.resources = super::Resources::from_timeline(&m.timeline);
    m.batches.list.sort_by_key(|l| l.index);
    m.batches.list.truncate(10_000);
    m.runs.missing_examples.truncate(20);
    m.started_at = start.to_rfc3339();
    m.duration_s = (time(&m.finished_at)? - start).num_milliseconds() as f64 / 1e3;
    if let Some(submit) = m.operations.get("submit") {
        m.generator.lag_p99_ms = submit.lag.p99_ms;
    }
    // The merged job ended when the last shard's last result came in.
    let mut finish_s: f64 = 0.0;
    for (_, r) in reports {
        let offset = (time(&r.started_at)? - start).num_milliseconds() as f64 / 1e3;
        finish_s = finish_s.max(offset + r.throughput.finish_s);
    }
    m.throughput.finish_s = finish_s;
    if let Some(p) = &m.projection {
        let sample = super::projection::Sample {
            runs: m.runs.submitted,
            batches: m.batches.accepted,
            batches_per_s: m.throughput.batches_per_s,
            steady_runs_per_s: m.throughput.steady_runs_per_s,
            finish_s,
            throttled: m.batches.throttled > 0 || m.batches.list.iter().any(|b| b.throttles > 0),
        };
        let mut p = super::projection::project(p.files, &sample, m.target.mock_time_scale);
        p.assumptions.push(format!(
            "merged from {} shards running side by side: acceptance and completion rates are the sums of the shards' rates",
            reports.len()
        ));
        m.projection = Some(p);
    }
    m.shard = None;
    // The probes' rules came from the shard that sent them.
    m.probes_shard = reports.iter().find_map(|(_, r)| r.probes_shard);
    m.partial_set = missing_shards(reports)?;
    m.merged_from = reports
        .iter()
        .map(|(name, r)| match &r.shard {
            Some(Shard { index, count }) => format!("{name} (shard {index}/{count})"),
            None => name.clone(),
        })
        .collect();
    // Judge the merged figures against the same thresholds.
    let thresholds = m
        .verdict
        .thresholds
        .iter()
        .filter_map(|t| crate::scenario::threshold::parse(&t.expr).ok())
        .collect::<Vec<_>>();
    m.judge(&thresholds);
    Ok(())
}

/// Each shard judged its own invariants; the merged run holds one only where every shard
/// held it.
fn merge_invariants(
    into: &mut Vec<crate::observe::InvariantResult>,
    from: &[crate::observe::InvariantResult],
) {
    for inv in from {
        match into.iter_mut().find(|i| i.id == inv.id) {
            Some(m) => {
                m.checked += inv.checked;
                m.violations += inv.violations;
                m.held &= inv.held;
                m.examples.extend(inv.examples.iter().cloned());
                m.examples.truncate(5);
            }
            None => into.push(inv.clone()),
        }
    }
}
