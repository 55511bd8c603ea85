//! The IPv4 layer: receive (PREROUTING, INPUT, local delivery), forward (TTL, MTU, FORWARD),
//! local output (OUTPUT, re-route after NAT, POSTROUTING), ICMP errors, REJECT answers, and the
//! replies of a namespace without a socket layer.

use super::dataplane::At;
use super::packet::{self, ETH_LEN};
use super::trace::describe;
use super::{Frame, IfaceId, NetnsId, Sim, TraceWhat};
use crate::drop::DropReason;
use crate::netfilter::{Hook, HookContext, RejectWith, Verdict};
use crate::wire::{L4Summary, PacketSummary, parse_ip};
use smoltcp::wire::{Icmpv4Message, Ipv4Packet};
use std::net::{IpAddr, Ipv4Addr};

impl Sim {
    /// Whether `addr` is one of the namespace's own addresses on an up interface.
    pub(crate) fn is_own_addr(&self, ns: NetnsId, addr: IpAddr) -> bool {
        self.namespaces[ns.0 as usize].local.own.contains(&addr)
    }

    /// Whether a packet to `dst` is for this namespace (own address, loopback range, broadcast).
    pub(crate) fn is_local_dst(&self, ns: NetnsId, dst: IpAddr) -> bool {
        if let IpAddr::V4(a) = dst
            && a.is_broadcast()
        {
            return true;
        }
        let l = &self.namespaces[ns.0 as usize].local;
        l.own.contains(&dst)
            || l.broadcast.contains(&dst)
            || l.loopback.iter().any(|n| n.contains(&dst))
    }

    /// The output interface and next hop for a locally sent packet to `dst`.
    pub(crate) fn route_output(&self, ns: NetnsId, dst: IpAddr) -> Option<(IfaceId, IpAddr)> {
        let n = &self.namespaces[ns.0 as usize];
        // Broadcasts leave by the routed interface, to the broadcast MAC.
        let bcast =
            matches!(dst, IpAddr::V4(a) if a.is_broadcast()) || n.local.broadcast.contains(&dst);
        if !bcast && self.is_local_dst(ns, dst) {
            return Some((n.lo, dst));
        }
        n.routes.lookup(dst).map(|r| (r.dev, if bcast { dst } else { r.via.unwrap_or(dst) }))
    }

    /// The source address `iface` would use toward `dst`.
    pub(super) fn iface_src(&self, iface: IfaceId, dst: IpAddr) -> Option<IpAddr> {
        let ifc = &self.ifaces[iface.0 as usize];
        let same = |a: &ipnet::IpNet| a.addr().is_ipv4() == dst.is_ipv4();
        ifc.addrs
            .iter()
            .find(|a| same(a) && a.contains(&dst))
            .or_else(|| ifc.addrs.iter().find(|a| same(a)))
            .map(|a| a.addr())
    }

    /// Linux-like source address selection for a packet from `ns` to `dst`.
    pub(crate) fn select_src(&self, ns: NetnsId, dst: IpAddr) -> IpAddr {
        let n = &self.namespaces[ns.0 as usize];
        if self.is_local_dst(ns, dst) {
            return dst;
        }
        if let Some(r) = n.routes.lookup(dst) {
            if let Some(src) = r.src {
                return src;
            }
            if let Some(a) = self.iface_src(r.dev, r.via.unwrap_or(dst)) {
                return a;
            }
        }
        n.ifaces.values().filter(|i| **i != n.lo).find_map(|i| self.iface_src(*i, dst)).unwrap_or(
            match dst {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            },
        )
    }

    pub(super) fn primary_v4(&self, iface: IfaceId) -> Option<IpAddr> {
        self.ifaces[iface.0 as usize].addrs.iter().map(|a| a.addr()).find(|a| a.is_ipv4())
    }

    /// Runs one netfilter hook.
    pub(super) fn run_hook(
        &mut self,
        ns: NetnsId,
        hook: Hook,
        at: At,
        frame: &mut Frame,
        s: &mut PacketSummary,
    ) -> Verdict {
        let At { in_if, out_if, ports } = at;
        let now = self.now();
        let before = *s;
        let out_addr = out_if.and_then(|i| self.primary_v4(i));
        let ifaces = &self.ifaces;
        let name = |i: Option<IfaceId>| i.map(|i| ifaces[i.0 as usize].name.as_str());
        // `..Default::default()` keeps this compiling if the netfilter layer adds context.
        #[allow(clippy::needless_update)]
        let ctx = HookContext {
            in_iface: name(in_if),
            out_iface: name(out_if),
            out_addr,
            in_port: name(ports.0),
            out_port: name(ports.1),
            ..HookContext::default()
        };
        let nf = &mut self.namespaces[ns.0 as usize].netfilter;
        let v = nf.process(now, hook, &ctx, &mut frame.buf[ETH_LEN..], s);
        // Notes (rules matched, conntrack state, NAT) are collected only while tracing.
        let nf_notes = if self.trace.is_some() { nf.take_notes() } else { Vec::new() };
        if self.tracing() && (v != Verdict::Accept || *s != before || !nf_notes.is_empty()) {
            let verdict = match &v {
                Verdict::Accept => "ACCEPT".to_string(),
                Verdict::Drop(_) => "DROP".to_string(),
                Verdict::Reject(_, w) => format!("REJECT ({w:?})"),
            };
            let mut notes = nf_notes;
            if *s != before {
                notes.push(format!("rewritten from {}", describe(&before)));
            }
            let dev = out_if.or(in_if);
            self.tr(ns, dev, frame.id, TraceWhat::Hook { hook, verdict, notes }, &frame.buf);
        }
        v
    }

    /// Applies a hook's verdict: the frame back on ACCEPT, otherwise counted as dropped (and
    /// answered with an ICMP error or TCP reset on REJECT).
    pub(super) fn apply_verdict(
        &mut self,
        ns: NetnsId,
        dev: Option<IfaceId>,
        frame: Frame,
        s: &PacketSummary,
        v: Verdict,
    ) -> Option<Frame> {
        match v {
            Verdict::Accept => Some(frame),
            Verdict::Drop(reason) => {
                self.drop_frame(ns, dev, frame, reason);
                None
            }
            Verdict::Reject(reason, with) => {
                let ip = &frame.buf[ETH_LEN..];
                let hint = self.is_own_addr(ns, s.dst).then_some(s.dst);
                match with {
                    RejectWith::TcpReset if matches!(s.l4, L4Summary::Tcp { .. }) => {
                        if let Some(rst) = packet::tcp_reset(ip) {
                            let f = self.new_frame(rst);
                            self.ip_local_out(ns, f);
                        }
                    }
                    RejectWith::IcmpHostUnreachable => {
                        self.icmp_error_for(ns, ip, Icmpv4Message::DstUnreachable, 1, 0, hint)
                    }
                    RejectWith::IcmpAdminProhibited => {
                        self.icmp_error_for(ns, ip, Icmpv4Message::DstUnreachable, 13, 0, hint)
                    }
                    _ => self.icmp_error_for(ns, ip, Icmpv4Message::DstUnreachable, 3, 0, hint),
                }
                self.drop_frame(ns, dev, frame, reason);
                None
            }
        }
    }

    /// Sends an ICMP error about the IPv4 packet `orig` to its source, unless RFC 1122 forbids
    /// it (errors about errors, broadcasts, multicasts, unspecified sources).
    pub(crate) fn icmp_error_for(
        &mut self,
        ns: NetnsId,
        orig: &[u8],
        ty: Icmpv4Message,
        code: u8,
        mtu: u16,
        src_hint: Option<IpAddr>,
    ) {
        let Ok(s) = parse_ip(orig) else { return };
        let (IpAddr::V4(osrc), IpAddr::V4(odst)) = (s.src, s.dst) else { return };
        if matches!(s.l4, L4Summary::Icmp { is_error: true, .. })
            || osrc.is_unspecified()
            || osrc.is_broadcast()
            || osrc.is_multicast()
            || odst.is_broadcast()
            || odst.is_multicast()
        {
            return;
        }
        if Ipv4Packet::new_unchecked(orig).frag_offset() != 0 {
            return;
        }
        let src = src_hint.unwrap_or_else(|| self.select_src(ns, s.src));
        let Some(src) = packet::v4(src) else { return };
        if let Some(err) = packet::icmp_error(orig, src, ty, code, mtu) {
            let f = self.new_frame(err);
            self.ip_local_out(ns, f);
        }
    }

    pub(super) fn route_text(&self, dst: IpAddr, nexthop: IpAddr, out: IfaceId) -> String {
        let dev = &self.ifaces[out.0 as usize].name;
        if nexthop == dst {
            format!("{dst} dev {dev}")
        } else {
            format!("{dst} via {nexthop} dev {dev}")
        }
    }

    /// Reports an error about a locally sent packet straight to the local socket layer, as Linux
    /// reports it to the sending socket (no loopback, no hooks): `From 10.0.0.1 ... Destination
    /// Host Unreachable`.
    pub(super) fn icmp_error_local(
        &mut self,
        ns: NetnsId,
        orig: &[u8],
        ty: Icmpv4Message,
        code: u8,
        mtu: u16,
    ) {
        let Ok(s) = parse_ip(orig) else { return };
        let Some(src) = packet::v4(s.src) else { return };
        if matches!(s.l4, L4Summary::Icmp { is_error: true, .. }) || src.is_unspecified() {
            return;
        }
        let Some(err) = packet::icmp_error(orig, src, ty, code, mtu) else { return };
        let f = self.new_frame(err);
        let now = self.now();
        if let Some(stack) = self.namespaces[ns.0 as usize].stack.as_mut() {
            stack.receive(now, &f.buf[ETH_LEN..]);
            self.delivered(ns, None, &f, "socket layer (local error)");
            self.poll_stack(ns);
        } else {
            self.delivered(ns, None, &f, "IP layer (local error)");
        }
    }

    /// An IP packet arrived on `iface` (link layer accepted it).
    pub(super) fn ip_rcv(&mut self, iface: IfaceId, mut frame: Frame) {
        let ns = self.ns_of(iface);
        let Ok(mut s) = parse_ip(&frame.buf[ETH_LEN..]) else {
            return self.drop_frame(ns, Some(iface), frame, DropReason::Malformed("IPv4"));
        };
        let v = self.run_hook(
            ns,
            Hook::Prerouting,
            At { in_if: Some(iface), out_if: None, ports: (None, None) },
            &mut frame,
            &mut s,
        );
        let Some(mut frame) = self.apply_verdict(ns, Some(iface), frame, &s, v) else { return };
        if self.is_local_dst(ns, s.dst) {
            let v = self.run_hook(
                ns,
                Hook::Input,
                At { in_if: Some(iface), out_if: None, ports: (None, None) },
                &mut frame,
                &mut s,
            );
            let Some(frame) = self.apply_verdict(ns, Some(iface), frame, &s, v) else { return };
            return self.local_deliver(ns, iface, frame, &s);
        }
        if let IpAddr::V4(d) = s.dst
            && d.is_multicast()
        {
            return self.drop_frame(ns, Some(iface), frame, DropReason::NotForUs);
        }
        if !self.namespaces[ns.0 as usize].ip_forward {
            return self.drop_frame(ns, Some(iface), frame, DropReason::ForwardingDisabled);
        }
        // Like Linux (icmp_errors_use_inbound_ifaddr = 0), errors about forwarded packets take
        // the source address of the route back to the sender.
        let hint = None;
        let Some(route) = self.namespaces[ns.0 as usize].routes.lookup(s.dst) else {
            self.icmp_error_for(
                ns,
                &frame.buf[ETH_LEN..],
                Icmpv4Message::DstUnreachable,
                0,
                0,
                hint,
            );
            return self.drop_frame(ns, Some(iface), frame, DropReason::NoRoute);
        };
        let (out, nexthop) = (route.dev, route.via.unwrap_or(s.dst));
        if self.tracing() {
            let text = self.route_text(s.dst, nexthop, out);
            self.tr(ns, Some(iface), frame.id, TraceWhat::Route(text), &frame.buf);
        }
        if s.ttl <= 1 {
            self.icmp_error_for(ns, &frame.buf[ETH_LEN..], Icmpv4Message::TimeExceeded, 0, 0, hint);
            return self.drop_frame(ns, Some(iface), frame, DropReason::TtlExceeded);
        }
        let mtu = self.ifaces[out.0 as usize].mtu as usize;
        if s.total_len > mtu {
            if Ipv4Packet::new_unchecked(&frame.buf[ETH_LEN..]).dont_frag() {
                let m = u16::try_from(mtu).unwrap_or(u16::MAX);
                self.icmp_error_for(
                    ns,
                    &frame.buf[ETH_LEN..],
                    Icmpv4Message::DstUnreachable,
                    4,
                    m,
                    hint,
                );
            }
            return self.drop_frame(ns, Some(iface), frame, DropReason::Mtu);
        }
        packet::decrement_ttl(&mut frame.buf[ETH_LEN..]);
        s.ttl -= 1;
        let v = self.run_hook(
            ns,
            Hook::Forward,
            At { in_if: Some(iface), out_if: Some(out), ports: (None, None) },
            &mut frame,
            &mut s,
        );
        let Some(frame) = self.apply_verdict(ns, Some(iface), frame, &s, v) else { return };
        self.post_routing(ns, out, nexthop, frame, s, true);
    }

    pub(super) fn post_routing(
        &mut self,
        ns: NetnsId,
        out: IfaceId,
        nexthop: IpAddr,
        mut frame: Frame,
        mut s: PacketSummary,
        forwarded: bool,
    ) {
        let v = self.run_hook(
            ns,
            Hook::Postrouting,
            At { in_if: None, out_if: Some(out), ports: (None, None) },
            &mut frame,
            &mut s,
        );
        let Some(frame) = self.apply_verdict(ns, Some(out), frame, &s, v) else { return };
        self.neigh_output(out, nexthop, frame, forwarded);
    }

    /// A packet generated in `ns` (socket layer, ICMP, tunnel) leaves through its IP layer.
    pub(crate) fn ip_local_out(&mut self, ns: NetnsId, mut frame: Frame) {
        let Ok(mut s) = parse_ip(&frame.buf[ETH_LEN..]) else {
            return self.drop_frame(ns, None, frame, DropReason::Malformed("IPv4"));
        };
        let Some((mut out, mut nexthop)) = self.route_output(ns, s.dst) else {
            return self.drop_frame(ns, None, frame, DropReason::NoRoute);
        };
        let dst = s.dst;
        let v = self.run_hook(
            ns,
            Hook::Output,
            At { in_if: None, out_if: Some(out), ports: (None, None) },
            &mut frame,
            &mut s,
        );
        let Some(frame) = self.apply_verdict(ns, Some(out), frame, &s, v) else { return };
        if s.dst != dst {
            match self.route_output(ns, s.dst) {
                Some(r) => (out, nexthop) = r,
                None => return self.drop_frame(ns, None, frame, DropReason::NoRoute),
            }
        }
        if self.tracing() {
            let text = self.route_text(s.dst, nexthop, out);
            self.tr(ns, None, frame.id, TraceWhat::Route(text), &frame.buf);
        }
        let mtu = self.ifaces[out.0 as usize].mtu as usize;
        if s.total_len > mtu {
            if Ipv4Packet::new_unchecked(&frame.buf[ETH_LEN..]).dont_frag() {
                let m = u16::try_from(mtu).unwrap_or(u16::MAX);
                let orig = &frame.buf[ETH_LEN..];
                self.icmp_error_local(ns, orig, Icmpv4Message::DstUnreachable, 4, m);
            }
            return self.drop_frame(ns, Some(out), frame, DropReason::Mtu);
        }
        self.post_routing(ns, out, nexthop, frame, s, false);
    }

    /// A packet for this namespace passed INPUT.
    pub(super) fn local_deliver(
        &mut self,
        ns: NetnsId,
        iface: IfaceId,
        frame: Frame,
        s: &PacketSummary,
    ) {
        let Some(mut frame) = self.vxlan_rcv(ns, frame, s) else { return };
        let now = self.now();
        let end = (ETH_LEN + s.total_len).min(frame.buf.len());
        if let Some(stack) = self.namespaces[ns.0 as usize].stack.as_mut() {
            stack.receive(now, &frame.buf[ETH_LEN..end]);
            self.delivered(ns, Some(iface), &frame, "socket layer");
            return self.poll_stack(ns);
        }
        // No socket layer: the IP layer answers like a Linux host with nothing listening.
        self.delivered(ns, Some(iface), &frame, "IP layer");
        let broadcast = !self.is_own_addr(ns, s.dst);
        match s.l4 {
            L4Summary::Icmp { ty: 8, .. } if !broadcast => {
                frame.buf.truncate(end);
                if packet::echo_reply_in_place(&mut frame.buf[ETH_LEN..]) {
                    let reply = std::mem::take(&mut frame.buf);
                    let f = self.new_frame(reply);
                    self.ip_local_out(ns, f);
                }
            }
            L4Summary::Udp { .. } if !broadcast => {
                let hint = Some(s.dst);
                self.icmp_error_for(
                    ns,
                    &frame.buf[ETH_LEN..end],
                    Icmpv4Message::DstUnreachable,
                    3,
                    0,
                    hint,
                );
            }
            L4Summary::Tcp { .. } if !broadcast => {
                if let Some(rst) = packet::tcp_reset(&frame.buf[ETH_LEN..end]) {
                    let f = self.new_frame(rst);
                    self.ip_local_out(ns, f);
                }
            }
            // No SCTP handler here: like a Linux host without the sctp module, answer ICMP
            // protocol unreachable. (A namespace with a SmolStack answers like a host with the
            // module loaded: INIT ACK or ABORT.)
            L4Summary::Sctp { .. } if !broadcast => {
                let hint = Some(s.dst);
                self.icmp_error_for(
                    ns,
                    &frame.buf[ETH_LEN..end],
                    Icmpv4Message::DstUnreachable,
                    2,
                    0,
                    hint,
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::IpStack;
    use crate::time::Time;

    #[derive(Default)]
    struct Sink(Vec<Vec<u8>>);

    impl IpStack for Sink {
        fn receive(&mut self, _now: Time, packet: &[u8]) {
            self.0.push(packet.to_vec());
        }
        fn poll(&mut self, _now: Time, _out: &mut Vec<Vec<u8>>) {}
        fn poll_at(&self, _now: Time) -> Option<Time> {
            None
        }
        fn set_addresses(&mut self, _addrs: &[ipnet::IpNet]) {}
    }

    fn pair() -> (Sim, NetnsId, NetnsId) {
        let mut sim = Sim::new(1);
        let a = sim.netns_add("a").unwrap();
        let b = sim.netns_add("b").unwrap();
        sim.link_add_veth(a, "eth0", "eth0", Some(b)).unwrap();
        sim.addr_add(a, "eth0", "10.0.0.1/24".parse().unwrap()).unwrap();
        sim.addr_add(b, "eth0", "10.0.0.2/24".parse().unwrap()).unwrap();
        sim.link_set_up(a, "eth0", true).unwrap();
        sim.link_set_up(b, "eth0", true).unwrap();
        sim.attach_stack(a, Sink::default());
        (sim, a, b)
    }

    /// A REJECT verdict in `b` about a packet from `a` answers `a` and counts the drop.
    fn reject(with: RejectWith, pkt: &[u8]) -> (Vec<u8>, Sim, NetnsId) {
        let (mut sim, a, b) = pair();
        // Resolve ARP both ways first.
        sim.send_ip(
            a,
            &packet::icmp_echo_request(
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2),
                1,
                1,
                64,
                b"",
            ),
        );
        sim.run_until_idle(100).unwrap();
        let frame = sim.new_frame_from_ip(pkt);
        let s = parse_ip(pkt).unwrap();
        let reason =
            DropReason::FilterRule { table: "filter".into(), chain: "INPUT".into(), rule: 1 };
        assert!(
            sim.apply_verdict(b, None, frame, &s, Verdict::Reject(reason.clone(), with)).is_none()
        );
        sim.run_until_idle(100).unwrap();
        assert_eq!(sim.drops(b).get(&reason), Some(&1));
        assert!(sim.conservation().holds());
        let got = sim.stack_mut::<Sink>(a).unwrap().0.pop().unwrap();
        (got, sim, a)
    }

    #[test]
    fn reject_answers_with_icmp_or_reset() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let udp = packet::udp_datagram(a, b, 4000, 53, 64, b"q");
        let (got, ..) = reject(RejectWith::IcmpPortUnreachable, &udp);
        let s = parse_ip(&got).unwrap();
        assert_eq!(s.src, IpAddr::V4(b));
        assert!(matches!(s.l4, L4Summary::Icmp { ty: 3, code: 3, .. }));
        let (got, ..) = reject(RejectWith::IcmpAdminProhibited, &udp);
        assert!(matches!(parse_ip(&got).unwrap().l4, L4Summary::Icmp { ty: 3, code: 13, .. }));
        // A TCP SYN rejected with a reset gets RST+ACK acknowledging the SYN.
        let mut syn = packet::ipv4_packet(a, b, smoltcp::wire::IpProtocol::Tcp, 64, 20, |p| {
            let mut t = smoltcp::wire::TcpPacket::new_unchecked(p);
            t.set_src_port(40000);
            t.set_dst_port(80);
            t.set_seq_number(smoltcp::wire::TcpSeqNumber(100));
            t.set_header_len(20);
            t.clear_flags();
            t.set_syn(true);
            t.fill_checksum(&a.into(), &b.into());
        });
        let syn = syn.split_off(ETH_LEN);
        let (got, ..) = reject(RejectWith::TcpReset, &syn);
        let s = parse_ip(&got).unwrap();
        assert!(matches!(
            s.l4,
            L4Summary::Tcp {
                src_port: 80,
                dst_port: 40000,
                flags: crate::wire::TcpFlags { rst: true, ack: true, .. }
            }
        ));
        let t = smoltcp::wire::TcpPacket::new_checked(&got[20..]).unwrap();
        assert_eq!(t.ack_number(), smoltcp::wire::TcpSeqNumber(101));
    }
}
