//! Three namespaces on a Linux bridge: the first ping floods an ARP broadcast to every port,
//! then the bridge forwards by the MAC addresses it learned.
//!
//! Run with `cargo run -p kns-sim --example bridge`.

use kns_sim::Sim;
use kns_sim::net::TraceWhat;
use kns_sim::net::packet::icmp_echo_request;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sim = Sim::new(1);
    sim.ip(None, "link add br0 type bridge")?;
    sim.ip(None, "link set dev br0 up")?;
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        sim.ip(None, &format!("netns add {name}"))?;
        sim.ip(None, &format!("link add veth-{name} type veth peer name eth0 netns {name}"))?;
        sim.ip(None, &format!("link set veth-{name} master br0"))?;
        sim.ip(None, &format!("link set veth-{name} up"))?;
        sim.ip(Some(name), &format!("addr add 10.0.0.{}/24 dev eth0", i + 1))?;
        sim.ip(Some(name), "link set eth0 up")?;
    }
    let a = sim.netns(Some("a"))?;
    sim.enable_trace();
    let ping = icmp_echo_request("10.0.0.1".parse()?, "10.0.0.3".parse()?, 1, 1, 64, b"hi");
    sim.send_ip(a, &ping);
    sim.run_until_idle(10_000)?;
    println!("Ping from a (10.0.0.1) to c (10.0.0.3), the bridge's decisions:");
    for hop in sim.trace().iter().filter(|h| matches!(h.what, TraceWhat::Bridged { .. })) {
        println!("  {hop}");
    }
    println!("$ bridge fdb show");
    print!("{}", sim.exec(&kns_sim::cmd::parse_command("bridge fdb show")?.ok_or("empty")?)?);
    println!("\n{}", sim.conservation());
    Ok(())
}
