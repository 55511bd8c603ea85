//! The CNI specification's data (1.0 and 1.1, reading 0.3/0.4 configurations too): network
//! configurations, configuration lists, results, version answers and the error object.
//!
//! Every object keeps the fields it does not know in an `extra` map (ordered), as the spec
//! requires of runtimes: a plugin's own settings (`bridge`, `isGateway`, ...) live there and
//! come back out unchanged on serialisation. Parsing goes through [`parse_config_file`], which
//! locates errors by file name and field path and never panics.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Fields an object did not declare, kept verbatim and in key order.
pub type Extra = BTreeMap<String, Value>;

/// The CNI versions this implementation speaks, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The version results are produced in when the configuration asks for nothing newer.
pub const CURRENT_VERSION: &str = "1.1.0";

/// One plugin's network configuration: a `.conf` file, or one element of a list's `plugins`
/// (then `cniVersion` and `name` come from the list).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    /// `cniVersion`: the spec version the configuration is written for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    /// `name`: the network name, unique on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `type`: the plugin binary to run (looked up in the emulated `/opt/cni/bin`).
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// `capabilities`: runtime features this plugin accepts in `runtimeConfig`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, bool>,
    /// `ipam`: the IPAM plugin and its settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamConf>,
    /// `dns`: DNS settings the plugin may report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// `args`: extra arguments from the runtime (conventionally `args.cni`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// `runtimeConfig`: the capability arguments the runtime injected (`portMappings`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub runtime_config: BTreeMap<String, Value>,
    /// `prevResult`: the result of the previous plugin in the chain (ADD), or of the whole
    /// chain's ADD (CHECK, DEL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_result: Option<CniResult>,
    /// Plugin-specific fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

impl NetConf {
    /// Decodes this configuration (all of it, extra fields included) into a plugin's own type;
    /// a failure is error code 7 (invalid network config) naming the plugin.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CniError> {
        let value = serde_json::to_value(self).map_err(|e| {
            CniError::new(ErrorCode::InvalidNetworkConfig, format!("{}: {e}", self.plugin_type))
        })?;
        decode_value(value, &self.plugin_type)
    }

    /// The network name, or `""` when the configuration carries none.
    pub fn network_name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// The configuration's version, or `0.1.0` when absent (the spec's default).
    pub fn version(&self) -> &str {
        self.cni_version.as_deref().unwrap_or("0.1.0")
    }
}

/// Decodes `value` into `T`; errors are code 7 and name `what` and the failing field path.
pub fn decode_value<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, CniError> {
    serde_json::from_value::<T>(value.clone()).map_err(|e| {
        let path = locate::<T>(&value).unwrap_or_default();
        let at = if path.is_empty() { String::new() } else { format!(" at {path}") };
        CniError::new(ErrorCode::InvalidNetworkConfig, format!("{what}: invalid config{at}: {e}"))
    })
}

/// Locates the field that made `value` fail to decode as `T`, as a path
/// (`plugins[1].capabilities.portMappings`): a cheap substitute for a path-tracking
/// deserialiser. The value is printed one entry per line, so the line of serde_json's error
/// names a field; inside objects read through `#[serde(flatten)]` (whose errors point at the
/// object's end) the path is refined by removing optional fields until the value decodes.
fn locate<T: DeserializeOwned>(value: &Value) -> Option<String> {
    let mut lines = Vec::new();
    print_lines(value, &mut Vec::new(), String::new(), "", &mut lines);
    let text: Vec<&str> = lines.iter().map(|(t, _)| t.as_str()).collect();
    let err = serde_json::from_str::<T>(&text.join("\n")).err()?;
    let mut path = lines.get(err.line().checked_sub(1)?)?.1.clone();
    refine::<T>(value, &mut path);
    Some(render(&path))
}

fn print_lines(
    v: &Value,
    path: &mut Vec<Seg>,
    prefix: String,
    suffix: &str,
    out: &mut Vec<(String, Vec<Seg>)>,
) {
    let children: Vec<(Seg, &Value)> = match v {
        Value::Object(m) if !m.is_empty() => {
            m.iter().map(|(k, c)| (Seg::Key(k.clone()), c)).collect()
        }
        Value::Array(a) if !a.is_empty() => {
            a.iter().enumerate().map(|(i, c)| (Seg::Index(i), c)).collect()
        }
        _ => {
            out.push((format!("{prefix}{v}{suffix}"), path.clone()));
            return;
        }
    };
    let (open, close) = if v.is_object() { ("{", "}") } else { ("[", "]") };
    out.push((format!("{prefix}{open}"), path.clone()));
    let n = children.len();
    for (i, (seg, c)) in children.into_iter().enumerate() {
        let key = match &seg {
            Seg::Key(k) => format!("{}: ", Value::from(k.as_str())),
            Seg::Index(_) => String::new(),
        };
        path.push(seg);
        print_lines(c, path, key, if i + 1 < n { "," } else { "" }, out);
        path.pop();
    }
    out.push((format!("{close}{suffix}"), path.clone()));
}

fn refine<T: DeserializeOwned>(root: &Value, path: &mut Vec<Seg>) {
    loop {
        let mut probe = root.clone();
        let Some(Value::Object(m)) = slot(&mut probe, path) else { return };
        let keys: Vec<String> = m.keys().cloned().collect();
        let found = keys.into_iter().find(|k| {
            let mut p = root.clone();
            if let Some(Value::Object(m)) = slot(&mut p, path) {
                m.remove(k);
            }
            serde_json::from_value::<T>(p).is_ok()
        });
        match found {
            Some(k) => path.push(Seg::Key(k)),
            None => return,
        }
    }
}

#[derive(Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn slot<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match (s, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The `ipam` section: the IPAM plugin's type and its own settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IpamConf {
    /// `type`: the IPAM plugin (`host-local`, ...).
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// The IPAM plugin's settings (`subnet`, `ranges`, `routes`, ...), kept verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// DNS settings (`nameservers`, `domain`, `search`, `options`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers, in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// The local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Dns {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self == &Dns::default()
    }
}

/// A configuration list (`.conflist`): a network made by a chain of plugins.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConfList {
    /// `cniVersion`: the version of the whole list.
    pub cni_version: String,
    /// `cniVersions` (1.1): every version the list is valid for; the runtime picks the highest
    /// it supports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni_versions: Vec<String>,
    /// `name`: the network name.
    pub name: String,
    /// `disableCheck`: the runtime must not call CHECK.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_check: bool,
    /// `disableGC` (1.1): the runtime must not call GC.
    #[serde(default, rename = "disableGC", skip_serializing_if = "std::ops::Not::not")]
    pub disable_gc: bool,
    /// `plugins`: the chain, in ADD order.
    pub plugins: Vec<NetConf>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl NetConfList {
    /// The list a single `.conf` stands for (as libcni builds it): one plugin, the list
    /// taking the plugin's version and name.
    pub fn from_conf(conf: NetConf) -> NetConfList {
        NetConfList {
            cni_version: conf.version().to_string(),
            cni_versions: Vec::new(),
            name: conf.network_name().to_string(),
            disable_check: false,
            disable_gc: false,
            plugins: vec![conf],
            extra: Extra::new(),
        }
    }

    /// The version to run the chain with: the highest of `cniVersions` this implementation
    /// supports, else `cniVersion`.
    pub fn effective_version(&self) -> &str {
        self.cni_versions
            .iter()
            .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
            .max_by(|a, b| compare_versions(a, b))
            .map(String::as_str)
            .unwrap_or(&self.cni_version)
    }
}

/// Compares two dotted versions numerically (`0.10.0` > `0.4.0`); non-numbers compare as 0.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
}

/// A plugin's success result (the `ADD` output).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    /// `cniVersion` of the result.
    pub cni_version: String,
    /// `interfaces` created or used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// `ips` assigned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// `routes` installed in the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// `dns` settings.
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An interface of a result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// MAC address (`aa:bb:cc:dd:ee:ff`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The netns path for a container interface; absent for host interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Unknown fields (`socketPath`, `pciID`, ...), kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// An address of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Address with prefix length (`10.1.0.5/16`).
    pub address: IpNet,
    /// The default gateway for this subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into the result's `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A route of a result or of an IPAM configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination prefix.
    pub dst: IpNet,
    /// Next hop; absent means the IPAM gateway (or on-link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// Unknown fields (`mtu`, `advmss`, `priority`, `table`, `scope`), kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The `VERSION` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The version of this answer.
    pub cni_version: String,
    /// Every version the plugin supports.
    pub supported_versions: Vec<String>,
}

/// One attachment the runtime still considers valid (GC's `cni.dev/valid-attachments`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Attachment {
    /// The container id.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// The interface name in the container.
    pub ifname: String,
}

/// The spec's well-known error codes (0-99 are reserved by the spec; 100 and up are the
/// plugin's own, kept as [`ErrorCode::Plugin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorCode {
    /// 1: incompatible CNI version.
    IncompatibleVersion,
    /// 2: unsupported field in network configuration.
    UnsupportedField,
    /// 3: container unknown or does not exist.
    UnknownContainer,
    /// 4: invalid necessary environment variables (the CNI_* parameters).
    InvalidEnvironment,
    /// 5: I/O failure.
    Io,
    /// 6: failed to decode content.
    Decode,
    /// 7: invalid network config.
    InvalidNetworkConfig,
    /// 11: try again later.
    TryAgainLater,
    /// 50: the plugin is not available (STATUS).
    NotAvailable,
    /// 51: the plugin is not available, and existing containers may have limited
    /// connectivity (STATUS).
    NotAvailableLimited,
    /// Any other code (100 and up belong to plugins).
    Plugin(u32),
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> u32 {
        match self {
            ErrorCode::IncompatibleVersion => 1,
            ErrorCode::UnsupportedField => 2,
            ErrorCode::UnknownContainer => 3,
            ErrorCode::InvalidEnvironment => 4,
            ErrorCode::Io => 5,
            ErrorCode::Decode => 6,
            ErrorCode::InvalidNetworkConfig => 7,
            ErrorCode::TryAgainLater => 11,
            ErrorCode::NotAvailable => 50,
            ErrorCode::NotAvailableLimited => 51,
            ErrorCode::Plugin(n) => n,
        }
    }

    /// The code for a number.
    pub fn from_code(n: u32) -> ErrorCode {
        match n {
            1 => ErrorCode::IncompatibleVersion,
            2 => ErrorCode::UnsupportedField,
            3 => ErrorCode::UnknownContainer,
            4 => ErrorCode::InvalidEnvironment,
            5 => ErrorCode::Io,
            6 => ErrorCode::Decode,
            7 => ErrorCode::InvalidNetworkConfig,
            11 => ErrorCode::TryAgainLater,
            50 => ErrorCode::NotAvailable,
            51 => ErrorCode::NotAvailableLimited,
            n => ErrorCode::Plugin(n),
        }
    }
}

/// The spec's error object: what a plugin prints (exit status non-zero) when it fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("CNI error {code}: {msg}{}", if details.is_empty() { String::new() } else { format!(" ({details})") })]
pub struct CniError {
    /// `cniVersion` of the error object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_version: Option<String>,
    /// The numeric code (see [`ErrorCode`]).
    pub code: u32,
    /// A short message.
    pub msg: String,
    /// Longer details (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// An error with `code` and `msg`.
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> CniError {
        CniError { cni_version: None, code: code.code(), msg: msg.into(), details: String::new() }
    }

    /// The same error with `details`.
    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    /// The typed code.
    pub fn kind(&self) -> ErrorCode {
        ErrorCode::from_code(self.code)
    }
}

/// A configuration file that could not be read, located by file and field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct ConfigError {
    /// The file name.
    pub file: String,
    /// The field path (`plugins[1].capabilities`), or the line and column of a syntax error
    /// (`line 3 column 7`), or empty.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// The spec error a runtime reports for it: 6 (decode) for syntax, 7 otherwise.
    pub fn to_cni(&self) -> CniError {
        let code = if self.path.starts_with("line ") {
            ErrorCode::Decode
        } else {
            ErrorCode::InvalidNetworkConfig
        };
        CniError::new(code, self.to_string())
    }
}

/// A parsed configuration file: either form, as found on disk.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigFile {
    /// A `.conflist`.
    List(NetConfList),
    /// A `.conf` or `.json` with one plugin.
    Single(Box<NetConf>),
}

impl ConfigFile {
    /// The configuration as a list (a single plugin becomes a list of one).
    pub fn into_list(self) -> NetConfList {
        match self {
            ConfigFile::List(l) => l,
            ConfigFile::Single(c) => NetConfList::from_conf(*c),
        }
    }

    /// The configuration as JSON, every unknown field included.
    pub fn to_value(&self) -> Value {
        let v = match self {
            ConfigFile::List(l) => serde_json::to_value(l),
            ConfigFile::Single(c) => serde_json::to_value(c),
        };
        // Invariant: these types hold only JSON-representable data (strings, numbers, maps with
        // string keys), so serialisation cannot fail.
        v.expect("CNI config types serialise to JSON")
    }
}

/// Parses a configuration file: `.conflist` files are lists, anything else (`.conf`, `.json`)
/// a single plugin's configuration. Errors name `file` and the field path.
pub fn parse_config_file(file: &str, text: &str) -> Result<ConfigFile, ConfigError> {
    let err = |path: String, message: String| ConfigError { file: file.to_string(), path, message };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| err(format!("line {} column {}", e.line(), e.column()), format!("{e}")))?;
    if !value.is_object() {
        return Err(err(String::new(), "a network configuration must be a JSON object".into()));
    }
    if file.ends_with(".conflist") {
        let list: NetConfList = parse_located(&value, "", &err)?;
        if list.plugins.is_empty() {
            return Err(err(
                "plugins".into(),
                "a configuration list needs at least one plugin".into(),
            ));
        }
        for (i, p) in list.plugins.iter().enumerate() {
            if p.plugin_type.is_empty() {
                return Err(err(format!("plugins[{i}].type"), "missing plugin type".into()));
            }
        }
        Ok(ConfigFile::List(list))
    } else {
        let conf: NetConf = parse_located(&value, "", &err)?;
        if conf.plugin_type.is_empty() {
            return Err(err("type".into(), "missing plugin type".into()));
        }
        Ok(ConfigFile::Single(Box::new(conf)))
    }
}

fn parse_located<T: DeserializeOwned>(
    value: &Value,
    _prefix: &str,
    err: &dyn Fn(String, String) -> ConfigError,
) -> Result<T, ConfigError> {
    serde_json::from_value::<T>(value.clone())
        .map_err(|e| err(locate::<T>(value).unwrap_or_default(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_conf_keeps_unknown_fields_and_round_trips() {
        let text = r#"{"cniVersion":"1.0.0","name":"mynet","type":"bridge","bridge":"mynet0",
            "isDefaultGateway":true,"ipam":{"type":"host-local","subnet":"10.10.0.0/16"},
            "dns":{"nameservers":["10.1.1.1"],"x-custom":1}}"#;
        let f = parse_config_file("10-mynet.conf", text).unwrap();
        let ConfigFile::Single(c) = &f else { panic!("a .conf is a single plugin") };
        assert_eq!(c.plugin_type, "bridge");
        assert_eq!(c.extra["bridge"], Value::from("mynet0"));
        assert_eq!(c.ipam.as_ref().unwrap().extra["subnet"], Value::from("10.10.0.0/16"));
        assert_eq!(c.dns.as_ref().unwrap().extra["x-custom"], Value::from(1));
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(f.to_value(), original);
    }

    #[test]
    fn errors_name_the_file_and_the_field_path() {
        let bad_type = r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},
            {"type":"portmap","capabilities":{"portMappings":"yes"}}]}"#;
        let e = parse_config_file("10-n.conflist", bad_type).unwrap_err();
        assert_eq!(e.file, "10-n.conflist");
        assert_eq!(e.path, "plugins[1].capabilities.portMappings");
        assert_eq!(e.to_cni().code, 7);

        let syntax = parse_config_file("x.conf", "{\"type\": \"bridge\",\n  oops}").unwrap_err();
        assert_eq!(syntax.path, "line 2 column 3");
        assert_eq!(syntax.to_cni().code, 6);

        let missing = parse_config_file("x.conflist", r#"{"cniVersion":"1.0.0","name":"n"}"#);
        assert!(missing.unwrap_err().message.contains("plugins"));
        let empty =
            parse_config_file("x.conflist", r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#);
        assert_eq!(empty.unwrap_err().path, "plugins");
        assert!(parse_config_file("x.conf", "[1,2]").is_err());
    }

    #[test]
    fn decode_locates_the_bad_field_of_a_plugin_config() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Mine {
            mtu: Option<u32>,
        }
        let c: NetConf =
            serde_json::from_str(r#"{"type":"bridge","mtu":"big","other":1}"#).unwrap();
        let e = c.decode::<Mine>().unwrap_err();
        assert_eq!(e.kind(), ErrorCode::InvalidNetworkConfig);
        assert!(e.msg.contains("at mtu"), "{}", e.msg);
    }

    #[test]
    fn results_and_errors_serialise_as_the_spec_shows() {
        let r: CniResult = serde_json::from_str(
            r#"{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:ff",
            "sandbox":"/var/run/netns/p","mtu":1500}],"ips":[{"address":"10.1.0.5/16",
            "gateway":"10.1.0.1","interface":0}],"routes":[{"dst":"0.0.0.0/0"}],
            "dns":{"nameservers":["10.1.0.1"]},"vendor":"x"}"#,
        )
        .unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.1.0.5/16");
        assert_eq!(r.ips[0].interface, Some(0));
        assert_eq!(r.extra["vendor"], Value::from("x"));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["interfaces"][0]["sandbox"], Value::from("/var/run/netns/p"));

        let e = CniError::new(ErrorCode::TryAgainLater, "busy").with_details("lock held");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":11,"msg":"busy","details":"lock held"}"#
        );
        assert_eq!(e.to_string(), "CNI error 11: busy (lock held)");
        for n in [1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100] {
            assert_eq!(ErrorCode::from_code(n).code(), n);
        }
    }

    #[test]
    fn effective_version_picks_the_highest_supported() {
        let l = NetConfList {
            cni_version: "0.4.0".into(),
            cni_versions: vec!["0.3.1".into(), "1.0.0".into(), "9.0.0".into()],
            ..Default::default()
        };
        assert_eq!(l.effective_version(), "1.0.0");
        assert_eq!(compare_versions("0.10.0", "0.4.0"), std::cmp::Ordering::Greater);
    }
}
