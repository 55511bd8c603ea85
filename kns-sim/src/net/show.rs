//! Text output in iproute2's format: `ip link`, `ip addr`, `ip route`, `ip neigh`, and
//! `bridge fdb show`.

use std::fmt::Write;

use super::packet::fmt_mac;
use super::route::{Route, RouteProto};
use super::{IfaceId, IpError, Kind, NeighState, NetnsId, Sim};

impl Sim {
    /// Whether `id` has a carrier: a veth whose peer is up, a bridge with a running port, or a
    /// device without carrier (loopback, VXLAN, dummy).
    pub(crate) fn carrier(&self, id: IfaceId) -> bool {
        let ifc = &self.ifaces[id.0 as usize];
        match &ifc.kind {
            Kind::Veth(v) => {
                let p = &self.ifaces[v.peer.0 as usize];
                p.alive && p.up
            }
            Kind::Bridge(_) => self.namespaces[ifc.ns.0 as usize].ifaces.values().any(|p| {
                let pi = &self.ifaces[p.0 as usize];
                pi.master == Some(id) && pi.up && self.carrier(*p)
            }),
            _ => true,
        }
    }

    fn link_header(&self, id: IfaceId, out: &mut String) {
        let ifc = &self.ifaces[id.0 as usize];
        let carrier = self.carrier(id);
        let mut name = ifc.name.clone();
        let mut netns_note = String::new();
        if let Kind::Veth(v) = &ifc.kind {
            let p = &self.ifaces[v.peer.0 as usize];
            if p.ns == ifc.ns {
                name = format!("{}@{}", ifc.name, p.name);
            } else {
                name = format!("{}@if{}", ifc.name, p.ifindex);
                let pn = &self.namespaces[p.ns.0 as usize].name;
                netns_note = format!(" link-netns {}", if pn.is_empty() { "host" } else { pn });
            }
        }
        let mut flags = Vec::new();
        if matches!(ifc.kind, Kind::Loopback) {
            flags.push("LOOPBACK");
        } else {
            if ifc.up && !carrier {
                flags.push("NO-CARRIER");
            }
            flags.push("BROADCAST");
            flags.push("MULTICAST");
        }
        if ifc.up {
            flags.push("UP");
            if carrier {
                flags.push("LOWER_UP");
            }
        }
        let state = match (&ifc.kind, ifc.up, carrier) {
            (_, false, _) => "DOWN",
            (Kind::Loopback | Kind::Vxlan(_) | Kind::Dummy, true, _) => "UNKNOWN",
            (Kind::Veth(_), true, false) => "LOWERLAYERDOWN",
            (_, true, false) => "DOWN",
            (_, true, true) => "UP",
        };
        let qdisc = if ifc.up { "noqueue" } else { "noop" };
        let master = ifc
            .master
            .map(|m| format!(" master {}", self.ifaces[m.0 as usize].name))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}: {name}: <{}> mtu {} qdisc {qdisc}{master} state {state} mode DEFAULT group default qlen 1000",
            ifc.ifindex,
            flags.join(","),
            ifc.mtu
        );
        match &ifc.kind {
            Kind::Loopback => {
                let _ = writeln!(out, "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00");
            }
            _ => {
                let _ = writeln!(
                    out,
                    "    link/ether {} brd ff:ff:ff:ff:ff:ff{netns_note}",
                    fmt_mac(ifc.mac)
                );
            }
        }
        if let Kind::Vxlan(v) = &ifc.kind {
            let mut line = format!("    vxlan id {}", v.cfg.vni);
            if let Some(r) = v.cfg.remote {
                let _ = write!(line, " remote {r}");
            }
            if let Some(l) = v.cfg.local {
                let _ = write!(line, " local {l}");
            }
            if let Some(d) = &v.cfg.dev {
                let _ = write!(line, " dev {d}");
            }
            let _ = writeln!(out, "{line} dstport {}", v.cfg.dstport);
        }
    }

    /// `ip link` / `ip addr` output for `ns`, optionally for one device or one kind.
    pub(crate) fn show_links(
        &self,
        ns: NetnsId,
        dev: Option<&str>,
        kind: Option<&str>,
        addrs: bool,
    ) -> Result<String, IpError> {
        let n = &self.namespaces[ns.0 as usize];
        let mut ids: Vec<IfaceId> = match dev {
            Some(d) => vec![
                self.iface_id(ns, d)
                    .map_err(|_| IpError::Message(format!("Device \"{d}\" does not exist.")))?,
            ],
            None => n.ifaces.values().copied().collect(),
        };
        ids.sort_by_key(|i| self.ifaces[i.0 as usize].ifindex);
        let mut out = String::new();
        for id in ids {
            let ifc = &self.ifaces[id.0 as usize];
            let k = match ifc.kind {
                Kind::Loopback => "loopback",
                Kind::Veth(_) => "veth",
                Kind::Bridge(_) => "bridge",
                Kind::Vxlan(_) => "vxlan",
                Kind::Dummy => "dummy",
            };
            if kind.is_some_and(|want| want != k) {
                continue;
            }
            if !addrs {
                self.link_header(id, &mut out);
                continue;
            }
            let mut header = String::new();
            self.link_header(id, &mut header);
            out.push_str(&header.replacen(" mode DEFAULT", "", 1));
            for a in &ifc.addrs {
                let fam = if a.addr().is_ipv4() { "inet" } else { "inet6" };
                let scope = if matches!(ifc.kind, Kind::Loopback) { "host" } else { "global" };
                let label =
                    if a.addr().is_ipv4() { format!(" {}", ifc.name) } else { String::new() };
                let _ = writeln!(out, "    {fam} {a} scope {scope}{label}");
                let _ = writeln!(out, "       valid_lft forever preferred_lft forever");
            }
        }
        Ok(out)
    }

    /// One route as `ip route` prints it.
    pub(crate) fn format_route(&self, r: &Route) -> String {
        let mut s = if r.is_default() { "default".to_string() } else { r.dst.to_string() };
        if let Some(v) = r.via {
            let _ = write!(s, " via {v}");
        }
        let _ = write!(s, " dev {}", self.ifaces[r.dev.0 as usize].name);
        if r.onlink {
            s.push_str(" onlink");
        }
        if r.proto == RouteProto::Kernel {
            s.push_str(" proto kernel scope link");
        } else if r.via.is_none() {
            s.push_str(" scope link");
        }
        if let Some(src) = r.src {
            let _ = write!(s, " src {src}");
        }
        if r.metric != 0 {
            let _ = write!(s, " metric {}", r.metric);
        }
        if !self.carrier(r.dev) {
            s.push_str(" linkdown");
        }
        s
    }

    /// `ip route` output for `ns` (IPv4 routes, as `ip route` shows by default).
    pub(crate) fn show_routes(&self, ns: NetnsId) -> String {
        self.namespaces[ns.0 as usize]
            .routes
            .routes()
            .iter()
            .filter(|r| r.dst.addr().is_ipv4())
            .map(|r| self.format_route(r) + "\n")
            .collect()
    }

    /// `ip neigh` output for `ns`.
    pub(crate) fn show_neigh(&self, ns: NetnsId, dev: Option<&str>) -> String {
        let mut out = String::new();
        for (ip, d, mac, state) in self.neigh_list(ns) {
            if dev.is_some_and(|want| want != d) {
                continue;
            }
            let st = match state {
                NeighState::Incomplete => "INCOMPLETE",
                NeighState::Reachable => "REACHABLE",
                NeighState::Stale => "STALE",
                NeighState::Failed => "FAILED",
                NeighState::Permanent => "PERMANENT",
            };
            let ll = mac.map(|m| format!(" lladdr {}", fmt_mac(m))).unwrap_or_default();
            let _ = writeln!(out, "{ip} dev {d}{ll} {st}");
        }
        out
    }

    /// `bridge fdb show` output for `ns`: learned entries of bridges, static entries of VXLAN
    /// devices.
    pub(crate) fn show_fdb(&self, ns: NetnsId, dev: Option<&str>) -> String {
        let now = self.now();
        let mut out = String::new();
        for id in self.namespaces[ns.0 as usize].ifaces.values() {
            let ifc = &self.ifaces[id.0 as usize];
            match &ifc.kind {
                Kind::Bridge(b) => {
                    for (mac, (port, seen)) in &b.fdb {
                        let p = &self.ifaces[port.0 as usize];
                        let pname = &p.name;
                        if dev.is_some_and(|d| d != pname && d != ifc.name)
                            || now - *seen >= super::BRIDGE_AGEING
                            || !p.alive
                            || p.master != Some(*id)
                        {
                            continue;
                        }
                        let _ = writeln!(out, "{} dev {pname} master {}", fmt_mac(*mac), ifc.name);
                    }
                }
                Kind::Vxlan(v) => {
                    if dev.is_some_and(|d| d != ifc.name) {
                        continue;
                    }
                    for (mac, dsts) in &v.fdb {
                        for d in dsts {
                            let _ = writeln!(
                                out,
                                "{} dev {} dst {d} self permanent",
                                fmt_mac(*mac),
                                ifc.name
                            );
                        }
                    }
                    for (mac, d) in &v.learned {
                        let _ = writeln!(out, "{} dev {} dst {d} self", fmt_mac(*mac), ifc.name);
                    }
                }
                _ => {}
            }
        }
        out
    }
}
