//! ARP and the neighbour table: requests with retries, replies, proxy ARP, packets waiting for
//! resolution, re-probing of stale entries, and failure reported as host unreachable.

use super::packet::{self, BROADCAST, ETH_LEN};
use super::{
    ARP_PROBES, ARP_QUEUE, ARP_RETRANS, Event, Frame, IfaceId, Kind, Neigh, NetnsId, Pending, Sim,
    TraceWhat,
};
use crate::drop::DropReason;
use crate::time::Time;
use crate::wire::parse_ip;
use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetProtocol, Icmpv4Message};
use std::net::{IpAddr, Ipv4Addr};

impl Sim {
    pub(super) fn arp_input(&mut self, iface: IfaceId, frame: Frame) {
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
        let target = IpAddr::V4(target_protocol_addr);
        let for_us = self.is_own_addr(ns, target);
        let known = self.namespaces[ns.0 as usize].neigh.contains_key(&(iface, sender));
        if !source_protocol_addr.is_unspecified() && (for_us || known) {
            self.neigh_learn(iface, sender, smac);
        }
        // Proxy ARP (Linux `arp_fwd_proxy`): answer for an address routed out of another
        // interface, when forwarding is on.
        let proxy = !for_us && self.ifaces[iface.0 as usize].proxy_arp && {
            let n = &self.namespaces[ns.0 as usize];
            n.ip_forward && n.routes.lookup(target).is_some_and(|r| r.dev != iface)
        };
        let announced =
            !for_us && self.ifaces[iface.0 as usize].announced.contains(&target_protocol_addr);
        if operation == ArpOperation::Request && (for_us || proxy || announced) {
            if announced && self.tracing() {
                let text = format!("ARP reply for announced {target}");
                self.tr(ns, Some(iface), frame.id, TraceWhat::Neigh(text), &frame.buf);
            }
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

    /// Starts answering ARP requests for `ip` on `dev` of `ns` as a user-space responder does
    /// (MetalLB's layer-2 speaker): the address is not assigned to the device, so the
    /// namespace does not accept packets for it unless something (kube-proxy's DNAT) takes
    /// them. With `gratuitous`, a gratuitous ARP (a broadcast request for `ip` from `ip`) tells
    /// the segment at once, so neighbours that knew another owner switch.
    pub fn arp_announce(
        &mut self,
        ns: NetnsId,
        dev: &str,
        ip: Ipv4Addr,
        gratuitous: bool,
    ) -> Result<(), super::IpError> {
        let id = self.iface_id(ns, dev)?;
        self.ifaces[id.0 as usize].announced.insert(ip);
        if gratuitous && self.ifaces[id.0 as usize].up {
            let mac = self.ifaces[id.0 as usize].mac;
            let garp = packet::arp_frame(ArpOperation::Request, BROADCAST, mac, ip, [0; 6], ip);
            let f = self.new_frame(garp);
            self.xmit(id, f);
        }
        Ok(())
    }

    /// Stops answering ARP for `ip` on `dev` of `ns`; returns whether it was announced.
    pub fn arp_withdraw(
        &mut self,
        ns: NetnsId,
        dev: &str,
        ip: Ipv4Addr,
    ) -> Result<bool, super::IpError> {
        let id = self.iface_id(ns, dev)?;
        Ok(self.ifaces[id.0 as usize].announced.remove(&ip))
    }

    /// The addresses announced in `ns` ([`Sim::arp_announce`]), as (address, device), sorted.
    pub fn arp_announced(&self, ns: NetnsId) -> Vec<(Ipv4Addr, String)> {
        let mut out: Vec<(Ipv4Addr, String)> = self.namespaces[ns.0 as usize]
            .ifaces
            .values()
            .flat_map(|i| {
                let ifc = &self.ifaces[i.0 as usize];
                ifc.announced.iter().map(|a| (*a, ifc.name.clone()))
            })
            .collect();
        out.sort();
        out
    }

    /// Records `ip` at `mac` on `iface` and sends what was waiting for it.
    pub(super) fn neigh_learn(&mut self, iface: IfaceId, ip: IpAddr, mac: [u8; 6]) {
        let now = self.now();
        let ns = self.ns_of(iface);
        let n = self.namespaces[ns.0 as usize].neigh.entry((iface, ip)).or_insert_with(|| Neigh {
            mac: None,
            permanent: false,
            failed: false,
            confirmed: now,
            probes: 0,
            reprobed: Time::ZERO,
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

    pub(super) fn send_arp_request(
        &mut self,
        iface: IfaceId,
        ip: Ipv4Addr,
        src_hint: Option<IpAddr>,
    ) {
        let ns = self.ns_of(iface);
        let sip = src_hint
            .filter(|a| self.is_own_addr(ns, *a))
            .or_else(|| self.iface_src(iface, IpAddr::V4(ip)))
            .or_else(|| Some(self.select_src(ns, IpAddr::V4(ip))))
            .and_then(packet::v4)
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mac = self.ifaces[iface.0 as usize].mac;
        let req = packet::arp_frame(ArpOperation::Request, BROADCAST, mac, sip, [0; 6], ip);
        let f = self.new_frame(req);
        self.xmit(iface, f);
        let at = self.now() + ARP_RETRANS;
        self.engine.schedule(at, Event::ArpTimer { iface, ip: IpAddr::V4(ip) });
    }

    pub(super) fn arp_timer(&mut self, iface: IfaceId, ip: IpAddr) {
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
    pub(super) fn neigh_output(
        &mut self,
        out: IfaceId,
        nexthop: IpAddr,
        mut frame: Frame,
        forwarded: bool,
    ) {
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
                // A stale entry is still used, and re-confirmed by a new request (at most once
                // per retransmission interval), so a changed MAC is picked up.
                let stale = !n.permanent
                    && now - n.confirmed >= super::NEIGH_REACHABLE
                    && now - n.reprobed >= ARP_RETRANS;
                if stale {
                    n.reprobed = now;
                }
                packet::write_eth(&mut frame.buf, mac, own, EthernetProtocol::Ipv4);
                self.xmit(out, frame);
                if let (true, IpAddr::V4(v4)) = (stale, nexthop) {
                    self.send_arp_request(out, v4, None);
                }
                return;
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
                reprobed: Time::ZERO,
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
}
