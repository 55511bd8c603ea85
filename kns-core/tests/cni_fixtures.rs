//! Real configuration files from public CNI documentation (containerd's default, the spec's
//! example, the bridge, host-local and ptp plugin docs, flannel's manifest, the loopback
//! config) load, keep their unknown fields, and serialise back to the same JSON.

use std::path::Path;

use kns_core::cni::{CniRuntime, ConfigFile, parse_config_file};
use serde_json::Value;

fn fixtures() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cni");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_fixture_loads_and_round_trips() {
    let all = fixtures();
    assert_eq!(all.len(), 7);
    for (name, text) in &all {
        let parsed = parse_config_file(name, text).unwrap_or_else(|e| panic!("{e}"));
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.to_value(), original, "{name} changed on the round trip");
        let list = parsed.clone().into_list();
        assert!(!list.plugins.is_empty(), "{name}");
        assert!(!list.name.is_empty(), "{name}");
        assert_eq!(matches!(parsed, ConfigFile::List(_)), name.ends_with(".conflist"));
    }
}

#[test]
fn fixture_details_survive() {
    let get = |n: &str| {
        let (name, text) = fixtures().into_iter().find(|(f, _)| f == n).unwrap();
        CniRuntime::parse_config(&name, &text).unwrap()
    };
    let dbnet = get("11-spec-dbnet.conflist");
    assert_eq!(dbnet.effective_version(), "1.1.0");
    assert_eq!(dbnet.plugins[1].plugin_type, "tuning");
    assert_eq!(dbnet.plugins[1].extra["sysctl"]["net.core.somaxconn"], "500");
    assert_eq!(dbnet.plugins[0].extra["keyA"][1], "plugin specific");
    assert_eq!(dbnet.plugins[0].dns.as_ref().unwrap().nameservers, ["10.1.0.1"]);
    assert!(dbnet.plugins[2].capabilities["portMappings"]);

    let flannel = get("10-flannel.conflist");
    assert_eq!(flannel.cni_version, "0.3.1");
    assert_eq!(flannel.plugins[0].extra["delegate"]["isDefaultGateway"], true);

    let containerd = get("10-containerd-net.conflist");
    let ipam = containerd.plugins[0].ipam.as_ref().unwrap();
    assert_eq!(ipam.plugin_type, "host-local");
    assert_eq!(ipam.extra["ranges"][1][0]["subnet"], "2001:4860:4860::/64");

    let ptp = get("20-ptp.conf");
    assert_eq!((ptp.name.as_str(), ptp.plugins.len()), ("mynet", 1));
    assert_eq!(ptp.plugins[0].dns.as_ref().unwrap().nameservers, ["10.1.1.1", "8.8.8.8"]);
}
