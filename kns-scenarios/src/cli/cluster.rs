//! `kns cluster` and `kns probe`: the manifests built into a living emulated cluster.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use kns_core::{Cluster, PortProtocol};
use kns_sim::cluster::{ClusterNet, ClusterOptions, Source, delivered, outcome_word};
use kns_sim::stack::apps::ProbeConfig;

use super::error::CliError;
use super::input::load_cluster_with_ingress;

/// Builds the cluster of the manifests, printing its warnings on standard error. Manifests
/// with Ingress objects and no ingress controller get kns's built-in one (said on standard
/// error), as a cluster with an ingress addon would have.
pub fn build(files: &[PathBuf], seed: u64) -> Result<ClusterNet, CliError> {
    let (loaded, added) = load_cluster_with_ingress(files)?;
    for w in &loaded.warnings {
        eprintln!("warning: {}", w.render());
    }
    let net =
        ClusterNet::build(loaded.cluster, ClusterOptions { seed, ..ClusterOptions::default() })
            .map_err(|e| CliError::Usage(format!("building the cluster: {e}")))?;
    if added {
        let port = net.ingress_node_port().map_or("none".to_string(), |p| p.to_string());
        eprintln!(
            "note: the manifests have Ingress objects and no ingress controller; added kns's \
             built-in one: pod {ns}/{name}, NodePort Service {ns}/{name} (http node port {port}; \
             https refused, no TLS)",
            ns = kns_core::ingress::CONTROLLER_NAMESPACE,
            name = kns_core::ingress::CONTROLLER_NAME,
        );
    }
    for w in net.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(net)
}

/// `kns cluster`: nodes, pods, addresses and routes of the built cluster.
pub fn cluster(files: &[PathBuf], seed: u64) -> Result<String, CliError> {
    let mut net = build(files, seed)?;
    Ok(net.show())
}

/// Resolves a source: `namespace/name`, a node name, or `internet`.
pub(super) fn pod_source(cluster: &Cluster, text: &str) -> Result<Source, CliError> {
    crate::scenario::endpoints::source(cluster, text).map_err(|e| CliError::Usage(e.to_string()))
}

/// Options of `kns probe`.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Print every hop of every frame of the connection.
    pub trace: bool,
    /// Capture the source's `eth0` into this pcap file.
    pub pcap: Option<PathBuf>,
    /// Seed of every random choice.
    pub seed: u64,
}

/// `kns probe`: one connection and its result.
pub fn probe(
    files: &[PathBuf],
    from: &str,
    to: &str,
    port: PortProtocol,
    opts: &ProbeOptions,
) -> Result<String, CliError> {
    let mut net = build(files, opts.seed)?;
    let source = pod_source(net.cluster(), from)?;
    let mut dns = String::new();
    let (dst_ip, dst_name) = match to.parse::<IpAddr>() {
        Ok(ip) => (ip, net.cluster().pod_by_ip(ip).map(|p| net.cluster().pod_ref(p.id))),
        Err(_) => match net.cluster().pod_by_ref(to) {
            Some(p) => (p.ip, Some(net.cluster().pod_ref(p.id))),
            None => match to.strip_prefix("svc/") {
                Some(svc) => {
                    let (name, ns) = svc.split_once('.').unwrap_or((svc, "default"));
                    let ip = net
                        .cluster()
                        .service_by_name(ns, name)
                        .and_then(|s| s.cluster_ip)
                        .ok_or_else(|| {
                            CliError::Usage(format!(
                                "no Service `{name}` with a cluster IP in `{ns}`"
                            ))
                        })?;
                    (ip, Some(format!("service {ns}/{name}")))
                }
                // Anything else is a name, resolved inside the source as its resolver would.
                None => {
                    let ip = super::service::resolve(&mut net, source, to, &mut dns)?;
                    (ip, Some(to.to_string()))
                }
            },
        },
    };
    let src_ns = net.source_ns(source).map_err(|e| CliError::Usage(e.to_string()))?;
    let capture = match &opts.pcap {
        Some(_) => Some(
            net.sim_mut()
                .capture(src_ns, "eth0")
                .map_err(|e| CliError::Usage(format!("--pcap: {e}")))?,
        ),
        None => None,
    };
    if opts.trace {
        net.sim_mut().enable_trace();
    }
    let decided = |net: &ClusterNet| -> Vec<u64> {
        net.kube_proxies()
            .iter()
            .map(|kp| {
                let c = kp.counters();
                c.forwarded + c.refused + c.dropped
            })
            .collect()
    };
    let before = decided(&net);
    let result = net
        .probe(source, SocketAddr::new(dst_ip, port.port), port.protocol, ProbeConfig::default())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut out = String::new();
    let dst_text = match dst_name {
        Some(name) => format!("{name} ({dst_ip})"),
        None => dst_ip.to_string(),
    };
    out.push_str(&dns);
    out.push_str(&format!("probe {from} -> {dst_text} port {port}\n"));
    if opts.trace {
        out.push_str("\n# every hop, in order\n");
        for event in net.sim_mut().take_trace() {
            out.push_str(&format!("{event}\n"));
        }
        out.push('\n');
        // kube-proxy's decisions for this connection: the DNAT and the chosen backend.
        let after = decided(&net);
        for (i, (node, kp)) in net.nodes().iter().zip(net.kube_proxies()).enumerate() {
            let name = &net.cluster().node(node.id).name;
            let new = usize::try_from(after[i] - before[i]).unwrap_or(usize::MAX);
            let log = kp.decisions();
            for (_, line) in &log[log.len().saturating_sub(new)..] {
                out.push_str(&format!("kube-proxy on {name}: {line}\n"));
            }
        }
    }
    out.push_str(&format!("result: {}\n", result.outcome));
    if let (Some(id), Some(path)) = (capture, &opts.pcap) {
        write_pcap(&net, id, path)?;
    }
    Ok(out)
}

fn write_pcap(net: &ClusterNet, id: kns_sim::net::CaptureId, path: &Path) -> Result<(), CliError> {
    let f = std::fs::File::create(path)
        .map_err(|e| CliError::Io { path: path.display().to_string(), source: e })?;
    let n = net.sim().write_pcap(id, std::io::BufWriter::new(f)).map_err(|e| CliError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    eprintln!("captured {n} frames into {}", path.display());
    Ok(())
}

/// Each probe's outcome word (`connected`, `refused`, `filtered`, ...), `[port][from][to]`.
pub type Outcomes = Vec<Vec<Vec<&'static str>>>;

/// `kns matrix --mode packet`: a real connection per pair and port, in the policy matrix's
/// shape (a cell is true when the destination itself answered), with each probe's outcome
/// word (`connected`, `refused`, `filtered`, ...) in the same `[port][from][to]` order.
pub fn packet_matrix_view(
    cluster: Cluster,
    ports: &[PortProtocol],
    seed: u64,
) -> Result<(super::MatrixView, Outcomes), CliError> {
    let mut net = ClusterNet::build(cluster, ClusterOptions { seed, ..ClusterOptions::default() })
        .map_err(|e| CliError::Usage(format!("building the cluster: {e}")))?;
    for w in net.warnings() {
        eprintln!("warning: {w}");
    }
    packet_view(&mut net, ports)
}

/// Probes every pair of pods of a built cluster on `ports` (see [`packet_matrix_view`]).
pub fn packet_view(
    net: &mut ClusterNet,
    ports: &[PortProtocol],
) -> Result<(super::MatrixView, Outcomes), CliError> {
    let config = net.matrix_probe_config();
    let m = net.packet_matrix(ports, &config).map_err(|e| CliError::Internal(e.to_string()))?;
    let pods: Vec<String> = m.pods.iter().map(|p| net.cluster().pod_ref(*p)).collect();
    let probes = m
        .ports
        .iter()
        .zip(&m.outcomes)
        .map(|(pp, grid)| {
            let grid = grid.iter().map(|row| row.iter().map(delivered).collect()).collect();
            (*pp, grid)
        })
        .collect();
    let words = m
        .outcomes
        .iter()
        .map(|grid| grid.iter().map(|row| row.iter().map(outcome_word).collect()).collect())
        .collect();
    Ok((super::MatrixView { pods, probes }, words))
}
