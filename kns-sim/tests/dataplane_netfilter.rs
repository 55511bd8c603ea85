//! The dataplane's hook points with the real netfilter: MASQUERADE out of a private subnet,
//! a DNAT port-forward, REJECT answered by the IP layer, and rule notes in the trace.

mod common;

use common::{Recorder, ip, ns, ping, replies, run, v4};
use kns_sim::DropReason;
use kns_sim::Sim;
use kns_sim::net::{TraceWhat, packet};
use kns_sim::netfilter::Hook;

/// A private subnet (10.0.1.0/24) behind a router whose outside is 192.0.2.0/24; the outside
/// host has no route back to the private subnet.
const NAT: &str = "
ip netns add inside
ip netns add router
ip netns add outside
ip -n inside link add eth0 type veth peer name lan netns router
ip -n outside link add eth0 type veth peer name wan netns router
ip -n inside addr add 10.0.1.2/24 dev eth0
ip -n router addr add 10.0.1.1/24 dev lan
ip -n router addr add 192.0.2.1/24 dev wan
ip -n outside addr add 192.0.2.7/24 dev eth0
ip -n inside link set eth0 up
ip -n outside link set eth0 up
ip -n router link set lan up
ip -n router link set wan up
ip -n inside route add default via 10.0.1.1
ip netns exec router sysctl -w net.ipv4.ip_forward=1
";

#[test]
fn masquerade_lets_a_private_subnet_out() {
    let mut sim = Sim::new(1);
    run(&mut sim, NAT);
    let inside = ns(&sim, "inside");
    let outside = ns(&sim, "outside");
    sim.attach_stack(inside, Recorder::default());
    // Without NAT the outside host cannot answer 10.0.1.2.
    ping(&mut sim, "inside", "10.0.1.2", "192.0.2.7", 1);
    assert_eq!(replies(&mut sim, "inside", "192.0.2.7"), 0);
    assert_eq!(sim.drops(outside).get(&DropReason::NoRoute), Some(&1));
    run(
        &mut sim,
        "ip netns exec router iptables -t nat -A POSTROUTING -s 10.0.1.0/24 -o wan -j MASQUERADE",
    );
    // NAT applies to new connections only: the first ping's ICMP flow (same identifier) stays
    // un-NATed until its conntrack entry expires (30 s), as in Linux.
    sim.run_for(std::time::Duration::from_secs(31));
    sim.enable_trace();
    ping(&mut sim, "inside", "10.0.1.2", "192.0.2.7", 2);
    assert_eq!(replies(&mut sim, "inside", "192.0.2.7"), 2);
    // On the outside the requests came from the router's address.
    let seen: Vec<_> = sim
        .trace()
        .iter()
        .filter(|e| e.ns == "outside" && e.what == TraceWhat::Rx)
        .filter_map(|e| e.summary)
        .map(|s| s.src)
        .collect();
    assert!(!seen.is_empty() && seen.iter().all(|s| *s == ip("192.0.2.1")), "{seen:?}");
    // The trace shows the rewrite at POSTROUTING, with netfilter's notes.
    let hook = sim
        .trace()
        .iter()
        .find(|e| matches!(&e.what, TraceWhat::Hook { hook: Hook::Postrouting, notes, .. } if notes.iter().any(|n| n.contains("rewritten"))))
        .expect("a POSTROUTING rewrite in the trace");
    assert!(hook.to_string().contains("nat POSTROUTING rule 1"), "{hook}");
    let ct = run(&mut sim, "ip netns exec router conntrack -L");
    assert!(ct.contains("src=10.0.1.2") && ct.contains("dst=192.0.2.1"), "{ct}");
    assert!(sim.conservation().holds());
}

#[test]
fn dnat_forwards_a_port_and_reject_answers() {
    let mut sim = Sim::new(2);
    run(&mut sim, NAT);
    run(&mut sim, "ip -n outside route add default via 192.0.2.1");
    // Port 8080 on the router's outside address is forwarded to the inside host's port 80;
    // nothing listens there, so the inside host's IP layer answers the SYN with a reset.
    run(
        &mut sim,
        "ip netns exec router iptables -t nat -A PREROUTING -d 192.0.2.1 -p tcp --dport 8080 -j DNAT --to-destination 10.0.1.2:80",
    );
    let outside = ns(&sim, "outside");
    sim.attach_stack(outside, Recorder::default());
    let syn = tcp_syn(v4("192.0.2.7"), v4("192.0.2.1"), 40000, 8080);
    sim.send_ip(outside, &syn);
    sim.run_until_idle(100_000).unwrap();
    let got = sim.stack_mut::<Recorder>(outside).unwrap().summaries();
    assert_eq!(got.len(), 1, "{got:?}");
    // The reset comes back from the address and port the client used (DNAT reversed).
    assert_eq!(got[0].src, ip("192.0.2.1"));
    assert_eq!(got[0].ports(), Some((8080, 40000)));
    // A REJECT rule in FORWARD: the router answers with ICMP port unreachable.
    run(&mut sim, "ip netns exec router iptables -A FORWARD -p tcp --dport 80 -j REJECT");
    sim.send_ip(outside, &syn);
    sim.run_until_idle(100_000).unwrap();
    let icmp = sim.stack_mut::<Recorder>(outside).unwrap().icmp();
    assert_eq!(icmp, vec![(ip("192.0.2.1"), 3, 3)]);
    let router = ns(&sim, "router");
    let reason =
        DropReason::FilterRule { table: "filter".into(), chain: "FORWARD".into(), rule: 1 };
    assert_eq!(sim.drops(router).get(&reason), Some(&1));
    assert!(sim.conservation().holds());
}

fn tcp_syn(src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = packet::ipv4_packet(src, dst, smoltcp::wire::IpProtocol::Tcp, 64, 20, |p| {
        let mut t = smoltcp::wire::TcpPacket::new_unchecked(p);
        t.set_src_port(sport);
        t.set_dst_port(dport);
        t.set_seq_number(smoltcp::wire::TcpSeqNumber(1));
        t.set_header_len(20);
        t.clear_flags();
        t.set_syn(true);
        t.set_window_len(1000);
        t.fill_checksum(&src.into(), &dst.into());
    });
    f.split_off(packet::ETH_LEN)
}
