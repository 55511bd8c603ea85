//! kns's own SVG drawing of a [`Topology`], for machines without Graphviz: a fixed,
//! deterministic layout rather than a general graph layout.
//!
//! Each place (internet, router, node network, every node, Services) is a column, left to
//! right in [`Topology::places`] order, drawn as a rounded group box with its name and
//! details. A column stacks its vertices as boxes, in graph order; in a node's column the
//! devices come first (`cni0`, `eth0`, `flannel.1`), then one row per pod with the host end of
//! its veth on the left and the pod on the right. Edges are cubic curves from side to side:
//! to the right-hand box's left side, or, between boxes of the same column, bulging out to the
//! right; a pod allowed to reach itself gets a small loop. Edges are drawn under the boxes and
//! each carries a `<title>` with its words, shown on hover. Text is XML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use kns_sim::cluster::Topology;
use kns_sim::cluster::graph::{Edge, Vertex};
use petgraph::graph::NodeIndex;

use super::graph::{edge_label, vertex_lines};

/// Height of a line of text.
const LINE_H: f64 = 14.0;
/// Padding inside a box.
const PAD: f64 = 6.0;
/// Estimated width of one character of the 11 px monospace font.
const CHAR_W: f64 = 6.7;
/// Space between boxes of a column.
const ROW_GAP: f64 = 14.0;
/// Space between the device and pod sub-columns of a node.
const INNER_GAP: f64 = 60.0;
/// Space between columns.
const COL_GAP: f64 = 80.0;
/// Padding inside a group box.
const GROUP_PAD: f64 = 14.0;
/// Height of a group's header (name and details).
const HEADER_H: f64 = 40.0;
/// Margin around the picture.
const MARGIN: f64 = 20.0;

/// Escapes text for XML content and attribute values; control characters become spaces.
pub(super) fn escape(text: &str) -> String {
    super::html::escape(&text.replace(|c: char| c.is_control(), " "))
}

/// A box on the page.
#[derive(Debug, Clone, Copy)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn right(&self) -> f64 {
        self.x + self.w
    }
    fn cy(&self) -> f64 {
        self.y + self.h / 2.0
    }
}

/// One row of a column: a left box, a right box, or both (a host veth and its pod).
type Row = (Option<NodeIndex>, Option<NodeIndex>);

/// The drawing attributes of an edge kind: class, colour, dash pattern, arrow.
fn edge_style(e: &Edge) -> (&'static str, &'static str, &'static str, bool) {
    match e {
        Edge::Veth { .. } => ("veth", "#555555", "", false),
        Edge::BridgePort => ("port", "#222222", "", false),
        Edge::VxlanLower => ("vxlan", "#d98c00", "6 3", false),
        Edge::Tunnel { .. } => ("tunnel", "#d98c00", "6 3", true),
        Edge::Endpoint { .. } => ("endpoint", "#1f5fbf", "2 3", true),
        Edge::Allowed { .. } => ("allowed", "#2e9d3a", "", true),
    }
}

fn box_size(v: &Vertex) -> (f64, f64) {
    let lines = vertex_lines(v);
    let chars = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    (chars as f64 * CHAR_W + 2.0 * PAD, lines.len() as f64 * LINE_H + 2.0 * PAD)
}

/// The topology drawn as SVG with the built-in layout.
pub fn to_svg(topo: &Topology, title: &str) -> String {
    let g = topo.graph();
    // Rows per place.
    let mut columns: Vec<Vec<Row>> = Vec::new();
    for info in topo.places() {
        let members: Vec<NodeIndex> =
            g.node_indices().filter(|i| g[*i].place() == info.place).collect();
        let mut partner: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
        for e in g.edge_indices() {
            let Some((a, b)) = g.edge_endpoints(e) else { continue };
            if matches!(g[e], Edge::Veth { .. })
                && matches!(g[b], Vertex::Pod(_))
                && matches!(g[a], Vertex::Device(_))
                && members.contains(&a)
                && members.contains(&b)
            {
                partner.entry(b).or_insert(a);
            }
        }
        let paired: Vec<NodeIndex> = partner.values().copied().collect();
        let mut rows: Vec<Row> = members
            .iter()
            .filter(|i| !matches!(g[**i], Vertex::Pod(_)) && !paired.contains(i))
            .map(|i| (Some(*i), None))
            .collect();
        rows.extend(
            members
                .iter()
                .filter(|i| matches!(g[**i], Vertex::Pod(_)))
                .map(|p| (partner.get(p).copied(), Some(*p))),
        );
        columns.push(rows);
    }

    // Sizes and positions.
    let mut rects: BTreeMap<NodeIndex, Rect> = BTreeMap::new();
    let mut groups: Vec<Rect> = Vec::new();
    let mut x = MARGIN;
    let top = MARGIN + 2.0 * LINE_H;
    let mut bottom: f64 = top;
    for (k, rows) in columns.iter().enumerate() {
        let header_w = {
            let info = &topo.places()[k];
            info.name.chars().count().max(info.detail.chars().count()) as f64 * CHAR_W
        };
        let width_of = |pick: fn(&Row) -> Option<NodeIndex>| {
            rows.iter().filter_map(pick).map(|i| box_size(&g[i]).0).fold(0.0, f64::max)
        };
        let left_w = width_of(|r| r.0);
        let right_w = width_of(|r| r.1);
        let inner = if left_w > 0.0 && right_w > 0.0 { INNER_GAP } else { 0.0 };
        let content_w = (left_w + inner + right_w).max(header_w);
        let mut y = top + HEADER_H;
        for (l, r) in rows {
            let h = [l, r].iter().filter_map(|i| i.map(|i| box_size(&g[i]).1)).fold(0.0, f64::max);
            if let Some(l) = l {
                rects.insert(*l, Rect { x: x + GROUP_PAD, y, w: left_w, h });
            }
            if let Some(r) = r {
                let rx = x + GROUP_PAD + left_w + inner;
                rects.insert(*r, Rect { x: rx, y, w: right_w, h });
            }
            y += h + ROW_GAP;
        }
        let w = content_w + 2.0 * GROUP_PAD;
        groups.push(Rect { x, y: top, w, h: y - top });
        bottom = bottom.max(y);
        x += w + COL_GAP;
    }
    let legend_y = bottom + 2.0 * LINE_H;
    let width = (x - COL_GAP + MARGIN).max(560.0);
    let height = legend_y + 3.0 * LINE_H + MARGIN;

    let mut out = String::new();
    let _ = writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"monospace\" font-size=\"11\">"
    );
    let _ = writeln!(out, "<title>{}</title>", escape(title));
    out.push_str("<defs>\n");
    for (class, color) in [("tunnel", "#d98c00"), ("endpoint", "#1f5fbf"), ("allowed", "#2e9d3a")] {
        let _ = writeln!(
            out,
            "<marker id=\"arrow-{class}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{color}\"/></marker>"
        );
    }
    out.push_str("</defs>\n");
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{height:.0}\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN:.0}\" y=\"{:.0}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        MARGIN + LINE_H,
        escape(title)
    );

    // Groups.
    for (info, r) in topo.places().iter().zip(&groups) {
        let _ = writeln!(
            out,
            "<g class=\"place\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"8\" fill=\"#f7f7f7\" stroke=\"#999999\"/><text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"bold\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#555555\">{}</text></g>",
            r.x,
            r.y,
            r.w,
            r.h,
            r.x + GROUP_PAD,
            r.y + LINE_H + 2.0,
            escape(&info.name),
            r.x + GROUP_PAD,
            r.y + 2.0 * LINE_H + 2.0,
            escape(&info.detail)
        );
    }

    // Edges, under the boxes.
    for e in g.edge_indices() {
        let Some((a, b)) = g.edge_endpoints(e) else { continue };
        let (Some(ra), Some(rb)) = (rects.get(&a), rects.get(&b)) else { continue };
        let (class, color, dash, arrow) = edge_style(&g[e]);
        let d = edge_path(ra, rb, a == b, matches!(g[e], Edge::Allowed { .. }));
        let dash =
            if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") };
        let marker =
            if arrow { format!(" marker-end=\"url(#arrow-{class})\"") } else { String::new() };
        let words = format!("{} → {}: {}", g[a].key(), g[b].key(), edge_label(&g[e]));
        let _ = writeln!(
            out,
            "<g class=\"edge {class}\"><title>{}</title><path d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.4\"{dash}{marker}/></g>",
            escape(&words)
        );
    }

    // Vertices.
    for (i, r) in &rects {
        let v = &g[*i];
        let (fill, rx) = match v {
            Vertex::Device(_) => ("#ffffff", 2),
            Vertex::Pod(_) => ("#dbe9ff", 6),
            Vertex::Service(_) => ("#fff2cc", 14),
        };
        let _ = write!(
            out,
            "<g class=\"vertex\" id=\"v{}\"><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{rx}\" fill=\"{fill}\" stroke=\"#333333\"/>",
            i.index(),
            escape(&v.key()),
            r.x,
            r.y,
            r.w,
            r.h
        );
        for (n, line) in vertex_lines(v).iter().enumerate() {
            let weight = if n == 0 { " font-weight=\"bold\"" } else { "" };
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\"{weight}>{}</text>",
                r.x + PAD,
                r.y + PAD + (n as f64 + 1.0) * LINE_H - 3.0,
                escape(line)
            );
        }
        out.push_str("</g>\n");
    }

    // Legend.
    let mut lx = MARGIN;
    for (sample, words) in [
        (Edge::Veth { from_if: String::new(), to_if: String::new() }, "veth pair"),
        (Edge::BridgePort, "bridge port"),
        (Edge::Tunnel { remote: std::net::Ipv4Addr::UNSPECIFIED.into() }, "vxlan"),
        (Edge::Endpoint { ports: Vec::new() }, "Service endpoint"),
        (
            Edge::Allowed { port: kns_core::PortProtocol::new(0, kns_core::Protocol::Tcp) },
            "allowed",
        ),
    ] {
        let (_, color, dash, _) = edge_style(&sample);
        let dash =
            if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") };
        let _ = writeln!(
            out,
            "<g class=\"legend\"><path d=\"M{lx:.1},{y:.1} h30\" stroke=\"{color}\" stroke-width=\"2\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\">{words}</text></g>",
            lx + 36.0,
            legend_y + 4.0,
            y = legend_y
        );
        lx += 36.0 + words.len() as f64 * CHAR_W + 24.0;
    }
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN:.0}\" y=\"{:.0}\" fill=\"#555555\">Drawn by kns's built-in layout (Graphviz's dot was not available). Hover an edge or box for details.</text>",
        legend_y + 2.0 * LINE_H
    );
    out.push_str("</svg>\n");
    out
}

/// The path of an edge between two boxes (see the module documentation).
fn edge_path(a: &Rect, b: &Rect, self_loop: bool, offset: bool) -> String {
    if self_loop {
        let (x, y) = (a.right(), a.cy());
        return format!(
            "M{x:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {x:.1},{:.1}",
            y - 5.0,
            x + 28.0,
            y - 22.0,
            x + 28.0,
            y + 22.0,
            y + 5.0
        );
    }
    // Allowed edges leave a little above the centre and arrive a little below, so that the
    // two directions between the same pods stay apart.
    let (dy0, dy1) = if offset { (-4.0, 4.0) } else { (0.0, 0.0) };
    let (y0, y1) = (a.cy() + dy0, b.cy() + dy1);
    if b.x >= a.right() {
        let (x0, x1) = (a.right(), b.x);
        let c = (x1 - x0) / 2.0;
        format!("M{x0:.1},{y0:.1} C{:.1},{y0:.1} {:.1},{y1:.1} {x1:.1},{y1:.1}", x0 + c, x1 - c)
    } else if b.right() <= a.x {
        let (x0, x1) = (a.x, b.right());
        let c = (x0 - x1) / 2.0;
        format!("M{x0:.1},{y0:.1} C{:.1},{y0:.1} {:.1},{y1:.1} {x1:.1},{y1:.1}", x0 - c, x1 + c)
    } else {
        // Same column: bulge to the right, further for boxes further apart.
        let (x0, x1) = (a.right(), b.right());
        let bulge = a.right().max(b.right()) + 18.0 + ((y1 - y0).abs() / 8.0).min(40.0);
        format!("M{x0:.1},{y0:.1} C{bulge:.1},{y0:.1} {bulge:.1},{y1:.1} {x1:.1},{y1:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_control_characters() {
        assert_eq!(escape("<a & 'b'>\"\n"), "&lt;a &amp; &#39;b&#39;&gt;&quot; ");
    }

    #[test]
    fn edges_run_between_facing_sides() {
        let a = Rect { x: 0.0, y: 0.0, w: 10.0, h: 10.0 };
        let b = Rect { x: 50.0, y: 20.0, w: 10.0, h: 10.0 };
        assert_eq!(edge_path(&a, &b, false, false), "M10.0,5.0 C30.0,5.0 30.0,25.0 50.0,25.0");
        assert_eq!(edge_path(&b, &a, false, false), "M50.0,25.0 C30.0,25.0 30.0,5.0 10.0,5.0");
        let c = Rect { x: 0.0, y: 80.0, w: 10.0, h: 10.0 };
        assert!(edge_path(&a, &c, false, false).starts_with("M10.0,5.0 C38.0,5.0"));
        assert!(edge_path(&a, &a, true, true).starts_with("M10.0,0.0 C38.0"));
    }
}
