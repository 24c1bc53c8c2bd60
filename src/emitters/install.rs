//! `install/`: the installer inputs, not applied by kustomize: Helm values for each chart
//! (`install/helm/`) and IstioOperator files (`install/istioctl/`), for the installers the
//! mesh names. Each input carries the command that installs it, which the README lists in
//! order (and the file repeats on its first line).
//!
//! Charts and releases follow Istio's Helm install docs: `istio/base`, `istio/cni` (where the
//! cluster runs it), `istio/istiod`, `istio/ztunnel` (ambient), `istio/gateway` for the
//! east-west gateway of a sidecar mesh and for each ingress gateway.

use serde::Serialize;

use super::context::GatewayCx;
use super::{ClusterCx, ClusterEmitter, Files, Produced, Role, With};
use crate::plan::{EastWest, Flavour};
use crate::render::RenderError;
use crate::topology::Installer;

#[derive(Debug)]
pub struct Install;

#[derive(Serialize)]
struct Cx<'a> {
    command: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<&'a GatewayCx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    values_file: Option<&'a str>,
}

/// How an installer is named in the README's "or, with ... instead of ..." line.
pub fn display(installer: Installer) -> &'static str {
    match installer {
        Installer::Helm => "Helm",
        Installer::Istioctl => "istioctl",
    }
}

impl ClusterEmitter for Install {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        for &installer in &cx.plan.installers {
            match installer {
                Installer::Helm => helm(cx, files)?,
                Installer::Istioctl => istioctl(cx, files)?,
            }
        }
        Ok(())
    }
}

/// One installer input: an IstioOperator (an object, checked as one) or Helm values (one
/// mapping).
fn input(
    cx: &ClusterCx<'_>,
    files: &mut Files,
    installer: Installer,
    rel: &str,
    template: &str,
    command: String,
    gateway: Option<&GatewayCx>,
) -> Result<(), RenderError> {
    let context = With {
        common: cx.common,
        extra: Cx {
            command: &command,
            gateway,
            values_file: gateway.map(|_| rel),
        },
    };
    let text = match installer {
        Installer::Istioctl => cx.renderer.objects(template, &context)?,
        Installer::Helm => cx.renderer.values(template, &context)?,
    };
    files.add(Produced {
        rel: rel.to_string(),
        bytes: text.into_bytes().into(),
        private: false,
        role: Role::Install { installer, command },
        gateway_api: false,
    })
}

fn helm(cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
    let c = cx.common;
    let p = cx.plan;
    // Values from the topology are double-quoted for the shell (and `~1.30.0` must not be
    // read as a home directory); they are DNS labels and versions, so JSON's quoting is the
    // shell's.
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let chart = |release: &str, chart: &str, namespace: &str, rel: &str| {
        format!(
            "helm upgrade --install {release} istio/{chart} -n {} --version {} -f {rel}",
            quote(namespace),
            quote(&c.chart_version)
        )
    };
    let ns = c.system_namespace;
    let mut inputs: Vec<(&str, &str, String)> = Vec::new();
    inputs.push(("base", "istio-base", "base".to_string()));
    if p.cni {
        inputs.push(("cni", "istio-cni", "cni".to_string()));
    }
    let istiod = quote(&c.istiod_release);
    inputs.push(("istiod", istiod.as_str(), "istiod".to_string()));
    if p.flavour != Flavour::Sidecar {
        inputs.push(("ztunnel", "ztunnel", "ztunnel".to_string()));
    }
    if p.east_west == Some(EastWest::Chart) {
        inputs.push((
            "eastwestgateway",
            "istio-eastwestgateway",
            "gateway".to_string(),
        ));
    }
    for (name, release, chart_name) in inputs {
        let rel = format!("install/helm/{name}.values.yaml");
        let template = format!("install/helm/{name}.values.yaml.j2");
        let command = chart(release, &chart_name, ns, &rel);
        input(cx, files, Installer::Helm, &rel, &template, command, None)?;
    }
    for gateway in &c.ingress_gateways {
        let rel = format!("install/helm/{}.values.yaml", gateway.name);
        let command = chart(
            &quote(&gateway.name),
            "gateway",
            &gateway.namespace,
            &quote(&rel),
        );
        input(
            cx,
            files,
            Installer::Helm,
            &rel,
            "install/helm/ingressgateway.values.yaml.j2",
            command,
            Some(gateway),
        )?;
    }
    Ok(())
}

fn istioctl(cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
    let mut inputs = vec!["controlplane"];
    if cx.plan.east_west == Some(EastWest::Chart) {
        inputs.push("eastwest");
    }
    for name in inputs {
        let rel = format!("install/istioctl/{name}.yaml");
        let command = format!("istioctl install -y -f {rel}");
        input(
            cx,
            files,
            Installer::Istioctl,
            &rel,
            &format!("{rel}.j2"),
            command,
            None,
        )?;
    }
    Ok(())
}
