//! `meshc init`, through the binary: every model's starter validates and builds as written
//! (its only findings are the reader tokens and API server CAs that exist once the clusters do,
//! which build reports too), the `.gitignore` keeps the PKI store and the tokens out of Git,
//! the workflow is the one docs/ci.md shows, and nothing that exists is overwritten.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

const MODELS: [&str; 5] = [
    "primary-remote",
    "multi-primary",
    "hybrid",
    "ambient",
    "openshift",
];

/// The findings a starter may have: a reader token (W080) and an API server CA (W081) that
/// can only be fetched from a cluster once its output is applied.
const NOT_FETCHED_YET: [&str; 2] = ["W080", "W081"];

fn meshc(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("meshc")
        .expect("binary")
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The warning codes of human diagnostics (`warning[W080]`), and whether any error was shown.
fn codes(stderr: &str) -> (BTreeSet<String>, bool) {
    let mut found = BTreeSet::new();
    for part in stderr.split("warning[").skip(1) {
        if let Some(code) = part.get(..4) {
            found.insert(code.to_string());
        }
    }
    // Warnings past the third of a code are summed up as `more warning W080`.
    for part in stderr.split("more warning ").skip(1) {
        if let Some(code) = part.get(..4) {
            found.insert(code.to_string());
        }
    }
    (found, stderr.contains("error["))
}

#[test]
fn every_model_validates_and_builds_as_written() {
    for model in MODELS {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = meshc(dir.path(), &["init", "--model", model, "repo"]);
        assert_eq!(out.status.code(), Some(0), "{model}: {}", text(&out.stderr));
        let repo_dir = dir.path().join("repo");
        for file in [
            "topology.yaml",
            ".gitignore",
            ".github/workflows/meshc.yaml",
        ] {
            assert!(repo_dir.join(file).is_file(), "{model}: {file} written");
        }
        let printed = text(&out.stdout);
        assert!(
            printed.contains("meshc build topology.yaml -o out/"),
            "{printed}"
        );

        let out = meshc(
            &repo_dir,
            &["validate", "topology.yaml", "--format", "json"],
        );
        assert_eq!(out.status.code(), Some(0), "{model}: {}", text(&out.stdout));
        let diags: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).expect("JSON diagnostics");
        let validated: BTreeSet<String> = diags
            .iter()
            .map(|d| d["code"].as_str().unwrap_or_default().to_string())
            .collect();
        for d in &diags {
            assert_eq!(d["severity"], "warning", "{model}: {d}");
        }
        assert!(
            validated
                .iter()
                .all(|c| NOT_FETCHED_YET.contains(&c.as_str())),
            "{model}: {validated:?}"
        );

        let out = meshc(&repo_dir, &["build", "topology.yaml", "-o", "out"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{model}: {stderr}");
        let (built, errors) = codes(&stderr);
        assert!(!errors, "{model}: {stderr}");
        assert_eq!(built, validated, "{model}: build and validate agree");
        assert!(repo_dir.join("out/README.md").is_file(), "{model}");

        // What CI runs on the committed tree.
        let out = meshc(
            &repo_dir,
            &["build", "topology.yaml", "-o", "out", "--check", "--locked"],
        );
        assert_eq!(out.status.code(), Some(0), "{model}: {}", text(&out.stderr));
    }
}

/// The starter with its commented `gitops:` block turned on.
fn with_gitops(topology: &str) -> String {
    let mut on = false;
    let mut out = String::new();
    for line in topology.lines() {
        if line == "# gitops:" {
            on = true;
            out.push_str("gitops:\n");
            continue;
        }
        match line.strip_prefix("#   ") {
            Some(rest) if on => {
                out.push_str("  ");
                out.push_str(rest);
            }
            _ => {
                on = false;
                out.push_str(line);
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn every_model_builds_argo_cd_and_flux_objects_once_gitops_is_uncommented() {
    for model in MODELS {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            meshc(dir.path(), &["init", "--model", model]).status.code(),
            Some(0)
        );
        let path = dir.path().join("topology.yaml");
        let starter = std::fs::read_to_string(&path).expect("topology.yaml");
        let turned_on = with_gitops(&starter);
        assert!(turned_on.contains("\ngitops:\n  repository: "), "{model}");
        std::fs::write(&path, turned_on).expect("write");
        let out = meshc(
            dir.path(),
            &["validate", "topology.yaml", "--format", "json"],
        );
        assert_eq!(out.status.code(), Some(0), "{model}: {}", text(&out.stdout));
        let diags: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).expect("JSON diagnostics");
        for d in &diags {
            let code = d["code"].as_str().unwrap_or_default();
            assert!(NOT_FETCHED_YET.contains(&code), "{model}: {d}");
        }
        let out = meshc(dir.path(), &["build", "topology.yaml", "-o", "out"]);
        assert_eq!(out.status.code(), Some(0), "{model}: {}", text(&out.stderr));
        assert!(dir.path().join("out/argocd").is_dir(), "{model}");
        assert!(dir.path().join("out/flux").is_dir(), "{model}");
    }
}

#[test]
fn the_starter_is_commented_and_names_its_model() {
    for (model, shape) in [
        ("primary-remote", "PRIMARY-REMOTE"),
        ("multi-primary", "MULTI-PRIMARY"),
        ("hybrid", "HYBRID"),
        ("ambient", "AMBIENT"),
        ("openshift", "OPENSHIFT"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = meshc(dir.path(), &["init", "--model", model]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{model}: the default DIR is `.`"
        );
        let topology =
            std::fs::read_to_string(dir.path().join("topology.yaml")).expect("topology.yaml");
        let line = topology
            .lines()
            .find(|l| l.starts_with("# Model: "))
            .unwrap_or_default();
        assert!(line.contains(shape), "{model}: {line}");
        let comments = topology.lines().filter(|l| l.contains('#')).count();
        assert!(comments > 30, "{model}: {comments} comment lines");
    }
}

#[test]
fn gitignore_keeps_the_store_and_the_tokens_out_of_git() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = meshc(dir.path(), &["init", "--model", "primary-remote"]);
    assert_eq!(out.status.code(), Some(0));
    let out = meshc(dir.path(), &["build", "topology.yaml", "-o", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::create_dir_all(dir.path().join("secrets")).expect("secrets/");
    std::fs::write(dir.path().join("secrets/cluster2.token"), "token").expect("token");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(dir.path())
            .args(args)
            .output()
    };
    let Ok(init) = git(&["init", "-q"]) else {
        eprintln!("skipped: no git");
        return;
    };
    assert!(init.status.success());
    for ignored in [
        "pki/mesh1/root-key.pem",
        "pki/mesh1/cluster1/ca-key.pem",
        "pki/mesh1/root-cert.pem",
        "secrets/cluster2.token",
    ] {
        assert!(dir.path().join(ignored).exists() || ignored.starts_with("secrets"));
        let out = git(&["check-ignore", "-q", ignored]).expect("git");
        assert!(out.status.success(), "{ignored} is ignored");
    }
    for kept in [
        "topology.yaml",
        "out/cluster1/cacerts.yaml",
        "out/README.md",
        ".github/workflows/meshc.yaml",
    ] {
        let out = git(&["check-ignore", "-q", kept]).expect("git");
        assert!(!out.status.success(), "{kept} is committed");
    }
}

#[test]
fn the_workflow_is_the_one_docs_ci_shows() {
    let doc = std::fs::read_to_string(repo("docs/ci.md")).expect("docs/ci.md");
    let workflow =
        std::fs::read_to_string(repo("starters/github-workflow.yaml")).expect("workflow");
    assert!(
        doc.contains(&workflow),
        "docs/ci.md shows starters/github-workflow.yaml verbatim"
    );
    let readme = std::fs::read_to_string(repo("README.md")).expect("README.md");
    assert!(
        readme.contains(&workflow),
        "README.md shows starters/github-workflow.yaml verbatim"
    );
    // The GitLab job: the other YAML block of the page.
    let gitlab = doc
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```\n").next())
        .find(|b| b.starts_with("meshc:"))
        .expect("the GitLab job");
    let job: serde_json::Value = serde_saphyr::from_str(gitlab).expect("the GitLab job is YAML");
    assert_eq!(
        job["meshc"]["artifacts"]["reports"]["codequality"],
        "gl-code-quality-report.json"
    );
    let script = job["meshc"]["script"].to_string();
    for step in [
        "meshc validate topology.yaml --format json",
        "meshc diff --from old.yaml topology.yaml --format markdown",
        "merge_requests/$CI_MERGE_REQUEST_IID/notes",
        "meshc build topology.yaml -o out/ --check --locked",
    ] {
        assert!(script.contains(step), "{step}: {script}");
    }
    let parsed: serde_json::Value = serde_saphyr::from_str(&workflow).expect("YAML");
    assert_eq!(
        parsed["jobs"]["review"]["permissions"]["pull-requests"],
        "write"
    );
    for step in [
        "meshc validate topology.yaml --format json",
        "::\\(.severity) file=",
        "meshc build topology.yaml -o out/ --check --locked",
        "meshc diff --from",
        "--format markdown",
        "gh pr comment",
    ] {
        assert!(workflow.contains(step), "{step}");
    }
}

#[test]
fn existing_files_are_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".gitignore"), "mine\n").expect("write");
    let out = meshc(dir.path(), &["init", "--model", "hybrid"]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains(".gitignore already exists: nothing was written"),
        "{err}"
    );
    assert!(
        !dir.path().join("topology.yaml").exists(),
        "nothing was written"
    );
    assert!(!dir.path().join(".github").exists(), "nothing was written");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).expect("read"),
        "mine\n"
    );

    // A second init over a first: refused, the first one's files as they were.
    let other = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        meshc(other.path(), &["init", "--model", "ambient"])
            .status
            .code(),
        Some(0)
    );
    let before = std::fs::read(other.path().join("topology.yaml")).expect("read");
    let out = meshc(other.path(), &["init", "--model", "hybrid"]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains("topology.yaml"), "{err}");
    assert!(err.contains("already exist:"), "{err}");
    assert_eq!(
        std::fs::read(other.path().join("topology.yaml")).expect("read"),
        before
    );

    // An unknown model is a usage error; --help says what exit 3 means here.
    assert_eq!(
        meshc(other.path(), &["init", "--model", "mesh"])
            .status
            .code(),
        Some(2)
    );
    let help = text(&meshc(other.path(), &["init", "--help"]).stdout);
    assert!(help.contains("the exit code is 3"), "{help}");
}

/// A topology with one error (E012 at 9:14) and one warning (W024 at 6:11).
const INVALID: &str = "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: m
networks:
  - name: network1
clusters:
  - name: c1
    network: netwrk1
    controlPlane: primary
";

/// Runs a CI script with bash in `dir`, the meshc under test first on the PATH; `None` when
/// bash or jq is missing.
fn run_script(dir: &Path, script: &str) -> Option<Output> {
    let jq = std::process::Command::new("jq").arg("--version").output();
    if jq.is_err() {
        eprintln!("skipped: no jq");
        return None;
    }
    let bin = assert_cmd::cargo::cargo_bin("meshc");
    let path = format!(
        "{}:{}",
        bin.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::process::Command::new("bash")
        .args(["-e", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("RUNNER_TEMP", dir)
        .env("NO_COLOR", "1")
        .output()
        .ok()
}

#[test]
fn the_ci_annotations_point_at_the_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("topology.yaml"), INVALID).expect("write");
    let workflow: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo("starters/github-workflow.yaml")).expect("workflow"),
    )
    .expect("YAML");
    let step = workflow["jobs"]["review"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Validate"))
        })
        .expect("the validate step");
    let Some(out) = run_script(dir.path(), step["run"].as_str().expect("run")) else {
        return;
    };
    assert_eq!(out.status.code(), Some(2), "the job fails as validate does");
    let lines = text(&out.stdout);
    assert!(
        lines.contains(
            "::error file=topology.yaml,line=9,col=14,title=E012::unknown network `netwrk1` (help: did you mean `network1`?)\n"
        ),
        "{lines}"
    );
    assert!(
        lines.contains("::warning file=topology.yaml,line=6,col=11,title=W024::"),
        "{lines}"
    );

    // GitLab: the code quality report.
    let doc = std::fs::read_to_string(repo("docs/ci.md")).expect("docs/ci.md");
    let gitlab = doc
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```\n").next())
        .find(|b| b.starts_with("meshc:"))
        .expect("the GitLab job");
    let job: serde_json::Value = serde_saphyr::from_str(gitlab).expect("YAML");
    let first = job["meshc"]["script"][0]
        .as_str()
        .expect("the validate script");
    let out = run_script(dir.path(), first).expect("jq found above");
    assert_ne!(out.status.code(), Some(0), "the job fails");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("gl-code-quality-report.json")).expect("the report"),
    )
    .expect("JSON");
    let e012 = report
        .as_array()
        .expect("an array")
        .iter()
        .find(|i| i["check_name"] == "E012")
        .expect("E012 reported");
    assert_eq!(e012["severity"], "major");
    assert_eq!(e012["location"]["path"], "topology.yaml");
    assert_eq!(e012["location"]["lines"]["begin"], 9);
    assert_eq!(e012["fingerprint"], "E012:topology.yaml:9:14");
}
