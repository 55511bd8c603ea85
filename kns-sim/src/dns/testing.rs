//! A small cluster for the DNS unit tests, loaded from real manifests.

use kns_core::Cluster;

/// Namespace `prod` with a ClusterIP Service `web` (two named ports), a headless `db` with
/// three StatefulSet-style pods (`db-2` not ready), an ExternalName `ext`, and kube-dns.
pub const SAMPLE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  clusterIP: 10.96.0.10
  selector: {k8s-app: kube-dns}
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec:
  clusterIP: 10.96.0.20
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: metrics, port: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: prod}
spec:
  type: ExternalName
  externalName: www.example.com
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: prod, labels: {app: web}}
spec:
  nodeName: node-1
  containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]
status: {podIP: 10.244.1.5}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: prod, labels: {app: db}}
spec:
  nodeName: node-1
  hostname: db-0
  subdomain: db
  containers: [{name: c, image: x, ports: [{containerPort: 5432}]}]
status: {podIP: 10.244.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: db-1, namespace: prod, labels: {app: db}}
spec:
  nodeName: node-1
  hostname: db-1
  subdomain: db
  containers: [{name: c, image: x, ports: [{containerPort: 5432}]}]
status: {podIP: 10.244.1.11}
---
apiVersion: v1
kind: Pod
metadata: {name: db-2, namespace: prod, labels: {app: db}}
spec:
  nodeName: node-1
  hostname: db-2
  subdomain: db
  containers: [{name: c, image: x, ports: [{containerPort: 5432}]}]
status:
  podIP: 10.244.1.12
  conditions: [{type: Ready, status: "False"}]
"#;

/// [`SAMPLE`] loaded.
pub fn sample_cluster() -> Cluster {
    match kns_core::manifest::load_str("sample.yaml", SAMPLE) {
        Ok(l) => l.cluster,
        Err(e) => panic!("sample manifest: {}", e.render()),
    }
}
