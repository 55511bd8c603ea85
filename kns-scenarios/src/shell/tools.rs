//! The Linux tools inside one network namespace of the living cluster: the configuration
//! commands (`ip`, `iptables`, `conntrack`, `sysctl`, `bridge`, `tc`) go to kns-sim's
//! executor; `ping`, `traceroute`, `curl` and `nc` run as applications on the namespace's
//! socket stack; `nslookup` and `dig` ask the cluster DNS with the namespace's resolv.conf.
//!
//! As in `kns net`, a tool that ran is a result even when the network said no (lost pings, a
//! refused connection, NXDOMAIN); only what cannot run at all is an error.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kns_sim::cluster::{ClusterNet, Source};
use kns_sim::cmd::{Command, NcMode, PingOpts, parse_command};
use kns_sim::dns::RecordType;
use kns_sim::net::NetnsId;
use kns_sim::stack::SmolStack;
use kns_sim::stack::apps::{
    HttpClient, HttpClientConfig, Nc, NcConfig, Ping, PingConfig, TcpEcho, Traceroute,
    TracerouteConfig, UdpEcho,
};
use kns_sim::stack::ports::Transport;

use super::parse::join;

/// Virtual time a tool may take beyond its own timeouts before the shell gives up on it.
const SLACK: Duration = Duration::from_secs(5);

/// Where a tool runs: a network namespace, and who it is for name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The namespace.
    pub ns: NetnsId,
    /// The pod, node or internet host of that namespace (`None`: a namespace of the fabric,
    /// such as the router, where names do not resolve).
    pub source: Option<Source>,
}

/// Runs `words` (a tool and its arguments) at `place`; `Err` is one line saying why it could
/// not run.
pub fn run(net: &mut ClusterNet, place: &Place, words: &[String]) -> Result<String, String> {
    match words.first().map(String::as_str) {
        Some("nslookup") => nslookup(net, place, &words[1..]),
        Some("dig") => dig(net, place, &words[1..]),
        _ => {
            let command = parse_command(&join(words))
                .map_err(|e| e.message)?
                .ok_or_else(|| "nothing to run".to_string())?;
            exec(net, place, command)
        }
    }
}

fn exec(net: &mut ClusterNet, place: &Place, command: Command) -> Result<String, String> {
    let here = net.sim().netns_name(place.ns).to_string();
    let netns = |given: Option<String>| Some(given.unwrap_or_else(|| here.clone()));
    match command {
        Command::Ip { netns: n, cmd } => {
            net.sim_mut().exec(&Command::Ip { netns: netns(n), cmd }).map_err(|e| e.to_string())
        }
        Command::Sysctl { netns: n, key, value } => net
            .sim_mut()
            .exec(&Command::Sysctl { netns: netns(n), key, value })
            .map_err(|e| e.to_string()),
        Command::Iptables { netns: n, args } => net
            .sim_mut()
            .exec(&Command::Iptables { netns: netns(n), args })
            .map_err(|e| e.to_string()),
        Command::Conntrack { netns: n } => {
            net.sim_mut().exec(&Command::Conntrack { netns: netns(n) }).map_err(|e| e.to_string())
        }
        Command::Bridge { netns: n, args } => net
            .sim_mut()
            .exec(&Command::Bridge { netns: netns(n), args })
            .map_err(|e| e.to_string()),
        Command::Tc { netns: n, args } => {
            net.sim_mut().exec(&Command::Tc { netns: netns(n), args }).map_err(|e| e.to_string())
        }
        Command::Sleep(d) => {
            net.sim_mut().run_for(d);
            Ok(String::new())
        }
        Command::Ping { netns: n, opts, target } => {
            let place = moved(net, place, n)?;
            ping(net, &place, &opts, &target)
        }
        Command::Traceroute { netns: n, max_hops, target } => {
            let place = moved(net, place, n)?;
            traceroute(net, &place, max_hops, &target)
        }
        Command::Nc { netns: n, mode } => {
            let place = moved(net, place, n)?;
            nc(net, &place, &mode)
        }
        Command::Curl { netns: n, url, max_time } => {
            let place = moved(net, place, n)?;
            curl(net, &place, &url, max_time)
        }
    }
}

/// The place of a tool that named its own namespace (`ping -n`, `ip netns exec` inside).
fn moved(net: &ClusterNet, place: &Place, netns: Option<String>) -> Result<Place, String> {
    match netns {
        None => Ok(place.clone()),
        Some(name) => place_of_netns(net, &name),
    }
}

/// The place of a namespace given by name (`node-1`, `default.web`, `internet`, `router`).
pub fn place_of_netns(net: &ClusterNet, name: &str) -> Result<Place, String> {
    let ns = net.sim().netns(Some(name)).map_err(|e| e.to_string())?;
    Ok(Place { ns, source: source_of(net, ns) })
}

/// The pod, node or internet host whose traffic starts in `ns`.
pub fn source_of(net: &ClusterNet, ns: NetnsId) -> Option<Source> {
    if let Some(n) = net.nodes().iter().find(|n| n.ns == ns) {
        return Some(Source::Node(n.id));
    }
    if net.outside().internet == ns {
        return Some(Source::Internet);
    }
    net.cluster()
        .pods_sorted()
        .into_iter()
        .find(|p| !net.cluster().pod(*p).host_network && net.pod_ns(*p) == Some(ns))
        .map(Source::Pod)
}

/// An address, or a name resolved as the place's resolver would; `Err` holds the tool's
/// own "unknown host" line, a result rather than an error.
fn resolve(
    net: &mut ClusterNet,
    place: &Place,
    tool: &str,
    target: &str,
) -> Result<IpAddr, String> {
    if let Ok(ip) = target.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(ip);
    }
    let unknown = || format!("{tool}: {target}: Name or service not known\n");
    let Some(source) = place.source else { return Err(unknown()) };
    match net.lookup(source, target) {
        Ok(lookup) => match lookup.result {
            Ok(answer) => answer.addresses.first().copied().ok_or_else(unknown),
            Err(_) => Err(unknown()),
        },
        Err(_) => Err(unknown()),
    }
}

/// Starts `app` at `place` and runs the world until `done` says it finished (or `limit`).
fn run_app<A: kns_sim::stack::App, R>(
    net: &mut ClusterNet,
    place: &Place,
    app: A,
    limit: Duration,
    done: impl Fn(&A) -> Option<R>,
) -> Result<R, String> {
    net.run_app(place.ns, app, limit, done)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the command did not finish in its time limit".to_string())
}

fn unroutable(net: &ClusterNet, place: &Place, dst: IpAddr) -> bool {
    net.sim().route_get(place.ns, dst).is_err()
}

fn ping(
    net: &mut ClusterNet,
    place: &Place,
    opts: &PingOpts,
    target: &str,
) -> Result<String, String> {
    let dst = match resolve(net, place, "ping", target) {
        Ok(ip) => ip,
        Err(line) => return Ok(line),
    };
    if unroutable(net, place, dst) {
        return Ok("ping: connect: Network is unreachable\n".into());
    }
    let mut config = PingConfig::new(dst, opts.count.min(u32::from(u16::MAX)) as u16);
    config.interval = opts.interval;
    config.timeout = opts.timeout;
    config.size = opts.size;
    if let Some(ttl) = opts.ttl {
        config.ttl = ttl;
    }
    let limit = opts.interval * opts.count + opts.timeout + SLACK;
    let out = run_app(net, place, Ping::new(config), limit, |p| {
        p.finished().then(|| p.output().to_string())
    })?;
    let out = out.replace(&format!("--- {dst} ping"), &format!("--- {target} ping"));
    Ok(named(out, "PING ", dst, target))
}

/// Puts the name the user typed back in a tool's first line (`PING web (10.96.0.11)`).
fn named(out: String, prefix: &str, dst: IpAddr, target: &str) -> String {
    let plain = format!("{prefix}{dst} (");
    match out.strip_prefix(&plain) {
        Some(rest) if target != dst.to_string() => format!("{prefix}{target} ({rest}"),
        _ => out,
    }
}

fn traceroute(
    net: &mut ClusterNet,
    place: &Place,
    max_hops: u8,
    target: &str,
) -> Result<String, String> {
    let dst = match resolve(net, place, "traceroute", target) {
        Ok(ip) => ip,
        Err(line) => return Ok(line),
    };
    if unroutable(net, place, dst) {
        return Ok("connect: Network is unreachable\n".into());
    }
    let mut config = TracerouteConfig::new(dst);
    config.max_hops = max_hops;
    let limit = config.wait * u32::from(config.probes) * u32::from(max_hops) + SLACK;
    let out = run_app(net, place, Traceroute::new(config), limit, |t| {
        t.finished_at().map(|_| t.output().to_string())
    })?;
    Ok(named(out, "traceroute to ", dst, target))
}

fn nc(net: &mut ClusterNet, place: &Place, mode: &NcMode) -> Result<String, String> {
    match mode {
        NcMode::Listen { port, udp } => {
            let transport = if *udp { Transport::Udp } else { Transport::Tcp };
            let stack = net
                .sim_mut()
                .stack_mut::<SmolStack>(place.ns)
                .ok_or("this namespace has no socket stack")?;
            if stack.port_in_use(transport, *port) {
                return Ok("nc: Address already in use\n".into());
            }
            if *udp {
                stack.spawn(UdpEcho::new(*port));
            } else {
                stack.spawn(TcpEcho::new(*port));
            }
            net.sim_mut().kick(place.ns);
            let proto = if *udp { "udp" } else { "tcp" };
            Ok(format!(
                "Listening on 0.0.0.0 {port} ({proto}, echoing what arrives, in the background)\n"
            ))
        }
        NcMode::Connect { host, port, udp, timeout } => {
            let dst = match resolve(net, place, "nc", host) {
                Ok(ip) => ip,
                Err(line) => return Ok(line),
            };
            let proto = if *udp { "udp" } else { "tcp" };
            if unroutable(net, place, dst) {
                return Ok(format!(
                    "nc: connect to {dst} port {port} ({proto}) failed: Network is unreachable\n"
                ));
            }
            let who = net.sim().netns_name(place.ns).to_string();
            let payload = format!("hello from {who}\n").into_bytes();
            let mut config = NcConfig::connect(SocketAddr::new(dst, *port), *udp, payload);
            config.verbose = true;
            config.wait = *timeout;
            run_app(net, place, Nc::new(config), *timeout * 2 + SLACK, |n| {
                n.finished_at().map(|_| format!("{}{}", n.messages(), n.output()))
            })
        }
    }
}

fn curl(
    net: &mut ClusterNet,
    place: &Place,
    url: &str,
    max_time: Duration,
) -> Result<String, String> {
    let (scheme, host, rest) = crate::cli::split_url(url);
    let target = match resolve(net, place, "curl", host) {
        Ok(ip) if ip.is_ipv6() => format!("{scheme}[{ip}]{rest}"),
        Ok(ip) => format!("{scheme}{ip}{rest}"),
        Err(_) => return Ok(format!("curl: (6) Could not resolve host: {host}\n")),
    };
    let mut config = HttpClientConfig::get(&target);
    config.max_time = max_time;
    config.connect_timeout = config.connect_timeout.min(max_time);
    run_app(net, place, HttpClient::new(config), max_time + SLACK, |c| {
        c.finished_at().map(|_| {
            let mut out = c.output().to_string();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out
        })
    })
}

fn nslookup(net: &mut ClusterNet, place: &Place, args: &[String]) -> Result<String, String> {
    let [name] = args else { return Err("usage: nslookup NAME".into()) };
    let source = place.source.ok_or("nslookup: no resolver in this namespace")?;
    net.lookup(source, name).map(|l| l.text).map_err(|e| e.to_string())
}

fn dig(net: &mut ClusterNet, place: &Place, args: &[String]) -> Result<String, String> {
    let (name, qtype) = match args {
        [name] => (name, RecordType::A),
        [name, t] => {
            (name, RecordType::parse(t).ok_or_else(|| format!("dig: unknown record type `{t}`"))?)
        }
        _ => return Err("usage: dig NAME [TYPE]".into()),
    };
    let source = place.source.ok_or("dig: no resolver in this namespace")?;
    net.dig(source, name, qtype).map(|(text, _)| text).map_err(|e| e.to_string())
}
