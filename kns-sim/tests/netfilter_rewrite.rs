//! Property: NAT rewriting keeps every checksum valid (checked by smoltcp) for any addresses,
//! ports and payloads, including the packet quoted by an ICMP error; and processing is
//! deterministic.

use std::net::Ipv4Addr;

use kns_sim::Time;
use kns_sim::netfilter::{Hook, HookContext, Netfilter};
use kns_sim::wire::parse_ip;
use kns_sim::wire::rewrite::{End, rewrite_icmp_inner, rewrite_ipv4};
use proptest::prelude::*;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4DstUnreachable, Icmpv4Packet, Icmpv4Repr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr,
    TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

fn build(
    tcp: bool,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    let (s, d) = (IpAddress::Ipv4(src), IpAddress::Ipv4(dst));
    let (proto, len) = if tcp {
        (IpProtocol::Tcp, 20 + payload.len())
    } else {
        (IpProtocol::Udp, 8 + payload.len())
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: len,
        hop_limit: 64,
    };
    let mut buf = vec![0u8; 20 + len];
    let mut pkt = Ipv4Packet::new_unchecked(&mut buf);
    ip.emit(&mut pkt, &caps);
    if tcp {
        let repr = TcpRepr {
            src_port: sport,
            dst_port: dport,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(7),
            ack_number: Some(TcpSeqNumber(9)),
            window_len: 512,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        repr.emit(&mut TcpPacket::new_unchecked(pkt.payload_mut()), &s, &d, &caps);
    } else {
        UdpRepr { src_port: sport, dst_port: dport }.emit(
            &mut UdpPacket::new_unchecked(pkt.payload_mut()),
            &s,
            &d,
            payload.len(),
            |b| b.copy_from_slice(payload),
            &caps,
        );
    }
    buf
}

fn checksums_ok(buf: &[u8]) -> bool {
    let ip = Ipv4Packet::new_checked(buf).unwrap();
    let (s, d) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
    ip.verify_checksum()
        && match ip.next_header() {
            IpProtocol::Tcp => {
                TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum(&s, &d)
            }
            IpProtocol::Udp => {
                UdpPacket::new_checked(ip.payload()).unwrap().verify_checksum(&s, &d)
            }
            IpProtocol::Icmp => {
                let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
                icmp.verify_checksum() && checksums_ok(icmp.data())
            }
            _ => true,
        }
}

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

proptest! {
    #[test]
    fn rewrite_keeps_checksums(
        tcp in any::<bool>(),
        src in addr(), sport in 1u16.., dst in addr(), dport in 1u16..,
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        new_addr in addr(), new_port in 1u16.., to_src in any::<bool>(), with_port in any::<bool>(),
    ) {
        let mut buf = build(tcp, src, sport, dst, dport, &payload);
        let end = if to_src { End::Src } else { End::Dst };
        let port = with_port.then_some(new_port);
        rewrite_ipv4(&mut buf, end, new_addr, port).unwrap();
        prop_assert!(checksums_ok(&buf));
        let s = parse_ip(&buf).unwrap();
        let (ps, pd) = s.ports().unwrap();
        if to_src {
            prop_assert_eq!((s.src, ps), (new_addr.into(), port.unwrap_or(sport)));
            prop_assert_eq!((s.dst, pd), (dst.into(), dport));
        } else {
            prop_assert_eq!((s.dst, pd), (new_addr.into(), port.unwrap_or(dport)));
            prop_assert_eq!((s.src, ps), (src.into(), sport));
        }

        // The same packet quoted by an ICMP error: rewriting inside keeps both layers valid.
        let quoted = Ipv4Packet::new_checked(&buf[..]).unwrap();
        let header = Ipv4Repr::parse(&quoted, &ChecksumCapabilities::default()).unwrap();
        let icmp = Icmpv4Repr::DstUnreachable { reason: Icmpv4DstUnreachable::PortUnreachable, header, data: quoted.payload() };
        let ip = Ipv4Repr { src_addr: dst, dst_addr: src, next_header: IpProtocol::Icmp, payload_len: icmp.buffer_len(), hop_limit: 64 };
        let mut err = vec![0u8; 20 + icmp.buffer_len()];
        let mut pkt = Ipv4Packet::new_unchecked(&mut err);
        ip.emit(&mut pkt, &ChecksumCapabilities::default());
        icmp.emit(&mut Icmpv4Packet::new_unchecked(pkt.payload_mut()), &ChecksumCapabilities::default());
        rewrite_icmp_inner(&mut err, end, src, Some(sport)).unwrap();
        prop_assert!(checksums_ok(&err));
    }
}

fn scenario() -> (Vec<Vec<u8>>, String, Vec<String>) {
    let mut nf = Netfilter::new();
    nf.set_notes(true);
    let args = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    nf.iptables(Time::ZERO, &args("-t nat -A POSTROUTING -o eth0 -j MASQUERADE")).unwrap();
    let post = HookContext {
        out_iface: Some("eth0"),
        out_addr: Some("192.0.2.1".parse().unwrap()),
        ..HookContext::default()
    };
    let mut out = Vec::new();
    for i in 0..50u16 {
        let src = Ipv4Addr::new(10, 0, (i % 3) as u8, 1);
        let mut buf = build(i % 2 == 0, src, 1024 + i % 5, Ipv4Addr::new(8, 8, 8, 8), 53, b"x");
        let mut s = parse_ip(&buf).unwrap();
        let now = Time::from_secs(u64::from(i));
        nf.process(now, Hook::Postrouting, &post, &mut buf, &mut s);
        out.push(buf);
    }
    (out, nf.conntrack_list(Time::from_secs(50)), nf.take_notes())
}

#[test]
fn processing_is_deterministic() {
    let first = scenario();
    assert_eq!(first, scenario());
    assert!(first.1.contains("flow entries"));
    assert!(first.2.iter().any(|n| n.starts_with("nat POSTROUTING rule 1: SNAT")));
}
