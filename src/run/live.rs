//! A run's live metrics for Prometheus (`run --metrics-listen ADDR`, path `/metrics`):
//! submissions by outcome, HTTP answers by code, runs finished by status, webhooks by
//! outcome, batches in flight and runs outstanding, and latency histograms (submission,
//! schedule lag, list, get, end to end). Each scrape reads the ledger and the request
//! metrics the report is built from, so the dashboard and the report agree. A shard's
//! series carry its `shard` and `shards` labels.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::metrics::exposition::{self, Scrape};
use crate::metrics::{HttpMetrics, Latency, Operation};
use crate::observe::{BatchOutcome, Ledger};

/// What a scrape reads.
pub(super) struct RunCollector {
    pub ledger: Arc<Mutex<Ledger>>,
    pub metrics: Arc<Mutex<HttpMetrics>>,
    pub in_flight: Arc<AtomicU64>,
    /// `--shard I/N`: every series is labelled `shard="I"`, `shards="N"`, so the pods of
    /// an Indexed Job are told apart on one dashboard and summed across.
    pub shard: Option<(u64, u64)>,
}

impl std::fmt::Debug for RunCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunCollector")
    }
}

/// The ledger's share of a scrape, copied under its lock.
struct LedgerView {
    submissions: BTreeMap<String, u64>,
    finished: BTreeMap<String, u64>,
    outstanding: u64,
    webhooks: Vec<(String, u64)>,
    e2e: Latency,
}

impl LedgerView {
    fn of(l: &Ledger) -> LedgerView {
        let mut submissions = BTreeMap::new();
        for b in l.batches() {
            let outcome = match b.outcome {
                BatchOutcome::Pending => "pending",
                BatchOutcome::Accepted { .. } => "accepted",
                BatchOutcome::Rejected { .. } => "rejected",
                BatchOutcome::Throttled => "throttled",
                BatchOutcome::PossibleDuplicate { .. } => "possible_duplicate",
                BatchOutcome::Unreachable { .. } => "unreachable",
            };
            *submissions.entry(outcome.to_string()).or_insert(0) += 1;
        }
        let (mut finished, mut outstanding) = (BTreeMap::new(), 0);
        for (_, _, input) in l.accepted_inputs() {
            match input.first_seen() {
                Some((seen, _)) => {
                    *finished
                        .entry(seen.status.as_str().to_string())
                        .or_insert(0) += 1
                }
                None => outstanding += 1,
            }
        }
        let w = l.webhooks();
        let webhooks = vec![
            ("verified".to_string(), w.verified),
            ("rejected".to_string(), w.rejected.values().sum()),
            ("redelivery".to_string(), w.redeliveries),
            ("probe".to_string(), w.probe_events),
            ("refused".to_string(), w.refused),
            ("unparseable".to_string(), w.unparseable),
        ];
        LedgerView {
            submissions,
            finished,
            outstanding,
            webhooks,
            e2e: l.e2e().clone(),
        }
    }
}

impl Collector for RunCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let view = LedgerView::of(&self.ledger.lock().expect("ledger"));
        let (outcomes, submit, list, get) = {
            let m = self.metrics.lock().expect("metrics");
            let copy = |o: &Operation| (o.response.clone(), o.lag.clone());
            (
                m.outcomes.clone(),
                copy(&m.submit),
                copy(&m.list),
                copy(&m.get),
            )
        };
        let mut s = Scrape::new(&mut encoder);
        s.counters(
            "batchproof_submissions",
            "Batch submissions by outcome (pending: scheduled, not answered yet)",
            "outcome",
            view.submissions,
        )?;
        s.counters(
            "batchproof_http_responses",
            "HTTP answers by status code, and failures without one (timeout, connect, other)",
            "code",
            outcomes,
        )?;
        s.counters(
            "batchproof_runs_finished",
            "Runs of accepted batches first seen terminal, by status",
            "status",
            view.finished,
        )?;
        s.counters(
            "batchproof_webhooks",
            "Webhook deliveries received, by outcome",
            "outcome",
            view.webhooks,
        )?;
        s.gauge(
            "batchproof_batches_in_flight",
            "Batch submissions sent and not answered",
            self.in_flight.load(Ordering::Relaxed) as f64,
        )?;
        s.gauge(
            "batchproof_runs_outstanding",
            "Runs of accepted batches not yet seen terminal",
            view.outstanding as f64,
        )?;
        s.histogram(
            "batchproof_submit_response_seconds",
            "Batch submission response time, from when it was due on the schedule",
            &submit.0,
        )?;
        s.histogram(
            "batchproof_schedule_lag_seconds",
            "How late submissions left against their schedule",
            &submit.1,
        )?;
        s.histogram(
            "batchproof_list_response_seconds",
            "List Workflow Runs response time (polling)",
            &list.0,
        )?;
        s.histogram(
            "batchproof_get_response_seconds",
            "Get Workflow Run response time (polling)",
            &get.0,
        )?;
        s.histogram(
            "batchproof_e2e_seconds",
            "End to end: batch due on the schedule to the run's first terminal result",
            &view.e2e,
        )?;
        Ok(())
    }
}

/// Binds the metrics address before anything else starts, so a taken port fails the run
/// before it sends anything.
pub(super) async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, super::RunError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        super::RunError::Invalid(format!(
            "--metrics-listen {addr}: cannot listen: {e}\n  fix: pick a free port, e.g. 127.0.0.1:9464, or 127.0.0.1:0 for any"
        ))
    })
}

/// Serves `/metrics` on `listener` until the returned task is aborted; logs the address
/// (`metrics on http://…/metrics`).
pub(super) fn serve(
    listener: tokio::net::TcpListener,
    collector: Arc<RunCollector>,
) -> tokio::task::JoinHandle<()> {
    let bound = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let c = collector.clone();
            let labels: Vec<(&'static str, String)> = c.shard.map_or_else(Vec::new, |(i, n)| {
                vec![("shard", i.to_string()), ("shards", n.to_string())]
            });
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, exposition::CONTENT_TYPE)],
                    exposition::render_labelled(c, &labels),
                )
            }
        }),
    );
    tracing::info!("metrics on http://{bound}/metrics");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}
