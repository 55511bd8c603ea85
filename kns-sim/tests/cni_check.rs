//! The CNI contract kit on the reference plugins: bridge + host-local and ptp + host-local
//! pass, and a plugin that leaks addresses is caught.

use kns_core::cni::CniRuntime;
use kns_sim::cni_check::check_cni_plugin;

const BRIDGE: &str = r#"{
  "cniVersion": "1.1.0",
  "name": "podnet",
  "plugins": [{
    "type": "bridge", "bridge": "cni0", "isDefaultGateway": true, "ipMasq": true,
    "ipam": { "type": "host-local", "subnet": "10.244.1.0/27" }
  }]
}"#;

const PTP: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "ptpnet",
  "type": "ptp",
  "ipam": { "type": "host-local", "subnet": "10.1.1.0/27", "routes": [{ "dst": "0.0.0.0/0" }] }
}"#;

#[test]
fn bridge_with_host_local_keeps_the_contract() {
    // 20 pods in a /27 (29 usable addresses): re-adding after DEL needs the freed ones.
    check_cni_plugin(&CniRuntime::with_reference_plugins(), BRIDGE, 20, 1).unwrap();
}

#[test]
fn ptp_with_host_local_keeps_the_contract() {
    check_cni_plugin(&CniRuntime::with_reference_plugins(), PTP, 20, 2).unwrap();
}

#[test]
fn a_pool_too_small_for_the_pods_is_reported_not_panicked() {
    let tiny = PTP.replace("10.1.1.0/27", "10.1.1.0/29");
    let e = check_cni_plugin(&CniRuntime::with_reference_plugins(), &tiny, 10, 3).unwrap_err();
    assert_eq!(e.property, "ADD then CHECK passes", "{e}");
}

/// ptp whose DEL forgets everything: addresses leak.
struct LeakyPtp;

impl kns_core::cni::CniPlugin for LeakyPtp {
    fn type_name(&self) -> &str {
        "leaky-ptp"
    }
    fn add(
        &self,
        env: &mut kns_core::cni::Env<'_>,
        args: &kns_core::cni::CmdArgs,
        conf: &kns_core::cni::NetConf,
    ) -> Result<kns_core::cni::CniResult, kns_core::cni::CniError> {
        env.delegate_add("ptp", args, conf)
    }
    fn del(
        &self,
        _: &mut kns_core::cni::Env<'_>,
        _: &kns_core::cni::CmdArgs,
        _: &kns_core::cni::NetConf,
    ) -> Result<(), kns_core::cni::CniError> {
        Ok(())
    }
    fn check(
        &self,
        env: &mut kns_core::cni::Env<'_>,
        args: &kns_core::cni::CmdArgs,
        conf: &kns_core::cni::NetConf,
    ) -> Result<(), kns_core::cni::CniError> {
        env.delegate_check("ptp", args, conf)
    }
}

#[test]
fn a_plugin_whose_del_leaks_addresses_is_caught() {
    let mut cni = CniRuntime::with_reference_plugins();
    cni.plugins_mut().register(Box::new(LeakyPtp));
    let leaky = PTP.replace("\"ptp\"", "\"leaky-ptp\"");
    let e = check_cni_plugin(&cni, &leaky, 20, 4).unwrap_err();
    assert_eq!(e.property, "DEL frees addresses", "{e}");
}
