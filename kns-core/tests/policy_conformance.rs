//! The upstream Kubernetes e2e NetworkPolicy cases (test/e2e/network/netpol), on upstream's
//! topology: namespaces x, y, z with pods a, b, c each, probed on ports 80 and 81.
//!
//! Each case states its policies and its expected reachability the way upstream does: start
//! from all-allowed and deny (or re-allow) pairs by pattern. Upstream runs each case on a
//! subset of the nine pods; here every case runs on all nine, with the expectations that
//! upstream's edits give on the full topology. Upstream ignores a pod reaching itself; kns
//! always allows it, so the tables do too. Cases marked `kns` are not upstream tests.
//!
//! The same cases are written as Kubernetes YAML under `tests/fixtures/conformance/`, with
//! the expected tables beside them; `fixtures_match_the_cases` keeps them in step (run with
//! `KNS_BLESS_FIXTURES=1` to rewrite them after changing a case).

mod common;

use std::path::PathBuf;

use common::reach::{Reach, base};
use common::yaml::{base_yaml, policies_yaml};
use common::*;
use kns_core::flow::{PortProtocol, Protocol::*};
use kns_core::model::{Cluster, NamespaceId, Operator::*, PolicyRule, PolicyTypes, Selector};
use kns_core::policy::{ReferenceEngine, fast_matrix, matrix};
use kns_core::testing::ClusterBuilder;

/// The namespace-name label the API server sets.
const NAME: &str = "kubernetes.io/metadata.name";
const X: NamespaceId = NamespaceId(0);

/// A policy of namespace x as (name, podSelector, policyTypes, ingress, egress).
type CasePolicy = (&'static str, Selector, PolicyTypes, Vec<PolicyRule>, Vec<PolicyRule>);

/// One conformance case.
struct Case {
    /// The fixture file stem.
    file: &'static str,
    /// The upstream test name, or a description prefixed `kns:` for cases of our own.
    title: &'static str,
    /// The policies, as (name, podSelector, policyTypes, ingress, egress), all in namespace x.
    policies: Vec<CasePolicy>,
    /// Expected reachability per probed port.
    expect: Vec<(&'static str, Reach)>,
}

impl Case {
    fn cluster(&self) -> Cluster {
        let mut b: ClusterBuilder = base();
        for (name, selector, types, ingress, egress) in &self.policies {
            b.policy(X, name, selector.clone(), *types, ingress.clone(), egress.clone());
        }
        b.build()
    }
}

fn all() -> Reach {
    Reach::all()
}

fn ingress(name: &'static str, selector: Selector, rules: Vec<PolicyRule>) -> CasePolicy {
    (name, selector, INGRESS, rules, vec![])
}

fn egress(name: &'static str, selector: Selector, rules: Vec<PolicyRule>) -> CasePolicy {
    (name, selector, EGRESS, vec![], rules)
}

fn pod_a() -> Selector {
    sel(&[("pod", "a")])
}

fn every() -> Selector {
    Selector::everything()
}

fn cases() -> Vec<Case> {
    let case = |file, title, policies, expect| Case { file, title, policies, expect };
    vec![
        case(
            "default-deny-ingress",
            "should support a 'default-deny-ingress' policy",
            vec![ingress("deny-ingress", every(), vec![])],
            vec![("80/TCP", all().deny("*", "x/*"))],
        ),
        case(
            "default-deny-all",
            "should support a 'default-deny-all' policy",
            vec![("deny-all", every(), BOTH, vec![], vec![])],
            vec![("80/TCP", all().deny("*", "x/*").deny("x/*", "*"))],
        ),
        case(
            "allow-from-pod-selector",
            "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
            vec![ingress(
                "x-a-allows-x-b",
                pod_a(),
                vec![rule(vec![pods(sel(&[("pod", "b")]))], vec![])],
            )],
            vec![("80/TCP", all().deny("*", "x/a").allow("x/b", "x/a"))],
        ),
        case(
            "allow-ingress-for-target",
            "should enforce policy to allow ingress traffic for a target",
            vec![
                ingress("deny-all", every(), vec![]),
                ingress(
                    "allow-all-to-a",
                    pod_a(),
                    vec![rule(vec![pods_in(every(), every())], vec![])],
                ),
            ],
            vec![("80/TCP", all().deny("*", "x/*").allow("*", "x/a"))],
        ),
        case(
            "allow-from-all-namespaces",
            "should enforce policy to allow ingress traffic from pods in all namespaces",
            vec![ingress(
                "allow-from-another-ns",
                pod_a(),
                vec![rule(vec![namespaces(every())], vec![])],
            )],
            vec![("80/TCP", all())],
        ),
        case(
            "namespace-selector",
            "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
            vec![ingress(
                "allow-client-a-via-ns-selector",
                pod_a(),
                vec![rule(vec![namespaces(sel(&[(NAME, "y")]))], vec![])],
            )],
            vec![("80/TCP", all().deny("x/*", "x/a").deny("z/*", "x/a"))],
        ),
        case(
            "pod-match-expressions",
            "should enforce policy based on PodSelector with MatchExpressions",
            vec![ingress(
                "x-a-allows-x-b",
                pod_a(),
                vec![rule(vec![pods(expr("pod", In, &["b"]))], vec![])],
            )],
            vec![("80/TCP", all().deny("*", "x/a").allow("x/b", "x/a"))],
        ),
        case(
            "namespace-match-expressions",
            "should enforce policy based on NamespaceSelector with MatchExpressions",
            vec![ingress(
                "allow-ns-y-match-selector",
                pod_a(),
                vec![rule(vec![namespaces(expr(NAME, In, &["y"]))], vec![])],
            )],
            vec![("80/TCP", all().deny("x/*", "x/a").deny("z/*", "x/a"))],
        ),
        case(
            "pod-or-namespace",
            "should enforce policy based on PodSelector or NamespaceSelector",
            vec![ingress(
                "allow-ns-y-match-selector",
                pod_a(),
                vec![rule(
                    vec![namespaces(expr(NAME, NotIn, &["x"])), pods(sel(&[("pod", "b")]))],
                    vec![],
                )],
            )],
            vec![("80/TCP", all().deny("x/c", "x/a"))],
        ),
        case(
            "pod-and-namespace",
            "should enforce policy based on PodSelector and NamespaceSelector",
            vec![ingress(
                "allow-ns-y-podselector-and-nsselector",
                pod_a(),
                vec![rule(vec![pods_in(expr(NAME, NotIn, &["x"]), sel(&[("pod", "b")]))], vec![])],
            )],
            vec![("80/TCP", all().deny("*", "x/a").allow("y/b", "x/a").allow("z/b", "x/a"))],
        ),
        case(
            "multiple-pod-and-namespace-selectors",
            "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
            vec![ingress(
                "allow-ns-y-z-pod-b-c",
                pod_a(),
                vec![rule(
                    vec![pods_in(expr(NAME, NotIn, &["x"]), expr("pod", In, &["b", "c"]))],
                    vec![],
                )],
            )],
            vec![("80/TCP", all().deny("x/*", "x/a").deny("y/a", "x/a").deny("z/a", "x/a"))],
        ),
        case(
            "any-pod-selectors",
            "should enforce policy based on any PodSelectors",
            vec![ingress(
                "allow-ns-x-pod-b-c",
                pod_a(),
                vec![rule(vec![pods(sel(&[("pod", "b")])), pods(sel(&[("pod", "c")]))], vec![])],
            )],
            vec![("80/TCP", all().deny("*", "x/a").allow("x/b", "x/a").allow("x/c", "x/a"))],
        ),
        case(
            "ports",
            "should enforce policy based on Ports",
            vec![ingress(
                "allow-client-a-via-ns-selector",
                pod_a(),
                vec![rule(vec![namespaces(sel(&[(NAME, "y")]))], vec![port(81, Tcp)])],
            )],
            vec![
                ("81/TCP", all().deny("x/*", "x/a").deny("z/*", "x/a")),
                ("80/TCP", all().deny("*", "x/a")),
            ],
        ),
        case(
            "stacked-policies",
            "should enforce multiple, stacked policies with overlapping podSelectors",
            vec![
                ingress(
                    "allow-client-a-via-ns-selector",
                    pod_a(),
                    vec![rule(vec![namespaces(sel(&[(NAME, "y")]))], vec![port(81, Tcp)])],
                ),
                ingress(
                    "allow-client-a-via-ns-selector-80",
                    pod_a(),
                    vec![rule(vec![namespaces(sel(&[(NAME, "y")]))], vec![port(80, Tcp)])],
                ),
            ],
            vec![
                ("81/TCP", all().deny("x/*", "x/a").deny("z/*", "x/a")),
                ("80/TCP", all().deny("x/*", "x/a").deny("z/*", "x/a")),
            ],
        ),
        case(
            "allow-all",
            "should support allow-all policy",
            vec![ingress("allow-all", every(), vec![rule(vec![], vec![])])],
            vec![("80/TCP", all()), ("81/TCP", all())],
        ),
        case(
            "named-port-ingress",
            "should allow ingress access on one named port",
            vec![ingress(
                "allow-all",
                every(),
                vec![rule(vec![], vec![named("serve-81-tcp", Tcp)])],
            )],
            vec![("81/TCP", all()), ("80/TCP", all().deny("*", "x/*"))],
        ),
        case(
            "named-port-from-namespace",
            "should allow ingress access from namespace on one named port",
            vec![ingress(
                "allow-client-a-via-ns-selector-80",
                pod_a(),
                vec![rule(vec![namespaces(sel(&[(NAME, "y")]))], vec![named("serve-80-tcp", Tcp)])],
            )],
            vec![
                ("80/TCP", all().deny("x/*", "x/a").deny("z/*", "x/a")),
                ("81/TCP", all().deny("*", "x/a")),
            ],
        ),
        case(
            "named-port-egress",
            "should allow egress access on one named port",
            vec![egress(
                "allow-egress",
                every(),
                vec![rule(vec![], vec![named("serve-80-tcp", Tcp)])],
            )],
            vec![("80/TCP", all()), ("81/TCP", all().deny("x/*", "*"))],
        ),
        case(
            "egress-to-pod-in-namespace",
            "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
            vec![egress(
                "allow-to-ns-y-pod-a",
                pod_a(),
                vec![rule(vec![pods_in(sel(&[(NAME, "y")]), pod_a())], vec![])],
            )],
            vec![("80/TCP", all().deny("x/a", "*").allow("x/a", "y/a"))],
        ),
        case(
            "ingress-by-protocol",
            "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
            vec![ingress(
                "allow-ingress-by-proto",
                pod_a(),
                vec![rule(vec![], vec![any_port(Tcp)])],
            )],
            vec![("80/TCP", all()), ("80/UDP", all().deny("*", "x/a"))],
        ),
        case(
            "egress-allow-all-precedence",
            "should enforce multiple egress policies with egress allow-all policy taking precedence",
            vec![
                egress("allow-egress-port-80", every(), vec![rule(vec![], vec![port(80, Tcp)])]),
                egress("allow-egress", every(), vec![rule(vec![], vec![])]),
            ],
            vec![("81/TCP", all()), ("80/TCP", all())],
        ),
        case(
            "egress-port-80-only",
            "should enforce multiple egress policies with egress allow-all policy taking precedence (first step: port 80 only)",
            vec![egress("allow-egress-port-80", every(), vec![rule(vec![], vec![port(80, Tcp)])])],
            vec![("81/TCP", all().deny("x/*", "*")), ("80/TCP", all())],
        ),
        case(
            "egress-to-cidr",
            "should allow egress access to server in CIDR block",
            vec![egress(
                "allow-client-a-via-cidr-egress-rule",
                pod_a(),
                vec![rule(vec![block("10.0.0.5/32", &[])], vec![])],
            )],
            vec![("80/TCP", all().deny("x/a", "*").allow("x/a", "y/b"))],
        ),
        case(
            "egress-to-cidr-except",
            "should enforce except clause while egress access to server in CIDR block",
            vec![egress(
                "allow-client-a-via-cidr-egress-rule",
                pod_a(),
                vec![rule(vec![block("10.0.0.0/16", &["10.0.0.2/32"])], vec![])],
            )],
            vec![("80/TCP", all().deny("x/a", "x/b"))],
        ),
        case(
            "ingress-and-egress-independent",
            "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
            vec![
                egress("allow-egress-for-target", pod_a(), vec![rule(vec![], vec![])]),
                ingress("deny-ingress-via-label-selector", pod_a(), vec![]),
            ],
            vec![("80/TCP", all().deny("*", "x/a"))],
        ),
        case(
            "sctp-is-not-tcp",
            "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
            vec![
                ingress("deny-ingress", every(), vec![]),
                ingress(
                    "allow-only-sctp-ingress-on-port-81",
                    pod_a(),
                    vec![rule(vec![], vec![port(81, Sctp)])],
                ),
            ],
            vec![
                ("81/TCP", all().deny("*", "x/*")),
                ("81/SCTP", all().deny("*", "x/*").allow("*", "x/a")),
            ],
        ),
        case(
            "udp-is-not-tcp",
            "should not allow access by TCP when a policy specifies only UDP",
            vec![ingress(
                "allow-only-udp-ingress-on-port-81",
                pod_a(),
                vec![rule(vec![], vec![port(81, Udp)])],
            )],
            vec![("81/TCP", all().deny("*", "x/a")), ("81/UDP", all())],
        ),
        case(
            "egress-namespace-not-in",
            "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
            vec![egress(
                "allow-ns-y-match-selector-for-immutable-ns-label",
                pod_a(),
                vec![rule(vec![namespaces(expr(NAME, NotIn, &["y"]))], vec![])],
            )],
            vec![("80/TCP", all().deny("x/a", "y/*"))],
        ),
        case(
            "end-port-range",
            "kns: ingress from namespaces labelled ns=y on the port range 80-81 (endPort)",
            vec![ingress(
                "allow-y-on-80-81",
                pod_a(),
                vec![rule(vec![namespaces(sel(&[("ns", "y")]))], vec![range(80, 81, Tcp)])],
            )],
            vec![
                ("80/TCP", all().deny("x/*", "x/a").deny("z/*", "x/a")),
                ("81/TCP", all().deny("x/*", "x/a").deny("z/*", "x/a")),
                ("80/UDP", all().deny("*", "x/a")),
            ],
        ),
        case(
            "deny-egress-one-pod",
            "kns: deny all egress of x/b only; everything else stays open",
            vec![egress("deny-egress-b", sel(&[("pod", "b")]), vec![])],
            vec![("80/TCP", all().deny("x/b", "*")), ("81/UDP", all().deny("x/b", "*"))],
        ),
    ]
}

#[test]
fn upstream_cases_give_upstream_truth_tables() {
    let mut failures = Vec::new();
    for case in cases() {
        let cluster = case.cluster();
        for (port_text, expected) in &case.expect {
            let port: PortProtocol = port_text.parse().expect("case port");
            let reference = matrix(&ReferenceEngine, &cluster, &[port]);
            let fast = fast_matrix(&cluster, &[port]);
            for (engine, m) in [("reference", &reference), ("fast", &fast)] {
                let got = Reach::from_matrix(&cluster, m, 0);
                if &got != expected {
                    failures.push(format!(
                        "{} ({}), {engine} engine\nexpected:\n{}got:\n{}",
                        case.file,
                        case.title,
                        expected.table(port),
                        got.table(port)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn there_are_enough_cases() {
    let cases = cases();
    let upstream = cases.iter().filter(|c| !c.title.starts_with("kns:")).count();
    assert!(upstream >= 15, "only {upstream} upstream cases");
    let mut files: Vec<&str> = cases.iter().map(|c| c.file).collect();
    files.sort_unstable();
    files.dedup();
    assert_eq!(files.len(), cases.len(), "fixture names must be unique");
}

/// The fixture directory.
fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance")
}

/// Every fixture file and its expected text.
fn rendered() -> Vec<(PathBuf, String)> {
    let dir = fixtures();
    let base_header = "# The upstream NetworkPolicy e2e topology: namespaces x, y, z; pods a, b, c in each.\n\
        # Every pod serves 80 and 81 on TCP, UDP and SCTP (ports named serve-80-tcp etc.).\n\
        # Pod IPs are fixed in status so that ipBlock cases are reproducible.\n";
    let mut out = vec![(dir.join("base.yaml"), base_yaml(&base().build(), base_header))];
    for case in cases() {
        let header = format!(
            "# {}\n# Load together with base.yaml; expected reachability: {}.expect.txt\n",
            case.title, case.file
        );
        out.push((
            dir.join(format!("{}.yaml", case.file)),
            policies_yaml(&case.cluster(), &header),
        ));
        let mut expect = format!(
            "# {}\n# Rows are sources, columns destinations; X = allowed, . = denied.\n",
            case.title
        );
        for (port_text, reach) in &case.expect {
            expect.push('\n');
            expect.push_str(&reach.table(port_text.parse().expect("case port")));
        }
        out.push((dir.join(format!("{}.expect.txt", case.file)), expect));
    }
    out
}

#[test]
fn fixtures_match_the_cases() {
    let bless = std::env::var_os("KNS_BLESS_FIXTURES").is_some();
    let mut stale = Vec::new();
    for (path, text) in rendered() {
        if bless {
            std::fs::create_dir_all(fixtures()).expect("create fixture directory");
            std::fs::write(&path, &text).expect("write fixture");
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(stale.is_empty(), "stale fixtures (rerun with KNS_BLESS_FIXTURES=1): {stale:?}");
}

/// Every fixture document must deserialize as the Kubernetes type its `kind` names.
#[test]
fn fixtures_are_kubernetes_manifests() {
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use serde::Deserialize;

    let mut kinds = std::collections::BTreeMap::new();
    for (path, text) in
        rendered().into_iter().filter(|(p, _)| p.extension() == Some("yaml".as_ref()))
    {
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let value = yaml_serde::Value::deserialize(doc).expect("fixture YAML parses");
            let kind = value["kind"].as_str().expect("every document has a kind").to_string();
            let parsed = match kind.as_str() {
                "Namespace" => yaml_serde::from_value::<Namespace>(value).map(|_| ()),
                "Pod" => yaml_serde::from_value::<Pod>(value).map(|_| ()),
                "NetworkPolicy" => yaml_serde::from_value::<NetworkPolicy>(value).map(|np| {
                    let spec = np.spec.expect("policies have a spec");
                    assert!(spec.policy_types.is_some_and(|t| !t.is_empty()), "{path:?}");
                }),
                other => panic!("unexpected kind {other} in {path:?}"),
            };
            parsed.unwrap_or_else(|e| panic!("{path:?}: {kind}: {e}"));
            *kinds.entry(kind).or_insert(0) += 1;
        }
    }
    let policies: usize = cases().iter().map(|c| c.policies.len()).sum();
    let expected = [("Namespace", 3), ("NetworkPolicy", policies), ("Pod", 9)];
    let expected: std::collections::BTreeMap<String, usize> =
        expected.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    assert_eq!(kinds, expected);
}
