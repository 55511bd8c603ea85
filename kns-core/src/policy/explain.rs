//! Plain-words explanations of a [`Verdict`]: one headline, then one line per direction.
//!
//! The text is a pure function of the verdict, the cluster and the flow, so it can be used in
//! snapshots. Rule, peer and port numbers are 1-based, as people count them.

use crate::flow::Flow;
use crate::model::{Cluster, PolicyId};

use super::engine::{Direction, Side, Verdict};
use super::peers::{End, describe_peer};
use super::ports::describe_port;
use super::reference::rules;

impl Verdict {
    /// Explains the verdict for `flow`, for example:
    ///
    /// ```text
    /// DENIED x/a -> y/b 80/TCP
    ///   egress (x/a): not isolated — no NetworkPolicy with Egress selects x/a
    ///   ingress (y/b): isolated by y/deny-all; no ingress rule of these policies allows x/a on 80/TCP
    /// ```
    pub fn explain(&self, cluster: &Cluster, flow: &Flow) -> String {
        let src = End::resolve(cluster, flow.src).label(cluster);
        let dst = End::resolve(cluster, flow.dst).label(cluster);
        let headline = if self.allowed { "ALLOWED" } else { "DENIED" };
        let port = flow.port;
        let egress = side_line(cluster, &self.egress, Direction::Egress, &src, &dst, port);
        let ingress = side_line(cluster, &self.ingress, Direction::Ingress, &dst, &src, port);
        format!("{headline} {src} -> {dst} {port}\n  {egress}\n  {ingress}")
    }
}

/// One direction's line: `this` is the end the side belongs to, `other` the opposite end.
fn side_line(
    cluster: &Cluster,
    side: &Side,
    direction: Direction,
    this: &str,
    other: &str,
    port: crate::flow::PortProtocol,
) -> String {
    let head = format!("{} ({this})", direction.as_str());
    match side {
        Side::SamePod => {
            format!("{head}: same pod — a pod may always reach itself; policy is not consulted")
        }
        Side::External => {
            format!("{head}: outside the cluster — no NetworkPolicy applies on this side")
        }
        Side::OwnNode => format!(
            "{head}: {other} is {this}'s own node — traffic between a pod and its node is always allowed"
        ),
        Side::NotIsolated => format!(
            "{head}: not isolated — no NetworkPolicy with {} selects {this}",
            direction.policy_type()
        ),
        Side::Allowed { policy, rule, peer, port: port_index, selecting } => {
            let np = &cluster.policies[policy.index()];
            let rule_value = &rules(np, direction)[*rule];
            let peer_text = match peer {
                Some(i) => format!("peer #{} ({})", i + 1, describe_peer(&rule_value.peers[*i])),
                None => "any peer".to_string(),
            };
            let port_text = match port_index {
                Some(i) => format!("port #{} ({})", i + 1, describe_port(&rule_value.ports[*i])),
                None => "any port".to_string(),
            };
            format!(
                "{head}: isolated by {}; allowed by {} {} rule #{}, {peer_text}, {port_text}",
                policy_list(cluster, selecting),
                policy_name(cluster, *policy),
                direction.as_str(),
                rule + 1,
            )
        }
        Side::Denied { selecting } => format!(
            "{head}: isolated by {}; no {} rule of these policies allows {other} on {port}",
            policy_list(cluster, selecting),
            direction.as_str(),
        ),
        Side::Unexplained { allowed } => {
            let word = if *allowed { "allowed" } else { "denied" };
            format!("{head}: {word} by the engine, which gives no explanation")
        }
    }
}

/// `namespace/name` of a policy.
fn policy_name(cluster: &Cluster, id: PolicyId) -> String {
    let policy = &cluster.policies[id.index()];
    format!("{}/{}", cluster.namespace(policy.namespace).name, policy.name)
}

/// Policy names joined by commas.
fn policy_list(cluster: &Cluster, ids: &[PolicyId]) -> String {
    ids.iter().map(|&id| policy_name(cluster, id)).collect::<Vec<_>>().join(", ")
}
