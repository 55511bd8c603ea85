//! NetworkPolicy semantics (`networking.k8s.io/v1`), the [`PolicyEngine`] seam, and matrices.
//!
//! - [`ReferenceEngine`] evaluates one connection rule by rule and explains its [`Verdict`]
//!   ([`Verdict::explain`]); it is the oracle.
//! - [`matrix`] asks any engine about every pod pair; [`fast_matrix`] computes the same matrix
//!   from a bitset index, fast enough for thousands of pods.
//!
//! Semantics in brief: a policy selects pods of its own namespace; a pod is isolated in a
//! direction when some policy of that direction selects it; an isolated pod admits a connection
//! when any rule of any selecting policy matches it (peers and ports); a connection needs the
//! source's egress and the destination's ingress. The choices Kubernetes leaves open are stated
//! in [`reference`] and [`peers`].

mod bitset;
mod engine;
mod explain;
mod fast;
mod matrix;
pub mod peers;
pub mod ports;
pub mod reference;

pub use bitset::Bitset;
pub use engine::{Direction, PolicyEngine, Side, Verdict};
pub use fast::fast_matrix;
pub use matrix::{Matrix, default_ports, matrix};
pub use reference::ReferenceEngine;
