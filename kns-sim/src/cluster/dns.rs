//! Cluster DNS in a living cluster: the `kube-dns` pod runs [`DnsServer`], the internet host
//! runs [`UpstreamDns::example`] (the Corefile's `forward . /etc/resolv.conf` goes there), and
//! every pod resolves with the resolv.conf kubelet would write ([`ResolvConf::for_pod`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kns_core::model::{Cluster, Pod, PodId};

use super::{ClusterError, ClusterNet, Source};
use crate::dns::{
    Dig, DigConfig, DnsServer, DnsServerConfig, Family, Lookup, LookupAnswer, LookupError, Message,
    QueryRecord, RecordType, ResolvConf, UpstreamDns, dig_text, nslookup_text,
};
use crate::net::NetnsId;
use crate::stack::{AppId, SmolStack};

/// The namespace and label that mark the cluster DNS pods, as kubeadm deploys CoreDNS.
const DNS_NAMESPACE: &str = "kube-system";
/// The label key and value of the cluster DNS pods and Service.
const DNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");
/// The cluster DNS Service.
const DNS_SERVICE: &str = "kube-dns";

/// How long a lookup or dig may take in virtual time (glibc: 5 s × 2 attempts per name).
const DNS_LIMIT: Duration = Duration::from_secs(120);

/// Where the cluster DNS server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DnsApp {
    pub(super) pod: PodId,
    pub(super) ns: NetnsId,
    pub(super) app: AppId,
}

/// One name lookup from a source, as `getaddrinfo` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsLookup {
    /// The name as asked.
    pub name: String,
    /// The answer or the resolver's error.
    pub result: Result<LookupAnswer, LookupError>,
    /// Every query the resolver sent and what came back.
    pub queries: Vec<QueryRecord>,
    /// `nslookup`'s rendering of the lookup.
    pub text: String,
}

/// Whether `pod` is a cluster DNS pod (`kube-system`, labelled `k8s-app: kube-dns`).
pub fn is_dns_pod(cluster: &Cluster, pod: &Pod) -> bool {
    cluster.namespace(pod.namespace).name == DNS_NAMESPACE
        && pod.labels.get(DNS_LABEL.0).is_some_and(|v| v == DNS_LABEL.1)
}

impl ClusterNet {
    /// The cluster IP of the `kube-dns` Service, when the cluster has one.
    pub fn dns_service_ip(&self) -> Option<IpAddr> {
        self.cluster.service_by_name(DNS_NAMESPACE, DNS_SERVICE).and_then(|s| s.cluster_ip)
    }

    /// The cluster DNS server app (`None` without a running `kube-dns` pod).
    pub fn dns_server(&mut self) -> Option<&DnsServer> {
        let d = self.dns?;
        self.sim.stack_mut::<SmolStack>(d.ns).and_then(|s| s.app::<DnsServer>(d.app))
    }

    /// Starts the upstream resolver on the internet host (when it has a socket stack).
    pub(super) fn start_upstream(&mut self) {
        let ns = self.outside.internet;
        if let Some(stack) = self.sim.stack_mut::<SmolStack>(ns) {
            stack.spawn(UpstreamDns::example());
            self.sim.kick(ns);
        }
    }

    /// Starts the DNS server in the pod's namespace; `false` if its Corefile is refused (a
    /// warning says why, and the pod's ports get the ordinary servers).
    pub(super) fn start_dns_server(&mut self, ns: NetnsId, pod: &Pod) -> bool {
        let config = DnsServerConfig {
            resolv_conf_upstream: Some(SocketAddr::new(self.outside.host, 53)),
            ..DnsServerConfig::new(self.sim.child_seed())
        };
        let live = self.live_cluster();
        let server = match DnsServer::new(&live, config) {
            Ok(s) => s,
            Err(e) => {
                self.warnings.push(format!("cluster DNS not started: {e}"));
                return false;
            }
        };
        let Some(stack) = self.sim.stack_mut::<SmolStack>(ns) else { return false };
        let app = stack.spawn(server);
        self.dns = Some(DnsApp { pod: pod.id, ns, app });
        true
    }

    /// Hands the DNS server the current model.
    pub(super) fn sync_dns(&mut self, live: &Cluster) {
        let Some(d) = self.dns else { return };
        if !self.pods.contains_key(&d.pod) {
            self.dns = None;
            return;
        }
        if let Some(server) =
            self.sim.stack_mut::<SmolStack>(d.ns).and_then(|s| s.app_mut::<DnsServer>(d.app))
        {
            server.update(live);
        }
    }

    /// The resolv.conf a source resolves with: a pod's is kubelet's ClusterFirst file; nodes
    /// and the internet host ask the upstream resolver directly.
    pub fn resolv_conf(&self, source: Source) -> Result<ResolvConf, ClusterError> {
        match source {
            Source::Pod(p) => {
                let ip = self.dns_service_ip().ok_or_else(|| {
                    ClusterError::NotFound("the cluster has no kube-dns Service".into())
                })?;
                Ok(ResolvConf::for_pod(&self.cluster, p, ip))
            }
            Source::Node(_) | Source::Internet => {
                ResolvConf::parse(&format!("nameserver {}\n", self.outside.host))
                    .map_err(|e| ClusterError::Build(e.to_string()))
            }
        }
    }

    /// Resolves `name` (A records) from `source` the way glibc does, walking the search list.
    pub fn lookup(&mut self, source: Source, name: &str) -> Result<DnsLookup, ClusterError> {
        let conf = self.resolv_conf(source)?;
        let ns = self.source_ns(source)?;
        let seed = self.sim.child_seed();
        let lookup = Lookup::new(conf, name, Family::V4, seed);
        let out = self.run_app(ns, lookup, DNS_LIMIT, |l| {
            l.finished_at()?;
            let result = match (l.result(), l.error()) {
                (Some(r), _) => r.clone(),
                (None, _) => Err(LookupError::TryAgain),
            };
            Some(DnsLookup {
                name: name.to_string(),
                result,
                queries: l.queries().to_vec(),
                text: nslookup_text(l, name),
            })
        })?;
        out.ok_or_else(|| ClusterError::Build(format!("the lookup of {name} did not finish")))
    }

    /// `dig NAME TYPE` from `source` against its first nameserver; returns dig's text and the
    /// answer (`None` if no server answered).
    pub fn dig(
        &mut self,
        source: Source,
        name: &str,
        qtype: RecordType,
    ) -> Result<(String, Option<Message>), ClusterError> {
        let conf = self.resolv_conf(source)?;
        let server = conf
            .nameservers
            .first()
            .copied()
            .ok_or_else(|| ClusterError::NotFound("no nameserver to ask".into()))?;
        let ns = self.source_ns(source)?;
        let mut config = DigConfig::new(SocketAddr::new(server, 53), name, qtype);
        config.id = self.sim.child_seed() as u16;
        let out = self.run_app(ns, Dig::new(config), DNS_LIMIT, |d| {
            d.finished_at()?;
            Some((dig_text(d), d.response().cloned()))
        })?;
        out.ok_or_else(|| ClusterError::Build(format!("dig {name} did not finish")))
    }
}

impl ClusterNet {
    /// Probe settings for packet matrices in a cluster with DNS: UDP probes carry a DNS query
    /// (`kubernetes.default.svc.<domain> A`) instead of agnhost's `hostname`. agnhost answers
    /// any datagram with its name and the DNS server answers the query, so a UDP port is
    /// `Connected` on both; a DNS server, like CoreDNS, ignores datagrams that are not DNS.
    pub fn matrix_probe_config(&self) -> crate::stack::apps::ProbeConfig {
        let mut config = crate::stack::apps::ProbeConfig::default();
        let name = format!("kubernetes.default.svc.{}", self.cluster.config.domain);
        let query = Message::query(0x6b6e, crate::dns::Question::new(&name, RecordType::A));
        if let Ok(wire) = query.to_wire() {
            config.udp_payload = wire;
        }
        config
    }
}
