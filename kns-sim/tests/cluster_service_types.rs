//! Every kind of Service in a living cluster, with real packets: LoadBalancer (announced on
//! the node network), ExternalName, headless, selector-less, session affinity, traffic
//! policies and hairpin; and the service-link environment variables pods start with.

use std::collections::BTreeSet;
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
    let announcing: Vec<String> = net
        .nodes()
        .iter()
        .filter(|n| !net.sim().arp_announced(n.ns).is_empty())
        .map(|n| net.sim().netns_name(n.ns).to_string())
        .collect();
    assert_eq!(announcing.len(), 1, "{announcing:?}");
    let leader = net.lb_leader(lb).expect("a leader");
    assert_eq!(announcing[0], net.cluster().node(leader).name);
    let shown = net.show();
    let line = format!("192.168.0.240   default/web-lb   {}", announcing[0]);
    assert!(shown.contains(&line), "{shown}");

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

// ---- DNS-only Services: ExternalName and headless ---------------------------------------

const DNS: &str = r#"
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      containers:
      - name: coredns
        image: registry.k8s.io/coredns/coredns:v1.12.0
        ports: [{name: dns, containerPort: 53, protocol: UDP}, {name: dns-tcp, containerPort: 53}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: dns}
  - {name: dns-tcp, port: 53, targetPort: dns-tcp}
"#;

fn resolve(net: &mut ClusterNet, from: Source, name: &str) -> Vec<IpAddr> {
    let l = net.lookup(from, name).expect("the lookup runs");
    match l.result {
        Ok(a) => {
            let mut v = a.addresses;
            v.sort();
            v
        }
        Err(e) => panic!("{name}: {e}\n{}", l.text),
    }
}

#[test]
fn external_name_is_a_cname_in_dns_and_nothing_in_kube_proxy() {
    let yaml = format!(
        "{DNS}{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: ext}}\nspec: {{type: ExternalName, externalName: www.example.com}}\n",
        client("c", "n1")
    );
    let mut net = build(&yaml);
    let from = Source::Pod(pod(&net, "c"));
    let (text, answer) =
        net.dig(from, "ext.default.svc.cluster.local", kns_sim::dns::RecordType::A).unwrap();
    let answer = answer.expect("an answer");
    let cnames: Vec<String> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            kns_sim::dns::RData::Cname(t) => Some(format!("{} -> {}", r.name, t)),
            _ => None,
        })
        .collect();
    assert_eq!(
        cnames.first().map(String::as_str),
        Some("ext.default.svc.cluster.local -> www.example.com"),
        "{text}"
    );
    // The resolver follows the alias to the outside address.
    assert_eq!(resolve(&mut net, from, "ext"), ["203.0.113.10".parse::<IpAddr>().unwrap()]);
    for kp in net.kube_proxies() {
        assert!(!kp.table_text().contains("default/ext"), "{}", kp.table_text());
        assert!(!kp.render_rules().contains("default/ext"));
    }
}

#[test]
fn headless_services_resolve_to_ready_pods_and_stateful_set_pods_by_name() {
    let yaml = format!(
        r#"{DNS}{}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  serviceName: db
  replicas: 3
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{containers: [{{name: c, image: i, ports: [{{containerPort: 5432}}]}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: db}}
spec: {{clusterIP: None, selector: {{app: db}}, ports: [{{port: 5432}}]}}
"#,
        client("c", "n1")
    );
    let mut net = build(&yaml);
    let from = Source::Pod(pod(&net, "c"));
    let ips = |net: &ClusterNet, names: &[&str]| -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = names.iter().map(|n| net.pod_ip(pod(net, n))).collect();
        v.sort();
        v
    };
    assert_eq!(resolve(&mut net, from, "db"), ips(&net, &["db-0", "db-1", "db-2"]));
    assert_eq!(resolve(&mut net, from, "db-1.db"), ips(&net, &["db-1"]));
    assert_eq!(resolve(&mut net, from, "db-0.db.default.svc.cluster.local"), ips(&net, &["db-0"]));
    // A pod name connects: the address is the pod's own.
    let db0 = resolve(&mut net, from, "db-0.db")[0];
    assert!(matches!(
        tcp(&mut net, from, SocketAddr::new(db0, 5432)),
        ProbeOutcome::Connected { .. }
    ));
    // A pod that stops running leaves the answer; kube-proxy has no rule for the Service.
    net.delete_pod(pod(&net, "db-2")).unwrap();
    // Answers are cached for their TTL (kubeadm's `ttl 30`), as CoreDNS's cache does.
    net.sim_mut().run_for(std::time::Duration::from_secs(31));
    assert_eq!(resolve(&mut net, from, "db"), ips(&net, &["db-0", "db-1"]));
    for kp in net.kube_proxies() {
        assert!(!kp.table_text().contains("default/db"), "{}", kp.table_text());
    }
    // A restarted pod's name follows its new address.
    let db0 = pod(&net, "db-0");
    let new = net.restart_pod(db0).unwrap();
    net.sim_mut().run_for(std::time::Duration::from_secs(31));
    assert_eq!(resolve(&mut net, from, "db-0.db"), [new]);
}

// ---- Services without selectors --------------------------------------------------------

#[test]
fn services_without_selectors_use_the_manifest_endpoints_and_slices() {
    let yaml = format!(
        r#"{}
---
apiVersion: v1
kind: Pod
metadata: {{name: fixed, labels: {{app: fixed}}}}
spec: {{nodeName: n3, containers: [{{name: c, image: i, ports: [{{containerPort: 8080}}]}}]}}
status: {{podIP: 10.244.2.50}}
---
apiVersion: v1
kind: Service
metadata: {{name: legacy}}
spec: {{ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: legacy}}
subsets:
- addresses: [{{ip: 10.244.2.50, nodeName: n3}}]
  ports: [{{port: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: outside}}
spec: {{ports: [{{port: 80, targetPort: 9000}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: outside-1
  labels: {{kubernetes.io/service-name: outside}}
addressType: IPv4
ports: [{{port: 9000}}]
endpoints: [{{addresses: [203.0.113.10]}}]
"#,
        client("c", "n1")
    );
    let mut net = build(&yaml);
    // A server on the internet host stands for a database outside the cluster.
    let internet = net.outside().internet;
    let stack = net.sim_mut().stack_mut::<kns_sim::stack::SmolStack>(internet).unwrap();
    stack
        .spawn(kns_sim::stack::apps::AgnhostServer::for_pod("outside-db", [(9000, Protocol::Tcp)]));
    net.sim_mut().kick(internet);
    let from = Source::Pod(pod(&net, "c"));
    let legacy = service(&net, "legacy").cluster_ip.unwrap();
    assert_eq!(reply(&tcp(&mut net, from, SocketAddr::new(legacy, 80))), "fixed");
    let outside = service(&net, "outside").cluster_ip.unwrap();
    assert_eq!(reply(&tcp(&mut net, from, SocketAddr::new(outside, 80))), "outside-db");
    // kube-proxy programs exactly the manifest's endpoints.
    let table = net.kube_proxy(node(&net, "n1")).table_text();
    assert!(table.contains("10.244.2.50:8080") && table.contains("203.0.113.10:9000"), "{table}");
}

// ---- Session affinity ------------------------------------------------------------------

#[test]
fn client_ip_affinity_sticks_per_client_and_spreads_across_clients() {
    let mut yaml = deployment("web", 3, None);
    yaml.push_str(
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: sticky}\nspec: {selector: {app: web}, sessionAffinity: ClientIP, ports: [{port: 80, targetPort: 8080}]}\n",
    );
    let clients = ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"];
    for (i, c) in clients.iter().enumerate() {
        yaml.push_str(&client(c, ["n1", "n2", "n3"][i % 3]));
    }
    let mut net = build(&yaml);
    let vip = SocketAddr::new(service(&net, "sticky").cluster_ip.unwrap(), 80);
    let mut chosen = BTreeSet::new();
    for c in clients {
        let from = Source::Pod(pod(&net, c));
        let seen: BTreeSet<String> = (0..8).map(|_| reply(&tcp(&mut net, from, vip))).collect();
        assert_eq!(seen.len(), 1, "{c} was spread: {seen:?}");
        chosen.extend(seen);
    }
    assert!(chosen.len() >= 2, "eight clients all landed on {chosen:?}");
    // Without affinity, one client spreads.
    yaml = yaml.replace("sessionAffinity: ClientIP, ", "");
    let mut net = build(&yaml);
    let from = Source::Pod(pod(&net, "c1"));
    let seen: BTreeSet<String> = (0..20).map(|_| reply(&tcp(&mut net, from, vip))).collect();
    assert!(seen.len() >= 2, "{seen:?}");
}

// ---- Traffic policies ------------------------------------------------------------------

/// Two single-pod Deployments, `a` on n1 and `b` on n2, both `tier: x`; n3 has no endpoint.
fn two_backends(service: &str) -> String {
    format!("{}{}{service}", deployment("a", 1, Some("n1")), deployment("b", 1, Some("n2")))
        .replace("labels: {app: a}", "labels: {app: a, tier: x}")
        .replace("labels: {app: b}", "labels: {app: b, tier: x}")
}

const NODE_PORTS: &str = r#"
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {tier: x}
  ports:
  - {name: tcp, port: 80, targetPort: 8080, nodePort: 30100}
  - {name: udp, port: 80, targetPort: 8080, nodePort: 30100, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: cluster}
spec:
  type: NodePort
  selector: {tier: x}
  ports:
  - {name: tcp, port: 80, targetPort: 8080, nodePort: 30200}
  - {name: udp, port: 80, targetPort: 8080, nodePort: 30200, protocol: UDP}
"#;

#[test]
fn external_traffic_policy_local_keeps_the_client_and_stays_on_the_node() {
    let mut net = build(&two_backends(NODE_PORTS));
    let host = net.outside().host;
    for (n, backend) in [("n1", "a"), ("n2", "b")] {
        let ip = net.node(node(&net, n)).ip;
        let to = SocketAddr::new(ip, 30100);
        assert_eq!(client_ip(&mut net, Source::Internet, to), host, "{n}: client IP preserved");
        let seen: BTreeSet<String> =
            (0..6).map(|_| reply(&tcp(&mut net, Source::Internet, to))).collect();
        let local = names(&net, &pods_of(&net, backend));
        assert_eq!(seen, local, "{n} uses only its own endpoint");
    }
    // n3 has no endpoint of its own: it drops, and says so.
    let n3 = node(&net, "n3");
    let to = SocketAddr::new(net.node(n3).ip, 30100);
    assert_eq!(tcp(&mut net, Source::Internet, to), ProbeOutcome::Filtered);
    assert!(net.kube_proxy(n3).counters().dropped >= 1);
}

#[test]
fn external_traffic_policy_cluster_masquerades_and_uses_any_endpoint() {
    let mut net = build(&two_backends(NODE_PORTS));
    let n3 = node(&net, "n3");
    let n3_ip = net.node(n3).ip;
    let to = SocketAddr::new(n3_ip, 30200);
    // The backends are on n1 and n2: the connection is SNATed to n3's address on its way.
    assert_eq!(client_ip(&mut net, Source::Internet, to), n3_ip);
    let seen: BTreeSet<String> =
        (0..20).map(|_| reply(&tcp(&mut net, Source::Internet, to))).collect();
    let all = names(&net, &[pods_of(&net, "a")[0], pods_of(&net, "b")[0]]);
    assert_eq!(seen, all, "any endpoint serves");
    assert!(net.kube_proxy(n3).counters().masqueraded >= 1);
}

#[test]
fn internal_traffic_policy_local_keeps_pods_on_their_node() {
    let svc = "---\napiVersion: v1\nkind: Service\nmetadata: {name: itl}\nspec: {internalTrafficPolicy: Local, selector: {tier: x}, ports: [{port: 80, targetPort: 8080}]}\n";
    let yaml = format!(
        "{}{}{}{}",
        two_backends(svc),
        client("c1", "n1"),
        client("c2", "n2"),
        client("c3", "n3")
    );
    let mut net = build(&yaml);
    let vip = SocketAddr::new(service(&net, "itl").cluster_ip.unwrap(), 80);
    for (c, backend) in [("c1", "a"), ("c2", "b")] {
        let from = Source::Pod(pod(&net, c));
        let seen: BTreeSet<String> = (0..6).map(|_| reply(&tcp(&mut net, from, vip))).collect();
        assert_eq!(seen, names(&net, &pods_of(&net, backend)), "{c}");
    }
    let from = Source::Pod(pod(&net, "c3"));
    assert_eq!(tcp(&mut net, from, vip), ProbeOutcome::Filtered, "no local endpoint on n3");
}

// ---- Hairpin ---------------------------------------------------------------------------

#[test]
fn a_pod_reaches_itself_through_its_own_service() {
    let mut yaml = deployment("solo", 1, Some("n2"));
    yaml.push_str(
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: solo}\nspec:\n  selector: {app: solo}\n  ports:\n  - {name: tcp, port: 80, targetPort: 8080}\n  - {name: udp, port: 80, targetPort: 8080, protocol: UDP}\n",
    );
    let mut net = build(&yaml);
    let me = pods_of(&net, "solo")[0];
    let my_name = net.cluster().pod(me).name.clone();
    let vip = SocketAddr::new(service(&net, "solo").cluster_ip.unwrap(), 80);
    assert_eq!(reply(&tcp(&mut net, Source::Pod(me), vip)), my_name);
    // Hairpin traffic is masqueraded, so the pod answers an address that is not its own.
    let seen = client_ip(&mut net, Source::Pod(me), vip);
    assert_ne!(seen, net.pod_ip(me));
    assert!(net.kube_proxy(node(&net, "n2")).counters().masqueraded >= 2);
}

// ---- Environment variables -------------------------------------------------------------

#[test]
fn pods_get_the_variables_of_services_that_existed_when_they_started() {
    let yaml = format!("{}{}", deployment("web", 1, None), LB) + &client("c", "n1");
    let mut net = build(&yaml);
    let c = pod(&net, "c");
    let lb = service(&net, "web-lb");
    let ip = lb.cluster_ip.unwrap().to_string();
    let env = net.pod_env(c).expect("running").clone();
    assert_eq!(env.get("WEB_LB_SERVICE_HOST"), Some(&ip));
    assert_eq!(env.get("WEB_LB_SERVICE_PORT").map(String::as_str), Some("80"));
    assert_eq!(env.get("WEB_LB_SERVICE_PORT_UDP").map(String::as_str), Some("80"));
    assert_eq!(env.get("WEB_LB_PORT_80_TCP_ADDR"), Some(&ip));
    assert_eq!(
        env.get("WEB_LB_PORT_80_UDP").map(String::as_str),
        Some(format!("udp://{ip}:80").as_str())
    );
    assert!(env.contains_key("KUBERNETES_SERVICE_HOST"));

    // A Service created now reaches only pods started from now on.
    let later = load_str(
        "later.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: later}\nspec: {clusterIP: 10.96.7.7, selector: {app: web}, ports: [{port: 81, targetPort: 8080}]}\n",
    )
    .unwrap()
    .cluster;
    let later = later.service_by_name("default", "later").unwrap().clone();
    net.add_service(later.clone()).expect("created");
    assert!(net.add_service(later).is_err(), "a second `later` is refused");
    assert!(!net.pod_env(c).unwrap().contains_key("LATER_SERVICE_HOST"));
    // The new Service works at once.
    let from = Source::Pod(c);
    let web = names(&net, &pods_of(&net, "web"));
    assert!(web.contains(&reply(&tcp(&mut net, from, "10.96.7.7:81".parse().unwrap()))));
    // The web pod reports its environment over HTTP (agnhost's /env): no LATER yet.
    let web_pod = pods_of(&net, "web")[0];
    let url = format!("http://{}:8080/env", net.pod_ip(web_pod));
    let body = http_get(&mut net, from, &url);
    assert!(body.contains(&format!("WEB_LB_SERVICE_HOST={ip}\n")), "{body}");
    assert!(!body.contains("LATER_"), "{body}");
    // Restarted, it sees the Services that exist at its restart.
    net.restart_pod(web_pod).unwrap();
    assert_eq!(
        net.pod_env(web_pod).unwrap().get("LATER_SERVICE_HOST").map(String::as_str),
        Some("10.96.7.7")
    );
    let url = format!("http://{}:8080/env", net.pod_ip(web_pod));
    let body = http_get(&mut net, from, &url);
    assert!(body.contains("LATER_PORT_81_TCP=tcp://10.96.7.7:81\n"), "{body}");
}

fn http_get(net: &mut ClusterNet, from: Source, url: &str) -> String {
    use kns_sim::stack::apps::{HttpClient, HttpClientConfig};
    let ns = net.source_ns(from).unwrap();
    let client = HttpClient::new(HttpClientConfig::get(url));
    let out = net
        .run_app(ns, client, std::time::Duration::from_secs(10), |c| {
            c.finished_at()
                .map(|_| c.reply().map(|r| String::from_utf8_lossy(&r.body).into_owned()))
        })
        .unwrap();
    out.flatten().unwrap_or_else(|| panic!("no answer from {url}"))
}

#[test]
fn the_load_balancer_path_is_deterministic() {
    let run = || {
        let mut net = build(&format!("{}{LB}", deployment("web", 3, None)));
        net.sim_mut().enable_trace();
        let lb = SocketAddr::new("192.168.0.240".parse().unwrap(), 80);
        let replies: Vec<String> =
            (0..5).map(|_| reply(&tcp(&mut net, Source::Internet, lb))).collect();
        (replies, net.sim().trace_hash(), net.speaker_log().to_vec())
    };
    let first = run();
    assert_eq!(first, run(), "seed {}", ClusterOptions::default().seed);
}
