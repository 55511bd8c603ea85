//! Maglev consistent hashing (Eisenbud et al., NSDI 2016), as Cilium and Katran use it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::hash::{fnv1a_from, mix};
use super::table::FixedMap;
use super::{
    Affinity, Choice, Connection, Outcome, ProxyStats, ServiceProxy, ServiceTable, VsKey, resolve,
    vs_key,
};
use crate::model::{NodeId, ProxyMode};

/// The lookup-table size kns uses by default: 16,381, a prime (Cilium's default too).
pub const DEFAULT_TABLE_SIZE: u32 = 16_381;

/// Fixed seeds of the two backend hashes (offset and skip) and of the flow hash.
const OFFSET_SEED: u64 = 0x6d61_676c_6576_3031;
const SKIP_SEED: u64 = 0x6d61_676c_6576_3032;
const FLOW_SEED: u64 = 0x6d61_676c_6576_3033;

/// Builds a Maglev lookup table of `size` entries (a prime larger than the backend count)
/// for backends named `names`: entry *j* is the index of the backend that owns slot *j*.
///
/// Each backend walks its own permutation of the slots (offset and skip from two fixed
/// hashes of its name) and takes its next free slot in turn, so every backend owns
/// `size / n` slots give or take one, and removing a backend mostly frees only its own slots.
/// Empty for no backends.
pub fn maglev_table(names: &[String], size: u32) -> Vec<u16> {
    let n = names.len();
    if n == 0 || size < 2 {
        return Vec::new();
    }
    let m = u64::from(size);
    let perm: Vec<(u64, u64)> = names
        .iter()
        .map(|name| {
            let offset = mix(fnv1a_from(OFFSET_SEED, name.as_bytes())) % m;
            let skip = mix(fnv1a_from(SKIP_SEED, name.as_bytes())) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();
    // `pos[i]` is backend i's next candidate, (offset + k * skip) mod m for its k-th probe,
    // advanced by one addition instead of a multiplication and a division.
    let mut pos: Vec<u64> = perm.iter().map(|&(offset, _)| offset).collect();
    let mut entry = vec![u16::MAX; size as usize];
    let mut filled = 0u64;
    let advance = |p: &mut u64, skip: u64| {
        *p += skip;
        if *p >= m {
            *p -= m;
        }
    };
    loop {
        for (i, &(_, skip)) in perm.iter().enumerate() {
            while entry[pos[i] as usize] != u16::MAX {
                advance(&mut pos[i], skip);
            }
            entry[pos[i] as usize] = i as u16;
            advance(&mut pos[i], skip);
            filled += 1;
            if filled == m {
                return entry;
            }
        }
    }
}

/// The fixed hash of a connection's 5-tuple that picks its Maglev slot.
pub fn flow_hash(src: SocketAddr, dst: SocketAddr, proto: u8) -> u64 {
    let mut h = FLOW_SEED;
    for addr in [src, dst] {
        h = match addr.ip() {
            IpAddr::V4(a) => fnv1a_from(h, &a.octets()),
            IpAddr::V6(a) => fnv1a_from(h, &a.octets()),
        };
        h = fnv1a_from(h, &addr.port().to_be_bytes());
    }
    mix(fnv1a_from(h, &[proto]))
}

/// A built table: which backend set it was built for, and its entries.
#[derive(Debug, Clone)]
struct Built {
    fingerprint: u64,
    entries: Vec<u16>,
}

/// Maglev consistent hashing.
///
/// The Service port is found by hash lookup; the connection's 5-tuple hash indexes the
/// Service's lookup table, built on first use and rebuilt when its backends change (a
/// separate table for each node's local backends under a Local traffic policy). No random
/// draw: every node picks the same backend for a flow, and removing one of *n* backends
/// moves little more than the 1/*n* of flows it served.
#[derive(Debug, Clone)]
pub struct MaglevProxy {
    size: u32,
    tables: FixedMap<(VsKey, Option<NodeId>), Built>,
    affinity: Affinity,
    stats: ProxyStats,
}

impl MaglevProxy {
    /// A proxy with lookup tables of `size` entries; `size` should be a prime well above the
    /// largest backend count (Maglev suggests 100 times it).
    pub fn new(size: u32) -> Self {
        MaglevProxy {
            size: size.max(2),
            tables: FixedMap::default(),
            affinity: Affinity::new(),
            stats: ProxyStats::default(),
        }
    }

    /// The lookup-table size.
    pub fn table_size(&self) -> u32 {
        self.size
    }
}

impl ServiceProxy for MaglevProxy {
    fn mode(&self) -> ProxyMode {
        ProxyMode::Maglev
    }

    fn select(&mut self, table: &ServiceTable, conn: &Connection, now: Duration) -> Outcome {
        let found = table.lookup(conn.dst, conn.protocol, conn.node);
        let (size, tables) = (self.size, &mut self.tables);
        let outcome = resolve(table, conn, now, found, 1, &mut self.affinity, |vs, cands| {
            let subset = (cands.len() != vs.backends.len()).then_some(conn.node);
            let built = tables
                .entry((vs_key(vs), subset))
                .or_insert_with(|| Built { fingerprint: !vs.fingerprint, entries: Vec::new() });
            if built.fingerprint != vs.fingerprint {
                let names: Vec<String> =
                    cands.iter().map(|&i| vs.backends[i as usize].addr.to_string()).collect();
                built.entries = maglev_table(&names, size);
                built.fingerprint = vs.fingerprint;
            }
            let slot =
                (flow_hash(conn.src, conn.dst, conn.protocol.ip_number()) % u64::from(size)) as u32;
            let pos = built.entries[slot as usize];
            (cands[pos as usize], Choice::Maglev { slot, size }, 1)
        });
        self.stats.connections += 1;
        self.stats.evaluations += match &outcome {
            Outcome::Forward(d) => u64::from(d.evaluated),
            _ => 1,
        };
        outcome
    }

    fn stats(&self) -> ProxyStats {
        self.stats
    }
}
