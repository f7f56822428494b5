//! Paging a batch while its runs finish: the list order a client picks decides whether it
//! sees every run. The default order (`updatedAt`, descending) sorts by a field that changes
//! as runs move on, so a run that finishes between two pages jumps ahead of the cursor and
//! is never listed; `sortBy=createdAt` sorts by a field that never changes, so every run is
//! listed exactly once (mock/README.md, "Listing a batch"; docs/contract.md §4).
//!
//! The runs are made to finish between two pages deterministically: the queue is paused
//! while the first half is listed, then resumed until a hundred runs are terminal, then
//! paused again for the second half.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use batchproof::mock::MockServer;
use common::*;
use serde_json::Value;

const RUNS: usize = 1000;
const PAGE: usize = 50;

async fn admin(mock: &MockServer, path: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/_mock/{path}", mock.url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "/_mock/{path}: {}", r.status());
    r.json().await.unwrap()
}

/// Resumes processing until at least `n` runs of the batch are terminal, then pauses it.
async fn let_runs_finish(mock: &MockServer, batch: &str, n: u64) {
    admin(mock, "resume").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let b: Value = reqwest::get(format!("{}/_mock/batches/{batch}", mock.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let by = &b["byStatus"];
        let done: u64 = [
            "PROCESSED",
            "FAILED",
            "NEEDS_REVIEW",
            "REJECTED",
            "CANCELLED",
        ]
        .iter()
        .map(|s| by[s].as_u64().unwrap_or(0))
        .sum();
        if done >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} runs not terminal in 30 s: {b}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    admin(mock, "pause").await;
}

/// Lists a fresh 1,000-run batch page by page (`maxPageSize=50`, tokens URL-encoded, to the
/// last page) with `sort` added to the query; between the first half of the pages and
/// the rest, at least a hundred runs finish. Returns every run listed, in order.
async fn page_while_runs_finish(sort: &str) -> Vec<Value> {
    let mock = start(fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    admin(&mock, "pause").await;
    let batch = api.submit(RUNS, "order").await;
    let mut runs = Vec::new();
    let mut token: Option<String> = None;
    for page in 0.. {
        assert!(page < 4 * RUNS / PAGE, "the page chain does not end");
        if page == RUNS / PAGE / 2 {
            let_runs_finish(&mock, &batch, 100).await;
        }
        let mut path = format!("/workflow_runs?batchId={batch}&maxPageSize={PAGE}{sort}");
        if let Some(t) = &token {
            path.push_str(&format!("&nextPageToken={}", encode_query(t)));
        }
        let r = api.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        runs.extend(r.body["data"].as_array().unwrap().iter().cloned());
        match r.body["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    mock.shutdown().await;
    runs
}

fn ids(runs: &[Value]) -> Vec<&str> {
    runs.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_by_created_at_while_runs_finish_lists_every_run_exactly_once() {
    let runs = page_while_runs_finish("&sortBy=createdAt&sortDir=desc").await;
    let ids = ids(&runs);
    let distinct: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "a run was listed twice");
    assert_eq!(ids.len(), RUNS, "runs were skipped");
    // The runs did change under the cursor: the first half was listed while every run was
    // PENDING, and the second half shows the ones that finished in between.
    let finished = |r: &&Value| !matches!(r["status"].as_str(), Some("PENDING" | "PROCESSING"));
    assert_eq!(runs[..RUNS / 2].iter().filter(finished).count(), 0);
    assert!(
        runs[RUNS / 2..].iter().filter(finished).count() >= 100,
        "the runs finished between the pages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_by_the_default_order_while_runs_finish_skips_the_runs_that_finished() {
    let runs = page_while_runs_finish("").await;
    let distinct: HashSet<&str> = ids(&runs).into_iter().collect();
    // The runs that finished while the first half was read moved ahead of the cursor
    // (their updatedAt is now the newest) and are never listed. They are the oldest runs,
    // processed first, so at least the hundred waited for are missing.
    assert!(
        distinct.len() <= RUNS - 100,
        "the default order listed {} of {RUNS} runs",
        distinct.len()
    );
}
