//! Write your own application: a tiny key-value server and its client, speaking a line protocol
//! over real TCP between two network namespaces joined by a veth pair.
//!
//! Run with `cargo run --example custom_app`.
//!
//! An [`App`] is a sans-I/O program: kns polls it whenever its stack has news (a packet
//! arrived, a timer fired) and it answers through the sockets of [`AppCx`]. It never blocks
//! and never reads a clock: the `now` it is handed is virtual time.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use kns::sim::net::NetnsId;
use kns::sim::stack::{App, AppCx, AppPoll, ListenerId, SmolStack, StackConfig, TcpHandle};
use kns::sim::{Sim, Time};

/// `SET key value` → `OK`, `GET key` → the value or `(nil)`, `DEL key` → `1` or `0`.
#[derive(Default)]
struct KvServer {
    listener: Option<ListenerId>,
    /// Open connections and the bytes received on each that do not yet form a whole line.
    conns: Vec<(TcpHandle, Vec<u8>)>,
    store: BTreeMap<String, String>,
}

impl KvServer {
    fn answer(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["SET", key, value] => {
                self.store.insert(key.to_string(), value.to_string());
                "OK".into()
            }
            ["GET", key] => self.store.get(*key).cloned().unwrap_or_else(|| "(nil)".into()),
            ["DEL", key] => if self.store.remove(*key).is_some() { "1" } else { "0" }.into(),
            _ => format!("ERR unknown command '{line}'"),
        }
    }
}

impl App for KvServer {
    fn poll(&mut self, _now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        let listener = match self.listener {
            Some(l) => l,
            None => match cx.tcp_listen(6379, 16) {
                Ok(l) => *self.listener.insert(l),
                Err(_) => return AppPoll::Done, // the port is taken: give up, like a daemon would
            },
        };
        while let Some(conn) = cx.tcp_accept(listener) {
            self.conns.push((conn, Vec::new()));
        }
        let mut i = 0;
        while i < self.conns.len() {
            let handle = self.conns[i].0;
            let mut buf = std::mem::take(&mut self.conns[i].1);
            let _ = cx.tcp_recv(handle, &mut buf);
            // Answer every complete line; keep the rest for the next poll.
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let reply = self.answer(String::from_utf8_lossy(&line).trim());
                let _ = cx.tcp_send(handle, format!("{reply}\n").as_bytes());
            }
            // The client closed its side: close ours too and forget the connection.
            if cx.tcp(handle).is_none_or(|s| !s.may_recv()) {
                cx.tcp_release(handle);
                self.conns.swap_remove(i);
            } else {
                self.conns[i].1 = buf;
                i += 1;
            }
        }
        AppPoll::Idle
    }
}

/// Sends its requests one at a time, waiting for each reply, then closes.
struct KvClient {
    server: SocketAddr,
    requests: VecDeque<String>,
    conn: Option<TcpHandle>,
    /// The request in flight and when it was sent.
    waiting: Option<(String, Time)>,
    buf: Vec<u8>,
    /// (request, reply, round-trip time).
    transcript: Vec<(String, String, Duration)>,
}

impl KvClient {
    fn new(server: SocketAddr, requests: &[&str]) -> KvClient {
        KvClient {
            server,
            requests: requests.iter().map(|r| r.to_string()).collect(),
            conn: None,
            waiting: None,
            buf: Vec::new(),
            transcript: Vec::new(),
        }
    }
}

impl App for KvClient {
    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        let conn = match self.conn {
            Some(c) => c,
            None => match cx.tcp_connect(self.server) {
                Ok(c) => *self.conn.insert(c),
                Err(_) => return AppPoll::Done,
            },
        };
        let Some(socket) = cx.tcp(conn) else { return AppPoll::Done };
        if !socket.is_open() {
            return AppPoll::Done; // refused or reset
        }
        if !socket.may_send() {
            return AppPoll::Idle; // the handshake is still going on
        }
        let _ = cx.tcp_recv(conn, &mut self.buf);
        if let Some(end) = self.buf.iter().position(|b| *b == b'\n')
            && let Some((request, sent)) = self.waiting.take()
        {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            let reply = String::from_utf8_lossy(&line).trim().to_string();
            self.transcript.push((request, reply, now - sent));
        }
        if self.waiting.is_none() {
            match self.requests.pop_front() {
                Some(request) => {
                    let _ = cx.tcp_send(conn, format!("{request}\n").as_bytes());
                    self.waiting = Some((request, now));
                }
                None => {
                    cx.tcp_release(conn); // FIN: we are done talking
                    return AppPoll::Done;
                }
            }
        }
        AppPoll::Idle
    }
}

fn stack(sim: &mut Sim, ns: NetnsId) -> &mut SmolStack {
    sim.stack_mut::<SmolStack>(ns).expect("attached in main")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sim = Sim::new(1);
    // The network: two namespaces and a veth pair whose ends each add 1ms on the way out.
    for line in [
        "netns add client",
        "netns add server",
        "link add veth-c type veth peer name veth-s",
        "link set veth-c netns client",
        "link set veth-s netns server",
        "-n client addr add 10.0.0.1/24 dev veth-c",
        "-n server addr add 10.0.0.2/24 dev veth-s",
        "-n client link set veth-c up",
        "-n server link set veth-s up",
    ] {
        println!("$ ip {line}");
        sim.ip(None, line)?;
    }
    let client = sim.netns(Some("client"))?;
    let server = sim.netns(Some("server"))?;
    for (ns, name, dev) in [(client, "client", "veth-c"), (server, "server", "veth-s")] {
        let args = ["qdisc", "add", "dev", dev, "root", "netem", "delay", "1ms"];
        println!("$ ip netns exec {name} tc {}", args.join(" "));
        sim.tc(ns, &args)?;
    }

    // Each namespace gets a smoltcp socket layer; the apps run on top of it.
    for ns in [client, server] {
        let seed = sim.child_seed();
        sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(seed), sim.now()));
    }
    stack(&mut sim, server).spawn(KvServer::default());
    let requests = ["SET color blue", "GET color", "GET size", "DEL color", "GET color", "PING"];
    let app = stack(&mut sim, client).spawn(KvClient::new("10.0.0.2:6379".parse()?, &requests));

    sim.enable_trace();
    sim.kick(server);
    sim.kick(client);
    sim.run_for(Duration::from_secs(1));

    println!("\nThe conversation (each round trip crosses the 1ms link twice):");
    let kv = stack(&mut sim, client).app::<KvClient>(app).expect("spawned above");
    for (request, reply, rtt) in &kv.transcript {
        println!("  > {request:<16} < {reply:<32} ({:.1} ms)", rtt.as_secs_f64() * 1e3);
    }
    let all_answered = kv.transcript.len() == requests.len();

    // The trace records every hop of every frame. The first frames are ARP (who has
    // 10.0.0.2?) while the SYN waits in the neighbour table, then the SYN crosses and the
    // SYN-ACK comes back. Each line: virtual time, frame id, namespace/device, what happened.
    println!("\nThe first hops, frame by frame (#N is the frame's id):");
    for hop in sim.trace().iter().take(22) {
        println!("  {hop}");
    }
    println!("  ... {} hops in all", sim.trace().len());
    println!("\n{}", sim.conservation());
    if !all_answered {
        return Err("the client did not get every reply".into());
    }
    Ok(())
}
