//! The emit stage: the output tree on disk, changed only where it must change, and never left
//! half-written.
//!
//! `out/` is committed to a GitOps repository and applied by Argo CD or Flux, so the rules are
//! strict (OUTPUT.md): only paths under `out/` are written; a file whose bytes do not change is
//! not touched (contents and mtime), so a rebuild that changes nothing writes nothing; files
//! meshc wrote before and no longer produces are removed, files it never wrote are never
//! touched; nothing is written through a symlink leading out of `out/`.
//!
//! A build writes in three steps ([`compare`], [`Plan::stage`], [`Staged::commit`]):
//!
//! 1. **Stage.** Every new file is written in full beside its target under a temporary name
//!    (`.NAME.meshc-PID-N`), and the new manifest too; a directory the tree lacks (a new
//!    cluster's) is written whole under such a name, to be renamed into place at once. A
//!    failure or an interrupt here removes the temporary files and directories: the tree is
//!    as it was. The caller adds key material to the PKI store only after this step, so an
//!    output directory that cannot be written costs no key.
//! 2. **Commit point.** `.meshc/journal.json` is written (itself staged and renamed): every
//!    rename and removal still to do. From here on the build rolls forward.
//! 3. **Apply.** The renames, the removals and the manifest's rename, then the journal is
//!    removed and the file system is synced once.
//!
//! Every later run starts with [`recover`]: a journal left by a killed build is finished, and
//! temporary files a killed build left before its commit point are removed. Read-only commands
//! use [`interrupted`] to say that the tree needs that repair instead of doing it. So an
//! interrupted build leaves every file old or new, never torn, and the next build repairs the
//! tree and the manifest whatever instant it was killed at. The tree is derived from the
//! topology and the store, so it is not synced file by file (12,000 fsyncs are most of a large
//! build): one sync at the end makes a finished build durable; the PKI store, which holds the
//! only state that cannot be rebuilt, syncs every write (`pki/store.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::{self, Staged as StagedFile};
use crate::output::{OutFile, Output, Scope};

/// Where the manifest lives, relative to the output directory.
pub const MANIFEST: &str = ".meshc/manifest.json";
/// The list of renames and removals of a build past its commit point.
pub const JOURNAL: &str = ".meshc/journal.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    meshc_version: String,
    topology_digest: String,
    /// Per mesh, the SHA-256 fingerprints of the roots its clusters' `cacerts` trust: what
    /// tells a lost or mislaid PKI store (a new root) from the store the tree was built with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    trust: BTreeMap<String, BTreeSet<String>>,
    files: Vec<ManifestEntry>,
}

/// What the manifest records about where a tree came from, besides its files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    /// The topology's digest ([`digest`]).
    pub digest: String,
    /// Per mesh, the fingerprints of the roots `root-cert.pem` carries.
    pub trust: BTreeMap<String, BTreeSet<String>>,
}

/// A mesh whose new trust shares no root with the one the tree was built with: applied, its
/// clusters would stop trusting each other's workloads until every one of them is updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rekeyed {
    pub mesh: String,
    pub before: BTreeSet<String>,
    pub after: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct ManifestEntry {
    path: String,
    /// `cluster/NAME`, `mesh/NAME` or `tree` ([`Scope::key`]); absent in manifests written
    /// before scopes existed, where the first path segment was the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    sha256: String,
}

impl ManifestEntry {
    fn scope(&self) -> Scope {
        self.scope
            .as_deref()
            .and_then(Scope::parse)
            .unwrap_or_else(|| match self.path.split_once('/') {
                Some((cluster, _)) => Scope::Cluster(cluster.to_string()),
                None => Scope::Tree,
            })
    }
}

/// What a killed build still had to do, written at its commit point.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    /// `(temporary, target)`, relative to the output directory.
    renames: Vec<(String, String)>,
    removals: Vec<String>,
}

/// What happened (or would happen) to the files of each scope.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub scopes: BTreeMap<Scope, Counts>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
}

impl Summary {
    fn count(&mut self, scope: &Scope) -> &mut Counts {
        self.scopes.entry(scope.clone()).or_default()
    }

    /// Whether anything was (or would be) created, changed or removed.
    pub fn changed(&self) -> bool {
        self.scopes
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
    #[error("{out} was left as it was")]
    Interrupted { out: PathBuf },
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

/// The differences between `output` and the tree in `out`: what a build would write and
/// remove. Reads only.
#[derive(Debug)]
pub struct Plan<'o> {
    out: PathBuf,
    summary: Summary,
    writes: Vec<(&'o str, &'o OutFile)>,
    removals: Vec<String>,
    manifest: Option<Vec<u8>>,
    rekeyed: Vec<Rekeyed>,
}

impl Plan<'_> {
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The meshes whose root the build would replace outright (no root in common with the
    /// tree's record). Empty for a tree built before the record existed.
    pub fn rekeyed(&self) -> &[Rekeyed] {
        &self.rekeyed
    }

    /// Whether applying the plan would write anything (files or the manifest).
    pub fn is_noop(&self) -> bool {
        self.writes.is_empty() && self.removals.is_empty() && self.manifest.is_none()
    }

    /// Writes every new file (and the manifest) beside its target: nothing is in place yet.
    /// On failure or interrupt, what was written is removed again, directories included.
    ///
    /// A directory the tree lacks (a new cluster's, every one on a first build) is written
    /// whole under a temporary name beside its target, and one rename puts all of it in
    /// place; other files are staged one by one. The files are written on every core. Each is
    /// a file of its own, even where many hold the same bytes (every cluster's
    /// `services.yaml` of a mesh): a hard link would save the copies, but a hand edit of one
    /// cluster's file would then change every cluster's.
    pub fn stage(self, progress: &dyn crate::progress::Progress) -> Result<Staged, EmitError> {
        progress.stage("writing files", self.writes.len());
        let mut staged = Staged {
            out: self.out,
            summary: self.summary,
            files: Vec::with_capacity(self.writes.len() + 1),
            dirs: Vec::new(),
            created: Vec::new(),
            removals: self.removals,
            _guard: crate::interrupt::Critical::enter(),
        };
        let out = staged.out.clone();
        staged.create_dirs(&out)?;
        // Where each write goes: inside a staged directory (its index, and the path in it), or
        // beside its target. The staged directories are made here, in order; the workers make
        // the directories within them as they first need them.
        let mut exists: HashMap<&str, bool> = HashMap::new();
        let mut temp_of: HashMap<&str, usize> = HashMap::new();
        let mut places: Vec<Option<(usize, &str)>> = Vec::with_capacity(self.writes.len());
        for &(rel, _) in &self.writes {
            let Some(root) = missing_root(&out, rel, &mut exists) else {
                places.push(None);
                continue;
            };
            let k = if let Some(&k) = temp_of.get(root) {
                k
            } else {
                let target = out.join(root);
                let temp = files::temporary_name(&target).map_err(io_err(&target))?;
                files::create_dirs(&temp, 0o755).map_err(io_err(&temp))?;
                staged.dirs.push((root.to_string(), temp));
                temp_of.insert(root, staged.dirs.len() - 1);
                staged.dirs.len() - 1
            };
            places.push(Some((k, &rel[root.len() + 1..])));
        }
        let interrupted = || EmitError::Interrupted { out: out.clone() };
        let indexes: Vec<usize> = (0..self.writes.len()).collect();
        let dirs = &staged.dirs;
        let written = crate::parallel::map(&indexes, |&i| {
            if crate::interrupt::requested() {
                return Err(interrupted());
            }
            progress.step();
            let (rel, file) = self.writes[i];
            let mode = if file.private {
                files::PRIVATE
            } else {
                files::PUBLIC
            };
            let written = if let Some((k, inner)) = places[i] {
                let path = dirs[k].1.join(inner);
                write_new_within(&path, &file.bytes, mode)
                    .map(|()| None)
                    .map_err(io_err(&path))
            } else {
                let path = out.join(rel);
                StagedFile::write_unsynced(&path, &file.bytes, mode)
                    .map(|f| Some((rel.to_string(), f)))
                    .map_err(io_err(&path))
            };
            crate::interrupt::failpoint("emit:staging");
            written
        })?;
        staged.files.extend(written.into_iter().flatten());
        if let Some(bytes) = self.manifest.as_deref() {
            let path = out.join(MANIFEST);
            if let Some(parent) = path.parent() {
                staged.create_dirs(parent)?;
            }
            let file =
                StagedFile::write_unsynced(&path, bytes, files::PUBLIC).map_err(io_err(&path))?;
            staged.files.push((MANIFEST.to_string(), file));
        }
        if crate::interrupt::requested() {
            return Err(interrupted());
        }
        Ok(staged)
    }
}

/// A new file in a staged directory, and the directories on its way there that the first
/// file written under them makes (two workers making one is no error).
fn write_new_within(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    match files::write_new(path, bytes, mode) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                files::create_dirs(parent, 0o755)?;
            }
            files::write_new(path, bytes, mode)
        }
        written => written,
    }
}

/// The shallowest directory on `rel`'s path that `out` lacks (`c5` for `c5/istio/x.yaml` on
/// a first build), or `None` when the file's directory is there. `exists` caches the answers.
fn missing_root<'r>(
    out: &Path,
    rel: &'r str,
    exists: &mut HashMap<&'r str, bool>,
) -> Option<&'r str> {
    rel.match_indices('/').map(|(i, _)| &rel[..i]).find(|dir| {
        !*exists
            .entry(dir)
            .or_insert_with(|| fs::symlink_metadata(out.join(dir)).is_ok())
    })
}

/// Every new file written beside its target; [`Staged::commit`] puts them in place, dropping
/// it removes them and the directories made for them.
#[derive(Debug)]
pub struct Staged {
    out: PathBuf,
    summary: Summary,
    /// `(target, staged file)`; the manifest last.
    files: Vec<(String, StagedFile)>,
    /// `(target, temporary directory)`: directories the tree lacked, staged whole.
    dirs: Vec<(String, PathBuf)>,
    /// Directories this build made, parents first: removed again if it does not commit.
    created: Vec<PathBuf>,
    removals: Vec<String>,
    _guard: crate::interrupt::Critical,
}

impl Staged {
    /// Creates `dir` and its missing parents, remembering which were made.
    fn create_dirs(&mut self, dir: &Path) -> Result<(), EmitError> {
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| fs::symlink_metadata(d).is_err())
            .map(Path::to_path_buf)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        files::create_dirs(dir, 0o755).map_err(io_err(dir))?;
        self.created.extend(missing.into_iter().rev());
        Ok(())
    }

    /// Puts every staged file in place and removes the files no longer produced. An interrupt
    /// from here on is taken after the tree is complete.
    pub fn commit(mut self) -> Result<Summary, EmitError> {
        let out = self.out.clone();
        let relative = |p: &Path| {
            p.strip_prefix(&out)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default()
        };
        let journal = Journal {
            renames: self
                .dirs
                .iter()
                .map(|(target, temp)| (relative(temp), target.clone()))
                .chain(
                    self.files
                        .iter()
                        .map(|(target, s)| (relative(s.temp()), target.clone())),
                )
                .collect(),
            removals: std::mem::take(&mut self.removals),
        };
        let mut bytes = serde_json::to_vec_pretty(&journal).unwrap_or_default();
        bytes.push(b'\n');
        let journal_path = out.join(JOURNAL);
        if let Some(parent) = journal_path.parent() {
            self.create_dirs(parent)?;
        }
        // Only now is anything of the old tree replaced: this rename is the commit point.
        StagedFile::write_unsynced(&journal_path, &bytes, files::PUBLIC)
            .and_then(StagedFile::replace)
            .map_err(io_err(&journal_path))?;
        // The journal owns the staged files and the directories now.
        self.created.clear();
        self.dirs.clear();
        for (_, s) in self.files.drain(..) {
            s.keep();
        }
        crate::interrupt::failpoint("emit:committed");
        apply(&out, &journal)?;
        Ok(std::mem::take(&mut self.summary))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // The staged files and directories first (a file's own drop removes it), then the
        // directories made for them, deepest first; a directory something else wrote into
        // stays.
        self.files.clear();
        for (_, temp) in self.dirs.drain(..) {
            let _ = fs::remove_dir_all(temp);
        }
        for dir in self.created.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Carries out a journal: renames whose temporary file is still there, removals of files
/// still there, then the journal's own removal and one sync of the file system.
fn apply(out: &Path, journal: &Journal) -> Result<(), EmitError> {
    let count = journal.renames.len();
    for (i, (temp, target)) in journal.renames.iter().enumerate() {
        if !is_plain_relative(temp) || !is_plain_relative(target) {
            continue;
        }
        let (from, to) = (out.join(temp), out.join(target));
        match fs::rename(&from, &to) {
            Ok(()) => {}
            // Renamed before a kill: nothing left to do for it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&to)(e)),
        }
        if i + 1 == count / 2 {
            crate::interrupt::failpoint("emit:renaming");
        }
    }
    for rel in journal.removals.iter().filter(|r| is_plain_relative(r)) {
        let path = out.join(rel);
        match fs::remove_file(&path) {
            Ok(()) => remove_empty_parents(out, &path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    let journal_path = out.join(JOURNAL);
    fs::remove_file(&journal_path).map_err(io_err(&journal_path))?;
    files::sync_batch(out, &[]).map_err(io_err(out))?;
    Ok(())
}

/// What [`recover`] found and repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// A killed build's journal was carried out.
    pub rolled_forward: bool,
    /// Temporary files of a killed build, removed.
    pub removed: Vec<PathBuf>,
}

/// Repairs what an interrupted build left in `out`: finishes a build that was past its commit
/// point, then removes temporary files no build will put in place. Every writing command calls
/// it first.
pub fn recover(out: &Path) -> Result<Recovery, EmitError> {
    let mut recovery = Recovery::default();
    if fs::symlink_metadata(out).is_err() {
        return Ok(recovery);
    }
    if let Some(journal) = read_journal(out)? {
        apply(out, &journal)?;
        recovery.rolled_forward = true;
    }
    for temp in leftovers(out).map_err(io_err(out))? {
        let is_dir = fs::symlink_metadata(&temp).is_ok_and(|m| m.is_dir());
        if is_dir {
            fs::remove_dir_all(&temp)
        } else {
            fs::remove_file(&temp)
        }
        .map_err(io_err(&temp))?;
        recovery.removed.push(temp);
    }
    Ok(recovery)
}

/// What an interrupted build left in `out`, for commands that must not repair it: the journal
/// or the first temporary file, or `None` when the tree is whole.
pub fn interrupted(out: &Path) -> Result<Option<PathBuf>, EmitError> {
    let journal = out.join(JOURNAL);
    if fs::symlink_metadata(&journal).is_ok() {
        return Ok(Some(journal));
    }
    if fs::symlink_metadata(out).is_err() {
        return Ok(None);
    }
    Ok(leftovers(out).map_err(io_err(out))?.into_iter().next())
}

fn read_journal(out: &Path) -> Result<Option<Journal>, EmitError> {
    let path = out.join(JOURNAL);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| EmitError::Manifest {
                path,
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Temporary files and staged directories under `out` (not following symbolic links), sorted.
fn leftovers(out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let temporary = entry.file_name().to_str().is_some_and(files::is_temporary);
            if (kind.is_dir() || kind.is_file()) && temporary {
                found.push(entry.path());
            } else if kind.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Compares `output` with the tree in `out`: what is unchanged, what a build would create,
/// change and remove. Reads only; refuses what a build would refuse (files meshc did not
/// write, symbolic links out of the tree, a damaged manifest).
pub fn compare<'o>(out: &Path, output: &'o Output, stamp: &Stamp) -> Result<Plan<'o>, EmitError> {
    debug_assert!(output.files.keys().all(|p| is_plain_relative(p)));
    let mut inside = Inside::new(out)?;
    inside.check(MANIFEST)?;
    let old = read_manifest(&out.join(MANIFEST))?;
    let owned: BTreeMap<&str, Scope> = old
        .as_ref()
        .map(|m| {
            m.files
                .iter()
                .map(|f| (f.path.as_str(), f.scope()))
                .collect()
        })
        .unwrap_or_default();

    // The links are looked at here, once per directory; a file under a directory that does
    // not exist (every file of a first build) is not opened at all. The files that may be
    // there are read on every core: a no-op build of 200 clusters reads 100 MB.
    let checked: Vec<_> = output
        .files
        .iter()
        .map(|file| (inside.check(file.0), file))
        .collect();
    let read = crate::parallel::map_all(&checked, |(check, (rel, file))| {
        matches!(check, Ok(true)).then(|| same_bytes(&out.join(rel), &file.bytes))
    });
    let mut summary = Summary::default();
    let mut writes = Vec::new();
    for ((check, (rel, file)), read) in checked.into_iter().zip(read) {
        // Not read: `out`, or a directory on the way, is not there.
        let found = if check? {
            read.unwrap_or_else(|| Err(io::ErrorKind::NotFound.into()))
        } else {
            Err(io::ErrorKind::NotFound.into())
        };
        match found {
            Ok(true) => summary.count(&file.scope).unchanged += 1,
            Ok(false) if !owned.contains_key(rel.as_str()) => {
                return Err(EmitError::NotOurs {
                    path: out.join(rel),
                });
            }
            Ok(false) => {
                summary.count(&file.scope).changed += 1;
                writes.push((rel.as_str(), file));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                summary.count(&file.scope).created += 1;
                writes.push((rel.as_str(), file));
            }
            Err(e) => return Err(io_err(&out.join(rel))(e)),
        }
    }
    let mut removals = Vec::new();
    for (rel, scope) in owned
        .iter()
        .filter(|(p, _)| !output.files.contains_key(**p))
    {
        if !is_plain_relative(rel) {
            continue;
        }
        let path = out.join(rel);
        inside.check(rel)?;
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            summary.count(scope).removed += 1;
            removals.push((*rel).to_string());
        }
    }

    // A file shared by many clusters (one `services.yaml` per mesh) is hashed once, and the
    // distinct texts are hashed on every core.
    let mut distinct: Vec<&[u8]> = Vec::new();
    let mut seen: HashSet<*const u8> = HashSet::new();
    for f in output.files.values() {
        if seen.insert(f.bytes.as_ptr()) {
            distinct.push(&f.bytes);
        }
    }
    let hashed = crate::parallel::map_all(&distinct, |bytes| sha256_hex(bytes));
    let digests: HashMap<*const u8, String> =
        distinct.iter().map(|b| b.as_ptr()).zip(hashed).collect();
    let manifest = Manifest {
        meshc_version: env!("CARGO_PKG_VERSION").to_string(),
        topology_digest: stamp.digest.clone(),
        trust: stamp.trust.clone(),
        files: output
            .files
            .iter()
            .map(|(path, f)| ManifestEntry {
                path: path.clone(),
                scope: Some(f.scope.key()),
                sha256: digests[&f.bytes.as_ptr()].clone(),
            })
            .collect(),
    };
    let manifest = (old.as_ref() != Some(&manifest)).then(|| {
        let mut bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    });
    let rekeyed = old
        .as_ref()
        .map(|old| {
            old.trust
                .iter()
                .filter_map(|(mesh, before)| {
                    let after = stamp.trust.get(mesh)?;
                    before.is_disjoint(after).then(|| Rekeyed {
                        mesh: mesh.clone(),
                        before: before.clone(),
                        after: after.clone(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Plan {
        out: out.to_path_buf(),
        summary,
        writes,
        removals,
        manifest,
        rekeyed,
    })
}

/// Whether the file at `path` holds exactly `bytes`, reading no more of it than needed.
fn same_bytes(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    use std::io::Read as _;
    let mut file = fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(false);
    }
    if meta.len() != bytes.len() as u64 {
        return Ok(false);
    }
    let mut existing = Vec::with_capacity(bytes.len());
    file.read_to_end(&mut existing)?;
    Ok(existing == bytes)
}

/// The tree a comparison needs from `out`: every file the manifest lists and every path of
/// `wanted`, where they exist, each with its scope (the manifest's, else `wanted`'s). Reads
/// only; a path through a symbolic link out of the tree is refused, as a build would refuse
/// to write it.
pub fn read_tree<'w>(
    out: &Path,
    wanted: impl IntoIterator<Item = (&'w String, &'w Scope)>,
) -> Result<BTreeMap<String, (Scope, Vec<u8>)>, EmitError> {
    let mut inside = Inside::new(out)?;
    if inside.root.is_none() {
        return Ok(BTreeMap::new());
    }
    inside.check(MANIFEST)?;
    let mut paths: BTreeMap<String, Scope> = wanted
        .into_iter()
        .map(|(path, scope)| (path.clone(), scope.clone()))
        .collect();
    if let Some(manifest) = read_manifest(&out.join(MANIFEST))? {
        for f in manifest.files {
            let scope = f.scope();
            paths.insert(f.path, scope);
        }
    }
    let mut tree = BTreeMap::new();
    for (rel, scope) in paths.into_iter().filter(|(p, _)| is_plain_relative(p)) {
        if !inside.check(&rel)? {
            continue;
        }
        let path = out.join(&rel);
        match fs::read(&path) {
            Ok(bytes) => {
                tree.insert(rel, (scope, bytes));
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

/// Refuses paths under `out` whose existing parts include a symbolic link that resolves
/// outside it. Each directory is looked at once, however many files lie under it, and one
/// found missing is remembered as missing.
struct Inside<'a> {
    out: &'a Path,
    /// `out`, resolved; `None` while it does not exist (nothing in it can be a link).
    root: Option<PathBuf>,
    checked: HashSet<PathBuf>,
    missing: HashSet<PathBuf>,
}

impl<'a> Inside<'a> {
    fn new(out: &'a Path) -> Result<Inside<'a>, EmitError> {
        let root = match fs::canonicalize(out) {
            Ok(root) => Some(root),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(out)(e)),
        };
        Ok(Inside {
            out,
            root,
            checked: HashSet::new(),
            missing: HashSet::new(),
        })
    }

    /// Refuses `rel` if it goes through a link out of the tree; else whether it may be there
    /// (`false` when it, or a directory on its way, does not exist).
    fn check(&mut self, rel: &str) -> Result<bool, EmitError> {
        let Some(root) = &self.root else {
            return Ok(false);
        };
        let parts: Vec<Component<'_>> = Path::new(rel).components().collect();
        let mut path = self.out.to_path_buf();
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            let directory = i + 1 < parts.len();
            if directory && self.checked.contains(&path) {
                continue;
            }
            if directory && self.missing.contains(&path) {
                return Ok(false);
            }
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let inside = fs::canonicalize(&path).is_ok_and(|t| t.starts_with(root));
                    if !inside {
                        return Err(EmitError::Symlink { path });
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if directory {
                        self.missing.insert(path);
                    }
                    return Ok(false);
                }
                // Reading it will say what is wrong (a file where a directory should be).
                Err(_) => return Ok(true),
            }
            if directory {
                self.checked.insert(path.clone());
            }
        }
        Ok(true)
    }
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
