//! The Service steps: ClusterIP, NodePort, Services without selectors, ExternalName and
//! headless Services; discovery by environment variables and by DNS; a Service that stays
//! while its pods come and go. They run on their own cluster with cluster DNS.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use kns_core::flow::Protocol;
use kns_core::manifest::load_str;
use kns_core::model::PodId;
use kns_sim::cluster::{ClusterNet, Source};
use kns_sim::dns::RecordType;
use kns_sim::stack::apps::{ProbeConfig, ProbeOutcome};

use super::cluster_steps::{build_with, connect};
use super::{Mismatch, Recorder, StepDef};
use crate::scenario::endpoints::answered_by;

/// The Service steps' cluster: CoreDNS in kube-system, `web` (two replicas serving on the
/// container port named `http`, 8080), a StatefulSet `db` behind a headless Service, a pod
/// `legacy` reached through a Service without a selector, and a `client`.
pub const MANIFEST: &str = include_str!("../../scenarios/tour/services.yaml");

/// The Ingress step's additions: an ingress-nginx controller behind a NodePort Service, a
/// second web application (`shop`), and one Ingress routing two hosts and two paths.
pub const INGRESS: &str = include_str!("../../scenarios/tour/ingress.yaml");

fn build(rec: &mut Recorder) -> Result<ClusterNet, Mismatch> {
    rec.command(
        "kns cluster -f services.yaml   # CoreDNS; Deployment web (2 replicas) behind Services web\n\
         # (NodePort) and web-lb (LoadBalancer); StatefulSet db behind a headless Service;\n\
         # legacy (Endpoints by hand); ExternalName search",
    );
    build_from(rec, MANIFEST)
}

/// Builds `text` (the Service manifest, maybe with additions).
fn build_from(rec: &mut Recorder, text: &str) -> Result<ClusterNet, Mismatch> {
    let cluster = load_str("services.yaml", text)
        .map_err(|e| Mismatch {
            expected: "the Service tour's manifest to load".into(),
            observed: e.to_string(),
        })?
        .cluster;
    build_with(rec, cluster)
}

fn pods_with(net: &ClusterNet, key: &str, value: &str) -> Vec<PodId> {
    let mut ids: Vec<PodId> = net
        .cluster()
        .pods
        .iter()
        .filter(|p| p.labels.get(key).map(String::as_str) == Some(value))
        .map(|p| p.id)
        .collect();
    ids.sort_by_key(|&id| net.cluster().pod_ref(id));
    ids
}

fn service_ip(net: &ClusterNet, name: &str) -> Result<IpAddr, Mismatch> {
    net.cluster().service_by_name("default", name).and_then(|s| s.cluster_ip).ok_or_else(|| {
        Mismatch {
            expected: format!("Service default/{name} with a cluster IP"),
            observed: "none".into(),
        }
    })
}

fn named(net: &ClusterNet, r: &str) -> Result<PodId, Mismatch> {
    net.cluster()
        .pod_by_ref(r)
        .map(|p| p.id)
        .ok_or_else(|| Mismatch { expected: format!("pod {r}"), observed: "no such pod".into() })
}

fn failed(what: &str) -> impl Fn(kns_sim::cluster::ClusterError) -> Mismatch + '_ {
    move |e| Mismatch { expected: what.to_string(), observed: e.to_string() }
}

/// `dig` from `source`, recorded; returns dig's text.
fn dig(
    rec: &mut Recorder,
    net: &mut ClusterNet,
    from: (&str, Source),
    name: &str,
    qtype: RecordType,
) -> Result<String, Mismatch> {
    rec.command(format!("kubectl exec {} -- dig {name} {qtype}", from.0));
    let (text, _) = net.dig(from.1, name, qtype).map_err(failed("dig to finish"))?;
    let answer: String = text
        .lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION"))
        .take_while(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    rec.observe(if answer.is_empty() { text.clone() } else { answer });
    Ok(text)
}

/// Opens `count` connections from `source` to `to` and returns who answered each.
fn spread(
    net: &mut ClusterNet,
    source: Source,
    to: SocketAddr,
    count: usize,
) -> Result<Vec<String>, Mismatch> {
    let mut out = Vec::new();
    for _ in 0..count {
        let r = net
            .probe(source, to, Protocol::Tcp, ProbeConfig::default())
            .map_err(failed("the probe to finish"))?;
        out.push(match &r.outcome {
            ProbeOutcome::Connected { reply: Some(r), .. } => r.clone(),
            o => o.to_string(),
        });
    }
    Ok(out)
}

pub(super) fn steps() -> Vec<StepDef> {
    vec![
        StepDef {
            id: "services",
            title: "Services: one stable address in front of changing pods",
            explanation: "\
A Service gives a set of pods (chosen by a label selector) one virtual IP from the
service range. No interface holds that address: kube-proxy on every node rewrites the
destination of each new connection to one ready pod (DNAT), translating the Service port
into the pod's targetPort, here the container port named `http`, and conntrack keeps the
connection on that pod. A NodePort Service also opens one port on every node's address
for clients outside the cluster. A Service without a selector forwards to the Endpoints
you write yourself. An ExternalName Service is only a DNS alias (a CNAME), and a headless
Service (`clusterIP: None`) has no virtual IP at all: DNS answers with the pods' own
addresses, and a StatefulSet's pods get stable names of their own.",
            run: services,
        },
        StepDef {
            id: "discovery",
            title: "Finding a Service: environment variables and DNS",
            explanation: "\
A pod finds Services in two ways. The kubelet writes Docker-link style variables
(WEB_SERVICE_HOST, WEB_SERVICE_PORT, ...) into each container for the Services of its
namespace that existed when the pod started, so order matters. Cluster DNS has no such
limit: every pod's resolv.conf points at the kube-dns Service and lists search domains
(<namespace>.svc.<domain>, svc.<domain>, <domain>) with ndots:5, so a short name is tried
with each suffix in turn until one answers: `web`, `web.default` and the full name
all reach the same Service.",
            run: discovery,
        },
        StepDef {
            id: "ingress",
            title: "Ingress: HTTP routing by host and path",
            explanation: "\
A Service works on addresses and ports; it knows nothing of HTTP. An Ingress describes
L7 routing: requests for a host name and a path go to a Service. The Ingress object does
nothing by itself: an ingress controller (here an NGINX-like one, reached from outside
through its NodePort Service) reads the Ingresses, accepts the HTTP connection, picks the
backend Service by the Host header and the path (Exact or Prefix), and opens its own
connection to it. One address can thus serve many sites and APIs, like a gateway for
api.<zone>.<domain>; a request that matches no rule gets 404 from the controller.",
            run: ingress,
        },
        StepDef {
            id: "service-stays",
            title: "Pods come and go, the Service stays",
            explanation: "\
When a backend pod restarts it comes back with a new IP. The endpoints controller notices,
replaces the old address in the Service's endpoints, and kube-proxy reprograms every node.
Clients never see the change: the Service's name and virtual IP stay the same, and new
connections only go to the addresses that exist now.",
            run: service_stays,
        },
    ]
}

fn services(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut net = build(rec)?;
    let client = named(&net, "default/client")?;
    let web_ip = service_ip(&net, "web")?;
    let webs = pods_with(&net, "app", "web");
    let web_ips: BTreeSet<String> = webs.iter().map(|&p| net.pod_ip(p).to_string()).collect();
    let node1 = net.nodes()[0].id;
    rec.command("# kube-proxy's service table on node-1: each frontend and its endpoints");
    let table = net.kube_proxy(node1).table_text();
    rec.observe(table.clone());
    rec.expect(
        web_ips.iter().all(|ip| table.contains(&format!("{ip}:8080"))),
        "web's frontend to list both pods on targetPort 8080",
        &table,
    )?;
    net.sim_mut().enable_trace();
    let first = connect(
        rec,
        &mut net,
        ("default/client", Source::Pod(client)),
        ("svc/web.default", web_ip),
        80,
    )?;
    rec.expect(
        answered_by(&first).is_some_and(|r| r.starts_with("web-")),
        "a web pod to answer on the Service's IP",
        &first,
    )?;
    let client_node = net.cluster().pod(client).node;
    let decisions: Vec<String> =
        net.kube_proxy(client_node).decisions().into_iter().map(|(_, l)| l).collect();
    rec.observe(format!("kube-proxy on node-2: {}", decisions.join("\n")));
    rec.expect(
        decisions.iter().any(|d| web_ips.iter().any(|ip| d.contains(&format!("{ip}:8080")))),
        "kube-proxy to DNAT port 80 to a pod's port 8080",
        decisions.join("; "),
    )?;
    let answers = spread(&mut net, Source::Pod(client), SocketAddr::new(web_ip, 80), 12)?;
    let distinct: BTreeSet<&String> = answers.iter().collect();
    rec.command("for i in $(seq 12); do kubectl exec client -- curl -s web; done");
    rec.observe(format!("answered by: {}", answers.join(" ")));
    rec.expect(
        distinct.len() == 2,
        "new connections to spread over both web pods",
        answers.join(" "),
    )?;

    let node2 = &net.nodes()[1];
    let node_port = SocketAddr::new(node2.ip, 30080);
    let outside = connect(
        rec,
        &mut net,
        ("internet", Source::Internet),
        (&node_port.ip().to_string(), node_port.ip()),
        30080,
    )?;
    rec.expect(
        answered_by(&outside).is_some_and(|r| r.starts_with("web-")),
        "a host outside the cluster to reach web through node-2's NodePort",
        &outside,
    )?;

    let lb = net
        .cluster()
        .service_by_name("default", "web-lb")
        .and_then(|s| s.load_balancer_ips.first().copied())
        .ok_or_else(|| Mismatch {
            expected: "web-lb to get an external IP from the pool".into(),
            observed: "pending".into(),
        })?;
    rec.command("kubectl get svc web-lb   # EXTERNAL-IP from the load-balancer pool");
    let leader = net.lb_leader(lb).map(|n| net.cluster().node(n).name.clone());
    rec.observe(format!(
        "web-lb  LoadBalancer  external IP {lb}, announced by {}",
        leader.as_deref().unwrap_or("no node")
    ));
    rec.expect(leader.is_some(), "exactly one node to answer ARP for the external IP", lb)?;
    let via_lb = connect(rec, &mut net, ("internet", Source::Internet), (&lb.to_string(), lb), 80)?;
    rec.expect(
        answered_by(&via_lb).is_some_and(|r| r.starts_with("web-")),
        "a host outside the cluster to reach web through the load balancer's address",
        &via_lb,
    )?;

    let legacy_ip = service_ip(&net, "legacy")?;
    let legacy = connect(
        rec,
        &mut net,
        ("default/client", Source::Pod(client)),
        ("svc/legacy.default", legacy_ip),
        80,
    )?;
    rec.expect(
        answered_by(&legacy) == Some("legacy"),
        "the Service without a selector to forward to its hand-written Endpoints",
        &legacy,
    )?;

    let from = ("client", Source::Pod(client));
    let cname = dig(rec, &mut net, from, "search.default.svc.cluster.local", RecordType::Cname)?;
    rec.expect(
        cname.contains("CNAME") && cname.contains("www.example.com"),
        "the ExternalName Service to be a CNAME to www.example.com",
        &cname,
    )?;
    let aliased = net.kube_proxy(node1).table_text().contains("default/search");
    rec.expect(
        !aliased,
        "kube-proxy to have no rule for the ExternalName Service",
        "a rule for default/search",
    )?;

    let headless = dig(rec, &mut net, from, "db.default.svc.cluster.local", RecordType::A)?;
    let dbs = pods_with(&net, "app", "db");
    rec.expect(
        dbs.iter().all(|&p| headless.contains(&net.pod_ip(p).to_string())),
        "the headless Service to answer with every db pod's own IP",
        &headless,
    )?;
    let db0 = dig(rec, &mut net, from, "db-0.db.default.svc.cluster.local", RecordType::A)?;
    let db0_ip = net.pod_ip(named(&net, "default/db-0")?).to_string();
    rec.expect(db0.contains(&db0_ip), "the StatefulSet pod db-0 to have a name of its own", &db0)?;
    Ok(())
}

fn discovery(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut net = build(rec)?;
    let client = named(&net, "default/client")?;
    let web_ip = service_ip(&net, "web")?;
    rec.command("kubectl exec client -- env | grep WEB_");
    let env = kns_core::discovery::service_env(net.cluster(), client);
    let web_env: Vec<String> = env
        .iter()
        .filter(|(k, _)| k.starts_with("WEB_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    rec.observe(web_env.join("\n"));
    rec.expect(
        env.get("WEB_SERVICE_HOST") == Some(&web_ip.to_string())
            && env.get("WEB_SERVICE_PORT").map(String::as_str) == Some("80"),
        "WEB_SERVICE_HOST and WEB_SERVICE_PORT to name the Service",
        web_env.join(" "),
    )?;
    rec.command("kubectl exec client -- cat /etc/resolv.conf");
    let conf = net.resolv_conf(Source::Pod(client)).map_err(failed("a resolv.conf"))?;
    let text = conf.render();
    rec.observe(text.clone());
    rec.expect(
        text.contains("search default.svc.cluster.local svc.cluster.local cluster.local")
            && text.contains("ndots:5"),
        "the search list and ndots:5",
        &text,
    )?;
    for name in ["web", "web.default", "web.default.svc.cluster.local"] {
        rec.command(format!("kubectl exec client -- nslookup {name}"));
        let lookup =
            net.lookup(Source::Pod(client), name).map_err(failed("the lookup to finish"))?;
        let tried: Vec<String> = lookup
            .queries
            .iter()
            .filter_map(|q| {
                let question = q.query.question()?;
                let rcode = q
                    .response
                    .as_ref()
                    .map_or("no answer".to_string(), |(_, m)| m.rcode.to_string());
                Some(format!("asked {} A: {rcode}", kns_sim::dns::message::fqdn(&question.name)))
            })
            .collect();
        rec.observe(tried.join("\n"));
        let got = lookup.result.as_ref().ok().and_then(|a| a.addresses.first().copied());
        rec.expect(
            got == Some(web_ip),
            "the name to resolve to web's cluster IP",
            format!("{got:?}"),
        )?;
    }
    Ok(())
}

fn service_stays(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut net = build(rec)?;
    let client = named(&net, "default/client")?;
    let web_ip = service_ip(&net, "web")?;
    let webs = pods_with(&net, "app", "web");
    let victim = webs[0];
    let old = net.pod_ip(victim);
    let name = net.cluster().pod_ref(victim);
    rec.command(format!("kubectl delete pod {name}   # the ReplicaSet starts it again"));
    let new = net.restart_pod(victim).map_err(failed("the pod to restart"))?;
    rec.observe(format!("{name}: {old} -> {new}"));
    rec.expect(new != old, "the restarted pod to have a new IP", new)?;
    rec.command("# kube-proxy's service table on node-1");
    let table = net.kube_proxy(net.nodes()[0].id).table_text();
    rec.observe(table.clone());
    rec.expect(
        table.contains(&format!("{new}:8080")) && !table.contains(&format!("{old}:8080")),
        "the endpoints to hold the new address and not the old one",
        &table,
    )?;
    let still = service_ip(&net, "web")?;
    rec.expect(still == web_ip, "the Service to keep its IP", still)?;
    let answers = spread(&mut net, Source::Pod(client), SocketAddr::new(web_ip, 80), 12)?;
    rec.command("for i in $(seq 12); do kubectl exec client -- curl -s web; done");
    rec.observe(format!("answered by: {}", answers.join(" ")));
    let all_web = answers.iter().all(|a| a.starts_with("web-"));
    let distinct: BTreeSet<&String> = answers.iter().collect();
    rec.expect(
        all_web && distinct.len() == 2,
        "both web pods, old and restarted, to keep answering",
        answers.join(" "),
    )?;
    Ok(())
}

/// One HTTP GET from `source` with an optional Host header: (status, body), or curl's error.
fn http_get(
    net: &mut ClusterNet,
    source: Source,
    url: &str,
    host: Option<&str>,
) -> Result<Result<(u16, String), String>, Mismatch> {
    let ns = net.source_ns(source).map_err(failed("a source namespace"))?;
    let got =
        crate::scenario::endpoints::http_get(net, ns, url, host).map_err(failed("curl to run"))?;
    let got =
        got.ok_or_else(|| Mismatch { expected: "curl to finish".into(), observed: url.into() })?;
    Ok(got.map(|(status, body)| (status, body.trim().to_string())))
}

fn ingress(rec: &mut Recorder) -> Result<(), Mismatch> {
    rec.command(
        "kns cluster -f services.yaml -f ingress.yaml   # + an ingress-nginx controller\n\
         # (NodePort 30090), a Deployment shop, and the Ingress `front`",
    );
    let text = format!("{MANIFEST}{INGRESS}");
    let mut net = build_from(rec, &text)?;
    rec.command("kubectl describe ingress front   # its rules");
    let rules: Vec<String> = net
        .cluster()
        .ingresses
        .iter()
        .flat_map(|i| &i.rules)
        .flat_map(|r| {
            let host = r.host.clone().unwrap_or_else(|| "*".into());
            r.paths.iter().map(move |p| {
                format!(
                    "{host:<22} {:<6} ({:?}) -> {}:{}",
                    p.path, p.path_type, p.backend.service, p.backend.port
                )
            })
        })
        .collect();
    rec.observe(rules.join("\n"));
    rec.expect(rules.len() == 3, "three routes in the Ingress", rules.len())?;
    let node = net.nodes()[0].ip;
    let cases: [(&str, &str, u16, &str); 6] = [
        ("www.example.test", "/", 200, "web-"),
        ("www.example.test", "/shop/basket", 200, "shop-"),
        ("www.example.test", "/shopping", 200, "web-"),
        ("api.prod.example.test", "/cart", 200, "shop-"),
        ("api.prod.example.test", "/cart/1", 404, ""),
        ("unknown.example.test", "/", 404, ""),
    ];
    for (host, path, want, body) in cases {
        let url = format!("http://{node}:30090{path}");
        rec.command(format!("curl -H 'Host: {host}' {url}   # from the internet"));
        let got = http_get(&mut net, Source::Internet, &url, Some(host))?;
        let shown = match &got {
            Ok((status, text)) => format!("HTTP {status}: {}", text.lines().next().unwrap_or("")),
            Err(e) => e.clone(),
        };
        rec.observe(shown.clone());
        let ok = matches!(&got, Ok((s, t)) if *s == want && t.starts_with(body));
        let what = if want == 200 {
            format!("{host}{path} to be served by a {}pod", body)
        } else {
            format!("{host}{path} to match no rule: 404 from the controller")
        };
        rec.expect(ok, &what, shown)?;
    }
    Ok(())
}
