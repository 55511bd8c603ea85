//! Load-balancer addresses on the node network, announced as MetalLB's layer-2 mode does.
//!
//! The manifest loader hands every LoadBalancer Service an address from the Cluster
//! document's `loadBalancerPool` (on the node network by default). A speaker per cluster then
//! elects, for each such address, one leader node: the nodes that may announce it are every
//! node for `externalTrafficPolicy: Cluster`, and only nodes with a ready endpoint of the
//! Service for `Local` (MetalLB's rule, so that Local traffic is never dropped at the node);
//! among them the leader is the first by a fixed hash of `node name # address`, so each
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
            let leader = eligible
                .iter()
                .min_by_key(|n| (fnv1a(format!("{}#{ip}", n.name).as_bytes()), n.name.clone()));
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

fn service_ref(cluster: &Cluster, s: &kns_core::model::Service) -> String {
    format!("{}/{}", cluster.namespace(s.namespace).name, s.name)
}
