//! Root rotation: replacing a mesh's root in three phases, each one safe to apply on its own.
//!
//! Every cluster of a mesh trusts one root; swapping it in one step breaks mTLS between a
//! workload that already holds a certificate of the new root and one that does not. Istio's
//! tested procedure (istio/istio 1.30.0 `tests/integration/security/cacert_rotation/main_test.go`,
//! `samples/certs/README.md`; istio-ecosystem/sail-operator `docs/general/plugin-ca.adoc`) is:
//!
//! 1. **add trust**: every cluster keeps its intermediate; `root-cert.pem` = old root + new root;
//! 2. **switch signer**: every cluster gets an intermediate of the new root; `root-cert.pem` =
//!    old + new + new (the new root appended again, as `root-cert-combined-2.pem` in Istio's
//!    samples): the bytes differ from phase 1, so istiod pushes the bundle again and workloads
//!    are re-issued, while the set of roots stays the same;
//! 3. **remove**: `root-cert.pem` = the new root alone.
//!
//! istiod takes a new root bundle without a restart only with `ISTIO_MULTIROOT_MESH=true`
//! (istio/istio 1.30.0 `pilot/pkg/features/pilot.go`), and only when the old and new bundles
//! are subsets of one another: before 1.30 as bytes (`bytes.Contains` in `handleEvent`,
//! `pilot/pkg/bootstrap/istio_ca.go`, 1.20.0 to 1.29.x), from 1.30 as sets of certificates
//! (`pemBundleHasSubsetRelation`, 1.30.0). Each phase's bundle above contains the previous one
//! byte for byte, so every step (and an abort from phase 1, back to the old root alone) is
//! accepted by both. The reload arrived in Istio 1.20 ("Support plugged root cert rotation",
//! istio/istio#47063); before it istiod refused any root change until restarted.
//!
//! The rotation is recorded in the PKI store, `<mesh>/rotation.json` (0600), written whole:
//! an interrupted command leaves the record of the phase before or of the phase after. In
//! phases 1 and 2 the record holds the new root (and in phase 2 the new intermediates) beside
//! the mesh's current material, which stays the old root's. Entering phase 3 swaps the whole
//! mesh directory for one where the new root and its intermediates are the mesh's material
//! ([`super::Store::replace_mesh`]), with a record that keeps only the old root's certificate,
//! so that the output can still say what is being retired; finishing removes the record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::{Cert, Finding, Intermediate, Key, NewFile, Origin, Root, Store, WriteError};
use crate::diagnostic::Code;
use crate::model::{ClusterId, MeshId, Model};
use crate::path;

/// How long a workload certificate lives by default (istio/istio 1.30.0
/// `security/pkg/cmd/constants.go`, `DefaultWorkloadCertTTL`): after the signer switched, every
/// workload holds a certificate of the new root once this has passed.
pub const WORKLOAD_CERT_TTL: Duration = Duration::hours(24);

/// The first Istio minor whose istiod reloads a plug-in root bundle (istio/istio#47063, 1.20.0).
pub const MULTIROOT_RELOAD_SINCE: u32 = 20;

/// The istiod environment variable that lets it take a new root bundle without a restart.
pub const MULTIROOT_ENV: &str = "ISTIO_MULTIROOT_MESH";

/// The proxy metadata that lets istio-agent take trust-bundle updates over xDS
/// (`pilot/cmd/pilot-agent/options/options.go`, 1.30.0), as the Istio test sets it.
pub const XDS_AGENT_METADATA: &str = "PROXY_CONFIG_XDS_AGENT";

/// The three phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    AddTrust = 1,
    SwitchSigner = 2,
    RemoveOld = 3,
}

impl Phase {
    pub fn number(self) -> u8 {
        self as u8
    }

    pub fn title(self) -> &'static str {
        match self {
            Phase::AddTrust => "add trust",
            Phase::SwitchSigner => "switch signer",
            Phase::RemoveOld => "remove the old root",
        }
    }

    fn from_number(n: u8) -> Option<Phase> {
        match n {
            1 => Some(Phase::AddTrust),
            2 => Some(Phase::SwitchSigner),
            3 => Some(Phase::RemoveOld),
            _ => None,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "phase {} of 3 ({})", self.number(), self.title())
    }
}

/// A rotation in progress, checked against the store.
#[derive(Debug)]
pub struct Rotation {
    pub phase: Phase,
    pub started: OffsetDateTime,
    /// When the current phase was entered (the wait before phase 3 counts from phase 2's).
    pub phase_since: OffsetDateTime,
    /// The root being retired.
    pub old_root: Cert,
    /// The root being introduced: in phases 1 and 2 from the record, in phase 3 the mesh's
    /// root (its key then lives in `root-key.pem`; `None` here).
    pub new_root: Option<Root>,
    /// Phase 2: each cluster's intermediate of the new root.
    pub intermediates: BTreeMap<ClusterId, Intermediate>,
}

impl Rotation {
    /// The new root's certificate in phases 1 and 2.
    pub fn new_root_cert(&self) -> Option<&Cert> {
        self.new_root.as_ref().map(|r| &r.cert)
    }

    /// When phase 3 may start: one workload-certificate lifetime after phase 2 began.
    pub fn wait_until(&self) -> Option<OffsetDateTime> {
        (self.phase == Phase::SwitchSigner).then(|| self.phase_since + WORKLOAD_CERT_TTL)
    }
}

/// The record on disk.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Record {
    phase: u8,
    started: String,
    phase_since: String,
    old_root: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new_root: Option<Pair>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    intermediates: BTreeMap<String, Pair>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    cert: String,
    key: String,
}

/// Times are recorded to the second: the record is read back into what builds render.
fn rfc3339(t: OffsetDateTime) -> String {
    super::rfc3339(t.replace_nanosecond(0).unwrap_or(t))
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("`{s}` is not an RFC 3339 time: {e}"))
}

fn one_cert(pem: &str, what: &str) -> Result<Cert, String> {
    super::one_cert(pem, what)
}

/// Reads the mesh's rotation record, if any, and checks it against the mesh's current root
/// (`root`: the old one in phases 1 and 2, the new one in phase 3) and clusters. Problems are
/// findings: a damaged record (E123, the store's fault) or a cluster that joined the mesh in
/// phase 2 (E124, the topology's).
pub fn load(
    model: &Model,
    mi: MeshId,
    store: &Store,
    root: Option<&Root>,
    clusters: &[ClusterId],
    findings: &mut Vec<Finding>,
) -> Option<Rotation> {
    let mesh = &model.topology.meshes[mi];
    let file = store.rotation(&mesh.name);
    if std::fs::symlink_metadata(&file).is_err() {
        return None;
    }
    let damaged = |message: String| {
        Finding {
        code: Code::RotationDamaged,
        origin: Origin::Store,
        file: file.clone(),
        message,
        help: "restore the PKI store from a backup; the record says which phase of a root rotation the mesh is in".to_string(),
        at: path!("meshes", mi, "name"),
    }
    };
    if mesh.ca.root.is_some() {
        findings.push(damaged(
            "a root rotation of a mesh with a bring-your-own root (`ca.root`)".to_string(),
        ));
        return None;
    }
    let root = root?;
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) => {
            findings.push(damaged(format!("cannot be read: {e}")));
            return None;
        }
    };
    match parse(model, &text, root, clusters) {
        Ok((rotation, joined)) => {
            for c in joined {
                let name = &model.topology.clusters[c].name;
                findings.push(Finding {
                    code: Code::RotationNewCluster,
                    origin: Origin::Topology,
                    file: file.clone(),
                    message: format!(
                        "cluster `{name}` has no intermediate of the new root: it joined mesh `{}` after its root rotation switched signers",
                        mesh.name
                    ),
                    help: format!(
                        "add `{name}` once the rotation is finished (`meshc pki rotate-root TOPOLOGY --mesh {} --advance` through phase 3)",
                        mesh.name
                    ),
                    at: path!("clusters", c, "name"),
                });
            }
            Some(rotation)
        }
        Err(message) => {
            findings.push(damaged(message));
            None
        }
    }
}

/// The record's contents, checked; and the clusters of the mesh without a new intermediate in
/// phase 2.
fn parse(
    model: &Model,
    text: &str,
    root: &Root,
    clusters: &[ClusterId],
) -> Result<(Rotation, Vec<ClusterId>), String> {
    let record: Record =
        serde_json::from_str(text).map_err(|e| format!("not a rotation record: {e}"))?;
    let phase = Phase::from_number(record.phase)
        .ok_or_else(|| format!("phase {} does not exist", record.phase))?;
    let old_root = one_cert(&record.old_root, "old root")?;
    let mut rotation = Rotation {
        phase,
        started: parse_time(&record.started)?,
        phase_since: parse_time(&record.phase_since)?,
        old_root,
        new_root: None,
        intermediates: BTreeMap::new(),
    };
    let mut joined = Vec::new();
    if phase == Phase::RemoveOld {
        if record.new_root.is_some() || !record.intermediates.is_empty() {
            return Err("phase 3 keeps no key in the record".to_string());
        }
        if rotation.old_root.der == root.anchor().der {
            return Err("in phase 3 the mesh's root must be the new one".to_string());
        }
        return Ok((rotation, joined));
    }
    if rotation.old_root.der != root.anchor().der {
        return Err(format!(
            "the old root it names is not the mesh's root {}",
            root.cert_file.display()
        ));
    }
    let pair = record
        .new_root
        .as_ref()
        .ok_or_else(|| format!("phase {} without the new root", record.phase))?;
    let cert = one_cert(&pair.cert, "new root")?;
    let key = Key::from_pem(&pair.key)?;
    if !cert.is_self_signed() || !cert.is_ca() || !cert.matches(&key) {
        return Err(
            "the new root is not a self-signed CA certificate with its own key".to_string(),
        );
    }
    let new_root = Root {
        cert,
        key,
        above: Vec::new(),
        cert_file: root.cert_file.with_file_name("rotation.json"),
        generated: true,
    };
    if phase == Phase::SwitchSigner {
        for &c in clusters {
            let name = &model.topology.clusters[c].name;
            let Some(pair) = record.intermediates.get(name) else {
                joined.push(c);
                continue;
            };
            let cert = one_cert(&pair.cert, "intermediate")?;
            let key = Key::from_pem(&pair.key)?;
            if !cert.is_signed_by(&new_root.cert) || !cert.matches(&key) {
                return Err(format!(
                    "the new intermediate of `{name}` is not signed by the new root, or not its key's"
                ));
            }
            rotation.intermediates.insert(c, Intermediate { cert, key });
        }
    }
    rotation.new_root = Some(new_root);
    Ok((rotation, joined))
}

/// Writes the record of phase 1: a new root, made here with the mesh's algorithm and validity.
pub fn start(
    model: &Model,
    mi: MeshId,
    store: &Store,
    old: &Root,
    now: OffsetDateTime,
) -> Result<Cert, super::RotateError> {
    let mesh = &model.topology.meshes[mi];
    let (cert, key) = super::issue::root(mesh.ca.key_algorithm, mesh.ca.root_validity_days, now)
        .map_err(|e| super::RotateError::Generate(e.to_string()))?;
    let record = Record {
        phase: Phase::AddTrust.number(),
        started: rfc3339(now),
        phase_since: rfc3339(now),
        old_root: old.anchor().pem(),
        new_root: Some(Pair {
            cert: cert.pem(),
            key: key.secret_pem().to_string(),
        }),
        intermediates: BTreeMap::new(),
    };
    write(store, &mesh.name, &record)?;
    Ok(cert)
}

/// Moves the rotation one phase on: 1 → 2 issues every cluster an intermediate of the new
/// root; 2 → 3 makes the new root and those intermediates the mesh's material; 3 → done
/// removes the record. Returns the phase entered (`None`: the rotation is finished).
pub fn advance(
    model: &Model,
    mi: MeshId,
    store: &Store,
    rotation: &Rotation,
    clusters: &[ClusterId],
    now: OffsetDateTime,
) -> Result<Option<Phase>, super::RotateError> {
    let mesh = &model.topology.meshes[mi];
    let generate = |e: super::issue::IssueError| super::RotateError::Generate(e.to_string());
    match (rotation.phase, &rotation.new_root) {
        (Phase::AddTrust, Some(new_root)) => {
            let mut intermediates = BTreeMap::new();
            for &c in clusters {
                let name = &model.topology.clusters[c].name;
                let (cert, key) = super::issue::intermediate(
                    new_root,
                    name,
                    mesh.ca.key_algorithm,
                    mesh.ca.intermediate_validity_days,
                    now,
                )
                .map_err(generate)?;
                intermediates.insert(
                    name.clone(),
                    Pair {
                        cert: cert.pem(),
                        key: key.secret_pem().to_string(),
                    },
                );
            }
            let record = Record {
                phase: Phase::SwitchSigner.number(),
                started: rfc3339(rotation.started),
                phase_since: rfc3339(now),
                old_root: rotation.old_root.pem(),
                new_root: Some(Pair {
                    cert: new_root.cert.pem(),
                    key: new_root.key.secret_pem().to_string(),
                }),
                intermediates,
            };
            write(store, &mesh.name, &record)?;
            Ok(Some(Phase::SwitchSigner))
        }
        (Phase::SwitchSigner, Some(new_root)) => {
            let mut files = vec![
                NewFile::public(store.root_cert(&mesh.name), new_root.cert.pem()),
                NewFile::private(
                    store.root_key(&mesh.name),
                    new_root.key.secret_pem().to_string(),
                ),
            ];
            for (&c, i) in &rotation.intermediates {
                let name = &model.topology.clusters[c].name;
                files.push(NewFile::public(
                    store.ca_cert(&mesh.name, name),
                    i.cert.pem(),
                ));
                files.push(NewFile::private(
                    store.ca_key(&mesh.name, name),
                    i.key.secret_pem().to_string(),
                ));
                files.push(NewFile::public(
                    store.cert_chain(&mesh.name, name),
                    super::chain_pem(&i.cert, new_root),
                ));
            }
            let record = Record {
                phase: Phase::RemoveOld.number(),
                started: rfc3339(rotation.started),
                phase_since: rfc3339(now),
                old_root: rotation.old_root.pem(),
                new_root: None,
                intermediates: BTreeMap::new(),
            };
            files.push(NewFile::private(
                store.rotation(&mesh.name),
                to_json(&record)?,
            ));
            store.replace_mesh(&mesh.name, &files)?;
            Ok(Some(Phase::RemoveOld))
        }
        (Phase::RemoveOld, _) => {
            store.remove(&store.rotation(&mesh.name))?;
            Ok(None)
        }
        _ => Err(super::RotateError::Generate(
            "the rotation record lacks the new root".to_string(),
        )),
    }
}

/// Abandons a rotation in phase 1: the record (and the new root in it) is removed, and the
/// next build writes the old root alone again.
pub fn abort(store: &Store, mesh: &str) -> Result<(), WriteError> {
    store.remove(&store.rotation(mesh))
}

fn to_json(record: &Record) -> Result<String, WriteError> {
    serde_json::to_string_pretty(record)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| WriteError::Failed(e.to_string()))
}

fn write(store: &Store, mesh: &str, record: &Record) -> Result<(), WriteError> {
    store.put(&NewFile::private(store.rotation(mesh), to_json(record)?))
}

/// `root-cert.pem` of a cluster of a rotating mesh in `phase`: `old` the trust anchor being
/// retired, `new` the one introduced (see the module comment for why phase 2 repeats `new`).
pub fn trust_bundle(phase: Phase, old: &Cert, new: &Cert) -> String {
    match phase {
        Phase::AddTrust => format!("{}{}", old.pem(), new.pem()),
        Phase::SwitchSigner => format!("{}{}{}", old.pem(), new.pem(), new.pem()),
        Phase::RemoveOld => new.pem(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::KeyAlgorithm;

    /// istiod before 1.30 takes a new bundle only when one contains the other byte for byte.
    fn reloadable(a: &str, b: &str) -> bool {
        a.contains(b) || b.contains(a)
    }

    #[test]
    fn each_phase_bundle_is_a_reload_istiod_accepts_from_the_one_before() {
        let now = OffsetDateTime::now_utc();
        let (old, _) = super::super::issue::root(KeyAlgorithm::EcdsaP256, 10, now).expect("old");
        let (new, _) = super::super::issue::root(KeyAlgorithm::EcdsaP256, 10, now).expect("new");
        let before = old.pem();
        let [p1, p2, p3] = [Phase::AddTrust, Phase::SwitchSigner, Phase::RemoveOld]
            .map(|phase| trust_bundle(phase, &old, &new));
        assert!(p1.starts_with(&before), "the old root comes first");
        assert_ne!(
            p1, p2,
            "phase 2 must change the bytes so that istiod pushes it again"
        );
        assert_eq!(p3, new.pem());
        for (a, b) in [(&before, &p1), (&p1, &p2), (&p2, &p3), (&p1, &before)] {
            assert!(reloadable(a, b));
        }
        // A swap in one step is what istiod refuses.
        assert!(!reloadable(&before, &p3));
    }

    #[test]
    fn times_are_recorded_to_the_second() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_123_456_789).expect("time");
        assert_eq!(rfc3339(t), "2027-01-15T08:00:00Z");
        assert_eq!(parse_time(&rfc3339(t)).expect("parse").nanosecond(), 0);
    }
}
