//! `gitops:`: what `meshc build` writes to `out/argocd/` and `out/flux/`, checked as the
//! controllers would take it:
//!
//! - every object against Argo CD's and Flux's CRD schemas (`tests/data/crds/gitops/`), with
//!   the library's strict checker (the code behind `--istio-crds`);
//! - every Application an ApplicationSet generates, expanded here (its list elements through
//!   the Go template of `templatePatch`, which uses only field references and `if`/`else`/
//!   `end`) and checked against the Application CRD, with every path it names present in the
//!   tree and every Helm component pointing at the values file the README installs;
//! - `kubectl kustomize` renders `out/flux/` and `out/argocd/`;
//! - each Flux `GitRepository`'s `spec.ignore` (gitignore syntax), applied by `git
//!   check-ignore` to the built tree, keeps exactly the files its Kustomizations apply;
//! - the order: primaries before remotes, and bootstrap, base, control plane, gateways, config.

mod common;

#[path = "common/crds.rs"]
mod crds_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use meshc::crds::Crds;
use serde_json::{Map, Value};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn gitops_crds() -> Crds {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("tests/data/crds/gitops"))
        .expect("tests/data/crds/gitops/")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    Crds::load(&files).unwrap_or_else(|e| panic!("{e}"))
}

/// The topologies with a `gitops:` section.
fn gitops_topologies() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(repo("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path().join("topology.yaml"))
        .chain(common::test_topologies().iter().map(|t| repo(t)))
        .filter(|p| {
            std::fs::read_to_string(p).is_ok_and(|t| t.lines().any(|l| l.starts_with("gitops:")))
        })
        .collect();
    all.sort();
    assert!(all.len() >= 3, "examples with gitops: {all:?}");
    all
}

/// A built tree inside a repository-shaped directory: `<repo>/<gitops.path>` is the output.
struct Built {
    _tmp: tempfile::TempDir,
    /// The repository's root.
    root: PathBuf,
    out: PathBuf,
    name: String,
}

fn build(topology: &Path) -> Built {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(topology).expect("topology");
    let path = text
        .lines()
        .skip_while(|l| !l.starts_with("gitops:"))
        .find_map(|l| l.trim().strip_prefix("path:").map(|p| p.trim().to_string()))
        .unwrap_or_else(|| "out".to_string());
    let root = tmp.path().join("repo");
    let out = root.join(&path);
    common::build_ok(topology, &out, &tmp.path().join("pki"));
    let name = topology
        .parent()
        .and_then(|p| p.file_name())
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Built {
        _tmp: tmp,
        root,
        out,
        name,
    }
}

fn docs(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).expect("file");
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

// A Go template with field references, `if`, `else` and `end` only (what meshc writes).

enum Node {
    Text(String),
    Field(String),
    If(String, Vec<Node>, Vec<Node>),
}

fn parse_template(text: &str) -> Vec<Node> {
    // Tokens: text and actions; `{{-` trims the whitespace before the action.
    let mut tokens: Vec<(bool, String)> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let mut before = rest[..start].to_string();
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("closed action");
        let mut action = after[..end].trim();
        if let Some(a) = action.strip_prefix('-') {
            action = a.trim();
            before = before.trim_end().to_string();
        }
        tokens.push((false, before));
        tokens.push((true, action.to_string()));
        rest = &after[end + 2..];
    }
    tokens.push((false, rest.to_string()));
    let mut pos = 0;
    let nodes = parse_nodes(&tokens, &mut pos);
    assert_eq!(pos, tokens.len(), "unbalanced template");
    nodes
}

fn parse_nodes(tokens: &[(bool, String)], pos: &mut usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    while *pos < tokens.len() {
        let (action, text) = &tokens[*pos];
        if !action {
            nodes.push(Node::Text(text.clone()));
            *pos += 1;
            continue;
        }
        match text.as_str() {
            "else" | "end" => return nodes,
            t if t.starts_with("if ") => {
                let field = t["if ".len()..].trim().trim_start_matches('.').to_string();
                *pos += 1;
                let then = parse_nodes(tokens, pos);
                let mut otherwise = Vec::new();
                if tokens[*pos].1 == "else" {
                    *pos += 1;
                    otherwise = parse_nodes(tokens, pos);
                }
                assert_eq!(tokens[*pos].1, "end");
                *pos += 1;
                nodes.push(Node::If(field, then, otherwise));
            }
            t => {
                let field = t
                    .strip_prefix('.')
                    .unwrap_or_else(|| panic!("unsupported action `{t}`"));
                nodes.push(Node::Field(field.to_string()));
                *pos += 1;
            }
        }
    }
    nodes
}

fn render(nodes: &[Node], element: &Map<String, Value>, out: &mut String) {
    let field = |f: &str| -> String {
        element
            .get(f)
            .unwrap_or_else(|| panic!("missingkey=error: `{f}` not in {element:?}"))
            .as_str()
            .expect("string")
            .to_string()
    };
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Field(f) => out.push_str(&field(f)),
            Node::If(f, then, otherwise) => {
                // `missingkey=error` holds in conditions too.
                let truthy = element
                    .get(f)
                    .or_else(|| panic!("missingkey=error: `{f}` not in {element:?}"))
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                render(if truthy { then } else { otherwise }, element, out);
            }
        }
    }
}

fn substitute(v: &Value, element: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => {
            let mut out = String::new();
            render(&parse_template(s), element, &mut out);
            Value::String(out)
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), substitute(v, element)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, element)).collect()),
        other => other.clone(),
    }
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// The Applications an ApplicationSet with a list generator makes.
fn applications(set: &Value) -> Vec<(Map<String, Value>, Value)> {
    let spec = &set["spec"];
    assert_eq!(spec["goTemplate"], true);
    let patch = spec["templatePatch"].as_str().expect("templatePatch");
    let patch_nodes = parse_template(patch);
    let elements = spec["generators"][0]["list"]["elements"]
        .as_array()
        .expect("elements");
    elements
        .iter()
        .map(|e| {
            let e = e.as_object().expect("element").clone();
            let template = &spec["template"];
            let mut app = serde_json::json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": substitute(&template["metadata"], &e),
                "spec": substitute(&template["spec"], &e),
            });
            app["metadata"]["namespace"] = set["metadata"]["namespace"].clone();
            let mut text = String::new();
            render(&patch_nodes, &e, &mut text);
            let patch: Value = serde_saphyr::from_str(&text)
                .unwrap_or_else(|err| panic!("templatePatch for {e:?}: {err}\n{text}"));
            merge(&mut app, &patch);
            (e, app)
        })
        .collect()
}

fn check(crds: &Crds, what: &str, doc: &Value) {
    if let Err(errors) = crds_common::validate(crds, doc) {
        panic!(
            "{what}: {} {} is refused by its CRD:\n{}",
            doc["kind"],
            doc["metadata"]["name"],
            errors.join("\n")
        );
    }
}

#[test]
fn every_gitops_object_validates_and_every_application_points_at_the_tree() {
    let crds = gitops_crds();
    for topology in gitops_topologies() {
        let built = build(&topology);
        let mut checked = 0;
        for dir in ["argocd", "flux"] {
            for file in yaml_files(&built.out.join(dir)) {
                for doc in docs(&file) {
                    check(&crds, &built.name, &doc);
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 0,
            "{}: nothing under out/argocd or out/flux",
            built.name
        );
        for file in yaml_files(&built.out.join("argocd")) {
            for set in docs(&file) {
                assert_eq!(set["kind"], "ApplicationSet");
                let apps = applications(&set);
                let mut names = std::collections::BTreeSet::new();
                for (element, app) in apps {
                    check(&crds, &built.name, &app);
                    let name = app["metadata"]["name"].as_str().expect("name").to_string();
                    assert!(names.insert(name.clone()), "{name} twice");
                    let dest = &app["spec"]["destination"];
                    assert!(
                        dest["server"].is_string() != dest["name"].is_string(),
                        "{name}: exactly one of server and name: {dest}"
                    );
                    let sources = app["spec"]["sources"].as_array().expect("sources");
                    if element["chart"].as_str().is_some_and(|c| !c.is_empty()) {
                        assert_eq!(sources.len(), 2, "{name}");
                        let values = sources[0]["helm"]["valueFiles"][0]
                            .as_str()
                            .expect("values file");
                        let rel = values.strip_prefix("$values/").expect("$values/");
                        assert!(
                            built.root.join(rel).is_file(),
                            "{name}: {rel} is not in the tree"
                        );
                        assert_eq!(sources[1]["ref"], "values");
                        assert!(
                            sources[1]["repoURL"]
                                .as_str()
                                .is_some_and(|u| u.contains("git.example.com")),
                            "{name}: values from the Git repository"
                        );
                    } else {
                        assert_eq!(sources.len(), 1, "{name}");
                        let path = sources[0]["path"].as_str().expect("path");
                        let dir = built.root.join(path);
                        assert!(
                            dir.is_dir(),
                            "{name}: {path} is not a directory of the tree"
                        );
                        if let Some(include) = sources[0]["directory"]["include"].as_str() {
                            let listed = include.trim_start_matches('{').trim_end_matches('}');
                            for part in listed.split(',') {
                                let found = match part.strip_suffix("/*") {
                                    Some(sub) => dir.join(sub).is_dir(),
                                    None => dir.join(part).is_file(),
                                };
                                assert!(found, "{name}: {part} of {include} is not in {path}");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn argo_cd_installs_primaries_first_and_each_cluster_in_stages() {
    let built = build(&repo("examples/primary-remote/topology.yaml"));
    let set = &docs(&built.out.join("argocd/mesh1.yaml"))[0];
    let steps: Vec<(String, String)> = set["spec"]["strategy"]["rollingSync"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            let values = |i: usize| {
                s["matchExpressions"][i]["values"][0]
                    .as_str()
                    .expect("value")
                    .to_string()
            };
            (values(0), values(1))
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("primary", "bootstrap"),
        ("primary", "base"),
        ("primary", "control-plane"),
        ("primary", "gateways"),
        ("primary", "config"),
        ("remote", "bootstrap"),
        ("remote", "base"),
        ("remote", "control-plane"),
        ("remote", "config"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
    .collect();
    assert_eq!(steps, expected);
    // Every Application falls in exactly one step (RollingSync leaves the others unsynced).
    for (_, app) in applications(set) {
        let labels = &app["metadata"]["labels"];
        let key = (
            labels["meshc.io/role"]
                .as_str()
                .expect("present")
                .to_string(),
            labels["meshc.io/stage"]
                .as_str()
                .expect("present")
                .to_string(),
        );
        assert_eq!(expected.iter().filter(|s| **s == key).count(), 1, "{key:?}");
    }
    // The bootstrap and config Applications share no file.
    let apps: BTreeMap<String, Value> = applications(set)
        .into_iter()
        .map(|(_, a)| {
            (
                a["metadata"]["name"].as_str().expect("present").to_string(),
                a,
            )
        })
        .collect();
    assert_eq!(
        apps["cluster1-bootstrap"]["spec"]["sources"][0]["directory"]["include"],
        "{namespaces.yaml,cacerts.yaml}"
    );
    let config = apps["cluster1-config"]["spec"]["sources"][0]["directory"]["include"]
        .as_str()
        .expect("present");
    assert!(
        !config.contains("cacerts")
            && config.contains("services.yaml")
            && config.contains("istio/*"),
        "{config}"
    );
    assert_eq!(
        apps["cluster1-istiod"]["spec"]["destination"]["name"],
        "cluster1"
    );
    assert_eq!(
        apps["cluster2-istiod"]["spec"]["destination"]["server"],
        "https://192.0.2.20:6443"
    );
}

fn kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The files of `root` that a `.sourceignore` keeps, by `git check-ignore` (gitignore syntax).
fn kept(root: &Path, ignore: &str) -> Vec<String> {
    let git = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(git.path())
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    run(&["init", "-q"]);
    std::fs::write(git.path().join(".git/info/exclude"), ignore).expect("exclude");
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("inside")
                    .to_string_lossy()
                    .into_owned();
                let target = git.path().join(&rel);
                std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
                std::fs::write(&target, b"").expect("touch");
                files.push(rel);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .filter(|f| {
            let status = Command::new("git")
                .args(["check-ignore", "-q", f])
                .current_dir(git.path())
                .status()
                .expect("git runs");
            status.code() == Some(1)
        })
        .collect()
}

#[test]
fn flux_renders_and_each_source_keeps_what_its_kustomizations_apply() {
    let built = build(&repo("examples/primary-remote/topology.yaml"));
    let all = kustomize(&built.out.join("flux"));
    assert!(all.contains("kind: GitRepository") && all.contains("kind: Kustomization"));
    assert!(kustomize(&built.out.join("flux/cluster1")).contains("kind: HelmRelease"));
    kustomize(&built.out.join("argocd"));

    let sources: BTreeMap<String, Value> = docs(&built.out.join("flux/sources.yaml"))
        .into_iter()
        .map(|d| {
            (
                d["metadata"]["name"].as_str().expect("present").to_string(),
                d,
            )
        })
        .collect();
    let ignore = |name: &str| {
        sources[name]["spec"]["ignore"]
            .as_str()
            .expect("ignore")
            .to_string()
    };
    let bootstrap = kept(&built.root, &ignore("meshc-bootstrap"));
    assert_eq!(
        bootstrap,
        [
            "out/cluster1/cacerts.yaml",
            "out/cluster1/namespaces.yaml",
            "out/cluster2/cacerts.yaml",
            "out/cluster2/namespaces.yaml"
        ]
    );
    // The config source keeps, per cluster, exactly its kustomization's resources less the
    // bootstrap files: Flux generates the kustomization from them.
    let config = kept(&built.root, &ignore("meshc-config"));
    for cluster in ["cluster1", "cluster2"] {
        let k: Value = serde_saphyr::from_str(
            &std::fs::read_to_string(built.out.join(cluster).join("kustomization.yaml"))
                .expect("present"),
        )
        .expect("present");
        let mut wanted: Vec<String> = k["resources"]
            .as_array()
            .expect("present")
            .iter()
            .map(|r| format!("out/{cluster}/{}", r.as_str().expect("present")))
            .filter(|r| !r.ends_with("/cacerts.yaml") && !r.ends_with("/namespaces.yaml"))
            .collect();
        wanted.sort();
        let got: Vec<String> = config
            .iter()
            .filter(|f| f.starts_with(&format!("out/{cluster}/")))
            .cloned()
            .collect();
        assert_eq!(got, wanted, "{cluster}");
    }
    assert!(config.iter().all(|f| !f.starts_with("out/flux/")));
    let whole = kept(&built.root, &ignore("meshc"));
    assert!(
        whole.iter().all(|f| f.starts_with("out/"))
            && whole.iter().any(|f| f == "out/flux/cluster1/releases.yaml")
    );

    // Order: bootstrap, then the releases (waited for), then the rest; the remote after its primary.
    let ks: BTreeMap<String, Value> = docs(&built.out.join("flux/clusters.yaml"))
        .into_iter()
        .map(|d| {
            (
                d["metadata"]["name"].as_str().expect("present").to_string(),
                d,
            )
        })
        .collect();
    let deps = |name: &str| -> Vec<String> {
        ks[name]["spec"]["dependsOn"]
            .as_array()
            .map_or_else(Vec::new, |a| {
                a.iter()
                    .map(|d| d["name"].as_str().expect("present").to_string())
                    .collect()
            })
    };
    assert_eq!(deps("cluster1-bootstrap"), Vec::<String>::new());
    assert_eq!(deps("cluster1-istio"), ["cluster1-bootstrap"]);
    assert_eq!(deps("cluster1-config"), ["cluster1-istio"]);
    assert_eq!(
        deps("cluster2-istio"),
        ["cluster2-bootstrap", "cluster1-istio"]
    );
    assert_eq!(
        ks["cluster1-bootstrap"]["spec"]["prune"], false,
        "the CA is never pruned"
    );
    assert!(
        ks["cluster1-istio"]["spec"]["kubeConfig"].is_null(),
        "applied where Flux runs"
    );
    assert_eq!(
        ks["cluster2-config"]["spec"]["kubeConfig"]["secretRef"]["name"],
        "cluster2-kubeconfig"
    );

    // Each release installs its values file, chained in the README's order.
    let releases = docs(&built.out.join("flux/cluster1/releases.yaml"));
    let names: Vec<&str> = releases
        .iter()
        .map(|r| r["spec"]["releaseName"].as_str().expect("present"))
        .collect();
    assert_eq!(names, ["istio-base", "istiod", "istio-eastwestgateway"]);
    assert_eq!(
        releases[1]["spec"]["dependsOn"][0]["name"],
        "cluster1-istio-base"
    );
    let values: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(built.out.join("cluster1/install/helm/istiod.values.yaml"))
            .expect("present"),
    )
    .expect("present");
    assert_eq!(releases[1]["spec"]["values"], values);
}
