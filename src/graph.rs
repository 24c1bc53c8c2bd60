//! The graph stage: the shape of a topology as a picture, for people.
//!
//! A reviewer reads a mesh's shape (which clusters run istiod, which primary serves which
//! remote, which istiod discovers which cluster, where the east-west gateways are) faster from
//! a drawing than from YAML. The shape is taken from the plan, so the picture shows what a
//! build does, not what the file seems to say: a remote's edge goes to the primary that really
//! serves it, and discovery edges are exactly the remote secrets a build writes.
//!
//! [`Shape`] is plain data compared by `diff` (a pull request that changes it gets the new
//! drawing in its comment); [`mermaid`] renders it for a GitHub markdown block and [`dot`] for
//! Graphviz. Both are deterministic: topology order, ids made from positions, never from names,
//! so that no name can break the syntax.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::model::Model;
use crate::plan::{ClusterPlan, EastWest, Flavour};

/// The shape of a topology: its meshes, their networks and clusters, and the edges between
/// clusters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub meshes: Vec<MeshShape>,
    pub edges: Vec<Edge>,
}

impl Shape {
    /// Every cluster, mesh by mesh and network by network, in drawing order.
    pub fn clusters(&self) -> impl Iterator<Item = &ClusterShape> {
        self.meshes
            .iter()
            .flat_map(|m| &m.networks)
            .flat_map(|n| &n.clusters)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshShape {
    pub name: String,
    /// `sidecar`, `ambient` or `ambient, Solo`.
    pub dataplane: &'static str,
    /// The networks the mesh's clusters are on, in order of first use.
    pub networks: Vec<NetworkShape>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkShape {
    pub name: String,
    pub clusters: Vec<ClusterShape>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterShape {
    pub name: String,
    pub primary: bool,
    /// The form of its east-west gateway, when it runs one.
    pub east_west: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// A remote to the primary whose istiod serves it.
    ControlPlane,
    /// A primary to a cluster its istiod discovers through a remote secret.
    Discovers,
    /// A primary to another network's primary it peers with through the east-west gateways
    /// (Solo's ambient distribution).
    Peers,
}

impl EdgeKind {
    fn label(self) -> &'static str {
        match self {
            EdgeKind::ControlPlane => "control plane",
            EdgeKind::Discovers => "discovers",
            EdgeKind::Peers => "peers",
        }
    }
}

/// An edge between two clusters, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub kind: EdgeKind,
    pub from: String,
    pub to: String,
}

/// The shape of a valid topology, from its plan (clusters the plan skips are not drawn).
pub fn shape(model: &Model, plans: &[ClusterPlan]) -> Shape {
    let t = &model.topology;
    let mut meshes: Vec<MeshShape> = Vec::new();
    let mut mesh_of: Vec<usize> = Vec::new();
    for (mi, mesh) in t.meshes.iter().enumerate() {
        if !plans.iter().any(|p| p.mesh == mi) {
            continue;
        }
        let flavour = Flavour::of(mesh);
        meshes.push(MeshShape {
            name: mesh.name.clone(),
            dataplane: match flavour {
                Flavour::Sidecar => "sidecar",
                Flavour::Ambient => "ambient",
                Flavour::SoloAmbient => "ambient, Solo",
            },
            networks: Vec::new(),
        });
        mesh_of.push(mi);
    }
    for p in plans {
        let Some(m) = mesh_of.iter().position(|&mi| mi == p.mesh) else {
            continue;
        };
        let networks = &mut meshes[m].networks;
        let n = if let Some(n) = networks.iter().position(|n| n.name == p.network) {
            n
        } else {
            networks.push(NetworkShape {
                name: p.network.clone(),
                clusters: Vec::new(),
            });
            networks.len() - 1
        };
        networks[n].clusters.push(ClusterShape {
            name: p.name.clone(),
            primary: p.primary,
            east_west: p.east_west.map(|e| match e {
                EastWest::Chart => "chart",
                EastWest::Passthrough | EastWest::GatewayApi | EastWest::Solo => "Gateway API",
            }),
        });
    }
    let name = |c: usize| t.clusters[c].name.clone();
    let mut edges = Vec::new();
    for p in plans {
        if let Some(primary) = p.served_by {
            edges.push(Edge {
                kind: EdgeKind::ControlPlane,
                from: p.name.clone(),
                to: name(primary),
            });
        }
    }
    for p in plans {
        for &peer in &p.peers {
            edges.push(Edge {
                kind: EdgeKind::Discovers,
                from: p.name.clone(),
                to: name(peer),
            });
        }
    }
    for p in plans {
        for &linked in &p.linked {
            edges.push(Edge {
                kind: EdgeKind::Peers,
                from: p.name.clone(),
                to: name(linked),
            });
        }
    }
    Shape { meshes, edges }
}

/// The ids of the drawing: `c<N>` for the N-th cluster drawn, whatever its name.
struct Ids<'a> {
    index: BTreeMap<&'a str, usize>,
}

impl<'a> Ids<'a> {
    fn new(shape: &'a Shape) -> Ids<'a> {
        let mut index = BTreeMap::new();
        for c in shape.clusters() {
            let next = index.len();
            index.entry(c.name.as_str()).or_insert(next);
        }
        Ids { index }
    }

    fn of(&self, name: &str) -> Option<String> {
        self.index.get(name).map(|i| format!("c{i}"))
    }
}

fn cluster_role(c: &ClusterShape) -> &'static str {
    if c.primary { "primary" } else { "remote" }
}

/// A label for a mermaid string: the characters that end a string or start markup or an
/// entity are written as numeric entity codes, which mermaid decodes.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' | '#' | '<' | '>' | '&' | '`' | '\\' => {
                let _ = write!(out, "#{};", u32::from(ch));
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A mermaid flowchart, as a GitHub ```` ```mermaid ```` block renders it: one subgraph per
/// mesh, one nested subgraph per network, one node per cluster and per east-west gateway.
pub fn mermaid(shape: &Shape) -> String {
    let ids = Ids::new(shape);
    let mut out = String::from("flowchart LR\n");
    let mut primaries = Vec::new();
    for (m, mesh) in shape.meshes.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph m{m}[\"mesh {} ({})\"]",
            mermaid_text(&mesh.name),
            mesh.dataplane
        );
        for (n, network) in mesh.networks.iter().enumerate() {
            let _ = writeln!(
                out,
                "    subgraph m{m}n{n}[\"network {}\"]",
                mermaid_text(&network.name)
            );
            for c in &network.clusters {
                let Some(id) = ids.of(&c.name) else { continue };
                let _ = writeln!(
                    out,
                    "      {id}[\"{}<br/>{}\"]",
                    mermaid_text(&c.name),
                    cluster_role(c)
                );
                if let Some(form) = c.east_west {
                    let _ = writeln!(out, "      {id}ew{{{{\"east-west gateway<br/>{form}\"}}}}");
                }
                if c.primary {
                    primaries.push(id);
                }
            }
            out.push_str("    end\n");
        }
        out.push_str("  end\n");
    }
    for c in shape.clusters() {
        if let (Some(id), Some(_)) = (ids.of(&c.name), c.east_west) {
            let _ = writeln!(out, "  {id} --- {id}ew");
        }
    }
    for e in &shape.edges {
        let (Some(from), Some(to)) = (ids.of(&e.from), ids.of(&e.to)) else {
            continue;
        };
        let arrow = match e.kind {
            EdgeKind::ControlPlane => "-->",
            EdgeKind::Discovers => "-.->",
            EdgeKind::Peers => "==>",
        };
        let _ = writeln!(out, "  {from} {arrow}|\"{}\"| {to}", e.kind.label());
    }
    if !primaries.is_empty() {
        out.push_str("  classDef primary stroke-width:3px\n");
        let _ = writeln!(out, "  class {} primary", primaries.join(","));
    }
    out
}

/// A label for a Graphviz string.
fn dot_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Graphviz digraph: one `cluster_*` subgraph per mesh, one nested per network.
pub fn dot(shape: &Shape) -> String {
    let ids = Ids::new(shape);
    let mut out = String::from(
        "digraph meshc {\n  rankdir=LR;\n  compound=true;\n  node [shape=box, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    for (m, mesh) in shape.meshes.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_m{m} {{");
        let _ = writeln!(
            out,
            "    label=\"mesh {} ({})\";",
            dot_text(&mesh.name),
            mesh.dataplane
        );
        for (n, network) in mesh.networks.iter().enumerate() {
            let _ = writeln!(out, "    subgraph cluster_m{m}n{n} {{");
            let _ = writeln!(
                out,
                "      label=\"network {}\";\n      style=dashed;",
                dot_text(&network.name)
            );
            for c in &network.clusters {
                let Some(id) = ids.of(&c.name) else { continue };
                let _ = writeln!(
                    out,
                    "      {id} [label=\"{}\\n{}\"{}];",
                    dot_text(&c.name),
                    cluster_role(c),
                    if c.primary { ", penwidth=2" } else { "" }
                );
                if let Some(form) = c.east_west {
                    let _ = writeln!(
                        out,
                        "      {id}ew [shape=hexagon, label=\"east-west gateway\\n{form}\"];"
                    );
                }
            }
            out.push_str("    }\n");
        }
        out.push_str("  }\n");
    }
    for c in shape.clusters() {
        if let (Some(id), Some(_)) = (ids.of(&c.name), c.east_west) {
            let _ = writeln!(out, "  {id} -> {id}ew [dir=none];");
        }
    }
    for e in &shape.edges {
        let (Some(from), Some(to)) = (ids.of(&e.from), ids.of(&e.to)) else {
            continue;
        };
        let style = match e.kind {
            EdgeKind::ControlPlane => "",
            EdgeKind::Discovers => ", style=dashed",
            EdgeKind::Peers => ", style=bold",
        };
        let _ = writeln!(
            out,
            "  {from} -> {to} [label=\"{}\"{style}];",
            e.kind.label()
        );
    }
    out.push_str("}\n");
    out
}

/// Where a cluster is and what it is: (mesh, network, role, east-west gateway form).
type Place = (String, String, &'static str, Option<&'static str>);

/// What changed in the shape between two topologies, one line each (for a pull-request
/// comment); empty when the shape is the same.
pub fn changes(old: &Shape, new: &Shape) -> Vec<String> {
    let mut lines = Vec::new();
    let meshes = |s: &Shape| -> BTreeMap<String, &'static str> {
        s.meshes
            .iter()
            .map(|m| (m.name.clone(), m.dataplane))
            .collect()
    };
    // Each cluster with where it is and what it is.
    let clusters = |s: &Shape| -> BTreeMap<String, Place> {
        let mut out = BTreeMap::new();
        for m in &s.meshes {
            for n in &m.networks {
                for c in &n.clusters {
                    out.insert(
                        c.name.clone(),
                        (m.name.clone(), n.name.clone(), cluster_role(c), c.east_west),
                    );
                }
            }
        }
        out
    };
    let (old_meshes, new_meshes) = (meshes(old), meshes(new));
    for (name, dataplane) in &new_meshes {
        match old_meshes.get(name) {
            None => lines.push(format!("mesh `{name}` added ({dataplane})")),
            Some(was) if was != dataplane => {
                lines.push(format!("mesh `{name}`: {was} → {dataplane}"));
            }
            Some(_) => {}
        }
    }
    for name in old_meshes.keys().filter(|n| !new_meshes.contains_key(*n)) {
        lines.push(format!("mesh `{name}` removed"));
    }
    let (old_clusters, new_clusters) = (clusters(old), clusters(new));
    for (name, (mesh, network, role, gateway)) in &new_clusters {
        let Some((was_mesh, was_network, was_role, was_gateway)) = old_clusters.get(name) else {
            lines.push(format!(
                "cluster `{name}` added: {role} in mesh `{mesh}`, network `{network}`"
            ));
            continue;
        };
        if was_mesh != mesh {
            lines.push(format!("cluster `{name}`: mesh `{was_mesh}` → `{mesh}`"));
        }
        if was_network != network {
            lines.push(format!(
                "cluster `{name}`: network `{was_network}` → `{network}`"
            ));
        }
        if was_role != role {
            lines.push(format!("cluster `{name}`: {was_role} → {role}"));
        }
        match (was_gateway, gateway) {
            (None, Some(form)) => {
                lines.push(format!(
                    "cluster `{name}`: east-west gateway added ({form})"
                ));
            }
            (Some(_), None) => lines.push(format!("cluster `{name}`: east-west gateway removed")),
            (Some(was), Some(form)) if was != form => {
                lines.push(format!(
                    "cluster `{name}`: east-west gateway {was} → {form}"
                ));
            }
            _ => {}
        }
    }
    for name in old_clusters
        .keys()
        .filter(|n| !new_clusters.contains_key(*n))
    {
        lines.push(format!("cluster `{name}` removed"));
    }
    // Sets: a mesh of many primaries has an edge for every pair of clusters.
    let (old_edges, new_edges): (BTreeSet<&Edge>, BTreeSet<&Edge>) =
        (old.edges.iter().collect(), new.edges.iter().collect());
    for e in new_edges.difference(&old_edges) {
        lines.push(format!("`{}` {} `{}` (new)", e.from, verb(e.kind), e.to));
    }
    for e in old_edges.difference(&new_edges) {
        lines.push(format!(
            "`{}` no longer {} `{}`",
            e.from,
            verb(e.kind),
            e.to
        ));
    }
    // The order of clusters, networks or edges alone is not a change of shape.
    lines
}

fn verb(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::ControlPlane => "takes its control plane from",
        EdgeKind::Discovers => "discovers",
        EdgeKind::Peers => "peers with",
    }
}

/// The section of a `diff --format markdown` comment for a shape that changed: what changed,
/// and the mesh drawn after the change (before it, folded away). `None` when it did not (a
/// mere reordering of clusters is no change).
pub fn markdown_section(old: &Shape, new: &Shape) -> Option<String> {
    let changes = changes(old, new);
    if changes.is_empty() {
        return None;
    }
    let mut out = String::from("#### Topology shape\n\n");
    for line in changes {
        let _ = writeln!(out, "- {line}");
    }
    // A pull-request comment has room for a limited text, and mermaid refuses to draw past
    // its own limits: a drawing that would not render is left out, and said so.
    let (after, before) = (mermaid(new), mermaid(old));
    if !mermaid_renders(new, &after) {
        let _ = write!(out, "\n{}\n\n", too_large(new, &after));
        return Some(out);
    }
    let _ = write!(out, "\n```mermaid\n{after}```\n\n");
    if mermaid_renders(old, &before) && after.len() + before.len() <= COMMENT_DRAWINGS {
        let _ = write!(
            out,
            "<details><summary>Before this change</summary>\n\n```mermaid\n{before}```\n\n</details>\n\n"
        );
    }
    Some(out)
}

/// Mermaid's default limits, which GitHub's and GitLab's renderers keep: the size of a
/// diagram's text (`maxTextSize`) and its number of edges (`maxEdges`).
pub const MERMAID_MAX_TEXT: usize = 50_000;
pub const MERMAID_MAX_EDGES: usize = 500;

/// The room for both drawings in a pull-request comment (GitHub takes 65,536 characters, and
/// the object-level diff needs its share).
const COMMENT_DRAWINGS: usize = 30_000;

/// The number of edges a mermaid drawing of `shape` has: the relations, and a link to every
/// east-west gateway.
fn mermaid_edges(shape: &Shape) -> usize {
    let gateways = shape.clusters().filter(|c| c.east_west.is_some()).count();
    shape.edges.len() + gateways
}

/// Whether mermaid, with its default limits, draws `text` (the mermaid drawing of `shape`).
pub fn mermaid_renders(shape: &Shape, text: &str) -> bool {
    text.len() <= MERMAID_MAX_TEXT && mermaid_edges(shape) <= MERMAID_MAX_EDGES
}

/// Why a mermaid drawing would not render, and what to use instead.
pub fn too_large(shape: &Shape, text: &str) -> String {
    format!(
        "The drawing has {} edges and {} characters; mermaid draws at most {MERMAID_MAX_EDGES} edges and {MERMAID_MAX_TEXT} characters by default. Draw it with `meshc graph --format dot`.",
        mermaid_edges(shape),
        text.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, primary: bool, east_west: Option<&'static str>) -> ClusterShape {
        ClusterShape {
            name: name.to_string(),
            primary,
            east_west,
        }
    }

    fn edge(kind: EdgeKind, from: &str, to: &str) -> Edge {
        Edge {
            kind,
            from: from.to_string(),
            to: to.to_string(),
        }
    }

    /// One mesh, one network: c1 primary with a gateway, c2 its remote.
    fn two_clusters() -> Shape {
        Shape {
            meshes: vec![MeshShape {
                name: "m".to_string(),
                dataplane: "sidecar",
                networks: vec![NetworkShape {
                    name: "n".to_string(),
                    clusters: vec![
                        cluster("c1", true, Some("chart")),
                        cluster("c2", false, None),
                    ],
                }],
            }],
            edges: vec![
                edge(EdgeKind::ControlPlane, "c2", "c1"),
                edge(EdgeKind::Discovers, "c1", "c2"),
            ],
        }
    }

    #[test]
    fn reordering_is_not_a_change_of_shape() {
        let old = two_clusters();
        let mut new = old.clone();
        new.meshes[0].networks[0].clusters.reverse();
        new.edges.reverse();
        assert_eq!(changes(&old, &new), Vec::<String>::new());
        assert_eq!(markdown_section(&old, &new), None);
    }

    #[test]
    fn every_kind_of_change_is_one_line() {
        let old = two_clusters();
        let mut new = old.clone();
        new.meshes[0].dataplane = "ambient";
        new.meshes[0].networks[0].clusters[0].east_west = Some("Gateway API");
        new.meshes[0].networks[0].clusters[1] = cluster("c2", true, Some("Gateway API"));
        new.edges = vec![
            edge(EdgeKind::Discovers, "c1", "c2"),
            edge(EdgeKind::Discovers, "c2", "c1"),
        ];
        assert_eq!(
            changes(&old, &new),
            [
                "mesh `m`: sidecar → ambient",
                "cluster `c1`: east-west gateway chart → Gateway API",
                "cluster `c2`: remote → primary",
                "cluster `c2`: east-west gateway added (Gateway API)",
                "`c2` discovers `c1` (new)",
                "`c2` no longer takes its control plane from `c1`",
            ]
        );
        let section = markdown_section(&old, &new).expect("a section");
        assert!(section.contains("```mermaid\nflowchart LR\n"), "{section}");
    }

    #[test]
    fn labels_cannot_end_a_string_or_open_markup() {
        assert_eq!(mermaid_text("a\"b<c>#d"), "a#34;b#60;c#62;#35;d");
        assert_eq!(dot_text("a\"b\\c"), "a\\\"b\\\\c");
    }
}
