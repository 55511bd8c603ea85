//! Random command sequences and random traffic never panic, always go idle, and always balance
//! the books: every frame sent is delivered or dropped with a reason.

use kns_sim::Sim;
use kns_sim::net::packet;
use proptest::prelude::*;

const NS: &[&str] = &["a", "b", "c"];
const DEV: &[&str] = &["v0", "v1", "br0", "vx0", "lo", "eth9"];
const ADDR: &[&str] = &["10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.1.2", "192.168.0.1", "127.0.0.1"];

/// A working start (a routed pair and a bridge) for the random commands to modify.
const BASE: &str = "
ip netns add a
ip netns add b
ip netns add c
ip -n a link add v0 type veth peer name v0 netns b
ip -n a addr add 10.0.0.1/24 dev v0
ip -n b addr add 10.0.0.2/24 dev v0
ip -n a link set v0 up
ip -n b link set v0 up
ip -n b link add br0 type bridge
ip -n b link set br0 up
ip -n b addr add 10.0.1.1/24 dev br0
ip -n b link add v1 type veth peer name v1 netns c
ip -n b link set v1 master br0
ip -n b link set v1 up
ip -n c addr add 10.0.1.2/24 dev v1
ip -n c link set v1 up
ip -n a route add default via 10.0.0.2
ip -n c route add default via 10.0.1.1
ip netns exec b sysctl -w net.ipv4.ip_forward=1
";

fn command() -> impl Strategy<Value = String> {
    let ns = prop::sample::select(NS);
    let ns2 = prop::sample::select(NS);
    let dev = prop::sample::select(DEV);
    let dev2 = prop::sample::select(DEV);
    let addr = prop::sample::select(ADDR);
    let addr2 = prop::sample::select(ADDR);
    let plen = prop::sample::select(&[8u8, 16, 24, 32][..]);
    (ns, ns2, dev, dev2, addr, addr2, plen, 0..18u8).prop_map(|(n, m, d, e, a, g, p, k)| match k {
        0 => format!("ip netns add {n}"),
        1 => format!("ip -n {n} link add {d} type veth peer name {e} netns {m}"),
        2 => format!("ip -n {n} link add {d} type bridge"),
        3 => format!("ip -n {n} link set {d} master {e}"),
        4 => format!("ip -n {n} link set {d} up"),
        5 => format!("ip -n {n} link set {d} down"),
        6 => format!("ip -n {n} addr add {a}/{p} dev {d}"),
        7 => format!("ip -n {n} route add default via {g}"),
        8 => format!("ip -n {n} route add {a}/{p} dev {d}"),
        9 => format!("ip netns exec {n} sysctl -w net.ipv4.ip_forward=1"),
        10 => format!("ip -n {n} link set {d} netns {m}"),
        11 => format!("ip -n {n} link add {d} type vxlan id 7 dstport 4789"),
        12 => format!("ip netns exec {n} bridge fdb append 00:00:00:00:00:00 dev {d} dst {g}"),
        13 => format!("ip -n {n} link set {d} mtu 600"),
        14 => format!("ip -n {n} link del {d}"),
        15 => format!("ip netns del {n}"),
        16 => format!("ip netns exec {n} bridge link set dev {d} hairpin on"),
        _ => format!("ip -n {n} neigh add {a} lladdr 02:00:00:00:00:0{p} dev {d}", p = p % 10),
    })
}

fn traffic() -> impl Strategy<Value = (usize, Vec<u8>)> {
    let from = 0..NS.len();
    let echo = (prop::sample::select(ADDR), prop::sample::select(ADDR), 1..65u8, 0..1600usize)
        .prop_map(|(s, d, ttl, len)| {
            packet::icmp_echo_request(
                s.parse().unwrap(),
                d.parse().unwrap(),
                1,
                1,
                ttl,
                &vec![0; len],
            )
        });
    let udp = (prop::sample::select(ADDR), prop::sample::select(ADDR)).prop_map(|(s, d)| {
        packet::udp_datagram(
            s.parse().unwrap(),
            d.parse().unwrap(),
            1000,
            4789,
            64,
            &[8, 0, 0, 0, 0, 0, 7, 0],
        )
    });
    let junk = prop::collection::vec(any::<u8>(), 0..80);
    (from, prop_oneof![echo, udp, junk])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_worlds_balance(
        seed in any::<u64>(),
        cmds in prop::collection::vec(command(), 0..40),
        sends in prop::collection::vec(traffic(), 0..20),
    ) {
        let mut sim = Sim::new(seed);
        for c in BASE.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).chain(cmds) {
            let parsed = kns_sim::cmd::parse_command(&c).unwrap().unwrap();
            let _ = sim.exec(&parsed);
        }
        for (from, pkt) in &sends {
            if let Ok(n) = sim.netns(Some(NS[*from])) {
                sim.send_ip(n, pkt);
            }
        }
        sim.run_until_idle(1_000_000).unwrap();
        let c = sim.conservation();
        prop_assert!(c.holds(), "{}", c);
        prop_assert_eq!(c.in_flight, 0);
        // Every show command works on whatever was built.
        for n in NS {
            if sim.netns(Some(n)).is_ok() {
                for show in ["link", "addr", "route", "neigh", "route get 10.0.1.2"] {
                    let _ = sim.ip(Some(n), show);
                }
                let _ = sim.exec(&kns_sim::cmd::parse_command(&format!("ip netns exec {n} bridge fdb show")).unwrap().unwrap());
            }
        }
    }
}
