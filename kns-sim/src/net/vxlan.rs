//! VXLAN devices: Ethernet frames wrapped in UDP (port 4789 by default) with a VNI, sent to the
//! VTEPs of the device's forwarding database, and unwrapped on arrival with source learning.

use super::dataplane::is_group;
use super::packet::{self, ETH_LEN};
use super::{Frame, IfaceId, Kind, NetnsId, Sim, TraceWhat};
use crate::drop::DropReason;
use crate::wire::{L4Summary, PacketSummary};
use std::net::{IpAddr, Ipv4Addr};

impl Sim {
    pub(super) fn vxlan_xmit(&mut self, vx: IfaceId, frame: Frame) {
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
    pub(super) fn vxlan_rcv(
        &mut self,
        ns: NetnsId,
        mut frame: Frame,
        s: &PacketSummary,
    ) -> Option<Frame> {
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
}
