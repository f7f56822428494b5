//! `compare` as a CI gate: a percentile read off too few samples is *insufficient data*
//! (never a regression, never better, in either direction), and a rule that newly fails
//! or newly passes is named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use batchproof::checks::RuleStatus;
use batchproof::metrics::Latency;
use batchproof::report::{Format, Report, json};

fn fixture() -> Report {
    json::read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/report/conformance-failed.json"),
    )
    .unwrap()
}

fn save(dir: &Path, name: &str, r: &Report) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, json::Json.render(r).unwrap()).unwrap();
    path
}

fn compare(dir: &Path, base: &Path, new: &Path) -> (Option<i32>, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args([
            "compare",
            base.to_str().unwrap(),
            new.to_str().unwrap(),
            "--out",
        ])
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn line<'a>(text: &'a str, metric: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("| `{metric}`")))
        .unwrap_or_else(|| panic!("no {metric} row in:\n{text}"))
}

/// The submit histogram replaced by `samples` of `ms` each (and one of twice that).
fn with_submits(mut r: Report, samples: u64, ms: u64) -> Report {
    let mut h = Latency::default();
    for _ in 1..samples {
        h.record(Duration::from_millis(ms));
    }
    h.record(Duration::from_millis(ms * 2));
    r.operations.get_mut("submit").unwrap().response = h.summary();
    r
}

#[test]
fn a_p99_from_four_samples_is_insufficient_data_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    // As seen: two passing conformance runs, 4 submissions each, p99 11 ms → 23 ms.
    let fast = save(dir.path(), "fast.json", &with_submits(fixture(), 4, 6));
    let slow = save(dir.path(), "slow.json", &with_submits(fixture(), 4, 12));
    for (base, new) in [(&fast, &slow), (&slow, &fast)] {
        let (code, text) = compare(dir.path(), base, new);
        for p in ["p50", "p90", "p99"] {
            let row = line(&text, &format!("submit.{p}"));
            assert!(
                !row.contains("REGRESSION") && !row.contains("better"),
                "{row}"
            );
        }
        let p99 = line(&text, "submit.p99");
        assert!(
            p99.contains("insufficient data: 4 and 4 samples; a p99 needs ≥ 368"),
            "{p99}"
        );
        assert!(line(&text, "submit.p90").contains("needs ≥ 36"), "{text}");
        assert_eq!(code, Some(0), "{text}");
    }

    // Enough samples, the same doubling is a regression (the floor is not a blanket pass).
    let fast = save(dir.path(), "fast.json", &with_submits(fixture(), 400, 6));
    let slow = save(dir.path(), "slow.json", &with_submits(fixture(), 400, 12));
    let (code, text) = compare(dir.path(), &fast, &slow);
    assert!(line(&text, "submit.p50").contains("REGRESSION"), "{text}");
    assert_eq!(code, Some(1), "{text}");
}

#[test]
fn compare_names_each_rule_that_newly_fails_or_newly_passes() {
    let dir = tempfile::tempdir().unwrap();
    let base = fixture();
    let failed: Vec<String> = base
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::Failed)
        .map(|r| r.id.clone())
        .collect();
    assert!(!failed.is_empty(), "the fixture fails a rule");
    let mut new = base.clone();
    // One failing rule is fixed and one passing rule breaks: the count is unchanged, yet a
    // rule that passed now fails, which is a regression.
    let fixed = failed[0].clone();
    let broken = new
        .rules
        .iter()
        .find(|r| r.status == RuleStatus::Passed)
        .unwrap()
        .id
        .clone();
    for r in &mut new.rules {
        if r.id == fixed {
            r.status = RuleStatus::Passed;
        } else if r.id == broken {
            r.status = RuleStatus::Failed;
        }
    }
    let (b, n) = (
        save(dir.path(), "base.json", &base),
        save(dir.path(), "new.json", &new),
    );
    let (code, text) = compare(dir.path(), &b, &n);
    let row = line(&text, "rules.failed");
    assert!(row.contains("REGRESSION"), "{row}");
    assert!(row.contains(&format!("newly failing: `{broken}`")), "{row}");
    assert!(row.contains(&format!("newly passing: `{fixed}`")), "{row}");
    assert_eq!(code, Some(1), "{text}");

    // Reversed: the broken rule is the fixed one now, and vice versa.
    let (_, text) = compare(dir.path(), &n, &b);
    let row = line(&text, "rules.failed");
    assert!(row.contains(&format!("newly failing: `{fixed}`")), "{row}");
    assert!(row.contains(&format!("newly passing: `{broken}`")), "{row}");
}

/// A passed copy of the fixture: complete, no reason against it but its rules.
fn fit() -> Report {
    let mut r = fixture();
    r.complete = true;
    r.interrupted = None;
    r.verdict
        .reasons
        .retain(|x| x.code == "rule" || x.code == "threshold");
    r
}

#[test]
fn compare_says_nothing_over_a_run_that_did_not_finish_or_measured_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = save(d, "base.json", &fit());
    // A killed run as the new run.
    let mut killed = fit();
    killed.complete = false;
    killed.interrupted = Some("terminated (SIGTERM)".into());
    // A run against a target that was down: nothing accepted, nothing judged.
    let mut down = fit();
    down.batches.accepted = 0;
    down.rules
        .iter_mut()
        .for_each(|r| r.status = RuleStatus::NotRun);
    down.verdict.reasons = vec![];
    // A wrong key: not passed for a reason compare cannot weigh.
    let mut refused = fit();
    refused
        .verdict
        .reasons
        .push(batchproof::report::verdict::Reason {
            code: "auth_refused".into(),
            message: "the target refused the API key".into(),
        });
    for (name, r, why) in [
        ("killed", killed, "incomplete"),
        ("down", down, "no data"),
        ("refused", refused, "auth_refused"),
    ] {
        let new = save(d, &format!("{name}.json"), &r);
        let (code, text) = compare(d, &base, &new);
        assert_eq!(code, Some(3), "{name}: {text}");
        assert!(
            text.contains("not comparable") && text.contains(why),
            "{name}: {text}"
        );
        assert!(!text.contains("✅"), "{name}: {text}");
        // Either side.
        let (code, _) = compare(d, &new, &base);
        assert_eq!(code, Some(3), "{name} as the base");
    }
}

#[test]
fn compare_refuses_another_scenario_unless_told_and_says_no_data_for_an_empty_side() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = save(d, "base.json", &fit());
    let mut other = fit();
    other.scenario.name = "another".into();
    let new = save(d, "other.json", &other);
    let (code, text) = compare(d, &base, &new);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--allow-different"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["compare", base.to_str().unwrap(), new.to_str().unwrap()])
        .args(["--allow-different", "--out"])
        .arg(d)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(2));
    // Rules judged in the base only: "no data" in the new run, never "unchanged".
    let mut unjudged = fit();
    unjudged.rules.clear();
    unjudged.batches.accepted = fit().batches.accepted.max(1);
    let new = save(d, "unjudged.json", &unjudged);
    let (_, text) = compare(d, &base, &new);
    assert!(
        line(&text, "rules.failed").contains("no data in the new run"),
        "{}",
        line(&text, "rules.failed")
    );
}
