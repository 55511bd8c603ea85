//! Every kind of Service in a living cluster, with real packets: LoadBalancer (announced on
//! the node network), ExternalName, headless, selector-less, session affinity, traffic
//! policies and hairpin; and the service-link environment variables pods start with.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use kns_core::flow::Protocol;
use kns_core::manifest::load_str;
use kns_core::model::{NodeId, PodId};
use kns_sim::cluster::{ClusterNet, ClusterOptions, Source};
use kns_sim::net::TraceWhat;
use kns_sim::stack::apps::{ProbeConfig, ProbeOutcome};

const CLUSTER: &str = r#"
apiVersion: kns.dev/v1alpha1
kind: Cluster
metadata: {name: types}
spec:
  nodes:
  - {name: n1}
  - {name: n2}
  - {name: n3}
"#;

/// A Deployment `name` of `replicas` agnhost pods serving TCP and UDP 8080, pinned to `node`
/// when given.
fn deployment(name: &str, replicas: u32, node: Option<&str>) -> String {
    let pin = node.map(|n| format!("nodeName: {n}, ")).unwrap_or_default();
    format!(
        r#"---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{{pin}containers: [{{name: c, image: i, ports: [{{containerPort: 8080}}, {{containerPort: 8080, protocol: UDP}}]}}]}}
"#
    )
}

/// A Pod `name` on `node` with no ports.
fn client(name: &str, node: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{nodeName: {node}, containers: [{{name: c, image: i}}]}}\n"
    )
}

fn build(yaml: &str) -> ClusterNet {
    let c =
        load_str("types.yaml", &format!("{CLUSTER}{yaml}")).expect("the manifest loads").cluster;
    ClusterNet::build(c, ClusterOptions::default()).expect("the cluster builds")
}

fn pod(net: &ClusterNet, name: &str) -> PodId {
    net.cluster().pod_by_ref(&format!("default/{name}")).expect("pod").id
}

fn pods_of(net: &ClusterNet, app: &str) -> Vec<PodId> {
    let c = net.cluster();
    c.pods
        .iter()
        .filter(|p| p.labels.get("app").map(String::as_str) == Some(app))
        .map(|p| p.id)
        .collect()
}

fn names(net: &ClusterNet, ids: &[PodId]) -> BTreeSet<String> {
    ids.iter().map(|id| net.cluster().pod(*id).name.clone()).collect()
}

fn node(net: &ClusterNet, name: &str) -> NodeId {
    net.cluster().node_by_name(name).expect("node").id
}

fn service(net: &ClusterNet, name: &str) -> kns_core::model::Service {
    net.cluster().service_by_name("default", name).expect("service").clone()
}

fn probe(net: &mut ClusterNet, from: Source, to: SocketAddr, protocol: Protocol) -> ProbeOutcome {
    let config = ProbeConfig { udp_payload: b"clientip\n".to_vec(), ..ProbeConfig::default() };
    net.probe(from, to, protocol, config).expect("the probe finishes").outcome
}

fn tcp(net: &mut ClusterNet, from: Source, to: SocketAddr) -> ProbeOutcome {
    probe(net, from, to, Protocol::Tcp)
}

/// The reply of a connected probe.
fn reply(outcome: &ProbeOutcome) -> String {
    match outcome {
        ProbeOutcome::Connected { reply: Some(r), .. } => r.trim().to_string(),
        other => panic!("expected a connection with a reply, got {other:?}"),
    }
}

/// The client address a backend saw (agnhost's UDP `clientip` command): `IP:port`.
fn client_ip(net: &mut ClusterNet, from: Source, to: SocketAddr) -> IpAddr {
    let r = reply(&probe(net, from, to, Protocol::Udp));
    r.parse::<SocketAddr>().unwrap_or_else(|_| panic!("not an address: {r:?}")).ip()
}

// ---- LoadBalancer ----------------------------------------------------------------------

const LB: &str = r#"
---
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {name: tcp, port: 80, targetPort: 8080}
  - {name: udp, port: 80, targetPort: 8080, protocol: UDP}
"#;

#[test]
fn load_balancer_from_the_internet_reaches_a_backend_through_one_announcing_node() {
    let mut net = build(&format!("{}{LB}", deployment("web", 3, None)));
    let svc = service(&net, "web-lb");
    let lb: IpAddr = "192.168.0.240".parse().unwrap();
    assert_eq!(svc.load_balancer_ips, [lb], "the first address of the default pool");
    let web = names(&net, &pods_of(&net, "web"));

    // Exactly one node answers ARP for the address.
    let announcing: Vec<&str> = net
        .nodes()
        .iter()
        .filter(|n| !net.sim().arp_announced(n.ns).is_empty())
        .map(|n| net.sim().netns_name(n.ns))
        .collect();
    assert_eq!(announcing.len(), 1, "{announcing:?}");
    let leader = net.lb_leader(lb).expect("a leader");
    assert_eq!(announcing[0], net.cluster().node(leader).name);

    net.sim_mut().enable_trace();
    let name = reply(&tcp(&mut net, Source::Internet, SocketAddr::new(lb, 80)));
    assert!(web.contains(&name), "{name} is not a backend");

    // The router learnt the address at the leader's MAC, from the leader's ARP reply.
    let leader_ns = net.node(leader).ns;
    let leader_mac = {
        let id = net.sim().iface_id(leader_ns, "eth0").unwrap();
        net.sim().iface_mac(id)
    };
    let router = net.outside().router;
    let entry = net.sim().neigh_list(router).into_iter().find(|(ip, ..)| *ip == lb);
    assert_eq!(entry.map(|e| e.2), Some(Some(leader_mac)));
    let answered: BTreeSet<String> = net
        .sim()
        .trace()
        .iter()
        .filter(|e| matches!(&e.what, TraceWhat::Neigh(t) if t.contains("announced 192.168.0.240")))
        .map(|e| e.ns.clone())
        .collect();
    assert_eq!(answered, BTreeSet::from([net.cluster().node(leader).name.clone()]));
    // The leader's kube-proxy did the DNAT.
    let decided = net.kube_proxy(leader).decisions();
    assert!(decided.iter().any(|(_, d)| d.contains("192.168.0.240:80")), "{decided:?}");

    // Its NodePort works on every node, and its cluster IP from a pod.
    let np = svc.ports[0].node_port.expect("a node port");
    for n in net.nodes().to_vec() {
        let name = reply(&tcp(&mut net, Source::Internet, SocketAddr::new(n.ip, np)));
        assert!(web.contains(&name));
    }
    let from = Source::Pod(pods_of(&net, "web")[0]);
    let cip = svc.cluster_ip.expect("a cluster IP");
    assert!(web.contains(&reply(&tcp(&mut net, from, SocketAddr::new(cip, 80)))));
    // Pods reach the load-balancer address too (kube-proxy catches it on their node).
    assert!(web.contains(&reply(&tcp(&mut net, from, SocketAddr::new(lb, 80)))));
}

#[test]
fn an_exhausted_pool_leaves_the_service_pending_and_unannounced() {
    let yaml = format!(
        "{}{LB}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web-lb2}}\nspec: {{type: LoadBalancer, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}\n",
        deployment("web", 2, None)
    );
    let doc = CLUSTER.replace("spec:\n", "spec:\n  loadBalancerPool: 192.168.0.250\n");
    let loaded = load_str("types.yaml", &format!("{doc}{yaml}")).expect("loads");
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].render().contains("web-lb2"), "{}", loaded.warnings[0].render());
    let mut net = ClusterNet::build(loaded.cluster, ClusterOptions::default()).expect("builds");
    assert!(service(&net, "web-lb2").load_balancer_ips.is_empty());
    let ann: Vec<String> = net.lb_announcements().iter().map(|a| a.ip.to_string()).collect();
    assert_eq!(ann, ["192.168.0.250"]);
    // The pending Service still has its NodePort.
    let np = service(&net, "web-lb2").ports[0].node_port.expect("node port");
    let ip = net.nodes()[0].ip;
    assert!(matches!(
        tcp(&mut net, Source::Internet, SocketAddr::new(ip, np)),
        ProbeOutcome::Connected { .. }
    ));
}

#[test]
fn a_local_load_balancer_moves_to_a_node_that_keeps_an_endpoint() {
    let yaml = format!(
        "{}{}{}",
        deployment("a", 1, Some("n1")),
        deployment("b", 1, Some("n2")),
        LB.replace("{app: web}", "{tier: lb}")
            .replace("type: LoadBalancer", "type: LoadBalancer\n  externalTrafficPolicy: Local")
    )
    .replace("labels: {app: a}", "labels: {app: a, tier: lb}")
    .replace("labels: {app: b}", "labels: {app: b, tier: lb}");
    let mut net = build(&yaml);
    let lb: IpAddr = "192.168.0.240".parse().unwrap();
    let first = net.lb_leader(lb).expect("a leader");
    assert_ne!(first, node(&net, "n3"), "n3 has no endpoint, so it may not announce");
    let to = SocketAddr::new(lb, 80);
    let before = client_ip(&mut net, Source::Internet, to);
    assert_eq!(before, net.outside().host, "Local keeps the client address");
    // The endpoint on the leader goes: the other node takes over with a gratuitous ARP, and
    // the router, which knew the old leader, follows.
    let victim =
        if first == node(&net, "n1") { pods_of(&net, "a")[0] } else { pods_of(&net, "b")[0] };
    net.delete_pod(victim).expect("delete");
    let second = net.lb_leader(lb).expect("a new leader");
    assert_ne!(second, first);
    let log: Vec<&str> = net.speaker_log().iter().map(|(_, l)| l.as_str()).collect();
    assert!(log.iter().any(|l| l.contains("stops announcing")), "{log:?}");
    let remaining = names(
        &net,
        &[if first == node(&net, "n1") { pods_of(&net, "b")[0] } else { pods_of(&net, "a")[0] }],
    );
    let got = reply(&tcp(&mut net, Source::Internet, to));
    assert!(remaining.contains(&got), "{got} answered, expected one of {remaining:?}");
}
