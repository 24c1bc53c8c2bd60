//! `expose-istiod.yaml`: on a sidecar primary that serves remotes, the Gateway and
//! VirtualService that pass xDS (15012) and the injection webhook (15017 -> istiod 443)
//! through its east-west gateway, revisioned as Istio's `expose-istiod-rev.yaml.tmpl` does.

use serde::Serialize;

use super::{ClusterCx, ClusterEmitter, Files, With};
use crate::istio::SYSTEM_NAMESPACE;
use crate::plan::EastWest;
use crate::render::RenderError;

#[derive(Debug)]
pub struct ExposeIstiod;

#[derive(Serialize)]
struct Cx {
    virtual_service: String,
    istiod_host: String,
    sni_hosts: Vec<String>,
}

impl ClusterEmitter for ExposeIstiod {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        // Ambient meshes expose istiod through their Gateway API gateway instead.
        if !(cx.plan.serves_remotes && cx.plan.east_west == Some(EastWest::Chart)) {
            return Ok(());
        }
        let revision = cx.common.revision.as_str();
        let extra = if revision.is_empty() {
            Cx {
                virtual_service: "istiod-vs".to_string(),
                istiod_host: format!("istiod.{SYSTEM_NAMESPACE}.svc.cluster.local"),
                sni_hosts: vec!["*".to_string()],
            }
        } else {
            Cx {
                virtual_service: format!("istiod-vs-{revision}"),
                istiod_host: format!("istiod-{revision}.{SYSTEM_NAMESPACE}.svc.cluster.local"),
                sni_hosts: vec![
                    format!("istiod-{revision}.{SYSTEM_NAMESPACE}.svc"),
                    format!("istiod-{revision}.{SYSTEM_NAMESPACE}.svc.cluster.local"),
                ],
            }
        };
        files.object(
            cx,
            "expose-istiod.yaml",
            "expose-istiod.yaml.j2",
            &With {
                common: cx.common,
                extra,
            },
            false,
        )
    }
}
