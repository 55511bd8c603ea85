//! Connection probes: one attempt to reach (address, port, protocol), classified the way
//! `kns matrix --mode packet` and `kns probe` report it.
//!
//! - **TCP**: SYN; a completed handshake is [`ProbeOutcome::Connected`], after which the probe
//!   half-closes (FIN) and reads what the server says before it closes (an
//!   [`AgnhostServer`](super::AgnhostServer) answers with the pod's name); a RST is
//!   [`ProbeOutcome::Refused`].
//! - **UDP**: one datagram ([`ProbeConfig::udp_payload`]); a datagram back from the target is
//!   `Connected`, ICMP port unreachable is `Refused`. A UDP port that is open but silent reads as
//!   `Filtered`, as it does for any UDP scanner.
//! - **SCTP**: an INIT through the stack's SCTP layer; INIT ACK is `Connected` (and the probe
//!   aborts the association, as a port scanner does), ABORT is `Refused`.
//!
//! For every protocol an ICMP destination unreachable or time exceeded about the probe is
//! [`ProbeOutcome::Unreachable`] (port unreachable, and protocol unreachable for SCTP, are
//! `Refused`, as Linux reports them as `ECONNREFUSED`); no answer before
//! [`ProbeConfig::timeout`] is [`ProbeOutcome::Filtered`].
//!
//! A [`ProbeBatch`] runs many probes from one stack, a bounded number at a time, sharing one
//! ICMP socket per IP version; a [`ConnectProbe`] is a batch of one. Probes never poll: they ask
//! to be woken at their next deadline ([`AppPoll::WakeAt`]) and otherwise run when a packet
//! arrives.
//!
//! Virtual cost of one probe on a direct link with one-way delay `d` (the TCP reply wait adds
//! one more round trip for the server's name and FIN): refused ≈ 2d, connected ≈ 2d (UDP,
//! SCTP) or 4d (TCP with the reply), filtered = `timeout`, unreachable ≈ the time to the
//! reporting router and back.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kns_core::flow::Protocol;
use smoltcp::socket::tcp::State;

use crate::stack::{
    App, AppCx, AppPoll, IcmpHandle, IcmpMessage, SctpHandle, SctpState, StackError, TcpHandle,
    UdpHandle,
};
use crate::time::Time;

/// What to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeSpec {
    /// The target address and port.
    pub to: SocketAddr,
    /// The transport protocol.
    pub protocol: Protocol,
}

impl ProbeSpec {
    /// A probe of `protocol` to `to`.
    pub fn new(to: SocketAddr, protocol: Protocol) -> ProbeSpec {
        ProbeSpec { to, protocol }
    }
}

impl fmt::Display for ProbeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.to, self.protocol)
    }
}

/// Options of a [`ProbeBatch`] or [`ConnectProbe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// How long to wait for the handshake, the UDP answer or an error (default 1 s: kns links
    /// answer within milliseconds, and a lost SYN is retransmitted after 1 s).
    pub timeout: Duration,
    /// How long a connected TCP probe waits for the server's reply and FIN (default 1 s).
    pub reply_wait: Duration,
    /// The datagram a UDP probe sends (default `hostname\n`, which agnhost answers).
    pub udp_payload: Vec<u8>,
    /// Probes in flight at once (default 32; each holds a socket and is checked at every poll
    /// of the stack).
    pub concurrency: usize,
    /// Buffer per direction of a TCP probe's socket (default 512 bytes).
    pub tcp_buffer: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            timeout: Duration::from_secs(1),
            reply_wait: Duration::from_secs(1),
            udp_payload: b"hostname\n".to_vec(),
            concurrency: 32,
            tcp_buffer: 512,
        }
    }
}

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The handshake completed (TCP, SCTP) or the target answered (UDP).
    Connected {
        /// What the server sent (TCP: before closing; UDP: the answer; SCTP: nothing).
        reply: Option<String>,
        /// From the first packet sent to the handshake's completion or the answer.
        rtt: Duration,
    },
    /// TCP RST, ICMP port (or, for SCTP, protocol) unreachable, or SCTP ABORT.
    Refused,
    /// No answer before the timeout.
    Filtered,
    /// An ICMP destination unreachable (other than port) or time exceeded about the probe.
    Unreachable {
        /// The router or host that reported it.
        from: IpAddr,
        /// ICMP type as numbered in the error's IP version (ICMPv4: 3 unreachable, 11 time
        /// exceeded; ICMPv6: 1 unreachable, 3 time exceeded).
        icmp_type: u8,
        /// ICMP code (ICMPv4 unreachable: 0 net, 1 host, 9/10/13 prohibited).
        code: u8,
    },
    /// The local stack could not send it (no source address, ports exhausted, ...).
    Failed(StackError),
}

impl ProbeOutcome {
    /// Whether the target was reached.
    pub fn is_connected(&self) -> bool {
        matches!(self, ProbeOutcome::Connected { .. })
    }
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeOutcome::Connected { reply: Some(r), rtt } => {
                write!(f, "connected in {}µs, reply {r:?}", rtt.as_micros())
            }
            ProbeOutcome::Connected { reply: None, rtt } => {
                write!(f, "connected in {}µs", rtt.as_micros())
            }
            ProbeOutcome::Refused => f.write_str("refused"),
            ProbeOutcome::Filtered => f.write_str("filtered (timed out)"),
            ProbeOutcome::Unreachable { from, icmp_type, code } => {
                write!(f, "unreachable (ICMP type {icmp_type} code {code} from {from})")
            }
            ProbeOutcome::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// One finished probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// What was probed.
    pub spec: ProbeSpec,
    /// How it ended.
    pub outcome: ProbeOutcome,
    /// When its first packet was sent.
    pub started: Time,
    /// When it ended (its socket released).
    pub finished: Time,
}

#[derive(Debug)]
enum Task {
    Tcp { h: TcpHandle, port: u16, established: Option<Duration>, reply: Vec<u8> },
    Udp { h: UdpHandle, port: u16 },
    Sctp { h: SctpHandle, port: u16 },
}

impl Task {
    fn local_port(&self) -> u16 {
        match self {
            Task::Tcp { port, .. } | Task::Udp { port, .. } | Task::Sctp { port, .. } => *port,
        }
    }

    /// Frees the socket (TCP: graceful close once connected, silent removal otherwise).
    fn release(&self, cx: &mut AppCx<'_>) {
        match *self {
            Task::Tcp { h, established: Some(_), .. } => cx.tcp_release(h),
            Task::Tcp { h, established: None, .. } => cx.remove(h),
            Task::Udp { h, .. } => cx.remove(h),
            Task::Sctp { h, .. } => cx.sctp_close(h),
        }
    }
}

#[derive(Debug)]
struct Active {
    index: usize,
    started: Time,
    deadline: Time,
    task: Task,
}

/// Runs probes from one stack, at most [`ProbeConfig::concurrency`] at a time, in order.
#[derive(Debug)]
pub struct ProbeBatch {
    specs: Vec<ProbeSpec>,
    config: ProbeConfig,
    next: usize,
    active: Vec<Active>,
    results: Vec<Option<ProbeResult>>,
    icmp4: Option<IcmpHandle>,
    icmp6: Option<IcmpHandle>,
    finished_at: Option<Time>,
}

impl ProbeBatch {
    /// A batch that starts at its first poll.
    pub fn new(specs: Vec<ProbeSpec>, config: ProbeConfig) -> ProbeBatch {
        let results = vec![None; specs.len()];
        ProbeBatch {
            specs,
            config,
            next: 0,
            active: Vec::new(),
            results,
            icmp4: None,
            icmp6: None,
            finished_at: None,
        }
    }

    /// The results in the order of the specs (`None`: not finished yet).
    pub fn results(&self) -> &[Option<ProbeResult>] {
        &self.results
    }

    /// How many probes have finished.
    pub fn completed(&self) -> usize {
        self.results.iter().filter(|r| r.is_some()).count()
    }

    /// When the last probe finished.
    pub fn finished_at(&self) -> Option<Time> {
        self.finished_at
    }

    fn finish(&mut self, now: Time, cx: &mut AppCx<'_>, a: Active, outcome: ProbeOutcome) {
        a.task.release(cx);
        let spec = self.specs[a.index];
        self.results[a.index] =
            Some(ProbeResult { spec, outcome, started: a.started, finished: now });
    }

    fn start(&mut self, now: Time, cx: &mut AppCx<'_>, index: usize) {
        let spec = self.specs[index];
        let v6 = spec.to.is_ipv6();
        let icmp = if v6 { &mut self.icmp6 } else { &mut self.icmp4 };
        if icmp.is_none() {
            // Best effort: without it only RST, ABORT and timeouts are seen.
            *icmp = cx.icmp_open_for(spec.to.ip()).ok();
        }
        let task = match spec.protocol {
            Protocol::Tcp => cx.tcp_connect_sized(spec.to, self.config.tcp_buffer).map(|h| {
                let mut port = 0;
                if let Some(s) = cx.tcp(h) {
                    port = s.local_endpoint().map_or(0, |e| e.port);
                    // Acknowledge at once: the socket is released in the poll that sees the
                    // server's FIN, and a delayed ACK would be lost with it (the server would
                    // retransmit its answer and be reset).
                    s.set_ack_delay(None);
                }
                Task::Tcp { h, port, established: None, reply: Vec::new() }
            }),
            Protocol::Udp => cx.udp_bind_sized(0, 2, 512).and_then(|h| {
                let port = cx.udp_local_port(h).unwrap_or(0);
                match cx.udp_send(h, spec.to, &self.config.udp_payload) {
                    Ok(()) => Ok(Task::Udp { h, port }),
                    Err(e) => {
                        cx.remove(h);
                        Err(e)
                    }
                }
            }),
            Protocol::Sctp => cx.sctp_connect(spec.to).map(|h| {
                let port = cx.sctp_local_port(h).unwrap_or(0);
                Task::Sctp { h, port }
            }),
        };
        let task = match task {
            Ok(t) => t,
            Err(e) => {
                let result = ProbeResult {
                    spec,
                    outcome: ProbeOutcome::Failed(e),
                    started: now,
                    finished: now,
                };
                self.results[index] = Some(result);
                return;
            }
        };
        self.active.push(Active { index, started: now, deadline: now + self.config.timeout, task });
    }
}

/// Advances one probe of `spec`; returns its outcome once it has one.
fn advance(
    spec: ProbeSpec,
    config: &ProbeConfig,
    now: Time,
    cx: &mut AppCx<'_>,
    a: &mut Active,
) -> Option<ProbeOutcome> {
    match &mut a.task {
        Task::Tcp { h, established, reply, .. } => {
            let state = cx.tcp_state(*h);
            if established.is_none() {
                match state {
                    State::SynSent | State::SynReceived | State::Listen => {
                        return (now >= a.deadline).then_some(ProbeOutcome::Filtered);
                    }
                    State::Closed => return Some(ProbeOutcome::Refused),
                    _ => {
                        *established = Some(now.saturating_since(a.started));
                        // No request: the half-close asks the server to answer and close.
                        cx.tcp_close(*h);
                        a.deadline = now + config.reply_wait;
                    }
                }
            }
            let _ = cx.tcp_recv(*h, reply);
            let peer_closed = matches!(
                cx.tcp_state(*h),
                State::CloseWait
                    | State::LastAck
                    | State::Closing
                    | State::TimeWait
                    | State::Closed
            );
            if peer_closed || now >= a.deadline {
                let text = (!reply.is_empty()).then(|| String::from_utf8_lossy(reply).into_owned());
                let rtt = established.unwrap_or_default();
                return Some(ProbeOutcome::Connected { reply: text, rtt });
            }
            None
        }
        Task::Udp { h, .. } => {
            while let Some((data, from)) = cx.udp_recv(*h) {
                if from == spec.to {
                    let reply = Some(String::from_utf8_lossy(&data).into_owned());
                    let rtt = now.saturating_since(a.started);
                    return Some(ProbeOutcome::Connected { reply, rtt });
                }
            }
            (now >= a.deadline).then_some(ProbeOutcome::Filtered)
        }
        Task::Sctp { h, .. } => match cx.sctp_state(*h) {
            Some(SctpState::InitAcked) => {
                Some(ProbeOutcome::Connected { reply: None, rtt: now.saturating_since(a.started) })
            }
            Some(SctpState::Aborted) | None => Some(ProbeOutcome::Refused),
            Some(SctpState::InitSent) => (now >= a.deadline).then_some(ProbeOutcome::Filtered),
        },
    }
}

impl ProbeBatch {
    /// Matches ICMP errors to the probes they are about.
    fn read_icmp(&mut self, now: Time, cx: &mut AppCx<'_>) {
        for icmp in [self.icmp4, self.icmp6].into_iter().flatten() {
            while let Some(msg) = cx.icmp_recv(icmp) {
                self.icmp_error(now, cx, &msg);
            }
        }
    }

    fn icmp_error(&mut self, now: Time, cx: &mut AppCx<'_>, msg: &IcmpMessage) {
        let Some((icmp_type, code, original)) = msg.error() else { return };
        let pos = self.active.iter().position(|a| {
            let spec = self.specs[a.index];
            spec.protocol.ip_number() == original.protocol
                && a.task.local_port() == original.src_port
                && spec.to.ip() == original.dst
                && spec.to.port() == original.dst_port
        });
        let Some(pos) = pos else { return };
        // A TCP probe already connected is not undone by a late error.
        if matches!(self.active[pos].task, Task::Tcp { established: Some(_), .. }) {
            return;
        }
        let protocol_unreachable =
            !msg.from.is_ipv6() && icmp_type == 3 && code == 2 && original.protocol == 132;
        let outcome = if msg.is_port_unreachable() || protocol_unreachable {
            ProbeOutcome::Refused
        } else {
            ProbeOutcome::Unreachable { from: msg.from, icmp_type, code }
        };
        let a = self.active.swap_remove(pos);
        self.finish(now, cx, a, outcome);
    }
}

impl App for ProbeBatch {
    fn stop(&mut self, now: Time, cx: &mut AppCx<'_>) {
        for a in std::mem::take(&mut self.active) {
            a.task.release(cx);
        }
        for icmp in [self.icmp4.take(), self.icmp6.take()].into_iter().flatten() {
            cx.remove(icmp);
        }
        self.finished_at.get_or_insert(now);
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.finished_at.is_some() {
            return AppPoll::Done;
        }
        self.read_icmp(now, cx);
        let mut i = 0;
        while i < self.active.len() {
            let spec = self.specs[self.active[i].index];
            match advance(spec, &self.config, now, cx, &mut self.active[i]) {
                Some(outcome) => {
                    let a = self.active.swap_remove(i);
                    self.finish(now, cx, a, outcome);
                }
                None => i += 1,
            }
        }
        while self.active.len() < self.config.concurrency.max(1) && self.next < self.specs.len() {
            let index = self.next;
            self.next += 1;
            self.start(now, cx, index);
        }
        if self.active.is_empty() && self.next == self.specs.len() {
            for icmp in [self.icmp4.take(), self.icmp6.take()].into_iter().flatten() {
                cx.remove(icmp);
            }
            self.finished_at = Some(now);
            return AppPoll::Done;
        }
        self.active.iter().map(|a| a.deadline).min().map_or(AppPoll::Idle, AppPoll::WakeAt)
    }
}

/// One probe: a [`ProbeBatch`] of one spec.
#[derive(Debug)]
pub struct ConnectProbe {
    batch: ProbeBatch,
}

impl ConnectProbe {
    /// A probe of `spec` that starts at its first poll.
    pub fn new(spec: ProbeSpec, config: ProbeConfig) -> ConnectProbe {
        ConnectProbe { batch: ProbeBatch::new(vec![spec], config) }
    }

    /// The result once finished.
    pub fn result(&self) -> Option<&ProbeResult> {
        self.batch.results.first().and_then(Option::as_ref)
    }

    /// The outcome once finished.
    pub fn outcome(&self) -> Option<&ProbeOutcome> {
        self.result().map(|r| &r.outcome)
    }
}

impl App for ConnectProbe {
    fn stop(&mut self, now: Time, cx: &mut AppCx<'_>) {
        self.batch.stop(now, cx);
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        self.batch.poll(now, cx)
    }
}
