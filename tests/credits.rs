//! Every credits figure says where it comes from: the mock's simulated price is never
//! read as a cost, a plan priced from it for a paid run warns, and a target that reports
//! no usage gets "not reported", not silence.

mod common;
use common::output_text;

use std::process::Command;

use batchproof::report::{CreditsSource, Format};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_batchproof"));
    c.env("EXTEND_API_KEY", batchproof::mock::profile::DEFAULT_TOKEN)
        .env_remove("TARGET_URL");
    c
}

const SMALL: &str = "name: priced\ntarget: {mock: {time_scale: 200}}\nload:\n  phases: [{hold: 1s, rate: 3}]\n  inputs_per_batch: 5\nresults: {via: polling, polling: {interval: 100ms}, deadline: 30s}\n";

#[test]
fn mock_credits_say_they_are_simulated_everywhere_and_a_paid_plan_priced_on_them_warns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("priced.yaml"), SMALL).unwrap();
    let o = bin()
        .args(["run", "priced.yaml", "--progress", "none", "--out", "out"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("SIMULATED by the mock"), "{text}");
    let folder = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let report = batchproof::report::json::read(&folder.join("report.json")).unwrap();
    assert!(
        matches!(
            report.runs.credits_source,
            Some(CreditsSource::Simulated { .. })
        ),
        "{:?}",
        report.runs.credits_source
    );
    let md = batchproof::report::markdown::Markdown
        .render(&report)
        .unwrap();
    assert!(md.contains("SIMULATED"), "{md}");
    let html = batchproof::report::html::Html.render(&report).unwrap();
    assert!(
        html.contains("credits (simulated by the mock)"),
        "the HTML card"
    );

    // The same report prices a plan against a URL: loudly simulated.
    std::fs::write(
        dir.path().join("paid.yaml"),
        "name: paid\ntarget: {url: 'https://api.example.test'}\nbudget: {max_runs: 1000}\nload:\n  phases: [{hold: 10s, rate: 1}]\n  inputs_per_batch: 50\nresults: {via: polling, deadline: 1h}\n",
    )
    .unwrap();
    let o = bin()
        .args(["plan", "paid.yaml", "--from"])
        .arg(folder.join("report.json"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("WARNING") && text.contains("SIMULATED"),
        "a paid plan priced on the mock's credits must say so: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_targets_usage_is_its_own_and_no_usage_is_not_reported() {
    let mock = common::start(common::fast_profile()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("url.yaml"),
        format!(
            "name: url\ntarget: {{url: '{}'}}\nbudget: {{max_runs: 100}}\nload:\n  phases: [{{hold: 1s, rate: 3}}]\n  inputs_per_batch: 5\nresults: {{via: polling, polling: {{interval: 100ms}}, deadline: 30s}}\n",
            mock.url()
        ),
    )
    .unwrap();
    let mut c = bin();
    c.args(["run", "url.yaml", "--progress", "none", "--out", "out"])
        .current_dir(dir.path());
    let o = tokio::task::spawn_blocking(move || c.output())
        .await
        .unwrap()
        .unwrap();
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("as the target's usage reports them"),
        "{text}"
    );
    mock.shutdown().await;

    // Runs that carry no usage: said, not left out.
    let mut r = batchproof::report::json::read(
        &std::fs::read_dir(dir.path().join("out"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join("report.json"),
    )
    .unwrap();
    r.runs.credits = 0.0;
    r.runs.credited = 0;
    r.runs.credits_source = None;
    let console = batchproof::report::console::Console.render(&r).unwrap();
    assert!(
        console.contains("credits not reported by the target"),
        "{console}"
    );
}
