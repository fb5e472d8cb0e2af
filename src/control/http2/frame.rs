//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header and the typed frames, parsed from and
//! written to bytes. Checks here are those a frame can fail on its own (sizes, stream 0 or
//! not, padding); rules that need connection state live in the connection.

use super::error::{ErrorCode, H2Error};

pub(crate) const HEADER_LEN: usize = 9;

/// The frame size every peer must accept before SETTINGS say otherwise, and the one we keep
/// advertising: it bounds our input buffer at one frame of this size.
pub(crate) const DEFAULT_MAX_FRAME_SIZE: usize = 16_384;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const FLAG_END_STREAM: u8 = 0x1;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

/// Stream identifiers are 31 bits; the top bit on the wire is reserved and ignored.
const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// A stream identifier. 0 names the connection itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamId(pub u32);

impl StreamId {
    pub(crate) const CONNECTION: StreamId = StreamId(0);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Priority {
    pub exclusive: bool,
    pub dependency: StreamId,
    pub weight: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// `padding` is the pad length when the PADDED flag is set; the padding still counts
    /// against flow control.
    Data {
        stream: StreamId,
        end_stream: bool,
        padding: Option<u8>,
        data: Vec<u8>,
    },
    Headers {
        stream: StreamId,
        end_stream: bool,
        end_headers: bool,
        padding: Option<u8>,
        priority: Option<Priority>,
        fragment: Vec<u8>,
    },
    Priority {
        stream: StreamId,
        priority: Priority,
    },
    RstStream {
        stream: StreamId,
        code: ErrorCode,
    },
    Settings {
        ack: bool,
        values: Vec<(u16, u32)>,
    },
    PushPromise {
        stream: StreamId,
        promised: StreamId,
        end_headers: bool,
        fragment: Vec<u8>,
    },
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    GoAway {
        last_stream: StreamId,
        code: ErrorCode,
        debug: Vec<u8>,
    },
    WindowUpdate {
        stream: StreamId,
        increment: u32,
    },
    Continuation {
        stream: StreamId,
        end_headers: bool,
        fragment: Vec<u8>,
    },
    /// Frame types this client does not know must be ignored (RFC 9113 §4.1).
    Unknown {
        kind: u8,
        stream: StreamId,
    },
}

fn protocol_error(reason: &'static str) -> H2Error {
    H2Error::protocol(ErrorCode::PROTOCOL_ERROR, reason)
}

fn frame_size_error(reason: &'static str) -> H2Error {
    H2Error::protocol(ErrorCode::FRAME_SIZE_ERROR, reason)
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Parses the first frame in `bytes`. `Ok(None)` means more bytes are needed; the length is
/// checked against `max_frame_size` before waiting for the payload, so a hostile length
/// cannot make the caller buffer megabytes.
pub(crate) fn parse(
    bytes: &[u8],
    max_frame_size: usize,
) -> Result<Option<(Frame, usize)>, H2Error> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let length =
        usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    if length > max_frame_size {
        return Err(frame_size_error("frame larger than our MAX_FRAME_SIZE"));
    }
    let Some(payload) = bytes.get(HEADER_LEN..HEADER_LEN + length) else {
        return Ok(None);
    };
    let (kind, flags) = (header[3], header[4]);
    let stream = StreamId(read_u32(&header[5..9]) & STREAM_ID_MASK);
    let frame = decode(kind, flags, stream, payload)?;
    Ok(Some((frame, HEADER_LEN + length)))
}

fn decode(kind: u8, flags: u8, stream: StreamId, payload: &[u8]) -> Result<Frame, H2Error> {
    let has = |flag: u8| flags & flag != 0;
    let on_stream =
        matches!(kind, DATA | HEADERS | PRIORITY | RST_STREAM | PUSH_PROMISE | CONTINUATION);
    let on_connection = matches!(kind, SETTINGS | PING | GOAWAY);
    if on_stream && stream == StreamId::CONNECTION {
        return Err(protocol_error("stream frame on stream 0"));
    }
    if on_connection && stream != StreamId::CONNECTION {
        return Err(protocol_error("connection frame on a stream"));
    }
    Ok(match kind {
        DATA => {
            let (padding, data) = strip_padding(has(FLAG_PADDED), payload)?;
            Frame::Data { stream, end_stream: has(FLAG_END_STREAM), padding, data: data.to_vec() }
        }
        HEADERS => {
            let (padding, rest) = strip_padding(has(FLAG_PADDED), payload)?;
            let (priority, fragment) = match has(FLAG_PRIORITY) {
                true => {
                    let fields = rest
                        .get(..5)
                        .ok_or_else(|| frame_size_error("HEADERS too short for priority"))?;
                    (Some(parse_priority(fields)), &rest[5..])
                }
                false => (None, rest),
            };
            Frame::Headers {
                stream,
                end_stream: has(FLAG_END_STREAM),
                end_headers: has(FLAG_END_HEADERS),
                padding,
                priority,
                fragment: fragment.to_vec(),
            }
        }
        PRIORITY => {
            let fields = exact::<5>(payload, "PRIORITY must be 5 bytes")?;
            Frame::Priority { stream, priority: parse_priority(&fields) }
        }
        RST_STREAM => {
            let code = exact::<4>(payload, "RST_STREAM must be 4 bytes")?;
            Frame::RstStream { stream, code: ErrorCode(u32::from_be_bytes(code)) }
        }
        SETTINGS => parse_settings(has(FLAG_ACK), payload)?,
        PUSH_PROMISE => {
            let (_, rest) = strip_padding(has(FLAG_PADDED), payload)?;
            let promised =
                rest.get(..4).ok_or_else(|| frame_size_error("PUSH_PROMISE too short"))?;
            Frame::PushPromise {
                stream,
                promised: StreamId(read_u32(promised) & STREAM_ID_MASK),
                end_headers: has(FLAG_END_HEADERS),
                fragment: rest[4..].to_vec(),
            }
        }
        PING => Frame::Ping {
            ack: has(FLAG_ACK),
            payload: exact::<8>(payload, "PING must be 8 bytes")?,
        },
        GOAWAY => {
            if payload.len() < 8 {
                return Err(frame_size_error("GOAWAY too short"));
            }
            Frame::GoAway {
                last_stream: StreamId(read_u32(payload) & STREAM_ID_MASK),
                code: ErrorCode(read_u32(&payload[4..])),
                debug: payload[8..].to_vec(),
            }
        }
        WINDOW_UPDATE => {
            let increment = exact::<4>(payload, "WINDOW_UPDATE must be 4 bytes")?;
            Frame::WindowUpdate {
                stream,
                increment: u32::from_be_bytes(increment) & STREAM_ID_MASK,
            }
        }
        CONTINUATION => Frame::Continuation {
            stream,
            end_headers: has(FLAG_END_HEADERS),
            fragment: payload.to_vec(),
        },
        _ => Frame::Unknown { kind, stream },
    })
}

fn exact<const N: usize>(payload: &[u8], reason: &'static str) -> Result<[u8; N], H2Error> {
    payload.try_into().map_err(|_| frame_size_error(reason))
}

/// Splits a PADDED payload into its pad length and the content before the padding.
fn strip_padding(padded: bool, payload: &[u8]) -> Result<(Option<u8>, &[u8]), H2Error> {
    if !padded {
        return Ok((None, payload));
    }
    let (&pad_length, rest) =
        payload.split_first().ok_or_else(|| frame_size_error("no pad length"))?;
    let content_length = rest
        .len()
        .checked_sub(usize::from(pad_length))
        .ok_or_else(|| protocol_error("padding longer than the frame"))?;
    Ok((Some(pad_length), &rest[..content_length]))
}

fn parse_priority(fields: &[u8]) -> Priority {
    let dependency = read_u32(fields);
    Priority {
        exclusive: dependency & !STREAM_ID_MASK != 0,
        dependency: StreamId(dependency & STREAM_ID_MASK),
        weight: fields[4],
    }
}

fn parse_settings(ack: bool, payload: &[u8]) -> Result<Frame, H2Error> {
    if ack && !payload.is_empty() {
        return Err(frame_size_error("SETTINGS ack with a payload"));
    }
    if !payload.len().is_multiple_of(6) {
        return Err(frame_size_error("SETTINGS not a multiple of 6 bytes"));
    }
    let values = payload
        .chunks_exact(6)
        .map(|entry| (u16::from_be_bytes([entry[0], entry[1]]), read_u32(&entry[2..])))
        .collect();
    Ok(Frame::Settings { ack, values })
}

impl Frame {
    /// The number of payload bytes this frame takes from the flow-control windows: for DATA,
    /// the whole payload including padding (RFC 9113 §6.1); nothing for other frames.
    pub(crate) fn flow_controlled_len(&self) -> usize {
        match self {
            Frame::Data { padding, data, .. } => {
                data.len() + padding.map_or(0, |pad| 1 + usize::from(pad))
            }
            _ => 0,
        }
    }

    /// Appends the frame to `out`. The caller keeps it within the peer's MAX_FRAME_SIZE.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        let (kind, flags, stream) = self.write_payload(out);
        let length = (out.len() - start - HEADER_LEN) as u32;
        out[start..start + 3].copy_from_slice(&length.to_be_bytes()[1..]);
        out[start + 3] = kind;
        out[start + 4] = flags;
        out[start + 5..start + 9].copy_from_slice(&stream.0.to_be_bytes());
    }

    /// Appends the payload and says which type, flags and stream the header must carry.
    fn write_payload(&self, out: &mut Vec<u8>) -> (u8, u8, StreamId) {
        let flag = |set: bool, flag: u8| if set { flag } else { 0 };
        match self {
            Frame::Data { stream, end_stream, padding, data } => {
                write_padded(out, *padding, |out| out.extend_from_slice(data));
                (
                    DATA,
                    flag(*end_stream, FLAG_END_STREAM) | flag(padding.is_some(), FLAG_PADDED),
                    *stream,
                )
            }
            Frame::Headers { stream, end_stream, end_headers, padding, priority, fragment } => {
                write_padded(out, *padding, |out| {
                    if let Some(priority) = priority {
                        write_priority(out, priority);
                    }
                    out.extend_from_slice(fragment);
                });
                let flags = flag(*end_stream, FLAG_END_STREAM)
                    | flag(*end_headers, FLAG_END_HEADERS)
                    | flag(padding.is_some(), FLAG_PADDED)
                    | flag(priority.is_some(), FLAG_PRIORITY);
                (HEADERS, flags, *stream)
            }
            Frame::Priority { stream, priority } => {
                write_priority(out, priority);
                (PRIORITY, 0, *stream)
            }
            Frame::RstStream { stream, code } => {
                out.extend_from_slice(&code.0.to_be_bytes());
                (RST_STREAM, 0, *stream)
            }
            Frame::Settings { ack, values } => {
                for (id, value) in values {
                    out.extend_from_slice(&id.to_be_bytes());
                    out.extend_from_slice(&value.to_be_bytes());
                }
                (SETTINGS, flag(*ack, FLAG_ACK), StreamId::CONNECTION)
            }
            Frame::PushPromise { stream, promised, end_headers, fragment } => {
                out.extend_from_slice(&promised.0.to_be_bytes());
                out.extend_from_slice(fragment);
                (PUSH_PROMISE, flag(*end_headers, FLAG_END_HEADERS), *stream)
            }
            Frame::Ping { ack, payload } => {
                out.extend_from_slice(payload);
                (PING, flag(*ack, FLAG_ACK), StreamId::CONNECTION)
            }
            Frame::GoAway { last_stream, code, debug } => {
                out.extend_from_slice(&last_stream.0.to_be_bytes());
                out.extend_from_slice(&code.0.to_be_bytes());
                out.extend_from_slice(debug);
                (GOAWAY, 0, StreamId::CONNECTION)
            }
            Frame::WindowUpdate { stream, increment } => {
                out.extend_from_slice(&increment.to_be_bytes());
                (WINDOW_UPDATE, 0, *stream)
            }
            Frame::Continuation { stream, end_headers, fragment } => {
                out.extend_from_slice(fragment);
                (CONTINUATION, flag(*end_headers, FLAG_END_HEADERS), *stream)
            }
            Frame::Unknown { kind, stream } => (*kind, 0, *stream),
        }
    }
}

fn write_padded(out: &mut Vec<u8>, padding: Option<u8>, content: impl FnOnce(&mut Vec<u8>)) {
    if let Some(pad_length) = padding {
        out.push(pad_length);
    }
    content(out);
    out.resize(out.len() + usize::from(padding.unwrap_or(0)), 0);
}

fn write_priority(out: &mut Vec<u8>, priority: &Priority) {
    let exclusive = if priority.exclusive { !STREAM_ID_MASK } else { 0 };
    out.extend_from_slice(&(priority.dependency.0 | exclusive).to_be_bytes());
    out.push(priority.weight);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;

    fn every_kind() -> Vec<Frame> {
        let stream = StreamId(3);
        let priority = Priority { exclusive: true, dependency: StreamId(1), weight: 200 };
        vec![
            Frame::Data { stream, end_stream: true, padding: Some(4), data: b"body".to_vec() },
            Frame::Data { stream, end_stream: false, padding: None, data: vec![] },
            Frame::Headers {
                stream,
                end_stream: false,
                end_headers: true,
                padding: Some(2),
                priority: Some(priority),
                fragment: vec![0x88],
            },
            Frame::Priority { stream, priority },
            Frame::RstStream { stream, code: ErrorCode::CANCEL },
            Frame::Settings { ack: false, values: vec![(4, 1 << 22), (2, 0)] },
            Frame::Settings { ack: true, values: vec![] },
            Frame::PushPromise {
                stream,
                promised: StreamId(2),
                end_headers: true,
                fragment: vec![0x82],
            },
            Frame::Ping { ack: true, payload: *b"12345678" },
            Frame::GoAway {
                last_stream: stream,
                code: ErrorCode::NO_ERROR,
                debug: b"bye".to_vec(),
            },
            Frame::WindowUpdate { stream: StreamId::CONNECTION, increment: 1 << 30 },
            Frame::Continuation { stream, end_headers: true, fragment: vec![0x40, 0x00] },
            Frame::Unknown { kind: 0xfa, stream },
        ]
    }

    fn serialised(frames: &[Frame]) -> Vec<u8> {
        let mut out = Vec::new();
        frames.iter().for_each(|frame| frame.write(&mut out));
        out
    }

    #[test]
    fn every_kind_round_trips() {
        for frame in every_kind() {
            let bytes = serialised(std::slice::from_ref(&frame));
            assert_eq!(parse(&bytes, DEFAULT_MAX_FRAME_SIZE), Ok(Some((frame, bytes.len()))));
        }
    }

    #[test]
    fn incomplete_frames_wait_for_more() {
        let bytes = serialised(&every_kind()[..1]);
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut], DEFAULT_MAX_FRAME_SIZE), Ok(None));
        }
    }

    #[test]
    fn oversized_length_fails_before_the_payload_arrives() {
        let header = [0x00, 0x40, 0x01, DATA, 0, 0, 0, 0, 1];
        let error = parse(&header, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
        assert_eq!(error, frame_size_error("frame larger than our MAX_FRAME_SIZE"));
    }

    #[test]
    fn malformed_frames_are_connection_errors() {
        let cases: [(&[u8], ErrorCode); 6] = [
            (&[0, 0, 1, DATA, 0, 0, 0, 0, 0, 0], ErrorCode::PROTOCOL_ERROR),
            (&[0, 0, 2, DATA, FLAG_PADDED, 0, 0, 0, 1, 2, 0], ErrorCode::PROTOCOL_ERROR),
            (&[0, 0, 0, PING, 0, 0, 0, 0, 1], ErrorCode::PROTOCOL_ERROR),
            (&[0, 0, 1, PING, 0, 0, 0, 0, 0, 0], ErrorCode::FRAME_SIZE_ERROR),
            (&[0, 0, 5, SETTINGS, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], ErrorCode::FRAME_SIZE_ERROR),
            (&[0, 0, 3, WINDOW_UPDATE, 0, 0, 0, 0, 0, 0, 0, 1], ErrorCode::FRAME_SIZE_ERROR),
        ];
        for (bytes, expected) in cases {
            match parse(bytes, DEFAULT_MAX_FRAME_SIZE) {
                Err(H2Error::Protocol { code, .. }) => assert_eq!(code, expected, "{bytes:?}"),
                other => panic!("{bytes:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn shaken_frames_never_panic() {
        let seed = serialised(&every_kind());
        shake(0xf4a3e, 4000, &seed, |bytes| {
            let mut rest = bytes;
            while let Ok(Some((_, used))) = parse(rest, DEFAULT_MAX_FRAME_SIZE) {
                rest = &rest[used..];
            }
        });
    }
}
