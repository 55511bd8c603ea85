//! iptables commands: parsing, `-S`/`-L` output, errors, and each match and target on packets.

mod nf_packets;

use kns_sim::netfilter::{Hook, HookContext, IptablesError, Netfilter, RejectWith, Verdict};
use kns_sim::{DropReason, Time};
use nf_packets::*;

fn dropped(table: &str, chain: &str, rule: usize) -> Verdict {
    Verdict::Drop(DropReason::FilterRule { table: table.into(), chain: chain.into(), rule })
}

#[test]
fn list_rules_prints_what_was_added() {
    let mut nf = Netfilter::new();
    let lines = [
        "-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A INPUT ! -s 192.168.1.5/32 -i eth+ -p udp -m udp --sport 1000:2000 -j DROP",
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A INPUT -m state --state INVALID -j DROP",
        "-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT",
        "-A INPUT -p tcp -m multiport --dports 80,443,8000:8080 -j REJECT --reject-with tcp-reset",
        "-A FORWARD -o veth0 -m mark --mark 0x4000/0x4000 -j ACCEPT",
        "-A FORWARD -m comment --comment kubernetes -j KUBE-FORWARD",
        "-A OUTPUT -d 10.96.0.0/12 -j LOG --log-prefix BLOCKED",
        "-A OUTPUT -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-FORWARD -p tcp -m tcp ! --dport 53 -j RETURN",
        "-A KUBE-FORWARD -j REJECT --reject-with icmp-host-unreachable",
    ];
    ok(&mut nf, "-N KUBE-FORWARD");
    ok(&mut nf, "-P FORWARD DROP");
    for line in lines {
        ok(&mut nf, line);
    }
    let mut expected =
        String::from("-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N KUBE-FORWARD\n");
    for line in lines {
        expected.push_str(line);
        expected.push('\n');
    }
    assert_eq!(ok(&mut nf, "-S"), expected);

    // Shorthand forms print in canonical form.
    let mut nf = Netfilter::new();
    ok(&mut nf, "-A INPUT -s 10.1.2.3 -p tcp --dport ssh -j REJECT");
    ok(&mut nf, "-A INPUT -s 10.1.2.3/255.255.0.0 -j MARK --or-mark 0x10");
    ok(
        &mut nf,
        "-A INPUT -p icmp --icmp-type echo-request -m state --state ESTABLISHED,NEW -j ACCEPT",
    );
    ok(&mut nf, "-A INPUT -p tcp --dport 80 --syn -j ACCEPT");
    let args: Vec<String> = [
        "-A",
        "INPUT",
        "-m",
        "comment",
        "--comment",
        "default/web:http cluster IP",
        "-j",
        "ACCEPT",
    ]
    .map(String::from)
    .to_vec();
    nf.iptables(Time::ZERO, &args).unwrap();
    assert_eq!(
        ok(&mut nf, "-S INPUT"),
        "-P INPUT ACCEPT\n\
         -A INPUT -s 10.1.2.3/32 -p tcp -m tcp --dport 22 -j REJECT --reject-with icmp-port-unreachable\n\
         -A INPUT -s 10.1.0.0/16 -j MARK --set-xmark 0x10/0x10\n\
         -A INPUT -p icmp -m icmp --icmp-type 8 -m state --state NEW,ESTABLISHED -j ACCEPT\n\
         -A INPUT -p tcp -m tcp --dport 80 --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT\n\
         -A INPUT -m comment --comment \"default/web:http cluster IP\" -j ACCEPT\n"
    );
}

#[test]
fn nat_rules_round_trip() {
    let mut nf = Netfilter::new();
    let lines = [
        "-A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080",
        "-A PREROUTING -d 10.96.0.11/32 -j DNAT --to-destination 10.244.1.6",
        "-A POSTROUTING -s 10.244.0.0/16 -o eth0 -j MASQUERADE --random-fully",
        "-A POSTROUTING -s 10.245.0.0/16 -p udp -j SNAT --to-source 192.0.2.1:1024-2047",
    ];
    for line in lines {
        ok(&mut nf, &format!("-t nat {line}"));
    }
    let listed = ok(&mut nf, "-t nat -S POSTROUTING");
    assert_eq!(listed, format!("-P POSTROUTING ACCEPT\n{}\n{}\n", lines[2], lines[3]));
    assert_eq!(ok(&mut nf, "-t nat -S PREROUTING").lines().nth(1), Some(lines[0]));
}

#[test]
fn list_looks_like_iptables() {
    let mut nf = Netfilter::new();
    ok(&mut nf, "-N KUBE-SERVICES");
    ok(&mut nf, "-A INPUT -p tcp --dport 22 -j ACCEPT");
    ok(&mut nf, "-A INPUT -j KUBE-SERVICES");
    ok(
        &mut nf,
        "-A KUBE-SERVICES -s 10.0.0.0/8 -d 10.1.1.1 -p udp -m comment --comment dns -j DROP",
    );
    assert_eq!(
        ok(&mut nf, "-L -n"),
        "Chain INPUT (policy ACCEPT)\n\
         target     prot opt source               destination         \n\
         ACCEPT     tcp  --  0.0.0.0/0            0.0.0.0/0            tcp dpt:22\n\
         KUBE-SERVICES  all  --  0.0.0.0/0            0.0.0.0/0           \n\
         \n\
         Chain FORWARD (policy ACCEPT)\n\
         target     prot opt source               destination         \n\
         \n\
         Chain OUTPUT (policy ACCEPT)\n\
         target     prot opt source               destination         \n\
         \n\
         Chain KUBE-SERVICES (1 references)\n\
         target     prot opt source               destination         \n\
         DROP       udp  --  10.0.0.0/8           10.1.1.1             /* dns */\n"
    );
    ok(&mut nf, "-N FLAGS");
    ok(&mut nf, "-A FLAGS -p tcp ! --syn -j DROP");
    assert!(ok(&mut nf, "-L FLAGS").ends_with("tcp flags:!FIN,SYN,RST,ACK/SYN\n"));
    assert!(ok(&mut nf, "-L FLAGS -n").ends_with("tcp flags:!0x17/0x02\n"));
    assert_eq!(ipt(&mut nf, "-X FLAGS"), Err(IptablesError::ChainNotEmpty));
    ok(&mut nf, "-F FLAGS");
    ok(&mut nf, "-X FLAGS");
    assert_eq!(
        ok(&mut nf, "-L INPUT"),
        "Chain INPUT (policy ACCEPT)\n\
         target     prot opt source               destination         \n\
         ACCEPT     tcp  --  anywhere             anywhere             tcp dpt:ssh\n\
         KUBE-SERVICES  all  --  anywhere             anywhere            \n"
    );
    // Counters with -v, numbered with --line-numbers.
    let mut buf = tcp("10.0.0.1", 40000, "10.0.0.2", 22, "S");
    let input = HookContext { in_iface: Some("eth0"), ..HookContext::default() };
    assert_eq!(hook(&mut nf, Time::ZERO, Hook::Input, &input, &mut buf), Verdict::Accept);
    assert_eq!(
        ok(&mut nf, "-nvL INPUT --line-numbers"),
        "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\n\
         num   pkts bytes target     prot opt in     out     source               destination         \n\
         1        1    40 ACCEPT     tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:22\n\
         2        0     0 KUBE-SERVICES  all  --  *      *       0.0.0.0/0            0.0.0.0/0           \n"
    );
    ok(&mut nf, "-Z INPUT");
    assert!(ok(&mut nf, "-vnL INPUT").contains("\n    0     0 ACCEPT"));
}

#[test]
fn edits_and_their_errors() {
    let mut nf = Netfilter::new();
    ok(&mut nf, "-A INPUT -s 1.1.1.1 -j DROP");
    ok(&mut nf, "-A INPUT -s 3.3.3.3 -j DROP");
    ok(&mut nf, "-I INPUT 2 -s 2.2.2.2 -j DROP");
    ok(&mut nf, "-I INPUT -s 0.0.0.0/0 -j ACCEPT");
    let rules = |nf: &mut Netfilter| {
        ok(nf, "-S INPUT").lines().skip(1).map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(
        rules(&mut nf),
        [
            "-A INPUT -s 0.0.0.0/0 -j ACCEPT",
            "-A INPUT -s 1.1.1.1/32 -j DROP",
            "-A INPUT -s 2.2.2.2/32 -j DROP",
            "-A INPUT -s 3.3.3.3/32 -j DROP"
        ]
    );
    ok(&mut nf, "-D INPUT -s 2.2.2.2/32 -j DROP");
    ok(&mut nf, "-D INPUT 1");
    ok(&mut nf, "-R INPUT 2 -s 4.4.4.4 -j ACCEPT");
    assert_eq!(
        rules(&mut nf),
        ["-A INPUT -s 1.1.1.1/32 -j DROP", "-A INPUT -s 4.4.4.4/32 -j ACCEPT"]
    );
    ok(&mut nf, "-C INPUT -s 1.1.1.1 -j DROP");

    let err = |nf: &mut Netfilter, line: &str| ipt(nf, line).unwrap_err();
    assert_eq!(err(&mut nf, "-D INPUT -s 9.9.9.9 -j DROP"), IptablesError::BadRule);
    assert_eq!(
        err(&mut nf, "-D INPUT -s 9.9.9.9 -j DROP").to_string(),
        "iptables: Bad rule (does a matching rule exist in that chain?)."
    );
    assert_eq!(err(&mut nf, "-C INPUT -s 9.9.9.9 -j DROP"), IptablesError::BadRule);
    assert_eq!(err(&mut nf, "-D INPUT 7"), IptablesError::Index("deletion"));
    assert_eq!(
        err(&mut nf, "-I INPUT 9 -j ACCEPT").to_string(),
        "iptables: Index of insertion too big."
    );
    assert_eq!(
        err(&mut nf, "-A NOPE -j ACCEPT").to_string(),
        "iptables: No chain/target/match by that name."
    );
    assert_eq!(err(&mut nf, "-A INPUT -j NOPE"), IptablesError::NoChain);
    assert!(
        err(&mut nf, "-A INPUT --foo 1 -j ACCEPT")
            .to_string()
            .starts_with("iptables v1.8: unknown option \"--foo\"\n")
    );
    assert_eq!(
        err(&mut nf, "-A INPUT --dport 80 -j ACCEPT"),
        IptablesError::UnknownOption("--dport".into())
    );
    assert_eq!(
        err(&mut nf, "-A INPUT -m conntrack --state NEW"),
        IptablesError::UnknownOption("--state".into())
    );
    assert_eq!(
        err(&mut nf, "-A INPUT -s nowhere -j DROP"),
        IptablesError::Parameter("host/network `nowhere' not found".into())
    );
    assert_eq!(
        err(&mut nf, "-A INPUT -p tcp --dport abc"),
        IptablesError::Parameter("invalid port/service `abc' specified".into())
    );
    assert_eq!(
        err(&mut nf, "-A INPUT -p bogus"),
        IptablesError::Parameter("unknown protocol \"bogus\" specified".into())
    );
    assert_eq!(
        err(&mut nf, "-A INPUT -s"),
        IptablesError::Parameter("option \"-s\" requires an argument".into())
    );
    assert_eq!(err(&mut nf, "-s 1.2.3.4"), IptablesError::Parameter("no command specified".into()));
    assert_eq!(
        err(&mut nf, "-A INPUT -D INPUT 1"),
        IptablesError::Parameter("Can't use -D with -A".into())
    );
    assert_eq!(
        err(&mut nf, "-t mangle -L").to_string().lines().next(),
        Some(
            "iptables v1.8: can't initialize iptables table `mangle': Table does not exist (do you need to insmod?)"
        )
    );
    assert_eq!(
        err(&mut nf, "-A INPUT -j DNAT --to-destination 1.2.3.4"),
        IptablesError::InvalidArgument
    );
    assert_eq!(err(&mut nf, "-t nat -A PREROUTING -j DROP"), IptablesError::InvalidArgument);
    assert_eq!(
        err(&mut nf, "-t nat -A POSTROUTING -j DNAT --to-destination 1.2.3.4"),
        IptablesError::InvalidArgument
    );
    assert_eq!(err(&mut nf, "-t nat -P PREROUTING DROP"), IptablesError::InvalidArgument);
    assert_eq!(err(&mut nf, "-P INPUT MAYBE"), IptablesError::BadPolicy);
    assert_eq!(
        err(&mut nf, "-A INPUT -j REJECT --reject-with tcp-reset"),
        IptablesError::Parameter("REJECT: TCP reset requires `-p tcp'".into())
    );

    // Chains: create, refuse duplicates, loops, deletion of used or non-empty chains.
    ok(&mut nf, "-N A");
    ok(&mut nf, "-N B");
    assert_eq!(err(&mut nf, "-N A"), IptablesError::ChainExists);
    assert_eq!(err(&mut nf, "-P A DROP"), IptablesError::BadBuiltin);
    ok(&mut nf, "-A A -j B");
    assert_eq!(err(&mut nf, "-A B -j A"), IptablesError::Loop);
    assert_eq!(err(&mut nf, "-A A -j A"), IptablesError::Loop);
    assert_eq!(err(&mut nf, "-X B"), IptablesError::ChainInUse);
    assert_eq!(err(&mut nf, "-X A"), IptablesError::ChainNotEmpty);
    ok(&mut nf, "-F A");
    ok(&mut nf, "-X B");
    ok(&mut nf, "-X");
    assert_eq!(ok(&mut nf, "-S").lines().filter(|l| l.starts_with("-N")).count(), 0);
    ok(&mut nf, "-F");
    assert_eq!(ok(&mut nf, "-S"), "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n");
}

#[test]
fn matches_select_packets() {
    let ctx =
        HookContext { in_iface: Some("eth1"), out_iface: Some("veth3"), ..HookContext::default() };
    // Each case: a rule, a packet it must match and one it must not.
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("-s 10.0.0.0/24", udp("10.0.0.9", 1, "1.1.1.1", 2), udp("10.0.1.9", 1, "1.1.1.1", 2)),
        ("! -s 10.0.0.0/24", udp("10.0.1.9", 1, "1.1.1.1", 2), udp("10.0.0.9", 1, "1.1.1.1", 2)),
        ("-d 1.1.1.1", udp("9.9.9.9", 1, "1.1.1.1", 2), udp("9.9.9.9", 1, "1.1.1.2", 2)),
        ("-p tcp", tcp("1.1.1.1", 1, "2.2.2.2", 2, "S"), udp("1.1.1.1", 1, "2.2.2.2", 2)),
        ("! -p udp", echo("1.1.1.1", "2.2.2.2", 7, true), udp("1.1.1.1", 1, "2.2.2.2", 2)),
        (
            "-p udp --sport 50:60",
            udp("1.1.1.1", 55, "2.2.2.2", 2),
            udp("1.1.1.1", 61, "2.2.2.2", 2),
        ),
        (
            "-p tcp ! --dport 80",
            tcp("1.1.1.1", 1, "2.2.2.2", 81, "S"),
            tcp("1.1.1.1", 1, "2.2.2.2", 80, "S"),
        ),
        (
            "-p tcp -m multiport --dports 80,443",
            tcp("1.1.1.1", 1, "2.2.2.2", 443, "S"),
            tcp("1.1.1.1", 1, "2.2.2.2", 8443, "S"),
        ),
        (
            "-p udp -m multiport --ports 53",
            udp("1.1.1.1", 53, "2.2.2.2", 9),
            udp("1.1.1.1", 54, "2.2.2.2", 9),
        ),
        ("-i eth+", udp("1.1.1.1", 1, "2.2.2.2", 2), udp("1.1.1.1", 1, "2.2.2.2", 2)),
        ("-o veth3", udp("1.1.1.1", 1, "2.2.2.2", 2), udp("1.1.1.1", 1, "2.2.2.2", 2)),
        (
            "-p icmp --icmp-type echo-request",
            echo("1.1.1.1", "2.2.2.2", 7, true),
            echo("1.1.1.1", "2.2.2.2", 7, false),
        ),
        (
            "-p tcp --syn",
            tcp("1.1.1.1", 1, "2.2.2.2", 2, "S"),
            tcp("1.1.1.1", 1, "2.2.2.2", 2, "SA"),
        ),
        (
            "-p tcp ! --syn",
            tcp("1.1.1.1", 1, "2.2.2.2", 2, "A"),
            tcp("1.1.1.1", 1, "2.2.2.2", 2, "S"),
        ),
        (
            "-p tcp --tcp-flags RST RST",
            tcp("1.1.1.1", 1, "2.2.2.2", 2, "R"),
            tcp("1.1.1.1", 1, "2.2.2.2", 2, "F"),
        ),
        (
            "-m conntrack --ctstate NEW",
            udp("1.1.1.1", 1, "2.2.2.2", 2),
            echo("1.1.1.1", "2.2.2.2", 9, false),
        ),
        (
            "-m conntrack --ctstate INVALID",
            tcp("1.1.1.1", 1, "2.2.2.2", 2, "R"),
            tcp("1.1.1.1", 1, "2.2.2.2", 2, "S"),
        ),
        (
            "-p udp -m comment --comment x",
            udp("1.1.1.1", 1, "2.2.2.2", 2),
            tcp("1.1.1.1", 1, "2.2.2.2", 2, "S"),
        ),
    ];
    for (rule, hit, miss) in cases {
        let mut nf = Netfilter::new();
        ok(&mut nf, &format!("-A FORWARD {rule} -j DROP"));
        let mut hit = hit;
        assert_eq!(
            hook(&mut nf, Time::ZERO, Hook::Forward, &ctx, &mut hit),
            dropped("filter", "FORWARD", 1),
            "{rule} should match"
        );
        let miss_ctx = if rule.starts_with("-i") || rule.starts_with("-o") {
            HookContext {
                in_iface: Some("wlan0"),
                out_iface: Some("veth4"),
                ..HookContext::default()
            }
        } else {
            ctx.clone()
        };
        let mut miss = miss;
        assert_eq!(
            hook(&mut nf, Time::ZERO, Hook::Forward, &miss_ctx, &mut miss),
            Verdict::Accept,
            "{rule} should not match"
        );
    }
}

#[test]
fn targets_policies_chains_and_counters() {
    let mut nf = Netfilter::new();
    nf.set_notes(true);
    ok(&mut nf, "-P FORWARD DROP");
    ok(&mut nf, "-N CHECK");
    ok(&mut nf, "-A FORWARD -j MARK --set-mark 0x1");
    ok(&mut nf, "-A FORWARD -p tcp -j CHECK");
    ok(&mut nf, "-A FORWARD -m mark --mark 0x1 -p udp --dport 53 -j ACCEPT");
    ok(&mut nf, "-A FORWARD -p udp --dport 54 -j REJECT");
    ok(&mut nf, "-A CHECK -p tcp --dport 22 -j RETURN");
    ok(&mut nf, "-A CHECK -p tcp --dport 23 -j REJECT --reject-with icmp-admin-prohibited");
    ok(&mut nf, "-A CHECK -j ACCEPT");
    let ctx = HookContext::default();
    let now = Time::ZERO;
    let mut p = udp("10.0.0.1", 5000, "10.0.0.2", 53);
    assert_eq!(hook(&mut nf, now, Hook::Forward, &ctx, &mut p), Verdict::Accept);
    let mut p = udp("10.0.0.1", 5000, "10.0.0.2", 54);
    assert_eq!(
        hook(&mut nf, now, Hook::Forward, &ctx, &mut p),
        Verdict::Reject(
            DropReason::FilterRule { table: "filter".into(), chain: "FORWARD".into(), rule: 4 },
            RejectWith::IcmpPortUnreachable
        )
    );
    let mut p = tcp("10.0.0.1", 5000, "10.0.0.2", 22, "S");
    assert_eq!(
        hook(&mut nf, now, Hook::Forward, &ctx, &mut p),
        dropped("filter", "FORWARD", 0),
        "RETURN then policy"
    );
    let mut p = tcp("10.0.0.1", 5000, "10.0.0.2", 23, "S");
    assert_eq!(
        hook(&mut nf, now, Hook::Forward, &ctx, &mut p),
        Verdict::Reject(
            DropReason::FilterRule { table: "filter".into(), chain: "CHECK".into(), rule: 2 },
            RejectWith::IcmpAdminProhibited
        )
    );
    let mut p = tcp("10.0.0.1", 5000, "10.0.0.2", 80, "S");
    assert_eq!(hook(&mut nf, now, Hook::Forward, &ctx, &mut p), Verdict::Accept);
    let notes = nf.take_notes();
    assert!(notes.contains(&"filter FORWARD policy DROP".to_string()), "{notes:?}");
    assert!(notes.contains(&"filter CHECK rule 3: ACCEPT".to_string()), "{notes:?}");
    assert!(notes.contains(&"ct NEW".to_string()), "{notes:?}");
    assert!(nf.take_notes().is_empty());
    let listed = ok(&mut nf, "-nvxL");
    assert!(listed.contains("Chain FORWARD (policy DROP 1 packets, 40 bytes)"), "{listed}");
    let row = |name: &str| {
        listed
            .lines()
            .find(|l| l.contains(name))
            .unwrap()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Two 33-byte UDP datagrams and three 40-byte SYNs.
    assert_eq!(row("MARK set 0x1"), "5 186");
    assert_eq!(row("CHECK  "), "3 120");
    // Notes stay off by default.
    let mut quiet = Netfilter::new();
    let mut p = udp("10.0.0.1", 5000, "10.0.0.2", 53);
    hook(&mut quiet, now, Hook::Forward, &ctx, &mut p);
    assert!(quiet.take_notes().is_empty());
}

#[test]
fn goto_returns_to_the_callers_caller() {
    let mut nf = Netfilter::new();
    ok(&mut nf, "-N OUTER");
    ok(&mut nf, "-N INNER");
    ok(&mut nf, "-A FORWARD -j OUTER");
    ok(&mut nf, "-A FORWARD -p udp -j DROP");
    ok(&mut nf, "-A OUTER -g INNER");
    ok(&mut nf, "-A OUTER -j ACCEPT");
    ok(&mut nf, "-A INNER -p tcp -j REJECT");
    assert_eq!(ok(&mut nf, "-S OUTER"), "-N OUTER\n-A OUTER -g INNER\n-A OUTER -j ACCEPT\n");
    assert!(
        ok(&mut nf, "-L OUTER")
            .contains("INNER      all  --  anywhere             anywhere            [goto] \n")
    );
    let ctx = HookContext::default();
    // INNER falls through: with -g the walk resumes in FORWARD, not in OUTER (whose ACCEPT
    // would have let the datagram through).
    let mut p = udp("1.1.1.1", 1, "2.2.2.2", 2);
    assert_eq!(
        hook(&mut nf, Time::ZERO, Hook::Forward, &ctx, &mut p),
        dropped("filter", "FORWARD", 2)
    );
    let mut p = tcp("1.1.1.1", 1, "2.2.2.2", 2, "S");
    assert!(matches!(hook(&mut nf, Time::ZERO, Hook::Forward, &ctx, &mut p), Verdict::Reject(..)));
}

#[test]
fn restore_loads_tables_atomically() {
    let mut nf = Netfilter::new();
    ok(&mut nf, "-A INPUT -s 9.9.9.9 -j DROP");
    let input = r#"
# Generated by a kube-proxy-like writer
*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-WEB - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-WEB
-A KUBE-SVC-WEB -p tcp -j DNAT --to-destination 10.244.1.5:8080
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"#;
    nf.iptables_restore(Time::ZERO, input, false).unwrap();
    assert_eq!(
        ok(&mut nf, "-t nat -S"),
        "-P PREROUTING ACCEPT\n-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n-P POSTROUTING ACCEPT\n\
         -N KUBE-SERVICES\n-N KUBE-SVC-WEB\n\
         -A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"default/web:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-WEB\n\
         -A KUBE-SVC-WEB -p tcp -j DNAT --to-destination 10.244.1.5:8080\n"
    );
    // Without --noflush the filter table was emptied first: the INPUT rule is gone.
    assert_eq!(
        ok(&mut nf, "-S"),
        "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n\
         -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
    );
    // The rules work: a SYN to the service is DNATed.
    let mut syn = tcp("10.0.0.1", 40000, "10.96.0.10", 80, "S");
    let pre = HookContext::default();
    assert_eq!(hook(&mut nf, Time::ZERO, Hook::Prerouting, &pre, &mut syn), Verdict::Accept);
    assert_eq!(verified(&syn).dst.to_string(), "10.244.1.5");

    // --noflush keeps other chains; a declared chain is emptied; a bad line changes nothing.
    let update = "*nat\n:KUBE-SVC-WEB - [0:0]\n-A KUBE-SVC-WEB -p tcp -j DNAT --to-destination 10.244.1.6:8080\nCOMMIT\n";
    nf.iptables_restore(Time::ZERO, update, true).unwrap();
    assert!(
        ok(&mut nf, "-t nat -S KUBE-SVC-WEB")
            .ends_with("-A KUBE-SVC-WEB -p tcp -j DNAT --to-destination 10.244.1.6:8080\n")
    );
    assert_eq!(ok(&mut nf, "-t nat -S").lines().count(), 9);
    let before = ok(&mut nf, "-t nat -S");
    let bad = "*nat\n:KUBE-SVC-WEB - [0:0]\n-A KUBE-SVC-WEB -j NOWHERE\nCOMMIT\n";
    let err = nf.iptables_restore(Time::ZERO, bad, true).unwrap_err();
    assert_eq!(err.line, 3);
    assert_eq!(
        err.to_string(),
        "iptables-restore: line 3 failed: iptables: No chain/target/match by that name."
    );
    assert_eq!(ok(&mut nf, "-t nat -S"), before);
    assert_eq!(nf.iptables_restore(Time::ZERO, "*nat\n-N X\n", true).unwrap_err().line, 2);
    assert_eq!(nf.iptables_restore(Time::ZERO, "-A INPUT -j DROP\n", true).unwrap_err().line, 1);
}

#[test]
fn statistic_spreads_connections_like_kube_proxy() {
    let setup = |seed: u64| {
        let mut nf = Netfilter::new();
        nf.set_seed(seed);
        ok(&mut nf, "-t nat -N SVC");
        ok(&mut nf, "-t nat -A PREROUTING -d 10.96.0.1 -p tcp --dport 80 -j SVC");
        ok(
            &mut nf,
            "-t nat -A SVC -p tcp -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.244.0.1:80",
        );
        ok(
            &mut nf,
            "-t nat -A SVC -p tcp -m statistic --mode random --probability 0.5 -j DNAT --to-destination 10.244.0.2:80",
        );
        ok(&mut nf, "-t nat -A SVC -p tcp -j DNAT --to-destination 10.244.0.3:80");
        nf
    };
    let spread = |seed: u64| {
        let mut nf = setup(seed);
        let mut counts = std::collections::BTreeMap::new();
        for port in 10_000..13_000u16 {
            let mut syn = tcp("10.0.0.1", port, "10.96.0.1", 80, "S");
            hook(&mut nf, Time::ZERO, Hook::Prerouting, &HookContext::default(), &mut syn);
            *counts.entry(verified(&syn).dst.to_string()).or_insert(0u32) += 1;
        }
        counts
    };
    let counts = spread(7);
    assert_eq!(counts.len(), 3);
    assert!(counts.values().all(|c| (850..=1150).contains(c)), "{counts:?}");
    assert_eq!(counts, spread(7), "same seed, same choices");
    assert_ne!(counts, spread(8), "another seed, other choices");
    assert!(
        ok(&mut setup(0), "-t nat -S SVC").contains(
            "-A SVC -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.0.2:80"
        )
    );
    assert!(
        ok(&mut setup(0), "-t nat -L SVC -n")
            .contains("statistic mode random probability 0.33333333349 to:10.244.0.1:80")
    );
}

#[test]
fn statistic_nth_and_addrtype() {
    let mut nf = Netfilter::new();
    ok(&mut nf, "-A FORWARD -m statistic --mode nth --every 3 -j DROP");
    assert_eq!(
        ok(&mut nf, "-S FORWARD").lines().nth(1),
        Some("-A FORWARD -m statistic --mode nth --every 3 --packet 0 -j DROP")
    );
    let verdicts: Vec<bool> = (0..6)
        .map(|i| {
            let mut p = udp("1.1.1.1", 1000 + i, "2.2.2.2", 53);
            hook(&mut nf, Time::ZERO, Hook::Forward, &HookContext::default(), &mut p)
                == Verdict::Accept
        })
        .collect();
    assert_eq!(verdicts, [true, true, false, true, true, false]);
    assert_eq!(
        ipt(&mut nf, "-A INPUT -m statistic --mode random"),
        Err(IptablesError::Parameter(
            "statistic: --probability must be specified in random mode".into()
        ))
    );

    let mut nf = Netfilter::new();
    nf.set_local_addrs(&["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()]);
    ok(&mut nf, "-A INPUT -m addrtype --dst-type LOCAL -p udp -j DROP");
    ok(&mut nf, "-A INPUT -m addrtype ! --src-type UNICAST -j REJECT");
    assert_eq!(
        ok(&mut nf, "-S INPUT").lines().skip(1).collect::<Vec<_>>(),
        [
            "-A INPUT -p udp -m addrtype --dst-type LOCAL -j DROP",
            "-A INPUT -m addrtype ! --src-type UNICAST -j REJECT --reject-with icmp-port-unreachable"
        ]
    );
    assert!(ok(&mut nf, "-L INPUT").contains("ADDRTYPE match dst-type LOCAL"));
    let ctx = HookContext::default();
    for (dst, local) in [("10.0.0.1", true), ("127.0.0.1", true), ("10.0.0.2", false)] {
        let mut p = udp("192.0.2.7", 1, dst, 53);
        let dropped = hook(&mut nf, Time::ZERO, Hook::Input, &ctx, &mut p) != Verdict::Accept;
        assert_eq!(dropped, local, "{dst}");
    }
    let mut p = tcp("224.0.0.5", 1, "10.0.0.2", 80, "S");
    assert!(matches!(hook(&mut nf, Time::ZERO, Hook::Input, &ctx, &mut p), Verdict::Reject(..)));
}
