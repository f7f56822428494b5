//! After a run was killed: `report --from-journal DIR` writes the partial report from the
//! journal it left, and `resume DIR` finishes it — rebuilds the accounting from the
//! journal, then collects the results of the batches that were already accepted by
//! polling them by batchId, **without submitting anything** (against a paid API those
//! batches are already paid for), and writes a complete report over the partial one.
//!
//! Webhooks are not awaited on a resume: the endpoint the dead run registered delivered
//! to a receiver that no longer exists, and a new one would receive only events not yet
//! delivered. Polling reads every run's status whatever happened to its webhook.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::api::client::Client;
use crate::load::inputs::InputFactory;
use crate::metrics::HttpMetrics;
use crate::observe::journal::{self, Replay};
use crate::observe::poller::Poller;
use crate::observe::{BatchOutcome, Journal, Ledger};
use crate::report::Report;
use crate::run::{RunError, Span};
use crate::scenario::{PollResults, Scenario, Target};

/// A journal's run, read back: its scenario and its rebuilt ledger.
struct Rebuilt {
    replay: Replay,
    scenario: Arc<Scenario>,
    ledger: Ledger,
    started_at: chrono::DateTime<chrono::Utc>,
    /// µs after the start of the last thing the journal recorded.
    last_us: u64,
}

fn rebuild(dir: &Path, start: impl FnOnce(Duration) -> Instant) -> Result<Rebuilt, RunError> {
    let replay = journal::read(&dir.join(journal::FILE)).map_err(|e| {
        RunError::Invalid(format!(
            "{e}\n  fix: pass the report folder of a run (it holds {})",
            journal::FILE
        ))
    })?;
    let h = &replay.header;
    // The journal recorded the URL, so `url: ${TARGET_URL}` needs no environment now.
    let scenario = Scenario::from_text_at(
        Path::new(&h.scenario_file),
        &h.scenario_text,
        Some(&h.target_url),
    )
    .map_err(|e| RunError::Invalid(format!("the journal's scenario: {e}")))?;
    let started_at = chrono::DateTime::parse_from_rfc3339(&h.started_at)
        .map_err(|e| {
            RunError::Invalid(format!("the journal's start time {:?}: {e}", h.started_at))
        })?
        .with_timezone(&chrono::Utc);
    let last_us = replay
        .entries
        .iter()
        .map(|e| match e {
            journal::Entry::Scheduled { intended_us, .. } => *intended_us,
            journal::Entry::Settled { answered_us, .. } => *answered_us,
            journal::Entry::Result { micros, .. } => *micros,
        })
        .max()
        .unwrap_or(0);
    let collecting = scenario.results.webhooks.is_some() || scenario.results.polling.is_some();
    let mut ledger = Ledger::new(
        start(Duration::from_micros(last_us)),
        scenario.inputs.correlation_key.clone(),
        collecting,
    );
    let scenario = Arc::new(scenario);
    let factory = Arc::new(InputFactory::new(&scenario));
    ledger.set_expected_metadata(Box::new(move |b, i| factory.metadata(b, i)));
    ledger.replay(&replay.entries);
    Ok(Rebuilt {
        replay,
        scenario,
        ledger,
        started_at,
        last_us,
    })
}

/// The partial report of a killed run, from its journal alone; marked incomplete.
pub fn report_from_journal(dir: &Path) -> Result<(Report, Vec<PathBuf>), RunError> {
    let now = Instant::now();
    let r = rebuild(dir, |_| now)?;
    let mut report = crate::run::build_report(
        &r.scenario,
        &r.ledger,
        &HttpMetrics::default(),
        &r.replay.header.target_url,
        Span {
            started_at: r.started_at,
            start: r.ledger.start(),
            unsent: 0,
            interrupted: Some(format!(
                "killed; rebuilt from its journal ({} records{}): figures cover what it recorded, and request latencies were not journaled",
                r.replay.entries.len(),
                if r.replay.unreadable > 0 {
                    format!(", {} unreadable line(s) skipped", r.replay.unreadable)
                } else {
                    String::new()
                }
            )),
        },
    );
    let finished = r.started_at + chrono::Duration::microseconds(r.last_us as i64);
    report.finished_at = finished.to_rfc3339();
    report.duration_s = r.last_us as f64 / 1e6;
    report.invariants = r.ledger.judge_invariants(false);
    report.judge(&r.scenario.thresholds);
    let paths = crate::run::write_files(&report, dir, &r.scenario)?;
    Ok((report, paths))
}

/// Finishes a killed run: collects the remaining results of its accepted batches by
/// polling, never submitting, and writes the complete report into `dir`.
/// `stop` turns to `Some(reason)` to end the collection early (the report is then
/// written marked incomplete).
pub async fn resume(
    dir: &Path,
    token_env: &str,
    mut stop_rx: watch::Receiver<Option<String>>,
) -> Result<(Report, Vec<PathBuf>), RunError> {
    // The ledger's clock starts when the dead run started, so a result collected now
    // counts its whole wait, the time the run was dead included (when this machine's
    // monotonic clock reaches back that far; else the dead time is left out).
    let now = Instant::now();
    let r = rebuild(dir, |last_us| {
        let behind = journal_age(dir).unwrap_or(last_us);
        now.checked_sub(behind.max(last_us))
            .or_else(|| now.checked_sub(last_us))
            .unwrap_or(now)
    })?;
    if r.replay.header.embedded_mock {
        return Err(RunError::Invalid("the run's target was the embedded mock, which died with it: there is nothing to collect\n  fix: `batchproof report --from-journal DIR` writes what the run saw".into(),
        ));
    }
    let scenario = r.scenario.clone();
    let mut ledger = r.ledger;
    let lost = settle_lost_answers(&mut ledger, now);
    ledger.poll_until_seen();
    let path = dir.join(journal::FILE);
    if let Ok(j) = Journal::append(&path) {
        ledger.set_journal(j);
    }
    let outstanding_before = ledger.outstanding();

    let base = r.replay.header.target_url.clone();
    let client = client_for(&scenario, &base, token_env)?;
    let ledger = Arc::new(Mutex::new(ledger));
    let metrics = Arc::new(Mutex::new(HttpMetrics::default()));
    let (poll_stop_tx, poll_stop_rx) = watch::channel(false);
    let poller = Poller {
        client,
        ledger: ledger.clone(),
        metrics: metrics.clone(),
        config: scenario.results.polling.clone().unwrap_or(PollResults {
            interval: Duration::from_secs(1),
            page_size: 1000,
            get_concurrency: 8,
        }),
        version: scenario.api_version,
    };
    tracing::info!(
        outstanding = outstanding_before,
        lost_answers = lost.len(),
        "resuming: polling the accepted batches for their remaining results"
    );
    let poller = tokio::spawn(poller.run(poll_stop_rx));
    let deadline = Instant::now() + scenario.results.deadline;
    while ledger.lock().expect("ledger").outstanding() > 0 && Instant::now() < deadline {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop_rx.wait_for(|s| s.is_some()) => break,
        }
    }
    let _ = poll_stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), poller).await;
    let interrupted = stop_rx.borrow().clone();
    let ledger = ledger.lock().expect("ledger");
    let metrics = metrics.lock().expect("metrics");
    let mut report = crate::run::build_report(
        &scenario,
        &ledger,
        &metrics,
        &base,
        Span {
            started_at: r.started_at,
            start: ledger.start(),
            unsent: 0,
            interrupted,
        },
    );
    report.invariants = ledger.judge_invariants(report.complete);
    report.resources = None;
    report.judge(&scenario.thresholds);
    report.resumed = Some(format!(
        "killed, then resumed from its journal: {} accepted batches read back, {} results collected by polling without resubmitting anything, {} batch(es) whose answer the kill lost reported as possible duplicates",
        ledger
            .batches()
            .iter()
            .filter(|b| matches!(b.outcome, BatchOutcome::Accepted { .. }))
            .count(),
        outstanding_before - ledger.outstanding(),
        lost.len()
    ));
    let paths = crate::run::write_files(&report, dir, &scenario)?;
    Ok((report, paths))
}

/// Batches whose answer the kill lost may exist at the target: each is settled as a
/// possible duplicate, never "accepted". Returns their indices.
fn settle_lost_answers(ledger: &mut Ledger, now: Instant) -> Vec<u64> {
    let lost: Vec<u64> = ledger
        .batches()
        .iter()
        .filter(|b| b.outcome == BatchOutcome::Pending)
        .map(|b| b.index)
        .collect();
    for index in &lost {
        ledger.settle_batch(
            *index,
            BatchOutcome::PossibleDuplicate {
                reason: "its answer was lost when the run was killed".into(),
            },
            now,
            0,
        );
    }
    lost
}

/// A client for the journaled target, with the API key from `token_env`.
fn client_for(scenario: &Scenario, base: &str, token_env: &str) -> Result<Client, RunError> {
    let token = std::env::var(token_env).map_err(|_| {
        RunError::Invalid(format!("environment variable `{token_env}` (the API key) is not set\n  fix: export {token_env}=sk_… or pass --token-env NAME"),
        )
    })?;
    let workspace = match &scenario.target {
        Target::Url { workspace_id, .. } => workspace_id.clone(),
        Target::Mock { .. } => None,
    };
    Client::new(
        base,
        Some(token),
        Some(scenario.api_version),
        workspace,
        scenario.load.request_timeout,
        16,
    )
    .map(|c| c.paced(&scenario.pacing_limits()))
    .map_err(|e| RunError::Aborted(format!("building the HTTP client: {e}")))
}

/// How long ago the journaled run started, from the header's wall-clock start.
fn journal_age(dir: &Path) -> Option<Duration> {
    let header = journal::read_header(&dir.join(journal::FILE)).ok()?;
    let started = chrono::DateTime::parse_from_rfc3339(&header.started_at).ok()?;
    (chrono::Utc::now() - started.with_timezone(&chrono::Utc))
        .to_std()
        .ok()
}
