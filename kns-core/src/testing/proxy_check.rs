//! Contract checks for a [`ServiceProxy`]: what every mode must do whatever its algorithm.
//!
//! [`check_service_proxy`] builds a two-node cluster of two Services with six backends each,
//! some not ready, one Service with `sessionAffinity: ClientIP`, and for three seeds asks a
//! fresh proxy (`make(seed)`) to place thousands of new connections from distinct clients.
//! It checks that:
//! - only ready endpoints are chosen, and every ready one is chosen at some point;
//! - the spread is fair: each ready backend gets its share within ±[`FAIRNESS`];
//! - with ClientIP affinity, a client's later connections (before the timeout) stick to the
//!   backend of its first one, and different clients still spread over several backends;
//! - the same seed gives the same choices (determinism).
//!
//! Keeping an established connection on its backend is conntrack's job, not the proxy's
//! (see [`crate::proxy`]); it is checked in kns-sim.
//!
//! ```
//! use kns_core::model::ProxyMode;
//! use kns_core::proxy::proxy_for;
//! use kns_core::testing::check_service_proxy;
//!
//! for mode in [ProxyMode::Iptables, ProxyMode::Ipvs, ProxyMode::Nftables, ProxyMode::Maglev] {
//!     check_service_proxy(|seed| proxy_for(mode, seed)).expect("the shipped modes pass");
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::flow::Protocol;
use crate::model::{Cluster, NodeId};
use crate::proxy::{Connection, Outcome, ServiceProxy, ServiceTable};

use super::services::service_cluster;

/// The allowed deviation of a backend's share from an even split (0.3 = ±30 %).
pub const FAIRNESS: f64 = 0.3;

/// Connections placed per seed for the spread check.
const CONNECTIONS: u32 = 2400;
/// Clients of the affinity check, and connections per client.
const CLIENTS: u32 = 64;
const REPEATS: u32 = 5;
/// The affinity timeout of `svc-1`, in seconds.
const AFFINITY_TIMEOUT: u32 = 60;

/// A broken contract, found by [`check_service_proxy`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProxyCheckError {
    /// A new connection to a Service with ready backends was not forwarded.
    #[error("seed {seed}: connection {conn} to {service} was not forwarded: {outcome}")]
    NotForwarded {
        /// The seed given to `make`.
        seed: u64,
        /// The connection (`src -> dst`).
        conn: String,
        /// The Service name.
        service: String,
        /// The outcome, debug-printed.
        outcome: String,
    },
    /// A backend that is not a ready endpoint of the Service was chosen.
    #[error("seed {seed}: {service} sent {conn} to {backend}, which is not a ready endpoint")]
    NotReady {
        /// The seed given to `make`.
        seed: u64,
        /// The connection (`src -> dst`).
        conn: String,
        /// The Service name.
        service: String,
        /// The chosen backend.
        backend: SocketAddr,
    },
    /// A ready backend's share of new connections is outside the bounds.
    #[error(
        "seed {seed}: {backend} got {got} of {total} connections; expected {expected:.0} ± {:.0}%",
        FAIRNESS * 100.0
    )]
    Unfair {
        /// The seed given to `make`.
        seed: u64,
        /// The backend.
        backend: SocketAddr,
        /// Connections it got.
        got: u32,
        /// Connections placed.
        total: u32,
        /// Its even share.
        expected: f64,
    },
    /// A client's later connection went elsewhere before the affinity timeout.
    #[error(
        "seed {seed}: client {client} went to {first}, then to {later} within the affinity timeout"
    )]
    AffinityBroken {
        /// The seed given to `make`.
        seed: u64,
        /// The client address.
        client: IpAddr,
        /// The backend of its first connection.
        first: SocketAddr,
        /// The backend of a later one.
        later: SocketAddr,
    },
    /// With affinity on, all clients ended up on one backend.
    #[error("seed {seed}: {clients} affine clients all went to one backend")]
    AffinityCollapsed {
        /// The seed given to `make`.
        seed: u64,
        /// The number of clients.
        clients: u32,
    },
    /// Two runs with the same seed chose differently.
    #[error("seed {seed}: two proxies made with the same seed chose differently")]
    Nondeterministic {
        /// The seed given to `make`.
        seed: u64,
    },
}

/// The test cluster: `svc-0` and `svc-1`, six backends each on two nodes; `svc-0-4`,
/// `svc-0-5` and `svc-1-0` not ready; `svc-1` has ClientIP affinity.
fn cluster() -> Cluster {
    let mut c = service_cluster(2, 6, 2);
    for pod in &mut c.pods {
        if ["svc-0-4", "svc-0-5", "svc-1-0"].contains(&pod.name.as_str()) {
            pod.ready = false;
        }
    }
    c.services[1].session_affinity_timeout = Some(AFFINITY_TIMEOUT);
    c
}

/// The ready endpoints of a Service, as backend addresses (target port 8080).
fn ready(c: &Cluster, service: &str) -> BTreeSet<SocketAddr> {
    c.pods
        .iter()
        .filter(|p| p.ready && p.labels.get("app").map(String::as_str) == Some(service))
        .map(|p| SocketAddr::new(p.ip, 8080))
        .collect()
}

/// A client outside the backends' range, distinct for each `i`.
fn client(i: u32) -> SocketAddr {
    let ip = Ipv4Addr::new(10, 244, 100 + (i / 250) as u8 % 100, (i % 250) as u8 + 1);
    SocketAddr::new(IpAddr::V4(ip), 20000 + (i % 40000) as u16)
}

/// Places one connection and returns the backend, checking it is a ready endpoint.
#[allow(clippy::too_many_arguments)]
fn place(
    proxy: &mut dyn ServiceProxy,
    table: &ServiceTable,
    src: SocketAddr,
    dst: SocketAddr,
    now: Duration,
    service: &str,
    ready: &BTreeSet<SocketAddr>,
    seed: u64,
) -> Result<SocketAddr, ProxyCheckError> {
    let conn =
        Connection { src, dst, protocol: Protocol::Tcp, node: NodeId(0), from_local_pod: false };
    let name = || format!("{src} -> {dst}");
    match proxy.select(table, &conn, now) {
        Outcome::Forward(d) => {
            if !ready.contains(&d.backend) {
                return Err(ProxyCheckError::NotReady {
                    seed,
                    conn: name(),
                    service: service.into(),
                    backend: d.backend,
                });
            }
            // The connection ends at once, so connection-counting schedulers stay balanced.
            proxy.release(table, d.vs, d.backend);
            Ok(d.backend)
        }
        other => Err(ProxyCheckError::NotForwarded {
            seed,
            conn: name(),
            service: service.into(),
            outcome: format!("{other:?}"),
        }),
    }
}

/// One seed's run: the spread over `svc-0`, then the affinity of `svc-1`. Returns every
/// choice, in order, for the determinism check.
fn run(proxy: &mut dyn ServiceProxy, seed: u64) -> Result<Vec<SocketAddr>, ProxyCheckError> {
    let c = cluster();
    let table = ServiceTable::from_cluster(&c);
    let ip = |i: usize| c.services[i].cluster_ip.expect("service_cluster sets cluster IPs");
    let mut choices = Vec::new();

    let (svc0, ready0) = (SocketAddr::new(ip(0), 80), ready(&c, "svc-0"));
    let mut counts: BTreeMap<SocketAddr, u32> = ready0.iter().map(|&b| (b, 0)).collect();
    for i in 0..CONNECTIONS {
        let now = Duration::from_millis(u64::from(i));
        let b = place(proxy, &table, client(i), svc0, now, "svc-0", &ready0, seed)?;
        *counts.entry(b).or_default() += 1;
        choices.push(b);
    }
    let expected = f64::from(CONNECTIONS) / ready0.len() as f64;
    for (&backend, &got) in &counts {
        if (f64::from(got) - expected).abs() > FAIRNESS * expected {
            return Err(ProxyCheckError::Unfair {
                seed,
                backend,
                got,
                total: CONNECTIONS,
                expected,
            });
        }
    }

    let (svc1, ready1) = (SocketAddr::new(ip(1), 80), ready(&c, "svc-1"));
    let start = Duration::from_secs(3600);
    let mut firsts = BTreeSet::new();
    for k in 0..CLIENTS {
        let src = client(10_000 + k);
        let first = place(proxy, &table, src, svc1, start, "svc-1", &ready1, seed)?;
        firsts.insert(first);
        choices.push(first);
        for r in 1..=REPEATS {
            // New source ports, a few seconds apart: well within the timeout.
            let later_src = SocketAddr::new(src.ip(), src.port().wrapping_add(r as u16 * 7));
            let now = start + Duration::from_secs(u64::from(r) * 5);
            let later = place(proxy, &table, later_src, svc1, now, "svc-1", &ready1, seed)?;
            if later != first {
                return Err(ProxyCheckError::AffinityBroken {
                    seed,
                    client: src.ip(),
                    first,
                    later,
                });
            }
            choices.push(later);
        }
    }
    if firsts.len() < 2 {
        return Err(ProxyCheckError::AffinityCollapsed { seed, clients: CLIENTS });
    }
    Ok(choices)
}

/// Checks the proxies `make` returns; see the module documentation. Returns the first broken
/// contract.
pub fn check_service_proxy(
    make: impl Fn(u64) -> Box<dyn ServiceProxy>,
) -> Result<(), ProxyCheckError> {
    for seed in [1, 2, 3] {
        let a = run(&mut *make(seed), seed)?;
        let b = run(&mut *make(seed), seed)?;
        if a != b {
            return Err(ProxyCheckError::Nondeterministic { seed });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProxyMode;
    use crate::proxy::{ProxyStats, proxy_for};

    #[test]
    fn every_shipped_mode_passes() {
        for mode in [ProxyMode::Iptables, ProxyMode::Ipvs, ProxyMode::Nftables, ProxyMode::Maglev] {
            if let Err(e) = check_service_proxy(|seed| proxy_for(mode, seed)) {
                panic!("{mode:?}: {e}");
            }
        }
    }

    /// Always picks the Service's first backend, ready or not, and forgets affinity.
    struct FirstBackend;

    impl ServiceProxy for FirstBackend {
        fn mode(&self) -> ProxyMode {
            ProxyMode::Iptables
        }
        fn select(&mut self, table: &ServiceTable, conn: &Connection, _: Duration) -> Outcome {
            let Some(f) = table.lookup(conn.dst, conn.protocol, conn.node) else {
                return Outcome::NotAService;
            };
            let vs = table.service(f.vs);
            let Some(b) = vs.backends.first() else { return Outcome::NoEndpoints { vs: f.vs } };
            Outcome::Forward(crate::proxy::Decision {
                vs: f.vs,
                frontend: conn.dst,
                kind: f.kind,
                backend: b.addr,
                snat: None,
                choice: crate::proxy::Choice::Random { index: 0, of: 1 },
                evaluated: 1,
            })
        }
        fn stats(&self) -> ProxyStats {
            ProxyStats::default()
        }
    }

    #[test]
    fn a_proxy_that_always_picks_one_backend_is_unfair() {
        let err = check_service_proxy(|_| Box::new(FirstBackend)).unwrap_err();
        assert!(matches!(err, ProxyCheckError::Unfair { got: 2400, .. }), "{err}");
    }

    #[test]
    fn test_cluster_has_not_ready_endpoints() {
        let c = cluster();
        assert_eq!((ready(&c, "svc-0").len(), ready(&c, "svc-1").len()), (4, 5));
    }
}
