//! Cluster DNS in the living demo cluster: the kube-dns pod serves, pods resolve through the
//! kube-dns Service with kubelet's resolv.conf, outside names go to the upstream.

use std::net::{IpAddr, SocketAddr};

use kns_core::flow::Protocol;
use kns_core::manifest::load_str;
use kns_sim::cluster::{ClusterNet, ClusterOptions, Source};
use kns_sim::dns::{LookupError, Rcode, RecordType};
use kns_sim::stack::apps::{ProbeConfig, ProbeOutcome};

const DEMO: &str = include_str!("../../examples/manifests/demo.yaml");

fn demo() -> ClusterNet {
    let c = load_str("demo.yaml", DEMO).expect("the demo loads").cluster;
    ClusterNet::build(c, ClusterOptions::default()).expect("the demo builds")
}

fn pod(net: &ClusterNet, reference: &str) -> Source {
    let c = net.cluster();
    let name = reference.split_once('/').unwrap();
    let ns = c.namespace_by_name(name.0).unwrap().id;
    let p = c.pods.iter().find(|p| p.namespace == ns && p.name.starts_with(name.1)).unwrap();
    Source::Pod(p.id)
}

fn svc_ip(net: &ClusterNet, ns: &str, name: &str) -> IpAddr {
    net.cluster().service_by_name(ns, name).and_then(|s| s.cluster_ip).unwrap()
}

fn resolve(net: &mut ClusterNet, from: Source, name: &str) -> Vec<IpAddr> {
    let l = net.lookup(from, name).expect("the lookup runs");
    match l.result {
        Ok(a) => a.addresses,
        Err(e) => panic!("{name}: {e}\n{}", l.text),
    }
}

#[test]
fn short_namespaced_and_full_service_names_resolve_to_the_cluster_ip() {
    let mut net = demo();
    assert!(net.dns_server().is_some(), "the kube-dns pod runs the DNS server");
    let web = pod(&net, "frontend/web");
    let ip = svc_ip(&net, "frontend", "web");
    for name in ["web", "web.frontend", "web.frontend.svc.cluster.local"] {
        assert_eq!(resolve(&mut net, web, name), vec![ip], "{name}");
    }
    // From another namespace the short name is not the same Service.
    let api_ip = svc_ip(&net, "backend", "api");
    assert_eq!(resolve(&mut net, web, "api.backend"), vec![api_ip]);
    // The backend namespace's default-deny leaves DNS to kube-dns open: it works through DNAT.
    let api = pod(&net, "backend/api");
    assert_eq!(resolve(&mut net, api, "api"), vec![api_ip]);
    // The search walk is visible: `web` is found on the first candidate.
    let l = net.lookup(web, "web").unwrap();
    let first = &l.queries[0];
    assert_eq!(first.server, SocketAddr::new(net.dns_service_ip().unwrap(), 53));
    assert_eq!(
        first.query.question().unwrap().name.trim_end_matches('.'),
        "web.frontend.svc.cluster.local"
    );
    let served = net.dns_server().unwrap().core().stats();
    assert!(served.udp_queries > 0, "{served:?}");
}

#[test]
fn outside_names_resolve_through_the_upstream_and_unknown_names_fail() {
    let mut net = demo();
    let web = pod(&net, "frontend/web");
    let want: IpAddr = "203.0.113.10".parse().unwrap();
    assert_eq!(resolve(&mut net, web, "example.com"), vec![want]);
    assert_eq!(resolve(&mut net, Source::Internet, "example.com"), vec![want]);
    let l = net.lookup(web, "nothing-here").unwrap();
    assert_eq!(l.result.unwrap_err(), LookupError::HostNotFound, "{}", l.text);
}

#[test]
fn dig_answers_like_dig() {
    let mut net = demo();
    let web = pod(&net, "frontend/web");
    let (text, answer) = net.dig(web, "api.backend.svc.cluster.local", RecordType::A).unwrap();
    let answer = answer.expect("an answer");
    assert_eq!(answer.rcode, Rcode::NoError);
    let ip = svc_ip(&net, "backend", "api");
    assert!(text.contains(";; ANSWER SECTION:"), "{text}");
    assert!(text.contains(&ip.to_string()), "{text}");
    let (text, answer) = net.dig(web, "missing.backend.svc.cluster.local", RecordType::A).unwrap();
    assert_eq!(answer.unwrap().rcode, Rcode::NxDomain, "{text}");
    assert!(text.contains("NXDOMAIN"), "{text}");
}

#[test]
fn a_resolved_service_answers_from_a_backend_and_dns_follows_a_dns_pod_restart() {
    let mut net = demo();
    let web = pod(&net, "frontend/web");
    let ip = resolve(&mut net, web, "web")[0];
    let out =
        net.probe(web, SocketAddr::new(ip, 80), Protocol::Tcp, ProbeConfig::default()).unwrap();
    let ProbeOutcome::Connected { reply: Some(name), .. } = out.outcome else {
        panic!("{:?}", out.outcome)
    };
    assert!(name.trim().starts_with("web-"), "{name}");
    let Source::Pod(dns) = pod(&net, "kube-system/coredns") else { unreachable!() };
    net.restart_pod(dns).unwrap();
    assert!(net.dns_server().is_some());
    assert_eq!(resolve(&mut net, web, "web"), vec![ip]);
}
