//! Progress of long work (key generation, rendering, writing), shown on a terminal only.
//!
//! A first build of 200 clusters with RSA-4096 keys runs for minutes; silence for that long
//! reads as a hang. The library reports through [`Progress`], which costs nothing when
//! [`Silent`]; the command line passes a [`Bar`] that draws on standard error when it is a
//! terminal and stays hidden otherwise (pipes, CI logs, tests), so no output stream a script
//! reads ever carries it.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where a stage of long work reports its steps. Implementations must be cheap: `step` is
/// called once per key, cluster or file, from several threads while rendering.
pub trait Progress: Sync + std::fmt::Debug {
    /// A stage of `total` steps begins (the previous one, if any, is over).
    fn stage(&self, _name: &str, _total: usize) {}
    /// One step of the current stage is done.
    fn step(&self) {}
    /// The work is over: anything drawn is cleared.
    fn done(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {}

/// A progress bar on standard error, drawn only when it is a terminal.
#[derive(Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar on standard error, hidden unless it is a terminal (and `TERM` is not `dumb`).
    pub fn stderr() -> Bar {
        let terminal =
            std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg:<22} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Bar(bar)
    }
}

impl Progress for Bar {
    fn stage(&self, name: &str, total: usize) {
        // A stage after `done` starts the bar again.
        self.0.reset();
        self.0.set_message(name.to_string());
        self.0.set_length(total as u64);
        self.0.set_position(0);
        self.0.enable_steady_tick(Duration::from_millis(120));
    }

    fn step(&self) {
        self.0.inc(1);
    }

    fn done(&self) {
        self.0.finish_and_clear();
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
