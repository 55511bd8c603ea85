//! A NetworkPolicy agent, as Calico, Cilium or kube-router run one on every node: it turns the
//! verdicts of a [`PolicyEngine`] into [`PacketFilter`]s in the node namespaces.
//!
//! One [`PolicyAgent`] serves the whole cluster. It holds the current [`Cluster`], the engine
//! (the [`ReferenceEngine`] unless another is given) and, per node, the host ends of the veths
//! of the pods wired on that node. [`PolicyAgent::install`] registers its filter in a node
//! namespace at FORWARD (pod to pod, pod to elsewhere, elsewhere to pod), OUTPUT (the node to
//! its pods) and INPUT (its pods to the node), at [`PRIORITY`]: after destination NAT, so a
//! Service connection is judged by the pod it was sent to.
//!
//! **What is judged.** Only a connection's packets in conntrack state NEW: replies and every
//! later packet of an admitted connection are ESTABLISHED and pass, so no rule is needed for
//! replies, a connection admitted before a policy change keeps working, and new connections
//! obey the new policy. RELATED ICMP errors, INVALID and untracked packets pass, and so do
//! protocols other than TCP, UDP and SCTP (NetworkPolicy ports name only those three).
//! A packet leaving a local pod (by its veth, as a bridge port or as the routed interface, or
//! by its source address) is held to the egress side of the verdict; a packet entering a local
//! pod is held to the ingress side. A pod-to-pod connection across nodes is thus judged twice,
//! egress on the sender's node and ingress on the receiver's, as real agents do.
//!
//! **Identity.** Peers are identified by address: an address of a (non-host-network) pod is
//! that pod, anything else is an outside address that only `ipBlock` peers match. Traffic the
//! node itself sends (OUTPUT) counts as coming from the node's address, and traffic to the node
//! (INPUT) as going to it, whichever of its addresses the packet carries, so that a pod and its
//! own node always reach each other ([`Side::OwnNode`]).
//!
//! **Drops.** A denied packet is dropped, never rejected (Kubernetes semantics: the client
//! times out), with a reason naming the side, the pod and the isolating policies, e.g.
//! `ingress denied for default/web (isolated by web-deny)`; it shows in the hop trace as
//! `dropped by policy: ...`.
//!
//! **Cache.** Verdicts are cached by (source address, destination address, port/protocol) and
//! the cache is cleared whenever the cluster or the engine changes ([`PolicyAgent::update`]),
//! and when it reaches [`CACHE_LIMIT`] entries (so a full packet matrix stays small in memory).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::rc::Rc;

use kns_core::flow::{Flow, FlowEnd, PortProtocol, Protocol};
use kns_core::model::{Cluster, NodeId, PodId, PolicyId};
use kns_core::policy::{Direction, PolicyEngine, ReferenceEngine, Side};

use crate::conntrack::CtState;
use crate::net::{IpError, NetnsId, Sim};
use crate::netfilter::{FilterVerdict, Hook, HookContext, PacketFilter, priority};
use crate::time::Time;
use crate::wire::{L4Summary, PacketSummary};

/// The name of the agent's packet filters, the first word of its drop reasons
/// (`dropped by policy: ...`).
pub const FILTER_NAME: &str = "policy";

/// The priority the filters run at: after destination NAT (kube-proxy's Service DNAT) and
/// before the filter table.
pub const PRIORITY: i32 = priority::NAT_DST + 50;

/// The hooks the agent registers at in each node namespace.
pub const HOOKS: [Hook; 3] = [Hook::Forward, Hook::Output, Hook::Input];

/// The most verdicts the cache holds; it starts over when full.
pub const CACHE_LIMIT: usize = 1 << 16;

/// Counters of the agent's work since it was created (or since [`PolicyAgent::reset_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// NEW packets from or to a local pod that were judged.
    pub judged: u64,
    /// Verdicts computed by the engine (cache misses, or every judgement without the cache).
    pub evaluations: u64,
    /// Verdicts found in the cache.
    pub cache_hits: u64,
    /// Packets dropped.
    pub dropped: u64,
}

/// The NetworkPolicy agent of a cluster; cloning it shares the state (see the module docs).
#[derive(Clone)]
pub struct PolicyAgent {
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for PolicyAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("PolicyAgent")
            .field("engine", &st.engine.name())
            .field("nodes", &st.veths.len())
            .field("cache", &st.cache.as_ref().map(HashMap::len))
            .field("stats", &st.stats)
            .finish_non_exhaustive()
    }
}

impl PolicyAgent {
    /// An agent for `cluster` with the reference engine and the verdict cache on.
    pub fn new(cluster: Cluster) -> PolicyAgent {
        PolicyAgent::with_engine(cluster, Box::new(ReferenceEngine))
    }

    /// An agent for `cluster` that asks `engine`; the engine is prepared for the cluster.
    pub fn with_engine(cluster: Cluster, mut engine: Box<dyn PolicyEngine>) -> PolicyAgent {
        engine.prepare(&cluster);
        let by_ip = index_ips(&cluster);
        let state = State {
            cluster,
            engine,
            by_ip,
            veths: BTreeMap::new(),
            bound: HashMap::new(),
            cache: Some(HashMap::new()),
            cache_limit: CACHE_LIMIT,
            stats: AgentStats::default(),
        };
        PolicyAgent { state: Rc::new(RefCell::new(state)) }
    }

    /// The agent a cluster asks for: `None` when its network plugin does not enforce policy
    /// (`config.enforce_policy` is false), else a reference-engine agent.
    pub fn for_cluster(cluster: &Cluster) -> Option<PolicyAgent> {
        cluster.config.enforce_policy.then(|| PolicyAgent::new(cluster.clone()))
    }

    /// Registers the agent's filters in `node_ns`, the namespace of node `node`, at every hook
    /// of [`HOOKS`], and turns on `net.bridge.bridge-nf-call-iptables` there so that frames
    /// bridged between pods cross the hooks too (as kube-router and kube-proxy require).
    pub fn install(&self, sim: &mut Sim, node_ns: NetnsId, node: NodeId) -> Result<(), IpError> {
        sim.sysctl(node_ns, "net.bridge.bridge-nf-call-iptables", Some("1"))?;
        self.state.borrow_mut().veths.entry(node).or_default();
        let nf = sim.netfilter_mut(node_ns);
        for hook in HOOKS {
            let filter = NodeFilter { state: Rc::clone(&self.state), node };
            nf.add_filter(hook, PRIORITY, Box::new(filter));
        }
        Ok(())
    }

    /// Removes the agent's filters from `node_ns`; returns how many there were.
    pub fn uninstall(&self, sim: &mut Sim, node_ns: NetnsId) -> usize {
        sim.netfilter_mut(node_ns).remove_filters(FILTER_NAME)
    }

    /// Records that `pod` is wired on `node` through the host-side veth `veth` (a bridge port
    /// or a routed interface). A later binding of the same veth replaces the earlier one.
    pub fn bind_pod(&self, node: NodeId, veth: &str, pod: PodId) {
        let mut st = self.state.borrow_mut();
        if let Some(old) = st.veths.entry(node).or_default().insert(veth.to_string(), pod) {
            st.bound.remove(&old);
        }
        st.bound.insert(pod, node);
    }

    /// Forgets the veth `veth` of `node` (the pod was deleted); returns the pod it carried.
    pub fn unbind_pod(&self, node: NodeId, veth: &str) -> Option<PodId> {
        let mut st = self.state.borrow_mut();
        let pod = st.veths.get_mut(&node)?.remove(veth)?;
        if st.bound.get(&pod) == Some(&node) {
            st.bound.remove(&pod);
        }
        Some(pod)
    }

    /// The veths bound on `node` and their pods, sorted by veth name.
    pub fn bindings(&self, node: NodeId) -> Vec<(String, PodId)> {
        let st = self.state.borrow();
        let mut out: Vec<(String, PodId)> = st
            .veths
            .get(&node)
            .map_or_else(Vec::new, |m| m.iter().map(|(veth, pod)| (veth.clone(), *pod)).collect());
        out.sort();
        out
    }

    /// Replaces the cluster (pods moved or restarted with new addresses, policies added or
    /// removed): re-prepares the engine and clears the verdict cache. Bindings are kept, so
    /// pod IDs must keep their meaning; rebind pods whose IDs changed.
    pub fn update(&self, cluster: Cluster) {
        let mut st = self.state.borrow_mut();
        st.engine.prepare(&cluster);
        st.by_ip = index_ips(&cluster);
        st.cluster = cluster;
        st.clear_cache();
    }

    /// Swaps in another engine (prepared for the current cluster) and clears the cache.
    pub fn set_engine(&self, mut engine: Box<dyn PolicyEngine>) {
        let mut st = self.state.borrow_mut();
        engine.prepare(&st.cluster);
        st.engine = engine;
        st.clear_cache();
    }

    /// The name of the engine in use.
    pub fn engine_name(&self) -> String {
        self.state.borrow().engine.name().to_string()
    }

    /// Turns the verdict cache on (the default) or off; either way it starts empty.
    pub fn set_cache(&self, on: bool) {
        self.state.borrow_mut().cache = on.then(HashMap::new);
    }

    /// How many verdicts the cache holds (0 when it is off).
    pub fn cached_verdicts(&self) -> usize {
        self.state.borrow().cache.as_ref().map_or(0, HashMap::len)
    }

    /// The counters.
    pub fn stats(&self) -> AgentStats {
        self.state.borrow().stats
    }

    /// Sets the counters back to zero.
    pub fn reset_stats(&self) {
        self.state.borrow_mut().stats = AgentStats::default();
    }

    /// A filter for `node` that is not registered anywhere, for callers (benches, other
    /// dataplanes) that drive [`PacketFilter::check`] themselves. It shares the agent's state.
    pub fn filter(&self, node: NodeId) -> Box<dyn PacketFilter> {
        self.state.borrow_mut().veths.entry(node).or_default();
        Box::new(NodeFilter { state: Rc::clone(&self.state), node })
    }
}

/// The warning the CLI prints for a cluster whose policies are not enforced: `None` when the
/// cluster has no NetworkPolicy or a policy agent enforces them.
pub fn policy_warning(cluster: &Cluster, enforced: bool) -> Option<String> {
    let n = cluster.policies.len();
    if enforced || n == 0 {
        return None;
    }
    Some(if n == 1 {
        "1 NetworkPolicy exists but the network plugin does not enforce it".to_string()
    } else {
        format!("{n} NetworkPolicies exist but the network plugin does not enforce them")
    })
}

/// The agent's shared state.
struct State {
    cluster: Cluster,
    engine: Box<dyn PolicyEngine>,
    /// Every address of every non-host-network pod.
    by_ip: HashMap<IpAddr, PodId>,
    /// Per node, host-side veth name → pod.
    veths: BTreeMap<NodeId, HashMap<String, PodId>>,
    /// The node each bound pod is wired on.
    bound: HashMap<PodId, NodeId>,
    /// `None` when the cache is off.
    cache: Option<HashMap<Key, Judgement>>,
    /// [`CACHE_LIMIT`], lowered by unit tests.
    cache_limit: usize,
    stats: AgentStats,
}

/// A cache key: the connection's addresses (as judged) and destination port.
type Key = (IpAddr, IpAddr, PortProtocol);

/// What a verdict means for the dataplane: the drop reason of each side that denies.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Judgement {
    egress: Option<String>,
    ingress: Option<String>,
}

impl State {
    fn clear_cache(&mut self) {
        if let Some(cache) = self.cache.as_mut() {
            *cache = HashMap::new();
        }
    }

    /// Whether the packet end (`iface` it crosses, `ip` it carries) is a pod wired on `node`.
    fn is_local(&self, node: NodeId, iface: Option<&str>, ip: IpAddr) -> bool {
        let by_iface = iface.is_some_and(|name| {
            self.veths.get(&node).is_some_and(|veths| veths.contains_key(name))
        });
        by_iface || self.by_ip.get(&ip).is_some_and(|pod| self.bound.get(pod) == Some(&node))
    }

    fn judge(
        &mut self,
        node: NodeId,
        hook: Hook,
        ctx: &HookContext<'_>,
        summary: &PacketSummary,
        port: PortProtocol,
    ) -> FilterVerdict {
        let (mut src, mut dst) = (summary.src, summary.dst);
        // The node's own traffic counts as its node address, whichever address it carries.
        let node_ip = self.cluster.nodes.get(node.index()).map(|n| n.ip);
        match (hook, node_ip) {
            (Hook::Output, Some(ip)) if ip.is_ipv4() == src.is_ipv4() => src = ip,
            (Hook::Input, Some(ip)) if ip.is_ipv4() == dst.is_ipv4() => dst = ip,
            _ => {}
        }
        let from_local =
            hook != Hook::Output && self.is_local(node, ctx.in_port.or(ctx.in_iface), src);
        let to_local =
            hook != Hook::Input && self.is_local(node, ctx.out_port.or(ctx.out_iface), dst);
        if !from_local && !to_local {
            return FilterVerdict::Pass;
        }
        self.stats.judged += 1;
        let key = (src, dst, port);
        let cached = self.cache.as_ref().and_then(|c| c.get(&key));
        let fresh;
        let judgement = match cached {
            Some(j) => {
                self.stats.cache_hits += 1;
                j
            }
            None => {
                self.stats.evaluations += 1;
                let j = self.evaluate(src, dst, port);
                match self.cache.as_mut() {
                    Some(cache) => {
                        if cache.len() >= self.cache_limit {
                            cache.clear();
                        }
                        &*cache.entry(key).or_insert(j)
                    }
                    None => {
                        fresh = j;
                        &fresh
                    }
                }
            }
        };
        let why = match (from_local, to_local) {
            (true, _) if judgement.egress.is_some() => judgement.egress.clone(),
            (_, true) if judgement.ingress.is_some() => judgement.ingress.clone(),
            _ => None,
        };
        match why {
            Some(why) => {
                self.stats.dropped += 1;
                FilterVerdict::Drop(why)
            }
            None => FilterVerdict::Pass,
        }
    }

    /// Asks the engine about the connection `src` → `dst` on `port`.
    fn evaluate(&self, src: IpAddr, dst: IpAddr, port: PortProtocol) -> Judgement {
        let end = |ip: IpAddr| match self.by_ip.get(&ip) {
            Some(pod) => FlowEnd::Pod(*pod),
            None => FlowEnd::External(ip),
        };
        let flow = Flow { src: end(src), dst: end(dst), port };
        let verdict = self.engine.evaluate(&self.cluster, &flow);
        let reason = |side: &Side, direction: Direction, who: FlowEnd| {
            (!side.allows()).then(|| self.reason(side, direction, who))
        };
        Judgement {
            egress: reason(&verdict.egress, Direction::Egress, flow.src),
            ingress: reason(&verdict.ingress, Direction::Ingress, flow.dst),
        }
    }

    /// `ingress denied for ns/pod (isolated by a, b)`, or the engine's name when it cannot say.
    fn reason(&self, side: &Side, direction: Direction, who: FlowEnd) -> String {
        let who = match who {
            FlowEnd::Pod(id) if id.index() < self.cluster.pods.len() => self.cluster.pod_ref(id),
            FlowEnd::Pod(id) => id.to_string(),
            FlowEnd::External(ip) => ip.to_string(),
        };
        let head = format!("{} denied for {who}", direction.as_str());
        match side {
            Side::Denied { selecting } => {
                format!("{head} (isolated by {})", self.policy_names(selecting))
            }
            _ => format!("{head} (by the {} engine)", self.engine.name()),
        }
    }

    fn policy_names(&self, ids: &[PolicyId]) -> String {
        let names: Vec<&str> = ids
            .iter()
            .map(|id| self.cluster.policies.get(id.index()).map_or("?", |p| p.name.as_str()))
            .collect();
        names.join(", ")
    }
}

/// Every address of every pod that has its own network namespace.
fn index_ips(cluster: &Cluster) -> HashMap<IpAddr, PodId> {
    let mut by_ip = HashMap::new();
    for pod in cluster.pods.iter().filter(|p| !p.host_network) {
        for ip in &pod.ips {
            // The first pod listed keeps a duplicated address, as `Cluster::pod_by_ip` does.
            by_ip.entry(*ip).or_insert(pod.id);
        }
    }
    by_ip
}

/// The destination port and protocol of a TCP, UDP or SCTP packet.
fn port_of(summary: &PacketSummary) -> Option<PortProtocol> {
    let (protocol, port) = match summary.l4 {
        L4Summary::Tcp { dst_port, .. } => (Protocol::Tcp, dst_port),
        L4Summary::Udp { dst_port, .. } => (Protocol::Udp, dst_port),
        L4Summary::Sctp { dst_port, .. } => (Protocol::Sctp, dst_port),
        _ => return None,
    };
    Some(PortProtocol::new(port, protocol))
}

/// The agent's filter in one node namespace.
struct NodeFilter {
    state: Rc<RefCell<State>>,
    node: NodeId,
}

impl PacketFilter for NodeFilter {
    fn name(&self) -> &str {
        FILTER_NAME
    }

    fn check(
        &mut self,
        _now: Time,
        hook: Hook,
        ctx: &HookContext<'_>,
        summary: &PacketSummary,
        ct: CtState,
    ) -> FilterVerdict {
        if ct != CtState::New {
            return FilterVerdict::Pass;
        }
        let Some(port) = port_of(summary) else { return FilterVerdict::Pass };
        self.state.borrow_mut().judge(self.node, hook, ctx, summary, port)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use kns_core::model::{NamespaceId, PolicyTypes, Selector};
    use kns_core::testing::ClusterBuilder;
    use kns_core::testing::build::labels_of;

    use super::*;
    use crate::net::packet;
    use crate::wire::parse_ip;

    /// Pods a (10.0.0.1) and b (10.0.0.2) on node-1; b isolated for ingress by two policies.
    fn cluster() -> Cluster {
        let mut b = ClusterBuilder::new();
        let ns = b.namespace("default", &[]);
        b.pod(ns, "a", &[("app", "a")], &[]);
        b.pod(ns, "b", &[("app", "b")], &[]);
        let only_b = Selector::from_labels(labels_of(&[("app", "b")]));
        let ingress = PolicyTypes { ingress: true, egress: false };
        b.policy(ns, "deny-1", only_b.clone(), ingress, vec![], vec![]);
        b.policy(NamespaceId(0), "deny-2", only_b, ingress, vec![], vec![]);
        b.build()
    }

    fn udp(src: [u8; 4], dst: [u8; 4]) -> PacketSummary {
        let p = packet::udp_datagram(Ipv4Addr::from(src), Ipv4Addr::from(dst), 40000, 53, 64, b"q");
        parse_ip(&p).unwrap()
    }

    fn bridged<'a>(from: &'a str, to: &'a str) -> HookContext<'a> {
        HookContext {
            in_iface: Some("cni0"),
            out_iface: Some("cni0"),
            in_port: Some(from),
            out_port: Some(to),
            ..HookContext::default()
        }
    }

    fn agent() -> (PolicyAgent, Box<dyn PacketFilter>) {
        let agent = PolicyAgent::new(cluster());
        agent.bind_pod(NodeId(0), "veth-a", PodId(0));
        agent.bind_pod(NodeId(0), "veth-b", PodId(1));
        let filter = agent.filter(NodeId(0));
        (agent, filter)
    }

    #[test]
    fn drop_reason_names_side_pod_and_every_isolating_policy() {
        let (agent, mut f) = agent();
        let s = udp([10, 0, 0, 1], [10, 0, 0, 2]);
        let v = f.check(Time::ZERO, Hook::Forward, &bridged("veth-a", "veth-b"), &s, CtState::New);
        let why = "ingress denied for default/b (isolated by deny-1, deny-2)";
        assert_eq!(v, FilterVerdict::Drop(why.into()));
        // b may send to a: egress is not isolated, a's ingress neither.
        let s = udp([10, 0, 0, 2], [10, 0, 0, 1]);
        let v = f.check(Time::ZERO, Hook::Forward, &bridged("veth-b", "veth-a"), &s, CtState::New);
        assert_eq!(v, FilterVerdict::Pass);
        assert_eq!(
            agent.stats(),
            AgentStats { judged: 2, evaluations: 2, cache_hits: 0, dropped: 1 }
        );
    }

    #[test]
    fn only_new_tcp_udp_sctp_packets_of_local_pods_are_judged() {
        let (agent, mut f) = agent();
        let ctx = bridged("veth-a", "veth-b");
        let s = udp([10, 0, 0, 1], [10, 0, 0, 2]);
        for ct in [CtState::Established, CtState::Related, CtState::Invalid, CtState::Untracked] {
            assert_eq!(f.check(Time::ZERO, Hook::Forward, &ctx, &s, ct), FilterVerdict::Pass);
        }
        let ping = packet::icmp_echo_request(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            1,
            1,
            64,
            b"",
        );
        let ping = parse_ip(&ping).unwrap();
        assert_eq!(
            f.check(Time::ZERO, Hook::Forward, &ctx, &ping, CtState::New),
            FilterVerdict::Pass
        );
        // Neither end local to this node (node-2 has no pods bound): not judged.
        let mut other = agent.filter(NodeId(1));
        let routed = HookContext {
            in_iface: Some("eth0"),
            out_iface: Some("eth1"),
            ..HookContext::default()
        };
        assert_eq!(
            other.check(Time::ZERO, Hook::Forward, &routed, &s, CtState::New),
            FilterVerdict::Pass
        );
        assert_eq!(agent.stats().judged, 0);
    }

    #[test]
    fn a_routed_veth_or_the_address_identifies_the_local_pod() {
        let (agent, mut f) = agent();
        let s = udp([10, 0, 0, 1], [10, 0, 0, 2]);
        // Routed (ptp style): the out interface is b's veth.
        let ptp = HookContext {
            in_iface: Some("veth-a"),
            out_iface: Some("veth-b"),
            ..HookContext::default()
        };
        assert!(matches!(
            f.check(Time::ZERO, Hook::Forward, &ptp, &s, CtState::New),
            FilterVerdict::Drop(_)
        ));
        // Routed through the bridge device (after a Service DNAT): only addresses tell.
        let via_bridge = HookContext {
            in_iface: Some("cni0"),
            out_iface: Some("cni0"),
            ..HookContext::default()
        };
        assert!(matches!(
            f.check(Time::ZERO, Hook::Forward, &via_bridge, &s, CtState::New),
            FilterVerdict::Drop(_)
        ));
        // Once b is unbound, node-1 no longer judges traffic to it.
        assert_eq!(agent.unbind_pod(NodeId(0), "veth-b"), Some(PodId(1)));
        assert_eq!(f.check(Time::ZERO, Hook::Forward, &ptp, &s, CtState::New), FilterVerdict::Pass);
        assert_eq!(agent.bindings(NodeId(0)), vec![("veth-a".to_string(), PodId(0))]);
    }

    #[test]
    fn the_node_reaches_its_own_pods_from_any_of_its_addresses() {
        let (_agent, mut f) = agent();
        // From the bridge's address 10.0.0.254 at OUTPUT: counted as the node, so allowed.
        let s = udp([10, 0, 0, 254], [10, 0, 0, 2]);
        let out = HookContext { out_iface: Some("cni0"), ..HookContext::default() };
        assert_eq!(f.check(Time::ZERO, Hook::Output, &out, &s, CtState::New), FilterVerdict::Pass);
        // The same packet forwarded (from another host with that address) is judged.
        let fwd = HookContext {
            in_iface: Some("eth0"),
            out_iface: Some("cni0"),
            ..HookContext::default()
        };
        assert!(matches!(
            f.check(Time::ZERO, Hook::Forward, &fwd, &s, CtState::New),
            FilterVerdict::Drop(_)
        ));
    }

    #[test]
    fn a_full_cache_starts_over() {
        let (agent, mut f) = agent();
        agent.state.borrow_mut().cache_limit = 2;
        let ctx = bridged("veth-a", "veth-b");
        let judge = |f: &mut Box<dyn PacketFilter>, port: u16| {
            let p = packet::udp_datagram(
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2),
                40000,
                port,
                64,
                b"",
            );
            f.check(Time::ZERO, Hook::Forward, &ctx, &parse_ip(&p).unwrap(), CtState::New)
        };
        for port in [1, 2] {
            assert!(matches!(judge(&mut f, port), FilterVerdict::Drop(_)));
        }
        assert_eq!(agent.cached_verdicts(), 2);
        assert!(matches!(judge(&mut f, 3), FilterVerdict::Drop(_)));
        assert_eq!(agent.cached_verdicts(), 1);
        assert!(matches!(judge(&mut f, 3), FilterVerdict::Drop(_)));
        assert_eq!(agent.stats().cache_hits, 1);
    }

    #[test]
    fn warning_only_for_unenforced_policies() {
        let mut c = cluster();
        assert_eq!(policy_warning(&c, true), None);
        assert_eq!(
            policy_warning(&c, false).as_deref(),
            Some("2 NetworkPolicies exist but the network plugin does not enforce them")
        );
        c.policies.clear();
        assert_eq!(policy_warning(&c, false), None);
        c.config.enforce_policy = false;
        assert!(PolicyAgent::for_cluster(&c).is_none());
        c.config.enforce_policy = true;
        assert_eq!(
            PolicyAgent::for_cluster(&c).map(|a| a.engine_name()).as_deref(),
            Some("reference")
        );
    }
}
