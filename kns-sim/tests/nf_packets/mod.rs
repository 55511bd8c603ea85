//! Packet builders and checkers shared by the netfilter integration tests: every packet is
//! emitted with smoltcp's `wire` types, and every rewritten packet is re-parsed and its
//! checksums verified with them.

#![allow(dead_code)]

use std::net::Ipv4Addr;

use kns_sim::Time;
use kns_sim::netfilter::{Hook, HookContext, Netfilter, Verdict};
use kns_sim::wire::{PacketSummary, parse_ip};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr,
    TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

pub fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ip_packet(src: &str, dst: &str, proto: IpProtocol, len: usize) -> (Vec<u8>, Ipv4Addr, Ipv4Addr) {
    let (src, dst) = (addr(src), addr(dst));
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: len,
        hop_limit: 64,
    };
    let mut buf = vec![0u8; repr.buffer_len() + len];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf), &ChecksumCapabilities::default());
    (buf, src, dst)
}

/// A TCP segment; `flags` holds `S` (SYN), `A` (ACK), `F` (FIN), `R` (RST).
pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: &str) -> Vec<u8> {
    let control = if flags.contains('S') {
        TcpControl::Syn
    } else if flags.contains('F') {
        TcpControl::Fin
    } else if flags.contains('R') {
        TcpControl::Rst
    } else {
        TcpControl::None
    };
    let payload: &[u8] = if control == TcpControl::None { b"hello, world" } else { b"" };
    let repr = TcpRepr {
        src_port: sport,
        dst_port: dport,
        control,
        seq_number: TcpSeqNumber(1000),
        ack_number: flags.contains('A').then_some(TcpSeqNumber(5000)),
        window_len: 4096,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let (mut buf, s, d) = ip_packet(src, dst, IpProtocol::Tcp, repr.buffer_len());
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    repr.emit(
        &mut TcpPacket::new_unchecked(ip.payload_mut()),
        &IpAddress::Ipv4(s),
        &IpAddress::Ipv4(d),
        &ChecksumCapabilities::default(),
    );
    buf
}

pub fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let payload = b"query";
    let repr = UdpRepr { src_port: sport, dst_port: dport };
    let (mut buf, s, d) = ip_packet(src, dst, IpProtocol::Udp, repr.header_len() + payload.len());
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    repr.emit(
        &mut UdpPacket::new_unchecked(ip.payload_mut()),
        &IpAddress::Ipv4(s),
        &IpAddress::Ipv4(d),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    buf
}

pub fn echo(src: &str, dst: &str, ident: u16, request: bool) -> Vec<u8> {
    let data = b"ping-data";
    let repr = if request {
        Icmpv4Repr::EchoRequest { ident, seq_no: 1, data }
    } else {
        Icmpv4Repr::EchoReply { ident, seq_no: 1, data }
    };
    let (mut buf, _, _) = ip_packet(src, dst, IpProtocol::Icmp, repr.buffer_len());
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    repr.emit(&mut Icmpv4Packet::new_unchecked(ip.payload_mut()), &ChecksumCapabilities::default());
    buf
}

/// An ICMP port-unreachable from `src` to `dst` quoting `quoted` (whole, as smoltcp does).
pub fn port_unreachable(src: &str, dst: &str, quoted: &[u8]) -> Vec<u8> {
    let q = Ipv4Packet::new_checked(quoted).unwrap();
    let header = Ipv4Repr::parse(&q, &ChecksumCapabilities::default()).unwrap();
    let repr = Icmpv4Repr::DstUnreachable {
        reason: Icmpv4DstUnreachable::PortUnreachable,
        header,
        data: q.payload(),
    };
    let (mut buf, _, _) = ip_packet(src, dst, IpProtocol::Icmp, repr.buffer_len());
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    repr.emit(&mut Icmpv4Packet::new_unchecked(ip.payload_mut()), &ChecksumCapabilities::default());
    buf
}

/// Verifies every checksum of an IPv4 packet (and of the packet an ICMP error quotes) with
/// smoltcp and returns its summary.
pub fn verified(buf: &[u8]) -> PacketSummary {
    let ip = Ipv4Packet::new_checked(buf).unwrap();
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    let (s, d) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
    match ip.next_header() {
        IpProtocol::Tcp => {
            assert!(
                TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum(&s, &d),
                "TCP checksum"
            )
        }
        IpProtocol::Udp => {
            assert!(
                UdpPacket::new_checked(ip.payload()).unwrap().verify_checksum(&s, &d),
                "UDP checksum"
            )
        }
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
            assert!(icmp.verify_checksum(), "ICMP checksum");
            if matches!(icmp.msg_type().into(), 3u8 | 11) {
                // The quoted packet is complete here, so its checksums must hold too.
                verified(icmp.data());
            }
        }
        _ => {}
    }
    parse_ip(buf).unwrap()
}

/// The packet quoted by an ICMP error.
pub fn quoted(buf: &[u8]) -> Vec<u8> {
    let ip = Ipv4Packet::new_checked(buf).unwrap();
    Icmpv4Packet::new_checked(ip.payload()).unwrap().data().to_vec()
}

/// Runs one hook on a packet.
pub fn hook(
    nf: &mut Netfilter,
    now: Time,
    hook: Hook,
    ctx: &HookContext<'_>,
    buf: &mut [u8],
) -> Verdict {
    let mut summary = parse_ip(buf).unwrap();
    let verdict = nf.process(now, hook, ctx, buf, &mut summary);
    assert_eq!(summary, parse_ip(buf).unwrap(), "the summary follows the rewritten bytes");
    verdict
}

/// A forwarded packet's path: PREROUTING, FORWARD, POSTROUTING (stops at the first non-accept).
pub fn forward(
    nf: &mut Netfilter,
    now: Time,
    in_if: &str,
    out_if: &str,
    out_addr: Option<&str>,
    buf: &mut [u8],
) -> Verdict {
    let pre = HookContext { in_iface: Some(in_if), ..HookContext::default() };
    let fwd =
        HookContext { in_iface: Some(in_if), out_iface: Some(out_if), ..HookContext::default() };
    let post = HookContext {
        out_iface: Some(out_if),
        out_addr: out_addr.map(|a| std::net::IpAddr::V4(addr(a))),
        ..HookContext::default()
    };
    for (h, ctx) in [(Hook::Prerouting, &pre), (Hook::Forward, &fwd), (Hook::Postrouting, &post)] {
        let v = hook(nf, now, h, ctx, buf);
        if v != Verdict::Accept {
            return v;
        }
    }
    Verdict::Accept
}

/// Runs `iptables` with a command line.
pub fn ipt(nf: &mut Netfilter, line: &str) -> Result<String, kns_sim::netfilter::IptablesError> {
    let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    nf.iptables(Time::ZERO, &args)
}

pub fn ok(nf: &mut Netfilter, line: &str) -> String {
    ipt(nf, line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// A UDP datagram over IPv6.
pub fn udp6(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    use smoltcp::wire::{Ipv6Packet, Ipv6Repr};
    let (s, d): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        (src.parse().unwrap(), dst.parse().unwrap());
    let payload = b"six";
    let udp = UdpRepr { src_port: sport, dst_port: dport };
    let ip = Ipv6Repr {
        src_addr: s,
        dst_addr: d,
        next_header: IpProtocol::Udp,
        payload_len: 8 + payload.len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; ip.buffer_len() + ip.payload_len];
    let mut pkt = Ipv6Packet::new_unchecked(&mut buf);
    ip.emit(&mut pkt);
    udp.emit(
        &mut UdpPacket::new_unchecked(pkt.payload_mut()),
        &IpAddress::Ipv6(s),
        &IpAddress::Ipv6(d),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    buf
}
