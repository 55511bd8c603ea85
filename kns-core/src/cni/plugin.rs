//! [`CniPlugin`]: what a CNI plugin binary is, as a trait. Each verb takes the spec's
//! parameters ([`CmdArgs`]: `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`,
//! `CNI_PATH`) and the configuration the runtime would write to the plugin's stdin, and acts
//! on the node through [`Env`]. Plugins are stateless (`&self`): whatever must outlive one call
//! goes to the node's files, as real plugins keep it on disk.
//!
//! A plugin that delegates (a main plugin calling its IPAM plugin) does so by type through
//! [`Env::delegate_add`] and friends, as real plugins exec another binary from `CNI_PATH`.

use std::collections::BTreeMap;

use super::host::NetHost;
use super::types::{
    Attachment, CniError, CniResult, ErrorCode, NetConf, SUPPORTED_VERSIONS, VersionInfo,
    compare_versions,
};

/// The spec's per-invocation parameters (the `CNI_*` environment variables).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CmdArgs {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`: the container's netns path (may be empty on DEL).
    pub netns: String,
    /// `CNI_IFNAME`: the interface to create in the container.
    pub ifname: String,
    /// `CNI_ARGS`: `KEY=VALUE` pairs, in order.
    pub args: Vec<(String, String)>,
    /// `CNI_PATH`: where plugins are looked up.
    pub path: Vec<String>,
}

impl CmdArgs {
    /// `CNI_ARGS` as the spec's `K1=V1;K2=V2` string.
    pub fn args_string(&self) -> String {
        self.args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";")
    }

    /// Checks the parameters a verb requires (container id, ifname; netns unless DEL);
    /// a missing one is error 4.
    pub fn require(&self, netns: bool) -> Result<(), CniError> {
        let missing = |what: &str| {
            Err(CniError::new(
                ErrorCode::InvalidEnvironment,
                format!("required env variable {what} missing"),
            ))
        };
        if self.container_id.is_empty() {
            return missing("CNI_CONTAINERID");
        }
        if self.ifname.is_empty() {
            return missing("CNI_IFNAME");
        }
        if netns && self.netns.is_empty() {
            return missing("CNI_NETNS");
        }
        Ok(())
    }
}

/// A CNI plugin: one executable in `/opt/cni/bin`, as a value.
pub trait CniPlugin {
    /// The `type` configurations name it by.
    fn type_name(&self) -> &str;

    /// The spec versions it accepts.
    fn supported_versions(&self) -> &[&'static str] {
        SUPPORTED_VERSIONS
    }

    /// ADD: attach the container to the network and return the result.
    fn add(&self, env: &mut Env<'_>, args: &CmdArgs, conf: &NetConf)
    -> Result<CniResult, CniError>;

    /// DEL: release everything ADD made; succeeds when there is nothing left to remove.
    fn del(&self, env: &mut Env<'_>, args: &CmdArgs, conf: &NetConf) -> Result<(), CniError>;

    /// CHECK: verify that the attachment described by `conf.prev_result` is intact.
    fn check(&self, env: &mut Env<'_>, args: &CmdArgs, conf: &NetConf) -> Result<(), CniError>;

    /// STATUS: whether the plugin is ready to ADD (errors 50/51 when not).
    fn status(&self, _env: &mut Env<'_>, _conf: &NetConf) -> Result<(), CniError> {
        Ok(())
    }

    /// GC: release resources of attachments not in `valid`.
    fn gc(
        &self,
        _env: &mut Env<'_>,
        _conf: &NetConf,
        _valid: &[Attachment],
    ) -> Result<(), CniError> {
        Ok(())
    }

    /// VERSION: the versions this plugin supports.
    fn version(&self) -> VersionInfo {
        VersionInfo {
            cni_version: super::types::CURRENT_VERSION.to_string(),
            supported_versions: self.supported_versions().iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// The emulated `/opt/cni/bin`: plugins by type.
#[derive(Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, Box<dyn CniPlugin>>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.plugins.keys()).finish()
    }
}

impl PluginRegistry {
    /// An empty directory.
    pub fn new() -> PluginRegistry {
        PluginRegistry::default()
    }

    /// The reference plugins: `bridge`, `ptp`, `portmap`, `loopback`, `host-local`.
    pub fn reference() -> PluginRegistry {
        let mut r = PluginRegistry::new();
        super::plugins::register_all(&mut r);
        r
    }

    /// Installs `plugin` under its type (replacing any plugin of that type).
    pub fn register(&mut self, plugin: Box<dyn CniPlugin>) {
        self.plugins.insert(plugin.type_name().to_string(), plugin);
    }

    /// The plugin of `plugin_type`, or error 7 as libcni reports a missing binary
    /// (`failed to find plugin "X" in path [...]`).
    pub fn get(&self, plugin_type: &str) -> Result<&dyn CniPlugin, CniError> {
        self.plugins.get(plugin_type).map(|b| b.as_ref()).ok_or_else(|| {
            CniError::new(
                ErrorCode::InvalidNetworkConfig,
                format!("failed to find plugin \"{plugin_type}\" in path [/opt/cni/bin]"),
            )
        })
    }

    /// Installed types, sorted.
    pub fn types(&self) -> Vec<&str> {
        self.plugins.keys().map(String::as_str).collect()
    }
}

/// What a plugin gets to act with: the node, and the plugin directory for delegation.
pub struct Env<'a> {
    /// The node.
    pub host: &'a mut dyn NetHost,
    /// The plugins a delegating plugin may call.
    pub plugins: &'a PluginRegistry,
}

impl Env<'_> {
    /// Runs plugin `plugin_type`'s ADD with `conf` (version checked), as a delegating plugin
    /// execs its IPAM plugin.
    pub fn delegate_add(
        &mut self,
        plugin_type: &str,
        args: &CmdArgs,
        conf: &NetConf,
    ) -> Result<CniResult, CniError> {
        let p = self.plugins.get(plugin_type)?;
        check_version(p, conf.version())?;
        p.add(self, args, conf)
    }

    /// Runs plugin `plugin_type`'s DEL.
    pub fn delegate_del(
        &mut self,
        plugin_type: &str,
        args: &CmdArgs,
        conf: &NetConf,
    ) -> Result<(), CniError> {
        let p = self.plugins.get(plugin_type)?;
        check_version(p, conf.version())?;
        p.del(self, args, conf)
    }

    /// Runs plugin `plugin_type`'s CHECK.
    pub fn delegate_check(
        &mut self,
        plugin_type: &str,
        args: &CmdArgs,
        conf: &NetConf,
    ) -> Result<(), CniError> {
        let p = self.plugins.get(plugin_type)?;
        check_version(p, conf.version())?;
        p.check(self, args, conf)
    }

    /// Runs plugin `plugin_type`'s STATUS.
    pub fn delegate_status(&mut self, plugin_type: &str, conf: &NetConf) -> Result<(), CniError> {
        let p = self.plugins.get(plugin_type)?;
        check_version(p, conf.version())?;
        p.status(self, conf)
    }

    /// Runs plugin `plugin_type`'s GC.
    pub fn delegate_gc(
        &mut self,
        plugin_type: &str,
        conf: &NetConf,
        valid: &[Attachment],
    ) -> Result<(), CniError> {
        let p = self.plugins.get(plugin_type)?;
        p.gc(self, conf, valid)
    }
}

/// Error 1 unless `plugin` supports `version`.
pub fn check_version(plugin: &dyn CniPlugin, version: &str) -> Result<(), CniError> {
    if plugin.supported_versions().contains(&version) {
        return Ok(());
    }
    Err(CniError::new(
        ErrorCode::IncompatibleVersion,
        format!(
            "incompatible CNI versions: config is \"{version}\", plugin {} supports [{}]",
            plugin.type_name(),
            plugin.supported_versions().join(" ")
        ),
    ))
}

/// Whether `version` is at least `min` (CHECK needs 0.4.0, STATUS and GC 1.1.0).
pub fn version_at_least(version: &str, min: &str) -> bool {
    compare_versions(version, min) != std::cmp::Ordering::Less
}
