//! The SCTP common header (RFC 9260 §3.1), as far as a packet filter reads it: the ports.

use super::{read_u16, read_u32, WireError};

/// Where each field sits in the header.
pub mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const VERIFICATION_TAG: Range<usize> = 4..8;
    pub const CHECKSUM: Range<usize> = 8..12;
}

pub const HEADER_LEN: usize = 12;

/// An SCTP packet at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SctpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SctpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        SctpPacket { buffer }
    }

    /// A view of a buffer that holds the whole 12-byte common header (chunks are not read).
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

    pub fn verification_tag(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VERIFICATION_TAG)
    }

    /// The CRC32c over the packet (not verified here: the receiving host does).
    pub fn checksum(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::CHECKSUM)
    }
}
