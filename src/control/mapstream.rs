//! Framing of the map response stream: each MapResponse is a little-endian u32 length and
//! that many bytes of body (plain JSON — weft does not ask for zstd). [`FrameReader`] is
//! sans-IO: feed it HTTP/2 DATA as it arrives, in chunks of any size, and take out complete
//! bodies.

use std::fmt;

/// The largest body accepted. tailscaled has no cap; the minimal Go client caps at 4 MiB. A
/// netmap of a few thousand peers fits comfortably in 16 MiB, and a length beyond that is far
/// likelier to be a desynchronised stream than a real message.
pub(crate) const MAX_FRAME_LEN: usize = 16 << 20;

const LENGTH_PREFIX: usize = 4;

/// Why the stream cannot be read further. Both are fatal: the framing is lost, so the caller
/// drops the stream and polls again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The length prefix announces more than the reader's limit.
    TooLarge { len: u64, max: usize },
    /// A zero-length frame: never valid JSON, and a sign of a broken stream.
    Empty,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => write!(
                f,
                "map response frame of {len} bytes exceeds the {max}-byte limit (stream out of sync?)"
            ),
            FrameError::Empty => f.write_str("zero-length map response frame"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Reassembles length-prefixed frames from arbitrary chunks.
#[derive(Debug)]
pub(crate) struct FrameReader {
    buffered: Vec<u8>,
    /// Bytes of `buffered` already handed out; dropped in bulk to keep pushes cheap.
    consumed: usize,
    max_len: usize,
    failed: Option<FrameError>,
}

impl Default for FrameReader {
    fn default() -> FrameReader {
        FrameReader::new(MAX_FRAME_LEN)
    }
}

impl FrameReader {
    pub(crate) fn new(max_len: usize) -> FrameReader {
        FrameReader { buffered: Vec::new(), consumed: 0, max_len, failed: None }
    }

    /// Adds bytes received from the stream.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.consumed > 0 {
            self.buffered.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buffered.extend_from_slice(chunk);
    }

    /// The next complete body, `Ok(None)` while one is still incomplete. After an error every
    /// call returns that error again.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let pending = &self.buffered[self.consumed..];
        let Some(prefix) = pending.get(..LENGTH_PREFIX) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if let Err(error) = self.check_len(len) {
            self.failed = Some(error.clone());
            self.buffered = Vec::new();
            self.consumed = 0;
            return Err(error);
        }
        let end = LENGTH_PREFIX + len as usize;
        let Some(body) = pending.get(LENGTH_PREFIX..end) else {
            return Ok(None);
        };
        let body = body.to_vec();
        self.consumed += end;
        Ok(Some(body))
    }

    /// Bytes held that do not yet form a frame (for diagnostics when a stream ends).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn pending_len(&self) -> usize {
        self.buffered.len() - self.consumed
    }

    fn check_len(&self, len: u32) -> Result<(), FrameError> {
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len as usize > self.max_len {
            return Err(FrameError::TooLarge { len: u64::from(len), max: self.max_len });
        }
        Ok(())
    }
}

/// Frames one body as a server writes it; only tests need to (weft only reads the stream).
#[cfg(test)]
pub(crate) fn encode_frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LENGTH_PREFIX + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;

    fn two_frames() -> Vec<u8> {
        let mut stream = encode_frame(br#"{"KeepAlive":true}"#);
        stream.extend(encode_frame(br#"{"Domain":"example.ts.net"}"#));
        stream
    }

    fn drain(reader: &mut FrameReader) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut frames = Vec::new();
        while let Some(frame) = reader.next_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn reads_frames_split_at_every_byte() {
        let stream = two_frames();
        let whole = drain(&mut {
            let mut r = FrameReader::default();
            r.push(&stream);
            r
        })
        .unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0], br#"{"KeepAlive":true}"#);
        for split in 0..=stream.len() {
            let mut reader = FrameReader::default();
            reader.push(&stream[..split]);
            let mut frames = drain(&mut reader).unwrap();
            reader.push(&stream[split..]);
            frames.extend(drain(&mut reader).unwrap());
            assert_eq!(frames, whole, "split at {split}");
            assert_eq!(reader.pending_len(), 0);
        }
    }

    #[test]
    fn reads_byte_by_byte() {
        let stream = two_frames();
        let mut reader = FrameReader::default();
        let mut frames = Vec::new();
        for byte in &stream {
            reader.push(std::slice::from_ref(byte));
            frames.extend(drain(&mut reader).unwrap());
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1], br#"{"Domain":"example.ts.net"}"#);
    }

    #[test]
    fn little_endian_length() {
        let mut reader = FrameReader::default();
        reader.push(&[3, 0, 0, 0, b'a', b'b', b'c']);
        assert_eq!(reader.next_frame(), Ok(Some(b"abc".to_vec())));
    }

    #[test]
    fn oversized_length_is_a_sticky_error() {
        let mut reader = FrameReader::new(1024);
        reader.push(&encode_frame(b"{}"));
        // A big-endian 16 read as little-endian: the classic mistake on the other side.
        reader.push(&[0, 0, 0, 16]);
        assert_eq!(reader.next_frame(), Ok(Some(b"{}".to_vec())));
        let error = reader.next_frame().unwrap_err();
        assert_eq!(error, FrameError::TooLarge { len: 16 << 24, max: 1024 });
        assert!(error.to_string().contains("exceeds"));
        reader.push(&encode_frame(b"{}"));
        assert_eq!(reader.next_frame(), Err(error));
        assert_eq!(reader.pending_len(), 0);
    }

    #[test]
    fn max_length_is_inclusive_and_default_is_generous() {
        let mut reader = FrameReader::new(3);
        reader.push(&encode_frame(b"abc"));
        assert_eq!(reader.next_frame(), Ok(Some(b"abc".to_vec())));
        let mut reader = FrameReader::default();
        reader.push(&u32::MAX.to_le_bytes());
        assert!(matches!(reader.next_frame(), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn zero_length_frame_is_an_error() {
        let mut reader = FrameReader::default();
        reader.push(&[0, 0, 0, 0]);
        assert_eq!(reader.next_frame(), Err(FrameError::Empty));
    }

    #[test]
    fn shaken_streams_never_panic_and_stay_bounded() {
        let stream = two_frames();
        shake(21, 3000, &stream, |bytes| {
            let mut reader = FrameReader::new(64);
            for chunk in bytes.chunks(5) {
                reader.push(chunk);
                while let Ok(Some(frame)) = reader.next_frame() {
                    assert!(!frame.is_empty() && frame.len() <= 64);
                }
            }
            assert!(reader.pending_len() <= bytes.len());
        });
    }
}
