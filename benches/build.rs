//! How long the back end takes on generated topologies of the sizes in
//! `tests/common/generate.rs` (S: 3 clusters, M: 30 clusters / 300 services, L: 200 clusters /
//! 20 primaries / 2,000 services / 500 DestinationRules / 10 networks). docs/performance.md
//! has the figures and the command that reproduces them.
//!
//! - `pki/make`: a first build's key material, per algorithm (roots and intermediates);
//! - `compile`: `meshc::compile::compile` with the store in place: inspect the store, plan,
//!   render and check every file, in memory;
//! - `build/cold`: a first build: empty store (ECDSA P-256) and empty `out/`: compile, stage
//!   `out/`, store the new key material, commit `out/`;
//! - `build/warm`: the store in place, an empty `out/` (a fresh clone of the GitOps repo);
//! - `build/noop`: the store and `out/` in place and up to date: compile and compare, nothing
//!   written;
//! - `build/noop-record`: the same no-op as `meshc build` takes it when its no-op record
//!   vouches for the inputs (`meshc::noop`): hash every input, stat every owned file;
//! - `diff/compare`: `meshc diff` between two renderings of L that differ in one
//!   DestinationRule's weights (one changed DestinationRule on each config cluster).

mod common;

use std::path::Path;

use common::generate::{self, L, M, S, Size};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use meshc::compile::{Compiled, Options, compile};
use meshc::compiler::{self, Checked};
use meshc::pki::Store;
use meshc::source::Source;
use time::OffsetDateTime;

/// A generated topology written to `dir` (with its token files), checked.
fn setup(dir: &Path, size: Size, ca: &str) -> Checked {
    let text = generate::topology(size, ca);
    generate::write_files(dir, size);
    let path = dir.join("topology.yaml");
    std::fs::write(&path, &text).expect("topology");
    let checked = compiler::check(Source::new("topology.yaml", &path, text));
    assert!(
        checked.diagnostics.is_empty(),
        "{:?}",
        checked.diagnostics.first()
    );
    checked
}

fn options(locked: bool) -> Options<'static> {
    Options {
        templates: None,
        out: None,
        locked,
        now: OffsetDateTime::now_utc(),
        progress: &meshc::progress::Silent,
    }
}

/// What `meshc build` does after validation: compile, stage `out/`, store new key material,
/// commit.
fn build(checked: &Checked, store: &Store, out: &Path, locked: bool) -> Compiled {
    let compiled = compile(checked, store, &options(locked)).expect("compiled");
    meshc::emit::recover(out).expect("recovered");
    let plan = meshc::emit::compare(out, &compiled.output, &compiled.stamp).expect("compared");
    if !plan.is_noop() {
        let staged = plan.stage(&meshc::progress::Silent).expect("staged");
        store.add(&compiled.new_material).expect("stored");
        staged.commit().expect("committed");
    }
    compiled
}

fn make(c: &mut Criterion) {
    let mut group = c.benchmark_group("pki/make");
    group.sample_size(10);
    for (algorithm, clusters) in [
        ("ecdsa-p256", 100),
        ("ecdsa-p384", 100),
        ("rsa-2048", 10),
        ("rsa-4096", 2),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let size = Size {
            name: "pki",
            clusters,
            primaries: clusters.div_ceil(10),
            networks: 1,
            services: 1,
            destination_rules: 0,
        };
        let checked = setup(
            dir.path(),
            size,
            &format!("    ca: {{keyAlgorithm: {algorithm}}}\n"),
        );
        let model = checked.model.as_ref().expect("model");
        let store = Store::new(dir.path().join("no-store"));
        let id = BenchmarkId::new(algorithm, format!("{clusters} clusters"));
        group.bench_function(id, |b| {
            b.iter(|| {
                let now = OffsetDateTime::now_utc();
                let ins = meshc::pki::inspect(model, &store, dir.path(), now);
                meshc::pki::complete(model, &store, ins, false, now, &meshc::progress::Silent)
                    .expect("made")
            });
        });
    }
    group.finish();
}

fn stages(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    for size in [S, M, L] {
        let dir = tempfile::tempdir().expect("tempdir");
        let checked = setup(dir.path(), size, "");
        let store = Store::new(dir.path().join("pki"));
        let out = dir.path().join("out");
        let compiled = build(&checked, &store, &out, false);
        let bytes: usize = compiled.output.files.values().map(|f| f.bytes.len()).sum();
        let label = format!(
            "{} ({} files, {} MB)",
            size.name,
            compiled.output.files.len(),
            bytes >> 20
        );
        group.bench_function(BenchmarkId::new("compile", &label), |b| {
            b.iter(|| compile(&checked, &store, &options(true)).expect("compiled"));
        });
        group.bench_function(BenchmarkId::new("noop", &label), |b| {
            b.iter(|| {
                let compiled = build(&checked, &store, &out, true);
                assert!(!compiled.output.files.is_empty());
            });
        });
        // What `meshc build` does before anything else when its no-op record vouches for the
        // inputs: hash them, stat the tree.
        let inputs = meshc::noop::Inputs {
            topology: &checked.source.path,
            out: &out,
            store: &store.dir,
            templates: None,
            crds: &[],
        };
        let model = checked.model.as_ref().expect("model");
        meshc::noop::record(
            &inputs,
            meshc::noop::named_files(model, dir.path()),
            i64::MAX,
            compiled
                .output
                .files
                .iter()
                .map(|(p, f)| (p.as_str(), f.scope.key())),
        );
        group.bench_function(BenchmarkId::new("noop-record", &label), |b| {
            b.iter(|| assert!(meshc::noop::unchanged(&inputs, 0).is_some()));
        });
        group.bench_function(BenchmarkId::new("warm", &label), |b| {
            b.iter_batched(
                || {
                    let fresh = dir.path().join("fresh");
                    let _ = std::fs::remove_dir_all(&fresh);
                    fresh
                },
                |fresh| build(&checked, &store, &fresh, true),
                criterion::BatchSize::PerIteration,
            );
        });
        group.bench_function(BenchmarkId::new("cold", &label), |b| {
            b.iter_batched(
                || {
                    let run = tempfile::tempdir().expect("tempdir");
                    let checked = setup(run.path(), size, "");
                    (run, checked)
                },
                |(run, checked)| {
                    let store = Store::new(run.path().join("pki"));
                    build(&checked, &store, &run.path().join("out"), false);
                    run
                },
                criterion::BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn compare(c: &mut Criterion) {
    let mut group = c.benchmark_group("diff/compare");
    group.sample_size(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let checked = setup(dir.path(), L, "");
    let store = Store::new(dir.path().join("pki"));
    let old = build(&checked, &store, &dir.path().join("out"), false);
    let text = checked
        .source
        .text
        .replacen("\": 80, ", "\": 70, ", 1)
        .replacen("/*\": 20}", "/*\": 30}", 1);
    assert_ne!(text, checked.source.text);
    let changed = compiler::check(Source::new(
        "topology.yaml",
        dir.path().join("topology.yaml"),
        text,
    ));
    let new = compile(&changed, &store, &options(true)).expect("compiled");
    let old = meshc::diff::Side::rendered(&old.output, std::collections::BTreeSet::new());
    let new = meshc::diff::Side::rendered(&new.output, std::collections::BTreeSet::new());
    group.bench_function(BenchmarkId::new("changed-weights", L.name), |b| {
        b.iter(|| {
            let report = meshc::diff::compare(&old, &new);
            // One changed DestinationRule on each primary.
            assert_eq!(report.entries.len(), L.primaries);
            meshc::diff::human(&report, false)
        });
    });
    group.finish();
}

criterion_group!(benches, make, stages, compare);
criterion_main!(benches);
