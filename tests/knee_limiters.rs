//! The knee against rate limiters written here, not the mock's: a token bucket of 6 batch
//! POSTs per second with bursts of 6, and a fixed one-second window of 6. Each search
//! starts at a third of the limit and must find it within ±10 %: a step must not inherit
//! the limiter state the step before left (an emptied bucket, a full window), which once
//! read the bucket's knee 19 % low.
//!
//! A bucket with a burst of B lets a step of T seconds hold up to L + B/T, so its step is
//! 10 s (≤ +10 %); a window needs no long step.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use batchproof::report::knee::{Knee, Limit};
use batchproof::run::knee::{KneeOptions, search};
use batchproof::run::{ProgressMode, RunOptions};
use batchproof::scenario::Scenario;

const LIMIT: f64 = 6.0;

/// How a limiter decides, given the time since it started.
trait Limiter: Send + 'static {
    fn admit(&mut self, now: Duration) -> bool;
}

/// Refills `rate` tokens a second up to `burst`; starts full.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl Limiter for TokenBucket {
    fn admit(&mut self, now: Duration) -> bool {
        let dt = (now - self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// At most `limit` requests in each whole second since the start.
struct FixedWindow {
    limit: u32,
    window: u64,
    count: u32,
}

impl Limiter for FixedWindow {
    fn admit(&mut self, now: Duration) -> bool {
        let w = now.as_secs();
        if w != self.window {
            self.window = w;
            self.count = 0;
        }
        self.count += 1;
        self.count <= self.limit
    }
}

/// A batch endpoint behind `limiter`: 200 with a batchId, or 429 with Retry-After: 1.
async fn target(limiter: impl Limiter) -> String {
    let started = Instant::now();
    let limiter = Arc::new(Mutex::new(limiter));
    let app = axum::Router::new().fallback(move || {
        let limiter = limiter.clone();
        async move {
            let admitted = limiter.lock().unwrap().admit(started.elapsed());
            if admitted {
                (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    r#"{"batchId":"batch_limited"}"#,
                )
                    .into_response()
            } else {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("content-type", "application/json"), ("retry-after", "1")],
                    r#"{"code":"RATE_LIMITED","message":"slow down","retryable":true}"#,
                )
                    .into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn scenario(dir: &Path, url: &str) -> Scenario {
    let path = dir.join("limited.yaml");
    std::fs::write(
        &path,
        format!(
            "name: limited\ntarget: {{url: '{url}', token_env: PATH}}\nload:\n  phases: [{{hold: 1s, rate: 1}}]\n  inputs_per_batch: 1\nresults: {{via: polling}}\n"
        ),
    )
    .unwrap();
    Scenario::load(&path).unwrap()
}

async fn knee(url: &str, step_s: f64) -> Knee {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path(), url);
    let opts = RunOptions {
        scenario: scenario.path.clone(),
        target: None,
        // The limiter ignores the key; any variable that is always set will do.
        token_env: "PATH".into(),
        out: dir.path().join("reports"),
        progress: ProgressMode::None,
        mock_profile: None,
        shard: None,
        stop: None,
        metrics_listen: None,
        time_scale: None,
    };
    let options = KneeOptions {
        start: LIMIT / 3.0,
        ceiling: 1e4,
        step: Duration::from_secs_f64(step_s),
        precision: 0.05,
        inputs_per_batch: Some(1),
        rate_limit: true,
        processing: false,
        keep_up: 0.97,
        max_runs: None,
        quiet: Duration::from_secs(1),
    };
    let (report, _) = search(scenario, &options, &opts).await.unwrap();
    report.knee.expect("a knee section")
}

fn check(name: &str, k: &Knee) {
    let steps: Vec<String> = k.steps.iter().map(|s| s.line()).collect();
    let steps = steps.join("\n");
    println!("{name}: {}\n{steps}", k.headline());
    assert_eq!(k.limit, Some(Limit::RateLimit), "{steps}");
    let held = k.held_per_s.expect("a rate held");
    assert!(
        (held - LIMIT).abs() <= 0.10 * LIMIT,
        "{name}: held {held:.3}/s against a limit of {LIMIT}/s\n{steps}"
    );
    assert!(k.method.contains("left alone"), "{}", k.method);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_bucket_is_found_within_ten_percent_from_a_third_of_it() {
    let url = target(TokenBucket {
        rate: LIMIT,
        burst: LIMIT,
        tokens: LIMIT,
        last: Duration::ZERO,
    })
    .await;
    check("token bucket", &knee(&url, 10.0).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_window_is_found_within_ten_percent_from_a_third_of_it() {
    let url = target(FixedWindow {
        limit: LIMIT as u32,
        window: 0,
        count: 0,
    })
    .await;
    check("fixed window", &knee(&url, 3.0).await);
}
