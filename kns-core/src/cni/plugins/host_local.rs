//! `host-local` IPAM: addresses from ranges, reserved as files under
//! `/var/lib/cni/networks/NET/` (one file per address holding `CONTAINER\r\nIFNAME`, and
//! `last_reserved_ip.N` per range set), as the real plugin keeps them on disk.
//!
//! Allocation is deterministic: it starts after the last reserved address of the range set
//! (wrapping round), skips the gateway and addresses already reserved, and fails with a
//! message naming the range set when none is left. DEL releases by container id and ifname.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::internal;
use crate::cni::plugin::{CmdArgs, CniPlugin, Env};
use crate::cni::types::{
    Attachment, CniError, CniResult, ErrorCode, IpConfig, NetConf, Route, decode_value,
};

/// The default state directory.
pub const DATA_DIR: &str = "/var/lib/cni/networks";

/// The `host-local` IPAM plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostLocal;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    ranges: Vec<Vec<RangeConf>>,
    subnet: Option<IpNet>,
    range_start: Option<IpAddr>,
    range_end: Option<IpAddr>,
    gateway: Option<IpAddr>,
    #[serde(default)]
    routes: Vec<Route>,
    data_dir: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RangeConf {
    subnet: IpNet,
    range_start: Option<IpAddr>,
    range_end: Option<IpAddr>,
    gateway: Option<IpAddr>,
}

/// A range with its defaults filled in.
#[derive(Debug, Clone, PartialEq)]
struct Range {
    subnet: IpNet,
    start: u128,
    end: u128,
    gateway: Option<IpAddr>,
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4((v as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(v.into()),
    }
}

fn bad(msg: String) -> CniError {
    CniError::new(ErrorCode::InvalidNetworkConfig, format!("host-local: {msg}"))
}

impl Range {
    fn new(c: &RangeConf) -> Result<Range, CniError> {
        let subnet = c.subnet.trunc();
        let v4 = subnet.addr().is_ipv4();
        if (v4 && subnet.prefix_len() > 30) || (!v4 && subnet.prefix_len() > 126) {
            return Err(bad(format!("network {subnet} too small to allocate from")));
        }
        let net = to_u128(subnet.network());
        let last = to_u128(subnet.broadcast());
        let inside = |a: IpAddr, what: &str| {
            if subnet.contains(&a) {
                Ok(to_u128(a))
            } else {
                Err(bad(format!("{what} {a} not in network {subnet}")))
            }
        };
        let start = match c.range_start {
            Some(a) => inside(a, "RangeStart")?,
            None => net + 1,
        };
        let end = match c.range_end {
            Some(a) => inside(a, "RangeEnd")?,
            None if v4 => last - 1,
            None => last,
        };
        if start > end {
            return Err(bad(format!("RangeStart after RangeEnd in {subnet}")));
        }
        let gateway = match c.gateway {
            Some(g) => Some(from_u128(inside(g, "gateway")?, g)),
            None => Some(from_u128(net + 1, subnet.addr())),
        };
        Ok(Range { subnet, start, end, gateway })
    }

    fn contains(&self, a: IpAddr) -> bool {
        a.is_ipv4() == self.subnet.addr().is_ipv4() && (self.start..=self.end).contains(&to_u128(a))
    }

    fn text(&self) -> String {
        let f = |v| from_u128(v, self.subnet.addr());
        format!("{}-{}", f(self.start), f(self.end))
    }
}

struct Parsed {
    sets: Vec<Vec<Range>>,
    routes: Vec<Route>,
    dir: String,
}

fn parse(conf: &NetConf) -> Result<Parsed, CniError> {
    let ipam = conf.ipam.as_ref().ok_or_else(|| bad("missing ipam section".into()))?;
    let value = Value::Object(ipam.extra.clone().into_iter().collect());
    let c: Config = decode_value(value, "host-local ipam")?;
    let mut confs = c.ranges;
    if let Some(subnet) = c.subnet {
        confs.insert(
            0,
            vec![RangeConf {
                subnet,
                range_start: c.range_start,
                range_end: c.range_end,
                gateway: c.gateway,
            }],
        );
    }
    if confs.is_empty() || confs.iter().any(Vec::is_empty) {
        return Err(bad("no IP ranges specified".into()));
    }
    let mut sets = Vec::new();
    for set in &confs {
        let ranges = set.iter().map(Range::new).collect::<Result<Vec<_>, _>>()?;
        for (i, a) in ranges.iter().enumerate() {
            if ranges[..i].iter().any(|b| b.subnet.addr().is_ipv4() != a.subnet.addr().is_ipv4()) {
                return Err(bad("mixed address families in one range set".into()));
            }
            if ranges[..i].iter().any(|b| a.start <= b.end && b.start <= a.end) {
                return Err(bad(format!("range {} overlaps another", a.text())));
            }
        }
        sets.push(ranges);
    }
    let dir = format!("{}/{}", c.data_dir.as_deref().unwrap_or(DATA_DIR), conf.network_name());
    Ok(Parsed { sets, routes: c.routes, dir })
}

fn owner(args: &CmdArgs) -> String {
    format!("{}\r\n{}", args.container_id.trim(), args.ifname)
}

fn owner_matches(text: &str, container_id: &str, ifname: &str) -> bool {
    let mut lines = text.lines();
    lines.next().map(str::trim) == Some(container_id.trim())
        && lines.next().map(str::trim) == Some(ifname)
}

impl CniPlugin for HostLocal {
    fn type_name(&self) -> &str {
        "host-local"
    }

    fn add(
        &self,
        env: &mut Env<'_>,
        args: &CmdArgs,
        conf: &NetConf,
    ) -> Result<CniResult, CniError> {
        let p = parse(conf)?;
        let files = env.host.files();
        let owned = files.entries(&p.dir).find(|(name, text)| {
            !name.starts_with("last_reserved_ip")
                && owner_matches(text, &args.container_id, &args.ifname)
        });
        if let Some((name, _)) = owned {
            return Err(internal(format!(
                "{name} has been allocated to {}, duplicate allocation is not allowed",
                args.container_id
            )));
        }
        let mut requested = requested_ips(args, conf)?;
        if let Some(a) =
            requested.iter().find(|a| !p.sets.iter().flatten().any(|r| r.contains(**a)))
        {
            return Err(internal(format!(
                "requested IP address {a} is not in any configured range"
            )));
        }
        let mut ips = Vec::new();
        let mut taken: Vec<String> = Vec::new();
        let mut last_reserved = Vec::new();
        for (idx, set) in p.sets.iter().enumerate() {
            let last_path = format!("{}/last_reserved_ip.{idx}", p.dir);
            let wanted = requested.iter().position(|a| set.iter().any(|r| r.contains(*a)));
            let chosen = match wanted {
                Some(i) => {
                    let a = requested.remove(i);
                    let r = set.iter().find(|r| r.contains(a)).expect("found just above");
                    if Some(a) == r.gateway || files.read(&format!("{}/{a}", p.dir)).is_ok() {
                        Err(format!(
                            "requested IP address {a} is not available in range set {}",
                            r.text()
                        ))
                    } else {
                        Ok((a, r))
                    }
                }
                None => {
                    let last =
                        files.read(&last_path).ok().and_then(|t| t.trim().parse::<IpAddr>().ok());
                    allocate(set, last, |a| files.read(&format!("{}/{a}", p.dir)).is_ok()).ok_or_else(|| {
                        let sets: Vec<String> = set.iter().map(Range::text).collect();
                        format!(
                            "failed to allocate for range {idx}: no IP addresses available in range set: {}",
                            sets.join(",")
                        )
                    })
                }
            };
            let (ip, range) = match chosen {
                Ok(c) => c,
                Err(msg) => {
                    // Release what this call reserved from earlier range sets before failing.
                    for a in &taken {
                        files.remove(a);
                    }
                    return Err(internal(msg));
                }
            };
            let path = format!("{}/{ip}", p.dir);
            files.write(&path, &owner(args));
            last_reserved.push((idx, ip));
            taken.push(path);
            ips.push(IpConfig {
                // Invariant: the prefix length comes from a parsed `IpNet` of the same family.
                address: IpNet::new(ip, range.subnet.prefix_len())
                    .expect("prefix length of the range's own subnet"),
                gateway: range.gateway,
                interface: None,
                extra: Default::default(),
            });
        }
        if let Some(a) = requested.first() {
            // Two requested addresses for one range set: the second finds no set left.
            for t in &taken {
                files.remove(t);
            }
            return Err(internal(format!("requested IP address {a} has no range set left")));
        }
        for (idx, ip) in last_reserved {
            files.write(&format!("{}/last_reserved_ip.{idx}", p.dir), &ip.to_string());
        }
        Ok(CniResult {
            cni_version: conf.version().to_string(),
            ips,
            routes: p.routes,
            ..Default::default()
        })
    }

    fn del(&self, env: &mut Env<'_>, args: &CmdArgs, conf: &NetConf) -> Result<(), CniError> {
        let p = parse(conf)?;
        release(env, &p.dir, |cid, ifname| {
            cid == args.container_id.trim() && ifname == args.ifname
        });
        Ok(())
    }

    fn check(&self, env: &mut Env<'_>, args: &CmdArgs, conf: &NetConf) -> Result<(), CniError> {
        let p = parse(conf)?;
        let files = env.host.files_ref();
        let found = files.entries(&p.dir).any(|(n, t)| {
            !n.starts_with("last_reserved_ip") && owner_matches(t, &args.container_id, &args.ifname)
        });
        if !found {
            return Err(internal(format!(
                "host-local: Failed to find address added by container {}",
                args.container_id
            )));
        }
        Ok(())
    }

    fn gc(&self, env: &mut Env<'_>, conf: &NetConf, valid: &[Attachment]) -> Result<(), CniError> {
        let p = parse(conf)?;
        release(env, &p.dir, |cid, ifname| {
            !valid.iter().any(|a| a.container_id == cid && a.ifname == ifname)
        });
        Ok(())
    }
}

/// Addresses the runtime asked for, as the real plugin reads them: the `ips` capability
/// (`runtimeConfig.ips`), `args.cni.ips` in the configuration, and `IP=` in `CNI_ARGS`
/// (comma-separated); a prefix length, if given, is ignored.
fn requested_ips(args: &CmdArgs, conf: &NetConf) -> Result<Vec<IpAddr>, CniError> {
    let mut texts: Vec<String> = Vec::new();
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    texts.extend(strings(conf.runtime_config.get("ips")));
    texts.extend(strings(conf.args.as_ref().and_then(|a| a.get("cni")).and_then(|c| c.get("ips"))));
    for (k, v) in &args.args {
        if k == "IP" {
            texts.extend(v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
        }
    }
    let mut out = Vec::new();
    for t in texts {
        let a = t.split('/').next().and_then(|a| a.parse::<IpAddr>().ok()).ok_or_else(|| {
            CniError::new(
                ErrorCode::InvalidNetworkConfig,
                format!("host-local: invalid requested IP {t:?}"),
            )
        })?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// Removes the reservations whose owner satisfies `doomed`.
fn release(env: &mut Env<'_>, dir: &str, doomed: impl Fn(&str, &str) -> bool) {
    let files = env.host.files();
    let gone: Vec<String> = files
        .entries(dir)
        .filter(|(name, text)| {
            let mut lines = text.lines().map(str::trim);
            let (cid, ifname) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
            !name.starts_with("last_reserved_ip") && doomed(cid, ifname)
        })
        .map(|(name, _)| format!("{dir}/{name}"))
        .collect();
    for path in gone {
        files.remove(&path);
    }
}

/// The next free address of a range set: after `last` when it lies in the set, else from the
/// first range's start; the gateway and reserved addresses are skipped.
fn allocate(
    set: &[Range],
    last: Option<IpAddr>,
    reserved: impl Fn(IpAddr) -> bool,
) -> Option<(IpAddr, &Range)> {
    let total: u128 = set.iter().map(|r| r.end - r.start + 1).sum();
    // Position of an address in the set's sequence of addresses.
    let start_pos = last
        .and_then(|l| {
            let mut base = 0u128;
            for r in set {
                if r.contains(l) {
                    return Some((base + to_u128(l) - r.start + 1) % total);
                }
                base += r.end - r.start + 1;
            }
            None
        })
        .unwrap_or(0);
    let at = |pos: u128| {
        let mut pos = pos;
        for r in set {
            let n = r.end - r.start + 1;
            if pos < n {
                return (from_u128(r.start + pos, r.subnet.addr()), r);
            }
            pos -= n;
        }
        unreachable!("positions are taken modulo the set's size")
    };
    // Ranges are at most /0..; scanning is bounded by the number of addresses, which for the
    // reserved-file check is what the real plugin does too.
    let mut i = 0u128;
    while i < total {
        let (ip, r) = at((start_pos + i) % total);
        if Some(ip) != r.gateway && !reserved(ip) {
            return Some((ip, r));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(subnet: &str, start: Option<&str>, end: Option<&str>) -> Range {
        Range::new(&RangeConf {
            subnet: subnet.parse().unwrap(),
            range_start: start.map(|s| s.parse().unwrap()),
            range_end: end.map(|s| s.parse().unwrap()),
            gateway: None,
        })
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_skip_network_gateway_and_broadcast() {
        let r = range("10.1.1.0/24", None, None);
        assert_eq!(r.text(), "10.1.1.1-10.1.1.254");
        assert_eq!(r.gateway, Some(ip("10.1.1.1")));
        let set = [r];
        assert_eq!(allocate(&set, None, |_| false).unwrap().0, ip("10.1.1.2"));
        assert_eq!(allocate(&set, Some(ip("10.1.1.7")), |_| false).unwrap().0, ip("10.1.1.8"));
        // After the end it wraps round, skipping the gateway.
        assert_eq!(allocate(&set, Some(ip("10.1.1.254")), |_| false).unwrap().0, ip("10.1.1.2"));
        assert_eq!(allocate(&set, None, |a| a == ip("10.1.1.2")).unwrap().0, ip("10.1.1.3"));
        // A last address outside the set restarts from the beginning.
        assert_eq!(allocate(&set, Some(ip("192.168.0.1")), |_| false).unwrap().0, ip("10.1.1.2"));
    }

    #[test]
    fn range_sets_continue_into_the_next_range_and_exhaust() {
        let set = [
            range("10.0.0.0/24", Some("10.0.0.10"), Some("10.0.0.11")),
            range("10.0.5.0/24", Some("10.0.5.20"), Some("10.0.5.20")),
        ];
        assert_eq!(allocate(&set, Some(ip("10.0.0.11")), |_| false).unwrap().0, ip("10.0.5.20"));
        let all = [ip("10.0.0.10"), ip("10.0.0.11"), ip("10.0.5.20")];
        assert!(allocate(&set, None, |a| all.contains(&a)).is_none());
        let v6 = range("fd00::/120", None, None);
        assert_eq!(v6.text(), "fd00::1-fd00::ff");
    }

    #[test]
    fn bad_ranges_are_config_errors() {
        let c = |s: &str, start: Option<&str>| {
            Range::new(&RangeConf {
                subnet: s.parse().unwrap(),
                range_start: start.map(|x| x.parse().unwrap()),
                range_end: None,
                gateway: None,
            })
        };
        assert_eq!(c("10.0.0.0/31", None).unwrap_err().code, 7);
        assert!(c("10.0.0.0/24", Some("10.0.1.5")).unwrap_err().msg.contains("not in network"));
    }
}
