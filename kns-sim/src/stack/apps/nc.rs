//! `nc`: connect to or listen on a TCP or UDP port, send bytes, print what arrives. Messages
//! read like OpenBSD netcat's (`-v` adds the success lines).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::client::{ConnError, ConnStatus, TcpConn};
use crate::stack::{App, AppCx, AppPoll, IcmpHandle, ListenerId, TcpHandle, UdpHandle};
use crate::time::Time;

/// Which way `nc` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NcMode {
    /// `nc HOST PORT`.
    Connect(SocketAddr),
    /// `nc -l PORT`.
    Listen(u16),
}

/// Options of [`Nc`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NcConfig {
    /// Connect or listen.
    pub mode: NcMode,
    /// UDP instead of TCP (`-u`).
    pub udp: bool,
    /// The bytes to send (nc's standard input); a listener sends them to each peer once.
    pub data: Vec<u8>,
    /// A TCP client half-closes (FIN) once `data` is out, like `nc -N` (default true).
    pub shutdown_after_send: bool,
    /// Print the connection messages (`-v`).
    pub verbose: bool,
    /// Give up after this long without progress (`-w`, default 5 s). A TCP listener waits for
    /// its connection forever; a UDP listener runs until the stack is dropped.
    pub wait: Duration,
    /// Keep listening after a TCP peer leaves (`-k`).
    pub keep_listening: bool,
    /// A listener sends every byte (TCP) or datagram (UDP) it receives back to its sender.
    pub echo: bool,
}

impl NcConfig {
    /// `nc [-u] HOST PORT` sending `data`.
    pub fn connect(remote: SocketAddr, udp: bool, data: impl Into<Vec<u8>>) -> NcConfig {
        NcConfig {
            mode: NcMode::Connect(remote),
            udp,
            data: data.into(),
            shutdown_after_send: true,
            verbose: false,
            wait: Duration::from_secs(5),
            keep_listening: false,
            echo: false,
        }
    }

    /// `nc [-u] -l PORT` answering with `data`.
    pub fn listen(port: u16, udp: bool, data: impl Into<Vec<u8>>) -> NcConfig {
        NcConfig {
            mode: NcMode::Listen(port),
            ..NcConfig::connect(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port), udp, data)
        }
    }
}

fn service(port: u16, udp: bool) -> &'static str {
    match (port, udp) {
        (22, false) => "ssh",
        (53, _) => "domain",
        (80, false) => "http",
        (443, false) => "https",
        (8080, false) => "http-alt",
        _ => "*",
    }
}

#[derive(Debug)]
enum State {
    Start,
    TcpConnecting(TcpConn),
    TcpOpen {
        conn: TcpConn,
        sent: usize,
        last_activity: Time,
    },
    TcpListening(ListenerId),
    TcpServing {
        listener: ListenerId,
        handle: TcpHandle,
        sent: usize,
        /// How much of `received` has been echoed back.
        echoed: usize,
    },
    Udp {
        socket: UdpHandle,
        icmp: Option<IcmpHandle>,
        local_port: u16,
        last_activity: Time,
        answered: Vec<SocketAddr>,
    },
    Finished,
}

/// netcat: one TCP or UDP conversation (or a listener).
#[derive(Debug)]
pub struct Nc {
    config: NcConfig,
    state: State,
    received: Vec<u8>,
    messages: String,
    connected: bool,
    error: Option<ConnError>,
    peers: Vec<SocketAddr>,
    finished_at: Option<Time>,
}

impl Nc {
    /// An nc that starts at its first poll.
    pub fn new(config: NcConfig) -> Nc {
        Nc {
            config,
            state: State::Start,
            received: Vec::new(),
            messages: String::new(),
            connected: false,
            error: None,
            peers: Vec::new(),
            finished_at: None,
        }
    }

    /// Everything received (nc's standard output), as bytes.
    pub fn received(&self) -> &[u8] {
        &self.received
    }

    /// nc's standard output as text.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }

    /// nc's messages (standard error): failures, and with `-v` the connection lines.
    pub fn messages(&self) -> &str {
        &self.messages
    }

    /// Whether a connection was established (TCP) or the datagram went out unrefused (UDP).
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// The failure, if any.
    pub fn error(&self) -> Option<&ConnError> {
        self.error.as_ref()
    }

    /// The peers a listener talked to.
    pub fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    /// When nc finished.
    pub fn finished_at(&self) -> Option<Time> {
        self.finished_at
    }

    fn finish(&mut self, now: Time) -> AppPoll {
        self.state = State::Finished;
        self.finished_at = Some(now);
        AppPoll::Done
    }

    fn fail(&mut self, now: Time, message: String) -> AppPoll {
        let _ = writeln!(self.messages, "nc: {message}");
        self.finish(now)
    }

    fn start(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        let c = &self.config;
        match (c.mode, c.udp) {
            (NcMode::Connect(remote), false) => {
                self.state = State::TcpConnecting(TcpConn::new(remote, c.wait));
                self.poll(now, cx)
            }
            (NcMode::Connect(remote), true) => {
                let socket = match cx.udp_bind(0) {
                    Ok(s) => s,
                    Err(e) => return self.fail(now, e.to_string()),
                };
                let icmp = cx.icmp_open_for(remote.ip()).ok();
                let local_port = cx.udp_local_port(socket).unwrap_or(0);
                if let Err(e) = cx.udp_send(socket, remote, &self.config.data) {
                    cx.remove(socket);
                    return self.fail(now, format!("write failed: {e}"));
                }
                self.connected = true;
                if self.config.verbose {
                    let _ = writeln!(
                        self.messages,
                        "Connection to {} {} port [udp/{}] succeeded!",
                        remote.ip(),
                        remote.port(),
                        service(remote.port(), true)
                    );
                }
                self.state = State::Udp {
                    socket,
                    icmp,
                    local_port,
                    last_activity: now,
                    answered: Vec::new(),
                };
                AppPoll::WakeAt(now + self.config.wait)
            }
            (NcMode::Listen(port), false) => {
                match cx.tcp_listen(port, super::echo::DEFAULT_BACKLOG) {
                    Ok(l) => {
                        if c.verbose {
                            let _ = writeln!(self.messages, "Listening on 0.0.0.0 {port}");
                        }
                        self.state = State::TcpListening(l);
                        AppPoll::Idle
                    }
                    Err(e) => self.fail(now, e.to_string()),
                }
            }
            (NcMode::Listen(port), true) => match cx.udp_bind(port) {
                Ok(socket) => {
                    if c.verbose {
                        let _ = writeln!(self.messages, "Bound on 0.0.0.0 {port}");
                    }
                    self.state = State::Udp {
                        socket,
                        icmp: None,
                        local_port: port,
                        last_activity: now,
                        answered: Vec::new(),
                    };
                    AppPoll::Idle
                }
                Err(e) => self.fail(now, e.to_string()),
            },
        }
    }
}

impl App for Nc {
    fn stop(&mut self, now: Time, cx: &mut AppCx<'_>) {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Start | State::Finished => {}
            State::TcpConnecting(mut conn) | State::TcpOpen { mut conn, .. } => conn.release(cx),
            State::TcpListening(l) => cx.tcp_unlisten(l),
            State::TcpServing { listener, handle, .. } => {
                cx.tcp_release(handle);
                cx.tcp_unlisten(listener);
            }
            State::Udp { socket, icmp, .. } => {
                cx.remove(socket);
                if let Some(icmp) = icmp {
                    cx.remove(icmp);
                }
            }
        }
        self.finished_at.get_or_insert(now);
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Finished => AppPoll::Done,
            State::Start => self.start(now, cx),
            State::TcpConnecting(mut conn) => match conn.poll(now, cx) {
                ConnStatus::Connecting => {
                    self.state = State::TcpConnecting(conn);
                    AppPoll::Idle
                }
                ConnStatus::Failed => {
                    let e = conn.error().cloned().unwrap_or(ConnError::TimedOut);
                    let NcMode::Connect(remote) = self.config.mode else {
                        return self.finish(now);
                    };
                    let message = match &e {
                        ConnError::TimedOut => format!(
                            "connect to {} port {} (tcp) timed out: Operation now in progress",
                            remote.ip(),
                            remote.port()
                        ),
                        other => format!(
                            "connect to {} port {} (tcp) failed: {other}",
                            remote.ip(),
                            remote.port()
                        ),
                    };
                    self.error = Some(e);
                    self.fail(now, message)
                }
                ConnStatus::Open => {
                    self.connected = true;
                    if let (true, NcMode::Connect(remote)) = (self.config.verbose, self.config.mode)
                    {
                        let _ = writeln!(
                            self.messages,
                            "Connection to {} {} port [tcp/{}] succeeded!",
                            remote.ip(),
                            remote.port(),
                            service(remote.port(), false)
                        );
                    }
                    self.state = State::TcpOpen { conn, sent: 0, last_activity: now };
                    self.poll(now, cx)
                }
            },
            State::TcpOpen { mut conn, mut sent, mut last_activity } => {
                let Some(h) = conn.handle() else {
                    return self.finish(now);
                };
                if sent < self.config.data.len()
                    && let Ok(n) = cx.tcp_send(h, &self.config.data[sent..])
                {
                    sent += n;
                    if n > 0 {
                        last_activity = now;
                    }
                }
                if sent == self.config.data.len() && self.config.shutdown_after_send {
                    conn.close(cx);
                }
                if cx.tcp_recv(h, &mut self.received).unwrap_or(0) > 0 {
                    last_activity = now;
                }
                let status = conn.poll(now, cx);
                if let Some(e) = conn.error().cloned() {
                    let _ = writeln!(self.messages, "nc: read failed: {e}");
                    self.error = Some(e);
                }
                let idle_end = last_activity + self.config.wait;
                if status == ConnStatus::Failed || conn.peer_closed() || now >= idle_end {
                    conn.release(cx);
                    return self.finish(now);
                }
                self.state = State::TcpOpen { conn, sent, last_activity };
                AppPoll::WakeAt(idle_end)
            }
            State::TcpListening(listener) => {
                let Some(handle) = cx.tcp_accept(listener) else {
                    self.state = State::TcpListening(listener);
                    return AppPoll::Idle;
                };
                self.connected = true;
                let peer = cx
                    .tcp(handle)
                    .and_then(|s| s.remote_endpoint())
                    .map(|e| SocketAddr::new(e.addr.into(), e.port));
                if let Some(peer) = peer {
                    self.peers.push(peer);
                    if self.config.verbose {
                        let _ = writeln!(
                            self.messages,
                            "Connection received on {} {}",
                            peer.ip(),
                            peer.port()
                        );
                    }
                }
                let echoed = self.received.len();
                self.state = State::TcpServing { listener, handle, sent: 0, echoed };
                self.poll(now, cx)
            }
            State::TcpServing { listener, handle, mut sent, mut echoed } => {
                if sent < self.config.data.len()
                    && let Ok(n) = cx.tcp_send(handle, &self.config.data[sent..])
                {
                    sent += n;
                }
                let _ = cx.tcp_recv(handle, &mut self.received);
                if self.config.echo
                    && echoed < self.received.len()
                    && let Ok(n) = cx.tcp_send(handle, &self.received[echoed..])
                {
                    echoed += n;
                }
                let peer_done = cx.tcp(handle).is_none_or(|s| !s.may_recv());
                let echo_done = !self.config.echo || echoed == self.received.len();
                if peer_done && sent == self.config.data.len() && echo_done {
                    cx.tcp_release(handle);
                    if self.config.keep_listening {
                        self.state = State::TcpListening(listener);
                        return self.poll(now, cx);
                    }
                    cx.tcp_unlisten(listener);
                    return self.finish(now);
                }
                self.state = State::TcpServing { listener, handle, sent, echoed };
                AppPoll::Idle
            }
            State::Udp { socket, icmp, local_port, mut last_activity, mut answered } => {
                let listening = matches!(self.config.mode, NcMode::Listen(_));
                while let Some((data, from)) = cx.udp_recv(socket) {
                    last_activity = now;
                    self.received.extend_from_slice(&data);
                    if listening && self.config.echo {
                        let _ = cx.udp_send(socket, from, &data);
                    }
                    if listening && !answered.contains(&from) {
                        answered.push(from);
                        self.peers.push(from);
                        self.connected = true;
                        if !self.config.data.is_empty() {
                            let _ = cx.udp_send(socket, from, &self.config.data);
                        }
                    }
                }
                if let (Some(icmp), NcMode::Connect(remote)) = (icmp, self.config.mode) {
                    while let Some(msg) = cx.icmp_recv(icmp) {
                        if let Some((_, _, original)) = msg.error()
                            && msg.is_port_unreachable()
                            && original.protocol == 17
                            && original.src_port == local_port
                            && original.dst == remote.ip()
                        {
                            self.connected = false;
                            self.error = Some(ConnError::Refused);
                            let _ = writeln!(self.messages, "nc: read failed: Connection refused");
                        }
                    }
                }
                let idle_end = last_activity + self.config.wait;
                if !listening && (self.error.is_some() || now >= idle_end) {
                    cx.remove(socket);
                    if let Some(icmp) = icmp {
                        cx.remove(icmp);
                    }
                    return self.finish(now);
                }
                self.state = State::Udp { socket, icmp, local_port, last_activity, answered };
                if listening { AppPoll::Idle } else { AppPoll::WakeAt(idle_end) }
            }
        }
    }
}
