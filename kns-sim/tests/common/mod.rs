//! Helpers shared by the dataplane tests: a recording socket layer and a script runner.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use kns_sim::Sim;
use kns_sim::cmd::parse_command;
use kns_sim::net::NetnsId;
use kns_sim::stack::IpStack;
use kns_sim::time::Time;
use kns_sim::wire::{L4Summary, PacketSummary, parse_ip};

/// A socket layer that records every packet it receives and sends what the test queues,
/// optionally at a given time (to exercise `poll_at`).
#[derive(Default)]
pub struct Recorder {
    pub received: Vec<(Time, Vec<u8>)>,
    pub outbox: Vec<(Time, Vec<u8>)>,
    pub addrs: Vec<ipnet::IpNet>,
    pub polls: u32,
}

impl IpStack for Recorder {
    fn receive(&mut self, now: Time, packet: &[u8]) {
        self.received.push((now, packet.to_vec()));
    }
    fn poll(&mut self, now: Time, out: &mut Vec<Vec<u8>>) {
        self.polls += 1;
        let (due, later): (Vec<_>, Vec<_>) = self.outbox.drain(..).partition(|(t, _)| *t <= now);
        self.outbox = later;
        out.extend(due.into_iter().map(|(_, p)| p));
    }
    fn poll_at(&self, _now: Time) -> Option<Time> {
        self.outbox.iter().map(|(t, _)| *t).min()
    }
    fn set_addresses(&mut self, addrs: &[ipnet::IpNet]) {
        self.addrs = addrs.to_vec();
    }
}

impl Recorder {
    /// Summaries of what arrived.
    pub fn summaries(&self) -> Vec<PacketSummary> {
        self.received.iter().filter_map(|(_, p)| parse_ip(p).ok()).collect()
    }

    /// (source, ICMP type, code) of every ICMP message received.
    pub fn icmp(&self) -> Vec<(IpAddr, u8, u8)> {
        self.summaries()
            .into_iter()
            .filter_map(|s| match s.l4 {
                L4Summary::Icmp { ty, code, .. } => Some((s.src, ty, code)),
                _ => None,
            })
            .collect()
    }
}

/// Runs each line of `script` (as typed on a Linux host) against `sim`, panicking on failure.
pub fn run(sim: &mut Sim, script: &str) -> String {
    let mut out = String::new();
    for (i, line) in script.lines().enumerate() {
        let Some(cmd) =
            parse_command(line).unwrap_or_else(|e| panic!("line {}: {line}: {e}", i + 1))
        else {
            continue;
        };
        out.push_str(&sim.exec(&cmd).unwrap_or_else(|e| panic!("line {}: {line}: {e}", i + 1)));
    }
    out
}

pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn ns(sim: &Sim, name: &str) -> NetnsId {
    sim.netns(Some(name)).unwrap()
}

/// Sends `count` echo requests from `from` (address `src`) to `dst`, one per second, and runs
/// until idle. The sender must have a [`Recorder`] attached.
pub fn ping(sim: &mut Sim, from: &str, src: &str, dst: &str, count: u16) {
    let n = ns(sim, from);
    let start = sim.now();
    let rec = sim.stack_mut::<Recorder>(n).expect("sender has a Recorder");
    for seq in 0..count {
        let p =
            kns_sim::net::packet::icmp_echo_request(v4(src), v4(dst), 0x1234, seq, 64, b"kns ping");
        rec.outbox.push((start + std::time::Duration::from_secs(u64::from(seq)), p));
    }
    sim.kick(n);
    sim.run_until_idle(1_000_000).unwrap();
}

/// Echo replies received by the Recorder in `ns` from `from`.
pub fn replies(sim: &mut Sim, ns_name: &str, from: &str) -> usize {
    let n = ns(sim, ns_name);
    sim.stack_mut::<Recorder>(n)
        .unwrap()
        .icmp()
        .iter()
        .filter(|(src, ty, _)| *ty == 0 && *src == ip(from))
        .count()
}
