//! The generated topologies the benchmarks share (`tests/common/generate.rs`).

#[path = "../../tests/common/generate.rs"]
pub mod generate;

/// A valid topology with `clusters` clusters for the validation benchmarks: one primary and
/// one network per ten clusters, one service and one locality DestinationRule per cluster;
/// `ca` is inserted under the mesh (e.g. `    ca: {keyAlgorithm: rsa-2048}\n`).
#[allow(dead_code)] // the validate bench uses it, the build bench does not
pub fn topology(clusters: usize, ca: &str) -> String {
    let groups = clusters.div_ceil(10);
    generate::topology(
        generate::Size {
            name: "validate",
            clusters,
            primaries: groups,
            networks: groups,
            services: clusters,
            destination_rules: clusters,
        },
        ca,
    )
}
