//! `kns net -f SCRIPT`: run a script of Linux networking commands against an emulated host.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use kns_sim::net::CaptureId;
use kns_sim::script::{ScriptReport, ScriptRunner, StepResult};
use serde::Serialize;

use super::error::CliError;

/// Output formats of `kns net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetFormat {
    /// A terminal transcript: each command after `$ `, then what it printed.
    Text,
    /// `{"results":[{"line":1,"command":"...","ok":true,"output":"..."}]}`.
    Json,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    results: &'a [StepResult],
}

/// Reads the script (`-` is standard input) and returns its name and text.
fn read_script(path: &Path) -> Result<(String, String), CliError> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Io { path: "<stdin>".into(), source: e })?;
        return Ok(("<stdin>".into(), text));
    }
    let text = fs::read_to_string(path)
        .map_err(|e| CliError::Io { path: path.display().to_string(), source: e })?;
    Ok((path.display().to_string(), text))
}

/// A `--capture NS:DEV=FILE` request: capture `DEV` of namespace `NS` (`host` or empty for
/// the root namespace) into the pcap file `FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    /// The namespace (`None`: the root namespace).
    pub netns: Option<String>,
    /// The device.
    pub dev: String,
    /// Where the pcap goes.
    pub file: PathBuf,
}

impl std::str::FromStr for CaptureSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "`{s}`: write NS:DEV=FILE, e.g. red:veth-red=red.pcap (NS `host` is the root namespace)"
            )
        };
        let (what, file) = s.split_once('=').ok_or_else(bad)?;
        let (ns, dev) = what.split_once(':').ok_or_else(bad)?;
        if dev.is_empty() || file.is_empty() {
            return Err(bad());
        }
        let netns = (!ns.is_empty() && ns != "host").then(|| ns.to_string());
        Ok(CaptureSpec { netns, dev: dev.to_string(), file: PathBuf::from(file) })
    }
}

/// Options of `kns net` beyond the script itself.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Print each frame's hops after the command that caused them (text output).
    pub trace: bool,
    /// Devices to capture.
    pub captures: Vec<CaptureSpec>,
}

/// Runs the script. The report's output goes to standard output even when a line stops the
/// script; the error then follows on standard error with exit code 1.
pub fn net(path: &Path, format: NetFormat, opts: &NetOptions) -> (String, Result<(), CliError>) {
    let (name, text) = match read_script(path) {
        Ok(x) => x,
        Err(e) => return (String::new(), Err(e)),
    };
    let mut runner = ScriptRunner::new(opts.seed);
    if opts.trace {
        runner.sim_mut().enable_trace();
    }
    // Captures start as soon as their device exists (scripts create devices as they go).
    let mut captures: Vec<(&CaptureSpec, Option<CaptureId>)> =
        opts.captures.iter().map(|c| (c, None)).collect();
    let mut results = Vec::new();
    let mut traces: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut error = None;
    for (i, line) in text.lines().enumerate() {
        let step = runner.run_line(i + 1, line);
        if opts.trace {
            let hops: Vec<String> =
                runner.sim_mut().take_trace().iter().map(|e| e.to_string()).collect();
            if !hops.is_empty() {
                traces.insert(i + 1, hops);
            }
        }
        match step {
            Ok(Some(r)) => results.push(r),
            Ok(None) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        for (spec, id) in captures.iter_mut().filter(|(_, id)| id.is_none()) {
            let sim = runner.sim_mut();
            if let Ok(ns) = sim.netns(spec.netns.as_deref()) {
                *id = sim.capture(ns, &spec.dev).ok();
            }
        }
    }
    let report = ScriptReport { results, error };
    let out = match format {
        NetFormat::Text => transcript(&text, &report, &traces),
        NetFormat::Json => {
            let mut s = serde_json::to_string(&JsonReport { results: &report.results })
                .expect("strings and bools always serialize");
            s.push('\n');
            s
        }
    };
    if let Some(e) = report.error {
        let err = CliError::Script {
            file: name,
            line: e.line,
            message: format!("{}: {}", e.command, e.message),
        };
        return (out, Err(err));
    }
    for (spec, id) in captures {
        let Some(id) = id else {
            let ns = spec.netns.as_deref().unwrap_or("host");
            let msg = format!(
                "--capture: the script never created device {} in namespace {ns}",
                spec.dev
            );
            return (out, Err(CliError::Usage(msg)));
        };
        let io = |e| CliError::Io { path: spec.file.display().to_string(), source: e };
        let written = fs::File::create(&spec.file).map_err(io).and_then(|f| {
            runner.sim().write_pcap(id, std::io::BufWriter::new(f)).map_err(|e| CliError::Io {
                path: spec.file.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })
        });
        match written {
            Ok(n) => eprintln!("captured {n} frames into {}", spec.file.display()),
            Err(e) => return (out, Err(e)),
        }
    }
    (out, Ok(()))
}

/// The script as a terminal session: comments as written, each command after `$ `, then its
/// output; a failed probe is marked so that it stands out.
pub fn transcript(
    script: &str,
    report: &ScriptReport,
    traces: &BTreeMap<usize, Vec<String>>,
) -> String {
    let by_line: BTreeMap<usize, &StepResult> =
        report.results.iter().map(|r| (r.line, r)).collect();
    let last = report.error.as_ref().map(|e| e.line).unwrap_or(usize::MAX);
    let mut out = String::new();
    for (i, line) in script.lines().enumerate() {
        let n = i + 1;
        if n >= last {
            break;
        }
        let trimmed = line.trim();
        if let Some(r) = by_line.get(&n) {
            out.push_str(&format!("$ {}\n", r.command));
            out.push_str(&r.output);
            if !r.output.is_empty() && !r.output.ends_with('\n') {
                out.push('\n');
            }
            if !r.ok {
                out.push_str("  (failed)\n");
            }
            for hop in traces.get(&n).into_iter().flatten() {
                out.push_str(&format!("    | {hop}\n"));
            }
        } else if trimmed.starts_with('#') {
            out.push_str(trimmed);
            out.push('\n');
        } else if trimmed.is_empty() && !out.is_empty() {
            out.push('\n');
        }
    }
    out
}
