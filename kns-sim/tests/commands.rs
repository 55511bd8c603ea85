//! The `ip`/`sysctl`/`bridge` commands of the seed documents and of iproute2 tutorials, run
//! literally against the emulator: outputs in iproute2's format, errors in its words.

mod common;

use common::{Recorder, ns, ping, replies, run};
use kns_sim::Sim;
use kns_sim::cmd::parse_command;
use kns_sim::net::IpError;

/// The commands of `seeds/004_*.txt`, in the order the document gives them, with the one
/// template (`ip route add <target-subnet-cidr> via <ip-addr>`) filled in.
#[test]
fn seed_document_commands_run_literally() {
    let mut sim = Sim::new(1);
    let out = run(&mut sim, "ip link");
    assert_eq!(
        out,
        "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
    );
    let out = run(&mut sim, "ip addr");
    assert!(
        out.contains(
            "    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n"
        ),
        "{out}"
    );
    assert_eq!(run(&mut sim, "ip route"), "");
    assert_eq!(run(&mut sim, "ip netns"), "");
    run(&mut sim, "sudo ip link add my-bridge type bridge");
    run(&mut sim, "sudo ip link set dev my-bridge up");
    let out = run(&mut sim, "ip link");
    assert!(
        out.contains(
            "2: my-bridge: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state DOWN"
        ),
        "a bridge without ports has no carrier: {out}"
    );
    run(&mut sim, "ip addr add 192.168.1.1/24 dev my-bridge");
    run(&mut sim, "ip route add 10.1.0.0/24 via 192.168.1.254");
    assert_eq!(
        run(&mut sim, "ip route"),
        "10.1.0.0/24 via 192.168.1.254 dev my-bridge linkdown\n192.168.1.0/24 dev my-bridge proto kernel scope link src 192.168.1.1 linkdown\n"
    );
    run(&mut sim, "ip netns add red");
    run(&mut sim, "ip netns add blue");
    assert_eq!(run(&mut sim, "ip netns"), "blue\nred\n");
}

#[test]
fn iproute2_errors() {
    let mut sim = Sim::new(1);
    run(
        &mut sim,
        "ip netns add red\nip link add br0 type bridge\nip addr add 10.0.0.1/24 dev br0\nip link set br0 up",
    );
    let err = |sim: &mut Sim, line: &str| -> String {
        let cmd = parse_command(line).map_err(IpError::from).and_then(|c| sim.exec(&c.unwrap()));
        cmd.unwrap_err().to_string()
    };
    assert_eq!(err(&mut sim, "ip link set eth9 up"), "Cannot find device \"eth9\"");
    assert_eq!(err(&mut sim, "ip addr add 10.0.0.1/24 dev br0"), "RTNETLINK answers: File exists");
    assert_eq!(err(&mut sim, "ip link add br0 type bridge"), "RTNETLINK answers: File exists");
    assert_eq!(
        err(&mut sim, "ip route add 10.2.0.0/16 via 192.0.2.1"),
        "Error: Nexthop has invalid gateway."
    );
    assert_eq!(err(&mut sim, "ip route add 10.0.0.0/24 dev br0"), "RTNETLINK answers: File exists");
    assert_eq!(err(&mut sim, "ip route del 10.9.0.0/16"), "RTNETLINK answers: No such process");
    assert_eq!(err(&mut sim, "ip route get 8.8.8.8"), "RTNETLINK answers: Network is unreachable");
    assert_eq!(
        err(&mut sim, "ip netns add red"),
        "Cannot create namespace file \"/var/run/netns/red\": File exists"
    );
    assert_eq!(
        err(&mut sim, "ip -n blue link"),
        "Cannot open network namespace \"blue\": No such file or directory"
    );
    assert_eq!(err(&mut sim, "ip addr show dev eth9"), "Device \"eth9\" does not exist.");
    assert_eq!(
        err(&mut sim, "ip neigh del 10.0.0.9 dev br0"),
        "RTNETLINK answers: No such file or directory"
    );
    assert_eq!(
        err(&mut sim, "sysctl -w net.ipv4.bogus=1"),
        "sysctl: cannot stat /proc/sys/net/ipv4/bogus: No such file or directory"
    );
    assert_eq!(
        err(&mut sim, "ip link add x type tunnelx"),
        "Error: Unknown device type \"tunnelx\"."
    );
    assert!(
        err(&mut sim, "ping -c 1 10.0.0.2").starts_with("Sim::exec runs configuration commands")
    );
}

#[test]
fn text_api_outputs() {
    let mut sim = Sim::new(1);
    sim.ip(None, "netns add red").unwrap();
    sim.ip(None, "link add veth0 type veth peer name veth1").unwrap();
    assert!(
        sim.ip(None, "link")
            .unwrap()
            .contains("2: veth0@veth1: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN")
    );
    sim.ip(None, "link set veth1 netns red").unwrap();
    sim.ip(Some("red"), "addr add 10.0.0.2/24 dev veth1").unwrap();
    sim.ip(None, "addr add 10.0.0.1/24 dev veth0").unwrap();
    sim.ip(None, "link set veth0 up").unwrap();
    // The peer is down: no carrier.
    assert!(sim.ip(None, "link show veth0").unwrap().contains(
        "2: veth0@if3: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state LOWERLAYERDOWN"
    ));
    sim.ip(Some("red"), "link set veth1 up").unwrap();
    let addr = sim.ip(Some("red"), "addr show veth1").unwrap();
    assert!(addr.contains("    inet 10.0.0.2/24 scope global veth1\n"), "{addr}");
    assert!(addr.contains("link-netns host"), "{addr}");
    // `ip netns exec` and `-n` reach the same namespace.
    assert_eq!(
        run(&mut sim, "ip netns exec red ip route"),
        "10.0.0.0/24 dev veth1 proto kernel scope link src 10.0.0.2\n"
    );
    assert_eq!(sim.ip(Some("red"), "route").unwrap(), sim.ip(None, "-n red route").unwrap());
    sim.ip(Some("red"), "neigh add 10.0.0.9 lladdr 02:00:00:00:00:09 dev veth1").unwrap();
    assert_eq!(
        sim.ip(Some("red"), "neigh").unwrap(),
        "10.0.0.9 dev veth1 lladdr 02:00:00:00:00:09 PERMANENT\n"
    );
    // Going down removes the connected route, as in Linux; deleting the namespace takes the
    // veth pair with it.
    sim.ip(Some("red"), "link set veth1 down").unwrap();
    assert_eq!(sim.ip(Some("red"), "route").unwrap(), "");
    sim.ip(None, "netns del red").unwrap();
    assert!(!sim.ip(None, "link").unwrap().contains("veth0"));
    assert_eq!(sim.ip(None, "netns list").unwrap(), "");
}

#[test]
fn a_namespace_created_by_text_pings() {
    let mut sim = Sim::new(1);
    run(
        &mut sim,
        "
# the classic two-namespace tutorial, typed as root
sudo ip netns add red
sudo ip netns add blue
sudo ip link add veth-red type veth peer name veth-blue
sudo ip link set veth-red netns red
sudo ip link set veth-blue netns blue
sudo ip netns exec red ip addr add 192.168.15.1/24 dev veth-red
sudo ip netns exec blue ip addr add 192.168.15.2/24 dev veth-blue
sudo ip netns exec red ip link set veth-red up
sudo ip -n blue link set veth-blue up
sleep 1
",
    );
    assert_eq!(sim.now(), kns_sim::Time::from_secs(1));
    let red = ns(&sim, "red");
    sim.attach_stack(red, Recorder::default());
    ping(&mut sim, "red", "192.168.15.1", "192.168.15.2", 2);
    assert_eq!(replies(&mut sim, "red", "192.168.15.2"), 2);
    let arp = run(&mut sim, "ip netns exec red ip neigh");
    assert!(
        arp.starts_with("192.168.15.2 dev veth-red lladdr ") && arp.ends_with(" REACHABLE\n"),
        "{arp}"
    );
    sim.run_for(std::time::Duration::from_secs(60));
    assert!(run(&mut sim, "ip -n red neigh").ends_with(" STALE\n"));
}
