//! The IPv6 Fragment extension header (RFC 8200 §4.5): the only extension header weft reads,
//! because a packet filter must know whether a fragment holds the transport header.

#[cfg(test)]
use super::read_u32;
use super::{read_u16, WireError};

/// Where each field sits in the header.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const NEXT_HEADER: usize = 0;
    pub(crate) const OFFSET_FLAGS: Range<usize> = 2..4;
    #[cfg(test)]
    pub(crate) const IDENT: Range<usize> = 4..8;
}

pub(crate) const HEADER_LEN: usize = 8;

/// An IPv6 Fragment header at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv6FragmentHeader<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6FragmentHeader<T> {
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        Ipv6FragmentHeader { buffer }
    }

    /// A view of a buffer that holds the whole 8-byte header.
    pub(crate) fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    /// The protocol of the fragmented payload.
    pub(crate) fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Where this fragment's data goes in the original payload, in 8-byte units.
    pub(crate) fn fragment_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OFFSET_FLAGS) >> 3
    }

    pub(crate) fn more_fragments(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::OFFSET_FLAGS) & 1 != 0
    }

    #[cfg(test)]
    pub(crate) fn ident(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::IDENT)
    }
}
