//! Services with `callers`: configuration written where no proxy calls the service.
//!
//! A service that names its `callers` has its Service object only on the clusters that run or
//! call it. Configuration for it is still placed by the rule's own placement, by default on
//! every config cluster of the mesh. A config cluster configures its own proxies and those of
//! the remotes it serves; when none of those clusters runs or calls the service, no proxy it
//! configures ever sends to it, and a DestinationRule for it there does nothing. That is
//! almost always a caller missing from the list (whose calls then lack the rule, and the
//! name), or a rule placed more widely than meant, so it is said (W042).
//!
//! An ingress gateway routes to a service without resolving its name (istiod builds the route
//! from the registry it reads from every cluster it discovers), so a cluster whose ingress
//! gateway routes to the service (a VirtualService or Gateway API route placed on its config
//! cluster names it) calls the service without needing its Service: such a config cluster is
//! not warned about, and the gateway's cluster does not need to be listed in `callers`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::diagnostic::{Code, Reporter};
use crate::model::{ClusterId, Model, ServiceId};
use crate::path;

pub fn run(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    if m.services.iter().all(|s| s.callers.is_none()) {
        return;
    }
    let routed = gateway_routes(m);
    for (di, dr) in t.destination_rules.iter().enumerate() {
        let info = &m.destination_rules[di];
        let Some(s) = info.service else { continue };
        let svc = &m.services[s];
        let Some(callers) = &svc.callers else {
            continue;
        };
        // The config clusters whose proxies call the service: those of the clusters that run
        // or call it, and those whose ingress gateways route to it.
        let useful: BTreeSet<ClusterId> = svc
            .clusters
            .iter()
            .chain(callers)
            .filter_map(|&c| config_cluster(m, c))
            .chain(routed.get(&s).into_iter().flatten().copied())
            .collect();
        let idle: Vec<ClusterId> = info
            .clusters
            .iter()
            .copied()
            .filter(|c| !useful.contains(c))
            .collect();
        if idle.is_empty() {
            continue;
        }
        let service = &t.services[s];
        let name = |c: ClusterId| t.clusters[c].name.as_str();
        let instead: Vec<&str> = useful.iter().map(|&c| name(c)).collect();
        let place = if instead.is_empty() {
            String::new()
        } else {
            format!(
                ", or place the rule with `clusters: [{}]`",
                instead.join(", ")
            )
        };
        let at = path!("destinationRules", di);
        if dr.clusters.is_empty() {
            let idle_names = idle
                .iter()
                .map(|&c| format!("`{}`", name(c)))
                .collect::<Vec<_>>()
                .join(", ");
            r.report(
                Code::RuleWithoutCallers,
                &at.key("host"),
                format!(
                    "destinationRule `{}` is written to {idle_names}, whose proxies never call `{}/{}`",
                    dr.name, service.namespace, service.name
                ),
            )
            .label(format!("placed on every primary, including {idle_names}"))
            .help(format!(
                "add {idle_names} to the service's `callers` if workloads there call it{place}"
            ));
        } else {
            for &c in &idle {
                let Some(pos) = dr.clusters.iter().position(|n| n == name(c)) else {
                    continue;
                };
                r.report(
                    Code::RuleWithoutCallers,
                    &at.key("clusters").index(pos),
                    format!(
                        "destinationRule `{}` is written to `{}`, whose proxies never call `{}/{}`",
                        dr.name,
                        name(c),
                        service.namespace,
                        service.name
                    ),
                )
                .label("serves no cluster that runs or calls the service")
                .help(format!(
                    "add `{}` to the service's `callers` if workloads there call it{place}",
                    name(c)
                ));
            }
        }
    }
}

/// The config cluster whose istiod configures `c`'s proxies: itself for a primary, its
/// primary for a remote.
fn config_cluster(m: &Model, c: ClusterId) -> Option<ClusterId> {
    let info = &m.clusters[c];
    if info.is_primary {
        Some(c)
    } else {
        info.primary
    }
}

/// For each service, the config clusters that serve an ingress gateway and hold a route (a
/// VirtualService, or a Gateway API route) to it.
fn gateway_routes(m: &Model) -> BTreeMap<ServiceId, BTreeSet<ClusterId>> {
    let t = &m.topology;
    let mut with_gateway: BTreeSet<ClusterId> = BTreeSet::new();
    for g in &m.ingress_gateways {
        if g.mesh.is_some() {
            with_gateway.extend(g.clusters.iter().filter_map(|&c| config_cluster(m, c)));
        }
    }
    let mut by_name: BTreeMap<(&str, &str), ServiceId> = BTreeMap::new();
    for (i, s) in t.services.iter().enumerate() {
        by_name
            .entry((s.name.as_str(), s.namespace.as_str()))
            .or_insert(i);
    }
    let mut out: BTreeMap<ServiceId, BTreeSet<ClusterId>> = BTreeMap::new();
    for (i, res) in t.istio_config.iter().enumerate() {
        let info = &m.istio_config[i];
        let on: Vec<ClusterId> = info
            .clusters
            .iter()
            .copied()
            .filter(|c| with_gateway.contains(c))
            .collect();
        if on.is_empty() {
            continue;
        }
        let namespace = res.metadata.namespace.as_str();
        let mut targets: Vec<(&str, &str)> = Vec::new();
        route_targets(&res.kind, &res.spec, namespace, &mut targets);
        for key in targets {
            if let Some(&s) = by_name.get(&key)
                && m.services[s].mesh == info.mesh
            {
                out.entry(s).or_default().extend(on.iter().copied());
            }
        }
    }
    out
}

/// The (name, namespace) of every Kubernetes service a route resource sends to.
fn route_targets<'a>(
    kind: &str,
    spec: &'a serde_json::Map<String, Json>,
    namespace: &'a str,
    out: &mut Vec<(&'a str, &'a str)>,
) {
    let list = |v: Option<&'a Json>| v.and_then(Json::as_array).into_iter().flatten();
    match kind {
        "VirtualService" => {
            for section in ["http", "tcp", "tls"] {
                for route in list(spec.get(section)) {
                    let destinations = list(route.get("route"))
                        .filter_map(|d| d.get("destination"))
                        .chain(route.get("mirror"))
                        .chain(list(route.get("mirrors")).filter_map(|d| d.get("destination")));
                    for d in destinations {
                        if let Some(host) = d.get("host").and_then(Json::as_str) {
                            out.extend(service_of_host(host, namespace));
                        }
                    }
                }
            }
        }
        "HTTPRoute" | "GRPCRoute" | "TCPRoute" | "TLSRoute" | "UDPRoute" => {
            for rule in list(spec.get("rules")) {
                for backend in list(rule.get("backendRefs")) {
                    let kind = backend.get("kind").and_then(Json::as_str);
                    if kind.is_some_and(|k| k != "Service") {
                        continue;
                    }
                    if let Some(name) = backend.get("name").and_then(Json::as_str) {
                        let ns = backend
                            .get("namespace")
                            .and_then(Json::as_str)
                            .unwrap_or(namespace);
                        out.push((name, ns));
                    }
                }
            }
        }
        _ => {}
    }
}

/// The Kubernetes service a VirtualService destination host names, as Istio reads it: a
/// short name in the resource's namespace, `name.namespace`, or
/// `name.namespace.svc[.<domain>]`.
fn service_of_host<'a>(host: &'a str, namespace: &'a str) -> Option<(&'a str, &'a str)> {
    let mut labels = host.trim_end_matches('.').split('.');
    let name = labels.next()?;
    match (labels.next(), labels.next()) {
        (None, _) => Some((name, namespace)),
        (Some(ns), None | Some("svc")) => Some((name, ns)),
        _ => None,
    }
}
