//! Whether a NetworkPolicy port entry matches a connection's destination port.
//!
//! The protocol must match. No port means every port of the protocol; a number with `endPort`
//! means the inclusive range; a name is resolved against the **destination** pod's container
//! ports of that protocol, so the same rule can mean different numbers for different pods, and
//! a name never matches a destination outside the cluster.

use crate::flow::PortProtocol;
use crate::model::{Pod, PolicyPort, PortRef};

/// Whether `entry` matches traffic to `port` on `destination` (`None` when outside the cluster).
pub fn port_matches(entry: &PolicyPort, port: PortProtocol, destination: Option<&Pod>) -> bool {
    if entry.protocol != port.protocol {
        return false;
    }
    match &entry.port {
        None => true,
        Some(PortRef::Number(first)) => match entry.end_port {
            Some(last) => (*first..=last).contains(&port.port),
            None => *first == port.port,
        },
        Some(PortRef::Name(name)) => {
            destination.and_then(|pod| pod.named_port(name, entry.protocol)) == Some(port.port)
        }
    }
}

/// Whether `entry` can be decided without knowing the destination pod.
pub fn is_named(entry: &PolicyPort) -> bool {
    matches!(entry.port, Some(PortRef::Name(_)))
}

/// A short description for explanations: `80/TCP`, `8000-8080/TCP`, `serve-80-tcp/TCP`, or
/// `every TCP port`.
pub fn describe_port(entry: &PolicyPort) -> String {
    match (&entry.port, entry.end_port) {
        (None, _) => format!("every {} port", entry.protocol),
        (Some(PortRef::Number(first)), Some(last)) => {
            format!("{first}-{last}/{}", entry.protocol)
        }
        (Some(port), _) => format!("{port}/{}", entry.protocol),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Protocol;
    use crate::testing::ClusterBuilder;

    fn entry(protocol: Protocol, port: Option<PortRef>, end_port: Option<u16>) -> PolicyPort {
        PolicyPort { protocol, port, end_port }
    }

    #[test]
    fn numbers_ranges_and_protocols() {
        let tcp = |n| PortProtocol::new(n, Protocol::Tcp);
        let single = entry(Protocol::Tcp, Some(PortRef::Number(80)), None);
        assert!(port_matches(&single, tcp(80), None));
        assert!(!port_matches(&single, tcp(81), None));
        assert!(!port_matches(&single, PortProtocol::new(80, Protocol::Udp), None));
        let range = entry(Protocol::Tcp, Some(PortRef::Number(80)), Some(82));
        assert_eq!(
            [79, 80, 82, 83].map(|n| port_matches(&range, tcp(n), None)),
            [false, true, true, false]
        );
        let any = entry(Protocol::Sctp, None, None);
        assert!(port_matches(&any, PortProtocol::new(9, Protocol::Sctp), None));
        assert!(!port_matches(&any, tcp(9), None));
    }

    #[test]
    fn names_resolve_against_the_destination_only() {
        let mut b = ClusterBuilder::new();
        let ns = b.namespace("x", &[]);
        let web = b.pod(ns, "web", &[], &[("http", 8080, Protocol::Tcp)]);
        let cluster = b.build();
        let pod = cluster.pod(web);
        let http = entry(Protocol::Tcp, Some(PortRef::Name("http".into())), None);
        assert!(port_matches(&http, PortProtocol::new(8080, Protocol::Tcp), Some(pod)));
        assert!(!port_matches(&http, PortProtocol::new(80, Protocol::Tcp), Some(pod)));
        assert!(!port_matches(&http, PortProtocol::new(8080, Protocol::Tcp), None));
        assert!(is_named(&http));
        assert_eq!(describe_port(&http), "http/TCP");
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe_port(&entry(Protocol::Udp, None, None)), "every UDP port");
        let range = entry(Protocol::Tcp, Some(PortRef::Number(1)), Some(9));
        assert_eq!(describe_port(&range), "1-9/TCP");
        assert_eq!(describe_port(&entry(Protocol::Tcp, Some(PortRef::Number(5)), None)), "5/TCP");
    }
}
