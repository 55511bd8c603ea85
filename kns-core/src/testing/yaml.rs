//! A [`Cluster`] rendered as Kubernetes YAML manifests that the manifest loader (and so
//! `kns matrix -f` / `kns probe -f`) reads back into the same cluster.
//!
//! The output holds one kns `Cluster` document (the pod network, nodes and their addresses),
//! then Namespaces, Pods (labels, container ports, `spec.nodeName`, `status.podIP(s)` and
//! readiness), Services of every type (cluster IP or `None` for headless, selector, ports with
//! target and node ports, external name, external and load-balancer addresses, session
//! affinity, traffic policies, `publishNotReadyAddresses`) and NetworkPolicies with explicit
//! `policyTypes`, in model order. Addresses and node ports are written out, so the loader
//! keeps them instead of allocating. EndpointSlices are not written: the loader computes them
//! from the selectors again, and a Service without a selector comes back without endpoints.
//! Ingresses and ConfigMaps are not written.

use serde_json::{Map, Value, json};

use crate::model::{
    Cluster, NetworkPolicy, PolicyPeer, PolicyPort, PolicyRule, PortRef, Requirement, Selector,
    Service, ServiceType, TrafficPolicy,
};

/// The cluster's nodes, namespaces, pods, Services and policies as a multi-document YAML text.
pub fn to_yaml(cluster: &Cluster) -> String {
    let mut docs = vec![cluster_doc(cluster)];
    for ns in &cluster.namespaces {
        if !ns.declared {
            continue;
        }
        let mut labels = ns.labels.clone();
        labels.remove("kubernetes.io/metadata.name");
        docs.push(json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": metadata(&ns.name, None, &labels),
        }));
    }
    for pod in &cluster.pods {
        let ns = &cluster.namespaces[pod.namespace.index()].name;
        let node = &cluster.nodes[pod.node.index()];
        let containers: Vec<Value> = pod
            .containers
            .iter()
            .map(|c| {
                let ports: Vec<Value> = c
                    .ports
                    .iter()
                    .map(|p| {
                        let mut m = Map::new();
                        if let Some(name) = &p.name {
                            m.insert("name".into(), json!(name));
                        }
                        m.insert("containerPort".into(), json!(p.port));
                        m.insert("protocol".into(), json!(p.protocol.as_str()));
                        if let Some(h) = p.host_port {
                            m.insert("hostPort".into(), json!(h));
                        }
                        Value::Object(m)
                    })
                    .collect();
                let mut m = Map::new();
                m.insert("name".into(), json!(c.name));
                m.insert("image".into(), json!("registry.k8s.io/pause:3.10"));
                if !ports.is_empty() {
                    m.insert("ports".into(), Value::Array(ports));
                }
                Value::Object(m)
            })
            .collect();
        let mut spec = Map::new();
        spec.insert("nodeName".into(), json!(node.name));
        if pod.host_network {
            spec.insert("hostNetwork".into(), json!(true));
        }
        spec.insert("containers".into(), Value::Array(containers));
        let ips: Vec<Value> = pod.ips.iter().map(|ip| json!({ "ip": ip.to_string() })).collect();
        let ready = if pod.ready { "True" } else { "False" };
        docs.push(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata(&pod.name, Some(ns), &pod.labels),
            "spec": Value::Object(spec),
            "status": {
                "phase": "Running",
                "hostIP": node.ip.to_string(),
                "podIP": pod.ip.to_string(),
                "podIPs": ips,
                "conditions": [{ "type": "Ready", "status": ready }],
            },
        }));
    }
    for service in &cluster.services {
        docs.push(service_doc(cluster, service));
    }
    for policy in &cluster.policies {
        docs.push(policy_doc(cluster, policy));
    }
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&yaml_serde::to_string(&doc).expect("JSON values always serialize"));
    }
    out
}

/// The kns `Cluster` document: networks and nodes, so that addresses load unchanged.
fn cluster_doc(cluster: &Cluster) -> Value {
    let c = &cluster.config;
    let nodes: Vec<Value> = cluster
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "labels": n.labels,
                "address": n.ip.to_string(),
                "podCIDR": n.pod_cidr.to_string(),
            })
        })
        .collect();
    let prefix = cluster.nodes.first().map_or(c.node_cidr_prefix, |n| n.pod_cidr.prefix_len());
    let mut doc = json!({
        "apiVersion": "kns.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": { "name": c.name },
        "spec": {
            "podCIDR": pod_network(cluster).to_string(),
            "nodePodCIDRPrefix": prefix,
            "serviceCIDR": c.service_cidr.to_string(),
            "nodeCIDR": c.node_cidr.to_string(),
            "clusterDomain": c.domain,
            "enforcePolicy": c.enforce_policy,
            "cni": c.cni,
            "proxy": c.proxy,
            "nodePortRange": format!("{}-{}", c.node_port_range.0, c.node_port_range.1),
            "nodes": nodes,
        },
    });
    // Always explicit: an absent pool means the default one, `[]` means none.
    let pool: Vec<String> = c.load_balancer_pool.iter().map(ToString::to_string).collect();
    doc["spec"]["loadBalancerPool"] = json!(pool);
    doc
}

/// The configured pod network if it holds every node's slice, else the smallest block that does
/// (clusters assembled in code may leave the configuration at its default).
fn pod_network(cluster: &Cluster) -> ipnet::IpNet {
    let inside = |net: &ipnet::IpNet| cluster.nodes.iter().all(|n| net.contains(&n.pod_cidr));
    if inside(&cluster.config.pod_cidr) {
        return cluster.config.pod_cidr;
    }
    let mut net = cluster.nodes[0].pod_cidr;
    while !inside(&net) {
        match net.supernet() {
            Some(wider) => net = wider,
            None => break,
        }
    }
    net
}

fn metadata(name: &str, namespace: Option<&str>, labels: &crate::model::Labels) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        m.insert("namespace".into(), json!(ns));
    }
    if !labels.is_empty() {
        m.insert("labels".into(), json!(labels));
    }
    Value::Object(m)
}

fn service_doc(cluster: &Cluster, s: &Service) -> Value {
    let ns = &cluster.namespaces[s.namespace.index()].name;
    let mut spec = Map::new();
    let kind = match s.service_type {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
        ServiceType::ExternalName => "ExternalName",
    };
    spec.insert("type".into(), json!(kind));
    match (s.service_type, s.cluster_ip) {
        (ServiceType::ExternalName, _) => {}
        (_, Some(ip)) => {
            spec.insert("clusterIP".into(), json!(ip.to_string()));
        }
        (_, None) => {
            spec.insert("clusterIP".into(), json!("None"));
        }
    }
    if let Some(name) = &s.external_name {
        spec.insert("externalName".into(), json!(name));
    }
    if let Some(selector) = &s.selector {
        spec.insert("selector".into(), json!(selector));
    }
    let ports: Vec<Value> = s
        .ports
        .iter()
        .map(|p| {
            let mut m = Map::new();
            if let Some(name) = &p.name {
                m.insert("name".into(), json!(name));
            }
            m.insert("protocol".into(), json!(p.protocol.as_str()));
            m.insert("port".into(), json!(p.port));
            match &p.target_port {
                PortRef::Number(n) => m.insert("targetPort".into(), json!(n)),
                PortRef::Name(n) => m.insert("targetPort".into(), json!(n)),
            };
            if let Some(n) = p.node_port {
                m.insert("nodePort".into(), json!(n));
            }
            Value::Object(m)
        })
        .collect();
    if !ports.is_empty() {
        spec.insert("ports".into(), Value::Array(ports));
    }
    if !s.external_ips.is_empty() {
        let ips: Vec<String> = s.external_ips.iter().map(|ip| ip.to_string()).collect();
        spec.insert("externalIPs".into(), json!(ips));
    }
    if let Some(timeout) = s.session_affinity_timeout {
        spec.insert("sessionAffinity".into(), json!("ClientIP"));
        spec.insert(
            "sessionAffinityConfig".into(),
            json!({ "clientIP": { "timeoutSeconds": timeout } }),
        );
    }
    let policy = |t: TrafficPolicy| match t {
        TrafficPolicy::Cluster => "Cluster",
        TrafficPolicy::Local => "Local",
    };
    if s.external_traffic_policy == TrafficPolicy::Local {
        spec.insert("externalTrafficPolicy".into(), json!(policy(s.external_traffic_policy)));
    }
    if s.internal_traffic_policy == TrafficPolicy::Local {
        spec.insert("internalTrafficPolicy".into(), json!(policy(s.internal_traffic_policy)));
    }
    if s.publish_not_ready_addresses {
        spec.insert("publishNotReadyAddresses".into(), json!(true));
    }
    let mut doc = Map::new();
    doc.insert("apiVersion".into(), json!("v1"));
    doc.insert("kind".into(), json!("Service"));
    doc.insert("metadata".into(), metadata(&s.name, Some(ns), &Default::default()));
    doc.insert("spec".into(), Value::Object(spec));
    if !s.load_balancer_ips.is_empty() {
        let ingress: Vec<Value> =
            s.load_balancer_ips.iter().map(|ip| json!({ "ip": ip.to_string() })).collect();
        doc.insert("status".into(), json!({ "loadBalancer": { "ingress": ingress } }));
    }
    Value::Object(doc)
}

fn policy_doc(cluster: &Cluster, p: &NetworkPolicy) -> Value {
    let ns = &cluster.namespaces[p.namespace.index()].name;
    let mut types = Vec::new();
    if p.policy_types.ingress {
        types.push("Ingress");
    }
    if p.policy_types.egress {
        types.push("Egress");
    }
    let mut spec = Map::new();
    spec.insert("podSelector".into(), selector(&p.pod_selector));
    spec.insert("policyTypes".into(), json!(types));
    if !p.ingress.is_empty() {
        spec.insert("ingress".into(), rules(&p.ingress, "from"));
    }
    if !p.egress.is_empty() {
        spec.insert("egress".into(), rules(&p.egress, "to"));
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(&p.name, Some(ns), &Default::default()),
        "spec": Value::Object(spec),
    })
}

fn rules(rules: &[PolicyRule], peers_key: &str) -> Value {
    Value::Array(
        rules
            .iter()
            .map(|r| {
                let mut m = Map::new();
                if !r.peers.is_empty() {
                    m.insert(peers_key.into(), Value::Array(r.peers.iter().map(peer).collect()));
                }
                if !r.ports.is_empty() {
                    m.insert("ports".into(), Value::Array(r.ports.iter().map(port).collect()));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

fn peer(p: &PolicyPeer) -> Value {
    match p {
        PolicyPeer::Pods { namespace_selector, pod_selector } => {
            let mut m = Map::new();
            if let Some(s) = namespace_selector {
                m.insert("namespaceSelector".into(), selector(s));
            }
            if let Some(s) = pod_selector {
                m.insert("podSelector".into(), selector(s));
            }
            Value::Object(m)
        }
        PolicyPeer::IpBlock { cidr, except } => {
            let mut b = Map::new();
            b.insert("cidr".into(), json!(cidr.to_string()));
            if !except.is_empty() {
                let list: Vec<String> = except.iter().map(|e| e.to_string()).collect();
                b.insert("except".into(), json!(list));
            }
            json!({ "ipBlock": Value::Object(b) })
        }
    }
}

fn port(p: &PolicyPort) -> Value {
    let mut m = Map::new();
    m.insert("protocol".into(), json!(p.protocol.as_str()));
    match &p.port {
        Some(PortRef::Number(n)) => {
            m.insert("port".into(), json!(n));
        }
        Some(PortRef::Name(name)) => {
            m.insert("port".into(), json!(name));
        }
        None => {}
    }
    if let Some(end) = p.end_port {
        m.insert("endPort".into(), json!(end));
    }
    Value::Object(m)
}

fn selector(s: &Selector) -> Value {
    let mut m = Map::new();
    if !s.match_labels.is_empty() {
        m.insert("matchLabels".into(), json!(s.match_labels));
    }
    if !s.match_expressions.is_empty() {
        let list: Vec<Value> = s.match_expressions.iter().map(requirement).collect();
        m.insert("matchExpressions".into(), Value::Array(list));
    }
    Value::Object(m)
}

fn requirement(r: &Requirement) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), json!(r.key));
    m.insert("operator".into(), json!(r.operator.to_string()));
    if !r.values.is_empty() {
        m.insert("values".into(), json!(r.values));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::manifest::load_str;
    use crate::model::Service;
    use crate::policy::{ReferenceEngine, matrix};
    use crate::proxy::ServiceTable;
    use crate::testing::strategies::{cluster, cluster_with_services, probe_ports};

    /// Every cell of the reference matrix over the probe ports, keyed by pod names.
    fn cells(c: &Cluster) -> Vec<(String, String, String, bool)> {
        let ports = probe_ports();
        let m = matrix(&ReferenceEngine, c, &ports);
        let mut out = Vec::new();
        for (p, port) in ports.iter().enumerate() {
            for (i, &from) in m.pods().iter().enumerate() {
                for (j, &to) in m.pods().iter().enumerate() {
                    let allowed = m.allowed(p, i, j);
                    out.push((c.pod_ref(from), c.pod_ref(to), port.to_string(), allowed));
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn yaml_round_trip_keeps_the_policy_matrix(c in cluster()) {
            let text = to_yaml(&c);
            let loaded = load_str("case.yaml", &text)
                .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.render())))?;
            let back = loaded.cluster;
            prop_assert_eq!(back.policies.len(), c.policies.len());
            for (a, b) in c.pods.iter().zip(&back.pods) {
                prop_assert_eq!((&a.name, a.ip, &a.labels), (&b.name, b.ip, &b.labels));
            }
            prop_assert_eq!(cells(&back), cells(&c), "{}", text);
            // The policies come back field for field (IDs and namespaces by position).
            for (a, b) in c.policies.iter().zip(&back.policies) {
                prop_assert_eq!(
                    (&a.pod_selector, a.policy_types, &a.ingress, &a.egress),
                    (&b.pod_selector, b.policy_types, &b.ingress, &b.egress)
                );
            }
        }
    }

    /// The Service table's ports without `default/kubernetes` (which the loader adds): name,
    /// addresses, backends (address and node) and settings, then the frontends by port name.
    fn service_view(c: &Cluster) -> (Vec<String>, Vec<String>) {
        let table = ServiceTable::from_cluster(c);
        let keep = |name: &str| !name.starts_with("default/kubernetes");
        let ports = table
            .services()
            .iter()
            .filter(|vs| keep(&vs.name))
            .map(|vs| {
                let backends: Vec<_> = vs.backends.iter().map(|b| (b.addr, b.node)).collect();
                format!(
                    "{} {:?} {} {:?} {:?} {:?} {:?} {:?} {:?}",
                    vs.name,
                    vs.protocol,
                    vs.port,
                    vs.cluster_ip,
                    vs.node_port,
                    backends,
                    vs.affinity_timeout,
                    vs.external_policy,
                    vs.internal_policy
                )
            })
            .collect();
        let frontends = table
            .frontends()
            .iter()
            .map(|f| (f, &table.services()[f.vs.index()].name))
            .filter(|(_, name)| keep(name))
            .map(|(f, name)| {
                format!("{name} {:?} {} {:?} {:?}", f.addr, f.port, f.protocol, f.kind)
            })
            .collect();
        (ports, frontends)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn yaml_round_trip_keeps_services(c in cluster_with_services()) {
            let text = to_yaml(&c);
            let loaded = load_str("case.yaml", &text)
                .map_err(|e| TestCaseError::fail(format!("{}\n{text}", e.render())))?;
            let back = loaded.cluster;
            // Every Service comes back field for field (found by namespace and name; IDs are
            // handed out in load order), and the loader adds only `default/kubernetes`.
            for s in &c.services {
                let ns = &c.namespaces[s.namespace.index()].name;
                let b = back.service_by_name(ns, &s.name);
                prop_assert!(b.is_some(), "{}/{} missing\n{}", ns, s.name, text);
                let b = b.expect("checked");
                prop_assert_eq!(
                    Service { id: s.id, namespace: s.namespace, ..b.clone() },
                    s.clone(),
                    "{}",
                    text
                );
            }
            prop_assert_eq!(back.services.len(), c.services.len() + 1);
            prop_assert!(back.service_by_name("default", "kubernetes").is_some());
            // kube-proxy's view is the same: frontends, backends and settings.
            prop_assert_eq!(service_view(&back), service_view(&c), "{}", text);
            prop_assert_eq!(cells(&back), cells(&c), "{}", text);
        }
    }

    #[test]
    fn services_of_every_type_are_printed() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
        // Draw until every type and shape has been printed at least once.
        let mut runner = TestRunner::new_with_rng(
            ProptestConfig::default(),
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        let strategy = cluster_with_services();
        let mut text = String::new();
        for _ in 0..200 {
            text.push_str(&to_yaml(&strategy.new_tree(&mut runner).expect("a tree").current()));
        }
        for needle in [
            "type: ClusterIP",
            "clusterIP: None",
            "type: NodePort",
            "nodePort: 300",
            "type: LoadBalancer",
            "- ip: 172.18.255.",
            "type: ExternalName",
            "externalName: svc",
            "targetPort: http",
            "targetPort: 8080",
            "externalIPs:",
            "sessionAffinity: ClientIP",
            "timeoutSeconds: 60",
            "externalTrafficPolicy: Local",
            "internalTrafficPolicy: Local",
            "publishNotReadyAddresses: true",
            "protocol: UDP",
            "name: p1",
        ] {
            assert!(text.contains(needle), "{needle} never printed");
        }
    }

    #[test]
    fn output_has_every_kind_and_field_form() {
        use crate::flow::Protocol;
        use crate::model::{Operator, PolicyTypes};
        use crate::testing::ClusterBuilder;
        let mut b = ClusterBuilder::new();
        let ns = b.namespace("web", &[("team", "a")]);
        b.pod(ns, "p", &[("app", "a")], &[("http", 80, Protocol::Tcp)]);
        let sel = Selector {
            match_labels: Default::default(),
            match_expressions: vec![Requirement {
                key: "app".into(),
                operator: Operator::NotIn,
                values: ["b".to_string()].into(),
            }],
        };
        let rule = PolicyRule {
            peers: vec![PolicyPeer::IpBlock {
                cidr: "10.0.0.0/30".parse().unwrap(),
                except: vec!["10.0.0.1/32".parse().unwrap()],
            }],
            ports: vec![PolicyPort {
                protocol: Protocol::Udp,
                port: Some(PortRef::Number(80)),
                end_port: Some(82),
            }],
        };
        let types = PolicyTypes { ingress: false, egress: true };
        b.policy(ns, "np", sel, types, vec![], vec![rule]);
        let text = to_yaml(&b.build());
        for needle in [
            "kind: Cluster",
            "kind: Namespace",
            "kind: Pod",
            "podIP: 10.0.0.1",
            "kind: NetworkPolicy",
            "operator: NotIn",
            "except:",
            "- 10.0.0.1/32",
            "endPort: 82",
            "- Egress",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
