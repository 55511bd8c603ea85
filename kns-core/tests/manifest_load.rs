//! What the loader builds: files, lists, controllers, placement, addresses, Services,
//! endpoints, policies and the kns Cluster document.

mod common;

use std::collections::BTreeSet;

use common::load::{load, load_ok, warnings};
use kns_core::flow::{Flow, FlowEnd, PortProtocol, Protocol};
use kns_core::manifest::load_str;
use kns_core::model::{Cluster, CniMode, PolicyTypes, PortRef, ProxyMode, ServiceType};
use kns_core::policy::{PolicyEngine, ReferenceEngine};

const ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

fn ns(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{team: {name}}}\n---\n"
    )
}

fn pod(name: &str, labels: &str, rest: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  containers:\n  - name: c\n    image: nginx\n{rest}---\n"
    )
}

fn deployment(name: &str, replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - name: c\n        image: {image}\n        ports: [{{name: http, containerPort: 8080}}]\n---\n"
    )
}

fn pod_names(c: &Cluster) -> Vec<String> {
    c.pods.iter().map(|p| c.pod_ref(p.id)).collect()
}

fn is_suffix(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|ch| ALPHABET.contains(ch))
}

#[test]
fn multi_document_files_lists_and_several_files_load_together() {
    let a = format!(
        "{}---\n\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: cfg, namespace: shop}}\n  data: {{k: v}}\n- {}",
        ns("shop"),
        "{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop}, spec: {containers: [{name: c, image: i}]}}\n"
    );
    let b = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec: {ports: [{port: 80}]}\n";
    let loaded = load(&[("a.yaml", &a), ("b.yaml", b)]).expect("loads");
    let c = &loaded.cluster;
    assert_eq!(pod_names(c), ["shop/p"]);
    assert_eq!(c.config_maps.len(), 1);
    assert_eq!(c.config_maps[0].data.get("k").map(String::as_str), Some("v"));
    assert!(c.service_by_name("shop", "s").is_some());
    assert!(c.namespace_by_name("shop").expect("shop").declared);
}

#[test]
fn an_empty_input_is_a_default_cluster_with_implicit_namespaces() {
    let c = load_ok("# nothing here\n").cluster;
    let names: Vec<(&str, bool)> =
        c.namespaces.iter().map(|n| (n.name.as_str(), n.declared)).collect();
    assert_eq!(
        names,
        [
            ("default", false),
            ("kube-node-lease", false),
            ("kube-public", false),
            ("kube-system", false)
        ]
    );
    for n in &c.namespaces {
        assert_eq!(n.labels.get("kubernetes.io/metadata.name"), Some(&n.name));
    }
    assert_eq!(c.config, kns_core::model::ClusterConfig::default());
    let nodes: Vec<(&str, String)> =
        c.nodes.iter().map(|n| (n.name.as_str(), n.pod_cidr.to_string())).collect();
    assert_eq!(
        nodes,
        [("node-1", "10.244.0.0/24".to_string()), ("node-2", "10.244.1.0/24".to_string())]
    );
    let k = c.service_by_name("default", "kubernetes").expect("the API server Service is implicit");
    assert_eq!(k.cluster_ip.map(|ip| ip.to_string()).as_deref(), Some("10.96.0.1"));
    assert_eq!(k.ports[0].port, 443);
}

#[test]
fn deployments_make_kubernetes_like_names_deterministically() {
    let c = load_ok(&deployment("web", 3, "nginx:1")).cluster;
    let names: Vec<&str> = c.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 3);
    let hashes: BTreeSet<&str> =
        names.iter().map(|n| n.split('-').nth(1).expect("rs hash")).collect();
    assert_eq!(hashes.len(), 1, "one ReplicaSet: {names:?}");
    let hash = *hashes.iter().next().unwrap();
    assert!(is_suffix(hash, 10), "{hash}");
    for (n, p) in names.iter().zip(&c.pods) {
        let parts: Vec<&str> = n.split('-').collect();
        assert_eq!(parts.len(), 3, "{n}");
        assert!(is_suffix(parts[2], 5), "{n}");
        assert_eq!(p.labels.get("pod-template-hash").map(String::as_str), Some(hash));
        let owner = p.owner.as_ref().expect("owner");
        assert_eq!(
            (owner.kind.as_str(), owner.name.clone()),
            ("ReplicaSet", format!("web-{hash}"))
        );
    }
    // Same input, same names; more replicas keep the first ones; a new template, a new hash.
    assert_eq!(load_ok(&deployment("web", 3, "nginx:1")).cluster, c);
    let more = load_ok(&deployment("web", 4, "nginx:1")).cluster;
    assert_eq!(more.pods[..3].iter().map(|p| &p.name).collect::<Vec<_>>(), names);
    let other = load_ok(&deployment("web", 3, "nginx:2")).cluster;
    assert_ne!(other.pods[0].name.split('-').nth(1), Some(hash));
}

#[test]
fn statefulsets_and_daemonsets() {
    let cluster = "apiVersion: kns.dev/v1alpha1\nkind: Cluster\nmetadata: {name: t}\nspec:\n  nodes:\n  - {name: n1, labels: {gpu: \"yes\"}}\n  - {name: n2}\n  - {name: n3, labels: {gpu: \"yes\"}}\n---\n";
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  replicas: 2\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: c, image: pg}]}\n---\n";
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      nodeSelector: {gpu: \"yes\"}\n      containers: [{name: c, image: a}]\n";
    let c = load_ok(&format!("{cluster}{sts}{ds}")).cluster;
    let db0 = c.pod_by_name("default", "db-0").expect("db-0");
    assert!(c.pod_by_name("default", "db-1").is_some());
    assert_eq!((db0.hostname.as_deref(), db0.subdomain.as_deref()), (Some("db-0"), Some("db")));
    let agents: Vec<(&str, &str)> = c
        .pods
        .iter()
        .filter(|p| p.name.starts_with("agent-"))
        .map(|p| (p.name.as_str(), c.node(p.node).name.as_str()))
        .collect();
    assert_eq!(agents.len(), 2, "{agents:?}");
    assert_eq!(agents.iter().map(|a| a.1).collect::<Vec<_>>(), ["n1", "n3"]);
    assert!(agents.iter().all(|(name, _)| is_suffix(&name["agent-".len()..], 5)));
}

#[test]
fn pods_are_placed_round_robin_and_addressed_from_their_node_slice() {
    let text = [
        pod("a", "", "  nodeName: node-1\nstatus:\n  podIP: 10.244.0.2\n"),
        pod("d", "", ""),
        pod("c", "", ""),
        pod("b", "", ""),
        pod("h", "", "  hostNetwork: true\n  nodeName: node-2\n"),
        pod("e", "", "status:\n  hostIP: 192.168.0.11\n"),
    ]
    .concat();
    let c = load_ok(&text).cluster;
    let got: Vec<(String, String, String)> = ["a", "b", "c", "d", "e", "h"]
        .iter()
        .map(|n| {
            let p = c.pod_by_name("default", n).expect("pod");
            (n.to_string(), c.node(p.node).name.clone(), p.ip.to_string())
        })
        .collect();
    let want = [
        ("a", "node-1", "10.244.0.2"), // honoured
        ("b", "node-1", "10.244.0.3"), // round-robin b, c, d in name order; .2 is taken
        ("c", "node-2", "10.244.1.2"),
        ("d", "node-1", "10.244.0.4"),
        ("e", "node-2", "10.244.1.3"),   // placed by status.hostIP
        ("h", "node-2", "192.168.0.11"), // host network: the node's address
    ];
    let want: Vec<(String, String, String)> =
        want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(got, want);
}

#[test]
fn service_ips_follow_kubernetes_conventions() {
    let svc = |ns: &str, name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  ports: [{{port: 80}}]\n{extra}---\n"
        )
    };
    let text = [
        svc("default", "zeta", ""),
        svc("default", "alpha", ""),
        svc("default", "fixed", "  clusterIP: 10.96.0.11\n"),
        svc("kube-system", "kube-dns", ""),
        svc("default", "headless", "  clusterIP: None\n"),
        svc("default", "ext", "  type: ExternalName\n  externalName: example.org\n"),
        svc("default", "np", "  type: NodePort\n"),
    ]
    .concat();
    let c = load_ok(&text).cluster;
    let ip = |ns: &str, name: &str| {
        c.service_by_name(ns, name).expect("service").cluster_ip.map(|i| i.to_string())
    };
    assert_eq!(ip("default", "kubernetes").as_deref(), Some("10.96.0.1"));
    assert_eq!(ip("kube-system", "kube-dns").as_deref(), Some("10.96.0.10"));
    assert_eq!(ip("default", "fixed").as_deref(), Some("10.96.0.11"));
    assert_eq!(ip("default", "alpha").as_deref(), Some("10.96.0.12"));
    assert_eq!(ip("default", "np").as_deref(), Some("10.96.0.13"));
    assert_eq!(ip("default", "zeta").as_deref(), Some("10.96.0.14"));
    assert!(c.service_by_name("default", "headless").unwrap().is_headless());
    let ext = c.service_by_name("default", "ext").unwrap();
    assert_eq!(
        (ext.service_type, ext.cluster_ip, ext.external_name.as_deref()),
        (ServiceType::ExternalName, None, Some("example.org"))
    );
    assert_eq!(c.service_by_name("default", "np").unwrap().ports[0].node_port, Some(30000));
}

#[test]
fn endpoints_come_from_selectors_and_resolve_named_ports_per_pod() {
    let text = [
        deployment("api", 2, "api:1"),
        pod("api-legacy", "app: api", "    ports: [{name: http, containerPort: 9090}]\n"),
        pod("api-starting", "app: api", "    ports: [{name: http, containerPort: 8080}]\nstatus:\n  conditions: [{type: Ready, status: \"False\"}]\n"),
        pod("other", "app: other", "    ports: [{name: http, containerPort: 8080}]\n"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec:\n  selector: {app: api}\n  ports: [{name: web, port: 80, targetPort: http}]\n".to_string(),
    ]
    .concat();
    let c = load_ok(&text).cluster;
    let slices: Vec<_> = c.endpoint_slices.iter().filter(|s| s.service_name == "api").collect();
    let mut summary: Vec<(u16, Vec<(String, bool)>)> = slices
        .iter()
        .map(|s| {
            let eps = s
                .endpoints
                .iter()
                .map(|e| (c.pod(e.pod.expect("pod")).name.clone(), e.ready))
                .collect();
            (s.ports[0].port, eps)
        })
        .collect();
    summary.sort();
    assert_eq!(summary.len(), 2, "{summary:?}");
    assert_eq!(summary[0].0, 8080);
    let on_8080: Vec<&str> = summary[0].1.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(on_8080.len(), 3, "two replicas and api-starting: {on_8080:?}");
    assert!(summary[0].1.contains(&("api-starting".to_string(), false)));
    assert_eq!(summary[1], (9090, vec![("api-legacy".to_string(), true)]));
    assert!(
        slices
            .iter()
            .all(|s| s.name.starts_with("api-") && s.ports[0].name.as_deref() == Some("web"))
    );
}

#[test]
fn given_endpoints_and_slices_are_used_as_they_are() {
    let text = concat!(
        "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {ports: [{port: 5432}]}\n---\n",
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: db}\nsubsets:\n- addresses: [{ip: 192.0.2.10}]\n  notReadyAddresses: [{ip: 192.0.2.11}]\n  ports: [{port: 5432}]\n---\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n---\n",
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-abc\n  labels: {kubernetes.io/service-name: web}\naddressType: IPv4\nendpoints:\n- addresses: [192.0.2.20]\n  conditions: {ready: true}\nports: [{name: \"\", port: 80, protocol: TCP}]\n---\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: w, labels: {app: web}}\nspec: {containers: [{name: c, image: i}]}\n",
    );
    let c = load_ok(text).cluster;
    type Summary = Vec<(String, String, Vec<(String, bool)>)>;
    let summary: Summary = c
        .endpoint_slices
        .iter()
        .map(|s| {
            let eps = s.endpoints.iter().map(|e| (e.addresses[0].to_string(), e.ready)).collect();
            (s.name.clone(), s.service_name.clone(), eps)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("web-abc".into(), "web".into(), vec![("192.0.2.20".into(), true)]),
            (
                "db".into(),
                "db".into(),
                vec![("192.0.2.10".into(), true), ("192.0.2.11".into(), false)]
            ),
        ]
    );
}

#[test]
fn endpoint_slices_win_over_their_mirrored_endpoints() {
    let text = concat!(
        "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {ports: [{port: 5432}]}\n---\n",
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: db}\nsubsets: [{addresses: [{ip: 192.0.2.10}], ports: [{port: 5432}]}]\n---\n",
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: db-x7k2p\n  labels: {kubernetes.io/service-name: db}\n",
        "addressType: IPv4\nendpoints: [{addresses: [192.0.2.10]}]\nports: [{port: 5432}]\n",
    );
    let c = load_ok(text).cluster;
    let names: Vec<&str> = c.endpoint_slices.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db-x7k2p"]);
}

#[test]
fn a_live_cluster_dump_is_honoured() {
    let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z", uid: "1"}
  spec:
    replicas: 1
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}, creationTimestamp: null}
      spec: {containers: [{name: c, image: nginx}]}
  status: {replicas: 1, readyReplicas: 1}
- apiVersion: apps/v1
  kind: ReplicaSet
  metadata:
    name: web-7d4b9c8f6
    namespace: default
    ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: "1", controller: true}]
  spec:
    replicas: 1
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec: {containers: [{name: c, image: nginx}]}
- apiVersion: v1
  kind: Pod
  metadata:
    name: web-7d4b9c8f6-x2k9p
    namespace: default
    labels: {app: web}
    ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7d4b9c8f6, uid: "2", controller: true}]
  spec:
    nodeName: kind-worker2
    containers: [{name: c, image: nginx}]
  status:
    phase: Running
    hostIP: 172.18.0.3
    podIP: 10.244.2.7
    podIPs: [{ip: 10.244.2.7}]
    conditions: [{type: Ready, status: "True"}]
- apiVersion: v1
  kind: Pod
  metadata: {name: job-abc, namespace: default}
  spec: {nodeName: kind-worker, containers: [{name: c, image: busybox}]}
  status: {phase: Succeeded, podIP: 10.244.2.7}
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: default}
  spec:
    clusterIP: 10.96.141.7
    clusterIPs: [10.96.141.7]
    selector: {app: web}
    ports: [{port: 80, targetPort: 80, protocol: TCP}]
"#;
    let loaded = load_ok(text);
    let c = &loaded.cluster;
    assert_eq!(
        pod_names(c),
        ["default/web-7d4b9c8f6-x2k9p"],
        "controllers with pods in the dump are not expanded"
    );
    let p = &c.pods[0];
    assert_eq!(c.node(p.node).name, "kind-worker2");
    assert_eq!(c.node(p.node).ip.to_string(), "172.18.0.3");
    assert_eq!(p.ip.to_string(), "10.244.2.7");
    let nodes: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(nodes, ["kind-worker", "kind-worker2"], "nodes come from the pods");
    let web = c.service_by_name("default", "web").unwrap();
    assert_eq!(web.cluster_ip.map(|i| i.to_string()).as_deref(), Some("10.96.141.7"));
    assert_eq!(
        warnings(&loaded),
        [
            "t.yaml: document 1, item 4 (Pod default/job-abc): status.phase: pods that have finished (Succeeded or Failed) are left out, as they hold no address"
        ]
    );
}

#[test]
fn a_dump_of_deployments_and_pods_without_replicasets_is_not_doubled() {
    let text = concat!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n",
        "  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: nginx}]}}\n---\n",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-5d8f7c9b4-abcde\n  labels: {app: web}\n",
        "  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f7c9b4, uid: u, controller: true}]\n",
        "spec: {containers: [{name: c, image: nginx}]}\n",
    );
    let c = load_ok(text).cluster;
    assert_eq!(pod_names(&c), ["default/web-5d8f7c9b4-abcde"]);
}

#[test]
fn json_manifests_load_too() {
    let text = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j", "labels": {"app": "j"}},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}}"#;
    let c = load(&[("pod.json", text)]).expect("JSON is YAML").cluster;
    assert_eq!(pod_names(&c), ["default/j"]);
}

#[test]
fn the_cluster_document_sets_modes_and_networks() {
    let text = "apiVersion: kns.dev/v1alpha1\nkind: Cluster\nmetadata: {name: lab}\nspec:\n  podCIDR: 10.10.0.0/16\n  nodePodCIDRPrefix: 20\n  serviceCIDR: 10.20.0.0/16\n  clusterDomain: lab.local\n  cni: overlay\n  proxy: maglev\n  enforcePolicy: false\n  nodePortRange: 31000-31010\n  nodes:\n  - {name: w1, address: 192.168.0.50}\n  - {name: w2, podCIDR: 10.10.128.0/20}\n";
    let c = load_ok(&format!("{text}---\n{}", pod("p", "", ""))).cluster;
    assert_eq!(c.config.name, "lab");
    assert_eq!(
        (c.config.cni, c.config.proxy, c.config.enforce_policy),
        (CniMode::Overlay, ProxyMode::Maglev, false)
    );
    assert_eq!((c.config.domain.as_str(), c.config.node_port_range), ("lab.local", (31000, 31010)));
    let nodes: Vec<(String, String, String)> = c
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.ip.to_string(), n.pod_cidr.to_string()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("w1".into(), "192.168.0.50".into(), "10.10.0.0/20".into()),
            ("w2".into(), "192.168.0.10".into(), "10.10.128.0/20".into())
        ]
    );
    assert_eq!(c.pods[0].ip.to_string(), "10.10.0.2");
    assert_eq!(
        c.service_by_name("default", "kubernetes").unwrap().cluster_ip.unwrap().to_string(),
        "10.20.0.1"
    );
    let bad = load(&[(
        "c.yaml",
        "apiVersion: kns.dev/v1alpha1\nkind: Cluster\nspec:\n  cni: flannel\n  nodez: []\n",
    )])
    .unwrap_err();
    assert_eq!(
        bad,
        [
            "c.yaml: document 1 (Cluster): spec.cni: unknown variant `flannel`, expected `routed` or `overlay`"
        ]
    );
}

#[test]
fn policy_types_are_defaulted_as_the_api_server_does() {
    let text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}]}]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: q}\nspec:\n  podSelector: {matchLabels: {a: b}}\n";
    let c = load_ok(text).cluster;
    assert_eq!(c.policies[0].policy_types, PolicyTypes { ingress: true, egress: true });
    assert_eq!(c.policies[1].policy_types, PolicyTypes { ingress: true, egress: false });
    assert_eq!(c.policies[1].pod_selector.to_string(), "a=b");
}

#[test]
fn ingresses_and_config_maps() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: shop}\nspec:\n  ingressClassName: nginx\n  tls: [{hosts: [shop.example]}]\n  rules:\n  - host: shop.example\n    http:\n      paths:\n      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {name: http}}}}\n      - {path: /, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}\n";
    let loaded = load_ok(text);
    let i = &loaded.cluster.ingresses[0];
    assert_eq!(i.class.as_deref(), Some("nginx"));
    assert_eq!(i.tls_hosts, ["shop.example"]);
    let paths: Vec<(&str, &str, PortRef)> = i.rules[0]
        .paths
        .iter()
        .map(|p| (p.path.as_str(), p.backend.service.as_str(), p.backend.port.clone()))
        .collect();
    assert_eq!(
        paths,
        [("/api", "api", PortRef::Name("http".into())), ("/", "web", PortRef::Number(80))]
    );
    assert_eq!(
        warnings(&loaded),
        [
            "t.yaml: document 2 (Ingress default/shop): spec.tls: kns does not terminate TLS; Ingress traffic is plain HTTP",
            "t.yaml: document 2 (Ingress default/shop): spec.rules[0].http.paths[0].backend.service: no Service `api` in namespace default; requests routed to it fail",
        ]
    );
}

fn demo() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests/demo.yaml");
    std::fs::read_to_string(path).expect("examples/manifests/demo.yaml")
}

#[test]
fn the_demo_example_loads_cleanly_and_its_policies_mean_what_it_says() {
    let loaded = load_str("demo.yaml", &demo()).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(loaded.warnings.is_empty(), "{:?}", warnings(&loaded));
    let c = &loaded.cluster;
    assert_eq!(c.nodes.len(), 2);
    assert_eq!(c.pods.len(), 6, "{:?}", pod_names(c));
    assert_eq!(c.policies.len(), 5);
    let ip = |ns: &str, name: &str| {
        c.service_by_name(ns, name).unwrap().cluster_ip.map(|i| i.to_string())
    };
    assert_eq!(ip("kube-system", "kube-dns").as_deref(), Some("10.96.0.10"));
    assert_eq!(ip("db", "postgres"), None);
    let postgres = c
        .endpoint_slices
        .iter()
        .find(|s| s.service_name == "postgres")
        .expect("postgres endpoints");
    assert_eq!(postgres.endpoints[0].hostname.as_deref(), Some("postgres-0"));
    assert_eq!(postgres.ports[0].port, 5432);

    let first = |ns: &str, prefix: &str| {
        c.pods_sorted()
            .into_iter()
            .find(|&id| {
                let p = c.pod(id);
                c.namespace(p.namespace).name == ns && p.name.starts_with(prefix)
            })
            .unwrap_or_else(|| panic!("{ns}/{prefix}*"))
    };
    let (web, api, pg, dns) = (
        first("frontend", "web-"),
        first("backend", "api-"),
        first("db", "postgres-"),
        first("kube-system", "coredns-"),
    );
    let allowed = |from, to, port: &str| {
        let port: PortProtocol = port.parse().unwrap();
        ReferenceEngine
            .evaluate(c, &Flow { src: FlowEnd::Pod(from), dst: FlowEnd::Pod(to), port })
            .allowed
    };
    assert!(allowed(web, api, "8080/TCP"));
    assert!(!allowed(web, api, "80/TCP"));
    assert!(!allowed(dns, api, "8080/TCP"));
    assert!(allowed(api, pg, "5432/TCP"));
    assert!(!allowed(web, pg, "5432/TCP"));
    assert!(allowed(api, dns, "53/UDP"));
    assert!(allowed(api, dns, "53/TCP"));
    assert!(!allowed(api, web, "80/TCP"));
    assert_eq!(c.pod(pg).named_port("postgres", Protocol::Tcp), Some(5432));
}

#[test]
fn loading_is_deterministic() {
    let a = load_str("demo.yaml", &demo()).unwrap().cluster;
    let b = load_str("demo.yaml", &demo()).unwrap().cluster;
    assert_eq!(a, b);
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
}

/// A pod as `kubectl get pod -o yaml` prints it, managed fields and status included: every
/// field is in the schema, so nothing is reported.
#[test]
fn a_full_kubectl_dump_has_no_unknown_fields() {
    let text = r#"
apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubectl.kubernetes.io/restartedAt: "2026-01-02T03:04:05Z"
  creationTimestamp: "2026-01-02T03:04:06Z"
  generateName: web-5d8f7c9b4-
  labels:
    app: web
    pod-template-hash: 5d8f7c9b4
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:generateName: {}
        f:labels:
          .: {}
          f:app: {}
    manager: kube-controller-manager
    operation: Update
    time: "2026-01-02T03:04:06Z"
  name: web-5d8f7c9b4-abcde
  namespace: default
  ownerReferences:
  - apiVersion: apps/v1
    blockOwnerDeletion: true
    controller: true
    kind: ReplicaSet
    name: web-5d8f7c9b4
    uid: 0f6c2d5e-1111-2222-3333-444455556666
  resourceVersion: "12345"
  uid: 7a1b2c3d-1111-2222-3333-444455556666
spec:
  containers:
  - image: nginx:1.27
    imagePullPolicy: IfNotPresent
    name: nginx
    ports:
    - containerPort: 80
      name: http
      protocol: TCP
    livenessProbe:
      failureThreshold: 3
      httpGet: {path: /, port: http, scheme: HTTP}
      periodSeconds: 10
      successThreshold: 1
      timeoutSeconds: 1
    resources:
      limits: {cpu: 500m, memory: 128Mi}
      requests: {cpu: 100m, memory: 64Mi}
    securityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    volumeMounts:
    - mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      name: kube-api-access-xyz
      readOnly: true
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  nodeName: kind-worker
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext: {}
  serviceAccount: default
  serviceAccountName: default
  terminationGracePeriodSeconds: 30
  tolerations:
  - effect: NoExecute
    key: node.kubernetes.io/not-ready
    operator: Exists
    tolerationSeconds: 300
  volumes:
  - name: kube-api-access-xyz
    projected:
      defaultMode: 420
      sources:
      - serviceAccountToken: {expirationSeconds: 3607, path: token}
      - configMap:
          items: [{key: ca.crt, path: ca.crt}]
          name: kube-root-ca.crt
status:
  conditions:
  - lastProbeTime: null
    lastTransitionTime: "2026-01-02T03:04:08Z"
    status: "True"
    type: Ready
  containerStatuses:
  - containerID: containerd://abc
    image: docker.io/library/nginx:1.27
    imageID: docker.io/library/nginx@sha256:0123
    lastState: {}
    name: nginx
    ready: true
    restartCount: 0
    started: true
    state:
      running: {startedAt: "2026-01-02T03:04:07Z"}
  hostIP: 172.18.0.2
  hostIPs: [{ip: 172.18.0.2}]
  phase: Running
  podIP: 10.244.1.5
  podIPs: [{ip: 10.244.1.5}]
  qosClass: Burstable
  startTime: "2026-01-02T03:04:06Z"
"#;
    let loaded = load_ok(text);
    assert!(loaded.warnings.is_empty(), "{:?}", warnings(&loaded));
    let p = &loaded.cluster.pods[0];
    assert_eq!((p.ip.to_string(), p.ready), ("10.244.1.5".to_string(), true));
    assert_eq!(loaded.cluster.node(p.node).ip.to_string(), "172.18.0.2");
}

/// Names, nodes and addresses do not depend on the order in which files are given.
#[test]
fn file_order_does_not_change_names_or_addresses() {
    let text = demo();
    let (head, tail) =
        text.split_at(text.find("kind: Deployment\nmetadata:\n  name: web").expect("web"));
    let head = head.trim_end_matches("apiVersion: apps/v1\n");
    let tail = format!("apiVersion: apps/v1\n{tail}");
    let summary = |c: &Cluster| {
        let mut pods: Vec<(String, String, String)> = c
            .pods
            .iter()
            .map(|p| (c.pod_ref(p.id), c.node(p.node).name.clone(), p.ip.to_string()))
            .collect();
        pods.sort();
        let mut services: Vec<(String, Option<String>)> = c
            .services
            .iter()
            .map(|s| {
                (
                    format!("{}/{}", c.namespace(s.namespace).name, s.name),
                    s.cluster_ip.map(|i| i.to_string()),
                )
            })
            .collect();
        services.sort();
        (pods, services)
    };
    let forward = load(&[("a.yaml", head), ("b.yaml", &tail)]).expect("loads").cluster;
    let backward = load(&[("b.yaml", &tail), ("a.yaml", head)]).expect("loads").cluster;
    assert_eq!(summary(&forward), summary(&backward));
    assert_eq!(summary(&forward), summary(&load_str("demo.yaml", &text).unwrap().cluster));
}

fn lb_service(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  type: LoadBalancer\n  selector: {{app: x}}\n  ports: [{{port: 80}}]\n{extra}---\n"
    )
}

#[test]
fn load_balancer_addresses_come_from_the_pool_in_name_order_until_it_runs_out() {
    let text = format!(
        "apiVersion: kns.dev/v1alpha1\nkind: Cluster\nspec:\n  loadBalancerPool: 192.168.0.200-192.168.0.202\n---\n{}{}{}{}",
        lb_service("d", ""),
        lb_service("b", "  loadBalancerIP: 192.168.0.200\n"),
        lb_service("a", ""),
        lb_service("c", ""),
    );
    let loaded = load_str("lb.yaml", &text).expect("loads");
    let c = &loaded.cluster;
    let ips = |name: &str| -> Vec<String> {
        let s = c.service_by_name("default", name).expect("service");
        assert!(s.ports[0].node_port.is_some(), "{name} has a node port");
        assert!(s.cluster_ip.is_some(), "{name} has a cluster IP");
        s.load_balancer_ips.iter().map(|ip| ip.to_string()).collect()
    };
    // `b` asked for .200, so `a` and `c` get .201 and .202; `d` finds the pool empty.
    assert_eq!(ips("a"), ["192.168.0.201"]);
    assert_eq!(ips("b"), ["192.168.0.200"]);
    assert_eq!(ips("c"), ["192.168.0.202"]);
    assert!(ips("d").is_empty());
    let warned: Vec<String> = loaded.warnings.iter().map(|w| w.render()).collect();
    assert_eq!(
        warned,
        [
            "lb.yaml: document 2 (Service default/d): spec.type: the load-balancer pool 192.168.0.200-192.168.0.202 is exhausted: the LoadBalancer Service stays pending without an external IP (its NodePorts and cluster IP still work)"
        ]
    );
}

#[test]
fn the_default_pool_lies_on_the_node_network() {
    let c = load_str("lb.yaml", &lb_service("web", "")).expect("loads").cluster;
    let s = c.service_by_name("default", "web").expect("service");
    assert_eq!(s.load_balancer_ips, ["192.168.0.240".parse::<std::net::IpAddr>().unwrap()]);
    assert!(c.config.node_cidr.contains(&s.load_balancer_ips[0]));
}
