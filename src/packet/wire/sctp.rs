//! The SCTP common header (RFC 9260 §3.1), as far as a packet filter reads it: the ports.

#[cfg(test)]
use super::read_u32;
use super::{read_u16, WireError};

/// Where each field sits in the header.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const SRC_PORT: Range<usize> = 0..2;
    pub(crate) const DST_PORT: Range<usize> = 2..4;
    #[cfg(test)]
    pub(crate) const VERIFICATION_TAG: Range<usize> = 4..8;
    #[cfg(test)]
    pub(crate) const CHECKSUM: Range<usize> = 8..12;
}

pub(crate) const HEADER_LEN: usize = 12;

/// An SCTP packet at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SctpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SctpPacket<T> {
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        SctpPacket { buffer }
    }

    /// A view of a buffer that holds the whole 12-byte common header (chunks are not read).
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

    #[cfg(test)]
    pub(crate) fn verification_tag(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VERIFICATION_TAG)
    }

    /// The CRC32c over the packet (not verified here: the receiving host does).
    #[cfg(test)]
    pub(crate) fn checksum(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::CHECKSUM)
    }
}
