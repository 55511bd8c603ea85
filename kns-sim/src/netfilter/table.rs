//! A rule table (`filter` or `nat`): built-in and user chains, their traversal for one packet,
//! and the `iptables` commands that edit and print them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::parse::{Command, Invocation, ParsedRule};
use super::rule::{ChainId, PacketView, PortRange, Rule, RuleSpec, StatRng, Target};
use super::{Hook, IptablesError, Notes, RejectWith};

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableKind {
    /// `filter`: INPUT, FORWARD, OUTPUT.
    Filter,
    /// `nat`: PREROUTING, INPUT, OUTPUT, POSTROUTING; consulted for a connection's first packet.
    Nat,
}

impl TableKind {
    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Filter => "filter",
            TableKind::Nat => "nat",
        }
    }

    fn builtins(self) -> &'static [&'static str] {
        match self {
            TableKind::Filter => &["INPUT", "FORWARD", "OUTPUT"],
            TableKind::Nat => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        }
    }
}

/// A chain policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// ACCEPT.
    Accept,
    /// DROP.
    Drop,
}

#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub name: String,
    /// `Some` for built-in chains.
    pub policy: Option<Policy>,
    pub policy_packets: u64,
    pub policy_bytes: u64,
    pub rules: Vec<Rule>,
}

/// The result of traversing a built-in chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Accept,
    Drop { chain: ChainId, rule: usize },
    Reject { chain: ChainId, rule: usize, with: RejectWith },
    Dnat { addr: Ipv4Addr, ports: Option<PortRange>, chain: ChainId, rule: usize },
    Snat { addr: Ipv4Addr, ports: Option<PortRange>, chain: ChainId, rule: usize },
    Masquerade { ports: Option<PortRange>, chain: ChainId, rule: usize },
}

enum Walk {
    Return,
    Done(Outcome),
}

/// One table's chains.
#[derive(Debug, Clone)]
pub(crate) struct RuleTable {
    pub kind: TableKind,
    chains: Vec<Option<Chain>>,
    by_name: BTreeMap<String, ChainId>,
}

impl RuleTable {
    pub fn new(kind: TableKind) -> Self {
        let mut table = RuleTable { kind, chains: Vec::new(), by_name: BTreeMap::new() };
        for name in kind.builtins() {
            table.add_chain(name, Some(Policy::Accept));
        }
        table
    }

    fn add_chain(&mut self, name: &str, policy: Option<Policy>) -> ChainId {
        let id = ChainId(u32::try_from(self.chains.len()).expect("fewer than 2^32 chains"));
        self.chains.push(Some(Chain {
            name: name.to_string(),
            policy,
            policy_packets: 0,
            policy_bytes: 0,
            rules: Vec::new(),
        }));
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// The built-in chain a hook traverses (built-in chains are created first, in the order of
    /// [`TableKind::builtins`], and never deleted, so no lookup is needed).
    pub fn builtin(&self, hook: Hook) -> ChainId {
        let index = match (self.kind, hook) {
            (TableKind::Filter, Hook::Input) | (TableKind::Nat, Hook::Prerouting) => 0,
            (TableKind::Filter, Hook::Forward) | (TableKind::Nat, Hook::Input) => 1,
            (_, Hook::Output) => 2,
            (TableKind::Nat, Hook::Postrouting) => 3,
            // Only the hooks whose stages use a table ask (see `Netfilter::rebuild_steps`).
            (TableKind::Filter, _) | (TableKind::Nat, Hook::Forward) => {
                unreachable!("no {hook:?} chain in {}", self.kind.name())
            }
        };
        ChainId(index)
    }

    pub fn chain(&self, id: ChainId) -> &Chain {
        self.chains[id.0 as usize].as_ref().expect("chain ids in rules refer to live chains")
    }

    fn chain_mut(&mut self, id: ChainId) -> &mut Chain {
        self.chains[id.0 as usize].as_mut().expect("chain ids in rules refer to live chains")
    }

    pub fn chain_name(&self, id: ChainId) -> &str {
        &self.chain(id).name
    }

    /// Chains in listing order: built-ins as created, then user chains by name.
    fn ordered(&self) -> Vec<ChainId> {
        let mut ids: Vec<ChainId> = (0..self.kind.builtins().len() as u32).map(ChainId).collect();
        ids.extend(self.by_name.values().filter(|id| self.chain(**id).policy.is_none()));
        ids
    }

    /// Traverses built-in chain `chain` for `pkt`, updating counters and `mark`.
    pub fn run(
        &mut self,
        chain: ChainId,
        pkt: &PacketView<'_>,
        mark: &mut u32,
        rng: &mut StatRng,
        notes: &mut Notes,
    ) -> Outcome {
        match self.walk(chain, pkt, mark, rng, notes) {
            Walk::Done(outcome) => outcome,
            Walk::Return => self.run_policy(chain, pkt.len, notes),
        }
    }

    /// Whether `chain` holds no rule, so that running it only applies its policy.
    pub fn is_chain_empty(&self, chain: ChainId) -> bool {
        self.chain(chain).rules.is_empty()
    }

    /// Applies the policy of `chain` to a packet of `len` bytes that no rule decided (what
    /// [`RuleTable::run`] does at the end of a built-in chain), counting it.
    pub fn run_policy(&mut self, chain: ChainId, len: u64, notes: &mut Notes) -> Outcome {
        let table = self.kind.name();
        let c = self.chain_mut(chain);
        c.policy_packets += 1;
        c.policy_bytes += len;
        let policy = c.policy.unwrap_or(Policy::Accept);
        notes.add(|| {
            let p = if policy == Policy::Accept { "ACCEPT" } else { "DROP" };
            format!("{table} {} policy {p}", c.name)
        });
        match policy {
            Policy::Accept => Outcome::Accept,
            Policy::Drop => Outcome::Drop { chain, rule: 0 },
        }
    }

    fn walk(
        &mut self,
        chain: ChainId,
        pkt: &PacketView<'_>,
        mark: &mut u32,
        rng: &mut StatRng,
        notes: &mut Notes,
    ) -> Walk {
        let mut i = 0;
        while i < self.chain(chain).rules.len() {
            let rule = &mut self.chain_mut(chain).rules[i];
            i += 1;
            if !rule.spec.matches(pkt, *mark, rng) {
                continue;
            }
            rule.packets += 1;
            rule.bytes += pkt.len;
            let n = i;
            if let Target::Log { prefix, .. } = &rule.spec.target {
                // LOG only writes a note; handled here so that its prefix is never cloned.
                let text = notes.on.then(|| format!("LOG {}", prefix.as_deref().unwrap_or("")));
                if let Some(text) = text {
                    self.note(notes, chain, n, text.trim_end());
                }
                continue;
            }
            let target = rule.spec.target.clone();
            let done = |outcome: Outcome| Walk::Done(outcome);
            match target {
                Target::None => {}
                Target::Accept => {
                    self.note(notes, chain, n, "ACCEPT");
                    return done(Outcome::Accept);
                }
                Target::Drop => {
                    self.note(notes, chain, n, "DROP");
                    return done(Outcome::Drop { chain, rule: n });
                }
                Target::Reject(with) => {
                    self.note(notes, chain, n, "REJECT");
                    return done(Outcome::Reject { chain, rule: n, with });
                }
                Target::Return => return Walk::Return,
                Target::Jump { chain: to, goto } => {
                    if notes.on {
                        let to_name = self.chain_name(to).to_string();
                        self.note(notes, chain, n, &format!("-> {to_name}"));
                    }
                    match self.walk(to, pkt, mark, rng, notes) {
                        Walk::Done(outcome) => return Walk::Done(outcome),
                        Walk::Return if goto => return Walk::Return,
                        Walk::Return => {}
                    }
                }
                Target::Dnat { addr, ports } => {
                    return done(Outcome::Dnat { addr, ports, chain, rule: n });
                }
                Target::Snat { addr, ports } => {
                    return done(Outcome::Snat { addr, ports, chain, rule: n });
                }
                Target::Masquerade { ports, .. } => {
                    return done(Outcome::Masquerade { ports, chain, rule: n });
                }
                Target::Mark { value, mask } => {
                    *mark = (*mark & !mask) ^ value;
                    let new = *mark;
                    if notes.on {
                        self.note(notes, chain, n, &format!("MARK set {new:#x}"));
                    }
                }
                Target::Log { .. } => {}
            }
        }
        Walk::Return
    }

    fn note(&self, notes: &mut Notes, chain: ChainId, rule: usize, what: &str) {
        notes
            .add(|| format!("{} {} rule {rule}: {what}", self.kind.name(), self.chain_name(chain)));
    }

    // ---- iptables commands ----

    /// Runs a parsed invocation against this table.
    pub fn execute(&mut self, inv: &Invocation) -> Result<String, IptablesError> {
        match &inv.command {
            Command::Append(chain, rule) => {
                let id = self.existing(chain)?;
                let spec = self.resolve(id, rule)?;
                self.chain_mut(id).rules.push(Rule { spec, packets: 0, bytes: 0 });
            }
            Command::Insert(chain, pos, rule) => {
                let id = self.existing(chain)?;
                let spec = self.resolve(id, rule)?;
                let rules = &mut self.chain_mut(id).rules;
                if *pos == 0 || *pos > rules.len() + 1 {
                    return Err(IptablesError::Index("insertion"));
                }
                rules.insert(pos - 1, Rule { spec, packets: 0, bytes: 0 });
            }
            Command::Replace(chain, pos, rule) => {
                let id = self.existing(chain)?;
                let spec = self.resolve(id, rule)?;
                let rules = &mut self.chain_mut(id).rules;
                if *pos == 0 || *pos > rules.len() {
                    return Err(IptablesError::Index("replacement"));
                }
                rules[pos - 1] = Rule { spec, packets: 0, bytes: 0 };
            }
            Command::DeleteNum(chain, pos) => {
                let id = self.existing(chain)?;
                let rules = &mut self.chain_mut(id).rules;
                if *pos == 0 || *pos > rules.len() {
                    return Err(IptablesError::Index("deletion"));
                }
                rules.remove(pos - 1);
            }
            Command::Delete(chain, rule) | Command::Check(chain, rule) => {
                let id = self.existing(chain)?;
                let spec = self.resolve(id, rule).map_err(|_| IptablesError::BadRule)?;
                let rules = &mut self.chain_mut(id).rules;
                let pos =
                    rules.iter().position(|r| r.spec == spec).ok_or(IptablesError::BadRule)?;
                if matches!(inv.command, Command::Delete(..)) {
                    rules.remove(pos);
                }
            }
            Command::Flush(chain) => {
                for id in self.selected(chain.as_deref())? {
                    self.chain_mut(id).rules.clear();
                }
            }
            Command::Zero(chain) => {
                for id in self.selected(chain.as_deref())? {
                    let c = self.chain_mut(id);
                    c.policy_packets = 0;
                    c.policy_bytes = 0;
                    for r in &mut c.rules {
                        r.packets = 0;
                        r.bytes = 0;
                    }
                }
            }
            Command::Policy(chain, policy) => {
                let id = self.existing(chain)?;
                if self.chain(id).policy.is_none() {
                    return Err(IptablesError::BadBuiltin);
                }
                let policy = match policy.as_str() {
                    "ACCEPT" => Policy::Accept,
                    "DROP" if self.kind == TableKind::Filter => Policy::Drop,
                    "DROP" => return Err(IptablesError::InvalidArgument),
                    _ => return Err(IptablesError::BadPolicy),
                };
                self.chain_mut(id).policy = Some(policy);
            }
            Command::NewChain(name) => {
                if self.by_name.contains_key(name) {
                    return Err(IptablesError::ChainExists);
                }
                check_chain_name(name)?;
                self.add_chain(name, None);
            }
            Command::DeleteChain(Some(name)) => {
                let id = self.existing(name)?;
                if self.chain(id).policy.is_some() {
                    return Err(IptablesError::InvalidArgument);
                }
                if self.references(id) > 0 {
                    return Err(IptablesError::ChainInUse);
                }
                if !self.chain(id).rules.is_empty() {
                    return Err(IptablesError::ChainNotEmpty);
                }
                self.delete_chain(id);
            }
            Command::DeleteChain(None) => {
                let user: Vec<ChainId> = self
                    .ordered()
                    .into_iter()
                    .filter(|id| self.chain(*id).policy.is_none())
                    .collect();
                let from_builtin =
                    self.chains.iter().flatten().filter(|c| c.policy.is_some()).any(|c| {
                        c.rules.iter().any(|r| matches!(r.spec.target, Target::Jump { .. }))
                    });
                if from_builtin && !user.is_empty() {
                    return Err(IptablesError::ChainInUse);
                }
                if user.iter().any(|id| !self.chain(*id).rules.is_empty()) {
                    return Err(IptablesError::ChainNotEmpty);
                }
                for id in user {
                    self.delete_chain(id);
                }
            }
            Command::List(chain) => return self.list(chain.as_deref(), inv),
            Command::ListRules(chain) => return self.list_rules(chain.as_deref()),
        }
        Ok(String::new())
    }

    /// Empties every chain and deletes the user chains (`iptables-restore` without `--noflush`).
    pub fn reset(&mut self) {
        let user: Vec<ChainId> =
            self.ordered().into_iter().filter(|id| self.chain(*id).policy.is_none()).collect();
        for id in self.ordered() {
            self.chain_mut(id).rules.clear();
        }
        for id in user {
            self.delete_chain(id);
        }
    }

    /// `:CHAIN POLICY` in `iptables-restore` input: creates the chain or empties it, and sets a
    /// built-in chain's policy (`-` for user chains).
    pub fn declare(&mut self, name: &str, policy: &str) -> Result<(), IptablesError> {
        let id = match self.by_name.get(name) {
            Some(id) => *id,
            None => {
                if policy != "-" {
                    return Err(IptablesError::BadBuiltin);
                }
                check_chain_name(name)?;
                self.add_chain(name, None)
            }
        };
        let builtin = self.chain(id).policy.is_some();
        let policy = match (policy, builtin) {
            ("-", false) => None,
            ("ACCEPT", true) => Some(Policy::Accept),
            ("DROP", true) if self.kind == TableKind::Filter => Some(Policy::Drop),
            ("DROP", true) => return Err(IptablesError::InvalidArgument),
            (_, false) => return Err(IptablesError::BadBuiltin),
            _ => return Err(IptablesError::BadPolicy),
        };
        let chain = self.chain_mut(id);
        chain.rules.clear();
        if policy.is_some() {
            chain.policy = policy;
        }
        Ok(())
    }

    fn delete_chain(&mut self, id: ChainId) {
        if let Some(c) = self.chains[id.0 as usize].take() {
            self.by_name.remove(&c.name);
        }
    }

    fn existing(&self, name: &str) -> Result<ChainId, IptablesError> {
        self.by_name.get(name).copied().ok_or(IptablesError::NoChain)
    }

    fn selected(&self, chain: Option<&str>) -> Result<Vec<ChainId>, IptablesError> {
        match chain {
            Some(name) => Ok(vec![self.existing(name)?]),
            None => Ok(self.ordered()),
        }
    }

    fn references(&self, id: ChainId) -> usize {
        self.chains
            .iter()
            .flatten()
            .flat_map(|c| &c.rules)
            .filter(|r| matches!(r.spec.target, Target::Jump { chain, .. } if chain == id))
            .count()
    }

    /// Whether `to` can reach `from` through jumps (so a jump from `from` to `to` would loop).
    fn reaches(&self, to: ChainId, from: ChainId) -> bool {
        let mut stack = vec![to];
        let mut seen = vec![false; self.chains.len()];
        while let Some(c) = stack.pop() {
            if c == from {
                return true;
            }
            if std::mem::replace(&mut seen[c.0 as usize], true) {
                continue;
            }
            for r in &self.chain(c).rules {
                if let Target::Jump { chain, .. } = r.spec.target {
                    stack.push(chain);
                }
            }
        }
        false
    }

    /// Resolves a parsed rule for chain `id`: the jump target, and the table's target rules.
    fn resolve(&self, id: ChainId, rule: &ParsedRule) -> Result<RuleSpec, IptablesError> {
        let mut spec = rule.spec.clone();
        if let Some((name, goto)) = &rule.jump {
            let to = self.by_name.get(name).copied().ok_or(IptablesError::NoChain)?;
            if self.chain(to).policy.is_some() || self.reaches(to, id) {
                return Err(IptablesError::Loop);
            }
            spec.target = Target::Jump { chain: to, goto: *goto };
        }
        let chain = self.chain_name(id);
        let user = self.chain(id).policy.is_none();
        let ok = match (&spec.target, self.kind) {
            (Target::Drop | Target::Reject(_), TableKind::Nat) => false,
            (
                Target::Dnat { .. } | Target::Snat { .. } | Target::Masquerade { .. },
                TableKind::Filter,
            ) => false,
            (Target::Dnat { .. }, TableKind::Nat) => {
                user || matches!(chain, "PREROUTING" | "OUTPUT")
            }
            (Target::Snat { .. } | Target::Masquerade { .. }, TableKind::Nat) => {
                user || matches!(chain, "POSTROUTING" | "INPUT")
            }
            _ => true,
        };
        if !ok {
            return Err(IptablesError::InvalidArgument);
        }
        Ok(spec)
    }

    fn list(&self, chain: Option<&str>, inv: &Invocation) -> Result<String, IptablesError> {
        let ids = self.selected(chain)?;
        let mut out = String::new();
        let name_of = |id: ChainId| self.chain_name(id).to_string();
        for (i, id) in ids.into_iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let c = self.chain(id);
            let _ = write!(out, "Chain {}", c.name);
            match c.policy {
                Some(policy) => {
                    let p = if policy == Policy::Accept { "ACCEPT" } else { "DROP" };
                    if inv.verbose {
                        let _ = writeln!(
                            out,
                            " (policy {p} {}packets, {}bytes)",
                            count(c.policy_packets, inv.exact, false),
                            count(c.policy_bytes, inv.exact, false)
                        );
                    } else {
                        let _ = writeln!(out, " (policy {p})");
                    }
                }
                None => {
                    let _ = writeln!(out, " ({} references)", self.references(id));
                }
            }
            if inv.line_numbers {
                out.push_str("num  ");
            }
            if inv.verbose {
                if inv.exact {
                    let _ = write!(out, "{:>8} {:>10} ", "pkts", "bytes");
                } else {
                    let _ = write!(out, "{:>5} {:>5} ", "pkts", "bytes");
                }
            }
            let _ = write!(out, "{:<9}  prot opt", "target");
            if inv.verbose {
                let _ = write!(out, " {:<6} {:<6} ", "in", "out");
            }
            let _ = writeln!(out, " {:<19}  {:<19} ", "source", "destination");
            for (n, rule) in c.rules.iter().enumerate() {
                if inv.line_numbers {
                    let _ = write!(out, "{:<4} ", n + 1);
                }
                if inv.verbose {
                    out.push_str(&count(rule.packets, inv.exact, true));
                    out.push_str(&count(rule.bytes, inv.exact, true));
                }
                let _ = write!(out, "{:<9} ", rule.spec.target_name(&name_of));
                out.push_str(&rule.spec.list_row(inv.numeric, inv.verbose));
                out.push('\n');
            }
        }
        Ok(out)
    }

    fn list_rules(&self, chain: Option<&str>) -> Result<String, IptablesError> {
        let ids = self.selected(chain)?;
        let name_of = |id: ChainId| self.chain_name(id).to_string();
        let mut out = String::new();
        for id in &ids {
            let c = self.chain(*id);
            match c.policy {
                Some(Policy::Accept) => {
                    let _ = writeln!(out, "-P {} ACCEPT", c.name);
                }
                Some(Policy::Drop) => {
                    let _ = writeln!(out, "-P {} DROP", c.name);
                }
                None => {
                    let _ = writeln!(out, "-N {}", c.name);
                }
            }
        }
        for id in &ids {
            let c = self.chain(*id);
            for rule in &c.rules {
                let _ = writeln!(out, "-A {}{}", c.name, rule.spec.save(&name_of));
            }
        }
        Ok(out)
    }
}

/// A counter as `iptables -L -v` prints it: up to 99999 as is, then with K, M, G or T.
fn count(n: u64, exact: bool, table: bool) -> String {
    if exact {
        return if table { format!("{n:>8} ") } else { format!("{n} ") };
    }
    let mut n = n;
    if n <= 99_999 {
        return if table { format!("{n:>5} ") } else { format!("{n} ") };
    }
    for suffix in ['K', 'M', 'G', 'T'] {
        n = (n + 500) / 1000;
        if n <= 9_999 || suffix == 'T' {
            return if table { format!("{n:>4}{suffix} ") } else { format!("{n}{suffix} ") };
        }
    }
    unreachable!("the loop returns at T")
}

fn check_chain_name(name: &str) -> Result<(), IptablesError> {
    const TARGETS: [&str; 10] = [
        "ACCEPT",
        "DROP",
        "REJECT",
        "RETURN",
        "DNAT",
        "SNAT",
        "MASQUERADE",
        "MARK",
        "LOG",
        "QUEUE",
    ];
    if name.len() > 28 {
        return Err(IptablesError::Parameter(format!(
            "chain name `{name}' too long (must be under 29 chars)"
        )));
    }
    if name.starts_with('-') || name.starts_with('!') || name.is_empty() {
        return Err(IptablesError::Parameter(format!(
            "chain name not allowed to start with `{}'",
            &name[..name.len().min(1)]
        )));
    }
    if TARGETS.contains(&name) {
        return Err(IptablesError::Parameter("chain name may not clash with target name".into()));
    }
    Ok(())
}
