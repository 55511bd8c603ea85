//! Differential checking of a [`PolicyEngine`] against the [`ReferenceEngine`].
//!
//! [`check_policy_engine`] generates small clusters full of NetworkPolicy corner cases
//! ([`strategies::cluster`](super::strategies::cluster)), asks both engines about every pod
//! pair on every probe port, and on the first disagreement lets proptest shrink the cluster to
//! a minimal one. The failure carries that cluster as YAML manifests ([`to_yaml`]) that
//! `kns matrix -f case.yaml --port …` loads and evaluates with the reference engine.
//!
//! Runs are deterministic: the case generator is seeded with a fixed ChaCha key, so a given
//! engine fails (or passes) the same way every time.
//!
//! ```
//! use kns_core::flow::Flow;
//! use kns_core::model::Cluster;
//! use kns_core::policy::{PolicyEngine, ReferenceEngine, Verdict};
//! use kns_core::testing::check_policy_engine;
//!
//! /// An engine that forgets that policies exist: it allows everything.
//! struct AllowAll;
//! impl PolicyEngine for AllowAll {
//!     fn name(&self) -> &str { "allow-all" }
//!     fn evaluate(&self, _: &Cluster, _: &Flow) -> Verdict { Verdict::unexplained(true) }
//! }
//!
//! // The reference passes its own check...
//! assert!(check_policy_engine(&mut ReferenceEngine, 64).is_ok());
//! // ...and the broken engine is caught, with a minimal case as manifests.
//! let failure = check_policy_engine(&mut AllowAll, 64).unwrap_err();
//! let report = failure.to_string();
//! assert!(report.contains("kind: NetworkPolicy"));
//! assert!(report.contains("kns matrix -f"));
//! ```

use std::cell::RefCell;
use std::fmt;

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::flow::PortProtocol;
use crate::model::Cluster;
use crate::policy::{Matrix, PolicyEngine, ReferenceEngine, matrix};

use super::strategies::{cluster, probe_ports};
use super::yaml::to_yaml;

/// One cell where an engine and the reference disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The source pod, as `namespace/name`.
    pub from: String,
    /// The destination pod, as `namespace/name`.
    pub to: String,
    /// The probed port.
    pub port: PortProtocol,
    /// What the reference engine says (the engine under test says the opposite).
    pub reference_allows: bool,
}

/// A minimal cluster on which an engine disagrees with the reference.
#[derive(Debug, Clone)]
pub struct PolicyMismatch {
    /// The engine's [`name`](PolicyEngine::name).
    pub engine: String,
    /// The shrunk cluster.
    pub cluster: Cluster,
    /// The cluster as manifests ([`to_yaml`]).
    pub yaml: String,
    /// Every disagreeing cell of the shrunk cluster, in matrix order.
    pub disagreements: Vec<Disagreement>,
    /// The engine's panic message, when it panicked instead of answering.
    pub panic: Option<String>,
}

/// Why [`check_policy_engine`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyCheckError {
    /// The engine disagreed with the reference (or panicked) on a generated cluster.
    #[error("{0}")]
    Mismatch(Box<PolicyMismatch>),
    /// proptest gave up before finishing the cases.
    #[error("the property run was aborted: {0}")]
    Aborted(String),
}

impl fmt::Display for PolicyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "policy engine `{}` disagrees with the reference engine", self.engine)?;
        if let Some(message) = &self.panic {
            writeln!(f, "  it panicked: {message}")?;
        }
        for d in &self.disagreements {
            let (r, e) =
                if d.reference_allows { ("allows", "denies") } else { ("denies", "allows") };
            writeln!(
                f,
                "  {} -> {} on {}: reference {r}, {} {e}",
                d.from, d.to, d.port, self.engine
            )?;
        }
        let ports: Vec<String> = {
            let mut ps: Vec<PortProtocol> = self.disagreements.iter().map(|d| d.port).collect();
            ps.sort();
            ps.dedup();
            ps.iter().map(|p| format!(" --port {p}")).collect()
        };
        writeln!(
            f,
            "minimal case (save as case.yaml; `kns matrix -f case.yaml{}` shows the reference answers):",
            ports.concat()
        )?;
        f.write_str(&self.yaml)
    }
}

/// The cells where `engine` and `reference` disagree, by pod name.
fn disagreements(cluster: &Cluster, engine: &Matrix, reference: &Matrix) -> Vec<Disagreement> {
    reference
        .differences(engine)
        .into_iter()
        .map(|(port, from, to)| Disagreement {
            from: cluster.pod_ref(reference.pods()[from]),
            to: cluster.pod_ref(reference.pods()[to]),
            port: reference.ports()[port],
            reference_allows: reference.allowed(port, from, to),
        })
        .collect()
}

/// Compares `engine` with the reference on one cluster over [`probe_ports`].
fn compare(engine: &mut dyn PolicyEngine, cluster: &Cluster) -> Vec<Disagreement> {
    let ports = probe_ports();
    engine.prepare(cluster);
    let got = matrix(engine, cluster, &ports);
    let want = matrix(&ReferenceEngine, cluster, &ports);
    disagreements(cluster, &got, &want)
}

/// Runs `cases` generated clusters through `engine` and the reference engine; see the module
/// documentation. Deterministic for a given engine and `cases`.
pub fn check_policy_engine<E: PolicyEngine>(
    engine: &mut E,
    cases: u32,
) -> Result<(), PolicyCheckError> {
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let name = engine.name().to_string();
    let cell = RefCell::new(engine);
    let outcome = runner.run(&cluster(), |c| {
        let found = compare(&mut **cell.borrow_mut(), &c);
        if found.is_empty() { Ok(()) } else { Err(TestCaseError::fail("engines disagree")) }
    });
    match outcome {
        Ok(()) => Ok(()),
        Err(TestError::Abort(reason)) => Err(PolicyCheckError::Aborted(reason.to_string())),
        Err(TestError::Fail(reason, cluster)) => {
            let engine = cell.into_inner();
            // A panic inside the engine reaches us as the failure reason; recompute the
            // disagreement otherwise.
            let disagreements = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                compare(&mut *engine, &cluster)
            }))
            .unwrap_or_default();
            let panic = disagreements.is_empty().then(|| reason.to_string());
            Err(PolicyCheckError::Mismatch(Box::new(PolicyMismatch {
                engine: name,
                yaml: to_yaml(&cluster),
                cluster,
                disagreements,
                panic,
            })))
        }
    }
}

/// [`check_policy_engine`], panicking with the rendered minimal case on failure (for tests).
pub fn assert_policy_engine<E: PolicyEngine>(engine: &mut E, cases: u32) {
    if let Err(e) = check_policy_engine(engine, cases) {
        panic!("{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Flow;
    use crate::policy::Verdict;

    /// Allows everything.
    struct AllowAll;

    impl PolicyEngine for AllowAll {
        fn name(&self) -> &str {
            "allow-all"
        }
        fn evaluate(&self, _: &Cluster, _: &Flow) -> Verdict {
            Verdict::unexplained(true)
        }
    }

    #[test]
    fn reference_passes_its_own_check() {
        assert_policy_engine(&mut ReferenceEngine, 128);
    }

    #[test]
    fn allow_all_is_caught_and_shrunk_to_one_policy() {
        let Err(PolicyCheckError::Mismatch(m)) = check_policy_engine(&mut AllowAll, 128) else {
            panic!("allow-all should fail");
        };
        assert_eq!(m.cluster.policies.len(), 1, "{m}");
        assert!(!m.disagreements.is_empty());
        assert!(m.disagreements.iter().all(|d| !d.reference_allows));
        // Deterministic: a second run shrinks to the same case.
        let Err(PolicyCheckError::Mismatch(again)) = check_policy_engine(&mut AllowAll, 128) else {
            panic!("allow-all should fail again");
        };
        assert_eq!(again.yaml, m.yaml);
    }
}
