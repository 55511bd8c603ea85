//! Traceroute across two routers: UDP probes with TTL 1, 2, 3 draw "time exceeded" from each
//! router in turn, then "port unreachable" from the destination.
//!
//! Run with `cargo run -p kns-sim --example traceroute`.

use kns_sim::Sim;
use kns_sim::net::packet::udp_datagram;
use kns_sim::net::{TraceWhat, describe};
use kns_sim::wire::L4Summary;

/// The topology: src - r1 - r2 - dst, one /24 per link.
const SCRIPT: &str = include_str!("two_routers.sh");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sim = Sim::new(1);
    for line in SCRIPT.lines() {
        if let Some(cmd) = kns_sim::cmd::parse_command(line)? {
            sim.exec(&cmd)?;
        }
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
