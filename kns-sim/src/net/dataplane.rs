//! The frame path: devices (veth, bridge, VXLAN, loopback), ARP, and the IPv4 layer with its
//! netfilter hooks, forwarding, ICMP errors and local delivery. Modelled on Linux:
//!
//! - received: PREROUTING → routing → INPUT → local delivery, or FORWARD (TTL, MTU) → POSTROUTING;
//! - sent locally: routing → OUTPUT (re-route if NAT changed the destination) → POSTROUTING;
//! - then neighbour resolution (ARP with retries; packets wait meanwhile) and the device.
//!
//! Every frame ends in exactly one of: another event, delivery (counted), or a drop (counted,
//! with its reason). Nothing here allocates per hop except copies made for flooding, and no text
//! is formatted unless tracing is on.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rand::RngExt;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, Icmpv4Message, Ipv4Packet,
};

use super::packet::{self, BROADCAST, ETH_LEN};
use super::trace::describe;
use super::{
    ARP_PROBES, ARP_QUEUE, ARP_RETRANS, BRIDGE_AGEING, Event, Frame, IfaceId, Kind, Neigh, NetnsId,
    Pending, Sim, TraceWhat,
};
use crate::drop::DropReason;
use crate::netfilter::{Hook, HookContext, RejectWith, Verdict};
use crate::time::Time;
use crate::wire::{L4Summary, PacketSummary, parse_ip};

/// The interfaces a hook sees: in/out devices and, for bridged frames, the bridge ports.
#[derive(Clone, Copy)]
struct At {
    in_if: Option<IfaceId>,
    out_if: Option<IfaceId>,
    ports: (Option<IfaceId>, Option<IfaceId>),
}

fn is_group(mac: [u8; 6]) -> bool {
    mac[0] & 1 == 1
}

impl Sim {
    pub(crate) fn handle(&mut self, ev: Event) {
        match ev {
            Event::Rx { iface, frame } => self.rx(iface, frame),
            Event::Poll { ns } => {
                let now = self.now();
                let n = &mut self.namespaces[ns.0 as usize];
                if n.next_poll == Some(now) {
                    n.next_poll = None;
                    self.poll_stack(ns);
                }
            }
            Event::ArpTimer { iface, ip } => self.arp_timer(iface, ip),
        }
    }

    fn ns_of(&self, iface: IfaceId) -> NetnsId {
        self.ifaces[iface.0 as usize].ns
    }

    pub(crate) fn drop_frame(
        &mut self,
        ns: NetnsId,
        dev: Option<IfaceId>,
        frame: Frame,
        reason: DropReason,
    ) {
        if self.tracing() {
            self.tr(ns, dev, frame.id, TraceWhat::Drop { reason: reason.clone() }, &frame.buf);
        }
        tracing::debug!(target: "kns::drop", frame = frame.id, ns = ns.0, reason = %reason, "drop");
        self.counters.dropped += 1;
        *self.namespaces[ns.0 as usize].drops.entry(reason).or_insert(0) += 1;
    }

    fn delivered(&mut self, ns: NetnsId, dev: Option<IfaceId>, frame: &Frame, to: &'static str) {
        tracing::trace!(target: "kns::hop", frame = frame.id, ns = ns.0, to, "deliver");
        self.counters.delivered += 1;
        if self.tracing() {
            self.tr(ns, dev, frame.id, TraceWhat::Deliver(to.to_string()), &frame.buf);
        }
    }

    // ---- devices ----

    /// A frame arrives at `iface`.
    fn rx(&mut self, iface: IfaceId, frame: Frame) {
        let ifc = &self.ifaces[iface.0 as usize];
        let ns = ifc.ns;
        if !ifc.alive || !ifc.up {
            return self.drop_frame(ns, Some(iface), frame, DropReason::InterfaceDown);
        }
        let master = ifc.master;
        tracing::trace!(target: "kns::hop", frame = frame.id, ns = ns.0, iface = iface.0, "rx");
        self.cap(iface, &frame.buf);
        self.tr(ns, Some(iface), frame.id, TraceWhat::Rx, &frame.buf);
        match master {
            Some(br) => self.bridge_input(br, iface, frame),
            None => self.l2_input(iface, frame),
        }
    }

    /// A frame accepted by the link layer of an interface with an IP configuration.
    fn l2_input(&mut self, iface: IfaceId, frame: Frame) {
        let ifc = &self.ifaces[iface.0 as usize];
        let ns = ifc.ns;
        let Ok(eth) = EthernetFrame::new_checked(&frame.buf[..]) else {
            return self.drop_frame(ns, Some(iface), frame, DropReason::Malformed("Ethernet"));
        };
        let dst = eth.dst_addr().0;
        let ethertype = eth.ethertype();
        if dst != ifc.mac && !is_group(dst) && !matches!(ifc.kind, Kind::Loopback) {
            return self.drop_frame(ns, Some(iface), frame, DropReason::NotForUs);
        }
        match ethertype {
            EthernetProtocol::Arp => self.arp_input(iface, frame),
            EthernetProtocol::Ipv4 => self.ip_rcv(iface, frame),
            _ => self.drop_frame(ns, Some(iface), frame, DropReason::Malformed("ethertype")),
        }
    }

    /// A frame leaves by `iface`.
    pub(crate) fn xmit(&mut self, iface: IfaceId, frame: Frame) {
        let ifc = &self.ifaces[iface.0 as usize];
        let ns = ifc.ns;
        if !ifc.alive || !ifc.up {
            return self.drop_frame(ns, Some(iface), frame, DropReason::InterfaceDown);
        }
        tracing::trace!(target: "kns::hop", frame = frame.id, ns = ns.0, iface = iface.0, "tx");
        self.cap(iface, &frame.buf);
        self.tr(ns, Some(iface), frame.id, TraceWhat::Tx, &frame.buf);
        match &self.ifaces[iface.0 as usize].kind {
            Kind::Loopback => {
                let now = self.now();
                self.engine.schedule(now, Event::Rx { iface, frame });
            }
            Kind::Veth(_) => self.veth_xmit(iface, frame),
            Kind::Bridge(_) => self.bridge_output(iface, frame),
            Kind::Vxlan(_) => self.vxlan_xmit(iface, frame),
            Kind::Dummy => self.drop_frame(ns, Some(iface), frame, DropReason::NotForUs),
        }
    }

    fn veth_xmit(&mut self, iface: IfaceId, frame: Frame) {
        let now = self.now();
        let ns = self.ns_of(iface);
        let Kind::Veth(v) = &self.ifaces[iface.0 as usize].kind else { return };
        let peer = v.peer;
        let p = &self.ifaces[peer.0 as usize];
        if !p.alive || !p.up {
            return self.drop_frame(ns, Some(iface), frame, DropReason::InterfaceDown);
        }
        if frame.buf.len() > p.mtu as usize + ETH_LEN {
            return self.drop_frame(ns, Some(iface), frame, DropReason::Mtu);
        }
        let Kind::Veth(v) = &mut self.ifaces[iface.0 as usize].kind else { return };
        let loss = if v.params.loss.is_nan() { 0.0 } else { v.params.loss.clamp(0.0, 1.0) };
        if loss > 0.0 && v.rng.random_bool(loss) {
            return self.drop_frame(ns, Some(iface), frame, DropReason::LinkLoss);
        }
        let mut depart = now;
        if let Some(bw) = v.params.bandwidth_bps.filter(|b| *b > 0) {
            while v.queue.front().is_some_and(|t| *t <= now) {
                v.queue.pop_front();
            }
            if v.queue.len() >= v.params.queue_limit {
                return self.drop_frame(ns, Some(iface), frame, DropReason::QueueFull);
            }
            let bits = frame.buf.len() as u128 * 8;
            let nanos = u64::try_from(bits * 1_000_000_000 / u128::from(bw)).unwrap_or(u64::MAX);
            let start = v.busy_until.max(now);
            v.busy_until = start + Duration::from_nanos(nanos);
            depart = v.busy_until;
            v.queue.push_back(depart);
        }
        let arrive = depart + v.params.latency;
        self.engine.schedule(arrive, Event::Rx { iface: peer, frame });
    }

    // ---- bridge ----

    fn bridge_input(&mut self, br: IfaceId, port: IfaceId, frame: Frame) {
        let now = self.now();
        let ns = self.ns_of(br);
        if !self.ifaces[br.0 as usize].up {
            return self.drop_frame(ns, Some(port), frame, DropReason::InterfaceDown);
        }
        let Ok(eth) = EthernetFrame::new_checked(&frame.buf[..]) else {
            return self.drop_frame(ns, Some(port), frame, DropReason::Malformed("Ethernet"));
        };
        let (src, dst) = (eth.src_addr().0, eth.dst_addr().0);
        let br_mac = self.ifaces[br.0 as usize].mac;
        let hairpin = self.ifaces[port.0 as usize].hairpin;
        let Kind::Bridge(b) = &mut self.ifaces[br.0 as usize].kind else { return };
        if !is_group(src) {
            b.fdb.insert(src, (port, now));
        }
        if dst == br_mac {
            return self.bridge_local(br, frame);
        }
        if is_group(dst) {
            return self.flood(br, Some(port), frame, true);
        }
        let known = b.fdb.get(&dst).filter(|(_, seen)| now - *seen < BRIDGE_AGEING).map(|e| e.0);
        match known {
            Some(out) if out == port && !hairpin => {
                self.drop_frame(ns, Some(port), frame, DropReason::NotForUs)
            }
            Some(out) => self.bridge_forward(br, Some(port), out, frame),
            None => self.flood(br, Some(port), frame, false),
        }
    }

    /// A frame for the bridge device itself (its MAC, or a broadcast copy).
    fn bridge_local(&mut self, br: IfaceId, frame: Frame) {
        let ns = self.ns_of(br);
        self.cap(br, &frame.buf);
        self.tr(ns, Some(br), frame.id, TraceWhat::Rx, &frame.buf);
        self.l2_input(br, frame);
    }

    fn flood(&mut self, br: IfaceId, in_port: Option<IfaceId>, frame: Frame, local: bool) {
        let ns = self.ns_of(br);
        let targets: Vec<IfaceId> = self.namespaces[ns.0 as usize]
            .ifaces
            .values()
            .copied()
            .filter(|p| {
                let i = &self.ifaces[p.0 as usize];
                i.master == Some(br) && i.up && (Some(*p) != in_port || i.hairpin)
            })
            .collect();
        if targets.is_empty() && !local {
            return self.drop_frame(ns, in_port, frame, DropReason::NotForUs);
        }
        let mut frame = Some(frame);
        for (i, out) in targets.iter().enumerate() {
            let last = i + 1 == targets.len() && !local;
            let f = if last {
                frame.take().expect("the original frame is used once, by the last target")
            } else {
                let copy = frame.as_ref().expect("present until the last target").buf.clone();
                self.new_frame(copy)
            };
            self.bridge_forward(br, in_port, *out, f);
        }
        if let Some(f) = frame {
            self.bridge_local(br, f);
        }
    }

    fn bridge_forward(
        &mut self,
        br: IfaceId,
        in_port: Option<IfaceId>,
        out: IfaceId,
        mut frame: Frame,
    ) {
        let ns = self.ns_of(br);
        if self.tracing() {
            let to = self.ifaces[out.0 as usize].name.clone();
            self.tr(ns, Some(br), frame.id, TraceWhat::Bridged { to }, &frame.buf);
        }
        if self.namespaces[ns.0 as usize].bridge_nf
            && in_port.is_some()
            && frame.buf.get(12..14) == Some(&[0x08, 0x00])
        {
            let Ok(mut s) = parse_ip(&frame.buf[ETH_LEN..]) else {
                return self.drop_frame(ns, Some(br), frame, DropReason::Malformed("IPv4"));
            };
            for hook in [Hook::Prerouting, Hook::Forward, Hook::Postrouting] {
                let v = self.run_hook(
                    ns,
                    hook,
                    At { in_if: Some(br), out_if: Some(br), ports: (in_port, Some(out)) },
                    &mut frame,
                    &mut s,
                );
                let Some(f) = self.apply_verdict(ns, Some(br), frame, &s, v) else { return };
                frame = f;
            }
        }
        self.xmit(out, frame);
    }

    /// The host sends a frame through the bridge device.
    fn bridge_output(&mut self, br: IfaceId, frame: Frame) {
        let now = self.now();
        let dst: [u8; 6] =
            frame.buf[0..6].try_into().expect("frames start with an Ethernet header");
        let Kind::Bridge(b) = &self.ifaces[br.0 as usize].kind else { return };
        let known = if is_group(dst) {
            None
        } else {
            b.fdb.get(&dst).filter(|(_, seen)| now - *seen < BRIDGE_AGEING).map(|e| e.0)
        };
        match known {
            Some(out) => self.bridge_forward(br, None, out, frame),
            None => self.flood(br, None, frame, false),
        }
    }

    // ---- VXLAN ----

    fn vxlan_xmit(&mut self, vx: IfaceId, frame: Frame) {
        let ns = self.ns_of(vx);
        let Kind::Vxlan(v) = &self.ifaces[vx.0 as usize].kind else { return };
        let dst: [u8; 6] =
            frame.buf[0..6].try_into().expect("frames start with an Ethernet header");
        let remotes: Vec<IpAddr> = if let Some(ip) = v.learned.get(&dst).filter(|_| !is_group(dst))
        {
            vec![*ip]
        } else if let Some(list) = v.fdb.get(&dst) {
            list.clone()
        } else if let Some(list) = v.fdb.get(&[0u8; 6]) {
            list.clone()
        } else {
            v.cfg.remote.into_iter().collect()
        };
        let (vni, dstport, local) = (v.cfg.vni, v.cfg.dstport, v.cfg.local);
        if remotes.is_empty() {
            return self.drop_frame(ns, Some(vx), frame, DropReason::NoNeighbour);
        }
        // The UDP source port carries a hash of the inner flow, as Linux does for ECMP.
        let mut h: u32 = 0x811c_9dc5;
        let inner_key = frame.buf.get(0..12).into_iter().chain(frame.buf.get(26..34));
        for b in inner_key.flatten() {
            h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
        }
        let sport = 49152 + (h % 16384) as u16;
        let n = remotes.len();
        let mut frame = Some(frame);
        for (i, remote) in remotes.into_iter().enumerate() {
            let (IpAddr::V4(r), src) =
                (remote, local.or_else(|| Some(self.select_src(ns, remote))))
            else {
                continue;
            };
            let src = src.and_then(packet::v4).unwrap_or(Ipv4Addr::UNSPECIFIED);
            let inner = frame.as_ref().expect("present until the last remote");
            let outer = packet::vxlan_encap(&inner.buf, src, r, sport, dstport, vni);
            let f = if i + 1 == n {
                let id = frame.take().expect("present until the last remote").id;
                Frame { id, buf: outer }
            } else {
                self.new_frame(outer)
            };
            if self.tracing() {
                let text = format!("vxlan encap vni {vni} to {r}:{dstport}");
                self.tr(ns, Some(vx), f.id, TraceWhat::Tunnel(text), &f.buf);
            }
            self.ip_local_out(ns, f);
        }
        if let Some(f) = frame {
            self.drop_frame(ns, Some(vx), f, DropReason::NoNeighbour);
        }
    }

    /// A UDP datagram to a local address arrived; if a VXLAN device listens on its port,
    /// unwraps it and hands the inner frame to that device. Gives the frame back otherwise.
    fn vxlan_rcv(&mut self, ns: NetnsId, mut frame: Frame, s: &PacketSummary) -> Option<Frame> {
        let L4Summary::Udp { dst_port, .. } = s.l4 else { return Some(frame) };
        let udp_payload = ETH_LEN + s.header_len + 8;
        let Some((vni, _)) =
            frame.buf.get(udp_payload..ETH_LEN + s.total_len).and_then(packet::vxlan_decap)
        else {
            return Some(frame);
        };
        let dev = self.namespaces[ns.0 as usize].ifaces.values().copied().find(|i| {
            matches!(&self.ifaces[i.0 as usize].kind, Kind::Vxlan(v) if v.cfg.dstport == dst_port && v.cfg.vni == vni)
        });
        let Some(dev) = dev else { return Some(frame) };
        frame.buf.truncate(ETH_LEN + s.total_len);
        frame.buf.drain(..udp_payload + 8);
        if let Kind::Vxlan(v) = &mut self.ifaces[dev.0 as usize].kind {
            let src: [u8; 6] =
                frame.buf[6..12].try_into().expect("inner frame has an Ethernet header");
            if !is_group(src) {
                v.learned.insert(src, s.src);
            }
        }
        if self.tracing() {
            let text = format!("vxlan decap vni {vni} from {}", s.src);
            self.tr(ns, Some(dev), frame.id, TraceWhat::Tunnel(text), &frame.buf);
        }
        self.rx(dev, frame);
        None
    }

    // ---- ARP ----

    fn arp_input(&mut self, iface: IfaceId, frame: Frame) {
        let ns = self.ns_of(iface);
        let repr = ArpPacket::new_checked(&frame.buf[ETH_LEN..])
            .ok()
            .and_then(|p| ArpRepr::parse(&p).ok());
        let Some(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = repr
        else {
            return self.drop_frame(ns, Some(iface), frame, DropReason::Malformed("ARP"));
        };
        let sender = IpAddr::V4(source_protocol_addr);
        let smac = source_hardware_addr.0;
        self.delivered(ns, Some(iface), &frame, "ARP");
        let for_us = self.is_own_addr(ns, IpAddr::V4(target_protocol_addr));
        if for_us || self.namespaces[ns.0 as usize].neigh.contains_key(&(iface, sender)) {
            self.neigh_learn(iface, sender, smac);
        }
        if operation == ArpOperation::Request && for_us {
            let mac = self.ifaces[iface.0 as usize].mac;
            let reply = packet::arp_frame(
                ArpOperation::Reply,
                smac,
                mac,
                target_protocol_addr,
                smac,
                source_protocol_addr,
            );
            let f = self.new_frame(reply);
            self.xmit(iface, f);
        }
    }

    /// Records `ip` at `mac` on `iface` and sends what was waiting for it.
    fn neigh_learn(&mut self, iface: IfaceId, ip: IpAddr, mac: [u8; 6]) {
        let now = self.now();
        let ns = self.ns_of(iface);
        let n = self.namespaces[ns.0 as usize].neigh.entry((iface, ip)).or_insert_with(|| Neigh {
            mac: None,
            permanent: false,
            failed: false,
            confirmed: now,
            probes: 0,
            pending: Vec::new(),
        });
        if n.permanent {
            return;
        }
        n.mac = Some(mac);
        n.failed = false;
        n.confirmed = now;
        n.probes = 0;
        let pending = std::mem::take(&mut n.pending);
        let own = self.ifaces[iface.0 as usize].mac;
        for p in pending {
            let mut f = p.frame;
            packet::write_eth(&mut f.buf, mac, own, EthernetProtocol::Ipv4);
            self.xmit(iface, f);
        }
    }

    fn send_arp_request(&mut self, iface: IfaceId, ip: Ipv4Addr, src_hint: Option<IpAddr>) {
        let ns = self.ns_of(iface);
        let sip = src_hint
            .filter(|a| self.is_own_addr(ns, *a))
            .or_else(|| self.iface_src(iface, IpAddr::V4(ip)))
            .and_then(packet::v4)
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mac = self.ifaces[iface.0 as usize].mac;
        let req = packet::arp_frame(ArpOperation::Request, BROADCAST, mac, sip, [0; 6], ip);
        let f = self.new_frame(req);
        self.xmit(iface, f);
        let at = self.now() + ARP_RETRANS;
        self.engine.schedule(at, Event::ArpTimer { iface, ip: IpAddr::V4(ip) });
    }

    fn arp_timer(&mut self, iface: IfaceId, ip: IpAddr) {
        let ns = self.ns_of(iface);
        let Some(n) = self.namespaces[ns.0 as usize].neigh.get_mut(&(iface, ip)) else { return };
        if n.mac.is_some() || n.permanent || n.failed || n.pending.is_empty() {
            return;
        }
        if n.probes < ARP_PROBES {
            n.probes += 1;
            let hint = n
                .pending
                .first()
                .and_then(|p| parse_ip(&p.frame.buf[ETH_LEN..]).ok())
                .map(|s| s.src);
            if let IpAddr::V4(v4) = ip {
                self.send_arp_request(iface, v4, hint);
            }
            return;
        }
        n.failed = true;
        let pending = std::mem::take(&mut n.pending);
        for p in pending {
            let orig = &p.frame.buf[ETH_LEN..];
            if p.forwarded {
                self.icmp_error_for(ns, orig, Icmpv4Message::DstUnreachable, 1, 0, None);
            } else {
                self.icmp_error_local(ns, orig, Icmpv4Message::DstUnreachable, 1, 0);
            }
            self.drop_frame(ns, Some(iface), p.frame, DropReason::NoNeighbour);
        }
    }

    /// Sends the IP packet in `frame` to `nexthop` on `out`, resolving its MAC first.
    fn neigh_output(&mut self, out: IfaceId, nexthop: IpAddr, mut frame: Frame, forwarded: bool) {
        let ns = self.ns_of(out);
        let ifc = &self.ifaces[out.0 as usize];
        let own = ifc.mac;
        if matches!(ifc.kind, Kind::Loopback) {
            packet::write_eth(&mut frame.buf, [0; 6], [0; 6], EthernetProtocol::Ipv4);
            return self.xmit(out, frame);
        }
        let broadcast = match nexthop {
            IpAddr::V4(a) => {
                a.is_broadcast()
                    || a.is_multicast()
                    || ifc.addrs.iter().any(|n| n.prefix_len() < 31 && n.broadcast() == nexthop)
            }
            IpAddr::V6(_) => false,
        };
        if broadcast {
            packet::write_eth(&mut frame.buf, BROADCAST, own, EthernetProtocol::Ipv4);
            return self.xmit(out, frame);
        }
        let now = self.now();
        let table = &mut self.namespaces[ns.0 as usize].neigh;
        if let Some(n) = table.get_mut(&(out, nexthop)) {
            if let (Some(mac), false) = (n.mac, n.failed) {
                packet::write_eth(&mut frame.buf, mac, own, EthernetProtocol::Ipv4);
                return self.xmit(out, frame);
            }
            if !n.failed {
                if n.pending.len() >= ARP_QUEUE {
                    return self.drop_frame(ns, Some(out), frame, DropReason::QueueFull);
                }
                if self.tracing() {
                    let text = format!("waiting for ARP of {nexthop}");
                    self.tr(ns, Some(out), frame.id, TraceWhat::Neigh(text), &frame.buf);
                }
                if let Some(n) = self.namespaces[ns.0 as usize].neigh.get_mut(&(out, nexthop)) {
                    n.pending.push(Pending { frame, forwarded });
                }
                return;
            }
        }
        let src = parse_ip(&frame.buf[ETH_LEN..]).ok().map(|s| s.src);
        if self.tracing() {
            let text = format!("waiting for ARP of {nexthop}");
            self.tr(ns, Some(out), frame.id, TraceWhat::Neigh(text), &frame.buf);
        }
        self.namespaces[ns.0 as usize].neigh.insert(
            (out, nexthop),
            Neigh {
                mac: None,
                permanent: false,
                failed: false,
                confirmed: now,
                probes: 1,
                pending: vec![Pending { frame, forwarded }],
            },
        );
        match nexthop {
            IpAddr::V4(v4) => self.send_arp_request(out, v4, src),
            IpAddr::V6(_) => {
                // IPv6 neighbour discovery is not modelled yet: fail at once.
                if let Some(n) = self.namespaces[ns.0 as usize].neigh.get_mut(&(out, nexthop)) {
                    n.failed = true;
                    for p in std::mem::take(&mut n.pending) {
                        self.drop_frame(ns, Some(out), p.frame, DropReason::NoNeighbour);
                    }
                }
            }
        }
    }

    // ---- IPv4 ----

    /// Whether `addr` is one of the namespace's own addresses on an up interface.
    pub(crate) fn is_own_addr(&self, ns: NetnsId, addr: IpAddr) -> bool {
        self.namespaces[ns.0 as usize].ifaces.values().any(|i| {
            let ifc = &self.ifaces[i.0 as usize];
            ifc.up && ifc.addrs.iter().any(|a| a.addr() == addr)
        })
    }

    /// Whether a packet to `dst` is for this namespace (own address, loopback range, broadcast).
    pub(crate) fn is_local_dst(&self, ns: NetnsId, dst: IpAddr) -> bool {
        if let IpAddr::V4(a) = dst
            && a.is_broadcast()
        {
            return true;
        }
        self.namespaces[ns.0 as usize].ifaces.values().any(|i| {
            let ifc = &self.ifaces[i.0 as usize];
            ifc.up
                && ifc.addrs.iter().any(|a| {
                    a.addr() == dst
                        || (matches!(ifc.kind, Kind::Loopback) && a.contains(&dst))
                        || (a.prefix_len() < 31 && a.addr().is_ipv4() && a.broadcast() == dst)
                })
        })
    }

    /// The output interface and next hop for a locally sent packet to `dst`.
    pub(crate) fn route_output(&self, ns: NetnsId, dst: IpAddr) -> Option<(IfaceId, IpAddr)> {
        let n = &self.namespaces[ns.0 as usize];
        if self.is_local_dst(ns, dst) && !matches!(dst, IpAddr::V4(a) if a.is_broadcast()) {
            return Some((n.lo, dst));
        }
        n.routes.lookup(dst).map(|r| (r.dev, r.via.unwrap_or(dst)))
    }

    /// The source address `iface` would use toward `dst`.
    fn iface_src(&self, iface: IfaceId, dst: IpAddr) -> Option<IpAddr> {
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

    fn primary_v4(&self, iface: IfaceId) -> Option<IpAddr> {
        self.ifaces[iface.0 as usize].addrs.iter().map(|a| a.addr()).find(|a| a.is_ipv4())
    }

    /// Runs one netfilter hook.
    fn run_hook(
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
        if self.tracing() && (v != Verdict::Accept || *s != before) {
            let verdict = match &v {
                Verdict::Accept => "ACCEPT".to_string(),
                Verdict::Drop(_) => "DROP".to_string(),
                Verdict::Reject(_, w) => format!("REJECT ({w:?})"),
            };
            let mut notes = Vec::new();
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
    fn apply_verdict(
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

    fn route_text(&self, dst: IpAddr, nexthop: IpAddr, out: IfaceId) -> String {
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
    fn icmp_error_local(
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
    fn ip_rcv(&mut self, iface: IfaceId, mut frame: Frame) {
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
        let hint = self.primary_v4(iface);
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

    fn post_routing(
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
    fn local_deliver(&mut self, ns: NetnsId, iface: IfaceId, frame: Frame, s: &PacketSummary) {
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
            _ => {}
        }
    }

    /// Lets the socket layer of `ns` run and sends what it produced.
    pub(crate) fn poll_stack(&mut self, ns: NetnsId) {
        let now = self.now();
        let mut out = Vec::new();
        let Some(stack) = self.namespaces[ns.0 as usize].stack.as_mut() else { return };
        stack.poll(now, &mut out);
        let next = stack.poll_at(now);
        let produced = !out.is_empty();
        for pkt in out {
            let f = self.new_frame_from_ip(&pkt);
            self.ip_local_out(ns, f);
        }
        if let Some(t) = next {
            let t = if t > now {
                t
            } else if produced {
                now
            } else {
                now + Duration::from_micros(1)
            };
            self.schedule_poll(ns, t);
        }
    }

    /// The time the next event is due, if any.
    pub fn next_event_time(&self) -> Option<Time> {
        self.engine.next_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::IpStack;

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
