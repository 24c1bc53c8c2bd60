//! The scale meshc is for, built end to end through the binary (correctness, not time: the
//! benchmarks in `benches/` measure time): a generated mesh of 200 clusters, 20 primaries on
//! 10 networks, 2,000 services and 500 DestinationRules builds, `build --check` finds it up
//! to date, and `meshc diff` against itself is empty.

mod common;

#[path = "common/generate.rs"]
mod generate;

use common::{code, stderr, stdout};

#[test]
fn a_200_cluster_mesh_builds_and_diffs_clean_against_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topology = generate::topology(generate::L, "");
    std::fs::write(dir.path().join("topology.yaml"), &topology).expect("topology");
    generate::write_files(dir.path(), generate::L);
    let meshc = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("meshc")
            .expect("binary")
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("runs")
    };
    let out = meshc(&["build", "topology.yaml", "-o", "out"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    // Every cluster has its directory; the tree-level index lists them all.
    let index = std::fs::read_to_string(dir.path().join("out/README.md")).expect("index");
    assert_eq!(index.matches("| [`c").count(), generate::L.clusters);
    let services =
        std::fs::read_to_string(dir.path().join("out/c199/services.yaml")).expect("services");
    assert_eq!(
        services.matches("\nkind: Service\n").count(),
        generate::L.services,
        "every cluster gets every Service of the mesh"
    );
    let rules = std::fs::read_dir(dir.path().join("out/c0/istio"))
        .expect("istio/")
        .count();
    assert_eq!(rules, generate::L.destination_rules);

    let out = meshc(&["build", "topology.yaml", "-o", "out", "--check", "--locked"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = meshc(&["diff", "topology.yaml", "-o", "out", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "[]\n");
}
