//! The commands of a `kns net` script: `ip`, `sysctl`, `iptables`, `ping`, `traceroute`, `nc`,
//! `curl`, `conntrack`, `bridge`, `tc` and `sleep`, each optionally run inside a namespace
//! (`ip netns exec NS ...` or `ip -n NS ...`). A leading `sudo` is accepted and ignored.

use std::time::Duration;

use super::ip::{IpCommand, LinkCmd, LinkSet, NetnsCmd, parse_ip};
use super::tokens::tokenize;

/// A command that could not be parsed, with a message in the style of the real tool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    /// A parse error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        ParseError { message: message.into() }
    }
}

/// Options of `ping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingOpts {
    /// `-c N`: echo requests to send (Linux pings forever; kns defaults to 4 and says so).
    pub count: u32,
    /// `-W S`: seconds to wait for each reply.
    pub timeout: Duration,
    /// `-i S`: seconds between requests.
    pub interval: Duration,
    /// `-t TTL`.
    pub ttl: Option<u8>,
    /// `-s N`: payload bytes.
    pub size: usize,
}

impl Default for PingOpts {
    fn default() -> Self {
        PingOpts {
            count: 4,
            timeout: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            ttl: None,
            size: 56,
        }
    }
}

/// What `nc` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NcMode {
    /// `nc -l [-u] [-k] [-p] PORT`: serve, echoing what arrives.
    Listen {
        /// The port.
        port: u16,
        /// UDP rather than TCP.
        udp: bool,
    },
    /// `nc [-u] [-z] [-w S] HOST PORT`: connect (and with `-z` close at once).
    Connect {
        /// The address to reach.
        host: String,
        /// The port.
        port: u16,
        /// UDP rather than TCP.
        udp: bool,
        /// Seconds to wait.
        timeout: Duration,
    },
}

/// One script command, with the namespace it runs in (`None` is the host's root namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ip ...`.
    Ip {
        /// Namespace (`-n NS` or `ip netns exec NS`).
        netns: Option<String>,
        /// The parsed command.
        cmd: IpCommand,
    },
    /// `sysctl -w KEY=VALUE` or `sysctl KEY`.
    Sysctl {
        /// Namespace.
        netns: Option<String>,
        /// The key (`net.ipv4.ip_forward`).
        key: String,
        /// The value to set, or `None` to read.
        value: Option<String>,
    },
    /// `iptables ...`: the arguments, for the netfilter parser.
    Iptables {
        /// Namespace.
        netns: Option<String>,
        /// The words after `iptables`.
        args: Vec<String>,
    },
    /// `conntrack -L`.
    Conntrack {
        /// Namespace.
        netns: Option<String>,
    },
    /// `bridge fdb show` / `bridge link set dev X hairpin on|off`.
    Bridge {
        /// Namespace.
        netns: Option<String>,
        /// The words after `bridge`.
        args: Vec<String>,
    },
    /// `ping [opts] ADDR`.
    Ping {
        /// Namespace.
        netns: Option<String>,
        /// Options.
        opts: PingOpts,
        /// The address.
        target: String,
    },
    /// `traceroute [-n] [-m MAX] ADDR`.
    Traceroute {
        /// Namespace.
        netns: Option<String>,
        /// Maximum hops (30).
        max_hops: u8,
        /// The address.
        target: String,
    },
    /// `nc ...`.
    Nc {
        /// Namespace.
        netns: Option<String>,
        /// Listen or connect.
        mode: NcMode,
    },
    /// `curl [-m S] URL`.
    Curl {
        /// Namespace.
        netns: Option<String>,
        /// The URL (`http://ADDR[:PORT]/PATH`).
        url: String,
        /// `-m S`: maximum time.
        max_time: Duration,
    },
    /// `sleep S`: let virtual time pass.
    Sleep(Duration),
    /// `tc [-n NS] qdisc ...`: the words after `tc` and its options, for [`crate::net::Sim::tc`].
    Tc {
        /// Namespace (`-n NS` or `ip netns exec NS`).
        netns: Option<String>,
        /// The words after `tc` and its global options (`qdisc add dev ...`).
        args: Vec<String>,
    },
}

/// Parses one script line. `Ok(None)` for blank lines and comments.
pub fn parse_command(line: &str) -> Result<Option<Command>, ParseError> {
    let words = tokenize(line).map_err(|e| ParseError::new(e.to_string()))?;
    if words.is_empty() {
        return Ok(None);
    }
    parse_words(&words, None).map(Some)
}

fn parse_words(words: &[String], netns: Option<String>) -> Result<Command, ParseError> {
    let Some((program, args)) = words.split_first() else {
        return Err(ParseError::new("empty command"));
    };
    match program.as_str() {
        "sudo" => parse_words(args, netns),
        "ip" => parse_ip_words(args, netns),
        "sysctl" => parse_sysctl(args, netns),
        "iptables" => Ok(Command::Iptables { netns, args: args.to_vec() }),
        "conntrack" => match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["-L"] | ["-L", "-n"] | ["--dump"] => Ok(Command::Conntrack { netns }),
            _ => Err(ParseError::new("conntrack: kns supports only `conntrack -L`")),
        },
        "bridge" => Ok(Command::Bridge { netns, args: args.to_vec() }),
        "ping" => parse_ping(args, netns),
        "traceroute" => parse_traceroute(args, netns),
        "nc" | "netcat" | "ncat" => parse_nc(args, netns),
        "curl" => parse_curl(args, netns),
        "tc" => parse_tc(args, netns),
        "sleep" => match args {
            [secs] => Ok(Command::Sleep(seconds(secs, "sleep")?)),
            _ => Err(ParseError::new("sleep: usage: sleep SECONDS")),
        },
        other => Err(ParseError::new(format!(
            "{other}: command not found (kns runs ip, sysctl, iptables, conntrack, bridge, tc, ping, traceroute, nc, curl, sleep)"
        ))),
    }
}

/// Reads the global options of `ip` and `tc`: `-n NETNS` (into `netns`) and the `flags` that
/// change nothing here. Returns the words after them.
fn global_options<'a>(
    mut rest: &'a [String],
    netns: &mut Option<String>,
    flags: &[&str],
) -> &'a [String] {
    loop {
        match rest {
            [opt, ns, tail @ ..] if matches!(opt.as_str(), "-n" | "-netns" | "--netns") => {
                *netns = Some(ns.clone());
                rest = tail;
            }
            [opt, tail @ ..] if flags.contains(&opt.as_str()) => rest = tail,
            _ => return rest,
        }
    }
}

fn parse_ip_words(args: &[String], mut netns: Option<String>) -> Result<Command, ParseError> {
    let flags = ["-4", "-6", "-c", "-color", "-d", "-details", "-s"];
    let rest = global_options(args, &mut netns, &flags);
    let cmd = parse_ip(rest)?;
    if let IpCommand::Netns(NetnsCmd::Exec { netns: inner, command }) = &cmd {
        return parse_words(command, Some(inner.clone()));
    }
    Ok(Command::Ip { netns, cmd })
}

fn parse_tc(args: &[String], mut netns: Option<String>) -> Result<Command, ParseError> {
    let flags = ["-s", "-stats", "-d", "-details", "-p", "-pretty"];
    let rest = global_options(args, &mut netns, &flags);
    if let [opt, ..] = rest
        && opt.starts_with('-')
    {
        return Err(ParseError::new(format!("Option \"{opt}\" is unknown, try \"tc -help\".")));
    }
    if rest.is_empty() {
        return Err(ParseError::new("Usage: tc [ OPTIONS ] OBJECT { COMMAND | help }"));
    }
    Ok(Command::Tc { netns, args: rest.to_vec() })
}

fn parse_sysctl(args: &[String], netns: Option<String>) -> Result<Command, ParseError> {
    let words: Vec<&str> =
        args.iter().map(String::as_str).filter(|a| *a != "-w" && *a != "-q").collect();
    match words.as_slice() {
        [kv] => match kv.split_once('=') {
            Some((k, v)) => {
                Ok(Command::Sysctl { netns, key: k.trim().into(), value: Some(v.trim().into()) })
            }
            None => Ok(Command::Sysctl { netns, key: kv.to_string(), value: None }),
        },
        [k, "=", v] => {
            Ok(Command::Sysctl { netns, key: k.to_string(), value: Some(v.to_string()) })
        }
        _ => Err(ParseError::new("sysctl: usage: sysctl [-w] KEY[=VALUE]")),
    }
}

fn seconds(text: &str, what: &str) -> Result<Duration, ParseError> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| ParseError::new(format!("{what}: invalid time \"{text}\"")))
}

fn opt_value<'a>(
    it: &mut std::slice::Iter<'a, String>,
    program: &str,
    opt: &str,
) -> Result<&'a String, ParseError> {
    it.next().ok_or_else(|| {
        ParseError::new(format!(
            "{program}: option requires an argument -- '{}'",
            opt.trim_start_matches('-')
        ))
    })
}

fn parse_ping(args: &[String], netns: Option<String>) -> Result<Command, ParseError> {
    let mut opts = PingOpts::default();
    let mut target = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" => {
                let v = opt_value(&mut it, "ping", a)?;
                opts.count = v
                    .parse()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| ParseError::new(format!("ping: invalid argument: '{v}'")))?;
            }
            "-W" => opts.timeout = seconds(opt_value(&mut it, "ping", a)?, "ping")?,
            "-i" => opts.interval = seconds(opt_value(&mut it, "ping", a)?, "ping")?,
            "-t" => {
                let v = opt_value(&mut it, "ping", a)?;
                opts.ttl = Some(
                    v.parse()
                        .map_err(|_| ParseError::new(format!("ping: invalid argument: '{v}'")))?,
                );
            }
            "-s" => {
                let v = opt_value(&mut it, "ping", a)?;
                opts.size = v
                    .parse()
                    .map_err(|_| ParseError::new(format!("ping: invalid argument: '{v}'")))?;
            }
            "-n" | "-q" | "-4" => {}
            flag if flag.starts_with('-') => {
                return Err(ParseError::new(format!("ping: invalid option -- '{}'", &flag[1..])));
            }
            host if target.is_none() => target = Some(host.to_string()),
            extra => return Err(ParseError::new(format!("ping: unexpected argument '{extra}'"))),
        }
    }
    let target =
        target.ok_or_else(|| ParseError::new("ping: usage error: Destination address required"))?;
    Ok(Command::Ping { netns, opts, target })
}

fn parse_traceroute(args: &[String], netns: Option<String>) -> Result<Command, ParseError> {
    let mut max_hops = 30u8;
    let mut target = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-m" => {
                let v = opt_value(&mut it, "traceroute", a)?;
                max_hops = v.parse().ok().filter(|m| *m > 0).ok_or_else(|| {
                    ParseError::new(format!("traceroute: invalid max hops '{v}'"))
                })?;
            }
            "-n" | "-4" => {}
            flag if flag.starts_with('-') => {
                return Err(ParseError::new(format!("traceroute: bad option `{flag}'")));
            }
            host if target.is_none() => target = Some(host.to_string()),
            extra => {
                return Err(ParseError::new(format!("traceroute: unexpected argument '{extra}'")));
            }
        }
    }
    let target = target.ok_or_else(|| ParseError::new("traceroute: specify a host"))?;
    Ok(Command::Traceroute { netns, max_hops, target })
}

fn parse_port(text: &str, program: &str) -> Result<u16, ParseError> {
    text.parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ParseError::new(format!("{program}: port number invalid: {text}")))
}

fn parse_nc(args: &[String], netns: Option<String>) -> Result<Command, ParseError> {
    let (mut listen, mut udp) = (false, false);
    let mut timeout = Duration::from_secs(5);
    let mut port_opt = None;
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-w" => timeout = seconds(opt_value(&mut it, "nc", a)?, "nc")?,
            "-p" => port_opt = Some(parse_port(opt_value(&mut it, "nc", a)?, "nc")?),
            flag if flag.starts_with('-') && flag.len() > 1 => {
                for c in flag[1..].chars() {
                    match c {
                        'l' => listen = true,
                        'u' => udp = true,
                        'z' | 'v' | 'n' | 'k' | 'q' => {}
                        other => {
                            return Err(ParseError::new(format!(
                                "nc: invalid option -- '{other}'"
                            )));
                        }
                    }
                }
            }
            word => positional.push(word.to_string()),
        }
    }
    let mode = if listen {
        let port = match (port_opt, positional.as_slice()) {
            (Some(p), []) => p,
            (None, [p]) => parse_port(p, "nc")?,
            _ => return Err(ParseError::new("nc: usage: nc -l [-u] PORT")),
        };
        NcMode::Listen { port, udp }
    } else {
        match positional.as_slice() {
            [host, port] => {
                NcMode::Connect { host: host.clone(), port: parse_port(port, "nc")?, udp, timeout }
            }
            _ => return Err(ParseError::new("nc: usage: nc [-u] [-z] [-w SECONDS] HOST PORT")),
        }
    };
    Ok(Command::Nc { netns, mode })
}

fn parse_curl(args: &[String], netns: Option<String>) -> Result<Command, ParseError> {
    let mut max_time = Duration::from_secs(10);
    let mut url = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-m" | "--max-time" | "--connect-timeout" => {
                max_time = seconds(opt_value(&mut it, "curl", a)?, "curl")?
            }
            "-s" | "-S" | "-sS" | "-v" | "-i" => {}
            flag if flag.starts_with('-') => {
                return Err(ParseError::new(format!("curl: option {flag}: is unknown")));
            }
            u if url.is_none() => url = Some(u.to_string()),
            extra => return Err(ParseError::new(format!("curl: unexpected argument '{extra}'"))),
        }
    }
    let url = url.ok_or_else(|| ParseError::new("curl: no URL specified!"))?;
    Ok(Command::Curl { netns, url, max_time })
}

/// `bridge link set dev X hairpin on|off` as an `ip link set` change, when `args` say that.
pub fn bridge_hairpin(args: &[String]) -> Option<LinkCmd> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["link", "set", "dev", dev, "hairpin", on @ ("on" | "off")] => Some(LinkCmd::Set {
            dev: dev.to_string(),
            changes: vec![LinkSet::Hairpin(*on == "on")],
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::ip::AddrCmd;

    fn cmd(line: &str) -> Command {
        parse_command(line).unwrap().unwrap()
    }

    #[test]
    fn namespaces_come_from_exec_and_dash_n() {
        assert_eq!(
            cmd("sudo ip netns exec red ip addr"),
            Command::Ip {
                netns: Some("red".into()),
                cmd: IpCommand::Addr(AddrCmd::Show { dev: None })
            }
        );
        assert_eq!(
            cmd("ip -n blue a"),
            Command::Ip {
                netns: Some("blue".into()),
                cmd: IpCommand::Addr(AddrCmd::Show { dev: None })
            }
        );
        assert_eq!(
            cmd("ip netns exec red ping -c 2 -W 1 10.0.0.2"),
            Command::Ping {
                netns: Some("red".into()),
                opts: PingOpts { count: 2, ..PingOpts::default() },
                target: "10.0.0.2".into()
            }
        );
    }

    #[test]
    fn parses_tools() {
        assert_eq!(
            cmd("sysctl -w net.ipv4.ip_forward=1"),
            Command::Sysctl {
                netns: None,
                key: "net.ipv4.ip_forward".into(),
                value: Some("1".into())
            }
        );
        assert_eq!(
            cmd("nc -lu 53"),
            Command::Nc { netns: None, mode: NcMode::Listen { port: 53, udp: true } }
        );
        assert_eq!(
            cmd("nc -z -w 2 10.0.0.2 80"),
            Command::Nc {
                netns: None,
                mode: NcMode::Connect {
                    host: "10.0.0.2".into(),
                    port: 80,
                    udp: false,
                    timeout: Duration::from_secs(2)
                }
            }
        );
        assert_eq!(
            cmd("traceroute -n 10.2.0.2"),
            Command::Traceroute { netns: None, max_hops: 30, target: "10.2.0.2".into() }
        );
        assert_eq!(parse_command("   # nothing").unwrap(), None);
        assert_eq!(cmd("sleep 1.5"), Command::Sleep(Duration::from_millis(1500)));
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            cmd("ip netns exec red tc qdisc add dev veth-red root netem delay 20ms"),
            Command::Tc {
                netns: Some("red".into()),
                args: words(&["qdisc", "add", "dev", "veth-red", "root", "netem", "delay", "20ms"])
            }
        );
        assert_eq!(
            cmd("tc -s -n blue qdisc show"),
            Command::Tc { netns: Some("blue".into()), args: words(&["qdisc", "show"]) }
        );
        assert!(parse_command("tc").unwrap_err().message.starts_with("Usage: tc"));
        assert_eq!(
            parse_command("tc -x qdisc").unwrap_err().message,
            "Option \"-x\" is unknown, try \"tc -help\"."
        );
    }

    #[test]
    fn errors_are_specific() {
        assert_eq!(
            parse_command("ping").unwrap_err().message,
            "ping: usage error: Destination address required"
        );
        assert!(
            parse_command("wget x").unwrap_err().message.starts_with("wget: command not found")
        );
        assert_eq!(parse_command("nc -l 0").unwrap_err().message, "nc: port number invalid: 0");
        assert_eq!(
            parse_command("ping -c zero 1.2.3.4").unwrap_err().message,
            "ping: invalid argument: 'zero'"
        );
    }
}
