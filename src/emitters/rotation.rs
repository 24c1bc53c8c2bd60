//! `ROTATION.md` at the top of the output tree while a mesh's root is being rotated: the pull
//! request of each phase says what every cluster trusts and signs with before and after, how
//! to apply it, what to check before the next phase, and what comes next.
//!
//! A root rotation is three reviewed changes (see `pki/rotation.rs`); the reviewer cannot
//! read base64 certificates, so this file names the roots and intermediates by fingerprint
//! and gives the commands that show, in a running cluster, that every workload got there.

use std::sync::Arc;

use serde::Serialize;

use super::{TreeCx, TreeEmitter};
use crate::output::Scope;
use crate::pki::{Cert, Phase, WORKLOAD_CERT_TTL};
use crate::render::RenderError;

#[derive(Debug)]
pub struct RotationPlan;

#[derive(Serialize)]
struct CertCx {
    subject: String,
    sha256: String,
    not_after: String,
}

impl CertCx {
    fn of(c: &Cert) -> CertCx {
        CertCx {
            subject: c.subject.clone(),
            sha256: c.fingerprint(),
            not_after: rfc3339(c.not_after),
        }
    }
}

#[derive(Serialize)]
struct ClusterCx<'a> {
    name: &'a str,
    primary: bool,
    signer_before: &'static str,
    signer_after: &'static str,
    /// The intermediate workloads are signed by once this phase is applied.
    intermediate: Option<CertCx>,
}

#[derive(Serialize)]
struct MeshCx<'a> {
    name: &'a str,
    phase: u8,
    title: &'static str,
    started: String,
    since: String,
    old_root: CertCx,
    new_root: CertCx,
    trust_before: &'static str,
    trust_after: &'static str,
    /// How many certificates `root-cert.pem` holds once this phase is applied.
    bundle_certs: usize,
    wait_until: Option<String>,
    clusters: Vec<ClusterCx<'a>>,
}

#[derive(Serialize)]
struct Cx<'a> {
    meshes: Vec<MeshCx<'a>>,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl TreeEmitter for RotationPlan {
    fn emit(
        &self,
        cx: &TreeCx<'_>,
        out: &mut Vec<(Scope, String, Arc<[u8]>)>,
    ) -> Result<(), RenderError> {
        let t = &cx.model.topology;
        let mut meshes = Vec::new();
        for (&mi, rotation) in &cx.material.rotations {
            let Some(root) = cx.material.roots.get(&mi) else {
                continue;
            };
            // In phase 3 the new root is the mesh's own.
            let new_root = rotation.new_root_cert().unwrap_or(root.anchor());
            let (trust_before, trust_after, signer_before, signer_after, bundle_certs) =
                match rotation.phase {
                    Phase::AddTrust => ("{old}", "{old, new}", "old", "old", 2),
                    Phase::SwitchSigner => ("{old, new}", "{old, new}", "old", "new", 3),
                    Phase::RemoveOld => ("{old, new}", "{new}", "new", "new", 1),
                };
            let clusters = cx
                .plans
                .iter()
                .filter(|p| p.mesh == mi)
                .map(|p| {
                    let intermediate = match rotation.phase {
                        Phase::SwitchSigner => rotation.intermediates.get(&p.cluster),
                        Phase::AddTrust | Phase::RemoveOld => {
                            cx.material.intermediates.get(&p.cluster)
                        }
                    };
                    ClusterCx {
                        name: &t.clusters[p.cluster].name,
                        primary: p.primary,
                        signer_before,
                        signer_after,
                        intermediate: intermediate.map(|i| CertCx::of(&i.cert)),
                    }
                })
                .collect();
            meshes.push(MeshCx {
                name: &t.meshes[mi].name,
                phase: rotation.phase.number(),
                title: rotation.phase.title(),
                started: rfc3339(rotation.started),
                since: rfc3339(rotation.phase_since),
                old_root: CertCx::of(&rotation.old_root),
                new_root: CertCx::of(new_root),
                trust_before,
                trust_after,
                bundle_certs,
                wait_until: (rotation.phase == Phase::SwitchSigner)
                    .then(|| rfc3339(rotation.phase_since + WORKLOAD_CERT_TTL)),
                clusters,
            });
        }
        if meshes.is_empty() {
            return Ok(());
        }
        let text = cx.renderer.text("rotation.md.j2", &Cx { meshes })?;
        out.push((
            Scope::Tree,
            "ROTATION.md".to_string(),
            Arc::from(text.into_bytes()),
        ));
        Ok(())
    }
}
