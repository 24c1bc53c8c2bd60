//! `expose-istiod.yaml`: on a sidecar primary that serves remotes, the Gateway and
//! VirtualService that pass xDS (15012) and the injection webhook (15017 -> istiod 443)
//! through its east-west gateway, revisioned as Istio's `expose-istiod-rev.yaml.tmpl` does.
//!
//! With a Gateway API east-west gateway (`form: gateway-api`) the same two passthroughs are
//! `TLSRoute`s attached to the gateway's `tls-istiod` and `tls-webhook` listeners. Istio reads
//! `TLSRoute` without `PILOT_ENABLE_ALPHA_GATEWAY_API` from 1.30, at `v1` (istio/istio 1.30.3
//! `pkg/config/schema/collections/collections.gen.go`, `pilotStableGatewayAPI`); the rules
//! refuse the form on an older primary that serves remotes. A `TLSRoute` must name the SNI
//! hostnames it passes: the names remotes dial istiod by (its Service in the remote, and the
//! gateway's DNS name where remotes' webhooks use it).

use serde::Serialize;
use serde_json::json;

use super::gateways::{EAST_WEST_NAME, PASSTHROUGH_WEBHOOK_LISTENER, PASSTHROUGH_XDS_LISTENER};
use super::{ClusterCx, ClusterEmitter, Files, Role, With};
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
        if !cx.plan.serves_remotes {
            return Ok(());
        }
        match cx.plan.east_west {
            Some(EastWest::Chart) => {}
            Some(EastWest::Passthrough) => return tls_routes(cx, files),
            // Ambient meshes expose istiod through their Gateway API gateway instead.
            _ => return Ok(()),
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

/// The two `TLSRoute`s of a Gateway API east-west gateway: xDS to istiod's 15012 and the
/// webhook to its Service port 443 (which targets 15017).
fn tls_routes(cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
    let service = cx.common.istiod_release.as_str();
    let mut hostnames = vec![
        format!("{service}.{SYSTEM_NAMESPACE}.svc"),
        format!("{service}.{SYSTEM_NAMESPACE}.svc.cluster.local"),
    ];
    if let Some(name) = cx.model.topology.clusters[cx.plan.cluster].east_west_dns_name() {
        hostnames.push(name.trim_end_matches('.').to_ascii_lowercase());
    }
    let route = |name: &str, listener: &str, port: u16| {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "TLSRoute",
            "metadata": {
                "name": name,
                "namespace": SYSTEM_NAMESPACE,
                "labels": { "app.kubernetes.io/managed-by": "meshc" },
            },
            "spec": {
                "parentRefs": [{ "name": EAST_WEST_NAME, "sectionName": listener }],
                "hostnames": hostnames,
                "rules": [{ "backendRefs": [{ "name": service, "port": port }] }],
            },
        })
    };
    let objects = [
        route(&format!("{service}-xds"), PASSTHROUGH_XDS_LISTENER, 15012),
        route(
            &format!("{service}-webhook"),
            PASSTHROUGH_WEBHOOK_LISTENER,
            443,
        ),
    ];
    files.data(
        "expose-istiod.yaml",
        "Remotes reach this primary's istiod through the east-west gateway, passed through\nuntouched: xDS on 15012, the injection webhook on 15017 (istiod's Service port 443).",
        &objects,
        Role::Applied,
        true,
    )
}
