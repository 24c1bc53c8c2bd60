//! The output tree through the real binary: what a rebuild may touch, prune and refuse.

mod common;

use common::{Env, TOPOLOGY, code, files_under, stderr, stdout};

fn without_c2(topology: &str) -> String {
    let start = topology.find("  - name: c2\n").expect("c2");
    let end = topology.find("  - name: c3\n").expect("c3");
    format!("{}{}", &topology[..start], &topology[end..])
}

#[test]
fn files_meshc_no_longer_writes_are_pruned_and_others_kept() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    std::fs::write(env.path("out/c2/notes.md"), "mine").expect("user file");
    std::fs::write(env.path("out/NOTES.md"), "mine too").expect("user file");
    let written = files_under(&env.path("out/c2")).len() - 1; // all but notes.md
    std::fs::write(env.path("topology.yaml"), without_c2(TOPOLOGY)).expect("drop c2");
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let expected = format!("out/c2: 0 created, 0 changed, {written} removed, 0 unchanged");
    assert!(stdout(&out).contains(&expected), "{}", stdout(&out));
    assert_eq!(files_under(&env.path("out/c2")), ["notes.md"]);
    assert!(!env.path("out/c2/cacerts.yaml").exists());
    assert_eq!(
        std::fs::read_to_string(env.path("out/c2/notes.md")).expect("kept"),
        "mine"
    );
    assert!(env.path("out/NOTES.md").exists());
    assert!(
        env.path("pki/east/c2/ca-key.pem").exists(),
        "key material is never deleted"
    );

    // With the user's file gone, the emptied directory goes too.
    std::fs::write(env.path("topology.yaml"), TOPOLOGY).expect("restore");
    assert_eq!(code(&env.build()), 0);
    std::fs::remove_file(env.path("out/c2/notes.md")).expect("rm");
    std::fs::write(env.path("topology.yaml"), without_c2(TOPOLOGY)).expect("drop c2");
    assert_eq!(code(&env.build()), 0);
    assert!(!env.path("out/c2").exists());
}

#[test]
fn a_file_meshc_did_not_write_is_never_replaced() {
    let env = Env::new(TOPOLOGY);
    std::fs::create_dir_all(env.path("out/c1")).expect("mkdir");
    std::fs::write(env.path("out/c1/cacerts.yaml"), "hand-made").expect("user file");
    let out = env.build();
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("out/c1/cacerts.yaml exists but meshc did not write it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(env.path("out/c1/cacerts.yaml")).expect("kept"),
        "hand-made"
    );
    assert!(
        !env.path("out/c2").exists(),
        "a refused build writes nothing"
    );
    assert!(!env.path("pki").exists(), "not even key material");
}

#[cfg(unix)]
#[test]
fn nothing_is_written_through_a_symlink_out_of_the_tree() {
    let env = Env::new(TOPOLOGY);
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::create_dir_all(env.path("out")).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, env.path("out/c1")).expect("symlink");
    let out = env.build();
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("is a symbolic link out of the output directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(&elsewhere).expect("list").count(), 0);
    assert!(!env.path("out/c2").exists());

    // Nor through a link in place of meshc's own directory.
    std::fs::remove_file(env.path("out/c1")).expect("rm link");
    std::fs::create_dir_all(env.path("out")).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, env.path("out/.meshc")).expect("symlink");
    let out = env.build();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&elsewhere).expect("list").count(), 0);
    std::fs::remove_file(env.path("out/.meshc")).expect("rm link");
    std::os::unix::fs::symlink("elsewhere", env.path("out/c1")).expect("symlink");

    // A link that stays inside the tree is followed.
    std::fs::remove_file(env.path("out/c1")).expect("rm link");
    std::fs::create_dir_all(env.path("out/shared")).expect("mkdir");
    std::os::unix::fs::symlink("shared", env.path("out/c1")).expect("symlink");
    let out = env.build();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("out/shared/cacerts.yaml").exists());
}

#[test]
fn check_reports_a_hand_edit_and_writes_nothing() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let path = env.path("out/c3/cacerts.yaml");
    let edited = std::fs::read_to_string(&path)
        .expect("read")
        .replace("cacerts", "cacerts2");
    std::fs::write(&path, &edited).expect("edit");
    let out = env.meshc(&["build", "topology.yaml", "-o", "out", "--check"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("\nc3: 1 added, 0 changed, 1 removed\n"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), edited);
    assert_eq!(code(&env.build()), 0);
    let out = env.meshc(&["build", "topology.yaml", "-o", "out", "--check"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_damaged_manifest_stops_the_build() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    std::fs::write(env.path("out/.meshc/manifest.json"), "{not json").expect("damage");
    let out = env.build();
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("manifest.json is damaged"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_manifest_lists_every_file_with_its_digest() {
    let env = Env::new(TOPOLOGY);
    assert_eq!(code(&env.build()), 0);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.path("out/.meshc/manifest.json")).expect("manifest"),
    )
    .expect("json");
    let files = manifest["files"].as_array().expect("files");
    let paths: Vec<String> = files
        .iter()
        .filter_map(|f| f["path"].as_str().map(str::to_string))
        .collect();
    let on_disk: Vec<String> = files_under(&env.path("out"))
        .into_iter()
        .filter(|p| !p.starts_with(".meshc/"))
        .collect();
    assert_eq!(
        paths, on_disk,
        "the manifest lists exactly the files written, sorted"
    );
    assert!(paths.contains(&"c1/cacerts.yaml".to_string()));
    assert!(
        files
            .iter()
            .all(|f| f["sha256"].as_str().is_some_and(|s| s.len() == 64))
    );
    assert!(
        manifest["topologyDigest"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:"))
    );
}

/// Every file under `dir` with its bytes, hidden files included.
fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).expect("read");
            (rel, bytes)
        })
        .collect()
}

#[test]
fn a_build_killed_at_any_step_is_repaired_by_the_next() {
    // Removing c2 rewrites what refers to it (files renamed one by one, and removals);
    // adding it back stages its new directory whole.
    let without = without_c2(TOPOLOGY);
    killed_and_repaired(TOPOLOGY, &without, None);
    killed_and_repaired(&without, TOPOLOGY, Some(".c2.meshc-"));
}

/// Builds `from`, kills the build of `to` at each failpoint, and checks the tree then and
/// after the next build. `staged` names the directory the change stages whole, if any.
fn killed_and_repaired(from: &str, to: &str, staged: Option<&str>) {
    // Reference: what a whole build of the changed topology writes.
    let reference = Env::new(to);
    assert_eq!(code(&reference.build()), 0);
    for point in ["emit:staging", "emit:committed", "emit:renaming"] {
        let env = Env::new(from);
        // The reference's store, so both trees hold the same key material.
        copy_dir(&reference.path("pki"), &env.path("pki"));
        assert_eq!(code(&env.build()), 0);
        let before_change = snapshot(&env.path("out"));
        std::fs::write(env.path("topology.yaml"), to).expect("edit");
        let killed = assert_cmd::Command::cargo_bin("meshc")
            .expect("binary")
            .current_dir(env.path(""))
            .env("MESHC_FAILPOINT", point)
            .args(["build", "topology.yaml", "-o", "out"])
            .output()
            .expect("runs");
        assert!(
            !killed.status.success(),
            "{point}: the failpoint aborts the build"
        );
        let after_kill = snapshot(&env.path("out"));
        if let Some(staged) = staged.filter(|_| point != "emit:renaming") {
            let names: Vec<String> = std::fs::read_dir(env.path("out"))
                .expect("out/")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect();
            assert!(
                names.iter().any(|n| n.starts_with(staged)),
                "{point}: {staged} is not staged: {names:?}"
            );
        }
        // Whatever the instant, no file is torn: each is the old or the new version (or is
        // under a hidden, temporary name).
        let after = snapshot(&reference.path("out"));
        for (path, bytes) in &after_kill {
            if path.split('/').any(|part| part.starts_with('.')) {
                continue;
            }
            assert!(
                before_change.get(path) == Some(bytes) || after.get(path) == Some(bytes),
                "{point}: {path} is neither old nor new"
            );
        }
        assert_ne!(before_change, std::collections::BTreeMap::new());
        // --check sees the interruption and repairs nothing.
        let check = env.meshc(&["build", "topology.yaml", "-o", "out", "--check"]);
        assert_eq!(code(&check), 1, "{point}: {}", stderr(&check));
        assert_eq!(
            snapshot(&env.path("out")),
            after_kill,
            "{point}: --check wrote"
        );
        // The next build repairs the tree: exactly what an uninterrupted build writes.
        let next = env.build();
        assert_eq!(code(&next), 0, "{point}: {}", stderr(&next));
        assert_eq!(
            snapshot(&env.path("out")),
            after,
            "{point}: the repaired tree differs from a clean build"
        );
        let check = env.meshc(&["build", "topology.yaml", "-o", "out", "--check"]);
        assert_eq!(code(&check), 0, "{point}: {}", stderr(&check));
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn an_output_directory_that_cannot_be_written_costs_no_key() {
    let env = Env::new(TOPOLOGY);
    // A file where out/ should be: nothing can be staged under it.
    std::fs::write(env.path("out"), "not a directory").expect("file");
    let out = env.build();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(!env.path("pki").exists(), "no key material was stored");
}
