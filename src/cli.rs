//! The command line: arguments into a plain value (clap), then one `match` on the command.
//!
//! Exit codes are a contract (CLI.md), defined once in [`Exit`]: 0 success, 1 differences,
//! 2 invalid topology, 3 environment error. Diagnostics go to standard error, machine output
//! (JSON, the schema) to standard output.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::compiler::{self, Checked};
use crate::diagnostic;

/// Compile one declarative multi-cluster Istio topology into per-cluster manifests.
#[derive(Debug, Parser)]
#[command(name = "meshc", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a topology and report every problem at once; writes nothing.
    Validate {
        /// The topology file.
        topology: PathBuf,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Treat warnings as errors (exit 2 when there are any).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print the topology JSON Schema (the same as schema/topology.schema.json).
    Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// The process exit codes, as CLI.md defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Differences = 1,
    Invalid = 2,
    Environment = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Parses the process arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors are invalid input; --help and --version are successes.
            return if e.use_stderr() {
                Exit::Invalid
            } else {
                Exit::Success
            }
            .into();
        }
    };
    execute(cli.command).into()
}

fn execute(command: Command) -> Exit {
    match command {
        Command::Validate {
            topology,
            format,
            deny_warnings,
        } => validate(&topology, format, deny_warnings),
        Command::Schema => {
            print_stdout(crate::schema::schema_text());
            Exit::Success
        }
    }
}

fn validate(path: &std::path::Path, format: Format, deny_warnings: bool) -> Exit {
    let checked = match compiler::check_file(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Environment;
        }
    };
    let (errors, warnings) = diagnostic::counts(&checked.diagnostics);
    let valid = errors == 0 && !(deny_warnings && warnings > 0);
    report(&checked, format, deny_warnings, valid);
    if valid { Exit::Success } else { Exit::Invalid }
}

/// Prints diagnostics (and, for a clean human run, a one-line summary of the topology).
fn report(checked: &Checked, format: Format, deny_warnings: bool, valid: bool) {
    match format {
        Format::Json => print_stdout(&diagnostic::render_json(
            &checked.diagnostics,
            Some(&checked.source),
        )),
        Format::Human => {
            let color = diagnostic::use_color(diagnostic::stderr_is_terminal());
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(
                diagnostic::render_human(&checked.diagnostics, &checked.source, color).as_bytes(),
            );
            if !checked.diagnostics.is_empty() {
                let _ = writeln!(
                    err,
                    "{}",
                    diagnostic::summary_line(
                        &checked.diagnostics,
                        &checked.source.name,
                        deny_warnings
                    )
                );
            }
            if valid && let Some(model) = &checked.model {
                let t = &model.topology;
                let plural = |n: usize, one: &str, many: &str| {
                    format!("{n} {}", if n == 1 { one } else { many })
                };
                print_stdout(&format!(
                    "{}: valid: {}, {}, {}, {}, {}\n",
                    checked.source.name,
                    plural(t.meshes.len(), "mesh", "meshes"),
                    plural(t.networks.len(), "network", "networks"),
                    plural(t.clusters.len(), "cluster", "clusters"),
                    plural(t.services.len(), "service", "services"),
                    plural(
                        t.destination_rules.len(),
                        "destinationRule",
                        "destinationRules"
                    ),
                ));
            }
        }
    }
}

fn print_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`meshc schema | head`) is not an error worth a panic.
    let _ = out.write_all(s.as_bytes()).and_then(|()| out.flush());
}
