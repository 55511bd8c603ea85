//! The reference plugins, written against [`CniPlugin`](super::CniPlugin) and
//! [`NetHost`](super::NetHost) only, as a third party would write them:
//! [`HostLocal`] (IPAM), [`Bridge`], [`Ptp`], [`Portmap`] and [`Loopback`].
//!
//! Names chosen by real plugins at random (host-side veths, iptables chains) come here from a
//! fixed hash of the container, so runs are reproducible.

mod bridge;
mod host_local;
mod loopback;
mod portmap;
mod ptp;

pub use bridge::Bridge;
pub use host_local::HostLocal;
pub use loopback::Loopback;
pub use portmap::{Portmap, port_mappings_value};
pub use ptp::Ptp;

use ipnet::IpNet;

use super::host::{HostError, NetHost, Netns, RouteEntry, format_mac};
use super::plugin::{CmdArgs, Env, PluginRegistry};
use super::types::{CniError, CniResult, ErrorCode, Interface, NetConf};

/// Installs every reference plugin in `registry`.
pub fn register_all(registry: &mut PluginRegistry) {
    registry.register(Box::new(HostLocal));
    registry.register(Box::new(Bridge));
    registry.register(Box::new(Ptp));
    registry.register(Box::new(Portmap));
    registry.register(Box::new(Loopback));
}

/// libcni/skel's code for a plain (untyped) plugin failure.
pub const ERR_INTERNAL: u32 = 999;

/// A host failure as the plugin reports it: a missing netns is code 3, anything else 999
/// with `context` in front.
pub(crate) fn host_err(context: &str) -> impl Fn(HostError) -> CniError + '_ {
    move |e| match e {
        HostError::NoNetns(p) => {
            CniError::new(ErrorCode::UnknownContainer, format!("failed to open netns {p:?}"))
        }
        other => CniError::new(ErrorCode::Plugin(ERR_INTERNAL), format!("{context}: {other}")),
    }
}

/// A plugin failure with code 999.
pub(crate) fn internal(msg: impl Into<String>) -> CniError {
    CniError::new(ErrorCode::Plugin(ERR_INTERNAL), msg)
}

/// Fails with code 3 unless the container's netns exists.
pub(crate) fn require_netns(host: &dyn NetHost, args: &CmdArgs) -> Result<(), CniError> {
    if host.netns_exists(&args.netns) {
        Ok(())
    } else {
        Err(CniError::new(
            ErrorCode::UnknownContainer,
            format!("failed to open netns {:?}", args.netns),
        ))
    }
}

/// 64-bit FNV-1a over the parts, separated.
pub(crate) fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The host-side veth name for a container interface (`veth` and 8 hex digits; real plugins
/// draw it at random).
pub(crate) fn host_veth_name(args: &CmdArgs) -> String {
    format!("veth{:08x}", fnv(&[&args.container_id, &args.ifname]) as u32)
}

/// An iptables chain name for this network and container (`PREFIX` and hex digits, within
/// iptables' 28-character limit).
pub(crate) fn chain_name(prefix: &str, network: &str, container_id: &str) -> String {
    let h = format!("{:016x}", fnv(&[network, container_id]));
    let room = 28usize.saturating_sub(prefix.len()).min(h.len());
    format!("{prefix}{}", &h[..room])
}

/// Words of an iptables command.
pub(crate) fn words(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Runs iptables in the node's namespace.
pub(crate) fn ipt(host: &mut dyn NetHost, args: Vec<String>) -> Result<String, CniError> {
    let text = args.join(" ");
    host.iptables(Netns::Host, &args).map_err(|e| internal(format!("iptables {text}: {e}")))
}

/// Creates a nat chain unless it exists.
pub(crate) fn ensure_chain(host: &mut dyn NetHost, chain: &str) -> Result<(), CniError> {
    if host.iptables(Netns::Host, &words(&["-t", "nat", "-S", chain])).is_ok() {
        return Ok(());
    }
    ipt(host, words(&["-t", "nat", "-N", chain])).map(drop)
}

/// Appends `rule` to a nat chain unless an identical rule is there.
pub(crate) fn ensure_rule(
    host: &mut dyn NetHost,
    chain: &str,
    rule: &[String],
) -> Result<(), CniError> {
    ensure_rule_at(host, chain, rule, false)
}

/// Adds `rule` to a nat chain unless an identical rule is there: first in the chain when
/// `prepend`, else last.
pub(crate) fn ensure_rule_at(
    host: &mut dyn NetHost,
    chain: &str,
    rule: &[String],
    prepend: bool,
) -> Result<(), CniError> {
    let mut check = words(&["-t", "nat", "-C", chain]);
    check.extend(rule.iter().cloned());
    if host.iptables(Netns::Host, &check).is_ok() {
        return Ok(());
    }
    let mut add = words(&["-t", "nat", if prepend { "-I" } else { "-A" }, chain]);
    add.extend(rule.iter().cloned());
    ipt(host, add).map(drop)
}

/// The comment real plugins put on their rules.
fn masq_comment(network: &str, container_id: &str) -> String {
    format!("name: \"{network}\" id: \"{container_id}\"")
}

/// `ipMasq`: traffic from `addr` leaving its subnet (and not multicast) is masqueraded, through
/// a per-container chain jumped to from POSTROUTING, as the real plugins set it up.
pub(crate) fn setup_ip_masq(
    host: &mut dyn NetHost,
    addr: IpNet,
    network: &str,
    container_id: &str,
) -> Result<(), CniError> {
    if !addr.addr().is_ipv4() {
        return Ok(());
    }
    let chain = chain_name("CNI-", network, container_id);
    let comment = masq_comment(network, container_id);
    ensure_chain(host, &chain)?;
    let subnet = addr.trunc().to_string();
    ensure_rule(
        host,
        &chain,
        &words(&["-d", &subnet, "-m", "comment", "--comment", &comment, "-j", "ACCEPT"]),
    )?;
    ensure_rule(
        host,
        &chain,
        &words(&[
            "!",
            "-d",
            "224.0.0.0/4",
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            "MASQUERADE",
        ]),
    )?;
    let src = format!("{}/32", addr.addr());
    ensure_rule(
        host,
        "POSTROUTING",
        &words(&["-s", &src, "-m", "comment", "--comment", &comment, "-j", &chain]),
    )
}

/// Undoes [`setup_ip_masq`]; whatever is already gone is skipped.
pub(crate) fn teardown_ip_masq(
    host: &mut dyn NetHost,
    addr: Option<IpNet>,
    network: &str,
    container_id: &str,
) {
    let chain = chain_name("CNI-", network, container_id);
    let comment = masq_comment(network, container_id);
    if let Some(a) = addr.filter(|a| a.addr().is_ipv4()) {
        let src = format!("{}/32", a.addr());
        let rule = words(&[
            "-t",
            "nat",
            "-D",
            "POSTROUTING",
            "-s",
            &src,
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            &chain,
        ]);
        let _ = host.iptables(Netns::Host, &rule);
    }
    let _ = host.iptables(Netns::Host, &words(&["-t", "nat", "-F", &chain]));
    let _ = host.iptables(Netns::Host, &words(&["-t", "nat", "-X", &chain]));
}

/// The result's interface entry for `name` in `netns`, with its MAC and MTU as the host reports.
pub(crate) fn interface(host: &dyn NetHost, netns: Netns<'_>, name: &str) -> Interface {
    let info = host.link(netns, name).ok();
    Interface {
        name: name.to_string(),
        mac: info.as_ref().map(|i| format_mac(i.mac)),
        mtu: None,
        sandbox: match netns {
            Netns::Host => None,
            Netns::Path(p) => Some(p.to_string()),
        },
        extra: Default::default(),
    }
}

/// The IPAM section's plugin type, or error 7.
pub(crate) fn ipam_type(conf: &NetConf) -> Result<String, CniError> {
    conf.ipam.as_ref().map(|i| i.plugin_type.clone()).filter(|t| !t.is_empty()).ok_or_else(|| {
        CniError::new(
            ErrorCode::InvalidNetworkConfig,
            format!("{}: missing ipam type", conf.plugin_type),
        )
    })
}

/// The previous result, or error 7 (CHECK and chained plugins need it).
pub(crate) fn prev_result(conf: &NetConf) -> Result<&CniResult, CniError> {
    conf.prev_result.as_ref().ok_or_else(|| {
        CniError::new(
            ErrorCode::InvalidNetworkConfig,
            format!("{}: required prevResult missing", conf.plugin_type),
        )
    })
}

/// Installs the result's routes in the container through `ifname`: a route without `gw` goes
/// via the gateway of its address family, or on-link when there is none.
pub(crate) fn configure_routes(
    host: &mut dyn NetHost,
    netns: &str,
    ifname: &str,
    result: &CniResult,
) -> Result<(), CniError> {
    for r in &result.routes {
        let gw = r.gw.or_else(|| {
            result
                .ips
                .iter()
                .filter_map(|i| i.gateway)
                .find(|g| g.is_ipv4() == r.dst.addr().is_ipv4())
        });
        let entry = match gw {
            Some(g) => RouteEntry { dev: Some(ifname.to_string()), ..RouteEntry::via(r.dst, g) },
            None => RouteEntry::dev(r.dst, ifname),
        };
        host.route_add(Netns::Path(netns), &entry)
            .map_err(host_err(&format!("failed to add route {}", r.dst)))?;
    }
    Ok(())
}

/// CHECK helper: `ifname` in the container exists and carries every address in `want`.
pub(crate) fn check_addresses(
    host: &dyn NetHost,
    netns: &str,
    ifname: &str,
    want: &[IpNet],
) -> Result<(), CniError> {
    let info = host.link(Netns::Path(netns), ifname).map_err(|e| match e {
        HostError::NoLink(_) => {
            internal(format!("failed to find container interface {ifname} in {netns}"))
        }
        other => host_err("CHECK")(other),
    })?;
    for a in want {
        if !info.addrs.contains(a) {
            return Err(internal(format!("failed to match addr {a} on interface {ifname}")));
        }
    }
    Ok(())
}

/// The addresses a result assigns to the interface at `index`.
pub(crate) fn addrs_for(result: &CniResult, index: usize) -> Vec<IpNet> {
    result.ips.iter().filter(|i| i.interface == Some(index)).map(|i| i.address).collect()
}

/// DEL of a veth-based attachment (bridge, ptp): release the address through the IPAM plugin,
/// delete the container's end of the veth (its peer goes with it; already gone is fine) and,
/// with `ip_masq`, the masquerade rules of the address from `prevResult` or, failing that,
/// from the interface itself.
pub(crate) fn del_veth_attachment(
    env: &mut Env<'_>,
    args: &CmdArgs,
    conf: &NetConf,
    ip_masq: bool,
) -> Result<(), CniError> {
    let ipam = ipam_type(conf)?;
    env.delegate_del(&ipam, args, conf)?;
    let mut addr = conf
        .prev_result
        .as_ref()
        .and_then(|r| r.ips.iter().map(|i| i.address).find(|a| a.addr().is_ipv4()));
    if !args.netns.is_empty() && env.host.netns_exists(&args.netns) {
        let ns = Netns::Path(&args.netns);
        if let Ok(info) = env.host.link(ns, &args.ifname) {
            addr = addr.or_else(|| info.addrs.iter().copied().find(|a| a.addr().is_ipv4()));
            match env.host.link_del(ns, &args.ifname) {
                Ok(()) | Err(HostError::NoLink(_)) => {}
                Err(e) => return Err(host_err("failed to delete container veth")(e)),
            }
        }
    }
    if ip_masq {
        teardown_ip_masq(env.host, addr, conf.network_name(), &args.container_id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_stable_and_fit() {
        let a = CmdArgs { container_id: "c1".into(), ifname: "eth0".into(), ..Default::default() };
        assert_eq!(host_veth_name(&a), host_veth_name(&a.clone()));
        assert_eq!(host_veth_name(&a).len(), 12);
        let b = CmdArgs { container_id: "c2".into(), ..a.clone() };
        assert_ne!(host_veth_name(&a), host_veth_name(&b));
        let c = chain_name("CNI-DN-", "net", "c1");
        assert!(c.starts_with("CNI-DN-") && c.len() <= 28, "{c}");
        assert_ne!(chain_name("CNI-", "net", "c1"), chain_name("CNI-", "net2", "c1"));
    }
}
