//! Route lookup: kns-sim's `RouteTable::lookup` (a linear scan over every route, as the
//! table is kept in display order) against a longest-prefix binary trie written here, at 10
//! to 100,000 IPv4 routes.
//!
//! The trie lives in this file, not in kns-sim: it is the alternative being measured. Its
//! answers are checked against the table's on every query address before timing.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kns_core::proxy::mix;
use kns_sim::net::{IfaceId, Route, RouteProto, RouteTable};

const SIZES: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];
const QUERIES: usize = 1_000;

/// A table of `n` routes: a default route, one /8, then /24s (every 16th a /16, every 4th a
/// /28) spread over `10.0.0.0/8` by a fixed hash, each on its own device. The /28s make room
/// for 100,000 distinct prefixes (`10.0.0.0/8` holds only 65,536 /24s).
fn table(n: usize) -> RouteTable {
    let mut t = RouteTable::default();
    let route = |dst: &str, dev: u32| Route {
        dst: dst.parse().expect("valid prefix"),
        via: None,
        dev: IfaceId(dev),
        metric: 0,
        src: None,
        proto: RouteProto::Boot,
        onlink: false,
    };
    t.add(route("0.0.0.0/0", 0), false).expect("new route");
    t.add(route("10.0.0.0/8", 1), false).expect("new route");
    let mut i = 0u64;
    while t.routes().len() < n {
        let h = mix(i) as u32;
        let (b, c, d) = ((h >> 16) as u8, (h >> 8) as u8, h as u8 & 0xf0);
        let dst = if i.is_multiple_of(16) {
            format!("10.{b}.0.0/16")
        } else if i % 4 == 1 {
            format!("10.{b}.{c}.{d}/28")
        } else {
            format!("10.{b}.{c}.0/24")
        };
        // Duplicates are skipped (`add` refuses them).
        let _ = t.add(route(&dst, 2 + t.routes().len() as u32), false);
        i += 1;
    }
    t
}

/// A binary trie over IPv4 prefixes; each node may hold the index of the best route for
/// exactly its prefix.
struct Trie {
    /// Children (0 = none) and the route at this node.
    nodes: Vec<([u32; 2], Option<u32>)>,
}

impl Trie {
    fn build(table: &RouteTable) -> Trie {
        let mut trie = Trie { nodes: vec![([0, 0], None)] };
        for (i, r) in table.routes().iter().enumerate() {
            let IpAddr::V4(addr) = r.dst.addr() else { continue };
            let bits = u32::from(addr);
            let mut node = 0usize;
            for depth in 0..r.dst.prefix_len() {
                let bit = ((bits >> (31 - depth)) & 1) as usize;
                if trie.nodes[node].0[bit] == 0 {
                    trie.nodes.push(([0, 0], None));
                    let next = (trie.nodes.len() - 1) as u32;
                    trie.nodes[node].0[bit] = next;
                }
                node = trie.nodes[node].0[bit] as usize;
            }
            // Lowest metric wins, then the first added (all metrics are 0 here).
            let slot = &mut trie.nodes[node].1;
            let better = slot.is_none_or(|j| table.routes()[j as usize].metric > r.metric);
            if better {
                *slot = Some(i as u32);
            }
        }
        trie
    }

    fn lookup<'a>(&self, table: &'a RouteTable, dst: Ipv4Addr) -> Option<&'a Route> {
        let bits = u32::from(dst);
        let mut node = 0usize;
        let mut best = self.nodes[0].1;
        for depth in 0..32 {
            let next = self.nodes[node].0[((bits >> (31 - depth)) & 1) as usize];
            if next == 0 {
                break;
            }
            node = next as usize;
            if let Some(r) = self.nodes[node].1 {
                best = Some(r);
            }
        }
        best.map(|i| &table.routes()[i as usize])
    }
}

fn queries() -> Vec<Ipv4Addr> {
    (0..QUERIES as u64)
        .map(|i| Ipv4Addr::from(0x0a00_0000 | (mix(i ^ 0x5eed) as u32 & 0x00ff_ffff)))
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    group.throughput(Throughput::Elements(QUERIES as u64));
    let qs = queries();
    for n in SIZES {
        let t = table(n);
        let trie = Trie::build(&t);
        for &q in &qs {
            assert_eq!(
                trie.lookup(&t, q),
                t.lookup(IpAddr::V4(q)),
                "trie and table disagree on {q}"
            );
        }
        group.bench_function(BenchmarkId::new("linear", n), |b| {
            b.iter(|| {
                for &q in &qs {
                    black_box(t.lookup(IpAddr::V4(black_box(q))));
                }
            })
        });
        group.bench_function(BenchmarkId::new("trie", n), |b| {
            b.iter(|| {
                for &q in &qs {
                    black_box(trie.lookup(&t, black_box(q)));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
