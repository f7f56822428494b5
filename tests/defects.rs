//! The defect matrix: `scenarios/conformance.yaml` against the embedded mock with each
//! profile in `mock/defects/` fails exactly the rules that profile's first line names
//! ("# Breaks rule.a, rule.b: …"), each with evidence, and nothing else; against the
//! conforming mock it fails no rule, under each of the three API versions. The JUnit XML
//! of every run is parsed and must agree with the JSON report.

mod common;
use common::run_in_process;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use batchproof::api::ApiVersion;
use batchproof::checks::{RuleStatus, Severity};
use batchproof::mock::Profile;
use batchproof::mock::profile::MissingVersion;
use batchproof::report::Report;
use batchproof::scenario::{Scenario, Target};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs conformance.yaml against the mock with `profile` (None: the scenario's own)
/// under `version`; returns the report and the JUnit XML text.
async fn conformance(profile: Option<&Path>, version: ApiVersion) -> (Report, String) {
    let path = root().join("scenarios/conformance.yaml");
    let mut scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    scenario.api_version = version;
    if let Some(p) = profile {
        scenario.target = Target::Mock {
            profile: Box::new(Profile::load(p).unwrap_or_else(|e| panic!("{e}"))),
            profile_path: Some(p.to_path_buf()),
        };
    }
    let out = tempfile::tempdir().unwrap();
    let (report, paths) = run_in_process(scenario, out.path(), None).await;
    let junit = paths
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".junit.xml"))
        .expect("a JUnit file is written");
    (report, std::fs::read_to_string(junit).unwrap())
}

fn failed(report: &Report) -> BTreeSet<String> {
    report
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::Failed)
        .map(|r| r.id.clone())
        .collect()
}

/// The JUnit file is well-formed XML with one test case per rule, a `<failure>` on
/// exactly the failed ones and `<skipped>` on the ones not run.
fn junit_agrees(xml: &str, report: &Report) {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("invalid XML: {e}"));
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("contract rules"))
        .expect("a `contract rules` suite");
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), report.rules.len(), "one test case per rule");
    for rule in &report.rules {
        let case = cases
            .iter()
            .find(|c| c.attribute("name") == Some(rule.id.as_str()))
            .unwrap_or_else(|| panic!("no test case for {}", rule.id));
        let failure = case.children().find(|n| n.has_tag_name("failure"));
        let skipped = case.children().any(|n| n.has_tag_name("skipped"));
        assert_eq!(
            failure.is_some(),
            rule.status == RuleStatus::Failed,
            "{}",
            rule.id
        );
        assert_eq!(
            skipped,
            matches!(rule.status, RuleStatus::NotRun | RuleStatus::NotApplicable),
            "{}",
            rule.id
        );
        if let Some(f) = failure {
            let text = f.text().unwrap_or("");
            assert!(
                text.contains("expected:") && text.contains("seen:"),
                "{}: the failure carries its evidence: {text}",
                rule.id
            );
        }
    }
    assert_eq!(
        suite
            .attribute("failures")
            .and_then(|f| f.parse::<usize>().ok()),
        Some(failed(report).len())
    );
}

/// The rule ids a defect file documents on its first line.
fn documented(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap_or("");
    let ids = first
        .strip_prefix("# Breaks ")
        .and_then(|r| r.split_once(':'))
        .map(|(ids, _)| ids)
        .unwrap_or_else(|| {
            panic!(
                "{}: first line must be `# Breaks rule.id[, …]: why`",
                path.display()
            )
        });
    ids.split(',').map(|s| s.trim().to_string()).collect()
}

async fn defect(name: &str) {
    let path = root().join("mock/defects").join(format!("{name}.yaml"));
    let want = documented(&path);
    for id in &want {
        assert!(
            batchproof::checks::rule(id).is_some(),
            "{name}: `{id}` is not a rule"
        );
    }
    // Under every version at least one of its rules applies to, it fails exactly those
    // of its rules that apply there.
    for version in ApiVersion::ALL {
        let applicable: BTreeSet<String> = want
            .iter()
            .filter(|id| batchproof::checks::rule(id).is_some_and(|r| r.applies_to(version)))
            .cloned()
            .collect();
        if !applicable.is_empty() {
            defect_in(name, &path, &applicable, version).await;
        }
    }
}

async fn defect_in(name: &str, path: &Path, want: &BTreeSet<String>, version: ApiVersion) {
    let (report, junit) = conformance(Some(path), version).await;
    assert!(report.complete);
    assert_eq!(
        &failed(&report),
        want,
        "defect `{name}` fails exactly the rules it documents, under {version:?}"
    );
    for r in report
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::Failed)
    {
        assert!(r.failed > 0 && !r.examples.is_empty(), "{}: evidence", r.id);
    }
    assert!(!report.verdict.passed, "a failed error rule fails the run");
    junit_agrees(&junit, &report);
}

async fn conforming(version: ApiVersion) {
    let (report, junit) = conformance(None, version).await;
    assert!(report.complete);
    let failing: Vec<_> = report
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::Failed)
        .map(|r| (&r.id, &r.examples))
        .collect();
    assert!(failing.is_empty(), "{version:?}: {failing:#?}");
    // The conformance profile exercises every rule that applies to the version.
    let not_run: Vec<_> = report
        .rules
        .iter()
        .filter(|r| r.status == RuleStatus::NotRun)
        .map(|r| (&r.id, &r.note))
        .collect();
    assert!(not_run.is_empty(), "{version:?}: not run: {not_run:?}");
    let applicable = batchproof::checks::catalogue()
        .filter(|r| r.applies_to(version))
        .count();
    let listed_applicable = report
        .rules
        .iter()
        .filter(|r| r.status != RuleStatus::NotApplicable)
        .count();
    assert_eq!(listed_applicable, applicable);
    // Every other rule is listed too, as not applicable to this version.
    assert_eq!(report.rules.len(), batchproof::checks::catalogue().count());
    assert!(report.rules.iter().all(|r| r.severity == Severity::Error));
    assert!(report.verdict.passed);
    junit_agrees(&junit, &report);
}

#[tokio::test]
async fn conforming_mock_fails_no_rule_2026() {
    conforming(ApiVersion::V2026_02_09).await;
}

#[tokio::test]
async fn conforming_mock_fails_no_rule_2025() {
    conforming(ApiVersion::V2025_04_21).await;
}

#[tokio::test]
async fn conforming_mock_fails_no_rule_2024() {
    conforming(ApiVersion::V2024_12_23).await;
}

macro_rules! defect_test {
    ($($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                defect(stringify!($name)).await;
            }
        )+
    };
}

defect_test!(
    accepts_0_inputs,
    accepts_1001_inputs,
    accepts_large_metadata,
    accepts_missing_version,
    auth_not_enforced,
    batch_priority_50,
    cancel_ignored,
    cancelled_to_legacy,
    default_page_size_20,
    extra_run_per_batch,
    failed_announced_as_completed,
    ignores_priority,
    lost_run_per_batch,
    malformed_is_500,
    missing_terminal_webhook,
    repeat_across_pages,
    runs_without_batch_id,
    stale_signature,
    stale_get,
    status_filter_ignored,
    status_regression,
    throttles_rapid_batches,
    webhook_alters_metadata,
    webhook_drops_metadata,
    webhook_without_batch_id,
    workflow_filter_ignored,
    wrong_error_shape,
    wrong_signature,
);

#[tokio::test]
async fn missing_version_expectation_can_be_overridden_for_legacy_keys() {
    // A target that serves its legacy default to versionless requests (a mock profile with
    // `missing_version: {legacy: 2024-12-23}`, as for old keys) conforms when the scenario
    // says that is what it expects, and fails the default expectation.
    let path = root().join("scenarios/conformance.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("missing_version: reject", "missing_version: legacy");
    let mut profile = Profile::load(&root().join("mock/conformance.yaml")).unwrap();
    profile.missing_version = MissingVersion::Legacy(ApiVersion::V2024_12_23);
    for (text, want) in [
        (text, RuleStatus::Passed),
        (std::fs::read_to_string(&path).unwrap(), RuleStatus::Failed),
    ] {
        let mut scenario = Scenario::from_text(&path, &text).unwrap();
        scenario.target = Target::Mock {
            profile: Box::new(profile.clone()),
            profile_path: None,
        };
        let out = tempfile::tempdir().unwrap();
        let (report, _) = run_in_process(scenario, out.path(), None).await;
        assert_eq!(
            failed(&report).len(),
            usize::from(want == RuleStatus::Failed)
        );
        let rule = report
            .rules
            .iter()
            .find(|r| r.id == "version.missing")
            .unwrap();
        assert_eq!(rule.status, want, "{rule:?}");
    }
}

#[test]
fn every_defect_file_has_a_test_and_documents_real_rules() {
    let src = std::fs::read_to_string(root().join("tests/defects.rs")).unwrap();
    for entry in std::fs::read_dir(root().join("mock/defects")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            src.contains(&format!("    {name},\n")),
            "mock/defects/{name}.yaml has no test in defect_test!"
        );
        for id in documented(&path) {
            assert!(batchproof::checks::rule(&id).is_some(), "{name}: `{id}`");
        }
    }
}

#[test]
fn every_profile_loads_and_unknown_keys_are_located() {
    for entry in std::fs::read_dir(root().join("mock")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "time_scale: 10\nprocessing:\n  wrokers: 4\n").unwrap();
    let e = Profile::load(&bad).unwrap_err();
    assert_eq!((e.line, e.column), (Some(3), Some(3)), "{e}");
    assert!(e.to_string().contains("did you mean `workers`"), "{e}");
}

#[tokio::test]
async fn rules_can_be_excluded_selected_or_demoted_by_the_scenario() {
    // The same defect, three ways of looking at it.
    let path = root().join("scenarios/conformance.yaml");
    let base = std::fs::read_to_string(&path).unwrap();
    let defect = root().join("mock/defects/webhook_alters_metadata.yaml");
    let run = |text: String| {
        let path = path.clone();
        let defect = defect.clone();
        async move {
            let mut scenario = Scenario::from_text(&path, &text).unwrap_or_else(|e| panic!("{e}"));
            scenario.target = Target::Mock {
                profile: Box::new(Profile::load(&defect).unwrap()),
                profile_path: Some(defect),
            };
            let out = tempfile::tempdir().unwrap();
            run_in_process(scenario, out.path(), None).await.0
        }
    };
    // Excluded: the rule is not judged, and the run passes.
    let excluded = run(base.replace(
        "  audit_batches: 4",
        "  exclude: [webhook.metadata]\n  audit_batches: 4",
    ))
    .await;
    assert!(excluded.rules.iter().all(|r| r.id != "webhook.metadata"));
    assert!(failed(&excluded).is_empty() && excluded.verdict.passed);
    // Demoted to a warning: reported as failed, but the run passes.
    let warned = run(base.replace(
        "  audit_batches: 4",
        "  severity: {webhook.metadata: warn}\n  audit_batches: 4",
    ))
    .await;
    let rule = warned
        .rules
        .iter()
        .find(|r| r.id == "webhook.metadata")
        .unwrap();
    assert_eq!(
        (rule.status, rule.severity),
        (RuleStatus::Failed, Severity::Warn)
    );
    assert!(warned.verdict.passed);
    // Only one family selected.
    let only = run(base.replace(
        "  audit_batches: 4",
        "  include: [webhook]\n  audit_batches: 4",
    ))
    .await;
    assert!(only.rules.iter().all(|r| r.id.starts_with("webhook.")));
    // The family's rules that apply to the scenario's version (2026-02-09) are judged;
    // the others are listed, not applicable.
    let family = batchproof::checks::webhook::RULES
        .iter()
        .filter(|r| r.applies_to(ApiVersion::V2026_02_09))
        .count();
    let applicable = only
        .rules
        .iter()
        .filter(|r| r.status != RuleStatus::NotApplicable)
        .count();
    assert_eq!(applicable, family);
    assert_eq!(only.rules.len(), batchproof::checks::webhook::RULES.len());
    assert_eq!(
        failed(&only),
        BTreeSet::from(["webhook.metadata".to_string()])
    );
}

/// Like the real API, the default mock shows no `priority` on runs: `runs.priority` is then
/// not run, saying why, and nothing fails (`runs.priority_order` still judges by behaviour).
#[tokio::test]
async fn runs_priority_is_not_run_against_a_target_without_the_field() {
    let text = std::fs::read_to_string(root().join("mock/conformance.yaml")).unwrap();
    assert!(text.contains("expose_priority: true"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("production-like.yaml");
    std::fs::write(
        &path,
        text.replace("expose_priority: true", "expose_priority: false"),
    )
    .unwrap();
    let (report, _) = conformance(Some(&path), ApiVersion::V2026_02_09).await;
    assert!(failed(&report).is_empty(), "{:?}", failed(&report));
    let rule = report
        .rules
        .iter()
        .find(|r| r.id == "runs.priority")
        .expect("runs.priority is reported");
    assert_eq!(rule.status, RuleStatus::NotRun);
    assert!(
        rule.note
            .as_deref()
            .unwrap_or("")
            .contains("no priority field"),
        "{:?}",
        rule.note
    );
    let order = report
        .rules
        .iter()
        .find(|r| r.id == "runs.priority_order")
        .unwrap();
    assert_eq!(order.status, RuleStatus::Passed, "{:?}", order.note);
}

/// Where the documentation leaves a refusal's status open, the checks accept 422 as well
/// as 400 and say which one they saw: a target answering 422 everywhere fails nothing.
#[tokio::test]
async fn conformance_accepts_422_where_no_status_is_documented() {
    let text = std::fs::read_to_string(root().join("mock/conformance.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("422.yaml");
    std::fs::write(
        &path,
        format!(
            "{text}\nvalidation_status: {{too_many_inputs: 422, no_inputs: 422, bad_file: 422, missing_workflow: 422, page_size: 422, unknown_version: 422}}\n"
        ),
    )
    .unwrap();
    let (report, _) = conformance(Some(&path), ApiVersion::V2026_02_09).await;
    assert!(failed(&report).is_empty(), "{:?}", failed(&report));
    for id in [
        "batch.rejects_1001",
        "batch.rejects_empty",
        "batch.rejects_bad_file",
        "batch.rejects_missing_workflow",
        "list.page_size_range",
        "version.unknown",
    ] {
        let rule = report.rules.iter().find(|r| r.id == id).unwrap();
        assert_eq!(rule.status, RuleStatus::Passed, "{id}");
        assert!(
            rule.note
                .as_deref()
                .unwrap_or("")
                .contains("refused with 422"),
            "{id}: {:?}",
            rule.note
        );
    }
}
