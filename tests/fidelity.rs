//! meshc's Helm install lines run against Istio 1.30.3's own charts.
//!
//! Every example (and every test topology for the same Istio minor) is built, and
//! `tests/fidelity/render.py` renders each `install/helm/*.values.yaml` with the chart, release
//! name and namespace of the command on its first line, through Helm's Go SDK (PyPI package
//! `helm-python-sdk`) and the charts kept in `tests/data/charts-1.30.3/`. The test then asks
//! what a user installing those lines would ask:
//!
//! - does every line render, with values the chart's `values.schema.json` accepts?
//! - does the chart read every value meshc writes? (a value no template reads is a setting the
//!   user believes in and does not get)
//! - do the rendered objects carry the mesh: istiod's `CLUSTER_ID`, the mesh ConfigMap's trust
//!   domain and mesh ID, the network sidecars are given, `EXTERNAL_ISTIOD` on a primary that
//!   serves remotes, a remote's injection webhook reaching its primary's east-west gateway on
//!   15017 at `/inject/cluster/<cluster>/net/<network>`, the east-west gateway's ports and
//!   network, ztunnel's network.
//!
//! The Sail Operator's objects (`install/sail/`) are rendered too, as the Helm installs the
//! operator performs with them (`sail_view`): the same questions, asked of the charts the
//! operator runs.
//!
//! Findings are matched against two lists: `ALLOWED`, values that are right although these
//! charts do not read them, and `KNOWN_PROBLEMS`, what the charts show to be wrong in meshc's
//! output today, kept so that the test passes until the output is fixed. An entry of either
//! list that matches nothing fails the test, so each goes as soon as it is fixed.
//!
//! Needs python3 with `helm-python-sdk`, `jsonschema` and `PyYAML`; without them the test says
//! so and passes, unless `MESHC_FIDELITY_REQUIRED=1` (as `.ci/run` sets).

mod common;

use common::test_topologies;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// Istio's charts, as laid out in its `manifests/charts/`.
const CHARTS: &str = "tests/data/charts-1.30.3";
const RENDER: &str = "tests/fidelity/render.py";
const MISSING: &str = "helm-python-sdk not installed: pip install helm-python-sdk";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Whether render.py can run here. Without its modules the test is skipped with a message,
/// unless `MESHC_FIDELITY_REQUIRED=1`, when that is a failure.
fn renderer_available() -> bool {
    let imports = |modules: &str| {
        std::process::Command::new("python3")
            .args(["-c", &format!("import {modules}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let missing = if !imports("helm_python") {
        MISSING
    } else if !imports("jsonschema, yaml") {
        "python3 modules jsonschema and PyYAML not installed: pip install jsonschema pyyaml"
    } else {
        return true;
    };
    assert!(
        std::env::var("MESHC_FIDELITY_REQUIRED").as_deref() != Ok("1"),
        "{missing} (MESHC_FIDELITY_REQUIRED=1: the Helm fidelity test may not be skipped)"
    );
    // Straight to stderr: the test harness captures eprintln! of a passing test, and a skip
    // must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "{missing}; skipping the Helm fidelity test (tests/fidelity.rs)"
    );
    false
}

// --- what may be reported ----------------------------------------------------------------

/// A finding that is expected: in `chart`'s values, in `scenario` (the topology file, any if
/// None), for clusters of `role` and meshes of `distribution` (any if None), a finding whose
/// text starts with `finding`.
struct Known {
    scenario: Option<&'static str>,
    chart: &'static str,
    role: Option<Role>,
    distribution: Option<&'static str>,
    finding: &'static str,
    why: &'static str,
}

impl Known {
    fn matches(&self, f: &Finding) -> bool {
        self.chart == f.chart
            && self.scenario.is_none_or(|s| s == f.scenario)
            && self.role.is_none_or(|r| r == f.role)
            && self.distribution.is_none_or(|d| d == f.distribution)
            && f.what
                .strip_prefix(self.finding)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[', ':', ' ']))
    }
}

/// Values that are right to write although Istio's upstream 1.30.3 charts do not read them.
const ALLOWED: &[Known] = &[Known {
    scenario: None,
    chart: "istiod",
    role: None,
    distribution: Some("solo"),
    finding: "unread platforms",
    why: "Solo's istiod chart reads platforms.peering.enabled (peering through the east-west \
          gateways); the solo example is rendered with the upstream charts as an approximation, \
          and they have no platforms.* at all",
}];

/// What Istio 1.30.3's charts show to be wrong in meshc's output today. Temporary: each entry
/// goes when meshc's output is fixed (the test fails on an entry that no longer matches).
const KNOWN_PROBLEMS: &[Known] = &[];

// --- the topology, as far as the checks need it ------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Primary,
    Remote,
}

#[derive(Debug)]
struct Mesh {
    name: String,
    trust_domain: String,
    distribution: String,
    revision: Option<String>,
    ambient: bool,
    networks: BTreeSet<String>,
}

#[derive(Debug)]
struct Cluster {
    name: String,
    network: String,
    mesh: String,
    role: Role,
    primary: Option<String>,
    east_west_address: Option<String>,
    trust_domain: Option<String>,
}

#[derive(Debug)]
struct Topology {
    meshes: Vec<Mesh>,
    clusters: Vec<Cluster>,
}

impl Topology {
    fn parse(text: &str) -> Topology {
        let doc: Value = serde_saphyr::from_str(text).expect("topology parses");
        let str_of = |v: &Value| v.as_str().map(str::to_string);
        let first_mesh = doc["meshes"][0]["name"].as_str().unwrap_or_default();
        let clusters: Vec<Cluster> = doc["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .map(|c| Cluster {
                name: str_of(&c["name"]).expect("name"),
                network: str_of(&c["network"]).expect("network"),
                mesh: str_of(&c["mesh"]).unwrap_or_else(|| first_mesh.to_string()),
                role: if c["controlPlane"] == "remote" {
                    Role::Remote
                } else {
                    Role::Primary
                },
                primary: str_of(&c["primary"]),
                east_west_address: str_of(&c["eastWestGateway"]["address"]),
                trust_domain: str_of(&c["trustDomain"]),
            })
            .collect();
        let meshes = doc["meshes"]
            .as_array()
            .expect("meshes")
            .iter()
            .map(|m| {
                let name = str_of(&m["name"]).expect("name");
                Mesh {
                    trust_domain: str_of(&m["trustDomain"])
                        .unwrap_or_else(|| "cluster.local".to_string()),
                    distribution: str_of(&m["istio"]["distribution"])
                        .unwrap_or_else(|| "upstream".to_string()),
                    revision: str_of(&m["istio"]["revision"]),
                    ambient: m["dataplane"] == "ambient",
                    networks: clusters
                        .iter()
                        .filter(|c| c.mesh == name)
                        .map(|c| c.network.clone())
                        .collect(),
                    name,
                }
            })
            .collect();
        Topology { meshes, clusters }
    }

    fn cluster(&self, name: &str) -> &Cluster {
        self.clusters
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("cluster {name} in the topology"))
    }

    fn mesh_of(&self, cluster: &Cluster) -> &Mesh {
        self.meshes
            .iter()
            .find(|m| m.name == cluster.mesh)
            .expect("mesh of cluster")
    }

    fn serves_remotes(&self, cluster: &Cluster) -> bool {
        self.clusters
            .iter()
            .any(|c| c.primary.as_deref() == Some(cluster.name.as_str()))
    }
}

// --- building and rendering --------------------------------------------------------------

/// A topology built into a temporary directory and rendered by render.py.
struct Scenario {
    name: String,
    dir: tempfile::TempDir,
    topology: Topology,
    /// Test topologies may target another Istio minor: their lines for other chart versions
    /// are not rendered. Examples must all target the charts' version.
    other_versions_allowed: bool,
    /// Built while its mesh's root is being rotated: istiod must take a new root bundle
    /// without a restart (`ISTIO_MULTIROOT_MESH`) and proxies trust-bundle updates over xDS.
    multiroot: bool,
}

impl Scenario {
    fn file(rel: &str, other_versions_allowed: bool) -> Scenario {
        let text = std::fs::read_to_string(repo(rel)).expect("read topology");
        let dir = tempfile::tempdir().expect("tempdir");
        Scenario::build(rel, dir, &repo(rel), &text, other_versions_allowed)
    }

    fn inline(name: &str, text: &str) -> Scenario {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("topology.yaml");
        std::fs::write(&path, text).expect("write topology");
        Scenario::build(name, dir, &path, text, false)
    }

    /// Built, its first mesh's root rotation started, built again (phase 1).
    fn rotating(name: &str, text: &str, mesh: &str) -> Scenario {
        let mut scenario = Scenario::inline(name, text);
        let topology = scenario.dir.path().join("topology.yaml");
        let pki = scenario.dir.path().join("pki");
        for (command, args) in [
            (vec!["pki", "rotate-root"], vec!["--mesh", mesh]),
            (vec!["build"], vec!["-o", "out"]),
        ] {
            let out = Command::cargo_bin("meshc")
                .expect("binary")
                .current_dir(scenario.dir.path())
                .args(&command)
                .arg(&topology)
                .args(&args)
                .arg("--pki")
                .arg(&pki)
                .output()
                .expect("meshc runs");
            assert_eq!(
                out.status.code(),
                Some(0),
                "{name}: {command:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        scenario.multiroot = true;
        scenario
    }

    fn build(
        name: &str,
        dir: tempfile::TempDir,
        topology: &Path,
        text: &str,
        other_versions_allowed: bool,
    ) -> Scenario {
        let out = Command::cargo_bin("meshc")
            .expect("binary")
            .arg("build")
            .arg(topology)
            .arg("-o")
            .arg(dir.path().join("out"))
            .arg("--pki")
            .arg(dir.path().join("pki"))
            .output()
            .expect("meshc runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Scenario {
            name: name.to_string(),
            dir,
            topology: Topology::parse(text),
            other_versions_allowed,
            multiroot: false,
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn render(&self) -> Value {
        let out = std::process::Command::new("python3")
            .arg(repo(RENDER))
            .arg(self.out())
            .arg(repo(CHARTS))
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}: render.py failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("render.py prints one JSON document")
    }
}

/// The Helm installs the Sail Operator performs for what meshc wrote under `install/sail/`,
/// as values files render.py can render: a scenario of its own, checked like any other.
///
/// The operator passes an `Istio`'s `spec.values` to Istio's istiod chart as Helm values, and
/// to the base chart for the `default` revision (istio-ecosystem/sail-operator
/// `pkg/reconcile/istiod.go`, `helm.FromValues`); the istiod chart itself moves `pilot.*` to
/// its root (`templates/zzy_descope_legacy.yaml`). Its profiles are given here as the charts'
/// own `profile` value, and a revision as `revision`. `IstioCNI` values go to the cni chart
/// (which moves `cni.*` to its root); a `ZTunnel`'s `values.ztunnel` goes to the ztunnel
/// chart's root, with `values.global` and the global values, revision and meshConfig of the
/// `Istio` its `targetRef` names (`pkg/reconcile/ztunnel.go`, `ApplyUserValues`).
fn sail_view(scenario: &Scenario, text: &str) -> Option<Scenario> {
    let mut installs: Vec<(PathBuf, String, Value)> = Vec::new();
    let mut readmes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for cluster in &scenario.topology.clusters {
        let sail = scenario.out().join(&cluster.name).join("install/sail");
        let read = |file: &str| -> Option<Value> {
            let text = std::fs::read_to_string(sail.join(file)).ok()?;
            Some(serde_saphyr::from_str(&text).expect("Sail object"))
        };
        let Some(istio) = read("istio.yaml") else {
            continue;
        };
        let real_readme =
            std::fs::read_to_string(scenario.out().join(&cluster.name).join("README.md"))
                .expect("README.md");
        assert!(
            real_readme.contains("kubectl apply -f install/sail/istio.yaml"),
            "{}: {}'s README does not apply install/sail/istio.yaml",
            scenario.name,
            cluster.name
        );
        let version = istio["spec"]["version"]
            .as_str()
            .expect("spec.version")
            .trim_start_matches('v')
            .to_string();
        let name = istio["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        let with_profile = |values: &Value, profile: &Value, revision: bool| {
            let mut values = values.clone();
            if values.is_null() {
                values = Value::Object(serde_json::Map::new());
            }
            if profile.is_string() {
                values["profile"] = profile.clone();
            }
            if revision && name != "default" {
                values["revision"] = Value::from(name.as_str());
            }
            values
        };
        let namespace = istio["spec"]["namespace"].as_str().expect("namespace");
        let istio_values = with_profile(&istio["spec"]["values"], &istio["spec"]["profile"], true);
        let mut add = |file: &str, release: String, chart: &str, ns: &str, values: Value| {
            let rel = format!("install/helm/{file}.values.yaml");
            let command = format!(
                "helm upgrade --install {release} istio/{chart} -n {ns} --version {version} -f {rel}"
            );
            readmes
                .entry(cluster.name.clone())
                .or_default()
                .push(command.clone());
            installs.push((PathBuf::from(&cluster.name).join(&rel), command, values));
        };
        add(
            "istiod",
            format!("{name}-istiod"),
            "istiod",
            namespace,
            istio_values.clone(),
        );
        if name == "default" {
            add(
                "base",
                "default-base".to_string(),
                "base",
                "sail-operator",
                istio_values.clone(),
            );
        }
        if let Some(cni) = read("istiocni.yaml") {
            let values = with_profile(&cni["spec"]["values"], &cni["spec"]["profile"], false);
            let ns = cni["spec"]["namespace"]
                .as_str()
                .expect("namespace")
                .to_string();
            add("cni", "istio-cni".to_string(), "cni", &ns, values);
        }
        if let Some(ztunnel) = read("ztunnel.yaml") {
            let mut values = ztunnel["spec"]["values"]["ztunnel"].clone();
            values["global"] = istio_values["global"].clone();
            values["meshConfig"] = istio_values["meshConfig"].clone();
            if let Some(revision) = istio_values.get("revision") {
                values["revision"] = revision.clone();
            }
            if istio["spec"]["profile"] == "ambient" {
                values["profile"] = Value::from("ambient");
            }
            let ns = ztunnel["spec"]["namespace"]
                .as_str()
                .expect("namespace")
                .to_string();
            add("ztunnel", "ztunnel".to_string(), "ztunnel", &ns, values);
        }
    }
    if installs.is_empty() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    for (rel, command, values) in &installs {
        let path = out.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let body = serde_saphyr::to_string(values).expect("YAML");
        std::fs::write(&path, format!("# {command}\n{body}")).expect("write values");
    }
    for (cluster, commands) in &readmes {
        let dir = out.join(cluster);
        std::fs::write(dir.join("README.md"), commands.join("\n") + "\n").expect("README");
        std::fs::copy(
            scenario.out().join(cluster).join("namespaces.yaml"),
            dir.join("namespaces.yaml"),
        )
        .expect("namespaces.yaml");
    }
    Some(Scenario {
        name: format!("{} (Sail)", scenario.name),
        dir,
        topology: Topology::parse(text),
        other_versions_allowed: scenario.other_versions_allowed,
        multiroot: scenario.multiroot,
    })
}

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo("examples"))
        .expect("examples/")
        .flatten()
        .filter(|e| e.path().join("topology.yaml").exists())
        .map(|e| format!("examples/{}/topology.yaml", e.file_name().to_string_lossy()))
        .collect();
    names.sort();
    names
}

/// A primary-remote pair whose primary's east-west gateway has a DNS name: the remote's
/// istiod Service is then an ExternalName, a shape no example has.
const DNS_EAST_WEST: &str = "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: mesh1
    istio: { version: \"1.30\", installers: [helm] }
networks:
  - name: net-a
  - name: net-b
clusters:
  - name: primary-a
    network: net-a
    controlPlane: primary
    eastWestGateway: { address: ew.primary-a.example.com }
  - name: remote-b
    network: net-b
    controlPlane: remote
    primary: primary-a
    apiServer: { url: \"https://192.0.2.20:6443\" }
";

/// Two primaries installed with every installer, built in phase 1 of a root rotation.
const ROTATING: &str = "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: mesh1
    istio: { version: \"1.30\", installers: [helm, istioctl, sail] }
    dns: { capture: true }
networks:
  - name: net-a
  - name: net-b
clusters:
  - name: primary-a
    network: net-a
    controlPlane: primary
    eastWestGateway: { address: 192.0.2.10 }
    apiServer: { url: \"https://192.0.2.11:6443\" }
  - name: primary-b
    network: net-b
    controlPlane: primary
    eastWestGateway: { address: 192.0.2.20 }
    apiServer: { url: \"https://192.0.2.21:6443\" }
";

// --- findings ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Finding {
    scenario: String,
    cluster: String,
    file: String,
    chart: String,
    role: Role,
    distribution: String,
    what: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}/{} ({}): {}",
            self.scenario, self.cluster, self.file, self.chart, self.what
        )
    }
}

/// One rendered values file, as render.py reports it.
struct Rendered<'a> {
    entry: &'a Value,
    file: String,
    chart: String,
}

impl Rendered<'_> {
    fn objects(&self) -> &[Value] {
        self.entry["objects"].as_array().map_or(&[], Vec::as_slice)
    }

    fn stem(&self) -> &str {
        self.file.trim_end_matches(".values.yaml")
    }
}

/// Everything the charts show about one scenario.
fn findings(scenario: &Scenario, report: &Value) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut by_cluster: BTreeMap<String, Vec<Rendered>> = BTreeMap::new();
    for entry in report["files"].as_array().expect("files") {
        let cluster_name = entry["cluster"].as_str().expect("cluster").to_string();
        let file = entry["file"]
            .as_str()
            .expect("file")
            .rsplit('/')
            .next()
            .expect("name")
            .to_string();
        let chart = entry["command"]["chart"]
            .as_str()
            .map_or("?", |c| c.rsplit('/').next().unwrap_or(c))
            .to_string();
        let cluster = scenario.topology.cluster(&cluster_name);
        let mesh = scenario.topology.mesh_of(cluster);
        let mut note = |what: String| {
            found.push(Finding {
                scenario: scenario.name.clone(),
                cluster: cluster_name.clone(),
                file: file.clone(),
                chart: chart.clone(),
                role: cluster.role,
                distribution: mesh.distribution.clone(),
                what,
            });
        };
        // Solo's charts are approximated by upstream's: the same minor is enough for them.
        let version_field = if mesh.distribution == "solo" {
            "version_same_minor"
        } else {
            "version_admits_charts"
        };
        match entry["command"][version_field].as_bool() {
            Some(false) => {
                if !scenario.other_versions_allowed {
                    note(format!(
                        "version {} does not admit the charts' {}",
                        entry["command"]["version"], report["istio_version"]
                    ));
                }
                continue;
            }
            None if entry["error"].is_null() => note(format!(
                "version {} is not a constraint render.py understands",
                entry["command"]["version"]
            )),
            _ => {}
        }
        for error in entry["schema_errors"].as_array().expect("schema_errors") {
            note(format!("schema {}", error.as_str().unwrap_or_default()));
        }
        if let Some(error) = entry["error"].as_str() {
            note(format!("error: {error}"));
            continue;
        }
        for key in entry["unread_keys"].as_array().expect("unread_keys") {
            let name = key["key"].as_str().expect("key");
            if sail_reads(scenario, report, &cluster_name, &chart, name) {
                continue;
            }
            note(format!("unread {name} = {}", key["value"]));
        }
        by_cluster
            .entry(cluster_name.clone())
            .or_default()
            .push(Rendered { entry, file, chart });
    }
    for (name, files) in &by_cluster {
        let cluster = scenario.topology.cluster(name);
        for (rendered, what) in essentials(scenario, cluster, files) {
            found.push(Finding {
                scenario: scenario.name.clone(),
                cluster: name.clone(),
                file: rendered.file.clone(),
                chart: rendered.chart.clone(),
                role: cluster.role,
                distribution: scenario.topology.mesh_of(cluster).distribution.clone(),
                what: format!("essential {what}"),
            });
        }
    }
    found
}

/// In the Sail view of a scenario, whether a key one chart leaves unread is read all the same:
/// the operator gives an `Istio`'s values to both the istiod and the base chart, so a key
/// either reads is used; and a `ZTunnel` gets the `Istio`'s global values and meshConfig from
/// the operator, not from meshc, so only what meshc wrote under `values.ztunnel` is judged.
fn sail_reads(scenario: &Scenario, report: &Value, cluster: &str, chart: &str, key: &str) -> bool {
    if !scenario.name.ends_with("(Sail)") {
        return false;
    }
    if chart == "ztunnel" {
        return ["global", "meshConfig", "revision", "profile"]
            .iter()
            .any(|k| key == *k || key.starts_with(&format!("{k}.")));
    }
    let other = match chart {
        "istiod" => "base",
        "base" => "istiod",
        _ => return false,
    };
    report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            f["cluster"] == cluster
                && f["command"]["chart"]
                    .as_str()
                    .is_some_and(|c| c.ends_with(other))
        })
        .any(|f| {
            f["error"].is_null()
                && !f["unread_keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k["key"] == key)
        })
}

// --- the essentials ----------------------------------------------------------------------

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| o["kind"] == kind)
}

/// The literal env values of every container of a workload.
fn env(workload: &Value) -> BTreeMap<String, String> {
    workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn pod_labels(workload: &Value) -> &Value {
    &workload["spec"]["template"]["metadata"]["labels"]
}

/// Where a call to Service `name` on `port` ends up: an ExternalName's host on that port, or
/// the address of the EndpointSlice written for it on the port's target.
fn destination(objects: &[Value], name: &str, port: u64) -> Result<(String, u64), String> {
    let service =
        find(objects, "Service", name).ok_or_else(|| format!("no Service {name} is rendered"))?;
    let entry = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"] == port)
        .ok_or_else(|| format!("Service {name} has no port {port}"))?;
    if service["spec"]["type"] == "ExternalName" {
        let host = service["spec"]["externalName"].as_str().unwrap_or_default();
        return Ok((host.to_string(), port));
    }
    let slice = of_kind(objects, "EndpointSlice")
        .find(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == name)
        .ok_or_else(|| format!("Service {name} has no EndpointSlice"))?;
    let target = slice["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == entry["name"])
        .and_then(|p| p["port"].as_u64())
        .ok_or_else(|| format!("EndpointSlice {name} has no port {}", entry["name"]))?;
    let address = slice["endpoints"][0]["addresses"][0]
        .as_str()
        .ok_or_else(|| format!("EndpointSlice {name} has no address"))?;
    Ok((address.to_string(), target))
}

/// Host, port and path a webhook's clientConfig sends the API server to.
fn webhook_target(objects: &[Value], client: &Value) -> Result<(String, u64, String), String> {
    if let Some(url) = client["url"].as_str() {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("{url} is not https"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.strip_prefix('[') {
            // [IPv6]:port
            Some(v6) => v6.split_once(']').map_or((v6, ""), |(h, p)| (h, p)),
            None => authority
                .rsplit_once(':')
                .map_or((authority, ""), |(h, p)| (h, p)),
        };
        let port = match port.trim_start_matches(':') {
            "" => 443,
            p => p.parse().map_err(|_| format!("bad port in {url}"))?,
        };
        let host = host.to_string();
        return Ok((host, port, path.to_string()));
    }
    let service = &client["service"];
    let name = service["name"].as_str().ok_or("no url and no service")?;
    let port = service["port"].as_u64().unwrap_or(443);
    let (host, port) = destination(objects, name, port)?;
    Ok((
        host,
        port,
        service["path"].as_str().unwrap_or("/").to_string(),
    ))
}

/// What the rendered objects of one cluster must hold, as (file, what is wrong).
fn essentials<'a>(
    scenario: &Scenario,
    cluster: &Cluster,
    files: &'a [Rendered<'a>],
) -> Vec<(&'a Rendered<'a>, String)> {
    let topology = &scenario.topology;
    let mesh = topology.mesh_of(cluster);
    let rev = mesh
        .revision
        .as_ref()
        .map_or(String::new(), |r| format!("-{r}"));
    let multi_network = mesh.networks.len() > 1;
    let all: Vec<Value> = files.iter().flat_map(|f| f.objects().to_vec()).collect();
    let primary_address = cluster
        .primary
        .as_ref()
        .and_then(|p| topology.cluster(p).east_west_address.clone());
    let readme = std::fs::read_to_string(scenario.out().join(&cluster.name).join("README.md"))
        .unwrap_or_default();
    let mut wrong = Vec::new();

    for file in files {
        let objects = file.objects();
        let mut fail = |what: String| wrong.push((file, what));
        let header = std::fs::read_to_string(
            scenario
                .out()
                .join(file.entry["file"].as_str().expect("file")),
        )
        .expect("values file");
        let command = header
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ");
        if !readme.lines().any(|l| l.trim() == command) {
            fail(format!(
                "README lists the install line: {command} is not in README.md"
            ));
        }
        match file.chart.as_str() {
            "istiod" if cluster.role == Role::Primary => {
                let Some(istiod) = find(objects, "Deployment", &format!("istiod{rev}")) else {
                    fail(format!("istiod Deployment: no Deployment istiod{rev}"));
                    continue;
                };
                let env = env(istiod);
                if env.get("CLUSTER_ID") != Some(&cluster.name) {
                    fail(format!(
                        "CLUSTER_ID: {:?}, not {}",
                        env.get("CLUSTER_ID"),
                        cluster.name
                    ));
                }
                if topology.serves_remotes(cluster)
                    && env.get("EXTERNAL_ISTIOD").map(String::as_str) != Some("true")
                {
                    fail(format!(
                        "EXTERNAL_ISTIOD: {:?} on a primary that serves remotes",
                        env.get("EXTERNAL_ISTIOD")
                    ));
                }
                if scenario.multiroot
                    && env.get("ISTIO_MULTIROOT_MESH").map(String::as_str) != Some("true")
                {
                    fail(format!(
                        "multi-root: ISTIO_MULTIROOT_MESH is {:?} during a root rotation",
                        env.get("ISTIO_MULTIROOT_MESH")
                    ));
                }
                if mesh.ambient {
                    if env.get("PILOT_ENABLE_AMBIENT").map(String::as_str) != Some("true") {
                        fail("ambient env: PILOT_ENABLE_AMBIENT is not true".to_string());
                    }
                    if multi_network
                        && env.get("AMBIENT_ENABLE_MULTI_NETWORK").map(String::as_str)
                            != Some("true")
                    {
                        fail("ambient env: AMBIENT_ENABLE_MULTI_NETWORK is not true".to_string());
                    }
                }
                match find(objects, "ConfigMap", &format!("istio{rev}")) {
                    None => fail(format!("mesh ConfigMap: no ConfigMap istio{rev}")),
                    Some(cm) => {
                        let meshconfig: Value =
                            serde_saphyr::from_str(cm["data"]["mesh"].as_str().unwrap_or(""))
                                .unwrap_or(Value::Null);
                        let trust_domain =
                            cluster.trust_domain.as_ref().unwrap_or(&mesh.trust_domain);
                        if meshconfig["trustDomain"] != trust_domain.as_str() {
                            fail(format!(
                                "mesh trustDomain: {}, not {trust_domain}",
                                meshconfig["trustDomain"]
                            ));
                        }
                        let xds_agent =
                            &meshconfig["defaultConfig"]["proxyMetadata"]["PROXY_CONFIG_XDS_AGENT"];
                        if scenario.multiroot && xds_agent != "true" {
                            fail(format!(
                                "multi-root: proxyMetadata PROXY_CONFIG_XDS_AGENT is {xds_agent} during a root rotation"
                            ));
                        }
                        if meshconfig["defaultConfig"]["meshId"] != mesh.name.as_str() {
                            fail(format!(
                                "meshId: {}, not {}",
                                meshconfig["defaultConfig"]["meshId"], mesh.name
                            ));
                        }
                    }
                }
                match find(
                    objects,
                    "ConfigMap",
                    &format!("istio-sidecar-injector{rev}"),
                ) {
                    None => fail(format!(
                        "injector: no ConfigMap istio-sidecar-injector{rev}"
                    )),
                    Some(cm) => {
                        let values: Value =
                            serde_json::from_str(cm["data"]["values"].as_str().unwrap_or("{}"))
                                .unwrap_or(Value::Null);
                        if values["global"]["network"] != cluster.network.as_str() {
                            fail(format!(
                                "injector network: sidecars get network {}, not {}",
                                values["global"]["network"], cluster.network
                            ));
                        }
                        if values["global"]["multiCluster"]["clusterName"] != cluster.name.as_str()
                        {
                            fail(format!(
                                "injector clusterName: sidecars get cluster {}, not {}",
                                values["global"]["multiCluster"]["clusterName"], cluster.name
                            ));
                        }
                    }
                }
                for hook in of_kind(objects, "MutatingWebhookConfiguration")
                    .flat_map(|m| m["webhooks"].as_array().into_iter().flatten())
                {
                    let service = &hook["clientConfig"]["service"]["name"];
                    if service != format!("istiod{rev}").as_str() {
                        fail(format!("injection webhook: calls Service {service}"));
                    }
                }
            }
            "istiod" => {
                if of_kind(objects, "Deployment").next().is_some() {
                    fail("remote istiod Deployment: a remote runs an istiod".to_string());
                }
                let Some(address) = &primary_address else {
                    continue;
                };
                let inject = format!("/inject/cluster/{}/net/{}", cluster.name, cluster.network);
                let hooks: Vec<&Value> = of_kind(objects, "MutatingWebhookConfiguration")
                    .flat_map(|m| m["webhooks"].as_array().into_iter().flatten())
                    .collect();
                if hooks.is_empty() {
                    fail("injection webhook: none is rendered".to_string());
                }
                for hook in hooks {
                    match webhook_target(&all, &hook["clientConfig"]) {
                        Ok((host, port, path)) => {
                            if (host.as_str(), port, path.as_str())
                                != (address.as_str(), 15017, inject.as_str())
                            {
                                fail(format!(
                                    "injection webhook: {} reaches {host}:{port}{path}, not \
                                     {address}:15017{inject}",
                                    hook["name"]
                                ));
                            }
                        }
                        Err(e) => fail(format!("injection webhook: {}: {e}", hook["name"])),
                    }
                }
                match destination(&all, &format!("istiod{rev}"), 15012) {
                    Ok((host, 15012)) if host == *address => {}
                    Ok((host, port)) => fail(format!(
                        "remote discovery: istiod{rev}:15012 reaches {host}:{port}, not {address}:15012"
                    )),
                    Err(e) => fail(format!("remote discovery: {e}")),
                }
            }
            "base" => {
                if of_kind(objects, "CustomResourceDefinition").count() < 10 {
                    fail("CRDs: the base chart renders fewer than 10 Istio CRDs".to_string());
                }
                for hook in of_kind(objects, "ValidatingWebhookConfiguration")
                    .flat_map(|v| v["webhooks"].as_array().into_iter().flatten())
                {
                    let client = &hook["clientConfig"];
                    if cluster.role == Role::Remote {
                        let Some(address) = &primary_address else {
                            continue;
                        };
                        match webhook_target(&all, client) {
                            Ok((host, 15017, _)) if host == *address => {}
                            Ok((host, port, path)) => fail(format!(
                                "default validator: reaches {host}:{port}{path}, not {address}:15017"
                            )),
                            Err(e) => fail(format!("default validator: {e}")),
                        }
                    } else {
                        let name = client["service"]["name"].as_str().unwrap_or_default();
                        let selects_istiod = find(&all, "Service", name).is_some_and(|s| {
                            let istiod = find(&all, "Deployment", &format!("istiod{rev}"));
                            s["spec"]["selector"].as_object().is_some_and(|sel| {
                                istiod.is_some_and(|d| {
                                    sel.iter().all(|(k, v)| pod_labels(d)[k] == *v)
                                })
                            })
                        });
                        if !selects_istiod {
                            fail(format!(
                                "default validator: Service {name} is not one that selects \
                                 this cluster's istiod{rev}"
                            ));
                        }
                    }
                }
            }
            "gateway" => {
                let Some(deployment) = of_kind(objects, "Deployment").next() else {
                    fail("gateway Deployment: none is rendered".to_string());
                    continue;
                };
                if let Some(r) = &mesh.revision
                    && pod_labels(deployment)["istio.io/rev"] != r.as_str()
                {
                    fail(format!(
                        "gateway revision: pods labelled istio.io/rev {}, not {r}",
                        pod_labels(deployment)["istio.io/rev"]
                    ));
                }
                let Some(service) = of_kind(objects, "Service").next() else {
                    fail("gateway Service: none is rendered".to_string());
                    continue;
                };
                let ports: BTreeSet<(u64, u64)> = service["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let port = p["port"].as_u64()?;
                        Some((port, p["targetPort"].as_u64().unwrap_or(port)))
                    })
                    .collect();
                if file.stem() != "eastwestgateway" {
                    continue;
                }
                let mut needed = Vec::new();
                if multi_network {
                    needed.push(15443);
                }
                if topology.serves_remotes(cluster) {
                    needed.extend([15012, 15017]);
                }
                for port in needed {
                    if !ports.contains(&(port, port)) {
                        fail(format!(
                            "east-west ports: the Service does not expose {port}"
                        ));
                    }
                }
                if multi_network {
                    let network = cluster.network.as_str();
                    if service["metadata"]["labels"]["topology.istio.io/network"] != network {
                        fail(format!(
                            "east-west network: the Service is not labelled \
                             topology.istio.io/network: {network}"
                        ));
                    }
                    if pod_labels(deployment)["topology.istio.io/network"] != network {
                        fail(format!(
                            "east-west network: the pods are not labelled \
                             topology.istio.io/network: {network}"
                        ));
                    }
                    let view = env(deployment);
                    if view
                        .get("ISTIO_META_REQUESTED_NETWORK_VIEW")
                        .map(String::as_str)
                        != Some(network)
                    {
                        fail(format!(
                            "east-west network: ISTIO_META_REQUESTED_NETWORK_VIEW is {:?}, not \
                             {network}",
                            view.get("ISTIO_META_REQUESTED_NETWORK_VIEW")
                        ));
                    }
                }
            }
            "ztunnel" => {
                let Some(ztunnel) = find(objects, "DaemonSet", "ztunnel") else {
                    fail("ztunnel DaemonSet: none is rendered".to_string());
                    continue;
                };
                let env = env(ztunnel);
                if env.get("NETWORK") != Some(&cluster.network) {
                    fail(format!(
                        "ztunnel NETWORK: {:?}, not {}",
                        env.get("NETWORK"),
                        cluster.network
                    ));
                }
                if env.get("ISTIO_META_CLUSTER_ID") != Some(&cluster.name) {
                    fail(format!(
                        "ztunnel CLUSTER_ID: {:?}, not {}",
                        env.get("ISTIO_META_CLUSTER_ID"),
                        cluster.name
                    ));
                }
            }
            "cni" if mesh.ambient => {
                let enabled = find(objects, "ConfigMap", "istio-cni-config")
                    .map(|c| c["data"]["AMBIENT_ENABLED"].clone());
                if enabled != Some(Value::from("true")) {
                    fail(format!("cni ambient: AMBIENT_ENABLED is {enabled:?}"));
                }
            }
            _ => {}
        }
    }

    // istiod takes a primary's network from its namespace's label, which meshc writes beside
    // the Helm values (namespaces.yaml, applied before the Helm lines).
    if let Some(istiod) = files.iter().find(|f| f.chart == "istiod") {
        let text =
            std::fs::read_to_string(scenario.out().join(&cluster.name).join("namespaces.yaml"))
                .unwrap_or_default();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_default();
        let label = docs
            .iter()
            .find(|d| d["kind"] == "Namespace" && d["metadata"]["name"] == "istio-system")
            .map(|d| d["metadata"]["labels"]["topology.istio.io/network"].clone());
        if label != Some(Value::from(cluster.network.as_str())) {
            wrong.push((
                istiod,
                format!(
                    "istio-system network label: namespaces.yaml labels istio-system with {label:?}, not {}",
                    cluster.network
                ),
            ));
        }
    }
    wrong
}

// --- the tests ---------------------------------------------------------------------------

#[test]
fn every_helm_install_line_renders_with_istio_s_own_charts() {
    if !renderer_available() {
        return;
    }
    let started = std::time::Instant::now();
    let mut scenarios: Vec<Scenario> = examples()
        .iter()
        .map(|e| Scenario::file(e, false))
        .collect();
    scenarios.extend(test_topologies().iter().map(|t| Scenario::file(t, true)));
    scenarios.push(Scenario::inline("dns-east-west", DNS_EAST_WEST));
    let rotating = Scenario::rotating("root-rotation", ROTATING, "mesh1");
    let mut sail: Vec<Scenario> = sail_view(&rotating, ROTATING).into_iter().collect();
    assert_eq!(sail.len(), 1, "the rotating mesh installs with Sail too");
    scenarios.push(rotating);
    for (rel, scenario) in examples()
        .iter()
        .chain(test_topologies().iter())
        .zip(&scenarios)
    {
        let text = std::fs::read_to_string(repo(rel)).expect("topology");
        sail.extend(sail_view(scenario, &text));
    }
    assert!(
        sail.len() >= 3,
        "only {} topologies install with Sail",
        sail.len()
    );
    scenarios.extend(sail);

    let mut all = Vec::new();
    let mut rendered = 0;
    for scenario in &scenarios {
        let report = scenario.render();
        rendered += report["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter(|f| f["objects"].as_array().is_some_and(|o| !o.is_empty()))
            .count();
        all.extend(findings(scenario, &report));
    }
    assert!(rendered >= 40, "only {rendered} values files were rendered");

    let mut unexpected = Vec::new();
    let mut used_allowed = vec![false; ALLOWED.len()];
    let mut used_known = vec![false; KNOWN_PROBLEMS.len()];
    for finding in &all {
        if let Some(i) = ALLOWED.iter().position(|k| k.matches(finding)) {
            used_allowed[i] = true;
        } else if let Some(i) = KNOWN_PROBLEMS.iter().position(|k| k.matches(finding)) {
            used_known[i] = true;
            eprintln!("known problem: {finding}");
        } else {
            unexpected.push(finding.to_string());
        }
    }
    let stale: Vec<String> = ALLOWED
        .iter()
        .zip(&used_allowed)
        .chain(KNOWN_PROBLEMS.iter().zip(&used_known))
        .filter(|(_, used)| !**used)
        .map(|(k, _)| format!("{} {:?}: {} ({})", k.chart, k.role, k.finding, k.why))
        .collect();
    eprintln!(
        "{rendered} values files rendered with Istio 1.30.3's charts in {:.1?}",
        started.elapsed()
    );
    assert!(
        unexpected.is_empty(),
        "what Istio's charts make of meshc's Helm values:\n{}",
        unexpected.join("\n")
    );
    assert!(
        stale.is_empty(),
        "entries of ALLOWED/KNOWN_PROBLEMS that match nothing any more (remove them):\n{}",
        stale.join("\n")
    );
}

/// The checks above fail when the values are wrong: one build, its values edited as a user
/// might get them wrong, each edit reported.
#[test]
fn a_wrong_value_is_reported() {
    if !renderer_available() {
        return;
    }
    let scenario = Scenario::file("examples/hybrid/topology.yaml", false);
    let edit = |cluster: &str, file: &str, from: &str, to: &str| {
        let path = scenario.out().join(cluster).join("install/helm").join(file);
        let text = std::fs::read_to_string(&path).expect("values file");
        assert!(text.contains(from), "{cluster}/{file} has no {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    };
    edit(
        "gke-eu-primary",
        "istiod.values.yaml",
        "clusterName: \"gke-eu-primary\"",
        "clusterName: \"gke-eu-primry\"",
    );
    edit(
        "gke-eu-primary",
        "istiod.values.yaml",
        "trustDomain: \"cluster.local\"",
        "trustDomain: \"cluster.locl\"",
    );
    edit(
        "gke-eu-remote",
        "istiod.values.yaml",
        "/net/net-eu",
        "/net/net-us",
    );
    edit(
        "gke-us-remote",
        "istiod.values.yaml",
        "remotePilotAddress: \"198.51.100.30\"",
        "remotePilotAddress: \"198.51.100.31\"",
    );
    edit(
        "gke-us-primary",
        "eastwestgateway.values.yaml",
        "networkGateway: \"net-us\"",
        "networkGateway: \"net-eu\"",
    );
    // A schema error fails the render (Helm validates first): on a file of its own.
    edit(
        "gke-eu-remote",
        "eastwestgateway.values.yaml",
        "name: istio-eastwestgateway\n",
        "name: istio-eastwestgateway\ntypo: true\n",
    );
    edit(
        "gke-us-primary",
        "istiod.values.yaml",
        "global:\n",
        "global:\n  meshNetwork: \"net-us\"\n",
    );
    edit(
        "gke-eu-primary",
        "base.values.yaml",
        "--version \"~1.30.0\"",
        "--version \"~1.30.0\" --post-renderer x",
    );
    let report = scenario.render();
    let found: Vec<String> = findings(&scenario, &report)
        .iter()
        .map(ToString::to_string)
        .collect();
    let text = found.join("\n");
    for expected in [
        "gke-eu-primary/istiod.values.yaml (istiod): essential CLUSTER_ID: Some(\"gke-eu-primry\")",
        "gke-eu-primary/istiod.values.yaml (istiod): essential injector clusterName",
        "gke-eu-primary/istiod.values.yaml (istiod): essential mesh trustDomain: \"cluster.locl\"",
        "gke-eu-remote/istiod.values.yaml (istiod): essential injection webhook",
        "gke-us-remote/istiod.values.yaml (istiod): essential remote discovery: istiod-1-30:15012 reaches 198.51.100.31:15012",
        "gke-us-remote/base.values.yaml (base): essential default validator: reaches 198.51.100.31:15017",
        "gke-us-primary/eastwestgateway.values.yaml (gateway): essential east-west network: the Service is not labelled",
        "gke-us-primary/eastwestgateway.values.yaml (gateway): essential east-west network: ISTIO_META_REQUESTED_NETWORK_VIEW",
        "gke-eu-remote/eastwestgateway.values.yaml (gateway): schema ",
        "gke-eu-remote/eastwestgateway.values.yaml (gateway): error: render: values don't meet",
        "gke-us-primary/istiod.values.yaml (istiod): unread global.meshNetwork = \"net-us\"",
        "gke-eu-primary/base.values.yaml (?): error: option --post-renderer is not understood",
    ] {
        assert!(
            text.contains(expected),
            "not reported: {expected}\nreported:\n{text}"
        );
    }
}
