//! `kns net` scripts: the commands a person types on a Linux host, one per line, run against a
//! fresh emulated host.
//!
//! Configuration commands (`ip`, `sysctl`, `iptables`, `bridge`, `tc`) change the world; a
//! failure of one is a script error that stops the script, since every later line depends on it.
//! Probes (`ping`, `traceroute`, `nc`, `curl`) report success or failure and the script goes on,
//! so a script can show a ping failing, then the fix, then the ping working.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::cmd::{self, Command, NcMode, PingOpts};
use crate::net::{NetnsId, Sim};
use crate::stack::apps::{
    HttpClient, HttpClientConfig, Nc, NcConfig, Ping, PingConfig, TcpEcho, Traceroute,
    TracerouteConfig, UdpEcho,
};
use crate::stack::{App, AppId, SmolStack, StackConfig};

/// The outcome of one command of a script.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepResult {
    /// The 1-based line number in the script.
    pub line: usize,
    /// The command as written (trimmed).
    pub command: String,
    /// Whether it succeeded: for `ping`, at least one reply; for a connect, the connection was
    /// established; for configuration commands, no error.
    pub ok: bool,
    /// What the real tool would print (standard output, then standard error).
    pub output: String,
}

/// A line that stops the script: it could not be parsed, or a configuration command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {command}: {message}")]
pub struct ScriptError {
    /// The 1-based line number.
    pub line: usize,
    /// The command as written.
    pub command: String,
    /// What is wrong, as the real tool would say it.
    pub message: String,
}

/// Everything a script did: the results of the lines that ran, and the error that stopped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptReport {
    /// One result per command that ran (comments and blank lines are skipped).
    pub results: Vec<StepResult>,
    /// The error that stopped the script early, if any.
    pub error: Option<ScriptError>,
}

/// Extra virtual time a probe may take beyond its own timeouts before the runner gives up on it.
const PROBE_SLACK: Duration = Duration::from_secs(5);

/// What `nc HOST PORT` sends: nc forwards its standard input, and a script has none, so kns
/// sends one line naming the client.
fn nc_payload(ns_name: &str) -> Vec<u8> {
    let who = if ns_name.is_empty() { "host" } else { ns_name };
    format!("hello from {who}\n").into_bytes()
}

/// Runs script lines against one emulated host.
pub struct ScriptRunner {
    sim: Sim,
    /// Background applications (`nc -l`) by namespace, kept so that they stay alive.
    background: Vec<(NetnsId, AppId)>,
}

impl ScriptRunner {
    /// A fresh host (only the root namespace) whose randomness derives from `seed`.
    pub fn new(seed: u64) -> ScriptRunner {
        ScriptRunner { sim: Sim::new(seed), background: Vec::new() }
    }

    /// The emulated host.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// The emulated host, to inspect or change it between lines.
    pub fn sim_mut(&mut self) -> &mut Sim {
        &mut self.sim
    }

    /// The emulated host, to keep using it after the script (benches, tests, the tour).
    pub fn into_sim(self) -> Sim {
        self.sim
    }

    /// Runs a whole script; stops at the first script error.
    pub fn run_script(&mut self, text: &str) -> ScriptReport {
        let mut results = Vec::new();
        for (i, line) in text.lines().enumerate() {
            match self.run_line(i + 1, line) {
                Ok(Some(r)) => results.push(r),
                Ok(None) => {}
                Err(e) => return ScriptReport { results, error: Some(e) },
            }
        }
        ScriptReport { results, error: None }
    }

    /// Runs one line (`line` is its 1-based number, for messages). Blank lines and comments
    /// give `Ok(None)`.
    pub fn run_line(&mut self, line: usize, text: &str) -> Result<Option<StepResult>, ScriptError> {
        let command = text.trim().to_string();
        let fail = |message: String| ScriptError { line, command: command.clone(), message };
        let parsed = match cmd::parse_command(text) {
            Ok(None) => return Ok(None),
            Ok(Some(c)) => c,
            Err(e) => return Err(fail(e.message)),
        };
        let (ok, output) = self.exec(&parsed).map_err(fail)?;
        Ok(Some(StepResult { line, command, ok, output }))
    }

    /// Executes one parsed command: `Err` is a script error, `Ok((ok, output))` a result.
    fn exec(&mut self, command: &Command) -> Result<(bool, String), String> {
        match command {
            Command::Ip { .. }
            | Command::Sysctl { .. }
            | Command::Bridge { .. }
            | Command::Tc { .. } => {
                self.sim.exec(command).map(|out| (true, out)).map_err(|e| e.to_string())
            }
            Command::Sleep(d) => {
                self.sim.run_for(*d);
                Ok((true, String::new()))
            }
            Command::Iptables { netns, args } => {
                let ns = self.netns(netns)?;
                let now = self.sim.now();
                let out =
                    self.sim.netfilter_mut(ns).iptables(now, args).map_err(|e| e.to_string())?;
                Ok((true, out))
            }
            Command::Conntrack { netns } => {
                let ns = self.netns(netns)?;
                let now = self.sim.now();
                Ok((true, self.sim.netfilter_mut(ns).conntrack_list(now)))
            }
            Command::Ping { netns, opts, target } => self.ping(netns, opts, target),
            Command::Traceroute { netns, max_hops, target } => {
                self.traceroute(netns, *max_hops, target)
            }
            Command::Nc { netns, mode } => self.nc(netns, mode),
            Command::Curl { netns, url, max_time } => self.curl(netns, url, *max_time),
        }
    }

    fn netns(&self, name: &Option<String>) -> Result<NetnsId, String> {
        self.sim.netns(name.as_deref()).map_err(|e| e.to_string())
    }

    /// The namespace's socket layer, attached on first use.
    fn stack(&mut self, ns: NetnsId) -> &mut SmolStack {
        if self.sim.stack_mut::<SmolStack>(ns).is_none() {
            let seed = self.sim.child_seed();
            let stack = SmolStack::new(StackConfig::with_seed(seed), self.sim.now());
            self.sim.attach_stack(ns, stack);
        }
        self.sim.stack_mut::<SmolStack>(ns).expect("attached just above")
    }

    /// Starts `app` in `ns` and runs the world until it finishes or `budget` of virtual time
    /// passes; returns the app's id.
    fn run_app<A: App>(
        &mut self,
        ns: NetnsId,
        app: A,
        budget: Duration,
        done: impl Fn(&A) -> bool,
    ) -> AppId {
        let now = self.sim.now();
        let id = self.stack(ns).spawn(app);
        self.sim.kick(ns);
        let deadline = now + budget;
        loop {
            let finished = self.sim.stack_mut::<SmolStack>(ns).and_then(|s| s.app::<A>(id));
            if finished.is_none_or(&done) {
                break;
            }
            match self.sim.next_event_time() {
                Some(t) if t <= deadline => {
                    self.sim.step();
                }
                _ => {
                    self.sim.run_until(deadline.max(self.sim.now()));
                    break;
                }
            }
        }
        id
    }

    fn app<A: App>(&mut self, ns: NetnsId, id: AppId) -> &A {
        self.sim
            .stack_mut::<SmolStack>(ns)
            .and_then(|s| s.app::<A>(id))
            .expect("the app was spawned in this stack")
    }

    /// The address to probe; a name that is not an address fails as the real tools do.
    fn target(tool: &str, target: &str) -> Result<IpAddr, (bool, String)> {
        target.parse().map_err(|_| {
            (
                false,
                format!(
                    "{tool}: {target}: Name or service not known (kns resolves no names here)\n"
                ),
            )
        })
    }

    /// The kernel's answer before a packet is sent: is there a route at all?
    fn unroutable(&self, ns: NetnsId, dst: IpAddr) -> bool {
        self.sim.route_get(ns, dst).is_err()
    }

    fn ping(
        &mut self,
        netns: &Option<String>,
        opts: &PingOpts,
        target: &str,
    ) -> Result<(bool, String), String> {
        let ns = self.netns(netns)?;
        let dst = match Self::target("ping", target) {
            Ok(a) => a,
            Err(r) => return Ok(r),
        };
        if self.unroutable(ns, dst) {
            return Ok((false, "ping: connect: Network is unreachable\n".into()));
        }
        let mut config = PingConfig::new(dst, opts.count.min(u32::from(u16::MAX)) as u16);
        config.interval = opts.interval;
        config.timeout = opts.timeout;
        config.size = opts.size;
        if let Some(ttl) = opts.ttl {
            config.ttl = ttl;
        }
        let budget = opts.interval * opts.count + opts.timeout + PROBE_SLACK;
        let id = self.run_app(ns, Ping::new(config), budget, Ping::finished);
        let ping = self.app::<Ping>(ns, id);
        Ok((ping.success(), ping.output().to_string()))
    }

    fn traceroute(
        &mut self,
        netns: &Option<String>,
        max_hops: u8,
        target: &str,
    ) -> Result<(bool, String), String> {
        let ns = self.netns(netns)?;
        let dst = match Self::target("traceroute", target) {
            Ok(a) => a,
            Err(r) => return Ok(r),
        };
        if self.unroutable(ns, dst) {
            return Ok((false, "connect: Network is unreachable\n".into()));
        }
        let mut config = TracerouteConfig::new(dst);
        config.max_hops = max_hops;
        let budget = config.wait * u32::from(config.probes) * u32::from(max_hops) + PROBE_SLACK;
        let id = self.run_app(ns, Traceroute::new(config), budget, |t| t.finished_at().is_some());
        let t = self.app::<Traceroute>(ns, id);
        Ok((t.reached(), t.output().to_string()))
    }

    fn nc(&mut self, netns: &Option<String>, mode: &NcMode) -> Result<(bool, String), String> {
        let ns = self.netns(netns)?;
        match mode {
            NcMode::Listen { port, udp } => {
                let now = self.sim.now();
                let stack = self.stack(ns);
                if stack.port_in_use(transport(*udp), *port) {
                    return Ok((false, "nc: Address already in use\n".into()));
                }
                let id = if *udp {
                    stack.spawn(UdpEcho::new(*port))
                } else {
                    stack.spawn(TcpEcho::new(*port))
                };
                self.background.push((ns, id));
                self.sim.kick(ns);
                self.sim.run_until(now);
                let proto = if *udp { "udp" } else { "tcp" };
                Ok((true, format!("Listening on 0.0.0.0 {port} ({proto}, echoing what arrives)\n")))
            }
            NcMode::Connect { host, port, udp, timeout } => {
                let dst = match Self::target("nc", host) {
                    Ok(a) => a,
                    Err(r) => return Ok(r),
                };
                if self.unroutable(ns, dst) {
                    let proto = if *udp { "udp" } else { "tcp" };
                    return Ok((
                        false,
                        format!(
                            "nc: connect to {dst} port {port} ({proto}) failed: Network is unreachable\n"
                        ),
                    ));
                }
                let payload = nc_payload(self.sim.netns_name(ns));
                let mut config = NcConfig::connect(SocketAddr::new(dst, *port), *udp, payload);
                config.verbose = true;
                config.wait = *timeout;
                let budget = *timeout * 2 + PROBE_SLACK;
                let id = self.run_app(ns, Nc::new(config), budget, |n| n.finished_at().is_some());
                let nc = self.app::<Nc>(ns, id);
                let ok = if *udp { !nc.received().is_empty() } else { nc.connected() };
                Ok((ok, format!("{}{}", nc.messages(), nc.output())))
            }
        }
    }

    fn curl(
        &mut self,
        netns: &Option<String>,
        url: &str,
        max_time: Duration,
    ) -> Result<(bool, String), String> {
        let ns = self.netns(netns)?;
        let mut config = HttpClientConfig::get(url);
        config.max_time = max_time;
        config.connect_timeout = config.connect_timeout.min(max_time);
        let budget = max_time + PROBE_SLACK;
        let id = self.run_app(ns, HttpClient::new(config), budget, |c| c.finished_at().is_some());
        let c = self.app::<HttpClient>(ns, id);
        Ok((c.exit_code() == Some(0), c.output().to_string()))
    }
}

fn transport(udp: bool) -> crate::stack::ports::Transport {
    if udp { crate::stack::ports::Transport::Udp } else { crate::stack::ports::Transport::Tcp }
}

/// Runs `text` as a script on a fresh host seeded with `seed`.
pub fn run_script(seed: u64, text: &str) -> ScriptReport {
    ScriptRunner::new(seed).run_script(text)
}
