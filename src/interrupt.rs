//! Interrupts (placeholder until the signal handler lands): critical sections and failpoints.

/// Installs the handler (nothing yet).
pub fn install() {}

/// A critical section.
#[derive(Debug)]
pub struct Critical(());

impl Critical {
    pub fn enter() -> Critical {
        Critical(())
    }
}

/// Whether an interrupt arrived.
pub fn requested() -> bool {
    false
}

/// Test hook: aborts when `MESHC_FAILPOINT` names this point.
pub fn failpoint(name: &str) {
    if std::env::var("MESHC_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}
