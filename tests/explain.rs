//! `meshc explain` through the binary: the three formats, the exit codes (0 reachable, 1 none
//! reachable, 2 invalid topology or an argument that names nothing, 3 unreadable file), and
//! the diagnostics for bad arguments. The load-balancing cases themselves are table tests in
//! `src/explain/`.

use std::path::{Path, PathBuf};

mod common;

use common::Env;
use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .join("topology.yaml")
}

fn run(topology: &Path, args: &[&str]) -> std::process::Output {
    let env = Env::new("");
    let mut all = vec!["explain", topology.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    env.meshc(&all)
}

fn json(topology: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--format", "json"]);
    let out = run(topology, &all);
    let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is JSON ({e}): {}{}",
            common::stdout(&out),
            common::stderr(&out)
        )
    });
    (common::code(&out), value)
}

/// `(cluster, locality, share)` of every group of every level.
fn levels(v: &Value) -> Vec<Vec<(String, String, f64)>> {
    v["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .map(|l| {
            l["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .map(|g| {
                    (
                        g["cluster"].as_str().expect("cluster").to_string(),
                        g["locality"].as_str().expect("locality").to_string(),
                        g["share_percent"].as_f64().expect("share"),
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_article_rule_sends_90_percent_to_us_west1_and_10_to_us_central1() {
    let (code, v) = json(
        &example("primary-remote"),
        &["--service", "sample/helloworld", "--from", "cluster1"],
    );
    assert_eq!(code, 0);
    assert_eq!(v["service"], "sample/helloworld");
    assert_eq!(v["port"], 5000);
    assert_eq!(v["source"]["cluster"], "cluster1");
    assert_eq!(v["source"]["locality"], "us-west1/us-west1-a");
    assert_eq!(v["source"]["network"], "network1");
    assert_eq!(v["destinationRule"], "sample/helloworld");
    assert_eq!(v["mode"], "distribute");
    assert_eq!(v["down"], serde_json::json!([]));
    assert_eq!(v["unreachable"], serde_json::json!([]));
    assert_eq!(v["levels"][0]["priority"], 0);
    let group = &v["levels"][0]["groups"][0];
    assert_eq!(group["network"], "network1");
    assert_eq!(group["via_gateway"], false);
    assert_eq!(
        group["reason"],
        "distribute from us-west1/* to us-west1/*: 90"
    );
    assert_eq!(
        levels(&v),
        vec![vec![
            ("cluster1".into(), "us-west1/us-west1-a".into(), 90.0),
            ("cluster2".into(), "us-central1/us-central1-a".into(), 10.0),
        ]]
    );
}

#[test]
fn the_local_zone_down_sends_everything_to_us_central1() {
    let (code, v) = json(
        &example("primary-remote"),
        &[
            "--service",
            "sample/helloworld",
            "--from",
            "cluster1/us-west1-a",
            "--down",
            "us-west1/us-west1-a",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(v["down"], serde_json::json!(["us-west1/us-west1-a"]));
    assert_eq!(
        levels(&v),
        vec![vec![(
            "cluster2".into(),
            "us-central1/us-central1-a".into(),
            100.0
        )]]
    );
}

#[test]
fn nowhere_to_go_is_exit_1() {
    let (code, v) = json(
        &example("primary-remote"),
        &[
            "--service",
            "sample/helloworld",
            "--from",
            "cluster1",
            "--down",
            "cluster1",
            "--down",
            "us-central1",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(v["levels"], serde_json::json!([]));
    let out = run(
        &example("primary-remote"),
        &[
            "--service",
            "sample/helloworld",
            "--from",
            "cluster1",
            "--down",
            "cluster1",
            "--down",
            "cluster2",
        ],
    );
    assert_eq!(common::code(&out), 1);
    assert!(common::stdout(&out).contains("no endpoint is reachable"));
}

#[test]
fn failover_levels_cross_to_the_other_network_through_its_gateway() {
    let (code, v) = json(
        &example("hybrid"),
        &["--service", "shop/storefront", "--from", "gke-us-remote"],
    );
    assert_eq!(code, 0);
    assert_eq!(v["mode"], "failover");
    let l = levels(&v);
    assert_eq!(l.len(), 3, "{l:?}");
    assert_eq!(
        l[0],
        vec![("gke-us-remote".into(), "us-east1/us-east1-c".into(), 100.0)]
    );
    let last = &v["levels"][2]["groups"];
    assert!(
        last.as_array()
            .expect("groups")
            .iter()
            .all(|g| g["via_gateway"] == true && g["network"] == "net-eu"),
        "{last}"
    );
    assert_eq!(last[0]["reason"], "failover: from us-east1 to europe-west1");
}

#[test]
fn human_and_markdown_show_the_levels() {
    let args = ["--service", "sample/helloworld", "--from", "cluster1"];
    let out = run(&example("primary-remote"), &args);
    assert_eq!(common::code(&out), 0);
    let text = common::stdout(&out);
    assert!(
        text.starts_with(
            "sample/helloworld port 5000 from cluster1 (us-west1/us-west1-a, network1)"
        ),
        "{text}"
    );
    assert!(text.contains("mode distribute"), "{text}");
    assert!(text.contains("priority 0"), "{text}");
    assert!(
        text.contains("90.0%  cluster1  us-west1/us-west1-a"),
        "{text}"
    );
    assert!(
        text.contains("10.0%  cluster2  us-central1/us-central1-a"),
        "{text}"
    );
    let mut md_args = args.to_vec();
    md_args.extend_from_slice(&["--format", "markdown"]);
    let out = run(&example("primary-remote"), &md_args);
    let md = common::stdout(&out);
    assert!(
        md.contains("| share | cluster | locality | network | reason |"),
        "{md}"
    );
    assert!(
        md.contains("| 90.0% | cluster1 | us-west1/us-west1-a | network1 (direct) | distribute from us-west1/* to us-west1/*: 90 |"),
        "{md}"
    );
}

#[test]
fn arguments_that_name_nothing_are_diagnostics_with_exit_2() {
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["--service", "sample/helloworl", "--from", "cluster1"],
            "E100",
            "did you mean `sample/helloworld`?",
        ),
        (
            &["--service", "sample/helloworld", "--from", "clustr1"],
            "E101",
            "did you mean `cluster1`?",
        ),
        (
            &[
                "--service",
                "sample/helloworld",
                "--from",
                "cluster1/us-west1-b",
            ],
            "E101",
            "its zones: us-west1-a",
        ),
        (
            &[
                "--service",
                "sample/helloworld",
                "--from",
                "cluster1",
                "--port",
                "80",
            ],
            "E102",
            "its ports: 5000",
        ),
        (
            &[
                "--service",
                "sample/helloworld",
                "--from",
                "cluster1",
                "--subset",
                "v1",
            ],
            "E102",
            "defines no subsets",
        ),
    ];
    for (args, code, help) in cases {
        let (exit, v) = json(&example("primary-remote"), args);
        assert_eq!(exit, 2, "{args:?}");
        assert_eq!(v[0]["code"], code, "{args:?}: {v}");
        assert_eq!(v[0]["severity"], "error");
        assert!(
            v[0]["help"].as_str().is_some_and(|h| h.contains(help)),
            "{args:?}: {v}"
        );
        // Human form: on standard error, with the code and the help.
        let out = run(&example("primary-remote"), args);
        assert_eq!(common::code(&out), 2);
        let err = common::stderr(&out);
        assert!(err.contains(&format!("error[{code}]")), "{err}");
        assert!(err.contains(help), "{err}");
    }
    let (exit, v) = json(
        &example("primary-remote"),
        &[
            "--service",
            "sample/helloworld",
            "--from",
            "cluster1",
            "--down",
            "us-east9",
        ],
    );
    assert_eq!((exit, v[0]["code"].as_str()), (2, Some("E102")));
}

#[test]
fn an_invalid_topology_is_exit_2_and_an_unreadable_one_exit_3() {
    let env = Env::new("apiVersion: meshc/v1alpha1\nkind: Topology\nmeshes: []\n");
    let out = env.meshc(&[
        "explain",
        "topology.yaml",
        "--service",
        "a/b",
        "--from",
        "c",
    ]);
    assert_eq!(common::code(&out), 2);
    assert!(common::stderr(&out).contains("error["));
    let out = env.meshc(&["explain", "missing.yaml", "--service", "a/b", "--from", "c"]);
    assert_eq!(common::code(&out), 3);
}

#[test]
fn other_meshes_are_never_reached() {
    let env = Env::new(&format!(
        "{}services:\n  - {{ name: api, namespace: shop, mesh: east, ports: [{{ name: http, port: 80 }}] }}\n",
        common::TOPOLOGY
    ));
    let out = env.meshc(&[
        "explain",
        "topology.yaml",
        "--service",
        "shop/api",
        "--from",
        "c3",
        "--format",
        "json",
    ]);
    assert_eq!(common::code(&out), 1, "{}", common::stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let unreachable = v["unreachable"].as_array().expect("list");
    assert_eq!(unreachable.len(), 2, "{v}");
    assert!(
        unreachable[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("meshes share no endpoints")),
        "{v}"
    );
}

/// Every service of every example and test topology, from every cluster and zone, with each
/// cluster down in turn: an answer (never a panic), shares that sum to 100 in every level.
#[test]
fn every_service_is_explained_from_every_cluster_of_every_topology() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .expect("examples/")
        .flatten()
        .map(|e| e.path().join("topology.yaml"))
        .collect();
    files.extend(common::test_topologies().iter().map(|f| root.join(f)));
    for file in files {
        let checked = meshc::compiler::check_file(&file).expect("readable");
        let model = checked.model.as_ref().expect("valid");
        let t = &model.topology;
        for s in &t.services {
            for c in &t.clusters {
                let zones: Vec<String> =
                    c.zones.iter().map(|z| format!("{}/{z}", c.name)).collect();
                let froms = if zones.is_empty() {
                    vec![c.name.clone()]
                } else {
                    zones
                };
                let downs =
                    std::iter::once(None).chain(t.clusters.iter().map(|d| Some(d.name.clone())));
                for (from, down) in froms
                    .iter()
                    .flat_map(|f| downs.clone().map(move |d| (f, d)))
                {
                    let q = meshc::explain::Query {
                        service: format!("{}/{}", s.namespace, s.name),
                        from: from.clone(),
                        down: down.into_iter().collect(),
                        ..meshc::explain::Query::default()
                    };
                    let e = meshc::explain::explain(model, &q)
                        .unwrap_or_else(|d| panic!("{}: {q:?}: {}", file.display(), d.message));
                    for level in &e.levels {
                        let sum: f64 = level.groups.iter().map(|g| g.share_percent).sum();
                        assert!(
                            (sum - 100.0).abs() < 0.1,
                            "{}: {q:?}: {sum}",
                            file.display()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_cluster_outside_callers_is_told_the_name_does_not_resolve() {
    let topology = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/topologies/callers.yaml");
    let (code, v) = json(
        &topology,
        &["--service", "bookinfo/reviews", "--from", "west-2"],
    );
    assert_eq!(code, 0);
    let notes = v["notes"].as_array().expect("notes");
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("does not resolve"))),
        "{v}"
    );
    let (_, v) = json(
        &topology,
        &["--service", "bookinfo/reviews", "--from", "west-1"],
    );
    assert_eq!(v["notes"], serde_json::json!([]));
}
