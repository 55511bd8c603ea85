//! A cluster built from manifests: nodes, CNI-wired pods, cross-node routes, SNAT outside.

use kns_core::manifest::load_str;
use kns_core::model::{Cluster, CniMode};
use kns_sim::cluster::{ClusterNet, ClusterOptions, delivered};
use kns_sim::stack::apps::ProbeConfig;

const DEMO: &str = include_str!("../../examples/manifests/demo.yaml");

fn demo(mode: CniMode) -> Cluster {
    let mut c = load_str("demo.yaml", DEMO).expect("the demo loads").cluster;
    c.config.cni = mode;
    c
}

fn build(mode: CniMode) -> ClusterNet {
    ClusterNet::build(demo(mode), ClusterOptions::default()).expect("the demo builds")
}

#[test]
fn pods_keep_their_model_addresses_and_reach_each_other_in_both_modes() {
    for mode in [CniMode::Routed, CniMode::Overlay] {
        let model = demo(mode);
        let mut net = build(mode);
        for p in model.pods_sorted() {
            assert_eq!(net.cluster().pod(p).ip, model.pod(p).ip, "{}", model.pod_ref(p));
        }
        let pods = net.cluster().pods_sorted();
        let (a, b) = (pods[0], pods[pods.len() - 1]);
        assert_ne!(net.cluster().pod(a).node, net.cluster().pod(b).node, "two nodes");
        let ns = net.pod_ns(a).unwrap();
        let out = net.ping(ns, net.pod_ip(b), 2).unwrap();
        assert!(out.contains("2 received"), "{mode:?}:\n{out}");
    }
}

/// The packet matrix (real connections) says exactly what the policy matrix (semantics) says.
fn assert_packet_equals_policy(net: &mut ClusterNet, what: &str) {
    let ports = kns_core::policy::default_ports(net.cluster());
    assert!(!ports.is_empty());
    let packets = net.packet_matrix(&ports, &ProbeConfig::default()).expect("all probes finish");
    let policy = kns_core::policy::fast_matrix(net.cluster(), &ports);
    assert_eq!(policy.pods(), &packets.pods[..]);
    let mut mismatches = Vec::new();
    for (pi, pp) in ports.iter().enumerate() {
        for (f, from) in packets.pods.iter().enumerate() {
            for (t, to) in packets.pods.iter().enumerate() {
                let outcome = &packets.outcomes[pi][f][t];
                if delivered(outcome) != policy.allowed(pi, f, t) {
                    mismatches.push(format!(
                        "{pp} {} -> {}: policy {} packet {outcome}",
                        net.cluster().pod_ref(*from),
                        net.cluster().pod_ref(*to),
                        policy.allowed(pi, f, t)
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{what}:\n{}", mismatches.join("\n"));
}

#[test]
fn packet_matrix_equals_policy_matrix_on_the_demo() {
    for mode in [CniMode::Routed, CniMode::Overlay] {
        let mut net = build(mode);
        assert_packet_equals_policy(&mut net, &format!("{mode:?}"));
    }
}
