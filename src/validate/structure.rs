//! Structure: every mesh has a control plane, networks belong to one mesh, and what the file
//! names as Istio configuration is an Istio resource.
//!
//! [`run`] lists the rule groups in one place; each group is a function whose doc comment
//! names its codes and says why the rule exists.

use crate::diagnostic::{Code, Reporter};
use crate::model::Model;
use crate::path;

/// Istio's resource kinds and the API versions the 1.26–1.30 CRDs serve; and the Gateway API
/// kinds Istio implements (ambient waypoints and gateways are configured with them), with the
/// versions of the Gateway API bundle Istio 1.30 is tested with (v1.5.1).
const ISTIO_KINDS: &[(&str, &str, &[&str])] = &[
    (
        "networking.istio.io",
        "DestinationRule",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "networking.istio.io",
        "Gateway",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "networking.istio.io",
        "ServiceEntry",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "networking.istio.io",
        "Sidecar",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "networking.istio.io",
        "VirtualService",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "networking.istio.io",
        "WorkloadEntry",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    (
        "networking.istio.io",
        "WorkloadGroup",
        &["v1", "v1beta1", "v1alpha3"],
    ),
    ("networking.istio.io", "EnvoyFilter", &["v1alpha3"]),
    ("networking.istio.io", "ProxyConfig", &["v1beta1"]),
    (
        "security.istio.io",
        "AuthorizationPolicy",
        &["v1", "v1beta1"],
    ),
    (
        "security.istio.io",
        "PeerAuthentication",
        &["v1", "v1beta1"],
    ),
    (
        "security.istio.io",
        "RequestAuthentication",
        &["v1", "v1beta1"],
    ),
    ("telemetry.istio.io", "Telemetry", &["v1", "v1alpha1"]),
    ("extensions.istio.io", "WasmPlugin", &["v1alpha1"]),
    ("extensions.istio.io", "TrafficExtension", &["v1alpha1"]),
    (
        "gateway.networking.k8s.io",
        "GatewayClass",
        &["v1", "v1beta1"],
    ),
    ("gateway.networking.k8s.io", "Gateway", &["v1", "v1beta1"]),
    ("gateway.networking.k8s.io", "HTTPRoute", &["v1", "v1beta1"]),
    ("gateway.networking.k8s.io", "GRPCRoute", &["v1"]),
    ("gateway.networking.k8s.io", "TCPRoute", &["v1alpha2"]),
    (
        "gateway.networking.k8s.io",
        "TLSRoute",
        &["v1", "v1alpha3", "v1alpha2"],
    ),
    (
        "gateway.networking.k8s.io",
        "ReferenceGrant",
        &["v1", "v1beta1"],
    ),
    (
        "gateway.networking.k8s.io",
        "BackendTLSPolicy",
        &["v1", "v1alpha3"],
    ),
];

/// Kinds that newer Istio minors introduced: (kind, first minor).
const INTRODUCED: &[(&str, u32)] = &[("TrafficExtension", 30)];

/// Runs every structure rule group. The groups are independent; each names the code it
/// reports.
pub fn run(m: &Model, r: &mut Reporter<'_>) {
    generated_names(m, r);
    meshes_without_primary(m, r);
    networks(m, r);
    remote_secret_sources(m, r);
    istio_config_kinds(m, r);
}

/// E019: every mesh needs at least one cluster running istiod; remotes are served by one.
fn meshes_without_primary(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (mi, mesh) in t.meshes.iter().enumerate() {
        if m.meshes[mi].primaries.is_empty() && !m.meshes[mi].duplicate {
            let clusters = &m.meshes[mi].clusters;
            let d = r
                .report(
                    Code::MeshWithoutPrimary,
                    &path!("meshes", mi, "name"),
                    format!("mesh `{}` has no primary cluster", mesh.name),
                )
                .label("no cluster runs istiod for this mesh");
            if clusters.is_empty() {
                d.help("add a cluster with `controlPlane: primary` to this mesh");
            } else {
                d.help("set `controlPlane: primary` on at least one of its clusters: remotes need a primary's istiod");
            }
        }
    }
}

/// W024, E021: a network is one flat L3 domain of one mesh; one that no cluster uses is
/// usually a leftover or a typo in a cluster's `network:`.
fn networks(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (ni, net) in t.networks.iter().enumerate() {
        let users = &m.networks[ni].clusters;
        if m.networks[ni].duplicate {
            continue;
        }
        if users.is_empty() {
            r.report(
                Code::UnusedNetwork,
                &path!("networks", ni, "name"),
                format!("network `{}` is used by no cluster", net.name),
            )
            .label("unused")
            .help("remove it, or set `network:` on the clusters that are on it");
            continue;
        }
        let first_mesh = users.iter().find_map(|&c| m.clusters[c].mesh);
        if let Some(other) = users
            .iter()
            .find(|&&c| m.clusters[c].mesh.is_some_and(|x| Some(x) != first_mesh))
        {
            let one = users
                .iter()
                .find(|&&c| m.clusters[c].mesh == first_mesh)
                .copied()
                .unwrap_or_default();
            let (a, b) = (&t.clusters[one], &t.clusters[*other]);
            let span = r.span(&path!("clusters", one, "network"));
            let mesh_name = |c: usize| m.clusters[c].mesh.map_or("", |x| t.meshes[x].name.as_str());
            r.report(
                Code::NetworkAcrossMeshes,
                &path!("clusters", *other, "network"),
                format!("network `{}` is used by clusters of two meshes", net.name),
            )
            .label(format!("`{}` is in mesh `{}`", b.name, mesh_name(*other)))
            .also(
                span,
                format!("`{}` is in mesh `{}`", a.name, mesh_name(one)),
            )
            .help(
                "a network belongs to exactly one mesh: declare a separate network for each mesh",
            );
        }
    }
}

/// E023: a remote secret's credentials come from one place: a token file read at build time,
/// an ExternalSecret resolved in the cluster, or an exec plugin istiod runs.
fn remote_secret_sources(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (ci, c) in t.clusters.iter().enumerate() {
        let Some(rs) = &c.remote_secret else {
            continue;
        };
        let given: Vec<(&str, &str)> = [
            (rs.token_file.is_some(), "tokenFile", "token from a file"),
            (
                rs.external_secret.is_some(),
                "externalSecret",
                "token from a secret store",
            ),
            (rs.exec.is_some(), "exec", "credentials from an exec plugin"),
        ]
        .into_iter()
        .filter(|(set, _, _)| *set)
        .map(|(_, key, what)| (key, what))
        .collect();
        if let [(first, first_what), rest @ ..] = given.as_slice()
            && let Some((second, _)) = rest.first()
        {
            let first_span = r.span(&path!("clusters", ci, "remoteSecret", *first));
            r.report_key(Code::RemoteSecretConflict, &path!("clusters", ci, "remoteSecret", *second), format!("cluster `{}` gives its remote-secret credentials twice", c.name))
                .label("and also here")
                .also(first_span, *first_what)
                .help("keep one: `tokenFile` (read at build time), `externalSecret` (resolved in the cluster) or `exec` (a kubeconfig exec plugin istiod runs)");
        }
    }
}

/// E025: `istioConfig` holds resources Istio serves, at a version it serves, and only kinds
/// the mesh's Istio minor already has.
fn istio_config_kinds(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (i, res) in t.istio_config.iter().enumerate() {
        let (group, version) = res
            .api_version
            .split_once('/')
            .unwrap_or((res.api_version.as_str(), ""));
        let known = ISTIO_KINDS
            .iter()
            .find(|(g, k, _)| *g == group && *k == res.kind);
        let mesh_minor = m.istio_config[i]
            .mesh
            .map(|x| t.meshes[x].istio.version.minor());
        let introduced = INTRODUCED.iter().find(|(k, _)| *k == res.kind);
        match known {
            Some((_, kind, versions)) if versions.contains(&version) => {
                if let (Some(&(_, since)), Some(minor)) = (introduced, mesh_minor)
                    && minor < since
                {
                    r.report(
                        Code::NotIstioResource,
                        &path!("istioConfig", i, "kind"),
                        format!("{kind} needs Istio 1.{since}; the mesh targets 1.{minor}"),
                    )
                    .label("not in this Istio version")
                    .help(format!("raise the mesh's `istio.version` to \"1.{since}\" or later, or remove this resource"));
                }
            }
            Some((_, kind, versions)) => {
                r.report(
                    Code::NotIstioResource,
                    &path!("istioConfig", i, "apiVersion"),
                    format!("{kind} is not served as `{}`", res.api_version),
                )
                .label("unknown version")
                .help(format!(
                    "use one of: {}",
                    versions
                        .iter()
                        .map(|v| format!("{group}/{v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            None => {
                let kinds: Vec<&str> = ISTIO_KINDS.iter().map(|(_, k, _)| *k).collect();
                let elsewhere = ISTIO_KINDS.iter().find(|(_, k, _)| *k == res.kind);
                let help = match (elsewhere, crate::suggest::did_you_mean(&res.kind, kinds.iter().copied())) {
                    (Some((g, _, versions)), _) => format!("{} is in the `{g}` group: use `{g}/{}`", res.kind, versions[0]),
                    (None, Some(k)) => format!("did you mean `{k}`?"),
                    (None, None) => "istioConfig holds Istio resources (networking.istio.io, security.istio.io, telemetry.istio.io, extensions.istio.io) and the Gateway API resources Istio implements (gateway.networking.k8s.io)".to_string(),
                };
                r.report(
                    Code::NotIstioResource,
                    &path!("istioConfig", i, "kind"),
                    format!(
                        "`{}` `{}` is not an Istio resource",
                        res.api_version, res.kind
                    ),
                )
                .label("not an Istio kind")
                .help(help);
            }
        }
    }
}

/// E011, E010: names meshc itself writes must not be written twice: an `istioConfig` object that is also a
/// `destinationRules` entry or the PeerAuthentication `mtls` writes would become two files with
/// one path (and two objects with one name for kustomize), and an ingress gateway named like
/// one of meshc's own Helm releases would take its values file.
fn generated_names(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (i, c) in t.istio_config.iter().enumerate() {
        let Some(mi) = m.istio_config[i].mesh else {
            continue;
        };
        let group = c.api_version.split('/').next().unwrap_or_default();
        let (ns, name) = (&c.metadata.namespace, &c.metadata.name);
        if group == "networking.istio.io" && c.kind == "DestinationRule" {
            let twin = t.destination_rules.iter().enumerate().find(|(d, dr)| {
                m.destination_rules[*d].mesh == Some(mi)
                    && m.destination_rules[*d].namespace.as_deref() == Some(ns.as_str())
                    && dr.name == *name
            });
            if let Some((d, _)) = twin {
                let at = r.span(&path!("destinationRules", d, "name"));
                r.report(
                    Code::DuplicateName,
                    &path!("istioConfig", i, "metadata", "name"),
                    format!("DestinationRule `{ns}/{name}` is also declared under `destinationRules`"),
                )
                .label("a second DestinationRule with this name")
                .also(at, "declared here")
                .help("keep one: `destinationRules` entries are checked against the topology's services and localities");
            }
        }
        if group == "security.istio.io"
            && c.kind == "PeerAuthentication"
            && ns == crate::istio::SYSTEM_NAMESPACE
            && name == "default"
            && t.meshes[mi].mtls.is_some()
        {
            let at = r.span(&path!("meshes", mi, "mtls"));
            r.report(
                Code::DuplicateName,
                &path!("istioConfig", i, "metadata", "name"),
                format!(
                    "PeerAuthentication `{ns}/default` is what mesh `{}`'s `mtls` writes",
                    t.meshes[mi].name
                ),
            )
            .label("a second mesh-wide PeerAuthentication")
            .also(at, "writes istio-system/default")
            .help("remove one: either set `mtls` on the mesh or write the PeerAuthentication here");
        }
    }
    for (g, gw) in t.ingress_gateways.iter().enumerate() {
        if RESERVED_GATEWAY_NAMES.contains(&gw.name.as_str()) || gw.name.starts_with("istiod-") {
            r.report(
                Code::InvalidName,
                &path!("ingressGateways", g, "name"),
                format!(
                    "`{}` is the name of one of meshc's own Helm releases or values files",
                    gw.name
                ),
            )
            .label("reserved")
            .help("name the gateway after what it serves, e.g. `shop-ingressgateway`");
        }
    }
}

/// Helm release and values-file names meshc writes for the control plane and the east-west
/// gateway (`install/helm/<name>.values.yaml`).
const RESERVED_GATEWAY_NAMES: &[&str] = &[
    "base",
    "cni",
    "istiod",
    "ztunnel",
    "eastwestgateway",
    "istio-base",
    "istio-cni",
    "istio-eastwestgateway",
];
