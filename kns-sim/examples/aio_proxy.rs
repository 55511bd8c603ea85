//! A small L4 proxy written with tokio's `copy_bidirectional`, running in an emulated pod
//! between a client pod and a backend pod that admits only the proxy. Everything runs in
//! virtual time: the client's 3 s timeout against the backend costs no real time.
//!
//! Run with `cargo run -p kns-sim --example aio_proxy`.

use std::net::SocketAddr;
use std::time::Duration;

use kns_sim::Sim;
use kns_sim::aio::{self, AsyncSim, TcpListener, TcpStream};
use kns_sim::net::LinkParams;
use kns_sim::stack::{SmolStack, StackConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PODS: [(&str, &str); 3] =
    [("client", "10.0.0.10"), ("proxy", "10.0.0.20"), ("backend", "10.0.0.30")];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sim = Sim::new(7);
    sim.ip(None, "link add br0 type bridge")?;
    sim.ip(None, "link set br0 up")?;
    for (i, (name, ip)) in PODS.iter().enumerate() {
        for cmd in [
            format!("netns add {name}"),
            format!("link add v{i} type veth peer name eth0 netns {name}"),
            format!("link set v{i} master br0"),
            format!("link set v{i} up"),
            format!("-n {name} addr add {ip}/24 dev eth0"),
            format!("-n {name} link set eth0 up"),
        ] {
            sim.ip(None, &cmd)?;
        }
        let ns = sim.netns(Some(name))?;
        // 100 µs each way on every pod link.
        let params = LinkParams { latency: Duration::from_micros(100), ..LinkParams::default() };
        sim.link_set_params(ns, "eth0", params.clone())?;
        sim.link_set_params(Sim::ROOT, &format!("v{i}"), params)?;
        let seed = sim.child_seed();
        sim.attach_stack(ns, SmolStack::new(StackConfig::with_seed(seed), sim.now()));
    }
    // Until a NetworkPolicy agent does it: the backend admits only the proxy on 8080.
    let backend = sim.netns(Some("backend"))?;
    let now = sim.now();
    let rule = "-A INPUT -p tcp --dport 8080 ! -s 10.0.0.20 -j DROP";
    println!("backend: iptables {rule}");
    let args: Vec<String> = rule.split_whitespace().map(String::from).collect();
    sim.netfilter_mut(backend).iptables(now, &args)?;

    let (client, proxy) = (sim.netns(Some("client"))?, sim.netns(Some("proxy"))?);
    let mut asim = AsyncSim::new(sim);
    asim.spawn_in(backend, async {
        let listener = TcpListener::bind("0.0.0.0:8080").await?;
        loop {
            let (mut s, _) = listener.accept().await?;
            aio::spawn(async move {
                let mut line = [0u8; 64];
                let n = s.read(&mut line).await.unwrap_or(0);
                let reply = String::from_utf8_lossy(&line[..n]).to_uppercase();
                let _ = s.write_all(reply.as_bytes()).await;
            })?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    asim.spawn_in(proxy, async {
        let listener = TcpListener::bind("0.0.0.0:9000").await?;
        loop {
            let (mut inbound, from) = listener.accept().await?;
            aio::spawn(async move {
                let mut outbound = TcpStream::connect("10.0.0.30:8080").await?;
                let (up, down) = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await?;
                println!("  proxy: {from} done, {up} bytes up, {down} bytes down");
                Ok::<(), std::io::Error>(())
            })?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let wall = std::time::Instant::now();
    let summary = asim.block_on(
        client,
        async {
            let mut rtts = Vec::new();
            for i in 0..5 {
                let t0 = aio::now().expect("inside a run");
                let mut s = TcpStream::connect("10.0.0.20:9000").await?;
                s.write_all(format!("hello {i}").as_bytes()).await?;
                let mut reply = String::new();
                s.read_to_string(&mut reply).await?;
                let rtt = aio::now().expect("inside a run").saturating_since(t0);
                println!("client: via proxy -> {reply:?} in {rtt:?} (virtual)");
                rtts.push(rtt);
            }
            let backend: SocketAddr = "10.0.0.30:8080".parse().expect("literal");
            let t0 = aio::now().expect("inside a run");
            let direct =
                tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(backend)).await;
            let waited = aio::now().expect("inside a run").saturating_since(t0);
            println!(
                "client: direct to the backend -> {} after {waited:?} (virtual)",
                if direct.is_err() { "timed out" } else { "connected?!" }
            );
            Ok::<_, std::io::Error>(rtts)
        },
        Duration::from_secs(60),
    )??;
    let mean = summary.iter().sum::<Duration>() / summary.len() as u32;
    println!("mean request time {mean:?} virtual; the whole run took {:?} real", wall.elapsed());
    Ok(())
}
