//! One table test per deployment model: primary-remote with the 90/10 `distribute` rule,
//! multi-primary on two networks with region failover, and hybrid (primaries with remotes on
//! two networks). Each row: the source, what is down, and the expected levels as
//! `(cluster, locality, share, via gateway)`.

use super::*;
use crate::compiler;
use crate::source::Source;

fn model(text: &str) -> Model {
    let checked = compiler::check(Source::new("t.yaml", "t.yaml", text.to_string()));
    assert!(
        !checked.has_errors(),
        "{:?}",
        checked
            .diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
    );
    checked.model.expect("model")
}

type Row<'a> = (&'a str, &'a str, f64, bool);

/// A row of a table: the source, what is down, the expected levels.
type Case<'a> = (&'a str, Vec<&'a str>, Vec<Vec<Row<'a>>>);

/// The same, with the expected mode.
type ModeCase<'a> = (&'a str, Vec<&'a str>, Mode, Vec<Vec<Row<'a>>>);

fn levels_of(
    m: &Model,
    service: &str,
    from: &str,
    down: &[&str],
) -> (Mode, Vec<Vec<Row<'static>>>) {
    let e = explain(
        m,
        &Query {
            service: service.into(),
            from: from.into(),
            down: down.iter().map(|s| (*s).to_string()).collect(),
            ..Query::default()
        },
    )
    .expect("explained");
    let levels = e
        .levels
        .iter()
        .map(|l| {
            l.groups
                .iter()
                .map(|g| {
                    (
                        &*g.cluster.clone().leak(),
                        &*g.locality.clone().leak(),
                        g.share_percent,
                        g.via_gateway,
                    )
                })
                .collect()
        })
        .collect();
    (e.mode, levels)
}

const PRIMARY_REMOTE: &str = "
apiVersion: meshc/v1alpha1
kind: Topology
meshes: [{ name: mesh1 }]
networks: [{ name: network1 }]
clusters:
  - { name: cluster1, network: network1, region: us-west1, zones: [us-west1-a], controlPlane: primary,
      eastWestGateway: { address: 203.0.113.10 } }
  - { name: cluster2, network: network1, region: us-central1, zones: [us-central1-a], controlPlane: remote,
      primary: cluster1, apiServer: { url: 'https://192.0.2.20:6443' } }
services:
  - { name: helloworld, namespace: sample, ports: [{ name: http, port: 5000 }] }
destinationRules:
  - name: helloworld
    host: helloworld
    trafficPolicy:
      loadBalancer:
        localityLbSetting:
          enabled: true
          distribute:
            - from: us-west1/*
              to: { 'us-west1/*': 90, 'us-central1/*': 10 }
      outlierDetection: { consecutive5xxErrors: 100, interval: 1s, baseEjectionTime: 1m }
";

#[test]
fn primary_remote_distribute_90_10() {
    let m = model(PRIMARY_REMOTE);
    let cases: Vec<ModeCase<'_>> = vec![
        (
            "cluster1",
            vec![],
            Mode::Distribute,
            vec![vec![
                ("cluster1", "us-west1/us-west1-a", 90.0, false),
                ("cluster2", "us-central1/us-central1-a", 10.0, false),
            ]],
        ),
        // The local zone down: its share has nowhere else in us-west1, so us-central1 takes all.
        (
            "cluster1/us-west1-a",
            vec!["us-west1/us-west1-a"],
            Mode::Distribute,
            vec![vec![(
                "cluster2",
                "us-central1/us-central1-a",
                100.0,
                false,
            )]],
        ),
        // A source in us-central1: no `from` matches, so no weights: spread.
        (
            "cluster2",
            vec![],
            Mode::Spread,
            vec![vec![
                ("cluster1", "us-west1/us-west1-a", 50.0, false),
                ("cluster2", "us-central1/us-central1-a", 50.0, false),
            ]],
        ),
        (
            "cluster1",
            vec!["cluster1", "cluster2"],
            Mode::Distribute,
            vec![],
        ),
    ];
    for (from, down, mode, want) in cases {
        let got = levels_of(&m, "sample/helloworld", from, &down);
        assert_eq!(got, (mode, want), "from {from}, down {down:?}");
    }
}

const MULTI_NETWORK: &str = "
apiVersion: meshc/v1alpha1
kind: Topology
meshes: [{ name: mesh1 }]
networks: [{ name: net1 }, { name: net2 }]
clusters:
  - { name: c1, network: net1, region: us-east1, zones: [us-east1-b, us-east1-c], controlPlane: primary,
      eastWestGateway: { address: 203.0.113.1 }, apiServer: { url: 'https://10.0.0.1:6443' } }
  - { name: c2, network: net2, region: eu-west1, zones: [eu-west1-b], controlPlane: primary,
      eastWestGateway: { address: 203.0.113.2 }, apiServer: { url: 'https://10.0.0.2:6443' } }
  - { name: c3, network: net2, region: ap-south1, controlPlane: primary,
      eastWestGateway: { address: 203.0.113.3 }, apiServer: { url: 'https://10.0.0.3:6443' } }
services:
  - { name: api, namespace: shop, ports: [{ name: http, port: 8080 }] }
destinationRules:
  - name: api
    host: api
    trafficPolicy:
      loadBalancer:
        localityLbSetting:
          enabled: true
          failover:
            - { from: us-east1, to: eu-west1 }
      outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s }
";

#[test]
fn multi_primary_multi_network_failover() {
    let m = model(MULTI_NETWORK);
    let cases: Vec<Case<'_>> = vec![
        (
            "c1/us-east1-b",
            vec![],
            vec![
                vec![("c1", "us-east1/us-east1-b", 100.0, false)],
                vec![("c1", "us-east1/us-east1-c", 100.0, false)],
                vec![("c2", "eu-west1/eu-west1-b", 100.0, true)],
                vec![("c3", "ap-south1", 100.0, true)],
            ],
        ),
        (
            "c1",
            vec!["us-east1"],
            vec![
                vec![("c2", "eu-west1/eu-west1-b", 100.0, true)],
                vec![("c3", "ap-south1", 100.0, true)],
            ],
        ),
        (
            "c1",
            vec!["us-east1/us-east1-b", "c2"],
            vec![
                vec![("c1", "us-east1/us-east1-c", 100.0, false)],
                vec![("c3", "ap-south1", 100.0, true)],
            ],
        ),
        // From eu-west1 no failover entry applies: default priorities, other regions alike.
        (
            "c2",
            vec![],
            vec![
                vec![("c2", "eu-west1/eu-west1-b", 100.0, false)],
                vec![
                    ("c1", "us-east1/us-east1-b", 33.33, true),
                    ("c1", "us-east1/us-east1-c", 33.33, true),
                    ("c3", "ap-south1", 33.33, false),
                ],
            ],
        ),
    ];
    for (from, down, want) in cases {
        let got = levels_of(&m, "shop/api", from, &down);
        assert_eq!(got, (Mode::Failover, want), "from {from}, down {down:?}");
    }
}

const HYBRID: &str = "
apiVersion: meshc/v1alpha1
kind: Topology
meshes: [{ name: shop }]
networks: [{ name: net-eu }, { name: net-us }]
clusters:
  - { name: eu-primary, network: net-eu, region: europe-west1, zones: [europe-west1-b], controlPlane: primary,
      eastWestGateway: { address: 203.0.113.1 }, apiServer: { url: 'https://10.0.0.1:6443' } }
  - { name: eu-remote, network: net-eu, region: europe-west1, zones: [europe-west1-c], controlPlane: remote,
      primary: eu-primary, apiServer: { url: 'https://10.0.0.2:6443' } }
  - { name: us-primary, network: net-us, region: us-east1, zones: [us-east1-b], controlPlane: primary,
      eastWestGateway: { address: 203.0.113.3 }, apiServer: { url: 'https://10.0.0.3:6443' } }
  - { name: us-remote, network: net-us, region: us-east1, zones: [us-east1-c], controlPlane: remote,
      primary: us-primary, apiServer: { url: 'https://10.0.0.4:6443' } }
services:
  - { name: storefront, namespace: shop, ports: [{ name: http, port: 8080 }] }
  - { name: customer-data, namespace: shop, ports: [{ name: grpc, port: 9090 }],
      clusters: [eu-primary, eu-remote], trafficDistribution: PreferClose }
destinationRules:
  - name: storefront
    host: storefront
    trafficPolicy:
      loadBalancer:
        localityLbSetting:
          enabled: true
          failover:
            - { from: europe-west1, to: us-east1 }
            - { from: us-east1, to: europe-west1 }
      outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s }
";

#[test]
fn hybrid_failover_and_traffic_distribution() {
    let m = model(HYBRID);
    let (mode, got) = levels_of(&m, "shop/storefront", "us-remote", &[]);
    assert_eq!(mode, Mode::Failover);
    assert_eq!(
        got,
        vec![
            vec![("us-remote", "us-east1/us-east1-c", 100.0, false)],
            vec![("us-primary", "us-east1/us-east1-b", 100.0, false)],
            vec![
                ("eu-primary", "europe-west1/europe-west1-b", 50.0, true),
                ("eu-remote", "europe-west1/europe-west1-c", 50.0, true),
            ],
        ]
    );
    // The whole US region down: the remote's requests cross to Europe.
    let (_, got) = levels_of(&m, "shop/storefront", "us-remote", &["us-east1"]);
    assert_eq!(got.len(), 1);
    assert!(got[0].iter().all(|g| g.3));
    // PreferClose without a DestinationRule: failoverPriority network, region, zone, forced on.
    let (mode, got) = levels_of(&m, "shop/customer-data", "us-primary", &[]);
    assert_eq!(mode, Mode::FailoverPriority);
    assert_eq!(
        got,
        vec![vec![
            ("eu-primary", "europe-west1/europe-west1-b", 50.0, true),
            ("eu-remote", "europe-west1/europe-west1-c", 50.0, true),
        ]]
    );
    let (_, got) = levels_of(&m, "shop/customer-data", "eu-remote", &[]);
    assert_eq!(
        got[0],
        vec![("eu-remote", "europe-west1/europe-west1-c", 100.0, false)]
    );
    assert_eq!(
        got[1],
        vec![("eu-primary", "europe-west1/europe-west1-b", 100.0, false)]
    );
}

#[test]
fn unknown_arguments_are_diagnostics() {
    let m = model(PRIMARY_REMOTE);
    let ask = |service: &str, from: &str, down: &[&str]| {
        explain(
            &m,
            &Query {
                service: service.into(),
                from: from.into(),
                down: down.iter().map(|s| (*s).to_string()).collect(),
                ..Query::default()
            },
        )
        .err()
        .map(|d| d.code)
    };
    assert_eq!(
        ask("helloworld", "cluster1", &[]),
        Some(Code::ExplainUnknownService)
    );
    assert_eq!(
        ask("sample/helloworld", "cluster9", &[]),
        Some(Code::ExplainUnknownSource)
    );
    assert_eq!(
        ask("sample/helloworld", "cluster1/us-west1-b", &[]),
        Some(Code::ExplainUnknownSource)
    );
    assert_eq!(
        ask("sample/helloworld", "cluster1", &["us-east9"]),
        Some(Code::ExplainUnknownArgument)
    );
}

const SUBSETS: &str = "
apiVersion: meshc/v1alpha1
kind: Topology
meshes: [{ name: mesh1 }]
networks: [{ name: network1 }]
clusters:
  - { name: cluster1, network: network1, region: us-west1, zones: [us-west1-a, us-west1-b], controlPlane: primary,
      apiServer: { url: 'https://10.0.0.1:6443' } }
  - { name: cluster2, network: network1, region: us-central1, zones: [us-central1-a], controlPlane: primary,
      apiServer: { url: 'https://10.0.0.2:6443' } }
services:
  - name: reviews
    namespace: shop
    ports: [{ name: http, port: 9080 }, { name: grpc, port: 9090 }]
destinationRules:
  - name: reviews
    host: reviews
    trafficPolicy:
      loadBalancer:
        localityLbSetting: { enabled: true }
      outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s }
      portLevelSettings:
        - port: { number: 9090 }
          loadBalancer:
            localityLbSetting: { enabled: true }
    subsets:
      - name: central
        labels: { topology.istio.io/cluster: cluster2 }
      - name: v1
        labels: { version: v1 }
      - name: off
        trafficPolicy:
          loadBalancer:
            localityLbSetting: { enabled: false }
";

fn ask(m: &Model, port: Option<u32>, subset: Option<&str>) -> Explanation {
    explain(
        m,
        &Query {
            service: "shop/reviews".into(),
            from: "cluster1".into(),
            port,
            subset: subset.map(str::to_string),
            ..Query::default()
        },
    )
    .expect("explained")
}

#[test]
fn ports_and_subsets_merge_as_istio_merges_them() {
    let m = model(SUBSETS);
    // The rule's policy: default failover, three levels (same zone, same region, elsewhere).
    let e = ask(&m, None, None);
    assert_eq!((e.mode, e.levels.len()), (Mode::Failover, 3));
    assert_eq!(
        e.levels[2].groups[0].reason,
        "default failover: another region"
    );
    // Port 9090's own policy replaces the rule's whole: no outlierDetection, no failover.
    let e = ask(&m, Some(9090), None);
    assert_eq!((e.mode, e.levels.len()), (Mode::Spread, 1));
    assert!(
        e.levels[0]
            .groups
            .iter()
            .all(|g| (g.share_percent - 33.33).abs() < 0.01)
    );
    // A subset by a label the topology knows keeps only those endpoints.
    let e = ask(&m, None, Some("central"));
    let clusters: Vec<&str> = e
        .levels
        .iter()
        .flat_map(|l| l.groups.iter().map(|g| g.cluster.as_str()))
        .collect();
    assert_eq!(clusters, vec!["cluster2"]);
    // A label it does not know: every endpoint, and a note.
    let e = ask(&m, None, Some("v1"));
    assert_eq!(e.levels.len(), 3);
    assert!(
        e.notes.iter().any(|n| n.contains("`version`")),
        "{:?}",
        e.notes
    );
    // A subset's own loadBalancer replaces the rule's: locality load balancing off.
    let e = ask(&m, None, Some("off"));
    assert_eq!((e.mode, e.levels.len()), (Mode::Spread, 1));
    assert!(e.levels[0].groups[0].reason.contains("enabled: false"));
}

const AMBIENT: &str = "
apiVersion: meshc/v1alpha1
kind: Topology
meshes: [{ name: mesh1, dataplane: ambient }]
networks: [{ name: net-west }, { name: net-central }]
clusters:
  - { name: west, network: net-west, region: us-west1, controlPlane: primary,
      eastWestGateway: { address: 203.0.113.40 }, apiServer: { url: 'https://192.0.2.50:6443' } }
  - { name: central, network: net-central, region: us-central1, controlPlane: primary,
      eastWestGateway: { address: 203.0.113.41 }, apiServer: { url: 'https://192.0.2.51:6443' } }
services:
  - { name: local, namespace: shop, ports: [{ name: http, port: 80 }] }
  - { name: global, namespace: shop, ports: [{ name: http, port: 80 }], global: true }
";

#[test]
fn ambient_spans_clusters_only_for_global_services() {
    let m = model(AMBIENT);
    let e = explain(
        &m,
        &Query {
            service: "shop/local".into(),
            from: "west".into(),
            ..Query::default()
        },
    )
    .expect("explained");
    assert_eq!(e.levels.len(), 1);
    assert_eq!(e.levels[0].groups.len(), 1);
    assert_eq!(e.unreachable.len(), 1);
    assert!(e.unreachable[0].reason.contains("not `global`"));
    let (_, levels) = levels_of(&m, "shop/global", "west", &[]);
    assert_eq!(
        levels,
        vec![vec![
            ("west", "us-west1", 50.0, false),
            ("central", "us-central1", 50.0, true)
        ]]
    );
}
