//! A small L4 proxy written with tokio's `copy_bidirectional`, running in a pod of a living
//! cluster between a client pod and a backend pod; a NetworkPolicy, enforced by the cluster's
//! policy agent, lets only the proxy reach the backend.
//!
//! The cluster comes from `examples/manifests/aio-proxy.yaml` (two nodes, cluster DNS, pods
//! `client`, `proxy`, `backend` in namespace `shop`, a Service for the proxy and one for the
//! backend, and the policy `backend-only-from-proxy`). The client asks `proxy:9000` five
//! times; the proxy forwards each connection to `backend:8080`, which answers in capitals.
//! Then the client tries `backend:8080` itself: its SYNs are dropped by the policy and its 3 s
//! timeout fires, in virtual time. Node links carry 100 µs each way.
//!
//! Run with `cargo run -p kns-sim --example aio_proxy [SEED]`.

use std::error::Error;
use std::time::Duration;

use kns_core::manifest::load_str;
use kns_sim::Sim;
use kns_sim::aio::{self, AsyncSim, TcpListener, TcpStream};
use kns_sim::cluster::{ClusterNet, ClusterOptions};
use kns_sim::net::{LinkParams, NetnsId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MANIFEST: &str = include_str!("../../examples/manifests/aio-proxy.yaml");

/// What a run showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRun {
    /// The backend's replies through the proxy.
    pub via_proxy: Vec<String>,
    /// Whether the client's direct connection to the backend timed out.
    pub direct_timed_out: bool,
    /// How long the direct attempt waited (virtual time).
    pub direct_waited: Duration,
    /// Packets the policy agent dropped.
    pub dropped: u64,
    /// The printed report.
    pub report: String,
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    let seed = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(7);
    let wall = std::time::Instant::now();
    let run = run(seed)?;
    print!("{}", run.report);
    println!("(the run took {:?} of real time)", wall.elapsed());
    Ok(())
}

/// The backend: reads one message and answers it in capitals.
async fn backend() -> std::io::Result<()> {
    let listener = TcpListener::bind("0.0.0.0:8080").await?;
    loop {
        let (mut s, _) = listener.accept().await?;
        aio::spawn(async move {
            let mut line = [0u8; 64];
            let n = s.read(&mut line).await.unwrap_or(0);
            let reply = String::from_utf8_lossy(&line[..n]).to_uppercase();
            let _ = s.write_all(reply.as_bytes()).await;
        })?;
    }
}

/// The proxy: every connection on 9000 is joined to a new one to `backend:8080`.
async fn proxy(log: std::rc::Rc<std::cell::RefCell<Vec<String>>>) -> std::io::Result<()> {
    let listener = TcpListener::bind("0.0.0.0:9000").await?;
    loop {
        let (mut inbound, from) = listener.accept().await?;
        let log = log.clone();
        aio::spawn(async move {
            let mut outbound = TcpStream::connect("backend:8080").await?;
            let (up, down) = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await?;
            log.borrow_mut().push(format!(
                "  proxy: {from} -> {} done, {up} bytes up, {down} bytes down",
                outbound.peer_addr()?
            ));
            Ok::<(), std::io::Error>(())
        })?;
    }
}

fn pod_ns(net: &ClusterNet, name: &str) -> Result<NetnsId, Box<dyn Error>> {
    let c = net.cluster();
    let shop = c.namespace_by_name("shop").ok_or("no shop namespace")?.id;
    let p = c.pods.iter().find(|p| p.namespace == shop && p.name == name);
    Ok(p.and_then(|p| net.pod_ns(p.id)).ok_or_else(|| format!("pod {name} is not running"))?)
}

/// Builds the cluster with `seed` and runs the client.
pub fn run(seed: u64) -> Result<ProxyRun, Box<dyn Error>> {
    let cluster = load_str("aio-proxy.yaml", MANIFEST)?.cluster;
    let mut net = ClusterNet::build(cluster, ClusterOptions { seed, ..ClusterOptions::default() })?;
    // 100 µs each way on every node's link to the node network.
    let link = LinkParams { latency: Duration::from_micros(100), ..LinkParams::default() };
    for k in 0..net.nodes().len() {
        net.sim_mut().link_set_params(Sim::ROOT, &format!("n{k}"), link.clone())?;
    }
    let mut report = String::new();
    for p in &net.cluster().policies {
        report += &format!("NetworkPolicy {}: enforced by the policy agent\n", p.name);
    }
    let (client, proxy_ns, backend_ns) =
        (pod_ns(&net, "client")?, pod_ns(&net, "proxy")?, pod_ns(&net, "backend")?);
    let mut asim = AsyncSim::from_cluster(net);
    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    asim.spawn_in(backend_ns, backend());
    asim.spawn_in(proxy_ns, proxy(log.clone()));
    let (via_proxy, direct, waited) = asim
        .block_on(
            client,
            async {
                let mut replies = Vec::new();
                for i in 0..5 {
                    let t0 = aio::now().ok_or("outside a run")?;
                    let mut s = TcpStream::connect("proxy:9000").await?;
                    s.write_all(format!("hello {i}").as_bytes()).await?;
                    let mut reply = String::new();
                    s.read_to_string(&mut reply).await?;
                    let took = aio::now().ok_or("outside a run")?.saturating_since(t0);
                    replies.push((reply, took));
                }
                let t0 = aio::now().ok_or("outside a run")?;
                let direct = tokio::time::timeout(
                    Duration::from_secs(3),
                    TcpStream::connect("backend:8080"),
                )
                .await;
                let waited = aio::now().ok_or("outside a run")?.saturating_since(t0);
                let direct = match direct {
                    Err(_) => "timed out".to_string(),
                    Ok(Ok(s)) => format!("connected to {:?}", s.peer_addr()),
                    Ok(Err(e)) => format!("failed: {e}"),
                };
                Ok::<_, Box<dyn Error>>((replies, direct, waited))
            },
            Duration::from_secs(60),
        )?
        .map_err(|e| e.to_string())?;
    for (reply, took) in &via_proxy {
        report += &format!("client: proxy:9000 -> {reply:?} in {took:?} (virtual)\n");
    }
    for line in log.borrow().iter() {
        report += &format!("{line}\n");
    }
    report += &format!("client: backend:8080 directly -> {direct} after {waited:?} (virtual)\n");
    let dropped = asim
        .cluster()
        .and_then(|c| c.policy_agent().map(|a| a.stats().dropped))
        .ok_or("no policy agent")?;
    report += &format!("policy agent: {dropped} packets dropped (the SYN and its retries)\n");
    Ok(ProxyRun {
        via_proxy: via_proxy.into_iter().map(|(r, _)| r).collect(),
        direct_timed_out: direct == "timed out",
        direct_waited: waited,
        dropped,
        report,
    })
}
