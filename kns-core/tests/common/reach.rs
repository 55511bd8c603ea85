//! The upstream conformance topology (namespaces x, y, z; pods a, b, c) and reachability
//! tables built the way upstream's builder does: start from all-allowed and apply edits.

use std::fmt::Write;

use kns_core::flow::{PortProtocol, Protocol};
use kns_core::model::Cluster;
use kns_core::testing::ClusterBuilder;

/// The namespaces of the topology.
pub const NAMESPACES: [&str; 3] = ["x", "y", "z"];
/// The pod names in every namespace.
pub const PODS: [&str; 3] = ["a", "b", "c"];

/// The base cluster: namespaces x, y, z (label `ns`), pods a, b, c in each (label `pod`), every
/// pod serving 80 and 81 on TCP, UDP and SCTP through ports named `serve-80-tcp` and so on.
/// Pod IPs are 10.0.0.1 (x/a) to 10.0.0.9 (z/c) in that order.
pub fn base() -> ClusterBuilder {
    let mut b = ClusterBuilder::new();
    let protocols = [(Protocol::Tcp, "tcp"), (Protocol::Udp, "udp"), (Protocol::Sctp, "sctp")];
    let names: Vec<(String, u16, Protocol)> = protocols
        .iter()
        .flat_map(|&(proto, word)| {
            [80u16, 81].map(move |port| (format!("serve-{port}-{word}"), port, proto))
        })
        .collect();
    for ns in NAMESPACES {
        let id = b.namespace(ns, &[("ns", ns)]);
        for pod in PODS {
            let ports: Vec<(&str, u16, Protocol)> =
                names.iter().map(|(n, p, proto)| (n.as_str(), *p, *proto)).collect();
            b.pod(id, pod, &[("pod", pod)], &ports);
        }
    }
    b
}

/// Expected reachability over the nine pods, in `x/a, x/b, ..., z/c` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    allowed: [[bool; 9]; 9],
}

impl Reach {
    /// Everything allowed.
    pub fn all() -> Self {
        Reach { allowed: [[true; 9]; 9] }
    }

    /// Sets every pair matching the patterns (`x/a`, `x/*`, `*/a` or `*`). A pod reaching
    /// itself is never changed: kns always allows it (upstream ignores loopback results).
    pub fn set(mut self, from: &str, to: &str, allowed: bool) -> Self {
        for i in 0..9 {
            for j in 0..9 {
                if i != j && matches(from, i) && matches(to, j) {
                    self.allowed[i][j] = allowed;
                }
            }
        }
        self
    }

    /// Shorthand for `set(from, to, false)`.
    pub fn deny(self, from: &str, to: &str) -> Self {
        self.set(from, to, false)
    }

    /// Shorthand for `set(from, to, true)`.
    pub fn allow(self, from: &str, to: &str) -> Self {
        self.set(from, to, true)
    }

    /// Reads row `from`, column `to`.
    pub fn get(&self, from: usize, to: usize) -> bool {
        self.allowed[from][to]
    }

    /// The table for one port: a header row of destinations, then one row per source, with
    /// `X` for allowed and `.` for denied.
    pub fn table(&self, port: PortProtocol) -> String {
        let names = pod_names();
        let mut out = format!("{port}\n-  ");
        for n in &names {
            write!(out, " {n}").expect("writing to a String");
        }
        out.push('\n');
        for (i, n) in names.iter().enumerate() {
            out.push_str(n);
            for j in 0..9 {
                out.push_str(if self.allowed[i][j] { "   X" } else { "   ." });
            }
            out.push('\n');
        }
        out
    }

    /// The reachability a matrix (over the base topology, in matrix order) shows on `port`.
    pub fn from_matrix(cluster: &Cluster, m: &kns_core::policy::Matrix, port: usize) -> Self {
        let names: Vec<String> = m.pods().iter().map(|&p| cluster.pod_ref(p)).collect();
        assert_eq!(names, pod_names(), "the matrix must be over the base topology");
        let mut allowed = [[false; 9]; 9];
        for (i, row) in allowed.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                *cell = m.allowed(port, i, j);
            }
        }
        Reach { allowed }
    }
}

/// `x/a`, `x/b`, ..., `z/c`.
pub fn pod_names() -> Vec<String> {
    NAMESPACES.iter().flat_map(|ns| PODS.iter().map(move |p| format!("{ns}/{p}"))).collect()
}

/// Whether pod number `i` matches a pattern.
fn matches(pattern: &str, i: usize) -> bool {
    let (ns, pod) = pattern.split_once('/').unwrap_or((pattern, "*"));
    (ns == "*" || ns == NAMESPACES[i / 3]) && (pod == "*" || pod == PODS[i % 3])
}
