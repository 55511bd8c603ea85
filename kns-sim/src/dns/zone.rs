//! The cluster's DNS data as CoreDNS's `kubernetes` plugin serves it, built from a [`Cluster`].
//!
//! Names (for the cluster domain `cluster.local`):
//! - `<svc>.<ns>.svc.cluster.local`: A/AAAA of the ClusterIP; for a headless Service, one
//!   record per address of its ready endpoints; for an ExternalName Service, a CNAME to the
//!   external name.
//! - `<host>.<svc>.<ns>.svc.cluster.local` for each ready endpoint of a headless Service, where
//!   `<host>` is the endpoint's `hostname` (a StatefulSet pod whose `subdomain` names the
//!   Service), else the pod name with `endpoint_pod_names`, else the dashed address
//!   (`10-244-1-5`).
//! - SRV `_<port>._<proto>.<svc>.<ns>.svc.cluster.local` for each named port (a headless
//!   Service answers one per endpoint, target its per-endpoint name; weights split 100 evenly
//!   as CoreDNS does); an SRV question for the Service name itself lists every port.
//! - `a-b-c-d.<ns>.pod.cluster.local` per the `pods` mode (disabled, insecure: any well-formed
//!   address, verified: a pod of that namespace has it).
//! - PTR under `in-addr.arpa`/`ip6.arpa` (when the plugin holds those zones) for ClusterIPs
//!   (the Service name) and endpoint addresses (the per-endpoint name, the first Service in ID
//!   order), as CoreDNS answers; a pod that backs no Service has no PTR here.
//! - The zone apex answers SOA and NS (`ns.dns.<domain>`, whose A record is kube-dns's ClusterIP).
//!
//! Every existing name, including empty non-terminals such as `prod.svc.cluster.local` or
//! `_tcp.web.prod.svc.cluster.local`, answers NOERROR with no data for other types (NODATA);
//! any other name in the zone is NXDOMAIN. Negative answers carry the zone's SOA in the
//! authority section. Every record has the plugin's TTL (5 s by default).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use kns_core::Protocol;
use kns_core::model::{Cluster, EndpointSlice, NamespaceId, ServiceType};

use super::message::{Question, RData, Rcode, Record, RecordType, Soa};
use super::records::{dashed, in_zone, join, parse_dashed, parse_reverse, reverse_name};

/// The default TTL of the kubernetes plugin, seconds.
pub const DEFAULT_TTL: u32 = 5;

/// How `<ip>.<ns>.pod.<domain>` names are answered (the plugin's `pods` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodMode {
    /// No pod records (CoreDNS's default without the option).
    #[default]
    Disabled,
    /// Any well-formed dashed address answers, pod or not (kubeadm's Corefile).
    Insecure,
    /// Only addresses of pods in that namespace answer.
    Verified,
}

/// The kubernetes plugin's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The cluster domain (`cluster.local`), normalised.
    pub domain: String,
    /// Reverse zones the plugin also serves (`in-addr.arpa`, `ip6.arpa`), normalised.
    pub reverse_zones: Vec<String>,
    /// The `pods` mode.
    pub pods: PodMode,
    /// The TTL of every record.
    pub ttl: u32,
    /// `namespaces`: only these are exposed (`None`: all).
    pub namespaces: Option<BTreeSet<String>>,
    /// `endpoint_pod_names`: endpoints without a hostname are named after their pod.
    pub endpoint_pod_names: bool,
}

impl ZoneConfig {
    /// The plugin's defaults for `domain`: no reverse zones, no pod records, TTL 5.
    pub fn new(domain: &str) -> ZoneConfig {
        ZoneConfig {
            domain: super::message::normalize(domain),
            reverse_zones: Vec::new(),
            pods: PodMode::Disabled,
            ttl: DEFAULT_TTL,
            namespaces: None,
            endpoint_pod_names: false,
        }
    }

    /// kubeadm's settings for `domain` (`kubernetes <domain> in-addr.arpa ip6.arpa { pods
    /// insecure; ttl 30 }`).
    pub fn kubeadm(domain: &str) -> ZoneConfig {
        ZoneConfig {
            reverse_zones: vec!["in-addr.arpa".into(), "ip6.arpa".into()],
            pods: PodMode::Insecure,
            ttl: 30,
            ..ZoneConfig::new(domain)
        }
    }

    /// Every zone the plugin is authoritative for: the domain first, then the reverse zones.
    pub fn zones(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.domain.as_str()).chain(self.reverse_zones.iter().map(String::as_str))
    }
}

/// An authoritative answer from a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneAnswer {
    /// NOERROR (possibly without data) or NXDOMAIN.
    pub rcode: Rcode,
    /// The answer section. An alias answers its CNAME alone; the server follows the target.
    pub answers: Vec<Record>,
    /// The authority section (the SOA of negative answers).
    pub authority: Vec<Record>,
    /// The additional section (addresses of SRV targets).
    pub additional: Vec<Record>,
}

/// The records of one cluster, indexed for lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterZone {
    config: ZoneConfig,
    serial: u32,
    records: BTreeMap<String, Vec<Record>>,
    /// Every name that exists, with or without records (empty non-terminals too).
    names: BTreeSet<String>,
    /// PTR targets by address, first one wins.
    reverse: BTreeMap<IpAddr, String>,
    /// Pod addresses by namespace name, for `pods verified`.
    pod_ips: BTreeMap<String, BTreeSet<IpAddr>>,
}

impl ClusterZone {
    /// Builds the zone of `cluster` with `config`.
    pub fn build(cluster: &Cluster, config: ZoneConfig) -> ClusterZone {
        let mut z = ClusterZone {
            config,
            serial: 1,
            records: BTreeMap::new(),
            names: BTreeSet::new(),
            reverse: BTreeMap::new(),
            pod_ips: BTreeMap::new(),
        };
        z.fill(cluster);
        z
    }

    /// Rebuilds the records from `cluster`; the SOA serial goes up when anything changed.
    /// Returns whether anything changed.
    pub fn update(&mut self, cluster: &Cluster) -> bool {
        let fresh = ClusterZone::build(cluster, self.config.clone());
        let changed = fresh.records != self.records
            || fresh.names != self.names
            || fresh.reverse != self.reverse
            || fresh.pod_ips != self.pod_ips;
        if changed {
            let serial = self.serial.wrapping_add(1);
            *self = fresh;
            self.serial = serial;
        }
        changed
    }

    /// The settings.
    pub fn config(&self) -> &ZoneConfig {
        &self.config
    }

    /// The SOA serial (1, then one more per change).
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Every record of the zone by owner name (reverse and pod records, which are computed on
    /// demand, aside).
    pub fn records(&self) -> &BTreeMap<String, Vec<Record>> {
        &self.records
    }

    /// The zone that holds `name`, if the plugin is authoritative for it (the longest match).
    pub fn zone_of(&self, name: &str) -> Option<&str> {
        self.config.zones().filter(|z| in_zone(name, z)).max_by_key(|z| z.len())
    }

    /// Answers `q`, or `None` when the name lies outside every zone of the plugin.
    pub fn answer(&self, q: &Question) -> Option<ZoneAnswer> {
        let zone = self.zone_of(&q.name)?.to_string();
        let ttl = self.config.ttl;
        if zone != self.config.domain {
            let found = parse_reverse(&q.name).and_then(|ip| self.reverse.get(&ip));
            return Some(match found {
                Some(target) if matches!(q.qtype, RecordType::Ptr) => {
                    self.positive(vec![Record::new(&q.name, ttl, RData::Ptr(target.clone()))])
                }
                Some(_) => self.negative(&zone, Rcode::NoError),
                None => self.negative(&zone, Rcode::NxDomain),
            });
        }
        if q.name == self.config.domain {
            let data = match q.qtype {
                RecordType::Soa => Some(RData::Soa(self.soa_data())),
                RecordType::Ns => Some(RData::Ns(self.ns_name())),
                _ => None,
            };
            return Some(match data {
                Some(d) => self.positive(vec![Record::new(&q.name, ttl, d)]),
                None => self.negative(&zone, Rcode::NoError),
            });
        }
        if let Some(records) = self.pod_records(&q.name) {
            if records.is_empty() {
                return Some(self.negative(&zone, Rcode::NxDomain));
            }
            let matching: Vec<Record> =
                records.into_iter().filter(|r| r.data.record_type() == q.qtype).collect();
            return Some(if matching.is_empty() {
                self.negative(&zone, Rcode::NoError)
            } else {
                self.positive(matching)
            });
        }
        let Some(records) = self.records.get(&q.name) else {
            let rcode = if self.names.contains(&q.name) { Rcode::NoError } else { Rcode::NxDomain };
            return Some(self.negative(&zone, rcode));
        };
        let mut matching: Vec<Record> =
            records.iter().filter(|r| r.data.record_type() == q.qtype).cloned().collect();
        if matching.is_empty() {
            matching = records
                .iter()
                .filter(|r| r.data.record_type() == RecordType::Cname)
                .cloned()
                .collect();
        }
        if matching.is_empty() {
            return Some(self.negative(&zone, Rcode::NoError));
        }
        let mut answer = self.positive(matching);
        if q.qtype == RecordType::Srv {
            let mut seen = BTreeSet::new();
            for r in &answer.answers {
                if let RData::Srv { target, .. } = &r.data
                    && seen.insert(target.clone())
                {
                    let addresses = self.records.get(target).into_iter().flatten();
                    answer
                        .additional
                        .extend(addresses.filter(|a| a.data.address().is_some()).cloned());
                }
            }
        }
        Some(answer)
    }

    /// The SOA record of `zone` (one the plugin holds).
    pub fn soa(&self, zone: &str) -> Record {
        let mut data = self.soa_data();
        if zone != self.config.domain {
            data.mname = join("ns.dns", zone);
            data.rname = join("hostmaster", zone);
        }
        Record::new(zone, self.config.ttl, RData::Soa(data))
    }

    fn soa_data(&self) -> Soa {
        Soa {
            mname: self.ns_name(),
            rname: join("hostmaster", &self.config.domain),
            serial: self.serial,
            refresh: 7200,
            retry: 1800,
            expire: 86400,
            minimum: self.config.ttl,
        }
    }

    fn ns_name(&self) -> String {
        join("ns.dns", &self.config.domain)
    }

    fn positive(&self, answers: Vec<Record>) -> ZoneAnswer {
        ZoneAnswer { rcode: Rcode::NoError, answers, authority: Vec::new(), additional: Vec::new() }
    }

    fn negative(&self, zone: &str, rcode: Rcode) -> ZoneAnswer {
        ZoneAnswer {
            rcode,
            answers: Vec::new(),
            authority: vec![self.soa(zone)],
            additional: Vec::new(),
        }
    }

    /// The A/AAAA record of a `<dashed-ip>.<ns>.pod.<domain>` name, if `name` has that shape
    /// (an empty list: the shape is right but the mode or the check says no).
    fn pod_records(&self, name: &str) -> Option<Vec<Record>> {
        let suffix = join("pod", &self.config.domain);
        let rest = name.strip_suffix(&suffix)?.strip_suffix('.')?;
        let (label, ns) = rest.split_once('.')?;
        if ns.contains('.') {
            return None;
        }
        let ip = parse_dashed(label)?;
        let ok = match self.config.pods {
            PodMode::Disabled => false,
            PodMode::Insecure => self.exposed(ns),
            PodMode::Verified => self.pod_ips.get(ns).is_some_and(|ips| ips.contains(&ip)),
        };
        Some(if ok {
            vec![Record::new(name, self.config.ttl, RData::for_address(ip))]
        } else {
            vec![]
        })
    }

    fn exposed(&self, namespace: &str) -> bool {
        self.config.namespaces.as_ref().is_none_or(|n| n.contains(namespace))
    }

    fn add(&mut self, record: Record) {
        let list = self.records.entry(record.name.clone()).or_default();
        if !list.contains(&record) {
            list.push(record);
        }
    }

    /// Marks `name` and every ancestor up to the domain as existing.
    fn mark(&mut self, name: &str) {
        let mut n = name;
        loop {
            // A name already present has its ancestors marked too.
            if !self.names.insert(n.to_string()) {
                break;
            }
            if n == self.config.domain {
                break;
            }
            match n.split_once('.') {
                Some((_, parent)) if in_zone(parent, &self.config.domain) => n = parent,
                _ => break,
            }
        }
    }

    fn fill(&mut self, cluster: &Cluster) {
        let domain = self.config.domain.clone();
        let ttl = self.config.ttl;
        self.mark(&join("svc", &domain));
        self.mark(&join("pod", &domain));
        for ns in &cluster.namespaces {
            if self.exposed(&ns.name) {
                self.mark(&join(&ns.name, &join("svc", &domain)));
                self.mark(&join(&ns.name, &join("pod", &domain)));
            }
        }
        for pod in &cluster.pods {
            let ns = &cluster.namespace(pod.namespace).name;
            self.pod_ips.entry(ns.clone()).or_default().extend(pod.ips.iter().copied());
        }
        if let Some(dns) = cluster.service_by_name("kube-system", "kube-dns")
            && let Some(ip) = dns.cluster_ip
        {
            let ns_name = self.ns_name();
            self.add(Record::new(&ns_name, ttl, RData::for_address(ip)));
            self.mark(&ns_name);
        }
        let mut by_service: BTreeMap<(NamespaceId, &str), Vec<&EndpointSlice>> = BTreeMap::new();
        for slice in &cluster.endpoint_slices {
            by_service
                .entry((slice.namespace, slice.service_name.as_str()))
                .or_default()
                .push(slice);
        }
        let mut reverse: Vec<(IpAddr, String)> = Vec::new();
        let mut endpoint_reverse: Vec<(IpAddr, String)> = Vec::new();
        for svc in &cluster.services {
            let ns = &cluster.namespace(svc.namespace).name;
            if !self.exposed(ns) {
                continue;
            }
            let base = join(&svc.name, &join(ns, &join("svc", &domain)));
            if svc.service_type == ServiceType::ExternalName {
                if let Some(target) = &svc.external_name {
                    self.add(Record::new(
                        &base,
                        ttl,
                        RData::Cname(super::message::normalize(target)),
                    ));
                    self.mark(&base);
                }
                continue;
            }
            if let Some(ip) = svc.cluster_ip {
                self.add(Record::new(&base, ttl, RData::for_address(ip)));
                self.mark(&base);
                reverse.push((ip, base.clone()));
                let n = svc.ports.len().max(1);
                let weight = u16::try_from(100 / n).unwrap_or(100);
                for p in &svc.ports {
                    let srv = |weight| RData::Srv {
                        priority: 0,
                        weight,
                        port: p.port,
                        target: base.clone(),
                    };
                    self.add(Record::new(&base, ttl, srv(weight)));
                    if let Some(name) = &p.name {
                        let owner = srv_name(name, p.protocol, &base);
                        self.add(Record::new(&owner, ttl, srv(100)));
                        self.mark(&owner);
                    }
                }
            }
            // Endpoints: the per-endpoint names, and (headless) the Service's own records.
            let mut endpoints: Vec<(String, IpAddr, &Vec<kns_core::model::EndpointPort>)> =
                Vec::new();
            let slices = by_service.get(&(svc.namespace, svc.name.as_str())).into_iter().flatten();
            for slice in slices {
                for e in slice.endpoints.iter().filter(|e| e.ready) {
                    for &addr in &e.addresses {
                        let host = e
                            .hostname
                            .clone()
                            .or_else(|| {
                                self.config
                                    .endpoint_pod_names
                                    .then(|| e.pod.map(|p| cluster.pod(p).name.clone()))
                                    .flatten()
                            })
                            .unwrap_or_else(|| dashed(addr));
                        endpoints.push((super::message::normalize(&host), addr, &slice.ports));
                    }
                }
            }
            for (host, addr, _) in &endpoints {
                endpoint_reverse.push((*addr, join(host, &base)));
            }
            if !svc.is_headless() || endpoints.is_empty() {
                continue;
            }
            self.mark(&base);
            for (host, addr, _) in &endpoints {
                let owner = join(host, &base);
                self.add(Record::new(&base, ttl, RData::for_address(*addr)));
                self.add(Record::new(&owner, ttl, RData::for_address(*addr)));
                self.mark(&owner);
            }
            // SRV: for each endpoint port, one record per endpoint; a bare question lists all.
            let mut by_port: BTreeMap<(Option<String>, u16, Protocol), Vec<String>> =
                BTreeMap::new();
            for (host, _, ports) in &endpoints {
                for p in ports.iter() {
                    let target = join(host, &base);
                    let list = by_port.entry((p.name.clone(), p.port, p.protocol)).or_default();
                    if !list.contains(&target) {
                        list.push(target);
                    }
                }
            }
            let total: usize = by_port.values().map(Vec::len).sum();
            for ((name, port, protocol), targets) in &by_port {
                let bare_weight = u16::try_from(100 / total.max(1)).unwrap_or(100);
                let weight = u16::try_from(100 / targets.len().max(1)).unwrap_or(100);
                for target in targets {
                    let srv = |weight| RData::Srv {
                        priority: 0,
                        weight,
                        port: *port,
                        target: target.clone(),
                    };
                    self.add(Record::new(&base, ttl, srv(bare_weight)));
                    if let Some(name) = name {
                        let owner = srv_name(name, *protocol, &base);
                        self.add(Record::new(&owner, ttl, srv(weight)));
                        self.mark(&owner);
                    }
                }
            }
        }
        let owns_reverse =
            |ip: &IpAddr| self.config.reverse_zones.iter().any(|z| in_zone(&reverse_name(*ip), z));
        let mut table = BTreeMap::new();
        for (ip, name) in reverse.into_iter().chain(endpoint_reverse) {
            if owns_reverse(&ip) {
                table.entry(ip).or_insert(name);
            }
        }
        self.reverse = table;
    }
}

/// `_<port>._<proto>.<base>`.
fn srv_name(port: &str, protocol: Protocol, base: &str) -> String {
    let proto = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    };
    format!("_{}._{proto}.{base}", port.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kns_core::model::{Endpoint, EndpointPort};

    fn ask(z: &ClusterZone, name: &str, t: RecordType) -> ZoneAnswer {
        z.answer(&Question::new(name, t)).expect("in zone")
    }

    fn data(a: &ZoneAnswer) -> Vec<String> {
        a.answers.iter().map(|r| r.data.to_string()).collect()
    }

    fn cluster() -> Cluster {
        crate::dns::testing::sample_cluster()
    }

    #[test]
    fn cluster_ip_services_answer_a_and_srv() {
        let z = ClusterZone::build(&cluster(), ZoneConfig::kubeadm("cluster.local"));
        let a = ask(&z, "web.prod.svc.cluster.local", RecordType::A);
        assert_eq!((a.rcode, data(&a)), (Rcode::NoError, vec!["10.96.0.20".to_string()]));
        assert_eq!(a.answers[0].ttl, 30, "kubeadm's Corefile sets ttl 30");
        let plain = ClusterZone::build(&cluster(), ZoneConfig::new("cluster.local"));
        assert_eq!(ask(&plain, "web.prod.svc.cluster.local", RecordType::A).answers[0].ttl, 5);
        assert!(plain.answer(&Question::new("20.0.96.10.in-addr.arpa", RecordType::Ptr)).is_none());
        let pods = ask(&plain, "10-244-1-5.prod.pod.cluster.local", RecordType::A);
        assert_eq!(pods.rcode, Rcode::NxDomain, "pods disabled");
        let srv = ask(&z, "_http._tcp.web.prod.svc.cluster.local", RecordType::Srv);
        assert_eq!(data(&srv), ["0 100 80 web.prod.svc.cluster.local."]);
        assert_eq!(srv.additional.len(), 1, "the target's address comes along");
        let bare = ask(&z, "web.prod.svc.cluster.local", RecordType::Srv);
        assert_eq!(bare.answers.len(), 2, "both ports: {:?}", data(&bare));
    }

    #[test]
    fn nxdomain_and_nodata_differ() {
        let z = ClusterZone::build(&cluster(), ZoneConfig::kubeadm("cluster.local"));
        let nx = ask(&z, "nope.prod.svc.cluster.local", RecordType::A);
        assert_eq!(nx.rcode, Rcode::NxDomain);
        assert_eq!(nx.authority[0].data.record_type(), RecordType::Soa);
        let nodata = ask(&z, "web.prod.svc.cluster.local", RecordType::Aaaa);
        assert_eq!((nodata.rcode, nodata.answers.len()), (Rcode::NoError, 0));
        assert_eq!(nodata.authority.len(), 1);
        for ent in
            ["prod.svc.cluster.local", "svc.cluster.local", "_tcp.web.prod.svc.cluster.local"]
        {
            let a = ask(&z, ent, RecordType::A);
            assert_eq!((a.rcode, a.answers.len()), (Rcode::NoError, 0), "{ent}");
        }
        assert_eq!(ask(&z, "nons.svc.cluster.local", RecordType::A).rcode, Rcode::NxDomain);
        assert!(z.answer(&Question::new("example.com", RecordType::A)).is_none());
        let soa = ask(&z, "cluster.local", RecordType::Soa);
        assert_eq!(
            data(&soa),
            ["ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30"]
        );
    }

    #[test]
    fn headless_services_answer_endpoints_and_per_pod_names() {
        let z = ClusterZone::build(&cluster(), ZoneConfig::kubeadm("cluster.local"));
        let a = ask(&z, "db.prod.svc.cluster.local", RecordType::A);
        assert_eq!(data(&a), ["10.244.1.10", "10.244.1.11"], "only ready endpoints");
        let pod = ask(&z, "db-0.db.prod.svc.cluster.local", RecordType::A);
        assert_eq!(data(&pod), ["10.244.1.10"]);
        let srv = ask(&z, "_pg._tcp.db.prod.svc.cluster.local", RecordType::Srv);
        assert_eq!(
            data(&srv),
            [
                "0 50 5432 db-0.db.prod.svc.cluster.local.",
                "0 50 5432 db-1.db.prod.svc.cluster.local."
            ]
        );
        assert_eq!(srv.additional.len(), 2);
        let not_ready = ask(&z, "db-2.db.prod.svc.cluster.local", RecordType::A);
        assert_eq!(not_ready.rcode, Rcode::NxDomain);
    }

    #[test]
    fn external_names_pods_and_reverse() {
        let z = ClusterZone::build(&cluster(), ZoneConfig::kubeadm("cluster.local"));
        let ext = ask(&z, "ext.prod.svc.cluster.local", RecordType::A);
        assert_eq!(data(&ext), ["www.example.com."]);
        assert_eq!(ext.answers[0].data.record_type(), RecordType::Cname);
        let pod = ask(&z, "10-244-1-99.prod.pod.cluster.local", RecordType::A);
        assert_eq!(data(&pod), ["10.244.1.99"], "insecure: any address");
        let mut verified = ZoneConfig::kubeadm("cluster.local");
        verified.pods = PodMode::Verified;
        let zv = ClusterZone::build(&cluster(), verified);
        assert_eq!(
            ask(&zv, "10-244-1-99.prod.pod.cluster.local", RecordType::A).rcode,
            Rcode::NxDomain
        );
        let v6 = ask(&zv, "10-244-1-10.prod.pod.cluster.local", RecordType::Aaaa);
        assert_eq!(
            (v6.rcode, v6.answers.len()),
            (Rcode::NoError, 0),
            "NODATA for the other family"
        );
        assert_eq!(
            data(&ask(&zv, "10-244-1-10.prod.pod.cluster.local", RecordType::A)),
            ["10.244.1.10"]
        );
        let ptr = ask(&z, "20.0.96.10.in-addr.arpa", RecordType::Ptr);
        assert_eq!(data(&ptr), ["web.prod.svc.cluster.local."]);
        let ptr = ask(&z, "10.1.244.10.in-addr.arpa", RecordType::Ptr);
        assert_eq!(data(&ptr), ["db-0.db.prod.svc.cluster.local."]);
        let nx = ask(&z, "1.2.3.4.in-addr.arpa", RecordType::Ptr);
        assert_eq!(nx.rcode, Rcode::NxDomain);
        let dns = ask(&z, "ns.dns.cluster.local", RecordType::A);
        assert_eq!(data(&dns), ["10.96.0.10"]);
    }

    #[test]
    fn ipv6_cluster_ips_answer_aaaa_and_ip6_arpa() {
        let mut c = cluster();
        let web = c.services.iter_mut().find(|s| s.name == "web").unwrap();
        web.cluster_ip = Some("fd00::20".parse().unwrap());
        let z = ClusterZone::build(&c, ZoneConfig::kubeadm("cluster.local"));
        let aaaa = ask(&z, "web.prod.svc.cluster.local", RecordType::Aaaa);
        assert_eq!(data(&aaaa), ["fd00::20"]);
        let a = ask(&z, "web.prod.svc.cluster.local", RecordType::A);
        assert_eq!((a.rcode, a.answers.len()), (Rcode::NoError, 0));
        let rev = crate::dns::records::reverse_name("fd00::20".parse().unwrap());
        let ptr = ask(&z, &rev, RecordType::Ptr);
        assert_eq!(data(&ptr), ["web.prod.svc.cluster.local."]);
        assert_eq!(ptr.answers[0].name, rev);
    }

    #[test]
    fn thousands_of_services_build_quickly() {
        let mut c = cluster();
        let web = c.services.iter().find(|s| s.name == "web").unwrap().clone();
        for i in 0..5_000u32 {
            let mut s = web.clone();
            s.name = format!("svc-{i}");
            s.id = kns_core::model::ServiceId::from_index(c.services.len());
            s.cluster_ip = Some(std::net::Ipv4Addr::from(0x0a60_1000 + i).into());
            c.services.push(s);
        }
        let z = ClusterZone::build(&c, ZoneConfig::kubeadm("cluster.local"));
        let a = ask(&z, "svc-4999.prod.svc.cluster.local", RecordType::A);
        assert_eq!(data(&a), ["10.96.35.135"]);
        assert!(z.records().len() > 10_000);
    }

    #[test]
    fn updates_follow_the_cluster_and_bump_the_serial() {
        let mut c = cluster();
        let mut z = ClusterZone::build(&c, ZoneConfig::kubeadm("cluster.local"));
        assert!(!z.update(&c));
        c.endpoint_slices.push(EndpointSlice {
            name: "extra".into(),
            namespace: c.namespace_by_name("prod").unwrap().id,
            service_name: "db".into(),
            endpoints: vec![Endpoint {
                addresses: vec!["10.244.2.7".parse().unwrap()],
                ready: true,
                pod: None,
                node: None,
                hostname: None,
            }],
            ports: vec![EndpointPort {
                name: Some("pg".into()),
                port: 5432,
                protocol: Protocol::Tcp,
            }],
        });
        assert!(z.update(&c));
        assert_eq!(z.serial(), 2);
        let a = ask(&z, "10-244-2-7.db.prod.svc.cluster.local", RecordType::A);
        assert_eq!(
            data(&a),
            ["10.244.2.7"],
            "an endpoint without hostname is named by its address"
        );
    }
}
