//! Writing files so that nobody ever sees half of one.
//!
//! Both things meshc writes are read by something that must not see a partial state: the PKI
//! store (a truncated key is a lost key) and the output tree (Argo CD or Flux may sync it at any
//! moment). Every write therefore goes to a temporary file beside its target, is flushed, and
//! only then takes the target's name with one rename (or one hard link, when an existing file
//! must never be replaced). A temporary file that is never committed is removed when it is
//! dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of files that hold private keys: readable by the owner only.
pub const PRIVATE: u32 = 0o600;
/// Mode of every other file meshc writes.
pub const PUBLIC: u32 = 0o644;

/// A file written beside its target, not yet in place.
#[derive(Debug)]
pub struct Staged {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staged {
    /// Writes `bytes` to a temporary file in the target's directory (which must exist), with
    /// `mode` on Unix, and flushes it to disk.
    pub fn write(target: &Path, bytes: &[u8], mode: u32) -> io::Result<Staged> {
        let staged = Staged::named(target)?;
        let mut file = create_new(&staged.temp, mode)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(staged)
    }

    /// Puts the file in place, replacing whatever was there.
    pub fn replace(mut self) -> io::Result<()> {
        fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        Ok(())
    }

    /// Puts the file in place only if nothing is there yet (`AlreadyExists` otherwise): the
    /// hard link either creates the name or fails, so two writers can never both win.
    pub fn create(mut self) -> io::Result<()> {
        fs::hard_link(&self.temp, &self.target)?;
        self.committed = true;
        let _ = fs::remove_file(&self.temp);
        Ok(())
    }

    /// Links the file into place like [`Staged::create`], but keeps the temporary name until
    /// the value is dropped: while both names exist, the temporary file proves which target
    /// this write made (the PKI store rolls back an interrupted addition with it).
    pub fn link(&mut self) -> io::Result<()> {
        fs::hard_link(&self.temp, &self.target)
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes like [`Staged::write`] without syncing: for files that can be rebuilt (the
    /// output tree), synced once for the whole tree instead ([`sync_tree`]).
    pub fn write_unsynced(target: &Path, bytes: &[u8], mode: u32) -> io::Result<Staged> {
        let staged = Staged::named(target)?;
        let mut file = create_new(&staged.temp, mode)?;
        file.write_all(bytes)?;
        Ok(staged)
    }

    /// The temporary file's path.
    pub fn temp(&self) -> &Path {
        &self.temp
    }

    /// Leaves the temporary file where it is when this is dropped: something else (the output
    /// tree's journal) now owns putting it in place.
    pub fn keep(mut self) {
        self.committed = true;
    }

    fn named(target: &Path) -> io::Result<Staged> {
        Ok(Staged {
            temp: temporary_name(target)?,
            target: target.to_path_buf(),
            committed: false,
        })
    }
}

/// A new name beside `target` for staging it: `.NAME.meshc-PID-N`, unique in this process.
pub fn temporary_name(target: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    Ok(target.with_file_name(format!(
        ".{}{TEMP_MARK}{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )))
}

/// Writes a new file (`AlreadyExists` if there is one) with `mode` on Unix, unsynced: for
/// files inside a directory that is itself staged under a temporary name.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    create_new(path, mode)?.write_all(bytes)
}

/// What every temporary name holds: `.NAME.meshc-PID-N`.
const TEMP_MARK: &str = ".meshc-";

/// Makes durable every file and directory entry written on `dir`'s file system: one
/// `syncfs` on Linux however many were written (a batch of 600 key files and 200 directories
/// is one call instead of 800 `fsync`s); elsewhere each of `paths`, files and directories, is
/// synced in turn.
pub fn sync_batch(dir: &Path, paths: &[&Path]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let _ = paths;
        rustix::fs::syncfs(File::open(dir)?)?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        for path in paths {
            if path.is_dir() {
                sync_dir(path)?;
            } else {
                File::open(path)?.sync_all()?;
            }
        }
    }
    Ok(())
}

/// Whether `name` is a temporary name [`temporary_name`] makes (`.NAME.meshc-PID-N`): what a
/// process killed in the middle of a write leaves behind (a file, or a staged directory).
pub fn is_temporary(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix('.')
        .and_then(|rest| rest.rsplit_once(".meshc-"))
        .and_then(|(target, tail)| Some((target, tail.split_once('-')?)))
        .is_some_and(|(target, (pid, n))| !target.is_empty() && digits(pid) && digits(n))
}

/// Flushes a directory's entries (names created, renamed or removed in it) to disk, so that a
/// power loss cannot undo a rename that has been reported done. A no-op where directories
/// cannot be opened (Windows).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Creates a directory and its parents; new directories get `mode` on Unix.
pub fn create_dirs(path: &Path, mode: u32) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder.create(path)
}

/// The permission bits of a file that group or others may use (Unix); `None` elsewhere or
/// when they are clear.
pub fn loose_permissions(path: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode() & 0o777;
        Ok((mode & 0o077 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_refuses_to_replace_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("key.pem");
        Staged::write(&target, b"first", PRIVATE)
            .and_then(Staged::create)
            .expect("first write");
        let err = Staged::write(&target, b"second", PRIVATE)
            .and_then(Staged::create)
            .expect_err("second write must fail");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).expect("read"), b"first");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("key.pem")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&target).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn temporary_names_are_told_from_the_files_they_stand_for() {
        assert!(is_temporary(".ca-key.pem.meshc-4242-0"));
        assert!(is_temporary("..meshc-add-7.journal.meshc-7-12"));
        for name in [
            "ca-key.pem",
            ".ca-key.pem",
            ".meshc-1-2",
            ".ca-key.pem.meshc-1-",
            ".ca-key.pem.meshc-x-1",
            ".ca-key.pem.meshc-12",
        ] {
            assert!(!is_temporary(name), "{name}");
        }
    }

    #[test]
    fn a_linked_write_keeps_its_temporary_name_until_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("key.pem");
        let mut staged = Staged::write(&target, b"k", PRIVATE).expect("stage");
        staged.link().expect("link");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 2);
        drop(staged);
        assert_eq!(fs::read(&target).expect("read"), b"k");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn an_uncommitted_write_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out.yaml");
        drop(Staged::write(&target, b"x", PUBLIC).expect("stage"));
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0);
    }
}
