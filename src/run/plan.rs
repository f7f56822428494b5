//! What a run would do, worked out from the scenario alone and before anything is sent:
//! batches and runs per phase, the probes' runs, requests per rate-limit category against
//! the plan's limits, how long it takes, and what it would cost. `batchproof plan` prints
//! it; the cost guard refuses a run against a URL whose runs exceed its budget.

use std::fmt::{self, Write};
use std::sync::Arc;

use crate::api::RateLimits;
use crate::load::inputs::InputFactory;
use crate::load::schedule::OpenSchedule;
use crate::scenario::{BatchSize, Model, Phase, Scenario, Target};

use super::RunError;
use crate::probes::{probe_runs, probe_runs_at_most};

/// One phase of the load as planned.
#[derive(Debug, Clone)]
pub struct PhasePlan {
    pub label: String,
    pub seconds: f64,
    /// Batches and runs the phase sends; None in the closed model, whose count depends
    /// on how fast the target answers.
    pub batches: Option<u64>,
    pub runs: Option<u64>,
    /// Batches per second at the phase's peak (open model).
    pub peak_rate: Option<f64>,
}

/// What a run of the scenario would do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: String,
    pub target: String,
    pub paid: bool,
    pub model: Model,
    pub phases: Vec<PhasePlan>,
    /// Load runs; None when the closed model leaves the count open.
    pub load_runs: Option<u64>,
    pub load_batches: Option<u64>,
    /// The probes' runs on a conforming target, and at most.
    pub probe_runs: Option<(u64, u64)>,
    pub largest_batch: u64,
    pub limits: RateLimits,
    /// Whether batchproof paces itself under `limits` (the scenario's), or they are the
    /// embedded mock's own, which it enforces with 429s.
    pub paced: bool,
    pub plan_name: Option<String>,
    pub polling: bool,
    pub webhooks: bool,
    pub registers_endpoint: bool,
    pub load_seconds: f64,
    pub deadline_seconds: f64,
    pub budget: Option<u64>,
    pub credits_per_run: Option<f64>,
    /// Where `credits_per_run` comes from (the report given): a simulated price is said
    /// to be one, loudly, before it prices a paid run.
    pub credits_from: Option<crate::report::CreditsSource>,
    /// The share this plan is for (`--shard I/N`), if any.
    pub shard: Option<crate::scenario::Shard>,
    /// How many shards send the probes: 1 (shard 0), or all of them when the scenario
    /// asks (`checks.probes_on_every_shard`).
    pub probing_shards: u64,
    probes_on_every_shard: bool,
}

impl Plan {
    /// Works the plan out from the scenario; `credits_per_run` prices it (e.g. from an
    /// earlier run's report).
    pub fn of(scenario: &Scenario, credits_per_run: Option<f64>) -> Plan {
        let load = &scenario.load;
        let factory = InputFactory::new(&Arc::new(scenario.clone()));
        let (phases, index, open_total, start) = phase_plans(scenario, &factory);
        let largest_batch = match load.size {
            BatchSize::Fixed(n) => n,
            BatchSize::Uniform(_, b) => b,
        };
        let (load_batches, load_runs) = match load.model {
            Model::Open => (Some(index), open_total),
            // A closed model's count is open unless `load.batches` caps it.
            Model::Closed => match load.batches {
                Some(n) => (Some(n), Some((0..n).map(|i| factory.size(i)).sum())),
                None => (None, None),
            },
        };
        let (target, paid) = match &scenario.target {
            Target::Mock { .. } => ("the embedded mock".to_string(), false),
            Target::Url { url, .. } => (url.clone(), true),
        };
        // Without limits of its own, a scenario on the mock meets the profile's.
        let (limits, paced, plan_name) = match &scenario.target {
            Target::Mock { profile, .. } if scenario.limits.is_empty() => {
                // The mock's windows shrink with its time scale: its limits hold in mock
                // time, so the harness meets them that many times faster.
                let l = &profile.limits;
                let ts = profile.time_scale;
                let scaled = |r: Option<f64>| r.map(|r| r * ts);
                let own = RateLimits {
                    run_rps: scaled(l.run_rps),
                    write_rps: scaled(l.write_rps),
                    get_rps: scaled(l.get_rps),
                    files_per_minute: scaled(l.files_per_minute),
                };
                let name = if (ts - 1.0).abs() > f64::EPSILON {
                    format!("the mock profile's × its time scale {ts}, enforced with 429s")
                } else {
                    "the mock profile's, enforced with 429s".to_string()
                };
                (own, false, (!own.is_empty()).then_some(name))
            }
            _ => (
                scenario.pacing_limits(),
                true,
                scenario.plan.map(|p| format!("plan {}", p.as_str())),
            ),
        };
        Plan {
            scenario: scenario.name.clone(),
            target,
            paid,
            model: load.model,
            phases,
            load_runs,
            load_batches,
            probe_runs: scenario.checks.as_ref().filter(|c| c.probes).map(|c| {
                (
                    probe_runs(c.rapid_batches),
                    probe_runs_at_most(c.rapid_batches),
                )
            }),
            largest_batch,
            limits,
            paced,
            plan_name,
            polling: scenario.results.polling.is_some(),
            webhooks: scenario.results.webhooks.is_some(),
            registers_endpoint: scenario
                .results
                .webhooks
                .as_ref()
                .is_some_and(|w| w.register),
            load_seconds: start,
            deadline_seconds: scenario.results.deadline.as_secs_f64(),
            budget: scenario.budget_runs,
            shard: None,
            probing_shards: 1,
            probes_on_every_shard: scenario
                .checks
                .as_ref()
                .is_some_and(|c| c.probes_on_every_shard),
            credits_per_run,
            credits_from: None,
        }
    }

    /// Runs the run would create at most (load and probes); None when the closed model
    /// leaves the count open.
    /// When the plan's own figures say the job cannot finish by its deadline: the load's
    /// runs need more processing (at the plan's files per minute) than the load and the
    /// results deadline leave, so most would be missing. The sentence says by how much and
    /// the fix.
    pub fn deadline_warning(&self) -> Option<String> {
        let fpm = self.limits.files_per_minute.filter(|f| *f > 0.0)?;
        let need = self.load_runs? as f64 / fpm * 60.0;
        let room = self.load_seconds + self.deadline_seconds;
        (need > room).then(|| {
            let d = |s: f64| crate::config::format_duration(std::time::Duration::from_secs_f64(s));
            format!(
                "results.deadline ({}) is shorter than the processing this plan computes: {} runs at {fpm} files/min need ≥ {}, but the load and the deadline leave {} — about {:.0} % of the runs would be missing at the deadline\n  fix: set `results.deadline` to at least {} (or send fewer files)",
                d(self.deadline_seconds),
                self.load_runs.unwrap_or(0),
                d(need),
                d(room),
                (1.0 - room / need) * 100.0,
                d((need - self.load_seconds).max(0.0) * 1.1)
            )
        })
    }

    pub fn runs_at_most(&self) -> Option<u64> {
        Some(self.load_runs? + self.probe_runs.map_or(0, |p| p.1))
    }

    /// Peak batches per second offered (open model).
    fn peak_batch_rate(&self) -> Option<f64> {
        self.phases
            .iter()
            .filter_map(|p| p.peak_rate)
            .reduce(f64::max)
    }

    fn requests(&self, s: &mut String) -> fmt::Result {
        let paced = self.paced;
        let limit = |l: Option<f64>| match l {
            Some(l) if paced => format!("limit {l}/s: batchproof paces itself under it"),
            Some(l) => format!("limit {l}/s"),
            None => "no limit set".into(),
        };
        let within = |rate: f64, l: Option<f64>| match l {
            Some(l) if rate > l && paced => {
                format!(" — OVER the limit: the run will be held to {l}/s and show schedule lag")
            }
            Some(l) if rate > l => format!(" — OVER the limit: expect 429s above {l}/s"),
            _ => String::new(),
        };
        match self.peak_batch_rate() {
            Some(r) => writeln!(
                s,
                "  RUN    peak {r:.2} batch submissions/s{} ({})",
                within(r, self.limits.run_rps),
                limit(self.limits.run_rps)
            )?,
            None => writeln!(
                s,
                "  RUN    as fast as the submitters get answers ({})",
                limit(self.limits.run_rps)
            )?,
        }
        writeln!(
            s,
            "  WRITE  {} request(s) to register a webhook endpoint and its subscription ({})",
            if self.registers_endpoint { 2 } else { 0 },
            limit(self.limits.write_rps)
        )?;
        if self.polling {
            let runs = self
                .load_runs
                .map_or("one per run".into(), |n| format!("{n}"));
            let peak = self
                .peak_batch_rate()
                .map(|r| r * self.largest_batch as f64);
            writeln!(
                s,
                "  GET    one Get per run for its metadata ({runs} in all{}) plus list pages each polling round ({})",
                peak.map_or(String::new(), |p| format!(
                    ", ≈ {p:.0}/s at the peak submission rate{}",
                    within(p, self.limits.get_rps)
                )),
                limit(self.limits.get_rps)
            )?;
            if let (Some(n), Some(l)) = (self.load_runs, self.limits.get_rps) {
                writeln!(
                    s,
                    "         at {l} Gets/s the Gets alone take ≥ {}",
                    crate::config::format_duration(std::time::Duration::from_secs_f64(
                        n as f64 / l
                    ))
                )?;
            }
        } else {
            writeln!(s, "  GET    none for results (webhooks only)")?;
        }
        if let Some(fpm) = self.limits.files_per_minute {
            let offered = self
                .peak_batch_rate()
                .map(|r| r * self.largest_batch as f64 * 60.0);
            writeln!(
                s,
                "  FILES  plan processes {fpm} files/min{}{}",
                offered.map_or(String::new(), |o| format!("; peak offered {o:.0}/min")),
                self.load_runs.map_or(String::new(), |n| format!(
                    ": the load's runs need ≥ {} of processing",
                    crate::config::format_duration(std::time::Duration::from_secs_f64(
                        n as f64 / fpm * 60.0
                    ))
                ))
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let n = |v: Option<u64>| v.map_or("–".into(), |v| v.to_string());
        writeln!(s, "plan for `{}` against {}", self.scenario, self.target)?;
        writeln!(
            s,
            "nothing has been sent{}",
            if self.paid {
                "; this target may be paid"
            } else {
                ""
            }
        )?;
        writeln!(
            s,
            "\nload ({} model)",
            match self.model {
                Model::Open => "open",
                Model::Closed => "closed",
            }
        )?;
        for p in &self.phases {
            writeln!(
                s,
                "  {:<32} {:>8} batches {:>10} runs",
                p.label,
                n(p.batches),
                n(p.runs)
            )?;
        }
        writeln!(
            s,
            "  {:<32} {:>8} batches {:>10} runs (batches of up to {})",
            "total",
            n(self.load_batches),
            n(self.load_runs),
            self.largest_batch
        )?;
        if let Some((typical, most)) = self.probe_runs {
            writeln!(
                s,
                "probes    {typical} runs on a conforming target, at most {most} if it accepts what it must refuse"
            )?;
        }
        match self.runs_at_most() {
            Some(r) => writeln!(s, "runs      {r} created at most")?,
            None => writeln!(
                s,
                "runs      open: the closed model sends as many batches as its submitters get answered; `load.batches` or a budget caps them"
            )?,
        }
        writeln!(
            s,
            "\nrequests per rate-limit category{}",
            self.plan_name
                .as_ref()
                .map_or(String::new(), |p| format!(" (limits: {p})"))
        )?;
        self.requests(&mut s)?;
        writeln!(
            s,
            "\nduration  {} of load, then up to {} for the last results (results.deadline)",
            crate::config::format_duration(std::time::Duration::from_secs_f64(self.load_seconds)),
            crate::config::format_duration(std::time::Duration::from_secs_f64(
                self.deadline_seconds
            ))
        )?;
        self.before_a_job(&mut s)?;
        writeln!(
            s,
            "results   {}{}",
            match (self.webhooks, self.polling) {
                (true, true) => "webhooks and polling",
                (true, false) => "webhooks",
                (false, true) => "polling",
                (false, false) => "not collected",
            },
            if self.registers_endpoint {
                "; a webhook endpoint and subscription will be registered on the target"
            } else {
                ""
            }
        )?;
        self.credits_lines(&mut s)?;
        self.shard_lines(&mut s)?;
        match (self.budget, self.runs_at_most()) {
            (Some(b), Some(r)) if r > b => {
                writeln!(s, "budget    {b} runs: EXCEEDED by {}", r - b)?
            }
            (Some(b), Some(r)) => writeln!(s, "budget    {b} runs: within ({r} at most)")?,
            (Some(b), None) => writeln!(s, "budget    {b} runs: the load stops there")?,
            (None, _) if self.paid => writeln!(
                s,
                "budget    none: `run` will refuse this URL target without `budget: {{max_runs: N}}`, --max-runs N or --yes"
            )?,
            (None, _) => writeln!(s, "budget    not needed on the embedded mock")?,
        }
        f.write_str(&s)
    }
}

/// Each phase as planned, from the open schedule itself (so the counts are the ones the
/// engine sends); with the batches, the runs and the seconds of the whole load.
fn phase_plans(
    scenario: &Scenario,
    factory: &InputFactory,
) -> (Vec<PhasePlan>, u64, Option<u64>, f64) {
    let load = &scenario.load;
    let cap = load.batches.unwrap_or(u64::MAX);
    let mut phases = Vec::new();
    let (mut index, mut open_total) = (0u64, Some(0u64));
    let mut schedule = OpenSchedule::new(&load.phases);
    let mut start = 0.0;
    let mut pending = None;
    for (i, p) in load.phases.iter().enumerate() {
        match *p {
            Phase::Rate { duration, from, to } => {
                let end = start + duration.as_secs_f64();
                let (mut batches, mut runs) = (0u64, 0u64);
                // Batches due before the phase ends (the first past it is kept).
                while let Some(d) = pending.take().or_else(|| schedule.next()) {
                    let due = d.as_secs_f64();
                    if due > end + 1e-9 {
                        pending = Some(std::time::Duration::from_secs_f64(due));
                        break;
                    }
                    if index >= cap {
                        break;
                    }
                    runs += factory.size(index);
                    batches += 1;
                    index += 1;
                }
                open_total = open_total.map(|t| t + runs);
                phases.push(PhasePlan {
                    label: if (from - to).abs() < 1e-12 {
                        format!("{}. hold {:.0}s at {from}/s", i + 1, duration.as_secs_f64())
                    } else {
                        format!(
                            "{}. ramp {:.0}s, {from} → {to}/s",
                            i + 1,
                            duration.as_secs_f64()
                        )
                    },
                    seconds: duration.as_secs_f64(),
                    batches: Some(batches),
                    runs: Some(runs),
                    peak_rate: Some(from.max(to)),
                });
                start = end;
            }
            Phase::Concurrency { duration, from, to } => {
                phases.push(PhasePlan {
                    label: format!(
                        "{}. {:.0}s of {from} → {to} submitters",
                        i + 1,
                        duration.as_secs_f64()
                    ),
                    seconds: duration.as_secs_f64(),
                    batches: None,
                    runs: None,
                    peak_rate: None,
                });
                start += duration.as_secs_f64();
            }
        }
    }
    (phases, index, open_total, start)
}

impl Plan {
    /// The plan of one shard of N: the whole's figures stay (the budget holds for the
    /// whole), and the shard's own share is printed beside them.
    pub fn sharded(mut self, shard: Option<crate::scenario::Shard>) -> Plan {
        if let Some(s) = shard {
            self.shard = Some(s);
            self.probing_shards = if self.probes_on_every_shard {
                s.count
            } else {
                1
            };
        }
        self
    }

    /// What the plan would cost, priced from the report given, and where that price
    /// comes from (a simulated one, for a paid run, is said loudly).
    fn credits_lines(&self, s: &mut String) -> fmt::Result {
        match (self.credits_per_run, self.runs_at_most()) {
            (Some(c), Some(r)) => {
                writeln!(
                    s,
                    "credits   ≈ {:.0} ({} runs × {c:.2} credits per run, as measured in the report given{})",
                    c * r as f64,
                    r,
                    self.credits_from
                        .as_ref()
                        .map_or(String::new(), |f| format!(": {}", f.describe()))
                )?;
                if self.paid && self.credits_from.as_ref().is_some_and(|f| !f.is_real()) {
                    writeln!(
                        s,
                        "WARNING   this prices a paid run at the MOCK'S SIMULATED credits, not the account's: price it from a report of a run against the real API, or from a mock calibrated on the account (`batchproof calibrate`)"
                    )?;
                }
            }
            _ => writeln!(
                s,
                "credits   unknown before a run; a report totals them (runs.credits): pass --from REPORT to price this plan"
            )?,
        }
        Ok(())
    }

    /// What a planner needs before the job: a deadline the job cannot meet, and what a
    /// forecast's sample would create.
    fn before_a_job(&self, s: &mut String) -> fmt::Result {
        if let Some(w) = self.deadline_warning() {
            writeln!(s, "WARNING   {w}")?;
        }
        if self.largest_batch > 0 {
            writeln!(
                s,
                "forecast  `batchproof forecast --sample 10` would send 10 of the job's batches: up to {} runs{}",
                self.largest_batch * 10,
                if self.paid { ", paid" } else { "" }
            )?;
        }
        Ok(())
    }

    /// This shard's share, and the whole against the budget (`plan --shard I/N`).
    fn shard_lines(&self, s: &mut String) -> fmt::Result {
        if let Some((sh, batches, runs, probes)) = self.shard_share() {
            let n = |v: Option<u64>| v.map_or("an open number of".to_string(), |v| v.to_string());
            writeln!(
                s,
                "shard     {}/{}: batches {}, {}+{}, … — {} batches, {} runs at most{}",
                sh.index,
                sh.count,
                sh.index,
                sh.index,
                sh.count,
                n(batches),
                n(runs.map(|r| r + if probes {
                    self.probe_runs.map_or(0, |p| p.1)
                } else {
                    0
                })),
                if self.probe_runs.is_none() {
                    ""
                } else if probes {
                    " (the probes included: this shard sends them)"
                } else {
                    " (no probes: shard 0 sends them)"
                }
            )?;
            if !self.limits.is_empty() {
                let each = self.limits.shared_by(sh.count);
                let rate = |r: Option<f64>| {
                    r.map_or("no limit".to_string(), |r| format!("{}/s", round2(r)))
                };
                writeln!(
                    s,
                    "limits    the account's, shared: this shard {} at 1/{} of them (runs {}, writes {}, reads {}); all {} shards together at most runs {}, writes {}, reads {}",
                    if self.paced {
                        "paces itself"
                    } else {
                        "should keep"
                    },
                    sh.count,
                    rate(each.run_rps),
                    rate(each.write_rps),
                    rate(each.get_rps),
                    sh.count,
                    rate(self.limits.run_rps),
                    rate(self.limits.write_rps),
                    rate(self.limits.get_rps),
                )?;
            }
            if let (Some(whole), Some(b)) = (self.whole_runs_at_most(), self.budget) {
                writeln!(
                    s,
                    "whole     {whole} runs at most over all {} shards, against the budget of {b}: {}",
                    sh.count,
                    if whole > b { "EXCEEDED" } else { "within" }
                )?;
            }
        }
        Ok(())
    }

    /// The runs the whole scenario may create at most, every shard's probes included.
    pub fn whole_runs_at_most(&self) -> Option<u64> {
        let probes = self.probe_runs.map_or(0, |p| p.1) * self.probing_shards;
        self.load_runs.map(|l| l + probes)
    }

    /// What this shard sends: its share of the load's batches (I, I+N, …) and runs, and
    /// whether it sends the probes.
    fn shard_share(&self) -> Option<(crate::scenario::Shard, Option<u64>, Option<u64>, bool)> {
        let s = self.shard?;
        let batches = self
            .load_batches
            .map(|b| b / s.count + u64::from(s.index < b % s.count));
        let runs = batches.map(|b| b * self.largest_batch);
        let probes = s.index == 0 || self.probes_on_every_shard;
        Some((s, batches, runs, probes))
    }
}

/// The cost guard: against a URL target, a run whose runs could exceed its budget (the
/// scenario's `budget.max_runs`, or `max_runs` given on the command line) is refused
/// before its first request, and so is one with no budget at all unless `yes`. With a
/// budget, the load is capped so it cannot create more runs than the budget allows
/// whatever the model. The embedded mock needs no budget.
pub fn guard(
    mut scenario: Scenario,
    max_runs: Option<u64>,
    yes: bool,
    shard: Option<crate::scenario::Shard>,
) -> Result<Scenario, RunError> {
    if !matches!(scenario.target, Target::Url { .. }) {
        return Ok(scenario);
    }
    let plan = Plan::of(&scenario, None).sharded(shard);
    let budget = max_runs.or(scenario.budget_runs);
    let planned = plan.whole_runs_at_most().map_or(
        "an open number of runs (closed model without load.batches)".to_string(),
        |r| {
            format!(
                "up to {r} runs (load {}{})",
                plan.load_runs.unwrap_or(0),
                plan.probe_runs.map_or(String::new(), |p| {
                    if plan.probing_shards > 1 {
                        format!(
                            " + probes {} on each of {} shards",
                            p.1, plan.probing_shards
                        )
                    } else {
                        format!(" + probes {}", p.1)
                    }
                })
            )
        },
    );
    let Some(budget) = budget else {
        if yes {
            return Ok(scenario);
        }
        return Err(RunError::Invalid(format!(
            "refusing to start: this run would create {planned} on {} and the scenario has no budget\n  fix: add `budget: {{max_runs: N}}` to the scenario, or pass --max-runs N (or --yes to accept); `batchproof plan` shows the whole plan",
            plan.target
        )));
    };
    // The budget is the whole job's: with the probes on every shard, every shard's probes
    // count (N × up to ~2,000 runs), not one set.
    if let Some(r) = plan.whole_runs_at_most()
        && r > budget
        && !yes
    {
        return Err(RunError::Invalid(format!(
            "refusing to start: this run would create {planned} on {}, over its budget of {budget}\n  fix: lower the load or raise `budget.max_runs` (or --max-runs); --yes starts anyway, and the load still stops at the budget",
            plan.target
        )));
    }
    // Hold the whole load to what the budget leaves after the probes of every shard
    // that sends them (shard 0 alone, unless the scenario asks for every shard).
    let probes = plan.probe_runs.map_or(0, |p| p.1) * plan.probing_shards;
    let room = budget.saturating_sub(probes) / plan.largest_batch.max(1);
    // The report says so when the budget, not the scenario, ends the load: a job cut
    // short is not a job that passed.
    if plan.load_batches.is_none_or(|n| n > room) {
        scenario.budget_stop = Some(crate::scenario::BudgetStop {
            max_runs: budget,
            planned_runs: plan.runs_at_most(),
            allowed_batches: room,
            detail: None,
        });
    }
    scenario.load.batches = Some(scenario.load.batches.map_or(room, |b| b.min(room)));
    Ok(scenario)
}

/// A rate with at most two decimals, as a reader wants it.
fn round2(r: f64) -> f64 {
    (r * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            "name: t\nload:\n  phases: [{{ramp: 2s, to: 2}}, {{hold: 5s, rate: 2}}]\n  inputs_per_batch: 100\n{extra}"
        );
        Scenario::from_text(std::path::Path::new("t.yaml"), &text).unwrap()
    }

    #[test]
    fn the_plan_counts_what_the_schedule_sends() {
        let s = scenario("");
        let p = Plan::of(&s, None);
        let mut sched = OpenSchedule::new(&s.load.phases);
        let sent = sched.count_remaining(u64::MAX);
        assert_eq!(p.load_batches, Some(sent));
        assert_eq!(p.load_runs, Some(sent * 100));
        assert_eq!(p.phases.iter().filter_map(|x| x.batches).sum::<u64>(), sent);
        assert!(!p.paid);
        assert!(p.to_string().contains("not needed on the embedded mock"));
    }

    #[test]
    fn a_url_target_without_a_budget_is_refused_with_the_planned_count() {
        let s = scenario("target: {url: 'http://127.0.0.1:9'}\nresults: {via: polling}\n");
        let planned = Plan::of(&s, None).runs_at_most().unwrap();
        let e = guard(s.clone(), None, false, None).unwrap_err().to_string();
        assert!(
            e.contains(&format!("up to {planned} runs")) && e.contains("no budget"),
            "{e}"
        );
        let e = guard(s.clone(), Some(planned - 1), false, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("over its budget"), "{e}");
        let ok = guard(s.clone(), Some(planned), false, None).unwrap();
        assert!(ok.load.batches.unwrap() * 100 <= planned);
        assert!(guard(s, None, true, None).is_ok());
    }

    #[test]
    fn a_budget_caps_a_closed_model() {
        let text = "name: t\ntarget: {url: 'http://127.0.0.1:9'}\nresults: {via: polling}\nbudget: {max_runs: 950}\nload:\n  model: closed\n  phases: [{hold: 10s, concurrency: 2}]\n  inputs_per_batch: 100\n";
        let s = Scenario::from_text(std::path::Path::new("t.yaml"), text).unwrap();
        assert_eq!(Plan::of(&s, None).runs_at_most(), None);
        let capped = guard(s, None, false, None).unwrap();
        assert_eq!(capped.load.batches, Some(9));
    }
}
