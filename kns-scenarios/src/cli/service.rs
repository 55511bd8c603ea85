//! `kns dig`, `kns curl`, and the name resolution of `kns probe`: Services and cluster DNS
//! seen from inside a pod.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use kns_sim::cluster::{ClusterNet, DnsLookup, Source};
use kns_sim::dns::RecordType;
use kns_sim::dns::message::fqdn;
use kns_sim::stack::apps::{HttpClient, HttpClientConfig};

use super::cluster::{build, pod_source};
use super::error::CliError;

/// `kns dig --from SOURCE NAME [TYPE]`: dig's text for one question to the source's
/// nameserver (the kube-dns Service for pods).
pub fn dig(
    files: &[PathBuf],
    from: &str,
    name: &str,
    qtype: Option<&str>,
    seed: u64,
) -> Result<String, CliError> {
    let qtype = match qtype {
        None => RecordType::A,
        Some(t) => RecordType::parse(t)
            .ok_or_else(|| CliError::Usage(format!("unknown record type `{t}`")))?,
    };
    let mut net = build(files, seed)?;
    let source = pod_source(net.cluster(), from)?;
    let (text, _) = net.dig(source, name, qtype).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(text)
}

/// Splits `http://HOST[:PORT]/PATH` into what precedes the host, the host, and the rest.
pub(crate) fn split_url(url: &str) -> (&str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.rfind(':').unwrap_or(authority.len())
    };
    (&url[..start], &authority[..host_end], &url[start + host_end..])
}

/// Resolves `name` from `source` and renders the DNS exchange in dig-like lines; the first
/// address on success.
pub fn resolve(
    net: &mut ClusterNet,
    source: Source,
    name: &str,
    out: &mut String,
) -> Result<IpAddr, CliError> {
    let lookup = net.lookup(source, name).map_err(|e| CliError::Usage(e.to_string()))?;
    out.push_str(&query_lines(&lookup));
    match &lookup.result {
        Ok(a) => a
            .addresses
            .first()
            .copied()
            .ok_or_else(|| CliError::Usage(format!("{name}: no address"))),
        Err(e) => Err(CliError::Usage(format!("could not resolve {name}: {e}"))),
    }
}

/// One line per query and one per answer record.
fn query_lines(lookup: &DnsLookup) -> String {
    let mut out = String::new();
    for q in &lookup.queries {
        let Some(question) = q.query.question() else { continue };
        let _ = write!(
            out,
            "dns: {} {} @{} ({}): ",
            fqdn(&question.name),
            question.qtype,
            q.server,
            q.transport
        );
        match &q.response {
            Some((_, m)) => {
                let _ = writeln!(out, "{} ({} answers)", m.rcode, m.answers.len());
                for r in &m.answers {
                    let _ = writeln!(out, "  {r}");
                }
            }
            None if q.refused => out.push_str("connection refused\n"),
            None => out.push_str("no answer\n"),
        }
    }
    out
}

/// `kns curl --from SOURCE [-H 'Name: value']... URL`: resolves the URL's host through the
/// cluster DNS, then GETs it with the extra headers; prints the status line and the body.
pub fn curl(
    files: &[PathBuf],
    from: &str,
    url: &str,
    headers: &[String],
    seed: u64,
) -> Result<String, CliError> {
    let headers = headers
        .iter()
        .map(|h| match h.split_once(':') {
            Some((n, v)) if !n.trim().is_empty() => {
                Ok((n.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(CliError::Usage(format!("header `{h}`: write `Name: value`"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut net = build(files, seed)?;
    let source = pod_source(net.cluster(), from)?;
    let (scheme, host, rest) = split_url(url);
    let mut dns = String::new();
    let target = if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        url.to_string()
    } else {
        let ip = resolve(&mut net, source, host, &mut dns)?;
        let literal = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
        format!("{scheme}{literal}{rest}")
    };
    let ns = net.source_ns(source).map_err(|e| CliError::Usage(e.to_string()))?;
    let config = HttpClientConfig { headers, ..HttpClientConfig::get(&target) };
    let limit = config.max_time + Duration::from_secs(5);
    let result = net
        .run_app(ns, HttpClient::new(config), limit, |c| {
            c.exit_code().map(|code| {
                let status = c.reply().map(|r| format!("{} {} {}", r.version, r.status, r.reason));
                let body = c.reply().map(|r| String::from_utf8_lossy(&r.body).into_owned());
                (code, status, body, c.output().to_string())
            })
        })
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let Some((code, status, body, output)) = result else {
        return Err(CliError::Usage(format!("curl {url}: did not finish")));
    };
    match (code, status, body) {
        (0, Some(status), Some(body)) => {
            let mut out = String::new();
            let _ = writeln!(out, "{status}");
            out.push_str(&body);
            if !body.ends_with('\n') {
                out.push('\n');
            }
            Ok(out)
        }
        _ => Err(CliError::Usage(format!("{dns}{}", output.trim_end()))),
    }
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_around_the_host() {
        assert_eq!(split_url("http://web.prod:8080/a?b"), ("http://", "web.prod", ":8080/a?b"));
        assert_eq!(split_url("web/x"), ("", "web", "/x"));
        assert_eq!(split_url("http://[fd00::1]:80/"), ("http://", "[fd00::1]", ":80/"));
        assert_eq!(split_url("http://api"), ("http://", "api", ""));
    }
}
