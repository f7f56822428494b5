//! Hostile HTTP against the mock and the webhook receiver: deeply nested and truncated
//! JSON, wrong content types, a 100 KB header, bodies over the limit, a client trickling
//! bytes, hundreds of idle connections. Each gets a clear answer (the API's error body
//! where there is one) or a closed connection — and other clients are served throughout.

mod common;

use std::time::{Duration, Instant};

use batchproof::webhook::receiver::{MAX_DELIVERY_BYTES, Receiver};
use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A well-behaved request must still be answered, and quickly.
async fn still_serving(api: &Api) {
    let started = Instant::now();
    let r = api.get("/workflow_runs?maxPageSize=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served in {:?}",
        started.elapsed()
    );
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

#[tokio::test]
async fn malformed_bodies_get_the_api_error_body_never_a_500() {
    let mock = start(fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("deeply nested", deep.into_bytes(), "application/json"),
        (
            "truncated",
            br#"{"workflow": {"id": "workflow_batchproof_demo"}, "inputs": [{"fi"#.to_vec(),
            "application/json",
        ),
        (
            "not JSON",
            b"\x00\xff\xfe garbage".to_vec(),
            "application/json",
        ),
        ("empty", Vec::new(), "application/json"),
        (
            "a form",
            b"workflow=x&inputs=y".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        (
            "JSON of the wrong type",
            b"[1, 2, 3]".to_vec(),
            "application/json",
        ),
        (
            "a number where an object goes",
            br#"{"workflow": 7, "inputs": "no"}"#.to_vec(),
            "text/plain",
        ),
    ];
    for (what, body, ctype) in cases {
        let r = api
            .http
            .post(format!("{}/workflow_runs/batch", mock.url()))
            .header("authorization", "Bearer sk_batchproof_local")
            .header("x-extend-api-version", V2026)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!((400..500).contains(&status), "{what}: HTTP {status}");
        assert_eq!(v["code"], "INVALID_REQUEST", "{what}: {v}");
        assert_eq!(v["retryable"], false, "{what}: {v}");
    }
    still_serving(&api).await;
}

#[tokio::test]
async fn a_huge_header_is_refused_and_the_mock_keeps_serving() {
    let mock = start(fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    let mut s = TcpStream::connect(addr(&mock.url())).await.unwrap();
    let req = format!(
        "GET /workflow_runs HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let _ = s.write_all(req.as_bytes()).await;
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer or a close, not a hang")
        .unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(
        n == 0 || head.starts_with("HTTP/1.1 431") || head.starts_with("HTTP/1.1 400"),
        "{head}"
    );
    still_serving(&api).await;
}

#[tokio::test]
async fn a_trickling_client_and_many_idle_connections_do_not_block_others() {
    let mock = start(fast_profile()).await;
    let api = Api::new(&mock.url(), V2026);
    let target = addr(&mock.url());
    // 300 idle connections, and one client sending its request a byte at a time.
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(&target).await.unwrap());
    }
    let slow_target = target.clone();
    let slow = tokio::spawn(async move {
        let mut s = TcpStream::connect(slow_target).await.unwrap();
        for b in
            b"POST /workflow_runs/batch HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"wor"
        {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    // Meanwhile: a real batch and twenty list requests, all answered promptly.
    let batch = api.submit(10, "meanwhile").await;
    assert!(batch.starts_with("batch_"));
    for _ in 0..20 {
        still_serving(&api).await;
    }
    slow.abort();
    drop(idle);
    still_serving(&api).await;
}

#[tokio::test]
async fn the_receiver_refuses_oversized_deliveries_and_keeps_receiving() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(batchproof::webhook::receiver::QUEUE);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), tx, 0)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let big = vec![b'x'; MAX_DELIVERY_BYTES + 1];
    let r = http.post(receiver.url()).body(big).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // A client trickling a delivery does not hold the others up.
    let target = receiver.addr.to_string();
    let slow = tokio::spawn(async move {
        let mut s = TcpStream::connect(target).await.unwrap();
        for b in b"POST /webhooks HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\n{" {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    let started = Instant::now();
    let r = http.post(receiver.url()).body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    let d = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &d.body[..],
        b"{}",
        "only the whole delivery came through; the oversized one never did"
    );
    slow.abort();
    receiver.stop().await;
}
