//! The no-op check (`src/noop.rs`): a rebuild whose inputs and tree are unchanged prints what a
//! full build would and writes nothing; any change to an input or to an owned file, even one
//! that keeps the file's size and modification time, takes the full path.
#![cfg(unix)]

mod common;

use common::{Env, TOPOLOGY, code, stderr, stdout};

/// [`TOPOLOGY`] with c1's reader token and CA read from files, so that its build is clean (a
/// record is only written after a build without any diagnostic).
fn clean_topology() -> String {
    let with_files = |cluster: &str, ip: &str| {
        (
            format!("    apiServer: {{ url: \"https://{ip}:6443\" }}\n"),
            format!(
                "    apiServer: {{ url: \"https://{ip}:6443\", caFile: {cluster}-ca.crt }}\n    remoteSecret: {{ tokenFile: {cluster}.token }}\n"
            ),
        )
    };
    let mut text = TOPOLOGY.to_string();
    for (c, ip) in [("c1", "10.0.0.1"), ("c2", "10.0.0.2"), ("c3", "10.0.0.3")] {
        let (from, to) = with_files(c, ip);
        text = text.replace(&from, &to);
    }
    text
}

fn env() -> Env {
    let env = Env::new(&clean_topology());
    for c in ["c1", "c2", "c3"] {
        std::fs::write(
            env.path(&format!("{c}.token")),
            format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ{c}In0.c2ln\n"),
        )
        .expect("token");
        let out = common::openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &env.path(&format!("{c}-ca.key")).to_string_lossy(),
            "-out",
            &env.path(&format!("{c}-ca.crt")).to_string_lossy(),
            "-subj",
            &format!("/CN={c}-ca"),
            "-days",
            "3650",
        ]);
        assert!(out.status.success(), "openssl");
    }
    env
}

#[test]
fn an_unchanged_rebuild_prints_what_a_full_build_would() {
    let env = env();
    let first = env.build();
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(stderr(&first), "", "the build is clean");
    let records = std::fs::read_dir(env.path(".cache/meshc/noop"))
        .expect("a record")
        .count();
    assert_eq!(records, 1);
    let fast = env.build();
    assert_eq!(code(&fast), 0);
    // The same build with another (empty) cache directory takes the full path.
    let full = assert_cmd::Command::cargo_bin("meshc")
        .expect("binary")
        .current_dir(env.dir.path())
        .env("XDG_CACHE_HOME", env.path("other-cache"))
        .args(["build", "topology.yaml", "-o", "out"])
        .output()
        .expect("runs");
    assert_eq!(stdout(&fast), stdout(&full));
    assert!(stdout(&fast).contains("out/c1: 0 created, 0 changed, 0 removed, "));
}

#[test]
fn a_change_that_keeps_size_and_mtime_is_still_found() {
    let env = env();
    assert_eq!(code(&env.build()), 0);
    let path = env.path("out/c1/namespaces.yaml");
    let before = std::fs::metadata(&path).expect("meta");
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'x' { b'y' } else { b'x' };
    std::fs::write(&path, &bytes).expect("write");
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_modified(before.modified().expect("mtime"))
        .expect("set mtime");
    drop(file);
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("out/c1: 0 created, 1 changed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_changed_input_takes_the_full_path() {
    let env = env();
    assert_eq!(code(&env.build()), 0);
    // The PKI store.
    let out = env.meshc(&["pki", "rotate", "topology.yaml", "--cluster", "c1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.build();
    assert!(
        stdout(&out).contains("out/c1: 0 created, 1 changed"),
        "{}",
        stdout(&out)
    );
    // A file the topology names.
    std::fs::write(
        env.path("c2.token"),
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJuZXcifQ.c2ln\n",
    )
    .expect("token");
    let out = env.build();
    // c2's token is in c1's remote secret for c2.
    assert!(
        stdout(&out).contains("out/c1: 0 created, 1 changed"),
        "{}",
        stdout(&out)
    );
    // The topology itself: a comment changes nothing in out/ but is read again.
    let text = std::fs::read_to_string(env.path("topology.yaml")).expect("topology");
    std::fs::write(
        env.path("topology.yaml"),
        text.replace("  - name: c3\n", "  - name: C3\n"),
    )
    .expect("topology");
    let out = env.build();
    assert_eq!(code(&out), 2, "an invalid topology is found, not skipped");
}

#[test]
fn a_build_with_warnings_writes_no_record() {
    let env = Env::new(TOPOLOGY);
    let out = env.build();
    assert!(stderr(&out).contains("W080"));
    assert!(
        !env.path(".cache/meshc/noop").exists()
            || std::fs::read_dir(env.path(".cache/meshc/noop"))
                .expect("dir")
                .count()
                == 0
    );
    let again = env.build();
    assert!(
        stderr(&again).contains("W080"),
        "the warnings are printed again"
    );
}
