//! A real HTTP receiver that captures webhook deliveries, and the registration of its URL
//! with the mock.

use super::api::{Api, V2026};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use batchproof::mock::profile::{DEFAULT_TOKEN, DEFAULT_WORKFLOW, REVIEW_WORKFLOW};
use batchproof::mock::{MockServer, Profile};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A captured webhook delivery.
#[derive(Debug, Clone)]
pub struct Captured {
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    pub body: Bytes,
    pub json: Value,
    pub headers: HeaderMap,
}

/// A real HTTP receiver that records every delivery; it can refuse the first N.
pub struct Capture {
    pub addr: SocketAddr,
    pub deliveries: Arc<Mutex<Vec<Captured>>>,
    pub refused: Arc<Mutex<u32>>,
    /// The deliveries answered with a 500 (the first `refuse_first`).
    pub refused_deliveries: Arc<Mutex<Vec<Captured>>>,
}

#[derive(Clone)]
struct CaptureState {
    deliveries: Arc<Mutex<Vec<Captured>>>,
    refuse_first: u32,
    refused: Arc<Mutex<u32>>,
    refused_deliveries: Arc<Mutex<Vec<Captured>>>,
}

async fn capture(State(s): State<CaptureState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let captured = Captured {
        timestamp: h("x-extend-request-timestamp"),
        signature: h("x-extend-request-signature"),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body,
        headers: headers.clone(),
    };
    {
        let mut refused = s.refused.lock().unwrap();
        if *refused < s.refuse_first {
            *refused += 1;
            s.refused_deliveries.lock().unwrap().push(captured);
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    s.deliveries.lock().unwrap().push(captured);
    StatusCode::OK
}

impl Capture {
    pub async fn start(refuse_first: u32) -> Capture {
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        let refused_deliveries = Arc::new(Mutex::new(Vec::new()));
        let state = CaptureState {
            deliveries: deliveries.clone(),
            refuse_first,
            refused: refused.clone(),
            refused_deliveries: refused_deliveries.clone(),
        };
        let app = Router::new()
            .route("/hook", post(capture))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Capture {
            addr,
            deliveries,
            refused,
            refused_deliveries,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn all(&self) -> Vec<Captured> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Waits until at least `n` deliveries arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Captured> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.all();
            if all.len() >= n || Instant::now() >= deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Registers `url` as a webhook endpoint subscribed to every workflow-run event of the
/// built-in workflows (the demo and the one with a review step); returns the signing secret.
pub async fn register(api: &Api, url: &str, api_version: &str) -> String {
    let mut events = vec![
        "workflow_run.completed",
        "workflow_run.failed",
        "workflow_run.needs_review",
        "workflow_run.rejected",
    ];
    if api_version == V2026 {
        events.push("workflow_run.cancelled");
    }
    register_for(api, url, api_version, &events).await
}

/// Registers `url` as a webhook endpoint subscribed to `events` of the built-in
/// workflows; returns the signing secret.
pub async fn register_for(api: &Api, url: &str, api_version: &str, events: &[&str]) -> String {
    let r = api
        .post(
            "/webhook_endpoints",
            &json!({"url": url, "name": "test", "enabledEvents": [], "apiVersion": api_version}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = r.body["signingSecret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("wss_"));
    for workflow in [DEFAULT_WORKFLOW, REVIEW_WORKFLOW] {
        let s = api
            .post("/webhook_subscriptions", &json!({"webhookEndpointId": r.body["id"], "resourceType": "workflow", "resourceId": workflow, "enabledEvents": events}))
            .await;
        assert_eq!(s.status, 200, "{}", s.body);
    }
    secret
}
