//! `--mode packet` equals `--mode policy`: real connections through a built cluster (CNI-wired
//! pods, policy agent) give the same reachability as the policy semantics, on every upstream
//! conformance fixture and on generated clusters and policies.

use std::net::IpAddr;
use std::path::PathBuf;

use kns_core::flow::PortProtocol;
use kns_core::manifest::Loader;
use kns_core::model::{Cluster, CniMode, Node, NodeId};
use kns_core::policy::fast_matrix;
use kns_sim::cluster::{ClusterNet, ClusterOptions, delivered};
use kns_sim::stack::apps::ProbeConfig;
use proptest::prelude::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kns-core/tests/fixtures/conformance")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The fixtures fix pod `i` (0-based, in (namespace, name) order) at `10.0.0.<i+1>`, outside
/// kns's pod network. The loader places pod `i` on node `i % 2`; give it an address in that
/// node's slice instead, and map the ipBlock CIDRs the same way, so the cases keep their meaning.
fn readdress(text: &str) -> String {
    let mut out = text.replace("10.0.0.0/16", "10.244.0.0/16");
    for i in (0..9).rev() {
        out = out.replace(&format!("10.0.0.{}", i + 1), &format!("10.244.{}.{}", i % 2, 10 + i));
    }
    out
}

/// The ports an expectation file probes: the line after each blank line.
fn probed_ports(expect: &str) -> Vec<PortProtocol> {
    let lines: Vec<&str> = expect.lines().collect();
    lines.windows(2).filter(|w| w[0].is_empty()).map(|w| w[1].parse().expect("port line")).collect()
}

/// Compares the packet matrix of the built cluster with the policy matrix of its model.
fn mismatches(net: &mut ClusterNet, ports: &[PortProtocol]) -> Vec<String> {
    let packets = net.packet_matrix(ports, &ProbeConfig::default()).expect("all probes finish");
    let policy = fast_matrix(net.cluster(), ports);
    assert_eq!(policy.pods(), &packets.pods[..]);
    let mut out = Vec::new();
    for (pi, pp) in ports.iter().enumerate() {
        for (f, from) in packets.pods.iter().enumerate() {
            for (t, to) in packets.pods.iter().enumerate() {
                let outcome = &packets.outcomes[pi][f][t];
                if delivered(outcome) != policy.allowed(pi, f, t) {
                    out.push(format!(
                        "{pp} {} -> {}: policy says {}, the packet was {outcome}",
                        net.cluster().pod_ref(*from),
                        net.cluster().pod_ref(*to),
                        if policy.allowed(pi, f, t) { "allowed" } else { "denied" },
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn packet_mode_equals_policy_mode_on_every_conformance_fixture() {
    let mut cases: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixture directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".expect.txt").map(str::to_string))
        .collect();
    cases.sort();
    assert!(cases.len() >= 25, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let mut loader = Loader::new();
        loader.add("base.yaml", readdress(&read("base.yaml")));
        loader.add(format!("{case}.yaml"), readdress(&read(&format!("{case}.yaml"))));
        let mut cluster =
            loader.finish().unwrap_or_else(|e| panic!("{case}: {}", e.render())).cluster;
        // Alternate the cross-node mode so both are covered.
        cluster.config.cni = if k % 2 == 0 { CniMode::Routed } else { CniMode::Overlay };
        let ports = probed_ports(&read(&format!("{case}.expect.txt")));
        let mut net = ClusterNet::build(cluster, ClusterOptions::default())
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        for m in mismatches(&mut net, &ports) {
            failures.push(format!("{case}: {m}"));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// A generated cluster placed on two nodes: pod `i` on node `i % 2`, in that node's slice.
fn place(mut cluster: Cluster, mode: CniMode) -> Cluster {
    cluster.config.cni = mode;
    cluster.nodes[0].ip = "192.168.0.10".parse().unwrap();
    cluster.nodes[0].pod_cidr = "10.244.0.0/24".parse().unwrap();
    cluster.nodes.push(Node {
        id: NodeId(1),
        name: "node-2".into(),
        ip: "192.168.0.11".parse().unwrap(),
        pod_cidr: "10.244.1.0/24".parse().unwrap(),
        labels: Default::default(),
    });
    for (i, pod) in cluster.pods.iter_mut().enumerate() {
        let ip: IpAddr = format!("10.244.{}.{}", i % 2, i + 10).parse().unwrap();
        pod.node = NodeId((i % 2) as u32);
        pod.ip = ip;
        pod.ips = vec![ip];
    }
    cluster
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn packet_mode_equals_policy_mode_on_generated_clusters(
        cluster in kns_core::testing::strategies::cluster(),
        overlay in any::<bool>(),
    ) {
        let mode = if overlay { CniMode::Overlay } else { CniMode::Routed };
        let cluster = place(cluster, mode);
        let ports = kns_core::testing::strategies::probe_ports();
        let mut net = ClusterNet::build(cluster, ClusterOptions::default()).expect("it builds");
        let m = mismatches(&mut net, &ports);
        prop_assert!(m.is_empty(), "{}", m.join("\n"));
    }
}

/// A 100-pod synthetic cluster on two nodes: 10,000 simultaneous handshakes overflow device
/// queues on the first burst; the retried probes still agree with the policy matrix.
#[test]
fn packet_mode_equals_policy_mode_on_a_100_pod_synthetic_cluster() {
    let mut c = kns_core::testing::synthetic_cluster(100, 2, 10, 7);
    c.nodes.truncate(1);
    let c = place(c, CniMode::Routed);
    let mut net = ClusterNet::build(c, ClusterOptions::default()).expect("it builds");
    let m = mismatches(&mut net, &[PortProtocol::new(80, kns_core::flow::Protocol::Tcp)]);
    assert!(m.is_empty(), "{} mismatches:\n{}", m.len(), m.join("\n"));
}
