//! `meshc pki rotate-root`: starts, advances or aborts a mesh's root rotation (the phases and
//! why they are what they are: `pki/rotation.rs`).
//!
//! Each step is a gate as much as a write. A phase may only follow the previous one once
//! every cluster runs it, which meshc cannot see; what it can see is that the output tree
//! holds the previous phase (so the pull request that applied it is the one that was
//! reviewed), that istiod was told to take a new root without a restart before signers
//! switch, and that a workload-certificate lifetime has passed before the old root is
//! removed. Refusals are diagnostics on the mesh (exit 2); the store is written only once
//! every check has passed.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use time::OffsetDateTime;

use crate::cli::{
    CompileArgs, Exit, Fail, StoreArgs, load_and_compile, load_valid, merge, print_diagnostics,
    print_stdout,
};
use crate::compiler::Checked;
use crate::diagnostic::{Code, Severity};
use crate::model::{ClusterId, MeshId, Model};
use crate::parse::Node;
use crate::path;
use crate::pki::{self, Finding, Origin, Phase, Rotation, Store, rotation};
use crate::topology::{Dataplane, SecretsMode};

/// What the command is asked to do.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Start,
    Advance { force: bool },
    Abort,
}

/// The command's arguments.
#[derive(Debug)]
pub struct Args<'a> {
    pub topology: &'a Path,
    pub mesh: &'a str,
    pub store: &'a StoreArgs,
    pub out: Option<&'a Path>,
    pub step: Step,
    pub templates: Option<&'a Path>,
}

/// Runs the command.
pub fn run(args: &Args<'_>) -> Result<Exit, Fail> {
    let now = OffsetDateTime::now_utc();
    let (checked, store, compiled) =
        if let (Step::Advance { .. }, Some(out)) = (args.step, args.out) {
            {
                let common = CompileArgs {
                    progress: &crate::progress::Silent,
                    templates: args.templates,
                    out: Some(out),
                    istio_crds: &[],
                    deny_warnings: false,
                    locked: false,
                };
                let (checked, store, compiled) =
                    load_and_compile(args.topology, None, args.store, &common, true)?;
                (checked, store, Some(compiled))
            }
        } else {
            let (checked, store) = load_valid(args.topology, None, args.store, false)?;
            (checked, store, None)
        };
    let (Some(model), Some(tree)) = (&checked.model, &checked.tree) else {
        return Ok(Exit::Invalid);
    };
    let Some(mi) = model
        .topology
        .meshes
        .iter()
        .position(|m| m.name == args.mesh)
    else {
        let names: Vec<&str> = model
            .topology
            .meshes
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        eprintln!(
            "error: no mesh `{}` in {} (meshes: {})",
            args.mesh,
            checked.source.name,
            names.join(", ")
        );
        return Ok(Exit::Invalid);
    };
    let ins = pki::inspect(model, &store, checked.source.base_dir(), now);
    let mut gate = Gate {
        checked: &checked,
        tree,
        mi,
        findings: Vec::new(),
    };
    if ins.has_errors() {
        gate.findings = ins.findings;
        return Err(gate.fail());
    }
    if !ins.missing.is_empty() {
        return Err(Fail::Environment(format!(
            "mesh `{}` lacks key material in {}: run `meshc build` first",
            args.mesh,
            store.dir.display()
        )));
    }
    let rotation = ins.material.rotations.get(&mi);
    let clusters = model.members(mi);
    match args.step {
        Step::Start => start(&mut gate, model, &store, &ins.material, rotation, now),
        Step::Abort => abort(&mut gate, &store, rotation, args.mesh),
        Step::Advance { force } => {
            let (Some(out), Some(compiled)) = (args.out, compiled) else {
                return Ok(Exit::Invalid);
            };
            let Some(rotation) = rotation else {
                gate.refuse(
                    Code::RotationState,
                    format!("mesh `{}` has no root rotation in progress", args.mesh),
                    format!(
                        "start one with `meshc pki rotate-root TOPOLOGY --mesh {}`",
                        args.mesh
                    ),
                );
                return Err(gate.fail());
            };
            let held = Held {
                out,
                compiled: &compiled,
            };
            advance(
                &mut gate, model, &store, rotation, &clusters, &held, force, now,
            )
        }
    }
}

/// Collects the findings of one step and prints them as diagnostics on the mesh.
struct Gate<'a> {
    checked: &'a Checked,
    tree: &'a Node,
    mi: MeshId,
    findings: Vec<Finding>,
}

impl Gate<'_> {
    fn refuse(&mut self, code: Code, message: String, help: String) {
        self.findings.push(Finding {
            code,
            origin: Origin::Topology,
            file: std::path::PathBuf::new(),
            message,
            help,
            at: path!("meshes", self.mi, "name"),
        });
    }

    fn has_errors(&self) -> bool {
        self.findings.iter().any(Finding::is_error)
    }

    /// Prints what was found (warnings included).
    fn print(&self) {
        if self.findings.is_empty() {
            return;
        }
        let mut shown = Checked {
            source: self.checked.source.clone(),
            tree: None,
            model: None,
            diagnostics: self.checked.diagnostics.clone(),
        };
        let extra = self
            .findings
            .iter()
            .map(|f| f.to_diagnostic(self.tree))
            .collect();
        merge(&mut shown, extra);
        print_diagnostics(&shown, false);
    }

    /// Prints the findings and says how the command ends: 2 for the topology's or the
    /// request's fault, 3 for the store's.
    fn fail(&self) -> Fail {
        self.print();
        let store = self
            .findings
            .iter()
            .any(|f| f.origin == Origin::Store && f.code.severity() == Severity::Error);
        let topology = self
            .findings
            .iter()
            .any(|f| f.origin == Origin::Topology && f.code.severity() == Severity::Error);
        if store && !topology {
            Fail::Environment("the PKI store is damaged: nothing was written".to_string())
        } else {
            Fail::Reported(Exit::Invalid)
        }
    }
}

fn start(
    gate: &mut Gate<'_>,
    model: &Model,
    store: &Store,
    material: &pki::Material,
    rotation: Option<&Rotation>,
    now: OffsetDateTime,
) -> Result<Exit, Fail> {
    let mi = gate.mi;
    let mesh = &model.topology.meshes[mi];
    if let Some(r) = rotation {
        gate.refuse(
            Code::RotationState,
            format!(
                "mesh `{}` is already rotating its root: {}",
                mesh.name, r.phase
            ),
            format!(
                "move on with `meshc pki rotate-root TOPOLOGY --mesh {} -o OUT --advance`{}",
                mesh.name,
                if r.phase == Phase::AddTrust {
                    ", or abandon it with `--abort`"
                } else {
                    ""
                }
            ),
        );
    }
    if mesh.ca.root.is_some() {
        gate.refuse(
            Code::RootRotationUnsupported,
            format!("mesh `{}` has a bring-your-own root (`ca.root`), which meshc does not hold", mesh.name),
            "replace the corporate CA with whoever issues it; `meshc pki rotate-root` rotates roots meshc generated".to_string(),
        );
    }
    if mesh.ca.secrets == SecretsMode::External {
        gate.refuse(
            Code::RootRotationUnsupported,
            format!("mesh `{}` has `ca.secrets: external`: its output holds no key material, so no phase would show in a build or a review", mesh.name),
            "set `ca.secrets: plain` for the rotation (the cacerts Secrets are then written into the output), or replace the root out of band".to_string(),
        );
    }
    let minor = mesh.istio.version.minor();
    if minor < pki::MULTIROOT_RELOAD_SINCE {
        gate.refuse(
            Code::RootRotationUnsupported,
            format!("Istio {} cannot take a new root without restarting every istiod and workload", mesh.istio.version),
            format!("istiod reloads a plug-in root bundle from Istio 1.{} (istio/istio#47063): upgrade first", pki::MULTIROOT_RELOAD_SINCE),
        );
    }
    if mesh.dataplane == Dataplane::Ambient {
        gate.refuse(
            Code::RotationOnAmbient,
            format!("mesh `{}` is ambient: ztunnel's handling of several roots is not documented as zero-downtime", mesh.name),
            "rehearse the rotation on a staging mesh and watch ztunnel's logs for certificate errors after each phase".to_string(),
        );
    }
    if gate.has_errors() {
        return Err(gate.fail());
    }
    gate.print();
    let Some(root) = material.roots.get(&mi) else {
        return Err(Fail::Environment(format!(
            "mesh `{}` has no usable root",
            mesh.name
        )));
    };
    let cert = rotation::start(model, mi, store, root, now).map_err(rotate_error)?;
    print_stdout(&format!(
        "{}: root rotation started, {}: new root serial {}, SHA-256 {}, valid until {}\nrun `meshc build` and apply the output as its ROTATION.md says\n",
        store.rotation(&mesh.name).display(),
        Phase::AddTrust,
        cert.serial,
        cert.fingerprint(),
        pki::rfc3339(cert.not_after)
    ));
    interrupted("the rotation is started")
}

fn abort(
    gate: &mut Gate<'_>,
    store: &Store,
    rotation: Option<&Rotation>,
    mesh: &str,
) -> Result<Exit, Fail> {
    match rotation {
        None => gate.refuse(
            Code::RotationState,
            format!("mesh `{mesh}` has no root rotation in progress"),
            "nothing to abort".to_string(),
        ),
        Some(r) if r.phase != Phase::AddTrust => gate.refuse(
            Code::RotationState,
            format!("mesh `{mesh}`'s root rotation is in {}: it can only be abandoned in phase 1", r.phase),
            format!("workloads already hold certificates of the new root: finish the rotation with `meshc pki rotate-root TOPOLOGY --mesh {mesh} -o OUT --advance`"),
        ),
        Some(_) => {}
    }
    if gate.has_errors() {
        return Err(gate.fail());
    }
    rotation::abort(store, mesh)?;
    print_stdout(&format!(
        "{}: root rotation abandoned; run `meshc build`: every cluster trusts the old root alone again\n",
        store.rotation(mesh).display()
    ));
    interrupted("the rotation is abandoned")
}

/// The output tree and what the topology compiles to now.
struct Held<'a> {
    out: &'a Path,
    compiled: &'a crate::compile::Compiled,
}

#[allow(clippy::too_many_arguments)]
fn advance(
    gate: &mut Gate<'_>,
    model: &Model,
    store: &Store,
    rotation: &Rotation,
    clusters: &[ClusterId],
    held: &Held<'_>,
    force: bool,
    now: OffsetDateTime,
) -> Result<Exit, Fail> {
    let mesh = &model.topology.meshes[gate.mi].name;
    if let Some(why) = stale(held)? {
        gate.refuse(
            Code::RotationStale,
            format!("{} does not hold {} of mesh `{mesh}`: {why}", held.out.display(), rotation.phase),
            format!("run `meshc build`, apply the output to every cluster of `{mesh}` and commit it, then advance"),
        );
        return Err(gate.fail());
    }
    match rotation.phase {
        Phase::AddTrust => {
            for name in lacking_multiroot(held, model, gate.mi) {
                gate.refuse(
                    Code::MultirootMissing,
                    format!("the istiod install inputs of cluster `{name}` in {} do not set {}=true", held.out.display(), pki::MULTIROOT_ENV),
                    format!("without it istiod keeps the old root until restarted and workloads signed by the new intermediates are refused: set `{}: \"true\"` in istiod's env (`env` in the Helm values, `spec.values.pilot.env` for IstioOperator and Sail), rebuild and apply", pki::MULTIROOT_ENV),
                );
            }
        }
        Phase::SwitchSigner => {
            if let Some(until) = rotation.wait_until().filter(|t| now < *t) {
                let message = format!(
                    "workloads of mesh `{mesh}` may still hold certificates of the old root until {} (one workload-certificate lifetime after the signers switched)",
                    pki::rfc3339(until)
                );
                if force {
                    gate.refuse(Code::RotationForced, message, "check every workload's certificate as ROTATION.md says before applying phase 3: one still signed by the old root loses mTLS".to_string());
                } else {
                    gate.refuse(Code::RotationWait, message, "wait, or pass `--force` once ROTATION.md's checks show every workload re-issued".to_string());
                }
            }
        }
        Phase::RemoveOld => {}
    }
    if gate.has_errors() {
        return Err(gate.fail());
    }
    gate.print();
    let entered =
        rotation::advance(model, gate.mi, store, rotation, clusters, now).map_err(rotate_error)?;
    let text = match entered {
        Some(phase) => format!(
            "{}: mesh `{mesh}` entered {phase}\nrun `meshc build` and apply the output as its ROTATION.md says\n",
            store.rotation(mesh).display()
        ),
        None => format!(
            "{}: mesh `{mesh}`'s root rotation is finished; run `meshc build` (it drops ROTATION.md and ISTIO_MULTIROOT_MESH)\n",
            store.mesh_dir(mesh).display()
        ),
    };
    print_stdout(&text);
    interrupted("the step is done")
}

/// Why the output tree is not what a build writes now (as `build --check` decides), if it is
/// not.
fn stale(held: &Held<'_>) -> Result<Option<String>, Fail> {
    if let Some(left) = crate::emit::interrupted(held.out)? {
        return Ok(Some(format!(
            "an interrupted build left {}",
            left.display()
        )));
    }
    if !held.compiled.new_material.is_empty() {
        return Ok(Some(
            "the PKI store lacks material a build would create".to_string(),
        ));
    }
    let plan = crate::emit::compare(held.out, &held.compiled.output, &held.compiled.stamp)?;
    if !plan.summary().changed() {
        return Ok(None);
    }
    let changed: BTreeSet<String> = plan
        .summary()
        .scopes
        .iter()
        .filter(|(_, c)| c.created + c.changed + c.removed > 0)
        .map(|(scope, _)| match scope {
            crate::output::Scope::Tree => "the top-level files".to_string(),
            scope => scope.to_string(),
        })
        .collect();
    Ok(Some(format!(
        "a build would change it ({})",
        changed.into_iter().collect::<Vec<_>>().join(", ")
    )))
}

/// Where each installer's istiod input sets istiod's environment (Helm: the istiod chart's
/// top-level `env`, read by `templates/deployment.yaml`; IstioOperator and Sail:
/// `spec.values.pilot.env`), by file in a cluster's directory.
const ISTIOD_ENV: [(&str, &str); 3] = [
    ("install/helm/istiod.values.yaml", "/env"),
    (
        "install/istioctl/controlplane.yaml",
        "/spec/values/pilot/env",
    ),
    ("install/sail/istio.yaml", "/spec/values/pilot/env"),
];

/// The primaries of mesh `mi` whose istiod install inputs in the output tree do not all set
/// `ISTIO_MULTIROOT_MESH=true`.
fn lacking_multiroot(held: &Held<'_>, model: &Model, mi: MeshId) -> Vec<String> {
    let mut lacking = Vec::new();
    for p in held
        .compiled
        .plans
        .iter()
        .filter(|p| p.mesh == mi && p.primary)
    {
        let mut inputs = 0;
        let mut set = 0;
        for (rel, pointer) in ISTIOD_ENV {
            let path = format!("{}/{rel}", p.name);
            if !held.compiled.output.files.contains_key(&path) {
                continue;
            }
            inputs += 1;
            let value = std::fs::read_to_string(held.out.join(&path))
                .ok()
                .and_then(|text| serde_saphyr::from_str::<Value>(&text).ok())
                .and_then(|v| {
                    v.pointer(&format!("{pointer}/{}", pki::MULTIROOT_ENV))
                        .cloned()
                });
            if matches!(value, Some(Value::Bool(true))) || value == Some(Value::from("true")) {
                set += 1;
            }
        }
        if inputs == 0 || set < inputs {
            lacking.push(model.topology.clusters[p.cluster].name.clone());
        }
    }
    lacking
}

fn rotate_error(e: pki::RotateError) -> Fail {
    match e {
        pki::RotateError::Write(e) => Fail::from(e),
        e @ pki::RotateError::Generate(_) => Fail::Environment(e.to_string()),
    }
}

/// A step that finished still ends the command with 130 when an interrupt waited for it.
fn interrupted(done: &str) -> Result<Exit, Fail> {
    if crate::interrupt::requested() {
        return Err(Fail::Interrupted(done.to_string()));
    }
    Ok(Exit::Success)
}
