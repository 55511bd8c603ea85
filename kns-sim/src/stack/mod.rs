//! The socket layer of an endpoint namespace.
//!
//! A namespace's IP layer (routing, ARP, netfilter) is kns's own;
//! the TCP/UDP/ICMP sockets above it belong to an [`IpStack`], normally a smoltcp interface
//! with `Medium::Ip`. The engine hands the stack every packet addressed to the namespace (after
//! INPUT), collects what it transmits (before OUTPUT and routing), and polls it again at the
//! time it asks for, so virtual time jumps from event to event instead of ticking.

//!
//! [`SmolStack`] is the implementation: one smoltcp `Interface` per namespace with its own small
//! socket set, kns-allocated ephemeral ports ([`ports`]), and sans-I/O applications ([`App`],
//! driven through [`AppCx`]). Built-in applications live in [`apps`]; [`testnet::LoopbackNet`]
//! wires stacks together directly (no kns IP layer) for tests and experiments.

mod app;
pub mod apps;
mod device;
pub mod ports;
mod smol;
pub mod testnet;

pub use app::{
    App, AppCx, AppId, AppPoll, IcmpHandle, IcmpKind, IcmpMessage, ListenerId, OriginalDatagram,
    TcpHandle, UdpHandle,
};
pub use smol::{MAX_ADDRESSES, SmolStack, StackConfig, StackError};

use crate::time::Time;

/// A sans-I/O socket layer attached to one namespace.
pub trait IpStack {
    /// A packet (a whole IP datagram) addressed to one of the namespace's addresses arrived.
    fn receive(&mut self, now: Time, packet: &[u8]);

    /// Lets the stack and its applications run; appends every IP datagram it sends to `out`.
    fn poll(&mut self, now: Time, out: &mut Vec<Vec<u8>>);

    /// The earliest time the stack wants to be polled again (`None`: only on a new packet).
    fn poll_at(&self, now: Time) -> Option<Time>;

    /// The namespace's addresses changed; the stack must accept packets to exactly these.
    fn set_addresses(&mut self, addrs: &[ipnet::IpNet]);
}
