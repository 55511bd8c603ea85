//! Ingress in a living cluster: every ingress controller pod (labelled like ingress-nginx's
//! controller, [`kns_core::ingress::is_controller_pod`]) runs an [`IngressController`] on its
//! `http` container port (80 when none is named) instead of the agnhost server, and leaves its
//! `https` port (443) closed, so HTTPS connections are refused. Its Service (NodePort or
//! LoadBalancer) is an ordinary Service of the manifests.
//!
//! Controllers come from the manifests: declare them (namespace, pod or Deployment, Service)
//! or load with [`kns_core::manifest::Loader::finish_with_ingress_controller`], which adds the
//! built-in one when Ingresses exist and no controller does (the CLI does this). A cluster
//! with Ingresses and no controller gets a warning: nothing routes them, as on Kubernetes.

use kns_core::flow::Protocol;
use kns_core::ingress::{self, CONTROLLER_LABELS};
use kns_core::model::{Cluster, Pod, PodId, ServiceType};

use super::ClusterNet;
use crate::net::NetnsId;
use crate::stack::apps::{IngressConfig, IngressController};
use crate::stack::{AppId, SmolStack};

/// Where one controller runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IngressApp {
    pub(super) pod: PodId,
    pub(super) ns: NetnsId,
    pub(super) app: AppId,
}

/// The warning for a cluster whose Ingresses no controller serves.
pub(super) fn missing_controller_warning(cluster: &Cluster) -> Option<String> {
    if cluster.ingresses.is_empty() || cluster.pods.iter().any(ingress::is_controller_pod) {
        return None;
    }
    let labels: Vec<String> = CONTROLLER_LABELS.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Some(format!(
        "{} Ingress object(s) and no ingress controller pod (labels {}): nothing routes them; \
         declare a controller or load with the built-in one (the CLI adds it)",
        cluster.ingresses.len(),
        labels.join(",")
    ))
}

/// The controller's HTTP and HTTPS ports: the container ports named `http` and `https`, or
/// 80 and 443.
fn controller_ports(pod: &Pod) -> (u16, u16) {
    let named = |name: &str, default| pod.named_port(name, Protocol::Tcp).unwrap_or(default);
    (named("http", 80), named("https", 443))
}

impl ClusterNet {
    /// Starts the controller in a controller pod's namespace; returns the TCP ports the agnhost
    /// server must leave alone.
    pub(super) fn start_ingress_controller(&mut self, ns: NetnsId, pod: &Pod) -> Vec<u16> {
        let (http, https) = controller_ports(pod);
        let live = self.live_cluster();
        let config = IngressConfig { http_port: http, ..IngressConfig::default() };
        let controller = IngressController::new(&live, config);
        for w in controller.router().warnings() {
            let w = w.to_string();
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        let Some(stack) = self.sim.stack_mut::<SmolStack>(ns) else { return Vec::new() };
        let app = stack.spawn(controller);
        self.ingress.retain(|a| a.pod != pod.id);
        self.ingress.push(IngressApp { pod: pod.id, ns, app });
        vec![http, https]
    }

    /// Hands every running controller the current model.
    pub(super) fn sync_ingress(&mut self, live: &Cluster) {
        let pods = &self.pods;
        self.ingress.retain(|a| pods.contains_key(&a.pod));
        for a in &self.ingress {
            if let Some(c) = self
                .sim
                .stack_mut::<SmolStack>(a.ns)
                .and_then(|s| s.app_mut::<IngressController>(a.app))
            {
                c.update(live);
            }
        }
    }

    /// The running ingress controller pods, in start order.
    pub fn ingress_controllers(&self) -> Vec<PodId> {
        self.ingress.iter().map(|a| a.pod).collect()
    }

    /// The controller running in `pod` (its routing table and access log).
    pub fn ingress_controller(&mut self, pod: PodId) -> Option<&IngressController> {
        let a = *self.ingress.iter().find(|a| a.pod == pod)?;
        self.sim.stack_mut::<SmolStack>(a.ns).and_then(|s| s.app::<IngressController>(a.app))
    }

    /// The node port that reaches the controllers' HTTP port from outside: the `http` (or
    /// port 80) port of a NodePort or LoadBalancer Service selecting a controller pod.
    pub fn ingress_node_port(&self) -> Option<u16> {
        let c = &self.cluster;
        let pods: Vec<&Pod> = self.ingress.iter().map(|a| c.pod(a.pod)).collect();
        c.services
            .iter()
            .filter(|s| matches!(s.service_type, ServiceType::NodePort | ServiceType::LoadBalancer))
            .filter(|s| {
                s.selector.as_ref().is_some_and(|sel| {
                    pods.iter().any(|p| {
                        p.namespace == s.namespace
                            && sel.iter().all(|(k, v)| p.labels.get(k) == Some(v))
                    })
                })
            })
            .flat_map(|s| s.ports.iter())
            .find(|p| p.name.as_deref() == Some("http") || p.port == 80)
            .and_then(|p| p.node_port)
    }
}
