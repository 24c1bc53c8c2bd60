//! `istio/`: on config clusters, one file per Istio resource, `<kind>-<namespace>-<name>.yaml`:
//! the topology's DestinationRules, its `istioConfig` resources, and the mesh-wide
//! PeerAuthentication of a mesh with `mtls`.
//!
//! An object is the same on every config cluster it is placed on (20 primaries and 500
//! DestinationRules are 10,000 files of 500 texts), so its template sees the object alone and
//! each object is built, rendered and checked once.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ClusterCx, ClusterEmitter, Files};
use crate::istio::{SYSTEM_NAMESPACE, destination_rule_spec};
use crate::model::{MeshId, Model};
use crate::render::RenderError;
use crate::topology::MtlsMode;

#[derive(Debug)]
pub struct IstioObjects;

/// Where an object of `istio/` comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    DestinationRule(usize),
    IstioConfig(usize),
    /// The mesh-wide PeerAuthentication of a mesh with `mtls`.
    Mtls(MeshId, MtlsMode),
}

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

const NONE: &BTreeMap<String, String> = &BTreeMap::new();

impl Source {
    /// Where the object is written in a cluster's directory, and the key it is shared under.
    fn path(self, model: &Model) -> Option<(String, String)> {
        let t = &model.topology;
        Some(match self {
            Source::DestinationRule(d) => {
                let namespace = model.destination_rules[d].namespace.as_deref()?;
                (
                    format!(
                        "istio/destinationrule-{namespace}-{}.yaml",
                        t.destination_rules[d].name
                    ),
                    format!("destinationRules/{d}"),
                )
            }
            Source::IstioConfig(i) => {
                let r = &t.istio_config[i];
                (
                    format!(
                        "istio/{}-{}-{}.yaml",
                        r.kind.to_lowercase(),
                        r.metadata.namespace,
                        r.metadata.name
                    ),
                    format!("istioConfig/{i}"),
                )
            }
            Source::Mtls(mesh, _) => (
                format!("istio/peerauthentication-{SYSTEM_NAMESPACE}-default.yaml"),
                format!("meshes/{mesh}/mtls"),
            ),
        })
    }

    fn object(self, model: &Model) -> Object<'_> {
        let t = &model.topology;
        match self {
            Source::DestinationRule(d) => {
                let dr = &t.destination_rules[d];
                Object {
                    api_version: "networking.istio.io/v1",
                    kind: "DestinationRule",
                    name: &dr.name,
                    namespace: model.destination_rules[d]
                        .namespace
                        .as_deref()
                        .unwrap_or_default(),
                    labels: NONE,
                    annotations: NONE,
                    spec: destination_rule_spec(dr),
                }
            }
            Source::IstioConfig(i) => {
                let r = &t.istio_config[i];
                Object {
                    api_version: &r.api_version,
                    kind: &r.kind,
                    name: &r.metadata.name,
                    namespace: &r.metadata.namespace,
                    labels: &r.metadata.labels,
                    annotations: &r.metadata.annotations,
                    spec: serde_json::to_value(&r.spec).unwrap_or_default(),
                }
            }
            Source::Mtls(_, mode) => Object {
                api_version: "security.istio.io/v1",
                kind: "PeerAuthentication",
                name: "default",
                namespace: SYSTEM_NAMESPACE,
                labels: NONE,
                annotations: NONE,
                spec: serde_json::json!({"mtls": {"mode": match mode {
                    MtlsMode::Strict => "STRICT",
                    MtlsMode::Permissive => "PERMISSIVE",
                }}}),
            },
        }
    }
}

impl ClusterEmitter for IstioObjects {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let p = cx.plan;
        let sources = p
            .destination_rules
            .iter()
            .map(|&d| Source::DestinationRule(d))
            .chain(p.istio_config.iter().map(|&i| Source::IstioConfig(i)))
            .chain(p.peer_authentication.map(|mode| Source::Mtls(p.mesh, mode)));
        let mut objects: Vec<(String, String, Source)> = sources
            .filter_map(|s| s.path(cx.model).map(|(rel, key)| (rel, key, s)))
            .collect();
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        for (rel, key, source) in objects {
            files.add_shared(cx, &rel, format!("istio-object:{key}"), || {
                cx.renderer
                    .objects("istio-object.yaml.j2", &source.object(cx.model))
            })?;
        }
        Ok(())
    }
}
