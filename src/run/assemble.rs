//! The report of a run, assembled from what the ledger and the request metrics hold:
//! batch and input accounting, per-batch completion curves, throughput and the projection.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::api::RunStatus;
use crate::metrics::HttpMetrics;
use crate::observe::{BatchOutcome, Ledger};
use crate::report::{
    self, BatchLine, Batches, Generator, Harness, Http, Report, Runs, ScenarioInfo, TargetInfo,
    Throughput, Verdict,
};
use crate::scenario::{Model, Scenario, Target};

/// The fewest submissions from which a schedule-lag p99 above its bound is called a
/// saturated generator. Below 100 the p99 is the single slowest submission (one late
/// batch, e.g. the first connection's set-up, is not saturation); from 100 on at least two
/// submissions must be late.
pub const SATURATION_MIN_SUBMISSIONS: u64 = 100;

/// Schedule lag p99 above the scenario's bound, over enough submissions to say so.
fn saturated(lag: &crate::metrics::LatencySummary, scenario: &Scenario) -> bool {
    lag.count >= SATURATION_MIN_SUBMISSIONS
        && lag.p99_ms > scenario.load.lag_bound.as_secs_f64() * 1e3
}

/// When the run started and how its load ended: what the report needs besides the ledger
/// and the request metrics.
pub(crate) struct Span {
    /// Wall-clock start, for the report's timestamps.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The ledger's zero.
    pub start: Instant,
    /// Batches the engine never sent.
    pub unsent: u64,
    /// Which ones, when known (at most `report::UNSENT_LISTED`).
    pub unsent_indexes: Vec<u64>,
    /// Why the run stopped early, if it did.
    pub interrupted: Option<String>,
}

pub(crate) fn build_report(
    scenario: &Scenario,
    ledger: &Ledger,
    metrics: &HttpMetrics,
    base: &str,
    span: Span,
) -> Report {
    let (batches, runs, mut completions) = account(scenario, ledger, span.start, span.unsent);
    let (steady, window) = steady_rate(&mut completions);
    let batches_per_s = acceptance_rate(ledger, scenario.load.model, &span);
    let submit = metrics.submit.summary();
    let (lag_p99, saturated) = (submit.lag.p99_ms, saturated(&submit.lag, scenario));
    let target = target_info(scenario, base);
    let forecast = forecast_of(scenario, ledger, &span, target.mock_time_scale);
    let first_intended = ledger.batches().first().map(|b| b.intended);
    let finish_s = match (first_intended, completions.last()) {
        (Some(first), Some(&last)) => last.saturating_duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let sample = report::projection::Sample {
        runs: runs.submitted,
        batches: batches.accepted,
        batches_per_s,
        steady_runs_per_s: steady,
        finish_s,
        throttled: ledger.batches().iter().any(|b| b.throttles > 0) || batches.throttled > 0,
    };
    let projection = scenario
        .project_files
        .map(|files| report::projection::project(files, &sample, target.mock_time_scale));
    let mut operations = BTreeMap::new();
    operations.insert("submit".to_string(), submit);
    if scenario.results.polling.is_some() {
        operations.insert("list".to_string(), metrics.list.summary());
        operations.insert("get".to_string(), metrics.get.summary());
    }
    let finished_at = chrono::Utc::now();
    Report {
        schema: report::SCHEMA.to_string(),
        complete: span.interrupted.is_none(),
        interrupted: span.interrupted,
        harness: Harness {
            name: "batchproof".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            file: scenario.path.display().to_string(),
            description: scenario.description.clone(),
            text: scenario.text.clone(),
            seed: scenario.load.seed,
            model: match scenario.load.model {
                Model::Open => "open".into(),
                Model::Closed => "closed".into(),
            },
            expect: scenario.expect,
        },
        target,
        started_at: span.started_at.to_rfc3339(),
        finished_at: finished_at.to_rfc3339(),
        duration_s: (finished_at - span.started_at).num_milliseconds() as f64 / 1e3,
        verdict: Verdict::default(),
        generator: Generator {
            saturated,
            lag_p99_ms: lag_p99,
            lag_bound_ms: scenario.load.lag_bound.as_secs_f64() * 1e3,
            unsent_batches: span.unsent,
            unsent_indexes: span.unsent_indexes,
        },
        operations,
        http: Http {
            requests: metrics.requests,
            errors: metrics.errors,
            throttles: metrics.throttles,
            retry_after_max_ms: metrics.retry_after_max.as_secs_f64() * 1e3,
            outcomes: metrics.outcomes.clone(),
        },
        batches,
        runs,
        webhooks: ledger.webhooks().clone(),
        e2e: ledger.e2e().summary(),
        throughput: Throughput {
            batches_per_s,
            steady_runs_per_s: steady,
            steady_window_s: window,
            finish_s,
        },
        projection,
        forecast_error: forecast.as_ref().and_then(|f| f.as_ref().err()).cloned(),
        forecast: forecast.and_then(Result::ok),
        knee: None,
        timeline: ledger.timeline().finish(),
        rules: Vec::new(),
        invariants: Vec::new(),
        resumed: None,
        resources: None,
        shard: None,
        merged_from: Vec::new(),
        partial_set: None,
        probes_shard: None,
        budget_stop: budget_stop(scenario, ledger),
        unreachable: None,
        reads: None,
        gave_up: Vec::new(),
    }
}

/// Accepted batches per second.
///
/// In the open model, n answers that follow a schedule span n − 1 of its intervals, so
/// the rate is the answers after the first over the time from the first answer to the
/// last (a short run is not read as faster than it went; a slow target spreads its
/// answers and reads slower). In the closed model every submitter starts at once and
/// waits for its answers, so the rate is the answers over the time from the first
/// intended start to the last answer (a single wave of n answers is n in one response
/// time, not n − 1 in no time).
fn acceptance_rate(ledger: &Ledger, model: Model, span: &Span) -> f64 {
    let answers: Vec<Instant> = ledger
        .batches()
        .iter()
        .filter(|b| matches!(b.outcome, BatchOutcome::Accepted { .. }))
        .filter_map(|b| b.answered)
        .collect();
    let (Some(first), Some(last)) = (answers.iter().min(), answers.iter().max()) else {
        return 0.0;
    };
    let between = last.saturating_duration_since(*first).as_secs_f64();
    if model == Model::Open && answers.len() >= 2 && between > 0.0 {
        return (answers.len() - 1) as f64 / between;
    }
    let first_intended = ledger
        .batches()
        .first()
        .map(|b| b.intended)
        .unwrap_or(span.start);
    let secs = last.saturating_duration_since(first_intended).as_secs_f64();
    if secs > 0.0 {
        answers.len() as f64 / secs
    } else {
        0.0
    }
}

fn target_info(scenario: &Scenario, base: &str) -> TargetInfo {
    let mock_info = match &scenario.target {
        Target::Mock {
            profile,
            profile_path,
        } => Some((
            profile_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(built-in default)".into()),
            profile.time_scale,
        )),
        Target::Url { .. } => None,
    };
    // A URL target that declares its time scale is converted like the embedded mock.
    let time_scale = mock_info
        .as_ref()
        .map(|m| m.1)
        .or(scenario.target.time_scale());
    let mut via = Vec::new();
    if scenario.results.webhooks.is_some() {
        via.push("webhooks".to_string());
    }
    if scenario.results.polling.is_some() {
        via.push("polling".to_string());
    }
    TargetInfo {
        kind: if mock_info.is_some() {
            "mock".into()
        } else {
            "url".into()
        },
        url: base.to_string(),
        api_version: scenario.api_version.as_str().to_string(),
        workflow_id: scenario.workflow.id.clone(),
        mock_profile: mock_info.as_ref().map(|m| m.0.clone()),
        mock_time_scale: time_scale,
        results_via: via,
    }
}

/// The whole job's forecast from a forecast's sample run (None when the run is no sample).
fn forecast_of(
    scenario: &Scenario,
    ledger: &Ledger,
    span: &Span,
    time_scale: Option<f64>,
) -> Option<Result<report::forecast::Forecast, String>> {
    scenario.sample.as_ref().map(|job| {
        if let Some(why) = &span.interrupted {
            return Err(format!(
                "the sample was interrupted ({why}) before its results were in"
            ));
        }
        report::forecast::forecast(
            &report::forecast::Job {
                files: job.files,
                batches: job.batches,
                schedule_s: job.schedule_s.clone(),
            },
            &forecast_sample(ledger),
            scenario.load.seed,
            time_scale,
        )
        .map(|mut f| {
            f.credits_source = f.credits.is_some().then(|| credits_source(scenario));
            f
        })
        .map_err(|e| e.to_string())
    })
}

/// Where this run's credits come from: the embedded mock's (or a URL mock's, one that
/// declares its time scale) are its profile's simulated price, unless that profile was
/// calibrated from an account's history; a URL target's are its own usage.
pub(crate) fn credits_source(scenario: &Scenario) -> crate::report::CreditsSource {
    use crate::report::CreditsSource;
    match &scenario.target {
        Target::Mock {
            profile,
            profile_path,
        } => match &profile.calibration {
            Some(c) => CreditsSource::Calibrated {
                account: c.account.clone(),
                as_of: c.as_of.clone(),
            },
            None => CreditsSource::Simulated {
                profile: profile_path.as_ref().map(|p| p.display().to_string()),
            },
        },
        Target::Url {
            time_scale: Some(_),
            ..
        } => CreditsSource::Simulated { profile: None },
        Target::Url { .. } => CreditsSource::Target,
    }
}

/// The budget's stop, when it cut the load short: an open count (a closed model with no
/// `load.batches`) met the budget only if it sent as many batches as the budget allowed.
fn budget_stop(scenario: &Scenario, ledger: &Ledger) -> Option<crate::scenario::BudgetStop> {
    scenario
        .budget_stop
        .clone()
        .filter(|b| b.planned_runs.is_some() || ledger.batches().len() as u64 >= b.allowed_batches)
}

/// The runs' accounting before the batches are walked: every terminal status and
/// channel present at zero, so a report always shows them.
fn no_runs_yet(ledger: &Ledger) -> Runs {
    let mut runs = Runs {
        submitted: 0,
        seen: 0,
        missing: 0,
        rejected: 0,
        by_status: BTreeMap::new(),
        by_channel: BTreeMap::new(),
        anomalies: ledger.anomalies().clone(),
        missing_examples: ledger.missing_examples(20),
        credits: ledger.credits().0,
        credited: ledger.credits().1,
        needed_review: 0,
        credits_source: None,
    };
    for s in RunStatus::ALL.iter().filter(|s| s.is_terminal()) {
        runs.by_status.insert(s.as_str().to_string(), 0);
    }
    for k in ["webhook_only", "poll_only", "both"] {
        runs.by_channel.insert(k.to_string(), 0);
    }
    runs
}

/// Every scheduled batch and every input of the accepted ones, counted by outcome, with
/// the per-batch lines and the instants results were first seen (for the steady rate).
fn account(
    scenario: &Scenario,
    ledger: &Ledger,
    start: Instant,
    unsent: u64,
) -> (Batches, Runs, Vec<Instant>) {
    let since = |t: Instant| t.saturating_duration_since(start).as_secs_f64() * 1e3;
    let mut batches = Batches {
        scheduled: ledger.batches().len() as u64 + unsent,
        accepted: 0,
        rejected: 0,
        throttled: 0,
        possible_duplicates: 0,
        unreachable: 0,
        unanswered: unsent,
        rejected_by_status: BTreeMap::new(),
        throttle_answers: ledger
            .batches()
            .iter()
            .map(|b| u64::from(b.throttles))
            .sum(),
        completion: ledger.batch_completion().summary(),
        list: Vec::new(),
    };
    let mut runs = no_runs_yet(ledger);
    runs.credits_source = (runs.credited > 0).then(|| credits_source(scenario));
    let collecting = scenario.results.webhooks.is_some() || scenario.results.polling.is_some();
    let mut completions: Vec<Instant> = Vec::new();
    for b in ledger.batches() {
        let (name, detail, batch_id) = match &b.outcome {
            BatchOutcome::Pending => ("unanswered", None, None),
            BatchOutcome::Accepted { batch_id } => ("accepted", None, Some(batch_id.clone())),
            BatchOutcome::Rejected { error, status } => {
                let by = &mut batches.rejected_by_status;
                *by.entry(status.to_string()).or_default() += 1;
                ("rejected", Some(error.clone()), None)
            }
            BatchOutcome::Throttled => ("throttled", None, None),
            BatchOutcome::PossibleDuplicate { reason } => {
                ("possible_duplicate", Some(reason.clone()), None)
            }
            BatchOutcome::Unreachable { error } => ("unreachable", Some(error.clone()), None),
        };
        match name {
            "accepted" => batches.accepted += 1,
            "rejected" => batches.rejected += 1,
            "throttled" => batches.throttled += 1,
            "possible_duplicate" => batches.possible_duplicates += 1,
            "unreachable" => batches.unreachable += 1,
            _ => batches.unanswered += 1,
        }
        // When each of this batch's runs was first seen finished (ms after its intended
        // submit), for its completion curve.
        let mut done_ms: Vec<f64> = Vec::new();
        if name == "accepted" {
            runs.submitted += b.inputs as u64;
            for i in (0..b.inputs as u64).filter(|_| collecting) {
                let r = ledger
                    .input(b.first_seq + i)
                    .expect("an accepted batch's inputs are tracked");
                match r.first_seen() {
                    Some((seen, _)) => {
                        runs.seen += 1;
                        runs.needed_review += u64::from(r.needed_review);
                        let at = ledger.instant(seen.micros);
                        completions.push(at);
                        done_ms.push(at.saturating_duration_since(b.intended).as_secs_f64() * 1e3);
                        *runs
                            .by_status
                            .entry(seen.status.as_str().to_string())
                            .or_default() += 1;
                        let key = match (r.webhook().is_some(), r.poll().is_some()) {
                            (true, true) => "both",
                            (true, false) => "webhook_only",
                            _ => "poll_only",
                        };
                        *runs.by_channel.entry(key.to_string()).or_default() += 1;
                    }
                    // Without a results channel nothing is expected back: such inputs are
                    // submitted, not missing.
                    None if collecting => runs.missing += 1,
                    None => {}
                }
            }
        } else {
            runs.rejected += b.inputs as u64;
        }
        if batches.list.len() < 10_000 {
            batches.list.push(BatchLine {
                index: b.index,
                batch_id,
                inputs: b.inputs,
                outcome: name.to_string(),
                detail,
                intended_ms: since(b.intended),
                answered_ms: b.answered.map(since),
                throttles: b.throttles,
                terminal: b.terminal,
                completed_ms: (b.terminal == b.inputs && b.inputs > 0)
                    .then(|| b.last_terminal.map(since))
                    .flatten(),
                completion_curve_ms: completion_curve(done_ms, b.inputs),
            });
        }
    }
    (batches, runs, completions)
}

/// The accepted batches of a forecast's sample, with when each run was seen terminal and
/// how it ended, on the clock of the first intended submit.
fn forecast_sample(ledger: &Ledger) -> Vec<report::forecast::SampleBatch> {
    let Some(zero) = ledger.batches().iter().map(|b| b.intended).min() else {
        return Vec::new();
    };
    let secs = |t: Instant| t.saturating_duration_since(zero).as_secs_f64();
    ledger
        .batches()
        .iter()
        .filter(|b| matches!(b.outcome, BatchOutcome::Accepted { .. }))
        .map(|b| {
            let mut s = report::forecast::SampleBatch {
                runs: b.inputs,
                intended_s: secs(b.intended),
                accepted_s: b.answered.map_or(0.0, secs),
                credits: b.credits,
                credited: b.credited,
                ..Default::default()
            };
            for seq in b.first_seq..b.first_seq + b.inputs as u64 {
                let Some(record) = ledger.input(seq) else {
                    continue;
                };
                let Some((seen, _)) = record.first_seen() else {
                    continue;
                };
                s.done_s.push(secs(ledger.instant(seen.micros)));
                s.needs_review += u32::from(record.needed_review);
                match seen.status {
                    RunStatus::Failed => s.failed += 1,
                    RunStatus::Rejected => s.rejected += 1,
                    _ => {}
                }
            }
            s
        })
        .collect()
}

/// Runs seen terminal per second between the 10th and 90th percentile of completion
/// times, which leaves out the ramp-up of the queue and the tail of the slowest runs; and
/// that window's length in seconds.
fn steady_rate(completions: &mut [Instant]) -> (f64, f64) {
    completions.sort();
    if completions.len() >= 10 {
        let a = completions[completions.len() / 10];
        let b = completions[completions.len() * 9 / 10];
        let w = b.saturating_duration_since(a).as_secs_f64();
        let n = (completions.len() * 9 / 10 - completions.len() / 10) as f64;
        if w > 0.0 { (n / w, w) } else { (0.0, 0.0) }
    } else {
        (0.0, 0.0)
    }
}

/// Times (ms after the batch's intended submit) by which 0, 10, …, 100 % of a batch's
/// inputs had a result; shorter when not all of them did.
fn completion_curve(mut done_ms: Vec<f64>, inputs: u32) -> Vec<f64> {
    if done_ms.is_empty() || inputs == 0 {
        return Vec::new();
    }
    done_ms.sort_by(f64::total_cmp);
    (0..=10)
        .map(|d| (d as usize * inputs as usize).div_ceil(10).max(1))
        .take_while(|&k| k <= done_ms.len())
        .map(|k| (done_ms[k - 1] * 1e3).round() / 1e3)
        .collect()
}
