//! The reference engine: NetworkPolicy semantics evaluated rule by rule, written for clarity.
//!
//! This is the oracle the fast matrix and any third-party engine are checked against. For each
//! direction it lists the policies that select the pod (their namespace is the pod's, their
//! `podSelector` matches it and their `policyTypes` include the direction), and then looks for
//! the first rule, in policy then rule order, whose peers and ports both match. Isolation is
//! per direction; a connection needs both the source's egress and the destination's ingress.
//!
//! Traffic between a pod and an address of its own node (kubelet probes, for instance) is always
//! allowed, as the Kubernetes documentation states.
//!
//! Choices where Kubernetes leaves room: a pod reaching itself is always allowed (loopback is
//! never filtered, as upstream conformance assumes); `hostNetwork` pods are treated as ordinary
//! pods selected by labels, whereas real CNIs usually cannot filter them; and an `ipBlock`
//! matches a pod when any of its IPs is inside the block (see [`peers`](super::peers)).

use crate::flow::{Flow, PortProtocol};
use crate::model::{Cluster, NetworkPolicy, Pod, PolicyId, PolicyRule};

use super::engine::{Direction, PolicyEngine, Side, Verdict};
use super::peers::{End, peer_matches};
use super::ports::port_matches;

/// The clear, rule-by-rule engine; the oracle for every other engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceEngine;

impl PolicyEngine for ReferenceEngine {
    fn name(&self) -> &str {
        "reference"
    }

    fn evaluate(&self, cluster: &Cluster, flow: &Flow) -> Verdict {
        let src = End::resolve(cluster, flow.src);
        let dst = End::resolve(cluster, flow.dst);
        if let (End::Pod(a), End::Pod(b)) = (src, dst)
            && a.id == b.id
        {
            return Verdict::from_sides(Side::SamePod, Side::SamePod);
        }
        let egress = match src {
            End::Pod(pod) if is_own_node(cluster, pod, dst) => Side::OwnNode,
            End::Pod(pod) => side(cluster, pod, Direction::Egress, dst, dst.pod(), flow.port),
            End::External(_) => Side::External,
        };
        let ingress = match dst {
            End::Pod(pod) if is_own_node(cluster, pod, src) => Side::OwnNode,
            End::Pod(pod) => side(cluster, pod, Direction::Ingress, src, Some(pod), flow.port),
            End::External(_) => Side::External,
        };
        Verdict::from_sides(egress, ingress)
    }
}

/// Whether `other` is an address of the node `pod` runs on.
fn is_own_node(cluster: &Cluster, pod: &Pod, other: End) -> bool {
    match other {
        End::External(ip) => cluster.nodes.get(pod.node.index()).is_some_and(|n| n.ip == ip),
        End::Pod(_) => false,
    }
}

/// The decision for `pod` in `direction`, where `peer` is the other end of the connection and
/// `destination` is the pod that named ports resolve against.
fn side(
    cluster: &Cluster,
    pod: &Pod,
    direction: Direction,
    peer: End,
    destination: Option<&Pod>,
    port: PortProtocol,
) -> Side {
    let selecting = selecting_policies(cluster, pod, direction);
    if selecting.is_empty() {
        return Side::NotIsolated;
    }
    for &id in &selecting {
        let policy = &cluster.policies[id.index()];
        for (rule_index, rule) in rules(policy, direction).iter().enumerate() {
            let peer_hit = if rule.peers.is_empty() {
                Some(None)
            } else {
                rule.peers.iter().position(|p| peer_matches(cluster, policy, p, peer)).map(Some)
            };
            let port_hit = if rule.ports.is_empty() {
                Some(None)
            } else {
                rule.ports.iter().position(|p| port_matches(p, port, destination)).map(Some)
            };
            if let (Some(peer), Some(port)) = (peer_hit, port_hit) {
                return Side::Allowed { policy: id, rule: rule_index, peer, port, selecting };
            }
        }
    }
    Side::Denied { selecting }
}

/// The policies of `direction` that select `pod`, in policy order.
pub fn selecting_policies(cluster: &Cluster, pod: &Pod, direction: Direction) -> Vec<PolicyId> {
    cluster
        .policies
        .iter()
        .filter(|p| p.namespace == pod.namespace && has_type(p, direction))
        .filter(|p| p.pod_selector.matches(&pod.labels))
        .map(|p| p.id)
        .collect()
}

/// Whether `policy` isolates pods in `direction`.
pub fn has_type(policy: &NetworkPolicy, direction: Direction) -> bool {
    match direction {
        Direction::Egress => policy.policy_types.egress,
        Direction::Ingress => policy.policy_types.ingress,
    }
}

/// The rules of `policy` for `direction`.
pub fn rules(policy: &NetworkPolicy, direction: Direction) -> &[PolicyRule] {
    match direction {
        Direction::Egress => &policy.egress,
        Direction::Ingress => &policy.ingress,
    }
}
