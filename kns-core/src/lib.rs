//! kns-core: what a cluster is and what its rules mean.
//!
//! This crate holds the typed model of a Kubernetes cluster's networking objects
//! ([`model`]), the loader that turns real Kubernetes YAML into that model ([`manifest`]),
//! the shared flow vocabulary ([`flow`]), the NetworkPolicy semantics ([`policy`]) and the
//! service proxy seam with its four modes ([`proxy`]), and the
//! Service environment variables kubelet sets ([`discovery`]).
//! With the `testing` feature, `testing` offers cluster builders, proptest strategies and a
//! deterministic synthetic cluster generator.
//!
//! **Invariant:** no I/O, no clock, no entropy. Everything here is a pure function of its
//! inputs (the proxies' random choices come from ChaCha generators seeded by the caller), so
//! the simulator (`kns-sim`) and the CLI (`kns-scenarios`) can rely on it for reproducible
//! answers.

pub mod cni;
pub mod discovery;
pub mod flow;
pub mod ingress;
pub mod manifest;
pub mod model;
pub mod policy;
pub mod proxy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use flow::{Flow, FlowEnd, PortProtocol, Protocol};
pub use model::Cluster;
