//! The large-payload ("signed URL") mode of webhook endpoints: an endpoint registered with
//! `advancedOptions.payload.format: url` receives `{object: signed_data_url, data, id,
//! metadata}` instead of the run, signed as usual, and a GET on `data` (no API key) returns
//! the payload a `json` endpoint received. Receivers are written here, and the official
//! Python SDK fetches the payload the way a client would (`tests/.venv`, made by
//! `bash tests/sdk/setup.sh`; without it that test fails).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use batchproof::config::Dur;
use batchproof::webhook::signing;
use common::{Api, Capture, Captured, V2024, V2026};
use serde_json::{Value, json};

const SECOND: Duration = Duration::from_secs(10);

/// Registers `url` for every run event of the default workflow with these advanced
/// options; returns the endpoint as created and its signing secret.
async fn register(api: &Api, url: &str, options: Value) -> (Value, String) {
    let r = api
        .post(
            "/webhook_endpoints",
            &json!({"url": url, "name": "large payloads", "enabledEvents": [], "apiVersion": V2026, "advancedOptions": options}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = api
        .post("/webhook_subscriptions", &json!({"webhookEndpointId": r.body["id"], "resourceType": "workflow", "resourceId": batchproof::mock::profile::DEFAULT_WORKFLOW, "enabledEvents": ["workflow_run.completed", "workflow_run.failed"]}))
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    let secret = r.body["signingSecret"].as_str().unwrap().to_string();
    (r.body, secret)
}

/// One input steered to PROCESSED, with metadata the payload must carry.
async fn submit_one(api: &Api) -> String {
    let body = json!({"workflow": {"id": batchproof::mock::profile::DEFAULT_WORKFLOW}, "inputs": [
        {"file": {"url": "https://files.test/big.pdf"}, "metadata": {"customer": "acme", "x-batchproof-mock": "PROCESSED"}}
    ]});
    let r = api.post("/workflow_runs/batch", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["batchId"].as_str().unwrap().to_string()
}

async fn first(capture: &Capture) -> Captured {
    let got = capture.wait_for(1, SECOND).await;
    assert!(!got.is_empty(), "no delivery reached {}", capture.url());
    got[0].clone()
}

fn verifies(secret: &str, d: &Captured) -> bool {
    let now = chrono::Utc::now().timestamp();
    signing::verify(
        secret,
        d.timestamp.as_deref(),
        d.signature.as_deref(),
        &d.body,
        now,
        signing::MAX_AGE_SECS,
    )
    .is_ok()
}

/// A GET without any header, as a receiver fetching a presigned URL makes it.
async fn fetch(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_endpoint_gets_a_signed_url_to_the_payload_a_json_endpoint_gets() {
    let mock = common::start(common::fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    let (plain, by_url, big_threshold) = (
        Capture::start(0).await,
        Capture::start(0).await,
        Capture::start(0).await,
    );
    let (_, _) = register(&api, &plain.url(), json!({"payload": {"format": "json"}})).await;
    let options = json!({"payload": {"format": "url", "urlThresholdBytes": 0}, "headers": {"X-Team": "billing"}});
    let (created, secret) = register(&api, &by_url.url(), options).await;
    assert_eq!(
        created["advancedOptions"],
        json!({"payload": {"format": "url", "urlThresholdBytes": 0}, "headers": {"x-team": "billing"}}),
        "the endpoint echoes its advancedOptions"
    );
    let huge = json!({"payload": {"format": "url", "urlThresholdBytes": 10_000_000}});
    register(&api, &big_threshold.url(), huge).await;

    let batch = submit_one(&api).await;
    let (plain, got) = (first(&plain).await, first(&by_url).await);
    let payload = &got.json["payload"];
    assert_eq!(payload["object"], "signed_data_url", "{}", got.json);
    assert_eq!(payload["id"], plain.json["payload"]["id"]);
    assert_eq!(
        payload["metadata"],
        json!({"customer": "acme", "x-batchproof-mock": "PROCESSED"})
    );
    assert_eq!(got.json["eventType"], "workflow_run.completed");
    assert!(verifies(&secret, &got), "the body with the URL is signed");
    assert_eq!(got.headers["x-team"], "billing", "the custom header came");

    let url = payload["data"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/_mock/signed/", mock.url())),
        "{url}"
    );
    // Valid one hour of mock time: 3.6 s at time scale 1000.
    let expires: i64 = url.split("expires=").nth(1).unwrap()[..13].parse().unwrap();
    let left = expires - chrono::Utc::now().timestamp_millis();
    assert!((0..=3_600).contains(&left), "{left} ms left");
    let (status, text) = fetch(url).await;
    assert_eq!(status, 200, "{text}");
    let full: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        full, plain.json["payload"],
        "the URL serves the json payload"
    );
    assert_eq!(full["status"], "PROCESSED");
    assert_eq!(full["batchId"], batch.as_str());
    assert_eq!(full["metadata"]["customer"], "acme");

    // Edited: the signature, the expiry, the token. Each is refused with a plain 403.
    let sig = url.split("signature=").nth(1).unwrap();
    let flipped = if sig.ends_with('0') { "1" } else { "0" };
    let tampered = [
        format!("{}{flipped}", &url[..url.len() - 1]),
        url.replace(
            &format!("expires={expires}"),
            &format!("expires={}", expires + 3_600_000),
        ),
        url.replacen("/_mock/signed/", "/_mock/signed/x", 1),
        url.split('?').next().unwrap().to_string(),
    ];
    for bad in tampered {
        let (status, text) = fetch(&bad).await;
        assert_eq!(status, 403, "{bad}: {text}");
        assert!(!text.is_empty() && serde_json::from_str::<Value>(&text).is_err());
    }

    let kept = first(&big_threshold).await;
    assert_eq!(
        kept.json["payload"], plain.json["payload"],
        "under the threshold: json"
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_attempt_gets_a_fresh_url_and_urls_expire_in_mock_time() {
    let mut profile = common::fast_profile();
    // One minute of mock time: 60 ms at time scale 1000.
    profile.webhooks.signed_url.ttl = Dur::from_secs(60);
    let mock = common::start(profile).await;
    let api = Api::new(&mock.url(), V2026);
    let receiver = Capture::start(1).await;
    register(&api, &receiver.url(), json!({"payload": {"format": "url"}})).await;
    submit_one(&api).await;
    let accepted = first(&receiver).await;
    let refused = receiver.refused_deliveries.lock().unwrap()[0].clone();
    assert_eq!(accepted.json["eventId"], refused.json["eventId"]);
    let (a, r) = (
        accepted.json["payload"]["data"].as_str().unwrap(),
        refused.json["payload"]["data"].as_str().unwrap(),
    );
    assert_ne!(a, r, "a retry carries a URL of its own");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, text) = fetch(a).await;
    assert_eq!((status, text.as_str()), (403, "request has expired"));
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_advanced_options_get_the_versions_own_400() {
    let mock = common::start(common::fast_profile()).await;
    for version in [V2026, V2024] {
        let api = Api::new(&mock.url(), version);
        let base =
            json!({"url": "http://127.0.0.1:9/hook", "enabledEvents": [], "apiVersion": V2026});
        let mut missing = base.clone();
        missing.as_object_mut().unwrap().remove("apiVersion");
        let reference = api.post("/webhook_endpoints", &missing).await;
        for options in [
            json!({"payload": {"format": "xml"}}),
            json!({"payload": {"format": "url", "urlThresholdBytes": "big"}}),
            json!({"headers": {"x-extend-request-signature": "forged"}}),
        ] {
            let mut body = base.clone();
            body["advancedOptions"] = options.clone();
            let r = api.post("/webhook_endpoints", &body).await;
            assert_eq!(r.status, reference.status, "{options}: {}", r.body);
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(
                keys(&r.body),
                keys(&reference.body),
                "{version}: {}",
                r.body
            );
            assert!(r.body.to_string().contains("advancedOptions"), "{}", r.body);
        }
    }
    mock.shutdown().await;
}

/// The fenced block of mock/README.md that opens with `fence`.
fn readme_block(fence: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/README.md"))
            .unwrap();
    let start = readme.find(fence).expect("the block is in mock/README.md") + fence.len();
    let len = readme[start..].find("```").expect("a closed block");
    readme[start..start + len].to_string()
}

/// The official Python SDK: `verify_and_parse(..., allow_signed_url=True)` on a real
/// delivery, then `fetch_signed_payload_sync` over plain http to the mock; then
/// mock/README.md's snippet on the same delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_fetches_the_signed_payload() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.venv/bin/python");
    assert!(
        python.exists(),
        "tests/.venv is missing: run `bash tests/sdk/setup.sh` (scripts/test.sh and .ci/run do)"
    );
    let mut profile = common::fast_profile();
    // Ten hours of mock time: 36 s, for a Python start-up on a busy machine.
    profile.webhooks.signed_url.ttl = Dur::from_secs(36_000);
    let mock = common::start(profile).await;
    let api = Api::new(&mock.url(), V2026);
    let receiver = Capture::start(0).await;
    let (_, secret) = register(&api, &receiver.url(), json!({"payload": {"format": "url"}})).await;
    let batch = submit_one(&api).await;
    let got = first(&receiver).await;
    let headers: serde_json::Map<String, Value> = got
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("delivery.json");
    let delivery = json!({"body": String::from_utf8(got.body.to_vec()).unwrap(), "headers": headers, "secret": secret, "batchId": batch});
    std::fs::write(&case, delivery.to_string()).unwrap();
    let snippet = dir.path().join("readme_snippet.py");
    std::fs::write(&snippet, readme_block("```python signed-url\n")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/signed_url.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(&case).arg(&snippet);
    for proxy in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
    ] {
        cmd.env_remove(proxy);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("python starts"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("SDK signed URL check passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    mock.shutdown().await;
}
