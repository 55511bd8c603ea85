//! A real HTTP server crate (hyper 1.x) in every pod of a Deployment behind a ClusterIP
//! Service, and a client pod that sends requests to the Service by name; prints how kube-proxy
//! spread them over the backends and a latency histogram, all in virtual time.
//!
//! The cluster comes from `examples/manifests/aio-web.yaml` (three nodes, cluster DNS, a
//! Deployment `web` of four pods, a Service `web` on port 80 → 8080, a client pod). Every
//! request resolves `web:80` through the cluster DNS with the client's resolv.conf, opens a
//! connection (kube-proxy picks a backend per connection) and asks `GET /`; each server
//! answers with its pod's name after some work. Node links carry 250 µs each way, so a backend
//! on another node costs more. Same seed, same output.
//!
//! Run with `cargo run -p kns-sim --example aio_http_spread [SEED]`.

#[path = "../tests/common/hyper_io.rs"]
mod hyper_io;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use kns_core::manifest::load_str;
use kns_sim::Sim;
use kns_sim::aio::{self, AsyncSim, TcpListener, TcpStream};
use kns_sim::cluster::{ClusterNet, ClusterOptions, Source};
use kns_sim::net::LinkParams;

use hyper_io::Io;

const MANIFEST: &str = include_str!("../../examples/manifests/aio-web.yaml");
/// Requests the client sends.
pub const REQUESTS: usize = 200;
/// Width of one histogram bucket.
const BUCKET: Duration = Duration::from_micros(500);

/// What a run showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spread {
    /// Requests answered by each backend pod, with the pod's node.
    pub per_backend: BTreeMap<String, (String, usize)>,
    /// Every request's latency (DNS lookup, connect, request, answer), in order.
    pub latencies: Vec<Duration>,
    /// The printed report.
    pub report: String,
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    let seed = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let wall = std::time::Instant::now();
    let spread = run(seed, REQUESTS)?;
    print!("{}", spread.report);
    println!("(the run took {:?} of real time)", wall.elapsed());
    Ok(())
}

/// An HTTP/1.1 server on port 8080 that answers every request with `pod` after a few
/// milliseconds of work that depends on the request number.
async fn serve(pod: String) -> std::io::Result<()> {
    let listener = TcpListener::bind("0.0.0.0:8080").await?;
    let served = Rc::new(std::cell::Cell::new(0u64));
    loop {
        let (stream, _) = listener.accept().await?;
        let (pod, served) = (pod.clone(), served.clone());
        aio::spawn(async move {
            let service =
                hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let (pod, served) = (pod.clone(), served.clone());
                    async move {
                        let n = served.get();
                        served.set(n + 1);
                        tokio::time::sleep(Duration::from_millis(1 + n * 7 % 4)).await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(pod))))
                    }
                });
            // A client that hangs up early is not the server's problem.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(Io(stream), service)
                .await;
        })?;
    }
}

/// One request to `http://web/`, on a new connection; returns the body.
async fn get_web(i: usize) -> Result<String, Box<dyn Error>> {
    let stream = TcpStream::connect("web:80").await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(Io(stream)).await?;
    aio::spawn(conn)?;
    let req = Request::get(format!("/?i={i}"))
        .header(hyper::header::HOST, "web")
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec())?)
}

/// Builds the cluster with `seed`, runs `requests` requests, and reports.
pub fn run(seed: u64, requests: usize) -> Result<Spread, Box<dyn Error>> {
    let cluster = load_str("aio-web.yaml", MANIFEST)?.cluster;
    let mut net = ClusterNet::build(cluster, ClusterOptions { seed, ..ClusterOptions::default() })?;
    // 250 µs each way on every node's link to the node network.
    let slow = LinkParams { latency: Duration::from_micros(250), ..LinkParams::default() };
    for k in 0..net.nodes().len() {
        net.sim_mut().link_set_params(Sim::ROOT, &format!("n{k}"), slow.clone())?;
    }
    let mut report = String::new();
    let c = net.cluster().clone();
    let prod = c.namespace_by_name("prod").ok_or("no prod namespace")?.id;
    let mut backends = BTreeMap::new();
    let mut client = None;
    for p in c.pods.iter().filter(|p| p.namespace == prod) {
        let ns = net.pod_ns(p.id).ok_or("a pod is not running")?;
        if p.name.starts_with("web-") {
            backends.insert(p.name.clone(), (c.nodes[p.node.index()].name.clone(), ns, p.ip));
        } else if p.name == "client" {
            client = Some((p.id, ns, c.nodes[p.node.index()].name.clone()));
        }
    }
    let (client_id, client_ns, client_node) = client.ok_or("no client pod")?;
    let conf = net.resolv_conf(Source::Pod(client_id))?;
    let svc = c.service_by_name("prod", "web").and_then(|s| s.cluster_ip).ok_or("no web")?;
    report += &format!("client pod on {client_node}, resolv.conf:\n");
    for line in conf.render().lines() {
        report += &format!("    {line}\n");
    }
    report += &format!("Service prod/web: ClusterIP {svc}, port 80 -> 8080\n");

    let mut asim = AsyncSim::from_cluster(net);
    for (name, (_, ns, _)) in &backends {
        asim.spawn_in(*ns, serve(name.clone()));
    }
    let resolved = asim.block_on(
        client_ns,
        async {
            let addrs: Vec<_> = aio::lookup_host("web:80").await?.collect();
            Ok::<_, std::io::Error>(addrs)
        },
        Duration::from_secs(60),
    )??;
    report += &format!("lookup_host(\"web:80\") from the client -> {resolved:?}\n");

    let answers = asim.block_on(
        client_ns,
        async move {
            let mut out = Vec::new();
            for i in 0..requests {
                let t0 = aio::now().ok_or("outside a run")?;
                let pod = get_web(i).await?;
                out.push((pod, aio::now().ok_or("outside a run")?.saturating_since(t0)));
            }
            Ok::<_, Box<dyn Error>>(out)
        },
        Duration::from_secs(600),
    )?;
    let answers = answers.map_err(|e| e.to_string())?;

    let mut per_backend: BTreeMap<String, (String, usize)> =
        backends.iter().map(|(name, (node, _, _))| (name.clone(), (node.clone(), 0))).collect();
    for (pod, _) in &answers {
        per_backend.get_mut(pod).ok_or_else(|| format!("unknown backend {pod}"))?.1 += 1;
    }
    report += &format!("\n{requests} requests to http://web/ (a new connection each):\n");
    for (pod, (node, n)) in &per_backend {
        let ip = backends[pod].2;
        report += &format!(
            "  {pod:<22} {ip:<12} {node:<7} {n:>4}  {}\n",
            "#".repeat((n * 40).div_ceil(requests.max(1)))
        );
    }
    let latencies: Vec<Duration> = answers.iter().map(|(_, d)| *d).collect();
    let mut histogram: BTreeMap<u128, usize> = BTreeMap::new();
    for d in &latencies {
        *histogram.entry(d.as_nanos() / BUCKET.as_nanos()).or_default() += 1;
    }
    report += "\nlatency (virtual time: lookup + connect + request + answer):\n";
    let (first, last) = match (histogram.keys().next(), histogram.keys().next_back()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => (0, 0),
    };
    for bucket in first..=last {
        let n = &histogram.get(&bucket).copied().unwrap_or(0);
        let lo = BUCKET * (bucket as u32);
        report += &format!(
            "  {:>6.1} - {:>6.1} ms {n:>4}  {}\n",
            lo.as_secs_f64() * 1e3,
            (lo + BUCKET).as_secs_f64() * 1e3,
            "#".repeat((n * 40).div_ceil(requests.max(1)))
        );
    }
    let mut sorted = latencies.clone();
    sorted.sort();
    if !sorted.is_empty() {
        let pct = |p: usize| sorted[(sorted.len() - 1) * p / 100];
        report += &format!(
            "  p50 {:?}  p90 {:?}  p99 {:?}  max {:?}\n",
            pct(50),
            pct(90),
            pct(99),
            sorted[sorted.len() - 1]
        );
    }
    report += &format!("virtual time at the end: {}\n", asim.now());
    Ok(Spread { per_backend, latencies, report })
}
