//! `README.md`: the cluster's install order in commands, from what the other emitters
//! produced: the CA first, the installer commands in order, then `kubectl apply -k`.

use std::sync::Arc;

use serde::Serialize;

use super::install::display;
use super::kustomization::resources;
use super::{ClusterCx, ClusterEmitter, Files, Produced, Role, With};
use crate::inputs::{LicenseSource, Token};
use crate::istio::{SYSTEM_NAMESPACE, external_key};
use crate::render::RenderError;
use crate::topology::{Charts, Distribution, Installer, Platform, SecretsMode};
use crate::validate::gateway_api_bundle;

#[derive(Debug)]
pub struct Readme;

/// Installing the Sail Operator: OpenShift Service Mesh 3 from OperatorHub on OpenShift, the
/// operator's Helm chart elsewhere (istio-ecosystem/sail-operator `chart/README.md`).
const SAIL_OPENSHIFT: &str = "running first: the Red Hat OpenShift Service Mesh 3 operator from OperatorHub, a `Subscription` to `servicemeshoperator3` in `openshift-operators`";
const SAIL_HELM: &str = "running first: `helm repo add sail-operator https://istio-ecosystem.github.io/sail-operator`, `helm install sail-operator sail-operator/sail-operator -n sail-operator --create-namespace`";

#[derive(Serialize)]
struct Cx<'a> {
    role: String,
    /// What the install lines need first (Helm's repository, the Sail Operator), in a few
    /// words after "Istio".
    install_setup: Option<String>,
    gateway_api_bundle: &'static str,
    /// `remote-kubeconfigs.yaml` was written: istiod mounts it, so it goes first.
    kubeconfigs_file: bool,
    install_commands: Vec<String>,
    resources: Vec<&'a str>,
    notes: Vec<String>,
    gateway_api: bool,
    /// The Gateway API CRD whose presence shows the bundle is installed: `tlsroutes` where
    /// istiod is exposed through TLSRoutes (a bundle without them has `gateways` too).
    gateway_api_crd: &'static str,
}

/// What Helm needs before the install lines: Istio's repository added under the name the
/// lines use; an OCI registry logged in to where it is private; nothing for `--repo`.
fn helm_setup(charts: Option<&Charts>) -> String {
    match charts.map(|c| c.repository.as_str()) {
        None => {
            "`helm repo add istio https://istio-release.storage.googleapis.com/charts`".to_string()
        }
        Some(repo) => match repo.strip_prefix("oci://") {
            Some(rest) => format!(
                "charts from `{repo}`; if the registry is private, `helm registry login {}` first",
                rest.split('/').next().unwrap_or(rest)
            ),
            None => format!("charts from `{repo}`"),
        },
    }
}

/// Notes on what the install lines need from the person running them.
fn install_notes(cx: &ClusterCx<'_>) -> Vec<String> {
    let t = &cx.model.topology;
    let p = cx.plan;
    let mesh = &t.meshes[p.mesh];
    let mut notes = Vec::new();
    match cx.inputs.licenses.get(&p.mesh) {
        Some(LicenseSource::Secret { name, key }) => notes.push(format!(
            "The istiod install line reads Solo's license from key `{key}` of Secret `{name}` in `{SYSTEM_NAMESPACE}`: create it there first (for example with External Secrets); it is never written here."
        )),
        Some(LicenseSource::File(path)) => notes.push(format!(
            "The istiod install line passes Solo's license from `{path}` (relative to this directory); keep that file out of git."
        )),
        None => {}
    }
    let c = cx.common;
    if p.watched
        && let Some(exec) = t.clusters[p.cluster].exec_plugin()
    {
        // The istiod chart's reader-clusterrole.yaml names it after the revision and namespace.
        let role = if c.revision.is_empty() {
            format!("istio-reader-clusterrole-{SYSTEM_NAMESPACE}")
        } else {
            format!("istio-reader-clusterrole-{}-{SYSTEM_NAMESPACE}", c.revision)
        };
        notes.push(format!(
            "The primaries watching this cluster authenticate with `{}` (an exec plugin) rather than a reader token: map the identity it yields to a group bound to the `{role}` ClusterRole here (an EKS access entry or `aws-auth`, a GKE IAM binding), which the istiod chart installs.",
            exec.command
        ));
    }
    if let Some(url) = &c.injection_url {
        let primary = p.served_by.map_or("", |s| t.clusters[s].name.as_str());
        notes.push(format!(
            "This remote's webhooks dial istiod through `{primary}`'s east-west gateway by name (`{url}`), so the name must resolve to that gateway's load balancer. The API server checks istiod's certificate for the name: `{primary}`'s istiod adds it to its serving certificate (`ISTIOD_CUSTOM_HOST`), so install `{primary}` with its values from this build before this cluster."
        ));
    }
    if let Some(name) = c.istiod_env.get("ISTIOD_CUSTOM_HOST") {
        notes.push(format!(
            "istiod signs its serving certificate for `{name}` too (`ISTIOD_CUSTOM_HOST`): the remotes' webhooks reach it by that name through the east-west gateway on port 15017."
        ));
    }
    if p.installers.contains(&Installer::Sail) && p.installers.contains(&Installer::Helm) {
        let gateways = c.ingress_gateways.len()
            + usize::from(p.east_west == Some(crate::plan::EastWest::Chart));
        if gateways > 0 {
            notes.push("The Sail Operator installs no gateway: with the Sail objects, still run the `istio/gateway` lines of the Helm install.".to_string());
        }
    }
    if mesh.istio.distribution == Distribution::Solo && p.installers.contains(&Installer::Istioctl)
    {
        notes.push(format!(
            "Run the istioctl lines with Solo's istioctl for {} (`istioctl` of the `-solo` build): upstream istioctl installs upstream's charts, and its strict check refuses Solo's `values.platforms`.",
            mesh.istio.charts.as_ref().and_then(|c| c.version.as_deref()).unwrap_or("this version")
        ));
    }
    notes
}

/// The install commands in order; a second installer is offered as an alternative.
fn commands(files: &Files) -> Vec<String> {
    let mut commands = Vec::new();
    let mut first: Option<Installer> = None;
    let mut current: Option<Installer> = None;
    for f in &files.produced {
        let Role::Install {
            installer, command, ..
        } = &f.role
        else {
            continue;
        };
        match first {
            None => first = Some(*installer),
            Some(first) if current != Some(*installer) => commands.push(format!(
                "# or, with {} instead of {}:",
                display(*installer),
                display(first)
            )),
            Some(_) => {}
        }
        current = Some(*installer);
        commands.push(command.clone());
    }
    commands
}

impl ClusterEmitter for Readme {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let t = &cx.model.topology;
        let p = cx.plan;
        let role = match (p.primary, p.serves_remotes, p.served_by) {
            (true, true, _) => "primary, serving remotes through its east-west gateway".to_string(),
            (true, false, _) => "primary".to_string(),
            (false, _, Some(s)) => format!("remote, served by `{}`", t.clusters[s].name),
            (false, _, None) => "remote".to_string(),
        };
        let mut notes = Vec::new();
        for &peer in &p.peers {
            if matches!(cx.inputs.tokens.get(&peer), None | Some(Token::Missing)) {
                notes.push(format!(
                    "`istio-remote-secret-{0}` is not included: no reader token for `{0}` (see the build's warning W080).",
                    t.clusters[peer].name
                ));
            }
        }
        let mesh = &t.meshes[p.mesh];
        notes.extend(install_notes(cx));
        if mesh.ca.secrets == SecretsMode::External {
            notes.push(format!(
                "`cacerts` comes from the secret store: upload this cluster's CA material under `{}` first.",
                external_key(&t.clusters[p.cluster].name)
            ));
        }
        let runs = |prefix: &str| {
            files.produced.iter().any(
                |f| matches!(&f.role, Role::Install { command, .. } if command.starts_with(prefix)),
            )
        };
        let openshift = t.clusters[p.cluster].platform == Platform::Openshift;
        let helm = runs("helm ")
            .then(|| format!("with Helm ({})", helm_setup(mesh.istio.charts.as_ref())));
        let sail = p.installers.contains(&Installer::Sail).then(|| {
            format!(
                "with the Sail Operator ({})",
                if openshift { SAIL_OPENSHIFT } else { SAIL_HELM }
            )
        });
        // The first installer's setup first: a Sail-only mesh still installs its chart
        // gateways with Helm.
        let install_setup = match (p.installers.first(), sail, helm) {
            (Some(Installer::Sail), Some(sail), Some(helm)) => {
                Some(format!("{sail}; its gateways {helm}"))
            }
            (_, Some(sail), Some(helm)) => Some(format!("{helm}, or {sail}")),
            (_, sail, helm) => sail.or(helm),
        };
        let extra = Cx {
            role,
            install_setup,
            gateway_api_bundle: gateway_api_bundle(mesh.istio.version.minor()),
            install_commands: commands(files),
            resources: resources(files),
            notes,
            gateway_api: files.produced.iter().any(|f| f.gateway_api),
            gateway_api_crd: if files
                .produced
                .iter()
                .any(|f| f.rel == "expose-istiod.yaml" && f.gateway_api)
            {
                "tlsroutes"
            } else {
                "gateways"
            },
            kubeconfigs_file: files
                .produced
                .iter()
                .any(|f| f.rel == "remote-kubeconfigs.yaml"),
        };
        let text = cx.renderer.text(
            "README.md.j2",
            &With {
                common: cx.common,
                extra,
            },
        )?;
        files.add(Produced {
            rel: "README.md".to_string(),
            bytes: Arc::from(text.into_bytes()),
            private: false,
            role: Role::Text,
            gateway_api: false,
        })
    }
}
