//! The service proxy seam: a [`ServiceTable`] computed from a cluster, and the
//! [`ServiceProxy`] trait that chooses a backend (and the NAT) for each new connection to a
//! Service, with the four implementations kns ships:
//!
//! - [`IptablesProxy`]: kube-proxy's iptables mode. `KUBE-SERVICES` is one rule per frontend,
//!   matched in order, then a chain per Service whose rules jump to backend *n* with
//!   probability 1/n, 1/(n-1), ..., 1. Its cost grows linearly with the number of Services.
//! - [`IpvsProxy`]: kube-proxy's IPVS mode. A hash lookup of the virtual service, then a
//!   scheduler: round-robin or least-connection.
//! - [`NftablesProxy`]: kube-proxy's nftables mode. A verdict-map lookup, then
//!   `numgen random mod n` into the backend map.
//! - [`MaglevProxy`]: Maglev consistent hashing (Cilium, Katran). A hash lookup, then the
//!   5-tuple's hash indexes a per-Service lookup table of prime size, so every node picks the
//!   same backend for a flow and a backend change moves few flows.
//!
//! What every mode shares follows Kubernetes ([`resolve`]): a Service port with no backends
//! is refused ([`Outcome::NoEndpoints`], kube-proxy answers ICMP port unreachable); external
//! traffic (node ports, load-balancer and external IPs) with `externalTrafficPolicy: Cluster`
//! is source-NATed, with `Local` it keeps its source and only reaches endpoints on the
//! receiving node (none there: dropped); `internalTrafficPolicy: Local` limits cluster-IP
//! traffic the same way; sources outside the pod network are source-NATed on cluster IPs; a
//! pod that reaches itself through its Service (hairpin) is source-NATed so the reply comes
//! back through the node; `sessionAffinity: ClientIP` sends a client's new connections to the
//! backend it last got until the timeout passes without a new connection.
//!
//! A proxy decides **new connections only**. Keeping a connection on its backend is connection
//! tracking's job (kns-sim's `kube_proxy` stores the decision in the conntrack entry). State a
//! proxy needs between connections (affinity, round-robin cursors, connection counts, Maglev
//! tables) lives in the proxy object. Randomness comes from a ChaCha generator seeded by the
//! caller; time is an argument (`now`, since the start of the run): nothing here reads a clock.

mod hash;
mod iptables;
mod ipvs;
mod maglev;
mod nftables;
mod table;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use hash::{fnv1a, fnv1a_from, mix};
pub use iptables::IptablesProxy;
pub use ipvs::{IpvsProxy, Scheduler};
pub use maglev::{DEFAULT_TABLE_SIZE, MaglevProxy, maglev_table};
pub use nftables::NftablesProxy;
pub use table::{Backend, Frontend, FrontendKind, ServiceTable, VirtualService, VsId};

use crate::flow::Protocol;
use crate::model::{NodeId, ProxyMode, ServiceId, TrafficPolicy};

/// A new connection, as the proxy on the receiving node sees its first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Connection {
    /// The client's address and port.
    pub src: SocketAddr,
    /// The address and port connected to (a frontend, if it is for a Service).
    pub dst: SocketAddr,
    /// The transport protocol.
    pub protocol: Protocol,
    /// The node whose proxy handles it.
    pub node: NodeId,
    /// Whether it comes from a pod on that node (Local traffic policies treat it apart).
    pub from_local_pod: bool,
}

/// Why a connection is source-NATed (masqueraded to the node's address on the way out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SnatReason {
    /// External traffic with `externalTrafficPolicy: Cluster`: the backend may be on another
    /// node, and its reply must come back through this one.
    ExternalCluster,
    /// A cluster-IP connection from outside the pod network (a node or a host elsewhere).
    OffClusterSource,
    /// A pod reaching itself through its Service: without SNAT its reply would not return
    /// through the node and would never be un-DNATed.
    Hairpin,
}

impl SnatReason {
    /// A short phrase for explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            SnatReason::ExternalCluster => "external traffic, externalTrafficPolicy Cluster",
            SnatReason::OffClusterSource => "source outside the pod network",
            SnatReason::Hairpin => "hairpin (the client is the backend)",
        }
    }
}

/// How the backend was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Choice {
    /// `sessionAffinity: ClientIP`: the backend this client got last time.
    Affinity,
    /// iptables: rule `rule` (1-based) of the Service chain's `of` rules matched.
    Probability {
        /// The matching rule (1-based).
        rule: u32,
        /// The rules in the chain.
        of: u32,
    },
    /// IPVS round-robin: the next backend in turn.
    RoundRobin {
        /// The position chosen (0-based).
        index: u32,
        /// The backends in the rotation.
        of: u32,
    },
    /// IPVS least-connection: the backend with the fewest active connections.
    LeastConnection {
        /// Its active connections before this one.
        active: u32,
    },
    /// nftables: `numgen random mod of` gave `index`.
    Random {
        /// The number drawn.
        index: u32,
        /// The modulus (backend count).
        of: u32,
    },
    /// Maglev: the flow's hash fell in `slot` of the `size`-entry lookup table.
    Maglev {
        /// The slot.
        slot: u32,
        /// The table size (a prime).
        size: u32,
    },
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Affinity => f.write_str("session affinity (ClientIP)"),
            Choice::Probability { rule, of } => {
                write!(f, "probability rule {rule} of {of} in the Service chain")
            }
            Choice::RoundRobin { index, of } => write!(f, "round-robin {} of {of}", index + 1),
            Choice::LeastConnection { active } => {
                write!(f, "least-connection ({active} active)")
            }
            Choice::Random { index, of } => write!(f, "numgen random mod {of} = {index}"),
            Choice::Maglev { slot, size } => write!(f, "maglev slot {slot} of {size}"),
        }
    }
}

/// The decision for a connection to a Service with a usable backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The Service port.
    pub vs: VsId,
    /// The frontend connected to.
    pub frontend: SocketAddr,
    /// How the frontend reaches the Service.
    pub kind: FrontendKind,
    /// The backend: the new destination (DNAT).
    pub backend: SocketAddr,
    /// Whether, and why, the source is NATed too.
    pub snat: Option<SnatReason>,
    /// How the backend was chosen.
    pub choice: Choice,
    /// Rules (iptables) or table lookups (other modes) evaluated for this decision.
    pub evaluated: u32,
}

impl Decision {
    /// One line for learners: frontend, Service, backend, how, and the NAT.
    pub fn explain(&self, table: &ServiceTable) -> String {
        let vs = table.service(self.vs);
        let snat = self.snat.map_or_else(String::new, |r| format!("; SNAT: {}", r.as_str()));
        format!(
            "{}/{} ({} of {}) -> DNAT {} by {}, {} evaluated{snat}",
            self.frontend,
            vs.protocol,
            self.kind.as_str(),
            vs.name,
            self.backend,
            self.choice,
            self.evaluated
        )
    }
}

/// What a proxy decides about a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The destination is no Service frontend: the proxy has nothing to say.
    NotAService,
    /// The Service port has no usable endpoint: refuse the connection (kube-proxy REJECTs
    /// with ICMP port unreachable).
    NoEndpoints {
        /// The Service port.
        vs: VsId,
    },
    /// A Local traffic policy leaves no endpoint on the receiving node: drop it (kube-proxy
    /// drops such traffic, "has no local endpoints").
    NoLocalEndpoints {
        /// The Service port.
        vs: VsId,
    },
    /// Forward to a backend.
    Forward(Decision),
}

/// Counters a proxy keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// New connections decided (whatever the outcome).
    pub connections: u64,
    /// Rules (iptables) or table lookups (other modes) evaluated, in total.
    pub evaluations: u64,
}

/// A service proxy: chooses the backend and NAT of each new connection to a Service.
///
/// Implementations keep their own state between calls; the caller owns the table and hands
/// it to every call (rebuild it from the cluster when Services or endpoints change).
pub trait ServiceProxy {
    /// The mode this proxy implements (the cluster document's `proxy` field).
    fn mode(&self) -> ProxyMode;

    /// Decides a new connection at time `now`.
    fn select(&mut self, table: &ServiceTable, conn: &Connection, now: Duration) -> Outcome;

    /// Tells the proxy that a connection it forwarded to `backend` of `vs` has ended (for
    /// schedulers that count connections). The default does nothing.
    fn release(&mut self, table: &ServiceTable, vs: VsId, backend: SocketAddr) {
        let _ = (table, vs, backend);
    }

    /// Counters so far.
    fn stats(&self) -> ProxyStats;
}

/// The proxy for `mode`, with its default settings: IPVS round-robin, Maglev tables of
/// [`DEFAULT_TABLE_SIZE`] entries. `seed` seeds the random modes' generator.
pub fn proxy_for(mode: ProxyMode, seed: u64) -> Box<dyn ServiceProxy> {
    match mode {
        ProxyMode::Iptables => Box::new(IptablesProxy::new(seed)),
        ProxyMode::Ipvs => Box::new(IpvsProxy::new(Scheduler::RoundRobin)),
        ProxyMode::Nftables => Box::new(NftablesProxy::new(seed)),
        ProxyMode::Maglev => Box::new(MaglevProxy::new(DEFAULT_TABLE_SIZE)),
    }
}

/// The key of a Service port that survives rebuilding the table.
pub(crate) type VsKey = (ServiceId, u16, Protocol);

pub(crate) fn vs_key(vs: &VirtualService) -> VsKey {
    (vs.service, vs.port, vs.protocol)
}

/// `sessionAffinity: ClientIP` state: the backend each client last got, per Service port.
#[derive(Debug, Clone, Default)]
pub struct Affinity {
    map: BTreeMap<(VsKey, IpAddr), (SocketAddr, Duration)>,
}

impl Affinity {
    /// No remembered clients.
    pub fn new() -> Self {
        Affinity::default()
    }

    /// The candidate (index into `vs.backends`) that `client` is bound to, if its binding has
    /// not expired and the backend is still a candidate. Expired bindings are forgotten.
    pub fn lookup(
        &mut self,
        vs: &VirtualService,
        candidates: &[u32],
        client: IpAddr,
        now: Duration,
    ) -> Option<u32> {
        let timeout = Duration::from_secs(u64::from(vs.affinity_timeout?));
        let key = (vs_key(vs), client);
        let &(backend, last) = self.map.get(&key)?;
        if now.saturating_sub(last) > timeout {
            self.map.remove(&key);
            return None;
        }
        candidates.iter().copied().find(|&i| vs.backends[i as usize].addr == backend)
    }

    /// Remembers that `client` got `backend` at `now` (a no-op without affinity).
    pub fn record(
        &mut self,
        vs: &VirtualService,
        client: IpAddr,
        backend: SocketAddr,
        now: Duration,
    ) {
        if vs.affinity_timeout.is_some() {
            self.map.insert((vs_key(vs), client), (backend, now));
        }
    }

    /// The clients remembered (expired ones included until looked up).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The part of every mode that Kubernetes fixes: given the frontend a mode found (and the
/// rules it evaluated finding it), applies the traffic policies, the no-endpoint rules,
/// affinity and the SNAT decision; `pick` chooses among the candidate backends (indices into
/// `vs.backends`, never empty) and returns its choice and the rules it evaluated.
pub fn resolve(
    table: &ServiceTable,
    conn: &Connection,
    now: Duration,
    frontend: Option<&Frontend>,
    evaluated: u32,
    affinity: &mut Affinity,
    pick: impl FnOnce(&VirtualService, &[u32]) -> (u32, Choice, u32),
) -> Outcome {
    let Some(fe) = frontend else { return Outcome::NotAService };
    let vs = table.service(fe.vs);
    if vs.backends.is_empty() {
        return Outcome::NoEndpoints { vs: fe.vs };
    }
    let (candidates, mut snat) = if fe.kind.is_external() {
        if vs.external_policy == TrafficPolicy::Local && !conn.from_local_pod {
            (vs.local_backends(conn.node), None)
        } else {
            let snat = (vs.external_policy == TrafficPolicy::Cluster)
                .then_some(SnatReason::ExternalCluster);
            (vs.all_backends(), snat)
        }
    } else {
        let candidates = match vs.internal_policy {
            TrafficPolicy::Local => vs.local_backends(conn.node),
            TrafficPolicy::Cluster => vs.all_backends(),
        };
        let off = !table.pod_cidr().contains(&conn.src.ip());
        (candidates, off.then_some(SnatReason::OffClusterSource))
    };
    if candidates.is_empty() {
        return Outcome::NoLocalEndpoints { vs: fe.vs };
    }
    let (index, choice, more) = match affinity.lookup(vs, candidates, conn.src.ip(), now) {
        Some(i) => (i, Choice::Affinity, 1),
        None => pick(vs, candidates),
    };
    let backend = vs.backends[index as usize].addr;
    affinity.record(vs, conn.src.ip(), backend, now);
    if backend.ip() == conn.src.ip() {
        snat = Some(SnatReason::Hairpin);
    }
    Outcome::Forward(Decision {
        vs: fe.vs,
        frontend: conn.dst,
        kind: fe.kind,
        backend,
        snat,
        choice,
        evaluated: evaluated + more,
    })
}

#[cfg(test)]
mod tests;
