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
//! R <batch index> <input index> <w|p> <STATUS> <µs> <run id> [<credits>]
//!                                                                a run first seen terminal
//! C <batch index> <input index> <credits>                        credits shown later
//! W {webhook counters JSON}                                      the receiver's counts so far
//! ```
//!
//! Times are µs after the run's start. An outcome is written through at once (an accepted
//! batch's id is what a resume needs most); results are buffered and flushed at least once
//! a second. A result line is ~60 bytes, at most two per input (one per channel); it ends
//! with the run's credits when that sighting is the one that credits the input (a line
//! of an older journal without them still reads). The webhook counters are written as a
//! whole before each flush that changed them (a few hundred bytes a second at most); the
//! last one read back wins, so a resumed report counts the deliveries the dead run had.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{BatchOutcome, Channel, WebhookCounts};
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
    /// The load's batch count as run, when something other than the scenario's text set
    /// it (the budget's cap, `--max-runs`): the whole job a resume compares with what was
    /// sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_batches: Option<u64>,
    /// The budget cut the load short (the cost guard's decision, kept for the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_stop: Option<crate::scenario::BudgetStop>,
    /// The environment the scenario's `${VAR}`s took (a shard's `POD_IP`, say), so a
    /// resume elsewhere (the merge pod) reads the same scenario. Variables whose names
    /// say they hold a secret (KEY, TOKEN, SECRET, PASSWORD, CREDENTIAL) are not kept:
    /// a resume needs them set again.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    /// The nonce in the run's input tags: a resume and a merge read results by it.
    /// Empty in journals written before it existed (their tags are the bare `B:I`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_nonce: String,
}

impl Header {
    /// The values of the variables `text` refers to, but those whose names say they hold
    /// a secret.
    pub fn environment_of(text: &str) -> std::collections::BTreeMap<String, String> {
        let secret = ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"];
        text.split("${")
            .skip(1)
            .filter_map(|rest| {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let upper = name.to_ascii_uppercase();
                (!name.is_empty() && !secret.iter().any(|s| upper.contains(s)))
                    .then(|| std::env::var(&name).ok().map(|v| (name, v)))
                    .flatten()
            })
            .collect()
    }
}

/// Appends to a run's journal. Write errors are remembered, not fatal: a full disk must
/// not stop the load, but the report says the journal is incomplete.
pub struct Journal {
    out: BufWriter<File>,
    pub path: PathBuf,
    pub error: Option<String>,
    /// The webhook counters last written, so an unchanged second writes none.
    webhooks: Option<WebhookCounts>,
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
            webhooks: None,
        })
    }

    /// Goes on appending to an existing journal (a resume).
    pub fn append(path: &Path) -> std::io::Result<Journal> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Journal {
            out: BufWriter::with_capacity(1 << 16, file),
            path: path.to_path_buf(),
            error: None,
            webhooks: None,
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

    #[allow(clippy::too_many_arguments)]
    pub fn result(
        &mut self,
        batch: u64,
        input: u64,
        channel: Channel,
        status: RunStatus,
        micros: u64,
        run_id: &str,
        credits: Option<f64>,
    ) {
        let ch = match channel {
            Channel::Webhook => 'w',
            Channel::Poll => 'p',
        };
        let status = status.as_str();
        match credits {
            Some(c) => self.line(format_args!(
                "R {batch} {input} {ch} {status} {micros} {run_id} {c}\n"
            )),
            None => self.line(format_args!(
                "R {batch} {input} {ch} {status} {micros} {run_id}\n"
            )),
        }
    }

    /// Credits shown for an input after the sighting that journaled it.
    pub fn credit(&mut self, batch: u64, input: u64, credits: f64) {
        self.line(format_args!("C {batch} {input} {credits}\n"));
    }

    /// The webhook counters so far, when they changed since the last written.
    pub fn webhooks(&mut self, counts: &WebhookCounts) {
        if self.webhooks.as_ref() == Some(counts) {
            return;
        }
        let json = serde_json::to_string(counts).unwrap_or_else(|_| "{}".into());
        self.line(format_args!("W {json}\n"));
        self.webhooks = Some(counts.clone());
    }

    /// The webhook endpoint the run registered (`removed`: and deleted again), written
    /// through: after a kill, `resume` deletes an endpoint that was never removed.
    pub fn endpoint(&mut self, id: &str, removed: bool) {
        let kind = if removed { 'X' } else { 'E' };
        self.line(format_args!("{kind} {id}\n"));
        self.flush();
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
        /// The credits this sighting counted (None on older journals).
        credits: Option<f64>,
    },
    Credit {
        batch: u64,
        input: u64,
        credits: f64,
    },
    Webhooks(WebhookCounts),
    /// A webhook endpoint registered (`removed: false`) or deleted again.
    Endpoint {
        id: String,
        removed: bool,
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

/// The file a running run touches once a second beside its journal: a lease that says
/// "alive". A merge or a second start of the same shard reads its age: fresh, the run is
/// live and must not be resumed as if killed; stale, it died.
pub const HEARTBEAT: &str = "heartbeat";

/// A heartbeat older than this is a dead run's (a run beats once a second; a busy node
/// may delay a few).
pub const LIVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Beats the heartbeat of the run whose folder is `dir`.
pub fn beat(dir: &Path) {
    let now = chrono::Utc::now().to_rfc3339();
    // Written whole each time; a failed beat only makes the run look dead sooner.
    let _ = std::fs::write(dir.join(HEARTBEAT), now);
}

/// How long ago the run in `dir` last beat; None when it never did (or the file is gone).
pub fn heartbeat_age(dir: &Path) -> Option<std::time::Duration> {
    let modified = std::fs::metadata(dir.join(HEARTBEAT))
        .ok()?
        .modified()
        .ok()?;
    Some(
        std::time::SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default(),
    )
}

/// Is the run in `dir` alive: no report yet, and a heartbeat within [`LIVE_WITHIN`]?
pub fn is_live(dir: &Path) -> bool {
    !dir.join("report.json").exists() && heartbeat_age(dir).is_some_and(|a| a < LIVE_WITHIN)
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
    if let Some(json) = line.strip_prefix("W ") {
        return serde_json::from_str(json).ok().map(Entry::Webhooks);
    }
    for (prefix, removed) in [("E ", false), ("X ", true)] {
        if let Some(id) = line.strip_prefix(prefix).filter(|id| !id.contains(' ')) {
            return Some(Entry::Endpoint {
                id: id.to_string(),
                removed,
            });
        }
    }
    let mut f = line.splitn(8, ' ');
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
            let credits = match f.next() {
                Some(c) => Some(finite(c)?),
                None => None,
            };
            (!run_id.is_empty()).then_some(Entry::Result {
                batch,
                input,
                channel,
                status,
                micros,
                run_id,
                credits,
            })
        }
        "C" => {
            let (batch, input) = (num()?, num()?);
            let credits = finite(f.next()?)?;
            f.next().is_none().then_some(Entry::Credit {
                batch,
                input,
                credits,
            })
        }
        _ => None,
    }
}

fn finite(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|c| c.is_finite())
}

impl super::Ledger {
    /// Rebuilds the accounting from a journal's records, as if the run were seeing them
    /// again: batches registered in their order, outcomes settled, results observed at
    /// their recorded times (µs after `self.start`). Records that name a batch or input the
    /// journal never scheduled are counted as faults, never skipped.
    pub fn replay(&mut self, entries: &[Entry]) {
        let saved = self.journal.take();
        let mut by_webhook = 0u64;
        let seq_of = |l: &Self, batch: u64, input: u64| {
            l.batch_position(batch)
                .map(|p| &l.batches[p])
                .filter(|b| input < u64::from(b.inputs) && l.track_inputs)
                .map(|b| b.first_seq + input)
        };
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
                    credits,
                } => {
                    by_webhook += u64::from(*channel == Channel::Webhook);
                    match seq_of(self, *batch, *input) {
                        Some(seq) => self.observe(
                            seq,
                            run_id,
                            *status,
                            at(self.start, *micros),
                            *channel,
                            *credits,
                        ),
                        None => self.faults.record(
                            super::Invariant::SeenOrMissing,
                            format!("the journal has a result for batch #{batch} input {input}, which it never scheduled"),
                        ),
                    }
                }
                Entry::Credit {
                    batch,
                    input,
                    credits,
                } => {
                    if let Some(seq) = seq_of(self, *batch, *input) {
                        self.credit(seq, *credits);
                    }
                }
                Entry::Webhooks(counts) => self.webhooks = counts.clone(),
                Entry::Endpoint { .. } => {}
            }
        }
        // Every webhook result line was a verified delivery, though the counters written
        // before the kill may lag the last lines that reached the file.
        let w = &mut self.webhooks;
        w.verified = w.verified.max(by_webhook);
        w.received = w.received.max(w.verified);
        self.journal = saved;
    }
}

/// The webhook endpoint a journaled run registered and never removed, if any.
pub fn endpoint_left(entries: &[Entry]) -> Option<String> {
    let mut left = None;
    for e in entries {
        if let Entry::Endpoint { id, removed } = e {
            left = (!removed).then(|| id.clone());
        }
    }
    left
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
            load_batches: Some(8),
            budget_stop: None,
            env: Default::default(),
            run_nonce: "k3x9q2ab".into(),
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
            None,
        );
        j.result(
            3,
            0,
            Channel::Webhook,
            RunStatus::Processed,
            9500,
            "workflow_run_y",
            Some(2.5),
        );
        j.credit(3, 1, 3.0);
        let counts = WebhookCounts {
            received: 4,
            verified: 3,
            ..Default::default()
        };
        j.webhooks(&counts);
        j.webhooks(&counts);
        j.flush();
        drop(j);
        // A kill in the middle of a line.
        let path = dir.path().join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"R 3 0 w PROCE").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.matches("\nW ").count(),
            1,
            "an unchanged count is written once"
        );
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
                    run_id: "workflow_run_x".into(),
                    credits: None,
                },
                Entry::Result {
                    batch: 3,
                    input: 0,
                    channel: Channel::Webhook,
                    status: RunStatus::Processed,
                    micros: 9500,
                    run_id: "workflow_run_y".into(),
                    credits: Some(2.5),
                },
                Entry::Credit {
                    batch: 3,
                    input: 1,
                    credits: 3.0
                },
                Entry::Webhooks(counts),
            ]
        );
    }

    #[test]
    fn a_replay_restores_credits_and_webhook_counts_and_reads_older_result_lines() {
        let lines = [
            "S 0 2 100",
            r#"B 0 200 0 {"kind":"accepted","batch_id":"batch_1"}"#,
            "R 0 0 w PROCESSED 300 workflow_run_a 2.5",
            // An older journal's line: no credits.
            "R 0 1 p FAILED 400 workflow_run_b",
            "C 0 1 3",
            r#"W {"received":0,"verified":0,"rejected":{},"redeliveries":0,"unparseable":0,"other_events":0,"without_batch_id":0,"metadata_mismatch":0}"#,
        ];
        let entries: Vec<Entry> = lines.iter().map(|l| parse(l).unwrap()).collect();
        let mut ledger = super::super::Ledger::new(std::time::Instant::now(), None, true);
        ledger.replay(&entries);
        assert_eq!(ledger.credits(), (5.5, 2));
        assert_eq!(ledger.outstanding(), 0);
        // The counters written lag the webhook result line: it still counts as verified.
        assert_eq!(
            (ledger.webhooks().received, ledger.webhooks().verified),
            (1, 1)
        );
        assert_eq!(ledger.e2e().count(), 2);
    }
}
