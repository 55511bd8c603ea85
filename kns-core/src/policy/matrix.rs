//! Reachability matrices: for each port, which pod may connect to which.
//!
//! Pods are ordered by namespace then name ([`Cluster::pods_sorted`]), so a matrix is
//! deterministic and two matrices of the same cluster compare directly with `==`.

use std::collections::BTreeSet;

use crate::flow::{Flow, PortProtocol};
use crate::model::{Cluster, PodId};

use super::bitset::Bitset;
use super::engine::PolicyEngine;

/// Whether each pod may connect to each pod, on each of a list of ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pods: Vec<PodId>,
    ports: Vec<PortProtocol>,
    bits: Bitset,
}

impl Matrix {
    /// A matrix where nothing is allowed yet.
    pub(crate) fn empty(pods: Vec<PodId>, ports: Vec<PortProtocol>) -> Self {
        let n = pods.len();
        let bits = Bitset::new(ports.len() * n * n);
        Matrix { pods, ports, bits }
    }

    /// Records that `from` may connect to `to` on the port at `port`.
    pub(crate) fn allow(&mut self, port: usize, from: usize, to: usize) {
        let i = self.bit(port, from, to);
        self.bits.insert(i);
    }

    /// The pods, by namespace then name; positions in this list index the matrix.
    pub fn pods(&self) -> &[PodId] {
        &self.pods
    }

    /// The ports, in the order given.
    pub fn ports(&self) -> &[PortProtocol] {
        &self.ports
    }

    /// The position of `pod` in [`pods`](Self::pods), if it is there.
    pub fn position(&self, pod: PodId) -> Option<usize> {
        self.pods.iter().position(|&p| p == pod)
    }

    /// Whether pod number `from` may connect to pod number `to` on port number `port`.
    ///
    /// Positions out of range answer `false`.
    pub fn allowed(&self, port: usize, from: usize, to: usize) -> bool {
        let n = self.pods.len();
        port < self.ports.len()
            && from < n
            && to < n
            && self.bits.contains(self.bit(port, from, to))
    }

    /// The number of (port, from, to) cells, self pairs included.
    pub fn cells(&self) -> usize {
        self.bits.len()
    }

    /// The number of allowed cells.
    pub fn allowed_count(&self) -> usize {
        self.bits.count()
    }

    /// The number of denied cells.
    pub fn denied_count(&self) -> usize {
        self.cells() - self.allowed_count()
    }

    /// The cells where `self` and `other` disagree, as (port, from, to) positions, in order.
    /// Matrices over different pods or ports disagree everywhere that either has a cell.
    pub fn differences(&self, other: &Matrix) -> Vec<(usize, usize, usize)> {
        let n = self.pods.len().max(other.pods.len());
        let ports = self.ports.len().max(other.ports.len());
        let same_shape = self.pods == other.pods && self.ports == other.ports;
        let mut out = Vec::new();
        for port in 0..ports {
            for from in 0..n {
                for to in 0..n {
                    let differs = !same_shape
                        || self.allowed(port, from, to) != other.allowed(port, from, to);
                    if differs {
                        out.push((port, from, to));
                    }
                }
            }
        }
        out
    }

    /// The bit index of a cell.
    fn bit(&self, port: usize, from: usize, to: usize) -> usize {
        let n = self.pods.len();
        (port * n + from) * n + to
    }
}

/// The matrix of `engine` over every pod pair of `cluster` and every port of `ports`, by
/// calling [`PolicyEngine::evaluate`] once per cell.
pub fn matrix(engine: &dyn PolicyEngine, cluster: &Cluster, ports: &[PortProtocol]) -> Matrix {
    let pods = cluster.pods_sorted();
    let mut out = Matrix::empty(pods.clone(), ports.to_vec());
    for (p, &port) in ports.iter().enumerate() {
        for (from, &src) in pods.iter().enumerate() {
            for (to, &dst) in pods.iter().enumerate() {
                if engine.evaluate(cluster, &Flow::pods(src, dst, port)).allowed {
                    out.allow(p, from, to);
                }
            }
        }
    }
    out
}

/// Every distinct container port (with its protocol) declared by a pod, sorted.
pub fn default_ports(cluster: &Cluster) -> Vec<PortProtocol> {
    let set: BTreeSet<PortProtocol> = cluster
        .pods
        .iter()
        .flat_map(|pod| pod.ports())
        .map(|cp| PortProtocol::new(cp.port, cp.protocol))
        .collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Protocol;
    use crate::model::{PolicyTypes, Selector};
    use crate::policy::ReferenceEngine;
    use crate::testing::ClusterBuilder;

    /// Two namespaces, declared out of name order, with a default-deny-ingress in `b`.
    fn cluster() -> Cluster {
        let mut b = ClusterBuilder::new();
        let nb = b.namespace("b", &[]);
        let na = b.namespace("a", &[]);
        b.pod(nb, "z", &[], &[("http", 80, Protocol::Tcp), ("dns", 53, Protocol::Udp)]);
        b.pod(na, "y", &[], &[("http", 80, Protocol::Tcp)]);
        let types = PolicyTypes { ingress: true, egress: false };
        b.policy(nb, "deny", Selector::everything(), types, vec![], vec![]);
        b.build()
    }

    #[test]
    fn default_ports_are_distinct_and_sorted() {
        let ports = default_ports(&cluster());
        assert_eq!(
            ports,
            vec![PortProtocol::new(53, Protocol::Udp), PortProtocol::new(80, Protocol::Tcp)]
        );
    }

    #[test]
    fn matrix_is_in_name_order_with_exact_cells() {
        let c = cluster();
        let m = matrix(&ReferenceEngine, &c, &[PortProtocol::new(80, Protocol::Tcp)]);
        let names: Vec<String> = m.pods().iter().map(|&p| c.pod_ref(p)).collect();
        assert_eq!(names, vec!["a/y", "b/z"]);
        // a/y -> b/z is denied; the rest (including self traffic) is allowed.
        assert_eq!(
            (m.allowed(0, 0, 0), m.allowed(0, 0, 1), m.allowed(0, 1, 0), m.allowed(0, 1, 1)),
            (true, false, true, true)
        );
        assert_eq!((m.cells(), m.allowed_count(), m.denied_count()), (4, 3, 1));
        assert!(!m.allowed(1, 0, 0) && !m.allowed(0, 2, 0));
        assert_eq!(m.position(c.pods[0].id), Some(1));
    }

    #[test]
    fn differences_list_disagreeing_cells() {
        let c = cluster();
        let ports = [PortProtocol::new(80, Protocol::Tcp)];
        let a = matrix(&ReferenceEngine, &c, &ports);
        let mut b = a.clone();
        b.allow(0, 0, 1);
        assert_eq!(a.differences(&b), vec![(0, 0, 1)]);
        assert!(a.differences(&a).is_empty());
        assert_ne!(a, b);
    }
}
