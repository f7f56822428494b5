//! The harness's webhook receiver: an axum server that stamps each delivery on arrival,
//! hands the raw delivery to the run's observer over a bounded channel (`QUEUE`
//! deliveries at most: memory stays bounded when the observer lags) and answers.
//!
//! Each run listens on a path of its own (`/webhooks/bp_<key>`), so a delivery meant for
//! an endpoint an earlier run left registered is told apart from a forgery: it is counted
//! as foreign and answered 404, never verified against this run's secret. Once the run's
//! signing secret is known, a delivery that fails verification (forged, stale, unsigned)
//! is answered 401, so the sender learns it was refused; it still reaches the observer,
//! which counts it by kind. Verifying twice costs one HMAC of a few KB, microseconds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use tokio::sync::{mpsc, watch};

use super::signing::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// Largest delivery accepted; WorkflowRun payloads are a few KB.
pub const MAX_DELIVERY_BYTES: usize = 4 * 1024 * 1024;

/// Deliveries queued between the receiver and the run's observer.
pub const QUEUE: usize = 4096;

/// One delivery as it arrived, not yet verified or parsed.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub arrived: Instant,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    pub body: Bytes,
}

pub struct Receiver {
    pub addr: SocketAddr,
    /// Deliveries answered 503 on purpose (`refuse_first`).
    pub refused: Arc<AtomicU32>,
    inbox: Arc<Inbox>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct Inbox {
    tx: mpsc::Sender<Delivery>,
    /// Deliveries still to refuse with 503 (fault injection: the target must retry).
    refuse: AtomicU32,
    refused: Arc<AtomicU32>,
    /// The last path segment this run's endpoint was registered with.
    key: String,
    /// Whether deliveries to other paths belong to someone else (true once this run
    /// registered its own endpoint; false when the endpoint was registered by hand).
    own_path_only: std::sync::atomic::AtomicBool,
    /// Deliveries to another path: an endpoint some other run registered.
    foreign: AtomicU64,
    /// The endpoint's signing secret, once registration returned it.
    secret: OnceLock<String>,
    max_age: Duration,
}

async fn accept(
    State(inbox): State<Arc<Inbox>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let arrived = Instant::now();
    if inbox.own_path_only.load(Ordering::Relaxed)
        && uri.path().trim_end_matches('/').rsplit('/').next() != Some(inbox.key.as_str())
    {
        inbox.foreign.fetch_add(1, Ordering::Relaxed);
        return StatusCode::NOT_FOUND;
    }
    if inbox
        .refuse
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
    {
        inbox.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let delivery = Delivery {
        arrived,
        timestamp: h(TIMESTAMP_HEADER),
        signature: h(SIGNATURE_HEADER),
        body,
    };
    let genuine = inbox.secret.get().is_none_or(|secret| {
        signing::verify(
            secret,
            delivery.timestamp.as_deref(),
            delivery.signature.as_deref(),
            &delivery.body,
            chrono::Utc::now().timestamp(),
            inbox.max_age.as_secs() as i64,
        )
        .is_ok()
    });
    // A bounded queue: when the run's observer falls behind, the answer waits, and the
    // sender slows down (as a webhook target that is busy would make it), instead of the
    // harness holding an ever longer queue of bodies in memory.
    match inbox.tx.send(delivery).await {
        Ok(()) if genuine => StatusCode::OK,
        Ok(()) => StatusCode::UNAUTHORIZED,
        // The run is over and no longer listening: the target should retry elsewhere.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl Receiver {
    /// Listens on `bind` and forwards deliveries POSTed to any path to `tx`, after
    /// answering the first `refuse_first` of them 503. Until `set_secret` it answers
    /// every delivery 200 and until `own_path_only` it takes deliveries on any path.
    pub async fn start(
        bind: SocketAddr,
        tx: mpsc::Sender<Delivery>,
        refuse_first: u32,
    ) -> anyhow::Result<Receiver> {
        Receiver::start_with(bind, tx, refuse_first, Duration::from_secs(300)).await
    }

    /// As `start`, judging a delivery's age against `max_age`.
    pub async fn start_with(
        bind: SocketAddr,
        tx: mpsc::Sender<Delivery>,
        refuse_first: u32,
        max_age: Duration,
    ) -> anyhow::Result<Receiver> {
        let refused = Arc::new(AtomicU32::new(0));
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let inbox = Arc::new(Inbox {
            tx,
            refuse: AtomicU32::new(refuse_first),
            refused: refused.clone(),
            key: format!("bp_{}", uuid::Uuid::new_v4().simple()),
            own_path_only: false.into(),
            foreign: AtomicU64::new(0),
            secret: OnceLock::new(),
            max_age,
        });
        let app = Router::new()
            .route("/", post(accept))
            .route("/{*path}", post(accept))
            .layer(DefaultBodyLimit::max(MAX_DELIVERY_BYTES))
            .with_state(inbox.clone());
        let (shutdown, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(Receiver {
            addr,
            refused,
            inbox,
            shutdown,
            task,
        })
    }

    /// This run's own URL: its path ends in a key no other run shares.
    pub fn url(&self) -> String {
        format!("http://{}/webhooks/{}", self.addr, self.inbox.key)
    }

    /// The last path segment of this run's URL, to append to a public URL (a tunnel).
    pub fn key(&self) -> &str {
        &self.inbox.key
    }

    /// From now on, deliveries to any other path are another endpoint's.
    pub fn own_path_only(&self) {
        self.inbox.own_path_only.store(true, Ordering::Relaxed);
    }

    /// From now on, deliveries that fail verification with `secret` are answered 401.
    pub fn set_secret(&self, secret: &str) {
        let _ = self.inbox.secret.set(secret.to_string());
    }

    /// Deliveries that came to another endpoint's path.
    pub fn foreign(&self) -> u64 {
        self.inbox.foreign.load(Ordering::Relaxed)
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.task).await;
    }
}
