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
use crate::report::{Report, UNSENT_LISTED};
use crate::run::plan::Plan;
use crate::run::{RunError, Span};
use crate::scenario::{PollResults, Scenario, Shard, Target};

/// A journal's run, read back: its scenario and its rebuilt ledger.
struct Rebuilt {
    replay: Replay,
    scenario: Arc<Scenario>,
    ledger: Ledger,
    started_at: chrono::DateTime<chrono::Utc>,
    /// µs after the start of the last thing the journal recorded.
    last_us: u64,
    /// The batches of the whole job the journal never shows sent.
    unsent: Unsent,
}

/// What of the job was never sent, compared with its whole schedule.
enum Unsent {
    /// Counted: how many, and the first `UNSENT_LISTED` indexes.
    Known { count: u64, indexes: Vec<u64> },
    /// A closed model with no `load.batches` sends as many batches as its clock allows:
    /// killed before its load's end, the rest of its job cannot be counted.
    CutShort { load_s: f64, killed_at_s: f64 },
}

impl Unsent {
    /// The job's batches (its shard's, when sharded) that the ledger never registered.
    fn of(scenario: &Scenario, shard: Option<Shard>, ledger: &Ledger, last_us: u64) -> Unsent {
        let Some(total) = Plan::of(scenario, None).load_batches else {
            let load = scenario.load.duration();
            return match Duration::from_micros(last_us) < load {
                true => Unsent::CutShort {
                    load_s: load.as_secs_f64(),
                    killed_at_s: last_us as f64 / 1e6,
                },
                false => Unsent::Known {
                    count: 0,
                    indexes: Vec::new(),
                },
            };
        };
        let (this, of) = shard.map_or((0, 1), |s| (s.index, s.count.max(1)));
        // A forecast's sample sends every `stride`-th batch of its job.
        let stride = scenario.sample.as_ref().map_or(1, |s| s.stride.max(1));
        let mut count = 0;
        let mut indexes = Vec::new();
        for index in (0..total).filter(|k| k % of == this).map(|k| k * stride) {
            if ledger.batch_position(index).is_none() {
                count += 1;
                if indexes.len() < UNSENT_LISTED {
                    indexes.push(index);
                }
            }
        }
        Unsent::Known { count, indexes }
    }

    /// For the report: (count, indexes), and why the load counts as cut short when it
    /// cannot be counted.
    fn span_parts(&self) -> (u64, Vec<u64>, Option<String>) {
        match self {
            Unsent::Known { count, indexes } => (*count, indexes.clone(), None),
            Unsent::CutShort {
                load_s,
                killed_at_s,
            } => (
                0,
                Vec::new(),
                Some(format!(
                    "killed {killed_at_s:.1} s into a {load_s:.0} s closed-model load: the batches it would have sent after that cannot be counted, and were never sent"
                )),
            ),
        }
    }

    fn describe(&self) -> String {
        match self {
            Unsent::Known { count: 0, .. } => "every batch of the job had been sent".into(),
            Unsent::Known { count, indexes } => format!(
                "{count} batch(es) of the job were never sent and were not sent now ({}{})",
                indexes
                    .iter()
                    .take(20)
                    .map(|i| format!("#{i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if *count > 20 { ", …" } else { "" }
            ),
            Unsent::CutShort { .. } => self.span_parts().2.unwrap_or_default(),
        }
    }
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
    let mut scenario = Scenario::from_journal(
        Path::new(&h.scenario_file),
        &h.scenario_text,
        Some(&h.target_url),
        &h.env,
    )
    .map_err(|e| RunError::Invalid(format!("the journal's scenario: {e}")))?;
    // The job as it was run: the budget's cap on the load, and the budget's stop.
    if let Some(n) = h.load_batches {
        scenario.load.batches = Some(n);
    }
    scenario.budget_stop = h.budget_stop.clone();
    scenario.inputs.run_nonce = h.run_nonce.clone();
    let started_at = chrono::DateTime::parse_from_rfc3339(&h.started_at)
        .map_err(|e| {
            RunError::Invalid(format!("the journal's start time {:?}: {e}", h.started_at))
        })?
        .with_timezone(&chrono::Utc);
    let last_us = replay
        .entries
        .iter()
        .filter_map(|e| match e {
            journal::Entry::Scheduled { intended_us, .. } => Some(*intended_us),
            journal::Entry::Settled { answered_us, .. } => Some(*answered_us),
            journal::Entry::Result { micros, .. } => Some(*micros),
            journal::Entry::Credit { .. }
            | journal::Entry::Webhooks(_)
            | journal::Entry::Endpoint { .. } => None,
        })
        .max()
        .unwrap_or(0);
    let collecting = scenario.results.webhooks.is_some() || scenario.results.polling.is_some();
    let mut ledger = Ledger::new(
        start(Duration::from_micros(last_us)),
        scenario.inputs.correlation_key.clone(),
        collecting,
    );
    ledger.set_nonce(&scenario.inputs.run_nonce);
    let scenario = Arc::new(scenario);
    let factory = Arc::new(InputFactory::new(&scenario));
    ledger.set_expected_metadata(Box::new(move |b, i| factory.metadata(b, i)));
    ledger.replay(&replay.entries);
    let unsent = Unsent::of(&scenario, replay.header.shard, &ledger, last_us);
    Ok(Rebuilt {
        replay,
        scenario,
        ledger,
        started_at,
        last_us,
        unsent,
    })
}

/// The partial report of a killed run, from its journal alone; marked incomplete.
pub fn report_from_journal(dir: &Path) -> Result<(Report, Vec<PathBuf>), RunError> {
    let now = Instant::now();
    let r = rebuild(dir, |_| now)?;
    let (unsent, unsent_indexes, _) = r.unsent.span_parts();
    let mut report = crate::run::build_report(
        &r.scenario,
        &r.ledger,
        &submit_metrics(&r.ledger),
        &r.replay.header.target_url,
        Span {
            started_at: r.started_at,
            start: r.ledger.start(),
            unsent,
            unsent_indexes,
            interrupted: Some(format!(
                "killed; rebuilt from its journal ({} records{}): figures cover what it recorded ({}); of the requests, only submissions' response times were journaled",
                r.replay.entries.len(),
                if r.replay.unreadable > 0 {
                    format!(", {} unreadable line(s) skipped", r.replay.unreadable)
                } else {
                    String::new()
                },
                r.unsent.describe()
            )),
        },
    );
    let finished = r.started_at + chrono::Duration::microseconds(r.last_us as i64);
    report.finished_at = finished.to_rfc3339();
    report.duration_s = r.last_us as f64 / 1e6;
    report.invariants = r.ledger.judge_invariants(false);
    report.shard = r.replay.header.shard;
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
    let unsent = r.unsent;
    let mut ledger = r.ledger;
    let lost = settle_lost_answers(&mut ledger, now);
    ledger.poll_until_seen();
    ledger.untimed_from_now();
    let path = dir.join(journal::FILE);
    if let Ok(j) = Journal::append(&path) {
        ledger.set_journal(j);
    }
    let outstanding_before = ledger.outstanding();

    let base = r.replay.header.target_url.clone();
    let client = client_for(&scenario, &base, token_env)?;
    let endpoint = remove_endpoint_left(&client, &r.replay.entries, &mut ledger).await;
    let metrics = Arc::new(Mutex::new(submit_metrics(&ledger)));
    let ledger = Arc::new(Mutex::new(ledger));
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
    let mut flushed = Instant::now();
    while ledger.lock().expect("ledger").outstanding() > 0 && Instant::now() < deadline {
        // What the resume collects reaches the journal at least once a second, as in a
        // run: a killed resume can be resumed again.
        if flushed.elapsed() >= Duration::from_secs(1) {
            ledger.lock().expect("ledger").flush_journal();
            flushed = Instant::now();
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop_rx.wait_for(|s| s.is_some()) => break,
        }
    }
    let _ = poll_stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), poller).await;
    let (unsent_count, unsent_indexes, cut_short) = unsent.span_parts();
    let interrupted = stop_rx.borrow().clone().or(cut_short);
    let mut ledger = ledger.lock().expect("ledger");
    if let Some((path, e)) = ledger.flush_journal() {
        tracing::warn!(path = %path.display(), "the journal is incomplete: {e}");
    }
    let metrics = metrics.lock().expect("metrics");
    let mut report = crate::run::build_report(
        &scenario,
        &ledger,
        &metrics,
        &base,
        Span {
            started_at: r.started_at,
            start: ledger.start(),
            unsent: unsent_count,
            unsent_indexes,
            interrupted,
        },
    );
    report.resumed = Some(format!(
        "killed, then resumed from its journal: {} accepted batches read back, {} results collected by polling without resubmitting anything, {} batch(es) whose answer the kill lost reported as possible duplicates; {}",
        ledger
            .batches()
            .iter()
            .filter(|b| matches!(b.outcome, BatchOutcome::Accepted { .. }))
            .count(),
        outstanding_before - ledger.outstanding(),
        lost.len(),
        unsent.describe()
    ));
    let untimed = (ledger.untimed() > 0).then(|| format!(
        "end-to-end and batch completion times leave out the {} runs first seen by the resume (when they finished, while nothing watched, is not known)",
        ledger.untimed()
    ));
    for note in [untimed, endpoint].into_iter().flatten() {
        if let Some(r) = report.resumed.as_mut() {
            r.push_str("; ");
            r.push_str(&note);
        }
    }
    report.invariants = ledger.judge_invariants(report.complete);
    report.resources = None;
    report.shard = r.replay.header.shard;
    report.judge(&scenario.thresholds);
    let paths = crate::run::write_files(&report, dir, &scenario)?;
    Ok((report, paths))
}

/// The webhook endpoint the killed run registered and never removed is deleted now, so
/// the next run on the same receiver does not get its deliveries; what was done, in words.
async fn remove_endpoint_left(
    client: &Client,
    entries: &[journal::Entry],
    ledger: &mut Ledger,
) -> Option<String> {
    let id = journal::endpoint_left(entries)?;
    let reply = client.delete(&format!("/webhook_endpoints/{id}")).await;
    let removed = reply
        .status()
        .is_some_and(|s| (200..300).contains(&s) || s == 404);
    ledger.journal_endpoint(&id, removed);
    let foreign = ledger.webhooks().foreign;
    ledger.set_endpoint(foreign, Some(id.clone()), removed);
    Some(if removed {
        format!("the webhook endpoint {id} the killed run left registered was removed")
    } else {
        format!(
            "the webhook endpoint {id} the killed run left registered could not be removed ({}): delete it by hand",
            reply.describe()
        )
    })
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

/// The submissions' response times (intended start → answer), the one request latency
/// the journal holds; schedule lag and service time were not journaled.
fn submit_metrics(ledger: &Ledger) -> HttpMetrics {
    let mut m = HttpMetrics::default();
    for b in ledger.batches() {
        if let Some(answered) = b.answered {
            m.submit
                .response
                .record(answered.saturating_duration_since(b.intended));
        }
    }
    m
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(load: &str) -> Scenario {
        let text = format!("name: t\nload:\n{load}  inputs_per_batch: 10\n");
        Scenario::from_text(Path::new("t.yaml"), &text).unwrap()
    }

    fn sent(indexes: &[u64]) -> Ledger {
        let now = Instant::now();
        let mut l = Ledger::new(now, None, true);
        for &i in indexes {
            l.add_batch(i, now, 10);
        }
        l
    }

    fn known(u: Unsent) -> (u64, Vec<u64>) {
        match u {
            Unsent::Known { count, indexes } => (count, indexes),
            Unsent::CutShort { .. } => panic!("counted"),
        }
    }

    #[test]
    fn the_unsent_are_the_schedule_less_what_was_sent_in_a_shard_and_under_a_cap() {
        let s = scenario("  phases: [{hold: 4s, rate: 2}]\n");
        assert_eq!(
            known(Unsent::of(&s, None, &sent(&[0, 1, 2, 3, 4, 5]), 0)),
            (2, vec![6, 7])
        );
        // Shard 1 of 3 sends batches 1, 4, 7 of the job.
        let shard = Some(Shard { index: 1, count: 3 });
        assert_eq!(
            known(Unsent::of(&s, shard, &sent(&[1]), 0)),
            (2, vec![4, 7])
        );
        // A budget's cap (the journal's `load_batches`) is the whole job.
        let mut capped = s.clone();
        capped.load.batches = Some(5);
        assert_eq!(
            known(Unsent::of(&capped, None, &sent(&[0, 1, 2, 3, 4]), 0)),
            (0, vec![])
        );
    }

    #[test]
    fn a_closed_load_with_no_count_killed_before_its_end_is_cut_short() {
        let s = scenario("  model: closed\n  phases: [{hold: 10s, concurrency: 2}]\n");
        assert!(matches!(
            Unsent::of(&s, None, &sent(&[0, 1]), 3_000_000),
            Unsent::CutShort { .. }
        ));
        assert_eq!(known(Unsent::of(&s, None, &sent(&[0, 1]), 11_000_000)).0, 0);
    }
}
