//! What a compile produces: files by path, each knowing the scope it belongs to.
//!
//! A file belongs to one cluster (`out/<cluster>/...`), to one mesh, or to the whole tree
//! (`out/README.md`). The scope is carried with the file from the emitter that made it to the
//! manifest on disk, so the emit summary, `build --check` and `diff` group files by what they
//! are for, never by splitting a path: a tree-level directory is not a cluster.
//!
//! Bytes are shared (`Arc`): a file that is the same in every cluster of a mesh is rendered
//! once and referenced by each cluster's path, not copied per cluster in memory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What an output file is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// One cluster's directory: everything that cluster needs.
    Cluster(String),
    /// One mesh: files about the mesh as a whole.
    Mesh(String),
    /// The whole output tree (an index of the clusters, GitOps objects).
    Tree,
}

impl Scope {
    /// How the scope is written in the manifest: `cluster/NAME`, `mesh/NAME` or `tree`.
    pub fn key(&self) -> String {
        match self {
            Scope::Cluster(c) => format!("cluster/{c}"),
            Scope::Mesh(m) => format!("mesh/{m}"),
            Scope::Tree => "tree".to_string(),
        }
    }

    /// The inverse of [`Scope::key`].
    pub fn parse(key: &str) -> Option<Scope> {
        match key.split_once('/') {
            Some(("cluster", c)) if !c.is_empty() => Some(Scope::Cluster(c.to_string())),
            Some(("mesh", m)) if !m.is_empty() => Some(Scope::Mesh(m.to_string())),
            None if key == "tree" => Some(Scope::Tree),
            _ => None,
        }
    }

    /// The cluster, for a cluster's file.
    pub fn cluster(&self) -> Option<&str> {
        match self {
            Scope::Cluster(c) => Some(c),
            Scope::Mesh(_) | Scope::Tree => None,
        }
    }
}

/// How a scope is named to a reader: the cluster's name, `mesh NAME`, or `(top level)`.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Cluster(c) => f.write_str(c),
            Scope::Mesh(m) => write!(f, "mesh {m}"),
            Scope::Tree => f.write_str("(top level)"),
        }
    }
}

/// One file to write, by its path relative to the output directory (`/`-separated).
#[derive(Clone)]
pub struct OutFile {
    pub scope: Scope,
    pub bytes: Arc<[u8]>,
    /// Holds key material: written owner-only.
    pub private: bool,
}

impl fmt::Debug for OutFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OutFile({}, {} bytes)",
            self.scope.key(),
            self.bytes.len()
        )
    }
}

/// The whole output tree, as the build wants it.
#[derive(Debug, Default)]
pub struct Output {
    pub files: BTreeMap<String, OutFile>,
}

impl OutFile {
    pub fn new(scope: Scope, bytes: Arc<[u8]>, private: bool) -> OutFile {
        OutFile {
            scope,
            bytes,
            private,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_keys_round_trip_and_refuse_the_rest() {
        for scope in [
            Scope::Cluster("c1".into()),
            Scope::Mesh("mesh1".into()),
            Scope::Tree,
        ] {
            assert_eq!(Scope::parse(&scope.key()), Some(scope));
        }
        for bad in ["", "cluster/", "mesh", "trees", "node/x"] {
            assert_eq!(Scope::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn clusters_sort_before_meshes_and_the_tree() {
        let mut scopes = [
            Scope::Tree,
            Scope::Mesh("a".into()),
            Scope::Cluster("b".into()),
            Scope::Cluster("a".into()),
        ];
        scopes.sort();
        assert_eq!(
            scopes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["a", "b", "mesh a", "(top level)"]
        );
    }
}
