//! kns-scenarios: everything a user touches — the `kns` CLI, its renderers and the teaching
//! scenarios. This is the only kns crate that does I/O (reading manifests, writing files).

pub mod cli;
pub mod scenario;
pub mod shell;
pub mod tour;
