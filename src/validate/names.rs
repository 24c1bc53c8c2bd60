//! Names: DNS-1123 labels everywhere a name becomes a directory, a label value or an object
//! name, and uniqueness where Kubernetes or Istio needs it.
//!
//! Cluster names get their own code (E020): Istio identifies a cluster only by its
//! `clusterName`, and two clusters with one name (or both left at Istio's default
//! `Kubernetes`) silently merge their endpoints [istio/istio#23229].
//!
//! [`run`] lists the rule groups in one place; each group is a function whose doc comment
//! names its code and says why the rule exists.

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Reporter};
use crate::model::Model;
use crate::path;
use crate::span::Path;
use crate::topology::PortProtocol;

/// Why `s` is not a DNS-1123 label, if it is not one.
pub fn dns1123_label(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("it is empty");
    }
    if s.len() > 63 {
        return Some("it is longer than 63 characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("only lower-case letters, digits and '-' are allowed");
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("it must start and end with a letter or digit");
    }
    None
}

/// Why `s` is not a DNS-1123 subdomain (a Kubernetes object name: labels joined by dots, at
/// most 253 characters), if it is not one.
pub fn dns1123_subdomain(s: &str) -> Option<&'static str> {
    if s.len() > 253 {
        return Some("it is longer than 253 characters");
    }
    s.split('.').find_map(dns1123_label)
}

/// Why `s` is not a DNS-1035 label (a DNS-1123 label that starts with a letter): the rule for
/// Kubernetes Service names.
pub fn dns1035_label(s: &str) -> Option<&'static str> {
    dns1123_label(s).or_else(|| {
        (!s.starts_with(|c: char| c.is_ascii_lowercase()))
            .then_some("a Service name must start with a letter")
    })
}

/// Why `s` is not a valid region or zone name: free-form, but without the characters that
/// structure a locality (`/`, `*`) or whitespace.
fn locality_segment(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("it is empty")
    } else if s.contains('/') || s.contains('*') {
        Some("'/' and '*' structure locality patterns and cannot appear in a name")
    } else if s.chars().any(char::is_whitespace) {
        Some("it contains white space")
    } else {
        None
    }
}

/// Why `s` is not a usable SPIFFE trust domain.
pub fn trust_domain(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("it is empty");
    }
    if s.len() > 255 {
        return Some("it is longer than 255 characters");
    }
    // As Istio's ValidateTrustDomain: dot-separated DNS-1123 labels.
    s.split('.').find_map(|label| {
        dns1123_label(label).map(|why| match why {
            "it is empty" => "it has an empty label",
            _ => "each dot-separated part must be a DNS-1123 label (lower case, digits, '-')",
        })
    })
}

/// The naming rules, each with the help that explains it.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Label,
    ServiceName,
    TrustDomain,
    Region,
    Zone,
}

fn check(r: &mut Reporter<'_>, at: &Path, what: &str, value: &str, rule: Rule) {
    let why = match rule {
        Rule::Label => dns1123_label(value),
        Rule::ServiceName => dns1035_label(value),
        Rule::TrustDomain => trust_domain(value),
        Rule::Region | Rule::Zone => locality_segment(value),
    };
    let Some(why) = why else { return };
    let (label, help) = match rule {
        Rule::Label => (
            "invalid name",
            format!(
                "use a DNS-1123 label: lower-case letters, digits and '-', starting and ending \
                 with a letter or digit, at most 63 characters (e.g. `{}`)",
                suggest_label(value)
            ),
        ),
        Rule::ServiceName => (
            "invalid name",
            format!(
                "Kubernetes Service names are DNS-1035 labels: lower-case letters, digits and \
                 '-', starting with a letter (e.g. `{}`)",
                suggest_service_name(value)
            ),
        ),
        Rule::TrustDomain => (
            "invalid trust domain",
            "use a DNS-like name such as `cluster.local` or `prod.example.com`".to_string(),
        ),
        Rule::Region => (
            "invalid region",
            "write the region as the nodes' `topology.kubernetes.io/region` label has it"
                .to_string(),
        ),
        Rule::Zone => (
            "invalid zone",
            "write the zone as the nodes' `topology.kubernetes.io/zone` label has it".to_string(),
        ),
    };
    r.report(
        Code::InvalidName,
        at,
        format!("{what} `{value}` is not valid: {why}"),
    )
    .label(label)
    .help(help);
}

/// A DNS-1035 rendering of an arbitrary string (starts with a letter), for help texts.
fn suggest_service_name(s: &str) -> String {
    let label = suggest_label(s);
    if label.starts_with(|c: char| c.is_ascii_lowercase()) {
        label
    } else {
        let mut named = format!("svc-{label}");
        named.truncate(63);
        named.trim_end_matches('-').to_string()
    }
}

/// A DNS-1123 rendering of an arbitrary string, for help texts.
fn suggest_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    out = out.trim_matches('-').to_string();
    out.truncate(63);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "name-1".to_string()
    } else {
        out
    }
}

/// Reports the second and later occurrences of each key.
fn duplicates<K: Ord>(
    r: &mut Reporter<'_>,
    code: Code,
    items: impl IntoIterator<Item = (K, Path, String)>,
    help: &str,
) {
    let mut first: BTreeMap<K, Path> = BTreeMap::new();
    for (key, at, what) in items {
        if let Some(prev) = first.get(&key) {
            let prev_span = r.span(prev);
            r.report(code, &at, format!("{what} is declared twice"))
                .label("declared again here")
                .also(prev_span, "first declared here")
                .help(help.to_string());
        } else {
            first.insert(key, at);
        }
    }
}

/// Runs every naming rule group. The groups are independent; each names the code it reports.
pub fn run(m: &Model, r: &mut Reporter<'_>) {
    // E010: every name is valid where it ends up.
    mesh_names(m, r);
    network_names(m, r);
    cluster_names(m, r);
    service_names(m, r);
    destination_rule_names(m, r);
    istio_config_names(m, r);
    ingress_gateway_names(m, r);
    locality_names(m, r);
    // E011: names unique where Kubernetes or Istio tells objects apart by them.
    unique_ports(m, r);
    unique_localities(m, r);
    unique_names(m, r);
    // E020: cluster names, which Istio merges silently.
    unique_cluster_names(m, r);
}

/// E010 on meshes. The mesh name is a label value and a directory name, the revision becomes
/// part of istiod's object names and the `istio.io/rev` label, and Istio refuses a trust
/// domain that is not dot-separated DNS labels.
fn mesh_names(m: &Model, r: &mut Reporter<'_>) {
    for (i, mesh) in m.topology.meshes.iter().enumerate() {
        check(
            r,
            &path!("meshes", i, "name"),
            "mesh",
            &mesh.name,
            Rule::Label,
        );
        if !mesh.istio.revision.is_empty() {
            check(
                r,
                &path!("meshes", i, "istio", "revision"),
                "revision",
                &mesh.istio.revision,
                Rule::Label,
            );
        }
        check(
            r,
            &path!("meshes", i, "trustDomain"),
            "trust domain",
            &mesh.trust_domain,
            Rule::TrustDomain,
        );
    }
}

/// E010 on networks: a network name is the value of the `topology.istio.io/network` label.
fn network_names(m: &Model, r: &mut Reporter<'_>) {
    for (i, n) in m.topology.networks.iter().enumerate() {
        check(
            r,
            &path!("networks", i, "name"),
            "network",
            &n.name,
            Rule::Label,
        );
    }
}

/// E010 on clusters: the name is a directory of the output and Istio's `clusterName`; a
/// cluster's own trust domain is checked as a mesh's is; its region and zones are matched
/// against the nodes' topology labels and written into locality patterns, where `/` and `*`
/// have a meaning.
fn cluster_names(m: &Model, r: &mut Reporter<'_>) {
    for (i, c) in m.topology.clusters.iter().enumerate() {
        check(
            r,
            &path!("clusters", i, "name"),
            "cluster",
            &c.name,
            Rule::Label,
        );
        if let Some(td) = c.trust_domain.as_deref().filter(|s| !s.is_empty()) {
            check(
                r,
                &path!("clusters", i, "trustDomain"),
                "trust domain",
                td,
                Rule::TrustDomain,
            );
        }
        if let Some(region) = &c.region {
            check(
                r,
                &path!("clusters", i, "region"),
                "region",
                region,
                Rule::Region,
            );
        }
        for (zi, z) in c.zones.iter().enumerate() {
            check(r, &path!("clusters", i, "zones", zi), "zone", z, Rule::Zone);
        }
    }
}

/// E010 on services: each becomes a Kubernetes Service (a DNS-1035 name) in a namespace, with
/// named ports.
fn service_names(m: &Model, r: &mut Reporter<'_>) {
    for (i, s) in m.topology.services.iter().enumerate() {
        check(
            r,
            &path!("services", i, "name"),
            "service",
            &s.name,
            Rule::ServiceName,
        );
        check(
            r,
            &path!("services", i, "namespace"),
            "namespace",
            &s.namespace,
            Rule::Label,
        );
        for (pi, p) in s.ports.iter().enumerate() {
            check(
                r,
                &path!("services", i, "ports", pi, "name"),
                "port",
                &p.name,
                Rule::Label,
            );
        }
    }
}

/// E010 on DestinationRules: the name and namespace become the object's metadata.
fn destination_rule_names(m: &Model, r: &mut Reporter<'_>) {
    for (i, d) in m.topology.destination_rules.iter().enumerate() {
        check(
            r,
            &path!("destinationRules", i, "name"),
            "destinationRule",
            &d.name,
            Rule::Label,
        );
        if let Some(ns) = &d.namespace {
            check(
                r,
                &path!("destinationRules", i, "namespace"),
                "namespace",
                ns,
                Rule::Label,
            );
        }
    }
}

/// E010 on `istioConfig` resources: their metadata is written as given.
fn istio_config_names(m: &Model, r: &mut Reporter<'_>) {
    for (i, c) in m.topology.istio_config.iter().enumerate() {
        check(
            r,
            &path!("istioConfig", i, "metadata", "name"),
            "resource",
            &c.metadata.name,
            Rule::Label,
        );
        check(
            r,
            &path!("istioConfig", i, "metadata", "namespace"),
            "namespace",
            &c.metadata.namespace,
            Rule::Label,
        );
    }
}

/// E010 on ingress gateways: the name and namespace become the gateway's Deployment, Service
/// and Helm release.
fn ingress_gateway_names(m: &Model, r: &mut Reporter<'_>) {
    for (i, g) in m.topology.ingress_gateways.iter().enumerate() {
        check(
            r,
            &path!("ingressGateways", i, "name"),
            "ingress gateway",
            &g.name,
            Rule::Label,
        );
        check(
            r,
            &path!("ingressGateways", i, "namespace"),
            "namespace",
            &g.namespace,
            Rule::Label,
        );
    }
}

/// E010 on the locality catalogue: its regions and zones are matched against node labels and
/// written into locality patterns, where `/` and `*` have a meaning.
fn locality_names(m: &Model, r: &mut Reporter<'_>) {
    let Some(locs) = &m.topology.localities else {
        return;
    };
    for (i, l) in locs.iter().enumerate() {
        check(
            r,
            &path!("localities", i, "region"),
            "region",
            &l.region,
            Rule::Region,
        );
        for (zi, z) in l.zones.iter().enumerate() {
            check(
                r,
                &path!("localities", i, "zones", zi),
                "zone",
                z,
                Rule::Zone,
            );
        }
    }
}

/// E011 on a service's ports: Kubernetes refuses a Service with two ports of one name or of
/// one number and protocol.
fn unique_ports(m: &Model, r: &mut Reporter<'_>) {
    for (i, s) in m.topology.services.iter().enumerate() {
        duplicates(
            r,
            Code::DuplicateName,
            s.ports.iter().enumerate().map(|(pi, p)| {
                (
                    p.name.clone(),
                    path!("services", i, "ports", pi, "name"),
                    format!("port name `{}`", p.name),
                )
            }),
            "each port of a Service needs its own name",
        );
        duplicates(
            r,
            Code::DuplicateName,
            s.ports.iter().enumerate().map(|(pi, p)| {
                let protocol = p.protocol.unwrap_or(PortProtocol::Tcp);
                (
                    (p.port, protocol),
                    path!("services", i, "ports", pi, "port"),
                    format!("port {}/{}", p.port, protocol.as_str()),
                )
            }),
            "each port of a Service needs its own number and protocol",
        );
    }
}

/// E011 on the locality catalogue: a region listed twice, or a zone under two regions, would
/// make a locality's place in the catalogue ambiguous.
fn unique_localities(m: &Model, r: &mut Reporter<'_>) {
    let Some(locs) = &m.topology.localities else {
        return;
    };
    duplicates(
        r,
        Code::DuplicateName,
        locs.iter().enumerate().map(|(i, l)| {
            (
                l.region.clone(),
                path!("localities", i, "region"),
                format!("region `{}`", l.region),
            )
        }),
        "list each region once, with all its zones",
    );
    duplicates(
        r,
        Code::DuplicateName,
        locs.iter().enumerate().flat_map(|(i, l)| {
            l.zones.iter().enumerate().map(move |(zi, z)| {
                (
                    z.clone(),
                    path!("localities", i, "zones", zi),
                    format!("zone `{z}`"),
                )
            })
        }),
        "a zone belongs to one region and is listed once",
    );
}

/// E011 on top-level objects: references resolve by name, and the objects written for them
/// are told apart by name (per namespace, and per kind for `istioConfig`), so two of one name
/// would be one reference target or overwrite each other.
fn unique_names(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    duplicates(
        r,
        Code::DuplicateName,
        t.meshes.iter().enumerate().map(|(i, x)| {
            (
                x.name.clone(),
                path!("meshes", i, "name"),
                format!("mesh `{}`", x.name),
            )
        }),
        "mesh names are unique: rename one",
    );
    duplicates(
        r,
        Code::DuplicateName,
        t.networks.iter().enumerate().map(|(i, x)| {
            (
                x.name.clone(),
                path!("networks", i, "name"),
                format!("network `{}`", x.name),
            )
        }),
        "network names are unique: rename one",
    );
    duplicates(
        r,
        Code::DuplicateName,
        t.services.iter().enumerate().map(|(i, x)| {
            (
                (m.services[i].mesh, x.namespace.clone(), x.name.clone()),
                path!("services", i, "name"),
                format!("service `{}/{}`", x.namespace, x.name),
            )
        }),
        "a service name is unique within its namespace: merge the two entries (list every cluster under `clusters:`)",
    );
    duplicates(
        r,
        Code::DuplicateName,
        t.destination_rules.iter().enumerate().filter_map(|(i, x)| {
            let ns = m.destination_rules[i].namespace.clone()?;
            Some((
                (m.destination_rules[i].mesh, ns.clone(), x.name.clone()),
                path!("destinationRules", i, "name"),
                format!("destinationRule `{ns}/{}`", x.name),
            ))
        }),
        "a DestinationRule name is unique within its namespace: rename one",
    );
    duplicates(
        r,
        Code::DuplicateName,
        t.istio_config.iter().enumerate().map(|(i, x)| {
            let group = x
                .api_version
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            (
                (
                    m.istio_config[i].mesh,
                    group,
                    x.kind.clone(),
                    x.metadata.namespace.clone(),
                    x.metadata.name.clone(),
                ),
                path!("istioConfig", i, "metadata", "name"),
                format!("{} `{}/{}`", x.kind, x.metadata.namespace, x.metadata.name),
            )
        }),
        "a resource name is unique per kind and namespace: rename one",
    );
    duplicates(
        r,
        Code::DuplicateName,
        t.ingress_gateways.iter().enumerate().map(|(i, x)| {
            (
                (
                    m.ingress_gateways[i].mesh,
                    x.namespace.clone(),
                    x.name.clone(),
                ),
                path!("ingressGateways", i, "name"),
                format!("ingress gateway `{}/{}`", x.namespace, x.name),
            )
        }),
        "an ingress gateway name is unique within its namespace: rename one",
    );
}

/// E020: Istio tells clusters apart only by `clusterName`; two clusters of one name (or both
/// left at Istio's default `Kubernetes`) silently merge their endpoints [istio/istio#23229].
fn unique_cluster_names(m: &Model, r: &mut Reporter<'_>) {
    duplicates(
        r,
        Code::DuplicateClusterName,
        m.topology.clusters.iter().enumerate().map(|(i, x)| {
            (
                x.name.clone(),
                path!("clusters", i, "name"),
                format!("cluster `{}`", x.name),
            )
        }),
        "Istio tells clusters apart only by clusterName; two clusters with one name merge their \
         endpoints and remote secrets (istio/istio#23229): give each cluster its own name",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(dns1123_label("cluster-1"), None);
        assert!(dns1123_label("Cluster1").is_some());
        assert!(dns1123_label("-a").is_some());
        assert!(dns1123_label(&"a".repeat(64)).is_some());
        assert!(dns1035_label("1svc").is_some());
        assert_eq!(dns1035_label("svc1"), None);
        assert_eq!(suggest_label("My_Cluster"), "my-cluster");
        assert_eq!(trust_domain("cluster.local"), None);
        assert!(trust_domain("a..b").is_some());
    }
}
