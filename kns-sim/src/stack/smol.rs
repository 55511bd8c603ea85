//! [`SmolStack`]: the [`IpStack`] of an endpoint namespace, one smoltcp `Interface` with
//! `Medium::Ip` over an in-memory queue, its own small `SocketSet`, and the applications that
//! use it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use smoltcp::iface::{Config, Interface, PollIngressSingleResult, SocketHandle, SocketSet};
use smoltcp::socket::{raw, tcp, udp};
use smoltcp::wire::{HardwareAddress, IpCidr, IpProtocol, IpVersion, Ipv4Address, Ipv6Address};

use super::IpStack;
use super::app::{self, App, AppCx, AppId, AppPoll, Listener, Owned, OwnedMap, SocketKind};
use super::device::QueueDevice;
use super::ports::{PortAllocator, Transport};
use super::sctp::{self, SctpLayer};
use crate::time::Time;

/// The most addresses a stack holds (`SMOLTCP_IFACE_MAX_ADDR_COUNT` in `.cargo/config.toml`).
pub const MAX_ADDRESSES: usize = 8;

/// Errors of the socket layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    /// More addresses than the stack's fixed table holds.
    #[error("too many addresses: {given} given, a stack holds at most {max}")]
    TooManyAddresses {
        /// How many were given.
        given: usize,
        /// The table size.
        max: usize,
    },
    /// Every ephemeral port (32768-60999) is in use.
    #[error("no free ephemeral port (32768-60999 all in use)")]
    PortsExhausted,
    /// The port is already bound.
    #[error("port {port} already in use")]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// Port 0 is not a port one can listen on.
    #[error("cannot listen on port 0")]
    PortZero,
    /// The stack has no address to send from towards this destination.
    #[error("no source address to reach {0}")]
    NoSourceAddress(IpAddr),
    /// Broadcast, multicast and unspecified destinations are not supported.
    #[error("{0} is not a unicast address")]
    NotUnicast(IpAddr),
    /// The handle names no socket of this stack.
    #[error("no such socket")]
    NoSuchSocket,
    /// The socket's send buffer is full.
    #[error("send buffer full")]
    SendBufferFull,
    /// The feature is not implemented.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// smoltcp refused to connect.
    #[error("TCP connect failed: {0}")]
    TcpConnect(tcp::ConnectError),
    /// smoltcp refused to send.
    #[error("TCP send failed: {0}")]
    TcpSend(tcp::SendError),
    /// smoltcp refused to receive.
    #[error("TCP receive failed: {0}")]
    TcpRecv(tcp::RecvError),
    /// smoltcp refused to bind.
    #[error("UDP bind failed: {0}")]
    UdpBind(udp::BindError),
    /// smoltcp refused to send.
    #[error("UDP send failed: {0}")]
    UdpSend(udp::SendError),
}

/// Sizes and seed of a [`SmolStack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackConfig {
    /// Seeds smoltcp's RNG (TCP initial sequence numbers), the ephemeral port start and ICMP
    /// identifiers. Give every stack its own, derived from the scenario seed.
    pub seed: u64,
    /// The IP MTU in bytes.
    pub mtu: usize,
    /// Receive and send buffer of each TCP socket, in bytes.
    pub tcp_buffer: usize,
    /// Datagrams queued per UDP or ICMP socket and direction.
    pub datagram_slots: usize,
    /// Payload bytes queued per UDP socket and direction.
    pub datagram_buffer: usize,
    /// Bytes queued per ICMP socket and direction (whole datagrams; errors quote up to 576).
    pub icmp_buffer: usize,
}

impl StackConfig {
    /// Defaults with `seed`: MTU 1500, 16 KiB TCP buffers, 16 datagrams and 16 KiB per UDP
    /// socket, 4 KiB per ICMP socket.
    pub fn with_seed(seed: u64) -> StackConfig {
        StackConfig {
            seed,
            mtu: 1500,
            tcp_buffer: 16 * 1024,
            datagram_slots: 16,
            datagram_buffer: 16 * 1024,
            icmp_buffer: 4 * 1024,
        }
    }
}

/// Everything an [`AppCx`] may touch: the interface, device, sockets and port bookkeeping.
pub(crate) struct Core {
    pub(crate) iface: Interface,
    pub(crate) device: QueueDevice,
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) ports: PortAllocator,
    pub(crate) owned: OwnedMap,
    pub(crate) listeners: Vec<Option<Listener>>,
    /// Released TCP sockets, removed once their connection is over.
    pub(crate) orphans: Vec<SocketHandle>,
    /// When each released socket seen in TIME-WAIT may be reaped (its ACK delay later).
    time_wait: BTreeMap<SocketHandle, Time>,
    pub(crate) addresses: Vec<ipnet::IpNet>,
    pub(crate) next_icmp_ident: u16,
    /// The SCTP endpoint (smoltcp has none).
    pub(crate) sctp: SctpLayer,
    config: StackConfig,
}

impl Core {
    /// A TCP socket with `n`-byte receive and send buffers.
    pub(crate) fn new_tcp_socket_sized(&self, n: usize) -> tcp::Socket<'static> {
        tcp::Socket::new(tcp::SocketBuffer::new(vec![0; n]), tcp::SocketBuffer::new(vec![0; n]))
    }

    /// A UDP socket queueing `slots` datagrams and `bytes` bytes per direction.
    pub(crate) fn new_udp_socket_sized(&self, slots: usize, bytes: usize) -> udp::Socket<'static> {
        udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; slots], vec![0; bytes]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; slots], vec![0; bytes]),
        )
    }

    pub(crate) fn new_icmp_socket(&self, v6: bool) -> raw::Socket<'static> {
        let (slots, bytes) = (self.config.datagram_slots, self.config.icmp_buffer);
        let (version, protocol) = if v6 {
            (IpVersion::Ipv6, IpProtocol::Icmpv6)
        } else {
            (IpVersion::Ipv4, IpProtocol::Icmp)
        };
        raw::Socket::new(
            Some(version),
            Some(protocol),
            raw::PacketBuffer::new(vec![raw::PacketMetadata::EMPTY; slots], vec![0; bytes]),
            raw::PacketBuffer::new(vec![raw::PacketMetadata::EMPTY; slots], vec![0; bytes]),
        )
    }

    /// The stack's sizes.
    pub(crate) fn config(&self) -> &StackConfig {
        &self.config
    }

    /// Whether `h` names a live socket of `kind`.
    pub(crate) fn is(&self, h: SocketHandle, kind: SocketKind) -> bool {
        self.owned.get(&h).is_some_and(|o| o.kind == kind)
    }

    /// Removes a socket and frees its port.
    pub(crate) fn release(&mut self, h: SocketHandle) {
        if let Some(owned) = self.owned.remove(&h) {
            self.time_wait.remove(&h);
            self.sockets.remove(h);
            if let Some((proto, port)) = owned.port {
                self.ports.release(proto, port);
            }
        }
    }

    /// Gives `listener` a spare socket in LISTEN if it lacks one and its queue has room.
    pub(crate) fn arm(&mut self, listener: &mut Listener) -> Result<(), super::StackError> {
        if listener.spare.is_some() || listener.queue.len() >= listener.backlog {
            return Ok(());
        }
        let mut socket =
            self.new_tcp_socket_sized(listener.buffer.unwrap_or(self.config.tcp_buffer));
        socket.listen(listener.port).map_err(|_| super::StackError::PortZero)?;
        // A handshake whose peer vanished must not hold a backlog slot forever, nor an
        // accepted connection whose peer stopped acknowledging.
        socket.set_timeout(Some(smoltcp::time::Duration::from_secs(60)));
        let h = self.sockets.add(socket);
        self.ports.acquire(Transport::Tcp, listener.port);
        self.owned.insert(
            h,
            Owned { kind: SocketKind::Tcp, port: Some((Transport::Tcp, listener.port)) },
        );
        listener.spare = Some(h);
        Ok(())
    }

    /// Moves spare sockets that left LISTEN into the queues and re-arms every listener.
    fn rearm_listeners(&mut self) {
        for i in 0..self.listeners.len() {
            let Some(mut l) = self.listeners[i].take() else {
                continue;
            };
            if let Some(h) = l.spare
                && self.sockets.get::<tcp::Socket>(h).state() != tcp::State::Listen
            {
                l.queue.push_back(h);
                l.spare = None;
            }
            // Arming only fails for port 0, which `tcp_listen` refuses.
            let _ = self.arm(&mut l);
            self.listeners[i] = Some(l);
        }
    }

    /// Takes the oldest connection of `l` that completed its handshake.
    pub(crate) fn accept(&mut self, l: &mut Listener) -> Option<SocketHandle> {
        let mut accepted = None;
        let mut kept = std::collections::VecDeque::new();
        while let Some(h) = l.queue.pop_front() {
            let state = self.sockets.get::<tcp::Socket>(h).state();
            match state {
                // Reset during the handshake (back to LISTEN) or timed out: drop it.
                tcp::State::Listen | tcp::State::Closed => self.release(h),
                tcp::State::SynReceived => kept.push_back(h),
                _ if accepted.is_none() => accepted = Some(h),
                _ => kept.push_back(h),
            }
        }
        l.queue = kept;
        let _ = self.arm(l);
        accepted
    }

    /// Removes released sockets whose connection is over. A socket in TIME-WAIT may still owe
    /// its peer the ACK of a FIN that came with data (smoltcp delays such ACKs by the socket's
    /// ACK delay, 10 ms by default); it is kept that long, or the peer would retransmit its
    /// last segment and be reset.
    fn reap_orphans(&mut self, now: Time) {
        let mut i = 0;
        while i < self.orphans.len() {
            let h = self.orphans[i];
            let state =
                self.is(h, SocketKind::Tcp).then(|| self.sockets.get::<tcp::Socket>(h).state());
            let done = match state {
                None | Some(tcp::State::Closed) => true,
                Some(tcp::State::TimeWait) => {
                    let delay = self.sockets.get::<tcp::Socket>(h).ack_delay();
                    match delay {
                        None => true,
                        Some(d) => {
                            let until = *self.time_wait.entry(h).or_insert(
                                now + std::time::Duration::from_micros(d.total_micros()),
                            );
                            now >= until
                        }
                    }
                }
                Some(_) => false,
            };
            if done {
                self.orphans.swap_remove(i);
                self.time_wait.remove(&h);
                self.release(h);
            } else {
                i += 1;
            }
        }
    }

    /// When the next socket in TIME-WAIT may be reaped.
    fn reap_at(&self) -> Option<Time> {
        self.time_wait.values().min().copied()
    }
}

/// One TCP socket of a stack, as `ss` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocketInfo {
    /// The TCP state.
    pub state: tcp::State,
    /// The local endpoint once connected.
    pub local: Option<std::net::SocketAddr>,
    /// The port listened on (listening and accepted sockets) or bound (clients).
    pub listen_port: u16,
    /// The peer once connected.
    pub remote: Option<std::net::SocketAddr>,
}

/// One application slot.
struct AppSlot {
    app: Box<dyn App>,
    poll: AppPoll,
}

/// A smoltcp-based socket layer with applications; implements [`IpStack`].
pub struct SmolStack {
    core: Core,
    apps: Vec<AppSlot>,
    /// Set when something outside a poll (spawn, `app_mut`) needs the stack polled now.
    dirty: bool,
    /// The deadline computed at the end of the last poll (always after `last_poll`).
    deadline: Option<Time>,
    last_poll: Time,
    address_overflow: usize,
}

impl std::fmt::Debug for SmolStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmolStack")
            .field("addresses", &self.core.addresses)
            .field("apps", &self.apps.len())
            .field("sockets", &self.core.owned.len())
            .finish_non_exhaustive()
    }
}

/// A gateway for smoltcp's default routes. With `Medium::Ip` smoltcp never resolves it; the
/// route only makes smoltcp hand every destination to kns's IP layer, which does the routing.
const DEFAULT_GW_V4: Ipv4Address = Ipv4Address::new(192, 0, 0, 8);
const DEFAULT_GW_V6: Ipv6Address = Ipv6Address::new(0x100, 0, 0, 0, 0, 0, 0, 8);

impl SmolStack {
    /// A stack with no address yet, created at `now`.
    pub fn new(config: StackConfig, now: Time) -> SmolStack {
        let mut device = QueueDevice::new(config.mtu);
        let mut iface_config = Config::new(HardwareAddress::Ip);
        iface_config.random_seed = config.seed;
        let mut iface = Interface::new(iface_config, &mut device, now.to_smoltcp());
        // The table holds 4 routes; these two always fit.
        let _ = iface.routes_mut().add_default_ipv4_route(DEFAULT_GW_V4);
        let _ = iface.routes_mut().add_default_ipv6_route(DEFAULT_GW_V6);
        let ident_seed = config.seed.rotate_left(17) ^ 0x6b6e_7369_636d_7000;
        SmolStack {
            core: Core {
                iface,
                device,
                sockets: SocketSet::new(Vec::new()),
                ports: PortAllocator::new(config.seed),
                owned: OwnedMap::new(),
                listeners: Vec::new(),
                orphans: Vec::new(),
                time_wait: BTreeMap::new(),
                addresses: Vec::new(),
                next_icmp_ident: (ident_seed % 65_521) as u16,
                sctp: SctpLayer::new(config.seed),
                config,
            },
            apps: Vec::new(),
            dirty: false,
            deadline: None,
            last_poll: now,
            address_overflow: 0,
        }
    }

    /// A stack with `addrs`, created at `now`.
    pub fn with_addresses(
        config: StackConfig,
        now: Time,
        addrs: &[ipnet::IpNet],
    ) -> Result<SmolStack, StackError> {
        let mut stack = SmolStack::new(config, now);
        stack.try_set_addresses(addrs)?;
        Ok(stack)
    }

    /// Replaces the stack's addresses; fails (changing nothing) beyond [`MAX_ADDRESSES`].
    pub fn try_set_addresses(&mut self, addrs: &[ipnet::IpNet]) -> Result<(), StackError> {
        if addrs.len() > MAX_ADDRESSES {
            return Err(StackError::TooManyAddresses { given: addrs.len(), max: MAX_ADDRESSES });
        }
        self.core.iface.update_ip_addrs(|table| {
            table.clear();
            for net in addrs {
                // Cannot fail: the length was checked against the table size above.
                let _ = table.push(to_cidr(net));
            }
        });
        self.core.addresses = addrs.to_vec();
        self.dirty = true;
        Ok(())
    }

    /// The stack's addresses.
    pub fn addresses(&self) -> &[ipnet::IpNet] {
        &self.core.addresses
    }

    /// How many addresses [`IpStack::set_addresses`] had to leave out (beyond the table size).
    pub fn addresses_left_out(&self) -> usize {
        self.address_overflow
    }

    /// Starts `app`; it is first polled at the stack's next poll.
    pub fn spawn<A: App>(&mut self, app: A) -> AppId {
        self.apps.push(AppSlot { app: Box::new(app), poll: AppPoll::Idle });
        self.dirty = true;
        AppId(self.apps.len() - 1)
    }

    /// The app `id`, if it exists and is a `T`.
    pub fn app<T: App>(&self, id: AppId) -> Option<&T> {
        self.apps.get(id.0).and_then(|s| app::downcast_ref(s.app.as_ref()))
    }

    /// The app `id` mutably (the stack will be polled at once so it can act on changes).
    pub fn app_mut<T: App>(&mut self, id: AppId) -> Option<&mut T> {
        self.dirty = true;
        self.apps.get_mut(id.0).and_then(|s| app::downcast_mut(s.app.as_mut()))
    }

    /// Whether app `id` reported [`AppPoll::Done`].
    pub fn is_done(&self, id: AppId) -> bool {
        self.apps.get(id.0).is_some_and(|s| s.poll == AppPoll::Done)
    }

    /// Whether every app has finished.
    pub fn all_done(&self) -> bool {
        self.apps.iter().all(|s| s.poll == AppPoll::Done)
    }

    /// Stops app `id` (see [`App::stop`]); it is not polled again. Returns false if there is
    /// no such app or it had already finished.
    pub fn stop(&mut self, id: AppId, now: Time) -> bool {
        let Some(slot) = self.apps.get_mut(id.0) else {
            return false;
        };
        if slot.poll == AppPoll::Done {
            return false;
        }
        let mut cx = AppCx { core: &mut self.core, now };
        slot.app.stop(now, &mut cx);
        slot.poll = AppPoll::Done;
        self.dirty = true;
        true
    }

    /// The TCP sockets, like `ss -tan`: state, local and remote endpoints, sorted.
    pub fn tcp_sockets(&self) -> Vec<TcpSocketInfo> {
        let mut list: Vec<TcpSocketInfo> = self
            .core
            .owned
            .iter()
            .filter(|(_, o)| o.kind == SocketKind::Tcp)
            .map(|(&h, _)| {
                let s = self.core.sockets.get::<tcp::Socket>(h);
                let endpoint =
                    |e: smoltcp::wire::IpEndpoint| std::net::SocketAddr::new(e.addr.into(), e.port);
                let listen = s.listen_endpoint();
                TcpSocketInfo {
                    state: s.state(),
                    local: s.local_endpoint().map(endpoint),
                    listen_port: listen.port,
                    remote: s.remote_endpoint().map(endpoint),
                }
            })
            .collect();
        list.sort_by_key(|i| (i.listen_port, i.local, i.remote, i.state.to_string()));
        list
    }

    /// How many sockets the stack holds (open, listening or closing).
    pub fn socket_count(&self) -> usize {
        self.core.owned.len()
    }

    /// Whether a local port is bound or still held by a closing connection.
    pub fn port_in_use(&self, proto: Transport, port: u16) -> bool {
        self.core.ports.is_in_use(proto, port)
    }

    /// Runs `f` with an application context outside any app (e.g. to open a socket by hand).
    pub fn with_cx<R>(&mut self, now: Time, f: impl FnOnce(&mut AppCx<'_>) -> R) -> R {
        self.dirty = true;
        let mut cx = AppCx { core: &mut self.core, now };
        f(&mut cx)
    }

    fn egress(&mut self, now: Time) {
        let ts = now.to_smoltcp();
        let core = &mut self.core;
        // Each round sends at least one packet or reports no change; bounded by the sockets'
        // buffered data, so this terminates.
        while core.iface.poll_egress(ts, &mut core.device, &mut core.sockets)
            != smoltcp::iface::PollResult::None
        {}
    }

    fn run_apps(&mut self, now: Time) {
        for slot in &mut self.apps {
            if slot.poll == AppPoll::Done {
                continue;
            }
            let mut cx = AppCx { core: &mut self.core, now };
            slot.poll = slot.app.poll(now, &mut cx);
        }
    }
}

fn to_cidr(net: &ipnet::IpNet) -> IpCidr {
    IpCidr::new(net.addr().into(), net.prefix_len())
}

impl IpStack for SmolStack {
    fn receive(&mut self, _now: Time, packet: &[u8]) {
        if sctp::is_sctp(packet) {
            self.core.sctp.rx.push(packet.to_vec());
        } else {
            self.core.device.rx.push_back(packet.to_vec());
        }
    }

    fn poll(&mut self, now: Time, out: &mut Vec<Vec<u8>>) {
        let now = now.max(self.last_poll);
        let ts = now.to_smoltcp();
        self.core.iface.poll_maintenance(ts);
        self.core.sctp.process(&mut self.core.device.tx);
        // One packet at a time, so that a listener is re-armed between two SYNs.
        while !self.core.device.rx.is_empty() {
            let core = &mut self.core;
            let result = core.iface.poll_ingress_single(ts, &mut core.device, &mut core.sockets);
            if result == PollIngressSingleResult::SocketStateChanged && !core.listeners.is_empty() {
                core.rearm_listeners();
            }
        }
        self.egress(now);
        self.core.rearm_listeners();
        if !self.apps.is_empty() {
            // Only apps queue data between the two egress passes; without any (async pods
            // drive sockets from outside the poll), the second pass would rescan every socket
            // for nothing.
            self.run_apps(now);
            self.egress(now);
        }
        self.core.reap_orphans(now);
        out.append(&mut self.core.device.tx);

        self.dirty = false;
        self.last_poll = now;
        let iface_at = self.core.iface.poll_at(ts, &self.core.sockets).map(Time::from_smoltcp);
        let apps_at = self
            .apps
            .iter()
            .filter_map(|s| match s.poll {
                AppPoll::WakeAt(t) => Some(t),
                AppPoll::Idle | AppPoll::Done => None,
            })
            .min();
        let step = Time::from_nanos(now.as_nanos() + 1_000);
        let reap_at = self.core.reap_at();
        self.deadline =
            [iface_at, apps_at, reap_at].into_iter().flatten().min().map(|t| t.max(step));
    }

    fn poll_at(&self, now: Time) -> Option<Time> {
        if self.dirty || !self.core.device.rx.is_empty() || !self.core.sctp.rx.is_empty() {
            return Some(now);
        }
        self.deadline
    }

    fn set_addresses(&mut self, addrs: &[ipnet::IpNet]) {
        let kept = addrs.len().min(MAX_ADDRESSES);
        self.address_overflow = addrs.len() - kept;
        if self.address_overflow > 0 {
            tracing::warn!(
                given = addrs.len(),
                kept,
                "smoltcp stack holds at most {MAX_ADDRESSES} addresses; the rest are ignored"
            );
        }
        // Cannot fail: at most MAX_ADDRESSES are passed.
        let _ = self.try_set_addresses(&addrs[..kept]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> ipnet::IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_beyond_the_table_are_refused_or_left_out() {
        let mut stack = SmolStack::new(StackConfig::with_seed(1), Time::ZERO);
        let nine: Vec<_> = (1..=9).map(|i| net(&format!("10.0.0.{i}/24"))).collect();
        assert_eq!(
            stack.try_set_addresses(&nine),
            Err(StackError::TooManyAddresses { given: 9, max: 8 })
        );
        assert!(stack.addresses().is_empty());
        stack.set_addresses(&nine);
        assert_eq!(stack.addresses(), &nine[..8]);
        assert_eq!(stack.addresses_left_out(), 1);
        stack.set_addresses(&nine[..2]);
        assert_eq!(stack.addresses_left_out(), 0);
        assert_eq!(stack.core.iface.ip_addrs().len(), 2);
    }

    #[test]
    fn idle_stack_has_no_deadline_and_a_packet_makes_it_due() {
        let mut stack =
            SmolStack::with_addresses(StackConfig::with_seed(1), Time::ZERO, &[net("10.0.0.1/24")])
                .unwrap();
        assert_eq!(stack.poll_at(Time::ZERO), Some(Time::ZERO), "new addresses: poll once");
        let mut out = Vec::new();
        stack.poll(Time::ZERO, &mut out);
        assert!(out.is_empty());
        assert_eq!(stack.poll_at(Time::from_secs(1)), None);
        stack.receive(Time::from_secs(1), &[0x45]);
        assert_eq!(stack.poll_at(Time::from_secs(1)), Some(Time::from_secs(1)));
        stack.poll(Time::from_secs(1), &mut out);
        assert!(out.is_empty(), "a malformed datagram is ignored");
        assert_eq!(stack.poll_at(Time::from_secs(1)), None);
    }

    #[test]
    fn stale_handles_of_another_kind_are_refused_not_panicking() {
        let mut stack =
            SmolStack::with_addresses(StackConfig::with_seed(3), Time::ZERO, &[net("10.0.0.1/24")])
                .unwrap();
        stack.with_cx(Time::ZERO, |cx| {
            let udp = cx.udp_bind(0).unwrap();
            cx.remove(udp);
            // smoltcp reuses the freed slot for the next socket.
            let tcp = cx.tcp_connect("10.0.0.2:80".parse().unwrap()).unwrap();
            assert_eq!(SocketHandle::from(tcp), SocketHandle::from(udp));
            assert!(cx.udp(udp).is_none());
            assert_eq!(cx.udp_recv(udp), None);
            assert!(cx.udp_send(udp, "10.0.0.2:1".parse().unwrap(), b"x").is_err());
            assert!(cx.tcp(tcp).is_some());
            assert_eq!(
                cx.udp_send(tcp_as_udp(tcp), "224.0.0.1:1".parse().unwrap(), b"x"),
                Err(StackError::NotUnicast("224.0.0.1".parse().unwrap()))
            );
        });
    }

    fn tcp_as_udp(h: super::super::TcpHandle) -> super::super::UdpHandle {
        super::super::UdpHandle(h.0)
    }
}
