//! The HTML report in a real browser: headless Chromium renders a report from a real run;
//! the charts and the rule table must be in the DOM, the page must fetch nothing (its
//! Content-Security-Policy blocks and reports any attempt) and log nothing to the
//! console. A screenshot is saved under the test's output folder. A tampered copy of the
//! report proves the checks can fail.
//!
//! Without Chromium the test fails; `bash scripts/test.sh` leaves it out and counts it as
//! skipped in the summary instead.

mod common;
use common::run_in_process;

use std::path::{Path, PathBuf};
use std::process::Command;

use batchproof::checks::RuleStatus;
use batchproof::mock::Profile;
use batchproof::scenario::{Scenario, Target};

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BATCHPROOF_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
    .find(|p| p.is_file())
}

/// Flags for a quiet, sandbox-free headless run in a container.
fn base_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=3000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// What the browser made of a page: its DOM after scripts ran, and console messages.
struct Rendered {
    dom: String,
    console: Vec<String>,
}

fn render(chrome: &Path, page: &Path, work: &Path) -> Rendered {
    let out = Command::new(chrome)
        .args(base_args(&work.join("profile")))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    Rendered {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
    }
}

/// Problems a rendered report has; empty when it is sound.
fn problems(r: &Rendered, rules: &[String]) -> Vec<String> {
    let mut p = Vec::new();
    if !r.dom.contains("data-rendered=\"ok\"") {
        p.push("the page's script did not run to its end".to_string());
    }
    if let Some(i) = r.dom.find("data-blocked=\"") {
        p.push(format!(
            "the page tried to fetch something: {}",
            &r.dom[i..(i + 20).min(r.dom.len())]
        ));
    }
    for m in &r.console {
        p.push(format!("console: {m}"));
    }
    for id in [
        "latency-submit",
        "latency-e2e",
        "timeline-runs",
        "timeline-inflight",
        "batches-completion",
    ] {
        let at = format!("data-chart=\"{id}\"");
        match r.dom.find(&at) {
            None => p.push(format!("chart `{id}` is missing")),
            Some(i)
                if !r.dom[i..]
                    .trim_start_matches(&at)
                    .trim_start_matches('>')
                    .starts_with("<svg") =>
            {
                p.push(format!("chart `{id}` has no SVG"))
            }
            Some(_) => {}
        }
    }
    if !r.dom.contains("id=\"rule-table\"") {
        p.push("no rule table".into());
    }
    for id in rules {
        if !r.dom.contains(&format!("data-rule=\"{id}\"")) {
            p.push(format!("rule `{id}` is not in the table"));
        }
    }
    p
}

#[tokio::test]
async fn the_html_report_renders_in_headless_chromium_offline_and_cleanly() {
    let chrome = chromium().expect(
        "no chromium on PATH (set BATCHPROOF_CHROMIUM, or apt-get install chromium); scripts/test.sh counts this test skipped without it",
    );
    // A real run with failed rules, so the table has evidence to show.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("scenarios/conformance.yaml");
    let mut scenario = Scenario::load(&path).unwrap();
    let defect = root.join("mock/defects/webhook_alters_metadata.yaml");
    scenario.target = Target::Mock {
        profile: Box::new(Profile::load(&defect).unwrap()),
        profile_path: Some(defect),
    };
    let work = tempfile::tempdir().unwrap();
    let (report, paths) = run_in_process(scenario, &work.path().join("reports"), None).await;
    let html = paths
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "html"))
        .expect("report.html");
    assert!(report.rules.iter().any(|r| r.status == RuleStatus::Failed));
    let rules: Vec<String> = report.rules.iter().map(|r| r.id.clone()).collect();

    let rendered = render(&chrome, html, work.path());
    let found = problems(&rendered, &rules);
    assert!(
        found.is_empty(),
        "the report renders with problems: {found:#?}"
    );
    // Failed rules come first, and their evidence is in the page.
    let first = rendered.dom.find("data-rule=\"").unwrap();
    assert!(rendered.dom[first..].starts_with("data-rule=\"webhook.metadata\""));
    assert!(rendered.dom.contains("batchproof_altered"));

    // The checks can fail: a copy that fetches an image and logs to the console.
    let tampered = work.path().join("tampered.html");
    let text = std::fs::read_to_string(html).unwrap().replace(
        "</main>",
        "<img src=\"http://example.invalid/pixel.png\"><script>console.log('hello')</script></main>",
    );
    std::fs::write(&tampered, text).unwrap();
    let bad = problems(&render(&chrome, &tampered, work.path()), &rules);
    assert!(bad.iter().any(|p| p.contains("tried to fetch")), "{bad:?}");
    assert!(bad.iter().any(|p| p.contains("hello")), "{bad:?}");

    // A screenshot for people, under the test's output folder.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let _ = std::fs::remove_file(&png);
    let out = Command::new(&chrome)
        .args(base_args(&work.path().join("profile")))
        .args([
            "--window-size=1280,2400",
            &format!("--screenshot={}", png.display()),
        ])
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
}

/// The planning sections' charts in the DOM, each with its SVG; the forecast's with its
/// band.
fn planning_problems(r: &Rendered, charts: &[&str]) -> Vec<String> {
    let mut p = Vec::new();
    if !r.dom.contains("data-rendered=\"ok\"") {
        p.push("the page's script did not run to its end".to_string());
    }
    if r.dom.contains("data-blocked=\"") {
        p.push("the page tried to fetch something".into());
    }
    p.extend(r.console.iter().map(|m| format!("console: {m}")));
    for id in charts {
        let at = format!("data-chart=\"{id}\"");
        match r.dom.find(&at) {
            None => p.push(format!("chart `{id}` is missing")),
            Some(i) => {
                let end = r.dom[i..].find("</figure>").map_or(r.dom.len(), |e| i + e);
                let chart = &r.dom[i..end];
                if !chart.contains("<svg") {
                    p.push(format!("chart `{id}` has no SVG"));
                }
                if *id == "forecast-curve" && !chart.contains("data-band=") {
                    p.push("the forecast's chart has no band".into());
                }
            }
        }
    }
    p
}

#[tokio::test]
async fn the_forecast_and_knee_sections_render_in_headless_chromium() {
    let chrome = chromium().expect(
        "no chromium on PATH (set BATCHPROOF_CHROMIUM, or apt-get install chromium); scripts/test.sh counts this test skipped without it",
    );
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("small.yaml");
    std::fs::write(
        &path,
        "name: small\ntarget: {mock: {time_scale: 1000}}\nload:\n  model: closed\n  phases: [{hold: 30s, concurrency: 2}]\n  inputs_per_batch: 20\nresults: {via: webhooks, deadline: 30s}\n",
    )
    .unwrap();
    // A forecast from 5 sampled batches of a 2,000-file job.
    let sample = batchproof::run::forecast::sample_scenario(
        Scenario::load(&path).unwrap(),
        Some(2_000),
        batchproof::run::forecast::SampleSize::Batches(5),
    )
    .unwrap();
    let (report, paths) = run_in_process(sample, &work.path().join("reports"), None).await;
    assert!(report.forecast.is_some(), "{:?}", report.forecast_error);
    let html = paths.iter().find(|p| p.ends_with("report.html")).unwrap();
    let found = planning_problems(&render(&chrome, html, work.path()), &["forecast-curve"]);
    assert!(
        found.is_empty(),
        "the forecast renders with problems: {found:#?}"
    );

    // A knee of three short steps against a mock with no limits: every step holds.
    let opts = batchproof::run::RunOptions {
        scenario: path.clone(),
        target: None,
        token_env: "UNUSED".into(),
        out: work.path().join("reports"),
        progress: batchproof::run::ProgressMode::None,
        mock_profile: None,
        shard: None,
        stop: None,
        metrics_listen: None,
        time_scale: None,
    };
    let knee = batchproof::run::knee::KneeOptions {
        start: 2.0,
        ceiling: 8.0,
        step: std::time::Duration::from_secs(1),
        precision: 0.05,
        inputs_per_batch: Some(5),
        rate_limit: true,
        processing: true,
        keep_up: 0.97,
        max_runs: None,
        quiet: std::time::Duration::from_secs(1),
    };
    let (report, paths) =
        batchproof::run::knee::search(Scenario::load(&path).unwrap(), &knee, &opts)
            .await
            .unwrap();
    let k = report.knee.as_ref().unwrap();
    assert_eq!(k.steps.len(), 3, "{k:?}");
    let html = paths.iter().find(|p| p.ends_with("report.html")).unwrap();
    let found = planning_problems(
        &render(&chrome, html, work.path()),
        &["knee-rates", "knee-latency"],
    );
    assert!(
        found.is_empty(),
        "the knee renders with problems: {found:#?}"
    );
}

/// The client grade's HTML (`batchproof grade`): judged by the real rules from
/// observations of a client that breaks two of them, rendered in headless Chromium.
#[test]
fn the_client_grade_renders_in_headless_chromium() {
    use batchproof::grade::observed::{DeliverySeen, Forgery, Observations, RequestSeen, Route};
    let chrome = chromium().expect(
        "no chromium on PATH (set BATCHPROOF_CHROMIUM, or apt-get install chromium); scripts/test.sh counts this test skipped without it",
    );
    let request = |status: u16, inputs: usize| RequestSeen {
        at_ms: 10,
        answered_ms: 10,
        method: "POST".into(),
        path: "/workflow_runs/batch".into(),
        query: String::new(),
        route: Route::Batch,
        version: Some("2026-02-09".into()),
        status,
        retry_after_ms: None,
        adversity: None,
        refusal: None,
        key: inputs as u64,
        inputs: Some(inputs),
        input_keys: vec![],
        page: None,
    };
    let obs = Observations {
        requests: vec![request(400, 1001), request(200, 20)],
        deliveries: vec![DeliverySeen {
            at_ms: 500,
            endpoint_url: "http://127.0.0.1:9/hooks".into(),
            event_id: "forged_unsigned".into(),
            event_type: "workflow_run.completed".into(),
            forgery: Some(Forgery::Unsigned),
            status: Some(200),
            error: None,
            millis: 1,
        }],
        ..Default::default()
    };
    let grade = batchproof::grade::Grade::judge(&obs, &Default::default(), None);
    let work = tempfile::tempdir().unwrap();
    batchproof::grade::report::write_all(&grade, work.path()).unwrap();
    let r = render(&chrome, &work.path().join("grade.html"), work.path());
    assert!(r.console.is_empty(), "console: {:?}", r.console);
    assert!(
        r.dom
            .contains("id=\"verdict\" class=\"failed\" data-verdict=\"failed\""),
        "{}",
        r.dom
    );
    assert_eq!(r.dom.matches("<tr data-rule=").count(), 12, "{}", r.dom);
    for id in ["client.batch_size", "client.webhook_verify"] {
        let row = format!("data-rule=\"{id}\" data-status=\"failed\"");
        assert!(r.dom.contains(&row), "{id} not shown failed: {}", r.dom);
    }
    assert!(r.dom.contains("a batch of 1001 inputs"), "evidence shown");
    assert!(r.dom.contains("data-status=\"not_exercised\""));
    // A tampered copy proves the checks can fail: a passed badge is not a failed one.
    let html = std::fs::read_to_string(work.path().join("grade.html")).unwrap();
    std::fs::write(
        work.path().join("tampered.html"),
        html.replace("data-verdict=\"failed\"", "data-verdict=\"passed\""),
    )
    .unwrap();
    let t = render(&chrome, &work.path().join("tampered.html"), work.path());
    assert!(!t.dom.contains("data-verdict=\"failed\""));
}
