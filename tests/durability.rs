//! The PKI store survives a process killed at any step of a write, and Ctrl-C.
//!
//! Each scenario kills the real binary between two steps of a store write (`MESHC_FAILPOINT`
//! aborts it there, as a `kill -9` or a power cut would: no destructors, no cleanup), then runs
//! the next command and checks what a user would: every cluster has a key, certificate and
//! chain that verify against its mesh's root, key and certificate belong together, no staged or
//! temporary name is left, and a rotation happened whole or not at all. The signal scenarios
//! send SIGINT or SIGTERM while the process is known to be at a given step and check exit 130.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};

use common::{Env, TOPOLOGY, code, stderr};

/// The meshes of [`TOPOLOGY`] and their clusters.
const MESHES: [(&str, &[&str]); 2] = [("east", &["c1", "c2"]), ("west", &["c3"])];

fn meshc(env: &Env) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("meshc"));
    cmd.current_dir(env.dir.path()).env("NO_COLOR", "1");
    cmd
}

fn run_with_failpoint(env: &Env, failpoint: &str, args: &[&str]) -> Output {
    meshc(env)
        .env("MESHC_FAILPOINT", failpoint)
        .args(args)
        .output()
        .expect("runs")
}

fn assert_killed(out: &Output, failpoint: &str) {
    assert_eq!(
        out.status.signal(),
        Some(6),
        "{failpoint}: expected the process to abort there, got {:?}\n{}",
        out.status,
        stderr(out)
    );
}

/// openssl's standard output; it must succeed.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = common::openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn public_key_of_cert(cert: &Path) -> Vec<u8> {
    openssl(&["x509", "-noout", "-pubkey", "-in", &cert.to_string_lossy()])
}

fn public_key_of_key(key: &Path) -> Vec<u8> {
    openssl(&["pkey", "-pubout", "-in", &key.to_string_lossy()])
}

/// Every root and intermediate is there, each key belongs to its certificate, each chain
/// verifies against the mesh's root and starts with the cluster's own certificate.
fn assert_store_whole(env: &Env) {
    for (mesh, clusters) in MESHES {
        let m = env.path(&format!("pki/{mesh}"));
        assert_eq!(
            public_key_of_cert(&m.join("root-cert.pem")),
            public_key_of_key(&m.join("root-key.pem")),
            "{mesh}: root key and certificate differ"
        );
        for cluster in clusters {
            let c = m.join(cluster);
            assert_eq!(
                public_key_of_cert(&c.join("ca-cert.pem")),
                public_key_of_key(&c.join("ca-key.pem")),
                "{mesh}/{cluster}: key and certificate differ"
            );
            openssl(&[
                "verify",
                "-CAfile",
                &m.join("root-cert.pem").to_string_lossy(),
                "-untrusted",
                &c.join("cert-chain.pem").to_string_lossy(),
                &c.join("ca-cert.pem").to_string_lossy(),
            ]);
            let chain = std::fs::read_to_string(c.join("cert-chain.pem")).expect("chain");
            let cert = std::fs::read_to_string(c.join("ca-cert.pem")).expect("cert");
            assert!(
                chain.starts_with(&cert),
                "{mesh}/{cluster}: chain of another cert"
            );
        }
    }
}

/// Every name under the store, relative, sorted (files and directories).
fn store_names(env: &Env) -> Vec<String> {
    let root = env.path("pki");
    let mut names = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            names.push(
                p.strip_prefix(&root)
                    .expect("inside")
                    .to_string_lossy()
                    .to_string(),
            );
            if entry.file_type().expect("type").is_dir() {
                stack.push(p);
            }
        }
    }
    names.sort();
    names
}

/// The names meshc writes are never hidden; every leftover (journal, staged directory,
/// temporary file) is.
fn leftovers(env: &Env) -> Vec<String> {
    store_names(env)
        .into_iter()
        .filter(|n| n.split('/').any(|part| part.starts_with('.')))
        .collect()
}

fn stored_files(env: &Env) -> Vec<String> {
    store_names(env)
        .into_iter()
        .filter(|n| env.path(&format!("pki/{n}")).is_file())
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const ADD_FAILPOINTS: [&str; 6] = [
    "store:add:begin",
    "store:add:staged",
    "store:add:journal",
    "store:add:linked-one",
    "store:add:linked",
    "store:add:committed",
];

#[test]
fn a_first_build_killed_at_any_step_is_repaired_by_the_next_build() {
    for failpoint in ADD_FAILPOINTS {
        let env = Env::new(TOPOLOGY);
        let out = run_with_failpoint(&env, failpoint, &["build", "topology.yaml", "-o", "out"]);
        assert_killed(&out, failpoint);

        // A read-only command writes nothing. It refuses only an addition cut short after
        // files were linked (what it would read is not what the repair leaves), naming the
        // journal and the command that repairs it.
        let before = store_names(&env);
        let status = env.meshc(&["pki", "status", "topology.yaml"]);
        assert_eq!(store_names(&env), before, "{failpoint}: status wrote");
        if matches!(failpoint, "store:add:linked-one" | "store:add:linked") {
            assert_eq!(code(&status), 3, "{failpoint}: {}", stderr(&status));
            assert!(
                stderr(&status).contains(".meshc-add-") && stderr(&status).contains("meshc build"),
                "{failpoint}: {}",
                stderr(&status)
            );
        } else if failpoint == "store:add:committed" {
            assert_eq!(code(&status), 0, "{failpoint}: {}", stderr(&status));
        } else {
            // Nothing was added: every item is missing (temporary files aside).
            assert_eq!(code(&status), 0, "{failpoint}: {}", stderr(&status));
            let material: Vec<String> = stored_files(&env)
                .into_iter()
                .filter(|n| !leftovers(&env).contains(n))
                .collect();
            assert_eq!(material, Vec::<String>::new(), "{failpoint}");
        }

        let out = env.build();
        assert_eq!(code(&out), 0, "{failpoint}: {}", stderr(&out));
        assert_store_whole(&env);
        assert_eq!(leftovers(&env), Vec::<String>::new(), "{failpoint}");
        // The output holds the stored material.
        for (mesh, clusters) in MESHES {
            for cluster in clusters {
                assert_eq!(
                    env.cacerts(cluster)["ca-cert.pem"],
                    read(&env.path(&format!("pki/{mesh}/{cluster}/ca-cert.pem"))),
                    "{failpoint}: {cluster}"
                );
            }
        }
        let status = env.meshc(&["pki", "status", "topology.yaml"]);
        assert_eq!(code(&status), 0, "{failpoint}: {}", stderr(&status));
    }
}

#[test]
fn a_rotation_killed_at_any_step_happened_whole_or_not_at_all() {
    // On Linux the swap is one exchange; the two-rename fallback is checked in store.rs.
    for (failpoint, rotated) in [
        ("store:replace:staged", false),
        ("store:replace:swapped", true),
    ] {
        let env = Env::new(TOPOLOGY);
        assert_eq!(code(&env.build()), 0);
        let c3 = |f: &str| read(&env.path(&format!("pki/west/c3/{f}")));
        let (cert, key) = (c3("ca-cert.pem"), c3("ca-key.pem"));
        let out = run_with_failpoint(
            &env,
            failpoint,
            &["pki", "rotate", "topology.yaml", "--cluster", "c3"],
        );
        assert_killed(&out, failpoint);

        // The cluster's directory is whole at every step, so a reader sees it as it is and
        // leaves the staged directory for a writer to remove.
        let status = env.meshc(&["pki", "status", "topology.yaml"]);
        assert_eq!(code(&status), 0, "{failpoint}: {}", stderr(&status));
        assert!(
            leftovers(&env).iter().any(|n| n.starts_with("west/.c3.")),
            "{failpoint}: {:?}",
            store_names(&env)
        );
        assert_store_whole(&env);

        let out = env.build();
        assert_eq!(code(&out), 0, "{failpoint}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("note: removed") && stderr(&out).contains(".c3."),
            "{failpoint}: {}",
            stderr(&out)
        );
        assert_eq!(leftovers(&env), Vec::<String>::new(), "{failpoint}");
        assert_store_whole(&env);
        assert_eq!(
            c3("ca-cert.pem") != cert,
            rotated,
            "{failpoint}: certificate"
        );
        assert_eq!(c3("ca-key.pem") != key, rotated, "{failpoint}: key");
        assert_eq!(env.cacerts("c3")["ca-cert.pem"], c3("ca-cert.pem"));
    }
}

/// Starts meshc with a sleeping failpoint, waits until it says it is there, sends `signal`,
/// and returns its exit status and everything it wrote to standard error.
fn signal_at(env: &Env, failpoint: &str, signal: &str, args: &[&str]) -> (ExitStatus, String) {
    let mut child = meshc(env)
        .env("MESHC_FAILPOINT", format!("{failpoint}:sleep-20000"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).expect("reads stderr");
        text.push_str(&line);
        assert!(n > 0, "meshc ended before {failpoint}: {text}");
        if line.starts_with(&format!("failpoint {failpoint}: sleeping")) {
            break;
        }
    }
    let started = std::time::Instant::now();
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    err.read_to_string(&mut text).expect("reads stderr");
    let status = child.wait().expect("waits");
    // An interrupt outside a store write ends the process at once; inside one, once the
    // write is rolled back or done. Either way, not after the 20 s pause.
    if failpoint == "build:compiled" {
        assert!(started.elapsed().as_secs() < 15, "{failpoint}: not at once");
    }
    (status, text)
}

#[test]
fn ctrl_c_outside_a_write_ends_the_build_at_once_with_130() {
    let env = Env::new(TOPOLOGY);
    // Compiled, nothing written yet: no write to finish or roll back.
    let (status, _) = signal_at(
        &env,
        "build:compiled",
        "-INT",
        &["build", "topology.yaml", "-o", "out"],
    );
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(stored_files(&env).is_empty());
    assert!(!env.path("out/c1").exists());
}

#[test]
fn ctrl_c_with_the_output_staged_rolls_it_back_and_stores_no_key() {
    let env = Env::new(TOPOLOGY);
    // out/ is staged (so it can be written) before the store is; an interrupt here undoes
    // the staging once the store write has seen it.
    let (status, err) = signal_at(
        &env,
        "store:add:begin",
        "-INT",
        &["build", "topology.yaml", "-o", "out"],
    );
    assert_eq!(status.code(), Some(130), "{status:?}: {err}");
    assert!(stored_files(&env).is_empty());
    assert!(
        !env.path("out").exists(),
        "the staged tree is gone, directories too"
    );
}

#[test]
fn ctrl_c_while_keys_are_staged_rolls_the_addition_back_and_exits_130() {
    let env = Env::new(TOPOLOGY);
    let (status, err) = signal_at(
        &env,
        "store:add:staged",
        "-INT",
        &["build", "topology.yaml", "-o", "out"],
    );
    assert_eq!(status.code(), Some(130), "{status:?}: {err}");
    assert!(err.contains("interrupted"), "{err}");
    // Rolled back: no key, no temporary file, no output.
    assert_eq!(store_names(&env), Vec::<String>::new());
    assert!(!env.path("out/c1").exists());
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_store_whole(&env);
}

#[test]
fn sigterm_after_the_swap_lets_the_rotation_finish_and_exits_130() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let cert = read(&env.path("pki/west/c3/ca-cert.pem"));
    let (status, err) = signal_at(
        &env,
        "store:replace:swapped",
        "-TERM",
        &["pki", "rotate", "topology.yaml", "--cluster", "c3"],
    );
    assert_eq!(status.code(), Some(130), "{status:?}: {err}");
    assert_ne!(read(&env.path("pki/west/c3/ca-cert.pem")), cert);
    assert_eq!(leftovers(&env), Vec::<String>::new());
    assert_store_whole(&env);
}

#[test]
fn sigterm_before_the_swap_leaves_the_intermediate_as_it_was() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let before: Vec<Vec<u8>> = ["ca-cert.pem", "ca-key.pem", "cert-chain.pem"]
        .iter()
        .map(|f| read(&env.path(&format!("pki/west/c3/{f}"))))
        .collect();
    let (status, err) = signal_at(
        &env,
        "store:replace:staged",
        "-TERM",
        &["pki", "rotate", "topology.yaml", "--cluster", "c3"],
    );
    assert_eq!(status.code(), Some(130), "{status:?}: {err}");
    let after: Vec<Vec<u8>> = ["ca-cert.pem", "ca-key.pem", "cert-chain.pem"]
        .iter()
        .map(|f| read(&env.path(&format!("pki/west/c3/{f}"))))
        .collect();
    assert_eq!(after, before);
    assert_eq!(leftovers(&env), Vec::<String>::new());
}
