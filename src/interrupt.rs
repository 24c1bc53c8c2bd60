//! Ctrl-C and SIGTERM: stop at once, except in the middle of a write that must not be cut.
//!
//! Most of what meshc does can be abandoned at any instant: nothing is written until the end,
//! and the output tree is written staged. A few steps cannot: linking a new key into the PKI
//! store, swapping a cluster's directory during a rotation. Those run inside a [`Critical`]
//! section, where an interrupt is only recorded; the writer rolls back or completes, and the
//! command then checks [`requested`] and exits 130 itself. Outside any section an interrupt
//! ends the process at once with exit code 130.
//!
//! [`failpoint`] lets the tests kill the process between two steps of a write, the way a power
//! loss or a `kill -9` would, and check that the next run repairs what was left.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

/// The exit code of a command ended by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_CODE: u8 = 130;

/// An interrupt arrived (set from the signal handler).
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// No critical section is open: the handler ends the process (read from the signal handler).
static ARMED: AtomicBool = AtomicBool::new(true);
/// How many critical sections are open; `ARMED` is changed only with this lock held.
static OPEN: Mutex<usize> = Mutex::new(0);

/// Installs the SIGINT/SIGTERM handler once (idempotent). Outside a critical section an
/// interrupt ends the process at once with exit code 130; inside one it is only recorded.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // The exit goes first: it reads `ARMED` before the flag is set, so an interrupt
            // outside a section ends the process and one inside only sets the flag. A handler
            // that cannot be installed leaves the default action, which also ends the process.
            let _ = signal_hook::flag::register_conditional_shutdown(
                signal,
                i32::from(EXIT_CODE),
                &ARMED,
            );
            let _ = signal_hook::flag::register(signal, &REQUESTED);
        }
    });
}

/// A critical section: while any `Critical` is alive, SIGINT/SIGTERM only set a flag.
///
/// Dropping the last one re-arms the handler but does not exit, even when an interrupt arrived
/// meanwhile: the caller finishes or rolls back and checks [`requested`].
#[derive(Debug)]
pub struct Critical {
    _private: (),
}

impl Critical {
    #[must_use = "the section ends when the value is dropped"]
    pub fn enter() -> Critical {
        let mut open = OPEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Disarmed before the count says so: there is no instant at which a section is open
        // and the handler would still end the process.
        ARMED.store(false, Ordering::SeqCst);
        *open += 1;
        Critical { _private: () }
    }
}

impl Drop for Critical {
    fn drop(&mut self) {
        let mut open = OPEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *open = open.saturating_sub(1);
        if *open == 0 {
            ARMED.store(true, Ordering::SeqCst);
        }
    }
}

/// Whether an interrupt arrived (since install).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Test hook: when the environment variable MESHC_FAILPOINT equals `name`, the process aborts
/// right here (`std::process::abort`, like a SIGKILL: no destructors, no cleanup). Costs one
/// cached env lookup.
///
/// `MESHC_FAILPOINT=NAME:sleep-MS` instead pauses MS milliseconds at that point, after saying so
/// on standard error (`failpoint NAME: sleeping MS ms`), so that a test can send a signal while
/// the process is known to be there.
pub fn failpoint(name: &str) {
    static SET: OnceLock<Option<String>> = OnceLock::new();
    let Some(set) = SET.get_or_init(|| std::env::var("MESHC_FAILPOINT").ok()) else {
        return;
    };
    if set == name {
        std::process::abort();
    }
    if let Some((at, ms)) = set.rsplit_once(":sleep-")
        && at == name
        && let Ok(ms) = ms.parse::<u64>()
    {
        eprintln!("failpoint {name}: sleeping {ms} ms");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sections_rearm_only_when_the_last_one_ends() {
        let outer = Critical::enter();
        let inner = Critical::enter();
        assert!(!ARMED.load(Ordering::SeqCst));
        drop(inner);
        // Other tests may hold sections of their own, so only the outer one is known here.
        assert!(!ARMED.load(Ordering::SeqCst));
        drop(outer);
    }
}
