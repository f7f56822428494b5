//! Reports people read and compare: `report` re-renders a saved run in every format,
//! `merge` adds shard reports losslessly, `compare` flags a slowed target as a regression
//! and a re-run of the same one as not.

mod common;
use common::run_in_process;

use std::path::{Path, PathBuf};
use std::process::Command;

use batchproof::metrics::Latency;
use batchproof::mock::Profile;
use batchproof::report::{Report, Shard};
use batchproof::scenario::{Scenario, Target};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// 30 batches of 10 inputs at 15/s on the embedded mock, results both ways.
const SCENARIO: &str = r#"
name: reports-test
target: {mock: {profile: ../mock/default.yaml}}
load:
  model: open
  phases: [{hold: 2s, rate: 15}]
  inputs_per_batch: 10
  seed: 11
results:
  via: both
  polling: {interval: 200ms}
  deadline: 20s
thresholds:
  - "runs.missing == 0"
  - "submit.p99 < 10s"
project:
  files: 5000
"#;

async fn run(profile: Option<&str>, shard: Option<Shard>, out: &Path) -> (Report, PathBuf) {
    let path = root().join("scenarios/reports-test.yaml");
    let mut scenario = Scenario::from_text(&path, SCENARIO).unwrap_or_else(|e| panic!("{e}"));
    if let Some(p) = profile {
        let p = root().join(p);
        scenario.target = Target::Mock {
            profile: Box::new(Profile::load(&p).unwrap()),
            profile_path: Some(p),
        };
    }
    let (report, paths) = run_in_process(scenario, out, shard).await;
    let json = paths
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap()
        .clone();
    (report, json)
}

fn bin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(args)
        .output()
        .unwrap()
}

fn hist(s: &batchproof::metrics::LatencySummary) -> Latency {
    Latency::decode(&s.hdr).unwrap()
}

/// Every recorded value and its count, for exact histogram equality.
fn values(h: &Latency) -> Vec<(u64, u64)> {
    h.hist
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

#[tokio::test]
async fn report_command_re_renders_a_saved_run_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let (report, json) = run(None, None, dir.path()).await;
    assert!(
        json.with_file_name("report.html").exists(),
        "run writes report.html beside the JSON"
    );
    let j = json.to_str().unwrap();
    let out = bin(&["report", j, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let again: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again, report, "json → report → json is lossless");
    let html = String::from_utf8(bin(&["report", j, "--format", "html"]).stdout).unwrap();
    for id in [
        "latency-submit",
        "latency-e2e",
        "timeline-runs",
        "timeline-inflight",
        "batches-completion",
    ] {
        assert!(html.contains(&format!("data-chart=\"{id}\"")), "chart {id}");
    }
    assert!(html.contains("id=\"projection\"") && html.contains("id=\"environment\""));
    // Self-contained: nothing is loaded from anywhere.
    for needle in ["<link", "src=\"http", "src='http", "@import", "url(http"] {
        assert!(!html.contains(needle), "the HTML loads `{needle}`");
    }
    let md = String::from_utf8(bin(&["report", j, "--format", "md"]).stdout).unwrap();
    assert!(md.contains("# batchproof: reports-test"));
    let junit = String::from_utf8(bin(&["report", j, "--format", "junit"]).stdout).unwrap();
    roxmltree::Document::parse(&junit).unwrap();
    let file = dir.path().join("again.html");
    assert_eq!(
        bin(&[
            "report",
            j,
            "--format",
            "html",
            "-o",
            file.to_str().unwrap()
        ])
        .status
        .code(),
        Some(0)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), html);
    // A file that is not a report gets a clear error and exit 2.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"schema\": \"something/else\"}").unwrap();
    let out = bin(&["report", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema `something/else`"));
}

#[tokio::test]
async fn shards_merge_losslessly_and_agree_with_one_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, ja) = run(None, Some(Shard { index: 0, count: 2 }), dir.path()).await;
    let (b, jb) = run(None, Some(Shard { index: 1, count: 2 }), dir.path()).await;
    let (whole, _) = run(None, None, dir.path()).await;
    // Disjoint batches: even and odd indices.
    assert!(a.batches.list.iter().all(|l| l.index % 2 == 0));
    assert!(b.batches.list.iter().all(|l| l.index % 2 == 1));

    let merged_dir = dir.path().join("merged");
    let out = bin(&[
        "merge",
        ja.to_str().unwrap(),
        jb.to_str().unwrap(),
        "--out",
        merged_dir.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Report = batchproof::report::json::read(&merged_dir.join("report.json")).unwrap();
    assert!(merged_dir.join("report.html").exists());

    // Counts are the sums.
    assert_eq!(m.runs.submitted, a.runs.submitted + b.runs.submitted);
    assert_eq!(m.runs.seen, a.runs.seen + b.runs.seen);
    assert_eq!(m.batches.accepted, a.batches.accepted + b.batches.accepted);
    assert_eq!(m.http.requests, a.http.requests + b.http.requests);
    assert_eq!(
        m.webhooks.received,
        a.webhooks.received + b.webhooks.received
    );
    assert_eq!(
        m.batches.list.len(),
        a.batches.list.len() + b.batches.list.len()
    );
    let tl = |r: &Report| r.timeline.iter().map(|s| s.runs_submitted).sum::<u64>();
    assert_eq!(tl(&m), tl(&a) + tl(&b));
    // Histograms are the exact merge.
    for (name, pick) in [
        (
            "submit response",
            (|r: &Report| r.operations["submit"].response.clone()) as fn(&Report) -> _,
        ),
        ("e2e", |r: &Report| r.e2e.clone()),
        ("batch completion", |r: &Report| {
            r.batches.completion.clone()
        }),
    ] {
        let mut want = hist(&pick(&a));
        want.add(&hist(&pick(&b)));
        assert_eq!(values(&hist(&pick(&m))), values(&want), "{name}");
    }
    assert_eq!(m.merged_from.len(), 2);
    assert!(m.verdict.passed, "{:?}", m.verdict);

    // And the merge agrees with one run of the whole scenario: same work, similar times.
    assert_eq!(m.runs.submitted, whole.runs.submitted);
    assert_eq!(m.batches.accepted, whole.batches.accepted);
    assert_eq!(m.runs.missing, 0);
    let (pm, pw) = (m.e2e.p50_ms, whole.e2e.p50_ms);
    assert!(
        pm < pw * 3.0 + 50.0 && pw < pm * 3.0 + 50.0,
        "e2e p50 merged {pm} ms vs whole {pw} ms"
    );

    // Refusals: the same shard twice, or reports of different scenarios.
    let out = bin(&[
        "merge",
        ja.to_str().unwrap(),
        ja.to_str().unwrap(),
        "--out",
        merged_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("appears twice"));
}

#[tokio::test]
async fn compare_flags_a_slowed_target_and_not_a_re_run() {
    let dir = tempfile::tempdir().unwrap();
    let (_, base) = run(None, None, dir.path()).await;
    let (_, rerun) = run(None, None, dir.path()).await;
    let (_, slow) = run(Some("mock/slow.yaml"), None, dir.path()).await;
    // The tests share a 2-core machine: a re-run's tail latencies move by a few ms with
    // its neighbours' load, which is real slowness, not noise compare could model. A
    // 20 ms floor is above that and far below the slowed profile's 300 ms.
    let cmp = |new: &Path| {
        bin(&[
            "compare",
            base.to_str().unwrap(),
            new.to_str().unwrap(),
            "--min-delta",
            "20ms",
            "--out",
            dir.path().to_str().unwrap(),
        ])
    };

    let same = cmp(&rerun);
    let text = String::from_utf8_lossy(&same.stdout).to_string();
    assert_eq!(
        same.status.code(),
        Some(0),
        "a re-run is not a regression:\n{text}"
    );
    assert!(text.contains("no regression"));
    assert!(!text.contains("Not like for like"), "{text}");

    // A run against itself: nothing changed, so nothing is called better.
    let itself = cmp(&base);
    let text = String::from_utf8_lossy(&itself.stdout).to_string();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        // A smoke run judges no rule: its rule count is no data, never "unchanged".
        assert!(
            line.ends_with("| unchanged |")
                || (line.starts_with("| `rules.failed`")
                    && line.ends_with("| no data in either run |")),
            "{line}"
        );
    }

    let slowed = cmp(&slow);
    let text = String::from_utf8_lossy(&slowed.stdout).to_string();
    assert_eq!(
        slowed.status.code(),
        Some(1),
        "the slowed profile is a regression:\n{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("| `submit.p50`"))
        .unwrap();
    assert!(line.contains("REGRESSION"), "{line}");
    assert!(
        text.contains("Not like for like: the runs used different mock profiles"),
        "{text}"
    );
    assert!(dir.path().join("compare.html").exists() && dir.path().join("compare.md").exists());
    let html = std::fs::read_to_string(dir.path().join("compare.html")).unwrap();
    assert!(html.contains("class=\"regression\""));
}

#[test]
fn the_kubernetes_manifests_run_n_shards_and_merge_them() {
    let docs = |file: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(root().join("deploy").join(file))
            .unwrap()
            .split("\n---\n")
            .map(|d| {
                serde_saphyr::from_str::<serde_json::Value>(d)
                    .unwrap_or_else(|e| panic!("{file}: {e}"))
            })
            .collect()
    };
    let shards = docs("indexed-job.yaml");
    let job = shards.iter().find(|d| d["kind"] == "Job").expect("a Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    // A lost pod's index is retried (it resumes its own journal, sending nothing again);
    // a verdict or a refusal is not.
    assert!(
        spec["backoffLimitPerIndex"]
            .as_u64()
            .is_some_and(|b| b >= 1)
    );
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"][0], "batchproof",
        "exec form: SIGTERM reaches it"
    );
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--shard", "$(JOB_COMPLETION_INDEX)/$(SHARDS)"]),
        "{args:?}"
    );
    // The flag it uses exists, with the syntax it uses.
    let help = String::from_utf8(bin(&["run", "--help"]).stdout).unwrap();
    assert!(help.contains("--shard <I/N>"));
    let merge = docs("merge-job.yaml");
    let args: Vec<&str> = merge[0]["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    // The merge recovers a shard whose pod was evicted (tests/deploy.rs runs it).
    assert_eq!(
        args[..3],
        ["merge", "--shards", "/reports/shards"],
        "{args:?}"
    );
}

/// Shards of one scenario file whose `${VAR}` values differ (each pod its own webhook URL,
/// say) are still one scenario to `merge`: reports keep the scenario text as written.
#[test]
fn merge_accepts_shards_whose_environment_values_differ() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env-shards.yaml");
    std::fs::write(
        &file,
        "name: env-shards\ndescription: \"shard tag ${BP_MERGE_TAG}\"\nload:\n  phases: [{hold: 1s, rate: 4}]\n  inputs_per_batch: 5\nresults:\n  deadline: 20s\n",
    )
    .unwrap();
    let shard = |index: &str, tag: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_batchproof"))
            .args([
                "run",
                file.to_str().unwrap(),
                "--shard",
                index,
                "--progress",
                "none",
                "--out",
            ])
            .arg(dir.path().join(format!("shard-{}", &index[..1])))
            .env("BP_MERGE_TAG", tag)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let folder = std::fs::read_dir(dir.path().join(format!("shard-{}", &index[..1])))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        folder.join("report.json")
    };
    let (a, b) = (shard("0/2", "alpha"), shard("1/2", "beta"));
    let merged = dir.path().join("merged");
    let out = bin(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_to_string(merged.join("report.json")).unwrap();
    assert!(json.contains("${BP_MERGE_TAG}"), "the text as written");
    // Each shard did read its own value.
    for (report, tag) in [(&a, "alpha"), (&b, "beta")] {
        let text = std::fs::read_to_string(report).unwrap();
        assert!(text.contains(&format!("shard tag {tag}")), "{tag}");
    }
}
