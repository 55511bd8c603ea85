//! The `iptables` command line: words in, one parsed invocation out, with errors worded as
//! iptables words them.

use std::net::Ipv4Addr;

use super::IptablesError;
use super::rule::{
    AddrMatch, AddrType, IfaceMatch, Match, MultiportKind, NthCounter, PortRange, RuleSpec,
    StatMode, StateSet, Target, parse_icmp_type, parse_reject_with,
};
use crate::conntrack::CtState;

/// One parsed `iptables` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    pub table: String,
    pub command: Command,
    pub numeric: bool,
    pub verbose: bool,
    pub line_numbers: bool,
    pub exact: bool,
}

/// A rule as parsed: the spec, and the jump target by name when it is not a built-in target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedRule {
    pub spec: RuleSpec,
    /// `-j NAME` / `-g NAME` naming a chain (resolved against the table later).
    pub jump: Option<(String, bool)>,
}

/// What the invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Append(String, ParsedRule),
    Insert(String, usize, ParsedRule),
    DeleteNum(String, usize),
    Delete(String, ParsedRule),
    Replace(String, usize, ParsedRule),
    Check(String, ParsedRule),
    Flush(Option<String>),
    Zero(Option<String>),
    Policy(String, String),
    NewChain(String),
    DeleteChain(Option<String>),
    List(Option<String>),
    ListRules(Option<String>),
}

fn param(msg: impl Into<String>) -> IptablesError {
    IptablesError::Parameter(msg.into())
}

/// Short options that may be bundled (`-nvL`).
const BUNDLEABLE: &str = "nvxLSFZ";

/// Splits bundled short flags such as `-nvL` into `-n -v -L`.
fn expand(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        let letters = a.strip_prefix('-').filter(|s| !s.starts_with('-') && s.len() > 1);
        match letters {
            Some(s) if s.chars().all(|c| BUNDLEABLE.contains(c)) => {
                out.extend(s.chars().map(|c| format!("-{c}")));
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

enum Cmd {
    Append,
    Insert,
    Delete,
    Replace,
    Check,
    Flush,
    Zero,
    Policy,
    New,
    DeleteChain,
    List,
    ListRules,
}

struct Parser {
    args: Vec<String>,
    pos: usize,
}

impl Parser {
    fn value(&mut self, opt: &str) -> Result<String, IptablesError> {
        match self.args.get(self.pos) {
            Some(v) => {
                self.pos += 1;
                Ok(v.clone())
            }
            None => Err(param(format!("option \"{opt}\" requires an argument"))),
        }
    }

    /// The next word if it does not look like an option.
    fn optional(&mut self) -> Option<String> {
        let v = self.args.get(self.pos).filter(|v| !v.starts_with('-') && *v != "!")?.clone();
        self.pos += 1;
        Some(v)
    }

    /// The next word if it is a number.
    fn number(&mut self) -> Option<usize> {
        let v = self.args.get(self.pos)?.parse().ok()?;
        self.pos += 1;
        Some(v)
    }
}

/// Parses the words after `iptables`.
pub(crate) fn parse(args: &[String]) -> Result<Invocation, IptablesError> {
    let mut p = Parser { args: expand(args), pos: 0 };
    let mut table = "filter".to_string();
    let (mut numeric, mut verbose, mut line_numbers, mut exact) = (false, false, false, false);
    let mut cmd: Option<(Cmd, &'static str)> = None;
    let mut chain: Option<String> = None;
    let mut number: Option<usize> = None;
    let mut policy: Option<String> = None;
    let mut spec = RuleSpec {
        src: None,
        dst: None,
        in_iface: None,
        out_iface: None,
        proto: None,
        matches: Vec::new(),
        target: Target::None,
    };
    let mut jump: Option<(String, bool)> = None;
    let mut target_name: Option<String> = None;
    let mut loaded: Vec<String> = Vec::new();
    let mut has_spec = false;
    let mut neg = false;

    while p.pos < p.args.len() {
        let arg = p.args[p.pos].clone();
        p.pos += 1;
        if arg == "!" {
            if neg {
                return Err(param("multiple `!' flags not allowed"));
            }
            neg = true;
            continue;
        }
        let was_neg = std::mem::take(&mut neg);
        let mut set_cmd = |c: Cmd, name: &'static str| -> Result<(), IptablesError> {
            if let Some((_, old)) = cmd {
                return Err(param(format!("Can't use {name} with {old}")));
            }
            cmd = Some((c, name));
            Ok(())
        };
        match arg.as_str() {
            "-t" | "--table" => table = p.value(&arg)?,
            "-A" | "--append" => {
                set_cmd(Cmd::Append, "-A")?;
                chain = Some(p.value(&arg)?);
            }
            "-I" | "--insert" => {
                set_cmd(Cmd::Insert, "-I")?;
                chain = Some(p.value(&arg)?);
                number = p.number();
            }
            "-D" | "--delete" => {
                set_cmd(Cmd::Delete, "-D")?;
                chain = Some(p.value(&arg)?);
                number = p.number();
            }
            "-R" | "--replace" => {
                set_cmd(Cmd::Replace, "-R")?;
                chain = Some(p.value(&arg)?);
                number = Some(p.number().ok_or_else(|| param("-R requires a rule number"))?);
            }
            "-C" | "--check" => {
                set_cmd(Cmd::Check, "-C")?;
                chain = Some(p.value(&arg)?);
            }
            "-F" | "--flush" => {
                set_cmd(Cmd::Flush, "-F")?;
                chain = p.optional();
            }
            "-Z" | "--zero" => {
                set_cmd(Cmd::Zero, "-Z")?;
                chain = p.optional();
            }
            "-L" | "--list" => {
                set_cmd(Cmd::List, "-L")?;
                chain = p.optional();
            }
            "-S" | "--list-rules" => {
                set_cmd(Cmd::ListRules, "-S")?;
                chain = p.optional();
            }
            "-N" | "--new-chain" | "--new" => {
                set_cmd(Cmd::New, "-N")?;
                chain = Some(p.value(&arg)?);
            }
            "-X" | "--delete-chain" => {
                set_cmd(Cmd::DeleteChain, "-X")?;
                chain = p.optional();
            }
            "-P" | "--policy" => {
                set_cmd(Cmd::Policy, "-P")?;
                chain = Some(p.value(&arg)?);
                policy = Some(p.value(&arg)?);
            }
            "-n" | "--numeric" => numeric = true,
            "-v" | "--verbose" => verbose = true,
            "-x" | "--exact" => exact = true,
            "--line-numbers" => line_numbers = true,
            "-w" | "--wait" => {
                p.number();
            }
            "-W" | "--wait-interval" => {
                p.value(&arg)?;
            }
            "-s" | "--source" | "--src" => {
                has_spec = true;
                spec.src = Some(parse_addr(&p.value(&arg)?, was_neg)?);
            }
            "-d" | "--destination" | "--dst" => {
                has_spec = true;
                spec.dst = Some(parse_addr(&p.value(&arg)?, was_neg)?);
            }
            "-p" | "--protocol" => {
                has_spec = true;
                spec.proto = Some((parse_proto(&p.value(&arg)?)?, was_neg));
            }
            "-i" | "--in-interface" => {
                has_spec = true;
                spec.in_iface = Some(IfaceMatch { name: p.value(&arg)?, neg: was_neg });
            }
            "-o" | "--out-interface" => {
                has_spec = true;
                spec.out_iface = Some(IfaceMatch { name: p.value(&arg)?, neg: was_neg });
            }
            "-m" | "--match" => {
                has_spec = true;
                let name = p.value(&arg)?;
                let m = match name.as_str() {
                    "tcp" => Match::Ports { proto: 6, sport: None, dport: None, flags: None },
                    "udp" => Match::Ports { proto: 17, sport: None, dport: None, flags: None },
                    "icmp" => Match::Icmp { ty: 255, code: None, neg: false },
                    "conntrack" => Match::State {
                        states: StateSet::default(),
                        neg: false,
                        legacy_state: false,
                    },
                    "state" => {
                        Match::State { states: StateSet::default(), neg: false, legacy_state: true }
                    }
                    "mark" => Match::Mark { value: 0, mask: u32::MAX, neg: false },
                    "multiport" => {
                        Match::Multiport { kind: MultiportKind::Dst, ports: Vec::new(), neg: false }
                    }
                    "comment" => Match::Comment(String::new()),
                    "statistic" => Match::Statistic {
                        mode: StatMode::Nth { every: u32::MAX, packet: 0, count: NthCounter(0) },
                        neg: false,
                    },
                    "addrtype" => Match::AddrType { src: None, dst: None },
                    other => {
                        return Err(param(format!(
                            "Couldn't load match `{other}':No such file or directory"
                        )));
                    }
                };
                loaded.push(name);
                spec.matches.push(m);
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                has_spec = true;
                let name = p.value(&arg)?;
                let goto = arg == "-g" || arg == "--goto";
                spec.target = match name.as_str() {
                    _ if goto => {
                        jump = Some((name.clone(), true));
                        Target::None
                    }
                    "ACCEPT" => Target::Accept,
                    "DROP" => Target::Drop,
                    "RETURN" => Target::Return,
                    "REJECT" => Target::Reject(super::RejectWith::IcmpPortUnreachable),
                    "DNAT" | "SNAT" => Target::None,
                    "MASQUERADE" => Target::Masquerade { ports: None, random_fully: false },
                    "MARK" => Target::None,
                    "LOG" => Target::Log { prefix: None, level: 4 },
                    _ => {
                        jump = Some((name.clone(), false));
                        Target::None
                    }
                };
                target_name = Some(name);
            }
            opt if opt.starts_with("--") => {
                has_spec = true;
                match_option(&mut p, opt, was_neg, &mut spec, &loaded, target_name.as_deref())?;
            }
            opt if opt.starts_with('-') => {
                return Err(IptablesError::UnknownOption(opt.to_string()));
            }
            other => return Err(param(format!("Bad argument `{other}'"))),
        }
    }
    if neg {
        return Err(param("Bad argument `!'"));
    }
    check_complete(&spec, target_name.as_deref())?;

    let (cmd, name) = cmd.ok_or_else(|| param("no command specified"))?;
    let chain_req = |c: Option<String>| c.ok_or_else(|| param("no chain specified"));
    let rule = ParsedRule { spec, jump };
    let no_spec = |name: &str| {
        if has_spec {
            Err(param(format!("Illegal option `-s' with this command ({name})")))
        } else {
            Ok(())
        }
    };
    let command = match cmd {
        Cmd::Append => Command::Append(chain_req(chain)?, rule),
        Cmd::Insert => Command::Insert(chain_req(chain)?, number.unwrap_or(1), rule),
        Cmd::Delete => match number {
            Some(n) => {
                no_spec(name)?;
                Command::DeleteNum(chain_req(chain)?, n)
            }
            None => Command::Delete(chain_req(chain)?, rule),
        },
        Cmd::Replace => Command::Replace(chain_req(chain)?, number.unwrap_or(0), rule),
        Cmd::Check => Command::Check(chain_req(chain)?, rule),
        Cmd::Flush => {
            no_spec(name)?;
            Command::Flush(chain)
        }
        Cmd::Zero => {
            no_spec(name)?;
            Command::Zero(chain)
        }
        Cmd::Policy => {
            no_spec(name)?;
            Command::Policy(chain_req(chain)?, policy.unwrap_or_default())
        }
        Cmd::New => {
            no_spec(name)?;
            Command::NewChain(chain_req(chain)?)
        }
        Cmd::DeleteChain => {
            no_spec(name)?;
            Command::DeleteChain(chain)
        }
        Cmd::List => {
            no_spec(name)?;
            Command::List(chain)
        }
        Cmd::ListRules => {
            no_spec(name)?;
            Command::ListRules(chain)
        }
    };
    Ok(Invocation { table, command, numeric, verbose, line_numbers, exact })
}

/// The last loaded match of a kind, to receive its options.
fn last_match(spec: &mut RuleSpec, pred: impl Fn(&Match) -> bool) -> Option<&mut Match> {
    spec.matches.iter_mut().rev().find(|m| pred(m))
}

fn match_option(
    p: &mut Parser,
    opt: &str,
    neg: bool,
    spec: &mut RuleSpec,
    loaded: &[String],
    target: Option<&str>,
) -> Result<(), IptablesError> {
    let unknown = || IptablesError::UnknownOption(opt.to_string());
    let proto = spec.proto.filter(|(_, n)| !n).map(|(p, _)| p);
    match opt {
        "--sport" | "--source-port" | "--dport" | "--destination-port" => {
            let want = proto.filter(|p| matches!(p, 6 | 17)).ok_or_else(unknown)?;
            let range = parse_port_range(&p.value(opt)?)?;
            if last_match(spec, |m| matches!(m, Match::Ports { proto, .. } if *proto == want))
                .is_none()
            {
                spec.matches.push(Match::Ports {
                    proto: want,
                    sport: None,
                    dport: None,
                    flags: None,
                });
            }
            if let Some(Match::Ports { sport, dport, .. }) =
                last_match(spec, |m| matches!(m, Match::Ports { proto, .. } if *proto == want))
            {
                if opt == "--sport" || opt == "--source-port" {
                    *sport = Some((range, neg));
                } else {
                    *dport = Some((range, neg));
                }
            }
        }
        "--syn" | "--tcp-flags" => {
            if proto != Some(6) {
                return Err(unknown());
            }
            let (mask, comp) = if opt == "--syn" {
                (0x17, 0x02)
            } else {
                (parse_tcp_flags(&p.value(opt)?)?, parse_tcp_flags(&p.value(opt)?)?)
            };
            let is_tcp = |m: &Match| matches!(m, Match::Ports { proto: 6, .. });
            if last_match(spec, is_tcp).is_none() {
                spec.matches.push(Match::Ports { proto: 6, sport: None, dport: None, flags: None });
            }
            if let Some(Match::Ports { flags, .. }) = last_match(spec, is_tcp) {
                *flags = Some((mask, comp, neg));
            }
        }
        "--icmp-type" => {
            if proto != Some(1) && !loaded.iter().any(|m| m == "icmp") {
                return Err(unknown());
            }
            let v = p.value(opt)?;
            let (ty, code) =
                parse_icmp_type(&v).ok_or_else(|| param(format!("Invalid ICMP type `{v}'")))?;
            if last_match(spec, |m| matches!(m, Match::Icmp { .. })).is_none() {
                spec.matches.push(Match::Icmp { ty, code, neg });
            }
            if let Some(Match::Icmp { ty: t, code: c, neg: n }) =
                last_match(spec, |m| matches!(m, Match::Icmp { .. }))
            {
                (*t, *c, *n) = (ty, code, neg);
            }
        }
        "--ctstate" | "--state" => {
            let legacy = opt == "--state";
            let v = p.value(opt)?;
            let m = last_match(
                spec,
                |m| matches!(m, Match::State { legacy_state, .. } if *legacy_state == legacy),
            )
            .ok_or_else(unknown)?;
            let mut set = StateSet::default();
            for word in v.split(',') {
                set.insert(match word {
                    "NEW" => CtState::New,
                    "ESTABLISHED" => CtState::Established,
                    "RELATED" => CtState::Related,
                    "INVALID" => CtState::Invalid,
                    "UNTRACKED" => CtState::Untracked,
                    "SNAT" if !legacy => {
                        set.0 |= StateSet::SNAT;
                        continue;
                    }
                    "DNAT" if !legacy => {
                        set.0 |= StateSet::DNAT;
                        continue;
                    }
                    _ => return Err(param(format!("Bad ctstate \"{word}\""))),
                });
            }
            if let Match::State { states, neg: n, .. } = m {
                (*states, *n) = (set, neg);
            }
        }
        "--mark" => {
            let v = p.value(opt)?;
            let (value, mask) = parse_mark(&v)?;
            let m = last_match(spec, |m| matches!(m, Match::Mark { .. }))
                .filter(|_| loaded.iter().any(|l| l == "mark"))
                .ok_or_else(unknown)?;
            *m = Match::Mark { value, mask, neg };
        }
        "--dports" | "--destination-ports" | "--sports" | "--source-ports" | "--ports" => {
            let v = p.value(opt)?;
            let kind = match opt {
                "--dports" | "--destination-ports" => MultiportKind::Dst,
                "--sports" | "--source-ports" => MultiportKind::Src,
                _ => MultiportKind::Either,
            };
            if !matches!(proto, Some(6 | 17 | 132)) {
                return Err(param(
                    "multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'",
                ));
            }
            let ports = v.split(',').map(parse_port_range).collect::<Result<Vec<_>, _>>()?;
            let m =
                last_match(spec, |m| matches!(m, Match::Multiport { .. })).ok_or_else(unknown)?;
            *m = Match::Multiport { kind, ports, neg };
        }
        "--comment" => {
            let v = p.value(opt)?;
            if v.len() > 255 {
                return Err(param("COMMENT must be shorter than 256 characters"));
            }
            let m = last_match(spec, |m| matches!(m, Match::Comment(_))).ok_or_else(unknown)?;
            *m = Match::Comment(v);
        }
        "--mode" | "--probability" | "--every" | "--packet" => {
            let v = p.value(opt)?;
            let Some(Match::Statistic { mode, neg: n }) =
                last_match(spec, |m| matches!(m, Match::Statistic { .. }))
            else {
                return Err(unknown());
            };
            let bad = || param(format!("Bad {} value \"{v}\"", &opt[2..]));
            match opt {
                "--mode" => {
                    *mode = match v.as_str() {
                        "random" => StatMode::Random { probability: u32::MAX },
                        "nth" => StatMode::Nth { every: u32::MAX, packet: 0, count: NthCounter(0) },
                        _ => return Err(param(format!("Bad mode \"{v}\""))),
                    }
                }
                "--probability" => {
                    let p: f64 = v.parse().map_err(|_| bad())?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(bad());
                    }
                    *mode = StatMode::Random {
                        probability: (p * f64::from(0x8000_0000u32)).round() as u32,
                    };
                    *n = neg;
                }
                "--every" => {
                    let e: u32 = v.parse().ok().filter(|e| *e > 0).ok_or_else(bad)?;
                    let packet = match mode {
                        StatMode::Nth { packet, .. } => *packet,
                        StatMode::Random { .. } => 0,
                    };
                    *mode = StatMode::Nth { every: e - 1, packet, count: NthCounter(packet) };
                    *n = neg;
                }
                _ => {
                    let p: u32 = v.parse().map_err(|_| bad())?;
                    if let StatMode::Nth { packet, count, .. } = mode {
                        *packet = p;
                        *count = NthCounter(p);
                    } else {
                        return Err(param("--packet can only be used in \"nth\" mode"));
                    }
                }
            }
        }
        "--src-type" | "--dst-type" => {
            let v = p.value(opt)?;
            let t = AddrType::parse(&v)
                .ok_or_else(|| param(format!("addrtype: unknown type \"{v}\"")))?;
            let Some(Match::AddrType { src, dst }) =
                last_match(spec, |m| matches!(m, Match::AddrType { .. }))
            else {
                return Err(unknown());
            };
            if opt == "--src-type" {
                *src = Some((t, neg));
            } else {
                *dst = Some((t, neg));
            }
        }
        "--reject-with" => {
            if target != Some("REJECT") {
                return Err(unknown());
            }
            let v = p.value(opt)?;
            let with = parse_reject_with(&v)
                .ok_or_else(|| param(format!("unknown reject type \"{v}\"")))?;
            spec.target = Target::Reject(with);
        }
        "--to-destination" | "--to-source" => {
            let want = if opt == "--to-destination" { "DNAT" } else { "SNAT" };
            if target != Some(want) {
                return Err(unknown());
            }
            let v = p.value(opt)?;
            let (addr, ports) = parse_nat_to(&v)?;
            if ports.is_some() && !matches!(proto, Some(6 | 17 | 132)) {
                return Err(param("Need TCP, UDP, SCTP or DCCP with port specification"));
            }
            spec.target = if want == "DNAT" {
                Target::Dnat { addr, ports }
            } else {
                Target::Snat { addr, ports }
            };
        }
        "--to-ports" | "--random-fully" | "--random" => {
            let Target::Masquerade { ports, random_fully } = &mut spec.target else {
                return Err(unknown());
            };
            match opt {
                "--to-ports" => {
                    let v = p.value(opt)?;
                    *ports = Some(parse_port_range(&v.replace('-', ":"))?);
                }
                "--random-fully" => *random_fully = true,
                _ => {}
            }
        }
        "--set-mark" | "--set-xmark" | "--or-mark" | "--and-mark" | "--xor-mark" => {
            if target != Some("MARK") {
                return Err(unknown());
            }
            let (v, m) = parse_mark(&p.value(opt)?)?;
            let (value, mask) = match opt {
                "--set-xmark" => (v, m),
                "--set-mark" => (v, v | m),
                "--or-mark" => (v, v),
                "--and-mark" => (0, !v),
                _ => (v, 0),
            };
            spec.target = Target::Mark { value, mask };
        }
        "--log-prefix" | "--log-level" => {
            let Target::Log { prefix, level } = &mut spec.target else {
                return Err(unknown());
            };
            let v = p.value(opt)?;
            if opt == "--log-prefix" {
                *prefix = Some(v);
            } else {
                *level = parse_log_level(&v)?;
            }
        }
        _ => return Err(unknown()),
    }
    Ok(())
}

/// Rejects rules whose modules or targets lack their required options.
fn check_complete(spec: &RuleSpec, target: Option<&str>) -> Result<(), IptablesError> {
    for m in &spec.matches {
        match m {
            Match::State { states, legacy_state, .. } if states.0 == 0 => {
                let name = if *legacy_state { "state" } else { "conntrack" };
                return Err(param(format!("{name}: At least one option is required")));
            }
            Match::Icmp { ty: 255, .. } => {
                return Err(param("icmp: option \"--icmp-type\" must be specified"));
            }
            Match::Multiport { ports, .. } if ports.is_empty() => {
                return Err(param("multiport: option \"--dports\" must be specified"));
            }
            Match::Statistic { mode: StatMode::Random { probability: u32::MAX }, .. } => {
                return Err(param("statistic: --probability must be specified in random mode"));
            }
            Match::Statistic { mode: StatMode::Nth { every: u32::MAX, .. }, .. } => {
                return Err(param("statistic: --every must be specified in nth mode"));
            }
            Match::Statistic { mode: StatMode::Nth { every, packet, .. }, .. }
                if packet > every =>
            {
                return Err(param("statistic: --packet must be smaller than --every"));
            }
            Match::AddrType { src: None, dst: None } => {
                return Err(param("addrtype: you must specify --src-type or --dst-type"));
            }
            Match::Comment(c) if c.is_empty() => {
                return Err(param("comment: option \"--comment\" must be specified"));
            }
            Match::Ports { proto, .. } if spec.proto.map(|p| p.0) != Some(*proto) => {
                return Err(param(
                    "Need TCP, UDP, SCTP or DCCP with port specification".to_string(),
                ));
            }
            _ => {}
        }
    }
    match (target, &spec.target) {
        (Some("DNAT"), Target::None) => {
            Err(param("DNAT: option \"--to-destination\" must be specified"))
        }
        (Some("SNAT"), Target::None) => {
            Err(param("SNAT: option \"--to-source\" must be specified"))
        }
        (Some("MARK"), Target::None) => {
            Err(param("MARK target: Parameter --set-xmark is required"))
        }
        (_, Target::Reject(super::RejectWith::TcpReset)) if spec.proto != Some((6, false)) => {
            Err(param("REJECT: TCP reset requires `-p tcp'"))
        }
        _ => Ok(()),
    }
}

fn parse_addr(s: &str, neg: bool) -> Result<AddrMatch, IptablesError> {
    let not_found = || param(format!("host/network `{s}' not found"));
    let (addr, prefix) = match s.split_once('/') {
        Some((a, m)) => {
            let prefix = match m.parse::<u8>() {
                Ok(p) if p <= 32 => p,
                Ok(_) => return Err(param(format!("invalid mask `{m}' specified"))),
                Err(_) => {
                    let mask: Ipv4Addr =
                        m.parse().map_err(|_| param(format!("invalid mask `{m}' specified")))?;
                    let bits = u32::from(mask);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(param(format!("invalid mask `{m}' specified")));
                    }
                    bits.leading_ones() as u8
                }
            };
            (a, prefix)
        }
        None => (s, 32),
    };
    let addr: Ipv4Addr = addr.parse().map_err(|_| not_found())?;
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
    Ok(AddrMatch { addr: u32::from(addr) & mask, prefix, neg })
}

fn parse_proto(s: &str) -> Result<u8, IptablesError> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "all" | "0" => 0,
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        other => {
            other.parse::<u8>().map_err(|_| param(format!("unknown protocol \"{s}\" specified")))?
        }
    })
}

fn parse_tcp_flags(s: &str) -> Result<u8, IptablesError> {
    let mut bits = 0;
    for name in s.split(',') {
        bits |= match name {
            "FIN" => 0x01,
            "SYN" => 0x02,
            "RST" => 0x04,
            "PSH" => 0x08,
            "ACK" => 0x10,
            "URG" => 0x20,
            "ALL" => 0x3f,
            "NONE" => 0,
            _ => return Err(param(format!("Unknown TCP flag `{name}'"))),
        };
    }
    Ok(bits)
}

fn parse_port(s: &str) -> Result<u16, IptablesError> {
    let named = match s {
        "ftp" => Some(21),
        "ssh" => Some(22),
        "telnet" => Some(23),
        "smtp" => Some(25),
        "domain" => Some(53),
        "http" => Some(80),
        "ntp" => Some(123),
        "https" => Some(443),
        "http-alt" => Some(8080),
        _ => None,
    };
    named
        .or_else(|| s.parse().ok())
        .ok_or_else(|| param(format!("invalid port/service `{s}' specified")))
}

fn parse_port_range(s: &str) -> Result<PortRange, IptablesError> {
    match s.split_once(':') {
        Some((lo, hi)) => {
            let lo = if lo.is_empty() { 0 } else { parse_port(lo)? };
            let hi = if hi.is_empty() { u16::MAX } else { parse_port(hi)? };
            if lo > hi {
                return Err(param(format!("invalid portrange (min > max) specified: `{s}'")));
            }
            Ok(PortRange { lo, hi })
        }
        None => {
            let p = parse_port(s)?;
            Ok(PortRange { lo: p, hi: p })
        }
    }
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_mark(s: &str) -> Result<(u32, u32), IptablesError> {
    let bad = || param(format!("Bad MARK value \"{s}\""));
    match s.split_once('/') {
        Some((v, m)) => Ok((parse_u32(v).ok_or_else(bad)?, parse_u32(m).ok_or_else(bad)?)),
        None => Ok((parse_u32(s).ok_or_else(bad)?, u32::MAX)),
    }
}

fn parse_nat_to(s: &str) -> Result<(Ipv4Addr, Option<PortRange>), IptablesError> {
    let bad = || param(format!("Bad IP address \"{s}\""));
    let (addr, ports) = match s.split_once(':') {
        Some((a, p)) => {
            let range = match p.split_once('-') {
                Some((lo, hi)) => PortRange {
                    lo: lo.parse().map_err(|_| param(format!("Port \"{p}\" not valid")))?,
                    hi: hi.parse().map_err(|_| param(format!("Port \"{p}\" not valid")))?,
                },
                None => {
                    let port = p.parse().map_err(|_| param(format!("Port \"{p}\" not valid")))?;
                    PortRange { lo: port, hi: port }
                }
            };
            if range.lo == 0 || range.lo > range.hi {
                return Err(param(format!("Port \"{p}\" not valid")));
            }
            (a, Some(range))
        }
        None => (s, None),
    };
    Ok((addr.parse().map_err(|_| bad())?, ports))
}

fn parse_log_level(s: &str) -> Result<u8, IptablesError> {
    const NAMES: [&str; 8] =
        ["emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"];
    if let Some(i) = NAMES.iter().position(|n| *n == s) {
        return Ok(i as u8);
    }
    s.parse::<u8>()
        .ok()
        .filter(|l| *l <= 7)
        .ok_or_else(|| param(format!("log-level `{s}' unknown")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn bundled_flags_and_options() {
        let inv = parse(&words("-t nat -nvL POSTROUTING --line-numbers")).unwrap();
        assert_eq!(inv.table, "nat");
        assert_eq!(inv.command, Command::List(Some("POSTROUTING".into())));
        assert!(inv.numeric && inv.verbose && inv.line_numbers && !inv.exact);
        assert_eq!(parse(&words("-L")).unwrap().command, Command::List(None));
        assert_eq!(
            parse(&words("-D INPUT 3")).unwrap().command,
            Command::DeleteNum("INPUT".into(), 3)
        );
        assert_eq!(
            parse(&words("-w 5 -I FORWARD 2 -j ACCEPT")).unwrap().command,
            Command::Insert(
                "FORWARD".into(),
                2,
                ParsedRule {
                    spec: RuleSpec {
                        src: None,
                        dst: None,
                        in_iface: None,
                        out_iface: None,
                        proto: None,
                        matches: vec![],
                        target: Target::Accept
                    },
                    jump: None
                }
            )
        );
    }

    #[test]
    fn values_and_their_errors() {
        let rule = |line: &str| match parse(&words(line)).map(|i| i.command) {
            Ok(Command::Append(_, r)) => Ok(r),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let r = rule("-A X -s 10.1.2.3/16 -p 6 -j MARK --and-mark 0xff").unwrap();
        assert_eq!(r.spec.src, Some(AddrMatch { addr: 0x0a01_0000, prefix: 16, neg: false }));
        assert_eq!(r.spec.proto, Some((6, false)));
        assert_eq!(r.spec.target, Target::Mark { value: 0, mask: !0xff });
        let r = rule("-A X -j KUBE-SVC-1 ").unwrap();
        assert_eq!(r.jump, Some(("KUBE-SVC-1".into(), false)));
        let r = rule("-A X -g KUBE-SVC-1").unwrap();
        assert_eq!(r.jump, Some(("KUBE-SVC-1".into(), true)));
        assert_eq!(
            rule("-A X ! ! -s 1.1.1.1"),
            Err(IptablesError::Parameter("multiple `!' flags not allowed".into()))
        );
        assert_eq!(rule("-A X -s 1.1.1.1/33"), Err(param("invalid mask `33' specified")));
        assert_eq!(
            rule("-A X -s 1.1.1.1/255.0.255.0"),
            Err(param("invalid mask `255.0.255.0' specified"))
        );
        assert_eq!(
            rule("-A X -p tcp --dport 9:8"),
            Err(param("invalid portrange (min > max) specified: `9:8'"))
        );
        assert_eq!(
            rule("-A X -m foo"),
            Err(param("Couldn't load match `foo':No such file or directory"))
        );
        assert_eq!(
            rule("-A X -m conntrack -j ACCEPT"),
            Err(param("conntrack: At least one option is required"))
        );
        assert_eq!(
            rule("-A X -m conntrack --ctstate NEWISH"),
            Err(param("Bad ctstate \"NEWISH\""))
        );
        assert_eq!(
            rule("-A X -j DNAT"),
            Err(param("DNAT: option \"--to-destination\" must be specified"))
        );
        assert_eq!(
            rule("-A X -j DNAT --to-destination 1.2.3.4:80"),
            Err(param("Need TCP, UDP, SCTP or DCCP with port specification"))
        );
        assert_eq!(
            rule("-A X -j ACCEPT --to-destination 1.2.3.4"),
            Err(IptablesError::UnknownOption("--to-destination".into()))
        );
        assert_eq!(
            rule("-A X -j LOG --log-level debug").unwrap().spec.target,
            Target::Log { prefix: None, level: 7 }
        );
        assert_eq!(rule("-A X stray"), Err(param("Bad argument `stray'")));
        assert_eq!(rule("-A X -j ACCEPT !"), Err(param("Bad argument `!'")));
        assert_eq!(
            parse(&words("-F INPUT -s 1.1.1.1")),
            Err(param("Illegal option `-s' with this command (-F)"))
        );
    }
}
