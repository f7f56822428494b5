//! `batchproof run`: start the target (the embedded mock or a URL), the webhook receiver
//! and the poller; drive the load; wait for results until all are in or the deadline
//! passes; then build, judge and write the report. Ctrl-C or SIGTERM stops the load, waits
//! briefly for in-flight work, and still writes the report, marked incomplete.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::api::client::Client;
use crate::api::{RUN_EVENT_TYPES, RunStatus};
use crate::load::inputs::InputFactory;
use crate::load::{Engine, HttpMetrics};
use crate::mock::MockServer;
use crate::observe::poller::Poller;
use crate::observe::{BatchOutcome, Ledger};
use crate::report::{
    self, BatchLine, Batches, Generator, Harness, Http, Projection, Report, Runs, ScenarioInfo,
    TargetInfo, Throughput, Verdict,
};
use crate::scenario::{Model, Scenario, Target};
use crate::webhook::receiver::Receiver;

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
        if !report.complete {
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
}

/// What went wrong before a report could exist.
struct Abort {
    code: u8,
    message: String,
}

fn abort(code: u8, message: impl Into<String>) -> Abort {
    Abort {
        code,
        message: message.into(),
    }
}

/// The scenario a run will execute: the file, with `--mock-profile` or `--target` applied.
pub fn prepare(opts: &RunOptions) -> Result<Scenario, (u8, String)> {
    let invalid = |m: String| (exit::INVALID, m);
    let mut scenario = Scenario::load(&opts.scenario).map_err(|e| invalid(e.to_string()))?;
    if let Some(path) = &opts.mock_profile {
        let profile = crate::mock::Profile::load(path).map_err(|e| invalid(e.to_string()))?;
        scenario.target = Target::Mock {
            profile: Box::new(profile),
            profile_path: Some(path.clone()),
        };
    }
    if let Some(url) = &opts.target {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!("--target `{url}` is not an http(s) URL")));
        }
        scenario.target = Target::Url {
            url: url.trim_end_matches('/').to_string(),
            token_env: opts.token_env.clone(),
            workspace_id: None,
        };
        if let Some(w) = &scenario.results.webhooks
            && w.register
            && w.public_url.is_none()
        {
            return Err(invalid("results via webhooks from --target need `results.webhooks.public_url` in the scenario\n  fix: set it to a URL the target can reach, or use `results.via: polling`".into()));
        }
    }
    Ok(scenario)
}

async fn register_webhook(
    client: &Client,
    url: &str,
    scenario: &Scenario,
) -> Result<String, Abort> {
    let version = scenario.api_version;
    let reply = client
        .post_json(
            "/webhook_endpoints",
            &json!({"url": url, "name": format!("batchproof {}", scenario.name), "enabledEvents": [], "apiVersion": version.as_str()}),
        )
        .await;
    let unreachable = |r: &crate::api::client::Reply| {
        matches!(
            r,
            crate::api::client::Reply::Connect { .. } | crate::api::client::Reply::Timeout { .. }
        )
    };
    if unreachable(&reply) {
        return Err(abort(
            exit::ABORTED,
            format!(
                "target unreachable at {}: {}",
                client.base(),
                reply.describe()
            ),
        ));
    }
    let body = reply.body().filter(|_| reply.status() == Some(200));
    let (Some(id), Some(secret)) = (
        body.and_then(|b| b.get("id")).and_then(Value::as_str),
        body.and_then(|b| b.get("signingSecret"))
            .and_then(Value::as_str),
    ) else {
        return Err(abort(
            exit::ABORTED,
            format!(
                "registering the webhook endpoint failed: {}",
                reply.describe()
            ),
        ));
    };
    let events: Vec<&str> = RUN_EVENT_TYPES
        .iter()
        .copied()
        .filter(|e| !(version.is_legacy() && *e == "workflow_run.cancelled"))
        .collect();
    let reply = client
        .post_json(
            "/webhook_subscriptions",
            &json!({"webhookEndpointId": id, "resourceType": "workflow", "resourceId": scenario.workflow.id, "enabledEvents": events}),
        )
        .await;
    if reply.status() != Some(200) {
        return Err(abort(
            exit::ABORTED,
            format!(
                "subscribing the webhook endpoint to workflow `{}` failed: {}",
                scenario.workflow.id,
                reply.describe()
            ),
        ));
    }
    Ok(secret.to_string())
}

/// Runs `scenario` and writes its reports; returns the report and the files written.
/// Errors before a report exists come back as (exit code, message).
pub async fn run_scenario(
    scenario: Scenario,
    opts: &RunOptions,
) -> Result<(Report, Vec<PathBuf>), (u8, String)> {
    execute(Arc::new(scenario), opts)
        .await
        .map_err(|a| (a.code, a.message))
}

async fn execute(
    scenario: Arc<Scenario>,
    opts: &RunOptions,
) -> Result<(Report, Vec<PathBuf>), Abort> {
    let started_at = chrono::Utc::now();
    // Without a stop signal from the caller, a sender kept alive here never fires.
    let (_never, idle) = watch::channel::<Option<String>>(None);
    let stop_rx = opts.stop.clone().unwrap_or(idle);

    // The target.
    let (mock, base, token, workspace) = match &scenario.target {
        Target::Mock { profile, .. } => {
            let token = profile.auth.tokens.first().cloned();
            let server = MockServer::start(
                (**profile).clone(),
                "127.0.0.1:0".parse().expect("literal address"),
            )
            .await
            .map_err(|e| abort(exit::ABORTED, format!("starting the embedded mock: {e:#}")))?;
            let url = server.url();
            (Some(server), url, token, None)
        }
        Target::Url {
            url,
            token_env,
            workspace_id,
        } => {
            let token = std::env::var(token_env).map_err(|_| {
                abort(exit::INVALID, format!("environment variable `{token_env}` (the API key) is not set\n  fix: export {token_env}=sk_… or pass --token-env NAME"))
            })?;
            (None, url.clone(), Some(token), workspace_id.clone())
        }
    };
    let load = &scenario.load;
    let client = Client::new(
        &base,
        token,
        Some(scenario.api_version),
        workspace,
        load.request_timeout,
        load.max_in_flight.max(16),
    )
    .map_err(|e| abort(exit::ABORTED, format!("building the HTTP client: {e}")))?;

    let start = Instant::now();
    let collecting = scenario.results.webhooks.is_some() || scenario.results.polling.is_some();
    let ledger = Arc::new(Mutex::new(Ledger::new(
        start,
        scenario.inputs.correlation_key.clone(),
        collecting,
    )));
    ledger.lock().expect("ledger").judge = scenario.checks.is_some();
    // The report folder exists from the start: the journal grows in it as the run goes.
    let name = match opts.shard {
        Some(s) => format!("{}-shard{}of{}", scenario.name, s.index, s.count),
        None => scenario.name.clone(),
    };
    let dir = report_dir(&opts.out, &name, started_at);
    let header = crate::observe::journal::Header {
        scenario_file: std::fs::canonicalize(&scenario.path)
            .unwrap_or_else(|_| scenario.path.clone())
            .display()
            .to_string(),
        scenario_text: scenario.text.clone(),
        target_url: base.clone(),
        embedded_mock: mock.is_some(),
        started_at: started_at.to_rfc3339(),
        shard: opts.shard,
    };
    match crate::observe::Journal::create(&dir, &header) {
        Ok(j) => ledger.lock().expect("ledger").journal = Some(j),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot write the journal ({e}); a killed run will leave nothing to resume from")
        }
    }
    let metrics = Arc::new(Mutex::new(HttpMetrics::default()));
    // One factory builds the bodies and, later, rebuilds an input's metadata to compare
    // with what comes back, so the ledger keeps no copy of it.
    let factory = Arc::new(InputFactory::new(&scenario));
    {
        let f = factory.clone();
        ledger.lock().expect("ledger").expected_metadata =
            Some(Box::new(move |b, i| f.metadata(b, i)));
    }

    // Webhook receiver.
    let mut receiver = None;
    let mut consumer = None;
    if let Some(w) = &scenario.results.webhooks {
        let (tx, mut rx) = mpsc::channel(crate::webhook::receiver::QUEUE);
        let r = Receiver::start(w.listen, tx, w.refuse_first)
            .await
            .map_err(|e| {
                abort(
                    exit::INVALID,
                    format!("webhook receiver cannot listen on {}: {e}", w.listen),
                )
            })?;
        let public = w.public_url.clone().unwrap_or_else(|| r.url());
        let secret = if w.register {
            match register_webhook(&client, &public, &scenario).await {
                Ok(s) => s,
                Err(a) => {
                    r.stop().await;
                    if let Some(m) = mock {
                        m.shutdown().await;
                    }
                    return Err(a);
                }
            }
        } else {
            let env = w
                .secret_env
                .as_deref()
                .unwrap_or("BATCHPROOF_WEBHOOK_SECRET");
            std::env::var(env).map_err(|_| {
                abort(
                    exit::INVALID,
                    format!("environment variable `{env}` (the webhook signing secret) is not set"),
                )
            })?
        };
        let ledger = ledger.clone();
        let max_age = w.max_age;
        consumer = Some(tokio::spawn(async move {
            // Many deliveries per lock: the ledger is shared with the submitters.
            let mut batch = Vec::with_capacity(256);
            while rx.recv_many(&mut batch, 256).await > 0 {
                let mut ledger = ledger.lock().expect("ledger");
                for d in batch.drain(..) {
                    ledger.ingest_delivery(&d, &secret, max_age);
                }
            }
        }));
        receiver = Some(r);
    }

    // Poller.
    let (poll_stop_tx, poll_stop_rx) = watch::channel(false);
    let poller = scenario.results.polling.clone().map(|config| {
        let p = Poller {
            client: client.clone(),
            ledger: ledger.clone(),
            metrics: metrics.clone(),
            config,
            version: scenario.api_version,
        };
        tokio::spawn(p.run(poll_stop_rx))
    });

    // Progress.
    let in_flight = Arc::new(AtomicU64::new(0));
    let progress_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let progress = spawn_progress(
        opts.progress,
        ledger.clone(),
        metrics.clone(),
        in_flight.clone(),
        progress_done.clone(),
    );

    // Memory, once a second, into the timeline (soak runs watch it plateau).
    let sampler = {
        let ledger = ledger.clone();
        let done = progress_done.clone();
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                {
                    let mut l = ledger.lock().expect("ledger");
                    if let Some(kib) = crate::metrics::rss_kib() {
                        let since = start.elapsed();
                        l.timeline.at(since).rss_kib = kib;
                    }
                    // Results reach the journal's file at least once a second.
                    if let Some(j) = &mut l.journal {
                        j.flush();
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    // Load.
    let (load_stop_tx, load_stop_rx) = watch::channel(false);
    let mut stop_watch = stop_rx.clone();
    let forward = tokio::spawn(async move {
        if stop_watch.wait_for(|s| s.is_some()).await.is_ok() {
            let _ = load_stop_tx.send(true);
        }
    });
    let engine = Engine {
        scenario: scenario.clone(),
        factory: factory.clone(),
        client: client.clone(),
        ledger: ledger.clone(),
        metrics: metrics.clone(),
        start,
        shard: opts.shard.map_or((0, 1), |s| (s.index, s.count)),
        in_flight: in_flight.clone(),
    };
    let unsent = engine.drive(load_stop_rx, Duration::from_secs(5)).await;
    let load_end = Instant::now();
    forward.abort();
    tracing::info!(unsent, "load finished; waiting for results");

    // Results.
    if stop_rx.borrow().is_none() {
        wait_for_results(&scenario, &ledger, stop_rx.clone()).await;
    }

    // Conformance: audit and probes, while the receiver and the poller still listen.
    let mut probe_findings = None;
    if let Some(checks) = &scenario.checks
        && stop_rx.borrow().is_none()
    {
        tracing::info!("checking the contract: audit of accepted batches and probes");
        let mut stop = stop_rx.clone();
        tokio::select! {
            f = crate::probes::run(&client, &scenario, checks, &ledger) => probe_findings = Some(f),
            _ = stop.wait_for(|s| s.is_some()) => {}
        }
    }
    let interrupted = stop_rx.borrow().clone();
    let _ = poll_stop_tx.send(true);
    if let Some(p) = poller {
        let _ = tokio::time::timeout(Duration::from_secs(5), p).await;
    }
    if let Some(r) = receiver {
        ledger.lock().expect("ledger").webhooks.refused =
            u64::from(r.refused.load(Ordering::Relaxed));
        r.stop().await;
    }
    if let Some(c) = consumer {
        let _ = tokio::time::timeout(Duration::from_secs(5), c).await;
    }
    progress_done.store(true, Ordering::Relaxed);
    sampler.abort();
    if let Some(p) = progress {
        let _ = p.await;
    }
    if let Some(m) = mock {
        m.shutdown().await;
    }

    let mut report = {
        let ledger = ledger.lock().expect("ledger");
        let metrics = metrics.lock().expect("metrics");
        build_report(
            &scenario,
            &ledger,
            &metrics,
            &base,
            started_at,
            start,
            load_end,
            unsent,
            interrupted,
        )
    };
    // Rules are judged only on a run that finished: half a run would fail rules (runs
    // not terminal, webhooks not arrived) that the target did not break.
    if let (Some(checks), Some(mut findings), true) =
        (&scenario.checks, probe_findings, report.complete)
    {
        let ledger = ledger.lock().expect("ledger");
        findings.merge(ledger.findings.clone());
        if scenario.results.webhooks.is_some() {
            ledger.judge_terminal_events(&mut findings);
        }
        crate::checks::batch::unique_ids(
            &mut findings,
            ledger.batches.iter().filter_map(|b| match &b.outcome {
                BatchOutcome::Accepted { batch_id } => Some(batch_id.as_str()),
                _ => None,
            }),
        );
        report.rules = crate::checks::results(&findings, &checks.selection, scenario.api_version);
    }
    report.invariants = ledger
        .lock()
        .expect("ledger")
        .judge_invariants(report.complete);
    report.shard = opts.shard;
    report.resources = report::Resources::from_timeline(&report.timeline);
    report.judge(&scenario.thresholds);
    {
        let l = ledger.lock().expect("ledger");
        let inputs = l.inputs.len().max(1);
        tracing::info!(
            inputs = l.inputs.len(),
            bytes = l.accounting_bytes(),
            bytes_per_input = l.accounting_bytes() / inputs,
            "per-input accounting held"
        );
    }
    if let Some(j) = &mut ledger.lock().expect("ledger").journal {
        j.flush();
        if let Some(e) = &j.error {
            tracing::warn!(path = %j.path.display(), "the journal is incomplete: {e}");
        }
    }
    let formats = report::run_formats(scenario.checks.is_some());
    tracing::info!(dir = %dir.display(), "writing the report");
    // Test seam (debug builds only): hold the write open so a test can signal during it.
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("BATCHPROOF_TEST_SLOW_WRITE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let paths = report::write_all(&report, &dir, &formats).map_err(|e| {
        abort(
            exit::ABORTED,
            format!("writing the report to {}: {e}", dir.display()),
        )
    })?;
    Ok((report, paths))
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

pub(crate) fn report_dir(out: &Path, name: &str, at: chrono::DateTime<chrono::Utc>) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.join(format!("{safe}-{}", at.format("%Y%m%d-%H%M%S-%3f")))
}

/// Waits until every accepted input has a result on the channels in use, or the deadline
/// passes, or the run is stopped. With both channels, polling is the authority: once it
/// has seen everything, webhooks get a short settling time to catch up.
pub(crate) async fn wait_for_results(
    scenario: &Scenario,
    ledger: &Mutex<Ledger>,
    mut stop: watch::Receiver<Option<String>>,
) {
    let webhooks = scenario.results.webhooks.is_some();
    let polling = scenario.results.polling.is_some();
    let deadline = Instant::now() + scenario.results.deadline;
    let settle = Duration::from_secs(2);
    let mut polled_all_at: Option<Instant> = None;
    loop {
        let (wm, pm) = ledger.lock().expect("ledger").coverage();
        let now = Instant::now();
        let done = match (webhooks, polling) {
            (true, false) => wm == 0,
            (false, true) => pm == 0,
            (true, true) => {
                if pm == 0 {
                    let at = *polled_all_at.get_or_insert(now);
                    wm == 0 || now.duration_since(at) >= settle
                } else {
                    false
                }
            }
            (false, false) => true,
        };
        if now >= deadline {
            return;
        }
        if done {
            if !scenario.results.settle.is_zero() {
                ledger.lock().expect("ledger").settling = true;
                tokio::select! {
                    _ = tokio::time::sleep(scenario.results.settle) => {}
                    _ = stop.wait_for(|s| s.is_some()) => {}
                }
            }
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.wait_for(|s| s.is_some()) => return,
        }
    }
}

fn spawn_progress(
    mode: ProgressMode,
    ledger: Arc<Mutex<Ledger>>,
    metrics: Arc<Mutex<HttpMetrics>>,
    in_flight: Arc<AtomicU64>,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mode = match mode {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bars,
        ProgressMode::Auto => ProgressMode::Lines,
        m => m,
    };
    if mode == ProgressMode::None {
        return None;
    }
    Some(tokio::spawn(async move {
        let bar = (mode == ProgressMode::Bars).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        let period = if bar.is_some() {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        };
        let started = Instant::now();
        let mut last = (Instant::now(), 0u64, 0u64);
        loop {
            tokio::time::sleep(period).await;
            let finished = done.load(Ordering::Relaxed);
            let (accepted, runs, seen, webhooks) = {
                let l = ledger.lock().expect("ledger");
                let accepted = l
                    .batches
                    .iter()
                    .filter(|b| matches!(b.outcome, BatchOutcome::Accepted { .. }))
                    .count() as u64;
                let runs: u64 = l
                    .batches
                    .iter()
                    .filter(|b| matches!(b.outcome, BatchOutcome::Accepted { .. }))
                    .map(|b| b.inputs as u64)
                    .sum();
                let seen = runs - l.outstanding();
                (accepted, runs, seen, l.webhooks.received)
            };
            let errors = metrics.lock().expect("metrics").errors;
            let dt = last.0.elapsed().as_secs_f64().max(1e-3);
            let (batch_rate, run_rate) = (
                (accepted - last.1.min(accepted)) as f64 / dt,
                (seen - last.2.min(seen)) as f64 / dt,
            );
            last = (Instant::now(), accepted, seen);
            let line = format!(
                "[{:>5.1}s] batches {accepted} ({batch_rate:.1}/s, {} in flight) · runs {seen}/{runs} finished ({run_rate:.0}/s) · webhooks {webhooks} · http errors {errors}",
                started.elapsed().as_secs_f64(),
                in_flight.load(Ordering::Relaxed)
            );
            match &bar {
                Some(b) => b.set_message(line),
                None => tracing::info!("{line}"),
            }
            if finished {
                if let Some(b) = bar {
                    b.finish_and_clear();
                }
                return;
            }
        }
    }))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn build_report(
    scenario: &Scenario,
    ledger: &Ledger,
    metrics: &HttpMetrics,
    base: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    start: Instant,
    load_end: Instant,
    unsent: u64,
    interrupted: Option<String>,
) -> Report {
    let since = |t: Instant| t.saturating_duration_since(start).as_secs_f64() * 1e3;
    let mut batches = Batches {
        scheduled: ledger.batches.len() as u64 + unsent,
        accepted: 0,
        rejected: 0,
        throttled: 0,
        possible_duplicates: 0,
        unreachable: 0,
        unanswered: unsent,
        completion: ledger.batch_completion.summary(),
        list: Vec::new(),
    };
    let mut runs = Runs {
        submitted: 0,
        seen: 0,
        missing: 0,
        rejected: 0,
        by_status: BTreeMap::new(),
        by_channel: BTreeMap::new(),
        anomalies: ledger.anomalies.clone(),
        missing_examples: ledger.missing_examples(20),
    };
    for s in RunStatus::ALL.iter().filter(|s| s.is_terminal()) {
        runs.by_status.insert(s.as_str().to_string(), 0);
    }
    for k in ["webhook_only", "poll_only", "both"] {
        runs.by_channel.insert(k.to_string(), 0);
    }
    let collecting = scenario.results.webhooks.is_some() || scenario.results.polling.is_some();
    let mut completions: Vec<Instant> = Vec::new();
    for b in &ledger.batches {
        let (name, detail, batch_id) = match &b.outcome {
            BatchOutcome::Pending => ("unanswered", None, None),
            BatchOutcome::Accepted { batch_id } => ("accepted", None, Some(batch_id.clone())),
            BatchOutcome::Rejected { error, .. } => ("rejected", Some(error.clone()), None),
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
                let r = &ledger.inputs[(b.first_seq + i) as usize];
                match r.first_seen() {
                    Some((seen, _)) => {
                        runs.seen += 1;
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
    // Steady completion rate: between the 10th and 90th percentile of completion times,
    // which leaves out the ramp-up of the queue and the tail of the slowest runs.
    completions.sort();
    let (steady, window) = if completions.len() >= 10 {
        let a = completions[completions.len() / 10];
        let b = completions[completions.len() * 9 / 10];
        let w = b.saturating_duration_since(a).as_secs_f64();
        let n = (completions.len() * 9 / 10 - completions.len() / 10) as f64;
        if w > 0.0 { (n / w, w) } else { (0.0, 0.0) }
    } else {
        (0.0, 0.0)
    };
    let first_intended = ledger.batches.first().map(|b| b.intended).unwrap_or(start);
    let last_answer = ledger
        .batches
        .iter()
        .filter_map(|b| b.answered)
        .max()
        .unwrap_or(load_end);
    let load_secs = last_answer
        .saturating_duration_since(first_intended)
        .as_secs_f64();
    let batches_per_s = if load_secs > 0.0 {
        batches.accepted as f64 / load_secs
    } else {
        0.0
    };
    let submit = metrics.submit.summary();
    let lag_p99 = submit.lag.p99_ms;
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
    let projection = scenario.project_files.map(|files| {
        let avg = if batches.accepted > 0 { runs.submitted as f64 / batches.accepted as f64 } else { 0.0 };
        let batches_needed = if avg > 0.0 { (files as f64 / avg).ceil() as u64 } else { 0 };
        let mut assumptions = vec![
            format!("batches of {avg:.0} inputs on average, as in this run"),
            format!("batches accepted at {batches_per_s:.2}/s, as measured here"),
            format!("runs completing at {steady:.1}/s, the steady rate measured between the 10th and 90th percentile of completions"),
            "the target's capacity is not shared with other traffic, and rate limits stay as they were during this run".to_string(),
        ];
        if let Some((_, ts)) = &mock_info
            && (*ts - 1.0).abs() > f64::EPSILON
        {
            assumptions.push(format!("the target is the mock at time scale {ts}: multiply times by {ts} for the simulated real duration"));
        }
        Projection {
            files,
            batches_needed,
            submit_s: if batches_per_s > 0.0 { batches_needed as f64 / batches_per_s } else { f64::INFINITY },
            complete_s: if steady > 0.0 { files as f64 / steady + ledger.e2e.percentile(50.0).as_secs_f64() } else { f64::INFINITY },
            assumptions,
        }
    });
    let mut operations = BTreeMap::new();
    operations.insert("submit".to_string(), submit);
    if scenario.results.polling.is_some() {
        operations.insert("list".to_string(), metrics.list.summary());
        operations.insert("get".to_string(), metrics.get.summary());
    }
    let finished_at = chrono::Utc::now();
    let mut via = Vec::new();
    if scenario.results.webhooks.is_some() {
        via.push("webhooks".to_string());
    }
    if scenario.results.polling.is_some() {
        via.push("polling".to_string());
    }
    Report {
        schema: report::SCHEMA.to_string(),
        complete: interrupted.is_none(),
        interrupted,
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
        },
        target: TargetInfo {
            kind: if mock_info.is_some() {
                "mock".into()
            } else {
                "url".into()
            },
            url: base.to_string(),
            api_version: scenario.api_version.as_str().to_string(),
            workflow_id: scenario.workflow.id.clone(),
            mock_profile: mock_info.as_ref().map(|m| m.0.clone()),
            mock_time_scale: mock_info.map(|m| m.1),
            results_via: via,
        },
        started_at: started_at.to_rfc3339(),
        finished_at: finished_at.to_rfc3339(),
        duration_s: (finished_at - started_at).num_milliseconds() as f64 / 1e3,
        verdict: Verdict {
            passed: true,
            thresholds: vec![],
        },
        generator: Generator {
            saturated: lag_p99 > scenario.load.lag_bound.as_secs_f64() * 1e3,
            lag_p99_ms: lag_p99,
            lag_bound_ms: scenario.load.lag_bound.as_secs_f64() * 1e3,
            unsent_batches: unsent,
        },
        operations,
        http: Http {
            requests: metrics.requests,
            errors: metrics.errors,
            throttles: metrics.throttles,
            outcomes: metrics.outcomes.clone(),
        },
        batches,
        runs,
        webhooks: ledger.webhooks.clone(),
        e2e: ledger.e2e.summary(),
        throughput: Throughput {
            batches_per_s,
            steady_runs_per_s: steady,
            steady_window_s: window,
        },
        projection,
        timeline: ledger.timeline.finish(),
        rules: Vec::new(),
        invariants: Vec::new(),
        resumed: None,
        resources: None,
        shard: None,
        merged_from: Vec::new(),
    }
}
