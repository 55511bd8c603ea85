//! A deterministic cluster of many Services, for service-proxy tests and benchmarks.

use std::net::{IpAddr, Ipv4Addr};

use crate::flow::Protocol;
use crate::model::{
    Cluster, ClusterConfig, Container, ContainerPort, Labels, Namespace, NamespaceId, Node, NodeId,
    Pod, PodId, PortRef, Service, ServiceId, ServicePort, ServiceType, TrafficPolicy,
};

/// A cluster of `nodes` nodes (at least one) and `services` ClusterIP Services in `default`,
/// each `svc-<i>` (cluster IP `10.96.0.0 + 11 + i`, port 80/TCP named `http`, target port
/// 8080) selecting its own `backends` ready pods (`app: svc-<i>`, addresses from
/// `10.244.0.2` upward), the pods spread round-robin over the nodes.
pub fn service_cluster(services: usize, backends: usize, nodes: usize) -> Cluster {
    let mut cluster = Cluster::new(ClusterConfig::default());
    let nodes = nodes.max(1);
    for i in 0..nodes {
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 10)) + i as u32);
        cluster.nodes.push(Node {
            id: NodeId::from_index(i),
            name: format!("node-{}", i + 1),
            ip: IpAddr::V4(ip),
            pod_cidr: "10.244.0.0/16".parse().expect("valid literal"),
            labels: Labels::new(),
        });
    }
    let mut labels = Labels::new();
    labels.insert("kubernetes.io/metadata.name".into(), "default".into());
    cluster.namespaces.push(Namespace {
        id: NamespaceId(0),
        name: "default".into(),
        labels,
        declared: false,
    });
    let pod_base = u32::from(Ipv4Addr::new(10, 244, 0, 2));
    let svc_base = u32::from(Ipv4Addr::new(10, 96, 0, 11));
    for s in 0..services {
        let app = format!("svc-{s}");
        let selector: Labels = [("app".to_string(), app.clone())].into_iter().collect();
        for b in 0..backends {
            let k = cluster.pods.len();
            let ip = IpAddr::V4(Ipv4Addr::from(pod_base + k as u32));
            cluster.pods.push(Pod {
                id: PodId::from_index(k),
                name: format!("{app}-{b}"),
                namespace: NamespaceId(0),
                labels: selector.clone(),
                node: NodeId::from_index(k % nodes),
                ip,
                ips: vec![ip],
                host_network: false,
                containers: vec![Container {
                    name: "app".into(),
                    ports: vec![ContainerPort {
                        name: Some("http".into()),
                        port: 8080,
                        protocol: Protocol::Tcp,
                        host_port: None,
                    }],
                }],
                owner: None,
                hostname: None,
                subdomain: None,
                ready: true,
            });
        }
        cluster.services.push(Service {
            id: ServiceId::from_index(s),
            name: app,
            namespace: NamespaceId(0),
            service_type: ServiceType::ClusterIP,
            cluster_ip: Some(IpAddr::V4(Ipv4Addr::from(svc_base + s as u32))),
            selector: Some(selector),
            ports: vec![ServicePort {
                name: Some("http".into()),
                protocol: Protocol::Tcp,
                port: 80,
                target_port: PortRef::Number(8080),
                node_port: None,
            }],
            external_name: None,
            external_ips: Vec::new(),
            load_balancer_ips: Vec::new(),
            session_affinity_timeout: None,
            external_traffic_policy: TrafficPolicy::Cluster,
            internal_traffic_policy: TrafficPolicy::Cluster,
            publish_not_ready_addresses: false,
        });
    }
    cluster
}
