//! The traffic policy a source proxy gets for one service, port and subset: the DestinationRule
//! placed on the source's config cluster, its port-level and subset settings merged as istiod
//! merges them (`util.MergeSubsetTrafficPolicy` at 1.30.0: a matching `portLevelSettings`
//! entry replaces the level's `loadBalancer` and `outlierDetection` whole, a subset's own fields
//! replace the rule's), then the locality setting chosen by `GetLocalityLbSetting`. Also the
//! words that say, per group, why it got its priority or weight.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::lb::{self, Distribute, Failover, Loc, Setting, TrafficDistribution};
use super::{Mode, query_error};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{ClusterId, Model, ServiceId};
use crate::topology::{Dataplane, Distribution, TrafficDistribution as Annotation};

/// The policy in effect for the source, and what it depends on.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    /// The DestinationRule applied (index into `destinationRules`).
    pub rule: Option<usize>,
    /// The locality setting in effect; `None`: locality load balancing is off.
    pub setting: Option<Setting>,
    /// Failover priorities apply: outlier detection, or a traffic distribution forcing it.
    pub enable_failover: bool,
    /// The setting comes from the Service's traffic distribution.
    pub forced_by: Option<&'static str>,
    /// `localityLbSetting.enabled: false` switched it off.
    pub disabled: bool,
    /// The subset's labels.
    pub subset: Option<(String, BTreeMap<String, String>)>,
    /// Label keys whose values the topology knows for every endpoint.
    pub known_labels: Vec<String>,
    pub notes: Vec<String>,
}

/// The two fields of a traffic-policy level that locality load balancing reads.
#[derive(Debug, Clone, Default)]
struct Fields {
    load_balancer: Option<Json>,
    outlier: Option<Json>,
}

fn set(v: Option<&Json>) -> Option<Json> {
    v.filter(|v| !v.is_null()).cloned()
}

/// `GetPortLevelTrafficPolicy`: a `portLevelSettings` entry for the port replaces the level.
fn port_level(policy: &Map<String, Json>, port: u32) -> (Fields, bool) {
    let entry = policy
        .get("portLevelSettings")
        .and_then(Json::as_array)
        .and_then(|ports| {
            ports.iter().find(|p| {
                p.get("port")
                    .and_then(|p| p.get("number"))
                    .and_then(Json::as_u64)
                    == Some(u64::from(port))
            })
        });
    let from = entry.and_then(Json::as_object).unwrap_or(policy);
    (
        Fields {
            load_balancer: set(from.get("loadBalancer")),
            outlier: set(from.get("outlierDetection")),
        },
        entry.is_some(),
    )
}

/// `MergeSubsetTrafficPolicy` for the two fields.
fn merged(
    rule: Option<&Map<String, Json>>,
    subset: Option<&Map<String, Json>>,
    port: u32,
) -> Fields {
    let base = rule.map(|p| port_level(p, port).0).unwrap_or_default();
    let Some(subset) = subset else {
        return base;
    };
    let (own, has_port_level) = port_level(subset, port);
    if rule.is_none() {
        return own;
    }
    Fields {
        load_balancer: if own.load_balancer.is_some() || has_port_level {
            own.load_balancer
        } else {
            base.load_balancer
        },
        outlier: if own.outlier.is_some() || has_port_level {
            own.outlier
        } else {
            base.outlier
        },
    }
}

/// A `localityLbSetting` as the algorithm reads it, with its `enabled`.
fn read_setting(lb: &Map<String, Json>) -> (Option<bool>, Setting) {
    let list = |key: &str| {
        lb.get(key)
            .and_then(Json::as_array)
            .filter(|a| !a.is_empty())
            .cloned()
    };
    let text = |v: &Json, key: &str| v.get(key).and_then(Json::as_str).unwrap_or("").to_string();
    let distribute = list("distribute").map(|entries| {
        entries
            .iter()
            .map(|e| Distribute {
                from: text(e, "from"),
                to: e
                    .get("to")
                    .and_then(Json::as_object)
                    .map(|to| {
                        to.iter()
                            .map(|(k, w)| {
                                let w = w.as_u64().and_then(|w| u32::try_from(w).ok());
                                (k.clone(), w.unwrap_or(0))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    });
    let failover = list("failover")
        .unwrap_or_default()
        .iter()
        .map(|e| Failover {
            from: text(e, "from"),
            to: text(e, "to"),
        })
        .collect();
    let failover_priority = list("failoverPriority")
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let enabled = lb.get("enabled").and_then(Json::as_bool);
    (
        enabled,
        Setting {
            distribute,
            failover,
            failover_priority,
        },
    )
}

/// The DestinationRule for the service on the cluster that configures `source` (itself, or
/// the primary serving it), with notes on rules that exist but do not reach the source.
fn rule_for(
    model: &Model,
    svc: ServiceId,
    source: ClusterId,
    notes: &mut Vec<String>,
) -> Option<usize> {
    let t = &model.topology;
    let config = if model.clusters[source].is_primary {
        Some(source)
    } else {
        model.clusters[source].primary
    };
    let mut found = None;
    for (d, info) in model.destination_rules.iter().enumerate() {
        if info.service != Some(svc) {
            continue;
        }
        let placed = config.is_some_and(|c| info.clusters.contains(&c));
        if !placed {
            notes.push(format!(
                "DestinationRule `{}` is not placed on `{}`, which configures the source: it does not apply",
                t.destination_rules[d].name,
                config.map_or("(no config cluster)", |c| t.clusters[c].name.as_str())
            ));
        } else if found.is_none() {
            found = Some(d);
        } else {
            notes.push(format!(
                "DestinationRule `{}` is another rule for the same host: Istio applies the oldest, taken here as the first in the file",
                t.destination_rules[d].name
            ));
        }
    }
    if let Some(d) = found
        && t.destination_rules[d].workload_selector.is_some()
    {
        notes.push(format!(
            "DestinationRule `{}` has a workloadSelector: it applies only to the workloads it selects, taken here to include the source",
            t.destination_rules[d].name
        ));
    }
    found
}

/// The policy in effect; E102 for a subset the rule does not have.
pub fn effective(
    model: &Model,
    svc: ServiceId,
    source: ClusterId,
    port: u32,
    subset: Option<&str>,
) -> Result<Effective, Diagnostic> {
    let t = &model.topology;
    let service = &t.services[svc];
    let mut notes = Vec::new();
    let rule = rule_for(model, svc, source, &mut notes);
    let dr = rule.map(|d| &t.destination_rules[d]);
    let subset_def = match (subset, dr) {
        (None, _) => None,
        (Some(name), Some(dr)) if dr.subsets.iter().any(|s| s.name == name) => {
            dr.subsets.iter().find(|s| s.name == name)
        }
        (Some(name), _) => {
            let names: Vec<&str> = dr
                .map(|d| d.subsets.iter().map(|s| s.name.as_str()).collect())
                .unwrap_or_default();
            let help = if names.is_empty() {
                "the DestinationRule that applies to the source defines no subsets".to_string()
            } else {
                format!("its subsets: {}", names.join(", "))
            };
            return Err(query_error(
                Code::ExplainUnknownArgument,
                format!(
                    "no subset `{name}` for `{}/{}`",
                    service.namespace, service.name
                ),
                help,
            ));
        }
    };
    let fields = merged(
        dr.and_then(|d| d.traffic_policy.as_ref()),
        subset_def.and_then(|s| s.traffic_policy.as_ref()),
        port,
    );
    let rule_setting = fields
        .load_balancer
        .as_ref()
        .and_then(|lb| lb.get("localityLbSetting"))
        .and_then(Json::as_object)
        .map(read_setting);
    let disabled = matches!(rule_setting, Some((Some(false), _)));
    let (distribution, forced_name) = distribution(service.traffic_distribution, &mut notes);
    // Istio's mesh default (`meshConfig.localityLbSetting: {enabled: true}`); meshc sets none.
    let mesh = Some((Some(true), Setting::default()));
    let (setting, forced) = lb::effective_setting(mesh, rule_setting, distribution);
    let mut known_labels: Vec<String> = service
        .selector
        .as_ref()
        .map_or_else(|| vec!["app".to_string()], |s| s.keys().cloned().collect());
    known_labels.extend([lb::NETWORK, lb::CLUSTER, lb::REGION, lb::ZONE].map(str::to_string));
    let mut out = Effective {
        rule,
        setting,
        enable_failover: fields.outlier.is_some() || forced,
        forced_by: forced.then_some(forced_name),
        disabled,
        subset: subset_def.map(|s| (s.name.clone(), s.labels.clone().unwrap_or_default())),
        known_labels,
        notes,
    };
    out.note_unknowns(model, svc);
    Ok(out)
}

/// Istio's reading of the traffic-distribution annotation meshc writes.
fn distribution(
    annotation: Option<Annotation>,
    notes: &mut Vec<String>,
) -> (TrafficDistribution, &'static str) {
    match annotation {
        Some(Annotation::PreferClose) => (TrafficDistribution::PreferSameZone, "PreferClose"),
        Some(Annotation::PreferSameZone) => (TrafficDistribution::PreferSameZone, "PreferSameZone"),
        Some(Annotation::PreferSameNode) => (TrafficDistribution::PreferSameNode, "PreferSameNode"),
        Some(other) => {
            notes.push(format!(
                "trafficDistribution {} is a value of Solo's build; shown as upstream Istio reads it (Any)",
                other.as_str()
            ));
            (TrafficDistribution::Any, "")
        }
        None => (TrafficDistribution::Any, ""),
    }
}

impl Effective {
    /// Notes on what the topology cannot tell: labels it does not know, and ambient.
    fn note_unknowns(&mut self, model: &Model, svc: ServiceId) {
        let unknown = |k: &str| !self.known_labels.iter().any(|x| x == k);
        if let Some((name, labels)) = &self.subset {
            let keys: Vec<&str> = labels
                .keys()
                .map(String::as_str)
                .filter(|k| unknown(k))
                .collect();
            if !keys.is_empty() {
                self.notes.push(format!(
                    "subset `{name}` selects by {}, which the topology does not know: every endpoint is taken to match",
                    quoted(&keys)
                ));
            }
        }
        if let Some(setting) = &self.setting
            && self.enable_failover
            && setting.distribute.is_none()
        {
            let keys: Vec<&str> = setting
                .failover_priority
                .iter()
                .map(|l| l.split('=').next().unwrap_or(l))
                .filter(|k| unknown(k))
                .collect();
            if !keys.is_empty() {
                self.notes.push(format!(
                    "failoverPriority label {} is not known to the topology: taken as absent on the source and on every endpoint",
                    quoted(&keys)
                ));
            }
        }
        let mesh = model.services[svc].mesh.map(|m| &model.topology.meshes[m]);
        let service = &model.topology.services[svc];
        if mesh.is_some_and(|m| m.istio.distribution == Distribution::Solo)
            && service.global.is_global()
            && !service.global.is_global_only()
        {
            self.notes.push(format!(
                "`global: true` on Solo's distribution: the clusters are shown for the global name `{}.{}.mesh.internal`; `{}.{}.svc.cluster.local` stays in the caller's cluster",
                service.name, service.namespace, service.name, service.namespace
            ));
        }
        if self.rule.is_some() && mesh.is_some_and(|m| m.dataplane == Dataplane::Ambient) {
            self.notes.push("ambient: ztunnel applies the Service's traffic distribution only; DestinationRule locality settings apply where a waypoint serves the service, as shown".to_string());
        }
    }

    /// Whether the subset selects an endpoint with these labels (labels the topology does
    /// not know are taken to match).
    pub fn subset_selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.subset.as_ref().is_none_or(|(_, want)| {
            want.iter()
                .all(|(k, v)| labels.get(k).is_none_or(|have| have == v))
        })
    }

    /// Why no endpoint is left, when a subset is the cause.
    pub fn subset_note(&self) -> Option<String> {
        self.subset.as_ref().map(|(name, _)| {
            format!("subset `{name}` selects no endpoint the source can reach: its labels contradict the service's selector or the clusters' labels")
        })
    }

    /// Which part of the algorithm decides, for a source in `source`.
    pub fn mode_for(&self, source: &Loc) -> Mode {
        let Some(setting) = &self.setting else {
            return Mode::Spread;
        };
        if let Some(d) = &setting.distribute {
            return if d.iter().any(|e| lb::locality_match(Some(source), &e.from)) {
                Mode::Distribute
            } else {
                Mode::Spread
            };
        }
        match (self.enable_failover, setting.failover_priority.is_empty()) {
            (false, _) => Mode::Spread,
            (true, true) => Mode::Failover,
            (true, false) => Mode::FailoverPriority,
        }
    }
}

fn quoted(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reason shown beside each group.
#[derive(Debug)]
pub struct Reasons<'a> {
    effective: &'a Effective,
    source: &'a Loc,
    proxy: &'a BTreeMap<String, String>,
    mode: Mode,
    /// Every locality that has endpoints (a `distribute` weight is split over those a pattern
    /// matches).
    localities: Vec<Loc>,
}

impl<'a> Reasons<'a> {
    pub fn new(
        effective: &'a Effective,
        source: &'a Loc,
        proxy: &'a BTreeMap<String, String>,
        localities: Vec<Loc>,
    ) -> Self {
        Reasons {
            effective,
            source,
            proxy,
            mode: effective.mode_for(source),
            localities,
        }
    }

    pub fn of(&self, locality: &Loc, labels: &BTreeMap<String, String>) -> String {
        let Some(setting) = &self.effective.setting else {
            return "localityLbSetting.enabled: false: requests spread over every endpoint"
                .to_string();
        };
        match self.mode {
            Mode::Distribute => self.distribute_reason(setting, locality),
            Mode::Failover => self.locality_reason(setting, locality),
            Mode::FailoverPriority => {
                let labels = self.label_reason(setting, labels);
                if setting.failover.is_empty() {
                    labels
                } else {
                    format!("{labels}; {}", self.locality_reason(setting, locality))
                }
            }
            Mode::Spread if setting.distribute.is_some() => format!(
                "no distribute entry's `from` matches {}: spread by endpoint weight",
                self.source
            ),
            Mode::Spread => {
                "no outlierDetection, so no locality failover: requests spread over every endpoint"
                    .to_string()
            }
        }
    }

    fn locality_reason(&self, setting: &Setting, locality: &Loc) -> String {
        let prefix = if setting.failover.is_empty() {
            "default failover"
        } else {
            "failover"
        };
        let explicit = setting
            .failover
            .iter()
            .find(|f| f.from == self.source.region);
        let what = match (lb::lb_priority(self.source, Some(locality)), explicit) {
            (0, _) => "same zone as the source".to_string(),
            (1, _) => "same zone, another subzone".to_string(),
            (2, _) => "same region, another zone".to_string(),
            (_, Some(f)) if f.to == locality.region => format!("from {} to {}", f.from, f.to),
            (_, Some(f)) => format!("another region, after {}", f.to),
            (_, None) => "another region".to_string(),
        };
        format!("{prefix}: {what}")
    }

    fn label_reason(&self, setting: &Setting, labels: &BTreeMap<String, String>) -> String {
        let mut matched = Vec::new();
        for l in &setting.failover_priority {
            let (key, wanted) = match l.split_once('=') {
                Some((k, v)) => (k, v.to_string()),
                None => (l.as_str(), self.proxy.get(l).cloned().unwrap_or_default()),
            };
            if labels.get(key).cloned().unwrap_or_default() != wanted {
                break;
            }
            matched.push(if wanted.is_empty() {
                key.to_string()
            } else {
                format!("{key}={wanted}")
            });
        }
        let by = self
            .effective
            .forced_by
            .map_or("failoverPriority".to_string(), |d| {
                format!("trafficDistribution {d}")
            });
        let n = setting.failover_priority.len();
        if matched.is_empty() {
            format!("{by}: matches none of {n} labels")
        } else {
            format!(
                "{by}: matches {} of {n} labels ({})",
                matched.len(),
                matched.join(", ")
            )
        }
    }
}

impl Reasons<'_> {
    /// The `distribute` entry and `to` pattern that weighted the locality, and how many
    /// localities share that weight.
    fn distribute_reason(&self, setting: &Setting, locality: &Loc) -> String {
        let entry = setting
            .distribute
            .iter()
            .flatten()
            .find(|e| lb::locality_match(Some(self.source), &e.from));
        let Some(entry) = entry else {
            return String::new();
        };
        // The pattern that takes a locality is the first in order that matches it.
        let pattern_of = |l: &Loc| {
            entry
                .to
                .iter()
                .position(|(pattern, _)| lb::locality_match(Some(l), pattern))
        };
        let Some(i) = pattern_of(locality) else {
            return format!("distribute from {}: no `to` covers it", entry.from);
        };
        let (pattern, w) = &entry.to[i];
        let sharing = self
            .localities
            .iter()
            .filter(|l| pattern_of(l) == Some(i))
            .count();
        let split = if sharing > 1 {
            format!(", split over {sharing} localities")
        } else {
            String::new()
        };
        format!("distribute from {} to {pattern}: {w}{split}", entry.from)
    }
}
