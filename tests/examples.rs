//! The root examples run and print what their comments promise, so they cannot rot.
//!
//! `cargo test` builds every example but does not run them; these tests do, and check the key
//! lines of their output.

use std::process::{Command, Output};

/// Runs the example `name` with `args` through `cargo run`, which reuses what `cargo test`
/// built (and rebuilds a stale example when only this test target was selected).
fn run_example(name: &str, args: &[&str]) -> String {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["run", "-q", "--example", name]);
    if !cfg!(debug_assertions) {
        cargo.arg("--release"); // the profile `cargo test --release` built
    }
    let output: Output = cargo
        .arg("--")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    assert!(
        output.status.success(),
        "{name} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn custom_app_holds_a_conversation() {
    let out = run_example("custom_app", &[]);
    for line in [
        "  > SET color blue   < OK                               (2.0 ms)",
        "  > GET color        < blue                             (2.0 ms)",
        "  > GET size         < (nil)                            (2.0 ms)",
        "  > DEL color        < 1                                (2.0 ms)",
        "  > PING             < ERR unknown command 'PING'       (2.0 ms)",
    ] {
        assert!(out.contains(&format!("{line}\n")), "missing {line:?} in\n{out}");
    }
    assert!(out.contains("client/veth-c tx: ARP who-has 10.0.0.2 tell 10.0.0.1"), "{out}");
    assert!(
        out.contains("0.003000s #1 server/veth-s deliver to socket layer: TCP 10.0.0.1:"),
        "{out}"
    );
    assert!(out.contains(" dropped 0 + in flight 0"), "{out}");
}

#[test]
fn vxlan_overlay_encapsulates_and_echoes() {
    let pcap = std::env::temp_dir().join(format!("kns-vxlan-{}.pcap", std::process::id()));
    let out = run_example("vxlan_overlay", &[pcap.to_str().unwrap()]);
    assert!(out.contains("    vxlan id 1 local 192.168.0.11 dev eth0 dstport 8472\n"), "{out}");
    assert!(
        out.contains("0a:00:00:00:01:02 dev flannel.1 dst 192.168.0.12 self permanent\n"),
        "{out}"
    );
    assert!(out.contains("10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink\n"), "{out}");
    assert!(out.contains("  hello across the overlay\n"), "{out}");
    assert!(
        out.contains("node1/flannel.1 vxlan encap vni 1 to 192.168.0.12:8472: UDP 192.168.0.11:"),
        "{out}"
    );
    assert!(
        out.contains("node2/flannel.1 vxlan decap vni 1 from 192.168.0.11: TCP 10.244.0.2:"),
        "{out}"
    );
    assert!(out.contains("pod-b/eth0 deliver to socket layer: TCP 10.244.0.2:"), "{out}");
    // The file is a pcap with nanosecond timestamps (magic a1b23c4d, little-endian).
    let bytes = std::fs::read(&pcap).expect("the example wrote the pcap");
    std::fs::remove_file(&pcap).ok();
    assert_eq!(bytes[..4], [0x4d, 0x3c, 0xb2, 0xa1]);
    assert!(bytes.len() > 24 + 9 * 16, "a header and nine frames: {} bytes", bytes.len());
    assert!(out.contains(&format!("underlay frames of node1/eth0 to {}", pcap.display())), "{out}");
}

#[test]
fn policy_matrix_prints_the_matrix_and_reasons() {
    let out = run_example("policy_matrix", &[]);
    assert!(out.contains("8080/TCP: 19 of 36 connections allowed\n"), "{out}");
    assert!(out.contains("   1 api       ✓  ·  ·  ·  ·  ·\n"), "{out}");
    assert!(out.contains("   4 web       ✓  ✓  ·  ✓  ✓  ✓\n"), "{out}");
    assert!(out.contains("ALLOWED frontend/web-p8dpvwkmqm-gvq26 -> backend/api-"), "{out}");
    assert!(out.contains("allowed by backend/allow-web-to-api ingress rule #1"), "{out}");
    assert!(
        out.contains("DENIED frontend/web-p8dpvwkmqm-gvq26 -> db/postgres-0 8080/TCP"),
        "{out}"
    );
}

#[test]
fn third_party_engine_bug_is_found_and_shrunk() {
    let out = run_example("third_party_engine", &[]);
    assert!(out.contains("reference: 256 generated clusters, no disagreement"), "{out}");
    assert!(out.contains("split-peer: bug found; minimal case has"), "{out}");
    assert!(out.contains("reference denies, split-peer allows"), "{out}");
    // The minimal case needs a peer with both selectors: that is the planted bug.
    assert!(out.contains("namespaceSelector:") && out.contains("podSelector:"), "{out}");
    assert!(out.contains("kind: NetworkPolicy") && out.contains("podIP: 10.0.0."), "{out}");
    assert!(out.contains("kns matrix -f case.yaml --port "), "{out}");
}

#[test]
fn scale_builds_matrices_and_probes_at_small_size() {
    let args = [
        "--pods",
        "120",
        "--nodes",
        "3",
        "--policies",
        "20",
        "--services",
        "10",
        "--probes",
        "60",
        "--reference-sample",
        "2000",
        "-o",
        "json",
    ];
    let out = run_example("scale", &args);
    let report: serde_json::Value = serde_json::from_str(&out).expect("scale prints JSON");
    let number = |key: &str| report[key].as_f64().unwrap_or_else(|| panic!("{key} in {out}"));
    assert_eq!(number("pods"), 120.0);
    assert_eq!(number("matrix_pairs"), 14_400.0);
    assert!(number("matrix_allowed") > 0.0 && number("matrix_allowed") < 14_400.0, "{out}");
    // The reference engine and the real packets agree with the indexed matrix.
    assert_eq!(number("reference_disagreements"), 0.0, "{out}");
    assert_eq!(number("probe_disagreements"), 0.0, "{out}");
    assert_eq!((number("probes"), number("service_probes")), (60.0, 6.0), "{out}");
    assert!(number("probes_reachable") > 0.0, "{out}");
    assert!(number("frames") > 0.0 && number("frames_per_second") > 0.0, "{out}");
    assert!(number("build_seconds") > 0.0 && number("matrix_seconds") > 0.0, "{out}");
    if cfg!(target_os = "linux") {
        assert!(number("peak_memory_bytes") > number("memory_per_pod_bytes"), "{out}");
    }
    // The same seed gives the same cluster and verdicts.
    let again: serde_json::Value =
        serde_json::from_str(&run_example("scale", &args)).expect("JSON");
    for key in ["matrix_allowed", "probes_reachable", "service_probes_connected", "frames"] {
        assert_eq!(report[key], again[key], "{key}");
    }
}

#[test]
fn scale_prints_the_table() {
    let out = run_example(
        "scale",
        &[
            "--pods",
            "40",
            "--nodes",
            "2",
            "--policies",
            "8",
            "--services",
            "4",
            "--probes",
            "10",
            "--reference-sample",
            "100",
        ],
    );
    for row in [
        "build time",
        "peak memory",
        "memory per pod",
        "matrix time",
        "frames per second",
        "probes per second",
    ] {
        assert!(out.contains(&format!("| {row}")), "{row} missing from\n{out}");
    }
    assert!(out.contains("0 differ from the policy matrix"), "{out}");
}
