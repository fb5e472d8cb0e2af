//! The UDP header (RFC 768).
//!
//! The checked view covers the 8-byte header; the length field is reported, not trusted:
//! the IP header already bounds the datagram, and a filter reads UDP ports the way
//! tailscaled does, whatever the length field says.

use super::{read_u16, write_u16, WireError};
use crate::packet::checksum;

/// Where each field sits in the header.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const SRC_PORT: Range<usize> = 0..2;
    pub(crate) const DST_PORT: Range<usize> = 2..4;
    pub(crate) const LENGTH: Range<usize> = 4..6;
    pub(crate) const CHECKSUM: Range<usize> = 6..8;
}

pub(crate) const HEADER_LEN: usize = 8;

/// A UDP datagram at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UdpDatagram<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        UdpDatagram { buffer }
    }

    /// A view of a buffer that holds the 8-byte header.
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

    /// Header plus data, as the header claims it.
    pub(crate) fn length(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// 0 means "no checksum" over IPv4 (RFC 768); IPv6 requires one.
    pub(crate) fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpDatagram<T> {
    pub(crate) fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }

    pub(crate) fn set_src_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    pub(crate) fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    pub(crate) fn set_length(&mut self, length: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, length);
    }

    /// Computes the checksum over the whole buffer (header and data) from the pseudo-header
    /// sum `pseudo_header` and stores it; a computed 0 is sent as 0xffff, since 0 means
    /// "none" (RFC 768).
    pub(crate) fn fill_checksum(&mut self, pseudo_header: u64) {
        self.set_checksum(0);
        let sum = checksum::finish(checksum::add(pseudo_header, self.buffer.as_ref()));
        self.set_checksum(if sum == 0 { 0xffff } else { sum });
    }
}
