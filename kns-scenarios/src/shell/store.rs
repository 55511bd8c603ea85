//! The shell's object store: every Kubernetes object of the session as a YAML document, keyed
//! by kind, namespace and name, as the API server keeps them. `kubectl apply` inserts or
//! replaces documents, `kubectl delete` removes them, and the cluster model is always what
//! kns-core's loader makes of the whole store.

use std::collections::BTreeSet;

use kns_core::manifest::{Loaded, Loader, ManifestErrors};
use kns_core::model::Cluster;
use yaml_serde::{Mapping, Value};

/// Kinds that live outside namespaces.
const CLUSTER_SCOPED: [&str; 7] = [
    "Namespace",
    "Node",
    "Cluster",
    "ClusterRole",
    "ClusterRoleBinding",
    "IngressClass",
    "PersistentVolume",
];

/// Where an object lives: its kind, namespace (empty for cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// `Pod`, `Service`, `NetworkPolicy`, ...
    pub kind: String,
    /// The namespace (`""` for cluster-scoped kinds).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl Key {
    /// kubectl's name for the object: `pod/web`, `networkpolicy.networking.k8s.io/deny`.
    pub fn kubectl_ref(&self) -> String {
        format!("{}/{}", kubectl_resource(&self.kind), self.name)
    }
}

/// kubectl's `resource.group` spelling of a kind, as `kubectl apply` prints it.
fn kubectl_resource(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match kind {
        "NetworkPolicy" | "Ingress" | "IngressClass" => format!("{lower}.networking.k8s.io"),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => format!("{lower}.apps"),
        "EndpointSlice" => format!("{lower}.discovery.k8s.io"),
        "Cluster" => format!("{lower}.kns.dev"),
        _ => lower,
    }
}

/// The running cluster whose addresses a reload keeps.
#[derive(Debug, Clone, Copy)]
pub struct Live<'a> {
    /// The model as the network realises it.
    pub cluster: &'a Cluster,
    /// `(namespace, name)` of every running pod.
    pub running: &'a BTreeSet<(String, String)>,
}

/// One stored object.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    key: Key,
    /// The file it came from (error messages name it).
    file: String,
    /// Which `apply` of that file it came from: documents of one apply are loaded together,
    /// so an error's document number counts in the file as the user gave it.
    batch: u64,
    value: Value,
}

/// What `apply` did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The object is new.
    Created,
    /// The object replaced a different one of the same key.
    Configured,
    /// The object equals the stored one.
    Unchanged,
}

impl Applied {
    /// kubectl's word for it.
    pub fn word(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        }
    }
}

/// Every object of the session, in the order first seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    objects: Vec<Stored>,
    batch: u64,
}

/// One object read from a file, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Its key.
    pub key: Key,
    file: String,
    value: Value,
}

/// Splits `text` into objects (multi-document files and `kind: List` items); a namespaced
/// object without `metadata.namespace` lands in `namespace`. Errors name the file and the
/// 1-based document.
pub fn documents(file: &str, text: &str, namespace: &str) -> Result<Vec<Document>, String> {
    let mut out = Vec::new();
    for (i, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let at = format!("{file}: document {}", i + 1);
        let mut value: Value =
            serde::Deserialize::deserialize(de).map_err(|e| format!("{at}: {e}"))?;
        value.apply_merge().map_err(|e| format!("{at}: {e}"))?;
        match value {
            Value::Null => {}
            v if v.get("kind").and_then(Value::as_str) == Some("List") => {
                let items =
                    v.get("items").and_then(Value::as_sequence).cloned().unwrap_or_default();
                for (j, item) in items.into_iter().enumerate() {
                    let at = format!("{at}, item {}", j + 1);
                    out.push(document(&at, file, item, namespace)?);
                }
            }
            v => out.push(document(&at, file, v, namespace)?),
        }
    }
    Ok(out)
}

/// Keys one object, filling in its namespace.
fn document(at: &str, file: &str, mut value: Value, namespace: &str) -> Result<Document, String> {
    let text = |v: &Value, field: &str| v.get(field).and_then(Value::as_str).map(str::to_string);
    let kind = text(&value, "kind").ok_or_else(|| format!("{at}: the object has no `kind`"))?;
    let meta = value.get("metadata").cloned().unwrap_or(Value::Null);
    let name = text(&meta, "name")
        .ok_or_else(|| format!("{at} ({kind}): the object has no `metadata.name`"))?;
    let namespace = if CLUSTER_SCOPED.contains(&kind.as_str()) {
        String::new()
    } else {
        match text(&meta, "namespace") {
            Some(ns) => ns,
            None => {
                set(&mut value, &["metadata", "namespace"], Value::from(namespace));
                namespace.to_string()
            }
        }
    };
    Ok(Document { key: Key { kind, namespace, name }, file: file.to_string(), value })
}

/// Sets `value[path...]`, creating mappings on the way.
fn set(value: &mut Value, path: &[&str], new: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = value;
    for p in parents {
        if !matches!(at, Value::Mapping(_)) {
            *at = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(m) = at else { return };
        at = m.entry(Value::from(*p)).or_insert(Value::Null);
    }
    if !matches!(at, Value::Mapping(_)) {
        *at = Value::Mapping(Mapping::new());
    }
    if let Value::Mapping(m) = at {
        m.insert(Value::from(*last), new);
    }
}

impl Store {
    /// The store of the given files (`(name, text)` pairs), every namespaced object without a
    /// namespace in `default`.
    pub fn from_sources(sources: &[(String, String)]) -> Result<Store, String> {
        let mut store = Store::default();
        for (file, text) in sources {
            store.begin_batch();
            for doc in documents(file, text, "default")? {
                store.apply(doc);
            }
        }
        Ok(store)
    }

    /// Starts a new apply: the documents applied from now on are loaded together.
    pub fn begin_batch(&mut self) {
        self.batch += 1;
    }

    /// Inserts or replaces one object.
    pub fn apply(&mut self, doc: Document) -> Applied {
        let batch = self.batch;
        match self.objects.iter_mut().find(|o| o.key == doc.key) {
            Some(o) if o.value == doc.value => Applied::Unchanged,
            Some(o) => {
                *o = Stored { key: doc.key, file: doc.file, batch, value: doc.value };
                Applied::Configured
            }
            None => {
                self.objects.push(Stored { key: doc.key, file: doc.file, batch, value: doc.value });
                Applied::Created
            }
        }
    }

    /// Removes one object; `false` if there was none.
    pub fn delete(&mut self, key: &Key) -> bool {
        let before = self.objects.len();
        self.objects.retain(|o| &o.key != key);
        self.objects.len() != before
    }

    /// Whether an object with this key is stored.
    pub fn contains(&self, key: &Key) -> bool {
        self.objects.iter().any(|o| &o.key == key)
    }

    /// Loads the model of every stored object. Addresses of `live` are written into the
    /// documents first, as a running cluster keeps them: a bare pod still running keeps its
    /// node and IP, a Service its cluster IP; new objects take free ones.
    pub fn load(&self, live: Option<&Live<'_>>) -> Result<Loaded, ManifestErrors> {
        let mut loader = Loader::new();
        let mut files: Vec<(&str, u64, Vec<String>)> = Vec::new();
        for o in &self.objects {
            let mut value = o.value.clone();
            if let Some(live) = live {
                pin(&o.key, &mut value, live);
            }
            let text = yaml_serde::to_string(&value).unwrap_or_default();
            match files.iter_mut().find(|(f, b, _)| *f == o.file && *b == o.batch) {
                Some((_, _, docs)) => docs.push(text),
                None => files.push((&o.file, o.batch, vec![text])),
            }
        }
        for (file, _, docs) in files {
            loader.add(file, docs.join("---\n"));
        }
        loader.finish()
    }
}

/// Writes the live address of a running pod or of a Service into its document.
fn pin(key: &Key, value: &mut Value, live: &Live<'_>) {
    let cluster = live.cluster;
    let has = |v: &Value, path: &[&str]| {
        let mut at = v;
        for p in path {
            match at.get(*p) {
                Some(next) => at = next,
                None => return false,
            }
        }
        !at.is_null()
    };
    match key.kind.as_str() {
        "Pod" => {
            let Some(pod) = cluster.pod_by_name(&key.namespace, &key.name) else { return };
            if pod.host_network
                || !live.running.contains(&(key.namespace.clone(), key.name.clone()))
            {
                return;
            }
            if !has(value, &["spec", "nodeName"]) {
                let node = cluster.node(pod.node).name.clone();
                set(value, &["spec", "nodeName"], Value::from(node));
            }
            if !has(value, &["status", "podIP"]) && !has(value, &["status", "podIPs"]) {
                set(value, &["status", "podIP"], Value::from(pod.ip.to_string()));
            }
        }
        "Service" => {
            let Some(svc) = cluster.service_by_name(&key.namespace, &key.name) else { return };
            if let (Some(ip), false) = (svc.cluster_ip, has(value, &["spec", "clusterIP"])) {
                set(value, &["spec", "clusterIP"], Value::from(ip.to_string()));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ops}\n";

    #[test]
    fn documents_are_keyed_and_namespaced() {
        let docs = documents("f.yaml", TWO, "default").unwrap();
        let keys: Vec<_> = docs.iter().map(|d| d.key.kubectl_ref()).collect();
        assert_eq!(keys, ["pod/a", "namespace/ops"]);
        assert_eq!(docs[0].key.namespace, "default");
        assert_eq!(docs[1].key.namespace, "");
        assert_eq!(docs[0].value["metadata"]["namespace"].as_str(), Some("default"));
    }

    #[test]
    fn apply_reports_created_configured_unchanged_and_delete_removes() {
        let mut store = Store::default();
        let docs = documents("f.yaml", TWO, "default").unwrap();
        assert_eq!(store.apply(docs[0].clone()), Applied::Created);
        assert_eq!(store.apply(docs[0].clone()), Applied::Unchanged);
        let changed = TWO.replace("name: c", "name: d");
        let docs2 = documents("g.yaml", &changed, "default").unwrap();
        assert_eq!(store.apply(docs2[0].clone()), Applied::Configured);
        assert!(store.delete(&docs[0].key));
        assert!(!store.contains(&docs[0].key));
        assert!(!store.delete(&docs[0].key));
    }

    #[test]
    fn bad_documents_are_located() {
        let e = documents("f.yaml", "kind: Pod\nmetadata: {}\n", "default").unwrap_err();
        assert_eq!(e, "f.yaml: document 1 (Pod): the object has no `metadata.name`");
        let e = documents("f.yaml", "a: [\n", "default").unwrap_err();
        assert!(e.starts_with("f.yaml: document 1: "), "{e}");
    }

    #[test]
    fn running_pods_keep_their_address_on_reload() {
        let text =
            "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: c}]}\n";
        let mut store = Store::from_sources(&[("f".into(), text.into())]).unwrap();
        let first = store.load(None).unwrap().cluster;
        let b_ip = first.pod_by_name("default", "b").unwrap().ip;
        // A pod sorting before `b` would take b's address in a fresh load.
        let a = text.replace("name: b}", "name: a}");
        for d in documents("g", &a, "default").unwrap() {
            store.apply(d);
        }
        let fresh = store.load(None).unwrap().cluster;
        assert_ne!(fresh.pod_by_name("default", "b").unwrap().ip, b_ip);
        let running: BTreeSet<(String, String)> = [("default".to_string(), "b".to_string())].into();
        let live = Live { cluster: &first, running: &running };
        let kept = store.load(Some(&live)).unwrap().cluster;
        assert_eq!(kept.pod_by_name("default", "b").unwrap().ip, b_ip);
        assert_ne!(kept.pod_by_name("default", "a").unwrap().ip, b_ip);
    }
}
