//! Packet capture on any interface, like `tcpdump -i IFACE`: frames received and sent by the
//! device are recorded with their virtual time and written as classic pcap (Ethernet link type,
//! nanosecond timestamps) to whatever writer the caller supplies.

use std::io::Write;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{Endianness, TsResolution};

use super::{CaptureId, IfaceId, NetnsId, Sim};
use crate::time::Time;

/// A capture could not be started or written.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The namespace or device does not exist.
    #[error("{0}")]
    Ip(#[from] super::IpError),
    /// No capture has this id.
    #[error("no capture {0}")]
    Unknown(u32),
    /// The pcap writer failed.
    #[error("pcap: {0}")]
    Pcap(#[from] pcap_file::PcapError),
}

pub(crate) struct Capture {
    pub(crate) iface: IfaceId,
    pub(crate) records: Vec<(Time, Vec<u8>)>,
}

impl Sim {
    /// Starts capturing every frame received or sent by `dev` in `ns` (returns the running
    /// capture if there is one already).
    pub fn capture(&mut self, ns: NetnsId, dev: &str) -> Result<CaptureId, CaptureError> {
        let iface = self.iface_id(ns, dev)?;
        if let Some(id) = self.ifaces[iface.0 as usize].capture {
            return Ok(id);
        }
        let id = CaptureId(self.captures.len() as u32);
        self.captures.push(Capture { iface, records: Vec::new() });
        self.ifaces[iface.0 as usize].capture = Some(id);
        Ok(id)
    }

    /// Number of frames captured so far by `id`.
    pub fn capture_len(&self, id: CaptureId) -> usize {
        self.captures.get(id.0 as usize).map_or(0, |c| c.records.len())
    }

    /// Writes what `id` captured so far as a pcap file into `out`; returns the frame count.
    pub fn write_pcap<W: Write>(&self, id: CaptureId, out: W) -> Result<usize, CaptureError> {
        let cap = self.captures.get(id.0 as usize).ok_or(CaptureError::Unknown(id.0))?;
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(out, header)?;
        for (t, frame) in &cap.records {
            let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
            w.write_packet(&PcapPacket::new(Duration::from_nanos(t.as_nanos()), len, frame))?;
        }
        Ok(cap.records.len())
    }

    /// Records `frame` if `iface` is being captured.
    #[inline]
    pub(crate) fn cap(&mut self, iface: IfaceId, frame: &[u8]) {
        if let Some(id) = self.ifaces[iface.0 as usize].capture {
            let now = self.now();
            let cap = &mut self.captures[id.0 as usize];
            debug_assert_eq!(cap.iface, iface);
            cap.records.push((now, frame.to_vec()));
        }
    }
}
