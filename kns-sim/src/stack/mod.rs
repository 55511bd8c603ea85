//! The socket layer of an endpoint namespace.
//!
//! A namespace's IP layer (routing, ARP, netfilter) is kns's own; the TCP/UDP/ICMP sockets above
//! it belong to an [`IpStack`], normally a smoltcp interface with `Medium::Ip`. The engine hands
//! the stack every packet addressed to the namespace (after INPUT), collects what it transmits
//! (before OUTPUT and routing), and polls it again at the time it asks for, so virtual time
//! jumps from event to event instead of ticking.
//!
//! [`SmolStack`] is the implementation: one smoltcp `Interface` per namespace with its own small
//! socket set, a default route that hands every destination to kns, kns-allocated ephemeral
//! ports ([`ports`]), and sans-I/O applications ([`App`], driven through [`AppCx`]). IPv4 and
//! IPv6 are both handled (TCP, UDP, ICMP and ICMPv6), and a minimal SCTP endpoint (INIT / INIT
//! ACK / ABORT over raw IP, since smoltcp has no SCTP) stands beside smoltcp. Built-in
//! applications (ping, traceroute, nc, curl, echo and HTTP servers, a bulk source and sink, the
//! agnhost-like pod server and connection probes) live in [`apps`];
//! [`testnet::LoopbackNet`] wires stacks together directly (no kns IP layer) for tests and
//! experiments.
//!
//! **Guarantees:** a stack reads no clock and no global RNG (its seed is in [`StackConfig`]);
//! apps are polled in spawn order every time the stack is polled; `poll_at` is never earlier
//! than 1 µs after the last poll unless a packet or a change is waiting, so an engine that
//! jumps to it always makes progress.
//!
//! **Containers of a pod** are apps of one stack: they share its port space (a second listener
//! or bind on a port in use is [`StackError::PortInUse`]) and reach each other on 127.0.0.1 or
//! the pod's own address. The stack has no loopback path of its own: such packets leave through
//! the namespace's IP layer, which sends them over `lo` (through the OUTPUT and INPUT hooks, as
//! Linux does) back to the stack, so `lo` must be up (the CNI `loopback` plugin's job). Under
//! [`testnet::LoopbackNet`] a packet to a stack's own address comes straight back to it.
//!
//! # Writing an application
//!
//! ```
//! use std::net::SocketAddr;
//! use kns_sim::Time;
//! use kns_sim::stack::{App, AppCx, AppPoll, SmolStack, StackConfig, UdpHandle};
//! use kns_sim::stack::apps::UdpEcho;
//! use kns_sim::stack::testnet::LoopbackNet;
//!
//! /// Sends one datagram and keeps the answer.
//! struct Hello { to: SocketAddr, socket: Option<UdpHandle>, answer: Option<Vec<u8>> }
//!
//! impl App for Hello {
//!     fn poll(&mut self, _now: Time, cx: &mut AppCx<'_>) -> AppPoll {
//!         let socket = match self.socket {
//!             Some(s) => s,
//!             None => {
//!                 let s = cx.udp_bind(0).unwrap(); // 0: an ephemeral port
//!                 cx.udp_send(s, self.to, b"hello").unwrap();
//!                 self.socket = Some(s);
//!                 s
//!             }
//!         };
//!         match cx.udp_recv(socket) {
//!             Some((data, _from)) => {
//!                 self.answer = Some(data);
//!                 cx.remove(socket);
//!                 AppPoll::Done
//!             }
//!             None => AppPoll::Idle, // woken when the stack is polled again
//!         }
//!     }
//! }
//!
//! let stack = |seed, addr: &str| {
//!     SmolStack::with_addresses(StackConfig::with_seed(seed), Time::ZERO, &[addr.parse().unwrap()])
//!         .unwrap()
//! };
//! let mut net = LoopbackNet::default();
//! let a = net.add(stack(1, "10.0.0.1/24"));
//! let b = net.add(stack(2, "10.0.0.2/24"));
//! net.stack_mut(b).spawn(UdpEcho::new(7));
//! let hello = net.stack_mut(a).spawn(Hello {
//!     to: "10.0.0.2:7".parse().unwrap(),
//!     socket: None,
//!     answer: None,
//! });
//! assert!(net.run_until_done(Time::from_secs(1), &[(a, hello)]).unwrap());
//! let app = net.stack(a).app::<Hello>(hello).unwrap();
//! assert_eq!(app.answer.as_deref(), Some(&b"hello"[..]));
//! ```

mod app;
pub mod apps;
mod device;
pub mod ports;
mod sctp;
mod smol;
pub mod testnet;

pub use app::{
    App, AppCx, AppId, AppPoll, IcmpHandle, IcmpKind, IcmpMessage, ListenerId, OriginalDatagram,
    TcpHandle, UdpHandle,
};
pub use sctp::{SctpHandle, SctpState};
pub use smol::{MAX_ADDRESSES, SmolStack, StackConfig, StackError, TcpSocketInfo};

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
