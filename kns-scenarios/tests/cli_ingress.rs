//! `kns curl` through the ingress controller of `examples/manifests/api-gateway.yaml`, with
//! `-H 'Host: ...'`, and the built-in controller the CLI adds when the manifests have none.

mod common;
use common::{example_in, kns, text};

fn example(name: &str) -> String {
    example_in("manifests", name)
}

#[test]
fn curl_through_the_api_gateway_with_a_host_header() {
    let gw = example("api-gateway.yaml");
    let host = "Host: api.prod.example.com";
    // From the internet, through node-1's NodePort.
    let url = "http://192.168.0.10:30080/inventory/items";
    let out = kns(&["curl", "-f", &gw, "--from", "internet", "-H", host, url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body = text(&out.stdout);
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"), "{body}");
    assert!(lines.next().is_some_and(|l| l.starts_with("inventory-")), "{body}");
    // From a pod, through the NodePort too (the example runs no cluster DNS).
    let url = "http://192.168.0.10:30080/identity";
    let out = kns(&["curl", "-f", &gw, "--from", "default/client", "-H", host, url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).lines().nth(1).is_some_and(|l| l.starts_with("identity-")));
    // Without the Host header the request names the node: no rule matches.
    let out = kns(&["curl", "-f", &gw, "--from", "internet", "http://192.168.0.10:30080/identity"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "HTTP/1.1 404 Not Found\n404 Not Found: default backend - 404\n");
    // A header without a colon is a usage error.
    let out = kns(&["curl", "-f", &gw, "--from", "internet", "-H", "Host", url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("header `Host`: write `Name: value`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_cli_adds_the_builtin_controller_when_none_is_declared() {
    let dir = std::env::temp_dir().join(format!("kns-cli-ingress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("site.yaml");
    std::fs::write(
        &file,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: site, labels: {app: site}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: site}
spec: {selector: {app: site}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site}
spec:
  tls: [{hosts: [www.example.com]}]
  rules:
  - host: www.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: site, port: {number: 80}}}}
"#,
    )
    .expect("write the manifest");
    let f = file.to_string_lossy().into_owned();
    let url = "http://192.168.0.11:30080/";
    let out = kns(&["curl", "-f", &f, "--from", "internet", "-H", "Host: www.example.com", url]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout), "HTTP/1.1 200 OK\nsite\n");
    assert!(
        stderr.contains("added kns's built-in one: pod ingress-nginx/ingress-nginx-controller"),
        "{stderr}"
    );
    assert!(stderr.contains("http node port 30080"), "{stderr}");
    assert!(
        stderr.contains("warning: ingress default/site: tls for www.example.com is not supported"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
