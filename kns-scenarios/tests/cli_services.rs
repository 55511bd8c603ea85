//! `kns dig`, `kns curl` and `kns probe` through Services and cluster DNS, on the demo.

mod common;
use common::{example_in, kns, text};

fn demo() -> String {
    example_in("manifests", "demo.yaml")
}

/// `namespace/name` of the first pod of `namespace` whose name starts with `prefix`, as
/// `kns cluster` lists it.
fn pod(namespace: &str, prefix: &str) -> String {
    let out = kns(&["cluster", "-f", &demo()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let name = listing
        .lines()
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            (cols.next() == Some(namespace)).then(|| cols.next()).flatten()
        })
        .find(|n| n.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {namespace}/{prefix}* in:\n{listing}"));
    format!("{namespace}/{name}")
}

/// The cluster IP of a Service, asked with `kns dig` (full name, A).
fn service_ip(from: &str, fqdn: &str) -> String {
    let out = kns(&["dig", "-f", &demo(), "--from", from, fqdn]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let answer = text(&out.stdout);
    let line = answer
        .lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no answer:\n{answer}"));
    line.split_whitespace().last().unwrap().to_string()
}

#[test]
fn dig_prints_an_answer_like_dig_for_a_records_srv_and_nxdomain() {
    let web = pod("frontend", "web-");
    let ip = service_ip(&web, "api.backend.svc.cluster.local");
    assert!(ip.starts_with("10.96."), "{ip}");
    let out = kns(&[
        "dig",
        "-f",
        &demo(),
        "--from",
        &web,
        "_http._tcp.api.backend.svc.cluster.local",
        "SRV",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let srv = text(&out.stdout);
    assert!(srv.contains("status: NOERROR"), "{srv}");
    assert!(srv.contains("SRV\t0 100 8080 api.backend.svc.cluster.local."), "{srv}");
    let out = kns(&["dig", "-f", &demo(), "--from", &web, "nothing.backend.svc.cluster.local"]);
    assert!(text(&out.stdout).contains("status: NXDOMAIN"), "{}", text(&out.stdout));
    let out = kns(&["dig", "-f", &demo(), "--from", &web, "web", "BOGUS"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("unknown record type"), "{}", text(&out.stderr));
}

#[test]
fn curl_resolves_a_service_name_and_a_backend_answers() {
    let web = pod("frontend", "web-");
    let out = kns(&["curl", "-f", &demo(), "--from", &web, "http://api.backend:8080/orders"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body = text(&out.stdout);
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"), "{body}");
    assert!(lines.next().is_some_and(|l| l.starts_with("api-")), "{body}");
    let out = kns(&["curl", "-f", &demo(), "--from", &web, "http://no-such-service/"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("could not resolve no-such-service"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn probe_by_dns_name_shows_the_query_the_dnat_and_the_backend() {
    let web = pod("frontend", "web-");
    let out = kns(&[
        "probe",
        "-f",
        &demo(),
        "--from",
        &web,
        "--to",
        "api.backend",
        "--port",
        "8080/TCP",
        "--trace",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let ip = service_ip(&web, "api.backend.svc.cluster.local");
    // The search walk: `api.backend` is first tried under the pod's namespace.
    assert!(
        report.starts_with(
            "dns: api.backend.frontend.svc.cluster.local. A @10.96.0.10:53 (UDP): NXDOMAIN"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "dns: api.backend.svc.cluster.local. A @10.96.0.10:53 (UDP): NOERROR (1 answers)"
        ),
        "{report}"
    );
    assert!(
        report.contains(&format!("probe {web} -> api.backend ({ip}) port 8080/TCP")),
        "{report}"
    );
    let dnat = report
        .lines()
        .find(|l| l.starts_with("kube-proxy on ") && l.contains(&format!("{ip}:8080/TCP")))
        .unwrap_or_else(|| panic!("no DNAT line:\n{report}"));
    assert!(dnat.contains("DNAT 10.244."), "{dnat}");
    assert!(report.contains("result: connected") && report.contains("reply \"api-"), "{report}");
}

#[test]
fn probe_to_svc_name_ns_reaches_a_backend_and_unknown_services_are_usage_errors() {
    let web = pod("frontend", "web-");
    let out = kns(&[
        "probe",
        "-f",
        &demo(),
        "--from",
        &web,
        "--to",
        "svc/web.frontend",
        "--port",
        "80/TCP",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("-> service frontend/web (10.96."), "{report}");
    assert!(report.contains("result: connected") && report.contains("reply \"web-"), "{report}");
    let out = kns(&[
        "probe",
        "-f",
        &demo(),
        "--from",
        &web,
        "--to",
        "svc/nope.frontend",
        "--port",
        "80/TCP",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no Service `nope`"), "{}", text(&out.stderr));
}
