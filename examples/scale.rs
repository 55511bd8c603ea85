//! Scale figures for a cluster-shaped network: nodes on one L2 fabric, each with a `cni0`
//! bridge and its pods, routes between nodes as flannel's host-gw backend installs them, and a
//! smoltcp stack in every pod. Every pod then pings a pod on the next node.
//!
//! ```sh
//! cargo run --release --example scale -- 10000      # pods (100 per node)
//! cargo run --release --example scale -- 10000 50   # pods, pods per node
//! ```
//!
//! Prints the memory per pod (resident set growth, Linux only), the build time, and how many
//! frames per real second the pings pushed through the emulated devices.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use kns::sim::Sim;
use kns::sim::net::{NetnsId, RouteSpec};
use kns::sim::stack::apps::{Ping, PingConfig};
use kns::sim::stack::{AppId, SmolStack, StackConfig};

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}

/// Node `k`'s address on the fabric.
fn node_addr(k: u32) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, (k / 250) as u8, (k % 250 + 1) as u8)
}

/// Pod `i` of node `k`.
fn pod_addr(k: u32, i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, k as u8, (i + 2) as u8)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let pods: u32 = args.next().map_or(10_000, |a| a.parse().expect("a pod count"));
    let per_node: u32 = args.next().map_or(100, |a| a.parse().expect("pods per node"));
    assert!((1..=250).contains(&per_node), "1 to 250 pods per node");
    let nodes = pods.div_ceil(per_node);
    assert!((2..=256).contains(&nodes), "2 to 256 nodes (one /24 of 10.244.0.0/16 each)");

    let rss0 = resident_bytes();
    let start = Instant::now();
    let mut sim = Sim::new(1);
    sim.link_add_bridge(Sim::ROOT, "fabric0").unwrap();
    sim.link_set_up(Sim::ROOT, "fabric0", true).unwrap();
    let mut node_ns = Vec::new();
    for k in 0..nodes {
        let node = sim.netns_add(&format!("node{k}")).unwrap();
        sim.set_ip_forward(node, true);
        let port = format!("n{k}");
        sim.link_add_veth(Sim::ROOT, &port, "eth0", Some(node)).unwrap();
        sim.link_set_master(Sim::ROOT, &port, Some("fabric0")).unwrap();
        sim.link_set_up(Sim::ROOT, &port, true).unwrap();
        sim.addr_add(node, "eth0", format!("{}/16", node_addr(k)).parse().unwrap()).unwrap();
        sim.link_set_up(node, "eth0", true).unwrap();
        sim.link_add_bridge(node, "cni0").unwrap();
        sim.link_set_up(node, "cni0", true).unwrap();
        sim.addr_add(node, "cni0", format!("10.244.{k}.1/24").parse().unwrap()).unwrap();
        node_ns.push(node);
    }
    // host-gw: every node routes every other node's pod subnet via that node's address.
    for (k, node) in node_ns.iter().enumerate() {
        for j in 0..nodes {
            if j as usize != k {
                let spec = RouteSpec::via(
                    format!("10.244.{j}.0/24").parse().unwrap(),
                    IpAddr::V4(node_addr(j)),
                );
                sim.route_add(*node, &spec, false).unwrap();
            }
        }
    }
    let mut pod_ns: Vec<(NetnsId, u32, u32)> = Vec::with_capacity(pods as usize);
    for p in 0..pods {
        let (k, i) = (p / per_node, p % per_node);
        let node = node_ns[k as usize];
        let ns = sim.netns_add(&format!("pod{k}-{i}")).unwrap();
        let host = format!("veth{i}");
        sim.link_add_veth(node, &host, "eth0", Some(ns)).unwrap();
        sim.link_set_master(node, &host, Some("cni0")).unwrap();
        sim.link_set_up(node, &host, true).unwrap();
        sim.addr_add(ns, "eth0", format!("{}/24", pod_addr(k, i)).parse().unwrap()).unwrap();
        sim.link_set_up(ns, "eth0", true).unwrap();
        let gw = IpAddr::V4(Ipv4Addr::new(10, 244, k as u8, 1));
        sim.route_add(ns, &RouteSpec::via("0.0.0.0/0".parse().unwrap(), gw), false).unwrap();
        let seed = sim.child_seed();
        sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(seed), sim.now()));
        pod_ns.push((ns, k, i));
    }
    let built = start.elapsed();
    let rss1 = resident_bytes();
    sim.run_until_idle(u64::MAX).unwrap();

    // Every pod pings the pod with the same index on the next node (or the first pod there).
    let sent_before = sim.conservation().sent;
    let start = Instant::now();
    let mut pings: Vec<AppId> = Vec::with_capacity(pod_ns.len());
    for (ns, k, i) in &pod_ns {
        let next = (k + 1) % nodes;
        let on_next = pods.saturating_sub(next * per_node).min(per_node);
        let dst = IpAddr::V4(pod_addr(next, i % on_next.max(1)));
        let mut config = PingConfig::new(dst, 1);
        config.timeout = Duration::from_secs(2);
        pings.push(sim.stack_mut::<SmolStack>(*ns).unwrap().spawn(Ping::new(config)));
        sim.kick(*ns);
    }
    sim.run_until_idle(u64::MAX).unwrap();
    let ran = start.elapsed();
    let frames = sim.conservation().sent - sent_before;
    let ok = pod_ns
        .iter()
        .zip(&pings)
        .filter(|((ns, _, _), id)| {
            sim.stack_mut::<SmolStack>(*ns)
                .and_then(|s| s.app::<Ping>(**id))
                .is_some_and(Ping::success)
        })
        .count();
    let c = sim.conservation();

    println!("cluster: {nodes} nodes, {pods} pods ({per_node} per node), flannel host-gw routes");
    println!("build time: {:.2} s", built.as_secs_f64());
    if let (Some(a), Some(b)) = (rss0, rss1) {
        let grown = b.saturating_sub(a) as f64;
        println!(
            "memory: {:.1} MiB in all, {:.1} KiB per pod namespace (resident set growth)",
            grown / 1_048_576.0,
            grown / f64::from(pods) / 1024.0
        );
    }
    println!("pings answered: {ok} of {pods}");
    println!(
        "frames sent: {frames} (ARP included) in {:.2} s real = {:.0} frames/s",
        ran.as_secs_f64(),
        frames as f64 / ran.as_secs_f64()
    );
    println!("conservation: {c}");
    assert!(c.holds(), "every frame sent was delivered or dropped with a reason");
    assert_eq!(ok, pods as usize, "every ping was answered");
}
