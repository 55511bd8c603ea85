//! DNS messages as plain values, and their wire format through `simple-dns`.
//!
//! Names are kept lowercase, without the trailing dot (the root is the empty string), so that
//! zone lookups are plain string comparisons; [`fqdn`] adds the dot back for display. Only the
//! record types kns serves are modelled ([`RData`]); a record of any other type in a received
//! message is skipped, and a question of any other type is kept as [`RecordType::Other`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::{A, AAAA, CNAME, NS, OPT, PTR, RData as WireRData, SOA, SRV};
use simple_dns::{CLASS, Name, OPCODE, PacketFlag, QCLASS, QTYPE, Question as WireQuestion, RCODE};
use simple_dns::{Packet, ResourceRecord, TYPE};

/// The largest DNS message over UDP without EDNS (RFC 1035 §4.2.1).
pub const UDP_LIMIT: usize = 512;

/// A record type, as asked in a question or carried by a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Alias.
    Cname,
    /// Service location.
    Srv,
    /// Reverse pointer.
    Ptr,
    /// Start of authority.
    Soa,
    /// Name server.
    Ns,
    /// Any other type, by number (answered with no data).
    Other(u16),
}

impl RecordType {
    /// The type number.
    pub fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Ns => 2,
            RecordType::Cname => 5,
            RecordType::Soa => 6,
            RecordType::Ptr => 12,
            RecordType::Aaaa => 28,
            RecordType::Srv => 33,
            RecordType::Other(n) => n,
        }
    }

    /// The type with number `code`.
    pub fn from_code(code: u16) -> RecordType {
        match code {
            1 => RecordType::A,
            2 => RecordType::Ns,
            5 => RecordType::Cname,
            6 => RecordType::Soa,
            12 => RecordType::Ptr,
            28 => RecordType::Aaaa,
            33 => RecordType::Srv,
            n => RecordType::Other(n),
        }
    }

    /// Parses a type as dig accepts it (`A`, `aaaa`, `SRV`, `TYPE16`, `TXT`, ...).
    pub fn parse(text: &str) -> Option<RecordType> {
        let upper = text.to_ascii_uppercase();
        Some(match upper.as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::Aaaa,
            "CNAME" => RecordType::Cname,
            "SRV" => RecordType::Srv,
            "PTR" => RecordType::Ptr,
            "SOA" => RecordType::Soa,
            "NS" => RecordType::Ns,
            "MX" => RecordType::Other(15),
            "TXT" => RecordType::Other(16),
            "ANY" => RecordType::Other(255),
            _ => RecordType::from_code(upper.strip_prefix("TYPE")?.parse().ok()?),
        })
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordType::A => f.write_str("A"),
            RecordType::Aaaa => f.write_str("AAAA"),
            RecordType::Cname => f.write_str("CNAME"),
            RecordType::Srv => f.write_str("SRV"),
            RecordType::Ptr => f.write_str("PTR"),
            RecordType::Soa => f.write_str("SOA"),
            RecordType::Ns => f.write_str("NS"),
            RecordType::Other(15) => f.write_str("MX"),
            RecordType::Other(16) => f.write_str("TXT"),
            RecordType::Other(255) => f.write_str("ANY"),
            RecordType::Other(n) => write!(f, "TYPE{n}"),
        }
    }
}

/// The data of a start-of-authority record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Soa {
    /// Primary name server.
    pub mname: String,
    /// Mailbox of the person responsible (first label is the user).
    pub rname: String,
    /// Zone serial number.
    pub serial: u32,
    /// Refresh interval, seconds.
    pub refresh: u32,
    /// Retry interval, seconds.
    pub retry: u32,
    /// Expiry, seconds.
    pub expire: u32,
    /// Negative-caching TTL, seconds (RFC 2308).
    pub minimum: u32,
}

/// The data of a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// The canonical name this name is an alias of.
    Cname(String),
    /// A service location.
    Srv {
        /// Lower is preferred.
        priority: u16,
        /// Relative weight among equal priorities.
        weight: u16,
        /// The port.
        port: u16,
        /// The host offering the service.
        target: String,
    },
    /// The name of an address.
    Ptr(String),
    /// Start of authority.
    Soa(Soa),
    /// A name server.
    Ns(String),
}

impl RData {
    /// The record type of this data.
    pub fn record_type(&self) -> RecordType {
        match self {
            RData::A(_) => RecordType::A,
            RData::Aaaa(_) => RecordType::Aaaa,
            RData::Cname(_) => RecordType::Cname,
            RData::Srv { .. } => RecordType::Srv,
            RData::Ptr(_) => RecordType::Ptr,
            RData::Soa(_) => RecordType::Soa,
            RData::Ns(_) => RecordType::Ns,
        }
    }

    /// An A or AAAA record's address.
    pub fn address(&self) -> Option<IpAddr> {
        match self {
            RData::A(a) => Some(IpAddr::V4(*a)),
            RData::Aaaa(a) => Some(IpAddr::V6(*a)),
            _ => None,
        }
    }

    /// The data for an address: A for IPv4, AAAA for IPv6.
    pub fn for_address(ip: IpAddr) -> RData {
        match ip {
            IpAddr::V4(a) => RData::A(a),
            IpAddr::V6(a) => RData::Aaaa(a),
        }
    }
}

impl fmt::Display for RData {
    /// The data in zone-file presentation form, as dig prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RData::A(a) => write!(f, "{a}"),
            RData::Aaaa(a) => write!(f, "{a}"),
            RData::Cname(n) | RData::Ptr(n) | RData::Ns(n) => f.write_str(&fqdn(n)),
            RData::Srv { priority, weight, port, target } => {
                write!(f, "{priority} {weight} {port} {}", fqdn(target))
            }
            RData::Soa(s) => write!(
                f,
                "{} {} {} {} {} {} {}",
                fqdn(&s.mname),
                fqdn(&s.rname),
                s.serial,
                s.refresh,
                s.retry,
                s.expire,
                s.minimum
            ),
        }
    }
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// The owner name (lowercase, no trailing dot).
    pub name: String,
    /// Time to live, seconds.
    pub ttl: u32,
    /// The data.
    pub data: RData,
}

impl Record {
    /// A record of `name` (normalised) with `ttl` and `data`.
    pub fn new(name: &str, ttl: u32, data: RData) -> Record {
        Record { name: normalize(name), ttl, data }
    }
}

impl fmt::Display for Record {
    /// One line as dig prints it: name, TTL, class, type, data, separated by tabs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\t{}\tIN\t{}\t{}",
            fqdn(&self.name),
            self.ttl,
            self.data.record_type(),
            self.data
        )
    }
}

/// The response code of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rcode {
    /// No error (with or without answers).
    NoError,
    /// The query could not be parsed.
    FormErr,
    /// The server failed (an upstream did not answer, ...).
    ServFail,
    /// The name does not exist.
    NxDomain,
    /// The server does not implement the operation.
    NotImp,
    /// The server refuses to answer.
    Refused,
    /// Any other code.
    Other(u8),
}

impl fmt::Display for Rcode {
    /// The name dig prints in `status:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rcode::NoError => f.write_str("NOERROR"),
            Rcode::FormErr => f.write_str("FORMERR"),
            Rcode::ServFail => f.write_str("SERVFAIL"),
            Rcode::NxDomain => f.write_str("NXDOMAIN"),
            Rcode::NotImp => f.write_str("NOTIMP"),
            Rcode::Refused => f.write_str("REFUSED"),
            Rcode::Other(n) => write!(f, "RESERVED{n}"),
        }
    }
}

/// A question: a name and a type (class IN).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Question {
    /// The name asked (lowercase, no trailing dot).
    pub name: String,
    /// The type asked.
    pub qtype: RecordType,
}

impl Question {
    /// A question for `name` (normalised) of type `qtype`.
    pub fn new(name: &str, qtype: RecordType) -> Question {
        Question { name: normalize(name), qtype }
    }
}

/// The header flags kns reads and writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// This is a response (`qr`).
    pub response: bool,
    /// Authoritative answer (`aa`).
    pub authoritative: bool,
    /// Truncated: retry over TCP (`tc`).
    pub truncated: bool,
    /// Recursion desired (`rd`).
    pub recursion_desired: bool,
    /// Recursion available (`ra`).
    pub recursion_available: bool,
}

/// A whole DNS message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// The query ID.
    pub id: u16,
    /// Header flags.
    pub flags: Flags,
    /// The response code.
    pub rcode: Rcode,
    /// The questions (kns sends and answers exactly one).
    pub questions: Vec<Question>,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section.
    pub authority: Vec<Record>,
    /// The additional section (without the EDNS pseudo-record).
    pub additional: Vec<Record>,
    /// The EDNS0 UDP payload size, when the message carries an OPT record.
    pub edns_udp_size: Option<u16>,
}

/// Why bytes are not a DNS message kns understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// simple-dns could not parse or build the message.
    #[error("malformed DNS message: {0}")]
    Malformed(String),
    /// A name is too long or has an empty label.
    #[error("invalid DNS name `{0}`")]
    BadName(String),
}

impl Message {
    /// A recursive query (`rd` set) with one question.
    pub fn query(id: u16, question: Question) -> Message {
        Message {
            id,
            flags: Flags { recursion_desired: true, ..Flags::default() },
            rcode: Rcode::NoError,
            questions: vec![question],
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            edns_udp_size: None,
        }
    }

    /// An empty response to `query`: same ID, question and `rd`, `qr` set.
    pub fn response_to(query: &Message) -> Message {
        Message {
            id: query.id,
            flags: Flags {
                response: true,
                recursion_desired: query.flags.recursion_desired,
                ..Flags::default()
            },
            rcode: Rcode::NoError,
            questions: query.questions.clone(),
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            edns_udp_size: query.edns_udp_size.map(|_| 1232),
        }
    }

    /// The first question, if any.
    pub fn question(&self) -> Option<&Question> {
        self.questions.first()
    }

    /// Every address in the answer section (A and AAAA), in order.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.answers.iter().filter_map(|r| r.data.address()).collect()
    }

    /// The message in wire format (with name compression).
    pub fn to_wire(&self) -> Result<Vec<u8>, WireError> {
        let mut p = Packet::new_query(self.id);
        let mut flags = PacketFlag::empty();
        for (on, flag) in [
            (self.flags.response, PacketFlag::RESPONSE),
            (self.flags.authoritative, PacketFlag::AUTHORITATIVE_ANSWER),
            (self.flags.truncated, PacketFlag::TRUNCATION),
            (self.flags.recursion_desired, PacketFlag::RECURSION_DESIRED),
            (self.flags.recursion_available, PacketFlag::RECURSION_AVAILABLE),
        ] {
            if on {
                flags |= flag;
            }
        }
        p.remove_flags(PacketFlag::all());
        p.set_flags(flags);
        *p.opcode_mut() = OPCODE::StandardQuery;
        *p.rcode_mut() = match self.rcode {
            Rcode::NoError => RCODE::NoError,
            Rcode::FormErr => RCODE::FormatError,
            Rcode::ServFail => RCODE::ServerFailure,
            Rcode::NxDomain => RCODE::NameError,
            Rcode::NotImp => RCODE::NotImplemented,
            Rcode::Refused => RCODE::Refused,
            Rcode::Other(n) => RCODE::from(u16::from(n)),
        };
        for q in &self.questions {
            p.questions.push(WireQuestion::new(
                wire_name(&q.name)?,
                QTYPE::TYPE(TYPE::from(q.qtype.code())),
                QCLASS::CLASS(CLASS::IN),
                false,
            ));
        }
        for (section, records) in [
            (&mut p.answers, &self.answers),
            (&mut p.name_servers, &self.authority),
            (&mut p.additional_records, &self.additional),
        ] {
            for r in records {
                section.push(wire_record(r)?);
            }
        }
        if let Some(size) = self.edns_udp_size {
            *p.opt_mut() = Some(OPT { opt_codes: Vec::new(), udp_packet_size: size, version: 0 });
        }
        p.build_bytes_vec_compressed().map_err(|e| WireError::Malformed(e.to_string()))
    }

    /// Parses a message; records of types kns does not model are skipped.
    pub fn from_wire(bytes: &[u8]) -> Result<Message, WireError> {
        let p = Packet::parse(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
        let rcode = match p.rcode() {
            RCODE::NoError => Rcode::NoError,
            RCODE::FormatError => Rcode::FormErr,
            RCODE::ServerFailure => Rcode::ServFail,
            RCODE::NameError => Rcode::NxDomain,
            RCODE::NotImplemented => Rcode::NotImp,
            RCODE::Refused => Rcode::Refused,
            other => Rcode::Other(u8::try_from(other as u16).unwrap_or(u8::MAX)),
        };
        let flags = Flags {
            response: p.has_flags(PacketFlag::RESPONSE),
            authoritative: p.has_flags(PacketFlag::AUTHORITATIVE_ANSWER),
            truncated: p.has_flags(PacketFlag::TRUNCATION),
            recursion_desired: p.has_flags(PacketFlag::RECURSION_DESIRED),
            recursion_available: p.has_flags(PacketFlag::RECURSION_AVAILABLE),
        };
        let questions = p
            .questions
            .iter()
            .map(|q| Question {
                name: normalize(&q.qname.to_string()),
                qtype: RecordType::from_code(u16::from(q.qtype)),
            })
            .collect();
        let section = |rrs: &[ResourceRecord<'_>]| rrs.iter().filter_map(model_record).collect();
        Ok(Message {
            id: p.id(),
            flags,
            rcode,
            questions,
            answers: section(&p.answers),
            authority: section(&p.name_servers),
            additional: section(&p.additional_records),
            edns_udp_size: p.opt().map(|o| o.udp_packet_size),
        })
    }

    /// The message in wire format, cut to at most `limit` bytes for UDP: if it is larger,
    /// additional records, then authority records, then answers are dropped from the end until
    /// it fits, and the `tc` bit is set (as CoreDNS does), so the client retries over TCP.
    pub fn to_wire_limited(&self, limit: usize) -> Result<Vec<u8>, WireError> {
        let bytes = self.to_wire()?;
        if bytes.len() <= limit {
            return Ok(bytes);
        }
        let mut cut = self.clone();
        cut.flags.truncated = true;
        cut.additional.clear();
        cut.authority.clear();
        loop {
            let bytes = cut.to_wire()?;
            if bytes.len() <= limit || cut.answers.is_empty() {
                return Ok(bytes);
            }
            cut.answers.pop();
        }
    }
}

/// A message prefixed with its two-byte length, as DNS over TCP carries it (RFC 1035 §4.2.2).
pub fn tcp_frame(bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
    out
}

/// Takes the first complete length-prefixed message off the front of `buf`.
pub fn take_tcp_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let len = usize::from(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]));
    if buf.len() < 2 + len {
        return None;
    }
    let msg = buf[2..2 + len].to_vec();
    buf.drain(..2 + len);
    Some(msg)
}

/// Lowercases a name and removes its trailing dot (`Web.Prod.` → `web.prod`).
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A normalised name with its trailing dot, as dig prints it (the root is `.`).
pub fn fqdn(name: &str) -> String {
    format!("{name}.")
}

fn wire_name(name: &str) -> Result<Name<'_>, WireError> {
    if name.split('.').any(str::is_empty) && !name.is_empty() {
        return Err(WireError::BadName(name.to_string()));
    }
    Name::new(name).map_err(|_| WireError::BadName(name.to_string()))
}

fn wire_record(r: &Record) -> Result<ResourceRecord<'_>, WireError> {
    let data = match &r.data {
        RData::A(a) => WireRData::A(A::from(*a)),
        RData::Aaaa(a) => WireRData::AAAA(AAAA::from(*a)),
        RData::Cname(n) => WireRData::CNAME(CNAME(wire_name(n)?)),
        RData::Ptr(n) => WireRData::PTR(PTR(wire_name(n)?)),
        RData::Ns(n) => WireRData::NS(NS(wire_name(n)?)),
        RData::Srv { priority, weight, port, target } => WireRData::SRV(SRV {
            priority: *priority,
            weight: *weight,
            port: *port,
            target: wire_name(target)?,
        }),
        RData::Soa(s) => WireRData::SOA(SOA {
            mname: wire_name(&s.mname)?,
            rname: wire_name(&s.rname)?,
            serial: s.serial,
            refresh: i32::try_from(s.refresh).unwrap_or(i32::MAX),
            retry: i32::try_from(s.retry).unwrap_or(i32::MAX),
            expire: i32::try_from(s.expire).unwrap_or(i32::MAX),
            minimum: s.minimum,
        }),
    };
    Ok(ResourceRecord::new(wire_name(&r.name)?, CLASS::IN, r.ttl, data))
}

fn model_record(rr: &ResourceRecord<'_>) -> Option<Record> {
    let name = |n: &Name<'_>| normalize(&n.to_string());
    let data = match &rr.rdata {
        WireRData::A(a) => RData::A(Ipv4Addr::from(a.address)),
        WireRData::AAAA(a) => RData::Aaaa(Ipv6Addr::from(a.address)),
        WireRData::CNAME(n) => RData::Cname(name(&n.0)),
        WireRData::PTR(n) => RData::Ptr(name(&n.0)),
        WireRData::NS(n) => RData::Ns(name(&n.0)),
        WireRData::SRV(s) => RData::Srv {
            priority: s.priority,
            weight: s.weight,
            port: s.port,
            target: name(&s.target),
        },
        WireRData::SOA(s) => RData::Soa(Soa {
            mname: name(&s.mname),
            rname: name(&s.rname),
            serial: s.serial,
            refresh: u32::try_from(s.refresh).unwrap_or(0),
            retry: u32::try_from(s.retry).unwrap_or(0),
            expire: u32::try_from(s.expire).unwrap_or(0),
            minimum: s.minimum,
        }),
        _ => return None,
    };
    Some(Record { name: name(&rr.name), ttl: rr.ttl, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        let q = Message::query(0x1234, Question::new("Web.Prod.svc.cluster.local.", RecordType::A));
        let mut r = Message::response_to(&q);
        r.flags.authoritative = true;
        r.answers.push(Record::new(
            "web.prod.svc.cluster.local",
            5,
            RData::A([10, 96, 0, 20].into()),
        ));
        r.answers.push(Record::new(
            "_http._tcp.web.prod.svc.cluster.local",
            5,
            RData::Srv {
                priority: 0,
                weight: 100,
                port: 80,
                target: "web.prod.svc.cluster.local".into(),
            },
        ));
        r.authority.push(Record::new(
            "cluster.local",
            5,
            RData::Soa(Soa {
                mname: "ns.dns.cluster.local".into(),
                rname: "hostmaster.cluster.local".into(),
                serial: 7,
                refresh: 7200,
                retry: 1800,
                expire: 86400,
                minimum: 5,
            }),
        ));
        r.additional.push(Record::new("x.example", 60, RData::Aaaa("fd00::1".parse().unwrap())));
        r
    }

    #[test]
    fn messages_survive_the_wire() {
        let m = sample();
        assert_eq!(m.questions[0].name, "web.prod.svc.cluster.local");
        let bytes = m.to_wire().unwrap();
        assert_eq!(u16::from_be_bytes([bytes[0], bytes[1]]), 0x1234);
        // qr, aa, rd set; rcode 0.
        assert_eq!(bytes[2], 0b1000_0101);
        assert_eq!(Message::from_wire(&bytes).unwrap(), m);
        let mut nx = m.clone();
        nx.rcode = Rcode::NxDomain;
        nx.edns_udp_size = Some(1232);
        assert_eq!(Message::from_wire(&nx.to_wire().unwrap()).unwrap(), nx);
    }

    #[test]
    fn oversized_udp_answers_are_truncated_with_tc() {
        let mut m = sample();
        for i in 0..60u8 {
            m.answers.push(Record::new(
                "big.prod.svc.cluster.local",
                5,
                RData::A([10, 244, 1, i].into()),
            ));
        }
        let full = m.to_wire().unwrap();
        assert!(full.len() > UDP_LIMIT);
        let cut = m.to_wire_limited(UDP_LIMIT).unwrap();
        assert!(cut.len() <= UDP_LIMIT);
        let parsed = Message::from_wire(&cut).unwrap();
        assert!(parsed.flags.truncated);
        assert!(parsed.answers.len() < m.answers.len());
        assert_eq!(Message::from_wire(&m.to_wire_limited(4096).unwrap()).unwrap(), m);
    }

    #[test]
    fn tcp_framing() {
        let mut buf = tcp_frame(b"abc");
        buf.extend_from_slice(&tcp_frame(b"de")[..3]);
        assert_eq!(take_tcp_frame(&mut buf).as_deref(), Some(&b"abc"[..]));
        assert_eq!(take_tcp_frame(&mut buf), None, "second frame incomplete");
        buf.push(b'e');
        assert_eq!(take_tcp_frame(&mut buf).as_deref(), Some(&b"de"[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn types_parse_like_dig() {
        assert_eq!(RecordType::parse("aaaa"), Some(RecordType::Aaaa));
        assert_eq!(RecordType::parse("TYPE99"), Some(RecordType::Other(99)));
        assert_eq!(RecordType::parse("txt").unwrap().to_string(), "TXT");
        assert_eq!(RecordType::parse("bogus"), None);
        assert_eq!(RecordType::from_code(33), RecordType::Srv);
        assert!(Message::from_wire(&[1, 2, 3]).is_err());
        let bad = Message::query(1, Question::new("a..b", RecordType::A));
        assert_eq!(bad.to_wire(), Err(WireError::BadName("a..b".into())));
    }
}
