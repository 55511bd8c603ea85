//! Differential test against the real kernel: the same `ip` commands build the same small
//! topologies in real Linux network namespaces and in kns, and the same pings must succeed or
//! fail in both.
//!
//! Runs only where it is permitted (root, iproute2 and python3 present, `ip netns add` works);
//! elsewhere it prints why and passes. It touches nothing outside the namespaces it creates:
//! every device and address lives inside them, and they are deleted afterwards.

mod common;

use std::process::Command;

use common::{Recorder, ns, run};
use kns_sim::Sim;
use kns_sim::net::packet;

/// An ICMP echo over a raw socket: exit status 0 when the reply arrives within one second.
const PING_PY: &str = r#"
import socket, struct, sys, time
dst = sys.argv[1]
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1.0)
h = struct.pack('!BBHHH', 8, 0, 0, 0x4b4e, 1) + b'kns'
h = h[:2] + struct.pack('!H', csum(h)) + h[4:]
try:
    s.sendto(h, (dst, 0))
except OSError:
    sys.exit(1)
end = time.time() + 1.0
while time.time() < end:
    try:
        d, a = s.recvfrom(2048)
    except socket.timeout:
        break
    ihl = (d[0] & 15) * 4
    if a[0] == dst and d[ihl] == 0 and d[ihl + 4:ihl + 6] == b'KN':
        sys.exit(0)
sys.exit(1)
"#;

/// One topology: `ip` commands with `{p}` before every namespace name, and pings
/// (namespace, source address, destination).
struct Case {
    name: &'static str,
    script: &'static str,
    pings: &'static [(&'static str, &'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        name: "veth pair",
        script: "
ip netns add {p}red
ip netns add {p}blue
ip -n {p}red link add veth-red type veth peer name veth-blue netns {p}blue
ip -n {p}red addr add 10.199.0.1/24 dev veth-red
ip -n {p}blue addr add 10.199.0.2/24 dev veth-blue
ip -n {p}red link set veth-red up
ip -n {p}blue link set veth-blue up
",
        pings: &[("red", "10.199.0.1", "10.199.0.2"), ("red", "10.199.0.1", "10.199.1.2")],
    },
    Case {
        name: "router without and with ip_forward",
        script: "
ip netns add {p}l
ip netns add {p}r
ip netns add {p}rt
ip -n {p}l link add eth0 type veth peer name l0 netns {p}rt
ip -n {p}r link add eth0 type veth peer name r0 netns {p}rt
ip -n {p}l addr add 10.199.1.2/24 dev eth0
ip -n {p}r addr add 10.199.2.2/24 dev eth0
ip -n {p}rt addr add 10.199.1.1/24 dev l0
ip -n {p}rt addr add 10.199.2.1/24 dev r0
ip -n {p}l link set eth0 up
ip -n {p}r link set eth0 up
ip -n {p}rt link set l0 up
ip -n {p}rt link set r0 up
ip -n {p}l route add default via 10.199.1.1
ip -n {p}r route add default via 10.199.2.1
",
        pings: &[
            ("l", "10.199.1.2", "10.199.1.1"),
            ("l", "10.199.1.2", "10.199.2.1"),
            ("l", "10.199.1.2", "10.199.2.2"),
        ],
    },
    Case {
        name: "router forwarding",
        script: "
ip netns add {p}l
ip netns add {p}r
ip netns add {p}rt
ip -n {p}l link add eth0 type veth peer name l0 netns {p}rt
ip -n {p}r link add eth0 type veth peer name r0 netns {p}rt
ip -n {p}l addr add 10.199.1.2/24 dev eth0
ip -n {p}r addr add 10.199.2.2/24 dev eth0
ip -n {p}rt addr add 10.199.1.1/24 dev l0
ip -n {p}rt addr add 10.199.2.1/24 dev r0
ip -n {p}l link set eth0 up
ip -n {p}r link set eth0 up
ip -n {p}rt link set l0 up
ip -n {p}rt link set r0 up
ip -n {p}l route add default via 10.199.1.1
ip netns exec {p}rt sysctl -w net.ipv4.ip_forward=1
",
        // The right side has no route back: the reply cannot return.
        pings: &[("l", "10.199.1.2", "10.199.2.2")],
    },
    Case {
        name: "two subnets through a router",
        script: "
ip netns add {p}l
ip netns add {p}r
ip netns add {p}rt
ip -n {p}l link add eth0 type veth peer name l0 netns {p}rt
ip -n {p}r link add eth0 type veth peer name r0 netns {p}rt
ip -n {p}l addr add 10.199.1.2/24 dev eth0
ip -n {p}r addr add 10.199.2.2/24 dev eth0
ip -n {p}rt addr add 10.199.1.1/24 dev l0
ip -n {p}rt addr add 10.199.2.1/24 dev r0
ip -n {p}l link set eth0 up
ip -n {p}r link set eth0 up
ip -n {p}rt link set l0 up
ip -n {p}rt link set r0 up
ip -n {p}l route add 10.199.2.0/24 via 10.199.1.1
ip -n {p}r route add default via 10.199.2.1
ip netns exec {p}rt sysctl -w net.ipv4.ip_forward=1
ip -n {p}rt link set r0 mtu 1400
",
        pings: &[
            ("l", "10.199.1.2", "10.199.2.2"),
            ("r", "10.199.2.2", "10.199.1.2"),
            ("l", "10.199.1.2", "10.199.9.9"),
        ],
    },
    Case {
        name: "calico-style host routes with proxy ARP",
        script: "
ip netns add {p}node
ip netns add {p}peer
ip netns add {p}pod
ip -n {p}node link add eth0 type veth peer name eth0 netns {p}peer
ip -n {p}node addr add 192.168.199.10/24 dev eth0
ip -n {p}peer addr add 192.168.199.20/24 dev eth0
ip -n {p}node link set eth0 up
ip -n {p}peer link set eth0 up
ip -n {p}peer route add 10.199.0.0/16 via 192.168.199.10
ip -n {p}node route add default via 192.168.199.20
ip -n {p}node link add cali0 type veth peer name eth0 netns {p}pod
ip -n {p}node link set cali0 up
ip -n {p}pod addr add 10.199.0.5/32 dev eth0
ip -n {p}pod link set eth0 up
ip -n {p}pod route add 169.254.1.1 dev eth0 scope link
ip -n {p}pod route add default via 169.254.1.1 dev eth0
ip -n {p}node route add 10.199.0.5/32 dev cali0 scope link
ip netns exec {p}node sysctl -w net.ipv4.ip_forward=1
ip netns exec {p}node sysctl -w net.ipv4.conf.cali0.proxy_arp=1
",
        pings: &[("pod", "10.199.0.5", "192.168.199.20"), ("peer", "192.168.199.20", "10.199.0.5")],
    },
    Case {
        name: "calico-style host routes without proxy ARP",
        script: "
ip netns add {p}node
ip netns add {p}peer
ip netns add {p}pod
ip -n {p}node link add eth0 type veth peer name eth0 netns {p}peer
ip -n {p}node addr add 192.168.199.10/24 dev eth0
ip -n {p}peer addr add 192.168.199.20/24 dev eth0
ip -n {p}node link set eth0 up
ip -n {p}peer link set eth0 up
ip -n {p}peer route add 10.199.0.0/16 via 192.168.199.10
ip -n {p}node route add default via 192.168.199.20
ip -n {p}node link add cali0 type veth peer name eth0 netns {p}pod
ip -n {p}node link set cali0 up
ip -n {p}pod addr add 10.199.0.5/32 dev eth0
ip -n {p}pod link set eth0 up
ip -n {p}pod route add 169.254.1.1 dev eth0 scope link
ip -n {p}pod route add default via 169.254.1.1 dev eth0
ip -n {p}node route add 10.199.0.5/32 dev cali0 scope link
ip netns exec {p}node sysctl -w net.ipv4.ip_forward=1
",
        pings: &[("pod", "10.199.0.5", "192.168.199.20"), ("peer", "192.168.199.20", "10.199.0.5")],
    },
    Case {
        name: "VXLAN overlay between two nodes",
        script: "
ip netns add {p}node1
ip netns add {p}node2
ip netns add {p}pod1
ip netns add {p}pod2
ip -n {p}node1 link add eth0 type veth peer name eth0 netns {p}node2
ip -n {p}node1 addr add 192.168.0.11/24 dev eth0
ip -n {p}node2 addr add 192.168.0.12/24 dev eth0
ip -n {p}node1 link set eth0 up
ip -n {p}node2 link set eth0 up
ip -n {p}node1 link add vxlan0 type vxlan id 42 local 192.168.0.11 dstport 4789 dev eth0
ip -n {p}node2 link add vxlan0 type vxlan id 42 local 192.168.0.12 dstport 4789 dev eth0
ip netns exec {p}node1 bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.168.0.12
ip netns exec {p}node2 bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.168.0.11
ip -n {p}node1 link add br0 type bridge
ip -n {p}node2 link add br0 type bridge
ip -n {p}node1 link set vxlan0 master br0
ip -n {p}node2 link set vxlan0 master br0
ip -n {p}node1 link add veth-pod1 type veth peer name eth0 netns {p}pod1
ip -n {p}node2 link add veth-pod2 type veth peer name eth0 netns {p}pod2
ip -n {p}node1 link set veth-pod1 master br0
ip -n {p}node2 link set veth-pod2 master br0
ip -n {p}node1 link set br0 up
ip -n {p}node2 link set br0 up
ip -n {p}node1 link set vxlan0 up
ip -n {p}node2 link set vxlan0 up
ip -n {p}node1 link set veth-pod1 up
ip -n {p}node2 link set veth-pod2 up
ip -n {p}pod1 addr add 10.244.0.2/24 dev eth0
ip -n {p}pod2 addr add 10.244.0.3/24 dev eth0
ip -n {p}pod1 link set eth0 mtu 1450
ip -n {p}pod2 link set eth0 mtu 1450
ip -n {p}pod1 link set eth0 up
ip -n {p}pod2 link set eth0 up
",
        pings: &[("pod1", "10.244.0.2", "10.244.0.3"), ("pod2", "10.244.0.3", "10.244.0.2")],
    },
    Case {
        name: "VXLAN without forwarding entries",
        script: "
ip netns add {p}node1
ip netns add {p}node2
ip netns add {p}pod1
ip netns add {p}pod2
ip -n {p}node1 link add eth0 type veth peer name eth0 netns {p}node2
ip -n {p}node1 addr add 192.168.0.11/24 dev eth0
ip -n {p}node2 addr add 192.168.0.12/24 dev eth0
ip -n {p}node1 link set eth0 up
ip -n {p}node2 link set eth0 up
ip -n {p}node1 link add vxlan0 type vxlan id 42 local 192.168.0.11 dstport 4789 dev eth0
ip -n {p}node2 link add vxlan0 type vxlan id 42 local 192.168.0.12 dstport 4789 dev eth0
ip -n {p}node1 link add br0 type bridge
ip -n {p}node2 link add br0 type bridge
ip -n {p}node1 link set vxlan0 master br0
ip -n {p}node2 link set vxlan0 master br0
ip -n {p}node1 link add veth-pod1 type veth peer name eth0 netns {p}pod1
ip -n {p}node2 link add veth-pod2 type veth peer name eth0 netns {p}pod2
ip -n {p}node1 link set veth-pod1 master br0
ip -n {p}node2 link set veth-pod2 master br0
ip -n {p}node1 link set br0 up
ip -n {p}node2 link set br0 up
ip -n {p}node1 link set vxlan0 up
ip -n {p}node2 link set vxlan0 up
ip -n {p}node1 link set veth-pod1 up
ip -n {p}node2 link set veth-pod2 up
ip -n {p}pod1 addr add 10.244.0.2/24 dev eth0
ip -n {p}pod2 addr add 10.244.0.3/24 dev eth0
ip -n {p}pod1 link set eth0 mtu 1450
ip -n {p}pod2 link set eth0 mtu 1450
ip -n {p}pod1 link set eth0 up
ip -n {p}pod2 link set eth0 up
",
        pings: &[("pod1", "10.244.0.2", "10.244.0.3")],
    },
    Case {
        name: "bridge in a switch namespace",
        script: "
ip netns add {p}sw
ip netns add {p}a
ip netns add {p}b
ip -n {p}sw link add br0 type bridge
ip -n {p}sw link set br0 up
ip -n {p}sw link add va type veth peer name eth0 netns {p}a
ip -n {p}sw link add vb type veth peer name eth0 netns {p}b
ip -n {p}sw link set va master br0
ip -n {p}sw link set vb master br0
ip -n {p}sw link set va up
ip -n {p}sw link set vb up
ip -n {p}a addr add 10.199.3.1/24 dev eth0
ip -n {p}b addr add 10.199.3.2/24 dev eth0
ip -n {p}a link set eth0 up
ip -n {p}b link set eth0 up
",
        pings: &[("a", "10.199.3.1", "10.199.3.2"), ("a", "10.199.3.1", "10.199.3.1")],
    },
];

fn sh(args: &[&str]) -> Option<std::process::Output> {
    Command::new(args[0]).args(&args[1..]).output().ok()
}

/// Deletes the real namespaces on drop, even if the test fails.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = sh(&["ip", "netns", "del", n]);
        }
    }
}

fn linux_permits(prefix: &str) -> Result<(), String> {
    let probe = format!("{prefix}probe");
    match sh(&["ip", "netns", "add", &probe]) {
        Some(o) if o.status.success() => {
            let _ = sh(&["ip", "netns", "del", &probe]);
        }
        Some(o) => {
            return Err(format!(
                "`ip netns add` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        None => return Err("iproute2 (`ip`) is not installed".into()),
    }
    match sh(&["python3", "-c", "import socket"]) {
        Some(o) if o.status.success() => Ok(()),
        _ => Err("python3 is not available for the ICMP probe".into()),
    }
}

fn real_pings(case: &Case, prefix: &str) -> Vec<bool> {
    let mut cleanup = Cleanup(Vec::new());
    for line in case.script.lines().filter(|l| !l.trim().is_empty()) {
        let line = line.replace("{p}", prefix);
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[..3] == ["ip", "netns", "add"] {
            cleanup.0.push(words[3].to_string());
        }
        let out = sh(&words).expect("ip runs");
        assert!(
            out.status.success(),
            "{}: `{line}` failed: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    case.pings
        .iter()
        .map(|(from, _, dst)| {
            let ns = format!("{prefix}{from}");
            sh(&["ip", "netns", "exec", &ns, "python3", "-c", PING_PY, dst])
                .is_some_and(|o| o.status.success())
        })
        .collect()
}

fn kns_pings(case: &Case) -> Vec<bool> {
    let mut sim = Sim::new(1);
    run(&mut sim, &case.script.replace("{p}", ""));
    case.pings
        .iter()
        .map(|(from, src, dst)| {
            let n = ns(&sim, from);
            sim.attach_stack(n, Recorder::default());
            let req =
                packet::icmp_echo_request(common::v4(src), common::v4(dst), 0x4b4e, 1, 64, b"kns");
            sim.send_ip(n, &req);
            sim.run_until_idle(100_000).unwrap();
            let got = sim.stack_mut::<Recorder>(n).unwrap().icmp();
            // Without a socket layer the IP layer answers pings again, as the kernel does.
            sim.detach_stack(n);
            got.iter().any(|(s, ty, _)| *ty == 0 && *s == common::ip(dst))
        })
        .collect()
}

#[test]
fn same_commands_same_pings_as_linux() {
    let prefix = format!("knsd{}", std::process::id());
    if let Err(why) = linux_permits(&prefix) {
        eprintln!("skipping the Linux differential test: {why}");
        return;
    }
    let mut outcomes = Vec::new();
    for case in CASES {
        let linux = real_pings(case, &prefix);
        let kns = kns_pings(case);
        eprintln!("{}: Linux {linux:?}, kns {kns:?}", case.name);
        assert_eq!(kns, linux, "{}: pings {:?} (kns vs Linux)", case.name, case.pings);
        outcomes.extend(linux);
    }
    // The probe itself works: some pings succeed and some fail on the real kernel.
    assert!(outcomes.contains(&true) && outcomes.contains(&false), "{outcomes:?}");
}
