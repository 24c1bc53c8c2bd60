//! How long `meshc validate` takes on large generated topologies: parse, schema, model and
//! every rule, end to end on an in-memory source (`compiler::check`); and with
//! `--istio-crds` (group `validate-istio-crds`): loading Istio's and the Gateway API's CRD
//! files, and checking every DestinationRule and `istioConfig` resource against them.
//!
//! The topology is generated (`common/mod.rs`).

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use meshc::compiler;
use meshc::crds::Crds;
use meshc::source::Source;

/// The CRD files the tests keep (Istio 1.30.3, Gateway API v1.5.1).
const CRD_FILES: [&str; 2] = [
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/crds/istio-1.30.3-crd-all.gen.yaml"
    ),
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/crds/gateway-api-v1.5.1.yaml"
    ),
];

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

/// The generated topology with one AuthorizationPolicy and one HTTPRoute per service, so that
/// every object kind a topology holds has its schema compiled and used.
fn with_istio_config(clusters: usize) -> String {
    use std::fmt::Write as _;
    let mut text = common::topology(clusters, "");
    text.push_str("istioConfig:\n");
    for c in 0..clusters {
        let ns = c % 50;
        let _ = writeln!(
            text,
            "  - apiVersion: security.istio.io/v1\n    kind: AuthorizationPolicy\n    metadata: {{ name: svc{c}, namespace: ns{ns} }}\n    spec:\n      selector: {{ matchLabels: {{ app: svc{c} }} }}\n      action: ALLOW\n      rules: [{{ to: [{{ operation: {{ methods: [GET], ports: [\"8080\"] }} }}] }}]"
        );
        let _ = writeln!(
            text,
            "  - apiVersion: gateway.networking.k8s.io/v1\n    kind: HTTPRoute\n    metadata: {{ name: svc{c}, namespace: ns{ns} }}\n    spec:\n      parentRefs: [{{ name: svc{c}, kind: Service, group: \"\" }}]\n      rules: [{{ backendRefs: [{{ name: svc{c}, port: 8080 }}], timeouts: {{ request: 10s }} }}]"
        );
    }
    text
}

fn check_with(crds: &Crds, text: &str) -> compiler::Checked {
    let mut checked = compiler::check(Source::new("gen.yaml", "gen.yaml", text.to_string()));
    compiler::check_crds(&mut checked, crds).expect("the CRDs' schemas compile");
    checked
}

fn bench_crds(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate-istio-crds");
    group.sample_size(10);
    let bytes: u64 = CRD_FILES
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("load-both-files", |b| {
        b.iter(|| Crds::load(&CRD_FILES).expect("loads"));
    });
    let crds = Crds::load(&CRD_FILES).expect("loads");
    for n in [100, 1000] {
        let text = with_istio_config(n);
        let checked = check_with(&crds, &text);
        assert!(
            checked.diagnostics.is_empty(),
            "the generated topology must be valid against the CRDs: {:?}",
            checked.diagnostics.first()
        );
        group.throughput(Throughput::Bytes(text.len() as u64));
        // The same topology without `--istio-crds`, for comparison.
        group.bench_with_input(
            BenchmarkId::new("without-crds-clusters", n),
            &text,
            |b, text| {
                b.iter(|| compiler::check(Source::new("gen.yaml", "gen.yaml", text.clone())));
            },
        );
        // Validators compiled (first use, above); the cost of every later check.
        group.bench_with_input(BenchmarkId::new("check-clusters", n), &text, |b, text| {
            b.iter(|| check_with(&crds, text));
        });
        // What one `meshc validate --istio-crds A --istio-crds B` pays: load, compile, check.
        group.bench_with_input(BenchmarkId::new("cold-clusters", n), &text, |b, text| {
            b.iter(|| check_with(&Crds::load(&CRD_FILES).expect("loads"), text));
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_crds);
criterion_main!(benches);
