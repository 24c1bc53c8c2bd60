//! Istio's locality load balancing, ported function by function from
//! `pilot/pkg/networking/core/loadbalancer/loadbalancer.go` at tag 1.30.0 (with `LocalityMatch`
//! and `LbPriority` from `pilot/pkg/networking/util/util.go`), so that `meshc explain` gives the
//! priorities and weights istiod would send a proxy, and the tests below can take Istio's own
//! cases (`loadbalancer_test.go`) with the same inputs and expectations.
//!
//! The data is Envoy's shape, reduced to what the algorithm reads: a cluster load assignment
//! is a list of locality groups (`LocalityLbEndpoints`), each with its locality, its endpoints
//! (labels and weight), its own weight and priority. Nothing here knows about topologies.

use std::collections::{BTreeMap, BTreeSet};

/// An Envoy locality: region, zone, subzone ("" for unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    pub region: String,
    pub zone: String,
    pub subzone: String,
}

impl Loc {
    pub fn new(region: &str, zone: &str, subzone: &str) -> Loc {
        Loc {
            region: region.to_string(),
            zone: zone.to_string(),
            subzone: subzone.to_string(),
        }
    }
}

impl std::fmt::Display for Loc {
    /// `region/zone/subzone` without trailing empty parts, as Istio writes localities.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = [&self.region, &self.zone, &self.subzone];
        let used = parts
            .iter()
            .rposition(|p| !p.is_empty())
            .map_or(0, |i| i + 1);
        let text: Vec<&str> = parts[..used].iter().map(|p| p.as_str()).collect();
        f.write_str(&text.join("/"))
    }
}

/// One endpoint (`IstioEndpoint` and its `LbEndpoint`): the caller's tag, labels, weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tag: usize,
    pub labels: BTreeMap<String, String>,
    pub weight: u32,
}

/// One `LocalityLbEndpoints`. `locality: None` is Envoy's nil locality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub locality: Option<Loc>,
    pub endpoints: Vec<Endpoint>,
    /// `LoadBalancingWeight`; `None` when unset (the distribute step reads it as 1).
    pub weight: Option<u32>,
    pub priority: u32,
}

impl Group {
    /// A group as istiod builds it: its weight is the sum of its endpoints' weights.
    pub fn new(locality: Option<Loc>, endpoints: Vec<Endpoint>) -> Group {
        let weight = endpoints.iter().map(|e| e.weight).sum();
        Group {
            locality,
            endpoints,
            weight: Some(weight),
            priority: 0,
        }
    }
}

/// A `distribute` entry: `to` in the order it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribute {
    pub from: String,
    pub to: Vec<(String, u32)>,
}

/// A `failover` entry (regions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    pub from: String,
    pub to: String,
}

/// The parts of a `LocalityLoadBalancerSetting` the algorithm reads (`enabled` is decided
/// before, by [`effective_setting`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Setting {
    /// `None`: unset (Go's nil slice); `Some(empty)` cannot come from YAML and is not used.
    pub distribute: Option<Vec<Distribute>>,
    pub failover: Vec<Failover>,
    pub failover_priority: Vec<String>,
}

/// Which setting applies (`GetLocalityLbSetting`): the DestinationRule's, unless it says
/// `enabled: false`; else the one a Service's traffic distribution implies (with failover
/// forced on, the second value); else the mesh's, unless disabled. `None`: no locality load
/// balancing.
pub fn effective_setting(
    mesh: Option<(Option<bool>, Setting)>,
    rule: Option<(Option<bool>, Setting)>,
    distribution: TrafficDistribution,
) -> (Option<Setting>, bool) {
    if let Some((enabled, setting)) = rule {
        if enabled == Some(false) {
            return (None, false);
        }
        return (Some(setting), false);
    }
    let labels: &[&str] = match distribution {
        TrafficDistribution::Any => &[],
        TrafficDistribution::PreferSameZone => &[NETWORK, REGION, ZONE],
        TrafficDistribution::PreferSameNode => &[NETWORK, REGION, ZONE, SUBZONE, HOSTNAME],
    };
    if !labels.is_empty() {
        let setting = Setting {
            failover_priority: labels.iter().map(|s| (*s).to_string()).collect(),
            ..Setting::default()
        };
        return (Some(setting), true);
    }
    match mesh {
        Some((Some(false), _)) | None => (None, false),
        Some((_, setting)) => (Some(setting), false),
    }
}

/// Istio's reading of a Service's traffic distribution (`model.TrafficDistribution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficDistribution {
    Any,
    /// `PreferClose` and `PreferSameZone`.
    PreferSameZone,
    PreferSameNode,
}

pub const NETWORK: &str = "topology.istio.io/network";
pub const CLUSTER: &str = "topology.istio.io/cluster";
pub const REGION: &str = "topology.kubernetes.io/region";
pub const ZONE: &str = "topology.kubernetes.io/zone";
pub const SUBZONE: &str = "topology.istio.io/subzone";
pub const HOSTNAME: &str = "kubernetes.io/hostname";

/// `ApplyLocalityLoadBalancer`: only one of `distribute` or failover applies; failover only
/// when enabled (outlier detection, or forced by a traffic distribution).
pub fn apply(
    groups: &mut Vec<Group>,
    source: &Loc,
    proxy_labels: &BTreeMap<String, String>,
    setting: &Setting,
    enable_failover: bool,
) {
    if let Some(distribute) = &setting.distribute {
        apply_locality_weights(source, groups, distribute);
    } else if enable_failover {
        if setting.failover_priority.is_empty() {
            apply_locality_failover(source, groups, &setting.failover);
        } else {
            apply_failover_priorities(groups, proxy_labels, &setting.failover_priority);
            if !setting.failover.is_empty() {
                apply_locality_failover(source, groups, &setting.failover);
            }
        }
    }
}

/// `util.LocalityMatch`: a rule `region[/zone[/subzone]]`, `*` matching anything.
pub fn locality_match(locality: Option<&Loc>, rule: &str) -> bool {
    let mut parts = rule.splitn(3, '/');
    let (r, z, s) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let empty = Loc::default();
    let l = locality.unwrap_or(&empty);
    (r == "*" || l.region == r)
        && (z == "*" || z.is_empty() || l.zone == z)
        && (s == "*" || s.is_empty() || l.subzone == s)
}

/// `util.LbPriority`: 0 same subzone, 1 same zone, 2 same region, 3 elsewhere.
pub fn lb_priority(source: &Loc, endpoints: Option<&Loc>) -> u32 {
    let empty = Loc::default();
    let e = endpoints.unwrap_or(&empty);
    match (
        source.region == e.region,
        source.zone == e.zone,
        source.subzone == e.subzone,
    ) {
        (true, true, true) => 0,
        (true, true, false) => 1,
        (true, false, _) => 2,
        (false, _, _) => 3,
    }
}

/// `applyLocalityWeights`: the first entry whose `from` matches the source sets, for each `to`
/// pattern, its weight split over the groups it matches in proportion to their weights
/// (rounded up); groups no pattern matches lose their endpoints.
fn apply_locality_weights(source: &Loc, groups: &mut [Group], distribute: &[Distribute]) {
    let Some(entry) = distribute
        .iter()
        .find(|d| locality_match(Some(source), &d.from))
    else {
        return;
    };
    let mut mismatched: BTreeSet<usize> = (0..groups.len()).collect();
    for (pattern, weight) in &entry.to {
        let mut dest: Vec<(usize, u32)> = Vec::new();
        let mut total: u32 = 0;
        for (i, g) in groups.iter().enumerate() {
            if mismatched.contains(&i) && locality_match(g.locality.as_ref(), pattern) {
                mismatched.remove(&i);
                let original = g.weight.unwrap_or(1);
                dest.push((i, original));
                total += original;
            }
        }
        for (i, original) in dest {
            let share = f64::from(original) * f64::from(*weight) / f64::from(total);
            if share > 0.0 {
                // Bounded by `weight` (at most 100), so the cast cannot truncate.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let rounded = share.ceil() as u32;
                groups[i].weight = Some(rounded);
            }
        }
    }
    for i in mismatched {
        groups[i].endpoints.clear();
    }
}

/// `applyLocalityFailover`: priorities by locality (0 to 3), with a `failover` entry for the
/// source's region keeping only its `to` region at 3 and moving the others to 4; combined with
/// any priority already assigned (times 5), then compacted.
fn apply_locality_failover(source: &Loc, groups: &mut [Group], failover: &[Failover]) {
    let mut raw: Vec<u32> = Vec::with_capacity(groups.len());
    for g in groups.iter() {
        let mut priority = lb_priority(source, g.locality.as_ref());
        if priority == 3
            && let Some(f) = failover.iter().find(|f| f.from == source.region)
            && g.locality.as_ref().is_none_or(|l| l.region != f.to)
        {
            priority = 4;
        }
        raw.push(g.priority * 5 + priority);
    }
    let order = compact(&raw);
    for (g, p) in groups.iter_mut().zip(raw) {
        g.priority = order[&p];
    }
}

/// Priorities renumbered 0..N in increasing order, without gaps.
fn compact(raw: &[u32]) -> BTreeMap<u32, u32> {
    let distinct: BTreeSet<u32> = raw.iter().copied().collect();
    distinct.into_iter().zip(0..).collect()
}

/// `applyFailoverPriorities`: each group is split by how many leading `failoverPriority`
/// labels its endpoints share with the proxy, and priorities are compacted.
fn apply_failover_priorities(
    groups: &mut Vec<Group>,
    proxy_labels: &BTreeMap<String, String>,
    priorities: &[String],
) {
    if proxy_labels.is_empty() || groups.is_empty() {
        return;
    }
    let mut out: Vec<Group> = Vec::new();
    for g in groups.iter() {
        out.extend(split_by_priority(proxy_labels, g, priorities));
    }
    let raw: Vec<u32> = out.iter().map(|g| g.priority).collect();
    let order = compact(&raw);
    for g in &mut out {
        g.priority = order[&g.priority];
    }
    *groups = out;
}

/// `priorityLabelOverrides`: `key=value` entries compare with `value` instead of the proxy's.
fn label_overrides(labels: &[String]) -> (Vec<String>, BTreeMap<String, String>) {
    let mut names = Vec::with_capacity(labels.len());
    let mut overrides = BTreeMap::new();
    for l in labels {
        let parts: Vec<&str> = l.split('=').collect();
        names.push(parts[0].to_string());
        if let [name, value] = parts.as_slice() {
            overrides.insert((*name).to_string(), (*value).to_string());
        }
    }
    (names, overrides)
}

/// `applyFailoverPriorityPerLocality`: priority `n - j` for an endpoint whose first mismatch
/// is at label `j` (0 when all match); one group per priority, its weight the sum.
fn split_by_priority(
    proxy_labels: &BTreeMap<String, String>,
    g: &Group,
    priorities: &[String],
) -> Vec<Group> {
    let lowest = u32::try_from(priorities.len()).unwrap_or(u32::MAX);
    let (names, overrides) = label_overrides(priorities);
    let mut by_priority: BTreeMap<u32, Vec<&Endpoint>> = BTreeMap::new();
    for e in &g.endpoints {
        let mut priority = 0;
        for (j, name) in names.iter().enumerate() {
            let wanted = overrides
                .get(name)
                .or_else(|| proxy_labels.get(name))
                .map_or("", String::as_str);
            if e.labels.get(name).map_or("", String::as_str) != wanted {
                priority = lowest - u32::try_from(j).unwrap_or(0);
                break;
            }
        }
        by_priority.entry(priority).or_default().push(e);
    }
    by_priority
        .into_iter()
        .map(|(priority, eps)| Group {
            locality: g.locality.clone(),
            weight: Some(eps.iter().map(|e| e.weight).sum()),
            endpoints: eps.into_iter().cloned().collect(),
            priority,
        })
        .collect()
}

#[cfg(test)]
#[path = "lb_tests.rs"]
mod tests;
