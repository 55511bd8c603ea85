//! Services and their endpoints: `v1` Service, `v1` Endpoints and `discovery.k8s.io/v1`
//! EndpointSlice → model values, and endpoints computed from selectors when none are given.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Endpoints, Service as K8sService};
use k8s_openapi::api::discovery::v1::EndpointSlice as K8sSlice;

use super::ipam::Wanted;
use super::validate::{ip, join, labels, port_number, port_ref, protocol};
use super::workloads::{fnv, suffix};
use super::{Diag, Location};
use crate::model::{
    Cluster, ClusterConfig, Endpoint, EndpointPort, EndpointSlice, NamespaceId, NodeId, PodId,
    PortRef, Service, ServiceId, ServicePort, ServiceType, TrafficPolicy,
};

/// The `kubernetes.io/service-name` label that ties a slice to its Service.
pub(super) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Converts a Service (with placeholder IDs and no cluster IP yet) and what IP it asks for.
pub(super) fn service(
    name: &str,
    svc: &K8sService,
    loc: &Location,
    diag: &mut Diag,
) -> Option<(Service, Wanted)> {
    let before = diag.errors.len();
    let spec = svc.spec.clone().unwrap_or_default();
    let service_type = match spec.type_.as_deref() {
        None | Some("ClusterIP") => ServiceType::ClusterIP,
        Some("NodePort") => ServiceType::NodePort,
        Some("LoadBalancer") => ServiceType::LoadBalancer,
        Some("ExternalName") => ServiceType::ExternalName,
        Some(other) => {
            diag.error(
                loc.with_field("spec.type"),
                format!("invalid Service type `{other}` (expected ClusterIP, NodePort, LoadBalancer or ExternalName)"),
            );
            ServiceType::ClusterIP
        }
    };
    let wanted = match (service_type, spec.cluster_ip.as_deref()) {
        (ServiceType::ExternalName, _) => Wanted::Nothing,
        (_, None | Some("")) => Wanted::Any,
        (ServiceType::ClusterIP, Some("None")) => Wanted::Nothing,
        (t, Some("None")) => {
            diag.error(
                loc.with_field("spec.clusterIP"),
                format!("a {t:?} Service cannot be headless (clusterIP: None)"),
            );
            Wanted::Any
        }
        (_, Some(text)) => ip(text, "spec.clusterIP", loc, diag).map_or(Wanted::Any, Wanted::Fixed),
    };
    let external_name = spec.external_name.clone().filter(|n| !n.is_empty());
    if service_type == ServiceType::ExternalName && external_name.is_none() {
        diag.error(
            loc.with_field("spec.externalName"),
            "an ExternalName Service needs spec.externalName",
        );
    }
    let many = spec.ports.as_ref().is_some_and(|p| p.len() > 1);
    let mut names = BTreeSet::new();
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        let at = format!("spec.ports[{i}]");
        let number = port_number(p.port, &join(&at, "port"), loc, diag);
        let proto = protocol(p.protocol.as_deref(), &join(&at, "protocol"), loc, diag);
        match &p.name {
            None if many => diag.error(
                loc.with_field(join(&at, "name")),
                "a Service with several ports must name each",
            ),
            Some(n) if !names.insert(n.clone()) => {
                diag.error(loc.with_field(join(&at, "name")), format!("duplicate port name `{n}`"))
            }
            _ => {}
        }
        let target = match &p.target_port {
            None => number.map(PortRef::Number),
            Some(t) => port_ref(t, &join(&at, "targetPort"), loc, diag),
        };
        let node_port = match p.node_port {
            None | Some(0) => None,
            Some(_)
                if !matches!(service_type, ServiceType::NodePort | ServiceType::LoadBalancer) =>
            {
                diag.error(
                    loc.with_field(join(&at, "nodePort")),
                    "nodePort is only for NodePort and LoadBalancer Services",
                );
                None
            }
            Some(n) => port_number(n, &join(&at, "nodePort"), loc, diag),
        };
        if let (Some(port), Some(target_port)) = (number, target) {
            ports.push(ServicePort {
                name: p.name.clone(),
                protocol: proto,
                port,
                target_port,
                node_port,
            });
        }
    }
    let selector = labels(spec.selector.as_ref(), "spec.selector", loc, diag);
    let external_ips = spec
        .external_ips
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, t)| ip(t, &format!("spec.externalIPs[{i}]"), loc, diag))
        .collect();
    let mut load_balancer_ips: Vec<IpAddr> = spec
        .load_balancer_ip
        .as_deref()
        .filter(|t| !t.is_empty())
        .and_then(|t| ip(t, "spec.loadBalancerIP", loc, diag))
        .into_iter()
        .collect();
    let status_ingress =
        svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|l| l.ingress.as_ref());
    for (i, ing) in status_ingress.into_iter().flatten().enumerate() {
        if let Some(addr) = ing
            .ip
            .as_deref()
            .and_then(|t| ip(t, &format!("status.loadBalancer.ingress[{i}].ip"), loc, diag))
            && !load_balancer_ips.contains(&addr)
        {
            load_balancer_ips.push(addr);
        }
    }
    let session_affinity_timeout = match spec.session_affinity.as_deref() {
        None | Some("None") => None,
        Some("ClientIP") => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            match timeout {
                None => Some(10_800),
                Some(t) if (1..=86_400).contains(&t) => Some(t as u32),
                Some(t) => {
                    diag.error(
                        loc.with_field("spec.sessionAffinityConfig.clientIP.timeoutSeconds"),
                        format!("timeout {t} is out of range (1-86400)"),
                    );
                    None
                }
            }
        }
        Some(other) => {
            diag.error(
                loc.with_field("spec.sessionAffinity"),
                format!("invalid sessionAffinity `{other}` (expected None or ClientIP)"),
            );
            None
        }
    };
    let traffic = |value: Option<&str>, field: &str, diag: &mut Diag| match value {
        None | Some("Cluster") => TrafficPolicy::Cluster,
        Some("Local") => TrafficPolicy::Local,
        Some(other) => {
            diag.error(
                loc.with_field(field),
                format!("invalid traffic policy `{other}` (expected Cluster or Local)"),
            );
            TrafficPolicy::Cluster
        }
    };
    let external_traffic_policy =
        traffic(spec.external_traffic_policy.as_deref(), "spec.externalTrafficPolicy", diag);
    let internal_traffic_policy =
        traffic(spec.internal_traffic_policy.as_deref(), "spec.internalTrafficPolicy", diag);
    let service = Service {
        id: ServiceId(0),
        name: name.to_string(),
        namespace: NamespaceId(0),
        service_type,
        cluster_ip: None,
        selector: (!selector.is_empty() && service_type != ServiceType::ExternalName)
            .then_some(selector),
        ports,
        external_name,
        external_ips,
        load_balancer_ips,
        session_affinity_timeout,
        external_traffic_policy,
        internal_traffic_policy,
        publish_not_ready_addresses: spec.publish_not_ready_addresses.unwrap_or(false),
    };
    (diag.errors.len() == before).then_some((service, wanted))
}

/// The `default/kubernetes` Service, as the API server creates it.
pub(super) fn kubernetes_service() -> Service {
    Service {
        id: ServiceId(0),
        name: "kubernetes".into(),
        namespace: NamespaceId(0),
        service_type: ServiceType::ClusterIP,
        cluster_ip: None,
        selector: None,
        ports: vec![ServicePort {
            name: Some("https".into()),
            protocol: crate::flow::Protocol::Tcp,
            port: 443,
            target_port: PortRef::Number(6443),
            node_port: None,
        }],
        external_name: None,
        external_ips: Vec::new(),
        load_balancer_ips: Vec::new(),
        session_affinity_timeout: None,
        external_traffic_policy: TrafficPolicy::Cluster,
        internal_traffic_policy: TrafficPolicy::Cluster,
        publish_not_ready_addresses: false,
    }
}

/// Gives node ports to NodePort/LoadBalancer Service ports that have none, and load-balancer
/// addresses from the pool to LoadBalancer Services that have none, in (namespace, name)
/// order; explicit node ports must be unique and inside the range.
pub(super) fn allocate_node_ports(
    cluster: &mut Cluster,
    locs: &[Location],
    explicit: bool,
    diag: &mut Diag,
) {
    let config: ClusterConfig = cluster.config.clone();
    let (first, last) = config.node_port_range;
    let mut used: BTreeMap<(u16, crate::flow::Protocol), usize> = BTreeMap::new();
    for (i, s) in cluster.services.iter().enumerate() {
        for (j, p) in s.ports.iter().enumerate() {
            let Some(n) = p.node_port else { continue };
            let field = format!("spec.ports[{j}].nodePort");
            if explicit && !(first..=last).contains(&n) {
                diag.error(
                    locs[i].with_field(&field),
                    format!("nodePort {n} is outside the node port range {first}-{last}"),
                );
            }
            if let Some(&other) = used.get(&(n, p.protocol)) {
                let o = &cluster.services[other];
                diag.error(
                    locs[i].with_field(&field),
                    format!(
                        "nodePort {n} is also used by Service {}/{}",
                        cluster.namespace(o.namespace).name,
                        o.name
                    ),
                );
            }
            used.insert((n, p.protocol), i);
        }
    }
    let mut order: Vec<usize> = (0..cluster.services.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| {
            (
                cluster.namespace(cluster.services[i].namespace).name.clone(),
                cluster.services[i].name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut next = first;
    let mut lb_taken: BTreeSet<IpAddr> =
        cluster.services.iter().flat_map(|s| s.load_balancer_ips.iter().copied()).collect();
    lb_taken.extend(cluster.nodes.iter().map(|n| n.ip));
    let mut free_lb = config.load_balancer_pool.iter().flat_map(|r| r.iter());
    for i in order {
        let service_type = cluster.services[i].service_type;
        if !matches!(service_type, ServiceType::NodePort | ServiceType::LoadBalancer) {
            continue;
        }
        for j in 0..cluster.services[i].ports.len() {
            if cluster.services[i].ports[j].node_port.is_some() {
                continue;
            }
            let proto = cluster.services[i].ports[j].protocol;
            while next <= last && used.contains_key(&(next, proto)) {
                next += 1;
            }
            if next > last {
                diag.error(locs[i].clone(), format!("no free node port left in {first}-{last}"));
                break;
            }
            used.insert((next, proto), i);
            cluster.services[i].ports[j].node_port = Some(next);
        }
        if service_type == ServiceType::LoadBalancer
            && cluster.services[i].load_balancer_ips.is_empty()
        {
            match free_lb.find(|a| !lb_taken.contains(a)) {
                Some(addr) => cluster.services[i].load_balancer_ips.push(addr),
                None => {
                    let pool: Vec<String> =
                        config.load_balancer_pool.iter().map(|r| r.to_string()).collect();
                    let why = if pool.is_empty() {
                        "no load-balancer pool is configured".to_string()
                    } else {
                        format!("the load-balancer pool {} is exhausted", pool.join(", "))
                    };
                    let s = &cluster.services[i];
                    let key = format!("lb-pending {}/{}", s.namespace.0, s.name);
                    diag.warn_once(
                        key,
                        locs[i].with_field("spec.type"),
                        format!(
                            "{why}: the LoadBalancer Service stays pending without an external IP (its NodePorts and cluster IP still work)"
                        ),
                    );
                }
            }
        }
    }
}

/// Lookups that endpoint conversion needs.
pub(super) struct Resolver<'a> {
    /// The cluster so far (pods and nodes placed).
    cluster: &'a Cluster,
    /// Pod addresses (host-network pods aside).
    pods_by_ip: BTreeMap<IpAddr, PodId>,
}

impl<'a> Resolver<'a> {
    /// Indexes the pods of `cluster`.
    pub fn new(cluster: &'a Cluster) -> Self {
        let pods_by_ip = cluster
            .pods
            .iter()
            .filter(|p| !p.host_network)
            .flat_map(|p| p.ips.iter().map(move |ip| (*ip, p.id)))
            .collect();
        Resolver { cluster, pods_by_ip }
    }

    fn pod(&self, ip: IpAddr) -> Option<PodId> {
        self.pods_by_ip.get(&ip).copied()
    }

    fn node(
        &self,
        name: Option<&str>,
        field: &str,
        loc: &Location,
        diag: &mut Diag,
    ) -> Option<NodeId> {
        let name = name?;
        let node = self.cluster.node_by_name(name).map(|n| n.id);
        if node.is_none() {
            diag.error(loc.with_field(field), format!("no node `{name}` in the cluster"));
        }
        node
    }
}

/// Converts a legacy Endpoints object into one slice per subset.
pub(super) fn endpoints(
    namespace: NamespaceId,
    name: &str,
    e: &Endpoints,
    loc: &Location,
    r: &Resolver<'_>,
    diag: &mut Diag,
) -> Vec<EndpointSlice> {
    let subsets = e.subsets.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for (i, subset) in subsets.iter().enumerate() {
        let at = format!("subsets[{i}]");
        let mut endpoints = Vec::new();
        for (key, ready) in [("addresses", true), ("notReadyAddresses", false)] {
            let list = if ready { &subset.addresses } else { &subset.not_ready_addresses };
            for (j, a) in list.iter().flatten().enumerate() {
                let field = format!("{at}.{key}[{j}]");
                let Some(addr) = ip(&a.ip, &join(&field, "ip"), loc, diag) else { continue };
                endpoints.push(Endpoint {
                    addresses: vec![addr],
                    ready,
                    pod: r.pod(addr),
                    node: r.node(a.node_name.as_deref(), &join(&field, "nodeName"), loc, diag),
                    hostname: a.hostname.clone(),
                });
            }
        }
        let mut ports = Vec::new();
        for (j, p) in subset.ports.iter().flatten().enumerate() {
            let field = format!("{at}.ports[{j}]");
            let proto = protocol(p.protocol.as_deref(), &join(&field, "protocol"), loc, diag);
            if let Some(port) = port_number(p.port, &join(&field, "port"), loc, diag) {
                ports.push(EndpointPort { name: p.name.clone(), port, protocol: proto });
            }
        }
        let slice_name =
            if subsets.len() == 1 { name.to_string() } else { format!("{name}-{}", i + 1) };
        out.push(EndpointSlice {
            name: slice_name,
            namespace,
            service_name: name.to_string(),
            endpoints,
            ports,
        });
    }
    out
}

/// Converts an EndpointSlice.
pub(super) fn endpoint_slice(
    namespace: NamespaceId,
    name: &str,
    s: &K8sSlice,
    loc: &Location,
    r: &Resolver<'_>,
    diag: &mut Diag,
) -> Option<EndpointSlice> {
    let before = diag.errors.len();
    let service_name = s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)).cloned();
    if service_name.is_none() {
        diag.error(
            loc.with_field("metadata.labels"),
            format!("an EndpointSlice needs the label {SERVICE_NAME_LABEL}"),
        );
    }
    if !matches!(s.address_type.as_str(), "IPv4" | "IPv6") {
        diag.error(
            loc.with_field("addressType"),
            format!("unsupported addressType `{}` (kns reads IPv4 and IPv6)", s.address_type),
        );
    }
    let mut endpoints = Vec::new();
    for (i, e) in s.endpoints.iter().flatten().enumerate() {
        let at = format!("endpoints[{i}]");
        let addresses: Vec<IpAddr> = e
            .addresses
            .iter()
            .enumerate()
            .filter_map(|(j, a)| ip(a, &format!("{at}.addresses[{j}]"), loc, diag))
            .collect();
        let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
        endpoints.push(Endpoint {
            pod: addresses.first().and_then(|a| r.pod(*a)),
            node: r.node(e.node_name.as_deref(), &join(&at, "nodeName"), loc, diag),
            addresses,
            ready,
            hostname: e.hostname.clone(),
        });
    }
    let mut ports = Vec::new();
    for (j, p) in s.ports.iter().flatten().enumerate() {
        let field = format!("ports[{j}]");
        let proto = protocol(p.protocol.as_deref(), &join(&field, "protocol"), loc, diag);
        match p.port {
            None => {
                diag.error(loc.with_field(join(&field, "port")), "kns needs a port number here")
            }
            Some(n) => {
                if let Some(port) = port_number(n, &join(&field, "port"), loc, diag) {
                    ports.push(EndpointPort { name: p.name.clone(), port, protocol: proto });
                }
            }
        }
    }
    (diag.errors.len() == before).then(|| EndpointSlice {
        name: name.to_string(),
        namespace,
        service_name: service_name.unwrap_or_default(),
        endpoints,
        ports,
    })
}

/// The slices an EndpointSlice controller would make for `service`: its namespace's pods
/// that match the selector, grouped by the port numbers their container ports resolve to
/// (a named `targetPort` can differ from pod to pod). Pods lacking a named port are left out
/// of that port; not-ready pods are listed with `ready: false` unless the Service publishes
/// not-ready addresses.
///
/// `sorted` is [`Cluster::pods_sorted`], computed once by the caller.
pub(super) fn computed_slices(
    cluster: &Cluster,
    sorted: &[PodId],
    service: &Service,
) -> Vec<EndpointSlice> {
    let Some(selector) = &service.selector else { return Vec::new() };
    if service.service_type == ServiceType::ExternalName {
        return Vec::new();
    }
    type PortKey = Vec<(Option<String>, u16, crate::flow::Protocol)>;
    let mut groups: BTreeMap<PortKey, Vec<Endpoint>> = BTreeMap::new();
    for &id in sorted {
        let pod = cluster.pod(id);
        if pod.namespace != service.namespace
            || !selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
        {
            continue;
        }
        let ports: PortKey = service
            .ports
            .iter()
            .filter_map(|p| {
                let number = match &p.target_port {
                    PortRef::Number(n) => Some(*n),
                    PortRef::Name(name) => pod.named_port(name, p.protocol),
                };
                number.map(|port| (p.name.clone(), port, p.protocol))
            })
            .collect();
        if ports.is_empty() && !service.ports.is_empty() {
            continue;
        }
        let hostname = pod
            .hostname
            .clone()
            .filter(|_| pod.subdomain.as_deref() == Some(service.name.as_str()));
        groups.entry(ports).or_default().push(Endpoint {
            addresses: pod.ips.clone(),
            ready: pod.ready || service.publish_not_ready_addresses,
            pod: Some(pod.id),
            node: Some(pod.node),
            hostname,
        });
    }
    let ns = &cluster.namespace(service.namespace).name;
    groups
        .into_iter()
        .map(|(ports, endpoints)| {
            let key: Vec<String> =
                ports.iter().map(|(_, port, proto)| format!("{port}/{proto}")).collect();
            let ports = ports
                .into_iter()
                .map(|(name, port, protocol)| EndpointPort { name, port, protocol })
                .collect();
            let hash = fnv(format!("{ns}/{}/{}", service.name, key.join(",")).as_bytes());
            EndpointSlice {
                name: format!("{}-{}", service.name, suffix(hash, 5)),
                namespace: service.namespace,
                service_name: service.name.clone(),
                endpoints,
                ports,
            }
        })
        .collect()
}
