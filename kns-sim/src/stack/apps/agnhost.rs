//! [`AgnhostServer`]: the built-in server for a pod's declared container ports, in the manner
//! of the agnhost `serve-hostname` and `porter` images the upstream conformance tests run.
//!
//! - **TCP**: accepts any number of concurrent connections on every port. A connection whose
//!   first line is an HTTP request line gets HTTP/1.1 answers: `200 OK`, `text/plain`, the pod's
//!   name as the body with its Content-Length, keep-alive unless the client asks to close (or
//!   speaks HTTP/1.0 without keep-alive); `HEAD` gets the head only. Any other connection gets
//!   the pod's name and a FIN: at once when the client sends a non-HTTP line or half-closes (as
//!   `nc -N` or a [`ConnectProbe`](super::ConnectProbe) does), or after
//!   [`AgnhostConfig::greeting_after`] of silence.
//!   As agnhost's `netexec`, the paths `/hostname` and `/clientip` (the client's `IP:port` as
//!   the server sees it, after any NAT) are understood; `/env` lists the environment the
//!   container started with ([`AgnhostConfig::env`], `NAME=value` lines; a kns addition, as
//!   `netexec` reaches it only through `/shell?cmd=env`). Other paths answer the name.
//! - **UDP**: a `clientip` datagram is answered with the sender's `IP:port` (netexec's UDP
//!   command); every other datagram with the pod's name.
//! - **SCTP**: an INIT is answered with an INIT ACK by the stack's SCTP layer.
//!
//! Idle cost per port: one listening TCP socket with [`AgnhostConfig::tcp_buffer`]-byte
//! buffers, or one UDP socket with a few small slots, or nothing for SCTP.

use std::time::Duration;

use kns_core::flow::Protocol;

use super::http::{Parse, parse_request};
use crate::stack::{App, AppCx, AppPoll, ListenerId, StackError, TcpHandle, UdpHandle};
use crate::time::Time;

/// Options of an [`AgnhostServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgnhostConfig {
    /// The name it answers with (the pod's name).
    pub name: String,
    /// The ports it serves.
    pub ports: Vec<(u16, Protocol)>,
    /// Receive and send buffer of each TCP socket (default 1 KiB; a request head longer than
    /// this still works, it is just read in several pieces).
    pub tcp_buffer: usize,
    /// Datagrams queued per UDP socket and direction (default 4).
    pub udp_slots: usize,
    /// Payload bytes queued per UDP socket and direction (default 1 KiB).
    pub udp_buffer: usize,
    /// TCP handshakes a port's accept queue holds (default 128).
    pub backlog: usize,
    /// A TCP client that has sent nothing for this long gets the name anyway (default 1 s).
    pub greeting_after: Duration,
    /// The container's environment, reported at `/env` (default empty).
    pub env: std::collections::BTreeMap<String, String>,
}

impl AgnhostConfig {
    /// Serve `ports` as pod `name`, with small buffers.
    pub fn new(name: impl Into<String>, ports: impl IntoIterator<Item = (u16, Protocol)>) -> Self {
        AgnhostConfig {
            name: name.into(),
            ports: ports.into_iter().collect(),
            tcp_buffer: 1024,
            udp_slots: 4,
            udp_buffer: 1024,
            backlog: 128,
            greeting_after: Duration::from_secs(1),
            env: std::collections::BTreeMap::new(),
        }
    }
}

/// How a TCP connection is being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing decisive received yet (since this time).
    Undecided(Time),
    /// HTTP/1.1 requests and responses.
    Http,
    /// The name, then FIN.
    Name,
}

#[derive(Debug)]
struct Conn {
    handle: TcpHandle,
    mode: Mode,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    close_after: bool,
}

/// Counters of an [`AgnhostServer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgnhostStats {
    /// TCP connections accepted.
    pub connections: u64,
    /// HTTP requests answered.
    pub http_requests: u64,
    /// TCP connections answered with the bare name.
    pub name_replies: u64,
    /// UDP datagrams answered.
    pub datagrams: u64,
}

/// Serves a pod's declared ports with its name. It runs until the stack is dropped.
#[derive(Debug)]
pub struct AgnhostServer {
    config: AgnhostConfig,
    started: bool,
    listeners: Vec<ListenerId>,
    udp: Vec<UdpHandle>,
    sctp: Vec<u16>,
    conns: Vec<Conn>,
    errors: Vec<(u16, Protocol, StackError)>,
    stats: AgnhostStats,
}

impl AgnhostServer {
    /// A server that opens its ports at its first poll.
    pub fn new(config: AgnhostConfig) -> AgnhostServer {
        AgnhostServer {
            config,
            started: false,
            listeners: Vec::new(),
            udp: Vec::new(),
            sctp: Vec::new(),
            conns: Vec::new(),
            errors: Vec::new(),
            stats: AgnhostStats::default(),
        }
    }

    /// Serve `ports` as pod `name` with the default sizes.
    pub fn for_pod(
        name: impl Into<String>,
        ports: impl IntoIterator<Item = (u16, Protocol)>,
    ) -> Self {
        AgnhostServer::new(AgnhostConfig::new(name, ports))
    }

    /// The name it answers with.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Ports that could not be opened (in use by another app of the stack, i.e. another
    /// container of the pod, or port 0), with the reason.
    pub fn errors(&self) -> &[(u16, Protocol, StackError)] {
        &self.errors
    }

    /// Whether it has opened its ports (at its first poll).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Its counters.
    pub fn stats(&self) -> AgnhostStats {
        self.stats
    }

    /// TCP connections still open.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    fn open_ports(&mut self, cx: &mut AppCx<'_>) {
        self.started = true;
        let c = &self.config;
        for &(port, proto) in &c.ports {
            let result = match proto {
                Protocol::Tcp => cx
                    .tcp_listen_sized(port, c.backlog, c.tcp_buffer)
                    .map(|l| self.listeners.push(l)),
                Protocol::Udp => {
                    if port == 0 {
                        Err(StackError::PortZero)
                    } else {
                        cx.udp_bind_sized(port, c.udp_slots, c.udp_buffer).map(|s| self.udp.push(s))
                    }
                }
                Protocol::Sctp => cx.sctp_listen(port).map(|()| self.sctp.push(port)),
            };
            if let Err(e) = result {
                tracing::debug!(pod = %c.name, port, %proto, error = %e, "agnhost: port not served");
                self.errors.push((port, proto, e));
            }
        }
    }

    /// Decides how to serve a connection from what it sent so far.
    fn decide(&self, conn: &Conn, peer_done: bool, now: Time) -> Mode {
        let Mode::Undecided(since) = conn.mode else { return conn.mode };
        let line_end = conn.inbuf.iter().position(|&b| b == b'\n');
        match line_end {
            Some(end) if looks_like_http(&conn.inbuf[..end]) => Mode::Http,
            Some(_) => Mode::Name,
            None if conn.inbuf.len() >= self.config.tcp_buffer.max(256) => Mode::Name,
            None if peer_done => {
                if !conn.inbuf.is_empty() && looks_like_http(&conn.inbuf) {
                    Mode::Http
                } else {
                    Mode::Name
                }
            }
            None if conn.inbuf.is_empty() && now >= since + self.config.greeting_after => {
                Mode::Name
            }
            None => conn.mode,
        }
    }

    /// Answers every complete request in `conn.inbuf`.
    fn serve_http(&mut self, conn: &mut Conn, peer: Option<std::net::SocketAddr>) {
        while !conn.close_after {
            match parse_request(&conn.inbuf) {
                Parse::Incomplete => return,
                Parse::Bad => {
                    respond(&mut conn.outbuf, 400, b"bad request\n", true, true);
                    conn.close_after = true;
                    conn.inbuf.clear();
                    return;
                }
                Parse::Done(req, used) => {
                    conn.inbuf.drain(..used);
                    let connection = req.header("connection").map(str::to_ascii_lowercase);
                    let close = match req.version.as_str() {
                        "HTTP/1.0" => connection.as_deref() != Some("keep-alive"),
                        _ => connection.as_deref() == Some("close"),
                    };
                    let body = req.method != "HEAD";
                    let text = self.http_body(&req.target, peer);
                    respond(&mut conn.outbuf, 200, text.as_bytes(), body, close);
                    conn.close_after = close;
                    self.stats.http_requests += 1;
                }
            }
        }
    }

    /// What a request for `target` is answered with.
    fn http_body(&self, target: &str, peer: Option<std::net::SocketAddr>) -> String {
        let path = target.split('?').next().unwrap_or(target);
        match (path, peer) {
            ("/clientip", Some(p)) => p.to_string(),
            ("/env", _) => self.config.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect(),
            _ => self.config.name.clone(),
        }
    }

    /// Serves one connection; returns false once it is finished and released.
    fn serve(&mut self, now: Time, cx: &mut AppCx<'_>, conn: &mut Conn) -> bool {
        let _ = cx.tcp_recv(conn.handle, &mut conn.inbuf);
        let peer_done = cx.tcp(conn.handle).is_none_or(|s| !s.may_recv());
        let before = conn.mode;
        conn.mode = self.decide(conn, peer_done, now);
        match conn.mode {
            Mode::Undecided(_) => {}
            Mode::Http => {
                let peer = cx
                    .tcp(conn.handle)
                    .and_then(|s| s.remote_endpoint())
                    .map(|e| std::net::SocketAddr::new(e.addr.into(), e.port));
                self.serve_http(conn, peer)
            }
            Mode::Name => {
                if before != Mode::Name {
                    conn.outbuf.extend_from_slice(self.config.name.as_bytes());
                    conn.close_after = true;
                    self.stats.name_replies += 1;
                }
                // Whatever else the client says is read and ignored.
                conn.inbuf.clear();
            }
        }
        if !conn.outbuf.is_empty()
            && let Ok(n) = cx.tcp_send(conn.handle, &conn.outbuf)
        {
            conn.outbuf.drain(..n);
        }
        // Reset or timed out: nothing more can be sent.
        let dead = cx.tcp(conn.handle).is_none_or(|s| !s.may_send());
        let finished = dead
            || (conn.outbuf.is_empty()
                && (conn.close_after || (peer_done && conn.mode == Mode::Http)));
        if finished {
            // Sends FIN after the queued bytes; the stack reaps the socket when it is over.
            cx.tcp_release(conn.handle);
        }
        !finished
    }
}

/// Whether a first line reads like `METHOD SP target SP HTTP/x.y`.
fn looks_like_http(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method.iter().all(u8::is_ascii_uppercase)
        && !target.is_empty()
        && version.starts_with(b"HTTP/")
}

/// Appends an HTTP/1.1 response with a `text/plain` body.
fn respond(out: &mut Vec<u8>, status: u16, body: &[u8], with_body: bool, close: bool) {
    let reason = super::reason_phrase(status);
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        body.len()
    );
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    if with_body {
        out.extend_from_slice(body);
    }
}

impl App for AgnhostServer {
    fn stop(&mut self, _now: Time, cx: &mut AppCx<'_>) {
        for l in self.listeners.drain(..) {
            cx.tcp_unlisten(l);
        }
        for s in self.udp.drain(..) {
            cx.remove(s);
        }
        for port in self.sctp.drain(..) {
            cx.sctp_unlisten(port);
        }
        for conn in self.conns.drain(..) {
            cx.tcp_release(conn.handle);
        }
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if !self.started {
            self.open_ports(cx);
        }
        for i in 0..self.listeners.len() {
            while let Some(handle) = cx.tcp_accept(self.listeners[i]) {
                self.stats.connections += 1;
                self.conns.push(Conn {
                    handle,
                    mode: Mode::Undecided(now),
                    inbuf: Vec::new(),
                    outbuf: Vec::new(),
                    close_after: false,
                });
            }
        }
        let mut conns = std::mem::take(&mut self.conns);
        conns.retain_mut(|conn| self.serve(now, cx, conn));
        self.conns = conns;
        for i in 0..self.udp.len() {
            let socket = self.udp[i];
            while let Some((data, from)) = cx.udp_recv(socket) {
                let answer = if data.trim_ascii() == b"clientip" {
                    from.to_string()
                } else {
                    self.config.name.clone()
                };
                if cx.udp_send(socket, from, answer.as_bytes()).is_ok() {
                    self.stats.datagrams += 1;
                }
            }
        }
        let wake = self
            .conns
            .iter()
            .filter_map(|c| match c.mode {
                Mode::Undecided(since) => Some(since + self.config.greeting_after),
                _ => None,
            })
            .min();
        wake.map_or(AppPoll::Idle, AppPoll::WakeAt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_request_lines_are_recognised() {
        assert!(looks_like_http(b"GET / HTTP/1.1\r"));
        assert!(looks_like_http(b"HEAD /x HTTP/1.0"));
        assert!(!looks_like_http(b"hostname"));
        assert!(!looks_like_http(b"get / HTTP/1.1"));
        assert!(!looks_like_http(b"GET /"));
    }

    #[test]
    fn responses_carry_length_and_close() {
        let mut out = Vec::new();
        respond(&mut out, 200, b"pod-a", true, false);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\npod-a"
        );
        out.clear();
        respond(&mut out, 200, b"pod-a", false, true);
        assert!(out.ends_with(b"Content-Length: 5\r\nConnection: close\r\n\r\n"));
    }
}
