//! Services in a living cluster: kube-proxy on every node, endpoints following pods.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use kns_core::flow::Protocol;
use kns_core::manifest::load_str;
use kns_core::model::{Cluster, ProxyMode};
use kns_sim::cluster::{ClusterNet, ClusterOptions, Source};
use kns_sim::stack::apps::{ProbeConfig, ProbeOutcome};

const YAML: &str = r#"
apiVersion: kns.dev/v1alpha1
kind: Cluster
metadata: {name: svc}
spec:
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/12
  nodes:
  - {name: n1}
  - {name: n2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: i, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nothing}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: i}]}
"#;

fn cluster(mode: ProxyMode) -> Cluster {
    let mut c = load_str("svc.yaml", YAML).expect("the manifest loads").cluster;
    c.config.proxy = mode;
    c
}

fn build(mode: ProxyMode) -> ClusterNet {
    ClusterNet::build(cluster(mode), ClusterOptions::default()).expect("the cluster builds")
}

fn service_ip(net: &ClusterNet, name: &str) -> IpAddr {
    let c = net.cluster();
    c.services.iter().find(|s| s.name == name).and_then(|s| s.cluster_ip).expect("a cluster IP")
}

fn client(net: &ClusterNet) -> Source {
    Source::Pod(net.cluster().pod_by_ref("default/client").expect("client").id)
}

fn tcp(net: &mut ClusterNet, from: Source, to: SocketAddr) -> ProbeOutcome {
    net.probe(from, to, Protocol::Tcp, ProbeConfig::default()).expect("the probe finishes").outcome
}

fn reply(outcome: &ProbeOutcome) -> String {
    match outcome {
        ProbeOutcome::Connected { reply: Some(r), .. } => r.trim().to_string(),
        other => panic!("expected a connection with a reply, got {other:?}"),
    }
}

fn backends(net: &ClusterNet) -> Vec<String> {
    let c = net.cluster();
    let mut names: Vec<String> =
        c.pods.iter().filter(|p| p.name.starts_with("web-")).map(|p| p.name.clone()).collect();
    names.sort();
    names
}

#[test]
fn cluster_ip_connects_to_a_backend_and_spreads_in_every_mode() {
    for mode in [ProxyMode::Iptables, ProxyMode::Ipvs, ProxyMode::Nftables, ProxyMode::Maglev] {
        let mut net = build(mode);
        let from = client(&net);
        let vip = SocketAddr::new(service_ip(&net, "web"), 80);
        let pods = backends(&net);
        assert_eq!(pods.len(), 3);
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..30 {
            let name = reply(&tcp(&mut net, from, vip));
            assert!(pods.contains(&name), "{mode:?}: reply {name:?} is not a backend");
            *seen.entry(name).or_default() += 1;
        }
        // Maglev hashes the 5-tuple; source ports vary, so connections spread too.
        assert!(seen.len() >= 2, "{mode:?}: {seen:?}");
        if mode != ProxyMode::Maglev {
            assert_eq!(seen.len(), 3, "{mode:?}: {seen:?}");
        }
        let node = net.cluster().pod(net_pod(&net, "client")).node;
        let counters = net.kube_proxy(node).counters();
        assert_eq!(counters.forwarded, 30, "{mode:?}");
    }
}

fn net_pod(net: &ClusterNet, name: &str) -> kns_core::model::PodId {
    net.cluster().pod_by_ref(&format!("default/{name}")).expect("pod").id
}

#[test]
fn a_restarted_backend_serves_from_its_new_address() {
    let mut net = build(ProxyMode::Iptables);
    let from = client(&net);
    let vip = SocketAddr::new(service_ip(&net, "web"), 80);
    let victim_name = backends(&net)[0].clone();
    let victim = net_pod(&net, &victim_name);
    let old = net.pod_ip(victim);
    let new = net.restart_pod(victim).expect("restart");
    assert_ne!(old, new, "IPAM hands out a new address");
    // The restarted pod answers directly at its new address ...
    assert_eq!(reply(&tcp(&mut net, from, SocketAddr::new(new, 8080))), victim_name);
    // ... and through the Service, which never sends a connection to the old address.
    let mut seen = BTreeMap::<String, usize>::new();
    for _ in 0..40 {
        *seen.entry(reply(&tcp(&mut net, from, vip))).or_default() += 1;
    }
    assert!(seen.contains_key(&victim_name), "{seen:?}");
    assert_eq!(seen.len(), 3, "{seen:?}");
    let table = net.kube_proxy(net.cluster().pod(victim).node).table_text();
    assert!(table.contains(&format!("{new}:8080")), "{table}");
    assert!(!table.contains(&format!("{old}:8080")), "{table}");
}

#[test]
fn a_deleted_backend_leaves_the_endpoints() {
    let mut net = build(ProxyMode::Iptables);
    let from = client(&net);
    let vip = SocketAddr::new(service_ip(&net, "web"), 80);
    let gone = backends(&net)[1].clone();
    net.delete_pod(net_pod(&net, &gone)).expect("delete");
    for _ in 0..20 {
        let name = reply(&tcp(&mut net, from, vip));
        assert_ne!(name, gone);
    }
}

#[test]
fn node_port_from_the_internet_connects_on_every_node() {
    let mut net = build(ProxyMode::Iptables);
    let pods = backends(&net);
    let nodes: Vec<IpAddr> = net.nodes().iter().map(|n| n.ip).collect();
    assert_eq!(nodes.len(), 2);
    for ip in nodes {
        let name = reply(&tcp(&mut net, Source::Internet, SocketAddr::new(ip, 30080)));
        assert!(pods.contains(&name), "{name}");
    }
    // A port no Service uses is refused by the node itself.
    let ip = net.nodes()[0].ip;
    let out = tcp(&mut net, Source::Internet, SocketAddr::new(ip, 30081));
    assert_eq!(out, ProbeOutcome::Refused);
}

#[test]
fn a_service_without_endpoints_is_refused() {
    let mut net = build(ProxyMode::Iptables);
    let from = client(&net);
    let vip = SocketAddr::new(service_ip(&net, "empty"), 80);
    assert_eq!(tcp(&mut net, from, vip), ProbeOutcome::Refused);
    let node = net.cluster().pod(net_pod(&net, "client")).node;
    assert_eq!(net.kube_proxy(node).counters().refused, 1);
}
