//! Connection tracking: a sans-I/O table of connections keyed by tuple, with Linux's states and
//! timeouts in virtual time.
//!
//! Each [`Entry`] holds an original tuple (the first packet's) and a reply tuple (what a reply
//! looks like, which NAT changes). Lookups are O(1) through a hash index from tuples to entries;
//! the index is never iterated, and [`Conntrack::list`] sorts by creation order, so hash order
//! never reaches an output. Time only enters as the `now` argument: an entry whose deadline has
//! passed is treated as gone by every lookup and is removed lazily (on lookup, and by a sweep
//! that runs at most once per [`ConntrackConfig::sweep_interval`] when connections are created).
//!
//! **Architecture invariant:** the table is the only owner of entries; callers hold an
//! [`EntryId`] for the duration of one packet and never across calls that may remove entries.

mod tcp;
mod tuple;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

pub use tcp::TcpState;
pub use tuple::{Start, Tuple, classify, quoted_tuple};

use crate::time::Time;
use crate::wire::{L4Summary, PacketSummary};

/// The state a packet has with respect to its connection, as `-m conntrack --ctstate` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CtState {
    /// The packet opens a connection, or belongs to one that has seen no reply yet.
    New,
    /// The packet belongs to a connection that has seen traffic in both directions.
    Established,
    /// The packet is an ICMP error about a tracked connection.
    Related,
    /// The packet fits no connection and cannot open one.
    Invalid,
    /// The packet is never tracked.
    Untracked,
}

impl CtState {
    /// The name iptables uses (`NEW`, `ESTABLISHED`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CtState::New => "NEW",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
            CtState::Invalid => "INVALID",
            CtState::Untracked => "UNTRACKED",
        }
    }
}

/// The direction of a packet within its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// The direction of the packet that opened the connection.
    Original,
    /// The opposite direction.
    Reply,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Original => 0,
            Direction::Reply => 1,
        }
    }
}

/// A handle on an entry, valid until the entry is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(u32);

/// Timeouts and limits, with Linux's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConntrackConfig {
    /// The most entries the table holds (`nf_conntrack_max`).
    pub max_entries: usize,
    /// TCP: SYN sent, no answer.
    pub tcp_syn_sent: Duration,
    /// TCP: SYN-ACK seen, handshake not finished.
    pub tcp_syn_recv: Duration,
    /// TCP: established.
    pub tcp_established: Duration,
    /// TCP: one side sent FIN.
    pub tcp_fin_wait: Duration,
    /// TCP: the other side acknowledged the first FIN.
    pub tcp_close_wait: Duration,
    /// TCP: both sides sent FIN.
    pub tcp_last_ack: Duration,
    /// TCP: both FINs acknowledged.
    pub tcp_time_wait: Duration,
    /// TCP: reset.
    pub tcp_close: Duration,
    /// UDP before a reply.
    pub udp: Duration,
    /// UDP once traffic flowed both ways (a "stream").
    pub udp_stream: Duration,
    /// ICMP echo and other queries.
    pub icmp: Duration,
    /// Any other protocol.
    pub generic: Duration,
    /// How often (in virtual time) creating a connection also sweeps out expired ones.
    pub sweep_interval: Duration,
}

impl Default for ConntrackConfig {
    fn default() -> Self {
        let s = Duration::from_secs;
        ConntrackConfig {
            max_entries: 262_144,
            tcp_syn_sent: s(120),
            tcp_syn_recv: s(60),
            tcp_established: s(432_000),
            tcp_fin_wait: s(120),
            tcp_close_wait: s(60),
            tcp_last_ack: s(30),
            tcp_time_wait: s(120),
            tcp_close: s(10),
            udp: s(30),
            udp_stream: s(120),
            icmp: s(30),
            generic: s(600),
            sweep_interval: s(10),
        }
    }
}

/// The table is full and no entry could be evicted (Linux: "table full, dropping packet").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("nf_conntrack: table full, dropping packet")]
pub struct TableFull;

/// Totals since the table was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConntrackStats {
    /// Connections created.
    pub created: u64,
    /// Connections removed because their timeout passed.
    pub expired: u64,
    /// Unreplied connections evicted to make room (`early_drop`).
    pub early_drop: u64,
    /// Packets dropped because the table was full.
    pub table_full: u64,
}

/// One tracked connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Creation sequence number (the listing order).
    pub seq: u64,
    /// The tuple of the first packet.
    pub orig: Tuple,
    /// What a reply looks like (after NAT, if any).
    pub reply: Tuple,
    /// TCP state, for TCP connections.
    pub tcp: Option<TcpState>,
    /// ICMP type and code of the first packet, for ICMP connections.
    pub icmp: Option<(u8, u8)>,
    /// A packet has been seen in the reply direction.
    pub seen_reply: bool,
    /// The connection is assured (it survives early drop).
    pub assured: bool,
    /// The first packet has passed its last hook in this namespace.
    pub confirmed: bool,
    /// When the entry expires.
    pub expires: Time,
    /// Packets seen, original then reply direction.
    pub packets: [u64; 2],
    /// Bytes seen, original then reply direction.
    pub bytes: [u64; 2],
    /// The destination NAT decision for this connection has been taken.
    pub dst_nat_done: bool,
    /// The source NAT decision for this connection has been taken.
    pub src_nat_done: bool,
    fin_seen: [bool; 2],
    /// Index keys besides `orig` and `reply` (tuples seen between DNAT and SNAT).
    extra_keys: [Option<Tuple>; 2],
}

impl Entry {
    /// Whether destination NAT changed this connection.
    pub fn is_dnat(&self) -> bool {
        self.reply.src != self.orig.dst || self.reply.src_port != self.orig.dst_port
    }

    /// Whether source NAT changed this connection.
    pub fn is_snat(&self) -> bool {
        self.reply.dst != self.orig.src || self.reply.dst_port != self.orig.src_port
    }

    /// The tuple a packet of `dir` has once NAT is applied (`inverse(reply)` for the original
    /// direction, `inverse(orig)` for replies).
    pub fn target(&self, dir: Direction) -> Tuple {
        match dir {
            Direction::Original => self.reply.inverse(),
            Direction::Reply => self.orig.inverse(),
        }
    }

    /// The tuple a packet of `dir` has before NAT.
    pub fn source(&self, dir: Direction) -> Tuple {
        match dir {
            Direction::Original => self.orig,
            Direction::Reply => self.reply,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    slot: u32,
    dir: Direction,
}

/// The connection table of one namespace.
#[derive(Debug, Default)]
pub struct Conntrack {
    config: ConntrackConfig,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    index: HashMap<Tuple, Key, BuildHasherDefault<FxHasher>>,
    live: usize,
    next_seq: u64,
    next_sweep: Time,
    stats: ConntrackStats,
}

impl Conntrack {
    /// An empty table.
    pub fn new(config: ConntrackConfig) -> Self {
        Conntrack { config, ..Conntrack::default() }
    }

    /// The configuration.
    pub fn config(&self) -> &ConntrackConfig {
        &self.config
    }

    /// Entries in the table, counting expired ones not yet swept.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Totals since creation.
    pub fn stats(&self) -> ConntrackStats {
        self.stats
    }

    /// The entry for `id`.
    pub fn get(&self, id: EntryId) -> Option<&Entry> {
        self.slots.get(id.0 as usize).and_then(Option::as_ref)
    }

    fn entry_mut(&mut self, id: EntryId) -> Option<&mut Entry> {
        self.slots.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    /// Finds the live connection a tuple belongs to, and the direction it travels in. An
    /// expired entry found on the way is removed.
    pub fn lookup(&mut self, now: Time, tuple: &Tuple) -> Option<(EntryId, Direction)> {
        let key = *self.index.get(tuple)?;
        let id = EntryId(key.slot);
        let expired = self.get(id).is_none_or(|e| e.expires <= now);
        if expired {
            self.remove(id);
            self.stats.expired += 1;
            return None;
        }
        Some((id, key.dir))
    }

    /// Whether `tuple` is in use by a live connection (NAT port selection asks this).
    pub fn in_use(&self, now: Time, tuple: &Tuple) -> bool {
        self.index
            .get(tuple)
            .is_some_and(|k| self.slots[k.slot as usize].as_ref().is_some_and(|e| e.expires > now))
    }

    /// Creates an unconfirmed connection whose first packet is `summary`. When the table is
    /// full, expired entries are swept and then the oldest unassured one is evicted.
    pub fn create(&mut self, now: Time, summary: &PacketSummary) -> Result<EntryId, TableFull> {
        if now >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now + self.config.sweep_interval;
        }
        if self.live >= self.config.max_entries {
            self.sweep(now);
            if self.live >= self.config.max_entries && !self.early_drop() {
                self.stats.table_full += 1;
                return Err(TableFull);
            }
        }
        let orig = Tuple::of(summary);
        let (tcp, icmp) = match summary.l4 {
            L4Summary::Tcp { flags, .. } => (Some(TcpState::start(flags)), None),
            L4Summary::Icmp { ty, code, .. } => (None, Some((ty, code))),
            _ => (None, None),
        };
        let entry = Entry {
            seq: self.next_seq,
            orig,
            reply: orig.inverse(),
            tcp,
            icmp,
            seen_reply: false,
            assured: false,
            confirmed: false,
            expires: now,
            packets: [0; 2],
            bytes: [0; 2],
            dst_nat_done: false,
            src_nat_done: false,
            fin_seen: [false; 2],
            extra_keys: [None; 2],
        };
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 connections")
            }
        };
        self.live += 1;
        self.stats.created += 1;
        self.index.insert(orig, Key { slot, dir: Direction::Original });
        self.index.entry(orig.inverse()).or_insert(Key { slot, dir: Direction::Reply });
        Ok(EntryId(slot))
    }

    /// Accounts a packet of `dir` to the connection: counters, TCP state, reply flag and the
    /// new deadline.
    pub fn observe(&mut self, now: Time, id: EntryId, dir: Direction, summary: &PacketSummary) {
        let config = &self.config;
        let Some(e) = self.slots.get_mut(id.0 as usize).and_then(Option::as_mut) else { return };
        let d = dir.index();
        e.packets[d] += 1;
        e.bytes[d] += summary.total_len as u64;
        // UDP and other datagram flows are assured once traffic follows a reply.
        if e.seen_reply && e.tcp.is_none() && e.icmp.is_none() {
            e.assured = true;
        }
        if dir == Direction::Reply {
            e.seen_reply = true;
        }
        let timeout = match (&mut e.tcp, summary.l4) {
            (Some(state), L4Summary::Tcp { flags, .. }) => {
                if flags.fin {
                    e.fin_seen[d] = true;
                }
                *state = state.next(dir, flags, e.fin_seen);
                if *state == TcpState::Established {
                    e.assured = true;
                }
                state.timeout(config)
            }
            _ if e.icmp.is_some() => config.icmp,
            _ if matches!(summary.l4, L4Summary::Udp { .. }) => {
                if e.assured {
                    config.udp_stream
                } else {
                    config.udp
                }
            }
            _ => config.generic,
        };
        e.expires = now + timeout;
    }

    /// Marks the connection as confirmed: its first packet passed the last hook.
    pub fn confirm(&mut self, id: EntryId) {
        if let Some(e) = self.entry_mut(id) {
            e.confirmed = true;
        }
    }

    /// Records the NAT decisions taken so far.
    pub fn set_nat_done(&mut self, id: EntryId, dst: bool, src: bool) {
        if let Some(e) = self.entry_mut(id) {
            e.dst_nat_done |= dst;
            e.src_nat_done |= src;
        }
    }

    /// Replaces the reply tuple after a NAT decision and re-indexes the connection. Returns
    /// `false` (and changes nothing) if the new reply tuple belongs to another connection.
    pub fn set_reply(&mut self, now: Time, id: EntryId, reply: Tuple) -> bool {
        let Some(e) = self.get(id) else { return false };
        if e.reply == reply {
            return true;
        }
        if self.index.get(&reply).is_some_and(|k| k.slot != id.0) && self.in_use(now, &reply) {
            return false;
        }
        let old_keys = keys_of(e);
        for key in old_keys.into_iter().flatten() {
            if self.index.get(&key).is_some_and(|k| k.slot == id.0) {
                self.index.remove(&key);
            }
        }
        let e = self.entry_mut(id).expect("checked above");
        e.reply = reply;
        // Between DNAT (first hook) and SNAT (last hook) a packet carries a mixed tuple.
        let mid = Tuple { dst: reply.src, dst_port: reply.src_port, ..e.orig };
        e.extra_keys = [Some(mid), Some(mid.inverse())];
        let orig = e.orig;
        let slot = id.0;
        self.index.insert(orig, Key { slot, dir: Direction::Original });
        self.index.insert(reply, Key { slot, dir: Direction::Reply });
        self.index.entry(mid).or_insert(Key { slot, dir: Direction::Original });
        self.index.entry(mid.inverse()).or_insert(Key { slot, dir: Direction::Reply });
        true
    }

    /// Removes a connection.
    pub fn remove(&mut self, id: EntryId) {
        let Some(e) = self.slots.get_mut(id.0 as usize).and_then(Option::take) else { return };
        for key in keys_of(&e).into_iter().flatten() {
            if self.index.get(&key).is_some_and(|k| k.slot == id.0) {
                self.index.remove(&key);
            }
        }
        self.free.push(id.0);
        self.live -= 1;
    }

    /// Removes every connection for which `remove` returns true (kube-proxy clears stale UDP
    /// connections to a Service this way); returns how many were removed.
    pub fn remove_where(&mut self, mut remove: impl FnMut(&Entry) -> bool) -> usize {
        let mut removed = 0;
        for slot in 0..self.slots.len() {
            if self.slots[slot].as_ref().is_some_and(&mut remove) {
                self.remove(EntryId(slot as u32));
                removed += 1;
            }
        }
        removed
    }

    /// Removes every connection whose deadline has passed.
    pub fn sweep(&mut self, now: Time) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].as_ref().is_some_and(|e| e.expires <= now) {
                self.remove(EntryId(slot as u32));
                self.stats.expired += 1;
            }
        }
    }

    /// Evicts the oldest unassured connection; `false` if every connection is assured.
    fn early_drop(&mut self) -> bool {
        let victim = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().filter(|e| !e.assured).map(|e| (e.seq, i)))
            .min();
        match victim {
            Some((_, slot)) => {
                self.remove(EntryId(slot as u32));
                self.stats.early_drop += 1;
                true
            }
            None => false,
        }
    }

    /// Live, confirmed connections in creation order.
    pub fn entries(&self, now: Time) -> Vec<&Entry> {
        let mut list: Vec<&Entry> =
            self.slots.iter().flatten().filter(|e| e.confirmed && e.expires > now).collect();
        list.sort_by_key(|e| e.seq);
        list
    }

    /// The table as `conntrack -L` prints it, oldest connection first, ending with the summary
    /// line the tool prints.
    pub fn list(&self, now: Time) -> String {
        let entries = self.entries(now);
        let mut out = String::new();
        for e in &entries {
            let name = match e.orig.proto {
                1 => "icmp",
                6 => "tcp",
                17 => "udp",
                58 => "icmpv6",
                132 => "sctp",
                _ => "unknown",
            };
            let left = (e.expires - now).as_secs();
            let _ = write!(out, "{name:<8} {} {left} ", e.orig.proto);
            if let Some(state) = e.tcp {
                let _ = write!(out, "{} ", state.name());
            }
            write_tuple(&mut out, e, &e.orig, Direction::Original);
            if !e.seen_reply {
                out.push_str("[UNREPLIED] ");
            }
            write_tuple(&mut out, e, &e.reply, Direction::Reply);
            if e.assured {
                out.push_str("[ASSURED] ");
            }
            out.push_str("mark=0 use=1\n");
        }
        let _ = writeln!(
            out,
            "conntrack v1.4.8 (conntrack-tools): {} flow entries have been shown.",
            entries.len()
        );
        out
    }
}

fn keys_of(e: &Entry) -> [Option<Tuple>; 4] {
    [Some(e.orig), Some(e.reply), e.extra_keys[0], e.extra_keys[1]]
}

fn write_tuple(out: &mut String, e: &Entry, t: &Tuple, dir: Direction) {
    let _ = write!(out, "src={} dst={} ", t.src, t.dst);
    match e.icmp {
        Some((ty, code)) => {
            // A reply to a query has the matching reply type (echo 8 -> 0, 128 -> 129, ...).
            let ty = match (dir, ty) {
                (Direction::Reply, 8) => 0,
                (Direction::Reply, 13 | 15 | 17) => ty + 1,
                (Direction::Reply, 128 | 139) => ty + 1,
                _ => ty,
            };
            let _ = write!(out, "type={ty} code={code} id={} ", t.src_port);
        }
        None if t.has_ports() => {
            let _ = write!(out, "sport={} dport={} ", t.src_port, t.dst_port);
        }
        None => {}
    }
}

/// A small, fixed (hence deterministic) multiplicative hasher for tuples, in the style of
/// rustc's FxHash: much cheaper than SipHash for short keys that no adversary chooses.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TcpFlags;
    use std::net::{IpAddr, Ipv4Addr};

    fn summary(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, l4: L4Summary) -> PacketSummary {
        let _ = (sport, dport);
        PacketSummary {
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: IpAddr::V4(Ipv4Addr::from(dst)),
            ttl: 64,
            protocol: match l4 {
                L4Summary::Tcp { .. } => 6,
                L4Summary::Udp { .. } => 17,
                _ => 1,
            },
            header_len: 20,
            total_len: 60,
            l4,
        }
    }

    fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, f: &str) -> PacketSummary {
        let flags = TcpFlags {
            syn: f.contains('S'),
            ack: f.contains('A'),
            fin: f.contains('F'),
            rst: f.contains('R'),
        };
        summary(src, sport, dst, dport, L4Summary::Tcp { src_port: sport, dst_port: dport, flags })
    }

    #[test]
    fn tcp_handshake_and_close_follow_linux_states_and_timeouts() {
        let mut ct = Conntrack::new(ConntrackConfig::default());
        let a = [10, 0, 0, 1];
        let b = [10, 0, 0, 2];
        let t0 = Time::from_secs(1);
        let syn = tcp(a, 40000, b, 80, "S");
        let id = ct.create(t0, &syn).unwrap();
        ct.observe(t0, id, Direction::Original, &syn);
        ct.confirm(id);
        assert_eq!(ct.get(id).unwrap().tcp, Some(TcpState::SynSent));
        assert_eq!(ct.get(id).unwrap().expires, t0 + Duration::from_secs(120));
        let synack = tcp(b, 80, a, 40000, "SA");
        let (found, dir) = ct.lookup(t0, &Tuple::of(&synack)).unwrap();
        assert_eq!((found, dir), (id, Direction::Reply));
        ct.observe(t0, id, dir, &synack);
        assert_eq!(ct.get(id).unwrap().tcp, Some(TcpState::SynRecv));
        ct.observe(t0, id, Direction::Original, &tcp(a, 40000, b, 80, "A"));
        let e = ct.get(id).unwrap();
        assert_eq!((e.tcp, e.assured), (Some(TcpState::Established), true));
        assert_eq!(e.expires, t0 + Duration::from_secs(432_000));
        ct.observe(t0, id, Direction::Original, &tcp(a, 40000, b, 80, "FA"));
        assert_eq!(ct.get(id).unwrap().tcp, Some(TcpState::FinWait));
        ct.observe(t0, id, Direction::Reply, &tcp(b, 80, a, 40000, "A"));
        assert_eq!(ct.get(id).unwrap().tcp, Some(TcpState::CloseWait));
        ct.observe(t0, id, Direction::Reply, &tcp(b, 80, a, 40000, "FA"));
        assert_eq!(ct.get(id).unwrap().tcp, Some(TcpState::LastAck));
        ct.observe(t0, id, Direction::Original, &tcp(a, 40000, b, 80, "A"));
        let e = ct.get(id).unwrap();
        assert_eq!(e.tcp, Some(TcpState::TimeWait));
        assert_eq!(e.expires, t0 + Duration::from_secs(120));
        assert_eq!(e.packets, [4, 3]);
        // The entry disappears exactly at its deadline.
        assert!(ct.lookup(t0 + Duration::from_secs(119), &Tuple::of(&syn)).is_some());
        assert!(ct.lookup(t0 + Duration::from_secs(120), &Tuple::of(&syn)).is_none());
        assert!(ct.is_empty());
        assert_eq!(ct.stats().expired, 1);
    }

    #[test]
    fn rst_closes_and_udp_becomes_a_stream() {
        let mut ct = Conntrack::new(ConntrackConfig::default());
        let syn = tcp([1, 1, 1, 1], 1, [2, 2, 2, 2], 2, "S");
        let id = ct.create(Time::ZERO, &syn).unwrap();
        ct.observe(Time::ZERO, id, Direction::Original, &syn);
        ct.observe(Time::ZERO, id, Direction::Reply, &tcp([2, 2, 2, 2], 2, [1, 1, 1, 1], 1, "RA"));
        assert_eq!(ct.get(id).unwrap().tcp, Some(TcpState::Close));
        assert_eq!(ct.get(id).unwrap().expires, Time::from_secs(10));

        let q = summary(
            [1, 1, 1, 1],
            5000,
            [2, 2, 2, 2],
            53,
            L4Summary::Udp { src_port: 5000, dst_port: 53 },
        );
        let r = summary(
            [2, 2, 2, 2],
            53,
            [1, 1, 1, 1],
            5000,
            L4Summary::Udp { src_port: 53, dst_port: 5000 },
        );
        let u = ct.create(Time::ZERO, &q).unwrap();
        ct.observe(Time::ZERO, u, Direction::Original, &q);
        assert_eq!(ct.get(u).unwrap().expires, Time::from_secs(30));
        ct.observe(Time::ZERO, u, Direction::Reply, &r);
        assert!(!ct.get(u).unwrap().assured);
        ct.observe(Time::ZERO, u, Direction::Reply, &r);
        assert!(ct.get(u).unwrap().assured);
        assert_eq!(ct.get(u).unwrap().expires, Time::from_secs(120));
    }

    #[test]
    fn full_table_evicts_unassured_then_refuses() {
        let config = ConntrackConfig { max_entries: 2, ..ConntrackConfig::default() };
        let mut ct = Conntrack::new(config);
        let mk = |port| {
            summary(
                [1, 1, 1, 1],
                port,
                [2, 2, 2, 2],
                53,
                L4Summary::Udp { src_port: port, dst_port: 53 },
            )
        };
        let first = ct.create(Time::ZERO, &mk(1)).unwrap();
        let second = ct.create(Time::ZERO, &mk(2)).unwrap();
        for id in [first, second] {
            ct.observe(Time::ZERO, id, Direction::Original, &mk(1));
        }
        let third = ct.create(Time::ZERO, &mk(3)).unwrap();
        ct.observe(Time::ZERO, third, Direction::Original, &mk(3));
        assert_eq!(ct.stats().early_drop, 1);
        assert!(ct.lookup(Time::ZERO, &Tuple::of(&mk(1))).is_none(), "oldest was evicted");
        for id in [second, third] {
            ct.entry_mut(id).unwrap().assured = true;
        }
        assert_eq!(ct.create(Time::ZERO, &mk(4)), Err(TableFull));
        assert_eq!(ct.stats().table_full, 1);
    }

    #[test]
    fn nat_rekeys_and_lists_sorted() {
        let mut ct = Conntrack::new(ConntrackConfig::default());
        let syn = tcp([10, 0, 0, 1], 40000, [10, 96, 0, 1], 80, "S");
        let id = ct.create(Time::ZERO, &syn).unwrap();
        ct.observe(Time::ZERO, id, Direction::Original, &syn);
        let reply = Tuple::of(&tcp([10, 244, 0, 5], 8080, [10, 0, 0, 1], 40000, "SA"));
        assert!(ct.set_reply(Time::ZERO, id, reply));
        assert!(ct.get(id).unwrap().is_dnat());
        assert!(!ct.get(id).unwrap().is_snat());
        assert_eq!(ct.lookup(Time::ZERO, &reply), Some((id, Direction::Reply)));
        // The old reply tuple (from the virtual address) no longer finds it.
        assert_eq!(ct.lookup(Time::ZERO, &Tuple::of(&syn).inverse()), None);
        // Nothing is listed before confirmation.
        assert!(ct.list(Time::ZERO).starts_with("conntrack v1.4.8 (conntrack-tools): 0 flow"));
        ct.confirm(id);
        assert_eq!(
            ct.list(Time::from_secs(1)),
            "tcp      6 119 SYN_SENT src=10.0.0.1 dst=10.96.0.1 sport=40000 dport=80 [UNREPLIED] \
             src=10.244.0.5 dst=10.0.0.1 sport=8080 dport=40000 mark=0 use=1\n\
             conntrack v1.4.8 (conntrack-tools): 1 flow entries have been shown.\n"
        );
        ct.remove(id);
        assert!(ct.index.is_empty());
    }
}
