//! The NetworkPolicy agent on hand-built nodes: real TCP and UDP between smoltcp stacks, judged
//! by the agent's filters in the node namespaces.
//!
//! The world: `node1` has a bridge `cni0` (10.0.0.254/24) with pods a, b, c (10.0.0.1-3)
//! bridged on it, and an `outside` host (203.0.113.1) behind `ext0`; `node2` has pod d
//! (10.0.1.4) on a routed veth (`veth-d`, ptp style); the nodes reach each other's pod subnets
//! by routes over their `eth0` link (192.168.0.10 and .11). Every pod and the outside host
//! serve TCP echo on 80 and 8080 and UDP echo on 53.

mod common;

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use common::{ns, run};
use kns_core::flow::{Flow, FlowEnd, PortProtocol, Protocol};
use kns_core::model::{
    Cluster, NamespaceId, Node, NodeId, PodId, PolicyPeer, PolicyPort, PolicyRule, PolicyTypes,
    PortRef, Selector,
};
use kns_core::policy::{PolicyEngine, ReferenceEngine, Verdict};
use kns_core::testing::ClusterBuilder;
use kns_core::testing::build::labels_of;
use kns_sim::net::{NetnsId, TraceWhat};
use kns_sim::netfilter::Hook;
use kns_sim::policy_agent::{PolicyAgent, policy_warning};
use kns_sim::stack::apps::{
    ConnError, ConnStatus, TcpClient, TcpClientConfig, TcpConn, TcpEcho, UdpClient,
    UdpClientConfig, UdpEcho,
};
use kns_sim::stack::{App, AppCx, AppId, AppPoll, SmolStack, StackConfig};
use kns_sim::{DropReason, Sim, Time};
use proptest::prelude::*;

const TOPOLOGY: &str = "
ip netns add node1
ip netns add node2
ip netns add a
ip netns add b
ip netns add c
ip netns add d
ip netns add outside
ip -n node1 link add eth0 type veth peer name eth0 netns node2
ip -n node1 addr add 192.168.0.10/24 dev eth0
ip -n node2 addr add 192.168.0.11/24 dev eth0
ip -n node1 link set eth0 up
ip -n node2 link set eth0 up
ip -n node1 link add cni0 type bridge
ip -n node1 addr add 10.0.0.254/24 dev cni0
ip -n node1 link set cni0 up
ip -n node1 link add veth-a type veth peer name eth0 netns a
ip -n node1 link add veth-b type veth peer name eth0 netns b
ip -n node1 link add veth-c type veth peer name eth0 netns c
ip -n node1 link set veth-a master cni0
ip -n node1 link set veth-b master cni0
ip -n node1 link set veth-c master cni0
ip -n node1 link set veth-a up
ip -n node1 link set veth-b up
ip -n node1 link set veth-c up
ip -n a addr add 10.0.0.1/24 dev eth0
ip -n b addr add 10.0.0.2/24 dev eth0
ip -n c addr add 10.0.0.3/24 dev eth0
ip -n a link set eth0 up
ip -n b link set eth0 up
ip -n c link set eth0 up
ip -n a route add default via 10.0.0.254
ip -n b route add default via 10.0.0.254
ip -n c route add default via 10.0.0.254
ip -n node2 link add veth-d type veth peer name eth0 netns d
ip -n node2 addr add 10.0.1.254/24 dev veth-d
ip -n node2 link set veth-d up
ip -n d addr add 10.0.1.4/24 dev eth0
ip -n d link set eth0 up
ip -n d route add default via 10.0.1.254
ip -n node1 route add 10.0.1.0/24 via 192.168.0.11
ip -n node2 route add 10.0.0.0/24 via 192.168.0.10
ip -n node1 link add ext0 type veth peer name eth0 netns outside
ip -n node1 addr add 203.0.113.254/24 dev ext0
ip -n node1 link set ext0 up
ip -n outside addr add 203.0.113.1/24 dev eth0
ip -n outside link set eth0 up
ip -n outside route add default via 203.0.113.254
ip netns exec node1 sysctl -w net.ipv4.ip_forward=1
ip netns exec node2 sysctl -w net.ipv4.ip_forward=1
";

const NS: NamespaceId = NamespaceId(0);
const A: PodId = PodId(0);
const B: PodId = PodId(1);
const C: PodId = PodId(2);
const D: PodId = PodId(3);

/// Namespace `default` with pods a, b, c (node-1) and d (added to node-2 by [`finish`]).
fn base() -> ClusterBuilder {
    let mut b = ClusterBuilder::new();
    b.namespace("default", &[]);
    for name in ["a", "b", "c", "d"] {
        b.pod(NS, name, &[("app", name)], &[("http", 80, Protocol::Tcp)]);
    }
    b
}

/// Adds node-2 and moves pod d there, with its address 10.0.1.4.
fn finish(b: ClusterBuilder) -> Cluster {
    let mut cluster = b.build();
    cluster.nodes.push(Node {
        id: NodeId(1),
        name: "node-2".into(),
        ip: "192.168.0.11".parse().unwrap(),
        pod_cidr: "10.0.1.0/24".parse().unwrap(),
        labels: Default::default(),
    });
    let d = &mut cluster.pods[D.index()];
    d.node = NodeId(1);
    d.ip = "10.0.1.4".parse().unwrap();
    d.ips = vec![d.ip];
    cluster
}

fn select(app: &str) -> Selector {
    Selector::from_labels(labels_of(&[("app", app)]))
}

fn from_app(app: &str) -> PolicyPeer {
    PolicyPeer::Pods { namespace_selector: None, pod_selector: Some(select(app)) }
}

fn rule(peers: Vec<PolicyPeer>, ports: Vec<PolicyPort>) -> PolicyRule {
    PolicyRule { peers, ports }
}

const INGRESS: PolicyTypes = PolicyTypes { ingress: true, egress: false };
const EGRESS: PolicyTypes = PolicyTypes { ingress: false, egress: true };
const BOTH: PolicyTypes = PolicyTypes { ingress: true, egress: true };

/// The cluster with one ingress policy on `app` allowing `rules` (none: deny all).
fn ingress_policy(app: &str, name: &str, rules: Vec<PolicyRule>) -> Cluster {
    let mut b = base();
    b.policy(NS, name, select(app), INGRESS, rules, vec![]);
    finish(b)
}

struct World {
    sim: Sim,
    agent: PolicyAgent,
    node1: NetnsId,
    node2: NetnsId,
}

/// Builds the topology, installs an agent for `cluster` on both nodes (unless `enforce` is
/// false) and starts the servers.
fn world_with(cluster: Cluster, enforce: bool) -> World {
    let mut sim = Sim::new(7);
    run(&mut sim, TOPOLOGY);
    for name in ["a", "b", "c", "d", "outside", "node1", "node2"] {
        let n = ns(&sim, name);
        let seed = sim.child_seed();
        let mut stack = SmolStack::new(StackConfig::with_seed(seed), sim.now());
        if name != "node1" && name != "node2" {
            stack.spawn(TcpEcho::new(80));
            stack.spawn(TcpEcho::new(8080));
            stack.spawn(UdpEcho::new(53));
        }
        sim.attach_stack(n, stack);
    }
    let (node1, node2) = (ns(&sim, "node1"), ns(&sim, "node2"));
    let agent = PolicyAgent::new(cluster);
    if enforce {
        agent.install(&mut sim, node1, NodeId(0)).unwrap();
        agent.install(&mut sim, node2, NodeId(1)).unwrap();
        for (veth, pod) in [("veth-a", A), ("veth-b", B), ("veth-c", C)] {
            agent.bind_pod(NodeId(0), veth, pod);
        }
        agent.bind_pod(NodeId(1), "veth-d", D);
    }
    sim.run_for(Duration::from_millis(10));
    World { sim, agent, node1, node2 }
}

fn world(cluster: Cluster) -> World {
    world_with(cluster, true)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

impl World {
    fn stack(&mut self, name: &str) -> &mut SmolStack {
        let n = ns(&self.sim, name);
        self.sim.stack_mut::<SmolStack>(n).unwrap()
    }

    fn spawn<A: App>(&mut self, name: &str, app: A) -> AppId {
        let id = self.stack(name).spawn(app);
        let n = ns(&self.sim, name);
        self.sim.kick(n);
        id
    }

    /// Runs until every app in `apps` (namespace, id) is done.
    fn run_until_done(&mut self, apps: &[(&str, AppId)]) {
        for _ in 0..600 {
            if apps.iter().all(|(name, id)| self.stack(name).is_done(*id)) {
                return;
            }
            self.sim.run_for(Duration::from_millis(100));
        }
        panic!("apps still running after 60 s of virtual time");
    }

    /// One TCP exchange from `from` to `to`: Ok when the echo came back.
    fn tcp(&mut self, from: &str, to: &str) -> Result<(), ConnError> {
        let id = self.spawn(from, TcpClient::new(tcp_config(to)));
        self.run_until_done(&[(from, id)]);
        let c = self.stack(from).app::<TcpClient>(id).unwrap();
        match c.error() {
            Some(e) => Err(e.clone()),
            None if c.received() == b"hi" => Ok(()),
            None => panic!("{from} -> {to}: no error but received {:?}", c.received()),
        }
    }

    /// One UDP request from `from` to `to`: whether the echo came back.
    fn udp(&mut self, from: &str, to: &str) -> bool {
        let mut cfg = UdpClientConfig::new(sa(to), "hey");
        cfg.wait = Duration::from_secs(2);
        let id = self.spawn(from, UdpClient::new(cfg));
        self.run_until_done(&[(from, id)]);
        !self.stack(from).app::<UdpClient>(id).unwrap().replies().is_empty()
    }

    /// Drops counted in `node` whose reason is the agent's, as text.
    fn policy_drops(&self, node: NetnsId) -> Vec<String> {
        self.sim
            .drops(node)
            .keys()
            .filter(|r| matches!(r, DropReason::Filter { filter, .. } if filter == "policy"))
            .map(|r| r.to_string())
            .collect()
    }
}

fn tcp_config(to: &str) -> TcpClientConfig {
    let mut cfg = TcpClientConfig::new(sa(to), "hi");
    cfg.expect = Some(2);
    cfg.connect_timeout = Duration::from_secs(3);
    cfg.wait = Duration::from_secs(3);
    cfg
}

#[test]
fn everything_is_allowed_without_policies() {
    let mut w = world(finish(base()));
    for (from, to) in [
        ("a", "10.0.0.2:80"),
        ("b", "10.0.0.1:8080"),
        ("a", "10.0.1.4:80"),
        ("d", "10.0.0.3:80"),
        ("outside", "10.0.0.1:80"),
        ("c", "203.0.113.1:80"),
    ] {
        assert_eq!(w.tcp(from, to), Ok(()), "{from} -> {to}");
    }
    assert!(w.udp("a", "10.0.0.2:53"));
    assert!(w.udp("d", "10.0.0.1:53"));
    let stats = w.agent.stats();
    assert!(stats.judged >= 8, "{stats:?}");
    assert_eq!(stats.dropped, 0);
    assert!(w.sim.conservation().holds(), "{}", w.sim.conservation());
}

#[test]
fn deny_all_ingress_isolates_the_selected_pod_only() {
    let mut w = world(ingress_policy("b", "deny-b", vec![]));
    assert_eq!(w.tcp("a", "10.0.0.2:80"), Err(ConnError::TimedOut), "bridged, same node");
    assert_eq!(w.tcp("d", "10.0.0.2:80"), Err(ConnError::TimedOut), "from the other node");
    assert_eq!(w.tcp("outside", "10.0.0.2:80"), Err(ConnError::TimedOut), "from outside");
    assert!(!w.udp("c", "10.0.0.2:53"));
    // b is not isolated for egress, and the replies to its connections need no ingress rule.
    assert_eq!(w.tcp("b", "10.0.0.1:80"), Ok(()));
    assert_eq!(w.tcp("b", "10.0.1.4:80"), Ok(()));
    assert_eq!(w.tcp("a", "10.0.0.3:80"), Ok(()));
    assert_eq!(
        w.policy_drops(w.node1),
        vec!["dropped by policy: ingress denied for default/b (isolated by deny-b)"]
    );
    assert!(w.policy_drops(w.node2).is_empty(), "d's egress is not isolated");
}

#[test]
fn ingress_from_a_selected_pod_only_on_the_same_node_and_across_nodes() {
    let mut b = base();
    b.policy(NS, "b-from-a", select("b"), INGRESS, vec![rule(vec![from_app("a")], vec![])], vec![]);
    b.policy(NS, "d-from-a", select("d"), INGRESS, vec![rule(vec![from_app("a")], vec![])], vec![]);
    let mut w = world(finish(b));
    // Bridged on node1.
    assert_eq!(w.tcp("a", "10.0.0.2:80"), Ok(()));
    assert_eq!(w.tcp("c", "10.0.0.2:80"), Err(ConnError::TimedOut));
    // Routed to node2; the receiver's node judges the ingress side.
    assert_eq!(w.tcp("a", "10.0.1.4:80"), Ok(()));
    assert_eq!(w.tcp("c", "10.0.1.4:8080"), Err(ConnError::TimedOut));
    assert_eq!(
        w.policy_drops(w.node2),
        vec!["dropped by policy: ingress denied for default/d (isolated by d-from-a)"]
    );
    // d reaches b? No: only a may.
    assert_eq!(w.tcp("d", "10.0.0.2:80"), Err(ConnError::TimedOut));
}

#[test]
fn egress_deny_with_replies_passing() {
    // a may open connections to b on port 80 only, and accepts none.
    let mut b = base();
    let port80 =
        PolicyPort { protocol: Protocol::Tcp, port: Some(PortRef::Number(80)), end_port: None };
    b.policy(
        NS,
        "a-lockdown",
        select("a"),
        BOTH,
        vec![],
        vec![rule(vec![from_app("b")], vec![port80])],
    );
    let mut w = world(finish(b));
    // The reply from b enters a although a's ingress allows nothing: it is ESTABLISHED.
    assert_eq!(w.tcp("a", "10.0.0.2:80"), Ok(()));
    assert_eq!(w.tcp("a", "10.0.0.2:8080"), Err(ConnError::TimedOut));
    assert_eq!(w.tcp("a", "10.0.1.4:80"), Err(ConnError::TimedOut), "egress across nodes");
    assert_eq!(w.tcp("a", "203.0.113.1:80"), Err(ConnError::TimedOut), "egress to outside");
    assert_eq!(w.tcp("b", "10.0.0.1:80"), Err(ConnError::TimedOut), "ingress");
    let drops = w.policy_drops(w.node1);
    assert!(
        drops.contains(
            &"dropped by policy: egress denied for default/a (isolated by a-lockdown)".to_string()
        ),
        "{drops:?}"
    );
    assert!(
        drops.contains(
            &"dropped by policy: ingress denied for default/a (isolated by a-lockdown)".to_string()
        ),
        "{drops:?}"
    );
    // The SYN to d never left node1.
    assert!(w.policy_drops(w.node2).is_empty());
}

#[test]
fn udp_is_judged_by_protocol_and_port() {
    let udp53 =
        PolicyPort { protocol: Protocol::Udp, port: Some(PortRef::Number(53)), end_port: None };
    let cluster = ingress_policy("b", "dns-from-a", vec![rule(vec![from_app("a")], vec![udp53])]);
    let mut w = world(cluster);
    assert!(w.udp("a", "10.0.0.2:53"));
    assert!(!w.udp("c", "10.0.0.2:53"));
    assert!(!w.udp("d", "10.0.0.2:53"));
    // TCP 53 is another port/protocol: not allowed even from a.
    assert_eq!(w.tcp("a", "10.0.0.2:80"), Err(ConnError::TimedOut));
}

/// Sends "ping" once a second over one TCP connection and collects the echoes.
struct Chatter {
    conn: TcpConn,
    rounds: usize,
    sent: usize,
    next: Time,
    received: Vec<u8>,
}

impl Chatter {
    fn new(to: &str, rounds: usize) -> Chatter {
        let conn = TcpConn::new(sa(to), Duration::from_secs(3));
        Chatter { conn, rounds, sent: 0, next: Time::ZERO, received: Vec::new() }
    }
}

impl App for Chatter {
    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        match self.conn.poll(now, cx) {
            ConnStatus::Failed => return AppPoll::Done,
            ConnStatus::Connecting => return AppPoll::Idle,
            ConnStatus::Open => {}
        }
        let Some(h) = self.conn.handle() else { return AppPoll::Done };
        let _ = cx.tcp_recv(h, &mut self.received);
        if self.received.len() >= 4 * self.rounds {
            self.conn.release(cx);
            return AppPoll::Done;
        }
        if self.sent < self.rounds && now >= self.next && cx.tcp_send(h, b"ping").is_ok() {
            self.sent += 1;
            self.next = now + Duration::from_secs(1);
        }
        AppPoll::WakeAt(self.next.max(now + Duration::from_millis(100)))
    }
}

#[test]
fn a_connection_established_before_a_policy_change_survives_it() {
    let mut w = world(finish(base()));
    let chat = w.spawn("a", Chatter::new("10.0.0.2:80", 6));
    let remote = w.spawn("c", Chatter::new("10.0.1.4:80", 6));
    w.sim.run_for(Duration::from_millis(2500));
    let got =
        |w: &mut World, name: &str, id| w.stack(name).app::<Chatter>(id).unwrap().received.len();
    assert!(got(&mut w, "a", chat) >= 8, "two echoes before the change");
    // Deny all ingress to b and d now.
    let mut b = base();
    b.policy(NS, "deny-b", select("b"), INGRESS, vec![], vec![]);
    b.policy(NS, "deny-d", select("d"), INGRESS, vec![], vec![]);
    w.agent.update(finish(b));
    assert_eq!(w.agent.cached_verdicts(), 0, "the update cleared the cache");
    // New connections obey the new policy...
    assert_eq!(w.tcp("c", "10.0.0.2:80"), Err(ConnError::TimedOut));
    assert_eq!(w.tcp("a", "10.0.1.4:80"), Err(ConnError::TimedOut));
    // ...while the established ones carry on to the end.
    w.run_until_done(&[("a", chat), ("c", remote)]);
    assert_eq!(w.stack("a").app::<Chatter>(chat).unwrap().received, b"ping".repeat(6));
    assert_eq!(w.stack("c").app::<Chatter>(remote).unwrap().received, b"ping".repeat(6));
    // Removing the policies lets new connections through again.
    w.agent.update(finish(base()));
    assert_eq!(w.tcp("c", "10.0.0.2:80"), Ok(()));
}

#[test]
fn ip_block_admits_an_outside_address() {
    let block = |except: &[&str]| PolicyPeer::IpBlock {
        cidr: "203.0.113.0/28".parse().unwrap(),
        except: except.iter().map(|e| e.parse().unwrap()).collect(),
    };
    let mut w = world(ingress_policy("a", "from-outside", vec![rule(vec![block(&[])], vec![])]));
    assert_eq!(w.tcp("outside", "10.0.0.1:80"), Ok(()));
    assert_eq!(w.tcp("b", "10.0.0.1:80"), Err(ConnError::TimedOut));
    w.agent.update(ingress_policy(
        "a",
        "from-outside",
        vec![rule(vec![block(&["203.0.113.1/32"])], vec![])],
    ));
    assert_eq!(w.tcp("outside", "10.0.0.1:80"), Err(ConnError::TimedOut));
    // Egress to the outside by ipBlock.
    let mut b = base();
    b.policy(NS, "c-out", select("c"), EGRESS, vec![], vec![rule(vec![block(&[])], vec![])]);
    w.agent.update(finish(b));
    assert_eq!(w.tcp("c", "203.0.113.1:80"), Ok(()));
    assert_eq!(w.tcp("c", "10.0.0.1:80"), Err(ConnError::TimedOut));
}

#[test]
fn a_pod_and_its_own_node_always_reach_each_other() {
    let mut b = base();
    b.policy(NS, "deny-all", Selector::everything(), BOTH, vec![], vec![]);
    let mut w = world(finish(b));
    // node1 to its pod a (from the bridge's address 10.0.0.254): allowed; node2 to a: denied.
    assert_eq!(w.tcp("node1", "10.0.0.1:80"), Ok(()));
    assert_eq!(w.tcp("node2", "10.0.0.1:80"), Err(ConnError::TimedOut));
    assert_eq!(w.tcp("node2", "10.0.1.4:80"), Ok(()), "d runs on node2");
    assert_eq!(w.tcp("a", "10.0.0.2:80"), Err(ConnError::TimedOut));
}

#[test]
fn service_traffic_is_judged_after_dnat() {
    // A ClusterIP DNATed to pod b by a kube-proxy-like rule in each node's PREROUTING; from
    // d the connection is DNATed on node2 and judged on node1.
    let cluster = ingress_policy("b", "b-from-a", vec![rule(vec![from_app("a")], vec![])]);
    let mut w = world(cluster);
    for node in ["node1", "node2"] {
        run(
            &mut w.sim,
            &format!(
                "ip netns exec {node} iptables -t nat -A PREROUTING -d 10.96.0.10 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80"
            ),
        );
    }
    assert_eq!(w.tcp("a", "10.96.0.10:80"), Ok(()));
    assert_eq!(w.tcp("c", "10.96.0.10:80"), Err(ConnError::TimedOut));
    assert_eq!(w.tcp("d", "10.96.0.10:80"), Err(ConnError::TimedOut));
    assert_eq!(
        w.policy_drops(w.node1),
        vec!["dropped by policy: ingress denied for default/b (isolated by b-from-a)"]
    );
}

/// Denies every connection to port 8080 and counts its calls.
struct No8080 {
    calls: Rc<Cell<u64>>,
    prepared: Rc<Cell<u64>>,
}

impl PolicyEngine for No8080 {
    fn name(&self) -> &str {
        "no-8080"
    }

    fn prepare(&mut self, _cluster: &Cluster) {
        self.prepared.set(self.prepared.get() + 1);
    }

    fn evaluate(&self, _cluster: &Cluster, flow: &Flow) -> Verdict {
        self.calls.set(self.calls.get() + 1);
        Verdict::unexplained(flow.port.port != 8080)
    }
}

#[test]
fn a_custom_engine_is_consulted() {
    let mut w = world(finish(base()));
    let (calls, prepared) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let engine = No8080 { calls: calls.clone(), prepared: prepared.clone() };
    w.agent.set_engine(Box::new(engine));
    assert_eq!(w.agent.engine_name(), "no-8080");
    assert_eq!(prepared.get(), 1);
    assert_eq!(w.tcp("a", "10.0.0.2:80"), Ok(()));
    assert_eq!(w.tcp("a", "10.0.0.2:8080"), Err(ConnError::TimedOut));
    assert_eq!(w.tcp("a", "10.0.1.4:8080"), Err(ConnError::TimedOut));
    assert!(calls.get() >= 3, "{}", calls.get());
    assert_eq!(
        w.policy_drops(w.node1),
        vec!["dropped by policy: egress denied for default/a (by the no-8080 engine)",]
    );
    w.agent.update(finish(base()));
    assert_eq!(prepared.get(), 2, "update prepares the engine again");
}

#[test]
fn the_drop_and_its_reason_show_in_the_hop_trace() {
    let mut w = world(ingress_policy("b", "deny-b", vec![]));
    w.sim.enable_trace();
    assert_eq!(w.tcp("a", "10.0.0.2:80"), Err(ConnError::TimedOut));
    let trace = w.sim.trace();
    let drop = trace
        .iter()
        .find(|e| matches!(&e.what, TraceWhat::Drop { .. }))
        .expect("a drop in the trace");
    assert_eq!(drop.ns, "node1");
    let TraceWhat::Drop { reason } = &drop.what else { unreachable!() };
    assert_eq!(
        reason.to_string(),
        "dropped by policy: ingress denied for default/b (isolated by deny-b)"
    );
    let hook = trace
        .iter()
        .find(|e| matches!(&e.what, TraceWhat::Hook { hook: Hook::Forward, verdict, .. } if verdict == "DROP"))
        .expect("the FORWARD hook's verdict in the trace");
    assert!(hook.to_string().contains("policy: drop: ingress denied for default/b"), "{hook}");
}

#[test]
fn the_cache_holds_one_verdict_per_flow_and_is_cleared_on_update() {
    let mut w = world(ingress_policy("b", "deny-b", vec![]));
    for _ in 0..3 {
        assert_eq!(w.tcp("a", "10.0.0.3:80"), Ok(()));
    }
    let s = w.agent.stats();
    assert_eq!(s.evaluations, 1, "{s:?}");
    assert_eq!(s.cache_hits, 2, "{s:?}");
    assert_eq!(w.agent.cached_verdicts(), 1);
    // A denied SYN is retransmitted: every copy is NEW and judged, from the cache.
    assert_eq!(w.tcp("a", "10.0.0.2:80"), Err(ConnError::TimedOut));
    let s = w.agent.stats();
    assert_eq!(s.evaluations, 2, "{s:?}");
    assert!(s.dropped >= 2 && s.cache_hits >= 3, "{s:?}");
    w.agent.update(ingress_policy("b", "deny-b", vec![]));
    assert_eq!(w.agent.cached_verdicts(), 0);
    // Without the cache every judgement asks the engine.
    w.agent.set_cache(false);
    w.agent.reset_stats();
    assert_eq!(w.tcp("a", "10.0.0.3:80"), Ok(()));
    assert_eq!(w.tcp("a", "10.0.0.3:80"), Ok(()));
    let s = w.agent.stats();
    assert_eq!((s.evaluations, s.cache_hits), (s.judged, 0), "{s:?}");
    assert_eq!(w.agent.cached_verdicts(), 0);
}

#[test]
fn a_plugin_without_the_agent_enforces_nothing_and_the_cli_warns() {
    let mut cluster = ingress_policy("b", "deny-b", vec![]);
    cluster.config.enforce_policy = false;
    assert!(PolicyAgent::for_cluster(&cluster).is_none());
    assert_eq!(
        policy_warning(&cluster, false).as_deref(),
        Some("1 NetworkPolicy exists but the network plugin does not enforce it")
    );
    let mut w = world_with(cluster, false);
    assert_eq!(w.tcp("a", "10.0.0.2:80"), Ok(()));
    assert_eq!(w.agent.stats().judged, 0);
}

#[test]
fn unbinding_a_pod_stops_enforcement_for_it() {
    let mut w = world(ingress_policy("d", "deny-d", vec![]));
    assert_eq!(w.tcp("a", "10.0.1.4:80"), Err(ConnError::TimedOut));
    assert_eq!(w.agent.unbind_pod(NodeId(1), "veth-d"), Some(D));
    assert_eq!(w.agent.bindings(NodeId(1)), vec![]);
    assert_eq!(w.tcp("a", "10.0.1.4:80"), Ok(()));
    w.agent.bind_pod(NodeId(1), "veth-d", D);
    assert_eq!(w.tcp("a", "10.0.1.4:80"), Err(ConnError::TimedOut));
    assert_eq!(w.agent.uninstall(&mut w.sim, w.node2), 3);
    assert_eq!(w.tcp("a", "10.0.1.4:80"), Ok(()));
}

// ---- property: packets through the agent agree with the reference engine ----

/// A generated cluster placed on two nodes: pod i on node i % 2 at 10.0.<node>.<i+1>.
fn place(mut cluster: Cluster) -> Cluster {
    cluster.nodes.push(Node {
        id: NodeId(1),
        name: "node-2".into(),
        ip: "192.168.0.11".parse().unwrap(),
        pod_cidr: "10.0.1.0/24".parse().unwrap(),
        labels: Default::default(),
    });
    for (i, pod) in cluster.pods.iter_mut().enumerate() {
        let ip: IpAddr = format!("10.0.{}.{}", i % 2, i + 1).parse().unwrap();
        pod.node = NodeId((i % 2) as u32);
        pod.ip = ip;
        pod.ips = vec![ip];
    }
    cluster
}

/// Two bridged nodes wired for a [`place`]d cluster, with the agent installed and every pod
/// serving TCP and UDP echo on `port`.
fn generated_world(cluster: &Cluster, port: u16) -> (Sim, PolicyAgent, Vec<NetnsId>) {
    let mut script = String::from(
        "ip netns add node1\nip netns add node2
ip -n node1 link add eth0 type veth peer name eth0 netns node2
ip -n node1 addr add 192.168.0.10/24 dev eth0\nip -n node2 addr add 192.168.0.11/24 dev eth0
ip -n node1 link set eth0 up\nip -n node2 link set eth0 up
ip -n node1 route add 10.0.1.0/24 via 192.168.0.11\nip -n node2 route add 10.0.0.0/24 via 192.168.0.10
ip netns exec node1 sysctl -w net.ipv4.ip_forward=1\nip netns exec node2 sysctl -w net.ipv4.ip_forward=1\n",
    );
    for n in 0..2 {
        let node = format!("node{}", n + 1);
        script += &format!(
            "ip -n {node} link add cni0 type bridge\nip -n {node} addr add 10.0.{n}.254/24 dev cni0\nip -n {node} link set cni0 up\n"
        );
    }
    for (i, pod) in cluster.pods.iter().enumerate() {
        let (n, ip) = (pod.node.index(), pod.ip);
        let node = format!("node{}", n + 1);
        script += &format!(
            "ip netns add p{i}
ip -n {node} link add veth-p{i} type veth peer name eth0 netns p{i}
ip -n {node} link set veth-p{i} master cni0\nip -n {node} link set veth-p{i} up
ip -n p{i} addr add {ip}/24 dev eth0\nip -n p{i} link set eth0 up
ip -n p{i} route add default via 10.0.{n}.254\n"
        );
    }
    let mut sim = Sim::new(11);
    run(&mut sim, &script);
    let agent = PolicyAgent::new(cluster.clone());
    for n in 0..2u32 {
        let node = ns(&sim, &format!("node{}", n + 1));
        agent.install(&mut sim, node, NodeId(n)).unwrap();
    }
    let mut pods = Vec::new();
    for (i, pod) in cluster.pods.iter().enumerate() {
        agent.bind_pod(pod.node, &format!("veth-p{i}"), pod.id);
        let n = ns(&sim, &format!("p{i}"));
        let seed = sim.child_seed();
        let mut stack = SmolStack::new(StackConfig::with_seed(seed), sim.now());
        stack.spawn(TcpEcho::new(port));
        stack.spawn(UdpEcho::new(port));
        sim.attach_stack(n, stack);
        pods.push(n);
    }
    (sim, agent, pods)
}

/// Opens every pod-to-pod connection on `port` at once; returns (src, dst) → connected.
fn packet_matrix(cluster: &Cluster, port: PortProtocol) -> Vec<((usize, usize), bool)> {
    let (mut sim, _agent, pods) = generated_world(cluster, port.port);
    let mut clients = Vec::new();
    for (i, &src) in pods.iter().enumerate() {
        for j in 0..pods.len() {
            if i == j {
                continue;
            }
            let to = SocketAddr::new(cluster.pods[j].ip, port.port);
            let stack = sim.stack_mut::<SmolStack>(src).unwrap();
            let id = match port.protocol {
                Protocol::Tcp => stack.spawn(TcpClient::new(tcp_config(&to.to_string()))),
                _ => {
                    let mut cfg = UdpClientConfig::new(to, "hey");
                    cfg.wait = Duration::from_secs(3);
                    stack.spawn(UdpClient::new(cfg))
                }
            };
            clients.push(((i, j), src, id));
        }
        sim.kick(src);
    }
    for _ in 0..200 {
        if clients.iter().all(|(_, n, id)| sim.stack_mut::<SmolStack>(*n).unwrap().is_done(*id)) {
            break;
        }
        sim.run_for(Duration::from_millis(100));
    }
    clients
        .into_iter()
        .map(|(pair, n, id)| {
            let stack = sim.stack_mut::<SmolStack>(n).unwrap();
            assert!(stack.is_done(id), "{pair:?} still running");
            let ok = match port.protocol {
                Protocol::Tcp => stack.app::<TcpClient>(id).unwrap().established(),
                _ => !stack.app::<UdpClient>(id).unwrap().replies().is_empty(),
            };
            (pair, ok)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn packets_through_the_agent_agree_with_the_reference_engine(
        cluster in kns_core::testing::strategies::cluster(),
        udp in any::<bool>(),
    ) {
        let port = PortProtocol::new(80, if udp { Protocol::Udp } else { Protocol::Tcp });
        // Addresses change with the placement, and ipBlock peers see them: the expected
        // verdicts are those of the placed cluster.
        let placed = place(cluster);
        let got = packet_matrix(&placed, port);
        for ((i, j), ok) in got {
            let flow = Flow {
                src: FlowEnd::Pod(placed.pods[i].id),
                dst: FlowEnd::Pod(placed.pods[j].id),
                port,
            };
            let want = ReferenceEngine.evaluate(&placed, &flow).allowed;
            prop_assert_eq!(ok, want, "p{} -> p{} on {}", i, j, port);
        }
    }
}
