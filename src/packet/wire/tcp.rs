//! The TCP header (RFC 9293 §3.1).
//!
//! The checked view covers the fixed 20 bytes: that is all a packet filter reads, and a filter
//! judges a segment with a nonsensical data offset the way tailscaled does, by its ports and
//! flags. Code that needs the options or the payload (segmentation, coalescing) asks
//! [`TcpSegment::checked_header_len`] where they start.

use super::{read_u16, read_u32, write_u16, write_u32, WireError};
use crate::packet::checksum;

/// Where each field sits in the header.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const SRC_PORT: Range<usize> = 0..2;
    pub(crate) const DST_PORT: Range<usize> = 2..4;
    pub(crate) const SEQ: Range<usize> = 4..8;
    pub(crate) const ACK: Range<usize> = 8..12;
    pub(crate) const DATA_OFFSET: usize = 12;
    pub(crate) const FLAGS: usize = 13;
    pub(crate) const WINDOW: Range<usize> = 14..16;
    pub(crate) const CHECKSUM: Range<usize> = 16..18;
    pub(crate) const URGENT: Range<usize> = 18..20;
}

/// The header without options.
pub(crate) const HEADER_LEN: usize = 20;

/// Flag bits of [`TcpSegment::flags`].
pub(crate) mod flags {
    pub(crate) const FIN: u8 = 0x01;
    pub(crate) const SYN: u8 = 0x02;
    pub(crate) const RST: u8 = 0x04;
    pub(crate) const PSH: u8 = 0x08;
    pub(crate) const ACK: u8 = 0x10;
    pub(crate) const CWR: u8 = 0x80;
}

/// A TCP segment at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpSegment<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        TcpSegment { buffer }
    }

    /// A view of a buffer that holds the fixed 20-byte header.
    pub(crate) fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    pub(crate) fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub(crate) fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    pub(crate) fn seq(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ)
    }

    #[cfg(test)]
    pub(crate) fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK)
    }

    /// The data offset in bytes, as the header claims it (see [`Self::checked_header_len`]).
    pub(crate) fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The data offset in bytes, once it is known to cover the fixed header and to lie within
    /// the buffer: where the payload starts.
    pub(crate) fn checked_header_len(&self) -> Result<usize, WireError> {
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > self.buffer.as_ref().len() {
            return Err(WireError::BadHeaderLength);
        }
        Ok(header_len)
    }

    pub(crate) fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    #[cfg(test)]
    pub(crate) fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    pub(crate) fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[cfg(test)]
    pub(crate) fn urgent_pointer(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
    pub(crate) fn set_src_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    pub(crate) fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    pub(crate) fn set_seq(&mut self, seq: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ, seq);
    }

    pub(crate) fn set_ack_number(&mut self, ack: u32) {
        write_u32(self.buffer.as_mut(), field::ACK, ack);
    }

    /// Writes the data offset for `header_len` bytes (a multiple of 4, 20 to 60).
    pub(crate) fn set_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::DATA_OFFSET] = ((header_len / 4) as u8) << 4;
    }

    pub(crate) fn set_window(&mut self, window: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, window);
    }

    pub(crate) fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    pub(crate) fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }

    /// Computes the checksum over the whole buffer (header and payload) from the
    /// pseudo-header sum `pseudo_header` and stores it.
    pub(crate) fn fill_checksum(&mut self, pseudo_header: u64) {
        self.set_checksum(0);
        let sum = checksum::finish(checksum::add(pseudo_header, self.buffer.as_ref()));
        self.set_checksum(sum);
    }
}
