//! One iptables rule: its matches and target, how a packet is matched against it, and how
//! `iptables -S` and `iptables -L` print it.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::RejectWith;
use crate::conntrack::CtState;

/// An index into a table's chains, stable while the chain exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainId(pub(crate) u32);

/// `-s` / `-d`: an IPv4 network, possibly negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrMatch {
    /// The network address (host bits cleared).
    pub addr: u32,
    /// The prefix length.
    pub prefix: u8,
    /// `!`.
    pub neg: bool,
}

impl AddrMatch {
    fn mask(&self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) }
    }

    fn matches(&self, addr: u32) -> bool {
        ((addr & self.mask()) == self.addr) != self.neg
    }

    fn save(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.addr), self.prefix)
    }

    fn list(&self, numeric: bool) -> String {
        if self.prefix == 0 && !numeric {
            return "anywhere".to_string();
        }
        if self.prefix == 32 { Ipv4Addr::from(self.addr).to_string() } else { self.save() }
    }
}

/// `-i` / `-o`: an interface name, `+` at the end matching any suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceMatch {
    /// The name as given (with the `+`).
    pub name: String,
    /// `!`.
    pub neg: bool,
}

impl IfaceMatch {
    fn matches(&self, iface: Option<&str>) -> bool {
        let hit = match iface {
            None => false,
            Some(iface) => match self.name.strip_suffix('+') {
                Some(prefix) => iface.starts_with(prefix),
                None => iface == self.name,
            },
        };
        hit != self.neg
    }
}

/// A port or an inclusive range `lo:hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }

    fn save(&self) -> String {
        if self.lo == self.hi { self.lo.to_string() } else { format!("{}:{}", self.lo, self.hi) }
    }
}

/// A set of conntrack states (`NEW,ESTABLISHED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateSet(pub(crate) u8);

impl StateSet {
    const ORDER: [CtState; 5] = [
        CtState::Invalid,
        CtState::New,
        CtState::Related,
        CtState::Established,
        CtState::Untracked,
    ];

    fn bit(state: CtState) -> u8 {
        match state {
            CtState::Invalid => 1,
            CtState::New => 2,
            CtState::Related => 4,
            CtState::Established => 8,
            CtState::Untracked => 16,
        }
    }

    /// Adds a state.
    pub fn insert(&mut self, state: CtState) {
        self.0 |= Self::bit(state);
    }

    /// Whether the set holds `state`.
    pub fn contains(&self, state: CtState) -> bool {
        self.0 & Self::bit(state) != 0
    }

    /// The virtual `SNAT` state: the connection's source is translated (`--ctstate` only).
    pub const SNAT: u8 = 32;
    /// The virtual `DNAT` state: the connection's destination is translated.
    pub const DNAT: u8 = 64;

    /// Whether a packet in `state`, of a connection with source/destination NAT, matches.
    pub(crate) fn matches(&self, state: CtState, snat: bool, dnat: bool) -> bool {
        self.contains(state)
            || (snat && self.0 & Self::SNAT != 0)
            || (dnat && self.0 & Self::DNAT != 0)
    }

    /// The states in iptables' printing order, comma-separated.
    pub fn names(&self) -> String {
        let mut names: Vec<&str> =
            Self::ORDER.iter().filter(|s| self.contains(**s)).map(|s| s.name()).collect();
        if self.0 & Self::SNAT != 0 {
            names.push("SNAT");
        }
        if self.0 & Self::DNAT != 0 {
            names.push("DNAT");
        }
        names.join(",")
    }
}

/// Which ports `-m multiport` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiportKind {
    /// `--sports`.
    Src,
    /// `--dports`.
    Dst,
    /// `--ports`: either.
    Either,
}

/// A match module of a rule, in the order given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `-m tcp` or `-m udp` (explicit or implied by `-p` with `--sport`/`--dport`).
    Ports {
        /// 6 or 17.
        proto: u8,
        /// `--sport`, negated or not.
        sport: Option<(PortRange, bool)>,
        /// `--dport`, negated or not.
        dport: Option<(PortRange, bool)>,
        /// `--tcp-flags MASK COMP` (or `--syn`): mask, comparison, negated. PSH and URG are
        /// not in the packet summary and read as clear.
        flags: Option<(u8, u8, bool)>,
    },
    /// `-m icmp --icmp-type T[/C]`.
    Icmp {
        /// The type.
        ty: u8,
        /// The code, if one was given.
        code: Option<u8>,
        /// `!`.
        neg: bool,
    },
    /// `-m conntrack --ctstate S`, or `-m state --state S` when `legacy_state`.
    State {
        /// The states.
        states: StateSet,
        /// `!`.
        neg: bool,
        /// Written as `-m state --state`.
        legacy_state: bool,
    },
    /// `-m mark --mark V[/M]`.
    Mark {
        /// The value.
        value: u32,
        /// The mask.
        mask: u32,
        /// `!`.
        neg: bool,
    },
    /// `-m multiport --dports/--sports/--ports`.
    Multiport {
        /// Which ports.
        kind: MultiportKind,
        /// The ports and ranges.
        ports: Vec<PortRange>,
        /// `!`.
        neg: bool,
    },
    /// `-m comment --comment TEXT`.
    Comment(String),
    /// `-m statistic --mode random|nth ...`.
    Statistic {
        /// The mode and its parameters.
        mode: StatMode,
        /// `!`.
        neg: bool,
    },
    /// `-m addrtype --src-type T --dst-type T`.
    AddrType {
        /// `--src-type`, negated or not.
        src: Option<(AddrType, bool)>,
        /// `--dst-type`, negated or not.
        dst: Option<(AddrType, bool)>,
    },
}

/// The mode of `-m statistic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatMode {
    /// `--mode random --probability P`: matches when a 31-bit random number from the
    /// namespace's seeded RNG is below `probability` (P scaled by 2^31, as the kernel stores it).
    Random {
        /// The probability, scaled by 2^31.
        probability: u32,
    },
    /// `--mode nth --every N --packet P`: matches every Nth packet, starting at the P-th.
    Nth {
        /// N - 1 (as the kernel stores it).
        every: u32,
        /// The initial counter value.
        packet: u32,
        /// The running counter (not part of the rule's identity).
        count: NthCounter,
    },
}

/// The running counter of an nth statistic match, equal to every other counter so that `-D`
/// compares rules by what they say, not by how many packets they saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct NthCounter(pub(crate) u32);

impl PartialEq for NthCounter {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for NthCounter {}

/// An address type for `-m addrtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrType {
    /// An address of this namespace (or loopback).
    Local,
    /// Any other unicast address.
    Unicast,
    /// The limited broadcast address.
    Broadcast,
    /// 224.0.0.0/4.
    Multicast,
}

impl AddrType {
    fn name(self) -> &'static str {
        match self {
            AddrType::Local => "LOCAL",
            AddrType::Unicast => "UNICAST",
            AddrType::Broadcast => "BROADCAST",
            AddrType::Multicast => "MULTICAST",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<AddrType> {
        Some(match s {
            "LOCAL" => AddrType::Local,
            "UNICAST" => AddrType::Unicast,
            "BROADCAST" => AddrType::Broadcast,
            "MULTICAST" => AddrType::Multicast,
            _ => return None,
        })
    }

    fn of(addr: u32, local: &[u32]) -> AddrType {
        if addr >> 24 == 127 || local.contains(&addr) {
            AddrType::Local
        } else if addr == u32::MAX {
            AddrType::Broadcast
        } else if addr >> 28 == 0xe {
            AddrType::Multicast
        } else {
            AddrType::Unicast
        }
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// No `-j`: only the counters change.
    None,
    /// ACCEPT.
    Accept,
    /// DROP.
    Drop,
    /// REJECT.
    Reject(RejectWith),
    /// RETURN.
    Return,
    /// Jump (`-j`) or go (`-g`) to a user chain.
    Jump {
        /// The chain.
        chain: ChainId,
        /// `-g`: do not come back to this chain.
        goto: bool,
    },
    /// DNAT `--to-destination ADDR[:PORT[-PORT]]`.
    Dnat {
        /// The new destination.
        addr: Ipv4Addr,
        /// The new port range.
        ports: Option<PortRange>,
    },
    /// SNAT `--to-source ADDR[:PORT[-PORT]]`.
    Snat {
        /// The new source.
        addr: Ipv4Addr,
        /// The new port range.
        ports: Option<PortRange>,
    },
    /// MASQUERADE: SNAT to the outgoing interface's address.
    Masquerade {
        /// `--to-ports`.
        ports: Option<PortRange>,
        /// `--random-fully` (recorded and printed; port choice stays deterministic).
        random_fully: bool,
    },
    /// MARK: `mark = (mark & !mask) ^ value` (`--set-xmark`; the other forms reduce to it).
    Mark {
        /// The value.
        value: u32,
        /// The mask.
        mask: u32,
    },
    /// LOG: writes a note and continues.
    Log {
        /// `--log-prefix`.
        prefix: Option<String>,
        /// `--log-level` (4, warning, by default).
        level: u8,
    },
}

/// A rule's matches and target (what `-D RULE` compares).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// `-s`.
    pub src: Option<AddrMatch>,
    /// `-d`.
    pub dst: Option<AddrMatch>,
    /// `-i`.
    pub in_iface: Option<IfaceMatch>,
    /// `-o`.
    pub out_iface: Option<IfaceMatch>,
    /// `-p`: protocol number (0 = all) and negation.
    pub proto: Option<(u8, bool)>,
    /// The match modules in order.
    pub matches: Vec<Match>,
    /// The target.
    pub target: Target,
}

/// A rule in a chain: its spec and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What it matches and does.
    pub spec: RuleSpec,
    /// Packets that matched.
    pub packets: u64,
    /// Bytes that matched.
    pub bytes: u64,
}

/// The facts about a packet that rules look at, gathered once per hook.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketView<'a> {
    pub src: u32,
    pub dst: u32,
    pub proto: u8,
    pub ports: Option<(u16, u16)>,
    /// TCP flag bits (FIN 1, SYN 2, RST 4, ACK 16).
    pub tcp_flags: u8,
    pub icmp: Option<(u8, u8)>,
    pub in_iface: Option<&'a str>,
    pub out_iface: Option<&'a str>,
    pub ct: CtState,
    /// The packet's connection has source NAT / destination NAT.
    pub snat: bool,
    pub dnat: bool,
    pub len: u64,
    /// The namespace's own IPv4 addresses (for `-m addrtype`).
    pub local: &'a [u32],
}

/// Randomness for `-m statistic --mode random`, from the namespace's seeded generator.
pub(crate) type StatRng = rand::rngs::ChaCha8Rng;

impl RuleSpec {
    /// Whether the rule's matches all hold for `pkt` with packet mark `mark`.
    pub(crate) fn matches(&mut self, pkt: &PacketView<'_>, mark: u32, rng: &mut StatRng) -> bool {
        if self.src.is_some_and(|m| !m.matches(pkt.src))
            || self.dst.is_some_and(|m| !m.matches(pkt.dst))
        {
            return false;
        }
        if let Some((proto, neg)) = self.proto
            && proto != 0
            && (pkt.proto == proto) == neg
        {
            return false;
        }
        if self.in_iface.as_ref().is_some_and(|m| !m.matches(pkt.in_iface))
            || self.out_iface.as_ref().is_some_and(|m| !m.matches(pkt.out_iface))
        {
            return false;
        }
        self.matches.iter_mut().all(|m| match_module(m, pkt, mark, rng))
    }
}

fn match_module(m: &mut Match, pkt: &PacketView<'_>, mark: u32, rng: &mut StatRng) -> bool {
    use rand::Rng as _;
    match m {
        Match::Ports { proto, sport, dport, flags } => {
            let Some((sp, dp)) = pkt.ports.filter(|_| pkt.proto == *proto) else { return false };
            sport.is_none_or(|(r, neg)| r.contains(sp) != neg)
                && dport.is_none_or(|(r, neg)| r.contains(dp) != neg)
                && flags.is_none_or(|(mask, comp, neg)| (pkt.tcp_flags & mask == comp) != neg)
        }
        Match::Icmp { ty, code, neg } => {
            let Some((t, c)) = pkt.icmp.filter(|_| pkt.proto == 1) else { return false };
            (t == *ty && code.is_none_or(|code| code == c)) != *neg
        }
        Match::State { states, neg, .. } => states.matches(pkt.ct, pkt.snat, pkt.dnat) != *neg,
        Match::Mark { value, mask, neg } => ((mark & *mask) == *value) != *neg,
        Match::Multiport { kind, ports, neg } => {
            let Some((sp, dp)) = pkt.ports else { return false };
            let hit = ports.iter().any(|r| match kind {
                MultiportKind::Src => r.contains(sp),
                MultiportKind::Dst => r.contains(dp),
                MultiportKind::Either => r.contains(sp) || r.contains(dp),
            });
            hit != *neg
        }
        Match::Comment(_) => true,
        Match::Statistic { mode, neg } => {
            let hit = match mode {
                StatMode::Random { probability } => (rng.next_u32() & 0x7fff_ffff) < *probability,
                StatMode::Nth { every, count, .. } => {
                    count.0 = if count.0 >= *every { 0 } else { count.0 + 1 };
                    count.0 == 0
                }
            };
            hit != *neg
        }
        Match::AddrType { src, dst } => {
            let holds = |t: &Option<(AddrType, bool)>, addr| {
                t.is_none_or(|(t, neg)| (AddrType::of(addr, pkt.local) == t) != neg)
            };
            holds(src, pkt.src) && holds(dst, pkt.dst)
        }
    }
}

/// The protocol name iptables prints.
pub(crate) fn proto_name(proto: u8) -> String {
    match proto {
        0 => "all".into(),
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

/// Quotes a string the way iptables-save does: only when it holds other than `[A-Za-z0-9_-]`.
fn save_string(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        s.to_string()
    } else {
        let mut out = String::from("\"");
        for c in s.chars() {
            if matches!(c, '"' | '\\' | '\'') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
}

fn service_name(port: u16) -> Option<&'static str> {
    Some(match port {
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 => "smtp",
        53 => "domain",
        80 => "http",
        123 => "ntp",
        443 => "https",
        8080 => "http-alt",
        _ => return None,
    })
}

fn port_text(port: u16, numeric: bool) -> String {
    match service_name(port).filter(|_| !numeric) {
        Some(name) => name.to_string(),
        None => port.to_string(),
    }
}

const ICMP_NAMES: [(&str, u8, Option<u8>); 9] = [
    ("echo-reply", 0, None),
    ("destination-unreachable", 3, None),
    ("network-unreachable", 3, Some(0)),
    ("host-unreachable", 3, Some(1)),
    ("port-unreachable", 3, Some(3)),
    ("echo-request", 8, None),
    ("time-exceeded", 11, None),
    ("ttl-zero-during-transit", 11, Some(0)),
    ("parameter-problem", 12, None),
];

/// Parses an ICMP type as iptables accepts it: a name, `T` or `T/C`.
pub(crate) fn parse_icmp_type(s: &str) -> Option<(u8, Option<u8>)> {
    if let Some((_, ty, code)) = ICMP_NAMES.iter().find(|(n, _, _)| *n == s) {
        return Some((*ty, *code));
    }
    match s.split_once('/') {
        Some((t, c)) => Some((t.parse().ok()?, Some(c.parse().ok()?))),
        None => Some((s.parse().ok()?, None)),
    }
}

fn reject_name(with: RejectWith) -> &'static str {
    match with {
        RejectWith::IcmpPortUnreachable => "icmp-port-unreachable",
        RejectWith::IcmpHostUnreachable => "icmp-host-unreachable",
        RejectWith::IcmpAdminProhibited => "icmp-admin-prohibited",
        RejectWith::TcpReset => "tcp-reset",
    }
}

/// Parses a `--reject-with` value (with iptables' aliases).
pub(crate) fn parse_reject_with(s: &str) -> Option<RejectWith> {
    Some(match s {
        "icmp-port-unreachable" | "port-unreach" => RejectWith::IcmpPortUnreachable,
        "icmp-host-unreachable" | "host-unreach" => RejectWith::IcmpHostUnreachable,
        "icmp-admin-prohibited" | "admin-prohib" => RejectWith::IcmpAdminProhibited,
        "tcp-reset" | "tcp-rst" => RejectWith::TcpReset,
        _ => return None,
    })
}

fn nat_to(addr: Ipv4Addr, ports: Option<PortRange>) -> String {
    match ports {
        None => addr.to_string(),
        Some(r) if r.lo == r.hi => format!("{addr}:{}", r.lo),
        Some(r) => format!("{addr}:{}-{}", r.lo, r.hi),
    }
}

impl RuleSpec {
    /// The rule as `iptables -S` prints it after `-A CHAIN` (a leading space per part);
    /// `chain_name` resolves jump targets.
    pub(crate) fn save(&self, chain_name: &dyn Fn(ChainId) -> String) -> String {
        let mut out = String::new();
        let neg = |n: bool| if n { " !" } else { "" };
        if let Some(m) = &self.src {
            let _ = write!(out, "{} -s {}", neg(m.neg), m.save());
        }
        if let Some(m) = &self.dst {
            let _ = write!(out, "{} -d {}", neg(m.neg), m.save());
        }
        if let Some(m) = &self.in_iface {
            let _ = write!(out, "{} -i {}", neg(m.neg), m.name);
        }
        if let Some(m) = &self.out_iface {
            let _ = write!(out, "{} -o {}", neg(m.neg), m.name);
        }
        if let Some((proto, n)) = self.proto
            && proto != 0
        {
            let _ = write!(out, "{} -p {}", neg(n), proto_name(proto));
        }
        for m in &self.matches {
            match m {
                Match::Ports { proto, sport, dport, flags } => {
                    let _ = write!(out, " -m {}", proto_name(*proto));
                    if let Some((r, n)) = sport {
                        let _ = write!(out, "{} --sport {}", neg(*n), r.save());
                    }
                    if let Some((r, n)) = dport {
                        let _ = write!(out, "{} --dport {}", neg(*n), r.save());
                    }
                    if let Some((mask, comp, n)) = flags {
                        let _ = write!(
                            out,
                            "{} --tcp-flags {} {}",
                            neg(*n),
                            tcp_flag_names(*mask),
                            tcp_flag_names(*comp)
                        );
                    }
                }
                Match::Icmp { ty, code, neg: n } => {
                    let _ = write!(out, " -m icmp{} --icmp-type {ty}", neg(*n));
                    if let Some(code) = code {
                        let _ = write!(out, "/{code}");
                    }
                }
                Match::State { states, neg: n, legacy_state: false } => {
                    let _ = write!(out, " -m conntrack{} --ctstate {}", neg(*n), states.names());
                }
                Match::State { states, neg: n, legacy_state: true } => {
                    let _ = write!(out, " -m state{} --state {}", neg(*n), states.names());
                }
                Match::Mark { value, mask, neg: n } => {
                    let _ = write!(out, " -m mark{} --mark {}", neg(*n), mark_text(*value, *mask));
                }
                Match::Multiport { kind, ports, neg: n } => {
                    let opt = match kind {
                        MultiportKind::Src => "--sports",
                        MultiportKind::Dst => "--dports",
                        MultiportKind::Either => "--ports",
                    };
                    let list: Vec<String> = ports.iter().map(PortRange::save).collect();
                    let _ = write!(out, " -m multiport{} {opt} {}", neg(*n), list.join(","));
                }
                Match::Comment(c) => {
                    let _ = write!(out, " -m comment --comment {}", save_string(c));
                }
                Match::Statistic { mode, neg: n } => {
                    out.push_str(" -m statistic");
                    stat_text(&mut out, mode, *n, "--");
                }
                Match::AddrType { src, dst } => {
                    out.push_str(" -m addrtype");
                    for (name, t) in [("--src-type", src), ("--dst-type", dst)] {
                        if let Some((t, n)) = t {
                            let _ = write!(out, "{} {name} {}", neg(*n), t.name());
                        }
                    }
                }
            }
        }
        match &self.target {
            Target::None => {}
            Target::Accept => out.push_str(" -j ACCEPT"),
            Target::Drop => out.push_str(" -j DROP"),
            Target::Return => out.push_str(" -j RETURN"),
            Target::Reject(with) => {
                let _ = write!(out, " -j REJECT --reject-with {}", reject_name(*with));
            }
            Target::Jump { chain, goto } => {
                let _ = write!(out, " -{} {}", if *goto { 'g' } else { 'j' }, chain_name(*chain));
            }
            Target::Dnat { addr, ports } => {
                let _ = write!(out, " -j DNAT --to-destination {}", nat_to(*addr, *ports));
            }
            Target::Snat { addr, ports } => {
                let _ = write!(out, " -j SNAT --to-source {}", nat_to(*addr, *ports));
            }
            Target::Masquerade { ports, random_fully } => {
                out.push_str(" -j MASQUERADE");
                if let Some(r) = ports {
                    let _ = write!(out, " --to-ports {}", r.save().replace(':', "-"));
                }
                if *random_fully {
                    out.push_str(" --random-fully");
                }
            }
            Target::Mark { value, mask } => {
                let _ = write!(out, " -j MARK --set-xmark {value:#x}/{mask:#x}");
            }
            Target::Log { prefix, level } => {
                out.push_str(" -j LOG");
                if let Some(p) = prefix {
                    let _ = write!(out, " --log-prefix {}", save_string(p));
                }
                if *level != 4 {
                    let _ = write!(out, " --log-level {level}");
                }
            }
        }
        out
    }

    /// The target column of `iptables -L`.
    pub(crate) fn target_name(&self, chain_name: &dyn Fn(ChainId) -> String) -> String {
        match &self.target {
            Target::None => String::new(),
            Target::Accept => "ACCEPT".into(),
            Target::Drop => "DROP".into(),
            Target::Return => "RETURN".into(),
            Target::Reject(_) => "REJECT".into(),
            Target::Jump { chain, .. } => chain_name(*chain),
            Target::Dnat { .. } => "DNAT".into(),
            Target::Snat { .. } => "SNAT".into(),
            Target::Masquerade { .. } => "MASQUERADE".into(),
            Target::Mark { .. } => "MARK".into(),
            Target::Log { .. } => "LOG".into(),
        }
    }

    /// The columns of `iptables -L` from the protocol on, and the match/target text.
    pub(crate) fn list_row(&self, numeric: bool, verbose: bool) -> String {
        let mut out = String::new();
        let (proto, pneg) = self.proto.unwrap_or((0, false));
        let _ = write!(out, "{}{:<5}-- ", if pneg { '!' } else { ' ' }, proto_name(proto));
        if verbose {
            let iface = |m: &Option<IfaceMatch>| match m {
                Some(m) => format!("{}{}", if m.neg { "!" } else { "" }, m.name),
                None if numeric => "*".into(),
                None => "any".into(),
            };
            let _ = write!(out, " {:<6} {:<6} ", iface(&self.in_iface), iface(&self.out_iface));
        }
        for m in [&self.src, &self.dst] {
            let (neg, text) = match m {
                Some(m) => (m.neg, m.list(numeric)),
                None if numeric => (false, "0.0.0.0/0".to_string()),
                None => (false, "anywhere".to_string()),
            };
            let _ = write!(out, "{}{:<19} ", if neg { '!' } else { ' ' }, text);
        }
        if let Target::Jump { goto: true, .. } = self.target {
            out.push_str("[goto] ");
        }
        for m in &self.matches {
            list_match(&mut out, m, numeric);
        }
        list_target(&mut out, &self.target);
        out
    }
}

/// The statistic match as iptables prints it, with `prefix` `--` (save) or empty (list).
fn stat_text(out: &mut String, mode: &StatMode, neg: bool, prefix: &str) {
    let inv = if neg { "! " } else { "" };
    match mode {
        StatMode::Random { probability } => {
            let p = f64::from(*probability) / f64::from(0x8000_0000u32);
            let _ = write!(out, " {prefix}mode random {inv}{prefix}probability {p:.11}");
        }
        StatMode::Nth { every, packet, .. } => {
            let _ = write!(out, " {prefix}mode nth {inv}{prefix}every {}", u64::from(*every) + 1);
            if *packet != 0 || !prefix.is_empty() {
                let _ = write!(out, " {prefix}packet {packet}");
            }
        }
    }
}

/// TCP flag bits as iptables names them (`FIN,SYN,RST,ACK`, or `NONE`).
fn tcp_flag_names(bits: u8) -> String {
    const NAMES: [(&str, u8); 6] =
        [("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10), ("URG", 0x20)];
    let names: Vec<&str> = NAMES.iter().filter(|(_, b)| bits & b != 0).map(|(n, _)| *n).collect();
    if names.is_empty() { "NONE".to_string() } else { names.join(",") }
}

fn mark_text(value: u32, mask: u32) -> String {
    if mask == u32::MAX { format!("{value:#x}") } else { format!("{value:#x}/{mask:#x}") }
}

fn list_ports(out: &mut String, name: &str, p: &Option<(PortRange, bool)>, numeric: bool) {
    if let Some((r, neg)) = p {
        let inv = if *neg { "!" } else { "" };
        if r.lo == r.hi {
            let _ = write!(out, " {name}:{inv}{}", port_text(r.lo, numeric));
        } else {
            let _ = write!(
                out,
                " {name}s:{inv}{}:{}",
                port_text(r.lo, numeric),
                port_text(r.hi, numeric)
            );
        }
    }
}

fn list_match(out: &mut String, m: &Match, numeric: bool) {
    match m {
        Match::Ports { proto, sport, dport, flags } => {
            let _ = write!(out, " {}", proto_name(*proto));
            list_ports(out, "spt", sport, numeric);
            list_ports(out, "dpt", dport, numeric);
            if let Some((mask, comp, neg)) = flags {
                let inv = if *neg { "!" } else { "" };
                let _ = if numeric {
                    write!(out, " flags:{inv}0x{mask:02X}/0x{comp:02X}")
                } else {
                    write!(out, " flags:{inv}{}/{}", tcp_flag_names(*mask), tcp_flag_names(*comp))
                };
            }
        }
        Match::Icmp { ty, code, neg } => {
            out.push_str(" icmp");
            let named = ICMP_NAMES.iter().find(|(_, t, c)| t == ty && c == code);
            match named.filter(|_| !numeric) {
                Some((name, _, _)) => {
                    let _ = write!(out, " {}{name}", if *neg { "!" } else { "" });
                }
                None => {
                    if *neg {
                        out.push_str(" !");
                    }
                    let _ = write!(out, "type {ty}");
                    if let Some(code) = code {
                        let _ = write!(out, " code {code}");
                    }
                }
            }
        }
        Match::State { states, neg, legacy_state } => {
            if *neg {
                out.push_str(" !");
            }
            let word = if *legacy_state { "state" } else { "ctstate" };
            let _ = write!(out, " {word} {}", states.names());
        }
        Match::Mark { value, mask, neg } => {
            out.push_str(" mark match");
            if *neg {
                out.push_str(" !");
            }
            let _ = write!(out, " {}", mark_text(*value, *mask));
        }
        Match::Multiport { kind, ports, neg } => {
            let which = match kind {
                MultiportKind::Src => "sports",
                MultiportKind::Dst => "dports",
                MultiportKind::Either => "ports",
            };
            let list: Vec<String> = ports
                .iter()
                .map(|r| {
                    if r.lo == r.hi {
                        port_text(r.lo, numeric)
                    } else {
                        format!("{}:{}", port_text(r.lo, numeric), port_text(r.hi, numeric))
                    }
                })
                .collect();
            let _ =
                write!(out, " multiport {which} {}{}", if *neg { "!" } else { "" }, list.join(","));
        }
        Match::Comment(c) => {
            let _ = write!(out, " /* {c} */");
        }
        Match::Statistic { mode, neg } => {
            out.push_str(" statistic");
            stat_text(out, mode, *neg, "");
        }
        Match::AddrType { src, dst } => {
            out.push_str(" ADDRTYPE match");
            for (name, t) in [("src-type", src), ("dst-type", dst)] {
                if let Some((t, n)) = t {
                    let _ = write!(out, " {name} {}{}", if *n { "!" } else { "" }, t.name());
                }
            }
        }
    }
}

fn list_target(out: &mut String, target: &Target) {
    match target {
        Target::Reject(with) => {
            let _ = write!(out, " reject-with {}", reject_name(*with));
        }
        Target::Dnat { addr, ports } | Target::Snat { addr, ports } => {
            let _ = write!(out, " to:{}", nat_to(*addr, *ports));
        }
        Target::Masquerade { ports, random_fully } => {
            if let Some(r) = ports {
                let _ = write!(out, " masq ports: {}", r.save().replace(':', "-"));
            }
            if *random_fully {
                out.push_str(" random-fully");
            }
        }
        Target::Mark { value, mask } => {
            let _ = if value == mask {
                write!(out, " MARK or {value:#x}")
            } else if *value == 0 {
                write!(out, " MARK and {:#x}", !mask)
            } else if *mask == 0 {
                write!(out, " MARK xor {value:#x}")
            } else if *mask == u32::MAX {
                write!(out, " MARK set {value:#x}")
            } else {
                write!(out, " MARK xset {value:#x}/{mask:#x}")
            };
        }
        Target::Log { prefix, level } => {
            let _ = write!(out, " LOG flags 0 level {level}");
            if let Some(p) = prefix {
                let _ = write!(out, " prefix \"{p}\"");
            }
        }
        Target::None | Target::Accept | Target::Drop | Target::Return | Target::Jump { .. } => {}
    }
}
