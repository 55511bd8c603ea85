//! Load-balancer addresses on the node network, announced as MetalLB's layer-2 mode does.
//!
//! The manifest loader hands every LoadBalancer Service an address from the Cluster
//! document's `loadBalancerPool` (on the node network by default). A speaker per cluster then
//! elects, for each such address, one leader node: the nodes that may announce it are every
//! node for `externalTrafficPolicy: Cluster`, and only nodes with a ready endpoint of the
//! Service for `Local` (MetalLB's rule, so that Local traffic is never dropped at the node);
//! among them the leader is the first by a fixed hash of `node name # address` (FNV-1a, mixed), so each
//! address has its own leader and the choice moves only for addresses whose leader left.
//! The leader answers ARP for the address on its `eth0` without owning it
//! ([`Sim::arp_announce`](crate::Sim::arp_announce)) and sends a gratuitous ARP when it takes
//! over; the router then delivers traffic for the address to that node, whose kube-proxy
//! DNATs it to a backend. Addresses outside the node network (a `status.loadBalancer` IP
//! from another cluster, say) are not announced; they still work from inside the cluster,
//! where kube-proxy catches them on every node.
//!
//! The speaker re-elects whenever the cluster is synchronised (pods created, deleted or
//! restarted; Services added), so a Local Service's address moves to a node that still has
//! an endpoint, as MetalLB's failover does.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use kns_core::model::{Cluster, NodeId, ServiceType, TrafficPolicy};
use kns_core::proxy::{ServiceTable, fnv1a};

use super::ClusterNet;
use crate::time::Time;

/// The device on the node network that announces addresses.
const ANNOUNCE_DEV: &str = "eth0";

/// One announced load-balancer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The address.
    pub ip: Ipv4Addr,
    /// `namespace/name` of its Service.
    pub service: String,
    /// The node answering ARP for it.
    pub node: NodeId,
}

/// The speaker's state: who announces what, and what happened.
#[derive(Debug, Default)]
pub(super) struct Speaker {
    leaders: BTreeMap<Ipv4Addr, Announcement>,
    log: Vec<(Time, String)>,
}

/// The leader each load-balancer address of `live` should have (see the module docs).
pub fn elect(live: &Cluster) -> Vec<Announcement> {
    let table = ServiceTable::from_cluster(live);
    let mut out = Vec::new();
    for svc in live.services.iter().filter(|s| s.service_type == ServiceType::LoadBalancer) {
        let eligible: Vec<&kns_core::model::Node> = live
            .nodes
            .iter()
            .filter(|n| match svc.external_traffic_policy {
                TrafficPolicy::Cluster => true,
                TrafficPolicy::Local => table
                    .services()
                    .iter()
                    .filter(|vs| vs.service == svc.id)
                    .any(|vs| !vs.local_backends(n.id).is_empty()),
            })
            .collect();
        for ip in &svc.load_balancer_ips {
            let IpAddr::V4(v4) = ip else { continue };
            if !live.config.node_cidr.contains(ip) {
                continue;
            }
            let leader = eligible.iter().min_by_key(|n| (rank(&n.name, *ip), n.name.clone()));
            if let Some(n) = leader {
                out.push(Announcement { ip: *v4, service: service_ref(live, svc), node: n.id });
            }
        }
    }
    out.sort_by_key(|a| a.ip);
    out.dedup_by_key(|a| a.ip);
    out
}

impl ClusterNet {
    /// Moves announcements to the leaders `live` elects: withdraws first, then announces with
    /// a gratuitous ARP.
    pub(super) fn sync_speaker(&mut self, live: &Cluster) {
        let wanted: BTreeMap<Ipv4Addr, Announcement> =
            elect(live).into_iter().map(|a| (a.ip, a)).collect();
        let now = self.sim.now();
        let old = std::mem::take(&mut self.speaker.leaders);
        for (ip, a) in &old {
            if wanted.get(ip).is_some_and(|w| w.node == a.node) {
                continue;
            }
            let ns = self.nodes[a.node.index()].ns;
            let _ = self.sim.arp_withdraw(ns, ANNOUNCE_DEV, *ip);
            let node = &self.cluster.node(a.node).name;
            self.speaker.log.push((now, format!("{ip} ({}): {node} stops announcing", a.service)));
        }
        for (ip, a) in &wanted {
            if old.get(ip).is_some_and(|o| o.node == a.node) {
                continue;
            }
            let ns = self.nodes[a.node.index()].ns;
            let node = &self.cluster.node(a.node).name;
            match self.sim.arp_announce(ns, ANNOUNCE_DEV, *ip, true) {
                Ok(()) => self.speaker.log.push((
                    now,
                    format!("{ip} ({}): {node} announces (gratuitous ARP)", a.service),
                )),
                Err(e) => self.warnings.push(format!("speaker: {node} cannot announce {ip}: {e}")),
            }
        }
        for (ip, svc) in unannounced(live, &wanted) {
            let key = format!("speaker: {ip} of {svc}");
            if !self.warnings.iter().any(|w| w.starts_with(&key)) {
                self.warnings.push(format!(
                    "{key} is not announced: it is outside the node network or no node may announce it"
                ));
            }
        }
        self.speaker.leaders = wanted;
    }

    /// Every announced load-balancer address with its leader node, by address.
    pub fn lb_announcements(&self) -> Vec<Announcement> {
        self.speaker.leaders.values().cloned().collect()
    }

    /// The node announcing `ip`, if any.
    pub fn lb_leader(&self, ip: IpAddr) -> Option<NodeId> {
        let IpAddr::V4(v4) = ip else { return None };
        self.speaker.leaders.get(&v4).map(|a| a.node)
    }

    /// What the speaker did, oldest first: each line names the address, its Service and the
    /// node that started or stopped announcing it.
    pub fn speaker_log(&self) -> &[(Time, String)] {
        &self.speaker.log
    }
}

/// Load-balancer addresses of `live` that no node announces, with their Services.
fn unannounced(
    live: &Cluster,
    announced: &BTreeMap<Ipv4Addr, Announcement>,
) -> Vec<(IpAddr, String)> {
    live.services
        .iter()
        .filter(|s| s.service_type == ServiceType::LoadBalancer)
        .flat_map(|s| s.load_balancer_ips.iter().map(move |ip| (*ip, service_ref(live, s))))
        .filter(|(ip, _)| match ip {
            IpAddr::V4(v4) => !announced.contains_key(v4),
            IpAddr::V6(_) => true,
        })
        .collect()
}

/// A node's rank for an address: FNV-1a of `node#address`, finished with splitmix64's mixer
/// so that addresses differing in their last byte still rank the nodes differently.
fn rank(node: &str, ip: IpAddr) -> u64 {
    let mut z = fnv1a(format!("{node}#{ip}").as_bytes());
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn service_ref(cluster: &Cluster, s: &kns_core::model::Service) -> String {
    format!("{}/{}", cluster.namespace(s.namespace).name, s.name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn cluster(policy: &str, pool: &str) -> Cluster {
        let mut yaml = format!(
            "apiVersion: kns.dev/v1alpha1\nkind: Cluster\nspec:\n  loadBalancerPool: {pool}\n  nodes: [{{name: a}}, {{name: b}}, {{name: c}}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p, labels: {{app: x}}}}\nspec: {{nodeName: b, containers: [{{name: c, image: i, ports: [{{containerPort: 80}}]}}]}}\n"
        );
        for i in 0..10 {
            yaml.push_str(&format!(
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}}}\nspec: {{type: LoadBalancer, externalTrafficPolicy: {policy}, selector: {{app: x}}, ports: [{{port: 80}}]}}\n"
            ));
        }
        kns_core::manifest::load_str("lb.yaml", &yaml).expect("loads").cluster
    }

    #[test]
    fn every_address_gets_one_leader_and_leaders_differ_between_addresses() {
        let c = cluster("Cluster", "192.168.0.240/28");
        let a = elect(&c);
        assert_eq!(a.len(), 10);
        let ips: BTreeSet<Ipv4Addr> = a.iter().map(|x| x.ip).collect();
        assert_eq!(ips.len(), 10, "one entry per address");
        let leaders: BTreeSet<NodeId> = a.iter().map(|x| x.node).collect();
        assert!(leaders.len() >= 2, "the hash spreads addresses over nodes: {leaders:?}");
        assert_eq!(elect(&c), a, "the election is a pure function of the cluster");
    }

    #[test]
    fn local_services_are_announced_only_by_nodes_with_an_endpoint() {
        let mut c = cluster("Local", "192.168.0.240/28");
        let b = c.node_by_name("b").unwrap().id;
        assert!(elect(&c).iter().all(|x| x.node == b));
        c.pods[0].ready = false;
        assert!(elect(&c).is_empty(), "no ready endpoint: nobody announces");
    }

    #[test]
    fn addresses_off_the_node_network_are_not_announced() {
        let mut c = cluster("Cluster", "[]");
        assert!(c.services.iter().all(|s| s.load_balancer_ips.is_empty()));
        c.services[1].load_balancer_ips = vec!["172.18.255.7".parse().unwrap()];
        assert!(elect(&c).is_empty());
        assert_eq!(unannounced(&c, &BTreeMap::new()).len(), 1);
    }
}
