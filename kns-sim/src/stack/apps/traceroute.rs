//! `traceroute`: UDP probes to ports 33434 and up with increasing TTL; routers answer with ICMP
//! time exceeded, the destination with port unreachable. Output like `traceroute -n`.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::stack::{App, AppCx, AppPoll, IcmpHandle, IcmpKind, UdpHandle};
use crate::time::Time;

/// Options of [`Traceroute`] (`traceroute -n -m MAX -q PROBES -w WAIT -p PORT DST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracerouteConfig {
    /// The destination.
    pub dst: IpAddr,
    /// The largest TTL tried (`-m`, default 30).
    pub max_hops: u8,
    /// Probes per hop (`-q`, default 3).
    pub probes: u8,
    /// How long to wait for each probe's answer (`-w`, default 5 s).
    pub wait: Duration,
    /// The first destination port; each probe uses the next (`-p`, default 33434).
    pub first_port: u16,
    /// The whole probe's size, IP header included (default 60 for IPv4, 80 for IPv6).
    pub packet_len: usize,
}

impl TracerouteConfig {
    /// `traceroute -n dst` with the usual defaults.
    pub fn new(dst: IpAddr) -> TracerouteConfig {
        TracerouteConfig {
            dst,
            max_hops: 30,
            probes: 3,
            wait: Duration::from_secs(5),
            first_port: 33434,
            packet_len: if dst.is_ipv6() { 80 } else { 60 },
        }
    }
}

/// The answer to one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// An ICMP answer from `from` after `rtt`; `note` is traceroute's mark (`!H`, `!N`, `!P`,
    /// `!X`, ...) for unreachables other than the destination's port unreachable.
    Reply {
        /// Who answered.
        from: IpAddr,
        /// The round-trip time.
        rtt: Duration,
        /// The annotation, if any.
        note: Option<String>,
    },
    /// No answer within the wait.
    Timeout,
}

/// One line of traceroute: a TTL and its probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The TTL.
    pub ttl: u8,
    /// The probes' answers.
    pub probes: Vec<Probe>,
}

/// Traces the path to a destination.
#[derive(Debug)]
pub struct Traceroute {
    config: TracerouteConfig,
    socket: Option<(UdpHandle, IcmpHandle, u16)>,
    ttl: u8,
    next_port: u16,
    waiting: Option<(u16, Time)>,
    current: Vec<Probe>,
    hops: Vec<Hop>,
    reached: bool,
    stop: bool,
    output: String,
    finished_at: Option<Time>,
}

impl Traceroute {
    /// A traceroute that starts at its first poll.
    pub fn new(config: TracerouteConfig) -> Traceroute {
        let next_port = config.first_port;
        Traceroute {
            config,
            socket: None,
            ttl: 1,
            next_port,
            waiting: None,
            current: Vec::new(),
            hops: Vec::new(),
            reached: false,
            stop: false,
            output: String::new(),
            finished_at: None,
        }
    }

    /// The hops traced so far.
    pub fn hops(&self) -> &[Hop] {
        &self.hops
    }

    /// Whether the destination answered.
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// What traceroute printed so far.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// When it finished.
    pub fn finished_at(&self) -> Option<Time> {
        self.finished_at
    }

    fn finish(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if let Some((udp, icmp, _)) = self.socket.take() {
            cx.remove(udp);
            cx.remove(icmp);
        }
        self.finished_at = Some(now);
        AppPoll::Done
    }

    fn start(&mut self, cx: &mut AppCx<'_>) -> Result<(), String> {
        let c = &self.config;
        let _ = writeln!(
            self.output,
            "traceroute to {dst} ({dst}), {} hops max, {} byte packets",
            c.max_hops,
            c.packet_len,
            dst = c.dst
        );
        if cx.source_address(c.dst).is_none() {
            return Err("connect: Network is unreachable".to_owned());
        }
        let udp = cx.udp_bind(0).map_err(|e| format!("traceroute: {e}"))?;
        let icmp = cx.icmp_open_for(c.dst).map_err(|e| format!("traceroute: {e}"))?;
        let port = cx.udp_local_port(udp).unwrap_or(0);
        self.socket = Some((udp, icmp, port));
        Ok(())
    }

    /// Matches ICMP answers to the probe in flight.
    fn collect(&mut self, now: Time, cx: &mut AppCx<'_>, icmp: IcmpHandle, local_port: u16) {
        while let Some(msg) = cx.icmp_recv(icmp) {
            let Some((port, sent_at)) = self.waiting else {
                continue;
            };
            let Some((_, code, original)) = msg.error() else {
                continue;
            };
            if original.protocol != 17
                || original.src_port != local_port
                || original.dst_port != port
                || original.dst != self.config.dst
            {
                continue;
            }
            let note = match msg.kind {
                IcmpKind::DestUnreachable { .. } if msg.is_port_unreachable() => None,
                IcmpKind::DestUnreachable { .. } => {
                    Some(unreachable_mark(code, msg.from.is_ipv6()))
                }
                _ => None,
            };
            if msg.is_port_unreachable() && msg.from == self.config.dst {
                self.reached = true;
            }
            if note.is_some() {
                self.stop = true;
            }
            self.current.push(Probe::Reply {
                from: msg.from,
                rtt: now - sent_at,
                note: note.map(str::to_owned),
            });
            self.waiting = None;
        }
    }

    fn render(&mut self, hop: &Hop) {
        let mut line = format!("{:2} ", hop.ttl);
        let mut last: Option<IpAddr> = None;
        for probe in &hop.probes {
            match probe {
                Probe::Reply { from, rtt, note } => {
                    if last != Some(*from) {
                        let _ = write!(line, " {from}");
                        last = Some(*from);
                    }
                    let us = rtt.as_micros();
                    let _ = write!(line, "  {}.{:03} ms", us / 1000, us % 1000);
                    if let Some(n) = note {
                        let _ = write!(line, " {n}");
                    }
                }
                Probe::Timeout => line.push_str(" *"),
            }
        }
        let _ = writeln!(self.output, "{line}");
    }
}

/// traceroute's mark for an unreachable other than port unreachable.
fn unreachable_mark(code: u8, v6: bool) -> &'static str {
    match (v6, code) {
        (false, 0) | (true, 0) => "!N",
        (false, 1) | (true, 3) => "!H",
        (false, 2) => "!P",
        (false, 4) => "!F",
        (false, 5) | (true, 2) => "!S",
        (false, 9 | 10 | 13) | (true, 1 | 5 | 6) => "!X",
        _ => "!U",
    }
}

impl App for Traceroute {
    fn stop(&mut self, now: Time, cx: &mut AppCx<'_>) {
        if self.finished_at.is_none() {
            self.finish(now, cx);
        }
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.finished_at.is_some() {
            return AppPoll::Done;
        }
        if self.socket.is_none()
            && let Err(message) = self.start(cx)
        {
            let _ = writeln!(self.output, "{message}");
            return self.finish(now, cx);
        }
        let Some((udp, icmp, local_port)) = self.socket else {
            return self.finish(now, cx);
        };
        self.collect(now, cx, icmp, local_port);
        loop {
            if let Some((_, sent_at)) = self.waiting {
                if now < sent_at + self.config.wait {
                    return AppPoll::WakeAt(sent_at + self.config.wait);
                }
                self.current.push(Probe::Timeout);
                self.waiting = None;
            }
            if self.current.len() == usize::from(self.config.probes) {
                let hop = Hop { ttl: self.ttl, probes: std::mem::take(&mut self.current) };
                self.render(&hop);
                self.hops.push(hop);
                if self.reached || self.stop || self.ttl >= self.config.max_hops {
                    return self.finish(now, cx);
                }
                self.ttl += 1;
            }
            // Send the next probe.
            let port = self.next_port;
            self.next_port = self.next_port.wrapping_add(1);
            cx.udp_set_hop_limit(udp, Some(self.ttl));
            let headers = if self.config.dst.is_ipv6() { 48 } else { 28 };
            let data = vec![0x40u8; self.config.packet_len.saturating_sub(headers)];
            let to = SocketAddr::new(self.config.dst, port);
            if cx.udp_send(udp, to, &data).is_err() {
                self.current.push(Probe::Timeout);
                continue;
            }
            self.waiting = Some((port, now));
            return AppPoll::WakeAt(now + self.config.wait);
        }
    }
}
