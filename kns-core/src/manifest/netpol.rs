//! `networking.k8s.io/v1` NetworkPolicy → [`model::NetworkPolicy`](crate::model::NetworkPolicy),
//! with the API server's validation and defaulting.
//!
//! Defaulting: an omitted (or empty) `policyTypes` means `Ingress`, plus `Egress` when the
//! policy has egress rules. Validation: selectors, peers (exactly one of ipBlock or
//! selectors), CIDRs with `except` strictly inside `cidr`, ports 1-65535 by number or by
//! IANA name, `endPort` only after a numeric `port` and not below it.

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};

use super::validate::{cidr, join, port_ref, protocol, selector};
use super::{Diag, Location};
use crate::model::{
    NamespaceId, NetworkPolicy as Policy, PolicyId, PolicyPeer, PolicyPort, PolicyRule,
    PolicyTypes, PortRef, Selector,
};

/// Converts one policy; `None` when it has errors (all reported).
pub(super) fn convert(
    id: PolicyId,
    namespace: NamespaceId,
    name: &str,
    np: &NetworkPolicy,
    loc: &Location,
    diag: &mut Diag,
) -> Option<Policy> {
    let before = diag.errors.len();
    let spec = np.spec.clone().unwrap_or_default();
    let pod_selector = match &spec.pod_selector {
        Some(s) => selector(s, "spec.podSelector", loc, diag).unwrap_or_default(),
        None => Selector::everything(),
    };
    let ingress = rules(
        spec.ingress.iter().flatten().map(|r| (r.from.as_deref(), r.ports.as_deref())),
        "spec.ingress",
        "from",
        loc,
        diag,
    );
    let egress = rules(
        spec.egress.iter().flatten().map(|r| (r.to.as_deref(), r.ports.as_deref())),
        "spec.egress",
        "to",
        loc,
        diag,
    );
    let policy_types = match spec.policy_types.as_deref() {
        None | Some([]) => PolicyTypes { ingress: true, egress: !egress.is_empty() },
        Some(types) => {
            let mut t = PolicyTypes { ingress: false, egress: false };
            for (i, ty) in types.iter().enumerate() {
                match ty.as_str() {
                    "Ingress" => t.ingress = true,
                    "Egress" => t.egress = true,
                    other => diag.error(
                        loc.with_field(format!("spec.policyTypes[{i}]")),
                        format!("invalid policy type `{other}` (expected Ingress or Egress)"),
                    ),
                }
            }
            t
        }
    };
    (diag.errors.len() == before).then(|| Policy {
        id,
        name: name.to_string(),
        namespace,
        pod_selector,
        policy_types,
        ingress,
        egress,
    })
}

/// Converts the rules at `path` (`spec.ingress`), whose peers are under `peers_key`.
fn rules<'a>(
    list: impl Iterator<Item = (Option<&'a [NetworkPolicyPeer]>, Option<&'a [NetworkPolicyPort]>)>,
    path: &str,
    peers_key: &str,
    loc: &Location,
    diag: &mut Diag,
) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for (i, (peers, ports)) in list.enumerate() {
        let at = format!("{path}[{i}]");
        let peers = peers
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(j, p)| peer(p, &join(&at, &format!("{peers_key}[{j}]")), loc, diag))
            .collect();
        let ports = ports
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(j, p)| port(p, &join(&at, &format!("ports[{j}]")), loc, diag))
            .collect();
        out.push(PolicyRule { peers, ports });
    }
    out
}

fn peer(p: &NetworkPolicyPeer, path: &str, loc: &Location, diag: &mut Diag) -> Option<PolicyPeer> {
    let selectors = p.pod_selector.is_some() || p.namespace_selector.is_some();
    match &p.ip_block {
        Some(_) if selectors => {
            diag.error(
                loc.with_field(path),
                "a peer has either ipBlock or podSelector/namespaceSelector, not both",
            );
            None
        }
        Some(block) => {
            let at = join(path, "ipBlock");
            let net = cidr(&block.cidr, &join(&at, "cidr"), loc, diag);
            let mut except = Vec::new();
            for (k, e) in block.except.iter().flatten().enumerate() {
                let field = join(&at, &format!("except[{k}]"));
                let Some(e_net) = cidr(e, &field, loc, diag) else { continue };
                if let Some(n) = net
                    && (!n.contains(&e_net) || e_net.prefix_len() <= n.prefix_len())
                {
                    diag.error(
                        loc.with_field(field),
                        format!("{e_net} is not strictly inside the cidr {n}"),
                    );
                    continue;
                }
                except.push(e_net);
            }
            Some(PolicyPeer::IpBlock { cidr: net?, except })
        }
        None if !selectors => {
            diag.error(
                loc.with_field(path),
                "a peer needs podSelector, namespaceSelector or ipBlock",
            );
            None
        }
        None => {
            let ns = p
                .namespace_selector
                .as_ref()
                .map(|s| selector(s, &join(path, "namespaceSelector"), loc, diag));
            let pod =
                p.pod_selector.as_ref().map(|s| selector(s, &join(path, "podSelector"), loc, diag));
            Some(PolicyPeer::Pods {
                namespace_selector: match ns {
                    Some(s) => Some(s?),
                    None => None,
                },
                pod_selector: match pod {
                    Some(s) => Some(s?),
                    None => None,
                },
            })
        }
    }
}

fn port(p: &NetworkPolicyPort, path: &str, loc: &Location, diag: &mut Diag) -> Option<PolicyPort> {
    let before = diag.errors.len();
    let proto = protocol(p.protocol.as_deref(), &join(path, "protocol"), loc, diag);
    let number = p.port.as_ref().and_then(|v| port_ref(v, &join(path, "port"), loc, diag));
    let end_field = join(path, "endPort");
    let end_port = match (p.end_port, &number) {
        (None, _) => None,
        (Some(_), None) if p.port.is_none() => {
            diag.error(loc.with_field(end_field), "endPort needs a numeric port");
            None
        }
        (Some(_), None) => None, // The port itself is invalid, already reported.
        (Some(_), Some(PortRef::Name(name))) => {
            diag.error(
                loc.with_field(end_field),
                format!("endPort cannot follow the named port `{name}`"),
            );
            None
        }
        (Some(end), Some(PortRef::Number(first))) => match u16::try_from(end) {
            Ok(e) if e >= *first => Some(e),
            Ok(_) | Err(_) if (1..=65535).contains(&end) => {
                diag.error(
                    loc.with_field(end_field),
                    format!("endPort {end} is below port {first}"),
                );
                None
            }
            _ => {
                diag.error(
                    loc.with_field(end_field),
                    format!("port {end} is out of range (1-65535)"),
                );
                None
            }
        },
    };
    (diag.errors.len() == before).then_some(PolicyPort { protocol: proto, port: number, end_port })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Protocol;

    fn policy(spec: &str) -> (Option<Policy>, Vec<String>) {
        let text = format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: x}}\nspec:\n{spec}"
        );
        let np: NetworkPolicy = yaml_serde::from_str(&text).unwrap();
        let loc = Location { file: "f".into(), ..Location::default() };
        let mut diag = Diag::default();
        let out = convert(PolicyId(0), NamespaceId(0), "p", &np, &loc, &mut diag);
        (out, diag.errors.iter().map(|e| e.render()).collect())
    }

    #[test]
    fn policy_types_default_from_the_rules() {
        let (p, _) = policy("  podSelector: {}\n");
        assert_eq!(p.unwrap().policy_types, PolicyTypes { ingress: true, egress: false });
        let (p, _) = policy("  podSelector: {}\n  egress:\n  - {}\n");
        assert_eq!(p.unwrap().policy_types, PolicyTypes { ingress: true, egress: true });
        let (p, _) = policy("  podSelector: {}\n  policyTypes: [Egress]\n");
        assert_eq!(p.unwrap().policy_types, PolicyTypes { ingress: false, egress: true });
        let (p, _) = policy("  podSelector: {}\n  policyTypes: []\n  egress: []\n");
        assert_eq!(p.unwrap().policy_types, PolicyTypes { ingress: true, egress: false });
    }

    #[test]
    fn peers_and_ports_keep_every_detail() {
        let (p, errors) = policy(concat!(
            "  podSelector: {matchLabels: {app: db}}\n",
            "  ingress:\n",
            "  - from:\n",
            "    - podSelector: {matchLabels: {app: api}}\n",
            "    - namespaceSelector: {matchLabels: {team: a}}\n",
            "    - namespaceSelector: {}\n      podSelector: {matchExpressions: [{key: k, operator: Exists}]}\n",
            "    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}\n",
            "    ports:\n",
            "    - port: 5432\n",
            "    - {protocol: UDP, port: dns}\n",
            "    - {protocol: SCTP, port: 1000, endPort: 2000}\n",
            "    - {protocol: UDP}\n",
        ));
        assert!(errors.is_empty(), "{errors:?}");
        let p = p.unwrap();
        assert_eq!(p.pod_selector.to_string(), "app=db");
        let r = &p.ingress[0];
        assert_eq!(r.peers.len(), 4);
        assert!(
            matches!(&r.peers[0], PolicyPeer::Pods { namespace_selector: None, pod_selector: Some(s) } if s.to_string() == "app=api")
        );
        assert!(
            matches!(&r.peers[1], PolicyPeer::Pods { namespace_selector: Some(s), pod_selector: None } if s.to_string() == "team=a")
        );
        assert!(
            matches!(&r.peers[2], PolicyPeer::Pods { namespace_selector: Some(n), pod_selector: Some(s) } if n.is_empty() && s.to_string() == "k")
        );
        assert!(
            matches!(&r.peers[3], PolicyPeer::IpBlock { cidr, except } if cidr.to_string() == "10.0.0.0/8" && except.len() == 1)
        );
        assert_eq!(
            r.ports,
            vec![
                PolicyPort {
                    protocol: Protocol::Tcp,
                    port: Some(PortRef::Number(5432)),
                    end_port: None
                },
                PolicyPort {
                    protocol: Protocol::Udp,
                    port: Some(PortRef::Name("dns".into())),
                    end_port: None
                },
                PolicyPort {
                    protocol: Protocol::Sctp,
                    port: Some(PortRef::Number(1000)),
                    end_port: Some(2000)
                },
                PolicyPort { protocol: Protocol::Udp, port: None, end_port: None },
            ]
        );
    }

    #[test]
    fn invalid_peers_and_ports_are_all_reported() {
        let (p, errors) = policy(concat!(
            "  podSelector: {}\n",
            "  egress:\n",
            "  - to:\n",
            "    - ipBlock: {cidr: 10.0.0.0/33}\n",
            "    - ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24, 10.0.0.0/16]}\n",
            "    - {}\n",
            "    - ipBlock: {cidr: 10.0.0.0/16}\n      podSelector: {}\n",
            "    ports:\n",
            "    - port: 0\n",
            "    - port: 70000\n",
            "    - {port: 80, endPort: 79}\n",
            "    - {port: http, endPort: 90}\n",
            "    - {endPort: 90}\n",
            "    - {protocol: ICMP}\n",
            "  policyTypes: [Egress, Sideways]\n",
        ));
        assert!(p.is_none());
        assert_eq!(
            errors,
            vec![
                "f: spec.egress[0].to[0].ipBlock.cidr: invalid CIDR `10.0.0.0/33` (expected e.g. 10.0.0.0/16)",
                "f: spec.egress[0].to[1].ipBlock.except[0]: 10.1.0.0/24 is not strictly inside the cidr 10.0.0.0/16",
                "f: spec.egress[0].to[1].ipBlock.except[1]: 10.0.0.0/16 is not strictly inside the cidr 10.0.0.0/16",
                "f: spec.egress[0].to[2]: a peer needs podSelector, namespaceSelector or ipBlock",
                "f: spec.egress[0].to[3]: a peer has either ipBlock or podSelector/namespaceSelector, not both",
                "f: spec.egress[0].ports[0].port: port 0 is out of range (1-65535)",
                "f: spec.egress[0].ports[1].port: port 70000 is out of range (1-65535)",
                "f: spec.egress[0].ports[2].endPort: endPort 79 is below port 80",
                "f: spec.egress[0].ports[3].endPort: endPort cannot follow the named port `http`",
                "f: spec.egress[0].ports[4].endPort: endPort needs a numeric port",
                "f: spec.egress[0].ports[5].protocol: unsupported protocol `ICMP` (expected TCP, UDP or SCTP)",
                "f: spec.policyTypes[1]: invalid policy type `Sideways` (expected Ingress or Egress)",
            ]
        );
    }
}
