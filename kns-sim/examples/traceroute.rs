//! Traceroute across two routers: UDP probes with TTL 1, 2, 3 draw "time exceeded" from each
//! router in turn, then "port unreachable" from the destination.
//!
//! Run with `cargo run -p kns-sim --example traceroute`.

use kns_sim::Sim;
use kns_sim::net::packet::udp_datagram;
use kns_sim::net::{TraceWhat, describe};
use kns_sim::wire::L4Summary;

const SCRIPT: &str = "
ip netns add src
ip netns add r1
ip netns add r2
ip netns add dst
ip -n src link add eth0 type veth peer name west netns r1
ip -n r1 link add east type veth peer name west netns r2
ip -n r2 link add east type veth peer name eth0 netns dst
ip -n src addr add 10.1.0.2/24 dev eth0
ip -n r1 addr add 10.1.0.1/24 dev west
ip -n r1 addr add 10.2.0.1/24 dev east
ip -n r2 addr add 10.2.0.2/24 dev west
ip -n r2 addr add 10.3.0.1/24 dev east
ip -n dst addr add 10.3.0.2/24 dev eth0
ip -n src link set eth0 up
ip -n r1 link set west up
ip -n r1 link set east up
ip -n r2 link set west up
ip -n r2 link set east up
ip -n dst link set eth0 up
ip -n src route add default via 10.1.0.1
ip -n r1 route add 10.3.0.0/24 via 10.2.0.2
ip -n r2 route add 10.1.0.0/24 via 10.2.0.1
ip -n dst route add default via 10.3.0.1
ip netns exec r1 sysctl -w net.ipv4.ip_forward=1
ip netns exec r2 sysctl -w net.ipv4.ip_forward=1
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sim = Sim::new(1);
    for line in SCRIPT.lines().filter(|l| !l.trim().is_empty()) {
        let cmd = kns_sim::cmd::parse_command(line)?.ok_or("empty line")?;
        sim.exec(&cmd)?;
    }
    let src = sim.netns(Some("src"))?;
    println!("$ ip -n src route get 10.3.0.2");
    let get = sim.route_get(src, "10.3.0.2".parse()?)?;
    println!("{}\n{}", get.to_iproute2(), get.explain());
    sim.enable_trace();
    println!("traceroute to 10.3.0.2, 3 hops max");
    for ttl in 1..=3u8 {
        let probe = udp_datagram(
            "10.1.0.2".parse()?,
            "10.3.0.2".parse()?,
            40000,
            33433 + u16::from(ttl),
            ttl,
            b"",
        );
        sim.send_ip(src, &probe);
        sim.run_until_idle(10_000)?;
        let answer = sim.take_trace().into_iter().find(|h| {
            h.ns == "src"
                && matches!(h.what, TraceWhat::Deliver(_))
                && matches!(h.summary.map(|s| s.l4), Some(L4Summary::Icmp { is_error: true, .. }))
        });
        match answer.and_then(|h| h.summary) {
            Some(s) => println!(" {ttl}  {}  ({})", s.src, describe(&s)),
            None => println!(" {ttl}  *"),
        }
    }
    println!("\n{}", sim.conservation());
    Ok(())
}
