//! Pluggable packet filters: code that sits at a hook beside the rule tables, as kube-proxy's
//! IPVS and nftables modes and NetworkPolicy agents do.

use std::net::IpAddr;

use super::{Hook, HookContext, RejectWith};
use crate::conntrack::CtState;
use crate::time::Time;
use crate::wire::PacketSummary;

/// Priorities of the built-in stages of a hook, as in Linux: a filter registered with a lower
/// number runs before the stage, a higher one after it.
pub mod priority {
    /// Connection tracking (always first: every filter sees the packet's state).
    pub const CONNTRACK: i32 = -200;
    /// Destination NAT from the nat table (PREROUTING, OUTPUT).
    pub const NAT_DST: i32 = -100;
    /// The filter table (INPUT, FORWARD, OUTPUT).
    pub const FILTER: i32 = 0;
    /// Source NAT from the nat table (INPUT, POSTROUTING).
    pub const NAT_SRC: i32 = 100;
}

/// What a packet filter decides about a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterVerdict {
    /// No objection: the hook's later stages decide.
    Pass,
    /// Drop it, with the explanation given (which policy and rule).
    Drop(String),
    /// Drop it and answer the sender.
    Reject(String, RejectWith),
    /// Destination-NAT the connection to this address (and port). Honoured only for a new
    /// connection's first packet at PREROUTING or OUTPUT that no rule has DNATed; the decision
    /// is stored in the connection like a DNAT rule's.
    Dnat(IpAddr, Option<u16>),
    /// Source-NAT the connection, at INPUT or POSTROUTING, on the same terms as `Dnat`.
    Snat(IpAddr, Option<u16>),
}

/// A packet filter registered at a hook with [`super::Netfilter::add_filter`].
pub trait PacketFilter {
    /// A short name, used in drop reasons and notes.
    fn name(&self) -> &str;

    /// Judges one packet at `hook`. `ct` is its connection-tracking state.
    fn check(
        &mut self,
        now: Time,
        hook: Hook,
        ctx: &HookContext<'_>,
        summary: &PacketSummary,
        ct: CtState,
    ) -> FilterVerdict;
}
