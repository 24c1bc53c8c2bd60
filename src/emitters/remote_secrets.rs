//! `remote-secrets.yaml`: on a primary, one `istio-remote-secret-<peer>` per cluster its
//! istiod discovers, holding a kubeconfig for the peer's API server (what `istioctl
//! create-remote-secret` writes), or an ExternalSecret that fills in the token. Peers whose
//! token is missing are left out (W080 says how to supply it).
//!
//! With `istio.kubeconfigSecret` (Istio 1.30+) the same kubeconfigs are files of one Secret
//! instead, `remote-kubeconfigs.yaml`, which istiod mounts and reads through
//! `PILOT_MULTICLUSTER_KUBECONFIG_PATH` (a directory of `*.yaml` files, one cluster each,
//! named by its current context: istio/istio 1.30.3 `pkg/kube/multicluster/`); istiod then
//! watches no remote secrets. A kubeconfig user is a token, or an exec plugin istiod runs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ClusterCx, ClusterEmitter, Files, With};
use crate::inputs::Token;
use crate::istio::secret_store_ref;
use crate::render::RenderError;

#[derive(Debug)]
pub struct RemoteSecrets;

#[derive(Serialize)]
struct Kubeconfig<'a> {
    peer: &'a str,
    server: &'a str,
    ca_data: Option<&'a String>,
    tls_server_name: Option<&'a str>,
    token: Option<&'a str>,
    exec: Option<&'a crate::topology::ExecPlugin>,
}

#[derive(Serialize)]
struct KubeconfigsCx<'a> {
    secret_name: &'a str,
    files: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Secret<'a> {
    name: String,
    peer: &'a str,
    string_data: BTreeMap<&'a str, String>,
    external: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
}

#[derive(Serialize)]
struct Cx<'a> {
    secrets: Vec<Secret<'a>>,
}

/// A peer this primary watches, and how its kubeconfig's user signs in.
struct Peer<'a> {
    cluster: usize,
    api: &'a crate::topology::ApiServer,
    token: &'a Token,
    token_text: Option<&'a str>,
    exec: Option<&'a crate::topology::ExecPlugin>,
}

impl Peer<'_> {
    /// The kubeconfig, the same for every primary that watches the peer.
    fn kubeconfig(&self, cx: &ClusterCx<'_>) -> Result<String, RenderError> {
        cx.renderer.values(
            "remote-kubeconfig.yaml.j2",
            &Kubeconfig {
                peer: &cx.model.topology.clusters[self.cluster].name,
                server: &self.api.url,
                ca_data: cx.inputs.api_server_ca.get(&self.cluster),
                tls_server_name: self
                    .api
                    .tls_server_name
                    .as_deref()
                    .filter(|s| !s.is_empty()),
                token: self.token_text,
                exec: self.exec,
            },
        )
    }
}

impl ClusterEmitter for RemoteSecrets {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let t = &cx.model.topology;
        let kubeconfig_secret = t.meshes[cx.plan.mesh].istio.kubeconfig_secret.as_deref();
        let mut peers = Vec::new();
        for &cluster in &cx.plan.peers {
            let Some(api) = t.clusters[cluster].api_server.as_ref() else {
                continue;
            };
            let token = cx.inputs.tokens.get(&cluster).unwrap_or(&Token::Missing);
            // An ExternalSecret's template fills the token in when it syncs.
            let (token_text, exec) = match token {
                Token::Value(v) => (Some(v.as_str()), None),
                Token::External { .. } => (Some("{{ .token }}"), None),
                Token::Exec(plugin) => (None, Some(plugin)),
                Token::Missing => continue,
            };
            peers.push(Peer {
                cluster,
                api,
                token,
                token_text,
                exec,
            });
        }
        // Each kubeconfig is rendered once per peer; those another thread is rendering are
        // taken after the others.
        let key = |peer: &Peer<'_>| format!("remote-kubeconfig:{}", peer.cluster);
        // The first error in the peers' order is the one reported, as in one pass.
        let mut taken = Vec::with_capacity(peers.len());
        for peer in &peers {
            let now = cx.shared_now(key(peer), || peer.kubeconfig(cx));
            let failed = now.is_err();
            taken.push(now);
            if failed {
                break;
            }
        }
        let mut kubeconfigs = Vec::with_capacity(peers.len());
        for (now, peer) in taken.into_iter().zip(&peers) {
            kubeconfigs.push(match now? {
                Some(text) => text,
                None => cx.shared(key(peer), || peer.kubeconfig(cx))?,
            });
        }
        let mut secrets = Vec::new();
        let mut files_of_secret = BTreeMap::new();
        for (kubeconfig, peer) in kubeconfigs.iter().zip(&peers) {
            let kubeconfig = &**kubeconfig;
            let peer_cluster = &t.clusters[peer.cluster];
            if kubeconfig_secret.is_some() {
                files_of_secret.insert(
                    format!("{}.yaml", peer_cluster.name),
                    kubeconfig.to_string(),
                );
                continue;
            }
            let mut string_data = BTreeMap::new();
            string_data.insert(peer_cluster.name.as_str(), kubeconfig.to_string());
            let (store, key) = match peer.token {
                Token::External { store, key } => (Some(secret_store_ref(store)), Some(key)),
                Token::Value(_) | Token::Exec(_) | Token::Missing => (None, None),
            };
            secrets.push(Secret {
                name: format!("istio-remote-secret-{}", peer_cluster.name),
                peer: &peer_cluster.name,
                string_data,
                external: store.is_some(),
                store_kind: store.map(|(kind, _)| kind),
                store_name: store.map(|(_, name)| name),
                key: key.map(String::as_str),
            });
        }
        if let Some(secret_name) = kubeconfig_secret {
            if files_of_secret.is_empty() {
                return Ok(());
            }
            return files.object(
                cx,
                "remote-kubeconfigs.yaml",
                "remote-kubeconfigs.yaml.j2",
                &With {
                    common: cx.common,
                    extra: KubeconfigsCx {
                        secret_name,
                        files: files_of_secret,
                    },
                },
                true,
            );
        }
        if secrets.is_empty() {
            return Ok(());
        }
        let private = secrets.iter().any(|s| !s.external);
        files.object(
            cx,
            "remote-secrets.yaml",
            "remote-secrets.yaml.j2",
            &With {
                common: cx.common,
                extra: Cx { secrets },
            },
            private,
        )
    }
}
