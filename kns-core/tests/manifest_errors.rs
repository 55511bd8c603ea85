//! Every class of manifest problem, each with its exact rendered message
//! (`file: document N (Kind ns/name): field.path: message`), and the broken examples under
//! `examples/manifests/bad/`.

mod common;

use common::load::{check_errors, load, load_err, load_ok, warnings};

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n";

fn pod(name: &str, extra_status: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  containers:\n  - name: c\n    image: nginx\n{extra_status}"
    )
}

fn policy(spec: &str) -> String {
    format!(
        "{NS}apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: shop\nspec:\n{spec}"
    )
}

#[test]
fn malformed_yaml_names_the_line_and_later_documents_are_still_read() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n";
    check_errors(
        text,
        &[
            "t.yaml: document 1: malformed YAML: did not find expected ',' or '}' at line 4 column 1, while parsing a flow mapping at line 3 column 11",
            "t.yaml: document 2: kind: unsupported kind `Secret` (kns reads Namespace, Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Service, Endpoints, EndpointSlice, NetworkPolicy, Ingress, ConfigMap, Cluster)",
        ],
    );
}

#[test]
fn missing_api_version_and_kind() {
    check_errors(
        "---\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n---\nkind: Pod\nmetadata: {name: c}\n",
        &[
            "t.yaml: document 1: apiVersion: missing apiVersion",
            "t.yaml: document 1: kind: missing kind",
            "t.yaml: document 2: kind: missing kind",
            "t.yaml: document 3: apiVersion: missing apiVersion",
        ],
    );
}

#[test]
fn unsupported_kind_and_wrong_api_version() {
    check_errors(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n---\napiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: {name: i}\n",
        &[
            "t.yaml: document 1: kind: unsupported kind `Job` (kns reads Namespace, Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Service, Endpoints, EndpointSlice, NetworkPolicy, Ingress, ConfigMap, Cluster)",
            "t.yaml: document 2 (Ingress): apiVersion: `networking.k8s.io/v1beta1` is not an apiVersion of Ingress (use `networking.k8s.io/v1`)",
        ],
    );
}

#[test]
fn missing_metadata_name() {
    check_errors(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: kube-system\n",
        &["t.yaml: document 1 (ConfigMap): metadata.name: missing metadata.name"],
    );
}

#[test]
fn invalid_label_selectors() {
    let text = policy(concat!(
        "  podSelector:\n",
        "    matchExpressions:\n",
        "    - {key: app, operator: Equals, values: [a]}\n",
        "    - {key: app, operator: Exists, values: [a]}\n",
        "    - {key: app, operator: DoesNotExist, values: [a]}\n",
        "    - {key: app, operator: In, values: []}\n",
        "    - {key: app, operator: NotIn}\n",
    ));
    check_errors(
        &text,
        &[
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.podSelector.matchExpressions[0].operator: invalid operator `Equals` (expected In, NotIn, Exists or DoesNotExist)",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.podSelector.matchExpressions[1].values: operator Exists takes no values",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.podSelector.matchExpressions[2].values: operator DoesNotExist takes no values",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.podSelector.matchExpressions[3].values: operator In needs at least one value",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.podSelector.matchExpressions[4].values: operator NotIn needs at least one value",
        ],
    );
}

#[test]
fn invalid_label_keys_and_values() {
    let text = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels:\n    \"bad key\": x\n    Example.COM/team: a\n---\n{}",
        pod("a", "").replace(
            "namespace: shop\n",
            "namespace: shop\n  labels:\n    app: \"web server\"\n    tier: \"-x\"\n"
        )
    );
    check_errors(
        &text,
        &[
            "t.yaml: document 1 (Namespace shop): metadata.labels.Example.COM/team: invalid label key `Example.COM/team`: the prefix must be a DNS subdomain (lowercase letters, digits, `-`, `.`)",
            "t.yaml: document 1 (Namespace shop): metadata.labels.bad key: invalid label key `bad key`: only letters, digits, `-`, `_` and `.` are allowed",
            "t.yaml: document 2 (Pod shop/a): metadata.labels.app: invalid label value `web server`: only letters, digits, `-`, `_` and `.` are allowed",
            "t.yaml: document 2 (Pod shop/a): metadata.labels.tier: invalid label value `-x`: must begin and end with a letter or digit",
        ],
    );
}

#[test]
fn invalid_cidrs_and_except_outside_cidr() {
    let text = policy(concat!(
        "  podSelector: {}\n",
        "  egress:\n",
        "  - to:\n",
        "    - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8, 192.168.0.0/24, nonsense]}\n",
        "    - ipBlock: {cidr: 300.0.0.0/8}\n",
    ));
    check_errors(
        &text,
        &[
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.egress[0].to[0].ipBlock.except[0]: 10.0.0.0/8 is not strictly inside the cidr 10.0.0.0/8",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.egress[0].to[0].ipBlock.except[1]: 192.168.0.0/24 is not strictly inside the cidr 10.0.0.0/8",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.egress[0].to[0].ipBlock.except[2]: invalid CIDR `nonsense` (expected e.g. 10.0.0.0/16)",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.egress[0].to[1].ipBlock.cidr: invalid CIDR `300.0.0.0/8` (expected e.g. 10.0.0.0/16)",
        ],
    );
}

#[test]
fn ports_out_of_range() {
    let text = format!(
        "{}---\n{}",
        policy("  podSelector: {}\n  ingress:\n  - ports:\n    - port: 0\n    - port: 65536\n    - {port: 80, endPort: 70000}\n"),
        pod("a", "").replace("image: nginx\n", "image: nginx\n    ports:\n    - containerPort: 0\n    - containerPort: 8080\n      hostPort: 99999\n")
    );
    check_errors(
        &text,
        &[
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.ingress[0].ports[0].port: port 0 is out of range (1-65535)",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.ingress[0].ports[1].port: port 65536 is out of range (1-65535)",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.ingress[0].ports[2].endPort: port 70000 is out of range (1-65535)",
            "t.yaml: document 3 (Pod shop/a): spec.containers[0].ports[0].containerPort: port 0 is out of range (1-65535)",
            "t.yaml: document 3 (Pod shop/a): spec.containers[0].ports[1].hostPort: port 99999 is out of range (1-65535)",
        ],
    );
}

#[test]
fn end_port_below_port_or_after_a_named_port() {
    let text = policy(
        "  podSelector: {}\n  ingress:\n  - ports:\n    - {port: 9000, endPort: 8999}\n    - {port: http, endPort: 90}\n    - {endPort: 90}\n    - {port: 9000, endPort: 9000}\n",
    );
    check_errors(
        &text,
        &[
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.ingress[0].ports[0].endPort: endPort 8999 is below port 9000",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.ingress[0].ports[1].endPort: endPort cannot follow the named port `http`",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.ingress[0].ports[2].endPort: endPort needs a numeric port",
        ],
    );
}

#[test]
fn duplicate_objects_name_both_places_across_files() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n";
    let got = load(&[("a.yaml", cm), ("b.yaml", &format!("---\n# again\n---\n{cm}"))]).unwrap_err();
    assert_eq!(
        got,
        vec![
            "b.yaml: document 2 (ConfigMap default/settings): metadata.name: duplicate ConfigMap default/settings: already defined at a.yaml: document 1"
        ]
    );
    // A pod declared by hand and made by a StatefulSet clashes too.
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: shop}\nspec:\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: c, image: pg}]}\n";
    check_errors(
        &format!("{NS}{sts}---\n{}", pod("db-0", "")),
        &[
            "t.yaml: document 3 (Pod shop/db-0): duplicate Pod shop/db-0: made by StatefulSet shop/db (t.yaml: document 2) and by Pod shop/db-0 (t.yaml: document 3)",
        ],
    );
}

#[test]
fn duplicate_pod_ips() {
    let text = format!(
        "{NS}{}---\n{}",
        pod("a", "status:\n  podIP: 10.244.0.9\n"),
        pod("b", "status:\n  podIPs:\n  - ip: 10.244.0.9\n")
    );
    check_errors(
        &text,
        &[
            "t.yaml: document 3 (Pod shop/b): status.podIPs: IP 10.244.0.9 is also the address of Pod shop/a (t.yaml: document 2)",
        ],
    );
}

#[test]
fn duplicate_service_ips() {
    let svc = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  clusterIP: 10.96.5.5\n  ports: [{{port: 80}}]\n"
        )
    };
    check_errors(
        &format!("{}---\n{}", svc("one"), svc("two")),
        &[
            "t.yaml: document 2 (Service default/two): spec.clusterIP: clusterIP 10.96.5.5 is also the clusterIP of Service default/one (t.yaml: document 1)",
        ],
    );
}

#[test]
fn addresses_outside_the_declared_networks() {
    let cluster = "apiVersion: kns.dev/v1alpha1\nkind: Cluster\nmetadata: {name: c}\nspec:\n  podCIDR: 10.244.0.0/16\n  serviceCIDR: 10.96.0.0/16\n---\n";
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec:\n  clusterIP: 10.97.0.1\n  ports: [{port: 80}]\n";
    check_errors(
        &format!("{cluster}{NS}{}---\n{svc}", pod("a", "status:\n  podIP: 172.16.0.1\n")),
        &[
            "t.yaml: document 3 (Pod shop/a): status.podIP: IP 172.16.0.1 is outside the pod CIDR 10.244.0.0/16",
            "t.yaml: document 4 (Service shop/s): spec.clusterIP: clusterIP 10.97.0.1 is outside the service CIDR 10.96.0.0/16",
        ],
    );
}

#[test]
fn addresses_outside_the_default_networks_are_one_warning_each_without_a_cluster_document() {
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec:\n  clusterIP: 172.20.0.9\n  ports: [{port: 80}]\n";
    let text = format!(
        "{NS}{}---\n{}---\n{svc}",
        pod("a", "status:\n  podIP: 172.16.0.1\n"),
        pod("b", "status:\n  podIP: 172.16.0.2\n")
    );
    let loaded = load_ok(&text);
    assert_eq!(
        warnings(&loaded),
        vec![
            "t.yaml: document 2 (Pod shop/a): status.podIP: 2 pod IP(s) (172.16.0.1, 172.16.0.2) are outside the default pod CIDR 10.244.0.0/16; kept as given (a kns Cluster document can declare the network)",
            "t.yaml: document 4 (Service shop/s): spec.clusterIP: 1 clusterIP(s) are outside the default service CIDR 10.96.0.0/12; kept as given (a kns Cluster document can declare the network)",
        ]
    );
}

#[test]
fn a_full_node_is_one_error_not_one_per_pod() {
    let cluster = "apiVersion: kns.dev/v1alpha1\nkind: Cluster\nspec:\n  nodePodCIDRPrefix: 30\n  nodes: [{name: only}]\n---\n";
    let pods: String = ["a", "b", "c"].iter().map(|n| format!("{}---\n", pod(n, ""))).collect();
    check_errors(
        &format!("{cluster}{NS}{pods}"),
        &[
            "t.yaml: document 4 (Pod shop/b): node only is full: its pod CIDR 10.244.0.0/30 has no address left for 2 pod(s), the first being shop/b (add nodes, or lower nodePodCIDRPrefix, in a kns Cluster document)",
        ],
    );
}

#[test]
fn objects_in_missing_namespaces() {
    let text = concat!(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: shop}\nspec: {containers: [{name: c, image: i}]}\n---\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: kube-system}\nspec: {containers: [{name: c, image: i}]}\n---\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\n---\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n---\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: store}\n",
    );
    check_errors(
        text,
        &[
            "t.yaml: document 1 (Pod shop/a): metadata.namespace: namespace `shop` does not exist (declare it with a Namespace document; only default, kube-node-lease, kube-public, kube-system exist without one); 2 more object(s) are in it",
            "t.yaml: document 5 (ConfigMap store/c): metadata.namespace: namespace `store` does not exist (declare it with a Namespace document; only default, kube-node-lease, kube-public, kube-system exist without one)",
        ],
    );
}

#[test]
fn unknown_fields_are_errors_with_their_path() {
    let text = policy(
        "  podSelector: {}\n  ingres:\n  - {}\n  egress:\n  - to:\n    - podSelector: {matchLabel: {a: b}}\n",
    );
    check_errors(
        &text,
        &[
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.ingres: unknown field (not in the Kubernetes schema of this kind)",
            "t.yaml: document 2 (NetworkPolicy shop/p): spec.egress[0].to[0].podSelector.matchLabel: unknown field (not in the Kubernetes schema of this kind)",
        ],
    );
}

#[test]
fn type_errors_carry_the_field_path() {
    let text = format!(
        "{NS}{}",
        pod("a", "")
            .replace("image: nginx\n", "image: nginx\n    ports:\n    - containerPort: eighty\n")
    );
    check_errors(
        &text,
        &[
            "t.yaml: document 2 (Pod shop/a): spec.containers[0].ports[0].containerPort: invalid type: string \"eighty\", expected i32",
        ],
    );
}

#[test]
fn fields_kns_does_not_act_on_are_warnings_once_per_kind_and_field() {
    let probe = "    readinessProbe: {httpGet: {path: /, port: 80}}\n    resources: {limits: {cpu: 1}}\n    volumeMounts: [{name: v, mountPath: /v}]\n";
    let spec_extra = format!(
        "    image: nginx\n{probe}  - name: d\n    image: nginx\n{probe}  volumes: [{{name: v, emptyDir: {{}}}}]\n"
    );
    let text = format!(
        "{NS}{}---\n{}",
        pod("a", "").replace("    image: nginx\n", &spec_extra),
        pod("b", "").replace("    image: nginx\n", &spec_extra)
    );
    let loaded = load_ok(&text);
    assert_eq!(
        warnings(&loaded),
        vec![
            "t.yaml: document 2 (Pod shop/a): spec.containers[0].readinessProbe: readiness probes are not run; pods are ready unless status.conditions says otherwise"
        ]
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let elsewhere = pod("x", "").replace("namespace: shop", "namespace: nowhere");
    let text = format!(
        "{}---\nkind: Pod\n---\n{elsewhere}",
        policy("  podSelector: {matchLabels: {\"a b\": c}}\n")
    );
    let got = load_err(&text);
    let places: Vec<&str> = got.iter().map(|e| e.split(':').nth(1).unwrap_or_default()).collect();
    assert_eq!(
        places,
        [" document 2 (NetworkPolicy shop/p)", " document 3", " document 4 (Pod nowhere/x)"],
        "{got:#?}"
    );
}

/// The broken examples shipped with kns, loaded as the CLI loads a directory.
#[test]
fn bad_examples_render_exactly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests/bad");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).expect("bad examples").map(|e| e.expect("entry").path()).collect();
    files.sort();
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|p| {
            (
                format!("bad/{}", p.file_name().unwrap().to_string_lossy()),
                std::fs::read_to_string(p).expect("read"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let got = load(&refs).unwrap_err();
    let expected = [
        "bad/1-syntax-and-kinds.yaml: document 2: malformed YAML: did not find expected ',' or '}' at line 11 column 1, while parsing a flow mapping at line 10 column 11",
        "bad/1-syntax-and-kinds.yaml: document 3: kind: missing kind",
        "bad/1-syntax-and-kinds.yaml: document 4: kind: unsupported kind `Secret` (kns reads Namespace, Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Service, Endpoints, EndpointSlice, NetworkPolicy, Ingress, ConfigMap, Cluster)",
        "bad/1-syntax-and-kinds.yaml: document 5 (Service): metadata.name: missing metadata.name",
        "bad/1-syntax-and-kinds.yaml: document 6, item 1 (Pod shop/cache): metadata.labels.app: invalid label value `-cache`: must begin and end with a letter or digit",
        "bad/1-syntax-and-kinds.yaml: document 6, item 1 (Pod shop/cache): spec.containers[0].ports[0].containerPort: port 0 is out of range (1-65535)",
        "bad/1-syntax-and-kinds.yaml: document 6, item 2 (Pod warehouse/worker): metadata.namespace: namespace `warehouse` does not exist (declare it with a Namespace document; only default, kube-node-lease, kube-public, kube-system exist without one)",
        "bad/2-policies.yaml: document 1 (NetworkPolicy shop/db-access): spec.podSelecter: unknown field (not in the Kubernetes schema of this kind)",
        "bad/2-policies.yaml: document 1 (NetworkPolicy shop/db-access): spec.ingress[0].from[0].podSelector.matchExpressions[0].operator: invalid operator `Equals` (expected In, NotIn, Exists or DoesNotExist)",
        "bad/2-policies.yaml: document 1 (NetworkPolicy shop/db-access): spec.ingress[0].from[0].podSelector.matchExpressions[1].values: operator Exists takes no values",
        "bad/2-policies.yaml: document 1 (NetworkPolicy shop/db-access): spec.ingress[0].from[0].podSelector.matchExpressions[2].values: operator In needs at least one value",
        "bad/2-policies.yaml: document 1 (NetworkPolicy shop/db-access): spec.ingress[0].from[1].ipBlock.except[0]: 10.1.0.0/24 is not strictly inside the cidr 10.0.0.0/16",
        "bad/2-policies.yaml: document 1 (NetworkPolicy shop/db-access): spec.ingress[0].from[2].ipBlock.cidr: invalid CIDR `10.0.0.0/40` (expected e.g. 10.0.0.0/16)",
        "bad/2-policies.yaml: document 1 (NetworkPolicy shop/db-access): spec.ingress[0].ports[0].port: port 0 is out of range (1-65535)",
        "bad/2-policies.yaml: document 1 (NetworkPolicy shop/db-access): spec.ingress[0].ports[1].endPort: endPort 5000 is below port 6000",
        "bad/2-policies.yaml: document 1 (NetworkPolicy shop/db-access): spec.ingress[0].ports[2].endPort: endPort cannot follow the named port `postgres`",
        "bad/2-policies.yaml: document 2 (Service shop/web): spec.ports[0].port: port 70000 is out of range (1-65535)",
        "bad/3-addresses.yaml: document 3 (Pod shop/b): status.podIP: IP 10.244.0.7 is also the address of Pod shop/a (bad/3-addresses.yaml: document 2)",
        "bad/3-addresses.yaml: document 4 (Pod shop/c): status.podIP: IP 192.168.50.3 is outside the pod CIDR 10.244.0.0/16",
        "bad/3-addresses.yaml: document 6 (Service shop/two): spec.clusterIP: clusterIP 10.96.0.50 is also the clusterIP of Service shop/one (bad/3-addresses.yaml: document 5)",
        "bad/3-addresses.yaml: document 7 (Service shop/three): spec.clusterIP: clusterIP 10.200.0.1 is outside the service CIDR 10.96.0.0/16",
        "bad/3-addresses.yaml: document 8 (Service shop/web): metadata.name: duplicate Service shop/web: already defined at bad/2-policies.yaml: document 2",
    ];
    assert_eq!(got, expected, "\ngot:\n{}", got.join("\n"));
}
