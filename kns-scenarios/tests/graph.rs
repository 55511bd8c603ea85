//! `kns graph` (DOT and SVG) and `kns matrix -o html` end to end on the demo cluster: the
//! pictures name every pod, node and bridge, carry the expected wiring, their allowed edges
//! and coloured cells equal the matrix, the markup is well formed, and two runs are identical.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};

fn demo() -> String {
    let path: PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "..", "examples", "manifests", "demo.yaml"].iter().collect();
    path.to_string_lossy().into_owned()
}

/// Runs `kns` with no Graphviz reachable (an empty `PATH`), so SVG always comes from the
/// built-in layout, here and in CI alike.
fn kns(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kns"))
        .args(args)
        .env("PATH", "")
        .output()
        .expect("the kns binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = kns(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "kns {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `matrix[port][from][to]` from `kns matrix -o json`.
type Matrix = BTreeMap<String, BTreeMap<String, BTreeMap<String, bool>>>;

fn matrix_json(extra: &[&str]) -> Matrix {
    let demo = demo();
    let mut args = vec!["matrix", "-f", &demo, "-o", "json"];
    args.extend_from_slice(extra);
    let v: serde_json::Value = serde_json::from_str(&ok(&args)).expect("json");
    let mut out = Matrix::new();
    for probe in v["probes"].as_array().expect("probes") {
        let port = format!("{}/{}", probe["port"], probe["protocol"].as_str().unwrap());
        let m: BTreeMap<String, BTreeMap<String, bool>> =
            serde_json::from_value(probe["matrix"].clone()).expect("matrix");
        out.insert(port, m);
    }
    out
}

fn pods() -> Vec<String> {
    matrix_json(&["--port", "80/TCP"]).into_values().next().unwrap().into_keys().collect()
}

/// The true cells of a matrix as `(port, from, to)`.
fn true_cells(m: &Matrix) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (port, rows) in m {
        for (from, row) in rows {
            for (to, allowed) in row {
                if *allowed {
                    out.insert((port.clone(), from.clone(), to.clone()));
                }
            }
        }
    }
    out
}

/// DOT edges as `(from, to, label)`, read from `"A" -> "B" [label="L", ...];` lines.
fn dot_edges(dot: &str) -> Vec<(String, String, String)> {
    dot.lines()
        .filter(|l| l.contains("\" -> \""))
        .map(|l| {
            let q: Vec<&str> = l.split('"').collect();
            // "A" -> "B" [label="L", ...]: the quoted parts are at odd indices.
            (q[1].to_string(), q[3].to_string(), q[5].to_string())
        })
        .collect()
}

/// Braces outside quoted strings balance and never go negative.
fn braces_balance(dot: &str) -> bool {
    let (mut depth, mut quoted, mut escaped) = (0i64, false, false);
    for c in dot.chars() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, _, '"') => quoted = !quoted,
            (false, _, '{') => depth += 1,
            (false, _, '}') => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0 && !quoted
}

/// A small well-formedness check for XML (and, with `void`, for HTML): tags nest and close,
/// attribute values are quoted, and `<` or a bare `&` never appear in text or attributes.
/// Returns the element names in document order.
fn check_markup(doc: &str, void: &[&str]) -> Result<Vec<String>, String> {
    fn entity_ok(rest: &str) -> bool {
        let Some(end) = rest.find(';') else { return false };
        let name = &rest[1..end];
        matches!(name, "amp" | "lt" | "gt" | "quot" | "#39")
            || (name.starts_with('#') && name[1..].chars().all(|c| c.is_ascii_digit()) && end > 1)
    }
    fn text_ok(text: &str) -> Result<(), String> {
        for (i, c) in text.char_indices() {
            if c == '<' || c == '>' {
                return Err(format!("raw {c} in text near {:?}", &text[i.saturating_sub(20)..]));
            }
            if c == '&' && !entity_ok(&text[i..]) {
                return Err(format!("bare & near {:?}", &text[i..(i + 20).min(text.len())]));
            }
        }
        Ok(())
    }
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = doc;
    if let Some(r) = rest.strip_prefix("<?xml") {
        rest = &r[r.find("?>").ok_or("unterminated declaration")? + 2..];
    }
    if let Some(r) = rest.strip_prefix("<!DOCTYPE html>") {
        rest = r;
    }
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        text_ok(&rest[..open])?;
        let after = &rest[open + 1..];
        // Find the end of the tag, skipping quoted attribute values.
        let mut end = None;
        let mut quote = false;
        for (i, c) in after.char_indices() {
            match c {
                '"' => quote = !quote,
                '<' if quote => return Err("raw < in an attribute".into()),
                '>' if !quote => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("unterminated tag")?;
        let tag = &after[..end];
        rest = &after[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if top != name.trim() {
                return Err(format!("</{name}> closes <{top}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
        if name.is_empty() {
            return Err("empty tag name".into());
        }
        // Attributes: name="value" pairs, values with entities only.
        let mut attrs = &body[name.len()..];
        loop {
            attrs = attrs.trim_start();
            if attrs.is_empty() {
                break;
            }
            let eq = attrs.find("=\"").ok_or(format!("unquoted attribute in <{name}>"))?;
            let value_end = attrs[eq + 2..].find('"').ok_or("unterminated attribute")?;
            text_ok(&attrs[eq + 2..eq + 2 + value_end])?;
            attrs = &attrs[eq + 2 + value_end + 1..];
        }
        if stack.is_empty() {
            roots += 1;
        }
        names.push(name.clone());
        if !self_closing && !void.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    text_ok(rest)?;
    if let Some(open) = stack.last() {
        return Err(format!("<{open}> never closed"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(names)
}

#[test]
fn dot_has_every_pod_node_bridge_and_their_wiring() {
    let demo = demo();
    let dot = ok(&["graph", "-f", &demo]);
    assert!(dot.starts_with("digraph kns {\n") && dot.ends_with("}\n"), "{dot}");
    assert!(braces_balance(&dot), "{dot}");
    for want in [
        "\"dev::fabric0\"",
        "\"dev:router:eth0\"",
        "\"dev:internet:eth0\"",
        "\"dev:node-a:eth0\"",
        "\"dev:node-a:cni0\"",
        "\"dev:node-b:cni0\"",
        "label=\"node-a\\n192.168.0.10, pods 10.244.0.0/24, routed\"",
        "label=\"node-b\\n192.168.0.11, pods 10.244.1.0/24, routed\"",
        "\"svc:backend/api\"",
    ] {
        assert!(dot.contains(want), "{want} missing:\n{dot}");
    }
    let edges = dot_edges(&dot);
    let has = |from: &str, to: &str, label: &str| {
        edges.iter().any(|(f, t, l)| f == from && t == to && l.starts_with(label))
    };
    assert!(has("dev::n0", "dev:node-a:eth0", "veth n0"), "{edges:?}");
    assert!(has("dev::n1", "dev:node-b:eth0", "veth n1"), "{edges:?}");
    assert!(has("dev::n0", "dev::fabric0", "bridge port"), "{edges:?}");
    assert!(has("dev:router:eth1", "dev:internet:eth0", "veth"), "{edges:?}");
    let pods = pods();
    assert_eq!(pods.len(), 6);
    for pod in &pods {
        let key = format!("pod:{pod}");
        assert!(dot.contains(&format!("\"{key}\" [label=\"pod {pod}\\n")), "{pod}");
        // Every pod hangs off a host veth that is a port of its node's cni0.
        let (host, _, _) = edges
            .iter()
            .find(|(_, t, l)| *t == key && l.starts_with("veth "))
            .unwrap_or_else(|| panic!("no veth to {pod}: {edges:?}"));
        let node = host.split(':').nth(1).unwrap();
        assert!(has(host, &format!("dev:{node}:cni0"), "bridge port"), "{host}");
    }
    for api in pods.iter().filter(|p| p.starts_with("backend/api-")) {
        assert!(has("svc:backend/api", &format!("pod:{api}"), "8080/TCP→8080"), "{edges:?}");
    }
    assert!(has("svc:db/postgres", "pod:db/postgres-0", "headless 5432/TCP"), "{edges:?}");
    assert!(!dot.contains("flannel.1"), "routed mode has no overlay device");
}

#[test]
fn overlay_mode_draws_flannel_devices_and_tunnels() {
    let text = std::fs::read_to_string(demo()).unwrap().replace("cni: routed", "cni: overlay");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("graph-overlay.yaml");
    std::fs::write(&path, text).unwrap();
    let dot = ok(&["graph", "-f", path.to_str().unwrap()]);
    let edges = dot_edges(&dot);
    for (from, to, label) in [
        ("dev:node-a:flannel.1", "dev:node-a:eth0", "vxlan over"),
        ("dev:node-a:flannel.1", "dev:node-b:flannel.1", "vxlan to 192.168.0.11"),
        ("dev:node-b:flannel.1", "dev:node-a:flannel.1", "vxlan to 192.168.0.10"),
    ] {
        assert!(
            edges.iter().any(|e| e == &(from.into(), to.into(), label.into())),
            "{from} -> {to} [{label}] missing: {edges:?}"
        );
    }
    assert!(dot.contains("overlay\"; style"), "node labels name the mode:\n{dot}");
}

#[test]
fn allowed_edges_equal_the_true_cells_of_the_matrix_in_both_modes() {
    let demo = demo();
    for mode in ["policy", "packet"] {
        let dot = ok(&[
            "graph",
            "-f",
            &demo,
            "--allowed",
            "8080/TCP",
            "--allowed",
            "5432/TCP",
            "--mode",
            mode,
        ]);
        let drawn: BTreeSet<(String, String, String)> = dot_edges(&dot)
            .into_iter()
            .filter_map(|(f, t, l)| {
                let port = l.strip_prefix("allowed ")?.to_string();
                Some((port, f.strip_prefix("pod:")?.into(), t.strip_prefix("pod:")?.into()))
            })
            .collect();
        let drawn_count = dot.matches("[label=\"allowed ").count();
        let m = matrix_json(&["--port", "8080/TCP", "--port", "5432/TCP", "--mode", mode]);
        let cells = true_cells(&m);
        assert_eq!(drawn, cells, "{mode}");
        assert_eq!(drawn_count, cells.len(), "{mode}: one edge per true cell");
        assert!(cells.len() > 6 && cells.len() < 72, "{mode}: a matrix with both verdicts");
    }
}

#[test]
fn svg_without_graphviz_is_well_formed_and_names_every_pod() {
    let demo = demo();
    let out = kns(&["graph", "-f", &demo, "-o", "svg", "--allowed", "8080/TCP"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Graphviz's `dot` is not on PATH"), "{err}");
    let svg = String::from_utf8(out.stdout).unwrap();
    let names = check_markup(&svg, &[]).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    assert_eq!(names.first().map(String::as_str), Some("svg"));
    assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    for pod in pods() {
        assert!(svg.contains(&format!(">pod {pod}</text>")), "{pod}");
    }
    for dev in [">cni0 (bridge)</text>", ">fabric0 (bridge)</text>", ">node-a</text>"] {
        assert!(svg.contains(dev), "{dev}");
    }
    let m = matrix_json(&["--port", "8080/TCP"]);
    assert_eq!(svg.matches("<g class=\"edge allowed\">").count(), true_cells(&m).len());
    // Escaping: the title's arrows and the edge words go through the escaper.
    assert!(svg.contains("→"), "edge titles");
}

#[test]
fn the_svg_checker_rejects_broken_markup() {
    assert!(check_markup("<svg><g></svg>", &[]).is_err());
    assert!(check_markup("<svg><text>a < b</text></svg>", &[]).is_err());
    assert!(check_markup("<svg><text>a & b</text></svg>", &[]).is_err());
    assert!(check_markup("<svg a=\"x<y\"></svg>", &[]).is_err());
    assert!(check_markup("<svg></svg><svg></svg>", &[]).is_err());
    assert!(check_markup("<svg><text>a &amp; b &#10;</text></svg>", &[]).is_ok());
    assert!(!braces_balance("digraph { \"}\" "));
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('\n', "&#10;")
}

/// The `(class, title)` of every `<td>` of a page, in order.
fn cells(html: &str) -> Vec<(String, String)> {
    html.split("<td class=\"")
        .skip(1)
        .map(|rest| {
            let class = rest.split('"').next().unwrap().to_string();
            let title = rest.split("title=\"").nth(1).unwrap().split('"').next().unwrap();
            (class, title.to_string())
        })
        .collect()
}

#[test]
fn html_matrix_has_a_cell_per_pair_coloured_and_explained_like_kns_explain() {
    let demo = demo();
    let html = ok(&["matrix", "-f", &demo, "-o", "html", "--port", "8080/TCP"]);
    check_markup(&html, &["meta", "br"]).unwrap_or_else(|e| panic!("{e}"));
    for forbidden in ["<script", "<link", "src=", "href=", "url("] {
        assert!(!html.contains(forbidden), "{forbidden}: the page is self-contained");
    }
    assert!(html.contains("<style>") && html.contains("8080/TCP"), "ports shown");
    assert!(html.contains(&html_escape(&demo)), "file name shown");
    assert!(html.contains("class=\"swatch allow\"") && html.contains("class=\"swatch deny\""));
    let pods = pods();
    let m = &matrix_json(&["--port", "8080/TCP"])["8080/TCP"];
    let cells = cells(&html);
    assert_eq!(cells.len(), pods.len() * pods.len());
    for (k, (class, title)) in cells.iter().enumerate() {
        let (from, to) = (&pods[k / pods.len()], &pods[k % pods.len()]);
        let allowed = m[from][to];
        assert_eq!(class, if allowed { "allow" } else { "deny" }, "{from} -> {to}");
        let explain =
            ok(&["explain", "-f", &demo, "--from", from, "--to", to, "--port", "8080/TCP"]);
        assert_eq!(title, &html_escape(explain.trim_end()), "{from} -> {to}");
    }
}

#[test]
fn html_matrix_in_packet_mode_colours_probe_results() {
    let demo = demo();
    let html = ok(&["matrix", "-f", &demo, "-o", "html", "--port", "8080/TCP", "--mode", "packet"]);
    check_markup(&html, &["meta", "br"]).unwrap_or_else(|e| panic!("{e}"));
    let pods = pods();
    let m = &matrix_json(&["--port", "8080/TCP", "--mode", "packet"])["8080/TCP"];
    let cells = cells(&html);
    assert_eq!(cells.len(), pods.len() * pods.len());
    for (k, (class, title)) in cells.iter().enumerate() {
        let (from, to) = (&pods[k / pods.len()], &pods[k % pods.len()]);
        assert_eq!(class, if m[from][to] { "allow" } else { "deny" }, "{from} -> {to}");
        let head = format!("packet probe {} -&gt; {} 8080/TCP: ", from, to);
        assert!(title.starts_with(&head), "{title}");
        assert!(title.contains("&#10;policy verdict:&#10;"), "{title}");
    }
}

#[test]
fn pictures_are_byte_identical_from_run_to_run() {
    let demo = demo();
    for args in [
        vec!["graph", "-f", &demo, "--allowed", "8080/TCP"],
        vec!["graph", "-f", &demo, "-o", "svg", "--allowed", "8080/TCP"],
        vec!["matrix", "-f", &demo, "-o", "html"],
    ] {
        assert_eq!(ok(&args), ok(&args), "{args:?}");
    }
}

/// A stand-in for Graphviz's `dot` in a directory of its own, to put on `PATH`.
#[cfg(unix)]
fn fake_dot(name: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("dot");
    std::fs::write(&exe, script).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[cfg(unix)]
#[test]
fn svg_comes_from_graphviz_when_dot_is_on_path_and_falls_back_when_it_fails() {
    let demo = demo();
    let run = |dir: &PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_kns"))
            .args(["graph", "-f", &demo, "-o", "svg"])
            .env("PATH", dir)
            .output()
            .unwrap()
    };
    // This `dot` checks its argument and echoes the size of the DOT it was given.
    let good = fake_dot(
        "fake-dot-ok",
        "#!/bin/sh\nexport PATH=/usr/bin:/bin\n[ \"$1\" = -Tsvg ] || exit 3\nn=$(wc -c | tr -d ' ')\necho \"<svg xmlns=\\\"http://www.w3.org/2000/svg\\\"><desc>$n</desc></svg>\"\n",
    );
    let out = run(&good);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let dot_len = ok(&["graph", "-f", &demo]).len();
    let svg = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        svg.trim(),
        format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><desc>{dot_len}</desc></svg>")
    );
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));

    let bad = fake_dot("fake-dot-fails", "#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 1\n");
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Graphviz's `dot` failed") && err.contains("syntax error"), "{err}");
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(svg.contains("kns's built-in layout"), "fell back to the built-in layout");
}
