//! Memory per stack, measured with a counting allocator (this file's only test, so no other
//! test allocates meanwhile). Run with `--nocapture` to see the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use kns_sim::Time;
use kns_sim::stack::apps::HttpServer;
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

fn per_stack(n: usize, setup: impl Fn(&mut SmolStack)) -> isize {
    let before = LIVE.load(Ordering::Relaxed);
    let mut stacks = Vec::with_capacity(n);
    let vec_bytes = LIVE.load(Ordering::Relaxed) - before;
    for i in 0..n {
        let addr = format!("10.{}.{}.2/24", i / 250, i % 250).parse().unwrap();
        let mut s =
            SmolStack::with_addresses(StackConfig::with_seed(i as u64), Time::ZERO, &[addr])
                .unwrap();
        setup(&mut s);
        let mut out = Vec::new();
        s.poll(Time::ZERO, &mut out);
        stacks.push(s);
    }
    let used = LIVE.load(Ordering::Relaxed) - before - vec_bytes;
    used / n as isize + std::mem::size_of::<SmolStack>() as isize
}

#[test]
fn bytes_per_stack() {
    let bare = per_stack(1000, |_| {});
    let http = per_stack(1000, |s| {
        s.spawn(HttpServer::fixed(80, "ok\n"));
    });
    let small = per_stack(1000, |s| {
        *s = SmolStack::with_addresses(
            StackConfig { tcp_buffer: 2048, ..StackConfig::with_seed(1) },
            Time::ZERO,
            &["10.0.0.2/24".parse().unwrap()],
        )
        .unwrap();
        s.spawn(HttpServer::fixed(80, "ok\n"));
    });
    println!(
        "bytes per stack: bare {bare}, with an HTTP server (16 KiB TCP buffers) {http}, \
         with 2 KiB buffers {small}"
    );
    assert!(bare > 0 && bare < 8 * 1024, "{bare}");
    // One listening socket holds its two buffers.
    assert!(http > bare + 2 * 16 * 1024, "{http}");
    assert!(small < http / 4, "{small}");
}
