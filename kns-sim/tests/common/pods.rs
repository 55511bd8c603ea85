//! A hand-built cluster for the async-pod tests: nodes on a `fabric0` bridge in the root
//! namespace, each with a `cni0` bridge, its pods behind veths, and flannel host-gw routes.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use kns_sim::Sim;
use kns_sim::net::{NetnsId, RouteSpec};
use kns_sim::stack::{SmolStack, StackConfig};

/// Node `k`'s address on the fabric.
pub fn node_addr(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, (k + 1) as u8)
}

/// Pod `i` of node `k`.
pub fn pod_addr(k: usize, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, k as u8, (i + 2) as u8)
}

/// The pods of a hand-built cluster, by node.
pub struct Pods {
    pub nodes: Vec<NetnsId>,
    pub pods: Vec<Vec<NetnsId>>,
}

impl Pods {
    /// Pod `i` of node `k`.
    pub fn pod(&self, k: usize, i: usize) -> NetnsId {
        self.pods[k][i]
    }
}

/// A cluster with `per_node[k]` pods on node `k` (at most 250 each), every pod with a
/// smoltcp stack; pods are named `pod-<k>-<i>`.
pub fn cluster(seed: u64, per_node: &[usize]) -> (Sim, Pods) {
    let mut sim = Sim::new(seed);
    sim.link_add_bridge(Sim::ROOT, "fabric0").unwrap();
    sim.link_set_up(Sim::ROOT, "fabric0", true).unwrap();
    let mut nodes = Vec::new();
    for k in 0..per_node.len() {
        let node = sim.netns_add(&format!("node-{k}")).unwrap();
        sim.set_ip_forward(node, true);
        let port = format!("n{k}");
        sim.link_add_veth(Sim::ROOT, &port, "eth0", Some(node)).unwrap();
        sim.link_set_master(Sim::ROOT, &port, Some("fabric0")).unwrap();
        sim.link_set_up(Sim::ROOT, &port, true).unwrap();
        sim.addr_add(node, "eth0", format!("{}/24", node_addr(k)).parse().unwrap()).unwrap();
        sim.link_set_up(node, "eth0", true).unwrap();
        sim.link_add_bridge(node, "cni0").unwrap();
        sim.link_set_up(node, "cni0", true).unwrap();
        sim.addr_add(node, "cni0", format!("10.244.{k}.1/24").parse().unwrap()).unwrap();
        nodes.push(node);
    }
    for (k, node) in nodes.iter().enumerate() {
        for j in 0..per_node.len() {
            if j != k {
                let to = format!("10.244.{j}.0/24").parse().unwrap();
                sim.route_add(*node, &RouteSpec::via(to, IpAddr::V4(node_addr(j))), false).unwrap();
            }
        }
    }
    let mut pods = Vec::new();
    for (k, &n) in per_node.iter().enumerate() {
        let mut on_node = Vec::new();
        for i in 0..n {
            let ns = sim.netns_add(&format!("pod-{k}-{i}")).unwrap();
            let host = format!("veth{i}");
            sim.link_add_veth(nodes[k], &host, "eth0", Some(ns)).unwrap();
            sim.link_set_master(nodes[k], &host, Some("cni0")).unwrap();
            sim.link_set_up(nodes[k], &host, true).unwrap();
            sim.addr_add(ns, "eth0", format!("{}/24", pod_addr(k, i)).parse().unwrap()).unwrap();
            sim.link_set_up(ns, "eth0", true).unwrap();
            let gw = IpAddr::V4(Ipv4Addr::new(10, 244, k as u8, 1));
            sim.route_add(ns, &RouteSpec::via("0.0.0.0/0".parse().unwrap(), gw), false).unwrap();
            let seed = sim.child_seed();
            sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(seed), sim.now()));
            on_node.push(ns);
        }
        pods.push(on_node);
    }
    sim.run_until_idle(1_000_000).unwrap();
    (sim, Pods { nodes, pods })
}

/// Runs one iptables command in `ns`.
pub fn iptables(sim: &mut Sim, ns: NetnsId, args: &str) {
    let now = sim.now();
    let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
    sim.netfilter_mut(ns).iptables(now, &args).unwrap();
}
