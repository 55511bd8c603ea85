//! A pod network over VXLAN, built the way flannel's `vxlan` backend builds it: two nodes on
//! one underlay link, each with a bridge (`cni0`) for its pods' /24 and a VXLAN device
//! (`flannel.1`) that carries traffic for the other node's /24 inside UDP.
//!
//! Run with `cargo run --example vxlan_overlay [-- FILE.pcap]`; with a file name, the underlay
//! frames seen on node1's `eth0` are written there for Wireshark (`udp.port == 8472`).

use std::time::Duration;

use kns::sim::Sim;
use kns::sim::cmd::parse_command;
use kns::sim::net::{NetnsId, TraceWhat};
use kns::sim::stack::apps::{TcpClient, TcpClientConfig, TcpEcho};
use kns::sim::stack::{SmolStack, StackConfig};

/// The whole setup, as you would type it on two Linux machines (here: namespaces).
const SETUP: &str = "
# The underlay: node1 (192.168.0.11) and node2 (192.168.0.12) share one link, 2ms each way.
ip netns add node1
ip netns add node2
ip -n node1 link add eth0 type veth peer name eth0 netns node2
ip -n node1 addr add 192.168.0.11/24 dev eth0
ip -n node2 addr add 192.168.0.12/24 dev eth0
ip -n node1 link set eth0 up
ip -n node2 link set eth0 up
tc -n node1 qdisc add dev eth0 root netem delay 2ms
tc -n node2 qdisc add dev eth0 root netem delay 2ms
# The overlay device: VNI 1, UDP port 8472 (flannel's default), fixed MACs.
ip -n node1 link add flannel.1 type vxlan id 1 local 192.168.0.11 dstport 8472 dev eth0
ip -n node2 link add flannel.1 type vxlan id 1 local 192.168.0.12 dstport 8472 dev eth0
ip -n node1 link set flannel.1 address 0a:00:00:00:01:01
ip -n node2 link set flannel.1 address 0a:00:00:00:01:02
ip -n node1 addr add 10.244.0.0/32 dev flannel.1
ip -n node2 addr add 10.244.1.0/32 dev flannel.1
ip -n node1 link set flannel.1 up
ip -n node2 link set flannel.1 up
# What flanneld writes when it learns of the other node: a route to its pod /24 via its
# flannel.1 address, that address's MAC, and where to send frames for that MAC (the FDB).
# `onlink`: the gateway 10.244.1.0 is on flannel.1's link although no subnet there covers it.
ip -n node1 route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
ip -n node1 neigh add 10.244.1.0 lladdr 0a:00:00:00:01:02 dev flannel.1 nud permanent
ip netns exec node1 bridge fdb append 0a:00:00:00:01:02 dev flannel.1 dst 192.168.0.12
ip -n node2 route add 10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink
ip -n node2 neigh add 10.244.0.0 lladdr 0a:00:00:00:01:01 dev flannel.1 nud permanent
ip netns exec node2 bridge fdb append 0a:00:00:00:01:01 dev flannel.1 dst 192.168.0.11
ip netns exec node1 sysctl -w net.ipv4.ip_forward=1
ip netns exec node2 sysctl -w net.ipv4.ip_forward=1
# What the CNI plugin does for each pod: a bridge with the node's first pod address, and a
# veth into the pod, whose MTU leaves room for the 50 bytes of VXLAN headers.
ip netns add pod-a
ip netns add pod-b
ip -n node1 link add cni0 type bridge
ip -n node2 link add cni0 type bridge
ip -n node1 addr add 10.244.0.1/24 dev cni0
ip -n node2 addr add 10.244.1.1/24 dev cni0
ip -n node1 link set cni0 up
ip -n node2 link set cni0 up
ip -n node1 link add veth-a type veth peer name eth0 netns pod-a
ip -n node2 link add veth-b type veth peer name eth0 netns pod-b
ip -n node1 link set veth-a master cni0
ip -n node2 link set veth-b master cni0
ip -n node1 link set veth-a up
ip -n node2 link set veth-b up
ip -n pod-a addr add 10.244.0.2/24 dev eth0
ip -n pod-b addr add 10.244.1.2/24 dev eth0
ip -n pod-a link set eth0 mtu 1450
ip -n pod-b link set eth0 mtu 1450
ip -n pod-a link set eth0 up
ip -n pod-b link set eth0 up
ip -n pod-a route add default via 10.244.0.1
ip -n pod-b route add default via 10.244.1.1
";

/// Runs one command line and prints it with its output, like a terminal.
fn run(sim: &mut Sim, line: &str) -> Result<(), Box<dyn std::error::Error>> {
    let line = line.trim();
    if line.starts_with('#') {
        println!("{line}");
    }
    if let Some(command) = parse_command(line)? {
        println!("$ {line}");
        let output = sim.exec(&command)?;
        print!("{output}");
        if !output.is_empty() && !output.ends_with('\n') {
            println!();
        }
    }
    Ok(())
}

fn ns(sim: &Sim, name: &str) -> NetnsId {
    sim.netns(Some(name)).expect("created by SETUP")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pcap_file = std::env::args().nth(1);
    let mut sim = Sim::new(1);
    for line in SETUP.lines().filter(|l| !l.trim().is_empty()) {
        run(&mut sim, line)?;
    }
    println!("\n# What the overlay looks like from node1:");
    for line in [
        "ip -d -n node1 link show flannel.1",
        "ip netns exec node1 bridge fdb show dev flannel.1",
        "ip -n node1 route",
        "ip -n node1 route get 10.244.1.2",
    ] {
        run(&mut sim, line)?;
    }

    // A TCP echo server in pod-b, a client in pod-a on the other node.
    let (pod_a, pod_b, node1) = (ns(&sim, "pod-a"), ns(&sim, "pod-b"), ns(&sim, "node1"));
    for pod in [pod_a, pod_b] {
        let seed = sim.child_seed();
        sim.attach_stack(pod, SmolStack::new(StackConfig::with_seed(seed), sim.now()));
    }
    sim.stack_mut::<SmolStack>(pod_b).expect("attached").spawn(TcpEcho::new(7));
    let config = TcpClientConfig::new("10.244.1.2:7".parse()?, "hello across the overlay\n");
    let client = sim.stack_mut::<SmolStack>(pod_a).expect("attached").spawn(TcpClient::new(config));
    let capture = sim.capture(node1, "eth0")?;
    sim.enable_trace();
    sim.kick(pod_b);
    sim.kick(pod_a);
    sim.run_for(Duration::from_secs(2));

    let tcp = sim.stack_mut::<SmolStack>(pod_a).expect("attached").app::<TcpClient>(client);
    let tcp = tcp.expect("spawned above");
    let echoed = String::from_utf8_lossy(tcp.received()).into_owned();
    println!("\n# pod-a (10.244.0.2) sent a line to pod-b (10.244.1.2) port 7 and got back:");
    print!("  {echoed}");

    // Follow the SYN: routed by node1 to flannel.1, wrapped in UDP 8472 between the node
    // addresses, carried by the underlay, unwrapped on node2 and routed to cni0 and pod-b.
    // A frame keeps its id (#N) through encapsulation, so one filter follows its whole journey.
    // Watch the TTL fall by one at each node that routes it (64, 63, 62), the inner packet
    // vanish behind the UDP header on node1 and reappear on node2, and the 4ms wait on node1's
    // eth0 while the underlay's ARP crosses the 2ms link and back.
    let trace = sim.trace();
    let syn = trace
        .iter()
        .find(|e| e.ns == "node1" && matches!(&e.what, TraceWhat::Tunnel(_)))
        .map(|e| e.frame);
    println!("\n# The journey of the first frame node1 encapsulated (pod-a's SYN):");
    for event in trace.iter().filter(|e| Some(e.frame) == syn) {
        println!("  {event}");
    }

    let mut pcap = Vec::new();
    let frames_seen = sim.write_pcap(capture, &mut pcap)?;
    match pcap_file {
        Some(path) => {
            std::fs::write(&path, &pcap)?;
            println!("\nwrote {frames_seen} underlay frames of node1/eth0 to {path}");
        }
        None => println!("\n(node1/eth0 saw {frames_seen} frames; give a file name to save them)"),
    }
    println!("{}", sim.conservation());
    if echoed != "hello across the overlay\n" {
        return Err("the echo did not come back".into());
    }
    Ok(())
}
