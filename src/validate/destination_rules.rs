//! DestinationRules: Istio's own admission checks on `localityLbSetting` (run offline, with
//! Istio's meaning: see `ValidateLocalityLbSetting` in `pkg/config/validation/agent`), plus
//! what only the whole topology can tell: whether a locality exists, and whether the host's
//! service runs where traffic is sent.
//!
//! A traffic policy has levels: the rule's `trafficPolicy`, each of its `portLevelSettings`,
//! and the same under every subset. Istio checks `failover` against the `outlierDetection`
//! of the same level, and a level without a `loadBalancer` inherits the enclosing one, which
//! is how the "outlierDetection silently turns locality failover on" warning is decided.

use serde_json::{Map, Value as Json};

use super::locality::{SyntaxError, overlaps, parse_locality};
use crate::diagnostic::{Code, Reporter};
use crate::model::{Model, PlacedInfo};
use crate::path;
use crate::span::Path;
use crate::topology::DestinationRule;

/// Node labels that carry locality; `failover` already works on regions, so naming them in
/// `failoverPriority` as well is refused by Istio.
const TOPOLOGY_LABELS: &[&str] = &[
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

struct Rule<'a> {
    model: &'a Model,
    info: &'a PlacedInfo,
    dr: &'a DestinationRule,
}

pub fn run(m: &Model, r: &mut Reporter<'_>) {
    for (di, dr) in m.topology.destination_rules.iter().enumerate() {
        let at = path!("destinationRules", di);
        let rule = Rule {
            model: m,
            info: &m.destination_rules[di],
            dr,
        };
        check_host(r, &dr.host, &at.key("host"));
        check_subsets(r, dr, &at);
        let top = match &dr.traffic_policy {
            Some(policy) => check_policy(
                r,
                &rule,
                policy,
                &at.key("trafficPolicy"),
                Inherited::default(),
                false,
            ),
            None => Inherited::default(),
        };
        for (si, s) in dr.subsets.iter().enumerate() {
            if let Some(policy) = &s.traffic_policy {
                let p = at.key("subsets").index(si).key("trafficPolicy");
                check_policy(r, &rule, policy, &p, top, false);
            }
        }
    }
}

/// What a traffic-policy level takes from the levels that enclose it (Istio merges traffic
/// policies field by field: a level's own `loadBalancer` or `outlierDetection` replaces the
/// enclosing one whole).
#[derive(Debug, Clone, Copy, Default)]
struct Inherited {
    /// The effective `loadBalancer` has an explicit `localityLbSetting`.
    locality_lb: bool,
    /// The effective policy has `outlierDetection`.
    outlier: bool,
}

/// Whether a field counts as set for Istio: null and empty lists are unset (nil in proto).
fn is_set(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Array(a) => !a.is_empty(),
        _ => true,
    }
}

fn locality_lb(policy: &Map<String, Json>) -> Option<&Map<String, Json>> {
    policy
        .get("loadBalancer")?
        .get("localityLbSetting")?
        .as_object()
}

/// One level of a traffic policy. `inherited_lb`: an enclosing level sets `localityLbSetting`.
/// One level of a traffic policy; returns what the levels inside it inherit.
fn check_policy(
    r: &mut Reporter<'_>,
    rule: &Rule<'_>,
    policy: &Map<String, Json>,
    at: &Path,
    inherited: Inherited,
    is_port: bool,
) -> Inherited {
    if is_port {
        check_port(r, rule, policy, at);
    }
    let set_fields = policy
        .iter()
        .filter(|(k, v)| !(is_port && *k == "port") && is_set(v))
        .count();
    if set_fields == 0 {
        let what = if is_port {
            "port traffic policy"
        } else {
            "traffic policy"
        };
        r.report_key(Code::EmptyTrafficPolicy, at, format!("{what} has no field set"))
            .label("empty")
            .help("Istio refuses an empty policy (\"traffic policy must have at least one field\"): set a field or remove it");
    }
    let lb = locality_lb(policy);
    let own_lb = policy.get("loadBalancer").is_some_and(is_set);
    let own_outlier = policy.get("outlierDetection").is_some_and(is_set);
    let here = Inherited {
        locality_lb: if own_lb {
            lb.is_some()
        } else {
            inherited.locality_lb
        },
        outlier: own_outlier || inherited.outlier,
    };
    if let Some(lb) = lb {
        let lb_at = at.key("loadBalancer").key("localityLbSetting");
        check_locality_lb(r, rule, lb, &lb_at, own_outlier, here.outlier);
    } else if here.outlier && !here.locality_lb {
        if own_outlier {
            r.report_key(Code::OutlierDetectionEnablesFailover, &at.key("outlierDetection"), "`outlierDetection` without `localityLbSetting` turns locality failover on")
                .label("locality failover is now active")
                .help("Istio's mesh default enables locality load balancing, and outlier detection is what activates failover: set `loadBalancer.localityLbSetting` explicitly (`enabled: false` to keep traffic spread evenly)");
        } else {
            r.report_key(Code::OutlierDetectionEnablesFailover, &at.key("loadBalancer"), "this `loadBalancer` has no `localityLbSetting`, and the inherited `outlierDetection` turns locality failover on")
                .label("replaces the enclosing loadBalancer")
                .help("a level's own `loadBalancer` replaces the enclosing one whole: repeat `localityLbSetting` here (`enabled: false` to keep traffic spread evenly)");
        }
    }
    if let Some(Json::Array(ports)) = policy.get("portLevelSettings") {
        for (i, port) in ports.iter().enumerate() {
            if let Json::Object(port) = port {
                let p = at.key("portLevelSettings").index(i);
                check_policy(r, rule, port, &p, here, true);
            }
        }
    }
    here
}

/// A port-level setting must name a port of the host's service, or it never applies.
fn check_port(r: &mut Reporter<'_>, rule: &Rule<'_>, policy: &Map<String, Json>, at: &Path) {
    let (Some(svc), Some(number)) = (
        rule.info.service,
        policy
            .get("port")
            .and_then(|p| p.get("number"))
            .and_then(Json::as_u64),
    ) else {
        return;
    };
    let service = &rule.model.topology.services[svc];
    if !service.ports.iter().any(|p| u64::from(p.port) == number) {
        let ports: Vec<String> = service.ports.iter().map(|p| p.port.to_string()).collect();
        r.report(
            Code::UnknownReference,
            &at.key("port").key("number"),
            format!("service `{}` has no port {number}", service.name),
        )
        .label("unknown port")
        .help(format!(
            "this setting would never apply: use one of the service's ports ({})",
            ports.join(", ")
        ));
    }
}

fn non_empty_array<'j>(obj: &'j Map<String, Json>, key: &str) -> Option<&'j Vec<Json>> {
    obj.get(key)
        .and_then(Json::as_array)
        .filter(|a| !a.is_empty())
}

fn check_locality_lb(
    r: &mut Reporter<'_>,
    rule: &Rule<'_>,
    lb: &Map<String, Json>,
    at: &Path,
    has_outlier: bool,
    inherits_outlier: bool,
) {
    let distribute = non_empty_array(lb, "distribute");
    let failover = non_empty_array(lb, "failover");
    let priority = non_empty_array(lb, "failoverPriority");

    if distribute.is_some() && failover.is_some() {
        let span = r.span(&at.key("distribute"));
        r.report_key(Code::DistributeAndFailover, &at.key("failover"), "`distribute` and `failover` are both set")
            .label("failover here")
            .also(span, "distribute here")
            .help("Istio refuses the pair (\"can not simultaneously specify 'distribute' and 'failover'\") [istio/istio#35124]: keep one");
    }
    if failover.is_some()
        && let Some(priority) = priority
    {
        for (i, label) in priority.iter().enumerate() {
            let Some(label) = label.as_str() else {
                continue;
            };
            // Istio matches the bare keys only; `key=value` entries pass its check.
            if TOPOLOGY_LABELS.contains(&label) {
                r.report(Code::FailoverWithTopologyPriority, &at.key("failoverPriority").index(i), format!("`failover` is set, so `{label}` cannot be in `failoverPriority`"))
                    .label("topology label")
                    .help("`failover` already orders regions (zones and subzones fail over automatically): drop this label, or drop `failover` and order by labels only");
            }
        }
    }
    if (failover.is_some() || priority.is_some()) && !has_outlier {
        let key = if failover.is_some() {
            "failover"
        } else {
            "failoverPriority"
        };
        if inherits_outlier {
            r.report_key(Code::FailoverWithoutOutlierDetection, &at.key(key), format!("`{key}` needs `outlierDetection` in the same traffic policy"))
                .label("outlierDetection is only inherited here")
                .help("Istio validates each level on its own (\"outlier detection policy must be provided for failover\"): repeat `outlierDetection` beside this `loadBalancer`");
        } else {
            r.report_key(Code::FailoverWithoutOutlierDetection, &at.key(key), format!("`{key}` has no effect without `outlierDetection`"))
                .label("never triggers")
                .help("failover happens only when outlier detection ejects endpoints [istio/istio#48084]: add `outlierDetection` (e.g. consecutive5xxErrors, interval, baseEjectionTime) beside `loadBalancer` in this traffic policy");
        }
    }

    if let Some(entries) = distribute {
        let mut froms: Vec<(usize, &str)> = Vec::new();
        for (j, entry) in entries.iter().enumerate() {
            let e_at = at.key("distribute").index(j);
            // Istio reads a missing `from` as "" and a missing `to` as an empty map.
            let from = entry.get("from").and_then(Json::as_str).unwrap_or("");
            if entry.get("from").is_some() {
                froms.push((j, from));
            }
            check_pattern(r, rule, from, &e_at.key("from"), false, false);
            let empty = Map::new();
            let to = entry.get("to").and_then(Json::as_object).unwrap_or(&empty);
            check_distribute_to(r, rule, to, &e_at.key("to"));
        }
        let list: Vec<&str> = froms.iter().map(|(_, f)| *f).collect();
        for i in overlaps(&list) {
            let p = at.key("distribute").index(froms[i].0).key("from");
            overlap(r, &p, froms[i].1, false);
        }
    }

    if let Some(entries) = failover {
        for (j, entry) in entries.iter().enumerate() {
            let e_at = at.key("failover").index(j);
            let from = entry.get("from").and_then(Json::as_str);
            let to = entry.get("to").and_then(Json::as_str);
            for (key, value) in [("from", from), ("to", to)] {
                let Some(v) = value else { continue };
                let p = e_at.key(key);
                if v.contains('/') || v.contains('*') {
                    let why = if v.contains('*') {
                        "contains '*'"
                    } else {
                        "names a zone"
                    };
                    r.report(Code::FailoverNotRegion, &p, format!("failover `{key}: {v}` {why}"))
                        .label("not a region")
                        .help("`failover` takes region names only (zones and subzones fail over automatically); for finer control use `failoverPriority`");
                } else if !rule.model.catalogue.regions.iter().any(|reg| reg.name == v) {
                    let names: Vec<&str> = rule
                        .model
                        .catalogue
                        .regions
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect();
                    let help = crate::suggest::did_you_mean(v, names.iter().copied())
                        .map_or_else(|| catalogue_help(rule), |s| format!("did you mean `{s}`?"));
                    r.report(
                        Code::FailoverUnknownRegion,
                        &p,
                        format!("failover region `{v}` is not in the locality catalogue"),
                    )
                    .label("unknown region")
                    .help(help);
                }
            }
            if let (Some(f), Some(t)) = (from, to)
                && f == t
            {
                r.report(Code::FailoverSameRegion, &e_at.key("to"), format!("failover from `{f}` to itself"))
                    .label("same as `from`")
                    .help("Istio refuses it (\"locality lb failover settings must specify different regions\"): name the region traffic should go to");
            }
        }
    }
}

fn check_distribute_to(r: &mut Reporter<'_>, rule: &Rule<'_>, to: &Map<String, Json>, at: &Path) {
    let mut sum: u64 = 0;
    let mut weights_ok = true;
    for (key, weight) in to {
        let p = at.key(key);
        check_pattern(r, rule, key, &p, true, true);
        match weight.as_u64() {
            Some(w) if (1..=100).contains(&w) => sum += w,
            found => {
                weights_ok = false;
                let what = if found.is_some() || weight.as_i64().is_some() {
                    "is outside 1..100"
                } else {
                    "is not a whole number"
                };
                r.report(Code::WeightOutOfRange, &p, format!("weight {weight} for `{key}` {what}"))
                    .label("invalid weight")
                    .help("each weight is a whole percentage from 1 to 100 (\"locality weight must be in range [1, 100]\"); leave a locality out to send it nothing");
            }
        }
    }
    if weights_ok && sum != 100 {
        r.report_key(Code::WeightSum, at, format!("the weights of this `to` sum to {sum}, not 100"))
            .label(format!("sum {sum}"))
            .help(format!("Istio requires exactly 100 per `from` entry (\"total locality weight {sum} != 100\"): adjust the weights"));
    }
    // Istio reads `to` as a map, in no fixed order: an overlap in either order may be refused.
    let keys: Vec<&str> = to.keys().map(String::as_str).collect();
    let either_order =
        |a: &str, b: &str| !overlaps(&[a, b]).is_empty() || !overlaps(&[b, a]).is_empty();
    let overlapping = (1..keys.len()).filter(|&j| (0..j).any(|i| either_order(keys[i], keys[j])));
    for i in overlapping {
        overlap(r, &at.key(keys[i]), keys[i], true);
    }
}

/// Syntax and catalogue checks for one locality pattern. `is_key`: the pattern is a mapping
/// key (underline the key). `is_target`: traffic is sent there (check the service runs there).
fn check_pattern(
    r: &mut Reporter<'_>,
    rule: &Rule<'_>,
    s: &str,
    at: &Path,
    is_key: bool,
    is_target: bool,
) {
    let loc = match parse_locality(s) {
        Ok(l) => l,
        Err(SyntaxError::Wildcard) => {
            r.report_on(Code::LocalityWildcard, at, is_key, format!("locality `{s}` has a misplaced `*`")).label("wildcard").help("a locality takes at most one `*`, as its last segment: `region/*` or `region/zone/*`");
            return;
        }
        Err(SyntaxError::EmptySegment) => {
            r.report_on(Code::LocalityEmptySegment, at, is_key, format!("locality `{s}` has an empty region, zone or subzone")).label("empty segment").help("write it as `region`, `region/zone` or `region/zone/subzone`, without empty parts or stray `/`");
            return;
        }
    };
    let cat = &rule.model.catalogue;
    if !loc.matches_catalogue(cat) {
        r.report_on(
            Code::LocalityNoMatch,
            at,
            is_key,
            format!("locality `{s}` matches no locality of the topology"),
        )
        .label("matches nothing")
        .help(catalogue_help(rule));
        return;
    }
    if is_target && let Some(svc) = rule.info.service {
        let t = &rule.model.topology;
        let runs_there = rule.model.services[svc].clusters.iter().any(|&c| {
            let cl = &t.clusters[c];
            cl.region.as_deref().is_some_and(|region| {
                if cl.zones.is_empty() {
                    loc.matches(region, None)
                } else {
                    cl.zones.iter().any(|z| loc.matches(region, Some(z)))
                }
            })
        });
        if !runs_there {
            let service = &t.services[svc];
            r.report_on(Code::DistributeToEmptyLocality, at, is_key, format!("service `{}` runs in no cluster in `{s}`", service.name)).label("no endpoints here").help(format!(
                "this share of `{}` traffic has nowhere to go: send it to a locality where the service runs, or add such a cluster to the service's `clusters`",
                rule.dr.host
            ));
        }
    }
}

fn catalogue_help(rule: &Rule<'_>) -> String {
    let cat = &rule.model.catalogue;
    if cat.regions.is_empty() {
        return "no cluster declares a region: set `region:` and `zones:` on the clusters (or write `localities:`)".to_string();
    }
    let all: Vec<String> = cat
        .regions
        .iter()
        .flat_map(|r| {
            std::iter::once(r.name.clone()).chain(r.zones.iter().map(|z| format!("{}/{z}", r.name)))
        })
        .collect();
    let shown: Vec<&str> = all.iter().take(12).map(String::as_str).collect();
    format!(
        "known localities: {}{}",
        shown.join(", "),
        if all.len() > shown.len() { ", ..." } else { "" }
    )
}

fn overlap(r: &mut Reporter<'_>, at: &Path, s: &str, is_key: bool) {
    r.report_on(Code::LocalityOverlap, at, is_key, format!("locality `{s}` overlaps an earlier entry"))
        .label("overlaps")
        .help("Istio refuses overlapping entries in one list (\"overlap with previous specified ones\"): merge them or make them disjoint");
}

/// Why a label is not one of Istio's DNS-1123 labels (`labels.IsDNS1123Label`, which unlike
/// Kubernetes' allows upper case).
fn istio_label(label: &str) -> Option<&'static str> {
    if label.is_empty() {
        Some("it has an empty label")
    } else if label.len() > 63 {
        Some("a label is longer than 63 characters")
    } else if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Some("only letters, digits and '-' are allowed in a label")
    } else if label.starts_with('-') || label.ends_with('-') {
        Some("a label must start and end with a letter or digit")
    } else {
        None
    }
}

/// Istio's `ValidateWildcardDomain` for the host: DNS labels, `*` only at the start of the
/// first one.
fn check_host(r: &mut Reporter<'_>, host: &str, at: &Path) {
    let why = if host.is_empty() {
        Some("it is empty")
    } else if host.len() > 255 {
        Some("it is longer than 255 characters")
    } else {
        // A trailing dot (`istio.io.`) is allowed; an all-numeric last label is not (that
        // is an IP address, which Istio refuses as a DestinationRule host).
        let name = host.strip_suffix('.').unwrap_or(host);
        let last = name.rsplit('.').next().unwrap_or(name);
        if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
            Some("the last label is all-numeric (an IP address is not a host name)")
        } else {
            name.split('.').enumerate().find_map(|(i, label)| {
                match label.strip_prefix('*') {
                    // The first label may be `*`, or start with it (`*-foo`, `*foo`).
                    Some(rest) if i == 0 => (!rest.is_empty() && !rest.contains('*'))
                        .then(|| istio_label(&format!("a{rest}")))
                        .flatten(),
                    _ if label.contains('*') => {
                        Some("`*` may only start the first label (`*.example.com`)")
                    }
                    _ => istio_label(label),
                }
            })
        }
    };
    if let Some(why) = why {
        r.report(Code::InvalidHost, at, format!("host `{host}` is not a valid host name: {why}"))
            .label("invalid host")
            .help("use a service name, a FQDN (`reviews.bookinfo.svc.cluster.local`) or a wildcard (`*.example.com`)");
    }
}

fn check_subsets(r: &mut Reporter<'_>, dr: &DestinationRule, at: &Path) {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, s) in dr.subsets.iter().enumerate() {
        let p = at.key("subsets").index(i).key("name");
        if let Some(why) = istio_label(&s.name) {
            r.report(
                Code::InvalidSubset,
                &p,
                format!("subset name `{}` is invalid: {why}", s.name),
            )
            .label("invalid subset name")
            .help("subset names are DNS labels (letters, digits and '-'), e.g. `v1`");
        } else if let Some(&(_, first)) = seen.iter().find(|(n, _)| *n == s.name) {
            let span = r.span(&at.key("subsets").index(first).key("name"));
            r.report(
                Code::InvalidSubset,
                &p,
                format!("duplicate subset name `{}`", s.name),
            )
            .label("repeated")
            .also(span, "first here")
            .help("each subset of a rule needs its own name");
        } else {
            seen.push((&s.name, i));
        }
    }
}
