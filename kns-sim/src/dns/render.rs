//! Text renderings of DNS exchanges in the manner of `dig` and `nslookup`, deterministic (no
//! wall-clock `WHEN:` line, no version banner; times are virtual).

use std::fmt::Write as _;

use super::message::{Message, RData, Rcode, RecordType, fqdn};
use super::resolver::{Dig, Lookup, LookupError, QueryRecord};

/// `dig`'s output for `dig` (finished or not).
pub fn dig_text(dig: &Dig) -> String {
    let c = dig.config();
    let q = &c.question;
    let mut out = String::new();
    let _ = writeln!(out, "; <<>> kns dig <<>> @{} {} {}", c.server.ip(), fqdn(&q.name), q.qtype);
    out.push_str(";; global options: +cmd\n");
    let queries = dig.queries();
    if queries.iter().any(|r| r.response.as_ref().is_some_and(|(_, m)| m.flags.truncated)) {
        out.push_str(";; Truncated, retrying in TCP mode.\n");
    }
    for r in queries.iter().filter(|r| r.refused) {
        let _ = writeln!(
            out,
            ";; communications error to {}#{}: connection refused",
            r.server.ip(),
            r.server.port()
        );
    }
    let last = queries.iter().rev().find(|r| r.response.is_some());
    match (dig.response(), last) {
        (Some(m), Some(record)) => {
            out.push_str(";; Got answer:\n");
            out.push_str(&message_text(m));
            out.push('\n');
            out.push_str(&footer(record));
        }
        _ if dig.finished_at().is_some() => {
            out.push_str(";; connection timed out; no servers could be reached\n");
        }
        _ => out.push_str(";; (no answer yet)\n"),
    }
    out
}

/// The header and sections of a message, as dig prints them after `;; Got answer:`.
pub fn message_text(m: &Message) -> String {
    let mut out = String::new();
    let _ = writeln!(out, ";; ->>HEADER<<- opcode: QUERY, status: {}, id: {}", m.rcode, m.id);
    let mut flags = Vec::new();
    for (on, name) in [
        (m.flags.response, "qr"),
        (m.flags.authoritative, "aa"),
        (m.flags.truncated, "tc"),
        (m.flags.recursion_desired, "rd"),
        (m.flags.recursion_available, "ra"),
    ] {
        if on {
            flags.push(name);
        }
    }
    let additional = m.additional.len() + usize::from(m.edns_udp_size.is_some());
    let _ = writeln!(
        out,
        ";; flags: {}; QUERY: {}, ANSWER: {}, AUTHORITY: {}, ADDITIONAL: {}",
        flags.join(" "),
        m.questions.len(),
        m.answers.len(),
        m.authority.len(),
        additional
    );
    if m.flags.recursion_desired && !m.flags.recursion_available {
        out.push_str(";; WARNING: recursion requested but not available\n");
    }
    out.push('\n');
    if let Some(size) = m.edns_udp_size {
        let _ = writeln!(out, ";; OPT PSEUDOSECTION:\n; EDNS: version: 0, flags:; udp: {size}");
    }
    out.push_str(";; QUESTION SECTION:\n");
    for q in &m.questions {
        let _ = writeln!(out, ";{}\t\tIN\t{}", fqdn(&q.name), q.qtype);
    }
    for (title, records) in
        [("ANSWER", &m.answers), ("AUTHORITY", &m.authority), ("ADDITIONAL", &m.additional)]
    {
        if !records.is_empty() {
            let _ = writeln!(out, "\n;; {title} SECTION:");
            for r in records {
                let _ = writeln!(out, "{r}");
            }
        }
    }
    out
}

fn footer(record: &QueryRecord) -> String {
    let (at, _) = record.response.as_ref().expect("called with an answered query");
    let ms = at.saturating_since(record.sent_at).as_millis();
    format!(
        ";; Query time: {ms} msec\n;; SERVER: {ip}#{port}({ip}) ({t})\n;; MSG SIZE  rcvd: {size}\n",
        ip = record.server.ip(),
        port = record.server.port(),
        t = record.transport,
        size = record.response_size
    )
}

/// `nslookup NAME`'s output for a finished [`Lookup`] of `name` (the name as typed).
pub fn nslookup_text(lookup: &Lookup, name: &str) -> String {
    let mut out = String::new();
    let Some(first) = lookup.queries().first() else {
        return format!(";; no nameserver to ask for {name}\n");
    };
    let server = first.server;
    let _ =
        write!(out, "Server:\t\t{}\nAddress:\t{}#{}\n\n", server.ip(), server.ip(), server.port());
    match lookup.result() {
        Some(Ok(answer)) => {
            let authoritative = lookup
                .queries()
                .iter()
                .filter_map(|r| r.response.as_ref())
                .filter(|(_, m)| m.question().is_some_and(|q| q.name == answer.name))
                .all(|(_, m)| m.flags.authoritative);
            if !authoritative {
                out.push_str("Non-authoritative answer:\n");
            }
            let mut seen_cname = std::collections::BTreeSet::new();
            for r in &answer.records {
                if let RData::Cname(t) = &r.data
                    && seen_cname.insert(r.name.clone())
                {
                    let _ = writeln!(out, "{}\tcanonical name = {}", r.name, fqdn(t));
                }
            }
            for r in &answer.records {
                if r.data.record_type() == RecordType::A || r.data.record_type() == RecordType::Aaaa
                {
                    let _ = writeln!(out, "Name:\t{}\nAddress: {}", r.name, r.data);
                }
            }
        }
        Some(Err(e)) => {
            let rcode = lookup
                .queries()
                .iter()
                .rev()
                .find_map(|r| r.response.as_ref().map(|(_, m)| m.rcode));
            match (e, rcode) {
                (LookupError::NoData, _) => {
                    let _ = writeln!(out, "*** Can't find {name}: No answer");
                }
                (LookupError::TryAgain, None | Some(Rcode::NoError)) => {
                    let refused: Vec<&QueryRecord> =
                        lookup.queries().iter().filter(|r| r.refused).collect();
                    for r in &refused {
                        let _ = writeln!(
                            out,
                            ";; communications error to {}#{}: connection refused",
                            r.server.ip(),
                            r.server.port()
                        );
                    }
                    out.push_str(if refused.is_empty() {
                        ";; connection timed out; no servers could be reached\n"
                    } else {
                        ";; no servers could be reached\n"
                    });
                }
                (_, Some(rcode)) => {
                    let _ = writeln!(out, "** server can't find {name}: {rcode}");
                }
                (_, None) => {
                    let _ = writeln!(out, "** server can't find {name}: {e}");
                }
            }
        }
        None => out.push_str(";; (no answer yet)\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::message::{Question, Record};

    #[test]
    fn message_text_is_digs_layout() {
        let q = Message::query(4660, Question::new("web.prod.svc.cluster.local", RecordType::A));
        let mut m = Message::response_to(&q);
        m.flags.authoritative = true;
        m.answers.push(Record::new(
            "web.prod.svc.cluster.local",
            30,
            RData::A([10, 96, 0, 20].into()),
        ));
        let expected = "\
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4660
;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 0
;; WARNING: recursion requested but not available

;; QUESTION SECTION:
;web.prod.svc.cluster.local.\t\tIN\tA

;; ANSWER SECTION:
web.prod.svc.cluster.local.\t30\tIN\tA\t10.96.0.20
";
        assert_eq!(message_text(&m), expected);
    }
}
