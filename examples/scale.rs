//! Scale figures: N pod namespaces on one node bridge, each with its own smoltcp stack, built
//! through the typed `ip` API; then every pod pings its neighbour.
//!
//! ```sh
//! cargo run --release --example scale -- 10000
//! ```
//!
//! Prints the memory per namespace (resident set growth, Linux only), the build time, and how
//! many frames per real second the pings pushed through veth → bridge → veth.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use kns::sim::Sim;
use kns::sim::stack::apps::{Ping, PingConfig};
use kns::sim::stack::{AppId, SmolStack, StackConfig};

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}

/// The address of pod `i` in 10.0.0.0/8 (never .0 or .255 in the last byte).
fn pod_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, (i / 62_500) as u8, ((i / 250) % 250) as u8, (i % 250 + 1) as u8)
}

fn main() {
    let n: u32 = std::env::args().nth(1).map_or(10_000, |a| a.parse().expect("a pod count"));
    assert!(n >= 2, "at least two pods");
    let rss0 = resident_bytes();
    let start = Instant::now();
    let mut sim = Sim::new(1);
    sim.link_add_bridge(Sim::ROOT, "cni0").unwrap();
    sim.link_set_up(Sim::ROOT, "cni0", true).unwrap();
    let mut pods = Vec::with_capacity(n as usize);
    for i in 0..n {
        let ns = sim.netns_add(&format!("pod{i}")).unwrap();
        let host = format!("veth{i}");
        sim.link_add_veth(Sim::ROOT, &host, "eth0", Some(ns)).unwrap();
        sim.link_set_master(Sim::ROOT, &host, Some("cni0")).unwrap();
        sim.link_set_up(Sim::ROOT, &host, true).unwrap();
        sim.addr_add(ns, "eth0", format!("{}/8", pod_addr(i)).parse().unwrap()).unwrap();
        sim.link_set_up(ns, "eth0", true).unwrap();
        let seed = sim.child_seed();
        sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(seed), sim.now()));
        pods.push(ns);
    }
    let built = start.elapsed();
    let rss1 = resident_bytes();
    sim.run_until_idle(u64::MAX).unwrap();

    // Every pod pings the next one once.
    let sent_before = sim.conservation().sent;
    let start = Instant::now();
    let mut pings: Vec<AppId> = Vec::with_capacity(pods.len());
    for (i, ns) in pods.iter().enumerate() {
        let dst = IpAddr::V4(pod_addr((i as u32 + 1) % n));
        let mut config = PingConfig::new(dst, 1);
        config.timeout = Duration::from_secs(2);
        let stack = sim.stack_mut::<SmolStack>(*ns).unwrap();
        pings.push(stack.spawn(Ping::new(config)));
        sim.kick(*ns);
    }
    sim.run_until_idle(u64::MAX).unwrap();
    let ran = start.elapsed();
    let frames = sim.conservation().sent - sent_before;
    let ok = pods
        .iter()
        .zip(&pings)
        .filter(|(ns, id)| {
            sim.stack_mut::<SmolStack>(**ns)
                .and_then(|s| s.app::<Ping>(**id))
                .is_some_and(Ping::success)
        })
        .count();
    let c = sim.conservation();

    println!("pods (namespaces with a smoltcp stack): {n}");
    println!("build time: {:.2} s", built.as_secs_f64());
    if let (Some(a), Some(b)) = (rss0, rss1) {
        let per = b.saturating_sub(a) as f64 / f64::from(n);
        println!(
            "memory: {:.1} MiB in all, {:.1} KiB per pod (resident set growth)",
            b.saturating_sub(a) as f64 / 1_048_576.0,
            per / 1024.0
        );
    }
    println!("pings answered: {ok} of {n}");
    println!(
        "frames: {frames} (ARP floods included) in {:.2} s real = {:.0} frames/s",
        ran.as_secs_f64(),
        frames as f64 / ran.as_secs_f64()
    );
    println!("conservation: {c}");
    assert!(c.holds(), "every frame sent was delivered or dropped with a reason");
}
