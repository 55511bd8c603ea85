//! The policy agent's cost per NEW packet: its filter judging TCP SYNs of 1,000 distinct pod
//! pairs (every pod bound on the node, so both sides are judged), with the verdict cache warm
//! and with the cache off (every packet asks the reference engine); and, through the whole
//! dataplane, 1,000 new UDP connections between two bridged pods without and with the agent.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kns_core::model::{
    NodeId, PodId, PolicyPeer, PolicyPort, PolicyRule, PolicyTypes, PortRef, Selector,
};
use kns_core::testing::build::labels_of;
use kns_core::testing::{ClusterBuilder, synthetic_cluster};
use kns_core::{Cluster, Protocol};
use kns_sim::Sim;
use kns_sim::conntrack::CtState;
use kns_sim::net::{NetnsId, packet};
use kns_sim::netfilter::{FilterVerdict, Hook, HookContext, PacketFilter};
use kns_sim::policy_agent::PolicyAgent;
use kns_sim::script::ScriptRunner;
use kns_sim::stack::IpStack;
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

/// Two pods bridged on a node (the root namespace) with `br_netfilter` on.
const BRIDGE: &str = "
ip netns add red
ip netns add blue
ip link add br0 type bridge
ip link set br0 up
ip link add veth-red type veth peer name eth0 netns red
ip link add veth-blue type veth peer name eth0 netns blue
ip link set veth-red master br0
ip link set veth-blue master br0
ip link set veth-red up
ip link set veth-blue up
ip -n red addr add 10.0.0.1/24 dev eth0
ip -n blue addr add 10.0.0.2/24 dev eth0
ip -n red link set eth0 up
ip -n blue link set eth0 up
sysctl -w net.bridge.bridge-nf-call-iptables=1
";

/// A socket layer that only counts what it receives.
#[derive(Default)]
struct Sink {
    received: u64,
}

impl IpStack for Sink {
    fn receive(&mut self, _now: Time, _packet: &[u8]) {
        self.received += 1;
    }
    fn poll(&mut self, _now: Time, _out: &mut Vec<Vec<u8>>) {}
    fn poll_at(&self, _now: Time) -> Option<Time> {
        None
    }
    fn set_addresses(&mut self, _addrs: &[ipnet::IpNet]) {}
}

/// red (10.0.0.1) and blue (10.0.0.2) as pods of one namespace; blue admits UDP 80 from red
/// only.
fn two_pods() -> Cluster {
    let mut b = ClusterBuilder::new();
    let ns = b.namespace("default", &[]);
    b.pod(ns, "red", &[("app", "red")], &[("", 80, Protocol::Udp)]);
    b.pod(ns, "blue", &[("app", "blue")], &[("", 80, Protocol::Udp)]);
    let from_red = PolicyPeer::Pods {
        namespace_selector: None,
        pod_selector: Some(Selector::from_labels(labels_of(&[("app", "red")]))),
    };
    let udp80 =
        PolicyPort { protocol: Protocol::Udp, port: Some(PortRef::Number(80)), end_port: None };
    b.policy(
        ns,
        "blue-from-red",
        Selector::from_labels(labels_of(&[("app", "blue")])),
        PolicyTypes { ingress: true, egress: false },
        vec![PolicyRule { peers: vec![from_red], ports: vec![udp80] }],
        vec![],
    );
    b.build()
}

/// The bridged world, with the agent installed unless `agent` is `None`, and ARP resolved.
fn bridged(agent: Option<&PolicyAgent>) -> (Sim, NetnsId, NetnsId) {
    let mut runner = ScriptRunner::new(1);
    let report = runner.run_script(BRIDGE);
    assert!(report.error.is_none(), "{:?}", report.error);
    let mut sim = runner.into_sim();
    let red = sim.netns(Some("red")).unwrap();
    let blue = sim.netns(Some("blue")).unwrap();
    sim.attach_stack(blue, Sink::default());
    if let Some(agent) = agent {
        agent.install(&mut sim, Sim::ROOT, NodeId(0)).unwrap();
        agent.bind_pod(NodeId(0), "veth-red", PodId(0));
        agent.bind_pod(NodeId(0), "veth-blue", PodId(1));
    }
    datagrams(&mut sim, red, 1);
    (sim, red, blue)
}

/// Sends `n` UDP datagrams from distinct source ports (each a NEW connection) red → blue.
fn datagrams(sim: &mut Sim, red: NetnsId, n: u16) {
    let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    for i in 0..n {
        let p = packet::udp_datagram(src, dst, 10_000 + i, 80, 64, b"x");
        sim.send_ip(red, &p);
    }
    sim.run_until_idle(u64::MAX).unwrap();
}

fn bridged_new_connections(c: &mut Criterion) {
    const N: u16 = 1_000;
    let mut group = c.benchmark_group("policy_agent_bridged_new_connections");
    group.throughput(Throughput::Elements(u64::from(N)));
    let variants: [(&str, Option<bool>); 3] =
        [("no_agent", None), ("agent_cached", Some(true)), ("agent_uncached", Some(false))];
    for (name, cache) in variants {
        let agent = cache.map(|on| {
            let agent = PolicyAgent::new(two_pods());
            agent.set_cache(on);
            agent
        });
        let (mut sim, red, blue) = bridged(agent.as_ref());
        datagrams(&mut sim, red, N);
        let got = sim.stack_mut::<Sink>(blue).unwrap().received;
        assert_eq!(got, u64::from(N) + 1, "every datagram is allowed and delivered");
        group.bench_function(name, |b| b.iter(|| datagrams(black_box(&mut sim), red, N)));
    }
    group.finish();
}

criterion_group!(benches, agent_new_packets, bridged_new_connections);
criterion_main!(benches);
