//! How long `meshc validate` takes on large generated topologies: parse, schema, model and
//! every rule, end to end on an in-memory source (`compiler::check`).
//!
//! The topology is generated (`common/mod.rs`).

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use meshc::compiler;
use meshc::source::Source;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    group.sample_size(10);
    for n in [100, 1000, 2000] {
        let text = common::topology(n, "");
        let checked = compiler::check(Source::new("gen.yaml", "gen.yaml", text.clone()));
        assert!(
            checked.diagnostics.is_empty(),
            "the generated topology must be valid: {:?}",
            checked.diagnostics.first()
        );
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("clusters", n), &text, |b, text| {
            b.iter(|| compiler::check(Source::new("gen.yaml", "gen.yaml", text.clone())));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
