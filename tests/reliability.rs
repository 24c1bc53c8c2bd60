//! What meshc promises when its inputs are wrong, lost or hostile (docs/reliability.md), each
//! promise checked through the binary: the exit code, the diagnostic's code and line, and the
//! bytes left on disk.

mod common;

use std::path::Path;

use common::{Env, TOPOLOGY, code, codes_at, stderr, stdout};
use serde_json::Value;

/// [`TOPOLOGY`] with c1's reader token read from `token` (relative to the topology).
fn with_token_file(token: &str) -> String {
    TOPOLOGY.replace(
        "    apiServer: { url: \"https://10.0.0.1:6443\" }\n",
        &format!(
            "    apiServer: {{ url: \"https://10.0.0.1:6443\" }}\n    remoteSecret: {{ tokenFile: {token} }}\n"
        ),
    )
}

/// The diagnostics of `validate --format json` (exit code, `CODE LINE:COL` of each error).
fn validate_errors(env: &Env, extra: &[&str]) -> (i32, Vec<String>) {
    let mut args = vec!["validate", "topology.yaml", "--format", "json"];
    args.extend_from_slice(extra);
    let out = env.meshc(&args);
    let diags: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json diagnostics");
    let errors: Vec<Value> = diags
        .into_iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    (code(&out), codes_at(&errors))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// 1. A lost PKI store does not silently re-key the mesh.

#[test]
fn a_build_over_a_tree_of_another_root_is_refused_until_asked_for() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let before = read(&env.path("out/c1/cacerts.yaml"));
    let manifest: Value =
        serde_json::from_slice(&read(&env.path("out/.meshc/manifest.json"))).expect("manifest");
    let recorded = manifest["trust"]["east"][0]
        .as_str()
        .expect("root recorded");
    assert_eq!(recorded.len(), 95, "a SHA-256 fingerprint: {recorded}");

    // The store is lost (a fresh clone without it): the build refuses, writes and stores nothing.
    std::fs::rename(env.path("pki"), env.path("pki.lost")).expect("move the store");
    let out = env.build();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("mesh `east`"), "{err}");
    assert!(err.contains("refusing to replace the root"), "{err}");
    assert!(err.contains("--replace-root"), "{err}");
    assert!(
        !err.contains("mesh `west`") || err.contains("mesh `west`:"),
        "{err}"
    );
    assert!(!env.path("pki").exists(), "no key was stored");
    assert_eq!(read(&env.path("out/c1/cacerts.yaml")), before);

    // Restored, the build is a no-op again.
    std::fs::rename(env.path("pki.lost"), env.path("pki")).expect("restore the store");
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(read(&env.path("out/c1/cacerts.yaml")), before);

    // Asked for, the root is replaced, with a warning.
    std::fs::remove_dir_all(env.path("pki")).expect("drop the store");
    let out = env.meshc(&["build", "topology.yaml", "-o", "out", "--replace-root"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: mesh `east`: replacing root"));
    assert_ne!(read(&env.path("out/c1/cacerts.yaml")), before);
}

#[test]
fn a_new_intermediate_keeps_the_root_and_builds_without_asking() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let out = env.meshc(&["pki", "rotate", "topology.yaml", "--cluster", "c1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("c1: 0 created, 1 changed"),
        "{}",
        stdout(&out)
    );
}

// 2. A token file cannot smuggle other files into the committed tree.

#[test]
fn a_token_file_holding_key_material_is_refused_at_its_line_without_echoing_it() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let root_key = "pki/east/root-key.pem";
    assert!(env.path(root_key).exists());
    let cases: Vec<(String, Option<Vec<u8>>)> = vec![
        // A file of the store, named directly.
        (root_key.to_string(), None),
        // A PEM block copied elsewhere.
        ("stolen.pem".to_string(), Some(read(&env.path(root_key)))),
        // Base64 of a DER key without its armour.
        (
            "bare.txt".to_string(),
            Some(
                std::fs::read_to_string(env.path(root_key))
                    .expect("key")
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>()
                    .into_bytes(),
            ),
        ),
        // Something that is not one line of printable text (a password file, say).
        (
            "shadow".to_string(),
            Some(b"root:$6$salt$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n".to_vec()),
        ),
        ("binary".to_string(), Some(vec![0, 159, 146, 150, 10])),
    ];
    for (file, content) in cases {
        if let Some(bytes) = &content {
            std::fs::write(env.path(&file), bytes).expect("write token file");
        }
        std::fs::write(env.path("topology.yaml"), with_token_file(&file)).expect("topology");
        let (exit, errors) = validate_errors(&env, &[]);
        assert_eq!(
            (exit, errors),
            (2, vec!["E110 15:32".to_string()]),
            "{file}"
        );
        let out = env.build();
        assert_eq!(code(&out), 2, "{file}: {}", stderr(&out));
        assert!(stderr(&out).contains("E110"), "{file}");
        if let Some(bytes) = &content {
            let text = String::from_utf8_lossy(bytes);
            for line in text
                .lines()
                .filter(|l| l.len() > 8 && !l.starts_with("-----"))
            {
                assert!(!stderr(&out).contains(line), "{file}: content echoed");
            }
        }
        assert!(
            !env.path("out/c2/remote-secrets.yaml").exists(),
            "{file}: nothing was written"
        );
    }
}

#[test]
fn a_jwt_token_file_is_written_into_the_remote_secret() {
    let env = Env::new(&with_token_file("c1.token"));
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl";
    std::fs::write(env.path("c1.token"), format!("{jwt}\n")).expect("token");
    let (exit, errors) = validate_errors(&env, &[]);
    assert_eq!((exit, errors), (0, Vec::<String>::new()));
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let secrets =
        String::from_utf8_lossy(&read(&env.path("out/c2/remote-secrets.yaml"))).into_owned();
    assert!(secrets.contains(jwt), "{secrets}");
}

// 3. validate reports what build reports about the files the topology names.

#[test]
fn validate_reads_the_files_build_reads() {
    let topology = TOPOLOGY.replace(
        "    apiServer: { url: \"https://10.0.0.1:6443\" }\n",
        "    apiServer: { url: \"https://10.0.0.1:6443\", caFile: missing-ca.crt }\n",
    );
    let env = Env::new(&topology);
    let (exit, errors) = validate_errors(&env, &[]);
    assert_eq!((exit, errors), (2, vec!["E075 14:56".to_string()]));
    let out = env.build();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("E075"));
    assert!(!env.path("out").exists() && !env.path("pki").exists());

    // A missing token is a warning in both, and an error in both with --deny-warnings.
    let env = Env::new(TOPOLOGY);
    let out = env.meshc(&["validate", "topology.yaml"]);
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("W080"));
    let out = env.meshc(&["validate", "topology.yaml", "--deny-warnings"]);
    assert_eq!(code(&out), 2);
    let out = env.meshc(&["build", "topology.yaml", "-o", "out", "--deny-warnings"]);
    assert_eq!(code(&out), 2);
}

// 4. --templates misconfiguration is not silent.

#[test]
fn a_templates_option_that_cannot_apply_is_an_error_or_a_warning() {
    let env = Env::new(TOPOLOGY);
    let build = |dir: &str| env.meshc(&["build", "topology.yaml", "-o", "out", "--templates", dir]);

    let out = build("no-such-dir");
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("--templates no-such-dir: cannot be read"));
    assert!(!env.path("out").exists());

    std::fs::write(env.path("a-file"), "x").expect("file");
    let out = build("a-file");
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("--templates a-file: is not a directory"));

    std::fs::create_dir_all(env.path("tpl/install")).expect("dir");
    std::fs::write(env.path("tpl/cacert.yaml.j2"), "x").expect("misnamed");
    std::fs::write(env.path("tpl/install/other.j2"), "x").expect("misnamed");
    let out = build("tpl");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: --templates tpl: cacert.yaml.j2, install/other.j2 replace no built-in template"),
        "{err}"
    );
    assert!(
        err.contains("cacerts.yaml.j2"),
        "the known names are listed: {err}"
    );
}

// 5. One rule for exit codes, shown in every command's --help.

#[test]
fn every_command_documents_the_exit_codes_and_follows_them() {
    let env = Env::new(TOPOLOGY);
    for args in [
        &["--help"][..],
        &["validate", "--help"],
        &["build", "--help"],
        &["diff", "--help"],
        &["explain", "--help"],
        &["schema", "--help"],
        &["pki", "--help"],
        &["pki", "status", "--help"],
        &["pki", "rotate", "--help"],
        &["pki", "rotate-root", "--help"],
        &["graph", "--help"],
        &["init", "--help"],
        &["completions", "--help"],
        &["man", "--help"],
    ] {
        let out = env.meshc(args);
        assert_eq!(code(&out), 0, "{args:?}");
        let help = stdout(&out);
        assert!(help.contains("Exit codes:"), "{args:?}: {help}");
        assert!(help.contains("3    environment"), "{args:?}");
    }
    // A file named on the command line that cannot be read: 3. A file the topology names
    // that cannot be read: 2, at its line. Arguments that cannot be acted on: 2.
    let out = env.meshc(&["validate", "missing.yaml"]);
    assert_eq!(code(&out), 3);
    let out = env.meshc(&["validate", "topology.yaml", "--istio-crds", "missing.yaml"]);
    assert_eq!(code(&out), 3);
    std::fs::create_dir(env.path("c1.token")).expect("a directory");
    std::fs::write(env.path("topology.yaml"), with_token_file("c1.token")).expect("topology");
    assert_eq!(
        validate_errors(&env, &[]),
        (2, vec!["E110 15:32".to_string()])
    );
    let out = env.meshc(&["build", "topology.yaml"]);
    assert_eq!(code(&out), 2, "a missing -o is a usage error");
}

// 6. The output directory cannot overlap the store, or be / or the home directory.

#[test]
fn an_output_directory_overlapping_the_store_or_too_wide_is_refused() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let home = env.path("home");
    std::fs::create_dir(&home).expect("home");
    let keys_before = env.stored_keys();
    for (out, why) in [
        ("pki", "is inside the PKI store pki"),
        ("pki/east/c1", "is inside the PKI store pki"),
        ("./x/../pki/new", "is inside the PKI store pki"),
        (".", "holds the PKI store pki"),
        ("/", "is the root directory"),
        ("home", "is the home directory"),
    ] {
        let out_run = assert_cmd::Command::cargo_bin("meshc")
            .expect("binary")
            .current_dir(env.dir.path())
            .env("HOME", &home)
            .args(["build", "topology.yaml", "-o", out])
            .output()
            .expect("runs");
        assert_eq!(code(&out_run), 2, "-o {out}: {}", stderr(&out_run));
        assert!(
            stderr(&out_run).contains(&format!("error: -o {out} {why}")),
            "-o {out}: {}",
            stderr(&out_run)
        );
    }
    assert_eq!(env.stored_keys(), keys_before);
    assert!(!env.path("pki/new").exists() && !env.path(".meshc").exists());
    assert!(std::fs::read_dir(&home).expect("home").next().is_none());
    // --pki beside out/ is fine; --pki inside out/ is not.
    let out = env.meshc(&["build", "topology.yaml", "-o", "out", "--pki", "out/pki"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("holds the PKI store out/pki"));
}

// 7. diff: no phantom rewrites, no key material shown wherever it is pasted.

#[test]
fn a_diff_of_a_topology_with_itself_and_no_store_is_empty() {
    let env = Env::new(TOPOLOGY);
    for format in ["human", "brief", "markdown", "json"] {
        let out = env.meshc(&[
            "diff",
            "--from",
            "topology.yaml",
            "topology.yaml",
            "--format",
            format,
        ]);
        assert_eq!(code(&out), 0, "{format}: {}", stdout(&out));
        assert!(
            !stdout(&out).contains("rewritten"),
            "{format}: {}",
            stdout(&out)
        );
    }
    assert!(!env.path("pki").exists(), "diff stores nothing");
}

/// [`TOPOLOGY`] with a WasmPlugin whose free-form `pluginConfig` carries `value`.
fn with_plugin_config(value: &str) -> String {
    format!(
        "{TOPOLOGY}istioConfig:\n  - apiVersion: extensions.istio.io/v1alpha1\n    kind: WasmPlugin\n    metadata: {{ name: auth, namespace: istio-system }}\n    mesh: east\n    spec:\n      url: oci://registry.example/auth:1\n      pluginConfig:\n        signingKey: \"{value}\"\n"
    )
}

#[test]
fn a_bare_base64_key_pasted_into_any_object_is_masked_in_the_diff() {
    let env = Env::new(&with_plugin_config("none"));
    assert_eq!(code(&env.build()), 0, "{}", stderr(&env.build()));
    // A PKCS#8 key's base64 body, on one line, without its PEM armour.
    let pem = std::fs::read_to_string(env.path("pki/east/root-key.pem")).expect("key");
    let bare: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    std::fs::write(env.path("topology.yaml"), with_plugin_config(&bare)).expect("topology");
    for format in ["human", "markdown", "json"] {
        let out = env.meshc(&["diff", "topology.yaml", "-o", "out", "--format", format]);
        assert_eq!(code(&out), 1, "{format}: {}", stderr(&out));
        let shown = stdout(&out);
        assert!(
            !shown.contains(&bare[..40]),
            "{format}: the key is shown:\n{shown}"
        );
        if format != "json" {
            assert!(shown.contains("(private key)"), "{format}:\n{shown}");
        }
    }
    // A certificate's base64 is not a key: it stays visible.
    let cert = std::fs::read_to_string(env.path("pki/east/root-cert.pem")).expect("cert");
    let bare_cert: String = cert.lines().filter(|l| !l.starts_with("-----")).collect();
    std::fs::write(env.path("topology.yaml"), with_plugin_config(&bare_cert)).expect("topology");
    // (Run directly: the shared runner refuses any long base64 run in what is printed.)
    let out = assert_cmd::Command::cargo_bin("meshc")
        .expect("binary")
        .current_dir(env.dir.path())
        .args(["diff", "topology.yaml", "-o", "out"])
        .output()
        .expect("runs");
    assert!(stdout(&out).contains(&bare_cert[..40]), "{}", stdout(&out));
}

// 8. Positions count alike in every output; long lines and repeated warnings stay readable.

/// The (line, column) of each diagnostic in human output: every `[file:LINE:COL]` header.
fn human_positions(err: &str) -> Vec<(usize, usize)> {
    err.lines()
        .filter_map(|l| {
            let header = l.split_once("─[topology.yaml:")?.1.strip_suffix(']')?;
            let (line, col) = header.split_once(':')?;
            Some((line.parse().ok()?, col.parse().ok()?))
        })
        .collect()
}

fn json_positions(out: &std::process::Output) -> Vec<(usize, usize)> {
    let diags: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    diags
        .iter()
        .map(|d| {
            let n = |k: &str| usize::try_from(d[k].as_u64().expect(k)).expect(k);
            (n("line"), n("column"))
        })
        .collect()
}

#[test]
fn a_byte_order_mark_or_old_mac_line_endings_give_the_same_positions_everywhere() {
    let bad = TOPOLOGY.replace("  - name: c2\n", "  - name: Bad_c2\n");
    for (what, text) in [
        ("LF", bad.clone()),
        ("BOM", format!("\u{feff}{bad}")),
        ("CR", bad.replace('\n', "\r")),
        ("CRLF", bad.replace('\n', "\r\n")),
        ("BOM+CR", format!("\u{feff}{}", bad.replace('\n', "\r"))),
    ] {
        let env = Env::new(&text);
        let human = env.meshc(&["validate", "topology.yaml"]);
        let json = env.meshc(&["validate", "topology.yaml", "--format", "json"]);
        assert_eq!((code(&human), code(&json)), (2, 2), "{what}");
        assert_eq!(human_positions(&stderr(&human)), vec![(15, 11)], "{what}");
        assert_eq!(json_positions(&json), vec![(15, 11)], "{what}");
    }
}

#[test]
fn a_multi_megabyte_line_is_cut_around_the_span() {
    let long = "_".repeat(3_000_000);
    let env = Env::new(&TOPOLOGY.replace("  - name: west\n", &format!("  - name: west{long}\n")));
    let human = env.meshc(&["validate", "topology.yaml"]);
    let json = env.meshc(&["validate", "topology.yaml", "--format", "json"]);
    assert_eq!((code(&human), code(&json)), (2, 2));
    let err = stderr(&human);
    assert!(err.len() < 20_000, "{} bytes of diagnostics", err.len());
    assert!(err.contains("[topology.yaml:5:11]"), "{err}");
    assert!(err.contains("(3000006 characters)"), "{err}");
    assert!(
        json.stdout.len() < 20_000,
        "{} bytes of JSON",
        json.stdout.len()
    );
    assert!(json_positions(&json).contains(&(5, 11)));
}

#[test]
fn repeated_warnings_are_counted_after_a_few() {
    use std::fmt::Write as _;
    let mut text = "apiVersion: meshc/v1alpha1\nkind: Topology\nmeshes:\n  - name: m\nnetworks:\n  - name: n\nclusters:\n".to_string();
    for i in 0..200 {
        let _ = write!(
            text,
            "  - name: c{i}\n    mesh: m\n    network: n\n    controlPlane: primary\n    apiServer: {{ url: \"https://10.0.{}.{}:6443\" }}\n",
            i / 250,
            i % 250
        );
    }
    let env = Env::new(&text);
    let human = env.meshc(&["validate", "topology.yaml"]);
    assert_eq!(code(&human), 0);
    let err = stderr(&human);
    assert!(err.len() < 20_000, "{} bytes of warnings", err.len());
    assert!(err.contains("... and 197 more warning W080"), "{err}");
    assert!(err.contains("... and 197 more warning W081"), "{err}");
    assert!(err.contains("c1, c2, c3 and 196 more"), "{err}");
    let json = env.meshc(&["validate", "topology.yaml", "--format", "json"]);
    assert_eq!(json_positions(&json).len(), 400, "JSON lists every warning");
}

// 9. Long work shows progress on a terminal, and nothing when not on one.

#[test]
#[cfg(unix)]
fn progress_is_drawn_on_a_terminal_only() {
    let env = Env::new(TOPOLOGY);
    let out = env.build();
    assert_eq!(code(&out), 0);
    assert!(
        !stderr(&out).contains("generating keys"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(env.path("out")).expect("out");
    std::fs::remove_dir_all(env.path("pki")).expect("pki");
    // util-linux's `script` runs the build on a pseudo-terminal.
    let meshc = assert_cmd::cargo::cargo_bin("meshc");
    let tty = std::process::Command::new("script")
        .current_dir(env.dir.path())
        .env("TERM", "xterm")
        .args([
            "-qec",
            &format!("{} build topology.yaml -o out", meshc.display()),
            "/dev/null",
        ])
        .output()
        .expect("script(1) from util-linux runs");
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert_eq!(tty.status.code(), Some(0), "{shown}");
    for stage in ["generating keys", "rendering clusters", "writing files"] {
        assert!(shown.contains(stage), "{stage}: {shown}");
    }
    assert!(shown.contains("c1: 7 created"), "{shown}");
}

// 10. The order across clusters is written down once, at the top of the tree.

#[test]
fn the_tree_readme_gives_the_order_across_clusters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/primary-remote");
    let out = dir.path().join("out");
    let run = assert_cmd::Command::cargo_bin("meshc")
        .expect("binary")
        .arg("build")
        .arg(example.join("topology.yaml"))
        .arg("-o")
        .arg(&out)
        .arg("--pki")
        .arg(dir.path().join("pki"))
        .output()
        .expect("runs");
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let index = std::fs::read_to_string(out.join("README.md")).expect("out/README.md");
    let at = |needle: &str| {
        index
            .find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{index}"))
    };
    let primary = at("1. `cd cluster1` and follow");
    let gateway_first = at("Its east-west gateway serves istiod to its remotes");
    let remote = at("2. `cd cluster2` and follow");
    let after = at("Only once `cluster1` is running and its east-west gateway has its address");
    let token = at("Its `reader-token.yaml` lets `cluster1` read its API server: once it is");
    assert!(primary < gateway_first && gateway_first < remote && remote < after && after < token);
    assert!(index.contains("run its commands from there\n(`cd <cluster>`)"));
}

// A writer waiting for the store's lock says so.

#[test]
#[cfg(unix)]
fn a_writer_waiting_for_the_store_lock_says_so() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    // util-linux's flock(1) holds the same flock(2) lock meshc's writers take.
    let mut holder = std::process::Command::new("flock")
        .arg(env.path("pki"))
        .args(["sleep", "2"])
        .spawn()
        .expect("flock(1) from util-linux runs");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = env.meshc(&["pki", "rotate", "topology.yaml", "--cluster", "c1"]);
    let _ = holder.wait();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("note: waiting for another meshc that is writing to the PKI store"),
        "{}",
        stderr(&out)
    );
}
