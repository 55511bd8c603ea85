//! The scenario library end to end: every scenario passes, wrong expectations fail readably,
//! runs are deterministic, and `kns scenario list|run` behaves at the terminal.

use std::collections::BTreeSet;

mod common;
use common::{kns, text};

use kns_core::flow::{PortProtocol, Protocol};
use kns_scenarios::scenario::{self, PodFlow, RunOptions, Scenario};

const API_GATEWAY: &str = include_str!("../scenarios/api-gateway.yaml");

const TOUR: &str = include_str!("../scenarios/tour/cluster.yaml");

fn tcp(port: u16) -> PortProtocol {
    PortProtocol::new(port, Protocol::Tcp)
}

fn library(name: &str) -> Scenario {
    scenario::find(name).unwrap_or_else(|| panic!("scenario {name} in the library"))
}

#[test]
fn every_scenario_in_the_library_passes() {
    let all = scenario::all();
    assert!(all.len() >= 6);
    let names: BTreeSet<&str> = all.iter().map(Scenario::name).collect();
    assert_eq!(names.len(), all.len(), "unique names");
    for s in &all {
        let report = s.run(&RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.ok, "{}", report.render_text());
        let again = s.run(&RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report, again, "{} is not deterministic with seed {}", s.name(), report.seed);
        assert!(report.passed > 0 && report.failed == 0, "{}: no checks ran", s.name());
        assert!(!s.summary().is_empty(), "{} has a description", s.name());
    }
}

#[test]
fn a_wrong_expectation_fails_with_expected_and_observed() {
    let s = library("pod-network").expect_denied("default/client", "default/web", 80);
    let report = s.run(&RunOptions::default()).unwrap();
    assert!(!report.ok);
    assert_eq!((report.passed, report.failed), (5, 1));
    let failures = report.failures();
    assert_eq!(
        failures,
        ["check 6 (default/client -> default/web 80/TCP): the emulator disagrees: expected \
          denied, observed connected, answered by web"]
    );
    let text = report.render_text();
    assert!(text.contains("[FAIL]  6. default/client -> default/web 80/TCP\n"), "{text}");
    assert!(text.ends_with("=> FAILED: 6 checks, 5 passed, 1 failed\n"), "{text}");
}

#[test]
fn a_wrong_flow_set_lists_every_difference() {
    // No policy in the tour's cluster: every pod reaches web:80, not only the client.
    let flow = |from: &str| PodFlow { from: from.into(), to: "default/web".into(), port: tcp(80) };
    let wrong: BTreeSet<PodFlow> = [flow("default/client"), flow("default/nobody")].into();
    let s = Scenario::new("wrong-set").apply(TOUR).expect_exactly(
        "only the client",
        &[],
        wrong.clone(),
    );
    let report = s.run(&RunOptions::default()).unwrap();
    assert!(!report.ok);
    let check = report.checks().next().unwrap();
    assert_eq!(check.details, ["no pod default/nobody"], "unknown pods are named first");

    let right_pods: BTreeSet<PodFlow> = [flow("default/client")].into();
    let s =
        Scenario::new("wrong-set").apply(TOUR).expect_exactly("only the client", &[], right_pods);
    let report = s.run(&RunOptions::default()).unwrap();
    let check = report.checks().next().unwrap();
    assert!(!check.ok);
    assert_eq!(check.observed, "12 of 12 flows allowed");
    assert_eq!(check.engine.as_deref(), Some("12 of 12 flows allowed"));
    assert!(
        check.failure.as_deref().unwrap().contains("0 flows missing, 11 extra"),
        "{:?}",
        check.failure
    );
    assert!(check.trace.is_empty(), "no trace unless asked");
    let traced = s.run(&RunOptions { trace: true, pcap: false }).unwrap();
    let trace = &traced.checks().next().unwrap().trace;
    assert_eq!(trace.iter().filter(|l| l.ends_with(", probed again")).count(), 3, "{trace:?}");
    assert!(
        trace.contains(&"# default/client -> default/db 80/TCP, probed again".to_string())
            && trace.contains(&"=> refused".to_string()),
        "each wrong flow probed again ends with its outcome: {trace:?}"
    );
    assert!(
        check.details.contains(
            &"expected denied, allowed by the network: default/db -> default/web 80/TCP".into()
        ),
        "{:?}",
        check.details
    );
}

#[test]
fn a_scenario_that_cannot_run_is_an_error_naming_it() {
    let bad = Scenario::new("broken").apply("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n");
    let err = bad.run(&RunOptions::default()).unwrap_err().to_string();
    assert!(err.starts_with("scenario broken: the manifests do not load"), "{err}");
    let late = library("pod-network").apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: late, namespace: default}\n\
         spec: {containers: [{name: c}]}\n",
    );
    let err = late.run(&RunOptions::default()).unwrap_err().to_string();
    assert!(err.contains("changes more than NetworkPolicies"), "{err}");
}

#[test]
fn two_runs_give_the_same_report() {
    let s = library("api-gateway");
    let opts = RunOptions { trace: true, pcap: true };
    let a = s.run(&opts).unwrap();
    let b = s.run(&opts).unwrap();
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    assert_eq!(a.captures, b.captures, "the same pcap bytes");
    assert!(a.checks().all(|c| !c.trace.is_empty()), "every single probe traced");
    // Through a Service, the engine judges the backend that answered, or every backend.
    let engine = |prefix: &str| {
        let check = a.checks().find(|c| c.what.starts_with(prefix)).expect("the check");
        check.engine.clone().unwrap_or_default()
    };
    assert_eq!(
        engine("istio-system/istio-ingressgateway -> svc/cray-smd.services"),
        "allowed, to the backend services/cray-smd 27779/TCP"
    );
    assert_eq!(
        engine("sma/cluster-kafka-0 -> svc/cray-smd.services"),
        "via the Service, backends services/cray-smd 27779/TCP: denied (ingress of \
         services/cray-smd isolated by api-gateway-upstream)"
    );
    assert_eq!(engine("internet -> nodeport/"), "", "no engine verdict for outside sources");
}

#[test]
fn cli_lists_every_scenario_aligned() {
    let out = kns(&["scenario", "list"]);
    assert_eq!(out.status.code(), Some(0));
    let listing = text(&out.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), scenario::all().len());
    let column: BTreeSet<usize> = lines
        .iter()
        .map(|l| l.find("  ").unwrap() + l[l.find("  ").unwrap()..].find(|c| c != ' ').unwrap())
        .collect();
    assert_eq!(column.len(), 1, "descriptions start in one column:\n{listing}");
    for name in scenario::names() {
        assert!(lines.iter().any(|l| l.starts_with(&format!("{name} "))), "{name} listed");
    }
}

#[test]
fn cli_runs_a_scenario_as_text_and_json_deterministically() {
    let out = kns(&["scenario", "run", "network-policy"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(t.starts_with("Scenario network-policy\n"), "{t}");
    assert!(
        t.contains("$ kubectl delete networkpolicy --all -A && kubectl apply -f web-and.yaml\n")
    );
    assert!(t.ends_with("=> ok: 27 checks, 27 passed, 0 failed\n"), "{t}");
    let a = kns(&["scenario", "run", "network-policy", "-o", "json"]);
    let b = kns(&["scenario", "run", "network-policy", "-o", "json"]);
    assert_eq!(a.stdout, b.stdout);
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).expect("valid JSON");
    assert_eq!((v["ok"].as_bool(), v["failed"].as_u64()), (Some(true), Some(0)));
    assert_eq!(v["steps"][0]["kind"], "action");
}

#[test]
fn cli_unknown_scenario_lists_the_names() {
    let out = kns(&["scenario", "run", "no-such-thing"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: no scenario `no-such-thing`; the scenarios are: pod-network,"),
        "{err}"
    );
    assert!(err.contains("verrazzano-ports"), "{err}");
}

#[test]
fn cli_pcap_writes_one_file_per_pod_interface() {
    let dir = std::env::temp_dir().join(format!("kns-scenario-pcap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = kns(&["scenario", "run", "pod-restart", "--pcap", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "default.client-eth0.pcap",
            "default.db-eth0.pcap",
            "default.web-eth0-restart1.pcap",
            "default.web-eth0.pcap",
            "ops.tester-eth0.pcap",
        ]
    );
    let bytes = std::fs::read(dir.join("default.client-eth0.pcap")).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).expect("a pcap file");
    let mut frames = 0;
    while let Some(p) = reader.next_packet() {
        p.expect("a readable frame");
        frames += 1;
    }
    assert!(frames >= 6, "the client's two probes are in its capture ({frames} frames)");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_http_expectation_fails_with_a_readable_message() {
    let front = "http://nodeport/istio-ingressgateway.istio-system:80/keycloak";
    let s = Scenario::new("gw")
        .nodes(3)
        .apply_file("api-gateway.yaml", API_GATEWAY)
        .expect_http("internet", front, "api.cmn.shasta.example.com", 200, "cray-smd")
        .expect_http("internet", front, "nobody.example.com", 200, "")
        .expect_http("internet", "nodeport/x", "", 200, "");
    let report = s.run(&RunOptions::default()).unwrap();
    assert_eq!((report.passed, report.failed), (0, 3), "{}", report.render_text());
    let host = |h: &str| format!("internet -> curl -H 'Host: {h}' {front}");
    assert_eq!(
        report.failures(),
        [
            format!(
                "check 1 ({}): the emulator disagrees: expected HTTP 200, body containing \
                 \"cray-smd\", observed HTTP 200, body \"keycloak-0\"",
                host("api.cmn.shasta.example.com")
            ),
            format!(
                "check 2 ({}): the emulator disagrees: expected HTTP 200, observed HTTP 404, \
                 body \"404 Not Found: default backend - 404\"",
                host("nobody.example.com")
            ),
            "check 3 (internet -> curl nodeport/x): the URL `nodeport/x` is not http:// \
             (write http://TARGET:PORT/PATH)"
                .to_string(),
        ]
    );
    let text = report.render_text();
    assert!(
        text.contains(&format!("[FAIL]  1. {}\n", host("api.cmn.shasta.example.com"))),
        "{text}"
    );
    assert!(
        text.contains("          curl -H 'Host: api.cmn.shasta.example.com' http://"),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["steps"][1]["observed"], "HTTP 200, body \"keycloak-0\"");
}
