//! The forecast's and the knee's figures as rows a reader scans: shared by the Markdown
//! and HTML reports so both show the same numbers in the same words.

use super::forecast::{Forecast, Interval, with_real as time};
use super::knee::{Knee, sig};

/// The forecast as (figure, estimate, 95 % interval) rows.
pub fn forecast_rows(f: &Forecast) -> Vec<[String; 3]> {
    let ts = f.time_scale;
    let t = |i: &Interval| {
        [
            time(i.estimate, ts),
            format!("{} – {}", time(i.low, ts), time(i.high, ts)),
        ]
    };
    let mut rows = Vec::new();
    let [e, i] = t(&f.time_s);
    rows.push(["every run terminal".to_string(), e, i]);
    let [e, i] = t(&f.submit_s);
    rows.push(["every batch submitted".to_string(), e, i]);
    let scale = ts.unwrap_or(1.0);
    rows.push([
        format!("pace (set by {})", f.bound.as_str()),
        format!(
            "{} runs/min",
            sig(f.pace_runs_per_s.estimate * 60.0 / scale)
        ),
        format!(
            "{} – {} runs/min",
            sig(f.pace_runs_per_s.low * 60.0 / scale),
            sig(f.pace_runs_per_s.high * 60.0 / scale)
        ),
    ]);
    match &f.credits {
        Some(c) => rows.push([
            match &f.credits_source {
                Some(s) if !s.is_real() => {
                    "credits (SIMULATED by the mock: not a real cost)".into()
                }
                Some(crate::report::CreditsSource::Calibrated { as_of, .. }) => {
                    format!("credits (the account's, calibrated {as_of})")
                }
                _ => "credits".into(),
            },
            format!("{:.0}", c.estimate),
            format!("{:.0} – {:.0}", c.low, c.high),
        ]),
        None => rows.push([
            "credits".into(),
            "not reported by the target".into(),
            "–".into(),
        ]),
    }
    for s in &f.shares {
        rows.push([
            s.status.clone(),
            format!(
                "{:.2} % (≈ {:.0} runs)",
                s.share.estimate * 100.0,
                s.count.estimate
            ),
            format!(
                "{:.2} – {:.2} % ({:.0} – {:.0} runs)",
                s.share.low * 100.0,
                s.share.high * 100.0,
                s.count.low,
                s.count.high
            ),
        ]);
    }
    for (p, i) in &f.e2e_s {
        let [e, r] = t(i);
        rows.push([format!("end to end {p}"), e, r]);
    }
    rows
}

/// One line per knee step: offered, accepted, finished, 429s, submit p50/p99, e2e p95,
/// and whether it held.
pub fn knee_rows(k: &Knee) -> Vec<[String; 8]> {
    k.steps
        .iter()
        .map(|s| {
            [
                sig(s.offered_per_s),
                sig(s.accepted_per_s),
                if s.finished_files_per_s == 0.0 && s.e2e_p95_ms.is_none() {
                    "–".into()
                } else {
                    sig(s.finished_files_per_s)
                },
                s.throttles.to_string(),
                crate::config::format_ms(s.submit_p50_ms),
                crate::config::format_ms(s.submit_p99_ms),
                s.e2e_p95_ms.map_or("–".into(), crate::config::format_ms),
                if s.held {
                    "held".into()
                } else {
                    format!("broke: {}", s.reasons.join("; "))
                },
            ]
        })
        .collect()
}

pub const KNEE_HEADINGS: [&str; 8] = [
    "offered batches/s",
    "accepted batches/s",
    "finished files/s",
    "429s",
    "submit p50",
    "submit p99",
    "e2e p95",
    "result",
];
