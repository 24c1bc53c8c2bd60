//! How long the build's stages take on large generated topologies (`common/mod.rs`):
//!
//! - `pki/make`: a build's first run, making a root and every intermediate, per algorithm;
//! - `build/noop`: a rebuild with the store and `out/` in place: every root and intermediate
//!   read and checked, every cluster planned, every file rendered and compared with the tree,
//!   nothing written. The generated topology has one service per cluster and every cluster
//!   gets every Service of its mesh, so the tree grows with clusters × services (at 1000
//!   clusters, about 280 MB of `services.yaml`): this measures the output's size as much as
//!   meshc.
//! - `diff/compare`: `meshc diff` on two renderings of that topology that differ in one
//!   DestinationRule's weights: both trees taken apart into objects, compared, and the changed
//!   one shown (the renderings themselves are `build/noop`'s work, done once outside). Files
//!   with the same bytes on both sides are not parsed, so this is mostly the cost of the
//!   changed files.

mod common;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use meshc::compiler::{self, Checked};
use meshc::model::Model;
use meshc::pki::{self, Store};
use meshc::render::Renderer;
use meshc::source::Source;
use time::OffsetDateTime;

fn checked(clusters: usize, ca: &str) -> Checked {
    let text = common::topology(clusters, ca);
    let checked = compiler::check(Source::new("gen.yaml", "gen.yaml", text));
    assert!(
        checked.diagnostics.is_empty(),
        "{:?}",
        checked.diagnostics.first()
    );
    checked
}

fn model(checked: &Checked) -> &Model {
    checked.model.as_ref().expect("model")
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
        let checked = checked(
            clusters,
            &format!("    ca: {{keyAlgorithm: {algorithm}}}\n"),
        );
        let m = model(&checked);
        let store = Store::new("/nonexistent/meshc-bench-store");
        let id = BenchmarkId::new(algorithm, format!("{clusters} clusters"));
        group.bench_function(id, |b| {
            b.iter(|| {
                let now = OffsetDateTime::now_utc();
                let ins = pki::inspect(m, &store, std::path::Path::new("."), now);
                pki::complete(m, &store, ins, false, now).expect("made")
            });
        });
    }
    group.finish();
}

fn noop(c: &mut Criterion) {
    let mut group = c.benchmark_group("build/noop");
    group.sample_size(10);
    let renderer = Renderer::new(None).expect("templates");
    for clusters in [100, 1000] {
        let checked = checked(clusters, "");
        let m = model(&checked);
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().join("pki"));
        let out = dir.path().join("out");
        let now = OffsetDateTime::now_utc();
        let ins = pki::inspect(m, &store, dir.path(), now);
        let (material, files) = pki::complete(m, &store, ins, false, now).expect("made");
        let plans = meshc::plan::plan(m);
        let inputs = meshc::build::read_inputs(m, &plans, dir.path());
        store.add(&files).expect("store written");
        let output =
            meshc::build::render(m, &plans, &material, &inputs, &renderer).expect("rendered");
        meshc::emit::emit(&out, &output, "bench", false).expect("out written");
        group.bench_function(BenchmarkId::new("clusters", clusters), |b| {
            b.iter(|| {
                let now = OffsetDateTime::now_utc();
                let ins = pki::inspect(m, &store, dir.path(), now);
                assert!(ins.findings.is_empty() && ins.missing.is_empty());
                let (material, _) = pki::complete(m, &store, ins, true, now).expect("complete");
                let plans = meshc::plan::plan(m);
                let inputs = meshc::build::read_inputs(m, &plans, dir.path());
                let output = meshc::build::render(m, &plans, &material, &inputs, &renderer)
                    .expect("rendered");
                let summary = meshc::emit::emit(&out, &output, "bench", false).expect("emitted");
                assert!(!summary.changed());
            });
        });
    }
    group.finish();
}

fn compare(c: &mut Criterion) {
    let mut group = c.benchmark_group("diff/compare");
    group.sample_size(10);
    let renderer = Renderer::new(None).expect("templates");
    for clusters in [100, 300] {
        let render = |text: String| {
            let checked = compiler::check(Source::new("gen.yaml", "gen.yaml", text));
            let m = model(&checked);
            let store = Store::new("/nonexistent/meshc-bench-store");
            let now = OffsetDateTime::now_utc();
            let ins = pki::inspect(m, &store, std::path::Path::new("."), now);
            let (material, _) = pki::complete(m, &store, ins, false, now).expect("made");
            let plans = meshc::plan::plan(m);
            let inputs = meshc::build::read_inputs(m, &plans, std::path::Path::new("."));
            let output =
                meshc::build::render(m, &plans, &material, &inputs, &renderer).expect("rendered");
            // The key material differs between the two renderings: leave cacerts out.
            meshc::diff::Side {
                files: output
                    .files
                    .into_iter()
                    .filter(|(path, _)| !path.ends_with("/cacerts.yaml"))
                    .map(|(path, f)| (path, f.bytes))
                    .collect(),
                pending: std::collections::BTreeSet::new(),
            }
        };
        let text = common::topology(clusters, "");
        let changed =
            text.replacen("\": 80, ", "\": 70, ", 1)
                .replacen("/*\": 20}", "/*\": 30}", 1);
        assert_ne!(text, changed);
        let (old, new) = (render(text), render(changed));
        let bytes: usize = new.files.values().map(Vec::len).sum();
        let id = BenchmarkId::new("clusters", format!("{clusters} ({} MB)", bytes >> 20));
        group.bench_function(id, |b| {
            b.iter(|| {
                let report = meshc::diff::compare(&old, &new);
                // One changed DestinationRule on each config cluster (a primary per ten).
                assert_eq!(report.entries.len(), clusters / 10);
                meshc::diff::human(&report, false)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, make, noop, compare);
criterion_main!(benches);
