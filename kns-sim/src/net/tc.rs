//! `tc qdisc ... netem`: the Linux way to give a link latency, loss, a rate and a queue limit,
//! mapped onto the [`LinkParams`] of a veth end.

use std::time::Duration;

use super::{IpError, Kind, LinkParams, NetnsId, Sim};

impl Sim {
    /// Runs `tc` (the words after `tc`) in `ns`: `qdisc add|replace|change dev DEV root netem
    /// [delay TIME] [loss PERCENT%] [rate RATE] [limit PACKETS]`, `qdisc del dev DEV root`, and
    /// `qdisc show [dev DEV]`. Only veth ends have link properties. As on Linux, `add` refuses
    /// a device that already has a netem qdisc, and `change` and `del` need one.
    pub fn tc(&mut self, ns: NetnsId, args: &[&str]) -> Result<String, IpError> {
        match args {
            ["qdisc" | "q", "show" | "list" | "ls"] | ["qdisc" | "q"] => {
                Ok(self.show_qdiscs(ns, None))
            }
            ["qdisc" | "q", "show" | "list" | "ls", "dev", dev] => {
                self.iface_id(ns, dev)?;
                Ok(self.show_qdiscs(ns, Some(dev)))
            }
            ["qdisc" | "q", "del" | "delete", "dev", dev, "root", ..] => {
                if !self.has_netem(ns, dev)? {
                    return Err(IpError::Message(
                        "Error: Cannot delete qdisc with handle of zero.".into(),
                    ));
                }
                self.set_netem(ns, dev, LinkParams::default(), false)?;
                Ok(String::new())
            }
            [
                "qdisc" | "q",
                op @ ("add" | "replace" | "change"),
                "dev",
                dev,
                "root",
                "netem",
                opts @ ..,
            ] => {
                let exists = self.has_netem(ns, dev)?;
                if *op == "add" && exists {
                    return Err(IpError::Message(
                        "Error: Exclusivity flag on, cannot modify.".into(),
                    ));
                }
                if *op == "change" && !exists {
                    return Err(IpError::Message(
                        "Error: Qdisc not found. To create specify NLM_F_CREATE flag.".into(),
                    ));
                }
                let params = parse_netem(opts)?;
                self.set_netem(ns, dev, params, true)?;
                Ok(String::new())
            }
            _ => Err(IpError::Unsupported(format!(
                "tc {}: kns runs `tc qdisc add|replace|change|del dev DEV root netem ...` and `tc qdisc show`",
                args.join(" ")
            ))),
        }
    }

    /// Whether `dev` carries a netem qdisc; an error if there is no such device.
    fn has_netem(&self, ns: NetnsId, dev: &str) -> Result<bool, IpError> {
        let id = self.iface_id(ns, dev)?;
        Ok(match &self.ifaces[id.0 as usize].kind {
            Kind::Veth(v) => v.netem || v.params != LinkParams::default(),
            _ => false,
        })
    }

    fn set_netem(
        &mut self,
        ns: NetnsId,
        dev: &str,
        params: LinkParams,
        netem: bool,
    ) -> Result<(), IpError> {
        self.link_set_params(ns, dev, params)?;
        let id = self.iface_id(ns, dev)?;
        if let Kind::Veth(v) = &mut self.ifaces[id.0 as usize].kind {
            v.netem = netem;
        }
        Ok(())
    }

    fn show_qdiscs(&self, ns: NetnsId, dev: Option<&str>) -> String {
        let mut out = String::new();
        // In interface index order, as tc lists them.
        let mut ifaces: Vec<_> = self.namespaces[ns.0 as usize].ifaces.iter().collect();
        ifaces.sort_by_key(|(_, id)| id.0);
        for (name, id) in ifaces {
            if dev.is_some_and(|d| d != name) {
                continue;
            }
            let ifc = &self.ifaces[id.0 as usize];
            match &ifc.kind {
                Kind::Veth(v) if v.netem || v.params != LinkParams::default() => {
                    out.push_str(&format!(
                        "qdisc netem 8001: dev {name} root refcnt 2 limit {}",
                        v.params.queue_limit
                    ));
                    if !v.params.latency.is_zero() {
                        out.push_str(&format!(" delay {}", fmt_time(v.params.latency)));
                    }
                    if v.params.loss > 0.0 {
                        out.push_str(&format!(" loss {}%", v.params.loss * 100.0));
                    }
                    if let Some(bps) = v.params.bandwidth_bps {
                        out.push_str(&format!(" rate {}", fmt_rate(bps)));
                    }
                    out.push('\n');
                }
                // Without a qdisc of its own, a device that is up has the kernel's `noqueue`;
                // one that is down has `noop`, which tc does not list.
                _ if ifc.up => {
                    out.push_str(&format!("qdisc noqueue 0: dev {name} root refcnt 2\n"));
                }
                _ => {}
            }
        }
        out
    }
}

fn bad(what: &str) -> IpError {
    IpError::Message(format!("Illegal \"{what}\""))
}

fn parse_netem(opts: &[&str]) -> Result<LinkParams, IpError> {
    let mut p = LinkParams::default();
    let mut it = opts.iter();
    while let Some(opt) = it.next() {
        let mut value = |what: &str| it.next().copied().ok_or_else(|| bad(what));
        match *opt {
            "delay" | "latency" => {
                p.latency = parse_time(value("latency")?)?;
                if it
                    .as_slice()
                    .first()
                    .is_some_and(|j| j.starts_with(|c: char| c.is_ascii_digit()))
                {
                    return Err(IpError::Unsupported(
                        "netem jitter: kns models a fixed delay (give `delay TIME` alone)".into(),
                    ));
                }
            }
            "loss" => {
                let v = value("loss")?;
                let v = if v == "random" { value("loss")? } else { v };
                let pct: f64 = v.trim_end_matches('%').parse().map_err(|_| bad("loss percent"))?;
                if !(0.0..=100.0).contains(&pct) {
                    return Err(bad("loss percent"));
                }
                p.loss = pct / 100.0;
            }
            "rate" => p.bandwidth_bps = Some(parse_rate(value("rate")?)?),
            "limit" => {
                let v = value("limit")?;
                p.queue_limit = v.parse().map_err(|_| bad("limit"))?;
            }
            other => {
                return Err(IpError::Unsupported(format!(
                    "netem option \"{other}\": kns models delay, loss, rate and limit"
                )));
            }
        }
    }
    Ok(p)
}

/// `10ms`, `1.5s`, `250us`, `100` (microseconds, as tc reads a bare number).
fn parse_time(text: &str) -> Result<Duration, IpError> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad("latency"))?;
    let micros = match unit {
        "" | "us" | "usec" | "usecs" => n,
        "ms" | "msec" | "msecs" => n * 1e3,
        "s" | "sec" | "secs" => n * 1e6,
        _ => return Err(bad("latency")),
    };
    if !micros.is_finite() || micros < 0.0 {
        return Err(bad("latency"));
    }
    Ok(Duration::from_nanos((micros * 1e3) as u64))
}

/// `1mbit`, `100kbit`, `1gbit`, `500bit`, `1mbps` (bytes per second).
fn parse_rate(text: &str) -> Result<u64, IpError> {
    let lower = text.to_ascii_lowercase();
    let split = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad("rate"))?;
    let bits = match unit {
        "bit" | "" => n,
        "kbit" => n * 1e3,
        "mbit" => n * 1e6,
        "gbit" => n * 1e9,
        "bps" => n * 8.0,
        "kbps" => n * 8e3,
        "mbps" => n * 8e6,
        "gbps" => n * 8e9,
        _ => return Err(bad("rate")),
    };
    if !bits.is_finite() || bits < 1.0 {
        return Err(bad("rate"));
    }
    Ok(bits as u64)
}

fn fmt_time(d: Duration) -> String {
    let us = d.as_nanos() as f64 / 1e3;
    if us >= 1e6 {
        format!("{}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{}ms", us / 1e3)
    } else {
        format!("{us}us")
    }
}

fn fmt_rate(bps: u64) -> String {
    match bps {
        b if b >= 1_000_000_000 && b % 1_000_000_000 == 0 => format!("{}Gbit", b / 1_000_000_000),
        b if b >= 1_000_000 && b % 1_000_000 == 0 => format!("{}Mbit", b / 1_000_000),
        b if b >= 1_000 && b % 1_000 == 0 => format!("{}Kbit", b / 1_000),
        b => format!("{b}bit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_netem_options() {
        let p = parse_netem(&["delay", "10ms", "loss", "2.5%", "rate", "1mbit", "limit", "50"])
            .unwrap();
        assert_eq!(p.latency, Duration::from_millis(10));
        assert!((p.loss - 0.025).abs() < 1e-12);
        assert_eq!(p.bandwidth_bps, Some(1_000_000));
        assert_eq!(p.queue_limit, 50);
        assert_eq!(parse_time("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_time("250").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_rate("1kbps").unwrap(), 8000);
        assert!(parse_netem(&["loss", "150%"]).is_err());
        assert!(parse_netem(&["delay"]).is_err());
        assert!(matches!(parse_netem(&["duplicate", "1%"]), Err(IpError::Unsupported(_))));
        assert_eq!(fmt_time(Duration::from_millis(10)), "10ms");
        assert_eq!(fmt_rate(1_000_000), "1Mbit");
    }

    #[test]
    fn tc_sets_and_shows_link_properties() {
        let mut sim = Sim::new(1);
        let ns = Sim::ROOT;
        sim.link_add_veth(ns, "a", "b", None).unwrap();
        sim.tc(ns, &["qdisc", "add", "dev", "a", "root", "netem", "delay", "5ms", "loss", "1%"])
            .unwrap();
        let show = sim.tc(ns, &["qdisc", "show", "dev", "a"]).unwrap();
        assert_eq!(show, "qdisc netem 8001: dev a root refcnt 2 limit 1000 delay 5ms loss 1%\n");
        sim.tc(ns, &["qdisc", "del", "dev", "a", "root"]).unwrap();
        assert_eq!(
            sim.tc(ns, &["qdisc", "show", "dev", "a"]).unwrap(),
            "",
            "a device that is down has `noop`, which tc does not list"
        );
        assert!(matches!(
            sim.tc(ns, &["qdisc", "add", "dev", "lo", "root", "netem"]),
            Err(IpError::Unsupported(_))
        ));
        assert_eq!(
            sim.tc(ns, &["qdisc", "add", "dev", "eth9", "root", "netem"]).unwrap_err().to_string(),
            "Cannot find device \"eth9\""
        );
    }

    #[test]
    fn add_change_del_follow_the_kernel_rules() {
        let mut sim = Sim::new(1);
        let ns = Sim::ROOT;
        sim.link_add_veth(ns, "a", "b", None).unwrap();
        let err = |sim: &mut Sim, args: &[&str]| sim.tc(ns, args).unwrap_err().to_string();
        assert_eq!(
            err(&mut sim, &["qdisc", "change", "dev", "a", "root", "netem", "delay", "1ms"]),
            "Error: Qdisc not found. To create specify NLM_F_CREATE flag."
        );
        assert_eq!(
            err(&mut sim, &["qdisc", "del", "dev", "a", "root"]),
            "Error: Cannot delete qdisc with handle of zero."
        );
        // A netem with no options is still a qdisc: shown, and in the way of a second `add`.
        sim.tc(ns, &["qdisc", "add", "dev", "a", "root", "netem"]).unwrap();
        assert_eq!(
            sim.tc(ns, &["qdisc", "show", "dev", "a"]).unwrap(),
            "qdisc netem 8001: dev a root refcnt 2 limit 1000\n"
        );
        assert_eq!(
            err(&mut sim, &["qdisc", "add", "dev", "a", "root", "netem", "delay", "1ms"]),
            "Error: Exclusivity flag on, cannot modify."
        );
        sim.tc(ns, &["qdisc", "change", "dev", "a", "root", "netem", "delay", "2ms"]).unwrap();
        sim.tc(ns, &["qdisc", "replace", "dev", "b", "root", "netem", "loss", "50%"]).unwrap();
        assert_eq!(
            sim.tc(ns, &["qdisc"]).unwrap(),
            "qdisc noqueue 0: dev lo root refcnt 2\n\
             qdisc netem 8001: dev a root refcnt 2 limit 1000 delay 2ms\n\
             qdisc netem 8001: dev b root refcnt 2 limit 1000 loss 50%\n"
        );
        assert!(
            err(
                &mut sim,
                &["qdisc", "replace", "dev", "a", "root", "netem", "delay", "5ms", "1ms"]
            )
            .contains("jitter")
        );
        sim.tc(ns, &["qdisc", "del", "dev", "a", "root"]).unwrap();
        sim.link_set_up(ns, "a", true).unwrap();
        assert_eq!(
            sim.tc(ns, &["qdisc", "show", "dev", "a"]).unwrap(),
            "qdisc noqueue 0: dev a root refcnt 2\n"
        );
    }
}
