//! The learning bridge: MAC learning with ageing in virtual time, flooding of broadcast and
//! unknown unicast, hairpin, the bridge device's own address, and optional `br_netfilter` hooks.

use super::dataplane::{At, is_group};
use super::packet::ETH_LEN;
use super::{BRIDGE_AGEING, Frame, IfaceId, Kind, Sim, TraceWhat};
use crate::drop::DropReason;
use crate::netfilter::Hook;
use crate::wire::parse_ip;
use smoltcp::wire::EthernetFrame;

impl Sim {
    /// The port of an FDB entry, if it is fresh and the port still belongs to the bridge
    /// (a port moved away or deleted leaves stale entries behind, as ageing would).
    fn fdb_port(
        &self,
        br: IfaceId,
        entry: Option<(IfaceId, crate::time::Time)>,
    ) -> Option<IfaceId> {
        let (port, seen) = entry?;
        let p = &self.ifaces[port.0 as usize];
        (self.now() - seen < BRIDGE_AGEING && p.alive && p.master == Some(br)).then_some(port)
    }

    pub(super) fn bridge_input(&mut self, br: IfaceId, port: IfaceId, frame: Frame) {
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
        let known = b.fdb.get(&dst).copied();
        let known = self.fdb_port(br, known);
        match known {
            Some(out) if out == port && !hairpin => {
                self.drop_frame(ns, Some(port), frame, DropReason::NotForUs)
            }
            Some(out) => self.bridge_forward(br, Some(port), out, frame),
            None => self.flood(br, Some(port), frame, false),
        }
    }

    /// A frame for the bridge device itself (its MAC, or a broadcast copy).
    pub(super) fn bridge_local(&mut self, br: IfaceId, frame: Frame) {
        let ns = self.ns_of(br);
        self.cap(br, &frame.buf);
        self.tr(ns, Some(br), frame.id, TraceWhat::Rx, &frame.buf);
        self.l2_input(br, frame);
    }

    pub(super) fn flood(
        &mut self,
        br: IfaceId,
        in_port: Option<IfaceId>,
        frame: Frame,
        local: bool,
    ) {
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

    pub(super) fn bridge_forward(
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
        // Like Linux's `is_skb_forwardable`: a frame larger than the egress port's MTU is dropped.
        if frame.buf.len() > self.ifaces[out.0 as usize].mtu as usize + ETH_LEN {
            return self.drop_frame(ns, Some(out), frame, DropReason::Mtu);
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
    pub(super) fn bridge_output(&mut self, br: IfaceId, frame: Frame) {
        let dst: [u8; 6] =
            frame.buf[0..6].try_into().expect("frames start with an Ethernet header");
        let Kind::Bridge(b) = &self.ifaces[br.0 as usize].kind else { return };
        let known = if is_group(dst) { None } else { self.fdb_port(br, b.fdb.get(&dst).copied()) };
        match known {
            Some(out) => self.bridge_forward(br, None, out, frame),
            None => self.flood(br, None, frame, false),
        }
    }
}
