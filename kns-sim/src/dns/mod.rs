//! Cluster DNS: a CoreDNS-like server, an emulated upstream, and the resolver a pod runs.
//!
//! - [`message`] — DNS messages as values and their wire format (through `simple-dns`), TCP
//!   framing.
//! - [`records`] — reverse names, dashed addresses, zone membership.
//! - [`zone`] — the `kubernetes` plugin's records for a [`Cluster`](kns_core::Cluster).
//! - [`corefile`] — the Corefile subset, parsed with line numbers; kubeadm's default.
//! - [`server`] — [`DnsCore`] (sans-I/O: cache → hosts → kubernetes → forward, CNAME chase)
//!   and [`DnsServer`], the app serving UDP and TCP port 53 on a pod's stack.
//! - [`upstream`] — [`UpstreamDns`], the outside world's resolver (a fixed small zone).
//! - [`resolver`] — [`ResolvConf`] as kubelet writes it, glibc's [`SearchWalk`], and the
//!   [`Lookup`] (getaddrinfo-like, with a query log) and [`Dig`] apps.
//! - [`render`] — `dig` and `nslookup` text.
//!
//! **Guarantees:** virtual time only (TTLs and timeouts count in [`Time`](crate::Time));
//! query IDs come from seeds; every map is ordered, so answers and logs are the same on
//! every run.
//!
//! # Wiring
//!
//! ```text
//! let server = DnsServer::new(&cluster, DnsServerConfig { resolv_conf_upstream: Some(up), ..DnsServerConfig::new(seed) })?;
//! let id = sim.stack_mut::<SmolStack>(coredns_ns).unwrap().spawn(server);       // in the kube-dns pod
//! let conf = ResolvConf::for_pod(&cluster, pod, kube_dns_cluster_ip);           // conf.render() is the file
//! let l = sim.stack_mut::<SmolStack>(pod_ns).unwrap().spawn(Lookup::new(conf, "web", Family::V4, seed));
//! sim.kick(pod_ns); sim.run_for(..);
//! let lookup = sim.stack_mut::<SmolStack>(pod_ns).unwrap().app::<Lookup>(l).unwrap();
//! lookup.result(); lookup.queries();                                            // answer and query log
//! ```

pub mod corefile;
pub mod message;
pub mod records;
pub mod render;
pub mod resolver;
pub mod server;
#[cfg(test)]
mod testing;
pub mod upstream;
pub mod zone;

pub use corefile::{Corefile, CorefileError};
pub use message::{Message, Question, RData, Rcode, Record, RecordType};
pub use render::{dig_text, message_text, nslookup_text};
pub use resolver::{
    Dig, DigConfig, Family, Lookup, LookupAnswer, LookupError, QueryRecord, ResolvConf, SearchWalk,
};
pub use server::{DnsCore, DnsServer, DnsServerConfig, ServerStats};
pub use upstream::UpstreamDns;
pub use zone::{ClusterZone, PodMode, ZoneConfig};
