//! `ping`: ICMP echo with iputils-style output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::stack::{App, AppCx, AppPoll, IcmpHandle, IcmpKind};
use crate::time::Time;

/// Options of [`Ping`] (`ping -c COUNT -i INTERVAL -W TIMEOUT -s SIZE -t TTL DST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingConfig {
    /// The address pinged.
    pub dst: IpAddr,
    /// Echo requests to send (`-c`).
    pub count: u16,
    /// Time between requests (`-i`, default 1 s).
    pub interval: Duration,
    /// How long to wait for replies after the last request (`-W`, default 10 s).
    pub timeout: Duration,
    /// Data bytes per request (`-s`, default 56).
    pub size: usize,
    /// TTL of the requests (`-t`, default 64).
    pub ttl: u8,
}

impl PingConfig {
    /// `ping -c count dst` with iputils' defaults otherwise.
    pub fn new(dst: IpAddr, count: u16) -> PingConfig {
        PingConfig {
            dst,
            count,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            size: 56,
            ttl: 64,
        }
    }
}

/// One echo reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingReply {
    /// The round-trip time.
    pub rtt: Duration,
    /// The TTL the reply arrived with.
    pub ttl: u8,
    /// ICMP bytes received.
    pub bytes: usize,
}

/// ICMP echo requests to one address; collects per-sequence round-trip times and prints like
/// iputils `ping`.
#[derive(Debug)]
pub struct Ping {
    config: PingConfig,
    socket: Option<IcmpHandle>,
    ident: u16,
    started: Option<Time>,
    next_send: Time,
    sent: u16,
    last_sent_at: Time,
    sent_at: BTreeMap<u16, Time>,
    replies: BTreeMap<u16, PingReply>,
    errors: BTreeMap<u16, String>,
    finished: Option<Time>,
    output: String,
}

impl Ping {
    /// A ping that starts at its first poll.
    pub fn new(config: PingConfig) -> Ping {
        Ping {
            config,
            socket: None,
            ident: 0,
            started: None,
            next_send: Time::ZERO,
            sent: 0,
            last_sent_at: Time::ZERO,
            sent_at: BTreeMap::new(),
            replies: BTreeMap::new(),
            errors: BTreeMap::new(),
            finished: None,
            output: String::new(),
        }
    }

    /// The text ping printed so far (the whole report once finished).
    pub fn output(&self) -> &str {
        &self.output
    }

    /// Whether at least one reply came back (`ping`'s exit status 0).
    pub fn success(&self) -> bool {
        !self.replies.is_empty()
    }

    /// Whether ping has finished.
    pub fn finished(&self) -> bool {
        self.finished.is_some()
    }

    /// Requests sent.
    pub fn transmitted(&self) -> u16 {
        self.sent
    }

    /// The replies, by sequence number.
    pub fn replies(&self) -> &BTreeMap<u16, PingReply> {
        &self.replies
    }

    /// The ICMP errors received, by sequence number (e.g. `Destination Host Unreachable`).
    pub fn errors(&self) -> &BTreeMap<u16, String> {
        &self.errors
    }

    fn start(&mut self, now: Time, cx: &mut AppCx<'_>) -> Result<IcmpHandle, String> {
        let c = &self.config;
        let _ = match c.dst {
            IpAddr::V4(dst) => writeln!(
                self.output,
                "PING {dst} ({dst}) {size}({total}) bytes of data.",
                size = c.size,
                total = c.size + 28
            ),
            IpAddr::V6(dst) => {
                writeln!(self.output, "PING {dst} ({dst}) {size} data bytes", size = c.size)
            }
        };
        if cx.source_address(c.dst).is_none() {
            return Err("ping: connect: Network is unreachable".to_owned());
        }
        self.ident = cx.next_icmp_ident();
        self.started = Some(now);
        self.next_send = now;
        cx.icmp_open_for(c.dst).map_err(|e| format!("ping: socket: {e}"))
    }

    fn receive(&mut self, now: Time, cx: &mut AppCx<'_>, socket: IcmpHandle) {
        while let Some(msg) = cx.icmp_recv(socket) {
            match msg.kind {
                IcmpKind::EchoReply { ident, seq, .. }
                    if ident == self.ident && msg.from == self.config.dst =>
                {
                    let Some(&sent_at) = self.sent_at.get(&seq) else {
                        continue;
                    };
                    if self.replies.contains_key(&seq) {
                        continue;
                    }
                    let reply = PingReply { rtt: now - sent_at, ttl: msg.ttl, bytes: msg.icmp_len };
                    let _ = writeln!(
                        self.output,
                        "{} bytes from {}: icmp_seq={seq} ttl={} time={}",
                        reply.bytes,
                        msg.from,
                        reply.ttl,
                        format_rtt(reply.rtt)
                    );
                    self.replies.insert(seq, reply);
                }
                IcmpKind::DestUnreachable { code, original }
                | IcmpKind::TimeExceeded { code, original }
                    if original.protocol == if self.config.dst.is_ipv6() { 58 } else { 1 }
                        && original.src_port == self.ident
                        && original.dst == self.config.dst =>
                {
                    let seq = original.dst_port;
                    if !self.sent_at.contains_key(&seq) || self.errors.contains_key(&seq) {
                        continue;
                    }
                    let text = match (msg.kind, msg.from.is_ipv6()) {
                        (IcmpKind::TimeExceeded { .. }, false) => time_exceeded_text(code),
                        (_, false) => unreachable_text(code),
                        (IcmpKind::TimeExceeded { .. }, true) => time_exceeded_text_v6(code),
                        (_, true) => unreachable_text_v6(code),
                    };
                    let _ = writeln!(self.output, "From {} icmp_seq={seq} {text}", msg.from);
                    self.errors.insert(seq, text);
                }
                _ => {}
            }
        }
    }

    fn finish(&mut self, now: Time) {
        let c = &self.config;
        let started = self.started.unwrap_or(now);
        let transmitted = u64::from(self.sent);
        let received = self.replies.len() as u64;
        let _ = writeln!(self.output, "\n--- {} ping statistics ---", c.dst);
        let mut line = format!("{transmitted} packets transmitted, {received} received");
        if !self.errors.is_empty() {
            let _ = write!(line, ", +{} errors", self.errors.len());
        }
        let loss = if transmitted == 0 {
            0.0
        } else {
            (transmitted - received) as f64 * 100.0 / transmitted as f64
        };
        let _ = writeln!(
            self.output,
            "{line}, {}% packet loss, time {}ms",
            format_g(loss),
            (now - started).as_millis()
        );
        if received > 0 {
            let micros: Vec<u128> = self.replies.values().map(|r| r.rtt.as_micros()).collect();
            let n = micros.len() as u128;
            let min = micros.iter().copied().min().unwrap_or(0);
            let max = micros.iter().copied().max().unwrap_or(0);
            let avg = micros.iter().sum::<u128>() / n;
            let avg_sq = micros.iter().map(|m| m * m).sum::<u128>() / n;
            let mdev = isqrt(avg_sq.saturating_sub(avg * avg));
            let _ = writeln!(
                self.output,
                "rtt min/avg/max/mdev = {}/{}/{}/{} ms",
                ms3(min),
                ms3(avg),
                ms3(max),
                ms3(mdev)
            );
        }
        self.finished = Some(now);
    }
}

impl App for Ping {
    /// Like ping interrupted with Ctrl-C: the statistics are printed.
    fn stop(&mut self, now: Time, cx: &mut AppCx<'_>) {
        if self.finished.is_none() {
            self.finish(now);
        }
        if let Some(s) = self.socket.take() {
            cx.remove(s);
        }
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.finished.is_some() {
            return AppPoll::Done;
        }
        let socket = match self.socket {
            Some(s) => s,
            None => match self.start(now, cx) {
                Ok(s) => {
                    self.socket = Some(s);
                    s
                }
                Err(message) => {
                    let _ = writeln!(self.output, "{message}");
                    self.finished = Some(now);
                    return AppPoll::Done;
                }
            },
        };
        self.receive(now, cx, socket);
        while self.sent < self.config.count && now >= self.next_send {
            let seq = self.sent + 1;
            let data = payload(self.config.size, now);
            match cx.icmp_send_echo(
                socket,
                self.config.dst,
                self.ident,
                seq,
                &data,
                self.config.ttl,
            ) {
                Ok(()) => {}
                Err(e) => {
                    let _ = writeln!(self.output, "ping: sendmsg: {e}");
                }
            }
            self.sent = seq;
            self.sent_at.insert(seq, now);
            self.last_sent_at = now;
            self.next_send += self.config.interval;
        }
        let answered = (self.replies.len() + self.errors.len()) as u64;
        let all_sent = self.sent >= self.config.count;
        let linger_end = self.last_sent_at + self.config.timeout;
        if all_sent && (answered >= u64::from(self.config.count) || now >= linger_end) {
            self.finish(now);
            cx.remove(socket);
            return AppPoll::Done;
        }
        if all_sent { AppPoll::WakeAt(linger_end) } else { AppPoll::WakeAt(self.next_send) }
    }
}

/// The echo data: the send time (as iputils puts a timestamp first), then a byte pattern.
fn payload(size: usize, now: Time) -> Vec<u8> {
    let mut data: Vec<u8> = (0..size).map(|i| (i % 256) as u8).collect();
    let stamp = now.as_nanos().to_be_bytes();
    let n = stamp.len().min(size);
    data[..n].copy_from_slice(&stamp[..n]);
    data
}

/// An RTT as iputils prints it: 3 decimals below 1 ms, 2 below 10 ms, 1 below 100 ms.
pub fn format_rtt(rtt: Duration) -> String {
    let us = rtt.as_micros();
    if us >= 100_000 - 50 {
        format!("{} ms", (us + 500) / 1000)
    } else if us >= 10_000 - 5 {
        format!("{}.{} ms", (us + 50) / 1000, ((us + 50) % 1000) / 100)
    } else if us >= 1000 {
        format!("{}.{:02} ms", (us + 5) / 1000, ((us + 5) % 1000) / 10)
    } else {
        format!("{}.{:03} ms", us / 1000, us % 1000)
    }
}

/// Microseconds as milliseconds with three decimals.
fn ms3(us: u128) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128;
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

/// `printf("%g")`: six significant digits, trailing zeros removed.
pub(crate) fn format_g(v: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (5 - magnitude).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// iputils' wording for ICMP destination unreachable codes.
pub fn unreachable_text(code: u8) -> String {
    match code {
        0 => "Destination Net Unreachable".to_owned(),
        1 => "Destination Host Unreachable".to_owned(),
        2 => "Destination Protocol Unreachable".to_owned(),
        3 => "Destination Port Unreachable".to_owned(),
        4 => "Frag needed and DF set".to_owned(),
        5 => "Source Route Failed".to_owned(),
        6 => "Destination Net Unknown".to_owned(),
        7 => "Destination Host Unknown".to_owned(),
        8 => "Source Host Isolated".to_owned(),
        9 => "Destination Net Prohibited".to_owned(),
        10 => "Destination Host Prohibited".to_owned(),
        11 => "Destination Net Unreachable for Type of Service".to_owned(),
        12 => "Destination Host Unreachable for Type of Service".to_owned(),
        13 => "Packet filtered".to_owned(),
        14 => "Precedence Violation".to_owned(),
        15 => "Precedence Cutoff".to_owned(),
        other => format!("Dest Unreachable, Bad Code: {other}"),
    }
}

/// iputils' wording for ICMP time exceeded codes.
pub fn time_exceeded_text(code: u8) -> String {
    match code {
        0 => "Time to live exceeded".to_owned(),
        1 => "Frag reassembly time exceeded".to_owned(),
        other => format!("Time exceeded, Bad Code: {other}"),
    }
}

/// iputils' wording for ICMPv6 destination unreachable codes.
pub fn unreachable_text_v6(code: u8) -> String {
    let why = match code {
        0 => "No route",
        1 => "Administratively prohibited",
        2 => "Beyond scope of source address",
        3 => "Address unreachable",
        4 => "Port unreachable",
        other => return format!("Destination unreachable: Unknown code {other}"),
    };
    format!("Destination unreachable: {why}")
}

/// iputils' wording for ICMPv6 time exceeded codes.
pub fn time_exceeded_text_v6(code: u8) -> String {
    match code {
        0 => "Time exceeded: Hop limit".to_owned(),
        1 => "Time exceeded: Defragmentation failure".to_owned(),
        other => format!("Time exceeded: code {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_and_loss_formats_match_iputils() {
        assert_eq!(format_rtt(Duration::from_micros(100)), "0.100 ms");
        assert_eq!(format_rtt(Duration::from_micros(1234)), "1.23 ms");
        assert_eq!(format_rtt(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(format_rtt(Duration::from_micros(123_456)), "123 ms");
        assert_eq!(format_g(0.0), "0");
        assert_eq!(format_g(100.0), "100");
        assert_eq!(format_g(100.0 / 3.0), "33.3333");
        assert_eq!(format_g(200.0 / 3.0), "66.6667");
        assert_eq!(format_g(50.0), "50");
        assert_eq!(isqrt(99), 9);
        assert_eq!(isqrt(100), 10);
    }
}
