//! A small builder that assembles a [`Cluster`] from namespaces, pods and policies given in
//! place, handing out IDs in order and pod IPs from `10.0.0.0/16`.

use std::net::{IpAddr, Ipv4Addr};

use crate::flow::Protocol;
use crate::model::{
    Cluster, ClusterConfig, Container, ContainerPort, Labels, Namespace, NamespaceId,
    NetworkPolicy, Node, NodeId, Pod, PodId, PolicyId, PolicyRule, PolicyTypes, Selector,
};

/// Builds a cluster with one node; see the module documentation.
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    cluster: Cluster,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClusterBuilder {
    /// An empty cluster with default settings and one node, `node-1`.
    pub fn new() -> Self {
        let mut cluster = Cluster::new(ClusterConfig::default());
        cluster.nodes.push(Node {
            id: NodeId(0),
            name: "node-1".into(),
            ip: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 10)),
            pod_cidr: "10.0.0.0/16".parse().expect("valid literal"),
            labels: Labels::new(),
        });
        ClusterBuilder { cluster }
    }

    /// Adds a namespace; `kubernetes.io/metadata.name` is added to its labels.
    pub fn namespace(&mut self, name: &str, labels: &[(&str, &str)]) -> NamespaceId {
        let id = NamespaceId::from_index(self.cluster.namespaces.len());
        let mut labels = labels_of(labels);
        labels.insert("kubernetes.io/metadata.name".into(), name.into());
        self.cluster.namespaces.push(Namespace { id, name: name.into(), labels, declared: true });
        id
    }

    /// Adds a pod with the next address (`10.0.0.1`, `10.0.0.2`, ... `10.0.0.250`, `10.0.1.1`) and one container
    /// declaring `ports` as (name, number, protocol).
    pub fn pod(
        &mut self,
        namespace: NamespaceId,
        name: &str,
        labels: &[(&str, &str)],
        ports: &[(&str, u16, Protocol)],
    ) -> PodId {
        let id = PodId::from_index(self.cluster.pods.len());
        let n = self.cluster.pods.len();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, (n / 250) as u8, (n % 250) as u8 + 1));
        let ports = ports
            .iter()
            .map(|&(name, port, protocol)| ContainerPort {
                name: (!name.is_empty()).then(|| name.to_string()),
                port,
                protocol,
                host_port: None,
            })
            .collect();
        self.cluster.pods.push(Pod {
            id,
            name: name.into(),
            namespace,
            labels: labels_of(labels),
            node: NodeId(0),
            ip,
            ips: vec![ip],
            host_network: false,
            containers: vec![Container { name: "main".into(), ports }],
            owner: None,
            hostname: None,
            subdomain: None,
            ready: true,
        });
        id
    }

    /// Adds a policy.
    pub fn policy(
        &mut self,
        namespace: NamespaceId,
        name: &str,
        pod_selector: Selector,
        policy_types: PolicyTypes,
        ingress: Vec<PolicyRule>,
        egress: Vec<PolicyRule>,
    ) -> PolicyId {
        let id = PolicyId::from_index(self.cluster.policies.len());
        self.cluster.policies.push(NetworkPolicy {
            id,
            name: name.into(),
            namespace,
            pod_selector,
            policy_types,
            ingress,
            egress,
        });
        id
    }

    /// The cluster so far.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The finished cluster.
    pub fn build(self) -> Cluster {
        self.cluster
    }
}

/// Labels from `(key, value)` pairs.
pub fn labels_of(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
