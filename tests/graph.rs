//! `meshc graph` and the drawing in `meshc diff --format markdown`, through the binary: what
//! is drawn (meshes, networks, roles, control-plane and discovery edges, east-west gateways),
//! that the mermaid text parses with mermaid's own parser (when `MESHC_MERMAID` names a
//! directory with the npm packages mermaid and jsdom, as .ci/run sets it) and the dot text with
//! Graphviz (when `dot` is installed), and that invalid input exits as `validate` does.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use assert_cmd::Command;
use common::Env;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn meshc(args: &[&str]) -> Output {
    Command::cargo_bin("meshc")
        .expect("binary")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("examples"))
        .expect("examples/")
        .flatten()
        .map(|e| e.path().join("topology.yaml"))
        .filter(|p| p.exists())
        .collect();
    files.sort();
    files
}

fn graph(file: &Path, format: &str) -> String {
    let out = meshc(&["graph", &file.to_string_lossy(), "--format", format]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

#[test]
fn primary_remote_is_drawn_with_its_roles_edges_and_gateway() {
    let text = graph(&repo("examples/primary-remote/topology.yaml"), "mermaid");
    assert_eq!(
        text,
        r#"flowchart LR
  subgraph m0["mesh mesh1 (sidecar)"]
    subgraph m0n0["network network1"]
      c0["cluster1<br/>primary"]
      c0ew{{"east-west gateway<br/>chart"}}
      c1["cluster2<br/>remote"]
    end
  end
  c0 --- c0ew
  c1 -->|"control plane"| c0
  c0 -.->|"discovers"| c1
  classDef primary stroke-width:3px
  class c0 primary
"#
    );
    // The default format is mermaid, and the output is the same on every run.
    let file = repo("examples/primary-remote/topology.yaml");
    let again = meshc(&["graph", &file.to_string_lossy()]);
    assert_eq!(stdout(&again), text);
}

#[test]
fn hybrid_has_two_networks_two_control_plane_edges_and_every_discovery_edge() {
    let text = graph(&repo("examples/hybrid/topology.yaml"), "mermaid");
    assert_eq!(text.matches("  subgraph m0[").count(), 1, "{text}");
    assert!(text.contains("subgraph m0n0[\"network net-eu\"]"), "{text}");
    assert!(text.contains("subgraph m0n1[\"network net-us\"]"), "{text}");
    assert_eq!(text.matches("-->|\"control plane\"|").count(), 2, "{text}");
    assert!(text.contains("c1 -->|\"control plane\"| c0"), "{text}");
    assert!(text.contains("c3 -->|\"control plane\"| c2"), "{text}");
    // Each primary discovers the three other clusters: six remote secrets.
    assert_eq!(text.matches("-.->|\"discovers\"|").count(), 6, "{text}");
    assert_eq!(text.matches("{{\"east-west gateway").count(), 4, "{text}");
    assert!(text.contains("class c0,c2 primary"), "{text}");
}

#[test]
fn solo_ambient_primaries_peer_instead_of_discovering() {
    let text = graph(&repo("examples/ambient-solo/topology.yaml"), "mermaid");
    assert!(text.contains("(ambient, Solo)"), "{text}");
    assert!(!text.contains("discovers"), "{text}");
    assert_eq!(text.matches("==>|\"peers\"|").count(), 2, "{text}");
}

#[test]
fn dot_has_a_cluster_subgraph_per_mesh_and_network() {
    let text = graph(&repo("examples/hybrid/topology.yaml"), "dot");
    assert!(text.starts_with("digraph meshc {\n"), "{text}");
    assert!(text.ends_with("}\n"), "{text}");
    assert!(text.contains("subgraph cluster_m0 {"), "{text}");
    assert!(text.contains("subgraph cluster_m0n0 {"), "{text}");
    assert!(text.contains("subgraph cluster_m0n1 {"), "{text}");
    assert!(
        text.contains("c1 -> c0 [label=\"control plane\"];"),
        "{text}"
    );
    assert_eq!(text.matches("label=\"discovers\", style=dashed").count(), 6);
    assert_eq!(text.matches('{').count(), text.matches('}').count());
}

#[test]
fn every_example_draws_as_valid_mermaid_and_dot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut mermaid_files = Vec::new();
    for file in examples() {
        let name = file
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .expect("example name");
        let text = graph(&file, "mermaid");
        assert!(text.starts_with("flowchart LR\n"), "{name}: {text}");
        // Every cluster of the example is a node, with its role.
        let topology = std::fs::read_to_string(&file).expect("example");
        for line in topology.lines() {
            if let Some(cluster) = line.strip_prefix("  - name: ")
                && topology.contains(&format!("  - name: {cluster}\n    network:"))
            {
                let cluster = cluster.split_whitespace().next().unwrap_or_default();
                assert!(
                    text.contains(&format!("[\"{cluster}<br/>primary\"]"))
                        || text.contains(&format!("[\"{cluster}<br/>remote\"]")),
                    "{name}: no node for {cluster}:\n{text}"
                );
            }
        }
        let path = dir.path().join(format!("{name}.mmd"));
        std::fs::write(&path, &text).expect("write");
        mermaid_files.push(path);
        let dot = graph(&file, "dot");
        if let Ok(out) = std::process::Command::new("dot")
            .arg("-Tsvg")
            .arg("-o")
            .arg(dir.path().join(format!("{name}.svg")))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(dot.as_bytes())?;
                child.wait_with_output()
            })
        {
            assert!(out.status.success(), "{name}: dot refused:\n{dot}");
        }
    }
    check_mermaid(&mermaid_files);
}

/// Parses the files with mermaid's parser when `MESHC_MERMAID` names a directory holding
/// `node_modules/mermaid` and `node_modules/jsdom`; without it the check is skipped, unless
/// `MESHC_MERMAID_REQUIRED` is set.
fn check_mermaid(files: &[PathBuf]) {
    let Some(dir) = std::env::var_os("MESHC_MERMAID").map(PathBuf::from) else {
        assert!(
            std::env::var_os("MESHC_MERMAID_REQUIRED").is_none(),
            "MESHC_MERMAID_REQUIRED is set but MESHC_MERMAID is not"
        );
        eprintln!(
            "skipped: the mermaid parse check (set MESHC_MERMAID to a directory with `npm install mermaid jsdom`)"
        );
        return;
    };
    // ES modules resolve packages from the script's own directory: run a copy placed there.
    let script = dir.join("check-mermaid.mjs");
    std::fs::copy(repo("tests/graph/check-mermaid.mjs"), &script).expect("copy the checker");
    let out = std::process::Command::new("node")
        .arg(&script)
        .args(files)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "mermaid does not parse the drawing:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_invalid_topology_prints_diagnostics_and_exits_2_an_unreadable_one_3() {
    let env = Env::new(
        "apiVersion: meshc/v1alpha1\nkind: Topology\nmeshes:\n  - name: m\nnetworks:\n  - name: n\nclusters:\n  - name: c1\n    network: netwrk\n    controlPlane: primary\n",
    );
    let out = env.meshc(&["graph", "topology.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing is drawn");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E012"), "{err}");
    let out = env.meshc(&["graph", "missing.yaml"]);
    assert_eq!(out.status.code(), Some(3));
    let out = env.meshc(&["graph", "topology.yaml", "--format", "svg"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown format is a usage error"
    );
}

const BEFORE: &str = "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: mesh1
networks:
  - name: network1
clusters:
  - name: cluster1
    network: network1
    controlPlane: primary
    eastWestGateway: { address: 203.0.113.10 }
  - name: cluster2
    network: network1
    controlPlane: remote
    primary: cluster1
    apiServer: { url: \"https://192.0.2.20:6443\" }
    remoteSecret: { externalSecret: { store: vault, key: c2 } }
services:
  - name: web
    namespace: shop
    ports: [{ name: http, port: 80 }]
";

/// BEFORE with a third cluster, a remote of cluster1.
fn with_cluster3() -> String {
    BEFORE.replace(
        "services:\n",
        "  - name: cluster3\n    network: network1\n    controlPlane: remote\n    primary: cluster1\n    apiServer: { url: \"https://192.0.2.30:6443\" }\n    remoteSecret: { externalSecret: { store: vault, key: c3 } }\nservices:\n",
    )
}

#[test]
fn diff_from_draws_the_topology_when_its_shape_changed() {
    let env = Env::new(BEFORE);
    std::fs::write(env.path("old.yaml"), BEFORE).expect("old");
    std::fs::write(env.path("topology.yaml"), with_cluster3()).expect("new");
    let out = env.meshc(&[
        "diff",
        "--from",
        "old.yaml",
        "topology.yaml",
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("#### Topology shape"), "{text}");
    assert!(
        text.contains("- cluster `cluster3` added: remote in mesh `mesh1`, network `network1`"),
        "{text}"
    );
    assert!(
        text.contains("- `cluster1` discovers `cluster3` (new)"),
        "{text}"
    );
    assert!(text.contains("```mermaid\nflowchart LR\n"), "{text}");
    assert!(text.contains("c2 -->|\"control plane\"| c0"), "{text}");
    assert!(
        text.contains("<summary>Before this change</summary>"),
        "{text}"
    );
    // The drawing sits between the summary table and the per-cluster sections.
    let table = text.find("| cluster |").expect("table");
    let shape = text.find("#### Topology shape").expect("shape");
    let details = text.find("<details><summary><code>").expect("details");
    assert!(table < shape && shape < details, "{text}");

    // A remote promoted to primary changes roles and edges.
    let promoted = BEFORE
        .replace("    controlPlane: remote\n    primary: cluster1\n", "    controlPlane: primary\n    eastWestGateway: { address: 203.0.113.20 }\n")
        .replace("    network: network1\n    controlPlane: primary\n    eastWestGateway: { address: 203.0.113.10 }\n", "    network: network1\n    controlPlane: primary\n    eastWestGateway: { address: 203.0.113.10 }\n    apiServer: { url: \"https://192.0.2.10:6443\" }\n    remoteSecret: { externalSecret: { store: vault, key: c1 } }\n");
    std::fs::write(env.path("topology.yaml"), &promoted).expect("new");
    let out = env.meshc(&[
        "diff",
        "--from",
        "old.yaml",
        "topology.yaml",
        "--format",
        "markdown",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("- cluster `cluster2`: remote → primary"),
        "{text}"
    );
    assert!(
        text.contains("- `cluster2` no longer takes its control plane from `cluster1`"),
        "{text}"
    );
    assert!(
        text.contains("- `cluster2` discovers `cluster1` (new)"),
        "{text}"
    );
}

#[test]
fn diff_shows_no_drawing_when_the_shape_is_the_same_or_the_old_side_is_a_tree() {
    let env = Env::new(BEFORE);
    std::fs::write(env.path("old.yaml"), BEFORE).expect("old");
    // A port changes: manifests differ, the shape does not.
    std::fs::write(
        env.path("topology.yaml"),
        BEFORE.replace("port: 80 }", "port: 8080 }"),
    )
    .expect("new");
    let out = env.meshc(&[
        "diff",
        "--from",
        "old.yaml",
        "topology.yaml",
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(!text.contains("mermaid"), "{text}");
    // Against out/ the old shape is not known: no drawing, whatever changed.
    let out = env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", "markdown"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stdout(&out).contains("mermaid"));
    // Other formats never carry it.
    std::fs::write(env.path("topology.yaml"), with_cluster3()).expect("new");
    for format in ["human", "brief", "json"] {
        let out = env.meshc(&[
            "diff",
            "--from",
            "old.yaml",
            "topology.yaml",
            "--format",
            format,
        ]);
        assert!(!stdout(&out).contains("mermaid"), "{format}");
    }
}

/// `n` primaries on one network: every one discovers every other, n × (n − 1) edges.
fn primaries(n: usize) -> String {
    let mut text = String::from(
        "apiVersion: meshc/v1alpha1\nkind: Topology\nmeshes:\n  - name: m\nnetworks:\n  - name: net\nclusters:\n",
    );
    for i in 0..n {
        let _ = write!(
            text,
            "  - name: c{i}\n    network: net\n    controlPlane: primary\n    apiServer: {{ url: \"https://10.0.0.{}:6443\" }}\n    remoteSecret: {{ externalSecret: {{ store: vault, key: c{i} }} }}\n",
            i + 1
        );
    }
    text
}

#[test]
fn a_drawing_past_mermaids_limits_is_left_out_and_said_so() {
    // 22 primaries: 462 edges, which mermaid draws; 23: 506, which it refuses.
    let env = Env::new(&primaries(23));
    let out = env.meshc(&["graph", "topology.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("note: The drawing has 506 edges"), "{err}");
    assert!(err.contains("meshc graph --format dot"), "{err}");
    let out = env.meshc(&["graph", "topology.yaml", "--format", "dot"]);
    assert!(out.stderr.is_empty(), "dot has no such limit");

    std::fs::write(env.path("old.yaml"), primaries(22)).expect("old");
    let out = env.meshc(&[
        "diff",
        "--from",
        "old.yaml",
        "topology.yaml",
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("- cluster `c22` added: primary"), "{text}");
    assert!(text.contains("The drawing has 506 edges"), "{text}");
    assert!(!text.contains("```mermaid"), "{text}");

    // Shrinking back under the limit: the new drawing is shown, the old one is not.
    let out = env.meshc(&[
        "diff",
        "--from",
        "topology.yaml",
        "old.yaml",
        "--format",
        "markdown",
    ]);
    let text = stdout(&out);
    assert!(text.contains("- cluster `c22` removed"), "{text}");
    assert_eq!(text.matches("```mermaid").count(), 1, "{text}");
    assert!(!text.contains("Before this change"), "{text}");
}
