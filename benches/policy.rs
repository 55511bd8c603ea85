//! Policy evaluation benches: the full reachability matrix (fast, indexed) and single verdicts
//! (reference engine) on synthetic clusters with proportional policies.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kns_core::policy::{self, PolicyEngine, ReferenceEngine};
use kns_core::testing::synthetic_cluster;
use kns_core::{Flow, PortProtocol, Protocol};
use std::hint::black_box;

/// Pods, namespaces and policies of each synthetic cluster (policies = pods / 5).
const SIZES: [(usize, usize, usize); 3] = [(100, 5, 20), (1_000, 20, 200), (3_000, 40, 600)];

fn full_matrix(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_matrix_fast");
    group.sample_size(10);
    let ports = [PortProtocol::new(80, Protocol::Tcp)];
    for (pods, namespaces, policies) in SIZES {
        let cluster = synthetic_cluster(pods, namespaces, policies, 7);
        group.throughput(Throughput::Elements((pods * pods) as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{pods}pods_{policies}pol")),
            &cluster,
            |b, c| b.iter(|| black_box(policy::fast_matrix(c, &ports))),
        );
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
