//! TCP and UDP clients: connect (or send), transmit bytes, collect the reply, report failures the
//! way a Linux socket would (refused on RST or ICMP port unreachable, timed out, unreachable).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use smoltcp::socket::tcp::State;

use crate::stack::{App, AppCx, AppPoll, IcmpHandle, StackError, TcpHandle, UdpHandle};
use crate::time::Time;

/// Why a connection or exchange failed, worded like the Linux errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnError {
    /// RST in answer to the SYN, or ICMP port unreachable (`ECONNREFUSED`).
    Refused,
    /// No answer within the timeout (`ETIMEDOUT`).
    TimedOut,
    /// An ICMP destination-unreachable or time-exceeded error from `from` (`EHOSTUNREACH`,
    /// `ENETUNREACH`).
    Unreachable {
        /// The router or host that reported it.
        from: IpAddr,
        /// ICMP type as numbered in the error's IP version (ICMPv4: 3 unreachable, 11 time
        /// exceeded; ICMPv6: 1 unreachable, 3 time exceeded).
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
    /// The peer reset an established connection (`ECONNRESET`).
    Reset,
    /// The local stack refused (no port, no source address, ...).
    Local(StackError),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Refused => f.write_str("Connection refused"),
            ConnError::TimedOut => f.write_str("Connection timed out"),
            ConnError::Unreachable { from, icmp_type, code } => {
                let network = if from.is_ipv6() {
                    *icmp_type == 1 && *code == 0
                } else {
                    *icmp_type == 3 && matches!(code, 0 | 6 | 9 | 11)
                };
                f.write_str(if network { "Network is unreachable" } else { "No route to host" })
            }
            ConnError::Reset => f.write_str("Connection reset by peer"),
            ConnError::Local(e) => write!(f, "{e}"),
        }
    }
}

/// Where a [`TcpConn`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnStatus {
    /// The handshake is in progress.
    Connecting,
    /// Established (data may flow; the peer may have closed its side).
    Open,
    /// Failed; see [`TcpConn::error`].
    Failed,
}

/// An outgoing TCP connection with failure classification, shared by the client apps.
#[derive(Debug)]
pub struct TcpConn {
    remote: SocketAddr,
    connect_timeout: Duration,
    handle: Option<TcpHandle>,
    icmp: Option<IcmpHandle>,
    local_port: Option<u16>,
    started: Option<Time>,
    established_at: Option<Time>,
    peer_closed: bool,
    we_closed: bool,
    error: Option<ConnError>,
}

impl TcpConn {
    /// A connection to `remote` that gives up after `connect_timeout` without an answer.
    pub fn new(remote: SocketAddr, connect_timeout: Duration) -> TcpConn {
        TcpConn {
            remote,
            connect_timeout,
            handle: None,
            icmp: None,
            local_port: None,
            started: None,
            established_at: None,
            peer_closed: false,
            we_closed: false,
            error: None,
        }
    }

    /// The socket, once connecting.
    pub fn handle(&self) -> Option<TcpHandle> {
        self.handle
    }

    /// The local (ephemeral) port.
    pub fn local_port(&self) -> Option<u16> {
        self.local_port
    }

    /// When the connect started.
    pub fn started(&self) -> Option<Time> {
        self.started
    }

    /// When the handshake completed.
    pub fn established_at(&self) -> Option<Time> {
        self.established_at
    }

    /// Whether the peer has sent FIN.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The failure, if any.
    pub fn error(&self) -> Option<&ConnError> {
        self.error.as_ref()
    }

    /// Starts or advances the connection.
    pub fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> ConnStatus {
        if self.error.is_some() {
            return ConnStatus::Failed;
        }
        let h = match self.handle {
            Some(h) => h,
            None => match self.open(now, cx) {
                Ok(h) => h,
                Err(e) => return self.fail(cx, e),
            },
        };
        if self.established_at.is_none()
            && let Some(e) = self.icmp_error(cx)
        {
            if let Some(s) = cx.tcp(h) {
                s.abort();
            }
            return self.fail(cx, e);
        }
        let state = cx.tcp_state(h);
        match state {
            State::SynSent | State::SynReceived | State::Listen => ConnStatus::Connecting,
            State::Closed if self.established_at.is_none() => {
                let deadline = self.started.unwrap_or(now) + self.connect_timeout;
                let e = if now < deadline { ConnError::Refused } else { ConnError::TimedOut };
                self.fail(cx, e)
            }
            State::Closed if !self.peer_closed && !self.we_closed => {
                self.fail(cx, ConnError::Reset)
            }
            _ => {
                if self.established_at.is_none() {
                    self.established_at = Some(now);
                    if let Some(icmp) = self.icmp.take() {
                        cx.remove(icmp);
                    }
                    // The connect timeout no longer applies; a peer silent this long while
                    // data waits for its ACK is given up on (Linux's limit is ~15 minutes).
                    if let Some(s) = cx.tcp(h) {
                        s.set_timeout(Some(smoltcp::time::Duration::from_secs(120)));
                    }
                }
                if matches!(
                    state,
                    State::CloseWait | State::LastAck | State::Closing | State::TimeWait
                ) || (state == State::Closed && self.we_closed)
                {
                    self.peer_closed = true;
                }
                ConnStatus::Open
            }
        }
    }

    /// Half-closes (FIN after the queued data).
    pub fn close(&mut self, cx: &mut AppCx<'_>) {
        if let Some(h) = self.handle {
            self.we_closed = true;
            cx.tcp_close(h);
        }
    }

    /// Gives the socket back to the stack (graceful close) and forgets it.
    pub fn release(&mut self, cx: &mut AppCx<'_>) {
        if let Some(h) = self.handle.take() {
            self.we_closed = true;
            cx.tcp_release(h);
        }
        if let Some(icmp) = self.icmp.take() {
            cx.remove(icmp);
        }
    }

    fn open(&mut self, now: Time, cx: &mut AppCx<'_>) -> Result<TcpHandle, ConnError> {
        self.started = Some(now);
        let h = cx.tcp_connect(self.remote).map_err(ConnError::Local)?;
        if let Some(s) = cx.tcp(h) {
            s.set_timeout(Some(smoltcp::time::Duration::from_micros(
                u64::try_from(self.connect_timeout.as_micros()).unwrap_or(u64::MAX),
            )));
            self.local_port = s.local_endpoint().map(|e| e.port);
        }
        self.handle = Some(h);
        // Watching ICMP is best effort: without it only RST and timeouts are seen.
        self.icmp = cx.icmp_open_for(self.remote.ip()).ok();
        Ok(h)
    }

    fn icmp_error(&mut self, cx: &mut AppCx<'_>) -> Option<ConnError> {
        let icmp = self.icmp?;
        let local_port = self.local_port?;
        while let Some(msg) = cx.icmp_recv(icmp) {
            let Some((icmp_type, code, original)) = msg.error() else {
                continue;
            };
            if original.protocol == 6
                && original.src_port == local_port
                && original.dst == self.remote.ip()
                && original.dst_port == self.remote.port()
            {
                return Some(if msg.is_port_unreachable() {
                    ConnError::Refused
                } else {
                    ConnError::Unreachable { from: msg.from, icmp_type, code }
                });
            }
        }
        None
    }

    fn fail(&mut self, cx: &mut AppCx<'_>, e: ConnError) -> ConnStatus {
        self.error = Some(e);
        if let Some(h) = self.handle.take() {
            cx.remove(h);
        }
        if let Some(icmp) = self.icmp.take() {
            cx.remove(icmp);
        }
        ConnStatus::Failed
    }
}

/// Options of a [`TcpClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpClientConfig {
    /// The server.
    pub remote: SocketAddr,
    /// Bytes to send once connected.
    pub data: Vec<u8>,
    /// Finish once this many bytes came back (`None`: wait for the peer to close).
    pub expect: Option<usize>,
    /// Send FIN once `data` is out (like `nc -N`).
    pub half_close: bool,
    /// Give up connecting after this long (default 10 s).
    pub connect_timeout: Duration,
    /// Give up waiting for the reply this long after connecting (default 10 s, `nc -w`).
    pub wait: Duration,
}

impl TcpClientConfig {
    /// Send `data` to `remote`, half-close, and read until the server closes.
    pub fn new(remote: SocketAddr, data: impl Into<Vec<u8>>) -> TcpClientConfig {
        TcpClientConfig {
            remote,
            data: data.into(),
            expect: None,
            half_close: true,
            connect_timeout: Duration::from_secs(10),
            wait: Duration::from_secs(10),
        }
    }
}

/// Connects, sends bytes, collects the reply.
#[derive(Debug)]
pub struct TcpClient {
    config: TcpClientConfig,
    conn: TcpConn,
    sent: usize,
    received: Vec<u8>,
    finished_at: Option<Time>,
}

impl TcpClient {
    /// A client that starts at its first poll.
    pub fn new(config: TcpClientConfig) -> TcpClient {
        let conn = TcpConn::new(config.remote, config.connect_timeout);
        TcpClient { config, conn, sent: 0, received: Vec::new(), finished_at: None }
    }

    /// Whether the handshake completed.
    pub fn established(&self) -> bool {
        self.conn.established_at().is_some()
    }

    /// The connection (timing, local port, error).
    pub fn conn(&self) -> &TcpConn {
        &self.conn
    }

    /// Why it failed, if it did.
    pub fn error(&self) -> Option<&ConnError> {
        self.conn.error()
    }

    /// Bytes sent.
    pub fn sent(&self) -> usize {
        self.sent
    }

    /// Bytes received.
    pub fn received(&self) -> &[u8] {
        &self.received
    }

    /// When the client finished.
    pub fn finished_at(&self) -> Option<Time> {
        self.finished_at
    }

    fn finish(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        self.conn.release(cx);
        self.finished_at = Some(now);
        AppPoll::Done
    }
}

impl App for TcpClient {
    fn stop(&mut self, now: Time, cx: &mut AppCx<'_>) {
        if self.finished_at.is_none() {
            self.finish(now, cx);
        }
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.finished_at.is_some() {
            return AppPoll::Done;
        }
        match self.conn.poll(now, cx) {
            ConnStatus::Failed => return self.finish(now, cx),
            ConnStatus::Connecting => return AppPoll::Idle,
            ConnStatus::Open => {}
        }
        let Some(h) = self.conn.handle() else {
            return self.finish(now, cx);
        };
        if self.sent < self.config.data.len()
            && let Ok(n) = cx.tcp_send(h, &self.config.data[self.sent..])
        {
            self.sent += n;
        }
        if self.sent == self.config.data.len() && self.config.half_close {
            self.conn.close(cx);
        }
        let _ = cx.tcp_recv(h, &mut self.received);
        // Re-read the state: the receive may have drained the last bytes before a FIN.
        let _ = self.conn.poll(now, cx);
        let enough = self.config.expect.is_some_and(|n| self.received.len() >= n);
        let deadline = self.conn.established_at().unwrap_or(now) + self.config.wait;
        if enough || self.conn.peer_closed() || self.conn.error().is_some() || now >= deadline {
            return self.finish(now, cx);
        }
        AppPoll::WakeAt(deadline)
    }
}

/// Options of a [`UdpClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpClientConfig {
    /// The server.
    pub remote: SocketAddr,
    /// The datagram to send.
    pub data: Vec<u8>,
    /// Finish after this many replies (default 1).
    pub replies: usize,
    /// Give up this long after sending (default 5 s).
    pub wait: Duration,
}

impl UdpClientConfig {
    /// Send one datagram and wait up to 5 s for one reply.
    pub fn new(remote: SocketAddr, data: impl Into<Vec<u8>>) -> UdpClientConfig {
        UdpClientConfig { remote, data: data.into(), replies: 1, wait: Duration::from_secs(5) }
    }
}

/// Sends a datagram from an ephemeral port and collects the replies.
#[derive(Debug)]
pub struct UdpClient {
    config: UdpClientConfig,
    socket: Option<UdpHandle>,
    icmp: Option<IcmpHandle>,
    local_port: Option<u16>,
    sent_at: Option<Time>,
    replies: Vec<(Time, Vec<u8>)>,
    error: Option<ConnError>,
    finished_at: Option<Time>,
}

impl UdpClient {
    /// A client that sends at its first poll.
    pub fn new(config: UdpClientConfig) -> UdpClient {
        UdpClient {
            config,
            socket: None,
            icmp: None,
            local_port: None,
            sent_at: None,
            replies: Vec::new(),
            error: None,
            finished_at: None,
        }
    }

    /// The replies and when they arrived.
    pub fn replies(&self) -> &[(Time, Vec<u8>)] {
        &self.replies
    }

    /// Why it failed, if it did (ICMP port unreachable reads as `Refused`).
    pub fn error(&self) -> Option<&ConnError> {
        self.error.as_ref()
    }

    /// The local port used.
    pub fn local_port(&self) -> Option<u16> {
        self.local_port
    }

    /// When the client finished.
    pub fn finished_at(&self) -> Option<Time> {
        self.finished_at
    }

    fn finish(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if let Some(s) = self.socket.take() {
            cx.remove(s);
        }
        if let Some(s) = self.icmp.take() {
            cx.remove(s);
        }
        self.finished_at = Some(now);
        AppPoll::Done
    }

    fn start(&mut self, now: Time, cx: &mut AppCx<'_>) -> Result<(), StackError> {
        let socket = cx.udp_bind(0)?;
        self.socket = Some(socket);
        self.local_port = cx.udp_local_port(socket);
        self.icmp = cx.icmp_open_for(self.config.remote.ip()).ok();
        cx.udp_send(socket, self.config.remote, &self.config.data)?;
        self.sent_at = Some(now);
        Ok(())
    }
}

impl App for UdpClient {
    fn stop(&mut self, now: Time, cx: &mut AppCx<'_>) {
        if self.finished_at.is_none() {
            self.finish(now, cx);
        }
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.finished_at.is_some() {
            return AppPoll::Done;
        }
        if self.sent_at.is_none()
            && let Err(e) = self.start(now, cx)
        {
            self.error = Some(ConnError::Local(e));
            return self.finish(now, cx);
        }
        let Some(socket) = self.socket else {
            return self.finish(now, cx);
        };
        while let Some((data, from)) = cx.udp_recv(socket) {
            if from == self.config.remote {
                self.replies.push((now, data));
            }
        }
        if let (Some(icmp), Some(port)) = (self.icmp, self.local_port) {
            while let Some(msg) = cx.icmp_recv(icmp) {
                let Some((icmp_type, code, original)) = msg.error() else {
                    continue;
                };
                if original.protocol == 17
                    && original.src_port == port
                    && original.dst == self.config.remote.ip()
                {
                    self.error = Some(if msg.is_port_unreachable() {
                        ConnError::Refused
                    } else {
                        ConnError::Unreachable { from: msg.from, icmp_type, code }
                    });
                }
            }
        }
        let deadline = self.sent_at.unwrap_or(now) + self.config.wait;
        if self.error.is_some() || self.replies.len() >= self.config.replies || now >= deadline {
            return self.finish(now, cx);
        }
        AppPoll::WakeAt(deadline)
    }
}
