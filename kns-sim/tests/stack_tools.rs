//! traceroute and nc between stacks wired by a `LoopbackNet`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use kns_sim::Time;
use kns_sim::stack::apps::{
    ConnError, Nc, NcConfig, Probe, TcpEcho, Traceroute, TracerouteConfig, UdpEcho,
};
use kns_sim::stack::testnet::LoopbackNet;
use kns_sim::stack::{SmolStack, StackConfig};

fn stack(seed: u64, addr: &str) -> SmolStack {
    SmolStack::with_addresses(StackConfig::with_seed(seed), Time::ZERO, &[addr.parse().unwrap()])
        .unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn traceroute_through_two_routers() {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.2/24"));
    net.add(stack(2, "10.0.2.2/24"));
    net.set_routers(vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 1, 1)]);
    let t =
        net.stack_mut(a).spawn(Traceroute::new(TracerouteConfig::new("10.0.2.2".parse().unwrap())));
    assert!(net.run_until_done(Time::from_secs(60), &[(a, t)]).unwrap());
    let tr = net.stack(a).app::<Traceroute>(t).unwrap();
    assert_eq!(
        tr.output(),
        "traceroute to 10.0.2.2 (10.0.2.2), 30 hops max, 60 byte packets\n \
         1  10.0.0.1  0.100 ms  0.100 ms  0.100 ms\n \
         2  10.0.1.1  0.200 ms  0.200 ms  0.200 ms\n \
         3  10.0.2.2  0.300 ms  0.300 ms  0.300 ms\n"
    );
    assert!(tr.reached());
}

#[test]
fn traceroute_prints_stars_for_silent_hops_and_marks_unreachable() {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.2/24"));
    net.set_routers(vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 1, 1)]);
    let mut cfg = TracerouteConfig::new("10.0.9.9".parse().unwrap());
    cfg.wait = Duration::from_secs(1);
    cfg.max_hops = 5;
    let t = net.stack_mut(a).spawn(Traceroute::new(cfg));
    assert!(net.run_until_done(Time::from_secs(60), &[(a, t)]).unwrap());
    let tr = net.stack(a).app::<Traceroute>(t).unwrap();
    // Hops 1 and 2 answer time exceeded; then the last router reports the host unreachable,
    // and traceroute stops there.
    assert_eq!(
        tr.output(),
        "traceroute to 10.0.9.9 (10.0.9.9), 5 hops max, 60 byte packets\n \
         1  10.0.0.1  0.100 ms  0.100 ms  0.100 ms\n \
         2  10.0.1.1  0.200 ms  0.200 ms  0.200 ms\n \
         3  10.0.1.1  0.200 ms !H  0.200 ms !H  0.200 ms !H\n"
    );
    assert!(!tr.reached());

    // A destination that never answers: every hop past the routers is silent.
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.2/24"));
    let b = net.add(stack(2, "10.0.2.2/24"));
    net.set_routers(vec![Ipv4Addr::new(10, 0, 0, 1)]);
    net.set_drop_rule(move |from, _| from == b);
    let mut cfg = TracerouteConfig::new("10.0.2.2".parse().unwrap());
    cfg.wait = Duration::from_secs(1);
    cfg.max_hops = 3;
    let t = net.stack_mut(a).spawn(Traceroute::new(cfg));
    assert!(net.run_until_done(Time::from_secs(60), &[(a, t)]).unwrap());
    let tr = net.stack(a).app::<Traceroute>(t).unwrap();
    assert_eq!(
        tr.output(),
        "traceroute to 10.0.2.2 (10.0.2.2), 3 hops max, 60 byte packets\n \
         1  10.0.0.1  0.100 ms  0.100 ms  0.100 ms\n \
         2  * * *\n \
         3  * * *\n"
    );
    assert_eq!(tr.hops()[1].probes, vec![Probe::Timeout; 3]);
    // 3 answered probes, then 6 probes waiting 1 s each.
    assert_eq!(tr.finished_at().unwrap().as_micros(), 300 + 6_000_000);
}

#[test]
fn nc_tcp_connect_and_listen() {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.1/24"));
    let b = net.add(stack(2, "10.0.0.2/24"));
    let mut listen = NcConfig::listen(9000, false, "hi client\n");
    listen.verbose = true;
    let server = net.stack_mut(b).spawn(Nc::new(listen));
    let mut connect = NcConfig::connect(sa("10.0.0.2:9000"), false, "hi server\n");
    connect.verbose = true;
    let client = net.stack_mut(a).spawn(Nc::new(connect));
    let refused =
        net.stack_mut(a).spawn(Nc::new(NcConfig::connect(sa("10.0.0.2:9001"), false, "x")));
    assert!(
        net.run_until_done(Time::from_secs(30), &[(a, client), (b, server), (a, refused)]).unwrap()
    );
    let c = net.stack(a).app::<Nc>(client).unwrap();
    assert!(c.connected());
    assert_eq!(c.output(), "hi client\n");
    assert_eq!(c.messages(), "Connection to 10.0.0.2 9000 port [tcp/*] succeeded!\n");
    let s = net.stack(b).app::<Nc>(server).unwrap();
    assert_eq!(s.output(), "hi server\n");
    let port = s.peers()[0].port();
    assert_eq!(
        s.messages(),
        format!("Listening on 0.0.0.0 9000\nConnection received on 10.0.0.1 {port}\n")
    );
    let r = net.stack(a).app::<Nc>(refused).unwrap();
    assert!(!r.connected());
    assert_eq!(r.error(), Some(&ConnError::Refused));
    assert_eq!(
        r.messages(),
        "nc: connect to 10.0.0.2 port 9001 (tcp) failed: Connection refused\n"
    );
}

#[test]
fn nc_against_echo_servers_tcp_and_udp() {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.1/24"));
    let b = net.add(stack(2, "10.0.0.2/24"));
    net.stack_mut(b).spawn(TcpEcho::new(7));
    net.stack_mut(b).spawn(UdpEcho::new(7));
    let udp_listener = net.stack_mut(b).spawn(Nc::new(NcConfig::listen(5000, true, "got it\n")));
    let tcp =
        net.stack_mut(a).spawn(Nc::new(NcConfig::connect(sa("10.0.0.2:7"), false, "echo me\n")));
    let udp =
        net.stack_mut(a).spawn(Nc::new(NcConfig::connect(sa("10.0.0.2:7"), true, "echo me too\n")));
    let udp2 =
        net.stack_mut(a).spawn(Nc::new(NcConfig::connect(sa("10.0.0.2:5000"), true, "hello\n")));
    let closed =
        net.stack_mut(a).spawn(Nc::new(NcConfig::connect(sa("10.0.0.2:6000"), true, "hello\n")));
    assert!(
        net.run_until_done(Time::from_secs(30), &[(a, tcp), (a, udp), (a, udp2), (a, closed)])
            .unwrap()
    );
    let app = |id| net.stack(a).app::<Nc>(id).unwrap();
    assert_eq!(app(tcp).output(), "echo me\n");
    assert!(app(tcp).finished_at().unwrap() < Time::from_millis(100), "closed by the server");
    assert_eq!(app(udp).output(), "echo me too\n");
    assert_eq!(app(udp).finished_at(), Some(Time::from_micros(100) + Duration::from_secs(5)));
    assert_eq!(app(udp2).output(), "got it\n");
    assert_eq!(app(closed).error(), Some(&ConnError::Refused));
    assert!(!app(closed).connected());
    let l = net.stack(b).app::<Nc>(udp_listener).unwrap();
    assert_eq!(l.output(), "hello\n");
    assert!(!net.stack(b).is_done(udp_listener));
}

#[test]
fn stopping_apps_frees_their_sockets_and_ping_prints_statistics() {
    use kns_sim::stack::apps::{Ping, PingConfig};
    use kns_sim::stack::ports::Transport;
    use smoltcp::socket::tcp::State;

    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.1/24"));
    let b = net.add(stack(2, "10.0.0.2/24"));
    let listener = net.stack_mut(b).spawn(Nc::new(NcConfig::listen(9000, false, "")));
    let echo = net.stack_mut(b).spawn(TcpEcho::new(7));
    // A connection that stays open: the client sends nothing and never half-closes.
    let mut cfg = NcConfig::connect(sa("10.0.0.2:7"), false, "");
    cfg.wait = Duration::from_secs(3600);
    cfg.shutdown_after_send = false;
    let idle = net.stack_mut(a).spawn(Nc::new(cfg));
    let ping = net.stack_mut(a).spawn(Ping::new(PingConfig::new("10.0.0.2".parse().unwrap(), 100)));
    net.run_until(Time::from_millis(2500)).unwrap();

    let sockets = net.stack(b).tcp_sockets();
    let states: Vec<_> = sockets.iter().map(|s| (s.listen_port, s.state)).collect();
    assert_eq!(states, [(7, State::Listen), (7, State::Established), (9000, State::Listen)]);
    assert_eq!(sockets[1].remote.unwrap().ip(), "10.0.0.1".parse::<std::net::IpAddr>().unwrap());

    assert!(net.stack_mut(a).stop(ping, Time::from_millis(2500)));
    assert!(!net.stack_mut(a).stop(ping, Time::from_millis(2500)), "already stopped");
    let out = net.stack(a).app::<Ping>(ping).unwrap().output().to_owned();
    assert!(
        out.ends_with(
            "--- 10.0.0.2 ping statistics ---\n\
         3 packets transmitted, 3 received, 0% packet loss, time 2500ms\n\
         rtt min/avg/max/mdev = 0.100/0.100/0.100/0.000 ms\n"
        ),
        "{out}"
    );

    let now = net.now();
    assert!(net.stack_mut(b).stop(listener, now));
    assert!(net.stack_mut(b).stop(echo, now));
    net.run_until(now + Duration::from_secs(1)).unwrap();
    assert!(!net.stack(b).port_in_use(Transport::Tcp, 9000));
    assert!(!net.stack(b).port_in_use(Transport::Tcp, 7));
    assert_eq!(net.stack(b).socket_count(), 0);
    // The client saw the server close its side.
    let c = net.stack(a).app::<Nc>(idle).unwrap();
    assert!(c.connected());
    assert!(net.stack(a).is_done(idle));
}

#[test]
fn nc_listeners_can_echo() {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.1/24"));
    let b = net.add(stack(2, "10.0.0.2/24"));
    for udp in [false, true] {
        let mut cfg = NcConfig::listen(4000, udp, "");
        cfg.echo = true;
        cfg.keep_listening = true;
        net.stack_mut(b).spawn(Nc::new(cfg));
    }
    let clients: Vec<_> = [(false, "first\n"), (false, "second\n"), (true, "third\n")]
        .into_iter()
        .map(|(udp, text)| {
            let mut cfg = NcConfig::connect(sa("10.0.0.2:4000"), udp, text);
            cfg.wait = Duration::from_secs(1);
            net.stack_mut(a).spawn(Nc::new(cfg))
        })
        .collect();
    let wanted: Vec<_> = clients.iter().map(|&c| (a, c)).collect();
    assert!(net.run_until_done(Time::from_secs(30), &wanted).unwrap());
    let outputs: Vec<_> =
        clients.iter().map(|&c| net.stack(a).app::<Nc>(c).unwrap().output()).collect();
    assert_eq!(outputs, ["first\n", "second\n", "third\n"]);
}

#[test]
fn tools_report_transcripts_and_success_uniformly() {
    use kns_sim::stack::apps::{
        HttpClient, HttpClientConfig, HttpServer, Ping, PingConfig, TcpClient, TcpClientConfig,
        Tool, UdpClient, UdpClientConfig,
    };
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.1/24"));
    let b = net.add(stack(2, "10.0.0.2/24"));
    net.stack_mut(b).spawn(HttpServer::fixed(80, "page\n"));
    net.stack_mut(b).spawn(UdpEcho::new(7));
    let ping_ok =
        net.stack_mut(a).spawn(Ping::new(PingConfig::new("10.0.0.2".parse().unwrap(), 1)));
    let mut lost = PingConfig::new("10.0.0.9".parse().unwrap(), 1);
    lost.timeout = Duration::from_secs(1);
    let ping_lost = net.stack_mut(a).spawn(Ping::new(lost));
    let curl = net.stack_mut(a).spawn(HttpClient::new(HttpClientConfig::get("http://10.0.0.2/")));
    let tcp_refused =
        net.stack_mut(a).spawn(TcpClient::new(TcpClientConfig::new(sa("10.0.0.2:1"), "x")));
    let udp = net.stack_mut(a).spawn(UdpClient::new(UdpClientConfig::new(sa("10.0.0.2:7"), "u\n")));
    let all = [ping_ok, ping_lost, curl, tcp_refused, udp].map(|id| (a, id));
    assert!(net.run_until_done(Time::from_secs(30), &all).unwrap());
    let s = net.stack(a);
    let tools: Vec<&dyn Tool> = vec![
        s.app::<Ping>(ping_ok).unwrap(),
        s.app::<Ping>(ping_lost).unwrap(),
        s.app::<HttpClient>(curl).unwrap(),
        s.app::<TcpClient>(tcp_refused).unwrap(),
        s.app::<UdpClient>(udp).unwrap(),
    ];
    let ok: Vec<bool> = tools.iter().map(|t| t.succeeded()).collect();
    assert_eq!(ok, [true, false, true, false, true]);
    assert!(tools.iter().all(|t| t.is_finished()));
    assert_eq!(tools[2].transcript(), "page\n");
    assert_eq!(tools[3].transcript(), "Connection refused\n");
    assert_eq!(tools[4].transcript(), "u\n");
    assert!(tools[1].transcript().contains("1 packets transmitted, 0 received, 100% packet loss"));
}
