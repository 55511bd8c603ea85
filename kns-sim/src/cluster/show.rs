//! Text views of a living cluster, in the shapes people know: `kubectl get nodes/pods -o wide`
//! and `ip addr` / `ip route` per node.

use std::fmt::Write;

use super::ClusterNet;

/// Aligns rows into columns separated by three spaces, as kubectl's tab writer does.
pub fn columns(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; width];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}   ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

impl ClusterNet {
    /// `kubectl get nodes -o wide`, reduced to what networking needs.
    pub fn show_nodes(&self) -> String {
        let mode = match self.cluster.config.cni {
            kns_core::model::CniMode::Routed => "routed (host-gw)",
            kns_core::model::CniMode::Overlay => "overlay (vxlan)",
        };
        let mut rows = vec![vec![
            "NAME".to_string(),
            "INTERNAL-IP".into(),
            "POD-CIDR".into(),
            "PODS".into(),
            "POD-NETWORK".into(),
        ]];
        for node in &self.nodes {
            let pods = self.pods.keys().filter(|p| self.cluster.pod(**p).node == node.id).count();
            rows.push(vec![
                self.cluster.node(node.id).name.clone(),
                node.ip.to_string(),
                node.pod_cidr.to_string(),
                pods.to_string(),
                mode.to_string(),
            ]);
        }
        columns(&rows)
    }

    /// `kubectl get pods -A -o wide`, plus the host side of each pod's veth.
    pub fn show_pods(&self) -> String {
        let mut rows = vec![vec![
            "NAMESPACE".to_string(),
            "NAME".into(),
            "STATUS".into(),
            "IP".into(),
            "NODE".into(),
            "NETNS".into(),
            "HOST-IF".into(),
        ]];
        for id in self.cluster.pods_sorted() {
            let pod = self.cluster.pod(id);
            let (status, netns, host_if) = match self.pods.get(&id) {
                Some(p) => (
                    "Running",
                    self.sim.netns_name(p.ns).to_string(),
                    p.host_if.clone().unwrap_or_else(|| "-".into()),
                ),
                None => ("Deleted", "-".into(), "-".into()),
            };
            rows.push(vec![
                self.cluster.namespace(pod.namespace).name.clone(),
                pod.name.clone(),
                status.into(),
                pod.ip.to_string(),
                self.cluster.node(pod.node).name.clone(),
                netns,
                host_if,
            ]);
        }
        columns(&rows)
    }

    /// Runs `ip` in a namespace and returns its output (an error message on failure).
    pub fn ip_in(&mut self, netns: &str, args: &str) -> String {
        match self.sim.ip(Some(netns), args) {
            Ok(out) => out,
            Err(e) => format!("{e}\n"),
        }
    }

    /// The load-balancer addresses the speaker announces: address, Service and the node that
    /// answers ARP for it (empty when there are none).
    pub fn show_announcements(&self) -> String {
        let announced = self.lb_announcements();
        if announced.is_empty() {
            return String::new();
        }
        let mut rows = vec![vec!["IP".to_string(), "SERVICE".into(), "NODE".into()]];
        for a in announced {
            rows.push(vec![a.ip.to_string(), a.service, self.cluster.node(a.node).name.clone()]);
        }
        columns(&rows)
    }

    /// The whole cluster: nodes, pods, announced load-balancer addresses (if any), and each
    /// node's addresses and routes.
    pub fn show(&mut self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# kubectl get nodes -o wide\n{}", self.show_nodes());
        let _ = writeln!(out, "# kubectl get pods -A -o wide\n{}", self.show_pods());
        let announced = self.show_announcements();
        if !announced.is_empty() {
            let _ = writeln!(out, "# load-balancer addresses (layer-2 leaders)\n{announced}");
        }
        let names: Vec<String> =
            self.nodes.iter().map(|n| self.cluster.node(n.id).name.clone()).collect();
        for name in names {
            for cmd in ["addr", "route"] {
                let text = self.ip_in(&name, cmd);
                let _ = writeln!(out, "# ip -n {name} {cmd}\n{text}");
            }
        }
        out.trim_end().to_string() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::columns;

    #[test]
    fn columns_align_and_trim() {
        let rows = vec![
            vec!["A".to_string(), "LONGER".into(), "x".into()],
            vec!["BBBB".to_string(), "y".into(), "".into()],
        ];
        assert_eq!(columns(&rows), "A      LONGER   x\nBBBB   y\n");
    }
}
