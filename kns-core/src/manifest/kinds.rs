//! Documents → typed objects: dispatch on `apiVersion`/`kind`, decode into the k8s-openapi
//! type with a field path on errors, and report fields the type does not know.
//!
//! serde ignores unknown fields, so each decoded object is serialized again and compared with
//! its input: a key present in the input but absent from the round trip is a field that the
//! Kubernetes schema does not have (a typo, or a field of another version), and is an error.
//! Fields that the schema has but kns does not act on are fine; a few that change networking
//! behaviour in a real cluster earn one warning each ([`IGNORED`]).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use serde::Serialize;
use serde::de::DeserializeOwned;
use yaml_serde::Value;

use super::cluster_doc::ClusterDoc;
use super::parse::{Doc, shape};
use super::{Diag, Location};

/// The kinds kns reads, with their `apiVersion`, as `(kind, apiVersion)`.
pub const SUPPORTED_KINDS: [(&str, &str); 13] = [
    ("Namespace", "v1"),
    ("Pod", "v1"),
    ("Deployment", "apps/v1"),
    ("ReplicaSet", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("Service", "v1"),
    ("Endpoints", "v1"),
    ("EndpointSlice", "discovery.k8s.io/v1"),
    ("NetworkPolicy", "networking.k8s.io/v1"),
    ("Ingress", "networking.k8s.io/v1"),
    ("ConfigMap", "v1"),
    ("Cluster", "kns.dev/v1alpha1"),
];

/// A decoded object with its place in the input.
#[derive(Debug)]
pub(super) struct Object {
    /// File, document, item and `Kind ns/name`.
    pub loc: Location,
    /// The namespace (`default` when omitted), or `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// The typed object.
    pub body: Body,
}

/// The typed object of each supported kind.
#[derive(Debug)]
pub(super) enum Body {
    Namespace(Box<Namespace>),
    Pod(Box<Pod>),
    Deployment(Box<Deployment>),
    ReplicaSet(Box<ReplicaSet>),
    StatefulSet(Box<StatefulSet>),
    DaemonSet(Box<DaemonSet>),
    Service(Box<Service>),
    Endpoints(Box<Endpoints>),
    EndpointSlice(Box<EndpointSlice>),
    NetworkPolicy(Box<NetworkPolicy>),
    Ingress(Box<Ingress>),
    ConfigMap(Box<ConfigMap>),
    Cluster(Box<ClusterDoc>),
}

impl Body {
    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Namespace(_) => "Namespace",
            Body::Pod(_) => "Pod",
            Body::Deployment(_) => "Deployment",
            Body::ReplicaSet(_) => "ReplicaSet",
            Body::StatefulSet(_) => "StatefulSet",
            Body::DaemonSet(_) => "DaemonSet",
            Body::Service(_) => "Service",
            Body::Endpoints(_) => "Endpoints",
            Body::EndpointSlice(_) => "EndpointSlice",
            Body::NetworkPolicy(_) => "NetworkPolicy",
            Body::Ingress(_) => "Ingress",
            Body::ConfigMap(_) => "ConfigMap",
            Body::Cluster(_) => "Cluster",
        }
    }
}

/// Which part of an object an [`IGNORED`] field belongs to.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// A pod spec: `spec.` of a Pod, `spec.template.spec.` of a workload.
    PodSpec,
    /// `spec.` of a Service.
    Service,
    /// `spec.` of an Ingress.
    Ingress,
}

/// Fields the Kubernetes schema has that kns reads but does not act on, yet which change
/// networking in a real cluster: `(scope, path pattern, note)`; `[]` stands for any index.
const IGNORED: [(Scope, &str, &str); 8] = [
    (
        Scope::PodSpec,
        "containers[].readinessProbe",
        "readiness probes are not run; pods are ready unless status.conditions says otherwise",
    ),
    (Scope::PodSpec, "containers[].startupProbe", "startup probes are not run"),
    (Scope::PodSpec, "dnsConfig", "per-pod DNS configuration is not applied"),
    (
        Scope::PodSpec,
        "dnsPolicy",
        "dnsPolicy is not applied; every pod resolves through the cluster DNS",
    ),
    (Scope::PodSpec, "hostAliases", "hostAliases are not added to name resolution"),
    (Scope::Service, "loadBalancerSourceRanges", "loadBalancerSourceRanges are not enforced"),
    (
        Scope::Service,
        "trafficDistribution",
        "trafficDistribution is not modelled; endpoints are chosen cluster-wide",
    ),
    (Scope::Ingress, "tls", "kns does not terminate TLS; Ingress traffic is plain HTTP"),
];

/// Decodes one document, reporting its problems; `None` when it cannot be used.
pub(super) fn decode(doc: Doc, diag: &mut Diag) -> Option<Object> {
    let Doc { mut loc, value } = doc;
    let api_version = required_string(&value, "apiVersion", &loc, diag);
    let kind = required_string(&value, "kind", &loc, diag);
    let (api_version, kind) = (api_version?, kind?);
    let Some(&(kind, expected_version)) = SUPPORTED_KINDS.iter().find(|(k, _)| *k == kind) else {
        let names: Vec<&str> = SUPPORTED_KINDS.iter().map(|(k, _)| *k).collect();
        diag.error(
            loc.with_field("kind"),
            format!("unsupported kind `{kind}` (kns reads {})", names.join(", ")),
        );
        return None;
    };
    if api_version != expected_version {
        loc.object = Some(kind.to_string());
        diag.error(
            loc.with_field("apiVersion"),
            format!("`{api_version}` is not an apiVersion of {kind} (use `{expected_version}`)"),
        );
        return None;
    }
    let cluster_scoped = matches!(kind, "Namespace" | "Cluster");
    let meta = value.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).map(str::to_string);
    let namespace = if cluster_scoped {
        None
    } else {
        let ns = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str);
        Some(ns.filter(|n| !n.is_empty()).unwrap_or("default").to_string())
    };
    loc.object = Some(object_label(kind, namespace.as_deref(), name.as_deref()));
    let name = match name {
        Some(n) if !n.is_empty() => n,
        _ if kind == "Cluster" => "kns".to_string(),
        _ => {
            diag.error(loc.with_field("metadata.name"), "missing metadata.name");
            return None;
        }
    };
    let body = match kind {
        "Namespace" => Body::Namespace(typed(&value, &loc, diag)?),
        "Pod" => Body::Pod(typed(&value, &loc, diag)?),
        "Deployment" => Body::Deployment(typed(&value, &loc, diag)?),
        "ReplicaSet" => Body::ReplicaSet(typed(&value, &loc, diag)?),
        "StatefulSet" => Body::StatefulSet(typed(&value, &loc, diag)?),
        "DaemonSet" => Body::DaemonSet(typed(&value, &loc, diag)?),
        "Service" => Body::Service(typed(&value, &loc, diag)?),
        "Endpoints" => Body::Endpoints(typed(&value, &loc, diag)?),
        "EndpointSlice" => Body::EndpointSlice(typed(&value, &loc, diag)?),
        "NetworkPolicy" => Body::NetworkPolicy(typed(&value, &loc, diag)?),
        "Ingress" => Body::Ingress(typed(&value, &loc, diag)?),
        "ConfigMap" => Body::ConfigMap(typed(&value, &loc, diag)?),
        _ => Body::Cluster(typed(&value, &loc, diag)?),
    };
    warn_ignored(kind, &value, &loc, diag);
    Some(Object { loc, namespace, name, body })
}

/// `Kind ns/name`, `Kind name` (cluster-scoped) or `Kind` when the name is missing.
pub(super) fn object_label(kind: &str, namespace: Option<&str>, name: Option<&str>) -> String {
    match (namespace, name) {
        (_, None) => kind.to_string(),
        (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
        (None, Some(n)) => format!("{kind} {n}"),
    }
}

/// A top-level string field that must be present.
fn required_string<'a>(
    value: &'a Value,
    field: &str,
    loc: &Location,
    diag: &mut Diag,
) -> Option<&'a str> {
    match value.get(field) {
        None | Some(Value::Null) => {
            diag.error(loc.with_field(field), format!("missing {field}"));
            None
        }
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        Some(other) => {
            diag.error(
                loc.with_field(field),
                format!("expected a non-empty string, found {}", shape(other)),
            );
            None
        }
    }
}

/// Decodes `value` as `T`, reporting a located error or the fields `T` does not know.
fn typed<T: DeserializeOwned + Serialize>(
    value: &Value,
    loc: &Location,
    diag: &mut Diag,
) -> Option<Box<T>> {
    let object: T = match yaml_serde::from_value(value.clone()) {
        Ok(object) => object,
        Err(error) => {
            let (field, message) = located_error::<T>(value, &error);
            diag.error(Location { field, ..loc.clone() }, message);
            return None;
        }
    };
    let mut unknown = Vec::new();
    match yaml_serde::to_value(&object) {
        Ok(round_trip) => unknown_fields(value, &round_trip, "", &mut unknown),
        Err(e) => diag.error(loc.clone(), format!("cannot re-encode the object: {e}")),
    }
    for field in &unknown {
        diag.error(
            loc.with_field(field.as_str()),
            "unknown field (not in the Kubernetes schema of this kind)",
        );
    }
    // The object is still converted, so that its other problems are reported too.
    Some(Box::new(object))
}

/// The field path and message of a decoding error.
///
/// Errors from a `Value` carry no path, so the value is printed and parsed again from text,
/// which tracks the path; the line of that text means nothing to the user and is dropped.
fn located_error<T: DeserializeOwned>(
    value: &Value,
    error: &yaml_serde::Error,
) -> (Option<String>, String) {
    let from_text =
        yaml_serde::to_string(value).ok().and_then(|text| yaml_serde::from_str::<T>(&text).err());
    let Some(e) = from_text else { return (None, error.to_string()) };
    let mut text = e.to_string();
    if let Some(l) = e.location() {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(stripped) = text.strip_suffix(&suffix) {
            text = stripped.to_string();
        }
    }
    match text.split_once(": ") {
        Some((path, message)) if !path.contains(char::is_whitespace) => {
            (Some(path.to_string()), message.to_string())
        }
        _ => (None, text),
    }
}

/// Appends to `out` the paths of keys of `input` that `round_trip` lacks (null values and
/// non-string keys aside).
fn unknown_fields(input: &Value, round_trip: &Value, path: &str, out: &mut Vec<String>) {
    match (input, round_trip) {
        (Value::Mapping(i), Value::Mapping(o)) => {
            for (k, v) in i {
                let (Some(key), false) = (k.as_str(), v.is_null()) else { continue };
                let child = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
                match o.get(key) {
                    None => out.push(child),
                    Some(ov) => unknown_fields(v, ov, &child, out),
                }
            }
        }
        (Value::Sequence(i), Value::Sequence(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o).enumerate() {
                unknown_fields(iv, ov, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// Warns once per kind and field about [`IGNORED`] fields present in `value`.
fn warn_ignored(kind: &str, value: &Value, loc: &Location, diag: &mut Diag) {
    let pod_prefix = match kind {
        "Pod" => Some("spec."),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => Some("spec.template.spec."),
        _ => None,
    };
    for (scope, field, note) in IGNORED {
        let pattern = match (scope, kind, pod_prefix) {
            (Scope::PodSpec, _, Some(prefix)) => format!("{prefix}{field}"),
            (Scope::Service, "Service", _) | (Scope::Ingress, "Ingress", _) => {
                format!("spec.{field}")
            }
            _ => continue,
        };
        let Some((at, found)) = find(value, &pattern) else { continue };
        let modelled = matches!(found.as_str(), Some("ClusterFirst" | "ClusterFirstWithHostNet"));
        if field == "dnsPolicy" && modelled {
            continue;
        }
        diag.warn_once(format!("{kind} {pattern}"), loc.with_field(at), note);
    }
}

/// The concrete path and value of the first non-null field matching `pattern` (`a.b[].c`).
fn find<'a>(value: &'a Value, pattern: &str) -> Option<(String, &'a Value)> {
    fn walk<'a>(v: &'a Value, parts: &[&str], path: String) -> Option<(String, &'a Value)> {
        let Some((first, rest)) = parts.split_first() else {
            return (!v.is_null()).then_some((path, v));
        };
        let join = |p: &str| if path.is_empty() { p.to_string() } else { format!("{path}.{p}") };
        if let Some(key) = first.strip_suffix("[]") {
            let items = v.get(key)?.as_sequence()?;
            items
                .iter()
                .enumerate()
                .find_map(|(i, item)| walk(item, rest, format!("{}[{i}]", join(key))))
        } else {
            walk(v.get(*first)?, rest, join(first))
        }
    }
    let parts: Vec<&str> = pattern.split('.').collect();
    walk(value, &parts, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_text(text: &str) -> (Option<Object>, Diag) {
        let mut diag = Diag::default();
        let value: Value = yaml_serde::from_str(text).unwrap();
        let loc = Location { file: "f.yaml".into(), document: Some(1), ..Location::default() };
        (decode(Doc { loc, value }, &mut diag), diag)
    }

    fn rendered(diag: &Diag) -> Vec<String> {
        diag.errors.iter().map(|e| e.render()).collect()
    }

    #[test]
    fn decodes_a_supported_kind_with_default_namespace() {
        let (obj, diag) =
            decode_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n");
        assert!(diag.errors.is_empty(), "{:?}", rendered(&diag));
        let obj = obj.unwrap();
        assert_eq!(obj.namespace.as_deref(), Some("default"));
        assert_eq!(obj.loc.object.as_deref(), Some("ConfigMap default/c"));
        assert_eq!(obj.body.kind(), "ConfigMap");
    }

    #[test]
    fn missing_api_version_and_kind_are_both_reported() {
        let (obj, diag) = decode_text("metadata: {name: c}\n");
        assert!(obj.is_none());
        assert_eq!(
            rendered(&diag),
            vec![
                "f.yaml: document 1: apiVersion: missing apiVersion",
                "f.yaml: document 1: kind: missing kind"
            ]
        );
    }

    #[test]
    fn unknown_kind_names_the_supported_ones() {
        let (_, diag) = decode_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n");
        let r = rendered(&diag);
        assert_eq!(r.len(), 1);
        assert!(r[0].starts_with("f.yaml: document 1: kind: unsupported kind `Secret` (kns reads Namespace, Pod, Deployment,"), "{r:?}");
    }

    #[test]
    fn wrong_api_version_is_reported() {
        let (_, diag) =
            decode_text("apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\n");
        assert_eq!(
            rendered(&diag),
            vec![
                "f.yaml: document 1 (Deployment): apiVersion: `extensions/v1beta1` is not an apiVersion of Deployment (use `apps/v1`)"
            ]
        );
    }

    #[test]
    fn type_errors_carry_the_field_path() {
        let text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  ingress:\n  - ports:\n    - port: [1]\n";
        let (obj, diag) = decode_text(text);
        assert!(obj.is_none());
        assert_eq!(
            rendered(&diag),
            vec![
                "f.yaml: document 1 (NetworkPolicy x/p): spec.ingress[0].ports[0].port: invalid type: sequence, expected IntOrString"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_errors_and_nulls_are_not() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, creationTimestamp: null, labelz: {a: b}}\nspec:\n  containers:\n  - name: c\n    image: i\n    portz: []\n    resources: {limits: {cpu: 1}}\n";
        let (obj, diag) = decode_text(text);
        assert!(obj.is_some(), "still converted, so that its other problems show");
        assert_eq!(
            rendered(&diag),
            vec![
                "f.yaml: document 1 (Pod default/a): metadata.labelz: unknown field (not in the Kubernetes schema of this kind)",
                "f.yaml: document 1 (Pod default/a): spec.containers[0].portz: unknown field (not in the Kubernetes schema of this kind)",
            ]
        );
    }

    #[test]
    fn ignored_fields_warn_once_per_kind_and_field() {
        let probe = "readinessProbe: {tcpSocket: {port: 80}}";
        let text = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec:\n  selector: {{matchLabels: {{a: b}}}}\n  template:\n    metadata: {{labels: {{a: b}}}}\n    spec:\n      dnsPolicy: ClusterFirst\n      containers:\n      - {{name: c, {probe}}}\n      - {{name: e, {probe}}}\n"
        );
        let mut diag = Diag::default();
        for document in 1..=2 {
            let value: Value = yaml_serde::from_str(&text).unwrap();
            let loc =
                Location { file: "f.yaml".into(), document: Some(document), ..Location::default() };
            assert!(decode(Doc { loc, value }, &mut diag).is_some());
        }
        let warnings: Vec<String> = diag.warnings.iter().map(|w| w.render()).collect();
        assert_eq!(
            warnings,
            vec![
                "f.yaml: document 1 (Deployment default/d): spec.template.spec.containers[0].readinessProbe: readiness probes are not run; pods are ready unless status.conditions says otherwise"
            ]
        );
    }
}
