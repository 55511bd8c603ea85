//! `kns scenario list` and `kns scenario run NAME`: the scenario library from the terminal.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};

use super::error::CliError;
use crate::scenario::{self, Report, RunOptions};

/// Output formats of `kns scenario run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioFormat {
    /// Actions as `$ command`, checks as `[ok]`/`[FAIL]` with expected and observed.
    Text,
    /// `{"scenario","about","seed","nodes","pods","steps":[...],"passed","failed","ok"}`.
    Json,
}

/// What `kns scenario` does.
#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// List the scenarios, each with a one-line description.
    List,
    /// Run one scenario and check its expectations with real packets (exit code 1 when one
    /// fails).
    Run {
        /// The scenario's name (see `kns scenario list`).
        name: String,
        /// Print every hop of every single probe's frames under its check.
        #[arg(long)]
        trace: bool,
        /// Write one pcap file per pod interface (`NAMESPACE.POD-eth0.pcap`) into this directory.
        #[arg(long, value_name = "DIR")]
        pcap: Option<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = ScenarioFormat::Text)]
        output: ScenarioFormat,
    },
}

/// Runs a `kns scenario` command: what to print, and `Err` when it failed (the report is
/// printed all the same).
pub fn scenario(command: &ScenarioCommand) -> (String, Result<(), CliError>) {
    match command {
        ScenarioCommand::List => (scenario::list(&scenario::all()), Ok(())),
        ScenarioCommand::Run { name, trace, pcap, output } => {
            let Some(s) = scenario::find(name) else {
                let names = scenario::names().join(", ");
                return (
                    String::new(),
                    Err(CliError::Usage(format!(
                        "no scenario `{name}`; the scenarios are: {names}"
                    ))),
                );
            };
            let opts = RunOptions { trace: *trace, pcap: pcap.is_some() };
            let report = match s.run(&opts) {
                Ok(r) => r,
                Err(e) => return (String::new(), Err(CliError::Usage(e.to_string()))),
            };
            let out = render(&report, *output);
            if let Some(dir) = pcap
                && let Err(e) = write_captures(&report, dir)
            {
                return (out, Err(e));
            }
            let status = if report.ok {
                Ok(())
            } else {
                Err(CliError::Usage(format!(
                    "scenario {} failed:\n  {}",
                    report.scenario,
                    report.failures().join("\n  ")
                )))
            };
            (out, status)
        }
    }
}

fn render(report: &Report, format: ScenarioFormat) -> String {
    match format {
        ScenarioFormat::Text => report.render_text(),
        ScenarioFormat::Json => {
            serde_json::to_string_pretty(report).expect("strings, numbers and bools serialize")
                + "\n"
        }
    }
}

fn write_captures(report: &Report, dir: &Path) -> Result<(), CliError> {
    let io = |path: &Path, e: std::io::Error| CliError::Io {
        path: path.display().to_string(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    for c in &report.captures {
        let path = dir.join(&c.name);
        std::fs::write(&path, &c.bytes).map_err(|e| io(&path, e))?;
    }
    eprintln!("wrote {} pcap files into {}", report.captures.len(), dir.display());
    Ok(())
}
