//! How fast probes run: a batch of TCP, UDP and SCTP probes across a bridge, in virtual time
//! and in real time. Run with `--nocapture` to see the figures; `KNS_PROBES=N` runs more,
//! `KNS_PROBE_CONCURRENCY=N` changes how many are in flight at once.

mod common;

use std::time::Instant;

use common::{ns, run};
use kns_core::flow::Protocol;
use kns_sim::Sim;
use kns_sim::stack::apps::{AgnhostServer, ProbeBatch, ProbeConfig, ProbeOutcome, ProbeSpec};
use kns_sim::stack::{SmolStack, StackConfig};

#[test]
fn probe_batch_figures() {
    let probes: usize =
        std::env::var("KNS_PROBES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let pods = 10;
    let mut sim = Sim::new(11);
    run(
        &mut sim,
        "ip netns add host\nip -n host link add br0 type bridge\nip -n host link set br0 up",
    );
    let mut stacks = Vec::new();
    for i in 0..pods {
        run(
            &mut sim,
            &format!(
                "ip netns add pod{i}
ip -n pod{i} link add eth0 type veth peer name veth{i} netns host
ip -n host link set veth{i} master br0
ip -n host link set veth{i} up
ip -n pod{i} addr add 10.1.0.{}/24 dev eth0
ip -n pod{i} link set eth0 up",
                i + 10
            ),
        );
        let n = ns(&sim, &format!("pod{i}"));
        let seed = sim.child_seed();
        let mut stack = SmolStack::new(StackConfig::with_seed(seed), sim.now());
        let ports = [(80, Protocol::Tcp), (53, Protocol::Udp), (9, Protocol::Sctp)];
        stack.spawn(AgnhostServer::for_pod(format!("pod-{i}"), ports));
        sim.attach_stack(n, stack);
        sim.kick(n);
        stacks.push(n);
    }
    sim.run_until_idle(1_000_000).unwrap();
    // Pod 0 probes the others round-robin: served TCP, UDP and SCTP ports and an unserved one.
    let kinds =
        [(80, Protocol::Tcp), (53, Protocol::Udp), (9, Protocol::Sctp), (81, Protocol::Tcp)];
    let specs: Vec<_> = (0..probes)
        .map(|i| {
            let pod = 1 + i % (pods - 1);
            let (port, proto) = kinds[i / (pods - 1) % kinds.len()];
            ProbeSpec::new(format!("10.1.0.{}:{port}", pod + 10).parse().unwrap(), proto)
        })
        .collect();
    let from = stacks[0];
    let start = sim.now();
    let id = sim
        .stack_mut::<SmolStack>(from)
        .unwrap()
        .spawn(ProbeBatch::new(specs, ProbeConfig::default()));
    sim.kick(from);
    // Wall-clock time is read here only to report the simulator's speed.
    let wall = Instant::now();
    sim.run_until_idle(100_000_000).unwrap();
    let real = wall.elapsed();
    let batch = sim.stack_mut::<SmolStack>(from).unwrap().app::<ProbeBatch>(id).unwrap();
    let virt = batch.finished_at().unwrap().saturating_since(start);
    let mut connected = 0;
    let mut refused = 0;
    for r in batch.results() {
        let r = r.as_ref().unwrap();
        match (&r.outcome, r.spec.to.port()) {
            (ProbeOutcome::Connected { .. }, 80 | 53 | 9) => connected += 1,
            (ProbeOutcome::Refused, 81) => refused += 1,
            other => panic!("{}: {other:?}", r.spec),
        }
    }
    assert_eq!(connected + refused, probes);
    println!(
        "{probes} probes ({connected} connected, {refused} refused): {:.3} s real ({:.0} probes/s), \
         {:?} virtual",
        real.as_secs_f64(),
        probes as f64 / real.as_secs_f64(),
        virt
    );
}
