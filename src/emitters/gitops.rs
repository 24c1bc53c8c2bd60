//! `out/argocd/` and `out/flux/` (scope `Tree`): the objects that let Argo CD or Flux apply
//! the tree from Git, in the order a person following the READMEs would.
//!
//! Both install each cluster in the same stages: `bootstrap` (the system namespace and the
//! `cacerts` Secret, which istiod reads only when it starts), `base` (Istio's CRDs), `control-plane`
//! (istio-cni, istiod, ztunnel, or the Sail Operator's objects), `gateways`, then `config` (the
//! cluster's kustomization: everything else). Primaries go before remotes, whose istiod
//! settings point at a primary's east-west gateway. The Helm releases install the very values
//! files the cluster's README installs with `helm`, from the same chart repository and version.
//!
//! Argo CD: one `ApplicationSet` per mesh with a list generator (one element per cluster and
//! stage component) and `goTemplate`; Helm components are multi-source Applications (the chart
//! from its repository, `$values/` from the Git repository through a `ref` source). The order
//! is a `RollingSync` strategy whose steps select Applications by their `meshc.io/role` and
//! `meshc.io/stage` labels: sync waves order resources inside one Application only, and every
//! component here is an Application of its own. Progressive syncs must be enabled in Argo CD.
//!
//! Flux: sources (the Git repository twice: whole, and filtered to each cluster's namespaces
//! and `cacerts` by `spec.ignore`; the chart repositories), per cluster three `Kustomization`s
//! chained by `dependsOn` (`-bootstrap` and `-config` applied to the cluster through its
//! kubeconfig Secret; `-istio` applied where Flux runs, holding the cluster's `HelmRelease`s
//! with the values inline and waiting for them), and `HelmRelease`s chained by `dependsOn`.
//! A Kustomization can depend only on Kustomizations and a HelmRelease only on HelmReleases
//! (their CRDs' `dependsOn`), hence the `-istio` Kustomization between them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{HelmRelease, Role, TreeCx, TreeEmitter};
use crate::output::Scope;
use crate::render::RenderError;
use crate::topology::{Gitops as Settings, Installer};

/// Istio's Helm chart repository (the README's `helm repo add istio`).
pub const ISTIO_CHARTS: &str = "https://istio-release.storage.googleapis.com/charts";

/// The stages of a cluster's install, in order.
const STAGES: [&str; 5] = ["bootstrap", "base", "control-plane", "gateways", "config"];

/// How often Flux compares the cluster with Git.
const INTERVAL: &str = "10m";

#[derive(Debug)]
pub struct ArgoCd;

#[derive(Debug)]
pub struct Flux;

/// One thing a cluster installs, as both controllers see it.
struct Component<'a> {
    /// Unique within the cluster: the Helm release, or `bootstrap`, `sail`, `config`.
    name: String,
    stage: &'static str,
    /// The path in the repository: a values file for a release, else a directory.
    path: String,
    release: Option<&'a HelmRelease>,
    /// The values file's bytes (Flux writes them inline).
    values: Option<&'a [u8]>,
    /// For a directory: the files of it to apply (an Argo CD `directory.include` glob).
    include: Option<String>,
}

/// A cluster as the GitOps objects need it.
struct Cluster<'a> {
    name: &'a str,
    mesh: &'a str,
    /// The cluster and its mesh as the topology gives them.
    spec: &'a crate::topology::Cluster,
    mesh_spec: &'a crate::topology::Mesh,
    primary: bool,
    /// A remote's primary.
    primary_name: Option<&'a str>,
    network: &'a str,
    components: Vec<Component<'a>>,
}

/// The files the bootstrap stage applies, before any chart: istiod reads `cacerts` only when it
/// starts, and its namespace must exist for the Secret.
const BOOTSTRAP: [&str; 2] = ["namespaces.yaml", "cacerts.yaml"];

/// The kustomization's resources less the bootstrap files, as one `{a,b,dir/*}` glob: the
/// `config` stage applies them, so that no object belongs to two Applications (Argo CD would
/// flap between them). Argo CD matches the glob against paths relative to the source's path
/// (`reposerver/repository/repository.go`, `findManifests`), `*` crossing `/`.
fn config_include(files: &super::Files) -> String {
    let mut parts: Vec<String> = Vec::new();
    for f in files
        .produced
        .iter()
        .filter(|f| matches!(f.role, Role::Applied))
    {
        if BOOTSTRAP.contains(&f.rel.as_str()) {
            continue;
        }
        let part = match f.rel.split_once('/') {
            Some((dir, _)) => format!("{dir}/*"),
            None => f.rel.clone(),
        };
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    format!("{{{}}}", parts.join(","))
}

/// `gitops.path` as a prefix: no `./`, no trailing `/`, `.` for the repository's root.
fn root(settings: &Settings) -> String {
    let p = settings.path.trim_end_matches('/');
    let p = p.strip_prefix("./").unwrap_or(p);
    if p.is_empty() {
        ".".to_string()
    } else {
        p.to_string()
    }
}

fn join(root: &str, rest: &str) -> String {
    if root == "." {
        rest.to_string()
    } else {
        format!("{root}/{rest}")
    }
}

fn stage_of(chart: &str) -> &'static str {
    match chart {
        "base" => "base",
        "gateway" => "gateways",
        _ => "control-plane",
    }
}

fn clusters<'a>(cx: &'a TreeCx<'a>, root: &str) -> Vec<Cluster<'a>> {
    let t = &cx.model.topology;
    let mut out: Vec<Cluster<'a>> = Vec::new();
    for (p, files) in cx.plans.iter().zip(cx.clusters) {
        let name = t.clusters[p.cluster].name.as_str();
        let dir = |rel: &str| join(root, &format!("{name}/{rel}"));
        let mut components = vec![Component {
            name: "bootstrap".to_string(),
            stage: "bootstrap",
            path: join(root, name),
            release: None,
            values: None,
            include: Some(format!("{{{}}}", BOOTSTRAP.join(","))),
        }];
        let mut sail = false;
        for f in &files.produced {
            match &f.role {
                Role::Install {
                    release: Some(release),
                    ..
                } => components.push(Component {
                    name: release.release.clone(),
                    stage: stage_of(&release.chart),
                    path: dir(&f.rel),
                    release: Some(release),
                    values: Some(&f.bytes),
                    include: None,
                }),
                Role::Install {
                    installer: Installer::Sail,
                    ..
                } if !sail => {
                    sail = true;
                    components.push(Component {
                        name: "sail".to_string(),
                        stage: "control-plane",
                        path: dir("install/sail"),
                        release: None,
                        values: None,
                        include: None,
                    });
                }
                _ => {}
            }
        }
        components.push(Component {
            name: "config".to_string(),
            stage: "config",
            path: join(root, name),
            release: None,
            values: None,
            include: Some(config_include(files)),
        });
        components.sort_by_key(|c| STAGES.iter().position(|s| *s == c.stage));
        out.push(Cluster {
            name,
            mesh: &t.meshes[p.mesh].name,
            spec: &t.clusters[p.cluster],
            mesh_spec: &t.meshes[p.mesh],
            primary: p.primary,
            primary_name: p
                .served_by
                .filter(|_| !p.primary)
                .map(|s| t.clusters[s].name.as_str()),
            network: &p.network,
            components,
        });
    }
    out
}

/// A single-quoted YAML scalar (for the Go template text of `templatePatch`).
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The part of each Application that depends on the element: its destination and sources.
/// Go template (`goTemplate: true`); only field references, `if`, `else` and `end` are used.
fn template_patch(settings: &Settings) -> String {
    let repo = sq(&settings.repository);
    let revision = sq(&settings.revision);
    format!(
        "spec:
  destination:
    namespace: '{{{{ .namespace }}}}'
  {{{{- if .server }}}}
    server: '{{{{ .server }}}}'
  {{{{- else }}}}
    name: '{{{{ .destinationName }}}}'
  {{{{- end }}}}
  sources:
  {{{{- if .chart }}}}
    - repoURL: '{{{{ .chartRepository }}}}'
      chart: '{{{{ .chart }}}}'
      targetRevision: '{{{{ .chartVersion }}}}'
      helm:
        releaseName: '{{{{ .release }}}}'
        valueFiles:
          - '$values/{{{{ .path }}}}'
    - repoURL: {repo}
      targetRevision: {revision}
      ref: values
  {{{{- else }}}}
    - repoURL: {repo}
      targetRevision: {revision}
      path: '{{{{ .path }}}}'
    {{{{- if .include }}}}
      directory:
        recurse: true
        include: '{{{{ .include }}}}'
    {{{{- end }}}}
  {{{{- end }}}}
"
    )
}

/// The repository Argo CD takes a chart from: OCI registries without their scheme (Argo CD
/// needs a repository Secret with `enableOCI: "true"` for them).
fn argo_chart_repository(release: &HelmRelease) -> String {
    match release.repository.as_deref() {
        None => ISTIO_CHARTS.to_string(),
        Some(r) => r.strip_prefix("oci://").unwrap_or(r).to_string(),
    }
}

fn application_set(settings: &Settings, mesh: &str, clusters: &[&Cluster<'_>]) -> Value {
    let argocd = settings.argocd.as_ref();
    let namespace = argocd.map_or("argocd", |a| a.namespace.as_str());
    let project = argocd.map_or("default", |a| a.project.as_str());
    let mut elements = Vec::new();
    for c in clusters {
        let dest = c.spec.gitops.as_ref().and_then(|g| g.argocd.as_ref());
        // `server` given, else `name` given, else the API server URL, else the cluster's name
        // (as `argocd cluster add CONTEXT --name CLUSTER` registers it).
        let api = c.spec.api_server.as_ref().map(|a| a.url.clone());
        let (server, name) = match (
            dest.and_then(|d| d.server.clone()),
            dest.and_then(|d| d.name.clone()),
        ) {
            (Some(s), _) => (s, String::new()),
            (None, Some(n)) => (String::new(), n),
            (None, None) => match api {
                Some(url) => (url, String::new()),
                None => (String::new(), c.name.to_string()),
            },
        };
        for comp in &c.components {
            let mut e = json!({
                "cluster": c.name,
                "component": comp.name,
                "stage": comp.stage,
                "role": if c.primary { "primary" } else { "remote" },
                "network": c.network,
                "server": server,
                "destinationName": name,
                "path": comp.path,
                "namespace": comp.release.map_or(crate::istio::SYSTEM_NAMESPACE, |r| r.namespace.as_str()),
            });
            // Every element has every key: `missingkey=error` applies to `if` too.
            let release = comp.release;
            e["chart"] = json!(release.map_or("", |r| r.chart.as_str()));
            e["chartRepository"] = json!(release.map(argo_chart_repository).unwrap_or_default());
            e["chartVersion"] = json!(release.map_or("", |r| r.version.as_str()));
            e["release"] = json!(release.map_or("", |r| r.release.as_str()));
            e["include"] = json!(comp.include.as_deref().unwrap_or_default());
            elements.push(e);
        }
    }
    let roles: Vec<&str> = ["primary", "remote"]
        .into_iter()
        .filter(|r| clusters.iter().any(|c| c.primary == (*r == "primary")))
        .collect();
    let mut steps = Vec::new();
    for role in roles {
        for stage in STAGES {
            let present = clusters.iter().any(|c| {
                c.primary == (role == "primary") && c.components.iter().any(|x| x.stage == stage)
            });
            if present {
                steps.push(json!({ "matchExpressions": [
                    { "key": "meshc.io/role", "operator": "In", "values": [role] },
                    { "key": "meshc.io/stage", "operator": "In", "values": [stage] },
                ]}));
            }
        }
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": format!("meshc-{mesh}"),
            "namespace": namespace,
            "labels": { "app.kubernetes.io/managed-by": "meshc", "meshc.io/mesh": mesh },
        },
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{ "list": { "elements": elements } }],
            "strategy": { "type": "RollingSync", "rollingSync": { "steps": steps } },
            // An element that leaves the topology must not take the cluster's Istio with it.
            "syncPolicy": { "preserveResourcesOnDeletion": true },
            "template": {
                "metadata": {
                    "name": "{{ .cluster }}-{{ .component }}",
                    "labels": {
                        "app.kubernetes.io/managed-by": "meshc",
                        "meshc.io/mesh": mesh,
                        "meshc.io/cluster": "{{ .cluster }}",
                        "meshc.io/role": "{{ .role }}",
                        "meshc.io/stage": "{{ .stage }}",
                        "meshc.io/network": "{{ .network }}",
                    },
                },
                "spec": {
                    "project": project,
                    "destination": { "namespace": crate::istio::SYSTEM_NAMESPACE },
                    "syncPolicy": {
                        "automated": { "prune": true, "selfHeal": true },
                        "syncOptions": ["ServerSideApply=true", "RespectIgnoreDifferences=true"],
                    },
                    // istiod sets its validating webhook's failurePolicy and caBundle once
                    // it is ready: not drift to undo.
                    "ignoreDifferences": [{
                        "group": "admissionregistration.k8s.io",
                        "kind": "ValidatingWebhookConfiguration",
                        "jqPathExpressions": [".webhooks[]?.failurePolicy", ".webhooks[]?.clientConfig.caBundle"],
                    }],
                },
            },
            "templatePatch": template_patch(settings),
        },
    })
}

impl TreeEmitter for ArgoCd {
    fn emit(
        &self,
        cx: &TreeCx<'_>,
        out: &mut Vec<(Scope, String, Arc<[u8]>)>,
    ) -> Result<(), RenderError> {
        let Some(settings) = cx
            .model
            .topology
            .gitops
            .as_ref()
            .filter(|g| g.argocd.is_some())
        else {
            return Ok(());
        };
        let all = clusters(cx, &root(settings));
        let mut by_mesh: BTreeMap<&str, Vec<&Cluster<'_>>> = BTreeMap::new();
        for c in &all {
            by_mesh.entry(c.mesh).or_default().push(c);
        }
        // Primaries first within each mesh (the element order is the order Argo CD lists them).
        for list in by_mesh.values_mut() {
            list.sort_by_key(|c| !c.primary);
        }
        let mut files = Vec::new();
        for (mesh, list) in &by_mesh {
            let rel = format!("argocd/{mesh}.yaml");
            let header = format!(
                "Argo CD ApplicationSet for mesh {mesh}: every cluster's install, primaries first (RollingSync;\nprogressive syncs must be enabled in Argo CD). Written by meshc; change the topology instead."
            );
            let text =
                crate::render::data(&rel, &header, &[application_set(settings, mesh, list)])?;
            out.push((Scope::Tree, rel, Arc::from(text.into_bytes())));
            files.push(format!("{mesh}.yaml"));
        }
        out.push((
            Scope::Tree,
            "argocd/kustomization.yaml".to_string(),
            kustomization(
                &files,
                "the Argo CD objects: `kubectl apply -k` in Argo CD's cluster",
            ),
        ));
        Ok(())
    }
}

fn kustomization(resources: &[String], what: &str) -> Arc<[u8]> {
    let mut text = format!(
        "# {what}. Written by meshc.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
    );
    for r in resources {
        let _ = writeln!(text, "  - {r}");
    }
    Arc::from(text.into_bytes())
}

/// The Flux `HelmRepository` a mesh's charts come from: Istio's, shared, or the mesh's own.
fn helm_repository(mesh: &str, release: &HelmRelease) -> String {
    match release.repository {
        None => "meshc-istio".to_string(),
        Some(_) => format!("meshc-{mesh}-charts"),
    }
}

fn flux_sources(settings: &Settings, ns: &str, all: &[Cluster<'_>]) -> Vec<Value> {
    let root = root(settings);
    let git = |name: &str| {
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": { "name": name, "namespace": ns },
            "spec": {
                "url": settings.repository,
                "ref": { "branch": settings.revision },
                "interval": "5m",
            },
        })
    };
    let mut whole = git("meshc");
    // Only the output tree: nothing else in the repository reaches Flux.
    if root != "." {
        whole["spec"]["ignore"] = json!(keep_only(&[format!("{root}/")]));
    }
    let mut bootstrap = git("meshc-bootstrap");
    let kept: Vec<String> = all
        .iter()
        .flat_map(|c| BOOTSTRAP.map(|f| join(&root, &format!("{}/{f}", c.name))))
        .collect();
    bootstrap["spec"]["ignore"] = json!(keep_only(&kept));
    // The cluster directories without what other stages apply or what is not an object: Flux
    // then generates the kustomization from the rest (the bootstrap files must not belong to
    // two Kustomizations).
    let mut config = git("meshc-config");
    let mut ignore = if root == "." {
        String::new()
    } else {
        keep_only(&[format!("{root}/")])
    };
    let at = |rest: &str| format!("/{}\n", join(&root, rest));
    for rest in [
        "*/namespaces.yaml",
        "*/cacerts.yaml",
        "*/kustomization.yaml",
        "*/install/",
        "*/README.md",
        "flux/",
        "argocd/",
        "README.md",
    ] {
        ignore.push_str(&at(rest));
    }
    config["spec"]["ignore"] = json!(ignore);
    let mut out = vec![whole, bootstrap, config];
    let mut repositories: BTreeMap<String, Value> = BTreeMap::new();
    for c in all {
        for r in c.components.iter().filter_map(|x| x.release) {
            let name = helm_repository(c.mesh, r);
            let url = r
                .repository
                .clone()
                .unwrap_or_else(|| ISTIO_CHARTS.to_string());
            let mut spec = json!({ "url": url, "interval": "1h" });
            if url.starts_with("oci://") {
                spec["type"] = json!("oci");
            }
            repositories.entry(name.clone()).or_insert_with(|| {
                json!({
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "HelmRepository",
                    "metadata": { "name": name, "namespace": ns },
                    "spec": spec,
                })
            });
        }
    }
    out.extend(repositories.into_values());
    out
}

/// A `.sourceignore` (gitignore syntax) that keeps only `paths` (a directory ends with `/`).
/// gitignore cannot re-include a file whose parent directory is excluded, so every ancestor
/// is re-included and its other entries excluded, level by level: `/*`, `!/a/`, `/a/*`,
/// `!/a/b.yaml`.
fn keep_only(paths: &[String]) -> String {
    let mut ancestors: Vec<String> = Vec::new();
    for p in paths {
        let parts: Vec<&str> = p.trim_end_matches('/').split('/').collect();
        for depth in 1..parts.len() {
            let dir = parts[..depth].join("/");
            if !ancestors.contains(&dir) {
                ancestors.push(dir);
            }
        }
    }
    ancestors.sort_by_key(|a| (a.matches('/').count(), a.clone()));
    let mut text = "/*\n".to_string();
    for a in &ancestors {
        let _ = write!(text, "!/{a}/\n/{a}/*\n");
    }
    for p in paths {
        let _ = writeln!(text, "!/{p}");
    }
    text
}

/// The kubeconfig Secret (in Flux's namespace) Flux reaches a cluster with.
fn kube_config(c: &Cluster<'_>) -> Value {
    let cluster = c.name;
    let secret = c
        .spec
        .gitops
        .as_ref()
        .and_then(|g| g.flux.as_ref())
        .and_then(|f| f.kube_config_secret.as_ref());
    match secret {
        Some(s) => json!({ "secretRef": { "name": s.name, "key": s.key } }),
        None => json!({ "secretRef": { "name": format!("{cluster}-kubeconfig"), "key": "value" } }),
    }
}

fn flux_kustomizations(settings: &Settings, ns: &str, c: &Cluster<'_>) -> Vec<Value> {
    let root = root(settings);
    let k = |name: String,
             source: &str,
             path: String,
             depends: Vec<String>,
             remote: bool,
             prune: bool| {
        let mut spec = json!({
            "interval": INTERVAL,
            "sourceRef": { "kind": "GitRepository", "name": source },
            "path": format!("./{path}"),
            "prune": prune,
            "wait": true,
            "timeout": "10m",
        });
        if !depends.is_empty() {
            spec["dependsOn"] = json!(
                depends
                    .iter()
                    .map(|d| json!({ "name": d }))
                    .collect::<Vec<_>>()
            );
        }
        if remote {
            spec["kubeConfig"] = kube_config(c);
        }
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": { "app.kubernetes.io/managed-by": "meshc", "meshc.io/cluster": c.name, "meshc.io/mesh": c.mesh },
            },
            "spec": spec,
        })
    };
    let name = c.name;
    let mut istio_deps = vec![format!("{name}-bootstrap")];
    if let Some(p) = c.primary_name {
        istio_deps.push(format!("{p}-istio"));
    }
    let mut out = vec![
        // The CA must never be pruned by a change of the repository's layout.
        k(
            format!("{name}-bootstrap"),
            "meshc-bootstrap",
            join(&root, name),
            Vec::new(),
            true,
            false,
        ),
    ];
    let mut config_deps = vec![format!("{name}-istio")];
    if c.components.iter().any(|x| x.name == "sail") {
        out.push(k(
            format!("{name}-sail"),
            "meshc",
            join(&root, &format!("{name}/install/sail")),
            vec![format!("{name}-bootstrap")],
            true,
            true,
        ));
        istio_deps.push(format!("{name}-sail"));
        config_deps.push(format!("{name}-sail"));
    }
    out.push(k(
        format!("{name}-istio"),
        "meshc",
        join(&root, &format!("flux/{name}")),
        istio_deps,
        false,
        true,
    ));
    out.push(k(
        format!("{name}-config"),
        "meshc-config",
        join(&root, name),
        config_deps,
        true,
        true,
    ));
    out
}

fn helm_releases(ns: &str, c: &Cluster<'_>) -> Result<Vec<Value>, RenderError> {
    let license = c
        .mesh_spec
        .istio
        .license
        .as_ref()
        .and_then(|l| l.secret_ref.as_ref());
    let mut out = Vec::new();
    let mut previous: Option<String> = None;
    for comp in &c.components {
        let (Some(r), Some(bytes)) = (comp.release, comp.values) else {
            continue;
        };
        let values: Value = serde_saphyr::from_slice(bytes).map_err(|e| RenderError::Yaml {
            name: comp.path.clone(),
            reason: e.to_string(),
        })?;
        let name = format!("{}-{}", c.name, r.release);
        let mut spec = json!({
            "interval": INTERVAL,
            "releaseName": r.release,
            "targetNamespace": r.namespace,
            "storageNamespace": r.namespace,
            "kubeConfig": kube_config(c),
            "chart": { "spec": {
                "chart": r.chart,
                "version": r.version,
                "sourceRef": { "kind": "HelmRepository", "name": helm_repository(c.mesh, r), "namespace": ns },
            }},
            "install": { "remediation": { "retries": 3 } },
            "upgrade": { "remediation": { "retries": 3 } },
            "values": if values.is_null() { json!({}) } else { values },
        });
        if let Some(p) = &previous {
            spec["dependsOn"] = json!([{ "name": p }]);
        }
        if r.istiod
            && let Some(secret) = license
        {
            spec["valuesFrom"] = json!([{ "kind": "Secret", "name": secret.name, "valuesKey": secret.key, "targetPath": "license.value" }]);
        }
        out.push(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": { "app.kubernetes.io/managed-by": "meshc", "meshc.io/cluster": c.name, "meshc.io/mesh": c.mesh },
            },
            "spec": spec,
        }));
        previous = Some(name);
    }
    Ok(out)
}

impl TreeEmitter for Flux {
    fn emit(
        &self,
        cx: &TreeCx<'_>,
        out: &mut Vec<(Scope, String, Arc<[u8]>)>,
    ) -> Result<(), RenderError> {
        let Some(settings) = cx.model.topology.gitops.as_ref() else {
            return Ok(());
        };
        let Some(flux) = settings.flux.as_ref() else {
            return Ok(());
        };
        let ns = flux.namespace.as_str();
        let all = clusters(cx, &root(settings));
        let mut ordered: Vec<&Cluster<'_>> = all.iter().collect();
        ordered.sort_by_key(|c| !c.primary);
        let data = |rel: String,
                    header: &str,
                    objects: &[Value]|
         -> Result<(Scope, String, Arc<[u8]>), RenderError> {
            let text = crate::render::data(&rel, header, objects)?;
            Ok((Scope::Tree, rel, Arc::from(text.into_bytes())))
        };
        out.push(data("flux/sources.yaml".to_string(), "Flux sources: the Git repository (whole, and filtered to each cluster's namespaces and cacerts)\nand the chart repositories. Written by meshc; change the topology instead.", &flux_sources(settings, ns, &all))?);
        let mut kustomizations = Vec::new();
        for c in &ordered {
            kustomizations.extend(flux_kustomizations(settings, ns, c));
        }
        out.push(data("flux/clusters.yaml".to_string(), "Flux Kustomizations, per cluster: -bootstrap (namespaces, cacerts), -istio (its HelmReleases,\napplied here), -config (everything else); remotes wait for their primary. Written by meshc.", &kustomizations)?);
        for c in &ordered {
            let releases = helm_releases(ns, c)?;
            let rel = format!("flux/{}/releases.yaml", c.name);
            if releases.is_empty() {
                out.push(data(
                    rel,
                    &format!("No Helm release for cluster {}. Written by meshc.", c.name),
                    &[],
                )?);
            } else {
                out.push(data(rel, &format!("Cluster {}'s Helm releases, in install order, with the values of its install/helm/ files.\nApplied by the {}-istio Kustomization. Written by meshc.", c.name, c.name), &releases)?);
            }
            out.push((
                Scope::Tree,
                format!("flux/{}/kustomization.yaml", c.name),
                kustomization(
                    &["releases.yaml".to_string()],
                    &format!("cluster {}'s HelmReleases", c.name),
                ),
            ));
        }
        out.push((Scope::Tree, "flux/kustomization.yaml".to_string(), kustomization(&["sources.yaml".to_string(), "clusters.yaml".to_string()], "the Flux objects: apply with a Flux Kustomization (or `kubectl apply -k`) where Flux runs")));
        Ok(())
    }
}
