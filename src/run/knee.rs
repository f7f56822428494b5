//! `batchproof knee`: ramp the offered rate until a stated SLO breaks, then bisect, and
//! report the highest rate that held and what broke first.
//!
//! Each step is a run of its own at one open-model rate, so a step starts from a target
//! whose queue the last step left drained (the run waits for every result) and, on the
//! embedded mock, from a fresh one. The rates come from the `cliff` crate's exponential
//! search, in thousandths of a batch per second (it counts in integers); the search stops
//! when the bracket is within the stated relative precision, not at its absolute width,
//! because the knee's scale is what is unknown.

use std::path::PathBuf;
use std::time::Duration;

use cliff::ExponentialCliffSearcher;

use super::{ProgressMode, RunError, RunOptions, exit, run_scenario};
use crate::report::Report;
use crate::report::knee::{Knee, Limit, Step, capacity, step_of};
use crate::scenario::{BatchSize, Model, Phase, Scenario};

/// What a knee search offers and how it judges each step.
#[derive(Debug, Clone)]
pub struct KneeOptions {
    /// First rate offered, batches per second.
    pub start: f64,
    /// No rate above this is offered.
    pub ceiling: f64,
    pub step: Duration,
    /// Stop when (broke − held) / held is at most this.
    pub precision: f64,
    /// Inputs per batch for every step (None: the scenario's).
    pub inputs_per_batch: Option<u64>,
    /// A step breaks on any 429.
    pub rate_limit: bool,
    /// A step breaks when its runs finish slower than `keep_up` of the files offered
    /// (needs results; off, the steps collect none and never wait for processing).
    pub processing: bool,
    pub keep_up: f64,
    /// The most runs the whole search may create (None: the scenario's budget, if any).
    pub max_runs: Option<u64>,
}

/// Milli-batches per second: the integer unit the searcher counts in.
const MILLI: f64 = 1000.0;

/// Runs the search and writes its report: the report of the highest step that held (or
/// of the last step) with the knee section. Returns it and the files written.
pub async fn search(
    scenario: Scenario,
    knee: &KneeOptions,
    opts: &RunOptions,
) -> Result<(Report, Vec<PathBuf>), RunError> {
    if !(knee.start > 0.0 && knee.ceiling >= knee.start && knee.precision > 0.0) {
        return Err(RunError::Invalid(
            "knee: --start must be above 0, --ceiling at least --start, --precision above 0".into(),
        ));
    }
    let inputs = knee.inputs_per_batch.unwrap_or(match scenario.load.size {
        BatchSize::Fixed(n) => n,
        BatchSize::Uniform(a, b) => (a + b) / 2,
    });
    let slo = slo(&scenario, knee);
    let steps_dir = opts.out.join(format!(
        "{}-knee-steps-{}",
        scenario.name,
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    ));
    let step_opts = RunOptions {
        out: steps_dir,
        progress: ProgressMode::None,
        metrics_listen: None,
        ..opts.clone()
    };
    let mut searcher = ExponentialCliffSearcher::until((knee.start * MILLI) as usize, 1);
    let mut steps: Vec<Step> = Vec::new();
    let mut best: Option<Report> = None;
    let mut last: Option<Report> = None;
    // The budget holds for the whole search: a step runs only when the most it could
    // create still fits in what the steps before it left.
    let budget = knee.max_runs.or(scenario.budget_runs);
    let mut spent = 0u64;
    let mut budget_stop = None;
    while let Some(milli) = searcher.next() {
        let rate = milli as f64 / MILLI;
        if rate > knee.ceiling {
            break;
        }
        let step_scenario = step_scenario(&scenario, rate, inputs, knee);
        let at_most = super::plan::Plan::of(&step_scenario, None)
            .runs_at_most()
            .unwrap_or(u64::MAX);
        budget_stop = over_budget(budget, spent, at_most, rate, steps.len());
        if budget_stop.is_some() {
            break;
        }
        let (report, _) = run_scenario(step_scenario, &step_opts).await?;
        // Runs created: the accepted batches' inputs, and those a batch of unknown fate
        // may have created.
        spent += report.runs.submitted + report.batches.possible_duplicates * inputs;
        let mut step = step_of(&report, rate, inputs);
        judge(&mut step, &report, knee);
        if let Some(stop) = &opts.stop
            && stop.borrow().is_some()
        {
            steps.push(step);
            last = Some(report);
            break;
        }
        if step.held {
            best = Some(report);
        } else {
            searcher.overloaded();
            last = Some(report);
        }
        steps.push(step);
        // The bracket as the steps left it (the searcher updates its own only when asked
        // for the next rate).
        if let (Some(lo), Some(hi)) = (highest_held(&steps), lowest_broken(&steps))
            && hi.offered_per_s - lo.offered_per_s <= knee.precision * lo.offered_per_s
        {
            break;
        }
    }
    let Some(mut report) = best.or(last) else {
        if let Some(b) = budget_stop {
            return Err(RunError::Invalid(format!(
                "knee: the budget of {} runs cannot pay for even the first step (up to {} runs at {} batch(es)/s for {:?})\n  fix: raise the budget (--max-runs), lower --start, --step or --inputs-per-batch",
                b.max_runs,
                b.planned_runs.unwrap_or(0),
                knee.start,
                knee.step
            )));
        }
        return Err(RunError::Invalid(format!(
            "knee: --start {} is above --ceiling {}: no step ran",
            knee.start, knee.ceiling
        )));
    };
    let broke = lowest_broken(&steps);
    let limit = broke.and_then(|s| s.broke.first().copied());
    let result = Knee {
        slo,
        inputs_per_batch: inputs,
        step_s: knee.step.as_secs_f64(),
        precision: knee.precision,
        held_per_s: highest_held(&steps).map(|s| s.offered_per_s),
        broke_per_s: broke.map(|s| s.offered_per_s),
        limit,
        capacity_per_s: limit.and_then(|l| capacity(&steps, l)),
        time_scale: report.target.mock_time_scale,
        method: "exponential then binary search (the cliff crate): the rate doubles while steps hold, then the bracket is halved until it is within the stated precision".into(),
        steps,
    };
    report.knee = Some(result);
    // A search the budget cut short found no knee it can vouch for: never passed.
    report.budget_stop = budget_stop;
    report.decide();
    let dir = super::report_dir(
        &opts.out,
        &format!("{}-knee", scenario.name),
        chrono::Utc::now(),
    );
    let paths = super::write_files(&report, &dir, &scenario)?;
    Ok((report, paths))
}

/// What each step is held to, in words, for the report.
fn slo(scenario: &Scenario, knee: &KneeOptions) -> Vec<String> {
    let mut slo = Vec::new();
    if knee.rate_limit {
        slo.push("no 429 from the target".to_string());
    }
    if knee.processing {
        slo.push(format!(
            "runs finish at ≥ {:.0} % of the files offered per second, none missing",
            knee.keep_up * 100.0
        ));
    }
    slo.extend(scenario.thresholds.iter().map(|t| t.expr.clone()));
    slo
}

/// The budget's stop when the next step, which could create `at_most` runs, would take
/// the search past it.
fn over_budget(
    budget: Option<u64>,
    spent: u64,
    at_most: u64,
    rate: f64,
    steps: usize,
) -> Option<crate::scenario::BudgetStop> {
    let b = budget?;
    if spent.saturating_add(at_most) <= b {
        return None;
    }
    tracing::warn!(
        rate,
        spent,
        budget = b,
        "the budget stops the knee search: the next step could create {at_most} runs"
    );
    Some(crate::scenario::BudgetStop {
        max_runs: b,
        planned_runs: Some(spent.saturating_add(at_most)),
        allowed_batches: 0,
        detail: Some(format!(
            "the knee search after {steps} step(s) and {spent} runs: the step at {rate} batch(es)/s could create {at_most} more"
        )),
    })
}

fn highest_held(steps: &[Step]) -> Option<&Step> {
    steps
        .iter()
        .filter(|s| s.held)
        .max_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s))
}

fn lowest_broken(steps: &[Step]) -> Option<&Step> {
    steps
        .iter()
        .filter(|s| !s.held)
        .min_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s))
}

/// The scenario of one step: the open model at `rate` for the step's length, no
/// conformance probes, no throttle retries (a 429 is what the step measures), and no
/// results collected when nothing judges them.
fn step_scenario(base: &Scenario, rate: f64, inputs: u64, knee: &KneeOptions) -> Scenario {
    let mut s = base.clone();
    s.load.model = Model::Open;
    s.load.phases = vec![Phase::Rate {
        duration: knee.step,
        from: rate,
        to: rate,
    }];
    s.load.batches = None;
    s.load.size = BatchSize::Fixed(inputs);
    s.load.max_throttle_retries = 0;
    // The harness must not pace itself below the limit it is looking for.
    s.limits = Default::default();
    s.checks = None;
    s.project_files = None;
    s.sample = None;
    let needs_results = knee.processing
        || s.thresholds
            .iter()
            .any(|t| t.metric.starts_with("e2e") || t.metric.starts_with("runs."));
    if !needs_results {
        s.results.webhooks = None;
        s.results.polling = None;
    }
    s
}

/// Marks what broke in a step, rate limit first: the order a client meets them.
fn judge(step: &mut Step, report: &Report, knee: &KneeOptions) {
    let mut broke = |limit: Limit, why: String| {
        step.broke.push(limit);
        step.reasons.push(why);
    };
    if report.generator.saturated {
        broke(
            Limit::Generator,
            format!(
                "the harness lagged its schedule (lag p99 {:.0} ms > {:.0} ms): raise max_in_flight or lower the rate",
                report.generator.lag_p99_ms, report.generator.lag_bound_ms
            ),
        );
    }
    if knee.rate_limit && (report.http.throttles > 0 || report.batches.throttled > 0) {
        broke(
            Limit::RateLimit,
            format!("{} responses were 429", report.http.throttles),
        );
    }
    if knee.processing {
        let offered = step.offered_files_per_s;
        if report.runs.missing > 0 {
            broke(
                Limit::Processing,
                format!("{} runs had no result by the deadline", report.runs.missing),
            );
        } else if step.finished_files_per_s < knee.keep_up * offered {
            broke(
                Limit::Processing,
                format!(
                    "runs finished at {:.1}/s of {:.1}/s offered",
                    step.finished_files_per_s, offered
                ),
            );
        }
    }
    for t in report.verdict.thresholds.iter().filter(|t| !t.passed) {
        let latency = t.metric.ends_with("_ms")
            || t.metric.starts_with("e2e")
            || t.metric.starts_with("submit")
            || t.metric.contains(".p");
        broke(
            if latency {
                Limit::Latency
            } else {
                Limit::Threshold
            },
            format!("{} failed", t.expr),
        );
    }
    if !report.complete {
        broke(Limit::Threshold, "the step was interrupted".into());
    }
    step.held = step.broke.is_empty();
}

/// The exit code a knee search ends with: the search itself passes when it found a knee
/// (a rate that held and one that broke) or held to the ceiling.
pub fn exit_code(report: &Report) -> u8 {
    match &report.knee {
        _ if !report.complete => exit::ABORTED,
        _ if report.budget_stop.is_some() => exit::FAILED,
        Some(k) if k.held_per_s.is_some() => exit::PASSED,
        _ => exit::FAILED,
    }
}
