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
    std::fs::write(env.path("out/README.md"), "mine too").expect("user file");
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
    assert!(env.path("out/README.md").exists());
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
