//! The IPv4 header (RFC 791).

use super::{read_array, read_u16, write_u16, WireError};
use crate::packet::checksum;
use std::net::Ipv4Addr;

/// Where each field sits in the header.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const VERSION_IHL: usize = 0;
    pub(crate) const DSCP_ECN: usize = 1;
    pub(crate) const TOTAL_LEN: Range<usize> = 2..4;
    pub(crate) const IDENT: Range<usize> = 4..6;
    pub(crate) const FLAGS_FRAGMENT: Range<usize> = 6..8;
    pub(crate) const TTL: usize = 8;
    pub(crate) const PROTOCOL: usize = 9;
    pub(crate) const CHECKSUM: Range<usize> = 10..12;
    pub(crate) const SRC: Range<usize> = 12..16;
    pub(crate) const DST: Range<usize> = 16..20;
}

/// The header without options.
pub(crate) const HEADER_LEN: usize = 20;
const MORE_FRAGMENTS: u16 = 0x2000;
const FRAGMENT_OFFSET: u16 = 0x1fff;

/// An IPv4 packet in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// A view the caller vouches for (a buffer it is filling in, or one it checked).
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// A view of a whole packet: version 4, header and options within the buffer, total
    /// length covering the header and within the buffer (bytes past it are ignored, as a
    /// receiving stack ignores link padding).
    pub(crate) fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_header_len()?;
        let total = packet.total_len();
        if total < packet.header_len() || total > packet.buffer.as_ref().len() {
            return Err(WireError::BadLength);
        }
        Ok(packet)
    }

    /// Checks only what the header accessors rely on, not the total length: for a TSO
    /// super-segment, whose length field the segmenter rewrites anyway. [`Self::payload`] is
    /// only safe after [`Self::new_checked`].
    pub(crate) fn check_header_len(&self) -> Result<(), WireError> {
        let bytes = self.buffer.as_ref();
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 {
            return Err(WireError::Version(self.version()));
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > bytes.len() {
            return Err(WireError::BadHeaderLength);
        }
        Ok(())
    }

    pub(crate) fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_IHL] >> 4
    }

    /// The IHL in bytes, options included: where the payload starts.
    pub(crate) fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VERSION_IHL] & 0x0f) * 4
    }

    /// Type of service (DSCP and ECN).
    #[cfg(test)]
    pub(crate) fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    pub(crate) fn total_len(&self) -> usize {
        usize::from(read_u16(self.buffer.as_ref(), field::TOTAL_LEN))
    }

    pub(crate) fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    pub(crate) fn more_fragments(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAGMENT) & MORE_FRAGMENTS != 0
    }

    /// Where this fragment's data goes in the original payload, in 8-byte units.
    pub(crate) fn fragment_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAGMENT) & FRAGMENT_OFFSET
    }

    /// A fragment of some larger packet: more to come, or not the first.
    pub(crate) fn is_fragment(&self) -> bool {
        self.more_fragments() || self.fragment_offset() != 0
    }

    #[cfg(test)]
    pub(crate) fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub(crate) fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub(crate) fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Whether the header checksum (options included) verifies.
    pub(crate) fn verify_checksum(&self) -> bool {
        let header = &self.buffer.as_ref()[..self.header_len()];
        checksum::finish(checksum::add(0, header)) == 0
    }

    pub(crate) fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::SRC))
    }

    pub(crate) fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::DST))
    }

    /// The bytes the total length covers after the header.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Writes version 4 and the IHL for `header_len` bytes (a multiple of 4, 20 to 60).
    pub(crate) fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VERSION_IHL] = 0x40 | (header_len / 4) as u8;
    }

    pub(crate) fn set_total_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::TOTAL_LEN, len);
    }

    pub(crate) fn set_ident(&mut self, ident: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, ident);
    }

    /// Sets or clears Don't Fragment, with no fragment offset.
    pub(crate) fn set_dont_fragment(&mut self, dont_fragment: bool) {
        let flags = if dont_fragment { 0x4000 } else { 0 };
        write_u16(self.buffer.as_mut(), field::FLAGS_FRAGMENT, flags);
    }

    pub(crate) fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    pub(crate) fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    pub(crate) fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }

    /// Computes the header checksum from scratch and stores it.
    pub(crate) fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::finish(checksum::add(0, &self.buffer.as_ref()[..self.header_len()]));
        self.set_checksum(sum);
    }

    pub(crate) fn set_src(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }

    pub(crate) fn set_dst(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }

    pub(crate) fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..self.total_len();
        &mut self.buffer.as_mut()[range]
    }
}
