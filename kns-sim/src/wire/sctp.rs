//! SCTP (RFC 9260, IP protocol 132): the common header, its CRC32c checksum, and the chunks a
//! connection probe needs (INIT, INIT ACK with its state cookie, ABORT, COOKIE ECHO, COOKIE ACK).
//!
//! smoltcp has no SCTP, so this module follows smoltcp's wire shape: [`SctpPacket`] reads and
//! writes fields of a byte buffer, [`SctpRepr`] is the parsed meaning of one packet. Only the
//! first chunk of a packet is represented: INIT, INIT ACK and COOKIE ECHO must each open their
//! packet (RFC 9260 §6.10), and an ABORT answering an INIT travels alone.
//!
//! The checksum is CRC32c (Castagnoli) over the whole SCTP packet with the checksum field zeroed,
//! written least significant byte first (RFC 9260 Appendix A), as Linux and every SCTP stack do.
//! It covers no IP pseudo-header, so NAT that rewrites addresses leaves it valid.

use std::fmt;

/// The IP protocol number of SCTP.
pub const PROTOCOL: u8 = 132;

/// Length of the common header in bytes.
pub const HEADER_LEN: usize = 12;

/// Why an SCTP packet could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SctpError {
    /// Shorter than the common header, or a chunk runs past the end.
    #[error("truncated SCTP packet")]
    Truncated,
    /// The CRC32c does not match.
    #[error("bad SCTP checksum")]
    Checksum,
    /// No chunk after the common header.
    #[error("SCTP packet without chunks")]
    NoChunk,
    /// A chunk's fixed part is shorter than its type requires, or its length field is below 4.
    #[error("malformed SCTP chunk of type {0}")]
    Chunk(u8),
}

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const VTAG: Range<usize> = 4..8;
    pub const CHECKSUM: Range<usize> = 8..12;
}

/// Chunk type numbers (RFC 9260 §3.2).
pub mod chunk_type {
    /// INIT.
    pub const INIT: u8 = 1;
    /// INIT ACK.
    pub const INIT_ACK: u8 = 2;
    /// ABORT.
    pub const ABORT: u8 = 6;
    /// COOKIE ECHO.
    pub const COOKIE_ECHO: u8 = 10;
    /// COOKIE ACK.
    pub const COOKIE_ACK: u8 = 11;
}

/// The State Cookie parameter of an INIT ACK (RFC 9260 §3.3.3.1).
const PARAM_STATE_COOKIE: u16 = 7;
/// The ABORT flag saying the verification tag is the receiver's own (reflected).
const FLAG_T: u8 = 0x01;
/// Length of the fixed part of INIT and INIT ACK (after the chunk header).
const INIT_FIXED: usize = 16;

/// A read/write view of an SCTP packet in a byte buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SctpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SctpPacket<T> {
    /// Wraps a buffer without checking its length.
    pub fn new_unchecked(buffer: T) -> SctpPacket<T> {
        SctpPacket { buffer }
    }

    /// Wraps a buffer after checking it holds at least the common header.
    pub fn new_checked(buffer: T) -> Result<SctpPacket<T>, SctpError> {
        let p = SctpPacket::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer holds the common header.
    pub fn check_len(&self) -> Result<(), SctpError> {
        if self.buffer.as_ref().len() < HEADER_LEN { Err(SctpError::Truncated) } else { Ok(()) }
    }

    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn u32_at(&self, r: std::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[r];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// Verification tag.
    pub fn verification_tag(&self) -> u32 {
        self.u32_at(field::VTAG)
    }

    /// The checksum as stored (CRC32c, least significant byte first).
    pub fn checksum(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Whether the stored checksum matches the packet.
    pub fn verify_checksum(&self) -> bool {
        self.checksum() == compute_checksum(self.buffer.as_ref())
    }

    /// The chunks after the common header.
    pub fn chunks(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SctpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&port.to_be_bytes());
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&port.to_be_bytes());
    }

    /// Sets the verification tag.
    pub fn set_verification_tag(&mut self, tag: u32) {
        self.buffer.as_mut()[field::VTAG].copy_from_slice(&tag.to_be_bytes());
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        let sum = compute_checksum(self.buffer.as_ref());
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&sum.to_le_bytes());
    }

    /// The chunks after the common header, mutably.
    pub fn chunks_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// The CRC32c of an SCTP packet with its checksum field taken as zero.
fn compute_checksum(packet: &[u8]) -> u32 {
    if packet.len() < HEADER_LEN {
        return 0;
    }
    let mut crc = Crc32c::new();
    crc.update(&packet[..field::CHECKSUM.start]);
    crc.update(&[0; 4]);
    crc.update(&packet[HEADER_LEN..]);
    crc.finish()
}

/// CRC32c (Castagnoli, reflected polynomial 0x82F63B78), table driven.
#[derive(Debug, Clone, Copy)]
pub struct Crc32c(u32);

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32c {
    /// A CRC over no bytes yet.
    pub fn new() -> Crc32c {
        Crc32c(!0)
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    /// The CRC of everything fed.
    pub fn finish(self) -> u32 {
        !self.0
    }

    /// The CRC32c of `bytes`.
    pub fn checksum(bytes: &[u8]) -> u32 {
        let mut c = Crc32c::new();
        c.update(bytes);
        c.finish()
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Crc32c::new()
    }
}

/// The fixed fields shared by INIT and INIT ACK (RFC 9260 §3.3.2, §3.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitParams {
    /// The sender's tag: the peer puts it in the common header of everything it sends back.
    pub initiate_tag: u32,
    /// Advertised receiver window credit.
    pub a_rwnd: u32,
    /// Number of outbound streams.
    pub outbound_streams: u16,
    /// Maximum number of inbound streams.
    pub inbound_streams: u16,
    /// Initial TSN.
    pub initial_tsn: u32,
}

/// The first chunk of an SCTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SctpChunk<'a> {
    /// INIT: opens an association (optional parameters are not kept).
    Init(InitParams),
    /// INIT ACK with its State Cookie (other parameters are not kept).
    InitAck {
        /// The responder's parameters.
        params: InitParams,
        /// The opaque State Cookie the initiator must echo.
        cookie: &'a [u8],
    },
    /// ABORT (error causes are not kept).
    Abort {
        /// The T bit: the verification tag is the receiver's own, reflected (sent when no
        /// association exists, e.g. in answer to an INIT for a port nobody serves).
        reflected: bool,
    },
    /// COOKIE ECHO carrying the cookie of an INIT ACK.
    CookieEcho(&'a [u8]),
    /// COOKIE ACK.
    CookieAck,
    /// Any other chunk, by type.
    Other(u8),
}

impl SctpChunk<'_> {
    /// The chunk's length including its 4-byte header, before padding.
    fn len(&self) -> usize {
        match self {
            SctpChunk::Init(_) => 4 + INIT_FIXED,
            SctpChunk::InitAck { cookie, .. } => 4 + INIT_FIXED + 4 + cookie.len(),
            SctpChunk::Abort { .. } | SctpChunk::CookieAck | SctpChunk::Other(_) => 4,
            SctpChunk::CookieEcho(cookie) => 4 + cookie.len(),
        }
    }

    fn type_and_flags(&self) -> (u8, u8) {
        match self {
            SctpChunk::Init(_) => (chunk_type::INIT, 0),
            SctpChunk::InitAck { .. } => (chunk_type::INIT_ACK, 0),
            SctpChunk::Abort { reflected } => {
                (chunk_type::ABORT, if *reflected { FLAG_T } else { 0 })
            }
            SctpChunk::CookieEcho(_) => (chunk_type::COOKIE_ECHO, 0),
            SctpChunk::CookieAck => (chunk_type::COOKIE_ACK, 0),
            SctpChunk::Other(t) => (*t, 0),
        }
    }
}

/// The meaning of one SCTP packet: its common header and its first chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SctpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Verification tag (0 in an INIT).
    pub verification_tag: u32,
    /// The first chunk.
    pub chunk: SctpChunk<'a>,
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn parse_init(value: &[u8], ty: u8) -> Result<InitParams, SctpError> {
    if value.len() < INIT_FIXED {
        return Err(SctpError::Chunk(ty));
    }
    Ok(InitParams {
        initiate_tag: be32(&value[0..4]),
        a_rwnd: be32(&value[4..8]),
        outbound_streams: be16(&value[8..10]),
        inbound_streams: be16(&value[10..12]),
        initial_tsn: be32(&value[12..16]),
    })
}

fn emit_init(p: &InitParams, out: &mut [u8]) {
    out[0..4].copy_from_slice(&p.initiate_tag.to_be_bytes());
    out[4..8].copy_from_slice(&p.a_rwnd.to_be_bytes());
    out[8..10].copy_from_slice(&p.outbound_streams.to_be_bytes());
    out[10..12].copy_from_slice(&p.inbound_streams.to_be_bytes());
    out[12..16].copy_from_slice(&p.initial_tsn.to_be_bytes());
}

/// Finds the State Cookie among the variable parameters of an INIT ACK.
fn find_cookie(mut params: &[u8]) -> Option<&[u8]> {
    while params.len() >= 4 {
        let (ty, len) = (be16(&params[0..2]), usize::from(be16(&params[2..4])));
        if len < 4 || len > params.len() {
            return None;
        }
        if ty == PARAM_STATE_COOKIE {
            return Some(&params[4..len]);
        }
        params = &params[pad4(len).min(params.len())..];
    }
    None
}

impl<'a> SctpRepr<'a> {
    /// Parses a packet whose checksum is correct.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &SctpPacket<&'a T>,
    ) -> Result<SctpRepr<'a>, SctpError> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(SctpError::Checksum);
        }
        let data: &'a T = packet.buffer;
        let chunks = &data.as_ref()[HEADER_LEN..];
        if chunks.len() < 4 {
            return Err(SctpError::NoChunk);
        }
        let (ty, flags, len) = (chunks[0], chunks[1], usize::from(be16(&chunks[2..4])));
        if len < 4 {
            return Err(SctpError::Chunk(ty));
        }
        if len > chunks.len() {
            return Err(SctpError::Truncated);
        }
        let value = &chunks[4..len];
        let chunk = match ty {
            chunk_type::INIT => SctpChunk::Init(parse_init(value, ty)?),
            chunk_type::INIT_ACK => {
                let params = parse_init(value, ty)?;
                let cookie = find_cookie(&value[INIT_FIXED..]).ok_or(SctpError::Chunk(ty))?;
                SctpChunk::InitAck { params, cookie }
            }
            chunk_type::ABORT => SctpChunk::Abort { reflected: flags & FLAG_T != 0 },
            chunk_type::COOKIE_ECHO => SctpChunk::CookieEcho(value),
            chunk_type::COOKIE_ACK => SctpChunk::CookieAck,
            other => SctpChunk::Other(other),
        };
        Ok(SctpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            verification_tag: packet.verification_tag(),
            chunk,
        })
    }

    /// The length of the packet [`SctpRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + pad4(self.chunk.len())
    }

    /// Writes the packet into `packet` (exactly [`SctpRepr::buffer_len`] bytes) with its
    /// checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut SctpPacket<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_verification_tag(self.verification_tag);
        let len = self.chunk.len();
        let (ty, flags) = self.chunk.type_and_flags();
        let out = &mut packet.chunks_mut()[..pad4(len)];
        out.fill(0);
        out[0] = ty;
        out[1] = flags;
        // Chunk lengths are bounded by the packet, far below 64 KiB for what is emitted here.
        out[2..4].copy_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
        match &self.chunk {
            SctpChunk::Init(p) => emit_init(p, &mut out[4..]),
            SctpChunk::InitAck { params, cookie } => {
                emit_init(params, &mut out[4..]);
                let at = 4 + INIT_FIXED;
                out[at..at + 2].copy_from_slice(&PARAM_STATE_COOKIE.to_be_bytes());
                let plen = u16::try_from(4 + cookie.len()).unwrap_or(u16::MAX);
                out[at + 2..at + 4].copy_from_slice(&plen.to_be_bytes());
                out[at + 4..at + 4 + cookie.len()].copy_from_slice(cookie);
            }
            SctpChunk::CookieEcho(cookie) => out[4..4 + cookie.len()].copy_from_slice(cookie),
            SctpChunk::Abort { .. } | SctpChunk::CookieAck | SctpChunk::Other(_) => {}
        }
        packet.fill_checksum();
    }

    /// The packet as a new byte vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut SctpPacket::new_unchecked(&mut buf[..]));
        buf
    }
}

impl fmt::Display for SctpRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCTP src={} dst={} vtag={:#x} ",
            self.src_port, self.dst_port, self.verification_tag
        )?;
        match self.chunk {
            SctpChunk::Init(p) => write!(f, "INIT itag={:#x}", p.initiate_tag),
            SctpChunk::InitAck { params, cookie } => {
                write!(f, "INIT ACK itag={:#x} cookie={}B", params.initiate_tag, cookie.len())
            }
            SctpChunk::Abort { reflected } => {
                write!(f, "ABORT{}", if reflected { " T" } else { "" })
            }
            SctpChunk::CookieEcho(c) => write!(f, "COOKIE ECHO {}B", c.len()),
            SctpChunk::CookieAck => f.write_str("COOKIE ACK"),
            SctpChunk::Other(t) => write!(f, "chunk type {t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_vectors() {
        // The CRC catalogue's check value for CRC-32C.
        assert_eq!(Crc32c::checksum(b"123456789"), 0xE306_9283);
        // RFC 3720 §B.4: 32 bytes of zeros, of 0xff, and an ascending sequence.
        assert_eq!(Crc32c::checksum(&[0; 32]), 0x8A91_36AA);
        assert_eq!(Crc32c::checksum(&[0xff; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(Crc32c::checksum(&ascending), 0x46DD_794E);
        // Feeding in pieces gives the same result.
        let mut c = Crc32c::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xE306_9283);
    }

    /// An INIT from port 40000 to 80: common header, then a 20-byte INIT chunk.
    const INIT_BYTES: [u8; 32] = [
        0x9c, 0x40, 0x00, 0x50, // ports 40000 -> 80
        0x00, 0x00, 0x00, 0x00, // verification tag 0
        0x00, 0x00, 0x00, 0x00, // checksum (filled below)
        0x01, 0x00, 0x00, 0x14, // INIT, flags 0, length 20
        0x11, 0x22, 0x33, 0x44, // initiate tag
        0x00, 0x01, 0x00, 0x00, // a_rwnd 65536
        0x00, 0x0a, 0xff, 0xff, // 10 outbound, 65535 inbound streams
        0x00, 0x00, 0x00, 0x01, // initial TSN 1
    ];

    fn init_bytes() -> Vec<u8> {
        let mut b = INIT_BYTES.to_vec();
        // Computed independently: the CRC over the packet with a zero checksum field, stored
        // least significant byte first.
        let crc = Crc32c::checksum(&b);
        b[8..12].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn init_repr() -> SctpRepr<'static> {
        SctpRepr {
            src_port: 40000,
            dst_port: 80,
            verification_tag: 0,
            chunk: SctpChunk::Init(InitParams {
                initiate_tag: 0x1122_3344,
                a_rwnd: 65536,
                outbound_streams: 10,
                inbound_streams: 65535,
                initial_tsn: 1,
            }),
        }
    }

    #[test]
    fn init_deconstruct_parse_and_emit() {
        let bytes = init_bytes();
        let p = SctpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.verification_tag()), (40000, 80, 0));
        assert!(p.verify_checksum());
        assert_eq!(SctpRepr::parse(&p).unwrap(), init_repr());
        assert_eq!(init_repr().to_bytes(), bytes);
        assert_eq!(init_repr().buffer_len(), 32);
        assert_eq!(init_repr().to_string(), "SCTP src=40000 dst=80 vtag=0x0 INIT itag=0x11223344");
    }

    #[test]
    fn corrupted_or_truncated_packets_are_rejected() {
        let mut bytes = init_bytes();
        bytes[20] ^= 1;
        assert_eq!(
            SctpRepr::parse(&SctpPacket::new_unchecked(&bytes[..])),
            Err(SctpError::Checksum)
        );
        assert_eq!(SctpPacket::new_checked(&bytes[..8]).unwrap_err(), SctpError::Truncated);
        // A chunk length past the end.
        let mut short = init_bytes();
        short.truncate(28);
        SctpPacket::new_unchecked(&mut short[..]).fill_checksum();
        assert_eq!(
            SctpRepr::parse(&SctpPacket::new_unchecked(&short[..])),
            Err(SctpError::Truncated)
        );
        // Only the header.
        let mut empty = init_bytes();
        empty.truncate(12);
        SctpPacket::new_unchecked(&mut empty[..]).fill_checksum();
        assert_eq!(
            SctpRepr::parse(&SctpPacket::new_unchecked(&empty[..])),
            Err(SctpError::NoChunk)
        );
    }

    #[test]
    fn init_ack_cookie_round_trips_with_padding() {
        let cookie = [7u8; 6];
        let repr = SctpRepr {
            src_port: 80,
            dst_port: 40000,
            verification_tag: 0x1122_3344,
            chunk: SctpChunk::InitAck {
                params: InitParams {
                    initiate_tag: 0x5566_7788,
                    a_rwnd: 1500,
                    outbound_streams: 1,
                    inbound_streams: 1,
                    initial_tsn: 9,
                },
                cookie: &cookie,
            },
        };
        let bytes = repr.to_bytes();
        // 12 header + (4 + 16 + 4 + 6 = 30, padded to 32).
        assert_eq!(bytes.len(), 44);
        assert_eq!(&bytes[14..16], &30u16.to_be_bytes(), "chunk length excludes padding");
        assert_eq!(&bytes[32..36], &[0, 7, 0, 10], "State Cookie parameter header");
        assert_eq!(&bytes[42..44], &[0, 0], "padding is zero");
        let p = SctpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(SctpRepr::parse(&p).unwrap(), repr);
        // An INIT ACK without a cookie is malformed.
        let mut no_cookie = bytes.clone();
        no_cookie[33] = 5;
        SctpPacket::new_unchecked(&mut no_cookie[..]).fill_checksum();
        assert_eq!(
            SctpRepr::parse(&SctpPacket::new_unchecked(&no_cookie[..])),
            Err(SctpError::Chunk(chunk_type::INIT_ACK))
        );
    }

    #[test]
    fn abort_with_t_bit_and_other_chunks() {
        let abort = SctpRepr {
            src_port: 80,
            dst_port: 40000,
            verification_tag: 0x1122_3344,
            chunk: SctpChunk::Abort { reflected: true },
        };
        let bytes = abort.to_bytes();
        assert_eq!(&bytes[12..16], &[6, 1, 0, 4]);
        assert_eq!(SctpRepr::parse(&SctpPacket::new_unchecked(&bytes[..])).unwrap(), abort);
        for chunk in [SctpChunk::CookieAck, SctpChunk::CookieEcho(b"abc"), SctpChunk::Other(0)] {
            let r = SctpRepr { chunk, ..abort };
            let b = r.to_bytes();
            assert_eq!(SctpRepr::parse(&SctpPacket::new_unchecked(&b[..])).unwrap(), r);
        }
    }
}
