//! The two ends of a probe, named as people write them, and one probe through a living
//! cluster. Shared by the scenarios, the tour's cluster steps and `kns probe`.
//!
//! Sources: a pod as `namespace/name`, a node name, or `internet`. Targets: a pod as
//! `namespace/name`, `svc/NAME.NAMESPACE` (the Service's cluster IP), `nodeport/NAME.NAMESPACE`
//! (the first node's address and the Service's node port for the probed port), `internet` (the
//! host outside the cluster), `localhost`, or an IP address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use kns_core::flow::PortProtocol;
use kns_core::model::{Cluster, PodId};
use kns_sim::cluster::{ClusterNet, Source};
use kns_sim::net::NetnsId;
use kns_sim::stack::apps::{HttpClient, HttpClientConfig, ProbeConfig, ProbeOutcome};

/// Why an end could not be found or a probe could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The text names no pod, node or other known end.
    #[error("{0}")]
    Unknown(String),
    /// The probe itself could not run (the source is not running, it never finished).
    #[error("{0}")]
    Probe(String),
}

/// Resolves a source: `namespace/name` (a pod), a node name, or `internet`.
pub fn source(cluster: &Cluster, text: &str) -> Result<Source, EndpointError> {
    if let Some(p) = cluster.pod_by_ref(text) {
        return Ok(Source::Pod(p.id));
    }
    if let Some(n) = cluster.node_by_name(text) {
        return Ok(Source::Node(n.id));
    }
    if text == "internet" {
        return Ok(Source::Internet);
    }
    Err(EndpointError::Unknown(format!(
        "no pod `{text}` (write namespace/name, a node name, or `internet`)"
    )))
}

/// The pod `namespace/name`.
pub fn pod(cluster: &Cluster, text: &str) -> Result<PodId, EndpointError> {
    cluster
        .pod_by_ref(text)
        .map(|p| p.id)
        .ok_or_else(|| EndpointError::Unknown(format!("no pod `{text}` in the cluster")))
}

/// A probe destination, resolved to an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The address connected to.
    pub addr: SocketAddr,
    /// The destination pod when the address is a pod's (for the policy engine).
    pub pod: Option<PodId>,
}

/// Resolves a target (see the module documentation) for a probe on `port`.
pub fn target(net: &ClusterNet, text: &str, port: PortProtocol) -> Result<Target, EndpointError> {
    let cluster = net.cluster();
    let at = |ip: IpAddr, pod: Option<PodId>| Target { addr: SocketAddr::new(ip, port.port), pod };
    if let Some(p) = cluster.pod_by_ref(text) {
        return Ok(at(p.ip, Some(p.id)));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(at(ip, cluster.pod_by_ip(ip).map(|p| p.id)));
    }
    match text {
        "internet" => return Ok(at(net.outside().host, None)),
        "localhost" => return Ok(at(IpAddr::V4(Ipv4Addr::LOCALHOST), None)),
        _ => {}
    }
    let service = |svc: &str| {
        let (name, ns) = svc.split_once('.').unwrap_or((svc, "default"));
        cluster.service_by_name(ns, name).ok_or_else(|| {
            EndpointError::Unknown(format!("no Service `{name}` in namespace `{ns}`"))
        })
    };
    if let Some(svc) = text.strip_prefix("svc/") {
        let s = service(svc)?;
        let ip = s.cluster_ip.ok_or_else(|| {
            EndpointError::Unknown(format!("Service `{svc}` has no cluster IP (headless?)"))
        })?;
        return Ok(at(ip, None));
    }
    if let Some(svc) = text.strip_prefix("nodeport/") {
        let s = service(svc)?;
        let node_port = s
            .ports
            .iter()
            .find(|p| p.port == port.port && p.protocol == port.protocol)
            .and_then(|p| p.node_port)
            .ok_or_else(|| {
                EndpointError::Unknown(format!("Service `{svc}` has no node port for {port}"))
            })?;
        let node = net.nodes().first().ok_or_else(|| {
            EndpointError::Unknown("the cluster has no node to send a node port to".into())
        })?;
        return Ok(Target { addr: SocketAddr::new(node.ip, node_port), pod: None });
    }
    Err(EndpointError::Unknown(format!(
        "no target `{text}` (write namespace/name, svc/NAME.NS, nodeport/NAME.NS, internet, \
         localhost or an IP address)"
    )))
}

/// Opens one connection from `from` to `to` (default probe settings) and returns its outcome.
pub fn probe(
    net: &mut ClusterNet,
    from: Source,
    to: SocketAddr,
    protocol: kns_core::flow::Protocol,
) -> Result<ProbeOutcome, EndpointError> {
    net.probe(from, to, protocol, ProbeConfig::default())
        .map(|r| r.outcome)
        .map_err(|e| EndpointError::Probe(e.to_string()))
}

/// The name the server put in its reply (agnhost answers with its pod's name).
pub fn answered_by(outcome: &ProbeOutcome) -> Option<&str> {
    match outcome {
        ProbeOutcome::Connected { reply, .. } => reply.as_deref(),
        _ => None,
    }
}

/// What one HTTP request got: the status and body, or curl's exit code and message.
pub type HttpGot = Result<(u16, String), String>;

/// `curl [-H 'Host: HOST'] URL` from namespace `ns` (the URL's host an address): `None` when
/// curl did not exit within its own limits plus a margin.
pub fn http_get(
    net: &mut ClusterNet,
    ns: NetnsId,
    url: &str,
    host: Option<&str>,
) -> Result<Option<HttpGot>, kns_sim::cluster::ClusterError> {
    let mut config = HttpClientConfig::get(url);
    if let Some(h) = host {
        config.headers.push(("Host".into(), h.to_string()));
    }
    let limit = config.max_time + std::time::Duration::from_secs(5);
    net.run_app(ns, HttpClient::new(config), limit, |c| {
        c.exit_code().map(|code| match c.reply() {
            Some(r) if code == 0 => Ok((r.status, String::from_utf8_lossy(&r.body).into_owned())),
            _ => Err(format!("curl exit {code}: {}", c.output().trim())),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kns_sim::cluster::ClusterOptions;

    fn net() -> ClusterNet {
        let yaml = r#"apiVersion: v1
kind: Pod
metadata: {name: a, namespace: default}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {x: y}
  ports: [{port: 80, nodePort: 30080}]
"#;
        let cluster = kns_core::manifest::load_str("t.yaml", yaml).expect("loads").cluster;
        ClusterNet::build(cluster, ClusterOptions::default()).expect("builds")
    }

    #[test]
    fn sources_and_targets_resolve_by_the_names_people_write() {
        let net = net();
        let c = net.cluster();
        assert!(matches!(source(c, "default/a"), Ok(Source::Pod(_))));
        assert!(matches!(source(c, "node-1"), Ok(Source::Node(_))));
        assert_eq!(source(c, "internet"), Ok(Source::Internet));
        assert!(source(c, "default/zz").unwrap_err().to_string().contains("namespace/name"));
        let p = PortProtocol::new(80, kns_core::flow::Protocol::Tcp);
        let a = target(&net, "default/a", p).unwrap();
        assert_eq!(a.pod, Some(pod(c, "default/a").unwrap()));
        let svc = target(&net, "svc/web.default", p).unwrap();
        assert_eq!(Some(svc.addr.ip()), c.service_by_name("default", "web").unwrap().cluster_ip);
        let np = target(&net, "nodeport/web.default", p).unwrap();
        assert_eq!(np.addr, SocketAddr::new(net.nodes()[0].ip, 30080));
        assert_eq!(target(&net, "localhost", p).unwrap().addr.to_string(), "127.0.0.1:80");
        assert!(target(&net, "svc/nope.default", p).is_err());
        let other = PortProtocol::new(81, kns_core::flow::Protocol::Tcp);
        assert!(target(&net, "nodeport/web.default", other).is_err());
    }
}
