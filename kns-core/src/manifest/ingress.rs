//! `networking.k8s.io/v1` Ingress → [`model::Ingress`](crate::model::Ingress).

use k8s_openapi::api::networking::v1::{Ingress as K8sIngress, IngressBackend as K8sBackend};

use super::validate::join;
use super::{Diag, Location};
use crate::model::{
    Cluster, Ingress, IngressBackend, IngressId, IngressPath, IngressRule, NamespaceId, PathType,
    PortRef,
};

/// Converts one Ingress; `None` when it has errors (all reported).
pub(super) fn convert(
    id: IngressId,
    namespace: NamespaceId,
    name: &str,
    ing: &K8sIngress,
    loc: &Location,
    diag: &mut Diag,
) -> Option<Ingress> {
    let before = diag.errors.len();
    let spec = ing.spec.clone().unwrap_or_default();
    let default_backend =
        spec.default_backend.as_ref().and_then(|b| backend(b, "spec.defaultBackend", loc, diag));
    let mut rules = Vec::new();
    for (i, r) in spec.rules.iter().flatten().enumerate() {
        let at = format!("spec.rules[{i}]");
        let mut paths = Vec::new();
        for (j, p) in r.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
            let pat = format!("{at}.http.paths[{j}]");
            let path_type = match p.path_type.as_str() {
                "Exact" => PathType::Exact,
                "Prefix" => PathType::Prefix,
                "ImplementationSpecific" => PathType::ImplementationSpecific,
                other => {
                    diag.error(
                        loc.with_field(join(&pat, "pathType")),
                        format!("invalid pathType `{other}` (expected Exact, Prefix or ImplementationSpecific)"),
                    );
                    continue;
                }
            };
            let path = p.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') {
                diag.error(
                    loc.with_field(join(&pat, "path")),
                    format!("path `{path}` must start with /"),
                );
            }
            if let Some(b) = backend(&p.backend, &join(&pat, "backend"), loc, diag) {
                paths.push(IngressPath { path, path_type, backend: b });
            }
        }
        rules.push(IngressRule { host: r.host.clone().filter(|h| !h.is_empty()), paths });
    }
    if default_backend.is_none() && rules.is_empty() && diag.errors.len() == before {
        diag.error(loc.with_field("spec"), "an Ingress needs rules or a defaultBackend");
    }
    let tls_hosts =
        spec.tls.iter().flatten().flat_map(|t| t.hosts.iter().flatten().cloned()).collect();
    (diag.errors.len() == before).then(|| Ingress {
        id,
        name: name.to_string(),
        namespace,
        class: spec.ingress_class_name.clone(),
        default_backend,
        rules,
        tls_hosts,
    })
}

/// Warns (once per Service) about backends naming a Service, or a Service port, that the
/// input does not have: requests routed there would fail.
pub(super) fn warn_missing_backends(
    cluster: &Cluster,
    ing: &Ingress,
    loc: &Location,
    diag: &mut Diag,
) {
    let ns = &cluster.namespace(ing.namespace).name;
    let mut backends: Vec<(String, &IngressBackend)> = Vec::new();
    if let Some(b) = &ing.default_backend {
        backends.push(("spec.defaultBackend.service".into(), b));
    }
    for (i, r) in ing.rules.iter().enumerate() {
        for (j, p) in r.paths.iter().enumerate() {
            backends.push((format!("spec.rules[{i}].http.paths[{j}].backend.service"), &p.backend));
        }
    }
    for (field, b) in backends {
        let key = format!("ingress backend {ns}/{}", b.service);
        let Some(svc) = cluster.service_by_name(ns, &b.service) else {
            let msg =
                format!("no Service `{}` in namespace {ns}; requests routed to it fail", b.service);
            diag.warn_once(key, loc.with_field(field), msg);
            continue;
        };
        let has_port = svc.ports.iter().any(|p| match &b.port {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        });
        if !has_port {
            let msg = format!(
                "Service {ns}/{} has no port {}; requests routed to it fail",
                b.service, b.port
            );
            diag.warn_once(
                format!("{key}:{}", b.port),
                loc.with_field(format!("{field}.port")),
                msg,
            );
        }
    }
}

fn backend(b: &K8sBackend, path: &str, loc: &Location, diag: &mut Diag) -> Option<IngressBackend> {
    if b.resource.is_some() {
        diag.error(
            loc.with_field(join(path, "resource")),
            "resource backends are not supported (use service)",
        );
        return None;
    }
    let Some(s) = &b.service else {
        diag.error(loc.with_field(join(path, "service")), "missing service");
        return None;
    };
    let at = join(path, "service.port");
    let port = match s.port.as_ref().map(|p| (p.number, p.name.as_deref())) {
        Some((Some(n), None)) => match u16::try_from(n) {
            Ok(p) if p != 0 => PortRef::Number(p),
            _ => {
                diag.error(
                    loc.with_field(join(&at, "number")),
                    format!("port {n} is out of range (1-65535)"),
                );
                return None;
            }
        },
        Some((None, Some(name))) if !name.is_empty() => PortRef::Name(name.to_string()),
        _ => {
            diag.error(loc.with_field(at), "give exactly one of number or name");
            return None;
        }
    };
    Some(IngressBackend { service: s.name.clone(), port })
}
