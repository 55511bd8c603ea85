//! The `kns` command line: argument parsing, file loading and rendering. Decisions are made by
//! the library crates; this module only converts between them and the terminal.

mod cluster;
mod commands;
mod error;
mod graph;
mod html;
mod input;
mod net;
mod render;
mod scenario;
mod service;
mod svg;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use kns_core::PortProtocol;

pub use error::{CliError, EXIT_INTERNAL, EXIT_OK, EXIT_USER};
pub use graph::{GraphFormat, GraphOptions};
pub(crate) use input::read_sources;
pub use net::NetFormat;
pub use render::MatrixView;
pub use scenario::{ScenarioCommand, ScenarioFormat};
pub(crate) use service::split_url;

/// kns — a deterministic emulator of Kubernetes cluster networking.
#[derive(Debug, Parser)]
#[command(name = "kns", version, about, long_about = None)]
pub struct Cli {
    /// Log the engine's events on standard error (`-v` drops, `-vv` every hop of every frame).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats for matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatrixFormat {
    /// A grid per port for people.
    Table,
    /// `{"probes":[{"protocol","port","matrix":{from:{to:bool}}}]}`, keys sorted.
    Json,
    /// `protocol,port,from,to,allowed` lines.
    Csv,
    /// A self-contained HTML page: a colour grid per port, each cell's explanation on hover.
    Html,
}

/// How `kns matrix` decides reachability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatrixMode {
    /// Evaluate the NetworkPolicies (the semantics, no packets).
    Policy,
    /// Build the cluster and open a real connection for every pair and port: reachable when
    /// the connection is accepted or refused by the destination itself, unreachable when it
    /// is dropped (timed out) or answered with an ICMP error on the way.
    Packet,
}

/// Which policy engine computes `kns matrix --mode policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatrixEngine {
    /// `indexed` when the cluster has more than [`AUTO_INDEXED_ABOVE_PODS`] pods, else
    /// `reference`.
    Auto,
    /// kns-core's `ReferenceEngine`, one explained verdict per pair: the oracle, quadratic with
    /// a large constant (about a microsecond per pair).
    Reference,
    /// `fast_matrix`: per-policy bitsets over all pods, tested equal to the reference; tens
    /// of millions of pairs per second.
    Indexed,
}

/// `--engine auto` uses the indexed engine for clusters with more pods than this.
pub const AUTO_INDEXED_ABOVE_PODS: usize = 100;

impl MatrixEngine {
    /// The engine actually used for a cluster of `pods` pods (`Auto` resolved).
    pub fn resolve(self, pods: usize) -> MatrixEngine {
        match self {
            MatrixEngine::Auto if pods > AUTO_INDEXED_ABOVE_PODS => MatrixEngine::Indexed,
            MatrixEngine::Auto => MatrixEngine::Reference,
            chosen => chosen,
        }
    }
}

/// The `kns` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pod-to-pod reachability under the NetworkPolicies of the given manifests.
    Matrix {
        /// Manifest files or directories (repeatable; `-` reads standard input).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Port and protocol to probe, e.g. `80/TCP` (repeatable; default: every declared container port).
        #[arg(long = "port")]
        ports: Vec<PortProtocol>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = MatrixFormat::Table)]
        output: MatrixFormat,
        /// `policy` evaluates the policies; `packet` sends real packets through the cluster.
        #[arg(long, value_enum, default_value_t = MatrixMode::Policy)]
        mode: MatrixMode,
        /// Policy mode's engine: `reference` (rule by rule), `indexed` (bitsets) or `auto`
        /// (indexed above 100 pods). Both give the same matrix.
        #[arg(long, value_enum, default_value_t = MatrixEngine::Auto)]
        engine: MatrixEngine,
        /// Seed of every random choice (packet mode).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Draw the built cluster's topology (nodes, bridges, veths, pods, Services) as Graphviz
    /// DOT or SVG, optionally with the pod-to-pod connections the policies allow.
    Graph {
        /// Manifest files or directories (repeatable; `-` reads standard input).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Output format (`svg` uses Graphviz's `dot` when installed, else a built-in layout).
        #[arg(short = 'o', long = "output", value_enum, default_value_t = GraphFormat::Dot)]
        output: GraphFormat,
        /// Also draw the connections allowed between pods on this port, e.g. `8080/TCP`
        /// (repeatable).
        #[arg(long = "allowed", value_name = "PORT")]
        allowed: Vec<PortProtocol>,
        /// How `--allowed` decides: `policy` evaluates the policies, `packet` probes.
        #[arg(long, value_enum, default_value_t = MatrixMode::Policy)]
        mode: MatrixMode,
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Build the cluster of the manifests and print it: nodes, pods with their addresses,
    /// and each node's `ip addr` and `ip route`.
    Cluster {
        /// Manifest files or directories (repeatable; `-` reads standard input).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Open one connection through the emulated cluster and report how it ended.
    Probe {
        /// Manifest files or directories (repeatable; `-` reads standard input).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Source: a pod as `namespace/name`, a node name, or `internet`.
        #[arg(long)]
        from: String,
        /// Destination: a pod as `namespace/name`, an IP address, a Service as
        /// `svc/NAME.NAMESPACE`, or a DNS name resolved inside the source (the query and its
        /// answer are shown).
        #[arg(long)]
        to: String,
        /// Destination port and protocol, e.g. `80/TCP`.
        #[arg(long)]
        port: PortProtocol,
        /// Print every hop of every frame (devices, routes, tunnels, filters and verdicts) and
        /// kube-proxy's DNAT with the chosen backend.
        #[arg(long)]
        trace: bool,
        /// Capture the source's `eth0` into this pcap file.
        #[arg(long)]
        pcap: Option<PathBuf>,
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Ask the cluster DNS from inside a pod, as `dig` does (no search list).
    Dig {
        /// Manifest files or directories (repeatable; `-` reads standard input).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Source: a pod as `namespace/name`, a node name, or `internet`.
        #[arg(long)]
        from: String,
        /// The name to ask about.
        name: String,
        /// The record type (default `A`): A, AAAA, SRV, PTR, CNAME, ...
        #[arg(value_name = "TYPE")]
        qtype: Option<String>,
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// An HTTP GET from inside a pod: the host is resolved through the cluster DNS; prints the
    /// status line and the body.
    Curl {
        /// Manifest files or directories (repeatable; `-` reads standard input).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Source: a pod as `namespace/name`, a node name, or `internet`.
        #[arg(long)]
        from: String,
        /// `http://HOST[:PORT][/PATH]`; HOST may be a Service name.
        url: String,
        /// An extra request header, `Name: value` (repeatable); `Host: NAME` replaces the
        /// URL's host, as ingress routing needs.
        #[arg(short = 'H', long = "header", value_name = "HEADER")]
        headers: Vec<String>,
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Why one connection is allowed or denied, in plain words.
    Explain {
        /// Manifest files or directories (repeatable).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Source pod as `namespace/name`, or an IP address outside the cluster.
        #[arg(long)]
        from: String,
        /// Destination pod as `namespace/name`, or an IP address outside the cluster.
        #[arg(long)]
        to: String,
        /// Destination port and protocol, e.g. `80/TCP`.
        #[arg(long)]
        port: PortProtocol,
    },
    /// A guided tour from Linux networking to Kubernetes, run and checked live on the emulator.
    Tour {
        /// List the steps and stop.
        #[arg(long)]
        list: bool,
        /// Run only this step (1-based).
        #[arg(long)]
        step: Option<usize>,
        /// Wait for Enter between steps (only when standard input is a terminal).
        #[arg(long)]
        pause: bool,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = crate::tour::TourFormat::Text)]
        output: crate::tour::TourFormat,
    },
    /// The scenario library: clusters with expectations checked by real packets.
    Scenario {
        /// `list` or `run NAME`.
        #[command(subcommand)]
        command: ScenarioCommand,
    },
    /// An interactive shell on a living emulated cluster: ip, ping, traceroute, curl,
    /// nslookup/dig, kubectl get/apply/delete/exec and explain. Reads commands from standard
    /// input when it is not a terminal (echoed after the prompt; exit status 1 if any failed).
    Shell {
        /// Manifest files or directories (repeatable; default: the tour's two-node cluster
        /// with cluster DNS and a `web` Service).
        #[arg(short = 'f', long = "filename")]
        files: Vec<PathBuf>,
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run a script of Linux networking commands (ip, sysctl, iptables, tc, ping, traceroute,
    /// nc, curl) against a fresh emulated host, one command per line.
    Net {
        /// The script (`-` reads standard input).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = NetFormat::Text)]
        output: NetFormat,
        /// Seed of every random choice (same seed, same output).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print every frame's journey, hop by hop, under the command that sent it.
        #[arg(long)]
        trace: bool,
        /// Capture a device into a pcap file that Wireshark and tshark open:
        /// `NS:DEV=FILE` (`host:DEV=FILE` for the root namespace). Repeatable.
        #[arg(long = "capture", value_name = "NS:DEV=FILE")]
        captures: Vec<net::CaptureSpec>,
    },
}

/// Runs `kns` with the process arguments and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USER } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    init_logging(cli.verbose);
    if let Command::Tour { list, step, pause, output } = &cli.command {
        let opts =
            crate::tour::TourOptions { list: *list, step: *step, pause: *pause, format: *output };
        return std::panic::catch_unwind(|| crate::tour::main(opts)).unwrap_or_else(|panic| {
            eprint!("{}", CliError::Internal(panic_message(panic.as_ref())).render());
            EXIT_INTERNAL
        });
    }
    if let Command::Shell { files, seed } = &cli.command {
        let opts = crate::shell::ShellOptions { files: files.clone(), seed: *seed };
        return std::panic::catch_unwind(|| crate::shell::main(&opts)).unwrap_or_else(|panic| {
            eprint!("{}", CliError::Internal(panic_message(panic.as_ref())).render());
            EXIT_INTERNAL
        });
    }
    // A panic is a kns bug: report it as an internal error with its own exit code.
    if let Command::Net { file, output, seed, trace, captures } = &cli.command {
        // A script's results are printed even when a later line stops it.
        let opts = net::NetOptions { seed: *seed, trace: *trace, captures: captures.clone() };
        let result = std::panic::catch_unwind(|| net::net(file, *output, &opts));
        let (out, status) = result.unwrap_or_else(|panic| {
            (String::new(), Err(CliError::Internal(panic_message(panic.as_ref()))))
        });
        print!("{out}");
        return match status {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprint!("{}", e.render());
                e.exit_code()
            }
        };
    }
    if let Command::Scenario { command } = &cli.command {
        // A failed scenario still prints its report.
        let result = std::panic::catch_unwind(|| scenario::scenario(command));
        let (out, status) = result.unwrap_or_else(|panic| {
            (String::new(), Err(CliError::Internal(panic_message(panic.as_ref()))))
        });
        print!("{out}");
        return match status {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprint!("{}", e.render());
                e.exit_code()
            }
        };
    }
    let result = std::panic::catch_unwind(|| run(&cli));
    let result =
        result.unwrap_or_else(|panic| Err(CliError::Internal(panic_message(panic.as_ref()))));
    match result {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(output.as_bytes()).and_then(|()| stdout.flush()) {
                Ok(()) => EXIT_OK,
                // A closed pipe (`kns ... | head`) is not an error worth reporting.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
                Err(e) => {
                    eprintln!("error: writing output: {e}");
                    EXIT_USER
                }
            }
        }
        Err(e) => {
            eprint!("{}", e.render());
            e.exit_code()
        }
    }
}

/// Sends `tracing` events to standard error at the level `-v` asks for (none by default).
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing_subscriber::filter::LevelFilter::DEBUG,
        _ => tracing_subscriber::filter::LevelFilter::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Runs one parsed command and returns what it prints on standard output.
pub fn run(cli: &Cli) -> Result<String, CliError> {
    match &cli.command {
        Command::Matrix { files, ports, output, mode, engine, seed } => {
            commands::matrix(files, ports, *output, *mode, *engine, *seed)
        }
        Command::Cluster { files, seed } => cluster::cluster(files, *seed),
        Command::Graph { files, output, allowed, mode, seed } => {
            let opts = GraphOptions {
                output: *output,
                allowed: allowed.clone(),
                mode: *mode,
                seed: *seed,
            };
            graph::graph(files, &opts)
        }
        Command::Probe { files, from, to, port, trace, pcap, seed } => {
            let opts = cluster::ProbeOptions { trace: *trace, pcap: pcap.clone(), seed: *seed };
            cluster::probe(files, from, to, *port, &opts)
        }
        Command::Dig { files, from, name, qtype, seed } => {
            service::dig(files, from, name, qtype.as_deref(), *seed)
        }
        Command::Curl { files, from, url, headers, seed } => {
            service::curl(files, from, url, headers, *seed)
        }
        Command::Explain { files, from, to, port } => commands::explain(files, from, to, *port),
        Command::Net { file, output, seed, trace, captures } => {
            let opts = net::NetOptions { seed: *seed, trace: *trace, captures: captures.clone() };
            let (out, status) = net::net(file, *output, &opts);
            status.map(|()| out)
        }
        Command::Scenario { command } => {
            let (out, status) = scenario::scenario(command);
            status.map(|()| out)
        }
        Command::Shell { .. } => {
            Err(CliError::Usage("kns shell is interactive: run it from the command line".into()))
        }
        Command::Tour { list, step, pause: _, output } => {
            let opts = crate::tour::TourOptions {
                list: *list,
                step: *step,
                pause: false,
                format: *output,
            };
            crate::tour::collect(opts).map_err(CliError::Usage)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_engine_is_indexed_above_the_threshold() {
        let auto = MatrixEngine::Auto;
        assert_eq!(auto.resolve(0), MatrixEngine::Reference);
        assert_eq!(auto.resolve(AUTO_INDEXED_ABOVE_PODS), MatrixEngine::Reference);
        assert_eq!(auto.resolve(AUTO_INDEXED_ABOVE_PODS + 1), MatrixEngine::Indexed);
        assert_eq!(MatrixEngine::Reference.resolve(10_000), MatrixEngine::Reference);
        assert_eq!(MatrixEngine::Indexed.resolve(1), MatrixEngine::Indexed);
    }
}
