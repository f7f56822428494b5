//! The harness's webhook receiver: an axum server that stamps each delivery on arrival,
//! answers 200 once it has handed the raw delivery to the run's observer over a bounded
//! channel (`QUEUE` deliveries at most: memory stays bounded when the observer lags).
//! Verification and correlation happen off the request path so a slow observer never
//! makes the target's deliveries time out (which would trigger retries and skew counts).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::sync::{mpsc, watch};

use super::signing::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

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
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct Inbox {
    tx: mpsc::Sender<Delivery>,
    /// Deliveries still to refuse with 503 (fault injection: the target must retry).
    refuse: AtomicU32,
    refused: Arc<AtomicU32>,
}

async fn accept(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let arrived = Instant::now();
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
    // A bounded queue: when the run's observer falls behind, the answer waits, and the
    // sender slows down (as a webhook target that is busy would make it), instead of the
    // harness holding an ever longer queue of bodies in memory.
    let delivery = Delivery {
        arrived,
        timestamp: h(TIMESTAMP_HEADER),
        signature: h(SIGNATURE_HEADER),
        body,
    };
    match inbox.tx.send(delivery).await {
        Ok(()) => StatusCode::OK,
        // The run is over and no longer listening: the target should retry elsewhere.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl Receiver {
    /// Listens on `bind` and forwards deliveries POSTed to any path to `tx`, after
    /// answering the first `refuse_first` of them 503.
    pub async fn start(
        bind: SocketAddr,
        tx: mpsc::Sender<Delivery>,
        refuse_first: u32,
    ) -> anyhow::Result<Receiver> {
        let refused = Arc::new(AtomicU32::new(0));
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/", post(accept))
            .route("/{*path}", post(accept))
            .layer(DefaultBodyLimit::max(MAX_DELIVERY_BYTES))
            .with_state(Arc::new(Inbox {
                tx,
                refuse: AtomicU32::new(refuse_first),
                refused: refused.clone(),
            }));
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
            shutdown,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/webhooks", self.addr)
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.task).await;
    }
}
