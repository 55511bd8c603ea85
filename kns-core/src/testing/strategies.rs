//! proptest strategies for small clusters full of NetworkPolicy corner cases.
//!
//! Clusters have 1–3 namespaces and 1–6 pods (addresses from `10.0.0.2` up, as the node's
//! bridge holds `10.0.0.1` in a real network) whose labels and named ports come from tiny pools
//! (so selectors and names collide often), and 0–4 policies with random selectors (every
//! operator), policy types, peers (selectors and ipBlocks with excepts strictly inside the block) and ports (protocol
//! only, numbers, ranges and names).
//!
//! [`cluster_with_services`] adds 0–4 Services of every type (ClusterIP, headless, NodePort,
//! LoadBalancer, ExternalName) with selectors from the same label pools (or none), 1–3 ports
//! (numbers or named target ports), external IPs, ClientIP affinity, traffic policies and
//! `publishNotReadyAddresses`. Cluster IPs (`10.96.0.10 + i`), node ports (`30000 + 8 i + j`)
//! and load-balancer addresses (`172.18.255.10 + i`) are explicit, as the API server would
//! have filled them in.

use std::collections::BTreeSet;

use ipnet::IpNet;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

use std::net::{IpAddr, Ipv4Addr};

use crate::flow::{PortProtocol, Protocol};
use crate::model::{
    Cluster, Labels, NamespaceId, Operator, PolicyPeer, PolicyPort, PolicyRule, PolicyTypes,
    PortRef, Requirement, Selector, Service, ServiceId, ServicePort, ServiceType, TrafficPolicy,
};

use super::build::ClusterBuilder;

const KEYS: [&str; 3] = ["app", "tier", "team"];
const VALUES: [&str; 3] = ["a", "b", "c"];
const PORT_NAMES: [&str; 2] = ["http", "metrics"];
const EXCEPTS: [&str; 6] =
    ["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32", "10.0.0.5/32", "10.0.0.4/31", "10.0.0.0/30"];
const NUMBERS: [u16; 4] = [80, 81, 82, 8080];

/// The ports worth probing in clusters made by [`cluster`]: every number of the pools, on TCP
/// and UDP.
pub fn probe_ports() -> Vec<PortProtocol> {
    let mut out = Vec::new();
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        for n in NUMBERS {
            out.push(PortProtocol::new(n, protocol));
        }
    }
    out
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(&KEYS[..]).prop_map(String::from)
}

fn value() -> impl Strategy<Value = String> {
    prop::sample::select(&VALUES[..]).prop_map(String::from)
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop::sample::select(vec![Protocol::Tcp, Protocol::Udp])
}

/// Labels drawn from the small pools.
pub fn labels() -> impl Strategy<Value = Labels> {
    btree_map(key(), value(), 0..3)
}

/// A selector with 0–1 `matchLabels` pairs and 0–2 requirements of any operator.
pub fn selector() -> impl Strategy<Value = Selector> {
    let operator = prop::sample::select(vec![
        Operator::In,
        Operator::NotIn,
        Operator::Exists,
        Operator::DoesNotExist,
    ]);
    let requirement = (key(), operator, btree_set(value(), 1..3)).prop_map(|(key, op, values)| {
        let values = match op {
            Operator::In | Operator::NotIn => values,
            Operator::Exists | Operator::DoesNotExist => BTreeSet::new(),
        };
        Requirement { key, operator: op, values }
    });
    (btree_map(key(), value(), 0..2), vec(requirement, 0..3))
        .prop_map(|(match_labels, match_expressions)| Selector { match_labels, match_expressions })
}

/// A peer: pod/namespace selectors (at least one) or an ipBlock over the builder's pod IPs.
pub fn peer() -> impl Strategy<Value = PolicyPeer> {
    let pods = (prop::option::of(selector()), prop::option::of(selector())).prop_map(
        |(namespace_selector, pod_selector)| {
            let pod_selector = match (&namespace_selector, pod_selector) {
                (None, None) => Some(Selector::everything()),
                (_, sel) => sel,
            };
            PolicyPeer::Pods { namespace_selector, pod_selector }
        },
    );
    let cidr = prop::sample::select(vec!["10.0.0.0/30", "10.0.0.0/29", "10.0.0.4/30", "0.0.0.0/0"]);
    // Candidate carve-outs; those not strictly inside the chosen cidr are dropped, as the API
    // server would reject them.
    let except = vec(prop::sample::select(EXCEPTS.to_vec()), 0..3);
    let block = (cidr, except).prop_map(|(cidr, except)| {
        let cidr: IpNet = cidr.parse().expect("valid literal");
        let mut kept: Vec<IpNet> = Vec::new();
        for e in except {
            let e: IpNet = e.parse().expect("valid literal");
            if cidr.contains(&e) && e.prefix_len() > cidr.prefix_len() && !kept.contains(&e) {
                kept.push(e);
            }
        }
        PolicyPeer::IpBlock { cidr, except: kept }
    });
    prop_oneof![3 => pods, 1 => block]
}

/// A port entry: protocol only, a number, a range, or a name.
pub fn policy_port() -> impl Strategy<Value = PolicyPort> {
    let number = prop::sample::select(&NUMBERS[..]);
    let name = prop::sample::select(&PORT_NAMES[..]);
    (protocol(), 0..4u8, number, 0..3u16, name).prop_map(|(protocol, kind, n, width, name)| {
        let (port, end_port) = match kind {
            0 => (None, None),
            1 => (Some(PortRef::Number(n)), None),
            2 => (Some(PortRef::Number(n)), Some(n + width)),
            _ => (Some(PortRef::Name(name.to_string())), None),
        };
        PolicyPort { protocol, port, end_port }
    })
}

/// A rule with 0–2 peers and 0–2 ports.
pub fn rule() -> impl Strategy<Value = PolicyRule> {
    (vec(peer(), 0..3), vec(policy_port(), 0..3))
        .prop_map(|(peers, ports)| PolicyRule { peers, ports })
}

/// A small cluster; see the module documentation.
pub fn cluster() -> impl Strategy<Value = Cluster> {
    let port = (prop::sample::select(vec!["", "http", "metrics"]), 0..4usize, protocol());
    let pod = (0..3usize, labels(), vec(port, 0..3));
    let policy = (
        0..3usize,
        selector(),
        prop::sample::select(vec![(true, false), (false, true), (true, true)]),
        vec(rule(), 0..3),
        vec(rule(), 0..3),
    );
    (vec(labels(), 1..=3), vec(pod, 1..=6), vec(policy, 0..=4)).prop_map(
        |(namespaces, pods, policies)| {
            let mut b = ClusterBuilder::new();
            let ns: Vec<NamespaceId> = namespaces
                .iter()
                .enumerate()
                .map(|(i, labels)| {
                    let pairs: Vec<(&str, &str)> =
                        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    b.namespace(&format!("ns{i}"), &pairs)
                })
                .collect();
            for (i, (n, labels, ports)) in pods.iter().enumerate() {
                let pairs: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let ports: Vec<(&str, u16, Protocol)> =
                    ports.iter().map(|&(name, k, proto)| (name, NUMBERS[k], proto)).collect();
                b.pod(ns[n % ns.len()], &format!("p{i}"), &pairs, &ports);
            }
            for (i, (n, sel, (ingress, egress), irules, erules)) in policies.into_iter().enumerate()
            {
                let types = PolicyTypes { ingress, egress };
                b.policy(ns[n % ns.len()], &format!("np{i}"), sel, types, irules, erules);
            }
            let mut c = b.build();
            // Pods from 10.0.0.2 up: 10.0.0.1 is the node bridge's gateway address in a real
            // network, so a printed case builds and runs under `kns probe -f`.
            for (i, pod) in c.pods.iter_mut().enumerate() {
                let n = i + 1;
                let ip = IpAddr::V4(Ipv4Addr::new(10, 0, (n / 250) as u8, (n % 250) as u8 + 1));
                pod.ip = ip;
                pod.ips = vec![ip];
            }
            c
        },
    )
}

/// What [`service`] draws; [`cluster_with_services`] places it in a cluster.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Index of the namespace (modulo the cluster's namespaces).
    pub namespace: usize,
    /// The type; `None` stands for a headless ClusterIP Service.
    pub service_type: Option<ServiceType>,
    /// The selector (`None`: endpoints by hand, so none here).
    pub selector: Option<Labels>,
    /// The ports: (number, protocol, target port).
    pub ports: Vec<(u16, Protocol, PortRef)>,
    /// Whether the Service has an external IP.
    pub external_ip: bool,
    /// `sessionAffinity: ClientIP` with this timeout.
    pub affinity: Option<u32>,
    /// `externalTrafficPolicy: Local` (NodePort and LoadBalancer only).
    pub external_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
    /// `publishNotReadyAddresses`.
    pub publish_not_ready: bool,
}

/// One Service of any type; see the module documentation.
pub fn service() -> impl Strategy<Value = ServiceSpec> {
    let service_type = prop::sample::select(vec![
        Some(ServiceType::ClusterIP),
        None,
        Some(ServiceType::NodePort),
        Some(ServiceType::LoadBalancer),
        Some(ServiceType::ExternalName),
    ]);
    let target = prop_oneof![
        prop::sample::select(&NUMBERS[..]).prop_map(PortRef::Number),
        prop::sample::select(&PORT_NAMES[..]).prop_map(|n| PortRef::Name(n.to_string())),
    ];
    let port = (prop::sample::select(vec![80u16, 443, 8080]), protocol(), target);
    let affinity = prop::sample::select(vec![None, Some(60u32), Some(10_800)]);
    (
        0..3usize,
        service_type,
        prop::option::of(btree_map(key(), value(), 1..3)),
        vec(port, 1..=3),
        any::<bool>(),
        affinity,
        any::<[bool; 3]>(),
    )
        .prop_map(
            |(namespace, service_type, selector, ports, external_ip, affinity, flags)| {
                let mut seen = BTreeSet::new();
                let ports = ports.into_iter().filter(|(n, p, _)| seen.insert((*n, *p))).collect();
                let external =
                    matches!(service_type, Some(ServiceType::NodePort | ServiceType::LoadBalancer));
                ServiceSpec {
                    namespace,
                    service_type,
                    selector,
                    ports,
                    external_ip,
                    affinity,
                    external_local: flags[0] && external,
                    internal_local: flags[1],
                    publish_not_ready: flags[2],
                }
            },
        )
}

/// A [`cluster`] with 0–4 Services of every type; see the module documentation.
pub fn cluster_with_services() -> impl Strategy<Value = Cluster> {
    (cluster(), vec(service(), 0..=4)).prop_map(|(mut c, specs)| {
        for (i, spec) in specs.into_iter().enumerate() {
            c.services.push(place_service(&c, i, spec));
        }
        c
    })
}

/// The Service `svc<i>` of `spec` with explicit addresses and node ports.
fn place_service(c: &Cluster, i: usize, spec: ServiceSpec) -> Service {
    let offset =
        |base: [u8; 4]| IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::from(base)) + i as u32));
    let service_type = spec.service_type.unwrap_or(ServiceType::ClusterIP);
    let external_name = service_type == ServiceType::ExternalName;
    let has_node_ports = matches!(service_type, ServiceType::NodePort | ServiceType::LoadBalancer);
    let many = spec.ports.len() > 1;
    let ports = spec
        .ports
        .into_iter()
        .enumerate()
        .map(|(j, (port, protocol, target_port))| ServicePort {
            name: many.then(|| format!("p{j}")),
            protocol,
            port,
            target_port,
            node_port: has_node_ports.then_some(30_000 + 8 * i as u16 + j as u16),
        })
        .collect();
    let local = |on: bool| if on { TrafficPolicy::Local } else { TrafficPolicy::Cluster };
    Service {
        id: ServiceId::from_index(c.services.len()),
        name: format!("svc{i}"),
        namespace: NamespaceId::from_index(spec.namespace % c.namespaces.len()),
        service_type,
        cluster_ip: (spec.service_type.is_some() && !external_name)
            .then(|| offset([10, 96, 0, 10])),
        selector: if external_name { None } else { spec.selector },
        ports,
        external_name: external_name.then(|| format!("svc{i}.example.com")),
        external_ips: if spec.external_ip && spec.service_type.is_some() && !external_name {
            vec![offset([203, 0, 113, 10])]
        } else {
            Vec::new()
        },
        load_balancer_ips: if service_type == ServiceType::LoadBalancer {
            vec![offset([172, 18, 255, 10])]
        } else {
            Vec::new()
        },
        session_affinity_timeout: if external_name { None } else { spec.affinity },
        external_traffic_policy: local(spec.external_local),
        internal_traffic_policy: local(spec.internal_local),
        publish_not_ready_addresses: spec.publish_not_ready,
    }
}
