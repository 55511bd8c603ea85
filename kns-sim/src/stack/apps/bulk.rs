//! Bulk transfer, like `iperf`: a [`TcpSource`] pushes a number of bytes to a [`TcpSink`], which
//! discards them and keeps counts; both report the virtual time the transfer took.

use std::net::SocketAddr;
use std::time::Duration;

use super::client::{ConnError, ConnStatus, TcpConn};
use super::echo::listen_once;
use crate::stack::{App, AppCx, AppPoll, ListenerId, StackError, TcpHandle};
use crate::time::Time;

/// A discard server: reads and counts everything sent to its port.
#[derive(Debug)]
pub struct TcpSink {
    port: u16,
    listener: Option<ListenerId>,
    conns: Vec<TcpHandle>,
    bytes: u64,
    first_byte: Option<Time>,
    last_byte: Option<Time>,
    error: Option<StackError>,
    scratch: Vec<u8>,
}

impl TcpSink {
    /// A sink on `port`.
    pub fn new(port: u16) -> TcpSink {
        TcpSink {
            port,
            listener: None,
            conns: Vec::new(),
            bytes: 0,
            first_byte: None,
            last_byte: None,
            error: None,
            scratch: Vec::new(),
        }
    }

    /// Bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// When the first and the last byte arrived.
    pub fn span(&self) -> Option<(Time, Time)> {
        self.first_byte.zip(self.last_byte)
    }

    /// Why the sink could not listen, if it could not.
    pub fn error(&self) -> Option<&StackError> {
        self.error.as_ref()
    }
}

impl App for TcpSink {
    fn stop(&mut self, _now: Time, cx: &mut AppCx<'_>) {
        if let Some(l) = self.listener.take() {
            cx.tcp_unlisten(l);
        }
        for h in self.conns.drain(..) {
            cx.tcp_release(h);
        }
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        let Some(listener) = listen_once(cx, self.port, &mut self.listener, &mut self.error) else {
            return AppPoll::Done;
        };
        while let Some(h) = cx.tcp_accept(listener) {
            self.conns.push(h);
        }
        let mut conns = std::mem::take(&mut self.conns);
        conns.retain(|&h| {
            self.scratch.clear();
            let n = cx.tcp_recv(h, &mut self.scratch).unwrap_or(0);
            if n > 0 {
                self.bytes += n as u64;
                self.first_byte.get_or_insert(now);
                self.last_byte = Some(now);
            }
            let done = cx.tcp(h).is_none_or(|s| !s.may_recv());
            if done {
                cx.tcp_release(h);
            }
            !done
        });
        self.conns = conns;
        AppPoll::Idle
    }
}

/// Sends `total` bytes (a repeating pattern) to a server, then closes and waits for its FIN.
#[derive(Debug)]
pub struct TcpSource {
    conn: TcpConn,
    total: u64,
    sent: u64,
    chunk: Vec<u8>,
    finished_at: Option<Time>,
}

impl TcpSource {
    /// A source sending `total` bytes to `remote`.
    pub fn new(remote: SocketAddr, total: u64) -> TcpSource {
        TcpSource {
            conn: TcpConn::new(remote, Duration::from_secs(10)),
            total,
            sent: 0,
            chunk: (0..16 * 1024).map(|i| (i % 251) as u8).collect(),
            finished_at: None,
        }
    }

    /// Bytes handed to TCP.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The failure, if any.
    pub fn error(&self) -> Option<&ConnError> {
        self.conn.error()
    }

    /// From the start of the connect to the end (virtual time), once finished.
    pub fn duration(&self) -> Option<Duration> {
        Some(self.finished_at? - self.conn.started()?)
    }
}

impl App for TcpSource {
    fn stop(&mut self, now: Time, cx: &mut AppCx<'_>) {
        self.conn.release(cx);
        self.finished_at.get_or_insert(now);
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.finished_at.is_some() {
            return AppPoll::Done;
        }
        match self.conn.poll(now, cx) {
            ConnStatus::Connecting => return AppPoll::Idle,
            ConnStatus::Failed => {
                self.finished_at = Some(now);
                return AppPoll::Done;
            }
            ConnStatus::Open => {}
        }
        let Some(h) = self.conn.handle() else {
            self.finished_at = Some(now);
            return AppPoll::Done;
        };
        while self.sent < self.total {
            let want =
                usize::try_from(self.total - self.sent).unwrap_or(usize::MAX).min(self.chunk.len());
            match cx.tcp_send(h, &self.chunk[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.sent += n as u64,
            }
        }
        if self.sent == self.total {
            self.conn.close(cx);
        }
        let _ = self.conn.poll(now, cx);
        if self.conn.peer_closed() || self.conn.error().is_some() {
            self.conn.release(cx);
            self.finished_at = Some(now);
            return AppPoll::Done;
        }
        AppPoll::Idle
    }
}
