//! [`IngressController`]: an NGINX-like ingress controller, the program of an `ingress-nginx`
//! controller pod.
//!
//! It accepts HTTP/1.1 connections on its HTTP port (80 by default), reads each request (Host
//! header, target), asks [`IngressRouter`] (kns-core) where it goes, and proxies it:
//!
//! - **Upstream.** One TCP connection per request to the Service's **cluster IP and port**, so
//!   kube-proxy picks the endpoint and conntrack keeps the connection on it (ingress-nginx does
//!   this with its `service-upstream: "true"` annotation; by default it balances over the
//!   endpoints itself). Before connecting, the controller checks the Service exists, has the
//!   port and has ready endpoints, as it would from its EndpointSlice watch.
//! - **Request.** Method, target and headers are forwarded, hop-by-hop headers dropped, the
//!   original `Host` kept; `X-Forwarded-For` (appended), `X-Forwarded-Host`,
//!   `X-Forwarded-Port`, `X-Forwarded-Proto: http` and `X-Real-IP` added, and
//!   `Connection: close` asked of the backend.
//! - **Response.** Read whole (Content-Length, chunked, or up to the backend's FIN), then sent
//!   to the client with a Content-Length, so client connections stay keep-alive.
//! - **Its own answers.** `404` from the default server when no rule and no `defaultBackend`
//!   match, `503` when the backend Service is missing, lacks the port, is headless or has no
//!   ready endpoints, `502` when the backend refuses, resets or sends garbage, `504` on connect
//!   or read timeouts, `400` for malformed requests or an HTTP/1.1 request without Host.
//!
//! TLS is not emulated: the controller does not listen on its HTTPS port, so HTTPS connections
//! are refused (RST), and Ingresses with `tls` are reported by the router's warnings.
//!
//! The client address the controller sees is the one kube-proxy leaves: through a NodePort with
//! `externalTrafficPolicy: Cluster` that is the node's (masquerade), as on a real cluster.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use kns_core::flow::Protocol;
use kns_core::ingress::{ClassConfig, IngressRouter, Route, Target, service_port};
use kns_core::model::Cluster;
use kns_core::proxy::ServiceTable;

use super::client::{ConnError, ConnStatus, TcpConn};
use super::echo::listen_once;
use super::http::{Parse, head_end, parse_head, parse_request, reason_phrase};
use crate::stack::{App, AppCx, AppPoll, ListenerId, StackError, TcpHandle};
use crate::time::Time;

/// Options of an [`IngressController`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressConfig {
    /// The port it serves HTTP on (the container port named `http`, else 80).
    pub http_port: u16,
    /// The Ingresses it serves.
    pub class: ClassConfig,
    /// Give up connecting to a backend after this long (ingress-nginx: 5 s).
    pub connect_timeout: Duration,
    /// Give up waiting for a backend's response after this long (ingress-nginx: 60 s).
    pub read_timeout: Duration,
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            http_port: 80,
            class: ClassConfig::default(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// One request the controller answered (its access log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressLogEntry {
    /// When the response was queued.
    pub at: Time,
    /// The client as the controller saw it.
    pub peer: Option<SocketAddr>,
    /// The `Host` header.
    pub host: Option<String>,
    /// Method and target.
    pub request_line: String,
    /// How the request was routed, in words (`api.example.com /identity Prefix ->
    /// prod/identity:80`, `default backend -> ...`, `no route`).
    pub route: String,
    /// The backend address connected to (the Service's cluster IP and port).
    pub upstream: Option<SocketAddr>,
    /// The status sent to the client.
    pub status: u16,
}

/// A request waiting for its backend.
#[derive(Debug)]
struct Upstream {
    conn: TcpConn,
    request: Vec<u8>,
    sent: usize,
    inbuf: Vec<u8>,
    started: Time,
    head_only: bool,
    entry: IngressLogEntry,
}

#[derive(Debug)]
struct ClientConn {
    handle: TcpHandle,
    peer: Option<SocketAddr>,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    upstream: Option<Upstream>,
    close_after: bool,
    keep_alive: bool,
}

/// An NGINX-like ingress controller (see the module documentation). It runs until the stack
/// is dropped.
#[derive(Debug)]
pub struct IngressController {
    config: IngressConfig,
    router: IngressRouter,
    cluster: Cluster,
    services: ServiceTable,
    listener: Option<ListenerId>,
    conns: Vec<ClientConn>,
    log: Vec<IngressLogEntry>,
    by_status: BTreeMap<u16, u64>,
    error: Option<StackError>,
}

impl IngressController {
    /// A controller for the Ingresses of `cluster` (the live model: endpoints of pods that
    /// are not running are not ready), listening from its first poll.
    pub fn new(cluster: &Cluster, config: IngressConfig) -> IngressController {
        IngressController {
            router: IngressRouter::new(cluster, &config.class),
            cluster: cluster.clone(),
            services: ServiceTable::from_cluster(cluster),
            config,
            listener: None,
            conns: Vec::new(),
            log: Vec::new(),
            by_status: BTreeMap::new(),
            error: None,
        }
    }

    /// Takes a new model (Ingresses, Services or endpoints changed); requests in flight keep
    /// their backend.
    pub fn update(&mut self, cluster: &Cluster) {
        self.router = IngressRouter::new(cluster, &self.config.class);
        self.services = ServiceTable::from_cluster(cluster);
        self.cluster = cluster.clone();
    }

    /// The routing table.
    pub fn router(&self) -> &IngressRouter {
        &self.router
    }

    /// Every request answered, in order.
    pub fn log(&self) -> &[IngressLogEntry] {
        &self.log
    }

    /// Requests answered per status code.
    pub fn by_status(&self) -> &BTreeMap<u16, u64> {
        &self.by_status
    }

    /// Why it could not listen, if it could not.
    pub fn error(&self) -> Option<&StackError> {
        self.error.as_ref()
    }

    /// The cluster IP and port of a target's Service, or why there is none (a 503).
    fn resolve(&self, target: &Target) -> Result<SocketAddr, String> {
        let ns = &self.cluster.namespace(target.namespace).name;
        let name = &target.backend.service;
        let Some(svc) = self.cluster.service_by_name(ns, name) else {
            return Err(format!("no Service {ns}/{name}"));
        };
        let Some(port) = service_port(&self.cluster, target) else {
            return Err(format!("Service {ns}/{name} has no port {}", target.backend.port));
        };
        let Some(ip) = svc.cluster_ip else {
            return Err(format!(
                "Service {ns}/{name} has no cluster IP (headless and ExternalName backends \
                 are not supported)"
            ));
        };
        let ready = self
            .services
            .services()
            .iter()
            .find(|v| v.service == svc.id && v.port == port && v.protocol == Protocol::Tcp)
            .map_or(0, |v| v.backends.len());
        if ready == 0 {
            return Err(format!("no ready endpoints for Service {ns}/{name} port {port}"));
        }
        Ok(SocketAddr::new(ip, port))
    }

    /// Takes the next complete request of `conn`, answering it or starting its upstream.
    fn next_request(&mut self, now: Time, conn: &mut ClientConn) {
        let req = match parse_request(&conn.inbuf) {
            Parse::Incomplete => return,
            Parse::Bad => {
                conn.inbuf.clear();
                let entry = self.entry(now, conn.peer, None, "-".into());
                self.answer(conn, entry, 400, "malformed request".into(), true);
                return;
            }
            Parse::Done(req, used) => {
                conn.inbuf.drain(..used);
                req
            }
        };
        let connection = req.header("connection").map(str::to_ascii_lowercase);
        conn.keep_alive = match req.version.as_str() {
            "HTTP/1.0" => connection.as_deref() == Some("keep-alive"),
            _ => connection.as_deref() != Some("close"),
        };
        let host = req.header("host").map(str::to_owned);
        let line = format!("{} {}", req.method, req.target);
        let mut entry = self.entry(now, conn.peer, host.clone(), line);
        if host.is_none() && req.version != "HTTP/1.0" {
            self.answer(conn, entry, 400, "an HTTP/1.1 request needs a Host header".into(), true);
            return;
        }
        let route = self.router.route(host.as_deref(), &req.target);
        let target = match &route {
            Route::NotFound { server } => {
                entry.route = format!("no route (server {server})");
                let close = !conn.keep_alive;
                self.answer(conn, entry, 404, "default backend - 404".into(), close);
                return;
            }
            Route::Path { server, path, path_type, target } => {
                entry.route = format!("{server} {path} {path_type:?} -> {}", self.name(target));
                target.clone()
            }
            Route::DefaultBackend { server, target } => {
                entry.route = format!("{server} default backend -> {}", self.name(target));
                target.clone()
            }
        };
        let addr = match self.resolve(&target) {
            Ok(a) => a,
            Err(why) => {
                let close = !conn.keep_alive;
                self.answer(conn, entry, 503, why, close);
                return;
            }
        };
        entry.upstream = Some(addr);
        let request = upstream_request(&req, conn.peer, self.config.http_port);
        conn.upstream = Some(Upstream {
            conn: TcpConn::new(addr, self.config.connect_timeout),
            request,
            sent: 0,
            inbuf: Vec::new(),
            started: now,
            head_only: req.method == "HEAD",
            entry,
        });
    }

    fn name(&self, t: &Target) -> String {
        format!(
            "{}/{}:{}",
            self.cluster.namespace(t.namespace).name,
            t.backend.service,
            t.backend.port
        )
    }

    fn entry(
        &self,
        now: Time,
        peer: Option<SocketAddr>,
        host: Option<String>,
        request_line: String,
    ) -> IngressLogEntry {
        IngressLogEntry {
            at: now,
            peer,
            host,
            request_line,
            route: String::new(),
            upstream: None,
            status: 0,
        }
    }

    /// Queues the controller's own answer.
    fn answer(
        &mut self,
        conn: &mut ClientConn,
        entry: IngressLogEntry,
        status: u16,
        why: String,
        close: bool,
    ) {
        let body = format!("{status} {}: {why}\n", reason_phrase(status));
        let headers = vec![("Content-Type".to_owned(), "text/plain".to_owned())];
        self.send(conn, entry, status, reason_phrase(status), &headers, body.as_bytes(), close);
    }

    /// Queues a response with a Content-Length and logs it.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        conn: &mut ClientConn,
        mut entry: IngressLogEntry,
        status: u16,
        reason: &str,
        headers: &[(String, String)],
        body: &[u8],
        close: bool,
    ) {
        let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
        for (n, v) in headers {
            if !is_hop_by_hop(n) && !n.eq_ignore_ascii_case("content-length") {
                let _ = write!(head, "{n}: {v}\r\n");
            }
        }
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        conn.outbuf.extend_from_slice(head.as_bytes());
        conn.outbuf.extend_from_slice(body);
        conn.close_after |= close;
        entry.status = status;
        *self.by_status.entry(status).or_insert(0) += 1;
        self.log.push(entry);
    }

    /// Advances a request's upstream; `false` once it is answered.
    fn drive_upstream(&mut self, now: Time, cx: &mut AppCx<'_>, conn: &mut ClientConn) -> bool {
        let Some(mut up) = conn.upstream.take() else { return false };
        let close = !conn.keep_alive;
        let status = up.conn.poll(now, cx);
        if status == ConnStatus::Connecting {
            conn.upstream = Some(up);
            return true;
        }
        if status == ConnStatus::Failed {
            let (code, why) = match (up.conn.established_at(), up.conn.error()) {
                (None, Some(ConnError::TimedOut)) => (504, "upstream connect timed out".into()),
                (None, e) => (502, format!("upstream connect failed: {}", describe(e))),
                (Some(_), e) => (502, format!("upstream failed: {}", describe(e))),
            };
            up.conn.release(cx);
            self.answer(conn, up.entry, code, why, close);
            return false;
        }
        let Some(h) = up.conn.handle() else {
            self.answer(conn, up.entry, 502, "upstream socket lost".into(), close);
            return false;
        };
        if up.sent < up.request.len()
            && let Ok(n) = cx.tcp_send(h, &up.request[up.sent..])
        {
            up.sent += n;
        }
        let _ = cx.tcp_recv(h, &mut up.inbuf);
        let eof = up.conn.poll(now, cx) == ConnStatus::Failed || up.conn.peer_closed();
        match parse_response(&up.inbuf, eof, up.head_only) {
            Some(Ok(resp)) => {
                up.conn.release(cx);
                let entry = up.entry;
                self.send(conn, entry, resp.status, &resp.reason, &resp.headers, &resp.body, close);
                false
            }
            Some(Err(why)) => {
                up.conn.release(cx);
                self.answer(conn, up.entry, 502, why, close);
                false
            }
            None if now >= up.started + self.config.read_timeout => {
                up.conn.release(cx);
                self.answer(conn, up.entry, 504, "upstream timed out".into(), close);
                false
            }
            None => {
                conn.upstream = Some(up);
                true
            }
        }
    }
}

fn describe(e: Option<&ConnError>) -> String {
    e.map_or_else(|| "closed".to_owned(), ToString::to_string)
}

impl App for IngressController {
    fn stop(&mut self, _now: Time, cx: &mut AppCx<'_>) {
        if let Some(l) = self.listener.take() {
            cx.tcp_unlisten(l);
        }
        for mut conn in self.conns.drain(..) {
            if let Some(mut up) = conn.upstream.take() {
                up.conn.release(cx);
            }
            cx.tcp_release(conn.handle);
        }
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        let port = self.config.http_port;
        let Some(listener) = listen_once(cx, port, &mut self.listener, &mut self.error) else {
            return AppPoll::Done;
        };
        while let Some(handle) = cx.tcp_accept(listener) {
            let peer = cx
                .tcp(handle)
                .and_then(|s| s.remote_endpoint())
                .map(|e| SocketAddr::new(e.addr.into(), e.port));
            self.conns.push(ClientConn {
                handle,
                peer,
                inbuf: Vec::new(),
                outbuf: Vec::new(),
                upstream: None,
                close_after: false,
                keep_alive: true,
            });
        }
        let mut wake: Option<Time> = None;
        let mut conns = std::mem::take(&mut self.conns);
        conns.retain_mut(|conn| {
            let _ = cx.tcp_recv(conn.handle, &mut conn.inbuf);
            // One request at a time per connection (HTTP/1.1 without pipelining overlap).
            loop {
                if conn.upstream.is_some() {
                    if self.drive_upstream(now, cx, conn) {
                        break;
                    }
                    continue;
                }
                if conn.close_after {
                    break;
                }
                let before = (conn.inbuf.len(), self.log.len());
                self.next_request(now, conn);
                if conn.upstream.is_none() && (conn.inbuf.len(), self.log.len()) == before {
                    break;
                }
            }
            if let Some(up) = &conn.upstream {
                let at = up.started + self.config.read_timeout;
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
            if !conn.outbuf.is_empty()
                && let Ok(n) = cx.tcp_send(conn.handle, &conn.outbuf)
            {
                conn.outbuf.drain(..n);
            }
            let peer_done = cx.tcp(conn.handle).is_none_or(|s| !s.may_recv());
            let finished = conn.outbuf.is_empty()
                && (conn.close_after || (peer_done && conn.upstream.is_none()));
            if finished {
                if let Some(mut up) = conn.upstream.take() {
                    up.conn.release(cx);
                }
                cx.tcp_release(conn.handle);
            }
            !finished
        });
        self.conns = conns;
        wake.map_or(AppPoll::Idle, AppPoll::WakeAt)
    }
}

/// Headers that concern one connection only (RFC 9110 §7.6.1) and are not forwarded.
fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// The request sent to the backend.
fn upstream_request(
    req: &super::http::HttpRequest,
    peer: Option<SocketAddr>,
    port: u16,
) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    let client = peer.map(|p| p.ip().to_string());
    let mut forwarded_for = None;
    for (n, v) in &req.headers {
        if is_hop_by_hop(n) || n.eq_ignore_ascii_case("content-length") {
            continue;
        }
        if n.eq_ignore_ascii_case("x-forwarded-for") {
            forwarded_for = Some(v.clone());
            continue;
        }
        if ["x-forwarded-host", "x-forwarded-port", "x-forwarded-proto", "x-real-ip"]
            .iter()
            .any(|h| n.eq_ignore_ascii_case(h))
        {
            continue;
        }
        let _ = write!(out, "{n}: {v}\r\n");
    }
    if let Some(ip) = &client {
        let xff = match forwarded_for {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip.clone(),
        };
        let _ = write!(out, "X-Forwarded-For: {xff}\r\nX-Real-IP: {ip}\r\n");
    }
    if let Some(host) = req.header("host") {
        let _ = write!(out, "X-Forwarded-Host: {host}\r\n");
    }
    let _ = write!(out, "X-Forwarded-Port: {port}\r\nX-Forwarded-Proto: http\r\n");
    if !req.body.is_empty() {
        let _ = write!(out, "Content-Length: {}\r\n", req.body.len());
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&req.body);
    bytes
}

/// A backend's response.
#[derive(Debug)]
struct UpstreamResponse {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Parses a complete response from `buf`: `None` while incomplete, an error for garbage or a
/// response cut short by `eof`.
fn parse_response(
    buf: &[u8],
    eof: bool,
    head_only: bool,
) -> Option<Result<UpstreamResponse, String>> {
    let Some(end) = head_end(buf) else {
        return eof.then(|| Err("upstream closed without a response".to_owned()));
    };
    let Some((first, headers)) = parse_head(&buf[..end]) else {
        return Some(Err("upstream sent an invalid response head".to_owned()));
    };
    let mut parts = first.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let reason = parts.next().unwrap_or_default().to_owned();
    let Some(status) = status.filter(|_| version.starts_with("HTTP/")) else {
        return Some(Err("upstream sent an invalid status line".to_owned()));
    };
    let rest = &buf[end..];
    let no_body = head_only || status == 204 || status == 304 || (100..200).contains(&status);
    let body = super::http::response_body(&headers, rest, no_body, eof);
    match body {
        Some(body) => Some(Ok(UpstreamResponse { status, reason, headers, body })),
        None if eof => Some(Err("upstream closed in the middle of the response".to_owned())),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_requests_carry_the_client_and_drop_hop_by_hop_headers() {
        let raw = b"POST /api?x=1 HTTP/1.1\r\nHost: api.example.com\r\nConnection: keep-alive\r\n\
X-Forwarded-For: 198.51.100.7\r\nContent-Length: 2\r\n\r\nhi";
        let Parse::Done(req, _) = parse_request(raw) else { panic!("parses") };
        let peer = "192.168.0.10:40000".parse().ok();
        let text = String::from_utf8(upstream_request(&req, peer, 80)).unwrap();
        assert_eq!(
            text,
            "POST /api?x=1 HTTP/1.1\r\nHost: api.example.com\r\n\
X-Forwarded-For: 198.51.100.7, 192.168.0.10\r\nX-Real-IP: 192.168.0.10\r\n\
X-Forwarded-Host: api.example.com\r\nX-Forwarded-Port: 80\r\nX-Forwarded-Proto: http\r\n\
Content-Length: 2\r\nConnection: close\r\n\r\nhi"
        );
    }

    #[test]
    fn responses_parse_by_length_chunks_or_eof() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        let r = parse_response(ok, false, false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
        assert!(parse_response(&ok[..ok.len() - 1], false, false).is_none());
        assert!(parse_response(&ok[..ok.len() - 1], true, false).unwrap().is_err());
        let chunked =
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
        let r = parse_response(chunked, false, false).unwrap().unwrap();
        assert_eq!((r.status, r.reason.as_str(), r.body.as_slice()), (201, "Created", &b"ab"[..]));
        let until_eof = b"HTTP/1.0 200 OK\r\n\r\nall of it";
        assert!(parse_response(until_eof, false, false).is_none());
        assert_eq!(parse_response(until_eof, true, false).unwrap().unwrap().body, b"all of it");
        assert!(parse_response(b"", true, false).unwrap().is_err());
        assert!(parse_response(b"SSH-2.0\r\n\r\n", false, false).unwrap().is_err());
    }
}
