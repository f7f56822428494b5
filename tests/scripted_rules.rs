//! Every contract rule against scripted endpoints (`wiremock`), under every API version it
//! applies to: one small, conforming script of the API, and for each rule a variant that
//! breaks that rule in a way the mock does not (a 200 with `success: false`, a token chain that never ends, a changed nested
//! value, a 404 body that is not JSON, an upper-case signature, …). The conforming script
//! passes every rule; each variant fails its rule, with evidence — and nothing else but
//! the collateral its table row declares (a target that repeats one batch id cannot keep
//! its list filter either).

mod common;
use common::run_in_process;

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use batchproof::api::{ApiVersion, RunStatus};
use batchproof::checks::RuleStatus;
use batchproof::report::Report;
use batchproof::scenario::Scenario;
use batchproof::webhook::signing;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "sk_scripted";
const TOKEN_ENV: &str = "BATCHPROOF_SCRIPT_TOKEN";
const WORKFLOW: &str = "workflow_scripted";
const SECRET: &str = "wss_scripted_secret";

#[derive(Clone)]
struct Run {
    id: String,
    batch_id: String,
    metadata: Value,
    status: RunStatus,
    /// Milliseconds after the script's epoch.
    start_ms: i64,
    /// Set by an update (`POST /workflow_runs/{id}`): updatedAt moves, creation does not.
    updated_ms: Option<i64>,
    probe_max: bool,
}

/// A delivery for the sender task: body, and the run it is about.
impl Run {
    fn updated(&self) -> i64 {
        self.updated_ms.unwrap_or(self.start_ms)
    }
}

struct Outgoing {
    body: Value,
}

struct State {
    version: ApiVersion,
    /// The rule this script breaks; None: conforming.
    breaks: Option<&'static str>,
    epoch: chrono::DateTime<chrono::Utc>,
    runs: Vec<Run>,
    batches: u32,
    single: Option<Run>,
    /// List calls per batch id.
    lists: HashMap<String, u32>,
    receiver: Option<String>,
    outbox: mpsc::UnboundedSender<(String, Outgoing)>,
}

struct Script(Arc<Mutex<State>>);

/// Variants that break no rule: answers the reference allows that a stricter reading
/// would fail. A 502 in HTML for one batch of the load (5xx bodies are untyped).
const LENIENT_5XX_HTML: &str = "lenient.5xx_html";
/// Error bodies in the coded shape on 2025-04-21 (which shape it answers is uncertain).
const LENIENT_CODED_2025: &str = "lenient.coded_2025";
/// PROCESSED runs with `stepRuns: []` on 2026-02-09 (the reference: "may be []").
const LENIENT_NO_STEP_RUNS: &str = "lenient.no_step_runs";

fn ts(epoch: chrono::DateTime<chrono::Utc>, ms: i64) -> String {
    (epoch + chrono::Duration::milliseconds(ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl State {
    fn is(&self, rule: &str) -> bool {
        self.breaks == Some(rule)
    }

    fn json(&self, status: u16, body: Value) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(body)
    }

    fn error(&self, status: u16, code: &str, message: &str) -> ResponseTemplate {
        let body = if self.version.is_legacy() && !self.is(LENIENT_CODED_2025) {
            json!({"success": false, "error": message})
        } else {
            json!({"code": code, "message": message, "retryable": code == "RATE_LIMIT_EXCEEDED"})
        };
        self.json(status, body)
    }

    fn full(&self, r: &Run) -> Value {
        let mut metadata = r.metadata.clone();
        if self.is("runs.metadata") && metadata["nested"]["tags"].is_array() {
            metadata["nested"]["tags"][0] = json!("changed");
        }
        let batch_id = if self.is("runs.batch_id") {
            Value::Null
        } else {
            json!(r.batch_id)
        };
        let failure = (r.status == RunStatus::Failed && !self.is("runs.failure_reason"))
            .then_some("FAILED_TO_PROCESS_FILE");
        let start = ts(self.epoch, r.start_ms);
        let priority = if self.is("runs.priority") {
            json!("90")
        } else {
            json!(90)
        };
        if self.version.is_legacy() {
            let outputs = if self.is("runs.outputs") {
                json!([])
            } else {
                json!([{"processorId": "p", "output": {"value": 1}}])
            };
            json!({"object": "workflow_run", "id": r.id, "status": r.status.as_str(), "metadata": metadata,
                   "batchId": batch_id, "failureReason": failure, "startTime": start, "outputs": outputs, "priority": priority})
        } else {
            let steps = if self.is("runs.outputs") {
                json!([{"object": "workflow_step_run"}])
            } else if self.is(LENIENT_NO_STEP_RUNS) {
                json!([])
            } else {
                json!([{"object": "workflow_step_run", "id": "step_1", "status": "PROCESSED", "result": {"extractRun": {"output": {"value": 1}}}}])
            };
            json!({"object": "workflow_run", "id": r.id, "status": r.status.as_str(), "metadata": metadata,
                   "batchId": batch_id, "failureReason": failure, "startTime": start, "files": [], "stepRuns": steps,
                   "priority": priority})
        }
    }

    fn summary(&self, r: &Run) -> Value {
        json!({"object": "workflow_run", "id": r.id, "status": r.status.as_str(), "batchId": r.batch_id,
               "startTime": ts(self.epoch, r.start_ms), "updatedAt": ts(self.epoch, r.updated())})
    }

    /// An update of a run's metadata: it becomes the most recently updated run.
    fn update(&mut self, id: &str) -> ResponseTemplate {
        let latest = self.runs.iter().map(Run::updated).max().unwrap_or(0);
        let Some(run) = self.runs.iter_mut().find(|r| r.id == id) else {
            return self.error(404, "NOT_FOUND", "no such run");
        };
        run.updated_ms = Some(latest + 1_000);
        let run = self.runs.iter().find(|r| r.id == id).expect("just updated");
        let mut full = self.full(run);
        full["updatedAt"] = json!(ts(self.epoch, run.updated()));
        if self.version.is_legacy() {
            self.json(200, json!({"success": true, "workflowRun": full}))
        } else {
            self.json(200, full)
        }
    }

    fn send(&self, body: Value) {
        if let Some(url) = &self.receiver {
            let _ = self.outbox.send((url.clone(), Outgoing { body }));
        }
    }

    fn event(&self, r: &Run, n: u32) -> Value {
        json!({"eventId": format!("evt_{}_{n}", r.id), "eventType": r.status.event_type(self.version).unwrap_or("workflow_run.completed"),
               "payload": self.full(r)})
    }

    /// The webhooks for one finished run of the load.
    fn deliver(&self, r: &Run, first_of_batch: bool) {
        let mut event = self.event(r, 0);
        // Breaks of Get alone leave the webhook as it should be.
        event["payload"]["batchId"] = json!(r.batch_id);
        event["payload"]["metadata"] = r.metadata.clone();
        if self.is("webhook.batch_id") {
            event["payload"]["batchId"] = json!("batch_someone_else");
        }
        if self.is("webhook.metadata") {
            event["payload"]["metadata"]["nested"]["position"] = json!(-1);
        }
        if self.is("webhook.event_type") && first_of_batch {
            // A PROCESSED run announced as rejected.
            event["eventType"] = json!("workflow_run.rejected");
        }
        if self.is("webhook.agrees_with_get") && first_of_batch {
            event["eventType"] = json!("workflow_run.failed");
            event["payload"]["status"] = json!("FAILED");
        }
        self.send(event);
        if first_of_batch {
            if self.is("webhook.one_terminal") {
                self.send(self.event(r, 1));
            }
            if self.is("webhook.envelope") {
                let mut e = self.event(r, 2);
                e.as_object_mut().unwrap().remove("eventId");
                self.send(e);
            }
            if self.is("runs.forward_only") {
                let mut e = self.event(r, 3);
                e["payload"]["status"] = json!("PROCESSING");
                self.send(e);
            }
        }
    }

    fn batch(&mut self, body: &Value) -> ResponseTemplate {
        let legacy = self.version.is_legacy();
        // Not JSON (read as null), not an object, `inputs` not an array, metadata not an
        // object: refused, or (breaking batch.rejects_malformed) a crash.
        let malformed = !body.is_object()
            || body.get("inputs").is_some_and(|i| !i.is_array())
            || body["inputs"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|i| i.get("metadata").is_some_and(|m| !m.is_object()))
            });
        if malformed {
            return if self.is("batch.rejects_malformed") {
                self.error(500, "INTERNAL_ERROR", "internal error")
            } else {
                self.error(400, "INVALID_REQUEST", "malformed body")
            };
        }
        let workflow = if legacy {
            body.get("workflowId")
        } else {
            body.get("workflow").and_then(|w| w.get("id"))
        };
        let Some(workflow) = workflow.and_then(Value::as_str) else {
            return if self.is("batch.rejects_missing_workflow") {
                self.error(404, "NOT_FOUND", "workflow not found")
            } else {
                self.error(400, "INVALID_REQUEST", "workflow is required")
            };
        };
        if workflow != WORKFLOW {
            return if self.is("batch.unknown_workflow") {
                self.error(400, "INVALID_REQUEST", "bad workflow")
            } else {
                self.error(404, "NOT_FOUND", "workflow not found")
            };
        }
        let inputs = body
            .get("inputs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let max = if self.is("batch.accepts_1000") {
            999
        } else {
            1000
        };
        // Breaking batch.rejects_empty: the empty batch is accepted (a 422 would be no
        // break: where no status is documented, 400 and 422 both pass).
        if inputs.is_empty() && !self.is("batch.rejects_empty") {
            return self.error(400, "INVALID_REQUEST", "inputs must not be empty");
        }
        if inputs.len() > max {
            let status = if self.is("batch.rejects_1001") {
                413
            } else {
                400
            };
            return self.error(status, "INVALID_REQUEST", "at most 1000 inputs");
        }
        // Metadata over 10KB, refused on 2026-02-09 where the limit is documented.
        let large = inputs.iter().any(|i| {
            i.get("metadata")
                .is_some_and(|m| m.to_string().len() > 10 * 1024)
        });
        if large && !legacy && !self.is("batch.rejects_large_metadata") {
            return self.error(400, "INVALID_REQUEST", "metadata is limited to 10KB");
        }
        let has_file = |i: &Value| {
            let f = i.get("file");
            let text = |f: &Value, k: &str| f.get(k).is_some_and(Value::is_string);
            if legacy {
                f.is_some_and(|f| text(f, "fileUrl") || text(f, "fileId"))
                    || i.get("rawText").is_some()
            } else {
                f.is_some_and(|f| text(f, "url") || text(f, "id") || text(f, "text"))
            }
        };
        if !self.is("batch.rejects_bad_file") && !inputs.iter().all(has_file) {
            return self.error(400, "INVALID_REQUEST", "each input needs a file");
        }
        let probe = |i: &Value| i["metadata"]["bp_probe"].as_str().map(str::to_string);
        let first_probe = inputs.first().and_then(probe);
        if self.is("batch.rapid_succession")
            && first_probe
                .as_deref()
                .is_some_and(|p| p.starts_with("rapid") && !p.starts_with("rapid0"))
        {
            return self.error(429, "RATE_LIMIT_EXCEEDED", "slow down");
        }
        if self.is(LENIENT_5XX_HTML) && first_probe.is_none() && self.batches == 0 {
            // A gateway in front of the API, failing the load's first batch.
            self.batches += 1;
            return ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>");
        }
        self.batches += 1;
        let batch_id = if self.is("batch.unique_ids") {
            "batch_same".to_string()
        } else {
            format!("batch_{}", self.batches)
        };
        let probe_max = first_probe
            .as_deref()
            .is_some_and(|p| p.starts_with("max:"));
        // The cancel probe's runs wait in the queue until cancelled.
        let probe_cancel = first_probe
            .as_deref()
            .is_some_and(|p| p.starts_with("cancel:"));
        let load = first_probe.is_none();
        let base = self.runs.len();
        for (n, input) in inputs.iter().enumerate() {
            let status = if self.is("runs.terminal") && load && n == 1 {
                RunStatus::Processing
            } else if probe_max || probe_cancel {
                RunStatus::Pending
            } else if load && n == 3 {
                RunStatus::Failed
            } else {
                RunStatus::Processed
            };
            let run = Run {
                id: format!("workflow_run_{}_{n}", self.batches),
                batch_id: batch_id.clone(),
                metadata: input.get("metadata").cloned().unwrap_or(json!({})),
                status,
                start_ms: if probe_max {
                    10_000 + n as i64
                } else {
                    (base + n) as i64
                },
                updated_ms: None,
                probe_max,
            };
            if load && status.is_terminal() {
                self.deliver(&run, n == 0);
            }
            self.runs.push(run);
        }
        let body = if legacy {
            json!({"success": !self.is("batch.accepted"), "batchId": batch_id})
        } else {
            json!({"batchId": batch_id})
        };
        // 2026 has no `success` to get wrong: breaking batch.accepted there answers the
        // load's batches 201 (the probes' keep their 200, so only this rule breaks).
        let status = if !legacy && self.is("batch.accepted") && load {
            201
        } else {
            200
        };
        self.json(status, body)
    }

    fn single(&mut self) -> ResponseTemplate {
        let start = if self.is("runs.priority_order") {
            20_000
        } else {
            5_000
        };
        let run = Run {
            id: "workflow_run_single".into(),
            batch_id: String::new(),
            metadata: json!({"bp_probe": "priority:single"}),
            status: RunStatus::Processed,
            start_ms: start,
            updated_ms: None,
            probe_max: false,
        };
        let full = self.full(&run);
        self.single = Some(run);
        if self.version.is_legacy() {
            self.json(200, json!({"success": true, "workflowRuns": [full]}))
        } else {
            self.json(200, full)
        }
    }

    fn list(&mut self, q: &HashMap<String, String>) -> ResponseTemplate {
        let size: i64 = q
            .get("maxPageSize")
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        if !(1..=1000).contains(&size) && !self.is("list.page_size_range") {
            return self.error(400, "INVALID_REQUEST", "maxPageSize must be 1..1000");
        }
        let Some(batch) = q.get("batchId") else {
            if size != 1 {
                return self.json(200, self.page(vec![], Value::Null));
            }
            // The throttle probe's burst (unfiltered, one run per page).
            return if self.is("error.throttle_retryable") {
                self.json(
                    429,
                    json!({"code": "RATE_LIMITED", "message": "slow down", "retryable": false}),
                )
            } else {
                self.error(429, "RATE_LIMIT_EXCEEDED", "slow down")
            };
        };
        let calls = {
            let c = self.lists.entry(batch.clone()).or_default();
            *c += 1;
            *c
        };
        // The probe batch stays PENDING on its first listing, then has run.
        if calls > 1 {
            for r in self
                .runs
                .iter_mut()
                .filter(|r| &r.batch_id == batch && r.probe_max)
            {
                r.status = RunStatus::Processed;
            }
        }
        let mut runs: Vec<&Run> = self
            .runs
            .iter()
            .filter(|r| {
                // Breaking the filter shows the load's runs in every listing (the probes'
                // stay out, so that only the audit sees the break).
                let probe = r.probe_max || r.metadata.get("bp_probe").is_some();
                self.is("list.batch_filter") && !probe || &r.batch_id == batch
            })
            // The status and workflowId filters (breaking one: ignoring it).
            .filter(|r| {
                q.get("status")
                    .is_none_or(|s| self.is("list.status_filter") || r.status.as_str() == s)
            })
            .filter(|_| {
                q.get("workflowId")
                    .is_none_or(|w| self.is("list.workflow_filter") || w == WORKFLOW)
            })
            .collect();
        // The default order is updatedAt, descending (breaking list.defaults: by creation,
        // which reads the same until a run is updated after it was created).
        if !q.contains_key("sortBy") {
            if self.is("list.defaults") {
                runs.sort_by_key(|r| std::cmp::Reverse(r.start_ms));
            } else {
                runs.sort_by_key(|r| std::cmp::Reverse(r.updated()));
            }
        }
        let size = size.clamp(1, 1000) as usize;
        let page_len = if self.is("list.page_size") {
            size + 1
        } else {
            size
        };
        let offset: usize = q
            .get("nextPageToken")
            .and_then(|t| t.strip_prefix("o:")?.parse().ok())
            .unwrap_or(0);
        let mut page: Vec<Value> = runs
            .iter()
            .skip(offset)
            .take(page_len)
            .map(|r| self.summary(r))
            .collect();
        let mut next = offset + page_len;
        if self.is("list.pagination") && offset == 0 && runs.len() > page_len {
            next += 1; // the first run of page two is never shown
        }
        if self.is("runs.count") && offset == 0 && !page.is_empty() && page.len() < page_len {
            page.push(page[0].clone());
        }
        let token = if next < runs.len() {
            json!(format!("o:{next}"))
        } else if self.is("list.token_chain_ends") {
            json!(format!("o:{}", runs.len()))
        } else {
            Value::Null
        };
        self.json(200, self.page(page, token))
    }

    fn page(&self, page: Vec<Value>, token: Value) -> Value {
        if self.version.is_legacy() {
            // Breaking version.response_shape in a legacy version: `success` as a string.
            let success = if self.is("version.response_shape") {
                json!("true")
            } else {
                json!(true)
            };
            json!({"success": success, "workflowRuns": page, "nextPageToken": token})
        } else {
            let object = if self.is("version.response_shape") {
                "workflow_run_list"
            } else {
                "list"
            };
            json!({"object": object, "data": page, "nextPageToken": token})
        }
    }

    /// Cancels a PENDING run: answered CANCELLING, CANCELLED from then on, announced on
    /// 2026 endpoints (and, breaking the rule, on 2025 ones).
    fn cancel(&mut self, id: &str) -> ResponseTemplate {
        let Some(pos) = self.runs.iter().position(|r| r.id == id) else {
            return self.error(404, "NOT_FOUND", "no such run");
        };
        if self.runs[pos].status != RunStatus::Pending {
            return self.error(400, "INVALID_REQUEST", "only PENDING or PROCESSING runs");
        }
        let mut answered = self.runs[pos].clone();
        if !self.is("runs.cancel") {
            answered.status = RunStatus::Cancelling;
            self.runs[pos].status = RunStatus::Cancelled;
        }
        let done = self.runs[pos].clone();
        let announce = !self.version.is_legacy() || self.is("webhook.cancelled_2026_only");
        if announce && done.status == RunStatus::Cancelled {
            self.send(json!({"eventId": format!("evt_{id}_cancelled"), "eventType": "workflow_run.cancelled",
                             "payload": self.full(&done)}));
        }
        let full = self.full(&answered);
        if self.version.is_legacy() {
            self.json(200, json!({"success": true, "workflowRun": full}))
        } else {
            self.json(200, full)
        }
    }

    fn get(&self, id: &str) -> ResponseTemplate {
        let run = self
            .runs
            .iter()
            .find(|r| r.id == id)
            .or(self.single.as_ref().filter(|s| s.id == id));
        match run {
            Some(r) if self.version.is_legacy() => {
                self.json(200, json!({"success": true, "workflowRun": self.full(r)}))
            }
            Some(r) => self.json(200, self.full(r)),
            None if self.is("error.shape") => {
                ResponseTemplate::new(404).set_body_string("<html>Not Found</html>")
            }
            None => self.error(404, "NOT_FOUND", "no such run"),
        }
    }
}

impl Respond for Script {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let header = |k: &str| {
            req.headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match header("x-extend-api-version").as_deref() {
            None if !s.is("version.missing") => {
                return s.error(400, "INVALID_REQUEST", "x-extend-api-version is required");
            }
            Some(v) if v != s.version.as_str() && !s.is("version.unknown") => {
                return s.error(400, "INVALID_REQUEST", "unknown x-extend-api-version");
            }
            _ => {}
        }
        match header("authorization").as_deref() {
            None if !s.is("auth.missing_token") => {
                return s.error(401, "UNAUTHORIZED", "no API key");
            }
            None => return s.error(403, "FORBIDDEN", "forbidden"),
            Some(a) if a != format!("Bearer {TOKEN}") && !s.is("auth.invalid_token") => {
                return s.error(401, "UNAUTHORIZED", "bad API key");
            }
            _ => {}
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let path = req.url.path().to_string();
        let q: HashMap<String, String> = req
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        match (req.method.as_str(), path.as_str()) {
            ("POST", "/webhook_endpoints") => {
                s.receiver = body["url"].as_str().map(str::to_string);
                s.json(200, json!({"object": "webhook_endpoint", "id": "webhook_endpoint_1", "signingSecret": SECRET}))
            }
            ("POST", "/webhook_subscriptions") => s.json(
                200,
                json!({"object": "webhook_subscription", "id": "webhook_subscription_1"}),
            ),
            ("POST", "/workflow_runs/batch") => s.batch(&body),
            ("POST", "/workflow_runs") => s.single(),
            ("POST", p) if p.starts_with("/workflow_runs/") && p.ends_with("/cancel") => {
                s.cancel(&p["/workflow_runs/".len()..p.len() - "/cancel".len()])
            }
            ("POST", p) if p.starts_with("/workflow_runs/") => {
                s.update(&p["/workflow_runs/".len()..])
            }
            ("GET", "/workflow_runs") => s.list(&q),
            ("GET", p) if p.starts_with("/workflow_runs/") => s.get(&p["/workflow_runs/".len()..]),
            _ => s.error(404, "NOT_FOUND", "no such endpoint"),
        }
    }
}

/// Sends the script's deliveries, signed (or mis-signed, as the script breaks).
async fn sender(mut rx: mpsc::UnboundedReceiver<(String, Outgoing)>, breaks: Option<&'static str>) {
    let http = reqwest::Client::new();
    while let Some((url, out)) = rx.recv().await {
        let body = serde_json::to_vec(&out.body).unwrap();
        let mut at = chrono::Utc::now().timestamp();
        if breaks == Some("webhook.signature_age") {
            at += 600; // ten minutes in the future
        }
        let mut sig = signing::sign(SECRET, at, &body);
        if breaks == Some("webhook.signature") {
            sig = sig.to_uppercase();
        }
        let _ = http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-extend-request-timestamp", at.to_string())
            .header("x-extend-request-signature", sig)
            .body(body)
            .send()
            .await;
    }
}

async fn run_script(breaks: Option<&'static str>, version: ApiVersion) -> Report {
    // SAFETY: nextest runs each test in its own process; nothing else reads the
    // environment concurrently at this point.
    unsafe { std::env::set_var(TOKEN_ENV, TOKEN) };
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(sender(rx, breaks));
    let state = Arc::new(Mutex::new(State {
        version,
        breaks,
        epoch: chrono::Utc::now(),
        runs: Vec::new(),
        batches: 0,
        single: None,
        lists: HashMap::new(),
        receiver: None,
        outbox: tx,
    }));
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(Script(state))
        .mount(&server)
        .await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        r#"
name: scripted
target: {{url: "{uri}", token_env: {TOKEN_ENV}}}
api_version: {version}
workflow: {{id: {WORKFLOW}}}
load:
  model: open
  phases: [{{hold: 1s, rate: 2}}]
  inputs_per_batch: 6
  seed: 3
inputs:
  file: {{url: "https://files.batchproof.test/{{{{batch}}}}/{{{{index}}}}.pdf"}}
  metadata:
    nested: {{position: "{{{{index}}}}", tags: ["a", "{{{{choice:x|y}}}}"]}}
results:
  via: both
  webhooks: {{listen: "127.0.0.1:{port}", public_url: "http://127.0.0.1:{port}", register: true}}
  polling: {{interval: 100ms}}
  deadline: 4s
  settle: 300ms
checks:
  audit_batches: 2
  page_size: 4
  rapid_batches: 3
  throttle_probe: 3
"#,
        uri = server.uri(),
        version = version.as_str()
    );
    let path = std::path::PathBuf::from("scripted.yaml");
    let scenario = Scenario::from_text(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap();
    run_in_process(scenario, out.path(), None).await.0
}

fn failed(report: &Report) -> BTreeSet<&str> {
    report
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::Failed)
        .map(|r| r.id.as_str())
        .collect()
}

/// Each rule, and what else a target breaking it that way inevitably breaks. Each rule's
/// script runs under every version the rule applies to.
const TABLE: &[(&str, &[&str])] = &[
    ("batch.accepted", &[]),
    (
        "batch.unique_ids",
        &[
            "list.batch_filter",
            "runs.count",
            "list.pagination",
            "webhook.one_terminal",
        ],
    ),
    ("batch.accepts_1000", &[]),
    ("batch.rejects_1001", &[]),
    ("batch.rejects_empty", &[]),
    ("batch.rejects_malformed", &[]),
    ("batch.rejects_bad_file", &[]),
    ("batch.rejects_large_metadata", &[]),
    ("batch.rejects_missing_workflow", &[]),
    ("batch.unknown_workflow", &[]),
    ("batch.rapid_succession", &[]),
    ("auth.missing_token", &[]),
    ("auth.invalid_token", &[]),
    ("version.missing", &[]),
    ("version.unknown", &[]),
    ("version.response_shape", &[]),
    ("error.shape", &[]),
    ("error.throttle_retryable", &[]),
    ("runs.count", &[]),
    ("runs.batch_id", &[]),
    ("runs.metadata", &[]),
    ("runs.priority", &[]),
    ("runs.priority_order", &[]),
    // A PROCESSING payload in a completed event: its type names another status too.
    ("runs.forward_only", &["webhook.event_type"]),
    ("runs.terminal", &["webhook.one_terminal"]),
    ("runs.outputs", &[]),
    ("runs.cancel", &[]),
    ("runs.failure_reason", &[]),
    ("list.batch_filter", &[]),
    ("list.pagination", &[]),
    // One run more than asked is 11 by default, too.
    ("list.page_size", &["list.defaults"]),
    ("list.page_size_range", &[]),
    ("list.defaults", &[]),
    ("list.status_filter", &[]),
    ("list.workflow_filter", &[]),
    ("list.token_chain_ends", &[]),
    ("webhook.signature", &["webhook.agrees_with_get"]),
    ("webhook.signature_age", &["webhook.agrees_with_get"]),
    ("webhook.envelope", &[]),
    ("webhook.batch_id", &[]),
    ("webhook.metadata", &[]),
    ("webhook.event_type", &[]),
    ("webhook.cancelled_2026_only", &[]),
    ("webhook.one_terminal", &[]),
    ("webhook.agrees_with_get", &[]),
];

/// Breaks `rule` under every API version it applies to, one script run each.
async fn breaks(rule: &'static str) {
    let spec = batchproof::checks::rule(rule).expect("a rule");
    let versions: Vec<ApiVersion> = ApiVersion::ALL
        .iter()
        .copied()
        .filter(|v| spec.applies_to(*v))
        .collect();
    assert!(!versions.is_empty(), "{rule} applies to some version");
    for version in versions {
        breaks_in(rule, version).await;
    }
}

async fn breaks_in(rule: &'static str, version: ApiVersion) {
    let (_, collateral) = TABLE
        .iter()
        .find(|(r, _)| *r == rule)
        .expect("in the table");
    let report = run_script(Some(rule), version).await;
    let got = failed(&report);
    assert!(
        got.contains(rule),
        "{rule} should fail under {version:?}; failed: {got:?}; not run: {:?}",
        report
            .rules
            .iter()
            .filter(|r| r.id == rule)
            .map(|r| (&r.status, &r.note))
            .collect::<Vec<_>>()
    );
    let r = report.rules.iter().find(|r| r.id == rule).unwrap();
    assert!(!r.examples.is_empty(), "{rule}: evidence");
    let e = &r.examples[0];
    assert!(
        !e.expected.is_empty() && !e.seen.is_empty(),
        "{rule}: {e:?}"
    );
    let allowed: BTreeSet<&str> = std::iter::once(rule)
        .chain(collateral.iter().copied())
        .collect();
    assert!(
        got.is_subset(&allowed),
        "{rule} under {version:?}: also failed {:?}; evidence {:?}",
        got.difference(&allowed).collect::<Vec<_>>(),
        report
            .rules
            .iter()
            .filter(|r| r.status == RuleStatus::Failed)
            .map(|r| (&r.id, &r.examples))
            .collect::<Vec<_>>()
    );
    assert!(!report.verdict.passed);
}

async fn conforming(version: ApiVersion) {
    assert!(conforming_as(None, version).await.verdict.passed);
}

/// The conforming script, or one of its lenient variants: every rule passes.
async fn conforming_as(variant: Option<&'static str>, version: ApiVersion) -> Report {
    let report = run_script(variant, version).await;
    let bad: Vec<_> = report
        .rules
        .iter()
        .filter(|r| !matches!(r.status, RuleStatus::Passed | RuleStatus::NotApplicable))
        .map(|r| (&r.id, &r.note, &r.examples))
        .collect();
    assert!(
        bad.is_empty(),
        "the conforming script ({variant:?}) passes every rule: {bad:#?}"
    );
    report
}

fn rule<'r>(report: &'r Report, id: &str) -> &'r batchproof::checks::RuleResult {
    report.rules.iter().find(|r| r.id == id).expect("reported")
}

/// A 5xx of the load is not judged for its body: the documented bodies are the 4xx and
/// 429 ones, and a gateway may answer 502 in HTML.
#[tokio::test]
async fn error_shape_does_not_judge_a_5xx_of_the_load() {
    let report = conforming_as(Some(LENIENT_5XX_HTML), ApiVersion::V2026_02_09).await;
    assert_eq!(rule(&report, "error.shape").status, RuleStatus::Passed);
}

/// On 2025-04-21 the coded error shape passes too, and the rule says it saw it.
#[tokio::test]
async fn error_shape_accepts_the_coded_shape_on_2025() {
    let report = conforming_as(Some(LENIENT_CODED_2025), ApiVersion::V2025_04_21).await;
    let r = rule(&report, "error.shape");
    assert_eq!(r.status, RuleStatus::Passed);
    assert!(
        r.note.as_deref().unwrap_or("").contains("uncertain"),
        "{:?}",
        r.note
    );
    assert!(report.verdict.passed);
}

/// A PROCESSED 2026 run whose `stepRuns` is `[]` has its outputs, as the reference allows.
#[tokio::test]
async fn runs_outputs_accepts_empty_step_runs_on_2026() {
    let report = conforming_as(Some(LENIENT_NO_STEP_RUNS), ApiVersion::V2026_02_09).await;
    assert_eq!(rule(&report, "runs.outputs").status, RuleStatus::Passed);
    assert!(report.verdict.passed);
}

#[tokio::test]
async fn conforming_script_passes_every_rule_2026() {
    conforming(ApiVersion::V2026_02_09).await;
}

#[tokio::test]
async fn conforming_script_passes_every_rule_2025() {
    conforming(ApiVersion::V2025_04_21).await;
}

#[tokio::test]
async fn conforming_script_passes_every_rule_2024() {
    conforming(ApiVersion::V2024_12_23).await;
}

#[test]
fn the_table_covers_the_catalogue() {
    let table: BTreeSet<&str> = TABLE.iter().map(|(r, _)| *r).collect();
    let catalogue: BTreeSet<&str> = batchproof::checks::catalogue().map(|r| r.id).collect();
    assert_eq!(table, catalogue);
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripted_rules.rs"
    ))
    .unwrap();
    for rule in table {
        assert!(
            src.contains(&format!("    {},\n", rule.replace('.', "_"))),
            "{rule} has no test"
        );
    }
}

macro_rules! scripted {
    ($($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let id = stringify!($name).replacen('_', ".", 1);
                breaks(TABLE.iter().find(|(r, _)| *r == id).expect("in the table").0).await;
            }
        )+
    };
}

scripted!(
    batch_accepted,
    batch_unique_ids,
    batch_accepts_1000,
    batch_rejects_1001,
    batch_rejects_empty,
    batch_rejects_malformed,
    batch_rejects_bad_file,
    batch_rejects_large_metadata,
    batch_rejects_missing_workflow,
    batch_unknown_workflow,
    batch_rapid_succession,
    auth_missing_token,
    auth_invalid_token,
    version_missing,
    version_unknown,
    version_response_shape,
    error_shape,
    error_throttle_retryable,
    runs_count,
    runs_batch_id,
    runs_metadata,
    runs_priority,
    runs_priority_order,
    runs_forward_only,
    runs_terminal,
    runs_outputs,
    runs_cancel,
    runs_failure_reason,
    list_batch_filter,
    list_pagination,
    list_page_size,
    list_page_size_range,
    list_defaults,
    list_status_filter,
    list_workflow_filter,
    list_token_chain_ends,
    webhook_signature,
    webhook_signature_age,
    webhook_envelope,
    webhook_batch_id,
    webhook_metadata,
    webhook_event_type,
    webhook_cancelled_2026_only,
    webhook_one_terminal,
    webhook_agrees_with_get,
);
