//! Kubernetes YAML → k8s-openapi types → [`model`](crate::model), with located errors.
//!
//! kns-core does no I/O: callers hand in file names and their text ([`Loader::add`]), then
//! [`Loader::finish`] builds one [`Cluster`] from everything, or returns every problem found
//! ([`ManifestErrors`]), each located by file, document, object and field path.
//!
//! The pipeline, one module per step:
//! - `parse`: YAML text → documents (multi-document files, `kind: List` items, empty
//!   documents skipped), recovering after malformed documents;
//! - `kinds`: each document dispatched on `apiVersion`/`kind` and decoded into its
//!   k8s-openapi type, with fields the type does not know reported as errors;
//! - `cluster_doc`: the kns `Cluster` document (nodes, CIDRs, modes) or its defaults;
//! - `workloads`: Deployments, ReplicaSets, StatefulSets and DaemonSets expanded into pods
//!   with Kubernetes-like, deterministic names;
//! - `ipam`: scheduling of unplaced pods and address allocation for pods and Services;
//! - `services`, `netpol`, `ingress`: conversion into the model, with validation;
//! - `build`: the assembly of the [`Cluster`] and the cross-object checks (duplicates,
//!   namespaces, addresses).
//!
//! Everything is deterministic: no hash-map order, no randomness; generated names come from
//! a fixed hash of the object.
//!
//! ## Conventions
//!
//! - Namespaces `default`, `kube-system`, `kube-public` and `kube-node-lease` always exist;
//!   any other must be declared by a Namespace document.
//! - Live-cluster dumps are honoured: `spec.nodeName`, `status.podIP(s)`, `status.hostIP`,
//!   `spec.clusterIP` (`None` = headless). Controllers whose pods or ReplicaSets are in the
//!   input are not expanded again.
//! - Otherwise pods are spread round-robin over the nodes (sorted by name) and take the next
//!   free address of their node's pod CIDR from `.2`, both in (namespace, name) order.
//!   Service IPs: `.1` is `default/kubernetes` (created when absent), `.10` is kept for
//!   `kube-system/kube-dns`, the others come from `.11` in (namespace, name) order.
//! - Services with a selector and no Endpoints/EndpointSlice in the input get the slices an
//!   EndpointSlice controller would make (in [`Cluster::endpoint_slices`](crate::model::Cluster)).
//! - Without a `Cluster` document, addresses outside the default networks are accepted with
//!   one warning (live clusters vary); with one, they are errors.
//!
//! ## The kns `Cluster` document
//!
//! Describes what Kubernetes manifests leave out; every field is optional and defaults to
//! [`ClusterConfig::default`](crate::model::ClusterConfig):
//!
//! ```yaml
//! apiVersion: kns.dev/v1alpha1
//! kind: Cluster
//! metadata:
//!   name: demo
//! spec:
//!   podCIDR: 10.244.0.0/16        # one /nodePodCIDRPrefix slice per node
//!   nodePodCIDRPrefix: 24
//!   serviceCIDR: 10.96.0.0/12
//!   nodeCIDR: 192.168.0.0/24      # node addresses, from .10 upward
//!   clusterDomain: cluster.local
//!   cni: routed                   # or overlay
//!   proxy: iptables               # ipvs, nftables, maglev
//!   enforcePolicy: true
//!   loadBalancerPool: 192.168.0.240-192.168.0.253   # CIDRs or ranges on the node network
//!   nodePortRange: 30000-32767
//!   nodes:
//!   - name: node-1
//!     labels: {topology.kubernetes.io/zone: a}
//!     address: 192.168.0.10       # optional
//!     podCIDR: 10.244.0.0/24      # optional
//! ```
//!
//! Without nodes (or without the document) the cluster has the nodes that pods name in
//! `spec.nodeName`, or else two nodes, `node-1` and `node-2`.

mod build;
mod cluster_doc;
mod ingress;
mod ipam;
mod kinds;
mod netpol;
mod parse;
mod services;
mod validate;
mod workloads;

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Cluster;

pub use kinds::SUPPORTED_KINDS;

/// Where a problem was found: file, document (1-based), object and field path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The file name as given to the loader.
    pub file: String,
    /// The 1-based index of the YAML document in the file (items of a `List` count inside it).
    pub document: Option<usize>,
    /// The 1-based index of the item inside a `kind: List` document, when the object is one.
    pub item: Option<usize>,
    /// `Kind namespace/name` of the object, when known.
    pub object: Option<String>,
    /// The field path inside the object (`spec.ingress[0].ports[1].port`), when known.
    pub field: Option<String>,
}

impl Location {
    /// The same place, at `field` inside the object.
    pub fn with_field(&self, field: impl Into<String>) -> Location {
        Location { field: Some(field.into()), ..self.clone() }
    }

    /// The place without object or field: `file: document N[, item M]`.
    pub fn render_place(&self) -> String {
        let mut out = self.file.clone();
        if let Some(d) = self.document {
            out.push_str(&format!(": document {d}"));
            if let Some(i) = self.item {
                out.push_str(&format!(", item {i}"));
            }
        }
        out
    }
}

/// One located problem in the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ManifestError {
    /// Where it is.
    pub location: Location,
    /// What is wrong, in plain words.
    pub message: String,
}

impl ManifestError {
    /// One line for people: `file: document N (Kind ns/name): field: message`.
    ///
    /// Items of a `kind: List` read `file: document N, item M (Kind ns/name): ...`.
    pub fn render(&self) -> String {
        let l = &self.location;
        let mut out = l.render_place();
        if let Some(o) = &l.object {
            out.push_str(&format!(" ({o})"));
        }
        if let Some(f) = &l.field {
            out.push_str(&format!(": {f}"));
        }
        out.push_str(": ");
        out.push_str(&self.message);
        out
    }
}

/// Every problem found in one load (the loader reports them all, not just the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the manifests", .0.len())]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl ManifestErrors {
    /// Every problem, one rendered line each.
    pub fn render(&self) -> String {
        self.0.iter().map(|e| e.render() + "\n").collect()
    }
}

/// A successfully loaded cluster, with the warnings the input deserves.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The cluster.
    pub cluster: Cluster,
    /// Fields that kns reads but does not act on, and similar notes.
    pub warnings: Vec<ManifestError>,
}

/// Collects manifest files, then builds one [`Cluster`] from all of them.
#[derive(Debug, Default)]
pub struct Loader {
    sources: Vec<(String, String)>,
}

impl Loader {
    /// An empty loader.
    pub fn new() -> Self {
        Loader::default()
    }

    /// Adds one file's text (any number of YAML documents).
    pub fn add(&mut self, file: impl Into<String>, text: impl Into<String>) -> &mut Self {
        self.sources.push((file.into(), text.into()));
        self
    }

    /// Parses everything added and builds the cluster.
    ///
    /// Every problem of every file is reported, ordered by file (in the order added), then
    /// document; warnings come back with the cluster.
    pub fn finish(self) -> Result<Loaded, ManifestErrors> {
        let mut diag = Diag::default();
        let mut docs = Vec::new();
        for (file, text) in &self.sources {
            parse::documents(file, text, &mut diag, &mut docs);
        }
        let objects: Vec<kinds::Object> =
            docs.into_iter().filter_map(|doc| kinds::decode(doc, &mut diag)).collect();
        let cluster = build::build(objects, &mut diag);
        let rank: BTreeMap<&str, usize> =
            self.sources.iter().enumerate().rev().map(|(i, (f, _))| (f.as_str(), i)).collect();
        let key = |e: &ManifestError| {
            let l = &e.location;
            (rank.get(l.file.as_str()).copied(), l.document, l.item)
        };
        diag.errors.sort_by_key(key);
        diag.warnings.sort_by_key(key);
        if diag.errors.is_empty() {
            Ok(Loaded { cluster, warnings: diag.warnings })
        } else {
            Err(ManifestErrors(diag.errors))
        }
    }
}

impl Loader {
    /// Like [`Loader::finish`], adding kns's built-in ingress controller
    /// ([`crate::ingress::controller_manifest`], file [`crate::ingress::CONTROLLER_FILE`]) when
    /// the manifests have Ingress objects and no controller pod; the flag says whether it was
    /// added. The user's objects keep their nodes and addresses either way.
    pub fn finish_with_ingress_controller(self) -> Result<(Loaded, bool), ManifestErrors> {
        let sources = self.sources.clone();
        let loaded = self.finish()?;
        let Some(extra) = crate::ingress::controller_manifest(&loaded.cluster) else {
            return Ok((loaded, false));
        };
        let mut again = Loader { sources };
        again.add(crate::ingress::CONTROLLER_FILE, extra);
        Ok((again.finish()?, true))
    }
}

/// Loads a single file's text.
pub fn load_str(file: &str, text: &str) -> Result<Loaded, ManifestErrors> {
    let mut loader = Loader::new();
    loader.add(file, text);
    loader.finish()
}

/// The problems and warnings collected during one load.
#[derive(Debug, Default)]
struct Diag {
    errors: Vec<ManifestError>,
    warnings: Vec<ManifestError>,
    /// Keys of the warnings already given, so that each is given once.
    warned: BTreeSet<String>,
}

impl Diag {
    /// Records a problem.
    fn error(&mut self, location: Location, message: impl Into<String>) {
        self.errors.push(ManifestError { location, message: message.into() });
    }

    /// Records a warning, unless one with the same `key` was already given.
    fn warn_once(
        &mut self,
        key: impl Into<String>,
        location: Location,
        message: impl Into<String>,
    ) {
        if self.warned.insert(key.into()) {
            self.warnings.push(ManifestError { location, message: message.into() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_names_file_document_item_object_and_field() {
        let e = ManifestError {
            location: Location {
                file: "a.yaml".into(),
                document: Some(2),
                item: Some(3),
                object: Some("Pod x/a".into()),
                field: Some("spec.containers[0].ports[0].containerPort".into()),
            },
            message: "port 0 is out of range (1-65535)".into(),
        };
        assert_eq!(
            e.render(),
            "a.yaml: document 2, item 3 (Pod x/a): spec.containers[0].ports[0].containerPort: \
             port 0 is out of range (1-65535)"
        );
        let bare = ManifestError {
            location: Location { file: "b.yaml".into(), ..Location::default() },
            message: "m".into(),
        };
        assert_eq!(bare.render(), "b.yaml: m");
        assert_eq!(ManifestErrors(vec![bare.clone(), bare]).render(), "b.yaml: m\nb.yaml: m\n");
    }
}
