//! The webhook receiver over real HTTP: it answers genuine deliveries 200 and forged,
//! stale, future-dated and unsigned ones 401, counts each kind as such, and tells a
//! delivery meant for another run's endpoint (another path) apart from a forgery.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batchproof::observe::{BatchOutcome, Ledger};
use batchproof::webhook::receiver::Receiver;
use batchproof::webhook::signing;
use serde_json::json;
use tokio::sync::mpsc;

const SECRET: &str = "wss_receiver_test";

#[tokio::test]
async fn every_kind_of_bad_delivery_is_counted_and_good_ones_are_correlated() {
    let start = Instant::now();
    let ledger = Arc::new(Mutex::new(Ledger::new(
        start,
        Some("bp_input".into()),
        true,
    )));
    {
        let mut l = ledger.lock().unwrap();
        l.add_batch(0, start, 2);
        // The metadata each input was sent with, as the input factory would rebuild it.
        l.set_expected_metadata(Box::new(|b, i| json!({"bp_input": format!("{b}:{i}")})));
        l.settle_batch(
            0,
            BatchOutcome::Accepted {
                batch_id: "batch_a".into(),
            },
            Instant::now(),
            0,
        );
    }
    let (tx, mut rx) = mpsc::channel(batchproof::webhook::receiver::QUEUE);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), tx, 0)
        .await
        .unwrap();
    receiver.set_secret(SECRET);
    receiver.own_path_only();
    let consumer = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                ledger
                    .lock()
                    .unwrap()
                    .ingest_delivery(&d, SECRET, Duration::from_secs(300));
            }
        })
    };
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let event = |id: &str, run: &str, tag: &str| {
        json!({"eventId": id, "eventType": "workflow_run.completed",
               "payload": {"id": run, "status": "PROCESSED", "batchId": "batch_a", "metadata": {"bp_input": tag}}})
        .to_string()
    };
    let send = |body: String, ts: Option<i64>, sig: Option<String>| {
        let mut r = http.post(receiver.url()).body(body);
        if let Some(ts) = ts {
            r = r.header(signing::TIMESTAMP_HEADER, ts.to_string());
        }
        if let Some(sig) = sig {
            r = r.header(signing::SIGNATURE_HEADER, sig);
        }
        r.send()
    };
    let good = event("evt_1", "workflow_run_a", "0:0");
    let cases = vec![
        (
            good.clone(),
            Some(now),
            Some(signing::sign(SECRET, now, good.as_bytes())),
        ),
        // The same eventId again: a redelivery.
        (
            good.clone(),
            Some(now),
            Some(signing::sign(SECRET, now, good.as_bytes())),
        ),
        // Forged: signed with another secret.
        (
            event("evt_2", "workflow_run_b", "0:1"),
            Some(now),
            Some(signing::sign(
                "wss_attacker",
                now,
                event("evt_2", "workflow_run_b", "0:1").as_bytes(),
            )),
        ),
        // Stale and future-dated, but correctly signed.
        (
            event("evt_3", "workflow_run_b", "0:1"),
            Some(now - 900),
            Some(signing::sign(
                SECRET,
                now - 900,
                event("evt_3", "workflow_run_b", "0:1").as_bytes(),
            )),
        ),
        (
            event("evt_4", "workflow_run_b", "0:1"),
            Some(now + 900),
            Some(signing::sign(
                SECRET,
                now + 900,
                event("evt_4", "workflow_run_b", "0:1").as_bytes(),
            )),
        ),
        // No signature headers at all.
        (event("evt_5", "workflow_run_b", "0:1"), None, None),
        // A run nobody submitted.
        (
            event("evt_6", "workflow_run_z", "7:7"),
            Some(now),
            Some(signing::sign(
                SECRET,
                now,
                event("evt_6", "workflow_run_z", "7:7").as_bytes(),
            )),
        ),
        // Signed garbage.
        (
            "not json".to_string(),
            Some(now),
            Some(signing::sign(SECRET, now, b"not json")),
        ),
        // The second input's result, properly signed.
        (
            event("evt_7", "workflow_run_b", "0:1"),
            Some(now),
            Some(signing::sign(
                SECRET,
                now,
                event("evt_7", "workflow_run_b", "0:1").as_bytes(),
            )),
        ),
    ];
    // good, redelivery, forged, stale, future-dated, unsigned, unknown run, signed
    // garbage, good: a delivery that fails verification is refused with a 4xx; one that is
    // genuine is taken, whatever its content.
    let expected = [200, 200, 401, 401, 401, 401, 200, 200, 200];
    for ((body, ts, sig), want) in cases.into_iter().zip(expected) {
        let what = body.clone();
        let resp = send(body, ts, sig).await.unwrap();
        assert_eq!(resp.status().as_u16(), want, "{what}");
    }
    // A delivery for another run's endpoint (an earlier run's, left registered on this
    // address) is answered 404 and never judged against this run's secret.
    let other = format!("http://{}/webhooks/bp_someone_else", receiver.addr);
    let resp = http.post(other).body(good.clone()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(receiver.foreign(), 1);
    receiver.stop().await;
    consumer.await.unwrap();
    let l = ledger.lock().unwrap();
    let w = l.webhooks();
    assert_eq!(w.received, 9);
    assert_eq!(w.rejected.get("bad_signature"), Some(&1));
    assert_eq!(w.rejected.get("stale"), Some(&1));
    assert_eq!(w.rejected.get("future_dated"), Some(&1));
    assert_eq!(w.rejected.get("missing_headers"), Some(&1));
    assert_eq!(w.redeliveries, 1);
    assert_eq!(w.unparseable, 1);
    assert_eq!(l.anomalies().unknown, 1);
    assert_eq!(l.anomalies().duplicates, 0);
    assert_eq!(l.coverage().0, 0, "both inputs have their result");
    assert_eq!(w.metadata_mismatch, 0);
}
