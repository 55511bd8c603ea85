//! The data trace: one [`TraceEvent`] per hop of every frame, recorded only when enabled, plus
//! the frame accounting behind [`Sim::conservation`].

use std::fmt;

use smoltcp::wire::{ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol};

use super::packet::{ETH_LEN, fmt_mac};
use super::{Event, IfaceId, NetnsId, Sim};
use crate::drop::DropReason;
use crate::netfilter::Hook;
use crate::time::Time;
use crate::wire::{L4Summary, PacketSummary, parse_ip};

/// What happened to a frame at one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceWhat {
    /// It arrived on the device.
    Rx,
    /// It left by the device.
    Tx,
    /// A bridge forwarded it from the device to port `to`.
    Bridged {
        /// The egress port.
        to: String,
    },
    /// A netfilter hook ran on it.
    Hook {
        /// The hook.
        hook: Hook,
        /// The verdict in words (`ACCEPT`, `DROP`, ...).
        verdict: String,
        /// What the rules did (matched rule, NAT rewrite), if anything.
        notes: Vec<String>,
    },
    /// The routing decision, in words.
    Route(String),
    /// An ARP exchange or neighbour event, in words.
    Neigh(String),
    /// It was wrapped in or unwrapped from a tunnel, in words.
    Tunnel(String),
    /// It was dropped.
    Drop {
        /// Why.
        reason: DropReason,
    },
    /// It reached its destination (a socket layer or the IP layer itself).
    Deliver(String),
}

/// One hop of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// When.
    pub time: Time,
    /// The frame's id (copies made by flooding get new ids).
    pub frame: u64,
    /// The namespace (`host` for the root namespace).
    pub ns: String,
    /// The device, if the event happened at one.
    pub device: Option<String>,
    /// What happened.
    pub what: TraceWhat,
    /// The IP packet's summary, if the frame carries IPv4/IPv6.
    pub summary: Option<PacketSummary>,
    /// A short description of a non-IP frame (ARP), if any.
    pub l2: Option<String>,
}

impl fmt::Display for TraceEvent {
    /// One line: `time #frame ns/device what: packet`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{} {}", self.time, self.frame, self.ns)?;
        if let Some(d) = &self.device {
            write!(f, "/{d}")?;
        }
        match &self.what {
            TraceWhat::Rx => f.write_str(" rx")?,
            TraceWhat::Tx => f.write_str(" tx")?,
            TraceWhat::Bridged { to } => write!(f, " bridged to {to}")?,
            TraceWhat::Hook { hook, verdict, notes } => {
                write!(f, " {hook:?} {verdict}")?;
                for n in notes {
                    write!(f, " [{n}]")?;
                }
            }
            TraceWhat::Route(r) => write!(f, " route {r}")?,
            TraceWhat::Neigh(n) => write!(f, " neigh {n}")?,
            TraceWhat::Tunnel(t) => write!(f, " {t}")?,
            TraceWhat::Drop { reason } => write!(f, " DROP ({reason})")?,
            TraceWhat::Deliver(to) => write!(f, " deliver to {to}")?,
        }
        if let Some(s) = &self.summary {
            write!(f, ": {}", describe(s))?;
        } else if let Some(l2) = &self.l2 {
            write!(f, ": {l2}")?;
        }
        Ok(())
    }
}

/// A one-line description of an IP packet: `ICMP 10.0.0.1 > 10.0.0.2 echo request ttl 64`.
pub fn describe(s: &PacketSummary) -> String {
    match s.l4 {
        L4Summary::Tcp { src_port, dst_port, flags } => {
            let mut fl = String::new();
            for (on, c) in [(flags.syn, 'S'), (flags.fin, 'F'), (flags.rst, 'R'), (flags.ack, '.')]
            {
                if on {
                    fl.push(c);
                }
            }
            format!("TCP {}:{} > {}:{} [{fl}] ttl {}", s.src, src_port, s.dst, dst_port, s.ttl)
        }
        L4Summary::Udp { src_port, dst_port } => {
            format!("UDP {}:{} > {}:{} ttl {}", s.src, src_port, s.dst, dst_port, s.ttl)
        }
        L4Summary::Sctp { src_port, dst_port } => {
            format!("SCTP {}:{} > {}:{} ttl {}", s.src, src_port, s.dst, dst_port, s.ttl)
        }
        L4Summary::Icmp { ty, code, .. } => {
            let what = match (ty, code) {
                (0, _) => "echo reply".to_string(),
                (8, _) => "echo request".to_string(),
                (3, 0) => "net unreachable".to_string(),
                (3, 1) => "host unreachable".to_string(),
                (3, 3) => "port unreachable".to_string(),
                (3, 4) => "frag needed".to_string(),
                (3, 13) => "admin prohibited".to_string(),
                (11, _) => "time exceeded".to_string(),
                (t, c) => format!("type {t} code {c}"),
            };
            format!("ICMP {} > {} {what} ttl {}", s.src, s.dst, s.ttl)
        }
        L4Summary::Other => format!("proto {} {} > {} ttl {}", s.protocol, s.src, s.dst, s.ttl),
    }
}

/// The frame accounting of a whole simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conservation {
    /// Frames created: injected, sent by socket layers, generated by the IP layer (ARP, ICMP),
    /// and copies made by flooding.
    pub sent: u64,
    /// Frames consumed at a destination (a socket layer or the IP layer).
    pub delivered: u64,
    /// Frames dropped, each with a counted reason.
    pub dropped: u64,
    /// Frames still travelling: on a wire or waiting for ARP.
    pub in_flight: u64,
}

impl Conservation {
    /// Whether every frame sent is accounted for.
    pub fn holds(&self) -> bool {
        self.sent == self.delivered + self.dropped + self.in_flight
    }
}

impl fmt::Display for Conservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {} = delivered {} + dropped {} + in flight {}{}",
            self.sent,
            self.delivered,
            self.dropped,
            self.in_flight,
            if self.holds() { "" } else { " (DOES NOT BALANCE)" }
        )
    }
}

impl Sim {
    /// Starts recording a [`TraceEvent`] for every hop (off by default: it costs allocations).
    /// Netfilter notes (rule matched, conntrack state, NAT rewrite) are switched on with it.
    pub fn enable_trace(&mut self) {
        if self.trace.is_none() {
            self.trace = Some(Vec::new());
            for ns in &mut self.namespaces {
                ns.netfilter.set_notes(true);
            }
        }
    }

    /// Stops recording hops and drops those not yet taken (the counterpart of
    /// [`enable_trace`](Self::enable_trace), for runs that trace only some of their traffic).
    pub fn disable_trace(&mut self) {
        if self.trace.take().is_some() {
            for ns in &mut self.namespaces {
                ns.netfilter.set_notes(false);
            }
        }
    }

    /// The hops recorded so far.
    pub fn trace(&self) -> &[TraceEvent] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Returns and clears the hops recorded so far (recording continues).
    pub fn take_trace(&mut self) -> Vec<TraceEvent> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// A 64-bit FNV-1a hash of the printed trace: equal runs give equal hashes.
    pub fn trace_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for ev in self.trace() {
            for b in ev.to_string().bytes().chain(std::iter::once(b'\n')) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// Proves that every frame sent was delivered, dropped with a reason, or is still in flight.
    pub fn conservation(&self) -> Conservation {
        let on_wire =
            self.engine.pending_events().filter(|e| matches!(e, Event::Rx { .. })).count();
        let waiting: usize =
            self.namespaces.iter().flat_map(|ns| ns.neigh.values()).map(|n| n.pending.len()).sum();
        Conservation {
            sent: self.counters.sent,
            delivered: self.counters.delivered,
            dropped: self.counters.dropped,
            in_flight: (on_wire + waiting) as u64,
        }
    }

    pub(crate) fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Records one hop if tracing is on. `frame` is the whole buffer (Ethernet first) when
    /// `l2` is true, otherwise the bytes starting at the Ethernet header all the same.
    #[inline]
    pub(crate) fn tr(
        &mut self,
        ns: NetnsId,
        dev: Option<IfaceId>,
        frame_id: u64,
        what: TraceWhat,
        buf: &[u8],
    ) {
        // Inlined so that, with tracing off, every hop pays one test and no call or drop.
        if self.trace.is_some() {
            self.record(ns, dev, frame_id, what, buf);
        }
    }

    #[cold]
    #[inline(never)]
    fn record(
        &mut self,
        ns: NetnsId,
        dev: Option<IfaceId>,
        frame_id: u64,
        what: TraceWhat,
        buf: &[u8],
    ) {
        let ns_name = match self.namespaces[ns.0 as usize].name.as_str() {
            "" => "host".to_string(),
            n => n.to_string(),
        };
        let device = dev.map(|d| self.ifaces[d.0 as usize].name.clone());
        let (summary, l2) = summarise_frame(buf);
        let ev = TraceEvent {
            time: self.now(),
            frame: frame_id,
            ns: ns_name,
            device,
            what,
            summary,
            l2,
        };
        if let Some(t) = self.trace.as_mut() {
            t.push(ev);
        }
    }
}

fn summarise_frame(buf: &[u8]) -> (Option<PacketSummary>, Option<String>) {
    let Ok(eth) = EthernetFrame::new_checked(buf) else { return (None, None) };
    match eth.ethertype() {
        EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6 => (parse_ip(&buf[ETH_LEN..]).ok(), None),
        EthernetProtocol::Arp => {
            let arp =
                ArpPacket::new_checked(&buf[ETH_LEN..]).ok().and_then(|p| ArpRepr::parse(&p).ok());
            let text = match arp {
                Some(ArpRepr::EthernetIpv4 {
                    operation,
                    source_hardware_addr,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                }) => match operation {
                    smoltcp::wire::ArpOperation::Request => {
                        format!("ARP who-has {target_protocol_addr} tell {source_protocol_addr}")
                    }
                    _ => format!(
                        "ARP {source_protocol_addr} is-at {}",
                        fmt_mac(source_hardware_addr.0)
                    ),
                },
                _ => "ARP (malformed)".to_string(),
            };
            (None, Some(text))
        }
        other => (None, Some(format!("ethertype {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use crate::net::Sim;
    use crate::net::packet::icmp_echo_request;

    fn ping_once(sim: &mut Sim, seq: u16) {
        let red = sim.netns(Some("red")).expect("red exists");
        let from = "10.0.0.1".parse().expect("an address");
        let to = "10.0.0.2".parse().expect("an address");
        sim.send_ip(red, &icmp_echo_request(from, to, 1, seq, 64, b"hi"));
        sim.run_until_idle(10_000).expect("the ping settles");
    }

    #[test]
    fn disable_trace_stops_recording_and_drops_what_was_not_taken() {
        let mut sim = Sim::new(7);
        for cmd in [
            "netns add red",
            "netns add blue",
            "link add veth-red type veth peer name veth-blue",
            "link set veth-red netns red",
            "link set veth-blue netns blue",
            "-n red addr add 10.0.0.1/24 dev veth-red",
            "-n blue addr add 10.0.0.2/24 dev veth-blue",
            "-n red link set veth-red up",
            "-n blue link set veth-blue up",
        ] {
            sim.ip(None, cmd).expect("a valid command");
        }
        sim.enable_trace();
        ping_once(&mut sim, 1);
        assert!(!sim.trace().is_empty());
        sim.disable_trace();
        assert!(sim.trace().is_empty(), "untaken hops are dropped");
        ping_once(&mut sim, 2);
        assert!(sim.trace().is_empty() && sim.take_trace().is_empty(), "nothing recorded");
        sim.enable_trace();
        ping_once(&mut sim, 3);
        assert!(!sim.take_trace().is_empty(), "recording starts again");
        assert_eq!(sim.conservation().delivered, 8, "six echo frames and one ARP exchange");
    }
}
