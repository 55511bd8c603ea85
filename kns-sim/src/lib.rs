//! kns-sim: the packet dataplane and the deterministic engine that drives it.
//!
//! **Invariants:** virtual time only (never the wall clock), every random choice from a seeded
//! ChaCha RNG, ordered collections wherever iteration order reaches an output. This crate opens
//! no files: captures and traces are written to whatever `io::Write` the caller hands in.

pub mod aio;
pub mod cluster;
pub mod cmd;
pub mod cni_check;
pub mod cni_host;
pub mod conntrack;
pub mod dns;
pub mod drop;
pub mod engine;
pub mod kube_proxy;
pub mod net;
pub mod netfilter;
pub mod policy_agent;
pub mod script;
pub mod stack;
pub mod time;
pub mod wire;

pub use drop::DropReason;
pub use net::Sim;
pub use time::Time;
