//! The [`PolicyEngine`] seam and the [`Verdict`] every engine returns.
//!
//! A verdict has one [`Side`] per direction: the egress side is decided by the policies that
//! select the source pod, the ingress side by those that select the destination pod. A
//! connection is allowed exactly when both sides allow it.

use crate::flow::Flow;
use crate::model::{Cluster, PolicyId};

/// Something that decides whether NetworkPolicies allow a connection.
///
/// The [`ReferenceEngine`](super::ReferenceEngine) is the oracle; other engines (compiled,
/// third-party) are checked against it.
pub trait PolicyEngine {
    /// A short name for reports (`reference`, ...).
    fn name(&self) -> &str;

    /// Rebuilds any precomputed state after the cluster changed (default: nothing).
    fn prepare(&mut self, _cluster: &Cluster) {}

    /// The verdict for one connection attempt.
    fn evaluate(&self, cluster: &Cluster, flow: &Flow) -> Verdict;
}

/// Which way a rule looks at a connection, from the point of view of the selected pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Connections the selected pod opens (`spec.egress`, peers in `to`).
    Egress,
    /// Connections made to the selected pod (`spec.ingress`, peers in `from`).
    Ingress,
}

impl Direction {
    /// `egress` or `ingress`, as written in explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }
    }

    /// `Egress` or `Ingress`, as written in `policyTypes`.
    pub fn policy_type(self) -> &'static str {
        match self {
            Direction::Egress => "Egress",
            Direction::Ingress => "Ingress",
        }
    }
}

/// The decision for one direction of a connection, with the reason.
///
/// Rule, peer and port positions are 0-based here and 1-based in explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// Both ends are the same pod: always allowed, policy is not consulted.
    SamePod,
    /// This end is outside the cluster, so no policy applies on this side.
    External,
    /// The other end is this pod's own node, and traffic between a pod and its node is always
    /// allowed (as the Kubernetes documentation states).
    OwnNode,
    /// No policy of this direction selects the pod, so everything is allowed.
    NotIsolated,
    /// The pod is isolated, and this rule (the first match, in policy then rule order) allows it.
    Allowed {
        /// The policy holding the matching rule.
        policy: PolicyId,
        /// The rule's position in the policy's rule list of this direction.
        rule: usize,
        /// The matching peer's position, or `None` when the rule lists no peers.
        peer: Option<usize>,
        /// The matching port's position, or `None` when the rule lists no ports.
        port: Option<usize>,
        /// Every policy of this direction that selects the pod, in policy order.
        selecting: Vec<PolicyId>,
    },
    /// The pod is isolated by these policies, and none of their rules allows the connection.
    Denied {
        /// Every policy of this direction that selects the pod, in policy order.
        selecting: Vec<PolicyId>,
    },
    /// An engine that only answers yes or no (third-party engines).
    Unexplained {
        /// The engine's answer.
        allowed: bool,
    },
}

impl Side {
    /// Whether this side lets the connection through.
    pub fn allows(&self) -> bool {
        match self {
            Side::SamePod
            | Side::External
            | Side::OwnNode
            | Side::NotIsolated
            | Side::Allowed { .. } => true,
            Side::Denied { .. } => false,
            Side::Unexplained { allowed } => *allowed,
        }
    }
}

/// The decision for one connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the connection is allowed (both sides allow it).
    pub allowed: bool,
    /// The source pod's egress side.
    pub egress: Side,
    /// The destination pod's ingress side.
    pub ingress: Side,
}

impl Verdict {
    /// A verdict from its two explained sides; allowed when both sides allow.
    pub fn from_sides(egress: Side, ingress: Side) -> Self {
        Verdict { allowed: egress.allows() && ingress.allows(), egress, ingress }
    }

    /// A bare yes/no verdict, for engines that cannot say why.
    pub fn unexplained(allowed: bool) -> Self {
        Verdict {
            allowed,
            egress: Side::Unexplained { allowed },
            ingress: Side::Unexplained { allowed },
        }
    }
}
