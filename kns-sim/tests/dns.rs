//! Cluster DNS over real packets: a CoreDNS-like server in a `coredns` namespace, a client
//! pod's stack in `client`, an upstream resolver in `upstream`, all on one bridge.
//!
//! The client plays a pod of namespace `prod`; its resolv.conf points at the server's address
//! directly (there is no kube-proxy here to translate the kube-dns ClusterIP).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kns_core::Cluster;
use kns_sim::Sim;
use kns_sim::dns::server::Source;
use kns_sim::dns::{
    Dig, DigConfig, DnsServer, DnsServerConfig, Family, Lookup, LookupAnswer, LookupError, Message,
    QueryRecord, RData, Rcode, RecordType, ResolvConf, UpstreamDns, dig_text, nslookup_text,
};
use kns_sim::net::NetnsId;
use kns_sim::stack::{AppId, SmolStack, StackConfig};

const TOPOLOGY: &str = "
ip link add br0 type bridge
ip link set dev br0 up
ip netns add coredns
ip netns add client
ip netns add upstream
ip link add veth-dns type veth peer name eth0 netns coredns
ip link add veth-client type veth peer name eth0 netns client
ip link add veth-up type veth peer name eth0 netns upstream
ip link set veth-dns master br0
ip link set veth-client master br0
ip link set veth-up master br0
ip link set veth-dns up
ip link set veth-client up
ip link set veth-up up
ip -n coredns addr add 10.0.0.53/24 dev eth0
ip -n client addr add 10.0.0.10/24 dev eth0
ip -n upstream addr add 10.0.0.200/24 dev eth0
ip -n coredns link set eth0 up
ip -n client link set eth0 up
ip -n upstream link set eth0 up
";

const COREFILE: &str = "    .:53 {
        errors
        health {
           lameduck 5s
        }
        ready
        hosts {
           10.1.2.3 legacy.corp
           fallthrough
        }
        kubernetes cluster.local in-addr.arpa ip6.arpa {
           pods insecure
           fallthrough in-addr.arpa ip6.arpa
           ttl 30
        }
        prometheus :9153
        forward . /etc/resolv.conf
        cache 30
        loop
        reload
        loadbalance
    }
";

/// The cluster: `web` (ClusterIP), `db` (headless, StatefulSet pods), `big` (headless, 60
/// endpoints), `ext` (ExternalName), and the `coredns` ConfigMap (with `corefile`).
fn manifests(corefile: &str) -> String {
    let mut y = String::from(
        "apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec:
  clusterIP: 10.96.0.20
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: big, namespace: prod}
spec:
  clusterIP: None
  selector: {app: big}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: prod}
spec: {type: ExternalName, externalName: www.example.com}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: prod, labels: {app: web}}
spec:
  nodeName: node-1
  containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]
status: {podIP: 10.244.1.5}
",
    );
    for i in 0..2 {
        y.push_str(&format!(
            "---
apiVersion: v1
kind: Pod
metadata: {{name: db-{i}, namespace: prod, labels: {{app: db}}}}
spec:
  nodeName: node-1
  hostname: db-{i}
  subdomain: db
  containers: [{{name: c, image: x, ports: [{{containerPort: 5432}}]}}]
status: {{podIP: 10.244.1.{}}}
",
            10 + i
        ));
    }
    for i in 0..60 {
        y.push_str(&format!(
            "---
apiVersion: v1
kind: Pod
metadata: {{name: big-{i}, namespace: prod, labels: {{app: big}}}}
spec:
  nodeName: node-1
  containers: [{{name: c, image: x, ports: [{{containerPort: 80}}]}}]
status: {{podIP: 10.244.2.{}}}
",
            10 + i
        ));
    }
    y.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: coredns, namespace: kube-system}\ndata:\n  Corefile: |\n");
    y.push_str(corefile);
    y
}

fn cluster(corefile: &str) -> Cluster {
    match kns_core::manifest::load_str("dns.yaml", &manifests(corefile)) {
        Ok(l) => l.cluster,
        Err(e) => panic!("{}", e.render()),
    }
}

const SERVER: &str = "10.0.0.53";
const UPSTREAM: &str = "10.0.0.200:53";

struct World {
    sim: Sim,
    coredns: NetnsId,
    client: NetnsId,
    upstream: NetnsId,
    server: AppId,
    upstream_app: AppId,
}

fn world(seed: u64) -> World {
    let mut sim = Sim::new(seed);
    for line in TOPOLOGY.lines().filter(|l| !l.trim().is_empty()) {
        sim.ip(None, line).unwrap();
    }
    let coredns = sim.netns(Some("coredns")).unwrap();
    let client = sim.netns(Some("client")).unwrap();
    let upstream = sim.netns(Some("upstream")).unwrap();
    for ns in [coredns, client, upstream] {
        let s = sim.child_seed();
        sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(s), sim.now()));
    }
    let mut config = DnsServerConfig::new(sim.child_seed());
    config.resolv_conf_upstream = Some(UPSTREAM.parse().unwrap());
    let server = DnsServer::new(&cluster(COREFILE), config).unwrap();
    let server = sim.stack_mut::<SmolStack>(coredns).unwrap().spawn(server);
    let upstream_app = sim.stack_mut::<SmolStack>(upstream).unwrap().spawn(UpstreamDns::example());
    for ns in [coredns, upstream] {
        sim.kick(ns);
    }
    sim.run_for(Duration::from_millis(1));
    World { sim, coredns, client, upstream, server, upstream_app }
}

impl World {
    fn stack(&mut self, ns: NetnsId) -> &mut SmolStack {
        self.sim.stack_mut::<SmolStack>(ns).unwrap()
    }

    /// Runs the client's app `id` to completion (at most a minute of virtual time).
    fn run_until_done(&mut self, id: AppId) {
        self.sim.kick(self.client);
        let end = self.sim.now() + Duration::from_secs(60);
        while !self.stack(self.client).is_done(id) && self.sim.now() < end {
            self.sim.run_for(Duration::from_millis(10));
        }
    }

    fn dig_config(&mut self, name: &str, t: RecordType) -> DigConfig {
        DigConfig::new(SocketAddr::new(SERVER.parse().unwrap(), 53), name, t)
    }

    /// Runs a dig from the client; returns the answer and dig's text.
    fn dig_with(&mut self, config: DigConfig) -> (Option<Message>, String, Vec<QueryRecord>) {
        let id = self.stack(self.client).spawn(Dig::new(config));
        self.run_until_done(id);
        let dig = self.stack(self.client).app::<Dig>(id).unwrap();
        assert!(dig.finished_at().is_some(), "dig did not finish");
        (dig.response().cloned(), dig_text(dig), dig.queries().to_vec())
    }

    fn dig(&mut self, name: &str, t: RecordType) -> Message {
        let c = self.dig_config(name, t);
        self.dig_with(c).0.expect("an answer")
    }

    /// Resolves `name` from the client (a pod of `prod`) as getaddrinfo would.
    fn lookup(
        &mut self,
        name: &str,
        family: Family,
    ) -> (Result<LookupAnswer, LookupError>, Vec<QueryRecord>, String) {
        let conf = ResolvConf::cluster_first(SERVER.parse().unwrap(), "prod", "cluster.local");
        let seed = self.sim.child_seed();
        let id = self.stack(self.client).spawn(Lookup::new(conf, name, family, seed));
        self.run_until_done(id);
        let l = self.stack(self.client).app::<Lookup>(id).unwrap();
        let result = l.result().cloned().expect("lookup finished");
        (result, l.queries().to_vec(), nslookup_text(l, name))
    }

    fn server(&mut self) -> &mut DnsServer {
        let id = self.server;
        let ns = self.coredns;
        self.stack(ns).app_mut::<DnsServer>(id).unwrap()
    }

    fn upstream_queries(&mut self) -> Vec<String> {
        let id = self.upstream_app;
        let ns = self.upstream;
        let up = self.stack(ns).app::<UpstreamDns>(id).unwrap();
        up.log().iter().map(|q| format!("{} {}", q.question.name, q.question.qtype)).collect()
    }
}

fn data(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The names asked, in order (`name TYPE`).
fn asked(queries: &[QueryRecord]) -> Vec<String> {
    queries
        .iter()
        .map(|q| format!("{} {}", q.query.questions[0].name, q.query.questions[0].qtype))
        .collect()
}

#[test]
fn every_record_type_over_udp() {
    let mut w = world(1);
    let a = w.dig("web.prod.svc.cluster.local", RecordType::A);
    assert_eq!((a.rcode, data(&a)), (Rcode::NoError, vec!["10.96.0.20".to_string()]));
    assert!(a.flags.authoritative);
    assert_eq!(a.answers[0].ttl, 30);

    let nodata = w.dig("web.prod.svc.cluster.local", RecordType::Aaaa);
    assert_eq!((nodata.rcode, nodata.answers.len()), (Rcode::NoError, 0));
    assert_eq!(nodata.authority[0].data.record_type(), RecordType::Soa);

    let srv = w.dig("_http._tcp.web.prod.svc.cluster.local", RecordType::Srv);
    assert_eq!(data(&srv), ["0 100 80 web.prod.svc.cluster.local."]);

    let headless = w.dig("db.prod.svc.cluster.local", RecordType::A);
    assert_eq!(data(&headless), ["10.244.1.10", "10.244.1.11"]);
    let per_pod = w.dig("db-1.db.prod.svc.cluster.local", RecordType::A);
    assert_eq!(data(&per_pod), ["10.244.1.11"]);
    let srv = w.dig("_pg._tcp.db.prod.svc.cluster.local", RecordType::Srv);
    assert_eq!(
        data(&srv),
        ["0 50 5432 db-0.db.prod.svc.cluster.local.", "0 50 5432 db-1.db.prod.svc.cluster.local."]
    );
    assert_eq!(srv.additional.len(), 2, "the targets' addresses ride along");

    let pod = w.dig("10-244-1-5.prod.pod.cluster.local", RecordType::A);
    assert_eq!(data(&pod), ["10.244.1.5"]);

    let ptr = w.dig("20.0.96.10.in-addr.arpa", RecordType::Ptr);
    assert_eq!(data(&ptr), ["web.prod.svc.cluster.local."]);
    let ptr = w.dig("10.1.244.10.in-addr.arpa", RecordType::Ptr);
    assert_eq!(data(&ptr), ["db-0.db.prod.svc.cluster.local."]);

    let nx = w.dig("nope.prod.svc.cluster.local", RecordType::A);
    assert_eq!(nx.rcode, Rcode::NxDomain);
    assert_eq!(nx.authority[0].name, "cluster.local");

    let soa = w.dig("cluster.local", RecordType::Soa);
    assert_eq!(
        data(&soa),
        ["ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30"]
    );
    let dns = w.dig("ns.dns.cluster.local", RecordType::A);
    assert_eq!(data(&dns), ["10.96.0.10"]);

    let stats = w.server().core().stats();
    assert_eq!((stats.udp_queries, stats.tcp_queries, stats.upstream_queries), (12, 0, 0));
    assert!(w.sim.conservation().holds(), "{}", w.sim.conservation());
}

#[test]
fn external_names_answer_the_alias_and_its_address() {
    let mut w = world(2);
    let m = w.dig("ext.prod.svc.cluster.local", RecordType::A);
    let lines: Vec<String> = m.answers.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "ext.prod.svc.cluster.local.\t30\tIN\tCNAME\twww.example.com.",
            "www.example.com.\t300\tIN\tCNAME\texample.com.",
            "example.com.\t300\tIN\tA\t203.0.113.10",
        ]
    );
    assert!(!m.flags.authoritative && m.flags.recursion_available, "the tail came from upstream");
    assert_eq!(w.upstream_queries(), ["www.example.com A"]);
    let (result, _, text) = w.lookup("ext", Family::V4);
    let answer = result.unwrap();
    assert_eq!(
        (answer.name.as_str(), answer.canonical.as_str()),
        ("ext.prod.svc.cluster.local", "example.com")
    );
    assert_eq!(answer.addresses, [ip("203.0.113.10")]);
    assert_eq!(
        text,
        "Server:\t\t10.0.0.53\nAddress:\t10.0.0.53#53\n\nNon-authoritative answer:\n\
         ext.prod.svc.cluster.local\tcanonical name = www.example.com.\n\
         www.example.com\tcanonical name = example.com.\n\
         Name:\texample.com\nAddress: 203.0.113.10\n"
    );
}

#[test]
fn a_large_headless_answer_falls_back_to_tcp() {
    let mut w = world(3);
    let c = w.dig_config("big.prod.svc.cluster.local", RecordType::A);
    let (m, text, queries) = w.dig_with(c);
    let m = m.unwrap();
    assert_eq!(m.answers.len(), 60, "every endpoint over TCP");
    assert!(!m.flags.truncated);
    assert_eq!(queries.len(), 2);
    let (_, udp) = queries[0].response.as_ref().unwrap();
    assert!(udp.flags.truncated && udp.answers.len() < 60, "UDP answer cut to 512 bytes");
    assert!(queries[0].response_size <= 512);
    assert!(queries[1].response_size > 512);
    assert!(text.contains(";; Truncated, retrying in TCP mode.\n"), "{text}");
    assert!(text.contains("(TCP)\n"), "{text}");
    let stats = w.server().core().stats();
    assert_eq!((stats.udp_queries, stats.tcp_queries, stats.truncated), (1, 1, 1));
    // getaddrinfo does the same by itself.
    let (result, queries, _) = w.lookup("big", Family::V4);
    assert_eq!(result.unwrap().addresses.len(), 60);
    let transports: Vec<String> = queries.iter().map(|q| q.transport.to_string()).collect();
    assert_eq!(transports, ["UDP", "TCP"]);
}

#[test]
fn forwarded_answers_are_cached_in_virtual_time() {
    let mut w = world(4);
    let first = w.dig("example.org", RecordType::A);
    assert_eq!((data(&first), first.answers[0].ttl), (vec!["203.0.113.11".to_string()], 300));
    w.sim.run_for(Duration::from_secs(10));
    let second = w.dig("example.org", RecordType::A);
    assert_eq!(data(&second), ["203.0.113.11"]);
    assert!(second.answers[0].ttl <= 20, "capped at 30 s, 10 s later: {}", second.answers[0].ttl);
    assert_eq!(w.upstream_queries(), ["example.org A"], "the second came from the cache");
    w.sim.run_for(Duration::from_secs(30));
    let _ = w.dig("example.org", RecordType::A);
    assert_eq!(w.upstream_queries().len(), 2, "expired after 30 s");
    let sources: Vec<Source> = w.server().core().log().iter().map(|e| e.source).collect();
    assert_eq!(sources, [Source::Forward, Source::Cache, Source::Forward]);
    let nx = w.dig("nothing.example.com", RecordType::A);
    assert_eq!(nx.rcode, Rcode::NxDomain);
    assert_eq!(nx.authority[0].name, "example.com");
}

#[test]
fn hosts_entries_answer_before_kubernetes_and_forward() {
    let mut w = world(5);
    let m = w.dig("legacy.corp", RecordType::A);
    assert_eq!((data(&m), m.answers[0].ttl), (vec!["10.1.2.3".to_string()], 3600));
    let ptr = w.dig("3.2.1.10.in-addr.arpa", RecordType::Ptr);
    assert_eq!(data(&ptr), ["legacy.corp."]);
    assert!(w.upstream_queries().is_empty());
}

#[test]
fn search_paths_from_a_pod_in_prod() {
    let mut w = world(6);
    let cases: [(&str, &[&str]); 5] = [
        ("web", &["web.prod.svc.cluster.local A"]),
        ("web.prod", &["web.prod.prod.svc.cluster.local A", "web.prod.svc.cluster.local A"]),
        (
            "web.prod.svc",
            &[
                "web.prod.svc.prod.svc.cluster.local A",
                "web.prod.svc.svc.cluster.local A",
                "web.prod.svc.cluster.local A",
            ],
        ),
        (
            // Four dots, fewer than ndots:5: the search list comes first even for the full name.
            "web.prod.svc.cluster.local",
            &[
                "web.prod.svc.cluster.local.prod.svc.cluster.local A",
                "web.prod.svc.cluster.local.svc.cluster.local A",
                "web.prod.svc.cluster.local.cluster.local A",
                "web.prod.svc.cluster.local A",
            ],
        ),
        ("web.prod.svc.cluster.local.", &["web.prod.svc.cluster.local A"]),
    ];
    for (name, expected) in cases {
        let (result, queries, _) = w.lookup(name, Family::V4);
        let answer = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(answer.addresses, [ip("10.96.0.20")], "{name}");
        assert_eq!(asked(&queries), expected, "{name}");
    }
    assert!(w.upstream_queries().is_empty());
}

#[test]
fn an_outside_name_walks_the_search_list_first() {
    let mut w = world(7);
    let (result, queries, _) = w.lookup("example.com", Family::Both);
    let answer = result.unwrap();
    assert_eq!(answer.name, "example.com");
    assert_eq!(answer.addresses, [ip("203.0.113.10"), ip("2001:db8::10")]);
    assert_eq!(
        asked(&queries),
        [
            "example.com.prod.svc.cluster.local A",
            "example.com.prod.svc.cluster.local AAAA",
            "example.com.svc.cluster.local A",
            "example.com.svc.cluster.local AAAA",
            "example.com.cluster.local A",
            "example.com.cluster.local AAAA",
            "example.com A",
            "example.com AAAA",
        ]
    );
    let rcodes: Vec<Rcode> = queries.iter().map(|q| q.response.as_ref().unwrap().1.rcode).collect();
    assert_eq!(rcodes[..6], [Rcode::NxDomain; 6], "the cluster zone says NXDOMAIN itself");
    assert_eq!(w.upstream_queries(), ["example.com A", "example.com AAAA"], "only the last leaves");
    // Unknown everywhere: every candidate is asked, and the error is glibc's.
    let (result, queries, text) = w.lookup("nowhere", Family::V4);
    assert_eq!(result, Err(LookupError::HostNotFound));
    assert_eq!(queries.len(), 4);
    assert_eq!(
        text,
        "Server:\t\t10.0.0.53\nAddress:\t10.0.0.53#53\n\n** server can't find nowhere: NXDOMAIN\n"
    );
}

#[test]
fn a_silent_server_costs_timeout_times_attempts() {
    let mut w = world(8);
    let mut conf = ResolvConf::cluster_first(ip("10.0.0.99"), "prod", "cluster.local");
    conf.attempts = 2;
    let id = w.stack(w.client).spawn(Lookup::new(conf, "web", Family::V4, 1));
    let start = w.sim.now();
    w.sim.kick(w.client);
    w.sim.run_for(Duration::from_secs(30));
    let l = w.stack(w.client).app::<Lookup>(id).unwrap();
    assert_eq!(l.result(), Some(&Err(LookupError::TryAgain)));
    assert_eq!(l.queries().len(), 2, "one name, two attempts: a timeout ends the walk");
    assert_eq!(l.finished_at().unwrap().saturating_since(start), Duration::from_secs(10));
}

#[test]
fn a_refusing_server_fails_fast() {
    let mut w = world(12);
    let (server, coredns) = (w.server, w.coredns);
    let now = w.sim.now();
    assert!(w.stack(coredns).stop(server, now), "the server stops (sockets closed)");
    w.sim.kick(coredns);
    let start = w.sim.now();
    let (result, queries, text) = w.lookup("web", Family::V4);
    assert_eq!(result, Err(LookupError::TryAgain));
    assert_eq!(queries.len(), 2, "both attempts refused, no waiting");
    assert!(queries.iter().all(|q| q.refused && q.response.is_none()));
    assert!(w.sim.now().saturating_since(start) < Duration::from_secs(1));
    assert!(text.ends_with("refused\n;; no servers could be reached\n"), "{text}");
    let c = w.dig_config("web.prod.svc.cluster.local", RecordType::A);
    let (m, text, queries) = w.dig_with(c);
    assert!(m.is_none());
    assert_eq!(queries.len(), 3, "dig's three tries");
    assert!(
        text.contains(";; communications error to 10.0.0.53#53: connection refused\n"),
        "{text}"
    );
}

#[test]
fn dig_text_is_exact() {
    let mut w = world(9);
    let c = w.dig_config("web.prod.svc.cluster.local", RecordType::A);
    let (_, text, _) = w.dig_with(c);
    let expected = "\
; <<>> kns dig <<>> @10.0.0.53 web.prod.svc.cluster.local. A
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 12058
;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 0
;; WARNING: recursion requested but not available

;; QUESTION SECTION:
;web.prod.svc.cluster.local.\t\tIN\tA

;; ANSWER SECTION:
web.prod.svc.cluster.local.\t30\tIN\tA\t10.96.0.20

;; Query time: 0 msec
;; SERVER: 10.0.0.53#53(10.0.0.53) (UDP)
;; MSG SIZE  rcvd: 60
";
    assert_eq!(text, expected);
    let mut c = w.dig_config("nope.prod.svc.cluster.local", RecordType::A);
    c.edns = Some(1232);
    let (_, text, _) = w.dig_with(c);
    assert!(text.contains("status: NXDOMAIN"), "{text}");
    assert!(
        text.contains(";; OPT PSEUDOSECTION:\n; EDNS: version: 0, flags:; udp: 1232\n"),
        "{text}"
    );
    assert!(
        text.contains(";; AUTHORITY SECTION:\ncluster.local.\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30\n"),
        "{text}"
    );
}

#[test]
fn the_server_follows_cluster_changes_after_the_negative_ttl() {
    let mut w = world(10);
    let mut c = cluster(COREFILE);
    assert_eq!(w.dig("api.prod.svc.cluster.local", RecordType::A).rcode, Rcode::NxDomain);
    let mut svc = c.service_by_name("prod", "web").unwrap().clone();
    svc.name = "api".into();
    svc.cluster_ip = Some(ip("10.96.0.30"));
    svc.id = kns_core::model::ServiceId::from_index(c.services.len());
    c.services.push(svc);
    w.server().update(&c);
    let cached = w.dig("api.prod.svc.cluster.local", RecordType::A);
    assert_eq!(cached.rcode, Rcode::NxDomain, "the NXDOMAIN is cached for the SOA minimum");
    w.sim.run_for(Duration::from_secs(31));
    let fresh = w.dig("api.prod.svc.cluster.local", RecordType::A);
    assert_eq!(data(&fresh), ["10.96.0.30"]);
    assert_eq!(w.server().core().zone().unwrap().serial(), 2);
    let soa = w.dig("cluster.local", RecordType::Soa);
    assert!(matches!(&soa.answers[0].data, RData::Soa(s) if s.serial == 2));
}

#[test]
fn corefile_errors_name_their_line() {
    let bad = "    .:53 {\n        errors\n        kubernetes cluster.local {\n           pods always\n        }\n    }\n";
    let e = DnsServer::new(&cluster(bad), DnsServerConfig::new(1)).unwrap_err();
    assert_eq!(e.line, 4);
    assert_eq!(e.to_string(), "Corefile:4: pods takes disabled, insecure or verified");
    let unknown = "    .:53 {\n        rewrite name a b\n    }\n";
    let e = DnsServer::new(&cluster(unknown), DnsServerConfig::new(1)).unwrap_err();
    assert_eq!(e.line, 2);
}

#[test]
fn lookups_are_deterministic() {
    let run = |seed| {
        let mut w = world(seed);
        let (_, queries, _) = w.lookup("example.com", Family::Both);
        let (_, big, _) = w.lookup("big", Family::V4);
        (queries, big, w.sim.now())
    };
    assert_eq!(run(11), run(11));
}
