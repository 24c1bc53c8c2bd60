//! `meshc diff` and `meshc build --check` through the real binary: what a reviewer reads for a
//! topology change, in every format, with every exit code; secrets never printed (every
//! command run through `Env::meshc` is checked for key material and long base64 runs).

mod common;

use common::{Env, code, files_under, stderr, stdout};
use serde_json::Value;

/// Two primaries (config clusters) and a remote, one network, a weighted DestinationRule,
/// reader tokens and API server CAs for every watched cluster.
const MESH: &str = "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: mesh1
networks:
  - name: net1
clusters:
  - name: east-1
    network: net1
    region: us-east1
    controlPlane: primary
    eastWestGateway: { address: 203.0.113.1 }
    apiServer: { url: \"https://10.0.0.1:6443\", caFile: secrets/ca.crt }
    remoteSecret: { tokenFile: secrets/east-1.token }
  - name: west-1
    network: net1
    region: us-west1
    controlPlane: primary
    apiServer: { url: \"https://10.0.0.2:6443\", caFile: secrets/ca.crt }
    remoteSecret: { tokenFile: secrets/west-1.token }
  - name: east-2
    network: net1
    region: us-east1
    controlPlane: remote
    primary: east-1
    apiServer: { url: \"https://10.0.0.3:6443\", caFile: secrets/ca.crt }
    remoteSecret: { tokenFile: secrets/east-2.token }
services:
  - name: hello
    namespace: sample
    ports: [{ name: http, port: 5000 }]
destinationRules:
  - name: hello
    host: hello
    trafficPolicy:
      loadBalancer:
        localityLbSetting:
          enabled: true
          distribute:
            - from: us-east1/*
              to: { \"us-east1/*\": 80, \"us-west1/*\": 20 }
      outlierDetection: { consecutive5xxErrors: 5, interval: 1s, baseEjectionTime: 1m }
";

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.reader-token-of-the-cluster-that-must-never-be-printed";

fn mesh() -> Env {
    let env = Env::new(MESH);
    std::fs::create_dir_all(env.path("secrets")).expect("mkdir");
    let ca = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/primary-remote/secrets/cluster2-ca.crt"
    ))
    .expect("example CA");
    std::fs::write(env.path("secrets/ca.crt"), ca).expect("write CA");
    for c in ["east-1", "west-1", "east-2"] {
        std::fs::write(
            env.path(&format!("secrets/{c}.token")),
            format!("{TOKEN}-{c}"),
        )
        .expect("write token");
    }
    env
}

fn built() -> Env {
    let env = mesh();
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env
}

fn write(env: &Env, rel: &str, text: &str) {
    std::fs::write(env.path(rel), text).expect("write");
}

fn json(out: &std::process::Output) -> Vec<Value> {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// (cluster, kind, namespace/name, change) of every JSON entry.
fn summary(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {}/{} {}",
                e["cluster"].as_str().unwrap_or_default(),
                e["kind"].as_str().unwrap_or_default(),
                e["namespace"].as_str().unwrap_or("-"),
                e["name"].as_str().unwrap_or_default(),
                e["change"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

const REWEIGHTED: (&str, &str) = (
    "{ \"us-east1/*\": 80, \"us-west1/*\": 20 }",
    "{ \"us-east1/*\": 70, \"us-west1/*\": 30 }",
);

#[test]
fn an_unchanged_tree_diffs_to_nothing_in_every_format() {
    let env = built();
    for (format, expected) in [
        ("human", ""),
        ("brief", ""),
        ("json", "[]\n"),
        (
            "markdown",
            "### meshc diff\n\nNo changes to the generated manifests.\n",
        ),
    ] {
        let out = env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", format]);
        assert_eq!(code(&out), 0, "{format}: {}", stderr(&out));
        assert_eq!(stdout(&out), expected, "{format}");
    }
}

#[test]
fn a_weight_change_is_one_destination_rule_per_config_cluster() {
    let env = built();
    write(&env, "old.yaml", MESH);
    write(
        &env,
        "topology.yaml",
        &MESH.replace(REWEIGHTED.0, REWEIGHTED.1),
    );
    let against_out = env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", "json"]);
    assert_eq!(code(&against_out), 1, "{}", stderr(&against_out));
    let entries = json(&against_out);
    assert_eq!(
        summary(&entries),
        [
            "east-1 DestinationRule sample/hello changed",
            "west-1 DestinationRule sample/hello changed"
        ]
    );
    for e in &entries {
        assert_eq!(e["apiVersion"], "networking.istio.io/v1");
        assert_eq!(e["file"], "istio/destinationrule-sample-hello.yaml");
        let prefix = "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to";
        assert_eq!(
            e["paths"],
            serde_json::json!([
                format!("{prefix}[\"us-east1/*\"]"),
                format!("{prefix}[\"us-west1/*\"]")
            ])
        );
    }
    // Two topologies, no tree needed: the same answer.
    let from = env.meshc(&[
        "diff",
        "--from",
        "old.yaml",
        "topology.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(code(&from), 1, "{}", stderr(&from));
    assert_eq!(stdout(&from), stdout(&against_out));

    let human = env.meshc(&["diff", "--from", "old.yaml", "topology.yaml"]);
    assert_eq!(code(&human), 1);
    let text = stdout(&human);
    for line in [
        "east-1:\n  ~ DestinationRule sample/hello (networking.istio.io/v1, istio/destinationrule-sample-hello.yaml)\n",
        "    -            us-east1/*: 80\n    -            us-west1/*: 20\n    +            us-east1/*: 70\n    +            us-west1/*: 30\n",
        "\n0 added, 2 changed, 0 removed in 2 clusters\n",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    assert!(!text.contains('\x1b'), "colour without a terminal:\n{text}");

    let brief = env.meshc(&[
        "diff",
        "--from",
        "old.yaml",
        "topology.yaml",
        "--format",
        "brief",
    ]);
    assert_eq!(code(&brief), 1);
    assert_eq!(
        stdout(&brief),
        "east-1: 0 added, 1 changed, 0 removed\nwest-1: 0 added, 1 changed, 0 removed\ntotal: 0 added, 2 changed, 0 removed\n"
    );

    let md = env.meshc(&[
        "diff",
        "--from",
        "old.yaml",
        "topology.yaml",
        "--format",
        "markdown",
    ]);
    assert_eq!(code(&md), 1);
    let md = stdout(&md);
    assert!(
        md.starts_with("### meshc diff\n\n| cluster | added | changed | removed |\n|---|---:|---:|---:|\n| `east-1` | 0 | 1 | 0 |\n| `west-1` | 0 | 1 | 0 |\n| **total** | 0 | 2 | 0 |\n"),
        "{md}"
    );
    assert_eq!(md.matches("<details><summary>").count(), 2, "{md}");
    assert_eq!(md.matches("</details>").count(), 2, "{md}");
    assert!(md.contains("<details><summary><code>east-1</code>: 0 added, 1 changed, 0 removed</summary>\n\n**~ `DestinationRule sample/hello`** networking.istio.io/v1, istio/destinationrule-sample-hello.yaml\n\n```diff\n@@ "), "{md}");
    assert!(md.contains("\n+            us-east1/*: 70\n"), "{md}");
}

#[test]
fn a_rotated_intermediate_shows_certificate_metadata_and_no_key_material() {
    let env = built();
    let out = env.meshc(&["pki", "rotate", "topology.yaml", "--cluster", "east-2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let entries = json(&out);
    assert_eq!(
        summary(&entries),
        ["east-2 Secret istio-system/cacerts changed"]
    );
    assert_eq!(
        entries[0]["paths"],
        serde_json::json!([
            "data[\"ca-cert.pem\"]",
            "data[\"ca-key.pem\"]",
            "data[\"cert-chain.pem\"]"
        ])
    );

    let human = env.meshc(&["diff", "topology.yaml", "-o", "out"]);
    let text = stdout(&human);
    assert!(
        text.contains("    # changed keys: ca-cert.pem, ca-key.pem, cert-chain.pem\n"),
        "{text}"
    );
    assert!(
        text.contains("\n    -  ca-key.pem: (private key)\n"),
        "{text}"
    );
    assert!(
        text.contains("\n    +  ca-key.pem: (private key) (changed)\n"),
        "{text}"
    );
    for field in ["serial", "sha256"] {
        // The intermediate (in ca-cert.pem and first in cert-chain.pem) changed; the root did not.
        assert_eq!(
            text.matches(&format!("    -    {field}: ")).count(),
            2,
            "{field} in\n{text}"
        );
        assert_eq!(
            text.matches(&format!("    +    {field}: ")).count(),
            2,
            "{field} in\n{text}"
        );
    }
    // notAfter is shown (as a change, or as context when the rotation fell in the same second).
    assert!(text.contains("    notAfter: \""), "{text}");
    // Subject, issuer and SANs did not change: they are context, not changes.
    assert!(
        text.contains("         subject: O=Istio, CN=Intermediate CA, L=east-2\n"),
        "{text}"
    );
    assert!(
        text.contains("         issuer: O=Istio, CN=Root CA\n"),
        "{text}"
    );
    assert!(
        text.contains("         - DNS:istiod.istio-system.svc\n"),
        "{text}"
    );
    for format in ["brief", "markdown"] {
        let out = env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", format]);
        assert_eq!(code(&out), 1, "{format}");
    }
    let md = stdout(&env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", "markdown"]));
    assert!(
        md.contains("+  ca-key.pem: (private key) (changed)\n"),
        "{md}"
    );
}

#[test]
fn a_new_token_is_reported_changed_and_never_shown() {
    let env = built();
    write(
        &env,
        "secrets/east-2.token",
        "a-completely-new-reader-token-value",
    );
    let out = env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        summary(&json(&out)),
        [
            "east-1 Secret istio-system/istio-remote-secret-east-2 changed",
            "west-1 Secret istio-system/istio-remote-secret-east-2 changed"
        ]
    );
    assert_eq!(
        json(&out)[0]["paths"],
        serde_json::json!(["stringData.east-2"])
    );
    let text = stdout(&env.meshc(&["diff", "topology.yaml", "-o", "out"]));
    assert!(!text.contains("a-completely-new"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("    # changed keys: east-2\n"), "{text}");
    assert!(
        text.contains("    -      user: (credentials)\n    +      user: (credentials, changed)\n"),
        "{text}"
    );
}

#[test]
fn a_removed_cluster_is_listed_whole_and_an_added_one_pends_its_key_material() {
    let env = built();
    let without_west = MESH.replace(
        "  - name: west-1\n    network: net1\n    region: us-west1\n    controlPlane: primary\n    apiServer: { url: \"https://10.0.0.2:6443\", caFile: secrets/ca.crt }\n    remoteSecret: { tokenFile: secrets/west-1.token }\n",
        "",
    );
    let without_west = without_west.replace(
        "{ \"us-east1/*\": 80, \"us-west1/*\": 20 }",
        "{ \"us-east1/*\": 100 }",
    );
    assert_ne!(without_west, MESH);
    write(&env, "smaller.yaml", &without_west);
    let out = env.meshc(&[
        "diff",
        "--from",
        "topology.yaml",
        "smaller.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let entries = json(&out);
    let lines = summary(&entries);
    // Every object of west-1 is removed; the others lose what pointed at west-1.
    assert!(
        lines.contains(&"west-1 Secret istio-system/cacerts removed".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"west-1 DestinationRule sample/hello removed".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines
            .contains(&"east-1 Secret istio-system/istio-remote-secret-west-1 removed".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("west-1 ") && l.ends_with(" removed")
                || l.starts_with("east-1 ")
                || l.starts_with("east-2 ")
                || l == "(top level) File -/README.md changed"),
        "{lines:#?}"
    );
    // The tree-level index no longer lists west-1: a file of the whole tree, not of a cluster.
    assert!(
        lines.contains(&"(top level) File -/README.md changed".to_string()),
        "{lines:#?}"
    );
    let human = stdout(&env.meshc(&["diff", "--from", "topology.yaml", "smaller.yaml"]));
    // A removed remote secret is listed whole: its server, the API server's CA described,
    // the credentials hidden.
    let secret = human
        .split("  - Secret istio-system/istio-remote-secret-west-1 (v1, remote-secrets.yaml)\n")
        .nth(1)
        .expect("the remote secret is listed");
    for line in [
        "    -        certificate-authority-data:\n    -          subject: CN=kubernetes\n",
        "    -        server: https://10.0.0.2:6443\n",
        "    -      user: (credentials)\n",
    ] {
        assert!(secret.contains(line), "{line:?} not in\n{secret}");
    }
    assert!(!human.contains(TOKEN), "{human}");
    assert!(human.contains("  - DestinationRule sample/hello (networking.istio.io/v1, istio/destinationrule-sample-hello.yaml)\n    -apiVersion: networking.istio.io/v1\n"), "{human}");

    // The other way: west-1 is added, and its key material is not in the store yet. The diff
    // says so and makes none (nothing is written to the store or anywhere).
    std::fs::remove_dir_all(env.path("pki/mesh1/west-1")).expect("rm");
    let before = files_under(&env.path("pki"));
    let out = env.meshc(&["diff", "--from", "smaller.yaml", "topology.yaml"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("  + Secret istio-system/cacerts (v1, cacerts.yaml)\n    # new key material: not in the PKI store yet; `meshc build` creates it (contents not shown)\n"), "{text}");
    assert_eq!(files_under(&env.path("pki")), before);
    // Against the tree: the cacerts west-1 has would be replaced by new material.
    let out = env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", "json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        summary(&json(&out)),
        ["west-1 Secret istio-system/cacerts changed"]
    );
}

#[test]
fn diff_writes_nothing() {
    let env = mesh();
    let out = env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", "brief"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stdout(&out).contains("east-1: "), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(" added, 0 changed, 0 removed\n"),
        "{}",
        stdout(&out)
    );
    assert!(!env.path("out").exists());
    assert!(!env.path("pki").exists());
}

/// Every mapping's keys in reverse order, everywhere in the document.
fn reversed(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .rev()
                .map(|(k, v)| (k.clone(), reversed(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(reversed).collect()),
        other => other.clone(),
    }
}

#[test]
fn the_order_of_fields_in_the_topology_is_never_a_difference() {
    let env = built();
    let doc: Value = serde_saphyr::from_str(MESH).expect("parses");
    let text = serde_saphyr::to_string(&reversed(&doc)).expect("writes");
    assert!(text.starts_with("destinationRules:"), "{text}");
    write(&env, "reordered.yaml", &text);
    for args in [
        ["diff", "--from", "topology.yaml", "reordered.yaml"],
        ["diff", "reordered.yaml", "-o", "out"],
    ] {
        let out = env.meshc(&args);
        assert_eq!(code(&out), 0, "{args:?}: {}{}", stdout(&out), stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        let mut json = args.to_vec();
        json.extend(["--format", "json"]);
        assert_eq!(stdout(&env.meshc(&json)), "[]\n", "{args:?}");
    }
    // And the build agrees: nothing to rewrite.
    let out = env.meshc(&["build", "reordered.yaml", "-o", "out", "--check"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn exit_codes() {
    let env = built();
    // 2: the new topology, or the old one, is invalid; diagnostics name the file.
    write(
        &env,
        "bad.yaml",
        &MESH.replace(
            "network: net1\n    region: us-west1",
            "network: net9\n    region: us-west1",
        ),
    );
    let out = env.meshc(&["diff", "bad.yaml", "-o", "out"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("E012"), "{}", stderr(&out));
    assert!(stderr(&out).contains("bad.yaml:"), "{}", stderr(&out));
    let out = env.meshc(&["diff", "--from", "bad.yaml", "topology.yaml"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("bad.yaml:"), "{}", stderr(&out));
    // 2: usage: neither or both of -o and --from.
    assert_eq!(code(&env.meshc(&["diff", "topology.yaml"])), 2);
    assert_eq!(
        code(&env.meshc(&[
            "diff",
            "topology.yaml",
            "-o",
            "out",
            "--from",
            "topology.yaml"
        ])),
        2
    );
    // 3: an old topology that cannot be read; a damaged manifest; a damaged store.
    let out = env.meshc(&["diff", "--from", "missing.yaml", "topology.yaml"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    std::fs::write(env.path("out/.meshc/manifest.json"), "{").expect("damage");
    let out = env.meshc(&["diff", "topology.yaml", "-o", "out"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("manifest.json is damaged"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        env.path("pki/mesh1/east-1/ca-cert.pem"),
        "-----BEGIN CERTIFICATE-----\n",
    )
    .expect("damage");
    let out = env.meshc(&["diff", "--from", "topology.yaml", "topology.yaml"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
}

#[test]
fn warnings_of_the_old_topology_are_not_repeated() {
    let env = built();
    std::fs::remove_file(env.path("secrets/east-2.token")).expect("rm");
    write(&env, "old.yaml", MESH);
    let out = env.meshc(&[
        "diff",
        "--from",
        "old.yaml",
        "topology.yaml",
        "--format",
        "brief",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Both sides lack the token (the old one is read in the new one's place): one warning.
    assert_eq!(stderr(&out).matches("W080").count(), 1, "{}", stderr(&out));
}

#[test]
fn build_check_prints_the_brief_diff() {
    let env = built();
    let path = env.path("out/east-1/istio/destinationrule-sample-hello.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replace(": 80", ": 75").replace(": 20", ": 25")).expect("edit");
    let out = env.meshc(&["build", "topology.yaml", "-o", "out", "--check"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("east-1: 0 added, 1 changed, 0 removed\nout: stale: run `meshc build` and commit the result\n"),
        "{}",
        stderr(&out)
    );
    // A hand edit that changes no object (fields reordered) still makes the tree stale.
    let doc: Value = serde_saphyr::from_str(&text).expect("parses");
    std::fs::write(
        &path,
        serde_saphyr::to_string(&reversed(&doc)).expect("writes"),
    )
    .expect("edit");
    let out = env.meshc(&["build", "topology.yaml", "-o", "out", "--check"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("1 file rewritten without a change to any object (moved or reordered): east-1/istio/destinationrule-sample-hello.yaml\n"),
        "{}",
        stderr(&out)
    );
    // diff, which compares objects, finds nothing to review.
    let out = env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", "json"]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out), "[]\n");
}

#[test]
fn the_readme_ci_recipe_checks_the_tree_and_posts_the_markdown_diff() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("## Review in pull requests\n")
        .nth(1)
        .expect("the section");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .expect("a yaml block");
    let job: Value = serde_saphyr::from_str(yaml).expect("the recipe is YAML");
    let runs: Vec<&str> = job["jobs"]["review"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    let all = runs.join("\n");
    assert!(
        all.contains("meshc build topology.yaml -o out/ --check --locked"),
        "{all}"
    );
    assert!(all.contains("meshc diff --from"), "{all}");
    assert!(all.contains("--format markdown"), "{all}");
    assert!(all.contains("gh pr comment"), "{all}");
    assert_eq!(
        job["jobs"]["review"]["permissions"]["pull-requests"],
        "write"
    );
}
