//! What `meshc build` writes for every example, checked against Istio's (1.30) and the Gateway
//! API's (v1.5) CRD schemas; and the checker itself on documents known to pass or fail.

mod common;
#[path = "common/crds.rs"]
mod crds;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

fn errors(doc: &Value) -> Vec<String> {
    crds::validate(crds::shared(), doc)
        .err()
        .unwrap_or_default()
}

#[test]
fn loads_every_group() {
    let crds = crds::shared();
    for api_version in [
        "networking.istio.io/v1",
        "security.istio.io/v1",
        "telemetry.istio.io/v1",
        "extensions.istio.io/v1alpha1",
        "gateway.networking.k8s.io/v1",
    ] {
        assert!(crds.knows_group(api_version), "{api_version}");
    }
    for api_version in ["v1", "apps/v1", "install.istio.io/v1alpha1"] {
        assert!(!crds.knows_group(api_version), "{api_version}");
    }
}

#[test]
fn a_valid_destination_rule_passes() {
    let doc = yaml(
        "
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: helloworld
  namespace: sample
  labels: { app: helloworld }
spec:
  host: helloworld.sample.svc.cluster.local
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 100 }
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        enabled: true
        distribute:
          - from: us-west1/*
            to: { 'us-west1/*': 80, 'us-central1/*': 20 }
    outlierDetection:
      consecutive5xxErrors: 7
      interval: 5m
      baseEjectionTime: 15m
    portLevelSettings:
      - port: { number: 8080 }
        tls: { mode: ISTIO_MUTUAL }
  subsets:
    - name: v1
      labels: { version: v1 }
",
    );
    assert_eq!(errors(&doc), Vec::<String>::new());
}

#[test]
fn an_unknown_field_fails_with_its_path() {
    let doc = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": { "name": "helloworld" },
        "spec": {
            "host": "helloworld",
            "trafficPolicy": { "loadBalancer": { "simple": "RANDOM", "bogus": 1 } }
        }
    });
    let errs = errors(&doc);
    assert!(
        errs.iter()
            .any(|e| e == "/spec/trafficPolicy/loadBalancer/bogus: unknown field `bogus`"),
        "{errs:#?}"
    );
}

#[test]
fn a_wrong_type_and_enum_fail() {
    let doc = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": { "name": "x" },
        "spec": {
            "host": "x",
            "trafficPolicy": {
                "loadBalancer": { "simple": "FASTEST" },
                "outlierDetection": { "consecutive5xxErrors": "seven" }
            }
        }
    });
    let errs = errors(&doc);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("/spec/trafficPolicy/loadBalancer")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("/spec/trafficPolicy/outlierDetection/consecutive5xxErrors")),
        "{errs:#?}"
    );
}

#[test]
fn a_gateway_api_gateway_passes() {
    let doc = yaml(
        "
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: eastwest
  namespace: istio-system
  labels:
    topology.istio.io/network: network1
spec:
  gatewayClassName: istio-east-west
  addresses:
    - value: eastwest.example.com
      type: Hostname
  listeners:
    - name: mesh
      port: 15008
      protocol: HBONE
      tls:
        mode: Terminate
        options:
          gateway.istio.io/tls-terminate-mode: ISTIO_MUTUAL
    - name: tls-istiod
      port: 15012
      protocol: TLS
      hostname: '*.istio-system.svc.cluster.local'
      tls: { mode: Passthrough }
",
    );
    assert_eq!(errors(&doc), Vec::<String>::new());

    let mut bad = doc.clone();
    bad["spec"]["listeners"][0]["port"] = json!(70000);
    let errs = errors(&bad);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("/spec/listeners/0/port:")),
        "{errs:#?}"
    );
}

#[test]
fn a_version_that_is_not_served_fails() {
    let doc = json!({
        "apiVersion": "networking.istio.io/v1alpha1",
        "kind": "DestinationRule",
        "metadata": { "name": "x" },
        "spec": { "host": "x" }
    });
    let errs = errors(&doc);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("not served") && errs[0].contains("v1"),
        "{errs:#?}"
    );

    let doc = json!({ "apiVersion": "networking.istio.io/v1", "kind": "Nonsense", "spec": {} });
    assert!(errors(&doc)[0].contains("no kind `Nonsense`"));
}

#[test]
fn top_level_fields_are_checked() {
    let doc = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": { "name": "default", "namespace": "istio-system", "annotations": { "a": "b" } },
        "spec": { "mtls": { "mode": "STRICT" } },
        "extra": true
    });
    let errs = errors(&doc);
    assert!(
        errs.iter().any(|e| e == "/extra: unknown field `extra`"),
        "{errs:#?}"
    );
}

/// Every `*.yaml` under `dir`, skipping `install/` (Helm values, IstioOperator) and `.meshc/`.
fn yaml_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name != "install" && name != ".meshc" {
                yaml_files(&path, files);
            }
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
}

/// Whether `dir` has an `istio/` directory at any depth.
fn has_istio_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).expect("read_dir").any(|e| {
        let path = e.expect("entry").path();
        path.is_dir() && (path.file_name().is_some_and(|n| n == "istio") || has_istio_dir(&path))
    })
}

#[test]
fn every_example_builds_to_documents_the_crds_accept() {
    let crds = crds::shared();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path().join("topology.yaml"))
        .filter(|p| p.exists())
        .collect();
    examples.sort();
    assert!(
        examples.len() >= 6,
        "expected at least six examples, found {}",
        examples.len()
    );
    // And the test topologies: ambient on 1.28 (Gateway API v1beta1) with both installers,
    // Solo on three networks.
    let mut extra: Vec<PathBuf> = std::fs::read_dir(root.join("tests/data/topologies"))
        .expect("tests/data/topologies/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    extra.sort();
    assert!(extra.len() >= 2, "the test topologies");
    examples.extend(extra);
    let mut api_versions = std::collections::BTreeSet::new();

    let mut failures = Vec::new();
    let mut validated = 0;
    let mut any_istio_dir = false;
    for topology in &examples {
        let name = if topology.ends_with("topology.yaml") {
            topology.parent().and_then(Path::file_name)
        } else {
            topology.file_stem()
        }
        .expect("name")
        .to_string_lossy();
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        common::build_ok(topology, &out, &tmp.path().join("pki"));
        any_istio_dir |= has_istio_dir(&out);

        let mut files = Vec::new();
        yaml_files(&out, &mut files);
        for file in files {
            let rel = file
                .strip_prefix(&out)
                .expect("under out/")
                .display()
                .to_string();
            let text = std::fs::read_to_string(&file).expect("read");
            let docs: Vec<Value> = match serde_saphyr::from_multiple(&text) {
                Ok(docs) => docs,
                Err(e) => {
                    failures.push(format!("{name}/{rel}: not YAML: {e}"));
                    continue;
                }
            };
            for doc in docs {
                let Some(api_version) = doc["apiVersion"].as_str() else {
                    continue;
                };
                let kind = doc["kind"].as_str().unwrap_or("?");
                if !crds.knows_group(api_version) {
                    continue;
                }
                validated += 1;
                if kind == "Gateway" {
                    api_versions.insert(api_version.to_string());
                }
                if let Err(errs) = crds::validate(crds, &doc) {
                    let object = doc["metadata"]["name"].as_str().unwrap_or("?");
                    for e in errs {
                        failures.push(format!("{name}/{rel}: {kind}/{object}: {e}"));
                    }
                }
            }
        }
    }
    println!(
        "{validated} Istio/Gateway API documents validated across {} examples",
        examples.len()
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Both Gateway API versions meshc writes were checked: v1beta1 (ambient before 1.29) and v1.
    for v in [
        "gateway.networking.k8s.io/v1",
        "gateway.networking.k8s.io/v1beta1",
    ] {
        assert!(
            api_versions.contains(v),
            "no {v} Gateway validated: {api_versions:?}"
        );
    }
    if any_istio_dir {
        assert!(
            validated > 0,
            "an example wrote an istio/ directory, yet no Istio or Gateway API document was found"
        );
    }
}

#[test]
fn every_served_schema_compiles() {
    let crds = crds::shared();
    let mut n = 0;
    for (group, version, kind) in crds.served() {
        let schema = crds.schema(group, version, kind);
        assert!(
            matches!(schema, Ok(Some(_))),
            "{group}/{version} {kind}: {schema:?}"
        );
        n += 1;
    }
    assert!(n >= 40, "only {n} served versions");
}
