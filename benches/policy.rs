//! Policy evaluation benches: the full reachability matrix computed by the indexed (bitset)
//! engine and by the reference engine (rule by rule, with explanations), and single reference
//! verdicts on a fixed sample of pairs, on synthetic clusters with proportional policies
//! (policies = pods / 5).
//!
//! The reference matrix at 10,000 pods (10^8 verdicts, minutes) is not run; its time is the
//! sampled verdict time multiplied by the number of pairs (`BENCHMARKS.md`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kns_core::policy::{self, PolicyEngine, ReferenceEngine};
use kns_core::testing::synthetic_cluster;
use kns_core::{Flow, PortProtocol, Protocol};
use std::hint::black_box;

/// Pods, namespaces and policies of each synthetic cluster.
const SIZES: [(usize, usize, usize); 3] = [(100, 5, 20), (1_000, 20, 200), (10_000, 100, 2_000)];

/// The largest cluster whose reference matrix is timed whole.
const REFERENCE_MATRIX_MAX: usize = 1_000;

fn full_matrix(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_matrix");
    group.sample_size(10);
    let ports = [PortProtocol::new(80, Protocol::Tcp)];
    for (pods, namespaces, policies) in SIZES {
        let cluster = synthetic_cluster(pods, namespaces, policies, 7);
        let id = format!("{pods}pods_{policies}pol");
        group.throughput(Throughput::Elements((pods * pods) as u64));
        group.bench_with_input(BenchmarkId::new("indexed", &id), &cluster, |b, c| {
            b.iter(|| black_box(policy::fast_matrix(c, &ports)))
        });
        if pods <= REFERENCE_MATRIX_MAX {
            group.bench_with_input(BenchmarkId::new("reference", &id), &cluster, |b, c| {
                b.iter(|| black_box(policy::matrix(&ReferenceEngine, c, &ports)))
            });
        }
    }
    group.finish();
}

fn reference_verdicts(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_verdict_reference");
    let port = PortProtocol::new(80, Protocol::Tcp);
    for (pods, namespaces, policies) in SIZES {
        let cluster = synthetic_cluster(pods, namespaces, policies, 7);
        // 1,000 fixed pairs spread over the cluster.
        let flows: Vec<Flow> = (0..1_000)
            .map(|i| {
                let src = cluster.pods[(i * 7919) % pods].id;
                let dst = cluster.pods[(i * 104_729 + 13) % pods].id;
                Flow::pods(src, dst, port)
            })
            .collect();
        group.throughput(Throughput::Elements(flows.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{pods}pods_{policies}pol")),
            &flows,
            |b, flows| {
                b.iter(|| {
                    flows.iter().filter(|f| ReferenceEngine.evaluate(&cluster, f).allowed).count()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, full_matrix, reference_verdicts);
criterion_main!(benches);
