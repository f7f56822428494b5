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

use super::{RunError, RunOptions, exit, run_scenario};
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
    /// How long a URL target is left alone between steps (longer when it asked for
    /// more with Retry-After).
    pub quiet: Duration,
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
    let steps_dir = opts.out.join(format!(
        "{}-knee-steps-{}",
        scenario.name,
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    ));
    let step_opts = RunOptions {
        out: steps_dir,
        metrics_listen: None,
        ..opts.clone()
    };
    let mut search = Search::new(&scenario, knee);
    let mut searcher = ExponentialCliffSearcher::until((knee.start * MILLI) as usize, 1);
    while let Some(milli) = searcher.next() {
        let rate = milli as f64 / MILLI;
        if rate > knee.ceiling {
            break;
        }
        let step_scenario = step_scenario(&scenario, rate, inputs, knee);
        let at_most = super::plan::Plan::of(&step_scenario, None)
            .runs_at_most()
            .unwrap_or(u64::MAX);
        search.budget_stop = over_budget(
            search.budget,
            search.spent,
            at_most,
            rate,
            search.steps.len(),
        );
        if search.budget_stop.is_some() {
            break;
        }
        if !search.recovered(&scenario, knee, opts).await {
            break;
        }
        let (report, _) = run_scenario(step_scenario, &step_opts).await?;
        if search.settle(report, rate, inputs, knee, opts) {
            searcher.overloaded();
        }
        tracing::info!(
            step = search.steps.len(),
            "knee: {}",
            search.steps.last().map(Step::line).unwrap_or_default()
        );
        if search.done(knee) {
            break;
        }
    }
    search.finish(scenario, knee, opts, inputs)
}

/// The search as it goes: the steps so far, the reports it keeps, what it spent, and
/// what it learned about the scenario's thresholds at the lowest rate.
struct Search {
    slo: Vec<String>,
    steps: Vec<Step>,
    best: Option<Report>,
    last: Option<Report>,
    /// The first (lowest) step's report: a threshold breaks a later step only when it
    /// held here and the change is beyond its noise.
    baseline: Option<Report>,
    /// Thresholds that failed at the lowest rate: not a capacity limit, not judged.
    unjudged: Vec<String>,
    budget: Option<u64>,
    spent: u64,
    budget_stop: Option<crate::scenario::BudgetStop>,
    /// Why the search stopped early (a signal), when it did: then it gives no answer.
    interrupted: Option<String>,
    /// The longest Retry-After the last step met, in ms.
    retry_after_ms: f64,
}

impl Search {
    fn new(scenario: &Scenario, knee: &KneeOptions) -> Search {
        Search {
            slo: slo(scenario, knee),
            steps: Vec::new(),
            best: None,
            last: None,
            baseline: None,
            unjudged: Vec::new(),
            // The budget holds for the whole search: a step runs only when the most it
            // could create still fits in what the steps before it left.
            budget: knee.max_runs.or(scenario.budget_runs),
            spent: 0,
            budget_stop: None,
            interrupted: None,
            retry_after_ms: 0.0,
        }
    }

    /// Before every step but the first, a target that is not a fresh embedded mock is
    /// left alone for the quiet period, or for its longest Retry-After if longer, so a
    /// step does not inherit the limiter state the last one left (an emptied bucket, a
    /// full window). Returns false when the search was stopped meanwhile.
    async fn recovered(
        &mut self,
        scenario: &Scenario,
        knee: &KneeOptions,
        opts: &RunOptions,
    ) -> bool {
        let stopped = |opts: &RunOptions| opts.stop.as_ref().and_then(|s| s.borrow().clone());
        if let Some(why) = stopped(opts) {
            self.interrupted = Some(why);
            return false;
        }
        if self.steps.is_empty() || matches!(scenario.target, crate::scenario::Target::Mock { .. })
        {
            return true;
        }
        let wait = knee
            .quiet
            .max(Duration::from_secs_f64(self.retry_after_ms / 1e3));
        match opts.stop.clone() {
            Some(mut stop) => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => true,
                    _ = stop.wait_for(|s| s.is_some()) => {
                        self.interrupted = stopped(opts);
                        false
                    }
                }
            }
            None => {
                tokio::time::sleep(wait).await;
                true
            }
        }
    }

    /// Judges a step's report and keeps it. Returns whether the step broke.
    fn settle(
        &mut self,
        report: Report,
        rate: f64,
        inputs: u64,
        knee: &KneeOptions,
        opts: &RunOptions,
    ) -> bool {
        // Runs created: the accepted batches' inputs, and those a batch of unknown fate
        // may have created.
        self.spent += report.runs.submitted + report.batches.possible_duplicates * inputs;
        self.retry_after_ms = report.http.retry_after_max_ms;
        let mut step = step_of(&report, rate, inputs);
        if let Some(why) = opts.stop.as_ref().and_then(|s| s.borrow().clone()) {
            // An interrupted step says nothing of the target: the search has no answer.
            step.held = false;
            step.reasons.push(format!("interrupted: {why}"));
            self.interrupted = Some(why);
            self.steps.push(step);
            self.last = Some(report);
            return false;
        }
        judge(&mut step, &report, knee);
        self.judge_thresholds(&mut step, &report, knee);
        step.held = step.broke.is_empty();
        let broke = !step.held;
        if self.baseline.is_none() {
            self.baseline = Some(report.clone());
        }
        if broke {
            self.last = Some(report);
        } else {
            self.best = Some(report);
        }
        self.steps.push(step);
        broke
    }

    /// The scenario's thresholds: one that failed at the lowest rate is no capacity limit
    /// (noted, not judged); one that held there breaks a later step only when its change
    /// is beyond the noise of the two steps' counts.
    fn judge_thresholds(&mut self, step: &mut Step, report: &Report, knee: &KneeOptions) {
        for t in report.verdict.thresholds.iter().filter(|t| !t.passed) {
            if !judged_under(&t.metric, knee) || self.unjudged.contains(&t.expr) {
                continue;
            }
            let Some(base) = &self.baseline else {
                self.unjudged.push(t.expr.clone());
                self.slo.push(format!(
                    "`{}` failed at the lowest rate ({} batches/s), so it is no capacity limit here: not judged",
                    t.expr, step.offered_per_s
                ));
                continue;
            };
            if !beyond_noise(&t.metric, base, report) {
                continue;
            }
            step.broke.push(if is_latency(&t.metric) {
                Limit::Latency
            } else {
                Limit::Threshold
            });
            step.reasons.push(format!("{} failed", t.expr));
        }
    }

    /// Whether the bracket between held and broke is within the precision.
    fn done(&self, knee: &KneeOptions) -> bool {
        self.interrupted.is_some()
            || matches!(
                (highest_held(&self.steps), lowest_broken(&self.steps)),
                (Some(lo), Some(hi)) if hi.offered_per_s - lo.offered_per_s <= knee.precision * lo.offered_per_s
            )
    }

    /// The knee section on the report of the highest step that held (or the last), the
    /// report judged again and written.
    fn finish(
        self,
        scenario: Scenario,
        knee: &KneeOptions,
        opts: &RunOptions,
        inputs: u64,
    ) -> Result<(Report, Vec<PathBuf>), RunError> {
        let Some(mut report) = self.best.clone().or(self.last.clone()) else {
            return Err(no_step_ran(&self, knee));
        };
        // An interrupted search has no answer: the bracket it had is not the knee.
        // A budget that stopped the search before any step broke leaves no knee either:
        // "held every rate up to the ceiling" would be false.
        let unanswered = self.interrupted.clone().or_else(|| {
            self.budget_stop
                .as_ref()
                .filter(|_| lowest_broken(&self.steps).is_none())
                .map(|b| {
                    format!(
                        "the budget of {} runs stopped it before any step broke",
                        b.max_runs
                    )
                })
        });
        let answered = unanswered.is_none();
        let broke = lowest_broken(&self.steps).filter(|_| answered);
        let limit = broke.and_then(|s| s.broke.first().copied());
        let result = Knee {
            slo: self.slo.clone(),
            inputs_per_batch: inputs,
            step_s: knee.step.as_secs_f64(),
            precision: knee.precision,
            held_per_s: highest_held(&self.steps)
                .filter(|_| answered)
                .map(|s| s.offered_per_s),
            broke_per_s: broke.map(|s| s.offered_per_s),
            limit,
            capacity_per_s: limit.and_then(|l| capacity(&self.steps, l)),
            time_scale: report.target.mock_time_scale,
            method: format!(
                "exponential then binary search (the cliff crate): the rate doubles while steps hold, then the bracket is halved until it is within the stated precision; {}",
                if matches!(scenario.target, crate::scenario::Target::Mock { .. }) {
                    "each step on a fresh embedded mock".to_string()
                } else {
                    format!(
                        "between steps the target was left alone for {:?} or its longest Retry-After, so no step inherits the limiter state of the last",
                        knee.quiet
                    )
                }
            ),
            interrupted: unanswered,
            steps: self.steps,
        };
        report.knee = Some(result);
        // The verdict holds the thresholds the search judged, not those it set aside.
        report
            .verdict
            .thresholds
            .retain(|t| judged_under(&t.metric, knee) && !self.unjudged.contains(&t.expr));
        if let Some(why) = self.interrupted {
            report.complete = false;
            report.interrupted = Some(why);
        }
        // A search the budget cut short found no knee it can vouch for: never passed.
        report.budget_stop = self.budget_stop;
        report.decide();
        let dir = super::report_dir(
            &opts.out,
            &format!("{}-knee", scenario.name),
            chrono::Utc::now(),
        );
        let paths = super::write_files(&report, &dir, &scenario)?;
        Ok((report, paths))
    }
}

/// Why a search produced no report at all.
fn no_step_ran(search: &Search, knee: &KneeOptions) -> RunError {
    if let Some(b) = &search.budget_stop {
        return RunError::Invalid(format!(
            "knee: the budget of {} runs cannot pay for even the first step (up to {} runs at {} batch(es)/s for {:?})\n  fix: raise the budget (--max-runs), lower --start, --step or --inputs-per-batch",
            b.max_runs,
            b.planned_runs.unwrap_or(0),
            knee.start,
            knee.step
        ));
    }
    if let Some(why) = &search.interrupted {
        return RunError::Aborted(format!("knee: interrupted before its first step ({why})"));
    }
    RunError::Invalid(format!(
        "knee: --start {} is above --ceiling {}: no step ran",
        knee.start, knee.ceiling
    ))
}

/// Whether a threshold on `metric` is judged under the limits the search looks for: a
/// search for the request limit collects no results, so thresholds on results (runs,
/// end to end, webhooks, batch completion) say nothing there.
fn judged_under(metric: &str, knee: &KneeOptions) -> bool {
    knee.processing || !needs_results(metric)
}

fn needs_results(metric: &str) -> bool {
    ["runs.", "e2e.", "webhooks.", "batch.", "throughput.runs"]
        .iter()
        .any(|p| metric.starts_with(p))
}

fn is_latency(metric: &str) -> bool {
    metric.ends_with("_ms")
        || metric.starts_with("e2e")
        || metric.starts_with("submit")
        || metric.contains(".p")
}

/// Whether a share metric grew beyond the noise of two binomial counts (a one-sided
/// two-proportion z-test at 97.5 %): the mock's 5 % FAILED at every rate must not read as
/// a knee. Other metrics (counts, latencies) have no such noise model here: a failure
/// after a pass at the lowest rate counts.
fn beyond_noise(metric: &str, base: &Report, now: &Report) -> bool {
    let counts = |r: &Report| -> Option<(f64, f64)> {
        match metric {
            "runs.failed.rate" => Some((
                *r.runs.by_status.get("FAILED").unwrap_or(&0) as f64,
                r.runs.seen as f64,
            )),
            "http.errors.rate" => Some((r.http.errors as f64, r.http.requests as f64)),
            _ => None,
        }
    };
    let (Some((x1, n1)), Some((x2, n2))) = (counts(base), counts(now)) else {
        return true;
    };
    if n1 == 0.0 || n2 == 0.0 {
        return true;
    }
    let (p1, p2) = (x1 / n1, x2 / n2);
    let p = (x1 + x2) / (n1 + n2);
    let se = (p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return p2 > p1;
    }
    (p2 - p1) / se > 1.96
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
    for t in &scenario.thresholds {
        slo.push(if judged_under(&t.metric, knee) {
            t.expr.clone()
        } else {
            format!(
                "`{}` is not judged: a search for the request limit collects no results",
                t.expr
            )
        });
    }
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
/// results collected when nothing judges them. Submissions are never paced (the step
/// looks for their limit); polls keep to the GET limit the harness knows of (the
/// scenario's, or the embedded mock's own), so the search does not trip on its own
/// polling.
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
    let mut limits = base.limits;
    if let crate::scenario::Target::Mock { profile, .. } = &base.target {
        let ts = profile.time_scale;
        limits.get_rps = limits.get_rps.or(profile.limits.get_rps.map(|r| r * ts));
        limits.write_rps = limits
            .write_rps
            .or(profile.limits.write_rps.map(|r| r * ts));
    }
    limits.run_rps = None;
    limits.files_per_minute = None;
    s.limits = limits;
    s.checks = None;
    s.project_files = None;
    s.sample = None;
    s.budget_stop = None;
    let needs_results = knee.processing
        || s.thresholds
            .iter()
            .any(|t| judged_under(&t.metric, knee) && needs_results(&t.metric));
    if !needs_results {
        s.results.webhooks = None;
        s.results.polling = None;
    }
    s
}

/// Marks what broke in a step, rate limit first: the order a client meets them. The
/// scenario's thresholds are judged by the search, which knows the lowest rate's.
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
    // The submissions' own 429s: a poll throttled in its own category is no sign of the
    // batch limit.
    let throttled = report
        .batches
        .throttle_answers
        .max(report.batches.throttled);
    if knee.rate_limit && throttled > 0 {
        broke(
            Limit::RateLimit,
            format!("{throttled} batch submissions were answered 429"),
        );
    }
    if knee.processing {
        let offered = step.offered_files_per_s;
        if report.runs.missing > 0 {
            broke(
                Limit::Processing,
                format!("{} runs had no result by the deadline", report.runs.missing),
            );
        } else if step.finished_files_per_s_high < knee.keep_up * offered {
            broke(
                Limit::Processing,
                format!(
                    "runs finished at {:.1}/s of {:.1}/s offered",
                    step.finished_files_per_s, offered
                ),
            );
        }
    }
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
