//! A zero-work batch endpoint for submission benchmarks: reads the whole request body and
//! answers `{"batchId": …}` at once; `POST /hook` is a zero-work webhook receiver.
//! Usage: `zero_endpoint 127.0.0.1:18181`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18181".into());
    let app = Router::new()
        .route(
            "/workflow_runs/batch",
            post(|body: Bytes| async move {
                // Touch the body so it is really received, as a real server must.
                let n = body.len();
                (
                    [("content-type", "application/json")],
                    format!("{{\"batchId\":\"batch_{n:08}\"}}"),
                )
            }),
        )
        .route(
            "/hook",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("zero endpoint on {addr}");
    axum::serve(listener, app).await.expect("serve");
}
