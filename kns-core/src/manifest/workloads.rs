//! Pods, and the controllers that make them: Deployments, ReplicaSets, StatefulSets and
//! DaemonSets are expanded into pods with Kubernetes-like names.
//!
//! Names are deterministic: a Deployment `web` makes the ReplicaSet `web-<hash>` (10
//! characters of a fixed 64-bit FNV-1a hash of the pod template, in the alphabet Kubernetes
//! uses for generated names) and pods `web-<hash>-<5 characters>`; a StatefulSet `db` makes
//! `db-0`, `db-1`, ...; a DaemonSet `ds` makes one `ds-<5 characters>` per matching node.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::validate::{join, labels, port_name, port_number, protocol, selector};
use super::{Diag, Location};
use crate::model::{Container, ContainerPort, Labels, Node, Owner};

/// The characters of generated name suffixes (no vowels, no look-alikes), as in Kubernetes.
const ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// The most replicas kns expands one controller into (a guard against typos such as
/// `replicas: 30000000` exhausting memory).
pub(super) const MAX_REPLICAS: i32 = 100_000;

/// A pod about to be placed: everything but its node and addresses.
#[derive(Debug, Clone)]
pub(super) struct PodPlan {
    /// The pod's own location, or its controller's.
    pub loc: Location,
    /// The namespace name.
    pub namespace: String,
    /// The pod name.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its containers.
    pub containers: Vec<Container>,
    /// `spec.hostNetwork`.
    pub host_network: bool,
    /// `spec.hostname`.
    pub hostname: Option<String>,
    /// `spec.subdomain`.
    pub subdomain: Option<String>,
    /// `spec.nodeName`, if already placed.
    pub node_name: Option<String>,
    /// `status.hostIP`, if known.
    pub host_ip: Option<IpAddr>,
    /// `status.podIPs` (or `podIP`), if known.
    pub ips: Vec<IpAddr>,
    /// Where the IPs were given, for messages.
    pub ips_field: &'static str,
    /// Where the pod spec is inside the object (`spec` or `spec.template.spec`).
    pub spec_path: &'static str,
    /// Readiness.
    pub ready: bool,
    /// The controller.
    pub owner: Option<Owner>,
}

/// What a pod spec contributes, converted once per template.
#[derive(Debug, Clone)]
struct SpecParts {
    containers: Vec<Container>,
    host_network: bool,
    hostname: Option<String>,
    subdomain: Option<String>,
    node_name: Option<String>,
    node_selector: Labels,
}

/// A declared Pod; `None` when it has finished (`Succeeded`/`Failed`) and holds no address.
pub(super) fn pod(
    loc: &Location,
    namespace: &str,
    name: &str,
    pod: &Pod,
    diag: &mut Diag,
) -> Option<PodPlan> {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        diag.warn_once(
            "finished pods",
            loc.with_field("status.phase"),
            "pods that have finished (Succeeded or Failed) are left out, as they hold no address",
        );
        return None;
    }
    let Some(spec) = pod.spec.as_ref() else {
        diag.error(loc.with_field("spec"), "missing spec");
        return None;
    };
    let pod_labels = labels(pod.metadata.labels.as_ref(), "metadata.labels", loc, diag);
    let parts = spec_parts(spec, "spec", loc, diag);
    let (ips, ips_field) = status_ips(status, loc, diag);
    let host_ip = status
        .and_then(|s| s.host_ip.as_deref())
        .and_then(|h| super::validate::ip(h, "status.hostIP", loc, diag));
    let owner = pod.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true));
    Some(PodPlan {
        loc: loc.clone(),
        namespace: namespace.into(),
        name: name.into(),
        labels: pod_labels,
        containers: parts.containers,
        host_network: parts.host_network,
        hostname: parts.hostname,
        subdomain: parts.subdomain,
        node_name: parts.node_name,
        host_ip,
        ips,
        ips_field,
        spec_path: "spec",
        ready: ready(status),
        owner: owner.map(|o| Owner { kind: o.kind.clone(), name: o.name.clone() }),
    })
}

/// The addresses in `status.podIPs` (or `status.podIP`).
fn status_ips(
    status: Option<&PodStatus>,
    loc: &Location,
    diag: &mut Diag,
) -> (Vec<IpAddr>, &'static str) {
    let Some(status) = status else { return (Vec::new(), "status.podIP") };
    let mut ips = Vec::new();
    let mut field = "status.podIP";
    if let Some(list) = status.pod_ips.as_ref().filter(|l| !l.is_empty()) {
        field = "status.podIPs";
        for (i, p) in list.iter().enumerate() {
            if let Some(ip) =
                super::validate::ip(&p.ip, &format!("status.podIPs[{i}].ip"), loc, diag)
            {
                ips.push(ip);
            }
        }
    }
    if let Some(primary) = status.pod_ip.as_deref().filter(|p| !p.is_empty())
        && let Some(ip) = super::validate::ip(primary, "status.podIP", loc, diag)
    {
        match ips.first() {
            None => ips.push(ip),
            Some(first) if *first != ip => diag.error(
                loc.with_field("status.podIP"),
                format!("{ip} differs from the first of status.podIPs ({first})"),
            ),
            Some(_) => {}
        }
    }
    (ips, field)
}

/// Whether the pod is ready: its `Ready` condition, else its phase (running unless said).
fn ready(status: Option<&PodStatus>) -> bool {
    let Some(status) = status else { return true };
    let condition = status.conditions.iter().flatten().find(|c| c.type_ == "Ready");
    match condition {
        Some(c) => c.status == "True",
        None => matches!(status.phase.as_deref(), None | Some("Running")),
    }
}

/// Converts the networking parts of a pod spec found at `path`.
fn spec_parts(spec: &PodSpec, path: &str, loc: &Location, diag: &mut Diag) -> SpecParts {
    let mut containers = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let mut ports = Vec::new();
        for (j, p) in c.ports.iter().flatten().enumerate() {
            let at = join(path, &format!("containers[{i}].ports[{j}]"));
            let number = port_number(p.container_port, &join(&at, "containerPort"), loc, diag);
            let proto = protocol(p.protocol.as_deref(), &join(&at, "protocol"), loc, diag);
            if let Some(name) = &p.name
                && let Err(why) = port_name(name)
            {
                diag.error(
                    loc.with_field(join(&at, "name")),
                    format!("invalid port name `{name}`: {why}"),
                );
            }
            let host_port =
                p.host_port.and_then(|h| port_number(h, &join(&at, "hostPort"), loc, diag));
            if let Some(port) = number {
                ports.push(ContainerPort {
                    name: p.name.clone(),
                    port,
                    protocol: proto,
                    host_port,
                });
            }
        }
        containers.push(Container { name: c.name.clone(), ports });
    }
    SpecParts {
        containers,
        host_network: spec.host_network.unwrap_or(false),
        hostname: spec.hostname.clone(),
        subdomain: spec.subdomain.clone(),
        node_name: spec.node_name.clone().filter(|n| !n.is_empty()),
        node_selector: labels(spec.node_selector.as_ref(), &join(path, "nodeSelector"), loc, diag),
    }
}

/// A controller's pod template, checked against its selector.
struct Template {
    labels: Labels,
    parts: SpecParts,
    /// The template-hash of the template (for Deployments).
    hash: u64,
}

fn template(
    template: Option<&PodTemplateSpec>,
    selector_value: &LabelSelector,
    loc: &Location,
    diag: &mut Diag,
) -> Option<Template> {
    let Some(t) = template else {
        diag.error(loc.with_field("spec.template"), "missing spec.template");
        return None;
    };
    let Some(spec) = t.spec.as_ref() else {
        diag.error(loc.with_field("spec.template.spec"), "missing spec.template.spec");
        return None;
    };
    let meta = t.metadata.clone().unwrap_or_default();
    let template_labels = labels(meta.labels.as_ref(), "spec.template.metadata.labels", loc, diag);
    let sel = selector(selector_value, "spec.selector", loc, diag)?;
    if sel.is_empty() {
        diag.error(loc.with_field("spec.selector"), "a controller's selector must not be empty");
    } else if !sel.matches(&template_labels) {
        diag.error(
            loc.with_field("spec.selector"),
            format!("selector `{sel}` does not match the template labels (spec.template.metadata.labels)"),
        );
    }
    let parts = spec_parts(spec, "spec.template.spec", loc, diag);
    let hash = fnv(&serde_json::to_vec(t).unwrap_or_default());
    Some(Template { labels: template_labels, parts, hash })
}

/// Which controller, for naming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Controller {
    /// Pods `<rs>-<5>` of the ReplicaSet `<name>-<10>`.
    Deployment,
    /// Pods `<name>-<5>`.
    ReplicaSet,
    /// Pods `<name>-<ordinal>`.
    StatefulSet {
        /// `spec.serviceName`.
        service: Option<String>,
        /// `spec.ordinals.start`.
        first: i32,
    },
    /// One pod `<name>-<5>` per node.
    DaemonSet,
}

/// A controller's identity and template, as it appears in the input.
pub(super) struct Workload<'a> {
    /// Its location (`Kind ns/name`).
    pub loc: &'a Location,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// `spec.replicas` (ignored for DaemonSets).
    pub replicas: Option<i32>,
    /// `spec.selector`.
    pub selector: &'a LabelSelector,
    /// `spec.template`.
    pub template: Option<&'a PodTemplateSpec>,
    /// `metadata` of the controller (unused beyond validation today).
    pub metadata: &'a ObjectMeta,
}

/// Expands a controller into its pods.
pub(super) fn expand(
    kind: Controller,
    w: &Workload<'_>,
    nodes: &[Node],
    diag: &mut Diag,
) -> Vec<PodPlan> {
    labels(w.metadata.labels.as_ref(), "metadata.labels", w.loc, diag);
    let Some(t) = template(w.template, w.selector, w.loc, diag) else { return Vec::new() };
    let replicas = match w.replicas {
        None => 1,
        Some(n) if (0..=MAX_REPLICAS).contains(&n) => n as u32,
        Some(n) => {
            diag.error(
                w.loc.with_field("spec.replicas"),
                format!("replicas must be between 0 and {MAX_REPLICAS} in kns (found {n})"),
            );
            return Vec::new();
        }
    };
    let plan = |name: String, labels: Labels, owner: Owner, node: Option<String>| PodPlan {
        loc: w.loc.clone(),
        namespace: w.namespace.to_string(),
        name,
        labels,
        containers: t.parts.containers.clone(),
        host_network: t.parts.host_network,
        hostname: t.parts.hostname.clone(),
        subdomain: t.parts.subdomain.clone(),
        node_name: node.or_else(|| t.parts.node_name.clone()),
        host_ip: None,
        ips: Vec::new(),
        ips_field: "status.podIP",
        spec_path: "spec.template.spec",
        ready: true,
        owner: Some(owner),
    };
    match kind {
        Controller::Deployment | Controller::ReplicaSet => {
            let (rs, pod_labels) = if kind == Controller::Deployment {
                let hash = suffix(t.hash, 10);
                let mut l = t.labels.clone();
                l.insert("pod-template-hash".into(), hash.clone());
                (format!("{}-{hash}", w.name), l)
            } else {
                (w.name.to_string(), t.labels.clone())
            };
            let owner = Owner { kind: "ReplicaSet".into(), name: rs.clone() };
            unique_suffixes(&rs, (0..replicas).map(|i| i.to_string()))
                .into_iter()
                .map(|s| plan(format!("{rs}-{s}"), pod_labels.clone(), owner.clone(), None))
                .collect()
        }
        Controller::StatefulSet { service, first } => {
            let owner = Owner { kind: "StatefulSet".into(), name: w.name.into() };
            (0..replicas as i64)
                .map(|i| {
                    let name = format!("{}-{}", w.name, i + first as i64);
                    let mut l = t.labels.clone();
                    l.insert("statefulset.kubernetes.io/pod-name".into(), name.clone());
                    let mut p = plan(name.clone(), l, owner.clone(), None);
                    p.hostname = Some(name);
                    p.subdomain = service.clone().or(p.subdomain);
                    p
                })
                .collect()
        }
        Controller::DaemonSet => {
            let owner = Owner { kind: "DaemonSet".into(), name: w.name.into() };
            let mut eligible: Vec<&Node> = nodes
                .iter()
                .filter(|n| t.parts.node_selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
                .collect();
            if let Some(only) = &t.parts.node_name {
                eligible.retain(|n| &n.name == only);
            }
            eligible.sort_by(|a, b| a.name.cmp(&b.name));
            let suffixes = unique_suffixes(w.name, eligible.iter().map(|n| n.name.clone()));
            eligible
                .iter()
                .zip(suffixes)
                .map(|(n, s)| {
                    plan(
                        format!("{}-{s}", w.name),
                        t.labels.clone(),
                        owner.clone(),
                        Some(n.name.clone()),
                    )
                })
                .collect()
        }
    }
}

/// Five-character suffixes for the members of `base`, one per seed, all distinct.
fn unique_suffixes(base: &str, seeds: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for seed in seeds {
        let mut attempt = 0u32;
        loop {
            let s = suffix(fnv(format!("{base}/{seed}/{attempt}").as_bytes()), 5);
            if seen.insert(s.clone()) {
                out.push(s);
                break;
            }
            attempt += 1;
        }
    }
    out
}

/// 64-bit FNV-1a: a fixed, platform-independent hash.
pub(super) fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `len` characters of [`ALPHABET`] taken from `hash`.
pub(super) fn suffix(mut hash: u64, len: usize) -> String {
    let mut out = String::with_capacity(len);
    for _ in 0..len {
        out.push(ALPHABET[(hash % 27) as usize] as char);
        hash /= 27;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn suffixes_use_the_safe_alphabet_and_are_distinct() {
        let s = unique_suffixes("web-x", (0..500).map(|i| i.to_string()));
        assert_eq!(s.len(), 500);
        assert_eq!(s.iter().collect::<BTreeSet<_>>().len(), 500);
        assert!(s.iter().all(|x| x.len() == 5 && x.bytes().all(|b| ALPHABET.contains(&b))));
        assert_eq!(suffix(0, 3), "bbb");
    }
}
