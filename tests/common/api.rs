//! The mock as a client sees it: start one with a profile, and talk to it over HTTP in
//! any API version.

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

pub const V2026: &str = "2026-02-09";
pub const V2025: &str = "2025-04-21";
pub const V2024: &str = "2024-12-23";
pub const VERSIONS: [&str; 3] = [V2024, V2025, V2026];

/// A fast profile: processing in milliseconds, deterministic outcomes.
pub fn fast_profile() -> Profile {
    let mut p = Profile {
        time_scale: 1000.0,
        seed: 7,
        ..Default::default()
    };
    p.webhooks.retry = vec![batchproof::config::Dur::from_millis(500)];
    p
}

/// A run as the mock's admin surface shows it (`GET /_mock/runs/{id}`): priority,
/// planned outcome, review plan.
pub async fn admin_run(mock: &MockServer, id: &str) -> Value {
    reqwest::get(format!("{}/_mock/runs/{id}", mock.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn start(profile: Profile) -> MockServer {
    MockServer::start(profile, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("mock starts")
}

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub version: Option<String>,
    pub token: Option<String>,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Api {
    pub fn new(base: &str, version: &str) -> Api {
        Api {
            base: base.to_string(),
            http: reqwest::Client::new(),
            version: Some(version.to_string()),
            token: Some(DEFAULT_TOKEN.to_string()),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(v) = &self.version {
            r = r.header("x-extend-api-version", v);
        }
        if let Some(t) = &self.token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Resp {
        let resp = r.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(self.req(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Resp {
        self.send(
            self.req(reqwest::Method::POST, path)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.req(reqwest::Method::DELETE, path)).await
    }

    pub fn is_legacy(&self) -> bool {
        self.version.as_deref() != Some(V2026)
    }

    /// A batch body in this client's version for `n` inputs with metadata `{i, tag}`.
    pub fn batch_body(&self, n: usize, tag: &str) -> Value {
        self.batch_body_on(DEFAULT_WORKFLOW, n, tag)
    }

    /// `batch_body` on the workflow with a review step: only its runs can need review.
    pub fn review_batch_body(&self, n: usize, tag: &str) -> Value {
        self.batch_body_on(REVIEW_WORKFLOW, n, tag)
    }

    fn batch_body_on(&self, workflow: &str, n: usize, tag: &str) -> Value {
        let inputs: Vec<Value> = (0..n)
            .map(|i| {
                let meta = json!({"i": i, "tag": tag, "nested": {"list": [i, "x"], "none": null}});
                if self.is_legacy() {
                    json!({"file": {"fileUrl": format!("https://files.test/{tag}/{i}.pdf"), "fileName": format!("{tag}-{i}.pdf")}, "metadata": meta})
                } else {
                    json!({"file": {"url": format!("https://files.test/{tag}/{i}.pdf"), "name": format!("{tag}-{i}.pdf")}, "metadata": meta})
                }
            })
            .collect();
        if self.is_legacy() {
            json!({"workflowId": workflow, "inputs": inputs})
        } else {
            json!({"workflow": {"id": workflow}, "inputs": inputs})
        }
    }

    pub async fn submit(&self, n: usize, tag: &str) -> String {
        let r = self
            .post("/workflow_runs/batch", &self.batch_body(n, tag))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["batchId"].as_str().expect("batchId").to_string()
    }

    /// Every run of a batch, following nextPageToken.
    pub async fn list_all(&self, batch_id: &str, page: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10_000 {
            // Sorted by creation so runs changing status between pages do not move.
            let mut path = format!(
                "/workflow_runs?batchId={batch_id}&maxPageSize={page}&sortBy=createdAt&sortDir=asc"
            );
            if let Some(t) = &token {
                path.push_str(&format!("&nextPageToken={}", encode_query(t)));
            }
            let r = self.get(&path).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let key = if self.is_legacy() {
                "workflowRuns"
            } else {
                "data"
            };
            out.extend(r.body[key].as_array().expect("runs array").iter().cloned());
            match r.body["nextPageToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => return out,
            }
        }
        panic!("page chain did not end");
    }

    pub fn run_of<'a>(&self, body: &'a Value) -> &'a Value {
        if self.is_legacy() {
            &body["workflowRun"]
        } else {
            body
        }
    }

    /// Waits until every run of the batch is terminal; returns them.
    pub async fn wait_terminal(&self, batch_id: &str, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let runs = self.list_all(batch_id, 1000).await;
            let terminal = |s: &str| !matches!(s, "PENDING" | "PROCESSING" | "CANCELLING");
            if runs
                .iter()
                .all(|r| terminal(r["status"].as_str().unwrap_or("")))
            {
                return runs;
            }
            assert!(
                Instant::now() < deadline,
                "runs of {batch_id} not terminal in {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Percent-encodes a query value (page tokens carry `+`, `/`, `=` and `:`).
pub fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
