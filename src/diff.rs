//! The diff stage: what a build would change, object by object, for review before a merge.
//!
//! `out/` is reviewed in pull requests, so a change must read as what it does to each
//! cluster, not as a list of rewritten files. Both sides (the tree on disk, or the output of
//! another topology) are taken apart into items: every Kubernetes object is identified by
//! (cluster, apiVersion, kind, namespace, name), wherever in the cluster's directory it is
//! written (a move between files is not a change); every other file (Helm values, IstioOperator
//! inputs are objects, the README) by its path. Items are compared as data, and a changed item
//! is shown as a unified diff of its canonical YAML (keys sorted), so that the order of fields
//! in the topology or in a hand-edited file never shows up as a change.
//!
//! Secret values are never shown. A Secret's `data` and `stringData` values are replaced by a
//! description before anything is rendered: certificates by their subject, issuer, SANs,
//! notAfter and SHA-256 fingerprint; kubeconfigs by their clusters and contexts, credentials
//! hidden; private keys and tokens by a placeholder that says `(changed)` when they did.
//! Comparison uses the real values, so a changed key is always reported, never shown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::output::Scope;

/// A tree of output files: path relative to the output directory → the scope the file
/// belongs to and its bytes.
pub type Files = BTreeMap<String, (Scope, Arc<[u8]>)>;

/// One side of a comparison: the files, and the clusters whose `cacerts` Secret a build would
/// write once it has made their key material (not in the PKI store yet, so not in `files`).
#[derive(Debug, Default)]
pub struct Side {
    pub files: Files,
    pub pending: BTreeSet<String>,
}

impl Side {
    /// A tree read from disk: its key material is what it is, nothing pends.
    pub fn on_disk(files: BTreeMap<String, (Scope, Vec<u8>)>) -> Side {
        Side {
            files: files
                .into_iter()
                .map(|(path, (scope, bytes))| (path, (scope, Arc::from(bytes))))
                .collect(),
            pending: BTreeSet::new(),
        }
    }

    /// What a build renders, with the clusters whose key material it would still make (the
    /// bytes are shared with the output, not copied).
    pub fn rendered(output: &crate::output::Output, pending: BTreeSet<String>) -> Side {
        Side {
            files: output
                .files
                .iter()
                .map(|(path, f)| (path.clone(), (f.scope.clone(), Arc::clone(&f.bytes))))
                .collect(),
            pending,
        }
    }
}

/// Files that are meshc's own bookkeeping, not output: never compared.
const BOOKKEEPING: &str = ".meshc/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

impl Change {
    fn sign(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Changed => '~',
        }
    }
}

/// What identifies an item on both sides. Sorted: cluster, then objects before files, then
/// kind, namespace, name, apiVersion.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Id {
    cluster: String,
    file_item: bool,
    kind: String,
    namespace: String,
    name: String,
    api_version: String,
}

/// What an item holds, as compared and shown.
#[derive(Debug, Clone, PartialEq)]
enum Content {
    /// A Kubernetes object, or the documents of a YAML file that holds no objects.
    Yaml(Value),
    /// A text file (the README).
    Text(String),
    /// A file that is neither YAML nor UTF-8 text; its bytes are compared, never shown.
    Opaque(Vec<u8>),
    /// Key material a build would create: not in the PKI store yet, so nothing to show.
    Pending,
}

#[derive(Debug, Clone)]
struct Item {
    /// The path within the cluster's directory (within the tree, for other scopes).
    file: String,
    /// The path within the output directory.
    path: String,
    content: Content,
}

/// One line of what a reviewer reads for an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Context(String),
    Added(String),
    Removed(String),
    /// `@@ -a,b +c,d @@`
    Hunk(String),
    /// A sentence about the change (changed secret keys, pending key material).
    Note(String),
}

/// One added, removed or changed item.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub cluster: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub change: Change,
    /// The changed fields (`spec.trafficPolicy.loadBalancer`, `data["ca-cert.pem"]`); empty for
    /// an added or removed item, and for a text file.
    pub paths: Vec<String>,
    #[serde(rename = "apiVersion")]
    pub api_version: Option<String>,
    /// Where the item is written in the cluster's directory (the new side's, when both have it).
    pub file: String,
    #[serde(skip)]
    pub lines: Vec<Line>,
}

impl Entry {
    /// `DestinationRule sample/helloworld`, or `file install/helm/istiod.values.yaml`.
    pub fn title(&self) -> String {
        if self.api_version.is_none() {
            return format!("file {}", self.name);
        }
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// `(networking.istio.io/v1, istio/destinationrule-sample-helloworld.yaml)`; nothing for a
    /// file item, whose title is its path.
    pub fn whereabouts(&self) -> Option<String> {
        self.api_version
            .as_ref()
            .map(|v| format!("({v}, {})", self.file))
    }
}

/// Added, changed and removed items of one cluster.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
}

impl Counts {
    fn add(&mut self, change: Change) {
        match change {
            Change::Added => self.added += 1,
            Change::Changed => self.changed += 1,
            Change::Removed => self.removed += 1,
        }
    }
}

/// Everything that differs between two trees.
#[derive(Debug, Default)]
pub struct Report {
    /// Sorted by cluster, then objects before files, kind, namespace, name.
    pub entries: Vec<Entry>,
    /// Files whose bytes differ although no item in them changed (an object moved to another
    /// file, fields reordered by hand): rewritten by a build, not a change to review.
    pub rewritten: Vec<String>,
}

impl Report {
    /// Whether any item was added, changed or removed.
    pub fn has_changes(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Per cluster, in name order; clusters without changes are left out.
    pub fn counts(&self) -> BTreeMap<&str, Counts> {
        let mut counts: BTreeMap<&str, Counts> = BTreeMap::new();
        for e in &self.entries {
            counts.entry(e.cluster.as_str()).or_default().add(e.change);
        }
        counts
    }

    fn total(&self) -> Counts {
        let mut total = Counts::default();
        for e in &self.entries {
            total.add(e.change);
        }
        total
    }
}

/// Compares two trees. A pending `cacerts` is new key material: changed whatever the other
/// side holds, unless the other side is pending too.
pub fn compare(old: &Side, new: &Side) -> Report {
    // A file with the same bytes on both sides holds the same items on both: left out before
    // anything is parsed (most of a tree, in most reviews). Identities are unique within a
    // cluster's directory (kustomize refuses duplicates), so no item is lost by this.
    let same: BTreeSet<&String> = old
        .files
        .iter()
        .filter(|(path, bytes)| new.files.get(*path) == Some(bytes))
        .map(|(path, _)| path)
        .collect();
    let old_items = items(old, &same);
    let new_items = items(new, &same);
    // Material made for each side alone (no store yet) differs in its bytes, not in what a
    // build would write: not a rewrite either.
    let pending_both: BTreeSet<String> = old
        .pending
        .intersection(&new.pending)
        .map(|c| format!("{c}/cacerts.yaml"))
        .collect();
    let (old, new) = (&old.files, &new.files);
    let mut report = Report::default();
    let ids: BTreeSet<&Id> = old_items.keys().chain(new_items.keys()).collect();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    for id in ids {
        let entry = match (old_items.get(id), new_items.get(id)) {
            // Pending on both sides is no change: neither has material to compare.
            (Some(a), Some(b)) if a.content == b.content => None,
            (Some(a), Some(b)) => Some(changed(id, a, b)),
            (None, Some(b)) => Some(whole(id, b, Change::Added)),
            (Some(a), None) => Some(whole(id, a, Change::Removed)),
            (None, None) => None,
        };
        if let Some(entry) = entry {
            for side in [&old_items, &new_items] {
                if let Some(item) = side.get(id) {
                    touched.insert(item.path.clone());
                }
            }
            report.entries.push(entry);
        }
    }
    // Files whose bytes differ but whose items are all the same.
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for path in paths {
        if path.starts_with(BOOKKEEPING)
            || touched.contains(path.as_str())
            || pending_both.contains(path.as_str())
        {
            continue;
        }
        if old.get(path) != new.get(path) {
            report.rewritten.push(path.clone());
        }
    }
    report
}

/// Takes every file apart into items.
fn items(side: &Side, skip: &BTreeSet<&String>) -> BTreeMap<Id, Item> {
    let mut out: BTreeMap<Id, Item> = BTreeMap::new();
    for cluster in &side.pending {
        let (id, item) = pending_item(cluster, "cacerts.yaml", &format!("{cluster}/cacerts.yaml"));
        out.insert(id, item);
    }
    for (path, (scope, bytes)) in &side.files {
        if path.starts_with(BOOKKEEPING) || skip.contains(path) {
            continue;
        }
        let cluster = scope.to_string();
        let file = scope
            .cluster()
            .and_then(|c| path.strip_prefix(c))
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(path);
        let cluster = cluster.as_str();
        let file_item = |content: Content| {
            (
                Id {
                    cluster: cluster.to_string(),
                    file_item: true,
                    kind: "File".to_string(),
                    namespace: String::new(),
                    name: file.to_string(),
                    api_version: String::new(),
                },
                Item {
                    file: file.to_string(),
                    path: path.clone(),
                    content,
                },
            )
        };
        let found: Vec<(Id, Item)> = match parse_yaml(file, bytes) {
            Some(docs) if !docs.is_empty() && docs.iter().all(is_object) => docs
                .into_iter()
                .map(|object| object_item(cluster, file, path, object))
                .collect(),
            // A Secret that is not a well-formed object (a hand edit) is never shown.
            Some(docs) if docs.iter().any(mentions_secret) => {
                vec![file_item(Content::Opaque(bytes.to_vec()))]
            }
            // A YAML file that holds no objects (Helm values, a Kustomization): its documents
            // as one value.
            Some(mut docs) => vec![file_item(Content::Yaml(if docs.len() == 1 {
                docs.remove(0)
            } else {
                Value::Array(docs)
            }))],
            None => match std::str::from_utf8(bytes) {
                Ok(text) if !is_yaml(file) => vec![file_item(Content::Text(text.to_string()))],
                _ => vec![file_item(Content::Opaque(bytes.to_vec()))],
            },
        };
        for (id, item) in found {
            // An identity repeated in one tree (a hand-made copy): the first file wins.
            out.entry(id).or_insert(item);
        }
    }
    out
}

fn is_yaml(file: &str) -> bool {
    std::path::Path::new(file)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// A Kubernetes object: apiVersion, kind and metadata.name are strings.
fn is_object(d: &Value) -> bool {
    d["apiVersion"].is_string() && d["kind"].is_string() && d["metadata"]["name"].is_string()
}

fn parse_yaml(file: &str, bytes: &[u8]) -> Option<Vec<Value>> {
    if !is_yaml(file) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let docs: Vec<Value> = crate::yaml::documents(text).ok()?;
    Some(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn object_item(cluster: &str, file: &str, path: &str, object: Value) -> (Id, Item) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        Id {
            cluster: cluster.to_string(),
            file_item: false,
            kind: text(&object["kind"]),
            namespace: text(&object["metadata"]["namespace"]),
            name: text(&object["metadata"]["name"]),
            api_version: text(&object["apiVersion"]),
        },
        Item {
            file: file.to_string(),
            path: path.to_string(),
            content: Content::Yaml(object),
        },
    )
}

/// The cacerts Secret a build would write once it has made the key material.
fn pending_item(cluster: &str, file: &str, path: &str) -> (Id, Item) {
    (
        Id {
            cluster: cluster.to_string(),
            file_item: false,
            kind: "Secret".to_string(),
            namespace: crate::istio::SYSTEM_NAMESPACE.to_string(),
            name: "cacerts".to_string(),
            api_version: "v1".to_string(),
        },
        Item {
            file: file.to_string(),
            path: path.to_string(),
            content: Content::Pending,
        },
    )
}

const PENDING_NOTE: &str =
    "new key material: not in the PKI store yet; `meshc build` creates it (contents not shown)";

fn entry(id: &Id, file: &str, change: Change, paths: Vec<String>, lines: Vec<Line>) -> Entry {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Entry {
        cluster: id.cluster.clone(),
        kind: id.kind.clone(),
        namespace: non_empty(&id.namespace),
        name: id.name.clone(),
        change,
        paths,
        api_version: non_empty(&id.api_version),
        file: file.to_string(),
        lines,
    }
}

/// An added or removed item, listed whole.
fn whole(id: &Id, item: &Item, change: Change) -> Entry {
    let lines = match &item.content {
        Content::Pending => vec![Line::Note(PENDING_NOTE.to_string())],
        Content::Opaque(bytes) => vec![Line::Note(format!(
            "{} bytes, not YAML or text (contents not shown)",
            bytes.len()
        ))],
        content => {
            let text = shown(content);
            text.lines()
                .map(|l| match change {
                    Change::Removed => Line::Removed(l.to_string()),
                    _ => Line::Added(l.to_string()),
                })
                .collect()
        }
    };
    entry(id, &item.file, change, Vec::new(), lines)
}

fn changed(id: &Id, old: &Item, new: &Item) -> Entry {
    let mut lines = Vec::new();
    let mut paths = Vec::new();
    match (&old.content, &new.content) {
        (Content::Yaml(a), Content::Yaml(b)) => {
            changed_paths(a, b, "", &mut paths);
            if is_secret(a) && is_secret(b) && id.name == "cacerts" {
                lines.extend(trust_notes(a, b).into_iter().map(Line::Note));
            }
            if is_secret(b) || is_secret(a) {
                let keys: Vec<&str> = paths
                    .iter()
                    .filter_map(|p| secret_key(p))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if !keys.is_empty() {
                    lines.push(Line::Note(format!("changed keys: {}", keys.join(", "))));
                }
            }
            let (va, vb) = secret_views(a, b);
            lines.extend(unified(&yaml_text(&va), &yaml_text(&vb)));
        }
        (_, Content::Pending) => lines.push(Line::Note(PENDING_NOTE.to_string())),
        (Content::Pending, _) => lines.push(Line::Note(
            "the key material is now in the PKI store (contents not shown)".to_string(),
        )),
        (Content::Opaque(_), _) | (_, Content::Opaque(_)) => lines.push(Line::Note(
            "not YAML or text on one side (contents not shown)".to_string(),
        )),
        (a, b) => lines.extend(unified(&shown(a), &shown(b))),
    }
    entry(id, &new.file, Change::Changed, paths, lines)
}

/// The certificates of one entry of a Secret's `data` (none when it holds none).
fn secret_certs(secret: &Value, key: &str) -> Vec<crate::pki::Cert> {
    let bytes = secret_bytes(&secret["data"][key], true);
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| crate::pki::certs_from_pem(text).ok())
        .unwrap_or_default()
}

/// What a change of `cacerts` does to the cluster's trust and signer, when more than one root
/// is involved (a root rotation): `trust: {old} → {old, new}`, `signer: old → new`. Roots are
/// named in order of appearance, the old side's first: in every bundle meshc writes the root
/// being retired comes first.
fn trust_notes(old: &Value, new: &Value) -> Vec<String> {
    let (before, after) = (
        secret_certs(old, "root-cert.pem"),
        secret_certs(new, "root-cert.pem"),
    );
    let mut roots: Vec<&crate::pki::Cert> = Vec::new();
    for c in before.iter().chain(&after) {
        if !roots.iter().any(|r| r.der == c.der) {
            roots.push(c);
        }
    }
    if roots.len() < 2 {
        return Vec::new();
    }
    let label = |i: usize| match i {
        0 => "old".to_string(),
        1 => "new".to_string(),
        n => format!("root {}", n + 1),
    };
    let set = |bundle: &[crate::pki::Cert]| {
        let names: Vec<String> = roots
            .iter()
            .enumerate()
            .filter(|(_, r)| bundle.iter().any(|c| c.der == r.der))
            .map(|(i, _)| label(i))
            .collect();
        format!("{{{}}}", names.join(", "))
    };
    let mut notes = vec![format!("trust: {} → {}", set(&before), set(&after))];
    let signer = |secret: &Value| {
        let cert = secret_certs(secret, "ca-cert.pem").into_iter().next()?;
        let root = roots.iter().position(|r| cert.is_signed_by(r))?;
        Some((root, cert.der))
    };
    if let (Some((ra, ia)), Some((rb, ib))) = (signer(old), signer(new))
        && (ra, &ia) != (rb, &ib)
    {
        let same_root = if ra == rb { " (new intermediate)" } else { "" };
        notes.push(format!("signer: {} → {}{same_root}", label(ra), label(rb)));
    }
    for (i, r) in roots.iter().enumerate() {
        notes.push(format!("{} root: SHA-256 {}", label(i), r.fingerprint()));
    }
    notes
}

/// The text a reviewer reads for one item: canonical YAML, secret values described.
fn shown(content: &Content) -> String {
    match content {
        Content::Yaml(v) => yaml_text(&view(v)),
        Content::Text(t) => scrub_text(t),
        Content::Opaque(_) | Content::Pending => String::new(),
    }
}

/// Canonical YAML for review: a long line is kept on one line (a fingerprint folded in two
/// would read as two changes), multi-line strings as literal blocks.
fn yaml_text(v: &Value) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = 100_000;
    serde_saphyr::to_string_with_options(v, options).unwrap_or_default()
}

/// The lines of a unified diff (3 lines of context), hunk headers included.
fn unified(old: &str, new: &str) -> Vec<Line> {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut lines = Vec::new();
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        lines.push(Line::Hunk(hunk.header().to_string()));
        for change in hunk.iter_changes() {
            let text = change.value().trim_end_matches('\n').to_string();
            lines.push(match change.tag() {
                similar::ChangeTag::Equal => Line::Context(text),
                similar::ChangeTag::Delete => Line::Removed(text),
                similar::ChangeTag::Insert => Line::Added(text),
            });
        }
    }
    lines
}

/// Every field whose value differs, as `a.b[0]["c.d"]`.
fn changed_paths(old: &Value, new: &Value, at: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let path = child(at, k);
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => changed_paths(x, y, &path, out),
                    _ => out.push(path),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let path = format!("{at}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => changed_paths(x, y, &path, out),
                    _ => out.push(path),
                }
            }
        }
        (a, b) if a != b => out.push(if at.is_empty() {
            ".".to_string()
        } else {
            at.to_string()
        }),
        _ => {}
    }
}

fn child(at: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    } else {
        format!("{at}[{}]", Value::String(key.to_string()))
    }
}

/// The key of `data` or `stringData` a path is in (`data["ca-key.pem"]` → `ca-key.pem`).
fn secret_key(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("data")
        .or_else(|| path.strip_prefix("stringData"))?;
    if let Some(quoted) = rest.strip_prefix("[\"") {
        return quoted.split("\"]").next();
    }
    let plain = rest.strip_prefix('.')?;
    Some(plain.split(['.', '[']).next().unwrap_or(plain))
}

/// A Secret, whatever its apiVersion says (a hand edit must not unmask it).
fn is_secret(v: &Value) -> bool {
    v["kind"]
        .as_str()
        .is_some_and(|k| k.eq_ignore_ascii_case("secret"))
}

/// Whether any mapping anywhere in `v` is a Secret.
fn mentions_secret(v: &Value) -> bool {
    match v {
        Value::Object(m) => is_secret(v) || m.values().any(mentions_secret),
        Value::Array(a) => a.iter().any(mentions_secret),
        _ => false,
    }
}

/// Whether a string is, or encodes, a private key: the last guard for key material that a
/// hand edit moved out of a Secret's values.
fn holds_key(s: &str) -> bool {
    if s.contains("PRIVATE KEY") {
        return true;
    }
    let t = s.trim();
    t.len() >= 40
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n' | b'\r'))
        && STANDARD
            .decode(t.replace(['\n', '\r'], ""))
            .is_ok_and(|d| String::from_utf8_lossy(&d).contains("PRIVATE KEY") || der_key(&d))
}

/// Whether `der` begins like a DER private key: a SEQUENCE whose first element is the version
/// `INTEGER 0` or `1`. PKCS#8 (RFC 5958), PKCS#1 RSA (RFC 8017) and SEC1 EC (RFC 5915) keys
/// all do; certificates and public keys (a SEQUENCE of SEQUENCEs) never do. A key pasted as
/// the bare base64 of a PEM body has no `PRIVATE KEY` label to give it away.
fn der_key(der: &[u8]) -> bool {
    let body = match der {
        [0x30, len, rest @ ..] if *len < 0x80 => rest,
        [0x30, 0x81, _, rest @ ..]
        | [0x30, 0x82, _, _, rest @ ..]
        | [0x30, 0x83, _, _, _, rest @ ..] => rest,
        _ => return false,
    };
    der.len() >= 64 && matches!(body, [0x02, 0x01, 0x00 | 0x01, ..])
}

/// Every string anywhere in `v` that holds a private key, replaced.
fn scrub(v: &mut Value) {
    match v {
        Value::String(s) if holds_key(s) => *s = "(private key)".to_string(),
        Value::Object(m) => m.values_mut().for_each(scrub),
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// A text file's lines, with every PEM block and any line that holds a key replaced.
fn scrub_text(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut in_pem = false;
    for line in t.split_inclusive('\n') {
        in_pem |= line.contains("-----BEGIN ");
        if in_pem || holds_key(line) || line.split_whitespace().any(holds_key) {
            out.push_str("(hidden: key material)\n");
        } else {
            out.push_str(line);
        }
        in_pem &= !line.contains("-----END ");
    }
    out
}

/// What a reviewer may see of one side: keys sorted and, for a Secret, every value of `data`
/// and `stringData` described instead of shown (any other shape of them hidden whole); key
/// material anywhere else hidden too.
fn view(v: &Value) -> Value {
    let mut out = sorted(v);
    if is_secret(v) {
        for field in ["data", "stringData"] {
            let Some(values) = out.get_mut(field) else {
                continue;
            };
            match values.as_object_mut() {
                Some(map) => {
                    for value in map.values_mut() {
                        *value = describe(&secret_bytes(value, field == "data"));
                    }
                }
                None => *values = json!("(hidden)"),
            }
        }
    }
    scrub(&mut out);
    out
}

/// Both sides' views; a Secret value that changed where its description did not (a key, a
/// token) is marked `(changed)` on the new side.
fn secret_views(old: &Value, new: &Value) -> (Value, Value) {
    let (a, mut b) = (view(old), view(new));
    if is_secret(new) {
        for field in ["data", "stringData"] {
            let (Some(before), Some(after)) = (old[field].as_object(), new[field].as_object())
            else {
                continue;
            };
            for (key, raw) in after {
                let changed = before.get(key).is_some_and(|r| r != raw);
                if changed
                    && a[field].get(key) == b[field].get(key)
                    && let Some(v) = b[field].get_mut(key)
                {
                    mark_changed(v);
                }
            }
        }
    }
    (a, b)
}

fn secret_bytes(value: &Value, encoded: bool) -> Vec<u8> {
    let text = value.as_str().unwrap_or_default();
    if encoded {
        STANDARD
            .decode(text.trim())
            .unwrap_or_else(|_| text.as_bytes().to_vec())
    } else {
        text.as_bytes().to_vec()
    }
}

/// What a reviewer may see of a secret value.
fn describe(bytes: &[u8]) -> Value {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return json!("(hidden)");
    };
    if text.contains("PRIVATE KEY") {
        return json!("(private key)");
    }
    if text.contains("-----BEGIN CERTIFICATE-----") {
        return certificates(text);
    }
    if let Ok(config) = serde_saphyr::from_str::<Value>(text)
        && config["kind"] == "Config"
    {
        return kubeconfig(&config);
    }
    json!("(hidden)")
}

fn certificates(pem: &str) -> Value {
    match crate::pki::certs_from_pem(pem) {
        Ok(certs) => {
            let mut views: Vec<Value> = certs.iter().map(certificate).collect();
            if views.len() == 1 {
                views.remove(0)
            } else {
                Value::Array(views)
            }
        }
        Err(_) => json!("(hidden: not a readable certificate)"),
    }
}

fn certificate(c: &crate::pki::Cert) -> Value {
    let mut m = Map::new();
    m.insert("subject".into(), json!(c.subject));
    m.insert("issuer".into(), json!(c.issuer));
    m.insert("serial".into(), json!(c.serial));
    let sans: Vec<String> = c.dns_names.iter().map(|d| format!("DNS:{d}")).collect();
    m.insert("sans".into(), json!(sans));
    m.insert(
        "notAfter".into(),
        json!(
            c.not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        ),
    );
    m.insert("sha256".into(), json!(c.fingerprint()));
    Value::Object(m)
}

/// A kubeconfig with its credentials hidden and its CA described.
fn kubeconfig(config: &Value) -> Value {
    let mut v = sorted(config);
    let Some(top) = v.as_object_mut() else {
        return json!("(hidden)");
    };
    // Only what says where the kubeconfig points is shown; anything else is hidden whole.
    for (key, value) in top.iter_mut() {
        match key.as_str() {
            "apiVersion" | "kind" | "current-context" | "contexts" => {}
            "clusters" => match value.as_array_mut() {
                Some(clusters) => clusters.iter_mut().for_each(kubeconfig_cluster),
                None => *value = json!("(hidden)"),
            },
            "users" => match value.as_array_mut() {
                Some(users) => {
                    for u in users {
                        match u.as_object_mut() {
                            Some(user) => {
                                user.retain(|k, _| k == "name");
                                user.insert("user".into(), json!("(credentials)"));
                            }
                            None => *u = json!("(credentials)"),
                        }
                    }
                }
                None => *value = json!("(credentials)"),
            },
            _ => *value = json!("(hidden)"),
        }
    }
    v
}

/// One `clusters[]` entry: server and TLS settings shown, the CA described.
fn kubeconfig_cluster(entry: &mut Value) {
    let Some(cluster) = entry.get_mut("cluster").and_then(Value::as_object_mut) else {
        if let Some(m) = entry.as_object_mut() {
            m.retain(|k, _| k == "name");
        }
        return;
    };
    for (key, value) in cluster.iter_mut() {
        match key.as_str() {
            "server" | "tls-server-name" | "insecure-skip-tls-verify" | "proxy-url" => {}
            "certificate-authority-data" => {
                let bytes = secret_bytes(value, true);
                *value = std::str::from_utf8(&bytes).map_or(json!("(hidden)"), certificates);
            }
            _ => *value = json!("(hidden)"),
        }
    }
}

/// Marks a described value as changed where the description itself did not change.
fn mark_changed(v: &mut Value) {
    match v {
        Value::String(s) => *s = format!("{s} (changed)"),
        Value::Object(m) => {
            if let Some(users) = m.get_mut("users").and_then(Value::as_array_mut) {
                for u in users {
                    if let Some(user) = u.get_mut("user") {
                        *user = json!("(credentials, changed)");
                    }
                }
            }
        }
        _ => {}
    }
}

/// Keys sorted at every level, so that field order is never a difference.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Formats

/// ANSI colours for the human format, or none.
#[derive(Debug, Clone, Copy)]
struct Palette {
    on: bool,
}

impl Palette {
    fn paint(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn counts_text(c: Counts) -> String {
    format!(
        "{} added, {} changed, {} removed",
        c.added, c.changed, c.removed
    )
}

/// `--format human`: per cluster, each entry with its diff; nothing when nothing changed.
pub fn human(report: &Report, color: bool) -> String {
    let p = Palette { on: color };
    let mut out = String::new();
    let mut cluster: Option<&str> = None;
    for e in &report.entries {
        if cluster != Some(e.cluster.as_str()) {
            if cluster.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{}", p.paint("1", &format!("{}:", e.cluster)));
            cluster = Some(&e.cluster);
        }
        let code = match e.change {
            Change::Added => "32",
            Change::Removed => "31",
            Change::Changed => "33",
        };
        let head = format!("{} {}", e.change.sign(), e.title());
        let _ = write!(out, "  {}", p.paint(&format!("1;{code}"), &head));
        if let Some(w) = e.whereabouts() {
            let _ = write!(out, " {}", p.paint("2", &w));
        }
        out.push('\n');
        for line in &e.lines {
            let text = match line {
                Line::Context(t) => format!(" {t}"),
                Line::Added(t) => p.paint("32", &format!("+{t}")),
                Line::Removed(t) => p.paint("31", &format!("-{t}")),
                Line::Hunk(t) => p.paint("36", t),
                Line::Note(t) => p.paint("2", &format!("# {t}")),
            };
            let _ = writeln!(out, "    {}", text.trim_end());
        }
    }
    if report.has_changes() {
        let counts = report.counts();
        let _ = writeln!(
            out,
            "\n{} in {} {}",
            counts_text(report.total()),
            counts.len(),
            if counts.len() == 1 {
                "cluster"
            } else {
                "clusters"
            }
        );
    }
    out.push_str(&rewritten_note(report));
    out
}

fn rewritten_note(report: &Report) -> String {
    if report.rewritten.is_empty() {
        return String::new();
    }
    format!(
        "{} rewritten without a change to any object (moved or reordered): {}\n",
        plural(report.rewritten.len(), "file", "files"),
        report.rewritten.join(", ")
    )
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `--format brief`: one line per cluster with changes, then the total.
pub fn brief(report: &Report) -> String {
    let mut out = String::new();
    let counts = report.counts();
    for (cluster, c) in &counts {
        let _ = writeln!(out, "{cluster}: {}", counts_text(*c));
    }
    if counts.len() > 1 {
        let _ = writeln!(out, "total: {}", counts_text(report.total()));
    }
    out.push_str(&rewritten_note(report));
    out
}

/// `--format markdown`: a pull-request comment: a summary table, then one collapsible section
/// per cluster with a `diff` block per entry.
pub fn markdown(report: &Report) -> String {
    markdown_with(report, None)
}

/// [`markdown`], with a section placed under the summary table (the topology's shape, drawn,
/// when it changed: see [`crate::graph::markdown_section`]).
pub fn markdown_with(report: &Report, section: Option<&str>) -> String {
    let mut out = String::from("### meshc diff\n\n");
    if !report.has_changes() {
        out.push_str("No changes to the generated manifests.\n");
        if let Some(section) = section {
            out.push('\n');
            out.push_str(section);
        }
        out.push_str(&rewritten_note(report));
        return out;
    }
    out.push_str("| cluster | added | changed | removed |\n|---|---:|---:|---:|\n");
    let counts = report.counts();
    for (cluster, c) in &counts {
        let _ = writeln!(
            out,
            "| `{cluster}` | {} | {} | {} |",
            c.added, c.changed, c.removed
        );
    }
    if counts.len() > 1 {
        let t = report.total();
        let _ = writeln!(
            out,
            "| **total** | {} | {} | {} |",
            t.added, t.changed, t.removed
        );
    }
    if let Some(section) = section {
        out.push('\n');
        out.push_str(section.trim_end());
        out.push('\n');
    }
    for (cluster, c) in &counts {
        let _ = write!(
            out,
            "\n<details><summary><code>{cluster}</code>: {}</summary>\n\n",
            counts_text(*c)
        );
        for e in report.entries.iter().filter(|e| e.cluster == *cluster) {
            let _ = write!(out, "**{} `{}`**", e.change.sign(), e.title());
            if let Some(w) = e.whereabouts() {
                let _ = write!(out, " {}", w.replace(['(', ')'], ""));
            }
            out.push_str("\n\n");
            let body: Vec<String> = e
                .lines
                .iter()
                .map(|l| match l {
                    Line::Context(t) => format!(" {t}"),
                    Line::Added(t) => format!("+{t}"),
                    Line::Removed(t) => format!("-{t}"),
                    Line::Hunk(t) => t.clone(),
                    Line::Note(t) => format!("# {t}"),
                })
                .collect();
            let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
            let _ = writeln!(out, "{fence}diff");
            for line in body {
                let _ = writeln!(out, "{}", line.trim_end());
            }
            let _ = writeln!(out, "{fence}\n");
        }
        out.push_str("</details>\n");
    }
    out.push_str(&rewritten_note(report));
    out
}

fn longest_backtick_run(lines: &[String]) -> usize {
    lines
        .iter()
        .flat_map(|l| l.split(|c| c != '`').map(str::len))
        .max()
        .unwrap_or(0)
}

/// `--format json`: `[{cluster, kind, namespace, name, change, paths, apiVersion, file}]`.
pub fn json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(&report.entries).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> Side {
        Side {
            files: entries
                .iter()
                .map(|(p, t)| {
                    let scope = Scope::Cluster(p.split('/').next().unwrap_or(p).to_string());
                    ((*p).to_string(), (scope, Arc::from(t.as_bytes())))
                })
                .collect(),
            pending: BTreeSet::new(),
        }
    }

    const DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: hello\n  namespace: sample\nspec:\n  host: hello\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n";

    #[test]
    fn field_order_and_file_moves_are_not_changes() {
        let old = files(&[("c1/istio/a.yaml", DR)]);
        let reordered = "kind: DestinationRule\napiVersion: networking.istio.io/v1\nspec:\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n  host: hello\nmetadata:\n  namespace: sample\n  name: hello\n";
        let new = files(&[("c1/istio/b.yaml", reordered)]);
        let report = compare(&old, &new);
        assert!(!report.has_changes(), "{:?}", report.entries);
        assert_eq!(report.rewritten, ["c1/istio/a.yaml", "c1/istio/b.yaml"]);
    }

    #[test]
    fn a_changed_field_is_one_path_and_one_hunk() {
        let old = files(&[("c1/istio/a.yaml", DR)]);
        let new = files(&[("c1/istio/a.yaml", &DR.replace("ISTIO_MUTUAL", "DISABLE"))]);
        let report = compare(&old, &new);
        assert_eq!(report.entries.len(), 1);
        let e = &report.entries[0];
        assert_eq!(e.change, Change::Changed);
        assert_eq!(e.paths, ["spec.trafficPolicy.tls.mode"]);
        assert!(
            e.lines
                .contains(&Line::Removed("      mode: ISTIO_MUTUAL".into()))
        );
        assert!(e.lines.contains(&Line::Added("      mode: DISABLE".into())));
    }

    #[test]
    fn paths_quote_keys_that_are_not_plain() {
        let mut out = Vec::new();
        changed_paths(
            &json!({"metadata": {"labels": {"a.b/c": "1"}}, "l": [1, 2]}),
            &json!({"metadata": {"labels": {"a.b/c": "2"}}, "l": [1]}),
            "",
            &mut out,
        );
        assert_eq!(out, ["l[1]", "metadata.labels[\"a.b/c\"]"]);
        assert_eq!(secret_key("data[\"ca-key.pem\"]"), Some("ca-key.pem"));
        assert_eq!(secret_key("stringData.c2"), Some("c2"));
        assert_eq!(secret_key("metadata.name"), None);
    }

    #[test]
    fn secret_values_are_described_and_changes_marked() {
        let secret = |token: &str| {
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: ns\ndata:\n  token: {}\n",
                STANDARD.encode(token)
            )
        };
        let old = files(&[("c1/s.yaml", &secret("sekret-one-value"))]);
        let new = files(&[("c1/s.yaml", &secret("sekret-two-value"))]);
        let report = compare(&old, &new);
        let text = human(&report, false);
        assert!(
            !text.contains(&STANDARD.encode("sekret-one-value")),
            "{text}"
        );
        assert!(text.contains("# changed keys: token"), "{text}");
        assert!(text.contains("+  token: (hidden) (changed)"), "{text}");
        assert_eq!(report.entries[0].paths, ["data.token"]);
    }

    #[test]
    fn pending_material_is_added_without_contents() {
        let pending = || Side {
            files: Files::new(),
            pending: ["c1".to_string()].into(),
        };
        let report = compare(&Side::default(), &pending());
        assert_eq!(report.entries.len(), 1);
        assert_eq!(report.entries[0].title(), "Secret istio-system/cacerts");
        assert_eq!(report.entries[0].change, Change::Added);
        assert!(matches!(&report.entries[0].lines[..], [Line::Note(_)]));
        // Pending on both sides (no material in the store for either): nothing to report.
        assert!(!compare(&pending(), &pending()).has_changes());
        // Material on disk, none in the store: a build would make new material.
        let on_disk = files(&[(
            "c1/cacerts.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: cacerts, namespace: istio-system}\n",
        )]);
        let report = compare(&on_disk, &pending());
        assert_eq!(report.entries[0].change, Change::Changed);
    }

    #[test]
    fn colour_only_when_asked() {
        let old = files(&[("c1/istio/a.yaml", DR)]);
        let new = files(&[("c1/istio/a.yaml", &DR.replace("ISTIO_MUTUAL", "DISABLE"))]);
        let report = compare(&old, &new);
        let coloured = human(&report, true);
        assert!(
            coloured.contains("\x1b[32m+      mode: DISABLE\x1b[0m"),
            "{coloured}"
        );
        assert!(
            coloured.contains("\x1b[31m-      mode: ISTIO_MUTUAL\x1b[0m"),
            "{coloured}"
        );
        assert!(!human(&report, false).contains('\x1b'));
    }

    #[test]
    fn a_file_that_is_not_yaml_is_compared_but_never_shown() {
        let damaged = "data:\n  ca-key.pem: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t\n  : [";
        let old = files(&[("c1/cacerts.yaml", damaged)]);
        let new = files(&[(
            "c1/cacerts.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: cacerts, namespace: istio-system}\n",
        )]);
        let report = compare(&old, &new);
        let text = human(&report, false) + &markdown(&report);
        assert!(!text.contains("LS0t"), "{text}");
        assert_eq!(report.entries.len(), 2, "{text}");
        assert!(
            text.contains("# 62 bytes, not YAML or text (contents not shown)"),
            "{text}"
        );
    }

    #[test]
    fn key_material_moved_by_a_hand_edit_is_still_hidden() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
        let b64 = STANDARD.encode(pem);
        let new = files(&[
            (
                "c1/cacerts.yaml",
                &format!(
                    "apiVersion: v2\nkind: Secret\nmetadata: {{name: cacerts, namespace: istio-system}}\ndata:\n  ca-key.pem: {b64}\n  token: c2VjcmV0LXRva2VuLXZhbHVl\n"
                ),
            ),
            (
                "c1/cm.yaml",
                &format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x, namespace: ns}}\ndata:\n  key: {b64}\n  pem: {pem:?}\n"
                ),
            ),
            ("c1/README.md", &format!("# notes\n{pem}the key: {b64}\n")),
        ]);
        let report = compare(&Side::default(), &new);
        let text = human(&report, false) + &markdown(&report) + &json(&report);
        assert_eq!(report.entries.len(), 3, "{text}");
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(!text.contains(&b64[..40]), "{text}");
        assert!(!text.contains("MIGHAgEA"), "{text}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(text.contains("+  ca-key.pem: (private key)"), "{text}");
        assert!(text.contains("+  key: (private key)"), "{text}");
        assert!(text.contains("+# notes"), "{text}");
    }

    #[test]
    fn a_secret_that_is_not_a_well_formed_object_is_never_shown() {
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ns}\ndata:\n  token: c2VjcmV0LXRva2VuLXZhbHVl\n";
        for edited in [
            secret.replace("apiVersion: v1\n", ""),
            secret.replace("apiVersion: v1", "apiVersion: V1"),
            format!("{secret}---\nnote: hand\n"),
            secret.replace(
                "  token: c2VjcmV0LXRva2VuLXZhbHVl\n",
                "  - c2VjcmV0LXRva2VuLXZhbHVl\n",
            ),
        ] {
            let old = files(&[("c1/s.yaml", secret)]);
            let new = files(&[("c1/s.yaml", &edited)]);
            let report = compare(&old, &new);
            let text = human(&report, false) + &markdown(&report) + &json(&report);
            assert!(report.has_changes(), "{edited}");
            assert!(!text.contains("c2VjcmV0"), "{edited}\n{text}");
        }
    }

    #[test]
    fn a_kubeconfig_shows_where_it_points_and_nothing_else() {
        let config = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://a:6443\", client-key-data: a2V5LWRhdGEtaGVyZQ==}\nusers: {c: {token: dG9rZW4tdmFsdWU=}}\npreferences: {secret: cHJlZnM=}\n";
        let v = describe(config.as_bytes());
        let text = yaml_text(&v);
        assert!(text.contains("server: https://a:6443"), "{text}");
        for hidden in ["a2V5", "dG9r", "cHJl"] {
            assert!(!text.contains(hidden), "{text}");
        }
    }

    #[test]
    fn markdown_fences_outgrow_the_content() {
        assert_eq!(longest_backtick_run(&["a ```` b".to_string()]), 4);
    }
}
