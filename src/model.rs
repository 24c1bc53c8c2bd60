//! Stage 3: the resolved, cross-referenced model.
//!
//! The typed topology names things by string (`network: network1`, `primary: cluster1`); the
//! model resolves every such reference to an index, derives what the file leaves implicit
//! (the mesh of a service, the default placement of a DestinationRule, the locality catalogue)
//! and records, per mesh, its clusters, primaries and networks. Later stages (planning,
//! rendering) consume the model and never look a name up again.
//!
//! Resolution reports the references it cannot resolve (unknown, ambiguous, crossing meshes)
//! and keeps going: an unresolved reference is `None` in the model, so that every other rule
//! still runs in the same pass. A model handed to the build has no error diagnostics, and then
//! every reference is `Some`.

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Reporter};
use crate::path;
use crate::span::Path;
use crate::suggest::did_you_mean;
use crate::topology::{ControlPlane, Dataplane, Distribution, Topology};

/// Index of a mesh in `Topology::meshes`.
pub type MeshId = usize;
/// Index of a network in `Topology::networks`.
pub type NetworkId = usize;
/// Index of a cluster in `Topology::clusters`.
pub type ClusterId = usize;
/// Index of a service in `Topology::services`.
pub type ServiceId = usize;

/// The topology with every reference resolved.
#[derive(Debug, Clone)]
pub struct Model {
    pub topology: Topology,
    pub meshes: Vec<MeshInfo>,
    pub networks: Vec<NetworkInfo>,
    pub clusters: Vec<ClusterInfo>,
    pub services: Vec<ServiceInfo>,
    pub destination_rules: Vec<PlacedInfo>,
    pub istio_config: Vec<PlacedInfo>,
    pub ingress_gateways: Vec<PlacedInfo>,
    pub catalogue: Catalogue,
}

impl Model {
    /// The clusters of mesh `mi`, in topology order, without those whose name repeats another
    /// (validation reports them; nothing is built for them).
    pub fn members(&self, mi: MeshId) -> Vec<ClusterId> {
        self.meshes[mi]
            .clusters
            .iter()
            .copied()
            .filter(|&c| !self.clusters[c].duplicate)
            .collect()
    }

    /// A cluster's trust domain: its own override, or else its mesh's (empty for a cluster
    /// whose mesh did not resolve).
    pub fn trust_domain(&self, c: ClusterId) -> &str {
        let t = &self.topology;
        t.clusters[c]
            .trust_domain
            .as_deref()
            .filter(|s| !s.is_empty())
            .or_else(|| {
                self.clusters[c]
                    .mesh
                    .map(|m| t.meshes[m].trust_domain.as_str())
            })
            .unwrap_or_default()
    }

    /// Whether `watcher`'s istiod discovers `watched` through a remote secret (and `watched`
    /// therefore needs an API server address and the reader token). Every primary discovers every
    /// other cluster of its mesh, except on Solo's ambient distribution, where primaries peer
    /// through their gateways and a primary discovers only the remotes it serves.
    pub fn discovers(&self, watcher: ClusterId, watched: ClusterId) -> bool {
        let (w, d) = (&self.clusters[watcher], &self.clusters[watched]);
        if watcher == watched || !w.is_primary || w.duplicate || d.duplicate || w.mesh != d.mesh {
            return false;
        }
        let Some(mesh) = w.mesh.map(|m| &self.topology.meshes[m]) else {
            return false;
        };
        let peers_by_gateway =
            mesh.dataplane == Dataplane::Ambient && mesh.istio.distribution == Distribution::Solo;
        !peers_by_gateway || (!d.is_primary && d.primary == Some(watcher))
    }

    /// Whether `c` is a primary that serves remotes of its mesh (which reach its istiod through its
    /// east-west gateway).
    pub fn serves_remotes(&self, c: ClusterId) -> bool {
        let Some(mi) = self.clusters[c].mesh else {
            return false;
        };
        self.clusters[c].is_primary
            && self.meshes[mi].clusters.iter().any(|&m| {
                let member = &self.clusters[m];
                !member.duplicate && member.primary == Some(c) && !member.is_primary
            })
    }

    /// Whether `c` runs an east-west gateway: every cluster of a multi-network mesh, and primaries
    /// that serve remotes.
    pub fn has_east_west_gateway(&self, c: ClusterId) -> bool {
        let multi_network = self.clusters[c]
            .mesh
            .is_some_and(|mi| self.meshes[mi].networks.len() > 1);
        multi_network || self.serves_remotes(c)
    }

    /// How a proxy in cluster `from` reaches the endpoints of service `s` in cluster `to`: pod
    /// to pod on one network; through the east-west gateway of the endpoints' network on
    /// another (a network with none is unreachable: Istio would hand out pod addresses that
    /// do not route); never into another mesh. In an ambient mesh only a global service spans
    /// clusters (upstream `istio.io/global`; on Solo's distribution under its global name,
    /// `<name>.<namespace>.mesh.internal`, or its own name with `global-only`).
    ///
    /// `gateways` is [`Model::gateway_networks`], computed once by the caller.
    pub fn reaches(
        &self,
        gateways: &[bool],
        from: ClusterId,
        to: ClusterId,
        s: ServiceId,
    ) -> Reach {
        let t = &self.topology;
        let (f, d) = (&self.clusters[from], &self.clusters[to]);
        let (Some(fm), Some(dm)) = (f.mesh, d.mesh) else {
            return Reach::Never("its mesh is unknown".to_string());
        };
        if fm != dm {
            return Reach::Never(format!(
                "it is in mesh `{}` and the source in mesh `{}`: meshes share no endpoints",
                t.meshes[dm].name, t.meshes[fm].name
            ));
        }
        if from != to
            && t.meshes[dm].dataplane == Dataplane::Ambient
            && !t.services[s].global.is_global()
        {
            return Reach::Never(
                "the service is not `global`: ambient serves only the caller's own cluster"
                    .to_string(),
            );
        }
        if f.network == d.network {
            return Reach::Direct;
        }
        let gateway = d
            .network
            .is_some_and(|n| gateways.get(n).copied().unwrap_or(false));
        if gateway {
            Reach::Gateway
        } else {
            let network = &t.clusters[to].network;
            Reach::Never(format!("{network} has no east-west gateway"))
        }
    }
}

impl Model {
    /// For each network, whether a cluster on it runs an east-west gateway.
    pub fn gateway_networks(&self) -> Vec<bool> {
        self.networks
            .iter()
            .map(|n| {
                n.clusters
                    .iter()
                    .any(|&c| !self.clusters[c].duplicate && self.has_east_west_gateway(c))
            })
            .collect()
    }
}

/// How a proxy reaches a cluster's endpoints ([`Model::reaches`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Pod to pod: the same network.
    Direct,
    /// Through the east-west gateway of the endpoints' network.
    Gateway,
    /// Not at all, and why.
    Never(String),
}

/// What the model knows about a mesh.
#[derive(Debug, Clone, Default)]
pub struct MeshInfo {
    /// Every cluster of the mesh, in file order.
    pub clusters: Vec<ClusterId>,
    /// Its primaries: the clusters that run istiod and hold Istio configuration.
    pub primaries: Vec<ClusterId>,
    /// The networks its clusters are on, in order of first use.
    pub networks: Vec<NetworkId>,
    /// A later mesh with an earlier mesh's name (E011): references go to the first, so this
    /// one owns nothing and rules skip it.
    pub duplicate: bool,
}

/// What the model knows about a network.
#[derive(Debug, Clone, Default)]
pub struct NetworkInfo {
    /// The clusters on the network.
    pub clusters: Vec<ClusterId>,
    /// A later network with an earlier network's name (E011); rules skip it.
    pub duplicate: bool,
}

/// What the model knows about a cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterInfo {
    pub mesh: Option<MeshId>,
    pub network: Option<NetworkId>,
    /// For a remote: the primary that serves it.
    pub primary: Option<ClusterId>,
    pub is_primary: bool,
    /// A later cluster with an earlier cluster's name (E020): the two cannot be told apart,
    /// so rules about how clusters see each other skip it.
    pub duplicate: bool,
}

/// What the model knows about a service.
#[derive(Debug, Clone, Default)]
pub struct ServiceInfo {
    pub mesh: Option<MeshId>,
    /// Where its workloads run: the listed clusters, or every cluster of the mesh.
    pub clusters: Vec<ClusterId>,
    /// The clusters that call it, when `callers` is written (those that resolved, in file
    /// order, without repeats): the Service is then written to `clusters` and these only.
    /// `None`: to every cluster of the mesh.
    pub callers: Option<Vec<ClusterId>>,
}

/// A DestinationRule, `istioConfig` entry or ingress gateway: its mesh and where it goes.
#[derive(Debug, Clone, Default)]
pub struct PlacedInfo {
    pub mesh: Option<MeshId>,
    /// The clusters the object is written to.
    pub clusters: Vec<ClusterId>,
    /// DestinationRules: the namespace the rule lives in.
    pub namespace: Option<String>,
    /// DestinationRules: the service its host names, when it names one.
    pub service: Option<ServiceId>,
}

/// The locality catalogue: regions and their zones.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub regions: Vec<Region>,
}

#[derive(Debug, Clone, Default)]
pub struct Region {
    pub name: String,
    pub zones: Vec<String>,
}

impl Catalogue {
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }
}

/// Resolves the topology, reporting every reference that does not resolve.
///
/// Each step reads what the steps before it resolved: clusters first (their meshes and
/// networks, then their primaries), then the objects placed on clusters.
pub fn resolve(topology: Topology, r: &mut Reporter<'_>) -> Model {
    let t = &topology;
    let names = Names::new(t);
    let (meshes, networks, mut clusters) = memberships(&names, r);
    roles(&names, &mut clusters, r);
    let services = services(&names, &meshes, &clusters, r);
    let destination_rules = destination_rules(&names, &meshes, &clusters, &services, r);
    let istio_config = istio_config(&names, &meshes, &clusters, r);
    let ingress_gateways = ingress_gateways(&names, &meshes, &clusters, r);
    let catalogue = catalogue(t, r);

    Model {
        topology,
        meshes,
        networks,
        clusters,
        services,
        destination_rules,
        istio_config,
        ingress_gateways,
        catalogue,
    }
}

/// Each cluster's mesh and network (E012 unknown, E014 ambiguous mesh), and from them each
/// mesh's clusters, primaries and networks and each network's clusters: every later step
/// places objects through these.
fn memberships(
    names: &Names<'_>,
    r: &mut Reporter<'_>,
) -> (Vec<MeshInfo>, Vec<NetworkInfo>, Vec<ClusterInfo>) {
    let t = names.topology;
    let mut meshes: Vec<MeshInfo> = (0..t.meshes.len())
        .map(|i| MeshInfo {
            duplicate: names.meshes.is_duplicate(i),
            ..MeshInfo::default()
        })
        .collect();
    let mut networks: Vec<NetworkInfo> = (0..t.networks.len())
        .map(|i| NetworkInfo {
            duplicate: names.networks.is_duplicate(i),
            ..NetworkInfo::default()
        })
        .collect();
    let mut clusters = vec![ClusterInfo::default(); t.clusters.len()];
    for (ci, c) in t.clusters.iter().enumerate() {
        let at = path!("clusters", ci);
        let mesh = match &c.mesh {
            Some(m) => names.meshes.lookup(r, m, &at.key("mesh")),
            None => only_mesh(r, t, &at, "cluster"),
        };
        let network = names.networks.lookup(r, &c.network, &at.key("network"));
        clusters[ci] = ClusterInfo {
            mesh,
            network,
            primary: None,
            is_primary: c.control_plane == ControlPlane::Primary,
            duplicate: names.clusters.is_duplicate(ci),
        };
        if let Some(m) = mesh {
            meshes[m].clusters.push(ci);
            if c.control_plane == ControlPlane::Primary {
                meshes[m].primaries.push(ci);
            }
            if let Some(n) = network
                && !meshes[m].networks.contains(&n)
            {
                meshes[m].networks.push(n);
            }
        }
        if let Some(n) = network {
            networks[n].clusters.push(ci);
        }
    }
    (meshes, networks, clusters)
}

/// Control-plane roles: a remote runs no istiod, so it must name the primary that serves it
/// (E016), and only remotes name one (E018). Sets each remote's `primary`.
fn roles(names: &Names<'_>, clusters: &mut [ClusterInfo], r: &mut Reporter<'_>) {
    let t = names.topology;
    for (ci, c) in t.clusters.iter().enumerate() {
        let at = path!("clusters", ci);
        match (c.control_plane, &c.primary) {
            (ControlPlane::Primary, Some(_)) => {
                r.report_key(
                    Code::PrimaryWithPrimary,
                    &at.key("primary"),
                    format!("primary cluster `{}` has `primary:` set", c.name),
                )
                .label("only remotes name a primary")
                .help("remove `primary:`, or set `controlPlane: remote` if this cluster has no istiod");
            }
            (ControlPlane::Remote, None) => {
                r.report(
                    Code::RemoteWithoutPrimary,
                    &at.key("controlPlane"),
                    format!("remote cluster `{}` has no `primary:`", c.name),
                )
                .label("a remote runs no istiod")
                .help(
                    "add `primary: <cluster>` naming the primary whose istiod serves this cluster",
                );
            }
            (ControlPlane::Remote, Some(p)) => {
                clusters[ci].primary = serving_primary(names, clusters, ci, p, r);
            }
            (ControlPlane::Primary, None) => {}
        }
    }
}

/// The primary a remote names, when it can serve it: it exists (E012), is not the remote
/// itself, is a primary, and is in the remote's mesh (E017).
fn serving_primary(
    names: &Names<'_>,
    clusters: &[ClusterInfo],
    ci: ClusterId,
    p: &str,
    r: &mut Reporter<'_>,
) -> Option<ClusterId> {
    let t = names.topology;
    let c = &t.clusters[ci];
    let pp = path!("clusters", ci, "primary");
    let pi = names.clusters.lookup(r, p, &pp)?;
    let target = &t.clusters[pi];
    if pi == ci {
        r.report(
            Code::PrimaryNotPrimary,
            &pp,
            format!("remote cluster `{}` names itself as its primary", c.name),
        )
        .label("a remote cannot serve itself")
        .help("name the primary cluster whose istiod serves this remote");
    } else if target.control_plane != ControlPlane::Primary {
        let remote_span = r.span(&path!("clusters", pi, "controlPlane"));
        r.report(
            Code::PrimaryNotPrimary,
            &pp,
            format!("`primary: {p}` names a remote cluster"),
        )
        .label("not a primary")
        .also(remote_span, format!("`{p}` is a remote"))
        .help(
            "a remote is served by a primary's istiod: name a cluster with `controlPlane: primary`",
        );
    } else if clusters[pi].mesh.is_some()
        && clusters[ci].mesh.is_some()
        && clusters[pi].mesh != clusters[ci].mesh
    {
        r.report(
            Code::PrimaryNotPrimary,
            &pp,
            format!("`primary: {p}` is a cluster of another mesh"),
        )
        .label("in another mesh")
        .help("a remote's primary must be in the same mesh: name a primary of this cluster's mesh");
    } else {
        return Some(pi);
    }
    None
}

/// Each service's mesh and the clusters its workloads run on: the listed ones, or every
/// cluster of its mesh.
fn services(
    names: &Names<'_>,
    meshes: &[MeshInfo],
    clusters: &[ClusterInfo],
    r: &mut Reporter<'_>,
) -> Vec<ServiceInfo> {
    let t = names.topology;
    let mut services = Vec::with_capacity(t.services.len());
    for (si, s) in t.services.iter().enumerate() {
        let at = path!("services", si);
        let (mesh, list) = names.placed(
            r,
            clusters,
            &Owner {
                at: &at,
                mesh: s.mesh.as_deref(),
                clusters: &s.clusters,
                hint: None,
                what: "service",
            },
        );
        let clusters_of = listed_or_all(meshes, mesh, list);
        let callers = s.callers.as_ref().map(|names_of| {
            let resolved = names.lookup_all(r, &at, "callers", names_of);
            names
                .in_mesh(r, clusters, &at.key("callers"), mesh, resolved, "service")
                .into_iter()
                .map(|(_, c)| c)
                .collect()
        });
        services.push(ServiceInfo {
            mesh,
            clusters: clusters_of,
            callers,
        });
    }
    services
}

/// Each DestinationRule's mesh, the service its host names (E064, E068), its namespace (from
/// the service when not written; E007 when nothing tells) and the primaries it is placed on.
fn destination_rules(
    names: &Names<'_>,
    meshes: &[MeshInfo],
    clusters: &[ClusterInfo],
    services: &[ServiceInfo],
    r: &mut Reporter<'_>,
) -> Vec<PlacedInfo> {
    let t = names.topology;
    let mut destination_rules = Vec::with_capacity(t.destination_rules.len());
    for (di, d) in t.destination_rules.iter().enumerate() {
        let at = path!("destinationRules", di);
        let host_mesh = host_service_mesh(&names.services, services, &d.host);
        let (mesh, list) = names.placed(
            r,
            clusters,
            &Owner {
                at: &at,
                mesh: d.mesh.as_deref(),
                clusters: &d.clusters,
                hint: host_mesh,
                what: "destinationRule",
            },
        );
        let service = mesh.and_then(|m| {
            resolve_host(
                r,
                names,
                services,
                m,
                &d.host,
                d.namespace.as_deref(),
                &at.key("host"),
            )
        });
        let namespace = d
            .namespace
            .clone()
            .or_else(|| service.map(|s| t.services[s].namespace.clone()))
            .or_else(|| match HostForm::of(&d.host) {
                HostForm::ServiceFqdn { namespace, .. } => Some(namespace.to_string()),
                _ => None,
            });
        // A short host that names no service is already reported as such.
        let short_host = matches!(HostForm::of(&d.host), HostForm::Short(_));
        if namespace.is_none() && !short_host {
            r.report(
                Code::MissingField,
                &at.key("host"),
                format!("destinationRule `{}` needs a `namespace`", d.name),
            )
            .label("this host is not a service of the topology")
            .help("add `namespace:`; it defaults to the namespace of the service `host` names");
        }
        let placement = placement(r, t, meshes, clusters, mesh, list, &at);
        destination_rules.push(PlacedInfo {
            mesh,
            clusters: placement,
            namespace,
            service,
        });
    }
    destination_rules
}

/// Each `istioConfig` entry's mesh and the primaries it is placed on.
fn istio_config(
    names: &Names<'_>,
    meshes: &[MeshInfo],
    clusters: &[ClusterInfo],
    r: &mut Reporter<'_>,
) -> Vec<PlacedInfo> {
    let t = names.topology;
    let mut istio_config = Vec::with_capacity(t.istio_config.len());
    for (ii, res) in t.istio_config.iter().enumerate() {
        let at = path!("istioConfig", ii);
        let (mesh, list) = names.placed(
            r,
            clusters,
            &Owner {
                at: &at,
                mesh: res.mesh.as_deref(),
                clusters: &res.clusters,
                hint: None,
                what: "istioConfig entry",
            },
        );
        let placement = placement(r, t, meshes, clusters, mesh, list, &at);
        istio_config.push(PlacedInfo {
            mesh,
            clusters: placement,
            namespace: Some(res.metadata.namespace.clone()),
            service: None,
        });
    }
    istio_config
}

/// Each ingress gateway's mesh and the clusters it runs on: the listed ones, or every cluster
/// of its mesh.
fn ingress_gateways(
    names: &Names<'_>,
    meshes: &[MeshInfo],
    clusters: &[ClusterInfo],
    r: &mut Reporter<'_>,
) -> Vec<PlacedInfo> {
    let t = names.topology;
    let mut ingress_gateways = Vec::with_capacity(t.ingress_gateways.len());
    for (gi, g) in t.ingress_gateways.iter().enumerate() {
        let at = path!("ingressGateways", gi);
        let (mesh, list) = names.placed(
            r,
            clusters,
            &Owner {
                at: &at,
                mesh: g.mesh.as_deref(),
                clusters: &g.clusters,
                hint: None,
                what: "ingress gateway",
            },
        );
        let on = listed_or_all(meshes, mesh, list);
        ingress_gateways.push(PlacedInfo {
            mesh,
            clusters: on,
            namespace: Some(g.namespace.clone()),
            service: None,
        });
    }
    ingress_gateways
}

/// The names of one kind of object, for lookups that report what does not resolve.
struct Catalog<'t> {
    index: BTreeMap<&'t str, usize>,
    names: Vec<&'t str>,
    what: &'static str,
    section: &'static str,
}

impl<'t> Catalog<'t> {
    fn new(names: Vec<&'t str>, what: &'static str, section: &'static str) -> Self {
        // The first of two equal names wins; duplicates are reported by the name rules.
        let mut index = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            index.entry(*n).or_insert(i);
        }
        Catalog {
            index,
            names,
            what,
            section,
        }
    }

    /// Whether entry `i` repeats the name of an earlier entry.
    fn is_duplicate(&self, i: usize) -> bool {
        self.index.get(self.names[i]) != Some(&i)
    }

    /// Looks a name up, reporting an unknown one with a suggestion.
    fn lookup(&self, r: &mut Reporter<'_>, name: &str, at: &Path) -> Option<usize> {
        if let Some(&i) = self.index.get(name) {
            return Some(i);
        }
        let (what, section) = (self.what, self.section);
        let help = match did_you_mean(name, self.names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if self.names.is_empty() => format!("declare it under `{section}:`"),
            None => format!(
                "declare it under `{section}:`, or use one of: {}",
                self.names.join(", ")
            ),
        };
        r.report(
            Code::UnknownReference,
            at,
            format!("unknown {what} `{name}`"),
        )
        .label(format!("no {what} named `{name}`"))
        .help(help);
        None
    }
}

/// Every name lookup the resolver needs, built once.
struct Names<'t> {
    topology: &'t Topology,
    meshes: Catalog<'t>,
    networks: Catalog<'t>,
    clusters: Catalog<'t>,
    /// Service name → the services with that name (in any namespace or mesh).
    services: BTreeMap<&'t str, Vec<ServiceId>>,
}

/// An object that belongs to one mesh and may list clusters: a service, rule or gateway.
struct Owner<'a> {
    at: &'a Path,
    mesh: Option<&'a str>,
    clusters: &'a [String],
    /// The mesh to assume when neither `mesh:` nor the clusters tell.
    hint: Option<MeshId>,
    what: &'a str,
}

impl<'t> Names<'t> {
    fn new(t: &'t Topology) -> Self {
        let mut services: BTreeMap<&str, Vec<ServiceId>> = BTreeMap::new();
        for (i, s) in t.services.iter().enumerate() {
            services.entry(s.name.as_str()).or_default().push(i);
        }
        Names {
            topology: t,
            meshes: Catalog::new(
                t.meshes.iter().map(|m| m.name.as_str()).collect(),
                "mesh",
                "meshes",
            ),
            networks: Catalog::new(
                t.networks.iter().map(|n| n.name.as_str()).collect(),
                "network",
                "networks",
            ),
            clusters: Catalog::new(
                t.clusters.iter().map(|c| c.name.as_str()).collect(),
                "cluster",
                "clusters",
            ),
            services,
        }
    }
}

/// The mesh of an object that does not name one: the only mesh, or a diagnostic.
fn only_mesh(r: &mut Reporter<'_>, t: &Topology, at: &Path, what: &str) -> Option<MeshId> {
    match t.meshes.len() {
        1 => Some(0),
        0 => None,
        _ => {
            r.report(
                Code::AmbiguousMesh,
                at,
                format!("{what} does not say which mesh it belongs to"),
            )
            .label("no `mesh:` here")
            .help(format!(
                "the topology has {} meshes: add `mesh: <name>` ({})",
                t.meshes.len(),
                t.meshes
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            None
        }
    }
}

impl Names<'_> {
    /// Resolves the mesh of an object with an optional `mesh:` and an optional `clusters:`
    /// list, and the clusters of the list (each must exist and be in that mesh), with their
    /// positions in the list.
    fn placed(
        &self,
        r: &mut Reporter<'_>,
        clusters: &[ClusterInfo],
        owner: &Owner<'_>,
    ) -> (Option<MeshId>, Vec<(usize, ClusterId)>) {
        let Owner {
            at,
            mesh,
            clusters: list,
            hint,
            what,
        } = *owner;
        let t = self.topology;
        let resolved = self.lookup_all(r, at, "clusters", list);
        let mesh = match mesh {
            Some(m) => self.meshes.lookup(r, m, &at.key("mesh")),
            None => resolved
                .iter()
                .find_map(|(_, c)| c.and_then(|c| clusters[c].mesh))
                .or(hint)
                .or_else(|| only_mesh(r, t, at, what)),
        };
        let out = self.in_mesh(r, clusters, &at.key("clusters"), mesh, resolved, what);
        (mesh, out)
    }

    /// Looks up every cluster of the list under `at`/`key`, reporting the unknown ones.
    fn lookup_all(
        &self,
        r: &mut Reporter<'_>,
        at: &Path,
        key: &str,
        list: &[String],
    ) -> Vec<(usize, Option<ClusterId>)> {
        list.iter()
            .enumerate()
            .map(|(i, name)| (i, self.clusters.lookup(r, name, &at.key(key).index(i))))
            .collect()
    }

    /// The resolved clusters of the list at `list_at` that are in `mesh` (reporting the
    /// others), without repeats, each with its position in the list.
    fn in_mesh(
        &self,
        r: &mut Reporter<'_>,
        clusters: &[ClusterInfo],
        list_at: &Path,
        mesh: Option<MeshId>,
        resolved: Vec<(usize, Option<ClusterId>)>,
        what: &str,
    ) -> Vec<(usize, ClusterId)> {
        let t = self.topology;
        let mut out = Vec::new();
        for (i, c) in resolved {
            let Some(c) = c else { continue };
            if mesh.is_some() && clusters[c].mesh.is_some() && clusters[c].mesh != mesh {
                let m = mesh.map_or("", |m| t.meshes[m].name.as_str());
                r.report(
                    Code::CrossMeshReference,
                    &list_at.index(i),
                    format!("cluster `{}` is not in mesh `{m}`", t.clusters[c].name),
                )
                .label("in another mesh")
                .help(format!(
                    "a {what} belongs to one mesh: list only clusters of mesh `{m}`"
                ));
            } else if !out.iter().any(|(_, x)| *x == c) {
                out.push((i, c));
            }
        }
        out
    }
}

/// Where workloads run: the listed clusters, or (an empty list) every cluster of the mesh.
fn listed_or_all(
    meshes: &[MeshInfo],
    mesh: Option<MeshId>,
    list: Vec<(usize, ClusterId)>,
) -> Vec<ClusterId> {
    match mesh {
        Some(m) if list.is_empty() => meshes[m].clusters.clone(),
        _ => list.into_iter().map(|(_, c)| c).collect(),
    }
}

/// Where Istio configuration goes: the listed clusters (which must be primaries), or the
/// mesh's primaries.
fn placement(
    r: &mut Reporter<'_>,
    t: &Topology,
    meshes: &[MeshInfo],
    clusters: &[ClusterInfo],
    mesh: Option<MeshId>,
    list: Vec<(usize, ClusterId)>,
    at: &Path,
) -> Vec<ClusterId> {
    if list.is_empty() {
        return mesh
            .map(|m| meshes[m].primaries.clone())
            .unwrap_or_default();
    }
    let mut out = Vec::new();
    for (pos, c) in list {
        if clusters[c].is_primary {
            out.push(c);
        } else {
            let name = &t.clusters[c].name;
            let primary = t.clusters[c].primary.as_deref().unwrap_or("its primary");
            r.report(
                Code::PlacementOnRemote,
                &at.key("clusters").index(pos),
                format!("`{name}` is a remote cluster: it holds no Istio configuration"),
            )
            .label("remote cluster")
            .help(format!(
                "remotes read configuration from their primary: place this on `{primary}` instead"
            ));
        }
    }
    out
}

/// The mesh of the service a short host names, when exactly one service has that name.
fn host_service_mesh(
    by_name: &BTreeMap<&str, Vec<ServiceId>>,
    services: &[ServiceInfo],
    host: &str,
) -> Option<MeshId> {
    let HostForm::Short(name) = HostForm::of(host) else {
        return None;
    };
    let mut meshes = by_name.get(name)?.iter().filter_map(|&i| services[i].mesh);
    let first = meshes.next()?;
    meshes.all(|m| m == first).then_some(first)
}

/// The service a DestinationRule host names, if any. Short names must name a service; FQDNs
/// and wildcards may point outside the topology.
fn resolve_host(
    r: &mut Reporter<'_>,
    names: &Names<'_>,
    services: &[ServiceInfo],
    mesh: MeshId,
    host: &str,
    namespace: Option<&str>,
    at: &Path,
) -> Option<ServiceId> {
    let t = names.topology;
    let in_mesh = |i: &usize| services[*i].mesh == Some(mesh);
    let named = |name: &str| names.services.get(name).map_or(&[][..], Vec::as_slice);
    match HostForm::of(host) {
        HostForm::Other => return None,
        HostForm::ServiceFqdn { name, namespace } => {
            return named(name)
                .iter()
                .copied()
                .filter(in_mesh)
                .find(|&i| t.services[i].namespace == namespace);
        }
        HostForm::Short(_) => {}
    }
    let candidates: Vec<usize> = named(host)
        .iter()
        .copied()
        .filter(in_mesh)
        .filter(|&i| namespace.is_none_or(|ns| t.services[i].namespace == ns))
        .collect();
    match candidates.as_slice() {
        [one] => Some(*one),
        [] => {
            let names: Vec<&str> = (0..t.services.len())
                .filter(in_mesh)
                .map(|i| t.services[i].name.as_str())
                .collect();
            let scope = namespace.map_or(String::new(), |ns| format!(" in namespace `{ns}`"));
            let help = match did_you_mean(host, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "name a service from `services:`, or write the host as a FQDN \
                         (`name.namespace.svc.cluster.local`) or a wildcard (`*.example.com`)"
                    .to_string(),
            };
            r.report(
                Code::UnknownHost,
                at,
                format!("host `{host}` names no service{scope} of the mesh"),
            )
            .label("not a service of the topology")
            .help(help);
            None
        }
        many => {
            let nss: Vec<&str> = many
                .iter()
                .map(|&i| t.services[i].namespace.as_str())
                .collect();
            r.report(
                Code::AmbiguousHost,
                at,
                format!("host `{host}` names services in several namespaces: {}", nss.join(", ")),
            )
            .label("ambiguous")
            .help(format!(
                "set the rule's `namespace:`, or write the host in full (`{host}.{}.svc.cluster.local`)",
                nss[0]
            ));
            None
        }
    }
}

/// How a DestinationRule host names its destination, as Istio reads it: a name without a dot
/// is a service of the rule's namespace; `name.namespace.svc.<domain>` is that service;
/// anything else (other FQDNs, wildcards) is taken literally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostForm<'a> {
    Short(&'a str),
    ServiceFqdn { name: &'a str, namespace: &'a str },
    Other,
}

impl<'a> HostForm<'a> {
    fn of(host: &'a str) -> Self {
        if host.starts_with('*') {
            return HostForm::Other;
        }
        if !host.contains('.') {
            return HostForm::Short(host);
        }
        let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
        match labels.as_slice() {
            [name, namespace, "svc", _domain, ..] if !name.is_empty() && !namespace.is_empty() => {
                HostForm::ServiceFqdn { name, namespace }
            }
            _ => HostForm::Other,
        }
    }
}

/// The locality catalogue: as written, or derived from the clusters. Cluster regions and zones
/// must be in a written catalogue.
fn catalogue(t: &Topology, r: &mut Reporter<'_>) -> Catalogue {
    let mut cat = Catalogue::default();
    for l in t.localities.iter().flatten() {
        if cat.region(&l.region).is_none() {
            cat.regions.push(Region {
                name: l.region.clone(),
                zones: l.zones.clone(),
            });
        }
    }
    let written = t.localities.is_some();
    for (ci, c) in t.clusters.iter().enumerate() {
        let Some(region) = &c.region else {
            if !c.zones.is_empty() {
                zones_without_region(r, ci, &c.name);
            }
            continue;
        };
        if written {
            check_cluster_locality(&cat, r, ci, region, &c.zones);
            continue;
        }
        // Derived: the clusters' regions and zones, in order of first appearance.
        let idx = if let Some(i) = cat.regions.iter().position(|x| &x.name == region) {
            i
        } else {
            cat.regions.push(Region {
                name: region.clone(),
                zones: Vec::new(),
            });
            cat.regions.len() - 1
        };
        for z in &c.zones {
            if !cat.regions[idx].zones.contains(z) {
                cat.regions[idx].zones.push(z.clone());
            }
        }
    }
    cat
}

/// A cluster's region and zones must be in a written catalogue.
fn check_cluster_locality(
    cat: &Catalogue,
    r: &mut Reporter<'_>,
    ci: usize,
    region: &str,
    zones: &[String],
) {
    let at = path!("clusters", ci);
    let Some(reg) = cat.region(region) else {
        let names: Vec<&str> = cat.regions.iter().map(|r| r.name.as_str()).collect();
        let help = did_you_mean(region, names.iter().copied()).map_or_else(
            || format!("add it to `localities:` (regions: {})", names.join(", ")),
            |s| format!("did you mean `{s}`?"),
        );
        r.report(
            Code::UnknownLocality,
            &at.key("region"),
            format!("region `{region}` is not in the locality catalogue"),
        )
        .label("unknown region")
        .help(help);
        return;
    };
    for (zi, z) in zones.iter().enumerate() {
        if !reg.zones.contains(z) {
            let help = did_you_mean(z, reg.zones.iter().map(String::as_str)).map_or_else(
                || format!("add it to the zones of `{region}` under `localities:`"),
                |s| format!("did you mean `{s}`?"),
            );
            r.report(
                Code::UnknownLocality,
                &at.key("zones").index(zi),
                format!("zone `{z}` is not a zone of region `{region}`"),
            )
            .label("unknown zone")
            .help(help);
        }
    }
}

fn zones_without_region(r: &mut Reporter<'_>, ci: usize, name: &str) {
    r.report_key(
        Code::MissingField,
        &path!("clusters", ci, "zones"),
        format!("cluster `{name}` lists zones but no `region`"),
    )
    .label("zones need a region")
    .help("add `region:`: a locality is region/zone, as in the nodes' topology labels");
}
