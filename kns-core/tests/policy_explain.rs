//! Exact explanations for representative verdicts: the text is part of the interface.

mod common;

use common::*;
use kns_core::flow::{Flow, PortProtocol, Protocol::*};
use kns_core::model::{Cluster, PolicyId, Selector};
use kns_core::policy::{PolicyEngine, ReferenceEngine, Side, Verdict};
use kns_core::testing::ClusterBuilder;

/// x/a and y/b; y has `allow-x` (ingress from namespace ns=x on 80/TCP) and `deny-all`.
fn cluster() -> Cluster {
    let mut b = ClusterBuilder::new();
    let x = b.namespace("x", &[("ns", "x")]);
    let y = b.namespace("y", &[("ns", "y")]);
    b.pod(x, "a", &[("app", "a")], &[("http", 80, Tcp)]);
    b.pod(y, "b", &[("app", "b")], &[("http", 80, Tcp)]);
    let from_x = rule(vec![namespaces(sel(&[("ns", "x")]))], vec![port(80, Tcp)]);
    b.policy(y, "allow-x", Selector::everything(), INGRESS, vec![from_x], vec![]);
    b.policy(y, "deny-all", Selector::everything(), INGRESS, vec![], vec![]);
    b.policy(
        x,
        "egress-any-port",
        sel(&[("app", "a")]),
        EGRESS,
        vec![],
        vec![rule(vec![block("203.0.113.0/24", &["203.0.113.128/25"])], vec![])],
    );
    b.build()
}

fn explain(c: &Cluster, from: &str, to: &str, port_text: &str) -> (Verdict, String) {
    let port: PortProtocol = port_text.parse().expect("port");
    let flow = Flow { src: end(c, from), dst: end(c, to), port };
    let verdict = ReferenceEngine.evaluate(c, &flow);
    let text = verdict.explain(c, &flow);
    (verdict, text)
}

#[test]
fn ingress_allows_but_egress_denies() {
    let c = cluster();
    let (verdict, text) = explain(&c, "x/a", "y/b", "80/TCP");
    assert_eq!(
        text,
        "DENIED x/a -> y/b 80/TCP\n  \
         egress (x/a): isolated by x/egress-any-port; no egress rule of these policies allows y/b on 80/TCP\n  \
         ingress (y/b): isolated by y/allow-x, y/deny-all; allowed by y/allow-x ingress rule #1, peer #1 (namespaceSelector ns=x), port #1 (80/TCP)"
    );
    // x/a's egress policy only admits 203.0.113.0/24, so the connection is denied.
    assert!(!verdict.allowed);
    assert_eq!(
        verdict.ingress,
        Side::Allowed {
            policy: PolicyId(0),
            rule: 0,
            peer: Some(0),
            port: Some(0),
            selecting: vec![PolicyId(0), PolicyId(1)],
        }
    );
    assert_eq!(verdict.egress, Side::Denied { selecting: vec![PolicyId(2)] });
}

#[test]
fn denied_external_source() {
    let c = cluster();
    let (verdict, text) = explain(&c, "10.9.9.9", "y/b", "80/TCP");
    assert!(!verdict.allowed);
    assert_eq!(
        text,
        "DENIED 10.9.9.9 -> y/b 80/TCP\n  \
         egress (10.9.9.9): outside the cluster — no NetworkPolicy applies on this side\n  \
         ingress (y/b): isolated by y/allow-x, y/deny-all; no ingress rule of these policies allows 10.9.9.9 on 80/TCP"
    );
}

#[test]
fn not_isolated_and_ip_block_with_any_port() {
    let c = cluster();
    let (verdict, text) = explain(&c, "x/a", "203.0.113.7", "443/TCP");
    assert!(verdict.allowed);
    assert_eq!(
        text,
        "ALLOWED x/a -> 203.0.113.7 443/TCP\n  \
         egress (x/a): isolated by x/egress-any-port; allowed by x/egress-any-port egress rule #1, peer #1 (ipBlock 203.0.113.0/24 except 203.0.113.128/25), any port\n  \
         ingress (203.0.113.7): outside the cluster — no NetworkPolicy applies on this side"
    );
    let (verdict, text) = explain(&c, "y/b", "x/a", "80/TCP");
    assert!(verdict.allowed);
    assert_eq!(
        text,
        "ALLOWED y/b -> x/a 80/TCP\n  \
         egress (y/b): not isolated — no NetworkPolicy with Egress selects y/b\n  \
         ingress (x/a): not isolated — no NetworkPolicy with Ingress selects x/a"
    );
}

#[test]
fn same_pod_and_unexplained() {
    let c = cluster();
    let (verdict, text) = explain(&c, "y/b", "y/b", "80/TCP");
    assert_eq!(verdict, Verdict { allowed: true, egress: Side::SamePod, ingress: Side::SamePod });
    assert_eq!(
        text,
        "ALLOWED y/b -> y/b 80/TCP\n  \
         egress (y/b): same pod — a pod may always reach itself; policy is not consulted\n  \
         ingress (y/b): same pod — a pod may always reach itself; policy is not consulted"
    );
    let flow =
        Flow { src: end(&c, "x/a"), dst: end(&c, "y/b"), port: "81/UDP".parse().expect("port") };
    assert_eq!(
        Verdict::unexplained(false).explain(&c, &flow),
        "DENIED x/a -> y/b 81/UDP\n  \
         egress (x/a): denied by the engine, which gives no explanation\n  \
         ingress (y/b): denied by the engine, which gives no explanation"
    );
}

#[test]
fn describes_ranges_names_and_both_selectors() {
    let mut b = ClusterBuilder::new();
    let x = b.namespace("x", &[]);
    b.pod(x, "a", &[], &[("http", 80, Tcp)]);
    b.pod(x, "b", &[("app", "b")], &[]);
    let r = rule(
        vec![block("192.0.2.0/24", &[]), pods_in(Selector::everything(), sel(&[("app", "b")]))],
        vec![range(1000, 2000, Udp), named("http", Tcp)],
    );
    b.policy(x, "p", sel(&[("app", "a")]), INGRESS, vec![], vec![]);
    b.policy(x, "q", Selector::everything(), INGRESS, vec![r], vec![]);
    let c = b.build();
    let (_, text) = explain(&c, "x/b", "x/a", "80/TCP");
    assert_eq!(
        text.lines().nth(2),
        Some(
            "  ingress (x/a): isolated by x/q; allowed by x/q ingress rule #1, peer #2 (namespaceSelector <all>, podSelector app=b), port #2 (http/TCP)"
        )
    );
    let (_, text) = explain(&c, "192.0.2.1", "x/a", "1500/UDP");
    assert_eq!(
        text.lines().nth(2),
        Some(
            "  ingress (x/a): isolated by x/q; allowed by x/q ingress rule #1, peer #1 (ipBlock 192.0.2.0/24), port #1 (1000-2000/UDP)"
        )
    );
}

#[test]
fn own_node() {
    let c = cluster();
    let (verdict, text) = explain(&c, "192.168.0.10", "y/b", "8080/TCP");
    assert!(verdict.allowed);
    assert_eq!(verdict.ingress, Side::OwnNode);
    assert_eq!(
        text,
        "ALLOWED 192.168.0.10 -> y/b 8080/TCP\n  \
         egress (192.168.0.10): outside the cluster — no NetworkPolicy applies on this side\n  \
         ingress (y/b): 192.168.0.10 is y/b's own node — traffic between a pod and its node is always allowed"
    );
}
