//! Determinism of the socket layer: same seeds, same packets; ephemeral ports are reproducible.

use std::net::SocketAddr;
use std::time::Duration;

use kns_sim::Time;
use kns_sim::stack::apps::{
    HttpClient, HttpClientConfig, HttpServer, Ping, PingConfig, TcpClient, TcpClientConfig, TcpEcho,
};
use kns_sim::stack::ports::{EPHEMERAL_FIRST, EPHEMERAL_LAST, Transport};
use kns_sim::stack::testnet::{LoopbackNet, NetStats};
use kns_sim::stack::{SmolStack, StackConfig};

fn stack(seed: u64, addr: &str) -> SmolStack {
    SmolStack::with_addresses(StackConfig::with_seed(seed), Time::ZERO, &[addr.parse().unwrap()])
        .unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A small workload with loss; returns the packet hash, the counters and the apps' outputs.
fn scenario(seed_a: u64, seed_b: u64) -> (u64, NetStats, Vec<String>) {
    let mut net = LoopbackNet::new(Duration::from_micros(70));
    let a = net.add(stack(seed_a, "10.0.0.1/24"));
    let b = net.add(stack(seed_b, "10.0.0.2/24"));
    net.stack_mut(b).spawn(TcpEcho::new(7));
    net.stack_mut(b).spawn(HttpServer::fixed(80, "determinism\n"));
    let mut n = 0u32;
    net.set_drop_rule(move |_, _| {
        n += 1;
        n % 7 == 3
    });
    let ping = net.stack_mut(a).spawn(Ping::new(PingConfig::new("10.0.0.2".parse().unwrap(), 4)));
    let mut cfg = TcpClientConfig::new(sa("10.0.0.2:7"), vec![7u8; 30_000]);
    cfg.expect = Some(30_000);
    let echo = net.stack_mut(a).spawn(TcpClient::new(cfg));
    let gets: Vec<_> = (0..5)
        .map(|_| net.stack_mut(a).spawn(HttpClient::new(HttpClientConfig::get("http://10.0.0.2/"))))
        .collect();
    let mut wanted = vec![(a, ping), (a, echo)];
    wanted.extend(gets.iter().map(|&g| (a, g)));
    assert!(net.run_until_done(Time::from_secs(120), &wanted).unwrap());
    let mut outputs = vec![
        net.stack(a).app::<Ping>(ping).unwrap().replies().len().to_string(),
        net.stack(a).app::<TcpClient>(echo).unwrap().received().len().to_string(),
    ];
    outputs.extend(
        gets.iter().map(|&g| net.stack(a).app::<HttpClient>(g).unwrap().output().to_owned()),
    );
    (net.hash(), net.stats(), outputs)
}

#[test]
fn same_seeds_give_identical_packets() {
    let first = scenario(11, 12);
    let second = scenario(11, 12);
    assert_eq!(first, second);
    assert!(first.1.dropped > 0, "the workload saw losses: {:?}", first.1);
    assert_eq!(first.2[1], "30000");
    assert!(first.2[2..].iter().all(|o| o == "determinism\n"));
}

#[test]
fn other_seeds_change_packets_not_outcomes() {
    let (hash_a, _, out_a) = scenario(11, 12);
    let (hash_b, _, out_b) = scenario(21, 22);
    assert_ne!(hash_a, hash_b, "sequence numbers and ports come from the seeds");
    assert_eq!(out_a[1..], out_b[1..]);
}

fn connect_ports(seed: u64, listen_on: Option<u16>, n: usize) -> Vec<u16> {
    let mut s = stack(seed, "10.0.0.1/24");
    s.with_cx(Time::ZERO, |cx| {
        if let Some(port) = listen_on {
            cx.tcp_listen(port, 1).unwrap();
        }
        (0..n)
            .map(|_| {
                let h = cx.tcp_connect(sa("10.0.0.2:80")).unwrap();
                cx.tcp(h).unwrap().local_endpoint().unwrap().port
            })
            .collect()
    })
}

#[test]
fn ephemeral_ports_are_deterministic_sequential_and_skip_used_ones() {
    let ports = connect_ports(5, None, 3);
    assert_eq!(ports, connect_ports(5, None, 3));
    assert!(ports.iter().all(|p| (EPHEMERAL_FIRST..=EPHEMERAL_LAST).contains(p)));
    let next = |p: u16| if p == EPHEMERAL_LAST { EPHEMERAL_FIRST } else { p + 1 };
    assert_eq!(ports[1], next(ports[0]));
    assert_eq!(ports[2], next(ports[1]));
    // A listener on the port the second connection would get: it is skipped.
    let skipping = connect_ports(5, Some(ports[1]), 2);
    assert_eq!(skipping, vec![ports[0], ports[2]]);
    assert_ne!(connect_ports(6, None, 1), ports[..1]);

    // Ports come back once the socket is gone; UDP is a separate space.
    let mut s = stack(5, "10.0.0.1/24");
    let (udp, tcp) = s.with_cx(Time::ZERO, |cx| {
        let u = cx.udp_bind(0).unwrap();
        let port = cx.udp_local_port(u).unwrap();
        cx.remove(u);
        (port, cx.tcp_connect(sa("10.0.0.2:80")).unwrap())
    });
    assert_eq!(udp, ports[0]);
    assert!(!s.port_in_use(Transport::Udp, udp));
    // One counter walks the range for both protocols.
    assert!(s.port_in_use(Transport::Tcp, ports[1]));
    s.with_cx(Time::ZERO, |cx| cx.tcp_abort(tcp));
    let mut out = Vec::new();
    kns_sim::stack::IpStack::poll(&mut s, Time::ZERO, &mut out);
    assert!(!s.port_in_use(Transport::Tcp, ports[1]), "an aborted socket frees its port");
}
