//! `namespaces.yaml`: the system namespace with the cluster's network (and, on a remote, the
//! primary that serves it), and every application namespace labelled for its data plane.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ClusterCx, ClusterEmitter, Files, With};
use crate::plan::Flavour;
use crate::render::RenderError;

#[derive(Debug)]
pub struct Namespaces;

#[derive(Serialize)]
struct Namespace<'a> {
    name: &'a str,
    labels: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct Cx<'a> {
    namespaces: Vec<Namespace<'a>>,
    control_plane_clusters: Option<&'a str>,
}

impl ClusterEmitter for Namespaces {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let t = &cx.model.topology;
        let p = cx.plan;
        let revision = cx.common.revision.as_str();
        let namespaces = p
            .namespaces
            .iter()
            .map(|(name, dataplane)| {
                let mut labels = BTreeMap::new();
                if *dataplane {
                    match p.flavour {
                        Flavour::Ambient | Flavour::SoloAmbient => {
                            labels.insert("istio.io/dataplane-mode", "ambient".to_string());
                        }
                        Flavour::Sidecar if revision.is_empty() => {
                            labels.insert("istio-injection", "enabled".to_string());
                        }
                        Flavour::Sidecar => {
                            labels.insert("istio.io/rev", revision.to_string());
                        }
                    }
                }
                Namespace { name, labels }
            })
            .collect();
        let extra = Cx {
            namespaces,
            control_plane_clusters: p.served_by.map(|s| t.clusters[s].name.as_str()),
        };
        files.object(
            cx,
            "namespaces.yaml",
            "namespaces.yaml.j2",
            &With {
                common: cx.common,
                extra,
            },
            false,
        )
    }
}
