//! The HTML report's planning sections: the bulk-job forecast (its figures with their
//! intervals and the projected completion curve with its band) and the knee (offered
//! against achieved rate, and latency, by step).

use std::fmt::Write;

use crate::report::Report;
use crate::report::charts::{Band, Chart, PALETTE, Series, XAxis, band_chart, esc, line_chart};
use crate::report::planning::{KNEE_HEADINGS, forecast_rows, knee_rows};

pub(super) fn forecast(s: &mut String, r: &Report) -> std::fmt::Result {
    if let Some(e) = &r.forecast_error {
        write!(
            s,
            "<section id=\"forecast\"><h2>Forecast</h2><p class=\"note\">No forecast: {}</p></section>",
            esc(e)
        )?;
    }
    let Some(f) = &r.forecast else {
        return Ok(());
    };
    write!(
        s,
        "<section id=\"forecast\"><h2>Forecast: {} files</h2><p>The job's figures, from a sample of <b>{}</b> of its {} batches ({} runs, {} seen terminal). Each figure has a 95&nbsp;% prediction interval for one run of the job ({} bootstrap replicates over the sample's batches).</p><table><thead><tr><th>figure</th><th>estimate</th><th>95&nbsp;% interval</th></tr></thead><tbody>",
        f.files, f.sample_batches, f.batches, f.sample_runs, f.sample_terminal, f.replicates
    )?;
    for [a, b, c] in forecast_rows(f) {
        write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&a),
            esc(&b),
            esc(&c)
        )?;
    }
    s.push_str("</tbody></table>");
    // Minutes read better than seconds once a job is long.
    let (unit, div) = if f.time_s.high > 7200.0 {
        ("h", 3600.0)
    } else if f.time_s.high > 120.0 {
        ("min", 60.0)
    } else {
        ("s", 1.0)
    };
    let title = format!(
        "Projected completion: time until each share of the job's runs is terminal ({unit}{})",
        f.time_scale
            .filter(|t| (t - 1.0).abs() > f64::EPSILON)
            .map_or(String::new(), |t| format!(", at time scale {t}"))
    );
    let band = Band {
        name: "95 % interval".into(),
        points: f
            .curve
            .iter()
            .map(|p| (p.share * 100.0, p.at_s.low / div, p.at_s.high / div))
            .collect(),
        color: PALETTE[0],
    };
    let estimate = Series {
        name: "estimate".into(),
        points: f
            .curve
            .iter()
            .map(|p| (p.share * 100.0, p.at_s.estimate / div))
            .collect(),
        color: PALETTE[0],
        markers: false,
    };
    s.push_str(&band_chart(
        &Chart {
            id: "forecast-curve",
            title: &title,
            x_label: "runs terminal (% of the job)",
            y_label: unit,
            x_axis: XAxis::Linear,
        },
        Some(&band),
        &[
            estimate,
            // Only for the legend: the band's own swatch.
            Series {
                name: "95 % interval".into(),
                points: Vec::new(),
                color: PALETTE[0],
                markers: false,
            },
        ],
    ));
    s.push_str("<p>It rests on these assumptions:</p><ul>");
    for a in &f.assumptions {
        write!(s, "<li>{}</li>", esc(a))?;
    }
    s.push_str("</ul></section>");
    Ok(())
}

pub(super) fn knee(s: &mut String, r: &Report) -> std::fmt::Result {
    let Some(k) = &r.knee else {
        return Ok(());
    };
    write!(
        s,
        "<section id=\"knee\"><h2>Knee</h2><p><b>{}</b></p><p class=\"muted\">Each step offered one rate for {:.1}&nbsp;s of {} input(s) per batch; a step held while: {}. Method: {}. The report's other sections show the highest step that held.</p>",
        esc(&k.headline()),
        k.step_s,
        k.inputs_per_batch,
        esc(&k.slo.join("; ")),
        esc(&k.method)
    )?;
    let mut steps: Vec<&crate::report::knee::Step> = k.steps.iter().collect();
    steps.sort_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s));
    let n = k.inputs_per_batch.max(1) as f64;
    let by = |f: &dyn Fn(&crate::report::knee::Step) -> Option<f64>| -> Vec<(f64, f64)> {
        steps
            .iter()
            .filter_map(|st| f(st).map(|v| (st.offered_per_s, v)))
            .collect()
    };
    let mut rates = vec![
        Series {
            name: "offered".into(),
            points: by(&|st| Some(st.offered_per_s)),
            color: PALETTE[5],
            markers: false,
        },
        Series {
            name: "accepted".into(),
            points: by(&|st| Some(st.accepted_per_s)),
            color: PALETTE[0],
            markers: true,
        },
    ];
    if steps.iter().any(|st| st.finished_files_per_s > 0.0) {
        rates.push(Series {
            name: "finished".into(),
            points: by(&|st| Some(st.finished_files_per_s / n)),
            color: PALETTE[2],
            markers: true,
        });
    }
    s.push_str(&line_chart(
        &Chart {
            id: "knee-rates",
            title: "Offered against achieved rate, by step (batches/s)",
            x_label: "offered batches/s",
            y_label: "batches/s",
            x_axis: XAxis::Linear,
        },
        &rates,
    ));
    let mut latency = vec![
        Series {
            name: "submit p50".into(),
            points: by(&|st| Some(st.submit_p50_ms)),
            color: PALETTE[0],
            markers: true,
        },
        Series {
            name: "submit p99".into(),
            points: by(&|st| Some(st.submit_p99_ms)),
            color: PALETTE[1],
            markers: true,
        },
    ];
    if steps.iter().any(|st| st.e2e_p95_ms.is_some()) {
        latency.push(Series {
            name: "e2e p95".into(),
            points: by(&|st| st.e2e_p95_ms),
            color: PALETTE[4],
            markers: true,
        });
    }
    s.push_str(&line_chart(
        &Chart {
            id: "knee-latency",
            title: "Latency by step (ms)",
            x_label: "offered batches/s",
            y_label: "ms",
            x_axis: XAxis::Linear,
        },
        &latency,
    ));
    s.push_str("<table><thead><tr>");
    for h in KNEE_HEADINGS {
        write!(s, "<th>{}</th>", esc(h))?;
    }
    s.push_str("</tr></thead><tbody>");
    for (row, step) in knee_rows(k).iter().zip(&k.steps) {
        write!(
            s,
            "<tr class=\"{}\">",
            if step.held { "held" } else { "broke" }
        )?;
        for cell in row {
            write!(s, "<td>{}</td>", esc(cell))?;
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></section>");
    Ok(())
}
