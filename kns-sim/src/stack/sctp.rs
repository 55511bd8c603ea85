//! A minimal SCTP endpoint inside a [`SmolStack`](super::SmolStack), since smoltcp has none.
//!
//! It plays the part of Linux's `sctp` module for one namespace: packets of IP protocol 132
//! are taken from the stack's input before smoltcp sees them (smoltcp would answer them with an
//! ICMP protocol unreachable) and handled here; what it sends joins the stack's output.
//!
//! - A port an app listens on ([`AppCx::sctp_listen`](super::AppCx::sctp_listen)) answers an
//!   INIT with an INIT ACK carrying a State Cookie, without keeping state (RFC 9260 §5.1).
//! - A port nobody serves answers an INIT with an ABORT whose verification tag is the INIT's
//!   initiate tag and whose T bit is clear, as Linux does (RFC 9260 §8.4 (3)).
//! - Client associations ([`AppCx::sctp_connect`](super::AppCx::sctp_connect)) send an INIT and
//!   record the INIT ACK or ABORT; closing one that was answered sends an ABORT, as a port
//!   scanner does. The handshake stops at INIT ACK: COOKIE ECHO and data are not modelled, so
//!   every other "out of the blue" packet gets an ABORT with the T bit (RFC 9260 §8.4 (8)),
//!   except ABORT, COOKIE ACK and SHUTDOWN COMPLETE, which are dropped silently.
//!
//! Tags and cookies are derived from the stack's seed, so runs are reproducible. An idle layer
//! holds no buffers: a stack that never sees SCTP pays only for an empty map.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr};

use crate::wire::sctp::{InitParams, PROTOCOL, SctpChunk, SctpPacket, SctpRepr};

/// An SCTP association opened by an app of this stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SctpHandle(pub(crate) u32);

/// Where a client association stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SctpState {
    /// INIT sent, no answer yet (COOKIE-WAIT).
    InitSent,
    /// The peer answered with an INIT ACK: something serves the port.
    InitAcked,
    /// The peer answered with an ABORT: nothing serves the port.
    Aborted,
}

/// Linux's defaults: 10 outbound streams, up to 65535 inbound.
const OUT_STREAMS: u16 = 10;
const IN_STREAMS: u16 = 65535;
/// The receive window advertised (small: nothing is ever received).
const A_RWND: u32 = 65536;
/// The TTL of packets the layer sends (Linux's default).
const TTL: u8 = 64;
/// SHUTDOWN COMPLETE, dropped when out of the blue.
const SHUTDOWN_COMPLETE: u8 = 14;

#[derive(Debug, Clone, Copy)]
struct Assoc {
    local: IpAddr,
    local_port: u16,
    remote: SocketAddr,
    my_tag: u32,
    peer_tag: u32,
    state: SctpState,
}

/// The SCTP state of one stack.
#[derive(Debug, Default)]
pub(crate) struct SctpLayer {
    secret: u64,
    counter: u64,
    listening: BTreeSet<u16>,
    assocs: BTreeMap<SctpHandle, Assoc>,
    next_handle: u32,
    /// Received SCTP datagrams waiting for the next poll.
    pub(crate) rx: Vec<Vec<u8>>,
}

/// A 64-bit mixer (splitmix64's finaliser): tags and cookies from the seed and the flow.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn ip_bits(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64).rotate_left(7)
        }
    }
}

/// Whether `datagram` is an IP packet carrying SCTP (IPv6: directly after the fixed header).
pub(crate) fn is_sctp(datagram: &[u8]) -> bool {
    match datagram.first().map(|b| b >> 4) {
        Some(4) => datagram.len() >= 20 && datagram[9] == PROTOCOL,
        Some(6) => datagram.len() >= 40 && datagram[6] == PROTOCOL,
        _ => false,
    }
}

/// Wraps an SCTP packet in an IP header from `src` to `dst`.
fn ip_wrap(src: IpAddr, dst: IpAddr, sctp: &SctpRepr<'_>) -> Option<Vec<u8>> {
    let len = sctp.buffer_len();
    let caps = ChecksumCapabilities::default();
    let proto = IpProtocol::from(PROTOCOL);
    let (mut buf, at) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let ip = Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header: proto,
                payload_len: len,
                hop_limit: TTL,
            };
            let mut buf = vec![0; ip.buffer_len() + len];
            ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps);
            (buf, ip.buffer_len())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ip = Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: proto,
                payload_len: len,
                hop_limit: TTL,
            };
            let mut buf = vec![0; ip.buffer_len() + len];
            ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
            (buf, ip.buffer_len())
        }
        _ => return None,
    };
    sctp.emit(&mut SctpPacket::new_unchecked(&mut buf[at..]));
    Some(buf)
}

/// The addresses and SCTP bytes of an IP datagram.
fn ip_unwrap(datagram: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    match datagram.first().map(|b| b >> 4) {
        Some(4) => {
            let p = Ipv4Packet::new_checked(datagram).ok()?;
            let (hl, tl) = (usize::from(p.header_len()), usize::from(p.total_len()));
            if p.frag_offset() != 0 || p.more_frags() {
                return None;
            }
            Some((p.src_addr().into(), p.dst_addr().into(), datagram.get(hl..tl)?))
        }
        Some(6) => {
            let p = Ipv6Packet::new_checked(datagram).ok()?;
            let end = 40 + usize::from(p.payload_len());
            Some((p.src_addr().into(), p.dst_addr().into(), datagram.get(40..end)?))
        }
        _ => None,
    }
}

impl SctpLayer {
    /// A layer whose tags and cookies derive from `seed`.
    pub(crate) fn new(seed: u64) -> SctpLayer {
        SctpLayer { secret: mix(seed ^ 0x5c7b_0132_5c7b_0132), ..SctpLayer::default() }
    }

    /// Serves `port` from now on; false if it was already served.
    pub(crate) fn listen(&mut self, port: u16) -> bool {
        self.listening.insert(port)
    }

    /// Stops serving `port`; false if it was not served.
    pub(crate) fn unlisten(&mut self, port: u16) -> bool {
        self.listening.remove(&port)
    }

    /// Opens an association from `local`:`local_port` to `remote`: queues an INIT in `out`.
    pub(crate) fn connect(
        &mut self,
        local: IpAddr,
        local_port: u16,
        remote: SocketAddr,
        out: &mut Vec<Vec<u8>>,
    ) -> SctpHandle {
        self.counter += 1;
        let my_tag = (mix(self.secret ^ self.counter) as u32).max(1);
        let h = SctpHandle(self.next_handle);
        self.next_handle = self.next_handle.wrapping_add(1);
        let init = SctpRepr {
            src_port: local_port,
            dst_port: remote.port(),
            verification_tag: 0,
            chunk: SctpChunk::Init(InitParams {
                initiate_tag: my_tag,
                a_rwnd: A_RWND,
                outbound_streams: OUT_STREAMS,
                inbound_streams: IN_STREAMS,
                initial_tsn: my_tag,
            }),
        };
        out.extend(ip_wrap(local, remote.ip(), &init));
        let assoc =
            Assoc { local, local_port, remote, my_tag, peer_tag: 0, state: SctpState::InitSent };
        self.assocs.insert(h, assoc);
        h
    }

    /// The state of association `h`.
    pub(crate) fn state(&self, h: SctpHandle) -> Option<SctpState> {
        self.assocs.get(&h).map(|a| a.state)
    }

    /// The local port of association `h`.
    pub(crate) fn local_port(&self, h: SctpHandle) -> Option<u16> {
        self.assocs.get(&h).map(|a| a.local_port)
    }

    /// Forgets association `h` (sending an ABORT if the peer answered with an INIT ACK) and
    /// returns its local port.
    pub(crate) fn close(&mut self, h: SctpHandle, out: &mut Vec<Vec<u8>>) -> Option<u16> {
        let a = self.assocs.remove(&h)?;
        if a.state == SctpState::InitAcked {
            let abort = SctpRepr {
                src_port: a.local_port,
                dst_port: a.remote.port(),
                verification_tag: a.peer_tag,
                chunk: SctpChunk::Abort { reflected: false },
            };
            out.extend(ip_wrap(a.local, a.remote.ip(), &abort));
        }
        Some(a.local_port)
    }

    /// Handles every queued datagram; answers go to `out`.
    pub(crate) fn process(&mut self, out: &mut Vec<Vec<u8>>) {
        for datagram in std::mem::take(&mut self.rx) {
            self.handle(&datagram, out);
        }
    }

    fn handle(&mut self, datagram: &[u8], out: &mut Vec<Vec<u8>>) {
        let Some((src, dst, bytes)) = ip_unwrap(datagram) else { return };
        let packet = SctpPacket::new_unchecked(bytes);
        // A bad checksum or a malformed chunk: dropped silently, as RFC 9260 §6.8 asks.
        let Ok(repr) = SctpRepr::parse(&packet) else { return };
        let remote = SocketAddr::new(src, repr.src_port);
        let assoc = self
            .assocs
            .values_mut()
            .find(|a| a.local_port == repr.dst_port && a.remote == remote && a.local == dst);
        if let Some(a) = assoc {
            match repr.chunk {
                SctpChunk::InitAck { params, .. }
                    if a.state == SctpState::InitSent && repr.verification_tag == a.my_tag =>
                {
                    a.peer_tag = params.initiate_tag;
                    a.state = SctpState::InitAcked;
                }
                SctpChunk::Abort { reflected }
                    if (!reflected && repr.verification_tag == a.my_tag)
                        || (reflected
                            && a.peer_tag != 0
                            && repr.verification_tag == a.peer_tag) =>
                {
                    a.state = SctpState::Aborted;
                }
                // Anything else for a known association is ignored (no data is modelled).
                _ => {}
            }
            return;
        }
        let reply = |verification_tag, chunk| SctpRepr {
            src_port: repr.dst_port,
            dst_port: repr.src_port,
            verification_tag,
            chunk,
        };
        let answer = match repr.chunk {
            SctpChunk::Init(init) if repr.verification_tag == 0 => {
                if self.listening.contains(&repr.dst_port) {
                    let flow = ip_bits(src).rotate_left(16)
                        ^ ip_bits(dst)
                        ^ (u64::from(repr.src_port) << 48)
                        ^ (u64::from(repr.dst_port) << 32)
                        ^ u64::from(init.initiate_tag);
                    let tag = (mix(self.secret ^ flow) as u32).max(1);
                    let mac = mix(self.secret.rotate_left(32) ^ flow ^ u64::from(tag));
                    let mut cookie = [0u8; 16];
                    cookie[..8].copy_from_slice(&mac.to_be_bytes());
                    cookie[8..12].copy_from_slice(&tag.to_be_bytes());
                    cookie[12..].copy_from_slice(&init.initiate_tag.to_be_bytes());
                    let params = InitParams {
                        initiate_tag: tag,
                        a_rwnd: A_RWND,
                        outbound_streams: OUT_STREAMS.min(init.inbound_streams),
                        inbound_streams: IN_STREAMS,
                        initial_tsn: tag,
                    };
                    let ack =
                        reply(init.initiate_tag, SctpChunk::InitAck { params, cookie: &cookie });
                    out.extend(ip_wrap(dst, src, &ack));
                    return;
                }
                reply(init.initiate_tag, SctpChunk::Abort { reflected: false })
            }
            SctpChunk::Abort { .. } | SctpChunk::CookieAck => return,
            SctpChunk::Other(SHUTDOWN_COMPLETE) => return,
            // An INIT with a non-zero tag is discarded (RFC 9260 §8.5.1).
            SctpChunk::Init(_) => return,
            _ => reply(repr.verification_tag, SctpChunk::Abort { reflected: true }),
        };
        out.extend(ip_wrap(dst, src, &answer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn parse(datagram: &[u8]) -> (IpAddr, IpAddr, SctpRepr<'_>) {
        let (src, dst, bytes) = ip_unwrap(datagram).unwrap();
        (src, dst, SctpRepr::parse(&SctpPacket::new_unchecked(bytes)).unwrap())
    }

    #[test]
    fn init_is_answered_by_init_ack_when_served_and_abort_when_not() {
        let mut client = SctpLayer::new(1);
        let mut server = SctpLayer::new(2);
        assert!(server.listen(9));
        assert!(!server.listen(9));
        let mut wire = Vec::new();
        let remote = SocketAddr::new(v4("10.0.0.2"), 9);
        let h = client.connect(v4("10.0.0.1"), 40000, remote, &mut wire);
        let (_, _, init) = parse(&wire[0]);
        let SctpChunk::Init(params) = init.chunk else { panic!("{init}") };
        assert_eq!((init.verification_tag, init.dst_port), (0, 9));
        server.rx.append(&mut wire);
        server.process(&mut wire);
        let (src, dst, ack) = parse(&wire[0]);
        assert_eq!((src, dst), (v4("10.0.0.2"), v4("10.0.0.1")));
        assert_eq!(ack.verification_tag, params.initiate_tag);
        assert!(matches!(ack.chunk, SctpChunk::InitAck { cookie, .. } if cookie.len() == 16));
        client.rx.append(&mut wire);
        client.process(&mut wire);
        assert!(wire.is_empty());
        assert_eq!(client.state(h), Some(SctpState::InitAcked));
        // Closing an answered association aborts it; the stateless server ignores the ABORT.
        assert_eq!(client.close(h, &mut wire), Some(40000));
        let (_, _, abort) = parse(&wire[0]);
        assert_eq!(abort.chunk, SctpChunk::Abort { reflected: false });
        server.rx.append(&mut wire);
        server.process(&mut wire);
        assert!(wire.is_empty());

        // Port 10 is not served: ABORT with the initiate tag, T bit clear.
        let h =
            client.connect(v4("10.0.0.1"), 40001, SocketAddr::new(v4("10.0.0.2"), 10), &mut wire);
        let (_, _, init) = parse(&wire[0]);
        let SctpChunk::Init(params) = init.chunk else { panic!() };
        server.rx.append(&mut wire);
        server.process(&mut wire);
        let (_, _, abort) = parse(&wire[0]);
        assert_eq!(abort.verification_tag, params.initiate_tag);
        assert_eq!(abort.chunk, SctpChunk::Abort { reflected: false });
        client.rx.append(&mut wire);
        client.process(&mut wire);
        assert_eq!(client.state(h), Some(SctpState::Aborted));
        assert_eq!(client.close(h, &mut wire), Some(40001));
        assert!(wire.is_empty(), "an aborted association closes silently");
    }

    #[test]
    fn out_of_the_blue_packets() {
        let mut layer = SctpLayer::new(3);
        let mut out = Vec::new();
        let packet = |chunk| {
            let r = SctpRepr { src_port: 5, dst_port: 6, verification_tag: 77, chunk };
            ip_wrap(v4("10.0.0.9"), v4("10.0.0.1"), &r).unwrap()
        };
        for silent in [SctpChunk::Abort { reflected: false }, SctpChunk::CookieAck] {
            layer.rx.push(packet(silent));
        }
        layer.process(&mut out);
        assert!(out.is_empty());
        layer.rx.push(packet(SctpChunk::CookieEcho(b"stale")));
        layer.process(&mut out);
        let (_, dst, abort) = parse(&out[0]);
        assert_eq!(dst, v4("10.0.0.9"));
        assert_eq!(abort.verification_tag, 77);
        assert_eq!(abort.chunk, SctpChunk::Abort { reflected: true });
        // A corrupted packet is dropped.
        let mut bad = packet(SctpChunk::CookieEcho(b"x"));
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        out.clear();
        layer.rx.push(bad);
        layer.process(&mut out);
        assert!(out.is_empty());
        assert!(is_sctp(&packet(SctpChunk::CookieAck)));
        assert!(!is_sctp(&[0x45; 10]));
    }
}
