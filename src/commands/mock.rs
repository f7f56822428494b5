//! `batchproof mock`: serve the stateful mock until Ctrl-C or SIGTERM.

use batchproof::mock::{MockServer, Profile};
use batchproof::run::exit;

use super::signals::stop_signal;

/// The profile served without `--profile`: batches drain over seconds, as client
/// developers meet them in production.
pub const LOCAL_PROFILE: &str = include_str!("../../mock/local.yaml");

pub async fn serve(
    bind: std::net::SocketAddr,
    profile: Option<std::path::PathBuf>,
    time_scale: Option<f64>,
    seed: Option<u64>,
) -> u8 {
    let mut profile = match profile {
        Some(path) => match Profile::load(&path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INVALID;
            }
        },
        // Built in, so an installed binary serves it from anywhere.
        None => match Profile::from_text("mock/local.yaml (built in)", LOCAL_PROFILE) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::ABORTED;
            }
        },
    };
    if let Some(ts) = time_scale {
        profile.time_scale = ts;
    }
    if let Some(seed) = seed {
        profile.seed = seed;
    }
    let stop = stop_signal();
    let server = match MockServer::start(profile, bind).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::ABORTED;
        }
    };
    eprintln!(
        "batchproof mock serving {} (token: {}, workflow: {}); Ctrl-C to stop",
        server.url(),
        batchproof::mock::profile::DEFAULT_TOKEN,
        batchproof::mock::profile::DEFAULT_WORKFLOW
    );
    stop.await;
    eprintln!("stopping the mock");
    server.shutdown().await;
    0
}
