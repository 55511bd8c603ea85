//! The [`Cluster`]: every object of one emulated cluster, with lookups by name and address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::ids::{NamespaceId, NodeId, PodId, ServiceId};
use super::objects::*;

/// How pods on different nodes reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CniMode {
    /// host-gw style: each node routes the other nodes' pod CIDRs via their node IPs.
    #[default]
    Routed,
    /// VXLAN tunnels between nodes.
    Overlay,
}

/// Which service-proxy implementation programs the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    /// kube-proxy iptables mode: a chain per Service, probabilistic backend rules.
    #[default]
    Iptables,
    /// kube-proxy IPVS mode: hash lookup with a scheduler.
    Ipvs,
    /// kube-proxy nftables mode: verdict maps.
    Nftables,
    /// Maglev consistent hashing (as Cilium and Katran do).
    Maglev,
}

/// An inclusive range of addresses of one family: an entry of a load-balancer pool, written
/// `FIRST-LAST` (MetalLB's `IPAddressPool` syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AddressRange {
    /// The first address.
    pub first: IpAddr,
    /// The last address (same family, not below `first`).
    pub last: IpAddr,
}

impl AddressRange {
    /// The range `first..=last`, if both are of one family and in order.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<AddressRange> {
        (first.is_ipv4() == last.is_ipv4() && first <= last).then_some(AddressRange { first, last })
    }

    /// The host addresses of `net` (without its network and broadcast addresses when it has
    /// them, as MetalLB's `avoidBuggyIPs` does).
    pub fn hosts(net: IpNet) -> Option<AddressRange> {
        let (first, last) = (to_u128(net.network()), to_u128(net.broadcast()));
        let (first, last) = if last - first >= 2 { (first + 1, last - 1) } else { (first, last) };
        AddressRange::new(from_u128(net.network(), first), from_u128(net.network(), last))
    }

    /// The pool kns uses when the Cluster document names none: the top of the node network's
    /// last `/28` (IPv4) or `/124` (IPv6) below the router's usual address, e.g.
    /// `192.168.0.240-192.168.0.253` for `192.168.0.0/24` (the router is `.254`). `None` when
    /// the node network is too small to spare 14 addresses.
    pub fn default_pool(node_cidr: IpNet) -> Option<AddressRange> {
        if node_cidr.max_prefix_len() - node_cidr.prefix_len() < 5 {
            return None;
        }
        let top = to_u128(node_cidr.broadcast());
        let base = node_cidr.network();
        AddressRange::new(from_u128(base, top - 15), from_u128(base, top - 2))
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.first.is_ipv4() && self.first <= ip && ip <= self.last
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &AddressRange) -> bool {
        self.contains(other.first) || other.contains(self.first)
    }

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + use<> {
        let base = self.first;
        (to_u128(self.first)..=to_u128(self.last)).map(move |n| from_u128(base, n))
    }
}

impl std::fmt::Display for AddressRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl std::str::FromStr for AddressRange {
    type Err = String;

    /// `192.168.0.240/28` (its hosts), `192.168.0.240-192.168.0.250` or one address.
    fn from_str(text: &str) -> Result<AddressRange, String> {
        let text = text.trim();
        let bad = || {
            format!(
                "invalid address range `{text}` (expected a CIDR such as 192.168.0.240/28, a range such as 192.168.0.240-192.168.0.250, or one address)"
            )
        };
        if text.contains('/') {
            let net: IpNet = text.parse().map_err(|_| bad())?;
            return AddressRange::hosts(net).ok_or_else(bad);
        }
        let (a, b) = text.split_once('-').unwrap_or((text, text));
        let first: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let last: IpAddr = b.trim().parse().map_err(|_| bad())?;
        AddressRange::new(first, last).ok_or_else(|| {
            format!("invalid address range `{text}`: {first} and {last} must be of one family and in order")
        })
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address numbered `n` of the family of `like`.
fn from_u128(like: IpAddr, n: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(n as u32)),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(n)),
    }
}

/// Cluster-wide settings (the kns `Cluster` document, or its defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// The cluster name.
    pub name: String,
    /// The pod network, split into one slice per node.
    pub pod_cidr: IpNet,
    /// Prefix length of each node's slice of `pod_cidr`.
    pub node_cidr_prefix: u8,
    /// The range Service cluster IPs come from.
    pub service_cidr: IpNet,
    /// The network the nodes' own addresses come from.
    pub node_cidr: IpNet,
    /// The DNS domain of the cluster (`cluster.local`).
    pub domain: String,
    /// Cross-node pod networking.
    pub cni: CniMode,
    /// Service proxy implementation.
    pub proxy: ProxyMode,
    /// Whether a policy agent enforces NetworkPolicies in the dataplane.
    pub enforce_policy: bool,
    /// Addresses handed to LoadBalancer Services, in allocation order (empty: none, so
    /// LoadBalancer Services without an address stay pending). The default is
    /// [`AddressRange::default_pool`] of `node_cidr`, where layer-2 announcements reach.
    pub load_balancer_pool: Vec<AddressRange>,
    /// The range NodePorts are allocated from (inclusive).
    pub node_port_range: (u16, u16),
}

impl Default for ClusterConfig {
    /// Two nodes' worth of defaults, as kubeadm with flannel would set them up.
    fn default() -> Self {
        ClusterConfig {
            name: "kns".into(),
            pod_cidr: "10.244.0.0/16".parse().expect("valid literal"),
            node_cidr_prefix: 24,
            service_cidr: "10.96.0.0/12".parse().expect("valid literal"),
            node_cidr: "192.168.0.0/24".parse().expect("valid literal"),
            domain: "cluster.local".into(),
            cni: CniMode::Routed,
            proxy: ProxyMode::Iptables,
            enforce_policy: true,
            load_balancer_pool: AddressRange::default_pool(
                "192.168.0.0/24".parse().expect("valid literal"),
            )
            .into_iter()
            .collect(),
            node_port_range: (30000, 32767),
        }
    }
}

/// Every networking object of one cluster.
///
/// Each table is indexed by its ID type (`pods[PodId::index()]`), in load order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// Cluster-wide settings.
    pub config: ClusterConfig,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Services.
    pub services: Vec<Service>,
    /// EndpointSlices given in manifests (controller-made ones live in the simulator).
    pub endpoint_slices: Vec<EndpointSlice>,
    /// NetworkPolicies.
    pub policies: Vec<NetworkPolicy>,
    /// Ingresses.
    pub ingresses: Vec<Ingress>,
    /// ConfigMaps.
    pub config_maps: Vec<ConfigMap>,
}

impl Cluster {
    /// An empty cluster with the given settings and no nodes.
    pub fn new(config: ClusterConfig) -> Self {
        Cluster {
            config,
            nodes: Vec::new(),
            namespaces: Vec::new(),
            pods: Vec::new(),
            services: Vec::new(),
            endpoint_slices: Vec::new(),
            policies: Vec::new(),
            ingresses: Vec::new(),
            config_maps: Vec::new(),
        }
    }

    /// The pod with this ID.
    pub fn pod(&self, id: PodId) -> &Pod {
        &self.pods[id.index()]
    }

    /// The node with this ID.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// The namespace with this ID.
    pub fn namespace(&self, id: NamespaceId) -> &Namespace {
        &self.namespaces[id.index()]
    }

    /// The Service with this ID.
    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[id.index()]
    }

    /// The namespace called `name`.
    pub fn namespace_by_name(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.name == name)
    }

    /// The node called `name`.
    pub fn node_by_name(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The pod `name` in namespace `namespace`.
    pub fn pod_by_name(&self, namespace: &str, name: &str) -> Option<&Pod> {
        let ns = self.namespace_by_name(namespace)?.id;
        self.pods.iter().find(|p| p.namespace == ns && p.name == name)
    }

    /// The pod written `namespace/name` (or `name`, in `default`).
    pub fn pod_by_ref(&self, reference: &str) -> Option<&Pod> {
        match reference.split_once('/') {
            Some((ns, name)) => self.pod_by_name(ns, name),
            None => self.pod_by_name("default", reference),
        }
    }

    /// The Service `name` in namespace `namespace`.
    pub fn service_by_name(&self, namespace: &str, name: &str) -> Option<&Service> {
        let ns = self.namespace_by_name(namespace)?.id;
        self.services.iter().find(|s| s.namespace == ns && s.name == name)
    }

    /// The pod (not host-network) that owns `ip`, if any.
    pub fn pod_by_ip(&self, ip: IpAddr) -> Option<&Pod> {
        self.pods.iter().find(|p| !p.host_network && p.ips.contains(&ip))
    }

    /// `namespace/name` of a pod, the form used in matrices and explanations.
    pub fn pod_ref(&self, id: PodId) -> String {
        let pod = self.pod(id);
        format!("{}/{}", self.namespace(pod.namespace).name, pod.name)
    }

    /// Pods grouped by namespace name then pod name: the order used for human output.
    pub fn pods_sorted(&self) -> Vec<PodId> {
        let mut by_ref: BTreeMap<(&str, &str), PodId> = BTreeMap::new();
        for p in &self.pods {
            by_ref.insert((&self.namespace(p.namespace).name, &p.name), p.id);
        }
        by_ref.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Result<AddressRange, String> {
        text.parse()
    }

    #[test]
    fn ranges_parse_from_cidrs_ranges_and_single_addresses() {
        assert_eq!(range("192.168.0.240/28").unwrap().to_string(), "192.168.0.241-192.168.0.254");
        assert_eq!(range("10.0.0.5/32").unwrap().to_string(), "10.0.0.5-10.0.0.5");
        assert_eq!(range("10.0.0.1 - 10.0.0.3").unwrap().iter().count(), 3);
        assert_eq!(range("10.0.0.7").unwrap().to_string(), "10.0.0.7-10.0.0.7");
        assert!(range("10.0.0.3-10.0.0.1").unwrap_err().contains("in order"));
        assert!(range("10.0.0.1-::1").is_err());
        assert!(range("ten").unwrap_err().starts_with("invalid address range `ten`"));
    }

    #[test]
    fn the_default_pool_is_the_top_of_the_node_network_below_the_router() {
        let pool = AddressRange::default_pool("192.168.0.0/24".parse().unwrap()).unwrap();
        assert_eq!(pool.to_string(), "192.168.0.240-192.168.0.253");
        assert_eq!(pool.iter().count(), 14);
        assert!(AddressRange::default_pool("192.168.0.0/28".parse().unwrap()).is_none());
        assert_eq!(ClusterConfig::default().load_balancer_pool, vec![pool]);
    }

    #[test]
    fn overlap_and_containment() {
        let a = range("10.0.0.1-10.0.0.5").unwrap();
        assert!(a.overlaps(&range("10.0.0.5-10.0.0.9").unwrap()));
        assert!(!a.overlaps(&range("10.0.0.6-10.0.0.9").unwrap()));
        assert!(!a.contains("::1".parse().unwrap()));
    }
}
