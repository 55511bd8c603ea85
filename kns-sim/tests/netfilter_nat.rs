//! NAT through a router namespace: DNAT port forwarding, SNAT, MASQUERADE, ICMP echo, and the
//! rewriting of RELATED ICMP errors, with bytes and checksums verified by smoltcp.

mod nf_packets;

use std::time::Duration;

use kns_sim::netfilter::{Hook, HookContext, Netfilter, Verdict};
use kns_sim::wire::L4Summary;
use kns_sim::{DropReason, Time};
use nf_packets::*;

/// A router with the outside on eth0 (192.0.2.1) and a private LAN on eth1 (10.0.0.1).
fn router() -> Netfilter {
    let mut nf = Netfilter::new();
    ok(
        &mut nf,
        "-t nat -A PREROUTING -i eth0 -d 192.0.2.1 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.5:8080",
    );
    ok(&mut nf, "-t nat -A POSTROUTING -s 10.0.0.0/24 -o eth0 -j MASQUERADE");
    nf
}

fn inbound(nf: &mut Netfilter, now: Time, buf: &mut [u8]) -> Verdict {
    forward(nf, now, "eth0", "eth1", Some("10.0.0.1"), buf)
}

fn outbound(nf: &mut Netfilter, now: Time, buf: &mut [u8]) -> Verdict {
    forward(nf, now, "eth1", "eth0", Some("192.0.2.1"), buf)
}

fn endpoints(buf: &[u8]) -> (String, String) {
    let s = verified(buf);
    let (sp, dp) = s.ports().unwrap();
    (format!("{}:{sp}", s.src), format!("{}:{dp}", s.dst))
}

#[test]
fn dnat_port_forward_and_reply_reversed() {
    let mut nf = router();
    nf.set_notes(true);
    let t = Time::from_secs(1);
    let mut syn = tcp("198.51.100.7", 40000, "192.0.2.1", 80, "S");
    assert_eq!(inbound(&mut nf, t, &mut syn), Verdict::Accept);
    assert_eq!(endpoints(&syn), ("198.51.100.7:40000".into(), "10.0.0.5:8080".into()));
    let notes = nf.take_notes();
    assert!(
        notes.contains(&"nat PREROUTING rule 1: DNAT 192.0.2.1:80 -> 10.0.0.5:8080".to_string()),
        "{notes:?}"
    );

    let mut synack = tcp("10.0.0.5", 8080, "198.51.100.7", 40000, "SA");
    assert_eq!(outbound(&mut nf, t, &mut synack), Verdict::Accept);
    assert_eq!(
        endpoints(&synack),
        ("192.0.2.1:80".into(), "198.51.100.7:40000".into()),
        "reply de-NATed, not masqueraded"
    );

    assert_eq!(
        nf.take_notes(),
        [
            "ct ESTABLISHED (reply)",
            "filter FORWARD policy ACCEPT",
            "rewrite src 10.0.0.5:8080 -> 192.0.2.1:80"
        ]
    );
    let mut data = tcp("198.51.100.7", 40000, "192.0.2.1", 80, "A");
    assert_eq!(inbound(&mut nf, t, &mut data), Verdict::Accept);
    assert_eq!(endpoints(&data), ("198.51.100.7:40000".into(), "10.0.0.5:8080".into()));
    assert_eq!(
        nf.take_notes(),
        [
            "ct ESTABLISHED",
            "rewrite dst 192.0.2.1:80 -> 10.0.0.5:8080",
            "filter FORWARD policy ACCEPT"
        ]
    );

    assert_eq!(
        nf.conntrack_list(t + Duration::from_secs(1)),
        "tcp      6 431999 ESTABLISHED src=198.51.100.7 dst=192.0.2.1 sport=40000 dport=80 \
         src=10.0.0.5 dst=198.51.100.7 sport=8080 dport=40000 [ASSURED] mark=0 use=1\n\
         conntrack v1.4.8 (conntrack-tools): 1 flow entries have been shown.\n"
    );
}

#[test]
fn nat_is_decided_once_per_connection() {
    let mut nf = router();
    let t = Time::ZERO;
    let mut syn = tcp("198.51.100.7", 40000, "192.0.2.1", 80, "S");
    inbound(&mut nf, t, &mut syn);
    // Re-point the forward: the open connection keeps its backend, a new one gets the new one.
    ok(&mut nf, "-t nat -F PREROUTING");
    ok(&mut nf, "-t nat -A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.6:9090");
    let mut retransmit = tcp("198.51.100.7", 40000, "192.0.2.1", 80, "S");
    inbound(&mut nf, t, &mut retransmit);
    assert_eq!(endpoints(&retransmit).1, "10.0.0.5:8080");
    let mut other = tcp("198.51.100.7", 40001, "192.0.2.1", 80, "S");
    inbound(&mut nf, t, &mut other);
    assert_eq!(endpoints(&other).1, "10.0.0.6:9090");
    // The nat table saw only the first packet of each connection.
    assert!(ok(&mut nf, "-t nat -nvL PREROUTING").contains("\n    1    40 DNAT"));
}

#[test]
fn masquerade_picks_free_ports_and_reverses() {
    let mut nf = router();
    let t = Time::ZERO;
    let mut a = udp("10.0.0.5", 5000, "8.8.8.8", 53);
    let mut b = udp("10.0.0.6", 5000, "8.8.8.8", 53);
    assert_eq!(outbound(&mut nf, t, &mut a), Verdict::Accept);
    assert_eq!(outbound(&mut nf, t, &mut b), Verdict::Accept);
    assert_eq!(endpoints(&a).0, "192.0.2.1:5000");
    assert_eq!(endpoints(&b).0, "192.0.2.1:5001", "the second flow must not clash with the first");
    let mut reply_b = udp("8.8.8.8", 53, "192.0.2.1", 5001);
    assert_eq!(inbound(&mut nf, t, &mut reply_b), Verdict::Accept);
    assert_eq!(endpoints(&reply_b), ("8.8.8.8:53".into(), "10.0.0.6:5000".into()));
    let mut reply_a = udp("8.8.8.8", 53, "192.0.2.1", 5000);
    inbound(&mut nf, t, &mut reply_a);
    assert_eq!(endpoints(&reply_a).1, "10.0.0.5:5000");

    // Without an address on the way out, MASQUERADE drops (as Linux does).
    let mut c = udp("10.0.0.7", 5000, "8.8.8.8", 53);
    assert_eq!(
        forward(&mut nf, t, "eth1", "eth0", None, &mut c),
        Verdict::Drop(DropReason::FilterRule {
            table: "nat".into(),
            chain: "POSTROUTING".into(),
            rule: 1
        })
    );
}

#[test]
fn snat_rewrites_echo_identifiers() {
    let mut nf = Netfilter::new();
    ok(&mut nf, "-t nat -A POSTROUTING -o eth0 -p icmp -j SNAT --to-source 192.0.2.9");
    let t = Time::ZERO;
    let mut p1 = echo("10.0.0.5", "8.8.8.8", 77, true);
    let mut p2 = echo("10.0.0.6", "8.8.8.8", 77, true);
    outbound(&mut nf, t, &mut p1);
    outbound(&mut nf, t, &mut p2);
    let id = |buf: &[u8]| match verified(buf).l4 {
        L4Summary::Icmp { echo_id, .. } => echo_id.unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!((verified(&p1).src.to_string(), id(&p1)), ("192.0.2.9".to_string(), 77));
    assert_eq!((verified(&p2).src.to_string(), id(&p2)), ("192.0.2.9".to_string(), 78));
    let mut r2 = echo("8.8.8.8", "192.0.2.9", 78, false);
    assert_eq!(inbound(&mut nf, t, &mut r2), Verdict::Accept);
    assert_eq!((verified(&r2).dst.to_string(), id(&r2)), ("10.0.0.6".to_string(), 77));
    assert!(nf.conntrack_list(t).contains(
        "icmp     1 30 src=10.0.0.6 dst=8.8.8.8 type=8 code=0 id=77 src=8.8.8.8 dst=192.0.2.9 type=0 code=0 id=78 mark=0 use=1"
    ));
}

#[test]
fn related_icmp_errors_are_rewritten_inside_and_out() {
    let mut nf = router();
    ok(&mut nf, "-P FORWARD DROP");
    ok(&mut nf, "-A FORWARD -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT");
    ok(&mut nf, "-A FORWARD -m conntrack --ctstate RELATED -j ACCEPT");
    let t = Time::ZERO;

    // DNAT: the backend refuses; the client must see an error from the address it talked to,
    // quoting the packet it sent.
    let mut syn = tcp("198.51.100.7", 40000, "192.0.2.1", 80, "S");
    inbound(&mut nf, t, &mut syn);
    let mut err = port_unreachable("10.0.0.5", "198.51.100.7", &syn);
    assert_eq!(outbound(&mut nf, t, &mut err), Verdict::Accept);
    let outer = verified(&err);
    assert_eq!(
        (outer.src.to_string(), outer.dst.to_string()),
        ("192.0.2.1".into(), "198.51.100.7".into())
    );
    assert_eq!(endpoints(&quoted(&err)), ("198.51.100.7:40000".into(), "192.0.2.1:80".into()));

    // MASQUERADE: a router on the way answers the public address; the LAN host must get it,
    // quoting its own private source.
    let mut q = udp("10.0.0.5", 5353, "203.0.113.50", 53);
    outbound(&mut nf, t, &mut q);
    assert_eq!(endpoints(&q).0, "192.0.2.1:5353");
    let mut err = port_unreachable("203.0.113.9", "192.0.2.1", &q);
    assert_eq!(inbound(&mut nf, t, &mut err), Verdict::Accept);
    let outer = verified(&err);
    assert_eq!(
        (outer.src.to_string(), outer.dst.to_string()),
        ("203.0.113.9".into(), "10.0.0.5".into())
    );
    assert_eq!(endpoints(&quoted(&err)), ("10.0.0.5:5353".into(), "203.0.113.50:53".into()));

    // Both errors were RELATED; an error about an unknown flow is INVALID and dropped.
    let listed = ok(&mut nf, "-nvL FORWARD");
    let related = listed.lines().find(|l| l.contains("ctstate RELATED")).unwrap();
    assert!(related.trim_start().starts_with("2 "), "{related}");
    let stray = udp("10.0.0.5", 1, "203.0.113.50", 2);
    let mut err = port_unreachable("203.0.113.9", "192.0.2.1", &stray);
    assert_eq!(
        inbound(&mut nf, t, &mut err),
        Verdict::Drop(DropReason::FilterRule {
            table: "filter".into(),
            chain: "FORWARD".into(),
            rule: 0
        })
    );
}

#[test]
fn a_dropped_first_packet_leaves_no_connection() {
    let mut nf = router();
    ok(&mut nf, "-A FORWARD -p tcp --dport 8080 -j DROP");
    let mut syn = tcp("198.51.100.7", 40000, "192.0.2.1", 80, "S");
    assert!(matches!(inbound(&mut nf, Time::ZERO, &mut syn), Verdict::Drop(_)));
    assert!(nf.conntrack().is_empty());
    assert!(
        nf.conntrack_list(Time::ZERO).starts_with("conntrack v1.4.8 (conntrack-tools): 0 flow")
    );
}

#[test]
fn output_dnat_for_local_traffic() {
    let mut nf = Netfilter::new();
    ok(
        &mut nf,
        "-t nat -A OUTPUT -d 10.96.0.1 -p udp --dport 53 -j DNAT --to-destination 10.244.0.10:5353",
    );
    let out = HookContext { out_iface: Some("eth0"), out_addr: None, ..HookContext::default() };
    let mut q = udp("10.244.0.2", 33000, "10.96.0.1", 53);
    assert_eq!(hook(&mut nf, Time::ZERO, Hook::Output, &out, &mut q), Verdict::Accept);
    assert_eq!(hook(&mut nf, Time::ZERO, Hook::Postrouting, &out, &mut q), Verdict::Accept);
    assert_eq!(endpoints(&q).1, "10.244.0.10:5353");
    let inp = HookContext { in_iface: Some("eth0"), ..HookContext::default() };
    let mut r = udp("10.244.0.10", 5353, "10.244.0.2", 33000);
    assert_eq!(hook(&mut nf, Time::ZERO, Hook::Prerouting, &inp, &mut r), Verdict::Accept);
    assert_eq!(hook(&mut nf, Time::ZERO, Hook::Input, &inp, &mut r), Verdict::Accept);
    assert_eq!(endpoints(&r).0, "10.96.0.1:53");
}

#[test]
fn a_reject_after_dnat_answers_with_the_address_the_client_used() {
    let mut nf = router();
    ok(&mut nf, "-A FORWARD -p tcp --dport 8080 -j REJECT");
    let mut syn = tcp("198.51.100.7", 40000, "192.0.2.1", 80, "S");
    assert!(matches!(inbound(&mut nf, Time::ZERO, &mut syn), Verdict::Reject(..)));
    // The engine answers from the router, quoting the packet as it was when rejected.
    assert_eq!(endpoints(&syn).1, "10.0.0.5:8080");
    let mut err = port_unreachable("192.0.2.1", "198.51.100.7", &syn);
    let out = HookContext {
        out_iface: Some("eth0"),
        out_addr: Some(std::net::IpAddr::V4(addr("192.0.2.1"))),
        ..HookContext::default()
    };
    assert_eq!(hook(&mut nf, Time::ZERO, Hook::Output, &out, &mut err), Verdict::Accept);
    assert_eq!(hook(&mut nf, Time::ZERO, Hook::Postrouting, &out, &mut err), Verdict::Accept);
    assert_eq!(endpoints(&quoted(&err)), ("198.51.100.7:40000".into(), "192.0.2.1:80".into()));
    // The rejected connection is not listed; a retransmission is decided afresh.
    assert!(nf.conntrack_list(Time::ZERO).contains(": 0 flow entries"));
    let mut again = tcp("198.51.100.7", 40000, "192.0.2.1", 80, "S");
    assert!(matches!(inbound(&mut nf, Time::ZERO, &mut again), Verdict::Reject(..)));
    assert!(ok(&mut nf, "-t nat -nvL PREROUTING").contains("\n    2    80 DNAT"));
}
