//! The journal: what a run has seen, appended to its report folder as it happens, so a run
//! that is killed (OOM, a drained node, `kill -9`) loses nothing it saw. `report
//! --from-journal` rebuilds the partial report from it; `resume` rebuilds the ledger and
//! collects the remaining results of batches that were already accepted, without sending
//! any batch again (against a paid API they are already paid for).
//!
//! Text, one record a line, so a line cut short by a kill is detectable and skipped:
//!
//! ```text
//! batchproof-journal v1 {header JSON}
//! S <batch index> <inputs> <intended µs>                         a batch is scheduled
//! B <batch index> <answered µs> <throttles> <outcome JSON>       its outcome (with batchId)
//! R <batch index> <input index> <w|p> <STATUS> <µs> <run id>     a run first seen terminal
//! ```
//!
//! Times are µs after the run's start. An outcome is written through at once (an accepted
//! batch's id is what a resume needs most); results are buffered and flushed at least once
//! a second. A result line is ~60 bytes, at most two per input (one per channel).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{BatchOutcome, Channel};
use crate::api::RunStatus;

pub const FILE: &str = "journal.txt";
const MAGIC: &str = "batchproof-journal v1 ";

/// What a journal needs to be read back on its own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// The scenario file as named on the command line, and its text as run.
    pub scenario_file: String,
    pub scenario_text: String,
    /// The target's base URL; `embedded_mock` when it was the in-process mock (which died
    /// with the run, so there is nothing to resume).
    pub target_url: String,
    pub embedded_mock: bool,
    /// Wall-clock start of the run (RFC 3339).
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::scenario::Shard>,
}

/// Appends to a run's journal. Write errors are remembered, not fatal: a full disk must
/// not stop the load, but the report says the journal is incomplete.
pub struct Journal {
    out: BufWriter<File>,
    pub path: PathBuf,
    pub error: Option<String>,
}

impl Journal {
    /// Starts a new journal in `dir` (created if needed) with its header.
    pub fn create(dir: &Path, header: &Header) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        let mut out = BufWriter::with_capacity(1 << 16, File::create(&path)?);
        writeln!(out, "{MAGIC}{}", serde_json::to_string(header)?)?;
        out.flush()?;
        Ok(Journal {
            out,
            path,
            error: None,
        })
    }

    /// Goes on appending to an existing journal (a resume).
    pub fn append(path: &Path) -> std::io::Result<Journal> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Journal {
            out: BufWriter::with_capacity(1 << 16, file),
            path: path.to_path_buf(),
            error: None,
        })
    }

    fn line(&mut self, args: std::fmt::Arguments) {
        if let Err(e) = self.out.write_fmt(args) {
            self.error.get_or_insert_with(|| e.to_string());
        }
    }

    pub fn scheduled(&mut self, index: u64, inputs: u64, intended_us: u64) {
        self.line(format_args!("S {index} {inputs} {intended_us}\n"));
    }

    pub fn settled(
        &mut self,
        index: u64,
        answered_us: u64,
        throttles: u32,
        outcome: &BatchOutcome,
    ) {
        let outcome = serde_json::to_string(outcome).unwrap_or_else(|_| "{}".into());
        self.line(format_args!(
            "B {index} {answered_us} {throttles} {outcome}\n"
        ));
        // Written through: a batch id lost here would be a batch paid for and never read.
        self.flush();
    }

    pub fn result(
        &mut self,
        batch: u64,
        input: u64,
        channel: Channel,
        status: RunStatus,
        micros: u64,
        run_id: &str,
    ) {
        let ch = match channel {
            Channel::Webhook => 'w',
            Channel::Poll => 'p',
        };
        self.line(format_args!(
            "R {batch} {input} {ch} {} {micros} {run_id}\n",
            status.as_str()
        ));
    }

    pub fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            self.error.get_or_insert_with(|| e.to_string());
        }
    }
}

/// One record read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Scheduled {
        index: u64,
        inputs: u64,
        intended_us: u64,
    },
    Settled {
        index: u64,
        answered_us: u64,
        throttles: u32,
        outcome: BatchOutcome,
    },
    Result {
        batch: u64,
        input: u64,
        channel: Channel,
        status: RunStatus,
        micros: u64,
        run_id: String,
    },
}

/// A journal read back: its header, its records in order, and how many lines could not
/// be read (a line cut short by the kill, at most one unless the file was damaged).
#[derive(Debug)]
pub struct Replay {
    pub header: Header,
    pub entries: Vec<Entry>,
    pub unreadable: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot read the journal: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a batchproof journal (its first line should start `{MAGIC}`)")]
    NotAJournal { path: String },
}

/// The header alone.
pub fn read_header(path: &Path) -> Result<Header, ReadError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut first = String::new();
    BufReader::new(file)
        .read_line(&mut first)
        .map_err(|source| ReadError::Io {
            path: shown.clone(),
            source,
        })?;
    first
        .trim_end()
        .strip_prefix(MAGIC)
        .and_then(|h| serde_json::from_str(h).ok())
        .ok_or(ReadError::NotAJournal { path: shown })
}

pub fn read(path: &Path) -> Result<Replay, ReadError> {
    let shown = path.display().to_string();
    let io = |source| ReadError::Io {
        path: shown.clone(),
        source,
    };
    let mut lines = BufReader::new(File::open(path).map_err(io)?).lines();
    let first = lines.next().transpose().map_err(io)?.unwrap_or_default();
    let header: Header = first
        .strip_prefix(MAGIC)
        .and_then(|h| serde_json::from_str(h).ok())
        .ok_or_else(|| ReadError::NotAJournal {
            path: shown.clone(),
        })?;
    let mut entries = Vec::new();
    let mut unreadable = 0;
    for line in lines {
        let line = line.map_err(io)?;
        match parse(&line) {
            Some(e) => entries.push(e),
            None => unreadable += 1,
        }
    }
    Ok(Replay {
        header,
        entries,
        unreadable,
    })
}

fn parse(line: &str) -> Option<Entry> {
    let mut f = line.splitn(7, ' ');
    let kind = f.next()?;
    let mut num = || f.next()?.parse::<u64>().ok();
    match kind {
        "S" => Some(Entry::Scheduled {
            index: num()?,
            inputs: num()?,
            intended_us: num()?,
        }),
        "B" => {
            let (index, answered_us, throttles) = (num()?, num()?, num()?);
            let rest = line.splitn(5, ' ').nth(4)?;
            Some(Entry::Settled {
                index,
                answered_us,
                throttles: u32::try_from(throttles).ok()?,
                outcome: serde_json::from_str(rest).ok()?,
            })
        }
        "R" => {
            let (batch, input) = (num()?, num()?);
            let channel = match f.next()? {
                "w" => Channel::Webhook,
                "p" => Channel::Poll,
                _ => return None,
            };
            let status = RunStatus::parse(f.next()?)?;
            let micros = f.next()?.parse().ok()?;
            let run_id = f.next()?.to_string();
            (!run_id.is_empty() && !run_id.contains(' ')).then_some(Entry::Result {
                batch,
                input,
                channel,
                status,
                micros,
                run_id,
            })
        }
        _ => None,
    }
}

impl super::Ledger {
    /// Rebuilds the accounting from a journal's records, as if the run were seeing them
    /// again: batches registered in their order, outcomes settled, results observed at
    /// their recorded times (µs after `self.start`). Records that name a batch or input the
    /// journal never scheduled are counted as faults, never skipped.
    pub fn replay(&mut self, entries: &[Entry]) {
        let saved = self.journal.take();
        let at = |start: std::time::Instant, us: u64| start + std::time::Duration::from_micros(us);
        for e in entries {
            match e {
                Entry::Scheduled {
                    index,
                    inputs,
                    intended_us,
                } => {
                    self.add_batch(*index, at(self.start, *intended_us), *inputs);
                }
                Entry::Settled {
                    index,
                    answered_us,
                    throttles,
                    outcome,
                } => self.settle_batch(
                    *index,
                    outcome.clone(),
                    at(self.start, *answered_us),
                    *throttles,
                ),
                Entry::Result {
                    batch,
                    input,
                    channel,
                    status,
                    micros,
                    run_id,
                } => {
                    let seq = self
                        .batch_position(*batch)
                        .map(|p| &self.batches[p])
                        .filter(|b| *input < u64::from(b.inputs) && self.track_inputs)
                        .map(|b| b.first_seq + input);
                    match seq {
                        Some(seq) => {
                            self.observe(seq, run_id, *status, at(self.start, *micros), *channel)
                        }
                        None => self.faults.record(
                            super::Invariant::SeenOrMissing,
                            format!("the journal has a result for batch #{batch} input {input}, which it never scheduled"),
                        ),
                    }
                }
            }
        }
        self.journal = saved;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_cut_line_is_counted_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let header = Header {
            scenario_file: "s.yaml".into(),
            scenario_text: "name: s\n".into(),
            target_url: "http://127.0.0.1:1".into(),
            embedded_mock: false,
            started_at: "2026-11-30T00:00:00Z".into(),
            shard: None,
        };
        let mut j = Journal::create(dir.path(), &header).unwrap();
        j.scheduled(3, 2, 1500);
        j.settled(
            3,
            2500,
            1,
            &BatchOutcome::Accepted {
                batch_id: "batch_a b".into(),
            },
        );
        j.result(
            3,
            1,
            Channel::Poll,
            RunStatus::NeedsReview,
            9000,
            "workflow_run_x",
        );
        j.flush();
        drop(j);
        // A kill in the middle of a line.
        let path = dir.path().join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"R 3 0 w PROCE").unwrap();
        let r = read(&path).unwrap();
        assert_eq!(r.header, header);
        assert_eq!(r.unreadable, 1);
        assert_eq!(
            r.entries,
            vec![
                Entry::Scheduled {
                    index: 3,
                    inputs: 2,
                    intended_us: 1500
                },
                Entry::Settled {
                    index: 3,
                    answered_us: 2500,
                    throttles: 1,
                    outcome: BatchOutcome::Accepted {
                        batch_id: "batch_a b".into()
                    }
                },
                Entry::Result {
                    batch: 3,
                    input: 1,
                    channel: Channel::Poll,
                    status: RunStatus::NeedsReview,
                    micros: 9000,
                    run_id: "workflow_run_x".into()
                },
            ]
        );
    }
}
