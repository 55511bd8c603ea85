//! `kns net` end to end: the bundled example scripts, the JSON contract, script errors.

mod common;
use common::{example_in, kns, text};

fn example(name: &str) -> String {
    example_in("net", name)
}

fn json(script: &str) -> serde_json::Value {
    let out = kns(&["net", "-f", &example(script), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// `(command, ok)` of every result whose command contains `needle`.
fn oks(v: &serde_json::Value, needle: &str) -> Vec<bool> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["command"].as_str().unwrap().contains(needle))
        .map(|r| r["ok"].as_bool().unwrap())
        .collect()
}

#[test]
fn json_is_the_documented_contract() {
    let out = kns(&["net", "-f", &example("veth-ping.sh"), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    assert!(
        s.starts_with(
            r#"{"results":[{"line":3,"command":"ip netns add red","ok":true,"output":""},"#
        ),
        "{s}"
    );
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    for r in v["results"].as_array().unwrap() {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 4, "{r}");
    }
    assert_eq!(oks(&v, "ping"), [true]);
}

#[test]
fn veth_transcript_reads_like_a_terminal() {
    let out = kns(&["net", "-f", &example("veth-ping.sh")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    insta::assert_snapshot!(text(&out.stdout));
}

#[test]
fn same_seed_same_bytes_and_the_seed_changes_only_random_choices() {
    let run = |seed: &str| {
        let out = kns(&["net", "-f", &example("masquerade.sh"), "-o", "json", "--seed", seed]);
        assert_eq!(out.status.code(), Some(0));
        text(&out.stdout)
    };
    let (a, b, c) = (run("7"), run("7"), run("8"));
    assert!(a == b, "same seed, different output");
    // ICMP identifiers (visible in conntrack -L) are random choices of the stacks.
    assert!(a != c, "the seed should change the ICMP identifiers");
    let va: serde_json::Value = serde_json::from_str(&a).unwrap();
    let vc: serde_json::Value = serde_json::from_str(&c).unwrap();
    assert_eq!(oks(&va, "ping"), oks(&vc, "ping"), "what succeeds does not depend on the seed");
}

#[test]
fn bridge_reaches_every_namespace() {
    let v = json("bridge.sh");
    assert_eq!(oks(&v, "ping"), [true, true, true, true]);
}

#[test]
fn router_needs_routes_and_forwarding() {
    let v = json("router.sh");
    // No route; routes but no ip_forward; both.
    assert_eq!(oks(&v, "ping"), [false, false, true]);
    let results = v["results"].as_array().unwrap();
    let get = results.iter().find(|r| r["command"] == "ip -n left route get 10.0.2.2").unwrap();
    assert!(
        get["output"].as_str().unwrap().starts_with("10.0.2.2 via 10.0.1.1 dev l0 src 10.0.1.2")
    );
}

#[test]
fn masquerade_makes_the_private_subnet_reach_out() {
    let v = json("masquerade.sh");
    assert_eq!(oks(&v, "ping"), [false, true]);
    let results = v["results"].as_array().unwrap();
    let ct = results.iter().find(|r| r["command"].as_str().unwrap().contains("conntrack")).unwrap();
    // The reply tuple of the NATed flow is addressed to the node, not the pod.
    assert!(ct["output"].as_str().unwrap().contains("dst=203.0.113.1"), "{ct}");
}

#[test]
fn dnat_forwards_the_port() {
    let v = json("dnat.sh");
    assert_eq!(oks(&v, "nc -w"), [false, true]);
    let results = v["results"].as_array().unwrap();
    let ok = results.iter().rfind(|r| r["command"].as_str().unwrap().contains("nc -w")).unwrap();
    assert!(ok["output"].as_str().unwrap().contains("hello from client"), "{ok}");
}

#[test]
fn traceroute_lists_both_routers() {
    let v = json("traceroute.sh");
    let results = v["results"].as_array().unwrap();
    let t = results.iter().find(|r| r["command"].as_str().unwrap().contains("traceroute")).unwrap();
    let out = t["output"].as_str().unwrap();
    let hops: Vec<&str> =
        out.lines().skip(1).map(|l| l.split_whitespace().nth(1).unwrap_or("")).collect();
    assert_eq!(hops, ["10.0.1.1", "10.0.12.2", "10.0.2.2"], "{out}");
    assert_eq!(t["ok"], true);
}

#[test]
fn a_script_error_names_its_line_and_stops() {
    let dir = std::env::temp_dir().join(format!("kns-net-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("bad.sh");
    std::fs::write(
        &script,
        "ip netns add red\n# a comment\nip -n red link set eth9 up\nip netns add blue\n",
    )
    .unwrap();
    let out = kns(&["net", "-f", script.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.sh:3: ip -n red link set eth9 up: Cannot find device \"eth9\""),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 1, "stops at the failing line");

    std::fs::write(&script, "ip netns add red\nfrobnicate --now\n").unwrap();
    let out = kns(&["net", "-f", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("bad.sh:2: frobnicate --now: frobnicate: command not found")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn trace_follows_a_packet_through_the_nat() {
    let out = kns(&["net", "-f", &example("masquerade.sh"), "--trace"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let s = text(&out.stdout);
    // The request leaves the node rewritten to the node's address, the reply is reversed.
    assert!(s.contains("node/eth1 Postrouting ACCEPT"), "{s}");
    assert!(s.contains(": ICMP 203.0.113.1 > 203.0.113.2 echo request ttl 63"), "{s}");
    assert!(s.contains("node/eth1 Prerouting ACCEPT"), "{s}");
    assert!(
        s.contains("pod/eth0 deliver to socket layer: ICMP 203.0.113.2 > 10.244.1.2 echo reply")
    );
    // Before the rule, the reply had no way back.
    assert!(s.contains("DROP"), "{s}");
}

#[test]
fn capture_writes_a_pcap_with_the_tcp_handshake() {
    use pcap_file::pcap::PcapReader;
    let dir = std::env::temp_dir().join(format!("kns-net-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("eth1.pcap");
    let spec = format!("node:eth1={}", file.display());
    let out = kns(&["net", "-f", &example("dnat.sh"), "--capture", &spec]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("captured"), "{}", text(&out.stderr));
    let mut reader = PcapReader::new(std::fs::File::open(&file).unwrap()).unwrap();
    let mut tcp_flags = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.unwrap();
        let d = &pkt.data;
        // Ethernet, IPv4 without options, TCP: the flags byte.
        if d.len() > 14 + 20 + 14 && d[12..14] == [0x08, 0x00] && d[23] == 6 {
            let ihl = usize::from(d[14] & 0x0f) * 4;
            tcp_flags.push(d[14 + ihl + 13]);
        }
    }
    // The refused attempt (SYN, RST), then SYN, SYN-ACK, ACK of the forwarded connection.
    let (syn, synack, rst_ack) = (0x02, 0x12, 0x14);
    assert_eq!(&tcp_flags[..2], &[syn, rst_ack], "{tcp_flags:x?}");
    assert_eq!(&tcp_flags[2..4], &[syn, synack], "{tcp_flags:x?}");
    assert_eq!(tcp_flags[4] & 0x10, 0x10, "third packet of the handshake is an ACK");
    std::fs::remove_dir_all(&dir).unwrap();
}
