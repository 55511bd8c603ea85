//! The client side: a pod's `resolv.conf`, the glibc search walk, and the [`Lookup`] and
//! [`Dig`] apps that send real queries from a pod's stack.
//!
//! [`SearchWalk`] is glibc's `res_nsearch` as a state machine: a name with a trailing dot is
//! tried alone; a name with at least `ndots` dots is tried as is first, then with each search
//! domain; any other name is tried with each search domain first and as is last. The walk stops
//! at the first answer. NXDOMAIN and NODATA move on (NODATA is remembered), SERVFAIL moves on
//! (remembered), a timeout or any other error (REFUSED, FORMERR) ends the walk. When nothing
//! answered, the error is the first as-is attempt's (if the name was tried as is first), else
//! NODATA if any name had no data, else TRY_AGAIN if any server failed, else the last error.
//!
//! Each query goes over UDP to each nameserver in turn, `attempts` rounds, waiting `timeout`
//! per try (glibc shortens the wait for the second and later servers; kns does not). An ICMP
//! port unreachable (`ECONNREFUSED`) ends a try at once; other ICMP errors are not read, so an
//! unreachable server costs its timeout. A truncated answer is asked again over TCP. Asking for both families sends A and AAAA together for each name, as
//! `getaddrinfo` does; the name answers when either has addresses.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kns_core::Cluster;
use kns_core::model::PodId;

use super::message::{
    Message, Question, Rcode, Record, RecordType, normalize, take_tcp_frame, tcp_frame,
};
use super::records::join;
use crate::stack::apps::{ConnStatus, TcpConn};
use crate::stack::{App, AppCx, AppPoll, IcmpHandle, StackError, UdpHandle};
use crate::time::Time;

/// A pod's `/etc/resolv.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines (glibc reads at most 3).
    pub nameservers: Vec<IpAddr>,
    /// The `search` list, normalised.
    pub search: Vec<String>,
    /// `options ndots:N` (glibc's default is 1; kubelet writes 5).
    pub ndots: u8,
    /// `options timeout:N` (5 s by default).
    pub timeout: Duration,
    /// `options attempts:N` (2 by default).
    pub attempts: u32,
}

/// Why a resolv.conf text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resolv.conf:{line}: {message}")]
pub struct ResolvConfError {
    /// The line (1-based).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl ResolvConf {
    /// What kubelet writes for a `dnsPolicy: ClusterFirst` pod of `namespace`: the cluster
    /// DNS Service address, `search <ns>.svc.<domain> svc.<domain> <domain>`, `ndots:5`.
    pub fn cluster_first(nameserver: IpAddr, namespace: &str, domain: &str) -> ResolvConf {
        let domain = normalize(domain);
        let svc = join("svc", &domain);
        ResolvConf {
            nameservers: vec![nameserver],
            search: vec![join(namespace, &svc), svc, domain],
            ndots: 5,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }

    /// The resolv.conf of pod `pod` of `cluster` with the cluster DNS at `nameserver`.
    ///
    /// kns models no `dnsPolicy`: every pod gets ClusterFirst. (Kubernetes gives a
    /// `hostNetwork` pod its node's resolv.conf unless it asks for ClusterFirstWithHostNet.)
    pub fn for_pod(cluster: &Cluster, pod: PodId, nameserver: IpAddr) -> ResolvConf {
        let ns = &cluster.namespace(cluster.pod(pod).namespace).name;
        ResolvConf::cluster_first(nameserver, ns, &cluster.config.domain)
    }

    /// The file text, as kubelet writes it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.search.is_empty() {
            out.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        let mut options = Vec::new();
        if self.ndots != 1 {
            options.push(format!("ndots:{}", self.ndots));
        }
        if self.timeout != Duration::from_secs(5) {
            options.push(format!("timeout:{}", self.timeout.as_secs()));
        }
        if self.attempts != 2 {
            options.push(format!("attempts:{}", self.attempts));
        }
        if !options.is_empty() {
            out.push_str(&format!("options {}\n", options.join(" ")));
        }
        out
    }

    /// Parses resolv.conf text (`nameserver`, `search`, `domain`, `options ndots/timeout/
    /// attempts`; other options are accepted and ignored, as glibc does).
    pub fn parse(text: &str) -> Result<ResolvConf, ResolvConfError> {
        let mut rc = ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        };
        for (i, line) in text.lines().enumerate() {
            let err = |message: String| ResolvConfError { line: i + 1, message };
            let mut words = line.split_whitespace();
            match words.next() {
                None => {}
                Some(w) if w.starts_with('#') || w.starts_with(';') => {}
                Some("nameserver") => {
                    let addr = words.next().unwrap_or_default();
                    let ip =
                        addr.parse().map_err(|_| err(format!("invalid nameserver `{addr}`")))?;
                    if rc.nameservers.len() < 3 {
                        rc.nameservers.push(ip);
                    }
                }
                Some("search") => rc.search = words.map(normalize).collect(),
                Some("domain") => rc.search = words.take(1).map(normalize).collect(),
                Some("options") => {
                    for opt in words {
                        let (key, value) = opt.split_once(':').unwrap_or((opt, ""));
                        let number = || -> Result<u32, ResolvConfError> {
                            value.parse().map_err(|_| err(format!("invalid option `{opt}`")))
                        };
                        match key {
                            "ndots" => rc.ndots = u8::try_from(number()?.min(15)).unwrap_or(15),
                            "timeout" => {
                                rc.timeout = Duration::from_secs(u64::from(number()?.clamp(1, 30)))
                            }
                            "attempts" => rc.attempts = number()?.clamp(1, 5),
                            _ => {}
                        }
                    }
                }
                Some(other) => return Err(err(format!("unknown keyword `{other}`"))),
            }
        }
        Ok(rc)
    }

    /// The names glibc would try for `name`, in order, if every attempt failed with NXDOMAIN.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        let absolute = name.ends_with('.');
        let name = normalize(name);
        if absolute {
            return vec![name];
        }
        let dots = name.matches('.').count();
        let searched = self.search.iter().map(|s| join(&name, s));
        if dots >= usize::from(self.ndots) {
            std::iter::once(name.clone()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.clone())).collect()
        }
    }
}

/// How one name of the walk fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameOutcome {
    /// Addresses (or records of the asked type) came back.
    Answer,
    /// NXDOMAIN.
    NxDomain,
    /// NOERROR without records of the type.
    NoData,
    /// SERVFAIL.
    ServFail,
    /// No server answered.
    Timeout,
    /// REFUSED, FORMERR, NOTIMP or another code: glibc gives up.
    OtherError,
}

/// Why a lookup failed, as `h_errno` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupError {
    /// `HOST_NOT_FOUND`: NXDOMAIN.
    HostNotFound,
    /// `NO_DATA`: the name exists without records of the type.
    NoData,
    /// `TRY_AGAIN`: SERVFAIL or no answer.
    TryAgain,
    /// `NO_RECOVERY`: REFUSED, FORMERR, ...
    NoRecovery,
}

impl fmt::Display for LookupError {
    /// The text `getent hosts`/`ping` print for the error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LookupError::HostNotFound => "Name or service not known",
            LookupError::NoData => "No address associated with hostname",
            LookupError::TryAgain => "Temporary failure in name resolution",
            LookupError::NoRecovery => "Non-recoverable failure in name resolution",
        })
    }
}

fn error_of(outcome: NameOutcome) -> LookupError {
    match outcome {
        NameOutcome::NxDomain => LookupError::HostNotFound,
        NameOutcome::NoData => LookupError::NoData,
        NameOutcome::ServFail | NameOutcome::Timeout | NameOutcome::Answer => LookupError::TryAgain,
        NameOutcome::OtherError => LookupError::NoRecovery,
    }
}

/// glibc's search walk over the candidate names of one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchWalk {
    candidates: Vec<String>,
    /// Whether `candidates[0]` is the as-is attempt made first (a name with ≥ ndots dots).
    as_is_first: bool,
    next: usize,
    saved: Option<LookupError>,
    got_nodata: bool,
    got_servfail: bool,
    last: Option<LookupError>,
}

/// What the walk says after a name's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkStep {
    /// Try this name next.
    Try(String),
    /// The walk is over: the name that answered, or the error.
    Done(Result<String, LookupError>),
}

impl SearchWalk {
    /// The walk for `name` under `conf`.
    pub fn new(conf: &ResolvConf, name: &str) -> SearchWalk {
        let dots = normalize(name).matches('.').count();
        SearchWalk {
            candidates: conf.candidates(name),
            as_is_first: !name.ends_with('.') && dots >= usize::from(conf.ndots),
            next: 0,
            saved: None,
            got_nodata: false,
            got_servfail: false,
            last: None,
        }
    }

    /// The first name to try.
    pub fn start(&mut self) -> WalkStep {
        self.advance()
    }

    /// Reports how the last name fared; says what to do next.
    pub fn report(&mut self, outcome: NameOutcome) -> WalkStep {
        let tried = self.next - 1;
        if outcome == NameOutcome::Answer {
            return WalkStep::Done(Ok(self.candidates[tried].clone()));
        }
        let error = error_of(outcome);
        self.last = Some(error);
        if tried == 0 && self.as_is_first {
            self.saved = Some(error);
        }
        match outcome {
            NameOutcome::NoData => self.got_nodata = true,
            NameOutcome::ServFail => self.got_servfail = true,
            NameOutcome::NxDomain => {}
            _ => return WalkStep::Done(Err(self.final_error())),
        }
        self.advance()
    }

    fn advance(&mut self) -> WalkStep {
        match self.candidates.get(self.next) {
            Some(name) => {
                self.next += 1;
                WalkStep::Try(name.clone())
            }
            None => WalkStep::Done(Err(self.final_error())),
        }
    }

    fn final_error(&self) -> LookupError {
        if let Some(e) = self.saved {
            e
        } else if self.got_nodata {
            LookupError::NoData
        } else if self.got_servfail {
            LookupError::TryAgain
        } else {
            self.last.unwrap_or(LookupError::HostNotFound)
        }
    }
}

/// The transport of one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnsTransport {
    /// UDP.
    Udp,
    /// TCP (after a truncated UDP answer, or asked for).
    Tcp,
}

impl fmt::Display for DnsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DnsTransport::Udp => "UDP",
            DnsTransport::Tcp => "TCP",
        })
    }
}

/// One query sent and what came back: the DNS part of `kns probe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRecord {
    /// When it was sent.
    pub sent_at: Time,
    /// The server asked.
    pub server: SocketAddr,
    /// UDP or TCP.
    pub transport: DnsTransport,
    /// The query.
    pub query: Message,
    /// The answer and when it came, or `None` if none came in time (or the TCP connection
    /// failed).
    pub response: Option<(Time, Message)>,
    /// The size of the answer in bytes.
    pub response_size: usize,
    /// The server's host answered ICMP port unreachable (`ECONNREFUSED`): the next try
    /// starts at once.
    pub refused: bool,
}

/// One query in flight, over UDP with retries, then TCP if the answer was truncated.
#[derive(Debug)]
struct Exchange {
    question: Question,
    id: u16,
    /// The UDP socket queries leave from.
    udp: UdpHandle,
    /// The EDNS0 size advertised, if any.
    edns: Option<u16>,
    servers: Vec<SocketAddr>,
    timeout: Duration,
    /// Tries left in the schedule: `attempts` rounds over the servers.
    tries: usize,
    try_index: usize,
    tcp_only: bool,
    state: ExState,
    deadline: Time,
    /// Index into the query log of the try in flight.
    record: usize,
    result: Option<Option<Message>>,
}

#[derive(Debug)]
enum ExState {
    Idle,
    Udp,
    Tcp { conn: TcpConn, sent: bool, inbuf: Vec<u8> },
}

impl Exchange {
    fn server(&self) -> SocketAddr {
        self.servers[self.try_index % self.servers.len()]
    }

    fn query(&self) -> Message {
        let mut q = Message::query(self.id, self.question.clone());
        q.edns_udp_size = self.edns;
        q
    }

    /// Starts the next try (UDP, or TCP when `tcp`), or finishes without an answer.
    fn next_try(&mut self, now: Time, cx: &mut AppCx<'_>, tcp: bool, log: &mut Vec<QueryRecord>) {
        if self.try_index >= self.tries {
            self.result = Some(None);
            return;
        }
        let server = self.server();
        let query = self.query();
        let transport = if tcp { DnsTransport::Tcp } else { DnsTransport::Udp };
        self.record = log.len();
        log.push(QueryRecord {
            sent_at: now,
            server,
            transport,
            query: query.clone(),
            response: None,
            response_size: 0,
            refused: false,
        });
        self.deadline = now + self.timeout;
        if tcp {
            self.state = ExState::Tcp {
                conn: TcpConn::new(server, self.timeout),
                sent: false,
                inbuf: Vec::new(),
            };
            self.poll_tcp(now, cx, log);
        } else {
            self.state = ExState::Udp;
            if let Ok(bytes) = query.to_wire() {
                let _ = cx.udp_send(self.udp, server, &bytes);
            }
        }
    }

    fn start(&mut self, now: Time, cx: &mut AppCx<'_>, log: &mut Vec<QueryRecord>) {
        let tcp = self.tcp_only;
        self.next_try(now, cx, tcp, log);
    }

    /// A UDP answer arrived for this exchange.
    fn on_udp(
        &mut self,
        now: Time,
        cx: &mut AppCx<'_>,
        msg: Message,
        size: usize,
        log: &mut Vec<QueryRecord>,
    ) {
        let truncated = msg.flags.truncated;
        log[self.record].response = Some((now, msg.clone()));
        log[self.record].response_size = size;
        if truncated {
            // Ask the same server again over TCP, without using up a try.
            self.next_try(now, cx, true, log);
        } else {
            self.result = Some(Some(msg));
        }
    }

    /// ICMP port unreachable came back for this exchange's UDP try.
    fn on_refused(&mut self, now: Time, cx: &mut AppCx<'_>, log: &mut Vec<QueryRecord>) {
        log[self.record].refused = true;
        self.state = ExState::Idle;
        self.try_index += 1;
        self.next_try(now, cx, false, log);
    }

    /// Whether an ICMP error about a datagram from local port `port` to `dst` is about this
    /// exchange's UDP try in flight.
    fn refused_by(&self, port: u16, dst: SocketAddr, local_port: Option<u16>) -> bool {
        matches!(self.state, ExState::Udp)
            && self.result.is_none()
            && dst == self.server()
            && local_port == Some(port)
    }

    fn matches(&self, from: SocketAddr, msg: &Message) -> bool {
        matches!(self.state, ExState::Udp)
            && self.result.is_none()
            && from == self.server()
            && msg.id == self.id
            && msg.flags.response
            && msg.question() == Some(&self.question)
    }

    fn poll_tcp(&mut self, now: Time, cx: &mut AppCx<'_>, log: &mut Vec<QueryRecord>) {
        let query = self.query();
        let ExState::Tcp { conn, sent, inbuf } = &mut self.state else { return };
        match conn.poll(now, cx) {
            ConnStatus::Connecting => {}
            ConnStatus::Failed => {
                self.try_index += 1;
                self.next_try(now, cx, true, log);
            }
            ConnStatus::Open => {
                let Some(h) = conn.handle() else { return };
                if !*sent && let Ok(bytes) = query.to_wire() {
                    let framed = tcp_frame(&bytes);
                    if cx.tcp_send(h, &framed).unwrap_or(0) == framed.len() {
                        *sent = true;
                    }
                }
                let _ = cx.tcp_recv(h, inbuf);
                if let Some(frame) = take_tcp_frame(inbuf)
                    && let Ok(msg) = Message::from_wire(&frame)
                    && msg.id == self.id
                {
                    log[self.record].response = Some((now, msg.clone()));
                    log[self.record].response_size = frame.len();
                    conn.release(cx);
                    self.state = ExState::Idle;
                    self.result = Some(Some(msg));
                }
            }
        }
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>, log: &mut Vec<QueryRecord>) {
        if self.result.is_some() {
            return;
        }
        if matches!(self.state, ExState::Tcp { .. }) {
            self.poll_tcp(now, cx, log);
        }
        if self.result.is_none() && now >= self.deadline {
            let tcp = matches!(self.state, ExState::Tcp { .. });
            if let ExState::Tcp { conn, .. } = &mut self.state {
                conn.release(cx);
            }
            self.state = ExState::Idle;
            self.try_index += 1;
            self.next_try(now, cx, tcp && self.tcp_only, log);
        }
    }
}

/// Drains `icmp`; returns, for each ICMP port unreachable about a UDP datagram, its source
/// port and destination.
fn refusals(cx: &mut AppCx<'_>, icmp: Option<IcmpHandle>) -> Vec<(u16, SocketAddr)> {
    let mut out = Vec::new();
    let Some(icmp) = icmp else { return out };
    while let Some(msg) = cx.icmp_recv(icmp) {
        if let Some((_, _, original)) = msg.error()
            && msg.is_port_unreachable()
            && original.protocol == 17
        {
            out.push((original.src_port, SocketAddr::new(original.dst, original.dst_port)));
        }
    }
    out
}

/// How one name fared, from the answer to each of its queries (`None`: no server answered):
/// an answer if any query got records of its type, a timeout if any query got nothing, else
/// the first answer's code. Shared by [`Lookup`] and the async pods' resolver.
pub(crate) fn name_outcome(results: &[(RecordType, Option<&Message>)]) -> NameOutcome {
    let has = |m: &Message, t: RecordType| m.answers.iter().any(|r| r.data.record_type() == t);
    if results.iter().any(|(t, r)| r.is_some_and(|m| m.rcode == Rcode::NoError && has(m, *t))) {
        return NameOutcome::Answer;
    }
    match results.first() {
        Some((_, Some(first))) if results.iter().all(|(_, r)| r.is_some()) => match first.rcode {
            Rcode::NoError => NameOutcome::NoData,
            Rcode::NxDomain => NameOutcome::NxDomain,
            Rcode::ServFail => NameOutcome::ServFail,
            _ => NameOutcome::OtherError,
        },
        _ => NameOutcome::Timeout,
    }
}

/// Which address families a [`Lookup`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A only (`getent ahostsv4`, `ping -4`).
    V4,
    /// AAAA only.
    V6,
    /// A and AAAA together (`getaddrinfo` with `AF_UNSPEC`).
    Both,
}

/// The result of a successful [`Lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupAnswer {
    /// The name that answered (a candidate of the search walk).
    pub name: String,
    /// The canonical name after aliases.
    pub canonical: String,
    /// The addresses, A first, then AAAA, in answer order.
    pub addresses: Vec<IpAddr>,
    /// Every answer record received for the name.
    pub records: Vec<Record>,
}

/// A name lookup from a pod, as `getaddrinfo` in glibc does it.
#[derive(Debug)]
pub struct Lookup {
    conf: ResolvConf,
    family: Family,
    walk: SearchWalk,
    next_id: u16,
    udp: Option<UdpHandle>,
    icmp: Option<IcmpHandle>,
    current: Vec<Exchange>,
    log: Vec<QueryRecord>,
    result: Option<Result<LookupAnswer, LookupError>>,
    finished_at: Option<Time>,
    error: Option<StackError>,
}

impl Lookup {
    /// Looks up `name` under `conf`; `seed` picks the query IDs.
    pub fn new(conf: ResolvConf, name: &str, family: Family, seed: u64) -> Lookup {
        Lookup {
            walk: SearchWalk::new(&conf, name),
            conf,
            family,
            next_id: (seed ^ (seed >> 16) ^ (seed >> 32) ^ (seed >> 48)) as u16,
            udp: None,
            icmp: None,
            current: Vec::new(),
            log: Vec::new(),
            result: None,
            finished_at: None,
            error: None,
        }
    }

    /// The result, once finished.
    pub fn result(&self) -> Option<&Result<LookupAnswer, LookupError>> {
        self.result.as_ref()
    }

    /// Every query sent and its answer, in order.
    pub fn queries(&self) -> &[QueryRecord] {
        &self.log
    }

    /// When the lookup finished.
    pub fn finished_at(&self) -> Option<Time> {
        self.finished_at
    }

    /// The local failure that stopped the lookup (no socket), if any.
    pub fn error(&self) -> Option<&StackError> {
        self.error.as_ref()
    }

    fn try_name(&mut self, now: Time, cx: &mut AppCx<'_>, udp: UdpHandle, name: String) {
        let types: &[RecordType] = match self.family {
            Family::V4 => &[RecordType::A],
            Family::V6 => &[RecordType::Aaaa],
            Family::Both => &[RecordType::A, RecordType::Aaaa],
        };
        let servers: Vec<SocketAddr> =
            self.conf.nameservers.iter().map(|ip| SocketAddr::new(*ip, 53)).collect();
        self.current.clear();
        for &t in types {
            self.next_id = self.next_id.wrapping_mul(31421).wrapping_add(6927);
            let mut ex = Exchange {
                question: Question::new(&name, t),
                id: self.next_id,
                udp,
                edns: None,
                tries: servers.len() * self.conf.attempts as usize,
                servers: servers.clone(),
                timeout: self.conf.timeout,
                try_index: 0,
                tcp_only: false,
                state: ExState::Idle,
                deadline: now,
                record: 0,
                result: None,
            };
            ex.start(now, cx, &mut self.log);
            self.current.push(ex);
        }
    }

    /// How the current name fared, once every exchange finished.
    fn outcome(&self) -> Option<NameOutcome> {
        let results: Vec<(RecordType, Option<&Message>)> = self
            .current
            .iter()
            .map(|e| e.result.as_ref().map(|r| (e.question.qtype, r.as_ref())))
            .collect::<Option<_>>()?;
        Some(name_outcome(&results))
    }

    fn answer(&self, name: String) -> LookupAnswer {
        let mut records = Vec::new();
        let mut addresses = Vec::new();
        let mut canonical = name.clone();
        for e in &self.current {
            if let Some(Some(m)) = &e.result {
                for r in &m.answers {
                    if let super::message::RData::Cname(t) = &r.data {
                        canonical = t.clone();
                    }
                    if r.data.record_type() == e.question.qtype
                        && let Some(ip) = r.data.address()
                    {
                        addresses.push(ip);
                    }
                }
                records.extend(m.answers.iter().cloned());
            }
        }
        LookupAnswer { name, canonical, addresses, records }
    }
}

impl App for Lookup {
    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.result.is_some() {
            return AppPoll::Done;
        }
        let udp = match self.udp {
            Some(u) => u,
            None => match cx.udp_bind(0) {
                Ok(u) => {
                    self.udp = Some(u);
                    // Best effort: without it a refusing server costs its timeout.
                    self.icmp =
                        self.conf.nameservers.first().and_then(|ip| cx.icmp_open_for(*ip).ok());
                    if self.conf.nameservers.is_empty() {
                        self.result = Some(Err(LookupError::TryAgain));
                    } else if let WalkStep::Try(name) = self.walk.start() {
                        self.try_name(now, cx, u, name);
                    }
                    u
                }
                Err(e) => {
                    self.error = Some(e);
                    self.result = Some(Err(LookupError::TryAgain));
                    self.finished_at = Some(now);
                    return AppPoll::Done;
                }
            },
        };
        loop {
            while let Some((data, from)) = cx.udp_recv(udp) {
                let Ok(msg) = Message::from_wire(&data) else { continue };
                if let Some(e) = self.current.iter_mut().find(|e| e.matches(from, &msg)) {
                    e.on_udp(now, cx, msg, data.len(), &mut self.log);
                }
            }
            let local_port = cx.udp_local_port(udp);
            for (port, dst) in refusals(cx, self.icmp) {
                if let Some(e) =
                    self.current.iter_mut().find(|e| e.refused_by(port, dst, local_port))
                {
                    e.on_refused(now, cx, &mut self.log);
                }
            }
            for e in &mut self.current {
                e.poll(now, cx, &mut self.log);
            }
            let Some(outcome) = self.outcome() else { break };
            match self.walk.report(outcome) {
                WalkStep::Try(name) => self.try_name(now, cx, udp, name),
                WalkStep::Done(r) => {
                    self.result = Some(r.map(|name| self.answer(name)));
                    break;
                }
            }
        }
        if self.result.is_some() {
            cx.remove(udp);
            if let Some(icmp) = self.icmp.take() {
                cx.remove(icmp);
            }
            self.finished_at = Some(now);
            return AppPoll::Done;
        }
        match self.current.iter().filter(|e| e.result.is_none()).map(|e| e.deadline).min() {
            Some(t) => AppPoll::WakeAt(t),
            None => AppPoll::Idle,
        }
    }
}

/// Options of a [`Dig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigConfig {
    /// The server (`@server`).
    pub server: SocketAddr,
    /// The question (dig does not use the search list).
    pub question: Question,
    /// `+tcp`: ask over TCP from the start.
    pub tcp: bool,
    /// The EDNS0 UDP size dig advertises (`+bufsize`; `None`: `+noedns`).
    pub edns: Option<u16>,
    /// `+time`: seconds per try (5).
    pub timeout: Duration,
    /// `+tries`: tries over UDP (3).
    pub tries: usize,
    /// The query ID.
    pub id: u16,
}

impl DigConfig {
    /// `dig @server name type` with dig's defaults, but without EDNS so that the 512-byte UDP
    /// limit (and the TCP fallback) shows as a stub resolver meets it.
    pub fn new(server: SocketAddr, name: &str, qtype: RecordType) -> DigConfig {
        DigConfig {
            server,
            question: Question::new(name, qtype),
            tcp: false,
            edns: None,
            timeout: Duration::from_secs(5),
            tries: 3,
            id: 0x2f1a,
        }
    }
}

/// One query and its raw answer, like `dig`.
#[derive(Debug)]
pub struct Dig {
    config: DigConfig,
    udp: Option<UdpHandle>,
    icmp: Option<IcmpHandle>,
    exchange: Option<Exchange>,
    log: Vec<QueryRecord>,
    finished_at: Option<Time>,
    error: Option<StackError>,
}

impl Dig {
    /// A dig with `config`.
    pub fn new(config: DigConfig) -> Dig {
        Dig {
            config,
            udp: None,
            icmp: None,
            exchange: None,
            log: Vec::new(),
            finished_at: None,
            error: None,
        }
    }

    /// The options.
    pub fn config(&self) -> &DigConfig {
        &self.config
    }

    /// The final answer, once finished (`None` inside: no server answered).
    pub fn response(&self) -> Option<&Message> {
        self.exchange.as_ref()?.result.as_ref()?.as_ref()
    }

    /// Every query sent (a truncated UDP answer followed by the TCP retry shows twice).
    pub fn queries(&self) -> &[QueryRecord] {
        &self.log
    }

    /// When dig finished.
    pub fn finished_at(&self) -> Option<Time> {
        self.finished_at
    }

    /// The local failure that stopped it, if any.
    pub fn error(&self) -> Option<&StackError> {
        self.error.as_ref()
    }
}

impl App for Dig {
    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.finished_at.is_some() {
            return AppPoll::Done;
        }
        let edns = self.config.edns;
        let udp = match self.udp {
            Some(u) => u,
            None => match cx.udp_bind(0) {
                Ok(u) => {
                    self.udp = Some(u);
                    self.icmp = cx.icmp_open_for(self.config.server.ip()).ok();
                    let mut ex = Exchange {
                        question: self.config.question.clone(),
                        id: self.config.id,
                        udp: u,
                        edns,
                        servers: vec![self.config.server],
                        timeout: self.config.timeout,
                        tries: self.config.tries.max(1),
                        try_index: 0,
                        tcp_only: self.config.tcp,
                        state: ExState::Idle,
                        deadline: now,
                        record: 0,
                        result: None,
                    };
                    ex.start(now, cx, &mut self.log);
                    self.exchange = Some(ex);
                    u
                }
                Err(e) => {
                    self.error = Some(e);
                    self.finished_at = Some(now);
                    return AppPoll::Done;
                }
            },
        };
        let Some(ex) = self.exchange.as_mut() else { return AppPoll::Done };
        while let Some((data, from)) = cx.udp_recv(udp) {
            if let Ok(msg) = Message::from_wire(&data)
                && ex.matches(from, &msg)
            {
                ex.on_udp(now, cx, msg, data.len(), &mut self.log);
            }
        }
        let local_port = cx.udp_local_port(udp);
        for (port, dst) in refusals(cx, self.icmp) {
            if ex.refused_by(port, dst, local_port) {
                ex.on_refused(now, cx, &mut self.log);
            }
        }
        ex.poll(now, cx, &mut self.log);
        if ex.result.is_some() {
            cx.remove(udp);
            if let Some(icmp) = self.icmp.take() {
                cx.remove(icmp);
            }
            self.finished_at = Some(now);
            return AppPoll::Done;
        }
        AppPoll::WakeAt(ex.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf() -> ResolvConf {
        ResolvConf::cluster_first("10.96.0.10".parse().unwrap(), "prod", "cluster.local")
    }

    #[test]
    fn kubelet_resolv_conf_round_trips() {
        let text = conf().render();
        assert_eq!(
            text,
            "search prod.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
        assert_eq!(ResolvConf::parse(&text).unwrap(), conf());
        let e = ResolvConf::parse("nameserver 10.0.0.1\nnameserver banana\n").unwrap_err();
        assert_eq!(e.to_string(), "resolv.conf:2: invalid nameserver `banana`");
        let host = ResolvConf::parse(
            "# node\nnameserver 192.168.0.1\nsearch corp.example\noptions edns0 timeout:2\n",
        )
        .unwrap();
        assert_eq!((host.ndots, host.timeout, host.search.len()), (1, Duration::from_secs(2), 1));
    }

    #[test]
    fn candidates_follow_ndots() {
        let c = conf();
        assert_eq!(
            c.candidates("web"),
            ["web.prod.svc.cluster.local", "web.svc.cluster.local", "web.cluster.local", "web"]
        );
        assert_eq!(c.candidates("web.prod.svc.cluster.local.")[..], ["web.prod.svc.cluster.local"]);
        assert_eq!(c.candidates("a.b.c.d.e.f")[0], "a.b.c.d.e.f", "5 dots: as is first");
        assert_eq!(c.candidates("a.b.c.d.e.f").len(), 4);
        assert_eq!(
            c.candidates("web.prod.svc.cluster.local")[0],
            "web.prod.svc.cluster.local.prod.svc.cluster.local",
            "4 dots < ndots 5"
        );
    }

    fn walk(name: &str, outcomes: &[NameOutcome]) -> (Vec<String>, Result<String, LookupError>) {
        let mut w = SearchWalk::new(&conf(), name);
        let mut tried = Vec::new();
        let mut step = w.start();
        let mut it = outcomes.iter();
        loop {
            match step {
                WalkStep::Try(n) => {
                    tried.push(n);
                    step = w.report(*it.next().expect("an outcome per name"));
                }
                WalkStep::Done(r) => return (tried, r),
            }
        }
    }

    #[test]
    fn the_walk_is_glibcs() {
        use NameOutcome::*;
        let (tried, r) = walk("web", &[NxDomain, NxDomain, NxDomain, NxDomain]);
        assert_eq!((tried.len(), r), (4, Err(LookupError::HostNotFound)));
        let (tried, r) = walk("web", &[NxDomain, Answer]);
        assert_eq!(tried, ["web.prod.svc.cluster.local", "web.svc.cluster.local"]);
        assert_eq!(r, Ok("web.svc.cluster.local".into()));
        let (_, r) = walk("web", &[NoData, NxDomain, NxDomain, NxDomain]);
        assert_eq!(r, Err(LookupError::NoData), "NODATA wins over a later NXDOMAIN");
        let (tried, r) = walk("web", &[ServFail, NxDomain, NxDomain, NxDomain]);
        assert_eq!((tried.len(), r), (4, Err(LookupError::TryAgain)), "SERVFAIL moves on");
        let (tried, r) = walk("web", &[NxDomain, Timeout]);
        assert_eq!((tried.len(), r), (2, Err(LookupError::TryAgain)), "a timeout ends the walk");
        let (tried, r) = walk("web", &[OtherError]);
        assert_eq!((tried.len(), r), (1, Err(LookupError::NoRecovery)));
        let (tried, r) = walk("a.b.c.d.e.f", &[NoData, NxDomain, NxDomain, NxDomain]);
        assert_eq!((tried.len(), r), (4, Err(LookupError::NoData)));
        let (_, r) = walk("a.b.c.d.e.f", &[NxDomain, NoData, NxDomain, NxDomain]);
        assert_eq!(r, Err(LookupError::HostNotFound), "the first as-is error is kept");
        let (tried, r) = walk("example.com.", &[NxDomain]);
        assert_eq!((tried, r), (vec!["example.com".to_string()], Err(LookupError::HostNotFound)));
    }
}
