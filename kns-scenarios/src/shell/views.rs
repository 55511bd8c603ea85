//! `kubectl get` tables of the living cluster, with kubectl's columns (no AGE: kns keeps no
//! creation times) and its `No resources found` line.

use kns_core::model::{Cluster, NamespaceId, ServiceType};
use kns_sim::cluster::ClusterNet;
use kns_sim::cluster::show::columns;

use super::parse::{Resource, Scope};

/// How many endpoints kubectl prints before `+ N more...`.
const ENDPOINTS_SHOWN: usize = 3;

/// `kubectl get RESOURCE` of the living cluster.
pub fn get(
    net: &ClusterNet,
    resource: Resource,
    names: &[String],
    scope: &Scope,
    wide: bool,
) -> String {
    let cluster = net.cluster();
    let in_scope = |ns: NamespaceId| match scope {
        Scope::All => true,
        Scope::Namespace(n) => &cluster.namespace(ns).name == n,
    };
    let named = |name: &str| names.is_empty() || names.iter().any(|n| n == name);
    let all = matches!(scope, Scope::All);
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let header: Vec<&str> = match resource {
        Resource::Nodes => return net.show_nodes(),
        Resource::Pods => {
            for id in cluster.pods_sorted() {
                let pod = cluster.pod(id);
                let Some(running) = net.pod(id) else { continue };
                if !in_scope(pod.namespace) || !named(&pod.name) {
                    continue;
                }
                let n = pod.containers.len().max(1);
                let mut row = vec![
                    pod.name.clone(),
                    format!("{n}/{n}"),
                    "Running".into(),
                    running.generation.to_string(),
                ];
                if wide {
                    row.push(pod.ip.to_string());
                    row.push(cluster.node(pod.node).name.clone());
                }
                rows.push((cluster.namespace(pod.namespace).name.clone(), row));
            }
            if wide {
                vec!["NAME", "READY", "STATUS", "RESTARTS", "IP", "NODE"]
            } else {
                vec!["NAME", "READY", "STATUS", "RESTARTS"]
            }
        }
        Resource::Services => {
            for svc in &cluster.services {
                if !in_scope(svc.namespace) || !named(&svc.name) {
                    continue;
                }
                let mut row = vec![
                    svc.name.clone(),
                    service_type(svc.service_type).into(),
                    match (svc.service_type, svc.cluster_ip) {
                        (ServiceType::ExternalName, _) => "<none>".into(),
                        (_, Some(ip)) => ip.to_string(),
                        (_, None) => "None".into(),
                    },
                    external_ip(svc),
                    ports(svc),
                ];
                if wide {
                    row.push(match &svc.selector {
                        Some(s) if !s.is_empty() => {
                            s.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
                        }
                        _ => "<none>".into(),
                    });
                }
                rows.push((cluster.namespace(svc.namespace).name.clone(), row));
            }
            if wide {
                vec!["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "SELECTOR"]
            } else {
                vec!["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
            }
        }
        Resource::Endpoints => {
            for svc in &cluster.services {
                if !in_scope(svc.namespace)
                    || !named(&svc.name)
                    || svc.service_type == ServiceType::ExternalName
                {
                    continue;
                }
                let eps = endpoints(net, cluster, svc.namespace, &svc.name);
                let text = if eps.is_empty() {
                    "<none>".to_string()
                } else if eps.len() > ENDPOINTS_SHOWN && !wide {
                    format!(
                        "{} + {} more...",
                        eps[..ENDPOINTS_SHOWN].join(","),
                        eps.len() - ENDPOINTS_SHOWN
                    )
                } else {
                    eps.join(",")
                };
                rows.push((
                    cluster.namespace(svc.namespace).name.clone(),
                    vec![svc.name.clone(), text],
                ));
            }
            vec!["NAME", "ENDPOINTS"]
        }
        Resource::NetworkPolicies => {
            for p in &cluster.policies {
                if !in_scope(p.namespace) || !named(&p.name) {
                    continue;
                }
                rows.push((
                    cluster.namespace(p.namespace).name.clone(),
                    vec![p.name.clone(), p.pod_selector.to_string()],
                ));
            }
            vec!["NAME", "POD-SELECTOR"]
        }
    };
    if rows.is_empty() {
        return match scope {
            _ if !names.is_empty() => String::new(),
            Scope::All => "No resources found\n".into(),
            Scope::Namespace(n) => format!("No resources found in {n} namespace.\n"),
        };
    }
    rows.sort_by(|a, b| (&a.0, &a.1[0]).cmp(&(&b.0, &b.1[0])));
    let mut table: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    let mut head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    if all {
        head.insert(0, "NAMESPACE".into());
    }
    table.push(head);
    for (ns, mut row) in rows {
        if all {
            row.insert(0, ns);
        }
        table.push(row);
    }
    columns(&table)
}

fn service_type(t: ServiceType) -> &'static str {
    match t {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
        ServiceType::ExternalName => "ExternalName",
    }
}

fn external_ip(svc: &kns_core::model::Service) -> String {
    if let Some(name) = &svc.external_name {
        return name.clone();
    }
    let ips: Vec<String> =
        svc.load_balancer_ips.iter().chain(&svc.external_ips).map(ToString::to_string).collect();
    match (ips.is_empty(), svc.service_type) {
        (false, _) => ips.join(","),
        (true, ServiceType::LoadBalancer) => "<pending>".into(),
        (true, _) => "<none>".into(),
    }
}

fn ports(svc: &kns_core::model::Service) -> String {
    if svc.ports.is_empty() {
        return "<none>".into();
    }
    svc.ports
        .iter()
        .map(|p| match p.node_port {
            Some(np) => format!("{}:{np}/{}", p.port, p.protocol),
            None => format!("{}/{}", p.port, p.protocol),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `IP:PORT` of every ready endpoint of a Service whose pod is running, at the pod's current
/// address, sorted as kubectl's Endpoints object lists them (by address, then port).
fn endpoints(net: &ClusterNet, cluster: &Cluster, ns: NamespaceId, service: &str) -> Vec<String> {
    let mut out: Vec<(std::net::IpAddr, u16)> = Vec::new();
    for slice in
        cluster.endpoint_slices.iter().filter(|s| s.namespace == ns && s.service_name == service)
    {
        for ep in &slice.endpoints {
            let addresses = match ep.pod {
                Some(pod) if net.pod(pod).is_none() => continue,
                Some(pod) if !cluster.pod(pod).ready => continue,
                Some(pod) => vec![cluster.pod(pod).ip],
                None if !ep.ready => continue,
                None => ep.addresses.clone(),
            };
            for ip in addresses {
                for port in &slice.ports {
                    out.push((ip, port.port));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out.into_iter()
        .map(
            |(ip, port)| {
                if ip.is_ipv6() { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
            },
        )
        .collect()
}
