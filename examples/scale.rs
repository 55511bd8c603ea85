//! How kns scales: build a whole cluster, compute its full policy matrix, and send a sample
//! of real connections through it.
//!
//! ```sh
//! cargo run --release --example scale -- --pods 10000 --nodes 100 --policies 1000 --services 1000
//! cargo run --release --example scale -- --pods 2000 --nodes 20 -o json   # machine-readable
//! ```
//!
//! 1. **Build.** A synthetic cluster (`kns_core::testing::synthetic_cluster`: pods with app
//!    and tier labels in `pods / 50` namespaces, policies of every shape) spread evenly over
//!    the nodes, plus ClusterIP Services (every tenth a NodePort) selecting pods by `app`. It is
//!    brought to life the real way (`ClusterNet::build`): per node a namespace, `cni0` bridge,
//!    host-gw routes, SNAT, policy agent and kube-proxy; per pod a namespace, a smoltcp stack,
//!    the CNI loopback + bridge + host-local + portmap chain and an agnhost-like server. A
//!    progress bar on standard error follows the pods (hidden when it is not a terminal).
//! 2. **Policy matrix.** Every pod to every pod on 80/TCP with the indexed (bitset) engine;
//!    the reference engine judges a sample of the same pairs, which must agree, and its time
//!    for the full matrix is extrapolated from the sample.
//! 3. **Packet probes.** A seeded sample of pod pairs opens real TCP connections to port 80
//!    through the emulated network, `--concurrency` at a time; each outcome (connected or
//!    refused = reachable, timed out = dropped) must equal the policy matrix. A probe that timed
//!    out where the policies allow it is tried once more alone, as the packet matrix does (a
//!    burst can overflow a device queue). A tenth as many probes go to Service cluster IPs.
//!
//! Prints a table (or `-o json`): build time, peak memory (`VmHWM` from `/proc/self/status`,
//! Linux only, else "n/a"), memory per pod, matrix time, frames per second and probes per second.
//! Exits with 1 when a probe disagrees with the policy matrix.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};
use kns::core::flow::{Flow, PortProtocol, Protocol};
use kns::core::model::{
    Cluster, Node, NodeId, PortRef, Service, ServiceId, ServicePort, ServiceType, TrafficPolicy,
};
use kns::core::policy::{PolicyEngine, ReferenceEngine, fast_matrix};
use kns::core::proxy::mix;
use kns::core::testing::synthetic_cluster;
use kns::sim::cluster::{ClusterNet, ClusterOptions, Source, delivered};
use kns::sim::stack::SmolStack;
use kns::sim::stack::apps::{ConnectProbe, ProbeConfig, ProbeOutcome, ProbeSpec};

/// The scale run's knobs.
#[derive(Debug, Parser)]
#[command(about = "Build a cluster, compute its policy matrix and probe it with real packets")]
struct Args {
    /// Pods, spread evenly over the nodes (at most 250 per node).
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Nodes (at most 1,024).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// NetworkPolicies.
    #[arg(long, default_value_t = 1_000)]
    policies: usize,
    /// Namespaces the pods and policies are spread over (default: one per 50 pods).
    #[arg(long)]
    namespaces: Option<usize>,
    /// Services (ClusterIP, every tenth a NodePort).
    #[arg(long, default_value_t = 1_000)]
    services: usize,
    /// Packet probes between sampled pod pairs (plus a tenth as many to Services).
    #[arg(long, default_value_t = 2_000)]
    probes: usize,
    /// Probes in flight at once.
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// Pod pairs the reference engine judges (its full-matrix time is extrapolated).
    #[arg(long, default_value_t = 20_000)]
    reference_sample: usize,
    /// Seed of the cluster, the network and the probe sample.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table for people.
    Table,
    /// One JSON object, for scripts.
    Json,
}

/// Everything measured.
#[derive(Debug, Default)]
struct Report {
    pods: usize,
    nodes: usize,
    policies: usize,
    services: usize,
    build_secs: f64,
    build_cpu: Option<f64>,
    peak_bytes: Option<u64>,
    build_bytes: Option<u64>,
    matrix_secs: f64,
    matrix_cpu: Option<f64>,
    matrix_pairs: usize,
    allowed_pairs: usize,
    reference_sample: usize,
    reference_secs: f64,
    reference_cpu: Option<f64>,
    reference_disagreements: usize,
    probes: usize,
    probes_reachable: usize,
    probes_retried: usize,
    probe_disagreements: usize,
    service_probes: usize,
    service_probes_connected: usize,
    probe_secs: f64,
    probe_cpu: Option<f64>,
    frames: u64,
    virtual_secs: f64,
}

impl Report {
    fn reference_full_secs(&self) -> f64 {
        self.reference_secs / self.reference_sample.max(1) as f64 * self.matrix_pairs as f64
    }

    /// How many times faster the indexed matrix is than the reference engine's extrapolated
    /// full matrix, on CPU time when known (real time on a loaded machine is noisy).
    fn speedup(&self) -> f64 {
        match (self.reference_cpu, self.matrix_cpu) {
            (Some(r), Some(m)) if m > 0.0 => {
                r / self.reference_sample.max(1) as f64 * self.matrix_pairs as f64 / m
            }
            _ => self.reference_full_secs() / self.matrix_secs,
        }
    }

    fn per_pod_bytes(&self) -> Option<f64> {
        self.build_bytes.map(|b| b as f64 / self.pods.max(1) as f64)
    }

    fn all_probes(&self) -> usize {
        self.probes + self.service_probes
    }

    fn json(&self) -> String {
        let v = serde_json::json!({
            "pods": self.pods,
            "nodes": self.nodes,
            "policies": self.policies,
            "services": self.services,
            "build_seconds": self.build_secs,
            "build_cpu_seconds": self.build_cpu,
            "peak_memory_bytes": self.peak_bytes,
            "memory_per_pod_bytes": self.per_pod_bytes(),
            "matrix_seconds": self.matrix_secs,
            "matrix_cpu_seconds": self.matrix_cpu,
            "matrix_pairs": self.matrix_pairs,
            "matrix_allowed": self.allowed_pairs,
            "reference_sample_pairs": self.reference_sample,
            "reference_sample_seconds": self.reference_secs,
            "reference_sample_cpu_seconds": self.reference_cpu,
            "reference_full_matrix_seconds_extrapolated": self.reference_full_secs(),
            "reference_disagreements": self.reference_disagreements,
            "indexed_speedup": self.speedup(),
            "probes": self.probes,
            "probes_reachable": self.probes_reachable,
            "probes_retried": self.probes_retried,
            "probe_disagreements": self.probe_disagreements,
            "service_probes": self.service_probes,
            "service_probes_connected": self.service_probes_connected,
            "probe_seconds": self.probe_secs,
            "probe_cpu_seconds": self.probe_cpu,
            "frames_per_cpu_second": self.probe_cpu.map(|c| self.frames as f64 / c),
            "probes_per_second": self.all_probes() as f64 / self.probe_secs,
            "frames": self.frames,
            "frames_per_second": self.frames as f64 / self.probe_secs,
            "virtual_seconds": self.virtual_secs,
        });
        format!("{v:#}\n")
    }

    fn table(&self) -> String {
        let mut t = Table::new();
        t.load_style(comfy_table::presets::ASCII_MARKDOWN);
        t.set_header(["what", "figure"]);
        let mib = |b: f64| format!("{:.1} MiB", b / 1_048_576.0);
        t.add_row([
            "cluster".to_string(),
            format!(
                "{} pods on {} nodes, {} policies, {} Services",
                self.pods, self.nodes, self.policies, self.services
            ),
        ]);
        let cpu = |c: Option<f64>| c.map_or(String::new(), |c| format!(" ({c:.2} s CPU)"));
        t.add_row([
            "build time".to_string(),
            format!("{:.2} s{}", self.build_secs, cpu(self.build_cpu)),
        ]);
        t.add_row([
            "peak memory".to_string(),
            self.peak_bytes.map_or("n/a".to_string(), |b| mib(b as f64)),
        ]);
        t.add_row([
            "memory per pod".to_string(),
            self.per_pod_bytes().map_or("n/a".to_string(), |b| {
                format!("{:.1} KiB (resident growth during the build)", b / 1024.0)
            }),
        ]);
        t.add_row([
            "matrix time".to_string(),
            format!(
                "{:.3} s{} for {} pairs on 80/TCP, indexed engine ({:.1} M pairs/s; {} allowed)",
                self.matrix_secs,
                cpu(self.matrix_cpu),
                self.matrix_pairs,
                self.matrix_pairs as f64 / self.matrix_secs / 1e6,
                self.allowed_pairs
            ),
        ]);
        t.add_row([
            "reference engine".to_string(),
            format!(
                "{:.3} s{} for {} sampled pairs ({} disagree): {:.1} s for the full matrix, extrapolated; indexed is {:.0}x faster",
                self.reference_secs,
                cpu(self.reference_cpu),
                self.reference_sample,
                self.reference_disagreements,
                self.reference_full_secs(),
                self.speedup()
            ),
        ]);
        t.add_row([
            "packet probes".to_string(),
            format!(
                "{} pod pairs, {} reachable, {} retried, {} differ from the policy matrix; {} to Services, {} connected",
                self.probes,
                self.probes_reachable,
                self.probes_retried,
                self.probe_disagreements,
                self.service_probes,
                self.service_probes_connected
            ),
        ]);
        t.add_row([
            "probes per second".to_string(),
            format!(
                "{:.0} ({} probes in {:.2} s real{}, {:.1} s virtual)",
                self.all_probes() as f64 / self.probe_secs,
                self.all_probes(),
                self.probe_secs,
                cpu(self.probe_cpu),
                self.virtual_secs
            ),
        ]);
        t.add_row([
            "frames per second".to_string(),
            format!(
                "{:.0} ({} frames; {})",
                self.frames as f64 / self.probe_secs,
                self.frames,
                self.probe_cpu.map_or("CPU time n/a".to_string(), |c| format!(
                    "{:.0} per CPU second",
                    self.frames as f64 / c
                ))
            ),
        ]);
        format!("{t}\n")
    }
}

/// A stopwatch of real time and of this thread's CPU time (`/proc/thread-self/schedstat`,
/// Linux): on a shared machine the CPU time is what the work cost, the real time what it took.
struct Clock {
    wall: Instant,
    cpu: Option<u64>,
}

impl Clock {
    fn start() -> Clock {
        Clock { wall: Instant::now(), cpu: cpu_ns() }
    }

    /// (real seconds, CPU seconds if known) since `start`.
    fn read(&self) -> (f64, Option<f64>) {
        let cpu = self.cpu.zip(cpu_ns()).map(|(a, b)| b.saturating_sub(a) as f64 / 1e9);
        (self.wall.elapsed().as_secs_f64(), cpu)
    }
}

/// Nanoseconds this thread has run on a CPU.
fn cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// A `/proc/self/status` field in bytes (Linux), e.g. `VmHWM` (peak resident) or `VmRSS`.
fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line =
        status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    let kib: u64 = line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The synthetic cluster of `args`, its pods spread evenly over the nodes, with Services.
fn cluster(args: &Args) -> Result<Cluster, String> {
    if !(1..=1024).contains(&args.nodes) {
        return Err(format!("--nodes {}: between 1 and 1,024", args.nodes));
    }
    let per_node = args.pods.div_ceil(args.nodes);
    if per_node > 250 {
        return Err(format!("{per_node} pods per node: at most 250 (one /24 each)"));
    }
    let namespaces = args.namespaces.unwrap_or(args.pods / 50).max(1);
    let mut c = synthetic_cluster(args.pods, namespaces, args.policies, args.seed);
    c.nodes.clear();
    let node_ip = |k: usize| Ipv4Addr::new(192, 168, (k / 250) as u8, (k % 250 + 1) as u8);
    for k in 0..args.nodes {
        c.nodes.push(Node {
            id: NodeId(k as u32),
            name: format!("node-{k}"),
            ip: IpAddr::V4(node_ip(k)),
            pod_cidr: format!("10.{}.{}.0/24", 244 + k / 256, k % 256).parse().expect("valid"),
            labels: Default::default(),
        });
    }
    c.config.node_cidr = "192.168.0.0/16".parse().expect("valid");
    c.config.pod_cidr = "10.244.0.0/14".parse().expect("valid");
    for (i, pod) in c.pods.iter_mut().enumerate() {
        let (k, j) = (i / per_node, i % per_node);
        let ip = IpAddr::V4(Ipv4Addr::new(10, (244 + k / 256) as u8, (k % 256) as u8, j as u8 + 2));
        pod.node = NodeId(k as u32);
        pod.ip = ip;
        pod.ips = vec![ip];
    }
    let first = u32::from(Ipv4Addr::new(10, 96, 0, 10));
    for i in 0..args.services {
        let node_port = i % 10 == 9;
        let namespace = c.namespaces[i % namespaces].id;
        let app = format!("app-{}", mix(args.seed ^ i as u64) % 20);
        c.services.push(Service {
            id: ServiceId::from_index(i),
            name: format!("svc-{i}"),
            namespace,
            service_type: if node_port { ServiceType::NodePort } else { ServiceType::ClusterIP },
            cluster_ip: Some(IpAddr::V4(Ipv4Addr::from(first + i as u32))),
            selector: Some([("app".to_string(), app)].into_iter().collect()),
            ports: vec![ServicePort {
                name: Some("http".into()),
                protocol: Protocol::Tcp,
                port: 80,
                target_port: PortRef::Name("http".into()),
                node_port: node_port.then(|| 30_000 + (i / 10) as u16),
            }],
            external_name: None,
            external_ips: Vec::new(),
            load_balancer_ips: Vec::new(),
            session_affinity_timeout: None,
            external_traffic_policy: TrafficPolicy::Cluster,
            internal_traffic_policy: TrafficPolicy::Cluster,
            publish_not_ready_addresses: false,
        });
    }
    Ok(c)
}

/// A progress bar on standard error, hidden when standard error is not a terminal.
fn bar(len: usize, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {elapsed}")
        .expect("valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// Runs `specs` (source pod, destination, protocol) as concurrent probes, `concurrency` at a
/// time, and returns their outcomes in order.
fn probe_all(
    net: &mut ClusterNet,
    specs: &[(Source, SocketAddr)],
    concurrency: usize,
    progress: &ProgressBar,
) -> Result<Vec<ProbeOutcome>, String> {
    let mut out = Vec::with_capacity(specs.len());
    for chunk in specs.chunks(concurrency.max(1)) {
        let mut running = Vec::with_capacity(chunk.len());
        for &(source, to) in chunk {
            let ns = net.source_ns(source).map_err(|e| e.to_string())?;
            let stack = net.sim_mut().stack_mut::<SmolStack>(ns).ok_or("a pod without a stack")?;
            let spec = ProbeSpec::new(to, Protocol::Tcp);
            let id = stack.spawn(ConnectProbe::new(spec, ProbeConfig::default()));
            net.sim_mut().kick(ns);
            running.push((ns, id));
        }
        net.sim_mut().run_until_idle(u64::MAX).map_err(|e| e.to_string())?;
        for (ns, id) in running {
            let stack = net.sim_mut().stack_mut::<SmolStack>(ns).ok_or("a pod without a stack")?;
            let result = stack.app::<ConnectProbe>(id).and_then(|p| p.result());
            let result = result.ok_or_else(|| format!("a probe from {ns:?} did not finish"))?;
            out.push(result.outcome.clone());
        }
        progress.inc(chunk.len() as u64);
    }
    Ok(out)
}

fn run(args: &Args) -> Result<Report, String> {
    let model = cluster(args)?;
    let mut report = Report {
        pods: args.pods,
        nodes: args.nodes,
        policies: args.policies,
        services: args.services,
        ..Report::default()
    };

    // 1. Build.
    let progress = bar(args.pods, "pods");
    let rss0 = proc_status("VmRSS");
    let start = Clock::start();
    let options = ClusterOptions { seed: args.seed, ..ClusterOptions::default() };
    let mut net = ClusterNet::build_with_progress(model, options, &mut |done, _| {
        if done % 64 == 0 {
            progress.set_position(done as u64);
        }
    })
    .map_err(|e| format!("the cluster does not build: {e}"))?;
    (report.build_secs, report.build_cpu) = start.read();
    progress.finish_and_clear();
    report.build_bytes = rss0.zip(proc_status("VmRSS")).map(|(a, b)| b.saturating_sub(a));

    // 2. The full policy matrix, and the reference engine on a sample of it.
    let port = PortProtocol::new(80, Protocol::Tcp);
    let start = Clock::start();
    let matrix = fast_matrix(net.cluster(), &[port]);
    (report.matrix_secs, report.matrix_cpu) = start.read();
    let n = matrix.pods().len();
    report.matrix_pairs = n * n;
    report.allowed_pairs = matrix.allowed_count();
    let pair = |k: u64, salt: u64| {
        let h = mix(args.seed ^ salt ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        ((h % n as u64) as usize, ((h >> 32) % n as u64) as usize)
    };
    let sample: Vec<(usize, usize)> =
        (0..args.reference_sample as u64).map(|k| pair(k, 0x5eed)).collect();
    let start = Clock::start();
    let verdicts: Vec<bool> = sample
        .iter()
        .map(|&(f, t)| {
            let flow = Flow::pods(matrix.pods()[f], matrix.pods()[t], port);
            ReferenceEngine.evaluate(net.cluster(), &flow).allowed
        })
        .collect();
    (report.reference_secs, report.reference_cpu) = start.read();
    report.reference_sample = sample.len();
    report.reference_disagreements =
        sample.iter().zip(&verdicts).filter(|&(&(f, t), &v)| matrix.allowed(0, f, t) != v).count();

    // 3. Packet probes: pod pairs (checked against the matrix), then Services.
    let pairs: Vec<(usize, usize)> = (0..args.probes as u64).map(|k| pair(k, 0xbeef)).collect();
    let mut specs: Vec<(Source, SocketAddr)> = pairs
        .iter()
        .map(|&(f, t)| {
            let to = net.cluster().pod(matrix.pods()[t]).ip;
            (Source::Pod(matrix.pods()[f]), SocketAddr::new(to, 80))
        })
        .collect();
    let services: Vec<IpAddr> =
        net.cluster().services.iter().filter_map(|s| s.cluster_ip).collect();
    if !services.is_empty() {
        for k in 0..(args.probes / 10) as u64 {
            let (f, _) = pair(k, 0x5e77);
            let svc = services[(mix(k ^ 0x51c) % services.len() as u64) as usize];
            specs.push((Source::Pod(matrix.pods()[f]), SocketAddr::new(svc, 80)));
        }
    }
    let progress = bar(specs.len(), "probes");
    let (sent0, virtual0) = (net.sim().conservation().sent, net.sim().now());
    let start = Clock::start();
    let mut outcomes = probe_all(&mut net, &specs, args.concurrency, &progress)?;
    // A probe lost to a full queue in a burst is tried again alone.
    for (i, &(f, t)) in pairs.iter().enumerate() {
        if matrix.allowed(0, f, t) && outcomes[i] == ProbeOutcome::Filtered {
            let (source, to) = specs[i];
            let again = net
                .probe(source, to, Protocol::Tcp, ProbeConfig::default())
                .map_err(|e| e.to_string())?;
            outcomes[i] = again.outcome;
            report.probes_retried += 1;
        }
    }
    (report.probe_secs, report.probe_cpu) = start.read();
    progress.finish_and_clear();
    report.frames = net.sim().conservation().sent - sent0;
    report.virtual_secs = (net.sim().now() - virtual0).as_secs_f64();
    report.probes = pairs.len();
    report.probes_reachable = outcomes[..pairs.len()].iter().filter(|o| delivered(o)).count();
    report.probe_disagreements = pairs
        .iter()
        .zip(&outcomes)
        .filter(|&(&(f, t), o)| delivered(o) != matrix.allowed(0, f, t))
        .count();
    report.service_probes = specs.len() - pairs.len();
    report.service_probes_connected = outcomes[pairs.len()..]
        .iter()
        .filter(|o| matches!(o, ProbeOutcome::Connected { .. }))
        .count();
    report.peak_bytes = proc_status("VmHWM");
    Ok(report)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            match args.output {
                Format::Table => print!("{}", report.table()),
                Format::Json => print!("{}", report.json()),
            }
            if report.probe_disagreements + report.reference_disagreements > 0 {
                eprintln!("error: packet or reference verdicts differ from the policy matrix");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
