//! The NetworkPolicy conformance fixtures, loaded through the YAML loader: for every case,
//! `base.yaml` plus `<case>.yaml` must give the truth tables of `<case>.expect.txt`.
//!
//! This closes the loop between the policy cases (built in code, in `policy_conformance.rs`)
//! and real Kubernetes YAML: the loader must read every field the cases use exactly as the
//! builder sets it, or a table differs.

mod common;

use std::path::PathBuf;

use common::reach::{Reach, pod_names};
use kns_core::flow::PortProtocol;
use kns_core::manifest::{Loaded, Loader};
use kns_core::policy::{ReferenceEngine, fast_matrix, matrix};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The case names: every `<case>.expect.txt`, sorted.
fn cases() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixture directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".expect.txt").map(str::to_string))
        .collect();
    out.sort();
    out
}

fn load(case: &str) -> Loaded {
    let mut loader = Loader::new();
    loader.add("base.yaml", read("base.yaml"));
    loader.add(format!("{case}.yaml"), read(&format!("{case}.yaml")));
    loader.finish().unwrap_or_else(|e| panic!("{case}: {}", e.render()))
}

/// The ports an expectation file probes: the line after each blank line.
fn probed_ports(expect: &str) -> Vec<PortProtocol> {
    let lines: Vec<&str> = expect.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].is_empty())
        .map(|w| w[1].parse().unwrap_or_else(|e| panic!("port line `{}`: {e}", w[1])))
        .collect()
}

#[test]
fn every_fixture_loads_and_gives_its_truth_table() {
    let cases = cases();
    assert!(cases.len() >= 15, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let expect = read(&format!("{case}.expect.txt"));
        let loaded = load(case);
        let cluster = &loaded.cluster;
        let ports = probed_ports(&expect);
        assert!(!ports.is_empty(), "{case}: no ports");
        let reference = matrix(&ReferenceEngine, cluster, &ports);
        assert_eq!(reference, fast_matrix(cluster, &ports), "{case}: engines disagree");
        // The expectation file is its two comment lines, then one table per port.
        let mut got: String =
            expect.lines().take_while(|l| l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        for (i, port) in ports.iter().enumerate() {
            got.push('\n');
            got.push_str(&Reach::from_matrix(cluster, &reference, i).table(*port));
        }
        if got != expect {
            failures.push(format!("{case}\nexpected:\n{expect}\ngot:\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn base_fixture_keeps_its_fixed_addresses_with_one_warning() {
    let loaded = load("default-deny-ingress");
    let c = &loaded.cluster;
    let names = pod_names();
    for (i, name) in names.iter().enumerate() {
        let pod = c.pod_by_ref(name).expect("pod loaded");
        assert_eq!(pod.ip.to_string(), format!("10.0.0.{}", i + 1), "{name}");
        assert_eq!(pod.named_port("serve-81-udp", kns_core::Protocol::Udp), Some(81));
    }
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.render()).collect();
    assert_eq!(
        warnings,
        vec![
            "base.yaml: document 4 (Pod x/a): status.podIPs: 9 pod IP(s) (10.0.0.1, 10.0.0.2, 10.0.0.3, ...) \
             are outside the default pod CIDR 10.244.0.0/16; kept as given (a kns Cluster document can declare the network)"
        ]
    );
    assert_eq!(c.policies.len(), 1);
    assert_eq!(
        c.namespace_by_name("y").expect("y").labels.get("ns").map(String::as_str),
        Some("y")
    );
}
