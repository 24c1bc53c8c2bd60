//! What each cluster's directory holds, rendered from the plan, the key material and the
//! files the topology names (reader tokens, API server CAs).
//!
//! `plan.rs` decides what each cluster gets; this stage turns each decision into a template
//! context, and templates (`render.rs`) decide the bytes; `emit.rs` puts them on disk.
//! [`read_inputs`] is the only I/O here, done before rendering. Output is deterministic:
//! clusters and files in a fixed order, maps sorted, no timestamps.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};

use crate::diagnostic::Code;
use crate::emit::Output;
use crate::model::{ClusterId, Model};
use crate::path;
use crate::pki::{Finding, Material, Origin};
use crate::plan::ClusterPlan;
use crate::render::{RenderError, Renderer};
use crate::topology::{Dataplane, Installer, Platform, SecretsMode};

/// The namespace of the control plane; `cacerts` lives here.
pub const SYSTEM_NAMESPACE: &str = "istio-system";

/// Where Solo's east-west Gateway and the `istio-remote` Gateways of its peers live (the
/// namespace of Solo's `istioctl multicluster expose --namespace istio-gateways`).
pub const SOLO_GATEWAY_NAMESPACE: &str = "istio-gateways";

/// The east-west Gateway of Solo's distribution (`istioctl multicluster expose`).
pub const SOLO_EAST_WEST_NAME: &str = "istio-eastwest";

/// The four keys of the `cacerts` Secret, in the order istiod documents them.
pub const CACERTS_KEYS: [&str; 4] = [
    "ca-cert.pem",
    "ca-key.pem",
    "cert-chain.pem",
    "root-cert.pem",
];

#[derive(Serialize)]
struct PlainCacerts<'a> {
    namespace: &'a str,
    ca_cert: String,
    ca_key: String,
    cert_chain: String,
    root_cert: String,
}

#[derive(Serialize)]
struct ExternalCacerts<'a> {
    namespace: &'a str,
    store_kind: &'a str,
    store_name: &'a str,
    remote_key: String,
    store_path: String,
    keys: [&'a str; 4],
}

/// `externalStore` is `NAME` (a ClusterSecretStore) or `SecretStore/NAME` /
/// `ClusterSecretStore/NAME`.
pub fn secret_store_ref(external_store: &str) -> (&str, &str) {
    match external_store.split_once('/') {
        Some((kind, name)) => (kind, name),
        None => ("ClusterSecretStore", external_store),
    }
}

/// The key under which the external store holds a cluster's CA material.
pub fn external_key(cluster: &str) -> String {
    format!("istio-cacerts-{cluster}")
}

/// The ServiceAccount istiod on other clusters uses to watch this one.
pub const READER_SERVICE_ACCOUNT: &str = "istio-reader-service-account";
/// The token Secret `istioctl create-remote-secret` would create (and reuses when present).
pub const READER_TOKEN_SECRET: &str = "istio-reader-service-account-istio-remote-secret-token";

/// How a primary gets a peer's reader token.
#[derive(Clone)]
pub enum Token {
    /// Read from `remoteSecret.tokenFile`.
    Value(String),
    /// Fetched by an ExternalSecret from `remoteSecret.externalSecret`.
    External { store: String, key: String },
    /// Not available: the secret is skipped (W080).
    Missing,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Value(_) => f.write_str("Token::Value(<secret>)"),
            Token::External { store, key } => write!(f, "Token::External({store}, {key})"),
            Token::Missing => f.write_str("Token::Missing"),
        }
    }
}

/// What the build reads from the files the topology names, per cluster.
#[derive(Debug, Default)]
pub struct Inputs {
    pub tokens: BTreeMap<ClusterId, Token>,
    /// `apiServer.caFile`, base64 for a kubeconfig's `certificate-authority-data`.
    pub api_server_ca: BTreeMap<ClusterId, String>,
    /// Unreadable files (errors) and skipped remote secrets (warnings).
    pub findings: Vec<Finding>,
}

/// Reads every reader token and API server CA the plan needs. Tokens are never copied into a
/// diagnostic.
pub fn read_inputs(model: &Model, plans: &[ClusterPlan], base_dir: &Path) -> Inputs {
    let t = &model.topology;
    let mut inputs = Inputs::default();
    for p in plans.iter().filter(|p| p.watched) {
        let c = p.cluster;
        let cluster = &t.clusters[c];
        let ca_file = cluster.api_server.as_ref().and_then(|a| a.ca_file.as_ref());
        if ca_file.is_none() && cluster.api_server.is_some() {
            inputs.findings.push(missing_ca(model, p));
        }
        if let Some(ca) = ca_file {
            let file = base_dir.join(ca);
            match std::fs::read_to_string(&file) {
                Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => {
                    inputs
                        .api_server_ca
                        .insert(c, STANDARD.encode(text.as_bytes()));
                }
                Ok(_) => inputs.findings.push(Finding {
                    code: Code::UnreadablePki,
                    origin: Origin::Topology,
                    file,
                    message: "no PEM certificate in the API server CA file".to_string(),
                    help: "caFile holds the PEM CA bundle that signed the API server's certificate"
                        .to_string(),
                    at: path!("clusters", c, "apiServer", "caFile"),
                }),
                Err(e) => inputs.findings.push(Finding {
                    code: Code::UnreadablePki,
                    origin: Origin::Topology,
                    file,
                    message: format!("cannot be read: {e}"),
                    help: "check the path (relative to the topology file)".to_string(),
                    at: path!("clusters", c, "apiServer", "caFile"),
                }),
            }
        }
        let secret = cluster.remote_secret.as_ref();
        let token = match (
            secret.and_then(|s| s.token_file.as_ref()),
            secret.and_then(|s| s.external_secret.as_ref()),
        ) {
            (_, Some(ext)) => Token::External {
                store: ext.store.clone(),
                key: ext.key.clone(),
            },
            (Some(file), None) => match std::fs::read_to_string(base_dir.join(file)) {
                Ok(text) if !text.trim().is_empty() => Token::Value(text.trim().to_string()),
                _ => Token::Missing,
            },
            (None, None) => Token::Missing,
        };
        if matches!(token, Token::Missing) {
            inputs.findings.push(missing_token(model, p, base_dir));
        }
        inputs.tokens.insert(c, token);
    }
    inputs
}

/// The names of the primaries that discover the planned cluster.
fn watcher_names<'m>(model: &'m Model, p: &ClusterPlan) -> Vec<&'m str> {
    p.watchers
        .iter()
        .map(|&w| model.topology.clusters[w].name.as_str())
        .collect()
}

/// W081: the kubeconfig in `c`'s remote secrets can only trust the system's roots, which a
/// cluster's API server certificate is almost never issued by.
fn missing_ca(model: &Model, p: &ClusterPlan) -> Finding {
    let c = p.cluster;
    let t = &model.topology;
    let name = &t.clusters[c].name;
    let watchers = watcher_names(model, p);
    Finding {
        code: Code::RemoteSecretWithoutCa,
        origin: Origin::Topology,
        file: std::path::PathBuf::new(),
        message: format!(
            "no CA for {name}'s API server: the kubeconfig in istio-remote-secret-{name} (on {}) trusts only the system's root CAs",
            watchers.join(", ")
        ),
        help: format!(
            "set apiServer.caFile to the cluster's CA, e.g. after applying reader-token.yaml to {name}: `kubectl --context {name} -n {SYSTEM_NAMESPACE} get secret {READER_TOKEN_SECRET} -o jsonpath='{{.data.ca\\.crt}}' | base64 -d > secrets/{name}-ca.crt`"
        ),
        at: path!("clusters", c, "apiServer"),
    }
}

/// W080: the remote secrets for `c` are skipped; say how to supply the token, or what
/// `istioctl` would do instead.
fn missing_token(model: &Model, p: &ClusterPlan, base_dir: &Path) -> Finding {
    let c = p.cluster;
    let t = &model.topology;
    let cluster = &t.clusters[c];
    let name = &cluster.name;
    let watchers = watcher_names(model, p);
    let file = cluster
        .remote_secret
        .as_ref()
        .and_then(|s| s.token_file.clone());
    let server = cluster
        .api_server
        .as_ref()
        .map_or("<API server URL>", |a| a.url.as_str());
    let fetch = format!(
        "kubectl --context {name} -n {SYSTEM_NAMESPACE} get secret {READER_TOKEN_SECRET} -o jsonpath='{{.data.token}}' | base64 -d > {}",
        file.as_deref().unwrap_or("secrets/TOKEN")
    );
    let istioctl: Vec<String> = watchers
        .iter()
        .map(|w| {
            format!(
                "istioctl create-remote-secret --context {name} --name {name} --server {server} | kubectl --context {w} apply -f -"
            )
        })
        .collect();
    let (message, help) = match &file {
        Some(f) => (
            format!(
                "the reader token file {f} is missing or empty: istio-remote-secret-{name} is not written to {}",
                watchers.join(", ")
            ),
            format!(
                "after applying reader-token.yaml to {name}: `{fetch}`, then rebuild; or instead: `{}`",
                istioctl.join("`; `")
            ),
        ),
        None => (
            format!(
                "no reader token for {name} (remoteSecret): istio-remote-secret-{name} is not written to {}",
                watchers.join(", ")
            ),
            format!(
                "set remoteSecret.tokenFile (after applying reader-token.yaml to {name}: `{fetch}`) or remoteSecret.externalSecret; or instead: `{}`",
                istioctl.join("`; `")
            ),
        ),
    };
    Finding {
        code: Code::RemoteSecretSkipped,
        origin: Origin::Topology,
        file: file.map_or_else(std::path::PathBuf::new, |f| base_dir.join(f)),
        message,
        help,
        at: if cluster.remote_secret.is_some() {
            path!("clusters", c, "remoteSecret")
        } else {
            path!("clusters", c, "name")
        },
    }
}

/// Whether the cluster runs istio-cni: ambient needs it, and so do sidecars on OpenShift.
fn needs_cni(mesh: &crate::topology::Mesh, cluster: &crate::topology::Cluster) -> bool {
    mesh.dataplane == Dataplane::Ambient || cluster.platform == Platform::Openshift
}

/// Istio's platform profile for a cluster (`global.platform`), where the charts have one.
fn platform(p: Platform) -> Option<&'static str> {
    match p {
        Platform::Openshift => Some("openshift"),
        Platform::Gke => Some("gke"),
        Platform::Generic | Platform::Eks | Platform::Aks => None,
    }
}

/// Everything the templates of one cluster share.
fn common(model: &Model, p: &ClusterPlan) -> Value {
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
    let ambient = mesh.dataplane == Dataplane::Ambient;
    let revision = mesh.istio.revision.as_str();
    let remote = !p.primary;
    let primary = p.served_by.map(|s| &t.clusters[s]);
    let remote_pilot_address = primary
        .and_then(|s| s.east_west_gateway.as_ref())
        .and_then(|g| g.address.clone());
    let solo_ambient = ambient && mesh.istio.distribution == crate::topology::Distribution::Solo;
    // Another cluster of the mesh has another trust domain: listed as an alias everywhere, and
    // on Solo's ambient distribution also not validated by istiod and ztunnel (its docs).
    let distinct_trust_domains = !aliases.is_empty();
    let mut istiod_env = BTreeMap::new();
    if ambient && p.multi_network {
        istiod_env.insert("AMBIENT_ENABLE_MULTI_NETWORK", "true");
    }
    // istiod's settings for Solo's peering, on the clusters that run istiod.
    if p.peering && p.primary {
        istiod_env.insert("PILOT_ENABLE_IP_AUTOALLOCATE", "true");
    }
    let mut ztunnel_env = BTreeMap::new();
    if solo_ambient && distinct_trust_domains {
        if p.primary {
            istiod_env.insert("PILOT_SKIP_VALIDATE_TRUST_DOMAIN", "true");
        }
        ztunnel_env.insert("SKIP_VALIDATE_TRUST_DOMAIN", "true");
    }
    let mut iop_pilot_env = istiod_env.clone();
    if p.serves_remotes {
        iop_pilot_env.insert("EXTERNAL_ISTIOD", "true");
    }
    let east_west = cluster.east_west_gateway.as_ref();
    let gateways: Vec<Value> = p
        .ingress_gateways
        .iter()
        .map(|&g| {
            let gw = &t.ingress_gateways[g];
            json!({
                "name": gw.name,
                "namespace": gw.namespace,
                "istio_label": gw.name.strip_prefix("istio-").unwrap_or(&gw.name),
                "service_type": service_type(gw.service_type),
                "annotations": gw.annotations,
            })
        })
        .collect();
    json!({
        "system_namespace": SYSTEM_NAMESPACE,
        "cluster": cluster.name,
        "mesh": mesh.name,
        "network": p.network,
        "trust_domain": trust_domain,
        "trust_domain_aliases": aliases,
        "revision": revision,
        "version": mesh.istio.version.to_string(),
        "chart_version": format!("~{}.0", mesh.istio.version),
        "platform": platform(cluster.platform),
        "primary": p.primary,
        "remote": remote,
        "serves_remotes": p.serves_remotes,
        "multi_network": p.multi_network,
        "ambient": ambient,
        "remote_pilot_address": remote_pilot_address,
        "injection_path": format!("/inject/cluster/{}/net/{}", cluster.name, p.network),
        "dns_capture": mesh.dns.capture && !ambient,
        "profile": if remote { Some("remote") } else if ambient { Some("ambient") } else { None },
        "iop_profile": if remote { "remote" } else if ambient { "ambient" } else { "default" },
        "istiod_env": istiod_env,
        "iop_pilot_env": iop_pilot_env,
        "istiod_release": if revision.is_empty() { "istiod".to_string() } else { format!("istiod-{revision}") },
        "east_west": {
            "service_type": service_type(east_west.map(|g| g.service_type).unwrap_or_default()),
            "annotations": east_west.map(|g| g.annotations.clone()).unwrap_or_default(),
            "address": east_west.and_then(|g| g.address.clone()),
        },
        "disable_default_ingress": !p.ingress_gateways.iter().any(|&g| t.ingress_gateways[g].name == "istio-ingressgateway"),
        "cni": needs_cni(mesh, cluster),
        "ingress_gateways": gateways,
        "peering": p.peering,
        "peering_enabled": p.peering && p.primary,
        "ztunnel_env": ztunnel_env,
        "ztunnel_network": p.peering.then_some(p.network.as_str()),
        "cni_dns_capture": p.peering,
    })
}

fn service_type(s: crate::topology::ServiceType) -> &'static str {
    match s {
        crate::topology::ServiceType::LoadBalancer => "LoadBalancer",
        crate::topology::ServiceType::NodePort => "NodePort",
    }
}

/// `base` with `extra`'s keys added.
fn with(base: &Value, extra: Value) -> Value {
    let mut v = base.clone();
    if let (Some(map), Value::Object(extra)) = (v.as_object_mut(), extra) {
        map.extend(extra);
    }
    v
}

/// One cluster's files, collected before they join the output.
struct ClusterFiles<'r> {
    renderer: &'r Renderer,
    dir: String,
    files: Vec<(String, String, bool)>,
    /// Files clusters share, rendered once: `services.yaml` by the services it holds.
    shared: BTreeMap<Vec<usize>, String>,
}

impl ClusterFiles<'_> {
    /// Two items with one path would silently lose one: validation rules this out, and this
    /// refuses it should a new kind of output ever allow it.
    fn claim(&self, rel: &str) -> Result<(), RenderError> {
        if self.has(rel) {
            return Err(RenderError::Duplicate {
                path: format!("{}/{rel}", self.dir),
            });
        }
        Ok(())
    }

    fn object(
        &mut self,
        rel: &str,
        template: &str,
        ctx: &Value,
        private: bool,
    ) -> Result<(), RenderError> {
        self.claim(rel)?;
        let text = self.renderer.objects(template, ctx)?;
        self.files.push((rel.to_string(), text, private));
        Ok(())
    }

    fn values(&mut self, rel: &str, template: &str, ctx: &Value) -> Result<(), RenderError> {
        self.claim(rel)?;
        let text = self.renderer.values(template, ctx)?;
        self.files.push((rel.to_string(), text, false));
        Ok(())
    }

    fn text(&mut self, rel: &str, template: &str, ctx: &Value) -> Result<(), RenderError> {
        self.claim(rel)?;
        let text = self.renderer.text(template, ctx)?;
        self.files.push((rel.to_string(), text, false));
        Ok(())
    }

    /// An installer input: Helm values (`install/helm/`, one mapping) or an IstioOperator
    /// (`install/istioctl/`, an object), rendered from `install/<dir>/<template>...j2`.
    /// Returns the command its first line (`# helm upgrade ...`) gives, for the README.
    fn installer(&mut self, rel: &str, template: &str, ctx: &Value) -> Result<String, RenderError> {
        let (dir, suffix, object) = if rel.starts_with("install/istioctl/") {
            ("install/istioctl", "yaml", true)
        } else {
            ("install/helm", "values.yaml", false)
        };
        let name = format!("{dir}/{template}.{suffix}.j2");
        if object {
            self.object(rel, &name, ctx, false)?;
        } else {
            self.values(rel, &name, ctx)?;
        }
        let text = self.files.last().map_or("", |(_, text, _)| text.as_str());
        Ok(text
            .lines()
            .next()
            .map(|l| l.trim_start_matches('#').trim().to_string())
            .unwrap_or_default())
    }

    fn has(&self, rel: &str) -> bool {
        self.files.iter().any(|(r, _, _)| r == rel)
    }
}

/// Renders every cluster's files.
pub fn render(
    model: &Model,
    plans: &[ClusterPlan],
    material: &Material,
    inputs: &Inputs,
    renderer: &Renderer,
) -> Result<Output, RenderError> {
    let mut output = Output::default();
    let mut shared = BTreeMap::new();
    for p in plans {
        let mut files = ClusterFiles {
            renderer,
            dir: model.topology.clusters[p.cluster].name.clone(),
            files: Vec::new(),
            shared,
        };
        render_cluster(model, p, material, inputs, &mut files)?;
        for (rel, text, private) in files.files {
            output.add(format!("{}/{rel}", files.dir), text.into_bytes(), private);
        }
        shared = files.shared;
    }
    Ok(output)
}

fn render_cluster(
    model: &Model,
    p: &ClusterPlan,
    material: &Material,
    inputs: &Inputs,
    files: &mut ClusterFiles<'_>,
) -> Result<(), RenderError> {
    let t = &model.topology;
    let mesh = &t.meshes[p.mesh];
    let cluster = &t.clusters[p.cluster];
    let base = common(model, p);
    let ambient = mesh.dataplane == Dataplane::Ambient;
    let revision = mesh.istio.revision.as_str();

    // namespaces.yaml
    let namespaces: Vec<Value> = p
        .namespaces
        .iter()
        .map(|(name, dataplane)| {
            let mut labels = BTreeMap::new();
            if *dataplane {
                if ambient {
                    labels.insert("istio.io/dataplane-mode", "ambient".to_string());
                } else if revision.is_empty() {
                    labels.insert("istio-injection", "enabled".to_string());
                } else {
                    labels.insert("istio.io/rev", revision.to_string());
                }
            }
            json!({"name": name, "labels": labels})
        })
        .collect();
    let control_plane_clusters = p.served_by.map(|s| t.clusters[s].name.clone());
    files.object(
        "namespaces.yaml",
        "namespaces.yaml.j2",
        &with(
            &base,
            json!({"namespaces": namespaces, "control_plane_clusters": control_plane_clusters}),
        ),
        false,
    )?;

    // cacerts.yaml
    render_cacerts(model, p, material, files)?;

    // reader-token.yaml
    if p.watched {
        let watchers = watcher_names(model, p);
        files.object(
            "reader-token.yaml",
            "reader-token.yaml.j2",
            &with(
                &base,
                json!({
                    "name": READER_TOKEN_SECRET,
                    "service_account": READER_SERVICE_ACCOUNT,
                    "watchers": watchers.join(", "),
                }),
            ),
            false,
        )?;
    }

    // remote-secrets.yaml
    let mut secrets = Vec::new();
    for &peer in &p.peers {
        let peer_cluster = &t.clusters[peer];
        let Some(api) = peer_cluster.api_server.as_ref() else {
            continue;
        };
        let token = inputs.tokens.get(&peer).cloned().unwrap_or(Token::Missing);
        let token_text = match &token {
            Token::Value(v) => v.clone(),
            Token::External { .. } => "{{ .token }}".to_string(),
            Token::Missing => continue,
        };
        let kubeconfig = files.renderer.values(
            "remote-kubeconfig.yaml.j2",
            &json!({
                "peer": peer_cluster.name,
                "server": api.url,
                "ca_data": inputs.api_server_ca.get(&peer),
                "tls_server_name": api.tls_server_name.as_deref().filter(|s| !s.is_empty()),
                "token": token_text,
            }),
        )?;
        let mut string_data = BTreeMap::new();
        string_data.insert(peer_cluster.name.clone(), kubeconfig);
        let mut secret = json!({
            "name": format!("istio-remote-secret-{}", peer_cluster.name),
            "peer": peer_cluster.name,
            "string_data": string_data,
            "external": matches!(token, Token::External { .. }),
        });
        if let Token::External { store, key } = &token {
            let (kind, name) = secret_store_ref(store);
            if let Some(map) = secret.as_object_mut() {
                map.insert("store_kind".into(), json!(kind));
                map.insert("store_name".into(), json!(name));
                map.insert("key".into(), json!(key));
            }
        }
        secrets.push(secret);
    }
    if !secrets.is_empty() {
        let private = secrets.iter().any(|s| s["external"] == false);
        files.object(
            "remote-secrets.yaml",
            "remote-secrets.yaml.j2",
            &with(&base, json!({"secrets": secrets})),
            private,
        )?;
    }

    // services.yaml: its context has no cluster in it, so it is rendered once per set of
    // services (one per mesh, unless services name their `callers`) and reused: a mesh of many
    // clusters and many services must not render the product.
    if !p.services.is_empty() {
        let text = if let Some(text) = files.shared.get(&p.services) {
            text.clone()
        } else {
            let services: Vec<Value> = p
                .services
                .iter()
                .map(|&s| service_context(model, s))
                .collect();
            let text = files.renderer.objects(
                "services.yaml.j2",
                &json!({"system_namespace": SYSTEM_NAMESPACE, "services": services}),
            )?;
            files.shared.insert(p.services.clone(), text.clone());
            text
        };
        files.claim("services.yaml")?;
        files.files.push(("services.yaml".to_string(), text, false));
    }

    // expose-istiod.yaml, expose-services.yaml (sidecar)
    if p.serves_remotes && !ambient {
        let (vs, host, sni) = if revision.is_empty() {
            (
                "istiod-vs".to_string(),
                format!("istiod.{SYSTEM_NAMESPACE}.svc.cluster.local"),
                vec!["*".to_string()],
            )
        } else {
            (
                format!("istiod-vs-{revision}"),
                format!("istiod-{revision}.{SYSTEM_NAMESPACE}.svc.cluster.local"),
                vec![
                    format!("istiod-{revision}.{SYSTEM_NAMESPACE}.svc"),
                    format!("istiod-{revision}.{SYSTEM_NAMESPACE}.svc.cluster.local"),
                ],
            )
        };
        files.object(
            "expose-istiod.yaml",
            "expose-istiod.yaml.j2",
            &with(
                &base,
                json!({"virtual_service": vs, "istiod_host": host, "sni_hosts": sni}),
            ),
            false,
        )?;
    }
    if p.expose_services {
        files.object(
            "expose-services.yaml",
            "expose-services.yaml.j2",
            &base,
            false,
        )?;
    }

    // eastwest-gateway.yaml, peer-gateways.yaml (ambient)
    render_ambient_gateways(model, p, &base, files)?;

    // istio/: one file per resource
    render_istio(model, p, &base, files)?;

    // install/
    let helm = mesh.istio.installers.contains(&Installer::Helm);
    let istioctl = mesh.istio.installers.contains(&Installer::Istioctl);
    let sidecar_east_west = p.east_west_gateway && !ambient;
    let cni = needs_cni(mesh, cluster);
    let mut commands = Vec::new();
    if helm {
        commands.push(files.installer("install/helm/base.values.yaml", "base", &base)?);
        if cni {
            commands.push(files.installer("install/helm/cni.values.yaml", "cni", &base)?);
        }
        commands.push(files.installer("install/helm/istiod.values.yaml", "istiod", &base)?);
        if ambient {
            commands.push(files.installer("install/helm/ztunnel.values.yaml", "ztunnel", &base)?);
        }
        if sidecar_east_west {
            commands.push(files.installer(
                "install/helm/eastwestgateway.values.yaml",
                "eastwestgateway",
                &base,
            )?);
        }
        for gateway in base["ingress_gateways"].as_array().into_iter().flatten() {
            let name = gateway["name"].as_str().unwrap_or_default();
            let rel = format!("install/helm/{name}.values.yaml");
            let ctx = with(&base, json!({"gateway": gateway, "values_file": rel}));
            commands.push(files.installer(&rel, "ingressgateway", &ctx)?);
        }
    }
    if istioctl {
        if helm {
            commands.push("# or, with istioctl instead of Helm:".to_string());
        }
        commands.push(files.installer(
            "install/istioctl/controlplane.yaml",
            "controlplane",
            &base,
        )?);
        if sidecar_east_west {
            commands.push(files.installer("install/istioctl/eastwest.yaml", "eastwest", &base)?);
        }
    }

    // kustomization.yaml and README.md
    let order = [
        "namespaces.yaml",
        "cacerts.yaml",
        "reader-token.yaml",
        "remote-secrets.yaml",
        "services.yaml",
        "expose-istiod.yaml",
        "expose-services.yaml",
        "eastwest-gateway.yaml",
        "peer-gateways.yaml",
    ];
    let mut resources: Vec<String> = order
        .iter()
        .filter(|f| files.has(f))
        .map(|f| (*f).to_string())
        .collect();
    resources.extend(
        files
            .files
            .iter()
            .map(|(rel, _, _)| rel.clone())
            .filter(|rel| rel.starts_with("istio/")),
    );
    // A Kustomization is read by kustomize, not applied: it has no metadata.name to check.
    files.values(
        "kustomization.yaml",
        "kustomization.yaml.j2",
        &with(&base, json!({"resources": resources})),
    )?;
    let role = match (p.primary, p.serves_remotes, p.served_by) {
        (true, true, _) => "primary, serving remotes through its east-west gateway".to_string(),
        (true, false, _) => "primary".to_string(),
        (false, _, Some(s)) => format!("remote, served by `{}`", t.clusters[s].name),
        (false, _, None) => "remote".to_string(),
    };
    let mut notes = Vec::new();
    for &peer in &p.peers {
        if matches!(inputs.tokens.get(&peer), None | Some(Token::Missing)) {
            notes.push(format!(
                "`istio-remote-secret-{0}` is not included: no reader token for `{0}` (see the build's warning W080).",
                t.clusters[peer].name
            ));
        }
    }
    if mesh.ca.secrets == SecretsMode::External {
        notes.push(format!(
            "`cacerts` comes from the secret store: upload this cluster's CA material under `{}` first.",
            external_key(&cluster.name)
        ));
    }
    files.text(
        "README.md",
        "README.md.j2",
        &with(
            &base,
            json!({
                "role": role,
                "helm": helm,
                "install_commands": commands,
                "resources": resources,
                "notes": notes,
                "gateway_api": files.has("eastwest-gateway.yaml") || files.has("peer-gateways.yaml"),
            }),
        ),
    )?;
    Ok(())
}

/// A Gateway API listener as the templates write it.
fn listener(name: &str, port: u16, protocol: &str, mode: &str) -> Value {
    json!({"name": name, "port": port, "protocol": protocol, "tls_mode": mode, "tls_options": {}})
}

/// The east-west Gateway istiod deploys for an ambient mesh (`eastwest-gateway.yaml`), and on
/// Solo's distribution one `istio-remote` Gateway per linked network (`peer-gateways.yaml`).
///
/// Upstream: `gen-eastwest-gateway.sh --ambient` (class `istio-east-west`, listener `mesh`
/// 15008 HBONE, TLS terminated as ISTIO_MUTUAL; `v1beta1` before 1.29). Solo: `istioctl
/// multicluster expose --generate` and `istioctl multicluster link --generate`. The Service
/// istiod creates for the Gateway takes its type from the `networking.istio.io/service-type`
/// annotation and its annotations from `spec.infrastructure.annotations`.
fn render_ambient_gateways(
    model: &Model,
    p: &ClusterPlan,
    base: &Value,
    files: &mut ClusterFiles<'_>,
) -> Result<(), RenderError> {
    if !(p.ambient && p.east_west_gateway) {
        return Ok(());
    }
    let t = &model.topology;
    let mesh = &t.meshes[p.mesh];
    let cluster = &t.clusters[p.cluster];
    let solo = mesh.istio.distribution == crate::topology::Distribution::Solo;
    let east_west = cluster.east_west_gateway.as_ref();
    let mut labels = BTreeMap::new();
    labels.insert("topology.istio.io/network".to_string(), p.network.clone());
    if !mesh.istio.revision.is_empty() {
        labels.insert("istio.io/rev".to_string(), mesh.istio.revision.clone());
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "networking.istio.io/service-type".to_string(),
        service_type(east_west.map(|g| g.service_type).unwrap_or_default()).to_string(),
    );
    let infrastructure = east_west.map(|g| g.annotations.clone()).unwrap_or_default();
    let gateway = if solo {
        let mut listeners = vec![listener("cross-network", 15008, "HBONE", "Passthrough")];
        // Only a cluster with an istiod exposes it (xDS on 15012) to its peers and remotes.
        if p.primary {
            labels.insert("istio.io/expose-istiod".to_string(), "15012".to_string());
            listeners.push(listener("xds-tls", 15012, "TLS", "Passthrough"));
        }
        json!({
            "api_version": "gateway.networking.k8s.io/v1",
            "name": SOLO_EAST_WEST_NAME,
            "namespace": SOLO_GATEWAY_NAMESPACE,
            "class": "istio-eastwest",
            "expose_istiod": p.primary,
            "labels": labels,
            "annotations": annotations,
            "infrastructure_annotations": infrastructure,
            "addresses": [],
            "listeners": listeners,
        })
    } else {
        let mut mesh_listener = listener("mesh", 15008, "HBONE", "Terminate");
        mesh_listener["tls_options"] =
            json!({"gateway.istio.io/tls-terminate-mode": "ISTIO_MUTUAL"});
        json!({
            "api_version": if mesh.istio.version.minor() >= 29 {
                "gateway.networking.k8s.io/v1"
            } else {
                "gateway.networking.k8s.io/v1beta1"
            },
            "name": "istio-eastwestgateway",
            "namespace": SYSTEM_NAMESPACE,
            "class": "istio-east-west",
            "expose_istiod": false,
            "labels": labels,
            "annotations": annotations,
            "infrastructure_annotations": infrastructure,
            "addresses": [],
            "listeners": [mesh_listener],
        })
    };
    files.object(
        "eastwest-gateway.yaml",
        "eastwest-gateway.yaml.j2",
        &with(base, json!({"gateway": gateway})),
        false,
    )?;

    let mut peers = Vec::new();
    for &l in &p.linked {
        let peer = &t.clusters[l];
        let Some(address) = peer
            .east_west_gateway
            .as_ref()
            .and_then(|g| g.address.as_ref())
        else {
            continue;
        };
        let address = if address.parse::<std::net::IpAddr>().is_ok() {
            json!({"type": "IPAddress", "value": address})
        } else {
            let host = address.trim_end_matches('.').to_ascii_lowercase();
            json!({"type": "Hostname", "value": host})
        };
        let mut labels = BTreeMap::new();
        labels.insert(
            "topology.istio.io/network".to_string(),
            peer.network.clone(),
        );
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "gateway.istio.io/service-account".to_string(),
            SOLO_EAST_WEST_NAME.to_string(),
        );
        annotations.insert(
            "gateway.istio.io/trust-domain".to_string(),
            model.trust_domain(l).to_string(),
        );
        peers.push(json!({
            "api_version": "gateway.networking.k8s.io/v1",
            "name": format!("istio-remote-peer-{}", peer.network),
            "namespace": SOLO_GATEWAY_NAMESPACE,
            "class": "istio-remote",
            "peer": peer.name,
            "labels": labels,
            "annotations": annotations,
            "infrastructure_annotations": {},
            "addresses": [address],
            "listeners": [
                listener("cross-network", 15008, "HBONE", "Passthrough"),
                listener("xds-tls", 15012, "TLS", "Passthrough"),
            ],
        }));
    }
    if !peers.is_empty() {
        files.object(
            "peer-gateways.yaml",
            "peer-gateways.yaml.j2",
            &with(base, json!({"gateways": peers})),
            false,
        )?;
    }
    Ok(())
}

fn service_context(model: &Model, s: usize) -> Value {
    let t = &model.topology;
    let svc = &t.services[s];
    let mesh = &t.meshes[model.services[s].mesh.unwrap_or_default()];
    let mut labels = BTreeMap::new();
    if svc.global.is_global() && mesh.dataplane == Dataplane::Ambient {
        match mesh.istio.distribution {
            crate::topology::Distribution::Upstream => {
                labels.insert("istio.io/global".to_string(), "true".to_string());
            }
            crate::topology::Distribution::Solo => {
                let scope = if svc.global.is_global_only() {
                    "global-only"
                } else {
                    "global"
                };
                labels.insert("solo.io/service-scope".to_string(), scope.to_string());
            }
        }
    }
    let mut annotations = BTreeMap::new();
    if let Some(td) = svc.traffic_distribution {
        annotations.insert(
            "networking.istio.io/traffic-distribution".to_string(),
            td.as_str().to_string(),
        );
    }
    let selector = svc.selector.clone().unwrap_or_else(|| {
        let mut m = BTreeMap::new();
        m.insert("app".to_string(), svc.name.clone());
        m
    });
    let ports: Vec<Value> = svc
        .ports
        .iter()
        .map(|port| {
            json!({
                "name": port.name,
                "port": port.port,
                "target_port": port.target_port.unwrap_or(port.port),
                "protocol": port.protocol.map_or("TCP", crate::topology::PortProtocol::as_str),
                "app_protocol": port.app_protocol,
            })
        })
        .collect();
    json!({
        "name": svc.name,
        "namespace": svc.namespace,
        "labels": labels,
        "annotations": annotations,
        "selector": selector,
        "ports": ports,
    })
}

/// DestinationRules, `istioConfig` and the mesh-wide PeerAuthentication, one file each:
/// `istio/<kind>-<namespace>-<name>.yaml`.
/// The `spec` of the DestinationRule meshc writes for a topology entry: `host`,
/// `trafficPolicy`, `subsets`, `exportTo` and `workloadSelector`, verbatim. One place, so that
/// what `--istio-crds` checks is what is written.
pub fn destination_rule_spec(dr: &crate::topology::DestinationRule) -> Value {
    let mut spec = serde_json::Map::new();
    spec.insert("host".into(), json!(dr.host));
    if let Some(tp) = &dr.traffic_policy {
        spec.insert(
            "trafficPolicy".into(),
            serde_json::to_value(tp).unwrap_or_default(),
        );
    }
    if !dr.subsets.is_empty() {
        spec.insert(
            "subsets".into(),
            serde_json::to_value(&dr.subsets).unwrap_or_default(),
        );
    }
    if let Some(e) = &dr.export_to {
        spec.insert("exportTo".into(), json!(e));
    }
    if let Some(w) = &dr.workload_selector {
        spec.insert(
            "workloadSelector".into(),
            serde_json::to_value(w).unwrap_or_default(),
        );
    }
    Value::Object(spec)
}

fn render_istio(
    model: &Model,
    p: &ClusterPlan,
    base: &Value,
    files: &mut ClusterFiles<'_>,
) -> Result<(), RenderError> {
    let t = &model.topology;
    let mut objects: Vec<(String, Value)> = Vec::new();
    for &d in &p.destination_rules {
        let dr = &t.destination_rules[d];
        let Some(namespace) = model.destination_rules[d].namespace.clone() else {
            continue;
        };
        objects.push((
            format!("istio/destinationrule-{namespace}-{}.yaml", dr.name),
            json!({
                "api_version": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "name": dr.name,
                "namespace": namespace,
                "labels": {},
                "annotations": {},
                "spec": destination_rule_spec(dr),
            }),
        ));
    }
    for &i in &p.istio_config {
        let r = &t.istio_config[i];
        objects.push((
            format!(
                "istio/{}-{}-{}.yaml",
                r.kind.to_lowercase(),
                r.metadata.namespace,
                r.metadata.name
            ),
            json!({
                "api_version": r.api_version,
                "kind": r.kind,
                "name": r.metadata.name,
                "namespace": r.metadata.namespace,
                "labels": r.metadata.labels,
                "annotations": r.metadata.annotations,
                "spec": serde_json::to_value(&r.spec).unwrap_or_default(),
            }),
        ));
    }
    if let Some(mode) = p.peer_authentication {
        let mode = match mode {
            crate::topology::MtlsMode::Strict => "STRICT",
            crate::topology::MtlsMode::Permissive => "PERMISSIVE",
        };
        objects.push((
            format!("istio/peerauthentication-{SYSTEM_NAMESPACE}-default.yaml"),
            json!({
                "api_version": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "name": "default",
                "namespace": SYSTEM_NAMESPACE,
                "labels": {},
                "annotations": {},
                "spec": {"mtls": {"mode": mode}},
            }),
        ));
    }
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    for (rel, ctx) in objects {
        files.object(&rel, "istio-object.yaml.j2", &with(base, ctx), false)?;
    }
    Ok(())
}

fn render_cacerts(
    model: &Model,
    p: &ClusterPlan,
    material: &Material,
    files: &mut ClusterFiles<'_>,
) -> Result<(), RenderError> {
    let t = &model.topology;
    let mesh = &t.meshes[p.mesh];
    let cluster = &t.clusters[p.cluster];
    match mesh.ca.secrets {
        SecretsMode::Plain => {
            let Some(ca) = material.cacerts(p.mesh, p.cluster) else {
                return Ok(());
            };
            let b64 = |s: &str| STANDARD.encode(s.as_bytes());
            files.object(
                "cacerts.yaml",
                "cacerts.yaml.j2",
                &serde_json::to_value(PlainCacerts {
                    namespace: SYSTEM_NAMESPACE,
                    ca_cert: b64(&ca.ca_cert),
                    ca_key: b64(ca.ca_key),
                    cert_chain: b64(&ca.cert_chain),
                    root_cert: b64(&ca.root_cert),
                })
                .unwrap_or_default(),
                true,
            )
        }
        SecretsMode::External => {
            let store = mesh.ca.external_store.as_deref().unwrap_or_default();
            let (store_kind, store_name) = secret_store_ref(store);
            files.object(
                "cacerts.yaml",
                "cacerts-external.yaml.j2",
                &serde_json::to_value(ExternalCacerts {
                    namespace: SYSTEM_NAMESPACE,
                    store_kind,
                    store_name,
                    remote_key: external_key(&cluster.name),
                    store_path: format!("{}/{}/", mesh.name, cluster.name),
                    keys: CACERTS_KEYS,
                })
                .unwrap_or_default(),
                false,
            )
        }
    }
}
