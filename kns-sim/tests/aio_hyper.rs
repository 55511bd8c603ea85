//! A real HTTP crate in async pods: hyper 1.x servers in two backend pods and a client pod that
//! spreads requests over them, in virtual time.

#[path = "common/hyper_io.rs"]
mod hyper_io;
#[path = "common/pods.rs"]
mod pods;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use kns_sim::aio::{self, AsyncSim, TcpListener, TcpStream};

use hyper_io::Io;
use pods::{cluster, pod_addr};

async fn serve(name: &'static str) {
    let listener = TcpListener::bind("0.0.0.0:8080").await.unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        aio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let path = req.uri().path().to_string();
                async move {
                    // 2 ms of "work" per request, in virtual time.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                        "{name} served {path}"
                    )))))
                }
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(Io(stream), service)
                .await
                .unwrap();
        })
        .unwrap();
    }
}

#[test]
fn hyper_servers_and_client_in_pods() {
    let (sim, p) = cluster(11, &[1, 2]);
    let mut asim = AsyncSim::new(sim);
    asim.spawn_in(p.pod(1, 0), serve("backend-a"));
    asim.spawn_in(p.pod(1, 1), serve("backend-b"));
    let backends = [pod_addr(1, 0), pod_addr(1, 1)];
    let (bodies, latencies) = asim
        .block_on(
            p.pod(0, 0),
            async move {
                let mut bodies = Vec::new();
                let mut latencies = Vec::new();
                for i in 0..6 {
                    let t0 = aio::now().unwrap();
                    let addr = SocketAddr::new(backends[i % 2].into(), 8080);
                    let stream = TcpStream::connect(addr).await.unwrap();
                    let (mut sender, conn) =
                        hyper::client::conn::http1::handshake(Io(stream)).await.unwrap();
                    aio::spawn(conn).unwrap();
                    let req = Request::get(format!("/item/{i}"))
                        .header(hyper::header::HOST, "backend")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let resp = sender.send_request(req).await.unwrap();
                    assert_eq!(resp.status(), 200);
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    bodies.push(String::from_utf8(body.to_vec()).unwrap());
                    latencies.push(aio::now().unwrap().saturating_since(t0));
                }
                (bodies, latencies)
            },
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(bodies[0], "backend-a served /item/0");
    assert_eq!(bodies[1], "backend-b served /item/1");
    assert_eq!(bodies.iter().filter(|b| b.starts_with("backend-a")).count(), 3);
    // Each request costs the server's 2 ms sleep, rounded up to tokio's 1 ms timer ticks.
    for l in latencies {
        assert!(l >= Duration::from_millis(2) && l <= Duration::from_millis(3), "{l:?}");
    }
}
