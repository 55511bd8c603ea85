//! The topology of a living cluster as a graph: what [`ClusterNet`] actually wired, read from
//! the device model ([`Sim::links`](crate::net::Sim::links)) rather than from the manifests.
//!
//! Vertices are the devices of the machines (the node network's `fabric0` and its ports, the
//! router, the internet host, every node's `eth0`, `cni0`, host-side veths and `flannel.1`),
//! one vertex per running pod (its namespace, with its devices and addresses folded in), and
//! one per Service (a virtual vertex pointing to its ready endpoints). Edges are veth pairs,
//! bridge ports, a VXLAN device's lower device and tunnels, Service endpoints, and, when asked
//! for, the connections a policy matrix allows between pods ([`Topology::add_allowed`]).
//!
//! **Invariant:** vertex and edge order depend only on the cluster (namespaces in creation
//! order, devices by name, pods and Services by `namespace/name`), so pictures drawn from a
//! topology are byte-identical from run to run.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kns_core::PortProtocol;
use kns_core::model::{NodeId, PodId, ServiceId};
use kns_core::proxy::ServiceTable;
use petgraph::graph::{DiGraph, NodeIndex};

use super::ClusterNet;
use crate::net::{IfaceId, LinkKind, NetnsId, Sim};

/// Where a vertex sits: the machine (or virtual place) a picture groups it under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// The host standing for everything outside the cluster.
    Internet,
    /// The router between the node network and the internet.
    Router,
    /// The root namespace, where the `fabric0` bridge is the node network.
    Fabric,
    /// A node (its namespace, and the pods it runs).
    Node(NodeId),
    /// A namespace nobody of the cluster created (added by hand through `sim_mut`).
    Other(NetnsId),
    /// The Services (virtual: they exist as kube-proxy rules on every node).
    Services,
}

/// What kind of device a [`Device`] vertex is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// One end of a veth pair.
    Veth,
    /// A bridge (`fabric0`, `cni0`).
    Bridge,
    /// A VXLAN device (`flannel.1`).
    Vxlan {
        /// Its network identifier.
        vni: u32,
    },
    /// A dummy device.
    Dummy,
}

impl DeviceKind {
    /// The word `ip -d link` uses for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Veth => "veth",
            DeviceKind::Bridge => "bridge",
            DeviceKind::Vxlan { .. } => "vxlan",
            DeviceKind::Dummy => "dummy",
        }
    }
}

/// A network device of a machine (not of a pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The machine it belongs to.
    pub place: Place,
    /// Its namespace's name (`""` for the root namespace).
    pub netns: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: DeviceKind,
    /// Its addresses.
    pub addrs: Vec<IpNet>,
}

/// A running pod: its namespace and the devices in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodVertex {
    /// The pod.
    pub pod: PodId,
    /// `namespace/name`.
    pub name: String,
    /// The node it runs on.
    pub node: NodeId,
    /// Its network namespace's name (the node's for hostNetwork pods).
    pub netns: String,
    /// Whether it shares its node's namespace.
    pub host_network: bool,
    /// Its devices other than `lo`, by name, with their addresses (empty for hostNetwork pods).
    pub ifaces: Vec<(String, Vec<IpNet>)>,
    /// The pod's address in the model.
    pub ip: IpAddr,
}

/// A Service: a virtual vertex whose edges lead to its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceVertex {
    /// The Service.
    pub service: ServiceId,
    /// `namespace/name`.
    pub name: String,
    /// Its cluster IP (`None` for headless and ExternalName Services).
    pub cluster_ip: Option<IpAddr>,
    /// Its ports as `port/PROTO` (with `:nodePort` when it has one).
    pub ports: Vec<String>,
}

/// One vertex of a [`Topology`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vertex {
    /// A device of a machine.
    Device(Device),
    /// A pod.
    Pod(PodVertex),
    /// A Service.
    Service(ServiceVertex),
}

impl Vertex {
    /// A name unique in the topology and stable across runs (`dev:NETNS:NAME`, `pod:NS/NAME`,
    /// `svc:NS/NAME`), usable as an identifier in pictures.
    pub fn key(&self) -> String {
        match self {
            Vertex::Device(d) => format!("dev:{}:{}", d.netns, d.name),
            Vertex::Pod(p) => format!("pod:{}", p.name),
            Vertex::Service(s) => format!("svc:{}", s.name),
        }
    }

    /// The place a picture groups this vertex under.
    pub fn place(&self) -> Place {
        match self {
            Vertex::Device(d) => d.place,
            Vertex::Pod(p) => Place::Node(p.node),
            Vertex::Service(_) => Place::Services,
        }
    }
}

/// One edge of a [`Topology`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edge {
    /// A veth pair, from the end created first to its peer (from the machine's end when the
    /// other is a pod's); the names of both ends.
    Veth {
        /// The source vertex's end.
        from_if: String,
        /// The target vertex's end.
        to_if: String,
    },
    /// A device enslaved to a bridge (port → bridge).
    BridgePort,
    /// A VXLAN device's lower device (tunnel device → `eth0`).
    VxlanLower,
    /// A VXLAN tunnel to another node's tunnel device, from the static FDB.
    Tunnel {
        /// The remote endpoint address.
        remote: IpAddr,
    },
    /// A Service's ready endpoint (Service → pod), with `port/PROTO→targetPort` per Service port
    /// (`headless port/PROTO` for a headless Service's pods).
    Endpoint {
        /// The Service ports that lead to this pod.
        ports: Vec<String>,
    },
    /// A connection the policies allow (pod → pod) on a port.
    Allowed {
        /// The port.
        port: PortProtocol,
    },
}

/// A machine or virtual place, with the words a picture labels its group with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceInfo {
    /// The place.
    pub place: Place,
    /// Its name (`node-a`, `router`, ...).
    pub name: String,
    /// One line of details (addresses, pod CIDR, mode).
    pub detail: String,
}

/// The topology of a living cluster (see the module documentation).
#[derive(Debug, Clone)]
pub struct Topology {
    graph: DiGraph<Vertex, Edge>,
    places: Vec<PlaceInfo>,
    pods: BTreeMap<PodId, NodeIndex>,
}

impl Topology {
    /// The graph.
    pub fn graph(&self) -> &DiGraph<Vertex, Edge> {
        &self.graph
    }

    /// The places that hold at least one vertex, in picture order: internet, router, node
    /// network, nodes by id, other namespaces, Services.
    pub fn places(&self) -> &[PlaceInfo] {
        &self.places
    }

    /// The vertex of a running pod.
    pub fn pod_vertex(&self, pod: PodId) -> Option<NodeIndex> {
        self.pods.get(&pod).copied()
    }

    /// Adds an [`Edge::Allowed`] for each `(from, to)` pair on `port` (self-pairs become loops).
    /// Pairs naming a pod that is not running are skipped; returns how many edges were added.
    pub fn add_allowed(
        &mut self,
        port: PortProtocol,
        pairs: impl IntoIterator<Item = (PodId, PodId)>,
    ) -> usize {
        let mut added = 0;
        for (from, to) in pairs {
            if let (Some(a), Some(b)) = (self.pod_vertex(from), self.pod_vertex(to)) {
                self.graph.add_edge(a, b, Edge::Allowed { port });
                added += 1;
            }
        }
        added
    }

    /// The `(from, to)` pod pairs of the allowed edges on `port`, in edge order.
    pub fn allowed_pairs(&self, port: PortProtocol) -> Vec<(PodId, PodId)> {
        let pod = |i: NodeIndex| match &self.graph[i] {
            Vertex::Pod(p) => Some(p.pod),
            _ => None,
        };
        self.graph
            .edge_indices()
            .filter(|e| self.graph[*e] == Edge::Allowed { port })
            .filter_map(|e| {
                let (a, b) = self.graph.edge_endpoints(e)?;
                Some((pod(a)?, pod(b)?))
            })
            .collect()
    }
}

impl ClusterNet {
    /// The topology as it is wired now (see [`graph`](self::graph)).
    pub fn topology(&self) -> Topology {
        let mut b = Builder::default();
        let sim = &self.sim;
        let mut pod_of_ns: BTreeMap<NetnsId, PodId> = BTreeMap::new();
        for (id, p) in &self.pods {
            if !self.cluster.pod(*id).host_network {
                pod_of_ns.insert(p.ns, *id);
            }
        }
        let mut place_of_ns: BTreeMap<NetnsId, Place> = BTreeMap::new();
        place_of_ns.insert(Sim::ROOT, Place::Fabric);
        place_of_ns.insert(self.outside.router, Place::Router);
        place_of_ns.insert(self.outside.internet, Place::Internet);
        for n in &self.nodes {
            place_of_ns.insert(n.ns, Place::Node(n.id));
        }

        // Devices of the machines, namespace by namespace.
        for ns in sim.namespaces() {
            if pod_of_ns.contains_key(&ns) {
                continue;
            }
            let place = place_of_ns.get(&ns).copied().unwrap_or(Place::Other(ns));
            for link in sim.links(ns) {
                let kind = match link.kind {
                    LinkKind::Loopback => continue,
                    LinkKind::Veth { .. } => DeviceKind::Veth,
                    LinkKind::Bridge => DeviceKind::Bridge,
                    LinkKind::Vxlan { vni, .. } => DeviceKind::Vxlan { vni },
                    LinkKind::Dummy => DeviceKind::Dummy,
                };
                let v = b.graph.add_node(Vertex::Device(Device {
                    place,
                    netns: sim.netns_name(ns).to_string(),
                    name: link.name.clone(),
                    kind,
                    addrs: link.addrs.clone(),
                }));
                b.of_iface.insert(link.id, v);
                b.places.insert(place);
            }
        }

        // Pods, by namespace/name; their namespace's devices fold into the pod vertex.
        for id in self.cluster.pods_sorted() {
            let Some(p) = self.pods.get(&id) else { continue };
            let model = self.cluster.pod(id);
            let links = if model.host_network { Vec::new() } else { sim.links(p.ns) };
            let ifaces = links
                .iter()
                .filter(|l| l.kind != LinkKind::Loopback)
                .map(|l| (l.name.clone(), l.addrs.clone()))
                .collect();
            let v = b.graph.add_node(Vertex::Pod(PodVertex {
                pod: id,
                name: self.cluster.pod_ref(id),
                node: model.node,
                netns: sim.netns_name(p.ns).to_string(),
                host_network: model.host_network,
                ifaces,
                ip: model.ip,
            }));
            for l in links.iter().filter(|l| l.kind != LinkKind::Loopback) {
                b.of_iface.insert(l.id, v);
            }
            b.pods.insert(id, v);
            b.places.insert(Place::Node(model.node));
        }

        b.wire(sim);
        b.services(self);

        let mut places = Vec::new();
        for place in &b.places {
            places.push(self.place_info(*place));
        }
        Topology { graph: b.graph, places, pods: b.pods }
    }

    /// The name and details of a place.
    fn place_info(&self, place: Place) -> PlaceInfo {
        let (name, detail) = match place {
            Place::Fabric => (
                "node network".to_string(),
                format!("fabric0 bridge, {}", self.cluster.config.node_cidr),
            ),
            Place::Router => ("router".to_string(), format!("gateway {}", self.outside.gateway)),
            Place::Internet => ("internet".to_string(), format!("host {}", self.outside.host)),
            Place::Node(id) => {
                let net = self.node(id);
                let mode = match self.cluster.config.cni {
                    kns_core::model::CniMode::Routed => "routed",
                    kns_core::model::CniMode::Overlay => "overlay",
                };
                (
                    self.cluster.node(id).name.clone(),
                    format!("{}, pods {}, {mode}", net.ip, net.pod_cidr),
                )
            }
            Place::Other(ns) => (self.sim.netns_name(ns).to_string(), "namespace".to_string()),
            Place::Services => {
                let proxy = match self.cluster.config.proxy {
                    kns_core::model::ProxyMode::Iptables => "iptables",
                    kns_core::model::ProxyMode::Ipvs => "ipvs",
                    kns_core::model::ProxyMode::Nftables => "nftables",
                    kns_core::model::ProxyMode::Maglev => "maglev",
                };
                ("Services".to_string(), format!("kube-proxy ({proxy} mode) on every node"))
            }
        };
        PlaceInfo { place, name, detail }
    }
}

/// The graph under construction.
#[derive(Default)]
struct Builder {
    graph: DiGraph<Vertex, Edge>,
    of_iface: BTreeMap<IfaceId, NodeIndex>,
    pods: BTreeMap<PodId, NodeIndex>,
    places: std::collections::BTreeSet<Place>,
}

impl Builder {
    /// Veth pairs, bridge ports and VXLAN wiring, in interface order.
    fn wire(&mut self, sim: &Sim) {
        // Which namespace owns an address, to find the far end of a tunnel.
        let mut owner: BTreeMap<IpAddr, NetnsId> = BTreeMap::new();
        for ns in sim.namespaces() {
            for l in sim.links(ns).iter().filter(|l| l.kind != LinkKind::Loopback) {
                for a in &l.addrs {
                    owner.entry(a.addr()).or_insert(ns);
                }
            }
        }
        let ifaces: Vec<(IfaceId, NodeIndex)> =
            self.of_iface.iter().map(|(i, v)| (*i, *v)).collect();
        for (id, v) in ifaces {
            let link = sim.link(id);
            if let Some(master) = link.master.and_then(|m| self.of_iface.get(&m)) {
                self.graph.add_edge(v, *master, Edge::BridgePort);
            }
            match &link.kind {
                LinkKind::Veth { peer } if id < *peer => {
                    if let Some(p) = self.of_iface.get(peer) {
                        let peer_name = sim.link(*peer).name;
                        // A pod's end is drawn last: the machine's side leads to the pod.
                        if matches!(self.graph[v], Vertex::Pod(_)) {
                            let e = Edge::Veth { from_if: peer_name, to_if: link.name.clone() };
                            self.graph.add_edge(*p, v, e);
                        } else {
                            let e = Edge::Veth { from_if: link.name.clone(), to_if: peer_name };
                            self.graph.add_edge(v, *p, e);
                        }
                    }
                }
                LinkKind::Vxlan { vni, dev, remotes } => {
                    let lower = dev.as_deref().and_then(|d| sim.iface_id(link.ns, d).ok());
                    if let Some(lower) = lower.and_then(|l| self.of_iface.get(&l)) {
                        self.graph.add_edge(v, *lower, Edge::VxlanLower);
                    }
                    for remote in remotes {
                        let far = owner.get(remote).and_then(|ns| {
                            sim.links(*ns).into_iter().find(
                                |l| matches!(l.kind, LinkKind::Vxlan { vni: w, .. } if w == *vni),
                            )
                        });
                        if let Some(far) = far.and_then(|l| self.of_iface.get(&l.id)) {
                            self.graph.add_edge(v, *far, Edge::Tunnel { remote: *remote });
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// A vertex per Service (by `namespace/name`) and an edge to each pod behind it.
    fn services(&mut self, net: &ClusterNet) {
        let cluster = &net.cluster;
        let live = net.live_cluster();
        let table = ServiceTable::from_cluster(&live);
        let mut services: Vec<_> = cluster.services.iter().collect();
        services.sort_by_key(|s| (cluster.namespace(s.namespace).name.as_str(), s.name.as_str()));
        for svc in services {
            let ports = svc
                .ports
                .iter()
                .map(|p| match p.node_port {
                    Some(np) => format!("{}/{}:{np}", p.port, p.protocol),
                    None => format!("{}/{}", p.port, p.protocol),
                })
                .collect();
            let v = self.graph.add_node(Vertex::Service(ServiceVertex {
                service: svc.id,
                name: format!("{}/{}", cluster.namespace(svc.namespace).name, svc.name),
                cluster_ip: svc.cluster_ip,
                ports,
            }));
            self.places.insert(Place::Services);
            let mut to: BTreeMap<NodeIndex, Vec<String>> = BTreeMap::new();
            for vs in table.services().iter().filter(|vs| vs.service == svc.id) {
                for backend in &vs.backends {
                    let Some(pv) = backend.pod.and_then(|p| self.pods.get(&p)) else { continue };
                    let text = format!("{}/{}→{}", vs.port, vs.protocol, backend.addr.port());
                    let list = to.entry(*pv).or_default();
                    if !list.contains(&text) {
                        list.push(text);
                    }
                }
            }
            // A headless Service has no proxy rules; its endpoints (what DNS answers with) are
            // the ready pods its selector picks.
            if svc.is_headless()
                && let Some(selector) = &svc.selector
            {
                for pod in live.pods.iter().filter(|p| {
                    p.namespace == svc.namespace
                        && p.ready
                        && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
                }) {
                    let Some(pv) = self.pods.get(&pod.id) else { continue };
                    let ports =
                        svc.ports.iter().map(|p| format!("headless {}/{}", p.port, p.protocol));
                    to.entry(*pv).or_default().extend(ports);
                }
            }
            for (pv, ports) in to {
                self.graph.add_edge(v, pv, Edge::Endpoint { ports });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterOptions;
    use kns_core::model::CniMode;

    const YAML: &str = r#"
apiVersion: kns.dev/v1alpha1
kind: Cluster
metadata: {name: t}
spec:
  podCIDR: 10.244.0.0/16
  nodes: [{name: node-1}, {name: node-2}]
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: default, labels: {app: a}}
spec:
  nodeName: node-1
  containers: [{name: c, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: default, labels: {app: b}}
spec:
  nodeName: node-2
  containers: [{name: c, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: svc-b, namespace: default}
spec:
  selector: {app: b}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: headless-a, namespace: default}
spec:
  clusterIP: None
  selector: {app: a}
  ports: [{port: 8080}]
"#;

    fn net(mode: CniMode) -> ClusterNet {
        let mut c = kns_core::manifest::load_str("t.yaml", YAML).expect("loads").cluster;
        c.config.cni = mode;
        ClusterNet::build(c, ClusterOptions::default()).expect("builds")
    }

    fn key(t: &Topology, i: NodeIndex) -> String {
        t.graph()[i].key()
    }

    /// Every edge as `from -kind-> to`, sorted.
    fn edges(t: &Topology) -> Vec<String> {
        let g = t.graph();
        let mut out: Vec<String> = g
            .edge_indices()
            .map(|e| {
                let (a, b) = g.edge_endpoints(e).unwrap();
                let kind = match &g[e] {
                    Edge::Veth { .. } => "veth",
                    Edge::BridgePort => "port",
                    Edge::VxlanLower => "lower",
                    Edge::Tunnel { .. } => "tunnel",
                    Edge::Endpoint { .. } => "endpoint",
                    Edge::Allowed { .. } => "allowed",
                };
                format!("{} -{kind}-> {}", key(t, a), key(t, b))
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn routed_topology_has_the_machines_bridges_veths_pods_and_services() {
        let net = net(CniMode::Routed);
        let t = net.topology();
        let keys: Vec<String> = t.graph().node_indices().map(|i| key(&t, i)).collect();
        for k in [
            "dev::fabric0",
            "dev::n0",
            "dev::n1",
            "dev::r0",
            "dev:router:eth0",
            "dev:router:eth1",
            "dev:internet:eth0",
            "dev:node-1:eth0",
            "dev:node-1:cni0",
            "dev:node-2:cni0",
            "pod:default/a",
            "pod:default/b",
            "svc:default/svc-b",
        ] {
            assert!(keys.contains(&k.to_string()), "{k} missing from {keys:?}");
        }
        assert!(!keys.iter().any(|k| k.contains("flannel")), "no overlay in routed mode");
        let e = edges(&t);
        for want in [
            "dev::n0 -port-> dev::fabric0",
            "dev::n0 -veth-> dev:node-1:eth0",
            "dev::r0 -port-> dev::fabric0",
            "dev:router:eth1 -veth-> dev:internet:eth0",
            "svc:default/svc-b -endpoint-> pod:default/b",
            "svc:default/headless-a -endpoint-> pod:default/a",
        ] {
            assert!(e.contains(&want.to_string()), "{want} missing from {e:?}");
        }
        // Each pod hangs off its node's cni0 through a host veth.
        let host_if = net.pod(net.cluster().pod_by_name("default", "a").unwrap().id).unwrap();
        let host_if = host_if.host_if.clone().unwrap();
        assert!(e.contains(&format!("dev:node-1:{host_if} -port-> dev:node-1:cni0")), "{e:?}");
        assert!(e.contains(&format!("dev:node-1:{host_if} -veth-> pod:default/a")), "{e:?}");
        // The pod vertex carries its eth0 address.
        let a = t.pod_vertex(net.cluster().pod_by_name("default", "a").unwrap().id).unwrap();
        let Vertex::Pod(p) = &t.graph()[a] else { panic!("a pod vertex") };
        assert_eq!(p.ifaces, vec![("eth0".to_string(), vec![IpNet::new(p.ip, 24).unwrap()])]);
        assert_eq!(t.places().len(), 6, "{:?}", t.places());
    }

    #[test]
    fn overlay_topology_has_tunnels_between_the_flannel_devices() {
        let t = net(CniMode::Overlay).topology();
        let e = edges(&t);
        for want in [
            "dev:node-1:flannel.1 -lower-> dev:node-1:eth0",
            "dev:node-1:flannel.1 -tunnel-> dev:node-2:flannel.1",
            "dev:node-2:flannel.1 -tunnel-> dev:node-1:flannel.1",
        ] {
            assert!(e.contains(&want.to_string()), "{want} missing from {e:?}");
        }
    }

    #[test]
    fn allowed_edges_round_trip_and_building_is_deterministic() {
        let net = net(CniMode::Routed);
        let a = net.cluster().pod_by_name("default", "a").unwrap().id;
        let b = net.cluster().pod_by_name("default", "b").unwrap().id;
        let mut t = net.topology();
        let port = PortProtocol::new(8080, kns_core::Protocol::Tcp);
        assert_eq!(t.add_allowed(port, [(a, b), (b, b)]), 2);
        assert_eq!(t.allowed_pairs(port), vec![(a, b), (b, b)]);
        assert!(t.allowed_pairs(PortProtocol::new(80, kns_core::Protocol::Tcp)).is_empty());
        assert_eq!(edges(&net.topology()), edges(&net.topology()));
    }
}
