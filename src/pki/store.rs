//! The PKI store on disk: where each file lives, and adding files without ever replacing one.
//!
//! Layout (TOPOLOGY.md): `<mesh>/root-cert.pem`, `<mesh>/root-key.pem`,
//! `<mesh>/<cluster>/{ca-cert.pem, ca-key.pem, cert-chain.pem}`. Directories are created
//! owner-only (0700) and keys 0600. New files are all written beside their targets first and
//! only then linked into place, each refusing to replace an existing file, so a failed or
//! concurrent run can never overwrite a key.

use std::io;
use std::path::{Path, PathBuf};

use crate::files::{self, Staged};

/// The store directory.
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
}

/// A file to add to the store.
pub struct NewFile {
    pub path: PathBuf,
    contents: String,
    mode: u32,
}

impl std::fmt::Debug for NewFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Contents may be a private key.
        write!(f, "NewFile({})", self.path.display())
    }
}

impl NewFile {
    pub fn public(path: PathBuf, contents: String) -> NewFile {
        NewFile {
            path,
            contents,
            mode: files::PUBLIC,
        }
    }

    pub fn private(path: PathBuf, contents: String) -> NewFile {
        NewFile {
            path,
            contents,
            mode: files::PRIVATE,
        }
    }
}

const DIR_MODE: u32 = 0o700;

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    pub fn mesh_dir(&self, mesh: &str) -> PathBuf {
        self.dir.join(mesh)
    }

    pub fn root_cert(&self, mesh: &str) -> PathBuf {
        self.mesh_dir(mesh).join("root-cert.pem")
    }

    pub fn root_key(&self, mesh: &str) -> PathBuf {
        self.mesh_dir(mesh).join("root-key.pem")
    }

    pub fn cluster_dir(&self, mesh: &str, cluster: &str) -> PathBuf {
        self.mesh_dir(mesh).join(cluster)
    }

    pub fn ca_cert(&self, mesh: &str, cluster: &str) -> PathBuf {
        self.cluster_dir(mesh, cluster).join("ca-cert.pem")
    }

    pub fn ca_key(&self, mesh: &str, cluster: &str) -> PathBuf {
        self.cluster_dir(mesh, cluster).join("ca-key.pem")
    }

    pub fn cert_chain(&self, mesh: &str, cluster: &str) -> PathBuf {
        self.cluster_dir(mesh, cluster).join("cert-chain.pem")
    }

    /// Adds new files; none may exist yet. Every file is written in full beside its target
    /// before the first one is linked into place, so a failure to write (a full disk) leaves
    /// the store as it was.
    pub fn add(&self, new: &[NewFile]) -> Result<(), String> {
        let staged = Self::stage(new)?;
        for s in staged {
            let target = s.target().to_path_buf();
            s.create().map_err(|e| describe(&target, &e))?;
        }
        Ok(())
    }

    /// Replaces files (rotation): each file is swapped atomically, keys first.
    pub fn replace(&self, new: &[NewFile]) -> Result<(), String> {
        let staged = Self::stage(new)?;
        for s in staged {
            let target = s.target().to_path_buf();
            s.replace().map_err(|e| describe(&target, &e))?;
        }
        Ok(())
    }

    fn stage(new: &[NewFile]) -> Result<Vec<Staged>, String> {
        let mut staged = Vec::with_capacity(new.len());
        for f in new {
            if let Some(parent) = f.path.parent() {
                files::create_dirs(parent, DIR_MODE).map_err(|e| describe(parent, &e))?;
            }
            staged.push(
                Staged::write(&f.path, f.contents.as_bytes(), f.mode)
                    .map_err(|e| describe(&f.path, &e))?,
            );
        }
        Ok(staged)
    }
}

fn describe(path: &Path, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::AlreadyExists {
        format!(
            "{}: appeared while meshc was writing (another run at the same time?); nothing was replaced, run again",
            path.display()
        )
    } else {
        format!("cannot write {}: {e}", path.display())
    }
}
