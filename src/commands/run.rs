//! `batchproof run`, `validate`, `resume` and `report --from-journal`: the commands that
//! work on a scenario or a run's folder.

use crate::commands::stdout::{say, sayln, tell};
use std::path::{Path, PathBuf};

use batchproof::run::plan::{self, Plan};
use batchproof::run::{self, ProgressMode, RunOptions, exit};
use batchproof::scenario::{Scenario, Target};

use super::{finish, signals};
use crate::cli;

impl From<cli::Progress> for ProgressMode {
    fn from(p: cli::Progress) -> Self {
        match p {
            cli::Progress::Auto => ProgressMode::Auto,
            cli::Progress::Bars => ProgressMode::Bars,
            cli::Progress::Lines => ProgressMode::Lines,
            cli::Progress::None => ProgressMode::None,
        }
    }
}

/// What `run` may spend against a paid target.
pub struct Spend {
    /// Print the plan and send nothing.
    pub dry_run: bool,
    pub max_runs: Option<u64>,
    pub yes: bool,
    /// Stop the run after this long (`--max-duration`).
    pub max_duration: Option<std::time::Duration>,
}

/// `batchproof run`.
pub async fn run(mut opts: RunOptions, spend: Spend) -> u8 {
    if spend.dry_run {
        return plan(opts, None);
    }
    opts.stop = Some(signals::stop_on_signal_or_after(spend.max_duration));
    let scenario = match run::prepare(&opts) {
        Ok(s) => s,
        Err(e) => {
            tell!("error: {e}");
            return e.exit_code();
        }
    };
    if let Some(w) = Plan::of(&scenario, None).deadline_warning() {
        tell!("warning: {w}");
    }
    // A shard runs once: an earlier run of it in this --out is resumed or refused, never
    // sent again (a retried pod, a second rehearsal on the same volume).
    if let Some(shard) = opts.shard
        && let Some(earlier) = run::earlier_shard(&opts.out, &scenario.name, shard)
    {
        return match earlier {
            run::EarlierShard::Reported(dir) => {
                tell!(
                    "error: shard {}/{} already ran into {} (its report is there): running it again would send and pay for its batches twice\n  fix: merge the shards (`batchproof merge --shards {}`), or give a new rehearsal a fresh --out",
                    shard.index,
                    shard.count,
                    dir.display(),
                    opts.out.display()
                );
                exit::INVALID
            }
            run::EarlierShard::Live(dir) => {
                tell!(
                    "error: shard {}/{} is running now into {} (its heartbeat is fresh): a second copy would send its batches twice\n  fix: let it finish; if it is stuck, stop it first",
                    shard.index,
                    shard.count,
                    dir.display()
                );
                exit::INVALID
            }
            run::EarlierShard::Killed(dir) => {
                tell!(
                    "note: shard {}/{} was killed before its report in {}: resuming it from its journal (collecting its results, sending nothing again)",
                    shard.index,
                    shard.count,
                    dir.display()
                );
                let token_env = match &scenario.target {
                    Target::Url { token_env, .. } => token_env.clone(),
                    Target::Mock { .. } => "EXTEND_API_KEY".into(),
                };
                let stop = opts.stop.clone().expect("set above");
                finish(batchproof::resume::resume(&dir, &token_env, stop).await)
            }
        };
    }
    let scenario = match plan::guard(scenario, spend.max_runs, spend.yes, opts.shard) {
        Ok(s) => s,
        Err(e) => {
            tell!("error: {e}");
            return e.exit_code();
        }
    };
    finish(run::run_scenario(scenario, &opts).await)
}

/// `batchproof plan`: the plan, priced at an earlier report's credits per run when given.
pub fn plan(opts: RunOptions, from: Option<&Path>) -> u8 {
    let scenario = match run::prepare_plan(&opts) {
        Ok((s, None)) => s,
        Ok((s, Some(refusal))) => {
            // The plan sends nothing, so it is printed; the run would stop here.
            tell!("note: `run` would refuse this as it stands: {refusal}");
            s
        }
        Err(e) => {
            tell!("error: {e}");
            return e.exit_code();
        }
    };
    let mut credits_from = None;
    let credits_per_run = match from.map(batchproof::report::json::read) {
        None => None,
        Some(Ok(r)) if r.runs.credited > 0 => {
            credits_from = r.runs.credits_source.clone();
            Some(r.runs.credits / r.runs.credited as f64)
        }
        Some(Ok(_)) => {
            tell!("note: that report's runs reported no usage; the plan is not priced");
            None
        }
        Some(Err(e)) => {
            tell!("error: {e:#}");
            return exit::INVALID;
        }
    };
    say!("{}", {
        let mut p = Plan::of(&scenario, credits_per_run).sharded(opts.shard);
        p.credits_from = credits_from;
        p
    });
    exit::PASSED
}

/// `batchproof validate`: exit 0 if every file is valid, 2 otherwise.
pub fn validate(files: &[PathBuf]) -> u8 {
    let mut code = exit::PASSED;
    for f in files {
        match Scenario::load(f) {
            Ok(s) => sayln!(
                "{}: ok ({} phase(s), {} threshold(s), target {})",
                f.display(),
                s.load.phases.len(),
                s.thresholds.len(),
                match &s.target {
                    Target::Mock { .. } => "embedded mock".to_string(),
                    Target::Url { url, .. } => url.clone(),
                }
            ),
            Err(e) => match batchproof::mock::Profile::load(f) {
                // Not a scenario, but a valid mock profile: say what it is.
                Ok(p) => sayln!(
                    "{}: ok — a mock profile, not a scenario (time scale {}, {} workers); use it as `target.mock.profile` in a scenario, with `run --mock-profile`, or with `batchproof mock --profile`",
                    f.display(),
                    p.time_scale,
                    p.processing.workers
                ),
                Err(_) => {
                    tell!("error: {e}");
                    code = exit::INVALID;
                }
            },
        }
    }
    code
}

/// `batchproof resume DIR`.
pub async fn resume(dir: &Path, token_env: &str) -> u8 {
    let stop = signals::stop_on_signal();
    finish(batchproof::resume::resume(dir, token_env, stop).await)
}

/// `batchproof report --from-journal DIR`.
pub fn report_from_journal(dir: &Path) -> u8 {
    finish(batchproof::resume::report_from_journal(dir))
}

/// What `forecast` asks for besides the run's options.
pub struct ForecastJob {
    pub files: Option<u64>,
    pub sample: run::forecast::SampleSize,
}

/// `batchproof forecast`: run the sample, then print the forecast's headline figures.
pub async fn forecast(mut opts: RunOptions, job: ForecastJob, spend: Spend) -> u8 {
    opts.stop = Some(signals::stop_on_signal());
    let scenario = run::prepare(&opts)
        .and_then(|s| run::forecast::sample_scenario(s, job.files, job.sample))
        .and_then(|s| plan::guard(s, spend.max_runs, spend.yes, opts.shard));
    let scenario = match scenario {
        Ok(s) => s,
        Err(e) => {
            tell!("error: {e}");
            return e.exit_code();
        }
    };
    let result = run::run_scenario(scenario, &opts).await;
    let (forecast, error) = match &result {
        Ok((r, _)) => (r.forecast.clone(), r.forecast_error.clone()),
        Err(_) => (None, None),
    };
    let code = finish(result);
    match (forecast, error) {
        (Some(f), _) => {
            sayln!("{}", batchproof::report::forecast::headline(&f));
            code
        }
        (None, Some(e)) => {
            tell!("error: no forecast: {e}");
            code.max(exit::FAILED)
        }
        (None, None) => code,
    }
}

/// `batchproof knee`.
pub async fn knee(mut opts: RunOptions, knee: run::knee::KneeOptions, yes: bool) -> u8 {
    opts.stop = Some(signals::stop_on_signal());
    let scenario = match run::prepare(&opts) {
        Ok(s) => s,
        Err(e) => {
            tell!("error: {e}");
            return e.exit_code();
        }
    };
    if matches!(scenario.target, Target::Url { .. }) && !yes {
        tell!(
            "error: a knee search against {} sends until the target breaks, so it runs up a bill and meets rate limits on purpose\n  fix: add --yes to run it, or search the mock (--mock-profile mock/payg.yaml)",
            opts.target.as_deref().unwrap_or("the target")
        );
        return exit::INVALID;
    }
    match run::knee::search(scenario, &knee, &opts).await {
        Ok((report, paths)) => {
            for p in &paths {
                sayln!("report: {}", p.display());
            }
            if let Some(k) = &report.knee {
                for s in &k.steps {
                    sayln!("  {}", s.line());
                }
                sayln!("knee: {}", k.headline());
            }
            for r in report
                .verdict
                .reasons
                .iter()
                .filter(|r| r.code == "budget_stop")
            {
                tell!("knee: {}", r.message);
            }
            run::knee::exit_code(&report)
        }
        Err(e) => {
            tell!("error: {e}");
            e.exit_code()
        }
    }
}
