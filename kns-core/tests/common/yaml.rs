//! Renders test clusters as real Kubernetes manifests, so the conformance cases can be fed to
//! the YAML loader and the CLI. Only what the conformance cases use is rendered.

use std::fmt::Write;

use kns_core::model::{
    Cluster, NetworkPolicy, PolicyPeer, PolicyPort, PolicyRule, PortRef, Selector,
};

/// The Namespace and Pod documents of `cluster`.
pub fn base_yaml(cluster: &Cluster, header: &str) -> String {
    let mut out = String::from(header);
    for ns in &cluster.namespaces {
        out.push_str("---\napiVersion: v1\nkind: Namespace\nmetadata:\n");
        writeln!(out, "  name: {}\n  labels:", scalar(&ns.name)).expect("String");
        for (k, v) in ns.labels.iter().filter(|(k, _)| *k != "kubernetes.io/metadata.name") {
            writeln!(out, "    {}: {}", scalar(k), scalar(v)).expect("String");
        }
    }
    for pod in &cluster.pods {
        out.push_str("---\napiVersion: v1\nkind: Pod\nmetadata:\n");
        writeln!(out, "  name: {}", scalar(&pod.name)).expect("String");
        writeln!(out, "  namespace: {}", scalar(&cluster.namespace(pod.namespace).name))
            .expect("String");
        out.push_str("  labels:\n");
        for (k, v) in &pod.labels {
            writeln!(out, "    {}: {}", scalar(k), scalar(v)).expect("String");
        }
        out.push_str("spec:\n  containers:\n");
        for c in &pod.containers {
            writeln!(out, "  - name: {}", scalar(&c.name)).expect("String");
            out.push_str("    image: registry.k8s.io/e2e-test-images/agnhost:2.53\n    ports:\n");
            for p in &c.ports {
                let name = p.name.as_deref().unwrap_or_default();
                writeln!(
                    out,
                    "    - name: {name}\n      containerPort: {}\n      protocol: {}",
                    p.port, p.protocol
                )
                .expect("String");
            }
        }
        writeln!(out, "status:\n  podIP: {}\n  podIPs:", pod.ip).expect("String");
        for ip in &pod.ips {
            writeln!(out, "  - ip: {ip}").expect("String");
        }
    }
    out
}

/// The NetworkPolicy documents of `cluster`.
pub fn policies_yaml(cluster: &Cluster, header: &str) -> String {
    let mut out = String::from(header);
    for p in &cluster.policies {
        policy(&mut out, cluster, p);
    }
    out
}

fn policy(out: &mut String, cluster: &Cluster, p: &NetworkPolicy) {
    out.push_str("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n");
    writeln!(out, "  name: {}", scalar(&p.name)).expect("String");
    writeln!(out, "  namespace: {}", scalar(&cluster.namespace(p.namespace).name)).expect("String");
    out.push_str("spec:\n  podSelector:");
    selector(out, &p.pod_selector, 4);
    out.push_str("  policyTypes:\n");
    if p.policy_types.ingress {
        out.push_str("  - Ingress\n");
    }
    if p.policy_types.egress {
        out.push_str("  - Egress\n");
    }
    for (rules, key, peers_key) in [(&p.ingress, "ingress", "from"), (&p.egress, "egress", "to")] {
        let isolates =
            if key == "ingress" { p.policy_types.ingress } else { p.policy_types.egress };
        if !isolates {
            continue;
        }
        if rules.is_empty() {
            writeln!(out, "  {key}: []").expect("String");
            continue;
        }
        writeln!(out, "  {key}:").expect("String");
        for r in rules {
            rule(out, r, peers_key);
        }
    }
}

fn rule(out: &mut String, r: &PolicyRule, peers_key: &str) {
    if r.peers.is_empty() && r.ports.is_empty() {
        out.push_str("  - {}\n");
        return;
    }
    let mut first = true;
    let mut lead = || if std::mem::take(&mut first) { "  - " } else { "    " };
    if !r.peers.is_empty() {
        writeln!(out, "{}{peers_key}:", lead()).expect("String");
        for peer in &r.peers {
            match peer {
                PolicyPeer::Pods { namespace_selector, pod_selector } => {
                    let mut lead2 = "    - ";
                    if let Some(s) = namespace_selector {
                        write!(out, "{lead2}namespaceSelector:").expect("String");
                        selector(out, s, 8);
                        lead2 = "      ";
                    }
                    if let Some(s) = pod_selector {
                        write!(out, "{lead2}podSelector:").expect("String");
                        selector(out, s, 8);
                    }
                }
                PolicyPeer::IpBlock { cidr, except } => {
                    writeln!(out, "    - ipBlock:\n        cidr: {cidr}").expect("String");
                    if !except.is_empty() {
                        out.push_str("        except:\n");
                        for e in except {
                            writeln!(out, "        - {e}").expect("String");
                        }
                    }
                }
            }
        }
    }
    if !r.ports.is_empty() {
        writeln!(out, "{}ports:", lead()).expect("String");
        for p in &r.ports {
            port(out, p);
        }
    }
}

fn port(out: &mut String, p: &PolicyPort) {
    writeln!(out, "    - protocol: {}", p.protocol).expect("String");
    match &p.port {
        Some(PortRef::Number(n)) => writeln!(out, "      port: {n}").expect("String"),
        Some(PortRef::Name(name)) => writeln!(out, "      port: {}", scalar(name)).expect("String"),
        None => {}
    }
    if let Some(end) = p.end_port {
        writeln!(out, "      endPort: {end}").expect("String");
    }
}

/// Writes a selector after its key (`podSelector:`), its fields indented by `indent`.
fn selector(out: &mut String, s: &Selector, indent: usize) {
    if s.is_empty() {
        out.push_str(" {}\n");
        return;
    }
    out.push('\n');
    let pad = " ".repeat(indent);
    if !s.match_labels.is_empty() {
        writeln!(out, "{pad}matchLabels:").expect("String");
        for (k, v) in &s.match_labels {
            writeln!(out, "{pad}  {}: {}", scalar(k), scalar(v)).expect("String");
        }
    }
    if !s.match_expressions.is_empty() {
        writeln!(out, "{pad}matchExpressions:").expect("String");
        for r in &s.match_expressions {
            writeln!(out, "{pad}- key: {}\n{pad}  operator: {}", scalar(&r.key), r.operator)
                .expect("String");
            if !r.values.is_empty() {
                let values: Vec<String> = r.values.iter().map(|v| scalar(v)).collect();
                writeln!(out, "{pad}  values: [{}]", values.join(", ")).expect("String");
            }
        }
    }
}

/// A YAML scalar: plain when unambiguous, double-quoted otherwise.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && s.parse::<f64>().is_err()
        && !["true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"]
            .contains(&s.to_ascii_lowercase().as_str());
    if plain { s.to_string() } else { format!("{s:?}") }
}
