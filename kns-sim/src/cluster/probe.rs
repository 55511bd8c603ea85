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
    /// waits until every probe has finished. A probe that timed out is tried once more, a few at
    /// a time, as the upstream conformance probes retry: the first burst of thousands of
    /// simultaneous handshakes can overflow a device queue, and a frame lost that way must not
    /// read as a policy drop.
    pub fn packet_matrix(
        &mut self,
        ports: &[PortProtocol],
        config: &ProbeConfig,
    ) -> Result<PacketMatrix, ClusterError> {
        let pods: Vec<PodId> =
            self.cluster.pods_sorted().into_iter().filter(|p| self.pods.contains_key(p)).collect();
        let targets: Vec<IpAddr> = pods.iter().map(|p| self.cluster.pod(*p).ip).collect();
        let n = pods.len();
        let start = self.sim.now();
        let mut sources = Vec::with_capacity(n);
        for &from in &pods {
            let specs: Vec<ProbeSpec> = ports
                .iter()
                .flat_map(|pp| {
                    targets
                        .iter()
                        .map(move |ip| ProbeSpec::new(SocketAddr::new(*ip, pp.port), pp.protocol))
                })
                .collect();
            sources.push((self.source_ns(Source::Pod(from))?, specs));
        }
        let first = self.run_batches(&sources, config)?;
        let mut outcomes = vec![vec![vec![ProbeOutcome::Filtered; n]; n]; ports.len()];
        let mut retry = Vec::with_capacity(n);
        let mut retry_cells = Vec::with_capacity(n);
        for (from, results) in first.into_iter().enumerate() {
            let mut specs = Vec::new();
            let mut cells = Vec::new();
            for (k, outcome) in results.into_iter().enumerate() {
                if outcome == ProbeOutcome::Filtered {
                    specs.push(sources[from].1[k]);
                    cells.push(k);
                }
                outcomes[k / n][from][k % n] = outcome;
            }
            retry.push((sources[from].0, specs));
            retry_cells.push(cells);
        }
        let quiet = ProbeConfig { concurrency: config.concurrency.clamp(1, 4), ..config.clone() };
        let second = self.run_batches(&retry, &quiet)?;
        for (from, results) in second.into_iter().enumerate() {
            for (outcome, &k) in results.into_iter().zip(&retry_cells[from]) {
                outcomes[k / n][from][k % n] = outcome;
            }
        }
        Ok(PacketMatrix {
            pods,
            ports: ports.to_vec(),
            outcomes,
            virtual_time: self.sim.now().saturating_since(start),
        })
    }

    /// Runs one probe batch per source (sources without probes are skipped) and returns each
    /// batch's outcomes in spec order.
    fn run_batches(
        &mut self,
        sources: &[(NetnsId, Vec<ProbeSpec>)],
        config: &ProbeConfig,
    ) -> Result<Vec<Vec<ProbeOutcome>>, ClusterError> {
        let mut batches = Vec::with_capacity(sources.len());
        for (ns, specs) in sources {
            if specs.is_empty() {
                batches.push(None);
                continue;
            }
            let stack = self.stack_of(*ns)?;
            let id = stack.spawn(ProbeBatch::new(specs.clone(), config.clone()));
            self.sim.kick(*ns);
            batches.push(Some((*ns, id)));
        }
        let mut results: Vec<Option<Vec<ProbeOutcome>>> =
            batches.iter().map(|b| if b.is_none() { Some(Vec::new()) } else { None }).collect();
        let mut steps: u64 = 0;
        loop {
            // Checking every batch after every event would be quadratic: look now and then.
            let idle = !self.sim.step();
            steps += 1;
            if !idle && !steps.is_multiple_of(4096) {
                continue;
            }
            let mut remaining = 0;
            for (i, b) in batches.iter().enumerate() {
                let (Some((ns, id)), None) = (b, &results[i]) else { continue };
                let batch =
                    self.sim.stack_mut::<SmolStack>(*ns).and_then(|s| s.app::<ProbeBatch>(*id));
                match batch {
                    Some(batch) if batch.finished_at().is_some() => {
                        let outs = batch
                            .results()
                            .iter()
                            .map(|r| {
                                r.as_ref().map_or(ProbeOutcome::Filtered, |r| r.outcome.clone())
                            })
                            .collect();
                        results[i] = Some(outs);
                    }
                    _ => remaining += 1,
                }
            }
            if remaining == 0 {
                break;
            }
            if idle {
                return Err(ClusterError::Build(format!(
                    "{remaining} of {} probe batches did not finish",
                    batches.len()
                )));
            }
        }
        Ok(results.into_iter().map(Option::unwrap_or_default).collect())
    }
}
