//! The application API: sans-I/O programs that run inside a [`SmolStack`](super::SmolStack).
//!
//! An [`App`] is polled every time its stack is polled (after the stack has taken in the packets
//! that arrived), with an [`AppCx`] that opens, reads and writes this stack's sockets. It returns
//! an [`AppPoll`]: when it wants to be woken again, or that it has finished. Apps never see a
//! clock other than the `now` they are handed, and never block.
//!
//! Sockets are smoltcp's, reachable through typed handles ([`TcpHandle`], [`UdpHandle`],
//! [`IcmpHandle`]) and the helpers on [`AppCx`]; `AppCx::tcp`/`AppCx::udp` expose the smoltcp
//! socket itself for anything the helpers do not cover.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{raw, tcp, udp};
use smoltcp::wire::{
    Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpAddress,
    IpEndpoint, IpListenEndpoint, IpProtocol, IpVersion, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr,
};

use super::StackError;
use super::ports::Transport;
use super::sctp::{SctpHandle, SctpState};
use super::smol::Core;
use crate::time::Time;

/// A program running on a stack, driven by the engine.
pub trait App: Any {
    /// Runs the application at `now`; `cx` gives access to the stack's sockets.
    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll;

    /// The app is being stopped (like a process killed): give sockets back. The default does
    /// nothing; sockets an app keeps stay open until the stack is dropped.
    fn stop(&mut self, now: Time, cx: &mut AppCx<'_>) {
        let _ = (now, cx);
    }
}

/// What an application wants after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppPoll {
    /// Poll again at this time at the latest (and whenever the stack is polled before it).
    WakeAt(Time),
    /// Poll again only when the stack is polled (a packet arrived or a socket timer fired).
    Idle,
    /// Finished: the app is never polled again, but its results stay readable.
    Done,
}

/// Identifies an application spawned on a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppId(pub(crate) usize);

/// A TCP socket of this stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TcpHandle(pub(crate) SocketHandle);

/// A UDP socket of this stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UdpHandle(pub(crate) SocketHandle);

/// An ICMP socket of this stack, for IPv4 or IPv6: it sees every ICMP message of its version
/// the stack receives (including errors about TCP and UDP packets) and sends echo requests with
/// a chosen TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IcmpHandle(pub(crate) SocketHandle);

/// A listening TCP port with an accept queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerId(pub(crate) usize);

impl From<TcpHandle> for SocketHandle {
    fn from(h: TcpHandle) -> SocketHandle {
        h.0
    }
}
impl From<UdpHandle> for SocketHandle {
    fn from(h: UdpHandle) -> SocketHandle {
        h.0
    }
}
impl From<IcmpHandle> for SocketHandle {
    fn from(h: IcmpHandle) -> SocketHandle {
        h.0
    }
}

/// An ICMP message received by an [`IcmpHandle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpMessage {
    /// The sender (the IP source address).
    pub from: IpAddr,
    /// The IP destination (one of this stack's addresses).
    pub to: IpAddr,
    /// The TTL the datagram arrived with.
    pub ttl: u8,
    /// Length of the ICMP message (header and data) in bytes.
    pub icmp_len: usize,
    /// What it says.
    pub kind: IcmpKind,
}

/// The meaning of an [`IcmpMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IcmpKind {
    /// An echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// The echoed data.
        data: Vec<u8>,
    },
    /// An echo request (the stack answers it itself).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
    },
    /// Destination unreachable with its code (ICMPv4: 0 net, 1 host, 3 port, 13 prohibited;
    /// ICMPv6: 0 no route, 1 prohibited, 3 address, 4 port).
    DestUnreachable {
        /// The ICMP code.
        code: u8,
        /// The datagram it is about.
        original: OriginalDatagram,
    },
    /// Time exceeded (code 0: TTL or hop limit exceeded in transit).
    TimeExceeded {
        /// The ICMP code.
        code: u8,
        /// The datagram it is about.
        original: OriginalDatagram,
    },
    /// Any other ICMP message.
    Other {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
}

/// The head of the datagram an ICMP error quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginalDatagram {
    /// Its source address.
    pub src: IpAddr,
    /// Its destination address.
    pub dst: IpAddr,
    /// Its IP protocol number (1 ICMP, 6 TCP, 17 UDP, 58 ICMPv6).
    pub protocol: u8,
    /// TCP/UDP source port, or the echo identifier for ICMP.
    pub src_port: u16,
    /// TCP/UDP destination port, or the echo sequence number for ICMP.
    pub dst_port: u16,
}

/// Socket bookkeeping shared by the stack and the application context.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owned {
    /// What kind of smoltcp socket the handle names (smoltcp panics on a mismatch).
    pub(crate) kind: SocketKind,
    /// The local port the socket holds in the allocator.
    pub(crate) port: Option<(Transport, u16)>,
}

/// The kinds of socket a stack creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SocketKind {
    Tcp,
    Udp,
    Icmp4,
    Icmp6,
}

/// A listening port: one spare socket in LISTEN, re-armed after every packet, and a queue of
/// connections waiting to be accepted (the backlog).
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) port: u16,
    pub(crate) backlog: usize,
    /// Buffer size of each socket (`None`: the stack's `tcp_buffer`).
    pub(crate) buffer: Option<usize>,
    pub(crate) spare: Option<SocketHandle>,
    pub(crate) queue: VecDeque<SocketHandle>,
}

/// The application's view of its stack during one poll.
pub struct AppCx<'a> {
    pub(crate) core: &'a mut Core,
    pub(crate) now: Time,
}

impl AppCx<'_> {
    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The stack's addresses.
    pub fn addresses(&self) -> Vec<ipnet::IpNet> {
        self.core.addresses.clone()
    }

    /// The source address the stack would use towards `dst`.
    pub fn source_address(&self, dst: IpAddr) -> Option<IpAddr> {
        self.core.iface.get_source_address(&IpAddress::from(dst)).map(IpAddr::from)
    }

    /// A fresh ICMP echo identifier (deterministic per stack).
    pub fn next_icmp_ident(&mut self) -> u16 {
        let ident = self.core.next_icmp_ident;
        self.core.next_icmp_ident = ident.wrapping_add(1);
        ident
    }

    // ---- TCP ----

    /// Listens on TCP `port` with an accept queue of `backlog` connections. Unlike Linux, which
    /// drops SYNs while the queue is full, smoltcp answers them with RST: pick a backlog larger
    /// than the number of clients expected at once.
    ///
    /// Listening on a port another listener of this stack holds fails with
    /// [`StackError::PortInUse`] (two containers of a pod share the port space); connections an
    /// earlier listener accepted do not block it, as with Linux's `SO_REUSEADDR`.
    pub fn tcp_listen(&mut self, port: u16, backlog: usize) -> Result<ListenerId, StackError> {
        self.listen_with(port, backlog, None)
    }

    /// Like [`AppCx::tcp_listen`], with `buffer` bytes per direction for each connection
    /// instead of the stack's `tcp_buffer` (small servers keep idle stacks small).
    pub fn tcp_listen_sized(
        &mut self,
        port: u16,
        backlog: usize,
        buffer: usize,
    ) -> Result<ListenerId, StackError> {
        self.listen_with(port, backlog, Some(buffer.max(1)))
    }

    fn listen_with(
        &mut self,
        port: u16,
        backlog: usize,
        buffer: Option<usize>,
    ) -> Result<ListenerId, StackError> {
        if port == 0 {
            return Err(StackError::PortZero);
        }
        if self.core.listeners.iter().flatten().any(|l| l.port == port) {
            return Err(StackError::PortInUse { port });
        }
        let mut listener =
            Listener { port, backlog: backlog.max(1), buffer, spare: None, queue: VecDeque::new() };
        self.core.arm(&mut listener)?;
        let id = self.core.listeners.len();
        self.core.listeners.push(Some(listener));
        Ok(ListenerId(id))
    }

    /// Takes the oldest established connection from the listener's queue.
    pub fn tcp_accept(&mut self, listener: ListenerId) -> Option<TcpHandle> {
        let core = &mut *self.core;
        let mut l = core.listeners.get_mut(listener.0)?.take()?;
        let accepted = core.accept(&mut l);
        core.listeners[listener.0] = Some(l);
        accepted.map(TcpHandle)
    }

    /// Stops listening: queued connections are reset, open accepted ones are untouched.
    pub fn tcp_unlisten(&mut self, listener: ListenerId) {
        let Some(l) = self.core.listeners.get_mut(listener.0).and_then(Option::take) else {
            return;
        };
        if let Some(spare) = l.spare {
            self.core.release(spare);
        }
        for h in l.queue {
            // Reset after the next egress, like Linux closing a listener with queued peers.
            self.core.sockets.get_mut::<tcp::Socket>(h).abort();
            self.core.orphans.push(h);
        }
    }

    /// Opens a TCP connection to `remote` from a fresh ephemeral port.
    pub fn tcp_connect(&mut self, remote: SocketAddr) -> Result<TcpHandle, StackError> {
        let n = self.core.config().tcp_buffer;
        self.tcp_connect_sized(remote, n)
    }

    /// Like [`AppCx::tcp_connect`], with `buffer` bytes per direction instead of the stack's
    /// `tcp_buffer` (probes that exchange a few bytes stay small).
    pub fn tcp_connect_sized(
        &mut self,
        remote: SocketAddr,
        buffer: usize,
    ) -> Result<TcpHandle, StackError> {
        let port = self.core.ports.allocate(Transport::Tcp).ok_or(StackError::PortsExhausted)?;
        let mut socket = self.core.new_tcp_socket_sized(buffer.max(1));
        let local = IpListenEndpoint { addr: None, port };
        let result = socket.connect(
            self.core.iface.context(),
            IpEndpoint::new(remote.ip().into(), remote.port()),
            local,
        );
        if let Err(e) = result {
            self.core.ports.release(Transport::Tcp, port);
            return Err(StackError::TcpConnect(e));
        }
        let h = self.core.sockets.add(socket);
        self.core
            .owned
            .insert(h, Owned { kind: SocketKind::Tcp, port: Some((Transport::Tcp, port)) });
        Ok(TcpHandle(h))
    }

    /// The smoltcp socket behind `h`.
    pub fn tcp(&mut self, h: TcpHandle) -> Option<&mut tcp::Socket<'static>> {
        if !self.core.is(h.0, SocketKind::Tcp) {
            return None;
        }
        Some(self.core.sockets.get_mut::<tcp::Socket>(h.0))
    }

    /// The TCP state of `h` (`Closed` for a socket that no longer exists).
    pub fn tcp_state(&mut self, h: TcpHandle) -> tcp::State {
        self.tcp(h).map_or(tcp::State::Closed, |s| s.state())
    }

    /// Queues as much of `data` as fits in the send buffer; returns how much was taken.
    pub fn tcp_send(&mut self, h: TcpHandle, data: &[u8]) -> Result<usize, StackError> {
        let s = self.tcp(h).ok_or(StackError::NoSuchSocket)?;
        if !s.may_send() {
            return Ok(0);
        }
        s.send_slice(data).map_err(StackError::TcpSend)
    }

    /// Appends everything received so far to `buf`; returns how many bytes were appended.
    pub fn tcp_recv(&mut self, h: TcpHandle, buf: &mut Vec<u8>) -> Result<usize, StackError> {
        let s = self.tcp(h).ok_or(StackError::NoSuchSocket)?;
        let mut total = 0;
        while s.can_recv() {
            let n = s
                .recv(|chunk| {
                    buf.extend_from_slice(chunk);
                    (chunk.len(), chunk.len())
                })
                .map_err(StackError::TcpRecv)?;
            if n == 0 {
                break;
            }
            total += n;
        }
        Ok(total)
    }

    /// Sends FIN once the queued data is out (half-close); the socket stays readable.
    pub fn tcp_close(&mut self, h: TcpHandle) {
        if let Some(s) = self.tcp(h) {
            s.close();
        }
    }

    /// Hands the socket back to the stack: it is closed gracefully (FIN) and removed once the
    /// connection is over. The handle must not be used afterwards.
    pub fn tcp_release(&mut self, h: TcpHandle) {
        if self.core.is(h.0, SocketKind::Tcp) {
            let s = self.core.sockets.get_mut::<tcp::Socket>(h.0);
            s.close();
            s.set_timeout(Some(smoltcp::time::Duration::from_secs(60)));
            self.core.orphans.push(h.0);
        }
    }

    /// Resets the connection (RST) and removes the socket.
    pub fn tcp_abort(&mut self, h: TcpHandle) {
        if self.core.is(h.0, SocketKind::Tcp) {
            self.core.sockets.get_mut::<tcp::Socket>(h.0).abort();
            // The RST goes out with the next egress; the socket is reaped once closed.
            self.core.orphans.push(h.0);
        }
    }

    // ---- UDP ----

    /// Binds a UDP socket to `port` on every address (0: a fresh ephemeral port).
    pub fn udp_bind(&mut self, port: u16) -> Result<UdpHandle, StackError> {
        let (slots, bytes) =
            (self.core.config().datagram_slots, self.core.config().datagram_buffer);
        self.udp_bind_sized(port, slots, bytes)
    }

    /// Like [`AppCx::udp_bind`], queueing `slots` datagrams and `bytes` bytes per direction
    /// instead of the stack's defaults.
    pub fn udp_bind_sized(
        &mut self,
        port: u16,
        slots: usize,
        bytes: usize,
    ) -> Result<UdpHandle, StackError> {
        let port = if port == 0 {
            self.core.ports.allocate(Transport::Udp).ok_or(StackError::PortsExhausted)?
        } else if self.core.ports.is_in_use(Transport::Udp, port) {
            return Err(StackError::PortInUse { port });
        } else {
            self.core.ports.acquire(Transport::Udp, port);
            port
        };
        let mut socket = self.core.new_udp_socket_sized(slots.max(1), bytes.max(1));
        if let Err(e) = socket.bind(port) {
            self.core.ports.release(Transport::Udp, port);
            return Err(StackError::UdpBind(e));
        }
        let h = self.core.sockets.add(socket);
        self.core
            .owned
            .insert(h, Owned { kind: SocketKind::Udp, port: Some((Transport::Udp, port)) });
        Ok(UdpHandle(h))
    }

    /// The smoltcp socket behind `h`.
    pub fn udp(&mut self, h: UdpHandle) -> Option<&mut udp::Socket<'static>> {
        if !self.core.is(h.0, SocketKind::Udp) {
            return None;
        }
        Some(self.core.sockets.get_mut::<udp::Socket>(h.0))
    }

    /// The local port `h` is bound to.
    pub fn udp_local_port(&mut self, h: UdpHandle) -> Option<u16> {
        self.udp(h).map(|s| s.endpoint().port)
    }

    /// Sets the TTL of datagrams `h` sends from now on (`None`: the default, 64).
    pub fn udp_set_hop_limit(&mut self, h: UdpHandle, ttl: Option<u8>) {
        if let Some(s) = self.udp(h) {
            s.set_hop_limit(ttl.filter(|&t| t > 0));
        }
    }

    /// Queues one datagram to `to`.
    pub fn udp_send(
        &mut self,
        h: UdpHandle,
        to: SocketAddr,
        data: &[u8],
    ) -> Result<(), StackError> {
        check_unicast(to.ip())?;
        let s = self.udp(h).ok_or(StackError::NoSuchSocket)?;
        s.send_slice(data, IpEndpoint::new(to.ip().into(), to.port())).map_err(StackError::UdpSend)
    }

    /// Takes the oldest received datagram and its sender.
    pub fn udp_recv(&mut self, h: UdpHandle) -> Option<(Vec<u8>, SocketAddr)> {
        let s = self.udp(h)?;
        let (data, meta) = s.recv().ok()?;
        Some((data.to_vec(), SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port)))
    }

    // ---- ICMP ----

    /// Opens an ICMPv4 socket.
    pub fn icmp_open(&mut self) -> Result<IcmpHandle, StackError> {
        self.open_icmp(false)
    }

    /// Opens an ICMPv6 socket.
    pub fn icmp6_open(&mut self) -> Result<IcmpHandle, StackError> {
        self.open_icmp(true)
    }

    /// Opens an ICMP socket of `dst`'s IP version.
    pub fn icmp_open_for(&mut self, dst: IpAddr) -> Result<IcmpHandle, StackError> {
        self.open_icmp(dst.is_ipv6())
    }

    fn open_icmp(&mut self, v6: bool) -> Result<IcmpHandle, StackError> {
        let socket = self.core.new_icmp_socket(v6);
        let h = self.core.sockets.add(socket);
        let kind = if v6 { SocketKind::Icmp6 } else { SocketKind::Icmp4 };
        self.core.owned.insert(h, Owned { kind, port: None });
        Ok(IcmpHandle(h))
    }

    /// Sends an ICMP echo request with `ttl` (hop limit) to `dst`, which must have the socket's
    /// IP version.
    pub fn icmp_send_echo(
        &mut self,
        h: IcmpHandle,
        dst: IpAddr,
        ident: u16,
        seq: u16,
        data: &[u8],
        ttl: u8,
    ) -> Result<(), StackError> {
        check_unicast(dst)?;
        let wanted = if dst.is_ipv6() { SocketKind::Icmp6 } else { SocketKind::Icmp4 };
        if !self.core.is(h.0, wanted) {
            return Err(StackError::NoSuchSocket);
        }
        let caps = smoltcp::phy::ChecksumCapabilities::default();
        match (dst, self.source_address(dst)) {
            (IpAddr::V4(dst), Some(IpAddr::V4(src))) => {
                let icmp = Icmpv4Repr::EchoRequest { ident, seq_no: seq, data };
                let ip = Ipv4Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Icmp,
                    payload_len: icmp.buffer_len(),
                    hop_limit: ttl,
                };
                let s = self.core.sockets.get_mut::<raw::Socket>(h.0);
                let buf = s
                    .send(ip.buffer_len() + icmp.buffer_len())
                    .map_err(|_| StackError::SendBufferFull)?;
                let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
                ip.emit(&mut packet, &caps);
                icmp.emit(&mut Icmpv4Packet::new_unchecked(packet.payload_mut()), &caps);
            }
            (IpAddr::V6(dst), Some(IpAddr::V6(src))) => {
                let icmp = Icmpv6Repr::EchoRequest { ident, seq_no: seq, data };
                let ip = Ipv6Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Icmpv6,
                    payload_len: icmp.buffer_len(),
                    hop_limit: ttl,
                };
                let s = self.core.sockets.get_mut::<raw::Socket>(h.0);
                let buf = s
                    .send(ip.buffer_len() + icmp.buffer_len())
                    .map_err(|_| StackError::SendBufferFull)?;
                let mut packet = Ipv6Packet::new_unchecked(&mut buf[..]);
                ip.emit(&mut packet);
                let mut icmp_packet = Icmpv6Packet::new_unchecked(packet.payload_mut());
                icmp.emit(&src, &dst, &mut icmp_packet, &caps);
            }
            _ => return Err(StackError::NoSourceAddress(dst)),
        }
        Ok(())
    }

    /// Takes the oldest ICMP message received (malformed ones are skipped).
    pub fn icmp_recv(&mut self, h: IcmpHandle) -> Option<IcmpMessage> {
        let v6 = if self.core.is(h.0, SocketKind::Icmp4) {
            false
        } else if self.core.is(h.0, SocketKind::Icmp6) {
            true
        } else {
            return None;
        };
        let s = self.core.sockets.get_mut::<raw::Socket>(h.0);
        while let Ok(datagram) = s.recv() {
            let parsed = if v6 { parse_icmpv6(datagram) } else { parse_icmpv4(datagram) };
            if parsed.is_some() {
                return parsed;
            }
        }
        None
    }

    // ---- SCTP ----

    /// Serves SCTP `port`: INITs to it are answered with an INIT ACK (see the stack's SCTP
    /// notes in [`SctpState`]). Fails with [`StackError::PortInUse`] if the port is taken.
    pub fn sctp_listen(&mut self, port: u16) -> Result<(), StackError> {
        if port == 0 {
            return Err(StackError::PortZero);
        }
        if self.core.ports.is_in_use(Transport::Sctp, port) {
            return Err(StackError::PortInUse { port });
        }
        self.core.ports.acquire(Transport::Sctp, port);
        self.core.sctp.listen(port);
        Ok(())
    }

    /// Stops serving SCTP `port` (later INITs are answered with ABORT).
    pub fn sctp_unlisten(&mut self, port: u16) {
        if self.core.sctp.unlisten(port) {
            self.core.ports.release(Transport::Sctp, port);
        }
    }

    /// Opens an SCTP association to `remote` from a fresh ephemeral port: sends an INIT.
    pub fn sctp_connect(&mut self, remote: SocketAddr) -> Result<SctpHandle, StackError> {
        check_unicast(remote.ip())?;
        let src =
            self.source_address(remote.ip()).ok_or(StackError::NoSourceAddress(remote.ip()))?;
        let port = self.core.ports.allocate(Transport::Sctp).ok_or(StackError::PortsExhausted)?;
        let core = &mut *self.core;
        Ok(core.sctp.connect(src, port, remote, &mut core.device.tx))
    }

    /// The state of association `h` (`None`: no such association).
    pub fn sctp_state(&self, h: SctpHandle) -> Option<SctpState> {
        self.core.sctp.state(h)
    }

    /// The local port of association `h`.
    pub fn sctp_local_port(&self, h: SctpHandle) -> Option<u16> {
        self.core.sctp.local_port(h)
    }

    /// Closes association `h`: an ABORT goes to a peer that answered, and the port is freed.
    pub fn sctp_close(&mut self, h: SctpHandle) {
        let core = &mut *self.core;
        if let Some(port) = core.sctp.close(h, &mut core.device.tx) {
            core.ports.release(Transport::Sctp, port);
        }
    }

    // ---- any socket ----

    /// Removes a socket at once (TCP: prefer [`AppCx::tcp_release`], which closes gracefully).
    pub fn remove(&mut self, socket: impl Into<SocketHandle>) {
        self.core.release(socket.into());
    }
}

fn check_unicast(ip: IpAddr) -> Result<(), StackError> {
    let ok = match ip {
        IpAddr::V4(a) => !a.is_multicast() && !a.is_unspecified() && a != Ipv4Addr::BROADCAST,
        IpAddr::V6(a) => !a.is_multicast() && !a.is_unspecified(),
    };
    if ok { Ok(()) } else { Err(StackError::NotUnicast(ip)) }
}

/// Parses one IPv4 datagram carrying ICMP into an [`IcmpMessage`].
pub(crate) fn parse_icmpv4(datagram: &[u8]) -> Option<IcmpMessage> {
    if IpVersion::of_packet(datagram).ok()? != IpVersion::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(datagram).ok()?;
    if ip.next_header() != IpProtocol::Icmp {
        return None;
    }
    let payload = ip.payload();
    let icmp = Icmpv4Packet::new_checked(payload).ok()?;
    if !icmp.verify_checksum() {
        return None;
    }
    let kind = match icmp.msg_type() {
        Icmpv4Message::EchoReply => IcmpKind::EchoReply {
            ident: icmp.echo_ident(),
            seq: icmp.echo_seq_no(),
            data: icmp.data().to_vec(),
        },
        Icmpv4Message::EchoRequest => {
            IcmpKind::EchoRequest { ident: icmp.echo_ident(), seq: icmp.echo_seq_no() }
        }
        Icmpv4Message::DstUnreachable => IcmpKind::DestUnreachable {
            code: icmp.msg_code(),
            original: parse_original(icmp.data())?,
        },
        Icmpv4Message::TimeExceeded => {
            IcmpKind::TimeExceeded { code: icmp.msg_code(), original: parse_original(icmp.data())? }
        }
        other => IcmpKind::Other { icmp_type: u8::from(other), code: icmp.msg_code() },
    };
    Some(IcmpMessage {
        from: IpAddr::V4(ip.src_addr()),
        to: IpAddr::V4(ip.dst_addr()),
        ttl: ip.hop_limit(),
        icmp_len: payload.len(),
        kind,
    })
}

/// Reads the quoted IP header and the first 8 bytes after it.
///
/// Lenient on purpose: routers often quote a header whose total length exceeds the quote.
fn parse_original(quoted: &[u8]) -> Option<OriginalDatagram> {
    if quoted.len() < 20 || quoted[0] >> 4 != 4 {
        return None;
    }
    let ip = Ipv4Packet::new_unchecked(quoted);
    let rest = quoted.get(usize::from(ip.header_len()).max(20)..)?;
    let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
    Some(original(src, dst, ip.next_header(), IpProtocol::Icmp, rest))
}

/// Parses one IPv6 datagram carrying ICMPv6 (no extension headers) into an [`IcmpMessage`].
pub(crate) fn parse_icmpv6(datagram: &[u8]) -> Option<IcmpMessage> {
    if IpVersion::of_packet(datagram).ok()? != IpVersion::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new_checked(datagram).ok()?;
    if ip.next_header() != IpProtocol::Icmpv6 {
        return None;
    }
    let payload = ip.payload();
    let icmp = Icmpv6Packet::new_checked(payload).ok()?;
    if !icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()) {
        return None;
    }
    let kind = match icmp.msg_type() {
        Icmpv6Message::EchoReply => IcmpKind::EchoReply {
            ident: icmp.echo_ident(),
            seq: icmp.echo_seq_no(),
            data: icmp.payload().to_vec(),
        },
        Icmpv6Message::EchoRequest => {
            IcmpKind::EchoRequest { ident: icmp.echo_ident(), seq: icmp.echo_seq_no() }
        }
        Icmpv6Message::DstUnreachable => IcmpKind::DestUnreachable {
            code: icmp.msg_code(),
            original: parse_original6(icmp.payload())?,
        },
        Icmpv6Message::TimeExceeded => IcmpKind::TimeExceeded {
            code: icmp.msg_code(),
            original: parse_original6(icmp.payload())?,
        },
        other => IcmpKind::Other { icmp_type: u8::from(other), code: icmp.msg_code() },
    };
    Some(IcmpMessage {
        from: IpAddr::V6(ip.src_addr()),
        to: IpAddr::V6(ip.dst_addr()),
        ttl: ip.hop_limit(),
        icmp_len: payload.len(),
        kind,
    })
}

/// Reads a quoted IPv6 header (without extension headers) and the 8 bytes after it.
fn parse_original6(quoted: &[u8]) -> Option<OriginalDatagram> {
    if quoted.len() < 48 || quoted[0] >> 4 != 6 {
        return None;
    }
    let ip = Ipv6Packet::new_unchecked(quoted);
    let (src, dst) = (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()));
    Some(original(src, dst, ip.next_header(), IpProtocol::Icmpv6, &quoted[40..]))
}

/// The quoted datagram of an ICMP error, from its addresses, its protocol and `rest`, the bytes
/// after its IP header (ports beyond the quote read as 0).
///
/// For a quoted ICMP echo (`icmp` is its version's ICMP protocol) the 8 bytes are type, code,
/// checksum, identifier, sequence: the identifier and sequence stand in for the ports.
fn original(
    src: IpAddr,
    dst: IpAddr,
    protocol: IpProtocol,
    icmp: IpProtocol,
    rest: &[u8],
) -> OriginalDatagram {
    let word = |i: usize| rest.get(i..i + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let (src_port, dst_port) =
        if protocol == icmp { (word(4), word(6)) } else { (word(0), word(2)) };
    OriginalDatagram { src, dst, protocol: u8::from(protocol), src_port, dst_port }
}

impl IcmpMessage {
    /// For an error message: its ICMP type (as numbered in its IP version), code and the
    /// datagram it is about.
    pub fn error(&self) -> Option<(u8, u8, OriginalDatagram)> {
        let v6 = self.from.is_ipv6();
        match self.kind {
            IcmpKind::DestUnreachable { code, original } => {
                Some((if v6 { 1 } else { 3 }, code, original))
            }
            IcmpKind::TimeExceeded { code, original } => {
                Some((if v6 { 3 } else { 11 }, code, original))
            }
            _ => None,
        }
    }

    /// Whether this is a port unreachable (the answer of a host with nothing on a UDP port).
    pub fn is_port_unreachable(&self) -> bool {
        let port_code = if self.from.is_ipv6() { 4 } else { 3 };
        matches!(self.kind, IcmpKind::DestUnreachable { code, .. } if code == port_code)
    }
}

/// Downcasts a boxed application.
pub(crate) fn downcast_ref<T: App>(app: &dyn App) -> Option<&T> {
    (app as &dyn Any).downcast_ref::<T>()
}

/// Downcasts a boxed application mutably.
pub(crate) fn downcast_mut<T: App>(app: &mut dyn App) -> Option<&mut T> {
    (app as &mut dyn Any).downcast_mut::<T>()
}

/// The sockets apps own, with the ports they hold.
pub(crate) type OwnedMap = BTreeMap<SocketHandle, Owned>;

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;

    /// An ICMP error from 10.0.0.254 quoting only the IP header and 8 bytes of a UDP datagram
    /// whose header still claims its full length (RFC 792's minimum quote).
    fn minimal_quote(icmp_type: u8, code: u8) -> Vec<u8> {
        let mut quoted = vec![0u8; 28];
        let orig = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 2, 2),
            next_header: IpProtocol::Udp,
            payload_len: 40,
            hop_limit: 1,
        };
        orig.emit(
            &mut Ipv4Packet::new_unchecked(&mut quoted[..20]),
            &ChecksumCapabilities::default(),
        );
        quoted[20..22].copy_from_slice(&40000u16.to_be_bytes());
        quoted[22..24].copy_from_slice(&33434u16.to_be_bytes());
        let mut icmp = vec![icmp_type, code, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted);
        let mut p = Icmpv4Packet::new_unchecked(&mut icmp[..]);
        p.fill_checksum();
        let ip = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 254),
            dst_addr: Ipv4Addr::new(10, 0, 0, 1),
            next_header: IpProtocol::Icmp,
            payload_len: icmp.len(),
            hop_limit: 64,
        };
        let mut datagram = vec![0u8; 20 + icmp.len()];
        let mut packet = Ipv4Packet::new_unchecked(&mut datagram[..]);
        ip.emit(&mut packet, &ChecksumCapabilities::default());
        packet.payload_mut().copy_from_slice(&icmp);
        datagram
    }

    #[test]
    fn icmp_errors_with_a_minimal_quote_are_understood() {
        let msg = parse_icmpv4(&minimal_quote(11, 0)).unwrap();
        assert_eq!(msg.from, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254)));
        assert_eq!(msg.ttl, 64);
        let IcmpKind::TimeExceeded { code: 0, original } = msg.kind else { panic!("{msg:?}") };
        assert_eq!(original.protocol, 17);
        assert_eq!((original.src_port, original.dst_port), (40000, 33434));
        assert_eq!(original.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)));
        let msg = parse_icmpv4(&minimal_quote(3, 13)).unwrap();
        assert!(matches!(msg.kind, IcmpKind::DestUnreachable { code: 13, .. }));
        // A corrupted checksum or a truncated datagram is ignored.
        let mut bad = minimal_quote(11, 0);
        bad[25] ^= 0xff;
        assert_eq!(parse_icmpv4(&bad), None);
        assert_eq!(parse_icmpv4(&minimal_quote(11, 0)[..30]), None);
    }
}
