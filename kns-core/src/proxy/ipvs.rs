//! kube-proxy's IPVS mode: a hash lookup of the virtual service, then a scheduler.

use std::net::SocketAddr;
use std::time::Duration;

use super::table::FixedMap;
use super::{
    Affinity, Choice, Connection, Outcome, ProxyStats, ServiceProxy, ServiceTable, VsId, VsKey,
    resolve, vs_key,
};
use crate::model::ProxyMode;

/// An IPVS scheduler (`--ipvs-scheduler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Scheduler {
    /// `rr`: each virtual service hands out its backends in turn (kube-proxy's default).
    #[default]
    RoundRobin,
    /// `lc`: the backend with the fewest open connections; ties go to the first listed.
    LeastConnection,
}

/// kube-proxy's IPVS mode.
///
/// The virtual service is found by a hash lookup of (address, port, protocol), as the kernel's
/// IPVS table does, so the cost does not depend on the number of Services. Round-robin keeps
/// a cursor per virtual service; least-connection counts the connections it handed to each
/// backend until [`ServiceProxy::release`] reports them closed.
#[derive(Debug, Clone)]
pub struct IpvsProxy {
    scheduler: Scheduler,
    cursors: FixedMap<VsKey, u32>,
    active: FixedMap<(VsKey, SocketAddr), u32>,
    affinity: Affinity,
    stats: ProxyStats,
}

impl IpvsProxy {
    /// A proxy with `scheduler`.
    pub fn new(scheduler: Scheduler) -> Self {
        IpvsProxy {
            scheduler,
            cursors: FixedMap::default(),
            active: FixedMap::default(),
            affinity: Affinity::new(),
            stats: ProxyStats::default(),
        }
    }

    /// The scheduler.
    pub fn scheduler(&self) -> Scheduler {
        self.scheduler
    }

    /// The open connections counted for `backend` of `vs` (least-connection only).
    pub fn active(&self, table: &ServiceTable, vs: VsId, backend: SocketAddr) -> u32 {
        let key = vs_key(table.service(vs));
        self.active.get(&(key, backend)).copied().unwrap_or(0)
    }
}

impl ServiceProxy for IpvsProxy {
    fn mode(&self) -> ProxyMode {
        ProxyMode::Ipvs
    }

    fn select(&mut self, table: &ServiceTable, conn: &Connection, now: Duration) -> Outcome {
        let found = table.lookup(conn.dst, conn.protocol, conn.node);
        let (scheduler, cursors, active) = (self.scheduler, &mut self.cursors, &mut self.active);
        let outcome = resolve(table, conn, now, found, 1, &mut self.affinity, |vs, cands| {
            let key = vs_key(vs);
            let n = cands.len() as u32;
            match scheduler {
                Scheduler::RoundRobin => {
                    let cursor = cursors.entry(key).or_insert(0);
                    let index = *cursor % n;
                    *cursor = cursor.wrapping_add(1);
                    (cands[index as usize], Choice::RoundRobin { index, of: n }, 1)
                }
                Scheduler::LeastConnection => {
                    let count = |i: u32| {
                        active.get(&(key, vs.backends[i as usize].addr)).copied().unwrap_or(0)
                    };
                    let (best, fewest) = cands
                        .iter()
                        .map(|&i| (i, count(i)))
                        .min_by_key(|&(_, c)| c)
                        .expect("resolve never passes an empty candidate list");
                    (best, Choice::LeastConnection { active: fewest }, n)
                }
            }
        });
        if let (Outcome::Forward(d), Scheduler::LeastConnection) = (&outcome, scheduler) {
            *self.active.entry((vs_key(table.service(d.vs)), d.backend)).or_insert(0) += 1;
        }
        self.stats.connections += 1;
        self.stats.evaluations += match &outcome {
            Outcome::Forward(d) => u64::from(d.evaluated),
            _ => 1,
        };
        outcome
    }

    fn release(&mut self, table: &ServiceTable, vs: VsId, backend: SocketAddr) {
        let key = (vs_key(table.service(vs)), backend);
        if let Some(c) = self.active.get_mut(&key) {
            *c = c.saturating_sub(1);
        }
    }

    fn stats(&self) -> ProxyStats {
        self.stats
    }
}
