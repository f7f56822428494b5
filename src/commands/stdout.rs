//! Writing to stdout for a reader that may leave early (`batchproof compare A B | head -1`).
//! Rust ignores SIGPIPE, so `print!` panics when the pipe is closed; these writes stop
//! quietly instead, and the command goes on to its own exit code (its files are still
//! written). SIGPIPE is not reset to its default: commands that talk to a target must
//! not die from a peer closing a socket.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout's reader has gone: later writes are skipped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout; a closed pipe (or any other write error) ends the command's
/// output silently, since there is no one left to tell.
pub fn write(args: std::fmt::Arguments) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out.write_fmt(args).and_then(|()| out.flush()).is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes raw bytes (e.g. a generated completion script) to stdout, as [`write`].
pub fn write_bytes(bytes: &[u8]) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes `args` to stderr; a closed stderr (`2>&1 | head -2`) is ignored rather than a
/// panic: the run goes on to write its report and exit with its own code.
pub fn write_err(args: std::fmt::Arguments) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.flush());
}

/// `print!` that never panics on a closed stdout.
macro_rules! say {
    ($($arg:tt)*) => { $crate::commands::stdout::write(format_args!($($arg)*)) };
}

/// `println!` that never panics on a closed stdout.
macro_rules! sayln {
    () => { $crate::commands::stdout::write(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::commands::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics on a closed stderr.
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::commands::stdout::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {say, sayln, tell};
