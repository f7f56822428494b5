//! The active part of the `version.*` rules: requests the probe phase sends and what
//! their answers show.

use super::{Probe, seen};
use crate::api::ApiVersion;
use crate::checks::Case;
use crate::checks::version::*;
use crate::scenario::MissingVersionExpectation;

pub async fn probe(p: &mut Probe<'_>) {
    let path = "/workflow_runs";
    let missing = p.client.with_version_header(None);
    let reply = p.send(&missing, "GET", path, None).await;
    let req = format!("GET {path} (no x-extend-api-version)");
    match p.config.missing_version {
        MissingVersionExpectation::Reject => {
            // Which version's error shape a versionless request gets is not documented:
            // not an error.shape case.
            p.findings
                .check("version.missing", reply.status() == Some(400), || {
                    Case::new("HTTP 400", seen(&reply)).request(req.clone())
                });
        }
        MissingVersionExpectation::Legacy => {
            let ok = reply.status() == Some(200)
                && reply
                    .body()
                    .is_some_and(|b| list_problem(ApiVersion::V2024_12_23, b).is_none());
            p.findings.check("version.missing", ok, || {
                Case::new(
                    "HTTP 200 in the legacy shape {success: true, workflowRuns: […]}",
                    seen(&reply),
                )
                .request(req.clone())
            });
        }
    }

    let unknown = p.client.with_version_header(Some("1999-01-01"));
    let reply = p.send(&unknown, "GET", path, None).await;
    let req = format!("GET {path} (x-extend-api-version: 1999-01-01)");
    // The error shape of an unknown version is anyone's guess: not an error.shape case.
    p.expect_refusal("version.unknown", &reply, &req);

    // The same on the endpoint that creates runs: a batch without a version, or with an
    // unknown one, must not be served (and, if it is, its runs are kept out of the load).
    let batch = "/workflow_runs/batch";
    let body = p.batch_body("noversion", 1);
    if p.config.missing_version == MissingVersionExpectation::Reject {
        let reply = p.send(&missing, "POST", batch, Some(&body)).await;
        p.created_batch(&reply);
        let req = format!("POST {batch} (no x-extend-api-version)");
        p.findings
            .check("version.missing", reply.status() == Some(400), || {
                Case::new("HTTP 400", seen(&reply)).request(req.clone())
            });
    }
    let body = p.batch_body("unknownversion", 1);
    let reply = p.send(&unknown, "POST", batch, Some(&body)).await;
    p.created_batch(&reply);
    let req = format!("POST {batch} (x-extend-api-version: 1999-01-01)");
    p.expect_refusal("version.unknown", &reply, &req);
}
