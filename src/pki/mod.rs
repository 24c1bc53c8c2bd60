//! The PKI stage: one root per mesh, one intermediate CA per cluster, made once, checked always.
//!
//! Cross-cluster mTLS fails when clusters plug in CAs that do not share a root, when
//! `cert-chain.pem` is in the wrong order, or when a leaf is plugged in as a CA
//! [istio/istio#52356, #46855, #27605]. meshc therefore owns the material end to end: the
//! store (`pki/` beside the topology) holds every key, is created like a lock file (what is
//! missing is made, what is there is kept and never overwritten) and every stored item is
//! checked on every run, before anything is written anywhere.
//!
//! The stage is split in two so that nothing is created from a store that is wrong:
//! [`inspect`] reads and checks everything (read-only) and says what is missing; only when it
//! found no error does [`complete`] make the missing material, which [`Store::add`] writes.

mod cert;
mod issue;
mod pem;
pub mod rotation;
mod store;

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

use time::OffsetDateTime;

pub use cert::{Cert, Key, KeyKind, certs_from_pem};
pub use rotation::{
    MULTIROOT_ENV, MULTIROOT_RELOAD_SINCE, Phase, Rotation, WORKLOAD_CERT_TTL, XDS_AGENT_METADATA,
    trust_bundle,
};
pub use store::{NewFile, Store, WriteError};

use crate::diagnostic::{Code, Diagnostic, Reporter};
use crate::model::{ClusterId, MeshId, Model};
use crate::parse::Node;
use crate::path;
use crate::span::Path;

/// Certificates expiring within this many days are reported (W074).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Whose fault a finding is: the topology's (a bring-your-own root it names; exit 2) or the
/// store's (exit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Topology,
    Store,
}

/// One problem with key material, before it is placed on the topology as a diagnostic.
#[derive(Debug, Clone)]
pub struct Finding {
    pub code: Code,
    pub origin: Origin,
    /// The file at fault; empty when the problem is a file that is not named.
    pub file: PathBuf,
    pub message: String,
    pub help: String,
    /// Where in the topology to point: the `certFile`, the mesh, the cluster.
    pub at: Path,
}

impl Finding {
    /// The finding as a diagnostic on the topology. The message names the file.
    pub fn to_diagnostic(&self, tree: &Node) -> Diagnostic {
        let mut r = Reporter::new(tree);
        let message = if self.file.as_os_str().is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.file.display(), self.message)
        };
        r.report(self.code, &self.at, message)
            .help(self.help.clone());
        r.into_diagnostics()
            .pop()
            .unwrap_or_else(|| Diagnostic::new(self.code, self.message.clone()))
    }

    pub fn is_error(&self) -> bool {
        self.code.severity() == crate::diagnostic::Severity::Error
    }
}

/// A mesh's signing CA: a root meshc made, or the topology's own (`ca.root`).
#[derive(Debug)]
pub struct Root {
    /// The certificate that signs intermediates.
    pub cert: Cert,
    pub key: Key,
    /// For a bring-your-own CA that is not itself the root: the certificates above it, the
    /// trust anchor last. Empty when `cert` is the root.
    pub above: Vec<Cert>,
    /// Where the certificate was read from (or is to be written).
    pub cert_file: PathBuf,
    pub generated: bool,
}

impl Root {
    /// The trust anchor: what `root-cert.pem` holds.
    pub fn anchor(&self) -> &Cert {
        self.above.last().unwrap_or(&self.cert)
    }

    /// The signing CA and everything above it, in order.
    pub fn chain(&self) -> impl Iterator<Item = &Cert> {
        std::iter::once(&self.cert).chain(self.above.iter())
    }
}

/// A cluster's intermediate CA.
#[derive(Debug)]
pub struct Intermediate {
    pub cert: Cert,
    pub key: Key,
}

/// The four entries of a cluster's `cacerts` Secret.
#[derive(Debug)]
pub struct CaCerts<'a> {
    pub ca_cert: String,
    pub ca_key: &'a str,
    pub root_cert: String,
    pub cert_chain: String,
}

/// The key material of every mesh and cluster, complete and checked.
#[derive(Debug, Default)]
pub struct Material {
    pub roots: BTreeMap<MeshId, Root>,
    pub intermediates: BTreeMap<ClusterId, Intermediate>,
    /// The meshes whose root is being rotated, and the phase each is in.
    pub rotations: BTreeMap<MeshId, Rotation>,
}

impl Material {
    /// What cluster `c`'s `cacerts` Secret holds: `cert-chain.pem` is the intermediate, then
    /// the chain up to the root; `root-cert.pem` is the same bytes in every cluster of a mesh.
    pub fn cacerts(&self, mesh: MeshId, cluster: ClusterId) -> Option<CaCerts<'_>> {
        let root = self.roots.get(&mesh)?;
        let intermediate = self.intermediates.get(&cluster)?;
        let rotating = self
            .rotations
            .get(&mesh)
            .and_then(|r| Some((r, r.new_root.as_ref()?)));
        // A rotation's phases 1 and 2 (rotation.rs); in phase 3 the new root is the mesh's.
        if let Some((rotation, new_root)) = rotating {
            let root_cert = trust_bundle(rotation.phase, &rotation.old_root, &new_root.cert);
            if rotation.phase == Phase::SwitchSigner {
                let new = rotation.intermediates.get(&cluster)?;
                return Some(CaCerts {
                    ca_cert: new.cert.pem(),
                    ca_key: new.key.secret_pem(),
                    root_cert,
                    cert_chain: chain_pem(&new.cert, new_root),
                });
            }
            return Some(CaCerts {
                ca_cert: intermediate.cert.pem(),
                ca_key: intermediate.key.secret_pem(),
                root_cert,
                cert_chain: chain_pem(&intermediate.cert, root),
            });
        }
        Some(CaCerts {
            ca_cert: intermediate.cert.pem(),
            ca_key: intermediate.key.secret_pem(),
            root_cert: root.anchor().pem(),
            cert_chain: chain_pem(&intermediate.cert, root),
        })
    }

    /// Whether mesh `mesh` is in the middle of a root rotation.
    pub fn rotating(&self, mesh: MeshId) -> Option<&Rotation> {
        self.rotations.get(&mesh)
    }
}

fn chain_pem(intermediate: &Cert, root: &Root) -> String {
    std::iter::once(intermediate)
        .chain(root.chain())
        .map(Cert::pem)
        .collect()
}

/// Something a build would create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Missing {
    Root(MeshId),
    Intermediate(MeshId, ClusterId),
    /// Only `cert-chain.pem` (derived from the certificates) is missing.
    Chain(MeshId, ClusterId),
}

/// One row of `meshc pki status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusRow {
    pub mesh: String,
    /// The cluster, or `None` for the mesh's root.
    pub cluster: Option<String>,
    pub algorithm: Option<String>,
    pub subject: Option<String>,
    #[serde(rename = "notAfter")]
    pub not_after: Option<String>,
    #[serde(rename = "daysLeft")]
    pub days_left: Option<i64>,
    /// `ok`, `missing`, or what is wrong.
    pub chain: String,
    pub file: String,
}

/// What [`inspect`] found: usable material, what is missing, and every problem.
#[derive(Debug, Default)]
pub struct Inspection {
    pub material: Material,
    pub missing: Vec<Missing>,
    pub findings: Vec<Finding>,
    pub rows: Vec<StatusRow>,
}

impl Inspection {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }

    /// Adds what another inspection found after what this one did.
    fn absorb(&mut self, other: Inspection) {
        self.material.roots.extend(other.material.roots);
        self.material
            .intermediates
            .extend(other.material.intermediates);
        self.material.rotations.extend(other.material.rotations);
        self.missing.extend(other.missing);
        self.findings.extend(other.findings);
        self.rows.extend(other.rows);
    }
}

/// Reads and checks every root and intermediate the topology needs. Reads only.
pub fn inspect(model: &Model, store: &Store, base_dir: &FsPath, now: OffsetDateTime) -> Inspection {
    let mut ins = Inspection::default();
    for (mi, mesh) in model.topology.meshes.iter().enumerate() {
        if model.meshes[mi].duplicate {
            continue;
        }
        let clusters = model.members(mi);
        let root = match &mesh.ca.root {
            Some(byo) => load_byo_root(mi, byo, base_dir, now, &mut ins.findings),
            None => load_stored_root(model, mi, store, &clusters, now, &mut ins),
        };
        // The row shows the CA that signs the intermediates (for a bring-your-own chain, the
        // certificates above it are checked but not listed).
        if let Some(root) = &root {
            ins.rows.push(StatusRow {
                mesh: mesh.name.clone(),
                cluster: None,
                algorithm: Some(root.cert.key_kind.to_string()),
                subject: Some(root.cert.subject.clone()),
                not_after: Some(rfc3339(root.cert.not_after)),
                days_left: Some(root.cert.days_left(now)),
                chain: "ok".to_string(),
                file: root.cert_file.display().to_string(),
            });
        }
        if root.is_none() && !ins.missing.contains(&Missing::Root(mi)) {
            let (file, chain) = match &mesh.ca.root {
                Some(byo) => (base_dir.join(&byo.cert_file), "invalid"),
                None => (store.root_cert(&mesh.name), "damaged"),
            };
            let mut row = missing_row(&mesh.name, None, &file);
            row.chain = chain.to_string();
            ins.rows.push(row);
        }
        // Each intermediate is read and its signature checked on every core (a warm build of
        // 200 clusters), and what was found is added in the clusters' order.
        let loaded = crate::parallel::map_all(&clusters, |&c| {
            let mut found = Inspection::default();
            load_intermediate(model, mi, c, store, root.as_ref(), now, &mut found);
            found
        });
        for found in loaded {
            ins.absorb(found);
        }
        if let Some(r) = rotation::load(
            model,
            mi,
            store,
            root.as_ref(),
            &clusters,
            &mut ins.findings,
        ) {
            let file = store.rotation(&mesh.name);
            rotation_rows(model, &mesh.name, &file, &r, now, &mut ins.rows);
            ins.material.rotations.insert(mi, r);
        }
        if let Some(root) = root {
            ins.material.roots.insert(mi, root);
        }
    }
    ins
}

/// The rows `meshc pki status` adds for a rotation in progress: the new root and, in phase 2,
/// the intermediates it signed (in phase 3 they are the mesh's own rows); `chain` says which.
fn rotation_rows(
    model: &Model,
    mesh: &str,
    file: &FsPath,
    r: &Rotation,
    now: OffsetDateTime,
    rows: &mut Vec<StatusRow>,
) {
    let row = |cluster: Option<&str>, cert: &Cert, chain: String| StatusRow {
        mesh: mesh.to_string(),
        cluster: cluster.map(str::to_string),
        algorithm: Some(cert.key_kind.to_string()),
        subject: Some(cert.subject.clone()),
        not_after: Some(rfc3339(cert.not_after)),
        days_left: Some(cert.days_left(now)),
        chain,
        file: file.display().to_string(),
    };
    match &r.new_root {
        Some(new_root) => {
            rows.push(row(
                None,
                &new_root.cert,
                format!("new root (rotation phase {})", r.phase.number()),
            ));
            for (&c, i) in &r.intermediates {
                rows.push(row(
                    Some(&model.topology.clusters[c].name),
                    &i.cert,
                    format!("new intermediate (rotation phase {})", r.phase.number()),
                ));
            }
        }
        None => rows.push(row(
            None,
            &r.old_root,
            format!("old root (rotation phase {})", r.phase.number()),
        )),
    }
}

/// Checks only the bring-your-own roots the topology names (for `meshc validate`, which has
/// no store).
pub fn check_named_files(model: &Model, base_dir: &FsPath, now: OffsetDateTime) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (mi, mesh) in model.topology.meshes.iter().enumerate() {
        if let Some(byo) = &mesh.ca.root {
            load_byo_root(mi, byo, base_dir, now, &mut findings);
        }
    }
    findings
}

/// A time as RFC 3339, as `pki status` and the rotation record write it.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Builds findings that share a file, origin and topology location.
struct Place<'a> {
    findings: &'a mut Vec<Finding>,
    origin: Origin,
    file: PathBuf,
    at: Path,
}

impl Place<'_> {
    fn add(&mut self, code: Code, message: impl Into<String>, help: impl Into<String>) {
        self.findings.push(Finding {
            code,
            origin: self.origin,
            file: self.file.clone(),
            message: message.into(),
            help: help.into(),
            at: self.at.clone(),
        });
    }

    /// Expiry: an error once expired or not yet valid, a warning within 30 days.
    fn expiry(&mut self, cert: &Cert, now: OffsetDateTime, help_rotate: &str) {
        let days = cert.days_left(now);
        if cert.not_after <= now {
            self.add(
                Code::CertificateExpired,
                format!("the certificate expired on {}", rfc3339(cert.not_after)),
                help_rotate,
            );
        } else if cert.not_before > now + time::Duration::minutes(5) {
            self.add(
                Code::CertificateExpired,
                format!(
                    "the certificate is not valid before {} (check the clock of the machine that made it)",
                    rfc3339(cert.not_before)
                ),
                help_rotate,
            );
        } else if days < EXPIRY_WARNING_DAYS {
            self.add(
                Code::CertificateExpiring,
                format!(
                    "the certificate expires in {days} day{} ({})",
                    if days == 1 { "" } else { "s" },
                    rfc3339(cert.not_after)
                ),
                help_rotate,
            );
        }
    }

    /// Reads and parses the place's file; a file that cannot be read or parsed is reported
    /// (E075) with `help`.
    fn load<T>(
        &mut self,
        parse: impl FnOnce(&str) -> Result<T, String>,
        help: impl Into<String>,
    ) -> Option<T> {
        let text = self.read()?;
        parse(&text)
            .map_err(|e| self.add(Code::UnreadablePki, e, help))
            .ok()
    }

    /// Reads the place's file, reporting a missing or unreadable one.
    fn read(&mut self) -> Option<String> {
        // A copy: reporting borrows the place mutably.
        let path = self.file.clone();
        // A directory or a FIFO in place of a PEM file would fail or block the read.
        if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
            self.add(
                Code::UnreadablePki,
                "not a regular file",
                "replace it with the PEM file it should be",
            );
            return None;
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).ok();
                if text.is_none() {
                    self.add(
                        Code::UnreadablePki,
                        "not a PEM file (not text)",
                        "PEM files are text: convert DER with `openssl x509 -inform der` or `openssl pkey -inform der`",
                    );
                }
                text
            }
            Err(e) => {
                self.add(
                    Code::UnreadablePki,
                    format!("cannot be read: {}", io_reason(&e)),
                    "check the path (relative to the topology file) and its permissions",
                );
                None
            }
        }
    }

    /// A private key must be readable by its owner only.
    fn permissions(&mut self) {
        if let Ok(Some(mode)) = crate::files::loose_permissions(&self.file) {
            self.add(
                Code::KeyPermissions,
                format!("the private key is readable by other users (mode {mode:04o})"),
                format!("chmod 600 {}", self.file.display()),
            );
        }
    }
}

/// Whether anything (a file, a directory, a dangling link) is at `path`: a name that is taken
/// is never treated as missing, so meshc never tries to create over it.
fn present(path: &FsPath) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

fn load_byo_root(
    mi: MeshId,
    byo: &crate::topology::CaRoot,
    base_dir: &FsPath,
    now: OffsetDateTime,
    findings: &mut Vec<Finding>,
) -> Option<Root> {
    let cert_path = base_dir.join(&byo.cert_file);
    let key_path = base_dir.join(&byo.key_file);
    let mut on_cert = Place {
        findings,
        origin: Origin::Topology,
        file: cert_path.clone(),
        at: path!("meshes", mi, "ca", "root", "certFile"),
    };
    let certs = on_cert.load(
        cert::certs_from_pem,
        "certFile holds the signing CA's certificate in PEM, optionally followed by the certificates above it up to the root",
    );
    let help_byo =
        "renew the CA with whoever issues it, then run `meshc pki rotate` for each cluster";
    let mut usable = true;
    if let Some(certs) = &certs {
        let signing = &certs[0];
        if !signing.key_kind.is_supported() {
            usable = false;
            on_cert.add(
                Code::UnreadablePki,
                format!(
                    "`{}` has a {} key, which Istio's plug-in CA does not take",
                    signing.subject, signing.key_kind
                ),
                "use an ECDSA P-256 or P-384, or an RSA, CA",
            );
        }
        if !signing.subject_reproducible {
            usable = false;
            on_cert.add(
                Code::SubjectNotReproducible,
                format!(
                    "the subject `{}` repeats an attribute or has a multi-valued part, which meshc cannot write as the intermediates' issuer exactly",
                    signing.subject
                ),
                "issue the mesh a signing CA whose subject names each attribute once (e.g. `O=Corp, OU=Mesh, CN=Mesh CA`), below the corporate root",
            );
        }
        if !signing.is_ca() {
            usable = false;
            on_cert.add(
                Code::NotACa,
                format!(
                    "`{}` is not a CA certificate ({}): it cannot sign the clusters' intermediates",
                    signing.subject,
                    ca_flaw(signing)
                ),
                "certFile must be a CA certificate (basicConstraints CA:TRUE, keyUsage keyCertSign), not a leaf or server certificate",
            );
        } else if !signing.may_sign_cas() {
            usable = false;
            on_cert.add(
                Code::NotACa,
                format!(
                    "`{}` has pathlen 0: it may sign leaves only, not the clusters' intermediate CAs",
                    signing.subject
                ),
                "issue the mesh a CA with pathlen of at least 1 (or none)",
            );
        }
        for pair in certs.windows(2) {
            if !pair[0].is_signed_by(&pair[1]) {
                usable = false;
                on_cert.add(
                    Code::ChainBroken,
                    format!(
                        "`{}` is not signed by the next certificate in the file, `{}`",
                        pair[0].subject, pair[1].subject
                    ),
                    "order certFile from the signing CA up to the root, each certificate followed by its issuer",
                );
            }
        }
        let last = certs.last().unwrap_or(signing);
        if !last.is_self_signed() {
            usable = false;
            on_cert.add(
                Code::ChainBroken,
                format!(
                    "the last certificate in the file, `{}`, is not a self-signed root",
                    last.subject
                ),
                "append the certificates above it up to the root CA",
            );
        }
        for c in certs {
            on_cert.expiry(c, now, help_byo);
        }
        if certs.iter().any(|c| c.not_after <= now) {
            usable = false;
        }
    }
    let mut on_key = Place {
        findings,
        origin: Origin::Topology,
        file: key_path.clone(),
        at: path!("meshes", mi, "ca", "root", "keyFile"),
    };
    let key = on_key.load(
        Key::from_pem,
        "keyFile holds the signing CA's private key, unencrypted PEM (PKCS#8, PKCS#1 or SEC1)",
    );
    if key.is_some() {
        on_key.permissions();
    }
    let (mut certs, key) = (certs?, key?);
    if !certs[0].matches(&key) {
        on_key.add(
            Code::KeyMismatch,
            format!(
                "this key is not the private key of `{}` in {}",
                certs[0].subject,
                cert_path.display()
            ),
            "point keyFile at the key the CA certificate was issued for",
        );
        return None;
    }
    if !usable {
        return None;
    }
    let cert = certs.remove(0);
    Some(Root {
        cert,
        key,
        above: certs,
        cert_file: cert_path,
        generated: false,
    })
}

fn ca_flaw(cert: &Cert) -> &'static str {
    match (cert.basic_constraints, cert.key_cert_sign) {
        (None, _) => "no basicConstraints extension",
        (Some((false, _)), _) => "basicConstraints CA:FALSE",
        (_, Some(false)) => "keyUsage lacks keyCertSign",
        _ => "not a CA",
    }
}

fn load_stored_root(
    model: &Model,
    mi: MeshId,
    store: &Store,
    clusters: &[ClusterId],
    now: OffsetDateTime,
    ins: &mut Inspection,
) -> Option<Root> {
    let mesh = &model.topology.meshes[mi];
    let cert_path = store.root_cert(&mesh.name);
    let key_path = store.root_key(&mesh.name);
    let at = path!("meshes", mi, "name");
    let help_root = format!(
        "replace a root in phases while it is still usable: `meshc pki rotate-root TOPOLOGY --mesh {}`; an unusable one only by moving {} aside, rebuilding and rolling the new cacerts out to every cluster at once",
        mesh.name,
        store.mesh_dir(&mesh.name).display()
    );
    match (present(&cert_path), present(&key_path)) {
        (false, false) => {
            if let Some(f) = orphaned_intermediates(model, mi, store, clusters) {
                ins.findings.push(f);
            } else {
                ins.missing.push(Missing::Root(mi));
                ins.rows.push(missing_row(&mesh.name, None, &cert_path));
            }
            return None;
        }
        (true, false) | (false, true) => {
            ins.findings
                .push(unpaired(&cert_path, &key_path, at, |absent| {
                    format!("restore {} from a backup", absent.display())
                }));
            return None;
        }
        (true, true) => {}
    }
    let mut on_cert = Place {
        findings: &mut ins.findings,
        origin: Origin::Store,
        file: cert_path.clone(),
        at: at.clone(),
    };
    let cert = on_cert.load(
        |text| one_cert(text, "root"),
        format!("restore the file from a backup; {help_root}"),
    );
    let usable = cert.as_ref().is_some_and(|cert| {
        check_stored_root(&mut on_cert, cert, mesh.ca.key_algorithm, now, &help_root)
    });
    let mut on_key = Place {
        findings: &mut ins.findings,
        origin: Origin::Store,
        file: key_path.clone(),
        at,
    };
    let key = read_key(&mut on_key, &help_root);
    let (cert, key) = (cert?, key?);
    if !cert.matches(&key) {
        on_key.add(
            Code::KeyMismatch,
            format!("not the private key of {}", cert_path.display()),
            format!("restore the matching key from a backup; {help_root}"),
        );
        return None;
    }
    usable.then_some(Root {
        cert,
        key,
        above: Vec::new(),
        cert_file: cert_path,
        generated: true,
    })
}

/// E077 when a mesh's root is gone but intermediates it signed are still stored: a new root
/// would not verify them, so meshc must not make one.
fn orphaned_intermediates(
    model: &Model,
    mi: MeshId,
    store: &Store,
    clusters: &[ClusterId],
) -> Option<Finding> {
    let mesh = &model.topology.meshes[mi];
    let orphans: Vec<&str> = clusters
        .iter()
        .map(|&c| model.topology.clusters[c].name.as_str())
        .filter(|name| {
            present(&store.ca_cert(&mesh.name, name)) || present(&store.ca_key(&mesh.name, name))
        })
        .collect();
    if orphans.is_empty() {
        return None;
    }
    let cert_path = store.root_cert(&mesh.name);
    let key_path = store.root_key(&mesh.name);
    Some(Finding {
        code: Code::IncompleteStore,
        origin: Origin::Store,
        message: format!(
            "the mesh root is missing but intermediates signed by it exist ({})",
            orphans.join(", ")
        ),
        help: format!(
            "restore {} and {} from a backup; a new root would not verify the existing intermediates",
            cert_path.display(),
            key_path.display()
        ),
        file: cert_path,
        at: path!("meshes", mi, "name"),
    })
}

/// E077 for a certificate stored without its key, or a key without its certificate: meshc
/// never pairs an existing certificate or key with a new one. `help` is given the absent file.
fn unpaired(
    cert_path: &FsPath,
    key_path: &FsPath,
    at: Path,
    help: impl FnOnce(&FsPath) -> String,
) -> Finding {
    let (here, absent) = if present(cert_path) {
        (cert_path, key_path)
    } else {
        (key_path, cert_path)
    };
    Finding {
        code: Code::IncompleteStore,
        origin: Origin::Store,
        file: absent.to_path_buf(),
        message: format!(
            "missing, while {} exists: meshc never pairs an existing certificate or key with a new one",
            here.display()
        ),
        help: help(absent),
        at,
    }
}

/// The checks on a stored root certificate: a key Istio's plug-in CA takes (E075), a
/// self-signed CA (E070, E072), in its validity (E073, W074), and the configured algorithm
/// (W078, kept all the same). Whether the root can sign.
fn check_stored_root(
    on_cert: &mut Place<'_>,
    cert: &Cert,
    algorithm: crate::topology::KeyAlgorithm,
    now: OffsetDateTime,
    help_root: &str,
) -> bool {
    let mut usable = true;
    if !cert.key_kind.is_supported() {
        usable = false;
        on_cert.add(
            Code::UnreadablePki,
            format!(
                "the stored root has a {} key, which Istio's plug-in CA does not take",
                cert.key_kind
            ),
            help_root,
        );
    }
    if !cert.is_ca() {
        usable = false;
        on_cert.add(
            Code::NotACa,
            format!(
                "the stored root `{}` is not a CA ({})",
                cert.subject,
                ca_flaw(cert)
            ),
            help_root,
        );
    } else if !cert.is_self_signed() {
        usable = false;
        on_cert.add(
            Code::ChainBroken,
            format!("the stored root `{}` is not self-signed", cert.subject),
            help_root,
        );
    }
    on_cert.expiry(cert, now, help_root);
    usable &= cert.not_after > now;
    let want = cert::KeyKind::of(algorithm);
    if cert.key_kind != want {
        on_cert.add(
            Code::AlgorithmDiffers,
            format!(
                "the stored root is {} but ca.keyAlgorithm is {want}; the stored root is kept",
                cert.key_kind
            ),
            help_root,
        );
    }
    usable
}

/// A stored key: its permissions are checked whenever it can be read, parsed or not.
fn read_key(on_key: &mut Place<'_>, help: &str) -> Option<Key> {
    let text = on_key.read()?;
    on_key.permissions();
    Key::from_pem(&text)
        .map_err(|e| {
            on_key.add(
                Code::UnreadablePki,
                e,
                format!("restore the key from a backup; {help}"),
            );
        })
        .ok()
}

/// The one certificate of a stored root or intermediate file.
fn one_cert(text: &str, what: &str) -> Result<Cert, String> {
    let mut certs = cert::certs_from_pem(text)?;
    if certs.len() == 1 {
        Ok(certs.remove(0))
    } else {
        Err(format!(
            "{} certificates where one {what} belongs",
            certs.len()
        ))
    }
}

fn missing_row(mesh: &str, cluster: Option<&str>, file: &FsPath) -> StatusRow {
    StatusRow {
        mesh: mesh.to_string(),
        cluster: cluster.map(str::to_string),
        algorithm: None,
        subject: None,
        not_after: None,
        days_left: None,
        chain: "missing".to_string(),
        file: file.display().to_string(),
    }
}

fn load_intermediate(
    model: &Model,
    mi: MeshId,
    c: ClusterId,
    store: &Store,
    root: Option<&Root>,
    now: OffsetDateTime,
    ins: &mut Inspection,
) {
    let mesh = &model.topology.meshes[mi];
    let name = &model.topology.clusters[c].name;
    let cert_path = store.ca_cert(&mesh.name, name);
    let key_path = store.ca_key(&mesh.name, name);
    let at = path!("clusters", c, "name");
    let rotate = format!("meshc pki rotate TOPOLOGY --cluster {name}");
    let help_rotate = format!("issue a new intermediate: `{rotate}`");
    match (present(&cert_path), present(&key_path)) {
        (false, false) => {
            ins.missing.push(Missing::Intermediate(mi, c));
            ins.rows
                .push(missing_row(&mesh.name, Some(name), &cert_path));
            return;
        }
        (true, false) | (false, true) => {
            ins.findings.push(unpaired(&cert_path, &key_path, at, |_| {
                format!("restore it from a backup, or {help_rotate}")
            }));
            ins.rows.push(intermediate_row(
                &mesh.name,
                name,
                None,
                &cert_path,
                "incomplete",
                now,
            ));
            return;
        }
        (true, true) => {}
    }
    let errors_before = ins.findings.iter().filter(|f| f.is_error()).count();
    let mut on_cert = Place {
        findings: &mut ins.findings,
        origin: Origin::Store,
        file: cert_path.clone(),
        at: at.clone(),
    };
    let cert = on_cert.load(|text| one_cert(text, "intermediate"), help_rotate.clone());
    let mut chain_ok = if root.is_some() {
        "ok".to_string()
    } else {
        "unchecked: no usable root".to_string()
    };
    if let Some(cert) = &cert
        && let Some(flaw) = check_intermediate(
            &mut on_cert,
            cert,
            root,
            mesh.ca.key_algorithm,
            now,
            &rotate,
        )
    {
        chain_ok = flaw.to_string();
    }
    let mut on_key = Place {
        findings: &mut ins.findings,
        origin: Origin::Store,
        file: key_path.clone(),
        at: at.clone(),
    };
    let key = read_key(&mut on_key, &help_rotate);
    if let (Some(cert), Some(key)) = (&cert, &key)
        && !cert.matches(key)
    {
        on_key.add(
            Code::KeyMismatch,
            format!("not the private key of {}", cert_path.display()),
            help_rotate.clone(),
        );
        chain_ok = "key does not match".to_string();
    }
    if let (Some(cert), Some(root)) = (&cert, root)
        && let Some(flaw) = check_chain_file(store, model, mi, c, cert, root, ins)
    {
        chain_ok = flaw.to_string();
    }
    let failed = ins.findings.iter().filter(|f| f.is_error()).count() > errors_before;
    match (cert, key) {
        (Some(cert), Some(key)) if !failed => {
            ins.rows.push(intermediate_row(
                &mesh.name,
                name,
                Some(&cert),
                &cert_path,
                &chain_ok,
                now,
            ));
            ins.material
                .intermediates
                .insert(c, Intermediate { cert, key });
        }
        (cert, _) => {
            if chain_ok == "ok" {
                chain_ok = "damaged".to_string();
            }
            ins.rows.push(intermediate_row(
                &mesh.name,
                name,
                cert.as_ref(),
                &cert_path,
                &chain_ok,
                now,
            ));
        }
    }
}

/// The checks on a stored intermediate certificate: a CA (E070) signed by the mesh root
/// (E072), in its validity (E073, W074), of the configured algorithm (W078, kept all the
/// same). The last flaw found, for the status row's `chain`.
fn check_intermediate(
    on_cert: &mut Place<'_>,
    cert: &Cert,
    root: Option<&Root>,
    algorithm: crate::topology::KeyAlgorithm,
    now: OffsetDateTime,
    rotate: &str,
) -> Option<&'static str> {
    let help_rotate = format!("issue a new intermediate: `{rotate}`");
    let mut flaw = None;
    if !cert.is_ca() {
        on_cert.add(
            Code::NotACa,
            format!(
                "`{}` is not a CA certificate ({})",
                cert.subject,
                ca_flaw(cert)
            ),
            help_rotate.clone(),
        );
        flaw = Some("not a CA");
    }
    if let Some(root) = root
        && !cert.is_signed_by(&root.cert)
    {
        on_cert.add(
            Code::ChainBroken,
            format!(
                "the intermediate does not chain to the mesh root {} (issuer `{}`)",
                root.cert_file.display(),
                cert.issuer
            ),
            help_rotate.clone(),
        );
        flaw = Some("does not chain to the root");
    }
    on_cert.expiry(cert, now, &help_rotate);
    if cert.not_after <= now {
        flaw = Some("expired");
    }
    let want = cert::KeyKind::of(algorithm);
    if cert.key_kind != want {
        on_cert.add(
            Code::AlgorithmDiffers,
            format!(
                "the stored intermediate is {} but ca.keyAlgorithm is {want}; it is kept",
                cert.key_kind
            ),
            format!("to change it: `{rotate}`"),
        );
    }
    flaw
}

/// cert-chain.pem is derived from the intermediate and the root; it must say exactly that
/// (E077), or it is missing and the next build writes it. The flaw, for the status row.
fn check_chain_file(
    store: &Store,
    model: &Model,
    mi: MeshId,
    c: ClusterId,
    cert: &Cert,
    root: &Root,
    ins: &mut Inspection,
) -> Option<&'static str> {
    let mesh = &model.topology.meshes[mi].name;
    let chain_path = store.cert_chain(mesh, &model.topology.clusters[c].name);
    if !present(&chain_path) {
        ins.missing.push(Missing::Chain(mi, c));
        return None;
    }
    let mut on_chain = Place {
        findings: &mut ins.findings,
        origin: Origin::Store,
        file: chain_path.clone(),
        at: path!("clusters", c, "name"),
    };
    let text = on_chain.read()?;
    let expected = chain_pem(cert, root);
    let same = cert::certs_from_pem(&text)
        .is_ok_and(|certs| certs.iter().map(Cert::pem).collect::<String>() == expected);
    if same {
        return None;
    }
    on_chain.add(
        Code::IncompleteStore,
        "not the intermediate followed by the mesh root (cert-chain.pem must be ca-cert.pem, then the root chain)",
        format!("delete {}; the next build writes it again", chain_path.display()),
    );
    Some("cert-chain.pem is wrong")
}

/// A cluster's row of `meshc pki status`: what could be read of its certificate, and `chain`.
fn intermediate_row(
    mesh: &str,
    cluster: &str,
    cert: Option<&Cert>,
    file: &FsPath,
    chain: &str,
    now: OffsetDateTime,
) -> StatusRow {
    StatusRow {
        mesh: mesh.to_string(),
        cluster: Some(cluster.to_string()),
        algorithm: cert.map(|c| c.key_kind.to_string()),
        subject: cert.map(|c| c.subject.clone()),
        not_after: cert.map(|c| rfc3339(c.not_after)),
        days_left: cert.map(|c| c.days_left(now)),
        chain: chain.to_string(),
        file: file.display().to_string(),
    }
}

/// Why the missing material was not made.
#[derive(Debug, thiserror::Error)]
pub enum CompleteError {
    #[error("{0}")]
    Locked(String),
    #[error("could not generate key material: {0}")]
    Generate(String),
}

/// Starts the random generator on a thread of its own: its first use gathers entropy (aws-lc
/// seeds its generator from CPU jitter, tens of milliseconds), which a first build can do
/// while it reads the topology. The thread is joined when the value is dropped, so it never
/// outlives the command.
pub fn warm_up() -> Option<WarmUp> {
    std::thread::Builder::new()
        .name("meshc-entropy".into())
        .spawn(|| {
            let _ = aws_lc_rs::rand::fill(&mut [0u8; 1]);
        })
        .ok()
        .map(|thread| WarmUp(Some(thread)))
}

/// The thread [`warm_up`] started, joined on drop.
#[derive(Debug)]
pub struct WarmUp(Option<std::thread::JoinHandle<()>>);

impl Drop for WarmUp {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// Makes what [`inspect`] found missing (roots first, then the intermediates they sign) and
/// returns the files to add to the store. With `locked`, nothing may be made.
pub fn complete(
    model: &Model,
    store: &Store,
    mut ins: Inspection,
    locked: bool,
    now: OffsetDateTime,
    progress: &dyn crate::progress::Progress,
) -> Result<(Material, Vec<NewFile>), CompleteError> {
    let mut files = Vec::new();
    // cert-chain.pem is derived from stored certificates: remaking it is not making material.
    let makes_material = |m: &&Missing| !matches!(m, Missing::Chain(..));
    if locked && ins.missing.iter().any(|m| makes_material(&m)) {
        let what: Vec<String> = ins
            .missing
            .iter()
            .filter(makes_material)
            .map(|m| match *m {
                Missing::Root(mi) => store
                    .root_cert(&model.topology.meshes[mi].name)
                    .display()
                    .to_string(),
                Missing::Intermediate(mi, c) | Missing::Chain(mi, c) => store
                    .cluster_dir(
                        &model.topology.meshes[mi].name,
                        &model.topology.clusters[c].name,
                    )
                    .display()
                    .to_string(),
            })
            .collect();
        return Err(CompleteError::Locked(format!(
            "--locked: the PKI store lacks material a build would create: {}",
            what.join(", ")
        )));
    }
    ins.missing.sort();
    let making = ins.missing.iter().filter(makes_material).count();
    if making > 0 {
        progress.stage("generating keys", making);
    }
    // Roots sort first: the intermediates signed by them are then made on every core.
    for &missing in &ins.missing {
        let Missing::Root(mi) = missing else { continue };
        progress.step();
        let mesh = &model.topology.meshes[mi];
        let (cert, key) = issue::root(mesh.ca.key_algorithm, mesh.ca.root_validity_days, now)
            .map_err(|e| CompleteError::Generate(e.to_string()))?;
        let cert_file = store.root_cert(&mesh.name);
        files.push(NewFile::public(cert_file.clone(), cert.pem()));
        files.push(NewFile::private(
            store.root_key(&mesh.name),
            key.secret_pem().to_string(),
        ));
        ins.material.roots.insert(
            mi,
            Root {
                cert,
                key,
                above: Vec::new(),
                cert_file,
                generated: true,
            },
        );
    }
    let wanted: Vec<(MeshId, ClusterId)> = ins
        .missing
        .iter()
        .filter_map(|m| match *m {
            Missing::Intermediate(mi, c) if ins.material.roots.contains_key(&mi) => Some((mi, c)),
            Missing::Root(_) | Missing::Intermediate(..) | Missing::Chain(..) => None,
        })
        .collect();
    let roots = &ins.material.roots;
    let made = crate::parallel::map(&wanted, |&(mi, c)| {
        progress.step();
        let mesh = &model.topology.meshes[mi];
        issue::intermediate(
            &roots[&mi],
            &model.topology.clusters[c].name,
            mesh.ca.key_algorithm,
            mesh.ca.intermediate_validity_days,
            now,
        )
        .map_err(|e| CompleteError::Generate(e.to_string()))
    })?;
    for (&(mi, c), (cert, key)) in wanted.iter().zip(made) {
        let mesh = &model.topology.meshes[mi];
        let cluster = &model.topology.clusters[c].name;
        files.push(NewFile::public(
            store.ca_cert(&mesh.name, cluster),
            cert.pem(),
        ));
        files.push(NewFile::private(
            store.ca_key(&mesh.name, cluster),
            key.secret_pem().to_string(),
        ));
        files.push(NewFile::public(
            store.cert_chain(&mesh.name, cluster),
            chain_pem(&cert, &ins.material.roots[&mi]),
        ));
        ins.material
            .intermediates
            .insert(c, Intermediate { cert, key });
    }
    for &missing in &ins.missing {
        let Missing::Chain(mi, c) = missing else {
            continue;
        };
        let (Some(root), Some(i)) = (
            ins.material.roots.get(&mi),
            ins.material.intermediates.get(&c),
        ) else {
            continue;
        };
        let mesh = &model.topology.meshes[mi];
        let cluster = &model.topology.clusters[c].name;
        files.push(NewFile::public(
            store.cert_chain(&mesh.name, cluster),
            chain_pem(&i.cert, root),
        ));
    }
    Ok((ins.material, files))
}

/// Issues a new intermediate for one cluster, signed by its mesh's root, replacing the old one.
/// Returns the new certificate; the files are written before this returns.
pub fn rotate(
    model: &Model,
    store: &Store,
    root: &Root,
    mi: MeshId,
    c: ClusterId,
    now: OffsetDateTime,
) -> Result<Cert, RotateError> {
    let mesh = &model.topology.meshes[mi];
    let cluster = &model.topology.clusters[c].name;
    let (cert, key) = issue::intermediate(
        root,
        cluster,
        mesh.ca.key_algorithm,
        mesh.ca.intermediate_validity_days,
        now,
    )
    .map_err(|e| RotateError::Generate(e.to_string()))?;
    let files = vec![
        NewFile::private(
            store.ca_key(&mesh.name, cluster),
            key.secret_pem().to_string(),
        ),
        NewFile::public(store.ca_cert(&mesh.name, cluster), cert.pem()),
        NewFile::public(
            store.cert_chain(&mesh.name, cluster),
            chain_pem(&cert, root),
        ),
    ];
    store.replace_cluster(&mesh.name, cluster, &files)?;
    Ok(cert)
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("could not generate key material: {0}")]
    Generate(String),
    #[error("{0}")]
    Write(#[from] WriteError),
}
