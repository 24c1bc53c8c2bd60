//! The topology file format (`meshc/v1alpha1`), as serde types.
//!
//! These types are the input contract (docs/topology.md, ../schema/topology.schema.json). The
//! JSON Schema is generated from them with schemars, so a field added here is a field in the
//! schema, and a test fails until the checked-in schema is regenerated.
//!
//! Unknown fields are refused by the schema (`additionalProperties: false`) rather than by
//! serde: the schema stage reports every unknown field with a "did you mean", and the typed
//! model can still be built so the semantic rules run in the same pass.
//!
//! The verbatim Istio parts (`trafficPolicy`, `subsets[].trafficPolicy`, `istioConfig[].spec`)
//! are kept as JSON values: meshc passes them through, and checks them with its own rules
//! (locality load balancing) and, on request, against Istio's CRD schemas.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A JSON object passed through verbatim.
pub type Object = serde_json::Map<String, serde_json::Value>;

/// One topology file: every mesh, network, locality, cluster, service and traffic rule.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, title = "meshc topology")]
pub struct Topology {
    /// Always `meshc/v1alpha1`.
    pub api_version: ApiVersion,
    /// Always `Topology`.
    pub kind: Kind,
    /// The meshes: one root of trust, mesh ID, Istio version and distribution each.
    #[schemars(length(min = 1))]
    pub meshes: Vec<Mesh>,
    /// Flat L3 networks. Clusters on one network reach each other's pods directly; clusters on
    /// different networks talk through east-west gateways.
    #[schemars(length(min = 1))]
    pub networks: Vec<Network>,
    /// The locality catalogue (regions and their zones). When omitted, it is derived from the
    /// clusters' `region` and `zones`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localities: Option<Vec<Locality>>,
    /// The Kubernetes clusters.
    #[schemars(length(min = 1))]
    pub clusters: Vec<Cluster>,
    /// Application services; their Services and namespaces (labelled for the data plane) are
    /// written to every cluster of the mesh, or, for a service with `callers`, to the clusters
    /// that run or call it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// Istio DestinationRules, placed on the mesh's config clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_rules: Vec<DestinationRule>,
    /// Any other Istio resource, verbatim, placed on the mesh's config clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub istio_config: Vec<IstioResource>,
    /// Dedicated ingress gateways.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress_gateways: Vec<IngressGateway>,
    /// How a GitOps controller applies the output: writes `out/argocd/` (Argo CD) and/or
    /// `out/flux/` (Flux) next to the cluster directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<Gitops>,
}

/// The Git repository that holds the output, and the GitOps controllers that apply it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Gitops {
    /// The repository's URL, as the controllers clone it (`https://` or `ssh://`, or
    /// `git@host:path`).
    pub repository: String,
    /// The branch the controllers follow.
    #[serde(default = "default_revision")]
    pub revision: String,
    /// Where the build output (`meshc build -o`) lives inside the repository, relative to its
    /// root.
    #[serde(default = "default_gitops_path")]
    pub path: String,
    /// Write Argo CD `ApplicationSet`s to `out/argocd/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoCd>,
    /// Write Flux sources, `Kustomization`s and `HelmRelease`s to `out/flux/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flux: Option<Flux>,
}

fn default_revision() -> String {
    "main".to_string()
}

fn default_gitops_path() -> String {
    "out".to_string()
}

/// Where Argo CD runs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ArgoCd {
    /// The namespace Argo CD watches for `ApplicationSet`s.
    #[serde(default = "default_argocd_namespace")]
    pub namespace: String,
    /// The Argo CD project of the generated Applications.
    #[serde(default = "default_argocd_project")]
    pub project: String,
}

fn default_argocd_namespace() -> String {
    "argocd".to_string()
}

fn default_argocd_project() -> String {
    "default".to_string()
}

/// Where Flux runs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Flux {
    /// The namespace of Flux's controllers and of the generated objects.
    #[serde(default = "default_flux_namespace")]
    pub namespace: String,
}

fn default_flux_namespace() -> String {
    "flux-system".to_string()
}

/// How the GitOps controllers reach one cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ClusterGitops {
    /// Argo CD's destination: the cluster's API server URL as registered in Argo CD
    /// (`server`; default `apiServer.url`), or the name it is registered under (`name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoDestination>,
    /// Flux's access to the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flux: Option<FluxAccess>,
}

/// Exactly one of `server` and `name`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ArgoDestination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// How Flux reaches a cluster.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct FluxAccess {
    /// The Secret (in Flux's namespace) holding the cluster's kubeconfig; default
    /// `{ name: <cluster>-kubeconfig, key: value }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config_secret: Option<SecretKeyRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "meshc/v1alpha1")]
    V1Alpha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Kind {
    Topology,
}

/// A mesh: one root of trust, one meshID, one Istio target.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Mesh {
    /// DNS-1123 label; becomes `global.meshID`.
    pub name: String,
    /// SPIFFE trust domain (`meshConfig.trustDomain`).
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    #[serde(default)]
    pub istio: IstioSettings,
    /// `sidecar` or `ambient`.
    #[serde(default)]
    pub dataplane: Dataplane,
    /// When set, a mesh-wide PeerAuthentication in the system namespace (`STRICT` or
    /// `PERMISSIVE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsMode>,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default)]
    pub ca: Ca,
}

fn default_trust_domain() -> String {
    "cluster.local".to_string()
}

/// Which Istio the mesh runs and how it is installed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct IstioSettings {
    /// Target minor version, quoted (`"1.30"`): 1.26 to 1.31.
    #[serde(default)]
    pub version: IstioVersion,
    /// Optional control-plane revision (`istiod-<rev>`, `istio.io/rev` labels); empty for none.
    #[serde(default)]
    pub revision: String,
    /// `upstream` (istio.io) or `solo` (Solo's enterprise build: peering, `istio-eastwest`
    /// class, `solo.io/service-scope`).
    #[serde(default)]
    pub distribution: Distribution,
    /// Which install inputs to write: `helm`, `istioctl` (IstioOperator), `sail` (the Sail
    /// Operator's `Istio`, `IstioCNI`, `ZTunnel` objects), or several.
    #[serde(default = "default_installers")]
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub installers: Vec<Installer>,
    /// Where the install charts come from (`helm upgrade --install <repository>/<chart>
    /// --version <version>`). Required for `distribution: solo`, whose charts live in a
    /// per-customer OCI repository with `-solo` versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charts: Option<Charts>,
    /// The license of Solo's distribution, passed to its istiod chart at install time and never
    /// written into the output. `distribution: solo` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<License>,
    /// Istio 1.30+: give each primary's istiod the kubeconfigs of the clusters it watches as
    /// files of this Secret (one `<cluster>.yaml` each, mounted and named by
    /// `PILOT_MULTICLUSTER_KUBECONFIG_PATH`) instead of `istio/multiCluster` remote secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret: Option<String>,
}

/// A Helm chart repository and the chart version to install from it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Charts {
    /// `oci://host/path` (each chart is `<repository>/<chart>`) or an `https://` chart
    /// repository (added with `helm repo add`).
    pub repository: String,
    /// The chart version or constraint; upstream's default is `~<minor>.0`. Solo's versions
    /// carry a `-solo` suffix, which a `~` constraint never matches: name the exact version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Where the install takes the Solo license from: exactly one of `secretRef` and `file`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct License {
    /// A Secret in the system namespace of each cluster, made out of band (for example by
    /// External Secrets); the install command reads it from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// A file holding the license key (relative to the topology file); the install command
    /// passes it with `--set-file`, so it stays on the machine that installs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// A key of a Kubernetes Secret.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name (DNS-1123 subdomain).
    pub name: String,
    /// The key within the Secret.
    pub key: String,
}

impl Default for IstioSettings {
    fn default() -> Self {
        IstioSettings {
            version: IstioVersion::default(),
            revision: String::new(),
            distribution: Distribution::default(),
            installers: default_installers(),
            charts: None,
            license: None,
            kubeconfig_secret: None,
        }
    }
}

fn default_installers() -> Vec<Installer> {
    vec![Installer::Helm]
}

/// The supported Istio minor versions.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum IstioVersion {
    #[serde(rename = "1.26")]
    V1_26,
    #[serde(rename = "1.27")]
    V1_27,
    #[serde(rename = "1.28")]
    V1_28,
    #[serde(rename = "1.29")]
    V1_29,
    #[default]
    #[serde(rename = "1.30")]
    V1_30,
    #[serde(rename = "1.31")]
    V1_31,
}

impl IstioVersion {
    /// The minor number (26 for 1.26).
    pub fn minor(self) -> u32 {
        match self {
            IstioVersion::V1_26 => 26,
            IstioVersion::V1_27 => 27,
            IstioVersion::V1_28 => 28,
            IstioVersion::V1_29 => 29,
            IstioVersion::V1_30 => 30,
            IstioVersion::V1_31 => 31,
        }
    }
}

impl std::fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "1.{}", self.minor())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    #[default]
    Upstream,
    Solo,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Installer {
    Helm,
    Istioctl,
    /// The Sail Operator's `sailoperator.io/v1` objects (OpenShift Service Mesh 3).
    Sail,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dataplane {
    #[default]
    Sidecar,
    Ambient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MtlsMode {
    #[serde(rename = "STRICT")]
    Strict,
    #[serde(rename = "PERMISSIVE")]
    Permissive,
}

/// Sidecar DNS proxying.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Dns {
    /// Sidecar DNS proxy (`proxyMetadata.ISTIO_META_DNS_CAPTURE`): lets workloads resolve
    /// services that have no Kubernetes Service in their own cluster.
    #[serde(default)]
    pub capture: bool,
}

/// The mesh's certificate authority: one root, one intermediate per cluster.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Ca {
    /// Key algorithm for generated roots and intermediates.
    #[serde(default)]
    pub key_algorithm: KeyAlgorithm,
    /// Validity of a generated root, in days.
    #[serde(default = "default_root_days")]
    #[schemars(range(min = 1, max = 36500))]
    pub root_validity_days: u32,
    /// Validity of each cluster's intermediate, in days.
    #[serde(default = "default_intermediate_days")]
    #[schemars(range(min = 1, max = 36500))]
    pub intermediate_validity_days: u32,
    /// Bring your own (corporate) root; omitted, a root is generated once and kept in the PKI
    /// store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<CaRoot>,
    /// `plain` (Secret `cacerts` with the key material) or `external` (an ExternalSecret; no
    /// key material in the output).
    #[serde(default)]
    pub secrets: SecretsMode,
    /// The store the ExternalSecret reads from: `NAME` (a ClusterSecretStore),
    /// `ClusterSecretStore/NAME` or `SecretStore/NAME`; required with `secrets: external`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_store: Option<String>,
}

impl Default for Ca {
    fn default() -> Self {
        Ca {
            key_algorithm: KeyAlgorithm::default(),
            root_validity_days: default_root_days(),
            intermediate_validity_days: default_intermediate_days(),
            root: None,
            secrets: SecretsMode::default(),
            external_store: None,
        }
    }
}

fn default_root_days() -> u32 {
    3650
}

fn default_intermediate_days() -> u32 {
    730
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    #[default]
    EcdsaP256,
    EcdsaP384,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

/// A bring-your-own root: PEM files, relative to the topology file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct CaRoot {
    /// PEM certificate of the signing CA, optionally followed by the certificates above it up
    /// to a self-signed root.
    pub cert_file: String,
    /// Its unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1), mode 0600.
    pub key_file: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretsMode {
    #[default]
    Plain,
    External,
}

/// A flat L3 network (`global.network`, label `topology.istio.io/network`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Network {
    /// DNS-1123 label.
    pub name: String,
}

/// A region and its zones.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Locality {
    /// Region name, as in the nodes' `topology.kubernetes.io/region` label.
    pub region: String,
    /// Zone names, as in the nodes' `topology.kubernetes.io/zone` label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
}

/// One Kubernetes cluster.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Cluster {
    /// DNS-1123 label: Istio's clusterName, the output directory name, the remote-secret key.
    pub name: String,
    /// The mesh; optional when there is exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    /// The network the cluster's pods are on.
    pub network: String,
    /// The cluster's region (a region of the locality catalogue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The zones the cluster's nodes are in (zones of `region`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// `primary` runs istiod; `remote` is served by the istiod of `primary`.
    pub control_plane: ControlPlane,
    /// For a remote: the primary whose istiod serves it (its config cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// The east-west gateway; its address is needed where remotes or peers must reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub east_west_gateway: Option<EastWestGateway>,
    /// How other clusters' control planes reach this cluster's API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<ApiServer>,
    /// The Kubernetes distribution (`openshift` changes the CNI and security settings).
    #[serde(default)]
    pub platform: Platform,
    /// Per-cluster override of the mesh's trust domain; empty for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
    /// Where the reader token for this cluster's remote secret comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_secret: Option<RemoteSecret>,
    /// How the GitOps controllers of `gitops:` reach this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<ClusterGitops>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ControlPlane {
    Primary,
    Remote,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    #[default]
    Generic,
    Openshift,
    Gke,
    Eks,
    Aks,
}

/// A cluster's east-west gateway.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct EastWestGateway {
    /// IP or DNS name of the gateway's L4 load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `LoadBalancer` or `NodePort`.
    #[serde(default)]
    pub service_type: ServiceType,
    /// Added to the gateway Service (cloud L4 load-balancer hints).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// How the gateway is deployed: `chart` (Istio's gateway chart or IstioOperator
    /// component) or `gateway-api` (a Gateway API `Gateway` of class `istio` that istiod
    /// deploys: no Helm). Ambient meshes always use a Gateway API east-west gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<GatewayForm>,
}

/// How a sidecar mesh's east-west gateway is deployed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayForm {
    /// Istio's `gateway` chart (`install/helm/`) or the IstioOperator component
    /// (`install/istioctl/`), with Istio `Gateway`s for what it exposes.
    #[default]
    Chart,
    /// A Gateway API `Gateway` (class `istio`, labelled with its network, TLS passthrough on
    /// 15443), and `TLSRoute`s that expose istiod to remotes.
    GatewayApi,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    #[default]
    LoadBalancer,
    NodePort,
}

impl Cluster {
    /// The kubeconfig exec plugin the primaries watching this cluster authenticate with
    /// (`remoteSecret.exec`), instead of a reader token.
    pub fn exec_plugin(&self) -> Option<&ExecPlugin> {
        self.remote_secret.as_ref().and_then(|s| s.exec.as_ref())
    }

    /// The east-west gateway's address when it is a DNS name rather than an IP.
    pub fn east_west_dns_name(&self) -> Option<&str> {
        self.east_west_gateway
            .as_ref()
            .and_then(|g| g.address.as_deref())
            .filter(|a| a.parse::<std::net::IpAddr>().is_err())
    }
}

/// How other control planes reach a cluster's API server.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ApiServer {
    /// `https://host[:port]`, reachable from the primaries' istiod.
    pub url: String,
    /// PEM CA bundle of the API server (relative to the topology file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// TLS server name to verify, when it differs from the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
}

/// The reader token for a cluster's remote secret.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct RemoteSecret {
    /// A file holding the `istio-reader-service-account` token (read at build time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// Take the token from an external secret store instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_secret: Option<ExternalSecretRef>,
    /// Or no long-lived token at all: istiod runs this kubeconfig exec plugin for short-lived
    /// credentials (EKS `aws eks get-token`, GKE `gke-gcloud-auth-plugin`). The command must
    /// be in istiod's image (W050).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecPlugin>,
}

/// A kubeconfig `users[].user.exec` entry (client.authentication.k8s.io/v1beta1).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ExecPlugin {
    /// The program, as istiod's container finds it (a name on its PATH or an absolute path).
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment for it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A reference into an external secret store (External Secrets Operator).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ExternalSecretRef {
    /// SecretStore / ClusterSecretStore name.
    pub store: String,
    /// The key in the store.
    pub key: String,
}

/// An application service.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Service {
    /// The Service name (DNS-1035 label: starts with a letter).
    pub name: String,
    /// Its namespace; created in every cluster that gets the Service.
    pub namespace: String,
    /// The mesh; optional when there is one mesh or `clusters` tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    #[schemars(length(min = 1))]
    pub ports: Vec<ServicePort>,
    /// Pod selector; default `{app: <name>}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
    /// The clusters the workloads run in; default (omitted or empty): every cluster of the
    /// mesh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// The clusters whose workloads call the service. When set, the Service object (and its
    /// namespace) is written only to `clusters` and `callers`; when omitted, to every cluster
    /// of the mesh, so the name resolves everywhere. Elsewhere the name resolves only through
    /// the sidecar DNS proxy (`dns.capture`) or ambient's DNS capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callers: Option<Vec<String>>,
    /// Ambient: expose across clusters. `true`: the `istio.io/global: "true"` label
    /// (upstream) or `solo.io/service-scope: global` (solo: a second name
    /// `<name>.<namespace>.mesh.internal` with every cluster's endpoints). `global-only` (solo
    /// only): `solo.io/service-scope: global-only`, the Service's own name gets every cluster's
    /// endpoints.
    #[serde(default)]
    pub global: Global,
    /// The `networking.istio.io/traffic-distribution` annotation. `PreferNetwork`,
    /// `PreferRegion` and `Any` are understood by the solo distribution only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<TrafficDistribution>,
}

/// How far an ambient service is exposed: `false` (this cluster's endpoints), `true` (global),
/// or `global-only` (solo: the Service's own name spans the clusters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Global {
    /// `true` or `false`.
    Flag(bool),
    /// `global-only`.
    Scope(GlobalScope),
}

/// One enum of the three values, so that a wrong value is reported as "not one of" them.
impl JsonSchema for Global {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Global".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`false`, `true` or `global-only`.",
            "enum": [false, true, "global-only"]
        })
    }
}

impl Default for Global {
    fn default() -> Self {
        Global::Flag(false)
    }
}

impl Global {
    /// Exposed across clusters at all (`true` or `global-only`).
    pub fn is_global(self) -> bool {
        !matches!(self, Global::Flag(false))
    }

    /// `global-only`.
    pub fn is_global_only(self) -> bool {
        matches!(self, Global::Scope(GlobalScope::GlobalOnly))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GlobalScope {
    #[serde(rename = "global-only")]
    GlobalOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TrafficDistribution {
    PreferClose,
    PreferSameZone,
    PreferSameNode,
    // Solo only: prefer the caller's network; its region (and network); every endpoint alike.
    PreferNetwork,
    PreferRegion,
    Any,
}

impl TrafficDistribution {
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficDistribution::PreferClose => "PreferClose",
            TrafficDistribution::PreferSameZone => "PreferSameZone",
            TrafficDistribution::PreferSameNode => "PreferSameNode",
            TrafficDistribution::PreferNetwork => "PreferNetwork",
            TrafficDistribution::PreferRegion => "PreferRegion",
            TrafficDistribution::Any => "Any",
        }
    }

    /// Values only Solo's distribution understands (upstream Istio treats them as `Any`).
    pub fn solo_only(self) -> bool {
        matches!(
            self,
            TrafficDistribution::PreferNetwork
                | TrafficDistribution::PreferRegion
                | TrafficDistribution::Any
        )
    }
}

/// A Service port.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ServicePort {
    /// DNS-1123 label; Istio reads the protocol from its prefix (`http`, `grpc`, `tcp`, ...).
    pub name: String,
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    /// The container port; default `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: Option<u32>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<PortProtocol>,
    /// Explicit application protocol (`http`, `http2`, `grpc`, `tcp`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum PortProtocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl PortProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "TCP",
            PortProtocol::Udp => "UDP",
            PortProtocol::Sctp => "SCTP",
        }
    }
}

/// An Istio DestinationRule.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct DestinationRule {
    pub name: String,
    /// Default: the namespace of the service named by `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The mesh; optional when there is one mesh or `host` or `clusters` tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    /// A service name from `services`, or a FQDN / wildcard host.
    pub host: String,
    /// Istio's DestinationRule `trafficPolicy`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<Object>,
    /// Istio's subsets, verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
    /// Istio's `exportTo`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_to: Option<Vec<String>>,
    /// Istio's `workloadSelector`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<Object>,
    /// Placement override (primaries only); default (omitted or empty): the mesh's config
    /// clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
}

/// A DestinationRule subset.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Subset {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<Object>,
}

/// Any other Istio resource, verbatim.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct IstioResource {
    /// An Istio API version, e.g. `networking.istio.io/v1`.
    pub api_version: String,
    /// An Istio kind, e.g. `Gateway`.
    pub kind: String,
    pub metadata: ObjectMeta,
    /// The resource's `spec`, verbatim.
    pub spec: Object,
    /// The mesh; optional when there is one mesh or `clusters` tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    /// Placement override (primaries only); default (omitted or empty): the mesh's config
    /// clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
}

/// Kubernetes object metadata, as far as a topology may set it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A dedicated ingress gateway (istio/gateway chart, or an IstioOperator component).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct IngressGateway {
    /// DNS-1123 label; the Deployment and Service name.
    pub name: String,
    pub namespace: String,
    /// The mesh; optional when there is one mesh or `clusters` tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    /// Where to run it; default (omitted or empty): every cluster of the mesh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub service_type: ServiceType,
    /// Added to the gateway Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}
