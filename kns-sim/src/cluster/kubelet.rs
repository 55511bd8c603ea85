//! The kubelet's share of pod networking: create a pod's namespace, run the node's CNI
//! configuration (the first file of its `/etc/cni/net.d`), remember what came back, and undo
//! it all on deletion. Restarting a pod is deletion and creation with a new sandbox, so the
//! address may change; the model follows.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kns_core::cni::{CniResult, CniRuntime, MemFiles, RuntimeConf};
use kns_core::flow::Protocol;
use kns_core::model::{Cluster, CniMode, PodId};
use serde_json::json;

use super::topology::NodeNet;
use super::{ClusterError, ClusterNet};
use crate::cni_host::SimNetHost;
use crate::net::NetnsId;
use crate::stack::apps::{AgnhostConfig, AgnhostServer};
use crate::stack::{SmolStack, StackConfig};

/// The file name of the network configuration kns writes on every node.
pub const CONFIG_FILE: &str = "10-kns.conflist";

/// The network containerd runs in every sandbox before the configured one.
const LOOPBACK_CONF: &str =
    r#"{"cniVersion":"1.0.0","name":"cni-loopback","plugins":[{"type":"loopback"}]}"#;

/// One node's CNI side: its plugin directory and its files (`/etc/cni/net.d`, IPAM state).
pub struct NodeCni {
    /// The runtime with the node's plugins.
    pub runtime: CniRuntime,
    /// The node's files.
    pub files: MemFiles,
}

impl NodeCni {
    /// The reference plugins and a flannel-style configuration: a `cni0` bridge that is the
    /// pods' gateway, `host-local` addresses from the node's pod CIDR, and `portmap` for
    /// hostPorts. SNAT to the outside is the network daemon's rule, so `ipMasq` is off.
    pub fn new(cluster: &Cluster, node: &NodeNet) -> NodeCni {
        let mut files = MemFiles::new();
        files.write(&format!("/etc/cni/net.d/{CONFIG_FILE}"), &default_conflist(cluster, node));
        NodeCni { runtime: CniRuntime::with_reference_plugins(), files }
    }
}

/// The configuration list kns installs on `node`.
pub fn default_conflist(cluster: &Cluster, node: &NodeNet) -> String {
    let mtu = match cluster.config.cni {
        CniMode::Routed => 1500,
        CniMode::Overlay => 1450,
    };
    let conf = json!({
        "cniVersion": "1.1.0",
        "name": "kns",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "isDefaultGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "mtu": mtu,
                "capabilities": {"ips": true},
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": node.pod_cidr.to_string()}]],
                    "dataDir": "/var/lib/cni/networks"
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
        ]
    });
    serde_json::to_string_pretty(&conf).expect("JSON values serialise")
}

/// How a running pod is wired.
#[derive(Debug, Clone, PartialEq)]
pub struct PodNet {
    /// The pod's namespace (its node's for hostNetwork pods).
    pub ns: NetnsId,
    /// The sandbox id the CNI calls used.
    pub container_id: String,
    /// The host side of the pod's veth (`None` for hostNetwork pods).
    pub host_if: Option<String>,
    /// What the CNI ADD returned (`None` for hostNetwork pods).
    pub result: Option<CniResult>,
    /// How many times the pod was (re)started.
    pub generation: u32,
    /// The service-link variables its containers started with
    /// ([`kns_core::discovery::service_env`] of the Services that existed at that moment).
    pub env: BTreeMap<String, String>,
}

/// A sandbox id derived from the pod and its generation: 64 hex digits, fixed across runs.
fn container_id(namespace: &str, name: &str, generation: u32) -> String {
    let mut out = String::with_capacity(64);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in 0..4u8 {
        for b in namespace
            .bytes()
            .chain([b'/'])
            .chain(name.bytes())
            .chain(generation.to_le_bytes())
            .chain([part])
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

impl ClusterNet {
    fn pod_ref(&self, id: PodId) -> String {
        self.cluster.pod_ref(id)
    }

    fn runtime_conf(&self, id: PodId, generation: u32, request_ip: bool) -> RuntimeConf {
        let pod = self.cluster.pod(id);
        let namespace = &self.cluster.namespace(pod.namespace).name;
        let cid = container_id(namespace, &pod.name, generation);
        let mut caps = BTreeMap::new();
        let mappings: Vec<_> = pod
            .ports()
            .filter_map(|p| {
                p.host_port.map(|hp| {
                    json!({"hostPort": hp, "containerPort": p.port,
                           "protocol": p.protocol.as_str().to_ascii_lowercase()})
                })
            })
            .collect();
        if !mappings.is_empty() {
            caps.insert("portMappings".to_string(), json!(mappings));
        }
        if request_ip {
            let node = &self.nodes[pod.node.index()];
            let prefix = node.pod_cidr.prefix_len();
            caps.insert("ips".to_string(), json!([format!("{}/{prefix}", pod.ip)]));
        }
        RuntimeConf {
            container_id: cid.clone(),
            netns: format!("/var/run/netns/{namespace}.{}", pod.name),
            ifname: "eth0".into(),
            args: vec![
                ("IgnoreUnknown".into(), "1".into()),
                ("K8S_POD_NAMESPACE".into(), namespace.clone()),
                ("K8S_POD_NAME".into(), pod.name.clone()),
                ("K8S_POD_INFRA_CONTAINER_ID".into(), cid),
            ],
            capability_args: caps,
        }
    }

    /// Creates a pod's sandbox: its namespace, a socket stack, and the CNI ADD of its node's
    /// configuration. The pod keeps its model address when it has one (`ips` capability).
    /// The policy agent and kube-proxy learn of the pod.
    pub fn create_pod(&mut self, id: PodId) -> Result<(), ClusterError> {
        self.start_pod(id, 0, true)?;
        self.sync_agent();
        Ok(())
    }

    pub(super) fn start_pod(
        &mut self,
        id: PodId,
        generation: u32,
        request_ip: bool,
    ) -> Result<(), ClusterError> {
        let pod = self.cluster.pod(id).clone();
        let node = pod.node.index();
        let node_ns = self.nodes[node].ns;
        // kubelet lists the Services when it starts the containers: those that exist now.
        let env = kns_core::discovery::service_env(&self.cluster, id);
        if pod.host_network {
            let cid =
                container_id(&self.cluster.namespace(pod.namespace).name, &pod.name, generation);
            self.start_servers(node_ns, &pod, &env);
            self.pods.insert(
                id,
                PodNet {
                    ns: node_ns,
                    container_id: cid,
                    host_if: None,
                    result: None,
                    generation,
                    env,
                },
            );
            return Ok(());
        }
        let ns_name = format!("{}.{}", self.cluster.namespace(pod.namespace).name, pod.name);
        let ns = self
            .sim
            .netns_add(&ns_name)
            .map_err(|e| ClusterError::Build(format!("pod {}: {e}", self.pod_ref(id))))?;
        let seed = self.sim.child_seed();
        let stack = SmolStack::new(StackConfig::with_seed(seed), self.sim.now());
        self.sim.attach_stack(ns, stack);
        let rt = self.runtime_conf(id, generation, request_ip);
        let pod_ref = self.pod_ref(id);
        let cni_err =
            |command, message: String| ClusterError::Cni { pod: pod_ref.clone(), command, message };
        let cni = &mut self.node_cni[node];
        let mut host = SimNetHost::new(&mut self.sim, node_ns, &mut cni.files);
        // The container runtime brings the sandbox's `lo` up with the loopback plugin first
        // (containerd's `cni-loopback` network), then runs the configured network.
        let lo_rt =
            RuntimeConf { ifname: "lo".into(), capability_args: BTreeMap::new(), ..rt.clone() };
        let added = CniRuntime::parse_config("cni-loopback.conflist", LOOPBACK_CONF)
            .and_then(|lo| cni.runtime.add(&mut host, &lo, &lo_rt))
            .and_then(|_| cni.runtime.load_config(&host))
            .and_then(|l| {
                let r = cni.runtime.add(&mut host, &l.list, &rt);
                if r.is_err() {
                    // As kubelet does: a failed ADD is cleaned up with DEL.
                    let _ = cni.runtime.del(&mut host, &l.list, &rt);
                }
                r
            });
        let result = match added {
            Ok(r) => r,
            Err(e) => {
                let _ = self.sim.netns_del(&ns_name);
                return Err(cni_err("ADD", e.to_string()));
            }
        };
        let ip = result
            .ips
            .first()
            .map(|c| c.address.addr())
            .ok_or_else(|| cni_err("ADD", "the result has no IP address".into()))?;
        // The host end of the pod's veth: the result's interface outside the sandbox that is
        // not the bridge (the bridge plugin lists the bridge first).
        let host_if = result
            .interfaces
            .iter()
            .filter(|i| i.sandbox.as_deref().unwrap_or("").is_empty())
            .map(|i| i.name.clone())
            .find(|n| self.sim.iface_id(node_ns, n).is_ok_and(|_| !n.starts_with("cni")));
        let p = &mut self.cluster.pods[id.index()];
        p.ip = ip;
        if let Some(first) = p.ips.first_mut() {
            *first = ip;
        } else {
            p.ips.push(ip);
        }
        if let (Some(agent), Some(veth)) = (&self.agent, &host_if) {
            agent.bind_pod(pod.node, veth, id);
        }
        self.start_servers(ns, &pod, &env);
        self.pods.insert(
            id,
            PodNet {
                ns,
                container_id: rt.container_id,
                host_if,
                result: Some(result),
                generation,
                env,
            },
        );
        Ok(())
    }

    /// Serves every declared container port with an agnhost-like server answering the pod's
    /// name, one server per container: containers share the pod's namespace, so a port two
    /// containers declare conflicts and the second server reports `address in use`.
    /// A cluster DNS pod ([`super::is_dns_pod`]) runs the DNS server on port 53 instead; an
    /// ingress controller pod runs the controller on its HTTP port and leaves HTTPS closed.
    /// Each server knows the container's environment `env` (agnhost's `/env`).
    fn start_servers(
        &mut self,
        ns: NetnsId,
        pod: &kns_core::model::Pod,
        env: &BTreeMap<String, String>,
    ) {
        let dns = super::is_dns_pod(&self.cluster, pod) && self.start_dns_server(ns, pod);
        let controller = if kns_core::ingress::is_controller_pod(pod) {
            self.start_ingress_controller(ns, pod)
        } else {
            Vec::new()
        };
        let Some(stack) = self.sim.stack_mut::<SmolStack>(ns) else { return };
        for c in &pod.containers {
            let ports: Vec<_> = c
                .ports
                .iter()
                .filter(|p| !(dns && p.port == 53))
                .filter(|p| !(p.protocol == Protocol::Tcp && controller.contains(&p.port)))
                .map(|p| (p.port, p.protocol))
                .collect();
            if !ports.is_empty() {
                let config =
                    AgnhostConfig { env: env.clone(), ..AgnhostConfig::new(&pod.name, ports) };
                stack.spawn(AgnhostServer::new(config));
            }
        }
        self.sim.kick(ns);
    }

    /// Deletes a pod's sandbox: CNI DEL (which frees its address), then its namespace. The
    /// pod leaves its Services' endpoints.
    pub fn delete_pod(&mut self, id: PodId) -> Result<(), ClusterError> {
        let r = self.stop_pod(id);
        self.sync_agent();
        r
    }

    fn stop_pod(&mut self, id: PodId) -> Result<(), ClusterError> {
        let Some(p) = self.pods.remove(&id) else {
            return Err(ClusterError::NotFound(format!("pod {} is not running", self.pod_ref(id))));
        };
        let pod = self.cluster.pod(id).clone();
        if pod.host_network {
            return Ok(());
        }
        if let (Some(agent), Some(veth)) = (&self.agent, &p.host_if) {
            agent.unbind_pod(pod.node, veth);
        }
        let node = pod.node.index();
        let node_ns = self.nodes[node].ns;
        let rt = self.runtime_conf(id, p.generation, false);
        let cni = &mut self.node_cni[node];
        let mut host = SimNetHost::new(&mut self.sim, node_ns, &mut cni.files);
        let deleted =
            cni.runtime.load_config(&host).and_then(|l| cni.runtime.del(&mut host, &l.list, &rt));
        let name = self.sim.netns_name(p.ns).to_string();
        let _ = self.sim.netns_del(&name);
        deleted.map_err(|e| ClusterError::Cni {
            pod: self.pod_ref(id),
            command: "DEL",
            message: e.to_string(),
        })
    }

    /// Restarts a pod with a new sandbox: DEL, then ADD without asking for the old address, so
    /// IPAM hands out the next free one, as a real restart may. Endpoints follow the new
    /// address. Returns the new address.
    pub fn restart_pod(&mut self, id: PodId) -> Result<IpAddr, ClusterError> {
        let generation = self.pods.get(&id).map_or(0, |p| p.generation + 1);
        if self.pods.contains_key(&id) {
            self.stop_pod(id)?;
        }
        self.start_pod(id, generation, false)?;
        self.sync_agent();
        Ok(self.cluster.pod(id).ip)
    }

    /// CNI CHECK for a running pod: whether its wiring is still what ADD made.
    pub fn check_pod(&mut self, id: PodId) -> Result<(), ClusterError> {
        let Some(p) = self.pods.get(&id).cloned() else {
            return Err(ClusterError::NotFound(format!("pod {} is not running", self.pod_ref(id))));
        };
        let pod = self.cluster.pod(id).clone();
        if pod.host_network {
            return Ok(());
        }
        let node = pod.node.index();
        let node_ns = self.nodes[node].ns;
        let rt = self.runtime_conf(id, p.generation, false);
        let cni = &mut self.node_cni[node];
        let mut host = SimNetHost::new(&mut self.sim, node_ns, &mut cni.files);
        let checked =
            cni.runtime.load_config(&host).and_then(|l| cni.runtime.check(&mut host, &l.list, &rt));
        checked.map_err(|e| ClusterError::Cni {
            pod: self.pod_ref(id),
            command: "CHECK",
            message: e.to_string(),
        })
    }

    /// CNI GC on a node, as the container runtime runs it: everything the network's plugins
    /// hold for sandboxes that are not running on the node any more is released.
    pub fn gc_node(&mut self, node: kns_core::model::NodeId) -> Result<(), ClusterError> {
        let valid: Vec<kns_core::cni::Attachment> = self
            .pods
            .iter()
            .filter(|(id, p)| self.cluster.pod(**id).node == node && p.host_if.is_some())
            .map(|(_, p)| kns_core::cni::Attachment {
                container_id: p.container_id.clone(),
                ifname: "eth0".into(),
            })
            .collect();
        let node_ns = self.nodes[node.index()].ns;
        let cni = &mut self.node_cni[node.index()];
        let mut host = SimNetHost::new(&mut self.sim, node_ns, &mut cni.files);
        let done =
            cni.runtime.load_config(&host).and_then(|l| cni.runtime.gc(&mut host, &l.list, &valid));
        done.map_err(|e| {
            ClusterError::Build(format!("CNI GC on node {}: {e}", self.cluster.node(node).name))
        })
    }

    /// The service-link environment variables a running pod's containers started with
    /// (`None` if the pod is not running). A restarted pod gets those of the Services that
    /// exist at its restart; Services created later are absent, as in Kubernetes.
    pub fn pod_env(&self, id: PodId) -> Option<&BTreeMap<String, String>> {
        self.pods.get(&id).map(|p| &p.env)
    }

    /// A node's CNI files (`/etc/cni/net.d`, IPAM state), to read or change.
    pub fn node_files(&mut self, node: kns_core::model::NodeId) -> &mut MemFiles {
        &mut self.node_cni[node.index()].files
    }

    /// The pod network prefix of an address given to a pod.
    pub fn pod_prefix(&self, id: PodId) -> Option<IpNet> {
        let pod = self.cluster.pod(id);
        IpNet::new(pod.ip, self.nodes[pod.node.index()].pod_cidr.prefix_len()).ok()
    }
}
