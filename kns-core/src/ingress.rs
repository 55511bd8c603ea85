//! Ingress routing, sans-I/O: which Service port an HTTP request goes to, decided from the
//! cluster's Ingress objects the way an NGINX-based controller (ingress-nginx) assembles them.
//!
//! [`IngressRouter::new`] merges the Ingresses a controller serves (its class, and class-less
//! ones when its class is the default) into *servers*, one per host, plus the default server
//! `_` that holds the rules without a host; [`IngressRouter::route`] then picks, for a request's
//! `Host` and path, one server and one path in it:
//!
//! - **Host.** An exact host (`foo.example.com`, compared case-insensitively, port and trailing
//!   dot of the `Host` header ignored) first; then a wildcard host, whose `*` stands for exactly
//!   one DNS label (`*.example.com` matches `a.example.com`, not `example.com` nor
//!   `a.b.example.com`), the longest wildcard first; then the default server. As in NGINX, a
//!   request whose host has a server never falls through to another server: its unmatched
//!   paths go to that server's fallback.
//! - **Path.** Among the paths that match, the longest wins; at equal length `Exact` beats
//!   `Prefix`, which beats `ImplementationSpecific`; then the older Ingress (load order) and
//!   the earlier path. `Exact` compares the whole path (`/foo` does not match `/foo/`);
//!   `Prefix` compares `/`-separated elements (`/foo` matches `/foo`, `/foo/` and `/foo/bar`
//!   but not `/foobar`; a trailing slash on either side is ignored). `ImplementationSpecific`
//!   behaves as ingress-nginx's plain `location /path` (no regex annotation): a character
//!   prefix, so `/foo` also matches `/foobar`. The query string is not part of the path.
//! - **Fallback.** A host's unmatched paths go to the `defaultBackend` of the first Ingress
//!   with rules for that host that has one. Requests matching no rule at all go to the
//!   `defaultBackend` of the first Ingress without rules, or else of the first Ingress that
//!   has one (the API's "requests that don't match any rule"; ingress-nginx only honours
//!   rule-less Ingresses here). Otherwise the controller's own default backend answers 404:
//!   [`Route::NotFound`].
//!
//! TLS is not emulated: an Ingress with a `tls` section gets an [`IngressWarning::TlsUnsupported`]
//! (no termination and no SSL passthrough; its hosts are served over plain HTTP only, and
//! HTTPS connections to the controller are refused), never silent acceptance.
//!
//! [`controller_manifest`] writes the built-in controller (namespace `ingress-nginx`, one pod,
//! a NodePort Service) for clusters that have Ingresses and no controller.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::model::{
    Cluster, Ingress, IngressBackend, IngressId, NamespaceId, PathType, Pod, PortRef, ServiceType,
};

/// The namespace of the built-in controller (and of ingress-nginx's official manifests).
pub const CONTROLLER_NAMESPACE: &str = "ingress-nginx";
/// The name of the built-in controller's pod and Service.
pub const CONTROLLER_NAME: &str = "ingress-nginx-controller";
/// The labels that mark an ingress controller pod, as ingress-nginx's manifests set them.
pub const CONTROLLER_LABELS: [(&str, &str); 2] =
    [("app.kubernetes.io/name", "ingress-nginx"), ("app.kubernetes.io/component", "controller")];
/// The class the controller serves (`ingressClassName: nginx`).
pub const DEFAULT_CLASS: &str = "nginx";
/// The file name the built-in controller manifest is loaded under.
pub const CONTROLLER_FILE: &str = "<builtin>/ingress-nginx.yaml";
/// The node ports the built-in controller's Service asks for (http, https) when free.
pub const CONTROLLER_NODE_PORTS: (u16, u16) = (30080, 30443);

/// Which Ingresses a controller serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassConfig {
    /// Its IngressClass name.
    pub class: String,
    /// Whether that class is the cluster's default (then Ingresses without
    /// `ingressClassName` are served too, as with the `ingressclass.kubernetes.io/is-default-class`
    /// annotation).
    pub is_default: bool,
}

impl Default for ClassConfig {
    /// `nginx`, the default class.
    fn default() -> Self {
        ClassConfig { class: DEFAULT_CLASS.to_string(), is_default: true }
    }
}

/// An Ingress backend with the Ingress it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Ingress.
    pub ingress: IngressId,
    /// Its namespace (the Service's namespace).
    pub namespace: NamespaceId,
    /// The Service and port.
    pub backend: IngressBackend,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A rule's path matched.
    Path {
        /// The server (host, `*.suffix`, or `_` for rules without a host).
        server: String,
        /// The rule's path.
        path: String,
        /// How it matched.
        path_type: PathType,
        /// The backend.
        target: Target,
    },
    /// No path matched; an Ingress's `defaultBackend` takes the request.
    DefaultBackend {
        /// The server the host selected (`_` when no host matched).
        server: String,
        /// The backend.
        target: Target,
    },
    /// Nothing matched and no `defaultBackend` applies: the controller answers 404.
    NotFound {
        /// The server the host selected.
        server: String,
    },
}

impl Route {
    /// The backend, unless the controller answers itself.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Route::Path { target, .. } | Route::DefaultBackend { target, .. } => Some(target),
            Route::NotFound { .. } => None,
        }
    }

    /// The server the request's host selected.
    pub fn server(&self) -> &str {
        match self {
            Route::Path { server, .. }
            | Route::DefaultBackend { server, .. }
            | Route::NotFound { server } => server,
        }
    }
}

/// Something about the Ingresses a user should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngressWarning {
    /// The Ingress has a `tls` section, which kns does not emulate.
    TlsUnsupported {
        /// `namespace/name` of the Ingress.
        ingress: String,
        /// The hosts listed under `tls`.
        hosts: Vec<String>,
    },
    /// The Ingress names a class this controller does not serve, or none while its class is
    /// not the default: the controller ignores it.
    OtherClass {
        /// `namespace/name` of the Ingress.
        ingress: String,
        /// Its `ingressClassName`.
        class: Option<String>,
        /// The controller's class.
        served: String,
    },
    /// Two Ingresses declare the same host, path and path type: the older one keeps it.
    Conflict {
        /// The server.
        server: String,
        /// The path.
        path: String,
        /// The Ingress that keeps the path.
        kept: String,
        /// The Ingress whose path is ignored.
        ignored: String,
    },
}

impl fmt::Display for IngressWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IngressWarning::TlsUnsupported { ingress, hosts } => write!(
                f,
                "ingress {ingress}: tls for {} is not supported (kns's ingress controller does \
                 no TLS termination and no SSL passthrough); these hosts are served over plain \
                 HTTP only, and HTTPS connections to the controller are refused",
                if hosts.is_empty() { "every host".to_string() } else { hosts.join(", ") }
            ),
            IngressWarning::OtherClass { ingress, class, served } => match class {
                Some(c) => write!(
                    f,
                    "ingress {ingress}: ingressClassName `{c}` is not served by the ingress \
                     controller (class `{served}`); it is ignored"
                ),
                None => write!(
                    f,
                    "ingress {ingress}: no ingressClassName and `{served}` is not the default \
                     class; it is ignored"
                ),
            },
            IngressWarning::Conflict { server, path, kept, ignored } => write!(
                f,
                "ingress {ignored}: host {server} path {path} is already routed by ingress \
                 {kept}, which is older; the path is ignored"
            ),
        }
    }
}

/// One path of a server.
#[derive(Debug, Clone)]
struct PathEntry {
    path: String,
    path_type: PathType,
    target: Target,
}

impl PathEntry {
    /// The length compared by "longest match wins" (trailing slashes of a Prefix ignored).
    fn match_len(&self) -> usize {
        match self.path_type {
            PathType::Prefix => self.path.trim_end_matches('/').len(),
            PathType::Exact | PathType::ImplementationSpecific => self.path.len(),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self.path_type {
            PathType::Exact => self.path == path,
            PathType::Prefix => prefix_matches(&self.path, path),
            PathType::ImplementationSpecific => path.starts_with(&self.path),
        }
    }
}

fn type_rank(t: PathType) -> u8 {
    match t {
        PathType::Exact => 0,
        PathType::Prefix => 1,
        PathType::ImplementationSpecific => 2,
    }
}

/// Whether `prefix` is an element-wise prefix of `path` (Kubernetes' `Prefix`).
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    let mut elements = path.split('/').filter(|e| !e.is_empty());
    prefix.split('/').filter(|e| !e.is_empty()).all(|e| elements.next() == Some(e))
}

/// A virtual host: its paths in precedence order and its fallback.
#[derive(Debug, Clone, Default)]
struct Server {
    paths: Vec<PathEntry>,
    fallback: Option<Target>,
}

/// The routing table of one ingress controller.
#[derive(Debug, Clone)]
pub struct IngressRouter {
    exact: BTreeMap<String, Server>,
    /// Wildcard servers by their suffix (`.example.com` for `*.example.com`).
    wildcard: BTreeMap<String, Server>,
    default_server: Server,
    served: Vec<IngressId>,
    warnings: Vec<IngressWarning>,
}

/// The name of the default server.
pub const DEFAULT_SERVER: &str = "_";

impl IngressRouter {
    /// The table for the Ingresses of `cluster` that `class` selects, in load order (which
    /// stands for creation order: older Ingresses win conflicts).
    pub fn new(cluster: &Cluster, class: &ClassConfig) -> IngressRouter {
        let mut router = IngressRouter {
            exact: BTreeMap::new(),
            wildcard: BTreeMap::new(),
            default_server: Server::default(),
            served: Vec::new(),
            warnings: Vec::new(),
        };
        let name = |i: &Ingress| format!("{}/{}", cluster.namespace(i.namespace).name, i.name);
        let mut owners: BTreeMap<(String, String, u8), String> = BTreeMap::new();
        for ing in &cluster.ingresses {
            let selected = match &ing.class {
                Some(c) => *c == class.class,
                None => class.is_default,
            };
            if !selected {
                router.warnings.push(IngressWarning::OtherClass {
                    ingress: name(ing),
                    class: ing.class.clone(),
                    served: class.class.clone(),
                });
                continue;
            }
            router.served.push(ing.id);
            if !ing.tls_hosts.is_empty() {
                router.warnings.push(IngressWarning::TlsUnsupported {
                    ingress: name(ing),
                    hosts: ing.tls_hosts.clone(),
                });
            }
            let target = |backend: &IngressBackend| Target {
                ingress: ing.id,
                namespace: ing.namespace,
                backend: backend.clone(),
            };
            for rule in &ing.rules {
                let host = rule.host.as_deref().map(str::to_ascii_lowercase);
                let key = host.clone().unwrap_or_else(|| DEFAULT_SERVER.to_string());
                let server = router.server_mut(host.as_deref());
                if host.is_some()
                    && server.fallback.is_none()
                    && let Some(b) = &ing.default_backend
                {
                    server.fallback = Some(target(b));
                }
                for p in &rule.paths {
                    let owner = (key.clone(), p.path.clone(), type_rank(p.path_type));
                    if let Some(kept) = owners.get(&owner) {
                        if *kept != name(ing) {
                            router.warnings.push(IngressWarning::Conflict {
                                server: key.clone(),
                                path: p.path.clone(),
                                kept: kept.clone(),
                                ignored: name(ing),
                            });
                        }
                        continue;
                    }
                    owners.insert(owner, name(ing));
                    router.server_mut(host.as_deref()).paths.push(PathEntry {
                        path: p.path.clone(),
                        path_type: p.path_type,
                        target: target(&p.backend),
                    });
                }
            }
        }
        // The catch-all: a rule-less Ingress's defaultBackend, else any Ingress's.
        let served = router.served.clone();
        let with_default = |rule_less: bool| {
            cluster
                .ingresses
                .iter()
                .filter(|i| served.contains(&i.id))
                .filter(|i| !rule_less || i.rules.is_empty())
                .find_map(|i| {
                    i.default_backend.as_ref().map(|b| Target {
                        ingress: i.id,
                        namespace: i.namespace,
                        backend: b.clone(),
                    })
                })
        };
        router.default_server.fallback = with_default(true).or_else(|| with_default(false));
        // Stable sort: equal keys keep load order, then path order.
        let order = |s: &mut Server| {
            s.paths.sort_by_key(|p| (std::cmp::Reverse(p.match_len()), type_rank(p.path_type)));
        };
        router.exact.values_mut().for_each(order);
        router.wildcard.values_mut().for_each(order);
        order(&mut router.default_server);
        router
    }

    fn server_mut(&mut self, host: Option<&str>) -> &mut Server {
        match host {
            None => &mut self.default_server,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => self.wildcard.entry(suffix.to_string()).or_default(),
                None => self.exact.entry(h.to_string()).or_default(),
            },
        }
    }

    /// The Ingresses this controller serves, in load order.
    pub fn served(&self) -> &[IngressId] {
        &self.served
    }

    /// What the user should know about the Ingresses (TLS, other classes, conflicts).
    pub fn warnings(&self) -> &[IngressWarning] {
        &self.warnings
    }

    /// The hosts with a server of their own (exact hosts, then `*.suffix` wildcards).
    pub fn hosts(&self) -> Vec<String> {
        let wild = self.wildcard.keys().map(|s| format!("*{s}"));
        self.exact.keys().cloned().chain(wild).collect()
    }

    /// Routes a request for `host` (the `Host` header, `None` when absent) and `target` (the
    /// request target; a query string or fragment is ignored).
    pub fn route(&self, host: Option<&str>, target: &str) -> Route {
        let path = target.split(['?', '#']).next().unwrap_or("");
        let path = if path.is_empty() { "/" } else { path };
        let host = host.map(normalize_host);
        let (name, server) = match host.as_deref().and_then(|h| self.server_for(h)) {
            Some(found) => found,
            None => (DEFAULT_SERVER.to_string(), &self.default_server),
        };
        if let Some(p) = server.paths.iter().find(|p| p.matches(path)) {
            return Route::Path {
                server: name,
                path: p.path.clone(),
                path_type: p.path_type,
                target: p.target.clone(),
            };
        }
        match &server.fallback {
            Some(t) => Route::DefaultBackend { server: name, target: t.clone() },
            None => Route::NotFound { server: name },
        }
    }

    fn server_for(&self, host: &str) -> Option<(String, &Server)> {
        if let Some(s) = self.exact.get(host) {
            return Some((host.to_string(), s));
        }
        // `*` is one label: the host minus its first label must equal the suffix's tail.
        let (first, rest) = host.split_once('.')?;
        if first.is_empty() {
            return None;
        }
        let suffix = format!(".{rest}");
        self.wildcard.get(&suffix).map(|s| (format!("*{suffix}"), s))
    }
}

/// The host of a `Host` header: lowercase, without port or trailing dot.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `pod` is an ingress controller pod (labelled as ingress-nginx's controller).
pub fn is_controller_pod(pod: &Pod) -> bool {
    CONTROLLER_LABELS.iter().all(|(k, v)| pod.labels.get(*k).is_some_and(|x| x == v))
}

/// The Service port an Ingress backend names: its number, or the port with that name.
pub fn service_port(cluster: &Cluster, target: &Target) -> Option<u16> {
    let ns = &cluster.namespace(target.namespace).name;
    let svc = cluster.service_by_name(ns, &target.backend.service)?;
    svc.ports
        .iter()
        .find(|p| match &target.backend.port {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        })
        .map(|p| p.port)
}

/// The manifest of the built-in controller for `cluster`, or `None` when the cluster has no
/// Ingress or already has a controller pod.
///
/// One pod `ingress-nginx/ingress-nginx-controller` (labelled like ingress-nginx's controller,
/// ports `http` 80 and `https` 443) and a NodePort Service of the same name (node ports 30080
/// and 30443 when free). So that adding it moves nothing of the user's cluster, the pod is
/// given the highest free address of the first node's pod range (its address places it there;
/// a `nodeName` would make the nodes pods name the cluster's nodes), and the Service takes the
/// highest free address of the service range.
pub fn controller_manifest(cluster: &Cluster) -> Option<String> {
    if cluster.ingresses.is_empty() || cluster.pods.iter().any(is_controller_pod) {
        return None;
    }
    let node = cluster.nodes.first()?;
    let taken: Vec<IpAddr> = cluster.pods.iter().flat_map(|p| p.ips.iter().copied()).collect();
    let pod_ip = highest_free(node.pod_cidr, &taken)?;
    let service_ips: Vec<IpAddr> = cluster.services.iter().filter_map(|s| s.cluster_ip).collect();
    let service_ip = highest_free(cluster.config.service_cidr, &service_ips)?;
    let used: Vec<u16> = cluster
        .services
        .iter()
        .filter(|s| matches!(s.service_type, ServiceType::NodePort | ServiceType::LoadBalancer))
        .flat_map(|s| s.ports.iter().filter_map(|p| p.node_port))
        .collect();
    let node_port = |p: u16| {
        if used.contains(&p) { String::new() } else { format!(", nodePort: {p}") }
    };
    let (http, https) = CONTROLLER_NODE_PORTS;
    let labels =
        CONTROLLER_LABELS.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ");
    Some(format!(
        "# kns's built-in ingress controller, added because the manifests have Ingress objects
# and no controller pod (labels {labels}).
apiVersion: v1
kind: Namespace
metadata:
  name: {CONTROLLER_NAMESPACE}
---
apiVersion: v1
kind: Pod
metadata:
  name: {CONTROLLER_NAME}
  namespace: {CONTROLLER_NAMESPACE}
  labels: {{{labels}}}
spec:
  containers:
  - name: controller
    image: registry.k8s.io/ingress-nginx/controller
    ports:
    - {{name: http, containerPort: 80}}
    - {{name: https, containerPort: 443}}
status:
  podIP: {pod_ip}
---
apiVersion: v1
kind: Service
metadata:
  name: {CONTROLLER_NAME}
  namespace: {CONTROLLER_NAMESPACE}
spec:
  type: NodePort
  clusterIP: {service_ip}
  selector: {{{labels}}}
  ports:
  - {{name: http, port: 80, targetPort: http{np_http}}}
  - {{name: https, port: 443, targetPort: https{np_https}}}
",
        np_http = node_port(http),
        np_https = node_port(https),
    ))
}

/// The highest host address of `net` (not its broadcast) that `taken` does not hold.
fn highest_free(net: ipnet::IpNet, taken: &[IpAddr]) -> Option<IpAddr> {
    match net {
        ipnet::IpNet::V4(n) => {
            let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
            (lo + 2..hi)
                .rev()
                .map(|a| IpAddr::from(std::net::Ipv4Addr::from(a)))
                .find(|a| !taken.contains(a))
        }
        ipnet::IpNet::V6(n) => {
            let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
            (lo + 2..hi)
                .rev()
                .take(1 << 16)
                .map(|a| IpAddr::from(std::net::Ipv6Addr::from(a)))
                .find(|a| !taken.contains(a))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load_str;

    fn router(yaml: &str) -> (Cluster, IngressRouter) {
        let cluster = load_str("t.yaml", yaml).expect("loads").cluster;
        let router = IngressRouter::new(&cluster, &ClassConfig::default());
        (cluster, router)
    }

    /// An Ingress `t` for host `h` (empty: none) with `(path, type, service)` paths.
    fn ingress(name: &str, host: &str, paths: &[(&str, &str, &str)]) -> String {
        let host = if host.is_empty() { String::new() } else { format!("host: \"{host}\"\n    ") };
        let mut out = format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}}}\n\
             spec:\n  rules:\n  - {host}http:\n      paths:\n"
        );
        for (path, ty, svc) in paths {
            out.push_str(&format!(
                "      - {{path: \"{path}\", pathType: {ty}, backend: {{service: {{name: {svc}, \
                 port: {{number: 80}}}}}}}}\n"
            ));
        }
        out
    }

    fn service_of(route: &Route) -> Option<&str> {
        route.target().map(|t| t.backend.service.as_str())
    }

    /// The table "Examples" of the Kubernetes Ingress documentation, row by row: the paths of
    /// one Ingress, a request path, and whether a path matches (`Some(service)`) or not.
    #[test]
    fn the_kubernetes_documentation_examples() {
        type Row<'a> = (&'a [(&'a str, &'a str)], &'a str, Option<&'a str>);
        let rows: &[Row<'_>] = &[
            (&[("/", "Prefix")], "/anything/at/all", Some("/")),
            (&[("/foo", "Exact")], "/foo", Some("/foo")),
            (&[("/foo", "Exact")], "/bar", None),
            (&[("/foo", "Exact")], "/foo/", None),
            (&[("/foo/", "Exact")], "/foo", None),
            (&[("/foo", "Prefix")], "/foo", Some("/foo")),
            (&[("/foo", "Prefix")], "/foo/", Some("/foo")),
            (&[("/foo/", "Prefix")], "/foo", Some("/foo/")),
            (&[("/foo/", "Prefix")], "/foo/", Some("/foo/")),
            (&[("/aaa/bb", "Prefix")], "/aaa/bbb", None),
            (&[("/aaa/bbb", "Prefix")], "/aaa/bbb", Some("/aaa/bbb")),
            (&[("/aaa/bbb/", "Prefix")], "/aaa/bbb", Some("/aaa/bbb/")),
            (&[("/aaa/bbb", "Prefix")], "/aaa/bbb/", Some("/aaa/bbb")),
            (&[("/aaa/bbb", "Prefix")], "/aaa/bbb/ccc", Some("/aaa/bbb")),
            (&[("/aaa/bbb", "Prefix")], "/aaa/bbbxyz", None),
            (&[("/", "Prefix"), ("/aaa", "Prefix")], "/aaa/ccc", Some("/aaa")),
            (
                &[("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")],
                "/aaa/bbb",
                Some("/aaa/bbb"),
            ),
            (&[("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")], "/ccc", Some("/")),
            (&[("/aaa", "Prefix")], "/ccc", None),
            (&[("/foo", "Prefix"), ("/foo", "Exact")], "/foo", Some("/foo Exact")),
            (&[("/foo", "Exact"), ("/foo", "Prefix")], "/foo", Some("/foo Exact")),
        ];
        for (i, (paths, request, expected)) in rows.iter().enumerate() {
            // Each path's Service is named after it, so the route says which path won.
            let services: Vec<String> = paths
                .iter()
                .map(|(p, t)| {
                    let base = if p.trim_matches('/').is_empty() {
                        "root".to_string()
                    } else {
                        p.trim_matches('/').replace('/', "-")
                    };
                    let slash = if p.len() > 1 && p.ends_with('/') { "-slash" } else { "" };
                    format!("{base}{slash}-{}", t.to_ascii_lowercase())
                })
                .collect();
            let triples: Vec<(&str, &str, &str)> =
                paths.iter().zip(&services).map(|((p, t), s)| (*p, *t, s.as_str())).collect();
            let (_, r) = router(&ingress("t", "foo.bar.com", &triples));
            let route = r.route(Some("foo.bar.com"), request);
            let want = expected.map(|e| {
                let (p, t) = e.split_once(' ').unwrap_or((e, ""));
                let idx = paths
                    .iter()
                    .position(|(pp, tt)| *pp == p && (t.is_empty() || *tt == t))
                    .expect("expected path is in the row");
                services[idx].as_str()
            });
            assert_eq!(service_of(&route), want, "row {i}: {paths:?} {request} -> {route:?}");
            if want.is_none() {
                assert_eq!(route, Route::NotFound { server: "foo.bar.com".into() }, "row {i}");
            }
        }
    }

    #[test]
    fn implementation_specific_is_a_character_prefix_like_nginx() {
        let (_, r) = router(&ingress("t", "", &[("/foo", "ImplementationSpecific", "is")]));
        assert_eq!(service_of(&r.route(None, "/foobar")), Some("is"));
        assert_eq!(service_of(&r.route(None, "/foo/x")), Some("is"));
        assert_eq!(service_of(&r.route(None, "/fo")), None);
        // At equal length a Prefix beats it; a longer ImplementationSpecific path beats both.
        let (_, r) = router(&ingress(
            "t",
            "",
            &[
                ("/foo", "ImplementationSpecific", "is"),
                ("/foo", "Prefix", "prefix"),
                ("/foo/b", "ImplementationSpecific", "long"),
            ],
        ));
        assert_eq!(service_of(&r.route(None, "/foo")), Some("prefix"));
        assert_eq!(service_of(&r.route(None, "/foo/bar")), Some("long"));
        assert_eq!(service_of(&r.route(None, "/foox")), Some("is"));
    }

    #[test]
    fn hosts_exact_then_one_label_wildcards_then_the_default_server() {
        let yaml = [
            ingress("a", "foo.bar.com", &[("/", "Prefix", "foo")]),
            ingress("b", "*.bar.com", &[("/", "Prefix", "wild")]),
            ingress("c", "", &[("/", "Prefix", "any")]),
        ]
        .concat();
        let (_, r) = router(&yaml);
        assert_eq!(service_of(&r.route(Some("foo.bar.com"), "/")), Some("foo"));
        assert_eq!(service_of(&r.route(Some("FOO.bar.com:30080"), "/x")), Some("foo"));
        assert_eq!(service_of(&r.route(Some("foo.bar.com."), "/")), Some("foo"));
        assert_eq!(service_of(&r.route(Some("baz.bar.com"), "/")), Some("wild"));
        assert_eq!(r.route(Some("baz.bar.com"), "/").server(), "*.bar.com");
        // One label only: neither the bare domain nor two labels match the wildcard.
        assert_eq!(service_of(&r.route(Some("bar.com"), "/")), Some("any"));
        assert_eq!(service_of(&r.route(Some("a.baz.bar.com"), "/")), Some("any"));
        assert_eq!(service_of(&r.route(Some("192.168.0.10:30080"), "/")), Some("any"));
        assert_eq!(service_of(&r.route(None, "/")), Some("any"));
        assert_eq!(r.hosts(), vec!["foo.bar.com".to_string(), "*.bar.com".to_string()]);
    }

    #[test]
    fn a_host_with_a_server_does_not_fall_through_to_rules_without_host() {
        let yaml = [
            ingress("a", "foo.com", &[("/app", "Prefix", "app")]),
            ingress("b", "", &[("/", "Prefix", "any")]),
        ]
        .concat();
        let (_, r) = router(&yaml);
        assert_eq!(
            r.route(Some("foo.com"), "/other"),
            Route::NotFound { server: "foo.com".into() }
        );
        assert_eq!(service_of(&r.route(Some("other.com"), "/other")), Some("any"));
    }

    #[test]
    fn default_backends_take_unmatched_requests() {
        let yaml = format!(
            "{}  defaultBackend: {{service: {{name: fallback-a, port: {{number: 80}}}}}}\n{}",
            ingress("a", "foo.com", &[("/app", "Prefix", "app")]),
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: z}\n\
             spec:\n  defaultBackend: {service: {name: catch-all, port: {name: web}}}\n"
        );
        let (_, r) = router(&yaml);
        let unmatched = r.route(Some("foo.com"), "/nope");
        assert!(matches!(unmatched, Route::DefaultBackend { .. }), "{unmatched:?}");
        assert_eq!(service_of(&unmatched), Some("fallback-a"));
        // No host matched: the rule-less Ingress's backend, not the older one's.
        let other = r.route(Some("other.com"), "/app");
        assert_eq!(service_of(&other), Some("catch-all"));
        assert_eq!(
            other.target().map(|t| t.backend.port.clone()),
            Some(PortRef::Name("web".into()))
        );
        // Without a rule-less Ingress the first defaultBackend takes unmatched hosts.
        let yaml = format!(
            "{}  defaultBackend: {{service: {{name: fallback-a, port: {{number: 80}}}}}}\n",
            ingress("a", "foo.com", &[("/app", "Prefix", "app")])
        );
        let (_, r) = router(&yaml);
        assert_eq!(service_of(&r.route(Some("x.com"), "/")), Some("fallback-a"));
        assert_eq!(r.route(Some("x.com"), "/").server(), DEFAULT_SERVER);
    }

    #[test]
    fn query_strings_and_empty_paths() {
        let (_, r) = router(&ingress("t", "", &[("/api", "Exact", "api")]));
        assert_eq!(service_of(&r.route(None, "/api?x=1")), Some("api"));
        assert_eq!(service_of(&r.route(None, "/api#frag")), Some("api"));
        let (_, r) = router(&ingress("t", "", &[("/", "Exact", "root")]));
        assert_eq!(service_of(&r.route(None, "")), Some("root"));
    }

    #[test]
    fn tls_other_classes_and_conflicts_are_reported() {
        let mut yaml = ingress("a", "foo.com", &[("/", "Prefix", "one")]);
        yaml.push_str("  tls: [{hosts: [foo.com], secretName: foo-cert}]\n");
        yaml.push_str(&ingress("b", "foo.com", &[("/", "Prefix", "two"), ("/b", "Exact", "b")]));
        yaml.push_str(
            &ingress("c", "foo.com", &[("/c", "Prefix", "c")])
                .replace("spec:\n", "spec:\n  ingressClassName: traefik\n"),
        );
        let (_, r) = router(&yaml);
        assert_eq!(r.served().len(), 2);
        let text: Vec<String> = r.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:#?}");
        assert!(text[0].starts_with("ingress default/a: tls for foo.com is not supported"));
        assert!(text[0].contains("no SSL passthrough"));
        assert!(text[1].contains(
            "ingress default/b: host foo.com path / is already routed by ingress default/a"
        ));
        assert!(text[2].contains("ingressClassName `traefik` is not served"));
        // The older Ingress keeps `/`; the newer one's other path still routes.
        assert_eq!(service_of(&r.route(Some("foo.com"), "/x")), Some("one"));
        assert_eq!(service_of(&r.route(Some("foo.com"), "/b")), Some("b"));
        assert_eq!(service_of(&r.route(Some("foo.com"), "/c")), Some("one"));
        // A controller whose class is not the default ignores class-less Ingresses.
        let cluster = load_str("t.yaml", &yaml).unwrap().cluster;
        let traefik = ClassConfig { class: "traefik".into(), is_default: false };
        let r = IngressRouter::new(&cluster, &traefik);
        assert_eq!(r.served().len(), 1);
        assert_eq!(service_of(&r.route(Some("foo.com"), "/c")), Some("c"));
        assert_eq!(service_of(&r.route(Some("foo.com"), "/")), None);
    }

    #[test]
    fn prefix_matching_is_by_element() {
        assert!(prefix_matches("/", "/"));
        assert!(prefix_matches("/", "/x"));
        assert!(prefix_matches("/a//b", "/a/b/c"));
        assert!(!prefix_matches("/a/b", "/a"));
        assert!(!prefix_matches("/ab", "/a"));
    }

    #[test]
    fn the_builtin_controller_moves_nothing_of_the_users_cluster() {
        let user = [
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: web}}\n\
             spec: {containers: [{name: c, image: i, ports: [{containerPort: 8080}]}]}\n",
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n\
             spec: {type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}\n",
            &ingress("t", "", &[("/", "Prefix", "web")]),
        ]
        .concat();
        let before = load_str("u.yaml", &user).unwrap().cluster;
        let extra = controller_manifest(&before).expect("Ingresses and no controller");
        let mut loader = crate::manifest::Loader::new();
        loader.add("u.yaml", user.clone()).add(CONTROLLER_FILE, extra);
        let after = loader.finish().expect("the built-in manifest loads").cluster;
        assert_eq!(before.nodes, after.nodes);
        let web = |c: &Cluster| c.pod_by_ref("default/web").map(|p| (p.ip, p.node));
        assert_eq!(web(&before), web(&after));
        let svc = |c: &Cluster| c.service_by_name("default", "web").and_then(|s| s.cluster_ip);
        assert_eq!(svc(&before), svc(&after));
        let ctrl = after.pod_by_name(CONTROLLER_NAMESPACE, CONTROLLER_NAME).expect("the pod");
        assert!(is_controller_pod(ctrl));
        assert_eq!(ctrl.ip.to_string(), "10.244.0.254");
        let s = after.service_by_name(CONTROLLER_NAMESPACE, CONTROLLER_NAME).expect("svc");
        // 30080 is the user's, so the http port got another; https kept 30443.
        let node_ports: Vec<Option<u16>> = s.ports.iter().map(|p| p.node_port).collect();
        assert_ne!(node_ports[0], Some(30080));
        assert!(node_ports[0].is_some());
        assert_eq!(node_ports[1], Some(30443));
        assert_eq!(controller_manifest(&after), None);
        let none = load_str("n.yaml", &user[..user.find("---").unwrap()]).unwrap().cluster;
        assert_eq!(controller_manifest(&none), None);
    }
}
