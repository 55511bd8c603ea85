//! `ptp`: a veth per container without a bridge. The container reaches everything through
//! the gateway address, which sits on the node's end as a /32; the node reaches the
//! container through a /32 route over that veth.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use super::{
    addrs_for, check_addresses, configure_routes, del_veth_attachment, host_err, host_veth_name,
    interface, internal, ipam_type, prev_result, require_netns, setup_ip_masq,
};
use crate::cni::host::{LinkKind, Netns, RouteEntry};
use crate::cni::plugin::{CmdArgs, CniPlugin, Env};
use crate::cni::types::{Attachment, CniError, CniResult, NetConf};

/// The `ptp` plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ptp;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    ip_masq: bool,
    mtu: Option<u32>,
}

fn host_net(a: IpAddr) -> IpNet {
    IpNet::new(a, if a.is_ipv4() { 32 } else { 128 }).expect("full-length prefix")
}

impl CniPlugin for Ptp {
    fn type_name(&self) -> &str {
        "ptp"
    }

    fn add(
        &self,
        env: &mut Env<'_>,
        args: &CmdArgs,
        conf: &NetConf,
    ) -> Result<CniResult, CniError> {
        let c: Config = conf.decode()?;
        require_netns(env.host, args)?;
        let ipam = ipam_type(conf)?;
        let ns = Netns::Path(&args.netns);
        if env.host.link(ns, &args.ifname).is_ok() {
            return Err(internal(format!(
                "container veth name provided ({}) already exists",
                args.ifname
            )));
        }
        let mut result = env.delegate_add(&ipam, args, conf)?;
        if result.ips.is_empty() {
            let _ = env.delegate_del(&ipam, args, conf);
            return Err(internal("IPAM plugin returned missing IP config"));
        }
        let host_veth = host_veth_name(args);
        match wire(env, args, conf, &c, &host_veth, &mut result) {
            Ok(()) => Ok(result),
            Err(e) => {
                let _ = env.host.link_del(ns, &args.ifname);
                let _ = env.delegate_del(&ipam, args, conf);
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
        let prev = prev_result(conf)?.clone();
        let ipam = ipam_type(conf)?;
        env.delegate_check(&ipam, args, conf)?;
        require_netns(env.host, args)?;
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
        let routes = env.host.routes(Netns::Host).map_err(host_err("routes"))?;
        for a in addrs_for(&prev, index) {
            let want = host_net(a.addr());
            if !routes.iter().any(|r| r.dst == want && r.dev.as_deref() == Some(peer.as_str())) {
                return Err(internal(format!("node route to {want} via {peer} missing")));
            }
        }
        Ok(())
    }
}

fn wire(
    env: &mut Env<'_>,
    args: &CmdArgs,
    conf: &NetConf,
    c: &Config,
    host_veth: &str,
    result: &mut CniResult,
) -> Result<(), CniError> {
    let ns = Netns::Path(&args.netns);
    let h = host_err("ptp");
    env.host.link_add_veth(ns, &args.ifname, host_veth, Netns::Host).map_err(&h)?;
    if let Some(mtu) = c.mtu {
        env.host.link_set_mtu(ns, &args.ifname, mtu).map_err(&h)?;
        env.host.link_set_mtu(Netns::Host, host_veth, mtu).map_err(&h)?;
    }
    env.host.link_set_up(Netns::Host, host_veth, true).map_err(&h)?;
    env.host.link_set_up(ns, &args.ifname, true).map_err(&h)?;
    result.interfaces =
        vec![interface(env.host, Netns::Host, host_veth), interface(env.host, ns, &args.ifname)];
    for ip in &mut result.ips {
        ip.interface = Some(1);
    }
    if result.dns.is_empty()
        && let Some(d) = &conf.dns
    {
        result.dns = d.clone();
    }
    for ip in result.ips.clone() {
        let gw = ip
            .gateway
            .ok_or_else(|| internal(format!("ptp needs a gateway for {}", ip.address)))?;
        // The container: its address without the connected subnet route; the gateway on-link
        // as a host route, then the subnet through the gateway.
        env.host.addr_add(ns, &args.ifname, ip.address).map_err(&h)?;
        let subnet = ip.address.trunc();
        if subnet.prefix_len() < subnet.max_prefix_len() {
            let connected = RouteEntry::dev(subnet, &args.ifname);
            let _ = env.host.route_del(ns, &connected);
        }
        env.host.route_add(ns, &RouteEntry::dev(host_net(gw), &args.ifname)).map_err(&h)?;
        if subnet.prefix_len() < subnet.max_prefix_len() {
            let via = RouteEntry {
                dev: Some(args.ifname.clone()),
                src: Some(ip.address.addr()),
                ..RouteEntry::via(subnet, gw)
            };
            env.host.route_add(ns, &via).map_err(&h)?;
        }
        // The node: the gateway address on its end, and a host route to the container.
        let have = env.host.link(Netns::Host, host_veth).map_err(&h)?;
        if !have.addrs.iter().any(|a| a.addr() == gw) {
            env.host.addr_add(Netns::Host, host_veth, host_net(gw)).map_err(&h)?;
        }
        env.host
            .route_add(Netns::Host, &RouteEntry::dev(host_net(ip.address.addr()), host_veth))
            .map_err(&h)?;
    }
    configure_routes(env.host, &args.netns, &args.ifname, result)?;
    env.host.sysctl_set(Netns::Host, "net.ipv4.ip_forward", "1").map_err(&h)?;
    if c.ip_masq {
        for ip in &result.ips {
            setup_ip_masq(env.host, ip.address, conf.network_name(), &args.container_id)?;
        }
    }
    Ok(())
}
