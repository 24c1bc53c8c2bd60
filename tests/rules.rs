//! Data-driven rule tests: every file in `tests/rules/` is a topology, and its
//! `# expect: CODE LINE:COL` comments are exactly the diagnostics `meshc validate` must
//! report for it (code, line and column of the underlined span). A file without `expect`
//! lines must validate clean: it is the passing twin of a failing fixture.
//!
//! Naming: `<code>-<what>.fail.yaml` and `<code>-<what>.pass.yaml`. Every code meshc can emit
//! has at least one failing fixture and one passing twin (checked below).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use meshc::compiler;
use meshc::diagnostic::Code;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/rules exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn expected(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# expect:"))
        .map(|s| s.trim().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn every_fixture_reports_exactly_its_expected_diagnostics() {
    let mut failures = Vec::new();
    let files = fixtures();
    assert!(!files.is_empty());
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable fixture");
        let want = expected(&text);
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        if name.contains(".fail.") && want.is_empty() {
            failures.push(format!(
                "{name}: a failing fixture without `# expect:` lines"
            ));
        }
        if name.contains(".pass.") && !want.is_empty() {
            failures.push(format!("{name}: a passing twin with `# expect:` lines"));
        }
        let checked = compiler::check_file(path).expect("fixture readable");
        let mut got: Vec<String> = checked
            .diagnostics
            .iter()
            .map(|d| {
                let (line, col) = d.line_col(&checked.source);
                format!("{} {line}:{col}", d.code)
            })
            .collect();
        got.sort();
        if got != want {
            let detail: Vec<String> = checked
                .diagnostics
                .iter()
                .map(|d| {
                    let (line, col) = d.line_col(&checked.source);
                    format!("    {} {line}:{col} {}", d.code, d.message)
                })
                .collect();
            failures.push(format!(
                "{name}:\n  expected {want:?}\n  got      {got:?}\n{}",
                detail.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_code_has_a_failing_fixture_and_a_passing_twin() {
    let files = fixtures();
    let mut covered = BTreeSet::new();
    let mut twins = BTreeSet::new();
    for path in &files {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let code = name
            .split('-')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if name.contains(".pass.") {
            twins.insert(code.clone());
        }
        let text = std::fs::read_to_string(path).expect("readable");
        for e in expected(&text) {
            covered.insert(e.split(' ').next().unwrap_or_default().to_string());
        }
    }
    // Codes found when files are read are specified by the scenarios in tests/pki.rs and
    // tests/build.rs.
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !c.from_files())
        .map(|c| c.as_str())
        .filter(|c| !covered.contains(*c) || !twins.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a failing fixture or a passing twin: {missing:?}"
    );
}
