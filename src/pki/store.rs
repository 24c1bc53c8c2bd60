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
    /// before the first one is linked into place, and if one cannot be linked the ones already
    /// linked by this call are removed again: the store ends as it was, or with every file.
    pub fn add(&self, new: &[NewFile]) -> Result<(), String> {
        let staged = Self::stage(new)?;
        let mut linked: Vec<PathBuf> = Vec::with_capacity(staged.len());
        for s in staged {
            let target = s.target().to_path_buf();
            if let Err(e) = s.create() {
                for path in &linked {
                    let _ = std::fs::remove_file(path);
                }
                return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                    format!(
                        "{}: appeared while meshc was writing (another run at the same time?); nothing was added, run again",
                        target.display()
                    )
                } else {
                    describe(&target, &e)
                });
            }
            linked.push(target);
        }
        Ok(())
    }

    /// Replaces one cluster's intermediate (rotation) as a whole: the new files are written
    /// into a fresh directory beside the old one, which is then swapped in with two renames,
    /// so the key and its certificate are never out of step. The old directory is removed
    /// once the new one is in place.
    pub fn replace_cluster(
        &self,
        mesh: &str,
        cluster: &str,
        new: &[NewFile],
    ) -> Result<(), String> {
        let dir = self.cluster_dir(mesh, cluster);
        let pid = std::process::id();
        let fresh = self.mesh_dir(mesh).join(format!(".{cluster}.new-{pid}"));
        let old = self.mesh_dir(mesh).join(format!(".{cluster}.old-{pid}"));
        let _ = std::fs::remove_dir_all(&fresh);
        let moved: Vec<NewFile> = new
            .iter()
            .map(|f| NewFile {
                path: fresh.join(f.path.file_name().unwrap_or_default()),
                contents: f.contents.clone(),
                mode: f.mode,
            })
            .collect();
        let result = self.add(&moved).and_then(|()| {
            let had_old = std::fs::symlink_metadata(&dir).is_ok();
            if had_old {
                std::fs::rename(&dir, &old).map_err(|e| describe(&dir, &e))?;
            }
            if let Err(e) = std::fs::rename(&fresh, &dir) {
                if had_old {
                    let _ = std::fs::rename(&old, &dir);
                }
                return Err(describe(&dir, &e));
            }
            if had_old {
                let _ = std::fs::remove_dir_all(&old);
            }
            Ok(())
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&fresh);
        }
        result
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
    match e.kind() {
        io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => format!(
            "cannot write {}: something that is not a directory is in the way ({e})",
            path.display()
        ),
        _ => format!("cannot write {}: {e}", path.display()),
    }
}
