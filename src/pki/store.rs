//! The PKI store on disk: where each file lives, and writing it so that no crash, power loss or
//! Ctrl-C can lose or mismatch a key.
//!
//! Layout (TOPOLOGY.md): `<mesh>/root-cert.pem`, `<mesh>/root-key.pem`,
//! `<mesh>/<cluster>/{ca-cert.pem, ca-key.pem, cert-chain.pem}`. Directories are created
//! owner-only (0700) and keys 0600.
//!
//! The store holds the only state meshc cannot rebuild, so every write is durable and whole:
//! - [`Store::add`] writes every new file beside its target (synced), records the batch in a
//!   journal (`.meshc-add-PID.journal`), links the files into place (never replacing one),
//!   syncs the directories and removes the journal: that removal is the commit. A journal that
//!   is still there means the addition was cut short, and the next writer rolls it back.
//! - [`Store::replace_cluster`] writes the new directory beside the old one
//!   (`.<cluster>.new-PID`) and swaps the two with one `renameat2(RENAME_EXCHANGE)` on Linux,
//!   or with two renames elsewhere, where a cut between them leaves `.<cluster>.old-PID`,
//!   which the next writer renames back.
//! - Writers hold an exclusive lock on the store directory (`flock`), so what a writer finds
//!   left over is never another live run's work: [`Store::repair`] rolls it back or removes it.
//!   Read-only commands do not repair: [`Store::check_leftovers`] refuses only a leftover that
//!   would change what they see, naming it and the command that repairs it.
//! - Both writes run in an [`interrupt::Critical`] section: an interrupt before the commit
//!   rolls the write back ([`WriteError::Interrupted`]); after it, the write completes.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::files::{self, Staged};
use crate::interrupt::{self, Critical};

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

/// Why a store write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// SIGINT or SIGTERM arrived before the commit: the store was left as it was.
    #[error("nothing was written to the PKI store")]
    Interrupted,
    #[error("{0}")]
    Failed(String),
}

impl From<String> for WriteError {
    fn from(message: String) -> Self {
        WriteError::Failed(message)
    }
}

/// What a run cut short left in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leftover {
    /// `.meshc-add-PID.journal`: an addition that did not commit.
    Journal(PathBuf),
    /// `.<cluster>.new-PID` or `.<cluster>.old-PID` beside `cluster` (the directory it stands
    /// for, which may be missing).
    Swap {
        dir: PathBuf,
        cluster: PathBuf,
        old: bool,
    },
    /// `.NAME.meshc-PID-N`: a file written beside its target and never put in place.
    Temporary(PathBuf),
}

/// The exclusive lock writers hold on the store directory; released when dropped, or when the
/// process dies, however it dies.
#[derive(Debug)]
struct Lock {
    #[cfg(unix)]
    _dir: fs::File,
}

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

    /// The record of a root rotation in progress (`<mesh>/rotation.json`, 0600: until the
    /// last phase it holds the new root's key and the new intermediates' keys).
    pub fn rotation(&self, mesh: &str) -> PathBuf {
        self.mesh_dir(mesh).join("rotation.json")
    }

    /// Writes one whole file in place of another (or of none), durably: written beside its
    /// target and synced, renamed over it, the directory synced. A crash leaves the old file
    /// or the new one, never a mix (a temporary file left beside it is removed by
    /// [`Store::repair`]).
    pub fn put(&self, new: &NewFile) -> Result<(), WriteError> {
        let dir = new.path.parent().map(Path::to_path_buf).unwrap_or_default();
        make_dirs(&dir).map_err(|e| describe(&dir, &e))?;
        let _lock = self.lock()?;
        let _critical = Critical::enter();
        let staged = Staged::write(&new.path, new.contents.as_bytes(), new.mode)
            .map_err(|e| describe(&new.path, &e))?;
        interrupt::failpoint("store:put:staged");
        if interrupt::requested() {
            return Err(WriteError::Interrupted);
        }
        // The commit.
        staged
            .replace()
            .and_then(|()| files::sync_dir(&dir))
            .map_err(|e| describe(&new.path, &e))?;
        interrupt::failpoint("store:put:done");
        Ok(())
    }

    /// Removes one file durably (nothing to do when it is absent).
    pub fn remove(&self, path: &Path) -> Result<(), WriteError> {
        if !present(path) {
            return Ok(());
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let _lock = self.lock()?;
        let _critical = Critical::enter();
        fs::remove_file(path)
            .and_then(|()| files::sync_dir(&dir))
            .map_err(|e| describe(path, &e))?;
        interrupt::failpoint("store:remove:done");
        Ok(())
    }

    /// Replaces a whole mesh directory (the last step of a root rotation: the new root and the
    /// intermediates it signed take the places of the old ones) in one step, as
    /// [`Store::replace_cluster`] does for a cluster: the new directory is written beside the
    /// old one (`.<mesh>.new-PID`, every file and directory synced), then swapped in. `new`
    /// names files by their final paths inside the mesh directory.
    pub fn replace_mesh(&self, mesh: &str, new: &[NewFile]) -> Result<(), WriteError> {
        let dir = self.mesh_dir(mesh);
        let pid = std::process::id();
        let fresh = self.dir.join(format!(".{mesh}.new-{pid}"));
        let old = self.dir.join(format!(".{mesh}.old-{pid}"));
        let _lock = self.lock()?;
        let _critical = Critical::enter();
        let discard = || {
            let _ = fs::remove_dir_all(&fresh);
            let _ = files::sync_dir(&self.dir);
        };
        let _ = fs::remove_dir_all(&fresh);
        if let Err(e) = write_tree(&dir, &fresh, new) {
            discard();
            return Err(WriteError::Failed(e));
        }
        interrupt::failpoint("store:replace-mesh:staged");
        if interrupt::requested() {
            discard();
            return Err(WriteError::Interrupted);
        }
        let aside = swap_in(&dir, &fresh, &old).inspect_err(|_| discard())?;
        files::sync_dir(&self.dir).map_err(|e| describe(&self.dir, &e))?;
        interrupt::failpoint("store:replace-mesh:swapped");
        let _ = fs::remove_dir_all(&aside);
        let _ = files::sync_dir(&self.dir);
        Ok(())
    }

    /// Adds new files; none may exist yet. Every file is written in full beside its target
    /// before the first one is linked into place; the batch is journalled first, so a run
    /// killed while linking is rolled back by the next writer ([`Store::repair`]), and if one
    /// cannot be linked the ones already linked by this call are removed again: the store ends
    /// as it was, or with every file.
    pub fn add(&self, new: &[NewFile]) -> Result<(), WriteError> {
        if new.is_empty() {
            return Ok(());
        }
        interrupt::failpoint("store:add:begin");
        make_dirs(&self.dir).map_err(|e| describe(&self.dir, &e))?;
        let _lock = self.lock()?;
        let _critical = Critical::enter();
        // Under the lock no other run adds: a name taken now was taken before this run looked.
        if let Some(f) = new.iter().find(|f| present(&f.path)) {
            return Err(WriteError::Failed(format!(
                "{}: appeared while meshc was writing (another run at the same time?); nothing was added, run again",
                f.path.display()
            )));
        }
        let mut created = Vec::new();
        let result = self.add_locked(new, &mut created);
        if result.is_err() {
            remove_created(&created);
        }
        result
    }

    fn add_locked(&self, new: &[NewFile], created: &mut Vec<PathBuf>) -> Result<(), WriteError> {
        let mut staged = Self::stage(new, created)?;
        interrupt::failpoint("store:add:staged");
        if interrupt::requested() {
            return Err(WriteError::Interrupted);
        }
        let journal = self.write_journal(&staged)?;
        let mut dirs: Vec<PathBuf> = staged
            .iter()
            .filter_map(|s| s.target().parent().map(Path::to_path_buf))
            .chain(
                created
                    .iter()
                    .filter_map(|d| d.parent().map(Path::to_path_buf)),
            )
            .collect();
        dirs.sort();
        dirs.dedup();
        // The staged keys, the new directories and the journal reach the disk together,
        // before the first name is linked.
        let batch: Vec<&Path> = staged
            .iter()
            .map(Staged::temp)
            .chain(dirs.iter().map(PathBuf::as_path))
            .chain([journal.as_path(), self.dir.as_path()])
            .collect();
        files::sync_batch(&self.dir, &batch).map_err(|e| describe(&self.dir, &e))?;
        interrupt::failpoint("store:add:journal");
        // Past this point an interrupt no longer stops the write: it completes.
        let mut linked: Vec<PathBuf> = Vec::with_capacity(staged.len());
        let mut failed = None;
        for s in &mut staged {
            match s.link() {
                Ok(()) => linked.push(s.target().to_path_buf()),
                Err(e) => {
                    failed = Some(if e.kind() == io::ErrorKind::AlreadyExists {
                        format!(
                            "{}: appeared while meshc was writing (another run at the same time?); nothing was added, run again",
                            s.target().display()
                        )
                    } else {
                        describe(s.target(), &e)
                    });
                    break;
                }
            }
            if linked.len() == 1 {
                interrupt::failpoint("store:add:linked-one");
            }
        }
        let dir_refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
        let synced = files::sync_batch(&self.dir, &dir_refs);
        if let (None, Err(e)) = (&failed, synced) {
            failed = Some(format!("cannot write {}: {e}", self.dir.display()));
        }
        if let Some(message) = failed {
            for path in &linked {
                let _ = fs::remove_file(path);
            }
            drop(staged);
            let _ = fs::remove_file(&journal);
            let _ = files::sync_batch(&self.dir, &dir_refs);
            let _ = files::sync_batch(&self.dir, &[&self.dir]);
            return Err(WriteError::Failed(message));
        }
        interrupt::failpoint("store:add:linked");
        // The commit: once the journal is gone, nothing rolls the files back.
        fs::remove_file(&journal)
            .and_then(|()| files::sync_batch(&self.dir, &[&self.dir]))
            .map_err(|e| describe(&journal, &e))?;
        interrupt::failpoint("store:add:committed");
        // The temporary names go last; one left by a crash here is only removed.
        drop(staged);
        let _ = files::sync_batch(&self.dir, &dir_refs);
        Ok(())
    }

    /// Writes the journal of an addition: each target and the temporary file it is linked
    /// from, relative to the store. Written whole or not at all; the caller syncs it with the
    /// staged files.
    fn write_journal(&self, staged: &[Staged]) -> Result<PathBuf, WriteError> {
        let relative = |p: &Path| {
            p.strip_prefix(&self.dir)
                .map(|r| r.to_string_lossy().to_string())
                .map_err(|_| format!("{}: not inside the PKI store", p.display()))
        };
        let entries = staged
            .iter()
            .map(|s| Ok([relative(s.target())?, relative(s.temp())?]))
            .collect::<Result<Vec<_>, String>>()?;
        let text = serde_json::to_string(&entries).map_err(|e| e.to_string())?;
        let journal = self
            .dir
            .join(format!(".meshc-add-{}.journal", std::process::id()));
        Staged::write_unsynced(&journal, text.as_bytes(), files::PRIVATE)
            .and_then(Staged::replace)
            .map_err(|e| describe(&journal, &e))?;
        Ok(journal)
    }

    /// Replaces one cluster's intermediate (rotation) as a whole: the new files are written
    /// into a fresh directory beside the old one, which is then swapped in (atomically on
    /// Linux), so the key and its certificate are never out of step. The old directory is
    /// removed once the new one is in place.
    pub fn replace_cluster(
        &self,
        mesh: &str,
        cluster: &str,
        new: &[NewFile],
    ) -> Result<(), WriteError> {
        let mesh_dir = self.mesh_dir(mesh);
        let dir = self.cluster_dir(mesh, cluster);
        let pid = std::process::id();
        let fresh = mesh_dir.join(format!(".{cluster}.new-{pid}"));
        let old = mesh_dir.join(format!(".{cluster}.old-{pid}"));
        make_dirs(&mesh_dir).map_err(|e| describe(&mesh_dir, &e))?;
        let _lock = self.lock()?;
        let _critical = Critical::enter();
        let discard = || {
            let _ = fs::remove_dir_all(&fresh);
            let _ = files::sync_dir(&mesh_dir);
        };
        // A directory of this name can only be a dead run's (same PID, earlier boot).
        let _ = fs::remove_dir_all(&fresh);
        if let Err(e) = write_dir(&fresh, new) {
            discard();
            return Err(WriteError::Failed(e));
        }
        interrupt::failpoint("store:replace:staged");
        if interrupt::requested() {
            discard();
            return Err(WriteError::Interrupted);
        }
        // The commit: the new directory takes the cluster's name.
        let had_old = present(&dir);
        if !had_old {
            fs::rename(&fresh, &dir)
                .and_then(|()| files::sync_dir(&mesh_dir))
                .map_err(|e| {
                    discard();
                    describe(&dir, &e)
                })?;
            interrupt::failpoint("store:replace:swapped");
            return Ok(());
        }
        let aside = swap_in(&dir, &fresh, &old).inspect_err(|_| discard())?;
        files::sync_dir(&mesh_dir).map_err(|e| describe(&mesh_dir, &e))?;
        interrupt::failpoint("store:replace:swapped");
        let _ = fs::remove_dir_all(&aside);
        let _ = files::sync_dir(&mesh_dir);
        Ok(())
    }

    /// Rolls back or removes what a run cut short left in the store (see the module comment);
    /// returns one line per repair. Writing commands call it before they read the store.
    pub fn repair(&self) -> Result<Vec<String>, WriteError> {
        if !self.dir.is_dir() {
            return Ok(Vec::new());
        }
        let _lock = self.lock()?;
        let _critical = Critical::enter();
        let leftovers = self.leftovers().map_err(|e| describe(&self.dir, &e))?;
        let mut done = Vec::new();
        let mut swaps: BTreeMap<PathBuf, Vec<(PathBuf, bool)>> = BTreeMap::new();
        for leftover in &leftovers {
            match leftover {
                Leftover::Journal(journal) => {
                    for target in self.roll_back(journal)? {
                        done.push(format!(
                            "removed {}: an addition that was cut short is rolled back",
                            target.display()
                        ));
                    }
                    fs::remove_file(journal)
                        .and_then(|()| files::sync_dir(&self.dir))
                        .map_err(|e| describe(journal, &e))?;
                }
                Leftover::Swap { dir, cluster, old } => {
                    swaps
                        .entry(cluster.clone())
                        .or_default()
                        .push((dir.clone(), *old));
                }
                Leftover::Temporary(_) => {}
            }
        }
        for (cluster, staged) in swaps {
            let parent = cluster.parent().map(Path::to_path_buf).unwrap_or_default();
            if !present(&cluster)
                && let Some((old, _)) = staged.iter().find(|(_, old)| *old)
            {
                fs::rename(old, &cluster)
                    .and_then(|()| files::sync_dir(&parent))
                    .map_err(|e| describe(&cluster, &e))?;
                done.push(format!(
                    "restored {} from {}: a rotation that was cut short did not happen",
                    cluster.display(),
                    old.display()
                ));
            }
            for (dir, _) in staged.iter().filter(|(dir, _)| present(dir)) {
                fs::remove_dir_all(dir).map_err(|e| describe(dir, &e))?;
                done.push(format!(
                    "removed {}, left by a run that was cut short",
                    dir.display()
                ));
            }
            files::sync_dir(&parent).map_err(|e| describe(&parent, &e))?;
        }
        for leftover in &leftovers {
            if let Leftover::Temporary(temp) = leftover
                && present(temp)
            {
                fs::remove_file(temp).map_err(|e| describe(temp, &e))?;
                if let Some(parent) = temp.parent() {
                    files::sync_dir(parent).map_err(|e| describe(parent, &e))?;
                }
                done.push(format!(
                    "removed {}, left by a run that was cut short",
                    temp.display()
                ));
            }
        }
        Ok(done)
    }

    /// For commands that only read the store: refuses a leftover that [`Store::repair`] would
    /// act on in a way that changes what is read (an addition or a rotation cut short), naming
    /// it and the command that repairs it. Leftovers whose removal changes nothing that is read
    /// (temporary files, staged directories beside the directory they were for) are ignored.
    pub fn check_leftovers(&self) -> Result<(), String> {
        if !self.dir.is_dir() {
            return Ok(());
        }
        let leftovers = self
            .leftovers()
            .map_err(|e| format!("cannot read {}: {e}", self.dir.display()))?;
        for leftover in leftovers {
            let (path, what) = match &leftover {
                Leftover::Journal(journal) => {
                    if self.journal_targets(journal)?.is_empty() {
                        continue;
                    }
                    (journal.clone(), "an addition of key material")
                }
                Leftover::Swap {
                    dir,
                    cluster,
                    old: true,
                } if !present(cluster) => (dir.clone(), "a rotation"),
                _ => continue,
            };
            return Err(format!(
                "{}: {what} was cut short here (the process was killed); this command only reads the store: run `meshc build` (or `meshc pki rotate`) to repair it",
                path.display()
            ));
        }
        Ok(())
    }

    /// The targets a journal lists that its own write put in place (same contents as the
    /// temporary file they were linked from, which is still there).
    fn journal_targets(&self, journal: &Path) -> Result<Vec<PathBuf>, String> {
        let text = fs::read_to_string(journal).map_err(|e| describe(journal, &e))?;
        let entries: Vec<[String; 2]> = serde_json::from_str(&text).map_err(|_| {
            format!(
                "{}: not a journal meshc wrote; move it out of the store",
                journal.display()
            )
        })?;
        let mut targets = Vec::new();
        for [target, temp] in entries {
            let (Some(target), Some(temp)) = (self.inside(&target), self.inside(&temp)) else {
                return Err(format!(
                    "{}: names a file outside the store; move it out of the store",
                    journal.display()
                ));
            };
            if let (Ok(made), Ok(staged)) = (fs::read(&target), fs::read(&temp))
                && made == staged
            {
                targets.push(target);
            }
        }
        Ok(targets)
    }

    /// Removes what an addition that was cut short put in place; returns what was removed.
    fn roll_back(&self, journal: &Path) -> Result<Vec<PathBuf>, WriteError> {
        let targets = self.journal_targets(journal)?;
        for target in &targets {
            fs::remove_file(target).map_err(|e| describe(target, &e))?;
            if let Some(parent) = target.parent() {
                files::sync_dir(parent).map_err(|e| describe(parent, &e))?;
            }
        }
        Ok(targets)
    }

    /// A path a journal names, if it stays inside the store.
    fn inside(&self, relative: &str) -> Option<PathBuf> {
        let path = Path::new(relative);
        path.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
            .then(|| self.dir.join(path))
    }

    /// Every leftover of a run cut short: journals and temporary files in the store directory,
    /// staged directories and temporary files in mesh directories, temporary files in cluster
    /// directories.
    fn leftovers(&self) -> io::Result<Vec<Leftover>> {
        let mut found = Vec::new();
        for (path, name, is_dir) in entries(&self.dir)? {
            if let Some((mesh, old)) = is_dir.then(|| staged_dir(&name)).flatten() {
                // A mesh directory a root rotation was swapping in (`.<mesh>.new-PID`) or
                // had moved aside (`.<mesh>.old-PID`).
                let cluster = path.with_file_name(mesh);
                found.push(Leftover::Swap {
                    dir: path,
                    cluster,
                    old,
                });
            } else if !is_dir && is_journal(&name) {
                found.push(Leftover::Journal(path));
            } else if !is_dir && files::is_temporary(&name) {
                found.push(Leftover::Temporary(path));
            } else if is_dir && !name.starts_with('.') {
                for (path, name, is_dir) in entries(&path)? {
                    if let Some((cluster, old)) = is_dir.then(|| staged_dir(&name)).flatten() {
                        let cluster = path.with_file_name(cluster);
                        found.push(Leftover::Swap {
                            dir: path,
                            cluster,
                            old,
                        });
                    } else if !is_dir && files::is_temporary(&name) {
                        found.push(Leftover::Temporary(path));
                    } else if is_dir {
                        for (path, name, is_dir) in entries(&path)? {
                            if !is_dir && files::is_temporary(&name) {
                                found.push(Leftover::Temporary(path));
                            }
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    /// Takes the writers' lock on the store directory, waiting for a writer that holds it
    /// (and saying so on standard error: a silent wait looks like a hang).
    fn lock(&self) -> Result<Lock, String> {
        #[cfg(unix)]
        {
            use rustix::fs::FlockOperation;
            let dir = fs::File::open(&self.dir).map_err(|e| describe(&self.dir, &e))?;
            let failed = |e| format!("cannot lock the PKI store {}: {e}", self.dir.display());
            match rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    eprintln!(
                        "note: waiting for another meshc that is writing to the PKI store {}",
                        self.dir.display()
                    );
                    rustix::fs::flock(&dir, FlockOperation::LockExclusive).map_err(failed)?;
                }
                Err(e) => return Err(failed(e)),
            }
            Ok(Lock { _dir: dir })
        }
        #[cfg(not(unix))]
        Ok(Lock {})
    }

    fn stage(new: &[NewFile], created: &mut Vec<PathBuf>) -> Result<Vec<Staged>, String> {
        let mut staged = Vec::with_capacity(new.len());
        for f in new {
            if let Some(parent) = f.path.parent() {
                created.extend(create_missing(parent).map_err(|e| describe(parent, &e))?);
            }
            staged.push(
                Staged::write_unsynced(&f.path, f.contents.as_bytes(), f.mode)
                    .map_err(|e| describe(&f.path, &e))?,
            );
        }
        Ok(staged)
    }
}

/// Whether anything (a file, a directory, a dangling link) is at `path`.
fn present(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// The entries of a directory: path, name, and whether it is a directory (not following links).
fn entries(dir: &Path) -> io::Result<Vec<(PathBuf, String, bool)>> {
    let mut list = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let is_dir = entry.file_type()?.is_dir();
        list.push((
            entry.path(),
            entry.file_name().to_string_lossy().to_string(),
            is_dir,
        ));
    }
    list.sort();
    Ok(list)
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `.meshc-add-PID.journal`.
fn is_journal(name: &str) -> bool {
    name.strip_prefix(".meshc-add-")
        .and_then(|rest| rest.strip_suffix(".journal"))
        .is_some_and(all_digits)
}

/// `.<cluster>.new-PID` or `.<cluster>.old-PID`: the cluster's name, and whether it is the old
/// directory moved aside.
fn staged_dir(name: &str) -> Option<(String, bool)> {
    let rest = name.strip_prefix('.')?;
    let (cluster, tail) = rest.rsplit_once('.')?;
    let (kind, pid) = tail.split_once('-')?;
    let old = match kind {
        "new" => false,
        "old" => true,
        _ => return None,
    };
    (!cluster.is_empty() && all_digits(pid)).then(|| (cluster.to_string(), old))
}

/// Creates `path` and its missing parents (0700), outermost first, syncing each new
/// directory's parent so that its name survives a power loss; returns the directories made.
fn make_dirs(path: &Path) -> io::Result<Vec<PathBuf>> {
    let created = create_missing(path)?;
    for dir in &created {
        files::sync_dir(dir.parent().unwrap_or(Path::new("")))?;
    }
    Ok(created)
}

/// Creates `path` and its missing parents (0700), outermost first, syncing nothing (the
/// caller syncs the batch); returns the directories made.
fn create_missing(path: &Path) -> io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = path;
    while !at.as_os_str().is_empty() && !present(at) {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    let mut created = Vec::new();
    for dir in missing.into_iter().rev() {
        match files::create_dirs(&dir, DIR_MODE) {
            Ok(()) => created.push(dir.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

/// Removes directories [`make_dirs`] made, innermost first, if they are still empty.
fn remove_created(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        if fs::remove_dir(dir).is_ok() {
            let _ = files::sync_dir(dir.parent().unwrap_or(Path::new("")));
        }
    }
}

/// Writes a new directory holding `new`'s files (by file name), every file and the directory
/// synced.
fn write_dir(dir: &Path, new: &[NewFile]) -> Result<(), String> {
    files::create_dirs(dir, DIR_MODE).map_err(|e| describe(dir, &e))?;
    for f in new {
        let path = dir.join(f.path.file_name().unwrap_or_default());
        Staged::write(&path, f.contents.as_bytes(), f.mode)
            .and_then(Staged::create)
            .map_err(|e| describe(&path, &e))?;
    }
    files::sync_dir(dir)
        .and_then(|()| files::sync_dir(dir.parent().unwrap_or(Path::new(""))))
        .map_err(|e| describe(dir, &e))
}

/// Writes a new directory `fresh` holding `new`'s files, each at its path relative to `base`
/// (subdirectories made as needed); every file and directory synced.
fn write_tree(base: &Path, fresh: &Path, new: &[NewFile]) -> Result<(), String> {
    files::create_dirs(fresh, DIR_MODE).map_err(|e| describe(fresh, &e))?;
    let mut dirs = vec![fresh.to_path_buf()];
    for f in new {
        let rel = f
            .path
            .strip_prefix(base)
            .map_err(|_| format!("{}: not inside {}", f.path.display(), base.display()))?;
        let path = fresh.join(rel);
        if let Some(parent) = path.parent()
            && !present(parent)
        {
            files::create_dirs(parent, DIR_MODE).map_err(|e| describe(parent, &e))?;
            dirs.push(parent.to_path_buf());
        }
        Staged::write(&path, f.contents.as_bytes(), f.mode)
            .and_then(Staged::create)
            .map_err(|e| describe(&path, &e))?;
    }
    for dir in dirs.iter().rev() {
        files::sync_dir(dir).map_err(|e| describe(dir, &e))?;
    }
    files::sync_dir(fresh.parent().unwrap_or(Path::new(""))).map_err(|e| describe(fresh, &e))
}

/// Swaps two directories in one step (`renameat2(RENAME_EXCHANGE)`): `Ok(false)` where the
/// system or the file system cannot, and the caller falls back to two renames.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<bool> {
    Ok(false)
}

/// Puts `fresh` in `dir`'s place: in one step where the system can ([`exchange`]), else by
/// two renames through `old`. Returns where the old directory is now (`fresh`'s name after an
/// exchange, `old` after the renames).
fn swap_in(dir: &Path, fresh: &Path, old: &Path) -> Result<PathBuf, WriteError> {
    match exchange(fresh, dir) {
        Ok(true) => Ok(fresh.to_path_buf()),
        Ok(false) => {
            swap_by_renames(dir, fresh, old)?;
            Ok(old.to_path_buf())
        }
        Err(e) => Err(WriteError::Failed(describe(dir, &e))),
    }
}

/// The swap where it cannot be one step: the old directory is moved aside, then the new one
/// takes its name. A crash between the two leaves the cluster's name free and `old` beside it,
/// which [`Store::repair`] renames back.
fn swap_by_renames(dir: &Path, fresh: &Path, old: &Path) -> Result<(), String> {
    let parent = dir.parent().unwrap_or(Path::new(""));
    fs::rename(dir, old)
        .and_then(|()| files::sync_dir(parent))
        .map_err(|e| describe(dir, &e))?;
    interrupt::failpoint("store:replace:moved-aside");
    if let Err(e) = fs::rename(fresh, dir) {
        let _ = fs::rename(old, dir);
        let _ = files::sync_dir(parent);
        return Err(describe(dir, &e));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        entries(dir)
            .expect("list")
            .into_iter()
            .map(|(_, name, _)| name)
            .collect()
    }

    fn cluster_files(tag: &str) -> Vec<NewFile> {
        vec![
            NewFile::private(PathBuf::from("ca-key.pem"), format!("{tag} key")),
            NewFile::public(PathBuf::from("ca-cert.pem"), format!("{tag} cert")),
        ]
    }

    #[test]
    fn the_two_rename_swap_cut_in_the_middle_is_undone_by_the_next_writer() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path().join("pki"));
        let mesh = store.mesh_dir("m");
        let dir = store.cluster_dir("m", "c");
        make_dirs(&mesh).expect("mesh");
        write_dir(&dir, &cluster_files("old")).expect("old");
        let fresh = mesh.join(".c.new-7");
        write_dir(&fresh, &cluster_files("new")).expect("new");
        // The first of the two renames, then the process dies.
        fs::rename(&dir, mesh.join(".c.old-7")).expect("aside");

        let refused = store.check_leftovers().expect_err("a reader must refuse");
        assert!(
            refused.contains(".c.old-7") && refused.contains("meshc build"),
            "{refused}"
        );
        let done = store.repair().expect("repair");
        assert_eq!(done.len(), 2, "{done:?}");
        assert_eq!(names(&mesh), ["c"]);
        assert_eq!(fs::read(dir.join("ca-key.pem")).expect("key"), b"old key");
        store.check_leftovers().expect("nothing left");
    }

    #[test]
    fn the_two_rename_swap_puts_the_new_directory_in_place() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mesh = tmp.path().join("m");
        let (dir, fresh, old) = (mesh.join("c"), mesh.join(".c.new-7"), mesh.join(".c.old-7"));
        write_dir(&dir, &cluster_files("old")).expect("old");
        write_dir(&fresh, &cluster_files("new")).expect("new");
        swap_by_renames(&dir, &fresh, &old).expect("swap");
        assert_eq!(
            fs::read(dir.join("ca-cert.pem")).expect("cert"),
            b"new cert"
        );
        assert_eq!(
            fs::read(old.join("ca-cert.pem")).expect("cert"),
            b"old cert"
        );
    }

    #[test]
    fn a_mesh_swap_cut_between_its_two_renames_is_undone_by_the_next_writer() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path().join("pki"));
        let mesh = store.mesh_dir("m");
        write_dir(&store.cluster_dir("m", "c"), &cluster_files("old")).expect("old");
        let fresh = store.dir.join(".m.new-9");
        write_dir(&fresh.join("c"), &cluster_files("new")).expect("new");
        // The first of the two renames of a mesh swap, then the process dies.
        fs::rename(&mesh, store.dir.join(".m.old-9")).expect("aside");

        let refused = store.check_leftovers().expect_err("a reader must refuse");
        assert!(refused.contains(".m.old-9"), "{refused}");
        let done = store.repair().expect("repair");
        assert_eq!(done.len(), 2, "{done:?}");
        assert_eq!(names(&store.dir), ["m"]);
        assert_eq!(fs::read(store.ca_key("m", "c")).expect("key"), b"old key");
        store.check_leftovers().expect("nothing left");
    }

    #[test]
    fn replace_mesh_swaps_the_whole_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path().join("pki"));
        write_dir(&store.cluster_dir("m", "c"), &cluster_files("old")).expect("old");
        fs::write(store.mesh_dir("m").join("stale"), "x").expect("stale");
        let new = vec![
            NewFile::public(store.root_cert("m"), "root".to_string()),
            NewFile::private(store.ca_key("m", "c"), "new key".to_string()),
        ];
        store.replace_mesh("m", &new).expect("swap");
        assert_eq!(names(&store.dir), ["m"]);
        assert_eq!(names(&store.mesh_dir("m")), ["c", "root-cert.pem"]);
        assert_eq!(fs::read(store.ca_key("m", "c")).expect("key"), b"new key");
        assert_eq!(
            files::loose_permissions(&store.ca_key("m", "c")).expect("mode"),
            None
        );
    }

    #[test]
    fn a_journal_that_names_a_file_outside_the_store_is_not_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path().join("pki"));
        make_dirs(&store.dir).expect("store");
        let outside = tmp.path().join("precious");
        fs::write(&outside, "x").expect("write");
        fs::write(store.dir.join(".copy"), "x").expect("write");
        fs::write(
            store.dir.join(".meshc-add-1.journal"),
            r#"[["../precious", ".copy"]]"#,
        )
        .expect("journal");
        let err = store.repair().expect_err("refused");
        assert!(err.to_string().contains("outside the store"), "{err}");
        assert!(outside.exists());
    }

    #[test]
    fn only_the_names_meshc_makes_are_leftovers() {
        assert_eq!(staged_dir(".c1.new-12"), Some(("c1".to_string(), false)));
        assert_eq!(staged_dir(".c1.old-12"), Some(("c1".to_string(), true)));
        for name in [
            ".c1.new-",
            ".c1.new-x",
            ".c1.older-1",
            "c1.new-1",
            "..new-1",
        ] {
            assert_eq!(staged_dir(name), None, "{name}");
        }
        assert!(is_journal(".meshc-add-12.journal"));
        assert!(!is_journal(".meshc-add-.journal"));
        assert!(!is_journal("meshc-add-1.journal"));
    }
}
