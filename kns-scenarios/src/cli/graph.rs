//! `kns graph`: the living cluster's topology ([`kns_sim::cluster::Topology`]) as Graphviz DOT
//! or SVG, optionally with the connections a policy matrix allows between pods.
//!
//! DOT lists places as `cluster_N` subgraphs in [`Topology::places`] order and vertices and
//! edges in graph order, so the text is the same on every run. SVG comes from Graphviz's `dot`
//! when it is on `PATH`; otherwise (said on standard error) from kns's own layout in
//! [`super::svg`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::ValueEnum;
use kns_core::PortProtocol;
use kns_sim::cluster::Topology;
use kns_sim::cluster::graph::{Edge, Place, Vertex};

use super::error::CliError;
use super::{MatrixMode, MatrixView};

/// Output formats of `kns graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT text.
    Dot,
    /// An SVG picture (Graphviz's `dot` when installed, else kns's built-in layout).
    Svg,
}

/// Options of `kns graph`.
#[derive(Debug, Clone)]
pub struct GraphOptions {
    /// The output format.
    pub output: GraphFormat,
    /// Ports whose allowed pod-to-pod connections are drawn.
    pub allowed: Vec<PortProtocol>,
    /// How reachability is decided for `allowed`.
    pub mode: MatrixMode,
    /// Seed of every random choice.
    pub seed: u64,
}

/// `kns graph`: builds the cluster and draws it.
pub fn graph(files: &[PathBuf], opts: &GraphOptions) -> Result<String, CliError> {
    let mut net = super::cluster::build(files, opts.seed)?;
    let mut topo = net.topology();
    if !opts.allowed.is_empty() {
        let view = match opts.mode {
            MatrixMode::Policy => super::commands::matrix_view(
                net.cluster(),
                &opts.allowed,
                super::MatrixEngine::Auto,
            ),
            MatrixMode::Packet => super::cluster::packet_view(&mut net, &opts.allowed)?.0,
        };
        add_allowed(&mut topo, net.cluster(), &view)?;
    }
    let title = format!("kns graph: {}", file_names(files));
    let dot = to_dot(&topo, &title);
    Ok(match opts.output {
        GraphFormat::Dot => dot,
        GraphFormat::Svg => match graphviz_svg(&dot) {
            Ok(svg) => svg,
            Err(why) => {
                eprintln!("note: {why}; drawing the SVG with kns's built-in layout");
                super::svg::to_svg(&topo, &title)
            }
        },
    })
}

/// The allowed cells of a matrix view as edges of the topology.
fn add_allowed(
    topo: &mut Topology,
    cluster: &kns_core::Cluster,
    view: &MatrixView,
) -> Result<(), CliError> {
    let ids = super::render::pod_ids(cluster, view)?;
    for (port, grid) in &view.probes {
        let pairs = grid.iter().enumerate().flat_map(|(from, row)| {
            let ids = &ids;
            row.iter().enumerate().filter(|(_, a)| **a).map(move |(to, _)| (ids[from], ids[to]))
        });
        topo.add_allowed(*port, pairs);
    }
    Ok(())
}

/// The files as the user named them, comma-separated.
pub(super) fn file_names(files: &[PathBuf]) -> String {
    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Runs Graphviz's `dot -Tsvg` on `dot`, or says why it could not.
fn graphviz_svg(dot: &str) -> Result<String, String> {
    let exe = find_on_path("dot").ok_or("Graphviz's `dot` is not on PATH")?;
    let mut child = Command::new(exe)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running Graphviz's `dot` failed: {e}"))?;
    // Graphviz reads its whole input before it writes; the pipe closes when `stdin` drops.
    // A `dot` that stops early breaks the pipe: its own exit status and message say why.
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(dot.as_bytes()));
    let out = child.wait_with_output().map_err(|e| format!("`dot` failed: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "Graphviz's `dot` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if let Some(Err(e)) = written {
        return Err(format!("writing to Graphviz's `dot` failed: {e}"));
    }
    String::from_utf8(out.stdout).map_err(|_| "`dot` wrote invalid UTF-8".to_string())
}

/// The first executable file named `name` in the directories of `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// A DOT quoted string: `"` and `\` escaped, newlines as DOT's centred line break `\n`.
pub(super) fn dot_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The lines a picture writes in a vertex's box.
pub(super) fn vertex_lines(v: &Vertex) -> Vec<String> {
    match v {
        Vertex::Device(d) => {
            let mut lines = vec![format!("{} ({})", d.name, d.kind.as_str())];
            lines.extend(d.addrs.iter().map(|a| a.to_string()));
            lines
        }
        Vertex::Pod(p) => {
            let mut lines = vec![format!("pod {}", p.name)];
            if p.host_network {
                lines.push(format!("hostNetwork {}", p.ip));
            } else {
                lines.push(format!("netns {}", p.netns));
                for (name, addrs) in &p.ifaces {
                    let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                    lines.push(format!("{name} {}", addrs.join(" ")).trim_end().to_string());
                }
            }
            lines
        }
        Vertex::Service(s) => {
            let ip = s.cluster_ip.map_or_else(|| "None".to_string(), |ip| ip.to_string());
            vec![format!("svc {}", s.name), format!("clusterIP {ip}"), s.ports.join(" ")]
        }
    }
}

/// The words an edge is labelled with.
pub(super) fn edge_label(e: &Edge) -> String {
    match e {
        Edge::Veth { from_if, to_if } => format!("veth {from_if} ↔ {to_if}"),
        Edge::BridgePort => "bridge port".into(),
        Edge::VxlanLower => "vxlan over".into(),
        Edge::Tunnel { remote } => format!("vxlan to {remote}"),
        Edge::Endpoint { ports } => ports.join(", "),
        Edge::Allowed { port } => format!("allowed {port}"),
    }
}

/// The group label of a place: name and details.
fn place_label(topo: &Topology, place: Place) -> String {
    topo.places()
        .iter()
        .find(|p| p.place == place)
        .map_or_else(String::new, |p| format!("{}\n{}", p.name, p.detail))
}

/// The topology in Graphviz DOT.
pub fn to_dot(topo: &Topology, title: &str) -> String {
    let g = topo.graph();
    let mut out = String::from("digraph kns {\n");
    out.push_str(&format!(
        "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=12, labelloc=t, label={}];\n",
        dot_str(title)
    ));
    out.push_str("  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=8];\n");
    for (k, info) in topo.places().iter().enumerate() {
        out.push_str(&format!("  subgraph cluster_{k} {{\n"));
        out.push_str(&format!(
            "    label={}; style=rounded; color=\"#777777\";\n",
            dot_str(&place_label(topo, info.place))
        ));
        for i in g.node_indices().filter(|i| g[*i].place() == info.place) {
            let v = &g[i];
            let style = match v {
                Vertex::Device(_) => "",
                Vertex::Pod(_) => ", style=filled, fillcolor=\"#dbe9ff\"",
                Vertex::Service(_) => ", shape=ellipse, style=filled, fillcolor=\"#fff2cc\"",
            };
            out.push_str(&format!(
                "    {} [label={}{style}];\n",
                dot_str(&v.key()),
                dot_str(&vertex_lines(v).join("\n"))
            ));
        }
        out.push_str("  }\n");
    }
    for e in g.edge_indices() {
        let Some((a, b)) = g.edge_endpoints(e) else { continue };
        let w = &g[e];
        let style = match w {
            Edge::Veth { .. } => "dir=none, color=\"#555555\"",
            Edge::BridgePort => "dir=none, color=\"#555555\", style=bold",
            Edge::VxlanLower => "dir=none, color=\"#d98c00\", style=dashed",
            Edge::Tunnel { .. } => "color=\"#d98c00\", style=dashed, constraint=false",
            Edge::Endpoint { .. } => "color=\"#1f5fbf\", style=dotted",
            Edge::Allowed { .. } => "color=\"#2e9d3a\", constraint=false",
        };
        out.push_str(&format!(
            "  {} -> {} [label={}, {style}];\n",
            dot_str(&g[a].key()),
            dot_str(&g[b].key()),
            dot_str(&edge_label(w))
        ));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_strings_escape_quotes_backslashes_and_newlines() {
        assert_eq!(dot_str("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(dot_str("plain"), "\"plain\"");
    }

    #[test]
    fn a_program_that_does_not_exist_is_not_on_path() {
        assert_eq!(find_on_path("kns-no-such-program-anywhere"), None);
    }
}
