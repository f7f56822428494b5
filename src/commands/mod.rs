//! The command line's edge: one module per command group. Only this code (and `main.rs`)
//! parses clap types, prints to the terminal, handles signals and chooses exit codes; the
//! library returns values and errors.

pub mod grade;
pub mod init;
pub mod mock;
pub mod reports;
pub mod run;
pub mod signals;
pub mod stdout;

use std::path::PathBuf;

use batchproof::report::{Format, Report, console::Console};
use batchproof::run::{RunError, exit};
use stdout::{sayln, tell};

/// Prints a run's summary and the files written, or the error that kept a report from
/// existing; returns the exit code.
pub fn finish(result: Result<(Report, Vec<PathBuf>), RunError>) -> u8 {
    match result {
        Ok((report, paths)) => {
            if let Ok(text) = Console.render(&report) {
                sayln!("{text}");
            }
            for p in &paths {
                sayln!("report: {}", p.display());
            }
            if report.complete && report.batches.accepted == 0 && report.batches.unreachable > 0 {
                tell!("error: target unreachable: no batch could be sent");
            } else if let Some(why) = report
                .interrupted
                .as_deref()
                .filter(|w| w.contains("API key"))
            {
                tell!("error: {why}");
            }
            exit::for_report(&report)
        }
        Err(e) => {
            tell!("error: {e}");
            e.exit_code()
        }
    }
}
