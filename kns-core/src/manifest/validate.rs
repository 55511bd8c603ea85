//! Checks and conversions shared by every kind: labels, label selectors, ports, protocols
//! and CIDRs, each reporting located errors the way the API server would reject the input.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Diag, Location};
use crate::flow::Protocol;
use crate::model::{Labels, Operator, PortRef, Requirement, Selector};

/// Joins a field path and a child (`spec` + `ports[0]`).
pub(super) fn join(path: &str, child: &str) -> String {
    if path.is_empty() { child.to_string() } else { format!("{path}.{child}") }
}

/// Checks a label map (`metadata.labels`, `matchLabels`, `nodeSelector`) and converts it.
pub(super) fn labels(
    map: Option<&BTreeMap<String, String>>,
    path: &str,
    loc: &Location,
    diag: &mut Diag,
) -> Labels {
    let mut out = Labels::new();
    for (k, v) in map.into_iter().flatten() {
        let field = join(path, k);
        if let Err(why) = label_key(k) {
            diag.error(loc.with_field(&field), format!("invalid label key `{k}`: {why}"));
        }
        if let Err(why) = label_value(v) {
            diag.error(loc.with_field(&field), format!("invalid label value `{v}`: {why}"));
        }
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters, alphanumeric at both ends, with `-`, `_` and `.` inside.
pub(super) fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 {
            return Err("the prefix must be 1-253 characters".into());
        }
        let ok = p.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
        if !ok {
            return Err(
                "the prefix must be a DNS subdomain (lowercase letters, digits, `-`, `.`)".into()
            );
        }
    }
    if name.is_empty() {
        return Err("the name part must not be empty".into());
    }
    label_name(name)
}

/// Checks a label value: empty, or a label name.
pub(super) fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() { Ok(()) } else { label_name(value) }
}

fn label_name(s: &str) -> Result<(), String> {
    let bytes = s.as_bytes();
    let inner_ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if s.len() > 63 {
        Err("at most 63 characters".into())
    } else if !bytes.iter().all(inner_ok) {
        Err("only letters, digits, `-`, `_` and `.` are allowed".into())
    } else if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        Err("must begin and end with a letter or digit".into())
    } else {
        Ok(())
    }
}

/// Checks a `LabelSelector` and converts it; `None` when it is invalid (errors reported).
pub(super) fn selector(
    sel: &LabelSelector,
    path: &str,
    loc: &Location,
    diag: &mut Diag,
) -> Option<Selector> {
    let before = diag.errors.len();
    let match_labels = labels(sel.match_labels.as_ref(), &join(path, "matchLabels"), loc, diag);
    let mut match_expressions = Vec::new();
    for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
        let at = join(path, &format!("matchExpressions[{i}]"));
        if let Err(why) = label_key(&e.key) {
            diag.error(
                loc.with_field(join(&at, "key")),
                format!("invalid label key `{}`: {why}", e.key),
            );
        }
        let operator = match e.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                diag.error(
                    loc.with_field(join(&at, "operator")),
                    format!(
                        "invalid operator `{other}` (expected In, NotIn, Exists or DoesNotExist)"
                    ),
                );
                continue;
            }
        };
        let values = e.values.clone().unwrap_or_default();
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => diag.error(
                loc.with_field(join(&at, "values")),
                format!("operator {operator} needs at least one value"),
            ),
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => diag.error(
                loc.with_field(join(&at, "values")),
                format!("operator {operator} takes no values"),
            ),
            _ => {}
        }
        for (j, v) in values.iter().enumerate() {
            if let Err(why) = label_value(v) {
                diag.error(
                    loc.with_field(join(&at, &format!("values[{j}]"))),
                    format!("invalid label value `{v}`: {why}"),
                );
            }
        }
        match_expressions.push(Requirement {
            key: e.key.clone(),
            operator,
            values: values.into_iter().collect(),
        });
    }
    (diag.errors.len() == before).then_some(Selector { match_labels, match_expressions })
}

/// A protocol field (`TCP` when omitted).
pub(super) fn protocol(p: Option<&str>, path: &str, loc: &Location, diag: &mut Diag) -> Protocol {
    match p {
        None | Some("TCP") => Protocol::Tcp,
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        Some(other) => {
            diag.error(
                loc.with_field(path),
                format!("unsupported protocol `{other}` (expected TCP, UDP or SCTP)"),
            );
            Protocol::Tcp
        }
    }
}

/// A port number field: 1-65535.
pub(super) fn port_number(n: i32, path: &str, loc: &Location, diag: &mut Diag) -> Option<u16> {
    match u16::try_from(n) {
        Ok(p) if p != 0 => Some(p),
        _ => {
            diag.error(loc.with_field(path), format!("port {n} is out of range (1-65535)"));
            None
        }
    }
}

/// A port given by number or by name (`IntOrString`).
pub(super) fn port_ref(
    p: &IntOrString,
    path: &str,
    loc: &Location,
    diag: &mut Diag,
) -> Option<PortRef> {
    match p {
        IntOrString::Int(n) => port_number(*n, path, loc, diag).map(PortRef::Number),
        IntOrString::String(s) => match port_name(s) {
            Ok(()) => Some(PortRef::Name(s.clone())),
            Err(why) => {
                diag.error(loc.with_field(path), format!("invalid port name `{s}`: {why}"));
                None
            }
        },
    }
}

/// Checks a port name (an IANA service name): at most 15 lowercase letters, digits and
/// single hyphens, with at least one letter, not starting or ending with a hyphen.
pub(super) fn port_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 15 {
        Err("a port name has 1-15 characters".into())
    } else if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        Err("only lowercase letters, digits and `-` are allowed".into())
    } else if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        Err("a port name needs at least one letter".into())
    } else if s.starts_with('-') || s.ends_with('-') || s.contains("--") {
        Err("hyphens must separate letters or digits".into())
    } else {
        Ok(())
    }
}

/// A CIDR (`10.0.0.0/16`), with host bits cleared.
pub(super) fn cidr(text: &str, path: &str, loc: &Location, diag: &mut Diag) -> Option<IpNet> {
    match text.trim().parse::<IpNet>() {
        Ok(net) => Some(net.trunc()),
        Err(_) => {
            diag.error(
                loc.with_field(path),
                format!("invalid CIDR `{text}` (expected e.g. 10.0.0.0/16)"),
            );
            None
        }
    }
}

/// An IP address.
pub(super) fn ip(text: &str, path: &str, loc: &Location, diag: &mut Diag) -> Option<IpAddr> {
    match text.trim().parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            diag.error(loc.with_field(path), format!("invalid IP address `{text}`"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_follow_kubernetes_syntax() {
        for ok in ["app", "app.kubernetes.io/name", "a_b-c.d", "x/y", "A1"] {
            assert_eq!(label_key(ok), Ok(()), "{ok}");
        }
        for bad in
            ["", "-app", "app-", "a b", "Example.com/x", "a/b/c", "/x", "x/", &"a".repeat(64)]
        {
            assert!(label_key(bad).is_err(), "{bad}");
        }
        assert_eq!(label_value(""), Ok(()));
        assert!(label_value("has space").is_err());
        assert!(label_value("-lead").is_err());
    }

    #[test]
    fn port_names_are_iana_service_names() {
        for ok in ["http", "serve-80-tcp", "dns-tcp", "a1"] {
            assert_eq!(port_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "80", "HTTP", "a--b", "-a", "a-", "abcdefghijklmnop"] {
            assert!(port_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_reject_bad_operators_and_values() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
        let req = |op: &str, values: Option<Vec<&str>>| LabelSelectorRequirement {
            key: "k".into(),
            operator: op.into(),
            values: values.map(|v| v.into_iter().map(String::from).collect()),
        };
        let sel = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![
                req("Equals", Some(vec!["a"])),
                req("Exists", Some(vec!["a"])),
                req("In", Some(vec![])),
                req("NotIn", None),
                req("In", Some(vec!["ok"])),
            ]),
        };
        let loc = Location { file: "f".into(), ..Location::default() };
        let mut diag = Diag::default();
        assert_eq!(selector(&sel, "spec.podSelector", &loc, &mut diag), None);
        let got: Vec<String> = diag.errors.iter().map(|e| e.render()).collect();
        assert_eq!(
            got,
            vec![
                "f: spec.podSelector.matchExpressions[0].operator: invalid operator `Equals` (expected In, NotIn, Exists or DoesNotExist)",
                "f: spec.podSelector.matchExpressions[1].values: operator Exists takes no values",
                "f: spec.podSelector.matchExpressions[2].values: operator In needs at least one value",
                "f: spec.podSelector.matchExpressions[3].values: operator NotIn needs at least one value",
            ]
        );
    }
}
