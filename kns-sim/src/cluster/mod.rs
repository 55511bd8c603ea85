//! A living cluster: a [`Cluster`] model turned into namespaces, devices, routes and
//! programs, the way a real one is assembled.
//!
//! [`ClusterNet::build`] creates the machines ([`topology`]): the node network, a router to the
//! internet, one namespace per node. A flannel-like network daemon installs the routes between
//! nodes (host-gw or VXLAN, [`kns_core::model::CniMode`]). A kubelet-like agent per node then
//! creates each pod's namespace and runs the node's CNI configuration ([`kubelet`]).

pub mod dns;
pub mod graph;
pub mod ingress;
pub mod kubelet;
pub mod probe;
pub mod show;
pub mod speaker;
pub mod topology;

use std::collections::BTreeMap;
use std::net::IpAddr;

use kns_core::model::{Cluster, NodeId, PodId};
use kns_core::proxy::proxy_for;

use crate::kube_proxy::KubeProxy;
use crate::net::{NetnsId, Sim};
use crate::policy_agent::{PolicyAgent, policy_warning};
use crate::stack::{SmolStack, StackConfig};

pub use dns::{DnsLookup, is_dns_pod};
pub use graph::Topology;
pub use kubelet::PodNet;
pub use probe::{PacketMatrix, Source, delivered, outcome_word};
pub use speaker::Announcement;
pub use topology::{NodeNet, Outside};

/// Why a cluster could not be built or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// Wiring the machines failed (the message names what).
    #[error("{0}")]
    Build(String),
    /// A CNI operation failed for a pod.
    #[error("pod {pod}: CNI {command} failed: {message}")]
    Cni {
        /// `namespace/name` of the pod.
        pod: String,
        /// ADD, DEL or CHECK.
        command: &'static str,
        /// The plugin's error, with its code.
        message: String,
    },
    /// No such pod or node.
    #[error("{0}")]
    NotFound(String),
}

/// Choices that are not part of the cluster model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Seeds every random choice of the run.
    pub seed: u64,
    /// Whether to attach a socket stack to every node (for node agents and hostNetwork pods).
    pub node_stacks: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions { seed: 1, node_stacks: true }
    }
}

/// A cluster model brought to life in a [`Sim`].
pub struct ClusterNet {
    sim: Sim,
    cluster: Cluster,
    outside: Outside,
    nodes: Vec<NodeNet>,
    node_cni: Vec<kubelet::NodeCni>,
    pods: BTreeMap<PodId, PodNet>,
    agent: Option<PolicyAgent>,
    proxies: Vec<KubeProxy>,
    dns: Option<dns::DnsApp>,
    ingress: Vec<ingress::IngressApp>,
    speaker: speaker::Speaker,
    warnings: Vec<String>,
}

impl ClusterNet {
    /// Builds the machines and the pod network, then creates every pod of `cluster`.
    pub fn build(cluster: Cluster, options: ClusterOptions) -> Result<ClusterNet, ClusterError> {
        Self::build_with_progress(cluster, options, &mut |_, _| {})
    }

    /// [`build`](Self::build), calling `progress(started, total)` after each pod is started
    /// (for a progress bar; the machines before the first pod take a small part of the time).
    pub fn build_with_progress(
        cluster: Cluster,
        options: ClusterOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ClusterNet, ClusterError> {
        let mut sim = Sim::new(options.seed);
        let (outside, nodes) = topology::build_machines(&mut sim, &cluster)?;
        topology::install_pod_routes(&mut sim, &cluster, &nodes)?;
        if options.node_stacks {
            for ns in nodes.iter().map(|n| n.ns).chain([outside.internet]) {
                let seed = sim.child_seed();
                let stack = SmolStack::new(StackConfig::with_seed(seed), sim.now());
                sim.attach_stack(ns, stack);
            }
        }
        let node_cni = nodes.iter().map(|n| kubelet::NodeCni::new(&cluster, n)).collect();
        let agent = PolicyAgent::for_cluster(&cluster);
        if let Some(agent) = &agent {
            for n in &nodes {
                agent
                    .install(&mut sim, n.ns, n.id)
                    .map_err(|e| ClusterError::Build(e.to_string()))?;
            }
        }
        let mut proxies = Vec::with_capacity(nodes.len());
        let table = std::rc::Rc::new(kns_core::proxy::ServiceTable::from_cluster(&cluster));
        for n in &nodes {
            let seed = sim.child_seed();
            let proxy = proxy_for(cluster.config.proxy, seed);
            let kp = KubeProxy::with_table(std::rc::Rc::clone(&table), &cluster, n.id, proxy);
            kp.install(&mut sim, n.ns);
            proxies.push(kp);
        }
        let warnings = policy_warning(&cluster, agent.is_some())
            .into_iter()
            .chain(ingress::missing_controller_warning(&cluster))
            .collect();
        let mut net = ClusterNet {
            sim,
            cluster,
            outside,
            nodes,
            node_cni,
            pods: BTreeMap::new(),
            agent,
            proxies,
            dns: None,
            ingress: Vec::new(),
            speaker: speaker::Speaker::default(),
            warnings,
        };
        net.start_upstream();
        let pods = net.cluster.pods_sorted();
        for (i, pod) in pods.iter().enumerate() {
            net.start_pod(*pod, 0, true)?;
            progress(i + 1, pods.len());
        }
        net.sync_agent();
        Ok(net)
    }

    /// The simulator.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// The simulator, to drive it or to change the network by hand.
    pub fn sim_mut(&mut self) -> &mut Sim {
        &mut self.sim
    }

    /// The cluster model as the network currently realises it (pod IPs follow restarts).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The router and the internet host.
    pub fn outside(&self) -> &Outside {
        &self.outside
    }

    /// Every node's namespace and addresses, by `NodeId` order.
    pub fn nodes(&self) -> &[NodeNet] {
        &self.nodes
    }

    /// A node's namespace and addresses.
    pub fn node(&self, id: NodeId) -> &NodeNet {
        &self.nodes[id.index()]
    }

    /// A running pod's namespace and wiring (`None` once deleted).
    pub fn pod(&self, id: PodId) -> Option<&PodNet> {
        self.pods.get(&id)
    }

    /// The namespace a pod's traffic starts in: its own, or its node's for hostNetwork pods.
    pub fn pod_ns(&self, id: PodId) -> Option<NetnsId> {
        self.pods.get(&id).map(|p| p.ns)
    }

    /// The pod's current address.
    pub fn pod_ip(&self, id: PodId) -> IpAddr {
        self.cluster.pod(id).ip
    }

    /// The NetworkPolicy agent (`None` when the cluster's plugin does not enforce policy).
    pub fn policy_agent(&self) -> Option<&PolicyAgent> {
        self.agent.as_ref()
    }

    /// Hands the policy agent, every node's kube-proxy, the DNS server and the load-balancer
    /// speaker ([`speaker`]) the current model (after pods, Services or policies changed). kube-proxy sees pods that are not running as not ready,
    /// so endpoints follow the pods' current addresses and leave with deleted pods.
    pub fn sync_agent(&mut self) {
        if let Some(agent) = &self.agent {
            agent.update(self.cluster.clone());
        }
        let live = self.live_cluster();
        let table = std::rc::Rc::new(kns_core::proxy::ServiceTable::from_cluster(&live));
        for kp in &self.proxies {
            kp.set_table(std::rc::Rc::clone(&table), &live);
        }
        self.sync_dns(&live);
        self.sync_ingress(&live);
        self.sync_speaker(&live);
    }

    /// The model with pods that are not running marked not ready (what endpoints see).
    fn live_cluster(&self) -> Cluster {
        live_model(&self.cluster, |id| self.pods.contains_key(&id))
    }

    /// kube-proxy on every node, by `NodeId` order.
    pub fn kube_proxies(&self) -> &[KubeProxy] {
        &self.proxies
    }

    /// kube-proxy on one node.
    pub fn kube_proxy(&self, node: NodeId) -> &KubeProxy {
        &self.proxies[node.index()]
    }

    /// Replaces the NetworkPolicies and lets the agent enforce the new set. Established
    /// connections keep working; new ones obey the new policies.
    pub fn set_policies(&mut self, policies: Vec<kns_core::model::NetworkPolicy>) {
        self.cluster.policies = policies;
        self.sync_agent();
    }

    /// Creates a Service in the running cluster, as `kubectl apply` would: it takes the next
    /// [`ServiceId`](kns_core::model::ServiceId), and kube-proxy, DNS and the load-balancer
    /// speaker learn of it. Its cluster IP, node ports and load-balancer addresses are taken as
    /// given (`id` is overwritten). Pods already running do not see it in their environment.
    pub fn add_service(
        &mut self,
        mut service: kns_core::model::Service,
    ) -> Result<kns_core::model::ServiceId, ClusterError> {
        let c = &self.cluster;
        if service.namespace.index() >= c.namespaces.len() {
            return Err(ClusterError::NotFound(format!(
                "Service {}: no namespace with id {}",
                service.name, service.namespace.0
            )));
        }
        let ns = &c.namespace(service.namespace).name;
        if c.service_by_name(ns, &service.name).is_some() {
            return Err(ClusterError::Build(format!(
                "Service {ns}/{} already exists",
                service.name
            )));
        }
        if let Some(ip) = service.cluster_ip {
            if !c.config.service_cidr.contains(&ip) {
                return Err(ClusterError::Build(format!(
                    "Service {ns}/{}: cluster IP {ip} is outside the service CIDR {}",
                    service.name, c.config.service_cidr
                )));
            }
            if let Some(other) = c.services.iter().find(|s| s.cluster_ip == Some(ip)) {
                return Err(ClusterError::Build(format!(
                    "Service {ns}/{}: cluster IP {ip} is already used by {}/{}",
                    service.name,
                    c.namespace(other.namespace).name,
                    other.name
                )));
            }
        }
        service.id = kns_core::model::ServiceId::from_index(c.services.len());
        let id = service.id;
        self.cluster.services.push(service);
        self.sync_agent();
        Ok(id)
    }

    /// Things the user should know (for example: policies exist but nothing enforces them).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// The model as the endpoints controller sees it: pods for which `running` is false are not
/// ready, so no Service sends them traffic. kube-proxy derives endpoints from the pods'
/// current addresses ([`kns_core::proxy::ServiceTable::from_cluster`]); the controller-made
/// EndpointSlices the loader wrote (those of Services with a selector, which DNS reads) are
/// brought up to date the same way: each pod endpoint takes the pod's current addresses and
/// readiness. Slices of Services without a selector are the user's and stay as written.
fn live_model(cluster: &Cluster, running: impl Fn(PodId) -> bool) -> Cluster {
    let mut live = cluster.clone();
    for p in &mut live.pods {
        if !running(p.id) {
            p.ready = false;
        }
    }
    let managed: std::collections::BTreeMap<(kns_core::model::NamespaceId, &str), bool> = cluster
        .services
        .iter()
        .filter(|s| s.selector.is_some())
        .map(|s| ((s.namespace, s.name.as_str()), s.publish_not_ready_addresses))
        .collect();
    for slice in &mut live.endpoint_slices {
        let Some(&publish) = managed.get(&(slice.namespace, slice.service_name.as_str())) else {
            continue;
        };
        for e in &mut slice.endpoints {
            let Some(pod) = e.pod else { continue };
            let p = &live.pods[pod.index()];
            e.addresses = p.ips.clone();
            e.ready = p.ready || publish;
        }
    }
    live
}

impl ClusterNet {
    /// Starts `app` on the socket stack of `ns` and runs the world until `done` returns a
    /// value or `limit` of virtual time has passed (then `None`).
    pub fn run_app<A: crate::stack::App, R>(
        &mut self,
        ns: NetnsId,
        app: A,
        limit: std::time::Duration,
        done: impl Fn(&A) -> Option<R>,
    ) -> Result<Option<R>, ClusterError> {
        let name = self.sim.netns_name(ns).to_string();
        let no_stack = || ClusterError::NotFound(format!("namespace {name} has no socket stack"));
        let id = self.sim.stack_mut::<SmolStack>(ns).ok_or_else(no_stack)?.spawn(app);
        self.sim.kick(ns);
        let deadline = self.sim.now() + limit;
        loop {
            let stack = self.sim.stack_mut::<SmolStack>(ns).ok_or_else(no_stack)?;
            if let Some(r) = stack.app::<A>(id).and_then(&done) {
                return Ok(Some(r));
            }
            if self.sim.now() >= deadline {
                return Ok(None);
            }
            if !self.sim.step() {
                self.sim.run_until(deadline);
            }
        }
    }

    /// `ping -c COUNT DST` from `ns`; returns what ping printed.
    pub fn ping(&mut self, ns: NetnsId, dst: IpAddr, count: u16) -> Result<String, ClusterError> {
        use crate::stack::apps::{Ping, PingConfig};
        let limit = std::time::Duration::from_secs(u64::from(count) + 5);
        let out = self.run_app(ns, Ping::new(PingConfig::new(dst, count)), limit, |p| {
            p.finished().then(|| p.output().to_string())
        })?;
        Ok(out.unwrap_or_else(|| format!("ping {dst}: did not finish\n")))
    }
}
