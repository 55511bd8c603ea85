//! Service proxy benches: the cost of deciding a new connection (backend selection) in each
//! proxy mode at 10, 1,000 and 10,000 Services, and Maglev's disruption when a backend goes.

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kns_core::Protocol;
use kns_core::model::{NodeId, ProxyMode};
use kns_core::proxy::{
    Connection, DEFAULT_TABLE_SIZE, IpvsProxy, MaglevProxy, Outcome, Scheduler, ServiceProxy,
    ServiceTable, fnv1a, maglev_table, mix, proxy_for,
};
use kns_core::testing::service_cluster;
use std::hint::black_box;

const SERVICES: [usize; 3] = [10, 1_000, 10_000];
const BACKENDS: usize = 3;
const CONNS: usize = 1_000;

/// `CONNS` new connections from distinct client ports to Services spread over the table.
fn connections(table: &ServiceTable) -> Vec<Connection> {
    let n = table.services().len();
    (0..CONNS)
        .map(|i| {
            let vs = &table.services()[(mix(i as u64) % n as u64) as usize];
            Connection {
                src: SocketAddr::new([10, 244, 200, (i % 250) as u8 + 1].into(), 1024 + i as u16),
                dst: SocketAddr::new(vs.cluster_ip.expect("synthetic Services have one"), vs.port),
                protocol: Protocol::Tcp,
                node: NodeId(0),
                from_local_pod: true,
            }
        })
        .collect()
}

fn modes() -> Vec<(&'static str, Box<dyn ServiceProxy>)> {
    vec![
        ("iptables", proxy_for(ProxyMode::Iptables, 1)),
        ("ipvs_rr", Box::new(IpvsProxy::new(Scheduler::RoundRobin))),
        ("ipvs_lc", Box::new(IpvsProxy::new(Scheduler::LeastConnection))),
        ("nftables", proxy_for(ProxyMode::Nftables, 1)),
        ("maglev", Box::new(MaglevProxy::new(DEFAULT_TABLE_SIZE))),
    ]
}

fn select(c: &mut Criterion) {
    let mut group = c.benchmark_group("proxy_select");
    group.throughput(Throughput::Elements(CONNS as u64));
    for services in SERVICES {
        let cluster = service_cluster(services, BACKENDS, 10);
        let table = ServiceTable::from_cluster(&cluster);
        let conns = connections(&table);
        for (name, mut proxy) in modes() {
            // Warm up (Maglev builds each Service's lookup table on first use).
            for k in &conns {
                assert!(matches!(proxy.select(&table, k, Duration::ZERO), Outcome::Forward(_)));
            }
            let before = proxy.stats();
            for k in &conns {
                proxy.select(&table, k, Duration::ZERO);
            }
            let after = proxy.stats();
            println!(
                "proxy_select/{name}/{services}: {:.1} rules or lookups evaluated per connection",
                (after.evaluations - before.evaluations) as f64 / CONNS as f64
            );
            group.bench_with_input(BenchmarkId::new(name, services), &conns, |b, conns| {
                b.iter(|| {
                    for k in conns {
                        black_box(proxy.select(&table, k, Duration::ZERO));
                    }
                })
            });
        }
    }
    group.finish();
}

/// Fraction of a table's slots whose backend changes when backend `n/2` of `n` is removed.
fn maglev_disruption(n: usize, size: u32) -> f64 {
    let names: Vec<String> =
        (0..n).map(|i| format!("10.244.{}.{}:8080", i / 250, i % 250 + 2)).collect();
    let before = maglev_table(&names, size);
    let mut fewer = names.clone();
    fewer.remove(n / 2);
    let after = maglev_table(&fewer, size);
    let moved = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| names[**b as usize] != fewer[**a as usize])
        .count();
    moved as f64 / f64::from(size)
}

/// The same for plain `hash mod n` (what a stateless hash without consistency would do).
fn modulo_disruption(n: usize) -> f64 {
    let flows = 100_000u64;
    let moved = (0..flows)
        .filter(|&f| {
            let h = fnv1a(&f.to_be_bytes());
            let b = (h % n as u64) as usize;
            let a = (h % (n as u64 - 1)) as usize;
            // Backend `n/2` leaves; those after it shift down by one.
            let a_name = if a >= n / 2 { a + 1 } else { a };
            a_name != b
        })
        .count();
    moved as f64 / flows as f64
}

fn maglev(c: &mut Criterion) {
    for (n, size) in
        [(3usize, 16_381u32), (10, 16_381), (100, 16_381), (100, 65_537), (1_000, 65_537)]
    {
        println!(
            "maglev_disruption: remove 1 of {n} backends, M={size}: {:.4} of flows move (ideal 1/n = {:.4}, hash mod n: {:.4})",
            maglev_disruption(n, size),
            1.0 / n as f64,
            modulo_disruption(n)
        );
    }
    let mut group = c.benchmark_group("maglev_table_build");
    for (n, size) in [(10usize, 16_381u32), (100, 16_381), (100, 65_537)] {
        let names: Vec<String> = (0..n).map(|i| format!("10.244.0.{i}:8080")).collect();
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{n}backends_M{size}")),
            &names,
            |b, names| b.iter(|| black_box(maglev_table(names, size))),
        );
    }
    group.finish();
}

criterion_group!(benches, select, maglev);
criterion_main!(benches);
