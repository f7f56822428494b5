//! Webhook delivery: who gets which event (profile endpoints and API-created endpoints
//! with workflow subscriptions), the signed POST with retries and backoff, the faults and
//! defects that bend delivery, and a bounded log of what happened to each event.
//!
//! Delivery is at-least-once: an event is retried until a 2xx or `max_attempts`, and
//! the same eventId and body are sent on every attempt so receivers can de-duplicate.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::Shared;
use super::delivery_log::{Attempt, DeliveryRecord};
use super::profile::{Defects, MetadataDefect, Profile};
use super::signed_url::{self, AdvancedOptions};
use super::state::Run;
use super::wire;
use crate::api::{ApiVersion, RUN_EVENT_TYPES, RunStatus, STEP_RUN_EVENT};
use crate::grade::observed::{DeliverySeen, Forgery};
use crate::webhook::signing;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookEndpoint {
    pub id: String,
    pub url: String,
    pub name: String,
    #[serde(skip)]
    pub secret: String,
    pub api_version: ApiVersion,
    /// For profile endpoints: workflow-run events to send (empty = all).
    pub events: Vec<String>,
    pub from_profile: bool,
    pub subscriptions: Vec<Subscription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advanced_options: Option<AdvancedOptions>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    pub workflow_id: String,
    pub events: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Hooks {
    pub endpoints: Vec<HookEndpoint>,
}

/// One delivery to make: where, in which version, announcing what.
#[derive(Debug, Clone)]
struct Target {
    endpoint_id: String,
    url: String,
    secret: String,
    version: ApiVersion,
    event_type: &'static str,
    options: Option<AdvancedOptions>,
}

impl Hooks {
    pub fn from_profile(profile: &Profile) -> Hooks {
        Hooks {
            endpoints: profile
                .webhooks
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| HookEndpoint {
                    id: format!("wh_profile_{i}"),
                    url: e.url.clone(),
                    name: format!("profile endpoint {i}"),
                    secret: e.secret.clone(),
                    api_version: e.api_version,
                    events: e.events.clone(),
                    from_profile: true,
                    subscriptions: vec![],
                    advanced_options: None,
                })
                .collect(),
        }
    }

    /// Where a run's announcement goes: its status's event to each interested endpoint,
    /// and, when processing has just finished with its steps processed, the step-run event
    /// to endpoints subscribed to it. A failed run's steps did not process:
    /// `workflow_run.step_run.processed` announces a processed step (docs/contract.md §6),
    /// so a FAILED run sends `workflow_run.failed` alone.
    fn targets(&self, run: &Run, workflow_id: &str, defects: &Defects) -> Vec<Target> {
        // The defect announces a cancellation in every version, to every subscriber.
        let everywhere = defects.cancelled_to_legacy && run.status == RunStatus::Cancelled;
        let announced = |v: ApiVersion| {
            let v = if everywhere {
                ApiVersion::V2026_02_09
            } else {
                v
            };
            match run.status.event_type(v) {
                Some("workflow_run.failed") if defects.failed_announced_as_completed => {
                    Some("workflow_run.completed")
                }
                e => e,
            }
        };
        let mut out = self.targets_for(workflow_id, announced, everywhere);
        let processed = matches!(run.status, RunStatus::Processed | RunStatus::NeedsReview)
            && run.reviewed_at.is_none();
        if processed {
            out.extend(self.targets_for(workflow_id, |_| Some(STEP_RUN_EVENT), false));
        }
        out
    }

    fn targets_for(
        &self,
        workflow_id: &str,
        event: impl Fn(ApiVersion) -> Option<&'static str>,
        any_subscriber: bool,
    ) -> Vec<Target> {
        let mut out = Vec::new();
        for ep in &self.endpoints {
            let Some(event_type) = event(ep.api_version) else {
                continue;
            };
            let wanted = if ep.from_profile {
                // A profile endpoint with no list gets the run events (not step runs).
                (ep.events.is_empty() && RUN_EVENT_TYPES.contains(&event_type))
                    || ep.events.iter().any(|e| e == event_type)
            } else {
                ep.subscriptions.iter().any(|s| {
                    s.workflow_id == workflow_id
                        && (any_subscriber || s.events.iter().any(|e| e == event_type))
                })
            };
            if wanted {
                out.push(Target {
                    endpoint_id: ep.id.clone(),
                    url: ep.url.clone(),
                    secret: ep.secret.clone(),
                    version: ep.api_version,
                    event_type,
                    options: ep.advanced_options.clone(),
                });
            }
        }
        out
    }
}

/// Receives terminal runs from the scheduler (and cancellations from the API) and starts
/// one delivery per interested endpoint.
pub async fn dispatch(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Run>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let run = tokio::select! {
            r = rx.recv() => match r { Some(r) => r, None => return },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let profile = &shared.profile;
        let wf_id = &profile.workflows[run.workflow].id;
        let targets = shared
            .hooks
            .lock()
            .expect("hooks")
            .targets(&run, wf_id, &profile.defects);
        // The run's payload is rendered once per API version, however many endpoints
        // share that version; each delivery still gets its own event id.
        let mut payloads: Vec<(ApiVersion, Bytes)> = Vec::new();
        let mut events = Vec::new();
        for target in targets {
            for body in event_bodies(&shared, &run, &target, &mut payloads) {
                events.push((target.clone(), body));
            }
        }
        for (target, body) in events {
            shared.stats.announced.fetch_add(1, Ordering::Relaxed);
            let faults = &profile.faults.webhooks;
            let record = |outcome| DeliveryRecord {
                event_id: body.id.clone(),
                event_type: target.event_type.to_string(),
                run_id: run.id.clone(),
                batch_id: run.batch_id.clone(),
                endpoint_id: target.endpoint_id.clone(),
                outcome,
                attempts: vec![],
            };
            if shared.chance(faults.drop) {
                shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                shared.log.lock().expect("log").push(record("dropped"));
                continue;
            }
            let mut delay = faults
                .delay
                .as_ref()
                .map(|d| d.sample(&mut *shared.fault_rng.lock().expect("rng")))
                .unwrap_or_default();
            if shared.chance(faults.reorder) {
                let window = faults
                    .reorder_window
                    .map(|d| d.0)
                    .unwrap_or(Duration::from_secs(2));
                use rand::Rng;
                let extra = shared.fault_rng.lock().expect("rng").random_range(0.0..1.0);
                delay += window.mul_f64(extra);
            }
            let copies = if shared.chance(faults.duplicate) {
                shared.stats.duplicated.fetch_add(1, Ordering::Relaxed);
                2
            } else {
                1
            };
            for _ in 0..copies {
                shared.stats.pending.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(deliver(
                    shared.clone(),
                    target.clone(),
                    body.clone(),
                    run.id.clone(),
                    run.batch_id.clone(),
                    profile.scaled(delay),
                    shutdown.clone(),
                ));
            }
        }
    }
}

/// One event for one endpoint: its id, and the body every attempt sends, or, in the
/// large-payload mode, the payload each attempt wraps in a fresh signed URL.
#[derive(Debug, Clone)]
struct Event {
    id: String,
    body: Result<Bytes, Bytes>,
}

impl Event {
    fn new(target: &Target, payload: Bytes) -> Event {
        let id = format!("evt_{}", super::state::random_id(20));
        let body = if signed_url::by_url(target.options.as_ref(), payload.len()) {
            Err(payload)
        } else {
            Ok(envelope(&id, target.event_type, &payload))
        };
        Event { id, body }
    }

    /// What the next attempt sends: the signature then covers the URL, not the run.
    fn body(&self, shared: &Shared, target: &Target) -> Bytes {
        match &self.body {
            Ok(body) => body.clone(),
            Err(payload) => envelope(&self.id, target.event_type, &shared.signed_url(payload)),
        }
    }
}

/// The events one announcement makes for one endpoint: one for a run event, one per
/// step run for the step-run event.
fn event_bodies(
    shared: &Shared,
    run: &Run,
    target: &Target,
    payloads: &mut Vec<(ApiVersion, Bytes)>,
) -> Vec<Event> {
    if target.event_type != STEP_RUN_EVENT {
        let payload = event_payload(shared, run, target, payloads);
        return vec![Event::new(target, payload)];
    }
    let wf = &shared.profile.workflows[run.workflow];
    wire::step_run_events(target.version, run, wf)
        .into_iter()
        .map(|payload| {
            let payload = serde_json::to_vec(&payload).unwrap_or_default();
            Event::new(target, Bytes::from(payload))
        })
        .collect()
}

/// `{"eventId", "eventType", "payload"}` around a serialised payload.
fn envelope(event_id: &str, event_type: &str, payload: &[u8]) -> Bytes {
    let mut body = Vec::with_capacity(payload.len() + 96);
    body.extend_from_slice(b"{\"eventId\":");
    // Strings into a Vec: nothing fails.
    let _ = serde_json::to_writer(&mut body, event_id);
    body.extend_from_slice(b",\"eventType\":");
    let _ = serde_json::to_writer(&mut body, event_type);
    body.extend_from_slice(b",\"payload\":");
    body.extend_from_slice(payload);
    body.push(b'}');
    Bytes::from(body)
}

/// The serialised payload of one run event for one endpoint.
fn event_payload(
    shared: &Shared,
    run: &Run,
    target: &Target,
    payloads: &mut Vec<(ApiVersion, Bytes)>,
) -> Bytes {
    let profile = &shared.profile;
    let defects = &profile.defects;
    let batch_visible = !(defects.runs_without_batch_id || defects.webhook_without_batch_id);
    let Some(defect) = defects.webhook_metadata else {
        let payload = match payloads.iter().find(|(v, _)| *v == target.version) {
            Some((_, p)) => p.clone(),
            None => {
                let mut p = Vec::with_capacity(2048);
                wire::write_run(target.version, run, profile, batch_visible, &mut p);
                let p = Bytes::from(p);
                payloads.push((target.version, p.clone()));
                p
            }
        };
        return payload;
    };
    let mut payload = wire::run_full(target.version, run, profile, batch_visible);
    match defect {
        MetadataDefect::Drop => {
            if let Some(m) = payload.as_object_mut() {
                m.remove("metadata");
            }
        }
        MetadataDefect::Alter => {
            let mut meta = run.metadata.value();
            if let Some(m) = meta.as_object_mut() {
                m.insert("batchproof_altered".into(), json!(true));
            }
            payload["metadata"] = meta;
        }
    }
    Bytes::from(serde_json::to_vec(&payload).unwrap_or_default())
}

async fn deliver(
    shared: Arc<Shared>,
    target: Target,
    event: Event,
    run_id: String,
    batch_id: Option<String>,
    delay: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let profile = &shared.profile;
    let mut attempts = Vec::new();
    let mut outcome = "failed";
    if !delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
    for attempt in 0..profile.webhooks.max_attempts {
        if attempt > 0 {
            let i = (attempt as usize - 1).min(profile.webhooks.retry.len().saturating_sub(1));
            let wait = profile
                .webhooks
                .retry
                .get(i)
                .map(|d| profile.scaled(d.0))
                .unwrap_or(Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            // An endpoint deleted since the last attempt gets nothing more.
            let gone = !shared
                .hooks
                .lock()
                .expect("hooks")
                .endpoints
                .iter()
                .any(|e| e.id == target.endpoint_id);
            if gone {
                outcome = "endpoint_deleted";
                break;
            }
        }
        let Ok(_permit) = shared.delivery_slots.acquire().await else {
            return;
        };
        let body = event.body(&shared, &target);
        shared.stats.attempts.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let at = Utc::now();
        let result = post(&shared, &target, body.clone()).await;
        let millis = started.elapsed().as_millis() as u64;
        observe(
            &shared,
            &target,
            &event.id,
            None,
            &result,
            at_ms(&shared, started),
            millis,
        );
        match result {
            Ok(resp) => {
                let status = resp.status();
                attempts.push(Attempt {
                    at,
                    status: Some(status.as_u16()),
                    error: None,
                    millis,
                });
                if status.is_success() {
                    outcome = "delivered";
                    forge_once(&shared, &target, &body);
                    break;
                }
            }
            Err(e) => attempts.push(Attempt {
                at,
                status: None,
                error: Some(if e.is_timeout() {
                    "timeout".into()
                } else {
                    e.to_string()
                }),
                millis,
            }),
        }
    }
    shared.stats.pending.fetch_sub(1, Ordering::Relaxed);
    match outcome {
        "delivered" => shared.stats.delivered.fetch_add(1, Ordering::Relaxed),
        _ => shared.stats.failed.fetch_add(1, Ordering::Relaxed),
    };
    shared.log.lock().expect("log").push(DeliveryRecord {
        event_id: event.id,
        event_type: target.event_type.to_string(),
        run_id,
        batch_id,
        endpoint_id: target.endpoint_id,
        outcome,
        attempts,
    });
}

/// One signed attempt, with the endpoint's custom headers (`advancedOptions.headers`).
async fn post(
    shared: &Shared,
    target: &Target,
    body: Bytes,
) -> Result<reqwest::Response, reqwest::Error> {
    let (timestamp, signature) = signature(shared, target, &body);
    let mut req = shared.http.post(&target.url);
    for (name, value) in target.options.iter().flat_map(|o| &o.headers) {
        req = req.header(name, value);
    }
    req.header("content-type", "application/json")
        .header(signing::TIMESTAMP_HEADER, timestamp.to_string())
        .header(signing::SIGNATURE_HEADER, signature)
        // Bytes: a json-mode attempt sends the event's buffer without copying it.
        .body(body)
        .send()
        .await
}

/// An attempt's timestamp and signature, bent by the profile's faults and defects.
fn signature(shared: &Shared, target: &Target, body: &[u8]) -> (i64, String) {
    let profile = &shared.profile;
    let stale =
        profile.defects.stale_signature || shared.chance(profile.faults.webhooks.stale_timestamp);
    let now = Utc::now().timestamp();
    let timestamp = if stale { now - 600 } else { now };
    let secret = if profile.defects.wrong_signature {
        "wss_not_the_endpoint_secret"
    } else {
        target.secret.as_str()
    };
    (timestamp, signing::sign(secret, timestamp, body))
}

/// When the attempt that just ended began, in milliseconds since the mock started.
fn at_ms(shared: &Shared, started: Instant) -> u64 {
    started.duration_since(shared.started).as_millis() as u64
}

/// Records one delivery attempt for the grade, when the profile records.
fn observe(
    shared: &Shared,
    target: &Target,
    event_id: &str,
    forgery: Option<Forgery>,
    result: &Result<reqwest::Response, reqwest::Error>,
    at_ms: u64,
    millis: u64,
) {
    let Some(recorder) = &shared.recorder else {
        return;
    };
    let (status, error) = match result {
        Ok(r) => (Some(r.status().as_u16()), None),
        Err(e) if e.is_timeout() => (None, Some("timeout".to_string())),
        Err(e) => {
            // The root cause (refused, reset, closed) is at the end of the chain.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            (None, Some(text))
        }
    };
    recorder
        .observed
        .lock()
        .expect("observed")
        .delivery(DeliverySeen {
            at_ms,
            endpoint_url: target.url.clone(),
            event_id: event_id.to_string(),
            event_type: target.event_type.to_string(),
            forgery,
            status,
            error,
            millis,
        });
}

/// After the first genuine delivery to an endpoint a client registered, sends the
/// profile's forged copies of it (`sparring.forge`), once per endpoint.
fn forge_once(shared: &Arc<Shared>, target: &Target, body: &Bytes) {
    let Some(recorder) = &shared.recorder else {
        return;
    };
    let forge = &shared.profile.sparring.forge;
    if forge.is_empty() || target.endpoint_id.starts_with("wh_profile_") {
        return;
    }
    {
        let mut done = recorder.forged.lock().expect("forged");
        if done.contains(&target.endpoint_id) {
            return;
        }
        done.push(target.endpoint_id.clone());
    }
    for &forgery in forge {
        let (shared, target, body) = (shared.clone(), target.clone(), body.clone());
        recorder.forging.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let now = Utc::now().timestamp();
            let mut req = shared
                .http
                .post(&target.url)
                .header("content-type", "application/json");
            match forgery {
                Forgery::BadSignature => {
                    let sig = signing::sign("wss_forged_by_batchproof", now, &body);
                    req = req
                        .header(signing::TIMESTAMP_HEADER, now.to_string())
                        .header(signing::SIGNATURE_HEADER, sig);
                }
                Forgery::StaleTimestamp => {
                    let then = now - 600;
                    let sig = signing::sign(&target.secret, then, &body);
                    req = req
                        .header(signing::TIMESTAMP_HEADER, then.to_string())
                        .header(signing::SIGNATURE_HEADER, sig);
                }
                Forgery::Unsigned => {}
            }
            let started = Instant::now();
            let result = req.body(body).send().await;
            let millis = started.elapsed().as_millis() as u64;
            let event_id = format!("forged_{}", forgery.as_str());
            let at = at_ms(&shared, started);
            observe(
                &shared,
                &target,
                &event_id,
                Some(forgery),
                &result,
                at,
                millis,
            );
            if let Some(r) = &shared.recorder {
                r.forging.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }
}
