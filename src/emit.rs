//! The emit stage: the output tree on disk, changed only where it must change.
//!
//! `out/` is committed to a GitOps repository and applied by Argo CD or Flux, so the rules are
//! strict (OUTPUT.md): only paths under `out/` are written; a file whose bytes do not change is
//! not touched (contents and mtime), so a rebuild that changes nothing writes nothing; files
//! meshc wrote before and no longer produces are removed, files it never wrote are never
//! touched; nothing is written through a symlink leading out of `out/`. Every new file is
//! written in full beside its target before the first one is renamed into place, so a build
//! that fails while writing (a full disk, a permission) leaves the previous tree as it was;
//! the renames that follow are single system calls on one file system. `out/.meshc/manifest.json` records what meshc owns.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::{self, Staged};

/// Where the manifest lives, relative to the output directory.
pub const MANIFEST: &str = ".meshc/manifest.json";

/// One file to write, by its path relative to the output directory (`/`-separated).
#[derive(Clone)]
pub struct OutFile {
    pub bytes: Vec<u8>,
    /// Holds key material: written owner-only.
    pub private: bool,
}

impl std::fmt::Debug for OutFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutFile({} bytes)", self.bytes.len())
    }
}

/// The whole output tree, as the build wants it.
#[derive(Debug, Default)]
pub struct Output {
    pub files: BTreeMap<String, OutFile>,
}

impl Output {
    pub fn add(&mut self, path: String, bytes: Vec<u8>, private: bool) {
        self.files.insert(path, OutFile { bytes, private });
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    meshc_version: String,
    topology_digest: String,
    files: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct ManifestEntry {
    path: String,
    sha256: String,
}

/// What happened to each file, by top-level directory (the cluster).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub dirs: BTreeMap<String, Counts>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
}

impl Summary {
    fn count(&mut self, path: &str) -> &mut Counts {
        let dir = path.split('/').next().unwrap_or(path).to_string();
        self.dirs.entry(dir).or_default()
    }

    /// Whether anything was (or would be) created, changed or removed.
    pub fn changed(&self) -> bool {
        self.dirs
            .values()
            .any(|c| c.created + c.changed + c.removed > 0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is a symbolic link out of the output directory; meshc does not write through it"
    )]
    Symlink { path: PathBuf },
    #[error(
        "{path} exists but meshc did not write it; move it away or choose another output directory"
    )]
    NotOurs { path: PathBuf },
    #[error(
        "{path} is damaged ({reason}); delete it to start over (files it listed will then be kept, not pruned)"
    )]
    Manifest { path: PathBuf, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EmitError + '_ {
    move |source| EmitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut hex = String::with_capacity(64);
    for b in digest.as_ref() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The digest recorded for the topology the tree was built from.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// Compares `output` with the tree in `out` and, unless `dry_run`, makes the tree match.
pub fn emit(
    out: &Path,
    output: &Output,
    topology_digest: &str,
    dry_run: bool,
) -> Result<Summary, EmitError> {
    debug_assert!(output.files.keys().all(|p| is_plain_relative(p)));
    let root = match fs::canonicalize(out) {
        Ok(root) => Some(root),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(out)(e)),
    };
    let manifest_path = out.join(MANIFEST);
    if let Some(root) = &root {
        check_inside(root, out, MANIFEST)?;
    }
    let old = read_manifest(&manifest_path)?;
    let owned: BTreeSet<&str> = old
        .as_ref()
        .map(|m| m.files.iter().map(|f| f.path.as_str()).collect())
        .unwrap_or_default();

    let mut summary = Summary::default();
    let mut writes: Vec<(PathBuf, &OutFile)> = Vec::new();
    for (rel, file) in &output.files {
        let path = out.join(rel);
        if let Some(root) = &root {
            check_inside(root, out, rel)?;
        }
        match fs::read(&path) {
            Ok(existing) if existing == file.bytes => summary.count(rel).unchanged += 1,
            Ok(_) if !owned.contains(rel.as_str()) => return Err(EmitError::NotOurs { path }),
            Ok(_) => {
                summary.count(rel).changed += 1;
                writes.push((path, file));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                summary.count(rel).created += 1;
                writes.push((path, file));
            }
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    let mut removals = Vec::new();
    for rel in owned.iter().filter(|p| !output.files.contains_key(**p)) {
        if !is_plain_relative(rel) {
            continue;
        }
        let path = out.join(rel);
        if let Some(root) = &root {
            check_inside(root, out, rel)?;
        }
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            summary.count(rel).removed += 1;
            removals.push(path);
        }
    }

    let manifest = Manifest {
        meshc_version: env!("CARGO_PKG_VERSION").to_string(),
        topology_digest: topology_digest.to_string(),
        files: output
            .files
            .iter()
            .map(|(path, f)| ManifestEntry {
                path: path.clone(),
                sha256: sha256_hex(&f.bytes),
            })
            .collect(),
    };
    if dry_run || (writes.is_empty() && removals.is_empty() && old.as_ref() == Some(&manifest)) {
        return Ok(summary);
    }

    // Stage everything, then put it in place.
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    manifest_bytes.push(b'\n');
    let mut staged = Vec::with_capacity(writes.len() + 1);
    for (path, file) in &writes {
        if let Some(parent) = path.parent() {
            files::create_dirs(parent, 0o755).map_err(io_err(parent))?;
        }
        let mode = if file.private {
            files::PRIVATE
        } else {
            files::PUBLIC
        };
        staged.push(Staged::write(path, &file.bytes, mode).map_err(io_err(path))?);
    }
    if let Some(parent) = manifest_path.parent() {
        files::create_dirs(parent, 0o755).map_err(io_err(parent))?;
    }
    let staged_manifest = Staged::write(&manifest_path, &manifest_bytes, files::PUBLIC)
        .map_err(io_err(&manifest_path))?;
    for s in staged {
        let target = s.target().to_path_buf();
        s.replace().map_err(io_err(&target))?;
    }
    for path in &removals {
        fs::remove_file(path).map_err(io_err(path))?;
        remove_empty_parents(out, path);
    }
    staged_manifest.replace().map_err(io_err(&manifest_path))?;
    Ok(summary)
}

/// The files of `out` a comparison needs: every file the manifest lists and every path of
/// `wanted`, where they exist. Reads only; a path through a symbolic link out of the tree is
/// refused, as a build would refuse to write it.
pub fn read_tree<'a>(
    out: &Path,
    wanted: impl IntoIterator<Item = &'a String>,
) -> Result<BTreeMap<String, Vec<u8>>, EmitError> {
    let root = match fs::canonicalize(out) {
        Ok(root) => root,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io_err(out)(e)),
    };
    check_inside(&root, out, MANIFEST)?;
    let owned = read_manifest(&out.join(MANIFEST))?
        .map(|m| m.files.into_iter().map(|f| f.path).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut tree = BTreeMap::new();
    let paths: BTreeSet<String> = owned
        .into_iter()
        .chain(wanted.into_iter().cloned())
        .collect();
    for rel in paths.iter().filter(|p| is_plain_relative(p)) {
        check_inside(&root, out, rel)?;
        let path = out.join(rel);
        match fs::read(&path) {
            Ok(bytes) => {
                tree.insert(rel.clone(), bytes);
            }
            // Nothing there (or a directory where a file would go): nothing to compare.
            Err(e) if e.kind() == io::ErrorKind::NotFound || path.is_dir() => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    Ok(tree)
}

fn read_manifest(path: &Path) -> Result<Option<Manifest>, EmitError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| EmitError::Manifest {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// A relative path of normal components only (no `..`, no root, no `.`).
fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Refuses a path whose existing parts include a symlink that resolves outside `root`.
fn check_inside(root: &Path, out: &Path, rel: &str) -> Result<(), EmitError> {
    let mut path = out.to_path_buf();
    for part in Path::new(rel).components() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let inside = fs::canonicalize(&path).is_ok_and(|t| t.starts_with(root));
                if !inside {
                    return Err(EmitError::Symlink { path });
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// Removes directories left empty by a removal, up to (not including) `out`.
fn remove_empty_parents(out: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == out || !d.starts_with(out) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}
