//! The report's sections that are mostly figures: latency spectra, per-second
//! timelines, batch outcomes and per-batch completion curves.

use std::fmt::Write;

use crate::config::format_ms as ms;
use crate::metrics::LatencySummary;
use crate::report::Report;
use crate::report::charts::{Chart, PALETTE, Series, XAxis, downsample, esc, line_chart};

/// The percentile spectrum of a histogram: x = -log10(1 - p), y in ms.
fn spectrum(summary: &LatencySummary) -> Vec<(f64, f64)> {
    let Some(h) = Report::histogram(summary) else {
        return Vec::new();
    };
    if h.count() == 0 {
        return Vec::new();
    }
    // Beyond 1/count the percentiles are all the maximum: stop a little after it.
    let top = ((h.count() as f64).log10() + 0.5).clamp(1.0, 5.0);
    let mut out = Vec::new();
    let mut x = 0.0;
    while x <= top + 1e-9 {
        let p = 100.0 * (1.0 - 10f64.powf(-x));
        out.push((x, h.percentile(p).as_secs_f64() * 1e3));
        x += 0.05;
    }
    out
}

/// Latency percentile spectra and the summary table.
pub(super) fn latency(s: &mut String, r: &Report) -> std::fmt::Result {
    // Latency.
    s.push_str("<section id=\"latency\"><h2>Latency</h2><p class=\"muted\">Percentile spectra (HdrHistogram style): the x axis runs from the fastest request (p0) through p90, p99 and p99.9 on a log scale, so the tail gets as much room as the body. <i>Response</i> time counts from when the request was due on the schedule; <i>service</i> time from when it was actually sent. A gap between them is queueing in the harness or the connection pool.</p>");
    let ordered: Vec<(&String, &crate::metrics::OperationSummary)> = ["submit", "list", "get"]
        .iter()
        .filter_map(|k| r.operations.get_key_value(*k))
        .chain(
            r.operations
                .iter()
                .filter(|(k, _)| !["submit", "list", "get"].contains(&k.as_str())),
        )
        .collect();
    for (name, op) in ordered.iter().copied() {
        let series = vec![
            Series {
                name: "response".into(),
                points: spectrum(&op.response),
                color: PALETTE[0],
                markers: false,
            },
            Series {
                name: "service".into(),
                points: spectrum(&op.service),
                color: PALETTE[2],
                markers: false,
            },
        ];
        let title = format!("{name}: response vs service time (ms)");
        let id = format!("latency-{name}");
        s.push_str(&line_chart(
            &Chart {
                id: &id,
                title: &title,
                x_label: "percentile",
                y_label: "ms",
                x_axis: XAxis::Percentile,
            },
            &series,
        ));
    }
    let e2e_title = match r.time_scale() {
        Some(ts) => format!(
            "end to end: submit (as scheduled) → first terminal result (ms, at time scale {ts}: × {ts} for real time)"
        ),
        None => "end to end: submit (as scheduled) → first terminal result (ms)".to_string(),
    };
    s.push_str(&line_chart(
        &Chart {
            id: "latency-e2e",
            title: &e2e_title,
            x_label: "percentile",
            y_label: "ms",
            x_axis: XAxis::Percentile,
        },
        &[
            Series {
                name: "run end to end".into(),
                points: spectrum(&r.e2e),
                color: PALETTE[4],
                markers: false,
            },
            Series {
                name: "batch complete".into(),
                points: spectrum(&r.batches.completion),
                color: PALETTE[3],
                markers: false,
            },
        ],
    ));
    s.push_str("<table><tr><th>histogram</th><th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th><th class=\"num\">p99.9</th><th class=\"num\">max</th><th class=\"num\">count</th></tr>");
    let mut row = |name: String, h: &LatencySummary| {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&name),
            ms(h.p50_ms),
            ms(h.p90_ms),
            ms(h.p99_ms),
            ms(h.p999_ms),
            ms(h.max_ms),
            h.count
        );
    };
    for (name, op) in ordered {
        row(format!("{name} response"), &op.response);
        row(format!("{name} service"), &op.service);
        if name == "submit" {
            row("submit schedule lag".into(), &op.lag);
        }
    }
    row("end to end".into(), &r.e2e);
    row("batch completion".into(), &r.batches.completion);
    s.push_str("</table></section>");
    Ok(())
}

/// Per-second timelines.
pub(super) fn timelines(s: &mut String, r: &Report) -> std::fmt::Result {
    // Timelines.
    let tl = |f: fn(&crate::metrics::Second) -> u64| -> Vec<(f64, f64)> {
        downsample(
            r.timeline
                .iter()
                .map(|x| (x.t as f64, f(x) as f64))
                .collect(),
            1200,
        )
    };
    s.push_str("<section id=\"timeline\"><h2>Over time</h2>");
    s.push_str(&line_chart(
        &Chart {
            id: "timeline-runs",
            title: "runs per second",
            x_label: "seconds since start",
            y_label: "runs / s",
            x_axis: XAxis::Linear,
        },
        &[
            Series {
                name: "submitted".into(),
                points: tl(|x| x.runs_submitted),
                color: PALETTE[0],
                markers: false,
            },
            Series {
                name: "completed".into(),
                points: tl(|x| x.runs_completed),
                color: PALETTE[2],
                markers: false,
            },
            Series {
                name: "failed".into(),
                points: tl(|x| x.runs_failed),
                color: PALETTE[1],
                markers: false,
            },
            Series {
                name: "webhooks".into(),
                points: tl(|x| x.webhooks),
                color: PALETTE[4],
                markers: false,
            },
        ],
    ));
    s.push_str(&line_chart(
        &Chart {
            id: "timeline-inflight",
            title: "runs in flight (submitted, no result yet) and HTTP trouble",
            x_label: "seconds since start",
            y_label: "count",
            x_axis: XAxis::Linear,
        },
        &[
            Series {
                name: "in flight".into(),
                points: tl(|x| x.runs_in_flight),
                color: PALETTE[3],
                markers: false,
            },
            Series {
                name: "http errors".into(),
                points: tl(|x| x.http_errors),
                color: PALETTE[1],
                markers: false,
            },
            Series {
                name: "429s".into(),
                points: tl(|x| x.throttles),
                color: PALETTE[5],
                markers: false,
            },
        ],
    ));
    if let Some(res) = &r.resources {
        s.push_str(&line_chart(
            &Chart {
                id: "timeline-memory",
                title: "memory of the harness process (with the embedded mock, when it is the target)",
                x_label: "seconds since start",
                y_label: "RSS, MiB",
                x_axis: XAxis::Linear,
            },
            &[Series {
                name: "RSS".into(),
                points: downsample(
                    r.timeline.iter().filter(|x| x.rss_kib > 0).map(|x| (x.t as f64, x.rss_kib as f64 / 1024.0)).collect(),
                    1200,
                ),
                color: PALETTE[5],
                markers: false,
            }],
        ));
        write!(
            s,
            "<p>Memory: {:.0} MiB at the start, {:.0} MiB half way, {:.0} MiB at the end (peak {:.0} MiB, {} samples).</p>",
            res.rss_start_mib, res.rss_mid_mib, res.rss_end_mib, res.rss_max_mib, res.samples
        )?;
    }
    s.push_str("</section>");
    Ok(())
}

/// Batch outcomes.
pub(super) fn batches(s: &mut String, r: &Report) -> std::fmt::Result {
    // Batches.
    let b = &r.batches;
    s.push_str("<section id=\"batches\"><h2>Batches</h2>");
    let answered: Vec<(f64, f64)> = b
        .list
        .iter()
        .filter_map(|l| Some((l.index as f64, (l.answered_ms? - l.intended_ms) / 1e3)))
        .collect();
    let completed: Vec<(f64, f64)> = b
        .list
        .iter()
        .filter_map(|l| Some((l.index as f64, (l.completed_ms? - l.intended_ms) / 1e3)))
        .collect();
    s.push_str(&line_chart(
        &Chart {
            id: "batches-completion",
            title: "per batch: submission answered and every run finished (s after scheduled submit)",
            x_label: "batch index",
            y_label: "seconds",
            x_axis: XAxis::Linear,
        },
        &[
            Series { name: "all runs finished".into(), points: completed, color: PALETTE[2], markers: true },
            Series { name: "submission answered".into(), points: answered, color: PALETTE[0], markers: true },
        ],
    ));
    Ok(())
}

/// Completion curves of up to 24 batches, spread over the run.
pub(super) fn completion_curves(s: &mut String, r: &Report) -> std::fmt::Result {
    let b = &r.batches;
    // Completion curves of up to 24 batches, spread over the run.
    let curves: Vec<&crate::report::BatchLine> = b
        .list
        .iter()
        .filter(|l| !l.completion_curve_ms.is_empty())
        .collect();
    let every = curves.len().div_ceil(24).max(1);
    let series: Vec<Series> = curves
        .iter()
        .step_by(every)
        .enumerate()
        .map(|(i, l)| Series {
            name: if i < 6 {
                format!("#{}", l.index)
            } else {
                String::new()
            },
            points: l
                .completion_curve_ms
                .iter()
                .enumerate()
                .map(|(d, t)| (t / 1e3, (d * 10) as f64))
                .collect(),
            color: PALETTE[i % PALETTE.len()],
            markers: false,
        })
        .collect();
    let curves_title = match r.time_scale() {
        Some(ts) => format!(
            "per-batch completion: % of its inputs with a result, by time since the batch was due (at time scale {ts}: × {ts} for real time)"
        ),
        None => {
            "per-batch completion: % of its inputs with a result, by time since the batch was due"
                .to_string()
        }
    };
    s.push_str(&line_chart(
        &Chart {
            id: "batches-curves",
            title: &curves_title,
            x_label: "seconds after the batch was due",
            y_label: "% done",
            x_axis: XAxis::Linear,
        },
        &series,
    ));
    if let Some(last) = b
        .list
        .iter()
        .filter(|l| l.completed_ms.is_some())
        .max_by(|x, y| {
            x.completed_ms
                .partial_cmp(&y.completed_ms)
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    {
        write!(
            s,
            "<p>The last batch to finish was #{} (<code>{}</code>, {} inputs): all its runs were done {} after the run started.</p>",
            last.index,
            esc(last.batch_id.as_deref().unwrap_or("?")),
            last.inputs,
            ms(last.completed_ms.unwrap_or(0.0))
        )?;
    }
    let unfinished = b
        .list
        .iter()
        .filter(|l| l.outcome == "accepted" && l.completed_ms.is_none())
        .count();
    if unfinished > 0 {
        write!(
            s,
            "<p class=\"note\">{unfinished} accepted batch(es) never had every run finish.</p>"
        )?;
    }
    write!(
        s,
        "<table><tr><th>scheduled</th><th>accepted</th><th>rejected</th><th>throttled</th><th>possible duplicates</th><th>unreachable</th><th>unanswered</th></tr><tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr></table>",
        b.scheduled,
        b.accepted,
        b.rejected,
        b.throttled,
        b.possible_duplicates,
        b.unreachable,
        b.unanswered
    )?;
    s.push_str("</section>");
    Ok(())
}
