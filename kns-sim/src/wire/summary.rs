//! [`PacketSummary`]: the facts about one IP packet that every hop needs.

use std::net::IpAddr;

use smoltcp::wire::{
    Icmpv4Message, Icmpv4Packet, Icmpv6Message, Icmpv6Packet, IpProtocol, Ipv4Packet, Ipv6Packet,
    TcpPacket, UdpPacket,
};

/// Why an IP packet could not be summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    /// The IP header is truncated or inconsistent.
    #[error("malformed IP header")]
    Ip,
    /// The IP version nibble is neither 4 nor 6.
    #[error("unknown IP version {0}")]
    Version(u8),
    /// The transport header is truncated.
    #[error("malformed {0} header")]
    Transport(&'static str),
}

/// TCP control bits that connection tracking cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// ACK.
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
}

/// The transport part of a [`PacketSummary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4Summary {
    /// A TCP segment.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Control bits.
        flags: TcpFlags,
    },
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// An SCTP packet (only the common header's ports are read).
    Sctp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// An ICMP or ICMPv6 message.
    Icmp {
        /// Message type.
        ty: u8,
        /// Message code.
        code: u8,
        /// The identifier of an echo request or reply.
        echo_id: Option<u16>,
        /// Whether this is an error message (unreachable, time exceeded, ...) quoting a packet.
        is_error: bool,
    },
    /// Any other protocol.
    Other,
}

/// The facts about one IP packet that forwarding, filtering and tracking need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketSummary {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// The IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP).
    pub protocol: u8,
    /// Length of the IP header in bytes (the transport header starts here).
    pub header_len: usize,
    /// Total length of the IP packet in bytes.
    pub total_len: usize,
    /// The transport summary.
    pub l4: L4Summary,
}

impl PacketSummary {
    /// Source and destination ports, for TCP, UDP and SCTP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.l4 {
            L4Summary::Tcp { src_port, dst_port, .. }
            | L4Summary::Udp { src_port, dst_port }
            | L4Summary::Sctp { src_port, dst_port } => Some((src_port, dst_port)),
            _ => None,
        }
    }
}

/// Summarises the IP packet at the start of `bytes` (IPv4 or IPv6, chosen by the version nibble).
pub fn parse_ip(bytes: &[u8]) -> Result<PacketSummary, SummaryError> {
    match bytes.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = Ipv4Packet::new_checked(bytes).map_err(|_| SummaryError::Ip)?;
            let header_len = usize::from(ip.header_len());
            let protocol = ip.next_header();
            let total_len = usize::from(ip.total_len());
            let l4 = parse_l4(protocol, &bytes[header_len..total_len])?;
            Ok(PacketSummary {
                src: IpAddr::V4(ip.src_addr()),
                dst: IpAddr::V4(ip.dst_addr()),
                ttl: ip.hop_limit(),
                protocol: protocol.into(),
                header_len,
                total_len,
                l4,
            })
        }
        Some(6) => {
            let ip = Ipv6Packet::new_checked(bytes).map_err(|_| SummaryError::Ip)?;
            // Extension headers are not modelled: the next header is the transport.
            let protocol = ip.next_header();
            let header_len = 40;
            let total_len = header_len + usize::from(ip.payload_len());
            let l4 = parse_l4(protocol, &bytes[header_len..total_len])?;
            Ok(PacketSummary {
                src: IpAddr::V6(ip.src_addr()),
                dst: IpAddr::V6(ip.dst_addr()),
                ttl: ip.hop_limit(),
                protocol: protocol.into(),
                header_len,
                total_len,
                l4,
            })
        }
        Some(v) => Err(SummaryError::Version(v)),
        None => Err(SummaryError::Ip),
    }
}

fn parse_l4(protocol: IpProtocol, payload: &[u8]) -> Result<L4Summary, SummaryError> {
    Ok(match protocol {
        IpProtocol::Tcp => {
            let tcp =
                TcpPacket::new_checked(payload).map_err(|_| SummaryError::Transport("TCP"))?;
            L4Summary::Tcp {
                src_port: tcp.src_port(),
                dst_port: tcp.dst_port(),
                flags: TcpFlags { syn: tcp.syn(), ack: tcp.ack(), fin: tcp.fin(), rst: tcp.rst() },
            }
        }
        IpProtocol::Udp => {
            let udp =
                UdpPacket::new_checked(payload).map_err(|_| SummaryError::Transport("UDP"))?;
            L4Summary::Udp { src_port: udp.src_port(), dst_port: udp.dst_port() }
        }
        IpProtocol::Unknown(132) => {
            if payload.len() < 12 {
                return Err(SummaryError::Transport("SCTP"));
            }
            L4Summary::Sctp {
                src_port: u16::from_be_bytes([payload[0], payload[1]]),
                dst_port: u16::from_be_bytes([payload[2], payload[3]]),
            }
        }
        IpProtocol::Icmp => {
            let icmp =
                Icmpv4Packet::new_checked(payload).map_err(|_| SummaryError::Transport("ICMP"))?;
            let msg = icmp.msg_type();
            let echo = matches!(msg, Icmpv4Message::EchoRequest | Icmpv4Message::EchoReply);
            L4Summary::Icmp {
                ty: msg.into(),
                code: icmp.msg_code(),
                echo_id: echo.then(|| icmp.echo_ident()),
                is_error: matches!(
                    msg,
                    Icmpv4Message::DstUnreachable
                        | Icmpv4Message::TimeExceeded
                        | Icmpv4Message::ParamProblem
                        | Icmpv4Message::Redirect
                ),
            }
        }
        IpProtocol::Icmpv6 => {
            let icmp = Icmpv6Packet::new_checked(payload)
                .map_err(|_| SummaryError::Transport("ICMPv6"))?;
            let msg = icmp.msg_type();
            let echo = matches!(msg, Icmpv6Message::EchoRequest | Icmpv6Message::EchoReply);
            L4Summary::Icmp {
                ty: msg.into(),
                code: icmp.msg_code(),
                echo_id: echo.then(|| icmp.echo_ident()),
                is_error: msg.is_error(),
            }
        }
        _ => L4Summary::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpAddress, Ipv4Address, Ipv4Repr, UdpRepr};

    #[test]
    fn summarises_a_udp_datagram() {
        let src = Ipv4Address::new(10, 0, 0, 1);
        let dst = Ipv4Address::new(10, 0, 0, 2);
        let udp = UdpRepr { src_port: 40000, dst_port: 53 };
        let payload = b"hello";
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: udp.header_len() + payload.len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; ip.buffer_len() + ip.payload_len];
        let mut pkt = Ipv4Packet::new_unchecked(&mut buf);
        ip.emit(&mut pkt, &ChecksumCapabilities::default());
        let mut u = UdpPacket::new_unchecked(pkt.payload_mut());
        udp.emit(
            &mut u,
            &IpAddress::Ipv4(src),
            &IpAddress::Ipv4(dst),
            payload.len(),
            |b| b.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
        let s = parse_ip(&buf).unwrap();
        assert_eq!(s.src, IpAddr::V4(src));
        assert_eq!(s.dst, IpAddr::V4(dst));
        assert_eq!(s.ttl, 64);
        assert_eq!(s.protocol, 17);
        assert_eq!(s.ports(), Some((40000, 53)));
        assert_eq!(s.total_len, 20 + 8 + 5);
        assert_eq!(parse_ip(&buf[..10]), Err(SummaryError::Ip));
        assert_eq!(parse_ip(&[0x50; 30]), Err(SummaryError::Version(5)));
    }
}
