//! `meshc completions` and `meshc man`, through the binary: each shell's script is produced,
//! names every command and (for the shells installed here) parses; the manual page is roff
//! that groff reads without a warning and that names every command.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

/// Every command a user can type after `meshc`.
const COMMANDS: [&str; 10] = [
    "validate",
    "build",
    "diff",
    "pki",
    "explain",
    "schema",
    "graph",
    "init",
    "completions",
    "man",
];

fn meshc(args: &[&str]) -> Output {
    Command::cargo_bin("meshc")
        .expect("binary")
        .args(args)
        .output()
        .expect("runs")
}

/// Runs `program args... file` when the program is installed: `None` when it is not.
fn syntax_check(program: &str, args: &[&str], file: &Path) -> Option<Output> {
    std::process::Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .ok()
}

#[test]
fn every_shell_gets_a_script_that_names_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (shell, check) in [
        ("bash", Some(("bash", &["-n"][..]))),
        ("zsh", Some(("zsh", &["-n"][..]))),
        ("fish", Some(("fish", &["--no-execute"][..]))),
        ("powershell", None),
    ] {
        let out = meshc(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).expect("UTF-8");
        assert!(script.contains("meshc"), "{shell}");
        for command in COMMANDS {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
        // Subcommands of subcommands; and, except in PowerShell's script (which completes
        // names only), the values of enumerated options.
        for word in ["rotate", "status"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
        if shell != "powershell" {
            for word in [
                "primary-remote",
                "multi-primary",
                "openshift",
                "mermaid",
                "dot",
            ] {
                assert!(script.contains(word), "{shell}: {word} missing");
            }
        }
        let file = dir.path().join(format!("meshc.{shell}"));
        std::fs::write(&file, &script).expect("write");
        if let Some((program, args)) = check
            && let Some(out) = syntax_check(program, args, &file)
        {
            assert!(
                out.status.success(),
                "{program} refuses the script: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert_eq!(meshc(&["completions", "tcsh"]).status.code(), Some(2));
    assert_eq!(meshc(&["completions"]).status.code(), Some(2));
}

#[test]
fn the_manual_page_is_roff_that_names_every_command() {
    let out = meshc(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(page.contains("\n.TH meshc 1 "), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS", "Exit codes:"] {
        assert!(page.contains(section), "{section} missing");
    }
    for command in COMMANDS {
        assert!(
            page.contains(&format!("meshc\\-{command}(1)")),
            "{command} not named"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("meshc.1");
    std::fs::write(&file, &page).expect("write");
    // groff reads it as a man page without a single warning (-ww all warnings, -z no output).
    if let Some(out) = syntax_check("groff", &["-man", "-Tutf8", "-ww", "-z"], &file) {
        assert!(out.status.success());
        assert!(
            out.stderr.is_empty(),
            "groff warns: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn man_out_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pages = dir.path().join("man1");
    let out = meshc(&["man", "--out-dir", &pages.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(pages.join("meshc.1").is_file());
    for command in COMMANDS.iter().chain(&["pki-status", "pki-rotate"]) {
        let page = pages.join(format!("meshc-{command}.1"));
        let text = std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("{command}"));
        assert!(text.contains(".TH meshc-"), "{command}");
    }
    // A path that cannot be a directory: an environment error.
    let file = dir.path().join("file");
    std::fs::write(&file, "").expect("write");
    let out = meshc(&["man", "--out-dir", &file.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(3));
}
