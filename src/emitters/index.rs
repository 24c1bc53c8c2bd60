//! `README.md` at the top of the output tree: every mesh, its clusters and the order to
//! install them in, each linking to the cluster's own README.
//!
//! Primaries come first: a remote's istiod settings point at its primary's istiod through the
//! primary's east-west gateway (and its injection webhook fails closed), so the primary must
//! be running before a remote is installed. Primaries of a multi-primary mesh do not depend on
//! each other; clusters keep the topology's order within each group.

use std::sync::Arc;

use serde::Serialize;

use super::{TreeCx, TreeEmitter};
use crate::output::Scope;
use crate::render::RenderError;

#[derive(Debug)]
pub struct Index;

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    role: String,
    network: &'a str,
    region: Option<&'a str>,
    files: usize,
    /// The primary a remote's istiod settings point at: installed (with its east-west
    /// gateway) first.
    after: Option<&'a str>,
    /// A primary whose east-west gateway serves istiod to remotes.
    serves_remotes: bool,
    /// The primaries that read this cluster's API server through its remote secret.
    watchers: Vec<&'a str>,
    /// Whether its reader token comes from `tokenFile` (or is not set yet): fetched once its
    /// `reader-token.yaml` is applied, then built into the watchers' remote secrets.
    token_file: bool,
}

#[derive(Serialize)]
struct Mesh<'a> {
    name: &'a str,
    networks: Vec<&'a str>,
    clusters: Vec<Row<'a>>,
}

#[derive(Serialize)]
struct Cx<'a> {
    meshes: Vec<Mesh<'a>>,
    /// The meshes whose root is being rotated (ROTATION.md says how).
    rotating: Vec<&'a str>,
}

impl TreeEmitter for Index {
    fn emit(
        &self,
        cx: &TreeCx<'_>,
        out: &mut Vec<(Scope, String, Arc<[u8]>)>,
    ) -> Result<(), RenderError> {
        if cx.plans.is_empty() {
            return Ok(());
        }
        let t = &cx.model.topology;
        let mut meshes = Vec::new();
        for (mi, mesh) in t.meshes.iter().enumerate() {
            let mut rows: Vec<(bool, Row<'_>)> = Vec::new();
            for (p, files) in cx
                .plans
                .iter()
                .zip(cx.clusters)
                .filter(|(p, _)| p.mesh == mi)
            {
                let cluster = &t.clusters[p.cluster];
                let role = match p.served_by {
                    _ if p.primary => "primary".to_string(),
                    Some(s) => format!("remote of {}", t.clusters[s].name),
                    None => "remote".to_string(),
                };
                rows.push((
                    !p.primary,
                    Row {
                        name: &cluster.name,
                        role,
                        network: &p.network,
                        region: cluster.region.as_deref(),
                        files: files.produced.len(),
                        after: p
                            .served_by
                            .filter(|_| !p.primary)
                            .map(|s| t.clusters[s].name.as_str()),
                        serves_remotes: p.serves_remotes,
                        watchers: p
                            .watchers
                            .iter()
                            .map(|&w| t.clusters[w].name.as_str())
                            .collect(),
                        token_file: p.watched
                            && cluster
                                .remote_secret
                                .as_ref()
                                .is_none_or(|r| r.external_secret.is_none() && r.exec.is_none()),
                    },
                ));
            }
            if rows.is_empty() {
                continue;
            }
            // Stable: the topology's order within primaries and within remotes.
            rows.sort_by_key(|(remote, _)| *remote);
            let networks = cx.model.meshes[mi]
                .networks
                .iter()
                .map(|&n| t.networks[n].name.as_str())
                .collect();
            meshes.push(Mesh {
                name: &mesh.name,
                networks,
                clusters: rows.into_iter().map(|(_, row)| row).collect(),
            });
        }
        let rotating = cx
            .material
            .rotations
            .keys()
            .map(|&mi| t.meshes[mi].name.as_str())
            .collect();
        let text = cx.renderer.text("index.md.j2", &Cx { meshes, rotating })?;
        out.push((
            Scope::Tree,
            "README.md".to_string(),
            Arc::from(text.into_bytes()),
        ));
        Ok(())
    }
}
