//! `kustomization.yaml`: every file the emitters before it produced for `kubectl apply -k`, in
//! the order they were produced (installer inputs are not applied).

use std::sync::Arc;

use serde::Serialize;

use super::{ClusterCx, ClusterEmitter, Files, Produced, Role, With};
use crate::render::RenderError;

#[derive(Debug)]
pub struct Kustomization;

#[derive(Serialize)]
struct Cx<'a> {
    resources: Vec<&'a str>,
}

/// The files `kubectl apply -k` applies, in order.
pub fn resources(files: &Files) -> Vec<&str> {
    files
        .produced
        .iter()
        .filter(|f| f.role == Role::Applied)
        .map(|f| f.rel.as_str())
        .collect()
}

impl ClusterEmitter for Kustomization {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        // A Kustomization is read by kustomize, not applied: it has no metadata.name to check.
        let text = cx.renderer.values(
            "kustomization.yaml.j2",
            &With {
                common: cx.common,
                extra: Cx {
                    resources: resources(files),
                },
            },
        )?;
        files.add(Produced {
            rel: "kustomization.yaml".to_string(),
            bytes: Arc::from(text.into_bytes()),
            private: false,
            role: Role::Text,
            gateway_api: false,
        })
    }
}
