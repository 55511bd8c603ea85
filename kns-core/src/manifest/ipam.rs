//! Placement and addresses: which node each pod runs on, and the pod and Service IPs.
//!
//! Addresses given in the input (`status.podIP(s)`, `spec.clusterIP`) are honoured and
//! reserved first. Pods without a node are spread round-robin over the nodes sorted by name,
//! in (namespace, name) order. Pods without an address get the next free one of their node's
//! pod CIDR from `.2`, in (namespace, name) order. Service IPs: `.1` is `default/kubernetes`,
//! `.10` is kept for `kube-system/kube-dns`, the others come from `.11` upward in
//! (namespace, name) order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::cluster_doc::Topology;
use super::workloads::PodPlan;
use super::{Diag, Location};
use crate::model::NodeId;

/// The address `n` places after the network address of `net`, if inside it (and, for IPv4
/// networks larger than /31, not the broadcast address).
pub(super) fn nth_address(net: IpNet, n: u128) -> Option<IpAddr> {
    match net {
        IpNet::V4(v4) => {
            let base = u32::from(v4.network());
            let size = 1u64 << (32 - v4.prefix_len());
            let usable = if v4.prefix_len() < 31 { size - 1 } else { size };
            (n < u128::from(usable))
                .then(|| IpAddr::from(std::net::Ipv4Addr::from(base + n as u32)))
        }
        IpNet::V6(v6) => {
            let base = u128::from(v6.network());
            let host_bits = 128 - u32::from(v6.prefix_len());
            let fits = host_bits == 128 || n < (1u128 << host_bits);
            fits.then(|| IpAddr::from(std::net::Ipv6Addr::from(base + n)))
        }
    }
}

/// Where each pod runs and its addresses (primary first); `None` where placement failed.
pub(super) fn place_pods(
    pods: &[PodPlan],
    topo: &Topology,
    diag: &mut Diag,
) -> Vec<Option<(NodeId, Vec<IpAddr>)>> {
    let nodes = &topo.nodes;
    let mut placed: Vec<Option<NodeId>> = vec![None; pods.len()];
    let mut unplaced = Vec::new();
    for (i, p) in pods.iter().enumerate() {
        if let Some(name) = &p.node_name {
            match nodes.iter().find(|n| &n.name == name) {
                Some(n) => placed[i] = Some(n.id),
                None => {
                    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
                    diag.error(
                        p.loc.with_field(format!("{}.nodeName", p.spec_path)),
                        format!("no node `{name}` in the cluster (nodes: {})", names.join(", ")),
                    );
                }
            }
            continue;
        }
        let by_host = p.host_ip.and_then(|h| nodes.iter().find(|n| n.ip == h));
        let by_ip = || p.ips.first().and_then(|ip| nodes.iter().find(|n| n.pod_cidr.contains(ip)));
        match by_host.or_else(by_ip) {
            Some(n) => placed[i] = Some(n.id),
            None => unplaced.push(i),
        }
    }
    let mut by_name: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
    by_name.sort_by(|a, b| nodes[a.index()].name.cmp(&nodes[b.index()].name));
    unplaced.sort_by(|&a, &b| {
        (&pods[a].namespace, &pods[a].name).cmp(&(&pods[b].namespace, &pods[b].name))
    });
    if !by_name.is_empty() {
        for (k, &i) in unplaced.iter().enumerate() {
            placed[i] = Some(by_name[k % by_name.len()]);
        }
    }

    // Honoured addresses first.
    let mut taken: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let mut outside = Vec::new();
    for (i, p) in pods.iter().enumerate() {
        if p.host_network {
            continue;
        }
        for ip in &p.ips {
            if let Some(&other) = taken.get(ip) {
                let o = &pods[other];
                diag.error(
                    p.loc.with_field(p.ips_field),
                    format!(
                        "IP {ip} is also the address of Pod {}/{} ({})",
                        o.namespace,
                        o.name,
                        o.loc.render_place()
                    ),
                );
                continue;
            }
            taken.insert(*ip, i);
            if !topo.config.pod_cidr.contains(ip) {
                if topo.explicit {
                    diag.error(
                        p.loc.with_field(p.ips_field),
                        format!("IP {ip} is outside the pod CIDR {}", topo.config.pod_cidr),
                    );
                } else {
                    outside.push((i, *ip));
                }
            }
        }
    }
    if let Some(&(first, _)) = outside.first() {
        let p = &pods[first];
        let shown: Vec<String> = outside.iter().take(3).map(|(_, ip)| ip.to_string()).collect();
        let more = if outside.len() > 3 { ", ..." } else { "" };
        diag.warn_once(
            "pod IPs outside the pod CIDR",
            p.loc.with_field(p.ips_field),
            format!(
                "{} pod IP(s) ({}{more}) are outside the default pod CIDR {}; kept as given \
                 (a kns Cluster document can declare the network)",
                outside.len(),
                shown.join(", "),
                topo.config.pod_cidr
            ),
        );
    }

    // Then the rest, in (namespace, name) order.
    let mut order: Vec<usize> = (0..pods.len()).collect();
    order.sort_by(|&a, &b| {
        (&pods[a].namespace, &pods[a].name).cmp(&(&pods[b].namespace, &pods[b].name))
    });
    let mut cursor: BTreeMap<NodeId, u128> = BTreeMap::new();
    let mut full: BTreeMap<NodeId, (usize, usize)> = BTreeMap::new(); // first pod, count
    let mut out: Vec<Option<(NodeId, Vec<IpAddr>)>> = vec![None; pods.len()];
    for i in order {
        let (p, Some(node)) = (&pods[i], placed[i]) else { continue };
        if p.host_network {
            out[i] = Some((node, vec![nodes[node.index()].ip]));
            continue;
        }
        if !p.ips.is_empty() {
            out[i] = Some((node, p.ips.clone()));
            continue;
        }
        let cidr = nodes[node.index()].pod_cidr;
        let next = cursor.entry(node).or_insert(2);
        let ip = loop {
            match nth_address(cidr, *next) {
                None => break None,
                Some(ip) => {
                    *next += 1;
                    if !taken.contains_key(&ip) {
                        break Some(ip);
                    }
                }
            }
        };
        match ip {
            Some(ip) => {
                taken.insert(ip, i);
                out[i] = Some((node, vec![ip]));
            }
            None => full.entry(node).or_insert((i, 0)).1 += 1,
        }
    }
    for (node, (first, count)) in full {
        let (n, p) = (&nodes[node.index()], &pods[first]);
        diag.error(
            p.loc.clone(),
            format!(
                "node {} is full: its pod CIDR {} has no address left for {count} pod(s), \
                 the first being {}/{} (add nodes, or lower nodePodCIDRPrefix, in a kns Cluster document)",
                n.name, n.pod_cidr, p.namespace, p.name
            ),
        );
    }
    out
}

/// What a Service asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wanted {
    /// Any free address.
    Any,
    /// This address (`spec.clusterIP`).
    Fixed(IpAddr),
    /// None: headless or ExternalName.
    Nothing,
}

/// One Service to give an address to.
pub(super) struct ServiceRequest<'a> {
    /// Where it is.
    pub loc: &'a Location,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// What it asks for.
    pub wanted: Wanted,
}

/// The cluster IP of each Service.
pub(super) fn service_ips(
    services: &[ServiceRequest<'_>],
    topo: &Topology,
    diag: &mut Diag,
) -> Vec<Option<IpAddr>> {
    let cidr = topo.config.service_cidr;
    let mut out: Vec<Option<IpAddr>> = vec![None; services.len()];
    let mut taken: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let mut outside = Vec::new();
    for (i, s) in services.iter().enumerate() {
        let Wanted::Fixed(ip) = s.wanted else { continue };
        if let Some(&other) = taken.get(&ip) {
            let o = &services[other];
            diag.error(
                s.loc.with_field("spec.clusterIP"),
                format!(
                    "clusterIP {ip} is also the clusterIP of Service {}/{} ({})",
                    o.namespace,
                    o.name,
                    o.loc.render_place()
                ),
            );
            continue;
        }
        if !cidr.contains(&ip) {
            if topo.explicit {
                diag.error(
                    s.loc.with_field("spec.clusterIP"),
                    format!("clusterIP {ip} is outside the service CIDR {cidr}"),
                );
            } else {
                outside.push(i);
            }
        }
        taken.insert(ip, i);
        out[i] = Some(ip);
    }
    if let Some(&first) = outside.first() {
        diag.warn_once(
            "service IPs outside the service CIDR",
            services[first].loc.with_field("spec.clusterIP"),
            format!(
                "{} clusterIP(s) are outside the default service CIDR {cidr}; kept as given \
                 (a kns Cluster document can declare the network)",
                outside.len()
            ),
        );
    }
    let mut reserved: BTreeSet<IpAddr> = taken.keys().copied().collect();
    let well_known = [("default", "kubernetes", 1u128), ("kube-system", "kube-dns", 10)];
    for (_, _, n) in well_known {
        if let Some(ip) = nth_address(cidr, n) {
            reserved.insert(ip);
        }
    }
    let mut order: Vec<usize> =
        (0..services.len()).filter(|&i| services[i].wanted == Wanted::Any).collect();
    order.sort_by(|&a, &b| {
        (services[a].namespace, services[a].name).cmp(&(services[b].namespace, services[b].name))
    });
    let mut next = 11u128;
    for i in order {
        let s = &services[i];
        let special = well_known.iter().find(|(ns, name, _)| *ns == s.namespace && *name == s.name);
        if let Some(ip) =
            special.and_then(|(_, _, n)| nth_address(cidr, *n)).filter(|ip| !taken.contains_key(ip))
        {
            taken.insert(ip, i);
            out[i] = Some(ip);
            continue;
        }
        let ip = loop {
            match nth_address(cidr, next) {
                None => break None,
                Some(ip) => {
                    next += 1;
                    if !reserved.contains(&ip) {
                        break Some(ip);
                    }
                }
            }
        };
        match ip {
            Some(ip) => {
                reserved.insert(ip);
                out[i] = Some(ip);
            }
            None => diag
                .error(s.loc.clone(), format!("no free address left in the service CIDR {cidr}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_address_stays_inside_the_network() {
        let net: IpNet = "10.0.0.0/30".parse().unwrap();
        assert_eq!(nth_address(net, 2), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(nth_address(net, 3), None, "broadcast");
        let v6: IpNet = "fd00::/120".parse().unwrap();
        assert_eq!(nth_address(v6, 255), Some("fd00::ff".parse().unwrap()));
        assert_eq!(nth_address(v6, 256), None);
    }
}
