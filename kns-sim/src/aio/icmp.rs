//! ICMP errors about a pod's connections: one raw ICMPv4 socket per pod (opened when a task
//! first waits for a connection or a connected datagram) catches them, and the waiting socket
//! turns the one about its own flow into the `io::Error` Linux would report.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Waker;

use smoltcp::socket::raw;

use crate::net::NetnsId;
use crate::stack::AppCx;

use super::runtime::{IcmpWaker, World};

/// Flow key of an ICMP error: IP protocol, local port, remote address.
pub(crate) type FlowKey = (u8, u16, SocketAddr);

/// Reads the pod's ICMP errors and takes the one about `key`, if any; otherwise `waker` is
/// woken when the next ICMP message arrives.
pub(crate) fn take_icmp_error(
    w: &World,
    cx: &mut AppCx<'_>,
    pod: NetnsId,
    key: FlowKey,
    waker: &Waker,
) -> Option<ErrorKind> {
    let mut pods = w.pods.borrow_mut();
    let p = pods.entry(pod).or_default();
    let h = match p.icmp {
        Some(h) => h,
        None => {
            let h = cx.icmp_open().ok()?;
            p.icmp = Some(h);
            h
        }
    };
    while let Some(msg) = cx.icmp_recv(h) {
        if let Some((_, code, original)) = msg.error()
            && let Some(kind) = unreachable_kind(&msg.kind, code)
        {
            let remote = SocketAddr::new(original.dst, original.dst_port);
            p.icmp_errors.insert((original.protocol, original.src_port, remote), kind);
        }
    }
    let pod_waker = Waker::from(Arc::new(IcmpWaker { pod, shared: w.shared.clone() }));
    cx.core.sockets.get_mut::<raw::Socket>(h.into()).register_recv_waker(&pod_waker);
    if let Some(kind) = p.icmp_errors.remove(&key) {
        return Some(kind);
    }
    if !p.icmp_waiters.iter().any(|x| x.will_wake(waker)) {
        p.icmp_waiters.push(waker.clone());
    }
    None
}

/// The error Linux reports for an ICMPv4 destination unreachable of `code` (time exceeded
/// and other messages are not errors for a socket).
fn unreachable_kind(kind: &crate::stack::IcmpKind, code: u8) -> Option<ErrorKind> {
    if !matches!(kind, crate::stack::IcmpKind::DestUnreachable { .. }) {
        return None;
    }
    Some(match code {
        // Fragmentation needed adjusts the path MTU; it is not an error for the socket.
        4 => return None,
        0 | 6 | 11 => ErrorKind::NetworkUnreachable,
        3 => ErrorKind::ConnectionRefused,
        _ => ErrorKind::HostUnreachable,
    })
}
