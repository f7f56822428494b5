//! The active part of the `auth.*` rules: requests the probe phase sends and what
//! their answers show.

use super::{Probe, seen};
use crate::checks::Case;

pub async fn probe(p: &mut Probe<'_>) {
    let body = p.batch_body("auth", 1);
    for (rule, token, what) in [
        ("auth.missing_token", None, "no Authorization header"),
        (
            "auth.invalid_token",
            Some("sk_batchproof_not_a_key"),
            "Authorization: Bearer sk_batchproof_not_a_key",
        ),
    ] {
        let client = p.client.with_token(token);
        for (method, path, body) in [
            ("GET", "/workflow_runs", None),
            ("POST", "/workflow_runs/batch", Some(&body)),
        ] {
            let reply = p.send(&client, method, path, body).await;
            if reply.status() == Some(200) && body.is_some() {
                p.created_batch(&reply);
            }
            let req = format!("{method} {path} ({what})");
            p.error_body(&reply, &req);
            p.findings.check(rule, reply.status() == Some(401), || {
                Case::new("HTTP 401", seen(&reply)).request(req.clone())
            });
        }
    }
}
