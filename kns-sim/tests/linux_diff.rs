//! Differential test against the real kernel: the same `ip` commands build the same small
//! topologies in real Linux network namespaces and in kns, and the same pings must succeed or
//! fail in both.
//!
//! Runs only where it is permitted (root, iproute2 and python3 present, `ip netns add` works;
//! the netfilter cases also need `iptables`);
//! elsewhere it prints why and passes. It touches nothing outside the namespaces it creates:
//! every device and address lives inside them, and they are deleted afterwards.

mod common;

use std::process::Command;

use common::{Recorder, ns, run};
use kns_sim::Sim;
use kns_sim::net::packet;
use kns_sim::script::ScriptRunner;

/// An ICMP echo over a raw socket with the given TTL. Prints what came back within one second:
/// `reply`, `T/C from ADDR` for an ICMP error quoting the probe, or `none`.
const PING_PY: &str = r#"
import socket, struct, sys, time
dst, ttl = sys.argv[1], int(sys.argv[2])
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
s.settimeout(1.0)
h = struct.pack('!BBHHH', 8, 0, 0, 0x4b4e, 1) + b'kns'
h = h[:2] + struct.pack('!H', csum(h)) + h[4:]
try:
    s.sendto(h, (dst, 0))
except OSError:
    print('none'); sys.exit(0)
end = time.time() + 1.0
while time.time() < end:
    try:
        d, a = s.recvfrom(2048)
    except socket.timeout:
        break
    ihl = (d[0] & 15) * 4
    ty, code = d[ihl], d[ihl + 1]
    if ty == 0 and a[0] == dst and d[ihl + 4:ihl + 6] == b'KN':
        print('reply'); sys.exit(0)
    if ty in (3, 11):
        inner = d[ihl + 8:]
        iihl = (inner[0] & 15) * 4
        if inner[iihl:iihl + 1] == b'\x08' and inner[iihl + 4:iihl + 6] == b'KN':
            print('%d/%d from %s' % (ty, code, a[0])); sys.exit(0)
print('none')
"#;

/// A probe: (namespace, source address, destination, TTL).
type Probe<'a> = (&'a str, &'a str, &'a str, u8);

/// One topology: `ip` commands with `{p}` before every namespace name, and probes
/// (namespace, source address, destination, TTL).
struct Case<'a> {
    name: &'a str,
    /// Pieces of the script, run one after the other (each piece's lines in order).
    script: &'a [&'a str],
    pings: &'a [Probe<'a>],
}

impl Case<'_> {
    /// The whole script, its pieces joined line by line.
    fn script(&self) -> String {
        self.script.join("\n")
    }
}

/// A private subnet (10.199.21.0/24) behind a router whose outside is 192.0.2.0/24; the outside
/// host has no route back to the private subnet. Rules are added per case.
const NAT_BASE: &str = "
ip netns add {p}in
ip netns add {p}rt
ip netns add {p}out
ip -n {p}in link add eth0 type veth peer name lan netns {p}rt
ip -n {p}out link add eth0 type veth peer name wan netns {p}rt
ip -n {p}in addr add 10.199.21.2/24 dev eth0
ip -n {p}rt addr add 10.199.21.1/24 dev lan
ip -n {p}rt addr add 192.0.2.1/24 dev wan
ip -n {p}out addr add 192.0.2.7/24 dev eth0
ip -n {p}in link set eth0 up
ip -n {p}out link set eth0 up
ip -n {p}rt link set lan up
ip -n {p}rt link set wan up
ip -n {p}in route add default via 10.199.21.1
ip netns exec {p}rt sysctl -w net.ipv4.ip_forward=1
";

/// Cases that program netfilter with `iptables` (run only where the real tool exists): rules
/// after [`NAT_BASE`].
const NAT_CASES: &[Case<'static>] = &[
    Case {
        name: "no NAT: no way back",
        script: &[NAT_BASE],
        pings: &[("in", "10.199.21.2", "192.0.2.7", 64)],
    },
    Case {
        name: "MASQUERADE",
        script: &[
            NAT_BASE,
            "ip netns exec {p}rt iptables -t nat -A POSTROUTING -s 10.199.21.0/24 -o wan -j MASQUERADE",
        ],
        pings: &[("in", "10.199.21.2", "192.0.2.7", 64)],
    },
    Case {
        name: "REJECT in FORWARD",
        script: &[NAT_BASE, "ip netns exec {p}rt iptables -A FORWARD -p icmp -j REJECT"],
        pings: &[("in", "10.199.21.2", "192.0.2.7", 64), ("in", "10.199.21.2", "10.199.21.1", 64)],
    },
    Case {
        name: "REJECT with host unreachable",
        script: &[
            NAT_BASE,
            "ip netns exec {p}rt iptables -A FORWARD -i lan -j REJECT --reject-with icmp-host-unreachable",
        ],
        pings: &[("in", "10.199.21.2", "192.0.2.7", 64)],
    },
    Case {
        name: "DROP in INPUT",
        script: &[NAT_BASE, "ip netns exec {p}rt iptables -A INPUT -p icmp -j DROP"],
        pings: &[("in", "10.199.21.2", "10.199.21.1", 64), ("in", "10.199.21.2", "192.0.2.7", 64)],
    },
    Case {
        name: "DNAT to the private host",
        script: &[
            NAT_BASE,
            "ip netns exec {p}rt iptables -t nat -A PREROUTING -d 192.0.2.1 -p icmp -j DNAT --to-destination 10.199.21.2",
        ],
        pings: &[("out", "192.0.2.7", "192.0.2.1", 64)],
    },
];

/// Two hosts on either side of a router (`l` - `rt` - `r`) with addresses and links up, but no
/// routes through it and no forwarding yet.
const ROUTER: &str = "
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
";

/// Calico's layout: a node with a /32 host route to its pod's veth, the pod's default route via
/// the link-local gateway 169.254.1.1, a peer routing the pod network to the node.
const CALICO: &str = "
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
";

/// Two nodes with a VXLAN device each (VNI 42), no forwarding entries yet.
const VXLAN_NODES: &str = "
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
";

/// The all-zeros forwarding entries that flood each node's VXLAN traffic to the other.
const VXLAN_FDB: &str = "
ip netns exec {p}node1 bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.168.0.12
ip netns exec {p}node2 bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.168.0.11
";

/// Each node's bridge joining its VXLAN device and one pod (10.244.0.0/24, MTU 1450).
const VXLAN_PODS: &str = "
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
";

const CASES: &[Case<'static>] = &[
    Case {
        name: "veth pair",
        script: &["
ip netns add {p}red
ip netns add {p}blue
ip -n {p}red link add veth-red type veth peer name veth-blue netns {p}blue
ip -n {p}red addr add 10.199.0.1/24 dev veth-red
ip -n {p}blue addr add 10.199.0.2/24 dev veth-blue
ip -n {p}red link set veth-red up
ip -n {p}blue link set veth-blue up
"],
        pings: &[("red", "10.199.0.1", "10.199.0.2", 64), ("red", "10.199.0.1", "10.199.1.2", 64)],
    },
    Case {
        name: "router without and with ip_forward",
        script: &[
            ROUTER,
            "
ip -n {p}l route add default via 10.199.1.1
ip -n {p}r route add default via 10.199.2.1
",
        ],
        pings: &[
            ("l", "10.199.1.2", "10.199.1.1", 64),
            ("l", "10.199.1.2", "10.199.2.1", 64),
            ("l", "10.199.1.2", "10.199.2.2", 64),
        ],
    },
    Case {
        name: "router forwarding",
        script: &[
            ROUTER,
            "
ip -n {p}l route add default via 10.199.1.1
ip netns exec {p}rt sysctl -w net.ipv4.ip_forward=1
",
        ],
        // The right side has no route back: the reply cannot return.
        pings: &[("l", "10.199.1.2", "10.199.2.2", 64)],
    },
    Case {
        name: "two subnets through a router",
        script: &[
            ROUTER,
            "
ip -n {p}l route add 10.199.2.0/24 via 10.199.1.1
ip -n {p}r route add default via 10.199.2.1
ip netns exec {p}rt sysctl -w net.ipv4.ip_forward=1
ip -n {p}rt link set r0 mtu 1400
",
        ],
        pings: &[
            ("l", "10.199.1.2", "10.199.2.2", 64),
            ("r", "10.199.2.2", "10.199.1.2", 64),
            ("l", "10.199.1.2", "10.199.9.9", 64),
        ],
    },
    Case {
        name: "calico-style host routes with proxy ARP",
        script: &[CALICO, "ip netns exec {p}node sysctl -w net.ipv4.conf.cali0.proxy_arp=1"],
        pings: &[
            ("pod", "10.199.0.5", "192.168.199.20", 64),
            ("peer", "192.168.199.20", "10.199.0.5", 64),
        ],
    },
    Case {
        name: "calico-style host routes without proxy ARP",
        script: &[CALICO],
        pings: &[
            ("pod", "10.199.0.5", "192.168.199.20", 64),
            ("peer", "192.168.199.20", "10.199.0.5", 64),
        ],
    },
    Case {
        name: "VXLAN overlay between two nodes",
        script: &[VXLAN_NODES, VXLAN_FDB, VXLAN_PODS],
        pings: &[
            ("pod1", "10.244.0.2", "10.244.0.3", 64),
            ("pod2", "10.244.0.3", "10.244.0.2", 64),
        ],
    },
    Case {
        name: "VXLAN without forwarding entries",
        script: &[VXLAN_NODES, VXLAN_PODS],
        pings: &[("pod1", "10.244.0.2", "10.244.0.3", 64)],
    },
    Case {
        name: "traceroute across two routers with an asymmetric way back",
        script: &["
ip netns add {p}src
ip netns add {p}r1
ip netns add {p}r2
ip netns add {p}dst
ip -n {p}src link add eth0 type veth peer name west netns {p}r1
ip -n {p}r1 link add east type veth peer name west netns {p}r2
ip -n {p}r1 link add side type veth peer name side netns {p}r2
ip -n {p}r2 link add east type veth peer name eth0 netns {p}dst
ip -n {p}src addr add 10.199.11.2/24 dev eth0
ip -n {p}r1 addr add 10.199.11.1/24 dev west
ip -n {p}r1 addr add 10.199.12.1/24 dev east
ip -n {p}r1 addr add 10.199.14.1/24 dev side
ip -n {p}r2 addr add 10.199.12.2/24 dev west
ip -n {p}r2 addr add 10.199.14.2/24 dev side
ip -n {p}r2 addr add 10.199.13.1/24 dev east
ip -n {p}dst addr add 10.199.13.2/24 dev eth0
ip -n {p}src link set eth0 up
ip -n {p}r1 link set west up
ip -n {p}r1 link set east up
ip -n {p}r1 link set side up
ip -n {p}r2 link set west up
ip -n {p}r2 link set east up
ip -n {p}r2 link set side up
ip -n {p}dst link set eth0 up
ip -n {p}src route add default via 10.199.11.1
ip -n {p}r1 route add 10.199.13.0/24 via 10.199.12.2
ip -n {p}r2 route add 10.199.11.0/24 via 10.199.14.1
ip -n {p}dst route add default via 10.199.13.1
ip netns exec {p}r1 sysctl -w net.ipv4.ip_forward=1
ip netns exec {p}r2 sysctl -w net.ipv4.ip_forward=1
"],
        pings: &[
            ("src", "10.199.11.2", "10.199.13.2", 1),
            ("src", "10.199.11.2", "10.199.13.2", 2),
            ("src", "10.199.11.2", "10.199.13.2", 3),
            ("src", "10.199.11.2", "10.199.99.1", 64),
        ],
    },
    Case {
        name: "bridge in a switch namespace",
        script: &["
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
"],
        pings: &[("a", "10.199.3.1", "10.199.3.2", 64), ("a", "10.199.3.1", "10.199.3.1", 64)],
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

fn real_pings(case: &Case<'_>, prefix: &str) -> Vec<String> {
    let mut cleanup = Cleanup(Vec::new());
    for line in case.script().lines().filter(|l| !l.trim().is_empty()) {
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
        .map(|(from, _, dst, ttl)| {
            let ns = format!("{prefix}{from}");
            let ttl = ttl.to_string();
            let out = sh(&["ip", "netns", "exec", &ns, "python3", "-c", PING_PY, dst, &ttl])
                .expect("python3 runs");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

fn kns_pings(case: &Case<'_>) -> Vec<String> {
    let mut sim = Sim::new(1);
    run(&mut sim, &case.script().replace("{p}", ""));
    case.pings
        .iter()
        .map(|(from, src, dst, ttl)| {
            let n = ns(&sim, from);
            sim.attach_stack(n, Recorder::default());
            let req = packet::icmp_echo_request(
                common::v4(src),
                common::v4(dst),
                0x4b4e,
                1,
                *ttl,
                b"kns",
            );
            sim.send_ip(n, &req);
            sim.run_until_idle(100_000).unwrap();
            let got = std::mem::take(&mut sim.stack_mut::<Recorder>(n).unwrap().received);
            // Without a socket layer the IP layer answers pings again, as the kernel does.
            sim.detach_stack(n);
            got.iter()
                .find_map(|(_, p)| outcome(p, common::ip(src), common::ip(dst)))
                .unwrap_or_else(|| "none".into())
        })
        .collect()
}

/// What the Python probe would print for the packet `p` received by the sender, if it answers
/// the probe. Errors the sender generated itself (ARP failure) never reach a raw socket in Linux.
fn outcome(p: &[u8], own: std::net::IpAddr, dst: std::net::IpAddr) -> Option<String> {
    let s = kns_sim::wire::parse_ip(p).ok()?;
    let kns_sim::wire::L4Summary::Icmp { ty, code, echo_id, .. } = s.l4 else { return None };
    match ty {
        0 if s.src == dst && echo_id == Some(0x4b4e) => Some("reply".into()),
        3 | 11 if s.src != own => Some(format!("{ty}/{code} from {}", s.src)),
        _ => None,
    }
}

/// Runs `case` in Linux and in kns, checks that every probe has the same outcome in both and
/// returns the outcomes.
fn same_pings(case: &Case<'_>, prefix: &str) -> Vec<String> {
    let linux = real_pings(case, prefix);
    let kns = kns_pings(case);
    eprintln!("{}: Linux {linux:?}, kns {kns:?}", case.name);
    assert_eq!(kns, linux, "{}: pings {:?} (kns vs Linux)", case.name, case.pings);
    linux
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
        outcomes.extend(same_pings(case, &prefix));
    }
    if sh(&["iptables", "--version"]).is_some_and(|o| o.status.success()) {
        for case in NAT_CASES {
            outcomes.extend(same_pings(case, &prefix));
        }
    } else {
        eprintln!("skipping the netfilter cases: iptables is not installed");
    }
    // The probe itself works: some pings succeed and some fail on the real kernel.
    assert!(
        outcomes.iter().any(|o| o == "reply") && outcomes.iter().any(|o| o != "reply"),
        "{outcomes:?}"
    );
}

/// Runs a bundled `kns net` example script in real namespaces: the script's root namespace is
/// a namespace of its own (`{prefix}host`), every namespace name gets the prefix, and each
/// `ping` becomes the Python probe. Returns (line, got a reply) for every ping line.
fn real_script_pings(script: &str, prefix: &str, cleanup: &mut Cleanup) -> Vec<(usize, bool)> {
    let rename = |n: &str| format!("{prefix}{n}");
    let host = rename("host");
    assert!(sh(&["ip", "netns", "add", &host]).is_some_and(|o| o.status.success()));
    cleanup.0.push(host.clone());
    let mut pings = Vec::new();
    for (i, line) in script.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words: Vec<String> = line.split_whitespace().map(String::from).collect();
        let mut netns = host.clone();
        if words.len() > 3 && words[..3] == ["ip", "netns", "exec"] {
            netns = rename(&words[3]);
            words.drain(..4);
        }
        if words.len() > 2 && words[..2] == ["ip", "-n"] {
            netns = rename(&words[2]);
            words.drain(1..3);
        }
        if words.len() == 4 && words[..3] == ["ip", "netns", "add"] {
            let ns = rename(&words[3]);
            assert!(sh(&["ip", "netns", "add", &ns]).is_some_and(|o| o.status.success()));
            cleanup.0.push(ns);
            continue;
        }
        for k in 1..words.len() {
            if words[k - 1] == "netns" {
                words[k] = rename(&words[k]);
            }
        }
        let mut cmd = vec!["ip", "netns", "exec", netns.as_str()];
        match words[0].as_str() {
            "ping" => {
                let dst = words.last().expect("ping names its target").as_str();
                cmd.extend(["python3", "-c", PING_PY, dst, "64"]);
                let out = sh(&cmd).expect("python3 runs");
                pings.push((i + 1, String::from_utf8_lossy(&out.stdout).trim() == "reply"));
            }
            // Output-only commands and probes this test does not compare.
            "traceroute" | "bridge" => {}
            _ if words.iter().any(|w| w == "get" || w == "neigh") || words.len() == 2 => {}
            _ => {
                cmd.extend(words.iter().map(String::as_str));
                let out = sh(&cmd).expect("the command runs");
                assert!(out.status.success(), "real Linux refused line {}: {line}", i + 1);
            }
        }
    }
    pings
}

/// The same example scripts through kns's script runner (smoltcp stacks send the pings).
fn kns_script_pings(script: &str) -> Vec<(usize, bool)> {
    let report = ScriptRunner::new(1).run_script(script);
    assert!(report.error.is_none(), "{:?}", report.error);
    report
        .results
        .iter()
        .filter(|r| r.command.split_whitespace().any(|w| w == "ping"))
        .map(|r| (r.line, r.ok))
        .collect()
}

#[test]
fn example_scripts_ping_as_on_linux() {
    let prefix = format!("knse{}", std::process::id());
    if let Err(why) = linux_permits(&prefix) {
        eprintln!("skipping the example-script differential test: {why}");
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/net");
    let mut outcomes = Vec::new();
    for name in ["veth-ping.sh", "bridge.sh", "router.sh", "traceroute.sh"] {
        let script = std::fs::read_to_string(dir.join(name)).expect("example script");
        let mut cleanup = Cleanup(Vec::new());
        let real = real_script_pings(&script, &prefix, &mut cleanup);
        drop(cleanup);
        eprintln!("{name}: Linux {real:?}");
        assert!(!real.is_empty(), "{name} has pings");
        assert_eq!(kns_script_pings(&script), real, "{name}: (line, ping ok) in kns vs Linux");
        outcomes.extend(real.into_iter().map(|(_, ok)| ok));
    }
    // router.sh fails twice before it works: the probe sees both outcomes.
    assert!(outcomes.contains(&true) && outcomes.contains(&false), "{outcomes:?}");
}
