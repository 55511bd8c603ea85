//! `loopback`: brings `lo` up in the container (and down on DEL), reporting its addresses.

use super::{host_err, internal, require_netns};
use crate::cni::host::{HostError, Netns};
use crate::cni::plugin::{CmdArgs, CniPlugin, Env};
use crate::cni::types::{CniError, CniResult, Interface, IpConfig, NetConf};

/// The `loopback` plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loopback;

impl CniPlugin for Loopback {
    fn type_name(&self) -> &str {
        "loopback"
    }

    fn add(
        &self,
        env: &mut Env<'_>,
        args: &CmdArgs,
        conf: &NetConf,
    ) -> Result<CniResult, CniError> {
        require_netns(env.host, args)?;
        let ns = Netns::Path(&args.netns);
        env.host.link_set_up(ns, "lo", true).map_err(host_err("failed to set lo up"))?;
        let lo = env.host.link(ns, "lo").map_err(host_err("failed to read lo"))?;
        Ok(CniResult {
            cni_version: conf.version().to_string(),
            interfaces: vec![Interface {
                name: "lo".into(),
                mac: Some("00:00:00:00:00:00".into()),
                sandbox: Some(args.netns.clone()),
                ..Default::default()
            }],
            ips: lo
                .addrs
                .iter()
                .map(|a| IpConfig {
                    address: *a,
                    gateway: None,
                    interface: Some(0),
                    extra: Default::default(),
                })
                .collect(),
            ..Default::default()
        })
    }

    fn del(&self, env: &mut Env<'_>, args: &CmdArgs, _conf: &NetConf) -> Result<(), CniError> {
        if args.netns.is_empty() || !env.host.netns_exists(&args.netns) {
            return Ok(());
        }
        match env.host.link_set_up(Netns::Path(&args.netns), "lo", false) {
            Ok(()) | Err(HostError::NoLink(_)) | Err(HostError::NoNetns(_)) => Ok(()),
            Err(e) => Err(host_err("failed to set lo down")(e)),
        }
    }

    fn check(&self, env: &mut Env<'_>, args: &CmdArgs, _conf: &NetConf) -> Result<(), CniError> {
        require_netns(env.host, args)?;
        let lo =
            env.host.link(Netns::Path(&args.netns), "lo").map_err(host_err("failed to read lo"))?;
        if !lo.up {
            return Err(internal("loopback interface is down"));
        }
        Ok(())
    }
}
