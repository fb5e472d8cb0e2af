//! The ICMP (RFC 792) and ICMPv6 (RFC 4443) message header. Both share the layout of type,
//! code and checksum, and their echo messages put the identifier and sequence number in the
//! same place, so one view serves both; the message type values differ.

use super::{read_u16, write_u16, WireError};
use crate::packet::checksum;

/// Where each field sits in the header.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const TYPE: usize = 0;
    pub(crate) const CODE: usize = 1;
    pub(crate) const CHECKSUM: Range<usize> = 2..4;
    /// Echo request and reply only: the rest of the header of other messages.
    pub(crate) const ECHO_IDENT: Range<usize> = 4..6;
    pub(crate) const ECHO_SEQ: Range<usize> = 6..8;
    /// Where an echo message's data starts.
    pub(crate) const ECHO_DATA_START: usize = 8;
}

/// Type, code, checksum and the four bytes every message has after them.
pub(crate) const HEADER_LEN: usize = 8;

pub(crate) const ECHO_REPLY_V4: u8 = 0;
pub(crate) const ECHO_REQUEST_V4: u8 = 8;
pub(crate) const ECHO_REQUEST_V6: u8 = 128;
pub(crate) const ECHO_REPLY_V6: u8 = 129;

/// An ICMP or ICMPv6 message at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IcmpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }

    /// A view of a buffer that holds the 8-byte header.
    pub(crate) fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    pub(crate) fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub(crate) fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub(crate) fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub(crate) fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    pub(crate) fn echo_seq(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ)
    }

    /// An echo message's data: everything after the header.
    #[cfg(test)]
    pub(crate) fn echo_data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ECHO_DATA_START..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    pub(crate) fn set_msg_type(&mut self, msg_type: u8) {
        self.buffer.as_mut()[field::TYPE] = msg_type;
    }

    #[cfg(test)]
    pub(crate) fn set_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    pub(crate) fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }

    pub(crate) fn set_echo_ident(&mut self, ident: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, ident);
    }

    pub(crate) fn set_echo_seq(&mut self, seq: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ, seq);
    }

    /// Computes the checksum over the whole buffer (the message) from `pseudo_header` (0 for
    /// ICMP; ICMPv6 also covers the IPv6 pseudo-header) and stores it.
    pub(crate) fn fill_checksum(&mut self, pseudo_header: u64) {
        self.set_checksum(0);
        let sum = checksum::finish(checksum::add(pseudo_header, self.buffer.as_ref()));
        self.set_checksum(sum);
    }

    pub(crate) fn echo_data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::ECHO_DATA_START..]
    }
}
