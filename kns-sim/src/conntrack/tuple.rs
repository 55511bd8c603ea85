//! Connection tuples and the classification of packets that have no connection yet.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::wire::{L4Summary, PacketSummary};

/// One direction of a connection: addresses, protocol and ports. For ICMP echo both ports hold
/// the echo identifier, so that a request and its reply have inverse tuples; for protocols
/// without ports both are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub proto: u8,
    /// Source port (or echo identifier).
    pub src_port: u16,
    /// Destination port (or echo identifier).
    pub dst_port: u16,
}

impl Tuple {
    /// The tuple a packet belongs to, read from its summary.
    pub fn of(summary: &PacketSummary) -> Tuple {
        let (src_port, dst_port) = match summary.l4 {
            L4Summary::Tcp { src_port, dst_port, .. }
            | L4Summary::Udp { src_port, dst_port }
            | L4Summary::Sctp { src_port, dst_port } => (src_port, dst_port),
            L4Summary::Icmp { echo_id: Some(id), .. } => (id, id),
            L4Summary::Icmp { .. } | L4Summary::Other => (0, 0),
        };
        Tuple { src: summary.src, dst: summary.dst, proto: summary.protocol, src_port, dst_port }
    }

    /// The tuple of the opposite direction.
    pub fn inverse(self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
            src_port: self.dst_port,
            dst_port: self.src_port,
        }
    }

    /// Whether this protocol has ports (or an echo identifier) that NAT may change.
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, 6 | 17 | 132) || (self.proto == 1 && self.src_port == self.dst_port)
    }
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} -> {}:{} proto {}",
            self.src, self.src_port, self.dst, self.dst_port, self.proto
        )
    }
}

/// The tuple of the IPv4 packet quoted by the ICMP error in `bytes` (an IPv4 packet whose
/// transport header starts at `header_len`), or `None` when too little is quoted.
pub fn quoted_tuple(bytes: &[u8], header_len: usize) -> Option<Tuple> {
    let inner = bytes.get(header_len + 8..)?;
    if inner.len() < 20 || inner[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(inner[0] & 0x0f) * 4;
    let l4 = inner.get(ihl..)?;
    let src = Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]);
    let dst = Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]);
    let proto = inner[9];
    let (src_port, dst_port) = match proto {
        6 | 17 | 132 => {
            let p = l4.get(..4)?;
            (u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]]))
        }
        1 => {
            let p = l4.get(..6)?;
            if matches!(p[0], 0 | 8) {
                let id = u16::from_be_bytes([p[4], p[5]]);
                (id, id)
            } else {
                (0, 0)
            }
        }
        _ => (0, 0),
    };
    Some(Tuple { src: IpAddr::V4(src), dst: IpAddr::V4(dst), proto, src_port, dst_port })
}

/// How connection tracking treats a packet that matches no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// It may open a connection.
    New,
    /// It cannot open one (a TCP RST or FIN, a SYN-ACK, an echo reply): state INVALID.
    Invalid,
    /// It is never tracked (ICMPv6 neighbour discovery and the like).
    Untracked,
    /// It is an ICMP error: it is RELATED to the connection it quotes, or INVALID.
    Error,
}

/// Classifies a packet that matches no connection, as Linux does with loose TCP pickup on:
/// a SYN or a bare ACK opens a TCP connection; SYN-ACK, FIN and RST do not.
pub fn classify(summary: &PacketSummary) -> Start {
    match summary.l4 {
        L4Summary::Tcp { flags, .. } => {
            if flags.rst || flags.fin || (flags.syn && flags.ack) {
                Start::Invalid
            } else if flags.syn || flags.ack {
                Start::New
            } else {
                Start::Invalid
            }
        }
        L4Summary::Icmp { is_error: true, .. } => Start::Error,
        L4Summary::Icmp { ty, .. } if summary.protocol == 1 => match ty {
            // Echo, timestamp, information and address-mask requests.
            8 | 13 | 15 | 17 => Start::New,
            _ => Start::Invalid,
        },
        L4Summary::Icmp { ty, .. } => match ty {
            // ICMPv6 echo request and node information query.
            128 | 139 => Start::New,
            129 | 140 => Start::Invalid,
            _ => Start::Untracked,
        },
        L4Summary::Udp { .. } | L4Summary::Sctp { .. } | L4Summary::Other => Start::New,
    }
}
