//! Scenario validation reads like the manual: each broken scenario gets a message that
//! names the file, the line and column, and the fix. Every shipped scenario validates.

use std::path::Path;

use batchproof::scenario::Scenario;

fn err(yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.yaml");
    std::fs::write(&p, yaml).unwrap();
    Scenario::load(&p).unwrap_err().to_string()
}

const LOAD: &str = "load:\n  phases: [{hold: 1s, rate: 1}]\n";

#[test]
fn broken_scenarios_get_located_errors_that_name_the_fix() {
    let cases: &[(&str, String, &[&str])] = &[
        (
            "unknown top-level key",
            format!("{LOAD}treshold: []\n"),
            &["broken.yaml:3:1", "did you mean `thresholds`"],
        ),
        (
            "unknown nested key",
            "load:\n  phases: [{hold: 1s, rate: 1}]\n  max_inflight: 3\n".into(),
            &["broken.yaml:3:3", "did you mean `max_in_flight`"],
        ),
        ("no load", "name: x\n".into(), &["broken.yaml", "load"]),
        (
            "bad duration",
            "load:\n  phases: [{hold: 10 sec, rate: 1}]\n".into(),
            &[":2:", "unknown unit `sec`"],
        ),
        (
            "phase with both",
            "load:\n  phases:\n    - {hold: 1s, ramp: 2s, rate: 1}\n".into(),
            &[":3:", "exactly one of `hold` or `ramp`"],
        ),
        (
            "open model with concurrency",
            "load:\n  phases:\n    - {hold: 1s, concurrency: 3}\n".into(),
            &[":3:", "closed model", "load.model: closed"],
        ),
        (
            "batch too large",
            format!("{LOAD}  inputs_per_batch: 1001\n"),
            &[":3:", "1..1000", "1 to 1000"],
        ),
        (
            "unknown threshold metric",
            format!("{LOAD}thresholds:\n  - \"submit.p98 < 1s\"\n"),
            &[
                "broken.yaml:4:5",
                "unknown metric `submit.p98`",
                "did you mean",
            ],
        ),
        (
            "threshold without unit",
            format!("{LOAD}thresholds:\n  - \"e2e.p95 < 30\"\n"),
            &[":4:", "is a duration", "no unit"],
        ),
        (
            "unknown placeholder",
            format!("{LOAD}inputs:\n  file: {{url: \"https://x/{{{{bach}}}}.pdf\"}}\n"),
            &[":4:", "unknown placeholder `{{bach}}`"],
        ),
        (
            "two file kinds",
            format!("{LOAD}inputs:\n  file: {{url: a, text: b}}\n"),
            &["exactly one of `url`, `id` or `text`"],
        ),
        (
            "unknown api version",
            format!("{LOAD}api_version: 2023-01-01\n"),
            &[":3:", "2023-01-01"],
        ),
        (
            "real target without public url",
            format!("{LOAD}target: {{url: \"https://api.extend.ai\"}}\n"),
            &["public_url", "via: polling"],
        ),
        (
            "mock and url",
            format!("{LOAD}target: {{url: \"https://x\", mock: {{}}}}\n"),
            &[":3:", "both `mock` and `url`"],
        ),
        (
            "missing profile",
            format!("{LOAD}target: {{mock: {{profile: nope.yaml}}}}\n"),
            &["nope.yaml", "cannot read"],
        ),
        (
            "bad via",
            format!("{LOAD}results: {{via: carrier-pigeon}}\n"),
            &[":3:", "carrier-pigeon"],
        ),
        (
            "page size",
            format!("{LOAD}results: {{polling: {{page_size: 5000}}}}\n"),
            &["page_size", "1 to 1000"],
        ),
        (
            "misspelt rule in checks.include",
            format!("{LOAD}checks:\n  include: [runs.metdata]\n"),
            &[
                "broken.yaml:4:13",
                "`runs.metdata`",
                "did you mean `runs.metadata`",
            ],
        ),
        (
            "unknown family in checks.exclude",
            format!("{LOAD}checks:\n  exclude: [runz]\n"),
            &[
                "broken.yaml:4:13",
                "neither a rule id nor a family",
                "did you mean `runs`",
            ],
        ),
        (
            "severity override of an unknown rule",
            format!("{LOAD}checks:\n  severity: {{webhook.signatur: warn}}\n"),
            &[
                ":4:",
                "webhook.signatur",
                "did you mean `webhook.signature`",
            ],
        ),
        (
            "unknown checks key",
            format!("{LOAD}checks:\n  probe: false\n"),
            &["broken.yaml:4:3", "did you mean `probes`"],
        ),
        (
            "bad missing_version expectation",
            format!("{LOAD}checks: {{missing_version: allow}}\n"),
            &[":3:", "allow"],
        ),
    ];
    for (what, yaml, needles) in cases {
        let e = err(yaml);
        for n in *needles {
            assert!(e.contains(n), "{what}: expected `{n}` in:\n{e}");
        }
        assert!(
            e.contains("fix:") || e.contains("expected") || e.contains("; use"),
            "{what}: names no fix:\n{e}"
        );
    }
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 3, "smoke, capacity and soak at least");
}

#[test]
fn checks_command_lists_every_rule_as_text_and_json() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_batchproof"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&["checks"]);
    let json: serde_json::Value =
        serde_json::from_str(&run(&["checks", "--format", "json"])).unwrap();
    let rules = json.as_array().unwrap();
    // The contract rules, then the client rules `grade` judges, each with its family.
    let client: Vec<&serde_json::Value> =
        rules.iter().filter(|j| j["family"] == "client").collect();
    assert_eq!(
        rules.len() - client.len(),
        batchproof::checks::catalogue().count()
    );
    assert_eq!(client.len(), batchproof::grade::rules::catalogue().count());
    for [id, ..] in batchproof::grade::rules::catalogue() {
        assert!(text.contains(id), "{id} missing from the text listing");
        let j = client.iter().find(|j| j["id"] == id).unwrap();
        assert!(!j["provenance"].as_str().unwrap().is_empty());
        assert!(!j["basis"].as_str().unwrap().is_empty());
    }
    for r in batchproof::checks::catalogue() {
        assert!(
            text.contains(r.id),
            "{} missing from the text listing",
            r.id
        );
        let j = rules.iter().find(|j| j["id"] == r.id).unwrap();
        assert_eq!(j["severity"], r.severity.as_str());
        assert_eq!(j["doc"], r.doc);
        assert!(!j["versions"].as_array().unwrap().is_empty());
    }
    let throttle = rules
        .iter()
        .find(|j| j["id"] == "error.throttle_retryable")
        .unwrap();
    assert_eq!(throttle["versions"], serde_json::json!(["2026-02-09"]));
}

#[test]
fn validate_command_exits_2_on_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b.yaml");
    std::fs::write(&p, "lod: {}\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .arg("validate")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("b.yaml:1:1"));
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["validate", "scenarios/smoke.yaml"])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A mock profile is not a broken scenario: validate says what it is.
    let profile = std::process::Command::new(env!("CARGO_BIN_EXE_batchproof"))
        .args(["validate", "mock/conformance.yaml"])
        .output()
        .unwrap();
    assert_eq!(profile.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&profile.stdout).contains("a mock profile, not a scenario"));
}

/// `${VAR}` and `${VAR:-default}` come from the environment: a URL target from
/// `TARGET_URL` validates, and without it the error names the variable, its place and the
/// fix.
#[test]
fn scenario_strings_take_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("env.yaml");
    std::fs::write(
        &p,
        "name: env\ntarget:\n  url: \"${BP_TEST_TARGET_URL}\"\nresults:\n  via: polling\nload:\n  phases: [{hold: \"${BP_TEST_HOLD:-2s}\", rate: 1}]\n",
    )
    .unwrap();
    let validate = |url: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_batchproof"));
        cmd.arg("validate").arg(&p).env_remove("BP_TEST_TARGET_URL");
        if let Some(u) = url {
            cmd.env("BP_TEST_TARGET_URL", u);
        }
        cmd.output().unwrap()
    };
    let ok = validate(Some("https://api.example.test"));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let unset = validate(None);
    let stderr = String::from_utf8_lossy(&unset.stderr);
    assert_eq!(unset.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("env.yaml:3:9")
            && stderr.contains("`BP_TEST_TARGET_URL` is not set")
            && stderr.contains("${BP_TEST_TARGET_URL:-value}"),
        "{stderr}"
    );
}

#[test]
fn profiles_extend_one_another_and_mock_profile_layers_over_the_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("base.yaml"),
        "time_scale: 50\nlimits: {get_rps: 3}\nprocessing:\n  workers: 7\n  duration: {dist: lognormal, median: 2s, p99: 10s}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("child.yaml"),
        "extends: base.yaml\nprocessing:\n  duration: {dist: fixed, value: 1s}\ndefects: {stale_get: true}\n",
    )
    .unwrap();
    let p = batchproof::mock::Profile::load(&d.join("child.yaml")).unwrap();
    assert_eq!(p.time_scale, 50.0);
    assert_eq!(p.limits.get_rps, Some(3.0), "kept from the base");
    assert_eq!(p.processing.workers, 7, "maps merge key by key");
    assert_eq!(
        p.processing.duration,
        batchproof::config::DurationDist::fixed(std::time::Duration::from_secs(1)),
        "a distribution is replaced whole"
    );
    assert!(p.defects.stale_get);

    // A mistake in the extending file is reported at its own line and column.
    std::fs::write(d.join("bad.yaml"), "extends: base.yaml\nprocesing: {}\n").unwrap();
    let e = batchproof::mock::Profile::load(&d.join("bad.yaml")).unwrap_err();
    assert_eq!((e.line, e.column), (Some(2), Some(1)), "{e}");
    // A cycle ends with a clear error.
    std::fs::write(d.join("a.yaml"), "extends: b.yaml\n").unwrap();
    std::fs::write(d.join("b.yaml"), "extends: a.yaml\n").unwrap();
    let e = batchproof::mock::Profile::load(&d.join("a.yaml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than 8 profiles deep"), "{e}");
    std::fs::write(d.join("lost.yaml"), "extends: nowhere.yaml\n").unwrap();
    let e = batchproof::mock::Profile::load(&d.join("lost.yaml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such profile"), "{e}");

    // --mock-profile lays a defect over the scenario's own profile: its limit stays.
    std::fs::write(d.join("defect.yaml"), "defects: {stale_get: true}\n").unwrap();
    std::fs::write(
        d.join("s.yaml"),
        "name: s\ntarget: {mock: {profile: base.yaml}}\nload:\n  phases: [{hold: 1s, rate: 1}]\n",
    )
    .unwrap();
    let opts = batchproof::run::RunOptions {
        scenario: d.join("s.yaml"),
        target: None,
        token_env: "UNUSED".into(),
        out: d.join("reports"),
        progress: batchproof::run::ProgressMode::None,
        mock_profile: Some(d.join("defect.yaml")),
        shard: None,
        stop: None,
        metrics_listen: None,
        time_scale: None,
    };
    let s = batchproof::run::prepare(&opts).unwrap();
    let batchproof::scenario::Target::Mock { profile, .. } = s.target else {
        panic!("the mock")
    };
    assert_eq!(profile.limits.get_rps, Some(3.0));
    assert!(profile.defects.stale_get);
    assert_eq!(profile.time_scale, 50.0);
}
