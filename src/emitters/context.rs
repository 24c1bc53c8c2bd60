//! The context every template of a cluster shares, as a typed struct: a renamed or missing key
//! fails to compile here instead of rendering as an error (templates are strict about
//! undefined names) in one cluster shape nobody tested.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Serialize;

use crate::istio::{SYSTEM_NAMESPACE, WEBHOOK_PORT};
use crate::model::Model;
use crate::plan::{ClusterPlan, Flavour};
use crate::topology::{Platform, ServiceType};

/// The values every template of one cluster may use.
#[derive(Debug, Clone, Serialize)]
pub struct Common {
    pub system_namespace: &'static str,
    pub cluster: String,
    pub mesh: String,
    pub network: String,
    pub trust_domain: String,
    /// The other trust domains of the mesh (`meshConfig.trustDomainAliases`).
    pub trust_domain_aliases: Vec<String>,
    pub revision: String,
    pub version: String,
    pub chart_version: String,
    pub platform: Option<&'static str>,
    pub primary: bool,
    pub remote: bool,
    pub serves_remotes: bool,
    pub multi_network: bool,
    pub ambient: bool,
    pub remote_pilot_address: Option<String>,
    pub injection_path: String,
    /// A remote served through a DNS name: its webhooks dial the east-west gateway's 15017
    /// directly (`istiodRemote.injectionURL`, `base.validationURL`), since the chart's
    /// ExternalName Service would send them to port 443, which the gateway does not serve.
    pub injection_url: Option<String>,
    pub validation_url: Option<String>,
    /// `global.enableReaderRBAC` (Istio 1.30+): `false` on a cluster no other control plane
    /// reads, so that the reader ServiceAccount and ClusterRole are not installed for nothing.
    pub enable_reader_rbac: Option<bool>,
    /// The gateway chart takes a network gateway's ports from `networkGatewayPorts` (1.30+),
    /// whose defaults are the east-west ports, and ignores `service.ports`.
    pub network_gateway_ports: bool,
    /// `istio.kubeconfigSecret` on a primary that watches other clusters: the Secret istiod
    /// mounts at `kubeconfig_dir` and reads through `PILOT_MULTICLUSTER_KUBECONFIG_PATH`.
    pub kubeconfig_secret: Option<String>,
    pub kubeconfig_dir: &'static str,
    pub dns_capture: bool,
    /// `meshConfig.defaultConfig.proxyMetadata`: DNS capture, and during a root rotation the
    /// agent's trust-bundle updates over xDS (`PROXY_CONFIG_XDS_AGENT`).
    pub proxy_metadata: BTreeMap<&'static str, &'static str>,
    pub profile: Option<&'static str>,
    pub iop_profile: &'static str,
    pub istiod_env: BTreeMap<&'static str, String>,
    pub iop_pilot_env: BTreeMap<&'static str, String>,
    pub istiod_release: String,
    pub east_west: EastWestCx,
    pub disable_default_ingress: bool,
    pub cni: bool,
    pub ingress_gateways: Vec<GatewayCx>,
    pub peering: bool,
    pub peering_enabled: bool,
    pub ztunnel_env: BTreeMap<&'static str, &'static str>,
    pub ztunnel_network: Option<String>,
    pub cni_dns_capture: bool,
    /// These values as template values, made on first use.
    #[serde(skip)]
    value: OnceLock<minijinja::Value>,
}

/// The cluster's east-west gateway Service.
#[derive(Debug, Clone, Serialize)]
pub struct EastWestCx {
    pub service_type: &'static str,
    pub annotations: BTreeMap<String, String>,
    pub address: Option<String>,
}

/// A dedicated ingress gateway (`ingressGateways`).
#[derive(Debug, Clone, Serialize)]
pub struct GatewayCx {
    pub name: String,
    pub namespace: String,
    /// The `istio:` label value its Gateways select (the name without `istio-`).
    pub istio_label: String,
    pub service_type: &'static str,
    pub annotations: BTreeMap<String, String>,
}

/// A Service type as Kubernetes spells it.
pub fn service_type(s: ServiceType) -> &'static str {
    match s {
        ServiceType::LoadBalancer => "LoadBalancer",
        ServiceType::NodePort => "NodePort",
    }
}

/// Istio's platform profile for a cluster (`global.platform`), where the charts have one.
fn platform(p: Platform) -> Option<&'static str> {
    match p {
        Platform::Openshift => Some("openshift"),
        Platform::Gke => Some("gke"),
        Platform::Generic | Platform::Eks | Platform::Aks => None,
    }
}

/// Where istiod reads the watched clusters' kubeconfig files from (`istio.kubeconfigSecret`).
const KUBECONFIG_DIR: &str = "/etc/istio/multicluster-kubeconfigs";

impl Common {
    /// The values as template values: made once per cluster and shared by every template
    /// rendered for it (a cluster renders a dozen). A `Common` is not changed once made.
    pub fn value(&self) -> minijinja::Value {
        self.value
            .get_or_init(|| minijinja::Value::from(minijinja::value::Serde(self)))
            .clone()
    }

    /// `multiroot`: the mesh's root is being rotated, so istiod must take a new root bundle
    /// without a restart (`ISTIO_MULTIROOT_MESH`, see `pki/rotation.rs`).
    pub fn new(model: &Model, p: &ClusterPlan, multiroot: bool) -> Common {
        let t = &model.topology;
        let mesh = &t.meshes[p.mesh];
        let cluster = &t.clusters[p.cluster];
        let trust_domain = model.trust_domain(p.cluster).to_string();
        let mut aliases: Vec<String> = model.meshes[p.mesh]
            .clusters
            .iter()
            .map(|&c| model.trust_domain(c).to_string())
            .filter(|d| *d != trust_domain)
            .collect();
        aliases.sort();
        aliases.dedup();
        let ambient = p.flavour.is_ambient();
        let revision = mesh.istio.revision.clone();
        let remote = !p.primary;
        let remote_pilot_address = p
            .served_by
            .map(|s| &t.clusters[s])
            .and_then(|s| s.east_west_gateway.as_ref())
            .and_then(|g| g.address.clone());
        // A DNS-named east-west gateway (Istio's remote-istiod-service.yaml makes an
        // ExternalName Service of it, whose port 443 the gateway does not serve).
        let dns_pilot = p.served_by.and_then(|s| t.clusters[s].east_west_dns_name());
        // Another cluster of the mesh has another trust domain: listed as an alias everywhere,
        // and on Solo's ambient distribution also not validated by istiod and ztunnel (its
        // docs).
        let distinct_trust_domains = !aliases.is_empty();
        let kubeconfig_secret = mesh
            .istio
            .kubeconfig_secret
            .clone()
            .filter(|_| !p.peers.is_empty());
        let (mut istiod_env, ztunnel_env) = environments(model, p, distinct_trust_domains);
        let multiroot = multiroot && p.primary;
        if multiroot {
            istiod_env.insert(crate::pki::MULTIROOT_ENV, "true".to_string());
        }
        let dns_capture = mesh.dns.capture && !ambient;
        let mut proxy_metadata = BTreeMap::new();
        if dns_capture {
            proxy_metadata.insert("ISTIO_META_DNS_CAPTURE", "true");
        }
        if multiroot {
            proxy_metadata.insert(crate::pki::XDS_AGENT_METADATA, "true");
        }
        let mut iop_pilot_env = istiod_env.clone();
        if p.serves_remotes {
            iop_pilot_env.insert("EXTERNAL_ISTIOD", "true".to_string());
        }
        let east_west = cluster.east_west_gateway.as_ref();
        let ingress_gateways = ingress_gateways(model, p);
        let profile = if remote {
            Some("remote")
        } else if ambient {
            Some("ambient")
        } else {
            None
        };
        Common {
            system_namespace: SYSTEM_NAMESPACE,
            cluster: cluster.name.clone(),
            mesh: mesh.name.clone(),
            network: p.network.clone(),
            trust_domain,
            trust_domain_aliases: aliases,
            istiod_release: if revision.is_empty() {
                "istiod".to_string()
            } else {
                format!("istiod-{revision}")
            },
            revision,
            version: mesh.istio.version.to_string(),
            chart_version: mesh
                .istio
                .charts
                .as_ref()
                .and_then(|c| c.version.clone())
                .unwrap_or_else(|| format!("~{}.0", mesh.istio.version)),
            platform: platform(cluster.platform),
            primary: p.primary,
            remote,
            serves_remotes: p.serves_remotes,
            multi_network: p.multi_network,
            ambient,
            remote_pilot_address,
            injection_path: format!("/inject/cluster/{}/net/{}", cluster.name, p.network),
            injection_url: dns_pilot.map(|a| {
                format!(
                    "https://{a}:{WEBHOOK_PORT}/inject/cluster/{}/net/{}",
                    cluster.name, p.network
                )
            }),
            validation_url: dns_pilot.map(|a| format!("https://{a}:{WEBHOOK_PORT}/validate")),
            enable_reader_rbac: (mesh.istio.version.minor() >= 30 && !p.watched).then_some(false),
            network_gateway_ports: mesh.istio.version.minor() >= 30,
            kubeconfig_secret,
            kubeconfig_dir: KUBECONFIG_DIR,
            dns_capture,
            proxy_metadata,
            profile,
            iop_profile: profile.unwrap_or("default"),
            istiod_env,
            iop_pilot_env,
            east_west: EastWestCx {
                service_type: service_type(east_west.map(|g| g.service_type).unwrap_or_default()),
                annotations: east_west.map(|g| g.annotations.clone()).unwrap_or_default(),
                address: east_west.and_then(|g| g.address.clone()),
            },
            disable_default_ingress: !ingress_gateways
                .iter()
                .any(|g| g.name == "istio-ingressgateway"),
            cni: p.cni,
            ingress_gateways,
            peering: p.peering,
            peering_enabled: p.peering && p.primary,
            ztunnel_env,
            ztunnel_network: p.peering.then(|| p.network.clone()),
            cni_dns_capture: p.peering,
            value: OnceLock::new(),
        }
    }
}

/// istiod's and ztunnel's environment for the cluster, besides the root rotation's.
fn environments(
    model: &Model,
    p: &ClusterPlan,
    distinct_trust_domains: bool,
) -> (
    BTreeMap<&'static str, String>,
    BTreeMap<&'static str, &'static str>,
) {
    let t = &model.topology;
    let cluster = &t.clusters[p.cluster];
    let mut istiod_env = BTreeMap::new();
    if p.flavour.is_ambient() && p.multi_network {
        istiod_env.insert("AMBIENT_ENABLE_MULTI_NETWORK", "true".to_string());
    }
    // istiod's settings for Solo's peering, on the clusters that run istiod.
    if p.peering && p.primary {
        istiod_env.insert("PILOT_ENABLE_IP_AUTOALLOCATE", "true".to_string());
    }
    let mut ztunnel_env = BTreeMap::new();
    if p.flavour == Flavour::SoloAmbient && distinct_trust_domains {
        if p.primary {
            istiod_env.insert("PILOT_SKIP_VALIDATE_TRUST_DOMAIN", "true".to_string());
        }
        ztunnel_env.insert("SKIP_VALIDATE_TRUST_DOMAIN", "true");
    }
    // Watched clusters reached with an exec plugin: istiod refuses one in a kubeconfig
    // unless told (istio/istio 1.30.3 pkg/kube/util.go, NewUntrustedRestConfig).
    if p.peers
        .iter()
        .any(|&c| t.clusters[c].exec_plugin().is_some())
    {
        istiod_env.insert(
            "PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS",
            "exec".to_string(),
        );
    }
    if t.meshes[p.mesh].istio.kubeconfig_secret.is_some() && !p.peers.is_empty() {
        istiod_env.insert(
            "PILOT_MULTICLUSTER_KUBECONFIG_PATH",
            KUBECONFIG_DIR.to_string(),
        );
    }
    // istiod signs its serving certificate for the name remotes' webhooks dial.
    if p.serves_remotes
        && let Some(name) = cluster.east_west_dns_name()
    {
        istiod_env.insert("ISTIOD_CUSTOM_HOST", name.to_string());
    }
    (istiod_env, ztunnel_env)
}

/// The cluster's dedicated ingress gateways, as the templates see them.
fn ingress_gateways(model: &Model, p: &ClusterPlan) -> Vec<GatewayCx> {
    p.ingress_gateways
        .iter()
        .map(|&g| {
            let gw = &model.topology.ingress_gateways[g];
            GatewayCx {
                name: gw.name.clone(),
                namespace: gw.namespace.clone(),
                istio_label: gw
                    .name
                    .strip_prefix("istio-")
                    .unwrap_or(&gw.name)
                    .to_string(),
                service_type: service_type(gw.service_type),
                annotations: gw.annotations.clone(),
            }
        })
        .collect()
}
