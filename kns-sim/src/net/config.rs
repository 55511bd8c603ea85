//! The configuration API, mirroring iproute2: `netns`, `link`, `addr`, `route`, `neigh`, the
//! bridge FDB of VXLAN devices, and sysctls. Each method checks what the kernel checks and
//! fails with the message iproute2 would print.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::route::{Route, RouteProto};
use super::{Bridge, IfaceId, IpError, Kind, Neigh, NetnsId, Sim, Vxlan};

/// Settings of a VXLAN device (`ip link add NAME type vxlan id VNI ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanConfig {
    /// The VXLAN network identifier (24 bits).
    pub vni: u32,
    /// Source address of encapsulated packets (chosen by routing when `None`).
    pub local: Option<IpAddr>,
    /// A single remote VTEP used when the FDB has no entry.
    pub remote: Option<IpAddr>,
    /// UDP destination port (4789).
    pub dstport: u16,
    /// The underlay device name, for display.
    pub dev: Option<String>,
}

/// A route to add or delete (`ip route add DST [via GW] [dev DEV] [metric N] [src IP]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination prefix (`0.0.0.0/0` for `default`).
    pub dst: IpNet,
    /// Gateway.
    pub via: Option<IpAddr>,
    /// Output device.
    pub dev: Option<String>,
    /// Metric.
    pub metric: u32,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    /// `onlink`: trust that the gateway is on `dev`'s link (flannel's VXLAN routes).
    pub onlink: bool,
}

impl RouteSpec {
    /// `ip route add DST via GW`.
    pub fn via(dst: IpNet, gw: IpAddr) -> RouteSpec {
        RouteSpec { dst, via: Some(gw), dev: None, metric: 0, src: None, onlink: false }
    }

    /// `ip route add DST dev DEV`.
    pub fn dev(dst: IpNet, dev: &str) -> RouteSpec {
        RouteSpec {
            dst,
            via: None,
            dev: Some(dev.to_string()),
            metric: 0,
            src: None,
            onlink: false,
        }
    }
}

/// The answer to `ip route get`, with the lookup that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteGet {
    /// The destination asked about.
    pub dst: IpAddr,
    /// Whether it is one of the namespace's own addresses (delivered through `lo`).
    pub local: bool,
    /// The gateway, if not on-link.
    pub via: Option<IpAddr>,
    /// The output device.
    pub dev: String,
    /// The source address a packet would carry.
    pub src: IpAddr,
    /// Every route considered, as `ip route` prints it, with whether it matched.
    pub considered: Vec<(String, bool)>,
    /// The chosen route, as `ip route` prints it (`None` for a local address).
    pub chosen: Option<String>,
}

impl RouteGet {
    /// The answer as iproute2 prints it.
    pub fn to_iproute2(&self) -> String {
        if self.local {
            return format!("local {} dev lo src {} uid 0\n    cache <local>", self.dst, self.src);
        }
        let via = self.via.map(|v| format!(" via {v}")).unwrap_or_default();
        format!("{}{via} dev {} src {} uid 0\n    cache", self.dst, self.dev, self.src)
    }

    /// How the lookup went, one line per step.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        if self.local {
            out.push_str(&format!(
                "{} is an address of this namespace: local delivery through lo\n",
                self.dst
            ));
            return out;
        }
        out.push_str(&format!(
            "longest-prefix match for {} over {} routes:\n",
            self.dst,
            self.considered.len()
        ));
        for (r, m) in &self.considered {
            out.push_str(&format!("  {} {r}\n", if *m { "matches " } else { "no match" }));
        }
        if let Some(c) = &self.chosen {
            out.push_str(&format!("chosen (longest prefix, then lowest metric): {c}\n"));
        }
        out
    }
}

impl Sim {
    /// `ip netns add NAME`: a namespace with only `lo` (down), no routes, ip_forward off.
    pub fn netns_add(&mut self, name: &str) -> Result<NetnsId, IpError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(IpError::Message(format!("Invalid netns name \"{name}\"")));
        }
        if self.netns(Some(name)).is_ok() {
            return Err(IpError::Message(format!(
                "Cannot create namespace file \"/var/run/netns/{name}\": File exists"
            )));
        }
        Ok(self.new_netns(name.to_string()))
    }

    /// `ip netns del NAME`: its devices are destroyed (a veth takes its peer with it).
    pub fn netns_del(&mut self, name: &str) -> Result<(), IpError> {
        let ns = self.netns(Some(name)).map_err(|_| {
            IpError::Message(format!(
                "Cannot remove namespace file \"/var/run/netns/{name}\": No such file or directory"
            ))
        })?;
        if ns == Sim::ROOT {
            return Err(IpError::Message("Cannot remove the root namespace".into()));
        }
        let ids: Vec<IfaceId> = self.namespaces[ns.0 as usize].ifaces.values().copied().collect();
        for id in ids {
            self.destroy_iface(id);
        }
        self.ns_by_name.remove(name);
        let n = &mut self.namespaces[ns.0 as usize];
        n.alive = false;
        n.stack = None;
        n.next_poll = None;
        Ok(())
    }

    /// Names of the named namespaces, newest first (as `ip netns list` shows them).
    pub fn netns_list(&self) -> Vec<String> {
        self.namespaces.iter().skip(1).rev().filter(|n| n.alive).map(|n| n.name.clone()).collect()
    }

    fn check_new_name(&self, ns: NetnsId, name: &str) -> Result<(), IpError> {
        if name.is_empty()
            || name.len() > 15
            || name.contains('/')
            || name.contains(char::is_whitespace)
        {
            return Err(IpError::Message(format!(
                "Error: argument \"{name}\" is wrong: \"name\" not a valid ifname"
            )));
        }
        if self.namespaces[ns.0 as usize].ifaces.contains_key(name) {
            return Err(IpError::Exists);
        }
        Ok(())
    }

    /// `ip link add NAME type veth peer name PEER [netns PEER_NS]`. Both ends start down.
    pub fn link_add_veth(
        &mut self,
        ns: NetnsId,
        name: &str,
        peer: &str,
        peer_ns: Option<NetnsId>,
    ) -> Result<(IfaceId, IfaceId), IpError> {
        let pns = peer_ns.unwrap_or(ns);
        self.check_new_name(ns, name)?;
        if pns == ns && name == peer {
            return Err(IpError::Exists);
        }
        self.check_new_name(pns, peer)?;
        let a = IfaceId(self.ifaces.len() as u32);
        let b = IfaceId(a.0 + 1);
        let va = self.new_veth_state(b);
        let vb = self.new_veth_state(a);
        self.new_iface(ns, name, Kind::Veth(Box::new(va)), 1500);
        self.new_iface(pns, peer, Kind::Veth(Box::new(vb)), 1500);
        Ok((a, b))
    }

    /// `ip link add NAME type bridge`.
    pub fn link_add_bridge(&mut self, ns: NetnsId, name: &str) -> Result<IfaceId, IpError> {
        self.check_new_name(ns, name)?;
        Ok(self.new_iface(ns, name, Kind::Bridge(Bridge { fdb: BTreeMap::new() }), 1500))
    }

    /// `ip link add NAME type dummy`.
    pub fn link_add_dummy(&mut self, ns: NetnsId, name: &str) -> Result<IfaceId, IpError> {
        self.check_new_name(ns, name)?;
        Ok(self.new_iface(ns, name, Kind::Dummy, 1500))
    }

    /// `ip link add NAME type vxlan id VNI ...` (MTU 1450, leaving room for the 50-byte header).
    pub fn link_add_vxlan(
        &mut self,
        ns: NetnsId,
        name: &str,
        cfg: VxlanConfig,
    ) -> Result<IfaceId, IpError> {
        self.check_new_name(ns, name)?;
        if let Some(dev) = &cfg.dev {
            self.iface_id(ns, dev)?;
        }
        let v = Vxlan { cfg, fdb: BTreeMap::new(), learned: BTreeMap::new() };
        Ok(self.new_iface(ns, name, Kind::Vxlan(v), 1450))
    }

    /// `ip link del NAME` (a veth takes its peer with it).
    pub fn link_del(&mut self, ns: NetnsId, name: &str) -> Result<(), IpError> {
        let id = self.iface_id(ns, name)?;
        if matches!(self.ifaces[id.0 as usize].kind, super::Kind::Loopback) {
            return Err(IpError::Message("RTNETLINK answers: Operation not supported".into()));
        }
        self.destroy_iface(id);
        Ok(())
    }

    fn destroy_iface(&mut self, id: IfaceId) {
        let peer = match &self.ifaces[id.0 as usize].kind {
            Kind::Veth(v) => Some(v.peer),
            _ => None,
        };
        self.destroy_one(id);
        if let Some(p) = peer
            && self.ifaces[p.0 as usize].alive
        {
            self.destroy_one(p);
        }
    }

    fn destroy_one(&mut self, id: IfaceId) {
        self.set_down(id);
        let ifc = &mut self.ifaces[id.0 as usize];
        ifc.alive = false;
        ifc.addrs.clear();
        let (ns, name) = (ifc.ns, ifc.name.clone());
        self.namespaces[ns.0 as usize].ifaces.remove(&name);
        for i in &mut self.ifaces {
            if i.master == Some(id) {
                i.master = None;
            }
        }
    }

    /// `ip link set NAME netns NS`: the device loses its addresses and goes down.
    pub fn link_set_netns(
        &mut self,
        ns: NetnsId,
        name: &str,
        target: NetnsId,
    ) -> Result<(), IpError> {
        let id = self.iface_id(ns, name)?;
        if target == ns {
            return Ok(());
        }
        if self.namespaces[target.0 as usize].ifaces.contains_key(name) {
            return Err(IpError::Exists);
        }
        if matches!(self.ifaces[id.0 as usize].kind, Kind::Loopback) {
            return Err(IpError::Message("RTNETLINK answers: Invalid argument".into()));
        }
        self.set_down(id);
        let ifc = &mut self.ifaces[id.0 as usize];
        ifc.addrs.clear();
        ifc.master = None;
        ifc.ns = target;
        self.namespaces[ns.0 as usize].ifaces.remove(name);
        self.namespaces[target.0 as usize].ifaces.insert(name.to_string(), id);
        for i in &mut self.ifaces {
            if i.master == Some(id) {
                i.master = None;
            }
        }
        Ok(())
    }

    /// `ip link set NAME master BRIDGE` (or `nomaster` with `None`).
    pub fn link_set_master(
        &mut self,
        ns: NetnsId,
        name: &str,
        bridge: Option<&str>,
    ) -> Result<(), IpError> {
        let id = self.iface_id(ns, name)?;
        let master = match bridge {
            None => None,
            Some(b) => {
                let br = self.iface_id(ns, b)?;
                if !matches!(self.ifaces[br.0 as usize].kind, Kind::Bridge(_)) {
                    return Err(IpError::Message(
                        "RTNETLINK answers: Operation not supported".into(),
                    ));
                }
                if br == id
                    || matches!(self.ifaces[id.0 as usize].kind, Kind::Bridge(_) | Kind::Loopback)
                {
                    return Err(IpError::Message(
                        "Error: Can not enslave a bridge to a bridge.".into(),
                    ));
                }
                Some(br)
            }
        };
        let ifc = &mut self.ifaces[id.0 as usize];
        if let (Some(old), None) = (ifc.master, master)
            && let Kind::Bridge(b) = &mut self.ifaces[old.0 as usize].kind
        {
            b.fdb.retain(|_, (p, _)| *p != id);
        }
        self.ifaces[id.0 as usize].master = master;
        Ok(())
    }

    /// `ip link set NAME up|down`.
    pub fn link_set_up(&mut self, ns: NetnsId, name: &str, up: bool) -> Result<(), IpError> {
        let id = self.iface_id(ns, name)?;
        if up {
            if !self.ifaces[id.0 as usize].up {
                self.ifaces[id.0 as usize].up = true;
                self.on_link_up(id);
            }
        } else {
            self.set_down(id);
        }
        Ok(())
    }

    /// `ip link set NAME mtu N`.
    pub fn link_set_mtu(&mut self, ns: NetnsId, name: &str, mtu: u32) -> Result<(), IpError> {
        let id = self.iface_id(ns, name)?;
        if !(68..=65535).contains(&mtu) {
            let msg = if mtu < 68 {
                "Error: mtu less than device minimum."
            } else {
                "Error: mtu greater than device maximum."
            };
            return Err(IpError::Message(msg.into()));
        }
        self.ifaces[id.0 as usize].mtu = mtu;
        Ok(())
    }

    /// `ip link set NAME address MAC`.
    pub fn link_set_address(
        &mut self,
        ns: NetnsId,
        name: &str,
        mac: [u8; 6],
    ) -> Result<(), IpError> {
        let id = self.iface_id(ns, name)?;
        if mac[0] & 1 == 1 {
            return Err(IpError::Message(
                "RTNETLINK answers: Cannot assign requested address".into(),
            ));
        }
        self.ifaces[id.0 as usize].mac = mac;
        Ok(())
    }

    /// `ip link set NAME name NEW` (the device must be down, as in Linux).
    pub fn link_set_name(&mut self, ns: NetnsId, name: &str, new: &str) -> Result<(), IpError> {
        let id = self.iface_id(ns, name)?;
        if self.ifaces[id.0 as usize].up {
            return Err(IpError::Message("RTNETLINK answers: Device or resource busy".into()));
        }
        self.check_new_name(ns, new)?;
        let n = &mut self.namespaces[ns.0 as usize];
        n.ifaces.remove(name);
        n.ifaces.insert(new.to_string(), id);
        self.ifaces[id.0 as usize].name = new.to_string();
        Ok(())
    }

    /// `bridge link set dev NAME hairpin on|off`: whether the bridge may send a frame back out
    /// of the port it came in by.
    pub fn link_set_hairpin(&mut self, ns: NetnsId, name: &str, on: bool) -> Result<(), IpError> {
        let id = self.iface_id(ns, name)?;
        if self.ifaces[id.0 as usize].master.is_none() {
            return Err(IpError::Message("Error: Device is not a bridge port.".into()));
        }
        self.ifaces[id.0 as usize].hairpin = on;
        Ok(())
    }

    pub(crate) fn on_link_up(&mut self, id: IfaceId) {
        let ns = self.ifaces[id.0 as usize].ns;
        let addrs = self.ifaces[id.0 as usize].addrs.clone();
        if addrs.is_empty() {
            return;
        }
        for a in addrs {
            self.add_connected_route(id, a);
        }
        self.addrs_changed(ns);
    }

    fn set_down(&mut self, id: IfaceId) {
        let ifc = &mut self.ifaces[id.0 as usize];
        if !ifc.up {
            return;
        }
        ifc.up = false;
        let ns = ifc.ns;
        let had_addrs = !ifc.addrs.is_empty();
        let n = &mut self.namespaces[ns.0 as usize];
        n.routes.remove_where(|r| r.dev == id);
        let keys: Vec<_> = n.neigh.keys().filter(|(i, _)| *i == id).copied().collect();
        let mut dropped = Vec::new();
        for k in keys {
            if let Some(e) = n.neigh.remove(&k) {
                dropped.extend(e.pending);
            }
        }
        for p in dropped {
            self.drop_frame(ns, Some(id), p.frame, crate::DropReason::InterfaceDown);
        }
        if let Kind::Bridge(b) = &mut self.ifaces[id.0 as usize].kind {
            b.fdb.clear();
        }
        if had_addrs {
            self.addrs_changed(ns);
        }
    }

    fn add_connected_route(&mut self, id: IfaceId, a: IpNet) {
        let ifc = &self.ifaces[id.0 as usize];
        if matches!(ifc.kind, Kind::Loopback) || a.prefix_len() == a.max_prefix_len() {
            return;
        }
        let ns = ifc.ns;
        let route = Route {
            dst: a.trunc(),
            via: None,
            dev: id,
            metric: 0,
            src: Some(a.addr()),
            proto: RouteProto::Kernel,
            onlink: false,
        };
        let _ = self.namespaces[ns.0 as usize].routes.add(route, false);
    }

    /// The addresses of `ns` changed (an address, or an interface carrying addresses, came or
    /// went): rebuilds the local-address index and tells the socket layer.
    pub(crate) fn addrs_changed(&mut self, ns: NetnsId) {
        let mut local = super::LocalAddrs::default();
        let mut addrs = Vec::new();
        for i in self.namespaces[ns.0 as usize].ifaces.values() {
            let ifc = &self.ifaces[i.0 as usize];
            if !ifc.up {
                continue;
            }
            for a in &ifc.addrs {
                addrs.push(*a);
                local.own.insert(a.addr());
                if matches!(ifc.kind, Kind::Loopback) {
                    // Linux's `local 127.0.0.0/8 dev lo` route: the whole loopback prefix is
                    // local; other addresses on lo are local one by one.
                    if a.addr().is_loopback() {
                        local.loopback.push(*a);
                    }
                } else if a.addr().is_ipv4() && a.prefix_len() < 31 {
                    local.broadcast.insert(a.broadcast());
                }
            }
        }
        let own: Vec<std::net::IpAddr> = addrs.iter().map(|a| a.addr()).collect();
        let n = &mut self.namespaces[ns.0 as usize];
        n.local = local;
        // `-m addrtype --dst-type LOCAL` (kube-proxy's NodePort rules) matches these.
        n.netfilter.set_local_addrs(&own);
        if let Some(s) = n.stack.as_mut() {
            s.set_addresses(&addrs);
        }
    }

    /// `ip addr add ADDR/LEN dev NAME` (adds the connected route when the device is up).
    pub fn addr_add(&mut self, ns: NetnsId, dev: &str, addr: IpNet) -> Result<(), IpError> {
        let id = self.iface_id(ns, dev)?;
        let ifc = &mut self.ifaces[id.0 as usize];
        if ifc.addrs.iter().any(|a| a.addr() == addr.addr()) {
            return Err(IpError::Exists);
        }
        ifc.addrs.push(addr);
        if ifc.up {
            self.add_connected_route(id, addr);
        }
        self.addrs_changed(ns);
        Ok(())
    }

    /// `ip addr del ADDR/LEN dev NAME` (and its connected route).
    pub fn addr_del(&mut self, ns: NetnsId, dev: &str, addr: IpNet) -> Result<(), IpError> {
        let id = self.iface_id(ns, dev)?;
        let ifc = &mut self.ifaces[id.0 as usize];
        let Some(pos) = ifc.addrs.iter().position(|a| a.addr() == addr.addr()) else {
            return Err(IpError::Message(
                "RTNETLINK answers: Cannot assign requested address".into(),
            ));
        };
        let removed = ifc.addrs.remove(pos);
        self.namespaces[ns.0 as usize].routes.remove_where(|r| {
            r.dev == id && r.proto == RouteProto::Kernel && r.dst == removed.trunc()
        });
        self.addrs_changed(ns);
        Ok(())
    }

    /// `ip addr flush dev NAME`.
    pub fn addr_flush(&mut self, ns: NetnsId, dev: &str) -> Result<(), IpError> {
        let id = self.iface_id(ns, dev)?;
        let addrs = self.ifaces[id.0 as usize].addrs.clone();
        for a in addrs {
            self.addr_del(ns, dev, a)?;
        }
        Ok(())
    }

    /// `ip route add|replace`: the gateway must be reachable on-link (through a connected route)
    /// and the device, if named, must exist and be the one leading to the gateway.
    pub fn route_add(
        &mut self,
        ns: NetnsId,
        spec: &RouteSpec,
        replace: bool,
    ) -> Result<(), IpError> {
        let dev = match &spec.dev {
            Some(d) => Some(self.iface_id(ns, d)?),
            None => None,
        };
        let dev = match spec.via {
            Some(gw) => {
                if gw.is_ipv4() != spec.dst.addr().is_ipv4() {
                    return Err(IpError::Message("Error: Nexthop has invalid gateway.".into()));
                }
                if spec.onlink {
                    // The kernel takes the caller's word that the gateway is on this link.
                    let d = dev.ok_or_else(|| {
                        IpError::Message("Error: Device for nexthop is not specified.".into())
                    })?;
                    if !self.ifaces[d.0 as usize].up {
                        return Err(IpError::Message("Error: Nexthop device is not up.".into()));
                    }
                    d
                } else {
                    let n = &self.namespaces[ns.0 as usize];
                    let connected = n.routes.routes().iter().find(|r| {
                        r.via.is_none() && r.dst.contains(&gw) && dev.is_none_or(|d| d == r.dev)
                    });
                    match connected {
                        Some(r) => r.dev,
                        None => {
                            return Err(IpError::Message(
                                "Error: Nexthop has invalid gateway.".into(),
                            ));
                        }
                    }
                }
            }
            None => {
                let d = dev.ok_or_else(|| {
                    IpError::Message("Error: Device for nexthop is not specified.".into())
                })?;
                if !self.ifaces[d.0 as usize].up {
                    return Err(IpError::Message("Error: Nexthop device is not up.".into()));
                }
                d
            }
        };
        if spec.src.is_some_and(|s| !self.is_own_addr(ns, s)) {
            return Err(IpError::Message("Error: Invalid prefsrc address.".into()));
        }
        let route = Route {
            dst: spec.dst.trunc(),
            via: spec.via,
            dev,
            metric: spec.metric,
            src: spec.src,
            proto: RouteProto::Boot,
            onlink: spec.onlink && spec.via.is_some(),
        };
        self.namespaces[ns.0 as usize].routes.add(route, replace).map_err(|_| IpError::Exists)
    }

    /// `ip route del DST [via GW] [dev DEV] [metric N]`.
    pub fn route_del(
        &mut self,
        ns: NetnsId,
        dst: IpNet,
        via: Option<IpAddr>,
        dev: Option<&str>,
        metric: Option<u32>,
    ) -> Result<(), IpError> {
        let dev = match dev {
            Some(d) => Some(self.iface_id(ns, d)?),
            None => None,
        };
        let dst = dst.trunc();
        let mut first = true;
        let removed = self.namespaces[ns.0 as usize].routes.remove_where(|r| {
            let m = first
                && r.dst == dst
                && via.is_none_or(|v| r.via == Some(v))
                && dev.is_none_or(|d| r.dev == d)
                && metric.is_none_or(|m| r.metric == m);
            if m {
                first = false;
            }
            m
        });
        if removed == 0 {
            return Err(IpError::Message("RTNETLINK answers: No such process".into()));
        }
        Ok(())
    }

    /// `ip route get ADDR`, with the lookup explained.
    pub fn route_get(&self, ns: NetnsId, dst: IpAddr) -> Result<RouteGet, IpError> {
        let n = &self.namespaces[ns.0 as usize];
        let fmt = |r: &Route| self.format_route(r);
        let considered: Vec<(String, bool)> =
            n.routes.routes().iter().map(|r| (fmt(r), r.dst.contains(&dst))).collect();
        if self.is_local_dst(ns, dst) && !matches!(dst, IpAddr::V4(a) if a.is_broadcast()) {
            return Ok(RouteGet {
                dst,
                local: true,
                via: None,
                dev: "lo".into(),
                src: dst,
                considered,
                chosen: None,
            });
        }
        let r = n
            .routes
            .lookup(dst)
            .ok_or_else(|| IpError::Message("RTNETLINK answers: Network is unreachable".into()))?;
        Ok(RouteGet {
            dst,
            local: false,
            via: r.via,
            dev: self.ifaces[r.dev.0 as usize].name.clone(),
            src: self.select_src(ns, dst),
            considered,
            chosen: Some(fmt(r)),
        })
    }

    /// `ip neigh add|replace IP lladdr MAC dev NAME` (a PERMANENT entry).
    pub fn neigh_add(
        &mut self,
        ns: NetnsId,
        ip: IpAddr,
        mac: [u8; 6],
        dev: &str,
        replace: bool,
    ) -> Result<(), IpError> {
        let id = self.iface_id(ns, dev)?;
        let now = self.now();
        let n = &mut self.namespaces[ns.0 as usize];
        if !replace && n.neigh.get(&(id, ip)).is_some_and(|e| e.permanent) {
            return Err(IpError::Exists);
        }
        let pending = n.neigh.remove(&(id, ip)).map(|e| e.pending).unwrap_or_default();
        n.neigh.insert(
            (id, ip),
            Neigh {
                mac: Some(mac),
                permanent: true,
                failed: false,
                confirmed: now,
                probes: 0,
                reprobed: crate::time::Time::ZERO,
                pending: Vec::new(),
            },
        );
        let own = self.ifaces[id.0 as usize].mac;
        for p in pending {
            let mut f = p.frame;
            super::packet::write_eth(&mut f.buf, mac, own, smoltcp::wire::EthernetProtocol::Ipv4);
            self.xmit(id, f);
        }
        Ok(())
    }

    /// `ip neigh del IP dev NAME`.
    pub fn neigh_del(&mut self, ns: NetnsId, ip: IpAddr, dev: &str) -> Result<(), IpError> {
        let id = self.iface_id(ns, dev)?;
        match self.namespaces[ns.0 as usize].neigh.remove(&(id, ip)) {
            Some(e) => {
                for p in e.pending {
                    self.drop_frame(ns, Some(id), p.frame, crate::DropReason::NoNeighbour);
                }
                Ok(())
            }
            None => Err(IpError::Message("RTNETLINK answers: No such file or directory".into())),
        }
    }

    /// The neighbour table of `ns`: (address, device, MAC, state), in device then address order.
    pub fn neigh_list(
        &self,
        ns: NetnsId,
    ) -> Vec<(IpAddr, String, Option<[u8; 6]>, super::NeighState)> {
        use super::NeighState;
        let now = self.now();
        self.namespaces[ns.0 as usize]
            .neigh
            .iter()
            .map(|((dev, ip), e)| {
                let state = if e.permanent {
                    NeighState::Permanent
                } else if e.failed {
                    NeighState::Failed
                } else if e.mac.is_none() {
                    NeighState::Incomplete
                } else if now - e.confirmed < super::NEIGH_REACHABLE {
                    NeighState::Reachable
                } else {
                    NeighState::Stale
                };
                (*ip, self.ifaces[dev.0 as usize].name.clone(), e.mac, state)
            })
            .collect()
    }

    /// `bridge fdb append MAC dev VXLAN dst IP`: frames for `mac` (all-zero: any unknown or
    /// broadcast destination) are sent to the VTEP `dst`.
    pub fn fdb_append(
        &mut self,
        ns: NetnsId,
        dev: &str,
        mac: [u8; 6],
        dst: IpAddr,
    ) -> Result<(), IpError> {
        let id = self.iface_id(ns, dev)?;
        match &mut self.ifaces[id.0 as usize].kind {
            Kind::Vxlan(v) => {
                let list = v.fdb.entry(mac).or_default();
                if list.contains(&dst) {
                    return Err(IpError::Exists);
                }
                list.push(dst);
                Ok(())
            }
            _ => Err(IpError::Message("RTNETLINK answers: Operation not supported".into())),
        }
    }

    /// `bridge fdb del MAC dev VXLAN [dst IP]`.
    pub fn fdb_del(
        &mut self,
        ns: NetnsId,
        dev: &str,
        mac: [u8; 6],
        dst: Option<IpAddr>,
    ) -> Result<(), IpError> {
        let id = self.iface_id(ns, dev)?;
        let Kind::Vxlan(v) = &mut self.ifaces[id.0 as usize].kind else {
            return Err(IpError::Message("RTNETLINK answers: Operation not supported".into()));
        };
        let Some(list) = v.fdb.get_mut(&mac) else {
            return Err(IpError::Message("RTNETLINK answers: No such file or directory".into()));
        };
        match dst {
            Some(d) => list.retain(|x| *x != d),
            None => list.clear(),
        }
        if list.is_empty() {
            v.fdb.remove(&mac);
        }
        Ok(())
    }

    /// `sysctl -w KEY=VALUE` for the keys kns models (`net.ipv4.ip_forward`,
    /// `net.ipv4.conf.all.forwarding`, `net.ipv4.conf.DEV.proxy_arp`,
    /// `net.bridge.bridge-nf-call-iptables`). Returns
    /// `KEY = VALUE` as sysctl prints it.
    pub fn sysctl(
        &mut self,
        ns: NetnsId,
        key: &str,
        value: Option<&str>,
    ) -> Result<String, IpError> {
        let key_norm = key.replace('/', ".");
        if let Some(dev) =
            key_norm.strip_prefix("net.ipv4.conf.").and_then(|k| k.strip_suffix(".proxy_arp"))
        {
            let id = self.iface_id(ns, dev).map_err(|_| {
                IpError::Message(format!(
                    "sysctl: cannot stat /proc/sys/net/ipv4/conf/{dev}/proxy_arp: No such file or directory"
                ))
            })?;
            let slot = &mut self.ifaces[id.0 as usize].proxy_arp;
            if let Some(v) = value {
                *slot = parse_bool_sysctl(&key_norm, v)?;
            }
            return Ok(format!("{key_norm} = {}", u8::from(*slot)));
        }
        let n = &mut self.namespaces[ns.0 as usize];
        let slot = match key_norm.as_str() {
            "net.ipv4.ip_forward" | "net.ipv4.conf.all.forwarding" => &mut n.ip_forward,
            "net.bridge.bridge-nf-call-iptables" => &mut n.bridge_nf,
            _ => {
                return Err(IpError::Message(format!(
                    "sysctl: cannot stat /proc/sys/{}: No such file or directory",
                    key_norm.replace('.', "/")
                )));
            }
        };
        if let Some(v) = value {
            *slot = parse_bool_sysctl(&key_norm, v)?;
        }
        Ok(format!("{key_norm} = {}", u8::from(*slot)))
    }
}

fn parse_bool_sysctl(key: &str, value: &str) -> Result<bool, IpError> {
    match value.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(IpError::Message(format!(
            "sysctl: setting key \"{key}\": Invalid argument (value \"{other}\")"
        ))),
    }
}
