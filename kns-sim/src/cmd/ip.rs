//! The `ip` command of iproute2: `netns`, `link`, `addr`, `route` and `neigh`, parsed into
//! [`IpCommand`]. Object and verb abbreviations follow iproute2 (`ip a`, `ip r s`, `ip l set`),
//! and errors read like its messages.

use std::net::IpAddr;

use ipnet::IpNet;

use super::tools::ParseError;

/// One parsed `ip` invocation (without the namespace option, which the caller keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpCommand {
    /// `ip netns ...`.
    Netns(NetnsCmd),
    /// `ip link ...`.
    Link(LinkCmd),
    /// `ip addr ...`.
    Addr(AddrCmd),
    /// `ip route ...`.
    Route(RouteCmd),
    /// `ip neigh ...`.
    Neigh(NeighCmd),
}

/// `ip netns` verbs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsCmd {
    /// `ip netns add NAME`.
    Add(String),
    /// `ip netns del NAME`.
    Del(String),
    /// `ip netns list`.
    List,
    /// `ip netns exec NAME CMD...`: the words of the command to run inside.
    Exec {
        /// The namespace.
        netns: String,
        /// The command's words.
        command: Vec<String>,
    },
}

/// The `type` of a new link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    /// `type veth peer name PEER [netns NS]`.
    Veth {
        /// The peer's name.
        peer: String,
        /// The namespace the peer is created in, if not this one.
        peer_netns: Option<String>,
    },
    /// `type bridge`.
    Bridge,
    /// `type vxlan id VNI [local IP] [remote IP] [dstport PORT] [dev DEV]`.
    Vxlan {
        /// The VXLAN network identifier.
        vni: u32,
        /// Source address of encapsulated packets.
        local: Option<IpAddr>,
        /// A single remote VTEP (point-to-point), if given.
        remote: Option<IpAddr>,
        /// UDP destination port (4789 when omitted).
        dstport: u16,
        /// The underlay device.
        dev: Option<String>,
    },
    /// `type dummy`.
    Dummy,
}

/// One change of `ip link set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkSet {
    /// `up`.
    Up,
    /// `down`.
    Down,
    /// `netns NS`.
    Netns(String),
    /// `master BRIDGE`.
    Master(String),
    /// `nomaster`.
    NoMaster,
    /// `mtu N`.
    Mtu(u32),
    /// `address MAC`.
    Address([u8; 6]),
    /// `name NEW`.
    Name(String),
    /// `type bridge_slave hairpin on|off` (also `bridge link set dev X hairpin on`).
    Hairpin(bool),
}

/// `ip link` verbs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkCmd {
    /// `ip link add NAME [mtu N] [address MAC] type KIND ...`.
    Add {
        /// The new link's name.
        name: String,
        /// Its kind.
        kind: LinkKind,
        /// MTU, if given.
        mtu: Option<u32>,
        /// MAC address, if given.
        address: Option<[u8; 6]>,
    },
    /// `ip link del NAME`.
    Del(String),
    /// `ip link set [dev] NAME CHANGES...`.
    Set {
        /// The link.
        dev: String,
        /// The changes, applied in order.
        changes: Vec<LinkSet>,
    },
    /// `ip link [show [dev] NAME] [type KIND]`.
    Show {
        /// Only this link.
        dev: Option<String>,
        /// Only links of this kind (`bridge`, `veth`, ...).
        kind: Option<String>,
    },
}

/// `ip addr` verbs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrCmd {
    /// `ip addr add CIDR dev NAME`.
    Add {
        /// Address and prefix (a bare address is a host prefix).
        addr: IpNet,
        /// The interface.
        dev: String,
    },
    /// `ip addr del CIDR dev NAME`.
    Del {
        /// Address and prefix.
        addr: IpNet,
        /// The interface.
        dev: String,
    },
    /// `ip addr flush dev NAME`.
    Flush {
        /// The interface.
        dev: String,
    },
    /// `ip addr [show [dev] NAME]`.
    Show {
        /// Only this interface.
        dev: Option<String>,
    },
}

/// The destination of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteDst {
    /// `default` (0.0.0.0/0).
    Default,
    /// A prefix (a bare address is a host route).
    Net(IpNet),
}

/// `ip route` verbs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteCmd {
    /// `ip route add|replace DST [via IP] [dev NAME] [metric N] [src IP]`.
    Add {
        /// Destination.
        dst: RouteDst,
        /// Gateway.
        via: Option<IpAddr>,
        /// Output device.
        dev: Option<String>,
        /// Metric (0 when omitted).
        metric: Option<u32>,
        /// Preferred source address.
        src: Option<IpAddr>,
        /// `replace` rather than `add` (no error if it exists).
        replace: bool,
        /// `onlink`: the gateway is reachable on `dev` even without a connected route to it.
        onlink: bool,
    },
    /// `ip route del DST [via IP] [dev NAME] [metric N]`.
    Del {
        /// Destination.
        dst: RouteDst,
        /// Gateway to match.
        via: Option<IpAddr>,
        /// Device to match.
        dev: Option<String>,
        /// Metric to match.
        metric: Option<u32>,
    },
    /// `ip route [show]`.
    Show,
    /// `ip route get ADDR`.
    Get(IpAddr),
}

/// `ip neigh` verbs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeighCmd {
    /// `ip neigh add|replace IP lladdr MAC dev NAME`.
    Add {
        /// The neighbour's address.
        ip: IpAddr,
        /// Its MAC address.
        lladdr: [u8; 6],
        /// The interface.
        dev: String,
        /// `replace` rather than `add`.
        replace: bool,
    },
    /// `ip neigh del IP dev NAME`.
    Del {
        /// The neighbour's address.
        ip: IpAddr,
        /// The interface.
        dev: String,
    },
    /// `ip neigh [show [dev NAME]]`.
    Show {
        /// Only this interface.
        dev: Option<String>,
    },
}

/// Whether `word` abbreviates `full` (at least `min` characters), as iproute2 matches keywords.
fn abbrev(word: &str, full: &str, min: usize) -> bool {
    word.len() >= min && full.starts_with(word)
}

/// Parses the words after `ip` (options such as `-n NS` already removed).
pub fn parse_ip(words: &[String]) -> Result<IpCommand, ParseError> {
    let Some((object, rest)) = words.split_first() else {
        return Err(ParseError::new("Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }"));
    };
    let o = object.as_str();
    if abbrev(o, "netns", 2) {
        parse_netns(rest).map(IpCommand::Netns)
    } else if abbrev(o, "link", 1) {
        parse_link(rest).map(IpCommand::Link)
    } else if abbrev(o, "address", 1) {
        parse_addr(rest).map(IpCommand::Addr)
    } else if abbrev(o, "route", 1) {
        parse_route(rest).map(IpCommand::Route)
    } else if abbrev(o, "neighbour", 1) || abbrev(o, "neighbor", 1) {
        parse_neigh(rest).map(IpCommand::Neigh)
    } else {
        Err(ParseError::new(format!("Object \"{o}\" is unknown, try \"ip help\".")))
    }
}

fn unknown_verb(verb: &str, object: &str) -> ParseError {
    ParseError::new(format!("Command \"{verb}\" is unknown, try \"ip {object} help\"."))
}

fn is_show(verb: &str) -> bool {
    abbrev(verb, "show", 1) || abbrev(verb, "list", 1) || verb == "lst" || verb == "ls"
}

fn is_del(verb: &str) -> bool {
    abbrev(verb, "delete", 1)
}

fn parse_netns(words: &[String]) -> Result<NetnsCmd, ParseError> {
    match words {
        [] => Ok(NetnsCmd::List),
        [verb, rest @ ..] => {
            let v = verb.as_str();
            if is_show(v) {
                Ok(NetnsCmd::List)
            } else if v == "add" {
                one_name(rest, "netns add").map(NetnsCmd::Add)
            } else if is_del(v) {
                one_name(rest, "netns delete").map(NetnsCmd::Del)
            } else if v == "exec" {
                match rest {
                    [ns, command @ ..] if !command.is_empty() => {
                        Ok(NetnsCmd::Exec { netns: ns.clone(), command: command.to_vec() })
                    }
                    _ => Err(ParseError::new("No netns name specified")),
                }
            } else {
                Err(unknown_verb(v, "netns"))
            }
        }
    }
}

fn one_name(rest: &[String], what: &str) -> Result<String, ParseError> {
    match rest {
        [name] => Ok(name.clone()),
        [] => Err(ParseError::new(format!("No netns name specified (ip {what} NAME)"))),
        [_, extra, ..] => Err(garbage(extra)),
    }
}

fn garbage(word: &str) -> ParseError {
    ParseError::new(format!("Error: either \"dev\" is duplicate, or \"{word}\" is a garbage."))
}

fn value<'a>(it: &mut std::slice::Iter<'a, String>, key: &str) -> Result<&'a String, ParseError> {
    it.next().ok_or_else(|| {
        ParseError::new(format!(
            "Command line is not complete. Try option \"help\" (after \"{key}\")"
        ))
    })
}

fn parse_u32(text: &str, what: &str) -> Result<u32, ParseError> {
    text.parse().map_err(|_| {
        ParseError::new(format!("Error: argument \"{text}\" is wrong: invalid {what}"))
    })
}

fn parse_addr_word(text: &str) -> Result<IpAddr, ParseError> {
    text.parse().map_err(|_| {
        ParseError::new(format!("Error: inet address is expected rather than \"{text}\"."))
    })
}

fn parse_prefix(text: &str) -> Result<IpNet, ParseError> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net);
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        ParseError::new(format!("Error: any valid prefix is expected rather than \"{text}\"."))
    })
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Result<[u8; 6], ParseError> {
    let parts: Vec<&str> = text.split(':').collect();
    let bad = || ParseError::new(format!("Error: \"{text}\" is not a valid link-layer address."));
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(parts) {
        *slot = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

fn parse_link(words: &[String]) -> Result<LinkCmd, ParseError> {
    let Some((verb, rest)) = words.split_first() else {
        return Ok(LinkCmd::Show { dev: None, kind: None });
    };
    let v = verb.as_str();
    if v == "add" {
        parse_link_add(rest)
    } else if is_del(v) {
        let mut it = rest.iter();
        let mut name = None;
        while let Some(w) = it.next() {
            match w.as_str() {
                "dev" => name = Some(value(&mut it, "dev")?.clone()),
                _ if name.is_none() => name = Some(w.clone()),
                other => return Err(garbage(other)),
            }
        }
        name.map(LinkCmd::Del)
            .ok_or_else(|| ParseError::new("Not enough information: \"dev\" argument is required."))
    } else if v == "set" {
        parse_link_set(rest)
    } else if is_show(v) {
        let mut it = rest.iter();
        let (mut dev, mut kind) = (None, None);
        while let Some(w) = it.next() {
            match w.as_str() {
                "dev" => dev = Some(value(&mut it, "dev")?.clone()),
                "type" => kind = Some(value(&mut it, "type")?.clone()),
                "up" => {}
                _ if dev.is_none() => dev = Some(w.clone()),
                other => return Err(garbage(other)),
            }
        }
        Ok(LinkCmd::Show { dev, kind })
    } else {
        Err(unknown_verb(v, "link"))
    }
}

fn parse_link_add(words: &[String]) -> Result<LinkCmd, ParseError> {
    let mut it = words.iter();
    let (mut name, mut mtu, mut address, mut kind) = (None, None, None, None);
    while let Some(w) = it.next() {
        match w.as_str() {
            "name" | "dev" => name = Some(value(&mut it, w)?.clone()),
            "mtu" => mtu = Some(parse_u32(value(&mut it, "mtu")?, "MTU")?),
            "address" => address = Some(parse_mac(value(&mut it, "address")?)?),
            "type" => {
                let t = value(&mut it, "type")?;
                let rest: Vec<String> = it.by_ref().cloned().collect();
                kind = Some(parse_link_kind(t, &rest)?);
            }
            _ if name.is_none() => name = Some(w.clone()),
            other => return Err(garbage(other)),
        }
    }
    let name = name
        .ok_or_else(|| ParseError::new("Not enough information: \"dev\" argument is required."))?;
    let kind = kind
        .ok_or_else(|| ParseError::new("Not enough information: \"type\" argument is required."))?;
    Ok(LinkCmd::Add { name, kind, mtu, address })
}

fn parse_link_kind(kind: &str, rest: &[String]) -> Result<LinkKind, ParseError> {
    let mut it = rest.iter();
    match kind {
        "veth" => {
            let (mut peer, mut peer_netns) = (None, None);
            while let Some(w) = it.next() {
                match w.as_str() {
                    "peer" => {}
                    "name" => peer = Some(value(&mut it, "name")?.clone()),
                    "netns" => peer_netns = Some(value(&mut it, "netns")?.clone()),
                    _ if peer.is_none() => peer = Some(w.clone()),
                    other => return Err(garbage(other)),
                }
            }
            let peer = peer.ok_or_else(|| {
                ParseError::new("Not enough information: veth needs \"peer name NAME\".")
            })?;
            Ok(LinkKind::Veth { peer, peer_netns })
        }
        "bridge" => match it.next() {
            None => Ok(LinkKind::Bridge),
            Some(w) => Err(garbage(w)),
        },
        "dummy" => match it.next() {
            None => Ok(LinkKind::Dummy),
            Some(w) => Err(garbage(w)),
        },
        "vxlan" => {
            let (mut vni, mut local, mut remote, mut dstport, mut dev) =
                (None, None, None, 4789u16, None);
            while let Some(w) = it.next() {
                match w.as_str() {
                    "id" | "vni" => vni = Some(parse_u32(value(&mut it, "id")?, "id")?),
                    "local" => local = Some(parse_addr_word(value(&mut it, "local")?)?),
                    "remote" => remote = Some(parse_addr_word(value(&mut it, "remote")?)?),
                    "dev" => dev = Some(value(&mut it, "dev")?.clone()),
                    "dstport" => {
                        let p = value(&mut it, "dstport")?;
                        dstport = p.parse().map_err(|_| {
                            ParseError::new(format!("Error: argument \"{p}\" is wrong: dstport"))
                        })?;
                    }
                    "nolearning" | "learning" => {}
                    other => return Err(garbage(other)),
                }
            }
            let vni = vni.ok_or_else(|| {
                ParseError::new("Error: vxlan: missing virtual network identifier (id).")
            })?;
            if vni >= 1 << 24 {
                return Err(ParseError::new(format!(
                    "Error: argument \"{vni}\" is wrong: invalid id"
                )));
            }
            Ok(LinkKind::Vxlan { vni, local, remote, dstport, dev })
        }
        other => Err(ParseError::new(format!("Error: Unknown device type \"{other}\"."))),
    }
}

fn parse_link_set(words: &[String]) -> Result<LinkCmd, ParseError> {
    let mut it = words.iter();
    let mut dev = None;
    let mut changes = Vec::new();
    while let Some(w) = it.next() {
        match w.as_str() {
            "dev" => dev = Some(value(&mut it, "dev")?.clone()),
            "up" => changes.push(LinkSet::Up),
            "down" => changes.push(LinkSet::Down),
            "netns" => changes.push(LinkSet::Netns(value(&mut it, "netns")?.clone())),
            "master" => changes.push(LinkSet::Master(value(&mut it, "master")?.clone())),
            "nomaster" => changes.push(LinkSet::NoMaster),
            "mtu" => changes.push(LinkSet::Mtu(parse_u32(value(&mut it, "mtu")?, "MTU")?)),
            "address" => changes.push(LinkSet::Address(parse_mac(value(&mut it, "address")?)?)),
            "name" => changes.push(LinkSet::Name(value(&mut it, "name")?.clone())),
            "type" => {
                let t = value(&mut it, "type")?;
                if t != "bridge_slave" {
                    return Err(ParseError::new(format!(
                        "Error: kns supports only \"type bridge_slave\" here, not \"{t}\"."
                    )));
                }
            }
            "hairpin" => {
                let on = value(&mut it, "hairpin")?;
                changes.push(LinkSet::Hairpin(on_off(on)?));
            }
            _ if dev.is_none() => dev = Some(w.clone()),
            other => return Err(garbage(other)),
        }
    }
    let dev = dev
        .ok_or_else(|| ParseError::new("Not enough information: \"dev\" argument is required."))?;
    Ok(LinkCmd::Set { dev, changes })
}

fn on_off(word: &str) -> Result<bool, ParseError> {
    match word {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(ParseError::new(format!(
            "Error: argument of \"hairpin\" must be \"on\" or \"off\", not \"{other}\"."
        ))),
    }
}

fn parse_addr(words: &[String]) -> Result<AddrCmd, ParseError> {
    let Some((verb, rest)) = words.split_first() else {
        return Ok(AddrCmd::Show { dev: None });
    };
    let v = verb.as_str();
    let mut it = rest.iter();
    let (mut addr, mut dev) = (None, None);
    while let Some(w) = it.next() {
        match w.as_str() {
            "dev" => dev = Some(value(&mut it, "dev")?.clone()),
            "brd" | "broadcast" | "label" | "scope" => {
                value(&mut it, w)?;
            }
            "local" => addr = Some(parse_prefix(value(&mut it, "local")?)?),
            _ if addr.is_none() && v != "flush" && !is_show(v) => addr = Some(parse_prefix(w)?),
            _ if dev.is_none() && (v == "flush" || is_show(v)) => dev = Some(w.clone()),
            other => return Err(garbage(other)),
        }
    }
    let need_dev = || ParseError::new("Not enough information: \"dev\" argument is required.");
    if v == "add" || is_del(v) {
        let addr = addr.ok_or_else(|| {
            ParseError::new("Error: any valid prefix is expected rather than \"\".")
        })?;
        let dev = dev.ok_or_else(need_dev)?;
        Ok(if v == "add" { AddrCmd::Add { addr, dev } } else { AddrCmd::Del { addr, dev } })
    } else if v == "flush" {
        Ok(AddrCmd::Flush { dev: dev.ok_or_else(need_dev)? })
    } else if is_show(v) {
        Ok(AddrCmd::Show { dev })
    } else {
        Err(unknown_verb(v, "address"))
    }
}

fn parse_route(words: &[String]) -> Result<RouteCmd, ParseError> {
    let Some((verb, rest)) = words.split_first() else {
        return Ok(RouteCmd::Show);
    };
    let v = verb.as_str();
    if is_show(v) {
        return Ok(RouteCmd::Show);
    }
    if v == "get" {
        return match rest {
            [addr] => Ok(RouteCmd::Get(parse_addr_word(addr)?)),
            [] => Err(ParseError::new("need at least a destination address")),
            [_, extra, ..] => Err(garbage(extra)),
        };
    }
    let replace = v == "replace" || v == "change";
    if v != "add" && !replace && !is_del(v) {
        return Err(unknown_verb(v, "route"));
    }
    let mut it = rest.iter();
    let (mut dst, mut via, mut dev, mut metric, mut src) = (None, None, None, None, None);
    let mut onlink = false;
    while let Some(w) = it.next() {
        match w.as_str() {
            "via" => via = Some(parse_addr_word(value(&mut it, "via")?)?),
            "dev" | "oif" => dev = Some(value(&mut it, "dev")?.clone()),
            "metric" | "preference" | "priority" => {
                metric = Some(parse_u32(value(&mut it, "metric")?, "metric")?)
            }
            "src" => src = Some(parse_addr_word(value(&mut it, "src")?)?),
            "proto" | "scope" | "table" => {
                value(&mut it, w)?;
            }
            "onlink" => onlink = true,
            "default" if dst.is_none() => dst = Some(RouteDst::Default),
            "to" => dst = Some(RouteDst::Net(parse_prefix(value(&mut it, "to")?)?)),
            _ if dst.is_none() => dst = Some(RouteDst::Net(parse_prefix(w)?)),
            other => return Err(garbage(other)),
        }
    }
    let dst = dst.ok_or_else(|| {
        ParseError::new("Error: destination is expected (a prefix or \"default\").")
    })?;
    if is_del(v) {
        return Ok(RouteCmd::Del { dst, via, dev, metric });
    }
    if via.is_none() && dev.is_none() {
        return Err(ParseError::new("Error: Device for nexthop is not specified."));
    }
    if onlink && dev.is_none() {
        return Err(ParseError::new("Error: Device for nexthop is not specified."));
    }
    Ok(RouteCmd::Add { dst, via, dev, metric, src, replace, onlink })
}

fn parse_neigh(words: &[String]) -> Result<NeighCmd, ParseError> {
    let Some((verb, rest)) = words.split_first() else {
        return Ok(NeighCmd::Show { dev: None });
    };
    let v = verb.as_str();
    let mut it = rest.iter();
    let (mut ip, mut lladdr, mut dev) = (None, None, None);
    while let Some(w) = it.next() {
        match w.as_str() {
            "lladdr" => lladdr = Some(parse_mac(value(&mut it, "lladdr")?)?),
            "dev" => dev = Some(value(&mut it, "dev")?.clone()),
            "nud" => {
                value(&mut it, "nud")?;
            }
            "to" => ip = Some(parse_addr_word(value(&mut it, "to")?)?),
            _ if ip.is_none() && !is_show(v) => ip = Some(parse_addr_word(w)?),
            other => return Err(garbage(other)),
        }
    }
    let need_dev = || ParseError::new("Device and destination are required arguments.");
    if is_show(v) {
        Ok(NeighCmd::Show { dev })
    } else if v == "add" || v == "replace" {
        let lladdr = lladdr.ok_or_else(|| {
            ParseError::new("Error: \"lladdr\" is required for a static neighbour.")
        })?;
        Ok(NeighCmd::Add {
            ip: ip.ok_or_else(need_dev)?,
            lladdr,
            dev: dev.ok_or_else(need_dev)?,
            replace: v == "replace",
        })
    } else if is_del(v) {
        Ok(NeighCmd::Del { ip: ip.ok_or_else(need_dev)?, dev: dev.ok_or_else(need_dev)? })
    } else {
        Err(unknown_verb(v, "neigh"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(line: &str) -> Result<IpCommand, ParseError> {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse_ip(&words)
    }

    #[test]
    fn parses_the_seed_commands() {
        assert_eq!(
            ip("link add my-bridge type bridge").unwrap(),
            IpCommand::Link(LinkCmd::Add {
                name: "my-bridge".into(),
                kind: LinkKind::Bridge,
                mtu: None,
                address: None
            })
        );
        assert_eq!(
            ip("link set dev my-bridge up").unwrap(),
            IpCommand::Link(LinkCmd::Set { dev: "my-bridge".into(), changes: vec![LinkSet::Up] })
        );
        assert_eq!(
            ip("route add 10.1.0.0/24 via 192.168.1.1").unwrap(),
            IpCommand::Route(RouteCmd::Add {
                dst: RouteDst::Net("10.1.0.0/24".parse().unwrap()),
                via: Some("192.168.1.1".parse().unwrap()),
                dev: None,
                metric: None,
                src: None,
                replace: false,
                onlink: false,
            })
        );
        assert!(matches!(
            ip("route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink").unwrap(),
            IpCommand::Route(RouteCmd::Add { onlink: true, .. })
        ));
        assert!(ip("route add 10.244.1.0/24 via 10.244.1.0 onlink").is_err());
        assert_eq!(ip("netns add red").unwrap(), IpCommand::Netns(NetnsCmd::Add("red".into())));
        assert_eq!(ip("a").unwrap(), IpCommand::Addr(AddrCmd::Show { dev: None }));
        assert_eq!(ip("r").unwrap(), IpCommand::Route(RouteCmd::Show));
        assert_eq!(ip("l").unwrap(), IpCommand::Link(LinkCmd::Show { dev: None, kind: None }));
    }

    #[test]
    fn parses_veth_vxlan_addr_neigh() {
        assert_eq!(
            ip("link add veth-red type veth peer name veth-blue netns blue").unwrap(),
            IpCommand::Link(LinkCmd::Add {
                name: "veth-red".into(),
                kind: LinkKind::Veth { peer: "veth-blue".into(), peer_netns: Some("blue".into()) },
                mtu: None,
                address: None,
            })
        );
        assert_eq!(
            ip("link add vxlan0 type vxlan id 42 local 192.168.0.11 dstport 4789 dev eth0")
                .unwrap(),
            IpCommand::Link(LinkCmd::Add {
                name: "vxlan0".into(),
                kind: LinkKind::Vxlan {
                    vni: 42,
                    local: Some("192.168.0.11".parse().unwrap()),
                    remote: None,
                    dstport: 4789,
                    dev: Some("eth0".into()),
                },
                mtu: None,
                address: None,
            })
        );
        assert_eq!(
            ip("addr add 10.0.0.1/24 brd + dev veth0").unwrap(),
            IpCommand::Addr(AddrCmd::Add {
                addr: "10.0.0.1/24".parse().unwrap(),
                dev: "veth0".into()
            })
        );
        assert_eq!(
            ip("neigh add 10.0.0.2 lladdr 02:00:00:00:00:02 dev veth0").unwrap(),
            IpCommand::Neigh(NeighCmd::Add {
                ip: "10.0.0.2".parse().unwrap(),
                lladdr: [2, 0, 0, 0, 0, 2],
                dev: "veth0".into(),
                replace: false,
            })
        );
        assert_eq!(
            ip("route get 10.0.0.9").unwrap(),
            IpCommand::Route(RouteCmd::Get("10.0.0.9".parse().unwrap()))
        );
    }

    #[test]
    fn errors_read_like_iproute2() {
        assert_eq!(
            ip("foo").unwrap_err().to_string(),
            "Object \"foo\" is unknown, try \"ip help\"."
        );
        assert_eq!(
            ip("link frob").unwrap_err().to_string(),
            "Command \"frob\" is unknown, try \"ip link help\"."
        );
        assert_eq!(
            ip("addr add 10.0.0.300/24 dev x").unwrap_err().to_string(),
            "Error: any valid prefix is expected rather than \"10.0.0.300/24\"."
        );
        assert_eq!(
            ip("route add 10.0.0.0/8").unwrap_err().to_string(),
            "Error: Device for nexthop is not specified."
        );
        assert_eq!(
            ip("link add x type tunnelx").unwrap_err().to_string(),
            "Error: Unknown device type \"tunnelx\"."
        );
        assert_eq!(
            ip("link set up").unwrap_err().to_string(),
            "Not enough information: \"dev\" argument is required."
        );
    }
}
