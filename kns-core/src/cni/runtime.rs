//! [`CniRuntime`]: a node's container-runtime side of CNI (libcni's job inside kubelet or
//! containerd). It picks the network from the node's `/etc/cni/net.d` (the first `.conf`,
//! `.conflist` or `.json` file in lexical order), runs a chain's ADD in order with each
//! plugin's result as the next one's `prevResult`, caches the result as libcni does
//! (`/var/lib/cni/results/NET-CONTAINER-IFNAME`), and runs DEL in reverse order with the cached
//! result, CHECK against it, STATUS, GC and VERSION.
//!
//! Failures are spec errors ([`CniError`]): an unknown plugin type is 7 with libcni's
//! "failed to find plugin" message, an unsupported version 1, missing parameters 4.

use std::collections::BTreeMap;

use serde_json::Value;

use super::host::NetHost;
use super::plugin::{CmdArgs, Env, PluginRegistry, check_version, version_at_least};
use super::types::{
    Attachment, CniError, CniResult, ErrorCode, NetConf, NetConfList, VersionInfo,
    parse_config_file,
};

/// The node's configuration directory.
pub const NET_D: &str = "/etc/cni/net.d";
/// Where the runtime caches ADD results.
pub const RESULTS_DIR: &str = "/var/lib/cni/results";
/// The plugin directory given to plugins as `CNI_PATH`.
pub const BIN_DIR: &str = "/opt/cni/bin";

/// What the runtime knows about one attachment (kubelet's side of a CNI call).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuntimeConf {
    /// The container (sandbox) id.
    pub container_id: String,
    /// The container's netns path (may be empty on DEL).
    pub netns: String,
    /// The interface name in the container (`eth0`).
    pub ifname: String,
    /// `CNI_ARGS` pairs (kubelet passes `K8S_POD_NAMESPACE`, `K8S_POD_NAME`, ...).
    pub args: Vec<(String, String)>,
    /// Capability arguments (`portMappings`, `bandwidth`, `ips`, ...), handed to the plugins
    /// that declare the capability, in `runtimeConfig`.
    pub capability_args: BTreeMap<String, Value>,
}

impl RuntimeConf {
    fn cmd_args(&self) -> CmdArgs {
        CmdArgs {
            container_id: self.container_id.clone(),
            netns: self.netns.clone(),
            ifname: self.ifname.clone(),
            args: self.args.clone(),
            path: vec![BIN_DIR.to_string()],
        }
    }
}

/// A network configuration as loaded from the node's `net.d`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The file it came from.
    pub file: String,
    /// The configuration, as a list.
    pub list: NetConfList,
}

/// The per-node CNI runtime.
#[derive(Debug, Default)]
pub struct CniRuntime {
    plugins: PluginRegistry,
}

impl CniRuntime {
    /// A runtime whose `/opt/cni/bin` holds `plugins`.
    pub fn new(plugins: PluginRegistry) -> CniRuntime {
        CniRuntime { plugins }
    }

    /// A runtime with the reference plugins installed.
    pub fn with_reference_plugins() -> CniRuntime {
        CniRuntime::new(PluginRegistry::reference())
    }

    /// The plugin directory.
    pub fn plugins(&self) -> &PluginRegistry {
        &self.plugins
    }

    /// The plugin directory, to install more plugins.
    pub fn plugins_mut(&mut self) -> &mut PluginRegistry {
        &mut self.plugins
    }

    /// Writes a configuration file into the node's `net.d` (`name` is the file name).
    pub fn install_config(host: &mut dyn NetHost, name: &str, text: &str) {
        host.files().write(&format!("{NET_D}/{name}"), text);
    }

    /// The network the node uses: the first file of `net.d` in lexical order among `.conf`,
    /// `.conflist` and `.json` (as kubelet and containerd choose). A parse error in that file
    /// is reported (code 6 or 7, naming the file and field); no file at all is code 7.
    pub fn load_config(&self, host: &dyn NetHost) -> Result<LoadedConfig, CniError> {
        let files = host.files_ref();
        let first = files
            .list(NET_D)
            .into_iter()
            .find(|f| [".conf", ".conflist", ".json"].iter().any(|e| f.ends_with(e)))
            .ok_or_else(|| {
                CniError::new(
                    ErrorCode::InvalidNetworkConfig,
                    format!("no networks found in {NET_D}"),
                )
            })?;
        let path = format!("{NET_D}/{first}");
        let text = files.read(&path).map_err(|e| CniError::new(ErrorCode::Io, e.to_string()))?;
        let list = parse_config_file(&path, text).map_err(|e| e.to_cni())?.into_list();
        Ok(LoadedConfig { file: path, list })
    }

    /// Parses a configuration given as text (for callers that do not use `net.d`).
    pub fn parse_config(file: &str, text: &str) -> Result<NetConfList, CniError> {
        Ok(parse_config_file(file, text).map_err(|e| e.to_cni())?.into_list())
    }

    /// ADD: runs the chain in order, each plugin seeing the previous result; caches and
    /// returns the last result. On failure the caller should DEL (as kubelet does).
    pub fn add(
        &self,
        host: &mut dyn NetHost,
        list: &NetConfList,
        rt: &RuntimeConf,
    ) -> Result<CniResult, CniError> {
        let args = rt.cmd_args();
        args.require(true)?;
        let version = list.effective_version().to_string();
        let mut prev: Option<CniResult> = None;
        for p in &list.plugins {
            let plugin = self.plugins.get(&p.plugin_type)?;
            check_version(plugin, &version)?;
            let conf = build_conf(list, &version, p, rt, prev.take());
            let mut env = Env { host: &mut *host, plugins: &self.plugins };
            let mut result = plugin.add(&mut env, &args, &conf)?;
            convert_result(&mut result, &version);
            prev = Some(result);
        }
        // Invariant: `parse_config_file` rejects lists without plugins, and a hand-built
        // empty list yields the empty result.
        let result = prev.unwrap_or(CniResult { cni_version: version, ..Default::default() });
        let cached = serde_json::json!({
            "kind": "cniCacheV1",
            "containerId": rt.container_id,
            "ifName": rt.ifname,
            "networkName": list.name,
            "result": result,
        });
        host.files().write(&cache_path(list, rt), &cached.to_string());
        Ok(result)
    }

    /// DEL: runs the chain in reverse with the cached result as `prevResult`; succeeds when
    /// everything is already gone (DEL is idempotent) and forgets the cached result.
    pub fn del(
        &self,
        host: &mut dyn NetHost,
        list: &NetConfList,
        rt: &RuntimeConf,
    ) -> Result<(), CniError> {
        let args = rt.cmd_args();
        args.require(false)?;
        let version = list.effective_version().to_string();
        let cached = self.cached_result(host, list, rt);
        for p in list.plugins.iter().rev() {
            let plugin = self.plugins.get(&p.plugin_type)?;
            check_version(plugin, &version)?;
            let conf = build_conf(list, &version, p, rt, cached.clone());
            let mut env = Env { host: &mut *host, plugins: &self.plugins };
            plugin.del(&mut env, &args, &conf)?;
        }
        host.files().remove(&cache_path(list, rt));
        Ok(())
    }

    /// CHECK: every plugin verifies the cached result (needs version 0.4.0 or later; skipped
    /// when the list says `disableCheck`).
    pub fn check(
        &self,
        host: &mut dyn NetHost,
        list: &NetConfList,
        rt: &RuntimeConf,
    ) -> Result<(), CniError> {
        let args = rt.cmd_args();
        args.require(true)?;
        let version = list.effective_version().to_string();
        if !version_at_least(&version, "0.4.0") {
            return Err(CniError::new(
                ErrorCode::IncompatibleVersion,
                format!("configuration version \"{version}\" does not support the CHECK command"),
            ));
        }
        if list.disable_check {
            return Ok(());
        }
        let cached = self.cached_result(host, list, rt).ok_or_else(|| {
            CniError::new(
                ErrorCode::UnknownContainer,
                format!("no cached result for {} {} in {}", rt.container_id, rt.ifname, list.name),
            )
        })?;
        for p in &list.plugins {
            let plugin = self.plugins.get(&p.plugin_type)?;
            check_version(plugin, &version)?;
            let conf = build_conf(list, &version, p, rt, Some(cached.clone()));
            let mut env = Env { host: &mut *host, plugins: &self.plugins };
            plugin.check(&mut env, &args, &conf)?;
        }
        Ok(())
    }

    /// STATUS: whether every plugin of the chain is ready (versions before 1.1.0 have no
    /// STATUS and are taken as ready).
    pub fn status(&self, host: &mut dyn NetHost, list: &NetConfList) -> Result<(), CniError> {
        let version = list.effective_version().to_string();
        if !version_at_least(&version, "1.1.0") {
            return Ok(());
        }
        for p in &list.plugins {
            let plugin = self.plugins.get(&p.plugin_type)?;
            check_version(plugin, &version)?;
            let conf = build_conf(list, &version, p, &RuntimeConf::default(), None);
            let mut env = Env { host: &mut *host, plugins: &self.plugins };
            plugin.status(&mut env, &conf)?;
        }
        Ok(())
    }

    /// GC: every plugin releases what belongs to attachments not in `valid`, and cached
    /// results of such attachments are removed (versions before 1.1.0, or `disableGC`: no-op).
    pub fn gc(
        &self,
        host: &mut dyn NetHost,
        list: &NetConfList,
        valid: &[Attachment],
    ) -> Result<(), CniError> {
        let version = list.effective_version().to_string();
        if !version_at_least(&version, "1.1.0") || list.disable_gc {
            return Ok(());
        }
        for p in &list.plugins {
            let plugin = self.plugins.get(&p.plugin_type)?;
            check_version(plugin, &version)?;
            let mut conf = build_conf(list, &version, p, &RuntimeConf::default(), None);
            conf.extra.insert(
                "cni.dev/valid-attachments".into(),
                serde_json::to_value(valid).unwrap_or(Value::Null),
            );
            let mut env = Env { host: &mut *host, plugins: &self.plugins };
            plugin.gc(&mut env, &conf, valid)?;
        }
        let prefix = format!("{}-", list.name);
        let stale: Vec<String> = host
            .files_ref()
            .list(RESULTS_DIR)
            .into_iter()
            .filter(|f| f.starts_with(&prefix))
            .filter(|f| {
                !valid.iter().any(|a| *f == format!("{prefix}{}-{}", a.container_id, a.ifname))
            })
            .collect();
        for f in stale {
            host.files().remove(&format!("{RESULTS_DIR}/{f}"));
        }
        Ok(())
    }

    /// VERSION of the plugin `plugin_type`.
    pub fn version(&self, plugin_type: &str) -> Result<VersionInfo, CniError> {
        Ok(self.plugins.get(plugin_type)?.version())
    }

    /// The result cached by the last successful ADD of this attachment.
    pub fn cached_result(
        &self,
        host: &dyn NetHost,
        list: &NetConfList,
        rt: &RuntimeConf,
    ) -> Option<CniResult> {
        let text = host.files_ref().read(&cache_path(list, rt)).ok()?;
        let v: Value = serde_json::from_str(text).ok()?;
        serde_json::from_value(v.get("result")?.clone()).ok()
    }
}

/// Puts a result in the shape of `version`: before 1.0.0 every address names its IP version
/// (`"version": "4"`), from 1.0.0 on it does not.
fn convert_result(result: &mut CniResult, version: &str) {
    result.cni_version = version.to_string();
    let old = !version_at_least(version, "1.0.0");
    for ip in &mut result.ips {
        if old {
            let v = if ip.address.addr().is_ipv4() { "4" } else { "6" };
            ip.extra.insert("version".into(), Value::from(v));
        } else {
            ip.extra.remove("version");
        }
    }
}

fn cache_path(list: &NetConfList, rt: &RuntimeConf) -> String {
    format!("{RESULTS_DIR}/{}-{}-{}", list.name, rt.container_id, rt.ifname)
}

/// One plugin's stdin, as libcni builds it: the list's name and version, the previous result,
/// and the capability arguments this plugin declared.
fn build_conf(
    list: &NetConfList,
    version: &str,
    plugin: &NetConf,
    rt: &RuntimeConf,
    prev: Option<CniResult>,
) -> NetConf {
    let mut conf = plugin.clone();
    conf.name = Some(list.name.clone());
    conf.cni_version = Some(version.to_string());
    conf.prev_result = prev;
    for (cap, on) in &plugin.capabilities {
        if let (true, Some(v)) = (*on, rt.capability_args.get(cap)) {
            conf.runtime_config.insert(cap.clone(), v.clone());
        }
    }
    conf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::host::{HostError, LinkInfo, MemFiles, Netns, RouteEntry};

    /// A host with files only: every network operation is refused, which is all the runtime
    /// itself needs.
    #[derive(Default)]
    struct FilesOnly(MemFiles);

    impl NetHost for FilesOnly {
        fn netns_exists(&self, _: &str) -> bool {
            false
        }
        fn link_add_veth(
            &mut self,
            _: Netns<'_>,
            _: &str,
            _: &str,
            _: Netns<'_>,
        ) -> Result<(), HostError> {
            Err(HostError::Refused("no network".into()))
        }
        fn link_add_bridge(&mut self, _: Netns<'_>, _: &str) -> Result<(), HostError> {
            Err(HostError::Refused("no network".into()))
        }
        fn link_del(&mut self, _: Netns<'_>, n: &str) -> Result<(), HostError> {
            Err(HostError::NoLink(n.into()))
        }
        fn link_set_up(&mut self, _: Netns<'_>, n: &str, _: bool) -> Result<(), HostError> {
            Err(HostError::NoLink(n.into()))
        }
        fn link_set_master(
            &mut self,
            _: Netns<'_>,
            n: &str,
            _: Option<&str>,
        ) -> Result<(), HostError> {
            Err(HostError::NoLink(n.into()))
        }
        fn link_set_mtu(&mut self, _: Netns<'_>, n: &str, _: u32) -> Result<(), HostError> {
            Err(HostError::NoLink(n.into()))
        }
        fn link_set_mac(&mut self, _: Netns<'_>, n: &str, _: [u8; 6]) -> Result<(), HostError> {
            Err(HostError::NoLink(n.into()))
        }
        fn link_set_hairpin(&mut self, _: Netns<'_>, n: &str, _: bool) -> Result<(), HostError> {
            Err(HostError::NoLink(n.into()))
        }
        fn link(&self, _: Netns<'_>, n: &str) -> Result<LinkInfo, HostError> {
            Err(HostError::NoLink(n.into()))
        }
        fn links(&self, _: Netns<'_>) -> Result<Vec<LinkInfo>, HostError> {
            Ok(Vec::new())
        }
        fn addr_add(&mut self, _: Netns<'_>, n: &str, _: ipnet::IpNet) -> Result<(), HostError> {
            Err(HostError::NoLink(n.into()))
        }
        fn addr_del(&mut self, _: Netns<'_>, n: &str, _: ipnet::IpNet) -> Result<(), HostError> {
            Err(HostError::NoLink(n.into()))
        }
        fn route_add(&mut self, _: Netns<'_>, _: &RouteEntry) -> Result<(), HostError> {
            Err(HostError::Refused("no network".into()))
        }
        fn route_del(&mut self, _: Netns<'_>, _: &RouteEntry) -> Result<(), HostError> {
            Err(HostError::Refused("no network".into()))
        }
        fn routes(&self, _: Netns<'_>) -> Result<Vec<RouteEntry>, HostError> {
            Ok(Vec::new())
        }
        fn sysctl_set(&mut self, _: Netns<'_>, _: &str, _: &str) -> Result<(), HostError> {
            Ok(())
        }
        fn sysctl_get(&mut self, _: Netns<'_>, _: &str) -> Result<String, HostError> {
            Ok("0".into())
        }
        fn iptables(&mut self, _: Netns<'_>, _: &[String]) -> Result<String, HostError> {
            Ok(String::new())
        }
        fn files(&mut self) -> &mut MemFiles {
            &mut self.0
        }
        fn files_ref(&self) -> &MemFiles {
            &self.0
        }
    }

    fn rt(id: &str) -> RuntimeConf {
        RuntimeConf {
            container_id: id.into(),
            netns: "/var/run/netns/x".into(),
            ifname: "eth0".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_first_file_in_lexical_order_wins() {
        let mut host = FilesOnly::default();
        let r = CniRuntime::with_reference_plugins();
        assert_eq!(r.load_config(&host).unwrap_err().code, 7);
        CniRuntime::install_config(
            &mut host,
            "99-loopback.conf",
            r#"{"cniVersion":"1.0.0","name":"lo","type":"loopback"}"#,
        );
        CniRuntime::install_config(
            &mut host,
            "10-net.conflist",
            r#"{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"ptp"}]}"#,
        );
        CniRuntime::install_config(&mut host, "05-notes.txt", "not a config");
        let c = r.load_config(&host).unwrap();
        assert_eq!(c.file, "/etc/cni/net.d/10-net.conflist");
        assert_eq!(c.list.name, "net");
        CniRuntime::install_config(&mut host, "00-broken.json", r#"{"type": 5}"#);
        let e = r.load_config(&host).unwrap_err();
        assert_eq!(e.code, 7);
        assert!(e.msg.contains("00-broken.json") && e.msg.contains("type"), "{}", e.msg);
    }

    #[test]
    fn errors_carry_spec_codes() {
        let mut host = FilesOnly::default();
        let r = CniRuntime::with_reference_plugins();
        let unknown = CniRuntime::parse_config(
            "a.conflist",
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"calico"}]}"#,
        )
        .unwrap();
        let e = r.add(&mut host, &unknown, &rt("c1")).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (7, "failed to find plugin \"calico\" in path [/opt/cni/bin]")
        );
        let old = CniRuntime::parse_config(
            "a.conf",
            r#"{"cniVersion":"0.2.0","name":"n","type":"loopback"}"#,
        )
        .unwrap();
        assert_eq!(
            r.add(&mut host, &old, &rt("c1")).unwrap_err().kind(),
            ErrorCode::IncompatibleVersion
        );
        let lo = CniRuntime::parse_config(
            "a.conf",
            r#"{"cniVersion":"1.0.0","name":"n","type":"loopback"}"#,
        )
        .unwrap();
        let mut missing = rt("");
        assert_eq!(
            r.add(&mut host, &lo, &missing).unwrap_err().kind(),
            ErrorCode::InvalidEnvironment
        );
        missing.container_id = "c".into();
        missing.netns.clear();
        assert_eq!(
            r.add(&mut host, &lo, &missing).unwrap_err().kind(),
            ErrorCode::InvalidEnvironment
        );
        // CHECK before any ADD: nothing cached for this container.
        assert_eq!(
            r.check(&mut host, &lo, &rt("c9")).unwrap_err().kind(),
            ErrorCode::UnknownContainer
        );
        let v = r.version("bridge").unwrap();
        assert!(v.supported_versions.contains(&"1.1.0".to_string()));
    }

    #[test]
    fn results_take_the_shape_of_the_configured_version() {
        let mut r: CniResult = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"},{"address":"fd00::2/64"}]}"#,
        )
        .unwrap();
        convert_result(&mut r, "0.3.1");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (v["ips"][0]["version"].as_str(), v["ips"][1]["version"].as_str()),
            (Some("4"), Some("6"))
        );
        assert_eq!(v["cniVersion"], "0.3.1");
        convert_result(&mut r, "1.1.0");
        assert!(serde_json::to_value(&r).unwrap()["ips"][0].get("version").is_none());
    }

    #[test]
    fn capabilities_reach_only_the_plugins_that_declare_them() {
        let list = CniRuntime::parse_config(
            "a.conflist",
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},
               {"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        let mut r = rt("c");
        r.capability_args.insert("portMappings".into(), serde_json::json!([{"hostPort": 80}]));
        let bridge = build_conf(&list, "1.0.0", &list.plugins[0], &r, None);
        let portmap = build_conf(&list, "1.0.0", &list.plugins[1], &r, None);
        assert!(bridge.runtime_config.is_empty());
        assert_eq!(portmap.runtime_config["portMappings"][0]["hostPort"], 80);
        assert_eq!(portmap.name.as_deref(), Some("n"));
        assert_eq!(portmap.cni_version.as_deref(), Some("1.0.0"));
    }

    /// A third-party plugin that records each call in the node's files and reports what
    /// `prevResult` it was given.
    struct Recorder(&'static str);

    impl crate::cni::CniPlugin for Recorder {
        fn type_name(&self) -> &str {
            self.0
        }
        fn add(
            &self,
            env: &mut Env<'_>,
            _: &CmdArgs,
            conf: &NetConf,
        ) -> Result<CniResult, CniError> {
            let prev =
                conf.prev_result.as_ref().map(|r| r.extra["by"].to_string()).unwrap_or_default();
            log(env, format!("ADD {} prev={prev}", self.0));
            let mut r = CniResult::default();
            r.extra.insert("by".into(), Value::from(self.0));
            Ok(r)
        }
        fn del(&self, env: &mut Env<'_>, _: &CmdArgs, conf: &NetConf) -> Result<(), CniError> {
            let prev =
                conf.prev_result.as_ref().map(|r| r.extra["by"].to_string()).unwrap_or_default();
            log(env, format!("DEL {} prev={prev}", self.0));
            Ok(())
        }
        fn check(&self, env: &mut Env<'_>, _: &CmdArgs, _: &NetConf) -> Result<(), CniError> {
            log(env, format!("CHECK {}", self.0));
            Ok(())
        }
    }

    fn log(env: &mut Env<'_>, line: String) {
        let old = env.host.files_ref().read("/log").unwrap_or("").to_string();
        env.host.files().write("/log", &format!("{old}{line}\n"));
    }

    #[test]
    fn chains_run_in_order_with_prev_result_and_del_runs_in_reverse() {
        let mut plugins = PluginRegistry::new();
        plugins.register(Box::new(Recorder("first")));
        plugins.register(Box::new(Recorder("second")));
        let r = CniRuntime::new(plugins);
        let mut host = FilesOnly::default();
        let list = CniRuntime::parse_config(
            "a.conflist",
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"first"},{"type":"second"}]}"#,
        )
        .unwrap();
        let result = r.add(&mut host, &list, &rt("c1")).unwrap();
        assert_eq!(result.extra["by"], "second");
        assert_eq!(result.cni_version, "1.0.0");
        assert!(r.cached_result(&host, &list, &rt("c1")).is_some());
        r.check(&mut host, &list, &rt("c1")).unwrap();
        r.del(&mut host, &list, &rt("c1")).unwrap();
        assert!(r.cached_result(&host, &list, &rt("c1")).is_none());
        // DEL without a cached result still reaches every plugin, with no prevResult.
        r.del(&mut host, &list, &rt("c1")).unwrap();
        assert_eq!(
            host.0.read("/log").unwrap(),
            "ADD first prev=\nADD second prev=\"first\"\nCHECK first\nCHECK second\n\
             DEL second prev=\"second\"\nDEL first prev=\"second\"\n\
             DEL second prev=\nDEL first prev=\n"
        );
        // CHECK needs 0.4.0; older lists get error 1, and disableCheck skips it.
        let old = CniRuntime::parse_config(
            "a.conf",
            r#"{"cniVersion":"0.3.1","name":"n","type":"first"}"#,
        )
        .unwrap();
        assert_eq!(r.check(&mut host, &old, &rt("c1")).unwrap_err().code, 1);
        let mut off = list.clone();
        off.disable_check = true;
        r.check(&mut host, &off, &rt("c2")).unwrap();
    }
}
