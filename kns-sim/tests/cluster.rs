//! A cluster built from manifests: nodes, CNI-wired pods, cross-node routes, SNAT outside.

use kns_core::manifest::load_str;
use kns_core::model::{Cluster, CniMode};
use kns_sim::cluster::{ClusterNet, ClusterOptions};

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
