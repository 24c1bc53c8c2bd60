//! `install/`: the installer inputs, not applied by kustomize: Helm values for each chart
//! (`install/helm/`) and IstioOperator files (`install/istioctl/`), for the installers the
//! mesh names. Each input carries the command that installs it, which the README lists in
//! order (and the file repeats on its first line).
//!
//! Charts and releases follow Istio's Helm install docs: `istio/base`, `istio/cni` (where the
//! cluster runs it), `istio/istiod`, `istio/ztunnel` (ambient), `istio/gateway` for the
//! east-west gateway of a sidecar mesh and for each ingress gateway. A mesh that names its
//! chart repository (`istio.charts`; Solo's distribution must) installs the same chart names
//! from there: `oci://<repository>/<chart>`, or `<chart> --repo <repository>`.
//!
//! Solo's license (`istio.license`) goes to istiod on its install line, from the Secret or
//! file the topology names, so that the key itself is never part of the output.

use serde::Serialize;

use super::context::GatewayCx;
use super::{ClusterCx, ClusterEmitter, Files, HelmRelease, Produced, Role, With};
use crate::inputs::LicenseSource;
use crate::istio::SYSTEM_NAMESPACE;
use crate::plan::{EastWest, Flavour};
use crate::render::RenderError;
use crate::topology::{Charts, Installer};

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
        Installer::Sail => "the Sail Operator",
    }
}

/// Which of the Helm inputs to write: all of them, or only the gateways' (the Sail Operator
/// installs the control plane but no gateway, so a mesh installed with Sail alone still
/// installs its chart gateways with Helm).
#[derive(Clone, Copy, PartialEq, Eq)]
enum HelmInputs {
    All,
    Gateways,
}

impl ClusterEmitter for Install {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let installers = &cx.plan.installers;
        for &installer in installers {
            match installer {
                Installer::Helm => helm(cx, files, HelmInputs::All, Installer::Helm)?,
                Installer::Istioctl => istioctl(cx, files)?,
                Installer::Sail => {
                    super::sail::emit(cx, files)?;
                    if !installers.contains(&Installer::Helm) {
                        helm(cx, files, HelmInputs::Gateways, Installer::Sail)?;
                    }
                }
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
    (installer, release): (Installer, Option<HelmRelease>),
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
    // Helm values are one mapping whoever runs them; an IstioOperator is an object.
    let text = if template.starts_with("install/istioctl/") {
        cx.renderer.objects(template, &context)?
    } else {
        cx.renderer.values(template, &context)?
    };
    files.add(Produced {
        rel: rel.to_string(),
        bytes: text.into_bytes().into(),
        private: false,
        role: Role::Install {
            installer,
            command,
            release,
        },
        gateway_api: false,
    })
}

/// Values from the topology double-quoted for the shell (and `~1.30.0` must not be read as a
/// home directory). They are DNS labels, versions, paths and URLs the rules have checked, so
/// JSON's quoting is the shell's.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// How a Helm command names `chart`: `istio/<chart>` from Istio's repository (added with
/// `helm repo add istio`), `oci://<repository>/<chart>`, or `<chart> --repo <repository>`.
pub fn chart_ref(charts: Option<&Charts>, chart: &str) -> String {
    match charts.map(|c| c.repository.as_str()) {
        None => format!("istio/{chart}"),
        Some(repo) if repo.starts_with("oci://") => quote(&format!("{repo}/{chart}")),
        Some(repo) => format!("{chart} --repo {}", quote(repo)),
    }
}

/// The command that prints the license from its Secret, for `$(...)` on an install line.
fn read_secret(name: &str, key: &str) -> String {
    // jsonpath needs the dots of a key escaped; the key is quoted for the shell as a whole.
    let jsonpath = format!("{{.data.{}}}", key.replace('.', "\\."));
    format!(
        "kubectl get secret -n {SYSTEM_NAMESPACE} {} -o jsonpath={} | base64 -d",
        quote(name),
        quote(&jsonpath)
    )
}

/// The flag that hands the license to istiod's chart (`license.value`, Solo's istiod chart)
/// on a Helm or istioctl install line.
fn license_flag(license: &LicenseSource, installer: Installer) -> String {
    // A file goes to Helm as a file; every other case sets the value a shell command prints.
    let printed = match license {
        LicenseSource::File(path) if installer == Installer::Helm => {
            return format!("--set-file license.value={}", quote(path));
        }
        LicenseSource::File(path) => format!("cat {}", quote(path)),
        LicenseSource::Secret { name, key } => read_secret(name, key),
    };
    let set = match installer {
        Installer::Istioctl => "--set values.license.value",
        Installer::Helm | Installer::Sail => "--set-string license.value",
    };
    format!("{set}=\"$({printed})\"")
}

/// The Helm inputs, attributed to `installer` in the README (Sail, for the gateways of a mesh
/// installed with the Sail Operator alone).
fn helm(
    cx: &ClusterCx<'_>,
    files: &mut Files,
    which: HelmInputs,
    installer: Installer,
) -> Result<(), RenderError> {
    let c = cx.common;
    let p = cx.plan;
    let charts = cx.model.topology.meshes[p.mesh].istio.charts.as_ref();
    let license = cx.inputs.licenses.get(&p.mesh);
    let chart = |release: &str, chart: &str, namespace: &str, rel: &str| {
        let mut command = format!(
            "helm upgrade --install {release} {} -n {} --version {} -f {rel}",
            chart_ref(charts, chart),
            quote(namespace),
            quote(&c.chart_version)
        );
        if chart == "istiod"
            && let Some(license) = license
        {
            command.push(' ');
            command.push_str(&license_flag(license, Installer::Helm));
        }
        command
    };
    let ns = c.system_namespace;
    let mut inputs: Vec<(&str, &str, String)> = Vec::new();
    let istiod = quote(&c.istiod_release);
    if which == HelmInputs::All {
        inputs.push(("base", "istio-base", "base".to_string()));
        if p.cni {
            inputs.push(("cni", "istio-cni", "cni".to_string()));
        }
        inputs.push(("istiod", istiod.as_str(), "istiod".to_string()));
        if p.flavour != Flavour::Sidecar {
            inputs.push(("ztunnel", "ztunnel", "ztunnel".to_string()));
        }
    }
    if p.east_west == Some(EastWest::Chart) {
        inputs.push((
            "eastwestgateway",
            "istio-eastwestgateway",
            "gateway".to_string(),
        ));
    }
    let release = |name: &str, chart: &str, namespace: &str| HelmRelease {
        release: name.to_string(),
        chart: chart.to_string(),
        namespace: namespace.to_string(),
        version: c.chart_version.clone(),
        repository: charts.map(|c| c.repository.clone()),
        istiod: chart == "istiod",
    };
    for (name, release_name, chart_name) in inputs {
        let rel = format!("install/helm/{name}.values.yaml");
        let template = format!("install/helm/{name}.values.yaml.j2");
        let command = chart(release_name, &chart_name, ns, &rel);
        let unquoted = if chart_name == "istiod" {
            c.istiod_release.as_str()
        } else {
            release_name
        };
        let meta = release(unquoted, &chart_name, ns);
        input(
            cx,
            files,
            (installer, Some(meta)),
            &rel,
            &template,
            command,
            None,
        )?;
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
            (
                installer,
                Some(release(&gateway.name, "gateway", &gateway.namespace)),
            ),
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
        let mut command = format!("istioctl install -y -f {rel}");
        if name == "controlplane"
            && let Some(license) = cx.inputs.licenses.get(&cx.plan.mesh)
        {
            command.push(' ');
            command.push_str(&license_flag(license, Installer::Istioctl));
        }
        input(
            cx,
            files,
            (Installer::Istioctl, None),
            &rel,
            &format!("{rel}.j2"),
            command,
            None,
        )?;
    }
    Ok(())
}
