//! Forwarding does not allocate per hop: with ARP resolved and tracing off, a ping across a
//! bridge and a router costs one allocation (the injected packet's buffer) for all its hops.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use common::{ns, run, v4};
use kns_sim::Sim;
use kns_sim::net::packet;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_routed_and_bridged_ping_allocates_once() {
    let mut sim = Sim::new(1);
    run(
        &mut sim,
        "
ip netns add client
ip netns add router
ip netns add server
ip -n router link add br0 type bridge
ip -n router link add port0 type veth peer name eth0 netns client
ip -n router link set port0 master br0
ip -n router link add eth1 type veth peer name eth0 netns server
ip -n router addr add 10.0.1.1/24 dev br0
ip -n router addr add 10.0.2.1/24 dev eth1
ip -n client addr add 10.0.1.2/24 dev eth0
ip -n server addr add 10.0.2.2/24 dev eth0
ip -n router link set br0 up
ip -n router link set port0 up
ip -n router link set eth1 up
ip -n client link set eth0 up
ip -n server link set eth0 up
ip -n client route add default via 10.0.1.1
ip -n server route add default via 10.0.2.1
ip netns exec router sysctl -w net.ipv4.ip_forward=1
",
    );
    let client = ns(&sim, "client");
    let ping = packet::icmp_echo_request(v4("10.0.1.2"), v4("10.0.2.2"), 1, 1, 64, &[0u8; 56]);
    // Warm up: ARP everywhere, queue and map capacity.
    for _ in 0..100 {
        sim.send_ip(client, &ping);
    }
    sim.run_until_idle(1_000_000).unwrap();
    let before_delivered = sim.conservation().delivered;
    let n = 1000u64;
    let start = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..n {
        sim.send_ip(client, &ping);
    }
    sim.run_until_idle(1_000_000).unwrap();
    let allocs = ALLOCS.load(Ordering::Relaxed) - start;
    // Each ping: request and reply, 8 device hops, 2 router passes, 6 hook calls.
    assert_eq!(sim.conservation().delivered - before_delivered, 2 * n);
    assert!(allocs <= n + 10, "{allocs} allocations for {n} pings");
}
