//! Memory of idle pods running the built-in agnhost server, measured with a counting allocator
//! (this file's only test, so no other test allocates meanwhile). Run with `--nocapture` to see
//! the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use kns_core::flow::Protocol;
use kns_sim::Time;
use kns_sim::stack::apps::AgnhostServer;
use kns_sim::stack::{IpStack, SmolStack, StackConfig};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes per idle stack serving `ports` (after its first poll), over `n` stacks.
fn per_pod(n: usize, ports: &[(u16, Protocol)]) -> isize {
    let mut stacks = Vec::with_capacity(n);
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..n {
        let addr = format!("10.{}.{}.2/24", i / 250, i % 250).parse().unwrap();
        let mut s =
            SmolStack::with_addresses(StackConfig::with_seed(i as u64), Time::ZERO, &[addr])
                .unwrap();
        s.spawn(AgnhostServer::for_pod(format!("pod-{i}"), ports.iter().copied()));
        let mut out = Vec::new();
        s.poll(Time::ZERO, &mut out);
        stacks.push(s);
    }
    let used = LIVE.load(Ordering::Relaxed) - before;
    used / n as isize + std::mem::size_of::<SmolStack>() as isize
}

#[test]
fn ten_thousand_idle_agnhost_pods_fit_in_well_under_a_gib() {
    let n = 10_000;
    let none = per_pod(n, &[]);
    let tcp = per_pod(n, &[(80, Protocol::Tcp)]);
    let three = per_pod(n, &[(80, Protocol::Tcp), (53, Protocol::Udp), (9, Protocol::Sctp)]);
    println!(
        "bytes per idle pod: stack + agnhost without ports {none}, one TCP port {tcp}, \
         TCP + UDP + SCTP {three}; 10,000 pods with three ports: {} MiB",
        (three * n as isize) >> 20
    );
    // A listening TCP port costs its two 1 KiB buffers and smoltcp's socket, not 32 KiB.
    assert!(tcp - none < 6 * 1024, "{tcp} - {none}");
    // SCTP costs no socket: three ports cost little more than TCP + UDP.
    assert!(three - tcp < 4 * 1024, "{three} - {tcp}");
    // 10,000 pods with three ports each stay far below 1 GiB.
    assert!(three * (n as isize) < 256 << 20, "{three}");
}
