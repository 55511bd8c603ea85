//! NetworkPolicy semantics, one rule of the specification per test, on a small cluster:
//!
//! - namespace `x` (team=blue): `x/web` (app=web, tier=front), `x/db` (app=db, tier=back)
//! - namespace `y` (team=red): `y/web` (app=web), `y/plain` (no labels)
//! - namespace `z` (no labels): `z/tool` (app=tool)
//!
//! Every pod serves `http` on 80/TCP, except `y/web`, whose `http` is 8080/TCP; `x/db` also
//! serves `pg` on 5432/TCP and `dns` on 53/UDP. Pod IPs are 10.0.0.1 (`x/web`) to 10.0.0.5
//! (`z/tool`), in that order.

mod common;

use common::*;
use kns_core::flow::Protocol::*;
use kns_core::model::{Cluster, NamespaceId, Operator::*, PolicyRule, PolicyTypes, Selector};
use kns_core::testing::ClusterBuilder;

const X: NamespaceId = NamespaceId(0);
const Y: NamespaceId = NamespaceId(1);
const Z: NamespaceId = NamespaceId(2);

/// The cluster described in the module documentation.
fn base() -> ClusterBuilder {
    let mut b = ClusterBuilder::new();
    let x = b.namespace("x", &[("team", "blue")]);
    let y = b.namespace("y", &[("team", "red")]);
    let z = b.namespace("z", &[]);
    b.pod(x, "web", &[("app", "web"), ("tier", "front")], &[("http", 80, Tcp)]);
    b.pod(
        x,
        "db",
        &[("app", "db"), ("tier", "back")],
        &[("http", 80, Tcp), ("pg", 5432, Tcp), ("dns", 53, Udp)],
    );
    b.pod(y, "web", &[("app", "web")], &[("http", 8080, Tcp)]);
    b.pod(y, "plain", &[], &[("http", 80, Tcp)]);
    b.pod(z, "tool", &[("app", "tool")], &[("http", 80, Tcp)]);
    b
}

/// A policy as (namespace, podSelector, types, ingress, egress).
type Spec = (NamespaceId, Selector, PolicyTypes, Vec<PolicyRule>, Vec<PolicyRule>);

/// The base cluster with these policies, named np1, np2, ...
fn with(policies: Vec<Spec>) -> Cluster {
    let mut b = base();
    for (i, (ns, selector, types, ingress, egress)) in policies.into_iter().enumerate() {
        b.policy(ns, &format!("np{}", i + 1), selector, types, ingress, egress);
    }
    b.build()
}

fn all() -> Selector {
    Selector::everything()
}

#[test]
fn no_policy_allows_everything() {
    let c = with(vec![]);
    check(
        &c,
        &[
            ("x/web", "y/web", "8080/TCP", true),
            ("z/tool", "x/db", "53/UDP", true),
            ("203.0.113.1", "x/db", "5432/TCP", true),
            ("x/db", "203.0.113.1", "443/TCP", true),
        ],
    );
}

#[test]
fn empty_pod_selector_isolates_the_whole_namespace_only() {
    let c = with(vec![(X, all(), INGRESS, vec![], vec![])]);
    check(
        &c,
        &[
            ("y/web", "x/web", "80/TCP", false),
            ("x/db", "x/web", "80/TCP", false),
            ("y/web", "x/db", "80/TCP", false),
            // Namespace y is untouched, and x's egress stays open.
            ("x/web", "y/plain", "80/TCP", true),
            ("z/tool", "y/plain", "80/TCP", true),
        ],
    );
}

#[test]
fn pod_selector_isolates_only_matching_pods() {
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, vec![], vec![])]);
    check(&c, &[("x/web", "x/db", "80/TCP", false), ("x/db", "x/web", "80/TCP", true)]);
}

#[test]
fn a_policy_never_selects_pods_of_other_namespaces() {
    // app=web exists in x and y; a policy in y selects only y's.
    let c = with(vec![(Y, sel(&[("app", "web")]), INGRESS, vec![], vec![])]);
    check(&c, &[("z/tool", "y/web", "8080/TCP", false), ("z/tool", "x/web", "80/TCP", true)]);
}

#[test]
fn isolation_is_per_direction() {
    // Egress-only deny: ingress to the pod stays open; ingress-only deny: egress stays open.
    let egress_only = with(vec![(X, sel(&[("app", "web")]), EGRESS, vec![], vec![])]);
    check(
        &egress_only,
        &[("x/web", "y/plain", "80/TCP", false), ("y/plain", "x/web", "80/TCP", true)],
    );
    let ingress_only = with(vec![(X, sel(&[("app", "web")]), INGRESS, vec![], vec![])]);
    check(
        &ingress_only,
        &[("x/web", "y/plain", "80/TCP", true), ("y/plain", "x/web", "80/TCP", false)],
    );
}

#[test]
fn rules_of_a_direction_not_in_policy_types_are_ignored() {
    // Explicit policyTypes [Ingress] with an egress rule: the egress rule is inert, egress open.
    let deny_all_egress_rule = vec![rule(vec![block("192.0.2.0/24", &[])], vec![])];
    let c = with(vec![(
        X,
        sel(&[("app", "web")]),
        INGRESS,
        vec![rule(vec![], vec![])],
        deny_all_egress_rule,
    )]);
    check(&c, &[("x/web", "y/plain", "80/TCP", true), ("y/plain", "x/web", "80/TCP", true)]);
}

#[test]
fn defaulted_types_with_egress_rules_isolate_both_ways() {
    // Omitted policyTypes with egress rules default to [Ingress, Egress].
    let to_y = vec![rule(vec![namespaces(sel(&[("team", "red")]))], vec![])];
    let c = with(vec![(X, sel(&[("app", "web")]), BOTH, vec![], to_y)]);
    check(
        &c,
        &[
            ("x/web", "y/plain", "80/TCP", true),
            ("x/web", "z/tool", "80/TCP", false),
            ("y/plain", "x/web", "80/TCP", false),
        ],
    );
}

#[test]
fn empty_rule_list_denies_but_empty_rule_allows() {
    let deny = with(vec![(X, all(), INGRESS, vec![], vec![])]);
    let allow = with(vec![(X, all(), INGRESS, vec![rule(vec![], vec![])], vec![])]);
    check(
        &deny,
        &[("z/tool", "x/web", "80/TCP", false), ("203.0.113.9", "x/web", "80/TCP", false)],
    );
    check(
        &allow,
        &[("z/tool", "x/web", "80/TCP", true), ("203.0.113.9", "x/web", "9999/UDP", true)],
    );
}

#[test]
fn pod_selector_peer_means_the_policys_own_namespace() {
    let from_web = vec![rule(vec![pods(sel(&[("app", "web")]))], vec![])];
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, from_web, vec![])]);
    check(&c, &[("x/web", "x/db", "80/TCP", true), ("y/web", "x/db", "80/TCP", false)]);
}

#[test]
fn namespace_selector_alone_means_every_pod_there() {
    let from_red = vec![rule(vec![namespaces(sel(&[("team", "red")]))], vec![])];
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, from_red, vec![])]);
    check(
        &c,
        &[
            ("y/web", "x/db", "80/TCP", true),
            ("y/plain", "x/db", "80/TCP", true),
            ("x/web", "x/db", "80/TCP", false),
            ("z/tool", "x/db", "80/TCP", false),
        ],
    );
}

#[test]
fn both_selectors_in_one_peer_are_and_two_peers_are_or() {
    let and = vec![rule(vec![pods_in(sel(&[("team", "red")]), sel(&[("app", "web")]))], vec![])];
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, and, vec![])]);
    check(
        &c,
        &[
            ("y/web", "x/db", "80/TCP", true),
            ("y/plain", "x/db", "80/TCP", false),
            ("x/web", "x/db", "80/TCP", false),
        ],
    );
    let or =
        vec![rule(vec![namespaces(sel(&[("team", "red")])), pods(sel(&[("app", "web")]))], vec![])];
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, or, vec![])]);
    check(
        &c,
        &[
            ("y/web", "x/db", "80/TCP", true),
            ("y/plain", "x/db", "80/TCP", true),
            ("x/web", "x/db", "80/TCP", true),
            ("z/tool", "x/db", "80/TCP", false),
        ],
    );
}

#[test]
fn match_expressions_follow_each_operator() {
    let case = |selector| {
        let r = vec![rule(vec![pods_in(all(), selector)], vec![])];
        with(vec![(X, sel(&[("app", "db")]), INGRESS, r, vec![])])
    };
    // In: app in (web, tool).
    check(
        &case(expr("app", In, &["web", "tool"])),
        &[
            ("y/web", "x/db", "80/TCP", true),
            ("z/tool", "x/db", "80/TCP", true),
            ("y/plain", "x/db", "80/TCP", false),
        ],
    );
    // NotIn also matches pods without the key.
    check(
        &case(expr("app", NotIn, &["web"])),
        &[
            ("y/web", "x/db", "80/TCP", false),
            ("z/tool", "x/db", "80/TCP", true),
            ("y/plain", "x/db", "80/TCP", true),
        ],
    );
    check(
        &case(expr("tier", Exists, &[])),
        &[("x/web", "x/db", "80/TCP", true), ("y/web", "x/db", "80/TCP", false)],
    );
    check(
        &case(expr("app", DoesNotExist, &[])),
        &[("y/plain", "x/db", "80/TCP", true), ("y/web", "x/db", "80/TCP", false)],
    );
}

#[test]
fn ip_block_with_except_for_external_sources_and_destinations() {
    let from_net = vec![rule(vec![block("198.51.100.0/24", &["198.51.100.128/25"])], vec![])];
    let to_net = vec![rule(vec![block("198.51.100.0/24", &["198.51.100.128/25"])], vec![])];
    let c = with(vec![(X, sel(&[("app", "db")]), BOTH, from_net, to_net)]);
    check(
        &c,
        &[
            ("198.51.100.7", "x/db", "5432/TCP", true),
            ("198.51.100.200", "x/db", "5432/TCP", false),
            ("203.0.113.1", "x/db", "5432/TCP", false),
            ("x/db", "198.51.100.127", "443/TCP", true),
            ("x/db", "198.51.100.128", "443/TCP", false),
            // Selector peers never match addresses outside the cluster, and ipBlocks here miss pods.
            ("y/web", "x/db", "80/TCP", false),
        ],
    );
}

#[test]
fn ip_block_matches_pods_by_their_ips_and_addresses_of_pods_are_pods() {
    // 10.0.0.3 is y/web; the block admits it but excepts z/tool (10.0.0.5).
    let from = vec![rule(vec![block("10.0.0.0/29", &["10.0.0.5/32"])], vec![])];
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, from, vec![])]);
    check(
        &c,
        &[
            ("y/web", "x/db", "80/TCP", true),
            ("z/tool", "x/db", "80/TCP", false),
            // An "external" address owned by a pod is that pod.
            ("10.0.0.3", "x/db", "80/TCP", true),
            ("10.0.0.5", "x/db", "80/TCP", false),
        ],
    );
    // And a selector peer matches a pod named by its address.
    let from_web = vec![rule(vec![pods_in(all(), sel(&[("app", "web")]))], vec![])];
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, from_web, vec![])]);
    check(&c, &[("10.0.0.3", "x/db", "80/TCP", true), ("10.0.0.4", "x/db", "80/TCP", false)]);
}

#[test]
fn ip_block_matches_a_pod_when_any_of_its_ips_is_inside() {
    let mut b = base();
    let from = vec![rule(vec![block("fd00::/64", &[])], vec![])];
    b.policy(X, "v6-only", sel(&[("app", "db")]), INGRESS, from, vec![]);
    let mut c = b.build();
    let plain = c.pod_by_ref("y/plain").expect("pod").id.index();
    c.pods[plain].ips.push("fd00::4".parse().expect("literal"));
    check(&c, &[("y/plain", "x/db", "80/TCP", true), ("y/web", "x/db", "80/TCP", false)]);
}

#[test]
fn numeric_ports_and_protocol_must_match() {
    let only = vec![rule(vec![], vec![port(5432, Tcp)])];
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, only, vec![])]);
    check(
        &c,
        &[
            ("x/web", "x/db", "5432/TCP", true),
            ("x/web", "x/db", "5432/UDP", false),
            ("x/web", "x/db", "80/TCP", false),
        ],
    );
    let udp_any = vec![rule(vec![], vec![any_port(Udp)])];
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, udp_any, vec![])]);
    check(
        &c,
        &[
            ("x/web", "x/db", "53/UDP", true),
            ("x/web", "x/db", "9/UDP", true),
            ("x/web", "x/db", "53/TCP", false),
            ("x/web", "x/db", "53/SCTP", false),
        ],
    );
}

#[test]
fn end_port_is_an_inclusive_range() {
    let r = vec![rule(vec![], vec![range(8000, 8002, Tcp)])];
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, r, vec![])]);
    check(
        &c,
        &[
            ("x/web", "x/db", "7999/TCP", false),
            ("x/web", "x/db", "8000/TCP", true),
            ("x/web", "x/db", "8001/TCP", true),
            ("x/web", "x/db", "8002/TCP", true),
            ("x/web", "x/db", "8003/TCP", false),
            ("x/web", "x/db", "8001/UDP", false),
        ],
    );
}

#[test]
fn named_ports_resolve_against_each_destination() {
    // x/web names 80 "http"; y/web names 8080 "http".
    let ingress = vec![rule(vec![], vec![named("http", Tcp)])];
    let c = with(vec![
        (X, sel(&[("app", "web")]), INGRESS, ingress.clone(), vec![]),
        (Y, sel(&[("app", "web")]), INGRESS, ingress, vec![]),
    ]);
    check(
        &c,
        &[
            ("z/tool", "x/web", "80/TCP", true),
            ("z/tool", "x/web", "8080/TCP", false),
            ("z/tool", "y/web", "8080/TCP", true),
            ("z/tool", "y/web", "80/TCP", false),
        ],
    );
    // Egress by name resolves against the destination too, and never matches outside.
    let egress = vec![rule(vec![], vec![named("http", Tcp)])];
    let c = with(vec![(Z, all(), EGRESS, vec![], egress)]);
    check(
        &c,
        &[
            ("z/tool", "x/web", "80/TCP", true),
            ("z/tool", "y/web", "8080/TCP", true),
            ("z/tool", "y/web", "80/TCP", false),
            ("z/tool", "203.0.113.1", "80/TCP", false),
        ],
    );
    // A name with the wrong protocol resolves to nothing.
    let udp_name = vec![rule(vec![], vec![named("http", Udp)])];
    let c = with(vec![(X, sel(&[("app", "web")]), INGRESS, udp_name, vec![])]);
    check(&c, &[("z/tool", "x/web", "80/TCP", false), ("z/tool", "x/web", "80/UDP", false)]);
}

#[test]
fn a_rule_needs_a_peer_and_a_port() {
    let r = vec![rule(vec![pods(sel(&[("app", "web")]))], vec![port(5432, Tcp)])];
    let c = with(vec![(X, sel(&[("app", "db")]), INGRESS, r, vec![])]);
    check(
        &c,
        &[
            ("x/web", "x/db", "5432/TCP", true),
            ("x/web", "x/db", "80/TCP", false),
            ("y/web", "x/db", "5432/TCP", false),
        ],
    );
}

#[test]
fn policies_and_rules_are_a_union() {
    let c = with(vec![
        (
            X,
            sel(&[("app", "db")]),
            INGRESS,
            vec![rule(vec![pods(sel(&[("app", "web")]))], vec![port(80, Tcp)])],
            vec![],
        ),
        (
            X,
            all(),
            INGRESS,
            vec![rule(vec![namespaces(sel(&[("team", "red")]))], vec![port(5432, Tcp)])],
            vec![],
        ),
    ]);
    check(
        &c,
        &[
            ("x/web", "x/db", "80/TCP", true),
            ("y/plain", "x/db", "5432/TCP", true),
            ("x/web", "x/db", "5432/TCP", false),
            ("y/plain", "x/db", "80/TCP", false),
            // The second policy isolates x/web too.
            ("z/tool", "x/web", "80/TCP", false),
        ],
    );
}

#[test]
fn egress_and_ingress_are_both_required() {
    let c = with(vec![
        (
            X,
            sel(&[("app", "web")]),
            EGRESS,
            vec![],
            vec![rule(vec![namespaces(sel(&[("team", "red")]))], vec![])],
        ),
        (
            Y,
            sel(&[("app", "web")]),
            INGRESS,
            vec![rule(vec![pods_in(all(), sel(&[("tier", "back")]))], vec![])],
            vec![],
        ),
    ]);
    check(
        &c,
        &[
            // x/web may send to y, but y/web only admits tier=back.
            ("x/web", "y/web", "8080/TCP", false),
            ("x/web", "y/plain", "80/TCP", true),
            ("x/db", "y/web", "8080/TCP", true),
        ],
    );
}

#[test]
fn a_pod_may_always_reach_itself() {
    let c = with(vec![(X, all(), BOTH, vec![], vec![])]);
    check(
        &c,
        &[
            ("x/web", "x/web", "80/TCP", true),
            ("x/web", "x/db", "80/TCP", false),
            // By address too.
            ("10.0.0.1", "x/web", "80/TCP", true),
        ],
    );
}

#[test]
fn host_network_pods_are_treated_as_pods() {
    let mut c = with(vec![(X, sel(&[("app", "db")]), INGRESS, vec![], vec![])]);
    let db = c.pod_by_ref("x/db").expect("pod").id.index();
    c.pods[db].host_network = true;
    check(&c, &[("x/web", "x/db", "80/TCP", false), ("x/db", "x/web", "80/TCP", true)]);
}

#[test]
fn traffic_between_a_pod_and_its_own_node_is_always_allowed() {
    // The builder's only node, which runs every pod, is 192.168.0.10.
    let c = with(vec![(X, all(), BOTH, vec![], vec![])]);
    check(
        &c,
        &[
            ("192.168.0.10", "x/web", "80/TCP", true),
            ("x/web", "192.168.0.10", "10250/TCP", true),
            ("192.168.0.11", "x/web", "80/TCP", false),
            ("x/web", "192.168.0.11", "80/TCP", false),
        ],
    );
}
