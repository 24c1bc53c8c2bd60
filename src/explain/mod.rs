//! `meshc explain`: where a request from one proxy to one service goes, computed offline from
//! the topology, the way istiod computes it for that proxy.
//!
//! Nothing here is new policy: the service's placement gives the endpoints (one group per
//! cluster and zone), [`Model::reaches`] says which of them the source can reach at all
//! (same network, another network's east-west gateway, never another mesh), the effective
//! traffic policy of the DestinationRule (port-level and subset settings merged as Istio merges
//! them) gives the locality setting, and [`lb`] applies it with Istio's own algorithm
//! (`pilot/pkg/networking/core/loadbalancer/loadbalancer.go`, tag 1.30.0). What the topology
//! cannot know (pod labels beyond the selector, replica counts, health) is assumed and said in
//! `notes`: every group counts as one endpoint, and every endpoint is healthy unless `--down`
//! removes it, so each priority level is taken whole or not at all.
//!
//! The computation ([`explain`]) is separate from the formatting ([`render`]); validation reuses
//! the same reachability facts (`validate/reachability.rs`).

pub mod lb;
mod policy;
pub mod render;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{ClusterId, Model, Reach, ServiceId};
use crate::suggest::did_you_mean;
use crate::validate::parse_locality;

pub use policy::Effective;

/// What `meshc explain` is asked.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `NAMESPACE/NAME`.
    pub service: String,
    /// `CLUSTER` or `CLUSTER/ZONE`.
    pub from: String,
    pub port: Option<u32>,
    pub subset: Option<String>,
    /// Cluster names or locality patterns (`region`, `region/zone`, `region/*`).
    pub down: Vec<String>,
}

/// The answer, in the shape EXPLAIN.md fixes for `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub service: String,
    pub port: u32,
    pub source: Source,
    #[serde(rename = "destinationRule")]
    pub destination_rule: Option<String>,
    pub mode: Mode,
    pub down: Vec<String>,
    pub levels: Vec<Level>,
    pub unreachable: Vec<Unreachable>,
    /// What the topology could not tell, and what was assumed instead.
    pub notes: Vec<String>,
}

impl Explanation {
    /// Whether any endpoint receives traffic (exit 0) or none (exit 1).
    pub fn reachable(&self) -> bool {
        !self.levels.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub cluster: String,
    pub locality: String,
    pub network: String,
}

/// Which part of Istio's locality load balancing decided the levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    Distribute,
    Failover,
    FailoverPriority,
    Spread,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Distribute => "distribute",
            Mode::Failover => "failover",
            Mode::FailoverPriority => "failoverPriority",
            Mode::Spread => "spread",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub priority: u32,
    pub groups: Vec<Group>,
}

/// One cluster's endpoints in one locality, and its share of the level's requests.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub cluster: String,
    pub locality: String,
    pub network: String,
    pub share_percent: f64,
    pub via_gateway: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unreachable {
    pub cluster: String,
    pub reason: String,
}

/// One endpoint group before load balancing: a cluster in one of its zones.
#[derive(Debug, Clone)]
struct Endpoint {
    cluster: ClusterId,
    locality: lb::Loc,
    via_gateway: bool,
    labels: BTreeMap<String, String>,
}

/// Answers the query, or says which argument names nothing (E100 to E102; no position: the
/// problem is on the command line, not in the file).
pub fn explain(model: &Model, q: &Query) -> Result<Explanation, Diagnostic> {
    let svc = find_service(model, &q.service)?;
    let (source, zone) = find_source(model, &q.from)?;
    let port = find_port(model, svc, q.port)?;
    let effective = policy::effective(model, svc, source, port, q.subset.as_deref())?;
    let down = find_down(model, &q.down)?;
    let mut notes = effective.notes.clone();
    notes.extend(resolution_note(model, svc, source));
    let src_loc = lb::Loc::new(
        model.topology.clusters[source]
            .region
            .as_deref()
            .unwrap_or(""),
        zone.as_deref().unwrap_or(""),
        "",
    );
    let (endpoints, unreachable) = endpoints(model, svc, source, &down, &effective, &mut notes);
    let proxy = labels_of(model, source, &src_loc, &BTreeMap::new());
    let levels = levels(model, &endpoints, &src_loc, &proxy, &effective, &mut notes);
    let t = &model.topology;
    let service = &t.services[svc];
    Ok(Explanation {
        service: format!("{}/{}", service.namespace, service.name),
        port,
        source: Source {
            cluster: t.clusters[source].name.clone(),
            locality: src_loc.to_string(),
            network: t.clusters[source].network.clone(),
        },
        destination_rule: effective.rule.map(|d| {
            let ns = model.destination_rules[d]
                .namespace
                .clone()
                .unwrap_or_else(|| service.namespace.clone());
            format!("{ns}/{}", t.destination_rules[d].name)
        }),
        mode: effective.mode_for(&src_loc),
        down: q.down.clone(),
        levels,
        unreachable,
        notes,
    })
}

/// A service with `callers` has no Service object in other clusters: its name resolves there
/// only through DNS capture (sidecar `dns.capture`, or ambient's).
fn resolution_note(model: &Model, svc: ServiceId, source: ClusterId) -> Option<String> {
    let info = &model.services[svc];
    let callers = info.callers.as_ref()?;
    if callers.contains(&source) || info.clusters.contains(&source) {
        return None;
    }
    let mesh = &model.topology.meshes[info.mesh?];
    let captured = mesh.dns.capture || mesh.dataplane == crate::topology::Dataplane::Ambient;
    let t = &model.topology;
    let (s, c) = (&t.services[svc], &t.clusters[source].name);
    Some(if captured {
        format!(
            "`{c}` is not among the `callers` of `{}`: it has no Service object there, and its name resolves through DNS capture",
            s.name
        )
    } else {
        format!(
            "`{c}` is not among the `callers` of `{}`: it has no Service object there, so its name does not resolve (list the cluster in `callers`, or turn on `dns.capture`)",
            s.name
        )
    })
}

fn query_error(code: Code, message: String, help: String) -> Diagnostic {
    Diagnostic::error(code, message).with_help(help)
}

fn find_service(model: &Model, name: &str) -> Result<ServiceId, Diagnostic> {
    let t = &model.topology;
    let all: Vec<String> = t
        .services
        .iter()
        .map(|s| format!("{}/{}", s.namespace, s.name))
        .collect();
    if let Some(i) = all.iter().position(|s| s == name) {
        return Ok(i);
    }
    let help = match did_you_mean(name, all.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None if all.is_empty() => "the topology declares no services".to_string(),
        None => format!("name it as NAMESPACE/NAME: {}", all.join(", ")),
    };
    Err(query_error(
        Code::ExplainUnknownService,
        format!("no service `{name}` in the topology"),
        help,
    ))
}

/// The source cluster and its zone: the one given, else the cluster's first.
fn find_source(model: &Model, from: &str) -> Result<(ClusterId, Option<String>), Diagnostic> {
    let t = &model.topology;
    let (name, zone) = match from.split_once('/') {
        Some((c, z)) => (c, Some(z)),
        None => (from, None),
    };
    let Some(c) = t
        .clusters
        .iter()
        .position(|c| c.name == name)
        .filter(|&c| !model.clusters[c].duplicate)
    else {
        let names: Vec<&str> = t.clusters.iter().map(|c| c.name.as_str()).collect();
        let help = did_you_mean(name, names.iter().copied()).map_or_else(
            || {
                format!(
                    "write CLUSTER or CLUSTER/ZONE; clusters: {}",
                    names.join(", ")
                )
            },
            |s| format!("did you mean `{s}`?"),
        );
        return Err(query_error(
            Code::ExplainUnknownSource,
            format!("no cluster `{name}` in the topology"),
            help,
        ));
    };
    let zones = &t.clusters[c].zones;
    match zone {
        None => Ok((c, zones.first().cloned())),
        Some(z) if zones.iter().any(|x| x == z) => Ok((c, Some(z.to_string()))),
        Some(z) => {
            let help = if zones.is_empty() {
                format!("cluster `{name}` lists no zones: write `--from {name}`")
            } else {
                format!("its zones: {}", zones.join(", "))
            };
            Err(query_error(
                Code::ExplainUnknownSource,
                format!("cluster `{name}` has no zone `{z}`"),
                help,
            ))
        }
    }
}

fn find_port(model: &Model, svc: ServiceId, port: Option<u32>) -> Result<u32, Diagnostic> {
    let service = &model.topology.services[svc];
    let ports: Vec<String> = service.ports.iter().map(|p| p.port.to_string()).collect();
    match port {
        None => Ok(service.ports.first().map_or(0, |p| p.port)),
        Some(p) if service.ports.iter().any(|x| x.port == p) => Ok(p),
        Some(p) => Err(query_error(
            Code::ExplainUnknownArgument,
            format!("service `{}` has no port {p}", service.name),
            format!("its ports: {}", ports.join(", ")),
        )),
    }
}

/// What `--down` removes: clusters by name, and locality patterns.
#[derive(Debug, Default)]
struct Down {
    clusters: Vec<ClusterId>,
    localities: Vec<String>,
}

impl Down {
    fn covers(&self, c: ClusterId, locality: &lb::Loc) -> bool {
        self.clusters.contains(&c)
            || self
                .localities
                .iter()
                .any(|p| lb::locality_match(Some(locality), p))
    }
}

fn find_down(model: &Model, down: &[String]) -> Result<Down, Diagnostic> {
    let t = &model.topology;
    let mut out = Down::default();
    for d in down {
        if let Some(c) = t.clusters.iter().position(|c| &c.name == d) {
            out.clusters.push(c);
            continue;
        }
        match parse_locality(d) {
            Ok(l) if l.matches_catalogue(&model.catalogue) => out.localities.push(d.clone()),
            _ => {
                let names: Vec<&str> = t.clusters.iter().map(|c| c.name.as_str()).collect();
                let help = did_you_mean(d, names.iter().copied()).map_or_else(
                    || "name a cluster, or a locality of the topology (`region`, `region/zone`, `region/*`)".to_string(),
                    |s| format!("did you mean `{s}`?"),
                );
                return Err(query_error(
                    Code::ExplainUnknownArgument,
                    format!("`--down {d}` names no cluster and no locality of the topology"),
                    help,
                ));
            }
        }
    }
    Ok(out)
}

/// The labels istiod gives an endpoint or proxy (`AugmentLabels`): network, cluster, region
/// and zone, on top of the workload's own (for endpoints, the service's selector).
fn labels_of(
    model: &Model,
    c: ClusterId,
    locality: &lb::Loc,
    own: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let cluster = &model.topology.clusters[c];
    let mut labels = own.clone();
    labels.insert(lb::NETWORK.into(), cluster.network.clone());
    labels.insert(lb::CLUSTER.into(), cluster.name.clone());
    if !locality.region.is_empty() {
        labels.insert(lb::REGION.into(), locality.region.clone());
    }
    if !locality.zone.is_empty() {
        labels.insert(lb::ZONE.into(), locality.zone.clone());
    }
    labels
}

/// Every endpoint group the source can reach (one per cluster and zone the service runs in,
/// minus what is down and what the subset leaves out), and the clusters it cannot reach.
fn endpoints(
    model: &Model,
    svc: ServiceId,
    source: ClusterId,
    down: &Down,
    effective: &Effective,
    notes: &mut Vec<String>,
) -> (Vec<Endpoint>, Vec<Unreachable>) {
    let t = &model.topology;
    let service = &t.services[svc];
    let selector = service
        .selector
        .clone()
        .unwrap_or_else(|| BTreeMap::from([("app".to_string(), service.name.clone())]));
    let mut out = Vec::new();
    let mut unreachable = Vec::new();
    let mut left_out_by_subset = 0;
    let gateways = model.gateway_networks();
    for &c in &model.services[svc].clusters {
        let cluster = &t.clusters[c];
        if model.clusters[c].duplicate {
            continue;
        }
        let via_gateway = match model.reaches(&gateways, source, c, svc) {
            Reach::Direct => false,
            Reach::Gateway => true,
            Reach::Never(reason) => {
                unreachable.push(Unreachable {
                    cluster: cluster.name.clone(),
                    reason,
                });
                continue;
            }
        };
        let region = cluster.region.as_deref().unwrap_or("");
        let zones: Vec<&str> = if cluster.zones.is_empty() {
            vec![""]
        } else {
            cluster.zones.iter().map(String::as_str).collect()
        };
        for z in zones {
            let locality = lb::Loc::new(region, z, "");
            if down.covers(c, &locality) {
                continue;
            }
            let labels = labels_of(model, c, &locality, &selector);
            if !effective.subset_selects(&labels) {
                left_out_by_subset += 1;
                continue;
            }
            out.push(Endpoint {
                cluster: c,
                locality,
                via_gateway,
                labels,
            });
        }
    }
    if out.is_empty() && left_out_by_subset > 0 {
        notes.extend(effective.subset_note());
    }
    (out, unreachable)
}

/// Load balancing over the endpoints, as istiod does it for the source proxy, then one level
/// per priority with each group's share of that level.
fn levels(
    model: &Model,
    endpoints: &[Endpoint],
    source: &lb::Loc,
    proxy: &BTreeMap<String, String>,
    effective: &Effective,
    notes: &mut Vec<String>,
) -> Vec<Level> {
    // istiod groups endpoints by locality, whatever their cluster.
    let mut by_locality: Vec<lb::Group> = Vec::new();
    for (i, e) in endpoints.iter().enumerate() {
        let ep = lb::Endpoint {
            tag: i,
            labels: e.labels.clone(),
            weight: 1,
        };
        match by_locality
            .iter_mut()
            .find(|g| g.locality.as_ref() == Some(&e.locality))
        {
            Some(g) => {
                g.endpoints.push(ep);
                g.weight = Some(g.weight.unwrap_or(0) + 1);
            }
            None => by_locality.push(lb::Group::new(Some(e.locality.clone()), vec![ep])),
        }
    }
    if let Some(setting) = &effective.setting {
        lb::apply(
            &mut by_locality,
            source,
            proxy,
            setting,
            effective.enable_failover,
        );
    }
    let localities: Vec<lb::Loc> = by_locality
        .iter()
        .filter_map(|g| g.locality.clone())
        .collect();
    let reasons = policy::Reasons::new(effective, source, proxy, localities);
    let mut levels: BTreeMap<u32, Vec<(usize, f64)>> = BTreeMap::new();
    for g in &by_locality {
        let inside: u32 = g.endpoints.iter().map(|e| e.weight).sum();
        for e in &g.endpoints {
            let weight =
                f64::from(g.weight.unwrap_or(0)) * f64::from(e.weight) / f64::from(inside.max(1));
            levels.entry(g.priority).or_default().push((e.tag, weight));
        }
    }
    let kept: std::collections::BTreeSet<usize> = by_locality
        .iter()
        .flat_map(|g| g.endpoints.iter().map(|e| e.tag))
        .collect();
    for (i, e) in endpoints.iter().enumerate() {
        if !kept.contains(&i) {
            notes.push(format!(
                "{} ({}) receives nothing: no `distribute.to` pattern covers it",
                model.topology.clusters[e.cluster].name, e.locality
            ));
        }
    }
    levels
        .into_values()
        .zip(0..)
        .map(|(mut members, priority)| {
            members.sort_by_key(|(tag, _)| (endpoints[*tag].cluster, *tag));
            let total: f64 = members.iter().map(|(_, w)| w).sum();
            let groups = members
                .into_iter()
                .map(|(tag, w)| {
                    let e = &endpoints[tag];
                    let cluster = &model.topology.clusters[e.cluster];
                    Group {
                        cluster: cluster.name.clone(),
                        locality: e.locality.to_string(),
                        network: cluster.network.clone(),
                        share_percent: percent(w, total),
                        via_gateway: e.via_gateway,
                        reason: reasons.of(&e.locality, &e.labels),
                    }
                })
                .collect();
            Level { priority, groups }
        })
        .collect()
}

/// A share in percent, to two decimals.
fn percent(weight: f64, total: f64) -> f64 {
    if total <= 0.0 {
        return 0.0;
    }
    (weight / total * 10_000.0).round() / 100.0
}

#[cfg(test)]
mod tests;
