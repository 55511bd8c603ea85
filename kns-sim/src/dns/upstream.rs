//! [`UpstreamDns`]: the outside world's resolver, a fixed small zone answered over UDP.
//!
//! It behaves as a recursive resolver seen from the cluster: answers carry `ra` (not `aa`),
//! aliases are followed inside its own data, unknown names are NXDOMAIN with the SOA of the
//! closest zone it knows (or the root's), and every question it receives is logged, so tests
//! can count what a cluster resolver sent out.

use std::collections::BTreeMap;

use super::message::{Message, Question, RData, Rcode, Record, RecordType, Soa};
use super::records::in_zone;
use crate::stack::{App, AppCx, AppPoll, StackError, UdpHandle};
use crate::time::Time;

/// One question the upstream received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamQuery {
    /// When it arrived.
    pub at: Time,
    /// Who sent it.
    pub from: std::net::SocketAddr,
    /// The question.
    pub question: Question,
    /// The answer's code.
    pub rcode: Rcode,
}

/// A resolver for a fixed set of records, listening on UDP port 53.
#[derive(Debug)]
pub struct UpstreamDns {
    records: BTreeMap<String, Vec<Record>>,
    zones: Vec<String>,
    port: u16,
    socket: Option<UdpHandle>,
    log: Vec<UpstreamQuery>,
    error: Option<StackError>,
}

impl UpstreamDns {
    /// An upstream answering `records`; `zones` are the apexes whose SOA negative answers carry.
    pub fn new(records: Vec<Record>, zones: &[&str]) -> UpstreamDns {
        let mut map: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        for r in records {
            map.entry(r.name.clone()).or_default().push(r);
        }
        UpstreamDns {
            records: map,
            zones: zones.iter().map(|z| super::message::normalize(z)).collect(),
            port: 53,
            socket: None,
            log: Vec::new(),
            error: None,
        }
    }

    /// The documentation world: `example.com` (A 203.0.113.10, AAAA 2001:db8::10),
    /// `www.example.com` (CNAME example.com), `example.org` (A 203.0.113.11), `api.example.net`
    /// (A 203.0.113.12).
    pub fn example() -> UpstreamDns {
        let r = |name: &str, ttl, data| Record::new(name, ttl, data);
        UpstreamDns::new(
            vec![
                r("example.com", 300, RData::A([203, 0, 113, 10].into())),
                r("example.com", 300, RData::Aaaa("2001:db8::10".parse().expect("literal"))),
                r("www.example.com", 300, RData::Cname("example.com".into())),
                r("example.org", 300, RData::A([203, 0, 113, 11].into())),
                r("api.example.net", 60, RData::A([203, 0, 113, 12].into())),
            ],
            &["example.com", "example.org", "example.net"],
        )
    }

    /// Every question received, in order.
    pub fn log(&self) -> &[UpstreamQuery] {
        &self.log
    }

    /// Why the socket could not be opened, if it could not.
    pub fn error(&self) -> Option<&StackError> {
        self.error.as_ref()
    }

    /// The answer to `query`.
    pub fn answer(&self, query: &Message) -> Message {
        let mut m = Message::response_to(query);
        m.flags.recursion_available = true;
        let Some(q) = query.question() else {
            m.rcode = Rcode::FormErr;
            return m;
        };
        let mut name = q.name.clone();
        for _ in 0..8 {
            let Some(records) = self.records.get(&name) else {
                if m.answers.is_empty() {
                    m.rcode = Rcode::NxDomain;
                }
                m.authority.push(self.soa(&name));
                return m;
            };
            let matching: Vec<Record> =
                records.iter().filter(|r| r.data.record_type() == q.qtype).cloned().collect();
            if !matching.is_empty() {
                m.answers.extend(matching);
                return m;
            }
            match records.iter().find_map(|r| match &r.data {
                RData::Cname(t) => Some((r.clone(), t.clone())),
                _ => None,
            }) {
                Some((cname, target)) if q.qtype != RecordType::Cname => {
                    m.answers.push(cname);
                    name = target;
                }
                _ => {
                    m.authority.push(self.soa(&name));
                    return m;
                }
            }
        }
        m
    }

    fn soa(&self, name: &str) -> Record {
        let zone = self.zones.iter().filter(|z| in_zone(name, z)).max_by_key(|z| z.len());
        match zone {
            Some(z) => Record::new(
                z,
                3600,
                RData::Soa(Soa {
                    mname: format!("ns1.{z}"),
                    rname: format!("hostmaster.{z}"),
                    serial: 2026010101,
                    refresh: 7200,
                    retry: 3600,
                    expire: 1209600,
                    minimum: 3600,
                }),
            ),
            None => Record::new(
                "",
                86400,
                RData::Soa(Soa {
                    mname: "a.root-servers.net".into(),
                    rname: "nstld.verisign-grs.com".into(),
                    serial: 2026010100,
                    refresh: 1800,
                    retry: 900,
                    expire: 604800,
                    minimum: 86400,
                }),
            ),
        }
    }
}

impl App for UpstreamDns {
    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.error.is_some() {
            return AppPoll::Done;
        }
        let socket = match self.socket {
            Some(s) => s,
            None => match cx.udp_bind(self.port) {
                Ok(s) => *self.socket.insert(s),
                Err(e) => {
                    self.error = Some(e);
                    return AppPoll::Done;
                }
            },
        };
        while let Some((data, from)) = cx.udp_recv(socket) {
            let Ok(query) = Message::from_wire(&data) else { continue };
            let answer = self.answer(&query);
            if let Some(q) = query.question() {
                self.log.push(UpstreamQuery {
                    at: now,
                    from,
                    question: q.clone(),
                    rcode: answer.rcode,
                });
            }
            if let Ok(bytes) = answer.to_wire_limited(super::message::UDP_LIMIT) {
                let _ = cx.udp_send(socket, from, &bytes);
            }
        }
        AppPoll::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_a_recursive_resolver() {
        let up = UpstreamDns::example();
        let ask = |name: &str, t| up.answer(&Message::query(9, Question::new(name, t)));
        let a = ask("www.example.com", RecordType::A);
        assert!(a.flags.recursion_available && !a.flags.authoritative);
        let text: Vec<String> = a.answers.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "www.example.com.\t300\tIN\tCNAME\texample.com.",
                "example.com.\t300\tIN\tA\t203.0.113.10"
            ]
        );
        let nx = ask("web.cluster.local", RecordType::A);
        assert_eq!(nx.rcode, Rcode::NxDomain);
        assert_eq!(nx.authority[0].name, "", "the root's SOA");
        let nodata = ask("example.org", RecordType::Aaaa);
        assert_eq!((nodata.rcode, nodata.answers.len()), (Rcode::NoError, 0));
        assert_eq!(nodata.authority[0].name, "example.org");
    }
}
