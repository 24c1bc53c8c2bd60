//! The planning stage: from the resolved model, what each cluster gets.
//!
//! Every decision about roles and reachability is made here, once, as plain data: which
//! clusters run istiod, which primaries serve remotes, which clusters need an east-west
//! gateway, which peers a primary discovers (and so needs a remote secret for), which
//! clusters are watched (and so need a reader token), which configuration lands where.
//! Rendering then only formats these facts, and tests can check them without any YAML.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{ClusterId, MeshId, Model};
use crate::topology::{Dataplane, Distribution, MtlsMode};

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
    /// Runs an east-west gateway: every cluster of a multi-network mesh, and primaries that
    /// serve remotes (which reach istiod through it).
    pub east_west_gateway: bool,
    /// Config cluster of a multi-network sidecar mesh: `expose-services.yaml`.
    pub expose_services: bool,
    /// The clusters this cluster's istiod discovers, each through a remote secret.
    pub peers: Vec<ClusterId>,
    /// Some primary discovers this cluster: it needs the reader token Secret.
    pub watched: bool,
    /// Application namespaces: those of the mesh's services (namespace sameness) and of the
    /// objects placed here, each with whether its workloads join the data plane.
    pub namespaces: BTreeMap<String, bool>,
    /// The mesh's services (every cluster gets every Service, so names resolve everywhere).
    pub services: Vec<usize>,
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
    let mut plans = Vec::new();
    for (c, cluster) in t.clusters.iter().enumerate() {
        let info = &model.clusters[c];
        let (Some(mi), Some(_), false) = (info.mesh, info.network, info.duplicate) else {
            continue;
        };
        let mesh = &t.meshes[mi];
        let mesh_info = &model.meshes[mi];
        let members: Vec<ClusterId> = mesh_info
            .clusters
            .iter()
            .copied()
            .filter(|&m| !model.clusters[m].duplicate)
            .collect();
        let multi_network = mesh_info.networks.len() > 1;
        let serves_remotes = info.is_primary
            && members
                .iter()
                .any(|&m| model.clusters[m].primary == Some(c) && !model.clusters[m].is_primary);
        let ambient = mesh.dataplane == Dataplane::Ambient;
        // Solo's ambient distribution peers through gateways, not remote secrets.
        let peering = ambient && mesh.istio.distribution == Distribution::Solo;
        let peers: Vec<ClusterId> = if info.is_primary && !peering {
            members.iter().copied().filter(|&m| m != c).collect()
        } else {
            Vec::new()
        };
        let watched = !peering
            && members
                .iter()
                .any(|&m| m != c && model.clusters[m].is_primary);

        let services: Vec<usize> = model
            .services
            .iter()
            .enumerate()
            .filter(|(_, s)| s.mesh == Some(mi))
            .map(|(i, _)| i)
            .collect();
        let placed = |infos: &[crate::model::PlacedInfo]| -> Vec<usize> {
            infos
                .iter()
                .enumerate()
                .filter(|(_, p)| p.mesh == Some(mi) && p.clusters.contains(&c))
                .map(|(i, _)| i)
                .collect()
        };
        let destination_rules = if info.is_primary {
            placed(&model.destination_rules)
        } else {
            Vec::new()
        };
        let istio_config = if info.is_primary {
            placed(&model.istio_config)
        } else {
            Vec::new()
        };
        let ingress_gateways = placed(&model.ingress_gateways);

        let mut namespaces: BTreeMap<String, bool> = BTreeMap::new();
        for &s in &services {
            namespaces.insert(t.services[s].namespace.clone(), true);
        }
        for &g in &ingress_gateways {
            namespaces.insert(t.ingress_gateways[g].namespace.clone(), true);
        }
        for &d in &destination_rules {
            if let Some(ns) = &model.destination_rules[d].namespace {
                namespaces.entry(ns.clone()).or_insert(false);
            }
        }
        for &i in &istio_config {
            namespaces
                .entry(t.istio_config[i].metadata.namespace.clone())
                .or_insert(false);
        }
        namespaces.remove(crate::build::SYSTEM_NAMESPACE);

        plans.push(ClusterPlan {
            cluster: c,
            mesh: mi,
            name: cluster.name.clone(),
            network: cluster.network.clone(),
            primary: info.is_primary,
            served_by: info.primary.filter(|_| !info.is_primary),
            serves_remotes,
            multi_network,
            east_west_gateway: multi_network || serves_remotes,
            expose_services: multi_network && info.is_primary && !ambient,
            peers,
            watched,
            namespaces,
            services,
            destination_rules,
            istio_config,
            ingress_gateways,
            peer_authentication: mesh.mtls.filter(|_| info.is_primary),
        });
    }
    plans
}

/// The clusters whose istiod discovers `cluster` (for the missing-token warning).
pub fn watchers(plans: &[ClusterPlan], cluster: ClusterId) -> BTreeSet<ClusterId> {
    plans
        .iter()
        .filter(|p| p.peers.contains(&cluster))
        .map(|p| p.cluster)
        .collect()
}
