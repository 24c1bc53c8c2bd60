//! Root rotation end to end, through the real binary: a three-cluster mesh walked through
//! every phase, with `openssl verify` checking at each one that a workload certificate issued
//! by any cluster's signer verifies against every cluster's trust bundle (the invariant that
//! keeps cross-cluster mTLS up while the root changes); the bundles istiod must accept as a
//! reload; the refusals; and interrupted steps, which leave the store before or after them.
//!
//! These scenarios are the fixtures of the rotation's diagnostic codes (E120 to E128).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Env, code, files_under, openssl, stderr, stdout};
use serde_json::Value;

const MESH: &str = "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: mesh1
networks:
  - name: net1
clusters:
  - name: c1
    network: net1
    controlPlane: primary
    apiServer: { url: \"https://10.0.0.1:6443\" }
  - name: c2
    network: net1
    controlPlane: primary
    apiServer: { url: \"https://10.0.0.2:6443\" }
  - name: c3
    network: net1
    controlPlane: primary
    apiServer: { url: \"https://10.0.0.3:6443\" }
";

const CLUSTERS: [&str; 3] = ["c1", "c2", "c3"];

fn rotate(env: &Env, extra: &[&str]) -> Output {
    let mut args = vec!["pki", "rotate-root", "topology.yaml", "--mesh", "mesh1"];
    args.extend_from_slice(extra);
    env.meshc(&args)
}

fn advance(env: &Env, extra: &[&str]) -> Output {
    let mut args = vec!["-o", "out", "--advance"];
    args.extend_from_slice(extra);
    rotate(env, &args)
}

fn build(env: &Env) {
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// The codes of the diagnostics a run printed, in order.
fn codes(out: &Output) -> Vec<String> {
    let err = stderr(out);
    let mut found = Vec::new();
    for part in err.split('[').skip(1) {
        if let Some((code, _)) = part.split_once(']')
            && code.len() == 4
            && (code.starts_with('E') || code.starts_with('W'))
        {
            found.push(code.to_string());
        }
    }
    found
}

fn has_code(out: &Output, code: &str) -> bool {
    codes(out).iter().any(|c| c == code)
}

/// Issues a workload leaf (SPIFFE URI, 1 day) from the signer in `cluster`'s `cacerts`, as
/// istiod would, into `dir`; returns the leaf's path.
fn issue_leaf(env: &Env, cluster: &str, dir: &Path) -> PathBuf {
    let ca = env.export(cluster);
    let key = dir.join(format!("{cluster}-leaf.key"));
    let csr = dir.join(format!("{cluster}-leaf.csr"));
    let leaf = dir.join(format!("{cluster}-leaf.pem"));
    let ext = dir.join("leaf.ext");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:spiffe://cluster.local/ns/default/sa/default\n",
    )
    .expect("ext");
    let p = |p: &Path| p.to_string_lossy().to_string();
    for args in [
        vec![
            "req".to_string(),
            "-new".into(),
            "-newkey".into(),
            "ec".into(),
            "-pkeyopt".into(),
            "ec_paramgen_curve:P-256".into(),
            "-nodes".into(),
            "-keyout".into(),
            p(&key),
            "-subj".into(),
            "/O=workload".into(),
            "-out".into(),
            p(&csr),
        ],
        vec![
            "x509".to_string(),
            "-req".into(),
            "-in".into(),
            p(&csr),
            "-CA".into(),
            p(&ca.join("ca-cert.pem")),
            "-CAkey".into(),
            p(&ca.join("ca-key.pem")),
            "-CAcreateserial".into(),
            "-days".into(),
            "1".into(),
            "-extfile".into(),
            p(&ext),
            "-out".into(),
            p(&leaf),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = openssl(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    leaf
}

/// Whether a leaf of `from`'s signer, presented with `from`'s `cert-chain.pem`, verifies
/// against `to`'s `root-cert.pem`.
fn verifies(env: &Env, leaf: &Path, from: &str, to: &str) -> Result<(), String> {
    let from_dir = env.export(from);
    let to_dir = env.export(to);
    let out = openssl(&[
        "verify",
        "-CAfile",
        &to_dir.join("root-cert.pem").to_string_lossy(),
        "-untrusted",
        &from_dir.join("cert-chain.pem").to_string_lossy(),
        &leaf.to_string_lossy(),
    ]);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{from} → {to}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// At this phase, every cluster's workloads are trusted by every cluster.
fn assert_mesh_trusts_itself(env: &Env, phase: &str) {
    let leaves = env.path(&format!("leaves-{phase}"));
    std::fs::create_dir_all(&leaves).expect("mkdir");
    let mut failures = Vec::new();
    for from in CLUSTERS {
        let leaf = issue_leaf(env, from, &leaves);
        for to in CLUSTERS {
            if let Err(e) = verifies(env, &leaf, from, to) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{phase}:\n{}", failures.join("\n"));
}

/// The distinct certificates (DER) of a PEM bundle, in order, with repeats.
fn certs(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .map(|p| p.expect("PEM").contents)
        .collect()
}

/// istiod (1.20 to 1.29) takes a new root bundle only when one contains the other byte for
/// byte; from 1.30, when one's certificates are a subset of the other's.
fn reload_accepted(old: &[u8], new: &[u8]) -> bool {
    let contains = |a: &[u8], b: &[u8]| a.windows(b.len()).any(|w| w == b);
    contains(old, new) || contains(new, old)
}

fn root_bundle(env: &Env, cluster: &str) -> Vec<u8> {
    env.cacerts(cluster)
        .remove("root-cert.pem")
        .expect("root-cert.pem")
}

fn record(env: &Env) -> Option<Value> {
    let text = std::fs::read_to_string(env.path("pki/mesh1/rotation.json")).ok()?;
    Some(serde_json::from_str(&text).expect("rotation.json is JSON"))
}

fn phase(env: &Env) -> Option<u64> {
    record(env).and_then(|r| r["phase"].as_u64())
}

fn out_files(env: &Env, dir: &str) -> Vec<(String, Vec<u8>)> {
    let root = env.path(dir);
    files_under(&root)
        .into_iter()
        .filter(|f| !f.starts_with('.'))
        .map(|f| {
            let bytes = std::fs::read(root.join(&f)).expect("read");
            (f, bytes)
        })
        .collect()
}

/// A second build of the same topology and store into another directory writes the same
/// bytes.
fn assert_deterministic(env: &Env) {
    let _ = std::fs::remove_dir_all(env.path("again"));
    let out = env.meshc(&["build", "topology.yaml", "-o", "again"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out_files(env, "out"), out_files(env, "again"));
}

/// `meshc diff` names what each cluster's `cacerts` change does to its trust and signer.
fn assert_diff_says(env: &Env, lines: &[&str]) {
    let out = env.meshc(&["diff", "topology.yaml", "-o", "out"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    for line in lines {
        assert_eq!(
            text.matches(line).count(),
            CLUSTERS.len(),
            "`{line}` once per cluster in:\n{text}"
        );
    }
}

#[test]
fn a_three_cluster_mesh_rotates_its_root_without_a_phase_that_breaks_mtls() {
    let env = Env::new(MESH);
    build(&env);
    assert_mesh_trusts_itself(&env, "before");
    let before = root_bundle(&env, "c1");
    assert_eq!(certs(&before).len(), 1);

    // Phase 1: add trust.
    let out = rotate(&env, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("phase 1 of 3"), "{}", stdout(&out));
    assert_eq!(phase(&env), Some(1));
    assert_diff_says(&env, &["trust: {old} → {old, new}"]);
    build(&env);
    assert_deterministic(&env);
    let p1 = root_bundle(&env, "c1");
    for c in CLUSTERS {
        assert_eq!(root_bundle(&env, c), p1, "{c}: one bundle per mesh");
    }
    assert_eq!(certs(&p1).len(), 2);
    assert_eq!(certs(&p1)[0], certs(&before)[0], "the old root comes first");
    assert!(reload_accepted(&before, &p1));
    assert_mesh_trusts_itself(&env, "phase1");
    let rotation_md = std::fs::read_to_string(env.path("out/ROTATION.md")).expect("ROTATION.md");
    assert!(rotation_md.contains("phase 1 of 3"), "{rotation_md}");
    assert!(rotation_md.contains("{old} → {old, new}"), "{rotation_md}");
    for c in CLUSTERS {
        let values =
            std::fs::read_to_string(env.path(&format!("out/{c}/install/helm/istiod.values.yaml")))
                .expect("istiod values");
        let doc: Value = serde_saphyr::from_str(&values).expect("yaml");
        assert_eq!(doc["env"]["ISTIO_MULTIROOT_MESH"], "true", "{values}");
        assert_eq!(
            doc["meshConfig"]["defaultConfig"]["proxyMetadata"]["PROXY_CONFIG_XDS_AGENT"],
            "true"
        );
    }

    // Phase 2: switch signer.
    let out = advance(&env, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(phase(&env), Some(2));
    assert_diff_says(
        &env,
        &["trust: {old, new} → {old, new}", "signer: old → new"],
    );
    build(&env);
    assert_deterministic(&env);
    let p2 = root_bundle(&env, "c1");
    assert_ne!(p2, p1, "phase 2's bundle must differ from phase 1's");
    assert_eq!(certs(&p2).len(), 3);
    assert!(reload_accepted(&p1, &p2));
    let new_root = certs(&p1)[1].clone();
    for c in CLUSTERS {
        let chain = env.cacerts(c).remove("cert-chain.pem").expect("chain");
        assert_eq!(certs(&chain)[1], new_root, "{c}: signed by the new root");
    }
    assert_mesh_trusts_itself(&env, "phase2");
    let md = std::fs::read_to_string(env.path("out/ROTATION.md")).expect("ROTATION.md");
    assert!(md.contains("old → new"), "{md}");

    // Phase 3 waits for workload certificates to be re-issued, unless forced.
    let out = advance(&env, &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(has_code(&out, "E127"), "{}", stderr(&out));
    assert_eq!(phase(&env), Some(2));
    let out = advance(&env, &["--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(has_code(&out, "W125"), "{}", stderr(&out));
    assert_eq!(phase(&env), Some(3));
    assert_diff_says(&env, &["trust: {old, new} → {new}"]);
    build(&env);
    assert_deterministic(&env);
    let p3 = root_bundle(&env, "c1");
    assert_eq!(certs(&p3), vec![new_root.clone()]);
    assert!(reload_accepted(&p2, &p3));
    assert_mesh_trusts_itself(&env, "phase3");
    let root_file = std::fs::read(env.path("pki/mesh1/root-cert.pem")).expect("root");
    assert_eq!(certs(&root_file), vec![new_root]);
    // A workload still holding a certificate of the old root is no longer trusted.
    let old_leaf_dir = env.path("leaves-before");
    let old_leaf = old_leaf_dir.join("c1-leaf.pem");
    let out = openssl(&[
        "verify",
        "-CAfile",
        &env.export("c2").join("root-cert.pem").to_string_lossy(),
        &old_leaf.to_string_lossy(),
    ]);
    assert!(!out.status.success());

    // Finishing removes the record; the next build drops ROTATION.md and the multi-root env.
    let out = advance(&env, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(phase(&env), None);
    build(&env);
    assert!(!env.path("out/ROTATION.md").exists());
    let values = std::fs::read_to_string(env.path("out/c1/install/helm/istiod.values.yaml"))
        .expect("values");
    assert!(!values.contains("ISTIO_MULTIROOT_MESH"), "{values}");
    assert_mesh_trusts_itself(&env, "after");
    let out = env.meshc(&["build", "topology.yaml", "-o", "out", "--check"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn advance_is_refused_until_out_holds_the_current_phase() {
    let env = Env::new(MESH);
    build(&env);
    let out = advance(&env, &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(has_code(&out, "E128"), "no rotation: {}", stderr(&out));
    assert_eq!(code(&rotate(&env, &[])), 0);
    let out = rotate(&env, &[]);
    assert_eq!(code(&out), 2);
    assert!(has_code(&out, "E128"), "started twice: {}", stderr(&out));
    // OUT still holds the old root alone.
    let out = advance(&env, &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(has_code(&out, "E126"), "{}", stderr(&out));
    assert_eq!(phase(&env), Some(1));
    // --advance needs OUT; --force needs --advance.
    assert_eq!(code(&rotate(&env, &["--advance"])), 2);
    assert_eq!(code(&rotate(&env, &["--force"])), 2);
}

#[test]
fn abort_returns_to_the_old_root_from_phase_1_only() {
    let env = Env::new(MESH);
    build(&env);
    let before = root_bundle(&env, "c1");
    let out = rotate(&env, &["--abort"]);
    assert_eq!(code(&out), 2);
    assert!(has_code(&out, "E128"), "{}", stderr(&out));
    assert_eq!(code(&rotate(&env, &[])), 0);
    build(&env);
    let p1 = root_bundle(&env, "c1");
    let out = rotate(&env, &["--abort"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(phase(&env), None);
    build(&env);
    let after = root_bundle(&env, "c1");
    assert_eq!(after, before);
    assert!(reload_accepted(&p1, &after));
    assert!(!env.path("out/ROTATION.md").exists());
    assert_mesh_trusts_itself(&env, "aborted");

    // Past phase 1 workloads hold certificates of the new root: no way back.
    assert_eq!(code(&rotate(&env, &[])), 0);
    build(&env);
    assert_eq!(code(&advance(&env, &[])), 0);
    let out = rotate(&env, &["--abort"]);
    assert_eq!(code(&out), 2);
    assert!(has_code(&out, "E128"), "{}", stderr(&out));
    assert_eq!(phase(&env), Some(2));
    // Nor is a stored intermediate rotated while the rotation's own ones sign.
    let out = env.meshc(&["pki", "rotate", "topology.yaml", "--cluster", "c2"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(has_code(&out, "E128"), "{}", stderr(&out));
}

#[test]
fn switching_signers_is_refused_while_committed_istiod_values_lack_multiroot() {
    let env = Env::new(MESH);
    build(&env);
    assert_eq!(code(&rotate(&env, &[])), 0);
    // A template override that drops istiod's env, used for the build and the advance alike.
    let templates = env.path("templates/install/helm");
    std::fs::create_dir_all(&templates).expect("mkdir");
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/install/helm/istiod.values.yaml.j2"),
    )
    .expect("template");
    std::fs::write(
        templates.join("istiod.values.yaml.j2"),
        original.replace("{% if istiod_env and not remote %}", "{% if false %}"),
    )
    .expect("write");
    let out = env.meshc(&[
        "build",
        "topology.yaml",
        "-o",
        "out",
        "--templates",
        "templates",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = advance(&env, &["--templates", "templates"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        codes(&out).iter().filter(|c| *c == "E122").count(),
        3,
        "{}",
        stderr(&out)
    );
    assert_eq!(phase(&env), Some(1));
}

#[test]
fn a_bring_your_own_root_is_not_rotated_and_an_ambient_mesh_is_warned_about() {
    let env = Env::new(MESH);
    build(&env);
    // Use the generated root as a bring-your-own one.
    std::fs::create_dir_all(env.path("corp")).expect("mkdir");
    std::fs::rename(env.path("pki/mesh1/root-cert.pem"), env.path("corp/ca.pem")).expect("mv");
    std::fs::rename(env.path("pki/mesh1/root-key.pem"), env.path("corp/ca.key")).expect("mv");
    let byo = MESH.replace(
        "  - name: mesh1\n",
        "  - name: mesh1\n    ca:\n      root: { certFile: corp/ca.pem, keyFile: corp/ca.key }\n",
    );
    std::fs::write(env.path("topology.yaml"), byo).expect("write");
    let out = rotate(&env, &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(has_code(&out, "E120"), "{}", stderr(&out));
    assert_eq!(phase(&env), None);

    let external = Env::new(&MESH.replace(
        "  - name: mesh1\n",
        "  - name: mesh1\n    ca: { secrets: external, externalStore: vault }\n",
    ));
    let out = raw(&external, &["build", "topology.yaml", "-o", "out"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = raw(
        &external,
        &["pki", "rotate-root", "topology.yaml", "--mesh", "mesh1"],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(has_code(&out, "E120"), "{}", stderr(&out));

    let ambient = Env::new(&MESH.replace(
        "  - name: mesh1\n",
        "  - name: mesh1\n    dataplane: ambient\n",
    ));
    // (Its warnings quote long URLs, which the printed-key check would take for base64.)
    let out = raw(&ambient, &["build", "topology.yaml", "-o", "out"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = raw(
        &ambient,
        &["pki", "rotate-root", "topology.yaml", "--mesh", "mesh1"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(has_code(&out, "W121"), "{}", stderr(&out));
}

#[test]
fn a_damaged_record_and_a_cluster_joining_in_phase_2_are_reported() {
    let env = Env::new(MESH);
    build(&env);
    assert_eq!(code(&rotate(&env, &[])), 0);
    build(&env);
    assert_eq!(code(&advance(&env, &[])), 0);
    build(&env);
    let joined = format!(
        "{MESH}  - name: c4\n    network: net1\n    controlPlane: primary\n    apiServer: {{ url: \"https://10.0.0.4:6443\" }}\n"
    );
    std::fs::write(env.path("topology.yaml"), &joined).expect("write");
    let out = env.build();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(has_code(&out, "E124"), "{}", stderr(&out));
    std::fs::write(env.path("topology.yaml"), MESH).expect("write");

    let saved = std::fs::read(env.path("pki/mesh1/rotation.json")).expect("record");
    std::fs::write(env.path("pki/mesh1/rotation.json"), "{\"phase\": 7}").expect("damage");
    let out = env.build();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(has_code(&out, "E123"), "{}", stderr(&out));
    let out = env.meshc(&["pki", "status", "topology.yaml"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    std::fs::write(env.path("pki/mesh1/rotation.json"), saved).expect("restore");
    build(&env);
}

#[test]
fn status_shows_the_rotation_and_fails_within_days() {
    let env = Env::new(MESH);
    build(&env);
    assert_eq!(code(&rotate(&env, &[])), 0);
    let out = env.meshc(&["pki", "status", "topology.yaml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("new root (rotation phase 1)"), "{text}");
    assert!(
        text.contains("mesh1: root rotation in phase 1 of 3"),
        "{text}"
    );
    let out = env.meshc(&["pki", "status", "topology.yaml", "--fail-within", "30"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Intermediates live 730 days.
    let out = env.meshc(&["pki", "status", "topology.yaml", "--fail-within", "800"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("within --fail-within 800"),
        "{}",
        stderr(&out)
    );
}

/// meshc run without the check of what it prints.
fn raw(env: &Env, args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("meshc")
        .expect("binary")
        .current_dir(env.dir.path())
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("runs")
}

fn killed_at(env: &Env, failpoint: &str, args: &[&str]) {
    let out = assert_cmd::Command::cargo_bin("meshc")
        .expect("binary")
        .current_dir(env.dir.path())
        .env("NO_COLOR", "1")
        .env("MESHC_FAILPOINT", failpoint)
        .args(args)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.signal(),
        Some(6),
        "{failpoint}: expected the process to abort there: {:?} {}",
        out.status,
        stderr(&out)
    );
}

/// Kills each step at each point of its store write; the next run repairs the store, which
/// then holds the phase before the step or the one after, and the mesh still trusts itself.
#[test]
fn an_interrupted_step_leaves_the_store_before_or_after_it() {
    let steps: [(Option<u64>, &[&str], &[&str]); 4] = [
        (None, &[], &["store:put:staged", "store:put:done"]),
        (
            Some(1),
            &["-o", "out", "--advance"],
            &["store:put:staged", "store:put:done"],
        ),
        (
            Some(2),
            &["-o", "out", "--advance", "--force"],
            &["store:replace-mesh:staged", "store:replace-mesh:swapped"],
        ),
        (Some(3), &["-o", "out", "--advance"], &["store:remove:done"]),
    ];
    for (before, extra, failpoints) in steps {
        for failpoint in failpoints {
            let env = Env::new(MESH);
            build(&env);
            // Walk to the phase before the step.
            for _ in 0..before.unwrap_or(0) {
                let out = if phase(&env).is_none() {
                    rotate(&env, &[])
                } else {
                    advance(&env, &["--force"])
                };
                assert_eq!(code(&out), 0, "{}", stderr(&out));
                build(&env);
            }
            assert_eq!(phase(&env), before);
            let mut args = vec!["pki", "rotate-root", "topology.yaml", "--mesh", "mesh1"];
            args.extend_from_slice(extra);
            killed_at(&env, failpoint, &args);
            // A reader sees a consistent store (or refuses, naming the repair).
            let status = env.meshc(&["pki", "status", "topology.yaml"]);
            assert!(
                matches!(code(&status), 0 | 3),
                "{failpoint}: {}",
                stderr(&status)
            );
            build(&env);
            let after = phase(&env);
            let next = match before {
                None => Some(1),
                Some(3) => None,
                Some(p) => Some(p + 1),
            };
            assert!(
                after == before || after == next,
                "{failpoint}: phase {after:?}, expected {before:?} or {next:?}"
            );
            let leftovers: Vec<String> = files_under(&env.path("pki"))
                .into_iter()
                .filter(|f| f.split('/').any(|part| part.starts_with('.')))
                .collect();
            assert!(leftovers.is_empty(), "{failpoint}: {leftovers:?}");
            assert_mesh_trusts_itself(&env, &format!("killed-{}", failpoint.replace(':', "-")));
        }
    }
}
