//! `batchproof run`: start the target (the embedded mock or a URL), the webhook receiver
//! and the poller; drive the load; wait for results until all are in or the deadline
//! passes; then build, judge and write the report. Ctrl-C or SIGTERM stops the load, waits
//! briefly for in-flight work, and still writes the report, marked incomplete.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

use crate::api::client::Client;
use crate::load::{Engine, HttpMetrics};
use crate::report::{self, Report};
use crate::scenario::{Scenario, Target};

mod assemble;
pub mod forecast;
pub mod knee;
mod live;
pub mod plan;
mod progress;
mod results;
mod steps;

pub(crate) use steps::write_files;
use steps::{
    Watchers, check_contract, drive_load, judge, open_ledger, start_receiver, start_target,
    write_report,
};

pub(crate) use assemble::{Span, build_report};
pub(crate) use results::wait_for_results;

/// Exit codes, as documented in README.md.
pub mod exit {
    /// Every threshold met.
    pub const PASSED: u8 = 0;
    /// A threshold failed.
    pub const FAILED: u8 = 1;
    /// Invalid scenario or usage.
    pub const INVALID: u8 = 2;
    /// Target unreachable, or the run was aborted.
    pub const ABORTED: u8 = 3;
    /// A fault of the harness: an invariant of its own accounting did not hold.
    pub const HARNESS_FAULT: u8 = 4;

    /// The exit code a finished report calls for.
    pub fn for_report(report: &crate::report::Report) -> u8 {
        let could_not = |code: &str| report.verdict.reasons.iter().any(|r| r.code == code);
        if !report.complete || could_not("unread") || could_not("unreachable") {
            ABORTED
        } else if report.harness_fault() {
            HARNESS_FAULT
        } else if report.batches.accepted == 0 && report.batches.unreachable > 0 {
            ABORTED
        } else if report.verdict.passed {
            PASSED
        } else {
            FAILED
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Auto,
    Bars,
    Lines,
    None,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: PathBuf,
    pub target: Option<String>,
    /// The environment variable holding the API key; empty: the scenario's
    /// `target.token_env`, else `EXTEND_API_KEY`.
    pub token_env: String,
    pub out: PathBuf,
    pub progress: ProgressMode,
    /// Run against the embedded mock with this profile instead of the scenario's target.
    pub mock_profile: Option<PathBuf>,
    /// Send only this share of the scenario's batches.
    pub shard: Option<report::Shard>,
    /// Turns to `Some(reason)` when the run must stop (Ctrl-C, SIGTERM: the command line
    /// owns the signals); the run then writes its partial report. None: never.
    pub stop: Option<watch::Receiver<Option<String>>>,
    /// Serve live Prometheus metrics at `http://ADDR/metrics` while the run runs.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Run the embedded mock at this time scale instead of its profile's.
    pub time_scale: Option<f64>,
}

/// What kept a run (or a resume) from producing a report. Each kind has its documented
/// exit code; the message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario, the options or the environment cannot be used (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// The run could not start or finish: the target unreachable, a file not writable
    /// (exit 3).
    #[error("{0}")]
    Aborted(String),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Invalid(_) => exit::INVALID,
            RunError::Aborted(_) => exit::ABORTED,
        }
    }
}

fn abort(code: u8, message: impl Into<String>) -> RunError {
    if code == exit::INVALID {
        RunError::Invalid(message.into())
    } else {
        RunError::Aborted(message.into())
    }
}

/// The scenario a run will execute: the file, with `--mock-profile` or `--target` applied.
pub fn prepare(opts: &RunOptions) -> Result<Scenario, RunError> {
    let scenario = target_scenario(opts)?;
    match unreachable_receiver(&scenario, opts) {
        Some(why) => Err(RunError::Invalid(why)),
        None => Ok(scenario),
    }
}

/// As [`prepare`], for `plan` (and `run --dry-run`), which sends nothing: what `run` would
/// refuse before sending comes back as a note beside the scenario, not as an error.
pub fn prepare_plan(opts: &RunOptions) -> Result<(Scenario, Option<String>), RunError> {
    let scenario = target_scenario(opts)?;
    let note = unreachable_receiver(&scenario, opts);
    Ok((scenario, note))
}

/// Webhooks from a `--target` need a public URL the target can reach the receiver at.
fn unreachable_receiver(scenario: &Scenario, opts: &RunOptions) -> Option<String> {
    let w = scenario.results.webhooks.as_ref()?;
    (opts.target.is_some() && w.register && w.public_url.is_none()).then(|| {
        "results via webhooks from --target need `results.webhooks.public_url` in the scenario\n  fix: set it to a URL the target can reach, or use `results.via: polling`".to_string()
    })
}

/// The scenario with the options' target and mock profile laid over it.
fn target_scenario(opts: &RunOptions) -> Result<Scenario, RunError> {
    let invalid = RunError::Invalid;
    let mut scenario = Scenario::load_at(&opts.scenario, opts.target.as_deref())
        .map_err(|e| invalid(e.to_string()))?;
    if let Some(path) = &opts.mock_profile {
        // Laid over the scenario's own mock profile, so a defect profile keeps the
        // scenario's limits and settings and changes only what it names.
        let own = match &scenario.target {
            Target::Mock {
                profile_path: Some(p),
                ..
            } => Some(p.clone()),
            _ => None,
        };
        let layers: Vec<&std::path::Path> = own
            .iter()
            .map(|p| p.as_path())
            .chain([path.as_path()])
            .collect();
        let profile = crate::mock::Profile::layered(&layers).map_err(|e| invalid(e.to_string()))?;
        scenario.target = Target::Mock {
            profile: Box::new(profile),
            profile_path: Some(path.clone()),
        };
    }
    if let Some(ts) = opts.time_scale {
        if !(ts.is_finite() && ts > 0.0) {
            return Err(invalid(format!(
                "--time-scale {ts}: the time scale must be a positive number (1 is real time)"
            )));
        }
        match &mut scenario.target {
            Target::Mock { profile, .. } => profile.time_scale = ts,
            // A URL target runs at its own pace; --time-scale says what that pace is.
            Target::Url { time_scale, .. } => *time_scale = Some(ts),
        }
    }
    if let Some(url) = &opts.target {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!("--target `{url}` is not an http(s) URL")));
        }
        // The key the scenario names stays the key: `--target` moves the run, not the
        // account (a silent EXTEND_API_KEY could be another account's).
        let (token_env, workspace_id) = match (&scenario.target, opts.token_env.as_str()) {
            (_, given) if !given.is_empty() => (given.to_string(), None),
            (
                Target::Url {
                    token_env,
                    workspace_id,
                    ..
                },
                _,
            ) => (token_env.clone(), workspace_id.clone()),
            _ => ("EXTEND_API_KEY".to_string(), None),
        };
        scenario.target = Target::Url {
            time_scale: opts.time_scale,
            url: url.trim_end_matches('/').to_string(),
            token_env,
            workspace_id,
        };
    }
    Ok(scenario)
}

/// Runs `scenario` and writes its reports; returns the report and the files written.
/// Errors before a report exists come back typed, each with its exit code.
pub async fn run_scenario(
    scenario: Scenario,
    opts: &RunOptions,
) -> Result<(Report, Vec<PathBuf>), RunError> {
    writable(&opts.out)?;
    let mut scenario = scenario;
    // Its own nonce in every tag: another run of this scenario on the same workflow (a
    // second pipeline, a killed run's leftovers) never reads as this one.
    if scenario.inputs.run_nonce.is_empty() {
        scenario.inputs.run_nonce = crate::scenario::Tagging::fresh_nonce();
    }
    // A sharded run sends the probes from shard 0 alone: against a paid API, N shards
    // probing would create N times the probes' runs for the same rules. (Only here: the
    // plan and the cost guard of every shard count them once, so all shards agree on
    // the load the budget leaves.)
    if let (Some(shard), Some(checks)) = (opts.shard, scenario.checks.as_mut())
        && shard.index != 0
        && !checks.probes_on_every_shard
    {
        checks.probes = false;
    }
    execute(Arc::new(scenario), opts).await
}

/// The run's flow as numbered steps: (1) the target, (2) the ledger and its journal, (3)
/// the webhook receiver, (4) the poller, progress and memory sampler, (5) the load, its
/// results and the conformance checks, then teardown, (6) the verdict and the files. Each
/// step's work is a function of its own; what stays here is the order and the teardown.
async fn execute(
    scenario: Arc<Scenario>,
    opts: &RunOptions,
) -> Result<(Report, Vec<PathBuf>), RunError> {
    let started_at = chrono::Utc::now();
    let (halt, stop_rx, forward) = one_stop(opts);

    // 1. The target (the metrics address first: a taken port fails before anything runs).
    let metrics_listener = match opts.metrics_listen {
        Some(addr) => Some(live::bind(addr).await?),
        None => None,
    };
    let (mock, base, token, workspace) = start_target(&scenario).await?;
    let client = paced_client(&scenario, opts, &base, token, workspace)?;

    // 2. The ledger and its journal.
    let start = Instant::now();
    let (ledger, dir, factory) =
        open_ledger(&scenario, opts, start, started_at, &base, mock.is_some());
    let metrics = Arc::new(Mutex::new(HttpMetrics::default()));

    // 3. The webhook receiver.
    let listening = match start_receiver(&scenario, &client, &ledger).await {
        Ok(l) => l,
        // Refused or unreachable at registration: nothing can be sent, but a halt before
        // the load still ends the run with a report that says why.
        Err(RunError::Aborted(why)) => {
            tracing::error!("{why}");
            halt.send_replace(Some(why));
            None
        }
        Err(e) => {
            if let Some(m) = mock {
                m.shutdown().await;
            }
            return Err(e);
        }
    };

    // 4. The poller, the progress line and the memory sampler.
    let mut watchers = Watchers::spawn(&scenario, opts, &client, &ledger, &metrics, start, &dir);
    let exporter = metrics_listener.map(|l| {
        live::serve(
            l,
            Arc::new(live::RunCollector {
                ledger: ledger.clone(),
                metrics: metrics.clone(),
                in_flight: watchers.in_flight.clone(),
                shard: opts.shard.map(|s| (s.index, s.count)),
            }),
        )
    });

    // 5. The load, then its results, then the conformance checks.
    let engine = Engine {
        scenario: scenario.clone(),
        factory: factory.clone(),
        client: client.clone(),
        ledger: ledger.clone(),
        metrics: metrics.clone(),
        start,
        shard: opts.shard.map_or((0, 1), |s| (s.index, s.count)),
        in_flight: watchers.in_flight.clone(),
        halt: halt.clone(),
        key_source: steps::key_source(&scenario).into(),
    };
    let unsent = drive_load(engine, &stop_rx).await;
    let (gave_up, gone, probe_findings) =
        results_then_checks(&scenario, &client, &ledger, &base, &stop_rx).await;
    let interrupted = stop_rx.borrow().clone();
    // Teardown: stop listening in the order results arrive, poller first.
    watchers.stop_poller().await;
    if let Some(l) = listening {
        l.stop(&client, &ledger).await;
    }
    watchers.stop_display().await;
    if let Some(m) = mock {
        m.shutdown().await;
    }

    // 6. The verdict, then the report's files.
    let mut report = {
        let ledger = ledger.lock().expect("ledger");
        let metrics = metrics.lock().expect("metrics");
        build_report(
            &scenario,
            &ledger,
            &metrics,
            &base,
            Span {
                started_at,
                start,
                unsent,
                unsent_indexes: Vec::new(),
                interrupted,
            },
        )
    };
    let probe_findings =
        what_could_not_be_done(&mut report, &scenario, gave_up, gone, probe_findings);
    judge(&mut report, &scenario, opts, &ledger, probe_findings);
    let paths = write_report(&report, &dir, &scenario).await;
    if let Some(e) = exporter {
        e.abort();
    }
    if let Some(f) = forward {
        f.abort();
    }
    Ok((report, paths?))
}

/// Refuses, before the first request, an `--out` the run could not write its report into
/// (read-only, a file, a full disk, another user's): against a paid API a report found
/// unwritable at the end is a job paid for nothing.
pub fn writable(out: &Path) -> Result<(), RunError> {
    let refuse = |e: std::io::Error| {
        RunError::Invalid(format!(
            "cannot write reports into {}: {e}\n  fix: pass --out a folder this user can write (nothing was sent)",
            out.display()
        ))
    };
    if out.exists() && !out.is_dir() {
        return Err(RunError::Invalid(format!(
            "cannot write reports into {}: it is a file, not a folder\n  fix: pass --out a folder this user can write (nothing was sent)",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(refuse)?;
    // A real write, not a permission bit: a full disk or a read-only mount shows only so.
    let probe = out.join(format!(".batchproof-write-check-{}", std::process::id()));
    let written = std::fs::write(&probe, vec![b'.'; 4096]);
    let _ = std::fs::remove_file(&probe);
    written.map_err(refuse)
}

/// An earlier run of the same shard in the same `--out` (a pod retried, a second
/// rehearsal on one volume): running the shard again would pay for its batches twice.
#[derive(Debug, Clone, PartialEq)]
pub enum EarlierShard {
    /// It finished: its report is in the folder.
    Reported(PathBuf),
    /// It is running now (its heartbeat is fresh).
    Live(PathBuf),
    /// It died before its report: it can be resumed, collecting only.
    Killed(PathBuf),
}

/// The earlier run of shard `shard` of scenario `name` under `out`, if any (the newest).
pub fn earlier_shard(out: &Path, name: &str, shard: report::Shard) -> Option<EarlierShard> {
    let prefix = folder_name(&format!("{name}-shard{}of{}", shard.index, shard.count));
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{prefix}-")))
                && (p.join("report.json").exists()
                    || p.join(crate::observe::journal::FILE).exists())
        })
        .collect();
    dirs.sort();
    let dir = dirs.pop()?;
    Some(if dir.join("report.json").exists() {
        EarlierShard::Reported(dir)
    } else if crate::observe::journal::is_live(&dir) {
        EarlierShard::Live(dir)
    } else {
        EarlierShard::Killed(dir)
    })
}

/// Step 5, after the load: the results, then the conformance checks — unless the target
/// is gone (every batch unreachable, or the polls lost it): then nothing is audited or
/// probed, since each read would only wait out its own retries to learn the same.
async fn results_then_checks(
    scenario: &Scenario,
    client: &Client,
    ledger: &Arc<Mutex<crate::observe::Ledger>>,
    base: &str,
    stop_rx: &watch::Receiver<Option<String>>,
) -> (
    Option<results::GaveUp>,
    Option<String>,
    Option<(crate::checks::Findings, crate::checks::Reads)>,
) {
    let mut gave_up = None;
    if stop_rx.borrow().is_none() {
        gave_up = wait_for_results(scenario, ledger, client, stop_rx.clone()).await;
    }
    let gone = match &gave_up {
        Some(results::GaveUp::Unreachable(what)) => Some(what.clone()),
        _ => nothing_reached(ledger, base),
    };
    let checked = match gone {
        None => check_contract(scenario, client, ledger, stop_rx).await,
        Some(_) => None,
    };
    (gave_up, gone, checked)
}

/// What the run could not do, into the report: the phases that gave up, the target
/// unreachable (then the run is not complete), the reads refused. Returns the probes'
/// findings for the verdict.
fn what_could_not_be_done(
    report: &mut Report,
    scenario: &Scenario,
    gave_up: Option<results::GaveUp>,
    gone: Option<String>,
    checked: Option<(crate::checks::Findings, crate::checks::Reads)>,
) -> Option<crate::checks::Findings> {
    report.gave_up = match gave_up {
        Some(results::GaveUp::Deadline) => vec![format!(
            "results: the deadline ({}) passed before every result was in",
            crate::config::format_duration(scenario.results.deadline)
        )],
        Some(results::GaveUp::Unreachable(what)) => vec![format!(
            "results: stopped waiting after {} s without an answer from the target ({what})",
            results::OUTAGE_GRACE.as_secs()
        )],
        None => Vec::new(),
    };
    let (probe_findings, reads) = match checked {
        Some((f, r)) => (Some(f), Some(r)),
        None => (None, None),
    };
    report.unreachable = gone
        .or_else(|| reads.as_ref().and_then(|r| r.unreachable.clone()))
        .or_else(|| {
            (report.batches.unreachable > 0).then(|| {
                format!(
                    "{} batch(es) found no connection or no answer",
                    report.batches.unreachable
                )
            })
        });
    if let Some(r) = reads.as_ref().filter(|r| r.unreachable.is_some()) {
        report.gave_up.push(format!(
            "audit and probes: stopped at the first read the target did not answer after its retries ({} connection failure(s))",
            r.connection_failures
        ));
    }
    report.reads = reads;
    if report.unreachable.is_some() {
        report.complete = false;
    }
    probe_findings
}

/// When no batch reached the target (and none was accepted), what was seen: there is
/// nothing to audit, and nothing the probes would learn.
fn nothing_reached(ledger: &Mutex<crate::observe::Ledger>, base: &str) -> Option<String> {
    let l = ledger.lock().expect("ledger");
    let batches = l.batches();
    let accepted = batches
        .iter()
        .any(|b| matches!(b.outcome, crate::observe::BatchOutcome::Accepted { .. }));
    let unreached = batches
        .iter()
        .filter(|b| {
            use crate::observe::BatchOutcome::*;
            match &b.outcome {
                Unreachable { .. } => true,
                PossibleDuplicate { reason } => reason == "timed out",
                _ => false,
            }
        })
        .count();
    (!accepted && unreached > 0)
        .then(|| format!("none of the {unreached} batch(es) sent to {base} was answered"))
}

/// The run's HTTP client, paced under the limits. The limits are the account's, not the
/// pod's: each of N shards paces itself at 1/N of them, so N shards together stay under
/// them.
fn paced_client(
    scenario: &Scenario,
    opts: &RunOptions,
    base: &str,
    token: Option<String>,
    workspace: Option<String>,
) -> Result<Client, RunError> {
    let load = &scenario.load;
    Ok(Client::new(
        base,
        token,
        Some(scenario.api_version),
        workspace,
        load.request_timeout,
        load.max_in_flight.max(16),
    )
    .map_err(|e| abort(exit::ABORTED, format!("building the HTTP client: {e}")))?
    .paced(
        &scenario
            .pacing_limits()
            .shared_by(opts.shard.map_or(1, |s| s.count)),
    ))
}

/// What stops a run, with its reason.
type Stop = watch::Sender<Option<String>>;
/// The task forwarding the caller's signal to the run's stop.
type Forwarder = Option<tokio::task::JoinHandle<()>>;

/// One stop for the whole run: the caller's signal (Ctrl-C, SIGTERM) or the run's own
/// halt (a refused API key), whichever comes first. Returns the halt's sender, the stop
/// every step watches, and the task forwarding the caller's signal.
fn one_stop(opts: &RunOptions) -> (Stop, watch::Receiver<Option<String>>, Forwarder) {
    let (halt, stop_rx) = watch::channel::<Option<String>>(None);
    let forward = opts.stop.clone().map(|mut outer| {
        let halt = halt.clone();
        tokio::spawn(async move {
            let why = match outer.wait_for(|s| s.is_some()).await {
                Ok(w) => w.clone(),
                Err(_) => return,
            };
            halt.send_if_modified(|c| {
                c.is_none() && {
                    *c = why;
                    true
                }
            });
        })
    });
    (halt, stop_rx, forward)
}

pub(crate) fn report_dir(out: &Path, name: &str, at: chrono::DateTime<chrono::Utc>) -> PathBuf {
    out.join(format!(
        "{}-{}",
        folder_name(name),
        at.format("%Y%m%d-%H%M%S-%3f")
    ))
}

/// A run's name as its report folder spells it (before the time stamp).
fn folder_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
