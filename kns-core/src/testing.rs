//! Test kit: builders for model values, proptest strategies for clusters with policies, a
//! deterministic synthetic cluster generator for benchmarks, and contract checks for code
//! brought from outside: [`check_policy_engine`] (differential against the reference engine,
//! failures shrunk and printed as YAML manifests, see [`check`]) and [`check_service_proxy`]
//! (see [`proxy_check`]). CNI plugins are checked in kns-sim (`kns_sim::cni_check`), which has
//! the dataplane they need.
//!
//! Compiled for the crate's own unit tests and, for other crates, with the `testing` feature.
//! Nothing here reads a clock or an entropy source: generated clusters depend only on the
//! arguments (and, for strategies, on proptest's seeded runner).

pub mod build;
pub mod check;
pub mod proxy_check;
pub mod services;
pub mod strategies;
pub mod synthetic;
pub mod yaml;

pub use build::ClusterBuilder;
pub use check::{PolicyCheckError, PolicyMismatch, assert_policy_engine, check_policy_engine};
pub use proxy_check::{ProxyCheckError, check_service_proxy};
pub use services::service_cluster;
pub use synthetic::synthetic_cluster;
pub use yaml::to_yaml;
