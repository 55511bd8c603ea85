//! The Linux steps: switching, routing and namespaces, typed as a person would type them.

use kns_sim::script::{ScriptRunner, StepResult};

use super::{Mismatch, Recorder, StepDef};

/// Seed of every tour world (same seed, same output).
pub const SEED: u64 = 1;

/// Runs one command line, recording it and its output.
fn sh(rec: &mut Recorder, runner: &mut ScriptRunner, line: &str) -> Result<StepResult, Mismatch> {
    rec.command(line);
    match runner.run_line(1, line) {
        Ok(Some(r)) => {
            if !r.output.trim().is_empty() {
                rec.observe(r.output.clone());
            }
            Ok(r)
        }
        Ok(None) => Err(Mismatch {
            expected: format!("`{line}` to be a command"),
            observed: "a comment or a blank line".into(),
        }),
        Err(e) => Err(Mismatch {
            expected: format!("`{line}` to run"),
            observed: format!("error: {}", e.message),
        }),
    }
}

/// Runs configuration lines; records them as one block of commands.
fn setup(rec: &mut Recorder, runner: &mut ScriptRunner, lines: &str) -> Result<(), Mismatch> {
    for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
        sh(rec, runner, line)?;
    }
    Ok(())
}

/// Whether a ping's output reports at least one reply.
fn ping_ok(r: &StepResult) -> bool {
    r.ok && !r.output.contains(" 0 received")
}

pub(super) fn steps() -> Vec<StepDef> {
    vec![
        StepDef {
            id: "l2-switching",
            title: "L2 switching: interfaces, addresses and a bridge",
            explanation: "\
A switch forwards Ethernet frames by MAC address and learns which address sits behind
which port from the frames it sees. On Linux a bridge device is that switch. `ip link`
lists and creates interfaces (a veth pair is a cable with two ends), `ip addr` gives an
interface an IP address. Two hosts on one subnet talk directly: ARP finds the peer's MAC,
the bridge carries the frame, no router is involved.",
            run: l2_switching,
        },
        StepDef {
            id: "routing",
            title: "Routers and `ip route add`",
            explanation: "\
A host sends a packet straight to the destination only when it is on a directly connected
subnet; anything else needs a route naming a gateway. A router is a host with a leg in
several subnets that forwards packets between them (ip_forward on). Until a route to the
other subnet exists, the kernel refuses to send; once it does, traceroute shows the
router as the first hop.",
            run: routing,
        },
        StepDef {
            id: "netns-bridge",
            title: "Network namespaces joined by a Linux bridge",
            explanation: "\
A network namespace is a separate copy of the network stack: its own interfaces, routes
and firewall. Containers live in one each. To connect several namespaces, create a bridge
on the host, plug one end of a veth pair into it and move the other end into the
namespace. Giving the bridge an address makes the host a member of that network too.
This is exactly what a CNI bridge plugin does for every pod on a node.",
            run: netns_bridge,
        },
    ]
}

fn l2_switching(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut r = ScriptRunner::new(SEED);
    setup(
        rec,
        &mut r,
        "ip netns add h1
         ip netns add h2
         ip link add br0 type bridge
         ip link set br0 up
         ip link add veth-h1 type veth peer name eth0 netns h1
         ip link add veth-h2 type veth peer name eth0 netns h2
         ip link set veth-h1 master br0
         ip link set veth-h2 master br0
         ip link set veth-h1 up
         ip link set veth-h2 up
         ip -n h1 addr add 192.168.10.1/24 dev eth0
         ip -n h2 addr add 192.168.10.2/24 dev eth0
         ip -n h1 link set eth0 up
         ip -n h2 link set eth0 up",
    )?;
    let link = sh(rec, &mut r, "ip link")?;
    rec.expect(
        ["veth-h1", "veth-h2"].iter().all(|v| {
            link.output.lines().any(|l| l.contains(&format!("{v}@")) && l.contains("master br0"))
        }),
        "both veth ends to be ports of br0",
        &link.output,
    )?;
    let addr = sh(rec, &mut r, "ip -n h1 addr show dev eth0")?;
    rec.expect(
        addr.output.contains("192.168.10.1/24"),
        "h1's eth0 to hold 192.168.10.1/24",
        &addr.output,
    )?;
    let fdb_before = sh(rec, &mut r, "bridge fdb show br br0")?;
    if fdb_before.output.trim().is_empty() {
        rec.observe("(nothing learnt yet: no frame has crossed the bridge)");
    }
    let ping = sh(rec, &mut r, "ip netns exec h1 ping -c 2 192.168.10.2")?;
    rec.expect(ping_ok(&ping), "h1 to reach h2 across the bridge", &ping.output)?;
    let neigh = sh(rec, &mut r, "ip -n h1 neigh show")?;
    rec.expect(
        neigh.output.contains("192.168.10.2"),
        "h1 to have learnt h2's MAC by ARP",
        &neigh.output,
    )?;
    let fdb = sh(rec, &mut r, "bridge fdb show br br0")?;
    let learnt = |out: &str, port: &str| {
        out.lines().any(|l| l.contains(&format!("dev {port}")) && !l.contains("permanent"))
    };
    rec.expect(
        !learnt(&fdb_before.output, "veth-h1")
            && learnt(&fdb.output, "veth-h1")
            && learnt(&fdb.output, "veth-h2"),
        "the bridge to learn one MAC behind each port from the ping",
        format!("before:\n{}after:\n{}", fdb_before.output, fdb.output),
    )?;
    rec.observe(
        "The bridge learnt which MAC sits behind veth-h1 and veth-h2 from the frames it carried.",
    );
    Ok(())
}

fn routing(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut r = ScriptRunner::new(SEED);
    setup(
        rec,
        &mut r,
        "ip netns add left
         ip netns add router
         ip netns add right
         ip link add l0 type veth peer name r0
         ip link add l1 type veth peer name r1
         ip link set l0 netns left
         ip link set r0 netns router
         ip link set r1 netns router
         ip link set l1 netns right
         ip -n left addr add 10.0.1.2/24 dev l0
         ip -n router addr add 10.0.1.1/24 dev r0
         ip -n router addr add 10.0.2.1/24 dev r1
         ip -n right addr add 10.0.2.2/24 dev l1
         ip -n left link set l0 up
         ip -n router link set r0 up
         ip -n router link set r1 up
         ip -n right link set l1 up
         ip netns exec router sysctl -w net.ipv4.ip_forward=1",
    )?;
    let before = sh(rec, &mut r, "ip netns exec left ping -c 1 10.0.2.2")?;
    rec.expect(!ping_ok(&before), "no way to 10.0.2.2 before a route exists", &before.output)?;
    rec.expect(
        before.output.contains("unreachable"),
        "the kernel to say the network is unreachable",
        &before.output,
    )?;
    sh(rec, &mut r, "ip -n left route add 10.0.2.0/24 via 10.0.1.1")?;
    sh(rec, &mut r, "ip -n right route add default via 10.0.2.1")?;
    let routes = sh(rec, &mut r, "ip -n left route")?;
    rec.expect(
        routes.output.contains("10.0.2.0/24 via 10.0.1.1"),
        "the new route in left's table",
        &routes.output,
    )?;
    let after = sh(rec, &mut r, "ip netns exec left ping -c 2 10.0.2.2")?;
    rec.expect(ping_ok(&after), "the ping to work through the router", &after.output)?;
    let trace = sh(rec, &mut r, "ip netns exec left traceroute -n 10.0.2.2")?;
    let hops: Vec<&str> = trace.output.lines().skip(1).collect();
    rec.expect(
        hops.len() == 2 && hops[0].contains("10.0.1.1") && hops[1].contains("10.0.2.2"),
        "two hops: the router 10.0.1.1, then 10.0.2.2",
        &trace.output,
    )?;
    Ok(())
}

fn netns_bridge(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut r = ScriptRunner::new(SEED);
    setup(
        rec,
        &mut r,
        "ip netns add red
         ip netns add blue",
    )?;
    let list = sh(rec, &mut r, "ip netns")?;
    rec.expect(
        list.output.contains("red") && list.output.contains("blue"),
        "both namespaces listed",
        &list.output,
    )?;
    let lo = sh(rec, &mut r, "ip -n red link")?;
    rec.expect(
        lo.output.contains("lo:") && !lo.output.contains("eth0"),
        "a new namespace to hold only its own loopback",
        &lo.output,
    )?;
    setup(
        rec,
        &mut r,
        "ip link add my-bridge type bridge
         ip link set dev my-bridge up
         ip addr add 10.200.0.254/24 dev my-bridge
         ip link add veth-red type veth peer name veth-red-br
         ip link add veth-blue type veth peer name veth-blue-br
         ip link set veth-red netns red
         ip link set veth-blue netns blue
         ip link set veth-red-br master my-bridge
         ip link set veth-blue-br master my-bridge
         ip link set veth-red-br up
         ip link set veth-blue-br up
         ip -n red addr add 10.200.0.1/24 dev veth-red
         ip -n blue addr add 10.200.0.2/24 dev veth-blue
         ip -n red link set veth-red up
         ip -n blue link set veth-blue up",
    )?;
    let p = sh(rec, &mut r, "ip netns exec red ping -c 1 10.200.0.2")?;
    rec.expect(ping_ok(&p), "red to reach blue through my-bridge", &p.output)?;
    let h = sh(rec, &mut r, "ping -c 1 10.200.0.1")?;
    rec.expect(ping_ok(&h), "the host to reach red through the bridge's own address", &h.output)?;
    let other = sh(rec, &mut r, "ip netns exec red ping -c 1 10.99.0.1")?;
    rec.expect(
        !ping_ok(&other),
        "no way out of red beyond its subnet (no default route)",
        &other.output,
    )?;
    Ok(())
}
