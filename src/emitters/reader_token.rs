//! `reader-token.yaml`: on a cluster some primary watches, the token Secret of the reader
//! ServiceAccount that primary's istiod uses (what `istioctl create-remote-secret` creates).
//! Not where the primaries authenticate with an exec plugin (`remoteSecret.exec`): a
//! long-lived token is what that avoids.

use serde::Serialize;

use super::{ClusterCx, ClusterEmitter, Files, With};
use crate::inputs::watcher_names;
use crate::istio::{READER_SERVICE_ACCOUNT, READER_TOKEN_SECRET};
use crate::render::RenderError;

#[derive(Debug)]
pub struct ReaderToken;

#[derive(Serialize)]
struct Cx {
    name: &'static str,
    service_account: &'static str,
    watchers: String,
}

impl ClusterEmitter for ReaderToken {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let exec = cx.model.topology.clusters[cx.plan.cluster]
            .exec_plugin()
            .is_some();
        if !cx.plan.watched || exec {
            return Ok(());
        }
        let extra = Cx {
            name: READER_TOKEN_SECRET,
            service_account: READER_SERVICE_ACCOUNT,
            watchers: watcher_names(cx.model, cx.plan).join(", "),
        };
        files.object(
            cx,
            "reader-token.yaml",
            "reader-token.yaml.j2",
            &With {
                common: cx.common,
                extra,
            },
            false,
        )
    }
}
