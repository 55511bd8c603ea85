//! Connection tracking: lookup of an existing entry and creation of a new one in tables of
//! 10,000 to 1,000,000 TCP connections.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kns_sim::Time;
use kns_sim::conntrack::{Conntrack, ConntrackConfig, Tuple};
use kns_sim::wire::{L4Summary, PacketSummary, TcpFlags};

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const BATCH: usize = 1_000;

/// The SYN of connection number `i`: distinct (address, port) pairs towards one server.
fn syn(i: usize) -> PacketSummary {
    let client = Ipv4Addr::from(0x0af4_0000u32 + (i / 50_000) as u32 + 2);
    PacketSummary {
        src: IpAddr::V4(client),
        dst: IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10)),
        ttl: 64,
        protocol: 6,
        header_len: 20,
        total_len: 40,
        l4: L4Summary::Tcp {
            src_port: 10_000 + (i % 50_000) as u16,
            dst_port: 80,
            flags: TcpFlags { syn: true, ..TcpFlags::default() },
        },
    }
}

/// A table holding `n` confirmed connections, made at time zero.
fn filled(n: usize) -> Conntrack {
    let config = ConntrackConfig { max_entries: n + 2 * BATCH, ..ConntrackConfig::default() };
    let mut ct = Conntrack::new(config);
    for i in 0..n {
        let id = ct.create(Time::ZERO, &syn(i)).expect("room for every entry");
        ct.confirm(id);
    }
    ct
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("conntrack");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    let now = Time::from_secs(1);
    for n in SIZES {
        let mut ct = filled(n);
        assert_eq!(ct.len(), n);
        let hits: Vec<Tuple> = (0..BATCH).map(|k| Tuple::of(&syn(k * (n / BATCH)))).collect();
        group.bench_function(BenchmarkId::new("lookup", n), |b| {
            b.iter(|| {
                for t in &hits {
                    black_box(ct.lookup(now, black_box(t)));
                }
            })
        });
        let fresh: Vec<PacketSummary> = (n..n + BATCH).map(syn).collect();
        group.bench_function(BenchmarkId::new("insert", n), |b| {
            b.iter(|| {
                // Create a batch of new connections, then remove them to keep the size at n.
                let mut ids = Vec::with_capacity(BATCH);
                for s in &fresh {
                    ids.push(ct.create(now, black_box(s)).expect("room for the batch"));
                }
                for id in ids {
                    ct.remove(id);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
