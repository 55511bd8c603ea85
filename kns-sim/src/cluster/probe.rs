//! Real connections through a living cluster: one probe for `kns probe`, and every pod to
//! every pod for `kns matrix --mode packet`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kns_core::flow::PortProtocol;
use kns_core::model::PodId;

use super::{ClusterError, ClusterNet};
use crate::net::NetnsId;
use crate::stack::SmolStack;
use crate::stack::apps::{
    ConnectProbe, ProbeBatch, ProbeConfig, ProbeOutcome, ProbeResult, ProbeSpec,
};

/// Where a probe starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A pod (its own namespace, or its node's for hostNetwork pods).
    Pod(PodId),
    /// A node's own namespace (a node agent such as the kubelet).
    Node(kns_core::model::NodeId),
    /// The internet host outside the cluster.
    Internet,
}

/// One probe's verdict, in the words the CLI prints.
pub fn outcome_word(outcome: &ProbeOutcome) -> &'static str {
    match outcome {
        ProbeOutcome::Connected { .. } => "connected",
        ProbeOutcome::Refused => "refused",
        ProbeOutcome::Filtered => "filtered",
        ProbeOutcome::Unreachable { .. } => "unreachable",
        ProbeOutcome::Failed(_) => "failed",
    }
}

/// Whether the network delivered the probe to its destination: it connected, or the
/// destination itself refused (nothing listens there). Filtered and unreachable probes did
/// not get through.
pub fn delivered(outcome: &ProbeOutcome) -> bool {
    matches!(outcome, ProbeOutcome::Connected { .. } | ProbeOutcome::Refused)
}

/// The outcomes of a packet-mode matrix: `outcomes[port][from][to]`, pods in `pods` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketMatrix {
    /// The pods, in row and column order.
    pub pods: Vec<PodId>,
    /// The probed ports.
    pub ports: Vec<PortProtocol>,
    /// One outcome per port, source and destination.
    pub outcomes: Vec<Vec<Vec<ProbeOutcome>>>,
    /// Virtual time the whole matrix took.
    pub virtual_time: Duration,
}

impl ClusterNet {
    /// The namespace a source's traffic starts in.
    pub fn source_ns(&self, source: Source) -> Result<NetnsId, ClusterError> {
        match source {
            Source::Pod(p) => self.pod_ns(p).ok_or_else(|| {
                ClusterError::NotFound(format!("pod {} is not running", self.cluster.pod_ref(p)))
            }),
            Source::Node(n) => Ok(self.nodes[n.index()].ns),
            Source::Internet => Ok(self.outside.internet),
        }
    }

    /// Opens one connection from `source` to `to` and waits for its outcome.
    pub fn probe(
        &mut self,
        source: Source,
        to: SocketAddr,
        protocol: kns_core::flow::Protocol,
        config: ProbeConfig,
    ) -> Result<ProbeResult, ClusterError> {
        let ns = self.source_ns(source)?;
        let limit = config.timeout + config.reply_wait + Duration::from_secs(5);
        let stack = self.stack_of(ns)?;
        let id = stack.spawn(ConnectProbe::new(ProbeSpec::new(to, protocol), config));
        self.sim.kick(ns);
        let deadline = self.sim.now() + limit;
        loop {
            let stack = self.stack_of(ns)?;
            if let Some(r) = stack.app::<ConnectProbe>(id).and_then(|p| p.result()) {
                return Ok(r.clone());
            }
            if self.sim.now() >= deadline || !self.sim.step() {
                let stack = self.stack_of(ns)?;
                if let Some(r) = stack.app::<ConnectProbe>(id).and_then(|p| p.result()) {
                    return Ok(r.clone());
                }
                return Err(ClusterError::Build(format!("the probe to {to} did not finish")));
            }
        }
    }

    fn stack_of(&mut self, ns: NetnsId) -> Result<&mut SmolStack, ClusterError> {
        let name = self.sim.netns_name(ns).to_string();
        self.sim
            .stack_mut::<SmolStack>(ns)
            .ok_or_else(|| ClusterError::NotFound(format!("namespace {name} has no socket stack")))
    }

    /// Probes every running pod from every running pod on each port, all sources at once, and
    /// waits until every probe has finished.
    pub fn packet_matrix(
        &mut self,
        ports: &[PortProtocol],
        config: &ProbeConfig,
    ) -> Result<PacketMatrix, ClusterError> {
        let pods: Vec<PodId> =
            self.cluster.pods_sorted().into_iter().filter(|p| self.pods.contains_key(p)).collect();
        let targets: Vec<IpAddr> = pods.iter().map(|p| self.cluster.pod(*p).ip).collect();
        let start = self.sim.now();
        let mut batches = Vec::with_capacity(pods.len());
        for &from in &pods {
            let specs: Vec<ProbeSpec> = ports
                .iter()
                .flat_map(|pp| {
                    targets
                        .iter()
                        .map(move |ip| ProbeSpec::new(SocketAddr::new(*ip, pp.port), pp.protocol))
                })
                .collect();
            let ns = self.source_ns(Source::Pod(from))?;
            let stack = self.stack_of(ns)?;
            let id = stack.spawn(ProbeBatch::new(specs, config.clone()));
            self.sim.kick(ns);
            batches.push((ns, id));
        }
        let total = pods.len() * pods.len() * ports.len();
        let mut outcomes =
            vec![vec![vec![ProbeOutcome::Filtered; pods.len()]; pods.len()]; ports.len()];
        let mut done = vec![false; batches.len()];
        let mut remaining = batches.len();
        let mut steps: u64 = 0;
        while remaining > 0 {
            if !self.sim.step() {
                break;
            }
            // Checking every batch after every event would be quadratic: look now and then.
            steps += 1;
            if !steps.is_multiple_of(4096) {
                continue;
            }
            remaining = self.collect(&batches, &mut done, &mut outcomes, pods.len());
        }
        remaining = self.collect(&batches, &mut done, &mut outcomes, pods.len());
        if remaining > 0 {
            return Err(ClusterError::Build(format!(
                "{remaining} of {} probe batches ({total} probes) did not finish",
                batches.len()
            )));
        }
        Ok(PacketMatrix {
            pods,
            ports: ports.to_vec(),
            outcomes,
            virtual_time: self.sim.now().saturating_since(start),
        })
    }

    fn collect(
        &mut self,
        batches: &[(NetnsId, crate::stack::AppId)],
        done: &mut [bool],
        outcomes: &mut [Vec<Vec<ProbeOutcome>>],
        n: usize,
    ) -> usize {
        let mut remaining = 0;
        for (from, &(ns, id)) in batches.iter().enumerate() {
            if done[from] {
                continue;
            }
            let Some(stack) = self.sim.stack_mut::<SmolStack>(ns) else { continue };
            let Some(batch) = stack.app::<ProbeBatch>(id) else { continue };
            if batch.finished_at().is_none() {
                remaining += 1;
                continue;
            }
            for (k, r) in batch.results().iter().enumerate() {
                if let Some(r) = r {
                    outcomes[k / n][from][k % n] = r.outcome.clone();
                }
            }
            done[from] = true;
        }
        remaining
    }
}
