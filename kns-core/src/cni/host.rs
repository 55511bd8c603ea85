//! [`NetHost`]: the node a plugin runs on, as plugins see it. Real plugins talk netlink,
//! run iptables and keep files on disk; these plugins call the same operations, typed, on
//! whatever emulates the node (kns-sim's `cni_host`, or [`MemFiles`] alone for file-only
//! tests). Every failure is a [`HostError`] value.
//!
//! A namespace is named by [`Netns`]: the node's own namespace (where host-side veths and
//! bridges go), or a container's by its netns path (`/var/run/netns/NAME`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// The namespace an operation acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Netns<'a> {
    /// The node's own namespace (where the plugin process runs).
    Host,
    /// A container namespace, by its path (`CNI_NETNS`).
    Path(&'a str),
}

/// What went wrong on the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The netns path names no namespace.
    #[error("netns {0:?} does not exist")]
    NoNetns(String),
    /// No device of that name in the namespace.
    #[error("link {0:?} not found")]
    NoLink(String),
    /// The object (link, address, route, file) already exists.
    #[error("{0} already exists")]
    Exists(String),
    /// No such file in the node's file store.
    #[error("{0}: no such file")]
    NoFile(String),
    /// The kernel (or iptables) refused; the message is the tool's.
    #[error("{0}")]
    Refused(String),
}

/// A device's kind, as `ip -d link` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    /// The loopback device.
    Loopback,
    /// One end of a veth pair; the peer's namespace (`None`: the node's) and name.
    Veth {
        /// The peer's namespace path (`None` when it is in the node's namespace).
        peer_netns: Option<String>,
        /// The peer's name.
        peer: String,
    },
    /// A Linux bridge.
    Bridge,
    /// A VXLAN device.
    Vxlan,
    /// A dummy device.
    Dummy,
}

/// One device, as `ip -d addr show DEV` would describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Device name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
    /// Kind.
    pub kind: LinkKind,
    /// MAC address.
    pub mac: [u8; 6],
    /// MTU.
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// The bridge this device is a port of.
    pub master: Option<String>,
    /// Hairpin mode (bridge ports).
    pub hairpin: bool,
    /// Addresses, in the order they were added.
    pub addrs: Vec<IpNet>,
}

/// A route, as `ip route` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteEntry {
    /// Destination prefix.
    pub dst: IpNet,
    /// Gateway.
    pub gw: Option<IpAddr>,
    /// Output device (required to add a route without gateway).
    pub dev: Option<String>,
    /// Trust that the gateway is on `dev`'s link.
    pub onlink: bool,
    /// Preferred source address.
    pub src: Option<IpAddr>,
}

impl RouteEntry {
    /// `DST via GW`.
    pub fn via(dst: IpNet, gw: IpAddr) -> RouteEntry {
        RouteEntry { dst, gw: Some(gw), dev: None, onlink: false, src: None }
    }

    /// `DST dev DEV`.
    pub fn dev(dst: IpNet, dev: &str) -> RouteEntry {
        RouteEntry { dst, gw: None, dev: Some(dev.to_string()), onlink: false, src: None }
    }
}

/// The node operations a CNI plugin may use, in place of netlink, iptables and the disk.
pub trait NetHost {
    /// Whether the netns path names an existing namespace.
    fn netns_exists(&self, netns: &str) -> bool;

    /// `ip link add NAME type veth peer name PEER netns PEER_NS` in `netns`; both ends down.
    fn link_add_veth(
        &mut self,
        netns: Netns<'_>,
        name: &str,
        peer: &str,
        peer_netns: Netns<'_>,
    ) -> Result<(), HostError>;

    /// `ip link add NAME type bridge` (down).
    fn link_add_bridge(&mut self, netns: Netns<'_>, name: &str) -> Result<(), HostError>;

    /// `ip link del NAME` (a veth takes its peer with it).
    fn link_del(&mut self, netns: Netns<'_>, name: &str) -> Result<(), HostError>;

    /// `ip link set NAME up|down`.
    fn link_set_up(&mut self, netns: Netns<'_>, name: &str, up: bool) -> Result<(), HostError>;

    /// `ip link set NAME master BRIDGE` (`None`: `nomaster`).
    fn link_set_master(
        &mut self,
        netns: Netns<'_>,
        name: &str,
        master: Option<&str>,
    ) -> Result<(), HostError>;

    /// `ip link set NAME mtu N`.
    fn link_set_mtu(&mut self, netns: Netns<'_>, name: &str, mtu: u32) -> Result<(), HostError>;

    /// `ip link set NAME address MAC`.
    fn link_set_mac(&mut self, netns: Netns<'_>, name: &str, mac: [u8; 6])
    -> Result<(), HostError>;

    /// `bridge link set dev NAME hairpin on|off` (NAME must be a bridge port).
    fn link_set_hairpin(&mut self, netns: Netns<'_>, name: &str, on: bool)
    -> Result<(), HostError>;

    /// One device.
    fn link(&self, netns: Netns<'_>, name: &str) -> Result<LinkInfo, HostError>;

    /// Every device of the namespace, by name.
    fn links(&self, netns: Netns<'_>) -> Result<Vec<LinkInfo>, HostError>;

    /// `ip addr add ADDR dev DEV`.
    fn addr_add(&mut self, netns: Netns<'_>, dev: &str, addr: IpNet) -> Result<(), HostError>;

    /// `ip addr del ADDR dev DEV`.
    fn addr_del(&mut self, netns: Netns<'_>, dev: &str, addr: IpNet) -> Result<(), HostError>;

    /// `ip route add ...`.
    fn route_add(&mut self, netns: Netns<'_>, route: &RouteEntry) -> Result<(), HostError>;

    /// `ip route del ...` (fields left `None` match anything).
    fn route_del(&mut self, netns: Netns<'_>, route: &RouteEntry) -> Result<(), HostError>;

    /// `ip route list`, connected routes included.
    fn routes(&self, netns: Netns<'_>) -> Result<Vec<RouteEntry>, HostError>;

    /// `sysctl -w KEY=VALUE`.
    fn sysctl_set(&mut self, netns: Netns<'_>, key: &str, value: &str) -> Result<(), HostError>;

    /// `sysctl -n KEY`.
    fn sysctl_get(&mut self, netns: Netns<'_>, key: &str) -> Result<String, HostError>;

    /// `iptables ARGS...`; returns the command's output (listings).
    fn iptables(&mut self, netns: Netns<'_>, args: &[String]) -> Result<String, HostError>;

    /// The node's files (state directories, `/etc/cni/net.d`).
    fn files(&mut self) -> &mut MemFiles;

    /// The node's files, read-only.
    fn files_ref(&self) -> &MemFiles;
}

/// A node's file store: absolute paths to text, as plugins keep state on disk
/// (`/var/lib/cni/networks/NET/IP`) and as the runtime reads `/etc/cni/net.d`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemFiles {
    files: BTreeMap<String, String>,
}

impl MemFiles {
    /// An empty store.
    pub fn new() -> MemFiles {
        MemFiles::default()
    }

    /// The contents of `path`.
    pub fn read(&self, path: &str) -> Result<&str, HostError> {
        self.files.get(path).map(String::as_str).ok_or_else(|| HostError::NoFile(path.into()))
    }

    /// Writes (creates or replaces) `path`.
    pub fn write(&mut self, path: &str, contents: &str) {
        self.files.insert(path.to_string(), contents.to_string());
    }

    /// Creates `path` only if it does not exist (`O_CREAT|O_EXCL`).
    pub fn create_new(&mut self, path: &str, contents: &str) -> Result<(), HostError> {
        if self.files.contains_key(path) {
            return Err(HostError::Exists(path.to_string()));
        }
        self.write(path, contents);
        Ok(())
    }

    /// Removes `path`; whether it existed.
    pub fn remove(&mut self, path: &str) -> bool {
        self.files.remove(path).is_some()
    }

    /// The names of the files directly in directory `dir`, sorted.
    pub fn list(&self, dir: &str) -> Vec<String> {
        self.entries(dir).map(|(name, _)| name.to_string()).collect()
    }

    /// The files directly in directory `dir` with their contents, sorted by name, without
    /// copying.
    pub fn entries<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let len = prefix.len();
        self.files
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter_map(move |(k, v)| {
                let name = &k[len..];
                (!name.contains('/')).then_some((name, v.as_str()))
            })
    }

    /// Every path in the store, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

/// A MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_list_only_direct_children_in_order() {
        let mut f = MemFiles::new();
        f.write("/var/lib/cni/networks/n/10.0.0.3", "a");
        f.write("/var/lib/cni/networks/n/10.0.0.2", "b");
        f.write("/var/lib/cni/networks/n/sub/x", "c");
        f.write("/var/lib/cni/networks/n2/10.0.0.9", "d");
        assert_eq!(f.list("/var/lib/cni/networks/n"), ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(f.list("/var/lib/cni/networks/n/"), ["10.0.0.2", "10.0.0.3"]);
        let e: Vec<_> = f.entries("/var/lib/cni/networks/n").collect();
        assert_eq!(e, [("10.0.0.2", "b"), ("10.0.0.3", "a")]);
        assert!(f.create_new("/var/lib/cni/networks/n/10.0.0.2", "z").is_err());
        assert_eq!(f.read("/var/lib/cni/networks/n/10.0.0.2").unwrap(), "b");
        assert!(f.remove("/var/lib/cni/networks/n/10.0.0.2"));
        assert!(!f.remove("/var/lib/cni/networks/n/10.0.0.2"));
        assert_eq!(f.read("/nope"), Err(HostError::NoFile("/nope".into())));
        assert_eq!(format_mac([2, 0, 0xab, 1, 2, 3]), "02:00:ab:01:02:03");
    }
}
