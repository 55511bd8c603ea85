//! TCP throughput between two stacks: virtual bytes per virtual second, and how many bytes the
//! simulation moves per real second. Run with `--nocapture` to see the figures.

use std::time::{Duration, Instant};

use kns_sim::Time;
use kns_sim::stack::apps::{TcpSink, TcpSource};
use kns_sim::stack::testnet::LoopbackNet;
use kns_sim::stack::{SmolStack, StackConfig};

#[test]
fn bulk_tcp_transfer_figures() {
    // `KNS_PERF_MIB=200` moves more for a steadier figure (e.g. in a release build).
    let mib: u64 = std::env::var("KNS_PERF_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let total = mib * 1024 * 1024;
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    // Hashing every payload byte would cost more than the stacks themselves in a debug build.
    net.set_hash_whole_datagrams(false);
    let mut cfg = StackConfig::with_seed(1);
    cfg.tcp_buffer = 64 * 1024;
    let a = net.add(
        SmolStack::with_addresses(cfg.clone(), Time::ZERO, &["10.0.0.1/24".parse().unwrap()])
            .unwrap(),
    );
    cfg.seed = 2;
    let b = net.add(
        SmolStack::with_addresses(cfg, Time::ZERO, &["10.0.0.2/24".parse().unwrap()]).unwrap(),
    );
    let sink = net.stack_mut(b).spawn(TcpSink::new(5001));
    let source = net.stack_mut(a).spawn(TcpSource::new("10.0.0.2:5001".parse().unwrap(), total));
    // Wall-clock time is read here only to report the simulator's speed.
    let wall = Instant::now();
    assert!(net.run_until_done(Time::from_secs(600), &[(a, source)]).unwrap());
    let real = wall.elapsed();
    let src = net.stack(a).app::<TcpSource>(source).unwrap();
    assert_eq!(src.error(), None);
    let s = net.stack(b).app::<TcpSink>(sink).unwrap();
    assert_eq!(s.bytes(), total);
    let virt = src.duration().unwrap();
    let stats = net.stats();
    println!(
        "{} MiB in {:.3} s virtual ({:.1} MB/s virtual), {:.3} s real: {:.1} MB/s simulated per real second, {} datagrams ({:.0}/s real)",
        total >> 20,
        virt.as_secs_f64(),
        total as f64 / virt.as_secs_f64() / 1e6,
        real.as_secs_f64(),
        total as f64 / real.as_secs_f64() / 1e6,
        stats.sent,
        stats.sent as f64 / real.as_secs_f64(),
    );
    assert!(virt > Duration::ZERO);
}
