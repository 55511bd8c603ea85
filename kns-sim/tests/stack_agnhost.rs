//! What runs in a pod: the agnhost-like server answering with the pod's name on TCP, HTTP, UDP
//! and SCTP; connection probes telling connected, refused, filtered and unreachable apart
//! through real namespaces, a router and netfilter; localhost and port conflicts between the
//! "containers" (apps) of one stack.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{ip, ns, run};
use kns_core::flow::Protocol;
use kns_sim::Sim;
use kns_sim::net::NetnsId;
use kns_sim::stack::apps::{
    AgnhostServer, ConnectProbe, HttpClient, HttpClientConfig, Nc, NcConfig, ProbeBatch,
    ProbeConfig, ProbeOutcome, ProbeResult, ProbeSpec, TcpClient, TcpClientConfig,
};
use kns_sim::stack::testnet::LoopbackNet;
use kns_sim::stack::{SmolStack, StackConfig, StackError};
use kns_sim::time::Time;
use kns_sim::wire::sctp::{SctpChunk, SctpPacket, SctpRepr};
use kns_sim::wire::{L4Summary, parse_ip};

const TCP: Protocol = Protocol::Tcp;
const UDP: Protocol = Protocol::Udp;
const SCTP: Protocol = Protocol::Sctp;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// client (10.0.1.2) — router (10.0.1.1 | 10.0.2.1) — server (10.0.2.2), each end with a
/// smoltcp stack and its loopback up.
const ROUTED: &str = "
ip netns add client
ip netns add router
ip netns add server
ip -n client link add eth0 type veth peer name c0 netns router
ip -n server link add eth0 type veth peer name s0 netns router
ip -n client addr add 10.0.1.2/24 dev eth0
ip -n router addr add 10.0.1.1/24 dev c0
ip -n router addr add 10.0.2.1/24 dev s0
ip -n server addr add 10.0.2.2/24 dev eth0
ip -n client link set eth0 up
ip -n client link set lo up
ip -n server link set eth0 up
ip -n server link set lo up
ip -n router link set c0 up
ip -n router link set s0 up
ip -n client route add default via 10.0.1.1
ip -n server route add default via 10.0.2.1
ip netns exec router sysctl -w net.ipv4.ip_forward=1
";

fn routed(seed: u64) -> (Sim, NetnsId, NetnsId) {
    let mut sim = Sim::new(seed);
    run(&mut sim, ROUTED);
    let (client, server) = (ns(&sim, "client"), ns(&sim, "server"));
    for n in [client, server] {
        let seed = sim.child_seed();
        sim.attach_stack(n, SmolStack::new(StackConfig::with_seed(seed), sim.now()));
        sim.kick(n);
    }
    (sim, client, server)
}

fn stack(sim: &mut Sim, n: NetnsId) -> &mut SmolStack {
    sim.stack_mut::<SmolStack>(n).unwrap()
}

/// Runs `specs` as one batch from `from` and returns the results in order.
fn probe_all(
    sim: &mut Sim,
    from: NetnsId,
    specs: &[ProbeSpec],
    config: ProbeConfig,
) -> Vec<ProbeResult> {
    let id = stack(sim, from).spawn(ProbeBatch::new(specs.to_vec(), config));
    sim.kick(from);
    sim.run_until_idle(10_000_000).unwrap();
    let batch = stack(sim, from).app::<ProbeBatch>(id).unwrap();
    assert!(batch.finished_at().is_some());
    batch.results().iter().map(|r| r.clone().expect("every probe finished")).collect()
}

fn probe_one(sim: &mut Sim, from: NetnsId, to: &str, protocol: Protocol) -> ProbeResult {
    let id = stack(sim, from)
        .spawn(ConnectProbe::new(ProbeSpec::new(addr(to), protocol), ProbeConfig::default()));
    sim.kick(from);
    sim.run_until_idle(10_000_000).unwrap();
    stack(sim, from).app::<ConnectProbe>(id).unwrap().result().expect("finished").clone()
}

fn reply(r: &ProbeResult) -> Option<&str> {
    match &r.outcome {
        ProbeOutcome::Connected { reply, .. } => reply.as_deref(),
        _ => None,
    }
}

fn serve(
    sim: &mut Sim,
    n: NetnsId,
    name: &str,
    ports: &[(u16, Protocol)],
) -> kns_sim::stack::AppId {
    let id = stack(sim, n).spawn(AgnhostServer::for_pod(name, ports.iter().copied()));
    sim.kick(n);
    sim.run_until_idle(1_000_000).unwrap();
    id
}

#[test]
fn tcp_udp_and_sctp_probes_get_the_pod_name_or_a_handshake() {
    let (mut sim, client, server) = routed(1);
    let app = serve(&mut sim, server, "web-0", &[(80, TCP), (53, UDP), (9, SCTP)]);
    let tcp = probe_one(&mut sim, client, "10.0.2.2:80", TCP);
    assert_eq!(reply(&tcp), Some("web-0"), "{tcp:?}");
    let udp = probe_one(&mut sim, client, "10.0.2.2:53", UDP);
    assert_eq!(reply(&udp), Some("web-0"), "{udp:?}");
    let sctp = probe_one(&mut sim, client, "10.0.2.2:9", SCTP);
    assert!(matches!(sctp.outcome, ProbeOutcome::Connected { reply: None, .. }), "{sctp:?}");
    let s = stack(&mut sim, server);
    let stats = s.app::<AgnhostServer>(app).unwrap().stats();
    assert_eq!((stats.connections, stats.name_replies, stats.datagrams), (1, 1, 1));
    assert_eq!(s.app::<AgnhostServer>(app).unwrap().open_connections(), 0);
    // Only the listener is left on the server, and the client holds no socket.
    let left: Vec<_> = s.tcp_sockets().into_iter().map(|t| t.state.to_string()).collect();
    assert_eq!(left, ["LISTEN"]);
    assert_eq!(stack(&mut sim, client).socket_count(), 0);
    assert!(sim.conservation().holds());
}

/// The SCTP packets a pcap capture holds: (source address, first chunk type, T bit).
fn sctp_chunks(pcap: &[u8]) -> Vec<(String, u8, bool)> {
    let mut reader = pcap_file::pcap::PcapReader::new(pcap).unwrap();
    let mut out = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let data = pkt.unwrap().data.into_owned();
        if data[12..14] != [0x08, 0x00] {
            continue;
        }
        let s = parse_ip(&data[14..]).unwrap();
        if !matches!(s.l4, L4Summary::Sctp { .. }) {
            continue;
        }
        let bytes = &data[14 + s.header_len..14 + s.total_len];
        let p = SctpPacket::new_checked(bytes).unwrap();
        assert!(p.verify_checksum(), "every SCTP packet carries a valid CRC32c");
        let repr = SctpRepr::parse(&p).unwrap();
        let (ty, t) = match repr.chunk {
            SctpChunk::Init(_) => (1, false),
            SctpChunk::InitAck { .. } => (2, false),
            SctpChunk::Abort { reflected } => (6, reflected),
            other => panic!("unexpected chunk {other:?}"),
        };
        out.push((s.src.to_string(), ty, t));
    }
    out
}

#[test]
fn sctp_on_the_wire_is_init_init_ack_abort_and_abort_for_an_unserved_port() {
    let (mut sim, client, server) = routed(2);
    serve(&mut sim, server, "sctp-0", &[(9, SCTP)]);
    let cap = sim.capture(server, "eth0").unwrap();
    let served = probe_one(&mut sim, client, "10.0.2.2:9", SCTP);
    assert!(served.outcome.is_connected(), "{served:?}");
    let unserved = probe_one(&mut sim, client, "10.0.2.2:10", SCTP);
    assert_eq!(unserved.outcome, ProbeOutcome::Refused);
    let mut pcap = Vec::new();
    sim.write_pcap(cap, &mut pcap).unwrap();
    let c = "10.0.1.2".to_string();
    let s = "10.0.2.2".to_string();
    assert_eq!(
        sctp_chunks(&pcap),
        [
            (c.clone(), 1, false), // INIT to port 9
            (s.clone(), 2, false), // INIT ACK
            (c.clone(), 6, false), // the probe aborts the half-open association
            (c, 1, false),         // INIT to port 10
            (s, 6, false),         // ABORT: nobody serves it (T bit clear, as Linux)
        ]
    );
    // Both probes left no association or port behind.
    assert_eq!(stack(&mut sim, client).socket_count(), 0);
}

fn tcp_exchange(
    sim: &mut Sim,
    from: NetnsId,
    to: &str,
    data: &[u8],
    half_close: bool,
) -> (Vec<u8>, Time) {
    let mut cfg = TcpClientConfig::new(addr(to), data.to_vec());
    cfg.half_close = half_close;
    let start = sim.now();
    let id = stack(sim, from).spawn(TcpClient::new(cfg));
    sim.kick(from);
    sim.run_until_idle(1_000_000).unwrap();
    let c = stack(sim, from).app::<TcpClient>(id).unwrap();
    assert!(c.established(), "{:?}", c.error());
    assert!(c.error().is_none(), "{:?}", c.error());
    (
        c.received().to_vec(),
        Time::from_nanos(c.finished_at().unwrap().as_nanos() - start.as_nanos()),
    )
}

#[test]
fn curl_shows_200_and_the_pod_name_and_keep_alive_is_honoured() {
    let (mut sim, client, server) = routed(3);
    let app = serve(&mut sim, server, "web-1", &[(8080, TCP)]);
    let mut cfg = HttpClientConfig::get("http://10.0.2.2:8080/hostname");
    cfg.include_headers = true;
    let curl = stack(&mut sim, client).spawn(HttpClient::new(cfg));
    sim.kick(client);
    sim.run_until_idle(1_000_000).unwrap();
    let c = stack(&mut sim, client).app::<HttpClient>(curl).unwrap();
    assert_eq!(c.exit_code(), Some(0), "{}", c.output());
    let r = c.reply().unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"web-1"[..]));
    assert_eq!(r.header("content-length"), Some("5"));
    assert!(c.output().ends_with("\r\n\r\nweb-1"), "{}", c.output());

    // Two pipelined requests on one connection: both answered; the second asks to close, and
    // the server closes after it.
    let two = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (got, _) = tcp_exchange(&mut sim, client, "10.0.2.2:8080", two, false);
    let text = String::from_utf8(got).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert_eq!(text.matches("Connection: close").count(), 1, "{text}");
    assert!(text.ends_with("Connection: close\r\n\r\nweb-1"), "{text}");
    // HTTP/1.0 closes after one answer; HEAD gets the head only.
    let (got, _) =
        tcp_exchange(&mut sim, client, "10.0.2.2:8080", b"HEAD / HTTP/1.0\r\n\r\n", false);
    let text = String::from_utf8(got).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n")
            && text.ends_with("Content-Length: 5\r\nConnection: close\r\n\r\n"),
        "{text}"
    );
    // Not HTTP: the name, at once.
    let (got, took) = tcp_exchange(&mut sim, client, "10.0.2.2:8080", b"hello\n", false);
    assert_eq!(got, b"web-1");
    assert!(took < Time::from_nanos(100_000_000), "{took}");
    // A silent client gets the name after a second, like serve-hostname's greeting.
    let (got, took) = tcp_exchange(&mut sim, client, "10.0.2.2:8080", b"", false);
    assert_eq!(got, b"web-1");
    assert!(took >= Time::from_secs(1) && took < Time::from_nanos(1_100_000_000), "{took}");
    let stats = stack(&mut sim, server).app::<AgnhostServer>(app).unwrap().stats();
    assert_eq!((stats.connections, stats.http_requests, stats.name_replies), (5, 4, 2));
}

#[test]
fn many_concurrent_clients_are_all_served() {
    let (mut sim, client, server) = routed(4);
    serve(&mut sim, server, "busy", &[(80, TCP)]);
    let ids: Vec<_> = (0..40)
        .map(|_| {
            let cfg = TcpClientConfig::new(addr("10.0.2.2:80"), Vec::new());
            stack(&mut sim, client).spawn(TcpClient::new(cfg))
        })
        .collect();
    sim.kick(client);
    sim.run_until_idle(10_000_000).unwrap();
    for id in ids {
        let c = stack(&mut sim, client).app::<TcpClient>(id).unwrap();
        assert_eq!(c.received(), b"busy", "{:?}", c.error());
    }
}

#[test]
fn refused_filtered_and_unreachable_are_told_apart() {
    let (mut sim, client, server) = routed(5);
    serve(
        &mut sim,
        server,
        "db-0",
        &[(80, TCP), (81, TCP), (83, TCP), (53, UDP), (55, UDP), (9, SCTP)],
    );
    run(
        &mut sim,
        "ip netns exec router iptables -A FORWARD -p tcp --dport 81 -j DROP
ip netns exec router iptables -A FORWARD -p udp --dport 55 -j DROP
ip netns exec router iptables -A FORWARD -p tcp --dport 83 -j REJECT --reject-with icmp-admin-prohibited",
    );
    let specs: Vec<_> = [
        ("10.0.2.2:80", TCP),
        ("10.0.2.2:81", TCP),
        ("10.0.2.2:82", TCP),
        ("10.0.2.2:83", TCP),
        ("10.0.9.9:80", TCP),
        ("10.0.2.2:53", UDP),
        ("10.0.2.2:54", UDP),
        ("10.0.2.2:55", UDP),
        ("10.0.9.9:53", UDP),
        ("10.0.2.2:9", SCTP),
        ("10.0.2.2:10", SCTP),
        ("10.0.1.1:9", SCTP),
    ]
    .iter()
    .map(|(to, p)| ProbeSpec::new(addr(to), *p))
    .collect();
    let results = probe_all(&mut sim, client, &specs, ProbeConfig::default());
    let router = ip("10.0.1.1");
    let unreachable = |code| ProbeOutcome::Unreachable { from: router, icmp_type: 3, code };
    let outcomes: Vec<_> = results.iter().map(|r| r.outcome.clone()).collect();
    let connected = |r: &ProbeResult| r.outcome.is_connected();
    assert!(connected(&results[0]) && reply(&results[0]) == Some("db-0"));
    assert_eq!(outcomes[1], ProbeOutcome::Filtered, "DROP");
    assert_eq!(outcomes[2], ProbeOutcome::Refused, "RST from the server's stack");
    assert_eq!(outcomes[3], unreachable(13), "REJECT --reject-with icmp-admin-prohibited");
    assert_eq!(outcomes[4], unreachable(0), "no route at the router");
    assert!(connected(&results[5]) && reply(&results[5]) == Some("db-0"));
    assert_eq!(outcomes[6], ProbeOutcome::Refused, "ICMP port unreachable");
    assert_eq!(outcomes[7], ProbeOutcome::Filtered);
    assert_eq!(outcomes[8], unreachable(0));
    assert!(connected(&results[9]));
    assert_eq!(outcomes[10], ProbeOutcome::Refused, "ABORT");
    // The router has no socket layer: like Linux without the sctp module it answers ICMP
    // protocol unreachable, which a probe reads as refused.
    assert_eq!(outcomes[11], ProbeOutcome::Refused);
    // Virtual time: a filtered probe costs exactly its timeout; the others a few round trips.
    for r in &results {
        let took = r.finished.saturating_since(r.started);
        eprintln!("{:<22} {:<60} {:>12?}", r.spec.to_string(), r.outcome.to_string(), took);
        match r.outcome {
            ProbeOutcome::Filtered => assert_eq!(took, Duration::from_secs(1)),
            _ => assert!(took < Duration::from_millis(50), "{r:?}"),
        }
    }
    // The dropped SYN was retransmitted once, at the timeout (smoltcp's initial RTO is 1 s).
    let rule = kns_sim::DropReason::FilterRule {
        table: "filter".into(),
        chain: "FORWARD".into(),
        rule: 1,
    };
    assert_eq!(sim.drops(ns(&sim, "router")).get(&rule), Some(&2));
    // Filtering SCTP at the router turns the served port into a filtered one.
    run(&mut sim, "ip netns exec router iptables -A FORWARD -p sctp -j DROP");
    assert_eq!(probe_one(&mut sim, client, "10.0.2.2:9", SCTP).outcome, ProbeOutcome::Filtered);
    assert_eq!(stack(&mut sim, client).socket_count(), 0, "probes leave no socket behind");
    assert!(sim.conservation().holds());
}

/// Three server pods on a bridge; one client probes every pod and port.
const BRIDGED: &str = "
ip netns add host
ip -n host link add br0 type bridge
ip -n host link set br0 up
";

fn bridged(seed: u64, pods: usize) -> (Sim, Vec<NetnsId>) {
    let mut sim = Sim::new(seed);
    run(&mut sim, BRIDGED);
    let mut ids = Vec::new();
    for i in 0..pods {
        let script = format!(
            "ip netns add pod{i}
ip -n pod{i} link add eth0 type veth peer name veth{i} netns host
ip -n host link set veth{i} master br0
ip -n host link set veth{i} up
ip -n pod{i} addr add 10.1.0.{}/24 dev eth0
ip -n pod{i} link set eth0 up
ip -n pod{i} link set lo up",
            i + 10
        );
        run(&mut sim, &script);
        let n = ns(&sim, &format!("pod{i}"));
        let seed = sim.child_seed();
        sim.attach_stack(n, SmolStack::new(StackConfig::with_seed(seed), sim.now()));
        ids.push(n);
    }
    (sim, ids)
}

fn matrix(seed: u64) -> Vec<(String, String)> {
    let (mut sim, pods) = bridged(seed, 4);
    for (i, &n) in pods.iter().enumerate().skip(1) {
        serve(&mut sim, n, &format!("pod-{i}"), &[(80, TCP), (53, UDP), (9, SCTP)]);
    }
    let mut specs = Vec::new();
    for i in 1..pods.len() {
        for (port, proto) in [(80, TCP), (81, TCP), (53, UDP), (54, UDP), (9, SCTP), (10, SCTP)] {
            specs.push(ProbeSpec::new(addr(&format!("10.1.0.{}:{port}", i + 10)), proto));
        }
    }
    let config = ProbeConfig { concurrency: 4, ..ProbeConfig::default() };
    let results = probe_all(&mut sim, pods[0], &specs, config);
    results.iter().map(|r| (r.spec.to_string(), r.outcome.to_string())).collect()
}

#[test]
fn a_batch_probes_every_pod_and_port_and_is_deterministic() {
    let first = matrix(6);
    assert_eq!(first.len(), 18);
    for (i, (spec, outcome)) in first.iter().enumerate() {
        let served = i % 2 == 0;
        let pod = format!("pod-{}", i / 6 + 1);
        match (served, spec.ends_with("/SCTP")) {
            (true, true) => assert!(outcome.starts_with("connected in"), "{spec}: {outcome}"),
            (true, _) => {
                assert!(outcome.ends_with(&format!("reply \"{pod}\"")), "{spec}: {outcome}")
            }
            (false, _) => assert_eq!(outcome, "refused", "{spec}"),
        }
    }
    assert_eq!(first, matrix(6), "same seed, same results");
}

#[test]
fn containers_of_a_pod_reach_each_other_on_localhost_and_the_pod_ip() {
    let (mut sim, _client, server) = routed(7);
    // Container A serves; container B (another app on the same stack) probes it.
    serve(&mut sim, server, "duo-0", &[(8080, TCP), (8081, UDP), (7, SCTP)]);
    let before = sim.link_stats(server, "eth0").unwrap();
    for (to, proto) in [
        ("127.0.0.1:8080", TCP),
        ("10.0.2.2:8080", TCP),
        ("127.0.0.1:8081", UDP),
        ("10.0.2.2:8081", UDP),
        ("127.0.0.1:7", SCTP),
    ] {
        let r = probe_one(&mut sim, server, to, proto);
        assert!(r.outcome.is_connected(), "{to}: {r:?}");
        if proto != SCTP {
            assert_eq!(reply(&r), Some("duo-0"), "{to}");
        }
    }
    assert_eq!(probe_one(&mut sim, server, "127.0.0.1:9999", TCP).outcome, ProbeOutcome::Refused);
    // Nothing of it left the pod.
    let after = sim.link_stats(server, "eth0").unwrap();
    assert_eq!((after.tx_packets, after.rx_packets), (before.tx_packets, before.rx_packets));
}

#[test]
fn a_stack_reaches_its_own_address_without_the_ip_layer() {
    // LoopbackNet has no IP layer and no `lo`: a datagram to the stack's own address comes
    // straight back to it.
    let mut net = LoopbackNet::default();
    let a = net.add(
        SmolStack::with_addresses(
            StackConfig::with_seed(1),
            Time::ZERO,
            &["10.0.0.1/24".parse().unwrap()],
        )
        .unwrap(),
    );
    net.stack_mut(a).spawn(AgnhostServer::for_pod("solo", [(80, TCP)]));
    let p = net
        .stack_mut(a)
        .spawn(ConnectProbe::new(ProbeSpec::new(addr("10.0.0.1:80"), TCP), ProbeConfig::default()));
    assert!(net.run_until_done(Time::from_secs(5), &[(a, p)]).unwrap());
    let r = net.stack(a).app::<ConnectProbe>(p).unwrap().result().unwrap().clone();
    assert_eq!(reply(&r), Some("solo"), "{r:?}");
}

#[test]
fn two_containers_binding_the_same_port_conflict() {
    let (mut sim, client, server) = routed(8);
    let first = serve(&mut sim, server, "pod-a", &[(80, TCP), (53, UDP), (9, SCTP)]);
    let second = serve(&mut sim, server, "pod-a", &[(80, TCP), (53, UDP), (9, SCTP), (81, TCP)]);
    let s = stack(&mut sim, server);
    assert!(s.app::<AgnhostServer>(first).unwrap().errors().is_empty());
    let errors: Vec<_> = s
        .app::<AgnhostServer>(second)
        .unwrap()
        .errors()
        .iter()
        .map(|(p, proto, e)| (*p, *proto, e.clone()))
        .collect();
    assert_eq!(
        errors,
        [
            (80, TCP, StackError::PortInUse { port: 80 }),
            (53, UDP, StackError::PortInUse { port: 53 }),
            (9, SCTP, StackError::PortInUse { port: 9 }),
        ]
    );
    // The same through the raw API and through nc.
    s.with_cx(Time::ZERO, |cx| {
        assert_eq!(cx.tcp_listen(80, 1).unwrap_err(), StackError::PortInUse { port: 80 });
        assert_eq!(cx.udp_bind(53).unwrap_err(), StackError::PortInUse { port: 53 });
        assert_eq!(cx.sctp_listen(9).unwrap_err(), StackError::PortInUse { port: 9 });
    });
    let nc = s.spawn(Nc::new(NcConfig::listen(80, false, "x")));
    sim.kick(server);
    sim.run_until_idle(1_000_000).unwrap();
    let messages = stack(&mut sim, server).app::<Nc>(nc).unwrap().messages().to_owned();
    assert_eq!(messages, "nc: port 80 already in use\n");
    // The second container's free port works; the first still answers on the shared ones.
    let r = probe_one(&mut sim, client, "10.0.2.2:81", TCP);
    assert_eq!(reply(&r), Some("pod-a"));
    let now = sim.now();
    assert!(stack(&mut sim, server).stop(first, now));
    assert_eq!(probe_one(&mut sim, client, "10.0.2.2:80", TCP).outcome, ProbeOutcome::Refused);
    // Once the first container is gone, its ports can be bound again.
    stack(&mut sim, server).with_cx(now, |cx| {
        assert!(cx.udp_bind(53).is_ok());
        assert!(cx.sctp_listen(9).is_ok());
        assert!(cx.tcp_listen(80, 1).is_ok());
    });
}

#[test]
fn virtual_time_cost_of_each_outcome() {
    let (mut sim, client, server) = routed(9);
    let router = ns(&sim, "router");
    let hop =
        kns_sim::net::LinkParams { latency: Duration::from_micros(100), ..Default::default() };
    for (n, dev) in [(client, "eth0"), (router, "c0"), (router, "s0"), (server, "eth0")] {
        sim.link_set_params(n, dev, hop.clone()).unwrap();
    }
    serve(&mut sim, server, "far-0", &[(80, TCP), (53, UDP), (9, SCTP)]);
    run(&mut sim, "ip netns exec router iptables -A FORWARD -p tcp --dport 81 -j DROP");
    // The first probe also pays for ARP on both hops (one more round trip).
    let warm = probe_one(&mut sim, client, "10.0.2.2:80", TCP);
    assert_eq!(warm.finished.saturating_since(warm.started), Duration::from_micros(1200));
    let specs: Vec<_> = [
        ("10.0.2.2:80", TCP),
        ("10.0.2.2:82", TCP),
        ("10.0.2.2:81", TCP),
        ("10.0.9.9:80", TCP),
        ("10.0.2.2:53", UDP),
        ("10.0.2.2:54", UDP),
        ("10.0.2.2:9", SCTP),
        ("10.0.2.2:10", SCTP),
    ]
    .iter()
    .map(|(to, p)| ProbeSpec::new(addr(to), *p))
    .collect();
    let results = probe_all(&mut sim, client, &specs, ProbeConfig::default());
    let cost: Vec<_> = results
        .iter()
        .map(|r| {
            let rtt = match r.outcome {
                ProbeOutcome::Connected { rtt, .. } => Some(rtt.as_micros()),
                _ => None,
            };
            (r.spec.to_string(), r.finished.saturating_since(r.started).as_micros(), rtt)
        })
        .collect();
    // One-way delay to the server 200 µs, to the router 100 µs.
    let expected: [(u128, Option<u128>); 8] = [
        (800, Some(400)),  // TCP connected: handshake, then FIN -> name + FIN
        (400, None),       // TCP refused: SYN -> RST
        (1_000_000, None), // TCP filtered: the timeout
        (200, None),       // unreachable: the router's ICMP
        (400, Some(400)),  // UDP answered
        (400, None),       // UDP refused: ICMP port unreachable
        (400, Some(400)),  // SCTP INIT -> INIT ACK
        (400, None),       // SCTP INIT -> ABORT
    ];
    let got: Vec<_> = cost.iter().map(|(_, t, rtt)| (*t, *rtt)).collect();
    assert_eq!(got, expected);
}

#[test]
fn ipv6_probes_see_names_handshakes_and_refusals() {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let v6 = |seed, a: &str| {
        SmolStack::with_addresses(StackConfig::with_seed(seed), Time::ZERO, &[a.parse().unwrap()])
            .unwrap()
    };
    let a = net.add(v6(1, "fd00::1/64"));
    let b = net.add(v6(2, "fd00::2/64"));
    net.stack_mut(b).spawn(AgnhostServer::for_pod("six-0", [(80, TCP), (53, UDP), (9, SCTP)]));
    let specs: Vec<_> = [
        ("[fd00::2]:80", TCP),
        ("[fd00::2]:53", UDP),
        ("[fd00::2]:9", SCTP),
        ("[fd00::2]:81", TCP),
        ("[fd00::2]:54", UDP),
        ("[fd00::2]:10", SCTP),
    ]
    .iter()
    .map(|(to, p)| ProbeSpec::new(addr(to), *p))
    .collect();
    let id = net.stack_mut(a).spawn(ProbeBatch::new(specs, ProbeConfig::default()));
    assert!(net.run_until_done(Time::from_secs(5), &[(a, id)]).unwrap());
    let batch = net.stack(a).app::<ProbeBatch>(id).unwrap();
    let got: Vec<_> =
        batch.results().iter().map(|r| r.as_ref().unwrap().outcome.to_string()).collect();
    assert_eq!(
        got,
        [
            "connected in 100µs, reply \"six-0\"",
            "connected in 100µs, reply \"six-0\"",
            "connected in 100µs",
            "refused",
            "refused",
            "refused",
        ]
    );
}

#[test]
fn packets_per_probe() {
    let (mut sim, client, server) = routed(10);
    serve(&mut sim, server, "count-0", &[(80, TCP), (53, UDP), (9, SCTP)]);
    // Warm the neighbour caches.
    probe_one(&mut sim, client, "10.0.2.2:80", TCP);
    let mut counts = Vec::new();
    for (to, proto) in [
        ("10.0.2.2:80", TCP),
        ("10.0.2.2:81", TCP),
        ("10.0.2.2:53", UDP),
        ("10.0.2.2:54", UDP),
        ("10.0.2.2:9", SCTP),
        ("10.0.2.2:10", SCTP),
    ] {
        let before = sim.link_stats(client, "eth0").unwrap();
        let r = probe_one(&mut sim, client, to, proto);
        let after = sim.link_stats(client, "eth0").unwrap();
        counts.push((
            format!("{to}/{proto} {}", r.outcome),
            after.tx_packets - before.tx_packets,
            after.rx_packets - before.rx_packets,
        ));
    }
    // `nc -N` (a TcpClient half-closing at once) closes as cleanly: the ACK it owes for the
    // server's name + FIN is not lost when the stack reaps its socket in TIME-WAIT, so the
    // server neither retransmits its answer nor gets reset.
    let before = sim.link_stats(client, "eth0").unwrap();
    let (got, _) = tcp_exchange(&mut sim, client, "10.0.2.2:80", b"", true);
    assert_eq!(got, b"count-0");
    sim.run_for(Duration::from_secs(5));
    let after = sim.link_stats(client, "eth0").unwrap();
    let (tx, rx) = (after.tx_packets - before.tx_packets, after.rx_packets - before.rx_packets);
    counts.push(("nc -N".into(), tx, rx));
    let got: Vec<_> = counts.iter().map(|(_, tx, rx)| (*tx, *rx)).collect();
    // TCP connected: SYN, ACK, FIN, ACK out; SYN-ACK, ACK of the FIN, name + FIN in.
    assert_eq!(got, [(4, 3), (1, 1), (1, 1), (1, 1), (2, 1), (1, 1), (4, 3)], "{counts:#?}");
    assert_eq!(stack(&mut sim, client).socket_count(), 0);
    let left: Vec<_> =
        stack(&mut sim, server).tcp_sockets().into_iter().map(|t| t.state.to_string()).collect();
    assert_eq!(left, ["LISTEN"]);
}

#[test]
fn a_client_that_resets_leaves_no_connection_behind() {
    let (mut sim, client, server) = routed(11);
    let app = serve(&mut sim, server, "rst-0", &[(80, TCP)]);
    let now = sim.now();
    let h = stack(&mut sim, client).with_cx(now, |cx| cx.tcp_connect(addr("10.0.2.2:80")).unwrap());
    sim.kick(client);
    sim.run_for(Duration::from_millis(10));
    assert_eq!(stack(&mut sim, server).app::<AgnhostServer>(app).unwrap().open_connections(), 1);
    let now = sim.now();
    stack(&mut sim, client).with_cx(now, |cx| cx.tcp_abort(h));
    sim.kick(client);
    sim.run_until_idle(1_000_000).unwrap();
    let s = stack(&mut sim, server);
    assert_eq!(s.app::<AgnhostServer>(app).unwrap().open_connections(), 0);
    let left: Vec<_> = s.tcp_sockets().into_iter().map(|t| t.state.to_string()).collect();
    assert_eq!(left, ["LISTEN"]);
}
