//! [`DnsResolver`]: names resolved the way `getaddrinfo` resolves them in a real pod, which is
//! what `tokio::net::lookup_host` calls.
//!
//! The resolver reads the asking pod's resolv.conf (kubelet's ClusterFirst file in a living
//! cluster, [`ClusterNet::resolv_conf`](crate::cluster::ClusterNet::resolv_conf); or one given
//! with [`DnsResolver::set_conf`]), walks the search path with glibc's
//! [`SearchWalk`](crate::dns::SearchWalk) (ndots decides whether the name is tried as is
//! first), and for each candidate sends real A and AAAA queries together from a
//! [`UdpSocket`] of the pod, to each nameserver in turn, `attempts` rounds of `timeout`
//! each, in virtual time. An ICMP port unreachable moves on to the next try at once; a
//! truncated answer is asked again over TCP. The queries cross the dataplane like any other
//! packet: kube-proxy's DNAT to the kube-dns pod, NetworkPolicy, latency and loss apply.
//!
//! Names in the resolver's [`Hosts`] table (always `localhost`) answer without a query, as
//! `/etc/hosts` does.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cluster::Source;
use crate::dns::message::{Message, Question, RecordType, take_tcp_frame, tcp_frame};
use crate::dns::resolver::{LookupError, ResolvConf, SearchWalk, WalkStep, name_outcome};
use crate::net::NetnsId;

use super::lookup::{Hosts, Resolve, ResolveFuture};
use super::runtime::{Host, try_with_world};
use super::{TcpStream, UdpSocket, lock};

/// The record types `getaddrinfo` asks for with `AF_UNSPEC`, sent together per name.
const TYPES: [RecordType; 2] = [RecordType::A, RecordType::Aaaa];

/// Why a pod has no resolv.conf to resolve with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsResolverError {
    /// The pod is neither given a resolv.conf nor a pod or node of the living cluster.
    #[error("no resolv.conf for namespace {0:?}")]
    NoConf(NetnsId),
    /// The cluster could not say (it has no kube-dns Service, for example).
    #[error("{0}")]
    Cluster(String),
}

/// Resolves names over DNS from the asking pod; see the module documentation.
#[derive(Debug)]
pub struct DnsResolver {
    confs: BTreeMap<NetnsId, ResolvConf>,
    hosts: Hosts,
    /// The next query ID (a seeded sequence, so runs repeat).
    next_id: Mutex<u16>,
}

impl DnsResolver {
    /// A resolver whose query IDs follow from `seed`. In a living cluster every pod uses its
    /// kubelet resolv.conf; elsewhere give each pod one with [`DnsResolver::set_conf`].
    pub fn new(seed: u64) -> DnsResolver {
        let id = (seed ^ (seed >> 16) ^ (seed >> 32) ^ (seed >> 48)) as u16;
        DnsResolver { confs: BTreeMap::new(), hosts: Hosts::new(), next_id: Mutex::new(id) }
    }

    /// Makes `pod` resolve with `conf` (instead of what its cluster would give it).
    pub fn set_conf(&mut self, pod: NetnsId, conf: ResolvConf) -> &mut DnsResolver {
        self.confs.insert(pod, conf);
        self
    }

    /// The `/etc/hosts` table consulted before any query.
    pub fn hosts_mut(&mut self) -> &mut Hosts {
        &mut self.hosts
    }

    /// The resolv.conf `pod` resolves with.
    pub fn conf_for(&self, pod: NetnsId) -> Result<ResolvConf, DnsResolverError> {
        if let Some(conf) = self.confs.get(&pod) {
            return Ok(conf.clone());
        }
        try_with_world(|w| match &*w.host.borrow() {
            Host::Cluster(net) => {
                let source = net
                    .cluster()
                    .pods
                    .iter()
                    .find(|p| !p.host_network && net.pod_ns(p.id) == Some(pod))
                    .map(|p| Source::Pod(p.id))
                    .or_else(|| {
                        net.nodes().iter().find(|n| n.ns == pod).map(|n| Source::Node(n.id))
                    })
                    .ok_or(DnsResolverError::NoConf(pod))?;
                net.resolv_conf(source).map_err(|e| DnsResolverError::Cluster(e.to_string()))
            }
            Host::Bare(_) => Err(DnsResolverError::NoConf(pod)),
        })
        .unwrap_or(Err(DnsResolverError::NoConf(pod)))
    }

    /// Query IDs for the lookup about to start: the start of a run of fresh ones.
    fn take_ids(&self) -> u16 {
        let mut next = lock(&self.next_id);
        let first = *next;
        // Room for every query of a long walk (names × attempts × servers × 2 types).
        *next = next.wrapping_add(0x0400);
        first
    }
}

impl Resolve for DnsResolver {
    fn resolve(&self, pod: NetnsId, host: &str) -> ResolveFuture {
        if let Some(ips) = self.hosts.get(host) {
            return Box::pin(std::future::ready(Ok(ips)));
        }
        let conf = match self.conf_for(pod) {
            Ok(conf) => conf,
            Err(e) => return Box::pin(std::future::ready(Err(io::Error::other(e)))),
        };
        let first_id = self.take_ids();
        let name = host.to_string();
        Box::pin(async move { getaddrinfo(conf, name, first_id).await })
    }
}

/// The error `getaddrinfo` reports, with the name.
fn lookup_error(e: LookupError, name: &str) -> io::Error {
    io::Error::other(format!("failed to lookup address information: {e} ({name})"))
}

/// glibc's lookup of `name` under `conf`: the search walk, each candidate asked for A and
/// AAAA.
async fn getaddrinfo(conf: ResolvConf, name: String, first_id: u16) -> io::Result<Vec<IpAddr>> {
    if conf.nameservers.is_empty() {
        return Err(lookup_error(LookupError::TryAgain, &name));
    }
    let sock = UdpSocket::bind("0.0.0.0:0").await?;
    let mut id = first_id;
    let mut walk = SearchWalk::new(&conf, &name);
    let mut step = walk.start();
    let mut answers = Vec::new();
    loop {
        match step {
            WalkStep::Try(candidate) => {
                answers = query_name(&sock, &conf, &candidate, &mut id).await?;
                step = walk.report(name_outcome(&typed(&answers)));
            }
            // The walk ends with an answer right after the name that got it: `answers`.
            WalkStep::Done(Ok(_)) => return Ok(addresses(&typed(&answers))),
            WalkStep::Done(Err(e)) => return Err(lookup_error(e, &name)),
        }
    }
}

/// Each answer with the record type its query asked for.
fn typed(answers: &[Option<Message>]) -> Vec<(RecordType, Option<&Message>)> {
    TYPES.iter().copied().zip(answers.iter().map(Option::as_ref)).collect()
}

/// The addresses of the answers: A records first, then AAAA, each in answer order.
fn addresses(results: &[(RecordType, Option<&Message>)]) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    for (qtype, answer) in results {
        for r in answer.iter().flat_map(|m| &m.answers) {
            if r.data.record_type() == *qtype
                && let Some(ip) = r.data.address()
            {
                ips.push(ip);
            }
        }
    }
    ips
}

/// Asks for every type of `name`: one round per (attempt, server), both queries in each,
/// until each has an answer or the tries run out (`None` for a query nobody answered).
async fn query_name(
    sock: &UdpSocket,
    conf: &ResolvConf,
    name: &str,
    id: &mut u16,
) -> io::Result<Vec<Option<Message>>> {
    let queries: Vec<Message> = TYPES
        .iter()
        .map(|&t| {
            *id = id.wrapping_add(1);
            Message::query(*id, Question::new(name, t))
        })
        .collect();
    let mut answers: Vec<Option<Message>> = vec![None; queries.len()];
    let tries = conf.nameservers.len() * conf.attempts as usize;
    let mut buf = vec![0u8; 4096];
    for t in 0..tries {
        let server = SocketAddr::new(conf.nameservers[t % conf.nameservers.len()], 53);
        sock.connect(server).await?;
        for (q, a) in queries.iter().zip(&answers) {
            if a.is_none() {
                let wire =
                    q.to_wire().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                sock.send(&wire).await?;
            }
        }
        let deadline = tokio::time::Instant::now() + conf.timeout;
        while answers.iter().any(Option::is_none) {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_elapsed) => break,
                // ICMP port unreachable: nobody serves DNS there; try the next one now.
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                Ok(Err(e)) => return Err(e),
                Ok(Ok(n)) => n,
            };
            let Ok(msg) = Message::from_wire(&buf[..n]) else { continue };
            let Some(k) = queries.iter().position(|q| {
                msg.flags.response && msg.id == q.id && msg.question() == q.question()
            }) else {
                continue;
            };
            if answers[k].is_some() {
                continue;
            }
            answers[k] = if msg.flags.truncated {
                over_tcp(server, &queries[k], conf.timeout).await
            } else {
                Some(msg)
            };
        }
        if answers.iter().all(Option::is_some) {
            break;
        }
    }
    Ok(answers)
}

/// Asks `query` again over TCP (after a truncated answer); `None` if that fails in time.
async fn over_tcp(
    server: SocketAddr,
    query: &Message,
    limit: std::time::Duration,
) -> Option<Message> {
    let exchange = async {
        let mut s = TcpStream::connect(server).await.ok()?;
        s.write_all(&tcp_frame(&query.to_wire().ok()?)).await.ok()?;
        let mut inbuf = Vec::new();
        let mut chunk = [0u8; 2048];
        loop {
            if let Some(frame) = take_tcp_frame(&mut inbuf) {
                let msg = Message::from_wire(&frame).ok()?;
                return (msg.id == query.id).then_some(msg);
            }
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            inbuf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(limit, exchange).await.ok().flatten()
}
