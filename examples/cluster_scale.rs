//! How long a whole cluster takes to build, and to probe for real.
//!
//! ```sh
//! cargo run --release --example cluster_scale                 # 10,000 pods on 100 nodes; matrices of 100 and 1,000 pods
//! cargo run --release --example cluster_scale -- 2000 20 100  # pods, nodes, pods of the largest packet matrix
//! ```
//!
//! The build is the real path: every node gets its namespace, bridge, routes and policy agent;
//! every pod its namespace, a socket stack, the loopback and bridge + host-local CNI chain, and
//! an agnhost-like server on its declared ports. The packet matrix then opens a real
//! connection from every pod to every pod on 80/TCP through that network and the policy agent,
//! and is checked against the policy matrix.

use std::net::IpAddr;
use std::time::Instant;

use kns::core::flow::{PortProtocol, Protocol};
use kns::core::model::{Cluster, Node, NodeId};
use kns::core::policy::fast_matrix;
use kns::core::testing::synthetic_cluster;
use kns::sim::cluster::{ClusterNet, ClusterOptions, delivered};
use kns::sim::stack::apps::ProbeConfig;

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}

/// A synthetic cluster (one policy per 10 pods) spread evenly over `nodes` nodes.
fn cluster(pods: usize, nodes: usize) -> Cluster {
    let mut c = synthetic_cluster(pods, (pods / 50).max(1), pods / 10, 7);
    c.nodes.clear();
    for k in 0..nodes {
        c.nodes.push(Node {
            id: NodeId(k as u32),
            name: format!("node-{k}"),
            ip: format!("192.168.{}.{}", k / 250, k % 250 + 1).parse().expect("valid"),
            pod_cidr: format!("10.{}.{}.0/24", 244 + k / 256, k % 256).parse().expect("valid"),
            labels: Default::default(),
        });
    }
    c.config.node_cidr = "192.168.0.0/16".parse().expect("valid");
    c.config.pod_cidr = "10.244.0.0/14".parse().expect("valid");
    let per_node = pods.div_ceil(nodes);
    assert!(per_node <= 250, "at most 250 pods per node (one /24 each)");
    for (i, pod) in c.pods.iter_mut().enumerate() {
        let (k, j) = (i / per_node, i % per_node);
        let ip: IpAddr =
            format!("10.{}.{}.{}", 244 + k / 256, k % 256, j + 2).parse().expect("valid");
        pod.node = NodeId(k as u32);
        pod.ip = ip;
        pod.ips = vec![ip];
    }
    c
}

fn build(pods: usize, nodes: usize) -> (ClusterNet, f64, Option<u64>) {
    let c = cluster(pods, nodes);
    let rss0 = resident_bytes();
    let start = Instant::now();
    let net = ClusterNet::build(c, ClusterOptions::default()).expect("the cluster builds");
    let secs = start.elapsed().as_secs_f64();
    let grown = rss0.zip(resident_bytes()).map(|(a, b)| b.saturating_sub(a));
    (net, secs, grown)
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let pods = args.next().unwrap_or(10_000);
    let nodes = args.next().unwrap_or(100);
    let matrix_pods = args.next().unwrap_or(1_000);

    let (net, secs, grown) = build(pods, nodes);
    println!("build: {pods} pods on {nodes} nodes in {secs:.2} s");
    if let Some(bytes) = grown {
        println!(
            "  memory: {:.0} MiB resident growth, {:.1} KiB per pod",
            bytes as f64 / 1048576.0,
            bytes as f64 / 1024.0 / pods as f64
        );
    }
    println!(
        "  namespaces: {}, pods running: {}",
        net.sim().netns_list().len(),
        net.cluster().pods.len()
    );
    drop(net);

    let port = PortProtocol::new(80, Protocol::Tcp);
    let mut sizes = vec![100, matrix_pods];
    sizes.dedup();
    for n in sizes {
        let (mut net, _, _) = build(n, (n / 100).max(2));
        let start = Instant::now();
        let m = net.packet_matrix(&[port], &ProbeConfig::default()).expect("every probe finishes");
        let secs = start.elapsed().as_secs_f64();
        let policy = fast_matrix(net.cluster(), &[port]);
        let mut allowed = 0usize;
        let mut mismatches = 0usize;
        for f in 0..m.pods.len() {
            for t in 0..m.pods.len() {
                let d = delivered(&m.outcomes[0][f][t]);
                allowed += usize::from(d);
                mismatches += usize::from(d != policy.allowed(0, f, t));
            }
        }
        let probes = m.pods.len() * m.pods.len();
        println!(
            "packet matrix: {n} pods, {probes} connections in {secs:.2} s ({:.0} per second), {:.1} s virtual, {allowed} allowed, {mismatches} differ from the policy matrix",
            probes as f64 / secs,
            m.virtual_time.as_secs_f64()
        );
        assert_eq!(mismatches, 0, "packet mode must equal policy mode");
    }
}
