//! Wire constants and frame headers of controlbase (tailscale `control/controlbase/messages.go`
//! and `conn.go`). All lengths are big-endian u16.

use super::NoiseError;

pub(super) const MSG_TYPE_INITIATION: u8 = 1;
pub(super) const MSG_TYPE_RESPONSE: u8 = 2;
/// Unauthenticated human-readable refusal from the server.
pub(super) const MSG_TYPE_ERROR: u8 = 3;
pub(super) const MSG_TYPE_RECORD: u8 = 4;

/// Header of every message but the initiation: type (1) + length (2).
pub(super) const HEADER_LEN: usize = 3;
/// The initiation alone also carries the protocol version: version (2) + type (1) + length (2).
pub(super) const INITIATION_HEADER_LEN: usize = 5;

pub(super) const KEY_LEN: usize = 32;
pub(super) const TAG_LEN: usize = 16;

/// Initiation payload: ephemeral key, encrypted machine key + tag, tag over the empty payload.
pub(super) const INITIATION_PAYLOAD_LEN: usize = KEY_LEN + (KEY_LEN + TAG_LEN) + TAG_LEN;
/// The whole initiation message (101 bytes), sent base64-encoded in the upgrade request.
pub(crate) const INITIATION_LEN: usize = INITIATION_HEADER_LEN + INITIATION_PAYLOAD_LEN;
/// Response payload: the server's ephemeral key and the tag over the empty payload.
pub(super) const RESPONSE_PAYLOAD_LEN: usize = KEY_LEN + TAG_LEN;
/// The whole handshake response (51 bytes), the first bytes of the upgraded stream.
pub(crate) const RESPONSE_LEN: usize = HEADER_LEN + RESPONSE_PAYLOAD_LEN;

/// The largest record on the wire, header included; larger ones are a fatal error.
pub(crate) const MAX_RECORD_LEN: usize = 4096;
pub(super) const MAX_CIPHERTEXT_LEN: usize = MAX_RECORD_LEN - HEADER_LEN;
/// The most plaintext one record carries; writers split longer input.
pub(crate) const MAX_PLAINTEXT_LEN: usize = MAX_CIPHERTEXT_LEN - TAG_LEN;

/// The type and announced length of a 3-byte message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameHeader {
    pub message_type: u8,
    pub length: usize,
}

impl FrameHeader {
    /// Reads the header at the front of `bytes`, or `None` while fewer than 3 bytes exist.
    pub(super) fn peek(bytes: &[u8]) -> Option<FrameHeader> {
        match bytes {
            [message_type, high, low, ..] => Some(FrameHeader {
                message_type: *message_type,
                length: usize::from(u16::from_be_bytes([*high, *low])),
            }),
            _ => None,
        }
    }

    pub(super) fn encode(message_type: u8, length: usize) -> [u8; HEADER_LEN] {
        let [high, low] = (length as u16).to_be_bytes();
        [message_type, high, low]
    }

    /// Header plus payload.
    pub(super) fn total_len(&self) -> usize {
        HEADER_LEN + self.length
    }
}

/// How far a server reply (response or refusal) at the front of a byte stream has arrived.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReplyProgress<'a> {
    Incomplete,
    Response(&'a [u8; RESPONSE_LEN]),
}

/// Classifies the server's handshake reply. A refusal becomes `ServerRefused` once its whole
/// text has arrived, so the caller sees the server's reason rather than a truncation.
pub(super) fn parse_reply(bytes: &[u8]) -> Result<ReplyProgress<'_>, NoiseError> {
    match bytes.first() {
        None | Some(&MSG_TYPE_RESPONSE | &MSG_TYPE_ERROR) => {}
        Some(&other) => return Err(NoiseError::UnexpectedMessageType(other)),
    }
    let Some(header) = FrameHeader::peek(bytes) else {
        return Ok(ReplyProgress::Incomplete);
    };
    match header.message_type {
        MSG_TYPE_RESPONSE if header.length != RESPONSE_PAYLOAD_LEN => {
            Err(NoiseError::WrongResponseLength(header.length))
        }
        MSG_TYPE_RESPONSE => match bytes.get(..RESPONSE_LEN).and_then(|w| w.try_into().ok()) {
            Some(whole) => Ok(ReplyProgress::Response(whole)),
            None => Ok(ReplyProgress::Incomplete),
        },
        MSG_TYPE_ERROR => match bytes.get(HEADER_LEN..header.total_len()) {
            Some(text) => {
                Err(NoiseError::ServerRefused(String::from_utf8_lossy(text).into_owned()))
            }
            None => Ok(ReplyProgress::Incomplete),
        },
        other => Err(NoiseError::UnexpectedMessageType(other)),
    }
}
