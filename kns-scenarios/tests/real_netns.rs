//! Differential test against real Linux: the example scripts' `ip` commands are run both in
//! kns and in real network namespaces, and the pings must succeed and fail alike.
//!
//! It needs root, iproute2 and python3 (whose raw ICMP socket stands in for `ping`, which is
//! not on every machine). Where any is missing, or namespaces cannot be created, it prints why
//! and passes without testing. It touches nothing outside the namespaces it creates: the
//! script's "host" is a namespace of its own, and every name carries a unique prefix.

use std::path::PathBuf;
use std::process::Command;

use kns_sim::script::ScriptRunner;

/// Sends `count` ICMP echo requests to argv[1], waiting argv[3] seconds for each reply; exits 0
/// when at least one reply came back.
const PING_PY: &str = r#"
import os, socket, struct, sys, time
dst, count, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident, got = os.getpid() & 0xffff, 0
for seq in range(1, count + 1):
    pkt = struct.pack('!BBHHH', 8, 0, 0, ident, seq) + b'kns-diff' * 7
    pkt = pkt[:2] + struct.pack('!H', csum(pkt)) + pkt[4:]
    try:
        s.sendto(pkt, (dst, 0))
    except OSError:
        continue
    end = time.time() + wait
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            break
        ihl = (data[0] & 15) * 4
        t, _, _, i, q = struct.unpack('!BBHHH', data[ihl:ihl + 8])
        if t == 0 and i == ident and q == seq:
            got += 1
            break
sys.exit(0 if got else 1)
"#;

fn example(name: &str) -> String {
    let path: PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "..", "examples", "net", name].iter().collect();
    std::fs::read_to_string(path).expect("example script")
}

fn sh(args: &[String]) -> bool {
    Command::new(&args[0]).args(&args[1..]).output().map(|o| o.status.success()).unwrap_or(false)
}

/// Why the real side cannot run here, if it cannot.
fn unavailable(prefix: &str) -> Option<String> {
    let probe = format!("{prefix}probe");
    let ok = |cmd: &[&str]| sh(&cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    if !ok(&["ip", "-V"]) {
        return Some("iproute2 (`ip`) is not installed".into());
    }
    if !ok(&["python3", "-c", "pass"]) {
        return Some("python3 is not installed".into());
    }
    if !ok(&["ip", "netns", "add", &probe]) {
        return Some("`ip netns add` is not permitted (needs root and CAP_SYS_ADMIN)".into());
    }
    ok(&["ip", "netns", "del", &probe]);
    None
}

/// Deletes the namespaces it names when dropped, even if the test panics.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.0.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Runs `script` in real namespaces; returns, for each ping line, whether it got a reply.
fn run_real(script: &str, prefix: &str, created: &mut Namespaces) -> Vec<(usize, bool)> {
    let host = format!("{prefix}host");
    assert!(sh(&["ip".into(), "netns".into(), "add".into(), host.clone()]), "create {host}");
    created.0.push(host.clone());
    let rename = |n: &str| format!("{prefix}{n}");
    let mut pings = Vec::new();
    for (i, line) in script.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words: Vec<String> = line.split_whitespace().map(String::from).collect();
        // The namespace a command runs in, and the command itself.
        let mut netns = host.clone();
        if words.len() > 3 && words[0] == "ip" && words[1] == "netns" && words[2] == "exec" {
            netns = rename(&words[3]);
            words.drain(..4);
        }
        if words.len() > 2 && words[0] == "ip" && words[1] == "-n" {
            netns = rename(&words[2]);
            words.drain(1..3);
        }
        if words.len() == 4 && words[..3] == ["ip", "netns", "add"] {
            let ns = rename(&words[3]);
            assert!(sh(&["ip".into(), "netns".into(), "add".into(), ns.clone()]), "create {ns}");
            created.0.push(ns);
            continue;
        }
        for k in 1..words.len() {
            if words[k - 1] == "netns" {
                words[k] = rename(&words[k]);
            }
        }
        let mut cmd: Vec<String> = vec!["ip".into(), "netns".into(), "exec".into(), netns];
        match words[0].as_str() {
            "ping" => {
                let mut count = "4".to_string();
                let mut wait = "1".to_string();
                let mut it = words[1..].iter();
                let mut dst = String::new();
                while let Some(w) = it.next() {
                    match w.as_str() {
                        "-c" => count = it.next().unwrap().clone(),
                        "-W" => wait = it.next().unwrap().clone(),
                        other => dst = other.to_string(),
                    }
                }
                cmd.extend(["python3".into(), "-c".into(), PING_PY.into(), dst, count, wait]);
                pings.push((i + 1, sh(&cmd)));
            }
            // Output-only commands and probes this test does not compare.
            "traceroute" | "bridge" => {}
            _ if words.iter().any(|w| w == "get" || w == "neigh") || words.len() == 2 => {}
            _ => {
                cmd.extend(words);
                assert!(sh(&cmd), "real Linux refused line {}: {line}", i + 1);
            }
        }
    }
    pings
}

fn run_kns(script: &str) -> Vec<(usize, bool)> {
    let report = ScriptRunner::new(1).run_script(script);
    assert!(report.error.is_none(), "{:?}", report.error);
    report
        .results
        .iter()
        .filter(|r| r.command.split_whitespace().any(|w| w == "ping"))
        .map(|r| (r.line, r.ok))
        .collect()
}

#[test]
fn pings_agree_with_real_linux() {
    let prefix = format!("kns{}-", std::process::id());
    if let Some(why) = unavailable(&prefix) {
        eprintln!("skipping the real-namespace differential test: {why}");
        return;
    }
    for name in ["veth-ping.sh", "bridge.sh", "router.sh", "traceroute.sh"] {
        let script = example(name);
        let mut created = Namespaces(Vec::new());
        let real = run_real(&script, &prefix, &mut created);
        drop(created);
        let kns = run_kns(&script);
        assert!(!real.is_empty(), "{name} has pings");
        eprintln!("{name}: real Linux {real:?}");
        assert_eq!(kns, real, "{name}: (line, ping ok) in kns vs real Linux");
    }
}
