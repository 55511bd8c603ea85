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
