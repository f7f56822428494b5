//! The stateful mock of the workflow-run API: a simulation, not a stub. Accepted batches
//! become runs that move PENDING → PROCESSING → PROCESSED / FAILED / NEEDS_REVIEW on a
//! clock, through a priority queue and a worker pool shaped by the profile; results go out
//! as signed webhooks with retries; list and get reflect the same state.
//!
//! It is served with axum (not the `wiremock` crate) so it stays bounded under hours of
//! load: no per-request journal, evicted finished runs, ring-buffer logs.

mod defects;
mod delivery;
mod delivery_log;
mod http;
mod limiter;
pub(crate) mod list_params;
pub mod profile;
mod profile_check;
mod raw;
mod refusal;
pub mod retry_after;
mod scheduler;
mod signed_url;
pub mod sparring;
mod state;
mod steer;
mod validate;
mod wire;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

pub use profile::Profile;

use delivery::Hooks;
use delivery_log::DeliveryLog;
use limiter::Limiters;
use state::{Run, Store};

/// Counters of webhook work, readable without taking any lock.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub announced: AtomicU64,
    pub pending: AtomicU64,
    pub attempts: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
}

/// Everything the mock's tasks share. Each lock guards one concern and is held briefly.
pub struct Shared {
    pub profile: Profile,
    pub store: Mutex<Store>,
    /// Wakes the scheduler when runs are queued, cancelled or processing resumes.
    pub wake: Notify,
    pub hooks: Mutex<Hooks>,
    pub announce: mpsc::UnboundedSender<Run>,
    /// Whether any webhook endpoint exists; without one, terminal runs are not cloned
    /// and sent to the dispatcher at all.
    pub has_endpoints: std::sync::atomic::AtomicBool,
    pub log: Mutex<DeliveryLog>,
    pub stats: DeliveryStats,
    pub limiters: Mutex<Limiters>,
    pub request_counts: Mutex<std::collections::HashMap<profile::Endpoint, u64>>,
    pub last_batch: Mutex<Option<Instant>>,
    /// Faults draw from their own seeded stream so they do not disturb run outcomes.
    pub fault_rng: Mutex<ChaCha8Rng>,
    pub delivery_slots: Semaphore,
    pub http: reqwest::Client,
    pub started: Instant,
    /// What a client did, when the profile's sparring records it.
    pub recorder: Option<Arc<sparring::Recorder>>,
    /// Payloads handed out as presigned URLs (large-payload mode).
    pub signed: signed_url::Vault,
}

impl Shared {
    fn new(profile: Profile, announce: mpsc::UnboundedSender<Run>) -> anyhow::Result<Shared> {
        let hooks = Hooks::from_profile(&profile);
        let has_endpoints = std::sync::atomic::AtomicBool::new(!hooks.endpoints.is_empty());
        let http = reqwest::Client::builder()
            .timeout(profile.webhooks.timeout.0)
            .pool_max_idle_per_host(profile.webhooks.concurrency)
            .build()
            .context("building the webhook HTTP client")?;
        Ok(Shared {
            store: Mutex::new(Store::default()),
            wake: Notify::new(),
            hooks: Mutex::new(hooks),
            announce,
            has_endpoints,
            log: Mutex::new(DeliveryLog::new(profile.retention.delivery_log)),
            stats: DeliveryStats::default(),
            limiters: Mutex::new(Limiters::new(&profile)),
            request_counts: Mutex::new(Default::default()),
            last_batch: Mutex::new(None),
            fault_rng: Mutex::new(ChaCha8Rng::seed_from_u64(profile.seed ^ 0xfa17)),
            delivery_slots: Semaphore::new(profile.webhooks.concurrency),
            http,
            started: Instant::now(),
            signed: signed_url::Vault::default(),
            recorder: profile.sparring.record.then(|| {
                let r = sparring::Recorder::default();
                r.observed.lock().expect("observed").limits = limiter::enforced(&profile);
                Arc::new(r)
            }),
            profile,
        })
    }

    /// A payload as one more delivery attempt carries it in the large-payload mode: a
    /// fresh signed URL, valid for the profile's time to live in mock time.
    fn signed_url(&self, payload: &bytes::Bytes) -> bytes::Bytes {
        let config = &self.profile.webhooks.signed_url;
        let ttl = self.profile.scaled(config.ttl.0);
        self.signed.wrap(config, ttl, payload)
    }

    /// Draws a fault decision with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        use rand::Rng;
        p > 0.0 && self.fault_rng.lock().expect("fault rng").random::<f64>() < p
    }
}

/// A running mock: its address, and the handle to stop it.
pub struct MockServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl MockServer {
    /// Starts the mock on `bind` (port 0 picks a free port). Returns once it accepts
    /// connections.
    pub async fn start(profile: Profile, bind: SocketAddr) -> anyhow::Result<MockServer> {
        profile
            .validate()
            .map_err(|(m, f)| anyhow::anyhow!("invalid profile: {m} (fix: {f})"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(profile, tx)?);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding the mock to {bind}"))?;
        let addr = listener.local_addr()?;
        // Presigned URLs point back here; an unspecified bind address is not one a
        // receiver can fetch from, so it becomes loopback.
        let mut reachable = addr;
        if reachable.ip().is_unspecified() {
            reachable.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        shared.signed.set_base(format!("http://{reachable}"));
        let app = http::router(shared.clone());
        let mut stop = shutdown_rx.clone();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app.into_make_service())
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "mock server stopped");
            }
        });
        let scheduler = tokio::spawn(scheduler::run(shared.clone(), shutdown_rx.clone()));
        let dispatcher = tokio::spawn(delivery::dispatch(shared.clone(), rx, shutdown_rx));
        tracing::info!(%addr, "mock listening");
        Ok(MockServer {
            addr,
            shared: shared.clone(),
            shutdown,
            tasks: vec![server, scheduler, dispatcher],
        })
    }

    /// What the client did so far, when the profile records it (`sparring.record`).
    pub fn observations(&self) -> Option<crate::grade::observed::Observations> {
        let r = self.shared.recorder.as_ref()?;
        Some(r.observed.lock().expect("observed").clone())
    }

    /// Webhook deliveries (forged ones included) announced and not finished yet.
    pub fn deliveries_pending(&self) -> u64 {
        let forging = self
            .shared
            .recorder
            .as_ref()
            .map_or(0, |r| r.forging.load(std::sync::atomic::Ordering::Relaxed));
        self.shared
            .stats
            .pending
            .load(std::sync::atomic::Ordering::Relaxed)
            + forging
    }

    /// Milliseconds since the mock started, the clock observations are stamped with.
    pub fn elapsed_ms(&self) -> u64 {
        self.shared.started.elapsed().as_millis() as u64
    }

    /// The grade's tolerances from the profile.
    pub fn tolerances(&self) -> crate::grade::rules::Tolerances {
        self.shared.profile.sparring.grade
    }

    /// Base URL of the mock, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, stops processing and delivering, and waits for the
    /// tasks to end. Deliveries still pending are abandoned (they are logged as pending).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }
}
