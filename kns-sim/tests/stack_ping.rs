//! Ping between stacks wired by a `LoopbackNet`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use kns_sim::Time;
use kns_sim::stack::apps::{Ping, PingConfig};
use kns_sim::stack::testnet::LoopbackNet;
use kns_sim::stack::{SmolStack, StackConfig};
use smoltcp::wire::{Icmpv4Message, Icmpv4Packet, Ipv4Packet};

fn stack(seed: u64, addr: &str) -> SmolStack {
    SmolStack::with_addresses(StackConfig::with_seed(seed), Time::ZERO, &[addr.parse().unwrap()])
        .unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ping_both_ways_prints_like_iputils() {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.1/24"));
    let b = net.add(stack(2, "10.0.0.2/24"));
    let pa = net.stack_mut(a).spawn(Ping::new(PingConfig::new(ip("10.0.0.2"), 3)));
    let pb = net.stack_mut(b).spawn(Ping::new(PingConfig::new(ip("10.0.0.1"), 2)));
    assert!(net.run_until_apps_done(Time::from_secs(60)).unwrap());
    let ping = net.stack(a).app::<Ping>(pa).unwrap();
    assert_eq!(
        ping.output(),
        "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n\
         64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.100 ms\n\
         64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=0.100 ms\n\
         64 bytes from 10.0.0.2: icmp_seq=3 ttl=64 time=0.100 ms\n\
         \n\
         --- 10.0.0.2 ping statistics ---\n\
         3 packets transmitted, 3 received, 0% packet loss, time 2000ms\n\
         rtt min/avg/max/mdev = 0.100/0.100/0.100/0.000 ms\n"
    );
    assert!(ping.success());
    let back = net.stack(b).app::<Ping>(pb).unwrap();
    assert!(back.output().contains("64 bytes from 10.0.0.1: icmp_seq=2 ttl=64 time=0.100 ms"));
    assert!(
        back.output().contains("2 packets transmitted, 2 received, 0% packet loss, time 1000ms")
    );
}

#[test]
fn ping_reports_loss_and_icmp_errors() {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.1/24"));
    let _b = net.add(stack(2, "10.0.2.2/24"));
    net.set_routers(vec![Ipv4Addr::new(10, 0, 0, 254)]);
    // The second request is lost; replies to the others cross the router (TTL 63).
    net.set_drop_rule(|_, bytes| {
        let ip = Ipv4Packet::new_checked(bytes).unwrap();
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        ip.dst_addr() == Ipv4Addr::new(10, 0, 2, 2)
            && icmp.msg_type() == Icmpv4Message::EchoRequest
            && icmp.echo_seq_no() == 2
    });
    let mut cfg = PingConfig::new(ip("10.0.2.2"), 3);
    cfg.timeout = Duration::from_secs(2);
    let p = net.stack_mut(a).spawn(Ping::new(cfg));
    // Nobody owns 10.0.9.9: the router answers host unreachable.
    let u = net.stack_mut(a).spawn(Ping::new(PingConfig::new(ip("10.0.9.9"), 2)));
    // TTL 1 dies at the router.
    let mut ttl1 = PingConfig::new(ip("10.0.2.2"), 1);
    ttl1.ttl = 1;
    let t = net.stack_mut(a).spawn(Ping::new(ttl1));
    assert!(net.run_until_apps_done(Time::from_secs(60)).unwrap());

    let ping = net.stack(a).app::<Ping>(p).unwrap();
    let out = ping.output();
    assert!(out.contains("64 bytes from 10.0.2.2: icmp_seq=1 ttl=63 time=0.200 ms\n"), "{out}");
    assert!(!out.contains("icmp_seq=2 "), "{out}");
    assert!(
        out.contains("3 packets transmitted, 2 received, 33.3333% packet loss, time 4000ms\n"),
        "{out}"
    );

    let unreachable = net.stack(a).app::<Ping>(u).unwrap();
    assert_eq!(
        unreachable.output(),
        "PING 10.0.9.9 (10.0.9.9) 56(84) bytes of data.\n\
         From 10.0.0.254 icmp_seq=1 Destination Host Unreachable\n\
         From 10.0.0.254 icmp_seq=2 Destination Host Unreachable\n\
         \n\
         --- 10.0.9.9 ping statistics ---\n\
         2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1000ms\n"
    );
    assert!(!unreachable.success());

    let expired = net.stack(a).app::<Ping>(t).unwrap();
    assert!(
        expired.output().contains("From 10.0.0.254 icmp_seq=1 Time to live exceeded\n"),
        "{}",
        expired.output()
    );
}

#[test]
fn ping_and_traceroute_over_ipv6() {
    use kns_sim::stack::apps::{Traceroute, TracerouteConfig};
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "fd00::1/64"));
    net.add(stack(2, "fd00::2/64"));
    let p = net.stack_mut(a).spawn(Ping::new(PingConfig::new(ip("fd00::2"), 2)));
    let t = net.stack_mut(a).spawn(Traceroute::new(TracerouteConfig::new(ip("fd00::2"))));
    assert!(net.run_until_apps_done(Time::from_secs(60)).unwrap());
    assert_eq!(
        net.stack(a).app::<Ping>(p).unwrap().output(),
        "PING fd00::2 (fd00::2) 56 data bytes\n\
         64 bytes from fd00::2: icmp_seq=1 ttl=64 time=0.100 ms\n\
         64 bytes from fd00::2: icmp_seq=2 ttl=64 time=0.100 ms\n\
         \n\
         --- fd00::2 ping statistics ---\n\
         2 packets transmitted, 2 received, 0% packet loss, time 1000ms\n\
         rtt min/avg/max/mdev = 0.100/0.100/0.100/0.000 ms\n"
    );
    assert_eq!(
        net.stack(a).app::<Traceroute>(t).unwrap().output(),
        "traceroute to fd00::2 (fd00::2), 30 hops max, 80 byte packets\n \
         1  fd00::2  0.100 ms  0.100 ms  0.100 ms\n"
    );
}
