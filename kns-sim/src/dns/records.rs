//! Name arithmetic shared by the zone, the hosts table and the resolver: reverse-lookup names
//! (`in-addr.arpa`, `ip6.arpa`), the dashed form of an address used in pod and endpoint names
//! (`10-244-1-5`), and suffix tests on normalised names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The reverse-lookup name of `ip`: `5.1.244.10.in-addr.arpa` or the 32 nibbles of an IPv6
/// address under `ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(a) => {
            let mut labels: Vec<String> = Vec::with_capacity(33);
            for byte in a.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0x0f));
                labels.push(format!("{:x}", byte >> 4));
            }
            labels.push("ip6.arpa".into());
            labels.join(".")
        }
    }
}

/// The address a reverse-lookup name stands for, if it is a complete one.
pub fn parse_reverse(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        let mut octets = [0u8; 4];
        for (i, p) in parts.iter().rev().enumerate() {
            if p.is_empty() || (p.len() > 1 && p.starts_with('0')) {
                return None;
            }
            octets[i] = p.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = rest.split('.').collect();
    if nibbles.len() != 32 {
        return None;
    }
    let mut value: u128 = 0;
    for n in nibbles.iter().rev() {
        if n.len() != 1 {
            return None;
        }
        value = (value << 4) | u128::from(u8::from_str_radix(n, 16).ok()?);
    }
    Some(IpAddr::V6(Ipv6Addr::from(value)))
}

/// The dashed form of an address, as pod and endpoint names use it: `10-244-1-5`, or for
/// IPv6 the compressed text with `:` replaced by `-` (`fd00--1`).
pub fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// The address a dashed label stands for (`10-244-1-5`, `fd00--1`).
pub fn parse_dashed(label: &str) -> Option<IpAddr> {
    let v4: Option<Ipv4Addr> = label.replace('-', ".").parse().ok();
    if let Some(a) = v4
        && label.split('-').count() == 4
    {
        return Some(IpAddr::V4(a));
    }
    label.replace('-', ":").parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Whether `name` is `zone` or lies under it (both normalised; the root `""` contains all).
pub fn in_zone(name: &str, zone: &str) -> bool {
    zone.is_empty()
        || name == zone
        || (name.len() > zone.len()
            && name.ends_with(zone)
            && name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

/// `name` followed by `suffix` (either may be empty).
pub fn join(name: &str, suffix: &str) -> String {
    match (name.is_empty(), suffix.is_empty()) {
        (true, _) => suffix.to_string(),
        (_, true) => name.to_string(),
        _ => format!("{name}.{suffix}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_round_trip() {
        let v4: IpAddr = "10.244.1.5".parse().unwrap();
        assert_eq!(reverse_name(v4), "5.1.244.10.in-addr.arpa");
        assert_eq!(parse_reverse("5.1.244.10.in-addr.arpa"), Some(v4));
        let v6: IpAddr = "fd00::1".parse().unwrap();
        let r = reverse_name(v6);
        assert!(r.starts_with("1.0.0.0.0.0.0.0") && r.ends_with(".0.0.d.f.ip6.arpa"), "{r}");
        assert_eq!(parse_reverse(&r), Some(v6));
        assert_eq!(parse_reverse("1.244.10.in-addr.arpa"), None);
        assert_eq!(parse_reverse("05.1.244.10.in-addr.arpa"), None);
        assert_eq!(parse_reverse("example.com"), None);
    }

    #[test]
    fn dashed_addresses() {
        let v4: IpAddr = "10.244.1.5".parse().unwrap();
        assert_eq!(dashed(v4), "10-244-1-5");
        assert_eq!(parse_dashed("10-244-1-5"), Some(v4));
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(dashed(v6), "fd00--1");
        assert_eq!(parse_dashed("fd00--1"), Some(v6));
        assert_eq!(parse_dashed("web-0"), None);
        assert_eq!(parse_dashed("10-244-1"), None);
    }

    #[test]
    fn zone_membership_is_by_label() {
        assert!(in_zone("web.prod.svc.cluster.local", "cluster.local"));
        assert!(in_zone("cluster.local", "cluster.local"));
        assert!(!in_zone("notcluster.local", "cluster.local"));
        assert!(in_zone("anything", ""));
        assert_eq!(join("web", "prod"), "web.prod");
        assert_eq!(join("web", ""), "web");
    }
}
