//! Built-in applications: the programs `kns net` commands run inside a namespace.
//!
//! Each is an [`App`](super::App) with a constructor taking its options and accessors for its
//! results; the tools with a familiar text output (`ping`, `traceroute`, `curl`, `nc`) also
//! render it, line by line as it happens, through `output()`.

mod ping;

pub use ping::{Ping, PingConfig, PingReply, format_rtt, time_exceeded_text, unreachable_text};
mod client;
mod echo;

pub use client::{
    ConnError, ConnStatus, TcpClient, TcpClientConfig, TcpConn, UdpClient, UdpClientConfig,
};
pub use echo::{DEFAULT_BACKLOG, TcpEcho, UdpEcho};
mod http;

pub use http::{
    HttpClient, HttpClientConfig, HttpHandler, HttpLogEntry, HttpReply, HttpRequest, HttpResponse,
    HttpServer, reason_phrase,
};
mod nc;
mod traceroute;

pub use nc::{Nc, NcConfig, NcMode};
pub use traceroute::{Hop, Probe, Traceroute, TracerouteConfig};
mod bulk;

pub use bulk::{TcpSink, TcpSource};
