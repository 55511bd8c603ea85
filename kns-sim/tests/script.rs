//! `ScriptRunner`: scripts of Linux commands against a fresh host, through every layer.

use kns_sim::script::{ScriptRunner, run_script};

/// The topology of the bundled `examples/net/dnat.sh`: a server behind a forwarding node and a
/// client outside, with the server listening on port 80, before any NAT rule.
fn node() -> String {
    let node = setup(include_str!("../../examples/net/dnat.sh"));
    assert!(node.ends_with("ip netns exec server nc -l -p 80\n"), "dnat.sh changed: {node}");
    node
}

/// The setup of an example script: its commands after the header comment, up to the next comment.
fn setup(script: &str) -> String {
    let mut lines = script.lines().skip_while(|l| l.starts_with('#'));
    lines.by_ref().take_while(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect()
}

fn oks(script: &str) -> Vec<(String, bool)> {
    let report = run_script(1, script);
    assert!(report.error.is_none(), "{:?}", report.error);
    report.results.into_iter().map(|r| (r.command, r.ok)).collect()
}

#[test]
fn nodeport_style_dnat_matches_local_destinations_only() {
    // kube-proxy's NodePort rules match `--dst-type LOCAL`: the node's own addresses.
    let node = node();
    let script = format!(
        "{node}
ip netns exec node iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -p tcp --dport 30080 -j DNAT --to-destination 10.244.1.2:80
ip netns exec client nc -w 2 203.0.113.1 30080
ip netns exec client nc -w 2 203.0.113.9 30080
"
    );
    let results = oks(&script);
    let probes: Vec<bool> =
        results.iter().filter(|(c, _)| c.contains("nc -w")).map(|(_, ok)| *ok).collect();
    // To the node's address: forwarded. To an address that is not the node's: no DNAT, and
    // nobody answers ARP for it.
    assert_eq!(probes, [true, false]);
}

#[test]
fn statistic_random_splits_deterministically_per_seed() {
    let mut script = node();
    script.push_str(
        "ip netns exec node iptables -t nat -A PREROUTING -p tcp --dport 8080 -m statistic --mode random --probability 0.5 -j DNAT --to-destination 10.244.1.2:80\n",
    );
    for _ in 0..12 {
        script.push_str("ip netns exec client nc -w 1 203.0.113.1 8080\n");
    }
    let run = |seed| {
        let report = ScriptRunner::new(seed).run_script(&script);
        assert!(report.error.is_none(), "{:?}", report.error);
        report.results.iter().filter(|r| r.command.contains("nc -w")).map(|r| r.ok).collect()
    };
    let a: Vec<bool> = run(1);
    assert_eq!(a, run(1), "same seed, same choices");
    let hits = a.iter().filter(|ok| **ok).count();
    assert!((1..12).contains(&hits), "about half the connections are forwarded: {a:?}");
}

#[test]
fn configuration_errors_stop_probes_do_not() {
    let report = run_script(
        1,
        "ip netns add a\nip -n a route add 10.9.0.0/16 via 10.0.0.1\nip netns add b\n",
    );
    let e = report.error.expect("no connected route to the gateway");
    assert_eq!(e.line, 2);
    assert_eq!(report.results.len(), 1);

    let report =
        run_script(1, "ip netns add a\nip netns exec a ping -c 1 10.0.0.1\nip netns add b\n");
    assert!(report.error.is_none());
    assert_eq!(report.results.len(), 3);
    assert!(!report.results[1].ok);
    assert_eq!(report.results[1].output, "ping: connect: Network is unreachable\n");
}

#[test]
fn onlink_routes_trust_the_gateway_is_on_the_link() {
    let base =
        "ip netns add n\nip -n n link add flannel.1 type dummy\nip -n n link set flannel.1 up\n";
    let report = run_script(
        1,
        &format!("{base}ip -n n route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1\n"),
    );
    assert_eq!(
        report.error.expect("no connected route").message,
        "Error: Nexthop has invalid gateway."
    );
    let report = run_script(
        1,
        &format!(
            "{base}ip -n n route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink\nip -n n route\n"
        ),
    );
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(
        report.results.last().unwrap().output,
        "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink\n"
    );
}
