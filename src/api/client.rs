//! The harness's HTTP client for a target: the real API or the mock, reached the same
//! way. It sends the version header, the bearer token and (optionally) the workspace
//! header, and returns what happened in a form the load engine can classify without
//! losing the distinction between "answered" and "no answer".

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::{ApiVersion, Category, RateLimits, VERSION_HEADER, WORKSPACE_HEADER};

type Limiter = governor::DefaultDirectRateLimiter;

/// Client-side rate limits, one limiter per category, shared by every clone of a client
/// (the submitters, the poller and the probes), so a run stays under its plan's limits
/// instead of spending the account's budget on its own polling. Requests are spaced
/// evenly (a burst of one), so no window of any length sees more than the rate.
#[derive(Debug, Default)]
struct Pacer {
    run: Option<Limiter>,
    write: Option<Limiter>,
    get: Option<Limiter>,
}

impl Pacer {
    fn new(limits: &RateLimits) -> Pacer {
        let mk = |rps: Option<f64>| {
            rps.filter(|r| r.is_finite() && *r > 0.0).and_then(|r| {
                governor::Quota::with_period(Duration::from_secs_f64(1.0 / r))
                    .map(governor::RateLimiter::direct)
            })
        };
        Pacer {
            run: mk(limits.run_rps),
            write: mk(limits.write_rps),
            get: mk(limits.get_rps),
        }
    }

    async fn wait(&self, category: Category) {
        let limiter = match category {
            Category::Run => &self.run,
            Category::Write => &self.write,
            Category::Get => &self.get,
        };
        if let Some(l) = limiter {
            l.until_ready().await;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// The `x-extend-api-version` value sent; None sends no header.
    version: Option<String>,
    workspace: Option<String>,
    pacer: Option<std::sync::Arc<Pacer>>,
}

/// What came back from one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An HTTP response (any status), its body parsed as JSON when it is JSON.
    Answered {
        status: u16,
        body: Option<Value>,
        raw: Vec<u8>,
        retry_after: Option<Duration>,
        elapsed: Duration,
    },
    /// The request timed out; the server may or may not have acted on it.
    Timeout { elapsed: Duration },
    /// No connection could be made: the server cannot have acted on it.
    Connect { error: String, elapsed: Duration },
    /// Anything else that went wrong on the wire.
    Other { error: String, elapsed: Duration },
}

impl Reply {
    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn body(&self) -> Option<&Value> {
        match self {
            Reply::Answered { body, .. } => body.as_ref(),
            _ => None,
        }
    }

    pub fn elapsed(&self) -> Duration {
        match self {
            Reply::Answered { elapsed, .. }
            | Reply::Timeout { elapsed }
            | Reply::Connect { elapsed, .. }
            | Reply::Other { elapsed, .. } => *elapsed,
        }
    }

    /// A refusal of the API key (401 or 403) as a person reads it, e.g. "401 UNAUTHORIZED
    /// (Invalid API key)"; None for any other answer.
    pub fn auth_refusal(&self) -> Option<String> {
        let status = self.status().filter(|s| *s == 401 || *s == 403)?;
        let body = self.body();
        let field = |k: &str| body.and_then(|b| b.get(k)).and_then(Value::as_str);
        let code = field("code").map(str::to_string).unwrap_or_else(|| {
            if status == 401 {
                "UNAUTHORIZED"
            } else {
                "FORBIDDEN"
            }
            .to_string()
        });
        Some(match field("message").or_else(|| field("error")) {
            Some(m) => format!("{status} {code} ({m})"),
            None => format!("{status} {code}"),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Reply::Answered { status, raw, .. } => {
                let text = String::from_utf8_lossy(&raw[..raw.len().min(300)]).into_owned();
                format!("HTTP {status}: {text}")
            }
            Reply::Timeout { .. } => "timed out".into(),
            Reply::Connect { error, .. } => format!("connection failed: {error}"),
            Reply::Other { error, .. } => format!("request failed: {error}"),
        }
    }
}

/// Reads `retry-after-ms` (preferred, as the Python SDK does) or `Retry-After` seconds.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return Some(Duration::from_secs_f64((ms / 1000.0).max(0.0)));
    }
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.max(0.0)))
}

impl Client {
    /// `version: None` sends no version header (for the missing-version probes).
    pub fn new(
        base: &str,
        token: Option<String>,
        version: Option<ApiVersion>,
        workspace: Option<String>,
        timeout: Duration,
        pool: usize,
    ) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true)
            .user_agent(concat!("batchproof/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            version: version.map(|v| v.as_str().to_string()),
            workspace,
            pacer: None,
        })
    }

    /// The same client held under `limits` (requests per second per category), shared
    /// with every clone made from it.
    pub fn paced(self, limits: &RateLimits) -> Client {
        Client {
            pacer: (!limits.is_empty()).then(|| std::sync::Arc::new(Pacer::new(limits))),
            ..self
        }
    }

    /// The same client with another bearer token, or none (for the auth probes).
    pub fn with_token(&self, token: Option<&str>) -> Client {
        Client {
            token: token.map(str::to_string),
            ..self.clone()
        }
    }

    /// The same client sending another version header value, or none (for the version
    /// probes). The value need not be a known version.
    pub fn with_version_header(&self, version: Option<&str>) -> Client {
        Client {
            version: version.map(str::to_string),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = &self.version
            && let Ok(v) = HeaderValue::from_str(v)
        {
            h.insert(VERSION_HEADER, v);
        }
        if let Some(t) = &self.token
            && let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}"))
        {
            h.insert("authorization", v);
        }
        if let Some(ws) = &self.workspace
            && let Ok(v) = HeaderValue::from_str(ws)
        {
            h.insert(WORKSPACE_HEADER, v);
        }
        h
    }

    async fn send(&self, category: Category, req: reqwest::RequestBuilder) -> Reply {
        // Waiting for the pacer is the harness holding a request back: it shows as
        // schedule lag, not as the target's latency.
        if let Some(p) = &self.pacer {
            p.wait(category).await;
        }
        let started = Instant::now();
        let result = req.headers(self.headers()).send().await;
        match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = retry_after(resp.headers());
                match resp.bytes().await {
                    Ok(raw) => {
                        let body = serde_json::from_slice(&raw).ok();
                        Reply::Answered {
                            status,
                            body,
                            raw: raw.to_vec(),
                            retry_after,
                            elapsed: started.elapsed(),
                        }
                    }
                    Err(e) if e.is_timeout() => Reply::Timeout {
                        elapsed: started.elapsed(),
                    },
                    Err(e) => Reply::Other {
                        error: e.to_string(),
                        elapsed: started.elapsed(),
                    },
                }
            }
            Err(e) if e.is_timeout() => Reply::Timeout {
                elapsed: started.elapsed(),
            },
            Err(e) if e.is_connect() => Reply::Connect {
                error: root_cause(&e),
                elapsed: started.elapsed(),
            },
            Err(e) => Reply::Other {
                error: root_cause(&e),
                elapsed: started.elapsed(),
            },
        }
    }

    pub async fn post_json_bytes(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        self.send(Category::of("POST", path), req).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_json_bytes(path, serde_json::to_vec(body).unwrap_or_default())
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        let req = self.http.delete(format!("{}{path}", self.base));
        self.send(Category::of("DELETE", path), req).await
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Reply {
        let req = self.http.get(format!("{}{path}", self.base)).query(query);
        self.send(Category::Get, req).await
    }

    /// Submits a Batch Run Workflow body (already in the version's shape).
    pub async fn submit_batch(&self, body: impl Into<reqwest::Body>) -> Reply {
        self.post_json_bytes("/workflow_runs/batch", body).await
    }

    /// One page of List Workflow Runs filtered by batch id.
    pub async fn list_batch(&self, batch_id: &str, page_size: u32, token: Option<&str>) -> Reply {
        self.get(
            "/workflow_runs",
            &Self::batch_listing(batch_id, page_size, token),
        )
        .await
    }

    /// The query of one page of a batch's listing, in creation order.
    pub fn batch_listing(
        batch_id: &str,
        page_size: u32,
        token: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("batchId", batch_id.to_string()),
            ("maxPageSize", page_size.to_string()),
            // Creation order does not change while runs progress, so pages stay disjoint
            // and complete; the default (updatedAt) reshuffles runs between pages.
            ("sortBy", "createdAt".to_string()),
            ("sortDir", "asc".to_string()),
        ];
        if let Some(t) = token {
            q.push(("nextPageToken", t.to_string()));
        }
        q
    }

    pub async fn get_run(&self, id: &str) -> Reply {
        self.get(&format!("/workflow_runs/{id}"), &[]).await
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
