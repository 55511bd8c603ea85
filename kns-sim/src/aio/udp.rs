//! [`UdpSocket`]: tokio's UDP socket over a pod's smoltcp socket.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::task::{Context, Poll};

use crate::stack::UdpHandle;

use super::icmp::take_icmp_error;
use super::lookup::{ToSocketAddrs, resolve};
use super::{PodRef, lock, stack_error};

/// A UDP socket of a pod, like `tokio::net::UdpSocket`.
#[derive(Debug)]
pub struct UdpSocket {
    pod: PodRef,
    h: UdpHandle,
    local: SocketAddr,
    peer: Mutex<Option<SocketAddr>>,
}

impl UdpSocket {
    /// Binds to `addr` in the current pod (port 0: an ephemeral port); `AddrInUse` if the port
    /// is taken.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let pod = PodRef::current()?;
        let addrs = resolve(addr.to_target()?).await?;
        let addr = *addrs.first().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let (h, port) = pod.with(|w, cx| {
            let ip = addr.ip();
            if !(ip.is_unspecified()
                || ip.is_loopback()
                || cx.addresses().iter().any(|n| n.addr() == ip))
            {
                return Err(io::Error::from(io::ErrorKind::AddrNotAvailable));
            }
            let h = cx.udp_bind(addr.port()).map_err(stack_error)?;
            let port = cx.udp_local_port(h).unwrap_or(addr.port());
            w.pods.borrow_mut().entry(pod.ns).or_default().udp.insert(h);
            Ok((h, port))
        })?;
        Ok(UdpSocket { pod, h, local: SocketAddr::new(addr.ip(), port), peer: Mutex::new(None) })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// The peer set by [`UdpSocket::connect`].
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        lock(&self.peer).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Sets the default destination of [`UdpSocket::send`] and the only source
    /// [`UdpSocket::recv`] accepts.
    pub async fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let addrs = resolve(addr.to_target()?).await?;
        let addr = *addrs.first().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        *lock(&self.peer) = Some(addr);
        Ok(())
    }

    /// Sends one datagram to `target`; waits while the send queue is full.
    pub async fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], target: A) -> io::Result<usize> {
        let addrs = resolve(target.to_target()?).await?;
        let to = *addrs.first().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        std::future::poll_fn(|cx| self.poll_send_to(cx, buf, to)).await
    }

    /// Sends one datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let to = self.peer_addr()?;
        std::future::poll_fn(|cx| self.poll_send_to(cx, buf, to)).await
    }

    /// Polls sending one datagram to `to`.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        to: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let h = self.h;
        let r = self.pod.with(|_, acx| {
            let s = acx.udp(h).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            if buf.len() > s.payload_send_capacity() {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "message too long"));
            }
            match acx.udp_send(h, to, buf) {
                Ok(()) => Ok(true),
                Err(crate::stack::StackError::UdpSend(
                    smoltcp::socket::udp::SendError::BufferFull,
                )) => {
                    if let Some(s) = acx.udp(h) {
                        s.register_send_waker(cx.waker());
                    }
                    Ok(false)
                }
                Err(e) => Err(stack_error(e)),
            }
        });
        match r {
            Ok(true) => {
                self.pod.kick();
                Poll::Ready(Ok(buf.len()))
            }
            Ok(false) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Receives one datagram (truncated to `buf`) and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_recv_from(cx, buf, None)).await
    }

    /// Receives one datagram from the connected peer (others are discarded). An ICMP port
    /// unreachable about an earlier datagram to the peer is `ConnectionRefused`, as on Linux.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let peer = self.peer_addr()?;
        std::future::poll_fn(|cx| self.poll_recv_from(cx, buf, Some(peer))).await.map(|(n, _)| n)
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        peer: Option<SocketAddr>,
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let (h, pod, local_port) = (self.h, self.pod, self.local.port());
        let r = pod.with(|w, acx| {
            while let Some((data, from)) = acx.udp_recv(h) {
                if peer.is_some_and(|p| p != from) {
                    continue;
                }
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                return Ok(Some((n, from)));
            }
            let s = acx.udp(h).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            s.register_recv_waker(cx.waker());
            if let Some(peer) = peer
                && let Some(kind) =
                    take_icmp_error(w, acx, pod.ns, (17, local_port, peer), cx.waker())
            {
                return Err(io::Error::from(kind));
            }
            Ok(None)
        });
        match r {
            Ok(Some(x)) => Poll::Ready(Ok(x)),
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        if !self.pod.alive() {
            return;
        }
        let (pod, h) = (self.pod, self.h);
        let _ = pod.with(|w, cx| {
            cx.remove(h);
            if let Some(p) = w.pods.borrow_mut().get_mut(&pod.ns) {
                p.udp.remove(&h);
            }
            Ok(())
        });
    }
}
