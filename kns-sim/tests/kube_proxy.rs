//! kube-proxy on a hand-built node: a bridge with three backend pods answering their name and
//! the address they see, a client pod, and a host outside; real TCP through every proxy mode.

mod common;
mod nf_packets;

use std::collections::BTreeMap;
use std::time::Duration;

use common::run;
use kns_core::manifest::load_str;
use kns_core::model::{Cluster, ProxyMode};
use kns_core::proxy::proxy_for;
use kns_sim::Sim;
use kns_sim::kube_proxy::KubeProxy;
use kns_sim::net::NetnsId;
use kns_sim::netfilter::Netfilter;
use kns_sim::stack::apps::{
    ConnError, HttpClient, HttpClientConfig, HttpResponse, HttpServer, TcpClient, TcpClientConfig,
};
use kns_sim::stack::{AppId, SmolStack, StackConfig};
use kns_sim::time::Time;

/// Node n1 hosts web-0..2 and the client; n2 hosts `remote`, which exists only in the model
/// (a Local policy must never choose it, and a Cluster one must not be given it here).
const CLUSTER: &str = r#"
apiVersion: kns.dev/v1alpha1
kind: Cluster
metadata: {name: lab}
spec:
  nodes:
  - {name: n1, address: 192.168.0.10, podCIDR: 10.244.0.0/24}
  - {name: n2, address: 192.168.0.11, podCIDR: 10.244.1.0/24}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, labels: {app: web, front: "yes"}}
spec: {nodeName: n1, containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {podIP: 10.244.0.9}
---
apiVersion: v1
kind: Pod
metadata: {name: remote, labels: {front: "yes"}}
spec: {nodeName: n2, containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.1.2}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.20
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  clusterIP: 10.96.0.21
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 30}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  clusterIP: 10.96.0.22
  selector: {app: nothing}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  clusterIP: 10.96.0.23
  selector: {app: web}
  ports: [{port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: front-local}
spec:
  type: NodePort
  clusterIP: 10.96.0.24
  externalTrafficPolicy: Local
  selector: {front: "yes"}
  ports: [{port: 80, targetPort: http, nodePort: 30081}]
"#;

const PODS: [(&str, &str); 4] = [
    ("web-0", "10.244.0.2"),
    ("web-1", "10.244.0.3"),
    ("web-2", "10.244.0.4"),
    ("client", "10.244.0.9"),
];

struct Lab {
    sim: Sim,
    node: NetnsId,
    outside: NetnsId,
    ns: BTreeMap<&'static str, NetnsId>,
    cluster: Cluster,
    proxy: KubeProxy,
}

fn cluster() -> Cluster {
    load_str("lab.yaml", CLUSTER).unwrap_or_else(|e| panic!("{e:?}")).cluster
}

fn lab(mode: ProxyMode, seed: u64) -> Lab {
    let mut sim = Sim::new(seed);
    run(
        &mut sim,
        "ip netns add node
ip netns add outside
ip -n node link add cni0 type bridge
ip -n node link set cni0 up
ip -n node addr add 10.244.0.1/24 dev cni0
ip -n node link add eth0 type veth peer name eth0 netns outside
ip -n node addr add 192.168.0.10/24 dev eth0
ip -n outside addr add 192.168.0.100/24 dev eth0
ip -n node link set eth0 up
ip -n outside link set eth0 up
ip netns exec node sysctl -w net.ipv4.ip_forward=1
ip netns exec node sysctl -w net.bridge.bridge-nf-call-iptables=1",
    );
    let mut ns = BTreeMap::new();
    for (name, ip) in PODS {
        run(
            &mut sim,
            &format!(
                "ip netns add {name}
ip -n node link add veth-{name} type veth peer name eth0 netns {name}
ip -n node link set veth-{name} master cni0
ip -n node link set veth-{name} up
ip -n {name} addr add {ip}/24 dev eth0
ip -n {name} link set eth0 up
ip -n {name} route add default via 10.244.0.1"
            ),
        );
        let id = sim.netns(Some(name)).unwrap();
        let stack_seed = sim.child_seed();
        sim.attach_stack(id, SmolStack::new(StackConfig::with_seed(stack_seed), sim.now()));
        if name.starts_with("web") {
            let server = HttpServer::new(8080, move |req| {
                let peer = req.peer.map(|p| p.ip().to_string()).unwrap_or_default();
                HttpResponse::ok(format!("{name} {peer}"))
            });
            sim.stack_mut::<SmolStack>(id).unwrap().spawn(server);
        }
        ns.insert(name, id);
    }
    let outside = sim.netns(Some("outside")).unwrap();
    let stack_seed = sim.child_seed();
    sim.attach_stack(outside, SmolStack::new(StackConfig::with_seed(stack_seed), sim.now()));
    let node = sim.netns(Some("node")).unwrap();
    let cluster = cluster();
    let n1 = cluster.node_by_name("n1").unwrap().id;
    let proxy = KubeProxy::new(&cluster, n1, proxy_for(mode, seed));
    proxy.install(&mut sim, node);
    for id in ns.values().copied().chain([outside]) {
        sim.kick(id);
    }
    sim.run_for(Duration::from_millis(10));
    Lab { sim, node, outside, ns, cluster, proxy }
}

impl Lab {
    /// Starts `n` HTTP GETs of `url` from namespace `from`.
    fn get(&mut self, from: NetnsId, url: &str, n: usize) -> Vec<AppId> {
        let stack = self.sim.stack_mut::<SmolStack>(from).unwrap();
        let ids =
            (0..n).map(|_| stack.spawn(HttpClient::new(HttpClientConfig::get(url)))).collect();
        self.sim.kick(from);
        ids
    }

    /// The bodies the clients `ids` of `from` received (`name seen-peer`), after running.
    fn bodies(&mut self, from: NetnsId, ids: &[AppId]) -> Vec<String> {
        self.sim.run_for(Duration::from_secs(5));
        let stack = self.sim.stack_mut::<SmolStack>(from).unwrap();
        ids.iter()
            .map(|&id| {
                let c = stack.app::<HttpClient>(id).unwrap();
                let reply = c.reply().unwrap_or_else(|| panic!("no reply: {}", c.output()));
                String::from_utf8_lossy(&reply.body).into_owned()
            })
            .collect()
    }
}

fn count(bodies: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for b in bodies {
        *m.entry(b.clone()).or_insert(0) += 1;
    }
    m
}

const MODES: [ProxyMode; 4] =
    [ProxyMode::Iptables, ProxyMode::Ipvs, ProxyMode::Nftables, ProxyMode::Maglev];

#[test]
fn cluster_ip_connections_reach_backends_and_spread_in_every_mode() {
    for mode in MODES {
        let mut lab = lab(mode, 21);
        let client = lab.ns["client"];
        let cap = lab.sim.capture(client, "eth0").unwrap();
        let ids = lab.get(client, "http://10.96.0.20/", 30);
        let bodies = lab.bodies(client, &ids);
        let seen = count(&bodies);
        // Every backend answered, and saw the client's own address (no SNAT in the cluster).
        let keys: Vec<&str> = seen.keys().map(String::as_str).collect();
        assert_eq!(keys, ["web-0 10.244.0.9", "web-1 10.244.0.9", "web-2 10.244.0.9"], "{mode:?}");
        assert!(seen.values().all(|&n| n >= 4), "{mode:?}: {seen:?}");
        // The client only ever talked to the cluster IP: every packet it received came from
        // 10.96.0.20:80.
        let mut pcap = Vec::new();
        lab.sim.write_pcap(cap, &mut pcap).unwrap();
        let mut reader = pcap_file::pcap::PcapReader::new(&pcap[..]).unwrap();
        let mut from_service = 0;
        while let Some(pkt) = reader.next_packet() {
            let data = pkt.unwrap().data.into_owned();
            if data[12..14] != [0x08, 0x00] {
                continue;
            }
            let s = kns_sim::wire::parse_ip(&data[14..]).unwrap();
            if s.dst.to_string() == "10.244.0.9" {
                assert_eq!(
                    (s.src.to_string(), s.ports().map(|p| p.0)),
                    ("10.96.0.20".into(), Some(80))
                );
                from_service += 1;
            }
        }
        assert!(from_service >= 30 * 3, "{mode:?}: {from_service}");
        let c = lab.proxy.counters();
        assert_eq!((c.forwarded, c.refused, c.masqueraded), (30, 0, 0), "{mode:?}");
        // Decisions are explained.
        let (_, last) = lab.proxy.decisions().pop().unwrap();
        assert!(
            last.starts_with(
                "10.96.0.20:80/TCP (cluster IP of default/web:http) -> DNAT 10.244.0."
            ),
            "{last}"
        );
    }
}

#[test]
fn a_connection_keeps_its_backend_through_conntrack() {
    // Two pipelined requests, the second padded over several segments: every packet of the
    // connection must reach the backend chosen for its first one, which answers both.
    let pad = "x".repeat(4000);
    let data = format!(
        "GET /1 HTTP/1.1\r\nHost: web\r\n\r\nGET /2 HTTP/1.1\r\nHost: web\r\nX-Pad: {pad}\r\nConnection: close\r\n\r\n"
    );
    for mode in MODES {
        let mut lab = lab(mode, 5);
        let client = lab.ns["client"];
        let stack = lab.sim.stack_mut::<SmolStack>(client).unwrap();
        let ids: Vec<AppId> = (0..12)
            .map(|_| {
                let mut cfg = TcpClientConfig::new("10.96.0.20:80".parse().unwrap(), data.clone());
                cfg.half_close = false;
                stack.spawn(TcpClient::new(cfg))
            })
            .collect();
        lab.sim.kick(client);
        lab.sim.run_for(Duration::from_secs(5));
        let stack = lab.sim.stack_mut::<SmolStack>(client).unwrap();
        let mut backends = BTreeMap::new();
        for id in ids {
            let c = stack.app::<TcpClient>(id).unwrap();
            let text = String::from_utf8_lossy(c.received()).into_owned();
            let names: Vec<&str> = text
                .split("\r\n")
                .filter(|l| l.starts_with("web-"))
                .map(|l| l.split(' ').next().unwrap())
                .collect();
            assert_eq!(names.len(), 2, "{mode:?}: {text}");
            assert_eq!(names[0], names[1], "{mode:?}: one connection, one backend");
            *backends.entry(names[0].to_string()).or_insert(0) += 1;
        }
        assert!(backends.len() >= 2, "{mode:?}: {backends:?}");
        // The node's connection table shows the DNAT: original to the cluster IP, reply from
        // a backend.
        let now = lab.sim.now();
        let list = lab.sim.netfilter_mut(lab.node).conntrack_list(now);
        assert!(list.contains("dst=10.96.0.20") && list.contains("src=10.244.0."), "{list}");
    }
}

#[test]
fn client_ip_affinity_keeps_a_client_on_one_backend() {
    for mode in MODES {
        let mut lab = lab(mode, 8);
        let client = lab.ns["client"];
        let mut bodies = Vec::new();
        for _ in 0..6 {
            let ids = lab.get(client, "http://10.96.0.21/", 2);
            bodies.extend(lab.bodies(client, &ids));
        }
        assert_eq!(count(&bodies).len(), 1, "{mode:?}: {bodies:?}");
        // Another client gets its own binding, kept as well.
        let web1 = lab.ns["web-1"];
        let ids = lab.get(web1, "http://10.96.0.21/", 4);
        assert_eq!(count(&lab.bodies(web1, &ids)).len(), 1, "{mode:?}");
    }
}

#[test]
fn a_service_without_endpoints_refuses_connections() {
    let mut lab = lab(ProxyMode::Iptables, 1);
    let client = lab.ns["client"];
    let mut cfg = TcpClientConfig::new("10.96.0.22:80".parse().unwrap(), "hi");
    cfg.connect_timeout = Duration::from_secs(3);
    let id = lab.sim.stack_mut::<SmolStack>(client).unwrap().spawn(TcpClient::new(cfg));
    lab.sim.kick(client);
    lab.sim.run_for(Duration::from_secs(2));
    let c = lab.sim.stack_mut::<SmolStack>(client).unwrap().app::<TcpClient>(id).unwrap();
    assert_eq!(c.error(), Some(&ConnError::Refused));
    assert_eq!(lab.proxy.counters().refused, 1);
    let (_, why) = lab.proxy.decisions().pop().unwrap();
    assert_eq!(why, "10.96.0.22:80 -> default/empty has no endpoints: REJECT");
}

#[test]
fn node_port_cluster_policy_masquerades_and_local_keeps_the_client_address() {
    for mode in MODES {
        let mut lab = lab(mode, 13);
        let outside = lab.outside;
        let ids = lab.get(outside, "http://192.168.0.10:30080/", 12);
        let seen = count(&lab.bodies(outside, &ids));
        // Cluster: the backends see the node (its address on the pods' bridge), never the client.
        assert!(seen.keys().all(|k| k.ends_with(" 10.244.0.1")), "{mode:?}: {seen:?}");
        assert!(seen.len() >= 2, "{mode:?}: {seen:?}");
        // Local: only the node's own endpoint (web-0; `remote` lives on n2), client address kept.
        let ids = lab.get(outside, "http://192.168.0.10:30081/", 8);
        let seen = count(&lab.bodies(outside, &ids));
        let keys: Vec<&str> = seen.keys().map(String::as_str).collect();
        assert_eq!(keys, ["web-0 192.168.0.100"], "{mode:?}");
        let c = lab.proxy.counters();
        assert_eq!((c.forwarded, c.masqueraded), (20, 12), "{mode:?}");
    }
}

#[test]
fn hairpin_a_pod_reaches_itself_through_its_service() {
    let mut lab = lab(ProxyMode::Nftables, 17);
    let web0 = lab.ns["web-0"];
    let ids = lab.get(web0, "http://10.96.0.20/", 18);
    let seen = count(&lab.bodies(web0, &ids));
    // Answers from itself came through the node, masqueraded to the bridge address; answers
    // from the others saw web-0's own address.
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["web-0 10.244.0.1", "web-1 10.244.0.2", "web-2 10.244.0.2"]
    );
    assert_eq!(lab.proxy.counters().masqueraded as usize, seen["web-0 10.244.0.1"]);
}

#[test]
fn endpoints_follow_pod_readiness_after_update() {
    let mut lab = lab(ProxyMode::Ipvs, 2);
    let client = lab.ns["client"];
    let mut cluster = lab.cluster.clone();
    for name in ["web-0", "web-2"] {
        let id = cluster.pod_by_name("default", name).unwrap().id;
        cluster.pods[id.index()].ready = false;
    }
    lab.proxy.update(&cluster);
    let ids = lab.get(client, "http://10.96.0.20/", 6);
    let seen = count(&lab.bodies(client, &ids));
    assert_eq!(seen.keys().map(String::as_str).collect::<Vec<_>>(), ["web-1 10.244.0.9"]);
    assert!(lab.proxy.table_text().contains("default/web:http -> [10.244.0.3:8080]"));
}

/// The nat-table rule lines of `text` (`-A ...`), in order.
fn nat_rules(text: &str) -> Vec<&str> {
    let nat = text.split("*nat\n").nth(1).unwrap();
    nat.lines().filter(|l| l.starts_with("-A")).collect()
}

#[test]
fn render_rules_shows_what_iptables_mode_programs() {
    let mut c = cluster();
    // Keep the example small: the web Service (and `kubernetes`, which always exists).
    c.services.retain(|s| s.name == "web" || s.name == "kubernetes");
    let proxy =
        KubeProxy::new(&c, c.node_by_name("n1").unwrap().id, proxy_for(ProxyMode::Iptables, 1));
    let text = proxy.render_rules();
    let rules = nat_rules(&text);
    let svc: Vec<&str> = rules.iter().copied().filter(|l| l.starts_with("-A KUBE-SVC-")).collect();
    assert_eq!(svc.len(), 4, "{text}");
    assert!(svc[0].contains("! -s 10.244.0.0/16 -d 10.96.0.20/32 -p tcp -m comment --comment \"default/web:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ"), "{text}");
    assert!(svc[1].contains("--comment \"default/web:http -> 10.244.0.2:8080\" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-"), "{text}");
    assert!(svc[2].contains("--probability 0.5000000000 -j KUBE-SEP-"), "{text}");
    assert!(
        svc[3].contains("--comment \"default/web:http -> 10.244.0.4:8080\" -j KUBE-SEP-"),
        "{text}"
    );
    let services: Vec<&str> =
        rules.iter().copied().filter(|l| l.starts_with("-A KUBE-SERVICES")).collect();
    assert_eq!(services.len(), 2, "{text}");
    assert!(services[0].starts_with("-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment \"default/web:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-"));
    assert!(services[1].ends_with("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"));
    let dnat: Vec<&str> = rules.iter().copied().filter(|l| l.contains("-j DNAT")).collect();
    assert_eq!(dnat.len(), 3);
    assert!(dnat[0].ends_with("-p tcp -m comment --comment \"default/web:http\" -m tcp -j DNAT --to-destination 10.244.0.2:8080"));
    // The kubernetes Service has no endpoints here: a REJECT rule in the filter table.
    let filter = text.split("*nat\n").next().unwrap();
    assert!(filter.contains("-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment \"default/kubernetes:https has no endpoints\" -m tcp --dport 443 -j REJECT --reject-with icmp-port-unreachable"), "{filter}");
    // The text is valid iptables-restore input, and programs the same behaviour: loaded into
    // a node's netfilter, it spreads a cluster-IP connection over the three backends.
    let mut nf = Netfilter::new();
    nf.iptables_restore(Time::ZERO, &text, false).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let printed = nf.iptables(Time::ZERO, &["-t".into(), "nat".into(), "-S".into()]).unwrap();
    let printed: Vec<&str> = printed.lines().filter(|l| l.starts_with("-A")).collect();
    assert_eq!(printed.len(), rules.len());
    let mut backends = BTreeMap::new();
    for port in 0..300u16 {
        let mut syn = nf_packets::tcp("10.244.0.9", 20_000 + port, "10.96.0.20", 80, "S");
        let v =
            nf_packets::forward(&mut nf, Time::ZERO, "cni0", "cni0", Some("10.244.0.1"), &mut syn);
        assert_eq!(v, kns_sim::netfilter::Verdict::Accept);
        let s = nf_packets::verified(&syn);
        *backends.entry(format!("{}:{}", s.dst, s.ports().unwrap().1)).or_insert(0) += 1;
    }
    assert_eq!(
        backends.keys().map(String::as_str).collect::<Vec<_>>(),
        ["10.244.0.2:8080", "10.244.0.3:8080", "10.244.0.4:8080"]
    );
    assert!(backends.values().all(|&n| n > 70), "{backends:?}");
    // The full cluster: node ports, both external traffic policies, affinity, no endpoints.
    let c = cluster();
    let full =
        KubeProxy::new(&c, c.node_by_name("n1").unwrap().id, proxy_for(ProxyMode::Iptables, 1));
    let text = full.render_rules();
    for needle in [
        "-A KUBE-NODEPORTS -p tcp -m comment --comment \"default/web-np\" -m tcp --dport 30080 -j KUBE-EXT-",
        "--comment \"masquerade traffic for default/web-np external destinations\" -j KUBE-MARK-MASQ",
        "-s 10.244.0.0/16 -m comment --comment \"pod traffic for default/front-local external destinations\" -j KUBE-SVC-",
        "-m recent --name KUBE-SEP-",
        "default/empty has no endpoints",
    ] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }
}
