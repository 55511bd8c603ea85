//! Executing parsed commands ([`crate::cmd`]) against the world: `ip`, `sysctl`, `bridge`, `tc`
//! and `sleep`, with iproute2's output and error messages.

use super::config::{RouteSpec, VxlanConfig};
use super::{NetnsId, Sim};
use crate::cmd::{
    AddrCmd, Command, IpCommand, LinkCmd, LinkKind, LinkSet, NeighCmd, NetnsCmd, ParseError,
    RouteCmd, RouteDst, parse_command,
};

/// A command failed; the message reads like the real tool's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    /// The command line could not be parsed.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// No namespace has this name.
    #[error("Cannot open network namespace \"{0}\": No such file or directory")]
    NoNetns(String),
    /// No device has this name in the namespace.
    #[error("Cannot find device \"{0}\"")]
    NoDevice(String),
    /// The object already exists.
    #[error("RTNETLINK answers: File exists")]
    Exists,
    /// kns does not model this (the message says what).
    #[error("{0}")]
    Unsupported(String),
    /// Any other kernel or tool message, verbatim.
    #[error("{0}")]
    Message(String),
}

impl Sim {
    /// Runs one `ip` command given as text (`"link add br0 type bridge"`, with or without a
    /// leading `ip`, `-n NS` accepted) in `netns` (`None`: the root namespace); returns its output.
    pub fn ip(&mut self, netns: Option<&str>, text: &str) -> Result<String, IpError> {
        let trimmed = text.trim_start();
        let line = if trimmed.starts_with("ip ") || trimmed.starts_with("sudo ") {
            trimmed.to_string()
        } else {
            format!("ip {trimmed}")
        };
        match parse_command(&line)? {
            None => Ok(String::new()),
            Some(Command::Ip { netns: inner, cmd }) => {
                let ns = inner.as_deref().or(netns);
                self.exec_ip(ns, &cmd)
            }
            Some(other) => self.exec(&other),
        }
    }

    /// Runs one parsed command: the configuration commands (`ip`, `sysctl`, `bridge`,
    /// `iptables`, `conntrack -L`, `tc`) and `sleep` are executed here; the probes (ping, traceroute,
    /// nc, curl) need applications on a socket layer and give `Unsupported`.
    pub fn exec(&mut self, cmd: &Command) -> Result<String, IpError> {
        match cmd {
            Command::Ip { netns, cmd } => self.exec_ip(netns.as_deref(), cmd),
            Command::Sysctl { netns, key, value } => {
                let ns = self.netns(netns.as_deref())?;
                self.sysctl(ns, key, value.as_deref())
            }
            Command::Bridge { netns, args } => {
                let ns = self.netns(netns.as_deref())?;
                self.exec_bridge(ns, args)
            }
            Command::Sleep(d) => {
                self.run_for(*d);
                Ok(String::new())
            }
            Command::Iptables { netns, args } => {
                let ns = self.netns(netns.as_deref())?;
                let now = self.now();
                self.netfilter_mut(ns)
                    .iptables(now, args)
                    .map_err(|e| IpError::Message(e.to_string()))
            }
            Command::Conntrack { netns } => {
                let ns = self.netns(netns.as_deref())?;
                let now = self.now();
                Ok(self.netfilter_mut(ns).conntrack_list(now))
            }
            Command::Tc { netns, args } => {
                let ns = self.netns(netns.as_deref())?;
                let words: Vec<&str> = args.iter().map(String::as_str).collect();
                self.tc(ns, &words)
            }
            other => Err(IpError::Unsupported(format!(
                "Sim::exec runs configuration commands; this probe needs an application on a socket layer: {other:?}"
            ))),
        }
    }

    fn exec_ip(&mut self, netns: Option<&str>, cmd: &IpCommand) -> Result<String, IpError> {
        if let IpCommand::Netns(n) = cmd {
            return self.exec_netns(n);
        }
        let ns = self.netns(netns)?;
        match cmd {
            IpCommand::Netns(_) => unreachable!("handled above"),
            IpCommand::Link(l) => self.exec_link(ns, l),
            IpCommand::Addr(a) => self.exec_addr(ns, a),
            IpCommand::Route(r) => self.exec_route(ns, r),
            IpCommand::Neigh(n) => self.exec_neigh(ns, n),
        }
    }

    fn exec_netns(&mut self, cmd: &NetnsCmd) -> Result<String, IpError> {
        match cmd {
            NetnsCmd::Add(name) => self.netns_add(name).map(|_| String::new()),
            NetnsCmd::Del(name) => self.netns_del(name).map(|_| String::new()),
            NetnsCmd::List => Ok(self.netns_list().iter().map(|n| format!("{n}\n")).collect()),
            NetnsCmd::Exec { netns, command } => {
                let line: Vec<String> = command.iter().map(|w| shell_quote(w)).collect();
                let parsed = parse_command(&line.join(" "))?;
                match parsed {
                    None => Ok(String::new()),
                    Some(c) => {
                        self.netns(Some(netns))?;
                        self.exec(&with_netns(c, netns))
                    }
                }
            }
        }
    }

    fn exec_link(&mut self, ns: NetnsId, cmd: &LinkCmd) -> Result<String, IpError> {
        match cmd {
            LinkCmd::Add { name, kind, mtu, address } => {
                match kind {
                    LinkKind::Veth { peer, peer_netns } => {
                        let pns = match peer_netns {
                            Some(p) => Some(self.netns(Some(p))?),
                            None => None,
                        };
                        self.link_add_veth(ns, name, peer, pns)?;
                    }
                    LinkKind::Bridge => {
                        self.link_add_bridge(ns, name)?;
                    }
                    LinkKind::Dummy => {
                        self.link_add_dummy(ns, name)?;
                    }
                    LinkKind::Vxlan { vni, local, remote, dstport, dev } => {
                        let cfg = VxlanConfig {
                            vni: *vni,
                            local: *local,
                            remote: *remote,
                            dstport: *dstport,
                            dev: dev.clone(),
                        };
                        self.link_add_vxlan(ns, name, cfg)?;
                    }
                }
                if let Some(m) = mtu {
                    self.link_set_mtu(ns, name, *m)?;
                }
                if let Some(a) = address {
                    self.link_set_address(ns, name, *a)?;
                }
                Ok(String::new())
            }
            LinkCmd::Del(name) => self.link_del(ns, name).map(|_| String::new()),
            LinkCmd::Set { dev, changes } => {
                let mut dev = dev.clone();
                let mut ns = ns;
                self.iface_id(ns, &dev)?;
                for c in changes {
                    match c {
                        LinkSet::Up => self.link_set_up(ns, &dev, true)?,
                        LinkSet::Down => self.link_set_up(ns, &dev, false)?,
                        LinkSet::Netns(target) => {
                            let t = self.netns(Some(target))?;
                            self.link_set_netns(ns, &dev, t)?;
                            ns = t;
                        }
                        LinkSet::Master(b) => self.link_set_master(ns, &dev, Some(b))?,
                        LinkSet::NoMaster => self.link_set_master(ns, &dev, None)?,
                        LinkSet::Mtu(m) => self.link_set_mtu(ns, &dev, *m)?,
                        LinkSet::Address(a) => self.link_set_address(ns, &dev, *a)?,
                        LinkSet::Name(n) => {
                            self.link_set_name(ns, &dev, n)?;
                            dev = n.clone();
                        }
                        LinkSet::Hairpin(on) => self.link_set_hairpin(ns, &dev, *on)?,
                    }
                }
                Ok(String::new())
            }
            LinkCmd::Show { dev, kind } => {
                self.show_links(ns, dev.as_deref(), kind.as_deref(), false)
            }
        }
    }

    fn exec_addr(&mut self, ns: NetnsId, cmd: &AddrCmd) -> Result<String, IpError> {
        match cmd {
            AddrCmd::Add { addr, dev } => self.addr_add(ns, dev, *addr).map(|_| String::new()),
            AddrCmd::Del { addr, dev } => self.addr_del(ns, dev, *addr).map(|_| String::new()),
            AddrCmd::Flush { dev } => self.addr_flush(ns, dev).map(|_| String::new()),
            AddrCmd::Show { dev } => self.show_links(ns, dev.as_deref(), None, true),
        }
    }

    fn exec_route(&mut self, ns: NetnsId, cmd: &RouteCmd) -> Result<String, IpError> {
        let net = |d: &RouteDst, like: Option<std::net::IpAddr>| match d {
            RouteDst::Net(n) => *n,
            RouteDst::Default => match like {
                Some(std::net::IpAddr::V6(_)) => "::/0".parse().expect("literal prefix"),
                _ => "0.0.0.0/0".parse().expect("literal prefix"),
            },
        };
        match cmd {
            RouteCmd::Add { dst, via, dev, metric, src, replace, onlink } => {
                let spec = RouteSpec {
                    dst: net(dst, *via),
                    via: *via,
                    dev: dev.clone(),
                    metric: metric.unwrap_or(0),
                    src: *src,
                    onlink: *onlink,
                };
                self.route_add(ns, &spec, *replace).map(|_| String::new())
            }
            RouteCmd::Del { dst, via, dev, metric } => self
                .route_del(ns, net(dst, *via), *via, dev.as_deref(), *metric)
                .map(|_| String::new()),
            RouteCmd::Show => Ok(self.show_routes(ns)),
            RouteCmd::Get(addr) => Ok(self.route_get(ns, *addr)?.to_iproute2() + "\n"),
        }
    }

    fn exec_neigh(&mut self, ns: NetnsId, cmd: &NeighCmd) -> Result<String, IpError> {
        match cmd {
            NeighCmd::Add { ip, lladdr, dev, replace } => {
                self.neigh_add(ns, *ip, *lladdr, dev, *replace).map(|_| String::new())
            }
            NeighCmd::Del { ip, dev } => self.neigh_del(ns, *ip, dev).map(|_| String::new()),
            NeighCmd::Show { dev } => {
                if let Some(d) = dev {
                    self.iface_id(ns, d)?;
                }
                Ok(self.show_neigh(ns, dev.as_deref()))
            }
        }
    }

    /// `bridge fdb show|append|add|del ...` and `bridge link set dev X hairpin on|off`.
    fn exec_bridge(&mut self, ns: NetnsId, args: &[String]) -> Result<String, IpError> {
        if let Some(LinkCmd::Set { dev, changes }) = crate::cmd::bridge_hairpin(args) {
            for c in changes {
                if let LinkSet::Hairpin(on) = c {
                    self.link_set_hairpin(ns, &dev, on)?;
                }
            }
            return Ok(String::new());
        }
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["fdb"] | ["fdb", "show" | "list" | "ls"] => Ok(self.show_fdb(ns, None)),
            ["fdb", "show", "dev" | "br", d] => {
                self.iface_id(ns, d)?;
                Ok(self.show_fdb(ns, Some(d)))
            }
            ["fdb", verb @ ("append" | "add" | "replace" | "del" | "delete"), mac, rest @ ..] => {
                let mac = parse_mac(mac)?;
                let (mut dev, mut dst) = (None, None);
                let mut it = rest.iter();
                while let Some(w) = it.next() {
                    match *w {
                        "dev" => dev = it.next().copied(),
                        "dst" => {
                            let t = it.next().copied().unwrap_or("");
                            dst = Some(t.parse().map_err(|_| {
                                IpError::Message(format!(
                                    "Error: inet address is expected rather than \"{t}\"."
                                ))
                            })?);
                        }
                        "self" | "permanent" | "static" | "master" => {}
                        other => {
                            return Err(IpError::Message(format!(
                                "Error: either \"dev\" is duplicate, or \"{other}\" is a garbage."
                            )));
                        }
                    }
                }
                let dev =
                    dev.ok_or_else(|| IpError::Message("Device is a required argument.".into()))?;
                match (*verb, dst) {
                    ("del" | "delete", d) => self.fdb_del(ns, dev, mac, d)?,
                    (_, Some(d)) => self.fdb_append(ns, dev, mac, d)?,
                    (_, None) => {
                        return Err(IpError::Unsupported(
                            "kns models static FDB entries of VXLAN devices only: give \"dst IP\""
                                .into(),
                        ));
                    }
                }
                Ok(String::new())
            }
            _ => Err(IpError::Unsupported(format!(
                "bridge {}: kns runs `bridge fdb show|append|del` and `bridge link set dev X hairpin on|off`",
                words.join(" ")
            ))),
        }
    }
}

fn parse_mac(text: &str) -> Result<[u8; 6], IpError> {
    let bad = || IpError::Message(format!("Error: \"{text}\" is not a valid link-layer address."));
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(parts) {
        *slot = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

fn shell_quote(w: &str) -> String {
    if w.chars().any(|c| c.is_whitespace() || "'\"#\\".contains(c)) {
        format!("'{}'", w.replace('\'', "'\\''"))
    } else {
        w.to_string()
    }
}

/// `cmd` with its namespace set to `ns` (for `ip netns exec NS ...`).
fn with_netns(cmd: Command, ns: &str) -> Command {
    let n = Some(ns.to_string());
    match cmd {
        Command::Ip { cmd, .. } => Command::Ip { netns: n, cmd },
        Command::Sysctl { key, value, .. } => Command::Sysctl { netns: n, key, value },
        Command::Iptables { args, .. } => Command::Iptables { netns: n, args },
        Command::Conntrack { .. } => Command::Conntrack { netns: n },
        Command::Bridge { args, .. } => Command::Bridge { netns: n, args },
        Command::Ping { opts, target, .. } => Command::Ping { netns: n, opts, target },
        Command::Traceroute { max_hops, target, .. } => {
            Command::Traceroute { netns: n, max_hops, target }
        }
        Command::Nc { mode, .. } => Command::Nc { netns: n, mode },
        Command::Curl { url, max_time, .. } => Command::Curl { netns: n, url, max_time },
        Command::Sleep(d) => Command::Sleep(d),
        Command::Tc { args, .. } => Command::Tc { netns: n, args },
    }
}
