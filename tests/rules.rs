//! Data-driven rule tests: every file in `tests/rules/` is a topology, and its
//! `# expect: CODE LINE:COL` comments are exactly the diagnostics `meshc validate` must
//! report for it (code, line and column of the underlined span). A file without `expect`
//! lines must validate clean: it is the passing twin of a failing fixture.
//!
//! Naming: `<code>-<what>.fail.yaml` and `<code>-<what>.pass.yaml`. Every code meshc can emit
//! has at least one failing fixture and one passing twin (checked below).
//!
//! A `# crds: istio, gateway-api` line checks the fixture as `--istio-crds` would, with the
//! repository's copies of Istio's and the Gateway API's CRDs (or a file under
//! `tests/data/crds/` named by its path). The failing fixtures and passing twins of the CRD
//! codes carry that line: without the CRDs a twin would pass for nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use meshc::compiler::{self, Checked};
use meshc::crds::Crds;
use meshc::diagnostic::Code;

/// The codes only `--istio-crds` reports.
const CRD_CODES: [Code; 3] = [
    Code::CrdUnknownField,
    Code::CrdInvalidValue,
    Code::CrdNotServed,
];

/// The CRD files a fixture's `# crds:` line names, relative to the crate's directory.
fn crd_files(text: &str) -> Option<Vec<String>> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("# crds:"))?;
    Some(
        line.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "istio" => "tests/data/crds/istio-1.30.3-crd-all.gen.yaml".to_string(),
                "gateway-api" => "tests/data/crds/gateway-api-v1.5.1.yaml".to_string(),
                path => path.to_string(),
            })
            .collect(),
    )
}

/// The CRDs of a list of files, loaded once per process.
fn loaded(files: Vec<PathBuf>) -> &'static Crds {
    static LOADED: Mutex<BTreeMap<Vec<PathBuf>, &'static Crds>> = Mutex::new(BTreeMap::new());
    let mut cache = LOADED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cache.entry(files).or_insert_with_key(|files| {
        let crds = Crds::load(files).unwrap_or_else(|e| panic!("{e}"));
        Box::leak(Box::new(crds))
    })
}

/// Checks a fixture, with the CRDs its `# crds:` line names.
fn check(path: &Path, text: &str) -> Checked {
    let mut checked = compiler::check_file(path).expect("fixture readable");
    if let Some(files) = crd_files(text) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files: Vec<PathBuf> = files.iter().map(|f| root.join(f)).collect();
        compiler::check_crds(&mut checked, loaded(files))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    checked
}

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
        let checked = check(path, &text);
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
    let mut unchecked = Vec::new();
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
        let text = std::fs::read_to_string(path).expect("readable");
        let needs_crds = CRD_CODES.iter().any(|c| c.as_str() == code);
        if needs_crds && crd_files(&text).is_none() {
            unchecked.push(name.clone());
        }
        if name.contains(".pass.") {
            twins.insert(code.clone());
        }
        for e in expected(&text) {
            covered.insert(e.split(' ').next().unwrap_or_default().to_string());
        }
    }
    // Codes found when files are read are specified by the scenarios in tests/pki.rs and
    // tests/build.rs; those about `meshc explain`'s arguments by tests/explain.rs.
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !c.from_files() && !c.from_query())
        .map(|c| c.as_str())
        .filter(|c| !covered.contains(*c) || !twins.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a failing fixture or a passing twin: {missing:?}"
    );
    assert!(
        unchecked.is_empty(),
        "fixtures of CRD codes without a `# crds:` line: {unchecked:?}"
    );
}
