//! The PKI store end to end, through the real binary: what is written (checked with
//! `openssl verify` and parsed back with x509-parser), what is kept, what is refused, and that
//! no key material ever reaches the terminal.
//!
//! These scenarios are the fixtures of the store's diagnostic codes (E070 to W078): each one
//! builds a store, damages it one way, and asserts the code, exit status and file named.

mod common;

use std::path::Path;

use common::{Env, TOPOLOGY, assert_no_key_material, code, codes_at, openssl, stderr, stdout};
use serde_json::Value;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

fn verify(dir: &Path) {
    let out = openssl(&[
        "verify",
        "-CAfile",
        &dir.join("root-cert.pem").to_string_lossy(),
        "-untrusted",
        &dir.join("cert-chain.pem").to_string_lossy(),
        &dir.join("ca-cert.pem").to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "openssl verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pem_blocks(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .map(|p| p.expect("PEM").contents)
        .collect()
}

fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

#[test]
fn every_chain_verifies_and_the_root_is_shared_within_a_mesh() {
    let env = Env::new(TOPOLOGY);
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for cluster in ["c1", "c2", "c3"] {
        verify(&env.export(cluster));
    }
    let (c1, c2, c3) = (env.cacerts("c1"), env.cacerts("c2"), env.cacerts("c3"));
    for data in [&c1, &c2, &c3] {
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            [
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "root-cert.pem"
            ]
        );
    }
    assert_eq!(
        c1["root-cert.pem"], c2["root-cert.pem"],
        "one root per mesh"
    );
    assert_ne!(
        c1["root-cert.pem"], c3["root-cert.pem"],
        "each mesh its own root"
    );
    assert_eq!(
        c1["root-cert.pem"],
        std::fs::read(env.path("pki/east/root-cert.pem")).expect("stored root")
    );
    assert_eq!(
        c1["ca-key.pem"],
        std::fs::read(env.path("pki/east/c1/ca-key.pem")).expect("stored key")
    );

    // The extensions, read back.
    let mut serials = Vec::new();
    for (cluster, data) in [("c1", &c1), ("c2", &c2), ("c3", &c3)] {
        let chain = pem_blocks(&data["cert-chain.pem"]);
        assert_eq!(chain.len(), 2, "cert-chain.pem: intermediate then root");
        assert_eq!(chain[0], pem_blocks(&data["ca-cert.pem"])[0]);
        assert_eq!(chain[1], pem_blocks(&data["root-cert.pem"])[0]);
        let (_, ca) = X509Certificate::from_der(&chain[0]).expect("intermediate");
        assert_eq!(
            ca.subject().to_string(),
            format!("O=Istio, CN=Intermediate CA, L={cluster}")
        );
        assert_eq!(ca.issuer().to_string(), "O=Istio, CN=Root CA");
        let bc = ca.basic_constraints().expect("ok").expect("present");
        assert!(bc.critical && bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, Some(0));
        let ku = ca.key_usage().expect("ok").expect("present");
        assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
        assert!(ku.value.digital_signature());
        let san = ca.subject_alternative_name().expect("ok").expect("present");
        assert_eq!(
            san.value.general_names,
            vec![GeneralName::DNSName("istiod.istio-system.svc")]
        );
        let days =
            (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp()) / 86_400;
        assert_eq!(
            days, 730,
            "intermediateValidityDays default, plus the backdating hour"
        );
        serials.push(ca.raw_serial().to_vec());
        let (_, root) = X509Certificate::from_der(&chain[1]).expect("root");
        assert_eq!(root.subject().to_string(), "O=Istio, CN=Root CA");
        let bc = root.basic_constraints().expect("ok").expect("present");
        assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint.is_none());
        assert!(ca.verify_signature(Some(root.public_key())).is_ok());
    }
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 3, "random serials");

    // Keys are owner-only, in the store and in the output.
    #[cfg(unix)]
    for rel in [
        "pki/east/root-key.pem",
        "pki/east/c1/ca-key.pem",
        "out/c1/cacerts.yaml",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path(rel))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{rel}");
    }
}

#[test]
fn every_key_algorithm_is_issued_and_verifies() {
    for (algorithm, oid_check) in [
        ("ecdsa-p384", "secp384r1"),
        ("rsa-2048", "2048 bit"),
        ("rsa-4096", "4096 bit"),
    ] {
        let topology = TOPOLOGY.replace(
            "  - name: east\n",
            &format!("  - name: east\n    ca: {{ keyAlgorithm: {algorithm}, intermediateValidityDays: 90 }}\n"),
        );
        let env = Env::new(&topology);
        let out = env.build();
        assert_eq!(code(&out), 0, "{algorithm}: {}", stderr(&out));
        let dir = env.export("c1");
        verify(&dir);
        let text = openssl(&[
            "x509",
            "-noout",
            "-text",
            "-in",
            &dir.join("ca-cert.pem").to_string_lossy(),
        ]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains(oid_check), "{algorithm}: {text}");
        let status = env.meshc(&["pki", "status", "topology.yaml", "--format", "json"]);
        let rows: Vec<Value> = serde_json::from_slice(&status.stdout).expect("json");
        let c1 = rows
            .iter()
            .find(|r| r["cluster"] == "c1")
            .expect("row for c1");
        assert_eq!(c1["algorithm"], algorithm);
        assert_eq!(c1["daysLeft"], 89);
    }
}

#[test]
fn a_second_build_is_byte_identical_and_writes_nothing() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let before: Vec<_> = ["c1", "c2", "c3"]
        .iter()
        .map(|c| {
            let p = env.path(&format!("out/{c}/cacerts.yaml"));
            (
                std::fs::read(&p).expect("read"),
                std::fs::metadata(&p)
                    .expect("meta")
                    .modified()
                    .expect("mtime"),
            )
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = env.build();
    assert_eq!(code(&out), 0);
    for c in ["c1", "c2", "c3"] {
        let line = format!("out/{c}: 0 created, 0 changed, 0 removed, ");
        assert!(stdout(&out).contains(&line), "{}", stdout(&out));
    }
    assert!(!stdout(&out).contains("created ca-"), "{}", stdout(&out));
    for (c, (bytes, mtime)) in ["c1", "c2", "c3"].iter().zip(before) {
        let p = env.path(&format!("out/{c}/cacerts.yaml"));
        assert_eq!(std::fs::read(&p).expect("read"), bytes, "{c}");
        assert_eq!(
            std::fs::metadata(&p)
                .expect("meta")
                .modified()
                .expect("mtime"),
            mtime,
            "{c} was rewritten"
        );
    }
    let check = env.meshc(&["build", "topology.yaml", "-o", "out", "--check"]);
    assert_eq!(code(&check), 0, "{}", stderr(&check));
}

#[test]
fn deleting_one_intermediate_regenerates_only_that_one() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let (c1, c2, c3) = (env.cacerts("c1"), env.cacerts("c2"), env.cacerts("c3"));
    std::fs::remove_dir_all(env.path("pki/east/c2")).expect("delete c2");

    let check = env.meshc(&["build", "topology.yaml", "-o", "out", "--check"]);
    assert_eq!(code(&check), 1, "a store missing material is stale");
    let locked = env.meshc(&["build", "topology.yaml", "-o", "out", "--locked"]);
    assert_eq!(code(&locked), 3);
    assert!(stderr(&locked).contains("--locked"), "{}", stderr(&locked));
    assert!(
        !env.path("pki/east/c2").exists(),
        "--locked created nothing"
    );

    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("pki/east/c2: created ca-cert.pem, ca-key.pem, cert-chain.pem\n"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("out/c2: 0 created, 1 changed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(env.cacerts("c1"), c1);
    assert_eq!(env.cacerts("c3"), c3);
    let new_c2 = env.cacerts("c2");
    assert_ne!(new_c2["ca-key.pem"], c2["ca-key.pem"]);
    assert_eq!(new_c2["root-cert.pem"], c2["root-cert.pem"], "same root");
    verify(&env.export("c2"));
}

#[test]
fn rotate_replaces_one_intermediate_under_the_same_root() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let (c1, c2) = (env.cacerts("c1"), env.cacerts("c2"));
    let out = env.meshc(&["pki", "rotate", "topology.yaml", "--cluster", "c1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("new intermediate for `c1`"),
        "{}",
        stdout(&out)
    );
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let new_c1 = env.cacerts("c1");
    assert_ne!(new_c1["ca-cert.pem"], c1["ca-cert.pem"]);
    assert_ne!(new_c1["ca-key.pem"], c1["ca-key.pem"]);
    assert_eq!(new_c1["root-cert.pem"], c1["root-cert.pem"]);
    assert_eq!(env.cacerts("c2"), c2, "other clusters untouched");
    verify(&env.export("c1"));

    let out = env.meshc(&["pki", "rotate", "topology.yaml", "--cluster", "nope"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no cluster `nope`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn status_lists_every_root_and_intermediate() {
    let env = Env::new(TOPOLOGY);
    let before = env.meshc(&["pki", "status", "topology.yaml"]);
    assert_eq!(code(&before), 0);
    assert_eq!(
        stdout(&before).matches("missing").count(),
        5,
        "{}",
        stdout(&before)
    );
    assert_eq!(code(&env.build()), 0);
    let out = env.meshc(&["pki", "status", "topology.yaml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("MESH  CLUSTER  ALGORITHM   SUBJECT"),
        "{table}"
    );
    assert_eq!(lines.len(), 6, "{table}");
    assert!(
        lines[1].starts_with("east  (root)   ecdsa-p256  O=Istio, CN=Root CA"),
        "{table}"
    );
    assert!(
        lines[2].contains("O=Istio, CN=Intermediate CA, L=c1"),
        "{table}"
    );
    assert!(lines[2].contains("  729        ok"), "{table}");
}

// --- damaged stores and bad roots: each a clear diagnostic -------------------------------

/// Runs a build that must fail; returns (exit code, stderr).
fn failing_build(env: &Env) -> (i32, String) {
    let before = std::fs::read(env.path("out/c1/cacerts.yaml")).ok();
    let out = env.build();
    if let Some(before) = before {
        // Compared without printing: the file holds key material.
        let kept = std::fs::read(env.path("out/c1/cacerts.yaml")).expect("kept") == before;
        assert!(
            kept,
            "a failed build leaves the output as it was (exit {:?})",
            out.status.code()
        );
    }
    (code(&out), stderr(&out))
}

#[test]
fn a_key_that_does_not_match_is_named() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    std::fs::copy(
        env.path("pki/east/c2/ca-key.pem"),
        env.path("pki/east/c1/ca-key.pem"),
    )
    .expect("swap key");
    let (status, err) = failing_build(&env);
    assert_eq!(status, 3, "{err}");
    assert!(err.contains("E071"), "{err}");
    assert!(
        err.contains("pki/east/c1/ca-key.pem: not the private key of"),
        "{err}"
    );
    assert!(
        err.contains("topology.yaml:10:11"),
        "points at cluster c1: {err}"
    );
    assert!(
        err.contains("meshc pki rotate TOPOLOGY --cluster c1"),
        "{err}"
    );
    assert!(
        err.contains("the PKI store pki is damaged: nothing was written"),
        "{err}"
    );
    // Rotation is the repair.
    let out = env.meshc(&["pki", "rotate", "topology.yaml", "--cluster", "c1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&env.build()), 0);
}

#[test]
fn a_truncated_pem_names_the_file_and_line() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let path = env.path("pki/east/c2/ca-cert.pem");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, &text[..text.len() / 2]).expect("truncate");
    let (status, err) = failing_build(&env);
    assert_eq!(status, 3, "{err}");
    assert!(err.contains("E075"), "{err}");
    assert!(
        err.contains("pki/east/c2/ca-cert.pem: line 1: `BEGIN CERTIFICATE` has no matching `END` (the file is truncated)"),
        "{err}"
    );
}

#[test]
fn a_key_readable_by_others_is_refused() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    set_mode(&env.path("pki/west/root-key.pem"), 0o644);
    let (status, err) = failing_build(&env);
    if cfg!(unix) {
        assert_eq!(status, 3, "{err}");
        assert!(err.contains("E076"), "{err}");
        assert!(
            err.contains(
                "pki/west/root-key.pem: the private key is readable by other users (mode 0644)"
            ),
            "{err}"
        );
        assert!(err.contains("chmod 600 pki/west/root-key.pem"), "{err}");
    }
}

#[test]
fn an_intermediate_from_another_root_does_not_chain() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    // c3's intermediate (mesh west) planted as c1's (mesh east).
    for f in ["ca-cert.pem", "ca-key.pem", "cert-chain.pem"] {
        std::fs::copy(
            env.path(&format!("pki/west/c3/{f}")),
            env.path(&format!("pki/east/c1/{f}")),
        )
        .expect("copy");
    }
    let (status, err) = failing_build(&env);
    assert_eq!(status, 3, "{err}");
    assert!(err.contains("E072"), "{err}");
    assert!(
        err.contains("does not chain to the mesh root pki/east/root-cert.pem"),
        "{err}"
    );
}

#[test]
fn a_certificate_without_its_key_is_incomplete() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    std::fs::remove_file(env.path("pki/east/root-key.pem")).expect("delete key");
    let (status, err) = failing_build(&env);
    assert_eq!(status, 3, "{err}");
    assert!(err.contains("E077"), "{err}");
    assert!(
        err.contains("pki/east/root-key.pem: missing, while pki/east/root-cert.pem exists"),
        "{err}"
    );

    // A missing root with intermediates still present is not silently replaced either.
    std::fs::remove_file(env.path("pki/east/root-cert.pem")).expect("delete cert");
    let (status, err) = failing_build(&env);
    assert_eq!(status, 3, "{err}");
    assert!(
        err.contains("the mesh root is missing but intermediates signed by it exist (c1, c2)"),
        "{err}"
    );
}

#[test]
fn a_changed_key_algorithm_keeps_the_stored_material_with_a_warning() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let topology = TOPOLOGY.replace(
        "  - name: west\n",
        "  - name: west\n    ca: { keyAlgorithm: ecdsa-p384 }\n",
    );
    std::fs::write(env.path("topology.yaml"), topology).expect("write");
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("W078").count(), 2, "root and c3: {err}");
    assert!(
        err.contains("the stored root is ecdsa-p256 but ca.keyAlgorithm is ecdsa-p384"),
        "{err}"
    );
}

/// Issues a certificate with the stored east root, valid from `from` to `to` days from now,
/// and plants it (with its key) as c1's intermediate.
fn plant_intermediate(env: &Env, from_days: i64, to_days: i64) {
    let root_key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(env.path("pki/east/root-key.pem")).expect("root key"),
    )
    .expect("parse root key");
    let root_pem = std::fs::read_to_string(env.path("pki/east/root-cert.pem")).expect("root");
    let issuer = rcgen::Issuer::from_ca_cert_pem(&root_pem, &root_key).expect("issuer");
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "Istio");
    dn.push(rcgen::DnType::CommonName, "Intermediate CA");
    dn.push(rcgen::DnType::LocalityName, "c1");
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from_days);
    params.not_after = now + time::Duration::days(to_days);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("sign");
    let dir = env.path("pki/east/c1");
    std::fs::write(dir.join("ca-cert.pem"), cert.pem()).expect("cert");
    std::fs::write(dir.join("ca-key.pem"), key.serialize_pem()).expect("key");
    set_mode(&dir.join("ca-key.pem"), 0o600);
    std::fs::write(dir.join("cert-chain.pem"), cert.pem() + &root_pem).expect("chain");
}

#[test]
fn an_expired_intermediate_is_an_error_and_an_expiring_one_a_warning() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    plant_intermediate(&env, -400, -2);
    let (status, err) = failing_build(&env);
    assert_eq!(status, 3, "{err}");
    assert!(err.contains("E073"), "{err}");
    assert!(
        err.contains("pki/east/c1/ca-cert.pem: the certificate expired on"),
        "{err}"
    );
    assert!(
        err.contains("meshc pki rotate TOPOLOGY --cluster c1"),
        "{err}"
    );
    let status_out = env.meshc(&["pki", "status", "topology.yaml"]);
    assert_eq!(code(&status_out), 3);
    assert!(
        stdout(&status_out).contains("expired"),
        "{}",
        stdout(&status_out)
    );

    plant_intermediate(&env, -1, 10);
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("W074"), "{err}");
    assert!(err.contains("the certificate expires in 9 days"), "{err}");
    let denied = env.meshc(&["build", "topology.yaml", "-o", "out", "--deny-warnings"]);
    assert_eq!(code(&denied), 2);
}

// --- bring-your-own roots -------------------------------------------------------------

fn byo_topology(extra: &str) -> String {
    TOPOLOGY.replace(
        "  - name: east\n",
        &format!(
            "  - name: east\n    ca:\n      root:\n        certFile: corp/ca.pem\n        keyFile: corp/ca.key\n{extra}"
        ),
    )
}

/// Runs openssl in the environment's directory.
fn openssl_in(env: &Env, args: &str) {
    let out = std::process::Command::new("openssl")
        .current_dir(env.dir.path())
        .args(args.split_whitespace())
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `corp/ca.pem`, self-signed with a new P-256 key `corp/ca.key` (mode 0600), with `subject`
/// and the given `-addext` extensions.
fn corp_self_signed(env: &Env, subject: &str, extensions: &[&str]) {
    corp_dir(env);
    openssl_in(
        env,
        "ecparam -name prime256v1 -genkey -noout -out corp/ca.key",
    );
    let mut args =
        format!("req -x509 -new -key corp/ca.key -out corp/ca.pem -days 365 -subj {subject}");
    for ext in extensions {
        args.push_str(" -addext ");
        args.push_str(ext);
    }
    openssl_in(env, &args);
    set_mode(&env.path("corp/ca.key"), 0o600);
}

fn corp_dir(env: &Env) {
    std::fs::create_dir_all(env.path("corp")).expect("mkdir");
}

#[test]
fn a_corporate_root_signs_the_intermediates_and_its_key_is_never_copied() {
    // An RSA root with a PKCS#1 key, as older tooling writes it.
    let env = Env::new(&byo_topology(""));
    corp_dir(&env);
    openssl_in(&env, "genrsa -traditional -out corp/ca.key 2048");
    openssl_in(
        &env,
        "req -x509 -new -key corp/ca.key -out corp/ca.pem -days 365 -subj /O=Corp/CN=Corp-Root -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
    );
    set_mode(&env.path("corp/ca.key"), 0o600);
    let validate = env.meshc(&["validate", "topology.yaml"]);
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let c1 = env.cacerts("c1");
    verify(&env.export("c1"));
    assert_eq!(
        pem_blocks(&c1["root-cert.pem"]),
        pem_blocks(&std::fs::read(env.path("corp/ca.pem")).expect("corp root"))
    );
    assert!(
        !env.path("pki/east/root-cert.pem").exists(),
        "the corporate root is not copied"
    );
    assert!(!env.path("pki/east/root-key.pem").exists());
    let corp_key = std::fs::read_to_string(env.path("corp/ca.key")).expect("key");
    let body: String = corp_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for cluster in ["c1", "c2", "c3"] {
        let text = std::fs::read_to_string(env.path(&format!("out/{cluster}/cacerts.yaml")))
            .expect("cacerts");
        let decoded: String = env
            .cacerts(cluster)
            .values()
            .map(|v| String::from_utf8_lossy(v).replace('\n', ""))
            .collect();
        assert!(!text.contains(&body[..60]) && !decoded.contains(&body[..60]));
    }
}

#[test]
fn a_corporate_issuing_ca_below_its_root_gives_the_full_chain() {
    // corp root -> issuing CA (SEC1 EC key with parameters) -> the clusters' intermediates.
    let env = Env::new(&byo_topology(""));
    corp_dir(&env);
    openssl_in(&env, "ecparam -name prime256v1 -genkey -out corp/root.key");
    openssl_in(
        &env,
        "req -x509 -new -key corp/root.key -out corp/root.pem -days 365 -subj /O=Corp/CN=Corp-Root -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
    );
    openssl_in(&env, "ecparam -name prime256v1 -genkey -out corp/ca.key");
    openssl_in(
        &env,
        "req -new -key corp/ca.key -out corp/ca.csr -subj /O=Corp/CN=Mesh-Issuing",
    );
    std::fs::write(
        env.path("corp/ext.cnf"),
        "basicConstraints=critical,CA:TRUE,pathlen:1\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .expect("ext");
    openssl_in(
        &env,
        "x509 -req -in corp/ca.csr -CA corp/root.pem -CAkey corp/root.key -CAcreateserial -out corp/issuing.pem -days 200 -extfile corp/ext.cnf",
    );
    let issuing = std::fs::read_to_string(env.path("corp/issuing.pem")).expect("issuing");
    let root = std::fs::read_to_string(env.path("corp/root.pem")).expect("root");
    std::fs::write(env.path("corp/ca.pem"), format!("{issuing}{root}")).expect("chain file");
    set_mode(&env.path("corp/ca.key"), 0o600);
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let c1 = env.cacerts("c1");
    assert_eq!(
        pem_blocks(&c1["root-cert.pem"]),
        pem_blocks(root.as_bytes())
    );
    let chain = pem_blocks(&c1["cert-chain.pem"]);
    assert_eq!(chain.len(), 3, "intermediate, issuing CA, root");
    assert_eq!(chain[1], pem_blocks(issuing.as_bytes())[0]);
    verify(&env.export("c1"));

    // The same file in the wrong order is refused at the certFile line.
    std::fs::write(env.path("corp/ca.pem"), format!("{root}{issuing}")).expect("reorder");
    let out = env.meshc(&["validate", "topology.yaml", "--format", "json"]);
    assert_eq!(code(&out), 2);
    let diags: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    let codes = codes_at(&diags);
    assert!(codes.contains(&"E071 8:18".to_string()), "{codes:?}");
    assert!(codes.contains(&"E072 7:19".to_string()), "{codes:?}");
}

#[test]
fn a_leaf_given_as_root_is_refused_at_its_line() {
    let env = Env::new(&byo_topology(""));
    corp_self_signed(
        &env,
        "/CN=www.example.com",
        &[
            "basicConstraints=critical,CA:FALSE",
            "extendedKeyUsage=serverAuth",
        ],
    );
    let out = env.meshc(&["validate", "topology.yaml", "--format", "json"]);
    assert_eq!(code(&out), 2);
    let diags: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    // The fixture's clusters have no reader tokens or CAs (W080, W081): only errors count.
    let diags: Vec<Value> = diags
        .into_iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0]["code"], "E070");
    assert_eq!(
        (diags[0]["line"].as_u64(), diags[0]["column"].as_u64()),
        (Some(7), Some(19))
    );
    let message = diags[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "corp/ca.pem: `CN=www.example.com` is not a CA certificate (basicConstraints CA:FALSE)"
        ),
        "{message}"
    );
    let (status, err) = failing_build(&env);
    assert_eq!(
        status, 2,
        "a bad bring-your-own root is a topology error: {err}"
    );
    assert!(err.contains("E070"), "{err}");
    assert!(!env.path("pki").exists(), "nothing created");
    assert!(!env.path("out").exists(), "nothing written");
}

#[test]
fn a_missing_or_encrypted_root_key_is_a_topology_error() {
    let env = Env::new(&byo_topology(""));
    corp_dir(&env);
    openssl_in(
        &env,
        "req -x509 -newkey rsa:2048 -passout pass:secret -keyout corp/ca.key -out corp/ca.pem -days 30 -subj /CN=Corp -addext basicConstraints=critical,CA:TRUE",
    );
    set_mode(&env.path("corp/ca.key"), 0o600);
    let out = env.meshc(&["validate", "topology.yaml"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("E075"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the key is encrypted"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(env.path("corp/ca.key")).expect("rm");
    let out = env.meshc(&["validate", "topology.yaml"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("corp/ca.key: cannot be read: no such file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn external_secrets_hold_no_key_material() {
    let topology = TOPOLOGY.replace(
        "  - name: west\n",
        "  - name: west\n    ca: { secrets: external, externalStore: SecretStore/vault }\n",
    );
    let env = Env::new(&topology);
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(env.path("out/c3/cacerts.yaml")).expect("written");
    assert_no_key_material(&text);
    let doc: Value = serde_saphyr::from_str(&text).expect("yaml");
    assert_eq!(doc["apiVersion"], "external-secrets.io/v1");
    assert_eq!(doc["kind"], "ExternalSecret");
    assert_eq!(doc["metadata"]["namespace"], "istio-system");
    assert_eq!(doc["spec"]["secretStoreRef"]["kind"], "SecretStore");
    assert_eq!(doc["spec"]["secretStoreRef"]["name"], "vault");
    assert_eq!(doc["spec"]["target"]["name"], "cacerts");
    let data = doc["spec"]["data"].as_array().expect("data");
    let keys: Vec<&str> = data
        .iter()
        .filter_map(|d| d["secretKey"].as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "ca-cert.pem",
            "ca-key.pem",
            "cert-chain.pem",
            "root-cert.pem"
        ]
    );
    assert!(
        data.iter()
            .all(|d| d["remoteRef"]["key"] == "istio-cacerts-c3")
    );
    // The material itself is still made and kept in the store, for upload.
    assert!(env.path("pki/west/c3/ca-key.pem").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("out/c3/cacerts.yaml"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}

#[test]
fn a_corporate_root_with_a_repeated_attribute_is_refused_before_anything_is_made() {
    let env = Env::new(&byo_topology(""));
    corp_self_signed(
        &env,
        "/DC=com/DC=example/OU=PKI/CN=Corp-Root",
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign",
        ],
    );
    let out = env.meshc(&["validate", "topology.yaml", "--format", "json"]);
    assert_eq!(code(&out), 2);
    let diags: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    // The fixture's clusters have no reader tokens or CAs (W080, W081): only errors count.
    let diags: Vec<Value> = diags
        .into_iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0]["code"], "E079");
    assert_eq!(
        (diags[0]["line"].as_u64(), diags[0]["column"].as_u64()),
        (Some(7), Some(19))
    );
    let (status, err) = failing_build(&env);
    assert_eq!(status, 2, "{err}");
    assert!(!env.path("out").exists() && !env.path("pki").exists());
}

#[test]
fn a_key_labelled_as_another_format_is_refused() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let path = env.path("pki/east/c1/ca-key.pem");
    let text = std::fs::read_to_string(&path).expect("key");
    std::fs::write(&path, text.replace("PRIVATE KEY", "RSA PRIVATE KEY")).expect("relabel");
    let (status, err) = failing_build(&env);
    assert_eq!(status, 3, "{err}");
    assert!(err.contains("E075"), "{err}");
    assert!(
        err.contains("pki/east/c1/ca-key.pem: line 1: the key is labelled PKCS#1 (RSA) but holds a PKCS#8 key"),
        "{err}"
    );
}

#[test]
fn a_directory_in_place_of_a_certificate_is_named() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let path = env.path("pki/west/c3/ca-cert.pem");
    std::fs::remove_file(&path).expect("rm");
    std::fs::create_dir(&path).expect("mkdir");
    let (status, err) = failing_build(&env);
    assert_eq!(status, 3, "{err}");
    assert!(
        err.contains("pki/west/c3/ca-cert.pem: not a regular file"),
        "{err}"
    );
}

#[test]
fn the_store_can_live_elsewhere_but_must_be_a_directory() {
    let env = Env::new(TOPOLOGY);
    let out = env.meshc(&[
        "build",
        "topology.yaml",
        "-o",
        "out",
        "--pki",
        "keys/mesh-pki",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("keys/mesh-pki/east/root-key.pem").exists());
    assert!(!env.path("pki").exists());
    std::fs::write(env.path("not-a-dir"), "x").expect("file");
    for args in [
        &["build", "topology.yaml", "-o", "out", "--pki", "not-a-dir"][..],
        &["pki", "status", "topology.yaml", "--pki", "not-a-dir"][..],
        &[
            "pki",
            "rotate",
            "topology.yaml",
            "--cluster",
            "c1",
            "--pki",
            "not-a-dir",
        ][..],
    ] {
        let out = env.meshc(args);
        assert_eq!(code(&out), 3, "{args:?}");
        assert!(
            stderr(&out).contains("not-a-dir is not a directory"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn the_expiry_warning_starts_thirty_days_out() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    plant_intermediate(&env, -1, 31);
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("W074"), "{}", stderr(&out));
    plant_intermediate(&env, -1, 29);
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("W074"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("expires in 28 days"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rotation_swaps_the_whole_directory_and_leaves_nothing_behind() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let out = env.meshc(&["pki", "rotate", "topology.yaml", "--cluster", "c3"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut names: Vec<String> = std::fs::read_dir(env.path("pki/west"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["c3", "root-cert.pem", "root-key.pem"]);
    let mut files: Vec<String> = std::fs::read_dir(env.path("pki/west/c3"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(files, ["ca-cert.pem", "ca-key.pem", "cert-chain.pem"]);
    set_mode(&env.path("pki/west/c3/ca-key.pem"), 0o600);
    let out = env.meshc(&["pki", "status", "topology.yaml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn status_marks_a_damaged_root_and_what_it_could_not_check() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    std::fs::copy(
        env.path("pki/west/root-key.pem"),
        env.path("pki/east/root-key.pem"),
    )
    .expect("swap root key");
    let out = env.meshc(&["pki", "status", "topology.yaml", "--format", "json"]);
    assert_eq!(code(&out), 3);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    let east: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["mesh"] == "east")
        .map(|r| {
            (
                r["cluster"].as_str().unwrap_or("(root)"),
                r["chain"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        east,
        [
            ("(root)", "damaged"),
            ("c1", "unchecked: no usable root"),
            ("c2", "unchecked: no usable root")
        ]
    );
    assert!(stderr(&out).contains("E071"), "{}", stderr(&out));
}

#[test]
fn locked_builds_may_rewrite_a_missing_cert_chain() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let chain = std::fs::read(env.path("pki/east/c2/cert-chain.pem")).expect("chain");
    std::fs::remove_file(env.path("pki/east/c2/cert-chain.pem")).expect("rm");
    let out = env.meshc(&["build", "topology.yaml", "-o", "out", "--locked"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(env.path("pki/east/c2/cert-chain.pem")).expect("chain"),
        chain
    );
}
