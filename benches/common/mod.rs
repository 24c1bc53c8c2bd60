//! The generated topologies the benchmarks share.
//!
//! Hybrid and multi-network: one mesh, one primary per ten clusters (each serving nine remotes
//! on its network), a region per primary with three zones, one service per cluster spread over
//! three clusters, and one locality DestinationRule per service.

use std::fmt::Write as _;

/// A valid topology with `clusters` clusters; `ca` is inserted under the mesh (e.g.
/// `    ca: {keyAlgorithm: rsa-2048}\n`).
#[allow(dead_code)] // the validate bench uses it, the build bench does not
pub fn topology(clusters: usize, ca: &str) -> String {
    let groups = clusters.div_ceil(10);
    let mut s = String::from(
        "apiVersion: meshc/v1alpha1\nkind: Topology\nmeshes:\n  - name: mesh1\n    istio: {version: \"1.30\"}\n    dns: {capture: true}\nnetworks:\n",
    );
    s = s.replace("networks:\n", &format!("{ca}networks:\n"));
    for g in 0..groups {
        let _ = writeln!(s, "  - name: net{g}");
    }
    s.push_str("clusters:\n");
    for c in 0..clusters {
        let g = c / 10;
        let _ = writeln!(
            s,
            "  - name: c{c}\n    network: net{g}\n    region: region{g}\n    zones: [region{g}-z{}]",
            c % 3
        );
        if c % 10 == 0 {
            let _ = writeln!(
                s,
                "    controlPlane: primary\n    eastWestGateway: {{address: ew{g}.example.com}}"
            );
        } else {
            let _ = writeln!(s, "    controlPlane: remote\n    primary: c{}", g * 10);
        }
        let _ = writeln!(
            s,
            "    apiServer: {{url: \"https://api{c}.example.com:6443\"}}\n    remoteSecret: {{tokenFile: secrets/c{c}.token}}"
        );
    }
    s.push_str("services:\n");
    for c in 0..clusters {
        let others: Vec<String> = (0..3)
            .map(|k| format!("c{}", (c + k * 10) % clusters))
            .collect();
        let _ = writeln!(
            s,
            "  - name: svc{c}\n    namespace: ns{}\n    ports: [{{name: http, port: 8080}}]\n    clusters: [{}]",
            c % 50,
            others.join(", ")
        );
    }
    s.push_str("destinationRules:\n");
    for c in 0..clusters {
        let g = (c / 10) % groups;
        let to = if groups == 1 {
            format!("{{\"region{g}/*\": 100}}")
        } else {
            format!(
                "{{\"region{g}/*\": 80, \"region{}/*\": 20}}",
                (g + 1) % groups
            )
        };
        let _ = writeln!(
            s,
            "  - name: svc{c}\n    host: svc{c}\n    trafficPolicy:\n      loadBalancer:\n        localityLbSetting:\n          enabled: true\n          distribute:\n            - from: region{g}/*\n              to: {to}\n      outlierDetection: {{consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}}"
        );
    }
    s
}

#[path = "../../tests/common/generate.rs"]
pub mod generate;
