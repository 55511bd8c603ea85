//! Two namespaces joined by a veth pair, and one ping between them, hop by hop.
//!
//! Run with `cargo run -p kns-sim --example veth_ping`.

use kns_sim::Sim;
use kns_sim::net::packet::icmp_echo_request;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sim = Sim::new(1);
    let script = "
        ip netns add red
        ip netns add blue
        ip link add veth-red type veth peer name veth-blue
        ip link set veth-red netns red
        ip link set veth-blue netns blue
        ip -n red addr add 192.168.15.1/24 dev veth-red
        ip -n blue addr add 192.168.15.2/24 dev veth-blue
        ip -n red link set veth-red up
        ip -n blue link set veth-blue up";
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        println!("$ {line}");
        print!("{}", sim.ip(None, line)?);
    }
    println!("$ ip -n red addr");
    print!("{}", sim.ip(Some("red"), "addr")?);

    let red = sim.netns(Some("red"))?;
    sim.enable_trace();
    let ping =
        icmp_echo_request("192.168.15.1".parse()?, "192.168.15.2".parse()?, 1, 1, 64, b"hello");
    sim.send_ip(red, &ping);
    sim.run_until_idle(10_000)?;
    println!("\nOne ping from red to blue (blue's IP layer answers, red's takes the reply):");
    for hop in sim.trace() {
        println!("  {hop}");
    }
    println!("$ ip -n red neigh");
    print!("{}", sim.ip(Some("red"), "neigh")?);
    println!("\n{}", sim.conservation());
    Ok(())
}
