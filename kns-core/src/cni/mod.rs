//! The Container Network Interface, as a contract kns-core states and kns-sim fulfils.
//!
//! - [`types`]: the spec's configurations, results and errors (1.0/1.1), unknown fields kept;
//! - [`host`]: [`NetHost`], the node a plugin acts on instead of netlink, iptables and the disk;
//! - [`plugin`]: [`CniPlugin`] (ADD, DEL, CHECK, STATUS, GC, VERSION) and the plugin directory;
//! - [`runtime`]: [`CniRuntime`], the node's libcni: `net.d`, chains, `prevResult`, caching;
//! - [`plugins`]: reference plugins written against the trait as a third party would:
//!   `host-local`, `bridge`, `ptp`, `portmap`, `loopback`.
//!
//! **Invariant:** no I/O here. Plugins are pure functions of their arguments, their
//! configuration and what [`NetHost`] reports; their state lives in the host's files.

pub mod host;
pub mod plugin;
pub mod plugins;
pub mod runtime;
pub mod types;

pub use host::{HostError, LinkInfo, LinkKind, MemFiles, NetHost, Netns, RouteEntry};
pub use plugin::{CmdArgs, CniPlugin, Env, PluginRegistry};
pub use runtime::{CniRuntime, LoadedConfig, RuntimeConf};
pub use types::{
    Attachment, CniError, CniResult, ConfigError, ConfigFile, Dns, ErrorCode, Interface, IpConfig,
    NetConf, NetConfList, Route, VersionInfo, parse_config_file,
};
