//! Plain data for the objects of a cluster: nodes, namespaces, pods, Services, endpoints,
//! NetworkPolicies, Ingresses and ConfigMaps.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::ids::{IngressId, NamespaceId, NodeId, PodId, PolicyId, ServiceId};
use super::labels::{Labels, Selector};
use crate::flow::Protocol;

/// A node (a machine running kubelet and the node agents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// This node's ID.
    pub id: NodeId,
    /// The node name (`spec.nodeName` of its pods).
    pub name: String,
    /// The node's address on the node network.
    pub ip: IpAddr,
    /// The slice of the cluster pod CIDR that this node's pods take addresses from.
    pub pod_cidr: IpNet,
    /// Node labels.
    pub labels: Labels,
}

/// A Kubernetes namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// This namespace's ID.
    pub id: NamespaceId,
    /// The namespace name.
    pub name: String,
    /// Namespace labels; `kubernetes.io/metadata.name` is always set, as the API server does.
    pub labels: Labels,
    /// Whether the namespace was declared by a manifest (rather than created implicitly for a
    /// well-known name such as `default` or `kube-system`).
    pub declared: bool,
}

/// Which controller made a pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    /// `Deployment`, `ReplicaSet`, `StatefulSet` or `DaemonSet`.
    pub kind: String,
    /// The controller's name.
    pub name: String,
}

/// A port that a container declares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContainerPort {
    /// The port's name (used by named ports in policies and Services).
    pub name: Option<String>,
    /// The port number inside the pod.
    pub port: u16,
    /// The protocol (TCP when omitted).
    pub protocol: Protocol,
    /// A port on the node forwarded to this port (`hostPort`), if any.
    pub host_port: Option<u16>,
}

/// A container of a pod; containers share the pod's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The container name.
    pub name: String,
    /// The ports it declares.
    pub ports: Vec<ContainerPort>,
}

/// A pod: one network namespace with one IP per address family, shared by its containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    /// This pod's ID.
    pub id: PodId,
    /// The pod name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: NamespaceId,
    /// Pod labels.
    pub labels: Labels,
    /// The node the pod runs on.
    pub node: NodeId,
    /// The primary pod IP (`status.podIP`); for `hostNetwork` pods, the node IP.
    pub ip: IpAddr,
    /// Every pod IP (`status.podIPs`), the primary first.
    pub ips: Vec<IpAddr>,
    /// Whether the pod shares its node's network namespace.
    pub host_network: bool,
    /// The pod's containers, in declaration order.
    pub containers: Vec<Container>,
    /// The controller that made the pod, if any.
    pub owner: Option<Owner>,
    /// `spec.hostname` (StatefulSet pods get their own name here).
    pub hostname: Option<String>,
    /// `spec.subdomain` (the governing headless Service of a StatefulSet).
    pub subdomain: Option<String>,
    /// Whether the pod is ready to receive Service traffic.
    pub ready: bool,
}

impl Pod {
    /// Every port declared by any container, in declaration order.
    pub fn ports(&self) -> impl Iterator<Item = &ContainerPort> {
        self.containers.iter().flat_map(|c| c.ports.iter())
    }

    /// The number of the container port called `name` with protocol `protocol`, if declared.
    pub fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports()
            .find(|p| p.protocol == protocol && p.name.as_deref() == Some(name))
            .map(|p| p.port)
    }
}

/// A port given by number or by the name of a container port (`IntOrString`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PortRef {
    /// A port number.
    Number(u16),
    /// The name of a container port, resolved against the destination pod.
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => f.write_str(s),
        }
    }
}

/// The kind of a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServiceType {
    /// A virtual IP reachable inside the cluster.
    ClusterIP,
    /// ClusterIP plus a port on every node.
    NodePort,
    /// NodePort plus an external address from a load-balancer pool.
    LoadBalancer,
    /// A DNS alias (CNAME) for a name outside the cluster; no proxying.
    ExternalName,
}

/// Whether traffic from outside keeps its source (Local) or may be spread cluster-wide (Cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TrafficPolicy {
    /// Any ready endpoint; external traffic is source-NATed to the node.
    Cluster,
    /// Only endpoints on the receiving node; the client address is preserved.
    Local,
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// Port name (required when a Service has several ports).
    pub name: Option<String>,
    /// Protocol (TCP when omitted).
    pub protocol: Protocol,
    /// The port on the cluster IP.
    pub port: u16,
    /// The port on the backends, by number or container port name (defaults to `port`).
    pub target_port: PortRef,
    /// The port opened on every node (NodePort and LoadBalancer Services).
    pub node_port: Option<u16>,
}

/// A Kubernetes Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// This Service's ID.
    pub id: ServiceId,
    /// The Service name.
    pub name: String,
    /// Its namespace.
    pub namespace: NamespaceId,
    /// Its type.
    pub service_type: ServiceType,
    /// The virtual IP; `None` for headless (`clusterIP: None`) and ExternalName Services.
    pub cluster_ip: Option<IpAddr>,
    /// The pod selector (equality only); `None` means endpoints are given by hand.
    pub selector: Option<Labels>,
    /// The Service's ports.
    pub ports: Vec<ServicePort>,
    /// The CNAME target of an ExternalName Service.
    pub external_name: Option<String>,
    /// `spec.externalIPs`.
    pub external_ips: Vec<IpAddr>,
    /// `spec.loadBalancerIP` or `status.loadBalancer.ingress[].ip`, if known.
    pub load_balancer_ips: Vec<IpAddr>,
    /// `sessionAffinity: ClientIP` (with its timeout in seconds), or `None`.
    pub session_affinity_timeout: Option<u32>,
    /// `externalTrafficPolicy`.
    pub external_traffic_policy: TrafficPolicy,
    /// `internalTrafficPolicy`.
    pub internal_traffic_policy: TrafficPolicy,
    /// `publishNotReadyAddresses`.
    pub publish_not_ready_addresses: bool,
}

impl Service {
    /// Whether the Service is headless (`clusterIP: None`).
    pub fn is_headless(&self) -> bool {
        self.cluster_ip.is_none() && self.service_type != ServiceType::ExternalName
    }
}

/// One endpoint of an EndpointSlice: an address of a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The backend's addresses.
    pub addresses: Vec<IpAddr>,
    /// Whether the backend is ready.
    pub ready: bool,
    /// The pod behind the address, if it is a pod of the cluster.
    pub pod: Option<PodId>,
    /// The node hosting the backend, if known.
    pub node: Option<NodeId>,
    /// `hostname` (used for per-pod DNS names of headless Services).
    pub hostname: Option<String>,
}

/// A named port of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointPort {
    /// The port name (matches the Service port name).
    pub name: Option<String>,
    /// The port number on the backends.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

/// An EndpointSlice (or a legacy Endpoints object converted into one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSlice {
    /// The slice name.
    pub name: String,
    /// Its namespace.
    pub namespace: NamespaceId,
    /// The Service it belongs to (`kubernetes.io/service-name`).
    pub service_name: String,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Its ports.
    pub ports: Vec<EndpointPort>,
}

/// Which traffic directions a NetworkPolicy isolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyTypes {
    /// The policy isolates selected pods for incoming connections.
    pub ingress: bool,
    /// The policy isolates selected pods for outgoing connections.
    pub egress: bool,
}

/// One peer of a NetworkPolicy rule (an entry of `from` or `to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyPeer {
    /// Pods chosen by selectors. With only `pod_selector`, pods of the policy's own namespace;
    /// with only `namespace_selector`, every pod of matching namespaces; with both, matching pods
    /// of matching namespaces.
    Pods {
        /// `namespaceSelector`, if given.
        namespace_selector: Option<Selector>,
        /// `podSelector`, if given.
        pod_selector: Option<Selector>,
    },
    /// Addresses in `cidr` but in none of `except`.
    IpBlock {
        /// The block.
        cidr: IpNet,
        /// Sub-blocks carved out of it (each inside `cidr`).
        except: Vec<IpNet>,
    },
}

/// One entry of a rule's `ports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPort {
    /// The protocol (TCP when omitted).
    pub protocol: Protocol,
    /// The port by number or name; `None` means every port of the protocol.
    pub port: Option<PortRef>,
    /// The last port of a range starting at the numeric `port`.
    pub end_port: Option<u16>,
}

/// One ingress or egress rule: a connection matches when it matches one peer and one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRule {
    /// The peers; empty means every source (ingress) or destination (egress).
    pub peers: Vec<PolicyPeer>,
    /// The ports; empty means every port.
    pub ports: Vec<PolicyPort>,
}

/// A validated `networking.k8s.io/v1` NetworkPolicy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPolicy {
    /// This policy's ID.
    pub id: PolicyId,
    /// The policy name.
    pub name: String,
    /// Its namespace (it selects pods of this namespace only).
    pub namespace: NamespaceId,
    /// Which pods of the namespace it applies to (empty selects all).
    pub pod_selector: Selector,
    /// The directions it isolates (after Kubernetes' defaulting when omitted).
    pub policy_types: PolicyTypes,
    /// Ingress rules (ignored unless `policy_types.ingress`).
    pub ingress: Vec<PolicyRule>,
    /// Egress rules (ignored unless `policy_types.egress`).
    pub egress: Vec<PolicyRule>,
}

/// How an Ingress path is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathType {
    /// The URL path must equal the path exactly.
    Exact,
    /// The URL path must start with the path, element by element.
    Prefix,
    /// Left to the controller; kns's controller matches it as ingress-nginx's plain
    /// `location` does: a character prefix (see [`crate::ingress`]).
    ImplementationSpecific,
}

/// Where an Ingress sends matching requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressBackend {
    /// The Service name (in the Ingress's namespace).
    pub service: String,
    /// The Service port by number or name.
    pub port: PortRef,
}

/// One path of an Ingress rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressPath {
    /// The path (`/` when omitted).
    pub path: String,
    /// How the path is matched.
    pub path_type: PathType,
    /// The backend.
    pub backend: IngressBackend,
}

/// One host rule of an Ingress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressRule {
    /// The host (`None` matches any host); may start with `*.`.
    pub host: Option<String>,
    /// Its paths.
    pub paths: Vec<IngressPath>,
}

/// A `networking.k8s.io/v1` Ingress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingress {
    /// This Ingress's ID.
    pub id: IngressId,
    /// The Ingress name.
    pub name: String,
    /// Its namespace.
    pub namespace: NamespaceId,
    /// `ingressClassName`, if given.
    pub class: Option<String>,
    /// The default backend, if given.
    pub default_backend: Option<IngressBackend>,
    /// The host rules.
    pub rules: Vec<IngressRule>,
    /// Hosts listed under `tls` (kns does not terminate TLS and says so).
    pub tls_hosts: Vec<String>,
}

/// A ConfigMap (kns reads CoreDNS's Corefile from one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigMap {
    /// The ConfigMap name.
    pub name: String,
    /// Its namespace.
    pub namespace: NamespaceId,
    /// Its data, ordered by key.
    pub data: BTreeMap<String, String>,
}
