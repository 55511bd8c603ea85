//! Shared helpers for the policy integration tests: short constructors for model values,
//! a `check` helper for single flows, the conformance topology and its reachability tables.
#![allow(dead_code)] // Each test file uses a different subset of the helpers.

pub mod load;
pub mod reach;
pub mod yaml;

use std::net::IpAddr;

use kns_core::flow::{Flow, FlowEnd, PortProtocol, Protocol};
use kns_core::model::{
    Cluster, Operator, PolicyPeer, PolicyPort, PolicyRule, PolicyTypes, PortRef, Requirement,
    Selector,
};
use kns_core::policy::{PolicyEngine, ReferenceEngine, fast_matrix, matrix};

/// `policyTypes: [Ingress]`.
pub const INGRESS: PolicyTypes = PolicyTypes { ingress: true, egress: false };
/// `policyTypes: [Egress]`.
pub const EGRESS: PolicyTypes = PolicyTypes { ingress: false, egress: true };
/// `policyTypes: [Ingress, Egress]`.
pub const BOTH: PolicyTypes = PolicyTypes { ingress: true, egress: true };

/// A `matchLabels` selector.
pub fn sel(pairs: &[(&str, &str)]) -> Selector {
    Selector::from_labels(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// A selector made of one requirement.
pub fn expr(key: &str, operator: Operator, values: &[&str]) -> Selector {
    Selector {
        match_labels: Default::default(),
        match_expressions: vec![Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }],
    }
}

/// A peer with only a `podSelector`.
pub fn pods(pod: Selector) -> PolicyPeer {
    PolicyPeer::Pods { namespace_selector: None, pod_selector: Some(pod) }
}

/// A peer with only a `namespaceSelector`.
pub fn namespaces(ns: Selector) -> PolicyPeer {
    PolicyPeer::Pods { namespace_selector: Some(ns), pod_selector: None }
}

/// A peer with both selectors (AND).
pub fn pods_in(ns: Selector, pod: Selector) -> PolicyPeer {
    PolicyPeer::Pods { namespace_selector: Some(ns), pod_selector: Some(pod) }
}

/// An `ipBlock` peer.
pub fn block(cidr: &str, except: &[&str]) -> PolicyPeer {
    PolicyPeer::IpBlock {
        cidr: cidr.parse().expect("test CIDR"),
        except: except.iter().map(|e| e.parse().expect("test CIDR")).collect(),
    }
}

/// A numeric port entry.
pub fn port(number: u16, protocol: Protocol) -> PolicyPort {
    PolicyPort { protocol, port: Some(PortRef::Number(number)), end_port: None }
}

/// A port range entry.
pub fn range(first: u16, last: u16, protocol: Protocol) -> PolicyPort {
    PolicyPort { protocol, port: Some(PortRef::Number(first)), end_port: Some(last) }
}

/// A named port entry.
pub fn named(name: &str, protocol: Protocol) -> PolicyPort {
    PolicyPort { protocol, port: Some(PortRef::Name(name.into())), end_port: None }
}

/// A protocol-only entry (every port of the protocol).
pub fn any_port(protocol: Protocol) -> PolicyPort {
    PolicyPort { protocol, port: None, end_port: None }
}

/// A rule.
pub fn rule(peers: Vec<PolicyPeer>, ports: Vec<PolicyPort>) -> PolicyRule {
    PolicyRule { peers, ports }
}

/// A flow end written `ns/name` (a pod) or as an IP address.
pub fn end(cluster: &Cluster, text: &str) -> FlowEnd {
    match text.parse::<IpAddr>() {
        Ok(ip) => FlowEnd::External(ip),
        Err(_) => FlowEnd::Pod(cluster.pod_by_ref(text).expect("test pod exists").id),
    }
}

/// Asserts each `(from, to, port, allowed)` with the reference engine; for pod pairs, asserts
/// that the fast matrix agrees. Lists every wrong case before failing.
pub fn check(cluster: &Cluster, cases: &[(&str, &str, &str, bool)]) {
    let mut wrong = Vec::new();
    for &(from, to, port_text, expected) in cases {
        let port: PortProtocol = port_text.parse().expect("test port");
        let flow = Flow { src: end(cluster, from), dst: end(cluster, to), port };
        let verdict = ReferenceEngine.evaluate(cluster, &flow);
        if verdict.allowed != expected {
            wrong.push(format!("expected {expected}:\n{}", verdict.explain(cluster, &flow)));
        }
        if let (FlowEnd::Pod(src), FlowEnd::Pod(dst)) = (flow.src, flow.dst) {
            let fast = fast_matrix(cluster, &[port]);
            let (i, j) = (fast.position(src).expect("pod"), fast.position(dst).expect("pod"));
            if fast.allowed(0, i, j) != expected {
                wrong.push(format!("fast matrix disagrees on {from} -> {to} {port}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    // The generic matrix over the reference engine must equal the fast one on every port used.
    let ports: Vec<PortProtocol> = cases.iter().map(|c| c.2.parse().expect("port")).collect();
    assert_eq!(fast_matrix(cluster, &ports), matrix(&ReferenceEngine, cluster, &ports));
}
