//! Istio's own cases from `pilot/pkg/networking/core/loadbalancer/loadbalancer_test.go` (tag
//! 1.30.0): the same localities, labels and settings, and the same expected priorities and
//! weights. Endpoints are named by the last octet of their first address in Istio's fixtures.

use super::*;

#[allow(clippy::unnecessary_wraps)] // Istio's localities may be nil
fn loc(s: &str) -> Option<Loc> {
    let p: Vec<&str> = s.split('/').collect();
    Some(Loc::new(
        p[0],
        p.get(1).copied().unwrap_or(""),
        p.get(2).copied().unwrap_or(""),
    ))
}

fn source() -> Loc {
    Loc::new("region1", "zone1", "subzone1")
}

/// A group as Istio's fixtures write it without endpoints (`buildFakeCluster`): no weight.
fn bare(locality: Option<Loc>) -> Group {
    Group {
        locality,
        endpoints: vec![Endpoint {
            tag: 0,
            labels: BTreeMap::new(),
            weight: 1,
        }],
        weight: None,
        priority: 0,
    }
}

/// `buildFakeCluster`.
fn fake_cluster() -> Vec<Group> {
    [
        "region1/zone1/subzone1",
        "region1/zone1/subzone1",
        "region1/zone1/subzone2",
        "region1/zone1/subzone3",
        "region1/zone2",
        "region2",
        "region3",
    ]
    .iter()
    .map(|l| bare(loc(l)))
    .collect()
}

fn failover_r1_r2() -> Setting {
    Setting {
        failover: vec![Failover {
            from: "region1".into(),
            to: "region2".into(),
        }],
        ..Setting::default()
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn ep(tag: usize, pairs: &[(&str, &str)]) -> Endpoint {
    Endpoint {
        tag,
        labels: labels(pairs),
        weight: 1,
    }
}

#[test]
fn distribute_between_subzones() {
    let mut groups = fake_cluster();
    let setting = Setting {
        distribute: Some(vec![Distribute {
            from: "region1/zone1/subzone1".into(),
            to: vec![
                ("region1/zone1/subzone1".into(), 80),
                ("region1/zone1/subzone2".into(), 15),
                ("region1/zone1/subzone3".into(), 5),
            ],
        }]),
        ..Setting::default()
    };
    apply(&mut groups, &source(), &BTreeMap::new(), &setting, true);
    // Istio reads the weight of an emptied group as 0 (its endpoints are gone; unset weight).
    let weights: Vec<u32> = groups
        .iter()
        .map(|g| {
            if g.endpoints.is_empty() {
                0
            } else {
                g.weight.unwrap_or(0)
            }
        })
        .collect();
    assert_eq!(weights, vec![40, 40, 15, 5, 0, 0, 0]);
}

#[test]
fn failover_all_priorities() {
    let mut groups = fake_cluster();
    apply(
        &mut groups,
        &source(),
        &BTreeMap::new(),
        &failover_r1_r2(),
        true,
    );
    let priorities: Vec<u32> = groups.iter().map(|g| g.priority).collect();
    assert_eq!(priorities, vec![0, 0, 1, 1, 2, 3, 4]);
}

#[test]
fn failover_priorities_with_gaps() {
    let mut groups: Vec<Group> = [
        "region1/zone1/subzone2",
        "region2/zone1/subzone2",
        "region2/zone1/subzone2",
    ]
    .iter()
    .map(|l| bare(loc(l)))
    .collect();
    apply(
        &mut groups,
        &source(),
        &BTreeMap::new(),
        &failover_r1_r2(),
        true,
    );
    let priorities: Vec<u32> = groups.iter().map(|g| g.priority).collect();
    assert_eq!(priorities, vec![0, 1, 1]);
}

#[test]
fn failover_priorities_with_some_nil_localities() {
    let mut groups = vec![
        bare(loc("region1/zone1/subzone2")),
        bare(None),
        bare(loc("region2/zone1/subzone2")),
    ];
    apply(
        &mut groups,
        &source(),
        &BTreeMap::new(),
        &failover_r1_r2(),
        true,
    );
    let priorities: Vec<u32> = groups.iter().map(|g| g.priority).collect();
    assert_eq!(priorities, vec![0, 2, 1]);
}

#[test]
fn failover_with_locality_lb_disabled() {
    // A disabled setting is turned into no setting, and then nothing is applied.
    let disabled = effective_setting(
        Some((Some(true), Setting::default())),
        Some((Some(false), Setting::default())),
        TrafficDistribution::Any,
    );
    assert_eq!(disabled, (None, false));
}

/// `buildWrappedLocalityLbEndpoints`: three localities of two endpoints each.
fn wrapped() -> Vec<Group> {
    let (n, c) = (NETWORK, CLUSTER);
    vec![
        Group::new(
            loc("region1/zone1/subzone1"),
            vec![
                ep(1, &[(n, "n1"), (c, "c1")]),
                ep(2, &[("key", "value"), (n, "n2"), (c, "c2")]),
            ],
        ),
        Group::new(
            loc("region2/zone2/subzone2"),
            vec![
                ep(3, &[("key", "value"), (n, "n1"), (c, "c3")]),
                ep(4, &[("key", "value"), (n, "n2"), (c, "c4")]),
            ],
        ),
        Group::new(
            loc("region3/zone3/subzone3"),
            vec![
                ep(1234, &[("key", "value"), (n, "n1"), (c, "c1")]),
                ep(2345, &[("key", "value"), (n, "n2"), (c, "c2")]),
            ],
        ),
    ]
}

/// (locality, endpoint tags, group weight, priority) of every group, in order.
type Row = (String, Vec<usize>, u32, u32);

/// A case: name, `failoverPriority`, proxy labels, expected rows.
type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, Vec<Row>);

fn rows(groups: &[Group]) -> Vec<Row> {
    groups
        .iter()
        .map(|g| {
            (
                g.locality
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                g.endpoints.iter().map(|e| e.tag).collect(),
                g.weight.unwrap_or(0),
                g.priority,
            )
        })
        .collect()
}

fn row(l: &str, tags: &[usize], weight: u32, priority: u32) -> Row {
    (l.to_string(), tags.to_vec(), weight, priority)
}

fn failover_priority(
    mut groups: Vec<Group>,
    priority: &[&str],
    proxy: &[(&str, &str)],
    failover: Vec<Failover>,
) -> Vec<Row> {
    let setting = Setting {
        failover_priority: priority.iter().map(|s| (*s).to_string()).collect(),
        failover,
        ..Setting::default()
    };
    apply(&mut groups, &source(), &labels(proxy), &setting, true);
    rows(&groups)
}

#[test]
fn failover_priority_cases() {
    let (n, c) = (NETWORK, CLUSTER);
    let (r1, r2, r3) = (
        "region1/zone1/subzone1",
        "region2/zone2/subzone2",
        "region3/zone3/subzone3",
    );
    let all_zero = vec![
        row(r1, &[1, 2], 2, 0),
        row(r2, &[3, 4], 2, 0),
        row(r3, &[1234, 2345], 2, 0),
    ];
    let by_n1 = vec![
        row(r1, &[1], 1, 0),
        row(r1, &[2], 1, 1),
        row(r2, &[3], 1, 0),
        row(r2, &[4], 1, 1),
        row(r3, &[1234], 1, 0),
        row(r3, &[2345], 1, 1),
    ];
    let cases: Vec<Case<'_>> = vec![
        (
            "match none label",
            vec![n, c],
            vec![(n, "test"), (c, "test")],
            all_zero.clone(),
        ),
        (
            "match network label",
            vec![n, c],
            vec![(n, "n1"), (c, "test")],
            by_n1.clone(),
        ),
        (
            "not match the first n label",
            vec![n, c],
            vec![(n, "test"), (c, "c1")],
            all_zero.clone(),
        ),
        (
            "match all labels",
            vec!["key", n, c],
            vec![("key", "value"), (n, "n2"), (c, "c2")],
            vec![
                row(r1, &[2], 1, 0),
                row(r1, &[1], 1, 3),
                row(r2, &[4], 1, 1),
                row(r2, &[3], 1, 2),
                row(r3, &[2345], 1, 0),
                row(r3, &[1234], 1, 2),
            ],
        ),
        (
            "priority assignment as per the overridden value",
            vec!["topology.istio.io/network=n1"],
            vec![(n, "n2"), (c, "test")],
            by_n1,
        ),
        (
            "no endpoints with overridden value",
            vec!["topology.istio.io/network=n3"],
            vec![(n, "n1"), (c, "test")],
            all_zero,
        ),
    ];
    for (name, priority, proxy, want) in cases {
        let got = failover_priority(wrapped(), &priority, &proxy, Vec::new());
        assert_eq!(got, want, "{name}");
    }
}

/// `buildWrappedLocalityLbEndpointsForFailoverPriorityWithFailover` with `failover` region1 →
/// region2: label priorities first, then locality, compacted.
#[test]
fn failover_priority_with_failover_match_all_labels() {
    let (n, c) = (NETWORK, CLUSTER);
    let one = |l: &str, e: Endpoint| Group::new(loc(l), vec![e]);
    let groups = vec![
        one("region1/zone1/subzone1", ep(1, &[(n, "n1"), (c, "c1")])),
        one(
            "region1/zone2/subzone2",
            ep(2, &[("key", "value"), (n, "n2"), (c, "c2")]),
        ),
        one(
            "region2/zone2/subzone2",
            ep(3, &[("key", "value"), (n, "n1"), (c, "c3")]),
        ),
        one(
            "region3/zone3/subzone3",
            ep(4, &[("key", "value"), (n, "n2"), (c, "c4")]),
        ),
        one("region2/zone2/subzone2", ep(5, &[(n, "n2"), (c, "c2")])),
        one(
            "region3/zone3/subzone3",
            ep(6, &[("key", "value"), (n, "n1"), (c, "c6")]),
        ),
    ];
    let got = failover_priority(
        groups,
        &[n, c],
        &[(n, "n2"), (c, "c2")],
        failover_r1_r2().failover,
    );
    let priorities: Vec<(usize, u32)> = got.iter().map(|r| (r.1[0], r.3)).collect();
    assert_eq!(
        priorities,
        vec![(1, 3), (2, 0), (3, 4), (4, 2), (5, 1), (6, 5)]
    );
}

/// `TestGetLocalityLbSetting`.
#[test]
fn which_setting_applies() {
    let empty = || Setting::default();
    let with_failover = || Setting {
        failover: vec![Failover {
            from: String::new(),
            to: String::new(),
        }],
        ..Setting::default()
    };
    let any = TrafficDistribution::Any;
    assert_eq!(effective_setting(None, None, any), (None, false));
    assert_eq!(
        effective_setting(Some((None, empty())), None, any),
        (Some(empty()), false)
    );
    assert_eq!(
        effective_setting(None, Some((None, empty())), any),
        (Some(empty()), false)
    );
    assert_eq!(
        effective_setting(None, Some((Some(true), empty())), any),
        (Some(empty()), false)
    );
    assert_eq!(
        effective_setting(Some((None, empty())), Some((None, with_failover())), any),
        (Some(with_failover()), false)
    );
    let zone = effective_setting(
        Some((None, empty())),
        None,
        TrafficDistribution::PreferSameZone,
    );
    assert_eq!(
        zone.0.map(|s| s.failover_priority),
        Some(vec![NETWORK.into(), REGION.into(), ZONE.into()])
    );
    let node = effective_setting(
        Some((None, empty())),
        None,
        TrafficDistribution::PreferSameNode,
    );
    assert_eq!(
        node.0.map(|s| s.failover_priority),
        Some(vec![
            NETWORK.into(),
            REGION.into(),
            ZONE.into(),
            SUBZONE.into(),
            HOSTNAME.into()
        ])
    );
    assert_eq!(
        effective_setting(Some((Some(false), empty())), None, any),
        (None, false)
    );
    assert_eq!(
        effective_setting(
            Some((Some(true), empty())),
            Some((Some(false), empty())),
            any
        ),
        (None, false)
    );
    assert_eq!(
        effective_setting(
            Some((Some(false), empty())),
            Some((Some(true), empty())),
            any
        ),
        (Some(empty()), false)
    );
}

#[test]
fn locality_matching_as_istio() {
    let l = loc("us-west1/us-west1-a");
    assert!(locality_match(l.as_ref(), "us-west1/*"));
    assert!(locality_match(l.as_ref(), "us-west1"));
    assert!(locality_match(l.as_ref(), "*"));
    assert!(!locality_match(l.as_ref(), "us-west1/us-west1-a/rack1"));
    assert!(!locality_match(l.as_ref(), "us-central1/*"));
    assert_eq!(
        Loc::new("r", "", "").to_string(),
        "r",
        "no trailing separators"
    );
}
