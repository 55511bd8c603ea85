//! Dataplane benches: frames through veth → bridge → veth, through a router with MASQUERADE,
//! and TCP bulk transfer between two smoltcp stacks, all in virtual time.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kns_sim::Sim;
use kns_sim::net::{LinkParams, NetnsId, packet};
use kns_sim::script::ScriptRunner;
use kns_sim::stack::apps::{TcpSink, TcpSource};
use kns_sim::stack::{IpStack, SmolStack, StackConfig};
use kns_sim::time::Time;

/// A socket layer that only counts what it receives (the cheapest possible endpoint).
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

const BRIDGE: &str = "
ip netns add red
ip netns add blue
ip link add br0 type bridge
ip link set br0 up
ip link add veth-red type veth peer name red-br
ip link add veth-blue type veth peer name blue-br
ip link set veth-red netns red
ip link set veth-blue netns blue
ip link set red-br master br0
ip link set blue-br master br0
ip link set red-br up
ip link set blue-br up
ip -n red addr add 10.0.0.1/24 dev veth-red
ip -n blue addr add 10.0.0.2/24 dev veth-blue
ip -n red link set veth-red up
ip -n blue link set veth-blue up
";

/// The bundled `examples/net/masquerade.sh` topology (a pod network behind a forwarding node),
/// with MASQUERADE and a stateful FORWARD chain on the node.
fn masquerade() -> String {
    let mut script = setup(include_str!("../examples/net/masquerade.sh"));
    script.push_str(
        "ip netns exec node iptables -t nat -A POSTROUTING -s 10.244.1.0/24 -o eth1 -j MASQUERADE
ip netns exec node iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
ip netns exec node iptables -A FORWARD -i cni0 -j ACCEPT
",
    );
    script
}

/// The setup of an example script: its commands after the header comment, up to the next comment.
fn setup(script: &str) -> String {
    let mut lines = script.lines().skip_while(|l| l.starts_with('#'));
    lines.by_ref().take_while(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect()
}

/// Builds a world from a script, with counting sinks in `sinks` and ARP already resolved.
fn world(script: &str, sinks: &[&str], warm: (&str, Ipv4Addr, Ipv4Addr)) -> (Sim, NetnsId) {
    let mut runner = ScriptRunner::new(1);
    let report = runner.run_script(script);
    assert!(report.error.is_none(), "{:?}", report.error);
    let mut sim = runner.into_sim();
    for name in sinks {
        let ns = sim.netns(Some(name)).unwrap();
        sim.attach_stack(ns, Sink::default());
    }
    let from = sim.netns(Some(warm.0)).unwrap();
    let p = packet::icmp_echo_request(warm.1, warm.2, 1, 0, 64, &[0; 56]);
    sim.send_ip(from, &p);
    sim.run_until_idle(1_000_000).unwrap();
    (sim, from)
}

/// Sends `n` echo requests and runs until every request and reply has been handled.
fn burst(sim: &mut Sim, from: NetnsId, src: Ipv4Addr, dst: Ipv4Addr, n: u16) {
    for seq in 0..n {
        let p = packet::icmp_echo_request(src, dst, 7, seq, 64, &[0; 56]);
        sim.send_ip(from, &p);
    }
    sim.run_until_idle(u64::MAX).unwrap();
}

fn frames(c: &mut Criterion) {
    const N: u16 = 1_000;
    let mut group = c.benchmark_group("dataplane_frames");
    let (red, blue) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let (mut sim, from) = world(BRIDGE, &["red"], ("red", red, blue));
    let before = sim.conservation();
    burst(&mut sim, from, red, blue, N);
    let per_burst = sim.conservation().sent - before.sent;
    // Requests and the replies the far IP layer sends back, each crossing veth, bridge, veth.
    group.throughput(Throughput::Elements(per_burst));
    group.bench_function(BenchmarkId::new("veth_bridge_veth", per_burst), |b| {
        b.iter(|| burst(black_box(&mut sim), from, red, blue, N))
    });

    let (pod, internet) = (Ipv4Addr::new(10, 244, 1, 2), Ipv4Addr::new(203, 0, 113, 2));
    let (mut sim, from) = world(&masquerade(), &["pod"], ("pod", pod, internet));
    let before = sim.conservation();
    burst(&mut sim, from, pod, internet, N);
    let per_burst = sim.conservation().sent - before.sent;
    group.throughput(Throughput::Elements(per_burst));
    group.bench_function(BenchmarkId::new("routed_masquerade", per_burst), |b| {
        b.iter(|| burst(black_box(&mut sim), from, pod, internet, N))
    });
    group.finish();
}

const VETH: &str = "
ip netns add a
ip netns add b
ip link add eth0 type veth peer name eth1
ip link set eth0 netns a
ip link set eth1 netns b
ip -n a addr add 10.0.0.1/24 dev eth0
ip -n b addr add 10.0.0.2/24 dev eth1
ip -n a link set eth0 up
ip -n b link set eth1 up
";

/// Moves `total` bytes over TCP from `a` to `b`; returns the virtual time it took.
fn tcp_transfer(total: u64) -> std::time::Duration {
    let mut runner = ScriptRunner::new(1);
    assert!(runner.run_script(VETH).error.is_none());
    let mut sim = runner.into_sim();
    let (a, b) = (sim.netns(Some("a")).unwrap(), sim.netns(Some("b")).unwrap());
    // A 10 Gbit/s link with 50 µs of delay each way, so that virtual time means something.
    let params = LinkParams {
        latency: std::time::Duration::from_micros(50),
        bandwidth_bps: Some(10_000_000_000),
        ..LinkParams::default()
    };
    sim.link_set_params(a, "eth0", params.clone()).unwrap();
    sim.link_set_params(b, "eth1", params).unwrap();
    for (ns, seed) in [(a, 1), (b, 2)] {
        let stack = SmolStack::new(StackConfig::with_seed(seed), sim.now());
        sim.attach_stack(ns, stack);
    }
    sim.stack_mut::<SmolStack>(b).unwrap().spawn(TcpSink::new(5001));
    let remote = SocketAddr::from(([10, 0, 0, 2], 5001));
    let id = sim.stack_mut::<SmolStack>(a).unwrap().spawn(TcpSource::new(remote, total));
    sim.kick(a);
    sim.kick(b);
    sim.run_until_idle(u64::MAX).unwrap();
    let source = sim.stack_mut::<SmolStack>(a).unwrap().app::<TcpSource>(id).unwrap();
    assert_eq!(source.sent(), total, "{:?}", source.error());
    source.duration().expect("the transfer finished")
}

fn tcp(c: &mut Criterion) {
    const TOTAL: u64 = 4 * 1024 * 1024;
    let virtual_time = tcp_transfer(TOTAL);
    eprintln!(
        "tcp_bulk: {TOTAL} bytes over a 10 Gbit/s, 50 µs veth took {virtual_time:?} of virtual time ({:.1} Mbit/s virtual)",
        TOTAL as f64 * 8.0 / virtual_time.as_secs_f64() / 1e6
    );
    let mut group = c.benchmark_group("tcp_bulk");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(TOTAL));
    group.bench_function("veth_4MiB", |b| b.iter(|| tcp_transfer(black_box(TOTAL))));
    group.finish();
}

criterion_group!(benches, frames, tcp);
criterion_main!(benches);
