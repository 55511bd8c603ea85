//! The in-memory `Medium::Ip` device between a [`SmolStack`](super::SmolStack) and kns's IP layer.
//!
//! Received datagrams wait in a FIFO until smoltcp takes them; transmitted datagrams are appended
//! to a vector the stack drains into [`IpStack::poll`](super::IpStack::poll)'s output. Checksums
//! stay on in both directions so captures and NAT see real checksums.

use std::collections::VecDeque;

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// A queue-backed IP device: whole IP datagrams in, whole IP datagrams out.
#[derive(Debug)]
pub(crate) struct QueueDevice {
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: Vec<Vec<u8>>,
    mtu: usize,
}

impl QueueDevice {
    pub(crate) fn new(mtu: usize) -> QueueDevice {
        QueueDevice { rx: VecDeque::new(), tx: Vec::new(), mtu }
    }
}

impl Device for QueueDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps.checksum = ChecksumCapabilities::default();
        caps
    }

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let buffer = self.rx.pop_front()?;
        Some((RxToken { buffer }, TxToken { tx: &mut self.tx }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        Some(TxToken { tx: &mut self.tx })
    }
}

/// A received datagram handed to smoltcp.
pub(crate) struct RxToken {
    buffer: Vec<u8>,
}

impl phy::RxToken for RxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.buffer)
    }
}

/// Room for one datagram smoltcp transmits.
pub(crate) struct TxToken<'a> {
    tx: &'a mut Vec<Vec<u8>>,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buffer = vec![0; len];
        let result = f(&mut buffer);
        self.tx.push(buffer);
        result
    }
}
