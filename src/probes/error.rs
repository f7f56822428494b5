//! The active part of the `error.*` rules: requests the probe phase sends and what
//! their answers show.

use super::Probe;
use crate::checks::error::*;

pub async fn probe(p: &mut Probe<'_>) {
    // An unknown run: a 404 whose body must have the version's shape.
    let path = "/workflow_runs/workflow_run_batchproof_does_not_exist";
    let reply = p.send(p.client, "GET", path, None).await;
    if !p.unread("error.shape", &reply, true) {
        p.error_body(&reply, &format!("GET {path}"));
    }

    // Provoke throttling, if asked: a burst of list requests, concurrently.
    let n = p.config.throttle_probe;
    if n == 0 {
        if p.findings.checked("error.throttle_retryable") == 0 {
            p.findings.note(
            "error.throttle_retryable",
                "no 429 was seen; set `checks.throttle_probe: N` to send a burst of N list requests",
            );
        }
        return;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let client = p.client.clone();
        tasks.spawn(async move {
            client
                .get("/workflow_runs", &[("maxPageSize", "1".into())])
                .await
        });
    }
    let mut throttled = 0;
    while let Some(r) = tasks.join_next().await {
        if let Ok(reply) = r
            && reply.status() == Some(429)
        {
            throttled += 1;
            let v = p.version();
            throttle_body(&mut p.findings, v, &reply, "GET /workflow_runs (burst)");
        }
    }
    if throttled == 0 && p.findings.checked("error.throttle_retryable") == 0 {
        p.findings.note(
            "error.throttle_retryable",
            format!("a burst of {n} list requests drew no 429"),
        );
    }
}
