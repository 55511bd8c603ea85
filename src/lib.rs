//! kns: a deterministic in-process emulator of Kubernetes cluster networking.
pub use kns_core as core;
pub use kns_scenarios as scenarios;
pub use kns_sim as sim;
