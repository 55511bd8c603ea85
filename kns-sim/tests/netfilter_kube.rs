//! A kube-proxy (iptables mode) rule set, loaded with `iptables-restore` as kube-proxy does,
//! printed back unchanged, and carrying ClusterIP and NodePort traffic on a node.

mod nf_packets;

use std::net::IpAddr;

use kns_sim::Time;
use kns_sim::netfilter::{Netfilter, Verdict};
use nf_packets::*;

const RULES: &str = r#"*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-WEB0000000000000 - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-WEB0000000000000 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-EXT-WEB0000000000000 -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-WEB0000000000000 -j KUBE-SVC-WEB0000000000000
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j KUBE-EXT-WEB0000000000000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-AAAAAAAAAAAAAAAA -s 10.244.1.5/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-AAAAAAAAAAAAAAAA -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SEP-BBBBBBBBBBBBBBBB -s 10.244.2.7/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-BBBBBBBBBBBBBBBB -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.2.7:8080
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-WEB0000000000000
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-WEB0000000000000 ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-WEB0000000000000 -m comment --comment "default/web:http -> 10.244.1.5:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-AAAAAAAAAAAAAAAA
-A KUBE-SVC-WEB0000000000000 -m comment --comment "default/web:http -> 10.244.2.7:8080" -j KUBE-SEP-BBBBBBBBBBBBBBBB
COMMIT
"#;

fn node() -> Netfilter {
    let mut nf = Netfilter::new();
    nf.set_seed(42);
    nf.set_local_addrs(&[IpAddr::V4(addr("192.168.1.10")), IpAddr::V4(addr("10.244.0.1"))]);
    nf.iptables_restore(Time::ZERO, RULES, false).unwrap();
    nf
}

fn rule_lines(text: &str, table: &str) -> Vec<String> {
    let block = text.split(&format!("*{table}\n")).nth(1).unwrap().split("COMMIT").next().unwrap();
    block.lines().filter(|l| l.starts_with("-A")).map(str::to_string).collect()
}

#[test]
fn kube_proxy_rules_print_back_unchanged() {
    let mut nf = node();
    for (table, flag) in [("filter", ""), ("nat", "-t nat ")] {
        let printed = ok(&mut nf, &format!("{flag}-S"));
        let printed: Vec<String> =
            printed.lines().filter(|l| l.starts_with("-A")).map(str::to_string).collect();
        assert_eq!(printed, rule_lines(RULES, table), "{table}");
    }
}

#[test]
fn nodeport_traffic_is_dnated_and_masqueraded() {
    let mut nf = node();
    let mut backends = std::collections::BTreeSet::new();
    for port in 50_000..50_020 {
        let mut syn = tcp("192.168.1.99", port, "192.168.1.10", 30080, "S");
        let v = forward(&mut nf, Time::ZERO, "eth0", "cni0", Some("10.244.0.1"), &mut syn);
        assert_eq!(v, Verdict::Accept);
        let s = verified(&syn);
        assert_eq!(s.src.to_string(), "10.244.0.1", "masqueraded to the bridge address");
        backends.insert(format!("{}:{}", s.dst, s.ports().unwrap().1));
        // The backend's answer goes back to the client from the node port.
        let (backend, _) = (s.dst.to_string(), ());
        let mut synack = tcp(&backend, 8080, "10.244.0.1", s.ports().unwrap().0, "SA");
        assert_eq!(
            forward(&mut nf, Time::ZERO, "cni0", "eth0", Some("192.168.1.10"), &mut synack),
            Verdict::Accept
        );
        let r = verified(&synack);
        assert_eq!(
            (r.src.to_string(), r.dst.to_string(), r.ports()),
            ("192.168.1.10".into(), "192.168.1.99".into(), Some((30080, port)))
        );
    }
    assert_eq!(backends.into_iter().collect::<Vec<_>>(), ["10.244.1.5:8080", "10.244.2.7:8080"]);
}

#[test]
fn pod_to_cluster_ip_keeps_the_pod_source() {
    let mut nf = node();
    let mut syn = tcp("10.244.0.5", 41000, "10.96.0.10", 80, "S");
    assert_eq!(
        forward(&mut nf, Time::ZERO, "cni0", "flannel.1", Some("10.244.0.0"), &mut syn),
        Verdict::Accept
    );
    let s = verified(&syn);
    assert_eq!(s.src.to_string(), "10.244.0.5");
    assert!(["10.244.1.5", "10.244.2.7"].contains(&s.dst.to_string().as_str()));
    // Traffic that is neither NEW-to-a-service nor marked nor established is left to the policy.
    let mut stray = tcp("10.244.0.5", 41001, "10.0.0.9", 80, "A");
    assert_eq!(forward(&mut nf, Time::ZERO, "cni0", "eth0", None, &mut stray), Verdict::Accept);
    assert!(
        ok(&mut nf, "-nvL KUBE-FORWARD")
            .lines()
            .any(|l| l.trim_start().starts_with("0     0 DROP"))
    );
}
