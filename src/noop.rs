//! The no-op check: a rebuild whose inputs and output are as the last clean build left them
//! does nothing, so it need not compile anything to find that out.
//!
//! A build is a pure function of its inputs: the topology, the PKI store, the files the
//! topology names, the template overrides, the CRD files, meshc itself, where the tree is, and
//! (for expiry warnings) the time. After a clean build (no diagnostic at all), `record` writes
//! a record to the user's cache directory (`$XDG_CACHE_HOME/meshc/noop/`, else
//! `~/.cache/meshc/noop/`; one file per output directory, named by the digest of its path, so
//! that `out/` holds only what is committed): a digest of every input and the `stat` of every
//! file the build owns (size, modification and change times, inode). The next `meshc build`
//! hashes the inputs again and `stat`s the files, as git's index and make do: when both match,
//! and no certificate is within 30 days of expiry, it prints the summary the full build would
//! print and stops. Anything else (a changed byte, a touched file, a missing or unreadable
//! record) takes the full path, which removes the record before it writes anything, so a build
//! killed half way never leaves a record that vouches for a tree it changed.
//!
//! `build --check` and `diff` never use it: they compare bytes, which is what CI wants on a
//! fresh clone (where every modification time is new anyway).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the record for `out` lives; `None` without a cache directory, or while a failpoint
/// is set (the crash tests need every build to run whole).
fn record_path(out: &Path) -> Option<PathBuf> {
    if std::env::var_os("MESHC_FAILPOINT").is_some() {
        return None;
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    let out = std::fs::canonicalize(out).ok()?;
    let name = crate::emit::digest(out.to_string_lossy().as_bytes());
    Some(
        cache
            .join("meshc/noop")
            .join(format!("{}.json", &name["sha256:".len()..])),
    )
}

/// Everything a build reads, by path.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub topology: &'a Path,
    pub out: &'a Path,
    pub store: &'a Path,
    pub templates: Option<&'a Path>,
    pub crds: &'a [PathBuf],
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    digest: String,
    /// The files the topology names (tokens, CAs, roots, licenses), resolved.
    named: Vec<PathBuf>,
    /// Unix seconds after which the record no longer vouches (a certificate's expiry warning).
    valid_until: i64,
    /// Per scope key, the files the build owns there.
    scopes: BTreeMap<String, usize>,
    files: Vec<Stat>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Stat {
    path: String,
    size: u64,
    mtime: i128,
    ctime: i128,
    inode: u64,
}

#[cfg(unix)]
fn stat(out: &Path, rel: &str) -> Option<Stat> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(out.join(rel)).ok()?;
    if !m.is_file() {
        return None;
    }
    Some(Stat {
        path: rel.to_string(),
        size: m.len(),
        mtime: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ctime: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        inode: m.ino(),
    })
}

#[cfg(not(unix))]
fn stat(_out: &Path, _rel: &str) -> Option<Stat> {
    None
}

/// From how many files their `stat`s are taken on every core (12,000 at 200 clusters).
const PARALLEL_STATS: usize = 1_024;

/// Hashes every input into one digest. Unreadable inputs hash as such: the full build then
/// reports them.
fn digest(inputs: &Inputs<'_>, named: &[PathBuf]) -> String {
    let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut part = |label: &str, bytes: &[u8]| {
        h.update(label.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part("meshc", env!("CARGO_PKG_VERSION").as_bytes());
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    part(
        "topology",
        canonical(inputs.topology).to_string_lossy().as_bytes(),
    );
    part(
        "topology-bytes",
        &std::fs::read(inputs.topology).unwrap_or_default(),
    );
    part("out", canonical(inputs.out).to_string_lossy().as_bytes());
    for (label, dir) in [
        ("store", Some(inputs.store)),
        ("templates", inputs.templates),
    ] {
        let Some(dir) = dir else {
            part(label, b"none");
            continue;
        };
        part(label, canonical(dir).to_string_lossy().as_bytes());
        for file in walk(dir) {
            part(
                "file",
                file.strip_prefix(dir)
                    .unwrap_or(&file)
                    .to_string_lossy()
                    .as_bytes(),
            );
            part("bytes", &std::fs::read(&file).unwrap_or_default());
        }
    }
    for file in inputs.crds.iter().chain(named) {
        part("named", canonical(file).to_string_lossy().as_bytes());
        match std::fs::read(file) {
            Ok(bytes) => part("bytes", &bytes),
            Err(_) => part("missing", b""),
        }
    }
    let d = h.finish();
    d.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Every regular file under `dir`, sorted; the entry names of every directory too, so that an
/// added or removed empty directory counts.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    files.push(path.clone());
                    stack.push(path);
                }
                Ok(_) => files.push(path),
                Err(_) => {}
            }
        }
    }
    files.sort();
    files
}

/// The files a topology names, resolved against its directory.
pub fn named_files(model: &crate::model::Model, base_dir: &Path) -> Vec<PathBuf> {
    let t = &model.topology;
    let mut files: Vec<PathBuf> = Vec::new();
    for mesh in &t.meshes {
        if let Some(root) = &mesh.ca.root {
            files.push(base_dir.join(&root.cert_file));
            files.push(base_dir.join(&root.key_file));
        }
        if let Some(file) = mesh.istio.license.as_ref().and_then(|l| l.file.as_ref()) {
            files.push(base_dir.join(file));
        }
    }
    for c in &t.clusters {
        if let Some(file) = c.api_server.as_ref().and_then(|a| a.ca_file.as_ref()) {
            files.push(base_dir.join(file));
        }
        if let Some(file) = c.remote_secret.as_ref().and_then(|r| r.token_file.as_ref()) {
            files.push(base_dir.join(file));
        }
    }
    files
}

/// The per-scope counts of a build that would change nothing, when the record vouches for
/// the inputs and the tree; `None` means "build".
pub fn unchanged(inputs: &Inputs<'_>, now: i64) -> Option<BTreeMap<String, usize>> {
    let text = std::fs::read(record_path(inputs.out)?).ok()?;
    let record: Record = serde_json::from_slice(&text).ok()?;
    if now >= record.valid_until || inputs.out.join(crate::emit::JOURNAL).exists() {
        return None;
    }
    // A changed file stops the walk.
    let all_same = crate::parallel::map_many(&record.files, PARALLEL_STATS, |f| {
        stat(inputs.out, &f.path).filter(|s| s == f).ok_or(())
    })
    .is_ok();
    (all_same && digest(inputs, &record.named) == record.digest).then_some(record.scopes)
}

/// Forgets the record: called before a build writes anything.
pub fn forget(out: &Path) {
    if let Some(path) = record_path(out) {
        let _ = std::fs::remove_file(path);
    }
}

/// Writes the record after a clean build (best effort: without it the next build takes the
/// full path). `files` are the paths the build owns, with their scope keys.
pub fn record<'f>(
    inputs: &Inputs<'_>,
    named: Vec<PathBuf>,
    valid_until: i64,
    files: impl Iterator<Item = (&'f str, String)>,
) {
    let mut scopes: BTreeMap<String, usize> = BTreeMap::new();
    let mut rels = Vec::new();
    for (rel, scope) in files {
        *scopes.entry(scope).or_default() += 1;
        rels.push(rel);
    }
    let Ok(mut stats) =
        crate::parallel::map_many(&rels, PARALLEL_STATS, |rel| stat(inputs.out, rel).ok_or(()))
    else {
        return;
    };
    let Some(manifest) = stat(inputs.out, crate::emit::MANIFEST) else {
        return;
    };
    stats.push(manifest);
    let record = Record {
        digest: digest(inputs, &named),
        named,
        valid_until,
        scopes,
        files: stats,
    };
    let (Some(path), Ok(bytes)) = (record_path(inputs.out), serde_json::to_vec(&record)) else {
        return;
    };
    let Some(dir) = path.parent() else {
        return;
    };
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    if std::fs::create_dir_all(dir).is_ok() && std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}
