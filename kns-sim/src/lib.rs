//! kns-sim: the packet dataplane and the deterministic engine that drives it.
//!
//! **Invariants:** virtual time only (never the wall clock), every random choice from a seeded
//! ChaCha RNG, ordered collections wherever iteration order reaches an output. This crate opens
//! no files: captures and traces are written to whatever `io::Write` the caller hands in.

pub mod aio;
pub mod cmd;
pub mod conntrack;
pub mod drop;
pub mod engine;
pub mod net;
pub mod netfilter;
pub mod script;
pub mod stack;
pub mod time;
pub mod wire;

pub use drop::DropReason;
pub use net::Sim;
pub use time::Time;
