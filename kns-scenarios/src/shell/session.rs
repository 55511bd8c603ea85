//! A shell session: the living cluster, the object store it was built from, and the context
//! plain commands run in. [`Session::run`] executes one parsed line.
//!
//! What is incremental: NetworkPolicy changes (`apply`, `delete netpol`) go to the running
//! policy agent, so established connections survive as on a real cluster; deleting a pod runs
//! its CNI DEL and takes it out of its Services' endpoints. Every other change (new pods,
//! Services, namespaces, deleting a Service) rebuilds the emulated cluster from the store with
//! the same seed: running bare pods keep their node and address and Services their cluster IP,
//! but connections, conntrack entries, `nc -l` listeners and changes made with `ip` or
//! `iptables` start afresh.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use kns_core::manifest::{Loaded, Loader, ManifestErrors};
use kns_core::model::PodId;
use kns_core::policy::{PolicyEngine, ReferenceEngine};
use kns_core::{Cluster, Flow, FlowEnd, PortProtocol};
use kns_sim::cluster::{ClusterError, ClusterNet, ClusterOptions, Source};

use super::parse::{Kubectl, Line, Resource};
use super::store::{Applied, Live, Store, documents};
use super::tools::{self, Place};
use super::views;

/// The cluster the shell starts without `-f`: the tour's two nodes and four pods, with
/// cluster DNS and a Service in front of `web`.
pub const DEFAULT_EXTRA: &str = r#"---
apiVersion: v1
kind: Pod
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  nodeName: node-1
  containers:
  - name: coredns
    ports: [{name: dns, containerPort: 53, protocol: UDP}, {name: dns-tcp, containerPort: 53, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  selector: {k8s-app: kube-dns}
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 80}]
"#;

/// Why a shell command failed.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The command or its arguments are wrong, or the cluster refused it (one line).
    #[error("{0}")]
    Usage(String),
    /// Applied manifests have problems (one located line each).
    #[error("{}", .0.render().trim_end())]
    Manifest(#[from] ManifestErrors),
    /// The emulated cluster could not do it.
    #[error("{0}")]
    Cluster(#[from] ClusterError),
}

fn usage<T>(message: impl Into<String>) -> Result<T, ShellError> {
    Err(ShellError::Usage(message.into()))
}

/// Where plain commands run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Context {
    /// A node's own namespace.
    Node(String),
    /// A pod (`namespace`, `name`).
    Pod(String, String),
    /// The internet host.
    Internet,
}

/// What a line asked of the read loop besides its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Go on reading.
    Continue,
    /// Stop (`exit`).
    Exit,
}

/// A running shell: the cluster, its objects, the context and the seed.
pub struct Session {
    net: ClusterNet,
    store: Store,
    seed: u64,
    context: Context,
}

impl Session {
    /// Builds the cluster of `files` (the built-in one when empty); returns the session and
    /// its opening lines (a summary and the warnings).
    pub fn start(files: &[PathBuf], seed: u64) -> Result<(Session, String), crate::cli::CliError> {
        use crate::cli::CliError;
        if files.iter().any(|f| f.as_os_str() == "-") {
            return Err(CliError::Usage(
                "kns shell reads its commands from standard input: give the manifests as files (-f PATH)".into(),
            ));
        }
        let sources = if files.is_empty() {
            vec![(
                "kns-shell.yaml".to_string(),
                format!("{}{DEFAULT_EXTRA}", crate::tour::CLUSTER_MANIFEST),
            )]
        } else {
            crate::cli::read_sources(files)?
        };
        let mut loader = Loader::new();
        for (name, text) in &sources {
            loader.add(name.clone(), text.clone());
        }
        let loaded = loader.finish()?;
        let store = Store::from_sources(&sources).map_err(CliError::Usage)?;
        let net = build(loaded.cluster, seed).map_err(|e| CliError::Usage(e.to_string()))?;
        let first = net.nodes().first().map(|n| net.cluster().node(n.id).name.clone());
        let context = first.map_or(Context::Internet, Context::Node);
        let session = Session { net, store, seed, context };
        let mut out = String::new();
        for w in &loaded.warnings {
            out.push_str(&format!("warning: {}\n", w.render()));
        }
        for w in session.net.warnings() {
            out.push_str(&format!("warning: {w}\n"));
        }
        let c = session.net.cluster();
        out.push_str(&format!(
            "# kns shell: cluster {} with {} nodes and {} pods; commands run in {} (`use POD` to move, `help` for more)\n",
            c.config.name,
            c.nodes.len(),
            c.pods.len(),
            session.context_name()
        ));
        Ok((session, out))
    }

    /// The living cluster.
    pub fn net(&self) -> &ClusterNet {
        &self.net
    }

    fn context_name(&self) -> String {
        match &self.context {
            Context::Node(n) => format!("node {n}"),
            Context::Pod(ns, name) => format!("pod {ns}/{name}"),
            Context::Internet => "the internet host".into(),
        }
    }

    /// Runs one line; `stdin` is the here-document that follows it, if any.
    pub fn run(&mut self, line: &Line, stdin: Option<&str>) -> Result<(String, Next), ShellError> {
        if stdin.is_some()
            && !matches!(line, Line::Kubectl(Kubectl::Apply { file, .. }) if file == "-")
        {
            return usage("only `kubectl apply -f -` reads a here-document");
        }
        let out = match line {
            Line::Empty => String::new(),
            Line::Exit => return Ok((String::new(), Next::Exit)),
            Line::Help => HELP.to_string(),
            Line::Use(None) => format!("commands run in {}\n", self.context_name()),
            Line::Use(Some(target)) => {
                let next = self.context_for(target)?;
                let previous = std::mem::replace(&mut self.context, next);
                if let Err(e) = self.place() {
                    self.context = previous;
                    return Err(e);
                }
                format!("commands now run in {}\n", self.context_name())
            }
            Line::Explain { from, to, port } => self.explain(from, to, *port)?,
            Line::Tool(words) => {
                let place = self.place()?;
                tools::run(&mut self.net, &place, words).map_err(ShellError::Usage)?
            }
            Line::NetnsExec { netns, words } => {
                let place = tools::place_of_netns(&self.net, netns).map_err(ShellError::Usage)?;
                tools::run(&mut self.net, &place, words).map_err(ShellError::Usage)?
            }
            Line::Kubectl(k) => self.kubectl(k, stdin)?,
        };
        Ok((out, Next::Continue))
    }

    fn kubectl(&mut self, k: &Kubectl, stdin: Option<&str>) -> Result<String, ShellError> {
        match k {
            Kubectl::Get { resource, names, scope, wide } => {
                if let super::parse::Scope::Namespace(ns) = scope
                    && self.net.cluster().namespace_by_name(ns).is_none()
                {
                    return usage(format!("namespaces \"{ns}\" not found"));
                }
                let text = views::get(&self.net, *resource, names, scope, *wide);
                if text.is_empty() {
                    return usage(format!(
                        "{} \"{}\" not found",
                        resource.plural(),
                        names.join("\", \"")
                    ));
                }
                Ok(text)
            }
            Kubectl::Apply { file, namespace } => {
                let sources = match (file.as_str(), stdin) {
                    ("-", Some(text)) => vec![("<stdin>".to_string(), text.to_string())],
                    ("-", None) => {
                        return usage(
                            "kubectl apply -f - needs a here-document: kubectl apply -f - <<EOF",
                        );
                    }
                    (path, _) => crate::cli::read_sources(&[PathBuf::from(path)])
                        .map_err(|e| ShellError::Usage(e.to_string()))?,
                };
                self.apply(&sources, namespace)
            }
            Kubectl::Delete { resource, names, namespace } => {
                let mut out = String::new();
                for name in names {
                    out.push_str(&self.delete(*resource, name, namespace)?);
                }
                Ok(out)
            }
            Kubectl::Exec { pod, namespace, words } => {
                let id = self.running_pod(namespace, pod)?;
                let ns = self.net.pod_ns(id).ok_or_else(|| {
                    ShellError::Usage(format!("pod {namespace}/{pod} is not running"))
                })?;
                let place = Place { ns, source: Some(Source::Pod(id)) };
                tools::run(&mut self.net, &place, words).map_err(ShellError::Usage)
            }
        }
    }

    /// `kubectl apply`: new or changed objects into the store, then into the cluster.
    fn apply(
        &mut self,
        sources: &[(String, String)],
        namespace: &str,
    ) -> Result<String, ShellError> {
        if self.net.cluster().namespace_by_name(namespace).is_none() {
            return usage(format!("namespaces \"{namespace}\" not found"));
        }
        let mut store = self.store.clone();
        let mut out = String::new();
        let mut changed = Vec::new();
        for (file, text) in sources {
            store.begin_batch();
            for doc in documents(file, text, namespace).map_err(ShellError::Usage)? {
                let key = doc.key.clone();
                let what = store.apply(doc);
                out.push_str(&format!("{} {}\n", key.kubectl_ref(), what.word()));
                if what != Applied::Unchanged {
                    changed.push(key);
                }
            }
        }
        if changed.is_empty() {
            return Ok(out);
        }
        let only_policies = changed.iter().all(|k| k.kind == "NetworkPolicy");
        out.push_str(&self.commit(store, only_policies)?);
        Ok(out)
    }

    /// Loads `store`; on success it becomes the session's and the cluster follows it,
    /// incrementally for policy changes, else by a rebuild. On failure nothing changes.
    fn commit(&mut self, store: Store, only_policies: bool) -> Result<String, ShellError> {
        let live = self.net.cluster().clone();
        let running: BTreeSet<(String, String)> = live
            .pods_sorted()
            .into_iter()
            .filter(|p| self.net.pod(*p).is_some())
            .map(|p| {
                let pod = live.pod(p);
                (live.namespace(pod.namespace).name.clone(), pod.name.clone())
            })
            .collect();
        let loaded: Loaded = store.load(Some(&Live { cluster: &live, running: &running }))?;
        let mut out = String::new();
        for w in &loaded.warnings {
            out.push_str(&format!("warning: {}\n", w.render()));
        }
        if only_policies {
            let mut policies = loaded.cluster.policies.clone();
            for p in &mut policies {
                let name = &loaded.cluster.namespace(p.namespace).name;
                p.namespace = live
                    .namespace_by_name(name)
                    .ok_or_else(|| ShellError::Usage(format!("namespaces \"{name}\" not found")))?
                    .id;
            }
            self.net.set_policies(policies);
        } else {
            let before: Vec<String> = self.net.warnings().to_vec();
            let net = build(loaded.cluster, self.seed)?;
            for w in net.warnings().iter().filter(|w| !before.contains(w)) {
                out.push_str(&format!("warning: {w}\n"));
            }
            self.net = net;
            out.push_str("# the emulated cluster was rebuilt with the change: running pods keep their addresses, connections start afresh\n");
            out.push_str(&self.leave_if_gone());
        }
        self.store = store;
        Ok(out)
    }

    fn delete(
        &mut self,
        resource: Resource,
        name: &str,
        namespace: &str,
    ) -> Result<String, ShellError> {
        let key = super::store::Key {
            kind: resource.kind().to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let not_found = || ShellError::Usage(format!("{} \"{name}\" not found", resource.plural()));
        let deleted = format!(
            "{} \"{name}\" deleted\n",
            key.kubectl_ref().split('/').next().unwrap_or_default()
        );
        if resource == Resource::Pods {
            let id = self.running_pod(namespace, name).map_err(|_| not_found())?;
            if !self.store.delete(&key) {
                // A controller's pod: its controller starts a replacement at once (kns keeps
                // the name; the sandbox and possibly the address are new).
                let ip = self.net.restart_pod(id)?;
                return Ok(format!(
                    "{deleted}# its controller replaced it: a new sandbox, IP {ip}\n"
                ));
            }
            self.net.delete_pod(id)?;
            return Ok(format!("{deleted}{}", self.leave_if_gone()));
        }
        let mut store = self.store.clone();
        if !store.delete(&key) {
            return Err(not_found());
        }
        let note = self.commit(store, resource == Resource::NetworkPolicies)?;
        Ok(format!("{deleted}{note}"))
    }

    /// `explain FROM TO PORT` on the current model.
    fn explain(&self, from: &str, to: &str, port: PortProtocol) -> Result<String, ShellError> {
        let cluster = self.net.cluster();
        let flow = Flow { src: self.flow_end(from)?, dst: self.flow_end(to)?, port };
        let mut text = ReferenceEngine.evaluate(cluster, &flow).explain(cluster, &flow);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }

    fn flow_end(&self, text: &str) -> Result<FlowEnd, ShellError> {
        let cluster = self.net.cluster();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(match cluster.pod_by_ip(ip).filter(|p| self.net.pod(p.id).is_some()) {
                Some(pod) => FlowEnd::Pod(pod.id),
                None => FlowEnd::External(ip),
            });
        }
        let (ns, name) = text.split_once('/').unwrap_or(("default", text));
        self.running_pod(ns, name).map(FlowEnd::Pod)
    }

    /// A running pod by namespace and name.
    fn running_pod(&self, namespace: &str, name: &str) -> Result<PodId, ShellError> {
        let cluster = self.net.cluster();
        match cluster.pod_by_name(namespace, name) {
            Some(p) if self.net.pod(p.id).is_some() => Ok(p.id),
            _ => usage(format!("pods \"{name}\" not found in namespace {namespace}")),
        }
    }

    /// `use TARGET`: a pod (`ns/name` or a name in `default`), a node, or `internet`.
    fn context_for(&self, target: &str) -> Result<Context, ShellError> {
        let cluster = self.net.cluster();
        if target == "internet" {
            return Ok(Context::Internet);
        }
        if cluster.node_by_name(target).is_some() {
            return Ok(Context::Node(target.to_string()));
        }
        let (ns, name) = target.split_once('/').unwrap_or(("default", target));
        let id = self.running_pod(ns, name).map_err(|_| {
            ShellError::Usage(format!("no pod, node or `internet` called `{target}` (pods are ns/name; `kubectl get pods -A` lists them)"))
        })?;
        let pod = cluster.pod(id);
        Ok(Context::Pod(cluster.namespace(pod.namespace).name.clone(), pod.name.clone()))
    }

    /// Moves back to the first node when the current place is gone; says so.
    fn leave_if_gone(&mut self) -> String {
        if self.place().is_ok() {
            return String::new();
        }
        self.context = self.default_context();
        format!("# commands now run in {}\n", self.context_name())
    }

    fn default_context(&self) -> Context {
        match self.net.nodes().first() {
            Some(n) => Context::Node(self.net.cluster().node(n.id).name.clone()),
            None => Context::Internet,
        }
    }

    /// Where plain commands run now.
    fn place(&self) -> Result<Place, ShellError> {
        let source = match &self.context {
            Context::Internet => Source::Internet,
            Context::Node(n) => match self.net.cluster().node_by_name(n) {
                Some(node) => Source::Node(node.id),
                None => return usage(format!("node {n} is gone; `use` another place")),
            },
            Context::Pod(ns, name) => Source::Pod(self.running_pod(ns, name)?),
        };
        let ns = self.net.source_ns(source)?;
        Ok(Place { ns, source: Some(source) })
    }
}

fn build(cluster: Cluster, seed: u64) -> Result<ClusterNet, ClusterError> {
    ClusterNet::build(cluster, ClusterOptions { seed, ..ClusterOptions::default() })
}

/// What `help` prints.
pub const HELP: &str = "\
Commands (one per line; quotes and backslashes work as in a shell, # starts a comment):

  Linux tools, run in the current place (a node's namespace at first):
    ip ...                      iproute2: addr, link, route, neigh (ip -n NETNS ... elsewhere)
    ping [-c N] HOST            ICMP echo; HOST may be a DNS name
    traceroute HOST             the hops to HOST
    curl [-m S] URL             HTTP GET; the host may be a Service name
    nc [-u] [-z] HOST PORT      open a connection; nc -l PORT listens in the background
    nslookup NAME, dig NAME [TYPE]   ask the cluster DNS (pods use kube-dns, nodes the upstream)
    iptables ..., conntrack -L, sysctl ..., bridge ..., tc ..., sleep S
    ip netns exec NETNS CMD     run CMD in another namespace (`ip netns list` names them)

  Places:
    use POD|NODE|internet       where plain commands run (POD is ns/name, or a name in default)
    use                         say where that is

  kubectl:
    kubectl get pods|svc|endpoints|netpol|nodes [NAME...] [-n NS|-A] [-o wide]
    kubectl apply -f PATH [-n NS]        (or: kubectl apply -f - <<EOF ... EOF)
    kubectl delete pod|svc|netpol NAME... [-n NS]
    kubectl exec POD [-n NS] -- CMD ARGS...

  explain FROM TO PORT          why NetworkPolicy allows or denies it (explain client web 80/TCP)
  help, exit, quit

NetworkPolicy changes and pod deletions act on the running cluster; other changes rebuild it
(pods keep their addresses). Time is virtual: a 30 s timeout costs no waiting.
A command fails when it cannot run; what the network answered (lost pings, a refused
connection) is its output. Reading a script from standard input, kns shell exits 1 if any
command failed.
";
