//! kube-proxy's nftables mode: verdict maps.

use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use super::{
    Affinity, Choice, Connection, Outcome, ProxyStats, ServiceProxy, ServiceTable, resolve,
};
use crate::model::ProxyMode;

/// kube-proxy's nftables mode.
///
/// The `service-ips` and `service-nodeports` verdict maps are hash lookups keyed by address,
/// protocol and port; the Service chain then jumps through `numgen random mod n vmap`, one
/// draw whatever the backend count. Two lookups per connection, independent of the number of
/// Services.
#[derive(Debug)]
pub struct NftablesProxy {
    rng: ChaCha8Rng,
    affinity: Affinity,
    stats: ProxyStats,
}

impl NftablesProxy {
    /// A proxy whose `numgen random` comes from a ChaCha generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        NftablesProxy {
            rng: ChaCha8Rng::seed_from_u64(seed),
            affinity: Affinity::new(),
            stats: ProxyStats::default(),
        }
    }
}

impl ServiceProxy for NftablesProxy {
    fn mode(&self) -> ProxyMode {
        ProxyMode::Nftables
    }

    fn select(&mut self, table: &ServiceTable, conn: &Connection, now: Duration) -> Outcome {
        let found = table.lookup(conn.dst, conn.protocol, conn.node);
        let rng = &mut self.rng;
        let outcome = resolve(table, conn, now, found, 1, &mut self.affinity, |_, cands| {
            let n = cands.len() as u32;
            let index = rng.random_range(0..n);
            (cands[index as usize], Choice::Random { index, of: n }, 1)
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
