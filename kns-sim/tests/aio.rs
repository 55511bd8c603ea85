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
            tokio::io::copy(&mut r, &mut w).await.unwrap();
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
