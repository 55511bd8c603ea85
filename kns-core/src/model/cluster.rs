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
    /// Addresses handed to LoadBalancer Services.
    pub load_balancer_pool: Option<IpNet>,
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
            load_balancer_pool: Some("172.18.255.0/24".parse().expect("valid literal")),
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
