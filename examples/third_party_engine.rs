//! Property-testing a third-party NetworkPolicy engine against kns's reference engine.
//!
//! `SplitPeerEngine` stands for an engine someone brings: it first normalises each policy into
//! simpler peers, then evaluates them. Its normaliser has a planted bug, a classic one: a peer
//! with both `namespaceSelector` and `podSelector` (matching pods of matching namespaces) is
//! split into two peers, so it matches pods in matching namespaces *or* matching pods of the
//! policy's own namespace.
//!
//! `check_policy_engine` generates clusters and policies, finds a disagreement, shrinks it to
//! a minimal cluster and prints it as manifests; `kns matrix -f case.yaml --port …` then shows
//! the reference answers. Run with `cargo run --example third_party_engine`.

use kns::core::Flow;
use kns::core::model::{Cluster, PolicyPeer, PolicyRule};
use kns::core::policy::{PolicyEngine, ReferenceEngine, Verdict};
use kns::core::testing::{PolicyCheckError, check_policy_engine};

/// The engine under test; see the module documentation.
#[derive(Default)]
struct SplitPeerEngine {
    /// The cluster with every policy normalised (by `prepare`).
    normalised: Option<Cluster>,
}

/// The buggy normalisation: `{namespaceSelector, podSelector}` becomes two peers.
fn split_peers(rules: &mut [PolicyRule]) {
    for rule in rules {
        let mut peers = Vec::new();
        for peer in rule.peers.drain(..) {
            match peer {
                PolicyPeer::Pods { namespace_selector: Some(ns), pod_selector: Some(pods) } => {
                    peers.push(PolicyPeer::Pods {
                        namespace_selector: Some(ns),
                        pod_selector: None,
                    });
                    peers.push(PolicyPeer::Pods {
                        namespace_selector: None,
                        pod_selector: Some(pods),
                    });
                }
                other => peers.push(other),
            }
        }
        rule.peers = peers;
    }
}

impl PolicyEngine for SplitPeerEngine {
    fn name(&self) -> &str {
        "split-peer"
    }

    fn prepare(&mut self, cluster: &Cluster) {
        let mut c = cluster.clone();
        for policy in &mut c.policies {
            split_peers(&mut policy.ingress);
            split_peers(&mut policy.egress);
        }
        self.normalised = Some(c);
    }

    fn evaluate(&self, cluster: &Cluster, flow: &Flow) -> Verdict {
        let c = self.normalised.as_ref().unwrap_or(cluster);
        Verdict::unexplained(ReferenceEngine.evaluate(c, flow).allowed)
    }
}

fn main() {
    const CASES: u32 = 256;
    match check_policy_engine(&mut ReferenceEngine, CASES) {
        Ok(()) => println!("reference: {CASES} generated clusters, no disagreement"),
        Err(e) => println!("reference: unexpected failure\n{e}"),
    }
    match check_policy_engine(&mut SplitPeerEngine::default(), CASES) {
        Ok(()) => {
            println!("split-peer: {CASES} generated clusters, no disagreement (bug not found)")
        }
        Err(PolicyCheckError::Mismatch(m)) => {
            println!(
                "split-peer: bug found; minimal case has {} namespaces, {} pods, {} policies",
                m.cluster.namespaces.len(),
                m.cluster.pods.len(),
                m.cluster.policies.len()
            );
            print!("{m}");
        }
        Err(e) => println!("split-peer: {e}"),
    }
}
