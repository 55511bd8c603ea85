//! A cluster built from manifests: nodes, CNI-wired pods, cross-node routes, SNAT outside.

use std::net::{IpAddr, SocketAddr};

use kns_core::flow::Protocol;
use kns_core::manifest::load_str;
use kns_core::model::{Cluster, CniMode};
use kns_sim::cluster::{ClusterNet, ClusterOptions, Source, delivered};
use kns_sim::stack::SmolStack;
use kns_sim::stack::apps::{AgnhostServer, ProbeConfig, ProbeOutcome};

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
    let config = net.matrix_probe_config();
    let packets = net.packet_matrix(&ports, &config).expect("all probes finish");
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

/// Two nodes; `server` serves 80/TCP and 53/UDP on node-1, `client` and `other` run on node-2.
const SMALL: &str = r#"
apiVersion: kns.dev/v1alpha1
kind: Cluster
metadata: {name: small}
spec:
  nodes: [{name: node-1}, {name: node-2}]
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: default, labels: {app: server}}
spec:
  nodeName: node-1
  containers:
  - name: web
    ports: [{containerPort: 80}, {containerPort: 53, protocol: UDP}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec:
  nodeName: node-2
  containers: [{name: c}]
---
apiVersion: v1
kind: Pod
metadata: {name: neighbour, namespace: default, labels: {app: neighbour}}
spec:
  nodeName: node-1
  containers: [{name: c, ports: [{containerPort: 8080}]}]
"#;

fn small(mode: CniMode, enforce: bool, extra: &str) -> ClusterNet {
    let text = format!("{SMALL}{extra}");
    let mut c = load_str("small.yaml", &text).expect("the small cluster loads").cluster;
    c.config.cni = mode;
    c.config.enforce_policy = enforce;
    ClusterNet::build(c, ClusterOptions::default()).expect("it builds")
}

fn pod(net: &ClusterNet, name: &str) -> kns_core::model::PodId {
    net.cluster().pod_by_name("default", name).expect("declared").id
}

fn probe(
    net: &mut ClusterNet,
    from: Source,
    to: IpAddr,
    port: u16,
    proto: Protocol,
) -> ProbeOutcome {
    net.probe(from, SocketAddr::new(to, port), proto, ProbeConfig::default()).unwrap().outcome
}

fn reply(o: &ProbeOutcome) -> Option<&str> {
    match o {
        ProbeOutcome::Connected { reply, .. } => reply.as_deref(),
        _ => None,
    }
}

/// Source addresses of TCP packets that reached `ns` (from the hop trace).
fn sources_seen(net: &ClusterNet, ns: &str, port: u16) -> Vec<String> {
    let mut out: Vec<String> = net
        .sim()
        .trace()
        .iter()
        .filter(|e| e.ns == ns)
        .map(|e| e.to_string())
        .filter(|t| t.contains(" rx: TCP ") && t.contains(&format!(":{port} [S]")))
        .filter_map(|t| {
            t.split(" rx: TCP ").nth(1).and_then(|r| r.split(':').next()).map(str::to_string)
        })
        .collect();
    out.dedup();
    out
}

#[test]
fn pods_reach_each_other_without_nat_on_both_modes() {
    for mode in [CniMode::Routed, CniMode::Overlay] {
        let mut net = small(mode, true, "");
        let (server, client, neighbour) =
            (pod(&net, "server"), pod(&net, "client"), pod(&net, "neighbour"));
        net.sim_mut().enable_trace();
        let server_ip = net.pod_ip(server);
        for from in [client, neighbour] {
            let o = probe(&mut net, Source::Pod(from), server_ip, 80, Protocol::Tcp);
            assert_eq!(reply(&o), Some("server"), "{mode:?}: {o}");
            let o = probe(&mut net, Source::Pod(from), server_ip, 53, Protocol::Udp);
            assert_eq!(reply(&o), Some("server"), "{mode:?} UDP: {o}");
        }
        // The server saw each client's own pod address: nothing NATs pod-to-pod traffic.
        let seen = sources_seen(&net, "default.server", 80);
        let want = vec![net.pod_ip(client).to_string(), net.pod_ip(neighbour).to_string()];
        assert_eq!(seen, want, "{mode:?}");
        // A port nobody serves is refused by the pod itself.
        assert_eq!(
            probe(&mut net, Source::Pod(client), server_ip, 81, Protocol::Tcp),
            ProbeOutcome::Refused
        );
    }
}

#[test]
fn node_agents_reach_their_pods_and_pods_reach_the_internet_through_snat() {
    let mut net = small(CniMode::Routed, true, "");
    let server = pod(&net, "server");
    let node1 = net.cluster().pod(server).node;
    let server_ip = net.pod_ip(server);
    let o = probe(&mut net, Source::Node(node1), server_ip, 80, Protocol::Tcp);
    assert_eq!(reply(&o), Some("server"), "{o}");
    // An internet web server; the pod's connection leaves with its node's address.
    let internet = net.outside().internet;
    let stack = net.sim_mut().stack_mut::<SmolStack>(internet).unwrap();
    stack.spawn(AgnhostServer::for_pod("example.com", [(80, Protocol::Tcp)]));
    net.sim_mut().kick(internet);
    net.sim_mut().enable_trace();
    let host = net.outside().host;
    let client = pod(&net, "client");
    let o = probe(&mut net, Source::Pod(client), host, 80, Protocol::Tcp);
    assert_eq!(reply(&o), Some("example.com"), "{o}");
    let node2 = net.cluster().pod(client).node;
    assert_eq!(sources_seen(&net, "internet", 80), vec![net.node(node2).ip.to_string()]);
    // The internet cannot open connections to pod addresses: they are not routable outside.
    let o = probe(&mut net, Source::Internet, server_ip, 80, Protocol::Tcp);
    assert!(!o.is_connected(), "{o}");
}

#[test]
fn deleting_frees_the_address_and_restarting_may_change_it() {
    let mut net = small(CniMode::Routed, true, "");
    let server = pod(&net, "server");
    let node = net.cluster().pod(server).node;
    let old = net.pod_ip(server);
    let reservation = format!("/var/lib/cni/networks/kns/{old}");
    assert!(net.node_files(node).read(&reservation).is_ok(), "host-local reserved it");
    let new = net.restart_pod(server).unwrap();
    assert_ne!(new, old, "host-local hands out the next free address");
    assert!(net.node_files(node).read(&reservation).is_err(), "the old one was released");
    let client = pod(&net, "client");
    assert_eq!(
        reply(&probe(&mut net, Source::Pod(client), new, 80, Protocol::Tcp)),
        Some("server")
    );
    assert!(!probe(&mut net, Source::Pod(client), old, 80, Protocol::Tcp).is_connected());
    net.delete_pod(server).unwrap();
    assert!(net.node_files(node).read(&format!("/var/lib/cni/networks/kns/{new}")).is_err());
    assert!(net.pod(server).is_none());
    assert!(net.sim().netns(Some("default.server")).is_err(), "its namespace is gone");
    assert!(net.delete_pod(server).is_err(), "deleting twice names the problem");
}

#[test]
fn check_detects_broken_wiring_and_gc_removes_only_leftovers() {
    let mut net = small(CniMode::Routed, true, "");
    let (server, neighbour) = (pod(&net, "server"), pod(&net, "neighbour"));
    net.check_pod(server).expect("intact after ADD");
    let node = net.cluster().pod(server).node;
    let node_ns = net.node(node).ns;
    let veth = net.pod(server).unwrap().host_if.clone().unwrap();
    net.sim_mut().link_del(node_ns, &veth).unwrap();
    let err = net.check_pod(server).unwrap_err().to_string();
    assert!(err.contains("CHECK"), "{err}");
    net.check_pod(neighbour).expect("the other pod is untouched");
    // A leftover reservation of a sandbox that no longer exists.
    let leftover = "/var/lib/cni/networks/kns/10.244.0.200";
    net.node_files(node).write(leftover, "deadbeef\r\neth0");
    net.gc_node(node).unwrap();
    assert!(net.node_files(node).read(leftover).is_err(), "GC released the leftover");
    let kept = format!("/var/lib/cni/networks/kns/{}", net.pod_ip(neighbour));
    assert!(net.node_files(node).read(&kept).is_ok(), "GC kept the running pod's address");
}

const DENY_SERVER_EGRESS: &str = r#"
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-no-egress, namespace: default}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-from-client, namespace: default}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
"#;

#[test]
fn replies_need_no_egress_rule_and_unenforced_policies_warn() {
    let mut net = small(CniMode::Overlay, true, DENY_SERVER_EGRESS);
    assert!(net.warnings().is_empty());
    let (server, client, neighbour) =
        (pod(&net, "server"), pod(&net, "client"), pod(&net, "neighbour"));
    let ip = net.pod_ip(server);
    assert_eq!(reply(&probe(&mut net, Source::Pod(client), ip, 80, Protocol::Tcp)), Some("server"));
    assert_eq!(
        probe(&mut net, Source::Pod(neighbour), ip, 80, Protocol::Tcp),
        ProbeOutcome::Filtered
    );
    let nip = net.pod_ip(neighbour);
    assert_eq!(
        probe(&mut net, Source::Pod(server), nip, 8080, Protocol::Tcp),
        ProbeOutcome::Filtered
    );
    assert_packet_equals_policy(&mut net, "egress/ingress policies");

    // The same cluster on a plugin without a policy agent: everything passes, with a warning.
    let mut open = small(CniMode::Overlay, false, DENY_SERVER_EGRESS);
    assert_eq!(
        open.warnings(),
        ["2 NetworkPolicies exist but the network plugin does not enforce them"]
    );
    assert!(probe(&mut open, Source::Pod(neighbour), ip, 80, Protocol::Tcp).is_connected());
    assert!(probe(&mut open, Source::Pod(server), nip, 8080, Protocol::Tcp).is_connected());
}
