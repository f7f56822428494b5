//! The live progress line of a run: bars on a terminal, log lines otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ProgressMode;
use crate::metrics::HttpMetrics;
use crate::observe::{BatchOutcome, Ledger};

pub(crate) fn spawn_progress(
    mode: ProgressMode,
    ledger: Arc<Mutex<Ledger>>,
    metrics: Arc<Mutex<HttpMetrics>>,
    in_flight: Arc<AtomicU64>,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mode = match mode {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bars,
        ProgressMode::Auto => ProgressMode::Lines,
        m => m,
    };
    if mode == ProgressMode::None {
        return None;
    }
    Some(tokio::spawn(async move {
        let bar = (mode == ProgressMode::Bars).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        let period = if bar.is_some() {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        };
        let started = Instant::now();
        let mut last = (Instant::now(), 0u64, 0u64);
        let mut next = Instant::now() + period;
        loop {
            // Wakes often enough that a finished run does not wait out a whole period
            // (five seconds in lines mode) before it can exit.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let finished = done.load(Ordering::Relaxed);
            if !finished && Instant::now() < next {
                continue;
            }
            next = Instant::now() + period;
            let (accepted, runs, seen, webhooks) = {
                let l = ledger.lock().expect("ledger");
                let accepted = l
                    .batches()
                    .iter()
                    .filter(|b| matches!(b.outcome, BatchOutcome::Accepted { .. }))
                    .count() as u64;
                let runs: u64 = l
                    .batches()
                    .iter()
                    .filter(|b| matches!(b.outcome, BatchOutcome::Accepted { .. }))
                    .map(|b| b.inputs as u64)
                    .sum();
                let seen = runs - l.outstanding();
                (accepted, runs, seen, l.webhooks().received)
            };
            let errors = metrics.lock().expect("metrics").errors;
            let dt = last.0.elapsed().as_secs_f64().max(1e-3);
            let (batch_rate, run_rate) = (
                (accepted - last.1.min(accepted)) as f64 / dt,
                (seen - last.2.min(seen)) as f64 / dt,
            );
            last = (Instant::now(), accepted, seen);
            let line = format!(
                "[{:>5.1}s] batches {accepted} ({batch_rate:.1}/s, {} in flight) · runs {seen}/{runs} finished ({run_rate:.0}/s) · webhooks {webhooks} · http errors {errors}",
                started.elapsed().as_secs_f64(),
                in_flight.load(Ordering::Relaxed)
            );
            match &bar {
                Some(b) => b.set_message(line),
                None => tracing::info!("{line}"),
            }
            if finished {
                if let Some(b) = bar {
                    b.finish_and_clear();
                }
                return;
            }
        }
    }))
}
