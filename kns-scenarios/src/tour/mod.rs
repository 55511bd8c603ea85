//! `kns tour`: a guided walk from Linux networking basics to a Kubernetes cluster, run live on
//! the emulator. Every step applies real commands or manifests, records what the emulator
//! answers, and checks that the answer is what the step teaches; a wrong answer fails the tour.

mod cluster_steps;
mod linux_steps;
mod service_steps;

/// The tour's two-node cluster (also `kns shell`'s starting point).
pub(crate) use cluster_steps::MANIFEST as CLUSTER_MANIFEST;

use std::fmt::Write;
use std::io::{BufRead, IsTerminal, Write as _};

use serde::Serialize;

use crate::cli::{EXIT_OK, EXIT_USER};

/// One entry of a step's transcript, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A command typed or a manifest applied, exactly.
    Command(String),
    /// What the emulator answered or showed.
    Observation(String),
}

/// An assertion that did not hold: what the step teaches and what the emulator did.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, observed {observed}")]
pub struct Mismatch {
    /// What the step expected.
    pub expected: String,
    /// What was observed instead.
    pub observed: String,
}

/// What a step records while it runs.
#[derive(Debug, Default)]
pub struct Recorder {
    entries: Vec<Entry>,
}

impl Recorder {
    /// Records a command or manifest.
    pub fn command(&mut self, text: impl Into<String>) {
        self.entries.push(Entry::Command(text.into()));
    }

    /// Records an observation.
    pub fn observe(&mut self, text: impl Into<String>) {
        let text: String = text.into();
        self.entries.push(Entry::Observation(text.trim_end().to_string()));
    }

    /// Checks an assertion: `Err` names what was expected and what was observed.
    pub fn expect(
        &mut self,
        holds: bool,
        expected: &str,
        observed: impl std::fmt::Display,
    ) -> Result<(), Mismatch> {
        if holds {
            Ok(())
        } else {
            Err(Mismatch { expected: expected.to_string(), observed: observed.to_string() })
        }
    }
}

/// A step's body: runs against a fresh emulated world and records what happens.
pub type StepFn = fn(&mut Recorder) -> Result<(), Mismatch>;

/// A step of the tour.
pub struct StepDef {
    /// Short stable identifier.
    pub id: &'static str,
    /// One-line title.
    pub title: &'static str,
    /// What the step teaches, in a few sentences.
    pub explanation: &'static str,
    /// The body.
    pub run: StepFn,
}

/// Every step, in order.
pub fn steps() -> Vec<StepDef> {
    let mut all = linux_steps::steps();
    let mut services = service_steps::steps();
    let stays = services.pop();
    for step in cluster_steps::steps() {
        if step.id == "network-policy" {
            all.append(&mut services);
        }
        all.push(step);
    }
    all.extend(stays);
    all
}

/// The record of one step that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// 1-based step number.
    pub number: usize,
    /// Identifier.
    pub id: String,
    /// Title.
    pub title: String,
    /// What it teaches.
    pub explanation: String,
    /// Commands and manifests applied, in order.
    pub commands: Vec<String>,
    /// What was observed, in order.
    pub observations: Vec<String>,
    /// Whether every assertion held.
    pub ok: bool,
    /// The failed assertion, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Commands and observations interleaved (for the text view).
    #[serde(skip)]
    pub entries: Vec<Entry>,
}

/// Runs step `number` (1-based) of `defs`.
pub fn run_step(number: usize, def: &StepDef) -> StepReport {
    let mut rec = Recorder::default();
    let result = (def.run)(&mut rec);
    let commands = rec
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Command(c) => Some(c.clone()),
            Entry::Observation(_) => None,
        })
        .collect();
    let observations = rec
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Observation(o) => Some(o.clone()),
            Entry::Command(_) => None,
        })
        .collect();
    StepReport {
        number,
        id: def.id.to_string(),
        title: def.title.to_string(),
        explanation: def.explanation.to_string(),
        commands,
        observations,
        ok: result.is_ok(),
        failure: result.err().map(|m| m.to_string()),
        entries: rec.entries,
    }
}

/// Output formats of `kns tour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TourFormat {
    /// Steps for people, with commands after `$ `.
    Text,
    /// `{"steps":[{"number","id","title","explanation","commands","observations","ok"}]}`.
    Json,
}

/// The text view of one step.
pub fn render_step(r: &StepReport, total: usize) -> String {
    let mut out = String::new();
    let head = format!("Step {}/{total} [{}] {}", r.number, r.id, r.title);
    let _ = writeln!(out, "{head}\n{}\n", "=".repeat(head.chars().count()));
    let _ = writeln!(out, "{}\n", r.explanation.trim());
    for e in &r.entries {
        match e {
            Entry::Command(c) => {
                for (i, line) in c.lines().enumerate() {
                    let prompt = if i == 0 { "$ " } else { "  " };
                    let _ = writeln!(out, "{prompt}{line}");
                }
            }
            Entry::Observation(o) => {
                for line in o.lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
    }
    match &r.failure {
        None => out.push_str("\n=> ok\n\n"),
        Some(f) => {
            let _ = writeln!(out, "\n=> FAILED: {f}\n");
        }
    }
    out
}

/// The `--list` view: number, id and title of every step.
pub fn list(defs: &[StepDef]) -> String {
    let mut out = String::new();
    for (i, d) in defs.iter().enumerate() {
        let _ = writeln!(out, "{:>2}  {:<18} {}", i + 1, d.id, d.title);
    }
    out
}

/// Options of `kns tour`.
#[derive(Debug, Clone, Copy)]
pub struct TourOptions {
    /// Only list the steps.
    pub list: bool,
    /// Run only this step (1-based).
    pub step: Option<usize>,
    /// Wait for Enter between steps (only when standard input is a terminal).
    pub pause: bool,
    /// Output format.
    pub format: TourFormat,
}

#[derive(Serialize)]
struct JsonTour<'a> {
    steps: &'a [StepReport],
}

/// Runs the tour without pausing and returns what it prints; `Err` names the failed steps.
pub fn collect(opts: TourOptions) -> Result<String, String> {
    let defs = steps();
    if opts.list {
        return Ok(list(&defs));
    }
    let chosen: Vec<usize> = match opts.step {
        Some(n) if n >= 1 && n <= defs.len() => vec![n],
        Some(n) => return Err(format!("no step {n}: the tour has steps 1 to {}", defs.len())),
        None => (1..=defs.len()).collect(),
    };
    let reports: Vec<StepReport> = chosen.iter().map(|&n| run_step(n, &defs[n - 1])).collect();
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("step {} [{}]: {}", r.number, r.id, r.failure.as_deref().unwrap_or("")))
        .collect();
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    Ok(match opts.format {
        TourFormat::Text => reports.iter().map(|r| render_step(r, defs.len())).collect(),
        TourFormat::Json => {
            serde_json::to_string_pretty(&JsonTour { steps: &reports })
                .expect("strings and bools always serialize")
                + "\n"
        }
    })
}

/// Runs `kns tour`, printing as it goes; returns the exit code.
pub fn main(opts: TourOptions) -> i32 {
    let defs = steps();
    let mut stdout = std::io::stdout().lock();
    if opts.list {
        let _ = stdout.write_all(list(&defs).as_bytes());
        return EXIT_OK;
    }
    let chosen: Vec<usize> = match opts.step {
        Some(n) if n >= 1 && n <= defs.len() => vec![n],
        Some(n) => {
            eprintln!("error: no step {n}: the tour has steps 1 to {}", defs.len());
            return EXIT_USER;
        }
        None => (1..=defs.len()).collect(),
    };
    let pause = opts.pause && std::io::stdin().is_terminal() && opts.format == TourFormat::Text;
    let mut reports = Vec::new();
    for (i, &n) in chosen.iter().enumerate() {
        let report = run_step(n, &defs[n - 1]);
        if opts.format == TourFormat::Text {
            let _ = stdout.write_all(render_step(&report, defs.len()).as_bytes());
            let _ = stdout.flush();
            if pause && i + 1 < chosen.len() {
                let _ = write!(stdout, "-- press Enter for the next step --");
                let _ = stdout.flush();
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
            }
        }
        reports.push(report);
    }
    if opts.format == TourFormat::Json {
        let mut s = serde_json::to_string_pretty(&JsonTour { steps: &reports })
            .expect("strings and bools always serialize");
        s.push('\n');
        let _ = stdout.write_all(s.as_bytes());
    }
    let failed: Vec<&StepReport> = reports.iter().filter(|r| !r.ok).collect();
    if failed.is_empty() {
        return EXIT_OK;
    }
    for r in failed {
        eprintln!(
            "error: tour step {} [{}] failed: {}",
            r.number,
            r.id,
            r.failure.as_deref().unwrap_or("")
        );
    }
    EXIT_USER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(rec: &mut Recorder) -> Result<(), Mismatch> {
        rec.command("ping -c 1 10.0.0.9");
        rec.observe("1 packets transmitted, 0 received\n");
        rec.expect(false, "a reply", "no reply")?;
        rec.observe("never reached");
        Ok(())
    }

    fn passing(rec: &mut Recorder) -> Result<(), Mismatch> {
        rec.command("ip netns add a");
        rec.expect(true, "nothing", "nothing")
    }

    #[test]
    fn a_failed_assertion_fails_the_step_and_names_expected_and_observed() {
        let def = StepDef { id: "x", title: "X", explanation: "Why.", run: failing };
        let r = run_step(3, &def);
        assert!(!r.ok);
        assert_eq!(r.failure.as_deref(), Some("expected a reply, observed no reply"));
        assert_eq!(r.commands, ["ping -c 1 10.0.0.9"]);
        assert_eq!(r.observations, ["1 packets transmitted, 0 received"], "stops at the failure");
        let text = render_step(&r, 5);
        assert!(text.starts_with("Step 3/5 [x] X\n"), "{text}");
        assert!(text.contains("$ ping -c 1 10.0.0.9\n  1 packets transmitted, 0 received\n"));
        assert!(text.ends_with("=> FAILED: expected a reply, observed no reply\n\n"), "{text}");
    }

    #[test]
    fn a_passing_step_is_ok_and_serializes_without_failure() {
        let def = StepDef { id: "y", title: "Y", explanation: "Why.", run: passing };
        let r = run_step(1, &def);
        assert!(r.ok);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["commands"], serde_json::json!(["ip netns add a"]));
        assert!(json.get("failure").is_none() && json.get("entries").is_none());
        assert!(render_step(&r, 1).ends_with("=> ok\n\n"));
    }

    #[test]
    fn every_step_has_a_unique_id_and_an_explanation() {
        let defs = steps();
        let ids: std::collections::BTreeSet<&str> = defs.iter().map(|d| d.id).collect();
        assert_eq!(ids.len(), defs.len());
        assert!(defs.iter().all(|d| d.explanation.len() > 100 && !d.title.is_empty()));
        assert_eq!(list(&defs).lines().count(), defs.len());
    }
}
