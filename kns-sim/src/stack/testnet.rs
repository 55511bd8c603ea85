//! [`LoopbackNet`]: stacks wired to each other directly, without kns's IP layer.
//!
//! A datagram one stack sends is delivered, after a fixed latency per hop, to the stack that owns
//! its destination address. An optional chain of fake routers sits between any two different
//! stacks: each costs one more hop of latency and one TTL, and the router where the TTL runs
//! out answers with ICMP time exceeded (a destination nobody owns gets host unreachable from the
//! last router). The clock jumps to the next delivery or stack deadline. A drop rule can discard
//! chosen datagrams. Every datagram sent is folded into a hash, so runs can be compared.
//!
//! It is meant for tests and experiments with applications; real topologies use the engine.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, Icmpv4TimeExceeded, IpProtocol, IpVersion,
    Ipv4Packet, Ipv4Repr, Ipv6Packet,
};

use super::{AppId, IpStack, SmolStack};
use crate::time::Time;

/// A drop rule: sees each datagram sent (and the index of the stack sending it) and says
/// whether to lose it.
pub type DropRule = Box<dyn FnMut(usize, &[u8]) -> bool>;

/// Errors of [`LoopbackNet`] runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The run took more steps than allowed (a livelock or an unbounded workload).
    #[error("gave up after {steps} steps at {at}")]
    StepLimit {
        /// Steps taken.
        steps: u64,
        /// Virtual time reached.
        at: Time,
    },
}

/// What happened to a datagram sent on the net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Delivered to the stack with this index.
    Delivered(usize),
    /// Lost by the drop rule.
    Dropped,
    /// Its TTL ran out at a router, which answered with ICMP time exceeded.
    TtlExceeded,
    /// Nobody owns the destination (and no router could say so).
    Unroutable,
    /// Not an IP datagram the net understands.
    Malformed,
}

/// One datagram sent on the net, recorded when [`LoopbackNet::record`] is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// When it was sent.
    pub at: Time,
    /// The index of the sending stack, or `None` for a fake router.
    pub from: Option<usize>,
    /// The datagram.
    pub bytes: Vec<u8>,
    /// What became of it.
    pub fate: Fate,
}

/// Counters of a [`LoopbackNet`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams sent by stacks and routers.
    pub sent: u64,
    /// Datagrams delivered to a stack.
    pub delivered: u64,
    /// Datagrams lost by the drop rule.
    pub dropped: u64,
    /// Datagrams whose TTL ran out at a router.
    pub ttl_exceeded: u64,
    /// Datagrams nobody owned or that could not be parsed.
    pub unroutable: u64,
    /// Bytes delivered.
    pub bytes_delivered: u64,
}

/// Stacks joined directly by destination address, with a virtual clock.
pub struct LoopbackNet {
    now: Time,
    stacks: Vec<SmolStack>,
    latency: Duration,
    routers: Vec<Ipv4Addr>,
    in_flight: BTreeMap<(Time, u64), (usize, Vec<u8>)>,
    seq: u64,
    drop_rule: Option<DropRule>,
    record: Option<Vec<Sent>>,
    hasher: DefaultHasher,
    hash_whole: bool,
    stats: NetStats,
    steps: u64,
    max_steps: u64,
}

impl std::fmt::Debug for LoopbackNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackNet")
            .field("now", &self.now)
            .field("stacks", &self.stacks.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for LoopbackNet {
    fn default() -> Self {
        LoopbackNet::new(Duration::from_micros(50))
    }
}

impl LoopbackNet {
    /// An empty net whose every hop takes `latency`.
    pub fn new(latency: Duration) -> LoopbackNet {
        LoopbackNet {
            now: Time::ZERO,
            stacks: Vec::new(),
            latency,
            routers: Vec::new(),
            in_flight: BTreeMap::new(),
            seq: 0,
            drop_rule: None,
            record: None,
            hasher: DefaultHasher::new(),
            hash_whole: true,
            stats: NetStats::default(),
            steps: 0,
            max_steps: 50_000_000,
        }
    }

    /// Adds a stack; returns its index.
    pub fn add(&mut self, stack: SmolStack) -> usize {
        self.stacks.push(stack);
        self.stacks.len() - 1
    }

    /// Puts fake routers (by their addresses, in path order) between any two different stacks.
    pub fn set_routers(&mut self, routers: Vec<Ipv4Addr>) {
        self.routers = routers;
    }

    /// Installs a rule deciding which datagrams are lost.
    pub fn set_drop_rule(&mut self, rule: impl FnMut(usize, &[u8]) -> bool + 'static) {
        self.drop_rule = Some(Box::new(rule));
    }

    /// Starts recording every datagram sent (see [`LoopbackNet::sent`]).
    pub fn record(&mut self) {
        self.record.get_or_insert_with(Vec::new);
    }

    /// The datagrams recorded so far.
    pub fn sent(&self) -> &[Sent] {
        self.record.as_deref().unwrap_or(&[])
    }

    /// Whether the hash covers whole datagrams (the default) or only their first 64 bytes
    /// (IP and transport headers, checksums included) and length, which is much cheaper.
    pub fn set_hash_whole_datagrams(&mut self, whole: bool) {
        self.hash_whole = whole;
    }

    /// Caps the steps of a run (default 50 million).
    pub fn set_max_steps(&mut self, steps: u64) {
        self.max_steps = steps;
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Stack `i` (an index [`LoopbackNet::add`] returned; panics otherwise).
    pub fn stack(&self, i: usize) -> &SmolStack {
        &self.stacks[i]
    }

    /// Stack `i`, mutably (an index [`LoopbackNet::add`] returned; panics otherwise).
    pub fn stack_mut(&mut self, i: usize) -> &mut SmolStack {
        &mut self.stacks[i]
    }

    /// A hash of every datagram sent so far, with its send time and sender. It is stable
    /// between runs of one build (SipHash with fixed keys), not across Rust releases.
    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    /// The counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Runs until nothing is scheduled at or before `limit`; the clock ends at `limit`.
    pub fn run_until(&mut self, limit: Time) -> Result<(), NetError> {
        while self.step(limit)? {}
        self.now = self.now.max(limit);
        Ok(())
    }

    /// Runs until every app on every stack is done, or until `limit`.
    /// Returns whether all apps finished.
    pub fn run_until_apps_done(&mut self, limit: Time) -> Result<bool, NetError> {
        loop {
            if self.stacks.iter().all(SmolStack::all_done) {
                return Ok(true);
            }
            if !self.step(limit)? {
                return Ok(self.stacks.iter().all(SmolStack::all_done));
            }
        }
    }

    /// Runs until the listed apps (stack index, app) are done, or until `limit`.
    /// Returns whether they all finished.
    pub fn run_until_done(
        &mut self,
        limit: Time,
        apps: &[(usize, AppId)],
    ) -> Result<bool, NetError> {
        self.run_while(limit, |net| apps.iter().all(|&(s, id)| net.stacks[s].is_done(id)))
    }

    /// Runs until `done` holds (checked after every step) or `limit` passes.
    /// Returns whether `done` held.
    pub fn run_while(
        &mut self,
        limit: Time,
        mut done: impl FnMut(&LoopbackNet) -> bool,
    ) -> Result<bool, NetError> {
        loop {
            if done(self) {
                return Ok(true);
            }
            if !self.step(limit)? {
                return Ok(done(self));
            }
        }
    }

    /// Advances to the next event at or before `limit` and handles everything due then.
    /// Returns false when nothing is scheduled before `limit`.
    pub fn step(&mut self, limit: Time) -> Result<bool, NetError> {
        let next_packet = self.in_flight.keys().next().map(|&(t, _)| t);
        let next_poll = self.stacks.iter().filter_map(|s| s.poll_at(self.now)).min();
        let Some(next) = [next_packet, next_poll].into_iter().flatten().min() else {
            return Ok(false);
        };
        if next > limit {
            return Ok(false);
        }
        self.steps += 1;
        if self.steps > self.max_steps {
            return Err(NetError::StepLimit { steps: self.steps, at: self.now });
        }
        self.now = self.now.max(next);
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (to, bytes) = entry.remove();
            self.stats.delivered += 1;
            self.stats.bytes_delivered += bytes.len() as u64;
            self.stacks[to].receive(self.now, &bytes);
        }
        let mut out = Vec::new();
        for i in 0..self.stacks.len() {
            if self.stacks[i].poll_at(self.now).is_some_and(|t| t <= self.now) {
                self.stacks[i].poll(self.now, &mut out);
                for datagram in out.drain(..) {
                    self.send(Some(i), datagram);
                }
            }
        }
        Ok(true)
    }

    fn owner(&self, dst: IpAddr) -> Option<usize> {
        self.stacks.iter().position(|s| s.addresses().iter().any(|n| n.addr() == dst))
    }

    fn schedule(&mut self, after: Duration, to: usize, bytes: Vec<u8>) {
        self.in_flight.insert((self.now + after, self.seq), (to, bytes));
        self.seq += 1;
    }

    fn send(&mut self, from: Option<usize>, mut bytes: Vec<u8>) {
        self.stats.sent += 1;
        self.hasher.write_u64(self.now.as_nanos());
        self.hasher.write_u64(from.map_or(u64::MAX, |i| i as u64));
        self.hasher.write_usize(bytes.len());
        let hashed = if self.hash_whole { bytes.len() } else { bytes.len().min(64) };
        self.hasher.write(&bytes[..hashed]);
        let fate = self.route(from, &mut bytes);
        match fate {
            Fate::Dropped => self.stats.dropped += 1,
            Fate::TtlExceeded => self.stats.ttl_exceeded += 1,
            Fate::Unroutable | Fate::Malformed => self.stats.unroutable += 1,
            Fate::Delivered(_) => {}
        }
        if let Some(log) = &mut self.record {
            log.push(Sent { at: self.now, from, bytes, fate });
        }
    }

    /// Decides the fate of a datagram and schedules what follows from it.
    fn route(&mut self, from: Option<usize>, bytes: &mut [u8]) -> Fate {
        if let (Some(i), Some(rule)) = (from, &mut self.drop_rule)
            && rule(i, bytes)
        {
            return Fate::Dropped;
        }
        let (src, dst, ttl) = match IpVersion::of_packet(bytes) {
            Ok(IpVersion::Ipv4) => match Ipv4Packet::new_checked(&bytes[..]) {
                Ok(p) => (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()), p.hop_limit()),
                Err(_) => return Fate::Malformed,
            },
            Ok(IpVersion::Ipv6) => match Ipv6Packet::new_checked(&bytes[..]) {
                Ok(p) => (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()), p.hop_limit()),
                Err(_) => return Fate::Malformed,
            },
            Err(_) => return Fate::Malformed,
        };
        let target = self.owner(dst);
        let crosses_routers = from.is_some() && target != from && !self.routers.is_empty();
        if !crosses_routers {
            return match target {
                Some(t) => {
                    self.schedule(self.latency, t, bytes.to_vec());
                    Fate::Delivered(t)
                }
                None => Fate::Unroutable,
            };
        }
        let hops = self.routers.len();
        let ttl = usize::from(ttl);
        let error = if ttl <= hops {
            Some((ttl.max(1) - 1, true))
        } else if target.is_none() {
            Some((hops - 1, false))
        } else {
            None
        };
        if let Some((router, ttl_ran_out)) = error {
            if let (IpAddr::V4(_), Some(source)) = (src, self.owner(src)) {
                let addr = self.routers[router];
                if let Some(reply) = icmp_error(addr, bytes, ttl_ran_out, router) {
                    let back = self.latency * (2 * (router as u32 + 1));
                    self.log_router_reply(&reply, source);
                    self.schedule(back, source, reply);
                }
            }
            return if ttl_ran_out { Fate::TtlExceeded } else { Fate::Unroutable };
        }
        let Some(t) = target else {
            return Fate::Unroutable;
        };
        // Each router decrements the TTL (and fixes the IPv4 checksum).
        if let Ok(mut p) = Ipv4Packet::new_checked(&mut bytes[..]) {
            p.set_hop_limit((ttl - hops) as u8);
            p.fill_checksum();
        } else if let Ok(mut p) = Ipv6Packet::new_checked(&mut bytes[..]) {
            p.set_hop_limit((ttl - hops) as u8);
        }
        self.schedule(self.latency * (hops as u32 + 1), t, bytes.to_vec());
        Fate::Delivered(t)
    }

    fn log_router_reply(&mut self, reply: &[u8], to: usize) {
        self.stats.sent += 1;
        if let Some(log) = &mut self.record {
            log.push(Sent {
                at: self.now,
                from: None,
                bytes: reply.to_vec(),
                fate: Fate::Delivered(to),
            });
        }
    }
}

/// Builds the ICMP error router `router_addr` (the `index`-th on the path) sends about
/// `original`: time exceeded, or host unreachable.
fn icmp_error(
    router_addr: Ipv4Addr,
    original: &[u8],
    ttl_ran_out: bool,
    index: usize,
) -> Option<Vec<u8>> {
    let caps = ChecksumCapabilities::default();
    let packet = Ipv4Packet::new_checked(original).ok()?;
    let orig = Ipv4Repr::parse(&packet, &caps).ok()?;
    // Quote the original header and as much payload as keeps the error within 576 bytes.
    let payload = packet.payload();
    let quoted = &payload[..payload.len().min(576 - 20 - 8 - 20)];
    let header = Ipv4Repr { payload_len: quoted.len(), ..orig };
    let icmp = if ttl_ran_out {
        Icmpv4Repr::TimeExceeded { reason: Icmpv4TimeExceeded::TtlExpired, header, data: quoted }
    } else {
        Icmpv4Repr::DstUnreachable {
            reason: Icmpv4DstUnreachable::HostUnreachable,
            header,
            data: quoted,
        }
    };
    let ip = Ipv4Repr {
        src_addr: router_addr,
        dst_addr: orig.src_addr,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64u8.saturating_sub(u8::try_from(index).unwrap_or(u8::MAX)),
    };
    let mut buf = vec![0; ip.buffer_len() + icmp.buffer_len()];
    let mut out = Ipv4Packet::new_unchecked(&mut buf[..]);
    ip.emit(&mut out, &caps);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(out.payload_mut()), &caps);
    Some(buf)
}
