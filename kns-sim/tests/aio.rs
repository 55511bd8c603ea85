//! Async pods: tokio code over the emulated network, in virtual time.

#[path = "common/pods.rs"]
mod pods;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use kns_sim::Time;
use kns_sim::aio::{self, AsyncSim, Hosts, TcpListener, TcpStream, UdpSocket, lookup_host};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use pods::{cluster, iptables, pod_addr};

fn sa(ip: std::net::Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

/// An echo server: every connection is copied back to itself until EOF.
async fn echo_server(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        aio::spawn(async move {
            let (mut r, mut w) = stream.split();
            // A client that leaves with echoes unread resets the connection: not our concern.
            let _ = tokio::io::copy(&mut r, &mut w).await;
        })?;
    }
}

#[test]
fn tcp_echo_across_nodes() {
    let (sim, p) = cluster(1, &[1, 1]);
    let (client, server) = (p.pod(0, 0), p.pod(1, 0));
    let mut asim = AsyncSim::new(sim);
    asim.spawn_in(server, echo_server(7));
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sent = data.clone();
    let (got, local, peer) = asim
        .block_on(
            client,
            async move {
                let s = TcpStream::connect(sa(pod_addr(1, 0), 7)).await.unwrap();
                s.set_nodelay(true).unwrap();
                let (local, peer) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
                let (mut r, mut w) = s.into_split();
                let writer = aio::spawn(async move {
                    w.write_all(&sent).await.unwrap();
                    // Dropping the write half sends FIN: the echo ends and so does our read.
                })
                .unwrap();
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                writer.await.unwrap();
                (got, local, peer)
            },
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(got, data);
    assert_eq!(local.ip(), pod_addr(0, 0));
    assert!((32768..=60999).contains(&local.port()));
    assert_eq!(peer, sa(pod_addr(1, 0), 7));
    assert!(asim.now() < Time::from_secs(1), "100 kB over ideal links: {}", asim.now());
}

#[test]
fn udp_echo_across_nodes() {
    let (sim, p) = cluster(2, &[1, 1]);
    let (client, server) = (p.pod(0, 0), p.pod(1, 0));
    let mut asim = AsyncSim::new(sim);
    asim.spawn_in(server, async {
        let sock = UdpSocket::bind("0.0.0.0:5353").await.unwrap();
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            sock.send_to(&buf[..n], from).await.unwrap();
        }
    });
    let answers = asim
        .block_on(
            client,
            async {
                let sock = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                sock.connect(sa(pod_addr(1, 0), 5353)).await.unwrap();
                assert_eq!(sock.peer_addr().unwrap(), sa(pod_addr(1, 0), 5353));
                let mut answers = Vec::new();
                for i in 0..5u8 {
                    sock.send(&[i; 10]).await.unwrap();
                    let mut buf = [0u8; 64];
                    let n = sock.recv(&mut buf).await.unwrap();
                    answers.push(buf[..n].to_vec());
                }
                // Nobody on 9999: the peer's ICMP port unreachable fails the next recv.
                let closed = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                closed.connect(sa(pod_addr(1, 0), 9999)).await.unwrap();
                closed.send(b"anyone?").await.unwrap();
                let e = closed.recv(&mut [0u8; 8]).await.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
                answers
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(answers, (0..5u8).map(|i| vec![i; 10]).collect::<Vec<_>>());
}

#[test]
fn refused_rejected_and_filtered_connects() {
    let (mut sim, p) = cluster(3, &[1, 1]);
    let (client, server) = (p.pod(0, 0), p.pod(1, 0));
    // Port 81 is dropped on the way (a filtered port), 82 rejected with ICMP port unreachable.
    iptables(&mut sim, p.nodes[1], "-A FORWARD -p tcp --dport 81 -j DROP");
    iptables(&mut sim, p.nodes[1], "-A FORWARD -p tcp --dport 82 -j REJECT");
    let mut asim = AsyncSim::new(sim);
    let target = pod_addr(1, 0);
    let _ = server;
    let results = asim
        .block_on(
            client,
            async move {
                let mut out = Vec::new();
                for port in [80, 82] {
                    let t0 = aio::now().unwrap();
                    let e = TcpStream::connect(sa(target, port)).await.unwrap_err();
                    out.push((e.kind(), aio::now().unwrap().saturating_since(t0)));
                }
                // A filtered port under a 30 s timeout: the timeout fires in virtual time.
                let t0 = aio::now().unwrap();
                let r = tokio::time::timeout(
                    Duration::from_secs(30),
                    TcpStream::connect(sa(target, 81)),
                )
                .await;
                assert!(r.is_err(), "the timeout elapsed");
                out.push((ErrorKind::WouldBlock, aio::now().unwrap().saturating_since(t0)));
                // Without a timeout the stack gives up after Linux's SYN retries.
                let t0 = aio::now().unwrap();
                let e = TcpStream::connect(sa(target, 81)).await.unwrap_err();
                out.push((e.kind(), aio::now().unwrap().saturating_since(t0)));
                out
            },
            Duration::from_secs(600),
        )
        .unwrap();
    assert_eq!(results[0].0, ErrorKind::ConnectionRefused, "RST from a port nobody listens on");
    assert!(results[0].1 < Duration::from_millis(1));
    assert_eq!(results[1].0, ErrorKind::ConnectionRefused, "ICMP port unreachable");
    assert!(results[1].1 < Duration::from_millis(1));
    assert_eq!(results[2].1, Duration::from_secs(30));
    assert_eq!(results[3].0, ErrorKind::TimedOut);
    assert_eq!(results[3].1, aio::CONNECT_TIMEOUT);
    let drops = asim.sim().drops(p.nodes[1]).values().sum::<u64>();
    assert!(drops >= 7, "SYN and its retries dropped twice over: {drops}");
}

#[test]
fn sleeps_timeouts_and_intervals_follow_the_engine_clock() {
    let (sim, p) = cluster(4, &[1]);
    let pod = p.pod(0, 0);
    let mut asim = AsyncSim::new(sim);
    let wall = std::time::Instant::now();
    let ticks = asim
        .block_on(
            pod,
            async {
                let mut ticks = Vec::new();
                let start = tokio::time::Instant::now();
                tokio::time::sleep(Duration::from_secs(30)).await;
                ticks.push(start.elapsed());
                let pending = std::future::pending::<()>();
                assert!(tokio::time::timeout(Duration::from_millis(1500), pending).await.is_err());
                ticks.push(start.elapsed());
                let mut interval = tokio::time::interval(Duration::from_secs(10));
                for _ in 0..4 {
                    interval.tick().await;
                    ticks.push(start.elapsed());
                }
                // tokio's clock and the engine's agree to the nanosecond.
                let engine = aio::now().unwrap();
                assert_eq!(engine - Time::ZERO, start.elapsed() + Duration::from_millis(0));
                ticks
            },
            Duration::from_secs(3600),
        )
        .unwrap();
    let s = Duration::from_secs;
    assert_eq!(
        ticks,
        [
            s(30),
            Duration::from_millis(31_500),
            s(31) + s(1) / 2,
            s(41) + s(1) / 2,
            s(51) + s(1) / 2,
            s(61) + s(1) / 2
        ]
    );
    assert_eq!(asim.now(), Time::from_millis(61_500));
    // Each wait is one jump of the clock: a handful of polls, not one per millisecond.
    assert!(asim.task_polls() <= 10, "{} polls", asim.task_polls());
    assert!(wall.elapsed() < Duration::from_secs(5));
}

#[test]
fn addr_in_use_broken_pipe_and_reset() {
    let (sim, p) = cluster(5, &[2]);
    let (a, b) = (p.pod(0, 0), p.pod(0, 1));
    let mut asim = AsyncSim::new(sim);
    // b: accepts one connection and drops it with unread data (an RST, as on Linux).
    asim.spawn_in(b, async {
        let l = TcpListener::bind("0.0.0.0:9000").await.unwrap();
        assert_eq!(
            TcpListener::bind("0.0.0.0:9000").await.unwrap_err().kind(),
            ErrorKind::AddrInUse
        );
        let u = UdpSocket::bind("0.0.0.0:9000").await.unwrap();
        assert_eq!(UdpSocket::bind("0.0.0.0:9000").await.unwrap_err().kind(), ErrorKind::AddrInUse);
        drop(u);
        let (mut s, _) = l.accept().await.unwrap();
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(s);
        let (s, _) = l.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(s);
    });
    let kinds = asim
        .block_on(
            a,
            async move {
                let mut s = TcpStream::connect(sa(pod_addr(0, 1), 9000)).await.unwrap();
                s.write_all(b"xyz").await.unwrap();
                let mut buf = [0u8; 8];
                let read = s.read(&mut buf).await.unwrap_err().kind();
                let write = s.write(b"more").await.unwrap_err().kind();
                let again = s.write(b"more").await.unwrap_err().kind();
                // A stream shut down for writing refuses to write.
                let mut s2 = TcpStream::connect(sa(pod_addr(0, 1), 9000)).await;
                let shut = match s2.as_mut() {
                    Ok(s2) => {
                        s2.shutdown().await.unwrap();
                        s2.write(b"x").await.unwrap_err().kind()
                    }
                    Err(e) => e.kind(),
                };
                (read, write, again, shut)
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(kinds.0, ErrorKind::ConnectionReset);
    assert_eq!(kinds.1, ErrorKind::BrokenPipe, "the reset was already reported by the read");
    assert_eq!(kinds.2, ErrorKind::BrokenPipe);
    assert_eq!(kinds.3, ErrorKind::BrokenPipe);
}

#[test]
fn a_full_send_buffer_makes_writes_pending_until_the_peer_reads() {
    let (sim, p) = cluster(6, &[1, 1]);
    let (client, server) = (p.pod(0, 0), p.pod(1, 0));
    let mut asim = AsyncSim::new(sim);
    asim.spawn_in(server, async {
        let l = TcpListener::bind("0.0.0.0:9").await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        // Read nothing for 5 s, then everything.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut sink = Vec::new();
        s.read_to_end(&mut sink).await.unwrap();
        sink.len()
    });
    let (stalled_at, done_at) = asim
        .block_on(
            client,
            async move {
                let mut s = TcpStream::connect(sa(pod_addr(1, 0), 9)).await.unwrap();
                let data = vec![7u8; 200_000];
                let mut written = 0;
                // Writes complete until both buffers (16 KiB each) are full, then pend.
                loop {
                    let w = tokio::time::timeout(Duration::from_secs(1), s.write(&data[written..]));
                    match w.await {
                        Ok(n) => written += n.unwrap(),
                        Err(_) => break,
                    }
                }
                let stalled_at = written;
                s.write_all(&data[written..]).await.unwrap();
                s.shutdown().await.unwrap();
                (stalled_at, aio::now().unwrap())
            },
            Duration::from_secs(60),
        )
        .unwrap();
    assert!((16 * 1024..=40 * 1024).contains(&stalled_at), "{stalled_at}");
    assert!(done_at >= Time::from_secs(5), "the rest went once the server read: {done_at}");
}

#[test]
fn deleting_a_pod_drops_its_tasks_and_resets_its_peers() {
    let (sim, p) = cluster(7, &[1, 1]);
    let (client, server) = (p.pod(0, 0), p.pod(1, 0));
    let mut asim = AsyncSim::new(sim);
    let reader = asim.spawn_in(server, async {
        let l = TcpListener::bind("0.0.0.0:7000").await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        s.read(&mut buf).await.map_err(|e| e.kind())
    });
    let writer = asim.spawn_in(client, async {
        let mut s = TcpStream::connect(sa(pod_addr(1, 0), 7000)).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        std::future::pending::<()>().await;
    });
    asim.run_for(Duration::from_secs(1));
    assert_eq!(asim.task_count(), 2);
    assert_eq!(asim.delete_pod("pod-0-0").unwrap(), 1);
    assert!(writer.is_finished());
    assert!(writer.try_take().unwrap().unwrap_err().is_cancelled());
    asim.wait(&reader, Duration::from_secs(5)).unwrap();
    assert_eq!(reader.try_take().unwrap().unwrap(), Err(ErrorKind::ConnectionReset));
    assert!(asim.sim().netns(Some("pod-0-0")).is_err());
    let _ = client;
}

#[test]
fn names_resolve_through_the_pluggable_resolver() {
    let (sim, p) = cluster(8, &[1, 1]);
    let (client, server) = (p.pod(0, 0), p.pod(1, 0));
    let mut asim = AsyncSim::new(sim);
    let mut hosts = Hosts::new();
    hosts.insert("echo.default.svc.cluster.local", pod_addr(1, 0).into());
    asim.set_resolver(hosts);
    asim.spawn_in(server, echo_server(7));
    let (addrs, reply, unknown) = asim
        .block_on(
            client,
            async {
                let addrs: Vec<_> =
                    lookup_host("echo.default.svc.cluster.local:7").await.unwrap().collect();
                let mut s =
                    TcpStream::connect(("echo.default.svc.cluster.local", 7)).await.unwrap();
                s.write_all(b"ping").await.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                let unknown = lookup_host("nope:1").await.map(|_| ()).unwrap_err().to_string();
                (addrs, buf, unknown)
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(addrs, [sa(pod_addr(1, 0), 7)]);
    assert_eq!(&reply, b"ping");
    assert!(unknown.contains("Name or service not known"), "{unknown}");
}

/// Twelve clients on three nodes talk to an echo server at staggered times, racing reads
/// against timers in `select!`; returns a hash of the packet trace and the tasks' log.
fn racing_clients(seed: u64) -> (u64, usize) {
    use std::hash::{Hash, Hasher};
    let (mut sim, p) = cluster(seed, &[4, 4, 4]);
    sim.enable_trace();
    let mut asim = AsyncSim::new(sim);
    asim.spawn_in(p.pod(0, 0), echo_server(7));
    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    for k in 0..3 {
        for i in 0..4 {
            if (k, i) == (0, 0) {
                continue;
            }
            let log = log.clone();
            asim.spawn_in(p.pod(k, i), async move {
                tokio::time::sleep(Duration::from_millis((k * 4 + i) as u64 % 3)).await;
                let mut s = TcpStream::connect(sa(pod_addr(0, 0), 7)).await.unwrap();
                let mut got = 0;
                let mut buf = [0u8; 256];
                for round in 0..5usize {
                    s.write_all(&vec![round as u8; 100 + 37 * (k + i + round)]).await.unwrap();
                    let sleep = tokio::time::sleep(Duration::from_millis(1));
                    // `biased;`: without `--cfg tokio_unstable` tokio picks the first branch at
                    // random (see kns_sim::aio); with it, both spellings are reproducible.
                    tokio::select! {
                        biased;
                        r = s.read(&mut buf) => got += r.unwrap(),
                        () = sleep => got += 1_000_000,
                    }
                }
                log.borrow_mut().push((aio::now().unwrap(), k, i, got));
            });
        }
    }
    assert!(asim.run_until_tasks_done_except(1, Duration::from_secs(10)));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for hop in asim.sim().trace() {
        hop.to_string().hash(&mut h);
    }
    log.borrow().hash(&mut h);
    (h.finish(), asim.sim().trace().len())
}

#[test]
fn same_seed_same_trace() {
    let (a, hops) = racing_clients(42);
    assert!(hops > 500, "{hops} trace events");
    assert_eq!(racing_clients(42).0, a, "seed 42 gave two different traces");
    assert_ne!(racing_clients(43).0, a, "another seed changes ports and sequence numbers");
}

#[test]
fn a_thousand_pods_each_run_a_task() {
    let (sim, p) = cluster(9, &[100; 10]);
    let mut asim = AsyncSim::new(sim);
    asim.spawn_in(p.pod(0, 0), async {
        let sock = UdpSocket::bind("0.0.0.0:53").await.unwrap();
        let mut buf = [0u8; 64];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            sock.send_to(&buf[..n], from).await.unwrap();
        }
    });
    let mut handles = Vec::new();
    for k in 0..10 {
        for i in 0..100 {
            if (k, i) == (0, 0) {
                continue;
            }
            handles.push(asim.spawn_in(p.pod(k, i), async move {
                tokio::time::sleep(Duration::from_millis((i * 7 % 50) as u64)).await;
                let sock = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                let id = (k * 100 + i) as u16;
                let mut buf = [0u8; 2];
                // The server's socket queues 16 datagrams: like a DNS client, retry on silence.
                for attempt in 1.. {
                    sock.send_to(&id.to_be_bytes(), sa(pod_addr(0, 0), 53)).await.unwrap();
                    let wait = Duration::from_millis(100);
                    if let Ok(r) = tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
                        return (r.unwrap().0, u16::from_be_bytes(buf) == id, attempt);
                    }
                }
                unreachable!()
            }));
        }
    }
    assert_eq!(asim.task_count(), 1000);
    assert!(asim.run_until_tasks_done_except(1, Duration::from_secs(60)));
    let results: Vec<_> = handles.iter().map(|h| h.try_take().unwrap().unwrap()).collect();
    assert!(results.iter().all(|&(n, same, _)| n == 2 && same));
    let retried = results.iter().filter(|r| r.2 > 1).count();
    assert!(retried > 0 && retried < 999, "{retried} clients had to retry");
    assert!(asim.now() < Time::from_secs(5), "{}", asim.now());
}

#[test]
fn l4_proxy_with_copy_bidirectional_is_the_only_way_to_the_backend() {
    let (mut sim, p) = cluster(10, &[1, 2]);
    let (client, proxy, backend) = (p.pod(0, 0), p.pod(1, 0), p.pod(1, 1));
    let proxy_ip = pod_addr(1, 0);
    // A hand-built sim has no policy agent: an iptables rule admits only the proxy (the
    // aio_proxy example does this with a NetworkPolicy in a living cluster).
    iptables(&mut sim, backend, &format!("-A INPUT -p tcp --dport 8080 ! -s {proxy_ip} -j DROP"));
    let mut asim = AsyncSim::new(sim);
    asim.spawn_in(backend, echo_server(8080));
    asim.spawn_in(proxy, async move {
        let listener = TcpListener::bind("0.0.0.0:9000").await.unwrap();
        loop {
            let (mut inbound, _) = listener.accept().await.unwrap();
            aio::spawn(async move {
                let mut outbound = TcpStream::connect(sa(pod_addr(1, 1), 8080)).await.unwrap();
                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await.unwrap()
            })
            .unwrap();
        }
    });
    let (via_proxy, direct) = asim
        .block_on(
            client,
            async {
                let mut s = TcpStream::connect(sa(pod_addr(1, 0), 9000)).await.unwrap();
                s.write_all(b"through the proxy").await.unwrap();
                s.shutdown().await.unwrap();
                let mut back = Vec::new();
                s.read_to_end(&mut back).await.unwrap();
                let direct = tokio::time::timeout(
                    Duration::from_secs(3),
                    TcpStream::connect(sa(pod_addr(1, 1), 8080)),
                )
                .await;
                (back, direct.is_err())
            },
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(via_proxy, b"through the proxy");
    assert!(direct, "the backend drops the client's SYNs");
}

#[test]
fn sub_millisecond_link_latency_is_seen_exactly_by_both_clocks() {
    let (mut sim, p) = cluster(12, &[2]);
    let (client, server) = (p.pod(0, 0), p.pod(0, 1));
    let params =
        kns_sim::net::LinkParams { latency: Duration::from_micros(150), ..Default::default() };
    // The client's veth, both ends: 150 µs each way on each of its two hops.
    sim.link_set_params(client, "eth0", params.clone()).unwrap();
    sim.link_set_params(p.nodes[0], "veth0", params).unwrap();
    let mut asim = AsyncSim::new(sim);
    asim.spawn_in(server, async {
        let sock = UdpSocket::bind("0.0.0.0:7").await.unwrap();
        let mut buf = [0u8; 16];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            sock.send_to(&buf[..n], from).await.unwrap();
        }
    });
    let rtts = asim
        .block_on(
            client,
            async {
                let sock = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                let mut out = Vec::new();
                for _ in 0..3 {
                    let (t0, i0) = (aio::now().unwrap(), tokio::time::Instant::now());
                    sock.send_to(b"x", sa(pod_addr(0, 1), 7)).await.unwrap();
                    let mut buf = [0u8; 16];
                    sock.recv_from(&mut buf).await.unwrap();
                    out.push((aio::now().unwrap().saturating_since(t0), i0.elapsed()));
                }
                out
            },
            Duration::from_secs(5),
        )
        .unwrap();
    // The first exchange also waits for ARP (one more round trip on the slow link).
    assert_eq!(rtts[1], (Duration::from_micros(300), Duration::from_micros(300)));
    assert_eq!(rtts[2], rtts[1]);
    assert_eq!(rtts[0].0, rtts[0].1);
}

#[test]
fn aborted_tasks_are_dropped_and_report_cancelled() {
    let (sim, p) = cluster(13, &[1]);
    let pod = p.pod(0, 0);
    let mut asim = AsyncSim::new(sim);
    let sleeper = asim.spawn_in(pod, async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        "woke"
    });
    let outcome = asim
        .block_on(
            pod,
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                sleeper.abort();
                sleeper.await
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(outcome.unwrap_err().is_cancelled());
    assert_eq!(asim.task_count(), 0);
    assert_eq!(asim.now(), Time::from_secs(1));
    // Inside a task the pod is known; outside a run there is neither pod nor clock.
    let inside = asim.block_on(pod, async { aio::pod() }, Duration::from_secs(1)).unwrap();
    assert_eq!(inside, Some(pod));
    assert!(aio::pod().is_none() && aio::now().is_none());
}

/// 64 `select!`s whose two branches are both ready at once, in a fresh world with `seed`;
/// returns which branch each picked.
fn select_choices(seed: u64, biased: bool) -> Vec<u8> {
    let (sim, p) = cluster(seed, &[1]);
    let mut asim = AsyncSim::new(sim);
    asim.block_on(
        p.pod(0, 0),
        async move {
            let mut picks = Vec::new();
            for _ in 0..64 {
                let pick = if biased {
                    tokio::select! {
                        biased;
                        a = std::future::ready(0u8) => a,
                        b = std::future::ready(1u8) => b,
                    }
                } else {
                    tokio::select! {
                        a = std::future::ready(0u8) => a,
                        b = std::future::ready(1u8) => b,
                    }
                };
                picks.push(pick);
                // Across a timer tick too: the generator is per runtime entry.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            picks
        },
        Duration::from_secs(1),
    )
    .unwrap()
}

/// What tokio's `select!` does in our runtime (tokio 1.54, `macros/select.rs`): without
/// `biased;` it starts at `thread_rng_n(branches)`, a thread-local generator that every entry
/// into the runtime reseeds from the runtime's seed generator. That generator is seeded from
/// `RandomState` (the OS) unless the runtime was built with `Builder::rng_seed`, which exists
/// only with `--cfg tokio_unstable`; `AsyncSim` then seeds it from the scenario seed.
#[test]
fn select_is_reproducible_when_biased_or_when_tokio_is_seeded() {
    // `biased;` polls in source order: always the first ready branch, in every build.
    assert_eq!(select_choices(5, true), vec![0u8; 64]);
    let a = select_choices(5, false);
    let b = select_choices(5, false);
    assert!(a.contains(&0) && a.contains(&1), "the start branch is drawn at random: {a:?}");
    if aio::SELECT_IS_SEEDED {
        assert_eq!(a, b, "built with --cfg tokio_unstable: the same seed picks the same way");
    } else {
        // Two runtimes draw OS-seeded generators: 64 coin flips agree with chance 2^-64.
        assert_ne!(a, b, "without --cfg tokio_unstable unbiased select! is not reproducible");
    }
}
