//! A read-only view of the device model: which namespaces exist, which devices each holds,
//! and how they are wired (veth peers, bridge masters, VXLAN lower devices and remotes).
//! Pictures of a topology are drawn from this view, so they show what was actually wired.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{IfaceId, Kind, NetnsId, Sim};

/// What kind of device an interface is, with the wiring that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    /// The namespace's loopback device.
    Loopback,
    /// One end of a veth pair.
    Veth {
        /// The other end (possibly in another namespace).
        peer: IfaceId,
    },
    /// A learning bridge; its ports are the devices whose `master` it is.
    Bridge,
    /// A VXLAN tunnel device.
    Vxlan {
        /// The VXLAN network identifier.
        vni: u32,
        /// The device the encapsulated packets leave through (`dev eth0`), if set.
        dev: Option<String>,
        /// Remote tunnel endpoints from the static FDB (`bridge fdb append`) and the `remote`
        /// option, sorted and without duplicates.
        remotes: Vec<IpAddr>,
    },
    /// A dummy device.
    Dummy,
}

/// One interface as `ip -d link` and `ip addr` would describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The interface.
    pub id: IfaceId,
    /// Its namespace.
    pub ns: NetnsId,
    /// Its name in that namespace.
    pub name: String,
    /// Its kind and wiring.
    pub kind: LinkKind,
    /// The bridge it is a port of, if any.
    pub master: Option<IfaceId>,
    /// Administratively up.
    pub up: bool,
    /// Its MTU.
    pub mtu: u32,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Its addresses, in the order they were added.
    pub addrs: Vec<IpNet>,
}

impl Sim {
    /// The namespaces that exist (the root namespace first), in creation order.
    pub fn namespaces(&self) -> Vec<NetnsId> {
        (0..self.namespaces.len())
            .filter(|i| self.namespaces[*i].alive)
            .map(|i| NetnsId(i as u32))
            .collect()
    }

    /// Every device of `ns`, ordered by name.
    pub fn links(&self, ns: NetnsId) -> Vec<LinkInfo> {
        self.namespaces[ns.0 as usize].ifaces.values().map(|id| self.link(*id)).collect()
    }

    /// One device, by id (also one that was deleted: its last state).
    pub fn link(&self, id: IfaceId) -> LinkInfo {
        let ifc = &self.ifaces[id.0 as usize];
        let kind = match &ifc.kind {
            Kind::Loopback => LinkKind::Loopback,
            Kind::Veth(v) => LinkKind::Veth { peer: v.peer },
            Kind::Bridge(_) => LinkKind::Bridge,
            Kind::Vxlan(v) => {
                let mut remotes: Vec<IpAddr> =
                    v.fdb.values().flatten().copied().chain(v.cfg.remote).collect();
                remotes.sort();
                remotes.dedup();
                LinkKind::Vxlan { vni: v.cfg.vni, dev: v.cfg.dev.clone(), remotes }
            }
            Kind::Dummy => LinkKind::Dummy,
        };
        LinkInfo {
            id,
            ns: ifc.ns,
            name: ifc.name.clone(),
            kind,
            master: ifc.master,
            up: ifc.up,
            mtu: ifc.mtu,
            mac: ifc.mac,
            addrs: ifc.addrs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::VxlanConfig;

    #[test]
    fn links_show_peers_masters_and_tunnels() {
        let mut sim = Sim::new(1);
        let red = sim.netns_add("red").unwrap();
        sim.link_add_bridge(Sim::ROOT, "br0").unwrap();
        let (host, pod) = sim.link_add_veth(Sim::ROOT, "veth0", "eth0", Some(red)).unwrap();
        sim.link_set_master(Sim::ROOT, "veth0", Some("br0")).unwrap();
        sim.addr_add(red, "eth0", "10.0.0.2/24".parse().unwrap()).unwrap();
        let cfg = VxlanConfig {
            vni: 7,
            local: None,
            remote: None,
            dstport: 4789,
            dev: Some("eth0".into()),
        };
        sim.link_add_vxlan(red, "vx0", cfg).unwrap();
        sim.fdb_append(red, "vx0", [2, 0, 0, 0, 0, 1], "192.0.2.9".parse().unwrap()).unwrap();

        assert_eq!(sim.namespaces(), vec![Sim::ROOT, red]);
        let root: Vec<String> = sim.links(Sim::ROOT).into_iter().map(|l| l.name).collect();
        assert_eq!(root, ["br0", "lo", "veth0"]);
        let veth = sim.link(host);
        assert_eq!(veth.kind, LinkKind::Veth { peer: pod });
        assert_eq!(veth.master, Some(sim.iface_id(Sim::ROOT, "br0").unwrap()));
        let eth0 = sim.link(pod);
        assert_eq!((eth0.ns, eth0.addrs.clone()), (red, vec!["10.0.0.2/24".parse().unwrap()]));
        let vx = sim.links(red).into_iter().find(|l| l.name == "vx0").unwrap();
        assert_eq!(
            vx.kind,
            LinkKind::Vxlan {
                vni: 7,
                dev: Some("eth0".into()),
                remotes: vec!["192.0.2.9".parse().unwrap()]
            }
        );
    }
}
