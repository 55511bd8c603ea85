//! The async-pod examples, run as functions: what they print is what they promise.

#[allow(dead_code)]
#[path = "../examples/aio_http_spread.rs"]
mod aio_http_spread;
#[allow(dead_code)]
#[path = "../examples/aio_proxy.rs"]
mod aio_proxy;

use std::time::Duration;

#[test]
fn http_spread_reaches_every_backend_and_repeats_with_its_seed() {
    let a = aio_http_spread::run(1, 100).unwrap();
    assert_eq!(a.per_backend.len(), 4, "{}", a.report);
    assert!(a.per_backend.values().all(|(_, n)| *n > 0), "every backend served:\n{}", a.report);
    assert_eq!(a.per_backend.values().map(|(_, n)| n).sum::<usize>(), 100);
    let nodes: std::collections::BTreeSet<_> = a.per_backend.values().map(|(n, _)| n).collect();
    assert_eq!(nodes.len(), 3, "the replicas spread over the three nodes:\n{}", a.report);
    assert!(a.report.contains("lookup_host(\"web:80\") from the client -> [10.96.0.11:80]"));
    // Every request: the server's 1-4 ms of work, plus lookup and connect over 250 µs links.
    assert!(
        a.latencies.iter().all(|l| *l > Duration::from_millis(1) && *l < Duration::from_millis(10))
    );
    let again = aio_http_spread::run(1, 100).unwrap();
    assert_eq!(again.report, a.report, "same seed, same report");
    let other = aio_http_spread::run(2, 100).unwrap();
    assert_ne!(other.per_backend, a.per_backend, "another seed, another spread");
}

#[test]
fn the_proxy_is_the_only_way_to_the_backend() {
    let run = aio_proxy::run(7).unwrap();
    let expected: Vec<String> = (0..5).map(|i| format!("HELLO {i}")).collect();
    assert_eq!(run.via_proxy, expected, "{}", run.report);
    assert!(run.direct_timed_out, "{}", run.report);
    // tokio's timer fires on the first millisecond tick at or after its deadline.
    let waited = run.direct_waited;
    assert!(waited >= Duration::from_secs(3) && waited < Duration::from_millis(3001), "{waited:?}");
    assert_eq!(run.dropped, 3, "the SYN and its retries at 1 s and 3 s:\n{}", run.report);
    assert_eq!(aio_proxy::run(7).unwrap().report, run.report, "same seed, same report");
}
