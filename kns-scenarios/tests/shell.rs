//! `kns shell` end to end: the binary reads a script on standard input, echoes each command
//! after the prompt, prints what it answered, and exits 1 if any command failed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn shell(args: &[&str], script: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kns"))
        .arg("shell")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the kns binary runs");
    child.stdin.take().expect("piped").write_all(script.as_bytes()).expect("script written");
    child.wait_with_output().expect("kns shell finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// Runs `script` on the built-in cluster and expects every command to succeed.
fn ok(script: &str) -> String {
    let out = shell(&[], script);
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{s}\nstderr:\n{}", text(&out.stderr));
    s
}

/// The output of the command `command` in a transcript (up to the next prompt).
fn answer<'a>(transcript: &'a str, command: &str) -> &'a str {
    let start = transcript
        .find(&format!("kns> {command}\n"))
        .unwrap_or_else(|| panic!("no `{command}` in:\n{transcript}"))
        + "kns> \n".len()
        + command.len();
    let rest = &transcript[start..];
    &rest[..rest.find("kns> ").unwrap_or(rest.len())]
}

fn demo() -> String {
    let path: PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "..", "examples", "manifests", "demo.yaml"].iter().collect();
    path.to_string_lossy().into_owned()
}

const DENY_WEB: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-db}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: db}}}]}]
";

#[test]
fn kubectl_get_lists_pods_services_and_endpoints() {
    let s = ok(
        "kubectl get pods -o wide\nkubectl get svc -A\nkubectl get endpoints web\nkubectl get netpol\n",
    );
    assert_eq!(
        answer(&s, "kubectl get pods -o wide"),
        "NAME     READY   STATUS    RESTARTS   IP           NODE\n\
         client   1/1     Running   0          10.244.1.2   node-2\n\
         db       1/1     Running   0          10.244.0.2   node-1\n\
         web      2/2     Running   0          10.244.0.3   node-1\n"
    );
    let svc = answer(&s, "kubectl get svc -A");
    assert!(
        svc.starts_with(
            "NAMESPACE     NAME         TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)\n"
        ),
        "{svc}"
    );
    assert!(
        svc.contains("default       web          ClusterIP   10.96.0.11   <none>        80/TCP\n"),
        "{svc}"
    );
    assert!(
        svc.contains(
            "kube-system   kube-dns     ClusterIP   10.96.0.10   <none>        53/UDP,53/TCP\n"
        ),
        "{svc}"
    );
    assert_eq!(answer(&s, "kubectl get endpoints web"), "NAME   ENDPOINTS\nweb    10.244.0.3:80\n");
    assert_eq!(answer(&s, "kubectl get netpol"), "No resources found in default namespace.\n");
}

#[test]
fn ip_ping_traceroute_curl_and_dns_run_inside_pods() {
    let s = ok("\
kubectl exec web -- ip addr show eth0
use client
ping -c 2 10.244.0.3
traceroute 10.244.0.3
curl http://web
kubectl exec db -- curl -m 2 http://web.default.svc.cluster.local/
dig web.default.svc.cluster.local
nslookup web
ip netns exec default.db ip route
");
    let addr = answer(&s, "kubectl exec web -- ip addr show eth0");
    assert!(addr.contains("inet 10.244.0.3/24 scope global eth0"), "{addr}");
    let ping = answer(&s, "ping -c 2 10.244.0.3");
    assert!(ping.contains("2 packets transmitted, 2 received, 0% packet loss"), "{ping}");
    // client (node-2) -> its cni0 -> node-1 -> web.
    let trace = answer(&s, "traceroute 10.244.0.3");
    assert!(trace.contains(" 1  10.244.1.1 ") && trace.contains(" 2  192.168.0.10 "), "{trace}");
    assert!(trace.contains(" 3  10.244.0.3 "), "{trace}");
    // agnhost answers HTTP with the pod's name, through the Service's cluster IP.
    assert_eq!(answer(&s, "curl http://web"), "web\n");
    assert_eq!(
        answer(&s, "kubectl exec db -- curl -m 2 http://web.default.svc.cluster.local/"),
        "web\n"
    );
    let dig = answer(&s, "dig web.default.svc.cluster.local");
    assert!(dig.contains("status: NOERROR"), "{dig}");
    assert!(dig.contains("web.default.svc.cluster.local.\t30\tIN\tA\t10.96.0.11"), "{dig}");
    let ns = answer(&s, "nslookup web");
    assert!(ns.contains("Name:\tweb.default.svc.cluster.local\nAddress: 10.96.0.11"), "{ns}");
    assert!(
        answer(&s, "ip netns exec default.db ip route").contains("default via 10.244.0.1 dev eth0")
    );
}

#[test]
fn an_applied_policy_filters_new_connections_and_its_deletion_restores_them() {
    let file: PathBuf = [env!("CARGO_TARGET_TMPDIR"), "shell-web-from-db.yaml"].iter().collect();
    std::fs::write(&file, DENY_WEB).expect("temporary manifest written");
    let apply = format!("kubectl apply -f {}", file.display());
    let s = ok(&format!(
        "\
use client
{apply}
{apply}
curl -m 2 http://web
kubectl exec db -- curl -m 2 http://web
explain client web 80/TCP
kubectl get netpol
kubectl delete netpol web-from-db
curl -m 2 http://web
"
    ));
    let prompt = format!("kns> {apply}\n");
    let mut applies = s.match_indices(&prompt).map(|(i, _)| &s[i..]);
    let first = applies.next().expect("first apply");
    assert!(first.contains("\nnetworkpolicy.networking.k8s.io/web-from-db created\nkns> "), "{s}");
    let second = applies.next().expect("second apply");
    assert!(
        second.contains("\nnetworkpolicy.networking.k8s.io/web-from-db unchanged\nkns> "),
        "{s}"
    );
    // A NetworkPolicy is applied to the running cluster, without a rebuild.
    assert!(!s.contains("rebuilt"), "{s}");
    let filtered = s.split("kns> curl -m 2 http://web\n").nth(1).expect("curl");
    assert!(
        filtered.starts_with("curl: (28) Failed to connect to 10.96.0.11 port 80 after 2000 ms"),
        "{s}"
    );
    assert_eq!(answer(&s, "kubectl exec db -- curl -m 2 http://web"), "web\n");
    let why = answer(&s, "explain client web 80/TCP");
    assert!(why.starts_with("DENIED default/client -> default/web 80/TCP\n"), "{why}");
    assert!(why.contains("isolated by default/web-from-db"), "{why}");
    assert_eq!(
        answer(&s, "kubectl get netpol"),
        "NAME          POD-SELECTOR\nweb-from-db   app=web\n"
    );
    assert_eq!(
        answer(&s, "kubectl delete netpol web-from-db"),
        "networkpolicy.networking.k8s.io \"web-from-db\" deleted\n"
    );
    assert!(s.ends_with("kns> curl -m 2 http://web\nweb\n"), "{s}");
}

#[test]
fn delete_and_apply_change_what_get_shows_and_where_traffic_goes() {
    let s = ok("\
use db
kubectl delete pod db
kubectl get pods
kubectl apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: web2, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: nginx, ports: [{containerPort: 80}]}]}
EOF
kubectl get pods -o wide
kubectl get endpoints web
kubectl delete svc web
kubectl get svc
kubectl exec client -- curl -m 2 http://web
");
    // The pod commands ran in is gone: they move back to the first node.
    assert_eq!(
        answer(&s, "kubectl delete pod db"),
        "pod \"db\" deleted\n# commands now run in node node-1\n"
    );
    assert!(!answer(&s, "kubectl get pods").contains("db "), "{s}");
    let applied = s.split("EOF\n").nth(2).expect("apply output");
    assert!(
        applied.starts_with("pod/web2 created\n# the emulated cluster was rebuilt"),
        "{applied}"
    );
    // Running pods keep their addresses across the rebuild; the new pod takes a free one.
    let wide = answer(&s, "kubectl get pods -o wide");
    assert!(wide.contains("client   1/1     Running   0          10.244.1.2   node-2\n"), "{wide}");
    assert!(wide.contains("web      2/2     Running   0          10.244.0.3   node-1\n"), "{wide}");
    assert!(wide.contains("web2     1/1     Running   0          10.244.1.4   node-2\n"), "{wide}");
    assert_eq!(
        answer(&s, "kubectl get endpoints web"),
        "NAME   ENDPOINTS\nweb    10.244.0.3:80,10.244.1.4:80\n"
    );
    assert!(answer(&s, "kubectl delete svc web").starts_with("service \"web\" deleted\n"), "{s}");
    assert!(!answer(&s, "kubectl get svc").contains("web"), "{s}");
    assert_eq!(
        answer(&s, "kubectl exec client -- curl -m 2 http://web"),
        "curl: (6) Could not resolve host: web\n"
    );
}

#[test]
fn errors_are_one_line_the_loop_goes_on_and_the_exit_code_says_so() {
    let out = shell(
        &[],
        "frobnicate\nkubectl get widgets\nkubectl exec nope -- ip addr\nuse nowhere\nexplain client web\nkubectl get pods -n ops\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert_eq!(
        answer(&s, "frobnicate"),
        "error: unknown command `frobnicate` (type `help` for the list)\n"
    );
    assert!(
        answer(&s, "kubectl get widgets")
            .starts_with("error: the server doesn't have a resource type \"widgets\"")
    );
    assert_eq!(
        answer(&s, "kubectl exec nope -- ip addr"),
        "error: pods \"nope\" not found in namespace default\n"
    );
    assert!(
        answer(&s, "use nowhere").starts_with("error: no pod, node or `internet` called `nowhere`")
    );
    assert!(answer(&s, "explain client web").starts_with("error: usage: explain FROM TO PORT"));
    // The loop went on after the errors.
    assert!(answer(&s, "kubectl get pods -n ops").contains("tester"), "{s}");
    // `exit` stops reading; a clean script exits 0.
    let out = shell(&[], "help\nexit\nfrobnicate\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("kubectl exec POD [-n NS] -- CMD ARGS..."));
}

#[test]
fn manifests_from_files_and_their_errors() {
    let s = {
        let out = shell(
            &["-f", &demo()],
            "kubectl get netpol -n backend\nkubectl get svc -n frontend -o wide\n",
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert!(s.starts_with("# kns shell: cluster demo with 2 nodes and"), "{s}");
    let netpol = answer(&s, "kubectl get netpol -n backend");
    let row = |name: &str| {
        netpol
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
    };
    assert_eq!(row("default-deny"), Some(vec!["default-deny", "<all>"]), "{netpol}");
    assert_eq!(row("allow-web-to-api"), Some(vec!["allow-web-to-api", "app=api"]), "{netpol}");
    let svc = answer(&s, "kubectl get svc -n frontend -o wide");
    assert!(svc.contains("NodePort") && svc.contains("app=web"), "{svc}");
    let out = shell(&["-f", "/nonexistent/kns.yaml"], "kubectl get pods\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: /nonexistent/kns.yaml: "),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn a_transcript_is_deterministic() {
    let script = "\
# a short session on the built-in cluster
kubectl get pods -A -o wide
use client
ping -c 1 web
curl http://web
kubectl apply -f - <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-db}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: db}}}]}]
EOF
curl -m 2 http://web
explain client web 80
kubectl get endpoints -A
";
    let s = ok(script);
    assert_eq!(ok(script), s);
    insta::assert_snapshot!("shell_session", s);
}

#[test]
fn a_rejected_apply_names_the_problem_and_changes_nothing() {
    let script = "\
kubectl apply -f - <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: good}
spec: {podSelector: {}}
EOF
kubectl apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: extra, labels: {app: web}}
spec: {containers: [{name: c}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: 70000}]}]
EOF
kubectl get netpol
kubectl get pods
";
    let out = shell(&[], script);
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    // The document number counts in the here-document as written, not in the session.
    assert!(
        s.contains("EOF\nerror: <stdin>: document 2 (NetworkPolicy default/bad): spec.ingress[0].ports[0].port: port 70000 is out of range (1-65535)\nkns> "),
        "{s}"
    );
    // Neither object of the rejected apply exists.
    assert_eq!(answer(&s, "kubectl get netpol"), "NAME   POD-SELECTOR\ngood   <all>\n");
    assert!(!answer(&s, "kubectl get pods").contains("extra"), "{s}");
}
