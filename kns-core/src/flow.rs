//! The vocabulary shared by policy, proxies and the dataplane: protocols, ports and flows.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::PodId;

/// A transport protocol that Kubernetes objects can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// Transmission Control Protocol (the Kubernetes default).
    Tcp,
    /// User Datagram Protocol.
    Udp,
    /// Stream Control Transmission Protocol.
    Sctp,
}

impl Protocol {
    /// The spelling Kubernetes uses (`TCP`, `UDP`, `SCTP`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// The IANA protocol number carried in the IP header.
    pub fn ip_number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a protocol or `PORT/PROTO` string cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseFlowError {
    /// The protocol is not one of TCP, UDP, SCTP.
    #[error("unknown protocol `{0}` (expected TCP, UDP or SCTP)")]
    UnknownProtocol(String),
    /// The port is not a number between 1 and 65535.
    #[error("invalid port `{0}` (expected a number between 1 and 65535)")]
    InvalidPort(String),
}

impl FromStr for Protocol {
    type Err = ParseFlowError;

    /// Parses `TCP`, `UDP` or `SCTP`, ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            "SCTP" => Ok(Protocol::Sctp),
            _ => Err(ParseFlowError::UnknownProtocol(s.to_string())),
        }
    }
}

/// A port number together with its protocol, written `80/TCP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortProtocol {
    /// The port number (1..=65535).
    pub port: u16,
    /// The transport protocol.
    pub protocol: Protocol,
}

impl PortProtocol {
    /// A new port/protocol pair.
    pub fn new(port: u16, protocol: Protocol) -> Self {
        PortProtocol { port, protocol }
    }
}

impl fmt::Display for PortProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

impl FromStr for PortProtocol {
    type Err = ParseFlowError;

    /// Parses `80/TCP`, `53/udp` or a bare `80` (TCP, as in Kubernetes).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (port, proto) = match s.split_once('/') {
            Some((p, proto)) => (p, proto.parse()?),
            None => (s, Protocol::Tcp),
        };
        let port: u16 = port
            .trim()
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| ParseFlowError::InvalidPort(port.to_string()))?;
        Ok(PortProtocol::new(port, proto))
    }
}

/// One end of a flow: a pod of the cluster, or an address outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowEnd {
    /// A pod of the cluster (its primary IP is the address used).
    Pod(PodId),
    /// An address that belongs to no pod (a node, the internet, another cluster).
    External(IpAddr),
}

/// A connection attempt: from `src` to `dst` on a destination port and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Flow {
    /// Who opens the connection.
    pub src: FlowEnd,
    /// Who is connected to.
    pub dst: FlowEnd,
    /// Destination port and protocol.
    pub port: PortProtocol,
}

impl Flow {
    /// A flow between two pods.
    pub fn pods(src: PodId, dst: PodId, port: PortProtocol) -> Self {
        Flow { src: FlowEnd::Pod(src), dst: FlowEnd::Pod(dst), port }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_port_protocol() {
        assert_eq!("80/TCP".parse(), Ok(PortProtocol::new(80, Protocol::Tcp)));
        assert_eq!("53/udp".parse(), Ok(PortProtocol::new(53, Protocol::Udp)));
        assert_eq!("8080".parse(), Ok(PortProtocol::new(8080, Protocol::Tcp)));
        assert_eq!("9/SCTP".parse::<PortProtocol>().unwrap().to_string(), "9/SCTP");
        assert!(matches!("0/TCP".parse::<PortProtocol>(), Err(ParseFlowError::InvalidPort(_))));
        assert!(matches!("70000/TCP".parse::<PortProtocol>(), Err(ParseFlowError::InvalidPort(_))));
        assert!(matches!(
            "80/ICMP".parse::<PortProtocol>(),
            Err(ParseFlowError::UnknownProtocol(_))
        ));
    }
}
