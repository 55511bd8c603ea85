//! The scenario library: the tour's cluster lessons as scenarios, and two real-world platforms
//! from the seed documents. Manifests live in `kns-scenarios/scenarios/` and are embedded, so
//! the binary runs them from anywhere.

use super::Scenario;
use super::port_table::{COMPONENTS, VERRAZZANO_PORTS, expected_flows};

const TOUR_CLUSTER: &str = include_str!("../../scenarios/tour/cluster.yaml");
const DENY_ALL_WEB: &str = include_str!("../../scenarios/tour/web-deny-all.yaml");
const WEB_FROM_CLIENT: &str = include_str!("../../scenarios/tour/web-from-client.yaml");
const WEB_FROM_DB: &str = include_str!("../../scenarios/tour/web-from-db.yaml");
const AND_FROM: &str = include_str!("../../scenarios/tour/web-and.yaml");
const OR_FROM: &str = include_str!("../../scenarios/tour/web-or.yaml");
const IP_BLOCK: &str = include_str!("../../scenarios/tour/web-from-outside.yaml");
const DB_NO_EGRESS: &str = include_str!("../../scenarios/tour/db-no-egress.yaml");
const SERVICES: &str = include_str!("../../scenarios/tour/services.yaml");
const INGRESS: &str = include_str!("../../scenarios/tour/ingress.yaml");
const API_GATEWAY: &str = include_str!("../../scenarios/api-gateway.yaml");
const VERRAZZANO: &str = include_str!("../../scenarios/verrazzano-ports.yaml");

/// The pods of the tour's cluster, as sources.
const CLIENT: &str = "default/client";
const DB: &str = "default/db";
const WEB: &str = "default/web";
const TESTER: &str = "ops/tester";

/// Every scenario, in the order `kns scenario list` shows them.
pub fn all() -> Vec<Scenario> {
    vec![
        pod_network(),
        snat_outside(),
        network_policy(),
        pod_restart(),
        services(),
        api_gateway(),
        verrazzano_ports(),
    ]
}

/// The scenario called `name`.
pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name() == name)
}

/// The names of every scenario, in order.
pub fn names() -> Vec<String> {
    all().iter().map(|s| s.name().to_string()).collect()
}

fn tour_cluster(name: &str) -> Scenario {
    Scenario::new(name).apply_file("tour-cluster.yaml", TOUR_CLUSTER)
}

fn pod_network() -> Scenario {
    tour_cluster("pod-network")
        .about(
            "The Kubernetes network model: every pod reaches every pod by its IP, on any node.\n\
             The tour's step k8s-model: a pod on the same node and one on the other node reach web,\n\
             the node's agents reach its pods, and a pod's containers share localhost.",
        )
        .expect_answer(DB, WEB, 80, "web")
        .expect_answer(CLIENT, WEB, 80, "web")
        .expect_answer(TESTER, DB, 5432, "db")
        .expect_allowed("node-1", WEB, 80)
        .expect_answer(WEB, "localhost", 9090, "web")
}

fn snat_outside() -> Scenario {
    tour_cluster("snat-outside")
        .about(
            "Pods reach the internet through SNAT; the internet cannot reach pod IPs.\n\
             The tour's step snat-outside: a server on the internet host answers the pod, and a\n\
             connection from the internet to a pod IP finds no route.",
        )
        .serve_on_internet("example.com", 80)
        .expect_answer(CLIENT, "internet", 80, "example.com")
        .expect_denied("internet", WEB, 80)
}

fn network_policy() -> Scenario {
    let everyone = [CLIENT, DB, TESTER];
    tour_cluster("network-policy")
        .about(
            "NetworkPolicy semantics, one policy set at a time (the tour's step network-policy).\n\
             Isolation, the union of policies, AND vs OR in `from`, ipBlock, egress isolation and\n\
             replies, and no policy at all.",
        )
        .expect_reach(WEB, 80, &everyone, &[])
        .replace_policies("web-deny-all.yaml", DENY_ALL_WEB)
        .expect_reach(WEB, 80, &[], &everyone)
        .expect_allowed(DB, CLIENT, 8080)
        .expect_denied("node-2", WEB, 80)
        .replace_policies("web-from-client+db.yaml", format!("{WEB_FROM_CLIENT}{WEB_FROM_DB}"))
        .expect_reach(WEB, 80, &[CLIENT, DB], &[TESTER])
        .replace_policies("web-and.yaml", AND_FROM)
        .expect_reach(WEB, 80, &[TESTER], &[CLIENT, DB])
        .replace_policies("web-or.yaml", OR_FROM)
        .expect_reach(WEB, 80, &[DB, TESTER], &[CLIENT])
        .replace_policies("web-from-outside.yaml", IP_BLOCK)
        .expect_denied("internet", WEB, 80)
        .expect_allowed("node-2", WEB, 80)
        .expect_reach(WEB, 80, &[], &everyone)
        .replace_policies("db-no-egress+web-from-db.yaml", format!("{DB_NO_EGRESS}{WEB_FROM_DB}"))
        .expect_denied(DB, WEB, 80)
        .expect_answer(CLIENT, DB, 5432, "db")
        .replace_policies("none.yaml", "")
        .expect_reach(WEB, 80, &everyone, &[])
}

fn pod_restart() -> Scenario {
    tour_cluster("pod-restart")
        .about(
            "A restarted pod gets a new IP and the old one leads nowhere (the tour's pod-restart).",
        )
        .restart(WEB)
        .expect_answer(CLIENT, WEB, 80, "web")
        .expect_denied(CLIENT, "was:default/web", 80)
}

fn services() -> Scenario {
    let client = "default/client";
    let front = "http://nodeport/ingress-nginx-controller.ingress-nginx:80";
    Scenario::new("services")
        .about(
            "Every kind of Service and Ingress, reached with real packets (the tour's services and ingress).\n\
             ClusterIP and NodePort in front of two web pods, a LoadBalancer address announced by one\n\
             node, a Service without a selector and its hand-written Endpoints, and an NGINX-like\n\
             Ingress routing by host and path.",
        )
        .apply_file("services.yaml", SERVICES)
        .apply_file("ingress.yaml", INGRESS)
        .expect_allowed(client, "svc/web.default", 80)
        .expect_allowed("internet", "nodeport/web.default", 80)
        .expect_allowed("internet", "192.168.0.240", 80)
        .expect_answer(client, "svc/legacy.default", 80, "legacy")
        .expect_http("internet", &format!("{front}/"), "www.example.test", 200, "web-")
        .expect_http("internet", &format!("{front}/shop/basket"), "www.example.test", 200, "shop-")
        .expect_http("internet", &format!("{front}/cart"), "api.prod.example.test", 200, "shop-")
        .expect_http("internet", &format!("{front}/cart/1"), "api.prod.example.test", 404, "")
        .expect_http("internet", &format!("{front}/"), "unknown.example.test", 404, "")
}

fn api_gateway() -> Scenario {
    let gateway = "istio-system/istio-ingressgateway";
    let keycloak = "services/keycloak-0";
    let smd = "services/cray-smd";
    let badger = "services/cray-hms-badger-api";
    let gitea = "services/gitea-vcs";
    let kafka = "sma/cluster-kafka-0";
    let grafana = "sma/sma-grafana";
    // The gateway pod is an ingress controller serving the manifest's Ingress rules on its
    // `http` port, behind the node port 30080.
    let front = "http://nodeport/istio-ingressgateway.istio-system:80";
    let cmn = "api.cmn.shasta.example.com";
    let url = |path: &str| format!("{front}{path}");
    Scenario::new("api-gateway")
        .about(
            "Traffic enters only through the API gateway, routed by host name; each database admits its one client.\n\
             The seed's system management platform: outside clients reach the gateway's node port,\n\
             which routes api.cmn/api.can/api.chn.shasta.example.com by path to the REST services\n\
             (an unknown host gets 404); only the gateway reaches those services (api-gateway-upstream),\n\
             and keycloak-database, sma-postgres, hms-mariadb, sma-zookeeper, hms-badger,\n\
             api-gateway-database and vcs-database each let exactly one client reach a database.",
        )
        .nodes(3)
        .apply_file("api-gateway.yaml", API_GATEWAY)
        // The front door: by host name and path to the backend that answers.
        .expect_allowed("internet", "nodeport/istio-ingressgateway.istio-system", 80)
        .expect_http("internet", &url("/keycloak/realms/shasta"), cmn, 200, "keycloak-0")
        .expect_http("internet", &url("/apis/smd/hsm/v2/State/Components"), cmn, 200, "cray-smd")
        .expect_http("internet", &url("/apis/badger"), cmn, 200, "cray-hms-badger-api")
        .expect_http("internet", &url("/vcs"), cmn, 200, "gitea-vcs")
        .expect_http("internet", &url("/keycloak"), "api.can.shasta.example.com", 200, "keycloak-0")
        .expect_http("internet", &url("/keycloak"), "api.chn.shasta.example.com", 200, "keycloak-0")
        // What no rule routes: another host, a path only cmn has, a path no host has.
        .expect_http("internet", &url("/keycloak"), "api.example.com", 404, "default backend - 404")
        .expect_http("internet", &url("/apis/smd"), "api.can.shasta.example.com", 404, "")
        .expect_http("internet", &url("/"), cmn, 404, "")
        // No side door: the backends themselves cannot be reached from outside, and from a pod
        // other than the gateway they are filtered.
        .expect_denied("internet", keycloak, 8080)
        .expect_http("internet", "http://services/keycloak-0:8080/keycloak", "", 0, "")
        .expect_http(kafka, "http://svc/keycloak.services:8080/keycloak", "", 0, "")
        .expect_denied(kafka, "svc/keycloak.services", 8080)
        .expect_http(gateway, "http://svc/keycloak.services:8080/keycloak", "", 200, "keycloak-0")
        // Only the gateway reaches the upstream services, here through their Services.
        .expect_answer(gateway, "svc/keycloak.services", 8080, "keycloak-0")
        .expect_answer(gateway, "svc/cray-smd.services", 80, "cray-smd")
        .expect_answer(gateway, "svc/gitea-vcs.services", 80, "gitea-vcs")
        .expect_denied(kafka, "svc/cray-smd.services", 80)
        .expect_reach(keycloak, 8080, &[gateway], &[smd, grafana])
        .expect_reach(smd, 27779, &[gateway], &[keycloak, kafka])
        // One client per database.
        .expect_reach("services/keycloak-postgres-0", 5432, &[keycloak], &[smd, gateway, grafana])
        .expect_reach("sma/sma-postgres-0", 5432, &[grafana], &[kafka, keycloak])
        .expect_reach("services/cray-smd-mariadb-0", 3306, &[smd], &[keycloak, badger])
        .expect_reach("sma/cluster-zookeeper-0", 2181, &[kafka], &[grafana, smd])
        .expect_reach("services/cray-hms-badger-postgres-0", 5432, &[badger], &[smd])
        .expect_reach("services/api-gateway-postgres-0", 5432, &[gateway], &[keycloak])
        .expect_reach("services/gitea-vcs-postgres-0", 5432, &[gitea], &[keycloak])
}

fn verrazzano_ports() -> Scenario {
    // The table and the component list are constants, and their expansion is tested in
    // `port_table::tests`; an unknown name there is a bug in this file.
    let (ports, flows) = expected_flows(VERRAZZANO_PORTS, COMPONENTS)
        .expect("the Verrazzano table names only listed components");
    Scenario::new("verrazzano-ports")
        .about(
            "Exactly the flows of a platform's ingress port table are allowed, everything else denied.\n\
             The seed's Verrazzano table (operators' webhooks from the API server, Prometheus\n\
             scraping, consoles behind the NGINX ingress, Elasticsearch data and cluster ports, Istio)\n\
             is data in the scenario; every pod pair is probed on every listed port and the allowed\n\
             set must equal the table's. The ingress gateway's 8443 is for outside clients only.",
        )
        .nodes(3)
        .apply_file("verrazzano-ports.yaml", VERRAZZANO)
        .expect_answer(
            "internet",
            "nodeport/istio-ingressgateway.istio-system",
            8443,
            "istio-ingressgateway",
        )
        .expect_exactly("the Verrazzano ingress port table", &ports, flows)
}
