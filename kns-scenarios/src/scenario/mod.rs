//! Scenarios: a cluster described by manifests, things done to it, and expectations about
//! which connections get through, checked with real packets on a living
//! [`ClusterNet`](kns_sim::cluster::ClusterNet) and cross-checked against the policy engine.
//!
//! ```
//! use kns_scenarios::scenario::{RunOptions, Scenario};
//!
//! let s = Scenario::new("two-pods")
//!     .about("Two pods reach each other when no policy isolates them.")
//!     .nodes(2)
//!     .apply(
//!         "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\n\
//!          spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}\n---\n\
//!          apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: default}\n\
//!          spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}\n",
//!     )
//!     .expect_allowed("default/a", "default/b", 80)
//!     .expect_answer("default/b", "default/a", 80, "a");
//! let report = s.run(&RunOptions::default()).unwrap();
//! assert!(report.ok, "{}", report.render_text());
//! ```
//!
//! A scenario runs its steps in order. The world is built when the first step needs it;
//! manifests applied later may change NetworkPolicies only (kns does not add or remove pods in a
//! running cluster). Every expectation becomes a [`CheckReport`] with what was expected, what
//! the packets showed and what the [`ReferenceEngine`](kns_core::policy::ReferenceEngine) says;
//! a check passes when the packets match the expectation and the engine agrees with the packets.

pub mod endpoints;
mod library;
mod port_table;
mod report;
mod run;

use std::collections::BTreeSet;

use kns_core::flow::{PortProtocol, Protocol};

pub use library::{all, find, names};
pub use port_table::{COMPONENTS, PortRow, UnknownComponent, VERRAZZANO_PORTS, expected_flows};
pub use report::{CaptureFile, CheckReport, Report, StepReport};
pub use run::{RunOptions, ScenarioError};

/// A port and protocol for an expectation: a bare number is TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port(pub PortProtocol);

impl From<u16> for Port {
    fn from(port: u16) -> Self {
        Port(PortProtocol::new(port, Protocol::Tcp))
    }
}

impl From<PortProtocol> for Port {
    fn from(p: PortProtocol) -> Self {
        Port(p)
    }
}

/// What an expectation wants of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The network delivers it: the destination accepts or itself refuses the connection.
    Allowed,
    /// The network does not deliver it (dropped by a policy, unroutable, rejected on the way).
    Denied,
    /// The connection is accepted and the server answering is this pod (agnhost's reply).
    AnsweredBy(String),
}

/// One connection attempt and what it should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Source (see [`endpoints::source`]).
    pub from: String,
    /// Target (see [`endpoints::target`]).
    pub to: String,
    /// Destination port and protocol.
    pub port: PortProtocol,
    /// What should happen.
    pub want: Want,
}

/// One HTTP request (`curl -H 'Host: HOST' URL`) and the answer it should get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpExpectation {
    /// Source (see [`endpoints::source`]).
    pub from: String,
    /// `http://TARGET:PORT[/PATH]`, TARGET written as for [`endpoints::target`]
    /// (`nodeport/NAME.NS:80/keycloak` probes the Service's node port for its port 80).
    pub url: String,
    /// The `Host` header, when it is not the URL's address.
    pub host: Option<String>,
    /// The status wanted; 0 means no HTTP answer at all (curl's `000`: refused, timed out).
    pub status: u16,
    /// Text the body must contain (agnhost answers with its pod's name).
    pub body_contains: Option<String>,
}

/// A pod-to-pod flow named by `namespace/name` references.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodFlow {
    /// Source pod, `namespace/name`.
    pub from: String,
    /// Destination pod, `namespace/name`.
    pub to: String,
    /// Destination port and protocol.
    pub port: PortProtocol,
}

impl std::fmt::Display for PodFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {} {}", self.from, self.to, self.port)
    }
}

/// "Exactly these flows are allowed": every ordered pair of distinct running pods is probed on
/// every port, and the set that gets through must equal `allowed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactFlows {
    /// What the set stands for, for the report.
    pub what: String,
    /// The ports probed (the ports of `allowed` are added).
    pub ports: Vec<PortProtocol>,
    /// The flows that must get through; every other pair and port must not.
    pub allowed: BTreeSet<PodFlow>,
}

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Apply manifests (`kubectl apply -f FILE`).
    Apply {
        /// The file name shown and used in load errors.
        file: String,
        /// The YAML.
        text: String,
    },
    /// Replace every NetworkPolicy with those of this YAML (`kubectl delete networkpolicy --all`
    /// then `kubectl apply`).
    ReplacePolicies {
        /// The file name shown.
        file: String,
        /// The policies (may be empty: no policy at all).
        text: String,
    },
    /// Restart a pod's sandbox (CNI DEL then ADD: usually a new IP).
    Restart(String),
    /// Start an HTTP server answering with `name` on the internet host, on this TCP port.
    ServeOnInternet {
        /// What the server answers.
        name: String,
        /// Its TCP port.
        port: u16,
    },
    /// One probe and its expectation.
    Expect(Expectation),
    /// One HTTP request and the answer it should get.
    ExpectHttp(HttpExpectation),
    /// The whole matrix against a set of flows.
    Exactly(ExactFlows),
}

/// A named, self-checking cluster scenario, built step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    name: String,
    about: String,
    seed: u64,
    nodes: Option<usize>,
    steps: Vec<Step>,
}

impl Scenario {
    /// An empty scenario: no nodes given, seed 1, no steps.
    pub fn new(name: impl Into<String>) -> Scenario {
        Scenario {
            name: name.into(),
            about: String::new(),
            seed: 1,
            nodes: None,
            steps: Vec::new(),
        }
    }

    /// A description: the first line is the one `kns scenario list` shows.
    pub fn about(mut self, text: impl Into<String>) -> Scenario {
        self.about = text.into();
        self
    }

    /// The seed of every random choice of the run.
    pub fn seed(mut self, seed: u64) -> Scenario {
        self.seed = seed;
        self
    }

    /// Adds a `Cluster` document with `n` nodes `node-1`..`node-n` (NetworkPolicy enforced);
    /// leave it out when the manifests bring their own `Cluster` document.
    pub fn nodes(mut self, n: usize) -> Scenario {
        self.nodes = Some(n);
        self
    }

    /// Applies manifests, shown as `<scenario>.yaml`.
    pub fn apply(self, yaml: impl Into<String>) -> Scenario {
        let file = format!("{}.yaml", self.name);
        self.apply_file(file, yaml)
    }

    /// Applies manifests under a file name.
    pub fn apply_file(mut self, file: impl Into<String>, yaml: impl Into<String>) -> Scenario {
        self.steps.push(Step::Apply { file: file.into(), text: yaml.into() });
        self
    }

    /// Replaces every NetworkPolicy with those of `yaml` (empty: none).
    pub fn replace_policies(
        mut self,
        file: impl Into<String>,
        yaml: impl Into<String>,
    ) -> Scenario {
        self.steps.push(Step::ReplacePolicies { file: file.into(), text: yaml.into() });
        self
    }

    /// Restarts pod `namespace/name`; later targets may name its old address as
    /// `was:namespace/name`.
    pub fn restart(mut self, pod: impl Into<String>) -> Scenario {
        self.steps.push(Step::Restart(pod.into()));
        self
    }

    /// Starts an HTTP server on the internet host that answers with `name` on TCP `port`.
    pub fn serve_on_internet(mut self, name: impl Into<String>, port: u16) -> Scenario {
        self.steps.push(Step::ServeOnInternet { name: name.into(), port });
        self
    }

    /// Expects a connection from `from` to `to` on `port` to get through.
    pub fn expect_allowed(self, from: &str, to: &str, port: impl Into<Port>) -> Scenario {
        self.expect(from, to, port, Want::Allowed)
    }

    /// Expects a connection from `from` to `to` on `port` not to get through.
    pub fn expect_denied(self, from: &str, to: &str, port: impl Into<Port>) -> Scenario {
        self.expect(from, to, port, Want::Denied)
    }

    /// Expects a connection to be accepted by the server of pod `name` (agnhost's reply).
    pub fn expect_answer(
        self,
        from: &str,
        to: &str,
        port: impl Into<Port>,
        name: &str,
    ) -> Scenario {
        self.expect(from, to, port, Want::AnsweredBy(name.to_string()))
    }

    /// Expects `curl -H 'Host: HOST' URL` from `from` to answer `status` with a body containing
    /// `body` (see [`HttpExpectation`]); an empty `host` sends the URL's address, an empty
    /// `body` checks the status only, `status` 0 wants no HTTP answer at all.
    pub fn expect_http(
        mut self,
        from: &str,
        url: &str,
        host: &str,
        status: u16,
        body: &str,
    ) -> Scenario {
        let some = |t: &str| (!t.is_empty()).then(|| t.to_string());
        self.steps.push(Step::ExpectHttp(HttpExpectation {
            from: from.to_string(),
            url: url.to_string(),
            host: some(host),
            status,
            body_contains: some(body),
        }));
        self
    }

    /// Expects each source in `allowed` to get through to `to` and each in `denied` not to.
    pub fn expect_reach(
        mut self,
        to: &str,
        port: impl Into<Port>,
        allowed: &[&str],
        denied: &[&str],
    ) -> Scenario {
        let port = port.into();
        for from in allowed {
            self = self.expect(from, to, port, Want::Allowed);
        }
        for from in denied {
            self = self.expect(from, to, port, Want::Denied);
        }
        self
    }

    /// Expects exactly `allowed` among all pod pairs on `ports` (and the ports of `allowed`).
    pub fn expect_exactly(
        mut self,
        what: impl Into<String>,
        ports: &[PortProtocol],
        allowed: BTreeSet<PodFlow>,
    ) -> Scenario {
        let mut all: BTreeSet<PortProtocol> = ports.iter().copied().collect();
        all.extend(allowed.iter().map(|f| f.port));
        self.steps.push(Step::Exactly(ExactFlows {
            what: what.into(),
            ports: all.into_iter().collect(),
            allowed,
        }));
        self
    }

    fn expect(mut self, from: &str, to: &str, port: impl Into<Port>, want: Want) -> Scenario {
        let port = port.into().0;
        self.steps.push(Step::Expect(Expectation {
            from: from.to_string(),
            to: to.to_string(),
            port,
            want,
        }));
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.about
    }

    /// The first line of the description.
    pub fn summary(&self) -> &str {
        self.about.lines().next().unwrap_or("")
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

/// `kns scenario list`: one line per scenario, names aligned.
pub fn list(scenarios: &[Scenario]) -> String {
    let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(0);
    scenarios.iter().map(|s| format!("{:<width$}  {}\n", s.name, s.summary())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_records_steps_in_order() {
        let s = Scenario::new("x")
            .about("First line.\nMore.")
            .nodes(3)
            .apply("kind: Pod")
            .expect_reach("a/b", 80, &["a/c"], &["a/d"])
            .expect_denied("a/c", "a/b", PortProtocol::new(53, Protocol::Udp));
        assert_eq!(s.summary(), "First line.");
        assert_eq!(s.steps().len(), 4);
        assert!(matches!(&s.steps()[0], Step::Apply { file, .. } if file == "x.yaml"));
        let Step::Expect(e) = &s.steps()[3] else { panic!("an expectation") };
        assert_eq!((e.port.to_string(), &e.want), ("53/UDP".to_string(), &Want::Denied));
    }

    #[test]
    fn http_expectations_keep_empty_host_and_body_as_none() {
        let s = Scenario::new("x")
            .expect_http("internet", "http://a/b:80/", "h.example", 404, "")
            .expect_http("a/c", "http://svc/web.default:80", "", 200, "web");
        let Step::ExpectHttp(a) = &s.steps()[0] else { panic!("an HTTP expectation") };
        assert_eq!(
            (a.host.as_deref(), a.status, a.body_contains.as_deref()),
            (Some("h.example"), 404, None)
        );
        let Step::ExpectHttp(b) = &s.steps()[1] else { panic!("an HTTP expectation") };
        assert_eq!((b.host.as_deref(), b.body_contains.as_deref()), (None, Some("web")));
    }

    #[test]
    fn list_aligns_names() {
        let a = Scenario::new("a").about("Short.");
        let b = Scenario::new("longer").about("Long.\nignored");
        assert_eq!(list(&[a, b]), "a       Short.\nlonger  Long.\n");
    }

    #[test]
    fn exactly_adds_the_ports_of_its_flows() {
        let flow = PodFlow { from: "a/b".into(), to: "a/c".into(), port: Port::from(9090).0 };
        let s = Scenario::new("x").expect_exactly("t", &[Port::from(80).0], [flow].into());
        let Step::Exactly(e) = &s.steps()[0] else { panic!("an exact step") };
        let ports: Vec<String> = e.ports.iter().map(ToString::to_string).collect();
        assert_eq!(ports, ["80/TCP", "9090/TCP"]);
    }
}
