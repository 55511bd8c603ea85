//! Async pods in a living cluster ([`AsyncSim::from_cluster`]): names through the cluster DNS
//! with each pod's resolv.conf, Services through kube-proxy, NetworkPolicy through the policy
//! agent, while tokio code runs in the pods.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kns_core::manifest::load_str;
use kns_sim::aio::{self, AsyncSim, TcpListener, TcpStream, UdpSocket, lookup_host};
use kns_sim::cluster::{ClusterNet, ClusterOptions};
use kns_sim::dns::ResolvConf;
use kns_sim::net::NetnsId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WEB: &str = include_str!("../../examples/manifests/aio-web.yaml");
const PROXY: &str = include_str!("../../examples/manifests/aio-proxy.yaml");

fn living(yaml: &str, seed: u64) -> AsyncSim {
    let cluster = load_str("test.yaml", yaml).expect("the manifest loads").cluster;
    let net = ClusterNet::build(cluster, ClusterOptions { seed, ..ClusterOptions::default() })
        .expect("the cluster builds");
    AsyncSim::from_cluster(net)
}

/// The namespaces of the running pods whose name starts with `prefix`, in name order.
fn pods(asim: &AsyncSim, namespace: &str, prefix: &str) -> Vec<(NetnsId, IpAddr, String)> {
    let net = asim.cluster().expect("a living cluster");
    let c = net.cluster();
    let ns = c.namespace_by_name(namespace).expect("the namespace exists").id;
    let mut out: Vec<_> = c
        .pods
        .iter()
        .filter(|p| p.namespace == ns && p.name.starts_with(prefix))
        .map(|p| (net.pod_ns(p.id).expect("running"), p.ip, p.name.clone()))
        .collect();
    out.sort_by(|a, b| a.2.cmp(&b.2));
    out
}

fn pod(asim: &AsyncSim, namespace: &str, name: &str) -> (NetnsId, IpAddr) {
    let found = pods(asim, namespace, name);
    (found[0].0, found[0].1)
}

fn node_of(asim: &AsyncSim, ip: IpAddr) -> String {
    let net = asim.cluster().unwrap();
    let c = net.cluster();
    let p = c.pods.iter().find(|p| p.ip == ip).unwrap();
    c.nodes[p.node.index()].name.clone()
}

fn service_ip(asim: &AsyncSim, namespace: &str, name: &str) -> IpAddr {
    let net = asim.cluster().unwrap();
    net.cluster().service_by_name(namespace, name).and_then(|s| s.cluster_ip).unwrap()
}

/// Copies every connection back to itself until EOF.
async fn echo_server(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        aio::spawn(async move {
            let (mut r, mut w) = stream.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        })?;
    }
}

/// Writes `msg` and reads the same number of bytes back.
async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(msg).await?;
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).await?;
    Ok(back)
}

#[test]
fn service_names_resolve_through_the_cluster_dns_with_the_pods_resolv_conf() {
    let mut asim = living(WEB, 1);
    let (client, _) = pod(&asim, "prod", "client");
    let web = service_ip(&asim, "prod", "web");
    let before = asim.cluster_mut().unwrap().dns_server().unwrap().core().stats().udp_queries;
    let (answers, unknown, took) = asim
        .block_on(
            client,
            async {
                let mut answers = Vec::new();
                let mut took = Vec::new();
                for name in [
                    "web:80",
                    "web.prod:80",
                    "web.prod.svc:80",
                    "web.prod.svc.cluster.local:80",
                    "web.prod.svc.cluster.local.:80",
                ] {
                    let t0 = aio::now().unwrap();
                    answers.push(lookup_host(name).await.unwrap().collect::<Vec<_>>());
                    took.push(aio::now().unwrap().saturating_since(t0));
                }
                let unknown = lookup_host("nothing-here:80").await.map(|_| ()).unwrap_err();
                (answers, unknown.to_string(), took)
            },
            Duration::from_secs(60),
        )
        .unwrap();
    for a in &answers {
        assert_eq!(a, &[SocketAddr::new(web, 80)]);
    }
    assert!(unknown.contains("Name or service not known"), "{unknown}");
    assert!(took.iter().all(|t| *t < Duration::from_millis(10)), "{took:?}");
    // Real queries (A and AAAA per name) reached the kube-dns pod, walking the search path
    // with kubelet's ndots:5: `web` answers on the first search domain, `web.prod` on the
    // second, `web.prod.svc` on the third; `web.prod.svc.cluster.local` has 4 dots, fewer than
    // 5, so it is tried as is only after three NXDOMAINs; the FQDN is asked once; the unknown
    // name tries all four candidates.
    let after = asim.cluster_mut().unwrap().dns_server().unwrap().core().stats().udp_queries;
    assert_eq!(after - before, 2 * (1 + 2 + 3 + 4 + 1 + 4));
}

#[test]
fn connect_by_service_name_reaches_a_backend_through_kube_proxy() {
    let mut asim = living(WEB, 2);
    let backends = pods(&asim, "prod", "web-");
    assert_eq!(backends.len(), 4);
    for (ns, _, _) in &backends {
        asim.spawn_in(*ns, echo_server(8080));
    }
    let (client, _) = pod(&asim, "prod", "client");
    let echoed = asim
        .block_on(
            client,
            async {
                let mut out = Vec::new();
                for name in ["web:80", "web.prod:80", "web.prod.svc.cluster.local:80"] {
                    let mut s = TcpStream::connect(name).await.unwrap();
                    out.push((s.peer_addr().unwrap().port(), round_trip(&mut s, b"hi").await));
                }
                out
            },
            Duration::from_secs(60),
        )
        .unwrap();
    for (port, back) in echoed {
        assert_eq!(port, 80, "the socket's peer is the Service, DNAT is invisible to it");
        assert_eq!(back.unwrap(), b"hi");
    }
}

#[test]
fn a_lookup_whose_queries_are_dropped_times_out_in_virtual_time_after_its_retries() {
    let mut asim = living(WEB, 3);
    let (client, _) = pod(&asim, "prod", "client");
    // A policy that lets the client send nothing: every query is dropped on the way out.
    let deny = format!(
        "{WEB}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: \
         client-egress\n  namespace: prod\nspec:\n  podSelector:\n    matchLabels:\n      app: \
         client\n  policyTypes:\n  - Egress\n"
    );
    let policies = load_str("deny.yaml", &deny).unwrap().cluster.policies;
    asim.cluster_mut().unwrap().set_policies(policies);
    let (error, took) = asim
        .block_on(
            client,
            async {
                let t0 = aio::now().unwrap();
                let e = lookup_host("web:80").await.map(|_| ()).unwrap_err();
                (e.to_string(), aio::now().unwrap().saturating_since(t0))
            },
            Duration::from_secs(60),
        )
        .unwrap();
    assert!(error.contains("Temporary failure in name resolution"), "{error}");
    // glibc: one nameserver, `attempts:2`, `timeout:5`; a timeout ends the search walk.
    assert_eq!(took, Duration::from_secs(10));
}

#[test]
fn a_resolver_conf_given_by_hand_overrides_the_cluster_and_refusal_moves_on_at_once() {
    let mut asim = living(WEB, 4);
    let (client, _) = pod(&asim, "prod", "client");
    let (web0, web0_ip, _) = pods(&asim, "prod", "web-")[0].clone();
    let dns = asim.cluster().unwrap().dns_service_ip().unwrap();
    // The first nameserver is a pod where nobody listens on 53 (ICMP port unreachable).
    let mut conf = ResolvConf::cluster_first(dns, "prod", "cluster.local");
    conf.nameservers.insert(0, web0_ip);
    let mut resolver = aio::DnsResolver::new(7);
    resolver.set_conf(client, conf);
    asim.set_resolver(resolver);
    let _ = web0;
    let (addrs, took) = asim
        .block_on(
            client,
            async {
                let t0 = aio::now().unwrap();
                let a = lookup_host("web:80").await.unwrap().collect::<Vec<_>>();
                (a, aio::now().unwrap().saturating_since(t0))
            },
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(addrs, [SocketAddr::new(service_ip(&asim, "prod", "web"), 80)]);
    assert!(took < Duration::from_millis(10), "the refusal cost no timeout: {took:?}");
}

#[test]
fn tcp_and_udp_echo_across_nodes() {
    let mut asim = living(PROXY, 5);
    let (client, _) = pod(&asim, "shop", "client");
    let (proxy, proxy_ip) = pod(&asim, "shop", "proxy");
    assert_ne!(node_of(&asim, proxy_ip), node_of(&asim, pod(&asim, "shop", "client").1));
    asim.spawn_in(proxy, echo_server(7));
    asim.spawn_in(proxy, async {
        let sock = UdpSocket::bind("0.0.0.0:7").await?;
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await?;
            sock.send_to(&buf[..n], from).await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let (tcp, udp) = asim
        .block_on(
            client,
            async move {
                let mut s = TcpStream::connect((proxy_ip, 7)).await.unwrap();
                let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
                // Written and read at once: the socket buffers are far smaller than 100 kB.
                let (mut r, mut w) = s.split();
                let mut back = vec![0u8; big.len()];
                let (wrote, read) = tokio::join!(w.write_all(&big), r.read_exact(&mut back));
                let tcp = wrote.is_ok() && read.is_ok() && back == big;
                let u = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                u.connect((proxy_ip, 7)).await.unwrap();
                let mut got = Vec::new();
                for i in 0..5u8 {
                    u.send(&[i; 32]).await.unwrap();
                    let mut buf = [0u8; 64];
                    let n = u.recv(&mut buf).await.unwrap();
                    got.push(buf[..n].to_vec());
                }
                (tcp, got)
            },
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(tcp, "100 kB echoed intact across nodes");
    assert_eq!(udp, (0..5u8).map(|i| vec![i; 32]).collect::<Vec<_>>());
}

#[test]
fn refused_by_the_pod_versus_filtered_by_a_network_policy() {
    let mut asim = living(PROXY, 6);
    let (client, _) = pod(&asim, "shop", "client");
    let (proxy, proxy_ip) = pod(&asim, "shop", "proxy");
    let (backend, backend_ip) = pod(&asim, "shop", "backend");
    let _ = (proxy, backend);
    let results = asim
        .block_on(
            client,
            async move {
                let mut out = Vec::new();
                // The proxy pod has no policy and nobody on 8080: RST, at once.
                // The backend admits only the proxy: the SYNs are dropped, the connect times out.
                for (ip, limit) in [(proxy_ip, 5), (backend_ip, 5)] {
                    let t0 = aio::now().unwrap();
                    let r = tokio::time::timeout(
                        Duration::from_secs(limit),
                        TcpStream::connect((ip, 8080)),
                    )
                    .await;
                    let kind = match r {
                        Ok(Ok(_)) => None,
                        Ok(Err(e)) => Some(e.kind()),
                        Err(_) => Some(ErrorKind::TimedOut),
                    };
                    out.push((kind, aio::now().unwrap().saturating_since(t0)));
                }
                out
            },
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(results[0].0, Some(ErrorKind::ConnectionRefused));
    assert!(results[0].1 < Duration::from_millis(10));
    assert_eq!(results[1], (Some(ErrorKind::TimedOut), Duration::from_secs(5)));
    let dropped = asim.cluster().unwrap().policy_agent().unwrap().stats().dropped;
    assert_eq!(dropped, 3, "the policy agent dropped the SYN and its retries at 1 s and 3 s");
}

#[test]
fn a_policy_change_spares_a_live_connection_and_binds_new_ones() {
    let mut asim = living(PROXY, 7);
    let (client, _) = pod(&asim, "shop", "client");
    let (proxy, proxy_ip) = pod(&asim, "shop", "proxy");
    asim.spawn_in(proxy, echo_server(8080));
    let handle = asim.spawn_in(client, async move {
        let mut live = TcpStream::connect((proxy_ip, 8080)).await.unwrap();
        assert_eq!(round_trip(&mut live, b"before").await.unwrap(), b"before");
        // The test changes the policies during this sleep.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = round_trip(&mut live, b"after").await.map_err(|e| e.kind());
        let fresh =
            tokio::time::timeout(Duration::from_secs(3), TcpStream::connect((proxy_ip, 8080)))
                .await;
        (after, fresh.is_err())
    });
    asim.run_for(Duration::from_secs(1));
    // Now the proxy, too, admits nobody.
    let deny = format!(
        "{PROXY}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: \
         proxy-deny\n  namespace: shop\nspec:\n  podSelector:\n    matchLabels:\n      app: \
         proxy\n  policyTypes:\n  - Ingress\n"
    );
    let policies = load_str("deny.yaml", &deny).unwrap().cluster.policies;
    assert_eq!(policies.len(), 2);
    asim.cluster_mut().unwrap().set_policies(policies);
    asim.wait(&handle, Duration::from_secs(30)).unwrap();
    let (after, fresh_timed_out) = handle.try_take().unwrap().unwrap();
    assert_eq!(after, Ok(b"after".to_vec()), "the established connection survives");
    assert!(fresh_timed_out, "a new connection obeys the new policy");
}

#[test]
fn deleting_a_backend_resets_its_clients_and_takes_it_out_of_the_service() {
    let mut asim = living(WEB, 8);
    let backends = pods(&asim, "prod", "web-");
    for (ns, _, _) in &backends {
        asim.spawn_in(*ns, async {
            let listener = TcpListener::bind("0.0.0.0:8080").await?;
            loop {
                let (mut s, _) = listener.accept().await?;
                let me = s.local_addr()?.ip().to_string();
                aio::spawn(async move {
                    // Says who it is (15 bytes), then echoes.
                    let _ = s.write_all(format!("{me:<15}").as_bytes()).await;
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                })?;
            }
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        });
    }
    async fn who(s: &mut TcpStream) -> IpAddr {
        let mut who = [0u8; 15];
        s.read_exact(&mut who).await.unwrap();
        String::from_utf8_lossy(&who).trim().parse().unwrap()
    }
    let (client, _) = pod(&asim, "prod", "client");
    let seen = std::rc::Rc::new(std::cell::Cell::new(None));
    let live = asim.spawn_in(client, {
        let seen = seen.clone();
        async move {
            let mut s = TcpStream::connect("web:80").await.unwrap();
            seen.set(Some(who(&mut s).await));
            tokio::time::sleep(Duration::from_secs(1)).await;
            round_trip(&mut s, b"still there?").await.map_err(|e| e.kind())
        }
    });
    asim.run_for(Duration::from_millis(500));
    let victim_ip = seen.get().expect("connected within 500 ms");
    let victim = {
        let net = asim.cluster().unwrap();
        net.cluster().pods.iter().find(|p| p.ip == victim_ip).unwrap().id
    };
    assert_eq!(asim.delete_cluster_pod(victim).unwrap(), 2, "the accept loop and the echo");
    asim.wait(&live, Duration::from_secs(5)).unwrap();
    assert_eq!(live.try_take().unwrap().unwrap(), Err(ErrorKind::ConnectionReset));
    let after = asim
        .block_on(
            client,
            async {
                let mut out = std::collections::BTreeSet::new();
                for _ in 0..12 {
                    let mut s = TcpStream::connect("web:80").await.unwrap();
                    out.insert(who(&mut s).await);
                }
                out
            },
            Duration::from_secs(30),
        )
        .unwrap();
    let rest: std::collections::BTreeSet<IpAddr> =
        backends.iter().map(|b| b.1).filter(|ip| *ip != victim_ip).collect();
    assert_eq!(after, rest, "new connections reach exactly the three remaining backends");
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    // A headless Service over 40 pods: 40 A records do not fit in 512 bytes of UDP.
    let many = format!(
        "{WEB}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: many\n  namespace: \
         prod\nspec:\n  replicas: 40\n  selector:\n    matchLabels:\n      app: many\n  \
         template:\n    metadata:\n      labels:\n        app: many\n    spec:\n      \
         containers:\n      - name: c\n        image: example/c:1\n---\napiVersion: v1\nkind: \
         Service\nmetadata:\n  name: many\n  namespace: prod\nspec:\n  clusterIP: None\n  \
         selector:\n    app: many\n  ports:\n  - port: 80\n"
    );
    let mut asim = living(&many, 9);
    let (client, _) = pod(&asim, "prod", "client");
    let addrs = asim
        .block_on(
            client,
            async { lookup_host("many:80").await.unwrap().collect::<Vec<_>>() },
            Duration::from_secs(60),
        )
        .unwrap();
    let mut expected: Vec<SocketAddr> =
        pods(&asim, "prod", "many-").iter().map(|p| SocketAddr::new(p.1, 80)).collect();
    assert_eq!(expected.len(), 40);
    let mut got = addrs.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    let stats = asim.cluster_mut().unwrap().dns_server().unwrap().core().stats();
    assert_eq!((stats.truncated, stats.tcp_queries), (1, 1), "{stats:?}");
}
