//! The IPv6 base header (RFC 8200). Extension headers are not walked here; the one weft reads,
//! the Fragment header, has its own view.

use super::{read_array, read_u16, read_u32, write_u16, write_u32, WireError};
use std::net::Ipv6Addr;

/// Where each field sits in the header.
pub(crate) mod field {
    use std::ops::Range;
    /// Version, traffic class and flow label.
    pub(crate) const VERSION_CLASS_FLOW: Range<usize> = 0..4;
    pub(crate) const PAYLOAD_LEN: Range<usize> = 4..6;
    pub(crate) const NEXT_HEADER: usize = 6;
    pub(crate) const HOP_LIMIT: usize = 7;
    pub(crate) const SRC: Range<usize> = 8..24;
    pub(crate) const DST: Range<usize> = 24..40;
}

pub(crate) const HEADER_LEN: usize = 40;
/// The flow label's bits in the first word.
const FLOW_LABEL: u32 = 0x000f_ffff;

/// An IPv6 packet in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// A view the caller vouches for (a buffer it is filling in, or one it checked).
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// A view of a whole packet: version 6, the base header and the payload length within the
    /// buffer (bytes past it are ignored).
    pub(crate) fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_header_len()?;
        if packet.total_len() > packet.buffer.as_ref().len() {
            return Err(WireError::BadLength);
        }
        Ok(packet)
    }

    /// Checks only what the header accessors rely on, not the payload length: for a TSO
    /// super-segment, whose length field the segmenter rewrites anyway. [`Self::payload`] is
    /// only safe after [`Self::new_checked`].
    pub(crate) fn check_header_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        match self.version() {
            6 => Ok(()),
            other => Err(WireError::Version(other)),
        }
    }

    pub(crate) fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_CLASS_FLOW.start] >> 4
    }

    /// The 20-bit flow label (TSMP carries its "IP ID" here).
    pub(crate) fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VERSION_CLASS_FLOW) & FLOW_LABEL
    }

    pub(crate) fn payload_len(&self) -> usize {
        usize::from(read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN))
    }

    /// Base header plus payload: the packet's length by its header.
    pub(crate) fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// The first Next Header: the transport protocol unless an extension header follows.
    pub(crate) fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    #[cfg(test)]
    pub(crate) fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub(crate) fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(self.buffer.as_ref(), field::SRC))
    }

    pub(crate) fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(self.buffer.as_ref(), field::DST))
    }

    /// The bytes the payload length covers after the base header.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Writes version 6 with traffic class and flow label 0.
    pub(crate) fn set_version(&mut self) {
        self.buffer.as_mut()[field::VERSION_CLASS_FLOW].copy_from_slice(&[0x60, 0, 0, 0]);
    }

    /// Sets the flow label (its low 20 bits), keeping version and traffic class.
    pub(crate) fn set_flow_label(&mut self, label: u32) {
        let word = read_u32(self.buffer.as_ref(), field::VERSION_CLASS_FLOW);
        let word = (word & !FLOW_LABEL) | (label & FLOW_LABEL);
        write_u32(self.buffer.as_mut(), field::VERSION_CLASS_FLOW, word);
    }

    pub(crate) fn set_payload_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, len);
    }

    pub(crate) fn set_next_header(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = protocol;
    }

    pub(crate) fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    pub(crate) fn set_src(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }

    pub(crate) fn set_dst(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }

    pub(crate) fn payload_mut(&mut self) -> &mut [u8] {
        let range = HEADER_LEN..self.total_len();
        &mut self.buffer.as_mut()[range]
    }
}
