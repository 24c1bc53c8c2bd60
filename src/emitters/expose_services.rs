//! `expose-services.yaml`: on the config clusters of a multi-network sidecar mesh, the
//! `cross-network-gateway` Gateway (15443, AUTO_PASSTHROUGH, `*.local`) that lets other
//! networks reach this network's services through the east-west gateway.

use super::{ClusterCx, ClusterEmitter, Files};
use crate::render::RenderError;

#[derive(Debug)]
pub struct ExposeServices;

impl ClusterEmitter for ExposeServices {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        if !cx.plan.expose_services {
            return Ok(());
        }
        files.object(
            cx,
            "expose-services.yaml",
            "expose-services.yaml.j2",
            cx.common,
            false,
        )
    }
}
