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

/// `batchproof checks`: the contract rules, then the client rules `grade` judges; a
/// family narrows it to one.
pub fn checks(json: bool, family: Option<&str>) -> u8 {
    let contract: Vec<serde_json::Value> =
        serde_json::from_str(&batchproof::checks::listing(true)).unwrap_or_default();
    let client: Vec<serde_json::Value> = batchproof::grade::rules::catalogue()
        .map(|[id, title, provenance, basis, exercised_by]| {
            serde_json::json!({
                "id": id,
                "family": "client",
                "title": title,
                "severity": "error",
                "provenance": provenance,
                "basis": basis,
                "exercised_by": exercised_by,
                "judged_by": "batchproof grade",
            })
        })
        .collect();
    let known: std::collections::BTreeSet<&str> = contract
        .iter()
        .chain(&client)
        .filter_map(|r| r["family"].as_str())
        .collect();
    if let Some(f) = family.filter(|f| !known.contains(f)) {
        tell!(
            "error: no rule family `{f}`\n  fix: one of {}",
            known.into_iter().collect::<Vec<_>>().join(", ")
        );
        return exit::INVALID;
    }
    let wanted = |r: &&serde_json::Value| family.is_none_or(|f| r["family"] == f);
    if json {
        let all: Vec<&serde_json::Value> = contract.iter().chain(&client).filter(wanted).collect();
        sayln!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return exit::PASSED;
    }
    if family.is_none_or(|f| f != "client") {
        let text = batchproof::checks::listing(false);
        match family {
            None => stdout::say!("{text}"),
            // The text listing is in family blocks: keep the one asked for.
            Some(f) => {
                let block = text
                    .split("\n\n")
                    .chain(std::iter::once(""))
                    .find(|b| b.trim_start().starts_with(&format!("{f}\n")))
                    .unwrap_or("");
                stdout::say!("\n{block}\n");
            }
        }
    }
    if family.is_none_or(|f| f == "client") {
        sayln!("\nclient (judged by `batchproof grade` on what a client integration does)");
        for r in client.iter() {
            sayln!(
                "  {:<32} error  {}\n  {:<32}        {}: {}\n  {:<32}        exercised by {}",
                r["id"].as_str().unwrap_or_default(),
                r["title"].as_str().unwrap_or_default(),
                "",
                r["provenance"].as_str().unwrap_or_default(),
                r["basis"].as_str().unwrap_or_default(),
                "",
                r["exercised_by"].as_str().unwrap_or_default()
            );
        }
    }
    exit::PASSED
}

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
