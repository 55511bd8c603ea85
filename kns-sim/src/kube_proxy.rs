//! kube-proxy for one node: a [`ServiceProxy`] applied to real packets through conntrack.
//!
//! [`KubeProxy::install`] registers packet filters in the node's namespace: at PREROUTING
//! (traffic from pods and from outside) and OUTPUT (traffic the node itself opens), right
//! after the nat table's own DNAT, the first packet of a new connection to a Service frontend
//! is handed to the proxy, and its decision becomes a [`FilterVerdict::Dnat`] that conntrack
//! stores in the connection: every later packet goes to the same backend, and replies are
//! un-NATed so the client sees the frontend answer. Where Kubernetes masquerades (external
//! traffic with `externalTrafficPolicy: Cluster`, sources outside the pod network, hairpin),
//! a filter at POSTROUTING source-NATs the connection to the outgoing interface's address, as
//! `KUBE-POSTROUTING`'s MASQUERADE does. A Service without endpoints is refused with ICMP port
//! unreachable (kube-proxy's REJECT); Local traffic policies without a local endpoint drop.
//!
//! Cluster IPs are never assigned to an interface, so nothing answers ARP for them: packets
//! reach the node because it is the pods' default gateway, as in Kubernetes. As there, pods on
//! a bridge need `net.bridge.bridge-nf-call-iptables=1` in the node: a backend's reply to a
//! client on the same bridge is bridged, not routed, and must still meet conntrack to be
//! un-DNATed.
//!
//! Least-connection scheduling learns that a connection ended from the client's first FIN or
//! RST (seen at PREROUTING/OUTPUT after DNAT).
//!
//! [`KubeProxy`] is a handle (cheap to clone) on state shared with the installed filters:
//! [`KubeProxy::update`] recomputes the service table when Services or endpoints change;
//! existing connections keep their backend (conntrack), new ones see the new table.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use kns_core::Protocol;
use kns_core::model::{Cluster, NodeId, TrafficPolicy};
use kns_core::proxy::{
    Connection, FrontendKind, Outcome, ProxyStats, ServiceProxy, ServiceTable, VirtualService,
    VsId, fnv1a, fnv1a_from,
};

use crate::Sim;
use crate::conntrack::CtState;
use crate::net::NetnsId;
use crate::netfilter::{FilterVerdict, Hook, HookContext, PacketFilter, RejectWith, priority};
use crate::time::Time;
use crate::wire::{L4Summary, PacketSummary};

/// The name of kube-proxy's packet filters (for [`crate::netfilter::Netfilter::remove_filters`]).
pub const FILTER_NAME: &str = "kube-proxy";

/// How many explained decisions a [`KubeProxy`] keeps.
const LOG_LEN: usize = 64;

/// Pending masquerades older than this are forgotten (their packet never left).
const MASQ_TTL: Duration = Duration::from_secs(5);

/// At most this many open TCP connections are remembered for least-connection scheduling.
const OPEN_MAX: usize = 65_536;

/// A connection's tuple after DNAT: (source, backend, IP protocol).
type Key = (SocketAddr, SocketAddr, u8);

/// What the proxy did with new connections, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KubeProxyCounters {
    /// Connections sent to a backend.
    pub forwarded: u64,
    /// Connections refused because their Service has no endpoints.
    pub refused: u64,
    /// Connections dropped because a Local policy left no endpoint on this node.
    pub dropped: u64,
    /// Connections source-NATed.
    pub masqueraded: u64,
}

struct State {
    node: NodeId,
    table: Rc<ServiceTable>,
    proxy: Box<dyn ServiceProxy>,
    local_pods: BTreeSet<IpAddr>,
    masq: BTreeMap<Key, Time>,
    open: BTreeMap<Key, (VsId, SocketAddr)>,
    log: VecDeque<(Time, String)>,
    counters: KubeProxyCounters,
}

/// kube-proxy on one node; see the module documentation.
#[derive(Clone)]
pub struct KubeProxy {
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for KubeProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("KubeProxy")
            .field("node", &s.node)
            .field("mode", &s.proxy.mode())
            .field("frontends", &s.table.frontends().len())
            .finish_non_exhaustive()
    }
}

impl KubeProxy {
    /// kube-proxy for `node` of `cluster`, deciding with `proxy` (see
    /// [`kns_core::proxy::proxy_for`]).
    pub fn new(cluster: &Cluster, node: NodeId, proxy: Box<dyn ServiceProxy>) -> KubeProxy {
        let table = Rc::new(ServiceTable::from_cluster(cluster));
        KubeProxy::with_table(table, cluster, node, proxy)
    }

    /// Like [`KubeProxy::new`] with a table already computed from `cluster`: every node's
    /// kube-proxy watches the same Services and endpoints, so a cluster computes the table
    /// once and shares it.
    pub fn with_table(
        table: Rc<ServiceTable>,
        cluster: &Cluster,
        node: NodeId,
        proxy: Box<dyn ServiceProxy>,
    ) -> KubeProxy {
        let state = State {
            node,
            table,
            proxy,
            local_pods: local_pods(cluster, node),
            masq: BTreeMap::new(),
            open: BTreeMap::new(),
            log: VecDeque::new(),
            counters: KubeProxyCounters::default(),
        };
        KubeProxy { state: Rc::new(RefCell::new(state)) }
    }

    /// Registers the filters in namespace `ns` (the node's): PREROUTING and OUTPUT just after
    /// the nat table's DNAT, POSTROUTING just after its SNAT.
    pub fn install(&self, sim: &mut Sim, ns: NetnsId) {
        let nf = sim.netfilter_mut(ns);
        for (hook, prio) in [
            (Hook::Prerouting, priority::NAT_DST),
            (Hook::Output, priority::NAT_DST),
            (Hook::Postrouting, priority::NAT_SRC),
        ] {
            nf.add_filter(hook, prio, Box::new(Filter { state: Rc::clone(&self.state) }));
        }
    }

    /// Recomputes the service table from `cluster` (Services, endpoints, pod readiness).
    /// Established connections keep their backends; new connections see the new table.
    pub fn update(&self, cluster: &Cluster) {
        self.set_table(Rc::new(ServiceTable::from_cluster(cluster)), cluster);
    }

    /// Like [`KubeProxy::update`] with the table already computed from `cluster` (shared by
    /// every node's kube-proxy).
    pub fn set_table(&self, table: Rc<ServiceTable>, cluster: &Cluster) {
        let mut s = self.state.borrow_mut();
        s.table = table;
        s.local_pods = local_pods(cluster, s.node);
        s.open.clear();
    }

    /// The service table in use, one line per frontend.
    pub fn table_text(&self) -> String {
        self.state.borrow().table.to_string()
    }

    /// The latest decisions (oldest first, at most 64), each explained in one line.
    pub fn decisions(&self) -> Vec<(Time, String)> {
        self.state.borrow().log.iter().cloned().collect()
    }

    /// What happened to new connections so far.
    pub fn counters(&self) -> KubeProxyCounters {
        self.state.borrow().counters
    }

    /// The proxy's own counters (rules or lookups evaluated).
    pub fn stats(&self) -> ProxyStats {
        self.state.borrow().proxy.stats()
    }

    /// The rules kube-proxy's iptables mode would program for this table, in
    /// `iptables-save` form (the `filter` and `nat` tables), so learners can read them.
    pub fn render_rules(&self) -> String {
        let s = self.state.borrow();
        render_rules(&s.table, s.node)
    }
}

fn local_pods(cluster: &Cluster, node: NodeId) -> BTreeSet<IpAddr> {
    cluster
        .pods
        .iter()
        .filter(|p| p.node == node && !p.host_network)
        .flat_map(|p| p.ips.iter().copied())
        .collect()
}

/// One of kube-proxy's filters; all share the node's state.
struct Filter {
    state: Rc<RefCell<State>>,
}

fn protocol(ip_proto: u8) -> Option<Protocol> {
    match ip_proto {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        132 => Some(Protocol::Sctp),
        _ => None,
    }
}

impl PacketFilter for Filter {
    fn name(&self) -> &str {
        FILTER_NAME
    }

    fn check(
        &mut self,
        now: Time,
        hook: Hook,
        ctx: &HookContext<'_>,
        summary: &PacketSummary,
        ct: CtState,
    ) -> FilterVerdict {
        let Some((sport, dport)) = summary.ports() else { return FilterVerdict::Pass };
        let key: Key = (
            SocketAddr::new(summary.src, sport),
            SocketAddr::new(summary.dst, dport),
            summary.protocol,
        );
        let mut s = self.state.borrow_mut();
        if hook == Hook::Postrouting {
            if ct != CtState::New {
                return FilterVerdict::Pass;
            }
            let Some(_) = s.masq.remove(&key) else { return FilterVerdict::Pass };
            return match ctx.out_addr {
                Some(addr) => {
                    s.counters.masqueraded += 1;
                    FilterVerdict::Snat(addr, None)
                }
                None => FilterVerdict::Pass,
            };
        }
        if let L4Summary::Tcp { flags, .. } = summary.l4
            && (flags.fin || flags.rst)
        {
            if let Some((vs, backend)) = s.open.remove(&key) {
                let st = &mut *s;
                st.proxy.release(&st.table, vs, backend);
            }
            return FilterVerdict::Pass;
        }
        if ct != CtState::New {
            return FilterVerdict::Pass;
        }
        let Some(proto) = protocol(summary.protocol) else { return FilterVerdict::Pass };
        let conn = Connection {
            src: key.0,
            dst: key.1,
            protocol: proto,
            node: s.node,
            from_local_pod: hook == Hook::Prerouting && s.local_pods.contains(&summary.src),
        };
        let st = &mut *s;
        let outcome = st.proxy.select(&st.table, &conn, Duration::from_nanos(now.as_nanos()));
        match outcome {
            Outcome::NotAService => FilterVerdict::Pass,
            Outcome::NoEndpoints { vs } => {
                st.counters.refused += 1;
                let why = format!("{} has no endpoints", st.table.service(vs).name);
                st.push_log(now, format!("{} -> {why}: REJECT", conn.dst));
                FilterVerdict::Reject(why, RejectWith::IcmpPortUnreachable)
            }
            Outcome::NoLocalEndpoints { vs } => {
                st.counters.dropped += 1;
                let why = format!("{} has no local endpoints", st.table.service(vs).name);
                st.push_log(now, format!("{} -> {why}: DROP", conn.dst));
                FilterVerdict::Drop(why)
            }
            Outcome::Forward(d) => {
                st.counters.forwarded += 1;
                let after: Key = (conn.src, d.backend, summary.protocol);
                if d.snat.is_some() {
                    if st.masq.len() > 4096 {
                        st.masq.retain(|_, t| now.saturating_since(*t) < MASQ_TTL);
                    }
                    st.masq.insert(after, now);
                }
                if proto == Protocol::Tcp {
                    // Connections that vanish without FIN or RST would pile up: past a bound,
                    // forget them all (least-connection counts then drift, as in a restart).
                    if st.open.len() >= OPEN_MAX {
                        st.open.clear();
                    }
                    st.open.insert(after, (d.vs, d.backend));
                }
                let text = d.explain(&st.table);
                st.push_log(now, text);
                FilterVerdict::Dnat(d.backend.ip(), Some(d.backend.port()))
            }
        }
    }
}

impl State {
    fn push_log(&mut self, now: Time, text: String) {
        if self.log.len() == LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back((now, text));
    }
}

/// A kube-proxy-style chain name: `prefix` and 16 base32 characters of a fixed hash.
fn chain(prefix: &str, what: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let a = fnv1a(what.as_bytes());
    let b = fnv1a_from(a, b"kns");
    let mut out = String::from(prefix);
    for i in 0..16 {
        let word = if i < 12 { a >> (i * 5) } else { b >> ((i - 12) * 5) };
        out.push(char::from(ALPHABET[(word & 31) as usize]));
    }
    out
}

fn proto_word(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

/// Probability rules for backends `list` (indices into `vs.backends`) into `out`.
fn spread_rules(out: &mut Vec<String>, chain_name: &str, vs: &VirtualService, list: &[u32]) {
    let n = list.len();
    for (k, &i) in list.iter().enumerate() {
        let b = &vs.backends[i as usize];
        let sep = chain("KUBE-SEP-", &format!("{}{}", vs.name, b.addr));
        let comment = format!("\"{} -> {}\"", vs.name, b.addr);
        if k + 1 < n {
            let p = 1.0 / (n - k) as f64;
            out.push(format!(
                "-A {chain_name} -m comment --comment {comment} -m statistic --mode random --probability {p:.10} -j {sep}"
            ));
        } else {
            out.push(format!("-A {chain_name} -m comment --comment {comment} -j {sep}"));
        }
    }
}

/// The `iptables-save` text of kube-proxy's iptables mode for `table` on `node`.
fn render_rules(table: &ServiceTable, node: NodeId) -> String {
    let pod_cidr = table.pod_cidr();
    let mut chains: Vec<String> = vec![
        "KUBE-MARK-MASQ".into(),
        "KUBE-NODEPORTS".into(),
        "KUBE-POSTROUTING".into(),
        "KUBE-SERVICES".into(),
    ];
    let mut filter: Vec<String> = Vec::new();
    let mut services: Vec<String> = Vec::new();
    let mut nodeports: Vec<String> = Vec::new();
    let mut body: Vec<String> = Vec::new();
    for (i, vs) in table.services().iter().enumerate() {
        let vs_id = VsId(i as u32);
        let p = proto_word(vs.protocol);
        let key = format!("{}{}", vs.name, vs.protocol);
        let svc = chain("KUBE-SVC-", &key);
        let svl = chain("KUBE-SVL-", &key);
        let ext = chain("KUBE-EXT-", &key);
        let frontends: Vec<_> = table.frontends().iter().filter(|f| f.vs == vs_id).collect();
        let external = frontends.iter().any(|f| f.kind.is_external());
        if vs.backends.is_empty() {
            for f in &frontends {
                let rule = match f.addr {
                    Some(a) => format!(
                        "-A KUBE-SERVICES -d {} -p {p} -m comment --comment \"{} has no endpoints\" -m {p} --dport {} -j REJECT --reject-with icmp-port-unreachable",
                        host(a),
                        vs.name,
                        f.port
                    ),
                    None => format!(
                        "-A KUBE-EXTERNAL-SERVICES -p {p} -m comment --comment \"{} has no endpoints\" -m addrtype --dst-type LOCAL -m {p} --dport {} -j REJECT --reject-with icmp-port-unreachable",
                        vs.name, f.port
                    ),
                };
                filter.push(rule);
            }
            continue;
        }
        let local = vs.local_backends(node);
        let internal_local = vs.internal_policy == TrafficPolicy::Local;
        let external_local = vs.external_policy == TrafficPolicy::Local;
        if internal_local || (external && external_local) {
            chains.push(svl.clone());
            spread_rules(&mut body, &svl, vs, local);
        }
        let needs_svc = !internal_local || external;
        if needs_svc {
            chains.push(svc.clone());
        }
        if external {
            chains.push(ext.clone());
        }
        for f in &frontends {
            match (f.kind, f.addr) {
                (FrontendKind::ClusterIp, Some(a)) => {
                    let target = if internal_local { &svl } else { &svc };
                    services.push(format!(
                        "-A KUBE-SERVICES -d {} -p {p} -m comment --comment \"{} cluster IP\" -m {p} --dport {} -j {target}",
                        host(a),
                        vs.name,
                        f.port
                    ));
                }
                (kind, Some(a)) => services.push(format!(
                    "-A KUBE-SERVICES -d {} -p {p} -m comment --comment \"{} {}\" -m {p} --dport {} -j {ext}",
                    host(a),
                    vs.name,
                    kind.as_str(),
                    f.port
                )),
                (_, None) => nodeports.push(format!(
                    "-A KUBE-NODEPORTS -p {p} -m comment --comment \"{}\" -m {p} --dport {} -j {ext}",
                    vs.name, f.port
                )),
            }
        }
        if external && external_local && local.is_empty() {
            filter.push(format!(
                "-A KUBE-EXTERNAL-SERVICES -p {p} -m comment --comment \"{} has no local endpoints\" -j DROP",
                vs.name
            ));
        }
        if external {
            if external_local {
                body.push(format!(
                    "-A {ext} -s {pod_cidr} -m comment --comment \"pod traffic for {} external destinations\" -j {svc}",
                    vs.name
                ));
                body.push(format!("-A {ext} -j {svl}"));
            } else {
                body.push(format!(
                    "-A {ext} -m comment --comment \"masquerade traffic for {} external destinations\" -j KUBE-MARK-MASQ",
                    vs.name
                ));
                body.push(format!("-A {ext} -j {svc}"));
            }
        }
        if needs_svc {
            if let Some(ip) = vs.cluster_ip {
                body.push(format!(
                    "-A {svc} ! -s {pod_cidr} -d {} -p {p} -m comment --comment \"{} cluster IP\" -m {p} --dport {} -j KUBE-MARK-MASQ",
                    host(ip),
                    vs.name,
                    vs.port
                ));
            }
            if let Some(secs) = vs.affinity_timeout {
                for b in &vs.backends {
                    let sep = chain("KUBE-SEP-", &format!("{}{}", vs.name, b.addr));
                    body.push(format!(
                        "-A {svc} -m comment --comment \"{} -> {}\" -m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck --seconds {secs} --reap -j {sep}",
                        vs.name, b.addr
                    ));
                }
            }
            spread_rules(&mut body, &svc, vs, vs.all_backends());
        }
        for b in &vs.backends {
            let sep = chain("KUBE-SEP-", &format!("{}{}", vs.name, b.addr));
            chains.push(sep.clone());
            body.push(format!(
                "-A {sep} -s {} -m comment --comment \"{}\" -j KUBE-MARK-MASQ",
                host(b.addr.ip()),
                vs.name
            ));
            let recent = if vs.affinity_timeout.is_some() {
                format!(" -m recent --set --name {sep} --mask 255.255.255.255 --rsource")
            } else {
                String::new()
            };
            body.push(format!(
                "-A {sep} -p {p} -m comment --comment \"{}\"{recent} -m {p} -j DNAT --to-destination {}",
                vs.name, b.addr
            ));
        }
    }
    let mut out = String::new();
    out.push_str("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    out.push_str(":KUBE-EXTERNAL-SERVICES - [0:0]\n:KUBE-SERVICES - [0:0]\n");
    out.push_str("-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n");
    out.push_str("-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    out.push_str("-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n");
    out.push_str("-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    for line in &filter {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("COMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n");
    let mut declared: Vec<&String> = chains.iter().collect();
    declared.sort();
    declared.dedup();
    for c in declared {
        let _ = writeln!(out, ":{c} - [0:0]");
    }
    out.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
    );
    out.push_str(
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
    );
    out.push_str("-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n");
    out.push_str("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n");
    out.push_str("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n");
    out.push_str("-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n");
    out.push_str("-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n");
    for line in services.iter().chain(&nodeports) {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n");
    for line in &body {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("COMMIT\n");
    out
}
