//! `meshc init`: the first files of a GitOps repository, so that a newcomer starts from a
//! topology that builds rather than from a blank page.
//!
//! Each starter is a topology of one deployment model, commented field by field, that
//! `meshc validate` and `meshc build` accept as written (the only findings are the reader tokens
//! that cannot exist before the clusters do, W080). Beside it go a `.gitignore` that keeps the
//! PKI store and the reader tokens out of Git (docs/pki.md: the store holds every private key
//! of the mesh) and the GitHub Actions workflow of docs/ci.md.
//!
//! The texts live in `starters/` and are embedded in the binary. Nothing that exists is ever
//! replaced: every file is checked first, and each is created with `create_new`, so a file that
//! appears meanwhile is not overwritten either.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The topology's file name in the repository.
pub const TOPOLOGY: &str = "topology.yaml";

/// The deployment models there is a starter for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// One primary serving a remote, on one network.
    PrimaryRemote,
    /// Two primaries on two networks, each discovering the other.
    MultiPrimary,
    /// Two primaries, each serving a remote, on two networks.
    Hybrid,
    /// Ambient (ztunnel, no sidecars): multi-primary, one network per cluster.
    Ambient,
    /// Primary-remote on OpenShift, with an ingress gateway.
    Openshift,
}

impl Model {
    /// The starter topology of the model.
    pub fn topology(self) -> &'static str {
        match self {
            Model::PrimaryRemote => include_str!("../starters/primary-remote.yaml"),
            Model::MultiPrimary => include_str!("../starters/multi-primary.yaml"),
            Model::Hybrid => include_str!("../starters/hybrid.yaml"),
            Model::Ambient => include_str!("../starters/ambient.yaml"),
            Model::Openshift => include_str!("../starters/openshift.yaml"),
        }
    }
}

/// The `.gitignore` of the repository.
pub const GITIGNORE: &str = include_str!("../starters/gitignore");

/// The pull-request workflow (the GitHub Actions one of docs/ci.md).
pub const WORKFLOW: &str = include_str!("../starters/github-workflow.yaml");

/// The files `init` writes, relative to the repository directory.
pub fn files(model: Model) -> [(&'static str, &'static str); 3] {
    [
        (TOPOLOGY, model.topology()),
        (".gitignore", GITIGNORE),
        (".github/workflows/meshc.yaml", WORKFLOW),
    ]
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "{} already exist{}: nothing was written\n  help: meshc init never overwrites a file; move {} away or choose another directory",
        list(.0),
        if .0.len() == 1 { "s" } else { "" },
        if .0.len() == 1 { "it" } else { "them" }
    )]
    Exists(Vec<PathBuf>),
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the starter files of `model` into `dir` (created when missing) and returns their
/// paths. When any of them exists, nothing is written; when a write fails, the files this call
/// created are removed again.
pub fn write(dir: &Path, model: Model) -> Result<Vec<PathBuf>, InitError> {
    let files = files(model);
    // `symlink_metadata`: a dangling symbolic link is a file that exists, too.
    let existing: Vec<PathBuf> = files
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    if !existing.is_empty() {
        return Err(InitError::Exists(existing));
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Err(e) = create(&path, text) {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            return Err(match e.kind() {
                std::io::ErrorKind::AlreadyExists => InitError::Exists(vec![path]),
                _ => InitError::Io { path, source: e },
            });
        }
        written.push(path);
    }
    Ok(written)
}

fn create(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
