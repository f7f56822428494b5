//! The `batchproof` binary: parse the command line, call into the library, map the outcome
//! to the documented exit code.

use std::process::ExitCode;

use clap::Parser;

use batchproof::cli::{Cli, Command, LogFormat};
use batchproof::mock::{MockServer, Profile};
use batchproof::run::{self, exit};

// Batch bodies are ~100-200 KB each and short-lived: glibc serves such sizes with a fresh
// mmap (and page faults) per allocation, which measurably slowed submission; mimalloc
// reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ABORTED);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Mock {
                bind,
                profile,
                time_scale,
                seed,
            } => serve_mock(bind, profile, time_scale, seed).await,
            Command::Validate { files } => run::validate_files(&files),
            Command::Run {
                scenario,
                target,
                token_env,
                out,
                progress,
                mock_profile,
                shard,
            } => {
                let opts = run::RunOptions {
                    scenario,
                    target,
                    token_env,
                    out,
                    progress: progress.into(),
                    mock_profile,
                    shard,
                };
                run::run(opts).await
            }
            Command::Report {
                from_journal: Some(dir),
                ..
            } => finish(batchproof::resume::report_from_journal(&dir)),
            Command::Report {
                report,
                format,
                out,
                ..
            } => batchproof::files::render(
                &report.expect("clap requires REPORT without --from-journal"),
                format,
                out.as_deref(),
            ),
            Command::Resume { dir, token_env } => {
                finish(batchproof::resume::resume(&dir, &token_env).await)
            }
            Command::Compare {
                base,
                new,
                tolerance,
                min_delta,
                out,
            } => batchproof::files::compare(&base, &new, &tolerance, &min_delta, out.as_deref()),
            Command::Merge { reports, out } => batchproof::files::merge(&reports, &out),
            Command::Checks { format } => {
                print!(
                    "{}",
                    batchproof::checks::listing(format == batchproof::cli::ListFormat::Json)
                );
                exit::PASSED
            }
        }
    });
    ExitCode::from(code)
}

/// Prints a rebuilt or resumed report's summary and files; maps it to its exit code.
fn finish(
    result: Result<(batchproof::report::Report, Vec<std::path::PathBuf>), (u8, String)>,
) -> u8 {
    use batchproof::report::Format;
    match result {
        Ok((report, paths)) => {
            if let Ok(text) = batchproof::report::console::Console.render(&report) {
                println!("{text}");
            }
            for p in &paths {
                println!("report: {}", p.display());
            }
            exit::for_report(&report)
        }
        Err((code, message)) => {
            eprintln!("error: {message}");
            code
        }
    }
}

async fn serve_mock(
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

/// Ctrl-C, or SIGTERM (how process managers and CI stop things). The handlers are
/// registered when this is called, not when the future is first polled, so a signal that
/// arrives while the server is starting is not lost (nor fatal).
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
