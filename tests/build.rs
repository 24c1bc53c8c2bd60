//! `meshc build` on every example, through the real binary: the whole tree as a reviewable
//! snapshot, and the facts a multi-cluster mesh depends on, read back from the YAML written.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{Env, TOPOLOGY, code, files_under, stderr, stdout, test_topologies};
use serde_json::{Value, json};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo("examples"))
        .expect("examples/")
        .flatten()
        .filter(|e| e.path().join("topology.yaml").exists())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// An example built into a temporary directory (its own store there too).
struct Built {
    dir: tempfile::TempDir,
    topology: Value,
}

impl Built {
    fn new(example: &str) -> Built {
        Built::file(&format!("examples/{example}/topology.yaml"))
    }

    /// Any topology file, relative to the crate.
    fn file(rel: &str) -> Built {
        let example = rel;
        let dir = tempfile::tempdir().expect("tempdir");
        let topology = repo(rel);
        let out = Command::cargo_bin("meshc")
            .expect("binary")
            .arg("build")
            .arg(&topology)
            .arg("-o")
            .arg(dir.path().join("out"))
            .arg("--pki")
            .arg(dir.path().join("pki"))
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let topology: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&topology).expect("read"))
                .expect("topology parses");
        Built { dir, topology }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn clusters(&self) -> Vec<Value> {
        self.topology["clusters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn cluster(&self, name: &str) -> Value {
        self.clusters()
            .into_iter()
            .find(|c| c["name"] == name)
            .expect("cluster in topology")
    }

    fn exists(&self, rel: &str) -> bool {
        self.out().join(rel).exists()
    }

    /// Every document of a written YAML file.
    fn docs(&self, rel: &str) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.out().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn doc(&self, rel: &str) -> Value {
        self.docs(rel).into_iter().next().expect("one document")
    }

    fn find(&self, rel: &str, kind: &str, name: &str) -> Option<Value> {
        self.docs(rel)
            .into_iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    }
}

/// The tree as one text: each file under a header. Key material differs from run to run, so
/// `cacerts.yaml` data values are replaced by what they hold, and the manifest by its paths.
fn tree_text(out: &Path) -> String {
    let mut text = String::new();
    for rel in files_under(out) {
        let body = std::fs::read_to_string(out.join(&rel)).expect("utf-8");
        let body = if rel.ends_with("/cacerts.yaml") {
            redact_cacerts(&body)
        } else if rel == ".meshc/manifest.json" {
            let manifest: Value = serde_json::from_str(&body).expect("json");
            let mut paths = String::new();
            for f in manifest["files"].as_array().expect("files") {
                paths.push_str(f["path"].as_str().unwrap_or("?"));
                paths.push('\n');
            }
            paths
        } else {
            body
        };
        text.push_str("===== ");
        text.push_str(&rel);
        text.push('\n');
        text.push_str(&body);
    }
    text
}

fn redact_cacerts(body: &str) -> String {
    body.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            match trimmed.split_once(": \"") {
                Some((key, value))
                    if value.len() > 40
                        && matches!(
                            key,
                            "ca-cert.pem" | "ca-key.pem" | "cert-chain.pem" | "root-cert.pem"
                        ) =>
                {
                    let pem = base64_decode(value.trim_end_matches('"'));
                    let blocks = pem.matches("-----BEGIN ").count();
                    let label = if pem.contains("PRIVATE KEY") {
                        "private key"
                    } else {
                        "certificates"
                    };
                    format!("  {key}: <{blocks} PEM block(s): {label}>")
                }
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn base64_decode(s: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("base64"),
    )
    .expect("PEM is text")
}

#[test]
fn every_example_tree_matches_its_snapshot() {
    for example in examples() {
        let built = Built::new(&example);
        insta::assert_snapshot!(format!("tree-{example}"), tree_text(&built.out()));
    }
}

#[test]
fn every_cluster_directory_renders_with_kustomize() {
    let kubectl = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    assert!(
        kubectl.is_ok_and(|o| o.status.success()),
        "kubectl is needed (`.ci/run` installs Debian's kubernetes-client when it is missing)"
    );
    let files = examples()
        .into_iter()
        .map(|e| format!("examples/{e}/topology.yaml"))
        .chain(test_topologies());
    for example in files {
        let built = Built::file(&example);
        for cluster in built.clusters() {
            let name = cluster["name"].as_str().expect("name");
            let dir = built.out().join(name);
            let out = std::process::Command::new("kubectl")
                .arg("kustomize")
                .arg(&dir)
                .output()
                .expect("kubectl runs");
            assert!(
                out.status.success(),
                "{example}/{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Everything listed is applied: the rendered stream holds every listed file's
            // objects, each with its namespace set where it has one.
            let rendered: Vec<Value> =
                serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).expect("yaml");
            let listed = built.doc(&format!("{name}/kustomization.yaml"))["resources"]
                .as_array()
                .expect("resources")
                .len();
            assert!(rendered.len() >= listed, "{example}/{name}");
            // Every namespace an object is in is created by the same directory.
            let namespaces: Vec<&Value> = rendered
                .iter()
                .filter(|d| d["kind"] == "Namespace")
                .map(|d| &d["metadata"]["name"])
                .collect();
            for doc in &rendered {
                let kind = doc["kind"].as_str().unwrap_or_default();
                if kind != "Namespace" {
                    assert!(
                        namespaces.contains(&&doc["metadata"]["namespace"]),
                        "{example}/{name}: {kind} {} is in a namespace the directory does not create",
                        doc["metadata"]["name"]
                    );
                    assert!(
                        doc["metadata"]["namespace"].is_string(),
                        "{example}/{name}: {kind} {} has no namespace",
                        doc["metadata"]["name"]
                    );
                }
                assert_eq!(
                    doc["metadata"]["labels"]["app.kubernetes.io/managed-by"], "meshc",
                    "{example}/{name}: {kind}"
                );
            }
        }
    }
}

#[test]
fn the_network_is_the_same_everywhere_a_cluster_names_it() {
    for example in examples() {
        let built = Built::new(&example);
        for cluster in built.clusters() {
            let name = cluster["name"].as_str().expect("name");
            let network = &cluster["network"];
            let ns = built
                .find(
                    &format!("{name}/namespaces.yaml"),
                    "Namespace",
                    "istio-system",
                )
                .expect("istio-system namespace");
            assert_eq!(
                &ns["metadata"]["labels"]["topology.istio.io/network"], network,
                "{example}/{name}"
            );
            let helm = format!("{name}/install/helm/istiod.values.yaml");
            let iop = format!("{name}/install/istioctl/controlplane.yaml");
            let sail = format!("{name}/install/sail/istio.yaml");
            assert!(
                built.exists(&helm) || built.exists(&iop) || built.exists(&sail),
                "{example}/{name}"
            );
            let mut globals = Vec::new();
            // A remote's istiod chart renders nothing that reads them (no istiod, mesh or
            // injector ConfigMap): they are left out there.
            let primary = cluster["controlPlane"] != "remote";
            if built.exists(&helm) && primary {
                globals.push(built.doc(&helm)["global"].clone());
            }
            if built.exists(&iop) {
                globals.push(built.doc(&iop)["spec"]["values"]["global"].clone());
            }
            if built.exists(&sail) && primary {
                globals.push(built.doc(&sail)["spec"]["values"]["global"].clone());
            }
            for global in globals {
                assert_eq!(&global["network"], network, "{example}/{name}");
                assert_eq!(global["multiCluster"]["clusterName"], *name);
                assert_eq!(global["meshID"], built.topology["meshes"][0]["name"]);
            }
            let gateway = format!("{name}/install/helm/eastwestgateway.values.yaml");
            if built.exists(&gateway) {
                let values = built.doc(&gateway);
                assert_eq!(values["name"], "istio-eastwestgateway");
                if !values["networkGateway"].is_null() {
                    assert_eq!(&values["networkGateway"], network, "{example}/{name}");
                }
            }
            let iop = format!("{name}/install/istioctl/eastwest.yaml");
            if built.exists(&iop) {
                let doc = built.doc(&iop);
                let gw = &doc["spec"]["components"]["ingressGateways"][0];
                assert_eq!(gw["label"]["istio"], "eastwestgateway");
                if !gw["label"]["topology.istio.io/network"].is_null() {
                    assert_eq!(&gw["label"]["topology.istio.io/network"], network);
                    assert_eq!(&doc["spec"]["values"]["global"]["network"], network);
                }
            }
        }
    }
}

#[test]
fn remotes_reach_their_primary_through_its_east_west_address() {
    let mut remotes = 0;
    for example in examples() {
        let built = Built::new(&example);
        for cluster in built.clusters() {
            if cluster["controlPlane"] != "remote" {
                continue;
            }
            remotes += 1;
            let name = cluster["name"].as_str().expect("name");
            let primary_name = cluster["primary"].as_str().expect("primary");
            let primary = built.cluster(primary_name);
            let address = &primary["eastWestGateway"]["address"];
            let path = format!(
                "/inject/cluster/{name}/net/{}",
                cluster["network"].as_str().expect("network")
            );
            // An IP address: the chart's Service for istiod maps the webhook port 443 to
            // 15017 through an EndpointSlice, so a path is enough. A DNS name becomes an
            // ExternalName Service, which would send the webhook to the gateway's 443: the
            // webhook dials 15017 by URL instead, and the primary's istiod certifies the name.
            let host = address.as_str().expect("address");
            let by_name = host.parse::<std::net::IpAddr>().is_err();
            let url = format!("https://{host}:15017{path}");
            let check_remote = |values: &Value| {
                assert_eq!(
                    &values["global"]["remotePilotAddress"], address,
                    "{example}/{name}"
                );
                if by_name {
                    assert_eq!(values["istiodRemote"]["injectionURL"], url.as_str());
                    assert_eq!(values["istiodRemote"]["injectionPath"], Value::Null);
                    assert_eq!(
                        values["base"]["validationURL"],
                        format!("https://{host}:15017/validate").as_str()
                    );
                } else {
                    assert_eq!(values["istiodRemote"]["injectionPath"], path.as_str());
                    assert_eq!(values["istiodRemote"]["injectionURL"], Value::Null);
                }
            };
            let helm = format!("{name}/install/helm/istiod.values.yaml");
            if built.exists(&helm) {
                let mut istiod = built.doc(&helm);
                assert_eq!(istiod["profile"], "remote");
                istiod["base"] =
                    built.doc(&format!("{name}/install/helm/base.values.yaml"))["base"].clone();
                check_remote(&istiod);
                let primary_istiod =
                    built.doc(&format!("{primary_name}/install/helm/istiod.values.yaml"));
                assert_eq!(
                    primary_istiod["env"]["ISTIOD_CUSTOM_HOST"].as_str(),
                    by_name.then_some(host),
                    "{example}/{primary_name}"
                );
            }
            let iop = format!("{name}/install/istioctl/controlplane.yaml");
            if built.exists(&iop) {
                let spec = built.doc(&iop)["spec"].clone();
                assert_eq!(spec["profile"], "remote");
                check_remote(&spec["values"]);
            }
            let sail = format!("{name}/install/sail/istio.yaml");
            if built.exists(&sail) {
                let spec = built.doc(&sail)["spec"].clone();
                assert_eq!(spec["profile"], "remote");
                check_remote(&spec["values"]);
            }
            let ns = built
                .find(
                    &format!("{name}/namespaces.yaml"),
                    "Namespace",
                    "istio-system",
                )
                .expect("istio-system");
            assert_eq!(
                ns["metadata"]["annotations"]["topology.istio.io/controlPlaneClusters"],
                primary_name
            );
            // Configuration lives on the primary, never on a remote.
            assert!(
                !built.exists(&format!("{name}/istio")),
                "{example}/{name} has istio/"
            );
            assert!(!built.exists(&format!("{name}/expose-istiod.yaml")));
            // The primary serves it: externalIstiod, and istiod exposed on its gateway.
            let helm = format!("{primary_name}/install/helm/istiod.values.yaml");
            if built.exists(&helm) {
                let p = built.doc(&helm);
                assert_eq!(
                    p["global"]["externalIstiod"], true,
                    "{example}/{primary_name}"
                );
            }
            let iop = format!("{primary_name}/install/istioctl/controlplane.yaml");
            if built.exists(&iop) {
                let env = &built.doc(&iop)["spec"]["values"]["pilot"]["env"];
                assert_eq!(env["EXTERNAL_ISTIOD"], "true", "{example}/{primary_name}");
            }
            let sail = format!("{primary_name}/install/sail/istio.yaml");
            if built.exists(&sail) {
                let values = &built.doc(&sail)["spec"]["values"];
                assert_eq!(values["pilot"]["env"]["EXTERNAL_ISTIOD"], "true");
            }
            // A Gateway API east-west gateway passes istiod through with TLSRoutes.
            if let Some(route) = built.find(
                &format!("{primary_name}/expose-istiod.yaml"),
                "TLSRoute",
                "istiod-xds",
            ) {
                assert_eq!(route["spec"]["parentRefs"][0]["sectionName"], "tls-istiod");
                assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["port"], 15012);
                let webhook = built
                    .find(
                        &format!("{primary_name}/expose-istiod.yaml"),
                        "TLSRoute",
                        "istiod-webhook",
                    )
                    .expect("istiod-webhook");
                assert_eq!(webhook["spec"]["rules"][0]["backendRefs"][0]["port"], 443);
                let gw = built
                    .find(
                        &format!("{primary_name}/eastwest-gateway.yaml"),
                        "Gateway",
                        "istio-eastwestgateway",
                    )
                    .expect("east-west Gateway");
                let ports: Vec<&Value> = gw["spec"]["listeners"]
                    .as_array()
                    .expect("listeners")
                    .iter()
                    .map(|l| &l["port"])
                    .collect();
                assert!(ports.contains(&&json!(15012)) && ports.contains(&&json!(15017)));
                continue;
            }
            let gw = built
                .find(
                    &format!("{primary_name}/expose-istiod.yaml"),
                    "Gateway",
                    "istiod-gateway",
                )
                .expect("istiod-gateway");
            let ports: Vec<&Value> = gw["spec"]["servers"]
                .as_array()
                .expect("servers")
                .iter()
                .map(|s| &s["port"]["number"])
                .collect();
            assert_eq!(ports, [15012, 15017]);
            assert_eq!(gw["spec"]["servers"][0]["tls"]["mode"], "PASSTHROUGH");
        }
    }
    assert!(remotes >= 3, "the examples cover primary-remote and hybrid");
}

#[test]
fn primaries_hold_a_remote_secret_for_every_peer_with_a_token() {
    let mut secrets = 0;
    for example in examples() {
        let built = Built::new(&example);
        let solo = built.topology["meshes"][0]["istio"]["distribution"] == "solo";
        let clusters = built.clusters();
        for cluster in clusters.iter().filter(|c| c["controlPlane"] == "primary") {
            let name = cluster["name"].as_str().expect("name");
            let file = format!("{name}/remote-secrets.yaml");
            for peer in clusters.iter().filter(|c| c["name"] != cluster["name"]) {
                let peer_name = peer["name"].as_str().expect("name");
                let secret_name = format!("istio-remote-secret-{peer_name}");
                let has_token = peer["remoteSecret"]["tokenFile"].is_string();
                let found = built
                    .exists(&file)
                    .then(|| built.find(&file, "Secret", &secret_name))
                    .flatten();
                if solo || !has_token {
                    assert!(found.is_none(), "{example}/{name}: {secret_name}");
                    continue;
                }
                let secret = found.unwrap_or_else(|| panic!("{example}/{name}: no {secret_name}"));
                secrets += 1;
                assert_eq!(secret["metadata"]["namespace"], "istio-system");
                assert_eq!(secret["metadata"]["labels"]["istio/multiCluster"], "true");
                assert_eq!(
                    secret["metadata"]["annotations"]["networking.istio.io/cluster"],
                    peer_name
                );
                let data = secret["stringData"].as_object().expect("stringData");
                assert_eq!(data.keys().collect::<Vec<_>>(), [peer_name]);
                let kubeconfig: Value =
                    serde_saphyr::from_str(data[peer_name].as_str().expect("text"))
                        .expect("kubeconfig");
                assert_eq!(kubeconfig["current-context"], peer_name);
                assert_eq!(kubeconfig["clusters"][0]["name"], peer_name);
                assert_eq!(kubeconfig["contexts"][0]["context"]["user"], peer_name);
                assert_eq!(kubeconfig["users"][0]["name"], peer_name);
                assert_eq!(
                    kubeconfig["clusters"][0]["cluster"]["server"],
                    peer["apiServer"]["url"]
                );
                let token_file = repo(&format!(
                    "examples/{example}/{}",
                    peer["remoteSecret"]["tokenFile"].as_str().expect("path")
                ));
                let token = std::fs::read_to_string(token_file).expect("token");
                assert_eq!(kubeconfig["users"][0]["user"]["token"], token.trim());
                // The API server's CA, so istiod can verify it.
                let ca_file = repo(&format!(
                    "examples/{example}/{}",
                    peer["apiServer"]["caFile"]
                        .as_str()
                        .expect("every example names the CA")
                ));
                let ca = std::fs::read(ca_file).expect("ca");
                assert_eq!(
                    kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"],
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca)
                );
            }
        }
    }
    assert!(secrets >= 4, "the examples carry remote secrets");
}

#[test]
fn destination_rules_and_istio_config_land_on_primaries_only() {
    for example in examples() {
        let built = Built::new(&example);
        let rules = built.topology["destinationRules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for cluster in built.clusters() {
            let name = cluster["name"].as_str().expect("name");
            let istio = built.out().join(name).join("istio");
            if cluster["controlPlane"] == "remote" {
                assert!(!istio.exists(), "{example}/{name}");
                continue;
            }
            for rule in rules.iter().filter(|r| {
                r["clusters"]
                    .as_array()
                    .is_none_or(|c| c.is_empty() || c.contains(&cluster["name"]))
            }) {
                let found = files_under(&istio).into_iter().any(|f| {
                    f.starts_with("destinationrule-")
                        && f.ends_with(&format!(
                            "-{}.yaml",
                            rule["name"].as_str().unwrap_or_default()
                        ))
                });
                assert!(found, "{example}/{name}: DestinationRule {}", rule["name"]);
            }
        }
    }
}

#[test]
fn namespaces_are_labelled_for_the_data_plane() {
    let built = Built::new("openshift-primary-remote");
    for cluster in ["ocp-east", "ocp-west"] {
        let ns = built
            .find(
                &format!("{cluster}/namespaces.yaml"),
                "Namespace",
                "bookinfo",
            )
            .expect("bookinfo namespace on every cluster");
        assert_eq!(ns["metadata"]["labels"]["istio-injection"], "enabled");
        // OpenShift: the platform profile (istio-cni through multus) everywhere.
        let istiod = built.doc(&format!("{cluster}/install/helm/istiod.values.yaml"));
        assert_eq!(istiod["global"]["platform"], "openshift");
        let cni = built.doc(&format!("{cluster}/install/helm/cni.values.yaml"));
        assert_eq!(cni["global"]["platform"], "openshift");
        let gw = built.doc(&format!(
            "{cluster}/install/helm/bookinfo-ingressgateway.values.yaml"
        ));
        assert_eq!(gw["name"], "bookinfo-ingressgateway");
    }
    let pa = built.doc("ocp-east/istio/peerauthentication-istio-system-default.yaml");
    assert_eq!(pa["spec"]["mtls"]["mode"], "STRICT");
    assert!(!built.exists("ocp-west/istio"));
}

/// `services[].callers`: a service with callers is written, with its namespace, only where it
/// runs or is called from; one without is written everywhere. Each cluster of this topology
/// holds a different set, so a services.yaml rendered for one cluster and reused for another
/// would show here.
#[test]
fn services_with_callers_are_written_only_where_they_run_or_are_called() {
    let built = Built::file("tests/data/topologies/callers.yaml");
    let expected: [(&str, &[&str], &[&str]); 4] = [
        (
            "east-1",
            &[
                "bookinfo/reviews",
                "bookinfo/productpage",
                "ratings/ratings",
            ],
            &["bookinfo", "istio-system", "ratings"],
        ),
        (
            "east-2",
            &[
                "bookinfo/reviews",
                "bookinfo/productpage",
                "details/details",
            ],
            &["bookinfo", "details", "istio-system"],
        ),
        (
            "west-1",
            &["bookinfo/reviews", "bookinfo/productpage"],
            &["bookinfo", "istio-system"],
        ),
        (
            "west-2",
            &["bookinfo/productpage"],
            &["bookinfo", "istio-system"],
        ),
    ];
    for (cluster, services, namespaces) in expected {
        let written: Vec<String> = built
            .docs(&format!("{cluster}/services.yaml"))
            .iter()
            .map(|d| {
                assert_eq!(d["kind"], "Service", "{cluster}");
                format!(
                    "{}/{}",
                    d["metadata"]["namespace"].as_str().unwrap_or_default(),
                    d["metadata"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(written, services, "{cluster}: Services");
        let docs = built.docs(&format!("{cluster}/namespaces.yaml"));
        let mut created: Vec<&str> = docs
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap_or_default())
            .collect();
        created.sort_unstable();
        assert_eq!(created, namespaces, "{cluster}: namespaces");
        for ns in docs
            .iter()
            .filter(|d| d["metadata"]["name"] != "istio-system")
        {
            assert_eq!(
                ns["metadata"]["labels"]["istio-injection"], "enabled",
                "{cluster}: {}",
                ns["metadata"]["name"]
            );
        }
    }
}

#[test]
fn a_revision_names_istiod_and_labels_namespaces() {
    let topology = TOPOLOGY
        .replace("  - name: east\n", "  - name: east\n    istio: { revision: canary }\n")
        .replace("    apiServer: { url: \"https://10.0.0.2:6443\" }\n", "    apiServer: { url: \"https://10.0.0.2:6443\" }\n    remoteSecret: { tokenFile: c2.token }\n")
        + "services:\n  - name: web\n    namespace: shop\n    mesh: east\n    ports: [{ name: http, port: 80 }]\n";
    let env = Env::new(&topology);
    std::fs::write(env.path("c2.token"), "tok\n").expect("token");
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(env.path("out/c1/namespaces.yaml")).expect("namespaces");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("yaml");
    let shop = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "shop")
        .expect("shop");
    assert_eq!(shop["metadata"]["labels"]["istio.io/rev"], "canary");
    assert!(shop["metadata"]["labels"]["istio-injection"].is_null());
    let istiod: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(env.path("out/c1/install/helm/istiod.values.yaml"))
            .expect("values"),
    )
    .expect("yaml");
    assert_eq!(istiod["revision"], "canary");
    let readme = std::fs::read_to_string(env.path("out/c1/README.md")).expect("readme");
    assert!(
        readme.contains("helm upgrade --install \"istiod-canary\" istio/istiod"),
        "{readme}"
    );
}

#[test]
fn a_missing_token_skips_one_secret_with_the_commands_to_fix_it() {
    let env = Env::new(TOPOLOGY);
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("W080").count(),
        2,
        "c1 and c2 watch each other: {err}"
    );
    assert!(
        err.contains(
            "no reader token for c2 (remoteSecret): istio-remote-secret-c2 is not written to c1"
        ),
        "{err}"
    );
    assert!(err.contains("istioctl create-remote-secret --context c2 --name c2 --server https://10.0.0.2:6443 | kubectl --context c1 apply -f -"), "{err}");
    assert!(!env.path("out/c1/remote-secrets.yaml").exists());
    assert!(
        env.path("out/c2/reader-token.yaml").exists(),
        "the token Secret is still written"
    );
    let readme = std::fs::read_to_string(env.path("out/c1/README.md")).expect("readme");
    assert!(
        readme.contains("`istio-remote-secret-c2` is not included"),
        "{readme}"
    );
    // With the token, the secret appears, and only on the primaries that watch c2.
    let topology = TOPOLOGY.replace(
        "    apiServer: { url: \"https://10.0.0.2:6443\" }\n",
        "    apiServer: { url: \"https://10.0.0.2:6443\" }\n    remoteSecret: { tokenFile: tokens/c2 }\n",
    );
    std::fs::write(env.path("topology.yaml"), topology).expect("write");
    std::fs::create_dir_all(env.path("tokens")).expect("mkdir");
    std::fs::write(env.path("tokens/c2"), "secret-token-value\n").expect("token");
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out).matches("W080").count(), 1);
    assert!(
        !stderr(&out).contains("secret-token-value")
            && !stdout(&out).contains("secret-token-value")
    );
    assert!(env.path("out/c1/remote-secrets.yaml").exists());
    assert!(
        !env.path("out/c3/remote-secrets.yaml").exists(),
        "c3 is in another mesh"
    );
}

#[test]
fn two_builds_from_one_store_are_byte_identical() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.meshc(&["build", "topology.yaml", "-o", "a"])), 0);
    assert_eq!(code(&env.meshc(&["build", "topology.yaml", "-o", "b"])), 0);
    let (a, b) = (env.path("a"), env.path("b"));
    let files = files_under(&a);
    assert_eq!(files, files_under(&b));
    for f in &files {
        assert!(
            std::fs::read(a.join(f)).expect("a") == std::fs::read(b.join(f)).expect("b"),
            "{f} differs"
        );
    }
}

#[test]
fn a_template_may_be_overridden_by_name() {
    let env = Env::new(TOPOLOGY);
    std::fs::create_dir_all(env.path("tpl")).expect("mkdir");
    let original = std::fs::read_to_string(repo("templates/namespaces.yaml.j2")).expect("template");
    let changed = original.replace(
        "    topology.istio.io/network: {{ network }}\n",
        "    topology.istio.io/network: {{ network }}\n    team: platform\n",
    );
    std::fs::write(env.path("tpl/namespaces.yaml.j2"), changed).expect("override");
    let out = env.meshc(&["build", "topology.yaml", "-o", "out", "--templates", "tpl"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(env.path("out/c1/namespaces.yaml")).expect("read");
    assert!(text.contains("    team: platform\n"), "{text}");

    // An override that does not render YAML objects stops the build before anything is written.
    std::fs::write(env.path("tpl/services.yaml.j2"), "x: [\n").expect("override");
    let topology = format!(
        "{TOPOLOGY}services:\n  - name: web\n    namespace: shop\n    mesh: east\n    ports: [{{ name: http, port: 80 }}]\n"
    );
    std::fs::write(env.path("topology.yaml"), topology).expect("write");
    let out = env.meshc(&["build", "topology.yaml", "-o", "out2", "--templates", "tpl"]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out)
            .contains("template services.yaml.j2 rendered a document that is not valid YAML"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("out2").exists());
}

#[test]
fn the_plan_is_the_topology_s_roles() {
    // Checked on the library's planning stage directly: no YAML involved.
    let text = std::fs::read_to_string(repo("examples/hybrid/topology.yaml")).expect("read");
    let checked = meshc::compiler::check(meshc::source::Source::new("t.yaml", "t.yaml", text));
    let model = checked.model.expect("model");
    let plans = meshc::plan::plan(&model);
    let by_name: BTreeMap<&str, &meshc::plan::ClusterPlan> =
        plans.iter().map(|p| (p.name.as_str(), p)).collect();
    for p in &plans {
        let cluster = &model.topology.clusters[p.cluster];
        assert_eq!(
            p.primary,
            cluster.control_plane == meshc::topology::ControlPlane::Primary
        );
        if p.primary {
            // Every primary discovers every other cluster of its mesh.
            assert_eq!(
                p.peers.len(),
                model.meshes[p.mesh].clusters.len() - 1,
                "{}",
                p.name
            );
        } else {
            assert!(
                p.peers.is_empty() && p.destination_rules.is_empty() && p.istio_config.is_empty()
            );
            let primary = p.served_by.expect("served");
            assert!(by_name[model.topology.clusters[primary].name.as_str()].serves_remotes);
        }
        assert!(
            p.watched,
            "{}: a multi-primary mesh watches every cluster",
            p.name
        );
    }
}

#[test]
fn a_watched_cluster_without_its_api_server_ca_is_a_warning() {
    let env = Env::new(TOPOLOGY);
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("W081").count(), 2, "c1 and c2: {err}");
    assert!(err.contains("no CA for c2's API server: the kubeconfig in istio-remote-secret-c2 (on c1) trusts only the system's root CAs"), "{err}");
    assert!(err.contains("jsonpath='{.data.ca\\.crt}'"), "{err}");
}

#[test]
fn openshift_with_istioctl_installs_the_cni_and_one_ingress_gateway_entry() {
    let topology = TOPOLOGY
        .replace("  - name: east\n", "  - name: east\n    istio: { installers: [istioctl] }\n")
        .replace("    mesh: east\n    network: net-east\n    controlPlane: primary\n    apiServer: { url: \"https://10.0.0.1:6443\" }\n", "    mesh: east\n    network: net-east\n    controlPlane: primary\n    platform: openshift\n    apiServer: { url: \"https://10.0.0.1:6443\" }\n")
        + "ingressGateways:\n  - name: istio-ingressgateway\n    namespace: istio-ingress\n    mesh: east\n";
    let env = Env::new(&topology);
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let iop: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(env.path("out/c1/install/istioctl/controlplane.yaml"))
            .expect("iop"),
    )
    .expect("yaml");
    assert_eq!(iop["spec"]["components"]["cni"]["enabled"], true);
    assert_eq!(iop["spec"]["values"]["global"]["platform"], "openshift");
    let gateways = iop["spec"]["components"]["ingressGateways"]
        .as_array()
        .expect("gateways");
    assert_eq!(gateways.len(), 1, "{gateways:?}");
    assert_eq!(gateways[0]["enabled"], true);
    // c2 is not on OpenShift: no CNI component there.
    let iop: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(env.path("out/c2/install/istioctl/controlplane.yaml"))
            .expect("iop"),
    )
    .expect("yaml");
    assert!(iop["spec"]["components"]["cni"].is_null());
}

/// The listeners of a Gateway API Gateway as `(name, port, protocol, tls mode)`.
fn listeners(gw: &Value) -> Vec<(String, u64, String, String)> {
    gw["spec"]["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap_or_default().to_string(),
                l["port"].as_u64().unwrap_or_default(),
                l["protocol"].as_str().unwrap_or_default().to_string(),
                l["tls"]["mode"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn resources(built: &Built, cluster: &str) -> Vec<String> {
    built.doc(&format!("{cluster}/kustomization.yaml"))["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The README installs the Gateway API CRDs before Istio itself.
fn assert_gateway_api_crds_first(built: &Built, cluster: &str) {
    let readme =
        std::fs::read_to_string(built.out().join(cluster).join("README.md")).expect("readme");
    let crds = readme
        .find("kubectl get crd gateways.gateway.networking.k8s.io")
        .unwrap_or_else(|| panic!("{cluster}: no Gateway API CRDs step\n{readme}"));
    let istio = readme.find("2. Istio").expect("Istio step");
    assert!(
        crds < istio,
        "{cluster}: the CRDs come after Istio\n{readme}"
    );
    assert!(readme.contains("gateway-api/releases/download/v1.5.1/standard-install.yaml"));
}

#[test]
fn upstream_ambient_gets_the_east_west_gateway_and_ambient_values() {
    let built = Built::new("ambient-multi-network");
    let clusters = built.clusters();
    let names: Vec<&str> = clusters
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    for cluster in &clusters {
        let name = cluster["name"].as_str().expect("name");
        let network = cluster["network"].as_str().expect("network");
        let gw = built.doc(&format!("{name}/eastwest-gateway.yaml"));
        assert_eq!(gw["apiVersion"], "gateway.networking.k8s.io/v1", "1.30");
        assert_eq!(gw["kind"], "Gateway");
        assert_eq!(gw["metadata"]["name"], "istio-eastwestgateway");
        assert_eq!(gw["metadata"]["namespace"], "istio-system");
        assert_eq!(
            gw["metadata"]["labels"]["topology.istio.io/network"],
            network
        );
        assert_eq!(
            gw["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "meshc"
        );
        assert_eq!(
            gw["metadata"]["annotations"]["networking.istio.io/service-type"],
            "LoadBalancer"
        );
        assert_eq!(gw["spec"]["gatewayClassName"], "istio-east-west");
        assert!(
            gw["spec"]["addresses"].is_null(),
            "istiod deploys it: no address"
        );
        assert_eq!(
            listeners(&gw),
            [(
                "mesh".to_string(),
                15008,
                "HBONE".to_string(),
                "Terminate".to_string()
            )]
        );
        assert_eq!(
            gw["spec"]["listeners"][0]["tls"]["options"]["gateway.istio.io/tls-terminate-mode"],
            "ISTIO_MUTUAL"
        );
        assert!(resources(&built, name).contains(&"eastwest-gateway.yaml".to_string()));
        assert!(!built.exists(&format!("{name}/peer-gateways.yaml")));
        assert!(!built.exists(&format!("{name}/install/helm/eastwestgateway.values.yaml")));
        assert!(!built.exists(&format!("{name}/expose-services.yaml")));
        assert_gateway_api_crds_first(&built, name);

        let istiod = built.doc(&format!("{name}/install/helm/istiod.values.yaml"));
        assert_eq!(istiod["profile"], "ambient");
        assert_eq!(istiod["env"]["AMBIENT_ENABLE_MULTI_NETWORK"], "true");
        assert_eq!(istiod["global"]["meshID"], "ambient-mesh");
        assert_eq!(istiod["global"]["multiCluster"]["clusterName"], name);
        assert_eq!(istiod["global"]["network"], network);
        assert_eq!(istiod["meshConfig"]["trustDomain"], "cluster.local");
        assert!(
            istiod["meshConfig"]["trustDomainAliases"].is_null(),
            "one trust domain"
        );
        assert!(
            istiod["platforms"].is_null()
                && istiod["env"]["PILOT_SKIP_VALIDATE_TRUST_DOMAIN"].is_null()
        );
        let cni = built.doc(&format!("{name}/install/helm/cni.values.yaml"));
        assert_eq!(cni["profile"], "ambient");
        let ztunnel = built.doc(&format!("{name}/install/helm/ztunnel.values.yaml"));
        assert_eq!(ztunnel["multiCluster"]["clusterName"], name);
        assert_eq!(ztunnel["global"]["network"], network);
        assert!(
            ztunnel["env"].is_null(),
            "upstream ztunnel has no SKIP_VALIDATE_TRUST_DOMAIN"
        );

        // Remote secrets both ways: every other primary with a token is discovered.
        for peer in clusters.iter().filter(|c| c["name"] != cluster["name"]) {
            let peer_name = peer["name"].as_str().expect("name");
            let secret = built
                .exists(&format!("{name}/remote-secrets.yaml"))
                .then(|| {
                    built.find(
                        &format!("{name}/remote-secrets.yaml"),
                        "Secret",
                        &format!("istio-remote-secret-{peer_name}"),
                    )
                })
                .flatten();
            assert_eq!(
                secret.is_some(),
                peer["remoteSecret"]["tokenFile"].is_string(),
                "{name} -> {peer_name}"
            );
        }
    }
    assert!(names.len() >= 3);
    // Both US clusters hold each other's secret: discovery goes both ways.
    assert!(
        built
            .find(
                "prod-us-west1/remote-secrets.yaml",
                "Secret",
                "istio-remote-secret-prod-us-central1"
            )
            .is_some()
    );
    assert!(
        built
            .find(
                "prod-us-central1/remote-secrets.yaml",
                "Secret",
                "istio-remote-secret-prod-us-west1"
            )
            .is_some()
    );
    // Global services: istio.io/global, never Solo's label.
    let services = built.docs("prod-us-west1/services.yaml");
    for svc in &services {
        let labels = &svc["metadata"]["labels"];
        let global = ["helloworld", "inventory"]
            .contains(&svc["metadata"]["name"].as_str().unwrap_or_default());
        assert_eq!(labels["istio.io/global"] == "true", global, "{svc}");
        assert!(labels["solo.io/service-scope"].is_null());
    }
}

#[test]
fn solo_ambient_peers_through_istio_remote_gateways() {
    let built = Built::new("ambient-solo");
    let clusters = built.clusters();
    for cluster in &clusters {
        let name = cluster["name"].as_str().expect("name");
        let network = cluster["network"].as_str().expect("network");
        let gw = built.doc(&format!("{name}/eastwest-gateway.yaml"));
        assert_eq!(gw["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(gw["metadata"]["name"], "istio-eastwest");
        assert_eq!(gw["metadata"]["namespace"], "istio-gateways");
        assert_eq!(gw["metadata"]["labels"]["istio.io/expose-istiod"], "15012");
        assert_eq!(
            gw["metadata"]["labels"]["topology.istio.io/network"],
            network
        );
        assert_eq!(gw["spec"]["gatewayClassName"], "istio-eastwest");
        let passthrough = |n: &str, p: u64, proto: &str| {
            (
                n.to_string(),
                p,
                proto.to_string(),
                "Passthrough".to_string(),
            )
        };
        assert_eq!(
            listeners(&gw),
            [
                passthrough("cross-network", 15008, "HBONE"),
                passthrough("xds-tls", 15012, "TLS")
            ]
        );
        // Its annotations reach the Service istiod deploys.
        assert_eq!(
            gw["spec"]["infrastructure"]["annotations"],
            cluster["eastWestGateway"]["annotations"]
                .as_object()
                .map_or(Value::Null, |a| Value::Object(a.clone()))
        );
        // The namespace exists, without a data-plane label.
        let ns = built
            .find(
                &format!("{name}/namespaces.yaml"),
                "Namespace",
                "istio-gateways",
            )
            .expect("istio-gateways");
        assert!(ns["metadata"]["labels"]["istio.io/dataplane-mode"].is_null());

        // One istio-remote Gateway per peer network, at the peer's address.
        let peers: Vec<&Value> = clusters
            .iter()
            .filter(|c| c["name"] != cluster["name"])
            .collect();
        let remotes = built.docs(&format!("{name}/peer-gateways.yaml"));
        assert_eq!(remotes.len(), peers.len(), "{name}");
        for peer in peers {
            let peer_net = peer["network"].as_str().expect("network");
            let remote = remotes
                .iter()
                .find(|r| r["metadata"]["name"] == format!("istio-remote-peer-{peer_net}").as_str())
                .unwrap_or_else(|| panic!("{name}: no gateway for {peer_net}"));
            assert_eq!(remote["apiVersion"], "gateway.networking.k8s.io/v1");
            assert_eq!(remote["metadata"]["namespace"], "istio-gateways");
            assert_eq!(remote["spec"]["gatewayClassName"], "istio-remote");
            assert_eq!(
                remote["metadata"]["labels"]["topology.istio.io/network"],
                peer_net
            );
            assert_eq!(
                remote["metadata"]["annotations"]["gateway.istio.io/trust-domain"],
                peer["trustDomain"]
            );
            assert_eq!(
                remote["metadata"]["annotations"]["gateway.istio.io/service-account"],
                "istio-eastwest"
            );
            assert_eq!(remote["spec"]["addresses"][0]["type"], "IPAddress");
            assert_eq!(
                remote["spec"]["addresses"][0]["value"],
                peer["eastWestGateway"]["address"]
            );
            assert_eq!(
                listeners(remote),
                [
                    passthrough("cross-network", 15008, "HBONE"),
                    passthrough("xds-tls", 15012, "TLS")
                ]
            );
        }
        let listed = resources(&built, name);
        assert!(
            listed.contains(&"eastwest-gateway.yaml".to_string())
                && listed.contains(&"peer-gateways.yaml".to_string())
        );
        assert_gateway_api_crds_first(&built, name);
        // Peering, not remote secrets.
        assert!(!built.exists(&format!("{name}/remote-secrets.yaml")));
        assert!(!built.exists(&format!("{name}/reader-token.yaml")));

        // Solo's values; the two clusters have their own trust domains.
        let other_td: Vec<&Value> = clusters
            .iter()
            .filter(|c| c["name"] != cluster["name"])
            .map(|c| &c["trustDomain"])
            .collect();
        let istiod = built.doc(&format!("{name}/install/helm/istiod.values.yaml"));
        assert_eq!(istiod["profile"], "ambient");
        assert_eq!(istiod["platforms"]["peering"]["enabled"], true);
        assert_eq!(istiod["env"]["PILOT_SKIP_VALIDATE_TRUST_DOMAIN"], "true");
        assert_eq!(istiod["env"]["PILOT_ENABLE_IP_AUTOALLOCATE"], "true");
        assert_eq!(istiod["meshConfig"]["trustDomain"], cluster["trustDomain"]);
        assert_eq!(
            istiod["meshConfig"]["trustDomainAliases"]
                .as_array()
                .expect("aliases")
                .iter()
                .collect::<Vec<_>>(),
            other_td
        );
        let ztunnel = built.doc(&format!("{name}/install/helm/ztunnel.values.yaml"));
        assert_eq!(ztunnel["env"]["SKIP_VALIDATE_TRUST_DOMAIN"], "true");
        assert_eq!(ztunnel["network"], network);
        assert_eq!(ztunnel["multiCluster"]["clusterName"], name);
        let cni = built.doc(&format!("{name}/install/helm/cni.values.yaml"));
        assert_eq!(cni["profile"], "ambient");
        assert_eq!(cni["ambient"]["dnsCapture"], true);
    }
    let services = built.docs("gke-us-east1/services.yaml");
    assert!(!services.is_empty());
    for svc in &services {
        assert_eq!(
            svc["metadata"]["labels"]["solo.io/service-scope"], "global",
            "{svc}"
        );
        assert!(svc["metadata"]["labels"]["istio.io/global"].is_null());
    }
}

#[test]
fn ambient_on_1_28_writes_v1beta1_and_the_istio_operator_for_ambient() {
    let built = Built::file("tests/data/topologies/ambient-istioctl-1-28.yaml");
    let gw = built.doc("c1/eastwest-gateway.yaml");
    assert_eq!(gw["apiVersion"], "gateway.networking.k8s.io/v1beta1");
    assert_eq!(gw["metadata"]["labels"]["istio.io/rev"], "stable");
    // serviceType and annotations reach the Service istiod deploys for the Gateway.
    assert_eq!(
        gw["metadata"]["annotations"]["networking.istio.io/service-type"],
        "NodePort"
    );
    assert_eq!(
        gw["spec"]["infrastructure"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"],
        "external"
    );
    assert_eq!(
        built.doc("c2/eastwest-gateway.yaml")["metadata"]["annotations"]["networking.istio.io/service-type"],
        "LoadBalancer"
    );
    assert!(built.doc("c2/eastwest-gateway.yaml")["spec"]["infrastructure"].is_null());

    for (name, network, td, alias) in [
        ("c1", "net1", "c1.local", "mesh1.local"),
        ("c2", "net2", "mesh1.local", "c1.local"),
    ] {
        let spec = built.doc(&format!("{name}/install/istioctl/controlplane.yaml"))["spec"].clone();
        assert_eq!(spec["profile"], "ambient");
        assert_eq!(spec["revision"], "stable");
        assert_eq!(spec["components"]["cni"]["enabled"], true);
        assert_eq!(spec["components"]["ztunnel"]["enabled"], true);
        assert_eq!(
            spec["values"]["pilot"]["env"]["AMBIENT_ENABLE_MULTI_NETWORK"],
            "true"
        );
        assert_eq!(
            spec["values"]["ztunnel"]["multiCluster"]["clusterName"],
            name
        );
        assert_eq!(spec["values"]["global"]["network"], network);
        assert_eq!(spec["meshConfig"]["trustDomain"], td);
        // The other cluster's trust domain, so its identities still verify.
        assert_eq!(
            spec["meshConfig"]["trustDomainAliases"],
            serde_json::json!([alias])
        );
        let helm = built.doc(&format!("{name}/install/helm/istiod.values.yaml"));
        assert_eq!(
            helm["meshConfig"]["trustDomainAliases"],
            serde_json::json!([alias])
        );
        assert!(
            helm["env"]["PILOT_SKIP_VALIDATE_TRUST_DOMAIN"].is_null(),
            "upstream: aliases, not skipping"
        );
    }
    assert!(
        built
            .find("c1/remote-secrets.yaml", "Secret", "istio-remote-secret-c2")
            .is_some()
    );
    assert!(
        built
            .find("c2/remote-secrets.yaml", "Secret", "istio-remote-secret-c1")
            .is_some()
    );
}

#[test]
fn ambient_on_1_29_writes_gateway_api_v1() {
    let text = std::fs::read_to_string(repo("tests/data/topologies/ambient-istioctl-1-28.yaml"))
        .expect("read");
    let env = Env::new(&text.replace("version: \"1.28\"", "version: \"1.29\""));
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let gw: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(env.path("out/c1/eastwest-gateway.yaml")).expect("gateway"),
    )
    .expect("yaml");
    assert_eq!(gw["apiVersion"], "gateway.networking.k8s.io/v1");
}

#[test]
fn solo_links_each_primary_to_every_other_network() {
    let built = Built::file("tests/data/topologies/solo-three-networks.yaml");
    let names = |rel: &str| -> Vec<String> {
        built
            .docs(rel)
            .iter()
            .map(|d| {
                d["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        names("east1/peer-gateways.yaml"),
        ["istio-remote-peer-west", "istio-remote-peer-north"]
    );
    assert_eq!(
        names("north1/peer-gateways.yaml"),
        ["istio-remote-peer-east", "istio-remote-peer-west"]
    );
    // A DNS name is a Hostname address (lower case, no trailing dot); IPv6 an IPAddress.
    let west = built
        .find(
            "east1/peer-gateways.yaml",
            "Gateway",
            "istio-remote-peer-west",
        )
        .expect("west");
    assert_eq!(
        west["spec"]["addresses"][0],
        serde_json::json!({"type": "Hostname", "value": "ew.west.example.com"})
    );
    let north = built
        .find(
            "east1/peer-gateways.yaml",
            "Gateway",
            "istio-remote-peer-north",
        )
        .expect("north");
    assert_eq!(
        north["spec"]["addresses"][0],
        serde_json::json!({"type": "IPAddress", "value": "2001:db8::1"})
    );
    assert_eq!(
        north["metadata"]["annotations"]["gateway.istio.io/trust-domain"],
        "cluster.local"
    );
    // A remote links to nobody and exposes no istiod; its primary watches it by remote secret.
    assert!(!built.exists("north2/peer-gateways.yaml"));
    let gw = built.doc("north2/eastwest-gateway.yaml");
    assert!(gw["metadata"]["labels"]["istio.io/expose-istiod"].is_null());
    assert_eq!(listeners(&gw).len(), 1);
    assert!(
        built
            .find(
                "north1/remote-secrets.yaml",
                "Secret",
                "istio-remote-secret-north2"
            )
            .is_some()
    );
    assert!(!built.exists("east1/remote-secrets.yaml"));
    assert!(built.exists("north2/reader-token.yaml"));
    // One trust domain: nothing to skip, no aliases.
    let istiod = built.doc("east1/install/helm/istiod.values.yaml");
    assert!(istiod["env"]["PILOT_SKIP_VALIDATE_TRUST_DOMAIN"].is_null());
    assert!(istiod["meshConfig"]["trustDomainAliases"].is_null());
    assert!(built.doc("east1/install/helm/ztunnel.values.yaml")["env"].is_null());
    assert!(
        built.doc("north2/install/helm/istiod.values.yaml")["platforms"].is_null(),
        "a remote runs no istiod"
    );
    // The IstioOperator carries the same peering values.
    let iop = built.doc("east1/install/istioctl/controlplane.yaml");
    assert_eq!(
        iop["spec"]["values"]["platforms"]["peering"]["enabled"],
        true
    );
    assert_eq!(iop["spec"]["values"]["ztunnel"]["network"], "east");
    assert_eq!(iop["spec"]["values"]["cni"]["ambient"]["dnsCapture"], true);
    // global-only and Solo's traffic distribution values.
    let web = built
        .find("east1/services.yaml", "Service", "web")
        .expect("web");
    assert_eq!(
        web["metadata"]["labels"]["solo.io/service-scope"],
        "global-only"
    );
    assert_eq!(
        web["metadata"]["annotations"]["networking.istio.io/traffic-distribution"],
        "PreferRegion"
    );
    let api = built
        .find("east1/services.yaml", "Service", "api")
        .expect("api");
    assert_eq!(api["metadata"]["labels"]["solo.io/service-scope"], "global");
}

#[test]
fn the_plan_links_solo_primaries_by_network_and_watches_only_remotes() {
    let text = std::fs::read_to_string(repo("tests/data/topologies/solo-three-networks.yaml"))
        .expect("read");
    let checked = meshc::compiler::check(meshc::source::Source::new("t.yaml", "t.yaml", text));
    let model = checked.model.expect("model");
    let plans = meshc::plan::plan(&model);
    let name = |c: usize| model.topology.clusters[c].name.as_str();
    let by_name: BTreeMap<&str, &meshc::plan::ClusterPlan> =
        plans.iter().map(|p| (p.name.as_str(), p)).collect();
    for p in &plans {
        assert!(
            p.flavour == meshc::plan::Flavour::SoloAmbient
                && p.peering
                && p.east_west == Some(meshc::plan::EastWest::Solo),
            "{}",
            p.name
        );
    }
    let linked = |n: &str| {
        by_name[n]
            .linked
            .iter()
            .map(|&c| name(c))
            .collect::<Vec<_>>()
    };
    assert_eq!(linked("east1"), ["west1", "north1"]);
    assert_eq!(linked("west1"), ["east1", "north1"]);
    assert_eq!(linked("north1"), ["east1", "west1"]);
    assert!(linked("north2").is_empty(), "a remote links to nobody");
    // Remote secrets only from a primary to the remotes it serves.
    assert_eq!(
        by_name["north1"]
            .peers
            .iter()
            .map(|&c| name(c))
            .collect::<Vec<_>>(),
        ["north2"]
    );
    assert!(by_name["east1"].peers.is_empty() && by_name["west1"].peers.is_empty());
    assert!(by_name["north2"].watched && !by_name["east1"].watched);
    assert!(by_name["east1"].namespaces.contains_key("istio-gateways"));
}
