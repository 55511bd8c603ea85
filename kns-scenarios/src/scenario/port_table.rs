//! A platform's ingress port table as data, and the flow set it stands for.
//!
//! The table is the seed "Verrazzano Networking" ("Ingress for all components"): each row is a
//! component, a pod port and the components allowed to connect to it. [`COMPONENTS`] says which
//! pods of the scenario's manifest each component name stands for; [`expected_flows`] turns the
//! table into the set of pod-to-pod flows that must be allowed, everything else being denied.

use std::collections::{BTreeMap, BTreeSet};

use kns_core::flow::PortProtocol;

use super::{PodFlow, Port};

/// One row of a port table: `component` admits `from` on TCP `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRow {
    /// The component that listens (a key of the component list).
    pub component: &'static str,
    /// Its pod port (TCP).
    pub port: u16,
    /// The components allowed to connect (an empty list: only clients outside the cluster).
    pub from: &'static [&'static str],
    /// The table's description column.
    pub description: &'static str,
}

const fn row(
    component: &'static str,
    port: u16,
    from: &'static [&'static str],
    description: &'static str,
) -> PortRow {
    PortRow { component, port, from, description }
}

const API: &str = "Kubernetes API Server";
const NGINX: &str = "NGINX Ingress";
const PROM: &str = "Prometheus";
const ES: &str = "Elasticsearch";

/// The Verrazzano table, row by row as the seed lists it.
pub const VERRAZZANO_PORTS: &[PortRow] = &[
    row("Verrazzano Application Operator", 9443, &[API], "Webhook entrypoint"),
    row("Verrazzano Platform Operator", 9443, &[API], "Webhook entrypoint"),
    row("Verrazzano Console", 8000, &[NGINX], "Access from external client"),
    row("Verrazzano Console", 15090, &[PROM], "Prometheus scraping"),
    row("Verrazzano Proxy", 8775, &[NGINX], "Access from external client"),
    row("Verrazzano Proxy", 15090, &[PROM], "Prometheus scraping"),
    row("cert-manager", 9402, &[PROM], "Prometheus scraping"),
    // The seed's "From" column says Prometheus here, but its description is the webhook
    // entrypoint that every other operator row opens to the API server; kns follows the
    // description.
    row("Coherence Operator", 9443, &[API], "Webhook entrypoint"),
    row(ES, 8775, &[NGINX, "Fluentd"], "Access from external client and from Fluentd"),
    row(ES, 9200, &["Kibana", ES], "Elasticsearch data port (Kibana, internal)"),
    row(ES, 9300, &[ES], "Elasticsearch cluster port (internal)"),
    row(ES, 15090, &[PROM], "Envoy metrics scraping"),
    row("Istio control plane", 15012, &["Envoy"], "Envoy access to istiod"),
    row("Istio control plane", 15014, &[PROM], "Prometheus scraping"),
    row("Istio control plane", 15017, &[API], "Webhook entrypoint"),
    row("Istio ingress gateway", 8443, &[], "Application ingress (from outside only)"),
    row("Istio ingress gateway", 15090, &[PROM], "Prometheus scraping"),
    row("Istio egress gateway", 8443, &["Mesh services"], "Application egress"),
    row("Istio egress gateway", 15090, &[PROM], "Prometheus scraping"),
    row("Keycloak", 8080, &[NGINX], "Access from external client"),
    row("Keycloak", 15090, &[PROM], "Prometheus scraping"),
    row("MySql", 15090, &[PROM], "Prometheus scraping"),
    row("MySql", 3306, &["Keycloak"], "Keycloak datastore"),
    row("Node exporter", 9100, &[PROM], "Prometheus scraping"),
    row("Rancher", 80, &[NGINX], "Access from external client"),
    row("Rancher", 9443, &[API], "Webhook entrypoint"),
    row(PROM, 8775, &[NGINX], "Access from external client"),
    row(PROM, 9090, &["Grafana"], "Access for Grafana UI"),
];

/// The pods (`namespace/name`) each component name of [`VERRAZZANO_PORTS`] stands for in
/// `scenarios/verrazzano-ports.yaml`.
pub const COMPONENTS: &[(&str, &[&str])] = &[
    (API, &["kube-system/kube-apiserver"]),
    ("Verrazzano Application Operator", &["verrazzano-system/verrazzano-application-operator"]),
    ("Verrazzano Platform Operator", &["verrazzano-install/verrazzano-platform-operator"]),
    ("Verrazzano Console", &["verrazzano-system/verrazzano-console"]),
    ("Verrazzano Proxy", &["verrazzano-system/verrazzano-authproxy"]),
    ("cert-manager", &["cert-manager/cert-manager"]),
    ("Coherence Operator", &["verrazzano-system/coherence-operator"]),
    (
        ES,
        &[
            "verrazzano-system/vmi-system-es-data-0",
            "verrazzano-system/vmi-system-es-ingest",
            "verrazzano-system/vmi-system-es-master-0",
        ],
    ),
    ("Kibana", &["verrazzano-system/vmi-system-kibana"]),
    ("Fluentd", &["verrazzano-system/fluentd"]),
    ("Istio control plane", &["istio-system/istiod"]),
    ("Istio ingress gateway", &["istio-system/istio-ingressgateway"]),
    ("Istio egress gateway", &["istio-system/istio-egressgateway"]),
    // Envoy runs in both gateways and beside every workload of the mesh.
    (
        "Envoy",
        &[
            "istio-system/istio-egressgateway",
            "istio-system/istio-ingressgateway",
            "todo-list/tododomain-adminserver",
        ],
    ),
    ("Mesh services", &["todo-list/tododomain-adminserver"]),
    ("Keycloak", &["keycloak/keycloak-0"]),
    ("MySql", &["keycloak/mysql-0"]),
    ("Node exporter", &["monitoring/node-exporter"]),
    ("Rancher", &["cattle-system/rancher"]),
    (PROM, &["verrazzano-system/vmi-system-prometheus-0"]),
    ("Grafana", &["verrazzano-system/vmi-system-grafana"]),
    (NGINX, &["ingress-nginx/ingress-controller-ingress-nginx-controller"]),
];

/// Why a table cannot be turned into flows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("port table: component `{0}` is in no component list")]
pub struct UnknownComponent(pub String);

/// The flows a table allows: for every row, every pod of each source component to every pod
/// of the row's component on the row's port (a pod to itself excluded), and the ports listed.
pub fn expected_flows(
    rows: &[PortRow],
    components: &[(&str, &[&str])],
) -> Result<(Vec<PortProtocol>, BTreeSet<PodFlow>), UnknownComponent> {
    let pods: BTreeMap<&str, &[&str]> = components.iter().copied().collect();
    let of = |c: &str| pods.get(c).copied().ok_or_else(|| UnknownComponent(c.to_string()));
    let mut ports = BTreeSet::new();
    let mut flows = BTreeSet::new();
    for r in rows {
        let port = Port::from(r.port).0;
        ports.insert(port);
        for to in of(r.component)? {
            for source in r.from {
                for from in of(source)? {
                    if from != to {
                        flows.insert(PodFlow { from: from.to_string(), to: to.to_string(), port });
                    }
                }
            }
        }
    }
    Ok((ports.into_iter().collect(), flows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_expands_to_pod_flows() {
        let (ports, flows) = expected_flows(VERRAZZANO_PORTS, COMPONENTS).unwrap();
        let listed: Vec<u16> = ports.iter().map(|p| p.port).collect();
        assert_eq!(
            listed,
            [
                80, 3306, 8000, 8080, 8443, 8775, 9090, 9100, 9200, 9300, 9402, 9443, 15012, 15014,
                15017, 15090
            ]
        );
        // Elasticsearch's cluster port: each of the three pods from the two others.
        let es_cluster = flows.iter().filter(|f| f.port.port == 9300).count();
        assert_eq!(es_cluster, 6);
        // Prometheus scrapes 15090 on console, proxy, three ES pods, two gateways, keycloak, mysql.
        assert_eq!(flows.iter().filter(|f| f.port.port == 15090).count(), 9);
        // The ingress gateway's 8443 is for outside clients only.
        assert!(
            !flows.iter().any(|f| f.to.ends_with("istio-ingressgateway") && f.port.port == 8443)
        );
        assert!(flows.iter().all(|f| f.from != f.to));
    }

    #[test]
    fn an_unknown_component_is_named() {
        let rows = [row("Nope", 1, &[], "")];
        assert_eq!(
            expected_flows(&rows, COMPONENTS).unwrap_err().to_string(),
            "port table: component `Nope` is in no component list"
        );
    }
}
