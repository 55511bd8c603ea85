//! Contract checks for CNI plugins, run on a real [`Sim`] node through [`SimNetHost`].
//!
//! [`check_cni_plugin`] takes a [`CniRuntime`] holding the plugins under test (register yours
//! in [`CniRuntime::plugins_mut`]) and a network configuration that uses them, and checks:
//! - ADD then CHECK passes, for `pods` pods, and their addresses are unique;
//! - DEL is idempotent, and addresses are freed: after deleting every pod, as many new pods
//!   get addresses again (choose `pods` above half the IPAM pool to make this bite);
//! - ADD into a missing network namespace fails, and DEL after the failed ADD succeeds;
//! - GC (configurations at 1.1.0 or later) removes only leftovers: state naming a
//!   non-valid attachment is gone, state naming only valid ones is untouched, and the valid
//!   attachments still pass CHECK;
//! - VERSION lists what ADD accepts: ADD succeeds at every version (from 0.4.0, where CHECK
//!   exists, up to the configuration's own) that every plugin of the list advertises, and a
//!   version none advertises is refused with code 1;
//! - every error carries a spec code: a well-known one (1-7, 11, 50, 51) or 100 and up.
//!
//! ```
//! use kns_core::cni::CniRuntime;
//! use kns_sim::cni_check::check_cni_plugin;
//!
//! let ptp = r#"{"cniVersion": "1.1.0", "name": "ptpnet", "type": "ptp",
//!   "ipam": {"type": "host-local", "subnet": "10.1.1.0/28"}}"#;
//! check_cni_plugin(&CniRuntime::with_reference_plugins(), ptp, 10, 1).unwrap();
//! ```

use std::collections::{BTreeMap, BTreeSet};

use kns_core::cni::plugin::version_at_least;
use kns_core::cni::{
    Attachment, CniError, CniResult, CniRuntime, MemFiles, NetConfList, RuntimeConf,
};

use crate::Sim;
use crate::cni_host::{SimNetHost, netns_path};
use crate::net::NetnsId;

/// A broken CNI contract: which property, and what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{property}: {detail}")]
pub struct CniCheckError {
    /// The property, as listed in the module documentation.
    pub property: &'static str,
    /// What was observed.
    pub detail: String,
}

fn fail<T>(property: &'static str, detail: impl Into<String>) -> Result<T, CniCheckError> {
    Err(CniCheckError { property, detail: detail.into() })
}

/// Whether `code` is one the CNI spec allows a plugin to return.
pub fn is_spec_code(code: u32) -> bool {
    matches!(code, 1..=7 | 11 | 50 | 51) || code >= 100
}

/// One node with its files and the runtime under test.
struct Node<'r> {
    sim: Sim,
    node: NetnsId,
    files: MemFiles,
    cni: &'r CniRuntime,
}

impl Node<'_> {
    fn host(&mut self) -> SimNetHost<'_> {
        SimNetHost::new(&mut self.sim, self.node, &mut self.files)
    }

    fn pod(&mut self, name: &str) -> Result<RuntimeConf, CniCheckError> {
        if let Err(e) = self.sim.netns_add(name) {
            return fail("setup", format!("netns {name}: {e:?}"));
        }
        Ok(rt(name))
    }

    /// Runs a CNI operation; an error with a non-spec code is a broken contract.
    fn op<T>(
        &mut self,
        what: &str,
        pod: &RuntimeConf,
        f: impl FnOnce(&CniRuntime, &mut SimNetHost<'_>) -> Result<T, CniError>,
    ) -> Result<Result<T, CniError>, CniCheckError> {
        let cni = self.cni;
        let r = f(cni, &mut self.host());
        if let Err(e) = &r
            && !is_spec_code(e.code)
        {
            return fail(
                "errors use spec codes",
                format!("{what} {}: code {} ({})", pod.container_id, e.code, e.msg),
            );
        }
        Ok(r)
    }

    fn add(&mut self, net: &NetConfList, pod: &RuntimeConf) -> Result<CniResult, CniCheckError> {
        match self.op("ADD", pod, |c, h| c.add(h, net, pod))? {
            Ok(r) => Ok(r),
            Err(e) => fail("ADD then CHECK passes", format!("ADD {}: {e}", pod.container_id)),
        }
    }

    fn check(&mut self, net: &NetConfList, pod: &RuntimeConf) -> Result<(), CniCheckError> {
        match self.op("CHECK", pod, |c, h| c.check(h, net, pod))? {
            Ok(()) => Ok(()),
            Err(e) => fail("ADD then CHECK passes", format!("CHECK {}: {e}", pod.container_id)),
        }
    }

    fn del(
        &mut self,
        net: &NetConfList,
        pod: &RuntimeConf,
        property: &'static str,
    ) -> Result<(), CniCheckError> {
        match self.op("DEL", pod, |c, h| c.del(h, net, pod))? {
            Ok(()) => Ok(()),
            Err(e) => fail(property, format!("DEL {}: {e}", pod.container_id)),
        }
    }
}

fn rt(pod: &str) -> RuntimeConf {
    RuntimeConf {
        container_id: format!("ctr-{pod}"),
        netns: netns_path(pod),
        ifname: "eth0".into(),
        ..Default::default()
    }
}

fn addresses(r: &CniResult) -> Vec<String> {
    r.ips.iter().map(|i| i.address.addr().to_string()).collect()
}

/// A fresh node (`node-a`, seeded with `seed`) with `config` installed.
fn node<'r>(
    cni: &'r CniRuntime,
    config: &str,
    seed: u64,
) -> Result<(Node<'r>, NetConfList), CniCheckError> {
    let mut sim = Sim::new(seed);
    let node = match sim.netns_add("node-a") {
        Ok(n) => n,
        Err(e) => return fail("setup", format!("{e:?}")),
    };
    if let Err(e) = sim.link_set_up(node, "lo", true) {
        return fail("setup", format!("{e:?}"));
    }
    let mut n = Node { sim, node, files: MemFiles::new(), cni };
    // Fixed-width pod numbers below keep one container ID from being a prefix of another.
    let file = if config.contains("\"plugins\"") { "10-check.conflist" } else { "10-check.conf" };
    CniRuntime::install_config(&mut n.host(), file, config);
    let host = SimNetHost::new(&mut n.sim, n.node, &mut n.files);
    let net = match cni.load_config(&host) {
        Ok(loaded) => loaded.list,
        Err(e) => return fail("setup", format!("the configuration does not load: {e}")),
    };
    Ok((n, net))
}

/// Checks the CNI contract for `config` (a `.conf` or `.conflist` text) with `pods` pods on
/// a node seeded with `seed`; see the module documentation.
pub fn check_cni_plugin(
    cni: &CniRuntime,
    config: &str,
    pods: usize,
    seed: u64,
) -> Result<(), CniCheckError> {
    let (mut n, net) = node(cni, config, seed)?;
    let version = net.effective_version().to_string();
    let can_check = version_at_least(&version, "0.4.0");

    // ADD then CHECK, unique addresses.
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    let mut confs = Vec::new();
    for i in 0..pods {
        let pod = n.pod(&format!("pod-{i:04}"))?;
        let r = n.add(&net, &pod)?;
        if r.ips.is_empty() {
            return fail(
                "ADD then CHECK passes",
                format!("ADD {} gave no address", pod.container_id),
            );
        }
        for a in addresses(&r) {
            if let Some(other) = owner.insert(a.clone(), pod.container_id.clone()) {
                return fail(
                    "unique addresses",
                    format!("{a} given to {other} and {}", pod.container_id),
                );
            }
        }
        if can_check {
            n.check(&net, &pod)?;
        }
        confs.push(pod);
    }

    // A failed ADD, then DEL.
    let ghost = rt("no-such-netns");
    if n.op("ADD", &ghost, |c, h| c.add(h, &net, &ghost))?.is_ok() {
        return fail("DEL after a failed ADD is safe", "ADD into a missing netns succeeded");
    }
    n.del(&net, &ghost, "DEL after a failed ADD is safe")?;

    // GC keeps the valid half.
    if version_at_least(&version, "1.1.0") && !net.disable_gc {
        let valid: Vec<&RuntimeConf> = confs.iter().step_by(2).collect();
        let stale: Vec<&RuntimeConf> = confs.iter().skip(1).step_by(2).collect();
        let attachments: Vec<Attachment> = valid
            .iter()
            .map(|p| Attachment { container_id: p.container_id.clone(), ifname: p.ifname.clone() })
            .collect();
        let before: BTreeMap<String, String> = n
            .files
            .paths()
            .map(|p| (p.to_string(), n.files.read(p).unwrap_or("").to_string()))
            .collect();
        let mentions =
            |text: &str, pods: &[&RuntimeConf]| pods.iter().any(|p| text.contains(&p.container_id));
        let gc = n.op("GC", &ghost, |c, h| c.gc(h, &net, &attachments))?;
        if let Err(e) = gc {
            return fail("GC removes only leftovers", format!("GC failed: {e}"));
        }
        for (path, text) in &before {
            let now = n.files.read(path).ok();
            let keeps_valid = mentions(text, &valid) || mentions(path, &valid);
            let names_stale = mentions(text, &stale) || mentions(path, &stale);
            if keeps_valid && !names_stale && now != Some(text.as_str()) {
                return fail(
                    "GC removes only leftovers",
                    format!("{path} of a valid attachment changed"),
                );
            }
        }
        for path in n.files.paths() {
            let text = n.files.read(path).unwrap_or("");
            if mentions(text, &stale) || mentions(path, &stale) {
                return fail(
                    "GC removes only leftovers",
                    format!("{path} still names a stale attachment"),
                );
            }
        }
        if can_check {
            for p in valid {
                n.check(&net, p)?;
            }
        }
    }

    // DEL twice, then as many pods again.
    for pod in &confs {
        n.del(&net, pod, "DEL is idempotent")?;
        n.del(&net, pod, "DEL is idempotent")?;
    }
    for i in 0..pods {
        let pod = n.pod(&format!("again-{i:04}"))?;
        if let Err(e) = n.add(&net, &pod) {
            return fail("DEL frees addresses", format!("after deleting every pod: {}", e.detail));
        }
    }

    versions(cni, config, &net, seed)
}

/// VERSION lists what ADD accepts (and a version nobody lists is refused with code 1).
fn versions(
    cni: &CniRuntime,
    config: &str,
    net: &NetConfList,
    seed: u64,
) -> Result<(), CniCheckError> {
    let own = net.effective_version().to_string();
    let mut common: Option<BTreeSet<String>> = None;
    for p in &net.plugins {
        let info = match cni.version(&p.plugin_type) {
            Ok(i) => i,
            Err(e) => {
                return fail(
                    "VERSION lists what ADD accepts",
                    format!("VERSION {}: {e}", p.plugin_type),
                );
            }
        };
        if !info.supported_versions.contains(&own) {
            return fail(
                "VERSION lists what ADD accepts",
                format!("{} accepted ADD at {own} but does not list it", p.plugin_type),
            );
        }
        let set: BTreeSet<String> = info.supported_versions.into_iter().collect();
        common = Some(match common {
            None => set,
            Some(c) => c.intersection(&set).cloned().collect(),
        });
    }
    let listed = common.unwrap_or_default();
    let (mut n, _) = node(cni, config, seed)?;
    let mut try_add = |v: &str, i: usize| -> Result<Result<CniResult, CniError>, CniCheckError> {
        let mut list = net.clone();
        list.cni_version = v.to_string();
        list.cni_versions.clear();
        let pod = n.pod(&format!("v{i}"))?;
        n.op("ADD", &pod, |c, h| c.add(h, &list, &pod))
    };
    let wanted =
        listed.iter().filter(|v| version_at_least(v, "0.4.0") && version_at_least(&own, v));
    for (i, v) in wanted.enumerate() {
        if let Err(e) = try_add(v, i)? {
            return fail(
                "VERSION lists what ADD accepts",
                format!("ADD at listed version {v}: {e}"),
            );
        }
    }
    match try_add("9.9.9", 999)? {
        Ok(_) => fail("VERSION lists what ADD accepts", "ADD at unlisted version 9.9.9 succeeded"),
        Err(e) if e.code == 1 => Ok(()),
        Err(e) => {
            fail("errors use spec codes", format!("ADD at 9.9.9: code {} instead of 1", e.code))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_codes() {
        assert!(is_spec_code(1) && is_spec_code(51) && is_spec_code(999));
        assert!(!is_spec_code(0) && !is_spec_code(8) && !is_spec_code(99));
    }
}
