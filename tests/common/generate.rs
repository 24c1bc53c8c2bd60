//! Generated topologies of a given size, shared by the benchmarks (`benches/`) and the
//! large-topology test (`tests/scale.rs`).
//!
//! The shape is a hybrid, multi-network mesh as a platform team runs one: `networks` networks,
//! each with `primaries / networks` primaries serving an equal share of the remotes, a region
//! per network with three zones, every service running on two clusters of its home network and
//! one of the next, reachable everywhere, and locality DestinationRules that keep 80% of
//! traffic in the home region and send 20% to the next. Every API server has a CA file
//! (`secrets/api-ca.pem`, written by [`write_files`] with the reader tokens), so a valid
//! topology compiles without a warning.

#![allow(dead_code)]

use std::fmt::Write as _;

/// How large a generated topology is.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub name: &'static str,
    pub clusters: usize,
    pub primaries: usize,
    pub networks: usize,
    pub services: usize,
    pub destination_rules: usize,
}

/// 3 clusters: one primary with two remotes, on one network.
pub const S: Size = Size {
    name: "S",
    clusters: 3,
    primaries: 1,
    networks: 1,
    services: 10,
    destination_rules: 3,
};

/// 30 clusters, 3 primaries on 3 networks, 300 services.
pub const M: Size = Size {
    name: "M",
    clusters: 30,
    primaries: 3,
    networks: 3,
    services: 300,
    destination_rules: 75,
};

/// The scale meshc is for: 200 clusters, 20 primaries on 10 networks, 2,000 services, 500
/// DestinationRules.
pub const L: Size = Size {
    name: "L",
    clusters: 200,
    primaries: 20,
    networks: 10,
    services: 2000,
    destination_rules: 500,
};

/// A valid topology of `size`; `ca` is inserted under the mesh (e.g.
/// `    ca: {keyAlgorithm: rsa-2048}\n`, or empty).
pub fn topology(size: Size, ca: &str) -> String {
    let Size {
        clusters,
        primaries,
        networks,
        services,
        destination_rules,
        ..
    } = size;
    assert!(primaries >= networks && primaries <= clusters && networks >= 1);
    let mut s = format!(
        "apiVersion: meshc/v1alpha1\nkind: Topology\nmeshes:\n  - name: mesh1\n    istio: {{version: \"1.30\"}}\n    dns: {{capture: true}}\n{ca}networks:\n"
    );
    for n in 0..networks {
        let _ = writeln!(s, "  - name: net{n}");
    }
    // Clusters are dealt to networks in turn; the first `primaries` clusters are primaries.
    let network = |c: usize| c % networks;
    s.push_str("clusters:\n");
    for c in 0..clusters {
        let n = network(c);
        let _ = writeln!(
            s,
            "  - name: c{c}\n    network: net{n}\n    region: region{n}\n    zones: [region{n}-z{}]",
            (c / networks) % 3
        );
        if c < primaries {
            let _ = writeln!(
                s,
                "    controlPlane: primary\n    eastWestGateway: {{address: ew{c}.example.com}}"
            );
        } else {
            // Remotes of a network are shared among that network's primaries.
            let per_network = primaries / networks;
            let primary = n + networks * ((c / networks) % per_network.max(1));
            let _ = writeln!(s, "    controlPlane: remote\n    primary: c{primary}");
        }
        let _ = writeln!(
            s,
            "    apiServer: {{url: \"https://api{c}.example.com:6443\", caFile: secrets/api-ca.pem}}\n    remoteSecret: {{tokenFile: secrets/c{c}.token}}"
        );
    }
    s.push_str("services:\n");
    for v in 0..services {
        let home = v % clusters;
        // Two clusters of the home network and one of the next: where the rules send traffic.
        let mut runs: Vec<String> = Vec::new();
        for c in [home, home + networks, home + 1] {
            let name = format!("c{}", c % clusters);
            if !runs.contains(&name) {
                runs.push(name);
            }
        }
        let _ = writeln!(
            s,
            "  - name: svc{v}\n    namespace: ns{}\n    ports: [{{name: http, port: 8080}}]\n    clusters: [{}]",
            v % 50,
            runs.join(", ")
        );
    }
    if destination_rules > 0 {
        s.push_str("destinationRules:\n");
    }
    for d in 0..destination_rules.min(services) {
        let n = network(d % clusters);
        let to = if networks == 1 {
            format!("{{\"region{n}/*\": 100}}")
        } else {
            format!(
                "{{\"region{n}/*\": 80, \"region{}/*\": 20}}",
                (n + 1) % networks
            )
        };
        let _ = writeln!(
            s,
            "  - name: svc{d}\n    host: svc{d}\n    trafficPolicy:\n      loadBalancer:\n        localityLbSetting:\n          enabled: true\n          distribute:\n            - from: region{n}/*\n              to: {to}\n      outlierDetection: {{consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}}"
        );
    }
    s
}

/// Writes the files a topology of `size` names into `dir`: a reader token per cluster and the
/// API servers' CA.
pub fn write_files(dir: &std::path::Path, size: Size) {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).expect("secrets/");
    for c in 0..size.clusters {
        std::fs::write(secrets.join(format!("c{c}.token")), format!("token-{c}\n")).expect("token");
    }
    std::fs::write(
        secrets.join("api-ca.pem"),
        "-----BEGIN CERTIFICATE-----\nbWVzaGMgYmVuY2htYXJrIEFQSSBzZXJ2ZXIgQ0E=\n-----END CERTIFICATE-----\n",
    )
    .expect("CA");
}
