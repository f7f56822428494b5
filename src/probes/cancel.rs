//! The active part of `runs.cancel`: a small probe batch, sent while the queue is busy
//! (right after the 1,000-input probe batch), then a cancel of one of its runs that has
//! not finished, then Get until it settles. Its `workflow_run.cancelled` event, on a
//! 2026-02-09 endpoint, is where `webhook.cancelled_2026_only`'s 2025 counterpart shows.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Probe, seen};
use crate::api::{RunStatus, shapes};
use crate::checks::Case;

/// Inputs of the cancel probe's batch; `probe_runs` counts them.
pub const INPUTS: usize = 2;

const RULE: &str = "runs.cancel";

fn status_of(p: &Probe<'_>, body: Option<&Value>) -> Option<RunStatus> {
    let run = shapes::run_object(p.version(), body?)?;
    RunStatus::parse(run.get("status")?.as_str()?)
}

/// Sends the batch and cancels one of its open runs; returns the batch and the run when
/// the cancel was answered as it should be, for `settles_cancelled` to follow up later.
pub async fn start(p: &mut Probe<'_>) -> Option<(String, String)> {
    if !crate::checks::rule(RULE).is_some_and(|r| r.applies_to(p.version())) {
        return None;
    }
    let body = p.batch_body("cancel", INPUTS);
    let path = crate::checks::batch::PATH;
    let reply = p.send(p.client, "POST", path, Some(&body)).await;
    let Some(batch_id) = p.created_batch(&reply) else {
        p.findings.note(
            RULE,
            format!(
                "the cancel probe's batch was not accepted: {}",
                seen(&reply)
            ),
        );
        return None;
    };
    let (runs, _) = p.list_all(&batch_id, 1000).await;
    let open = runs.iter().find_map(|r| {
        let status = r.get("status")?.as_str()?;
        matches!(status, "PENDING" | "PROCESSING")
            .then(|| r.get("id")?.as_str().map(str::to_string))
            .flatten()
    });
    let Some(run_id) = open else {
        p.findings.note(
            RULE,
            "every run of the cancel probe's batch had finished before it could be cancelled",
        );
        return None;
    };
    let path = format!("/workflow_runs/{run_id}/cancel");
    let req = format!("POST {path}");
    let reply = p.send(p.client, "POST", &path, Some(&json!({}))).await;
    if p.unread(RULE, &reply, false) {
        return None;
    }
    p.error_body(&reply, &req);
    let answered = status_of(p, reply.body()).filter(|_| reply.status() == Some(200));
    let ok = matches!(answered, Some(RunStatus::Cancelling | RunStatus::Cancelled));
    p.findings.check(RULE, ok, || {
        Case::new("HTTP 200, the run CANCELLING or CANCELLED", seen(&reply))
            .batch(&batch_id)
            .run(&run_id)
            .request(&req)
    });
    ok.then_some((batch_id, run_id))
}

/// Gets the cancelled run until it is no longer CANCELLING (bounded by the results
/// deadline); it must then be CANCELLED.
pub async fn settles_cancelled(p: &mut Probe<'_>, batch_id: &str, run_id: &str) {
    let path = format!("/workflow_runs/{run_id}");
    let until =
        tokio::time::Instant::now() + p.scenario.results.deadline.max(Duration::from_secs(10));
    loop {
        let reply = p.send(p.client, "GET", &path, None).await;
        if p.unread(RULE, &reply, true) {
            return;
        }
        let status = status_of(p, reply.body()).filter(|_| reply.status() == Some(200));
        let late = tokio::time::Instant::now() >= until;
        if status != Some(RunStatus::Cancelling) || late {
            p.findings
                .check(RULE, status == Some(RunStatus::Cancelled), || {
                    Case::new(
                        "CANCELLED after the cancel",
                        format!(
                            "{}{}",
                            seen(&reply),
                            if late {
                                " (still, at the results deadline)"
                            } else {
                                ""
                            }
                        ),
                    )
                    .batch(batch_id)
                    .run(run_id)
                    .request(format!("GET {path}"))
                });
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
