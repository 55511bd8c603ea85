//! The cluster steps: the Kubernetes network model, SNAT, CNI, NetworkPolicy and restarts, on
//! a small two-node cluster built from a manifest.

use std::net::{IpAddr, SocketAddr};

use kns_core::flow::Protocol;
use kns_core::manifest::load_str;
use kns_core::model::{Cluster, PodId};
use kns_sim::cluster::{ClusterNet, ClusterOptions, Source, outcome_word};
use kns_sim::stack::SmolStack;
use kns_sim::stack::apps::{AgnhostServer, ProbeOutcome};

use crate::scenario::endpoints::{self, answered_by};

use super::linux_steps::SEED;
use super::{Mismatch, Recorder, StepDef};

/// The tour's cluster: two nodes, `web` (two containers) and `db` on node-1, `client` on
/// node-2, and `tester` in the namespace `ops` on node-2 (shared with the scenario library).
pub const MANIFEST: &str = include_str!("../../scenarios/tour/cluster.yaml");

fn model(extra: &str) -> Result<Cluster, Mismatch> {
    let text = format!("{MANIFEST}{extra}");
    load_str("tour.yaml", &text).map(|l| l.cluster).map_err(|e| Mismatch {
        expected: "the tour's manifest to load".into(),
        observed: e.to_string(),
    })
}

pub(super) fn build_with(rec: &mut Recorder, cluster: Cluster) -> Result<ClusterNet, Mismatch> {
    let opts = ClusterOptions { seed: SEED, ..ClusterOptions::default() };
    ClusterNet::build(cluster, opts)
        .map_err(|e| Mismatch { expected: "the cluster to build".into(), observed: e.to_string() })
        .inspect(|net| {
            for w in net.warnings() {
                rec.observe(format!("warning: {w}"));
            }
        })
}

fn build(rec: &mut Recorder) -> Result<ClusterNet, Mismatch> {
    rec.command(
        "kns cluster -f tour.yaml   # 2 nodes; pods web, db (node-1), client, ops/tester (node-2)",
    );
    build_with(rec, model("")?)
}

fn pod(net: &ClusterNet, r: &str) -> Result<PodId, Mismatch> {
    endpoints::pod(net.cluster(), r).map_err(|e| Mismatch {
        expected: format!("pod {r} in the manifest"),
        observed: e.to_string(),
    })
}

/// Opens one TCP connection and records it like `kns probe`.
pub(super) fn connect(
    rec: &mut Recorder,
    net: &mut ClusterNet,
    from: (&str, Source),
    to: (&str, IpAddr),
    port: u16,
) -> Result<ProbeOutcome, Mismatch> {
    let (from_name, source) = from;
    let (to_name, ip) = to;
    rec.command(format!("kns probe --from {from_name} --to {to_name} --port {port}/TCP"));
    let o =
        endpoints::probe(net, source, SocketAddr::new(ip, port), Protocol::Tcp).map_err(|e| {
            Mismatch { expected: "the probe to finish".into(), observed: e.to_string() }
        })?;
    let reply = match &o {
        ProbeOutcome::Connected { reply: Some(r), .. } => format!(", answered by {r:?}"),
        _ => String::new(),
    };
    rec.observe(format!("{from_name} -> {to_name} ({ip}):{port}: {}{reply}", outcome_word(&o)));
    Ok(o)
}

/// Source addresses of TCP SYNs to `port` that arrived in namespace `ns` (from the trace).
fn syn_sources(net: &ClusterNet, ns: &str, port: u16) -> Vec<String> {
    let mut out: Vec<String> = net
        .sim()
        .trace()
        .iter()
        .filter(|e| e.ns == ns)
        .map(|e| e.to_string())
        .filter(|t| t.contains(" rx: TCP ") && t.contains(&format!(":{port} [S]")))
        .filter_map(|t| {
            t.split(" rx: TCP ").nth(1).and_then(|r| r.split(':').next()).map(str::to_string)
        })
        .collect();
    out.dedup();
    out
}

pub(super) fn steps() -> Vec<StepDef> {
    vec![
        StepDef {
            id: "k8s-model",
            title: "The Kubernetes network model",
            explanation: "\
Kubernetes asks the network for a flat address space: every pod gets its own IP, every
pod can reach every other pod on any node with that IP, and nobody rewrites addresses on
the way, so the receiver sees the sender's real pod IP. Agents on a node (the kubelet)
reach the node's pods too. The containers of one pod share one network namespace: one
IP, one port space, and they reach each other on localhost (think of a pod as a small VM
and its containers as processes).",
            run: k8s_model,
        },
        StepDef {
            id: "snat-outside",
            title: "Non-routable pod IPs and SNAT to the outside",
            explanation: "\
Pod IPs usually come from a private range that only the cluster's own routes know. When a
pod talks to the internet, the node rewrites the source to its own address (SNAT, or
masquerading) so that the answer can find its way back. The reverse does not work: a
host outside cannot open a connection to a pod IP, because nothing out there routes it.",
            run: snat_outside,
        },
        StepDef {
            id: "cni",
            title: "CNI: who wires a pod",
            explanation: "\
The container runtime does not wire pods itself: it reads the node's /etc/cni/net.d, takes
the first configuration file in lexical order, and runs the plugins it names for each pod.
A network plugin (here `bridge`) creates the interfaces: a veth into the pod, its host end
on the node's cni0 bridge. An IPAM plugin (here `host-local`) only hands out addresses
from the node's range and remembers them in files. The runtime keeps each ADD's result.",
            run: cni,
        },
        StepDef {
            id: "network-policy",
            title: "NetworkPolicy",
            explanation: "\
Without policies every pod accepts traffic from everyone. A NetworkPolicy selects pods by
label; a selected pod is isolated for the directions the policy names, and then only what
some rule of some policy allows gets through: rules add up, never subtract. In `from`,
one entry holding both a namespaceSelector and a podSelector means both must match (AND);
two entries mean either will do (OR). ipBlock admits addresses outside the cluster. Egress
rules limit what a pod may open; replies to allowed connections need no rule. Policies
apply to new connections, and only a network plugin that enforces them gives them effect.",
            run: network_policy,
        },
        StepDef {
            id: "pod-restart",
            title: "A restarted pod gets a new IP",
            explanation: "\
A pod's IP lives as long as its sandbox. When the pod is restarted, the runtime runs CNI
DEL then ADD, IPAM hands out the next free address, and the old one leads nowhere. This is
why clients should not hold on to pod IPs (Services give a stable name and address).",
            run: pod_restart,
        },
    ]
}

fn k8s_model(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut net = build(rec)?;
    rec.command("kubectl get pods -A -o wide");
    let pods = net.show_pods();
    rec.observe(pods.clone());
    let ips: std::collections::BTreeSet<IpAddr> = net.cluster().pods.iter().map(|p| p.ip).collect();
    rec.expect(ips.len() == net.cluster().pods.len(), "one distinct IP per pod", &pods)?;
    let (web, db, client) =
        (pod(&net, "default/web")?, pod(&net, "default/db")?, pod(&net, "default/client")?);
    let web_ip = net.pod_ip(web);
    rec.command("kubectl exec web -- ip addr show dev eth0");
    let addr = net.ip_in("default.web", "addr show dev eth0");
    rec.observe(addr.clone());
    rec.expect(
        addr.contains(&format!("inet {web_ip}/")),
        "web's eth0 to hold the pod IP that kubectl shows",
        &addr,
    )?;
    rec.command(format!("kubectl exec client -- ping -c 2 {web_ip}"));
    let client_ns = net.pod_ns(client).ok_or_else(|| Mismatch {
        expected: "client running".into(),
        observed: "not running".into(),
    })?;
    let ping = net
        .ping(client_ns, web_ip, 2)
        .map_err(|e| Mismatch { expected: "ping to run".into(), observed: e.to_string() })?;
    rec.observe(ping.clone());
    rec.expect(ping.contains(" 2 received"), "client (node-2) to ping web (node-1)", &ping)?;
    net.sim_mut().enable_trace();
    let same =
        connect(rec, &mut net, ("default/db", Source::Pod(db)), ("default/web", web_ip), 80)?;
    rec.expect(answered_by(&same) == Some("web"), "a pod on the same node to reach web", &same)?;
    let across = connect(
        rec,
        &mut net,
        ("default/client", Source::Pod(client)),
        ("default/web", web_ip),
        80,
    )?;
    rec.expect(
        answered_by(&across) == Some("web"),
        "a pod on the other node to reach web",
        &across,
    )?;
    let seen = syn_sources(&net, "default.web", 80);
    let want = vec![net.pod_ip(db).to_string(), net.pod_ip(client).to_string()];
    rec.observe(format!("web saw connections from: {}", seen.join(", ")));
    rec.expect(seen == want, "web to see each sender's own pod IP (no NAT)", seen.join(", "))?;
    let node1 = net.cluster().pod(web).node;
    let kubelet =
        connect(rec, &mut net, ("node-1", Source::Node(node1)), ("default/web", web_ip), 80)?;
    rec.expect(kubelet.is_connected(), "the node (kubelet) to reach its pod", &kubelet)?;
    let lo: IpAddr = [127, 0, 0, 1].into();
    let local = connect(rec, &mut net, ("default/web", Source::Pod(web)), ("localhost", lo), 9090)?;
    rec.expect(
        answered_by(&local) == Some("web"),
        "the nginx container to reach its sidecar on localhost:9090",
        &local,
    )?;
    Ok(())
}

fn snat_outside(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut net = build(rec)?;
    let internet = net.outside().internet;
    let host = net.outside().host;
    rec.command(format!("# on the internet host {host}: a web server answering \"example.com\""));
    let stack = net.sim_mut().stack_mut::<SmolStack>(internet).ok_or_else(|| Mismatch {
        expected: "the internet host to have a socket stack".into(),
        observed: "none".into(),
    })?;
    stack.spawn(AgnhostServer::for_pod("example.com", [(80, Protocol::Tcp)]));
    net.sim_mut().kick(internet);
    net.sim_mut().enable_trace();
    let client = pod(&net, "default/client")?;
    let out =
        connect(rec, &mut net, ("default/client", Source::Pod(client)), ("internet", host), 80)?;
    rec.expect(answered_by(&out) == Some("example.com"), "the pod to reach the internet", &out)?;
    let node = net.cluster().pod(client).node;
    let node_ip = net.node(node).ip.to_string();
    let seen = syn_sources(&net, "internet", 80);
    rec.observe(format!(
        "the internet host saw the connection from {} (client's pod IP is {}, node-2's IP is {node_ip})",
        seen.join(", "),
        net.pod_ip(client)
    ));
    rec.expect(
        seen == vec![node_ip.clone()],
        "the internet to see the node's IP (SNAT)",
        seen.join(", "),
    )?;
    let web = pod(&net, "default/web")?;
    let web_ip = net.pod_ip(web);
    let inbound =
        connect(rec, &mut net, ("internet", Source::Internet), ("default/web", web_ip), 80)?;
    rec.expect(!inbound.is_connected(), "the internet not to reach a pod IP", &inbound)?;
    Ok(())
}

fn cni(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut net = build(rec)?;
    let web = pod(&net, "default/web")?;
    let node = net.cluster().pod(web).node;
    rec.command("ls /opt/cni/bin   # on node-1: the plugin binaries the runtime may run");
    let registry = kns_core::cni::PluginRegistry::reference();
    let mut plugins = registry.types();
    plugins.sort_unstable();
    rec.observe(plugins.join("\n"));
    rec.expect(
        ["bridge", "host-local", "loopback"].iter().all(|p| plugins.contains(p)),
        "the bridge, host-local and loopback plugins installed",
        plugins.join(", "),
    )?;
    rec.command("ls /etc/cni/net.d   # on node-1");
    let files = net.node_files(node).list("/etc/cni/net.d");
    rec.observe(files.join("\n"));
    rec.expect(!files.is_empty(), "a configuration in net.d", "an empty directory")?;
    let first = format!("/etc/cni/net.d/{}", files[0]);
    rec.command(format!("cat {first}"));
    let conf = net.node_files(node).read(&first).map(str::to_string).unwrap_or_default();
    rec.observe(conf.clone());
    rec.expect(
        conf.contains("\"type\": \"bridge\"") && conf.contains("\"type\": \"host-local\""),
        "a bridge network plugin with host-local IPAM",
        &conf,
    )?;
    // A later file in lexical order is ignored; the pods keep being wired by the first.
    let later = "/etc/cni/net.d/99-ignored.conflist";
    let broken = r#"{"cniVersion":"1.0.0","name":"ignored","plugins":[{"type":"no-such-plugin"}]}"#;
    rec.command(format!("cat > {later} <<EOF\n{broken}\nEOF"));
    net.node_files(node).write(later, broken);
    rec.command("crictl rmp web && crictl runp web   # restart the sandbox: CNI DEL, then ADD");
    let ip = net.restart_pod(web).map_err(|e| Mismatch {
        expected: "the first file (the bridge network) to wire the pod again".into(),
        observed: e.to_string(),
    })?;
    rec.observe(format!("web is wired again, with {ip}: the later file was never read"));
    let host_if = net.pod(web).and_then(|p| p.host_if.clone()).unwrap_or_default();
    let node_name = net.cluster().node(node).name.clone();
    rec.command(format!("ip -n {node_name} link"));
    let ports = net.ip_in(&node_name, "link");
    rec.observe(ports.clone());
    rec.expect(
        !host_if.is_empty()
            && ports
                .lines()
                .any(|l| l.contains(&format!("{host_if}@")) && l.contains("master cni0")),
        "the bridge plugin to plug the pod's host veth into cni0",
        &ports,
    )?;
    let reservation = format!("/var/lib/cni/networks/kns/{ip}");
    rec.command("ls /var/lib/cni/networks/kns/   # host-local's reservations");
    let held = net.node_files(node).list("/var/lib/cni/networks/kns");
    rec.observe(held.join("\n"));
    rec.expect(
        net.node_files(node).read(&reservation).is_ok(),
        "host-local to record the address it handed out",
        held.join(", "),
    )?;
    rec.command("ls /var/lib/cni/results/   # ADD results the runtime cached");
    let results = net.node_files(node).list("/var/lib/cni/results");
    rec.observe(results.join("\n"));
    let cached = results.iter().find(|f| f.starts_with("kns-")).cloned().unwrap_or_default();
    rec.command(format!("jq .result /var/lib/cni/results/{cached}"));
    let body = net
        .node_files(node)
        .read(&format!("/var/lib/cni/results/{cached}"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .map(|v| serde_json::to_string_pretty(&v["result"]).unwrap_or_default())
        .unwrap_or_default();
    rec.observe(body.clone());
    rec.expect(
        body.contains("\"interfaces\"") && body.contains("\"ips\""),
        "the result to list the bridge plugin's interfaces and host-local's addresses",
        &body,
    )?;
    // The other way round: a file that sorts first takes over.
    let first_now = "/etc/cni/net.d/00-first.conflist";
    rec.command(format!("cat > {first_now} <<EOF\n{broken}\nEOF"));
    net.node_files(node).write(first_now, broken);
    rec.command("crictl rmp web && crictl runp web");
    let err = net.restart_pod(web);
    let observed = match &err {
        Ok(ip) => format!("wired with {ip}"),
        Err(e) => e.to_string(),
    };
    rec.observe(observed.clone());
    rec.expect(
        err.is_err(),
        "00-first.conflist to win and its missing plugin to fail ADD",
        observed,
    )?;
    Ok(())
}

pub(crate) const DENY_ALL_WEB: &str = concat!(
    "
",
    include_str!("../../scenarios/tour/web-deny-all.yaml")
);

pub(crate) const WEB_FROM_CLIENT: &str = concat!(
    "
",
    include_str!("../../scenarios/tour/web-from-client.yaml")
);

pub(crate) const WEB_FROM_DB: &str = concat!(
    "
",
    include_str!("../../scenarios/tour/web-from-db.yaml")
);

pub(crate) const AND_FROM: &str = concat!(
    "
",
    include_str!("../../scenarios/tour/web-and.yaml")
);

pub(crate) const OR_FROM: &str = concat!(
    "
",
    include_str!("../../scenarios/tour/web-or.yaml")
);

pub(crate) const IP_BLOCK: &str = concat!(
    "
",
    include_str!("../../scenarios/tour/web-from-outside.yaml")
);

pub(crate) const DB_NO_EGRESS: &str = concat!(
    "
",
    include_str!("../../scenarios/tour/db-no-egress.yaml")
);

/// Probes the four pods' sources to web:80 and returns who got through, in a fixed order.
fn who_reaches_web(rec: &mut Recorder, net: &mut ClusterNet) -> Result<Vec<String>, Mismatch> {
    let web = pod(net, "default/web")?;
    let ip = net.pod_ip(web);
    let mut allowed = Vec::new();
    for from in ["default/client", "default/db", "ops/tester"] {
        let id = pod(net, from)?;
        let o = connect(rec, net, (from, Source::Pod(id)), ("default/web", ip), 80)?;
        if o.is_connected() {
            allowed.push(from.to_string());
        }
    }
    Ok(allowed)
}

/// Applies `yaml` as the cluster's whole set of policies.
fn apply(rec: &mut Recorder, net: &mut ClusterNet, yaml: &str) -> Result<(), Mismatch> {
    if yaml.is_empty() {
        rec.command("kubectl delete networkpolicy --all");
    } else {
        rec.command(format!("kubectl apply -f - <<EOF{}\nEOF", yaml.trim_end_matches('\n')));
    }
    let policies = model(yaml)?.policies;
    net.set_policies(policies);
    Ok(())
}

fn expect_reach(
    rec: &mut Recorder,
    net: &mut ClusterNet,
    want: &[&str],
    what: &str,
) -> Result<(), Mismatch> {
    let got = who_reaches_web(rec, net)?;
    rec.expect(
        got == want,
        &format!("{what}: web reached by [{}]", want.join(", ")),
        format!("[{}]", got.join(", ")),
    )
}

fn network_policy(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut net = build(rec)?;
    expect_reach(
        rec,
        &mut net,
        &["default/client", "default/db", "ops/tester"],
        "no policy, allow all",
    )?;
    apply(rec, &mut net, DENY_ALL_WEB)?;
    expect_reach(rec, &mut net, &[], "web selected with no rule: isolated")?;
    let db = pod(&net, "default/db")?;
    let client = pod(&net, "default/client")?;
    let cip = net.pod_ip(client);
    let other =
        connect(rec, &mut net, ("default/db", Source::Pod(db)), ("default/client", cip), 8080)?;
    rec.expect(other.is_connected(), "pods no policy selects to stay open", &other)?;
    let node2 = net.cluster().pod(client).node;
    let wip = net.pod_ip(pod(&net, "default/web")?);
    let n2 = connect(rec, &mut net, ("node-2", Source::Node(node2)), ("default/web", wip), 80)?;
    rec.expect(!n2.is_connected(), "another node's agents to be shut out too", &n2)?;
    apply(rec, &mut net, &format!("{WEB_FROM_CLIENT}{WEB_FROM_DB}"))?;
    expect_reach(rec, &mut net, &["default/client", "default/db"], "two policies: the union")?;
    apply(rec, &mut net, AND_FROM)?;
    expect_reach(rec, &mut net, &["ops/tester"], "one entry with both selectors (AND)")?;
    apply(rec, &mut net, OR_FROM)?;
    expect_reach(rec, &mut net, &["default/db", "ops/tester"], "two entries (OR)")?;
    // ipBlock: the outside world, but not pods.
    apply(rec, &mut net, IP_BLOCK)?;
    let web = pod(&net, "default/web")?;
    let wip = net.pod_ip(web);
    let outside = connect(rec, &mut net, ("internet", Source::Internet), ("default/web", wip), 80)?;
    rec.expect(
        !outside.is_connected(),
        "the internet still not to route to a pod IP, whatever the policy",
        &outside,
    )?;
    let from_node =
        connect(rec, &mut net, ("node-2", Source::Node(node2)), ("default/web", wip), 80)?;
    rec.expect(
        from_node.is_connected(),
        "node-2 (it sends from its cni0 address 10.244.1.1, which is no pod's) to match the ipBlock",
        &from_node,
    )?;
    expect_reach(
        rec,
        &mut net,
        &[],
        "client and tester (10.244.1.2-3) carved out by except, db outside the block",
    )?;
    // Egress, and replies.
    apply(rec, &mut net, &format!("{DB_NO_EGRESS}{WEB_FROM_DB}"))?;
    let out = connect(rec, &mut net, ("default/db", Source::Pod(db)), ("default/web", wip), 80)?;
    rec.expect(!out.is_connected(), "db's egress isolation to stop it opening connections", &out)?;
    let dip = net.pod_ip(db);
    let into_db =
        connect(rec, &mut net, ("default/client", Source::Pod(client)), ("default/db", dip), 5432)?;
    rec.expect(
        answered_by(&into_db) == Some("db"),
        "db to answer a connection it accepted although it may open none (replies need no egress rule)",
        &into_db,
    )?;
    // An established connection survives a policy change.
    apply(rec, &mut net, "")?;
    established_survives(rec, &mut net)?;
    // A plugin without enforcement.
    rec.command("# the same policies on a network plugin that does not enforce NetworkPolicy");
    let mut open_model = model(DENY_ALL_WEB)?;
    open_model.config.enforce_policy = false;
    rec.command(format!("kubectl apply -f - <<EOF{}\nEOF", DENY_ALL_WEB.trim_end_matches('\n')));
    let mut open = build_with(rec, open_model)?;
    rec.expect(
        open.warnings().iter().any(|w| w.contains("does not enforce")),
        "a warning that nothing enforces the policies",
        open.warnings().join("; "),
    )?;
    expect_reach(
        rec,
        &mut open,
        &["default/client", "default/db", "ops/tester"],
        "policies without an enforcing plugin",
    )?;
    Ok(())
}

/// A TCP conversation that starts before a deny-all policy and goes on after it.
fn established_survives(rec: &mut Recorder, net: &mut ClusterNet) -> Result<(), Mismatch> {
    let client = pod(net, "default/client")?;
    let web = pod(net, "default/web")?;
    let wip = net.pod_ip(web);
    rec.command("# default/client opens a connection to web:80 and keeps it alive with one HTTP request a second");
    let ns = net.pod_ns(client).ok_or_else(|| Mismatch {
        expected: "client running".into(),
        observed: "not running".into(),
    })?;
    let id = {
        let stack = net.sim_mut().stack_mut::<SmolStack>(ns).ok_or_else(|| Mismatch {
            expected: "a socket stack in client".into(),
            observed: "none".into(),
        })?;
        stack.spawn(chatter::Chatter::new(SocketAddr::new(wip, 80), 6))
    };
    net.sim_mut().kick(ns);
    net.sim_mut().run_for(std::time::Duration::from_millis(2500));
    let got = |net: &mut ClusterNet| {
        net.sim_mut()
            .stack_mut::<SmolStack>(ns)
            .and_then(|s| s.app::<chatter::Chatter>(id).map(|c| (c.answers(), c.failed())))
            .unwrap_or((0, true))
    };
    let (before, _) = got(net);
    rec.observe(format!("after 2.5s: {before} HTTP answers on the one connection"));
    rec.expect(before > 0, "the conversation to be under way", before)?;
    apply(rec, net, DENY_ALL_WEB)?;
    let new = connect(rec, net, ("default/client", Source::Pod(client)), ("default/web", wip), 80)?;
    rec.expect(!new.is_connected(), "a new connection to obey the deny-all policy", &new)?;
    net.sim_mut().run_for(std::time::Duration::from_secs(8));
    let (after, failed) = got(net);
    rec.observe(format!(
        "at the end: {after} HTTP answers on the same connection, failed: {failed}"
    ));
    rec.expect(
        after == 6 && !failed,
        "the established connection to carry on to the end (6 answers)",
        after,
    )?;
    Ok(())
}

fn pod_restart(rec: &mut Recorder) -> Result<(), Mismatch> {
    let mut net = build(rec)?;
    let (web, client) = (pod(&net, "default/web")?, pod(&net, "default/client")?);
    let old = net.pod_ip(web);
    rec.observe(format!("default/web has {old}"));
    rec.command("kubectl delete pod web && kubectl apply -f tour.yaml   # a new sandbox for web");
    let new = net
        .restart_pod(web)
        .map_err(|e| Mismatch { expected: "the pod to restart".into(), observed: e.to_string() })?;
    rec.command("kubectl get pods -A -o wide");
    rec.observe(net.show_pods());
    rec.expect(new != old, "a new IP after the restart", new)?;
    let o =
        connect(rec, &mut net, ("default/client", Source::Pod(client)), ("default/web", new), 80)?;
    rec.expect(answered_by(&o) == Some("web"), "web to answer on its new IP", &o)?;
    let o =
        connect(rec, &mut net, ("default/client", Source::Pod(client)), ("old web IP", old), 80)?;
    rec.expect(!o.is_connected(), "nothing to answer on the old IP", &o)?;
    Ok(())
}

mod chatter {
    //! A client that sends one HTTP request a second over one keep-alive TCP connection.

    use std::net::SocketAddr;
    use std::time::Duration;

    use kns_sim::Time;
    use kns_sim::stack::apps::{ConnStatus, TcpConn};
    use kns_sim::stack::{App, AppCx, AppPoll};

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: web\r\n\r\n";

    /// Sends `rounds` HTTP requests, one a second, on one connection, and counts the answers.
    pub struct Chatter {
        conn: TcpConn,
        rounds: usize,
        sent: usize,
        next: Time,
        received: Vec<u8>,
        failed: bool,
    }

    impl Chatter {
        /// A conversation with `to`.
        pub fn new(to: SocketAddr, rounds: usize) -> Chatter {
            let conn = TcpConn::new(to, Duration::from_secs(3));
            Chatter { conn, rounds, sent: 0, next: Time::ZERO, received: Vec::new(), failed: false }
        }

        /// HTTP answers received so far.
        pub fn answers(&self) -> usize {
            String::from_utf8_lossy(&self.received).matches("HTTP/1.1 200").count()
        }

        /// Whether the connection failed.
        pub fn failed(&self) -> bool {
            self.failed
        }
    }

    impl App for Chatter {
        fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
            match self.conn.poll(now, cx) {
                ConnStatus::Failed => {
                    self.failed = true;
                    return AppPoll::Done;
                }
                ConnStatus::Connecting => return AppPoll::Idle,
                ConnStatus::Open => {}
            }
            let Some(h) = self.conn.handle() else { return AppPoll::Done };
            let _ = cx.tcp_recv(h, &mut self.received);
            if self.answers() >= self.rounds {
                self.conn.release(cx);
                return AppPoll::Done;
            }
            if self.sent < self.rounds && now >= self.next && cx.tcp_send(h, REQUEST).is_ok() {
                self.sent += 1;
                self.next = now + Duration::from_secs(1);
            }
            AppPoll::WakeAt(self.next.max(now + Duration::from_millis(100)))
        }
    }
}
