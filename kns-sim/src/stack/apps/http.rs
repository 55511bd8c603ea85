//! HTTP/1.1: a small responder (fixed body or a handler closure, keep-alive, Content-Length) and
//! a `curl`-like client (GET a URL with an IP literal host, status, headers, body, curl's errors).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::client::{ConnError, ConnStatus, TcpConn};
use super::echo::listen_once;
use crate::stack::{App, AppCx, AppPoll, ListenerId, StackError, TcpHandle};
use crate::time::Time;

/// A parsed HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method (`GET`, `POST`, ...).
    pub method: String,
    /// The request target (`/path?query`).
    pub target: String,
    /// The protocol version (`HTTP/1.1`).
    pub version: String,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// The body (by Content-Length).
    pub body: Vec<u8>,
    /// The client's address.
    pub peer: Option<SocketAddr>,
}

impl HttpRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// A response the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Extra header fields (Content-Length is added by the server; Content-Type defaults to
    /// `text/plain`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status` and `body`.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse { status, headers: Vec::new(), body: body.into() }
    }

    /// `200 OK` with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse::new(200, body)
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The reason phrase of a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

pub(super) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLogEntry {
    /// When it was answered.
    pub at: Time,
    /// The client.
    pub peer: Option<SocketAddr>,
    /// Method and target.
    pub request_line: String,
    /// The status sent.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: usize,
}

/// The closure an [`HttpServer`] answers with.
pub type HttpHandler = Box<dyn FnMut(&HttpRequest) -> HttpResponse>;

struct ServerConn {
    handle: TcpHandle,
    peer: Option<SocketAddr>,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    close_after: bool,
}

/// An HTTP/1.1 server on one port. It runs until the stack is dropped.
pub struct HttpServer {
    port: u16,
    handler: HttpHandler,
    listener: Option<ListenerId>,
    conns: Vec<ServerConn>,
    log: Vec<HttpLogEntry>,
    by_status: BTreeMap<u16, u64>,
    accepted: u64,
    error: Option<StackError>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("port", &self.port)
            .field("requests", &self.log.len())
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// A server answering every request with `handler`'s response.
    pub fn new(port: u16, handler: impl FnMut(&HttpRequest) -> HttpResponse + 'static) -> Self {
        HttpServer {
            port,
            handler: Box::new(handler),
            listener: None,
            conns: Vec::new(),
            log: Vec::new(),
            by_status: BTreeMap::new(),
            accepted: 0,
            error: None,
        }
    }

    /// A server answering every request with `200 OK` and `body`.
    pub fn fixed(port: u16, body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        HttpServer::new(port, move |_| HttpResponse::ok(body.clone()))
    }

    /// Requests answered.
    pub fn requests(&self) -> usize {
        self.log.len()
    }

    /// Requests answered per status code.
    pub fn by_status(&self) -> &BTreeMap<u16, u64> {
        &self.by_status
    }

    /// Every request answered, in order.
    pub fn log(&self) -> &[HttpLogEntry] {
        &self.log
    }

    /// Connections accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Why the server could not listen, if it could not.
    pub fn error(&self) -> Option<&StackError> {
        self.error.as_ref()
    }

    /// Answers every complete request in `conn.inbuf`.
    fn serve(&mut self, now: Time, conn: &mut ServerConn) {
        while !conn.close_after {
            let parsed = match parse_request(&conn.inbuf) {
                Parse::Incomplete => return,
                Parse::Bad => {
                    let resp = HttpResponse::new(400, "bad request\n");
                    self.respond(now, conn, "-", resp, true);
                    conn.inbuf.clear();
                    return;
                }
                Parse::Done(req, used) => {
                    conn.inbuf.drain(..used);
                    req
                }
            };
            let mut req = parsed;
            req.peer = conn.peer;
            let connection = req.header("connection").map(str::to_ascii_lowercase);
            let close = match req.version.as_str() {
                "HTTP/1.0" => connection.as_deref() != Some("keep-alive"),
                _ => connection.as_deref() == Some("close"),
            };
            let mut resp = (self.handler)(&req);
            if req.method == "HEAD" {
                let len = resp.body.len();
                resp.headers.push(("Content-Length".to_owned(), len.to_string()));
                resp.body.clear();
            }
            let line = format!("{} {}", req.method, req.target);
            self.respond(now, conn, &line, resp, close);
        }
    }

    fn respond(
        &mut self,
        now: Time,
        conn: &mut ServerConn,
        request_line: &str,
        resp: HttpResponse,
        close: bool,
    ) {
        let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason_phrase(resp.status));
        if find_header(&resp.headers, "content-type").is_none() {
            head.push_str("Content-Type: text/plain\r\n");
        }
        for (n, v) in &resp.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        if find_header(&resp.headers, "content-length").is_none() {
            let _ = write!(head, "Content-Length: {}\r\n", resp.body.len());
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        conn.outbuf.extend_from_slice(head.as_bytes());
        conn.outbuf.extend_from_slice(&resp.body);
        conn.close_after |= close;
        *self.by_status.entry(resp.status).or_insert(0) += 1;
        self.log.push(HttpLogEntry {
            at: now,
            peer: conn.peer,
            request_line: request_line.to_owned(),
            status: resp.status,
            bytes: resp.body.len(),
        });
    }
}

impl App for HttpServer {
    fn stop(&mut self, _now: Time, cx: &mut AppCx<'_>) {
        if let Some(l) = self.listener.take() {
            cx.tcp_unlisten(l);
        }
        for conn in self.conns.drain(..) {
            cx.tcp_release(conn.handle);
        }
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        let Some(listener) = listen_once(cx, self.port, &mut self.listener, &mut self.error) else {
            return AppPoll::Done;
        };
        while let Some(handle) = cx.tcp_accept(listener) {
            self.accepted += 1;
            let peer = cx
                .tcp(handle)
                .and_then(|s| s.remote_endpoint())
                .map(|e| SocketAddr::new(e.addr.into(), e.port));
            self.conns.push(ServerConn {
                handle,
                peer,
                inbuf: Vec::new(),
                outbuf: Vec::new(),
                close_after: false,
            });
        }
        let mut conns = std::mem::take(&mut self.conns);
        conns.retain_mut(|conn| {
            let _ = cx.tcp_recv(conn.handle, &mut conn.inbuf);
            self.serve(now, conn);
            if !conn.outbuf.is_empty()
                && let Ok(n) = cx.tcp_send(conn.handle, &conn.outbuf)
            {
                conn.outbuf.drain(..n);
            }
            let peer_done = cx.tcp(conn.handle).is_none_or(|s| !s.may_recv());
            let finished = conn.outbuf.is_empty() && (conn.close_after || peer_done);
            if finished {
                cx.tcp_release(conn.handle);
            }
            !finished
        });
        self.conns = conns;
        AppPoll::Idle
    }
}

/// The result of parsing the start of a buffer.
pub(super) enum Parse<T> {
    /// More bytes are needed.
    Incomplete,
    /// Not a valid message.
    Bad,
    /// A message and the bytes it used.
    Done(T, usize),
}

pub(super) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Splits a head into its first line and header fields.
pub(super) fn parse_head(head: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let first = lines.next()?.to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (n, v) = line.split_once(':')?;
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    Some((first, headers))
}

/// Parses one request (head and Content-Length body) at the start of `buf`.
pub(super) fn parse_request(buf: &[u8]) -> Parse<HttpRequest> {
    let Some(end) = head_end(buf) else {
        return if buf.len() > 64 * 1024 { Parse::Bad } else { Parse::Incomplete };
    };
    let Some((first, headers)) = parse_head(&buf[..end]) else {
        return Parse::Bad;
    };
    let parts: Vec<&str> = first.split_whitespace().collect();
    let [method, target, version] = parts[..] else {
        return Parse::Bad;
    };
    if !version.starts_with("HTTP/") {
        return Parse::Bad;
    }
    let body_len = match find_header(&headers, "content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Parse::Bad,
    };
    if buf.len() < end + body_len {
        return Parse::Incomplete;
    }
    Parse::Done(
        HttpRequest {
            method: method.to_owned(),
            target: target.to_owned(),
            version: version.to_owned(),
            headers,
            body: buf[end..end + body_len].to_vec(),
            peer: None,
        },
        end + body_len,
    )
}

/// A response the client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status line's version.
    pub version: String,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding decoded).
    pub body: Vec<u8>,
    /// The raw head (status line and headers), as `curl -i` prints it.
    pub raw_head: Vec<u8>,
}

impl HttpReply {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// Options of an [`HttpClient`] (`curl [-i] [-m SECS] [--connect-timeout SECS] URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// `http://HOST[:PORT][/PATH]`; HOST is an IPv4 literal or a bracketed IPv6 literal.
    pub url: String,
    /// The method (default `GET`).
    pub method: String,
    /// Print the response head before the body (`curl -i`).
    pub include_headers: bool,
    /// Give up connecting after this long (default 10 s).
    pub connect_timeout: Duration,
    /// Give up the whole transfer after this long (default 30 s).
    pub max_time: Duration,
    /// Extra header fields (`curl -H 'Name: value'`); a `Host` here replaces the URL's.
    pub headers: Vec<(String, String)>,
}

impl HttpClientConfig {
    /// `curl URL`.
    pub fn get(url: &str) -> HttpClientConfig {
        HttpClientConfig {
            url: url.to_owned(),
            method: "GET".to_owned(),
            include_headers: false,
            connect_timeout: Duration::from_secs(10),
            max_time: Duration::from_secs(30),
            headers: Vec::new(),
        }
    }
}

/// An HTTP client fetching one URL, with curl's output and exit codes.
#[derive(Debug)]
pub struct HttpClient {
    config: HttpClientConfig,
    target: Result<(SocketAddr, String, String), (u8, String)>,
    conn: Option<TcpConn>,
    request_sent: usize,
    request: Vec<u8>,
    inbuf: Vec<u8>,
    reply: Option<HttpReply>,
    exit_code: Option<u8>,
    output: String,
    finished_at: Option<Time>,
}

impl HttpClient {
    /// A client that starts at its first poll.
    pub fn new(config: HttpClientConfig) -> HttpClient {
        let target = parse_url(&config.url);
        HttpClient {
            config,
            target,
            conn: None,
            request_sent: 0,
            request: Vec::new(),
            inbuf: Vec::new(),
            reply: None,
            exit_code: None,
            output: String::new(),
            finished_at: None,
        }
    }

    /// The response, once complete.
    pub fn reply(&self) -> Option<&HttpReply> {
        self.reply.as_ref()
    }

    /// curl's exit code (0 success, 6 resolve, 7 connect, 28 timeout, 52 empty reply, 56 recv
    /// failure, 3 bad URL), once finished.
    pub fn exit_code(&self) -> Option<u8> {
        self.exit_code
    }

    /// What curl would print: the body (after the head with `-i`), or its error line.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// Whether the handshake completed.
    pub fn connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.established_at().is_some())
    }

    /// When the client finished.
    pub fn finished_at(&self) -> Option<Time> {
        self.finished_at
    }

    fn fail(&mut self, now: Time, cx: &mut AppCx<'_>, code: u8, message: String) -> AppPoll {
        let _ = writeln!(self.output, "curl: ({code}) {message}");
        self.exit_code = Some(code);
        self.finish(now, cx)
    }

    fn finish(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if let Some(conn) = &mut self.conn {
            conn.release(cx);
        }
        self.finished_at = Some(now);
        AppPoll::Done
    }

    fn connect_failure(&self, now: Time, e: &ConnError) -> (u8, String) {
        let Ok((addr, _, _)) = &self.target else {
            return (7, e.to_string());
        };
        let started = self.conn.as_ref().and_then(TcpConn::started).unwrap_or(now);
        let after = (now - started).as_millis();
        let (code, why) = match e {
            ConnError::TimedOut => (28, "Timeout was reached".to_owned()),
            ConnError::Local(err) => (7, err.to_string()),
            _ => (7, "Couldn't connect to server".to_owned()),
        };
        let host = match addr.ip() {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => a.to_string(),
        };
        (code, format!("Failed to connect to {host} port {} after {after} ms: {why}", addr.port()))
    }

    /// Tries to complete the reply from `inbuf`; `eof` when the server closed.
    fn try_complete(&mut self, eof: bool) -> Option<Result<HttpReply, (u8, String)>> {
        let Some(end) = head_end(&self.inbuf) else {
            return eof.then(|| {
                Err(if self.inbuf.is_empty() {
                    (52, "Empty reply from server".to_owned())
                } else {
                    (8, "Weird server reply".to_owned())
                })
            });
        };
        let Some((first, headers)) = parse_head(&self.inbuf[..end]) else {
            return Some(Err((8, "Weird server reply".to_owned())));
        };
        let mut parts = first.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status = parts.next().and_then(|s| s.parse::<u16>().ok());
        let reason = parts.next().unwrap_or_default().to_owned();
        let Some(status) = status.filter(|_| version.starts_with("HTTP/")) else {
            return Some(Err((8, "Weird server reply".to_owned())));
        };
        let rest = &self.inbuf[end..];
        let no_body = self.config.method == "HEAD" || status == 204 || status == 304;
        let body = response_body(&headers, rest, no_body, eof);
        match body {
            Some(body) => Some(Ok(HttpReply {
                version,
                status,
                reason,
                headers,
                body,
                raw_head: self.inbuf[..end].to_vec(),
            })),
            None if eof => {
                Some(Err((18, "transfer closed with outstanding read data remaining".to_owned())))
            }
            None => None,
        }
    }
}

impl App for HttpClient {
    fn stop(&mut self, now: Time, cx: &mut AppCx<'_>) {
        if self.finished_at.is_none() {
            self.finish(now, cx);
        }
    }

    fn poll(&mut self, now: Time, cx: &mut AppCx<'_>) -> AppPoll {
        if self.finished_at.is_some() {
            return AppPoll::Done;
        }
        let (addr, host, path) = match &self.target {
            Ok(t) => t.clone(),
            Err((code, message)) => {
                let (code, message) = (*code, message.clone());
                return self.fail(now, cx, code, message);
            }
        };
        let conn = self.conn.get_or_insert_with(|| TcpConn::new(addr, self.config.connect_timeout));
        let status = conn.poll(now, cx);
        let established = conn.established_at().is_some();
        let error = conn.error().cloned();
        let handle = conn.handle();
        match status {
            ConnStatus::Connecting => return AppPoll::Idle,
            ConnStatus::Failed => {
                let e = error.unwrap_or(ConnError::TimedOut);
                let (code, message) = if established {
                    (56, format!("Recv failure: {e}"))
                } else {
                    self.connect_failure(now, &e)
                };
                return self.fail(now, cx, code, message);
            }
            ConnStatus::Open => {}
        }
        let Some(h) = handle else {
            return self.finish(now, cx);
        };
        if self.request.is_empty() {
            let extra = &self.config.headers;
            let host = find_header(extra, "host").unwrap_or(&host);
            let mut head = format!(
                "{} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n",
                self.config.method
            );
            for (n, v) in extra.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("host")) {
                let _ = write!(head, "{n}: {v}\r\n");
            }
            head.push_str("\r\n");
            self.request = head.into_bytes();
        }
        if self.request_sent < self.request.len()
            && let Ok(n) = cx.tcp_send(h, &self.request[self.request_sent..])
        {
            self.request_sent += n;
        }
        let _ = cx.tcp_recv(h, &mut self.inbuf);
        let Some(conn) = self.conn.as_mut() else {
            return self.finish(now, cx);
        };
        let status = conn.poll(now, cx);
        let eof = conn.peer_closed() || status == ConnStatus::Failed;
        let started = conn.started().unwrap_or(now);
        match self.try_complete(eof) {
            Some(Ok(reply)) => {
                if self.config.include_headers {
                    self.output.push_str(&String::from_utf8_lossy(&reply.raw_head));
                }
                self.output.push_str(&String::from_utf8_lossy(&reply.body));
                self.reply = Some(reply);
                self.exit_code = Some(0);
                self.finish(now, cx)
            }
            Some(Err((code, message))) => {
                let message = match self.conn.as_ref().and_then(TcpConn::error) {
                    Some(ConnError::Reset) => "Recv failure: Connection reset by peer".to_owned(),
                    _ => message,
                };
                let code = if message.starts_with("Recv failure") { 56 } else { code };
                self.fail(now, cx, code, message)
            }
            None if now >= started + self.config.max_time => {
                let message = format!(
                    "Operation timed out after {} milliseconds with {} bytes received",
                    (now - started).as_millis(),
                    self.inbuf.len()
                );
                self.fail(now, cx, 28, message)
            }
            None => AppPoll::WakeAt(started + self.config.max_time),
        }
    }
}

/// Decodes a complete chunked body, or `None` while incomplete.
pub(super) fn decode_chunked(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if rest.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Parses `http://HOST[:PORT][/PATH]` into the address, the Host header and the path, or
/// curl's exit code and message.
fn parse_url(url: &str) -> Result<(SocketAddr, String, String), (u8, String)> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err((1, format!("Protocol \"{scheme}\" not supported")));
        }
        None => url,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() {
        return Err((3, "URL rejected: No host part in the URL".to_owned()));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) =
            v6.split_once(']').ok_or((3, "URL rejected: Bad IPv6 address".to_owned()))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse::<u16>().map_err(|_| {
            (3, "URL rejected: Port number was not a decimal number between 0 and 65535".to_owned())
        })?,
    };
    let ip: IpAddr = host.parse().map_err(|_| (6, format!("Could not resolve host: {host}")))?;
    Ok((SocketAddr::new(ip, port), authority.to_owned(), path))
}

/// The body of a response whose head was `headers` and after which `rest` arrived: empty
/// when the response has none (`no_body`), else chunked, `Content-Length` or up to `eof`;
/// `None` while incomplete.
pub(super) fn response_body(
    headers: &[(String, String)],
    rest: &[u8],
    no_body: bool,
    eof: bool,
) -> Option<Vec<u8>> {
    if no_body {
        Some(Vec::new())
    } else if find_header(headers, "transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        decode_chunked(rest)
    } else if let Some(len) =
        find_header(headers, "content-length").and_then(|v| v.parse::<usize>().ok())
    {
        (rest.len() >= len).then(|| rest[..len].to_vec())
    } else {
        eof.then(|| rest.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_like_curl() {
        let (addr, host, path) = parse_url("http://10.0.0.2:8080/a/b?c=1").unwrap();
        assert_eq!(addr, "10.0.0.2:8080".parse().unwrap());
        assert_eq!((host.as_str(), path.as_str()), ("10.0.0.2:8080", "/a/b?c=1"));
        assert_eq!(parse_url("10.0.0.2").unwrap().2, "/");
        assert_eq!(parse_url("http://[fd00::1]/").unwrap().0.port(), 80);
        assert_eq!(
            parse_url("http://web/").unwrap_err(),
            (6, "Could not resolve host: web".to_owned())
        );
        assert_eq!(parse_url("https://10.0.0.2/").unwrap_err().0, 1);
    }

    #[test]
    fn requests_and_chunks_parse() {
        let raw = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET";
        let Parse::Done(req, used) = parse_request(raw) else { panic!("not parsed") };
        assert_eq!((req.method.as_str(), req.target.as_str()), ("POST", "/x"));
        assert_eq!(req.body, b"abc");
        assert_eq!(req.header("HOST"), Some("a"));
        assert_eq!(used, raw.len() - 3);
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\n"), Parse::Incomplete));
        assert!(matches!(parse_request(b"nonsense\r\n\r\n"), Parse::Bad));
        assert_eq!(decode_chunked(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(), b"abcde");
        assert_eq!(decode_chunked(b"3\r\nab"), None);
    }
}
