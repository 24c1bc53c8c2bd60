//! `services.yaml`: the mesh's Services (namespace sameness), so that a service's name
//! resolves in every cluster that gets it, with the `global` label and the
//! traffic-distribution annotation where set.
//!
//! Its context has no cluster in it: clusters that get the same services get the same bytes,
//! so it is rendered (and checked) once per distinct set and shared, not once per cluster.
//! At 200 clusters and 2,000 services that is the difference between one render and 200.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ClusterCx, ClusterEmitter, Files};
use crate::istio::SYSTEM_NAMESPACE;
use crate::model::Model;
use crate::render::RenderError;
use crate::topology::{Dataplane, Distribution};

#[derive(Debug)]
pub struct Services;

#[derive(Serialize)]
#[allow(clippy::struct_field_names)] // the template's names: port, target_port
struct Port<'a> {
    name: &'a str,
    port: u32,
    target_port: u32,
    protocol: &'static str,
    app_protocol: Option<&'a String>,
}

#[derive(Serialize)]
struct Service<'a> {
    name: &'a str,
    namespace: &'a str,
    labels: BTreeMap<&'static str, &'static str>,
    annotations: BTreeMap<&'static str, &'static str>,
    selector: BTreeMap<String, String>,
    ports: Vec<Port<'a>>,
}

#[derive(Serialize)]
struct Cx<'a> {
    system_namespace: &'static str,
    services: Vec<Service<'a>>,
}

fn service(model: &Model, s: usize) -> Service<'_> {
    let t = &model.topology;
    let svc = &t.services[s];
    let mesh = &t.meshes[model.services[s].mesh.unwrap_or_default()];
    let mut labels = BTreeMap::new();
    if svc.global.is_global() && mesh.dataplane == Dataplane::Ambient {
        match mesh.istio.distribution {
            Distribution::Upstream => {
                labels.insert("istio.io/global", "true");
            }
            Distribution::Solo => {
                let scope = if svc.global.is_global_only() {
                    "global-only"
                } else {
                    "global"
                };
                labels.insert("solo.io/service-scope", scope);
            }
        }
    }
    let mut annotations = BTreeMap::new();
    if let Some(td) = svc.traffic_distribution {
        annotations.insert("networking.istio.io/traffic-distribution", td.as_str());
    }
    let selector = svc.selector.clone().unwrap_or_else(|| {
        let mut m = BTreeMap::new();
        m.insert("app".to_string(), svc.name.clone());
        m
    });
    let ports = svc
        .ports
        .iter()
        .map(|port| Port {
            name: &port.name,
            port: port.port,
            target_port: port.target_port.unwrap_or(port.port),
            protocol: port
                .protocol
                .map_or("TCP", crate::topology::PortProtocol::as_str),
            app_protocol: port.app_protocol.as_ref(),
        })
        .collect();
    Service {
        name: &svc.name,
        namespace: &svc.namespace,
        labels,
        annotations,
        selector,
        ports,
    }
}

impl ClusterEmitter for Services {
    fn emit(&self, cx: &ClusterCx<'_>, files: &mut Files) -> Result<(), RenderError> {
        let services = &cx.plan.services;
        if services.is_empty() {
            return Ok(());
        }
        let key = format!("services.yaml:{}", cx.plan.service_set);
        files.add_shared(cx, "services.yaml", key, || {
            let context = Cx {
                system_namespace: SYSTEM_NAMESPACE,
                services: services.iter().map(|&s| service(cx.model, s)).collect(),
            };
            cx.renderer.objects("services.yaml.j2", &context)
        })
    }
}
