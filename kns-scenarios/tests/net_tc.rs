//! `tc qdisc ... netem` in `kns net` scripts: delays show in ping RTTs, loss follows the seed,
//! and misuse fails the way tc does.

use std::io::Write;
use std::process::{Command, Output, Stdio};

mod common;
use common::{example_in, kns, text};

fn example(name: &str) -> String {
    example_in("net", name)
}

/// Runs `script` given on standard input (`kns net -f -`).
fn kns_stdin(script: &str, extra: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kns"))
        .args(["net", "-f", "-"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the kns binary runs");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn netem(seed: &str) -> String {
    let out = kns(&["net", "-f", &example("netem.sh"), "--seed", seed]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The `icmp_seq` numbers answered in the transcript section that starts at the command `after`.
fn answered(transcript: &str, after: &str) -> Vec<u32> {
    let start = transcript.find(after).expect("the command is in the transcript");
    let section = &transcript[start..];
    let end = section.find("ping statistics").expect("ping prints its statistics");
    section[..end]
        .lines()
        .filter_map(|l| l.split("icmp_seq=").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

const SLOW_PING: &str = "$ ip netns exec red ping -c 20";
const FAST_PING: &str = "$ ip netns exec red ping -c 4";

#[test]
fn netem_delay_shows_in_every_rtt_and_del_restores_the_link() {
    let out = netem("1");
    assert!(
        out.contains(
            "qdisc netem 8001: dev veth-red root refcnt 2 limit 1000 delay 20ms loss 10%\n"
        ),
        "{out}"
    );
    let slow = &out[out.find(SLOW_PING).unwrap()..out.find(FAST_PING).unwrap()];
    let replies: Vec<&str> = slow.lines().filter(|l| l.contains("icmp_seq=")).collect();
    // 20ms each way; the first request also waits for ARP's request and reply on the same link.
    assert_eq!(replies[0], "64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=80.0 ms");
    for line in &replies[1..] {
        assert!(line.ends_with(" ttl=64 time=40.0 ms"), "{line}");
    }
    // Seed 1 (the default) loses 4 of the 20 round trips (each crosses two 10% links: 19% expected).
    assert_eq!(answered(&out, SLOW_PING), [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 17, 18, 20]);
    assert!(slow.contains(
        "20 packets transmitted, 16 received, 20% packet loss, time 4800ms
"
    ));
    assert!(
        slow.contains(
            "rtt min/avg/max/mdev = 40.000/42.500/80.000/9.682 ms
"
        ),
        "{slow}"
    );
    // After `tc qdisc del` on both ends: no delay, no loss.
    let fast = &out[out.find(FAST_PING).unwrap()..];
    assert_eq!(answered(&out, FAST_PING), [1, 2, 3, 4]);
    assert!(fast.contains("64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=0.000 ms\n"), "{fast}");
    assert!(fast.contains("4 packets transmitted, 4 received, 0% packet loss"), "{fast}");
    assert!(
        out.contains("$ tc -n red qdisc show\nqdisc noqueue 0: dev veth-red root refcnt 2\n"),
        "{out}"
    );
}

#[test]
fn loss_is_seeded() {
    let a = netem("7");
    assert_eq!(a, netem("7"), "same seed, same transcript");
    let lost = |t: &str| {
        let got = answered(t, SLOW_PING);
        assert!(got.len() < 20 && got.len() >= 8, "about 19% loss expected: {got:?}");
        got
    };
    let base = lost(&a);
    let differs = ["2", "3", "4"].iter().any(|s| lost(&netem(s)) != base);
    assert!(differs, "three other seeds all lost the same pings as seed 7: {base:?}");
}

#[test]
fn rate_and_delay_are_exact_on_a_one_way_qdisc() {
    // Only red's end is slowed: the request waits 5ms, the reply none.
    let script = "ip netns add red\nip netns add blue\n\
        ip link add a type veth peer name b\nip link set a netns red\nip link set b netns blue\n\
        ip -n red addr add 10.0.0.1/24 dev a\nip -n blue addr add 10.0.0.2/24 dev b\n\
        ip -n red link set a up\nip -n blue link set b up\n\
        ip netns exec blue ping -c 1 10.0.0.1\n\
        tc -n red qdisc add dev a root netem delay 5ms\n\
        tc -n red qdisc change dev a root netem delay 12.5ms\n\
        ip netns exec red ping -c 2 10.0.0.2\n";
    let out = kns_stdin(script, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=12.5 ms\n"), "{s}");
    assert!(s.contains("64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=12.5 ms\n"), "{s}");
}

/// The error message of a script whose third line, `line`, fails.
fn script_error(line: &str) -> String {
    let script = format!(
        "ip link add a type veth peer name b\ntc qdisc add dev a root netem delay 1ms\n{line}\n"
    );
    let out = kns_stdin(&script, &[]);
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    text(&out.stderr)
}

#[test]
fn misuse_fails_like_tc() {
    let cases = [
        ("tc qdisc add dev eth9 root netem delay 1ms", "Cannot find device \"eth9\""),
        ("tc qdisc add dev a root netem delay 2ms", "Error: Exclusivity flag on, cannot modify."),
        (
            "tc qdisc change dev b root netem delay 2ms",
            "Error: Qdisc not found. To create specify NLM_F_CREATE flag.",
        ),
        ("tc qdisc del dev b root", "Error: Cannot delete qdisc with handle of zero."),
        ("tc qdisc add dev b root netem loss 150%", "Illegal \"loss percent\"\n"),
        ("tc -n nowhere qdisc show", "Cannot open network namespace \"nowhere\""),
        ("tc qdisc add dev b root netem delay 10ms 2ms", "netem jitter"),
    ];
    for (line, message) in cases {
        let err = script_error(line);
        assert!(err.contains(":3: ") && err.contains(message), "{line}: {err}");
    }
    // `replace` works whether or not a qdisc is there.
    let out = kns_stdin(
        "ip link add a type veth peer name b\ntc qdisc replace dev a root netem delay 1ms\n\
         tc qdisc replace dev a root netem rate 1mbit\ntc qdisc show dev a\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("qdisc netem 8001: dev a root refcnt 2 limit 1000 rate 1Mbit\n"),
        "{}",
        text(&out.stdout)
    );
}
