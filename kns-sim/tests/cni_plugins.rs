//! The reference CNI plugins on a real Sim: each plugin's ADD, DEL and CHECK, host-local's
//! allocation, release, reuse and exhaustion, DEL after a failed ADD, a bridge+portmap chain,
//! the choice of the first `net.d` file, and packets: a ping between two pods on a bridge and
//! a TCP connection through a portmap host port.

use std::net::IpAddr;
use std::time::Duration;

use kns_core::cni::plugins::port_mappings_value;
use kns_core::cni::{
    Attachment, CniResult, CniRuntime, ErrorCode, MemFiles, NetConfList, NetHost, Netns,
    RuntimeConf,
};
use kns_sim::Sim;
use kns_sim::cni_host::{SimNetHost, netns_path};
use kns_sim::net::{LinkParams, NetnsId};
use kns_sim::stack::apps::{Ping, PingConfig, TcpClient, TcpClientConfig, TcpEcho};
use kns_sim::stack::{SmolStack, StackConfig};

const BRIDGE: &str = r#"{
  "cniVersion": "1.1.0",
  "name": "podnet",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isDefaultGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": { "type": "host-local", "subnet": "10.244.1.0/24" }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}"#;

const PTP: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "ptpnet",
  "type": "ptp",
  "ipam": { "type": "host-local", "subnet": "10.1.1.0/24", "routes": [{ "dst": "0.0.0.0/0" }] }
}"#;

/// One node (`node:a`) with its files and a CNI runtime holding the reference plugins.
struct Node {
    sim: Sim,
    node: NetnsId,
    files: MemFiles,
    cni: CniRuntime,
}

impl Node {
    fn new(seed: u64) -> Node {
        let mut sim = Sim::new(seed);
        let node = sim.netns_add("node-a").unwrap();
        sim.link_set_up(node, "lo", true).unwrap();
        Node { sim, node, files: MemFiles::new(), cni: CniRuntime::with_reference_plugins() }
    }

    fn host(&mut self) -> SimNetHost<'_> {
        SimNetHost::new(&mut self.sim, self.node, &mut self.files)
    }

    fn install(&mut self, file: &str, text: &str) {
        CniRuntime::install_config(&mut self.host(), file, text);
    }

    fn net(&mut self) -> NetConfList {
        let host = SimNetHost::new(&mut self.sim, self.node, &mut self.files);
        self.cni.load_config(&host).unwrap().list
    }

    /// Creates the pod namespace `name` and returns its runtime parameters.
    fn pod(&mut self, name: &str) -> RuntimeConf {
        self.sim.netns_add(name).unwrap();
        rt(name)
    }

    fn add(&mut self, rt: &RuntimeConf) -> Result<CniResult, kns_core::cni::CniError> {
        let net = self.net();
        let mut host = SimNetHost::new(&mut self.sim, self.node, &mut self.files);
        self.cni.add(&mut host, &net, rt)
    }

    fn del(&mut self, rt: &RuntimeConf) -> Result<(), kns_core::cni::CniError> {
        let net = self.net();
        let mut host = SimNetHost::new(&mut self.sim, self.node, &mut self.files);
        self.cni.del(&mut host, &net, rt)
    }

    fn check(&mut self, rt: &RuntimeConf) -> Result<(), kns_core::cni::CniError> {
        let net = self.net();
        let mut host = SimNetHost::new(&mut self.sim, self.node, &mut self.files);
        self.cni.check(&mut host, &net, rt)
    }

    fn nat(&mut self, chain: &str) -> String {
        let args: Vec<String> = ["-t", "nat", "-S", chain].iter().map(|s| s.to_string()).collect();
        self.host().iptables(Netns::Host, &args).unwrap_or_default()
    }

    fn ns(&self, name: &str) -> NetnsId {
        self.sim.netns(Some(name)).unwrap()
    }
}

fn rt(pod: &str) -> RuntimeConf {
    RuntimeConf {
        container_id: format!("ctr-{pod}"),
        netns: netns_path(pod),
        ifname: "eth0".into(),
        ..Default::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addresses(r: &CniResult) -> Vec<String> {
    r.ips.iter().map(|i| i.address.to_string()).collect()
}

#[test]
fn bridge_add_wires_the_pod_and_del_undoes_it() {
    let mut n = Node::new(1);
    n.install("10-podnet.conflist", BRIDGE);
    let pod = n.pod("pod-a");
    let r = n.add(&pod).unwrap();
    assert_eq!(addresses(&r), ["10.244.1.2/24"]);
    assert_eq!(r.ips[0].gateway, Some(ip("10.244.1.1")));
    assert_eq!(r.ips[0].interface, Some(2));
    let names: Vec<&str> = r.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names[0], "cni0");
    assert!(names[1].starts_with("veth"));
    assert_eq!(names[2], "eth0");
    assert_eq!(r.interfaces[2].sandbox.as_deref(), Some("/var/run/netns/pod-a"));
    assert_eq!(r.routes[0].dst.to_string(), "0.0.0.0/0");

    let host_veth = names[1].to_string();
    let p = n.ns("pod-a");
    let node = n.node;
    let h = n.host();
    let eth0 = h.link(Netns::Path("/var/run/netns/pod-a"), "eth0").unwrap();
    assert!(eth0.up);
    assert_eq!(eth0.addrs[0].to_string(), "10.244.1.2/24");
    let hv = h.link(Netns::Host, &host_veth).unwrap();
    assert_eq!((hv.master.as_deref(), hv.hairpin, hv.up), (Some("cni0"), true, true));
    assert_eq!(h.link(Netns::Host, "cni0").unwrap().addrs[0].to_string(), "10.244.1.1/24");
    assert!(
        n.files.read("/var/lib/cni/networks/podnet/10.244.1.2").unwrap().starts_with("ctr-pod-a")
    );
    assert_eq!(n.sim.sysctl(node, "net.ipv4.ip_forward", None).unwrap(), "net.ipv4.ip_forward = 1");
    let route = n.sim.route_get(p, ip("203.0.113.1")).unwrap();
    assert_eq!((route.via, route.dev.as_str()), (Some(ip("10.244.1.1")), "eth0"));
    let post = n.nat("POSTROUTING");
    assert!(post.contains("-s 10.244.1.2/32") && post.contains("-j CNI-"), "{post}");
    n.check(&pod).unwrap();

    n.del(&pod).unwrap();
    let h = n.host();
    assert!(h.link(Netns::Path("/var/run/netns/pod-a"), "eth0").is_err());
    assert!(h.link(Netns::Host, &host_veth).is_err());
    assert!(n.files.read("/var/lib/cni/networks/podnet/10.244.1.2").is_err());
    assert!(!n.nat("POSTROUTING").contains("10.244.1.2"));
    // DEL is idempotent, and works once the namespace itself is gone.
    n.del(&pod).unwrap();
    n.sim.netns_del("pod-a").unwrap();
    n.del(&pod).unwrap();
}

#[test]
fn check_detects_a_missing_address_and_a_deleted_veth() {
    let mut n = Node::new(2);
    n.install("10-podnet.conflist", BRIDGE);
    let pod = n.pod("pod-a");
    let r = n.add(&pod).unwrap();
    let p = n.ns("pod-a");
    n.check(&pod).unwrap();
    n.sim.addr_del(p, "eth0", "10.244.1.2/24".parse().unwrap()).unwrap();
    let e = n.check(&pod).unwrap_err();
    assert!(e.msg.contains("10.244.1.2/24"), "{e}");
    n.sim.addr_add(p, "eth0", "10.244.1.2/24".parse().unwrap()).unwrap();
    n.check(&pod).unwrap();
    let node = n.node;
    n.sim.link_del(node, &r.interfaces[1].name).unwrap();
    let e = n.check(&pod).unwrap_err();
    assert!(e.msg.contains("eth0"), "{e}");
    // A CHECK of a container never added has nothing cached.
    let other = n.pod("pod-b");
    assert_eq!(n.check(&other).unwrap_err().kind(), ErrorCode::UnknownContainer);
}

#[test]
fn host_local_releases_reuses_exhausts_and_collects_garbage() {
    let mut n = Node::new(3);
    n.install(
        "10-small.conf",
        r#"{"cniVersion":"1.1.0","name":"small","type":"bridge","bridge":"br0",
            "ipam":{"type":"host-local","subnet":"10.9.0.0/24","rangeStart":"10.9.0.2","rangeEnd":"10.9.0.4"}}"#,
    );
    let pods: Vec<RuntimeConf> = (1..=6).map(|i| n.pod(&format!("p{i}"))).collect();
    assert_eq!(addresses(&n.add(&pods[0]).unwrap()), ["10.9.0.2/24"]);
    assert_eq!(addresses(&n.add(&pods[1]).unwrap()), ["10.9.0.3/24"]);
    n.del(&pods[0]).unwrap();
    // The next address after the last reserved one, then round to the released one.
    assert_eq!(addresses(&n.add(&pods[2]).unwrap()), ["10.9.0.4/24"]);
    assert_eq!(addresses(&n.add(&pods[3]).unwrap()), ["10.9.0.2/24"]);
    let e = n.add(&pods[4]).unwrap_err();
    assert_eq!(e.code, 999);
    assert_eq!(
        e.msg,
        "failed to allocate for range 0: no IP addresses available in range set: 10.9.0.2-10.9.0.4"
    );
    // The failed ADD left nothing behind, and DEL after it is safe.
    let p5 = n.ns("p5");
    assert!(n.host().link(Netns::Path("/var/run/netns/p5"), "eth0").is_err());
    assert_eq!(n.sim.ns_addrs(p5).len(), 1, "only lo's address");
    n.del(&pods[4]).unwrap();
    assert_eq!(
        n.files.list("/var/lib/cni/networks/small").len(),
        4,
        "3 addresses + last_reserved_ip.0"
    );

    // GC keeps the valid attachments and frees the rest.
    let net = n.net();
    let valid = [Attachment { container_id: "ctr-p2".into(), ifname: "eth0".into() }];
    let mut host = SimNetHost::new(&mut n.sim, n.node, &mut n.files);
    n.cni.status(&mut host, &net).unwrap();
    n.cni.gc(&mut host, &net, &valid).unwrap();
    assert_eq!(n.files.list("/var/lib/cni/networks/small"), ["10.9.0.3", "last_reserved_ip.0"]);
    assert_eq!(n.files.list("/var/lib/cni/results"), ["small-ctr-p2-eth0"]);
    assert_eq!(addresses(&n.add(&pods[5]).unwrap()), ["10.9.0.4/24"]);
}

#[test]
fn add_into_a_missing_netns_or_a_taken_ifname_fails_cleanly() {
    let mut n = Node::new(4);
    n.install("10-podnet.conflist", BRIDGE);
    let ghost = rt("ghost");
    let e = n.add(&ghost).unwrap_err();
    assert_eq!(e.kind(), ErrorCode::UnknownContainer);
    n.del(&ghost).unwrap();
    let pod = n.pod("pod-a");
    let p = n.ns("pod-a");
    n.sim.link_add_dummy(p, "eth0").unwrap();
    let e = n.add(&pod).unwrap_err();
    assert!(e.msg.contains("already exists"), "{e}");
    assert!(n.files.list("/var/lib/cni/networks/podnet").is_empty());
}

#[test]
fn ptp_routes_through_a_node_side_gateway_address() {
    let mut n = Node::new(5);
    n.install("20-ptp.conf", PTP);
    let pod = n.pod("pod-a");
    let r = n.add(&pod).unwrap();
    assert_eq!(addresses(&r), ["10.1.1.2/24"]);
    assert_eq!(r.interfaces.len(), 2);
    let host_veth = r.interfaces[0].name.clone();
    let p = n.ns("pod-a");
    let node = n.node;
    let h = n.host();
    assert_eq!(h.link(Netns::Host, &host_veth).unwrap().addrs[0].to_string(), "10.1.1.1/32");
    let get = n.sim.route_get(node, ip("10.1.1.2")).unwrap();
    assert_eq!((get.via, get.dev.as_str()), (None, host_veth.as_str()));
    let out = n.sim.route_get(p, ip("8.8.8.8")).unwrap();
    assert_eq!(out.via, Some(ip("10.1.1.1")));
    let peer = n.sim.route_get(p, ip("10.1.1.9")).unwrap();
    assert_eq!(peer.via, Some(ip("10.1.1.1")), "the subnet goes through the gateway too");
    n.check(&pod).unwrap();

    // The node reaches the pod over the point-to-point link.
    let seed = n.sim.child_seed();
    n.sim.attach_stack(node, SmolStack::new(StackConfig::with_seed(seed), n.sim.now()));
    let seed = n.sim.child_seed();
    n.sim.attach_stack(p, SmolStack::new(StackConfig::with_seed(seed), n.sim.now()));
    let ping = n
        .sim
        .stack_mut::<SmolStack>(node)
        .unwrap()
        .spawn(Ping::new(PingConfig::new(ip("10.1.1.2"), 2)));
    n.sim.kick(node);
    n.sim.run_for(Duration::from_secs(5));
    let out = n.sim.stack_mut::<SmolStack>(node).unwrap().app::<Ping>(ping).unwrap();
    assert!(out.success(), "{}", out.output());

    let node = n.node;
    n.sim.route_del(node, "10.1.1.2/32".parse().unwrap(), None, None, None).unwrap();
    assert!(n.check(&pod).unwrap_err().msg.contains("10.1.1.2/32"));
    n.del(&pod).unwrap();
    assert!(n.host().link(Netns::Host, &host_veth).is_err());
    n.del(&pod).unwrap();
}

#[test]
fn loopback_brings_lo_up_and_down() {
    let mut n = Node::new(6);
    n.install(
        "99-loopback.conf",
        r#"{"cniVersion":"1.0.0","name":"cni-loopback","type":"loopback"}"#,
    );
    let mut pod = n.pod("pod-a");
    pod.ifname = "lo".into();
    let r = n.add(&pod).unwrap();
    assert_eq!(addresses(&r), ["127.0.0.1/8"]);
    let path = pod.netns.clone();
    assert!(n.host().link(Netns::Path(&path), "lo").unwrap().up);
    n.check(&pod).unwrap();
    n.del(&pod).unwrap();
    assert!(!n.host().link(Netns::Path(&path), "lo").unwrap().up);
    assert!(n.check(&pod).is_err(), "nothing cached after DEL");
}

#[test]
fn the_first_net_d_file_in_lexical_order_is_used() {
    let mut n = Node::new(7);
    n.install("10-podnet.conflist", BRIDGE);
    n.install("05-ptp.conf", PTP);
    n.install("00-readme.txt", "not a network");
    let pod = n.pod("pod-a");
    let r = n.add(&pod).unwrap();
    assert_eq!(addresses(&r), ["10.1.1.2/24"], "ptp's subnet");
    assert!(n.host().link(Netns::Host, "cni0").is_err(), "no bridge was made");
}

#[test]
fn portmap_chains_after_bridge_and_forwards_a_tcp_host_port() {
    let mut n = Node::new(8);
    n.install("10-podnet.conflist", BRIDGE);
    let mut pod = n.pod("pod-a");
    pod.capability_args.insert("portMappings".into(), port_mappings_value(&[(8080, 80, "tcp")]));
    let r = n.add(&pod).unwrap();
    // portmap hands the bridge's result on unchanged.
    assert_eq!(addresses(&r), ["10.244.1.2/24"]);
    assert_eq!(r.interfaces.len(), 3);
    let dnat = n.nat("CNI-HOSTPORT-DNAT");
    let dn = dnat
        .lines()
        .find_map(|l| l.split(" -j ").nth(1).filter(|c| c.starts_with("CNI-DN-")))
        .unwrap()
        .to_string();
    let rules = n.nat(&dn);
    assert!(rules.contains("--to-destination 10.244.1.2:80"), "{rules}");
    assert!(n.nat("PREROUTING").contains("CNI-HOSTPORT-DNAT"));
    n.check(&pod).unwrap();
    // CHECK notices a DNAT rule removed behind the plugin's back, and ADD's rules come back
    // after DEL and ADD.
    let node = n.node;
    let mut rule: Vec<String> = [
        "-t",
        "nat",
        "-D",
        dn.as_str(),
        "-p",
        "tcp",
        "--dport",
        "8080",
        "-j",
        "DNAT",
        "--to-destination",
        "10.244.1.2:80",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let now = n.sim.now();
    n.sim.netfilter_mut(node).iptables(now, &rule).unwrap();
    assert!(n.check(&pod).unwrap_err().msg.contains("host port 8080"));
    rule[2] = "-A".into();
    n.sim.netfilter_mut(node).iptables(now, &rule).unwrap();
    n.check(&pod).unwrap();

    // A client outside the node connects to the node's address on the host port.
    let node = n.node;
    let client = n.sim.netns_add("client").unwrap();
    n.sim.link_connect(client, "eth0", node, "eth0", LinkParams::default()).unwrap();
    n.sim.addr_add(client, "eth0", "192.168.0.2/24".parse().unwrap()).unwrap();
    n.sim.addr_add(node, "eth0", "192.168.0.1/24".parse().unwrap()).unwrap();
    let p = n.ns("pod-a");
    for ns in [client, p] {
        let seed = n.sim.child_seed();
        n.sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(seed), n.sim.now()));
    }
    n.sim.stack_mut::<SmolStack>(p).unwrap().spawn(TcpEcho::new(80));
    let mut cfg = TcpClientConfig::new("192.168.0.1:8080".parse().unwrap(), "hello pod");
    cfg.expect = Some(9);
    let c = n.sim.stack_mut::<SmolStack>(client).unwrap().spawn(TcpClient::new(cfg));
    n.sim.kick(p);
    n.sim.kick(client);
    n.sim.run_for(Duration::from_secs(5));
    let tc = n.sim.stack_mut::<SmolStack>(client).unwrap().app::<TcpClient>(c).unwrap();
    assert_eq!(tc.error(), None);
    assert_eq!(tc.received(), b"hello pod");

    n.del(&pod).unwrap();
    assert!(!n.nat("CNI-HOSTPORT-DNAT").contains(&dn));
    assert_eq!(n.nat(&dn), "", "the container's chain is gone");
    n.del(&pod).unwrap();
}

#[test]
fn two_pods_on_a_bridge_ping_each_other() {
    let mut n = Node::new(9);
    n.install("10-podnet.conflist", BRIDGE);
    let a = n.pod("pod-a");
    let b = n.pod("pod-b");
    assert_eq!(addresses(&n.add(&a).unwrap()), ["10.244.1.2/24"]);
    assert_eq!(addresses(&n.add(&b).unwrap()), ["10.244.1.3/24"]);
    let (pa, pb) = (n.ns("pod-a"), n.ns("pod-b"));
    for ns in [pa, pb] {
        let seed = n.sim.child_seed();
        n.sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(seed), n.sim.now()));
    }
    let ping = n
        .sim
        .stack_mut::<SmolStack>(pa)
        .unwrap()
        .spawn(Ping::new(PingConfig::new(ip("10.244.1.3"), 3)));
    n.sim.kick(pa);
    n.sim.run_for(Duration::from_secs(10));
    let out = n.sim.stack_mut::<SmolStack>(pa).unwrap().app::<Ping>(ping).unwrap();
    assert!(out.success(), "{}", out.output());
    assert!(out.output().contains("3 packets transmitted, 3 received"), "{}", out.output());
    assert!(n.sim.conservation().holds());
}

#[test]
fn host_local_gives_requested_addresses() {
    let mut n = Node::new(10);
    n.install(
        "10-small.conf",
        r#"{"cniVersion":"1.0.0","name":"small","type":"bridge","bridge":"br0",
            "capabilities":{"ips":true},
            "ipam":{"type":"host-local","subnet":"10.9.0.0/24","rangeStart":"10.9.0.2","rangeEnd":"10.9.0.9"}}"#,
    );
    let mut a = n.pod("p1");
    a.args.push(("IP".into(), "10.9.0.7".into()));
    assert_eq!(addresses(&n.add(&a).unwrap()), ["10.9.0.7/24"]);
    let mut b = n.pod("p2");
    b.capability_args.insert("ips".into(), r#"["10.9.0.5/24"]"#.parse().unwrap());
    assert_eq!(addresses(&n.add(&b).unwrap()), ["10.9.0.5/24"]);
    let mut c = n.pod("p3");
    c.args.push(("IP".into(), "10.9.0.7".into()));
    let e = n.add(&c).unwrap_err();
    assert_eq!(
        e.msg,
        "requested IP address 10.9.0.7 is not available in range set 10.9.0.2-10.9.0.9"
    );
    let mut d = n.pod("p4");
    d.args.push(("IP".into(), "10.10.0.1".into()));
    let e = n.add(&d).unwrap_err();
    assert_eq!(e.msg, "requested IP address 10.10.0.1 is not in any configured range");
    // Plain allocation goes on after the last reserved address.
    let e = n.pod("p5");
    assert_eq!(addresses(&n.add(&e).unwrap()), ["10.9.0.6/24"]);
}

#[test]
fn ip_masq_and_portmap_hairpin_rewrite_sources() {
    let mut n = Node::new(11);
    n.install("10-podnet.conflist", BRIDGE);
    let mut pod = n.pod("pod-a");
    pod.capability_args.insert("portMappings".into(), port_mappings_value(&[(8080, 80, "tcp")]));
    n.add(&pod).unwrap();
    let node = n.node;
    let outside = n.sim.netns_add("outside").unwrap();
    n.sim.link_connect(outside, "eth0", node, "eth0", LinkParams::default()).unwrap();
    n.sim.addr_add(outside, "eth0", "192.168.0.2/24".parse().unwrap()).unwrap();
    n.sim.addr_add(node, "eth0", "192.168.0.1/24".parse().unwrap()).unwrap();
    let p = n.ns("pod-a");
    for ns in [outside, p] {
        let seed = n.sim.child_seed();
        n.sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(seed), n.sim.now()));
    }
    // `outside` has no route to the pod network: only a masqueraded ping comes back.
    let ping = n
        .sim
        .stack_mut::<SmolStack>(p)
        .unwrap()
        .spawn(Ping::new(PingConfig::new(ip("192.168.0.2"), 2)));
    // The pod reaches itself through its own host port (hairpin, masqueraded by the mark).
    n.sim.stack_mut::<SmolStack>(p).unwrap().spawn(TcpEcho::new(80));
    let mut cfg = TcpClientConfig::new("192.168.0.1:8080".parse().unwrap(), "me again");
    cfg.expect = Some(8);
    let c = n.sim.stack_mut::<SmolStack>(p).unwrap().spawn(TcpClient::new(cfg));
    n.sim.kick(p);
    n.sim.run_for(Duration::from_secs(10));
    let s = n.sim.stack_mut::<SmolStack>(p).unwrap();
    let out = s.app::<Ping>(ping).unwrap();
    assert!(out.success(), "{}", out.output());
    let tc = s.app::<TcpClient>(c).unwrap();
    assert_eq!((tc.error(), tc.received()), (None, &b"me again"[..]));
    let now = n.sim.now();
    let ct = n.sim.netfilter_mut(node).conntrack_list(now);
    assert!(ct.contains("src=10.244.1.2 dst=192.168.0.2"), "{ct}");
    assert!(
        ct.contains("dst=192.168.0.1 sport=") && ct.contains("src=10.244.1.2 dst=10.244.1.1"),
        "{ct}"
    );
}

#[test]
fn the_same_adds_give_the_same_results() {
    let run = || {
        let mut n = Node::new(12);
        n.install("10-podnet.conflist", BRIDGE);
        let pods: Vec<RuntimeConf> = ["a", "b", "c"].iter().map(|p| n.pod(p)).collect();
        let results: Vec<String> =
            pods.iter().map(|p| format!("{:?}", n.add(p).unwrap())).collect();
        (results, n.nat("POSTROUTING"), n.files.paths().map(str::to_string).collect::<Vec<_>>())
    };
    let first = run();
    assert_eq!(first, run());
    assert!(first.0[2].contains("10.244.1.4/24"));
}
