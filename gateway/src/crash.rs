//! Crash points for testing crash-safe resume.
//!
//! When `CELLOS_CRASH_AFTER=N` is set, the N-th call of [`point`] aborts the process on the spot (no
//! destructors, no flushing: the effect of `kill -9`). The campaign runner calls it between writing a
//! journal entry and sending, between sending and the reply, between the reply and recording it, between
//! committing measurements and committing the iteration, and after each reading. With
//! `CELLOS_CRASH_AT=text` as well, only the points whose label contains `text` count.
//!
//! The points exist only with the `crash-points` feature, which the gateway's tests switch on; in any
//! other build [`point`] is empty and the variables are ignored.

#[cfg(feature = "crash-points")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "crash-points")]
static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
#[cfg(feature = "crash-points")]
static LABEL: OnceLock<Option<String>> = OnceLock::new();
static COUNT: AtomicU64 = AtomicU64::new(0);

/// A crash point; `label` says where, for the message.
#[cfg(feature = "crash-points")]
pub fn point(label: &str) {
    let limit = *LIMIT.get_or_init(|| std::env::var("CELLOS_CRASH_AFTER").ok().and_then(|s| s.parse().ok()));
    if let Some(n) = limit {
        if let Some(want) = LABEL.get_or_init(|| std::env::var("CELLOS_CRASH_AT").ok())
            && !label.contains(want.as_str())
        {
            return;
        }
        let k = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        if k == n {
            eprintln!("crash point {k} ({label}): aborting");
            std::process::abort();
        }
    }
}

/// A crash point; without the `crash-points` feature, nothing.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_label: &str) {}

/// Crash points passed so far.
pub fn passed() -> u64 {
    COUNT.load(Ordering::SeqCst)
}
