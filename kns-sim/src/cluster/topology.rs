//! The machines of a cluster and the wires between them: a `fabric0` bridge in the root
//! namespace is the node network; every node is a namespace with `eth0` on it; a `router`
//! namespace joins the node network to an `internet` namespace that stands for everything
//! outside the cluster.
//!
//! ```text
//!   internet (203.0.113.10) ── router ── fabric0 ──┬── node-1 (eth0 192.168.0.11)
//!                                                  └── node-2 (eth0 192.168.0.12)
//! ```

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use kns_core::model::{Cluster, CniMode, NodeId};

use super::ClusterError;
use crate::net::{NetnsId, RouteSpec, Sim, VxlanConfig};

/// The network outside the cluster: where pods' traffic to the internet goes.
pub const INTERNET_NET: &str = "203.0.113.0/24";
/// The router's address on the internet side.
pub const INTERNET_GATEWAY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The outside host (a web server and DNS upstream stand here).
pub const INTERNET_HOST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// The UDP port flannel's VXLAN backend uses.
pub const VXLAN_PORT: u16 = 8472;
/// The VXLAN device of the overlay mode.
pub const VXLAN_DEV: &str = "flannel.1";

/// The namespaces and addresses of the machines outside the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside {
    /// The router between the node network and the internet.
    pub router: NetnsId,
    /// The internet host's namespace.
    pub internet: NetnsId,
    /// The router's address on the node network: every node's default gateway.
    pub gateway: IpAddr,
    /// The internet host's address.
    pub host: IpAddr,
}

/// One node's namespace and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNet {
    /// The node in the cluster model.
    pub id: NodeId,
    /// Its namespace (named as the node).
    pub ns: NetnsId,
    /// Its address on the node network.
    pub ip: IpAddr,
    /// Its slice of the pod network.
    pub pod_cidr: IpNet,
}

/// The highest host address of `net` not in `taken`: the router's address.
fn gateway_address(net: IpNet, taken: &[IpAddr]) -> Option<IpAddr> {
    let IpNet::V4(v4) = net else { return None };
    let mut a = u32::from(v4.broadcast()).checked_sub(1)?;
    while a > u32::from(v4.network()) {
        let ip = IpAddr::V4(Ipv4Addr::from(a));
        if !taken.contains(&ip) {
            return Some(ip);
        }
        a -= 1;
    }
    None
}

/// A MAC address for a node's VXLAN device, fixed by the node's index.
pub fn vxlan_mac(node: NodeId) -> [u8; 6] {
    let i = node.0;
    [0x0a, 0x58, 0xfe, (i >> 16) as u8, (i >> 8) as u8, i as u8]
}

fn err(what: impl std::fmt::Display) -> ClusterError {
    ClusterError::Build(what.to_string())
}

/// Builds the node network, the router and the internet host, and every node's namespace.
pub(super) fn build_machines(
    sim: &mut Sim,
    cluster: &Cluster,
) -> Result<(Outside, Vec<NodeNet>), ClusterError> {
    let node_net = cluster.config.node_cidr;
    let prefix = node_net.prefix_len();
    sim.link_add_bridge(Sim::ROOT, "fabric0").map_err(err)?;
    sim.link_set_up(Sim::ROOT, "fabric0", true).map_err(err)?;

    // The router keeps clear of the nodes and of the load-balancer pool, whose addresses the
    // speaker announces on the same network.
    let taken: Vec<IpAddr> = cluster
        .nodes
        .iter()
        .map(|n| n.ip)
        .chain(cluster.services.iter().flat_map(|s| s.load_balancer_ips.iter().copied()))
        .chain(cluster.config.load_balancer_pool.iter().flat_map(|r| r.iter().take(4096)))
        .collect();
    let gateway = gateway_address(node_net, &taken)
        .ok_or_else(|| err(format!("no free address for the router in {node_net}")))?;

    // The router: one leg on the node network, one on the internet.
    let router = sim.netns_add("router").map_err(err)?;
    sim.set_ip_forward(router, true);
    attach_to_fabric(sim, router, "r0", gateway, prefix)?;
    let internet = sim.netns_add("internet").map_err(err)?;
    sim.link_add_veth(router, "eth1", "eth0", Some(internet)).map_err(err)?;
    let inet: IpNet = INTERNET_NET.parse().expect("valid literal");
    sim.addr_add(
        router,
        "eth1",
        IpNet::new(INTERNET_GATEWAY.into(), inet.prefix_len()).expect("valid"),
    )
    .map_err(err)?;
    sim.addr_add(
        internet,
        "eth0",
        IpNet::new(INTERNET_HOST.into(), inet.prefix_len()).expect("valid"),
    )
    .map_err(err)?;
    sim.link_set_up(router, "eth1", true).map_err(err)?;
    sim.link_set_up(internet, "eth0", true).map_err(err)?;
    sim.link_set_up(internet, "lo", true).map_err(err)?;
    sim.route_add(
        internet,
        &RouteSpec::via("0.0.0.0/0".parse().expect("valid"), INTERNET_GATEWAY.into()),
        false,
    )
    .map_err(err)?;

    let mut nodes = Vec::with_capacity(cluster.nodes.len());
    for (k, node) in cluster.nodes.iter().enumerate() {
        let ns = sim
            .netns_add(&node.name)
            .map_err(|e| err(format!("node `{}`: cannot create its namespace: {e}", node.name)))?;
        sim.set_ip_forward(ns, true);
        sim.sysctl(ns, "net.bridge.bridge-nf-call-iptables", Some("1")).map_err(err)?;
        attach_to_fabric(sim, ns, &format!("n{k}"), node.ip, prefix)?;
        sim.route_add(ns, &RouteSpec::via("0.0.0.0/0".parse().expect("valid"), gateway), false)
            .map_err(err)?;
        nodes.push(NodeNet { id: node.id, ns, ip: node.ip, pod_cidr: node.pod_cidr });
    }
    Ok((Outside { router, internet, gateway, host: INTERNET_HOST.into() }, nodes))
}

/// Gives `ns` an `eth0` on the fabric with `ip/prefix`; `port` names the bridge's end.
fn attach_to_fabric(
    sim: &mut Sim,
    ns: NetnsId,
    port: &str,
    ip: IpAddr,
    prefix: u8,
) -> Result<(), ClusterError> {
    sim.link_add_veth(Sim::ROOT, port, "eth0", Some(ns)).map_err(err)?;
    sim.link_set_master(Sim::ROOT, port, Some("fabric0")).map_err(err)?;
    sim.link_set_up(Sim::ROOT, port, true).map_err(err)?;
    sim.addr_add(ns, "eth0", IpNet::new(ip, prefix).map_err(err)?).map_err(err)?;
    sim.link_set_up(ns, "eth0", true).map_err(err)?;
    sim.link_set_up(ns, "lo", true).map_err(err)?;
    Ok(())
}

/// What a flannel-like network daemon installs on every node: routes to the other nodes' pod
/// slices (directly via their addresses, or through the VXLAN device), and SNAT for pod
/// traffic that leaves the pod network.
pub(super) fn install_pod_routes(
    sim: &mut Sim,
    cluster: &Cluster,
    nodes: &[NodeNet],
) -> Result<(), ClusterError> {
    let pod_net = cluster.config.pod_cidr;
    for node in nodes {
        if cluster.config.cni == CniMode::Overlay {
            let cfg = VxlanConfig {
                vni: 1,
                local: Some(node.ip),
                remote: None,
                dstport: VXLAN_PORT,
                dev: Some("eth0".into()),
            };
            sim.link_add_vxlan(node.ns, VXLAN_DEV, cfg).map_err(err)?;
            sim.link_set_address(node.ns, VXLAN_DEV, vxlan_mac(node.id)).map_err(err)?;
            let own =
                IpNet::new(node.pod_cidr.network(), node.pod_cidr.max_prefix_len()).map_err(err)?;
            sim.addr_add(node.ns, VXLAN_DEV, own).map_err(err)?;
            sim.link_set_up(node.ns, VXLAN_DEV, true).map_err(err)?;
        }
        for other in nodes.iter().filter(|o| o.id != node.id) {
            match cluster.config.cni {
                CniMode::Routed => {
                    sim.route_add(node.ns, &RouteSpec::via(other.pod_cidr, other.ip), false)
                        .map_err(err)?;
                }
                CniMode::Overlay => {
                    let gw = other.pod_cidr.network();
                    let mut spec = RouteSpec::via(other.pod_cidr, gw);
                    spec.dev = Some(VXLAN_DEV.into());
                    spec.onlink = true;
                    sim.route_add(node.ns, &spec, false).map_err(err)?;
                    sim.neigh_add(node.ns, gw, vxlan_mac(other.id), VXLAN_DEV, true)
                        .map_err(err)?;
                    sim.fdb_append(node.ns, VXLAN_DEV, vxlan_mac(other.id), other.ip)
                        .map_err(err)?;
                }
            }
        }
        // Pods keep their addresses inside the pod network; anything leaving it is SNATed to
        // the node (flannel's `--ip-masq`).
        let now = sim.now();
        let args: Vec<String> = [
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            &pod_net.to_string(),
            "!",
            "-d",
            &pod_net.to_string(),
            "-m",
            "comment",
            "--comment",
            "pod traffic leaving the pod network",
            "-j",
            "MASQUERADE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        sim.netfilter_mut(node.ns).iptables(now, &args).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_takes_the_highest_free_address() {
        let net: IpNet = "192.168.0.0/24".parse().unwrap();
        let taken = ["192.168.0.254".parse().unwrap()];
        assert_eq!(gateway_address(net, &taken), Some("192.168.0.253".parse().unwrap()));
        assert_eq!(gateway_address(net, &[]), Some("192.168.0.254".parse().unwrap()));
    }

    #[test]
    fn vxlan_macs_differ_per_node() {
        assert_ne!(vxlan_mac(NodeId(0)), vxlan_mac(NodeId(1)));
        assert_eq!(vxlan_mac(NodeId(0))[0] & 1, 0, "unicast");
    }
}
