//! Ephemeral port allocation. smoltcp refuses local port 0, so kns picks client ports itself:
//! sequentially through Linux's default range (`net.ipv4.ip_local_port_range = 32768 60999`),
//! starting at an offset derived from the stack's seed, skipping ports already in use.

use std::collections::BTreeMap;

/// The first ephemeral port (Linux default).
pub const EPHEMERAL_FIRST: u16 = 32768;
/// The last ephemeral port (Linux default).
pub const EPHEMERAL_LAST: u16 = 60999;

/// The transport protocol a port belongs to (TCP, UDP and SCTP ports are separate spaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// Tracks the local ports in use and hands out ephemeral ones deterministically.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    next: u16,
    in_use: BTreeMap<(Transport, u16), u32>,
}

impl PortAllocator {
    /// An allocator whose first ephemeral port is derived from `seed`.
    pub fn new(seed: u64) -> PortAllocator {
        let span = u64::from(EPHEMERAL_LAST - EPHEMERAL_FIRST) + 1;
        // The remainder is below `span` (28232), so it fits in a u16.
        let offset = u16::try_from(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) % span).unwrap_or(0);
        PortAllocator { next: EPHEMERAL_FIRST + offset, in_use: BTreeMap::new() }
    }

    /// Takes the next free ephemeral port, or `None` when the whole range is in use.
    pub fn allocate(&mut self, proto: Transport) -> Option<u16> {
        let span = u32::from(EPHEMERAL_LAST - EPHEMERAL_FIRST) + 1;
        for _ in 0..span {
            let port = self.next;
            self.next = if port == EPHEMERAL_LAST { EPHEMERAL_FIRST } else { port + 1 };
            if !self.in_use.contains_key(&(proto, port)) {
                self.acquire(proto, port);
                return Some(port);
            }
        }
        None
    }

    /// Marks `port` as used once more (several listening sockets may share a port).
    pub fn acquire(&mut self, proto: Transport, port: u16) {
        *self.in_use.entry((proto, port)).or_insert(0) += 1;
    }

    /// Releases one use of `port`.
    pub fn release(&mut self, proto: Transport, port: u16) {
        if let Some(count) = self.in_use.get_mut(&(proto, port)) {
            *count -= 1;
            if *count == 0 {
                self.in_use.remove(&(proto, port));
            }
        }
    }

    /// Whether `port` is in use for `proto`.
    pub fn is_in_use(&self, proto: Transport, port: u16) -> bool {
        self.in_use.contains_key(&(proto, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_from_seed_and_skips_used_ports() {
        let mut a = PortAllocator::new(7);
        let mut b = PortAllocator::new(7);
        let first = a.allocate(Transport::Tcp).unwrap();
        assert_eq!(b.allocate(Transport::Tcp), Some(first));
        assert!((EPHEMERAL_FIRST..=EPHEMERAL_LAST).contains(&first));
        // The next port is in use by a listener: it is skipped.
        let taken = if first == EPHEMERAL_LAST { EPHEMERAL_FIRST } else { first + 1 };
        a.acquire(Transport::Tcp, taken);
        let second = a.allocate(Transport::Tcp).unwrap();
        assert_ne!(second, taken);
        assert_ne!(second, first);
        // UDP has its own space.
        assert!(!a.is_in_use(Transport::Udp, first));
        a.release(Transport::Tcp, first);
        assert!(!a.is_in_use(Transport::Tcp, first));
        // A different seed starts elsewhere.
        assert_ne!(PortAllocator::new(8).allocate(Transport::Tcp), Some(first));
    }

    #[test]
    fn wraps_and_exhausts() {
        let mut a = PortAllocator::new(0);
        let span = usize::from(EPHEMERAL_LAST - EPHEMERAL_FIRST) + 1;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..span {
            seen.insert(a.allocate(Transport::Udp).unwrap());
        }
        assert_eq!(seen.len(), span);
        assert_eq!(a.allocate(Transport::Udp), None);
    }
}
