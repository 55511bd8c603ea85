//! Packet formats: `smoltcp::wire` for the headers it has, SCTP (which smoltcp lacks) in the
//! same Packet/Repr shape, and the per-hop [`PacketSummary`] that bridges, routing, netfilter,
//! conntrack, policy and capture all read, so that each frame is parsed once per hop rather than
//! sliced by every component.

pub mod rewrite;
pub mod sctp;
mod summary;

pub use summary::{L4Summary, PacketSummary, SummaryError, TcpFlags, parse_ip};
