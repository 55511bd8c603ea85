//! Assembly of the [`Cluster`] from decoded objects, with the checks that span objects:
//! duplicate names (across files too), namespaces that must exist, nodes, addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::cluster_doc::{NodeHint, topology};
use super::ipam::{ServiceRequest, Wanted, place_pods, service_ips};
use super::kinds::{Body, Object};
use super::services::{
    Resolver, allocate_node_ports, computed_slices, endpoint_slice, endpoints, kubernetes_service,
    service,
};
use super::validate::labels;
use super::workloads::{Controller, PodPlan, Workload, expand, pod};
use super::{Diag, Location, ingress, netpol};
use crate::model::{
    Cluster, ConfigMap, IngressId, Namespace, NamespaceId, Pod, PodId, PolicyId, Service, ServiceId,
};

/// Namespaces that exist in every cluster without being declared.
pub(super) const IMPLICIT_NAMESPACES: [&str; 4] =
    ["default", "kube-node-lease", "kube-public", "kube-system"];

/// The label the API server puts on every namespace.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Builds the cluster; problems go to `diag` (the cluster is then incomplete).
pub(super) fn build(objects: Vec<Object>, diag: &mut Diag) -> Cluster {
    let objects = drop_duplicates(objects, diag);

    // Settings and nodes.
    let mut cluster_docs = objects.iter().filter_map(|o| match &o.body {
        Body::Cluster(d) => Some((d.as_ref(), &o.loc)),
        _ => None,
    });
    let cluster_doc = cluster_docs.next();
    for (_, loc) in cluster_docs {
        let first = cluster_doc.map(|(_, l)| l.render_place()).unwrap_or_default();
        diag.error(
            loc.clone(),
            format!("only one Cluster document is allowed (the first is {first})"),
        );
    }
    let topo = topology(cluster_doc, &node_hints(&objects), diag);
    let mut cluster = Cluster::new(topo.config.clone());
    cluster.nodes = topo.nodes.clone();

    // Namespaces.
    for name in IMPLICIT_NAMESPACES {
        let id = NamespaceId::from_index(cluster.namespaces.len());
        let ns_labels = [(NAME_LABEL.to_string(), name.to_string())].into();
        cluster.namespaces.push(Namespace {
            id,
            name: name.into(),
            labels: ns_labels,
            declared: false,
        });
    }
    for o in &objects {
        let Body::Namespace(ns) = &o.body else { continue };
        let mut ns_labels = labels(ns.metadata.labels.as_ref(), "metadata.labels", &o.loc, diag);
        ns_labels.insert(NAME_LABEL.into(), o.name.clone());
        match cluster.namespaces.iter_mut().find(|n| n.name == o.name) {
            Some(existing) => {
                existing.labels = ns_labels;
                existing.declared = true;
            }
            None => {
                let id = NamespaceId::from_index(cluster.namespaces.len());
                cluster.namespaces.push(Namespace {
                    id,
                    name: o.name.clone(),
                    labels: ns_labels,
                    declared: true,
                });
            }
        }
    }
    let ns_ids: BTreeMap<String, NamespaceId> =
        cluster.namespaces.iter().map(|n| (n.name.clone(), n.id)).collect();
    // One error per missing namespace, at its first object, counting the others.
    let mut missing: BTreeMap<&str, (&Location, usize)> = BTreeMap::new();
    for o in &objects {
        if let Some(ns) = o.namespace.as_deref().filter(|ns| !ns_ids.contains_key(*ns)) {
            missing.entry(ns).or_insert((&o.loc, 0)).1 += 1;
        }
    }
    for (ns, (loc, count)) in missing {
        let others = match count {
            1 => String::new(),
            n => format!("; {} more object(s) are in it", n - 1),
        };
        diag.error(
            loc.with_field("metadata.namespace"),
            format!(
                "namespace `{ns}` does not exist (declare it with a Namespace document; only {} \
                 exist without one){others}",
                IMPLICIT_NAMESPACES.join(", ")
            ),
        );
    }
    let objects: Vec<Object> = objects
        .into_iter()
        .filter(|o| o.namespace.as_ref().is_none_or(|ns| ns_ids.contains_key(ns)))
        .collect();
    let ns_of = |o: &Object| ns_ids[o.namespace.as_deref().unwrap_or("default")];

    // Pods: declared and made by controllers.
    let owned = owned_objects(&objects);
    let mut plans: Vec<PodPlan> = Vec::new();
    for o in &objects {
        let ns = o.namespace.as_deref().unwrap_or("default");
        let is_owned = owned.contains(&(ns.to_string(), o.body.kind().to_string(), o.name.clone()));
        let workload = |replicas, selector, template, metadata| Workload {
            loc: &o.loc,
            namespace: ns,
            name: &o.name,
            replicas,
            selector,
            template,
            metadata,
        };
        let made = match &o.body {
            Body::Pod(p) => pod(&o.loc, ns, &o.name, p, diag).into_iter().collect(),
            _ if is_owned => Vec::new(),
            Body::Deployment(d) => {
                let s = &d.spec;
                let w = workload(s.replicas, &s.selector, Some(&s.template), &d.metadata);
                expand(Controller::Deployment, &w, &cluster.nodes, diag)
            }
            Body::ReplicaSet(r) => {
                let s = &r.spec;
                let w = workload(s.replicas, &s.selector, s.template.as_ref(), &r.metadata);
                expand(Controller::ReplicaSet, &w, &cluster.nodes, diag)
            }
            Body::StatefulSet(st) => {
                let s = &st.spec;
                let first = s.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
                let kind = Controller::StatefulSet { service: s.service_name.clone(), first };
                let w = workload(s.replicas, &s.selector, Some(&s.template), &st.metadata);
                expand(kind, &w, &cluster.nodes, diag)
            }
            Body::DaemonSet(d) => {
                let s = &d.spec;
                let w = workload(None, &s.selector, Some(&s.template), &d.metadata);
                expand(Controller::DaemonSet, &w, &cluster.nodes, diag)
            }
            _ => Vec::new(),
        };
        plans.extend(made);
    }
    let plans = drop_duplicate_pods(plans, diag);
    let placed = place_pods(&plans, &topo, diag);
    for (plan, place) in plans.into_iter().zip(placed) {
        let Some((node, ips)) = place else { continue };
        cluster.pods.push(Pod {
            id: PodId::from_index(cluster.pods.len()),
            name: plan.name,
            namespace: ns_ids[&plan.namespace],
            labels: plan.labels,
            node,
            ip: ips[0],
            ips,
            host_network: plan.host_network,
            containers: plan.containers,
            owner: plan.owner,
            hostname: plan.hostname,
            subdomain: plan.subdomain,
            ready: plan.ready,
        });
    }

    // Services and their addresses.
    let mut drafts: Vec<(Service, Wanted, Location)> = Vec::new();
    for o in &objects {
        let Body::Service(s) = &o.body else { continue };
        if let Some((mut svc, wanted)) = service(&o.name, s, &o.loc, diag) {
            svc.namespace = ns_of(o);
            drafts.push((svc, wanted, o.loc.clone()));
        }
    }
    let has_kubernetes = objects.iter().any(|o| {
        matches!(o.body, Body::Service(_))
            && o.name == "kubernetes"
            && o.namespace.as_deref() == Some("default")
    });
    if !has_kubernetes {
        let mut svc = kubernetes_service();
        svc.namespace = ns_ids["default"];
        let loc = Location {
            file: "<implicit>".into(),
            object: Some("Service default/kubernetes".into()),
            ..Location::default()
        };
        drafts.insert(0, (svc, Wanted::Any, loc));
    }
    let ns_name = |id: NamespaceId| cluster.namespaces[id.index()].name.clone();
    let names: Vec<String> = drafts.iter().map(|(s, _, _)| ns_name(s.namespace)).collect();
    let requests: Vec<ServiceRequest<'_>> = drafts
        .iter()
        .zip(&names)
        .map(|((s, wanted, loc), ns)| ServiceRequest {
            loc,
            namespace: ns,
            name: &s.name,
            wanted: *wanted,
        })
        .collect();
    let ips = service_ips(&requests, &topo, diag);
    let mut locs = Vec::new();
    for ((mut svc, _, loc), ip) in drafts.into_iter().zip(ips) {
        svc.id = ServiceId::from_index(cluster.services.len());
        svc.cluster_ip = ip;
        cluster.services.push(svc);
        locs.push(loc);
    }
    allocate_node_ports(&mut cluster, &locs, topo.explicit, diag);

    // Endpoints: given EndpointSlices; legacy Endpoints of Services that have no slice (a
    // dump often holds both, mirrored, and kube-proxy reads only the slices); then computed
    // slices for Services that have neither.
    let mut slices = Vec::new();
    {
        let r = Resolver::new(&cluster);
        for o in &objects {
            if let Body::EndpointSlice(s) = &o.body {
                slices.extend(endpoint_slice(ns_of(o), &o.name, s, &o.loc, &r, diag));
            }
        }
        let sliced: BTreeSet<(NamespaceId, String)> =
            slices.iter().map(|s| (s.namespace, s.service_name.clone())).collect();
        for o in &objects {
            if let Body::Endpoints(e) = &o.body {
                let converted = endpoints(ns_of(o), &o.name, e, &o.loc, &r, diag);
                if !sliced.contains(&(ns_of(o), o.name.clone())) {
                    slices.extend(converted);
                }
            }
        }
        let given: BTreeSet<(NamespaceId, String)> =
            slices.iter().map(|s| (s.namespace, s.service_name.clone())).collect();
        let sorted = cluster.pods_sorted();
        for svc in &cluster.services {
            if !given.contains(&(svc.namespace, svc.name.clone())) {
                slices.extend(computed_slices(&cluster, &sorted, svc));
            }
        }
    }
    cluster.endpoint_slices = slices;

    // Policies, Ingresses, ConfigMaps.
    for o in &objects {
        match &o.body {
            Body::NetworkPolicy(np) => {
                let id = PolicyId::from_index(cluster.policies.len());
                if let Some(p) = netpol::convert(id, ns_of(o), &o.name, np, &o.loc, diag) {
                    cluster.policies.push(p);
                }
            }
            Body::Ingress(ing) => {
                let id = IngressId::from_index(cluster.ingresses.len());
                if let Some(i) = ingress::convert(id, ns_of(o), &o.name, ing, &o.loc, diag) {
                    ingress::warn_missing_backends(&cluster, &i, &o.loc, diag);
                    cluster.ingresses.push(i);
                }
            }
            Body::ConfigMap(cm) => cluster.config_maps.push(ConfigMap {
                name: o.name.clone(),
                namespace: ns_of(o),
                data: cm.data.clone().unwrap_or_default(),
            }),
            _ => {}
        }
    }
    cluster
}

/// Reports objects defined twice (same kind, namespace and name) and keeps the first.
fn drop_duplicates(objects: Vec<Object>, diag: &mut Diag) -> Vec<Object> {
    let mut seen: BTreeMap<(&'static str, Option<String>, String), Location> = BTreeMap::new();
    let mut out = Vec::new();
    for o in objects {
        let key = (o.body.kind(), o.namespace.clone(), o.name.clone());
        if matches!(o.body, Body::Cluster(_)) {
            out.push(o);
            continue;
        }
        if let Some(first) = seen.get(&key) {
            diag.error(
                o.loc.with_field("metadata.name"),
                format!(
                    "duplicate {}: already defined at {}",
                    o.loc.object.as_deref().unwrap_or(key.0),
                    first.render_place()
                ),
            );
            continue;
        }
        seen.insert(key, o.loc.clone());
        out.push(o);
    }
    out
}

/// Reports pods with the same namespace and name (declared twice, or declared and made by a
/// controller) and keeps the first.
fn drop_duplicate_pods(plans: Vec<PodPlan>, diag: &mut Diag) -> Vec<PodPlan> {
    let mut seen: BTreeMap<(String, String), Location> = BTreeMap::new();
    let mut out = Vec::new();
    for p in plans {
        let key = (p.namespace.clone(), p.name.clone());
        if let Some(first) = seen.get(&key) {
            let by = |l: &Location| {
                format!("{} ({})", l.object.as_deref().unwrap_or("?"), l.render_place())
            };
            diag.error(
                p.loc.clone(),
                format!(
                    "duplicate Pod {}/{}: made by {} and by {}",
                    p.namespace,
                    p.name,
                    by(first),
                    by(&p.loc)
                ),
            );
            continue;
        }
        seen.insert(key, p.loc.clone());
        out.push(p);
    }
    out
}

/// Controllers whose pods (or ReplicaSets) are in the input already, as (namespace, kind,
/// name): a `kubectl get all` dump lists a Deployment, its ReplicaSet and its pods, and
/// expanding the controllers as well would triple the pods. A pod owned by the ReplicaSet
/// `web-<hash>` also marks the Deployment `web` (dumps of Deployments and pods only).
fn owned_objects(objects: &[Object]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for o in objects {
        let meta = match &o.body {
            Body::Pod(p) => &p.metadata,
            Body::ReplicaSet(r) => &r.metadata,
            _ => continue,
        };
        let ns = o.namespace.clone().unwrap_or_default();
        for r in meta.owner_references.iter().flatten() {
            out.insert((ns.clone(), r.kind.clone(), r.name.clone()));
            if r.kind == "ReplicaSet"
                && let Some((deployment, _hash)) = r.name.rsplit_once('-')
            {
                out.insert((ns.clone(), "Deployment".into(), deployment.into()));
            }
        }
    }
    out
}

/// The nodes that pods name, with the address their `status.hostIP` gives, sorted by name.
fn node_hints(objects: &[Object]) -> Vec<NodeHint> {
    let mut hints: BTreeMap<String, Option<IpAddr>> = BTreeMap::new();
    for o in objects {
        let Body::Pod(p) = &o.body else { continue };
        let Some(node) =
            p.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty())
        else {
            continue;
        };
        let host_ip =
            p.status.as_ref().and_then(|s| s.host_ip.as_deref()).and_then(|h| h.parse().ok());
        let entry = hints.entry(node).or_insert(None);
        if entry.is_none() {
            *entry = host_ip;
        }
    }
    hints.into_iter().collect()
}
