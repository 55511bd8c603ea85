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
