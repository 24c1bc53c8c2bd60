//! `cacerts.yaml`: the cluster's intermediate CA for istiod, as the Secret `cacerts` or, with
//! `ca.secrets: external`, an ExternalSecret that fetches it (no key material in `out/`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::{ClusterCx, ClusterEmitter, Files};
use crate::istio::{CACERTS_KEYS, SYSTEM_NAMESPACE, external_key, secret_store_ref};
use crate::render::RenderError;
use crate::topology::SecretsMode;

#[derive(Debug)]
pub struct Cacerts;

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

impl ClusterEmitter for Cacerts {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let t = &cx.model.topology;
        let p = cx.plan;
        let mesh = &t.meshes[p.mesh];
        let cluster = &t.clusters[p.cluster];
        match mesh.ca.secrets {
            SecretsMode::Plain => {
                let Some(ca) = cx.material.cacerts(p.mesh, p.cluster) else {
                    return Ok(());
                };
                let b64 = |s: &str| STANDARD.encode(s.as_bytes());
                let context = PlainCacerts {
                    namespace: SYSTEM_NAMESPACE,
                    ca_cert: b64(&ca.ca_cert),
                    ca_key: b64(ca.ca_key),
                    cert_chain: b64(&ca.cert_chain),
                    root_cert: b64(&ca.root_cert),
                };
                files.object(cx, "cacerts.yaml", "cacerts.yaml.j2", &context, true)
            }
            SecretsMode::External => {
                let store = mesh.ca.external_store.as_deref().unwrap_or_default();
                let (store_kind, store_name) = secret_store_ref(store);
                let context = ExternalCacerts {
                    namespace: SYSTEM_NAMESPACE,
                    store_kind,
                    store_name,
                    remote_key: external_key(&cluster.name),
                    store_path: format!("{}/{}/", mesh.name, cluster.name),
                    keys: CACERTS_KEYS,
                };
                files.object(
                    cx,
                    "cacerts.yaml",
                    "cacerts-external.yaml.j2",
                    &context,
                    false,
                )
            }
        }
    }
}
