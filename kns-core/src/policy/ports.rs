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
