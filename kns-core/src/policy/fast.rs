//! The fast matrix: the same answers as the reference engine, from a precomputed index.
//!
//! The index is built once per cluster: for every rule, the set of pods its peers match (a
//! [`Bitset`] over matrix positions), and for every pod, the policies that select it in each
//! direction. Then, per port, each rule gets the set of destinations whose ports it matches
//! (all or none for numeric ports; per destination for named ports, which resolve against the
//! destination pod). The allowed sources of a destination are the union of its ingress rules'
//! peer sets; the allowed destinations of a source are the union, over its egress rules, of
//! peer set ∩ destination set, cached per distinct list of selecting policies. A cell is
//! allowed when both hold, or when source and destination are the same pod.

use std::collections::BTreeMap;

use crate::flow::PortProtocol;
use crate::model::{Cluster, NetworkPolicy, Pod, PolicyPeer, PolicyRule};

use super::bitset::Bitset;
use super::engine::Direction;
use super::matrix::Matrix;
use super::peers::{block_contains, pod_addresses};
use super::ports::{is_named, port_matches};
use super::reference::{has_type, rules};

/// The reachability matrix of `cluster` on `ports`, equal to
/// `matrix(&ReferenceEngine, cluster, ports)` but computed from set operations.
pub fn fast_matrix(cluster: &Cluster, ports: &[PortProtocol]) -> Matrix {
    let index = Index::build(cluster);
    let mut out = Matrix::empty(index.order.clone(), ports.to_vec());
    for (p, &port) in ports.iter().enumerate() {
        index.fill(&mut out, p, port);
    }
    out
}

/// One rule, compiled.
struct CompiledRule<'c> {
    /// The pods (matrix positions) its peers match.
    peers: Bitset,
    /// Its port entries, evaluated per port.
    rule: &'c PolicyRule,
}

/// Which destinations a rule's ports admit, for one port.
enum Destinations {
    /// None at all.
    Nothing,
    /// Every destination.
    Everything,
    /// Exactly these matrix positions (named ports).
    Only(Bitset),
}

/// The per-cluster precomputation.
struct Index<'c> {
    /// Pods in matrix order.
    order: Vec<crate::model::PodId>,
    /// The pods themselves, in matrix order.
    pods: Vec<&'c Pod>,
    /// Per policy: its compiled ingress rules (empty when it does not isolate ingress).
    ingress: Vec<Vec<CompiledRule<'c>>>,
    /// Per policy: its compiled egress rules (empty when it does not isolate egress).
    egress: Vec<Vec<CompiledRule<'c>>>,
    /// Per pod position: the policies isolating it for ingress, in policy order.
    ingress_selecting: Vec<Vec<usize>>,
    /// Per pod position: the policies isolating it for egress, in policy order.
    egress_selecting: Vec<Vec<usize>>,
}

impl<'c> Index<'c> {
    fn build(cluster: &'c Cluster) -> Self {
        let order = cluster.pods_sorted();
        let pods: Vec<&Pod> = order.iter().map(|&id| cluster.pod(id)).collect();
        let mut by_namespace: Vec<Vec<usize>> = vec![Vec::new(); cluster.namespaces.len()];
        for (position, pod) in pods.iter().enumerate() {
            by_namespace[pod.namespace.index()].push(position);
        }
        let mut ingress_selecting = vec![Vec::new(); pods.len()];
        let mut egress_selecting = vec![Vec::new(); pods.len()];
        let mut ingress = Vec::with_capacity(cluster.policies.len());
        let mut egress = Vec::with_capacity(cluster.policies.len());
        for (p, policy) in cluster.policies.iter().enumerate() {
            let mut selects_any = false;
            for &position in &by_namespace[policy.namespace.index()] {
                if policy.pod_selector.matches(&pods[position].labels) {
                    selects_any = true;
                    if policy.policy_types.ingress {
                        ingress_selecting[position].push(p);
                    }
                    if policy.policy_types.egress {
                        egress_selecting[position].push(p);
                    }
                }
            }
            let compile = |direction| {
                if !selects_any || !has_type(policy, direction) {
                    return Vec::new();
                }
                rules(policy, direction)
                    .iter()
                    .map(|rule| CompiledRule {
                        peers: peer_set(cluster, &pods, &by_namespace, policy, rule),
                        rule,
                    })
                    .collect()
            };
            ingress.push(compile(Direction::Ingress));
            egress.push(compile(Direction::Egress));
        }
        Index { order, pods, ingress, egress, ingress_selecting, egress_selecting }
    }

    /// Fills the cells of port number `p` (which is `port`).
    fn fill(&self, out: &mut Matrix, p: usize, port: PortProtocol) {
        let n = self.pods.len();
        let ingress_dst = self.destinations(&self.ingress, port);
        let egress_dst = self.destinations(&self.egress, port);

        // For every destination, the sources its ingress side admits.
        let all = Bitset::full(n);
        let mut sources: Vec<Bitset> = Vec::with_capacity(n);
        for (to, selecting) in self.ingress_selecting.iter().enumerate() {
            if selecting.is_empty() {
                sources.push(all.clone());
                continue;
            }
            let mut acc = Bitset::new(n);
            for &policy in selecting {
                for (rule, dst) in self.ingress[policy].iter().zip(&ingress_dst[policy]) {
                    let admits = match dst {
                        Destinations::Nothing => false,
                        Destinations::Everything => true,
                        Destinations::Only(set) => set.contains(to),
                    };
                    if admits {
                        acc.union_with(&rule.peers);
                    }
                }
            }
            sources.push(acc);
        }

        // For every source, the destinations its egress side admits (cached per policy list).
        let mut cache: BTreeMap<&[usize], Bitset> = BTreeMap::new();
        for (from, selecting) in self.egress_selecting.iter().enumerate() {
            let targets = cache.entry(selecting.as_slice()).or_insert_with(|| {
                if selecting.is_empty() {
                    return all.clone();
                }
                let mut acc = Bitset::new(n);
                for &policy in selecting {
                    for (rule, dst) in self.egress[policy].iter().zip(&egress_dst[policy]) {
                        match dst {
                            Destinations::Nothing => {}
                            Destinations::Everything => acc.union_with(&rule.peers),
                            Destinations::Only(set) => {
                                acc.union_with_intersection(&rule.peers, set)
                            }
                        }
                    }
                }
                acc
            });
            for to in targets.iter() {
                if from == to || sources[to].contains(from) {
                    out.allow(p, from, to);
                }
            }
            if !targets.contains(from) {
                // A pod may always reach itself, even when its own egress is denied.
                out.allow(p, from, from);
            }
        }
    }

    /// Per policy and rule, which destinations the rule's ports admit on `port`.
    fn destinations(
        &self,
        compiled: &[Vec<CompiledRule<'c>>],
        port: PortProtocol,
    ) -> Vec<Vec<Destinations>> {
        compiled
            .iter()
            .map(|rules| rules.iter().map(|r| self.rule_destinations(r.rule, port)).collect())
            .collect()
    }

    fn rule_destinations(&self, rule: &PolicyRule, port: PortProtocol) -> Destinations {
        if rule.ports.is_empty()
            || rule.ports.iter().any(|e| !is_named(e) && port_matches(e, port, None))
        {
            return Destinations::Everything;
        }
        let named: Vec<_> = rule.ports.iter().filter(|e| is_named(e)).collect();
        if named.is_empty() {
            return Destinations::Nothing;
        }
        let mut set = Bitset::new(self.pods.len());
        for (position, pod) in self.pods.iter().enumerate() {
            if named.iter().any(|e| port_matches(e, port, Some(pod))) {
                set.insert(position);
            }
        }
        Destinations::Only(set)
    }
}

/// The pods (matrix positions) matched by any peer of `rule`; every pod when it has none.
fn peer_set(
    cluster: &Cluster,
    pods: &[&Pod],
    by_namespace: &[Vec<usize>],
    policy: &NetworkPolicy,
    rule: &PolicyRule,
) -> Bitset {
    let n = pods.len();
    if rule.peers.is_empty() {
        return Bitset::full(n);
    }
    let mut set = Bitset::new(n);
    for peer in &rule.peers {
        match peer {
            PolicyPeer::Pods { namespace_selector, pod_selector } => {
                for namespace in &cluster.namespaces {
                    let namespace_ok = match namespace_selector {
                        None => namespace.id == policy.namespace,
                        Some(sel) => sel.matches(&namespace.labels),
                    };
                    if !namespace_ok {
                        continue;
                    }
                    for &position in &by_namespace[namespace.id.index()] {
                        if pod_selector.as_ref().is_none_or(|s| s.matches(&pods[position].labels)) {
                            set.insert(position);
                        }
                    }
                }
            }
            PolicyPeer::IpBlock { cidr, except } => {
                for (position, pod) in pods.iter().enumerate() {
                    if pod_addresses(pod).any(|ip| block_contains(cidr, except, ip)) {
                        set.insert(position);
                    }
                }
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::policy::{ReferenceEngine, default_ports, matrix};
    use crate::testing::{strategies, synthetic_cluster};

    /// Fails with the first disagreeing cell, named, so a shrunk case is readable.
    fn assert_same(cluster: &Cluster, ports: &[PortProtocol]) {
        let fast = fast_matrix(cluster, ports);
        let reference = matrix(&ReferenceEngine, cluster, ports);
        if let Some(&(p, from, to)) = fast.differences(&reference).first() {
            let (src, dst) = (reference.pods()[from], reference.pods()[to]);
            panic!(
                "fast says {} for {} -> {} on {}, reference says {}",
                fast.allowed(p, from, to),
                cluster.pod_ref(src),
                cluster.pod_ref(dst),
                ports[p],
                reference.allowed(p, from, to),
            );
        }
        assert_eq!(fast, reference);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn fast_matrix_equals_reference(cluster in strategies::cluster()) {
            assert_same(&cluster, &strategies::probe_ports());
        }
    }

    #[test]
    fn synthetic_clusters_agree() {
        for seed in 0..4 {
            let cluster = synthetic_cluster(60, 5, 40, seed);
            let mut ports = default_ports(&cluster);
            ports.push(PortProtocol::new(5500, crate::flow::Protocol::Tcp));
            assert_same(&cluster, &ports);
        }
    }

    #[test]
    fn bench_sized_cluster_agrees_on_sampled_cells() {
        // The full reference matrix of 1,000 pods is too slow for a debug test; sample it.
        let cluster = synthetic_cluster(1000, 20, 200, 3);
        let ports = default_ports(&cluster);
        let fast = fast_matrix(&cluster, &ports);
        let n = fast.pods().len();
        for i in 0..3000usize {
            let (p, from, to) = (i % ports.len(), (i * 7919) % n, (i * 104_729 + 13) % n);
            let flow = crate::flow::Flow::pods(fast.pods()[from], fast.pods()[to], ports[p]);
            let expected = crate::policy::PolicyEngine::evaluate(&ReferenceEngine, &cluster, &flow);
            assert_eq!(fast.allowed(p, from, to), expected.allowed, "{flow:?}");
        }
    }

    #[test]
    fn synthetic_cluster_is_partly_isolated() {
        // Guards against a generator that makes trivial (all-allowed or all-denied) matrices.
        let cluster = synthetic_cluster(60, 5, 40, 1);
        let m = fast_matrix(&cluster, &default_ports(&cluster));
        assert!(m.allowed_count() > 0 && m.denied_count() > 0);
    }
}
