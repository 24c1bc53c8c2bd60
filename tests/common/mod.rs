//! Shared by the binary-level tests: a topology in a temporary directory, meshc run in it, and
//! the check that nothing meshc prints carries key material.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;
use base64::Engine as _;
use serde_json::Value;

/// Two meshes: `east` (c1, c2) and `west` (c3), all primaries.
pub const TOPOLOGY: &str = "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: east
  - name: west
networks:
  - name: net-east
  - name: net-west
clusters:
  - name: c1
    mesh: east
    network: net-east
    controlPlane: primary
    apiServer: { url: \"https://10.0.0.1:6443\" }
  - name: c2
    mesh: east
    network: net-east
    controlPlane: primary
    apiServer: { url: \"https://10.0.0.2:6443\" }
  - name: c3
    mesh: west
    network: net-west
    controlPlane: primary
    apiServer: { url: \"https://10.0.0.3:6443\" }
";

/// A topology, its store and its output in a temporary directory.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new(topology: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("topology.yaml"), topology).expect("write topology");
        Env { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs meshc in the directory; asserts that nothing it prints carries key material.
    pub fn meshc(&self, args: &[&str]) -> Output {
        let out = Command::cargo_bin("meshc")
            .expect("binary")
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            // The no-op record of each test's builds stays in the test's directory.
            .env("XDG_CACHE_HOME", self.dir.path().join(".cache"))
            .args(args)
            .output()
            .expect("runs");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_key_material(&printed);
        for key in self.stored_keys() {
            for line in key.lines().filter(|l| !l.starts_with("-----")) {
                assert!(
                    !printed.contains(line),
                    "a line of a stored key was printed:\n{printed}"
                );
            }
        }
        out
    }

    pub fn build(&self) -> Output {
        self.meshc(&["build", "topology.yaml", "-o", "out"])
    }

    pub fn stored_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut stack = vec![self.path("pki")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().ends_with("key.pem") {
                    keys.push(std::fs::read_to_string(&p).unwrap_or_default());
                }
            }
        }
        keys
    }

    /// The four entries of a cluster's cacerts Secret, decoded.
    pub fn cacerts(&self, cluster: &str) -> BTreeMap<String, Vec<u8>> {
        let text = std::fs::read_to_string(self.path(&format!("out/{cluster}/cacerts.yaml")))
            .expect("cacerts.yaml written");
        let doc: Value = serde_saphyr::from_str(&text).expect("cacerts.yaml is YAML");
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["kind"], "Secret");
        assert_eq!(doc["type"], "Opaque");
        assert_eq!(doc["metadata"]["name"], "cacerts");
        assert_eq!(doc["metadata"]["namespace"], "istio-system");
        assert_eq!(
            doc["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "meshc"
        );
        doc["data"]
            .as_object()
            .expect("data")
            .iter()
            .map(|(k, v)| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().expect("string"))
                    .expect("base64");
                (k.clone(), bytes)
            })
            .collect()
    }

    /// Writes a cluster's decoded cacerts to files, for openssl.
    pub fn export(&self, cluster: &str) -> PathBuf {
        let dir = self.path(&format!("exported/{cluster}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (k, v) in self.cacerts(cluster) {
            std::fs::write(dir.join(k), v).expect("write");
        }
        dir
    }
}

pub fn assert_no_key_material(printed: &str) {
    assert!(
        !printed.contains("PRIVATE KEY"),
        "key material printed:\n{printed}"
    );
    let longest_base64_run = printed
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(
        longest_base64_run < 40,
        "a long base64 run was printed:\n{printed}"
    );
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Every file under `dir`, relative, `/`-separated, sorted.
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("list").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("inside");
                found.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    found.sort();
    found
}

/// Each JSON diagnostic as `CODE LINE:COLUMN`, the form rule fixtures are written in.
pub fn codes_at(diags: &[Value]) -> Vec<String> {
    diags
        .iter()
        .map(|d| {
            format!(
                "{} {}:{}",
                d["code"].as_str().unwrap_or("?"),
                d["line"],
                d["column"]
            )
        })
        .collect()
}

/// Runs openssl (the tests check what meshc writes with it).
pub fn openssl(args: &[&str]) -> Output {
    std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (.ci/run installs it)")
}

/// The topologies under `tests/data/topologies/` (paths relative to the crate), sorted: the
/// shapes the examples do not show.
pub fn test_topologies() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/topologies");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/data/topologies/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            format!(
                "tests/data/topologies/{}",
                p.file_name().expect("name").to_string_lossy()
            )
        })
        .collect();
    names.sort();
    names
}

/// Runs `meshc build TOPOLOGY -o OUT --pki PKI` and asserts that it succeeds.
pub fn build_ok(topology: &std::path::Path, out: &std::path::Path, pki: &std::path::Path) {
    let run = Command::cargo_bin("meshc")
        .expect("binary")
        .arg("build")
        .arg(topology)
        .arg("-o")
        .arg(out)
        .arg("--pki")
        .arg(pki)
        .output()
        .expect("runs");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}: meshc build failed\n{}",
        topology.display(),
        String::from_utf8_lossy(&run.stderr)
    );
}
