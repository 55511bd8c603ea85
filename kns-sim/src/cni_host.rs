//! [`SimNetHost`]: kns-core's CNI [`NetHost`] over a [`Sim`], for one node. The node is a Sim
//! namespace (host-side veths and bridges go there); a container's netns path
//! `/var/run/netns/NAME` (or `/run/netns/NAME`) is the Sim namespace named `NAME`. Link,
//! address, route and sysctl operations go through the Sim's iproute2-like configuration API,
//! `iptables` through the namespace's netfilter, and files to the node's [`MemFiles`], which
//! the caller keeps (one per node) between calls.
//!
//! ```
//! use kns_core::cni::{CniRuntime, MemFiles, RuntimeConf};
//! use kns_sim::Sim;
//! use kns_sim::cni_host::{SimNetHost, netns_path};
//!
//! let mut sim = Sim::new(1);
//! let node = sim.netns_add("node-a").unwrap();
//! sim.netns_add("web").unwrap();
//! let mut files = MemFiles::new();
//! let runtime = CniRuntime::with_reference_plugins();
//! let mut host = SimNetHost::new(&mut sim, node, &mut files);
//! CniRuntime::install_config(&mut host, "99-loopback.conf",
//!     r#"{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}"#);
//! let net = runtime.load_config(&host).unwrap();
//! let rt = RuntimeConf {
//!     container_id: "c1".into(),
//!     netns: netns_path("web"),
//!     ifname: "lo".into(),
//!     ..Default::default()
//! };
//! let result = runtime.add(&mut host, &net.list, &rt).unwrap();
//! assert_eq!(result.ips[0].address.to_string(), "127.0.0.1/8");
//! ```

use ipnet::IpNet;
use kns_core::cni::{HostError, LinkInfo, LinkKind, MemFiles, NetHost, Netns, RouteEntry};

use crate::net::{IfaceId, IpError, Kind, NetnsId, Sim};

/// The netns path of the Sim namespace `name`, as a runtime passes it in `CNI_NETNS`.
pub fn netns_path(name: &str) -> String {
    format!("/var/run/netns/{name}")
}

/// The Sim namespace name of a netns path, if it has the `/var/run/netns/` (or `/run/netns/`)
/// form.
pub fn netns_name(path: &str) -> Option<&str> {
    path.strip_prefix("/var/run/netns/")
        .or_else(|| path.strip_prefix("/run/netns/"))
        .filter(|n| !n.is_empty())
}

/// One node of a [`Sim`], as CNI plugins see it.
pub struct SimNetHost<'a> {
    sim: &'a mut Sim,
    node: NetnsId,
    files: &'a mut MemFiles,
}

impl<'a> SimNetHost<'a> {
    /// The node whose own namespace is `node`, with its file store `files`.
    pub fn new(sim: &'a mut Sim, node: NetnsId, files: &'a mut MemFiles) -> SimNetHost<'a> {
        SimNetHost { sim, node, files }
    }

    /// The simulation (to inspect it between CNI calls).
    pub fn sim(&mut self) -> &mut Sim {
        self.sim
    }

    fn ns(&self, netns: Netns<'_>) -> Result<NetnsId, HostError> {
        match netns {
            Netns::Host => Ok(self.node),
            Netns::Path(p) => netns_name(p)
                .and_then(|n| self.sim.netns(Some(n)).ok())
                .ok_or_else(|| HostError::NoNetns(p.to_string())),
        }
    }

    fn info(&self, id: IfaceId) -> LinkInfo {
        let ifc = &self.sim.ifaces[id.0 as usize];
        let kind = match &ifc.kind {
            Kind::Loopback => LinkKind::Loopback,
            Kind::Veth(v) => {
                let p = &self.sim.ifaces[v.peer.0 as usize];
                let peer_netns = (p.ns != self.node).then(|| netns_path(self.sim.netns_name(p.ns)));
                LinkKind::Veth { peer_netns, peer: p.name.clone() }
            }
            Kind::Bridge(_) => LinkKind::Bridge,
            Kind::Vxlan(_) => LinkKind::Vxlan,
            Kind::Dummy => LinkKind::Dummy,
        };
        LinkInfo {
            name: ifc.name.clone(),
            ifindex: ifc.ifindex,
            kind,
            mac: ifc.mac,
            mtu: ifc.mtu,
            up: ifc.up,
            master: ifc.master.map(|m| self.sim.ifaces[m.0 as usize].name.clone()),
            hairpin: ifc.hairpin,
            addrs: ifc.addrs.clone(),
        }
    }
}

fn host_err(what: impl Into<String>) -> impl FnOnce(IpError) -> HostError {
    let what = what.into();
    move |e| match e {
        IpError::NoNetns(n) => HostError::NoNetns(netns_path(&n)),
        IpError::NoDevice(d) => HostError::NoLink(d),
        IpError::Exists => HostError::Exists(what),
        other => HostError::Refused(other.to_string()),
    }
}

impl NetHost for SimNetHost<'_> {
    fn netns_exists(&self, netns: &str) -> bool {
        self.ns(Netns::Path(netns)).is_ok()
    }

    fn link_add_veth(
        &mut self,
        netns: Netns<'_>,
        name: &str,
        peer: &str,
        peer_netns: Netns<'_>,
    ) -> Result<(), HostError> {
        let (ns, pns) = (self.ns(netns)?, self.ns(peer_netns)?);
        self.sim
            .link_add_veth(ns, name, peer, Some(pns))
            .map(drop)
            .map_err(host_err(format!("link {name}")))
    }

    fn link_add_bridge(&mut self, netns: Netns<'_>, name: &str) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim.link_add_bridge(ns, name).map(drop).map_err(host_err(format!("link {name}")))
    }

    fn link_del(&mut self, netns: Netns<'_>, name: &str) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim.link_del(ns, name).map_err(host_err(format!("link {name}")))
    }

    fn link_set_up(&mut self, netns: Netns<'_>, name: &str, up: bool) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim.link_set_up(ns, name, up).map_err(host_err(format!("link {name}")))
    }

    fn link_set_master(
        &mut self,
        netns: Netns<'_>,
        name: &str,
        master: Option<&str>,
    ) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim.link_set_master(ns, name, master).map_err(host_err(format!("link {name}")))
    }

    fn link_set_mtu(&mut self, netns: Netns<'_>, name: &str, mtu: u32) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim.link_set_mtu(ns, name, mtu).map_err(host_err(format!("link {name}")))
    }

    fn link_set_mac(
        &mut self,
        netns: Netns<'_>,
        name: &str,
        mac: [u8; 6],
    ) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim.link_set_address(ns, name, mac).map_err(host_err(format!("link {name}")))
    }

    fn link_set_hairpin(
        &mut self,
        netns: Netns<'_>,
        name: &str,
        on: bool,
    ) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim.link_set_hairpin(ns, name, on).map_err(host_err(format!("link {name}")))
    }

    fn link(&self, netns: Netns<'_>, name: &str) -> Result<LinkInfo, HostError> {
        let ns = self.ns(netns)?;
        let id = self.sim.iface_id(ns, name).map_err(host_err(format!("link {name}")))?;
        Ok(self.info(id))
    }

    fn links(&self, netns: Netns<'_>) -> Result<Vec<LinkInfo>, HostError> {
        let ns = self.ns(netns)?;
        Ok(self.sim.namespaces[ns.0 as usize].ifaces.values().map(|id| self.info(*id)).collect())
    }

    fn addr_add(&mut self, netns: Netns<'_>, dev: &str, addr: IpNet) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim.addr_add(ns, dev, addr).map_err(host_err(format!("address {addr}")))
    }

    fn addr_del(&mut self, netns: Netns<'_>, dev: &str, addr: IpNet) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim.addr_del(ns, dev, addr).map_err(host_err(format!("address {addr}")))
    }

    fn route_add(&mut self, netns: Netns<'_>, route: &RouteEntry) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        let spec = crate::net::RouteSpec {
            dst: route.dst,
            via: route.gw,
            dev: route.dev.clone(),
            metric: 0,
            src: route.src,
            onlink: route.onlink,
        };
        self.sim.route_add(ns, &spec, false).map_err(host_err(format!("route {}", route.dst)))
    }

    fn route_del(&mut self, netns: Netns<'_>, route: &RouteEntry) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim
            .route_del(ns, route.dst, route.gw, route.dev.as_deref(), None)
            .map_err(host_err(format!("route {}", route.dst)))
    }

    fn routes(&self, netns: Netns<'_>) -> Result<Vec<RouteEntry>, HostError> {
        let ns = self.ns(netns)?;
        Ok(self.sim.namespaces[ns.0 as usize]
            .routes
            .routes()
            .iter()
            .map(|r| RouteEntry {
                dst: r.dst,
                gw: r.via,
                dev: Some(self.sim.ifaces[r.dev.0 as usize].name.clone()),
                onlink: r.onlink,
                src: r.src,
            })
            .collect())
    }

    fn sysctl_set(&mut self, netns: Netns<'_>, key: &str, value: &str) -> Result<(), HostError> {
        let ns = self.ns(netns)?;
        self.sim.sysctl(ns, key, Some(value)).map(drop).map_err(host_err(key.to_string()))
    }

    fn sysctl_get(&mut self, netns: Netns<'_>, key: &str) -> Result<String, HostError> {
        let ns = self.ns(netns)?;
        let line = self.sim.sysctl(ns, key, None).map_err(host_err(key.to_string()))?;
        Ok(line.rsplit(" = ").next().unwrap_or_default().to_string())
    }

    fn iptables(&mut self, netns: Netns<'_>, args: &[String]) -> Result<String, HostError> {
        let ns = self.ns(netns)?;
        let now = self.sim.now();
        self.sim
            .netfilter_mut(ns)
            .iptables(now, args)
            .map_err(|e| HostError::Refused(e.to_string()))
    }

    fn files(&mut self) -> &mut MemFiles {
        self.files
    }

    fn files_ref(&self) -> &MemFiles {
        self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_sim_namespaces_and_links_read_back() {
        let mut sim = Sim::new(1);
        let node = sim.netns_add("node:a").unwrap();
        // The cluster names pod namespaces `pod:NS/NAME`, which `ip netns add` would refuse.
        sim.new_netns("pod:ns/p".into());
        let mut files = MemFiles::new();
        let mut h = SimNetHost::new(&mut sim, node, &mut files);
        assert!(h.netns_exists("/var/run/netns/pod:ns/p"));
        assert!(h.netns_exists("/run/netns/pod:ns/p"));
        assert!(!h.netns_exists("/var/run/netns/missing"));
        assert!(!h.netns_exists("pod:ns/p"));
        let pod = Netns::Path("/var/run/netns/pod:ns/p");
        h.link_add_bridge(Netns::Host, "cni0").unwrap();
        h.link_add_veth(pod, "eth0", "veth1", Netns::Host).unwrap();
        assert!(matches!(h.link_add_bridge(Netns::Host, "cni0"), Err(HostError::Exists(_))));
        h.link_set_master(Netns::Host, "veth1", Some("cni0")).unwrap();
        h.link_set_up(pod, "eth0", true).unwrap();
        h.addr_add(pod, "eth0", "10.0.0.2/24".parse().unwrap()).unwrap();
        let eth0 = h.link(pod, "eth0").unwrap();
        assert_eq!(eth0.kind, LinkKind::Veth { peer_netns: None, peer: "veth1".into() });
        assert_eq!(eth0.addrs, vec!["10.0.0.2/24".parse::<IpNet>().unwrap()]);
        let veth1 = h.link(Netns::Host, "veth1").unwrap();
        assert_eq!(veth1.master.as_deref(), Some("cni0"));
        assert_eq!(
            veth1.kind,
            LinkKind::Veth {
                peer_netns: Some("/var/run/netns/pod:ns/p".into()),
                peer: "eth0".into()
            }
        );
        let routes = h.routes(pod).unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].dev.as_deref(), Some("eth0"));
        h.sysctl_set(Netns::Host, "net.ipv4.ip_forward", "1").unwrap();
        assert_eq!(h.sysctl_get(Netns::Host, "net.ipv4.ip_forward").unwrap(), "1");
        assert!(matches!(h.link(pod, "nope"), Err(HostError::NoLink(_))));
        assert!(matches!(
            h.link(Netns::Path("/var/run/netns/x"), "lo"),
            Err(HostError::NoNetns(_))
        ));
        let args: Vec<String> = ["-t", "nat", "-N", "X"].iter().map(|s| s.to_string()).collect();
        h.iptables(Netns::Host, &args).unwrap();
        assert!(matches!(h.iptables(Netns::Host, &args), Err(HostError::Refused(_))));
        h.link_del(pod, "eth0").unwrap();
        assert!(matches!(h.link(Netns::Host, "veth1"), Err(HostError::NoLink(_))));
    }
}
