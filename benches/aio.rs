//! Async pods: N client pods each open TCP connections in turn to one server pod and exchange
//! 4 bytes (turmoil's figures for the same workload: 100 × 10 connections 0.94 s, 400 × 5
//! 38 s, 1,000 × 1 296 s on a 2-core machine).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use kns_sim::Sim;
use kns_sim::aio::{self, AsyncSim, TcpListener, TcpStream};
use kns_sim::net::{NetnsId, RouteSpec};
use kns_sim::stack::{SmolStack, StackConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PER_NODE: usize = 100;

/// One server pod and `clients` client pods, 100 pods per node, host-gw routes.
fn build(clients: usize) -> (Sim, NetnsId, Vec<NetnsId>) {
    let pods = clients + 1;
    let nodes = pods.div_ceil(PER_NODE);
    let mut sim = Sim::new(1);
    sim.link_add_bridge(Sim::ROOT, "fabric0").unwrap();
    sim.link_set_up(Sim::ROOT, "fabric0", true).unwrap();
    let node_ip = |k: usize| Ipv4Addr::new(192, 168, 0, (k + 1) as u8);
    let mut node_ns = Vec::new();
    for k in 0..nodes {
        let node = sim.netns_add(&format!("node-{k}")).unwrap();
        sim.set_ip_forward(node, true);
        sim.link_add_veth(Sim::ROOT, &format!("n{k}"), "eth0", Some(node)).unwrap();
        sim.link_set_master(Sim::ROOT, &format!("n{k}"), Some("fabric0")).unwrap();
        sim.link_set_up(Sim::ROOT, &format!("n{k}"), true).unwrap();
        sim.addr_add(node, "eth0", format!("{}/24", node_ip(k)).parse().unwrap()).unwrap();
        sim.link_set_up(node, "eth0", true).unwrap();
        sim.link_add_bridge(node, "cni0").unwrap();
        sim.link_set_up(node, "cni0", true).unwrap();
        sim.addr_add(node, "cni0", format!("10.244.{k}.1/24").parse().unwrap()).unwrap();
        node_ns.push(node);
    }
    for (k, node) in node_ns.iter().enumerate() {
        for j in (0..nodes).filter(|&j| j != k) {
            let spec =
                RouteSpec::via(format!("10.244.{j}.0/24").parse().unwrap(), IpAddr::V4(node_ip(j)));
            sim.route_add(*node, &spec, false).unwrap();
        }
    }
    let mut all = Vec::new();
    for p in 0..pods {
        let (k, i) = (p / PER_NODE, p % PER_NODE);
        let ns = sim.netns_add(&format!("pod-{k}-{i}")).unwrap();
        sim.link_add_veth(node_ns[k], &format!("veth{i}"), "eth0", Some(ns)).unwrap();
        sim.link_set_master(node_ns[k], &format!("veth{i}"), Some("cni0")).unwrap();
        sim.link_set_up(node_ns[k], &format!("veth{i}"), true).unwrap();
        sim.addr_add(ns, "eth0", format!("10.244.{k}.{}/24", i + 2).parse().unwrap()).unwrap();
        sim.link_set_up(ns, "eth0", true).unwrap();
        let gw = IpAddr::V4(Ipv4Addr::new(10, 244, k as u8, 1));
        sim.route_add(ns, &RouteSpec::via("0.0.0.0/0".parse().unwrap(), gw), false).unwrap();
        let seed = sim.child_seed();
        sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(seed), sim.now()));
        all.push(ns);
    }
    sim.run_until_idle(u64::MAX).unwrap();
    let server = all.remove(0);
    (sim, server, all)
}

/// The world with every task spawned: the server echoes 4 bytes per connection, each client
/// opens `conns` connections one after the other.
fn world(clients: usize, conns: usize) -> AsyncSim {
    let (sim, server, client_pods) = build(clients);
    let mut asim = AsyncSim::new(sim);
    let server_addr = SocketAddr::from(([10, 244, 0, 2], 7));
    asim.spawn_in(server, async {
        let listener = TcpListener::bind("0.0.0.0:7").await.unwrap();
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            aio::spawn(async move {
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
            })
            .unwrap();
        }
    });
    for pod in client_pods {
        asim.spawn_in(pod, async move {
            for _ in 0..conns {
                let mut s = TcpStream::connect(server_addr).await.unwrap();
                s.write_all(b"ping").await.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"ping");
            }
        });
    }
    asim
}

/// Runs until every client is done (the server's accept loop stays).
fn run(mut asim: AsyncSim) -> AsyncSim {
    assert!(asim.run_until_tasks_done_except(1, Duration::from_secs(600)), "clients finished");
    asim
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("aio_tcp_clients");
    g.sample_size(10);
    for (clients, conns) in [(100, 10), (400, 5), (1000, 1)] {
        let id = BenchmarkId::from_parameter(format!("{clients}x{conns}"));
        g.bench_with_input(id, &(clients, conns), |b, &(n, k)| {
            b.iter_batched(|| world(n, k), run, BatchSize::PerIteration)
        });
        let id = BenchmarkId::new("with_build", format!("{clients}x{conns}"));
        g.bench_with_input(id, &(clients, conns), |b, &(n, k)| b.iter(|| run(world(n, k))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
