//! The active part of the `runs.*` rules: requests the probe phase sends and what
//! their answers show.

use super::{PROBE_KEY, Probe, seen};
use crate::api::{RunStatus, shapes};
use crate::checks::runs::*;
use crate::checks::{Case, json_excerpt};
use crate::observe::{BatchOutcome, value_hash};
use crate::scenario::TagRead;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// One accepted batch of the load, as the ledger knows it.
struct Audited {
    index: u64,
    pos: usize,
    batch_id: String,
    inputs: u32,
}

pub async fn audit(p: &mut Probe<'_>) {
    let batches: Vec<Audited> = {
        let l = p.ledger.lock().expect("ledger");
        l.batches()
            .iter()
            .enumerate()
            .filter_map(|(pos, b)| match &b.outcome {
                BatchOutcome::Accepted { batch_id } => Some(Audited {
                    index: b.index,
                    pos,
                    batch_id: batch_id.clone(),
                    inputs: b.inputs,
                }),
                _ => None,
            })
            .take(p.config.audit_batches)
            .collect()
    };
    for (n, b) in batches.iter().enumerate() {
        audit_batch(p, b, n == 0).await;
    }
}

/// What the batch's listing showed, before any Get.
struct Listing {
    /// `GET /workflow_runs?batchId=…`, as cited in findings.
    request: String,
    /// Run ids in listing order, each once.
    ids: Vec<String>,
    /// batchId as listed, judged once Get has told which input the run belongs to.
    batch_on_list: BTreeMap<String, Value>,
}

async fn audit_batch(p: &mut Probe<'_>, b: &Audited, first: bool) {
    let walk = super::list::walk(p, &b.batch_id, 1000, u64::from(b.inputs)).await;
    if walk.unread {
        // The listing could not be read whole: none of the batch's runs is judged by
        // what it lacks. The rules it feeds are not run for this batch.
        for rule in ["runs.count", "runs.terminal", "list.batch_filter"] {
            p.reads.unread += 1;
            p.findings.unread(
                rule,
                format!("the listing of batch {} could not be read", b.batch_id),
            );
        }
        return;
    }
    let listing = judge_listing(p, b, &walk.runs);
    // What the webhooks said before the Gets went out: a Get must show that status (or
    // the review's outcome after NEEDS_REVIEW), never an earlier one. Read after the
    // Gets, a review finishing in between would look like a disagreement.
    let webhook_before: Vec<Option<RunStatus>> = {
        let l = p.ledger.lock().expect("ledger");
        let first = l.batches()[b.pos].first_seq;
        (0..u64::from(b.inputs))
            .map(|i| {
                l.input(first + i)
                    .and_then(|r| r.webhook())
                    .map(|s| s.status)
            })
            .collect()
    };
    let got = get_each(p, &listing.ids).await;
    let mut unread_inputs = false;

    let mut runs_per_input: Vec<Vec<String>> = vec![Vec::new(); b.inputs as usize];
    let mut priority_exposed = false;
    for (id, reply) in &got {
        let req = format!("GET /workflow_runs/{id}");
        if p.unread("runs.count", reply, true) {
            // Which input it is stays unknown: its input is not judged either.
            unread_inputs = true;
            continue;
        }
        if reply.status() != Some(200) {
            p.error_body(reply, &req);
            p.findings.fail(
                "runs.count",
                Case::new("HTTP 200 for a listed run", seen(reply))
                    .batch(&b.batch_id)
                    .run(id)
                    .request(&req),
            );
            continue;
        }
        let Some(body) = reply.body() else { continue };
        let v = p.version();
        crate::checks::version::response(&mut p.findings, v, body, true, &req);
        let Some(run) = shapes::run_object(v, body) else {
            continue;
        };
        let run = Value::Object(run.clone());
        if let Some(input) = judge_run(
            p,
            b,
            &listing,
            id,
            &run,
            &webhook_before,
            &mut priority_exposed,
        ) {
            runs_per_input[input as usize].push(id.clone());
        }
    }
    if !priority_exposed {
        p.findings.note(
            "runs.priority",
            "the target's runs have no priority field; runs.priority_order checks it by behaviour",
        );
    }
    for (i, runs) in runs_per_input.iter().enumerate() {
        if runs.is_empty() && unread_inputs {
            // Perhaps the run we could not read: not judged.
            p.reads.unread += 1;
            p.findings.unread(
                "runs.count",
                "a listed run could not be read, so which input it is is unknown",
            );
            continue;
        }
        p.findings.check("runs.count", runs.len() == 1, || {
            Case::new(
                format!("one run for input {i}"),
                if runs.is_empty() {
                    "no run".to_string()
                } else {
                    format!("{} runs: {}", runs.len(), runs.join(", "))
                },
            )
            .batch(&b.batch_id)
            .request(&listing.request)
        });
    }

    let complete: HashSet<String> = listing.ids.into_iter().collect();
    super::list::pagination(p, &b.batch_id, &complete).await;
    // The filters on the first audited batch: a few GETs, no run created.
    if first {
        super::list::filters(p, &b.batch_id, &walk.runs).await;
    }
}

/// Judges the listing on its own: each run once (`runs.count`) and terminal
/// (`runs.terminal`).
fn judge_listing(p: &mut Probe<'_>, b: &Audited, runs: &[Value]) -> Listing {
    let batch_id = b.batch_id.as_str();
    let request = format!("GET /workflow_runs?batchId={batch_id}&maxPageSize=1000");
    let mut ids = Vec::new();
    let mut unique = HashSet::new();
    let mut batch_on_list = BTreeMap::new();
    for run in runs {
        let Some(id) = run.get("id").and_then(Value::as_str) else {
            continue;
        };
        if !unique.insert(id.to_string()) {
            p.findings.fail(
                "runs.count",
                Case::new("each run listed once", format!("{id} listed twice"))
                    .batch(batch_id)
                    .run(id)
                    .request(&request),
            );
            continue;
        }
        ids.push(id.to_string());
        batch_on_list.insert(
            id.to_string(),
            run.get("batchId").cloned().unwrap_or(Value::Null),
        );
        let status = run
            .get("status")
            .and_then(Value::as_str)
            .and_then(RunStatus::parse);
        p.findings.check(
            "runs.terminal",
            status.is_some_and(RunStatus::is_terminal),
            || {
                Case::new(
                    "a terminal status",
                    format!("{}", run.get("status").unwrap_or(&Value::Null)),
                )
                .batch(batch_id)
                .run(id)
                .request(&request)
            },
        );
    }
    Listing {
        request,
        ids,
        batch_on_list,
    }
}

/// Gets every listed run, 16 at a time; a Get the target refused or dropped (429, 5xx,
/// no connection) is then sent again patiently, one at a time, as any client would.
async fn get_each(
    p: &mut Probe<'_>,
    ids: &[String],
) -> BTreeMap<String, crate::api::client::Reply> {
    let mut got = BTreeMap::new();
    for chunk in ids.chunks(16) {
        if p.reads.unreachable.is_some() {
            break;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for id in chunk {
            let client = p.client.clone();
            let id = id.clone();
            tasks.spawn(async move {
                let reply = client.get_run(&id).await;
                (id, reply)
            });
        }
        while let Some(Ok((id, reply))) = tasks.join_next().await {
            got.insert(id, reply);
        }
    }
    let again: Vec<String> = got
        .iter()
        .filter(|(_, r)| super::unreadable(r, true).is_some())
        .map(|(id, _)| id.clone())
        .collect();
    for id in again {
        let first = got.remove(&id).expect("listed above");
        if first.status() == Some(429) {
            p.reads.throttled += 1;
            p.throttled(&first, "GET /workflow_runs/{id}");
        }
        let client = p.client;
        let reply = p
            .patiently(&format!("GET /workflow_runs/{id}"), true, || {
                client.get_run(&id)
            })
            .await;
        got.insert(id, reply);
    }
    // Runs never sent for because the target went away: unread too.
    for id in ids {
        got.entry(id.clone())
            .or_insert_with(|| crate::api::client::Reply::Connect {
                error: "not sent: the target was unreachable".into(),
                elapsed: Duration::ZERO,
            });
    }
    got
}

/// Judges one run as Get returned it. Returns which of the batch's inputs it is, or
/// `None` when it belongs to no input of this batch (already reported). Sets
/// `priority_exposed` when a run of this batch carries a priority field.
fn judge_run(
    p: &mut Probe<'_>,
    b: &Audited,
    listing: &Listing,
    id: &str,
    run: &Value,
    webhook_before: &[Option<RunStatus>],
    priority_exposed: &mut bool,
) -> Option<u64> {
    let batch_id = b.batch_id.as_str();
    let req = format!("GET /workflow_runs/{id}");
    // Which input is this? By the correlation tag the harness put in its metadata.
    let read = p
        .scenario
        .inputs
        .tagging()
        .map_or(TagRead::Absent, |t| t.read(run.get("metadata")));
    let tag = match read {
        TagRead::Own { batch, index } => Some((batch, index)),
        _ => None,
    };
    let other_batch = match read {
        TagRead::Own { batch, .. } => batch != b.index,
        // Another run's tag in this batch's listing: the filter let a stranger in.
        TagRead::Other => true,
        TagRead::Absent => run
            .get("batchId")
            .and_then(Value::as_str)
            .is_some_and(|x| x != batch_id),
    };
    p.findings.check("list.batch_filter", !other_batch, || {
        Case::new(
            format!("only runs of batch {batch_id}"),
            format!(
                "batchId {}, metadata {}",
                run.get("batchId").unwrap_or(&Value::Null),
                json_excerpt(run.get("metadata").unwrap_or(&Value::Null))
            ),
        )
        .batch(batch_id)
        .run(id)
        .request(&listing.request)
    });
    if other_batch {
        return None;
    }
    let listed_batch = listing
        .batch_on_list
        .get(id)
        .cloned()
        .unwrap_or(Value::Null);
    let on_get = run.get("batchId").cloned().unwrap_or(Value::Null);
    for (seen_batch, request) in [(&on_get, &req), (&listed_batch, &listing.request)] {
        p.findings.check(
            "runs.batch_id",
            seen_batch.as_str() == Some(batch_id),
            || {
                Case::new(
                    format!("batchId \"{batch_id}\""),
                    format!("batchId {seen_batch}"),
                )
                .batch(batch_id)
                .run(id)
                .request(request)
            },
        );
    }
    *priority_exposed |= run.get("priority").is_some_and(|p| !p.is_null());
    let status = judge_fields(p, batch_id, id, run, &req);

    let Some((_, input)) = tag.filter(|(_, i)| *i < u64::from(b.inputs)) else {
        // Not one of this batch's inputs: an extra run.
        p.findings.fail(
            "runs.count",
            Case::new(
                format!("{} runs, one per input", b.inputs),
                format!(
                    "a run matching no input, metadata {}",
                    json_excerpt(run.get("metadata").unwrap_or(&Value::Null))
                ),
            )
            .batch(batch_id)
            .run(id)
            .request(&listing.request),
        );
        return None;
    };
    let webhook = webhook_before.get(input as usize).copied().flatten();
    judge_against_ledger(p, b, input, id, run, (webhook, status), &req);
    Some(input)
}

/// The run's own fields: priority (when exposed), outputs of a PROCESSED run, the
/// reason of a FAILED one. Returns the run's status.
fn judge_fields(
    p: &mut Probe<'_>,
    batch_id: &str,
    id: &str,
    run: &Value,
    req: &str,
) -> Option<RunStatus> {
    let expected_priority = p.config.priority;
    if let Some(prio) = run.get("priority").filter(|p| !p.is_null()) {
        p.findings.check(
            "runs.priority",
            prio.as_u64() == Some(u64::from(expected_priority)),
            || {
                Case::new(
                    format!("priority {expected_priority}"),
                    format!("priority {prio}"),
                )
                .batch(batch_id)
                .run(id)
                .request(req)
            },
        );
    }
    let status = run
        .get("status")
        .and_then(Value::as_str)
        .and_then(RunStatus::parse);
    match status {
        Some(RunStatus::Processed) => {
            let problem = outputs_problem(p.version().is_legacy(), run);
            p.findings.check("runs.outputs", problem.is_none(), || {
                Case::new("outputs of the run", problem.clone().unwrap_or_default())
                    .batch(batch_id)
                    .run(id)
                    .request(req)
            });
        }
        Some(RunStatus::Failed) => {
            let reason = run
                .get("failureReason")
                .and_then(Value::as_str)
                .unwrap_or("");
            p.findings
                .check("runs.failure_reason", !reason.is_empty(), || {
                    Case::new(
                        "a failureReason",
                        format!(
                            "failureReason {}",
                            run.get("failureReason").unwrap_or(&Value::Null)
                        ),
                    )
                    .batch(batch_id)
                    .run(id)
                    .request(req)
                });
        }
        _ => {}
    }
    status
}

/// Metadata, deep and exact (key order aside), and agreement with the terminal webhook
/// the ledger had recorded for the same input before the Get went out.
fn judge_against_ledger(
    p: &mut Probe<'_>,
    b: &Audited,
    input: u64,
    id: &str,
    run: &Value,
    (webhook_status, status): (Option<RunStatus>, Option<RunStatus>),
    req: &str,
) {
    let batch_id = b.batch_id.as_str();
    let mut l = p.ledger.lock().expect("ledger");
    let seq = l.batches()[b.pos].first_seq + input;
    l.link_run(id, seq);
    if let Some(expected) = l.expected_metadata(b.index, input) {
        let seen_md = run.get("metadata").cloned().unwrap_or(Value::Null);
        p.findings.check(
            "runs.metadata",
            value_hash(&seen_md) == value_hash(&expected),
            || {
                Case::new(json_excerpt(&expected), json_excerpt(&seen_md))
                    .batch(batch_id)
                    .run(id)
                    .request(req)
            },
        );
    }
    drop(l);
    // Judged whatever Get says, terminal or not: after the results settled, a Get still
    // PROCESSING after the terminal webhook disagrees with it. A Get already showing the
    // review's outcome agrees with a NEEDS_REVIEW webhook whose follow-up is on its way.
    if let (true, Some(w), Some(g)) = (
        p.scenario.results.webhooks.is_some(),
        webhook_status,
        status,
    ) {
        let agrees = w == g
            || (w == RunStatus::NeedsReview
                && matches!(g, RunStatus::Rejected | RunStatus::Processed));
        p.findings.check("webhook.agrees_with_get", agrees, || {
            Case::new(
                format!("{} (as the terminal webhook said)", w.as_str()),
                format!("{} on Get", g.as_str()),
            )
            .batch(batch_id)
            .run(id)
            .request(req)
        });
    }
}

/// Pending batch runs `runs.priority_order` must compare before it may pass: with fewer,
/// a target that ignores priority passes by luck.
const MIN_COMPARED: usize = 10;

fn start_time(run: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(run.get("startTime")?.as_str()?).ok()
}

/// `runs.priority_order`, by behaviour: right after the 1,000-input probe batch is
/// accepted, create one run at priority 89, then list which batch runs are still
/// PENDING. In a queue that serves lower numbers first and puts batch runs at 90, none
/// of those may start before the priority-89 run.
pub async fn priority_order(p: &mut Probe<'_>, batch_id: &str) {
    let v = p.version();
    let file_url = "https://files.batchproof.test/probe/priority/single.pdf";
    let body = if v.is_legacy() {
        json!({"workflowId": p.scenario.workflow.id, "files": [{"fileUrl": file_url}], "priority": 89, "metadata": {PROBE_KEY: "priority:single"}})
    } else {
        json!({"workflow": {"id": p.scenario.workflow.id}, "file": {"url": file_url}, "priority": 89, "metadata": {PROBE_KEY: "priority:single"}})
    };
    let reply = p
        .send(p.client, "POST", "/workflow_runs", Some(&body))
        .await;
    let single = reply
        .body()
        .filter(|_| reply.status() == Some(200))
        .and_then(|b| {
            let run = if v.is_legacy() {
                b.get("workflowRuns")?.get(0)?
            } else {
                b
            };
            run.get("id")?.as_str().map(str::to_string)
        });
    let Some(single) = single else {
        p.findings.note(
            "runs.priority_order",
            format!("the priority-89 run was not created: {}", seen(&reply)),
        );
        return;
    };
    p.ledger
        .lock()
        .expect("ledger")
        .mark_probe_run(single.clone());
    let (listing, _) = p.list_all(batch_id, 1000).await;
    let pending: HashSet<String> = listing
        .iter()
        .filter(|r| r.get("status").and_then(Value::as_str) == Some("PENDING"))
        .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    if pending.is_empty() {
        p.findings.note(
            "runs.priority_order",
            "no contention: every run of the 1,000-input probe batch had started before the priority-89 run was listed",
        );
        return;
    }
    let within = p.scenario.results.deadline.max(Duration::from_secs(10));
    let runs = p.wait_terminal(batch_id, within).await;
    let path = format!("/workflow_runs/{single}");
    let reply = p.send(p.client, "GET", &path, None).await;
    let single_start = reply
        .body()
        .and_then(|b| shapes::run_object(v, b))
        .and_then(|r| start_time(&Value::Object(r.clone())));
    let Some(single_start) = single_start else {
        p.findings.note(
            "runs.priority_order",
            format!("the priority-89 run has no startTime: {}", seen(&reply)),
        );
        return;
    };
    // Only pending runs that later started can be compared with the priority-89 run.
    let compared: Vec<&Value> = runs
        .iter()
        .filter(|r| {
            r.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| pending.contains(id))
        })
        .filter(|r| start_time(r).is_some())
        .collect();
    if compared.len() < MIN_COMPARED {
        p.findings.note(
            "runs.priority_order",
            format!(
                "too little evidence: {} pending batch run(s) with a startTime to compare with the priority-89 run; the rule needs at least {MIN_COMPARED}",
                compared.len()
            ),
        );
        return;
    }
    let overtook: Vec<&Value> = compared
        .into_iter()
        .filter(|r| start_time(r).is_some_and(|t| t < single_start))
        .collect();
    p.findings.check("runs.priority_order", overtook.is_empty(), || {
        Case::new(
            format!("none of the {} pending batch runs starts before the priority-89 run {single} (started {single_start})", pending.len()),
            format!(
                "{} started before it, e.g. {} at {}",
                overtook.len(),
                overtook[0].get("id").and_then(Value::as_str).unwrap_or("?"),
                overtook[0].get("startTime").unwrap_or(&Value::Null)
            ),
        )
        .batch(batch_id)
        .run(&single)
        .request("POST /workflow_runs {priority: 89} after a 1,000-input batch")
    });
}
