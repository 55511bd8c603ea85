//! Connection states and timeouts in virtual time through the hooks, pluggable filters, and a
//! full connection table.

mod nf_packets;

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use kns_sim::conntrack::{ConntrackConfig, CtState};
use kns_sim::netfilter::{
    FilterVerdict, Hook, HookContext, Netfilter, PacketFilter, RejectWith, Verdict, priority,
};
use kns_sim::wire::PacketSummary;
use kns_sim::{DropReason, Time};
use nf_packets::*;

/// A stateful firewall: replies and established traffic only, new connections only to port 80.
fn firewall() -> Netfilter {
    let mut nf = Netfilter::new();
    ok(&mut nf, "-P FORWARD DROP");
    ok(&mut nf, "-A FORWARD -m conntrack --ctstate INVALID -j DROP");
    ok(&mut nf, "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
    ok(&mut nf, "-A FORWARD -p tcp --dport 80 -m conntrack --ctstate NEW -j ACCEPT");
    ok(&mut nf, "-A FORWARD -p udp --dport 53 -j ACCEPT");
    nf
}

fn fwd(nf: &mut Netfilter, now: Time, buf: &mut [u8]) -> Verdict {
    forward(nf, now, "eth0", "eth1", None, buf)
}

fn drop_rule(rule: usize) -> Verdict {
    Verdict::Drop(DropReason::FilterRule { table: "filter".into(), chain: "FORWARD".into(), rule })
}

#[test]
fn stateful_firewall_follows_connection_states() {
    let mut nf = firewall();
    let t = Time::ZERO;
    // A reply-shaped packet with no connection is refused; a SYN-ACK cannot open one.
    assert_eq!(fwd(&mut nf, t, &mut tcp("10.0.0.2", 80, "10.0.0.1", 40000, "SA")), drop_rule(1));
    assert_eq!(fwd(&mut nf, t, &mut tcp("10.0.0.1", 40000, "10.0.0.2", 22, "S")), drop_rule(0));
    assert_eq!(fwd(&mut nf, t, &mut tcp("10.0.0.1", 40000, "10.0.0.2", 80, "S")), Verdict::Accept);
    assert_eq!(fwd(&mut nf, t, &mut tcp("10.0.0.2", 80, "10.0.0.1", 40000, "SA")), Verdict::Accept);
    assert_eq!(fwd(&mut nf, t, &mut tcp("10.0.0.1", 40000, "10.0.0.2", 80, "A")), Verdict::Accept);
    assert_eq!(fwd(&mut nf, t, &mut tcp("10.0.0.2", 80, "10.0.0.1", 40000, "A")), Verdict::Accept);
    let listed = ok(&mut nf, "-nvL FORWARD");
    let count = |needle: &str| -> u64 {
        listed
            .lines()
            .find(|l| l.contains(needle))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(count("ctstate INVALID"), 1);
    assert_eq!(count("ctstate RELATED,ESTABLISHED"), 3);
    assert_eq!(count("ctstate NEW"), 1);
}

#[test]
fn udp_timeouts_run_on_virtual_time() {
    let mut nf = firewall();
    let t0 = Time::from_secs(100);
    assert_eq!(fwd(&mut nf, t0, &mut udp("10.0.0.1", 5000, "10.0.0.2", 53)), Verdict::Accept);
    assert!(nf.conntrack_list(t0 + Duration::from_secs(10)).starts_with(
        "udp      17 20 src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=53 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=53 dport=5000 mark=0 use=1\n"
    ));
    // After 30 s without a reply the connection is gone: the late reply is NEW, not ESTABLISHED.
    let late = t0 + Duration::from_secs(30);
    assert!(nf.conntrack_list(late).starts_with("conntrack v1.4.8 (conntrack-tools): 0 flow"));
    assert_eq!(fwd(&mut nf, late, &mut udp("10.0.0.2", 53, "10.0.0.1", 5000)), drop_rule(0));
    assert_eq!(nf.conntrack().stats().expired, 1);

    // A replied flow that keeps talking becomes a stream with the 120 s timeout.
    let t1 = Time::from_secs(1000);
    fwd(&mut nf, t1, &mut udp("10.0.0.1", 6000, "10.0.0.2", 53));
    assert_eq!(fwd(&mut nf, t1, &mut udp("10.0.0.2", 53, "10.0.0.1", 6000)), Verdict::Accept);
    fwd(&mut nf, t1 + Duration::from_secs(29), &mut udp("10.0.0.1", 6000, "10.0.0.2", 53));
    let later = t1 + Duration::from_secs(100);
    assert_eq!(fwd(&mut nf, later, &mut udp("10.0.0.2", 53, "10.0.0.1", 6000)), Verdict::Accept);
    assert!(nf.conntrack_list(later).contains("udp      17 120 src=10.0.0.1 dst=10.0.0.2 sport=6000 dport=53 src=10.0.0.2 dst=10.0.0.1 sport=53 dport=6000 [ASSURED]"));
}

#[test]
fn tcp_timeouts_follow_the_state() {
    let mut nf = firewall();
    let t = Time::ZERO;
    fwd(&mut nf, t, &mut tcp("10.0.0.1", 40000, "10.0.0.2", 80, "S"));
    assert!(nf.conntrack_list(t).contains("tcp      6 120 SYN_SENT"));
    // An unanswered SYN is forgotten after 120 s; a retransmission then opens it afresh.
    let t = Time::from_secs(120);
    assert!(nf.conntrack().entries(t).is_empty());
    fwd(&mut nf, t, &mut tcp("10.0.0.1", 40000, "10.0.0.2", 80, "S"));
    fwd(&mut nf, t, &mut tcp("10.0.0.2", 80, "10.0.0.1", 40000, "SA"));
    assert!(nf.conntrack_list(t).contains("tcp      6 60 SYN_RECV"));
    fwd(&mut nf, t, &mut tcp("10.0.0.1", 40000, "10.0.0.2", 80, "A"));
    let day = Time::from_secs(120 + 86_400);
    assert!(nf.conntrack_list(day).contains("tcp      6 345600 ESTABLISHED"));
    assert_eq!(
        fwd(&mut nf, day, &mut tcp("10.0.0.2", 80, "10.0.0.1", 40000, "A")),
        Verdict::Accept
    );
    fwd(&mut nf, day, &mut tcp("10.0.0.2", 80, "10.0.0.1", 40000, "RA"));
    assert!(nf.conntrack_list(day).contains("tcp      6 10 CLOSE"));
    // After a RST, a new SYN on the same ports opens a new connection.
    assert_eq!(
        fwd(&mut nf, day, &mut tcp("10.0.0.1", 40000, "10.0.0.2", 80, "S")),
        Verdict::Accept
    );
    assert!(nf.conntrack_list(day).contains("tcp      6 120 SYN_SENT"));
    assert_eq!(nf.conntrack().stats().created, 3);
}

/// Records what it sees and drops traffic to a port.
struct PortBlocker {
    name: String,
    port: u16,
    seen: Rc<RefCell<Vec<(String, CtState)>>>,
}

impl PacketFilter for PortBlocker {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(
        &mut self,
        _now: Time,
        hook: Hook,
        _ctx: &HookContext<'_>,
        s: &PacketSummary,
        ct: CtState,
    ) -> FilterVerdict {
        self.seen.borrow_mut().push((format!("{}@{:?}", self.name, hook), ct));
        match s.ports() {
            Some((_, dport)) if dport == self.port => FilterVerdict::Reject(
                format!("port {dport} is closed"),
                RejectWith::IcmpAdminProhibited,
            ),
            _ => FilterVerdict::Pass,
        }
    }
}

/// Sends every new connection to port 80 to one backend, as an IPVS-style proxy would.
struct Balancer;

impl PacketFilter for Balancer {
    fn name(&self) -> &str {
        "balancer"
    }

    fn check(
        &mut self,
        _now: Time,
        _hook: Hook,
        _ctx: &HookContext<'_>,
        s: &PacketSummary,
        ct: CtState,
    ) -> FilterVerdict {
        match s.ports() {
            Some((_, 80)) if ct == CtState::New => {
                FilterVerdict::Dnat(IpAddr::V4(addr("10.1.0.9")), Some(8080))
            }
            _ => FilterVerdict::Pass,
        }
    }
}

#[test]
fn packet_filters_run_in_priority_order() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut nf = Netfilter::new();
    nf.set_notes(true);
    ok(&mut nf, "-A FORWARD -p tcp --dport 23 -j DROP");
    let blocker =
        |name: &str, port| Box::new(PortBlocker { name: name.into(), port, seen: seen.clone() });
    nf.add_filter(Hook::Forward, priority::FILTER + 10, blocker("late", 6379));
    nf.add_filter(Hook::Forward, priority::FILTER - 10, blocker("early", 5432));
    let t = Time::ZERO;
    assert_eq!(fwd(&mut nf, t, &mut tcp("10.0.0.1", 1, "10.0.0.2", 80, "S")), Verdict::Accept);
    assert_eq!(
        *seen.borrow(),
        [("early@Forward".to_string(), CtState::New), ("late@Forward".to_string(), CtState::New)]
    );
    assert_eq!(
        fwd(&mut nf, t, &mut tcp("10.0.0.1", 2, "10.0.0.2", 6379, "S")),
        Verdict::Reject(
            DropReason::Filter { filter: "late".into(), why: "port 6379 is closed".into() },
            RejectWith::IcmpAdminProhibited
        )
    );
    assert!(nf.take_notes().contains(&"late: reject: port 6379 is closed".to_string()));
    // The rule table (priority 0) drops telnet before the late filter sees it.
    seen.borrow_mut().clear();
    assert_eq!(fwd(&mut nf, t, &mut tcp("10.0.0.1", 3, "10.0.0.2", 23, "S")), drop_rule(1));
    assert_eq!(seen.borrow().len(), 1);
    // A rejected first packet leaves no connection behind.
    assert_eq!(nf.conntrack().entries(t).len(), 1);
    assert_eq!(nf.remove_filters("late"), 1);
    assert_eq!(fwd(&mut nf, t, &mut tcp("10.0.0.1", 2, "10.0.0.2", 6379, "S")), Verdict::Accept);
}

#[test]
fn a_filter_can_dnat_new_connections() {
    let mut nf = Netfilter::new();
    nf.add_filter(Hook::Prerouting, priority::NAT_DST, Box::new(Balancer));
    let t = Time::ZERO;
    let mut syn = tcp("10.0.0.1", 40000, "10.96.0.1", 80, "S");
    assert_eq!(fwd(&mut nf, t, &mut syn), Verdict::Accept);
    let s = verified(&syn);
    assert_eq!((s.dst.to_string(), s.ports()), ("10.1.0.9".to_string(), Some((40000, 8080))));
    let mut reply = tcp("10.1.0.9", 8080, "10.0.0.1", 40000, "SA");
    assert_eq!(fwd(&mut nf, t, &mut reply), Verdict::Accept);
    let s = verified(&reply);
    assert_eq!((s.src.to_string(), s.ports()), ("10.96.0.1".to_string(), Some((80, 40000))));
}

#[test]
fn a_full_table_drops_new_connections() {
    let config = ConntrackConfig { max_entries: 1, ..ConntrackConfig::default() };
    let mut nf = Netfilter::with_conntrack(config);
    let t = Time::ZERO;
    // An assured connection cannot be evicted.
    fwd(&mut nf, t, &mut udp("10.0.0.1", 1, "10.0.0.2", 53));
    fwd(&mut nf, t, &mut udp("10.0.0.2", 53, "10.0.0.1", 1));
    fwd(&mut nf, t, &mut udp("10.0.0.1", 1, "10.0.0.2", 53));
    assert_eq!(
        fwd(&mut nf, t, &mut udp("10.0.0.1", 2, "10.0.0.2", 53)),
        Verdict::Drop(DropReason::QueueFull)
    );
    assert_eq!(nf.conntrack().stats().table_full, 1);
    // Once it expires there is room again.
    let later = Time::from_secs(121);
    assert_eq!(fwd(&mut nf, later, &mut udp("10.0.0.1", 2, "10.0.0.2", 53)), Verdict::Accept);
}

#[test]
fn marks_carry_from_prerouting_to_postrouting() {
    // kube-proxy's pattern: mark in nat PREROUTING, masquerade marked packets in POSTROUTING.
    let mut nf = Netfilter::new();
    ok(&mut nf, "-t nat -A PREROUTING -d 10.96.0.1 -j MARK --or-mark 0x4000");
    ok(
        &mut nf,
        "-t nat -A PREROUTING -d 10.96.0.1 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.9:8080",
    );
    ok(&mut nf, "-t nat -A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE");
    ok(&mut nf, "-A FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT");
    ok(&mut nf, "-P FORWARD DROP");
    let mut syn = tcp("10.0.0.1", 40000, "10.96.0.1", 80, "S");
    assert_eq!(
        forward(&mut nf, Time::ZERO, "eth0", "eth1", Some("10.1.0.1"), &mut syn),
        Verdict::Accept
    );
    let s = verified(&syn);
    assert_eq!(
        (s.src.to_string(), s.dst.to_string()),
        ("10.1.0.1".to_string(), "10.1.0.9".to_string())
    );
    // An unmarked packet is not masqueraded and meets the DROP policy.
    let mut other = tcp("10.0.0.1", 40001, "10.1.0.9", 8080, "S");
    assert!(matches!(
        forward(&mut nf, Time::ZERO, "eth0", "eth1", Some("10.1.0.1"), &mut other),
        Verdict::Drop(_)
    ));
}

#[test]
fn masqueraded_dnat_reply_is_reversed_in_both_ends() {
    let mut nf = Netfilter::new();
    ok(
        &mut nf,
        "-t nat -A PREROUTING -d 10.96.0.1 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.9:8080",
    );
    ok(&mut nf, "-t nat -A POSTROUTING -j MASQUERADE");
    let mut syn = tcp("10.0.0.1", 40000, "10.96.0.1", 80, "S");
    forward(&mut nf, Time::ZERO, "eth0", "eth1", Some("10.1.0.1"), &mut syn);
    let s = verified(&syn);
    assert_eq!(
        (s.src.to_string(), s.dst.to_string(), s.ports()),
        ("10.1.0.1".into(), "10.1.0.9".into(), Some((40000, 8080)))
    );
    let mut reply = tcp("10.1.0.9", 8080, "10.1.0.1", 40000, "SA");
    assert_eq!(
        forward(&mut nf, Time::ZERO, "eth1", "eth0", Some("10.0.0.254"), &mut reply),
        Verdict::Accept
    );
    let s = verified(&reply);
    assert_eq!(
        (s.src.to_string(), s.dst.to_string(), s.ports()),
        ("10.96.0.1".into(), "10.0.0.1".into(), Some((80, 40000)))
    );
    assert!(nf.conntrack_list(Time::ZERO).contains(
        "SYN_RECV src=10.0.0.1 dst=10.96.0.1 sport=40000 dport=80 src=10.1.0.9 dst=10.1.0.1 sport=8080 dport=40000 mark=0"
    ));
}

#[test]
fn ipv6_is_tracked_but_not_filtered_by_iptables() {
    let mut nf = Netfilter::new();
    ok(&mut nf, "-P FORWARD DROP");
    let mut p = udp6("fd00::1", 5000, "fd00::2", 53);
    let before = p.clone();
    assert_eq!(fwd(&mut nf, Time::ZERO, &mut p), Verdict::Accept);
    assert_eq!(p, before);
    assert!(
        nf.conntrack_list(Time::ZERO)
            .starts_with("udp      17 30 src=fd00::1 dst=fd00::2 sport=5000 dport=53 [UNREPLIED]")
    );
}

#[test]
fn invalid_packets_can_be_dropped_by_conntrack() {
    let mut nf = Netfilter::new();
    assert_eq!(
        fwd(&mut nf, Time::ZERO, &mut tcp("10.0.0.1", 1, "10.0.0.2", 2, "R")),
        Verdict::Accept
    );
    nf.set_drop_invalid(true);
    assert_eq!(
        fwd(&mut nf, Time::ZERO, &mut tcp("10.0.0.1", 1, "10.0.0.2", 2, "R")),
        Verdict::Drop(DropReason::ConntrackInvalid)
    );
    assert_eq!(
        fwd(&mut nf, Time::ZERO, &mut echo("10.0.0.1", "10.0.0.2", 5, false)),
        Verdict::Drop(DropReason::ConntrackInvalid)
    );
    assert_eq!(
        fwd(&mut nf, Time::ZERO, &mut echo("10.0.0.1", "10.0.0.2", 5, true)),
        Verdict::Accept
    );
}

#[test]
fn stale_connections_can_be_removed() {
    let mut nf = firewall();
    fwd(&mut nf, Time::ZERO, &mut udp("10.0.0.1", 5000, "10.0.0.2", 53));
    fwd(&mut nf, Time::ZERO, &mut tcp("10.0.0.1", 40000, "10.0.0.2", 80, "S"));
    let removed = nf.conntrack_mut().remove_where(|e| e.orig.proto == 17);
    assert_eq!(removed, 1);
    let listed = nf.conntrack_list(Time::ZERO);
    assert!(listed.starts_with("tcp ") && listed.contains(": 1 flow entries"), "{listed}");
}
