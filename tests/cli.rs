//! Binary-level tests: the real `meshc` in a temporary directory, asserting what a user sees:
//! exit codes, the bytes on stdout, and the diagnostics' codes, lines and columns.

use std::path::{Path, PathBuf};

mod common;

use assert_cmd::Command;
use common::codes_at;
use predicates::prelude::*;
use serde_json::Value;

fn meshc() -> Command {
    let mut cmd = Command::cargo_bin("meshc").expect("binary built");
    cmd.env_remove("NO_COLOR");
    cmd
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs `meshc validate --format json` on a file; returns (exit code, diagnostics).
fn validate_json(path: &Path) -> (i32, Vec<Value>) {
    let out = meshc()
        .args(["validate", "--format", "json"])
        .arg(path)
        .output()
        .expect("runs");
    let diags: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is a JSON array ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().expect("exited"), diags)
}

fn write(dir: &tempfile::TempDir, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write");
    p
}

const VALID: &str = "\
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
";

#[test]
fn checked_in_schema_matches_the_types() {
    let on_disk =
        std::fs::read_to_string(repo("schema/topology.schema.json")).expect("schema file");
    let out = meshc().arg("schema").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout == on_disk.as_bytes(),
        "schema/topology.schema.json is stale: run `cargo run -- schema > schema/topology.schema.json`"
    );
}

#[test]
fn every_example_validates_clean() {
    // The one expected finding: ambient-multi-network shows a cluster being added, whose
    // reader token does not exist yet (W080), and validate reports it as build does.
    let expected = |file: &Path| -> Vec<String> {
        if file.ends_with("ambient-multi-network/topology.yaml") {
            vec!["W080 68:11".to_string()]
        } else {
            Vec::new()
        }
    };
    let mut n = 0;
    for entry in std::fs::read_dir(repo("examples")).expect("examples/") {
        let file = entry.expect("entry").path().join("topology.yaml");
        if !file.exists() {
            continue;
        }
        n += 1;
        let (code, diags) = validate_json(&file);
        assert_eq!(
            (code, codes_at(&diags)),
            (0, expected(&file)),
            "{}",
            file.display(),
        );
        let run = meshc()
            .arg("validate")
            .arg(&file)
            .assert()
            .success()
            .stdout(predicate::str::contains(": valid: "));
        if expected(&file).is_empty() {
            run.stderr("");
        }
    }
    assert!(n >= 6, "expected at least six examples, found {n}");
}

#[test]
fn ten_independent_errors_are_reported_in_one_run() {
    let (code, diags) = validate_json(&repo("tests/fixtures/ten-errors.yaml"));
    assert_eq!(code, 2);
    let got = codes_at(&diags);
    assert_eq!(
        got,
        [
            "E005 6:5",
            "E010 9:11",
            "E012 18:14",
            "E034 23:12",
            "E016 27:19",
            "E020 30:11",
            "E053 48:15",
            "E056 57:19",
            "E065 62:15",
            "E066 63:16",
        ],
        "{diags:#?}"
    );
    assert!(diags.iter().all(|d| d["severity"] == "error"));
}

#[test]
fn json_diagnostics_carry_every_contract_field() {
    let (_, diags) = validate_json(&repo("tests/fixtures/ten-errors.yaml"));
    let d = &diags[2];
    assert_eq!(d["code"], "E012");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["message"], "unknown network `netwrk1`");
    assert_eq!(d["help"], "did you mean `network1`?");
    assert!(
        d["file"]
            .as_str()
            .expect("file")
            .ends_with("ten-errors.yaml")
    );
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(18), Some(14))
    );
    assert_eq!(d["length"], 7);
    assert_eq!(d["path"], "/clusters/1/network");
    let text = std::fs::read_to_string(repo("tests/fixtures/ten-errors.yaml")).expect("read");
    let offset = usize::try_from(d["offset"].as_u64().expect("offset")).expect("fits");
    assert_eq!(&text[offset..offset + 7], "netwrk1");
}

#[test]
fn human_output_underlines_the_span_and_gives_help() {
    meshc()
        .arg("validate")
        .arg(repo("tests/fixtures/ten-errors.yaml"))
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "error[E012]: unknown network `netwrk1`",
        ))
        .stderr(predicate::str::contains("ten-errors.yaml:18:14]"))
        .stderr(predicate::str::contains("    network: netwrk1"))
        .stderr(predicate::str::contains("───┬───"))
        .stderr(predicate::str::contains("help: did you mean `network1`?"))
        .stderr(predicate::str::contains(
            "ten-errors.yaml: 10 errors, 0 warnings",
        ))
        // Not a terminal: no colour escapes.
        .stderr(predicate::str::contains("\u{1b}[").not());
}

#[test]
fn yaml_syntax_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(
        &dir,
        "t.yaml",
        b"apiVersion: meshc/v1alpha1\nmeshes: [1, 2\nkind: Topology\n",
    );
    let (code, diags) = validate_json(&p);
    assert_eq!(code, 2);
    assert_eq!(codes_at(&diags), ["E001 3:5"]);
    assert!(
        diags[0]["message"]
            .as_str()
            .expect("msg")
            .starts_with("invalid YAML")
    );
}

#[test]
fn unknown_field_with_did_you_mean() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = VALID.replace("    network: network1", "    netwrok: network1");
    let (code, diags) = validate_json(&write(&dir, "t.yaml", text.as_bytes()));
    assert_eq!(code, 2);
    // The unknown key itself is underlined; `network` is then missing from the cluster.
    assert_eq!(codes_at(&diags), ["E007 8:5", "E005 9:5"]);
    assert_eq!(diags[1]["help"], "did you mean `network`?");
}

#[test]
fn wrong_types_point_at_the_value() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = format!("{VALID}    zones: us-west1-a\n    region: us-west1\n").replace(
        "  - name: mesh1\n",
        "  - name: mesh1\n    istio: {version: 1.30}\n    dns: {capture: yes}\n",
    );
    let (code, diags) = validate_json(&write(&dir, "t.yaml", text.as_bytes()));
    assert_eq!(code, 2);
    assert_eq!(
        codes_at(&diags),
        ["E006 5:22", "E006 6:20", "E006 13:12"],
        "{diags:#?}"
    );
    assert_eq!(
        diags[0]["help"],
        "YAML reads the unquoted `1.30` as a number: quote it, `\"1.30\"`"
    );
    assert_eq!(
        diags[1]["message"],
        "expected a boolean (true or false), found a string"
    );
    assert_eq!(diags[2]["message"], "expected a list, found a string");
}

#[test]
fn duplicate_keys() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = format!("{VALID}    network: network2\n");
    let (code, diags) = validate_json(&write(&dir, "t.yaml", text.as_bytes()));
    assert_eq!(code, 2);
    assert_eq!(codes_at(&diags), ["E002 11:5"]);
}

#[test]
fn empty_and_comment_only_files() {
    let dir = tempfile::tempdir().expect("tmp");
    for (name, text) in [("empty.yaml", ""), ("comments.yaml", "# nothing yet\n\n")] {
        let (code, diags) = validate_json(&write(&dir, name, text.as_bytes()));
        assert_eq!(
            (code, codes_at(&diags)),
            (2, vec!["E004 1:1".to_string()]),
            "{name}"
        );
    }
}

#[test]
fn a_five_megabyte_file_is_refused_unread() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut text = VALID.to_string();
    while text.len() < 5 * 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let p = write(&dir, "big.yaml", text.as_bytes());
    let (code, diags) = validate_json(&p);
    assert_eq!(code, 2);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0]["code"], "E003");
    assert!(
        diags[0]["message"]
            .as_str()
            .expect("msg")
            .contains("larger than 4194304 bytes")
    );
}

#[test]
fn an_alias_bomb_is_stopped_by_the_node_budget() {
    let (code, diags) = validate_json(&repo("tests/fixtures/alias-bomb.yaml"));
    assert_eq!(code, 2);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0]["code"], "E003");
}

#[test]
fn a_file_that_is_not_utf8_is_invalid_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(&dir, "t.yaml", b"apiVersion: \xff\xfe\n");
    let (code, diags) = validate_json(&p);
    assert_eq!((code, diags[0]["code"].as_str()), (2, Some("E001")));
}

#[test]
fn a_missing_file_is_an_environment_error() {
    meshc()
        .args(["validate", "does-not-exist.yaml"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("cannot read does-not-exist.yaml"));
}

#[test]
fn warnings_pass_unless_denied() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = VALID.replace(
        "  - name: network1\n",
        "  - name: network1\n  - name: spare\n",
    );
    let p = write(&dir, "t.yaml", text.as_bytes());
    meshc()
        .arg("validate")
        .arg(&p)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "t.yaml: valid: 1 mesh, 2 networks, 1 cluster",
        ))
        .stderr(predicate::str::contains(
            "warning[W024]: network `spare` is used by no cluster",
        ))
        .stderr(predicate::str::contains("t.yaml: valid, with 1 warning"));
    meshc()
        .args(["validate", "--deny-warnings"])
        .arg(&p)
        .assert()
        .code(2);
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    meshc().args(["validate"]).assert().code(2);
    meshc()
        .args(["validate", "x.yaml", "--format", "xml"])
        .assert()
        .code(2);
    meshc()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("validate"));
}

#[test]
fn the_rules_reference_lists_every_code() {
    let doc = std::fs::read_to_string(repo("docs/rules.md")).expect("docs/rules.md");
    for code in meshc::diagnostic::Code::ALL {
        let row = format!("| {} | {} |", code.as_str(), code.title());
        assert!(doc.contains(&row), "docs/rules.md has no row `{row}`");
    }
}
