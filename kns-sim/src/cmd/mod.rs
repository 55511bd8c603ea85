//! Text commands as a person types them on a Linux host (`ip`, `sysctl`, `iptables`, `tc`,
//! `ping`, `traceroute`, `nc`, `curl`), parsed into typed values. Parsing is pure; the simulator
//! executes the values, so the commands of the seed documents run literally against kns.

mod ip;
mod tokens;
mod tools;

pub use ip::{
    AddrCmd, IpCommand, LinkCmd, LinkKind, LinkSet, NeighCmd, NetnsCmd, RouteCmd, RouteDst,
    parse_ip,
};
pub use tokens::{TokenError, tokenize};
pub use tools::{Command, NcMode, ParseError, PingOpts, bridge_hairpin, parse_command};
