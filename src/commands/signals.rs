//! Signals belong to the command line: the first Ctrl-C or SIGTERM asks the run to stop
//! and write its partial report; a second one exits at once.

use batchproof::run::exit;
use tokio::sync::watch;

/// A stop signal for the library: turns to `Some(reason)` on the first Ctrl-C or SIGTERM.
/// The handlers are registered before this returns, so no signal is missed while the run
/// starts.
pub fn stop_on_signal() -> watch::Receiver<Option<String>> {
    let (tx, rx) = watch::channel(None);
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
                    let _ = stop.send(Some(reason.into()));
                    // A second signal means "now": leave at once. Report files are only
                    // ever renamed into place whole, so none is left truncated.
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    eprintln!("second signal: exiting without finishing the report");
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
