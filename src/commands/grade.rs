//! `batchproof grade -- COMMAND…`: the mock as a sparring partner for a client
//! integration. It starts the mock (the sparring profile unless `--profile`), runs the
//! client's own command pointed at it, waits for the webhook deliveries in flight, judges
//! what the client did by the client rules and writes the client report.

use crate::commands::stdout::{say, sayln, tell};

use std::path::PathBuf;
use std::time::{Duration, Instant};

use batchproof::config::parse_duration;
use batchproof::grade::{ClientExit, Grade, report};
use batchproof::mock::MockServer;
use batchproof::run::exit;

use super::mock::{load_profile, resolve};
use super::signals::stop_signal;
use crate::cli::GradeArgs;

/// The profile `grade` serves without `--profile`.
pub const SPARRING_PROFILE: &str = include_str!("../../mock/sparring.yaml");

fn duration(flag: &str, text: &str) -> Result<Duration, u8> {
    parse_duration(text).map_err(|e| {
        tell!("error: --{flag} `{text}`: {e}\n  fix: write e.g. 10m, 90s or 500ms");
        exit::INVALID
    })
}

pub async fn grade(o: GradeArgs) -> u8 {
    match grade_inner(o).await {
        Ok(code) | Err(code) => code,
    }
}

async fn grade_inner(o: GradeArgs) -> Result<u8, u8> {
    let timeout = duration("timeout", &o.timeout)?;
    if timeout.is_zero() {
        tell!(
            "error: --timeout 0s leaves the client no time\n  fix: give it the time it needs, e.g. --timeout 10m"
        );
        return Err(exit::INVALID);
    }
    let settle = duration("settle", &o.settle)?;
    let mut profile = load_profile(
        o.profile.as_deref(),
        "mock/sparring.yaml (built in)",
        SPARRING_PROFILE,
    )?;
    profile.sparring.record = true;
    let bind = resolve(&o.bind).await.map_err(|why| {
        tell!(
            "error: --bind `{}`: {why}\n  fix: write HOST:PORT, e.g. 127.0.0.1:0",
            o.bind
        );
        exit::INVALID
    })?;
    let workflow = profile
        .workflows
        .first()
        .map(|w| w.id.clone())
        .unwrap_or_default();
    let token = profile.auth.tokens.first().cloned().unwrap_or_default();
    let server = MockServer::start(profile, bind).await.map_err(|e| {
        tell!("error: {e:#}");
        exit::ABORTED
    })?;
    let url = server.url();
    let shown = shown(&o.command);
    tell!(
        "batchproof grade: mock serving {url} (token {token}, workflow {workflow}); running `{shown}`"
    );
    let mut child = tokio::process::Command::new(&o.command[0])
        .args(&o.command[1..])
        .env("EXTEND_API_KEY", &token)
        .env("EXTEND_BASE_URL", &url)
        .env("BATCHPROOF_MOCK_URL", &url)
        .env("BATCHPROOF_WORKFLOW_ID", &workflow)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            tell!(
                "error: cannot run `{}`: {e}\n  fix: give the client's command after `--`, e.g. batchproof grade -- python client.py",
                o.command[0]
            );
            exit::ABORTED
        })?;
    let started = Instant::now();
    let stop = stop_signal();
    let (code, signal, timed_out, interrupted) = tokio::select! {
        status = tokio::time::timeout(timeout, child.wait()) => match status {
            Ok(Ok(s)) => {
                use std::os::unix::process::ExitStatusExt;
                (s.code(), s.signal(), false, false)
            }
            Ok(Err(_)) => (None, None, false, false),
            Err(_) => {
                let _ = child.kill().await;
                (None, None, true, false)
            }
        },
        _ = stop => {
            let _ = child.kill().await;
            (None, None, false, true)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let ended_ms = server.elapsed_ms();
    // Deliveries in flight when the client ends are still the client's to answer.
    let settled = Instant::now();
    while server.deliveries_pending() > 0 && settled.elapsed() < settle && !interrupted {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut obs = server.observations().unwrap_or_default();
    obs.client_ended_ms = Some(ended_ms);
    let tolerances = server.tolerances();
    server.shutdown().await;
    let client = ClientExit {
        command: shown,
        code,
        signal,
        timed_out,
        seconds,
    };
    let grade = Grade::judge(&obs, &tolerances, Some(client));
    let out = o.out.unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "grade-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    });
    let written = report::write_all(&grade, &out).map_err(|e| {
        tell!(
            "error: writing the client report into {}: {e:#}",
            out.display()
        );
        exit::ABORTED
    })?;
    say!("{}", report::console(&grade));
    for f in written {
        sayln!("  {}", f.display());
    }
    Ok(if interrupted {
        exit::ABORTED
    } else if grade.passed {
        0
    } else {
        exit::FAILED
    })
}

/// The command as a shell would take it back: arguments with spaces or quotes quoted.
fn shown(command: &[String]) -> String {
    command
        .iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
