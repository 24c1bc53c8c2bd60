//! The back end's one entry point: a checked topology and its PKI store in; the output tree,
//! the findings and the key material still to store out.
//!
//! `meshc build`, `build --check` and `diff`, the benchmarks and the tests all compile through
//! [`compile`], as kustomize's CLI only calls its `Kustomizer::Run` and tanka's is a thin shell
//! over its library. The stages run in a fixed order: inspect the store (read-only), plan, read
//! the files the topology names, complete the key material in memory, run the emitters. It
//! writes nothing: what to do with the output and the new key material (write both, compare,
//! drop) is the caller's choice, so a build can stage `out/` before any key is stored.

use std::collections::BTreeSet;
use std::path::Path;

use time::OffsetDateTime;

use crate::compiler::Checked;
use crate::emit::Stamp;
use crate::output::Output;
use crate::pki::{self, Finding, Missing, NewFile, Store};
use crate::plan::ClusterPlan;
use crate::render::Renderer;
use crate::topology::SecretsMode;

/// How to compile.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// A directory of templates that replace the built-in ones of the same name.
    pub templates: Option<&'a Path>,
    /// The directory the output goes to. Install commands are run from a cluster's directory,
    /// so a file they name outside it (`istio.license.file`) is written relative to
    /// `<out>/<cluster>/`; without it, relative to the topology file.
    pub out: Option<&'a Path>,
    /// Refuse to make key material: every root and intermediate must be stored already.
    pub locked: bool,
    /// The time certificates are checked (and made) against.
    pub now: OffsetDateTime,
    /// Where long work reports its steps ([`crate::progress::Silent`] for none).
    pub progress: &'a dyn crate::progress::Progress,
}

/// What a topology compiles to.
#[derive(Debug)]
pub struct Compiled {
    pub output: Output,
    /// Warnings about the store and the files the topology names.
    pub findings: Vec<Finding>,
    /// Key material the store lacks, made for this compile: a build stores it (once `out/` is
    /// staged), `diff` drops it.
    pub new_material: Vec<NewFile>,
    /// The clusters whose `cacerts` holds material that is not stored yet.
    pub pending: BTreeSet<String>,
    /// Every cluster's plan, in topology order.
    pub plans: Vec<ClusterPlan>,
    /// What the manifest records: the topology's digest and each mesh's trusted roots.
    pub stamp: Stamp,
    /// Thirty days before the first certificate in use expires: until then, the same inputs
    /// compile to the same output with the same findings (the no-op check relies on it).
    pub valid_until: OffsetDateTime,
}

/// Why a topology did not compile.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The topology has errors, or has no model: nothing to compile (its diagnostics say why).
    #[error("the topology has errors")]
    Invalid,
    /// Errors in the store or in the files the topology names (with every warning, for one
    /// report); each finding's origin says whose fault it is.
    #[error("the topology's files or the PKI store have errors")]
    Findings(Vec<Finding>),
    /// Key material could not be made, or a template failed.
    #[error("{0}")]
    Environment(String),
}

/// Per mesh, the fingerprints of the roots its clusters' `root-cert.pem` carries (what the
/// manifest records to tell a lost store from the one the tree was built with): read from the
/// bundle itself, so that whatever it holds (one root, or two during a rotation) is recorded.
fn trust(
    model: &crate::model::Model,
    plans: &[ClusterPlan],
    material: &pki::Material,
) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    material
        .roots
        .iter()
        .map(|(&mi, root)| {
            let bundle = plans
                .iter()
                .filter(|p| p.mesh == mi)
                .find_map(|p| material.cacerts(mi, p.cluster))
                .and_then(|c| pki::certs_from_pem(&c.root_cert).ok());
            let fingerprints = match bundle {
                Some(certs) if !certs.is_empty() => {
                    certs.iter().map(pki::Cert::fingerprint).collect()
                }
                _ => BTreeSet::from([root.anchor().fingerprint()]),
            };
            (model.topology.meshes[mi].name.clone(), fingerprints)
        })
        .collect()
}

/// Compiles a checked topology against its PKI store. Writes nothing.
pub fn compile(
    checked: &Checked,
    store: &Store,
    options: &Options<'_>,
) -> Result<Compiled, Failure> {
    let Some(model) = checked.model.as_ref().filter(|_| !checked.has_errors()) else {
        return Err(Failure::Invalid);
    };
    let base_dir = checked.source.base_dir();
    let inspection = pki::inspect(model, store, base_dir, options.now);
    let plans = crate::plan::plan(model);
    let mut inputs = crate::inputs::read_inputs(model, &plans, base_dir, options.out, &store.dir);
    let findings: Vec<Finding> = inspection
        .findings
        .iter()
        .cloned()
        .chain(std::mem::take(&mut inputs.findings))
        .collect();
    if findings.iter().any(Finding::is_error) {
        return Err(Failure::Findings(findings));
    }
    // The clusters whose cacerts a build would fill with material it has yet to make.
    let makes_material = |p: &ClusterPlan| {
        inspection.missing.iter().any(|m| match *m {
            Missing::Root(mi) => mi == p.mesh,
            Missing::Intermediate(_, c) => c == p.cluster,
            Missing::Chain(..) => false,
        })
    };
    let pending = plans
        .iter()
        .filter(|p| {
            model.topology.meshes[p.mesh].ca.secrets == SecretsMode::Plain && makes_material(p)
        })
        .map(|p| p.name.clone())
        .collect();
    let (material, new_material) = pki::complete(
        model,
        store,
        inspection,
        options.locked,
        options.now,
        options.progress,
    )
    .map_err(|e| Failure::Environment(e.to_string()))?;
    let renderer =
        Renderer::new(options.templates).map_err(|e| Failure::Environment(e.to_string()))?;
    let valid_until = material
        .roots
        .values()
        .flat_map(pki::Root::chain)
        .chain(material.intermediates.values().map(|i| &i.cert))
        .map(|c| c.not_after)
        .min()
        .map_or(options.now + time::Duration::days(365), |t| {
            t - time::Duration::days(30)
        });
    let stamp = Stamp {
        digest: crate::emit::digest(checked.source.text.as_bytes()),
        trust: trust(model, &plans, &material),
    };
    let output = crate::emitters::emit(
        model,
        &plans,
        &material,
        &inputs,
        &renderer,
        options.progress,
    )
    .map_err(|e| Failure::Environment(e.to_string()))?;
    Ok(Compiled {
        output,
        findings,
        new_material,
        pending,
        plans,
        stamp,
        valid_until,
    })
}
