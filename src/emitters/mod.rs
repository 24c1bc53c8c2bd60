//! The emitters: one per kind of output file, listed in the order their files are written.
//!
//! Each emitter is a small module that knows one output (namespaces, cacerts, remote
//! secrets, gateways, install inputs, ...): when a cluster needs it, which template renders it,
//! and the typed context that template gets. [`CLUSTER`] lists the per-cluster emitters in the
//! order a cluster's files are applied; [`TREE`] the emitters of files about the whole tree.
//! The kustomization and the cluster's README come last and are derived from what the others
//! produced ([`Role`]): a new output appears in both without being named there. A new kind of
//! output is a new module here and one line in a list (ARCHITECTURE.md has the recipe).
//!
//! Every decision is already made in the plan (`plan.rs`): emitters read the plan's enums and
//! lists, never the topology's booleans. Rendering does no I/O: the inputs a build reads are in
//! [`Inputs`], the key material in [`Material`].

mod cacerts;
mod context;
mod expose_istiod;
mod expose_services;
mod gateways;
pub mod gitops;
mod index;
mod install;
mod istio_objects;
mod kustomization;
mod namespaces;
mod reader_token;
mod readme;
mod remote_secrets;
mod rotation;
mod sail;
mod services;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};

use serde::Serialize;

use crate::inputs::Inputs;
use crate::model::Model;
use crate::output::{OutFile, Output, Scope};
use crate::pki::Material;
use crate::plan::ClusterPlan;
use crate::render::{RenderError, Renderer};

pub use context::Common;

/// What a produced file is for, which decides where the kustomization and the README list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A manifest `kubectl apply -k` applies: listed in `kustomization.yaml`, in order.
    Applied,
    /// An installer input (Helm values, an IstioOperator): the README runs `command` with it.
    Install {
        installer: crate::topology::Installer,
        command: String,
        /// For Helm values: the release they install, for the GitOps objects.
        release: Option<HelmRelease>,
    },
    /// A document for people (the README itself).
    Text,
}

/// A Helm release as the README's command installs it: what Argo CD and Flux install the same
/// values with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmRelease {
    pub release: String,
    /// The chart's name (`base`, `istiod`, `gateway`, ...).
    pub chart: String,
    pub namespace: String,
    /// A version or a semver range (`~1.30.0`), as Helm, Argo CD and Flux all take it.
    pub version: String,
    /// The chart repository (`istio.charts.repository`); `None` for Istio's own.
    pub repository: Option<String>,
    /// Whether the release installs istiod (the one that takes Solo's license).
    pub istiod: bool,
}

/// One file an emitter produced for a cluster, by its path in the cluster's directory.
#[derive(Debug, Clone)]
pub struct Produced {
    pub rel: String,
    pub bytes: Arc<[u8]>,
    pub private: bool,
    pub role: Role,
    /// Holds Gateway API objects: the README installs the Gateway API CRDs first.
    pub gateway_api: bool,
}

/// Everything an emitter may read for one cluster.
#[derive(Debug)]
pub struct ClusterCx<'a> {
    pub model: &'a Model,
    pub plan: &'a ClusterPlan,
    pub material: &'a Material,
    pub inputs: &'a Inputs,
    pub renderer: &'a Renderer,
    /// The context every template of the cluster shares.
    pub common: &'a Common,
    shared: &'a Shared,
}

/// One shared text: empty until rendered, then the text or the error its render gave (a
/// render is deterministic: every cluster asking would fail alike).
type Slot = Mutex<Option<Result<Arc<str>, RenderError>>>;

/// Files that are the same for many clusters, rendered once and shared by reference.
#[derive(Debug, Default)]
struct Shared {
    /// Per key, the text once rendered. A thread rendering it holds the slot's lock: a thread
    /// that needs the text now waits for it instead of rendering it again, and a thread that
    /// can use it later ([`Files::add_shared`]) goes on with other files meanwhile.
    texts: RwLock<HashMap<String, Arc<Slot>>>,
}

/// A shared text, or the slot another thread is rendering it in.
enum Taken {
    Text(Arc<str>),
    Busy(Arc<Slot>),
}

impl Shared {
    fn slot(&self, key: String) -> Arc<Slot> {
        // Most asks find the slot made, and share the map's lock with each other.
        let made = self
            .texts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .map(Arc::clone);
        made.unwrap_or_else(|| {
            Arc::clone(
                self.texts
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(key)
                    .or_default(),
            )
        })
    }

    /// The text under `key`, rendered here if no thread has; with `wait` false, `Busy` while
    /// another thread renders it.
    fn take(
        &self,
        key: String,
        wait: bool,
        render: impl FnOnce() -> Result<String, RenderError>,
    ) -> Result<Taken, RenderError> {
        let slot = self.slot(key);
        let mut done = match slot.try_lock() {
            Ok(done) => done,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) if !wait => return Ok(Taken::Busy(Arc::clone(&slot))),
            Err(TryLockError::WouldBlock) => slot.lock().unwrap_or_else(PoisonError::into_inner),
        };
        let result = if let Some(result) = done.as_ref() {
            result.clone()
        } else {
            let result = render().map(Arc::from);
            *done = Some(result.clone());
            result
        };
        result.map(Taken::Text)
    }
}

/// What a slot holds once the thread rendering it is done.
fn settled(slot: &Slot) -> Result<Arc<str>, RenderError> {
    slot.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        // Only a render that panicked leaves a slot it took empty, and its panic ends the build.
        .unwrap_or_else(|| {
            Err(RenderError::Template {
                name: "a shared file".to_string(),
                reason: "its render stopped".to_string(),
            })
        })
}

impl ClusterCx<'_> {
    /// The text under `key`, rendered by `render` the first time it is asked for: a file many
    /// clusters share is rendered (and checked) once, and held once in memory. When another
    /// thread is rendering it, this waits for its text.
    pub fn shared(
        &self,
        key: String,
        render: impl FnOnce() -> Result<String, RenderError>,
    ) -> Result<Arc<str>, RenderError> {
        match self.shared.take(key, true, render)? {
            Taken::Text(text) => Ok(text),
            Taken::Busy(slot) => settled(&slot),
        }
    }

    /// [`ClusterCx::shared`], or `None` at once while another thread renders the text.
    pub fn shared_now(
        &self,
        key: String,
        render: impl FnOnce() -> Result<String, RenderError>,
    ) -> Result<Option<Arc<str>>, RenderError> {
        Ok(match self.shared.take(key, false, render)? {
            Taken::Text(text) => Some(text),
            Taken::Busy(_) => None,
        })
    }
}

/// The files of one cluster, in the order they were produced.
#[derive(Debug)]
pub struct Files {
    dir: String,
    /// Until [`Files::settle`], a shared file another thread was still rendering has no bytes
    /// yet: the emitters that list files (the kustomization, the README) read paths and roles.
    pub produced: Vec<Produced>,
    /// The paths of `produced` (a primary has hundreds of files in `istio/`).
    rels: HashSet<String>,
    /// The files of `produced` whose text another thread is rendering, with its slot.
    pending: Vec<(usize, Arc<Slot>)>,
}

impl Files {
    fn new(dir: String) -> Files {
        Files {
            dir,
            produced: Vec::new(),
            rels: HashSet::new(),
            pending: Vec::new(),
        }
    }

    /// Adds a manifest many clusters share ([`ClusterCx::shared`]). While another thread
    /// renders its text, the file is filled in by [`Files::settle`] and this thread goes on
    /// with the cluster's other files: two threads that need the same 500 DestinationRules, or
    /// a mesh's `services.yaml`, at once render different ones instead of one waiting.
    pub fn add_shared(
        &mut self,
        cx: &ClusterCx<'_>,
        rel: &str,
        key: String,
        render: impl FnOnce() -> Result<String, RenderError>,
    ) -> Result<(), RenderError> {
        let (bytes, pending) = match cx.shared.take(key, false, render)? {
            Taken::Text(text) => (text.into(), None),
            Taken::Busy(slot) => (Arc::from(&b""[..]), Some(slot)),
        };
        self.add(Produced {
            rel: rel.to_string(),
            bytes,
            private: false,
            role: Role::Applied,
            gateway_api: false,
        })?;
        if let Some(slot) = pending {
            self.pending.push((self.produced.len() - 1, slot));
        }
        Ok(())
    }

    /// The first error among the shared files other threads were rendering, once they are
    /// done.
    fn first_pending_error(&self) -> Option<RenderError> {
        self.pending
            .iter()
            .find_map(|(_, slot)| settled(slot).err())
    }

    /// Fills in the shared files other threads were rendering, once they are done.
    fn settle(&mut self) -> Result<(), RenderError> {
        for (i, slot) in std::mem::take(&mut self.pending) {
            self.produced[i].bytes = settled(&slot)?.into();
        }
        Ok(())
    }

    /// Adds a file. Two outputs with one path would silently lose one: validation rules this
    /// out, and this refuses it should a new kind of output ever allow it.
    pub fn add(&mut self, file: Produced) -> Result<(), RenderError> {
        if !self.rels.insert(file.rel.clone()) {
            return Err(RenderError::Duplicate {
                path: format!("{}/{}", self.dir, file.rel),
            });
        }
        self.produced.push(file);
        Ok(())
    }

    /// Kubernetes objects from `template`, applied by the kustomization.
    pub fn object(
        &mut self,
        cx: &ClusterCx<'_>,
        rel: &str,
        template: &str,
        context: &impl crate::render::Context,
        private: bool,
    ) -> Result<(), RenderError> {
        let text = cx.renderer.objects(template, context)?;
        self.add(Produced {
            rel: rel.to_string(),
            bytes: Arc::from(text.into_bytes()),
            private,
            role: Role::Applied,
            gateway_api: false,
        })
    }

    /// Kubernetes objects built as data (`render::data`), with `header` as comment lines.
    pub fn data(
        &mut self,
        rel: &str,
        header: &str,
        objects: &[serde_json::Value],
        role: Role,
        gateway_api: bool,
    ) -> Result<(), RenderError> {
        let text = crate::render::data(rel, header, objects)?;
        self.add(Produced {
            rel: rel.to_string(),
            bytes: Arc::from(text.into_bytes()),
            private: false,
            role,
            gateway_api,
        })
    }
}

/// A template context: the cluster's common values with an emitter's own added (an
/// emitter's name wins over a common one). The common values are made template values once
/// per cluster ([`Common::value`]), not once per file.
#[derive(Debug)]
pub struct With<'a, T: Serialize> {
    pub common: &'a Common,
    pub extra: T,
}

impl<T: Serialize> crate::render::Context for With<'_, T> {
    fn value(&self) -> minijinja::Value {
        minijinja::value::merge_maps([
            self.common.value(),
            minijinja::Value::from(minijinja::value::Serde(&self.extra)),
        ])
    }
}

/// Makes one kind of a cluster's files.
pub trait ClusterEmitter: Sync {
    /// Adds the cluster's files of this kind (none when the cluster does not need them).
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError>;
}

/// Every per-cluster output, in the order a cluster's files are applied: namespaces and the
/// CA first, Istio configuration after the objects it refers to; install inputs; then the
/// two files derived from all of these.
pub const CLUSTER: &[&dyn ClusterEmitter] = &[
    &namespaces::Namespaces,
    &cacerts::Cacerts,
    &reader_token::ReaderToken,
    &remote_secrets::RemoteSecrets,
    &services::Services,
    &expose_istiod::ExposeIstiod,
    &expose_services::ExposeServices,
    &gateways::EastWestGateway,
    &gateways::PeerGateways,
    &istio_objects::IstioObjects,
    &install::Install,
    &kustomization::Kustomization,
    &readme::Readme,
];

/// Everything a tree-level emitter may read: the whole plan and every cluster's files.
#[derive(Debug)]
pub struct TreeCx<'a> {
    pub model: &'a Model,
    pub plans: &'a [ClusterPlan],
    pub renderer: &'a Renderer,
    /// The key material, for what a root rotation in progress says about each cluster.
    pub material: &'a Material,
    /// Each cluster's files, in plan order.
    pub clusters: &'a [Files],
}

/// Makes a file about more than one cluster.
pub trait TreeEmitter: Sync {
    /// Adds `(scope, path relative to the output directory, text)` for each file it makes.
    fn emit(
        &self,
        cx: &TreeCx<'_>,
        out: &mut Vec<(Scope, String, Arc<[u8]>)>,
    ) -> Result<(), RenderError>;
}

/// The files about the whole tree (or a mesh), after every cluster's.
pub const TREE: &[&dyn TreeEmitter] = &[
    &index::Index,
    &gitops::ArgoCd,
    &gitops::Flux,
    &rotation::RotationPlan,
];

/// Runs every emitter: each cluster's files under `<cluster>/`, then the tree's.
pub fn emit(
    model: &Model,
    plans: &[ClusterPlan],
    material: &Material,
    inputs: &Inputs,
    renderer: &Renderer,
    progress: &dyn crate::progress::Progress,
) -> Result<Output, RenderError> {
    let shared = Shared::default();
    progress.stage("rendering clusters", plans.len());
    let cluster = |plan: &ClusterPlan| {
        let common = Common::new(model, plan, material.rotating(plan.mesh).is_some());
        let cx = ClusterCx {
            model,
            plan,
            material,
            inputs,
            renderer,
            common: &common,
            shared: &shared,
        };
        let mut files = Files::new(plan.name.clone());
        for emitter in CLUSTER {
            if let Err(e) = emitter.emit(&cx, &mut files) {
                // A file taken later came before this failure: its error, if it has one, is
                // the one to report (as it would be had it been rendered here, in order).
                return Err(files.first_pending_error().unwrap_or(e));
            }
        }
        files.settle()?;
        progress.step();
        Ok(files)
    };
    let clusters = crate::parallel::map(plans, cluster)?;
    let mut tree = Vec::new();
    let cx = TreeCx {
        model,
        plans,
        renderer,
        material,
        clusters: &clusters,
    };
    for emitter in TREE {
        emitter.emit(&cx, &mut tree)?;
    }
    // Every path is distinct (a cluster's by `Files::add`, the clusters' by their
    // directories); the map is built from them at once rather than by 12,000 inserts.
    let mut all = Vec::with_capacity(clusters.iter().map(|f| f.produced.len()).sum::<usize>());
    for files in clusters {
        let scope = Scope::Cluster(files.dir.clone());
        for f in files.produced {
            let path = format!("{}/{}", files.dir, f.rel);
            all.push((path, OutFile::new(scope.clone(), f.bytes, f.private)));
        }
    }
    for (scope, path, bytes) in tree {
        all.push((path, OutFile::new(scope, bytes, false)));
    }
    Ok(Output {
        files: all.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_being_rendered_is_busy_for_a_thread_that_can_wait_and_settles_to_its_text() {
        let shared = Shared::default();
        let slot = shared.slot("k".to_string());
        let mut files = Files::new("c1".to_string());
        {
            // Another thread holds the slot while it renders.
            let mut rendering = slot.lock().expect("lock");
            let Ok(Taken::Busy(busy)) =
                shared.take("k".to_string(), false, || Ok("again".to_string()))
            else {
                panic!("a slot being rendered is busy");
            };
            files
                .add(Produced {
                    rel: "services.yaml".to_string(),
                    bytes: Arc::from(&b""[..]),
                    private: false,
                    role: Role::Applied,
                    gateway_api: false,
                })
                .expect("added");
            files.pending.push((0, busy));
            *rendering = Some(Ok(Arc::from("rendered once")));
        }
        files.settle().expect("settled");
        assert_eq!(&*files.produced[0].bytes, b"rendered once");
        // Later asks take the text; none renders it again.
        let Ok(Taken::Text(t)) = shared.take("k".to_string(), false, || Ok("again".to_string()))
        else {
            panic!("a rendered slot holds its text");
        };
        assert_eq!(&*t, "rendered once");
    }

    #[test]
    fn a_failed_render_fails_every_cluster_that_asks_alike() {
        let shared = Shared::default();
        let failed = || {
            Err(RenderError::Template {
                name: "services.yaml.j2".to_string(),
                reason: "boom".to_string(),
            })
        };
        let first = shared.take("k".to_string(), true, failed).err();
        let again = shared
            .take("k".to_string(), false, || Ok("fine".to_string()))
            .err();
        assert_eq!(
            first.map(|e| e.to_string()),
            Some("template services.yaml.j2: boom".to_string())
        );
        assert_eq!(
            again.map(|e| e.to_string()),
            Some("template services.yaml.j2: boom".to_string())
        );
        assert!(settled(&shared.slot("k".to_string())).is_err());
        // A cluster that took the file later reports that error before any of its own.
        let mut files = Files::new("c2".to_string());
        files.pending.push((0, shared.slot("k".to_string())));
        assert_eq!(
            files.first_pending_error().map(|e| e.to_string()),
            Some("template services.yaml.j2: boom".to_string())
        );
    }
}
