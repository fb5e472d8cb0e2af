//! The IPv6 Fragment extension header (RFC 8200 §4.5): the only extension header weft reads,
//! because a packet filter must know whether a fragment holds the transport header.

use super::{read_u16, read_u32, WireError};

/// Where each field sits in the header.
pub mod field {
    use std::ops::Range;
    pub const NEXT_HEADER: usize = 0;
    pub const OFFSET_FLAGS: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..8;
}

pub const HEADER_LEN: usize = 8;

/// An IPv6 Fragment header at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6FragmentHeader<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6FragmentHeader<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6FragmentHeader { buffer }
    }

    /// A view of a buffer that holds the whole 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    /// The protocol of the fragmented payload.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Where this fragment's data goes in the original payload, in 8-byte units.
    pub fn fragment_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OFFSET_FLAGS) >> 3
    }

    pub fn more_fragments(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::OFFSET_FLAGS) & 1 != 0
    }

    pub fn ident(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::IDENT)
    }
}
