//! The commands that work on saved reports rather than on a target: `report` (render a
//! report.json again), `compare` (two runs) and `merge` (shards). Each reads JSON reports
//! with a clear error naming the file, and returns an exit code.

use crate::commands::stdout::{say, sayln};
use std::path::{Path, PathBuf};

use crate::cli::ReportFormat;
use batchproof::report::{self, Format, Report};
use batchproof::run::exit;

fn read(path: &Path) -> Result<Report, u8> {
    report::json::read(path).map_err(|e| {
        eprintln!("error: {e:#}");
        exit::INVALID
    })
}

fn format_of(f: ReportFormat) -> &'static dyn Format {
    match f {
        ReportFormat::Html => &report::html::Html,
        ReportFormat::Md => &report::markdown::Markdown,
        ReportFormat::Junit => &report::junit::JunitXml,
        ReportFormat::Json => &report::json::Json,
    }
}

/// `batchproof report`.
pub fn render(path: &Path, format: ReportFormat, out: Option<&Path>) -> u8 {
    let r = match read(path) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let text = match format_of(format).render(&r) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: rendering {}: {e:#}", path.display());
            return exit::ABORTED;
        }
    };
    match out {
        None => {
            say!("{text}");
            exit::PASSED
        }
        Some(o) => match std::fs::write(o, text) {
            Ok(()) => {
                sayln!("report: {}", o.display());
                exit::PASSED
            }
            Err(e) => {
                eprintln!("error: writing {}: {e}", o.display());
                exit::ABORTED
            }
        },
    }
}

fn ratio(s: &str) -> Option<f64> {
    let s = s.trim();
    match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok().map(|v| v / 100.0),
        None => s.parse().ok(),
    }
}

/// `batchproof compare`: exit 1 on a regression.
pub fn compare(
    base: &Path,
    new: &Path,
    tolerance: &str,
    min_delta: &str,
    out: Option<&Path>,
) -> u8 {
    let Some(relative) = ratio(tolerance).filter(|v| *v >= 0.0) else {
        eprintln!("error: --tolerance `{tolerance}` is not a ratio\n  fix: write e.g. 25% or 0.25");
        return exit::INVALID;
    };
    let min_delta_ms = match batchproof::config::parse_duration(min_delta) {
        Ok(d) => d.as_secs_f64() * 1e3,
        Err(e) => {
            eprintln!("error: --min-delta: {e}");
            return exit::INVALID;
        }
    };
    let (b, n) = match (read(base), read(new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    if b.scenario.name != n.scenario.name {
        eprintln!(
            "warning: comparing different scenarios (`{}` and `{}`)",
            b.scenario.name, n.scenario.name
        );
    }
    let c = report::compare::compare(
        &b,
        &n,
        &base.display().to_string(),
        &new.display().to_string(),
        report::compare::Tolerance {
            relative,
            min_delta_ms,
        },
    );
    let md = report::compare::markdown(&c);
    say!("{md}");
    let dir: PathBuf = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| new.parent().map(Path::to_path_buf).unwrap_or_default());
    let written = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(dir.join("compare.md"), &md))
        .and_then(|_| std::fs::write(dir.join("compare.html"), report::compare::html(&c)));
    match written {
        Ok(()) => sayln!("\ncompare: {}", dir.join("compare.html").display()),
        Err(e) => eprintln!("warning: writing the comparison to {}: {e}", dir.display()),
    }
    if c.regressions() > 0 {
        exit::FAILED
    } else {
        exit::PASSED
    }
}

/// `batchproof merge`: exit like `run` would on the merged figures.
pub fn merge(paths: &[PathBuf], out: &Path, partial: bool) -> u8 {
    let mut reports = Vec::new();
    for p in paths {
        match read(p) {
            Ok(r) => reports.push((p.display().to_string(), r)),
            Err(code) => return code,
        }
    }
    let merged = match report::merge::merge(&reports, partial) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::INVALID;
        }
    };
    let formats =
        report::run_formats(!merged.rules.is_empty() || !merged.verdict.thresholds.is_empty());
    match report::write_all(&merged, out, &formats) {
        Ok(paths) => {
            if let Ok(text) = report::console::Console.render(&merged) {
                sayln!("{text}");
            }
            for p in paths {
                sayln!("report: {}", p.display());
            }
        }
        Err(e) => {
            eprintln!("error: writing {}: {e:#}", out.display());
            return exit::ABORTED;
        }
    }
    if !merged.complete {
        exit::ABORTED
    } else if merged.verdict.passed {
        exit::PASSED
    } else {
        exit::FAILED
    }
}
