//! Fuzzing of everything that parses outside input, with proptest (cargo-fuzz needs a
//! nightly toolchain; these run on stable and in CI). Each target starts from its seed
//! corpus in `fuzz/corpus/<target>/` and applies random edits — flipped, inserted and
//! deleted bytes, duplicated chunks, truncation — then feeds the result to the parser and
//! whatever consumes its output. Nothing may panic; over HTTP, nothing may answer 500 or
//! drop the connection.
//!
//! Cases per target: `BATCHPROOF_FUZZ_CASES` (default 300; CI keeps the default, a longer
//! hunt sets thousands). Failures are saved by proptest under `proptest-regressions/` and
//! replayed first on the next run; minimised inputs that once panicked belong in
//! `fuzz/regressions/<target>/`, replayed by `known_crashers_stay_fixed`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use batchproof::mock::{MockServer, Profile};
use batchproof::observe::Ledger;
use batchproof::webhook::receiver::Delivery;
use batchproof::webhook::signing;
use proptest::prelude::*;
use proptest::sample::Index;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = root().join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!seeds.is_empty(), "{target}: empty corpus");
    seeds
}

fn config() -> ProptestConfig {
    let cases = std::env::var("BATCHPROOF_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    ProptestConfig {
        cases,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    }
}

/// Bytes that make structured formats interesting.
const SPICE: &[u8] = b"{}[]:,-\"'\n\t #&*!|>?%@`\\0123456789.eE+nulltrue";

#[derive(Debug, Clone)]
enum Edit {
    Flip(Index, u8),
    Insert(Index, Index),
    Delete(Index, Index),
    Duplicate(Index, Index),
    Truncate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Edit::Delete(i, j)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Edit::Duplicate(i, j)),
        any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = data.len().max(1);
        match e {
            Edit::Flip(i, b) if !data.is_empty() => {
                let at = i.index(len);
                data[at] = *b;
            }
            Edit::Insert(i, b) => {
                let at = i.index(len + 1).min(data.len());
                data.insert(at, SPICE[b.index(SPICE.len())]);
            }
            Edit::Delete(i, j) if !data.is_empty() => {
                let a = i.index(len);
                let b = (a + j.index(16) + 1).min(data.len());
                data.drain(a..b);
            }
            Edit::Duplicate(i, j) if !data.is_empty() => {
                let a = i.index(len);
                let b = (a + j.index(64) + 1).min(data.len());
                let chunk = data[a..b].to_vec();
                data.splice(b..b, chunk);
            }
            Edit::Truncate(i) => {
                let at = i.index(len + 1).min(data.len());
                data.truncate(at);
            }
            _ => {}
        }
    }
    data
}

/// A seed from `target`'s corpus with up to eight edits.
fn mutated(target: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus(target);
    (any::<Index>(), prop::collection::vec(edit(), 0..8))
        .prop_map(move |(i, edits)| apply(seeds[i.index(seeds.len())].clone(), &edits))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scenario(bytes: &[u8]) {
    // A path inside the repository, so relative profile paths resolve as they would.
    let path = root().join("scenarios/fuzzed.yaml");
    if let Ok(s) = batchproof::scenario::Scenario::from_text(&path, &text(bytes)) {
        // What the engine does first with a scenario: build bodies.
        let factory = batchproof::load::inputs::InputFactory::new(&std::sync::Arc::new(s));
        let _ = factory.body(0);
    }
}

fn profile(bytes: &[u8]) {
    let _ = Profile::from_text("fuzzed.yaml", &text(bytes));
}

fn delivery(ledger: &mut Ledger, bytes: &[u8], sign: bool, ts: i64) {
    let body = bytes::Bytes::from(bytes.to_vec());
    let d = Delivery {
        arrived: Instant::now(),
        timestamp: Some(ts.to_string()),
        signature: Some(if sign {
            signing::sign("wss_fuzz", ts, &body)
        } else {
            "00ff".into()
        }),
        body,
    };
    ledger.ingest_delivery(&d, "wss_fuzz", Duration::from_secs(300));
}

fn ledger() -> Ledger {
    let start = Instant::now();
    let mut l = Ledger::new(start, Some("bp_input".into()), true);
    l.set_judging(true);
    l.add_batch(0, start, 1);
    l.settle_batch(
        0,
        batchproof::observe::BatchOutcome::Accepted {
            batch_id: "batch_x".into(),
        },
        start,
        0,
    );
    // A second batch, so a delivery can name one batch in its batchId and another in
    // its correlation tag.
    l.add_batch(1, start, 1);
    l.settle_batch(
        1,
        batchproof::observe::BatchOutcome::Accepted {
            batch_id: "batch_y".into(),
        },
        start,
        0,
    );
    l.set_expected_metadata(Box::new(
        |b, i| serde_json::json!({"bp_input": format!("{b}:{i}")}),
    ));
    l
}

fn report(bytes: &[u8]) {
    use batchproof::report::Format;
    let Ok(r) = batchproof::report::json::parse("fuzzed.json", bytes) else {
        return;
    };
    for f in [
        &batchproof::report::html::Html as &dyn Format,
        &batchproof::report::markdown::Markdown,
        &batchproof::report::junit::JunitXml,
        &batchproof::report::console::Console,
        &batchproof::report::json::Json,
    ] {
        let _ = f.render(&r);
    }
    let _ =
        batchproof::report::merge::merge(&[("a".into(), r.clone()), ("b".into(), r.clone())], true);
    let _ = batchproof::report::compare::compare(&r, &r, "a", "b", Default::default());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn scenario_yaml(bytes in mutated("scenario")) {
        scenario(&bytes);
    }

    #[test]
    fn mock_profile_yaml(bytes in mutated("profile")) {
        profile(&bytes);
    }

    #[test]
    fn webhook_deliveries(bytes in mutated("delivery"), sign in any::<bool>(), skew in -1000i64..1000) {
        let mut l = ledger();
        let ts = chrono::Utc::now().timestamp() + skew;
        delivery(&mut l, &bytes, sign, ts);
        let first = l.input(0).unwrap().webhook();
        let (verified, redeliveries) = (l.webhooks().verified, l.webhooks().redeliveries);
        // The same bytes again: a replay changes no result and adds no second one.
        delivery(&mut l, &bytes, sign, ts);
        prop_assert_eq!(l.input(0).unwrap().webhook(), first);
        prop_assert_eq!(l.anomalies().duplicates, 0);
        prop_assert_eq!(l.webhooks().verified, 2 * verified, "same bytes, same verdict");
        if first.is_some() {
            // It counted as a result, so it had an event id: the replay is a redelivery.
            prop_assert_eq!(l.webhooks().redeliveries, redeliveries + 1);
        }
        for inv in l.judge_invariants(true) {
            prop_assert!(inv.held, "{inv:?}");
        }
    }

    #[test]
    fn json_reports(bytes in mutated("report")) {
        report(&bytes);
    }
}

/// Mock request bodies over real HTTP: every answer is 2xx or a 4xx with the version's
/// error body — never a 500, never a dropped connection.
#[test]
fn mock_request_bodies() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mock: MockServer = rt.block_on(async {
        let p = Profile {
            time_scale: 1000.0,
            ..Default::default()
        };
        MockServer::start(p, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    });
    let http = reqwest::Client::new();
    let url = mock.url();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let strategy = (
        mutated("batch"),
        prop_oneof![Just("2026-02-09"), Just("2025-04-21"), Just("2024-12-23")],
        prop_oneof![Just("/workflow_runs/batch"), Just("/workflow_runs")],
    );
    runner
        .run(&strategy, |(body, version, path)| {
            let (status, reply) = rt.block_on(async {
                let r = http
                    .post(format!("{url}{path}"))
                    .header("authorization", "Bearer sk_batchproof_local")
                    .header("x-extend-api-version", version)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("the mock answers every request");
                let status = r.status().as_u16();
                (status, r.bytes().await.expect("a whole body"))
            });
            prop_assert!(status < 500, "HTTP {status} for {}", text(&body));
            if status >= 400 {
                let v: serde_json::Value =
                    serde_json::from_slice(&reply).expect("an error body is JSON");
                let shape =
                    batchproof::api::error::ErrorShape::for_version(version.parse().unwrap());
                prop_assert!(shape.check(&v).is_ok(), "{version}: {v}");
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(mock.shutdown());
}

/// Inputs that once broke a parser, kept as files and replayed on every run.
#[test]
fn known_crashers_stay_fixed() {
    let dir = root().join("fuzz/regressions");
    assert!(
        dir.join("README.md").exists(),
        "fuzz/regressions/ documents itself"
    );
    let mut n = 0;
    for target in ["scenario", "profile", "delivery", "report"] {
        let Ok(entries) = std::fs::read_dir(dir.join(target)) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            match target {
                "scenario" => scenario(&bytes),
                "profile" => profile(&bytes),
                "delivery" => {
                    let mut l = ledger();
                    delivery(&mut l, &bytes, true, chrono::Utc::now().timestamp());
                    for inv in l.judge_invariants(true) {
                        assert!(inv.held, "{target}/{:?}: {inv:?}", e.path());
                    }
                }
                _ => report(&bytes),
            }
            n += 1;
        }
    }
    // An empty folder would make this test pass by replaying nothing.
    assert!(
        n >= 2,
        "fuzz/regressions/ holds {n} inputs; the replay needs its examples"
    );
    assert!(
        Path::new(&dir).exists(),
        "fuzz/regressions/ holds the replayed crashers"
    );
}
