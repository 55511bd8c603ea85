//! Running a scenario: the world is built lazily, steps run in order, every expectation is
//! probed with real packets and judged by the policy engine too.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use kns_core::flow::{Flow, PortProtocol, Protocol};
use kns_core::manifest::Loader;
use kns_core::model::{Cluster, PodId, PolicyId};
use kns_core::policy::{PolicyEngine, ReferenceEngine, Side, fast_matrix};
use kns_core::proxy::ServiceTable;
use kns_sim::cluster::{ClusterNet, ClusterOptions, Source, delivered, outcome_word};
use kns_sim::net::CaptureId;
use kns_sim::stack::SmolStack;
use kns_sim::stack::apps::{AgnhostServer, ProbeOutcome};

use super::endpoints::{self, answered_by};
use super::report::{CaptureFile, CheckReport, Report, StepReport};
use super::{ExactFlows, Expectation, HttpExpectation, PodFlow, Scenario, Step, Want};

/// How to run a scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Record every hop of each single probe's frames into its check.
    pub trace: bool,
    /// Capture every pod's `eth0` from build to the end into [`Report::captures`].
    pub pcap: bool,
}

/// Why a scenario could not run at all (failed expectations are not errors: they are in the
/// report).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The manifests do not load.
    #[error("scenario {scenario}: the manifests do not load:\n{message}")]
    Load {
        /// Scenario name.
        scenario: String,
        /// Every problem, with file, document and field.
        message: String,
    },
    /// The cluster could not be built.
    #[error("scenario {scenario}: building the cluster: {message}")]
    Build {
        /// Scenario name.
        scenario: String,
        /// What failed.
        message: String,
    },
    /// A step asked for something kns cannot do to a running cluster.
    #[error("scenario {scenario}: {message}")]
    Step {
        /// Scenario name.
        scenario: String,
        /// What the step asked for, and why it cannot be done.
        message: String,
    },
}

/// The living world of a run.
struct World {
    net: ClusterNet,
    /// The model as built, without its policies: later manifests may change policies only.
    built: Cluster,
    /// Addresses pods had before their last restart (`was:namespace/name`).
    was: BTreeMap<String, IpAddr>,
    captures: Vec<(String, CaptureId)>,
}

/// What the run has applied so far.
struct Applied {
    files: Vec<(String, String)>,
    /// Policies that replace every applied one, once a step replaced them.
    policies: Option<(String, String)>,
}

impl Applied {
    fn load(&self, scenario: &str) -> Result<Cluster, ScenarioError> {
        let load = |extra: Option<&(String, String)>| {
            let mut loader = Loader::new();
            for (file, text) in self.files.iter().chain(extra) {
                loader.add(file.clone(), text.clone());
            }
            loader.finish().map(|l| l.cluster).map_err(|e| ScenarioError::Load {
                scenario: scenario.to_string(),
                message: e.to_string(),
            })
        };
        let Some(replacement) = &self.policies else { return load(None) };
        // The replacement's policies are those the applied manifests alone do not have.
        let base: BTreeSet<(String, String)> = load(None)?
            .policies
            .iter()
            .map(|p| (p.namespace.0.to_string(), p.name.clone()))
            .collect();
        let mut cluster = load(Some(replacement))?;
        cluster.policies.retain(|p| !base.contains(&(p.namespace.0.to_string(), p.name.clone())));
        for (i, p) in cluster.policies.iter_mut().enumerate() {
            p.id = PolicyId::from_index(i);
        }
        Ok(cluster)
    }
}

fn without_policies(cluster: &Cluster) -> Cluster {
    let mut c = cluster.clone();
    c.policies.clear();
    c
}

impl Scenario {
    /// Runs the scenario on a fresh world. `Err` only when it cannot run at all (manifests that
    /// do not load, a cluster that does not build); failed expectations are in the report.
    pub fn run(&self, opts: &RunOptions) -> Result<Report, ScenarioError> {
        let mut applied = Applied { files: Vec::new(), policies: None };
        if let Some(n) = self.nodes {
            applied.files.push(("cluster.yaml".into(), cluster_doc(&self.name, n)));
        }
        let mut world: Option<World> = None;
        let mut steps = Vec::new();
        let mut number = 0;
        for step in &self.steps {
            match step {
                Step::Apply { file, text } => {
                    applied.files.push((file.clone(), text.clone()));
                    let result = self.update_policies(&applied, world.as_mut())?;
                    steps.push(StepReport::Action {
                        command: format!("kubectl apply -f {file}"),
                        result,
                    });
                }
                Step::ReplacePolicies { file, text } => {
                    applied.policies = Some((file.clone(), text.clone()));
                    let result = self.update_policies(&applied, world.as_mut())?;
                    let command = if text.trim().is_empty() {
                        "kubectl delete networkpolicy --all -A".to_string()
                    } else {
                        format!("kubectl delete networkpolicy --all -A && kubectl apply -f {file}")
                    };
                    steps.push(StepReport::Action { command, result });
                }
                Step::Restart(pod) => {
                    let w = self.world(&mut world, &applied, opts)?;
                    let result = restart(w, pod, opts).map_err(|message| ScenarioError::Step {
                        scenario: self.name.clone(),
                        message,
                    })?;
                    steps.push(StepReport::Action {
                        command: format!(
                            "kubectl delete pod {}   # its controller starts a new sandbox",
                            kubectl_ref(pod)
                        ),
                        result: Some(result),
                    });
                }
                Step::ServeOnInternet { name, port } => {
                    let w = self.world(&mut world, &applied, opts)?;
                    let internet = w.net.outside().internet;
                    let stack =
                        w.net.sim_mut().stack_mut::<SmolStack>(internet).ok_or_else(|| {
                            ScenarioError::Step {
                                scenario: self.name.clone(),
                                message: "the internet host has no socket stack".into(),
                            }
                        })?;
                    stack.spawn(AgnhostServer::for_pod(name, [(*port, Protocol::Tcp)]));
                    w.net.sim_mut().kick(internet);
                    let host = w.net.outside().host;
                    steps.push(StepReport::Action {
                        command: format!("# on the internet host {host}: a server answering \"{name}\" on {port}/TCP"),
                        result: None,
                    });
                }
                Step::Expect(e) => {
                    let w = self.world(&mut world, &applied, opts)?;
                    number += 1;
                    steps.push(StepReport::Check(check_one(w, e, number, opts)));
                }
                Step::ExpectHttp(e) => {
                    let w = self.world(&mut world, &applied, opts)?;
                    number += 1;
                    steps.push(StepReport::Check(check_http(w, e, number, opts)));
                }
                Step::Exactly(e) => {
                    let w = self.world(&mut world, &applied, opts)?;
                    number += 1;
                    steps.push(StepReport::Check(check_exactly(w, e, number, opts)));
                }
            }
        }
        let w = self.world(&mut world, &applied, opts)?;
        let mut captures = Vec::with_capacity(w.captures.len());
        for (name, id) in &w.captures {
            let mut bytes = Vec::new();
            w.net.sim().write_pcap(*id, &mut bytes).map_err(|e| ScenarioError::Step {
                scenario: self.name.clone(),
                message: format!("writing {name}: {e}"),
            })?;
            captures.push(CaptureFile { name: name.clone(), bytes });
        }
        let passed = steps.iter().filter(|s| matches!(s, StepReport::Check(c) if c.ok)).count();
        Ok(Report {
            scenario: self.name.clone(),
            about: self.about.clone(),
            seed: self.seed,
            nodes: w.net.cluster().nodes.len(),
            pods: w.net.cluster().pods.len(),
            passed,
            failed: number - passed,
            ok: passed == number,
            steps,
            captures,
        })
    }

    /// Builds the world on first use.
    fn world<'w>(
        &self,
        world: &'w mut Option<World>,
        applied: &Applied,
        opts: &RunOptions,
    ) -> Result<&'w mut World, ScenarioError> {
        if world.is_none() {
            let cluster = applied.load(&self.name)?;
            let built = without_policies(&cluster);
            let options = ClusterOptions { seed: self.seed, ..ClusterOptions::default() };
            let mut net = ClusterNet::build(cluster, options).map_err(|e| {
                ScenarioError::Build { scenario: self.name.clone(), message: e.to_string() }
            })?;
            let mut captures = Vec::new();
            if opts.pcap {
                for pod in net.cluster().pods_sorted() {
                    if let Some(c) = capture_pod(&mut net, pod, "") {
                        captures.push(c);
                    }
                }
            }
            *world = Some(World { net, built, was: BTreeMap::new(), captures });
        }
        Ok(world.as_mut().expect("built just above when missing"))
    }

    /// After an apply: gives a running world the new policies; anything else must not change.
    fn update_policies(
        &self,
        applied: &Applied,
        world: Option<&mut World>,
    ) -> Result<Option<String>, ScenarioError> {
        let Some(w) = world else { return Ok(None) };
        let cluster = applied.load(&self.name)?;
        if without_policies(&cluster) != w.built {
            return Err(ScenarioError::Step {
                scenario: self.name.clone(),
                message: "a manifest applied after the cluster was built changes more than \
                          NetworkPolicies (kns changes only policies in a running cluster)"
                    .into(),
            });
        }
        let n = cluster.policies.len();
        w.net.set_policies(cluster.policies);
        Ok(Some(format!("{n} NetworkPolicies in force")))
    }
}

/// `namespace/name` as kubectl takes it: `-n namespace name`.
fn kubectl_ref(pod: &str) -> String {
    match pod.split_once('/') {
        Some((ns, name)) => format!("-n {ns} {name}"),
        None => pod.to_string(),
    }
}

/// A `Cluster` document with `n` nodes and NetworkPolicy enforced.
fn cluster_doc(name: &str, n: usize) -> String {
    let nodes: Vec<String> = (1..=n).map(|i| format!("{{name: node-{i}}}")).collect();
    format!(
        "apiVersion: kns.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\nspec:\n  \
         enforcePolicy: true\n  nodes: [{}]\n",
        nodes.join(", ")
    )
}

/// Starts capturing a running pod's `eth0`; the file is named after its namespace.
fn capture_pod(net: &mut ClusterNet, pod: PodId, suffix: &str) -> Option<(String, CaptureId)> {
    let ns = net.pod_ns(pod)?;
    let name = net.sim().netns_name(ns).to_string();
    let id = net.sim_mut().capture(ns, "eth0").ok()?;
    Some((format!("{name}-eth0{suffix}.pcap"), id))
}

fn restart(w: &mut World, pod: &str, opts: &RunOptions) -> Result<String, String> {
    let id = endpoints::pod(w.net.cluster(), pod).map_err(|e| e.to_string())?;
    let old = w.net.pod_ip(id);
    let new = w.net.restart_pod(id).map_err(|e| format!("restarting {pod}: {e}"))?;
    w.was.insert(pod.to_string(), old);
    if opts.pcap {
        let n = w.was.len();
        if let Some(c) = capture_pod(&mut w.net, id, &format!("-restart{n}")) {
            w.captures.push(c);
        }
    }
    Ok(format!("{pod}: {old} -> {new}"))
}

/// What the policy engine says about a pod-to-pod connection, as (allowed, words).
fn engine_verdict(cluster: &Cluster, from: PodId, to: PodId, port: PortProtocol) -> (bool, String) {
    if !cluster.config.enforce_policy {
        return (true, "allowed (the network plugin does not enforce NetworkPolicy)".into());
    }
    let v = ReferenceEngine.evaluate(cluster, &Flow::pods(from, to, port));
    if v.allowed {
        return (true, "allowed".into());
    }
    let policies = |selecting: &[PolicyId]| {
        selecting
            .iter()
            .map(|p| cluster.policies[p.index()].name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut why = Vec::new();
    if let Side::Denied { selecting } = &v.egress {
        why.push(format!(
            "egress of {} isolated by {}",
            cluster.pod_ref(from),
            policies(selecting)
        ));
    }
    if let Side::Denied { selecting } = &v.ingress {
        why.push(format!("ingress of {} isolated by {}", cluster.pod_ref(to), policies(selecting)));
    }
    (false, format!("denied ({})", why.join("; ")))
}

/// What the policy engine says about a connection from a pod to a Service's cluster IP: about
/// the backend that answered when one did, else about every backend (the connection could
/// have gone to any of them). `None` when the address is no Service frontend with backends.
fn service_verdict(
    cluster: &Cluster,
    from: PodId,
    addr: SocketAddr,
    protocol: Protocol,
    answered: Option<&str>,
) -> Option<(bool, String)> {
    let table = ServiceTable::from_cluster(cluster);
    let vs = table.services().iter().find(|vs| {
        vs.cluster_ip == Some(addr.ip()) && vs.port == addr.port() && vs.protocol == protocol
    })?;
    let backends: Vec<(PodId, PortProtocol)> = vs
        .backends
        .iter()
        .filter_map(|b| Some((b.pod?, PortProtocol::new(b.addr.port(), protocol))))
        .collect();
    if backends.is_empty() {
        return None;
    }
    let name = |p: PodId| cluster.pod_ref(p);
    if let Some((pod, port)) =
        answered.and_then(|n| backends.iter().find(|(p, _)| cluster.pod(*p).name == n))
    {
        let (allowed, words) = engine_verdict(cluster, from, *pod, *port);
        return Some((allowed, format!("{words}, to the backend {} {port}", name(*pod))));
    }
    let verdicts: Vec<(bool, String)> =
        backends.iter().map(|(p, port)| engine_verdict(cluster, from, *p, *port)).collect();
    let any = verdicts.iter().any(|(allowed, _)| *allowed);
    let words = backends
        .iter()
        .zip(&verdicts)
        .map(|((p, port), (_, words))| format!("{} {port}: {words}", name(*p)))
        .collect::<Vec<_>>()
        .join("; ");
    Some((any, format!("via the Service, backends {words}")))
}

fn observed_words(o: &ProbeOutcome) -> String {
    match (o, answered_by(o)) {
        (_, Some(name)) => format!("connected, answered by {name}"),
        (ProbeOutcome::Unreachable { .. } | ProbeOutcome::Failed(_), _) => o.to_string(),
        _ => outcome_word(o).to_string(),
    }
}

fn expected_words(want: &Want) -> String {
    match want {
        Want::Allowed => "allowed".into(),
        Want::Denied => "denied".into(),
        Want::AnsweredBy(n) => format!("connected, answered by {n}"),
    }
}

fn check_one(w: &mut World, e: &Expectation, number: usize, opts: &RunOptions) -> CheckReport {
    let mut report = CheckReport {
        number,
        what: format!("{} -> {} {}", e.from, e.to, e.port),
        expected: expected_words(&e.want),
        observed: String::new(),
        engine: None,
        ok: false,
        failure: None,
        details: Vec::new(),
        trace: Vec::new(),
    };
    let ends = endpoints::source(w.net.cluster(), &e.from).and_then(|s| {
        let t = match e.to.strip_prefix("was:") {
            Some(pod) => w
                .was
                .get(pod)
                .map(|ip| endpoints::Target { addr: SocketAddr::new(*ip, e.port.port), pod: None })
                .ok_or_else(|| {
                    endpoints::EndpointError::Unknown(format!(
                        "{pod} was not restarted, so it has no old address"
                    ))
                }),
            None => endpoints::target(&w.net, &e.to, e.port),
        }?;
        Ok((s, t))
    });
    let (source, target) = match ends {
        Ok(ends) => ends,
        Err(err) => {
            report.observed = "nothing: the probe could not start".into();
            report.failure = Some(err.to_string());
            return report;
        }
    };
    if target.addr.port() != e.port.port || target.pod.is_none() {
        report.what = format!("{} -> {} ({}) {}", e.from, e.to, target.addr, e.port.protocol);
    }
    if opts.trace {
        w.net.sim_mut().enable_trace();
    }
    let outcome = endpoints::probe(&mut w.net, source, target.addr, e.port.protocol);
    if opts.trace {
        report.trace = w.net.sim_mut().take_trace().iter().map(ToString::to_string).collect();
        w.net.sim_mut().disable_trace();
    }
    let outcome = match outcome {
        Ok(o) => o,
        Err(err) => {
            report.observed = "nothing: the probe did not finish".into();
            report.failure = Some(err.to_string());
            return report;
        }
    };
    let through = delivered(&outcome);
    report.observed = observed_words(&outcome);
    let packets_ok = match &e.want {
        Want::Allowed => through,
        Want::Denied => !through,
        Want::AnsweredBy(n) => answered_by(&outcome) == Some(n.as_str()),
    };
    let mut engine_ok = true;
    match (source, target.pod) {
        (Source::Pod(from), Some(to)) if from != to => {
            let (allowed, words) = engine_verdict(w.net.cluster(), from, to, e.port);
            engine_ok = allowed == through;
            report.engine = Some(words);
        }
        (Source::Pod(from), None) => {
            let answered = answered_by(&outcome);
            let judged =
                service_verdict(w.net.cluster(), from, target.addr, e.port.protocol, answered);
            if let Some((allowed, words)) = judged {
                engine_ok = allowed == through;
                report.engine = Some(words);
            }
        }
        _ => {}
    }
    report.ok = packets_ok && engine_ok;
    report.failure = if !packets_ok {
        Some(format!(
            "the emulator disagrees: expected {}, observed {}",
            report.expected, report.observed
        ))
    } else if !engine_ok {
        let got = if through { "got through" } else { "did not get through" };
        Some(format!("the policy engine and the packets disagree: the packets {got}"))
    } else {
        None
    };
    report
}

/// Splits `http://TARGET:PORT[/PATH]` into its target, port and path (`/` when none).
fn split_url(url: &str) -> Result<(&str, u16, &str), String> {
    let bad = |why: &str| format!("the URL `{url}` {why} (write http://TARGET:PORT/PATH)");
    let rest = url.strip_prefix("http://").ok_or_else(|| bad("is not http://"))?;
    let (target, rest) = rest.split_once(':').ok_or_else(|| bad("has no :PORT"))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let port = rest[..end].parse::<u16>().map_err(|_| bad("has no numeric port"))?;
    let path = if end == rest.len() { "/" } else { &rest[end..] };
    if target.is_empty() {
        return Err(bad("has no target"));
    }
    Ok((target, port, path))
}

/// What curl got, in words: `HTTP 200, body "keycloak-0"`, or why there was no answer.
fn http_words(status: u16, body: &str) -> String {
    format!("HTTP {status}, body {:?}", body.trim())
}

fn check_http(w: &mut World, e: &HttpExpectation, number: usize, opts: &RunOptions) -> CheckReport {
    let host = e.host.as_deref().map(|h| format!("-H 'Host: {h}' ")).unwrap_or_default();
    let mut report = CheckReport {
        number,
        what: format!("{} -> curl {host}{}", e.from, e.url),
        expected: match (e.status, &e.body_contains) {
            (0, _) => "no HTTP answer (curl prints 000)".into(),
            (s, Some(b)) => format!("HTTP {s}, body containing {b:?}"),
            (s, None) => format!("HTTP {s}"),
        },
        observed: String::new(),
        engine: None,
        ok: false,
        failure: None,
        details: Vec::new(),
        trace: Vec::new(),
    };
    let request = split_url(&e.url).map_err(endpoints::EndpointError::Unknown).and_then(
        |(target, port, path)| {
            let source = endpoints::source(w.net.cluster(), &e.from)?;
            let t = endpoints::target(&w.net, target, PortProtocol::new(port, Protocol::Tcp))?;
            let ns = w
                .net
                .source_ns(source)
                .map_err(|err| endpoints::EndpointError::Probe(err.to_string()))?;
            Ok((ns, t.addr, path.to_string()))
        },
    );
    let (ns, addr, path) = match request {
        Ok(r) => r,
        Err(err) => {
            report.observed = "nothing: the request could not start".into();
            report.failure = Some(err.to_string());
            return report;
        }
    };
    let url = format!("http://{addr}{path}");
    report.details.push(format!("curl {host}{url}"));
    if opts.trace {
        w.net.sim_mut().enable_trace();
    }
    let got = endpoints::http_get(&mut w.net, ns, &url, e.host.as_deref());
    if opts.trace {
        report.trace = w.net.sim_mut().take_trace().iter().map(ToString::to_string).collect();
        w.net.sim_mut().disable_trace();
    }
    let got = match got {
        Ok(Some(got)) => got,
        Ok(None) => {
            report.observed = "nothing: curl did not finish".into();
            report.failure = Some("curl did not exit within its limits".into());
            return report;
        }
        Err(err) => {
            report.observed = "nothing: the request could not start".into();
            report.failure = Some(err.to_string());
            return report;
        }
    };
    let (status, body) = match &got {
        Ok((status, body)) => (*status, body.as_str()),
        Err(_) => (0, ""),
    };
    report.observed = match &got {
        Ok((status, body)) => http_words(*status, body),
        Err(why) => format!("no HTTP answer ({why})"),
    };
    let body_ok = e.body_contains.as_ref().is_none_or(|b| body.contains(b.as_str()));
    report.ok = status == e.status && (e.status == 0 || body_ok);
    if !report.ok {
        report.failure = Some(format!(
            "the emulator disagrees: expected {}, observed {}",
            report.expected, report.observed
        ));
    }
    report
}

/// With `--trace`, how many of a flow set's wrong flows are probed again, one by one, traced.
const TRACED_DIFFERENCES: usize = 3;

fn check_exactly(w: &mut World, e: &ExactFlows, number: usize, opts: &RunOptions) -> CheckReport {
    let mut report = CheckReport {
        number,
        what: format!("every pod to every other pod on {}", ports_text(&e.ports)),
        expected: format!("exactly {} flows allowed ({})", e.allowed.len(), e.what),
        observed: String::new(),
        engine: None,
        ok: false,
        failure: None,
        details: Vec::new(),
        trace: Vec::new(),
    };
    let cluster = w.net.cluster();
    let unknown: Vec<String> = e
        .allowed
        .iter()
        .flat_map(|f| [&f.from, &f.to])
        .filter(|r| cluster.pod_by_ref(r).is_none())
        .map(|r| format!("no pod {r}"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !unknown.is_empty() {
        report.observed = "nothing: the expected flows name pods the cluster lacks".into();
        report.failure = Some("the expected flows name unknown pods".into());
        report.details = unknown;
        return report;
    }
    let config = w.net.matrix_probe_config();
    let m = match w.net.packet_matrix(&e.ports, &config) {
        Ok(m) => m,
        Err(err) => {
            report.observed = "nothing: the packet matrix did not finish".into();
            report.failure = Some(err.to_string());
            return report;
        }
    };
    let cluster = w.net.cluster();
    let refs: Vec<String> = m.pods.iter().map(|p| cluster.pod_ref(*p)).collect();
    let engine = fast_matrix(cluster, &m.ports);
    let mut packets = BTreeSet::new();
    let mut judged = BTreeSet::new();
    for (k, port) in m.ports.iter().enumerate() {
        for (i, from) in m.pods.iter().enumerate() {
            for (j, to) in m.pods.iter().enumerate() {
                if i == j {
                    continue;
                }
                let flow = PodFlow { from: refs[i].clone(), to: refs[j].clone(), port: *port };
                if delivered(&m.outcomes[k][i][j]) {
                    packets.insert(flow.clone());
                }
                let allowed = !cluster.config.enforce_policy
                    || matches!((engine.position(*from), engine.position(*to)), (Some(a), Some(b)) if engine.allowed(k, a, b));
                if allowed {
                    judged.insert(flow);
                }
            }
        }
    }
    let n = m.pods.len();
    let total = m.ports.len() * n * n.saturating_sub(1);
    report.observed = format!("{} of {total} flows allowed", packets.len());
    report.engine = Some(format!("{} of {total} flows allowed", judged.len()));
    for f in e.allowed.difference(&packets) {
        report.details.push(format!("expected allowed, denied by the network: {f}"));
    }
    for f in packets.difference(&e.allowed) {
        report.details.push(format!("expected denied, allowed by the network: {f}"));
    }
    for f in judged.symmetric_difference(&packets) {
        let says = if judged.contains(f) { "allowed" } else { "denied" };
        report.details.push(format!("policy engine says {says}, the packets disagree: {f}"));
    }
    if opts.trace {
        let wrong: Vec<&PodFlow> =
            e.allowed.symmetric_difference(&packets).take(TRACED_DIFFERENCES).collect();
        for flow in wrong {
            report.trace.push(format!("# {flow}, probed again"));
            report.trace.extend(trace_flow(w, flow));
        }
    }
    let packets_ok = packets == e.allowed;
    report.ok = packets_ok && judged == packets;
    report.failure = if !packets_ok {
        Some(format!(
            "the emulator disagrees with the expected set: {} flows missing, {} extra",
            e.allowed.difference(&packets).count(),
            packets.difference(&e.allowed).count()
        ))
    } else if judged != packets {
        Some("the policy engine and the packets disagree".into())
    } else {
        None
    };
    report
}

fn ports_text(ports: &[PortProtocol]) -> String {
    let all_tcp = ports.iter().all(|p| p.protocol == Protocol::Tcp);
    let words: Vec<String> =
        ports.iter().map(|p| if all_tcp { p.port.to_string() } else { p.to_string() }).collect();
    if all_tcp { format!("TCP {}", words.join(", ")) } else { words.join(", ") }
}

/// Probes one pod-to-pod flow again with tracing on and returns its hops.
fn trace_flow(w: &mut World, flow: &PodFlow) -> Vec<String> {
    let cluster = w.net.cluster();
    let ends = endpoints::pod(cluster, &flow.from)
        .and_then(|from| endpoints::pod(cluster, &flow.to).map(|to| (from, cluster.pod(to).ip)));
    let (from, ip) = match ends {
        Ok(ends) => ends,
        Err(e) => return vec![e.to_string()],
    };
    w.net.sim_mut().enable_trace();
    let outcome = endpoints::probe(
        &mut w.net,
        Source::Pod(from),
        SocketAddr::new(ip, flow.port.port),
        flow.port.protocol,
    );
    let mut lines: Vec<String> =
        w.net.sim_mut().take_trace().iter().map(ToString::to_string).collect();
    w.net.sim_mut().disable_trace();
    lines.push(match outcome {
        Ok(o) => format!("=> {}", observed_words(&o)),
        Err(e) => format!("=> {e}"),
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_target_port_and_path() {
        assert_eq!(
            split_url("http://nodeport/gw.istio-system:80/keycloak/x?y=1"),
            Ok(("nodeport/gw.istio-system", 80, "/keycloak/x?y=1"))
        );
        assert_eq!(
            split_url("http://services/keycloak-0:8080"),
            Ok(("services/keycloak-0", 8080, "/"))
        );
        assert_eq!(split_url("http://10.0.0.1:80?q"), Ok(("10.0.0.1", 80, "?q")));
        for bad in ["https://a:1/", "http://a/b/c", "http://a:x/", "http://:80/", "http://a:70000"]
        {
            let err = split_url(bad).unwrap_err();
            assert!(err.contains(bad) && err.contains("http://TARGET:PORT/PATH"), "{err}");
        }
    }
}
