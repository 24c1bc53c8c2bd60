//! The command line: arguments into a plain value (clap), then one `match` on the command.
//!
//! Exit codes are a contract (CLI.md), defined once in [`Exit`]: 0 success, 1 differences
//! (for `explain`: no endpoint reachable), 2 invalid topology, 3 environment error, 130
//! interrupted (SIGINT or SIGTERM). Diagnostics go to standard error, machine output (JSON, the
//! schema, explain's answer) to standard output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use time::OffsetDateTime;

use crate::compile::{self, Compiled, Options, compile};
use crate::compiler::{self, Checked};
use crate::diagnostic::{self, Diagnostic, Severity};
use crate::emit::Summary;
use crate::output::Scope;
use crate::pki::{self, Origin, Store};

/// The exit codes, one rule for every command, shown in every `--help` (CLI.md).
const EXIT_CODES: &str = "\
Exit codes:
  0    success (diff, build --check: no differences)
  1    differences found (diff, build --check); no endpoint reachable (explain); a
       certificate expires within pki status --fail-within DAYS
  2    invalid input: the topology, a file it names (token, CA, key), or the arguments
  3    environment: a file named on the command line (the topology, --istio-crds,
       --templates) cannot be read, the PKI store is damaged, OUT cannot be written
  130  interrupted (SIGINT, SIGTERM): what was being written is whole or untouched";

/// Compile one declarative multi-cluster Istio topology into per-cluster manifests.
#[derive(Debug, Parser)]
#[command(name = "meshc", version, about, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a topology and report every problem at once; writes nothing.
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// The topology file.
        topology: PathBuf,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Treat warnings as errors (exit 2 when there are any).
        #[arg(long)]
        deny_warnings: bool,
        #[command(flatten)]
        crds: CrdArgs,
        /// Only read: a reader token file inside the store is refused, as `build` refuses it.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Validate, then write one manifest directory per cluster (and any missing key material).
    #[command(after_help = EXIT_CODES)]
    Build {
        /// The topology file.
        topology: PathBuf,
        /// The output directory.
        #[arg(short, long, value_name = "OUT")]
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// Refuse to create key material: every root and intermediate must already be stored.
        #[arg(long)]
        locked: bool,
        /// Write nothing; exit 1 when OUT differs from what the topology compiles to.
        #[arg(long)]
        check: bool,
        /// Build although a mesh's root differs entirely from the one OUT was built with (a new
        /// or replaced store): every cluster's cacerts changes at once. Without it such a build
        /// is refused; `meshc pki rotate-root` replaces a root in phases, without downtime.
        #[arg(long)]
        replace_root: bool,
        /// A directory of templates that replace the built-in ones of the same name.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
        #[command(flatten)]
        crds: CrdArgs,
    },
    /// What a build would change, object by object: against OUT, or between two topologies.
    ///
    /// Secret values are never printed: a changed Secret lists its changed keys, with the
    /// subject, issuer, SANs, notAfter and fingerprint of certificates. Exit 0 when nothing
    /// differs, 1 when something does.
    #[command(group(clap::ArgGroup::new("against").required(true).args(["out", "from"])))]
    #[command(after_help = EXIT_CODES)]
    Diff {
        /// The topology file (the new side).
        topology: PathBuf,
        /// Compare with the output directory on disk.
        #[arg(short, long, value_name = "OUT")]
        out: Option<PathBuf>,
        /// Compare with what another topology compiles to (e.g. the one on the main branch),
        /// read as if it were in TOPOLOGY's place: its relative paths and its PKI store are
        /// TOPOLOGY's.
        #[arg(long, value_name = "OLD_TOPOLOGY")]
        from: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
        /// How to print the differences.
        #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
        format: DiffFormat,
        /// A directory of templates that replace the built-in ones of the same name.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        #[command(flatten)]
        crds: CrdArgs,
    },
    /// Inspect or rotate the key material of the PKI store.
    #[command(subcommand)]
    #[command(after_help = EXIT_CODES)]
    Pki(PkiCommand),
    /// Where requests from one source to one service go: priority levels, groups and shares.
    ///
    /// Computed offline as istiod computes it for the source proxy (Istio's locality load
    /// balancing); every endpoint is taken to be healthy unless `--down` removes it. Exit 0 when
    /// an endpoint is reachable, 1 when none is.
    #[command(after_help = EXIT_CODES)]
    Explain {
        /// The topology file.
        topology: PathBuf,
        /// The destination service, as NAMESPACE/NAME.
        #[arg(long, value_name = "NS/NAME")]
        service: String,
        /// The source proxy's cluster, and optionally its zone (default: the cluster's first).
        #[arg(long, value_name = "CLUSTER[/ZONE]")]
        from: String,
        /// The service port [default: its first].
        #[arg(long, value_name = "P")]
        port: Option<u32>,
        /// A subset of the service's DestinationRule.
        #[arg(long, value_name = "S")]
        subset: Option<String>,
        /// A cluster or locality (`region`, `region/zone`) whose endpoints are down; repeatable.
        #[arg(long, value_name = "CLUSTER|LOCALITY")]
        down: Vec<String>,
        /// How to print the answer.
        #[arg(long, value_enum, default_value_t = ExplainFormat::Human)]
        format: ExplainFormat,
    },
    /// Print the topology JSON Schema (the same as schema/topology.schema.json).
    #[command(after_help = EXIT_CODES)]
    Schema,
    /// Draw the topology: meshes, networks, clusters and their roles, control-plane and
    /// discovery edges, east-west gateways.
    ///
    /// Mermaid renders in a GitHub or GitLab markdown block (```mermaid); dot is for Graphviz
    /// (`meshc graph topology.yaml --format dot | dot -Tsvg > mesh.svg`). An invalid topology
    /// prints its diagnostics and exits 2, as `validate` does.
    #[command(after_help = EXIT_CODES)]
    Graph {
        /// The topology file.
        topology: PathBuf,
        /// The drawing's language.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Start a GitOps repository: a starter topology for a deployment model, .gitignore, CI.
    ///
    /// Writes a commented topology.yaml that validates and builds as written, a .gitignore that
    /// keeps the PKI store (pki/), private keys and reader tokens (secrets/) out of Git, and the
    /// GitHub Actions workflow of docs/ci.md (.github/workflows/meshc.yaml).
    ///
    /// Never overwrites: when any of the three files exists, nothing is written and the exit
    /// code is 3. DIR is created when missing.
    #[command(after_help = EXIT_CODES)]
    Init {
        /// The deployment model of the starter topology.
        #[arg(long, value_enum)]
        model: crate::init::Model,
        /// The repository directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print a shell completion script.
    ///
    /// For example `meshc completions bash > /etc/bash_completion.d/meshc`, or
    /// `meshc completions zsh > "${fpath[1]}/_meshc"`.
    #[command(after_help = EXIT_CODES)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (roff).
    ///
    /// For example `meshc man > meshc.1; man ./meshc.1`.
    #[command(after_help = EXIT_CODES)]
    Man {
        /// Write one page per command instead (meshc.1, meshc-build.1, meshc-pki-rotate.1, ...)
        /// into DIR, created when missing; pages of the same name are replaced.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// A mermaid flowchart (GitHub and GitLab render it in markdown).
    Mermaid,
    /// A Graphviz digraph.
    Dot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    /// Aligned columns, one block per priority level.
    Human,
    /// One JSON object (docs/explain.md).
    Json,
    /// Tables, for a pull-request comment or a runbook.
    Markdown,
}

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Per mesh and cluster: algorithm, subject, notAfter, days left, chain check.
    #[command(after_help = EXIT_CODES)]
    Status {
        /// The topology file.
        topology: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// How to print the table.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Exit 1 when a certificate (a root, an intermediate, or a rotation's new ones)
        /// expires within DAYS days.
        #[arg(long, value_name = "DAYS")]
        fail_within: Option<i64>,
    },
    /// Start, advance or abort a phased rotation of a mesh's root: add the new root to every
    /// cluster's trust, switch every cluster's signer to it, remove the old root.
    ///
    /// The phase lives in the PKI store and `meshc build` renders it. `--advance` checks that
    /// OUT holds the current phase (as `build --check` would) and, before the last phase, that
    /// one workload-certificate lifetime (24 h) has passed since the signers switched.
    #[command(after_help = EXIT_CODES)]
    RotateRoot {
        /// The topology file.
        topology: PathBuf,
        /// The mesh whose root is rotated.
        #[arg(long, value_name = "M")]
        mesh: String,
        #[command(flatten)]
        store: StoreArgs,
        /// The output directory holding the current phase (required with `--advance`).
        #[arg(short, long, value_name = "OUT")]
        out: Option<PathBuf>,
        /// Move on to the next phase (or finish after the last).
        #[arg(long, conflicts_with = "abort", requires = "out")]
        advance: bool,
        /// Abandon the rotation (phase 1 only): the next build writes the old root alone.
        #[arg(long)]
        abort: bool,
        /// With `--advance`: do not wait for workload certificates to be re-issued.
        #[arg(long, requires = "advance")]
        force: bool,
        /// A directory of templates that replace the built-in ones of the same name (as the
        /// build that wrote OUT used).
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
    },
    /// Issue a new intermediate CA for one cluster, signed by the same root.
    #[command(after_help = EXIT_CODES)]
    Rotate {
        /// The topology file.
        topology: PathBuf,
        /// The cluster whose intermediate is replaced.
        #[arg(long, value_name = "NAME")]
        cluster: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct CrdArgs {
    /// Also check DestinationRules and `istioConfig` specs against these CRDs (Istio's
    /// crd-all.gen.yaml, a Gateway API bundle); repeatable.
    #[arg(long = "istio-crds", value_name = "FILE")]
    pub istio_crds: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The PKI store [default: pki/ beside the topology file].
    #[arg(long, value_name = "DIR")]
    pub pki: Option<PathBuf>,
    /// Whether the command writes the store (set by the command, not an option): a writer
    /// first repairs what a run cut short left there, a reader refuses such leftovers.
    #[arg(skip)]
    pub writes: bool,
}

impl StoreArgs {
    /// The store directory; something else at its path (a file) is an environment error.
    fn open(&self, checked: &Checked) -> Result<Store, Fail> {
        let store = self.store(checked);
        if std::fs::metadata(&store.dir).is_ok_and(|m| !m.is_dir()) {
            return Err(Fail::Environment(format!(
                "the PKI store {} is not a directory",
                store.dir.display()
            )));
        }
        Ok(store)
    }

    /// Before the store is read: a writer repairs what a run cut short left in it (and says
    /// so); a reader, which must not write, refuses a leftover that changes what it would read.
    fn prepare(&self, store: &Store) -> Result<(), Fail> {
        if !self.writes {
            return store.check_leftovers().map_err(Fail::Environment);
        }
        for line in store.repair()? {
            eprintln!("note: {line}");
        }
        if crate::interrupt::requested() {
            return Err(Fail::Interrupted(format!(
                "the PKI store {} was repaired first",
                store.dir.display()
            )));
        }
        Ok(())
    }

    fn store(&self, checked: &Checked) -> Store {
        Store::new(self.dir_for(&checked.source.path))
    }

    /// The store's directory for the topology at `topology`: `--pki`, else `pki/` beside it.
    fn dir_for(&self, topology: &Path) -> PathBuf {
        if let Some(dir) = &self.pki {
            return dir.clone();
        }
        match topology.parent() {
            Some(p) if !p.as_os_str().is_empty() && p != Path::new(".") => p.join("pki"),
            _ => PathBuf::from("pki"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// A unified diff per changed object (coloured on a terminal, unless NO_COLOR is set).
    Human,
    /// Added, changed and removed objects per cluster.
    Brief,
    /// A pull-request comment: a summary table and one collapsible section per cluster.
    Markdown,
    /// `[{cluster, kind, namespace, name, change, paths, apiVersion, file}]`.
    Json,
}

/// The process exit codes, as CLI.md defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// `diff`, `build --check`: something differs; `explain`: no endpoint is reachable.
    Differences = 1,
    Invalid = 2,
    Environment = 3,
    /// SIGINT or SIGTERM; [`crate::interrupt`] exits with it directly outside store writes.
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Why a command stopped. Everything a command cannot finish ends here and is printed in one
/// place, [`run`].
#[derive(Debug)]
pub enum Fail {
    /// Already reported (diagnostics printed): exit with this code.
    Reported(Exit),
    /// An environment problem (exit 3), printed as `error: ...`.
    Environment(String),
    /// SIGINT or SIGTERM (exit 130), printed as `interrupted: ...`.
    Interrupted(String),
    /// Arguments that cannot be acted on (exit 2, as clap's usage errors), printed as
    /// `error: ...`.
    Usage(String),
}

impl From<Exit> for Fail {
    fn from(exit: Exit) -> Fail {
        Fail::Reported(exit)
    }
}

/// A store write stopped by an interrupt (rolled back) is exit 130; one that failed, 3.
impl From<pki::WriteError> for Fail {
    fn from(e: pki::WriteError) -> Fail {
        match e {
            pki::WriteError::Interrupted => Fail::Interrupted(e.to_string()),
            pki::WriteError::Failed(_) => Fail::Environment(e.to_string()),
        }
    }
}

impl From<crate::emit::EmitError> for Fail {
    fn from(e: crate::emit::EmitError) -> Fail {
        match e {
            crate::emit::EmitError::Interrupted { .. } => Fail::Interrupted(e.to_string()),
            e => Fail::Environment(e.to_string()),
        }
    }
}

/// Parses the process arguments and runs the command.
pub fn run() -> ExitCode {
    crate::interrupt::install();
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
    match execute(cli.command) {
        Ok(exit) | Err(Fail::Reported(exit)) => exit.into(),
        Err(Fail::Environment(message)) => {
            eprintln!("error: {message}");
            Exit::Environment.into()
        }
        Err(Fail::Interrupted(message)) => {
            eprintln!("interrupted: {message}");
            Exit::Interrupted.into()
        }
        Err(Fail::Usage(message)) => {
            eprintln!("error: {message}");
            Exit::Invalid.into()
        }
    }
}

fn execute(command: Command) -> Result<Exit, Fail> {
    let bar = crate::progress::Bar::stderr();
    match command {
        Command::Validate {
            topology,
            format,
            deny_warnings,
            crds,
            store,
        } => validate(&topology, format, deny_warnings, &crds.istio_crds, &store),
        Command::Build {
            topology,
            out,
            store,
            locked,
            check,
            replace_root,
            templates,
            deny_warnings,
            crds,
        } => build(&BuildArgs {
            topology: &topology,
            out: &out,
            replace_root,
            store: &StoreArgs {
                writes: !check,
                ..store
            },
            check,
            common: CompileArgs {
                progress: &bar,
                templates: templates.as_deref(),
                out: Some(&out),
                istio_crds: &crds.istio_crds,
                deny_warnings,
                locked,
            },
        }),
        Command::Diff {
            topology,
            out,
            from,
            store,
            format,
            templates,
            crds,
        } => diff(&DiffArgs {
            topology: &topology,
            out: out.as_deref(),
            from: from.as_deref(),
            store: &store,
            format,
            common: CompileArgs {
                progress: &bar,
                templates: templates.as_deref(),
                out: out.as_deref(),
                istio_crds: &crds.istio_crds,
                deny_warnings: false,
                locked: false,
            },
        }),
        Command::Pki(PkiCommand::Status {
            topology,
            store,
            format,
            fail_within,
        }) => pki_status(&topology, &store, format, fail_within),
        Command::Pki(PkiCommand::RotateRoot {
            topology,
            mesh,
            store,
            out,
            advance,
            abort,
            force,
            templates,
        }) => crate::rotate_root::run(&crate::rotate_root::Args {
            topology: &topology,
            mesh: &mesh,
            store: &StoreArgs {
                writes: true,
                ..store
            },
            out: out.as_deref(),
            step: if advance {
                crate::rotate_root::Step::Advance { force }
            } else if abort {
                crate::rotate_root::Step::Abort
            } else {
                crate::rotate_root::Step::Start
            },
            templates: templates.as_deref(),
        }),
        Command::Pki(PkiCommand::Rotate {
            topology,
            cluster,
            store,
        }) => pki_rotate(
            &topology,
            &cluster,
            &StoreArgs {
                writes: true,
                ..store
            },
        ),
        Command::Explain {
            topology,
            service,
            from,
            port,
            subset,
            down,
            format,
        } => explain(
            &topology,
            &crate::explain::Query {
                service,
                from,
                port,
                subset,
                down,
            },
            format,
        ),
        Command::Schema => {
            print_stdout(crate::schema::schema_text());
            Ok(Exit::Success)
        }
        Command::Graph { topology, format } => graph(&topology, format),
        Command::Init { model, dir } => init(model, &dir),
        Command::Completions { shell } => {
            print_stdout(&completions(shell));
            Ok(Exit::Success)
        }
        Command::Man { out_dir: None } => {
            print_stdout(&man_page()?);
            Ok(Exit::Success)
        }
        Command::Man { out_dir: Some(dir) } => {
            use clap::CommandFactory as _;
            std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir))
                .map_err(|e| Fail::Environment(format!("cannot write {}: {e}", dir.display())))?;
            print_stdout(&format!(
                "{}: meshc.1 and one page per command\n",
                dir.display()
            ));
            Ok(Exit::Success)
        }
    }
}

/// The shape of a valid topology, drawn; an invalid one prints its diagnostics (exit 2).
fn graph(path: &Path, format: GraphFormat) -> Result<Exit, Fail> {
    let checked = load(path)?;
    let Some(model) = checked.model.as_ref().filter(|_| !checked.has_errors()) else {
        print_diagnostics(&checked, false);
        return Ok(Exit::Invalid);
    };
    let shape = crate::graph::shape(model, &crate::plan::plan(model));
    let text = match format {
        GraphFormat::Mermaid => crate::graph::mermaid(&shape),
        GraphFormat::Dot => crate::graph::dot(&shape),
    };
    if format == GraphFormat::Mermaid && !crate::graph::mermaid_renders(&shape, &text) {
        eprintln!("note: {}", crate::graph::too_large(&shape, &text));
    }
    print_stdout(&text);
    Ok(Exit::Success)
}

fn init(model: crate::init::Model, dir: &Path) -> Result<Exit, Fail> {
    let written = crate::init::write(dir, model).map_err(|e| Fail::Environment(e.to_string()))?;
    let mut text = String::new();
    for path in &written {
        let shown = path.strip_prefix(".").unwrap_or(path);
        let _ = writeln!(text, "created {}", shown.display());
    }
    if dir != Path::new(".") {
        let _ = writeln!(text, "next: cd {}", dir.display());
    }
    let _ = write!(
        text,
        "next: edit {0} (every field is explained there), then\n  meshc validate {0}\n  meshc build {0} -o out/\nand commit everything but pki/ and secrets/ (.gitignore keeps them out)\n",
        crate::init::TOPOLOGY
    );
    print_stdout(&text);
    Ok(Exit::Success)
}

fn completions(shell: Shell) -> String {
    use clap::CommandFactory as _;
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "meshc", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn man_page() -> Result<String, Fail> {
    use clap::CommandFactory as _;
    let mut buf = Vec::new();
    // One page: the subcommands are listed with their summaries (`--out-dir` writes theirs).
    clap_mangen::Man::new(Cli::command().disable_help_subcommand(true))
        .render(&mut buf)
        .map_err(|e| Fail::Environment(format!("cannot render the manual page: {e}")))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn load(path: &Path) -> Result<Checked, Fail> {
    compiler::check_file(path).map_err(|e| Fail::Environment(e.to_string()))
}

fn validate(
    path: &Path,
    format: Format,
    deny_warnings: bool,
    istio_crds: &[PathBuf],
    store: &StoreArgs,
) -> Result<Exit, Fail> {
    let mut checked = load(path)?;
    check_crds(&mut checked, istio_crds)?;
    // Everything the topology names is part of it: validate reads the files a build reads
    // (bring-your-own roots, reader tokens, API server CAs, license files) and reports what a
    // build would report about them. It reads nothing else, and writes nothing.
    if let (Some(model), Some(tree)) = (&checked.model, &checked.tree) {
        let base_dir = checked.source.base_dir();
        let mut findings = pki::check_named_files(model, base_dir, OffsetDateTime::now_utc());
        if !checked.has_errors() {
            let plans = crate::plan::plan(model);
            let store = store.store(&checked);
            let inputs = crate::inputs::read_inputs(model, &plans, base_dir, None, &store.dir);
            findings.extend(inputs.findings);
        }
        let extra: Vec<Diagnostic> = findings.iter().map(|f| f.to_diagnostic(tree)).collect();
        merge(&mut checked, extra);
    }
    let (errors, warnings) = diagnostic::counts(&checked.diagnostics);
    let valid = errors == 0 && !(deny_warnings && warnings > 0);
    report(&checked, format, deny_warnings, valid);
    Ok(if valid { Exit::Success } else { Exit::Invalid })
}

/// `--istio-crds`: checks the topology's Istio resources against the CRD files and adds what
/// they refuse to the diagnostics. A CRD file that cannot be used is an environment error.
fn check_crds(checked: &mut Checked, files: &[PathBuf]) -> Result<(), Fail> {
    if files.is_empty() {
        return Ok(());
    }
    let found = crate::crds::Crds::load(files).and_then(|crds| {
        for note in crds.notes() {
            eprintln!("note: {note}");
        }
        compiler::check_crds(checked, &crds)
    });
    found.map_err(|e| Fail::Environment(e.to_string()))
}

pub(crate) fn merge(checked: &mut Checked, extra: Vec<Diagnostic>) {
    checked.diagnostics.extend(extra);
    diagnostic::sort(&mut checked.diagnostics);
    checked.diagnostics.dedup();
}

/// Prints diagnostics in human form with the closing summary line.
pub(crate) fn print_diagnostics(checked: &Checked, deny_warnings: bool) {
    if checked.diagnostics.is_empty() {
        return;
    }
    let color = diagnostic::use_color(diagnostic::stderr_is_terminal());
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(
        diagnostic::render_human(&checked.diagnostics, &checked.source, color).as_bytes(),
    );
    let _ = writeln!(
        err,
        "{}",
        diagnostic::summary_line(&checked.diagnostics, &checked.source.name, deny_warnings)
    );
}

/// Loads a topology that must be valid and opens its PKI store; on failure the diagnostics are
/// printed and the exit code returned. The model and tree are present on success.
///
/// With `in_place_of`, the topology is read as if it were that file: its relative paths and its
/// default store are resolved from there (`diff --from` reads an old topology from anywhere).
pub(crate) fn load_valid(
    topology: &Path,
    in_place_of: Option<&Path>,
    store: &StoreArgs,
    deny_warnings: bool,
) -> Result<(Checked, Store), Fail> {
    let mut checked = load(topology)?;
    if let Some(place) = in_place_of {
        checked.source.path = place.to_path_buf();
    }
    let opened = store.open(&checked)?;
    if checked.model.is_none() || checked.tree.is_none() || checked.has_errors() {
        print_diagnostics(&checked, deny_warnings);
        return Err(Fail::Reported(Exit::Invalid));
    }
    store.prepare(&opened)?;
    Ok((checked, opened))
}

/// Loads a valid topology (with the CRD check), opens its store and compiles it, printing the
/// diagnostics (warnings unless `quiet`). Errors in the topology, in the files it names or
/// with `--deny-warnings` are exit 2; a damaged store is exit 3.
pub(crate) fn load_and_compile(
    topology: &Path,
    in_place_of: Option<&Path>,
    store: &StoreArgs,
    common: &CompileArgs<'_>,
    quiet: bool,
) -> Result<(Checked, Store, Compiled), Fail> {
    // A store that is not there yet means keys to make: the random generator's first use
    // gathers entropy for tens of milliseconds (aws-lc's CPU-jitter source), so it starts now
    // and runs while the topology is read and checked.
    let _entropy = (!common.locked && !store.dir_for(topology).exists())
        .then(crate::pki::warm_up)
        .flatten();
    let (mut checked, store) = load_valid(topology, in_place_of, store, common.deny_warnings)?;
    check_crds(&mut checked, common.istio_crds)?;
    // load_valid let no error through: any error now is one the CRDs found.
    let crds_failed = checked.has_errors();
    if crds_failed {
        print_diagnostics(&checked, common.deny_warnings);
        return Err(Fail::Reported(Exit::Invalid));
    }
    if let Some(dir) = common.templates {
        let unmatched = crate::render::unmatched_overrides(dir)
            .map_err(|e| Fail::Environment(e.to_string()))?;
        if !unmatched.is_empty() && !quiet {
            let known: Vec<&str> = crate::render::template_names().collect();
            eprintln!(
                "warning: --templates {}: {} replace{} no built-in template, and {} unused\n  help: an override has the name of the template it replaces: {}",
                dir.display(),
                unmatched.join(", "),
                if unmatched.len() == 1 { "s" } else { "" },
                if unmatched.len() == 1 { "is" } else { "are" },
                known.join(", ")
            );
        }
    }
    let options = Options {
        templates: common.templates,
        out: common.out,
        locked: common.locked,
        now: OffsetDateTime::now_utc(),
        progress: common.progress,
    };
    let compiled = compile(&checked, &store, &options);
    // Diagnostics and summaries are printed on a clear line.
    common.progress.done();
    let (compiled, findings) = match compiled {
        Ok(compiled) => {
            let findings = compiled.findings.clone();
            (Some(compiled), findings)
        }
        Err(compile::Failure::Findings(findings)) => (None, findings),
        Err(compile::Failure::Invalid) => {
            print_diagnostics(&checked, common.deny_warnings);
            return Err(Fail::Reported(Exit::Invalid));
        }
        Err(compile::Failure::Environment(message)) => return Err(Fail::Environment(message)),
    };
    let failing = |origin: Origin| {
        findings
            .iter()
            .any(|f| f.origin == origin && f.code.severity() == Severity::Error)
    };
    let (topology_failed, store_failed) = (failing(Origin::Topology), failing(Origin::Store));
    if let Some(tree) = &checked.tree {
        let extra: Vec<Diagnostic> = findings.iter().map(|f| f.to_diagnostic(tree)).collect();
        merge(&mut checked, extra);
    }
    let warnings = diagnostic::counts(&checked.diagnostics).1;
    let failed = topology_failed || (common.deny_warnings && warnings > 0);
    if failed || store_failed || !quiet {
        print_diagnostics(&checked, common.deny_warnings);
    }
    if failed {
        return Err(Fail::Reported(Exit::Invalid));
    }
    match compiled {
        Some(compiled) if !store_failed => Ok((checked, store, compiled)),
        _ => Err(Fail::Environment(format!(
            "the PKI store {} is damaged: nothing was written",
            store.dir.display()
        ))),
    }
}

/// What `build` and `diff` share.
pub(crate) struct CompileArgs<'a> {
    /// Where compiling and writing report their steps (drawn on a terminal only).
    pub progress: &'a dyn crate::progress::Progress,
    pub templates: Option<&'a Path>,
    /// The output directory, which install commands name files relative to.
    pub out: Option<&'a Path>,
    pub istio_crds: &'a [PathBuf],
    pub deny_warnings: bool,
    pub locked: bool,
}

struct BuildArgs<'a> {
    topology: &'a Path,
    out: &'a Path,
    replace_root: bool,
    store: &'a StoreArgs,
    check: bool,
    common: CompileArgs<'a>,
}

/// How a scope's line of the emit summary names it.
fn scope_label(out: &Path, scope: &Scope) -> String {
    match scope {
        Scope::Cluster(c) => out.join(c).display().to_string(),
        Scope::Mesh(m) => format!("{} (mesh {m})", out.display()),
        Scope::Tree => format!("{} (top level)", out.display()),
    }
}

fn build(args: &BuildArgs<'_>) -> Result<Exit, Fail> {
    let store_dir = args.store.dir_for(args.topology);
    let inputs = crate::noop::Inputs {
        topology: args.topology,
        out: args.out,
        store: &store_dir,
        templates: args.common.templates,
        crds: args.common.istio_crds,
    };
    if !args.check
        && let Some(scopes) =
            crate::noop::unchanged(&inputs, OffsetDateTime::now_utc().unix_timestamp())
    {
        let mut lines = String::new();
        for (key, n) in &scopes {
            let scope = Scope::parse(key).unwrap_or(Scope::Tree);
            let _ = writeln!(
                lines,
                "{}: 0 created, 0 changed, 0 removed, {n} unchanged",
                scope_label(args.out, &scope)
            );
        }
        print_stdout(&lines);
        return Ok(Exit::Success);
    }
    let (checked, store, compiled) =
        load_and_compile(args.topology, None, args.store, &args.common, false)?;
    check_out_dir(args.out, &store.dir)?;
    if args.check {
        return check(args.out, &compiled);
    }
    // From here the tree may change: the no-op record no longer vouches for it.
    crate::noop::forget(args.out);
    crate::interrupt::failpoint("build:compiled");
    let recovery = crate::emit::recover(args.out)?;
    if recovery.rolled_forward || !recovery.removed.is_empty() {
        eprintln!(
            "note: {}: repaired what an interrupted build left ({}{} temporary files removed)",
            args.out.display(),
            if recovery.rolled_forward {
                "its renames finished, "
            } else {
                ""
            },
            recovery.removed.len()
        );
    }
    let plan = crate::emit::compare(args.out, &compiled.output, &compiled.stamp)?;
    if let Some(refusal) = rekey_refusal(args, &store, plan.rekeyed()) {
        return Err(refusal);
    }
    let replaced = !plan.rekeyed().is_empty();
    // Stage out/ first: an output directory that cannot be written costs no key.
    let (staged, unchanged) = if plan.is_noop() {
        (None, plan.summary().clone())
    } else {
        let staged = plan.stage(args.common.progress);
        args.common.progress.done();
        (Some(staged?), Summary::default())
    };
    if !compiled.new_material.is_empty() {
        store.add(&compiled.new_material)?;
        // One line per directory, naming the files made there (never their contents).
        let mut created: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        for f in &compiled.new_material {
            let dir = f.path.parent().map(Path::to_path_buf).unwrap_or_default();
            let name = f.path.file_name().map(|n| n.to_string_lossy().to_string());
            created.entry(dir).or_default().extend(name);
        }
        let mut text = String::new();
        for (dir, names) in created {
            let _ = writeln!(text, "{}: created {}", dir.display(), names.join(", "));
        }
        print_stdout(&text);
        // The material is stored; an interrupt that waited for that stops the build here.
        if crate::interrupt::requested() {
            return Err(Fail::Interrupted(format!(
                "the new key material is stored; {} was left as it was",
                args.out.display()
            )));
        }
    }
    let summary = match staged {
        Some(staged) => staged.commit()?,
        None => unchanged,
    };
    let mut lines = String::new();
    for (scope, c) in &summary.scopes {
        let _ = writeln!(
            lines,
            "{}: {} created, {} changed, {} removed, {} unchanged",
            scope_label(args.out, scope),
            c.created,
            c.changed,
            c.removed,
            c.unchanged
        );
    }
    print_stdout(&lines);
    if crate::interrupt::requested() {
        return Err(Fail::Interrupted(format!(
            "{} was completed before stopping",
            args.out.display()
        )));
    }
    // A clean build (not a diagnostic, not a replaced root) is one the next can skip.
    if let Some(model) = checked.model.as_ref()
        && checked.diagnostics.is_empty()
        && compiled.findings.is_empty()
        && !replaced
    {
        crate::noop::record(
            &inputs,
            crate::noop::named_files(model, checked.source.base_dir()),
            compiled.valid_until.unix_timestamp(),
            compiled
                .output
                .files
                .iter()
                .map(|(p, f)| (p.as_str(), f.scope.key())),
        );
    }
    Ok(Exit::Success)
}

/// Refuses an output directory that a build must not own: `/`, the home directory, or one
/// that overlaps the PKI store (a build removes the files it no longer writes, and `out/` is
/// committed to Git while the store holds private keys). Paths are compared resolved:
/// absolute, `..` and symbolic links followed as far as they exist.
fn check_out_dir(out: &Path, store: &Path) -> Result<(), Fail> {
    let (o, s) = (resolved(out), resolved(store));
    let home = std::env::var_os("HOME").map(|h| resolved(Path::new(&h)));
    let why = if o.parent().is_none() {
        Some("is the root directory".to_string())
    } else if home.as_ref().is_some_and(|h| *h == o) {
        Some("is the home directory".to_string())
    } else if o.starts_with(&s) {
        Some(format!("is inside the PKI store {}", store.display()))
    } else if s.starts_with(&o) {
        Some(format!(
            "holds the PKI store {}: its private keys would sit in the tree that is committed",
            store.display()
        ))
    } else {
        None
    };
    match why {
        Some(why) => Err(Fail::Usage(format!(
            "-o {} {why}\n  help: meshc owns the output directory (it removes the files it no longer writes): give it a directory of its own, such as `out/` beside the topology and apart from the PKI store",
            out.display()
        ))),
        None => Ok(()),
    }
}

/// `path` made absolute and normal: its longest existing ancestor canonicalized (symbolic
/// links followed), the rest appended with `.` and `..` resolved lexically.
fn resolved(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut base = absolute.as_path();
    let mut rest = Vec::new();
    let real = loop {
        if let Ok(real) = std::fs::canonicalize(base) {
            break real;
        }
        let Some(parent) = base.parent() else {
            break base.to_path_buf();
        };
        rest.push(
            base.file_name()
                .map_or_else(|| "..".into(), std::ffi::OsStr::to_os_string),
        );
        base = parent;
    };
    let mut out = real;
    for part in rest.iter().rev() {
        for c in Path::new(part).components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(n) => out.push(n),
                _ => {}
            }
        }
    }
    out
}

/// A build that would give a mesh a root unrelated to the one `out/` was built with is almost
/// always a lost store or a wrong `--pki`; applied, it breaks mTLS between every cluster.
fn rekey_refusal(
    args: &BuildArgs<'_>,
    store: &Store,
    rekeyed: &[crate::emit::Rekeyed],
) -> Option<Fail> {
    if rekeyed.is_empty() {
        return None;
    }
    let short = |set: &BTreeSet<String>| {
        set.iter()
            .map(|f| f.get(..23).unwrap_or(f).to_string() + "…")
            .collect::<Vec<_>>()
            .join(", ")
    };
    if args.replace_root {
        for r in rekeyed {
            eprintln!(
                "warning: mesh `{}`: replacing root {} with {} (--replace-root): clusters stop trusting each other until every one is updated",
                r.mesh,
                short(&r.before),
                short(&r.after)
            );
        }
        return None;
    }
    let mut text = String::new();
    for r in rekeyed {
        let _ = writeln!(
            text,
            "mesh `{}`: {} was built with root {}; the PKI store {} {}",
            r.mesh,
            args.out.display(),
            short(&r.before),
            store.dir.display(),
            if store.dir.exists() {
                format!("holds another, {}", short(&r.after))
            } else {
                "does not exist, so a new root would be made".to_string()
            }
        );
    }
    let _ = write!(
        text,
        "refusing to replace the root: applied, every cluster's mTLS would break until all are updated; nothing was written and no key was stored\n\
         help: restore the PKI store the tree was built with (or pass the right --pki); to replace the root anyway, rebuild with --replace-root; `meshc pki rotate-root` replaces a root in phases, without downtime"
    );
    Some(Fail::Environment(text))
}

/// `build --check`: exit 1 when a build would change anything (with the brief diff).
fn check(out: &Path, compiled: &Compiled) -> Result<Exit, Fail> {
    if let Some(left) = crate::emit::interrupted(out)? {
        eprintln!(
            "{}: stale: an interrupted build left {}; run `meshc build` to repair it",
            out.display(),
            left.display()
        );
        return Ok(Exit::Differences);
    }
    if !compiled.new_material.is_empty() {
        eprintln!(
            "{}: stale: the PKI store lacks material a build would create",
            out.display()
        );
        return Ok(Exit::Differences);
    }
    let plan = crate::emit::compare(out, &compiled.output, &compiled.stamp)?;
    if !plan.summary().changed() {
        print_stdout(&format!("{}: up to date\n", out.display()));
        return Ok(Exit::Success);
    }
    let wanted = compiled.output.files.iter().map(|(p, f)| (p, &f.scope));
    let files = crate::emit::read_tree(out, wanted)?;
    let report = crate::diff::compare(
        &crate::diff::Side::on_disk(files),
        &crate::diff::Side::rendered(&compiled.output, BTreeSet::new()),
    );
    eprint!("{}", crate::diff::brief(&report));
    eprintln!(
        "{}: stale: run `meshc build` and commit the result",
        out.display()
    );
    Ok(Exit::Differences)
}

struct DiffArgs<'a> {
    topology: &'a Path,
    out: Option<&'a Path>,
    from: Option<&'a Path>,
    store: &'a StoreArgs,
    format: DiffFormat,
    common: CompileArgs<'a>,
}

fn diff(args: &DiffArgs<'_>) -> Result<Exit, Fail> {
    let (new, new_shape) = compile_side(args.topology, None, args, false)?;
    // The old side's shape is known only when it is a topology: a tree on disk records none.
    let (old, old_shape) = match (args.out, args.from) {
        (Some(out), _) => {
            if let Some(left) = crate::emit::interrupted(out)? {
                eprintln!(
                    "warning: an interrupted build left {}; `meshc build` repairs it",
                    left.display()
                );
            }
            let wanted = new.files.iter().map(|(path, (scope, _))| (path, scope));
            let side = crate::diff::Side::on_disk(crate::emit::read_tree(out, wanted)?);
            (side, None)
        }
        (None, Some(from)) => {
            let (side, shape) = compile_side(from, Some(args.topology), args, true)?;
            (side, Some(shape))
        }
        (None, None) => return Ok(Exit::Invalid),
    };
    let report = crate::diff::compare(&old, &new);
    let text = match args.format {
        DiffFormat::Human => crate::diff::human(
            &report,
            diagnostic::use_color(std::io::IsTerminal::is_terminal(&std::io::stdout())),
        ),
        DiffFormat::Brief => crate::diff::brief(&report),
        DiffFormat::Markdown => {
            let section =
                old_shape.and_then(|old| crate::graph::markdown_section(&old, &new_shape));
            crate::diff::markdown_with(&report, section.as_deref())
        }
        DiffFormat::Json => crate::diff::json(&report),
    };
    print_stdout(&text);
    Ok(if report.has_changes() {
        Exit::Differences
    } else {
        Exit::Success
    })
}

/// What a topology compiles to, in memory, and its shape: nothing is written, to the store or
/// anywhere. Key material the store lacks is made for the rendering only and then dropped; the
/// clusters it is for are pending (their `cacerts` is new, its contents unknown until a build).
fn compile_side(
    topology: &Path,
    in_place_of: Option<&Path>,
    args: &DiffArgs<'_>,
    quiet: bool,
) -> Result<(crate::diff::Side, crate::graph::Shape), Fail> {
    let (checked, _, compiled) =
        load_and_compile(topology, in_place_of, args.store, &args.common, quiet)?;
    let shape = checked
        .model
        .as_ref()
        .map(|model| crate::graph::shape(model, &crate::plan::plan(model)))
        .unwrap_or_default();
    Ok((
        crate::diff::Side::rendered(&compiled.output, compiled.pending),
        shape,
    ))
}

fn pki_status(
    topology: &Path,
    store: &StoreArgs,
    format: Format,
    fail_within: Option<i64>,
) -> Result<Exit, Fail> {
    let now = OffsetDateTime::now_utc();
    let (mut checked, store) = load_valid(topology, None, store, false)?;
    let (Some(model), Some(tree)) = (&checked.model, &checked.tree) else {
        return Ok(Exit::Invalid);
    };
    let inspection = pki::inspect(model, &store, checked.source.base_dir(), now);
    let extra: Vec<Diagnostic> = inspection
        .findings
        .iter()
        .map(|f| f.to_diagnostic(tree))
        .collect();
    let rotations = rotation_lines(model, &inspection.material);
    merge(&mut checked, extra);
    match format {
        Format::Json => print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&inspection.rows).unwrap_or_default()
        )),
        Format::Human => {
            print_stdout(&status_table(&inspection.rows));
            print_stdout(&rotations);
        }
    }
    print_diagnostics(&checked, false);
    let expiring: Vec<&pki::StatusRow> = fail_within
        .map(|days| {
            inspection
                .rows
                .iter()
                .filter(|r| r.days_left.is_some_and(|d| d < days))
                .collect()
        })
        .unwrap_or_default();
    for r in &expiring {
        eprintln!(
            "{}/{}: expires in {} days ({}), within --fail-within {}",
            r.mesh,
            r.cluster.as_deref().unwrap_or("(root)"),
            r.days_left.unwrap_or_default(),
            r.not_after.as_deref().unwrap_or("-"),
            fail_within.unwrap_or_default()
        );
    }
    let failed = |origin: Origin| {
        inspection
            .findings
            .iter()
            .any(|f| f.origin == origin && f.code.severity() == Severity::Error)
    };
    Ok(if failed(Origin::Topology) {
        Exit::Invalid
    } else if failed(Origin::Store) {
        Exit::Environment
    } else if !expiring.is_empty() {
        Exit::Differences
    } else {
        Exit::Success
    })
}

/// One line per mesh whose root is being rotated: its phase, since when, and what is next.
fn rotation_lines(model: &crate::model::Model, material: &pki::Material) -> String {
    let mut text = String::new();
    for (&mi, r) in &material.rotations {
        let mesh = &model.topology.meshes[mi].name;
        let next = match r.wait_until() {
            Some(t) => format!("remove the old root after {}", pki::rfc3339(t)),
            None if r.phase == pki::Phase::RemoveOld => "finish".to_string(),
            None => "switch signers".to_string(),
        };
        let _ = writeln!(
            text,
            "{mesh}: root rotation in {} since {} (started {}); next: {next} (`meshc pki rotate-root --mesh {mesh} -o OUT --advance`)",
            r.phase,
            pki::rfc3339(r.phase_since),
            pki::rfc3339(r.started),
        );
    }
    text
}

fn status_table(rows: &[pki::StatusRow]) -> String {
    let header = [
        "MESH",
        "CLUSTER",
        "ALGORITHM",
        "SUBJECT",
        "NOT AFTER",
        "DAYS LEFT",
        "CHAIN",
    ];
    let dash = || "-".to_string();
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.mesh.clone(),
                r.cluster.clone().unwrap_or_else(|| "(root)".to_string()),
                r.algorithm.clone().unwrap_or_else(dash),
                r.subject.clone().unwrap_or_else(dash),
                r.not_after.clone().unwrap_or_else(dash),
                r.days_left.map_or_else(dash, |d| d.to_string()),
                r.chain.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |row: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_string));
    for row in &cells {
        line(row);
    }
    out
}

fn pki_rotate(topology: &Path, cluster: &str, store: &StoreArgs) -> Result<Exit, Fail> {
    let now = OffsetDateTime::now_utc();
    let (checked, store) = load_valid(topology, None, store, false)?;
    let (Some(model), Some(tree)) = (&checked.model, &checked.tree) else {
        return Ok(Exit::Invalid);
    };
    let Some(c) = model
        .topology
        .clusters
        .iter()
        .position(|x| x.name == cluster)
    else {
        let names: Vec<&str> = model
            .topology
            .clusters
            .iter()
            .map(|x| x.name.as_str())
            .collect();
        eprintln!(
            "error: no cluster `{cluster}` in {} (clusters: {})",
            checked.source.name,
            names.join(", ")
        );
        return Ok(Exit::Invalid);
    };
    let Some(mi) = model.clusters[c].mesh else {
        return Ok(Exit::Invalid);
    };
    // Only the root must be sound: rotation is how a damaged intermediate is repaired.
    let inspection = pki::inspect(model, &store, checked.source.base_dir(), now);
    let Some(root) = inspection.material.roots.get(&mi) else {
        let root_findings: Vec<Diagnostic> = inspection
            .findings
            .iter()
            .filter(|f| !f.at.to_string().starts_with("/clusters"))
            .map(|f| f.to_diagnostic(tree))
            .collect();
        let mut shown = Checked {
            source: checked.source.clone(),
            tree: None,
            model: None,
            diagnostics: checked.diagnostics.clone(),
        };
        merge(&mut shown, root_findings);
        print_diagnostics(&shown, false);
        if model.topology.meshes[mi].ca.root.is_some() {
            // A bring-your-own root that cannot sign is the topology's problem, as in build.
            return Ok(Exit::Invalid);
        }
        return Err(Fail::Environment(format!(
            "mesh `{}` has no usable root in {}: run `meshc build` first, or repair the root",
            model.topology.meshes[mi].name,
            store.dir.display()
        )));
    };
    if let Some(r) = inspection
        .material
        .rotating(mi)
        .filter(|r| r.phase == pki::Phase::SwitchSigner)
    {
        // In phase 2 the cluster signs with the rotation's intermediate, not the stored one.
        let mesh = &model.topology.meshes[mi].name;
        let finding = pki::Finding {
            code: crate::diagnostic::Code::RotationState,
            origin: Origin::Topology,
            file: PathBuf::new(),
            message: format!(
                "mesh `{mesh}`'s root rotation is in {}: `{cluster}` signs with an intermediate of the new root, which `pki rotate` does not replace",
                r.phase
            ),
            help: format!(
                "advance the rotation to phase 3 first (`meshc pki rotate-root TOPOLOGY --mesh {mesh} -o OUT --advance`), then rotate"
            ),
            at: crate::path!("clusters", c, "name"),
        };
        let mut shown = Checked {
            source: checked.source.clone(),
            tree: None,
            model: None,
            diagnostics: checked.diagnostics.clone(),
        };
        merge(&mut shown, vec![finding.to_diagnostic(tree)]);
        print_diagnostics(&shown, false);
        return Ok(Exit::Invalid);
    }
    let cert = pki::rotate(model, &store, root, mi, c, now).map_err(|e| match e {
        pki::RotateError::Write(e) => Fail::from(e),
        e @ pki::RotateError::Generate(_) => Fail::Environment(e.to_string()),
    })?;
    print_stdout(&format!(
        "{}: new intermediate for `{cluster}`: serial {}, valid until {}\nrun `meshc build` to write the new cacerts\n",
        store
            .cluster_dir(&model.topology.meshes[mi].name, cluster)
            .display(),
        cert.serial,
        cert.not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    ));
    // The rotation is done; an interrupt that waited for it still ends the command 130.
    if crate::interrupt::requested() {
        return Err(Fail::Interrupted(format!(
            "the new intermediate for `{cluster}` is in place"
        )));
    }
    Ok(Exit::Success)
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

/// `meshc explain`: a valid topology (else exit 2 with its diagnostics), a query that names
/// what exists (else exit 2 with one diagnostic), then the answer: exit 0 when some endpoint
/// is reachable, 1 when none is.
fn explain(
    path: &Path,
    query: &crate::explain::Query,
    format: ExplainFormat,
) -> Result<Exit, Fail> {
    let checked = load(path)?;
    let Some(model) = checked.model.as_ref().filter(|_| !checked.has_errors()) else {
        print_diagnostics(&checked, false);
        return Err(Fail::Reported(Exit::Invalid));
    };
    let answer = match crate::explain::explain(model, query) {
        Ok(answer) => answer,
        Err(d) => {
            let diags = [d];
            if format == ExplainFormat::Json {
                print_stdout(&diagnostic::render_json(&diags, None));
            } else {
                let color = diagnostic::use_color(diagnostic::stderr_is_terminal());
                eprint!(
                    "{}",
                    diagnostic::render_human(&diags, &checked.source, color)
                );
            }
            return Err(Fail::Reported(Exit::Invalid));
        }
    };
    print_stdout(&match format {
        ExplainFormat::Human => crate::explain::render::human(&answer),
        ExplainFormat::Json => crate::explain::render::json(&answer),
        ExplainFormat::Markdown => crate::explain::render::markdown(&answer),
    });
    Ok(if answer.reachable() {
        Exit::Success
    } else {
        Exit::Differences
    })
}

pub(crate) fn print_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`meshc schema | head`) is not an error worth a panic.
    let _ = out.write_all(s.as_bytes()).and_then(|()| out.flush());
}
