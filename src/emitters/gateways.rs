//! The ambient east-west Gateway istiod deploys (`eastwest-gateway.yaml`), and on Solo's
//! distribution one `istio-remote` Gateway per linked network (`peer-gateways.yaml`).
//!
//! Upstream: `samples/multicluster/gen-eastwest-gateway.sh --ambient` (class
//! `istio-east-west`, listener `mesh` 15008 HBONE, TLS terminated as ISTIO_MUTUAL; the
//! Gateway API `v1beta1` before 1.29). Solo: `istioctl multicluster expose --generate` and
//! `istioctl multicluster link --generate`. The Service istiod creates for a Gateway takes its
//! type from the `networking.istio.io/service-type` annotation and its annotations from
//! `spec.infrastructure.annotations`. Sidecar meshes install their east-west gateway from the
//! chart (`install.rs`), or, with `form: gateway-api`, as a Gateway of class `istio` with TLS
//! passthrough listeners written here (and `TLSRoute`s to istiod in `expose_istiod.rs`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::context::service_type;
use super::{ClusterCx, ClusterEmitter, Files, Produced, Role, With};
use crate::istio::{SOLO_EAST_WEST_NAME, SOLO_GATEWAY_NAMESPACE, SYSTEM_NAMESPACE};
use crate::plan::EastWest;
use crate::render::RenderError;

#[derive(Debug)]
pub struct EastWestGateway;

#[derive(Debug)]
pub struct PeerGateways;

#[derive(Serialize)]
struct Listener {
    name: &'static str,
    port: u16,
    protocol: &'static str,
    hostname: Option<&'static str>,
    tls_mode: &'static str,
    tls_options: BTreeMap<&'static str, &'static str>,
}

fn listener(name: &'static str, port: u16, protocol: &'static str, mode: &'static str) -> Listener {
    Listener {
        name,
        port,
        protocol,
        hostname: None,
        tls_mode: mode,
        tls_options: BTreeMap::new(),
    }
}

/// The listener names of a sidecar mesh's Gateway API east-west gateway, which the
/// `TLSRoute`s of `expose-istiod.yaml` attach to.
pub const PASSTHROUGH_XDS_LISTENER: &str = "tls-istiod";
pub const PASSTHROUGH_WEBHOOK_LISTENER: &str = "tls-webhook";
/// The east-west Gateway's name, as the chart's release and Istio's scripts name it.
pub const EAST_WEST_NAME: &str = "istio-eastwestgateway";

#[derive(Serialize)]
struct Address {
    #[serde(rename = "type")]
    kind: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Gateway {
    api_version: &'static str,
    name: String,
    namespace: &'static str,
    class: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expose_istiod: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
    labels: BTreeMap<&'static str, String>,
    annotations: BTreeMap<&'static str, String>,
    infrastructure_annotations: BTreeMap<String, String>,
    addresses: Vec<Address>,
    listeners: Vec<Listener>,
}

#[derive(Serialize)]
struct One {
    gateway: Gateway,
}

#[derive(Serialize)]
struct Many {
    gateways: Vec<Gateway>,
}

/// Adds a file of Gateway API objects.
fn add(
    cx: &ClusterCx<'_>,
    files: &mut Files,
    rel: &str,
    template: &str,
    context: &impl crate::render::Context,
) -> Result<(), RenderError> {
    let text = cx.renderer.objects(template, context)?;
    files.add(Produced {
        rel: rel.to_string(),
        bytes: text.into_bytes().into(),
        private: false,
        role: Role::Applied,
        gateway_api: true,
    })
}

impl ClusterEmitter for EastWestGateway {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let p = cx.plan;
        let t = &cx.model.topology;
        let mesh = &t.meshes[p.mesh];
        let east_west = t.clusters[p.cluster].east_west_gateway.as_ref();
        let mut labels = BTreeMap::new();
        labels.insert("topology.istio.io/network", p.network.clone());
        if !mesh.istio.revision.is_empty() {
            labels.insert("istio.io/rev", mesh.istio.revision.clone());
        }
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "networking.istio.io/service-type",
            service_type(east_west.map(|g| g.service_type).unwrap_or_default()).to_string(),
        );
        let infrastructure_annotations =
            east_west.map(|g| g.annotations.clone()).unwrap_or_default();
        let gateway = match p.east_west {
            None | Some(EastWest::Chart) => return Ok(()),
            Some(EastWest::Passthrough) => {
                // Istio registers a Gateway labelled with its network as that network's
                // gateway, and treats its TLS listener on 15443 as AUTO_PASSTHROUGH
                // (istio/istio 1.30.3 pilot/pkg/serviceregistry/kube/conversion.go,
                // IsAutoPassthrough); the label also reaches the Service istiod deploys
                // (gatewaycommon/deploymentcontroller.go), which is how the network learns
                // the gateway's address. Without a second network there is nothing to pass
                // through on 15443, and no label to set.
                let mut listeners = Vec::new();
                if p.multi_network {
                    let mut cross = listener("tls-passthrough", 15443, "TLS", "Passthrough");
                    cross.hostname = Some("*.local");
                    listeners.push(cross);
                } else {
                    labels.remove("topology.istio.io/network");
                }
                if p.serves_remotes {
                    listeners.push(listener(
                        PASSTHROUGH_XDS_LISTENER,
                        15012,
                        "TLS",
                        "Passthrough",
                    ));
                    listeners.push(listener(
                        PASSTHROUGH_WEBHOOK_LISTENER,
                        crate::istio::WEBHOOK_PORT,
                        "TLS",
                        "Passthrough",
                    ));
                }
                Gateway {
                    api_version: "gateway.networking.k8s.io/v1",
                    name: EAST_WEST_NAME.to_string(),
                    namespace: SYSTEM_NAMESPACE,
                    class: "istio",
                    expose_istiod: Some(p.serves_remotes),
                    peer: None,
                    labels,
                    annotations,
                    infrastructure_annotations,
                    addresses: Vec::new(),
                    listeners,
                }
            }
            Some(EastWest::Solo) => {
                let mut listeners = vec![listener("cross-network", 15008, "HBONE", "Passthrough")];
                // Only a cluster with an istiod exposes it (xDS on 15012) to peers and remotes.
                if p.primary {
                    labels.insert("istio.io/expose-istiod", "15012".to_string());
                    listeners.push(listener("xds-tls", 15012, "TLS", "Passthrough"));
                }
                Gateway {
                    api_version: "gateway.networking.k8s.io/v1",
                    name: SOLO_EAST_WEST_NAME.to_string(),
                    namespace: SOLO_GATEWAY_NAMESPACE,
                    class: "istio-eastwest",
                    expose_istiod: Some(p.primary),
                    peer: None,
                    labels,
                    annotations,
                    infrastructure_annotations,
                    addresses: Vec::new(),
                    listeners,
                }
            }
            Some(EastWest::GatewayApi) => {
                let mut mesh_listener = listener("mesh", 15008, "HBONE", "Terminate");
                mesh_listener
                    .tls_options
                    .insert("gateway.istio.io/tls-terminate-mode", "ISTIO_MUTUAL");
                Gateway {
                    api_version: if mesh.istio.version.minor() >= 29 {
                        "gateway.networking.k8s.io/v1"
                    } else {
                        "gateway.networking.k8s.io/v1beta1"
                    },
                    name: EAST_WEST_NAME.to_string(),
                    namespace: SYSTEM_NAMESPACE,
                    class: "istio-east-west",
                    expose_istiod: Some(false),
                    peer: None,
                    labels,
                    annotations,
                    infrastructure_annotations,
                    addresses: Vec::new(),
                    listeners: vec![mesh_listener],
                }
            }
        };
        add(
            cx,
            files,
            "eastwest-gateway.yaml",
            "eastwest-gateway.yaml.j2",
            &With {
                common: cx.common,
                extra: One { gateway },
            },
        )
    }
}

impl ClusterEmitter for PeerGateways {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let p = cx.plan;
        if p.east_west != Some(EastWest::Solo) {
            return Ok(());
        }
        let t = &cx.model.topology;
        let mut gateways = Vec::new();
        for &l in &p.linked {
            let peer = &t.clusters[l];
            let Some(address) = peer
                .east_west_gateway
                .as_ref()
                .and_then(|g| g.address.as_ref())
            else {
                continue;
            };
            let address = if address.parse::<std::net::IpAddr>().is_ok() {
                Address {
                    kind: "IPAddress",
                    value: address.clone(),
                }
            } else {
                Address {
                    kind: "Hostname",
                    value: address.trim_end_matches('.').to_ascii_lowercase(),
                }
            };
            let mut labels = BTreeMap::new();
            labels.insert("topology.istio.io/network", peer.network.clone());
            let mut annotations = BTreeMap::new();
            annotations.insert(
                "gateway.istio.io/service-account",
                SOLO_EAST_WEST_NAME.to_string(),
            );
            annotations.insert(
                "gateway.istio.io/trust-domain",
                cx.model.trust_domain(l).to_string(),
            );
            gateways.push(Gateway {
                api_version: "gateway.networking.k8s.io/v1",
                name: format!("istio-remote-peer-{}", peer.network),
                namespace: SOLO_GATEWAY_NAMESPACE,
                class: "istio-remote",
                expose_istiod: None,
                peer: Some(peer.name.clone()),
                labels,
                annotations,
                infrastructure_annotations: BTreeMap::new(),
                addresses: vec![address],
                listeners: vec![
                    listener("cross-network", 15008, "HBONE", "Passthrough"),
                    listener("xds-tls", 15012, "TLS", "Passthrough"),
                ],
            });
        }
        if gateways.is_empty() {
            return Ok(());
        }
        add(
            cx,
            files,
            "peer-gateways.yaml",
            "peer-gateways.yaml.j2",
            &With {
                common: cx.common,
                extra: Many { gateways },
            },
        )
    }
}
