//! Built-in applications: the programs `kns net` commands run inside a namespace, the agnhost-like
//! server pods run by default, and the connection probes of `kns matrix --mode packet`.
//!
//! Each is an [`App`](super::App) with a constructor taking its options and accessors for its
//! results; the tools with a familiar text output (`ping`, `traceroute`, `curl`, `nc`) also
//! render it, line by line as it happens, through `output()`.

mod ping;

pub use ping::{
    Ping, PingConfig, PingReply, format_rtt, time_exceeded_text, time_exceeded_text_v6,
    unreachable_text, unreachable_text_v6,
};
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
mod agnhost;
mod ingress;
mod probe;

pub use agnhost::{AgnhostConfig, AgnhostServer, AgnhostStats};
pub use ingress::{IngressConfig, IngressController, IngressLogEntry};
pub use probe::{ConnectProbe, ProbeBatch, ProbeConfig, ProbeOutcome, ProbeResult, ProbeSpec};

use crate::stack::App;

/// What a command-line tool leaves behind, for a script runner that maps commands onto apps.
pub trait Tool: App {
    /// The text the tool printed, as a terminal shows it (messages before received data).
    fn transcript(&self) -> String;
    /// Whether it succeeded: ping got a reply, traceroute reached its destination, a client
    /// connected (and, for UDP and curl, got its answer) without error.
    fn succeeded(&self) -> bool;
    /// Whether it has finished.
    fn is_finished(&self) -> bool;
}

impl Tool for Ping {
    fn transcript(&self) -> String {
        self.output().to_owned()
    }
    fn succeeded(&self) -> bool {
        self.success()
    }
    fn is_finished(&self) -> bool {
        self.finished()
    }
}

impl Tool for Traceroute {
    fn transcript(&self) -> String {
        self.output().to_owned()
    }
    fn succeeded(&self) -> bool {
        self.reached()
    }
    fn is_finished(&self) -> bool {
        self.finished_at().is_some()
    }
}

impl Tool for Nc {
    fn transcript(&self) -> String {
        format!("{}{}", self.messages(), self.output())
    }
    fn succeeded(&self) -> bool {
        self.connected() && self.error().is_none()
    }
    fn is_finished(&self) -> bool {
        self.finished_at().is_some()
    }
}

impl Tool for HttpClient {
    fn transcript(&self) -> String {
        self.output().to_owned()
    }
    fn succeeded(&self) -> bool {
        self.exit_code() == Some(0)
    }
    fn is_finished(&self) -> bool {
        self.finished_at().is_some()
    }
}

impl Tool for TcpClient {
    fn transcript(&self) -> String {
        match self.error() {
            Some(e) => format!("{e}\n"),
            None => String::from_utf8_lossy(self.received()).into_owned(),
        }
    }
    fn succeeded(&self) -> bool {
        self.established() && self.error().is_none()
    }
    fn is_finished(&self) -> bool {
        self.finished_at().is_some()
    }
}

impl Tool for UdpClient {
    fn transcript(&self) -> String {
        let mut text: String =
            self.replies().iter().map(|(_, d)| String::from_utf8_lossy(d).into_owned()).collect();
        if let Some(e) = self.error() {
            text.push_str(&format!("{e}\n"));
        }
        text
    }
    fn succeeded(&self) -> bool {
        self.error().is_none() && !self.replies().is_empty()
    }
    fn is_finished(&self) -> bool {
        self.finished_at().is_some()
    }
}
