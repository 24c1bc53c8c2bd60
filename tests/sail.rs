//! The Sail Operator installer (`installers: [sail]`): what `meshc build` writes under
//! `install/sail/` for every topology that names it, checked against the operator's CRD schemas
//! (`tests/data/crds/sail/`, copied from istio-ecosystem/sail-operator `chart/crds/`) with the
//! library's checker, and against the CEL rules those CRDs carry, evaluated here offline; plus
//! a snapshot of the ambient output and the facts the operator's docs fix.

mod common;

use std::path::{Path, PathBuf};

use meshc::crds::{Crds, Verdict};
use serde_json::Value;

const SAIL_CRDS: &str = "tests/data/crds/sail";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn crd_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo(SAIL_CRDS))
        .expect("tests/data/crds/sail/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The topologies that install with Sail, from the examples and the test topologies.
fn sail_topologies() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(repo("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path().join("topology.yaml"))
        .chain(common::test_topologies().iter().map(|t| repo(t)))
        .filter(|p| {
            std::fs::read_to_string(p).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.trim_start().starts_with("installers:") && l.contains("sail"))
            })
        })
        .collect();
    all.sort();
    all
}

/// Builds `topology` and returns `(cluster/file, document)` for every Sail object written.
fn built_sail_objects(topology: &Path) -> (tempfile::TempDir, Vec<(String, Value)>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    common::build_ok(topology, &out, &tmp.path().join("pki"));
    let mut objects = Vec::new();
    for rel in common::files_under(&out) {
        if !rel.contains("/install/sail/") {
            continue;
        }
        let text = std::fs::read_to_string(out.join(&rel)).expect("read");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("YAML");
        for doc in docs {
            objects.push((rel.clone(), doc));
        }
    }
    (tmp, objects)
}

/// A value at a dotted CEL path under `node` (`__namespace__` is CEL's escape of `namespace`).
fn at<'a>(node: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(node, |v, key| {
        v.get(key.replace("__namespace__", "namespace"))
    })
}

/// Evaluates one of the CEL rule shapes the Sail CRDs use; `None` for a rule this test does not
/// know, so that a new shape fails the test rather than being skipped.
fn eval(rule: &str, node: &Value) -> Option<bool> {
    let rule = rule.trim();
    // Transition rules compare with the stored object; a first apply has none.
    if rule == "self == oldSelf" {
        return Some(true);
    }
    // "At most one of": (has(self.a)?1:0) + (has(self.b)?1:0) <= 1
    if let Some(sum) = rule.strip_suffix("<= 1") {
        let mut present = 0;
        for term in sum.split('+') {
            let path = term
                .trim()
                .strip_prefix("(has(self.")?
                .strip_suffix(")?1:0)")?;
            present += usize::from(at(node, path).is_some());
        }
        return Some(present <= 1);
    }
    // Disjunctions of !has(self.p), self.p == self.q and self.p == 'literal'.
    let mut any = false;
    for term in rule.split("||") {
        let term = term.trim();
        let holds = if let Some(path) = term
            .strip_prefix("!has(self.")
            .and_then(|t| t.strip_suffix(')'))
        {
            at(node, path).is_none()
        } else {
            let (left, right) = term.split_once(" == ")?;
            let left = at(node, left.strip_prefix("self.")?);
            if let Some(literal) = right.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                left.and_then(Value::as_str) == Some(literal)
            } else {
                let right = at(node, right.strip_prefix("self.")?);
                left.is_some() && left == right
            }
        };
        any |= holds;
    }
    Some(any)
}

/// Every CEL rule of the schema that applies to `doc`, walking both together: `(path, rule,
/// verdict)`.
fn cel_rules(
    schema: &Value,
    doc: &Value,
    path: &str,
    out: &mut Vec<(String, String, Option<bool>)>,
) {
    if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
        for r in rules {
            let rule = r["rule"].as_str().unwrap_or_default().to_string();
            let verdict = eval(&rule, doc);
            out.push((path.to_string(), rule, verdict));
        }
    }
    match doc {
        Value::Object(map) => {
            for (key, value) in map {
                let child = schema["properties"]
                    .get(key)
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(child) = child {
                    cel_rules(child, value, &format!("{path}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                cel_rules(&schema["items"], item, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The served schema of `kind` at `version` in the Sail CRD files.
fn schema_of(kind: &str, version: &str) -> Value {
    for file in crd_files() {
        let text = std::fs::read_to_string(&file).expect("read");
        let crd: Value = serde_saphyr::from_str(&text).expect("CRD YAML");
        if crd["spec"]["names"]["kind"] != kind {
            continue;
        }
        for v in crd["spec"]["versions"].as_array().expect("versions") {
            if v["name"] == version {
                return v["schema"]["openAPIV3Schema"].clone();
            }
        }
    }
    panic!("no CRD for {kind} {version}");
}

#[test]
fn every_sail_object_validates_against_the_operator_crds_and_their_cel_rules() {
    let crds = Crds::load(&crd_files()).unwrap_or_else(|e| panic!("{e}"));
    let topologies = sail_topologies();
    assert!(
        topologies.len() >= 3,
        "the openshift example and the test topologies install with Sail: {topologies:?}"
    );
    let mut failures = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    let mut rules_evaluated = 0;
    for topology in &topologies {
        let (_tmp, objects) = built_sail_objects(topology);
        assert!(
            !objects.is_empty(),
            "{}: no Sail objects",
            topology.display()
        );
        for (rel, doc) in objects {
            let kind = doc["kind"].as_str().expect("kind").to_string();
            kinds.insert(kind.clone());
            let where_ = format!("{}: {rel}", topology.display());
            match crds.validate(&doc).unwrap_or_else(|e| panic!("{e}")) {
                Verdict::Checked(violations) => {
                    failures.extend(violations.iter().map(|v| format!("{where_}: {v}")));
                }
                other => failures.push(format!("{where_}: {kind} not checked: {other:?}")),
            }
            let version = doc["apiVersion"]
                .as_str()
                .and_then(|a| a.split('/').nth(1))
                .expect("version");
            let mut rules = Vec::new();
            cel_rules(&schema_of(&kind, version), &doc, "", &mut rules);
            for (path, rule, verdict) in rules {
                rules_evaluated += 1;
                match verdict {
                    Some(true) => {}
                    Some(false) => failures.push(format!("{where_}: {path}: CEL `{rule}` fails")),
                    None => failures.push(format!("{where_}: {path}: CEL `{rule}` not evaluated")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for kind in ["Istio", "IstioCNI", "ZTunnel", "IstioRevisionTag"] {
        assert!(kinds.contains(kind), "no {kind} written: {kinds:?}");
    }
    // metadata.name == 'default' (IstioCNI, ZTunnel) and istioNamespace == namespace (Istio).
    assert!(rules_evaluated >= 3, "{rules_evaluated} CEL rules");
}

#[test]
fn the_cel_evaluator_catches_what_the_api_server_would_refuse() {
    let istio = schema_of("Istio", "v1");
    let bad = serde_json::json!({
        "apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": { "name": "default" },
        "spec": { "namespace": "istio-system", "version": "v1.30.3",
                  "values": { "global": { "istioNamespace": "other" } } },
    });
    let mut rules = Vec::new();
    cel_rules(&istio, &bad, "", &mut rules);
    assert!(
        rules
            .iter()
            .any(|(p, _, v)| p == "/spec" && *v == Some(false)),
        "{rules:?}"
    );
    let cni = schema_of("IstioCNI", "v1");
    let misnamed = serde_json::json!({
        "apiVersion": "sailoperator.io/v1", "kind": "IstioCNI", "metadata": { "name": "cni" },
        "spec": { "namespace": "istio-cni", "version": "v1.30.3" },
    });
    let mut rules = Vec::new();
    cel_rules(&cni, &misnamed, "", &mut rules);
    assert!(rules.iter().any(|(_, _, v)| *v == Some(false)), "{rules:?}");
    // And the schema check refuses a version the operator does not serve.
    let crds = Crds::load(&crd_files()).unwrap_or_else(|e| panic!("{e}"));
    let old = serde_json::json!({
        "apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": { "name": "default" },
        "spec": { "namespace": "istio-system", "version": "v1.30.99" },
    });
    match crds.validate(&old).expect("validates") {
        Verdict::Checked(v) => assert!(!v.is_empty(), "v1.30.99 accepted"),
        other => panic!("{other:?}"),
    }
    // A misspelled value is refused too: the operator's schema spells out the charts' values.
    let typo = serde_json::json!({
        "apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": { "name": "default" },
        "spec": { "namespace": "istio-system", "version": "v1.30.3",
                  "values": { "pilot": { "envs": { "A": "b" } } } },
    });
    match crds.validate(&typo).expect("validates") {
        Verdict::Checked(v) => assert!(
            v.iter().any(|v| v.to_string().contains("envs")),
            "pilot.envs accepted: {v:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ambient_sail_output_matches_its_snapshot() {
    let (_tmp, objects) = built_sail_objects(&repo("tests/data/topologies/sail-ambient.yaml"));
    let mut text = String::new();
    for (rel, doc) in &objects {
        text.push_str("===== ");
        text.push_str(rel);
        text.push('\n');
        text.push_str(&serde_saphyr::to_string(doc).expect("YAML"));
    }
    insta::assert_snapshot!("sail-ambient", text);
    // The facts of the operator's ambient docs, named rather than only snapshotted.
    let find = |rel: &str| {
        objects
            .iter()
            .find(|(r, _)| r == rel)
            .map_or_else(|| panic!("{rel}"), |(_, d)| d.clone())
    };
    let istio = find("cluster2/install/sail/istio.yaml");
    assert_eq!(istio["metadata"]["name"], "1-30");
    assert_eq!(istio["spec"]["profile"], "ambient");
    assert_eq!(istio["spec"]["version"], "v1.30.3");
    assert_eq!(
        istio["spec"]["values"]["pilot"]["trustedZtunnelNamespace"],
        "ztunnel"
    );
    assert_eq!(
        istio["spec"]["values"]["pilot"]["env"]["AMBIENT_ENABLE_MULTI_NETWORK"],
        "true"
    );
    let ztunnel = find("cluster2/install/sail/ztunnel.yaml");
    assert_eq!(ztunnel["spec"]["namespace"], "ztunnel");
    assert_eq!(ztunnel["spec"]["values"]["ztunnel"]["network"], "network2");
    assert_eq!(
        ztunnel["spec"]["values"]["ztunnel"]["multiCluster"]["clusterName"],
        "cluster2"
    );
    let cni = find("cluster2/install/sail/istiocni.yaml");
    assert_eq!(cni["spec"]["profile"], "ambient");
    let tag = find("cluster2/install/sail/istiorevisiontag.yaml");
    assert_eq!(tag["spec"]["targetRef"]["name"], "1-30");
}
