//! Small inline-SVG line charts for the HTML report. Hand-written on purpose: the report
//! needs four kinds of plot (percentile spectra on a log axis, per-second timelines,
//! per-batch points), must render offline and print well, and a plotting crate would
//! bring a font stack for text the browser draws anyway.

use std::fmt::Write;

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: &'static str,
    /// Draw markers instead of a line (for per-batch points).
    pub markers: bool,
}

pub enum XAxis {
    Linear,
    /// x is `-log10(1 - p)`: 0 = p0, 1 = p90, 2 = p99, 3 = p99.9 …
    Percentile,
}

pub struct Chart<'a> {
    /// Stable id, used as `data-chart` (tests and links find charts by it).
    pub id: &'a str,
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_axis: XAxis,
}

pub const PALETTE: [&str; 6] = [
    "#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a",
];

const W: f64 = 760.0;
const H: f64 = 280.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 44.0;

/// Escapes text for HTML and SVG (element content and double-quoted attributes).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step for a range (1, 2 or 5 × 10^k).
fn step(range: f64, ticks: f64) -> f64 {
    let raw = (range / ticks).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn label(v: f64) -> String {
    // Whole numbers and large values without decimals.
    if v.fract() == 0.0 || v.abs() >= 10.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{:.1}", v)
    } else {
        format!("{:.2}", v)
    }
}

fn percentile_label(x: f64) -> String {
    // x = -log10(1 - p)
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    match x.round() as i64 {
        0 => "p0".into(),
        1 => "p90".into(),
        2 => "p99".into(),
        3 => "p99.9".into(),
        4 => "p99.99".into(),
        5 => "p99.999".into(),
        _ => format!("p{p:.3}"),
    }
}

/// The plotting area of one chart: the data ranges and how they map onto the SVG.
struct Frame {
    x0: f64,
    x1: f64,
    y1: f64,
    y_step: f64,
    /// Seconds and batch indices: whole x ticks only.
    integral_x: bool,
}

impl Frame {
    fn fit(chart: &Chart, all: &[(f64, f64)]) -> Frame {
        let (mut x0, mut x1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
            (a.min(*x), b.max(*x))
        });
        // An all-zero series still gets a readable axis.
        let y_max = all.iter().fold(0.0f64, |m, (_, y)| m.max(*y));
        let y_max = if y_max > 0.0 { y_max } else { 1.0 };
        if let XAxis::Percentile = chart.x_axis {
            x0 = 0.0;
            x1 = x1.ceil().max(2.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let y_step = step(y_max, 4.0);
        Frame {
            x0,
            x1,
            y1: (y_max / y_step).ceil().max(1.0) * y_step,
            y_step,
            integral_x: all.iter().all(|(x, _)| x.fract() == 0.0),
        }
    }

    fn sx(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)
    }

    fn sy(&self, y: f64) -> f64 {
        let ph = H - TOP - BOTTOM;
        TOP + ph - (y / self.y1) * ph
    }

    fn x_ticks(&self, axis: &XAxis) -> Vec<f64> {
        match axis {
            XAxis::Percentile => (0..=self.x1 as i64).map(|v| v as f64).collect(),
            XAxis::Linear => {
                let mut st = step(self.x1 - self.x0, 6.0);
                if self.integral_x {
                    st = st.max(1.0);
                }
                let mut v = (self.x0 / st).ceil() * st;
                let mut out = Vec::new();
                while v <= self.x1 + st * 0.01 {
                    out.push(v);
                    v += st;
                }
                out
            }
        }
    }
}

/// Renders a chart, or a short note when there is nothing to draw.
pub fn line_chart(chart: &Chart, series: &[Series]) -> String {
    band_chart(chart, None, series)
}

/// An interval drawn as a shaded area between its lower and upper lines (same x values).
pub struct Band {
    pub name: String,
    /// (x, low, high).
    pub points: Vec<(f64, f64, f64)>,
    pub color: &'static str,
}

/// A line chart with an optional shaded band behind its series.
pub fn band_chart(chart: &Chart, band: Option<&Band>, series: &[Series]) -> String {
    let band_points = band
        .into_iter()
        .flat_map(|b| b.points.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]));
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .chain(band_points)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if all.is_empty() {
        return format!(
            "<figure class=\"chart empty\" data-chart=\"{}\"><figcaption>{}</figcaption><p class=\"muted\">No data in this run.</p></figure>",
            esc(chart.id),
            esc(chart.title)
        );
    }
    let frame = Frame::fit(chart, &all);
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure class=\"chart\" data-chart=\"{id}\"><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-t\"><title id=\"{id}-t\">{t}</title>",
        id = esc(chart.id),
        t = esc(chart.title)
    );
    let _ = write!(
        s,
        "<text x=\"{LEFT}\" y=\"18\" class=\"ct\">{}</text>",
        esc(chart.title)
    );
    axes(&mut s, chart, &frame);
    if let Some(b) = band {
        shade(&mut s, &frame, b);
    }
    for se in series {
        plot(&mut s, &frame, se);
    }
    legend(&mut s, series);
    s.push_str("</svg></figure>");
    s
}

/// The band as one polygon: along its upper line, then back along its lower one.
fn shade(s: &mut String, frame: &Frame, b: &Band) {
    let pts: Vec<(f64, f64, f64)> = b
        .points
        .iter()
        .copied()
        .filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
        .collect();
    if pts.is_empty() {
        return;
    }
    let outline: Vec<String> = pts
        .iter()
        .map(|&(x, _, hi)| (x, hi))
        .chain(pts.iter().rev().map(|&(x, lo, _)| (x, lo)))
        .map(|(x, y)| format!("{:.1},{:.1}", frame.sx(x), frame.sy(y)))
        .collect();
    let _ = write!(
        s,
        "<polygon class=\"band\" data-band=\"{}\" fill=\"{}\" fill-opacity=\"0.18\" stroke=\"none\" points=\"{}\"><title>{}</title></polygon>",
        esc(&b.name),
        b.color,
        outline.join(" "),
        esc(&b.name)
    );
}

/// Grid, ticks, axis lines and axis labels.
fn axes(s: &mut String, chart: &Chart, frame: &Frame) {
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let mut y = 0.0;
    while y <= frame.y1 + frame.y_step * 0.01 {
        let py = frame.sy(y);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" class=\"grid\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            label(y)
        );
        y += frame.y_step;
    }
    for x in frame.x_ticks(&chart.x_axis) {
        let px = frame.sx(x);
        let text = match chart.x_axis {
            XAxis::Percentile => percentile_label(x),
            XAxis::Linear => label(x),
        };
        let _ = write!(
            s,
            "<line x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{:.1}\" class=\"grid\"/><text x=\"{px:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
            TOP + ph,
            TOP + ph + 16.0,
            esc(&text)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{b:.1}\" x2=\"{r:.1}\" y2=\"{b:.1}\" class=\"axis\"/><line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b:.1}\" class=\"axis\"/>",
        b = TOP + ph,
        r = W - RIGHT
    );
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"middle\">{}</text><text x=\"14\" y=\"{:.1}\" class=\"label\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">{}</text>",
        LEFT + pw / 2.0,
        H - 8.0,
        esc(chart.x_label),
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        esc(chart.y_label)
    );
}

/// One series, as markers or a polyline.
fn plot(s: &mut String, frame: &Frame, se: &Series) {
    let pts: Vec<(f64, f64)> = se
        .points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if pts.is_empty() {
        return;
    }
    if se.markers {
        let _ = write!(s, "<g class=\"series\" data-series=\"{}\">", esc(&se.name));
        for (x, y) in &pts {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                frame.sx(*x),
                frame.sy(*y),
                se.color
            );
        }
        s.push_str("</g>");
    } else {
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", frame.sx(*x), frame.sy(*y)))
            .collect();
        let _ = write!(
            s,
            "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" points=\"{}\"/>",
            esc(&se.name),
            se.color,
            path.join(" ")
        );
    }
}

/// A swatch and a name for every named series.
fn legend(s: &mut String, series: &[Series]) {
    let mut lx = LEFT + 8.0;
    for se in series.iter().filter(|se| !se.name.is_empty()) {
        let _ = write!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"legend\">{}</text>",
            TOP + 4.0,
            se.color,
            lx + 14.0,
            TOP + 13.0,
            esc(&se.name)
        );
        lx += 24.0 + 7.0 * se.name.chars().count() as f64;
    }
}

/// Sums consecutive points into at most `max` buckets (for hour-long timelines).
pub fn downsample(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max == 0 {
        return points;
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let x = c[0].0;
            let y = c.iter().map(|p| p.1).sum::<f64>() / c.len() as f64;
            (x, y)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_scale_points_into_the_plot_and_escape_text() {
        let svg = line_chart(
            &Chart {
                id: "t",
                title: "a < b",
                x_label: "x",
                y_label: "y",
                x_axis: XAxis::Linear,
            },
            &[Series {
                name: "s".into(),
                points: vec![(0.0, 0.0), (10.0, 8.0)],
                color: PALETTE[0],
                markers: false,
            }],
        );
        assert!(svg.contains("a &lt; b"));
        // (0,0) at the bottom-left corner of the plot, (10,8) at the top-right (8 is a whole number of y steps).
        assert!(
            svg.contains(&format!("{:.1},{:.1}", LEFT, H - BOTTOM)),
            "{svg}"
        );
        assert!(
            svg.contains(&format!("{:.1},{:.1}", W - RIGHT, TOP)),
            "{svg}"
        );
        let empty = line_chart(
            &Chart {
                id: "e",
                title: "none",
                x_label: "",
                y_label: "",
                x_axis: XAxis::Percentile,
            },
            &[],
        );
        assert!(empty.contains("No data"));
    }

    #[test]
    fn downsampling_keeps_the_mean() {
        let pts: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, 2.0)).collect();
        let d = downsample(pts, 10);
        assert_eq!(d.len(), 10);
        assert!(d.iter().all(|p| (p.1 - 2.0).abs() < 1e-9));
    }
}
