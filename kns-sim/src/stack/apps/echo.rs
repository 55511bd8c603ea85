//! Echo servers: TCP (every connection gets its bytes back) and UDP (every datagram goes back
//! to its sender).

use crate::stack::{App, AppCx, AppPoll, ListenerId, StackError, TcpHandle, UdpHandle};
use crate::time::Time;

/// How many handshakes a server's accept queue holds.
pub const DEFAULT_BACKLOG: usize = 128;

/// A TCP server's listener, opened on `port` at the first poll that finds `listener` empty.
///
/// Returns `None` when listening fails, with the reason kept in `error`; the server is then done.
pub(super) fn listen_once(
    cx: &mut AppCx<'_>,
    port: u16,
    listener: &mut Option<ListenerId>,
    error: &mut Option<StackError>,
) -> Option<ListenerId> {
    if listener.is_none() {
        match cx.tcp_listen(port, DEFAULT_BACKLOG) {
            Ok(l) => *listener = Some(l),
            Err(e) => *error = Some(e),
        }
    }
    *listener
}

/// A TCP echo server on one port. It runs until the stack is dropped.
#[derive(Debug)]
pub struct TcpEcho {
    port: u16,
    listener: Option<ListenerId>,
    conns: Vec<(TcpHandle, Vec<u8>)>,
    accepted: u64,
    bytes: u64,
    error: Option<StackError>,
}

impl TcpEcho {
    /// An echo server for `port`, listening from its first poll.
    pub fn new(port: u16) -> TcpEcho {
        TcpEcho { port, listener: None, conns: Vec::new(), accepted: 0, bytes: 0, error: None }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Bytes echoed so far.
    pub fn bytes_echoed(&self) -> u64 {
        self.bytes
    }

    /// Connections still open.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Why the server could not listen, if it could not.
    pub fn error(&self) -> Option<&StackError> {
        self.error.as_ref()
    }
}

impl App for TcpEcho {
    fn stop(&mut self, _now: Time, cx: &mut AppCx<'_>) {
        if let Some(l) = self.listener.take() {
            cx.tcp_unlisten(l);
        }
        for (h, _) in self.conns.drain(..) {
            cx.tcp_release(h);
        }
    }

    fn poll(&mut self, _now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        let Some(listener) = listen_once(cx, self.port, &mut self.listener, &mut self.error) else {
            return AppPoll::Done;
        };
        while let Some(h) = cx.tcp_accept(listener) {
            self.accepted += 1;
            self.conns.push((h, Vec::new()));
        }
        let mut i = 0;
        while i < self.conns.len() {
            let (h, pending) = &mut self.conns[i];
            let h = *h;
            let _ = cx.tcp_recv(h, pending);
            if !pending.is_empty()
                && let Ok(n) = cx.tcp_send(h, pending)
            {
                pending.drain(..n);
                self.bytes += n as u64;
            }
            let peer_done = cx.tcp(h).is_none_or(|s| !s.may_recv());
            if peer_done && self.conns[i].1.is_empty() {
                cx.tcp_release(h);
                self.conns.swap_remove(i);
            } else {
                i += 1;
            }
        }
        AppPoll::Idle
    }
}

/// A UDP echo server on one port. It runs until the stack is dropped.
#[derive(Debug)]
pub struct UdpEcho {
    port: u16,
    socket: Option<UdpHandle>,
    datagrams: u64,
    bytes: u64,
    error: Option<StackError>,
}

impl UdpEcho {
    /// An echo server for `port`, bound from its first poll.
    pub fn new(port: u16) -> UdpEcho {
        UdpEcho { port, socket: None, datagrams: 0, bytes: 0, error: None }
    }

    /// Datagrams echoed so far.
    pub fn datagrams(&self) -> u64 {
        self.datagrams
    }

    /// Bytes echoed so far.
    pub fn bytes_echoed(&self) -> u64 {
        self.bytes
    }

    /// Why the server could not bind, if it could not.
    pub fn error(&self) -> Option<&StackError> {
        self.error.as_ref()
    }
}

impl App for UdpEcho {
    fn stop(&mut self, _now: Time, cx: &mut AppCx<'_>) {
        if let Some(s) = self.socket.take() {
            cx.remove(s);
        }
    }

    fn poll(&mut self, _now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        let socket = match self.socket {
            Some(s) => s,
            None => match cx.udp_bind(self.port) {
                Ok(s) => {
                    self.socket = Some(s);
                    s
                }
                Err(e) => {
                    self.error = Some(e);
                    return AppPoll::Done;
                }
            },
        };
        while let Some((data, from)) = cx.udp_recv(socket) {
            if cx.udp_send(socket, from, &data).is_ok() {
                self.datagrams += 1;
                self.bytes += data.len() as u64;
            }
        }
        AppPoll::Idle
    }
}
