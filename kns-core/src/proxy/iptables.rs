//! kube-proxy's iptables mode: rules matched one after another.

use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use super::{
    Affinity, Choice, Connection, Outcome, ProxyStats, ServiceProxy, ServiceTable, resolve,
};
use crate::model::ProxyMode;

/// kube-proxy's iptables mode.
///
/// A new connection walks `KUBE-SERVICES`, one rule per frontend in the table's order (node
/// ports last, as the final `KUBE-NODEPORTS` jump), until one matches; the Service chain then
/// tries its backend rules in order, rule *k* of *n* matching with probability 1/(n-k+1)
/// (`-m statistic --mode random`), the last unconditionally, which gives each backend 1/n.
/// Every rule tried is counted ([`ProxyStats::evaluations`]), so the cost of a connection
/// grows with the number of Services in front of its own.
#[derive(Debug)]
pub struct IptablesProxy {
    rng: ChaCha8Rng,
    affinity: Affinity,
    stats: ProxyStats,
}

impl IptablesProxy {
    /// A proxy whose random draws come from a ChaCha generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        IptablesProxy {
            rng: ChaCha8Rng::seed_from_u64(seed),
            affinity: Affinity::new(),
            stats: ProxyStats::default(),
        }
    }
}

impl ServiceProxy for IptablesProxy {
    fn mode(&self) -> ProxyMode {
        ProxyMode::Iptables
    }

    fn select(&mut self, table: &ServiceTable, conn: &Connection, now: Duration) -> Outcome {
        let mut evaluated = 0u32;
        let mut found = None;
        for f in table.frontends() {
            evaluated += 1;
            if table.matches(f, conn.dst, conn.protocol, conn.node) {
                found = Some(f);
                break;
            }
        }
        let rng = &mut self.rng;
        let outcome =
            resolve(table, conn, now, found, evaluated, &mut self.affinity, |_, cands| {
                let n = cands.len() as u32;
                for k in 0..n - 1 {
                    // Rule k+1 of n matches with probability 1/(n-k).
                    if rng.random_range(0..n - k) == 0 {
                        return (
                            cands[k as usize],
                            Choice::Probability { rule: k + 1, of: n },
                            k + 1,
                        );
                    }
                }
                (cands[(n - 1) as usize], Choice::Probability { rule: n, of: n }, n)
            });
        self.stats.connections += 1;
        self.stats.evaluations += match &outcome {
            Outcome::Forward(d) => u64::from(d.evaluated),
            _ => u64::from(evaluated),
        };
        outcome
    }

    fn stats(&self) -> ProxyStats {
        self.stats
    }
}
