//! Ingress routing with real packets: from the internet host (203.0.113.10) through a node's
//! NodePort to the ingress controller pod, then through kube-proxy to the backends.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kns_core::flow::Protocol;
use kns_core::manifest::{Loader, load_str};
use kns_sim::cluster::{ClusterNet, ClusterOptions, Source};
use kns_sim::net::NetnsId;
use kns_sim::stack::SmolStack;
use kns_sim::stack::apps::{
    HttpClient, HttpClientConfig, HttpResponse, HttpServer, ProbeConfig, ProbeOutcome,
};

const API_GATEWAY: &str = include_str!("../../examples/manifests/api-gateway.yaml");

fn build(yaml: &str) -> ClusterNet {
    let cluster = load_str("t.yaml", yaml).expect("the manifest loads").cluster;
    ClusterNet::build(cluster, ClusterOptions::default()).expect("the cluster builds")
}

/// Builds `yaml` with the built-in controller added when it has none.
fn build_with_builtin(yaml: &str) -> ClusterNet {
    let mut loader = Loader::new();
    loader.add("t.yaml", yaml);
    let (loaded, added) = loader.finish_with_ingress_controller().expect("the manifest loads");
    assert!(added, "the built-in controller was added");
    ClusterNet::build(loaded.cluster, ClusterOptions::default()).expect("the cluster builds")
}

/// What curl got: the status and body, or its exit code and error line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Reply(u16, String),
    Failed(u8, String),
}

impl Got {
    fn status(&self) -> u16 {
        match self {
            Got::Reply(s, _) => *s,
            Got::Failed(..) => 0,
        }
    }

    fn body(&self) -> &str {
        match self {
            Got::Reply(_, b) | Got::Failed(_, b) => b,
        }
    }
}

/// `curl -H 'Host: HOST' URL` from `ns`.
fn curl(net: &mut ClusterNet, ns: NetnsId, url: &str, host: Option<&str>) -> Got {
    let mut config = HttpClientConfig::get(url);
    if let Some(h) = host {
        config.headers.push(("Host".into(), h.into()));
    }
    let limit = config.max_time + Duration::from_secs(5);
    net.run_app(ns, HttpClient::new(config), limit, |c| {
        c.exit_code().map(|code| match c.reply() {
            Some(r) if code == 0 => Got::Reply(r.status, String::from_utf8_lossy(&r.body).into()),
            _ => Got::Failed(code, c.output().trim().to_string()),
        })
    })
    .expect("the source has a stack")
    .expect("curl finishes")
}

fn node_ip(net: &ClusterNet, i: usize) -> IpAddr {
    net.nodes()[i].ip
}

fn from_internet(net: &mut ClusterNet, host: &str, path: &str) -> Got {
    let port = net.ingress_node_port().expect("a NodePort Service for the controller");
    let url = format!("http://{}:{port}{path}", node_ip(net, 0));
    let ns = net.outside().internet;
    curl(net, ns, &url, Some(host))
}

/// The body names the pod that answered; its Deployment is the name before the hash.
fn served_by(got: &Got) -> &str {
    assert_eq!(got.status(), 200, "{got:?}");
    let name = got.body().trim();
    let mut parts = name.rsplitn(3, '-');
    let _ = (parts.next(), parts.next());
    parts.next().unwrap_or(name)
}

#[test]
fn ingress_routing_of_the_api_gateway_from_the_internet() {
    let mut net = build(API_GATEWAY);
    assert_eq!(net.ingress_controllers().len(), 1);
    assert_eq!(net.ingress_node_port(), Some(30080));
    let host = "api.prod.example.com";
    for (path, service) in [
        ("/identity", "identity"),
        ("/identity/users/7", "identity"),
        ("/identity/", "identity"),
        ("/inventory?sku=12", "inventory"),
        ("/metrics", "metrics"),
    ] {
        let got = from_internet(&mut net, host, path);
        assert_eq!(served_by(&got), service, "{path}: {got:?}");
    }
    // Prefix is by path element; /metrics is Exact; other hosts have no rules.
    for (host, path) in [
        (host, "/identityx"),
        (host, "/metrics/x"),
        (host, "/"),
        ("api.dev.example.com", "/identity"),
    ] {
        let got = from_internet(&mut net, host, path);
        assert_eq!(got.status(), 404, "{host}{path}: {got:?}");
        assert!(got.body().contains("default backend - 404"), "{got:?}");
    }
    // Every node's NodePort leads to the controller (kube-proxy forwards to its node).
    let url = format!("http://{}:30080/inventory", node_ip(&net, 1));
    let ns = net.outside().internet;
    let got = curl(&mut net, ns, &url, Some(host));
    assert_eq!(served_by(&got), "inventory");
    // The Host header's port and case do not matter.
    assert_eq!(
        served_by(&from_internet(&mut net, "API.prod.example.com:30080", "/metrics")),
        "metrics"
    );

    // The access log: upstreams are the Services' cluster IPs; the client seen is a node (the
    // NodePort masquerades).
    let ctrl = net.ingress_controllers()[0];
    let identity_ip = net.cluster().service_by_name("services", "identity").unwrap().cluster_ip;
    let nodes: Vec<IpAddr> = net.nodes().iter().map(|n| n.ip).collect();
    let log = net.ingress_controller(ctrl).expect("the controller runs").log().to_vec();
    assert_eq!(log.len(), 11);
    let first = &log[0];
    assert_eq!(first.route, "api.prod.example.com /identity Prefix -> services/identity:http");
    assert_eq!(first.upstream, Some(SocketAddr::new(identity_ip.unwrap(), 80)));
    assert_eq!(first.status, 200);
    assert!(nodes.contains(&first.peer.expect("a peer").ip()), "{first:?}");
    assert_eq!(log[5].route, "no route (server api.prod.example.com)");
    assert_eq!(log[8].route, "no route (server _)");
}

#[test]
fn the_gateway_is_the_only_way_to_the_upstream_services() {
    let mut net = build(API_GATEWAY);
    let client = net.cluster().pod_by_ref("default/client").expect("client").id;
    let identity = net.cluster().service_by_name("services", "identity").unwrap();
    let vip = SocketAddr::new(identity.cluster_ip.unwrap(), 80);
    // Direct: the api-gateway-upstream policy drops the SYN at the backend's node.
    let direct = net.probe(Source::Pod(client), vip, Protocol::Tcp, ProbeConfig::default());
    assert_eq!(direct.expect("the probe finishes").outcome, ProbeOutcome::Filtered);
    let ns = net.pod_ns(client).expect("client runs");
    let got = curl(&mut net, ns, &format!("http://{vip}/identity"), None);
    assert!(matches!(got, Got::Failed(28, _)), "{got:?}");
    // Through the gateway's cluster IP, with the gateway's Host: allowed.
    let gw = net.cluster().service_by_name("ingress-nginx", "ingress-nginx-controller").unwrap();
    let url = format!("http://{}/identity", gw.cluster_ip.unwrap());
    let got = curl(&mut net, ns, &url, Some("api.prod.example.com"));
    assert_eq!(served_by(&got), "identity");
    // Inside the cluster no masquerade happens: the controller sees the client pod.
    let ctrl = net.ingress_controllers()[0];
    let client_ip = net.pod_ip(client);
    let log = net.ingress_controller(ctrl).unwrap().log().to_vec();
    assert_eq!(log.last().and_then(|e| e.peer).map(|p| p.ip()), Some(client_ip));
}

/// Backends named after what routes to them; each Deployment's pods answer with their name.
const ROUTES: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: i, ports: [{containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: exact}
spec:
  replicas: 1
  selector: {matchLabels: {app: exact}}
  template:
    metadata: {labels: {app: exact}}
    spec: {containers: [{name: c, image: i, ports: [{containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: impl}
spec:
  replicas: 1
  selector: {matchLabels: {app: impl}}
  template:
    metadata: {labels: {app: impl}}
    spec: {containers: [{name: c, image: i, ports: [{containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: wild}
spec:
  replicas: 1
  selector: {matchLabels: {app: wild}}
  template:
    metadata: {labels: {app: wild}}
    spec: {containers: [{name: c, image: i, ports: [{containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: fallback}
spec:
  replicas: 1
  selector: {matchLabels: {app: fallback}}
  template:
    metadata: {labels: {app: fallback}}
    spec: {containers: [{name: c, image: i, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: exact}
spec: {selector: {app: exact}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: impl}
spec: {selector: {app: impl}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: wild}
spec: {selector: {app: wild}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: fallback}
spec: {selector: {app: fallback}, ports: [{name: web, port: 8000, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec: {selector: {app: nothing}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: refusing}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 9999}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: sites}
spec:
  rules:
  - host: foo.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /exact, pathType: Exact, backend: {service: {name: exact, port: {number: 80}}}}
      - {path: /impl, pathType: ImplementationSpecific, backend: {service: {name: impl, port: {number: 80}}}}
  - host: "*.wild.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: wild, port: {number: 80}}}}
  - host: bar.example.com
    http:
      paths:
      - {path: /only, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
  - host: broken.example.com
    http:
      paths:
      - {path: /empty, pathType: Prefix, backend: {service: {name: empty, port: {number: 80}}}}
      - {path: /refusing, pathType: Prefix, backend: {service: {name: refusing, port: {number: 80}}}}
      - {path: /missing, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: catch-all}
spec:
  defaultBackend: {service: {name: fallback, port: {name: web}}}
"#;

#[test]
fn ingress_routing_by_host_and_path_type_with_the_builtin_controller() {
    let mut net = build_with_builtin(ROUTES);
    assert_eq!(net.ingress_node_port(), Some(30080));
    assert!(net.warnings().is_empty(), "{:?}", net.warnings());
    let cases = [
        ("foo.example.com", "/", "web"),
        ("foo.example.com", "/anything", "web"),
        ("foo.example.com", "/exact", "exact"),
        ("foo.example.com", "/exact/", "web"),
        ("foo.example.com", "/exactly", "web"),
        ("foo.example.com", "/impl", "impl"),
        ("foo.example.com", "/implementation", "impl"),
        ("a.wild.example.com", "/x", "wild"),
        ("a.b.wild.example.com", "/x", "fallback"),
        ("wild.example.com", "/x", "fallback"),
        ("unknown.example.com", "/", "fallback"),
        ("192.168.0.10", "/", "fallback"),
        ("bar.example.com", "/only/me", "web"),
    ];
    for (host, path, deployment) in cases {
        let got = from_internet(&mut net, host, path);
        assert_eq!(served_by(&got), deployment, "{host}{path}: {got:?}");
    }
    // bar.example.com has a server of its own: its other paths do not fall to the catch-all.
    let got = from_internet(&mut net, "bar.example.com", "/other");
    assert_eq!(got.status(), 404, "{got:?}");
    // A Service without endpoints or without the Service at all: 503 from the controller,
    // without a connection; a backend that refuses (nothing on port 9999): 502.
    let got = from_internet(&mut net, "broken.example.com", "/empty");
    assert_eq!(got.status(), 503, "{got:?}");
    assert!(got.body().contains("no ready endpoints for Service default/empty port 80"), "{got:?}");
    let got = from_internet(&mut net, "broken.example.com", "/missing");
    assert_eq!(
        got,
        Got::Reply(503, "503 Service Unavailable: no Service default/missing\n".into())
    );
    let got = from_internet(&mut net, "broken.example.com", "/refusing");
    assert_eq!(got.status(), 502, "{got:?}");
    assert!(got.body().contains("Connection refused"), "{got:?}");
    let ctrl = net.ingress_controllers()[0];
    let by_status = net.ingress_controller(ctrl).unwrap().by_status().clone();
    assert_eq!(
        by_status.into_iter().collect::<Vec<_>>(),
        vec![(200, 13), (404, 1), (502, 1), (503, 2)]
    );
}

#[test]
fn endpoints_follow_pods_and_https_is_refused() {
    let tls = format!("{ROUTES}  tls: [{{hosts: [foo.example.com], secretName: foo-cert}}]\n");
    let mut net = build_with_builtin(&tls);
    let warning = net.warnings().iter().find(|w| w.contains("tls")).cloned();
    assert_eq!(
        warning.as_deref(),
        Some(
            "ingress default/catch-all: tls for foo.example.com is not supported (kns's ingress \
             controller does no TLS termination and no SSL passthrough); these hosts are served \
             over plain HTTP only, and HTTPS connections to the controller are refused"
        )
    );
    // The controller does not listen on 443: the https NodePort is refused.
    let ns = net.outside().internet;
    let out = net
        .probe(
            Source::Internet,
            SocketAddr::new(node_ip(&net, 0), 30443),
            Protocol::Tcp,
            ProbeConfig::default(),
        )
        .expect("the probe finishes")
        .outcome;
    assert_eq!(out, ProbeOutcome::Refused);
    let url = format!("http://{}:30080/", node_ip(&net, 0));
    let got = curl(&mut net, ns, &url, Some("foo.example.com"));
    assert_eq!(served_by(&got), "web");
    // The only web pod restarts with a new address: the controller follows the endpoints.
    let web = net.cluster().pods.iter().find(|p| p.name.starts_with("web-")).unwrap().id;
    let old_ip = net.pod_ip(web);
    assert_ne!(net.restart_pod(web).expect("restarted"), old_ip);
    assert_eq!(served_by(&from_internet(&mut net, "foo.example.com", "/")), "web");
    // Deleted, the pod leaves the endpoints: 503 without a connection.
    net.delete_pod(web).expect("deleted");
    let got = from_internet(&mut net, "foo.example.com", "/");
    assert_eq!(got.status(), 503, "{got:?}");
}

#[test]
fn backends_see_the_forwarded_headers() {
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: echo, labels: {app: echo}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec: {selector: {app: echo}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: echo}
spec:
  rules:
  - host: echo.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: echo, port: {number: 80}}}}
"#;
    let mut net = build_with_builtin(yaml);
    let echo = net.cluster().pod_by_ref("default/echo").unwrap().id;
    let ns = net.pod_ns(echo).unwrap();
    let server = HttpServer::new(8080, |req| {
        let mut body = format!("{} {}\n", req.method, req.target);
        for (n, v) in &req.headers {
            body.push_str(&format!("{n}: {v}\n"));
        }
        HttpResponse::new(201, body).with_header("X-Backend", "echo")
    });
    net.sim_mut().stack_mut::<SmolStack>(ns).unwrap().spawn(server);
    let got = from_internet(&mut net, "echo.example.com", "/hello?x=1");
    let Got::Reply(201, body) = got else { panic!("{got:?}") };
    // The NodePort masquerades: the controller, on the node the request entered, sees that
    // node's address on the pod bridge (cni0, the first address of the node's pod range).
    let ctrl = net.ingress_controllers()[0];
    let ctrl_node = net.cluster().pod(ctrl).node;
    assert_eq!(net.cluster().node(ctrl_node).ip, node_ip(&net, 0));
    let node = net.pod_prefix(ctrl).unwrap().hosts().next().unwrap();
    assert_eq!(
        body,
        format!(
            "GET /hello?x=1\nHost: echo.example.com\nUser-Agent: curl/8.5.0\nAccept: */*\n\
             X-Forwarded-For: {node}\nX-Real-IP: {node}\nX-Forwarded-Host: echo.example.com\n\
             X-Forwarded-Port: 80\nX-Forwarded-Proto: http\nConnection: close\n"
        )
    );
}

#[test]
fn ingress_runs_are_deterministic() {
    let run = || {
        let mut net = build(API_GATEWAY);
        let mut out = Vec::new();
        for path in ["/identity", "/identity", "/identity", "/inventory", "/nope"] {
            out.push(from_internet(&mut net, "api.prod.example.com", path));
        }
        let ctrl = net.ingress_controllers()[0];
        let log = net.ingress_controller(ctrl).unwrap().log().to_vec();
        (out, log, net.sim().now())
    };
    assert_eq!(run(), run());
}

#[test]
fn ingresses_without_a_controller_are_reported() {
    let net = build(ROUTES);
    assert!(net.ingress_controllers().is_empty());
    assert_eq!(net.ingress_node_port(), None);
    assert_eq!(
        net.warnings(),
        ["2 Ingress object(s) and no ingress controller pod (labels \
          app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller): nothing \
          routes them; declare a controller or load with the built-in one (the CLI adds it)"]
    );
}
