//! The TSMP message body (Tailscale Message Protocol, IP protocol 99): what follows the IP
//! header of the in-tunnel notices Tailscale nodes exchange. The first byte is the message
//! type; each type's fields follow at fixed offsets.

use super::{read_u16, write_u16, WireError};

/// Where each field sits in the body, by message type.
pub mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    /// Ping and pong: the opaque bytes the pong echoes.
    pub const ECHO_DATA: Range<usize> = 1..9;
    /// Pong: the responder's PeerAPI port, 0 for none.
    pub const PONG_PEERAPI_PORT: Range<usize> = 9..11;
    /// Rejected connection: the refused flow's IP protocol.
    pub const REJECT_PROTOCOL: usize = 1;
    pub const REJECT_REASON: usize = 2;
    /// The refused flow's source port: the originator's.
    pub const REJECT_SRC_PORT: Range<usize> = 3..5;
    pub const REJECT_DST_PORT: Range<usize> = 5..7;
    /// Optional flag bits (bit 0: "maybe broken", a non-fatal hint).
    pub const REJECT_FLAGS: usize = 7;
    /// Disco key advertisement: the sender's disco public key.
    pub const DISCO_KEY: Range<usize> = 1..33;
}

/// Message type bytes.
pub const TYPE_REJECTED: u8 = b'!';
pub const TYPE_PING: u8 = b'p';
pub const TYPE_PONG: u8 = b'o';
pub const TYPE_DISCO_ADVERTISEMENT: u8 = b'a';

/// Body lengths: the smallest each type may have (longer bodies carry fields added later,
/// which readers skip, as tailscaled's do), and the length weft writes.
pub const REJECTED_LEN: usize = 7;
pub const REJECTED_WITH_FLAGS_LEN: usize = 8;
pub const PING_LEN: usize = 9;
/// A pong without the PeerAPI port, as older nodes send it.
pub const PONG_MIN_LEN: usize = 9;
pub const PONG_LEN: usize = 11;
pub const DISCO_ADVERTISEMENT_LEN: usize = 33;

/// The smallest body of any type; shorter ones are not TSMP.
pub const MIN_LEN: usize = REJECTED_LEN;

/// Flag bit of [`field::REJECT_FLAGS`].
pub const REJECT_FLAG_MAYBE_BROKEN: u8 = 0x01;

/// A TSMP body in a buffer (the IP payload, exactly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsmpBody<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TsmpBody<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        TsmpBody { buffer }
    }

    /// A view of a body that holds at least the fields of its type; a body of an unknown
    /// type needs only the shortest length. The accessors of other types may then panic, so
    /// callers read the fields of [`Self::msg_type`] only.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
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

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn echo_data(&self) -> [u8; 8] {
        super::read_array(self.buffer.as_ref(), field::ECHO_DATA)
    }

    /// The pong's PeerAPI port; 0 when the pong is too short to carry one.
    pub fn pong_peerapi_port(&self) -> u16 {
        match self.buffer.as_ref().len() >= PONG_LEN {
            true => read_u16(self.buffer.as_ref(), field::PONG_PEERAPI_PORT),
            false => 0,
        }
    }

    pub fn reject_protocol(&self) -> u8 {
        self.buffer.as_ref()[field::REJECT_PROTOCOL]
    }

    pub fn reject_reason(&self) -> u8 {
        self.buffer.as_ref()[field::REJECT_REASON]
    }

    pub fn reject_src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::REJECT_SRC_PORT)
    }

    pub fn reject_dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::REJECT_DST_PORT)
    }

    /// The flags byte; 0 when the message has none.
    pub fn reject_flags(&self) -> u8 {
        self.buffer.as_ref().get(field::REJECT_FLAGS).copied().unwrap_or(0)
    }

    pub fn disco_key(&self) -> [u8; 32] {
        super::read_array(self.buffer.as_ref(), field::DISCO_KEY)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TsmpBody<T> {
    pub fn set_msg_type(&mut self, msg_type: u8) {
        self.buffer.as_mut()[field::TYPE] = msg_type;
    }

    pub fn set_echo_data(&mut self, data: [u8; 8]) {
        self.buffer.as_mut()[field::ECHO_DATA].copy_from_slice(&data);
    }

    pub fn set_pong_peerapi_port(&mut self, port: u16) {
        write_u16(self.buffer.as_mut(), field::PONG_PEERAPI_PORT, port);
    }

    pub fn set_reject_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::REJECT_PROTOCOL] = protocol;
    }

    pub fn set_reject_reason(&mut self, reason: u8) {
        self.buffer.as_mut()[field::REJECT_REASON] = reason;
    }

    pub fn set_reject_ports(&mut self, src: u16, dst: u16) {
        write_u16(self.buffer.as_mut(), field::REJECT_SRC_PORT, src);
        write_u16(self.buffer.as_mut(), field::REJECT_DST_PORT, dst);
    }
}
