//! The Corefile subset kns understands, parsed with line numbers.
//!
//! A Corefile is a list of server blocks (`ZONE[:PORT]... { directives }`); each directive is
//! a line `name args...` optionally followed by a `{ ... }` block of option lines. kns honours:
//!
//! - `kubernetes [ZONES...] { pods disabled|insecure|verified; fallthrough [ZONES...]; ttl N;
//!   namespaces NS...; endpoint_pod_names }` (`endpoint`, `tls`, `kubeconfig` accepted and
//!   ignored: there is one emulated API);
//! - `hosts [FILE [ZONES...]] { IP NAME...; ttl N; fallthrough [ZONES...]; no_reverse }` (inline
//!   entries only: kns opens no files, so FILE contributes nothing; `reload` ignored);
//! - `forward FROM TO... { ... }` where TO is an address (`IP`, `IP:PORT`, `dns://IP`) or a
//!   resolv.conf path, which stands for the upstream the server is given (option lines ignored);
//! - `cache [TTL] { disable success|denial [ZONES...] }` (the TTL caps what is cached; other
//!   options ignored);
//! - accepted and ignored by name: `errors`, `health`, `ready`, `loop`, `reload`,
//!   `loadbalance` (answers keep their deterministic order), `prometheus`, `log`, `debug`.
//!
//! Anything else is an error naming its line. Plugin order is CoreDNS's fixed order
//! (`cache`, `hosts`, `kubernetes`, `forward`), not the order written, as in CoreDNS.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use kns_core::Cluster;

use super::message::normalize;
use super::zone::{PodMode, ZoneConfig};

/// Where the Corefile came from, for messages.
pub const CONFIG_MAP: &str = "kube-system/coredns";

/// A Corefile problem, located by line (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Corefile:{line}: {message}")]
pub struct CorefileError {
    /// The line of the offending token.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed Corefile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corefile {
    /// The server blocks, in order.
    pub blocks: Vec<ServerBlock>,
}

/// One server block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBlock {
    /// The zones it serves (normalised; the root is `""`).
    pub zones: Vec<String>,
    /// The port it listens on.
    pub port: u16,
    /// The line of its key.
    pub line: usize,
    /// The `kubernetes` plugin.
    pub kubernetes: Option<KubernetesPlugin>,
    /// The `hosts` plugin.
    pub hosts: Option<HostsPlugin>,
    /// The `forward` plugin.
    pub forward: Option<ForwardPlugin>,
    /// The `cache` plugin.
    pub cache: Option<CachePlugin>,
    /// Directives accepted and ignored, in order.
    pub ignored: Vec<String>,
}

/// The `kubernetes` plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesPlugin {
    /// The zone settings.
    pub zone: ZoneConfig,
    /// `fallthrough`: zones whose NXDOMAIN answers go to the next plugin instead (`Some(vec![])`:
    /// every zone).
    pub fallthrough: Option<Vec<String>>,
}

/// The `hosts` plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsPlugin {
    /// The zones it answers for (`[""]`: all).
    pub zones: Vec<String>,
    /// Inline entries: an address and its names, in order.
    pub entries: Vec<(IpAddr, Vec<String>)>,
    /// The TTL of its answers (3600 by default).
    pub ttl: u32,
    /// Whether it answers PTR questions for its entries.
    pub reverse: bool,
    /// `fallthrough` zones (`Some(vec![])`: every zone).
    pub fallthrough: Option<Vec<String>>,
}

/// An upstream `forward` sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A fixed address.
    Addr(SocketAddr),
    /// The nameservers of this resolv.conf: in kns, the upstream the server is configured with.
    ResolvConf(String),
}

/// The `forward` plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardPlugin {
    /// The zone whose names it forwards (`""`: all).
    pub from: String,
    /// The upstreams, tried in order on timeout.
    pub to: Vec<Upstream>,
}

/// The `cache` plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePlugin {
    /// The largest TTL an entry keeps (3600 by default).
    pub max_ttl: u32,
    /// Zones whose positive answers are not cached.
    pub disable_success: Vec<String>,
    /// Zones whose negative answers are not cached.
    pub disable_denial: Vec<String>,
}

/// Directives accepted and ignored.
const IGNORED: &[&str] =
    &["errors", "health", "ready", "loop", "reload", "loadbalance", "prometheus", "log", "debug"];

impl Corefile {
    /// Parses Corefile text.
    pub fn parse(text: &str) -> Result<Corefile, CorefileError> {
        let lines = tokenize(text)?;
        let mut p = Parser { lines, at: 0 };
        let mut blocks = Vec::new();
        while p.at < p.lines.len() {
            blocks.push(p.server_block()?);
        }
        if blocks.is_empty() {
            return Err(CorefileError { line: 1, message: "no server block".into() });
        }
        Ok(Corefile { blocks })
    }

    /// kubeadm's default Corefile for `domain`.
    pub fn kubeadm_text(domain: &str) -> String {
        format!(
            ".:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes {domain} in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :9153
    forward . /etc/resolv.conf {{
       max_concurrent 1000
    }}
    cache 30
    loop
    reload
    loadbalance
}}
"
        )
    }

    /// The Corefile of `cluster`: the `Corefile` key of the `coredns` ConfigMap in
    /// `kube-system` when there is one, else kubeadm's default for the cluster domain.
    pub fn for_cluster(cluster: &Cluster) -> Result<Corefile, CorefileError> {
        let configured = cluster
            .config_maps
            .iter()
            .find(|c| c.name == "coredns" && cluster.namespace(c.namespace).name == "kube-system");
        match configured.and_then(|c| c.data.get("Corefile")) {
            Some(text) => Corefile::parse(text),
            None => Corefile::parse(&Corefile::kubeadm_text(&cluster.config.domain)),
        }
    }

    /// The block serving `name` on `port`: the one with the longest zone containing it.
    pub fn block_for(&self, name: &str, port: u16) -> Option<&ServerBlock> {
        self.blocks
            .iter()
            .filter(|b| b.port == port)
            .filter_map(|b| {
                let best = b
                    .zones
                    .iter()
                    .filter(|z| super::records::in_zone(name, z))
                    .map(String::len)
                    .max()?;
                Some((best, b))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, b)| b)
    }
}

impl fmt::Display for ServerBlock {
    /// A one-line summary: zones, port and the plugins in effect.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let zones: Vec<String> = self.zones.iter().map(|z| super::message::fqdn(z)).collect();
        write!(f, "{}:{}", zones.join(" "), self.port)?;
        for (on, name) in [
            (self.cache.is_some(), "cache"),
            (self.hosts.is_some(), "hosts"),
            (self.kubernetes.is_some(), "kubernetes"),
            (self.forward.is_some(), "forward"),
        ] {
            if on {
                write!(f, " {name}")?;
            }
        }
        Ok(())
    }
}

/// A token and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    line: usize,
}

/// Splits the text into lines of tokens; `{` and `}` are tokens of their own.
fn tokenize(text: &str) -> Result<Vec<Vec<Token>>, CorefileError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut tokens = Vec::new();
        let mut chars = raw.chars().peekable();
        let mut word = String::new();
        let flush = |word: &mut String, tokens: &mut Vec<Token>| {
            if !word.is_empty() {
                tokens.push(Token { text: std::mem::take(word), line });
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '#' => break,
                '"' => {
                    let mut quoted = String::new();
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some(c) => quoted.push(c),
                            None => {
                                return Err(CorefileError {
                                    line,
                                    message: "unterminated quoted string".into(),
                                });
                            }
                        }
                    }
                    word.push_str(&quoted);
                }
                '{' | '}' => {
                    flush(&mut word, &mut tokens);
                    tokens.push(Token { text: c.to_string(), line });
                }
                c if c.is_whitespace() => flush(&mut word, &mut tokens),
                c => word.push(c),
            }
        }
        flush(&mut word, &mut tokens);
        if !tokens.is_empty() {
            out.push(tokens);
        }
    }
    // A `{` alone on a line belongs to the line before it (`key\n{`), and a line may end with
    // `}` after other tokens: split those so each line is `words [{]` or `}`.
    let mut lines: Vec<Vec<Token>> = Vec::new();
    for tokens in out {
        let mut current: Vec<Token> = Vec::new();
        for t in tokens {
            match t.text.as_str() {
                "{" => {
                    current.push(t);
                    if let Some(prev) = lines.last_mut().filter(|_| current.len() == 1)
                        && prev.last().is_some_and(|l| l.text != "{" && l.text != "}")
                    {
                        prev.append(&mut current);
                    } else {
                        lines.push(std::mem::take(&mut current));
                    }
                }
                "}" => {
                    if !current.is_empty() {
                        lines.push(std::mem::take(&mut current));
                    }
                    lines.push(vec![t]);
                }
                _ => current.push(t),
            }
        }
        if !current.is_empty() {
            lines.push(current);
        }
    }
    Ok(lines)
}

/// A directive line and the option lines of its block.
struct Directive {
    name: String,
    args: Vec<String>,
    line: usize,
    block: Vec<Vec<Token>>,
}

struct Parser {
    lines: Vec<Vec<Token>>,
    at: usize,
}

fn err(line: usize, message: impl Into<String>) -> CorefileError {
    CorefileError { line, message: message.into() }
}

impl Parser {
    fn server_block(&mut self) -> Result<ServerBlock, CorefileError> {
        let head = self.lines[self.at].clone();
        self.at += 1;
        let line = head[0].line;
        let Some(last) = head.last().filter(|t| t.text == "{") else {
            return Err(err(
                line,
                format!("expected `{{` after server block key `{}`", head[0].text),
            ));
        };
        let keys: Vec<&Token> = head[..head.len() - 1].iter().collect();
        if keys.is_empty() || keys.iter().any(|k| k.text == "}") {
            return Err(err(last.line, "a server block needs a key such as `.:53`"));
        }
        let mut zones = Vec::new();
        let mut port = None;
        for key in keys.iter().flat_map(|k| k.text.split(',')).filter(|s| !s.is_empty()) {
            let (zone, p) = parse_key(key)
                .ok_or_else(|| err(line, format!("invalid server block key `{key}`")))?;
            if port.is_some_and(|q| q != p) {
                return Err(err(line, "all keys of a server block must share one port"));
            }
            port = Some(p);
            zones.push(zone);
        }
        let mut block = ServerBlock {
            zones,
            port: port.unwrap_or(53),
            line,
            kubernetes: None,
            hosts: None,
            forward: None,
            cache: None,
            ignored: Vec::new(),
        };
        loop {
            let Some(tokens) = self.lines.get(self.at).cloned() else {
                return Err(err(line, "server block is not closed with `}`"));
            };
            if tokens[0].text == "}" {
                self.at += 1;
                return Ok(block);
            }
            let d = self.directive()?;
            let seen = match d.name.as_str() {
                "kubernetes" => block.kubernetes.replace(kubernetes(&d, &block.zones)?).is_some(),
                "hosts" => block.hosts.replace(hosts(&d)?).is_some(),
                "forward" => block.forward.replace(forward(&d)?).is_some(),
                "cache" => block.cache.replace(cache(&d)?).is_some(),
                name if IGNORED.contains(&name) => {
                    block.ignored.push(d.name.clone());
                    false
                }
                other => {
                    return Err(err(
                        d.line,
                        format!(
                            "unknown directive `{other}` (kns knows kubernetes, hosts, forward, cache and ignores {})",
                            IGNORED.join(", ")
                        ),
                    ));
                }
            };
            if seen {
                return Err(err(
                    d.line,
                    format!("directive `{}` given twice in one server block", d.name),
                ));
            }
        }
    }

    /// Reads one directive line and, if it opens one, its block.
    fn directive(&mut self) -> Result<Directive, CorefileError> {
        let tokens = self.lines[self.at].clone();
        self.at += 1;
        let line = tokens[0].line;
        if tokens[0].text == "{" {
            return Err(err(line, "unexpected `{`"));
        }
        let opens = tokens.last().is_some_and(|t| t.text == "{");
        let words = &tokens[..tokens.len() - usize::from(opens)];
        let mut d = Directive {
            name: words[0].text.clone(),
            args: words[1..].iter().map(|t| t.text.clone()).collect(),
            line,
            block: Vec::new(),
        };
        if opens {
            let mut depth = 1;
            loop {
                let Some(l) = self.lines.get(self.at).cloned() else {
                    return Err(err(
                        line,
                        format!("block of `{}` is not closed with `}}`", d.name),
                    ));
                };
                self.at += 1;
                if l[0].text == "}" {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                } else if l.last().is_some_and(|t| t.text == "{") {
                    depth += 1;
                }
                d.block.push(l);
            }
        }
        Ok(d)
    }
}

/// `[dns://]ZONE[:PORT]` → (normalised zone, port).
fn parse_key(key: &str) -> Option<(String, u16)> {
    let key = key.strip_prefix("dns://").unwrap_or(key);
    let (zone, port) = match key.rsplit_once(':') {
        Some((z, p)) => (z, p.parse().ok()?),
        None => (key, 53),
    };
    if zone.is_empty() {
        return None;
    }
    Some((normalize(zone), port))
}

fn number(text: &str, line: usize, what: &str) -> Result<u32, CorefileError> {
    text.parse().map_err(|_| err(line, format!("{what} must be a number of seconds, not `{text}`")))
}

fn zones_of(args: &[String]) -> Vec<String> {
    args.iter().map(|z| normalize(z)).collect()
}

fn kubernetes(d: &Directive, block_zones: &[String]) -> Result<KubernetesPlugin, CorefileError> {
    let zones = if d.args.is_empty() { block_zones.to_vec() } else { zones_of(&d.args) };
    let is_reverse = |z: &str| z.ends_with("in-addr.arpa") || z.ends_with("ip6.arpa");
    let Some(domain) = zones.iter().find(|z| !is_reverse(z)).cloned() else {
        return Err(err(d.line, "kubernetes needs a cluster domain among its zones"));
    };
    if domain.is_empty() {
        return Err(err(d.line, "kubernetes cannot serve the root zone; name the cluster domain"));
    }
    let mut zone = ZoneConfig::new(&domain);
    zone.reverse_zones = zones.iter().filter(|z| is_reverse(z)).cloned().collect();
    let mut fallthrough = None;
    for l in &d.block {
        let (name, args) = (l[0].text.as_str(), &l[1..]);
        let args: Vec<String> = args.iter().map(|t| t.text.clone()).collect();
        match name {
            "pods" => {
                zone.pods = match args.first().map(String::as_str) {
                    Some("disabled") => PodMode::Disabled,
                    Some("insecure") => PodMode::Insecure,
                    Some("verified") => PodMode::Verified,
                    _ => return Err(err(l[0].line, "pods takes disabled, insecure or verified")),
                }
            }
            "fallthrough" => fallthrough = Some(zones_of(&args)),
            "ttl" => {
                let ttl = number(args.first().map_or("", String::as_str), l[0].line, "ttl")?;
                if ttl > 3600 {
                    return Err(err(l[0].line, "ttl must be at most 3600"));
                }
                zone.ttl = ttl;
            }
            "namespaces" => zone.namespaces = Some(args.into_iter().collect::<BTreeSet<_>>()),
            "endpoint_pod_names" => zone.endpoint_pod_names = true,
            "endpoint" | "tls" | "kubeconfig" => {}
            other => return Err(err(l[0].line, format!("unknown kubernetes option `{other}`"))),
        }
    }
    Ok(KubernetesPlugin { zone, fallthrough })
}

fn hosts(d: &Directive) -> Result<HostsPlugin, CorefileError> {
    let zones = if d.args.len() > 1 { zones_of(&d.args[1..]) } else { vec![String::new()] };
    let mut h =
        HostsPlugin { zones, entries: Vec::new(), ttl: 3600, reverse: true, fallthrough: None };
    for l in &d.block {
        let name = l[0].text.as_str();
        let args: Vec<String> = l[1..].iter().map(|t| t.text.clone()).collect();
        if let Ok(ip) = name.parse::<IpAddr>() {
            if args.is_empty() {
                return Err(err(l[0].line, format!("hosts entry `{ip}` has no name")));
            }
            h.entries.push((ip, zones_of(&args)));
            continue;
        }
        match name {
            "ttl" => h.ttl = number(args.first().map_or("", String::as_str), l[0].line, "ttl")?,
            "fallthrough" => h.fallthrough = Some(zones_of(&args)),
            "no_reverse" => h.reverse = false,
            "reload" => {}
            other => {
                return Err(err(l[0].line, format!("unknown hosts option or address `{other}`")));
            }
        }
    }
    Ok(h)
}

fn forward(d: &Directive) -> Result<ForwardPlugin, CorefileError> {
    let Some((from, to)) = d.args.split_first().filter(|(_, to)| !to.is_empty()) else {
        return Err(err(d.line, "forward needs a zone and at least one upstream"));
    };
    let mut upstreams = Vec::new();
    for t in to {
        let bare = t.strip_prefix("dns://").unwrap_or(t);
        let up = if bare.starts_with('/') {
            Upstream::ResolvConf(bare.to_string())
        } else if let Ok(ip) = bare.parse::<IpAddr>() {
            Upstream::Addr(SocketAddr::new(ip, 53))
        } else if let Ok(sa) = bare.parse::<SocketAddr>() {
            Upstream::Addr(sa)
        } else {
            return Err(err(
                d.line,
                format!("invalid upstream `{t}` (an address or a resolv.conf path)"),
            ));
        };
        upstreams.push(up);
    }
    for l in &d.block {
        let name = l[0].text.as_str();
        let known = [
            "max_concurrent",
            "max_fails",
            "expire",
            "policy",
            "health_check",
            "force_tcp",
            "prefer_udp",
            "except",
            "tls",
            "tls_servername",
        ];
        if !known.contains(&name) {
            return Err(err(l[0].line, format!("unknown forward option `{name}`")));
        }
    }
    Ok(ForwardPlugin { from: normalize(from), to: upstreams })
}

fn cache(d: &Directive) -> Result<CachePlugin, CorefileError> {
    let max_ttl = match d.args.first() {
        Some(t) => number(t, d.line, "cache TTL")?,
        None => 3600,
    };
    let mut c = CachePlugin { max_ttl, disable_success: Vec::new(), disable_denial: Vec::new() };
    for l in &d.block {
        let args: Vec<String> = l[1..].iter().map(|t| t.text.clone()).collect();
        match l[0].text.as_str() {
            "disable" => {
                let zones = if args.len() > 1 { zones_of(&args[1..]) } else { vec![String::new()] };
                match args.first().map(String::as_str) {
                    Some("success") => c.disable_success.extend(zones),
                    Some("denial") => c.disable_denial.extend(zones),
                    _ => return Err(err(l[0].line, "disable takes success or denial")),
                }
            }
            "success" | "denial" | "prefetch" | "serve_stale" | "servfail" | "keepttl" => {}
            other => return Err(err(l[0].line, format!("unknown cache option `{other}`"))),
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadm_default_parses() {
        let c = Corefile::parse(&Corefile::kubeadm_text("cluster.local")).unwrap();
        assert_eq!(c.blocks.len(), 1);
        let b = &c.blocks[0];
        assert_eq!((b.zones.clone(), b.port), (vec![String::new()], 53));
        let k = b.kubernetes.as_ref().unwrap();
        assert_eq!(k.zone, ZoneConfig::kubeadm("cluster.local"));
        assert_eq!(k.fallthrough, Some(vec!["in-addr.arpa".to_string(), "ip6.arpa".to_string()]));
        assert_eq!(
            b.forward.as_ref().unwrap().to,
            [Upstream::ResolvConf("/etc/resolv.conf".into())]
        );
        assert_eq!(b.cache.as_ref().unwrap().max_ttl, 30);
        assert_eq!(
            b.ignored,
            ["errors", "health", "ready", "prometheus", "loop", "reload", "loadbalance"]
        );
        assert_eq!(b.to_string(), ".:53 cache kubernetes forward");
    }

    #[test]
    fn hosts_forward_and_several_blocks() {
        let text = "# custom\n.:53 {\n  hosts {\n    10.0.0.1 legacy.corp Legacy2.corp\n    fallthrough\n  }\n  kubernetes k8s.test\n  forward . 203.0.113.53:5353 8.8.8.8\n}\ncorp.example:53 {\n  forward . 192.0.2.1\n}\n";
        let c = Corefile::parse(text).unwrap();
        let h = c.blocks[0].hosts.as_ref().unwrap();
        assert_eq!(h.entries[0].1, ["legacy.corp", "legacy2.corp"]);
        assert_eq!(h.fallthrough, Some(vec![]));
        assert_eq!(c.blocks[0].kubernetes.as_ref().unwrap().zone.domain, "k8s.test");
        assert_eq!(
            c.blocks[0].forward.as_ref().unwrap().to,
            [
                Upstream::Addr("203.0.113.53:5353".parse().unwrap()),
                Upstream::Addr("8.8.8.8:53".parse().unwrap())
            ]
        );
        assert_eq!(c.block_for("a.corp.example", 53).unwrap().line, 10);
        assert_eq!(c.block_for("web.k8s.test", 53).unwrap().line, 2);
        assert!(c.block_for("web.k8s.test", 5353).is_none());
    }

    #[test]
    fn errors_name_their_line() {
        let cases = [
            (".:53 {\n  errors\n  rewrite name foo bar\n}\n", 3, "unknown directive `rewrite`"),
            (".:53 {\n  kubernetes cluster.local {\n    pods sometimes\n  }\n}\n", 3, "pods takes"),
            (".:53 {\n  cache thirty\n}\n", 2, "cache TTL must be a number"),
            (".:53 {\n  forward .\n}\n", 2, "forward needs"),
            (".:53 {\n  errors\n", 1, "not closed"),
            (".:53 {\n  cache 30\n  cache 10\n}\n", 3, "given twice"),
            (".:53 {\n  hosts {\n    10.0.0.1\n  }\n}\n", 3, "has no name"),
            ("\n\n.:fiftythree {\n}\n", 3, "invalid server block key"),
            (".:53 {\n  kubernetes in-addr.arpa\n}\n", 2, "cluster domain"),
        ];
        for (text, line, msg) in cases {
            let e = Corefile::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(msg), "{text:?}: {e}");
        }
        assert_eq!(
            Corefile::parse(".:53 {\n  bogus\n}\n").unwrap_err().to_string(),
            "Corefile:2: unknown directive `bogus` (kns knows kubernetes, hosts, forward, cache and ignores errors, health, ready, loop, reload, loadbalance, prometheus, log, debug)"
        );
    }

    #[test]
    fn braces_on_their_own_lines_and_comments() {
        let text = ".:53\n{\n  kubernetes cluster.local # the cluster\n  {\n    ttl 10\n  }\n}\n";
        let c = Corefile::parse(text).unwrap();
        assert_eq!(c.blocks[0].kubernetes.as_ref().unwrap().zone.ttl, 10);
    }

    #[test]
    fn the_config_map_wins_over_the_default() {
        let mut cluster = crate::dns::testing::sample_cluster();
        assert!(Corefile::for_cluster(&cluster).unwrap().blocks[0].kubernetes.is_some());
        let ks = cluster.namespace_by_name("kube-system").unwrap().id;
        cluster.config_maps.push(kns_core::model::ConfigMap {
            name: "coredns".into(),
            namespace: ks,
            data: [("Corefile".to_string(), ".:53 {\n  forward . 9.9.9.9\n}\n".to_string())].into(),
        });
        let c = Corefile::for_cluster(&cluster).unwrap();
        assert!(c.blocks[0].kubernetes.is_none());
    }
}
