//! `--istio-crds` end to end: the real binary, the repository's copies of Istio's and the
//! Gateway API's CRDs, and what a user sees: exit codes, codes at lines and columns, the
//! underlined span and the help, and that a refused build writes nothing.

mod common;

use std::path::{Path, PathBuf};

use common::{Env, code, codes_at, stderr, stdout};

/// Runs meshc in the topology's directory, without the key-material check of [`Env::meshc`]
/// (JSON paths such as `/destinationRules/0/trafficPolicy/...` look like base64 to it): for
/// `validate`, which makes no key material.
fn run(env: &Env, args: &[&str]) -> std::process::Output {
    assert_eq!(args[0], "validate");
    assert_cmd::Command::cargo_bin("meshc")
        .expect("binary")
        .current_dir(env.dir.path())
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("runs")
}
use serde_json::Value;

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

fn istio() -> String {
    repo("tests/data/crds/istio-1.30.3-crd-all.gen.yaml")
}

fn gateway_api() -> String {
    repo("tests/data/crds/gateway-api-v1.5.1.yaml")
}

/// One primary, one service; `rest` is appended (destinationRules, istioConfig).
fn topology(rest: &str) -> String {
    format!(
        "\
apiVersion: meshc/v1alpha1
kind: Topology
meshes:
  - name: mesh1
networks:
  - name: network1
clusters:
  - name: cluster1
    network: network1
    controlPlane: primary
    apiServer: {{ url: \"https://10.0.0.1:6443\" }}
services:
  - name: web
    namespace: shop
    ports: [{{ name: http, port: 8080 }}]
{rest}"
    )
}

/// Lines 16 to 27 of [`topology`]: a DestinationRule with four problems the CRD finds.
const BAD_RULE: &str = "\
destinationRules:
  - name: web
    host: web
    trafficPolicy:
      loadBalancer:
        localityLbSetting: { enabled: false }
      tls:
        mode: MUTUAL_TLS
      outlierDetection:
        consecutive5xxErrorz: 7
        maxEjectionPercent: \"ten\"
";

/// Runs `meshc validate --format json` with CRD files; (exit code, diagnostics).
fn validate_json(env: &Env, crds: &[String]) -> (i32, Vec<Value>) {
    let mut args = vec!["validate", "topology.yaml", "--format", "json"];
    for c in crds {
        args.extend(["--istio-crds", c.as_str()]);
    }
    let out = run(env, &args);
    let diags = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}{}", stdout(&out), stderr(&out)));
    (code(&out), diags)
}

fn by_code<'a>(diags: &'a [Value], code: &str) -> Vec<&'a Value> {
    diags.iter().filter(|d| d["code"] == code).collect()
}

#[test]
fn violations_are_reported_at_their_lines_in_json() {
    let env = Env::new(&topology(BAD_RULE));
    let (exit, diags) = validate_json(&env, &[istio()]);
    assert_eq!(exit, 2, "{diags:#?}");
    assert_eq!(
        codes_at(&diags),
        ["E091 23:15", "E090 25:9", "E091 26:29"],
        "{diags:#?}"
    );

    let typo = by_code(&diags, "E090")[0];
    assert_eq!(typo["severity"], "error");
    assert_eq!(typo["file"], "topology.yaml");
    assert_eq!(typo["length"], "consecutive5xxErrorz".len());
    assert_eq!(
        typo["path"],
        "/destinationRules/0/trafficPolicy/outlierDetection/consecutive5xxErrorz"
    );
    assert!(
        typo["message"]
            .as_str()
            .is_some_and(|m| m.contains("`consecutive5xxErrorz`") && m.contains("outlierDetection")),
        "{typo:#?}"
    );
    assert_eq!(typo["help"], "did you mean `consecutive5xxErrors`?");

    let invalid = by_code(&diags, "E091");
    let mode = invalid[0];
    assert_eq!(mode["path"], "/destinationRules/0/trafficPolicy/tls/mode");
    assert!(
        mode["message"]
            .as_str()
            .is_some_and(|m| m.contains("MUTUAL_TLS")),
        "{mode:#?}"
    );
    assert!(
        mode["help"]
            .as_str()
            .is_some_and(|h| h.contains("`ISTIO_MUTUAL`") && h.contains("`MUTUAL`")),
        "{mode:#?}"
    );
    let ten = invalid[1];
    assert_eq!(
        ten["path"],
        "/destinationRules/0/trafficPolicy/outlierDetection/maxEjectionPercent"
    );
    assert_eq!(ten["length"], "\"ten\"".len());
    assert!(
        ten["message"]
            .as_str()
            .is_some_and(|m| m.contains("expected an integer, found a string")),
        "{ten:#?}"
    );
}

#[test]
fn violations_are_underlined_in_human_output() {
    let env = Env::new(&topology(BAD_RULE));
    let out = env.meshc(&["validate", "topology.yaml", "--istio-crds", &istio()]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("error[E090]"), "{err}");
    assert!(err.contains("[topology.yaml:25:9]"), "{err}");
    assert!(err.contains("consecutive5xxErrorz: 7"), "{err}");
    // The underline is as long as the key.
    assert!(
        err.contains(&"─".repeat("consecutive5xxErrorz".len() / 2)),
        "{err}"
    );
    assert!(err.contains("unknown field"), "{err}");
    assert!(
        err.contains("help: did you mean `consecutive5xxErrors`?"),
        "{err}"
    );
    assert!(err.contains("error[E091]"), "{err}");
    assert!(err.contains("[topology.yaml:26:29]"), "{err}");
    assert!(err.contains("topology.yaml: 3 errors"), "{err}");
    assert!(stdout(&out).is_empty(), "no `valid` line: {}", stdout(&out));
}

#[test]
fn without_the_flag_the_same_topology_is_valid() {
    // The verbatim Istio parts are meshc's to pass through: only the CRDs can judge them.
    let env = Env::new(&topology(BAD_RULE));
    let (exit, diags) = validate_json(&env, &[]);
    assert_eq!(exit, 0, "{diags:#?}");
}

#[test]
fn an_authorization_policy_with_an_unknown_field() {
    let env = Env::new(&topology(
        "\
istioConfig:
  - apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: { name: allow-get, namespace: shop }
    spec:
      action: ALLOW
      rules:
        - to: [{ operation: { method: [GET] } }]
",
    ));
    let (exit, diags) = validate_json(&env, &[istio()]);
    assert_eq!(exit, 2);
    assert_eq!(codes_at(&diags), ["E090 23:31"], "{diags:#?}");
    assert_eq!(
        diags[0]["path"],
        "/istioConfig/0/spec/rules/0/to/0/operation/method"
    );
    assert_eq!(diags[0]["help"], "did you mean `methods`?");
}

#[test]
fn an_http_route_is_checked_only_with_the_gateway_api_bundle() {
    let env = Env::new(&topology(
        "\
istioConfig:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: { name: web, namespace: shop }
    spec:
      parentRefs: [{ name: web, kind: Service, group: \"\" }]
      rules:
        - backendRefs: [{ name: web, port: 8080, weight: heavy }]
",
    ));
    let (exit, diags) = validate_json(&env, &[istio()]);
    assert_eq!(exit, 0, "Istio's CRDs do not define HTTPRoute: {diags:#?}");

    let (exit, diags) = validate_json(&env, &[istio(), gateway_api()]);
    assert_eq!(exit, 2);
    assert_eq!(codes_at(&diags), ["E091 23:58"], "{diags:#?}");
    assert_eq!(
        diags[0]["path"],
        "/istioConfig/0/spec/rules/0/backendRefs/0/weight"
    );
}

#[test]
fn a_version_the_crds_do_not_serve_is_shown_at_api_version() {
    let env = Env::new(&topology(
        "\
istioConfig:
  - apiVersion: telemetry.istio.io/v1
    kind: Telemetry
    metadata: { name: default, namespace: shop }
    spec: {}
",
    ));
    let old = repo("tests/data/crds/telemetry-v1alpha1-only.yaml");
    let (exit, diags) = validate_json(&env, &[old]);
    assert_eq!(exit, 2);
    assert_eq!(codes_at(&diags), ["E092 17:17"], "{diags:#?}");
    assert!(
        diags[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("served: v1alpha1")),
        "{diags:#?}"
    );
    assert_eq!(
        diags[0]["help"],
        "use `telemetry.istio.io/v1alpha1`, or pass the CRDs of the version that serves it"
    );
}

#[test]
fn every_example_validates_clean_with_both_crd_files() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&examples).expect("examples/") {
        let topology = entry.expect("entry").path().join("topology.yaml");
        if !topology.exists() {
            continue;
        }
        let out = assert_cmd::Command::cargo_bin("meshc")
            .expect("binary")
            .env("NO_COLOR", "1")
            .args(["validate", "--format", "json"])
            .arg(&topology)
            .args(["--istio-crds", &istio(), "--istio-crds", &gateway_api()])
            .output()
            .expect("runs");
        let diags: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
        let errors: Vec<&Value> = diags.iter().filter(|d| d["severity"] == "error").collect();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {errors:#?}{}",
            topology.display(),
            stderr(&out)
        );
        assert!(errors.is_empty(), "{}: {errors:#?}", topology.display());
        n += 1;
    }
    assert!(n >= 6, "only {n} examples");
}

#[test]
fn a_refused_build_writes_neither_out_nor_the_pki_store() {
    let env = Env::new(&topology(BAD_RULE));
    let out = env.meshc(&[
        "build",
        "topology.yaml",
        "-o",
        "out",
        "--istio-crds",
        &istio(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error[E090]") && err.contains("[topology.yaml:25:9]"),
        "{err}"
    );
    assert!(!env.path("out").exists(), "out/ was written");
    assert!(!env.path("pki").exists(), "key material was made");

    // The same build, without the flag, is the one that writes.
    let out = env.meshc(&["build", "topology.yaml", "-o", "out"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("out/cluster1").is_dir());
}

#[test]
fn a_clean_build_with_the_crds_writes_its_output() {
    let env = Env::new(&topology(
        &BAD_RULE
            .replace("consecutive5xxErrorz", "consecutive5xxErrors")
            .replace("MUTUAL_TLS", "ISTIO_MUTUAL")
            .replace("\"ten\"", "10"),
    ));
    let out = env.meshc(&[
        "build",
        "topology.yaml",
        "-o",
        "out",
        "--istio-crds",
        &istio(),
        "--istio-crds",
        &gateway_api(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("out/cluster1/istio").is_dir());
}

/// Runs validate and build with one CRD file; both must exit 3 naming it and write nothing.
fn assert_environment_error(env: &Env, crd: &Path, says: &str) {
    let crd = crd.display().to_string();
    for args in [
        vec![
            "validate",
            "topology.yaml",
            "--format",
            "json",
            "--istio-crds",
            &crd,
        ],
        vec!["build", "topology.yaml", "-o", "out", "--istio-crds", &crd],
    ] {
        let out = if args[0] == "build" {
            env.meshc(&args)
        } else {
            run(env, &args)
        };
        let err = stderr(&out);
        assert_eq!(code(&out), 3, "{args:?}: {err}");
        assert!(err.contains(&crd), "{args:?}: the file is named: {err}");
        assert!(err.contains(says), "{args:?}: `{says}` in {err}");
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
        assert!(!env.path("out").exists() && !env.path("pki").exists());
    }
}

#[test]
fn an_unreadable_crd_file_is_an_environment_error() {
    let env = Env::new(&topology(""));
    assert_environment_error(&env, &env.path("missing.yaml"), "cannot read the CRD file");
    std::fs::create_dir(env.path("a-directory")).expect("mkdir");
    assert_environment_error(&env, &env.path("a-directory"), "cannot read the CRD file");
    std::fs::write(env.path("latin1.yaml"), b"kind: \xe9t\xe9\n").expect("write");
    assert_environment_error(&env, &env.path("latin1.yaml"), "not UTF-8");
}

#[test]
fn a_file_without_crds_is_an_environment_error() {
    let env = Env::new(&topology(""));
    let write = |name: &str, text: &str| -> PathBuf {
        let p = env.path(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let none = "holds no CustomResourceDefinition";
    assert_environment_error(
        &env,
        &write(
            "configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n",
        ),
        none,
    );
    assert_environment_error(&env, &write("empty.yaml", ""), none);
    assert_environment_error(&env, &write("topology-itself.yaml", &topology("")), none);
    assert_environment_error(
        &env,
        &write(
            "not-yaml.yaml",
            "kind: [CustomResourceDefinition\n  spec: {\n",
        ),
        "not a YAML file of CRDs",
    );
}

#[test]
fn hostile_crd_files_never_panic() {
    let env = Env::new(&topology(
        "\
istioConfig:
  - apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: { name: default, namespace: shop }
    spec: { mtls: { mode: STRICT } }
",
    ));
    let crd = |schema: &str| {
        format!(
            "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{ name: peerauthentications.security.istio.io }}
spec:
  group: security.istio.io
  names: {{ kind: PeerAuthentication, plural: peerauthentications }}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
{schema}"
        )
    };
    let cases = [
        // No schema at all: nothing usable in the file.
        (
            "no-schema.yaml",
            crd(""),
            3,
            "holds no CustomResourceDefinition",
        ),
        // Odd types throughout: refused when the kind is used, naming the file.
        (
            "odd-types.yaml",
            crd(
                "      schema:\n        openAPIV3Schema:\n          type: 42\n          properties: nonsense\n          required: 7\n",
            ),
            3,
            "cannot be used",
        ),
        (
            "bad-pattern.yaml",
            crd(
                "      schema:\n        openAPIV3Schema:\n          type: object\n          properties:\n            spec: { type: object, properties: { mtls: { type: object, pattern: \"(\" } } }\n",
            ),
            3,
            "cannot be used",
        ),
        // Nesting far deeper than any CRD.
        (
            "deep.yaml",
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
            3,
            "not a YAML file of CRDs",
        ),
        // A schema that is a boolean, and a version name that is not a string: skipped, and
        // then nothing is left.
        (
            "bool-schema.yaml",
            crd("      schema:\n        openAPIV3Schema: true\n")
                .replace("- name: v1", "- name: [v1]"),
            3,
            "holds no CustomResourceDefinition",
        ),
    ];
    for (name, text, want, says) in cases {
        let path = env.path(name);
        std::fs::write(&path, text).expect("write");
        let p = path.display().to_string();
        let out = env.meshc(&["validate", "topology.yaml", "--istio-crds", &p]);
        let err = stderr(&out);
        assert_eq!(code(&out), want, "{name}: {err}");
        assert!(err.contains(says), "{name}: `{says}` in {err}");
        assert!(err.contains(&p), "{name}: the file is named: {err}");
    }

    // A version without a schema beside one with: a note, and the rest is used.
    let mixed = crd(
        "      schema:\n        openAPIV3Schema: { type: object, properties: { spec: { type: object } } }\n",
    ) + "    - name: v1beta1\n      served: true\n      storage: false\n";
    std::fs::write(env.path("mixed.yaml"), mixed).expect("write");
    let out = env.meshc(&["validate", "topology.yaml", "--istio-crds", "mixed.yaml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "note: mixed.yaml: security.istio.io/v1beta1 PeerAuthentication has no openAPIV3Schema"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_damaged_store_is_still_an_environment_error_with_the_crds() {
    let env = Env::new(&topology(""));
    assert_eq!(code(&env.build()), 0);
    std::fs::write(env.path("pki/mesh1/root-cert.pem"), "not a certificate\n").expect("write");
    let out = env.meshc(&[
        "build",
        "topology.yaml",
        "-o",
        "out",
        "--istio-crds",
        &istio(),
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("root-cert.pem"), "{}", stderr(&out));
}
