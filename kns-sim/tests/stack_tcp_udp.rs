//! TCP and UDP applications between stacks wired by a `LoopbackNet`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use kns_sim::Time;
use kns_sim::stack::apps::{
    ConnError, TcpClient, TcpClientConfig, TcpEcho, UdpClient, UdpClientConfig, UdpEcho,
};
use kns_sim::stack::testnet::{Fate, LoopbackNet};
use kns_sim::stack::{SmolStack, StackConfig};
use smoltcp::wire::{Ipv4Packet, TcpPacket};

fn stack(seed: u64, addr: &str) -> SmolStack {
    SmolStack::with_addresses(StackConfig::with_seed(seed), Time::ZERO, &[addr.parse().unwrap()])
        .unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn pair() -> (LoopbackNet, usize, usize) {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.1/24"));
    let b = net.add(stack(2, "10.0.0.2/24"));
    (net, a, b)
}

fn is_syn(bytes: &[u8]) -> bool {
    let ip = Ipv4Packet::new_checked(bytes).unwrap();
    ip.next_header() == smoltcp::wire::IpProtocol::Tcp
        && TcpPacket::new_checked(ip.payload()).is_ok_and(|t| t.syn() && !t.ack())
}

#[test]
fn tcp_echo_round_trip() {
    let (mut net, a, b) = pair();
    let server = net.stack_mut(b).spawn(TcpEcho::new(7));
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let mut cfg = TcpClientConfig::new(sa("10.0.0.2:7"), data.clone());
    cfg.expect = Some(data.len());
    let client = net.stack_mut(a).spawn(TcpClient::new(cfg));
    net.run_while(Time::from_secs(30), |n| n.stack(a).is_done(client)).unwrap();
    let c = net.stack(a).app::<TcpClient>(client).unwrap();
    assert!(c.established(), "{:?}", c.error());
    assert_eq!(c.error(), None);
    assert_eq!(c.sent(), data.len());
    assert_eq!(c.received(), &data[..]);
    let port = c.conn().local_port().unwrap();
    assert!((32768..=60999).contains(&port));
    // Let both sides finish closing; the server forgets the connection and the client's port.
    net.run_until(net.now() + Duration::from_secs(5)).unwrap();
    let s = net.stack(b).app::<TcpEcho>(server).unwrap();
    assert_eq!(s.accepted(), 1);
    assert_eq!(s.bytes_echoed(), data.len() as u64);
    assert_eq!(s.open_connections(), 0);
    assert_eq!(net.stack(b).socket_count(), 1, "only the listening socket is left");
    assert_eq!(net.stack(a).socket_count(), 0);
}

#[test]
fn connection_refused_by_rst_from_a_stack_without_listener() {
    let (mut net, a, _b) = pair();
    net.record();
    let client =
        net.stack_mut(a).spawn(TcpClient::new(TcpClientConfig::new(sa("10.0.0.2:80"), "x")));
    assert!(net.run_until_apps_done(Time::from_secs(30)).unwrap());
    let c = net.stack(a).app::<TcpClient>(client).unwrap();
    assert!(!c.established());
    assert_eq!(c.error(), Some(&ConnError::Refused));
    assert_eq!(c.error().unwrap().to_string(), "Connection refused");
    // SYN out, RST back, within one round trip.
    let rst = net
        .sent()
        .iter()
        .filter(|s| s.from == Some(1))
        .map(|s| {
            let ip = Ipv4Packet::new_checked(&s.bytes[..]).unwrap();
            TcpPacket::new_checked(ip.payload()).unwrap().rst()
        })
        .collect::<Vec<_>>();
    assert_eq!(rst, vec![true]);
    assert_eq!(c.finished_at(), Some(Time::from_micros(100)));
}

#[test]
fn connect_times_out_when_nobody_answers() {
    let (mut net, a, _b) = pair();
    let mut cfg = TcpClientConfig::new(sa("10.0.0.99:80"), "x");
    cfg.connect_timeout = Duration::from_secs(3);
    let client = net.stack_mut(a).spawn(TcpClient::new(cfg));
    assert!(net.run_until_apps_done(Time::from_secs(30)).unwrap());
    let c = net.stack(a).app::<TcpClient>(client).unwrap();
    assert_eq!(c.error(), Some(&ConnError::TimedOut));
    assert_eq!(c.finished_at(), Some(Time::from_secs(3)));
}

#[test]
fn lost_syn_is_retransmitted_and_the_connection_established() {
    let (mut net, a, b) = pair();
    net.record();
    net.stack_mut(b).spawn(TcpEcho::new(7));
    let mut first = true;
    net.set_drop_rule(move |_, bytes| {
        let drop = first && is_syn(bytes);
        first &= !drop;
        drop
    });
    let mut cfg = TcpClientConfig::new(sa("10.0.0.2:7"), "hello");
    cfg.expect = Some(5);
    let client = net.stack_mut(a).spawn(TcpClient::new(cfg));
    net.run_while(Time::from_secs(30), |n| n.stack(a).is_done(client)).unwrap();
    let c = net.stack(a).app::<TcpClient>(client).unwrap();
    assert_eq!(c.error(), None);
    assert_eq!(c.received(), b"hello");
    let syns: Vec<_> = net.sent().iter().filter(|s| is_syn(&s.bytes)).collect();
    assert_eq!(syns.len(), 2);
    assert_eq!(syns[0].fate, Fate::Dropped);
    assert_eq!(syns[1].fate, Fate::Delivered(b));
    // smoltcp's first retransmission timeout is one second.
    assert_eq!(syns[1].at - syns[0].at, Duration::from_secs(1));
    assert!(c.conn().established_at().unwrap() >= Time::from_secs(1));
}

#[test]
fn lost_data_segment_is_retransmitted() {
    let (mut net, a, b) = pair();
    net.stack_mut(b).spawn(TcpEcho::new(7));
    // Lose the third and fourth datagrams the client sends (data after the handshake).
    let mut n = 0;
    net.set_drop_rule(move |from, _| {
        if from == 0 {
            n += 1;
            n == 3 || n == 4
        } else {
            false
        }
    });
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    let mut cfg = TcpClientConfig::new(sa("10.0.0.2:7"), data.clone());
    cfg.expect = Some(data.len());
    let client = net.stack_mut(a).spawn(TcpClient::new(cfg));
    net.run_while(Time::from_secs(60), |n| n.stack(a).is_done(client)).unwrap();
    let c = net.stack(a).app::<TcpClient>(client).unwrap();
    assert_eq!(c.error(), None);
    assert_eq!(c.received(), &data[..]);
    assert_eq!(net.stats().dropped, 2);
}

#[test]
fn udp_echo_and_port_unreachable() {
    let (mut net, a, b) = pair();
    let server = net.stack_mut(b).spawn(UdpEcho::new(5353));
    let ok =
        net.stack_mut(a).spawn(UdpClient::new(UdpClientConfig::new(sa("10.0.0.2:5353"), "ping?")));
    let closed = net
        .stack_mut(a)
        .spawn(UdpClient::new(UdpClientConfig::new(sa("10.0.0.2:9999"), "anyone?")));
    net.run_until(Time::from_secs(10)).unwrap();
    let c = net.stack(a).app::<UdpClient>(ok).unwrap();
    assert_eq!(c.error(), None);
    assert_eq!(c.replies().len(), 1);
    assert_eq!(c.replies()[0].1, b"ping?");
    assert_eq!(c.replies()[0].0, Time::from_micros(100));
    let s = net.stack(b).app::<UdpEcho>(server).unwrap();
    assert_eq!((s.datagrams(), s.bytes_echoed()), (1, 5));
    let r = net.stack(a).app::<UdpClient>(closed).unwrap();
    assert_eq!(r.error(), Some(&ConnError::Refused));
    assert!(r.replies().is_empty());
    assert_eq!(r.finished_at(), Some(Time::from_micros(100)));
}

#[test]
fn icmp_host_unreachable_fails_a_tcp_connect() {
    let (mut net, a, _b) = pair();
    net.set_routers(vec![Ipv4Addr::new(10, 0, 0, 254)]);
    let client =
        net.stack_mut(a).spawn(TcpClient::new(TcpClientConfig::new(sa("10.9.9.9:80"), "x")));
    assert!(net.run_until_apps_done(Time::from_secs(30)).unwrap());
    let c = net.stack(a).app::<TcpClient>(client).unwrap();
    assert_eq!(c.error().unwrap().to_string(), "No route to host");
    assert_eq!(
        c.error(),
        Some(&ConnError::Unreachable {
            from: "10.0.0.254".parse().unwrap(),
            icmp_type: 3,
            code: 1
        })
    );
}

#[test]
fn tcp_and_udp_over_ipv6_on_dual_stack_hosts() {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let addrs = |v4: &str, v6: &str| [v4.parse().unwrap(), v6.parse().unwrap()];
    let a = net.add(
        SmolStack::with_addresses(
            StackConfig::with_seed(1),
            Time::ZERO,
            &addrs("10.0.0.1/24", "fd00::1/64"),
        )
        .unwrap(),
    );
    let b = net.add(
        SmolStack::with_addresses(
            StackConfig::with_seed(2),
            Time::ZERO,
            &addrs("10.0.0.2/24", "fd00::2/64"),
        )
        .unwrap(),
    );
    net.stack_mut(b).spawn(TcpEcho::new(7));
    net.stack_mut(b).spawn(UdpEcho::new(7));
    let mut cfg = TcpClientConfig::new(sa("[fd00::2]:7"), "over v6");
    cfg.expect = Some(7);
    let tcp6 = net.stack_mut(a).spawn(TcpClient::new(cfg));
    let mut cfg = TcpClientConfig::new(sa("10.0.0.2:7"), "over v4");
    cfg.expect = Some(7);
    let tcp4 = net.stack_mut(a).spawn(TcpClient::new(cfg));
    let udp6 =
        net.stack_mut(a).spawn(UdpClient::new(UdpClientConfig::new(sa("[fd00::2]:7"), "dgram v6")));
    assert!(net.run_until_done(Time::from_secs(10), &[(a, tcp6), (a, tcp4), (a, udp6)]).unwrap());
    assert_eq!(net.stack(a).app::<TcpClient>(tcp6).unwrap().received(), b"over v6");
    assert_eq!(net.stack(a).app::<TcpClient>(tcp4).unwrap().received(), b"over v4");
    let u = net.stack(a).app::<UdpClient>(udp6).unwrap();
    assert_eq!(u.replies()[0].1, b"dgram v6");

    // Refusals over IPv6: RST for TCP, ICMPv6 port unreachable for UDP.
    let tcp = net.stack_mut(a).spawn(TcpClient::new(TcpClientConfig::new(sa("[fd00::2]:81"), "x")));
    let udp = net.stack_mut(a).spawn(UdpClient::new(UdpClientConfig::new(sa("[fd00::2]:81"), "x")));
    assert!(
        net.run_until_done(net.now() + Duration::from_secs(10), &[(a, tcp), (a, udp)]).unwrap()
    );
    assert_eq!(net.stack(a).app::<TcpClient>(tcp).unwrap().error(), Some(&ConnError::Refused));
    assert_eq!(net.stack(a).app::<UdpClient>(udp).unwrap().error(), Some(&ConnError::Refused));
}

/// A user-written server that resets every connection once it has read something.
struct Rude {
    listener: Option<kns_sim::stack::ListenerId>,
    conns: Vec<kns_sim::stack::TcpHandle>,
    resets: usize,
}

impl kns_sim::stack::App for Rude {
    fn poll(&mut self, _now: Time, cx: &mut kns_sim::stack::AppCx<'_>) -> kns_sim::stack::AppPoll {
        let l = *self.listener.get_or_insert_with(|| cx.tcp_listen(9, 8).unwrap());
        while let Some(h) = cx.tcp_accept(l) {
            self.conns.push(h);
        }
        let mut buf = Vec::new();
        self.conns.retain(|&h| {
            if cx.tcp_recv(h, &mut buf).unwrap_or(0) > 0 {
                cx.tcp_abort(h);
                self.resets += 1;
                false
            } else {
                true
            }
        });
        kns_sim::stack::AppPoll::Idle
    }
}

#[test]
fn reset_by_peer_after_established() {
    let (mut net, a, b) = pair();
    let rude = net.stack_mut(b).spawn(Rude { listener: None, conns: Vec::new(), resets: 0 });
    let mut cfg = TcpClientConfig::new(sa("10.0.0.2:9"), "hello?");
    cfg.half_close = false;
    let client = net.stack_mut(a).spawn(TcpClient::new(cfg));
    assert!(net.run_until_done(Time::from_secs(10), &[(a, client)]).unwrap());
    let c = net.stack(a).app::<TcpClient>(client).unwrap();
    assert!(c.established());
    assert_eq!(c.error(), Some(&ConnError::Reset));
    assert_eq!(c.error().unwrap().to_string(), "Connection reset by peer");
    assert_eq!(net.stack(b).app::<Rude>(rude).unwrap().resets, 1);
    net.run_until(net.now() + Duration::from_secs(1)).unwrap();
    assert_eq!(net.stack(b).socket_count(), 1, "the aborted socket was reaped");
}

#[test]
fn a_handshake_whose_peer_vanished_leaves_the_backlog() {
    let (mut net, a, b) = pair();
    let server = net.stack_mut(b).spawn(TcpEcho::new(7));
    // The client's first SYN gets through; everything after it, both ways, is lost.
    let mut first = true;
    net.set_drop_rule(move |_, _| !std::mem::replace(&mut first, false));
    let mut cfg = TcpClientConfig::new(sa("10.0.0.2:7"), "x");
    cfg.connect_timeout = Duration::from_secs(2);
    let client = net.stack_mut(a).spawn(TcpClient::new(cfg));
    assert!(net.run_until_done(Time::from_secs(10), &[(a, client)]).unwrap());
    assert_eq!(net.stack(a).app::<TcpClient>(client).unwrap().error(), Some(&ConnError::TimedOut));
    assert_eq!(net.stack(b).socket_count(), 2, "listener and the half-open connection");
    net.run_until(Time::from_secs(59)).unwrap();
    assert_eq!(net.stack(b).socket_count(), 2);
    net.run_until(Time::from_secs(61)).unwrap();
    assert_eq!(net.stack(b).socket_count(), 1, "the half-open connection timed out");
    assert_eq!(net.stack(b).app::<TcpEcho>(server).unwrap().accepted(), 0);
}
