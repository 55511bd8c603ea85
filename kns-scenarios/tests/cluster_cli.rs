//! `kns cluster`, `kns probe` and `kns matrix --mode packet` end to end.

mod common;
use common::{example_in, kns, text};

fn demo() -> String {
    example_in("manifests", "demo.yaml")
}

#[test]
fn cluster_prints_nodes_pods_addresses_and_routes() {
    let out = kns(&["cluster", "-f", &demo()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    insta::assert_snapshot!("cluster_demo", s);
    // The same input gives the same bytes.
    assert_eq!(text(&kns(&["cluster", "-f", &demo()]).stdout), s);
}

#[test]
fn packet_matrix_equals_policy_matrix_in_every_format() {
    for format in ["table", "json", "csv"] {
        let policy = kns(&["matrix", "-f", &demo(), "-o", format]);
        let packet = kns(&["matrix", "-f", &demo(), "-o", format, "--mode", "packet"]);
        assert_eq!(packet.status.code(), Some(0), "{}", text(&packet.stderr));
        assert_eq!(text(&packet.stdout), text(&policy.stdout), "{format}");
    }
}

fn pod(prefix: &str) -> String {
    let out = kns(&["matrix", "-f", &demo(), "-o", "csv"]);
    text(&out.stdout)
        .lines()
        .flat_map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .find(|cell| cell.starts_with(prefix))
        .unwrap_or_else(|| panic!("no pod {prefix}"))
}

#[test]
fn probe_reports_connected_filtered_and_the_hops() {
    let (web, api, db) = (pod("frontend/web-"), pod("backend/api-"), pod("db/postgres"));
    let out = kns(&["probe", "-f", &demo(), "--from", &web, "--to", &api, "--port", "8080/TCP"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("result: connected in"), "{s}");
    assert!(s.contains(&format!("reply \"{}\"", api.split('/').nth(1).unwrap())), "{s}");
    let out = kns(&[
        "probe",
        "-f",
        &demo(),
        "--from",
        &web,
        "--to",
        &db,
        "--port",
        "5432/TCP",
        "--trace",
    ]);
    let s = text(&out.stdout);
    assert!(s.contains("result: filtered (timed out)"), "{s}");
    assert!(s.contains("dropped by policy"), "the trace shows the policy drop:\n{s}");
    // A node and the internet are sources too; a bad pod name is a usage error.
    let out = kns(&["probe", "-f", &demo(), "--from", "node-a", "--to", &db, "--port", "5432/TCP"]);
    assert!(text(&out.stdout).contains("result: connected"), "{}", text(&out.stdout));
    let out = kns(&["probe", "-f", &demo(), "--from", "nope/x", "--to", &db, "--port", "5432/TCP"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no pod `nope/x`"), "{}", text(&out.stderr));
}

#[test]
fn probe_writes_a_pcap() {
    let (web, api) = (pod("frontend/web-"), pod("backend/api-"));
    let file = std::env::temp_dir().join(format!("kns-probe-{}.pcap", std::process::id()));
    let f = file.to_string_lossy().into_owned();
    let out = kns(&[
        "probe",
        "-f",
        &demo(),
        "--from",
        &web,
        "--to",
        &api,
        "--port",
        "8080/TCP",
        "--pcap",
        &f,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bytes = std::fs::read(&file).expect("the pcap was written");
    let _ = std::fs::remove_file(&file);
    let magic = &bytes[..4];
    assert!(
        magic == [0xd4, 0xc3, 0xb2, 0xa1] || magic == [0x4d, 0x3c, 0xb2, 0xa1],
        "pcap magic: {magic:?}"
    );
    assert!(bytes.len() > 24 + 5 * 16, "header and several frames");
}
