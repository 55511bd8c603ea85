//! Scale: ten thousand namespaces on one bridge, built through the typed API, still forward.

mod common;

use common::{Recorder, ping, replies};
use kns_sim::Sim;

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}

#[test]
fn ten_thousand_namespaces_on_a_bridge() {
    let before = resident_bytes();
    let mut sim = Sim::new(1);
    sim.link_add_bridge(Sim::ROOT, "br0").unwrap();
    sim.link_set_up(Sim::ROOT, "br0", true).unwrap();
    for i in 0..10_000u32 {
        let n = sim.netns_add(&format!("pod{i}")).unwrap();
        let host = format!("veth{i}");
        sim.link_add_veth(Sim::ROOT, &host, "eth0", Some(n)).unwrap();
        sim.link_set_master(Sim::ROOT, &host, Some("br0")).unwrap();
        sim.link_set_up(Sim::ROOT, &host, true).unwrap();
        let addr = format!("10.{}.{}.{}/8", i / 62500, (i / 250) % 250, i % 250 + 1);
        sim.addr_add(n, "eth0", addr.parse().unwrap()).unwrap();
        sim.link_set_up(n, "eth0", true).unwrap();
    }
    if let (Some(b), Some(a)) = (before, resident_bytes()) {
        let mb = a.saturating_sub(b) / 1_000_000;
        eprintln!("10,000 namespaces with veths on a bridge: +{mb} MB resident");
        assert!(mb < 512, "10,000 namespaces took {mb} MB");
    }
    let first = sim.netns(Some("pod0")).unwrap();
    sim.attach_stack(first, Recorder::default());
    // pod9999 is 10.0.39.250 (9999 / 250 = 39, 9999 % 250 + 1 = 250).
    ping(&mut sim, "pod0", "10.0.0.1", "10.0.39.250", 2);
    assert_eq!(replies(&mut sim, "pod0", "10.0.39.250"), 2);
    let c = sim.conservation();
    assert!(c.holds(), "{c}");
    // The ARP broadcast was flooded to all 9,999 other ports.
    assert!(c.sent > 10_000, "{c}");
}
