//! `istio/`: on config clusters, one file per Istio resource, `<kind>-<namespace>-<name>.yaml`:
//! the topology's DestinationRules, its `istioConfig` resources, and the mesh-wide
//! PeerAuthentication of a mesh with `mtls`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ClusterCx, ClusterEmitter, Files, With};
use crate::istio::{SYSTEM_NAMESPACE, destination_rule_spec};
use crate::render::RenderError;
use crate::topology::MtlsMode;

#[derive(Debug)]
pub struct IstioObjects;

#[derive(Serialize)]
struct Object<'a> {
    api_version: &'a str,
    kind: &'a str,
    name: &'a str,
    namespace: &'a str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    spec: serde_json::Value,
}

impl ClusterEmitter for IstioObjects {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let t = &cx.model.topology;
        let p = cx.plan;
        let none = BTreeMap::new();
        let mut objects: Vec<(String, Object<'_>)> = Vec::new();
        for &d in &p.destination_rules {
            let dr = &t.destination_rules[d];
            let Some(namespace) = cx.model.destination_rules[d].namespace.as_deref() else {
                continue;
            };
            objects.push((
                format!("istio/destinationrule-{namespace}-{}.yaml", dr.name),
                Object {
                    api_version: "networking.istio.io/v1",
                    kind: "DestinationRule",
                    name: &dr.name,
                    namespace,
                    labels: &none,
                    annotations: &none,
                    spec: destination_rule_spec(dr),
                },
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
                Object {
                    api_version: &r.api_version,
                    kind: &r.kind,
                    name: &r.metadata.name,
                    namespace: &r.metadata.namespace,
                    labels: &r.metadata.labels,
                    annotations: &r.metadata.annotations,
                    spec: serde_json::to_value(&r.spec).unwrap_or_default(),
                },
            ));
        }
        if let Some(mode) = p.peer_authentication {
            let mode = match mode {
                MtlsMode::Strict => "STRICT",
                MtlsMode::Permissive => "PERMISSIVE",
            };
            objects.push((
                format!("istio/peerauthentication-{SYSTEM_NAMESPACE}-default.yaml"),
                Object {
                    api_version: "security.istio.io/v1",
                    kind: "PeerAuthentication",
                    name: "default",
                    namespace: SYSTEM_NAMESPACE,
                    labels: &none,
                    annotations: &none,
                    spec: serde_json::json!({"mtls": {"mode": mode}}),
                },
            ));
        }
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        for (rel, extra) in objects {
            files.object(
                cx,
                &rel,
                "istio-object.yaml.j2",
                &With {
                    common: cx.common,
                    extra,
                },
                false,
            )?;
        }
        Ok(())
    }
}
