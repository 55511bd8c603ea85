//! What a scenario run records, and its text view (the JSON view is the serde form).

use std::fmt::Write as _;

use serde::Serialize;

/// One check: what was probed, what was expected, what the packets and the engine said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// 1-based number among the checks of the run.
    pub number: usize,
    /// What was probed (`from -> to port`, or the flow set).
    pub what: String,
    /// What the scenario expected.
    pub expected: String,
    /// What the packets showed.
    pub observed: String,
    /// What the policy engine says, when it can judge the connection (pod to pod).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Whether the packets matched the expectation and the engine agreed with the packets.
    pub ok: bool,
    /// Why the check failed, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Details, one per line: the differences of a flow-set check, the request an HTTP check
    /// sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// Every hop of the probe's frames (with `--trace`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<String>,
}

/// One step of a run, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepReport {
    /// Something done to the cluster, as a command.
    Action {
        /// The command (`kubectl apply -f FILE`, ...).
        command: String,
        /// What it did, when there is something to say.
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<String>,
    },
    /// An expectation that was checked.
    Check(CheckReport),
}

/// A pcap file of the run: the capture of one interface from build to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureFile {
    /// The file name (deterministic: namespace and device).
    pub name: String,
    /// The pcap bytes.
    pub bytes: Vec<u8>,
}

/// The record of one scenario run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Its description.
    pub about: String,
    /// Seed of the run.
    pub seed: u64,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Pods in the cluster.
    pub pods: usize,
    /// Actions and checks, in order.
    pub steps: Vec<StepReport>,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Whether every check passed.
    pub ok: bool,
    /// The pcap files (with `--pcap`); their names are listed in the JSON view.
    #[serde(serialize_with = "capture_names", skip_serializing_if = "Vec::is_empty")]
    pub captures: Vec<CaptureFile>,
}

fn capture_names<S: serde::Serializer>(files: &[CaptureFile], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(files.iter().map(|f| f.name.as_str()))
}

impl Report {
    /// The checks, in order.
    pub fn checks(&self) -> impl Iterator<Item = &CheckReport> {
        self.steps.iter().filter_map(|s| match s {
            StepReport::Check(c) => Some(c),
            StepReport::Action { .. } => None,
        })
    }

    /// The failed checks, one line each (`check N: what: failure`).
    pub fn failures(&self) -> Vec<String> {
        self.checks()
            .filter(|c| !c.ok)
            .map(|c| {
                format!("check {} ({}): {}", c.number, c.what, c.failure.as_deref().unwrap_or(""))
            })
            .collect()
    }

    /// The text view: the description, then each action (`$ command`) and check
    /// (`[ok]`/`[FAIL]`), then a summary line.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let head = format!("Scenario {}", self.scenario);
        let _ = writeln!(out, "{head}\n{}", "=".repeat(head.chars().count()));
        let _ = writeln!(out, "{}\n", self.about.trim());
        let _ = writeln!(out, "seed {}, {} nodes, {} pods\n", self.seed, self.nodes, self.pods);
        for step in &self.steps {
            match step {
                StepReport::Action { command, result } => {
                    let _ = writeln!(out, "$ {command}");
                    if let Some(r) = result {
                        for line in r.lines() {
                            let _ = writeln!(out, "  {line}");
                        }
                    }
                }
                StepReport::Check(c) => render_check(&mut out, c),
            }
        }
        let verdict = if self.ok { "ok" } else { "FAILED" };
        let _ = writeln!(
            out,
            "\n=> {verdict}: {} checks, {} passed, {} failed",
            self.passed + self.failed,
            self.passed,
            self.failed
        );
        out
    }
}

fn render_check(out: &mut String, c: &CheckReport) {
    let mark = if c.ok { "[ok]  " } else { "[FAIL]" };
    let _ = writeln!(out, "{mark} {:>2}. {}", c.number, c.what);
    let _ = writeln!(out, "          expected {}; observed {}", c.expected, c.observed);
    if let Some(e) = &c.engine {
        let _ = writeln!(out, "          policy engine: {e}");
    }
    if let Some(f) = &c.failure {
        let _ = writeln!(out, "          FAILED: {f}");
    }
    for d in &c.details {
        let _ = writeln!(out, "          {d}");
    }
    if !c.trace.is_empty() {
        let _ = writeln!(out, "          # every hop, in order");
        for t in &c.trace {
            let _ = writeln!(out, "          {t}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ok: bool) -> CheckReport {
        CheckReport {
            number: 1,
            what: "a/b -> a/c 80/TCP".into(),
            expected: "allowed".into(),
            observed: "filtered (timed out)".into(),
            engine: Some("denied".into()),
            ok,
            failure: (!ok).then(|| "the packets did not get through".into()),
            details: Vec::new(),
            trace: Vec::new(),
        }
    }

    #[test]
    fn a_failed_check_reads_as_expected_observed_and_why() {
        let r = Report {
            scenario: "s".into(),
            about: "About.".into(),
            seed: 1,
            nodes: 2,
            pods: 3,
            steps: vec![
                StepReport::Action { command: "kubectl apply -f s.yaml".into(), result: None },
                StepReport::Check(check(false)),
            ],
            passed: 0,
            failed: 1,
            ok: false,
            captures: Vec::new(),
        };
        let text = r.render_text();
        assert!(
            text.contains("$ kubectl apply -f s.yaml\n[FAIL]  1. a/b -> a/c 80/TCP\n"),
            "{text}"
        );
        assert!(text.contains("expected allowed; observed filtered (timed out)\n"), "{text}");
        assert!(text.ends_with("=> FAILED: 1 checks, 0 passed, 1 failed\n"), "{text}");
        assert_eq!(r.failures(), ["check 1 (a/b -> a/c 80/TCP): the packets did not get through"]);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["steps"][1]["kind"], "check");
        assert!(json.get("captures").is_none() && json["steps"][1].get("trace").is_none());
    }
}
