//! The frame path, modelled on Linux. This module holds the event dispatch, the accounting of
//! deliveries and drops, and the generic device path (receive, transmit, veth wire); the
//! bridge, VXLAN, ARP and IPv4 stages live in their own modules beside it.
//!
//! - received: PREROUTING → routing → INPUT → local delivery, or FORWARD (TTL, MTU) → POSTROUTING;
//! - sent locally: routing → OUTPUT (re-route if NAT changed the destination) → POSTROUTING;
//! - then neighbour resolution (ARP with retries; packets wait meanwhile) and the device.
//!
//! Every frame ends in exactly one of: another event, delivery (counted), or a drop (counted,
//! with its reason). Nothing here allocates per hop except copies made for flooding, and no text
//! is formatted unless tracing is on.

use std::time::Duration;

use rand::RngExt;
use smoltcp::wire::{EthernetFrame, EthernetProtocol};

use super::packet::ETH_LEN;
use super::{Event, Frame, IfaceId, Kind, NetnsId, Sim, TraceWhat};
use crate::drop::DropReason;
use crate::time::Time;

/// The interfaces a hook sees: in/out devices and, for bridged frames, the bridge ports.
#[derive(Clone, Copy)]
pub(super) struct At {
    pub(super) in_if: Option<IfaceId>,
    pub(super) out_if: Option<IfaceId>,
    pub(super) ports: (Option<IfaceId>, Option<IfaceId>),
}

pub(super) fn is_group(mac: [u8; 6]) -> bool {
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

    pub(super) fn ns_of(&self, iface: IfaceId) -> NetnsId {
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

    pub(super) fn delivered(
        &mut self,
        ns: NetnsId,
        dev: Option<IfaceId>,
        frame: &Frame,
        to: &'static str,
    ) {
        tracing::trace!(target: "kns::hop", frame = frame.id, ns = ns.0, to, "deliver");
        self.counters.delivered += 1;
        if self.tracing() {
            self.tr(ns, dev, frame.id, TraceWhat::Deliver(to.to_string()), &frame.buf);
        }
    }

    // ---- devices ----

    /// A frame arrives at `iface`.
    pub(super) fn rx(&mut self, iface: IfaceId, frame: Frame) {
        let ifc = &self.ifaces[iface.0 as usize];
        let ns = ifc.ns;
        if !ifc.alive || !ifc.up {
            return self.drop_frame(ns, Some(iface), frame, DropReason::InterfaceDown);
        }
        let master = ifc.master;
        let st = &mut self.ifaces[iface.0 as usize].stats;
        st.rx_packets += 1;
        st.rx_bytes += frame.buf.len() as u64;
        tracing::trace!(target: "kns::hop", frame = frame.id, ns = ns.0, iface = iface.0, "rx");
        self.cap(iface, &frame.buf);
        self.tr(ns, Some(iface), frame.id, TraceWhat::Rx, &frame.buf);
        match master {
            Some(br) => self.bridge_input(br, iface, frame),
            None => self.l2_input(iface, frame),
        }
    }

    /// A frame accepted by the link layer of an interface with an IP configuration.
    pub(super) fn l2_input(&mut self, iface: IfaceId, frame: Frame) {
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
        let st = &mut self.ifaces[iface.0 as usize].stats;
        st.tx_packets += 1;
        st.tx_bytes += frame.buf.len() as u64;
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

    pub(super) fn veth_xmit(&mut self, iface: IfaceId, frame: Frame) {
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
