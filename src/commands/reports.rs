//! The commands that work on saved reports rather than on a target: `report` (render a
//! report.json again), `compare` (two runs) and `merge` (shards). Each reads JSON reports
//! with a clear error naming the file, and returns an exit code.

use crate::commands::stdout::{say, sayln, tell};
use std::path::{Path, PathBuf};

use crate::cli::ReportFormat;
use batchproof::report::{self, Format, Report};
use batchproof::run::exit;

fn read(path: &Path) -> Result<Report, u8> {
    report::json::read(path).map_err(|e| {
        tell!("error: {e:#}");
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
            tell!("error: rendering {}: {e:#}", path.display());
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
                tell!("error: writing {}: {e}", o.display());
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
    allow_different: bool,
) -> u8 {
    let Some(relative) = ratio(tolerance).filter(|v| *v >= 0.0) else {
        tell!("error: --tolerance `{tolerance}` is not a ratio\n  fix: write e.g. 25% or 0.25");
        return exit::INVALID;
    };
    let min_delta_ms = match batchproof::config::parse_duration(min_delta) {
        Ok(d) => d.as_secs_f64() * 1e3,
        Err(e) => {
            tell!("error: --min-delta: {e}");
            return exit::INVALID;
        }
    };
    let (b, n) = match (read(base), read(new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    if b.scenario.name != n.scenario.name {
        if !allow_different {
            tell!(
                "error: {} and {} are runs of different scenarios (`{}` and `{}`): their figures are not like for like\n  fix: compare two runs of one scenario, or pass --allow-different",
                base.display(),
                new.display(),
                b.scenario.name,
                n.scenario.name
            );
            return exit::INVALID;
        }
        tell!(
            "warning: comparing different scenarios (`{}` and `{}`)",
            b.scenario.name,
            n.scenario.name
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
        Err(e) => tell!("warning: writing the comparison to {}: {e}", dir.display()),
    }
    // A side that measured nothing, or did not finish, says nothing about a regression:
    // "no regression" over it would be a pass the data never gave.
    if !c.unfit.is_empty() {
        for why in &c.unfit {
            tell!("error: not comparable: {why}");
        }
        return exit::ABORTED;
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
    merge_reports(reports, out, partial)
}

/// `batchproof merge --shards DIR`: every shard run folder in `dir`, a shard killed before
/// its report (an evicted pod) first resumed from its journal — collecting, never
/// submitting — or, where that cannot be done, reported from its journal as incomplete
/// (then the merge is not passed, and says which shard).
/// How long `merge --shards` waits for the shard set, and for how many shards.
pub struct Waiting {
    pub wait: std::time::Duration,
    pub expect: Option<u64>,
}

/// The shard indexes with a folder in `dir` (a report or a journal).
fn shards_present(dir: &Path) -> std::collections::BTreeSet<u64> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let journal = p.join(batchproof::observe::journal::FILE);
            batchproof::observe::journal::read_header(&journal)
                .ok()
                .and_then(|h| h.shard)
                .or_else(|| read(&p.join("report.json")).ok().and_then(|r| r.shard))
                .map(|s| s.index)
        })
        .collect()
}

pub async fn merge_shards(
    dir: &Path,
    token_env: &str,
    out: &Path,
    partial: bool,
    when: Waiting,
) -> u8 {
    // A shard still running is waited for, never resumed as if killed (a resume would
    // delete its webhook endpoint and leave it missing its results); so is a shard whose
    // pod has not started yet, when the set's size is known.
    let until = std::time::Instant::now() + when.wait;
    let mut said = false;
    loop {
        let live: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| batchproof::observe::journal::is_live(p))
            .collect();
        let absent = when
            .expect
            .is_some_and(|n| (shards_present(dir).len() as u64) < n);
        if live.is_empty() && !absent {
            break;
        }
        if std::time::Instant::now() >= until && live.is_empty() {
            // The shards that never started are missing: the merge says which.
            if let Some(n) = when.expect.filter(|_| absent) {
                tell!(
                    "note: waited {}; {} of the {n} expected shards have a folder in {}",
                    batchproof::config::format_duration(when.wait),
                    shards_present(dir).len(),
                    dir.display()
                );
            }
            break;
        }
        if std::time::Instant::now() >= until {
            for p in &live {
                tell!(
                    "error: {} is still running (its heartbeat is fresh, it has no report yet): merging now would resume it as if it were killed",
                    p.display()
                );
            }
            tell!(
                "  fix: wait for the shards (`--wait 3h` waits for them to finish), or merge once they are done"
            );
            return exit::INVALID;
        }
        if !said {
            said = true;
            tell!(
                "note: waiting up to {} for the shards still running{}",
                batchproof::config::format_duration(when.wait),
                when.expect.map_or(String::new(), |n| format!(
                    " and for all {n} to have a folder"
                ))
            );
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    let mut folders: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("report.json").exists() || p.join("journal.txt").exists())
            .collect(),
        Err(e) => {
            tell!("error: {}: {e}", dir.display());
            return exit::INVALID;
        }
    };
    folders.sort();
    if folders.is_empty() {
        tell!(
            "error: {} holds no shard run folder (one with report.json or journal.txt)\n  fix: pass the --out folder the shards ran with",
            dir.display()
        );
        return exit::INVALID;
    }
    let mut reports = Vec::new();
    for folder in folders {
        let json = folder.join("report.json");
        let written = json
            .exists()
            .then(|| read(&json).ok())
            .flatten()
            .filter(|r| r.complete);
        let report = match written {
            Some(r) => r,
            None => match recover(&folder, token_env).await {
                Some(r) => r,
                None => return exit::ABORTED,
            },
        };
        reports.push((json.display().to_string(), report));
    }
    merge_reports(reports, out, partial)
}

/// A shard killed before its report: resumed from its journal (polling its accepted
/// batches, submitting nothing), or else its partial report from the journal alone.
async fn recover(folder: &Path, token_env: &str) -> Option<report::Report> {
    tell!(
        "note: {} has no complete report (a killed shard): resuming it from its journal, submitting nothing",
        folder.display()
    );
    let (_never, stop) = tokio::sync::watch::channel(None);
    match batchproof::resume::resume(folder, token_env, stop).await {
        Ok((r, _)) => Some(r),
        Err(e) => {
            tell!(
                "note: it cannot be resumed ({e}); its partial report from the journal is merged, marked incomplete"
            );
            match batchproof::resume::report_from_journal(folder) {
                Ok((r, _)) => Some(r),
                Err(e) => {
                    tell!("error: {}: {e}", folder.display());
                    None
                }
            }
        }
    }
}

fn merge_reports(reports: Vec<(String, report::Report)>, out: &Path, partial: bool) -> u8 {
    let merged = match report::merge::merge(&reports, partial) {
        Ok(m) => m,
        Err(e) => {
            tell!("error: {e:#}");
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
            tell!("error: writing {}: {e:#}", out.display());
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
