//! Service discovery through environment variables: the Docker-link-style variables kubelet
//! puts into every container for the Services it can see when the container starts.
//!
//! For each visible Service with a cluster IP (headless and ExternalName Services have none
//! and get no variables) named `redis-master` (upper-cased, `-` → `_`: `REDIS_MASTER`):
//!
//! ```text
//! REDIS_MASTER_SERVICE_HOST=10.0.0.11
//! REDIS_MASTER_SERVICE_PORT=6379            # the first port
//! REDIS_MASTER_SERVICE_PORT_<NAME>=6379     # every named port
//! REDIS_MASTER_PORT=tcp://10.0.0.11:6379    # the first port, Docker style
//! REDIS_MASTER_PORT_6379_TCP=tcp://10.0.0.11:6379
//! REDIS_MASTER_PORT_6379_TCP_PROTO=tcp
//! REDIS_MASTER_PORT_6379_TCP_PORT=6379
//! REDIS_MASTER_PORT_6379_TCP_ADDR=10.0.0.11
//! ```
//!
//! The visible Services are those of the pod's namespace, plus `kubernetes` of `default`,
//! which kubelet always adds (a Service called `kubernetes` in the pod's own namespace takes
//! its place), as kubelet's `getServiceEnvVarMap` does with `enableServiceLinks: true` (the
//! default; kns models no pod-level switch). IPv6 addresses are bracketed in the URL forms.
//!
//! **"Existed before the pod":** kubelet lists the Services at container start, so a Service
//! created later never shows. A [`Cluster`] has no creation times; this module treats the
//! cluster it is handed as the API's state at the moment the pod starts. A cluster loaded from
//! manifests is one moment: its Services exist before its pods start (kns starts pods after
//! load). The simulator computes a pod's variables when it starts the pod and keeps them;
//! Services added afterwards reach only pods started afterwards.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::model::{Cluster, PodId, Service};

/// The service-link variables of pod `pod`, ordered by name.
pub fn service_env(cluster: &Cluster, pod: PodId) -> BTreeMap<String, String> {
    let ns = cluster.pod(pod).namespace;
    // By name: same-namespace Services override the default namespace's `kubernetes`.
    let mut visible: BTreeMap<&str, &Service> = BTreeMap::new();
    if let Some(k) = cluster.service_by_name("default", "kubernetes") {
        visible.insert(&k.name, k);
    }
    for s in cluster.services.iter().filter(|s| s.namespace == ns) {
        visible.insert(&s.name, s);
    }
    let mut env = BTreeMap::new();
    for s in visible.values() {
        let Some(ip) = s.cluster_ip else { continue };
        add_service(&mut env, s, ip);
    }
    env
}

/// `redis-master` → `REDIS_MASTER`.
pub fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

fn add_service(env: &mut BTreeMap<String, String>, s: &Service, ip: IpAddr) {
    let prefix = env_name(&s.name);
    env.insert(format!("{prefix}_SERVICE_HOST"), ip.to_string());
    let Some(first) = s.ports.first() else { return };
    env.insert(format!("{prefix}_SERVICE_PORT"), first.port.to_string());
    for p in &s.ports {
        if let Some(name) = &p.name {
            env.insert(format!("{prefix}_SERVICE_PORT_{}", env_name(name)), p.port.to_string());
        }
    }
    for (i, p) in s.ports.iter().enumerate() {
        let proto = p.protocol.as_str();
        let lower = proto.to_ascii_lowercase();
        let url = format!("{lower}://{}", SocketAddr::new(ip, p.port));
        if i == 0 {
            env.insert(format!("{prefix}_PORT"), url.clone());
        }
        let port_prefix = format!("{prefix}_PORT_{}_{proto}", p.port);
        env.insert(format!("{port_prefix}_PROTO"), lower);
        env.insert(format!("{port_prefix}_PORT"), p.port.to_string());
        env.insert(format!("{port_prefix}_ADDR"), ip.to_string());
        env.insert(port_prefix, url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load_str;

    const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Service
metadata: {name: redis-master, namespace: prod}
spec:
  clusterIP: 10.96.0.11
  ports: [{port: 6379}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80}, {name: dns-udp, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec: {clusterIP: None, ports: [{port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: prod}
spec: {type: ExternalName, externalName: www.example.com}
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: default}
spec: {clusterIP: 10.96.0.30, ports: [{port: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: prod}
spec: {containers: [{name: c, image: x}]}
"#;

    fn env() -> BTreeMap<String, String> {
        let c = load_str("env.yaml", MANIFEST).unwrap().cluster;
        let pod = c.pod_by_name("prod", "client").unwrap().id;
        service_env(&c, pod)
    }

    #[test]
    fn docker_link_variables_as_kubelet_writes_them() {
        let env = env();
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(get("REDIS_MASTER_SERVICE_HOST"), Some("10.96.0.11"));
        assert_eq!(get("REDIS_MASTER_SERVICE_PORT"), Some("6379"));
        assert_eq!(get("REDIS_MASTER_PORT"), Some("tcp://10.96.0.11:6379"));
        assert_eq!(get("REDIS_MASTER_PORT_6379_TCP"), Some("tcp://10.96.0.11:6379"));
        assert_eq!(get("REDIS_MASTER_PORT_6379_TCP_PROTO"), Some("tcp"));
        assert_eq!(get("REDIS_MASTER_PORT_6379_TCP_PORT"), Some("6379"));
        assert_eq!(get("REDIS_MASTER_PORT_6379_TCP_ADDR"), Some("10.96.0.11"));
        assert_eq!(env.keys().filter(|k| k.starts_with("REDIS_MASTER")).count(), 7);
        // Named ports get their own `_SERVICE_PORT_<NAME>`; every port its Docker forms.
        assert_eq!(get("WEB_SERVICE_PORT"), Some("80"));
        assert_eq!(get("WEB_SERVICE_PORT_HTTP"), Some("80"));
        assert_eq!(get("WEB_SERVICE_PORT_DNS_UDP"), Some("53"));
        assert_eq!(get("WEB_PORT"), Some("tcp://10.96.0.20:80"));
        assert_eq!(get("WEB_PORT_53_UDP"), Some("udp://10.96.0.20:53"));
        assert_eq!(get("WEB_PORT_53_UDP_PROTO"), Some("udp"));
    }

    #[test]
    fn only_the_namespace_and_the_api_server_are_visible() {
        let env = env();
        assert!(env.contains_key("KUBERNETES_SERVICE_HOST"), "{env:?}");
        assert_eq!(env.get("KUBERNETES_SERVICE_PORT_HTTPS").map(String::as_str), Some("443"));
        assert!(!env.keys().any(|k| k.starts_with("OTHER_")), "other namespaces are not visible");
        assert!(!env.keys().any(|k| k.starts_with("DB_")), "headless Services have no variables");
        assert!(!env.keys().any(|k| k.starts_with("EXT_")), "nor do ExternalName Services");
    }

    #[test]
    fn ipv6_urls_are_bracketed_and_names_upper_cased() {
        let mut c = load_str("env.yaml", MANIFEST).unwrap().cluster;
        let web = c.services.iter_mut().find(|s| s.name == "web").unwrap();
        web.cluster_ip = Some("fd00::20".parse().unwrap());
        let pod = c.pod_by_name("prod", "client").unwrap().id;
        let env = service_env(&c, pod);
        assert_eq!(env["WEB_PORT"], "tcp://[fd00::20]:80");
        assert_eq!(env["WEB_SERVICE_HOST"], "fd00::20");
        assert_eq!(env_name("my-svc-2"), "MY_SVC_2");
    }
}
