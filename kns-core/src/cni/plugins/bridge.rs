//! `bridge`: a Linux bridge on the node (`cni0` by default) with one veth per container;
//! the bridge can be the pods' gateway (`isGateway`, `isDefaultGateway`), masquerade their
//! traffic leaving the subnet (`ipMasq`), and send frames back out of the port they came in by
//! (`hairpinMode`). Addresses come from the delegated IPAM plugin.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use super::{
    addrs_for, check_addresses, configure_routes, del_veth_attachment, host_err, host_veth_name,
    interface, internal, ipam_type, prev_result, require_netns, setup_ip_masq,
};
use crate::cni::host::{HostError, LinkKind, Netns};
use crate::cni::plugin::{CmdArgs, CniPlugin, Env};
use crate::cni::types::{Attachment, CniError, CniResult, NetConf, Route};

/// The `bridge` plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bridge;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default = "default_bridge")]
    bridge: String,
    #[serde(default)]
    is_gateway: bool,
    #[serde(default)]
    is_default_gateway: bool,
    #[serde(default)]
    ip_masq: bool,
    #[serde(default)]
    hairpin_mode: bool,
    mtu: Option<u32>,
}

fn default_bridge() -> String {
    "cni0".to_string()
}

impl CniPlugin for Bridge {
    fn type_name(&self) -> &str {
        "bridge"
    }

    fn add(
        &self,
        env: &mut Env<'_>,
        args: &CmdArgs,
        conf: &NetConf,
    ) -> Result<CniResult, CniError> {
        let mut c: Config = conf.decode()?;
        if c.is_default_gateway {
            c.is_gateway = true;
        }
        require_netns(env.host, args)?;
        let ipam = ipam_type(conf)?;
        ensure_bridge(env, &c)?;
        let host_veth = host_veth_name(args);
        let ns = Netns::Path(&args.netns);
        if env.host.link(ns, &args.ifname).is_ok() {
            return Err(internal(format!(
                "container veth name provided ({}) already exists",
                args.ifname
            )));
        }
        env.host
            .link_add_veth(ns, &args.ifname, &host_veth, Netns::Host)
            .map_err(host_err("failed to create veth"))?;
        let wired = (|| -> Result<(), HostError> {
            if let Some(mtu) = c.mtu {
                env.host.link_set_mtu(ns, &args.ifname, mtu)?;
                env.host.link_set_mtu(Netns::Host, &host_veth, mtu)?;
            }
            env.host.link_set_master(Netns::Host, &host_veth, Some(&c.bridge))?;
            env.host.link_set_up(Netns::Host, &host_veth, true)?;
            if c.hairpin_mode {
                env.host.link_set_hairpin(Netns::Host, &host_veth, true)?;
            }
            env.host.link_set_up(ns, &args.ifname, true)
        })();
        if let Err(e) = wired {
            let _ = env.host.link_del(ns, &args.ifname);
            return Err(host_err("failed to set up veth")(e));
        }
        let mut result = match env.delegate_add(&ipam, args, conf) {
            Ok(r) => r,
            Err(e) => {
                let _ = env.host.link_del(ns, &args.ifname);
                return Err(e);
            }
        };
        match configure(env, args, conf, &c, &host_veth, &mut result) {
            Ok(()) => Ok(result),
            Err(e) => {
                // Undo this ADD as far as it went, as the real plugin does on failure.
                let _ = env.delegate_del(&ipam, args, conf);
                let _ = env.host.link_del(ns, &args.ifname);
                Err(e)
            }
        }
    }

    fn del(&self, env: &mut Env<'_>, args: &CmdArgs, conf: &NetConf) -> Result<(), CniError> {
        let c: Config = conf.decode()?;
        del_veth_attachment(env, args, conf, c.ip_masq)
    }

    fn status(&self, env: &mut Env<'_>, conf: &NetConf) -> Result<(), CniError> {
        env.delegate_status(&ipam_type(conf)?, conf)
    }

    fn gc(&self, env: &mut Env<'_>, conf: &NetConf, valid: &[Attachment]) -> Result<(), CniError> {
        env.delegate_gc(&ipam_type(conf)?, conf, valid)
    }

    fn check(&self, env: &mut Env<'_>, args: &CmdArgs, conf: &NetConf) -> Result<(), CniError> {
        let c: Config = conf.decode()?;
        let prev = prev_result(conf)?.clone();
        let ipam = ipam_type(conf)?;
        env.delegate_check(&ipam, args, conf)?;
        require_netns(env.host, args)?;
        let br = env.host.link(Netns::Host, &c.bridge).map_err(host_err("bridge"))?;
        if br.kind != LinkKind::Bridge {
            return Err(internal(format!("{} is not a bridge", c.bridge)));
        }
        let index = prev
            .interfaces
            .iter()
            .position(|i| {
                i.name == args.ifname && i.sandbox.as_deref() == Some(args.netns.as_str())
            })
            .ok_or_else(|| internal(format!("interface {} not in prevResult", args.ifname)))?;
        check_addresses(env.host, &args.netns, &args.ifname, &addrs_for(&prev, index))?;
        let info = env
            .host
            .link(Netns::Path(&args.netns), &args.ifname)
            .map_err(host_err("container veth"))?;
        let LinkKind::Veth { peer_netns: None, peer } = info.kind else {
            return Err(internal(format!("{} is not a veth to the node", args.ifname)));
        };
        let host_end = env.host.link(Netns::Host, &peer).map_err(host_err("host veth"))?;
        if host_end.master.as_deref() != Some(c.bridge.as_str()) {
            return Err(internal(format!("host veth {peer} is not a port of {}", c.bridge)));
        }
        let routes = env.host.routes(Netns::Path(&args.netns)).map_err(host_err("routes"))?;
        for r in &prev.routes {
            if !routes
                .iter()
                .any(|have| have.dst == r.dst.trunc() && (r.gw.is_none() || have.gw == r.gw))
            {
                return Err(internal(format!("route to {} missing in {}", r.dst, args.netns)));
            }
        }
        Ok(())
    }
}

fn ensure_bridge(env: &mut Env<'_>, c: &Config) -> Result<(), CniError> {
    match env.host.link(Netns::Host, &c.bridge) {
        Ok(info) if info.kind != LinkKind::Bridge => {
            return Err(internal(format!("{:?} already exists but is not a bridge", c.bridge)));
        }
        Ok(_) => {}
        Err(HostError::NoLink(_)) => {
            env.host
                .link_add_bridge(Netns::Host, &c.bridge)
                .map_err(host_err("failed to create bridge"))?;
            if let Some(mtu) = c.mtu {
                env.host
                    .link_set_mtu(Netns::Host, &c.bridge, mtu)
                    .map_err(host_err("bridge mtu"))?;
            }
        }
        Err(e) => return Err(host_err("bridge")(e)),
    }
    env.host.link_set_up(Netns::Host, &c.bridge, true).map_err(host_err("failed to set bridge up"))
}

/// Everything after IPAM: the result's shape, addresses and routes in the container, the
/// gateway address on the bridge, forwarding and masquerading.
fn configure(
    env: &mut Env<'_>,
    args: &CmdArgs,
    conf: &NetConf,
    c: &Config,
    host_veth: &str,
    result: &mut CniResult,
) -> Result<(), CniError> {
    result.interfaces = vec![
        interface(env.host, Netns::Host, &c.bridge),
        interface(env.host, Netns::Host, host_veth),
        interface(env.host, Netns::Path(&args.netns), &args.ifname),
    ];
    for ip in &mut result.ips {
        ip.interface = Some(2);
    }
    if c.is_default_gateway {
        let gws: Vec<IpAddr> = result.ips.iter().filter_map(|i| i.gateway).collect();
        for gw in gws {
            let dst: IpNet =
                if gw.is_ipv4() { "0.0.0.0/0" } else { "::/0" }.parse().expect("literal prefix");
            if !result.routes.iter().any(|r| r.dst == dst) {
                result.routes.push(Route { dst, gw: Some(gw), extra: Default::default() });
            }
        }
    }
    if result.dns.is_empty()
        && let Some(d) = &conf.dns
    {
        result.dns = d.clone();
    }
    let ns = Netns::Path(&args.netns);
    for ip in &result.ips {
        env.host
            .addr_add(ns, &args.ifname, ip.address)
            .map_err(host_err("failed to add address"))?;
    }
    configure_routes(env.host, &args.netns, &args.ifname, result)?;
    if c.is_gateway {
        for ip in &result.ips {
            let Some(gw) = ip.gateway else { continue };
            let gw_net =
                IpNet::new(gw, ip.address.prefix_len()).expect("prefix of a parsed address");
            let br = env.host.link(Netns::Host, &c.bridge).map_err(host_err("bridge"))?;
            if !br.addrs.iter().any(|a| a.addr() == gw) {
                env.host
                    .addr_add(Netns::Host, &c.bridge, gw_net)
                    .map_err(host_err("failed to set bridge address"))?;
            }
        }
        env.host
            .sysctl_set(Netns::Host, "net.ipv4.ip_forward", "1")
            .map_err(host_err("failed to enable forwarding"))?;
    }
    if c.ip_masq {
        for ip in &result.ips {
            setup_ip_masq(env.host, ip.address, conf.network_name(), &args.container_id)?;
        }
    }
    Ok(())
}
