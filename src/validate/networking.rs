//! Networking: what remotes, peers and primaries need to reach each other, checked before
//! anything is installed.
//!
//! [`run`] lists the rule groups in one place; each group is a function whose doc comment
//! names its codes and says why the rule exists.

use std::net::IpAddr;

use crate::diagnostic::{Code, Reporter};
use crate::model::Model;
use crate::path;
use crate::topology::{Dataplane, Distribution, Installer};

/// Annotation keys (or key fragments) that make a cloud load balancer terminate TLS or
/// speak HTTP. The east-west gateway must pass TLS through untouched (`AUTO_PASSTHROUGH`
/// routes on the SNI of Istio's own mTLS); a terminating load balancer breaks it
/// [istio/istio.io#16648].
const L7_KEY_FRAGMENTS: &[&str] = &[
    "ssl-cert",
    "ssl-ports",
    "ssl-negotiation-policy",
    "tls-cert",
    "tls-ports",
    "certificate-id",
    "certificate-ids",
    "pre-shared-cert",
    "managed-certificates",
    "appgw-ssl-certificate",
];

/// Annotation keys whose value picks the load balancer's protocol; any HTTP-ish value means L7.
const PROTOCOL_KEYS: &[&str] = &[
    "service.beta.kubernetes.io/aws-load-balancer-backend-protocol",
    "service.beta.kubernetes.io/do-loadbalancer-protocol",
    "service.beta.kubernetes.io/oci-load-balancer-backend-protocol",
    "service.beta.kubernetes.io/exoscale-loadbalancer-service-protocol",
    "cloud.google.com/app-protocols",
];

/// Runs every networking rule group. The groups are independent; each names the code it
/// reports.
pub fn run(m: &Model, r: &mut Reporter<'_>) {
    remote_pilot_gateways(m, r);
    east_west_addresses(m, r);
    east_west_l7_hints(m, r);
    api_server_urls(m, r);
    watched_api_servers(m, r);
    ambient_multicluster(m, r);
    east_west_annotations(m, r);
    peering(m, r);
    partial_services(m, r);
}

/// E030: a remote's injection webhook and proxies reach istiod through its primary's
/// east-west gateway (`global.remotePilotAddress`), so that primary needs an address.
fn remote_pilot_gateways(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (ci, c) in t.clusters.iter().enumerate() {
        let Some(p) = m.clusters[ci].primary else {
            continue;
        };
        let primary = &t.clusters[p];
        if primary
            .east_west_gateway
            .as_ref()
            .and_then(|g| g.address.as_ref())
            .is_none()
        {
            let span = r.span(&path!("clusters", p, "name"));
            r.report(Code::RemotePrimaryWithoutGateway, &path!("clusters", ci, "primary"), format!("remote `{}` is served by `{}`, which has no east-west gateway address", c.name, primary.name))
                .label("istiod is reached through this primary's east-west gateway")
                .also(span, "no `eastWestGateway.address`")
                .help(format!("add `eastWestGateway: {{address: <IP or DNS name>}}` to cluster `{}`: the remote's `remotePilotAddress` needs it", primary.name));
        }
    }
}

/// E038: the east-west gateway's address is written into other clusters' configuration
/// (remote pilot address, peer Gateways), where only an IP or a DNS name works.
fn east_west_addresses(m: &Model, r: &mut Reporter<'_>) {
    for (ci, c) in m.topology.clusters.iter().enumerate() {
        if let Some(gw) = &c.east_west_gateway
            && let Some(addr) = &gw.address
            && let Some(why) = address_problem(addr)
        {
            r.report(Code::InvalidAddress, &path!("clusters", ci, "eastWestGateway", "address"), format!("`{addr}` is not an IP address or DNS name: {why}"))
                .label("invalid address")
                .help("give the load balancer's IP (203.0.113.10, 2001:db8::10) or DNS name (ew.example.com), without scheme or port");
        }
    }
}

/// W033: a load balancer that terminates TLS or speaks HTTP breaks the mTLS the east-west
/// gateway passes through [istio/istio.io#16648].
fn east_west_l7_hints(m: &Model, r: &mut Reporter<'_>) {
    for (ci, c) in m.topology.clusters.iter().enumerate() {
        let Some(gw) = &c.east_west_gateway else {
            continue;
        };
        for (key, value) in &gw.annotations {
            if l7_hint(key, value) {
                r.report_key(Code::EastWestL7Hint, &path!("clusters", ci, "eastWestGateway", "annotations", key.as_str()), format!("annotation `{key}` makes the east-west load balancer terminate TLS or speak HTTP"))
                    .label("L7 / TLS-terminating hint")
                    .help("the east-west gateway must pass Istio's mTLS through untouched (AUTO_PASSTHROUGH on 15443, HBONE on 15008): use a plain L4 (TCP) load balancer");
            }
        }
    }
}

/// E035, E034: istiod in another cluster dials `apiServer.url`, so it must be an https URL
/// and not a loopback address (which kind and minikube kubeconfigs give).
fn api_server_urls(m: &Model, r: &mut Reporter<'_>) {
    for (ci, c) in m.topology.clusters.iter().enumerate() {
        let Some(api) = &c.api_server else {
            continue;
        };
        let p = path!("clusters", ci, "apiServer", "url");
        match parse_https_url(&api.url) {
            Err(why) => {
                r.report(
                    Code::InvalidApiServerUrl,
                    &p,
                    format!("`{}` is not a usable API server URL: {why}", api.url),
                )
                .label("invalid URL")
                .help("write it as `https://<host>[:port]`, reachable from the primaries' istiod");
            }
            Ok(host) if is_loopback(host) => {
                r.report(Code::LoopbackApiServer, &p, format!("cluster `{}` has its API server on loopback (`{host}`)", c.name))
                    .label("only reachable from the machine itself")
                    .help("istiod in another cluster dials this address: use the API server's routable address or DNS name (kubeconfigs from kind or minikube say 127.0.0.1) [istio/istio#58047]");
            }
            Ok(_) => {}
        }
    }
}

/// E036: a primary discovers the clusters it watches through their API servers (a remote
/// secret each): every other cluster of its mesh, or on Solo's ambient distribution, which
/// peers through gateways, only the remotes it serves.
fn watched_api_servers(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for info in &m.meshes {
        for &c in &info.clusters {
            let watcher = info.primaries.iter().copied().find(|&p| m.discovers(p, c));
            if let Some(w) = watcher
                && t.clusters[c].api_server.is_none()
            {
                let watcher = t.clusters[w].name.as_str();
                r.report(Code::ApiServerMissing, &path!("clusters", c, "name"), format!("cluster `{}` is watched by primary `{watcher}` but has no `apiServer`", t.clusters[c].name))
                    .label("no API server address")
                    .help("add `apiServer: {url: https://<host>:6443}`: the primary's istiod reads this cluster's endpoints through it (remote secret)");
            }
        }
    }
}

/// Whether mesh `mi` is an ambient mesh of more than one cluster.
fn ambient_multicluster_mesh(m: &Model, mi: usize) -> bool {
    m.topology.meshes[mi].dataplane == Dataplane::Ambient && m.meshes[mi].clusters.len() > 1
}

/// E032, E031: upstream ambient multicluster needs Istio 1.27 (the istio-east-west gateway
/// class and multi-network ambient) and supports only multi-primary: no remotes. (Two
/// clusters on one network are untested upstream, not refused: W047 in `install.rs`.) Solo's peering predates the upstream east-west class:
/// its docs need 1.24.3-solo.
fn ambient_multicluster(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (mi, mesh) in t.meshes.iter().enumerate() {
        if !ambient_multicluster_mesh(m, mi) || mesh.istio.distribution != Distribution::Upstream {
            continue;
        }
        let info = &m.meshes[mi];
        if mesh.istio.version.minor() < 27 {
            r.report(Code::AmbientVersionTooOld, &path!("meshes", mi, "istio", "version"), format!("ambient multicluster needs Istio 1.27 or later; mesh `{}` targets {}", mesh.name, mesh.istio.version))
                .label("too old for ambient multicluster")
                .help("set `istio.version` to \"1.27\" or later (the istio-east-west gateway class and multi-network ambient arrived in 1.27), or use `distribution: solo`");
        }
        for &c in &info.clusters {
            if !m.clusters[c].is_primary {
                r.report(Code::AmbientTopologyUnsupported, &path!("clusters", c, "controlPlane"), format!("cluster `{}` is a remote in ambient mesh `{}`", t.clusters[c].name, mesh.name))
                    .label("remote in an ambient mesh")
                    .help("upstream ambient multicluster supports only multi-primary, multi-network: make every cluster a primary on its own network, or use `distribution: solo`");
            }
        }
    }
}

/// W037: services deployed in only some clusters still resolve everywhere, because meshc
/// writes each Service to every cluster of the mesh (namespace sameness). Said once per
/// sidecar mesh without DNS capture, as information. A service with `callers` is written where
/// it is called from instead, which its author has said.
fn partial_services(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (mi, mesh) in t.meshes.iter().enumerate() {
        let info = &m.meshes[mi];
        if mesh.dataplane != Dataplane::Sidecar || mesh.dns.capture || info.clusters.len() <= 1 {
            continue;
        }
        let partial: Vec<usize> = (0..t.services.len())
            .filter(|&s| {
                m.services[s].mesh == Some(mi)
                    && m.services[s].callers.is_none()
                    && m.services[s].clusters.len() < info.clusters.len()
            })
            .collect();
        if let Some(&first) = partial.first() {
            let names: Vec<String> = partial
                .iter()
                .take(5)
                .map(|&s| format!("{}/{}", t.services[s].namespace, t.services[s].name))
                .collect();
            let more = if partial.len() > 5 {
                format!(" and {} more", partial.len() - 5)
            } else {
                String::new()
            };
            r.report_key(Code::ServiceNotEverywhere, &path!("services", first, "clusters"), format!("{} of mesh `{}` run in some clusters only ({}{more}); meshc writes each Service to every cluster, so they resolve everywhere", if partial.len() == 1 { "1 service".to_string() } else { format!("{} services", partial.len()) }, mesh.name, names.join(", ")))
                .label("deployed in some clusters only")
                .help("this is information: calls from clusters without the workloads go to the clusters that run them. Set `dns.capture: true` on the mesh to have the sidecar DNS proxy answer instead");
        }
    }
}

/// E039: Istio turns an ambient east-west Gateway's `spec.infrastructure.annotations` into
/// the annotations of the Service it deploys; the Gateway API allows at most 8 of them.
fn east_west_annotations(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    let meshes = (0..t.meshes.len()).filter(|&mi| ambient_multicluster_mesh(m, mi));
    for c in meshes.flat_map(|mi| m.meshes[mi].clusters.iter().copied()) {
        let Some(gw) = &t.clusters[c].east_west_gateway else {
            continue;
        };
        if m.has_east_west_gateway(c) && gw.annotations.len() > MAX_INFRASTRUCTURE_ANNOTATIONS {
            r.report(Code::TooManyGatewayAnnotations, &path!("clusters", c, "eastWestGateway", "annotations"), format!("cluster `{}` has {} east-west gateway annotations; an ambient east-west Gateway carries at most {MAX_INFRASTRUCTURE_ANNOTATIONS}", t.clusters[c].name, gw.annotations.len()))
                .label("more than 8 annotations")
                .help("they become the Gateway's `spec.infrastructure.annotations`, which the Gateway API CRD limits to 8 entries: keep the load-balancer hints the cloud needs");
        }
    }
}

/// The Gateway API's limit on `spec.infrastructure.annotations` (`maxProperties`).
pub const MAX_INFRASTRUCTURE_ANNOTATIONS: usize = 8;

/// E029, E028, W041 on Solo's ambient meshes of more than one network.
fn peering(m: &Model, r: &mut Reporter<'_>) {
    for (mi, mesh) in m.topology.meshes.iter().enumerate() {
        if mesh.dataplane == Dataplane::Ambient
            && mesh.istio.distribution == Distribution::Solo
            && m.meshes[mi].networks.len() > 1
        {
            mesh_peering(m, r, mi);
        }
    }
}

/// Solo's peering: every primary links to one east-west gateway per other network
/// (`istio-remote-peer-<network>`), so each network holds one primary (E029), and each primary
/// that another network links to has an address (E028). Solo documents the setup for its
/// Helm charts, and only Solo's istioctl knows `values.platforms` (W041).
fn mesh_peering(m: &Model, r: &mut Reporter<'_>, mi: usize) {
    let t = &m.topology;
    let info = &m.meshes[mi];
    let mesh = &t.meshes[mi];
    let primaries: Vec<usize> = info
        .clusters
        .iter()
        .copied()
        .filter(|&c| m.clusters[c].is_primary && !m.clusters[c].duplicate)
        .collect();
    let mut seen: Vec<(usize, usize)> = Vec::new();
    for &c in &primaries {
        let Some(n) = m.clusters[c].network else {
            continue;
        };
        if let Some(&(_, other)) = seen.iter().find(|(net, _)| *net == n) {
            let span = r.span(&path!("clusters", other, "network"));
            r.report(Code::PrimariesShareNetwork, &path!("clusters", c, "network"), format!("primaries `{}` and `{}` of solo ambient mesh `{}` share network `{}`", t.clusters[other].name, t.clusters[c].name, mesh.name, t.networks[n].name))
                .label("second primary on this network")
                .also(span, "first primary on it")
                .help("Solo's peering links networks (one `istio-remote-peer-<network>` Gateway each): put each primary on its own network, as Solo recommends (network named after the cluster)");
        } else {
            seen.push((n, c));
        }
    }
    for &c in &primaries {
        let net = m.clusters[c].network;
        let linkers: Vec<&str> = primaries
            .iter()
            .filter(|&&p| m.clusters[p].network != net)
            .map(|&p| t.clusters[p].name.as_str())
            .collect();
        let gateway = t.clusters[c].east_west_gateway.as_ref();
        if linkers.is_empty() || gateway.and_then(|g| g.address.as_ref()).is_some() {
            continue;
        }
        let at = if gateway.is_some() {
            path!("clusters", c, "eastWestGateway")
        } else {
            path!("clusters", c, "name")
        };
        r.report(Code::PeerWithoutGatewayAddress, &at, format!("primary `{}` of solo ambient mesh `{}` has no east-west gateway address, and {} link to it", t.clusters[c].name, mesh.name, linkers.join(", ")))
            .label("no `eastWestGateway.address`")
            .help(format!("add `eastWestGateway: {{address: <IP or DNS name>}}` to cluster `{}`: the load balancer address of its istio-eastwest Gateway, which each peer's istio-remote Gateway names in `spec.addresses`", t.clusters[c].name));
    }
    if mesh.istio.installers.contains(&Installer::Istioctl) {
        r.report(Code::IstioctlPeering, &path!("meshes", mi, "istio", "installers"), format!("mesh `{}` peers on the solo distribution: its IstioOperator carries `values.platforms.peering`, which upstream istioctl refuses", mesh.name))
            .label("IstioOperator input for a peering mesh")
            .help("upstream istioctl decodes `values` strictly and stops at `platforms` (unknown field); install with Solo's istioctl of the same `-solo` version, or drop `istioctl` from `installers` (Solo documents peering for its Helm charts)");
    }
}

/// Service exposure values that only Solo's ambient distribution understands.
pub fn services(m: &Model, r: &mut Reporter<'_>) {
    let t = &m.topology;
    for (s, svc) in t.services.iter().enumerate() {
        let Some(mi) = m.services[s].mesh else {
            continue;
        };
        let mesh = &t.meshes[mi];
        let solo = mesh.istio.distribution == Distribution::Solo;
        let ambient = mesh.dataplane == Dataplane::Ambient;
        if svc.global.is_global_only() && !(solo && ambient) {
            let why = if ambient {
                "upstream Istio has no service scope that changes a Service's own name"
            } else {
                "a sidecar mesh has no service scopes"
            };
            r.report(Code::GlobalOnlyNotSolo, &path!("services", s, "global"), format!("service `{}/{}` asks for `global-only` in mesh `{}`: {why}", svc.namespace, svc.name, mesh.name))
                .label("solo ambient only")
                .help("`global-only` is Solo's `solo.io/service-scope: global-only`: use `global: true` here, or `distribution: solo` with `dataplane: ambient`");
        }
        if let Some(td) = svc.traffic_distribution
            && td.solo_only()
            && !solo
        {
            r.report(Code::SoloTrafficDistribution, &path!("services", s, "trafficDistribution"), format!("service `{}/{}` asks for traffic distribution `{}`, which only the solo distribution understands", svc.namespace, svc.name, td.as_str()))
                .label("not an upstream Istio value")
                .help("upstream Istio accepts `PreferClose` (= `PreferSameZone`) and `PreferSameNode`, and treats anything else as `Any` with a warning");
        }
    }
}

/// Whether an annotation asks a cloud load balancer for TLS termination or L7.
fn l7_hint(key: &str, value: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if L7_KEY_FRAGMENTS.iter().any(|f| k.contains(f)) {
        return true;
    }
    if PROTOCOL_KEYS.contains(&k.as_str()) {
        let v = value.to_ascii_lowercase();
        return ["http", "https", "ssl", "tls", "http2", "h2", "grpc"]
            .iter()
            .any(|p| v.contains(p));
    }
    false
}

/// Why an east-west address is neither an IP nor a DNS name.
fn address_problem(addr: &str) -> Option<&'static str> {
    if addr.parse::<IpAddr>().is_ok() {
        return None;
    }
    if addr.contains("://") {
        return Some("it has a scheme");
    }
    if addr.contains(':') {
        return Some("it has a port, or is a malformed IPv6 address");
    }
    if addr.is_empty() || addr.len() > 253 {
        return Some("a DNS name has 1 to 253 characters");
    }
    let name = addr.strip_suffix('.').unwrap_or(addr);
    let ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !ok {
        return Some("a DNS name is dot-separated labels of letters, digits and '-'");
    }
    if name
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some("it looks like an IPv4 address but is not one");
    }
    None
}

/// The host of an `https://host[:port][/path]` URL.
fn parse_https_url(url: &str) -> Result<&str, &'static str> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(if url.starts_with("http://") {
            "the API server must be reached over https"
        } else {
            "it does not start with https://"
        });
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("credentials do not belong in the URL");
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (h, port) = v6
            .split_once(']')
            .ok_or("an IPv6 host needs a closing ']'")?;
        if !(port.is_empty() || port.strip_prefix(':').is_some_and(valid_port)) {
            return Err("the port is not a number from 1 to 65535");
        }
        h
    } else {
        let (h, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if port.is_some_and(|p| !valid_port(p)) {
            return Err("the port is not a number from 1 to 65535");
        }
        h
    };
    if host.is_empty() {
        return Err("it has no host");
    }
    if host.parse::<IpAddr>().is_err() && address_problem(host).is_some() {
        return Err("the host is not an IP address or DNS name");
    }
    Ok(host)
}

fn valid_port(p: &str) -> bool {
    p.parse::<u16>().is_ok_and(|n| n > 0)
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_addresses() {
        assert_eq!(parse_https_url("https://10.0.0.1:6443"), Ok("10.0.0.1"));
        assert_eq!(parse_https_url("https://[::1]:6443"), Ok("::1"));
        assert_eq!(
            parse_https_url("https://api.example.com"),
            Ok("api.example.com")
        );
        assert!(parse_https_url("http://api").is_err());
        assert!(parse_https_url("https://api:99999").is_err());
        assert!(is_loopback("127.0.0.2") && is_loopback("localhost") && is_loopback("::1"));
        assert!(!is_loopback("10.0.0.1"));
        assert_eq!(address_problem("203.0.113.10"), None);
        assert_eq!(address_problem("ew.example.com"), None);
        assert!(address_problem("https://ew").is_some());
        assert!(address_problem("ew:15443").is_some());
        assert!(address_problem("300.1.1.1").is_some());
        assert!(l7_hint(
            "service.beta.kubernetes.io/aws-load-balancer-ssl-cert",
            "arn:..."
        ));
        assert!(l7_hint(
            "service.beta.kubernetes.io/aws-load-balancer-backend-protocol",
            "http"
        ));
        assert!(!l7_hint(
            "service.beta.kubernetes.io/aws-load-balancer-type",
            "nlb"
        ));
    }
}
