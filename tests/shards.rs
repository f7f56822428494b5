//! A sharded conformance run sends the probes once: shard 0 sends them, the other shards
//! only their share of the load; the merged report keeps the probes' rules and says which
//! shard ran them, and `plan --shard I/N` shows each shard's share beside the whole
//! against the budget.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn batchproof(args: &[&str], dir: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn report(out: &Path, prefix: &str) -> (PathBuf, Value) {
    let dir = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* in {}", out.display()));
    let json = dir.join("report.json");
    let v = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (json, v)
}

fn rule<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap_or_else(|| panic!("no rule {id}"))
}

#[test]
fn the_probes_run_on_shard_zero_alone_and_the_merge_keeps_their_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = root.join("scenarios/conformance.yaml");
    let s = scenario.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    for shard in ["0/2", "1/2"] {
        let r = batchproof(&["run", s, "--shard", shard, "--out", o], dir.path());
        let text = common::output_text(&r);
        assert_eq!(r.status.code(), Some(0), "{text}");
        // The banner says whose verdict it is: this shard's share, not the whole.
        assert!(text.contains(&format!("· shard {shard} ·")), "{text}");
    }
    let (zero, r0) = report(&out, "conformance-shard0of2");
    let (one, r1) = report(&out, "conformance-shard1of2");
    // Shard 0 sent the 1,000-input probe; shard 1 did not, and created no probe runs.
    assert_eq!(rule(&r0, "batch.accepts_1000")["status"], "passed");
    assert_eq!(rule(&r1, "batch.accepts_1000")["status"], "not_run");
    assert_eq!(r1["webhooks"]["probe_events"], 0, "{}", r1["webhooks"]);
    assert!(r0["webhooks"]["probe_events"].as_u64().unwrap() > 0);
    assert_eq!(
        r0["probes_shard"],
        serde_json::json!({"index": 0, "count": 2})
    );
    assert!(r1.get("probes_shard").is_none());
    let m = batchproof(
        &[
            "merge",
            zero.to_str().unwrap(),
            one.to_str().unwrap(),
            "--out",
            "merged",
        ],
        dir.path(),
    );
    let text = common::output_text(&m);
    assert_eq!(m.status.code(), Some(0), "{text}");
    assert!(text.contains("probes    sent by shard 0/2"), "{text}");
    let merged: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("merged/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rule(&merged, "batch.accepts_1000")["status"], "passed");
    assert_eq!(merged["verdict"]["passed"], true, "{}", merged["verdict"]);
}

#[test]
fn plan_per_shard_counts_the_probes_once_against_the_whole_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paid.yaml");
    std::fs::write(
        &path,
        "name: paid\ntarget: {url: 'http://127.0.0.1:9'}\nbudget: {max_runs: 3000}\nload:\n  phases: [{hold: 4s, rate: 1}]\n  inputs_per_batch: 100\nresults: {via: polling}\nchecks: {}\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let zero = common::output_text(&batchproof(&["plan", p, "--shard", "0/2"], dir.path()));
    let one = common::output_text(&batchproof(&["plan", p, "--shard", "1/2"], dir.path()));
    assert!(
        zero.contains("shard     0/2: batches 0, 0+2, … — 2 batches"),
        "{zero}"
    );
    assert!(
        zero.contains("the probes included: this shard sends them"),
        "{zero}"
    );
    assert!(one.contains("no probes: shard 0 sends them"), "{one}");
    assert!(one.contains("against the budget of 3000: within"), "{one}");
}
