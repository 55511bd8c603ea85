//! NAT rewriting of IPv4 packets in place: addresses, TCP/UDP ports and ICMP echo identifiers,
//! with every checksum kept correct, and the packet quoted inside an ICMP error.
//!
//! Checksums of transport headers are adjusted incrementally (RFC 1624), so a rewrite costs the
//! same for a 40-byte ACK and a 64 KiB segment. IP header checksums and the checksum of an ICMP
//! error (which covers the quoted packet) are recomputed, since they cover few bytes.
//! A UDP checksum of zero means "none" and stays zero.

use std::net::Ipv4Addr;

use smoltcp::wire::{Icmpv4Packet, Ipv4Packet};

/// Which end of a packet a rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// The source address and port (SNAT, MASQUERADE, and the reversal of DNAT on replies).
    Src,
    /// The destination address and port (DNAT, and the reversal of SNAT on replies).
    Dst,
}

/// Why a packet could not be rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The IPv4 header is truncated or inconsistent.
    #[error("malformed IPv4 header")]
    Ip,
    /// The packet is not an ICMP error quoting an IPv4 packet.
    #[error("not an ICMP error quoting an IPv4 packet")]
    NotIcmpError,
}

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Rewrites one end of the IPv4 packet at the start of `bytes`: the address becomes `addr` and,
/// when `port` is given, the TCP/UDP port (or, for an ICMP echo request or reply, the echo
/// identifier) becomes `port`. All affected checksums stay valid.
pub fn rewrite_ipv4(
    bytes: &mut [u8],
    end: End,
    addr: Ipv4Addr,
    port: Option<u16>,
) -> Result<(), RewriteError> {
    let (ihl, total) = ipv4_bounds(bytes)?;
    let old_addr = set_addr(&mut bytes[..ihl], end, addr);
    Ipv4Packet::new_unchecked(&mut bytes[..ihl]).fill_checksum();
    let protocol = bytes[9];
    // Only the first fragment carries the transport header.
    let fragment_offset = u16::from_be_bytes([bytes[6], bytes[7]]) & 0x1fff;
    if fragment_offset != 0 {
        return Ok(());
    }
    rewrite_l4(&mut bytes[ihl..total], protocol, end, &old_addr, &addr.octets(), port);
    Ok(())
}

/// Rewrites one end of the IPv4 packet quoted inside the ICMP error at the start of `bytes`
/// (the embedded header and as much of its transport header as is quoted), then recomputes the
/// ICMP checksum. `end` names the end of the *quoted* packet.
pub fn rewrite_icmp_inner(
    bytes: &mut [u8],
    end: End,
    addr: Ipv4Addr,
    port: Option<u16>,
) -> Result<(), RewriteError> {
    let (ihl, total) = ipv4_bounds(bytes)?;
    if bytes[9] != PROTO_ICMP {
        return Err(RewriteError::NotIcmpError);
    }
    let icmp = &mut bytes[ihl..total];
    if icmp.len() < 8 + 20 || !matches!(icmp[0], 3 | 4 | 5 | 11 | 12) {
        return Err(RewriteError::NotIcmpError);
    }
    let inner = &mut icmp[8..];
    if inner[0] >> 4 != 4 {
        return Err(RewriteError::NotIcmpError);
    }
    let inner_ihl = usize::from(inner[0] & 0x0f) * 4;
    if inner_ihl < 20 || inner.len() < inner_ihl {
        return Err(RewriteError::NotIcmpError);
    }
    let old_addr = set_addr(&mut inner[..inner_ihl], end, addr);
    let sum = u16::from_be_bytes([inner[10], inner[11]]);
    let sum = csum_adjust(sum, &old_addr, &addr.octets());
    inner[10..12].copy_from_slice(&sum.to_be_bytes());
    let protocol = inner[9];
    rewrite_l4(&mut inner[inner_ihl..], protocol, end, &old_addr, &addr.octets(), port);
    Icmpv4Packet::new_unchecked(icmp).fill_checksum();
    Ok(())
}

/// The IPv4 header length and total length, checked against the buffer.
fn ipv4_bounds(bytes: &[u8]) -> Result<(usize, usize), RewriteError> {
    let packet = Ipv4Packet::new_checked(bytes).map_err(|_| RewriteError::Ip)?;
    Ok((usize::from(packet.header_len()), usize::from(packet.total_len())))
}

/// Writes `addr` into the address field of `end`, returning the old octets.
fn set_addr(header: &mut [u8], end: End, addr: Ipv4Addr) -> [u8; 4] {
    let offset = match end {
        End::Src => 12,
        End::Dst => 16,
    };
    let mut old = [0u8; 4];
    old.copy_from_slice(&header[offset..offset + 4]);
    header[offset..offset + 4].copy_from_slice(&addr.octets());
    old
}

/// Rewrites the port (or echo identifier) of a transport header, which may be truncated (as in
/// a quoted packet), and adjusts its checksum for the address change when the checksum is there.
fn rewrite_l4(
    l4: &mut [u8],
    protocol: u8,
    end: End,
    old_addr: &[u8; 4],
    new_addr: &[u8; 4],
    port: Option<u16>,
) {
    let port_offset = match end {
        End::Src => 0,
        End::Dst => 2,
    };
    match protocol {
        PROTO_TCP | PROTO_UDP => {
            let sum_offset = if protocol == PROTO_TCP { 16 } else { 6 };
            let mut old_port = [0u8; 2];
            let mut new_port = [0u8; 2];
            if let Some(port) = port
                && l4.len() >= port_offset + 2
            {
                old_port.copy_from_slice(&l4[port_offset..port_offset + 2]);
                new_port = port.to_be_bytes();
                l4[port_offset..port_offset + 2].copy_from_slice(&new_port);
            }
            if l4.len() >= sum_offset + 2 {
                let sum = u16::from_be_bytes([l4[sum_offset], l4[sum_offset + 1]]);
                if protocol == PROTO_UDP && sum == 0 {
                    return;
                }
                let mut sum = csum_adjust(sum, old_addr, new_addr);
                if port.is_some() {
                    sum = csum_adjust(sum, &old_port, &new_port);
                }
                if protocol == PROTO_UDP && sum == 0 {
                    sum = 0xffff;
                }
                l4[sum_offset..sum_offset + 2].copy_from_slice(&sum.to_be_bytes());
            }
        }
        PROTO_ICMP => {
            // ICMP has no pseudo-header; only an echo identifier change touches its checksum.
            if let Some(id) = port
                && l4.len() >= 6
                && matches!(l4[0], 0 | 8)
            {
                let old = [l4[4], l4[5]];
                let new = id.to_be_bytes();
                l4[4..6].copy_from_slice(&new);
                if l4.len() >= 4 {
                    let sum = u16::from_be_bytes([l4[2], l4[3]]);
                    let sum = csum_adjust(sum, &old, &new);
                    l4[2..4].copy_from_slice(&sum.to_be_bytes());
                }
            }
        }
        _ => {}
    }
}

/// Adjusts the one's-complement checksum `sum` for 16-bit-aligned bytes changing from `old` to
/// `new` (RFC 1624, equation 3: `HC' = ~(~HC + ~m + m')`).
fn csum_adjust(sum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = u32::from(!sum);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        acc += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        IpAddress, IpProtocol, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket,
        UdpRepr,
    };

    fn ip(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, len: usize) -> (Ipv4Repr, Vec<u8>) {
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: proto,
            payload_len: len,
            hop_limit: 64,
        };
        let mut buf = vec![0u8; repr.buffer_len() + len];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf), &ChecksumCapabilities::default());
        (repr, buf)
    }

    fn tcp_packet(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
        let payload = b"GET / HTTP/1.1\r\n\r\n";
        let tcp = TcpRepr {
            src_port: sport,
            dst_port: dport,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(1000),
            ack_number: Some(TcpSeqNumber(77)),
            window_len: 1024,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let (_, mut buf) = ip(src, dst, IpProtocol::Tcp, tcp.buffer_len());
        let mut pkt = Ipv4Packet::new_unchecked(&mut buf);
        tcp.emit(
            &mut TcpPacket::new_unchecked(pkt.payload_mut()),
            &IpAddress::Ipv4(src),
            &IpAddress::Ipv4(dst),
            &ChecksumCapabilities::default(),
        );
        buf
    }

    fn verify_tcp(buf: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
        let pkt = Ipv4Packet::new_checked(buf).unwrap();
        assert!(pkt.verify_checksum());
        let tcp = TcpPacket::new_checked(pkt.payload()).unwrap();
        assert!(
            tcp.verify_checksum(&IpAddress::Ipv4(pkt.src_addr()), &IpAddress::Ipv4(pkt.dst_addr()))
        );
        (pkt.src_addr(), tcp.src_port(), pkt.dst_addr(), tcp.dst_port())
    }

    #[test]
    fn tcp_rewrite_keeps_checksums() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 96, 0, 10);
        let c = Ipv4Addr::new(10, 244, 1, 7);
        let mut buf = tcp_packet(a, 40000, b, 80);
        rewrite_ipv4(&mut buf, End::Dst, c, Some(8080)).unwrap();
        assert_eq!(verify_tcp(&buf), (a, 40000, c, 8080));
        rewrite_ipv4(&mut buf, End::Src, Ipv4Addr::new(192, 168, 1, 1), None).unwrap();
        assert_eq!(verify_tcp(&buf), (Ipv4Addr::new(192, 168, 1, 1), 40000, c, 8080));
    }

    #[test]
    fn udp_rewrite_keeps_checksum_and_zero_stays_zero() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let udp = UdpRepr { src_port: 5353, dst_port: 53 };
        let (_, mut buf) = ip(a, b, IpProtocol::Udp, 8 + 3);
        let mut pkt = Ipv4Packet::new_unchecked(&mut buf);
        udp.emit(
            &mut UdpPacket::new_unchecked(pkt.payload_mut()),
            &IpAddress::Ipv4(a),
            &IpAddress::Ipv4(b),
            3,
            |p| p.copy_from_slice(b"abc"),
            &ChecksumCapabilities::default(),
        );
        let mut no_sum = buf.clone();
        no_sum[20 + 6] = 0;
        no_sum[20 + 7] = 0;
        let c = Ipv4Addr::new(172, 16, 0, 9);
        rewrite_ipv4(&mut buf, End::Src, c, Some(1234)).unwrap();
        let pkt = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(pkt.verify_checksum());
        let u = UdpPacket::new_checked(pkt.payload()).unwrap();
        assert_eq!(u.src_port(), 1234);
        assert!(u.verify_checksum(&IpAddress::Ipv4(c), &IpAddress::Ipv4(b)));
        rewrite_ipv4(&mut no_sum, End::Src, c, Some(1234)).unwrap();
        assert_eq!(&no_sum[26..28], &[0, 0]);
    }

    #[test]
    fn adjust_matches_full_recompute() {
        // Changing a word and adjusting must equal computing from scratch.
        let mut data = [0x45u8, 0x00, 0x12, 0x34, 0xab, 0xcd, 0x00, 0x00];
        let full = |d: &[u8]| {
            let mut acc = 0u32;
            for w in d.chunks_exact(2) {
                acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
            }
            while acc >> 16 != 0 {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            !(acc as u16)
        };
        let sum = full(&data);
        let old = [data[2], data[3]];
        data[2] = 0xff;
        data[3] = 0x01;
        assert_eq!(csum_adjust(sum, &old, &data[2..4]), full(&data));
        assert_eq!(
            rewrite_ipv4(&mut [0u8; 10], End::Src, Ipv4Addr::LOCALHOST, None),
            Err(RewriteError::Ip)
        );
    }
}
