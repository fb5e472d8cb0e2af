//! DERP's framing: one type byte, a big-endian u32 payload length, the payload. Types and
//! limits from tailscale `derp/derp.go` (restated in /work/shared/protocol/derp.md §3).

use std::fmt;

pub(crate) const HEADER_LEN: usize = 5;
/// The largest payload this client accepts; a bigger frame means a broken or hostile stream.
pub(crate) const MAX_FRAME_LEN: usize = 1 << 20;
/// The largest packet (WireGuard or disco bytes) one SendPacket may carry.
pub(crate) const MAX_PACKET_LEN: usize = 64 << 10;
pub(crate) const KEY_LEN: usize = 32;
/// Opens the ServerKey frame: `"DERP🔑"`.
pub(crate) const MAGIC: [u8; 8] = *b"DERP\xF0\x9F\x94\x91";

/// Every frame type of protocol version 2, including the mesh ones a regular client never
/// sends, so that logs can name what arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FrameType {
    ServerKey = 0x01,
    ClientInfo = 0x02,
    ServerInfo = 0x03,
    SendPacket = 0x04,
    RecvPacket = 0x05,
    KeepAlive = 0x06,
    NotePreferred = 0x07,
    PeerGone = 0x08,
    PeerPresent = 0x09,
    ForwardPacket = 0x0a,
    WatchConns = 0x10,
    ClosePeer = 0x11,
    Ping = 0x12,
    Pong = 0x13,
    Health = 0x14,
    Restarting = 0x15,
}

impl FrameType {
    const ALL: [FrameType; 16] = [
        FrameType::ServerKey,
        FrameType::ClientInfo,
        FrameType::ServerInfo,
        FrameType::SendPacket,
        FrameType::RecvPacket,
        FrameType::KeepAlive,
        FrameType::NotePreferred,
        FrameType::PeerGone,
        FrameType::PeerPresent,
        FrameType::ForwardPacket,
        FrameType::WatchConns,
        FrameType::ClosePeer,
        FrameType::Ping,
        FrameType::Pong,
        FrameType::Health,
        FrameType::Restarting,
    ];

    pub(crate) fn from_byte(byte: u8) -> Option<FrameType> {
        FrameType::ALL.into_iter().find(|t| t.to_byte() == byte)
    }

    pub(crate) fn to_byte(self) -> u8 {
        self as u8
    }
}

/// One received frame. The type stays a raw byte: unknown types are legal and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    type_byte: u8,
    payload: Vec<u8>,
}

impl Frame {
    /// `None` for a type this protocol version does not define.
    pub(crate) fn frame_type(&self) -> Option<FrameType> {
        FrameType::from_byte(self.type_byte)
    }

    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    pub(crate) fn into_payload(self) -> Vec<u8> {
        self.payload
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OversizedFrame {
    pub type_byte: u8,
    pub len: usize,
}

impl fmt::Display for OversizedFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DERP frame type {:#04x} of {} bytes exceeds {MAX_FRAME_LEN}",
            self.type_byte, self.len
        )
    }
}

impl std::error::Error for OversizedFrame {}

/// Appends one frame whose payload is the concatenation of `parts`.
pub(crate) fn append_frame(out: &mut Vec<u8>, frame_type: FrameType, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.push(frame_type.to_byte());
    out.extend_from_slice(&(len as u32).to_be_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// Reassembles frames from a byte stream cut anywhere.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    buffered: Vec<u8>,
    /// Bytes at the front of `buffered` already returned as frames.
    consumed: usize,
}

impl FrameReader {
    pub(crate) fn new() -> FrameReader {
        FrameReader::default()
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buffered.drain(..self.consumed);
        self.consumed = 0;
        self.buffered.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` until one has fully arrived. An oversized
    /// header is an error as soon as it is seen, before its payload is buffered.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, OversizedFrame> {
        let rest = &self.buffered[self.consumed..];
        let Some((header, after)) = rest.split_first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let type_byte = header[0];
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(OversizedFrame { type_byte, len });
        }
        let Some(payload) = after.get(..len) else {
            return Ok(None);
        };
        let frame = Frame { type_byte, payload: payload.to_vec() };
        self.consumed += HEADER_LEN + len;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    #[test]
    fn type_bytes_round_trip_and_match_the_protocol() {
        for frame_type in FrameType::ALL {
            assert_eq!(FrameType::from_byte(frame_type.to_byte()), Some(frame_type));
        }
        let defined = (0..=255).filter(|b| FrameType::from_byte(*b).is_some()).count();
        assert_eq!(defined, FrameType::ALL.len());
        assert_eq!(FrameType::SendPacket.to_byte(), 0x04);
        assert_eq!(FrameType::Restarting.to_byte(), 0x15);
        assert_eq!(FrameType::from_byte(0x0b), None);
        assert_eq!(FrameType::from_byte(0x00), None);
    }

    #[test]
    fn frames_survive_any_split() {
        let mut stream = Vec::new();
        append_frame(&mut stream, FrameType::KeepAlive, &[]);
        append_frame(&mut stream, FrameType::RecvPacket, &[&[7; KEY_LEN], b"payload"]);
        assert_eq!(&stream[..HEADER_LEN], &[0x06, 0, 0, 0, 0]);
        assert_eq!(&stream[HEADER_LEN..2 * HEADER_LEN], &[0x05, 0, 0, 0, 39]);
        for cut in 0..=stream.len() {
            let mut reader = FrameReader::new();
            let mut frames = Vec::new();
            for piece in [&stream[..cut], &stream[cut..]] {
                reader.push(piece);
                while let Some(frame) = reader.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            assert_eq!(frames.len(), 2, "cut {cut}");
            assert_eq!(frames[0].frame_type(), Some(FrameType::KeepAlive));
            assert_eq!(frames[1].payload().len(), KEY_LEN + 7);
            assert_eq!(&frames[1].payload()[KEY_LEN..], b"payload");
        }
    }

    #[test]
    fn refuses_oversized_frames_from_the_header_alone() {
        let mut reader = FrameReader::new();
        reader.push(&[0x05, 0x00, 0x10, 0x00, 0x01]);
        assert_eq!(
            reader.next_frame(),
            Err(OversizedFrame { type_byte: 5, len: MAX_FRAME_LEN + 1 })
        );
        let mut at_limit = FrameReader::new();
        at_limit.push(&[0x05, 0x00, 0x10, 0x00, 0x00]);
        assert_eq!(at_limit.next_frame(), Ok(None));
    }

    #[test]
    fn random_streams_reassemble_the_same_in_random_pieces() {
        let mut rng = Rng::new(31);
        for _ in 0..300 {
            let mut stream = Vec::new();
            let mut sent = Vec::new();
            for _ in 0..rng.below(6) {
                let type_byte = rng.next_u64() as u8;
                let payload_len = rng.below(100);
                let payload = rng.bytes(payload_len);
                stream.push(type_byte);
                stream.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                stream.extend_from_slice(&payload);
                sent.push(Frame { type_byte, payload });
            }
            // Noise after the frames: never a panic, at most an oversized-header error.
            let noise_len = rng.below(12);
            stream.extend_from_slice(&rng.bytes(noise_len));
            let mut reader = FrameReader::new();
            let mut received = Vec::new();
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let (piece, after) = rest.split_at(1 + rng.below(rest.len()));
                rest = after;
                reader.push(piece);
                while let Ok(Some(frame)) = reader.next_frame() {
                    received.push(frame);
                }
            }
            assert_eq!(received[..sent.len()], sent[..]);
        }
    }
}
