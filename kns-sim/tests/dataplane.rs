//! End-to-end dataplane behaviour: real ARP/IPv4/ICMP frames across veths, bridges, routers
//! and VXLAN, with drops counted by reason and the books balanced.

mod common;

use std::time::Duration;

use common::{Recorder, ip, ns, ping, replies, run, v4};
use kns_sim::DropReason;
use kns_sim::Sim;
use kns_sim::net::{LinkParams, TraceWhat, packet};
use kns_sim::time::Time;
use kns_sim::wire::{L4Summary, parse_ip};

/// The veth pair of the bundled `examples/net/veth-ping.sh` (red 10.0.0.1, blue 10.0.0.2): the
/// script up to its last `link set up`, before its ping.
fn veth_pair_script() -> &'static str {
    let script = include_str!("../../examples/net/veth-ping.sh");
    let last = "ip -n blue link set veth-blue up\n";
    &script[..script.find(last).expect("veth-ping.sh sets veth-blue up") + last.len()]
}

fn veth_pair(seed: u64) -> Sim {
    let mut sim = Sim::new(seed);
    run(&mut sim, veth_pair_script());
    let red = ns(&sim, "red");
    sim.attach_stack(red, Recorder::default());
    sim
}

#[test]
fn ping_over_a_veth_pair() {
    let mut sim = veth_pair(1);
    ping(&mut sim, "red", "10.0.0.1", "10.0.0.2", 3);
    assert_eq!(replies(&mut sim, "red", "10.0.0.2"), 3);
    // One ARP exchange, then both sides know each other.
    let red = ns(&sim, "red");
    let neigh = sim.ip(Some("red"), "neigh").unwrap();
    assert!(neigh.starts_with("10.0.0.2 dev veth-red lladdr "), "{neigh}");
    assert!(sim.ip(Some("blue"), "neigh").unwrap().contains("10.0.0.1 dev veth-blue lladdr"));
    assert!(sim.drops(red).is_empty());
    let c = sim.conservation();
    assert!(c.holds(), "{c}");
    // 2 ARP + 3 requests + 3 replies.
    assert_eq!(c.sent, 8, "{c}");
    assert_eq!(c.delivered, 8, "{c}");
    // The recorder knows the addresses of the up interfaces (lo is down in a new namespace).
    let addrs = sim.stack_mut::<Recorder>(red).unwrap().addrs.clone();
    assert_eq!(addrs, vec!["10.0.0.1/24".parse::<ipnet::IpNet>().unwrap()]);
    run(&mut sim, "ip -n red link set lo up");
    assert_eq!(sim.stack_mut::<Recorder>(red).unwrap().addrs.len(), 2);
}

#[test]
fn a_down_peer_and_a_missing_neighbour_are_counted() {
    let mut sim = veth_pair(1);
    run(&mut sim, "ip -n blue link set veth-blue down");
    ping(&mut sim, "red", "10.0.0.1", "10.0.0.2", 1);
    let red = ns(&sim, "red");
    // The ARP requests die at the down peer; after 3 tries the packet is dropped and the
    // sender hears "host unreachable" from itself, as Linux ping shows.
    assert_eq!(sim.drops(red).get(&DropReason::InterfaceDown), Some(&3));
    assert_eq!(sim.drops(red).get(&DropReason::NoNeighbour), Some(&1));
    let icmp = sim.stack_mut::<Recorder>(red).unwrap().icmp();
    assert_eq!(icmp, vec![(ip("10.0.0.1"), 3, 1)]);
    assert_eq!(sim.now(), Time::from_secs(3));
    assert!(sim.ip(Some("red"), "neigh").unwrap().contains("10.0.0.2 dev veth-red FAILED"));
    assert!(sim.conservation().holds());
}

const BRIDGE: &str = "
ip link add br0 type bridge
ip link set dev br0 up
ip addr add 10.0.0.254/24 dev br0
ip netns add a
ip netns add b
ip netns add c
ip link add veth-a type veth peer name eth0 netns a
ip link add veth-b type veth peer name eth0 netns b
ip link add veth-c type veth peer name eth0 netns c
ip link set veth-a master br0
ip link set veth-b master br0
ip link set veth-c master br0
ip link set veth-a up
ip link set veth-b up
ip link set veth-c up
ip -n a addr add 10.0.0.1/24 dev eth0
ip -n b addr add 10.0.0.2/24 dev eth0
ip -n c addr add 10.0.0.3/24 dev eth0
ip -n a link set eth0 up
ip -n b link set eth0 up
ip -n c link set eth0 up
ip -n a route add default via 10.0.0.254
";

#[test]
fn three_namespaces_on_a_bridge() {
    let mut sim = Sim::new(2);
    run(&mut sim, BRIDGE);
    let a = ns(&sim, "a");
    sim.attach_stack(a, Recorder::default());
    sim.enable_trace();
    ping(&mut sim, "a", "10.0.0.1", "10.0.0.3", 2);
    assert_eq!(replies(&mut sim, "a", "10.0.0.3"), 2);
    // The ARP broadcast was flooded to b too (and to the bridge itself); b ignored it.
    let flooded_to_b =
        sim.trace().iter().any(|e| e.ns == "b" && e.what == TraceWhat::Rx && e.l2.is_some());
    assert!(flooded_to_b);
    // The bridge learned a and c on their ports; b never sent anything.
    let fdb = sim.ip(None, "link").unwrap();
    assert!(fdb.contains("master br0 state UP"), "{fdb}");
    let fdb = run(&mut sim, "bridge fdb show");
    assert_eq!(fdb.lines().count(), 2, "{fdb}");
    assert!(fdb.contains("dev veth-a master br0") && fdb.contains("dev veth-c master br0"));
    // With br_netfilter on, bridged IPv4 frames also cross the hooks (which accept here).
    assert_eq!(
        run(&mut sim, "sysctl -w net.bridge.bridge-nf-call-iptables=1"),
        "net.bridge.bridge-nf-call-iptables = 1"
    );
    ping(&mut sim, "a", "10.0.0.1", "10.0.0.3", 1);
    assert_eq!(replies(&mut sim, "a", "10.0.0.3"), 3);
    // Interface counters: c's port carried the flooded ARP request and the unicast traffic.
    let st = sim.link_stats(Sim::ROOT, "veth-c").unwrap();
    assert_eq!((st.tx_packets, st.rx_packets), (4, 4), "{st:?}");
    assert_eq!(sim.link_stats(Sim::ROOT, "veth-b").unwrap().rx_packets, 0);
    // The bridge's own address is the gateway.
    ping(&mut sim, "a", "10.0.0.1", "10.0.0.254", 1);
    assert_eq!(replies(&mut sim, "a", "10.0.0.254"), 1);
    assert!(sim.conservation().holds(), "{}", sim.conservation());
    for e in sim.trace() {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn hairpin_sends_a_frame_back_out_of_its_port() {
    let mut sim = Sim::new(2);
    run(&mut sim, BRIDGE);
    let a = ns(&sim, "a");
    sim.attach_stack(a, Recorder::default());
    // Teach the bridge where a lives, then make a send a frame to its own MAC.
    ping(&mut sim, "a", "10.0.0.1", "10.0.0.3", 1);
    let mac = sim.iface_mac(sim.iface_id(a, "eth0").unwrap());
    sim.neigh_add(a, ip("10.0.0.9"), mac, "eth0", false).unwrap();
    let send = |sim: &mut Sim| {
        let p = packet::icmp_echo_request(v4("10.0.0.1"), v4("10.0.0.9"), 1, 1, 64, b"");
        sim.send_ip(a, &p);
        sim.run_until_idle(10_000).unwrap();
    };
    send(&mut sim);
    assert_eq!(sim.drops(Sim::ROOT).get(&DropReason::NotForUs), Some(&1));
    run(&mut sim, "bridge link set dev veth-a hairpin on");
    send(&mut sim);
    // Back in a, the frame carries a's MAC but not its address: a does not forward.
    assert_eq!(sim.drops(a).get(&DropReason::ForwardingDisabled), Some(&1));
    assert!(sim.conservation().holds());
}

const ROUTER: &str = "
ip netns add left
ip netns add router
ip netns add right
ip -n left link add eth0 type veth peer name left0 netns router
ip -n right link add eth0 type veth peer name right0 netns router
ip -n left addr add 10.0.1.2/24 dev eth0
ip -n right addr add 10.0.2.2/24 dev eth0
ip -n router addr add 10.0.1.1/24 dev left0
ip -n router addr add 10.0.2.1/24 dev right0
ip -n left link set eth0 up
ip -n right link set eth0 up
ip -n router link set left0 up
ip -n router link set right0 up
ip -n left route add 10.0.2.0/24 via 10.0.1.1
ip -n right route add default via 10.0.2.1
";

#[test]
fn two_subnets_through_a_router() {
    let mut sim = Sim::new(3);
    run(&mut sim, ROUTER);
    let left = ns(&sim, "left");
    let router = ns(&sim, "router");
    sim.attach_stack(left, Recorder::default());
    // ip_forward is off in a fresh namespace, as in Linux.
    ping(&mut sim, "left", "10.0.1.2", "10.0.2.2", 1);
    assert_eq!(replies(&mut sim, "left", "10.0.2.2"), 0);
    assert_eq!(sim.drops(router).get(&DropReason::ForwardingDisabled), Some(&1));
    run(&mut sim, "ip netns exec router sysctl -w net.ipv4.ip_forward=1");
    ping(&mut sim, "left", "10.0.1.2", "10.0.2.2", 2);
    assert_eq!(replies(&mut sim, "left", "10.0.2.2"), 2);
    // The replies crossed the router: TTL 64 - 1.
    let rec = sim.stack_mut::<Recorder>(left).unwrap();
    assert!(rec.summaries().iter().filter(|s| s.l4 != L4Summary::Other).all(|s| s.ttl == 63));
    // route get explains the lookup.
    let get = sim.route_get(left, ip("10.0.2.2")).unwrap();
    assert_eq!(get.to_iproute2(), "10.0.2.2 via 10.0.1.1 dev eth0 src 10.0.1.2 uid 0\n    cache");
    assert!(
        get.explain().contains("matches  10.0.2.0/24 via 10.0.1.1 dev eth0"),
        "{}",
        get.explain()
    );
    assert_eq!(
        sim.ip(Some("left"), "route get 10.0.1.2").unwrap(),
        "local 10.0.1.2 dev lo src 10.0.1.2 uid 0\n    cache <local>\n"
    );
    // No route: the router answers "net unreachable".
    ping(&mut sim, "left", "10.0.1.2", "10.9.9.9", 1);
    assert_eq!(sim.drops(left).get(&DropReason::NoRoute), Some(&1));
    run(&mut sim, "ip -n left route add default via 10.0.1.1");
    ping(&mut sim, "left", "10.0.1.2", "10.9.9.9", 1);
    assert_eq!(sim.drops(router).get(&DropReason::NoRoute), Some(&1));
    let icmp = sim.stack_mut::<Recorder>(left).unwrap().icmp();
    assert!(icmp.contains(&(ip("10.0.1.1"), 3, 0)), "{icmp:?}");
    // Nobody answers ARP for 10.0.2.99: after three requests the router reports "host
    // unreachable" to the sender.
    ping(&mut sim, "left", "10.0.1.2", "10.0.2.99", 1);
    assert_eq!(sim.drops(router).get(&DropReason::NoNeighbour), Some(&1));
    let icmp = sim.stack_mut::<Recorder>(left).unwrap().icmp();
    assert_eq!(icmp.last(), Some(&(ip("10.0.1.1"), 3, 1)));
    assert!(sim.conservation().holds());
}

/// src - r1 - r2 - dst (the traceroute example's topology); r1 and r2 are linked by r1's `east`.
const TWO_ROUTERS: &str = include_str!("../examples/two_routers.sh");

#[test]
fn traceroute_ttl_expiry_reports_each_router() {
    let mut sim = Sim::new(4);
    run(&mut sim, TWO_ROUTERS);
    let src = ns(&sim, "src");
    sim.attach_stack(src, Recorder::default());
    for ttl in 1..=3u8 {
        let probe = packet::udp_datagram(
            v4("10.1.0.2"),
            v4("10.3.0.2"),
            40000,
            33433 + u16::from(ttl),
            ttl,
            b"probe",
        );
        let at = sim.now() + Duration::from_millis(10 * u64::from(ttl));
        sim.stack_mut::<Recorder>(src).unwrap().outbox.push((at, probe));
    }
    sim.kick(src);
    sim.run_until_idle(100_000).unwrap();
    let icmp = sim.stack_mut::<Recorder>(src).unwrap().icmp();
    assert_eq!(
        icmp,
        vec![(ip("10.1.0.1"), 11, 0), (ip("10.2.0.2"), 11, 0), (ip("10.3.0.2"), 3, 3)],
        "time exceeded from r1 and r2, then port unreachable from the destination"
    );
    // The quoted packet identifies the probe (destination port).
    let rec = sim.stack_mut::<Recorder>(src).unwrap();
    let (_, err) = &rec.received[1];
    let quoted = parse_ip(&err[28..]).unwrap();
    assert_eq!(quoted.ports(), Some((40000, 33435)));
    let r1 = ns(&sim, "r1");
    assert_eq!(sim.drops(r1).get(&DropReason::TtlExceeded), Some(&1));
    assert!(sim.conservation().holds());
}

#[test]
fn lossy_link_counts_link_loss_and_conserves_frames() {
    let mut sim = veth_pair(5);
    let red = ns(&sim, "red");
    let lossy = LinkParams { loss: 0.3, ..LinkParams::default() };
    sim.link_set_params(red, "veth-red", lossy).unwrap();
    ping(&mut sim, "red", "10.0.0.1", "10.0.0.2", 100);
    let lost = sim.drops(red).get(&DropReason::LinkLoss).copied().unwrap_or(0);
    let got = replies(&mut sim, "red", "10.0.0.2") as u64;
    assert!(lost > 10 && lost < 60, "lost {lost}");
    assert!(got < 100 && got > 40, "replies {got}");
    let c = sim.conservation();
    assert!(c.holds(), "{c}");
    // Mid-flight the books balance too.
    let mut sim = veth_pair(5);
    let red = ns(&sim, "red");
    let slow = LinkParams { latency: Duration::from_millis(10), ..LinkParams::default() };
    sim.link_set_params(red, "veth-red", slow).unwrap();
    let p = packet::icmp_echo_request(v4("10.0.0.1"), v4("10.0.0.2"), 1, 1, 64, b"");
    sim.send_ip(red, &p);
    sim.run_until(Time::from_millis(5));
    let c = sim.conservation();
    assert_eq!(c.in_flight, 2, "the ARP request on the wire and the packet waiting for it: {c}");
    assert!(c.holds(), "{c}");
}

#[test]
fn bandwidth_serialises_and_the_queue_overflows() {
    let mut sim = veth_pair(6);
    let red = ns(&sim, "red");
    let blue_ns = ns(&sim, "blue");
    sim.attach_stack(blue_ns, Recorder::default());
    // Resolve ARP first so the burst is pure data.
    ping(&mut sim, "red", "10.0.0.1", "10.0.0.2", 1);
    let link = LinkParams {
        latency: Duration::from_millis(1),
        bandwidth_bps: Some(1_000_000),
        loss: 0.0,
        queue_limit: 3,
    };
    sim.link_set_params(red, "veth-red", link).unwrap();
    let start = sim.now();
    for i in 0..10 {
        let p =
            packet::udp_datagram(v4("10.0.0.1"), v4("10.0.0.2"), 5000, 6000 + i, 64, &[0u8; 97]);
        sim.send_ip(red, &p);
    }
    sim.run_until_idle(10_000).unwrap();
    assert_eq!(sim.drops(red).get(&DropReason::QueueFull), Some(&7));
    let got = &sim.stack_mut::<Recorder>(blue_ns).unwrap().received;
    // The ping request that resolved ARP, then 3 datagrams of 139-byte frames (1112 µs each at
    // 1 Mbit/s) arriving 1 ms after their last bit.
    assert_eq!(got.len(), 4);
    let t: Vec<u64> = got[1..].iter().map(|(t, _)| (*t - start).as_micros() as u64).collect();
    assert_eq!(t, vec![1112 + 1000, 2224 + 1000, 3336 + 1000]);
    assert!(sim.conservation().holds());
}

#[test]
fn mtu_drops_and_frag_needed() {
    let mut sim = Sim::new(7);
    run(&mut sim, ROUTER);
    run(
        &mut sim,
        "ip netns exec router sysctl -w net.ipv4.ip_forward=1\nip -n router link set right0 mtu 1000",
    );
    let left = ns(&sim, "left");
    let router = ns(&sim, "router");
    sim.attach_stack(left, Recorder::default());
    // DF is set by the builders: the router answers "fragmentation needed, MTU 1000".
    let big = packet::icmp_echo_request(v4("10.0.1.2"), v4("10.0.2.2"), 1, 1, 64, &[0u8; 1200]);
    sim.send_ip(left, &big);
    sim.run_until_idle(10_000).unwrap();
    assert_eq!(sim.drops(router).get(&DropReason::Mtu), Some(&1));
    let rec = sim.stack_mut::<Recorder>(left).unwrap();
    let (_, err) = rec.received.last().unwrap();
    assert_eq!((err[20], err[21]), (3, 4));
    assert_eq!(u16::from_be_bytes([err[26], err[27]]), 1000);
    // Without DF the packet is dropped too (kns does not fragment).
    let mut nodf = big.clone();
    nodf[6] = 0;
    let mut pkt = smoltcp::wire::Ipv4Packet::new_unchecked(&mut nodf[..]);
    pkt.fill_checksum();
    sim.send_ip(left, &nodf);
    sim.run_until_idle(10_000).unwrap();
    assert_eq!(sim.drops(router).get(&DropReason::Mtu), Some(&2));
    // A frame larger than the receiving veth's MTU is dropped at the link.
    run(&mut sim, "ip -n right link set eth0 mtu 600\nip -n router link set right0 mtu 1500");
    sim.send_ip(left, &big);
    sim.run_until_idle(10_000).unwrap();
    assert_eq!(sim.drops(router).get(&DropReason::Mtu), Some(&3));
    assert!(sim.conservation().holds());
}

const VXLAN: &str = "
ip netns add node1
ip netns add node2
ip netns add pod1
ip netns add pod2
ip -n node1 link add eth0 type veth peer name eth0 netns node2
ip -n node1 addr add 192.168.0.11/24 dev eth0
ip -n node2 addr add 192.168.0.12/24 dev eth0
ip -n node1 link set eth0 up
ip -n node2 link set eth0 up
ip -n node1 link add vxlan0 type vxlan id 42 local 192.168.0.11 dstport 4789 dev eth0
ip -n node2 link add vxlan0 type vxlan id 42 local 192.168.0.12 dstport 4789 dev eth0
ip netns exec node1 bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.168.0.12
ip netns exec node2 bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.168.0.11
ip -n node1 link add br0 type bridge
ip -n node2 link add br0 type bridge
ip -n node1 link set vxlan0 master br0
ip -n node2 link set vxlan0 master br0
ip -n node1 link add veth-pod1 type veth peer name eth0 netns pod1
ip -n node2 link add veth-pod2 type veth peer name eth0 netns pod2
ip -n node1 link set veth-pod1 master br0
ip -n node2 link set veth-pod2 master br0
ip -n node1 link set br0 up
ip -n node2 link set br0 up
ip -n node1 link set vxlan0 up
ip -n node2 link set vxlan0 up
ip -n node1 link set veth-pod1 up
ip -n node2 link set veth-pod2 up
ip -n pod1 addr add 10.244.0.2/24 dev eth0
ip -n pod2 addr add 10.244.0.3/24 dev eth0
ip -n pod1 link set eth0 mtu 1450
ip -n pod2 link set eth0 mtu 1450
ip -n pod1 link set eth0 up
ip -n pod2 link set eth0 up
";

#[test]
fn vxlan_overlay_between_two_nodes() {
    let mut sim = Sim::new(8);
    run(&mut sim, VXLAN);
    let pod1 = ns(&sim, "pod1");
    sim.attach_stack(pod1, Recorder::default());
    let node2 = ns(&sim, "node2");
    let cap = sim.capture(node2, "eth0").unwrap();
    sim.enable_trace();
    ping(&mut sim, "pod1", "10.244.0.2", "10.244.0.3", 2);
    assert_eq!(replies(&mut sim, "pod1", "10.244.0.3"), 2);
    // On the underlay every frame is UDP 4789 between the node addresses.
    let mut pcap = Vec::new();
    sim.write_pcap(cap, &mut pcap).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(&pcap[..]).unwrap();
    let mut n = 0;
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.unwrap();
        if pkt.data[12..14] != [0x08, 0x00] {
            continue; // underlay ARP
        }
        let s = parse_ip(&pkt.data[14..]).unwrap();
        assert_eq!(s.ports().map(|p| p.1), Some(4789));
        assert!(s.src == ip("192.168.0.11") || s.src == ip("192.168.0.12"));
        n += 1;
    }
    assert_eq!(n, 6, "ARP request+reply and two echo request/reply pairs, encapsulated");
    assert!(
        sim.trace().iter().any(
            |e| matches!(&e.what, TraceWhat::Tunnel(t) if t.starts_with("vxlan encap vni 42"))
        )
    );
    let fdb = run(&mut sim, "ip netns exec node2 bridge fdb show dev vxlan0");
    assert!(fdb.contains("00:00:00:00:00:00 dev vxlan0 dst 192.168.0.11 self permanent"), "{fdb}");
    assert!(fdb.contains(" dst 192.168.0.11 self\n"), "learned the remote pod's MAC: {fdb}");
    // A frame bigger than the VXLAN device's MTU (1450) is dropped at the bridge, as in Linux.
    run(&mut sim, "ip -n pod1 link set eth0 mtu 1500");
    let big = packet::icmp_echo_request(v4("10.244.0.2"), v4("10.244.0.3"), 1, 9, 64, &[0u8; 1440]);
    sim.send_ip(pod1, &big);
    sim.run_until_idle(10_000).unwrap();
    let node1 = ns(&sim, "node1");
    assert_eq!(sim.drops(node1).get(&DropReason::Mtu), Some(&1));
    assert!(sim.conservation().holds(), "{}", sim.conservation());
}

fn lossy_run(seed: u64, loss: f64) -> (u64, u64, usize) {
    let mut sim = Sim::new(seed);
    run(&mut sim, TWO_ROUTERS);
    let src = ns(&sim, "src");
    let r1 = ns(&sim, "r1");
    sim.attach_stack(src, Recorder::default());
    sim.link_set_params(r1, "east", LinkParams { loss, ..LinkParams::default() }).unwrap();
    sim.enable_trace();
    ping(&mut sim, "src", "10.1.0.2", "10.3.0.2", 40);
    let lost = sim.total_drops().get(&DropReason::LinkLoss).copied().unwrap_or(0);
    (sim.trace_hash(), lost, sim.trace().len())
}

#[test]
fn determinism_same_seed_same_trace() {
    let a = lossy_run(42, 0.2);
    let b = lossy_run(42, 0.2);
    assert_eq!(a, b, "seed 42 must reproduce exactly");
    // Without loss the seed changes nothing at all.
    assert_eq!(lossy_run(1, 0.0), lossy_run(2, 0.0));
    // With loss a different seed changes which frames are lost.
    let c = lossy_run(43, 0.2);
    assert_ne!(a.0, c.0, "different seeds, different losses");
    assert!(a.1 > 0 && c.1 > 0);
}

#[test]
fn pcap_readback_shows_arp_icmp_and_a_tcp_reset() {
    let mut sim = veth_pair(9);
    let red = ns(&sim, "red");
    let cap = sim.capture(red, "veth-red").unwrap();
    ping(&mut sim, "red", "10.0.0.1", "10.0.0.2", 1);
    // A SYN to a port nobody listens on is answered with RST+ACK by blue's IP layer.
    let mut syn = packet::udp_datagram(v4("10.0.0.1"), v4("10.0.0.2"), 1, 1, 64, &[0u8; 12]);
    {
        syn[9] = 6; // protocol TCP: rebuild as a 20-byte TCP header
        let total = 20 + 20;
        syn.truncate(total);
        syn[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let mut ipp = smoltcp::wire::Ipv4Packet::new_unchecked(&mut syn[..]);
        ipp.fill_checksum();
        let mut t = smoltcp::wire::TcpPacket::new_unchecked(&mut syn[20..]);
        t.set_src_port(40001);
        t.set_dst_port(80);
        t.set_seq_number(smoltcp::wire::TcpSeqNumber(1000));
        t.set_ack_number(smoltcp::wire::TcpSeqNumber(0));
        t.set_header_len(20);
        t.clear_flags();
        t.set_syn(true);
        t.set_window_len(64240);
        t.fill_checksum(
            &smoltcp::wire::IpAddress::v4(10, 0, 0, 1),
            &smoltcp::wire::IpAddress::v4(10, 0, 0, 2),
        );
    }
    sim.send_ip(red, &syn);
    sim.run_until_idle(10_000).unwrap();
    let mut buf = Vec::new();
    assert_eq!(sim.write_pcap(cap, &mut buf).unwrap(), 6);
    let mut r = pcap_file::pcap::PcapReader::new(&buf[..]).unwrap();
    assert_eq!(r.header().datalink, pcap_file::DataLink::ETHERNET);
    let mut kinds = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        let desc = match (p.data[12], p.data[13]) {
            (0x08, 0x06) => format!("arp op {}", p.data[21]),
            (0x08, 0x00) => match parse_ip(&p.data[14..]).unwrap().l4 {
                L4Summary::Icmp { ty, .. } => format!("icmp {ty}"),
                L4Summary::Tcp { flags, .. } => {
                    format!("tcp syn={} ack={} rst={}", flags.syn, flags.ack, flags.rst)
                }
                other => format!("{other:?}"),
            },
            _ => "other".into(),
        };
        kinds.push(desc);
    }
    assert_eq!(
        kinds,
        [
            "arp op 1",
            "arp op 2",
            "icmp 8",
            "icmp 0",
            "tcp syn=true ack=false rst=false",
            "tcp syn=false ack=true rst=true"
        ]
    );
}

#[test]
fn the_engine_jumps_to_the_stack_deadline() {
    let mut sim = veth_pair(10);
    let red = ns(&sim, "red");
    let p = packet::icmp_echo_request(v4("10.0.0.1"), v4("10.0.0.2"), 1, 1, 64, b"");
    sim.stack_mut::<Recorder>(red).unwrap().outbox.push((Time::from_secs(100), p));
    sim.kick(red);
    let events = sim.run_until_idle(1000).unwrap();
    assert!(events < 20, "{events} events: no ticking while waiting");
    let rec = sim.stack_mut::<Recorder>(red).unwrap();
    assert_eq!(rec.received.len(), 1);
    assert_eq!(rec.received[0].0, Time::from_secs(100));
    assert!(rec.polls <= 3, "polled {} times", rec.polls);
}

#[test]
fn a_forwarding_loop_hits_the_event_limit_or_ttl() {
    // Two routers pointing a prefix at each other: TTL expiry ends the loop.
    let mut sim = Sim::new(11);
    run(&mut sim, TWO_ROUTERS);
    run(
        &mut sim,
        "ip -n r2 route add 10.9.0.0/16 via 10.2.0.1\nip -n r1 route add 10.9.0.0/16 via 10.2.0.2",
    );
    let src = ns(&sim, "src");
    let p = packet::icmp_echo_request(v4("10.1.0.2"), v4("10.9.0.1"), 1, 1, 64, b"");
    sim.send_ip(src, &p);
    assert!(sim.run_until_idle(10).is_err(), "a small limit stops the run and names the seed");
    sim.run_until_idle(100_000).unwrap();
    assert_eq!(sim.total_drops().get(&DropReason::TtlExceeded), Some(&1));
    assert!(sim.conservation().holds());
}

#[test]
fn a_point_to_point_link_delays_by_its_latency() {
    let mut sim = Sim::new(12);
    let n1 = sim.netns_add("node1").unwrap();
    let n2 = sim.netns_add("node2").unwrap();
    let wan = LinkParams { latency: Duration::from_millis(5), ..LinkParams::default() };
    sim.link_connect(n1, "wan0", n2, "wan0", wan).unwrap();
    sim.addr_add(n1, "wan0", "192.0.2.1/30".parse().unwrap()).unwrap();
    sim.addr_add(n2, "wan0", "192.0.2.2/30".parse().unwrap()).unwrap();
    sim.attach_stack(n1, Recorder::default());
    ping(&mut sim, "node1", "192.0.2.1", "192.0.2.2", 2);
    let times: Vec<Time> =
        sim.stack_mut::<Recorder>(n1).unwrap().received.iter().map(|(t, _)| *t).collect();
    // The first round trip includes the ARP exchange.
    assert_eq!(times, vec![Time::from_millis(20), Time::from_millis(1010)]);
}

#[test]
fn a_stale_neighbour_is_reprobed_and_a_new_mac_learned() {
    let mut sim = veth_pair(13);
    ping(&mut sim, "red", "10.0.0.1", "10.0.0.2", 1);
    // blue's interface gets a new MAC (as a restarted pod with the same IP would).
    run(&mut sim, "ip -n blue link set veth-blue address 02:00:00:00:be:ef");
    sim.run_for(Duration::from_secs(60));
    ping(&mut sim, "red", "10.0.0.1", "10.0.0.2", 2);
    // The first request went to the old MAC and was refused; the re-probe learned the new one.
    let blue = ns(&sim, "blue");
    assert_eq!(sim.drops(blue).get(&DropReason::NotForUs), Some(&1));
    assert_eq!(replies(&mut sim, "red", "10.0.0.2"), 2);
    assert!(sim.ip(Some("red"), "neigh").unwrap().contains("lladdr 02:00:00:00:be:ef REACHABLE"));
    assert!(sim.conservation().holds());
}

#[test]
fn bridge_fdb_entries_age_out_in_virtual_time() {
    let mut sim = Sim::new(14);
    run(&mut sim, BRIDGE);
    let a = ns(&sim, "a");
    sim.attach_stack(a, Recorder::default());
    ping(&mut sim, "a", "10.0.0.1", "10.0.0.2", 1);
    assert_eq!(run(&mut sim, "bridge fdb show").lines().count(), 2);
    sim.run_for(Duration::from_secs(290));
    assert_eq!(run(&mut sim, "bridge fdb show").lines().count(), 2);
    sim.run_for(Duration::from_secs(11));
    assert_eq!(run(&mut sim, "bridge fdb show"), "", "300 s ageing time");
    // An aged-out destination is flooded again: c sees the next request to b.
    sim.enable_trace();
    ping(&mut sim, "a", "10.0.0.1", "10.0.0.2", 1);
    assert!(sim.trace().iter().any(|e| e.ns == "c" && e.what == TraceWhat::Rx));
}

/// Calico-style routing: the pod's gateway 169.254.1.1 exists nowhere; the host side of the
/// veth has no address and answers ARP by proxy, and the host routes a /32 to the pod.
const PROXY_ARP: &str = "
ip netns add node
ip netns add peer
ip netns add pod
ip -n node link add eth0 type veth peer name eth0 netns peer
ip -n node addr add 192.168.0.10/24 dev eth0
ip -n peer addr add 192.168.0.20/24 dev eth0
ip -n node link set eth0 up
ip -n peer link set eth0 up
ip -n peer route add 10.244.0.0/16 via 192.168.0.10
ip -n node route add default via 192.168.0.20
ip -n node link add cali0 type veth peer name eth0 netns pod
ip -n node link set cali0 up
ip -n pod addr add 10.244.0.5/32 dev eth0
ip -n pod link set eth0 up
ip -n pod route add 169.254.1.1 dev eth0 scope link
ip -n pod route add default via 169.254.1.1 dev eth0
ip -n node route add 10.244.0.5/32 dev cali0 scope link
ip netns exec node sysctl -w net.ipv4.ip_forward=1
ip netns exec node sysctl -w net.ipv4.conf.cali0.proxy_arp=1
";

#[test]
fn proxy_arp_and_host_routes_reach_a_pod() {
    let mut sim = Sim::new(15);
    run(&mut sim, PROXY_ARP);
    let pod = ns(&sim, "pod");
    sim.attach_stack(pod, Recorder::default());
    ping(&mut sim, "pod", "10.244.0.5", "192.168.0.20", 2);
    assert_eq!(replies(&mut sim, "pod", "192.168.0.20"), 2);
    // The pod's "gateway" resolved to the host side of the veth.
    let node = ns(&sim, "node");
    let cali = sim.iface_mac(sim.iface_id(node, "cali0").unwrap());
    let neigh = sim.ip(Some("pod"), "neigh").unwrap();
    assert!(
        neigh.contains(&format!("169.254.1.1 dev eth0 lladdr {}", packet::fmt_mac(cali))),
        "{neigh}"
    );
    // Without proxy ARP nobody answers for 169.254.1.1.
    run(
        &mut sim,
        "ip netns exec node sysctl -w net.ipv4.conf.cali0.proxy_arp=0\nip -n pod neigh del 169.254.1.1 dev eth0",
    );
    ping(&mut sim, "pod", "10.244.0.5", "192.168.0.20", 1);
    assert_eq!(sim.drops(pod).get(&DropReason::NoNeighbour), Some(&1));
    assert!(sim.conservation().holds());
}

#[test]
fn an_address_on_a_dummy_device_is_local_like_an_ipvs_service_ip() {
    let mut sim = Sim::new(16);
    run(&mut sim, ROUTER);
    run(
        &mut sim,
        "
ip -n router link add kube-ipvs0 type dummy
ip -n router addr add 10.96.0.10/32 dev kube-ipvs0
ip -n router link set kube-ipvs0 up
ip -n left route add 10.96.0.0/12 via 10.0.1.1
ip -n router link set lo up
",
    );
    let left = ns(&sim, "left");
    sim.attach_stack(left, Recorder::default());
    // No forwarding needed: the service address belongs to the router namespace.
    ping(&mut sim, "left", "10.0.1.2", "10.96.0.10", 1);
    assert_eq!(replies(&mut sim, "left", "10.96.0.10"), 1);
    let router = ns(&sim, "router");
    let get = sim.route_get(router, ip("127.0.0.53")).unwrap();
    assert!(get.local, "all of 127.0.0.0/8 is local once lo is up");
    assert!(!sim.route_get(router, ip("10.96.0.11")).map(|g| g.local).unwrap_or(false));
}

#[test]
fn a_port_moved_out_of_the_bridge_no_longer_receives_its_frames() {
    let mut sim = Sim::new(17);
    run(&mut sim, BRIDGE);
    let a = ns(&sim, "a");
    sim.attach_stack(a, Recorder::default());
    ping(&mut sim, "a", "10.0.0.1", "10.0.0.3", 1);
    assert_eq!(replies(&mut sim, "a", "10.0.0.3"), 1);
    // veth-c leaves the bridge for another namespace, where it is brought up again.
    run(&mut sim, "ip netns add x\nip link set veth-c netns x\nip -n x link set veth-c up");
    ping(&mut sim, "a", "10.0.0.1", "10.0.0.3", 1);
    assert_eq!(replies(&mut sim, "a", "10.0.0.3"), 1, "no new reply: the learned port is stale");
    // The request was flooded to the remaining port instead, where b refused it.
    let b = ns(&sim, "b");
    assert_eq!(sim.drops(b).get(&DropReason::NotForUs), Some(&1));
    assert!(sim.conservation().holds());
}

#[test]
fn a_subnet_broadcast_reaches_every_host_and_draws_no_errors() {
    let mut sim = Sim::new(18);
    run(&mut sim, BRIDGE);
    let a = ns(&sim, "a");
    let b = ns(&sim, "b");
    sim.attach_stack(a, Recorder::default());
    sim.attach_stack(b, Recorder::default());
    let bcast = packet::udp_datagram(v4("10.0.0.1"), v4("10.0.0.255"), 68, 67, 64, b"hello all");
    sim.send_ip(a, &bcast);
    sim.run_until_idle(10_000).unwrap();
    let got = sim.stack_mut::<Recorder>(b).unwrap().summaries();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].dst, ip("10.0.0.255"));
    // c has no socket layer but does not answer a broadcast with "port unreachable".
    assert!(sim.stack_mut::<Recorder>(a).unwrap().received.is_empty());
    // No ARP was needed.
    assert_eq!(sim.ip(Some("a"), "neigh").unwrap(), "");
    assert!(sim.conservation().holds());
}

#[test]
fn an_announced_address_is_answered_by_its_announcer_and_moves_with_a_gratuitous_arp() {
    let mut sim = Sim::new(3);
    run(&mut sim, BRIDGE);
    let (a, b, c) = (ns(&sim, "a"), ns(&sim, "b"), ns(&sim, "c"));
    sim.attach_stack(a, Recorder::default());
    let mac = |sim: &Sim, n, dev| sim.iface_mac(sim.iface_id(n, dev).unwrap());
    let vip = v4("10.0.0.77");
    // b answers ARP for an address it does not own (a user-space responder).
    sim.arp_announce(b, "eth0", vip, false).unwrap();
    assert_eq!(sim.arp_announced(b), vec![(vip, "eth0".to_string())]);
    ping(&mut sim, "a", "10.0.0.1", "10.0.0.77", 1);
    let learnt = |sim: &Sim| {
        sim.neigh_list(a).into_iter().find(|e| e.0 == ip("10.0.0.77")).and_then(|e| e.2)
    };
    assert_eq!(learnt(&sim), Some(mac(&sim, b, "eth0")));
    // b does not own it: the echo request is not answered.
    assert_eq!(replies(&mut sim, "a", "10.0.0.77"), 0);
    // b withdraws and c takes over with a gratuitous ARP: a's entry follows at once.
    assert!(sim.arp_withdraw(b, "eth0", vip).unwrap());
    assert!(!sim.arp_withdraw(b, "eth0", vip).unwrap());
    sim.arp_announce(c, "eth0", vip, true).unwrap();
    sim.run_until_idle(10_000).unwrap();
    assert_eq!(learnt(&sim), Some(mac(&sim, c, "eth0")));
    assert!(sim.arp_announced(b).is_empty());
    assert!(sim.conservation().holds(), "{}", sim.conservation());
}
