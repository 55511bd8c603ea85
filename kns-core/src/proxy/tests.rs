//! Tests of the service table and the four proxy modes, on a small cluster loaded from YAML.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::manifest::load_str;
use crate::model::Cluster;
use crate::testing::service_cluster;

/// Two nodes; web-0 and web-1 on n1, web-2 on n2 (its `http` port is 9090), web-3 on n2 not
/// ready. Services of every kind select `app: web`.
const CLUSTER: &str = r#"
apiVersion: kns.dev/v1alpha1
kind: Cluster
metadata: {name: t}
spec:
  nodes:
  - {name: n1, address: 192.168.0.10, podCIDR: 10.244.0.0/24}
  - {name: n2, address: 192.168.0.11, podCIDR: 10.244.1.0/24}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec: {nodeName: n2, containers: [{name: c, image: i, ports: [{name: http, containerPort: 9090}]}]}
status: {podIP: 10.244.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: web-3, labels: {app: web}}
spec: {nodeName: n2, containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}
status:
  podIP: 10.244.1.3
  conditions: [{type: Ready, status: "False"}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.20
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: admin, port: 81, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  clusterIP: 10.96.0.21
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: np-cluster}
spec:
  type: NodePort
  clusterIP: 10.96.0.22
  selector: {app: web}
  ports: [{port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: np-local}
spec:
  type: NodePort
  clusterIP: 10.96.0.23
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, targetPort: http, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.24
  externalIPs: [203.0.113.50]
  selector: {app: web}
  ports: [{port: 443, targetPort: http, nodePort: 30443}]
---
apiVersion: v1
kind: Service
metadata: {name: internal-local}
spec:
  clusterIP: 10.96.0.25
  internalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  clusterIP: 10.96.0.26
  selector: {app: nothing}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: manual}
spec:
  clusterIP: 10.96.0.27
  ports: [{name: db, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: manual-1, labels: {kubernetes.io/service-name: manual}}
addressType: IPv4
endpoints:
- addresses: [192.168.5.1]
- addresses: [192.168.5.2]
  conditions: {ready: false}
ports: [{name: db, port: 15432}]
"#;

fn cluster() -> Cluster {
    load_str("t.yaml", CLUSTER).unwrap_or_else(|e| panic!("{e:?}")).cluster
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn node(c: &Cluster, name: &str) -> NodeId {
    c.node_by_name(name).unwrap().id
}

/// A connection from `src` to `dst` handled on `node`.
fn conn(c: &Cluster, src: &str, dst: &str, node_name: &str, local: bool) -> Connection {
    Connection {
        src: sa(src),
        dst: sa(dst),
        protocol: Protocol::Tcp,
        node: node(c, node_name),
        from_local_pod: local,
    }
}

fn forward(o: Outcome) -> Decision {
    match o {
        Outcome::Forward(d) => d,
        other => panic!("expected a backend, got {other:?}"),
    }
}

fn all_modes(seed: u64) -> Vec<Box<dyn ServiceProxy>> {
    [ProxyMode::Iptables, ProxyMode::Ipvs, ProxyMode::Nftables, ProxyMode::Maglev]
        .into_iter()
        .map(|m| proxy_for(m, seed))
        .collect()
}

/// Backend counts over `n` connections from distinct client ports of 10.244.0.9.
fn spread(
    p: &mut dyn ServiceProxy,
    t: &ServiceTable,
    c: &Cluster,
    dst: &str,
    n: u16,
) -> BTreeMap<SocketAddr, u32> {
    let mut counts = BTreeMap::new();
    for port in 0..n {
        let k = conn(c, &format!("10.244.0.9:{}", 10_000 + port), dst, "n1", true);
        *counts.entry(forward(p.select(t, &k, Duration::ZERO)).backend).or_insert(0) += 1;
    }
    counts
}

fn chi_square(counts: &BTreeMap<SocketAddr, u32>, n: u32) -> f64 {
    let expected = f64::from(n) / counts.len() as f64;
    counts.values().map(|&o| (f64::from(o) - expected).powi(2) / expected).sum()
}

#[test]
fn table_lists_frontends_in_rule_order_with_ready_backends() {
    let c = cluster();
    let t = ServiceTable::from_cluster(&c);
    let text = t.to_string();
    let lines: Vec<&str> = text.lines().collect();
    // Services by name; per port the cluster IP then external and load-balancer addresses;
    // node ports last.
    assert_eq!(
        lines,
        [
            "10.96.0.26:80/TCP (cluster IP) default/empty -> []",
            "10.96.0.25:80/TCP (cluster IP) default/internal-local -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
            "10.96.0.1:443/TCP (cluster IP) default/kubernetes:https -> []",
            "10.96.0.24:443/TCP (cluster IP) default/lb -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
            "203.0.113.50:443/TCP (external IP) default/lb -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
            "192.168.0.240:443/TCP (loadbalancer IP) default/lb -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
            "10.96.0.27:5432/TCP (cluster IP) default/manual:db -> [192.168.5.1:15432]",
            "10.96.0.22:80/TCP (cluster IP) default/np-cluster -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
            "10.96.0.23:80/TCP (cluster IP) default/np-local -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
            "10.96.0.21:80/TCP (cluster IP) default/sticky -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
            "10.96.0.20:80/TCP (cluster IP) default/web:http -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
            "10.96.0.20:81/TCP (cluster IP) default/web:admin -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:8080]",
            "<node>:30443/TCP (nodePort) default/lb -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
            "<node>:30080/TCP (nodePort) default/np-cluster -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
            "<node>:30081/TCP (nodePort) default/np-local -> [10.244.0.2:8080, 10.244.0.3:8080, 10.244.1.2:9090]",
        ]
    );
}

#[test]
fn frontends_are_found_by_address_and_node_ports_only_on_the_receiving_node() {
    let c = cluster();
    let t = ServiceTable::from_cluster(&c);
    let n1 = node(&c, "n1");
    let kind = |dst: &str| t.lookup(sa(dst), Protocol::Tcp, n1).map(|f| f.kind);
    assert_eq!(kind("10.96.0.20:80"), Some(FrontendKind::ClusterIp));
    assert_eq!(kind("192.168.0.10:30080"), Some(FrontendKind::NodePort));
    assert_eq!(kind("192.168.0.240:443"), Some(FrontendKind::LoadBalancer));
    assert_eq!(kind("203.0.113.50:443"), Some(FrontendKind::ExternalIp));
    // Node n2's address is not this node's; a wrong port or protocol is no Service.
    assert_eq!(kind("192.168.0.11:30080"), None);
    assert_eq!(kind("10.96.0.20:8080"), None);
    assert_eq!(t.lookup(sa("10.96.0.20:80"), Protocol::Udp, n1), None);
    // The linear match agrees with the hash lookup on every frontend.
    for f in t.frontends() {
        let ip = f.addr.unwrap_or(IpAddr::V4("192.168.0.10".parse().unwrap()));
        let dst = SocketAddr::new(ip, f.port);
        assert!(t.matches(f, dst, f.protocol, n1));
        assert_eq!(t.lookup(dst, f.protocol, n1), Some(f));
    }
}

#[test]
fn every_mode_spreads_connections_evenly_over_ready_backends() {
    let c = cluster();
    let t = ServiceTable::from_cluster(&c);
    let n = 30_000;
    for mut p in all_modes(7) {
        let counts = spread(p.as_mut(), &t, &c, "10.96.0.20:80", n as u16);
        let keys: Vec<String> = counts.keys().map(ToString::to_string).collect();
        // web-3 is not ready: never chosen. web-2's named port resolves to 9090.
        assert_eq!(
            keys,
            ["10.244.0.2:8080", "10.244.0.3:8080", "10.244.1.2:9090"],
            "{:?}",
            p.mode()
        );
        // Chi-square with 2 degrees of freedom: 13.8 is the 0.1% critical value.
        let x2 = chi_square(&counts, n);
        assert!(x2 < 13.8, "{:?}: {counts:?} chi2 {x2}", p.mode());
        assert_eq!(p.stats().connections, u64::from(n));
    }
}

#[test]
fn round_robin_is_exact_and_least_connection_follows_releases() {
    let c = cluster();
    let t = ServiceTable::from_cluster(&c);
    let mut rr = IpvsProxy::new(Scheduler::RoundRobin);
    let counts = spread(&mut rr, &t, &c, "10.96.0.20:80", 9);
    assert!(counts.values().all(|&n| n == 3), "{counts:?}");

    let mut lc = IpvsProxy::new(Scheduler::LeastConnection);
    let first: Vec<Decision> = (0..3)
        .map(|i| {
            let k = conn(&c, &format!("10.244.0.9:{}", 1000 + i), "10.96.0.20:80", "n1", true);
            forward(lc.select(&t, &k, Duration::ZERO))
        })
        .collect();
    let mut got: Vec<SocketAddr> = first.iter().map(|d| d.backend).collect();
    got.sort();
    assert_eq!(got, t.service(first[0].vs).backends.iter().map(|b| b.addr).collect::<Vec<_>>());
    // The second backend's connection closes: it now has the fewest and gets the next one.
    let freed = first[1].backend;
    lc.release(&t, first[1].vs, freed);
    assert_eq!(lc.active(&t, first[1].vs, freed), 0);
    let k = conn(&c, "10.244.0.9:2000", "10.96.0.20:80", "n1", true);
    let d = forward(lc.select(&t, &k, Duration::ZERO));
    assert_eq!((d.backend, d.choice), (freed, Choice::LeastConnection { active: 0 }));
}

#[test]
fn client_ip_affinity_sticks_then_expires() {
    let c = cluster();
    let t = ServiceTable::from_cluster(&c);
    for mut p in all_modes(11) {
        let at = |s: u64| Duration::from_secs(s);
        let k = |port: u16| conn(&c, &format!("10.244.0.9:{port}"), "10.96.0.21:80", "n1", true);
        let first = forward(p.select(&t, &k(1000), at(0)));
        // New connections from the same client within the timeout (measured from the last
        // one) keep the backend, whatever the mode would have chosen.
        for (i, s) in [10u64, 60, 115].into_iter().enumerate() {
            let d = forward(p.select(&t, &k(1001 + i as u16), at(s)));
            assert_eq!((d.backend, d.choice), (first.backend, Choice::Affinity), "{:?}", p.mode());
        }
        // After more than 60 s of silence the binding is gone: over many clients' expired
        // bindings, the modes choose afresh (and so spread again).
        let mut after = BTreeMap::new();
        for client in 0..60u16 {
            let src = format!("10.244.0.{}:5000", 10 + client);
            let k = conn(&c, &src, "10.96.0.21:80", "n1", true);
            let d0 = forward(p.select(&t, &k, at(1000)));
            let k2 = Connection { src: sa(&format!("10.244.0.{}:5001", 10 + client)), ..k };
            let d1 = forward(p.select(&t, &k2, at(1061)));
            assert_ne!(d1.choice, Choice::Affinity, "{:?}", p.mode());
            *after.entry(d1.backend != d0.backend).or_insert(0) += 1;
        }
        let moved = after.get(&true).copied().unwrap_or(0);
        // Maglev hashes the 5-tuple: a new source port moves about 2/3 of clients too.
        assert!(moved > 10, "{:?}: {after:?}", p.mode());
    }
}

#[test]
fn external_traffic_policy_local_keeps_the_source_and_stays_on_the_node() {
    let c = cluster();
    let t = ServiceTable::from_cluster(&c);
    for mut p in all_modes(3) {
        for port in 0..50u16 {
            let src = format!("198.51.100.7:{}", 40_000 + port);
            // Local: n1 has web-0 and web-1, n2 only web-2. No SNAT.
            let d = forward(p.select(
                &t,
                &conn(&c, &src, "192.168.0.10:30081", "n1", false),
                Duration::ZERO,
            ));
            assert!(matches!(d.backend.ip().to_string().as_str(), "10.244.0.2" | "10.244.0.3"));
            assert_eq!((d.kind, d.snat), (FrontendKind::NodePort, None));
            let d = forward(p.select(
                &t,
                &conn(&c, &src, "192.168.0.11:30081", "n2", false),
                Duration::ZERO,
            ));
            assert_eq!((d.backend, d.snat), (sa("10.244.1.2:9090"), None));
            // Cluster: masqueraded, any backend.
            let d = forward(p.select(
                &t,
                &conn(&c, &src, "192.168.0.11:30080", "n2", false),
                Duration::ZERO,
            ));
            assert_eq!(d.snat, Some(SnatReason::ExternalCluster));
            // Load-balancer and external IPs are external traffic too.
            let d = forward(p.select(
                &t,
                &conn(&c, &src, "192.168.0.240:443", "n1", false),
                Duration::ZERO,
            ));
            assert_eq!(
                (d.kind, d.snat),
                (FrontendKind::LoadBalancer, Some(SnatReason::ExternalCluster))
            );
        }
        // Cluster policy reaches backends on both nodes.
        let mut seen = BTreeMap::new();
        for port in 0..60u16 {
            let k = conn(
                &c,
                &format!("198.51.100.7:{}", 50_000 + port),
                "192.168.0.10:30080",
                "n1",
                false,
            );
            *seen.entry(forward(p.select(&t, &k, Duration::ZERO)).backend).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 3, "{:?}: {seen:?}", p.mode());
    }
}

#[test]
fn local_policies_without_local_endpoints_drop_and_empty_services_refuse() {
    let mut c = cluster();
    // web-2 (the only ready pod on n2) stops being ready.
    let web2 = c.pod_by_name("default", "web-2").unwrap().id;
    c.pods[web2.index()].ready = false;
    let t = ServiceTable::from_cluster(&c);
    for mut p in all_modes(5) {
        let out = p.select(
            &t,
            &conn(&c, "198.51.100.7:1", "192.168.0.11:30081", "n2", false),
            Duration::ZERO,
        );
        assert!(matches!(out, Outcome::NoLocalEndpoints { .. }), "{out:?}");
        // internalTrafficPolicy Local: a pod on n2 finds no local endpoint; one on n1 does.
        let out =
            p.select(&t, &conn(&c, "10.244.1.9:1", "10.96.0.25:80", "n2", true), Duration::ZERO);
        assert!(matches!(out, Outcome::NoLocalEndpoints { .. }), "{out:?}");
        let d = forward(p.select(
            &t,
            &conn(&c, "10.244.0.9:1", "10.96.0.25:80", "n1", true),
            Duration::ZERO,
        ));
        assert_eq!(d.backend.ip().to_string().rsplit_once('.').unwrap().0, "10.244.0");
        // No endpoints at all: refused.
        let out =
            p.select(&t, &conn(&c, "10.244.0.9:1", "10.96.0.26:80", "n1", true), Duration::ZERO);
        let Outcome::NoEndpoints { vs } = out else { panic!("{out:?}") };
        assert_eq!(t.service(vs).name, "default/empty");
        // Not a Service at all.
        let out =
            p.select(&t, &conn(&c, "10.244.0.9:1", "10.244.0.2:8080", "n1", true), Duration::ZERO);
        assert_eq!(out, Outcome::NotAService);
    }
}

#[test]
fn snat_for_off_cluster_sources_and_hairpin() {
    let c = cluster();
    let t = ServiceTable::from_cluster(&c);
    for mut p in all_modes(9) {
        // The node itself connecting to a cluster IP: masqueraded. The manual slice's
        // not-ready endpoint is never chosen.
        let d = forward(p.select(
            &t,
            &conn(&c, "192.168.0.10:4000", "10.96.0.27:5432", "n1", false),
            Duration::ZERO,
        ));
        assert_eq!(
            (d.backend, d.snat),
            (sa("192.168.5.1:15432"), Some(SnatReason::OffClusterSource))
        );
        // A pod that lands on itself through its Service is masqueraded (hairpin); one that
        // lands elsewhere is not.
        let mut hairpin = 0;
        for port in 0..100u16 {
            let d = forward(p.select(
                &t,
                &conn(&c, &format!("10.244.0.2:{}", 20_000 + port), "10.96.0.20:80", "n1", true),
                Duration::ZERO,
            ));
            if d.backend.ip() == "10.244.0.2".parse::<IpAddr>().unwrap() {
                assert_eq!(d.snat, Some(SnatReason::Hairpin));
                hairpin += 1;
            } else {
                assert_eq!(d.snat, None);
            }
        }
        assert!(hairpin > 10, "{:?}: {hairpin}", p.mode());
        let text = d.explain(&t);
        assert!(text.starts_with("10.96.0.27:5432/TCP (cluster IP of default/manual:db) -> DNAT 192.168.5.1:15432 by "), "{text}");
        assert!(text.ends_with("; SNAT: source outside the pod network"), "{text}");
    }
}

#[test]
fn the_same_seed_gives_the_same_choices() {
    let c = cluster();
    let t = ServiceTable::from_cluster(&c);
    let run = |seed| {
        let mut out = Vec::new();
        for mut p in all_modes(seed) {
            for port in 0..200u16 {
                let k =
                    conn(&c, &format!("10.244.0.9:{}", 30_000 + port), "10.96.0.20:80", "n1", true);
                out.push(forward(p.select(&t, &k, Duration::ZERO)).backend);
            }
        }
        out
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn maglev_table_fills_evenly() {
    for n in [1usize, 2, 3, 10, 37] {
        let names: Vec<String> = (0..n).map(|i| format!("10.244.0.{}:8080", i + 2)).collect();
        let table = maglev_table(&names, 65_537);
        let mut counts = vec![0u32; n];
        for &e in &table {
            counts[e as usize] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(max - min <= 1, "{n}: {min}..{max}");
    }
    assert!(maglev_table(&[], 251).is_empty());
}

/// The fraction of `flows` whose backend differs between the two proxies' tables.
fn moved(before: &ServiceTable, after: &ServiceTable, c: &Cluster, flows: u32, size: u32) -> f64 {
    let (mut p0, mut p1) = (MaglevProxy::new(size), MaglevProxy::new(size));
    let mut changed = 0;
    for i in 0..flows {
        let src =
            format!("10.{}.{}.{}:{}", 1 + i % 200, (i / 200) % 250, i % 250, 1024 + i % 60_000);
        let k =
            Connection { src: sa(&src), ..conn(c, "10.1.1.1:1", "10.96.0.11:80", "node-1", false) };
        let b0 = forward(p0.select(before, &k, Duration::ZERO)).backend;
        let b1 = forward(p1.select(after, &k, Duration::ZERO)).backend;
        changed += u32::from(b0 != b1);
    }
    f64::from(changed) / f64::from(flows)
}

#[test]
fn maglev_moves_about_one_nth_of_flows_when_a_backend_goes() {
    for (n, size) in [(10usize, 65_537u32), (5, 1_021)] {
        let mut c = service_cluster(1, n, 2);
        let before = ServiceTable::from_cluster(&c);
        c.pods[3].ready = false;
        let after = ServiceTable::from_cluster(&c);
        assert_eq!(after.services()[0].backends.len(), n - 1);
        let f = moved(&before, &after, &c, 20_000, size);
        let ideal = 1.0 / n as f64;
        // At least the removed backend's share moves; Maglev adds only a little more.
        assert!(
            f > ideal * 0.9 && f < ideal + 0.05,
            "n={n} M={size}: moved {f:.4}, ideal {ideal:.4}"
        );
    }
}

#[test]
fn iptables_mode_cost_grows_linearly_with_services() {
    let mut per_connection = Vec::new();
    for services in [10usize, 100, 1_000] {
        let c = service_cluster(services, 3, 2);
        let t = ServiceTable::from_cluster(&c);
        let mut ipt = IptablesProxy::new(1);
        let mut nft = NftablesProxy::new(1);
        let conns = 500u32;
        for i in 0..conns {
            // Services are hit in a fixed spread over the whole table.
            let s = (i as usize * 7919) % services;
            let dst = t.services()[s].cluster_ip.unwrap();
            let k = Connection {
                src: sa(&format!("10.244.200.1:{}", 1024 + i)),
                dst: SocketAddr::new(dst, 80),
                protocol: Protocol::Tcp,
                node: NodeId(0),
                from_local_pod: true,
            };
            forward(ipt.select(&t, &k, Duration::ZERO));
            forward(nft.select(&t, &k, Duration::ZERO));
        }
        assert_eq!(nft.stats().evaluations, 2 * u64::from(conns), "nftables: two lookups each");
        per_connection.push(ipt.stats().evaluations as f64 / f64::from(conns));
    }
    // About half the KUBE-SERVICES rules plus ~2 backend rules per connection.
    for (services, avg) in [10.0, 100.0, 1_000.0].iter().zip(&per_connection) {
        assert!((avg - services / 2.0).abs() < services * 0.1 + 3.0, "{services}: {avg}");
    }
    let ratio = per_connection[2] / per_connection[1];
    assert!((8.0..12.0).contains(&ratio), "{per_connection:?}");
}

#[test]
fn maglev_tables_are_pinned_by_the_fixed_hash() {
    let names: Vec<String> =
        ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"].map(String::from).to_vec();
    let table = maglev_table(&names, 13);
    // The same on every run, platform and Rust release (no std `DefaultHasher`): each backend
    // owns 4 or 5 of the 13 slots.
    assert_eq!(table, [1, 0, 0, 2, 2, 0, 0, 1, 2, 1, 1, 2, 0]);
}
