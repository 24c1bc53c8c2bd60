//! Whether the traffic a topology sets up has somewhere to go: the facts `meshc explain`
//! computes for one source, checked here for every client at once. A client reaches a cluster's
//! endpoints directly on its own network, through the east-west gateway of another network, and
//! never in another mesh or, in an ambient mesh, outside its own cluster for a service that is
//! not global ([`Model::reaches`]).
//!
//! W063 already says when a `distribute` target has no endpoints at all; W104 is the case it
//! cannot see, endpoints that exist but that the clients in `from` cannot reach.

use serde_json::{Map, Value as Json};

use crate::diagnostic::{Code, Reporter};
use crate::explain::lb::{Loc, locality_match};
use crate::model::{ClusterId, Model, Reach, ServiceId};
use crate::path;
use crate::span::Path;

/// The model and what every check shares: which networks have an east-west gateway.
struct Ctx<'m> {
    m: &'m Model,
    gateways: Vec<bool>,
}

pub fn run(m: &Model, r: &mut Reporter<'_>) {
    let ctx = Ctx {
        m,
        gateways: m.gateway_networks(),
    };
    for si in 0..m.topology.services.len() {
        unreachable_service(&ctx, si, r);
    }
    for (di, info) in m.destination_rules.iter().enumerate() {
        let Some(svc) = info.service else { continue };
        let at = path!("destinationRules", di);
        for (lb_at, lb) in locality_settings(&m.topology.destination_rules[di], &at) {
            distribute(&ctx, svc, lb, &lb_at, r);
            failover(&ctx, svc, lb, &lb_at, r);
        }
    }
}

/// The localities a cluster's endpoints and proxies are in: one per zone, or its region.
fn localities(m: &Model, c: ClusterId) -> Vec<Loc> {
    let cl = &m.topology.clusters[c];
    let region = cl.region.as_deref().unwrap_or("");
    if cl.zones.is_empty() {
        vec![Loc::new(region, "", "")]
    } else {
        cl.zones.iter().map(|z| Loc::new(region, z, "")).collect()
    }
}

/// The clusters of the service's mesh that match a locality pattern.
fn clusters_in(m: &Model, among: &[ClusterId], pattern: &str) -> Vec<ClusterId> {
    among
        .iter()
        .copied()
        .filter(|&c| !m.clusters[c].duplicate)
        .filter(|&c| {
            localities(m, c)
                .iter()
                .any(|l| locality_match(Some(l), pattern))
        })
        .collect()
}

/// Whether no client reaches any target, and the first reason why not.
fn none_reachable(
    ctx: &Ctx<'_>,
    svc: ServiceId,
    clients: &[ClusterId],
    targets: &[ClusterId],
) -> Option<String> {
    let mut why = None;
    for &c in clients {
        for &t in targets {
            match ctx.m.reaches(&ctx.gateways, c, t, svc) {
                Reach::Never(reason) => {
                    why.get_or_insert_with(|| {
                        format!("`{}`: {reason}", ctx.m.topology.clusters[t].name)
                    });
                }
                _ => return None,
            }
        }
    }
    why
}

/// W103: the clients of a service (its `callers`, or every cluster of its mesh) that reach
/// none of its endpoints.
fn unreachable_service(ctx: &Ctx<'_>, si: ServiceId, r: &mut Reporter<'_>) {
    let m = ctx.m;
    let info = &m.services[si];
    let Some(mesh) = info.mesh else { return };
    if m.meshes[mesh].duplicate || info.clusters.is_empty() {
        return;
    }
    let clients = info.callers.as_ref().unwrap_or(&m.meshes[mesh].clusters);
    let mut stranded = Vec::new();
    let mut reason = None;
    for &c in clients {
        if m.clusters[c].duplicate {
            continue;
        }
        if let Some(why) = none_reachable(ctx, si, &[c], &info.clusters) {
            stranded.push(m.topology.clusters[c].name.as_str());
            reason.get_or_insert(why);
        }
    }
    let Some(reason) = reason else { return };
    let service = &m.topology.services[si];
    r.report(
        Code::ServiceUnreachable,
        &path!("services", si, "name"),
        format!(
            "no endpoint of `{}` is reachable from {}",
            service.name,
            stranded
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .label("unreachable from some clients")
    .help(format!(
        "calls from there fail ({reason}): run the service there too, make it global, or list its real `callers`"
    ));
}

/// Every `localityLbSetting` of a rule with its path: the rule's policy, its port levels, and
/// the same under each subset.
fn locality_settings<'d>(
    dr: &'d crate::topology::DestinationRule,
    at: &Path,
) -> Vec<(Path, &'d Map<String, Json>)> {
    let mut policies: Vec<(Path, &Map<String, Json>)> = Vec::new();
    if let Some(p) = &dr.traffic_policy {
        policies.push((at.key("trafficPolicy"), p));
    }
    for (i, s) in dr.subsets.iter().enumerate() {
        if let Some(p) = &s.traffic_policy {
            policies.push((at.key("subsets").index(i).key("trafficPolicy"), p));
        }
    }
    let mut out = Vec::new();
    for (p_at, policy) in policies {
        let ports = policy
            .get("portLevelSettings")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, v)| {
                v.as_object()
                    .map(|o| (p_at.key("portLevelSettings").index(i), o))
            });
        for (level_at, level) in std::iter::once((p_at.clone(), policy)).chain(ports) {
            if let Some(lb) = level
                .get("loadBalancer")
                .and_then(|l| l.get("localityLbSetting"))
                .and_then(Json::as_object)
            {
                out.push((level_at.key("loadBalancer").key("localityLbSetting"), lb));
            }
        }
    }
    out
}

/// W104: a `distribute` share for endpoints that exist but that no client in `from` reaches.
fn distribute(
    ctx: &Ctx<'_>,
    svc: ServiceId,
    lb: &Map<String, Json>,
    at: &Path,
    r: &mut Reporter<'_>,
) {
    let m = ctx.m;
    let Some(mesh) = m.services[svc].mesh else {
        return;
    };
    let entries = lb.get("distribute").and_then(Json::as_array);
    for (j, entry) in entries.into_iter().flatten().enumerate() {
        let Some(from) = entry.get("from").and_then(Json::as_str) else {
            continue;
        };
        let clients = clusters_in(m, &m.meshes[mesh].clusters, from);
        let to = entry.get("to").and_then(Json::as_object);
        for key in to.into_iter().flat_map(|t| t.keys()) {
            let targets = clusters_in(m, &m.services[svc].clusters, key);
            if clients.is_empty() || targets.is_empty() {
                continue;
            }
            if let Some(why) = none_reachable(ctx, svc, &clients, &targets) {
                let p = at.key("distribute").index(j).key("to").key(key);
                r.report_key(
                    Code::DistributeUnreachable,
                    &p,
                    format!("no client in `{from}` can reach the endpoints in `{key}`"),
                )
                .label("unreachable share")
                .help(format!(
                    "this share of the traffic fails ({why}): send it where the clients reach, or make the endpoints reachable"
                ));
            }
        }
    }
}

/// W105: a `failover` target region with no endpoint that the clients in `from` reach, so that
/// the chain ends there.
fn failover(
    ctx: &Ctx<'_>,
    svc: ServiceId,
    lb: &Map<String, Json>,
    at: &Path,
    r: &mut Reporter<'_>,
) {
    let m = ctx.m;
    let Some(mesh) = m.services[svc].mesh else {
        return;
    };
    let entries = lb.get("failover").and_then(Json::as_array);
    for (j, entry) in entries.into_iter().flatten().enumerate() {
        let text = |k: &str| entry.get(k).and_then(Json::as_str);
        let (Some(from), Some(to)) = (text("from"), text("to")) else {
            continue;
        };
        // Zones, wildcards, unknown and equal regions are E054 to E056.
        let region = |s: &str| !s.contains(['/', '*']) && m.catalogue.region(s).is_some();
        if from == to || !region(from) || !region(to) {
            continue;
        }
        let service = &m.topology.services[svc];
        let targets = clusters_in(m, &m.services[svc].clusters, to);
        let clients = clusters_in(m, &m.meshes[mesh].clusters, from);
        let why = if targets.is_empty() {
            Some(format!("`{}` runs in no cluster of `{to}`", service.name))
        } else if clients.is_empty() {
            None
        } else {
            none_reachable(ctx, svc, &clients, &targets)
        };
        let Some(why) = why else { continue };
        r.report(
            Code::FailoverTargetEmpty,
            &at.key("failover").index(j).key("to"),
            format!("failover from `{from}` to `{to}` ends in no endpoint"),
        )
        .label("no endpoints to fail over to")
        .help(format!(
            "when `{from}` has no healthy endpoint this step is skipped ({why}): fail over to a region where the service runs and is reachable"
        ));
    }
}
