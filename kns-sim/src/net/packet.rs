//! Builders for the frames and packets the IP layer creates itself (ARP, ICMP echo replies and
//! errors, TCP resets, VXLAN encapsulation), and for tests that inject traffic.
//!
//! Every IP packet handled by the dataplane lives in a buffer with [`ETH_LEN`] bytes of
//! Ethernet header in front of it, so that a packet can become a frame without being copied.

use std::net::{IpAddr, Ipv4Addr};

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    Icmpv4Message, Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, TcpPacket, TcpSeqNumber,
    UdpPacket,
};

/// Length of an Ethernet header.
pub const ETH_LEN: usize = 14;
/// The broadcast MAC address.
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// Length of the VXLAN encapsulation: outer Ethernet, IPv4, UDP and VXLAN headers.
pub const VXLAN_OVERHEAD: usize = ETH_LEN + 20 + 8 + 8;
/// How many bytes of the offending packet an ICMP error may quote (RFC 1812: up to 576 total).
const ICMP_QUOTE_MAX: usize = 576 - 20 - 8;

/// Writes an Ethernet header at the start of `frame`.
pub fn write_eth(frame: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: EthernetProtocol) {
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst_addr(EthernetAddress(dst));
    eth.set_src_addr(EthernetAddress(src));
    eth.set_ethertype(ethertype);
}

/// An ARP request or reply frame.
pub fn arp_frame(
    op: ArpOperation,
    eth_dst: [u8; 6],
    src_mac: [u8; 6],
    src_ip: Ipv4Addr,
    target_mac: [u8; 6],
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: EthernetAddress(src_mac),
        source_protocol_addr: src_ip,
        target_hardware_addr: EthernetAddress(target_mac),
        target_protocol_addr: target_ip,
    };
    let mut buf = vec![0u8; ETH_LEN + repr.buffer_len()];
    write_eth(&mut buf, eth_dst, src_mac, EthernetProtocol::Arp);
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[ETH_LEN..]));
    buf
}

/// An IPv4 packet (with Ethernet headroom) whose payload `fill` writes; checksums of the IP
/// header are filled, the payload's are up to `fill`.
pub fn ipv4_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    ttl: u8,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let total = 20 + payload_len;
    let mut buf = vec![0u8; ETH_LEN + total];
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[ETH_LEN..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len(u16::try_from(total).unwrap_or(u16::MAX));
        ip.set_dont_frag(true);
        ip.set_hop_limit(ttl);
        ip.set_next_header(protocol);
        ip.set_src_addr(src);
        ip.set_dst_addr(dst);
        ip.fill_checksum();
    }
    fill(&mut buf[ETH_LEN + 20..]);
    write_eth(&mut buf, [0; 6], [0; 6], EthernetProtocol::Ipv4);
    buf
}

/// An ICMP echo request as a bare IP packet (no Ethernet header), for [`crate::net::Sim::send_ip`].
pub fn icmp_echo_request(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let buf = ipv4_packet(src, dst, IpProtocol::Icmp, ttl, 8 + payload.len(), |p| {
        let mut icmp = Icmpv4Packet::new_unchecked(p);
        icmp.set_msg_type(Icmpv4Message::EchoRequest);
        icmp.set_msg_code(0);
        icmp.set_echo_ident(ident);
        icmp.set_echo_seq_no(seq);
        icmp.data_mut().copy_from_slice(payload);
        icmp.fill_checksum();
    });
    buf[ETH_LEN..].to_vec()
}

/// A UDP datagram as a bare IP packet (no Ethernet header), checksum filled.
pub fn udp_datagram(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let buf = ipv4_packet(src, dst, IpProtocol::Udp, ttl, 8 + payload.len(), |p| {
        write_udp(p, src, dst, src_port, dst_port, payload, true);
    });
    buf[ETH_LEN..].to_vec()
}

fn write_udp(
    p: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
    checksum: bool,
) {
    let mut udp = UdpPacket::new_unchecked(p);
    udp.set_src_port(src_port);
    udp.set_dst_port(dst_port);
    udp.set_len(u16::try_from(8 + payload.len()).unwrap_or(u16::MAX));
    udp.payload_mut()[..payload.len()].copy_from_slice(payload);
    if checksum {
        udp.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
    } else {
        udp.set_checksum(0);
    }
}

/// Turns the ICMP echo request `ip` (an IPv4 packet) into its reply in place: addresses
/// swapped, type 0, TTL 64, checksums refilled. Returns false if it is not an echo request.
pub fn echo_reply_in_place(ip: &mut [u8]) -> bool {
    let Ok(mut pkt) = Ipv4Packet::new_checked(&mut *ip) else { return false };
    let (src, dst) = (pkt.src_addr(), pkt.dst_addr());
    pkt.set_src_addr(dst);
    pkt.set_dst_addr(src);
    pkt.set_hop_limit(64);
    pkt.fill_checksum();
    let hl = usize::from(pkt.header_len());
    let total = usize::from(pkt.total_len());
    let Ok(mut icmp) = Icmpv4Packet::new_checked(&mut ip[hl..total]) else { return false };
    if icmp.msg_type() != Icmpv4Message::EchoRequest {
        return false;
    }
    icmp.set_msg_type(Icmpv4Message::EchoReply);
    icmp.fill_checksum();
    true
}

/// An ICMP error (`ty`/`code`) from `src` about the IPv4 packet `orig`, quoting as much of it
/// as RFC 1812 allows; `mtu` fills the next-hop MTU field of "fragmentation needed".
pub fn icmp_error(
    orig: &[u8],
    src: Ipv4Addr,
    ty: Icmpv4Message,
    code: u8,
    mtu: u16,
) -> Option<Vec<u8>> {
    let o = Ipv4Packet::new_checked(orig).ok()?;
    let dst = o.src_addr();
    let quote = orig.len().min(usize::from(o.total_len())).min(ICMP_QUOTE_MAX);
    Some(ipv4_packet(src, dst, IpProtocol::Icmp, 64, 8 + quote, |p| {
        let mut icmp = Icmpv4Packet::new_unchecked(p);
        icmp.set_msg_type(ty);
        icmp.set_msg_code(code);
        let hdr = icmp.into_inner();
        hdr[4..8].fill(0);
        hdr[6..8].copy_from_slice(&mtu.to_be_bytes());
        hdr[8..8 + quote].copy_from_slice(&orig[..quote]);
        Icmpv4Packet::new_unchecked(hdr).fill_checksum();
    }))
}

/// A TCP reset answering the TCP segment in the IPv4 packet `orig` (RFC 793 reset generation).
pub fn tcp_reset(orig: &[u8]) -> Option<Vec<u8>> {
    let o = Ipv4Packet::new_checked(orig).ok()?;
    let hl = usize::from(o.header_len());
    let total = usize::from(o.total_len());
    let t = TcpPacket::new_checked(orig.get(hl..total)?).ok()?;
    if t.rst() {
        return None;
    }
    let (src, dst) = (o.dst_addr(), o.src_addr());
    let (sport, dport) = (t.dst_port(), t.src_port());
    let (seq, ack, with_ack) = if t.ack() {
        (t.ack_number(), TcpSeqNumber(0), false)
    } else {
        let len = i32::try_from(t.segment_len()).unwrap_or(0);
        (TcpSeqNumber(0), t.seq_number() + len as usize, true)
    };
    Some(ipv4_packet(src, dst, IpProtocol::Tcp, 64, 20, |p| {
        let mut r = TcpPacket::new_unchecked(p);
        r.set_src_port(sport);
        r.set_dst_port(dport);
        r.set_seq_number(seq);
        r.set_ack_number(ack);
        r.set_header_len(20);
        r.clear_flags();
        r.set_rst(true);
        r.set_ack(with_ack);
        r.set_window_len(0);
        r.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
    }))
}

/// Wraps the Ethernet frame `inner` in IPv4/UDP/VXLAN (with Ethernet headroom in front).
pub fn vxlan_encap(
    inner: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    vni: u32,
) -> Vec<u8> {
    let udp_len = 8 + 8 + inner.len();
    ipv4_packet(src, dst, IpProtocol::Udp, 64, udp_len, |p| {
        let mut hdr = [0u8; 8];
        hdr[0] = 0x08;
        hdr[4..7].copy_from_slice(&vni.to_be_bytes()[1..4]);
        let mut udp = UdpPacket::new_unchecked(p);
        udp.set_src_port(src_port);
        udp.set_dst_port(dst_port);
        udp.set_len(u16::try_from(udp_len).unwrap_or(u16::MAX));
        udp.set_checksum(0);
        let payload = udp.payload_mut();
        payload[..8].copy_from_slice(&hdr);
        payload[8..8 + inner.len()].copy_from_slice(inner);
    })
}

/// The VNI and inner frame of a VXLAN payload (the bytes after the UDP header).
pub fn vxlan_decap(udp_payload: &[u8]) -> Option<(u32, &[u8])> {
    if udp_payload.len() < 8 + ETH_LEN || udp_payload[0] & 0x08 == 0 {
        return None;
    }
    let vni = u32::from_be_bytes([0, udp_payload[4], udp_payload[5], udp_payload[6]]);
    Some((vni, &udp_payload[8..]))
}

/// Decrements the TTL of the IPv4 packet `ip` and refreshes its header checksum.
pub fn decrement_ttl(ip: &mut [u8]) {
    let mut pkt = Ipv4Packet::new_unchecked(ip);
    let ttl = pkt.hop_limit();
    pkt.set_hop_limit(ttl.saturating_sub(1));
    pkt.fill_checksum();
}

/// Formats a MAC address the way iproute2 does.
pub fn fmt_mac(mac: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

/// The IPv4 address inside `addr`, if it is one.
pub fn v4(addr: IpAddr) -> Option<Ipv4Addr> {
    match addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{L4Summary, parse_ip};

    #[test]
    fn echo_request_becomes_reply() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let mut p = icmp_echo_request(a, b, 7, 1, 64, b"abc");
        assert!(echo_reply_in_place(&mut p));
        let s = parse_ip(&p).unwrap();
        assert_eq!((s.src, s.dst), (IpAddr::V4(b), IpAddr::V4(a)));
        assert!(matches!(s.l4, L4Summary::Icmp { ty: 0, echo_id: Some(7), .. }));
        assert!(Ipv4Packet::new_checked(&p[..]).unwrap().verify_checksum());
        assert!(!echo_reply_in_place(&mut p), "a reply is not answered again");
    }

    #[test]
    fn icmp_error_quotes_the_original() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 1, 2);
        let orig = udp_datagram(a, b, 40000, 33434, 1, &[0u8; 32]);
        let r = Ipv4Addr::new(10, 0, 0, 254);
        let e = icmp_error(&orig, r, Icmpv4Message::TimeExceeded, 0, 0).unwrap();
        let s = parse_ip(&e[ETH_LEN..]).unwrap();
        assert_eq!((s.src, s.dst), (IpAddr::V4(r), IpAddr::V4(a)));
        assert!(matches!(s.l4, L4Summary::Icmp { ty: 11, is_error: true, .. }));
        assert_eq!(&e[ETH_LEN + 28..], &orig[..]);
        let icmp = Icmpv4Packet::new_checked(&e[ETH_LEN + 20..]).unwrap();
        assert!(icmp.verify_checksum());
    }

    #[test]
    fn vxlan_round_trip_and_reset() {
        let inner = [0xabu8; 60];
        let a = Ipv4Addr::new(192, 168, 0, 11);
        let b = Ipv4Addr::new(192, 168, 0, 12);
        let f = vxlan_encap(&inner, a, b, 50000, 4789, 42);
        let s = parse_ip(&f[ETH_LEN..]).unwrap();
        assert_eq!(s.ports(), Some((50000, 4789)));
        assert_eq!(vxlan_decap(&f[ETH_LEN + 28..]), Some((42, &inner[..])));
        assert!(tcp_reset(&orig_udp()).is_none(), "only TCP segments are reset");
    }

    fn orig_udp() -> Vec<u8> {
        udp_datagram(Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2), 1, 2, 64, b"")
    }
}
