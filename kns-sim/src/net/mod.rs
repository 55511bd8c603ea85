//! The emulated world: network namespaces, their devices (loopback, veth pairs, bridges, VXLAN,
//! dummy), routes, neighbours, netfilter and attached socket layers, driven by the engine.
//!
//! **Architecture invariant:** every frame is a buffer that starts with an Ethernet header; the
//! IP packet is at offset [`packet::ETH_LEN`]. A frame moves by value from event to event, so
//! forwarding does not copy it; copies are made only where Linux makes them (flooding) and each
//! copy is counted as a new frame, so that [`Sim::conservation`] can balance the books.
//!
//! **API boundary:** names (`"red"`, `"veth0"`) are resolved at the edge into [`NetnsId`] and
//! [`IfaceId`]; the dataplane works with ids only and formats no text unless tracing is on.
//!
//! **Code map:** `config` (the iproute2-like API: netns, link, addr, route, neigh, fdb,
//! sysctl), `exec` (text commands and [`IpError`]), `show` (iproute2 output), `inspect` (the
//! read-only device view, [`LinkInfo`]), `tc` (netem);
//! the frame path is `dataplane` (events, accounting, device rx/tx, veth wire), `bridge`,
//! `vxlan`, `arp` and `ipv4`; `route` is the pure routing table, `packet` the frame builders,
//! `trace` the data trace and conservation, `capture` the pcap writer.
//!
//! ```
//! use kns_sim::Sim;
//! use kns_sim::net::packet::icmp_echo_request;
//!
//! let mut sim = Sim::new(7);
//! for cmd in [
//!     "netns add red",
//!     "netns add blue",
//!     "link add veth-red type veth peer name veth-blue",
//!     "link set veth-red netns red",
//!     "link set veth-blue netns blue",
//!     "-n red addr add 10.0.0.1/24 dev veth-red",
//!     "-n blue addr add 10.0.0.2/24 dev veth-blue",
//!     "-n red link set veth-red up",
//!     "-n blue link set veth-blue up",
//! ] {
//!     sim.ip(None, cmd).unwrap();
//! }
//! let red = sim.netns(Some("red")).unwrap();
//! sim.enable_trace();
//! let ping = icmp_echo_request("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), 1, 1, 64, b"hi");
//! sim.send_ip(red, &ping);
//! sim.run_until_idle(10_000).unwrap();
//! // ARP request and reply, echo request and reply, each sent and delivered.
//! assert_eq!(sim.conservation().delivered, 4);
//! assert!(sim.conservation().holds());
//! for hop in sim.trace() {
//!     println!("{hop}");
//! }
//! ```

mod arp;
mod bridge;
mod capture;
mod config;
mod dataplane;
mod exec;
mod inspect;
mod ipv4;
pub mod packet;
pub mod route;
mod show;
mod tc;
mod trace;
mod vxlan;

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use crate::drop::DropReason;
use crate::engine::{Engine, EngineError};
use crate::netfilter::Netfilter;
use crate::stack::IpStack;
use crate::time::Time;

pub use capture::CaptureError;
pub use config::{RouteGet, RouteSpec, VxlanConfig};
pub use exec::IpError;
pub use inspect::{LinkInfo, LinkKind};
pub use route::{Route, RouteProto, RouteTable};
pub use trace::{Conservation, TraceEvent, TraceWhat, describe};

/// A network namespace, numbered in creation order (0 is the host's root namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetnsId(pub u32);

/// A network interface, numbered in creation order across the whole simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfaceId(pub u32);

/// A packet capture started by [`Sim::capture`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaptureId(pub u32);

/// The physical properties of one direction of a link (the transmit side of a veth end).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkParams {
    /// Propagation delay added to every frame.
    pub latency: Duration,
    /// Bits per second; `None` serialises instantly.
    pub bandwidth_bps: Option<u64>,
    /// Probability in `[0, 1]` that a frame is lost, drawn from the link's seeded RNG.
    pub loss: f64,
    /// Frames that may wait for the wire before new ones are dropped with `QueueFull`.
    pub queue_limit: usize,
}

impl Default for LinkParams {
    /// An ideal link: no delay, infinite bandwidth, no loss, a 1000-frame queue (`txqueuelen`).
    fn default() -> Self {
        LinkParams { latency: Duration::ZERO, bandwidth_bps: None, loss: 0.0, queue_limit: 1000 }
    }
}

/// Frame counters of one interface, as `ip -s link` shows them (bytes include the Ethernet
/// header).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// The state of a neighbour entry, as `ip neigh` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NeighState {
    /// Resolution in progress.
    Incomplete,
    /// Confirmed recently.
    Reachable,
    /// Known but not confirmed recently (still used).
    Stale,
    /// Resolution failed.
    Failed,
    /// Added by hand.
    Permanent,
}

/// How long a neighbour stays REACHABLE after confirmation (Linux `base_reachable_time`).
const NEIGH_REACHABLE: Duration = Duration::from_secs(30);
/// ARP requests sent before resolution fails (Linux `mcast_solicit`).
const ARP_PROBES: u8 = 3;
/// Time between ARP requests (Linux `retrans_time_ms`).
const ARP_RETRANS: Duration = Duration::from_secs(1);
/// Packets queued per unresolved neighbour (Linux `unres_qlen`).
const ARP_QUEUE: usize = 101;
/// Bridge FDB ageing time (Linux default 300 s).
const BRIDGE_AGEING: Duration = Duration::from_secs(300);

/// One frame in flight: a buffer starting with an Ethernet header, and an id for the trace.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) id: u64,
    pub(crate) buf: Vec<u8>,
}

/// What the engine's queue holds.
#[derive(Debug)]
pub(crate) enum Event {
    /// A frame reaches an interface.
    Rx { iface: IfaceId, frame: Frame },
    /// A namespace's socket layer asked to be polled now.
    Poll { ns: NetnsId },
    /// ARP retransmission or give-up for a neighbour.
    ArpTimer { iface: IfaceId, ip: IpAddr },
}

pub(crate) struct Veth {
    pub(crate) peer: IfaceId,
    pub(crate) params: LinkParams,
    pub(crate) rng: ChaCha8Rng,
    /// When the wire is free again.
    pub(crate) busy_until: Time,
    /// Departure times of frames waiting for the wire.
    pub(crate) queue: VecDeque<Time>,
    /// A `tc qdisc ... netem` is installed (even one with default parameters).
    pub(crate) netem: bool,
}

pub(crate) struct Bridge {
    /// MAC → (port, last seen).
    pub(crate) fdb: BTreeMap<[u8; 6], (IfaceId, Time)>,
}

pub(crate) struct Vxlan {
    pub(crate) cfg: VxlanConfig,
    /// Static entries (`bridge fdb append`): MAC (all-zero = default) → remote VTEPs.
    pub(crate) fdb: BTreeMap<[u8; 6], Vec<IpAddr>>,
    /// Learned entries: inner source MAC → remote VTEP.
    pub(crate) learned: BTreeMap<[u8; 6], IpAddr>,
}

pub(crate) enum Kind {
    Loopback,
    Veth(Box<Veth>),
    Bridge(Bridge),
    Vxlan(Vxlan),
    Dummy,
}

pub(crate) struct Iface {
    pub(crate) name: String,
    pub(crate) ns: NetnsId,
    pub(crate) ifindex: u32,
    pub(crate) mac: [u8; 6],
    pub(crate) mtu: u32,
    pub(crate) up: bool,
    pub(crate) addrs: Vec<IpNet>,
    pub(crate) kind: Kind,
    pub(crate) master: Option<IfaceId>,
    pub(crate) hairpin: bool,
    /// `net.ipv4.conf.DEV.proxy_arp`.
    pub(crate) proxy_arp: bool,
    /// Addresses a user-space responder answers ARP for on this device without owning them
    /// (MetalLB's layer-2 speaker); see [`Sim::arp_announce`].
    pub(crate) announced: std::collections::BTreeSet<std::net::Ipv4Addr>,
    pub(crate) capture: Option<CaptureId>,
    pub(crate) stats: LinkStats,
    pub(crate) alive: bool,
}

pub(crate) struct Pending {
    pub(crate) frame: Frame,
    /// Whether it was being forwarded (then a failure sends ICMP host unreachable).
    pub(crate) forwarded: bool,
}

pub(crate) struct Neigh {
    pub(crate) mac: Option<[u8; 6]>,
    pub(crate) permanent: bool,
    pub(crate) failed: bool,
    pub(crate) confirmed: Time,
    pub(crate) probes: u8,
    /// When a stale entry was last re-probed.
    pub(crate) reprobed: Time,
    pub(crate) pending: Vec<Pending>,
}

/// A socket layer that can also be looked at as `Any`, so callers get their concrete type back.
pub(crate) trait AnyStack: IpStack + Any {}
impl<T: IpStack + Any> AnyStack for T {}

/// The addresses a namespace accepts packets for, indexed (rebuilt when addresses change).
#[derive(Default)]
pub(crate) struct LocalAddrs {
    /// Addresses of up interfaces.
    pub(crate) own: std::collections::BTreeSet<IpAddr>,
    /// Directed broadcast addresses of their IPv4 subnets.
    pub(crate) broadcast: std::collections::BTreeSet<IpAddr>,
    /// Prefixes on loopback devices (all of 127.0.0.0/8 is local).
    pub(crate) loopback: Vec<IpNet>,
}

pub(crate) struct Netns {
    pub(crate) name: String,
    pub(crate) alive: bool,
    pub(crate) ifaces: BTreeMap<String, IfaceId>,
    pub(crate) lo: IfaceId,
    pub(crate) routes: RouteTable,
    pub(crate) neigh: BTreeMap<(IfaceId, IpAddr), Neigh>,
    pub(crate) local: LocalAddrs,
    pub(crate) ip_forward: bool,
    pub(crate) bridge_nf: bool,
    pub(crate) netfilter: Netfilter,
    pub(crate) stack: Option<Box<dyn AnyStack>>,
    pub(crate) next_poll: Option<Time>,
    pub(crate) drops: BTreeMap<DropReason, u64>,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) sent: u64,
    pub(crate) delivered: u64,
    pub(crate) dropped: u64,
}

/// The whole emulated world and the engine that drives it.
pub struct Sim {
    pub(crate) engine: Engine<Event>,
    pub(crate) namespaces: Vec<Netns>,
    pub(crate) ns_by_name: BTreeMap<String, NetnsId>,
    pub(crate) ifaces: Vec<Iface>,
    pub(crate) next_ifindex: u32,
    pub(crate) next_frame: u64,
    pub(crate) mac_counter: u64,
    pub(crate) counters: Counters,
    pub(crate) trace: Option<Vec<TraceEvent>>,
    pub(crate) captures: Vec<capture::Capture>,
}

impl Sim {
    /// A fresh host (root namespace with `lo` up) whose random choices all derive from `seed`.
    pub fn new(seed: u64) -> Sim {
        let mut sim = Sim {
            engine: Engine::new(seed),
            namespaces: Vec::new(),
            ns_by_name: BTreeMap::new(),
            ifaces: Vec::new(),
            next_ifindex: 2,
            next_frame: 0,
            mac_counter: 0,
            counters: Counters::default(),
            trace: None,
            captures: Vec::new(),
        };
        let root = sim.new_netns(String::new());
        let lo = sim.namespaces[root.0 as usize].lo;
        sim.ifaces[lo.0 as usize].up = true;
        sim.on_link_up(lo);
        sim
    }

    /// The host's root namespace.
    pub const ROOT: NetnsId = NetnsId(0);

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.engine.now()
    }

    /// The seed this simulation was created with.
    pub fn seed(&self) -> u64 {
        self.engine.seed()
    }

    /// A new seed for a component (a smoltcp interface, an application), derived in call order
    /// from the simulation's seed.
    pub fn child_seed(&mut self) -> u64 {
        self.engine.child_seed()
    }

    /// Runs the earliest pending event; false if there was none.
    pub fn step(&mut self) -> bool {
        match self.engine.pop_until(Time::MAX) {
            Some(ev) => {
                self.handle(ev);
                true
            }
            None => false,
        }
    }

    /// Runs every event due at or before `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Time) {
        while let Some(ev) = self.engine.pop_until(t) {
            self.handle(ev);
        }
        self.engine.advance_to(t);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now() + d;
        self.run_until(t);
    }

    /// Runs until no event is pending; fails (naming the seed) after `limit` events.
    /// Returns the number of events run.
    pub fn run_until_idle(&mut self, limit: u64) -> Result<u64, EngineError> {
        let mut n = 0;
        while let Some(ev) = self.engine.pop_until(Time::MAX) {
            self.handle(ev);
            n += 1;
            if n >= limit && self.engine.pending() > 0 {
                return Err(EngineError::Limit { limit, now: self.now(), seed: self.seed() });
            }
        }
        Ok(n)
    }

    /// Number of events waiting in the queue.
    pub fn pending_events(&self) -> usize {
        self.engine.pending()
    }

    /// Hands an IP packet generated by namespace `ns` (as if by a local socket) to its IP layer:
    /// OUTPUT, routing, POSTROUTING, neighbour resolution, then the wire.
    pub fn send_ip(&mut self, ns: NetnsId, packet: &[u8]) {
        let frame = self.new_frame_from_ip(packet);
        self.ip_local_out(ns, frame);
    }

    /// Attaches a socket layer to `ns`: packets for the namespace's addresses go to it, and what
    /// it sends leaves through the namespace's IP layer. Replaces any previous one. The stack
    /// learns the addresses of the namespace's up interfaces now and whenever they change.
    pub fn attach_stack<T: IpStack + Any>(&mut self, ns: NetnsId, stack: T) {
        self.namespaces[ns.0 as usize].stack = Some(Box::new(stack));
        self.addrs_changed(ns);
        self.kick(ns);
    }

    /// The socket layer attached to `ns`, if it has type `T`. After driving it (opening a socket,
    /// starting an application), call [`Sim::kick`] so that it is polled.
    pub fn stack_mut<T: IpStack + Any>(&mut self, ns: NetnsId) -> Option<&mut T> {
        let stack = self.namespaces.get_mut(ns.0 as usize)?.stack.as_deref_mut()?;
        let any: &mut dyn Any = stack;
        any.downcast_mut::<T>()
    }

    /// Removes and returns the socket layer of `ns`.
    pub fn detach_stack(&mut self, ns: NetnsId) -> Option<Box<dyn IpStack>> {
        let s = self.namespaces.get_mut(ns.0 as usize)?.stack.take()?;
        Some(s)
    }

    /// Schedules a poll of the socket layer of `ns` at the current time.
    pub fn kick(&mut self, ns: NetnsId) {
        let now = self.now();
        self.schedule_poll(ns, now);
    }

    /// The netfilter state of `ns` (tables, conntrack), to program rules.
    pub fn netfilter_mut(&mut self, ns: NetnsId) -> &mut Netfilter {
        &mut self.namespaces[ns.0 as usize].netfilter
    }

    /// Whether `ns` forwards packets between its interfaces (`net.ipv4.ip_forward`).
    pub fn set_ip_forward(&mut self, ns: NetnsId, on: bool) {
        self.namespaces[ns.0 as usize].ip_forward = on;
    }

    /// Sets the physical properties of the transmit side of the veth `dev` in `ns`.
    pub fn link_set_params(
        &mut self,
        ns: NetnsId,
        dev: &str,
        params: LinkParams,
    ) -> Result<(), IpError> {
        let id = self.iface_id(ns, dev)?;
        match &mut self.ifaces[id.0 as usize].kind {
            Kind::Veth(v) => {
                v.params = params;
                Ok(())
            }
            _ => Err(IpError::Unsupported(format!(
                "{dev} is not a veth: link parameters apply to veth ends"
            ))),
        }
    }

    /// Connects `ns_a` and `ns_b` with a veth pair `dev_a`/`dev_b` (both up) whose two
    /// directions have `params`: a point-to-point link between two nodes.
    pub fn link_connect(
        &mut self,
        ns_a: NetnsId,
        dev_a: &str,
        ns_b: NetnsId,
        dev_b: &str,
        params: LinkParams,
    ) -> Result<(IfaceId, IfaceId), IpError> {
        let (a, b) = self.link_add_veth(ns_a, dev_a, dev_b, Some(ns_b))?;
        self.link_set_params(ns_a, dev_a, params.clone())?;
        self.link_set_params(ns_b, dev_b, params)?;
        self.link_set_up(ns_a, dev_a, true)?;
        self.link_set_up(ns_b, dev_b, true)?;
        Ok((a, b))
    }

    /// Drop counters of `ns` by reason.
    pub fn drops(&self, ns: NetnsId) -> &BTreeMap<DropReason, u64> {
        &self.namespaces[ns.0 as usize].drops
    }

    /// Drop counters summed over all namespaces, by reason.
    pub fn total_drops(&self) -> BTreeMap<DropReason, u64> {
        let mut out = BTreeMap::new();
        for ns in &self.namespaces {
            for (r, n) in &ns.drops {
                *out.entry(r.clone()).or_insert(0) += n;
            }
        }
        out
    }

    /// Namespace id by name (`None` or `""` is the root namespace).
    pub fn netns(&self, name: Option<&str>) -> Result<NetnsId, IpError> {
        match name {
            None | Some("") => Ok(Sim::ROOT),
            Some(n) => {
                self.ns_by_name.get(n).copied().ok_or_else(|| IpError::NoNetns(n.to_string()))
            }
        }
    }

    /// The name of `ns` (`""` for the root namespace).
    pub fn netns_name(&self, ns: NetnsId) -> &str {
        &self.namespaces[ns.0 as usize].name
    }

    /// Interface id by name within `ns`.
    pub fn iface_id(&self, ns: NetnsId, name: &str) -> Result<IfaceId, IpError> {
        self.namespaces[ns.0 as usize]
            .ifaces
            .get(name)
            .copied()
            .ok_or_else(|| IpError::NoDevice(name.to_string()))
    }

    /// The frame counters of `dev` in `ns`.
    pub fn link_stats(&self, ns: NetnsId, dev: &str) -> Result<LinkStats, IpError> {
        Ok(self.ifaces[self.iface_id(ns, dev)?.0 as usize].stats)
    }

    /// The MAC address of interface `id`.
    pub fn iface_mac(&self, id: IfaceId) -> [u8; 6] {
        self.ifaces[id.0 as usize].mac
    }

    /// The addresses of all interfaces of `ns`, in interface order.
    pub fn ns_addrs(&self, ns: NetnsId) -> Vec<IpNet> {
        self.namespaces[ns.0 as usize]
            .ifaces
            .values()
            .flat_map(|i| self.ifaces[i.0 as usize].addrs.iter().copied())
            .collect()
    }

    // ---- internal helpers shared by the submodules ----

    pub(crate) fn new_netns(&mut self, name: String) -> NetnsId {
        let id = NetnsId(self.namespaces.len() as u32);
        let lo = IfaceId(self.ifaces.len() as u32);
        self.ifaces.push(Iface {
            name: "lo".into(),
            ns: id,
            ifindex: 1,
            mac: [0; 6],
            mtu: 65536,
            up: false,
            addrs: vec!["127.0.0.1/8".parse().expect("literal prefix")],
            kind: Kind::Loopback,
            master: None,
            hairpin: false,
            proxy_arp: false,
            announced: std::collections::BTreeSet::new(),
            capture: None,
            stats: LinkStats::default(),
            alive: true,
        });
        let mut ifaces = BTreeMap::new();
        ifaces.insert("lo".to_string(), lo);
        if !name.is_empty() {
            self.ns_by_name.insert(name.clone(), id);
        }
        self.namespaces.push(Netns {
            name,
            alive: true,
            ifaces,
            lo,
            routes: RouteTable::default(),
            neigh: BTreeMap::new(),
            local: LocalAddrs::default(),
            ip_forward: false,
            bridge_nf: false,
            netfilter: {
                let mut nf = Netfilter::new();
                nf.set_notes(self.trace.is_some());
                // `-m statistic --mode random` draws from a generator seeded per namespace, from
                // the scenario seed and the namespace's index (the root RNG is left untouched).
                nf.set_seed(self.seed() ^ u64::from(id.0).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                nf
            },
            stack: None,
            next_poll: None,
            drops: BTreeMap::new(),
        });
        id
    }

    pub(crate) fn new_iface(&mut self, ns: NetnsId, name: &str, kind: Kind, mtu: u32) -> IfaceId {
        let id = IfaceId(self.ifaces.len() as u32);
        let mac = self.next_mac();
        self.ifaces.push(Iface {
            name: name.to_string(),
            ns,
            ifindex: self.next_ifindex,
            mac,
            mtu,
            up: false,
            addrs: Vec::new(),
            kind,
            master: None,
            hairpin: false,
            proxy_arp: false,
            announced: std::collections::BTreeSet::new(),
            capture: None,
            stats: LinkStats::default(),
            alive: true,
        });
        self.next_ifindex += 1;
        self.namespaces[ns.0 as usize].ifaces.insert(name.to_string(), id);
        id
    }

    /// A locally administered MAC from a fixed mixing of a counter: deterministic and independent
    /// of the seed, so that a different seed changes only random outcomes.
    pub(crate) fn next_mac(&mut self) -> [u8; 6] {
        self.mac_counter += 1;
        let mut z = self.mac_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let b = z.to_be_bytes();
        [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
    }

    pub(crate) fn new_veth_state(&mut self, peer: IfaceId) -> Veth {
        let seed = self.engine.child_seed();
        Veth {
            peer,
            params: LinkParams::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            busy_until: Time::ZERO,
            queue: VecDeque::new(),
            netem: false,
        }
    }

    pub(crate) fn new_frame(&mut self, buf: Vec<u8>) -> Frame {
        self.next_frame += 1;
        self.counters.sent += 1;
        Frame { id: self.next_frame, buf }
    }

    pub(crate) fn new_frame_from_ip(&mut self, ip: &[u8]) -> Frame {
        let mut buf = Vec::with_capacity(packet::ETH_LEN + ip.len());
        buf.extend_from_slice(&[0u8; packet::ETH_LEN]);
        buf.extend_from_slice(ip);
        packet::write_eth(&mut buf, [0; 6], [0; 6], smoltcp::wire::EthernetProtocol::Ipv4);
        self.new_frame(buf)
    }

    pub(crate) fn schedule_poll(&mut self, ns: NetnsId, at: Time) {
        let n = &mut self.namespaces[ns.0 as usize];
        if n.stack.is_none() {
            return;
        }
        if n.next_poll.is_some_and(|t| t <= at) {
            return;
        }
        n.next_poll = Some(at);
        self.engine.schedule(at, Event::Poll { ns });
    }
}
