//! The kns `Cluster` document (`apiVersion: kns.dev/v1alpha1`), which describes what
//! Kubernetes manifests leave out: the nodes and the cluster's networks and modes.
//!
//! ```yaml
//! apiVersion: kns.dev/v1alpha1
//! kind: Cluster
//! metadata:
//!   name: demo
//! spec:
//!   podCIDR: 10.244.0.0/16        # split into one /nodePodCIDRPrefix slice per node
//!   nodePodCIDRPrefix: 24
//!   serviceCIDR: 10.96.0.0/12
//!   nodeCIDR: 192.168.0.0/24
//!   clusterDomain: cluster.local
//!   cni: routed                   # or overlay
//!   proxy: iptables               # ipvs, nftables, maglev
//!   enforcePolicy: true
//!   loadBalancerPool: [192.168.0.240/29, 192.168.0.250-192.168.0.252]   # default below
//!   nodePortRange: 30000-32767
//!   nodes:
//!   - name: node-1
//!     labels: {topology.kubernetes.io/zone: a}
//!     address: 192.168.0.10       # optional: from nodeCIDR, .10 upward
//!     podCIDR: 10.244.0.0/24      # optional: the next free slice of podCIDR
//! ```
//!
//! Every field is optional; omitted ones take [`ClusterConfig::default`] values, except
//! `loadBalancerPool`, which defaults to [`AddressRange::default_pool`] of the `nodeCIDR` (the
//! top of its last /28 below the router: `192.168.0.240-192.168.0.253` for the default network).
//! `loadBalancerPool: []` configures no pool: LoadBalancer Services without an address stay
//! pending. Without nodes
//! (or without the document) the cluster has the nodes that pods name in `spec.nodeName`, or
//! else two nodes, `node-1` and `node-2`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::ipam::nth_address;
use super::validate::{cidr, ip, labels};
use super::{Diag, Location};
use crate::model::{AddressRange, ClusterConfig, CniMode, Labels, Node, NodeId, ProxyMode};

/// The whole document, as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ClusterDoc {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: ClusterMeta,
    #[serde(default)]
    spec: ClusterSpec,
}

/// `metadata` of the document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterMeta {
    name: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

/// `spec` of the document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterSpec {
    #[serde(rename = "podCIDR")]
    pod_cidr: Option<String>,
    #[serde(rename = "nodePodCIDRPrefix")]
    node_pod_cidr_prefix: Option<u8>,
    #[serde(rename = "serviceCIDR")]
    service_cidr: Option<String>,
    #[serde(rename = "nodeCIDR")]
    node_cidr: Option<String>,
    cluster_domain: Option<String>,
    cni: Option<CniMode>,
    proxy: Option<ProxyMode>,
    enforce_policy: Option<bool>,
    load_balancer_pool: Option<PoolDoc>,
    node_port_range: Option<String>,
    nodes: Option<Vec<NodeDoc>>,
}

/// `spec.loadBalancerPool`: one entry or a list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum PoolDoc {
    One(String),
    Many(Vec<String>),
}

/// One entry of `spec.nodes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeDoc {
    name: String,
    labels: Option<BTreeMap<String, String>>,
    address: Option<String>,
    #[serde(rename = "podCIDR")]
    pod_cidr: Option<String>,
}

/// The settings and nodes of the cluster being loaded.
#[derive(Debug)]
pub(super) struct Topology {
    /// Cluster-wide settings.
    pub config: ClusterConfig,
    /// The nodes, in declaration order.
    pub nodes: Vec<Node>,
    /// Whether a `Cluster` document declared the networks (then addresses outside them are
    /// errors; without one they are accepted with a warning, as live clusters vary).
    pub explicit: bool,
}

/// A node that pods refer to: its name, and its address if a pod's `status.hostIP` says.
pub(super) type NodeHint = (String, Option<IpAddr>);

/// Builds the settings and nodes from the document (if any) or the defaults.
pub(super) fn topology(
    doc: Option<(&ClusterDoc, &Location)>,
    hints: &[NodeHint],
    diag: &mut Diag,
) -> Topology {
    let mut config = ClusterConfig::default();
    // Problems with nodes derived from pods (two with the same hostIP) have no document.
    let default_loc = Location { file: "<nodes named by pods>".into(), ..Location::default() };
    let (spec, loc) = match doc {
        Some((d, loc)) => {
            if let Some(name) = &d.metadata.name {
                config.name = name.clone();
            }
            (d.spec.clone(), loc)
        }
        None => (ClusterSpec::default(), &default_loc),
    };
    let net = |text: &Option<String>, field: &str, diag: &mut Diag| {
        text.as_deref().and_then(|t| cidr(t, field, loc, diag))
    };
    if let Some(n) = net(&spec.pod_cidr, "spec.podCIDR", diag) {
        config.pod_cidr = n;
    }
    if let Some(n) = net(&spec.service_cidr, "spec.serviceCIDR", diag) {
        config.service_cidr = n;
    }
    if let Some(n) = net(&spec.node_cidr, "spec.nodeCIDR", diag) {
        config.node_cidr = n;
    }
    if let Some(p) = spec.node_pod_cidr_prefix {
        let max = config.pod_cidr.max_prefix_len().saturating_sub(2);
        if p < config.pod_cidr.prefix_len() || p > max {
            diag.error(
                loc.with_field("spec.nodePodCIDRPrefix"),
                format!(
                    "must be between {} (the podCIDR prefix) and {max}",
                    config.pod_cidr.prefix_len()
                ),
            );
        } else {
            config.node_cidr_prefix = p;
        }
    }
    if let Some(domain) = &spec.cluster_domain {
        config.domain = domain.trim_end_matches('.').to_string();
    }
    config.cni = spec.cni.unwrap_or(config.cni);
    config.proxy = spec.proxy.unwrap_or(config.proxy);
    config.enforce_policy = spec.enforce_policy.unwrap_or(config.enforce_policy);
    if let Some(range) = &spec.node_port_range {
        match parse_range(range) {
            Some(r) => config.node_port_range = r,
            None => diag.error(
                loc.with_field("spec.nodePortRange"),
                format!("invalid port range `{range}` (expected FIRST-LAST, e.g. 30000-32767)"),
            ),
        }
    }
    let explicit = doc.is_some();
    let declared: Vec<NodeDoc> = match spec.nodes {
        Some(nodes) if !nodes.is_empty() => nodes,
        _ if !explicit && !hints.is_empty() => hints
            .iter()
            .map(|(name, ip)| NodeDoc {
                name: name.clone(),
                labels: None,
                address: ip.map(|ip| ip.to_string()),
                pod_cidr: None,
            })
            .collect(),
        _ => ["node-1", "node-2"]
            .map(|name| NodeDoc { name: name.into(), labels: None, address: None, pod_cidr: None })
            .into(),
    };
    let nodes = nodes(&config, &declared, explicit, loc, diag);
    config.load_balancer_pool = match &spec.load_balancer_pool {
        None => AddressRange::default_pool(config.node_cidr).into_iter().collect(),
        Some(pool) => load_balancer_pool(&config, pool, &nodes, loc, diag),
    };
    Topology { config, nodes, explicit }
}

/// Parses and checks `spec.loadBalancerPool`: every entry a CIDR, range or address inside the
/// node network's host addresses (the speaker announces them there with ARP), no two entries
/// overlapping, no node's address inside.
fn load_balancer_pool(
    config: &ClusterConfig,
    pool: &PoolDoc,
    nodes: &[Node],
    loc: &Location,
    diag: &mut Diag,
) -> Vec<AddressRange> {
    let entries: Vec<(String, &String)> = match pool {
        PoolDoc::One(text) => vec![("spec.loadBalancerPool".to_string(), text)],
        PoolDoc::Many(list) => list
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("spec.loadBalancerPool[{i}]"), t))
            .collect(),
    };
    let hosts = AddressRange::hosts(config.node_cidr);
    let mut out: Vec<(String, AddressRange)> = Vec::new();
    for (field, text) in entries {
        let range = match text.parse::<AddressRange>() {
            Ok(r) => r,
            Err(why) => {
                diag.error(loc.with_field(&field), why);
                continue;
            }
        };
        if !hosts.is_some_and(|h| h.contains(range.first) && h.contains(range.last)) {
            diag.error(
                loc.with_field(&field),
                format!(
                    "{range} is not inside the host addresses of the nodeCIDR {}: kns announces load-balancer addresses on the node network (as MetalLB's layer-2 mode does)",
                    config.node_cidr
                ),
            );
            continue;
        }
        if let Some((_, other)) = out.iter().find(|(_, o)| o.overlaps(&range)) {
            diag.error(loc.with_field(&field), format!("{range} overlaps {other}"));
            continue;
        }
        if let Some(n) = nodes.iter().find(|n| range.contains(n.ip)) {
            diag.error(
                loc.with_field(&field),
                format!("{range} contains {}, the address of node `{}`", n.ip, n.name),
            );
            continue;
        }
        out.push((field, range));
    }
    out.into_iter().map(|(_, r)| r).collect()
}

/// `30000-32767`.
fn parse_range(text: &str) -> Option<(u16, u16)> {
    let (a, b) = text.split_once('-')?;
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a != 0 && a <= b).then_some((a, b))
}

/// Gives every declared node its address and pod CIDR.
fn nodes(
    config: &ClusterConfig,
    declared: &[NodeDoc],
    explicit: bool,
    loc: &Location,
    diag: &mut Diag,
) -> Vec<Node> {
    let mut names = BTreeSet::new();
    let mut addresses: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let mut cidrs: Vec<(usize, IpNet)> = Vec::new();
    let mut parsed: Vec<(Labels, Option<IpAddr>, Option<IpNet>)> = Vec::new();
    for (i, n) in declared.iter().enumerate() {
        let at = format!("spec.nodes[{i}]");
        if n.name.is_empty() || !names.insert(n.name.clone()) {
            let why = if n.name.is_empty() {
                "a node needs a name".to_string()
            } else {
                format!("duplicate node name `{}`", n.name)
            };
            diag.error(loc.with_field(format!("{at}.name")), why);
        }
        let node_labels = labels(n.labels.as_ref(), &format!("{at}.labels"), loc, diag);
        let address = n.address.as_deref().and_then(|a| ip(a, &format!("{at}.address"), loc, diag));
        if let Some(a) = address {
            if explicit && !config.node_cidr.contains(&a) {
                diag.error(
                    loc.with_field(format!("{at}.address")),
                    format!("address {a} is outside the nodeCIDR {}", config.node_cidr),
                );
            }
            if let Some(other) = addresses.insert(a, i) {
                diag.error(
                    loc.with_field(format!("{at}.address")),
                    format!("address {a} is already the address of spec.nodes[{other}]"),
                );
            }
        }
        let pod_cidr =
            n.pod_cidr.as_deref().and_then(|c| cidr(c, &format!("{at}.podCIDR"), loc, diag));
        if let Some(c) = pod_cidr {
            if !config.pod_cidr.contains(&c) {
                diag.error(
                    loc.with_field(format!("{at}.podCIDR")),
                    format!("{c} is not inside the cluster podCIDR {}", config.pod_cidr),
                );
            }
            if let Some((other, _)) = cidrs.iter().find(|(_, o)| o.contains(&c) || c.contains(o)) {
                diag.error(
                    loc.with_field(format!("{at}.podCIDR")),
                    format!("{c} overlaps the podCIDR of spec.nodes[{other}]"),
                );
            }
            cidrs.push((i, c));
        }
        parsed.push((node_labels, address, pod_cidr));
    }
    let mut free_slices = config
        .pod_cidr
        .subnets(config.node_cidr_prefix)
        .into_iter()
        .flatten()
        .filter(|s| !cidrs.iter().any(|(_, c)| c.contains(s) || s.contains(c)));
    let mut next_host = 10u128;
    let mut out = Vec::new();
    for (i, (n, (node_labels, address, pod_cidr))) in declared.iter().zip(parsed).enumerate() {
        let pod_cidr = pod_cidr.or_else(|| free_slices.next());
        let address = address.or_else(|| {
            loop {
                let candidate = nth_address(config.node_cidr, next_host)?;
                next_host += 1;
                if !addresses.contains_key(&candidate) {
                    break Some(candidate);
                }
            }
        });
        let (Some(pod_cidr), Some(ip)) = (pod_cidr, address) else {
            diag.error(
                loc.with_field(format!("spec.nodes[{i}]")),
                format!(
                    "no room for node `{}`: podCIDR {} (/{} per node) or nodeCIDR {} is full",
                    n.name, config.pod_cidr, config.node_cidr_prefix, config.node_cidr
                ),
            );
            continue;
        };
        out.push(Node {
            id: NodeId::from_index(out.len()),
            name: n.name.clone(),
            ip,
            pod_cidr,
            labels: node_labels,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(spec: &str) -> ClusterDoc {
        yaml_serde::from_str(&format!(
            "apiVersion: kns.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: t}}\nspec:\n{spec}"
        ))
        .unwrap()
    }

    #[test]
    fn defaults_give_two_nodes_with_slices_of_the_pod_cidr() {
        let mut diag = Diag::default();
        let t = topology(None, &[], &mut diag);
        assert!(diag.errors.is_empty());
        assert!(!t.explicit);
        assert_eq!(t.config, ClusterConfig::default());
        let nodes: Vec<(String, String, String)> = t
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.ip.to_string(), n.pod_cidr.to_string()))
            .collect();
        assert_eq!(
            nodes,
            vec![
                ("node-1".into(), "192.168.0.10".into(), "10.244.0.0/24".into()),
                ("node-2".into(), "192.168.0.11".into(), "10.244.1.0/24".into()),
            ]
        );
    }

    #[test]
    fn explicit_node_settings_are_honoured_and_others_filled_around_them() {
        let d = doc(
            "  podCIDR: 10.1.0.0/16\n  cni: overlay\n  proxy: ipvs\n  clusterDomain: example.org\n  nodes:\n  - {name: a, podCIDR: 10.1.0.0/24, address: 192.168.0.10}\n  - {name: b, labels: {zone: z1}}\n",
        );
        let loc = Location::default();
        let mut diag = Diag::default();
        let t = topology(Some((&d, &loc)), &[], &mut diag);
        assert!(diag.errors.is_empty(), "{:?}", diag.errors);
        assert_eq!(t.config.name, "t");
        assert_eq!(t.config.cni, CniMode::Overlay);
        assert_eq!(t.config.proxy, ProxyMode::Ipvs);
        assert_eq!(t.config.domain, "example.org");
        assert_eq!(t.nodes[1].pod_cidr.to_string(), "10.1.1.0/24");
        assert_eq!(t.nodes[1].ip.to_string(), "192.168.0.11");
        assert_eq!(t.nodes[1].labels.get("zone").map(String::as_str), Some("z1"));
    }

    #[test]
    fn the_load_balancer_pool_defaults_to_the_node_network_and_is_checked() {
        let loc = Location { file: "c.yaml".into(), ..Location::default() };
        let mut diag = Diag::default();
        let t = topology(Some((&doc("  nodeCIDR: 10.9.0.0/24\n"), &loc)), &[], &mut diag);
        let pool: Vec<String> = t.config.load_balancer_pool.iter().map(|r| r.to_string()).collect();
        assert_eq!(pool, ["10.9.0.240-10.9.0.253"]);
        let t =
            topology(Some((&doc("  loadBalancerPool: 192.168.0.100/30\n"), &loc)), &[], &mut diag);
        let pool: Vec<String> = t.config.load_balancer_pool.iter().map(|r| r.to_string()).collect();
        assert_eq!(pool, ["192.168.0.101-192.168.0.102"]);
        let t = topology(Some((&doc("  loadBalancerPool: []\n"), &loc)), &[], &mut diag);
        assert!(t.config.load_balancer_pool.is_empty());
        assert!(diag.errors.is_empty(), "{:?}", diag.errors);
        let d = doc(
            "  loadBalancerPool: [192.168.0.200-192.168.0.210, 172.18.255.0/24, 192.168.0.205, x, 192.168.0.8-192.168.0.12, 192.168.0.250-192.168.0.255]\n",
        );
        topology(Some((&d, &loc)), &[], &mut diag);
        let got: Vec<String> = diag.errors.iter().map(|e| e.render()).collect();
        assert_eq!(
            got,
            vec![
                "c.yaml: spec.loadBalancerPool[1]: 172.18.255.1-172.18.255.254 is not inside the host addresses of the nodeCIDR 192.168.0.0/24: kns announces load-balancer addresses on the node network (as MetalLB's layer-2 mode does)",
                "c.yaml: spec.loadBalancerPool[2]: 192.168.0.205-192.168.0.205 overlaps 192.168.0.200-192.168.0.210",
                "c.yaml: spec.loadBalancerPool[3]: invalid address range `x` (expected a CIDR such as 192.168.0.240/28, a range such as 192.168.0.240-192.168.0.250, or one address)",
                "c.yaml: spec.loadBalancerPool[4]: 192.168.0.8-192.168.0.12 contains 192.168.0.10, the address of node `node-1`",
                "c.yaml: spec.loadBalancerPool[5]: 192.168.0.250-192.168.0.255 is not inside the host addresses of the nodeCIDR 192.168.0.0/24: kns announces load-balancer addresses on the node network (as MetalLB's layer-2 mode does)",
            ]
        );
    }

    #[test]
    fn bad_cidrs_and_overlaps_are_located() {
        let d = doc(
            "  serviceCIDR: 10.96.0.0/33\n  nodes:\n  - {name: a, podCIDR: 10.244.0.0/24}\n  - {name: a, podCIDR: 10.244.0.0/25}\n  - {name: c, podCIDR: 10.9.0.0/24}\n",
        );
        let loc = Location {
            file: "c.yaml".into(),
            document: Some(1),
            object: Some("Cluster t".into()),
            ..Location::default()
        };
        let mut diag = Diag::default();
        topology(Some((&d, &loc)), &[], &mut diag);
        let got: Vec<String> = diag.errors.iter().map(|e| e.render()).collect();
        assert_eq!(
            got,
            vec![
                "c.yaml: document 1 (Cluster t): spec.serviceCIDR: invalid CIDR `10.96.0.0/33` (expected e.g. 10.0.0.0/16)",
                "c.yaml: document 1 (Cluster t): spec.nodes[1].name: duplicate node name `a`",
                "c.yaml: document 1 (Cluster t): spec.nodes[1].podCIDR: 10.244.0.0/25 overlaps the podCIDR of spec.nodes[0]",
                "c.yaml: document 1 (Cluster t): spec.nodes[2].podCIDR: 10.9.0.0/24 is not inside the cluster podCIDR 10.244.0.0/16",
            ]
        );
    }

    #[test]
    fn without_a_document_nodes_come_from_pods() {
        let mut diag = Diag::default();
        let hints = vec![
            ("kind-worker".to_string(), Some("172.18.0.3".parse().unwrap())),
            ("kind-worker2".to_string(), None),
        ];
        let t = topology(None, &hints, &mut diag);
        let names: Vec<&str> = t.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["kind-worker", "kind-worker2"]);
        assert_eq!(t.nodes[0].ip.to_string(), "172.18.0.3");
        assert_eq!(t.nodes[1].ip.to_string(), "192.168.0.10");
    }
}
