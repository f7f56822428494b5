//! `batchproof mock`: serve the stateful mock until Ctrl-C or SIGTERM.

use crate::commands::stdout::tell;

use batchproof::mock::{MockServer, Profile};
use batchproof::run::exit;

use super::signals::stop_signal;

/// The profile served without `--profile`: batches drain over seconds, as client
/// developers meet them in production.
pub const LOCAL_PROFILE: &str = include_str!("../../mock/local.yaml");

/// The profile at `path`, or the built-in one; the exit code on an error (printed).
pub fn load_profile(
    path: Option<&std::path::Path>,
    builtin_name: &str,
    builtin: &str,
) -> Result<Profile, u8> {
    match path {
        Some(path) => Profile::load(path).map_err(|e| {
            tell!("error: {e}");
            exit::INVALID
        }),
        // Built in, so an installed binary serves it from anywhere.
        None => Profile::from_text(builtin_name, builtin).map_err(|e| {
            tell!("error: {e}");
            exit::ABORTED
        }),
    }
}

pub async fn serve(
    bind: String,
    profile: Option<std::path::PathBuf>,
    time_scale: Option<f64>,
    seed: Option<u64>,
    grade: Option<std::path::PathBuf>,
) -> u8 {
    // Grading a client means putting adversities in its way: the sparring profile,
    // unless another is named.
    let (name, builtin) = match grade {
        Some(_) => (
            "mock/sparring.yaml (built in)",
            super::grade::SPARRING_PROFILE,
        ),
        None => ("mock/local.yaml (built in)", LOCAL_PROFILE),
    };
    let profile_name = profile
        .as_deref()
        .map_or(name.to_string(), |p| p.display().to_string());
    let mut profile = match load_profile(profile.as_deref(), name, builtin) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if grade.is_some() {
        profile.sparring.record = true;
        let s = &profile.sparring;
        let none = [&s.batches, &s.reads].iter().all(|a| {
            a.throttled.is_empty()
                && a.throttled_silent.is_empty()
                && a.server_error.is_empty()
                && a.accepted_then_failed.is_empty()
        }) && s.forge.is_empty();
        if none {
            tell!(
                "warning: this profile has no `sparring:` adversities: the rules on retries, backoff, resubmission and forged deliveries will not be put to the test (mock/sparring.yaml has them)"
            );
        }
    }
    if let Some(ts) = time_scale {
        profile.time_scale = ts;
    }
    if let Some(seed) = seed {
        profile.seed = seed;
    }
    // The flags are checked as the profile's own fields are: a bad one is a usage error.
    if let Err((message, fix)) = profile.validate() {
        tell!("error: {message} (from --time-scale or the profile)\n  fix: {fix}");
        return exit::INVALID;
    }
    let bind = match resolve(&bind).await {
        Ok(addr) => addr,
        Err(why) => {
            tell!(
                "error: --bind `{bind}`: {why}\n  fix: write HOST:PORT, e.g. 127.0.0.1:8080 or localhost:8080"
            );
            return exit::INVALID;
        }
    };
    let stop = stop_signal();
    // The banner names the workflows a client may use, and which can need review.
    let workflows = profile
        .workflows
        .iter()
        .map(|w| {
            if w.review {
                format!("{} (with a review step)", w.id)
            } else {
                w.id.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let in_the_way = adversities(&profile);
    let server = match MockServer::start(profile, bind).await {
        Ok(s) => s,
        Err(e) => {
            tell!("error: {e:#}");
            return exit::ABORTED;
        }
    };
    tell!(
        "batchproof mock serving {} (profile {profile_name}; token: {}, workflows: {workflows}); Ctrl-C to stop",
        server.url(),
        batchproof::mock::profile::DEFAULT_TOKEN,
    );
    tell!("  {in_the_way}");
    if let Some(dir) = &grade {
        tell!(
            "grading the client: live at {}/_mock/grade, the client report goes to {} on shutdown",
            server.url(),
            dir.display()
        );
    }
    stop.await;
    tell!("stopping the mock");
    let observed = server.observations();
    let tolerances = server.tolerances();
    server.shutdown().await;
    if let (Some(dir), Some(obs)) = (grade, observed) {
        let grade = batchproof::grade::Grade::judge(&obs, &tolerances, None);
        match batchproof::grade::report::write_all(&grade, &dir) {
            Ok(_) => {
                tell!("{}", batchproof::grade::report::console(&grade).trim_end());
                tell!("client report in {}", dir.display());
                return if grade.passed { 0 } else { exit::FAILED };
            }
            Err(e) => {
                tell!(
                    "error: writing the client report into {}: {e:#}",
                    dir.display()
                );
                return exit::ABORTED;
            }
        }
    }
    0
}

/// `--bind HOST:PORT`: an address as written, or a host name resolved (its first address,
/// IPv4 first, since clients that say `localhost` mostly mean 127.0.0.1).
pub async fn resolve(bind: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(addr) = bind.parse() {
        return Ok(addr);
    }
    if !bind.contains(':') {
        return Err("no port".into());
    }
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(bind)
        .await
        .map_err(|e| format!("cannot resolve it: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| "the host name resolves to no address".into())
}

/// One line on what the served profile puts in a client's way, so a developer is not
/// surprised by a 429 or a 500 on their first request.
fn adversities(p: &Profile) -> String {
    let mut out = Vec::new();
    let l = &p.limits;
    if let Some(rps) = l.get_rps.or(l.write_rps).or(l.run_rps) {
        out.push(format!("rate limits of {rps} requests/s per category"));
    } else {
        out.push("no rate limits".to_string());
    }
    let ordinals = |v: &[u64]| {
        v.iter()
            .map(|n| format!("#{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let b = &p.sparring.batches;
    for (what, at) in [
        ("throttled", &b.throttled),
        ("throttled without Retry-After", &b.throttled_silent),
        ("answered 500", &b.server_error),
        ("accepted, then answered 500", &b.accepted_then_failed),
    ] {
        if !at.is_empty() {
            out.push(format!("batch POST {} {what}", ordinals(at)));
        }
    }
    if !p.sparring.forge.is_empty() {
        out.push("forged deliveries after the first genuine one".into());
    }
    out.push(if p.processing.review.after.is_none() {
        "NEEDS_REVIEW runs wait for POST /_mock/runs/{id}/review".into()
    } else {
        "NEEDS_REVIEW runs are reviewed on the profile's schedule".into()
    });
    out.join("; ")
}
