//! Cluster DNS: a CoreDNS-like server, an emulated upstream, and the resolver a pod runs.
//!
//! - [`message`]: DNS messages as values, and their wire format (through `simple-dns`).
//! - [`records`]: reverse names, dashed addresses, zone membership.
//! - [`zone`]: the `kubernetes` plugin's view of a [`Cluster`](kns_core::Cluster).
//! - [`corefile`]: the Corefile subset, parsed with line numbers.

pub mod corefile;
pub mod message;
pub mod records;
pub mod server;
#[cfg(test)]
mod testing;
pub mod zone;

pub use message::{Message, Question, RData, Rcode, Record, RecordType};
pub use zone::{ClusterZone, PodMode, ZoneConfig};
