//! Why a frame was dropped. Every drop in kns carries one of these and is counted by the engine,
//! so that a conservation check can prove that every frame sent was delivered or explained.

use std::fmt;

/// The reason a frame or packet was discarded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// No route matched the destination.
    NoRoute,
    /// The next hop's link-layer address could not be resolved (ARP/NDP gave up).
    NoNeighbour,
    /// The TTL or hop limit reached zero while forwarding.
    TtlExceeded,
    /// A netfilter rule dropped or rejected it: table, chain and 1-based rule number.
    FilterRule {
        /// The table (`filter`, `nat`, ...).
        table: String,
        /// The chain.
        chain: String,
        /// The rule's 1-based position in the chain (0 for the chain policy).
        rule: usize,
    },
    /// A pluggable packet filter (e.g. a NetworkPolicy agent) dropped it, with its explanation.
    Filter {
        /// The filter's name.
        filter: String,
        /// Why, in plain words (which policy and rule).
        why: String,
    },
    /// Connection tracking classified it as INVALID.
    ConntrackInvalid,
    /// A device or socket queue was full.
    QueueFull,
    /// The link lost it (seeded random loss).
    LinkLoss,
    /// It was larger than the link MTU.
    Mtu,
    /// It could not be parsed at the given layer.
    Malformed(&'static str),
    /// The interface it arrived on or was sent to is down.
    InterfaceDown,
    /// It was addressed to this host but nothing local accepted it.
    NotForUs,
    /// ip_forward is off and it was not addressed to this namespace.
    ForwardingDisabled,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::NoRoute => f.write_str("no route to host"),
            DropReason::NoNeighbour => f.write_str("neighbour unreachable (no ARP reply)"),
            DropReason::TtlExceeded => f.write_str("TTL exceeded"),
            DropReason::FilterRule { table, chain, rule: 0 } => {
                write!(f, "dropped by policy of chain {chain} in table {table}")
            }
            DropReason::FilterRule { table, chain, rule } => {
                write!(f, "dropped by rule {rule} of chain {chain} in table {table}")
            }
            DropReason::Filter { filter, why } => write!(f, "dropped by {filter}: {why}"),
            DropReason::ConntrackInvalid => f.write_str("conntrack state INVALID"),
            DropReason::QueueFull => f.write_str("queue full"),
            DropReason::LinkLoss => f.write_str("lost on the link"),
            DropReason::Mtu => f.write_str("larger than the MTU"),
            DropReason::Malformed(layer) => write!(f, "malformed {layer}"),
            DropReason::InterfaceDown => f.write_str("interface down"),
            DropReason::NotForUs => f.write_str("not for this host"),
            DropReason::ForwardingDisabled => f.write_str("forwarding disabled (ip_forward=0)"),
        }
    }
}
