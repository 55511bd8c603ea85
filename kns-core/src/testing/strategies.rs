//! proptest strategies for small clusters full of NetworkPolicy corner cases.
//!
//! Clusters have 1–3 namespaces and 1–6 pods whose labels and named ports come from tiny pools
//! (so selectors and names collide often), and 0–4 policies with random selectors (every
//! operator), policy types, peers (selectors and ipBlocks with excepts strictly inside the block) and ports (protocol
//! only, numbers, ranges and names).

use std::collections::BTreeSet;

use ipnet::IpNet;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

use crate::flow::{PortProtocol, Protocol};
use crate::model::{
    Cluster, Labels, NamespaceId, Operator, PolicyPeer, PolicyPort, PolicyRule, PolicyTypes,
    PortRef, Requirement, Selector,
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
            b.build()
        },
    )
}
