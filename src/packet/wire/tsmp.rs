//! The TSMP message body (Tailscale Message Protocol, IP protocol 99): what follows the IP
//! header of the in-tunnel notices Tailscale nodes exchange. The first byte is the message
//! type; each type's fields follow at fixed offsets.

use super::{read_u16, write_u16, WireError};

/// Where each field sits in the body, by message type.
pub(crate) mod field {
    use std::ops::Range;
    pub(crate) const TYPE: usize = 0;
    /// Ping and pong: the opaque bytes the pong echoes.
    pub(crate) const ECHO_DATA: Range<usize> = 1..9;
    /// Pong: the responder's PeerAPI port, 0 for none.
    pub(crate) const PONG_PEERAPI_PORT: Range<usize> = 9..11;
    /// Rejected connection: the refused flow's IP protocol.
    pub(crate) const REJECT_PROTOCOL: usize = 1;
    pub(crate) const REJECT_REASON: usize = 2;
    /// The refused flow's source port: the originator's.
    pub(crate) const REJECT_SRC_PORT: Range<usize> = 3..5;
    pub(crate) const REJECT_DST_PORT: Range<usize> = 5..7;
    /// Optional flag bits (bit 0: "maybe broken", a non-fatal hint).
    pub(crate) const REJECT_FLAGS: usize = 7;
    /// Disco key advertisement: the sender's disco public key.
    pub(crate) const DISCO_KEY: Range<usize> = 1..33;
}

/// Message type bytes.
pub(crate) const TYPE_REJECTED: u8 = b'!';
pub(crate) const TYPE_PING: u8 = b'p';
pub(crate) const TYPE_PONG: u8 = b'o';
pub(crate) const TYPE_DISCO_ADVERTISEMENT: u8 = b'a';

/// Body lengths: the smallest each type may have (longer bodies carry fields added later,
/// which readers skip, as tailscaled's do), and the length weft writes.
pub(crate) const REJECTED_LEN: usize = 7;
pub(crate) const PING_LEN: usize = 9;
/// A pong without the PeerAPI port, as older nodes send it.
pub(crate) const PONG_MIN_LEN: usize = 9;
pub(crate) const PONG_LEN: usize = 11;
pub(crate) const DISCO_ADVERTISEMENT_LEN: usize = 33;

/// The smallest body of any type; shorter ones are not TSMP.
pub(crate) const MIN_LEN: usize = REJECTED_LEN;

/// Flag bit of [`field::REJECT_FLAGS`].
pub(crate) const REJECT_FLAG_MAYBE_BROKEN: u8 = 0x01;

/// A TSMP body in a buffer (the IP payload, exactly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TsmpBody<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TsmpBody<T> {
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        TsmpBody { buffer }
    }

    /// A view of a body that holds at least the fields of its type; a body of an unknown
    /// type needs only the shortest length. The accessors of other types may then panic, so
    /// callers read the fields of [`Self::msg_type`] only.
    pub(crate) fn new_checked(buffer: T) -> Result<Self, WireError> {
        let body = Self::new_unchecked(buffer);
        let len = body.buffer.as_ref().len();
        let needed = match body.buffer.as_ref().first() {
            None => return Err(WireError::Truncated),
            Some(&TYPE_PING) => PING_LEN,
            Some(&TYPE_PONG) => PONG_MIN_LEN,
            Some(&TYPE_DISCO_ADVERTISEMENT) => DISCO_ADVERTISEMENT_LEN,
            Some(_) => MIN_LEN,
        };
        if len < needed {
            return Err(WireError::Truncated);
        }
        Ok(body)
    }

    pub(crate) fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub(crate) fn echo_data(&self) -> [u8; 8] {
        super::read_array(self.buffer.as_ref(), field::ECHO_DATA)
    }

    /// The pong's PeerAPI port; 0 when the pong is too short to carry one.
    pub(crate) fn pong_peerapi_port(&self) -> u16 {
        match self.buffer.as_ref().len() >= PONG_LEN {
            true => read_u16(self.buffer.as_ref(), field::PONG_PEERAPI_PORT),
            false => 0,
        }
    }

    pub(crate) fn reject_protocol(&self) -> u8 {
        self.buffer.as_ref()[field::REJECT_PROTOCOL]
    }

    pub(crate) fn reject_reason(&self) -> u8 {
        self.buffer.as_ref()[field::REJECT_REASON]
    }

    pub(crate) fn reject_src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::REJECT_SRC_PORT)
    }

    pub(crate) fn reject_dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::REJECT_DST_PORT)
    }

    /// The flags byte; 0 when the message has none.
    pub(crate) fn reject_flags(&self) -> u8 {
        self.buffer.as_ref().get(field::REJECT_FLAGS).copied().unwrap_or(0)
    }

    pub(crate) fn disco_key(&self) -> [u8; 32] {
        super::read_array(self.buffer.as_ref(), field::DISCO_KEY)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TsmpBody<T> {
    pub(crate) fn set_msg_type(&mut self, msg_type: u8) {
        self.buffer.as_mut()[field::TYPE] = msg_type;
    }

    pub(crate) fn set_echo_data(&mut self, data: [u8; 8]) {
        self.buffer.as_mut()[field::ECHO_DATA].copy_from_slice(&data);
    }

    pub(crate) fn set_pong_peerapi_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::PONG_PEERAPI_PORT, port);
    }

    pub(crate) fn set_reject_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::REJECT_PROTOCOL] = protocol;
    }

    pub(crate) fn set_reject_reason(&mut self, reason: u8) {
        self.buffer.as_mut()[field::REJECT_REASON] = reason;
    }

    pub(crate) fn set_reject_ports(&mut self, src: u16, dst: u16) {
        write_u16(self.buffer.as_mut(), field::REJECT_SRC_PORT, src);
        write_u16(self.buffer.as_mut(), field::REJECT_DST_PORT, dst);
    }
}
