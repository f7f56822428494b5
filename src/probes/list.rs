//! The active part of the `list.*` rules: requests the probe phase sends and what
//! their answers show.

use super::{Probe, seen};
use crate::api::client::{Client, Reply};
use crate::api::shapes;
use crate::checks::Case;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// One walk through a batch's pages.
pub struct Walk {
    pub runs: Vec<Value>,
    /// Run ids per page, in order.
    pub pages: Vec<Vec<String>>,
    /// A page could not be read (throttled, 5xx, unreachable after the retries): the walk
    /// is not the whole listing, and nothing may be judged from what is missing.
    pub unread: bool,
}

/// Lists every run of `batch_id` at `page_size`, judging each page's shape and size and
/// whether the chain ends within `expected_runs / page_size + 2` pages.
pub async fn walk(p: &mut Probe<'_>, batch_id: &str, page_size: u32, expected_runs: u64) -> Walk {
    let v = p.version();
    let max_pages = expected_runs / u64::from(page_size) + 2;
    let mut out = Walk {
        runs: Vec::new(),
        pages: Vec::new(),
        unread: false,
    };
    let mut token: Option<String> = None;
    let mut tokens = HashSet::new();
    let req = format!("GET /workflow_runs?batchId={batch_id}&maxPageSize={page_size}");
    loop {
        let reply = p.list_page(batch_id, page_size, token.as_deref()).await;
        if reply.status() != Some(200) {
            out.unread = super::unreadable(&reply, true).is_some();
            not_a_page(p, "list.pagination", &reply, batch_id, req);
            return out;
        }
        let Some(body) = reply.body() else {
            return out;
        };
        crate::checks::version::response(&mut p.findings, v, body, false, &req);
        let Ok((page, next)) = shapes::list_page(v, body) else {
            return out;
        };
        p.findings
            .check("list.page_size", page.len() <= page_size as usize, || {
                Case::new(
                    format!("at most {page_size} runs"),
                    format!("{} runs on page {}", page.len(), out.pages.len() + 1),
                )
                .batch(batch_id)
                .request(&req)
            });
        out.pages.push(
            page.iter()
                .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
                .collect(),
        );
        out.runs.extend(page);
        match next {
            None => {
                p.findings.pass("list.token_chain_ends");
                return out;
            }
            Some(t) => {
                let repeated = !tokens.insert(t.clone());
                if repeated || out.pages.len() as u64 >= max_pages {
                    p.findings.fail(
                        "list.token_chain_ends",
                        Case::new(
                            format!("no nextPageToken after at most {max_pages} pages"),
                            if repeated {
                                format!("token `{t}` again after {} pages", out.pages.len())
                            } else {
                                format!("still a nextPageToken after {} pages", out.pages.len())
                            },
                        )
                        .batch(batch_id)
                        .request(&req),
                    );
                    return out;
                }
                token = Some(t);
            }
        }
    }
}

/// Small pages must be disjoint and add up to `complete` (the ids from one big page).
pub async fn pagination(p: &mut Probe<'_>, batch_id: &str, complete: &HashSet<String>) {
    let size = p.config.page_size;
    let walk = walk(p, batch_id, size, complete.len() as u64).await;
    if walk.unread {
        return;
    }
    let mut seen_ids = HashSet::new();
    let mut repeated = Vec::new();
    for (n, page) in walk.pages.iter().enumerate() {
        for id in page {
            if !seen_ids.insert(id.clone()) {
                repeated.push(format!("{id} (again on page {})", n + 1));
            }
        }
    }
    let missing: Vec<&String> = complete.difference(&seen_ids).take(5).collect();
    let ok = repeated.is_empty() && missing.is_empty();
    p.findings.check("list.pagination", ok, || {
        Case::new(
            format!("{} distinct runs over pages of {size}", complete.len()),
            format!(
                "{} pages; repeated: {:?}; missing from the pages: {:?}",
                walk.pages.len(),
                repeated.iter().take(5).collect::<Vec<_>>(),
                missing
            ),
        )
        .batch(batch_id)
        .request(format!(
            "GET /workflow_runs?batchId={batch_id}&maxPageSize={size} (all pages)"
        ))
    });
}

pub async fn probe(p: &mut Probe<'_>) {
    for size in ["0", "1001"] {
        let path = format!("/workflow_runs?maxPageSize={size}");
        let reply = p.send(p.client, "GET", &path, None).await;
        let req = format!("GET {path}");
        if p.unread("list.page_size_range", &reply, true) {
            continue;
        }
        p.error_body(&reply, &req);
        p.expect_refusal("list.page_size_range", &reply, &req);
    }
}

/// `list.defaults`: one page of `batch_id` (over 10 runs) with no maxPageSize, sortBy or
/// sortDir: exactly 10 runs, with a nextPageToken, in non-increasing updatedAt.
///
/// A batch's runs are often created and updated in the same order, and then a listing by
/// creation passes for one by update. So first the orders are made to differ: the last run
/// of a first default page has its metadata updated (`POST /workflow_runs/{id}`, which
/// merges), which makes it the most recently updated run without changing when it was
/// created. The page that follows must then show it first, or be full of runs updated
/// after it.
pub async fn defaults(p: &mut Probe<'_>, batch_id: &str) {
    let rule = "list.defaults";
    let path = format!("/workflow_runs?batchId={batch_id}");
    let req = format!("GET {path}");
    let touched = touch_last(p, &path).await;
    let reply = p.send(p.client, "GET", &path, None).await;
    if p.unread(rule, &reply, true) {
        return;
    }
    p.error_body(&reply, &req);
    let page = reply
        .body()
        .filter(|_| reply.status() == Some(200))
        .and_then(|b| shapes::list_page(p.version(), b).ok());
    let Some((runs, next)) = page else {
        p.findings.fail(
            rule,
            Case::new("HTTP 200, a page of runs", seen(&reply))
                .batch(batch_id)
                .request(req),
        );
        return;
    };
    let updated: Vec<Option<chrono::DateTime<chrono::FixedOffset>>> = runs
        .iter()
        .map(|r| chrono::DateTime::parse_from_rfc3339(r.get("updatedAt")?.as_str()?).ok())
        .collect();
    // The touched run leads the page, unless every run before it was updated later still.
    let touched_problem = touched.as_ref().and_then(|(id, at)| {
        let pos = runs.iter().position(|r| id_of(r) == Some(id.as_str()));
        let later = |u: &Option<chrono::DateTime<chrono::FixedOffset>>| u.is_some_and(|u| u >= *at);
        match pos {
            Some(i) if updated[..i].iter().all(later) => None,
            None if runs.len() == 10 && updated.iter().all(later) => None,
            Some(i) => Some(format!(
                "run {id}, updated last (its metadata, at {at}), at position {} of the page: the runs are not in updatedAt order (by creation?)",
                i + 1
            )),
            None => Some(format!(
                "run {id}, updated last (its metadata, at {at}), is not on the first page: the runs are not sorted by updatedAt (by creation?)"
            )),
        }
    });
    let out_of_order = updated
        .windows(2)
        .position(|w| !matches!(w, [Some(a), Some(b)] if a >= b));
    let problem = if let Some(t) = touched_problem {
        Some(t)
    } else if runs.len() != 10 || next.is_none() {
        Some(format!(
            "{} runs{}",
            runs.len(),
            if next.is_none() {
                " and no nextPageToken"
            } else {
                ""
            }
        ))
    } else {
        out_of_order.map(|i| {
            format!(
                "updatedAt {} then {} (runs {} and {})",
                runs[i].get("updatedAt").unwrap_or(&Value::Null),
                runs[i + 1].get("updatedAt").unwrap_or(&Value::Null),
                i + 1,
                i + 2
            )
        })
    };
    p.findings.check(rule, problem.is_none(), || {
        Case::new(
            "10 runs and a nextPageToken, most recently updated first",
            problem.clone().unwrap_or_default(),
        )
        .batch(batch_id)
        .request(req.clone())
    });
}

/// Updates the metadata of the last run of `path`'s first page; returns its id and the
/// updatedAt the update answered with. None when the page or the update could not be had
/// (the rule is then judged on order alone, as before).
async fn touch_last(
    p: &mut Probe<'_>,
    path: &str,
) -> Option<(String, chrono::DateTime<chrono::FixedOffset>)> {
    let reply = p.send(p.client, "GET", path, None).await;
    let (runs, _) = reply
        .body()
        .filter(|_| reply.status() == Some(200))
        .and_then(|b| shapes::list_page(p.version(), b).ok())?;
    if runs.len() < 2 {
        return None;
    }
    let id = id_of(runs.last()?)?.to_string();
    let body = serde_json::json!({"metadata": {"bp_list_defaults": "updated last"}});
    let update = format!("/workflow_runs/{id}");
    let reply = p.send(p.client, "POST", &update, Some(&body)).await;
    let run = reply
        .body()
        .filter(|_| reply.status() == Some(200))
        .and_then(|b| shapes::run_object(p.version(), b))?;
    let at = chrono::DateTime::parse_from_rfc3339(run.get("updatedAt")?.as_str()?).ok()?;
    Some((id, at))
}

/// A listing answered with something other than a page fails `rule`; its body is judged
/// as an error body.
fn not_a_page(p: &mut Probe<'_>, rule: &'static str, reply: &Reply, batch_id: &str, req: String) {
    if p.unread(rule, reply, true) {
        return;
    }
    p.error_body(reply, &req);
    p.findings.fail(
        rule,
        Case::new("HTTP 200 for every page", seen(reply))
            .batch(batch_id)
            .request(req),
    );
}

/// A workflow id no target has: a listing filtered by it must hold none of a batch's runs.
const ABSENT_WORKFLOW: &str = "workflow_batchproof_absent_0000";

/// Every run a listing of `batch_id` filtered by `filter` shows, over pages of 100 (at
/// most `max_pages`), or the reply that was not a page.
async fn filtered(
    p: &mut Probe<'_>,
    batch_id: &str,
    filter: (&str, &str),
    max_pages: u64,
) -> Result<Vec<Value>, Reply> {
    let mut runs = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..max_pages {
        let mut q = Client::batch_listing(batch_id, 100, token.as_deref());
        q.push((filter.0, filter.1.to_string()));
        let reply = p.list(&q).await;
        let page = reply
            .body()
            .filter(|_| reply.status() == Some(200))
            .and_then(|b| shapes::list_page(p.version(), b).ok());
        let Some((page, next)) = page else {
            return Err(reply);
        };
        runs.extend(page);
        match next {
            Some(t) if Some(&t) != token.as_ref() => token = Some(t),
            _ => return Ok(runs),
        }
    }
    Ok(runs)
}

fn id_of(r: &Value) -> Option<&str> {
    r.get("id").and_then(Value::as_str)
}

/// The workflow a listed run names: `workflow.id` (2025 on) or `workflowId` (2024).
fn workflow_of(r: &Value) -> Option<&str> {
    r.get("workflow")
        .and_then(|w| w.get("id"))
        .or_else(|| r.get("workflowId"))
        .and_then(Value::as_str)
}

/// `list.status_filter` and `list.workflow_filter` on a batch whose runs `listed` were
/// just read whole.
pub async fn filters(p: &mut Probe<'_>, batch_id: &str, listed: &[Value]) {
    let max_pages = listed.len() as u64 / 100 + 3;
    status_filter(p, batch_id, listed, max_pages).await;
    workflow_filter(p, batch_id, listed, max_pages).await;
}

async fn status_filter(p: &mut Probe<'_>, batch_id: &str, listed: &[Value], max_pages: u64) {
    let rule = "list.status_filter";
    // The settled status most of the batch's runs are in: none of them can leave it, so
    // the filtered listing must hold every one.
    let mut settled: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in listed {
        if let (Some(id), Some(s)) = (id_of(r), r.get("status").and_then(Value::as_str))
            && ["PROCESSED", "FAILED", "REJECTED", "CANCELLED"].contains(&s)
        {
            settled.entry(s).or_default().push(id);
        }
    }
    let Some((status, ids)) = settled.into_iter().max_by_key(|(_, ids)| ids.len()) else {
        p.findings.note(
            rule,
            "no run of the audited batch had settled (PROCESSED, FAILED, REJECTED or CANCELLED) to filter by",
        );
        return;
    };
    let req = format!(
        "GET /workflow_runs?batchId={batch_id}&status={status}&maxPageSize=100 (all pages)"
    );
    let runs = match filtered(p, batch_id, ("status", status), max_pages).await {
        Ok(runs) => runs,
        Err(reply) => return not_a_page(p, rule, &reply, batch_id, req),
    };
    let other: Vec<String> = runs
        .iter()
        .filter(|r| r.get("status").and_then(Value::as_str) != Some(status))
        .take(5)
        .map(|r| {
            format!(
                "{} {}",
                id_of(r).unwrap_or("?"),
                r.get("status").unwrap_or(&Value::Null)
            )
        })
        .collect();
    let got: HashSet<&str> = runs.iter().filter_map(id_of).collect();
    let missing: Vec<&str> = ids
        .iter()
        .filter(|id| !got.contains(*id))
        .take(5)
        .copied()
        .collect();
    p.findings
        .check(rule, other.is_empty() && missing.is_empty(), || {
            Case::new(
                format!("only {status} runs, the {} settled in it among them", ids.len()),
                format!(
                    "{} runs; in another status: {other:?}; settled {status} but missing: {missing:?}",
                    runs.len()
                ),
            )
            .batch(batch_id)
            .request(req.clone())
        });
}

async fn workflow_filter(p: &mut Probe<'_>, batch_id: &str, listed: &[Value], max_pages: u64) {
    let rule = "list.workflow_filter";
    let workflow = p.scenario.workflow.id.clone();
    let req = format!(
        "GET /workflow_runs?batchId={batch_id}&workflowId={workflow}&maxPageSize=100 (all pages)"
    );
    match filtered(p, batch_id, ("workflowId", &workflow), max_pages).await {
        Ok(runs) => {
            let got: HashSet<&str> = runs.iter().filter_map(id_of).collect();
            let missing: Vec<&str> = listed
                .iter()
                .filter_map(id_of)
                .filter(|id| !got.contains(id))
                .take(5)
                .collect();
            let other: Vec<String> = runs
                .iter()
                .filter(|r| workflow_of(r).is_some_and(|w| w != workflow))
                .take(5)
                .map(|r| {
                    format!(
                        "{} of {}",
                        id_of(r).unwrap_or("?"),
                        workflow_of(r).unwrap_or("?")
                    )
                })
                .collect();
            p.findings
                .check(rule, missing.is_empty() && other.is_empty(), || {
                    Case::new(
                        format!(
                            "the batch's {} runs, each of workflow {workflow}",
                            listed.len()
                        ),
                        format!(
                            "{} runs; missing: {missing:?}; of another workflow: {other:?}",
                            runs.len()
                        ),
                    )
                    .batch(batch_id)
                    .request(req.clone())
                });
        }
        Err(reply) => not_a_page(p, rule, &reply, batch_id, req),
    }
    // A workflow that does not exist: refused, or no run at all.
    let req = format!("GET /workflow_runs?batchId={batch_id}&workflowId={ABSENT_WORKFLOW}");
    match filtered(p, batch_id, ("workflowId", ABSENT_WORKFLOW), 1).await {
        Ok(runs) => p.findings.check(rule, runs.is_empty(), || {
            Case::new(
                "no run (or a 4xx refusal)",
                format!(
                    "{} runs, e.g. {}",
                    runs.len(),
                    runs.first().and_then(id_of).unwrap_or("?")
                ),
            )
            .batch(batch_id)
            .request(req.clone())
        }),
        Err(reply) if p.unread(rule, &reply, true) => {}
        Err(reply) => {
            let refused = reply.status().is_some_and(|s| (400..500).contains(&s));
            if refused {
                p.error_body(&reply, &req);
            }
            p.findings.check(rule, refused, || {
                Case::new("no run (or a 4xx refusal)", seen(&reply))
                    .batch(batch_id)
                    .request(req.clone())
            });
        }
    }
}
