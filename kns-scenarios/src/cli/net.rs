//! `kns net -f SCRIPT`: run a script of Linux networking commands against an emulated host.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

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

/// Runs the script. The report's output goes to standard output even when a line stops the
/// script; the error then follows on standard error with exit code 1.
pub fn net(path: &Path, format: NetFormat, seed: u64) -> (String, Result<(), CliError>) {
    let (name, text) = match read_script(path) {
        Ok(x) => x,
        Err(e) => return (String::new(), Err(e)),
    };
    let report = ScriptRunner::new(seed).run_script(&text);
    let out = match format {
        NetFormat::Text => transcript(&text, &report),
        NetFormat::Json => {
            let mut s = serde_json::to_string(&JsonReport { results: &report.results })
                .expect("strings and bools always serialize");
            s.push('\n');
            s
        }
    };
    let status = match report.error {
        None => Ok(()),
        Some(e) => Err(CliError::Script {
            file: name,
            line: e.line,
            message: format!("{}: {}", e.command, e.message),
        }),
    };
    (out, status)
}

/// The script as a terminal session: comments as written, each command after `$ `, then its
/// output; a failed probe is marked so that it stands out.
pub fn transcript(script: &str, report: &ScriptReport) -> String {
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
        } else if trimmed.starts_with('#') {
            out.push_str(trimmed);
            out.push('\n');
        } else if trimmed.is_empty() && !out.is_empty() {
            out.push('\n');
        }
    }
    out
}
