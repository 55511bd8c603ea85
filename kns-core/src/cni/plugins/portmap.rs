//! `portmap`: a chained plugin that forwards node ports to the container
//! (`runtimeConfig.portMappings`, the `portMappings` capability) with DNAT rules in the node's
//! nat table, laid out as the real plugin lays them out: `CNI-HOSTPORT-DNAT` (entered from
//! PREROUTING and OUTPUT for local destinations) jumps to one `CNI-DN-…` chain per container;
//! with `snat` (the default) a container reaching its own host port is masqueraded through
//! `CNI-HOSTPORT-SETMARK` and `CNI-HOSTPORT-MASQ`. DEL removes the container's chain and jump.
//! The previous result passes through unchanged.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

use super::{
    chain_name, ensure_chain, ensure_rule, ensure_rule_at, internal, ipt, prev_result, words,
};
use crate::cni::host::Netns;
use crate::cni::plugin::{CmdArgs, CniPlugin, Env};
use crate::cni::types::{CniError, CniResult, NetConf, decode_value};

/// The chain every host-port rule is reached through.
pub const DNAT_CHAIN: &str = "CNI-HOSTPORT-DNAT";
const SETMARK_CHAIN: &str = "CNI-HOSTPORT-SETMARK";
const MASQ_CHAIN: &str = "CNI-HOSTPORT-MASQ";
const MARK: &str = "0x2000/0x2000";

/// The `portmap` plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct Portmap;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    snat: Option<bool>,
}

/// One entry of `portMappings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortMapping {
    host_port: u16,
    container_port: u16,
    #[serde(default = "tcp")]
    protocol: String,
    #[serde(default, rename = "hostIP")]
    host_ip: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

fn mappings(conf: &NetConf) -> Result<Vec<PortMapping>, CniError> {
    let Some(v) = conf.runtime_config.get("portMappings") else { return Ok(Vec::new()) };
    let list: Vec<PortMapping> = decode_value(v.clone(), "portmap runtimeConfig.portMappings")?;
    for m in &list {
        if m.host_port == 0 || m.container_port == 0 {
            return Err(internal(format!(
                "invalid port mapping {}:{}",
                m.host_port, m.container_port
            )));
        }
        let p = m.protocol.to_ascii_lowercase();
        if !["tcp", "udp", "sctp"].contains(&p.as_str()) {
            return Err(internal(format!("unknown protocol {:?}", m.protocol)));
        }
    }
    Ok(list)
}

/// The container's IPv4 address from the previous result (an address on a container
/// interface first).
fn container_ip(prev: &CniResult) -> Option<IpAddr> {
    let in_sandbox = |i: &&crate::cni::types::IpConfig| {
        i.interface.and_then(|n| prev.interfaces.get(n)).is_some_and(|f| f.sandbox.is_some())
    };
    let v4 = |i: &&crate::cni::types::IpConfig| i.address.addr().is_ipv4();
    prev.ips
        .iter()
        .filter(v4)
        .find(in_sandbox)
        .or_else(|| prev.ips.iter().find(v4))
        .map(|i| i.address.addr())
}

fn comment(conf: &NetConf, args: &CmdArgs) -> String {
    format!("dnat name: \"{}\" id: \"{}\"", conf.network_name(), args.container_id)
}

fn jump_rule(conf: &NetConf, args: &CmdArgs, dn: &str) -> Vec<String> {
    words(&["-m", "comment", "--comment", &comment(conf, args), "-j", dn])
}

fn dnat_rules(m: &PortMapping, ip: IpAddr, snat: bool) -> Vec<Vec<String>> {
    let proto = m.protocol.to_ascii_lowercase();
    let port = m.host_port.to_string();
    let mut matcher = words(&["-p", &proto, "--dport", &port]);
    if let Some(h) = &m.host_ip {
        matcher.splice(0..0, words(&["-d", h]));
    }
    let mut out = Vec::new();
    if snat {
        let mut hairpin = words(&["-s", &format!("{ip}/32")]);
        hairpin.extend(matcher.iter().cloned());
        hairpin.extend(words(&["-j", SETMARK_CHAIN]));
        out.push(hairpin);
    }
    let mut dnat = matcher;
    dnat.extend(words(&["-j", "DNAT", "--to-destination", &format!("{ip}:{}", m.container_port)]));
    out.push(dnat);
    out
}

impl CniPlugin for Portmap {
    fn type_name(&self) -> &str {
        "portmap"
    }

    fn add(
        &self,
        env: &mut Env<'_>,
        args: &CmdArgs,
        conf: &NetConf,
    ) -> Result<CniResult, CniError> {
        let prev = prev_result(conf)
            .map_err(|_| internal("portmap must be called as a chained plugin"))?
            .clone();
        let c: Config = conf.decode()?;
        let snat = c.snat.unwrap_or(true);
        let maps = mappings(conf)?;
        if maps.is_empty() {
            return Ok(prev);
        }
        let ip = container_ip(&prev)
            .ok_or_else(|| internal("portmap: no IPv4 address in prevResult"))?;
        let host = &mut *env.host;
        ensure_chain(host, DNAT_CHAIN)?;
        let local = words(&["-m", "addrtype", "--dst-type", "LOCAL", "-j", DNAT_CHAIN]);
        ensure_rule(host, "PREROUTING", &local)?;
        ensure_rule(host, "OUTPUT", &local)?;
        if snat {
            ensure_chain(host, SETMARK_CHAIN)?;
            ensure_rule(
                host,
                SETMARK_CHAIN,
                &words(&[
                    "-m",
                    "comment",
                    "--comment",
                    "CNI portfwd masquerade mark",
                    "-j",
                    "MARK",
                    "--set-xmark",
                    MARK,
                ]),
            )?;
            ensure_chain(host, MASQ_CHAIN)?;
            ensure_rule(
                host,
                MASQ_CHAIN,
                &words(&[
                    "-m",
                    "comment",
                    "--comment",
                    "CNI portfwd requiring masquerade",
                    "-m",
                    "mark",
                    "--mark",
                    MARK,
                    "-j",
                    "MASQUERADE",
                ]),
            )?;
            // First in POSTROUTING: ahead of `ipMasq` chains, whose ACCEPT for the pod subnet
            // would otherwise end the walk before a hairpin connection is masqueraded.
            ensure_rule_at(
                host,
                "POSTROUTING",
                &words(&[
                    "-m",
                    "comment",
                    "--comment",
                    "CNI portfwd requiring masquerade",
                    "-j",
                    MASQ_CHAIN,
                ]),
                true,
            )?;
        }
        let dn = chain_name("CNI-DN-", conf.network_name(), &args.container_id);
        ensure_chain(host, &dn)?;
        ipt(host, words(&["-t", "nat", "-F", &dn]))?;
        for m in &maps {
            for rule in dnat_rules(m, ip, snat) {
                let mut cmd = words(&["-t", "nat", "-A", &dn]);
                cmd.extend(rule);
                ipt(host, cmd)?;
            }
        }
        ensure_rule(host, DNAT_CHAIN, &jump_rule(conf, args, &dn))?;
        Ok(prev)
    }

    fn del(&self, env: &mut Env<'_>, args: &CmdArgs, conf: &NetConf) -> Result<(), CniError> {
        let dn = chain_name("CNI-DN-", conf.network_name(), &args.container_id);
        let mut del = words(&["-t", "nat", "-D", DNAT_CHAIN]);
        del.extend(jump_rule(conf, args, &dn));
        // Each step may find its object gone already: DEL is idempotent.
        let _ = env.host.iptables(Netns::Host, &del);
        let _ = env.host.iptables(Netns::Host, &words(&["-t", "nat", "-F", &dn]));
        let _ = env.host.iptables(Netns::Host, &words(&["-t", "nat", "-X", &dn]));
        Ok(())
    }

    fn check(&self, env: &mut Env<'_>, args: &CmdArgs, conf: &NetConf) -> Result<(), CniError> {
        let prev = prev_result(conf)?.clone();
        let c: Config = conf.decode()?;
        let maps = mappings(conf)?;
        if maps.is_empty() {
            return Ok(());
        }
        let ip = container_ip(&prev)
            .ok_or_else(|| internal("portmap: no IPv4 address in prevResult"))?;
        let dn = chain_name("CNI-DN-", conf.network_name(), &args.container_id);
        let mut jump = words(&["-t", "nat", "-C", DNAT_CHAIN]);
        jump.extend(jump_rule(conf, args, &dn));
        env.host
            .iptables(Netns::Host, &jump)
            .map_err(|_| internal(format!("portmap: jump to {dn} missing")))?;
        for m in &maps {
            for rule in dnat_rules(m, ip, c.snat.unwrap_or(true)) {
                let mut cmd = words(&["-t", "nat", "-C", &dn]);
                cmd.extend(rule);
                env.host.iptables(Netns::Host, &cmd).map_err(|_| {
                    internal(format!("portmap: rule for host port {} missing", m.host_port))
                })?;
            }
        }
        Ok(())
    }
}

/// `portMappings` as the runtime passes them: `(hostPort, containerPort, protocol)`.
pub fn port_mappings_value(maps: &[(u16, u16, &str)]) -> Value {
    Value::Array(
        maps.iter()
            .map(|(h, c, p)| serde_json::json!({"hostPort": h, "containerPort": c, "protocol": p}))
            .collect(),
    )
}
