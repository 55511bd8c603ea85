//! Name resolution for async pods: [`ToSocketAddrs`] (what `bind`, `connect` and `send_to`
//! accept), [`lookup_host`], and the pluggable [`Resolve`] hook.
//!
//! Literal addresses never reach the resolver. Names go to the [`AsyncSim`](super::AsyncSim)'s
//! resolver together with the asking pod, so that the [`DnsResolver`](super::DnsResolver) can
//! read that pod's resolv.conf (search path, ndots) and send its queries from that pod over the
//! dataplane. The default resolver is a [`Hosts`] table; [`AsyncSim::from_cluster`](super::AsyncSim::from_cluster)
//! installs a `DnsResolver`.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::pin::Pin;
use std::sync::Arc;

use crate::net::NetnsId;

use super::runtime::{current_pod, try_with_world};

/// The future a [`Resolve`] implementation returns.
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Turns host names into addresses for the tasks of a pod.
///
/// The future runs inside the asking pod's task, so it may use this module's sockets (for
/// example a [`UdpSocket`](super::UdpSocket) that queries the cluster DNS) and
/// `tokio::time::timeout`.
pub trait Resolve: Send + Sync {
    /// The addresses of `host` as seen from `pod`, in the order to try them. An unknown name
    /// is an error (`getaddrinfo`'s "Name or service not known").
    fn resolve(&self, pod: NetnsId, host: &str) -> ResolveFuture;
}

/// A fixed table of names, like `/etc/hosts`; `localhost` is always there.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    entries: BTreeMap<String, Vec<IpAddr>>,
}

impl Hosts {
    /// An empty table (only `localhost` resolves).
    pub fn new() -> Hosts {
        Hosts::default()
    }

    /// Adds `ip` to the addresses of `name` (names are case-insensitive; a trailing dot is
    /// ignored).
    pub fn insert(&mut self, name: &str, ip: IpAddr) -> &mut Hosts {
        self.entries.entry(normalise(name)).or_default().push(ip);
        self
    }

    /// The addresses of `name`, if it is in the table.
    pub fn get(&self, name: &str) -> Option<Vec<IpAddr>> {
        let name = normalise(name);
        if let Some(ips) = self.entries.get(&name) {
            return Some(ips.clone());
        }
        (name == "localhost")
            .then(|| vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)])
    }
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Resolve for Hosts {
    fn resolve(&self, _pod: NetnsId, host: &str) -> ResolveFuture {
        let result = self.get(host).ok_or_else(|| not_found(host));
        Box::pin(std::future::ready(result))
    }
}

fn not_found(host: &str) -> io::Error {
    io::Error::other(format!(
        "failed to lookup address information: Name or service not known ({host})"
    ))
}

/// What a [`ToSocketAddrs`] value stands for: addresses already, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Literal addresses.
    Addrs(Vec<SocketAddr>),
    /// A host name and a port.
    Name(String, u16),
}

/// Values that name socket addresses, as in tokio: `SocketAddr`, `(IpAddr, u16)`,
/// `"10.0.0.1:80"`, `("backend", 80)`, `"backend:80"`, `&[SocketAddr]`.
pub trait ToSocketAddrs {
    /// What this value names; a malformed string is an `InvalidInput` error.
    fn to_target(&self) -> io::Result<Target>;
}

impl ToSocketAddrs for SocketAddr {
    fn to_target(&self) -> io::Result<Target> {
        Ok(Target::Addrs(vec![*self]))
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    fn to_target(&self) -> io::Result<Target> {
        SocketAddr::V4(*self).to_target()
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    fn to_target(&self) -> io::Result<Target> {
        SocketAddr::V6(*self).to_target()
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    fn to_target(&self) -> io::Result<Target> {
        SocketAddr::new(self.0, self.1).to_target()
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    fn to_target(&self) -> io::Result<Target> {
        SocketAddr::new(IpAddr::V4(self.0), self.1).to_target()
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    fn to_target(&self) -> io::Result<Target> {
        SocketAddr::new(IpAddr::V6(self.0), self.1).to_target()
    }
}

impl ToSocketAddrs for (&str, u16) {
    fn to_target(&self) -> io::Result<Target> {
        Ok(match self.0.parse::<IpAddr>() {
            Ok(ip) => Target::Addrs(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Target::Name(self.0.to_string(), self.1),
        })
    }
}

impl ToSocketAddrs for (String, u16) {
    fn to_target(&self) -> io::Result<Target> {
        (self.0.as_str(), self.1).to_target()
    }
}

impl ToSocketAddrs for str {
    fn to_target(&self) -> io::Result<Target> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(Target::Addrs(vec![addr]));
        }
        let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_string());
        let (host, port) =
            self.rsplit_once(':').ok_or_else(|| invalid("invalid socket address"))?;
        let port = port.parse::<u16>().map_err(|_| invalid("invalid port value"))?;
        (host, port).to_target()
    }
}

impl ToSocketAddrs for String {
    fn to_target(&self) -> io::Result<Target> {
        self.as_str().to_target()
    }
}

impl ToSocketAddrs for [SocketAddr] {
    fn to_target(&self) -> io::Result<Target> {
        Ok(Target::Addrs(self.to_vec()))
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn to_target(&self) -> io::Result<Target> {
        (**self).to_target()
    }
}

/// Resolves `target` for the current pod: literal addresses as they are, names through the
/// resolver.
pub(crate) async fn resolve(target: Target) -> io::Result<Vec<SocketAddr>> {
    match target {
        Target::Addrs(addrs) => Ok(addrs),
        Target::Name(host, port) => {
            let pod = current_pod().ok_or_else(super::outside_pod)?;
            let resolver: Arc<dyn Resolve> =
                try_with_world(|w| w.resolver.borrow().clone()).ok_or_else(super::outside_pod)?;
            let ips = resolver.resolve(pod, &host).await?;
            Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
        }
    }
}

/// Like `tokio::net::lookup_host`: the addresses `host` (`"name:port"`, `(name, port)` or a
/// literal address) stands for, resolved for the current pod.
pub async fn lookup_host<T: ToSocketAddrs>(
    host: T,
) -> io::Result<impl Iterator<Item = SocketAddr>> {
    let target = host.to_target()?;
    Ok(resolve(target).await?.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_like_tokio() {
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!("10.0.0.1:80".to_target().unwrap(), Target::Addrs(vec![sa("10.0.0.1:80")]));
        assert_eq!("[::1]:53".to_target().unwrap(), Target::Addrs(vec![sa("[::1]:53")]));
        assert_eq!("web:8080".to_target().unwrap(), Target::Name("web".into(), 8080));
        assert_eq!(("10.0.0.2", 7).to_target().unwrap(), Target::Addrs(vec![sa("10.0.0.2:7")]));
        assert_eq!(("db", 5432).to_target().unwrap(), Target::Name("db".into(), 5432));
        assert_eq!("web".to_target().unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!("web:http".to_target().unwrap_err().to_string(), "invalid port value");
    }

    #[test]
    fn hosts_table_is_case_insensitive_and_knows_localhost() {
        let mut hosts = Hosts::new();
        hosts.insert("Backend.default.svc.", "10.96.0.10".parse().unwrap());
        assert_eq!(hosts.get("backend.default.svc"), Some(vec!["10.96.0.10".parse().unwrap()]));
        assert_eq!(hosts.get("localhost").unwrap()[0], IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(hosts.get("nothing"), None);
    }
}
