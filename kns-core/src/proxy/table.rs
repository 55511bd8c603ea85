//! The [`ServiceTable`]: every frontend a service proxy answers and the backends behind it,
//! computed from a [`Cluster`] as kube-proxy computes it from Services and EndpointSlices.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasherDefault;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::hash::{Fnv, fnv1a};
use crate::flow::Protocol;
use crate::model::{
    Cluster, Endpoint, EndpointSlice, NamespaceId, NodeId, PodId, PortRef, Service, ServicePort,
    ServiceType, TrafficPolicy,
};

/// A hash map with a fixed hash function (lookups only; its order never reaches output).
pub(crate) type FixedMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Index of a [`VirtualService`] in its [`ServiceTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VsId(pub u32);

impl VsId {
    /// The position in [`ServiceTable::services`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// How a connection reached a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FrontendKind {
    /// The Service's cluster IP and port.
    ClusterIp,
    /// The node port on the receiving node's address.
    NodePort,
    /// A load-balancer address (`status.loadBalancer.ingress`) and the Service port.
    LoadBalancer,
    /// An address of `spec.externalIPs` and the Service port.
    ExternalIp,
}

impl FrontendKind {
    /// Whether traffic through this frontend is "external" in Kubernetes' sense
    /// (`externalTrafficPolicy` applies to it).
    pub fn is_external(self) -> bool {
        !matches!(self, FrontendKind::ClusterIp)
    }

    /// The words kube-proxy's rule comments use (`cluster IP`, `nodePort`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FrontendKind::ClusterIp => "cluster IP",
            FrontendKind::NodePort => "nodePort",
            FrontendKind::LoadBalancer => "loadbalancer IP",
            FrontendKind::ExternalIp => "external IP",
        }
    }
}

/// One address a Service answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// The address; `None` for a node port, which answers on the receiving node's address.
    pub addr: Option<IpAddr>,
    /// The port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
    /// How it reaches the Service.
    pub kind: FrontendKind,
    /// The Service port behind it.
    pub vs: VsId,
}

/// One backend of a Service port: a ready endpoint with its resolved target port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Backend {
    /// The endpoint address and target port.
    pub addr: SocketAddr,
    /// The node hosting it, if known (Local traffic policies need it).
    pub node: Option<NodeId>,
    /// The pod behind it, if it is a pod of the cluster.
    pub pod: Option<PodId>,
}

/// One port of one Service (IPVS calls it a virtual service): its frontends share backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualService {
    /// The Service.
    pub service: crate::model::ServiceId,
    /// `namespace/name:port` (or `namespace/name` for an unnamed port), as kube-proxy's rule
    /// comments name it.
    pub name: String,
    /// The protocol.
    pub protocol: Protocol,
    /// The Service port (on the cluster IP, load-balancer and external addresses).
    pub port: u16,
    /// The cluster IP, if the Service has one.
    pub cluster_ip: Option<IpAddr>,
    /// The node port, if any.
    pub node_port: Option<u16>,
    /// Ready backends (or every backend with `publishNotReadyAddresses`), sorted by address.
    pub backends: Vec<Backend>,
    /// `sessionAffinity: ClientIP` timeout in seconds, if set.
    pub affinity_timeout: Option<u32>,
    /// `externalTrafficPolicy`.
    pub external_policy: TrafficPolicy,
    /// `internalTrafficPolicy`.
    pub internal_policy: TrafficPolicy,
    /// A fixed hash of `backends`, which changes whenever the backend set does.
    pub fingerprint: u64,
    /// Indices into `backends`: all of them.
    all: Vec<u32>,
    /// Indices into `backends`, per node hosting some of them.
    local: BTreeMap<NodeId, Vec<u32>>,
}

impl VirtualService {
    /// Indices of every backend.
    pub fn all_backends(&self) -> &[u32] {
        &self.all
    }

    /// Indices of the backends on `node`.
    pub fn local_backends(&self, node: NodeId) -> &[u32] {
        self.local.get(&node).map_or(&[], Vec::as_slice)
    }
}

/// Every frontend and backend of a cluster's Services, as a service proxy needs them.
///
/// Frontends are listed in the order kube-proxy's iptables mode writes its `KUBE-SERVICES`
/// rules: per Service port (Services by namespace and name), the cluster IP, external IPs and
/// load-balancer addresses; then every node port (the `KUBE-NODEPORTS` chain, last).
#[derive(Debug, Clone)]
pub struct ServiceTable {
    services: Vec<VirtualService>,
    frontends: Vec<Frontend>,
    by_addr: FixedMap<(IpAddr, u16, Protocol), usize>,
    by_node_port: FixedMap<(u16, Protocol), usize>,
    nodes: BTreeMap<NodeId, IpAddr>,
    pod_cidr: IpNet,
}

impl ServiceTable {
    /// The table for `cluster`.
    ///
    /// Backends of a Service with a selector come from the cluster's current pods, as an
    /// EndpointSlice controller keeps them (so changing a pod's readiness and rebuilding the
    /// table is how endpoints follow pods); those of a Service without a selector come from
    /// the EndpointSlices of the cluster. Not-ready endpoints are left out unless the Service
    /// sets `publishNotReadyAddresses`; a named `targetPort` resolves against each pod's
    /// container ports, and pods without that port are left out. Headless and ExternalName
    /// Services have no frontends.
    pub fn from_cluster(cluster: &Cluster) -> ServiceTable {
        let mut order: Vec<&Service> = cluster.services.iter().collect();
        order.sort_by(|a, b| {
            let (na, nb) =
                (&cluster.namespace(a.namespace).name, &cluster.namespace(b.namespace).name);
            (na, &a.name).cmp(&(nb, &b.name))
        });
        let mut table = ServiceTable {
            services: Vec::new(),
            frontends: Vec::new(),
            by_addr: FixedMap::default(),
            by_node_port: FixedMap::default(),
            nodes: cluster.nodes.iter().map(|n| (n.id, n.ip)).collect(),
            pod_cidr: cluster.config.pod_cidr,
        };
        let index = Index::new(cluster);
        let mut node_ports = Vec::new();
        for svc in order {
            let Some(cluster_ip) = svc.cluster_ip else { continue };
            if svc.service_type == ServiceType::ExternalName {
                continue;
            }
            for port in &svc.ports {
                let vs = VsId(table.services.len() as u32);
                let backends = backends(cluster, &index, svc, port, cluster_ip);
                table.services.push(virtual_service(cluster, svc, port, cluster_ip, backends));
                let mut add = |addr: IpAddr, kind| {
                    let f = Frontend {
                        addr: Some(addr),
                        port: port.port,
                        protocol: port.protocol,
                        kind,
                        vs,
                    };
                    table
                        .by_addr
                        .entry((addr, port.port, port.protocol))
                        .or_insert(table.frontends.len());
                    table.frontends.push(f);
                };
                add(cluster_ip, FrontendKind::ClusterIp);
                for ip in &svc.external_ips {
                    add(*ip, FrontendKind::ExternalIp);
                }
                if svc.service_type == ServiceType::LoadBalancer {
                    for ip in &svc.load_balancer_ips {
                        add(*ip, FrontendKind::LoadBalancer);
                    }
                }
                let has_node_port =
                    matches!(svc.service_type, ServiceType::NodePort | ServiceType::LoadBalancer);
                if let Some(np) = port.node_port.filter(|_| has_node_port) {
                    node_ports.push(Frontend {
                        addr: None,
                        port: np,
                        protocol: port.protocol,
                        kind: FrontendKind::NodePort,
                        vs,
                    });
                }
            }
        }
        for f in node_ports {
            table.by_node_port.entry((f.port, f.protocol)).or_insert(table.frontends.len());
            table.frontends.push(f);
        }
        table
    }

    /// Every Service port, in frontend order.
    pub fn services(&self) -> &[VirtualService] {
        &self.services
    }

    /// The Service port `vs`.
    pub fn service(&self, vs: VsId) -> &VirtualService {
        &self.services[vs.index()]
    }

    /// Every frontend, in kube-proxy's rule order (node ports last).
    pub fn frontends(&self) -> &[Frontend] {
        &self.frontends
    }

    /// The address of `node`, if the cluster has that node.
    pub fn node_ip(&self, node: NodeId) -> Option<IpAddr> {
        self.nodes.get(&node).copied()
    }

    /// The cluster's pod network (sources outside it are masqueraded on cluster IPs).
    pub fn pod_cidr(&self) -> IpNet {
        self.pod_cidr
    }

    /// Whether `frontend` answers `dst` with `protocol` on `node`.
    pub fn matches(
        &self,
        frontend: &Frontend,
        dst: SocketAddr,
        protocol: Protocol,
        node: NodeId,
    ) -> bool {
        frontend.port == dst.port()
            && frontend.protocol == protocol
            && match frontend.addr {
                Some(a) => a == dst.ip(),
                None => self.node_ip(node) == Some(dst.ip()),
            }
    }

    /// The frontend for `dst` on `node`, found by hash (what IPVS, nftables and eBPF proxies
    /// do); `None` when `dst` is no Service address.
    pub fn lookup(&self, dst: SocketAddr, protocol: Protocol, node: NodeId) -> Option<&Frontend> {
        if let Some(&i) = self.by_addr.get(&(dst.ip(), dst.port(), protocol)) {
            return Some(&self.frontends[i]);
        }
        if self.node_ip(node) != Some(dst.ip()) {
            return None;
        }
        self.by_node_port.get(&(dst.port(), protocol)).map(|&i| &self.frontends[i])
    }

    /// Whether `ip` is a frontend address (a cluster, external or load-balancer IP).
    pub fn is_service_ip(&self, ip: IpAddr) -> bool {
        self.frontends.iter().any(|f| f.addr == Some(ip))
    }
}

impl fmt::Display for ServiceTable {
    /// One line per frontend: `10.96.0.11:80/TCP (cluster IP) default/web:http -> 2 backends`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for fe in &self.frontends {
            let vs = self.service(fe.vs);
            let addr = fe.addr.map_or_else(|| "<node>".to_string(), |a| a.to_string());
            let list: Vec<String> = vs.backends.iter().map(|b| b.addr.to_string()).collect();
            writeln!(
                f,
                "{addr}:{}/{} ({}) {} -> [{}]",
                fe.port,
                fe.protocol,
                fe.kind.as_str(),
                vs.name,
                list.join(", ")
            )?;
        }
        Ok(())
    }
}

fn virtual_service(
    cluster: &Cluster,
    svc: &Service,
    port: &ServicePort,
    cluster_ip: IpAddr,
    mut backends: Vec<Backend>,
) -> VirtualService {
    backends.sort();
    backends.dedup_by(|a, b| a.addr == b.addr);
    let ns = &cluster.namespace(svc.namespace).name;
    let name = match &port.name {
        Some(p) => format!("{ns}/{}:{p}", svc.name),
        None => format!("{ns}/{}", svc.name),
    };
    let mut local: BTreeMap<NodeId, Vec<u32>> = BTreeMap::new();
    for (i, b) in backends.iter().enumerate() {
        if let Some(n) = b.node {
            local.entry(n).or_default().push(i as u32);
        }
    }
    let text: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    VirtualService {
        service: svc.id,
        name,
        protocol: port.protocol,
        port: port.port,
        cluster_ip: Some(cluster_ip),
        node_port: port.node_port,
        fingerprint: fnv1a(text.join(",").as_bytes()),
        all: (0..backends.len() as u32).collect(),
        local,
        backends,
        affinity_timeout: svc.session_affinity_timeout,
        external_policy: svc.external_traffic_policy,
        internal_policy: svc.internal_traffic_policy,
    }
}

/// Pods by (namespace, label) and slices by (namespace, Service name), so that building the
/// table stays near-linear in the cluster's size.
struct Index<'a> {
    pods_by_label: BTreeMap<(NamespaceId, &'a str, &'a str), Vec<PodId>>,
    pods_by_ns: BTreeMap<NamespaceId, Vec<PodId>>,
    slices: BTreeMap<(NamespaceId, &'a str), Vec<&'a EndpointSlice>>,
}

impl<'a> Index<'a> {
    fn new(cluster: &'a Cluster) -> Self {
        let mut index = Index {
            pods_by_label: BTreeMap::new(),
            pods_by_ns: BTreeMap::new(),
            slices: BTreeMap::new(),
        };
        for p in &cluster.pods {
            index.pods_by_ns.entry(p.namespace).or_default().push(p.id);
            for (k, v) in &p.labels {
                index.pods_by_label.entry((p.namespace, k, v)).or_default().push(p.id);
            }
        }
        for s in &cluster.endpoint_slices {
            index.slices.entry((s.namespace, &s.service_name)).or_default().push(s);
        }
        index
    }

    /// The pods of `ns` that may match `selector` (a superset; empty selectors match all).
    fn candidates(&self, ns: NamespaceId, selector: &'a crate::model::Labels) -> &[PodId] {
        let list = match selector.iter().next() {
            Some((k, v)) => self.pods_by_label.get(&(ns, k.as_str(), v.as_str())),
            None => self.pods_by_ns.get(&ns),
        };
        list.map_or(&[], Vec::as_slice)
    }
}

/// The usable backends of one Service port.
fn backends<'a>(
    cluster: &'a Cluster,
    index: &Index<'a>,
    svc: &'a Service,
    port: &ServicePort,
    cluster_ip: IpAddr,
) -> Vec<Backend> {
    let same_family = |a: &IpAddr| a.is_ipv4() == cluster_ip.is_ipv4();
    let mut out = Vec::new();
    if let Some(selector) = &svc.selector {
        for &id in index.candidates(svc.namespace, selector) {
            let pod = cluster.pod(id);
            if !selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
                || !(pod.ready || svc.publish_not_ready_addresses)
            {
                continue;
            }
            let target = match &port.target_port {
                PortRef::Number(n) => Some(*n),
                PortRef::Name(name) => pod.named_port(name, port.protocol),
            };
            let (Some(target), Some(ip)) = (target, pod.ips.iter().copied().find(same_family))
            else {
                continue;
            };
            out.push(Backend {
                addr: SocketAddr::new(ip, target),
                node: Some(pod.node),
                pod: Some(pod.id),
            });
        }
        return out;
    }
    let slices = index.slices.get(&(svc.namespace, svc.name.as_str()));
    for slice in slices.into_iter().flatten() {
        let Some(ep_port) = slice
            .ports
            .iter()
            .find(|p| p.name == port.name && p.protocol == port.protocol)
            .map(|p| p.port)
        else {
            continue;
        };
        for e in &slice.endpoints {
            if !usable(e, svc) {
                continue;
            }
            if let Some(ip) = e.addresses.iter().copied().find(same_family) {
                let node = e.node.or_else(|| e.pod.map(|p| cluster.pod(p).node));
                out.push(Backend { addr: SocketAddr::new(ip, ep_port), node, pod: e.pod });
            }
        }
    }
    out
}

fn usable(e: &Endpoint, svc: &Service) -> bool {
    e.ready || svc.publish_not_ready_addresses
}
