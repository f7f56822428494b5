//! `batchproof mock`: serve the stateful mock until Ctrl-C or SIGTERM.

use batchproof::mock::{MockServer, Profile};
use batchproof::run::exit;

use super::signals::stop_signal;

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
        None => Profile::default(),
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
