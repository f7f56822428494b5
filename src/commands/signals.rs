//! Signals belong to the command line: the first Ctrl-C or SIGTERM asks the run to stop
//! and write its partial report; a second one exits at once.

use crate::commands::stdout::tell;

use batchproof::run::exit;
use tokio::sync::watch;

/// A repeat of the first signal within this long is the same signal delivered twice.
const ECHO: std::time::Duration = std::time::Duration::from_secs(1);

/// A stop signal for the library: turns to `Some(reason)` on the first Ctrl-C or SIGTERM.
/// The handlers are registered before this returns, so no signal is missed while the run
/// starts.
pub fn stop_on_signal() -> watch::Receiver<Option<String>> {
    stop_on_signal_or_after(None)
}

/// As [`stop_on_signal`], and also after `max` (`--max-duration`): the run then writes
/// its partial report, marked incomplete, as on Ctrl-C.
pub fn stop_on_signal_or_after(
    max: Option<std::time::Duration>,
) -> watch::Receiver<Option<String>> {
    let (tx, rx) = watch::channel(None);
    if let Some(max) = max {
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(max).await;
            tx.send_if_modified(|s| {
                s.is_none() && {
                    *s = Some(format!(
                        "it reached --max-duration {}",
                        batchproof::config::format_duration(max)
                    ));
                    true
                }
            });
        });
    }
    watch_signals(tx);
    rx
}

/// Listens for Ctrl-C and SIGTERM; turns `stop` on with the reason.
fn watch_signals(stop: watch::Sender<Option<String>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (int, term) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        );
        tokio::spawn(async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => {
                    let reason = tokio::select! {
                        _ = int.recv() => "interrupted (SIGINT)",
                        _ = term.recv() => "terminated (SIGTERM)",
                    };
                    let first = tokio::time::Instant::now();
                    let _ = stop.send(Some(reason.into()));
                    // A second signal means "now": leave at once. Report files are only
                    // ever renamed into place whole, so none is left truncated. But one
                    // signal often arrives twice — `timeout` and Kubernetes signal the
                    // process and its group, a `| tee` pipeline's group gets it as well —
                    // so a repeat within ECHO is the same signal, not a second one.
                    loop {
                        tokio::select! {
                            _ = int.recv() => {}
                            _ = term.recv() => {}
                        }
                        if first.elapsed() >= ECHO {
                            break;
                        }
                    }
                    tell!("second signal: exiting without finishing the report");
                    std::process::exit(i32::from(exit::ABORTED));
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                    let _ = stop.send(Some("interrupted (SIGINT)".into()));
                }
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(Some("interrupted".into()));
    });
}

/// Ctrl-C, or SIGTERM (how process managers and CI stop things). The handlers are
/// registered when this is called, not when the future is first polled, so a signal that
/// arrives while the server is starting is not lost (nor fatal).
pub fn stop_signal() -> impl std::future::Future<Output = ()> {
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
