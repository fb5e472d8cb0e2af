//! The TCP header (RFC 9293 §3.1).
//!
//! The checked view covers the fixed 20 bytes: that is all a packet filter reads, and a filter
//! judges a segment with a nonsensical data offset the way tailscaled does, by its ports and
//! flags. Code that needs the options or the payload (segmentation, coalescing) asks
//! [`TcpSegment::checked_header_len`] where they start.

use super::{read_u16, read_u32, write_u16, write_u32, WireError};
use crate::packet::checksum;

/// Where each field sits in the header.
pub mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    /// Options, up to the data offset.
    pub const OPTIONS_START: usize = 20;
}

/// The header without options.
pub const HEADER_LEN: usize = 20;

/// Flag bits of [`TcpSegment::flags`].
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const CWR: u8 = 0x80;
}

/// A TCP segment at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        TcpSegment { buffer }
    }

    /// A view of a buffer that holds the fixed 20-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    pub fn seq(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ)
    }

    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK)
    }

    /// The data offset in bytes, as the header claims it (see [`Self::checked_header_len`]).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The data offset in bytes, once it is known to cover the fixed header and to lie within
    /// the buffer: where the payload starts.
    pub fn checked_header_len(&self) -> Result<usize, WireError> {
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > self.buffer.as_ref().len() {
            return Err(WireError::BadHeaderLength);
        }
        Ok(header_len)
    }

    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn urgent_pointer(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    pub fn set_seq(&mut self, seq: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ, seq);
    }

    pub fn set_ack_number(&mut self, ack: u32) {
        write_u32(self.buffer.as_mut(), field::ACK, ack);
    }

    /// Writes the data offset for `header_len` bytes (a multiple of 4, 20 to 60).
    pub fn set_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::DATA_OFFSET] = ((header_len / 4) as u8) << 4;
    }

    pub fn set_window(&mut self, window: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, window);
    }

    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }

    /// Computes the checksum over the whole buffer (header and payload) from the
    /// pseudo-header sum `pseudo_header` and stores it.
    pub fn fill_checksum(&mut self, pseudo_header: u64) {
        self.set_checksum(0);
        let sum = checksum::finish(checksum::add(pseudo_header, self.buffer.as_ref()));
        self.set_checksum(sum);
    }
}
