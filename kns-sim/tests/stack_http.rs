//! HTTP server and client between stacks wired by a `LoopbackNet`.

use std::time::Duration;

use kns_sim::Time;
use kns_sim::stack::apps::{HttpClient, HttpClientConfig, HttpResponse, HttpServer};
use kns_sim::stack::testnet::LoopbackNet;
use kns_sim::stack::{SmolStack, StackConfig};

fn stack(seed: u64, addr: &str) -> SmolStack {
    SmolStack::with_addresses(StackConfig::with_seed(seed), Time::ZERO, &[addr.parse().unwrap()])
        .unwrap()
}

fn pair() -> (LoopbackNet, usize, usize) {
    let mut net = LoopbackNet::new(Duration::from_micros(50));
    let a = net.add(stack(1, "10.0.0.1/24"));
    let b = net.add(stack(2, "10.0.0.2/24"));
    (net, a, b)
}

#[test]
fn get_round_trip_with_exact_body_and_headers() {
    let (mut net, a, b) = pair();
    let server = net.stack_mut(b).spawn(HttpServer::fixed(80, "hello from b\n"));
    let plain = net.stack_mut(a).spawn(HttpClient::new(HttpClientConfig::get("http://10.0.0.2/")));
    let mut cfg = HttpClientConfig::get("http://10.0.0.2:80/index.html");
    cfg.include_headers = true;
    let with_head = net.stack_mut(a).spawn(HttpClient::new(cfg));
    assert!(net.run_until_done(Time::from_secs(10), &[(a, plain), (a, with_head)]).unwrap());

    let c = net.stack(a).app::<HttpClient>(plain).unwrap();
    assert_eq!(c.exit_code(), Some(0));
    assert_eq!(c.output(), "hello from b\n");
    let reply = c.reply().unwrap();
    assert_eq!((reply.status, reply.reason.as_str()), (200, "OK"));
    assert_eq!(reply.header("content-length"), Some("13"));
    assert!(c.connected());

    let c = net.stack(a).app::<HttpClient>(with_head).unwrap();
    assert_eq!(
        c.output(),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello from b\n"
    );

    let s = net.stack(b).app::<HttpServer>(server).unwrap();
    assert_eq!(s.requests(), 2);
    assert_eq!(s.by_status().get(&200), Some(&2));
    let lines: Vec<_> = s.log().iter().map(|e| e.request_line.as_str()).collect();
    assert_eq!(lines, ["GET /", "GET /index.html"]);
    assert_eq!(s.log()[0].peer.unwrap().ip(), "10.0.0.1".parse::<std::net::IpAddr>().unwrap());
}

#[test]
fn handler_routes_and_large_bodies_cross_many_segments() {
    let (mut net, a, b) = pair();
    let big: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let body = big.clone();
    let server =
        net.stack_mut(b).spawn(HttpServer::new(8080, move |req| match req.target.as_str() {
            "/big" => HttpResponse::ok(body.clone()),
            "/json" => {
                HttpResponse::ok("{\"ok\":true}").with_header("Content-Type", "application/json")
            }
            _ => HttpResponse::new(404, "not found\n"),
        }));
    let ids: Vec<_> = ["/big", "/json", "/missing"]
        .iter()
        .map(|p| {
            let url = format!("http://10.0.0.2:8080{p}");
            net.stack_mut(a).spawn(HttpClient::new(HttpClientConfig::get(&url)))
        })
        .collect();
    let clients: Vec<_> = ids.iter().map(|&id| (a, id)).collect();
    assert!(net.run_until_done(Time::from_secs(30), &clients).unwrap());
    let get = |i: usize| net.stack(a).app::<HttpClient>(ids[i]).unwrap().reply().unwrap().clone();
    assert_eq!(get(0).body, big);
    assert_eq!(get(1).header("content-type"), Some("application/json"));
    assert_eq!(get(1).body, b"{\"ok\":true}");
    assert_eq!((get(2).status, get(2).body.as_slice()), (404, &b"not found\n"[..]));
    let s = net.stack(b).app::<HttpServer>(server).unwrap();
    assert_eq!(s.by_status().get(&404), Some(&1));
    assert_eq!(s.by_status().get(&200), Some(&2));
}

#[test]
fn curl_errors_read_like_curl() {
    let (mut net, a, _b) = pair();
    let refused =
        net.stack_mut(a).spawn(HttpClient::new(HttpClientConfig::get("http://10.0.0.2:81/")));
    let mut cfg = HttpClientConfig::get("http://10.0.0.77/");
    cfg.connect_timeout = Duration::from_secs(2);
    let timeout = net.stack_mut(a).spawn(HttpClient::new(cfg));
    let dns = net.stack_mut(a).spawn(HttpClient::new(HttpClientConfig::get("http://web.default/")));
    assert!(net.run_until_apps_done(Time::from_secs(30)).unwrap());
    let out = |id| net.stack(a).app::<HttpClient>(id).unwrap().output().to_owned();
    assert_eq!(
        out(refused),
        "curl: (7) Failed to connect to 10.0.0.2 port 81 after 0 ms: Couldn't connect to server\n"
    );
    assert_eq!(
        out(timeout),
        "curl: (28) Failed to connect to 10.0.0.77 port 80 after 2000 ms: Timeout was reached\n"
    );
    assert_eq!(out(dns), "curl: (6) Could not resolve host: web.default\n");
    assert_eq!(net.stack(a).app::<HttpClient>(refused).unwrap().exit_code(), Some(7));
}

#[test]
fn a_hundred_concurrent_clients_on_one_server() {
    let (mut net, a, b) = pair();
    let server = net.stack_mut(b).spawn(HttpServer::new(80, |req| {
        HttpResponse::ok(format!("you asked for {}\n", req.target))
    }));
    let ids: Vec<_> = (0..100)
        .map(|i| {
            let url = format!("http://10.0.0.2/{i}");
            net.stack_mut(a).spawn(HttpClient::new(HttpClientConfig::get(&url)))
        })
        .collect();
    let clients: Vec<_> = ids.iter().map(|&id| (a, id)).collect();
    assert!(net.run_until_done(Time::from_secs(30), &clients).unwrap());
    let mut ports = std::collections::BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let c = net.stack(a).app::<HttpClient>(*id).unwrap();
        assert_eq!(c.output(), format!("you asked for /{i}\n"));
    }
    let s = net.stack(b).app::<HttpServer>(server).unwrap();
    assert_eq!(s.requests(), 100);
    assert_eq!(s.accepted(), 100);
    for e in s.log() {
        ports.insert(e.peer.unwrap().port());
    }
    assert_eq!(ports.len(), 100, "every client had its own ephemeral port");
    net.run_until(net.now() + Duration::from_secs(5)).unwrap();
    assert_eq!(net.stack(a).socket_count(), 0);
    assert_eq!(net.stack(b).socket_count(), 1);
}

#[test]
fn server_keeps_connections_alive_and_answers_pipelined_requests() {
    use kns_sim::stack::apps::{TcpClient, TcpClientConfig};
    let (mut net, a, b) = pair();
    let server = net.stack_mut(b).spawn(HttpServer::new(80, |req| {
        HttpResponse::ok(format!("{} {}\n", req.method, req.target))
    }));
    let requests = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
                    HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n\
                    POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
    let mut cfg = TcpClientConfig::new("10.0.0.2:80".parse().unwrap(), requests);
    cfg.half_close = false;
    let client = net.stack_mut(a).spawn(TcpClient::new(cfg));
    assert!(net.run_until_done(Time::from_secs(10), &[(a, client)]).unwrap());
    let c = net.stack(a).app::<TcpClient>(client).unwrap();
    assert_eq!(c.error(), None);
    assert!(c.conn().peer_closed(), "the server closed after `Connection: close`");
    assert_eq!(
        String::from_utf8_lossy(c.received()),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nGET /a\n\
         HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\n\
         HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\nPOST /c\n"
    );
    let s = net.stack(b).app::<HttpServer>(server).unwrap();
    assert_eq!((s.accepted(), s.requests()), (1, 3));
}
