//! Against a paid API nothing is sent by surprise: `plan` and `run --dry-run` send
//! nothing, the cost guard refuses a run over (or without) a budget before its first
//! request, all against a URL target that counts every request it receives; and the
//! client-side limits keep a run under its plan's rate limits.

mod common;

use common::output_text;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A target that answers every request 503 and counts them.
async fn counting_target() -> (String, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "counted")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

fn scenario(dir: &std::path::Path, url: &str, budget: &str) -> std::path::PathBuf {
    let path = dir.join("paid.yaml");
    std::fs::write(
        &path,
        format!(
            "name: paid\ntarget: {{url: '{url}'}}\n{budget}load:\n  phases: [{{hold: 3s, rate: 2}}]\n  inputs_per_batch: 500\nresults:\n  via: polling\n  deadline: 2s\n"
        ),
    )
    .unwrap();
    path
}

fn batchproof(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(args)
        .current_dir(dir)
        .env("EXTEND_API_KEY", "sk_test_counted")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_dry_run_and_the_cost_guard_send_nothing() {
    let (url, count) = counting_target().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = scenario(d, &url, "");
    let s = s.to_str().unwrap();

    let o = batchproof(&["plan", s], d);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let out = output_text(&o);
    // 3 s at 2 batches/s: 6 batches of 500.
    assert!(
        out.contains("3000 runs") && out.contains("nothing has been sent"),
        "{out}"
    );
    assert!(out.contains("will refuse this URL target"), "{out}");

    let o = batchproof(&["run", s, "--dry-run"], d);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    assert!(output_text(&o).contains("6 batches"), "{}", output_text(&o));

    let o = batchproof(&["run", s, "--out", "reports"], d);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    let out = output_text(&o);
    assert!(
        out.contains("refusing to start")
            && out.contains("up to 3000 runs")
            && out.contains("no budget"),
        "{out}"
    );

    let o = batchproof(&["run", s, "--max-runs", "2999"], d);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("over its budget of 2999"),
        "{}",
        output_text(&o)
    );

    let s2 = scenario(d, &url, "budget: {max_runs: 1000}\n");
    let o = batchproof(&["run", s2.to_str().unwrap()], d);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("over its budget of 1000"),
        "{}",
        output_text(&o)
    );

    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "nothing may reach the target"
    );
    assert!(
        !d.join("reports").exists(),
        "a refused run writes no report"
    );

    // The counter counts: a run within its budget does reach the target.
    let o = batchproof(&["run", s, "--max-runs", "3000", "--progress", "none"], d);
    assert_ne!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(count.load(Ordering::SeqCst) > 0, "{}", output_text(&o));
}

fn paced_scenario(dir: &std::path::Path, limits: &str) -> batchproof::scenario::Scenario {
    std::fs::write(
        dir.join("limited.yaml"),
        "time_scale: 1\nlimits: {get_rps: 10}\nprocessing:\n  workers: 1000\n  duration: {dist: fixed, value: 50ms}\n",
    )
    .unwrap();
    let path = dir.join("paced.yaml");
    std::fs::write(
        &path,
        format!(
            "name: paced\ntarget: {{mock: {{profile: limited.yaml}}}}\n{limits}load:\n  phases: [{{hold: 1s, rate: 2}}]\n  inputs_per_batch: 20\nresults:\n  via: polling\n  polling: {{interval: 200ms, get_concurrency: 16}}\n  deadline: 30s\n"
        ),
    )
    .unwrap();
    batchproof::scenario::Scenario::load(&path).unwrap()
}

#[tokio::test]
async fn client_side_limits_keep_polling_under_the_plans_get_limit() {
    // The mock allows 10 GETs/s; polling 40 runs wants one Get each, at once.
    let dir = tempfile::tempdir().unwrap();
    let unpaced = paced_scenario(dir.path(), "");
    let (r, _) = common::run_in_process(unpaced, &dir.path().join("a"), None).await;
    assert!(
        r.http.throttles > 0,
        "without client-side limits the Gets burst past the mock's limit"
    );

    let paced = paced_scenario(dir.path(), "limits: {get_rps: 8}\n");
    assert_eq!(paced.limits.get_rps, Some(8.0));
    let (r, _) = common::run_in_process(paced, &dir.path().join("b"), None).await;
    assert_eq!(
        r.http.throttles, 0,
        "paced under the limit, never throttled"
    );
    assert_eq!(r.runs.seen, 40, "every run still seen");
    let gets = r.operations["get"].ok + r.operations["list"].ok;
    assert!(gets >= 40);
}

#[test]
fn a_plan_names_its_published_limits_and_a_bad_rate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.yaml");
    std::fs::write(
        &p,
        "name: s\nlimits: {plan: payg, get_rps: 5}\nload:\n  phases: [{hold: 1s, rate: 1}]\n",
    )
    .unwrap();
    let s = batchproof::scenario::Scenario::load(&p).unwrap();
    assert_eq!(s.limits.run_rps, Some(10.0), "the plan's published limit");
    assert_eq!(s.limits.get_rps, Some(5.0), "overridden");
    assert_eq!(s.limits.files_per_minute, Some(80.0));
    std::fs::write(
        &p,
        "name: s\nlimits: {get_rps: 0}\nload:\n  phases: [{hold: 1s, rate: 1}]\n",
    )
    .unwrap();
    let e = batchproof::scenario::Scenario::load(&p)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("limits.get_rps") && e.contains("positive"),
        "{e}"
    );
}
