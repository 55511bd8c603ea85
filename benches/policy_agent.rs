//! The policy agent's cost per NEW packet: its filter judging TCP SYNs of 1,000 distinct pod
//! pairs (every pod bound on the node, so both sides are judged), with the verdict cache warm
//! and with the cache off (every packet asks the reference engine).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kns_core::Cluster;
use kns_core::model::NodeId;
use kns_core::testing::synthetic_cluster;
use kns_sim::conntrack::CtState;
use kns_sim::netfilter::{FilterVerdict, Hook, HookContext, PacketFilter};
use kns_sim::policy_agent::PolicyAgent;
use kns_sim::time::Time;
use kns_sim::wire::{PacketSummary, parse_ip};

/// Pods, namespaces and policies of each synthetic cluster, as in `benches/policy.rs`.
const SIZES: [(usize, usize, usize); 2] = [(100, 5, 20), (1_000, 20, 200)];

/// A TCP SYN from `src:sport` to `dst:80`, as a bare IPv4 packet.
fn syn(src: Ipv4Addr, dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let sum =
        (0..20).step_by(2).map(|i| u32::from(u16::from_be_bytes([p[i], p[i + 1]]))).sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&80u16.to_be_bytes());
    p[32] = 0x50;
    p[33] = 0x02;
    p
}

/// An agent with every pod of `cluster` bound on node 0, its filter, and 1,000 SYN summaries
/// between fixed pod pairs spread over the cluster.
fn setup(cluster: &Cluster) -> (PolicyAgent, Box<dyn PacketFilter>, Vec<PacketSummary>) {
    let agent = PolicyAgent::new(cluster.clone());
    for pod in &cluster.pods {
        agent.bind_pod(NodeId(0), &format!("veth{}", pod.id.0), pod.id);
    }
    let filter = agent.filter(NodeId(0));
    let n = cluster.pods.len();
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!("synthetic clusters are IPv4"),
    };
    let packets = (0..1_000)
        .map(|i| {
            let src = &cluster.pods[(i * 7919) % n];
            let dst = &cluster.pods[(i * 104_729 + 13) % n];
            parse_ip(&syn(v4(src.ip), v4(dst.ip), 40_000 + i as u16)).expect("valid SYN")
        })
        .collect();
    (agent, filter, packets)
}

fn judge(filter: &mut Box<dyn PacketFilter>, packets: &[PacketSummary]) -> usize {
    let ctx =
        HookContext { in_iface: Some("cni0"), out_iface: Some("cni0"), ..HookContext::default() };
    packets
        .iter()
        .filter(|s| {
            matches!(
                filter.check(Time::ZERO, Hook::Forward, &ctx, s, CtState::New),
                FilterVerdict::Drop(_)
            )
        })
        .count()
}

fn agent_new_packets(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_agent_new_packet");
    for (pods, namespaces, policies) in SIZES {
        let cluster = synthetic_cluster(pods, namespaces, policies, 7);
        let label = format!("{pods}pods_{policies}pol");
        group.throughput(Throughput::Elements(1_000));
        let (agent, mut filter, packets) = setup(&cluster);
        judge(&mut filter, &packets);
        group.bench_function(BenchmarkId::new("cached", &label), |b| {
            b.iter(|| black_box(judge(&mut filter, &packets)))
        });
        agent.set_cache(false);
        group.bench_function(BenchmarkId::new("uncached", &label), |b| {
            b.iter(|| black_box(judge(&mut filter, &packets)))
        });
    }
    group.finish();
}

criterion_group!(benches, agent_new_packets);
criterion_main!(benches);
