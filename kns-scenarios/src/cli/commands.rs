//! The bodies of the `kns` subcommands.

use std::net::IpAddr;
use std::path::PathBuf;

use kns_core::policy::{self, PolicyEngine, ReferenceEngine};
use kns_core::{Cluster, Flow, FlowEnd, PortProtocol};

use super::error::CliError;
use super::input::load_cluster;
use super::render::MatrixView;
use super::{MatrixEngine, MatrixFormat, MatrixMode};

/// Loads the manifests, printing their warnings on standard error.
pub(super) fn load(files: &[PathBuf]) -> Result<Cluster, CliError> {
    let loaded = load_cluster(files)?;
    for w in &loaded.warnings {
        eprintln!("warning: {}", w.render());
    }
    Ok(loaded.cluster)
}

/// `kns matrix`: reachability of every pod to every pod, per port.
pub fn matrix(
    files: &[PathBuf],
    ports: &[PortProtocol],
    output: MatrixFormat,
    mode: MatrixMode,
    engine: MatrixEngine,
    seed: u64,
) -> Result<String, CliError> {
    let cluster = load(files)?;
    let ports = if ports.is_empty() { policy::default_ports(&cluster) } else { ports.to_vec() };
    if ports.is_empty() {
        return Err(CliError::Usage(
            "no pod declares a container port; name the ports to probe with --port 80/TCP".into(),
        ));
    }
    let (view, outcomes) = match mode {
        MatrixMode::Policy => (matrix_view(&cluster, &ports, engine), None),
        MatrixMode::Packet => {
            // The model stays here: the HTML page explains each cell with it.
            let (view, words) = super::cluster::packet_matrix_view(cluster.clone(), &ports, seed)?;
            (view, Some(words))
        }
    };
    render(&cluster, &view, outcomes.as_deref(), output, files, mode)
}

/// Renders a matrix in the requested format.
fn render(
    cluster: &Cluster,
    view: &MatrixView,
    outcomes: Option<&[Vec<Vec<&'static str>>]>,
    output: MatrixFormat,
    files: &[PathBuf],
    mode: MatrixMode,
) -> Result<String, CliError> {
    Ok(match output {
        MatrixFormat::Table => view.to_table(),
        MatrixFormat::Json => view.to_json(),
        MatrixFormat::Csv => view.to_csv(),
        MatrixFormat::Html => {
            let page =
                super::html::HtmlPage { files: super::graph::file_names(files), mode, outcomes };
            super::html::matrix_html(cluster, view, &page)?
        }
    })
}

/// Computes the policy matrix with `engine` and turns it into a renderable view.
pub fn matrix_view(cluster: &Cluster, ports: &[PortProtocol], engine: MatrixEngine) -> MatrixView {
    let m = match engine.resolve(cluster.pods.len()) {
        MatrixEngine::Reference => policy::matrix(&ReferenceEngine, cluster, ports),
        MatrixEngine::Indexed | MatrixEngine::Auto => policy::fast_matrix(cluster, ports),
    };
    let pods: Vec<String> = m.pods().iter().map(|p| cluster.pod_ref(*p)).collect();
    let n = pods.len();
    let probes = m
        .ports()
        .iter()
        .enumerate()
        .map(|(pi, pp)| {
            let grid =
                (0..n).map(|from| (0..n).map(|to| m.allowed(pi, from, to)).collect()).collect();
            (*pp, grid)
        })
        .collect();
    MatrixView { pods, probes }
}

/// `kns explain`: the verdict for one connection and its reasons.
pub fn explain(
    files: &[PathBuf],
    from: &str,
    to: &str,
    port: PortProtocol,
) -> Result<String, CliError> {
    let cluster = load(files)?;
    let flow = Flow { src: flow_end(&cluster, from)?, dst: flow_end(&cluster, to)?, port };
    let verdict = ReferenceEngine.evaluate(&cluster, &flow);
    let mut text = verdict.explain(&cluster, &flow);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Resolves `namespace/name` to a pod, or parses an address outside the cluster.
fn flow_end(cluster: &Cluster, text: &str) -> Result<FlowEnd, CliError> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(match cluster.pod_by_ip(ip) {
            Some(pod) => FlowEnd::Pod(pod.id),
            None => FlowEnd::External(ip),
        });
    }
    match cluster.pod_by_ref(text) {
        Some(pod) => Ok(FlowEnd::Pod(pod.id)),
        None => {
            let known: Vec<String> =
                cluster.pods_sorted().iter().take(8).map(|p| cluster.pod_ref(*p)).collect();
            Err(CliError::Usage(format!(
                "no pod `{text}` in the manifests (write namespace/name or an IP address; pods include: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )))
        }
    }
}
