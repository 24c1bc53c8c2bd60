//! The planning stage: from the resolved model, what each cluster gets.
//!
//! Every decision about roles and reachability is made here, once, as plain data: which
//! clusters run istiod, which primaries serve remotes, which clusters need an east-west
//! gateway, which peers a primary discovers (and so needs a remote secret for), which
//! clusters are watched (and so need a reader token), which configuration lands where.
//! Rendering then only formats these facts, and tests can check them without any YAML.

use std::collections::{BTreeMap, HashMap};

use crate::model::{ClusterId, MeshId, Model};
use crate::topology::{Dataplane, Distribution, GatewayForm, Installer, MtlsMode, Platform};

/// The data plane a cluster runs, with the distribution where it changes what is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Sidecar proxies (either distribution: the output is the same).
    Sidecar,
    /// Upstream Istio's ambient mode: ztunnel, istio-cni, Gateway API east-west gateways.
    Ambient,
    /// Solo's ambient distribution: as ambient, plus peering through `istio-remote` Gateways.
    SoloAmbient,
}

impl Flavour {
    /// A mesh's data plane and distribution.
    pub fn of(mesh: &crate::topology::Mesh) -> Flavour {
        match (mesh.dataplane, mesh.istio.distribution) {
            (Dataplane::Sidecar, _) => Flavour::Sidecar,
            (Dataplane::Ambient, Distribution::Upstream) => Flavour::Ambient,
            (Dataplane::Ambient, Distribution::Solo) => Flavour::SoloAmbient,
        }
    }

    pub fn is_ambient(self) -> bool {
        matches!(self, Flavour::Ambient | Flavour::SoloAmbient)
    }
}

/// How a cluster's east-west gateway is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EastWest {
    /// The `istio/gateway` chart or the IstioOperator component (`install/`), sidecar meshes.
    Chart,
    /// A Gateway API Gateway of class `istio` that istiod deploys, with TLS passthrough
    /// listeners (sidecar meshes, `form: gateway-api`): no chart to install.
    Passthrough,
    /// A Gateway API Gateway of class `istio-east-west` that istiod deploys (upstream ambient).
    GatewayApi,
    /// Solo's `istio-eastwest` Gateway in `istio-gateways` (Solo's ambient distribution).
    Solo,
}

impl EastWest {
    /// The form a cluster of this data plane deploys its east-west gateway in: ambient data
    /// planes have one form each; a sidecar cluster chooses (`eastWestGateway.form`).
    pub fn of(flavour: Flavour, form: GatewayForm) -> EastWest {
        match (flavour, form) {
            (Flavour::Sidecar, GatewayForm::Chart) => EastWest::Chart,
            (Flavour::Sidecar, GatewayForm::GatewayApi) => EastWest::Passthrough,
            (Flavour::Ambient, _) => EastWest::GatewayApi,
            (Flavour::SoloAmbient, _) => EastWest::Solo,
        }
    }

    /// The form of cluster `c`'s east-west gateway, were it to run one.
    pub fn of_cluster(model: &Model, c: ClusterId, flavour: Flavour) -> EastWest {
        let form = model.topology.clusters[c]
            .east_west_gateway
            .as_ref()
            .and_then(|g| g.form)
            .unwrap_or_default();
        EastWest::of(flavour, form)
    }
}

/// What one cluster's directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPlan {
    pub cluster: ClusterId,
    pub mesh: MeshId,
    pub name: String,
    pub network: String,
    /// Runs istiod (and so is a config cluster: Istio configuration is written here).
    pub primary: bool,
    /// For a remote: the primary that serves it.
    pub served_by: Option<ClusterId>,
    /// A primary with remotes: `externalIstiod`, and istiod exposed through its east-west
    /// gateway (`expose-istiod.yaml`).
    pub serves_remotes: bool,
    /// The mesh spans more than one network.
    pub multi_network: bool,
    /// Its east-west gateway, when it runs one: every cluster of a multi-network mesh, and
    /// primaries that serve remotes (which reach istiod through it).
    pub east_west: Option<EastWest>,
    /// Config cluster of a multi-network sidecar mesh where it or a remote it serves runs a
    /// chart east-west gateway: `expose-services.yaml` (the Istio Gateway those select).
    pub expose_services: bool,
    /// The data plane, decided once for every emitter.
    pub flavour: Flavour,
    /// The install inputs to write, in the order the README offers them (Helm first), each
    /// once.
    pub installers: Vec<Installer>,
    /// Runs istio-cni: ambient needs it, and so do sidecars on OpenShift.
    pub cni: bool,
    /// Solo's ambient distribution on more than one network: primaries are linked through
    /// their east-west gateways (peering) rather than by remote secrets.
    pub peering: bool,
    /// Peering, on a primary: for every other network of the mesh that has a primary, the
    /// first such primary (topology order), whose east-west gateway this cluster's
    /// `istio-remote` Gateway for that network points at.
    pub linked: Vec<ClusterId>,
    /// The clusters this cluster's istiod discovers, each through a remote secret.
    pub peers: Vec<ClusterId>,
    /// The primaries whose istiod discovers this cluster (each holds a remote secret for it);
    /// when there are any, the cluster needs the reader token Secret.
    pub watchers: Vec<ClusterId>,
    pub watched: bool,
    /// Application namespaces: those of the services whose Service is written here (namespace
    /// sameness) and of the objects placed here, each with whether its workloads join the data
    /// plane.
    pub namespaces: BTreeMap<String, bool>,
    /// The services whose Service object is written here, in topology order: every service of
    /// the mesh without `callers` (so its name resolves everywhere), and those with `callers`
    /// that run here or are called from here.
    pub services: Vec<usize>,
    /// Which distinct list `services` is: clusters whose lists are equal have the same number
    /// (and share one `services.yaml`).
    pub service_set: usize,
    pub destination_rules: Vec<usize>,
    pub istio_config: Vec<usize>,
    pub ingress_gateways: Vec<usize>,
    /// The mesh-wide PeerAuthentication, on config clusters of a mesh with `mtls`.
    pub peer_authentication: Option<MtlsMode>,
}

/// Plans every cluster, in topology order. Clusters the model could not place (no mesh, a
/// repeated name) get nothing: validation has already reported them.
pub fn plan(model: &Model) -> Vec<ClusterPlan> {
    let t = &model.topology;
    // Indexes built once, so that planning stays linear in the size of the topology.
    let (services_of, called_on) = service_lists(model);
    let mut service_sets: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
    let members_of: Vec<Vec<ClusterId>> = (0..t.meshes.len()).map(|mi| model.members(mi)).collect();
    let placed_on = |infos: &[crate::model::PlacedInfo]| {
        let mut index: BTreeMap<ClusterId, Vec<usize>> = BTreeMap::new();
        for (i, p) in infos.iter().enumerate() {
            if p.mesh.is_some() {
                for &c in &p.clusters {
                    let on = index.entry(c).or_default();
                    // A cluster listed twice still gets the object once.
                    if on.last() != Some(&i) {
                        on.push(i);
                    }
                }
            }
        }
        index
    };
    let service_namespaces = ServiceNamespaces::new(model);
    let rules_on = placed_on(&model.destination_rules);
    let config_on = placed_on(&model.istio_config);
    let gateways_on = placed_on(&model.ingress_gateways);
    let mut plans = Vec::new();
    for (c, cluster) in t.clusters.iter().enumerate() {
        let info = &model.clusters[c];
        let (Some(mi), Some(_), false) = (info.mesh, info.network, info.duplicate) else {
            continue;
        };
        let mesh = &t.meshes[mi];
        let mesh_info = &model.meshes[mi];
        let members = &members_of[mi];
        let multi_network = mesh_info.networks.len() > 1;
        let serves_remotes = model.serves_remotes(c);
        let flavour = Flavour::of(mesh);
        let peering = flavour == Flavour::SoloAmbient && multi_network;
        let peers: Vec<ClusterId> = members
            .iter()
            .copied()
            .filter(|&m| model.discovers(c, m))
            .collect();
        let watchers: Vec<ClusterId> = members
            .iter()
            .copied()
            .filter(|&w| model.discovers(w, c))
            .collect();
        let linked = if peering && info.is_primary {
            linked(model, c, members)
        } else {
            Vec::new()
        };

        let services = merge_sorted(
            services_of.get(&mi).map_or(&[][..], Vec::as_slice),
            called_on.get(&c).map_or(&[][..], Vec::as_slice),
        );
        // Looked up by the list, copied only when it is a new one.
        let service_set = service_sets
            .get(services.as_slice())
            .copied()
            .unwrap_or_else(|| {
                let set = service_sets.len();
                service_sets.insert(services.clone(), set);
                set
            });
        let on_c =
            |index: &BTreeMap<ClusterId, Vec<usize>>| index.get(&c).cloned().unwrap_or_default();
        let (destination_rules, istio_config) = if info.is_primary {
            (on_c(&rules_on), on_c(&config_on))
        } else {
            (Vec::new(), Vec::new())
        };
        let ingress_gateways = on_c(&gateways_on);

        let east_west = model
            .has_east_west_gateway(c)
            .then(|| EastWest::of_cluster(model, c, flavour));
        // The istio-remote-style Gateway `expose-services.yaml` selects chart gateways, here
        // and on the remotes this config cluster serves.
        let chart_gateway_served = members.iter().any(|&m| {
            (m == c || (model.clusters[m].primary == Some(c) && !model.clusters[m].is_primary))
                && EastWest::of_cluster(model, m, flavour) == EastWest::Chart
        });
        let installers: Vec<Installer> = [Installer::Helm, Installer::Istioctl, Installer::Sail]
            .into_iter()
            .filter(|i| mesh.istio.installers.contains(i))
            .collect();
        let cni = flavour.is_ambient() || cluster.platform == Platform::Openshift;
        let mut namespaces = namespaces(
            model,
            &service_namespaces,
            &Placed {
                services: &services,
                destination_rules: &destination_rules,
                istio_config: &istio_config,
                ingress_gateways: &ingress_gateways,
            },
            east_west,
        );
        // The Sail Operator installs into namespaces that must exist: istio-cni and ztunnel.
        if installers.contains(&Installer::Sail) {
            if cni {
                namespaces.insert(crate::istio::SAIL_CNI_NAMESPACE.to_string(), false);
            }
            if flavour.is_ambient() {
                namespaces.insert(crate::istio::SAIL_ZTUNNEL_NAMESPACE.to_string(), false);
            }
        }

        plans.push(ClusterPlan {
            cluster: c,
            mesh: mi,
            name: cluster.name.clone(),
            network: cluster.network.clone(),
            primary: info.is_primary,
            served_by: info.primary.filter(|_| !info.is_primary),
            serves_remotes,
            multi_network,
            east_west,
            expose_services: multi_network
                && info.is_primary
                && !flavour.is_ambient()
                && chart_gateway_served,
            flavour,
            installers,
            cni,
            peering,
            linked,
            peers,
            watched: !watchers.is_empty(),
            watchers,
            namespaces,
            services,
            service_set,
            destination_rules,
            istio_config,
            ingress_gateways,
            peer_authentication: mesh.mtls.filter(|_| info.is_primary),
        });
    }
    plans
}

/// For a Solo primary: for every other network of the mesh that has a primary, the first such
/// primary (topology order), whose east-west gateway its `istio-remote` Gateway points at.
fn linked(model: &Model, c: ClusterId, members: &[ClusterId]) -> Vec<ClusterId> {
    let mut linked: Vec<ClusterId> = Vec::new();
    let Some(own) = model.clusters[c].network else {
        return linked;
    };
    for &m in members {
        let Some(net) = model.clusters[m].network else {
            continue;
        };
        let seen = linked
            .iter()
            .any(|&l| model.clusters[l].network == Some(net));
        if model.clusters[m].is_primary && net != own && !seen {
            linked.push(m);
        }
    }
    linked
}

/// What is placed on one cluster, by index.
struct Placed<'a> {
    services: &'a [usize],
    destination_rules: &'a [usize],
    istio_config: &'a [usize],
    ingress_gateways: &'a [usize],
}

/// The application namespaces of a cluster, each with whether its workloads join the data
/// plane: those of its Services and ingress gateways do; those that only hold configuration,
/// and Solo's gateway namespace, do not. The system namespace is written on its own.
fn namespaces(
    model: &Model,
    of_services: &ServiceNamespaces<'_>,
    placed: &Placed<'_>,
    east_west: Option<EastWest>,
) -> BTreeMap<String, bool> {
    let t = &model.topology;
    let mut namespaces: BTreeMap<String, bool> = of_services
        .of(placed.services)
        .map(|ns| (ns.to_string(), true))
        .collect();
    for &g in placed.ingress_gateways {
        namespaces.insert(t.ingress_gateways[g].namespace.clone(), true);
    }
    for &d in placed.destination_rules {
        if let Some(ns) = &model.destination_rules[d].namespace {
            namespaces.entry(ns.clone()).or_insert(false);
        }
    }
    for &i in placed.istio_config {
        namespaces
            .entry(t.istio_config[i].metadata.namespace.clone())
            .or_insert(false);
    }
    if east_west == Some(EastWest::Solo) {
        // Solo's east-west and istio-remote Gateways live in their own namespace.
        namespaces
            .entry(crate::istio::SOLO_GATEWAY_NAMESPACE.to_string())
            .or_insert(false);
    }
    namespaces.remove(crate::istio::SYSTEM_NAMESPACE);
    namespaces
}

/// Services without `callers` go to every cluster of their mesh: one list per mesh. Those with
/// `callers` go to the clusters that run or call them: one list per such cluster.
fn service_lists(
    model: &Model,
) -> (
    BTreeMap<MeshId, Vec<usize>>,
    BTreeMap<ClusterId, Vec<usize>>,
) {
    let mut services_of: BTreeMap<MeshId, Vec<usize>> = BTreeMap::new();
    let mut called_on: BTreeMap<ClusterId, Vec<usize>> = BTreeMap::new();
    for (i, s) in model.services.iter().enumerate() {
        let Some(mi) = s.mesh else { continue };
        match &s.callers {
            None => services_of.entry(mi).or_default().push(i),
            Some(callers) => {
                for &c in s.clusters.iter().chain(callers) {
                    let on = called_on.entry(c).or_default();
                    // A caller that also runs the service still gets the Service once.
                    if on.last() != Some(&i) {
                        on.push(i);
                    }
                }
            }
        }
    }
    (services_of, called_on)
}

/// Each service's namespace as a number: a cluster's thousands of Services name a few dozen
/// namespaces, found with a flag per namespace rather than a string compared per Service.
struct ServiceNamespaces<'a> {
    names: Vec<&'a str>,
    of_service: Vec<usize>,
}

impl<'a> ServiceNamespaces<'a> {
    fn new(model: &'a Model) -> ServiceNamespaces<'a> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut names = Vec::new();
        let of_service = model
            .topology
            .services
            .iter()
            .map(|s| {
                *index.entry(s.namespace.as_str()).or_insert_with(|| {
                    names.push(s.namespace.as_str());
                    names.len() - 1
                })
            })
            .collect();
        ServiceNamespaces { names, of_service }
    }

    /// The namespaces of `services`, each once.
    fn of(&self, services: &[usize]) -> impl Iterator<Item = &'a str> + use<'a, '_> {
        let mut used = vec![false; self.names.len()];
        for &s in services {
            used[self.of_service[s]] = true;
        }
        self.names
            .iter()
            .zip(used)
            .filter_map(|(name, used)| used.then_some(*name))
    }
}

/// Two ascending lists of distinct indexes (disjoint from each other) as one ascending list.
fn merge_sorted(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}
