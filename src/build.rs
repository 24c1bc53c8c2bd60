//! What each cluster's directory holds, rendered from the model and the key material.
//!
//! This stage decides the files and their contexts; templates (`render.rs`) decide the bytes
//! and `emit.rs` puts them on disk. Output is deterministic: clusters and files in a fixed
//! order, base64 of fixed PEM encodings, no timestamps.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::emit::Output;
use crate::model::Model;
use crate::pki::Material;
use crate::render::{RenderError, Renderer};
use crate::topology::SecretsMode;

/// The namespace of the control plane; `cacerts` lives here.
pub const SYSTEM_NAMESPACE: &str = "istio-system";

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

/// Renders every cluster's files.
pub fn render(
    model: &Model,
    material: &Material,
    renderer: &Renderer,
) -> Result<Output, RenderError> {
    let t = &model.topology;
    let mut output = Output::default();
    for (c, cluster) in t.clusters.iter().enumerate() {
        let info = &model.clusters[c];
        let Some(mi) = info.mesh.filter(|_| !info.duplicate) else {
            continue;
        };
        let mesh = &t.meshes[mi];
        let path = format!("{}/cacerts.yaml", cluster.name);
        match mesh.ca.secrets {
            SecretsMode::Plain => {
                let Some(ca) = material.cacerts(mi, c) else {
                    continue;
                };
                let b64 = |s: &str| STANDARD.encode(s.as_bytes());
                let text = renderer.objects(
                    "cacerts.yaml.j2",
                    &PlainCacerts {
                        namespace: SYSTEM_NAMESPACE,
                        ca_cert: b64(&ca.ca_cert),
                        ca_key: b64(ca.ca_key),
                        cert_chain: b64(&ca.cert_chain),
                        root_cert: b64(&ca.root_cert),
                    },
                )?;
                output.add(path, text.into_bytes(), true);
            }
            SecretsMode::External => {
                let store = mesh.ca.external_store.as_deref().unwrap_or_default();
                let (store_kind, store_name) = secret_store_ref(store);
                let text = renderer.objects(
                    "cacerts-external.yaml.j2",
                    &ExternalCacerts {
                        namespace: SYSTEM_NAMESPACE,
                        store_kind,
                        store_name,
                        remote_key: external_key(&cluster.name),
                        store_path: format!("{}/{}/", mesh.name, cluster.name),
                        keys: CACERTS_KEYS,
                    },
                )?;
                output.add(path, text.into_bytes(), false);
            }
        }
    }
    Ok(output)
}
