//! [`TcpListener`] and [`TcpStream`]: tokio's TCP types over a pod's smoltcp sockets.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use smoltcp::socket::tcp;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::stack::{AppCx, ListenerId, TcpHandle};

use super::icmp::take_icmp_error;
use super::lookup::{ToSocketAddrs, resolve};
use super::runtime::World;
use super::{PodRef, stack_error};

/// How long a connect waits for an answer: Linux sends a SYN and 6 retries
/// (`tcp_syn_retries`), 1 + 2 + 4 + ... + 64 s apart, and gives up after 127 s.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(127);

/// How long an established connection waits for its peer to acknowledge data before it is
/// aborted (about Linux's `tcp_retries2 = 15`).
const DATA_TIMEOUT: Duration = Duration::from_secs(924);

/// The accept queue of a listener (tokio's `TcpListener::bind` asks for 1024).
const BACKLOG: usize = 1024;

fn untrack(w: &World, pod: PodRef, h: TcpHandle) {
    if let Some(p) = w.pods.borrow_mut().get_mut(&pod.ns) {
        p.tcp.remove(&h);
    }
}

fn track(w: &World, pod: PodRef, h: TcpHandle) {
    w.pods.borrow_mut().entry(pod.ns).or_default().tcp.insert(h);
}

fn endpoint(e: smoltcp::wire::IpEndpoint) -> SocketAddr {
    SocketAddr::new(e.addr.into(), e.port)
}

fn smol_duration(d: Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A listening TCP socket of a pod, like `tokio::net::TcpListener`.
#[derive(Debug)]
pub struct TcpListener {
    pod: PodRef,
    id: ListenerId,
    local: SocketAddr,
}

impl TcpListener {
    /// Listens on `addr` (port 0: an ephemeral port) in the current pod. The address must be
    /// unspecified or one of the pod's; a port another listener holds is `AddrInUse`.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let pod = PodRef::current()?;
        let addrs = resolve(addr.to_target()?).await?;
        let mut last = None;
        for addr in addrs {
            match Self::bind_one(pod, addr) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(no_addresses))
    }

    fn bind_one(pod: PodRef, addr: SocketAddr) -> io::Result<TcpListener> {
        let (id, port) = pod.with(|w, cx| {
            check_local(cx, addr)?;
            let port = match addr.port() {
                0 => {
                    let p = cx.core.ports.allocate(crate::stack::ports::Transport::Tcp);
                    let p = p.ok_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable))?;
                    cx.core.ports.release(crate::stack::ports::Transport::Tcp, p);
                    p
                }
                p => p,
            };
            let id = cx.tcp_listen(port, BACKLOG).map_err(stack_error)?;
            w.pods.borrow_mut().entry(pod.ns).or_default().listeners.insert(id);
            Ok((id, port))
        })?;
        pod.kick();
        Ok(TcpListener { pod, id, local: SocketAddr::new(addr.ip(), port) })
    }

    /// Waits for a connection; returns it with the peer's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a connection that completed its handshake.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let pod = self.pod;
        let accepted = pod.with(|w, acx| {
            if let Some(h) = acx.tcp_accept(self.id) {
                let s = acx.tcp(h).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
                s.set_timeout(Some(smol_duration(DATA_TIMEOUT)));
                let local = s.local_endpoint().map(endpoint);
                let peer = s.remote_endpoint().map(endpoint);
                track(w, pod, h);
                return Ok(Some((h, local, peer)));
            }
            register_accept_waker(acx, self.id, cx.waker());
            Ok(None)
        })?;
        match accepted {
            Some((h, Some(local), Some(peer))) => {
                pod.kick();
                Poll::Ready(Ok((TcpStream::new(pod, h, local, peer), peer)))
            }
            Some((h, _, _)) => {
                // Reset between the handshake and now: Linux drops such connections too.
                let _ = pod.with(|w, acx| {
                    acx.tcp_abort(h);
                    untrack(w, pod, h);
                    Ok(())
                });
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => Poll::Pending,
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        if !self.pod.alive() {
            return;
        }
        let (pod, id) = (self.pod, self.id);
        let _ = pod.with(|w, cx| {
            cx.tcp_unlisten(id);
            if let Some(p) = w.pods.borrow_mut().get_mut(&pod.ns) {
                p.listeners.remove(&id);
            }
            Ok(())
        });
        pod.kick();
    }
}

/// Registers `waker` on every socket of the listener that may complete a handshake.
fn register_accept_waker(cx: &mut AppCx<'_>, id: ListenerId, waker: &Waker) {
    let Some(Some(l)) = cx.core.listeners.get(id.0) else { return };
    let handles: Vec<_> = l.spare.iter().chain(l.queue.iter()).copied().collect();
    for h in handles {
        cx.core.sockets.get_mut::<tcp::Socket>(h).register_recv_waker(waker);
    }
}

fn check_local(cx: &mut AppCx<'_>, addr: SocketAddr) -> io::Result<()> {
    let ip = addr.ip();
    if ip.is_unspecified() || ip.is_loopback() || cx.addresses().iter().any(|n| n.addr() == ip) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("cannot assign requested address {ip}"),
        ))
    }
}

fn no_addresses() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any address")
}

struct StreamInner {
    pod: PodRef,
    h: TcpHandle,
    local: SocketAddr,
    peer: SocketAddr,
    write_shut: AtomicBool,
    reset_reported: AtomicBool,
}

/// A TCP connection of a pod, like `tokio::net::TcpStream`.
pub struct TcpStream {
    inner: Arc<StreamInner>,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.inner.local)
            .field("peer", &self.inner.peer)
            .finish()
    }
}

/// Aborts a connection attempt whose future is dropped (a timeout around `connect`).
struct Connecting {
    pod: PodRef,
    h: TcpHandle,
    armed: bool,
}

impl Drop for Connecting {
    fn drop(&mut self) {
        if self.armed && self.pod.alive() {
            let (pod, h) = (self.pod, self.h);
            let _ = pod.with(|w, cx| {
                cx.tcp_abort(h);
                untrack(w, pod, h);
                Ok(())
            });
            pod.kick();
        }
    }
}

impl TcpStream {
    fn new(pod: PodRef, h: TcpHandle, local: SocketAddr, peer: SocketAddr) -> TcpStream {
        TcpStream {
            inner: Arc::new(StreamInner {
                pod,
                h,
                local,
                peer,
                write_shut: AtomicBool::new(false),
                reset_reported: AtomicBool::new(false),
            }),
        }
    }

    /// Opens a connection from the current pod, trying each address `addr` stands for in
    /// turn. `ConnectionRefused` on an RST or ICMP port unreachable, `TimedOut` after
    /// [`CONNECT_TIMEOUT`] without an answer, `HostUnreachable`/`NetworkUnreachable` on
    /// those ICMP errors.
    pub async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let pod = PodRef::current()?;
        let addrs = resolve(addr.to_target()?).await?;
        let mut last = None;
        for addr in addrs {
            match Self::connect_one(pod, addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(no_addresses))
    }

    async fn connect_one(pod: PodRef, addr: SocketAddr) -> io::Result<TcpStream> {
        let (h, started) = pod.with(|w, cx| {
            let h = cx.tcp_connect(addr).map_err(stack_error)?;
            if let Some(s) = cx.tcp(h) {
                s.set_timeout(Some(smol_duration(CONNECT_TIMEOUT)));
            }
            track(w, pod, h);
            Ok((h, cx.now()))
        })?;
        pod.kick();
        let mut guard = Connecting { pod, h, armed: true };
        let local = std::future::poll_fn(|cx| {
            let r = pod.with(|w, acx| {
                let now = acx.now();
                let s = acx.tcp(h).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
                match s.state() {
                    tcp::State::SynSent | tcp::State::SynReceived => {
                        s.register_send_waker(cx.waker());
                        let port = s.local_endpoint().map_or(0, |e| e.port);
                        match take_icmp_error(w, acx, pod.ns, (6, port, addr), cx.waker()) {
                            Some(kind) => Err(io::Error::from(kind)),
                            None => Ok(None),
                        }
                    }
                    tcp::State::Closed | tcp::State::Listen => {
                        if now.saturating_since(started) >= CONNECT_TIMEOUT {
                            Err(io::Error::from(io::ErrorKind::TimedOut))
                        } else {
                            Err(io::Error::from(io::ErrorKind::ConnectionRefused))
                        }
                    }
                    _ => {
                        s.set_timeout(Some(smol_duration(DATA_TIMEOUT)));
                        Ok(s.local_endpoint().map(endpoint))
                    }
                }
            });
            match r {
                Ok(Some(local)) => Poll::Ready(Ok(local)),
                Ok(None) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await?;
        guard.armed = false;
        Ok(TcpStream::new(pod, h, local, addr))
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer)
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let h = self.inner.h;
        self.inner.pod.with(|_, cx| {
            if let Some(s) = cx.tcp(h) {
                s.set_nagle_enabled(!nodelay);
            }
            Ok(())
        })
    }

    /// Whether Nagle's algorithm is off.
    pub fn nodelay(&self) -> io::Result<bool> {
        let h = self.inner.h;
        self.inner.pod.with(|_, cx| Ok(cx.tcp(h).is_some_and(|s| !s.nagle_enabled())))
    }

    /// Splits into a read half and a write half borrowing the stream.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf(&self.inner), WriteHalf(&self.inner))
    }

    /// Splits into owned halves (each may go to its own task). Dropping the write half shuts
    /// the write direction down (FIN), as in tokio.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let inner = self.inner.clone();
        (OwnedReadHalf { inner: self.inner }, OwnedWriteHalf { inner })
    }
}

impl StreamInner {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let h = self.h;
        let r = self.pod.with(|_, acx| {
            let Some(s) = acx.tcp(h) else { return Err(io::ErrorKind::ConnectionReset.into()) };
            if s.can_recv() {
                let half_full = s.recv_queue() * 2 >= s.recv_capacity();
                let n = s.recv_slice(buf.initialize_unfilled()).map_err(io::Error::other)?;
                buf.advance(n);
                return Ok(Some(half_full));
            }
            if s.may_recv() {
                s.register_recv_waker(cx.waker());
                return Ok(None);
            }
            match s.recv_slice(&mut []) {
                Err(tcp::RecvError::Finished) => Ok(Some(false)),
                _ => Err(io::ErrorKind::ConnectionReset.into()),
            }
        });
        match r {
            Ok(Some(window_update)) => {
                if window_update {
                    self.pod.kick();
                }
                Poll::Ready(Ok(()))
            }
            Ok(None) => Poll::Pending,
            Err(e) => {
                self.reset_reported.store(true, Ordering::Relaxed);
                Poll::Ready(Err(e))
            }
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.write_shut.load(Ordering::Relaxed) {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let h = self.h;
        let r = self.pod.with(|_, acx| {
            let Some(s) = acx.tcp(h) else { return Err(io::ErrorKind::BrokenPipe.into()) };
            if s.can_send() {
                return s.send_slice(data).map(Some).map_err(io::Error::other);
            }
            if s.may_send() {
                s.register_send_waker(cx.waker());
                return Ok(None);
            }
            if s.state() == tcp::State::Closed && !self.reset_reported.swap(true, Ordering::Relaxed)
            {
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            Err(io::ErrorKind::BrokenPipe.into())
        });
        match r {
            Ok(Some(n)) => {
                self.pod.kick();
                Poll::Ready(Ok(n))
            }
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn shutdown(&self) -> io::Result<()> {
        if self.write_shut.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        let h = self.h;
        self.pod.with(|_, cx| {
            cx.tcp_close(h);
            Ok(())
        })?;
        self.pod.kick();
        Ok(())
    }
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        if !self.pod.alive() {
            return;
        }
        let (pod, h) = (self.pod, self.h);
        let _ = pod.with(|w, cx| {
            // Like Linux's close(): unread data makes it an RST, otherwise a FIN.
            if cx.tcp(h).is_some_and(|s| s.recv_queue() > 0) {
                cx.tcp_abort(h);
            } else {
                cx.tcp_release(h);
            }
            untrack(w, pod, h);
            Ok(())
        });
        pod.kick();
    }
}

macro_rules! async_io {
    ($ty:ty, read) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.inner().poll_read(cx, buf)
            }
        }
    };
    ($ty:ty, write) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.inner().poll_write(cx, data)
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.inner().shutdown())
            }
        }
    };
}

impl TcpStream {
    fn inner(&self) -> &StreamInner {
        &self.inner
    }
}

async_io!(TcpStream, read);
async_io!(TcpStream, write);

/// The read half of [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a StreamInner);
/// The write half of [`TcpStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a StreamInner);

impl ReadHalf<'_> {
    fn inner(&self) -> &StreamInner {
        self.0
    }
}

impl WriteHalf<'_> {
    fn inner(&self) -> &StreamInner {
        self.0
    }
}

async_io!(ReadHalf<'_>, read);
async_io!(WriteHalf<'_>, write);

/// The owned read half of [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<StreamInner>,
}

/// The owned write half of [`TcpStream::into_split`]; dropping it sends FIN.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<StreamInner>,
}

impl OwnedReadHalf {
    fn inner(&self) -> &StreamInner {
        &self.inner
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer)
    }
}

impl OwnedWriteHalf {
    fn inner(&self) -> &StreamInner {
        &self.inner
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer)
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.inner.pod.alive() {
            let _ = self.inner.shutdown();
        }
    }
}

async_io!(OwnedReadHalf, read);
async_io!(OwnedWriteHalf, write);

impl std::fmt::Debug for StreamInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream").field("local", &self.local).field("peer", &self.peer).finish()
    }
}
