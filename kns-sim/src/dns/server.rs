//! The CoreDNS-like server: a sans-I/O resolution core ([`DnsCore`]) and the [`DnsServer`] app
//! that speaks DNS over UDP and TCP on a [`SmolStack`](crate::stack::SmolStack).
//!
//! A question goes to the server block with the longest zone containing it, then through the
//! plugins in CoreDNS's fixed order: `cache` (answers stored with their TTL capped, counted
//! down in virtual time), `hosts`, `kubernetes` (the [`ClusterZone`]), `forward` (a UDP query
//! to the upstream, retried on the next upstream after `forward_timeout`, SERVFAIL when all
//! fail). A plugin passes a question on only when it does not hold the name, or its
//! `fallthrough` covers a name it does not have. An answer that ends in a CNAME (an
//! ExternalName Service) is followed through the same chain, so the client gets the alias and
//! the addresses together. Local answers are authoritative (`aa`, no `ra`, as CoreDNS's
//! kubernetes plugin answers); forwarded ones carry the upstream's flags.
//!
//! UDP answers larger than 512 bytes (or the client's EDNS0 size) are cut and flagged `tc`;
//! the client then asks again over TCP, where answers are whole.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kns_core::Cluster;
use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};

use super::corefile::{Corefile, CorefileError, HostsPlugin, Upstream};
use super::message::{
    Message, Question, RData, Rcode, Record, RecordType, UDP_LIMIT, take_tcp_frame, tcp_frame,
};
use super::records::{in_zone, parse_reverse};
use super::zone::ClusterZone;
use crate::stack::{App, AppCx, AppPoll, ListenerId, StackError, TcpHandle, UdpHandle};
use crate::time::Time;

/// How long a chain of CNAMEs the server follows.
const MAX_CHASE: usize = 8;

/// Settings of a [`DnsServer`] beyond its Corefile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsServerConfig {
    /// The port to serve (53); server blocks for other ports are not served.
    pub port: u16,
    /// The upstream a `forward . /etc/resolv.conf` stands for (the node's resolver); `None`
    /// makes such forwards fail with SERVFAIL.
    pub resolv_conf_upstream: Option<SocketAddr>,
    /// How long to wait for an upstream before trying the next one.
    pub forward_timeout: Duration,
    /// Seeds the IDs of upstream queries.
    pub seed: u64,
}

impl DnsServerConfig {
    /// Port 53, no resolv.conf upstream, 2 s forward timeout.
    pub fn new(seed: u64) -> DnsServerConfig {
        DnsServerConfig {
            port: 53,
            resolv_conf_upstream: None,
            forward_timeout: Duration::from_secs(2),
            seed,
        }
    }
}

/// Who asked: a UDP client (with the largest answer it takes) or a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Client {
    /// A UDP client.
    Udp {
        /// Its address.
        addr: SocketAddr,
        /// The largest UDP answer it accepts.
        limit: usize,
    },
    /// A TCP connection, by the app's number for it.
    Tcp(u64),
}

/// Something the core wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// An answer to a client.
    Reply {
        /// The client.
        client: Client,
        /// The answer.
        message: Message,
    },
    /// A query to an upstream.
    Upstream {
        /// The upstream.
        to: SocketAddr,
        /// The query.
        message: Message,
    },
}

/// Which plugin produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// The cache.
    Cache,
    /// The hosts plugin.
    Hosts,
    /// The kubernetes plugin.
    Kubernetes,
    /// An upstream, through forward.
    Forward,
    /// No plugin (REFUSED, SERVFAIL).
    None,
}

/// One answered question, as the server's `log` plugin would print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLogEntry {
    /// When the answer was sent.
    pub at: Time,
    /// Who asked.
    pub client: Client,
    /// The question.
    pub question: Question,
    /// The answer's code.
    pub rcode: Rcode,
    /// How many answer records.
    pub answers: usize,
    /// Where the final part of the answer came from.
    pub source: Source,
}

/// Counters of a [`DnsCore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Questions received over UDP.
    pub udp_queries: u64,
    /// Questions received over TCP.
    pub tcp_queries: u64,
    /// Answers (or parts of answers) served from the cache.
    pub cache_hits: u64,
    /// Queries sent to upstreams (retries included).
    pub upstream_queries: u64,
    /// Upstream queries that timed out.
    pub upstream_timeouts: u64,
    /// UDP answers cut and flagged `tc`.
    pub truncated: u64,
    /// Messages that could not be parsed.
    pub malformed: u64,
}

/// The resolution state machine: questions in, answers and upstream queries out.
#[derive(Debug)]
pub struct DnsCore {
    config: DnsServerConfig,
    corefile: Corefile,
    blocks: Vec<BlockState>,
    pending: BTreeMap<u16, Pending>,
    out: Vec<Transmit>,
    rng: ChaCha8Rng,
    stats: ServerStats,
    log: Vec<ServerLogEntry>,
}

#[derive(Debug)]
struct BlockState {
    zone: Option<ClusterZone>,
    hosts: Option<Hosts>,
    cache: BTreeMap<Question, CacheEntry>,
}

#[derive(Debug, Clone)]
struct CacheEntry {
    stored: Time,
    ttl: u32,
    answer: Answer,
}

/// A (partial) answer and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    rcode: Rcode,
    answers: Vec<Record>,
    authority: Vec<Record>,
    additional: Vec<Record>,
    authoritative: bool,
    recursion_available: bool,
    source: Source,
}

impl Answer {
    fn fail(rcode: Rcode) -> Answer {
        Answer {
            rcode,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            authoritative: false,
            recursion_available: false,
            source: Source::None,
        }
    }
}

enum Step {
    Answer(Answer),
    Forward { block: usize, upstreams: Vec<SocketAddr> },
}

#[derive(Debug)]
struct Pending {
    client: Client,
    query: Message,
    asked: Question,
    block: usize,
    prefix: Vec<Record>,
    upstreams: Vec<SocketAddr>,
    attempt: usize,
    deadline: Time,
}

impl DnsCore {
    /// A core serving `corefile` with the records of `cluster`.
    pub fn new(cluster: &Cluster, corefile: Corefile, config: DnsServerConfig) -> DnsCore {
        let blocks = corefile
            .blocks
            .iter()
            .map(|b| BlockState {
                zone: b.kubernetes.as_ref().map(|k| ClusterZone::build(cluster, k.zone.clone())),
                hosts: b.hosts.as_ref().map(Hosts::new),
                cache: BTreeMap::new(),
            })
            .collect();
        DnsCore {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            corefile,
            blocks,
            pending: BTreeMap::new(),
            out: Vec::new(),
            stats: ServerStats::default(),
            log: Vec::new(),
        }
    }

    /// Follows a change of the cluster (the kubernetes plugin watches the API). Cached
    /// answers stay until their TTL runs out, as in CoreDNS.
    pub fn update(&mut self, cluster: &Cluster) {
        for b in &mut self.blocks {
            if let Some(z) = &mut b.zone {
                z.update(cluster);
            }
        }
    }

    /// Empties every cache.
    pub fn clear_cache(&mut self) {
        for b in &mut self.blocks {
            b.cache.clear();
        }
    }

    /// The Corefile served.
    pub fn corefile(&self) -> &Corefile {
        &self.corefile
    }

    /// The kubernetes zone of the first block that has one.
    pub fn zone(&self) -> Option<&ClusterZone> {
        self.blocks.iter().find_map(|b| b.zone.as_ref())
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Every answer sent, in order.
    pub fn log(&self) -> &[ServerLogEntry] {
        &self.log
    }

    /// A query arrived from `client`.
    pub fn handle_query(&mut self, now: Time, client: Client, query: Message) {
        match client {
            Client::Udp { .. } => self.stats.udp_queries += 1,
            Client::Tcp(_) => self.stats.tcp_queries += 1,
        }
        let Some(q) = query.question().cloned().filter(|_| !query.flags.response) else {
            self.stats.malformed += 1;
            self.reply(now, client, &query, Answer::fail(Rcode::FormErr), Vec::new(), true);
            return;
        };
        self.chase(now, client, query, q, Vec::new(), true);
    }

    /// A message arrived on the upstream socket from `from`.
    pub fn handle_upstream(&mut self, now: Time, from: SocketAddr, message: Message) {
        let Some(p) = self.pending.get(&message.id) else { return };
        let expected = p.upstreams[p.attempt];
        if from != expected || message.question() != Some(&p.asked) || !message.flags.response {
            return;
        }
        let p = self.pending.remove(&message.id).expect("present: looked up above");
        let answer = Answer {
            rcode: message.rcode,
            answers: message.answers,
            authority: message.authority,
            additional: message.additional,
            authoritative: false,
            recursion_available: message.flags.recursion_available,
            source: Source::Forward,
        };
        self.store(now, p.block, &p.asked, &answer);
        self.reply(now, p.client, &p.query, answer, p.prefix, false);
    }

    /// Retries or fails upstream queries whose time is up.
    pub fn handle_timeout(&mut self, now: Time) {
        let due: Vec<u16> =
            self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for id in due {
            let mut p = self.pending.remove(&id).expect("present: collected above");
            self.stats.upstream_timeouts += 1;
            p.attempt += 1;
            if p.attempt < p.upstreams.len() {
                self.send_upstream(now, p);
            } else {
                let (client, query, prefix) = (p.client, p.query, p.prefix);
                self.reply(now, client, &query, Answer::fail(Rcode::ServFail), prefix, false);
            }
        }
    }

    /// The next time [`DnsCore::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.out.is_empty() { None } else { Some(self.out.remove(0)) }
    }

    /// Resolves `q` (the question itself or a CNAME target of it) and answers or forwards.
    fn chase(
        &mut self,
        now: Time,
        client: Client,
        query: Message,
        mut q: Question,
        mut prefix: Vec<Record>,
        mut authoritative: bool,
    ) {
        for _ in 0..=MAX_CHASE {
            match self.resolve(now, &q) {
                Step::Answer(a) => {
                    let target = cname_target(&a, &q);
                    match target {
                        Some(target) if prefix.len() < MAX_CHASE => {
                            authoritative &= a.authoritative;
                            prefix.extend(a.answers);
                            q = Question { name: target, qtype: q.qtype };
                        }
                        _ => {
                            self.reply(now, client, &query, a, prefix, authoritative);
                            return;
                        }
                    }
                }
                Step::Forward { block, upstreams } => {
                    let p = Pending {
                        client,
                        query,
                        asked: q,
                        block,
                        prefix,
                        upstreams,
                        attempt: 0,
                        deadline: now,
                    };
                    self.send_upstream(now, p);
                    return;
                }
            }
        }
        self.reply(now, client, &query, Answer::fail(Rcode::ServFail), prefix, false);
    }

    /// Runs `q` through the plugin chain of its server block.
    fn resolve(&mut self, now: Time, q: &Question) -> Step {
        let Some(bi) = self.block_index(&q.name) else {
            return Step::Answer(Answer::fail(Rcode::Refused));
        };
        let block = &self.corefile.blocks[bi];
        if block.cache.is_some()
            && let Some(hit) = cache_lookup(&mut self.blocks[bi], now, q)
        {
            self.stats.cache_hits += 1;
            return Step::Answer(hit);
        }
        let state = &self.blocks[bi];
        let mut found: Option<Answer> = None;
        if let (Some(plugin), Some(hosts)) = (&block.hosts, &state.hosts) {
            match hosts.answer(q) {
                HostsResult::NotMine => {}
                HostsResult::Found(answers) => {
                    found = Some(Answer {
                        rcode: Rcode::NoError,
                        answers,
                        authority: Vec::new(),
                        additional: Vec::new(),
                        authoritative: true,
                        recursion_available: false,
                        source: Source::Hosts,
                    })
                }
                HostsResult::Missing if !falls_through(&plugin.fallthrough, &q.name) => {
                    found = Some(Answer {
                        authoritative: true,
                        source: Source::Hosts,
                        ..Answer::fail(Rcode::NxDomain)
                    })
                }
                HostsResult::Missing => {}
            }
        }
        if found.is_none()
            && let (Some(plugin), Some(zone)) = (&block.kubernetes, &state.zone)
            && let Some(a) = zone.answer(q)
            && !(a.rcode == Rcode::NxDomain && falls_through(&plugin.fallthrough, &q.name))
        {
            found = Some(Answer {
                rcode: a.rcode,
                answers: a.answers,
                authority: a.authority,
                additional: a.additional,
                authoritative: true,
                recursion_available: false,
                source: Source::Kubernetes,
            });
        }
        if let Some(a) = found {
            self.store(now, bi, q, &a);
            return Step::Answer(a);
        }
        if let Some(fwd) = &block.forward
            && in_zone(&q.name, &fwd.from)
        {
            let upstreams: Vec<SocketAddr> = fwd
                .to
                .iter()
                .filter_map(|u| match u {
                    Upstream::Addr(a) => Some(*a),
                    Upstream::ResolvConf(_) => self.config.resolv_conf_upstream,
                })
                .collect();
            if upstreams.is_empty() {
                return Step::Answer(Answer::fail(Rcode::ServFail));
            }
            return Step::Forward { block: bi, upstreams };
        }
        // CoreDNS: "no next plugin found".
        Step::Answer(Answer::fail(Rcode::ServFail))
    }

    fn block_index(&self, name: &str) -> Option<usize> {
        self.corefile
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.port == self.config.port)
            .filter_map(|(i, b)| {
                let best = b.zones.iter().filter(|z| in_zone(name, z)).map(String::len).max()?;
                Some((best, std::cmp::Reverse(i)))
            })
            .max()
            .map(|(_, std::cmp::Reverse(i))| i)
    }

    /// Puts `a` into block `bi`'s cache for `q`, if it has one and the answer may be kept.
    fn store(&mut self, now: Time, bi: usize, q: &Question, a: &Answer) {
        let Some(cache) = &self.corefile.blocks[bi].cache else { return };
        if a.source == Source::Cache || !matches!(a.rcode, Rcode::NoError | Rcode::NxDomain) {
            return;
        }
        let negative = a.answers.is_empty();
        let disabled = if negative { &cache.disable_denial } else { &cache.disable_success };
        if disabled.iter().any(|z| in_zone(&q.name, z)) {
            return;
        }
        let ttl = if negative {
            a.authority.iter().find_map(|r| match &r.data {
                RData::Soa(s) => Some(r.ttl.min(s.minimum)),
                _ => None,
            })
        } else {
            a.answers.iter().map(|r| r.ttl).min()
        };
        let Some(ttl) = ttl.map(|t| t.min(cache.max_ttl)).filter(|&t| t > 0) else { return };
        self.blocks[bi].cache.insert(q.clone(), CacheEntry { stored: now, ttl, answer: a.clone() });
    }

    fn send_upstream(&mut self, now: Time, mut p: Pending) {
        let id = loop {
            let id = (self.rng.next_u32() & 0xffff) as u16;
            if !self.pending.contains_key(&id) {
                break id;
            }
        };
        let mut message = Message::query(id, p.asked.clone());
        message.flags.recursion_desired = true;
        p.deadline = now + self.config.forward_timeout;
        self.out.push(Transmit::Upstream { to: p.upstreams[p.attempt], message });
        self.stats.upstream_queries += 1;
        self.pending.insert(id, p);
    }

    fn reply(
        &mut self,
        now: Time,
        client: Client,
        query: &Message,
        a: Answer,
        mut prefix: Vec<Record>,
        prefix_authoritative: bool,
    ) {
        let mut m = Message::response_to(query);
        m.rcode = a.rcode;
        m.flags.authoritative =
            a.authoritative && prefix_authoritative && a.rcode != Rcode::ServFail;
        m.flags.recursion_available = a.recursion_available;
        let answers = a.answers.len() + prefix.len();
        prefix.extend(a.answers);
        m.answers = prefix;
        m.authority = a.authority;
        m.additional = a.additional;
        if let Some(q) = m.question().cloned() {
            self.log.push(ServerLogEntry {
                at: now,
                client,
                question: q,
                rcode: m.rcode,
                answers,
                source: a.source,
            });
        }
        self.out.push(Transmit::Reply { client, message: m });
    }
}

/// The target to follow when `a` answers `q` with an alias only.
fn cname_target(a: &Answer, q: &Question) -> Option<String> {
    if a.rcode != Rcode::NoError || matches!(q.qtype, RecordType::Cname | RecordType::Other(255)) {
        return None;
    }
    let last = a.answers.last()?;
    let RData::Cname(target) = &last.data else { return None };
    let resolved = a.answers.iter().any(|r| r.name == *target && r.data.record_type() == q.qtype);
    (!resolved).then(|| target.clone())
}

fn falls_through(fallthrough: &Option<Vec<String>>, name: &str) -> bool {
    match fallthrough {
        None => false,
        Some(zones) => zones.is_empty() || zones.iter().any(|z| in_zone(name, z)),
    }
}

fn cache_lookup(state: &mut BlockState, now: Time, q: &Question) -> Option<Answer> {
    let entry = state.cache.get(q)?;
    let elapsed = now.saturating_since(entry.stored).as_secs();
    let remaining = u64::from(entry.ttl).saturating_sub(elapsed);
    if remaining == 0 {
        state.cache.remove(q);
        return None;
    }
    let remaining = u32::try_from(remaining).unwrap_or(u32::MAX);
    let mut a = entry.answer.clone();
    for r in a.answers.iter_mut().chain(a.authority.iter_mut()).chain(a.additional.iter_mut()) {
        r.ttl = remaining;
    }
    a.source = Source::Cache;
    Some(a)
}

/// The hosts plugin's table.
#[derive(Debug)]
struct Hosts {
    zones: Vec<String>,
    ttl: u32,
    by_name: BTreeMap<String, Vec<IpAddr>>,
    by_ip: BTreeMap<IpAddr, Vec<String>>,
}

enum HostsResult {
    NotMine,
    Found(Vec<Record>),
    Missing,
}

impl Hosts {
    fn new(p: &HostsPlugin) -> Hosts {
        let mut h = Hosts {
            zones: p.zones.clone(),
            ttl: p.ttl,
            by_name: BTreeMap::new(),
            by_ip: BTreeMap::new(),
        };
        for (ip, names) in &p.entries {
            for n in names {
                let list = h.by_name.entry(n.clone()).or_default();
                if !list.contains(ip) {
                    list.push(*ip);
                }
                if p.reverse {
                    h.by_ip.entry(*ip).or_default().push(n.clone());
                }
            }
        }
        h
    }

    fn answer(&self, q: &Question) -> HostsResult {
        if let Some(ip) = parse_reverse(&q.name)
            && let Some(names) = self.by_ip.get(&ip)
        {
            if q.qtype != RecordType::Ptr {
                return HostsResult::Found(Vec::new());
            }
            return HostsResult::Found(
                names
                    .iter()
                    .map(|n| Record::new(&q.name, self.ttl, RData::Ptr(n.clone())))
                    .collect(),
            );
        }
        if !self.zones.iter().any(|z| in_zone(&q.name, z)) {
            return HostsResult::NotMine;
        }
        match self.by_name.get(&q.name) {
            None => HostsResult::Missing,
            Some(ips) => HostsResult::Found(
                ips.iter()
                    .map(|ip| Record::new(&q.name, self.ttl, RData::for_address(*ip)))
                    .filter(|r| r.data.record_type() == q.qtype)
                    .collect(),
            ),
        }
    }
}

/// One TCP connection of the server.
#[derive(Debug)]
struct Conn {
    handle: TcpHandle,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
}

/// The DNS server app: UDP and TCP on the configured port, a UDP socket towards upstreams.
#[derive(Debug)]
pub struct DnsServer {
    core: DnsCore,
    udp: Option<UdpHandle>,
    upstream: Option<UdpHandle>,
    listener: Option<ListenerId>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    error: Option<StackError>,
}

impl DnsServer {
    /// A server for `cluster` configured by its Corefile ([`Corefile::for_cluster`]).
    pub fn new(cluster: &Cluster, config: DnsServerConfig) -> Result<DnsServer, CorefileError> {
        Ok(DnsServer::with_corefile(cluster, Corefile::for_cluster(cluster)?, config))
    }

    /// A server for `cluster` with an explicit Corefile.
    pub fn with_corefile(
        cluster: &Cluster,
        corefile: Corefile,
        config: DnsServerConfig,
    ) -> DnsServer {
        DnsServer {
            core: DnsCore::new(cluster, corefile, config),
            udp: None,
            upstream: None,
            listener: None,
            conns: BTreeMap::new(),
            next_conn: 0,
            error: None,
        }
    }

    /// Follows a change of the cluster.
    pub fn update(&mut self, cluster: &Cluster) {
        self.core.update(cluster);
    }

    /// The resolution core (stats, log, zone, cache control).
    pub fn core(&self) -> &DnsCore {
        &self.core
    }

    /// The resolution core, mutably.
    pub fn core_mut(&mut self) -> &mut DnsCore {
        &mut self.core
    }

    /// Why the server could not open its sockets, if it could not.
    pub fn error(&self) -> Option<&StackError> {
        self.error.as_ref()
    }

    fn open(&mut self, cx: &mut AppCx<'_>) -> Result<(), StackError> {
        let port = self.core.config.port;
        if self.udp.is_none() {
            self.udp = Some(cx.udp_bind(port)?);
        }
        if self.listener.is_none() {
            self.listener = Some(cx.tcp_listen(port, super::super::stack::apps::DEFAULT_BACKLOG)?);
        }
        if self.upstream.is_none() {
            self.upstream = Some(cx.udp_bind(0)?);
        }
        Ok(())
    }
}

impl App for DnsServer {
    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.error.is_some() {
            return AppPoll::Done;
        }
        if let Err(e) = self.open(cx) {
            self.error = Some(e);
            return AppPoll::Done;
        }
        let (Some(udp), Some(upstream), Some(listener)) = (self.udp, self.upstream, self.listener)
        else {
            return AppPoll::Done;
        };
        while let Some((data, from)) = cx.udp_recv(udp) {
            match Message::from_wire(&data) {
                Ok(q) => {
                    let limit = usize::from(q.edns_udp_size.unwrap_or(0)).clamp(UDP_LIMIT, 4096);
                    self.core.handle_query(now, Client::Udp { addr: from, limit }, q);
                }
                Err(_) => self.core.stats.malformed += 1,
            }
        }
        while let Some(h) = cx.tcp_accept(listener) {
            self.conns
                .insert(self.next_conn, Conn { handle: h, inbuf: Vec::new(), outbuf: Vec::new() });
            self.next_conn += 1;
        }
        for (&id, conn) in &mut self.conns {
            let _ = cx.tcp_recv(conn.handle, &mut conn.inbuf);
            while let Some(frame) = take_tcp_frame(&mut conn.inbuf) {
                match Message::from_wire(&frame) {
                    Ok(q) => self.core.handle_query(now, Client::Tcp(id), q),
                    Err(_) => self.core.stats.malformed += 1,
                }
            }
        }
        while let Some((data, from)) = cx.udp_recv(upstream) {
            if let Ok(m) = Message::from_wire(&data) {
                self.core.handle_upstream(now, from, m);
            }
        }
        self.core.handle_timeout(now);
        while let Some(t) = self.core.poll_transmit() {
            match t {
                Transmit::Reply { client: Client::Udp { addr, limit }, message } => {
                    if let Ok(bytes) = message.to_wire_limited(limit) {
                        // The TC bit (byte 2, 0x02) set by the cut rather than by an upstream.
                        if bytes[2] & 0x02 != 0 && !message.flags.truncated {
                            self.core.stats.truncated += 1;
                        }
                        let _ = cx.udp_send(udp, addr, &bytes);
                    }
                }
                Transmit::Reply { client: Client::Tcp(id), message } => {
                    if let (Some(conn), Ok(bytes)) = (self.conns.get_mut(&id), message.to_wire()) {
                        conn.outbuf.extend_from_slice(&tcp_frame(&bytes));
                    }
                }
                Transmit::Upstream { to, message } => {
                    if let Ok(bytes) = message.to_wire() {
                        let _ = cx.udp_send(upstream, to, &bytes);
                    }
                }
            }
        }
        let mut finished = Vec::new();
        for (&id, conn) in &mut self.conns {
            if !conn.outbuf.is_empty() {
                let sent = cx.tcp_send(conn.handle, &conn.outbuf).unwrap_or(0);
                conn.outbuf.drain(..sent);
            }
            let open = cx.tcp(conn.handle).is_some_and(|s| s.may_recv());
            if !open && conn.outbuf.is_empty() {
                cx.tcp_release(conn.handle);
                finished.push(id);
            }
        }
        for id in finished {
            self.conns.remove(&id);
        }
        match self.core.poll_timeout() {
            Some(t) => AppPoll::WakeAt(t),
            None => AppPoll::Idle,
        }
    }

    fn stop(&mut self, _now: Time, cx: &mut AppCx<'_>) {
        for (_, conn) in std::mem::take(&mut self.conns) {
            cx.tcp_abort(conn.handle);
        }
        if let Some(l) = self.listener.take() {
            cx.tcp_unlisten(l);
        }
        for h in [self.udp.take(), self.upstream.take()].into_iter().flatten() {
            cx.remove(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::testing::sample_cluster;

    const UP: &str = "203.0.113.53:53";

    fn core(corefile: &str) -> DnsCore {
        let mut config = DnsServerConfig::new(7);
        config.resolv_conf_upstream = Some(UP.parse().unwrap());
        DnsCore::new(&sample_cluster(), Corefile::parse(corefile).unwrap(), config)
    }

    fn client() -> Client {
        Client::Udp { addr: "10.244.1.5:40000".parse().unwrap(), limit: 512 }
    }

    fn ask(c: &mut DnsCore, now: Time, name: &str, t: RecordType) -> Vec<Transmit> {
        c.handle_query(now, client(), Message::query(1, Question::new(name, t)));
        std::iter::from_fn(|| c.poll_transmit()).collect()
    }

    fn reply(t: &[Transmit]) -> &Message {
        match t {
            [Transmit::Reply { message, .. }] => message,
            other => panic!("expected one reply, got {other:?}"),
        }
    }

    fn upstream_answer(query: &Message, records: Vec<Record>) -> Message {
        let mut m = Message::response_to(query);
        m.flags.recursion_available = true;
        m.answers = records;
        m
    }

    #[test]
    fn kubernetes_answers_are_authoritative_and_cached() {
        let mut c = core(&Corefile::kubeadm_text("cluster.local"));
        let m =
            reply(&ask(&mut c, Time::ZERO, "web.prod.svc.cluster.local", RecordType::A)).clone();
        assert!(m.flags.authoritative && !m.flags.recursion_available);
        assert_eq!(m.addresses(), ["10.96.0.20".parse::<IpAddr>().unwrap()]);
        let again =
            reply(&ask(&mut c, Time::from_secs(10), "web.prod.svc.cluster.local", RecordType::A))
                .clone();
        assert_eq!(again.answers[0].ttl, 20, "30 s TTL, 10 s later");
        assert_eq!(c.stats().cache_hits, 1);
        let expired = ask(&mut c, Time::from_secs(31), "web.prod.svc.cluster.local", RecordType::A);
        assert_eq!(reply(&expired).answers[0].ttl, 30);
        assert_eq!(c.stats().cache_hits, 1);
        assert_eq!(c.log().len(), 3);
        assert_eq!(c.log()[1].source, Source::Cache);
    }

    #[test]
    fn unknown_names_are_forwarded_retried_and_cached() {
        let corefile = ".:53 {\n kubernetes cluster.local\n forward . 192.0.2.1 /etc/resolv.conf\n cache 30\n}\n";
        let mut c = core(corefile);
        let out = ask(&mut c, Time::ZERO, "example.com", RecordType::A);
        let [Transmit::Upstream { to, message: q1 }] = &out[..] else { panic!("{out:?}") };
        assert_eq!(to.to_string(), "192.0.2.1:53");
        assert_eq!(c.poll_timeout(), Some(Time::from_secs(2)));
        c.handle_timeout(Time::from_secs(2));
        let out: Vec<Transmit> = std::iter::from_fn(|| c.poll_transmit()).collect();
        let [Transmit::Upstream { to, message: q2 }] = &out[..] else { panic!("{out:?}") };
        assert_eq!(to.to_string(), UP, "resolv.conf stands for the configured upstream");
        assert_ne!(q1.id, q2.id);
        // A late answer from the first upstream is ignored; the second's is relayed.
        let rec = Record::new("example.com", 300, RData::A([203, 0, 113, 10].into()));
        c.handle_upstream(
            Time::from_secs(2),
            "192.0.2.1:53".parse().unwrap(),
            upstream_answer(q1, vec![rec.clone()]),
        );
        assert!(c.poll_transmit().is_none());
        c.handle_upstream(Time::from_secs(2), UP.parse().unwrap(), upstream_answer(q2, vec![rec]));
        let m = reply(&std::iter::from_fn(|| c.poll_transmit()).collect::<Vec<_>>()).clone();
        assert_eq!((m.id, m.flags.authoritative, m.flags.recursion_available), (1, false, true));
        assert_eq!(m.addresses(), ["203.0.113.10".parse::<IpAddr>().unwrap()]);
        // The cache caps the 300 s TTL at 30 s.
        let hit = reply(&ask(&mut c, Time::from_secs(3), "example.com", RecordType::A)).clone();
        assert_eq!(hit.answers[0].ttl, 29);
        assert_eq!(c.stats().upstream_queries, 2);
        assert_eq!(c.stats().upstream_timeouts, 1);
    }

    #[test]
    fn all_upstreams_silent_is_servfail() {
        let mut c = core(".:53 {\n forward . 192.0.2.1\n}\n");
        let _ = ask(&mut c, Time::ZERO, "example.com", RecordType::A);
        c.handle_timeout(Time::from_secs(2));
        let out: Vec<Transmit> = std::iter::from_fn(|| c.poll_transmit()).collect();
        assert_eq!(reply(&out).rcode, Rcode::ServFail);
        let mut none = DnsCore::new(
            &sample_cluster(),
            Corefile::parse(".:53 {\n forward . /etc/resolv.conf\n}\n").unwrap(),
            DnsServerConfig::new(1),
        );
        assert_eq!(
            reply(&ask(&mut none, Time::ZERO, "example.com", RecordType::A)).rcode,
            Rcode::ServFail
        );
    }

    #[test]
    fn external_names_are_chased_through_the_upstream() {
        let mut c = core(&Corefile::kubeadm_text("cluster.local"));
        let out = ask(&mut c, Time::ZERO, "ext.prod.svc.cluster.local", RecordType::A);
        let [Transmit::Upstream { message: q, .. }] = &out[..] else { panic!("{out:?}") };
        assert_eq!(q.questions[0].name, "www.example.com");
        let rec = Record::new("www.example.com", 60, RData::A([203, 0, 113, 10].into()));
        c.handle_upstream(Time::ZERO, UP.parse().unwrap(), upstream_answer(q, vec![rec]));
        let m = reply(&std::iter::from_fn(|| c.poll_transmit()).collect::<Vec<_>>()).clone();
        let text: Vec<String> = m.answers.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "ext.prod.svc.cluster.local.\t30\tIN\tCNAME\twww.example.com.",
                "www.example.com.\t60\tIN\tA\t203.0.113.10"
            ]
        );
        // Asking for the CNAME itself does not chase.
        let cname = ask(&mut c, Time::ZERO, "ext.prod.svc.cluster.local", RecordType::Cname);
        assert_eq!(reply(&cname).answers.len(), 1);
    }

    #[test]
    fn hosts_entries_answer_first_and_fall_through() {
        let corefile = ".:53 {\n hosts {\n  10.0.0.1 legacy.corp\n  fallthrough\n }\n kubernetes cluster.local in-addr.arpa\n}\n";
        let mut c = core(corefile);
        let m = reply(&ask(&mut c, Time::ZERO, "legacy.corp", RecordType::A)).clone();
        assert_eq!((m.rcode, m.answers[0].ttl), (Rcode::NoError, 3600));
        let ptr = reply(&ask(&mut c, Time::ZERO, "1.0.0.10.in-addr.arpa", RecordType::Ptr)).clone();
        assert_eq!(ptr.answers[0].data, RData::Ptr("legacy.corp".into()));
        let nodata = reply(&ask(&mut c, Time::ZERO, "legacy.corp", RecordType::Aaaa)).clone();
        assert_eq!((nodata.rcode, nodata.answers.len()), (Rcode::NoError, 0));
        let k8s =
            reply(&ask(&mut c, Time::ZERO, "web.prod.svc.cluster.local", RecordType::A)).clone();
        assert_eq!(k8s.addresses().len(), 1, "fell through to kubernetes");
        // Nothing after kubernetes for an outside name: SERVFAIL, as CoreDNS's "no next plugin".
        assert_eq!(
            reply(&ask(&mut c, Time::ZERO, "example.com", RecordType::A)).rcode,
            Rcode::ServFail
        );
        let mut strict =
            core(".:53 {\n hosts {\n  10.0.0.1 legacy.corp\n }\n kubernetes cluster.local\n}\n");
        let nx = reply(&ask(&mut strict, Time::ZERO, "web.prod.svc.cluster.local", RecordType::A))
            .clone();
        assert_eq!(nx.rcode, Rcode::NxDomain, "without fallthrough hosts owns every name");
    }

    #[test]
    fn reverse_fallthrough_and_refused_zones() {
        let mut c = core(&Corefile::kubeadm_text("cluster.local"));
        let out = ask(&mut c, Time::ZERO, "4.3.2.1.in-addr.arpa", RecordType::Ptr);
        assert!(
            matches!(&out[..], [Transmit::Upstream { .. }]),
            "unknown PTR falls through to forward"
        );
        let nx = ask(&mut c, Time::ZERO, "nope.prod.svc.cluster.local", RecordType::A);
        assert_eq!(reply(&nx).rcode, Rcode::NxDomain);
        assert_eq!(reply(&nx).authority.len(), 1);
        let mut only = core("corp.example:53 {\n hosts {\n  10.0.0.2 a.corp.example\n }\n}\n");
        assert_eq!(
            reply(&ask(&mut only, Time::ZERO, "example.com", RecordType::A)).rcode,
            Rcode::Refused
        );
    }
}
