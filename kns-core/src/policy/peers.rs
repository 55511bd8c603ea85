//! Which pods and addresses a NetworkPolicy peer (`from`/`to` entry) matches.
//!
//! Pod peers follow Kubernetes: with only `podSelector`, pods of the policy's namespace; with
//! only `namespaceSelector`, every pod of matching namespaces; with both, matching pods of
//! matching namespaces. (A peer with neither cannot pass validation; if one is built by hand it
//! is read as "every pod of the policy's namespace", which is what the formula gives.)
//!
//! `ipBlock` peers match addresses. Kubernetes leaves open whether an `ipBlock` matches pod
//! traffic; kns follows Calico and matches a pod when **any** of its IPs lies in the block and
//! in none of the `except` blocks. Addresses outside the cluster match only `ipBlock` peers.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::flow::FlowEnd;
use crate::model::{Cluster, NetworkPolicy, Pod, PolicyPeer};

/// One end of a connection, after external addresses that belong to a pod are resolved.
#[derive(Debug, Clone, Copy)]
pub enum End<'c> {
    /// A pod of the cluster.
    Pod(&'c Pod),
    /// An address that belongs to no pod.
    External(IpAddr),
}

impl<'c> End<'c> {
    /// Resolves a flow end: an external address owned by a pod becomes that pod.
    pub fn resolve(cluster: &'c Cluster, end: FlowEnd) -> Self {
        match end {
            FlowEnd::Pod(id) => End::Pod(cluster.pod(id)),
            FlowEnd::External(ip) => match cluster.pod_by_ip(ip) {
                Some(pod) => End::Pod(pod),
                None => End::External(ip),
            },
        }
    }

    /// The pod, if this end is one.
    pub fn pod(self) -> Option<&'c Pod> {
        match self {
            End::Pod(pod) => Some(pod),
            End::External(_) => None,
        }
    }

    /// `namespace/name` for a pod, the address otherwise.
    pub fn label(self, cluster: &Cluster) -> String {
        match self {
            End::Pod(pod) => cluster.pod_ref(pod.id),
            End::External(ip) => ip.to_string(),
        }
    }
}

/// Whether `peer`, written in `policy`, matches the connection end `end`.
pub fn peer_matches(
    cluster: &Cluster,
    policy: &NetworkPolicy,
    peer: &PolicyPeer,
    end: End,
) -> bool {
    match (peer, end) {
        (PolicyPeer::Pods { namespace_selector, pod_selector }, End::Pod(pod)) => {
            let namespace_ok = match namespace_selector {
                None => pod.namespace == policy.namespace,
                Some(sel) => sel.matches(&cluster.namespace(pod.namespace).labels),
            };
            namespace_ok && pod_selector.as_ref().is_none_or(|sel| sel.matches(&pod.labels))
        }
        (PolicyPeer::Pods { .. }, End::External(_)) => false,
        (PolicyPeer::IpBlock { cidr, except }, End::Pod(pod)) => {
            pod_addresses(pod).any(|ip| block_contains(cidr, except, ip))
        }
        (PolicyPeer::IpBlock { cidr, except }, End::External(ip)) => {
            block_contains(cidr, except, ip)
        }
    }
}

/// The addresses an `ipBlock` is tested against for a pod: every pod IP (the primary IP when
/// the list is empty).
pub fn pod_addresses(pod: &Pod) -> impl Iterator<Item = IpAddr> + '_ {
    let fallback = pod.ips.is_empty().then_some(pod.ip);
    pod.ips.iter().copied().chain(fallback)
}

/// Whether `ip` is in `cidr` and in none of `except`.
pub fn block_contains(cidr: &IpNet, except: &[IpNet], ip: IpAddr) -> bool {
    cidr.contains(&ip) && !except.iter().any(|e| e.contains(&ip))
}

/// A one-line description of a peer for explanations, e.g.
/// `namespaceSelector ns=x, podSelector pod=a` or `ipBlock 10.0.0.0/8 except 10.1.0.0/16`.
pub fn describe_peer(peer: &PolicyPeer) -> String {
    match peer {
        PolicyPeer::Pods { namespace_selector, pod_selector } => {
            let mut parts = Vec::new();
            if let Some(sel) = namespace_selector {
                parts.push(format!("namespaceSelector {sel}"));
            }
            if let Some(sel) = pod_selector {
                parts.push(format!("podSelector {sel}"));
            }
            if parts.is_empty() {
                parts.push("pods of the policy's namespace".to_string());
            }
            parts.join(", ")
        }
        PolicyPeer::IpBlock { cidr, except } => {
            if except.is_empty() {
                format!("ipBlock {cidr}")
            } else {
                let except: Vec<String> = except.iter().map(ToString::to_string).collect();
                format!("ipBlock {cidr} except {}", except.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Protocol;
    use crate::model::{PolicyTypes, Selector};
    use crate::testing::ClusterBuilder;
    use crate::testing::build::labels_of;

    fn sel(pairs: &[(&str, &str)]) -> Selector {
        Selector::from_labels(labels_of(pairs))
    }

    #[test]
    fn selector_peers_follow_the_namespace_rules() {
        let mut b = ClusterBuilder::new();
        let x = b.namespace("x", &[("team", "blue")]);
        let y = b.namespace("y", &[("team", "red")]);
        let xa = b.pod(x, "a", &[("app", "a")], &[("http", 80, Protocol::Tcp)]);
        let ya = b.pod(y, "a", &[("app", "a")], &[]);
        let types = PolicyTypes { ingress: true, egress: false };
        b.policy(x, "p", Selector::everything(), types, vec![], vec![]);
        let c = b.build();
        let policy = &c.policies[0];
        let (xa, ya) = (End::Pod(c.pod(xa)), End::Pod(c.pod(ya)));
        let only_pod =
            PolicyPeer::Pods { namespace_selector: None, pod_selector: Some(sel(&[("app", "a")])) };
        assert!(peer_matches(&c, policy, &only_pod, xa));
        assert!(!peer_matches(&c, policy, &only_pod, ya));
        let only_ns = PolicyPeer::Pods {
            namespace_selector: Some(sel(&[("team", "red")])),
            pod_selector: None,
        };
        assert!(!peer_matches(&c, policy, &only_ns, xa));
        assert!(peer_matches(&c, policy, &only_ns, ya));
        let external = End::External("10.0.0.1".parse().expect("literal"));
        assert!(!peer_matches(&c, policy, &only_pod, external));
        assert_eq!(describe_peer(&only_ns), "namespaceSelector team=red");
    }

    #[test]
    fn blocks_and_excepts() {
        let cidr: IpNet = "10.0.0.0/24".parse().expect("literal");
        let except: Vec<IpNet> = vec!["10.0.0.128/25".parse().expect("literal")];
        assert!(block_contains(&cidr, &except, "10.0.0.127".parse().expect("literal")));
        assert!(!block_contains(&cidr, &except, "10.0.0.128".parse().expect("literal")));
        assert!(!block_contains(&cidr, &except, "10.0.1.1".parse().expect("literal")));
        let peer = PolicyPeer::IpBlock { cidr, except };
        assert_eq!(describe_peer(&peer), "ipBlock 10.0.0.0/24 except 10.0.0.128/25");
    }
}
