//! A deterministic synthetic cluster of any size, with policies of realistic shapes, for
//! benchmarks and scale tests.
//!
//! Randomness comes from a tiny xorshift generator seeded by the caller, so the same arguments
//! always give the same cluster.

use crate::flow::Protocol;
use crate::model::{
    Cluster, Operator, PolicyPeer, PolicyPort, PolicyRule, PolicyTypes, PortRef, Requirement,
    Selector,
};

use super::build::{ClusterBuilder, labels_of};

/// xorshift64*: small, fast and good enough to spread labels and shapes around.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // The state must never be zero; mixing in a constant keeps seed 0 usable.
        XorShift(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const TIERS: [&str; 3] = ["web", "api", "db"];
const APPS: usize = 20;
const TEAMS: usize = 5;

/// A cluster of `pods` pods spread over `namespaces` namespaces (at least one), with `policies`
/// NetworkPolicies: default-deny ingress and egress, allow-from-app, allow-from-namespace,
/// ipBlock egress with excepts, port ranges and named ports.
pub fn synthetic_cluster(pods: usize, namespaces: usize, policies: usize, seed: u64) -> Cluster {
    let mut rng = XorShift::new(seed);
    let mut b = ClusterBuilder::new();
    let namespaces = namespaces.max(1);
    let ns: Vec<_> = (0..namespaces)
        .map(|i| {
            let team = format!("team-{}", i % TEAMS);
            let env = if i % 3 == 0 { "prod" } else { "dev" };
            b.namespace(&format!("ns-{i}"), &[("team", &team), ("env", env)])
        })
        .collect();
    for i in 0..pods {
        let app = format!("app-{}", rng.below(APPS));
        let tier = TIERS[rng.below(TIERS.len())];
        let mut ports = vec![("http", 80, Protocol::Tcp), ("metrics", 9090, Protocol::Tcp)];
        match tier {
            "db" => ports.push(("db", 5432, Protocol::Tcp)),
            "api" => ports.push(("http", 8080, Protocol::Udp)),
            _ => ports.push(("dns", 53, Protocol::Udp)),
        }
        b.pod(
            ns[rng.below(namespaces)],
            &format!("pod-{i}"),
            &[("app", &app), ("tier", tier)],
            &ports,
        );
    }
    for i in 0..policies {
        let namespace = ns[rng.below(namespaces)];
        let app = format!("app-{}", rng.below(APPS));
        let other_app = format!("app-{}", rng.below(APPS));
        let team = format!("team-{}", rng.below(TEAMS));
        let tcp = |port: Option<PortRef>, end_port| PolicyPort {
            protocol: Protocol::Tcp,
            port,
            end_port,
        };
        let select = |pairs: &[(&str, &str)]| Selector::from_labels(labels_of(pairs));
        let pods_peer = |ns: Option<Selector>, pod: Option<Selector>| PolicyPeer::Pods {
            namespace_selector: ns,
            pod_selector: pod,
        };
        let ingress_only = PolicyTypes { ingress: true, egress: false };
        let egress_only = PolicyTypes { ingress: false, egress: true };
        let (name, selector, types, ingress, egress) = match rng.below(7) {
            0 => ("default-deny-ingress", Selector::everything(), ingress_only, vec![], vec![]),
            1 => ("default-deny-egress", Selector::everything(), egress_only, vec![], vec![]),
            2 => (
                "allow-from-app",
                select(&[("app", &app)]),
                ingress_only,
                vec![PolicyRule {
                    peers: vec![pods_peer(None, Some(select(&[("app", &other_app)])))],
                    ports: vec![tcp(Some(PortRef::Number(80)), None)],
                }],
                vec![],
            ),
            3 => (
                "allow-from-namespace",
                select(&[("tier", "api")]),
                ingress_only,
                vec![PolicyRule {
                    peers: vec![pods_peer(Some(select(&[("team", &team)])), None)],
                    ports: vec![],
                }],
                vec![],
            ),
            4 => (
                "egress-ipblock",
                select(&[("app", &app)]),
                egress_only,
                vec![],
                vec![
                    PolicyRule {
                        peers: vec![PolicyPeer::IpBlock {
                            cidr: "10.0.0.0/16".parse().expect("valid literal"),
                            except: vec!["10.0.1.0/24".parse().expect("valid literal")],
                        }],
                        ports: vec![tcp(None, None)],
                    },
                    PolicyRule {
                        peers: vec![],
                        ports: vec![PolicyPort {
                            protocol: Protocol::Udp,
                            port: Some(PortRef::Number(53)),
                            end_port: None,
                        }],
                    },
                ],
            ),
            5 => (
                "allow-port-range",
                select(&[("tier", "db")]),
                ingress_only,
                vec![PolicyRule {
                    peers: vec![pods_peer(
                        Some(Selector::everything()),
                        Some(Selector {
                            match_labels: Default::default(),
                            match_expressions: vec![Requirement {
                                key: "tier".into(),
                                operator: Operator::In,
                                values: ["api", "web"].iter().map(|s| s.to_string()).collect(),
                            }],
                        }),
                    )],
                    ports: vec![tcp(Some(PortRef::Number(5000)), Some(6000))],
                }],
                vec![],
            ),
            _ => (
                "allow-named-port",
                select(&[("app", &app)]),
                PolicyTypes { ingress: true, egress: true },
                vec![PolicyRule {
                    peers: vec![pods_peer(
                        Some(select(&[("env", "prod")])),
                        Some(select(&[("tier", "web")])),
                    )],
                    ports: vec![tcp(Some(PortRef::Name("http".into())), None)],
                }],
                vec![PolicyRule {
                    peers: vec![],
                    ports: vec![tcp(Some(PortRef::Name("metrics".into())), None)],
                }],
            ),
        };
        b.policy(namespace, &format!("{name}-{i}"), selector, types, ingress, egress);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_cluster() {
        let a = synthetic_cluster(50, 4, 20, 7);
        assert_eq!(a, synthetic_cluster(50, 4, 20, 7));
        assert_ne!(a, synthetic_cluster(50, 4, 20, 8));
        assert_eq!((a.pods.len(), a.namespaces.len(), a.policies.len()), (50, 4, 20));
    }
}
