//! The steps of a run, each a function of its own, in the order `execute` calls them:
//! (1) the target, (2) the ledger and its journal, (3) the webhook receiver, (4) the tasks
//! that watch the run, (5) the load and the contract checks, (6) the verdict and the files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::progress::spawn_progress;
use super::{RunError, RunOptions, abort, exit, report_dir};
use crate::api::RUN_EVENT_TYPES;
use crate::api::client::Client;
use crate::load::inputs::InputFactory;
use crate::load::{Engine, HttpMetrics};
use crate::mock::MockServer;
use crate::observe::poller::Poller;
use crate::observe::{BatchOutcome, Ledger};
use crate::report::{self, Report};
use crate::scenario::{Scenario, Target};
use crate::webhook::receiver::Receiver;

/// A webhook endpoint this run registered: removed when the run finishes.
pub(super) struct Registration {
    pub endpoint_id: String,
    pub secret: String,
}

pub(super) async fn register_webhook(
    client: &Client,
    url: &str,
    scenario: &Scenario,
) -> Result<Registration, RunError> {
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
    if let Some(refusal) = reply.auth_refusal() {
        return Err(abort(
            exit::ABORTED,
            format!(
                "the API key {} was refused: {refusal} (registering the webhook endpoint at {})\n  fix: set the key the target accepts",
                key_source(scenario),
                client.base()
            ),
        ));
    }
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
        let registration = Registration {
            endpoint_id: id.to_string(),
            secret: secret.to_string(),
        };
        remove_webhook(client, &registration).await;
        return Err(abort(
            exit::ABORTED,
            format!(
                "subscribing the webhook endpoint to workflow `{}` failed: {}",
                scenario.workflow.id,
                reply.describe()
            ),
        ));
    }
    Ok(Registration {
        endpoint_id: id.to_string(),
        secret: secret.to_string(),
    })
}

/// Removes the endpoint a run registered (its subscriptions go with it), so the next run
/// on the same receiver address does not receive this one's deliveries. Returns whether
/// the target confirmed it.
pub(super) async fn remove_webhook(client: &Client, registration: &Registration) -> bool {
    let reply = client
        .delete(&format!("/webhook_endpoints/{}", registration.endpoint_id))
        .await;
    let removed = reply.status().is_some_and(|s| (200..300).contains(&s));
    if !removed {
        tracing::warn!(
            endpoint = registration.endpoint_id.as_str(),
            "could not remove this run's webhook endpoint ({}); delete it by hand",
            reply.describe()
        );
    }
    removed
}

/// Where the run's API key comes from, as a refusal's message names it.
pub(super) fn key_source(scenario: &Scenario) -> String {
    match &scenario.target {
        Target::Url { token_env, .. } => format!("in {token_env}"),
        Target::Mock { .. } => "of the mock profile (`auth.tokens`)".into(),
    }
}

/// Step 6: the verdict — contract rules (only on a run that finished), the accounting's
/// invariants, memory, thresholds — and the journal's last flush.
pub(super) fn judge(
    report: &mut Report,
    scenario: &Scenario,
    opts: &RunOptions,
    ledger: &Mutex<Ledger>,
    probe_findings: Option<crate::checks::Findings>,
) {
    // Rules are judged only on a run that finished: half a run would fail rules (runs
    // not terminal, webhooks not arrived) that the target did not break.
    if let (Some(checks), Some(mut findings), true) =
        (&scenario.checks, probe_findings, report.complete)
    {
        let ledger = ledger.lock().expect("ledger");
        findings.merge(ledger.findings().clone());
        if scenario.results.webhooks.is_some() {
            ledger.judge_terminal_events(&mut findings);
        }
        crate::checks::batch::unique_ids(
            &mut findings,
            ledger.batches().iter().filter_map(|b| match &b.outcome {
                BatchOutcome::Accepted { batch_id } => Some(batch_id.as_str()),
                _ => None,
            }),
        );
        report.rules = crate::checks::results(&findings, &checks.selection, scenario.api_version);
    } else if let (Some(checks), false) = (&scenario.checks, report.complete) {
        // Every rule is listed, not run, with why: a JUnit reader sees the whole catalogue
        // skipped rather than a run that checked nothing.
        let why = report
            .interrupted
            .as_ref()
            .map(|w| format!("the run stopped early ({w})"))
            .or_else(|| {
                report
                    .unreachable
                    .as_ref()
                    .map(|w| format!("the target could not be reached ({w})"))
            })
            .unwrap_or_else(|| "the run did not finish".into());
        report.rules = crate::checks::not_run(
            &checks.selection,
            scenario.api_version,
            &format!("not run: {why}"),
        );
    }
    report.invariants = ledger
        .lock()
        .expect("ledger")
        .judge_invariants(report.complete);
    report.shard = opts.shard;
    report.probes_shard = opts
        .shard
        .filter(|_| scenario.checks.as_ref().is_some_and(|c| c.probes));
    report.resources = report::Resources::from_timeline(&report.timeline);
    report.judge(&scenario.thresholds);
    {
        let l = ledger.lock().expect("ledger");
        let inputs = l.input_count().max(1);
        tracing::info!(
            inputs = l.input_count(),
            bytes = l.accounting_bytes(),
            bytes_per_input = l.accounting_bytes() / inputs,
            "per-input accounting held"
        );
    }
    if let Some((path, e)) = ledger.lock().expect("ledger").flush_journal() {
        tracing::warn!(path = %path.display(), "the journal is incomplete: {e}");
    }
}

/// Memory, once a second, into the timeline (soak runs watch it plateau); and the
/// journal's buffered results to its file at the same pace.
pub(super) fn spawn_sampler(
    ledger: Arc<Mutex<Ledger>>,
    start: Instant,
    done: Arc<std::sync::atomic::AtomicBool>,
    dir: PathBuf,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !done.load(Ordering::Relaxed) {
            // The run's lease: a merge or a second start of this shard sees it alive.
            crate::observe::journal::beat(&dir);
            {
                let mut l = ledger.lock().expect("ledger");
                if let Some(kib) = crate::metrics::rss_kib() {
                    let since = start.elapsed();
                    l.record_rss(since, kib);
                }
                // Results reach the journal's file at least once a second.
                l.flush_journal();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// A started target: the embedded mock (if any), its base URL, the API key and workspace.
type StartedTarget = (Option<MockServer>, String, Option<String>, Option<String>);

/// Step 1: the target — the embedded mock started on a free loopback port, or the URL
/// with its API key from the environment.
pub(super) async fn start_target(scenario: &Scenario) -> Result<StartedTarget, RunError> {
    Ok(match &scenario.target {
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
            ..
        } => {
            let token = std::env::var(token_env).map_err(|_| {
                abort(exit::INVALID, format!("environment variable `{token_env}` (the API key) is not set\n  fix: export {token_env}=sk_… or pass --token-env NAME"))
            })?;
            (None, url.clone(), Some(token), workspace_id.clone())
        }
    })
}

/// Step 2: the ledger, with its journal in the report folder (which exists from the start)
/// and the factory that builds bodies and later rebuilds an input's metadata.
pub(super) fn open_ledger(
    scenario: &Arc<Scenario>,
    opts: &RunOptions,
    start: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
    base: &str,
    embedded_mock: bool,
) -> (Arc<Mutex<Ledger>>, PathBuf, Arc<InputFactory>) {
    let collecting = scenario.results.webhooks.is_some() || scenario.results.polling.is_some();
    let ledger = Arc::new(Mutex::new(Ledger::new(
        start,
        scenario.inputs.correlation_key.clone(),
        collecting,
    )));
    {
        let mut l = ledger.lock().expect("ledger");
        l.set_judging(scenario.checks.is_some());
        l.set_nonce(&scenario.inputs.run_nonce);
    }
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
        target_url: base.to_string(),
        embedded_mock,
        started_at: started_at.to_rfc3339(),
        shard: opts.shard,
        load_batches: scenario.load.batches,
        budget_stop: scenario.budget_stop.clone(),
        env: crate::observe::journal::Header::environment_of(&scenario.text),
        run_nonce: scenario.inputs.run_nonce.clone(),
    };
    match crate::observe::Journal::create(&dir, &header) {
        Ok(j) => ledger.lock().expect("ledger").set_journal(j),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot write the journal ({e}); a killed run will leave nothing to resume from")
        }
    }
    // One factory builds the bodies and, later, rebuilds an input's metadata to compare
    // with what comes back, so the ledger keeps no copy of it.
    let factory = Arc::new(InputFactory::new(scenario));
    {
        let f = factory.clone();
        ledger
            .lock()
            .expect("ledger")
            .set_expected_metadata(Box::new(move |b, i| f.metadata(b, i)));
    }

    (ledger, dir, factory)
}

/// Step 3: the webhook receiver (when results come by webhook), its endpoint registered
/// with the target, and the task that feeds its deliveries to the ledger.
pub(super) async fn start_receiver(
    scenario: &Scenario,
    client: &Client,
    ledger: &Arc<Mutex<Ledger>>,
) -> Result<Option<Listening>, RunError> {
    let Some(w) = &scenario.results.webhooks else {
        return Ok(None);
    };
    let (tx, mut rx) = mpsc::channel(crate::webhook::receiver::QUEUE);
    let r = Receiver::start_with(w.listen, tx, w.refuse_first, w.max_age)
        .await
        .map_err(|e| {
            abort(
                exit::INVALID,
                format!("webhook receiver cannot listen on {}: {e}", w.listen),
            )
        })?;
    // The run's own path, under the public URL too (a tunnel forwards the path).
    let public = match &w.public_url {
        Some(p) => format!("{}/{}", p.trim_end_matches('/'), r.key()),
        None => r.url(),
    };
    let mut registration = None;
    let secret = if w.register {
        match register_webhook(client, &public, scenario).await {
            Ok(reg) => {
                // Written through before any delivery: a killed run's resume removes it.
                {
                    let mut l = ledger.lock().expect("ledger");
                    l.journal_endpoint(&reg.endpoint_id, false);
                    l.set_endpoint_version(scenario.api_version);
                }
                r.own_path_only();
                let secret = reg.secret.clone();
                registration = Some(reg);
                secret
            }
            Err(a) => {
                r.stop().await;
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
    r.set_secret(&secret);
    let ledger = ledger.clone();
    let max_age = w.max_age;
    let consumer = tokio::spawn(async move {
        // Many deliveries per lock: the ledger is shared with the submitters.
        let mut batch = Vec::with_capacity(256);
        while rx.recv_many(&mut batch, 256).await > 0 {
            let mut ledger = ledger.lock().expect("ledger");
            for d in batch.drain(..) {
                ledger.ingest_delivery(&d, &secret, max_age);
            }
        }
    });
    Ok(Some(Listening {
        receiver: r,
        consumer,
        registration,
    }))
}

/// A run's webhook side while it listens: the receiver, the task feeding its deliveries
/// to the ledger, and the endpoint the run registered (if it did).
pub(super) struct Listening {
    pub receiver: Receiver,
    pub consumer: tokio::task::JoinHandle<()>,
    pub registration: Option<Registration>,
}

impl Listening {
    /// Teardown: the endpoint is removed first (nothing more is sent to it), then the
    /// receiver stops and the last deliveries reach the ledger.
    pub(super) async fn stop(self, client: &Client, ledger: &Mutex<Ledger>) {
        let removed = match &self.registration {
            Some(reg) => remove_webhook(client, reg).await,
            None => false,
        };
        {
            let mut l = ledger.lock().expect("ledger");
            if let (Some(reg), true) = (&self.registration, removed) {
                l.journal_endpoint(&reg.endpoint_id, true);
            }
            l.set_refused(u64::from(self.receiver.refused.load(Ordering::Relaxed)));
            l.set_endpoint(
                self.receiver.foreign(),
                self.registration.as_ref().map(|r| r.endpoint_id.clone()),
                removed,
            );
        }
        self.receiver.stop().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.consumer).await;
    }
}

/// The tasks that watch a run while the load runs: the poller, the progress line and
/// the memory sampler.
pub(super) struct Watchers {
    poll_stop: watch::Sender<bool>,
    poller: Option<tokio::task::JoinHandle<()>>,
    pub(super) in_flight: Arc<AtomicU64>,
    progress_done: Arc<std::sync::atomic::AtomicBool>,
    progress: Option<tokio::task::JoinHandle<()>>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Watchers {
    pub(super) fn spawn(
        scenario: &Scenario,
        opts: &RunOptions,
        client: &Client,
        ledger: &Arc<Mutex<Ledger>>,
        metrics: &Arc<Mutex<HttpMetrics>>,
        start: Instant,
        dir: &Path,
    ) -> Self {
        let (poll_stop, poll_stop_rx) = watch::channel(false);
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
        let in_flight = Arc::new(AtomicU64::new(0));
        let progress_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let progress = spawn_progress(
            opts.progress,
            ledger.clone(),
            metrics.clone(),
            in_flight.clone(),
            progress_done.clone(),
        );
        let sampler = spawn_sampler(
            ledger.clone(),
            start,
            progress_done.clone(),
            dir.to_path_buf(),
        );
        Watchers {
            poll_stop,
            poller,
            in_flight,
            progress_done,
            progress,
            sampler,
        }
    }

    /// Stops the poller first (it may still be recording results), then the display.
    pub(super) async fn stop_poller(&mut self) {
        let _ = self.poll_stop.send(true);
        if let Some(p) = self.poller.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), p).await;
        }
    }

    pub(super) async fn stop_display(self) {
        self.progress_done.store(true, Ordering::Relaxed);
        self.sampler.abort();
        if let Some(p) = self.progress {
            let _ = p.await;
        }
    }
}

/// Step 5: drives the load until its end or a stop signal. Returns the batches left
/// unsent.
pub(super) async fn drive_load(engine: Engine, stop_rx: &watch::Receiver<Option<String>>) -> u64 {
    // Already stopped (a refused webhook registration): the load sends nothing.
    let (load_stop_tx, load_stop_rx) = watch::channel(stop_rx.borrow().is_some());
    let mut stop_watch = stop_rx.clone();
    let forward = tokio::spawn(async move {
        if stop_watch.wait_for(|s| s.is_some()).await.is_ok() {
            let _ = load_stop_tx.send(true);
        }
    });
    let unsent = engine.drive(load_stop_rx, Duration::from_secs(5)).await;
    forward.abort();
    tracing::info!(unsent, "load finished; waiting for results");
    unsent
}

/// Step 5, after the load: the audit and the probes, while the receiver and the poller
/// still listen. `None` when the scenario has no checks or the run was stopped.
pub(super) async fn check_contract(
    scenario: &Scenario,
    client: &Client,
    ledger: &Arc<Mutex<Ledger>>,
    stop_rx: &watch::Receiver<Option<String>>,
) -> Option<(crate::checks::Findings, crate::checks::Reads)> {
    let checks = scenario.checks.as_ref()?;
    if stop_rx.borrow().is_some() {
        return None;
    }
    tracing::info!("checking the contract: audit of accepted batches and probes");
    let mut stop = stop_rx.clone();
    tokio::select! {
        f = crate::probes::run(client, scenario, checks, ledger) => Some(f),
        _ = stop.wait_for(|s| s.is_some()) => None,
    }
}

/// Step 6, last part: the report's files.
pub(super) async fn write_report(
    report: &Report,
    dir: &Path,
    scenario: &Scenario,
) -> Result<Vec<PathBuf>, RunError> {
    tracing::info!(dir = %dir.display(), "writing the report");
    // Test seam (debug builds only): hold the write open so a test can signal during it.
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("BATCHPROOF_TEST_SLOW_WRITE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    write_files(report, dir, scenario)
}

/// Writes the report's files for a run (or a resumed or rebuilt one).
pub(crate) fn write_files(
    report: &Report,
    dir: &Path,
    scenario: &Scenario,
) -> Result<Vec<PathBuf>, RunError> {
    let formats = report::run_formats(scenario.checks.is_some() || !scenario.thresholds.is_empty());
    report::write_all(report, dir, &formats).map_err(|e| {
        // The run's findings are not lost with its folder: the JSON goes where it can.
        let saved = fallback_json(report, dir);
        abort(
            exit::ABORTED,
            format!("writing the report to {}: {e:#}\n  {saved}", dir.display()),
        )
    })
}

/// Writes the report's JSON into the system's temporary folder when its own folder
/// refused it; says where it went (or that it could not).
fn fallback_json(report: &Report, dir: &Path) -> String {
    let name = dir
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
    let path = std::env::temp_dir().join(format!("batchproof-{name}.json"));
    match report::Format::render(&report::json::Json, report)
        .map_err(|e| e.to_string())
        .and_then(|text| std::fs::write(&path, text).map_err(|e| e.to_string()))
    {
        Ok(()) => format!(
            "the report's JSON was written to {} instead (render it again with `batchproof report {} --format html`)",
            path.display(),
            path.display()
        ),
        Err(e) => format!("the report's JSON could not be saved anywhere either: {e}"),
    }
}
