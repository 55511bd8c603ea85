//! Who may talk to whom: load Kubernetes YAML, compute the NetworkPolicy reachability matrix
//! for one port, and ask why one connection is allowed and another is not.
//!
//! Run with `cargo run --example policy_matrix`. Everything here is kns-core: pure functions
//! of the manifests, no packets involved (`cargo run -p kns-scenarios -- matrix` is the CLI).

use kns::core::manifest::Loader;
use kns::core::model::PodId;
use kns::core::policy::{self, PolicyEngine, ReferenceEngine};
use kns::core::{Cluster, Flow, FlowEnd, PortProtocol};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // kns-core does no I/O: we read the file and hand it the text (and a name for messages).
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/manifests/demo.yaml");
    let text = std::fs::read_to_string(path)?;
    let mut loader = Loader::new();
    loader.add("examples/manifests/demo.yaml", text);
    let loaded = loader.finish().map_err(|errors| errors.render())?;
    for warning in &loaded.warnings {
        println!("warning: {}", warning.render());
    }
    let cluster = loaded.cluster;

    // Deployments became pods with Kubernetes-like names, and the IPAM gave them addresses.
    println!("Pods:");
    let pods = cluster.pods_sorted();
    for (i, id) in pods.iter().enumerate() {
        let pod = cluster.pod(*id);
        println!("  {} {:<38} {}", i + 1, cluster.pod_ref(*id), pod.ip);
    }

    // The matrix: row = the pod that connects, column = the pod it connects to. `fast_matrix`
    // uses bitsets; the reference engine checks rule by rule. They must agree.
    let port: PortProtocol = "8080/TCP".parse()?;
    let fast = policy::fast_matrix(&cluster, &[port]);
    let reference = policy::matrix(&ReferenceEngine, &cluster, &[port]);
    assert!(fast.differences(&reference).is_empty(), "the two engines disagree");
    println!("\n{port}: {} of {} connections allowed", fast.allowed_count(), fast.cells());
    print!("  from \\ to  ");
    for to in 1..=fast.pods().len() {
        print!(" {to:>2}");
    }
    println!();
    for (from, id) in fast.pods().iter().enumerate() {
        print!("  {:>2} {:<8}", from + 1, short(&cluster, *id));
        for to in 0..fast.pods().len() {
            print!("  {}", if fast.allowed(0, from, to) { "✓" } else { "·" });
        }
        println!();
    }
    // Reading it: backend's default deny covers both directions, so the api rows are empty
    // (api may only reach postgres on 5432 and DNS) and the api columns admit only web. db
    // admits only api, and only on its `postgres` port, so nobody reaches it on 8080.
    // frontend and kube-system have no policies: anyone may connect to them. The diagonal
    // is a pod talking to itself, which kns always allows.

    // Why? The reference engine's verdict carries its reasons: a connection needs the source's
    // egress side and the destination's ingress side; a side that no policy isolates allows.
    let web = find(&cluster, "frontend/web-")?;
    let api = find(&cluster, "backend/api-")?;
    let db = find(&cluster, "db/postgres-")?;
    for (src, dst) in [(web, api), (web, db)] {
        let flow = Flow { src: FlowEnd::Pod(src), dst: FlowEnd::Pod(dst), port };
        let verdict = ReferenceEngine.evaluate(&cluster, &flow);
        println!("\n{}", verdict.explain(&cluster, &flow).trim_end());
    }
    Ok(())
}

/// The first pod whose `namespace/name` starts with `prefix`.
fn find(cluster: &Cluster, prefix: &str) -> Result<PodId, String> {
    cluster
        .pods_sorted()
        .into_iter()
        .find(|id| cluster.pod_ref(*id).starts_with(prefix))
        .ok_or_else(|| format!("no pod {prefix}* in demo.yaml"))
}

/// A row label: the first word of the pod's name (`web`, `api`, ...).
fn short(cluster: &Cluster, id: PodId) -> String {
    let name = &cluster.pod(id).name;
    name.split('-').next().unwrap_or(name).to_string()
}
