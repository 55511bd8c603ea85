//! The testing kit through the binary: both policy engines of `kns matrix` print the same
//! matrix, and a failing case printed by `check_policy_engine` is reproduced by `kns probe -f`.

use std::path::PathBuf;

mod common;
use common::{kns, text};

use kns_core::flow::Flow;
use kns_core::model::Cluster;
use kns_core::policy::{PolicyEngine, Verdict};
use kns_core::testing::{PolicyCheckError, check_policy_engine, synthetic_cluster, to_yaml};

/// Writes `yaml` to a fresh file in the temporary directory.
fn write_case(name: &str, yaml: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("kns-kit-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, yaml).expect("the temporary directory is writable");
    path
}

/// `kns matrix` with `engine`, standard output (must succeed).
fn matrix(file: &str, engine: &str, extra: &[&str]) -> String {
    let mut args = vec!["matrix", "-f", file, "--engine", engine];
    args.extend_from_slice(extra);
    let out = kns(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn matrix_engines_print_the_same_matrix() {
    let shop: PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", "shop.yaml"].iter().collect();
    // 150 pods: above the auto threshold, so `auto` is the indexed engine there.
    let big = write_case("synthetic", &to_yaml(&synthetic_cluster(150, 6, 30, 3)));
    for file in [shop.to_str().unwrap(), big.to_str().unwrap()] {
        for format in ["csv", "json", "table"] {
            let reference = matrix(file, "reference", &["-o", format]);
            assert_eq!(matrix(file, "indexed", &["-o", format]), reference, "{file} {format}");
            assert_eq!(matrix(file, "auto", &["-o", format]), reference, "{file} {format}");
        }
    }
    // The synthetic policies allow some pairs and deny others.
    let csv = matrix(big.to_str().unwrap(), "auto", &["--port", "80/TCP", "-o", "csv"]);
    assert!(csv.contains(",true\n") && csv.contains(",false\n"), "{csv}");
    std::fs::remove_file(big).ok();
    let out = kns(&["matrix", "-f", shop.to_str().unwrap(), "--engine", "fastest"]);
    assert_eq!(out.status.code(), Some(1), "an unknown engine is a usage error");
}

/// Allows everything (misses every deny).
struct AllowAll;

impl PolicyEngine for AllowAll {
    fn name(&self) -> &str {
        "allow-all"
    }
    fn evaluate(&self, _: &Cluster, _: &Flow) -> Verdict {
        Verdict::unexplained(true)
    }
}

/// Denies every connection as soon as the cluster has a policy (misses every allow).
struct DenyIsolated;

impl PolicyEngine for DenyIsolated {
    fn name(&self) -> &str {
        "deny-isolated"
    }
    fn evaluate(&self, cluster: &Cluster, _: &Flow) -> Verdict {
        Verdict::unexplained(cluster.policies.is_empty())
    }
}

/// Runs the kit on `engine`, saves the printed case, and probes every disagreeing pair
/// through the emulated cluster with `kns probe -f`: the packets must do what the reference
/// engine says, not what the engine under test says.
fn reproduce(engine: &mut dyn FnMut() -> Result<(), PolicyCheckError>, name: &str) {
    let Err(PolicyCheckError::Mismatch(m)) = engine() else {
        panic!("{name} should disagree with the reference");
    };
    assert!(!m.disagreements.is_empty(), "{m}");
    let case = write_case(name, &m.yaml);
    for d in &m.disagreements {
        let port = d.port.to_string();
        let file = case.to_str().unwrap();
        let out = kns(&["probe", "-f", file, "--from", &d.from, "--to", &d.to, "--port", &port]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}\n{stdout}\n{}", text(&out.stderr), m.yaml);
        let result = stdout.lines().find_map(|l| l.strip_prefix("result: ")).unwrap_or("");
        let reachable = result.starts_with("connected") || result.starts_with("refused");
        assert_eq!(
            reachable, d.reference_allows,
            "{} -> {} {port}: packets say `{result}`, the reference says allowed={}\n{}",
            d.from, d.to, d.reference_allows, m.yaml
        );
    }
    std::fs::remove_file(case).ok();
}

#[test]
fn printed_failing_cases_are_reproduced_by_kns_probe() {
    // Reference denies, engine allows: the probe must time out (policy drop).
    reproduce(&mut || check_policy_engine(&mut AllowAll, 64), "allow-all");
    // Reference allows, engine denies: the probe must reach the destination.
    reproduce(&mut || check_policy_engine(&mut DenyIsolated, 64), "deny-isolated");
}
