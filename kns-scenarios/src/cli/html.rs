//! `kns matrix -o html`: one self-contained page (inline CSS, no scripts, no external
//! resources) with a colour grid per port; each cell's `title` is its explanation, so hovering
//! a cell shows why the connection is allowed or denied.

use kns_core::policy::{PolicyEngine, ReferenceEngine};
use kns_core::{Cluster, Flow, FlowEnd};

use super::error::CliError;
use super::{MatrixMode, MatrixView};

/// What the page shows besides the matrix itself.
#[derive(Debug, Clone)]
pub struct HtmlPage<'a> {
    /// The manifest files, as the user named them.
    pub files: String,
    /// How the matrix was decided.
    pub mode: MatrixMode,
    /// Packet mode: each probe's outcome word, `[port][from][to]` as in the view.
    pub outcomes: Option<&'a [Vec<Vec<&'static str>>]>,
}

/// Escapes text for HTML element content and attribute values; newlines become `&#10;` so
/// that they survive in attributes.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin-bottom:.2em}
h2{font-size:1.1em;margin-top:1.6em}
.meta{color:#555;margin-top:0}
.legend span.swatch{display:inline-block;width:1em;height:1em;vertical-align:middle;border:1px solid #999;margin:0 .3em 0 1em}
table.matrix{border-collapse:collapse;font-size:.85em}
table.matrix th,table.matrix td{border:1px solid #ccc;padding:0}
table.matrix th.row{text-align:right;padding:0 .5em;font-weight:normal;white-space:nowrap}
table.matrix th.col{vertical-align:bottom;padding:.3em 0;font-weight:normal}
table.matrix th.col span{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
table.matrix td{width:1.8em;height:1.8em;text-align:center;cursor:help}
.allow{background:#3fa34d;color:#fff}
.deny{background:#d64545;color:#fff}
td.allow:hover,td.deny:hover{outline:2px solid #222}
";

/// The page for a matrix view; explanations come from the reference engine, worded as
/// `kns explain` words them.
pub fn matrix_html(
    cluster: &Cluster,
    view: &MatrixView,
    page: &HtmlPage,
) -> Result<String, CliError> {
    let ids = super::render::pod_ids(cluster, view)?;
    let ports: Vec<String> = view.probes.iter().map(|(pp, _)| pp.to_string()).collect();
    let mode = match page.mode {
        MatrixMode::Policy => "policy (NetworkPolicies evaluated, no packets)",
        MatrixMode::Packet => "packet (a real connection per pair through the emulated cluster)",
    };
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!("<title>kns matrix: {}</title>\n", escape(&page.files)));
    out.push_str(&format!("<style>\n{STYLE}</style>\n</head>\n<body>\n"));
    out.push_str("<h1>Pod-to-pod reachability</h1>\n");
    out.push_str(&format!(
        "<p class=\"meta\">Manifests: <code>{}</code><br>Mode: {}<br>Ports: {}</p>\n",
        escape(&page.files),
        escape(mode),
        escape(&ports.join(", "))
    ));
    out.push_str(concat!(
        "<p class=\"legend\">Rows: from; columns: to.",
        "<span class=\"swatch allow\"></span>allowed (✓)",
        "<span class=\"swatch deny\"></span>denied (✗)",
        " — hover a cell for its explanation.</p>\n"
    ));
    let width = view.pods.len().to_string().len();
    for (pi, (pp, grid)) in view.probes.iter().enumerate() {
        let allowed: usize = grid.iter().map(|r| r.iter().filter(|a| **a).count()).sum();
        let total = view.pods.len() * view.pods.len();
        out.push_str(&format!(
            "<h2>{} — {allowed} of {total} allowed</h2>\n",
            escape(&pp.to_string())
        ));
        out.push_str("<table class=\"matrix\">\n<thead><tr><th>from \\ to</th>");
        for (j, to) in view.pods.iter().enumerate() {
            out.push_str(&format!(
                "<th class=\"col\" title=\"{}\"><span>{:>width$} {}</span></th>",
                escape(to),
                j + 1,
                escape(to)
            ));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for (i, (from, row)) in view.pods.iter().zip(grid).enumerate() {
            out.push_str(&format!(
                "<tr><th class=\"row\" scope=\"row\">{} {}</th>",
                i + 1,
                escape(from)
            ));
            for (j, allowed) in row.iter().enumerate() {
                let flow = Flow { src: FlowEnd::Pod(ids[i]), dst: FlowEnd::Pod(ids[j]), port: *pp };
                let verdict = ReferenceEngine.evaluate(cluster, &flow);
                let mut text = verdict.explain(cluster, &flow).trim_end().to_string();
                if let Some(words) = page.outcomes {
                    let word = words[pi][i][j];
                    let seen = if *allowed { "reached" } else { "did not reach" };
                    text = format!(
                        "packet probe {} -> {} {pp}: {word} (the connection {seen} its destination)\npolicy verdict:\n{text}",
                        view.pods[i], view.pods[j]
                    );
                }
                let (class, mark) = if *allowed { ("allow", "✓") } else { ("deny", "✗") };
                out.push_str(&format!(
                    "<td class=\"{class}\" title=\"{}\">{mark}</td>",
                    escape(&text)
                ));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_newlines() {
        assert_eq!(escape("a<b>&\"c'\nd"), "a&lt;b&gt;&amp;&quot;c&#39;&#10;d");
    }

    #[test]
    fn a_two_pod_page_has_four_coloured_cells_with_explanations() {
        let yaml = r#"
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-a, namespace: x}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress: [{from: [{podSelector: {matchLabels: {app: a}}}]}]
"#;
        let cluster = kns_core::manifest::load_str("t<&>.yaml", yaml).expect("loads").cluster;
        let port = kns_core::PortProtocol::new(80, kns_core::Protocol::Tcp);
        let view = super::super::commands::matrix_view(
            &cluster,
            &[port],
            super::super::MatrixEngine::Auto,
        );
        let page = HtmlPage { files: "t<&>.yaml".into(), mode: MatrixMode::Policy, outcomes: None };
        let html = matrix_html(&cluster, &view, &page).unwrap();
        assert!(html.contains("<title>kns matrix: t&lt;&amp;&gt;.yaml</title>"), "{html}");
        assert_eq!(html.matches("<td class=\"allow\"").count(), 3);
        assert_eq!(html.matches("<td class=\"deny\"").count(), 1);
        assert!(html.contains("title=\"DENIED x/b -&gt; x/a 80/TCP"), "{html}");
        assert!(
            !html.contains("<script") && !html.contains("http://") && !html.contains("https://")
        );
    }
}
