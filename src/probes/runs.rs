//! The active part of the `runs.*` rules: requests the probe phase sends and what
//! their answers show.

use super::{PROBE_KEY, Probe, seen};
use crate::api::{RunStatus, shapes};
use crate::checks::runs::*;
use crate::checks::{Case, json_excerpt};
use crate::observe::{BatchOutcome, value_hash};
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
    for b in &batches {
        audit_batch(p, b).await;
    }
}

async fn audit_batch(p: &mut Probe<'_>, b: &Audited) {
    let v = p.version();
    let batch_id = b.batch_id.as_str();
    let walk = super::list::walk(p, batch_id, 1000, u64::from(b.inputs)).await;
    let list_req = format!("GET /workflow_runs?batchId={batch_id}&maxPageSize=1000");

    // Run ids as listed; a repeat is a failure of runs.count.
    let mut listed: Vec<String> = Vec::new();
    let mut ids = HashSet::new();
    // batchId as listed, judged once Get has told which input the run belongs to.
    let mut summary_batch: BTreeMap<String, Value> = BTreeMap::new();
    for run in &walk.runs {
        let Some(id) = run.get("id").and_then(Value::as_str) else {
            continue;
        };
        if !ids.insert(id.to_string()) {
            p.findings.fail(
                "runs.count",
                Case::new("each run listed once", format!("{id} listed twice"))
                    .batch(batch_id)
                    .run(id)
                    .request(&list_req),
            );
            continue;
        }
        listed.push(id.to_string());
        summary_batch.insert(
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
                .request(&list_req)
            },
        );
    }

    // Get every run, a few at a time.
    let mut got: BTreeMap<String, crate::api::client::Reply> = BTreeMap::new();
    for chunk in listed.chunks(16) {
        let mut tasks = tokio::task::JoinSet::new();
        for id in chunk {
            let client = p.client.clone();
            let id = id.clone();
            tasks.spawn(async move {
                // Honour throttling like any client would.
                let mut reply = client.get_run(&id).await;
                for n in 0..6 {
                    if reply.status() != Some(429) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100 << n)).await;
                    reply = client.get_run(&id).await;
                }
                (id, reply)
            });
        }
        while let Some(Ok((id, reply))) = tasks.join_next().await {
            got.insert(id, reply);
        }
    }

    let key = p.scenario.inputs.correlation_key.clone();
    let mut runs_per_input: Vec<Vec<String>> = vec![Vec::new(); b.inputs as usize];
    let (webhooks_used, expected_priority) =
        (p.scenario.results.webhooks.is_some(), p.config.priority);
    let mut priority_exposed = false;
    for (id, reply) in &got {
        let req = format!("GET /workflow_runs/{id}");
        if reply.status() != Some(200) {
            p.error_body(reply, &req);
            p.findings.fail(
                "runs.count",
                Case::new("HTTP 200 for a listed run", seen(reply))
                    .batch(batch_id)
                    .run(id)
                    .request(&req),
            );
            continue;
        }
        let Some(body) = reply.body() else { continue };
        crate::checks::version::response(&mut p.findings, v, body, true, &req);
        let Some(run) = shapes::run_object(v, body) else {
            continue;
        };
        let run = Value::Object(run.clone());

        // Which input is this? By the correlation key the harness put in its metadata.
        let tag = key
            .as_deref()
            .and_then(|k| run.get("metadata")?.get(k)?.as_str())
            .and_then(|t| t.split_once(':'))
            .and_then(|(bi, ii)| Some((bi.parse::<u64>().ok()?, ii.parse::<u64>().ok()?)));
        let other_batch = match tag {
            Some((bi, _)) => bi != b.index,
            None => run
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
            .request(&list_req)
        });
        if other_batch {
            continue;
        }
        let listed_batch = summary_batch.get(id).cloned().unwrap_or(Value::Null);
        let on_get = run.get("batchId").cloned().unwrap_or(Value::Null);
        for (seen_batch, request) in [(&on_get, &req), (&listed_batch, &list_req)] {
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
        if let Some(prio) = run.get("priority").filter(|p| !p.is_null()) {
            priority_exposed = true;
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
                    .request(&req)
                },
            );
        }
        let status = run
            .get("status")
            .and_then(Value::as_str)
            .and_then(RunStatus::parse);
        match status {
            Some(RunStatus::Processed) => {
                let problem = outputs_problem(v.is_legacy(), &run);
                p.findings.check("runs.outputs", problem.is_none(), || {
                    Case::new("outputs of the run", problem.clone().unwrap_or_default())
                        .batch(batch_id)
                        .run(id)
                        .request(&req)
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
                        .request(&req)
                    });
            }
            _ => {}
        }

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
                .request(&list_req),
            );
            continue;
        };
        runs_per_input[input as usize].push(id.clone());

        // Metadata, deep and exact (key order aside), and agreement with the webhook.
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
                        .request(&req)
                },
            );
        }
        let webhook_status = l.input(seq).and_then(|r| r.webhook()).map(|s| s.status);
        drop(l);
        if let (true, Some(w), Some(g)) = (webhooks_used, webhook_status, status)
            && g.is_terminal()
        {
            p.findings.check("webhook.agrees_with_get", w == g, || {
                Case::new(
                    format!("{} (as the terminal webhook said)", w.as_str()),
                    format!("{} on Get", g.as_str()),
                )
                .batch(batch_id)
                .run(id)
                .request(&req)
            });
        }
    }
    if !priority_exposed {
        p.findings.note(
            "runs.priority",
            "the target's runs have no priority field; runs.priority_order checks it by behaviour",
        );
    }
    for (i, runs) in runs_per_input.iter().enumerate() {
        p.findings.check("runs.count", runs.len() == 1, || {
            Case::new(
                format!("one run for input {i}"),
                if runs.is_empty() {
                    "no run".to_string()
                } else {
                    format!("{} runs: {}", runs.len(), runs.join(", "))
                },
            )
            .batch(batch_id)
            .request(&list_req)
        });
    }

    let complete: HashSet<String> = listed.into_iter().collect();
    super::list::pagination(p, batch_id, &complete).await;
}

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
    let overtook: Vec<&Value> = runs
        .iter()
        .filter(|r| {
            r.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| pending.contains(id))
        })
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
